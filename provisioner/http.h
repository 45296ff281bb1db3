// The REST edge of the provisioner: Heketi's routes (docs/provisioner.md)
// on a cpp-httplib server, JWT authentication, errors as text bodies.
#pragma once

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <string>

#include "provisioner/service.h"

namespace cairn::provisioner {

struct HttpOptions {
  std::string admin_key;
  std::string user_key;
  std::string join_key;  // empty: self-registration refused
  std::chrono::milliseconds queue_wait{50};
  int64_t jwt_leeway_s = 120;
  size_t max_body_bytes = 1 << 20;
};

class HttpApi {
 public:
  HttpApi(Service* service, HttpOptions options);

  // Installs the routes, the auth check and the error handling on `server`.
  void Install(httplib::Server& server);

  // Prometheus text: requests by route and code, plus the service's metrics.
  std::string Metrics();

 private:
  // Checks the bearer token for the request; on failure fills `res` (401)
  // and returns false.
  bool Authorize(const httplib::Request& req, httplib::Response& res);
  void Count(const std::string& route, int code);

  Service* service_;
  HttpOptions options_;
  std::mutex mu_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;
};

}  // namespace cairn::provisioner
