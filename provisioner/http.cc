#include "provisioner/http.h"

#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <atomic>
#include <cerrno>
#include <ctime>
#include <memory>
#include <regex>

#include "common/jwt.h"
#include "common/status_http.h"

namespace cairn::provisioner {

namespace {

using httplib::Request;
using httplib::Response;

int64_t NowUnix() { return static_cast<int64_t>(std::time(nullptr)); }

void Text(Response& res, int code, const std::string& body) {
  res.status = code;
  res.set_content(body.empty() || body.back() == '\n' ? body : body + "\n", "text/plain");
}

void Error(Response& res, const Status& s) { Text(res, HttpStatusFromStatus(s), s.message()); }

void Json(Response& res, int code, const nlohmann::json& j) {
  res.status = code;
  res.set_content(j.dump() + "\n", "application/json");
}

void Accepted(Response& res, const std::string& op) {
  res.status = 202;
  res.set_header("Location", "/queue/" + op);
}

// Parses the body as JSON: 422 if it is not JSON. An empty body is null.
bool ParseBody(const Request& req, Response& res, nlohmann::json* out) {
  if (req.body.empty()) {
    *out = nullptr;
    return true;
  }
  *out = nlohmann::json::parse(req.body, nullptr, false);
  if (out->is_discarded()) {
    Text(res, 422, "the body is not valid JSON");
    return false;
  }
  return true;
}

}  // namespace

HttpApi::HttpApi(Service* service, HttpOptions options)
    : service_(service), options_(std::move(options)) {}

void HttpApi::Count(const std::string& route, int code) {
  std::lock_guard l(mu_);
  requests_[{route, code}]++;
}

bool HttpApi::Authorize(const Request& req, Response& res) {
  if (req.method == "GET" && (req.path == "/hello" || req.path == "/healthz")) return true;
  auto deny = [&](const std::string& why) {
    Text(res, 401, why);
    return false;
  };
  std::string auth = req.get_header_value("Authorization");
  const std::string bearer = "Bearer ";
  if (auth.size() <= bearer.size() || auth.compare(0, bearer.size(), bearer) != 0) {
    return deny("missing Authorization: Bearer <JWT> header");
  }
  std::string token = auth.substr(bearer.size());
  auto iss = PeekJwtIssuer(token);
  if (!iss.ok()) return deny(iss.status().message());
  const std::string* key = nullptr;
  if (*iss == "admin") {
    key = &options_.admin_key;
  } else if (*iss == "user") {
    key = &options_.user_key;
  } else if (*iss == "node") {
    if (options_.join_key.empty()) return deny("self-registration is disabled (no join key)");
    key = &options_.join_key;
  } else {
    return deny("unknown token issuer '" + iss->substr(0, 32) + "': admin, user or node");
  }
  auto claims = VerifyJwt(token, *key,
                          {.method = req.method,
                           .path = req.path,
                           .now = NowUnix(),
                           .leeway_s = options_.jwt_leeway_s});
  if (!claims.ok()) return deny(claims.status().message());
  if (*iss == "user") {
    const bool volume_route = req.path == "/volumes" || req.path.rfind("/volumes/", 0) == 0 ||
                              req.path.rfind("/queue/", 0) == 0;
    if (!volume_route) return deny("user may not access " + req.path + ": admin only");
  }
  if (*iss == "node" && !(req.method == "POST" && req.path == "/nodes/register")) {
    return deny("a node token may only register the node");
  }
  if (req.path == "/nodes/register" && *iss != "node" && *iss != "admin") {
    return deny("registration needs a node token");
  }
  return true;
}

void HttpApi::Install(httplib::Server& srv) {
  srv.set_payload_max_length(options_.max_body_bytes);
  // cpp-httplib (Debian's 0.11 build) listens with a backlog of 5: a burst of
  // clients (say 50 parallel volume creates) overflows the accept queue, the
  // kernel falls back to SYN cookies and some connections are reset before
  // their request is read. Raise it: note the socket when it is made, and
  // listen() again with SOMAXCONN once it is bound (the server asks for its
  // task queue after bind, before it accepts; listen() on a listening socket
  // only changes its backlog).
  auto listen_fd = std::make_shared<std::atomic<socket_t>>(INVALID_SOCKET);
  srv.set_socket_options([listen_fd](socket_t sock) {
    httplib::default_socket_options(sock);
    listen_fd->store(sock);
  });
  srv.new_task_queue = [listen_fd, make_queue = srv.new_task_queue] {
    if (const socket_t fd = listen_fd->load(); fd != INVALID_SOCKET) {
      if (::listen(fd, SOMAXCONN) != 0) {
        spdlog::warn("event=listen_backlog_not_raised errno={}", errno);
      }
    }
    return make_queue();
  };
  srv.set_pre_routing_handler([this](const Request& req, Response& res) {
    return Authorize(req, res) ? httplib::Server::HandlerResponse::Unhandled
                               : httplib::Server::HandlerResponse::Handled;
  });
  srv.set_exception_handler([](const Request& req, Response& res, std::exception_ptr ep) {
    std::string what = "internal error";
    try {
      if (ep) std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    spdlog::error("event=http_exception method={} path={} error=\"{}\"", req.method, req.path,
                  what);
    Text(res, 500, "internal error: " + what);
  });
  srv.set_error_handler([](const Request&, Response& res) {
    if (res.body.empty()) {
      const char* why = res.status == 404   ? "no such route"
                        : res.status == 413 ? "the body is larger than 1 MiB"
                        : res.status == 405 ? "method not allowed"
                                            : "error";
      Text(res, res.status, why);
    }
  });
  srv.set_logger([this](const Request& req, const Response& res) {
    // One label per route, not per path: ids become {id}, unmatched paths one label.
    static const std::regex kId("[0-9a-f]{32}");
    Count(req.matches.empty() ? req.method + " (no route)"
                              : req.method + " " + std::regex_replace(req.path, kId, "{id}"),
          res.status);
    spdlog::debug("event=http method={} path={} status={}", req.method, req.path, res.status);
  });

  // A handler that answers from a StatusOr<json>.
  auto json_route = [](auto fn, int code = 200) {
    return [fn, code](const Request& req, Response& res) {
      auto r = fn(req);
      if (!r.ok()) return Error(res, r.status());
      Json(res, code, *r);
    };
  };
  // A handler that starts an async operation.
  auto async_route = [](auto fn) {
    return [fn](const Request& req, Response& res) {
      StatusOr<std::string> op = fn(req);
      if (!op.ok()) return Error(res, op.status());
      Accepted(res, *op);
    };
  };
  // Same, with a JSON body.
  auto body = [](const Request& req, Response& res, nlohmann::json* j) {
    return ParseBody(req, res, j);
  };
  Service* s = service_;

  srv.Get("/hello",
          [](const Request&, Response& res) { Text(res, 200, "Hello from Cairn (Heketi API)"); });
  srv.Get("/healthz", [](const Request&, Response& res) { Text(res, 200, "ok"); });
  srv.Get("/metrics", [this](const Request&, Response& res) {
    res.set_content(Metrics(), "text/plain; version=0.0.4");
  });

  // Clusters.
  srv.Post("/clusters", [s, body](const Request& req, Response& res) {
    nlohmann::json j;
    if (!body(req, res, &j)) return;
    auto r = s->CreateCluster(j);
    if (!r.ok()) return Error(res, r.status());
    Json(res, 201, *r);
  });
  srv.Get("/clusters", json_route([s](const Request&) { return s->ListClusters(); }));
  srv.Get(R"(/clusters/([0-9a-f]{32}))",
          json_route([s](const Request& req) { return s->ClusterInfo(req.matches[1]); }));
  srv.Delete(R"(/clusters/([0-9a-f]{32}))", [s](const Request& req, Response& res) {
    Status st = s->DeleteCluster(req.matches[1]);
    if (!st.ok()) return Error(res, st);
    res.status = 200;
  });
  srv.Post(R"(/clusters/([0-9a-f]{32})/flags)", [s, body](const Request& req, Response& res) {
    nlohmann::json j;
    if (!body(req, res, &j)) return;
    Status st = s->SetClusterFlags(req.matches[1], j);
    if (!st.ok()) return Error(res, st);
    res.status = 200;
  });

  // Nodes.
  srv.Post("/nodes/register", [s, body](const Request& req, Response& res) {
    nlohmann::json j;
    if (!body(req, res, &j)) return;
    auto r = s->RegisterNode(j);
    if (!r.ok()) return Error(res, r.status());
    Json(res, 200, *r);
  });
  srv.Post("/nodes", [s, body](const Request& req, Response& res) {
    nlohmann::json j;
    if (!body(req, res, &j)) return;
    auto op = s->AddNode(j);
    if (!op.ok()) return Error(res, op.status());
    Accepted(res, *op);
  });
  srv.Get("/nodes", json_route([s](const Request&) { return s->ListNodes(); }));
  srv.Get(R"(/nodes/([0-9a-f]{32}))",
          json_route([s](const Request& req) { return s->NodeInfo(req.matches[1]); }));
  srv.Delete(R"(/nodes/([0-9a-f]{32}))",
             async_route([s](const Request& req) { return s->DeleteNode(req.matches[1]); }));
  srv.Post(R"(/nodes/([0-9a-f]{32})/state)", [s, body](const Request& req, Response& res) {
    nlohmann::json j;
    if (!body(req, res, &j)) return;
    auto op = s->SetNodeState(req.matches[1], j);
    if (!op.ok()) return Error(res, op.status());
    Accepted(res, *op);
  });
  srv.Post(R"(/nodes/([0-9a-f]{32})/tags)", [s, body](const Request& req, Response& res) {
    nlohmann::json j;
    if (!body(req, res, &j)) return;
    auto r = s->SetNodeTags(req.matches[1], j);
    if (!r.ok()) return Error(res, r.status());
    Json(res, 200, *r);
  });

  // Devices.
  srv.Post("/devices", [s, body](const Request& req, Response& res) {
    nlohmann::json j;
    if (!body(req, res, &j)) return;
    auto op = s->AddDevice(j);
    if (!op.ok()) return Error(res, op.status());
    Accepted(res, *op);
  });
  srv.Get(R"(/devices/([0-9a-f]{32}))",
          json_route([s](const Request& req) { return s->DeviceInfo(req.matches[1]); }));
  srv.Delete(R"(/devices/([0-9a-f]{32}))",
             async_route([s](const Request& req) { return s->DeleteDevice(req.matches[1]); }));
  srv.Post(R"(/devices/([0-9a-f]{32})/state)", [s, body](const Request& req, Response& res) {
    nlohmann::json j;
    if (!body(req, res, &j)) return;
    auto op = s->SetDeviceState(req.matches[1], j);
    if (!op.ok()) return Error(res, op.status());
    Accepted(res, *op);
  });
  srv.Post(R"(/devices/([0-9a-f]{32})/resync)",
           async_route([s](const Request& req) { return s->ResyncDevice(req.matches[1]); }));
  srv.Post(R"(/devices/([0-9a-f]{32})/tags)", [s, body](const Request& req, Response& res) {
    nlohmann::json j;
    if (!body(req, res, &j)) return;
    auto r = s->SetDeviceTags(req.matches[1], j);
    if (!r.ok()) return Error(res, r.status());
    Json(res, 200, *r);
  });

  // Volumes.
  srv.Get("/volumes", json_route([s](const Request& req) {
            return s->ListVolumes(req.get_param_value("name"));
          }));
  srv.Post("/volumes", [s, body](const Request& req, Response& res) {
    nlohmann::json j;
    if (!body(req, res, &j)) return;
    auto op = s->CreateVolume(j);
    if (!op.ok()) return Error(res, op.status());
    Accepted(res, *op);
  });
  srv.Get(R"(/volumes/([0-9a-f]{32}))",
          json_route([s](const Request& req) { return s->VolumeInfo(req.matches[1]); }));
  srv.Get(R"(/volumes/([0-9a-f]{32})/heal)",
          json_route([s](const Request& req) { return s->VolumeHeal(req.matches[1]); }));
  srv.Delete(R"(/volumes/([0-9a-f]{32}))",
             async_route([s](const Request& req) { return s->DeleteVolume(req.matches[1]); }));
  srv.Post(R"(/volumes/([0-9a-f]{32})/expand)", [s, body](const Request& req, Response& res) {
    nlohmann::json j;
    if (!body(req, res, &j)) return;
    auto op = s->ExpandVolume(req.matches[1], j);
    if (!op.ok()) return Error(res, op.status());
    Accepted(res, *op);
  });

  srv.Get("/topology", json_route([s](const Request&) { return s->Topology(); }));

  srv.Get(R"(/queue/([0-9a-f]{32}))", [this, s](const Request& req, Response& res) {
    auto q = s->Queue(req.matches[1], options_.queue_wait);
    if (!q.ok()) return Error(res, q.status());
    switch (q->kind) {
      case QueueState::kPending:
        res.status = 200;
        res.set_header("X-Pending", "true");
        return;
      case QueueState::kDone:
        if (q->location.empty()) {
          res.status = 204;
        } else {
          res.status = 303;
          res.set_header("Location", q->location);
        }
        return;
      case QueueState::kFailed:
        Text(res, 500, q->error);
        return;
    }
  });
}

std::string HttpApi::Metrics() {
  std::string out = service_->Metrics();
  out += "# HELP cairn_provisioner_http_requests_total HTTP requests by route and status.\n";
  out += "# TYPE cairn_provisioner_http_requests_total counter\n";
  std::lock_guard l(mu_);
  for (const auto& [k, n] : requests_) {
    out += "cairn_provisioner_http_requests_total{route=\"" + k.first + "\",code=\"" +
           std::to_string(k.second) + "\"} " + std::to_string(n) + "\n";
  }
  return out;
}

}  // namespace cairn::provisioner
