// brickd: one process per node serving many bricks (brick multiplexing).
//
//   brickd --listen=127.0.0.2:24009 --token-file=/etc/cairn/data.token
//          --admin-token-file=/etc/cairn/admin.token --state-file=/var/lib/cairn/brickd.json
//
// Bricks are attached at run time through the BrickAdmin RPC (storaged does
// this); with --state-file a restarted brickd attaches them again itself.
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <httplib.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "brickd/metrics.h"
#include "brickd/registry.h"
#include "brickd/service.h"
#include "brickd/worker_pool.h"
#include "common/file_util.h"
#include "common/flags.h"
#include "common/log.h"
#include "common/malloc_tuning.h"
#include "common/status_grpc.h"

namespace cairn::brickd {
namespace {

void RaiseFdLimit() {
  struct rlimit rl;
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &rl);
  }
}

int Run(int argc, char** argv) {
  KeepIoBuffersInHeap();  // 1 MiB requests reuse warm heap pages (common/malloc_tuning.h)
  Flags flags("brickd", "Serves many bricks from one process (Cairn's data server).");
  flags.AddString("listen", "127.0.0.1:24009", "gRPC address host:port (port 0: any free port)");
  flags.AddString("token-file", "", "file holding the data-path bearer token (required)");
  flags.AddString("admin-token-file", "", "file holding the admin bearer token (required)");
  flags.AddString("metrics-listen", "127.0.0.1:0",
                  "Prometheus /metrics address host:port; empty disables");
  flags.AddString("state-file", "", "file recording attached bricks, re-attached at start");
  flags.AddString("ready-file", "",
                  "written once serving: {\"pid\",\"grpc_port\",\"metrics_port\"}");
  flags.AddInt("threads", 16, "worker threads doing file system work (all bricks share them)");
  flags.AddString("log-level", "info", "trace, debug, info, warn, error");
  flags.AddBool("log-json", false, "log one JSON object per line");
  if (Status s = flags.Parse(argc, argv); !s.ok()) {
    std::fprintf(stderr, "brickd: %s\n%s", s.message().c_str(), flags.Usage().c_str());
    return 2;
  }
  if (flags.help_requested()) {
    std::fputs(flags.Usage().c_str(), stdout);
    return 0;
  }
  DisableMutexDeadlockDetection();
  if (Status s = InitLogging({flags.GetString("log-level"), flags.GetBool("log-json"), "brickd"});
      !s.ok()) {
    std::fprintf(stderr, "brickd: %s\n", s.message().c_str());
    return 2;
  }
  if (flags.GetString("token-file").empty() || flags.GetString("admin-token-file").empty()) {
    spdlog::critical(
        "event=config-error reason=\"--token-file and --admin-token-file are required\"");
    return 2;
  }
  auto data_token = ReadSecretFile(flags.GetString("token-file"));
  auto admin_token = ReadSecretFile(flags.GetString("admin-token-file"));
  if (!data_token.ok() || !admin_token.ok()) {
    spdlog::critical("event=config-error reason=\"{}\"",
                     (!data_token.ok() ? data_token.status() : admin_token.status()).ToString());
    return 2;
  }
  int threads = static_cast<int>(flags.GetInt("threads"));
  if (threads < 2 || threads > 1024) {
    spdlog::critical("event=config-error reason=\"--threads must be 2..1024\"");
    return 2;
  }

  // Modes of created objects are set explicitly; the process umask must not interfere.
  ::umask(0);
  RaiseFdLimit();
  // Signals are taken by one thread with sigwait; every other thread blocks them.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  Authenticator auth(*data_token, *admin_token);
  BrickRegistry registry(flags.GetString("state-file"));
  if (Status s = registry.Restore(); !s.ok()) {
    spdlog::critical("event=restore-failed error=\"{}\"", s.ToString());
    return 1;
  }

  // File system work of every call, all bricks together.
  WorkerPool pool(threads, /*max_queued=*/1 << 16);
  BrickServiceImpl brick_service(&registry, &auth, &pool);
  BrickAdminServiceImpl admin_service(&registry, &auth, &pool);
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  int grpc_port = 0;
  builder.AddListeningPort(flags.GetString("listen"), grpc::InsecureServerCredentials(),
                           &grpc_port);
  builder.RegisterService(&brick_service);
  builder.RegisterService(&admin_service);
  // A write carries up to kMaxIoBytes of payload plus a small header.
  builder.SetMaxReceiveMessageSize(static_cast<int>(kMaxIoBytes + (64 << 10)));
  builder.SetMaxSendMessageSize(static_cast<int>(kMaxIoBytes + (64 << 10)));
  // One listener per address: without this, gRPC binds port 0 several times
  // (SO_REUSEPORT) and lets a second brickd share a taken port.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || grpc_port == 0) {
    spdlog::critical("event=listen-failed address={}", flags.GetString("listen"));
    return 1;
  }

  httplib::Server metrics;
  std::thread metrics_thread;
  int metrics_port = 0;
  if (const std::string& addr = flags.GetString("metrics-listen"); !addr.empty()) {
    auto hp = SplitHostPort(addr);
    if (!hp.ok()) {
      spdlog::critical("event=config-error reason=\"--metrics-listen: {}\"", hp.status().message());
      return 2;
    }
    metrics.new_task_queue = [] { return new httplib::ThreadPool(1); };
    metrics.Get("/metrics", [&](const httplib::Request& req, httplib::Response& res) {
      if (Status s = auth.CheckHeader(req.get_header_value("Authorization"), Role::kData);
          !s.ok()) {
        res.status = 401;
        res.set_content(s.message() + "\n", "text/plain");
        return;
      }
      std::vector<BrickMetricsView> views;
      auto bricks = registry.List();
      views.reserve(bricks.size());
      for (const auto& b : bricks) {
        views.push_back({b->id(), b->capacity_bytes(), b->used_bytes(), &b->stats()});
      }
      res.set_content(RenderPrometheus(views), "text/plain; version=0.0.4");
    });
    metrics.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("ok\n", "text/plain");
    });
    metrics_port = hp->second == 0
                       ? metrics.bind_to_any_port(hp->first)
                       : (metrics.bind_to_port(hp->first, hp->second) ? hp->second : -1);
    if (metrics_port <= 0) {
      spdlog::critical("event=listen-failed address={}", addr);
      return 1;
    }
    metrics_thread = std::thread([&] { metrics.listen_after_bind(); });
  }

  spdlog::info("event=serving grpc={} grpc_port={} metrics_port={} bricks={} threads={}",
               flags.GetString("listen"), grpc_port, metrics_port, registry.size(), threads);
  if (const std::string& ready = flags.GetString("ready-file"); !ready.empty()) {
    nlohmann::json j{{"pid", ::getpid()}, {"grpc_port", grpc_port}, {"metrics_port", metrics_port}};
    if (Status s = WriteFileAtomic(ready, j.dump() + "\n", 0644); !s.ok()) {
      spdlog::error("event=ready-file-failed error=\"{}\"", s.ToString());
    }
  }

  int sig = 0;
  sigwait(&sigs, &sig);
  spdlog::info("event=shutdown signal={}", sig);
  // In-flight calls get a moment to finish; idle client connections are not waited for.
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(500));
  if (metrics_thread.joinable()) {
    metrics.stop();
    metrics_thread.join();
  }
  registry.CloseAll();
  spdlog::info("event=stopped");
  return 0;
}

}  // namespace
}  // namespace cairn::brickd

int main(int argc, char** argv) { return cairn::brickd::Run(argc, argv); }
