// cairn-csi: the CSI driver for Cairn file volumes (docs/csi.md).
//
//   cairn-csi --endpoint unix:///csi/csi.sock --node-id node1 --role both
//             --provisioner http://127.0.0.1:8080 --provisioner-key-file /etc/cairn/admin.key
//             --data-token-file /etc/cairn/data.token
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "cairnctl/local_cluster.h"
#include "cairnctl/settings.h"
#include "common/file_util.h"
#include "common/flags.h"
#include "common/log.h"
#include "common/status_grpc.h"
#include "csi/controller.h"
#include "csi/identity.h"
#include "csi/mounter.h"
#include "csi/node.h"

namespace cairn::csi {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

int UsageError(const std::string& message) {
  std::fprintf(stderr, "cairn-csi: %s\n", message.c_str());
  return kExitUsage;
}

// "unix:///path", "unix:/path" or "/path" → "/path".
StatusOr<std::string> SocketPath(const std::string& endpoint) {
  std::string p = endpoint;
  if (p.rfind("unix://", 0) == 0) {
    p = p.substr(7);
  } else if (p.rfind("unix:", 0) == 0) {
    p = p.substr(5);
  } else if (p.find("://") != std::string::npos) {
    return Status::InvalidArgument("--endpoint " + endpoint +
                                   ": only unix sockets are served (unix:///path/csi.sock)");
  }
  if (p.empty() || p[0] != '/') {
    return Status::InvalidArgument("--endpoint " + endpoint + ": the socket path must be absolute");
  }
  return p;
}

std::string HostName() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof(buf) - 1) != 0) return "";
  return buf;
}

int Main(int argc, char** argv) {
  Flags flags("cairn-csi", "CSI driver for Cairn file volumes (docs/csi.md)");
  flags.AddString("endpoint", "unix:///csi/csi.sock", "the CSI socket (unix:///path)");
  flags.AddString("node-id", "", "this node's id for NodeGetInfo (default: the host name)");
  flags.AddString("role", "both", "controller, node or both");
  flags.AddString("provisioner", "", "the provisioner URL (else CAIRN_SERVER or the context file)");
  flags.AddString("provisioner-user", "", "JWT issuer: admin or user (default admin)");
  flags.AddString("provisioner-key-file", "", "file holding the issuer's JWT key");
  flags.AddString("context", "", "cairnctl context file (default $CAIRN_CONFIG, ~/.cairn/config)");
  flags.AddString("data-token-file", "", "the bricks' data token the node mounts with");
  flags.AddString("state-dir", "/var/lib/cairn-csi", "node role: records of staged volumes");
  flags.AddString("mount-binary", "", "cairn-mount (default: beside cairn-csi, else $PATH)");
  flags.AddString("topology-cluster", "cairn", "value of the topology.cairn.io/cluster segment");
  flags.AddInt("health-interval-ms", 5000, "node role: staged mount check period (0: on demand)");
  flags.AddInt("mount-timeout-ms", 90000, "node role: longest a cairn-mount may take");
  flags.AddString("log-level", "info", "trace, debug, info, warn, error");
  flags.AddBool("log-json", false, "JSON log lines");
  if (Status s = flags.Parse(argc, argv); !s.ok()) return UsageError(s.message());
  if (flags.help_requested()) {
    std::fputs(flags.Usage().c_str(), stdout);
    return kExitOk;
  }
  if (!flags.positional().empty())
    return UsageError("unexpected argument " + flags.positional()[0]);
  if (Status s = InitLogging({.level = flags.GetString("log-level"),
                              .json = flags.GetBool("log-json"),
                              .name = "cairn-csi"});
      !s.ok()) {
    return UsageError(s.message());
  }
  const std::string role = flags.GetString("role");
  if (role != "controller" && role != "node" && role != "both") {
    return UsageError("--role must be controller, node or both, not \"" + role + "\"");
  }
  auto socket_path = SocketPath(flags.GetString("endpoint"));
  if (!socket_path.ok()) return UsageError(socket_path.status().message());
  const bool want_controller = role != "node";
  const bool want_node = role != "controller";

  // The provisioner and keys: flags, then CAIRN_* (or HEKETI_CLI_*), then the context file.
  ctl::SettingsFlags sf;
  if (flags.IsSet("provisioner")) sf.server = flags.GetString("provisioner");
  if (flags.IsSet("provisioner-user")) sf.user = flags.GetString("provisioner-user");
  if (flags.IsSet("provisioner-key-file")) sf.key_file = flags.GetString("provisioner-key-file");
  if (flags.IsSet("context")) sf.config = flags.GetString("context");
  if (flags.IsSet("data-token-file")) sf.data_token_file = flags.GetString("data-token-file");
  auto settings =
      ctl::ResolveSettings(sf, [](const char* n) -> const char* { return std::getenv(n); });
  if (!settings.ok()) return UsageError(settings.status().message());

  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  DisableMutexDeadlockDetection();

  std::unique_ptr<ControllerServer> controller;
  if (want_controller) {
    if (settings->server.empty()) {
      spdlog::warn(
          "event=no-provisioner msg=\"no provisioner configured; every call must carry a server "
          "secret\"");
    }
    controller = std::make_unique<ControllerServer>(ControllerOptions{
        .server = settings->server,
        .user = settings->user,
        .key = settings->key,
        .topology_value = flags.GetString("topology-cluster"),
        .rest = {},
    });
  }
  std::unique_ptr<NodeServer> node;
  if (want_node) {
    std::string binary = flags.GetString("mount-binary");
    if (binary.empty()) {
      auto found = ctl::FindBinary("cairn-mount", "fuse");
      if (!found.ok()) return UsageError(found.status().message());
      binary = *found;
    }
    std::string node_id = flags.GetString("node-id");
    if (node_id.empty()) node_id = HostName();
    if (node_id.empty()) return UsageError("--node-id is required (no host name)");
    node = std::make_unique<NodeServer>(NodeOptions{
        .node_id = node_id,
        .state_dir = flags.GetString("state-dir"),
        .mount_binary = binary,
        .data_token_file = settings->data_token_file,
        .topology_value = flags.GetString("topology-cluster"),
        .health_interval = std::chrono::milliseconds(flags.GetInt("health-interval-ms")),
        .mount_timeout = std::chrono::milliseconds(flags.GetInt("mount-timeout-ms")),
    });
    if (Status s = node->Start(); !s.ok()) {
      spdlog::critical("event=node-start-failed error=\"{}\"", s.message());
      std::fprintf(stderr, "cairn-csi: %s\n", s.message().c_str());
      return kExitFailure;
    }
  }
  IdentityServer identity(controller.get(), node.get());

  // A socket file left by an earlier run is replaced; the directory is made.
  const std::string dir = socket_path->substr(0, socket_path->rfind('/'));
  if (!dir.empty()) (void)MakeDirs(dir);
  ::unlink(socket_path->c_str());
  grpc::ServerBuilder builder;
  builder.AddListeningPort("unix:" + *socket_path, grpc::InsecureServerCredentials());
  builder.RegisterService(&identity);
  if (controller) builder.RegisterService(controller.get());
  if (node) builder.RegisterService(node.get());
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server) {
    std::fprintf(stderr, "cairn-csi: cannot listen on %s\n", socket_path->c_str());
    if (node) node->Stop();
    return kExitFailure;
  }
  ::chmod(socket_path->c_str(), 0660);
  spdlog::info("event=serving endpoint=unix://{} role={} provisioner={} user={}", *socket_path,
               role, settings->server, settings->user);

  int sig = 0;
  sigwait(&sigs, &sig);
  spdlog::info("event=shutdown signal={}", sig);
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  if (node) node->Stop();
  ::unlink(socket_path->c_str());
  spdlog::info("event=stopped");
  return kExitOk;
}

}  // namespace
}  // namespace cairn::csi

int main(int argc, char** argv) { return cairn::csi::Main(argc, argv); }
