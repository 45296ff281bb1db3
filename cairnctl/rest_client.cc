// REST client with per-request JWTs and queue following.
#include "cairnctl/rest_client.h"

#include <httplib.h>

#include <thread>

#include "common/jwt.h"
#include "common/status_http.h"

namespace cairn::ctl {
namespace {

using Clock = std::chrono::steady_clock;

std::string PathWithoutQuery(const std::string& path) {
  auto q = path.find('?');
  return q == std::string::npos ? path : path.substr(0, q);
}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

// The error a non-2xx reply stands for: the server's text, else its code.
Status ErrorFromReply(const RestClient::Reply& r, const std::string& what) {
  std::string text = Trim(r.body);
  if (text.empty()) text = "HTTP " + std::to_string(r.status) + " from " + what;
  Status s = StatusFromHttp(r.status, text);
  if (s.ok()) s = Status::Internal(text);  // a 3xx where none was expected
  return s;
}

std::string DescribeError(httplib::Error e) {
  switch (e) {
    case httplib::Error::Connection:
      return "connection refused or host unreachable (is the provisioner running?)";
    case httplib::Error::ConnectionTimeout:
      return "connect timed out";
    case httplib::Error::Read:
      return "the connection broke while reading the answer";
    case httplib::Error::Write:
      return "the connection broke while sending the request";
    case httplib::Error::SSLConnection:
      return "TLS handshake failed";
    case httplib::Error::SSLServerVerification:
      return "the server's TLS certificate is not trusted";
    default:
      return httplib::to_string(e);
  }
}

}  // namespace

std::string BearerFor(const std::string& user, const std::string& key, const std::string& method,
                      const std::string& path_with_query, int64_t now_unix) {
  return "Bearer " +
         SignJwt(key, MakeRequestClaims(user, method, PathWithoutQuery(path_with_query), now_unix));
}

RestClient::RestClient(std::string server, std::string user, std::string key, RestOptions options)
    : server_(std::move(server)),
      user_(std::move(user)),
      key_(std::move(key)),
      options_(std::move(options)) {
  if (!options_.now_unix) {
    options_.now_unix = [] {
      return static_cast<int64_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                      std::chrono::system_clock::now().time_since_epoch())
                                      .count());
    };
  }
  client_ = std::make_unique<httplib::Client>(server_);
  client_->set_connection_timeout(options_.connect_timeout);
  client_->set_read_timeout(options_.read_timeout);
  client_->set_write_timeout(options_.read_timeout);
  client_->set_keep_alive(true);
  client_->set_follow_location(false);  // 303s are followed by hand, with their own token
}

RestClient::~RestClient() = default;

StatusOr<RestClient::Reply> RestClient::Send(const std::string& method, const std::string& path,
                                             const std::string& body) {
  httplib::Request req;
  req.method = method;
  req.path = path;
  req.headers.emplace("Authorization", BearerFor(user_, key_, method, path, options_.now_unix()));
  req.headers.emplace("Accept", "application/json");
  if (!body.empty() || method == "POST") {
    req.body = body;
    req.headers.emplace("Content-Type", "application/json");
  }
  httplib::Result res = client_->send(req);
  if (!res) {
    return Status::Unavailable("cannot reach the provisioner at " + server_ + " (" + method + " " +
                               PathWithoutQuery(path) + "): " + DescribeError(res.error()));
  }
  Reply r;
  r.status = res->status;
  r.body = res->body;
  r.location = res->get_header_value("Location");
  r.pending = res->get_header_value("X-Pending") == "true";
  return r;
}

StatusOr<nlohmann::json> RestClient::ParseBody(const Reply& reply, const std::string& what) {
  if (reply.status == 204 || Trim(reply.body).empty()) return nlohmann::json();
  nlohmann::json j = nlohmann::json::parse(reply.body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    // A plain-text 2xx (GET /hello): returned as a JSON string.
    return nlohmann::json(Trim(reply.body));
  }
  (void)what;
  return j;
}

StatusOr<nlohmann::json> RestClient::Call(const std::string& method, const std::string& path,
                                          const nlohmann::json* body) {
  const std::string what = method + " " + PathWithoutQuery(path);
  CAIRN_ASSIGN_OR_RETURN(Reply r, Send(method, path, body != nullptr ? body->dump() : ""));
  if (r.status == 202) {
    if (r.location.empty()) {
      return Status::Internal(what + " answered 202 without a Location to follow");
    }
    return FollowQueue(r.location);
  }
  if (r.status >= 200 && r.status < 300) return ParseBody(r, what);
  return ErrorFromReply(r, what);
}

StatusOr<nlohmann::json> RestClient::FollowQueue(const std::string& queue_path) {
  auto delay = options_.poll_initial;
  const auto deadline = Clock::now() + options_.operation_timeout;
  for (;;) {
    CAIRN_ASSIGN_OR_RETURN(Reply r, Send("GET", queue_path, ""));
    if (r.status == 303) {
      if (r.location.empty()) {
        return Status::Internal("GET " + queue_path + " answered 303 without a Location");
      }
      CAIRN_ASSIGN_OR_RETURN(Reply result, Send("GET", r.location, ""));
      if (result.status >= 200 && result.status < 300) return ParseBody(result, r.location);
      return ErrorFromReply(result, "GET " + r.location);
    }
    if (r.status == 204) return nlohmann::json();
    if (r.status == 200 && !r.pending) return ParseBody(r, queue_path);  // done, result inline
    if (r.status != 200) {
      Status s = ErrorFromReply(r, "GET " + queue_path);
      // 500 is the operation's own failure: its text is the whole message.
      return s;
    }
    if (Clock::now() + delay > deadline) {
      return Status::DeadlineExceeded(
          "the operation " + queue_path + " is still running after " +
          std::to_string(
              std::chrono::duration_cast<std::chrono::seconds>(options_.operation_timeout)
                  .count()) +
          " s; it goes on in the provisioner (GET " + queue_path + " tells when it ends)");
    }
    std::this_thread::sleep_for(delay);
    delay = std::min(delay * 2, options_.poll_max);
  }
}

}  // namespace cairn::ctl
