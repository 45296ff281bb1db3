// cairn-provisioner: Heketi's REST API over a crash-safe SQLite store; carves
// volumes out of the nodes' devices through their storaged.
// See docs/provisioner.md.
//
//   cairn-provisioner --listen=127.0.0.1:8080 --db=/var/lib/cairn/provisioner.db
//       --admin-key-file=/etc/cairn/admin.key --user-key-file=/etc/cairn/user.key
//       --join-key-file=/etc/cairn/join.key --node-token-file=/etc/cairn/node.token
#include <httplib.h>
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/file_util.h"
#include "common/flags.h"
#include "common/log.h"
#include "common/status_grpc.h"
#include "provisioner/http.h"
#include "provisioner/nodes.h"
#include "provisioner/service.h"
#include "provisioner/store.h"

namespace cairn::provisioner {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;
constexpr size_t kMinKeyBytes = 16;

// A key from its file flag, else from the environment. Never logged.
StatusOr<std::string> LoadKey(const Flags& flags, const std::string& flag, const char* env,
                              bool required) {
  std::string key;
  if (!flags.GetString(flag).empty()) {
    auto k = ReadSecretFile(flags.GetString(flag));
    if (!k.ok()) return Status::InvalidArgument("--" + flag + ": " + k.status().message());
    key = *k;
  } else if (const char* e = std::getenv(env); e != nullptr) {
    key = e;
  }
  if (key.empty()) {
    if (!required) return key;
    return Status::InvalidArgument("--" + flag + " (or $" + env + ") is required");
  }
  if (key.size() < kMinKeyBytes) {
    return Status::InvalidArgument("the key of --" + flag + " is shorter than " +
                                   std::to_string(kMinKeyBytes) + " bytes");
  }
  return key;
}

// Binds `srv` to host:port (0: any); returns the port or -1.
int Bind(httplib::Server& srv, const std::string& host, int port) {
  if (port == 0) return srv.bind_to_any_port(host);
  return srv.bind_to_port(host, port) ? port : -1;
}

int Main(int argc, char** argv) {
  Flags flags("cairn-provisioner", "Heketi-compatible volume provisioner for Cairn");
  flags.AddString("listen", "127.0.0.1:8080", "REST address host:port (port 0: any)");
  flags.AddString("db", "", "SQLite database file (created if missing)");
  flags.AddString("admin-key-file", "", "JWT key for iss=admin (or $CAIRN_ADMIN_KEY)");
  flags.AddString("user-key-file", "", "JWT key for iss=user (or $CAIRN_USER_KEY)");
  flags.AddString("join-key-file", "",
                  "JWT key for iss=node: storaged self-registration (or $CAIRN_JOIN_KEY)");
  flags.AddString("node-token-file", "", "the storaged admin token of the cluster's nodes");
  flags.AddString("tls-cert", "", "PEM certificate: serve HTTPS");
  flags.AddString("tls-key", "", "PEM private key for --tls-cert");
  flags.AddString("metrics-listen", "", "extra plain-HTTP /metrics and /healthz, no auth");
  flags.AddString("ready-file", "",
                  "written once serving: {\"listen\",\"url\",\"metrics\",\"pid\"}");
  flags.AddInt("workers", 4, "operations run at once");
  flags.AddInt("queue-wait-ms", 50, "GET /queue/{id} waits this long for a running operation");
  flags.AddInt("rpc-timeout-ms", 10000, "per call to a storaged");
  flags.AddInt("reconcile-s", 300, "period of the reconciliation with the nodes");
  flags.AddInt("http-threads", 32, "HTTP worker threads");
  flags.AddString("log-level", "info", "trace, debug, info, warn, error");
  flags.AddBool("log-json", false, "log JSON lines");
  if (Status s = flags.Parse(argc, argv); !s.ok()) {
    std::fprintf(stderr, "cairn-provisioner: %s\n%s", s.message().c_str(), flags.Usage().c_str());
    return kExitUsage;
  }
  if (flags.help_requested()) {
    std::printf("%s", flags.Usage().c_str());
    return kExitOk;
  }
  auto usage_error = [](const std::string& m) {
    std::fprintf(stderr, "cairn-provisioner: %s\n", m.c_str());
    return kExitUsage;
  };
  if (Status s = InitLogging({.level = flags.GetString("log-level"),
                              .json = flags.GetBool("log-json"),
                              .name = "cairn-provisioner"});
      !s.ok()) {
    return usage_error(s.message());
  }
  if (flags.GetString("db").empty()) return usage_error("--db is required");
  auto listen = SplitHostPort(flags.GetString("listen"));
  if (!listen.ok()) return usage_error("--listen: " + listen.status().message());
  std::optional<std::pair<std::string, int>> metrics_listen;
  if (!flags.GetString("metrics-listen").empty()) {
    auto m = SplitHostPort(flags.GetString("metrics-listen"));
    if (!m.ok()) return usage_error("--metrics-listen: " + m.status().message());
    metrics_listen = *m;
  }
  auto admin_key = LoadKey(flags, "admin-key-file", "CAIRN_ADMIN_KEY", true);
  if (!admin_key.ok()) return usage_error(admin_key.status().message());
  auto user_key = LoadKey(flags, "user-key-file", "CAIRN_USER_KEY", true);
  if (!user_key.ok()) return usage_error(user_key.status().message());
  auto join_key = LoadKey(flags, "join-key-file", "CAIRN_JOIN_KEY", false);
  if (!join_key.ok()) return usage_error(join_key.status().message());
  if (*admin_key == *user_key ||
      (!join_key->empty() && (*join_key == *admin_key || *join_key == *user_key))) {
    return usage_error("the admin, user and join keys must differ");
  }
  if (flags.GetString("node-token-file").empty())
    return usage_error("--node-token-file is required");
  auto node_token = ReadSecretFile(flags.GetString("node-token-file"));
  if (!node_token.ok()) return usage_error("--node-token-file: " + node_token.status().message());
  const bool tls = !flags.GetString("tls-cert").empty();
  if (tls != !flags.GetString("tls-key").empty()) {
    return usage_error("--tls-cert and --tls-key go together");
  }

  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  DisableMutexDeadlockDetection();

  auto store = Store::Open(flags.GetString("db"));
  if (!store.ok()) {
    spdlog::critical("event=store-open-failed error=\"{}\"", store.status().message());
    std::fprintf(stderr, "cairn-provisioner: %s\n", store.status().message().c_str());
    return kExitFailure;
  }
  NodeClients nodes(*node_token, std::chrono::milliseconds(flags.GetInt("rpc-timeout-ms")));
  ServiceOptions so;
  so.workers = static_cast<int>(flags.GetInt("workers"));
  so.reconcile_interval = std::chrono::seconds(std::max<int64_t>(1, flags.GetInt("reconcile-s")));
  if (const char* c = std::getenv("CAIRN_PROVISIONER_CRASH_AT"); c != nullptr) so.crash_at = c;
  Service service(store->get(), &nodes, so);
  if (Status s = service.Start(); !s.ok()) {
    spdlog::critical("event=start-failed error=\"{}\"", s.message());
    std::fprintf(stderr, "cairn-provisioner: %s\n", s.message().c_str());
    return kExitFailure;
  }

  HttpApi api(&service, {.admin_key = *admin_key,
                         .user_key = *user_key,
                         .join_key = *join_key,
                         .queue_wait = std::chrono::milliseconds(flags.GetInt("queue-wait-ms"))});
  std::unique_ptr<httplib::Server> server;
  if (tls) {
    server = std::make_unique<httplib::SSLServer>(flags.GetString("tls-cert").c_str(),
                                                  flags.GetString("tls-key").c_str());
    if (!server->is_valid()) {
      std::fprintf(stderr, "cairn-provisioner: cannot load --tls-cert/--tls-key\n");
      return kExitUsage;
    }
  } else {
    server = std::make_unique<httplib::Server>();
  }
  const size_t http_threads =
      static_cast<size_t>(std::max<int64_t>(2, flags.GetInt("http-threads")));
  server->new_task_queue = [http_threads] { return new httplib::ThreadPool(http_threads); };
  // Answers go out at once, not after the client's delayed ACK (~35 ms per
  // request without it, measured by bench/provisioner_bench).
  server->set_tcp_nodelay(true);
  api.Install(*server);
  const int port = Bind(*server, listen->first, listen->second);
  if (port <= 0) {
    spdlog::critical("event=listen-failed address={}", flags.GetString("listen"));
    std::fprintf(stderr, "cairn-provisioner: cannot listen on %s\n",
                 flags.GetString("listen").c_str());
    service.Stop();
    return kExitFailure;
  }
  std::thread http_thread([&] { server->listen_after_bind(); });

  httplib::Server metrics_server;
  std::thread metrics_thread;
  std::string metrics_address;
  if (metrics_listen) {
    metrics_server.Get("/metrics", [&](const httplib::Request&, httplib::Response& res) {
      res.set_content(api.Metrics(), "text/plain; version=0.0.4");
    });
    metrics_server.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("ok\n", "text/plain");
    });
    const int mport = Bind(metrics_server, metrics_listen->first, metrics_listen->second);
    if (mport <= 0) {
      std::fprintf(stderr, "cairn-provisioner: cannot listen on %s\n",
                   flags.GetString("metrics-listen").c_str());
      server->stop();
      http_thread.join();
      service.Stop();
      return kExitFailure;
    }
    metrics_address = metrics_listen->first + ":" + std::to_string(mport);
    metrics_thread = std::thread([&] { metrics_server.listen_after_bind(); });
  }

  const std::string address = listen->first + ":" + std::to_string(port);
  const std::string url = std::string(tls ? "https://" : "http://") + address;
  spdlog::info("event=serving url={} db={} tls={} metrics={}", url, flags.GetString("db"), tls,
               metrics_address);
  if (!flags.GetString("ready-file").empty()) {
    nlohmann::json j = {
        {"listen", address}, {"url", url}, {"metrics", metrics_address}, {"pid", ::getpid()}};
    if (Status s = WriteFileAtomic(flags.GetString("ready-file"), j.dump() + "\n", 0644); !s.ok()) {
      spdlog::error("event=ready-file-failed error=\"{}\"", s.message());
    }
  }

  int sig = 0;
  sigwait(&sigs, &sig);
  spdlog::info("event=shutdown signal={}", sig);
  server->stop();
  http_thread.join();
  if (metrics_thread.joinable()) {
    metrics_server.stop();
    metrics_thread.join();
  }
  nodes.CancelAll();  // a node call in flight (reconcile, an op) ends now
  service.Stop();
  spdlog::info("event=stopped");
  return kExitOk;
}

}  // namespace
}  // namespace cairn::provisioner

int main(int argc, char** argv) { return cairn::provisioner::Main(argc, argv); }
