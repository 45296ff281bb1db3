// A client of the provisioner's REST API (docs/provisioner.md), as cairnctl
// uses it.
//
// Every request carries `Authorization: Bearer <JWT>` signed with the user's
// key for exactly that METHOD and PATH (common/jwt.h). Asynchronous routes
// (202 Accepted + Location: /queue/{op}) are followed to the end: the queue
// is polled (5 ms doubling to 200 ms) until it answers 303 (the result, which
// is fetched), 204 (done, no result) or 500 (the operation's error).
//
//   RestClient api("http://127.0.0.1:8080", "admin", key);
//   CAIRN_ASSIGN_OR_RETURN(nlohmann::json volume, api.Post("/volumes", request));
//
// Errors: a non-2xx answer is the Status for its HTTP code (common/
// status_http.h) with the server's text body as the message; a connection
// failure is Unavailable naming the URL.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "common/status.h"

namespace httplib {
class Client;
}

namespace cairn::ctl {

// The API as the commands see it: requests whose asynchronous operations
// have already been followed. The result is the final JSON body (null when
// there is none, e.g. 204). Tests may implement it in memory.
class Api {
 public:
  virtual ~Api() = default;
  // `body` may be null (no body).
  virtual StatusOr<nlohmann::json> Call(const std::string& method, const std::string& path,
                                        const nlohmann::json* body) = 0;

  StatusOr<nlohmann::json> Get(const std::string& path) { return Call("GET", path, nullptr); }
  StatusOr<nlohmann::json> Post(const std::string& path, const nlohmann::json& body) {
    return Call("POST", path, &body);
  }
  StatusOr<nlohmann::json> Delete(const std::string& path) { return Call("DELETE", path, nullptr); }
};

struct RestOptions {
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds read_timeout{60000};
  // Polling of /queue/{op}: first delay, doubling up to the maximum.
  std::chrono::milliseconds poll_initial{5};
  std::chrono::milliseconds poll_max{200};
  // How long an asynchronous operation may take before we give up on it.
  std::chrono::milliseconds operation_timeout{std::chrono::minutes(10)};
  // Seconds since the epoch, for the tokens' iat/exp (tests may fix it).
  std::function<int64_t()> now_unix;
};

class RestClient : public Api {
 public:
  // `server` is a URL "http[s]://host:port"; `user` the JWT issuer (admin or user).
  RestClient(std::string server, std::string user, std::string key, RestOptions options = {});
  ~RestClient() override;
  RestClient(const RestClient&) = delete;
  RestClient& operator=(const RestClient&) = delete;

  StatusOr<nlohmann::json> Call(const std::string& method, const std::string& path,
                                const nlohmann::json* body) override;

  // One raw request, no following of 202s: for tests and `local up`'s polling.
  struct Reply {
    int status = 0;
    std::string body;
    std::string location;
    bool pending = false;  // X-Pending: true
  };
  StatusOr<Reply> Send(const std::string& method, const std::string& path, const std::string& body);

  const std::string& server() const { return server_; }

 private:
  StatusOr<nlohmann::json> FollowQueue(const std::string& queue_path);
  static StatusOr<nlohmann::json> ParseBody(const Reply& reply, const std::string& what);

  std::string server_;
  std::string user_;
  std::string key_;
  RestOptions options_;
  std::unique_ptr<httplib::Client> client_;
};

// The Authorization header value for one request: "Bearer " + a JWT for
// METHOD&PATH (the query string is left out of the hash).
std::string BearerFor(const std::string& user, const std::string& key, const std::string& method,
                      const std::string& path_with_query, int64_t now_unix);

}  // namespace cairn::ctl
