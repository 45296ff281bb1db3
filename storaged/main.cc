// storaged: the per-node daemon (glusterd's role). Owns the node's devices,
// bricks and volume specs, runs and supervises the node's one brickd, and
// serves volume specs to clients. See docs/storaged.md.
//
//   storaged --listen=127.0.0.2:24007 --state-dir=/var/lib/cairn/storaged
//            --token-file=/etc/cairn/data.token --admin-token-file=/etc/cairn/admin.token
//   storagectl --server=127.0.0.2:24007 --token-file=/etc/cairn/admin.token node
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <httplib.h>
#include <limits.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/file_util.h"
#include "common/flags.h"
#include "common/log.h"
#include "common/status_errno.h"
#include "common/status_grpc.h"
#include "storaged/heal_engine.h"
#include "storaged/heal_hook.h"
#include "storaged/manager.h"
#include "storaged/metrics.h"
#include "storaged/registration.h"
#include "storaged/service.h"
#include "storaged/state.h"
#include "storaged/supervisor.h"

#ifndef CAIRN_VERSION
#define CAIRN_VERSION "unknown"
#endif

namespace cairn::storaged {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

std::string Absolute(const std::string& path) {
  char real[PATH_MAX];
  return ::realpath(path.c_str(), real) != nullptr ? std::string(real) : path;
}

std::string HostName() {
  char name[256] = {};
  if (::gethostname(name, sizeof(name) - 1) != 0) return "localhost";
  return name;
}

// An address that listens on every interface: not one a peer can dial.
bool IsWildcardHost(const std::string& host) {
  return host.empty() || host == "0.0.0.0" || host == "::" || host == "[::]";
}

int64_t UnixMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// mkdir -p with mode 0700 for the parts we create.
Status MakeDirs(const std::string& path) {
  for (size_t i = 1; i <= path.size(); ++i) {
    if (i == path.size() || path[i] == '/') {
      std::string part = path.substr(0, i);
      if (::mkdir(part.c_str(), 0700) != 0 && errno != EEXIST) {
        return StatusFromErrno(errno, "mkdir " + part);
      }
    }
  }
  return Status::Ok();
}

// One storaged per state directory: an exclusive flock on STATE_DIR/lock,
// held for the life of the process (released by the kernel if it dies).
StatusOr<int> LockStateDir(const std::string& dir) {
  const std::string path = dir + "/lock";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return StatusFromErrno(errno, "open " + path);
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int e = errno;
    std::string holder = ReadFile(path).ok() ? *ReadFile(path) : "";
    while (!holder.empty() && holder.back() == '\n') holder.pop_back();
    ::close(fd);
    if (e == EWOULDBLOCK) {
      return Status::FailedPrecondition("state dir " + dir + " is in use by another storaged" +
                                        (holder.empty() ? "" : " (pid " + holder + ")"));
    }
    return StatusFromErrno(e, "flock " + path);
  }
  std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) == 0) (void)!::pwrite(fd, pid.data(), pid.size(), 0);
  return fd;
}

int Run(int argc, char** argv) {
  Flags flags("storaged",
              "Cairn's node daemon: devices, bricks, volume specs; supervises the node's brickd.");
  flags.AddString("listen", "127.0.0.1:24007", "gRPC API address host:port (port 0: any)");
  flags.AddString("state-dir", "", "directory holding all of storaged's state (required)");
  flags.AddString("node-name", "", "this node's name (default: the host name)");
  flags.AddString("brickd-listen", "",
                  "brickd's data address as written in volume specs (default: the host of "
                  "--listen, port 24009; port 0: chosen at brickd's first start, then kept)");
  flags.AddString("brickd", "",
                  "the brickd executable (default: beside storaged, else ../brickd/brickd of a "
                  "build tree, else $PATH)");
  flags.AddBool("brickd-external", false,
                "brickd runs on its own (e.g. its own container) at --brickd-listen (a fixed "
                "port): storaged neither starts nor stops it, and attaches the bricks whenever "
                "a (re)started brickd answers");
  flags.AddString("token-file", "", "file holding the cluster's data token (required)");
  flags.AddBool("heal", true, "run the self-heal daemon for the replicated volumes of this node");
  flags.AddInt("heal-parallel", 8, "objects healed at once per volume");
  flags.AddInt("heal-threads", 2,
               "threads polling every volume's healer (one pool per node, not a thread per "
               "volume); more, up to 64, while all are busy. 0: a thread per volume");
  flags.AddInt("heal-interval-ms", 250, "how often the dirty indexes are polled");
  flags.AddBool("heal-peer-copy", true,
                "data heals copy brick to brick (the sink's brickd reads from the source's); "
                "false: through storaged");
  flags.AddInt("heal-idle-interval-ms", 4000,
               "a quiet volume (nothing dirty, every replica up) is polled ever less often, "
               "up to this");
  flags.AddInt("heal-full-crawl-s", 600, "period of the safety-net full crawl; 0: never");
  flags.AddInt("heal-block-size", 128 * 1024,
               "data heal granularity in bytes (power of two, 4 KiB .. 4 MiB)");
  flags.AddString("admin-token-file", "",
                  "file holding the admin token for this API and brickd's admin (required)");
  flags.AddString(
      "metrics-listen", "",
      "HTTP /metrics and /healthz address host:port (default: host of --listen, port 0)");
  flags.AddString("ready-file", "",
                  "written once serving: {\"listen\",\"metrics\",\"brickd\",\"pid\"}");
  flags.AddInt("brickd-threads", 0, "brickd --threads (0: brickd's default)");
  flags.AddStringList("device",
                      "ID=PATH[:GiB]: a device added at start (idempotent; capacity omitted or "
                      "0: the file system's size)");
  flags.AddString("provisioner", "",
                  "register with this provisioner at every start: http://host:port or "
                  "https://host:port (empty: no registration)");
  flags.AddString("join-key-file", "",
                  "file whose first line is the provisioner's join key (JWT HS256, iss node); "
                  "required with --provisioner");
  flags.AddString("provisioner-ca-file", "",
                  "PEM CA bundle to verify an https provisioner with (default: the system's)");
  flags.AddInt("zone", 1, "this node's failure zone, sent at registration (>= 0)");
  flags.AddString("storage-host", "",
                  "host clients reach this node's bricks at, sent at registration (default: the "
                  "host of --listen)");
  flags.AddString("cluster", "",
                  "provisioner cluster id to join (default: the provisioner's choice)");
  flags.AddString("log-level", "info", "trace, debug, info, warn, error");
  flags.AddBool("log-json", false, "log one JSON object per line");
  if (Status s = flags.Parse(argc, argv); !s.ok()) {
    std::fprintf(stderr, "storaged: %s\n%s", s.message().c_str(), flags.Usage().c_str());
    return kExitUsage;
  }
  if (flags.help_requested()) {
    std::fputs(flags.Usage().c_str(), stdout);
    return kExitOk;
  }
  if (!flags.positional().empty()) {
    std::fprintf(stderr, "storaged: unexpected argument '%s'\n", flags.positional()[0].c_str());
    return kExitUsage;
  }
  DisableMutexDeadlockDetection();
  if (Status s = InitLogging({flags.GetString("log-level"), flags.GetBool("log-json"), "storaged"});
      !s.ok()) {
    std::fprintf(stderr, "storaged: %s\n", s.message().c_str());
    return kExitUsage;
  }
  auto config_error = [](const std::string& why) {
    spdlog::critical("event=config-error reason=\"{}\"", why);
    std::fprintf(stderr, "storaged: %s\n", why.c_str());
    return kExitUsage;
  };
  const std::string state_dir = flags.GetString("state-dir");
  if (state_dir.empty()) return config_error("--state-dir is required");
  if (flags.GetString("token-file").empty() || flags.GetString("admin-token-file").empty()) {
    return config_error("--token-file and --admin-token-file are required");
  }
  auto data_token = ReadSecretFile(flags.GetString("token-file"));
  if (!data_token.ok()) return config_error("--token-file: " + data_token.status().message());
  auto admin_token = ReadSecretFile(flags.GetString("admin-token-file"));
  if (!admin_token.ok()) {
    return config_error("--admin-token-file: " + admin_token.status().message());
  }
  if (ConstantTimeEquals(*data_token, *admin_token)) {
    return config_error("the admin token must differ from the data token");
  }
  auto listen = SplitHostPort(flags.GetString("listen"));
  if (!listen.ok()) return config_error("--listen: " + listen.status().message());
  const std::string brickd_flag = flags.GetString("brickd-listen").empty()
                                      ? listen->first + ":24009"
                                      : flags.GetString("brickd-listen");
  auto brickd_listen = SplitHostPort(brickd_flag);
  if (!brickd_listen.ok())
    return config_error("--brickd-listen: " + brickd_listen.status().message());
  const std::string metrics_flag = flags.GetString("metrics-listen").empty()
                                       ? listen->first + ":0"
                                       : flags.GetString("metrics-listen");
  auto metrics_listen = SplitHostPort(metrics_flag);
  if (!metrics_listen.ok()) {
    return config_error("--metrics-listen: " + metrics_listen.status().message());
  }
  const int heal_threads = static_cast<int>(flags.GetInt("heal-threads"));
  if (heal_threads < 0 || heal_threads > 64) return config_error("--heal-threads must be 0..64");
  const int brickd_threads = static_cast<int>(flags.GetInt("brickd-threads"));
  if (brickd_threads != 0 && (brickd_threads < 2 || brickd_threads > 1024)) {
    return config_error("--brickd-threads must be 0 or 2..1024");
  }
  const bool brickd_external = flags.GetBool("brickd-external");
  auto brickd_binary = brickd_external ? StatusOr<std::string>(std::string())
                                       : FindBrickdBinary(flags.GetString("brickd"));
  if (!brickd_binary.ok()) return config_error(brickd_binary.status().message());
  const std::string node_name =
      flags.GetString("node-name").empty() ? HostName() : flags.GetString("node-name");

  std::vector<DeviceFlag> devices;
  for (const std::string& text : flags.GetStringList("device")) {
    auto d = ParseDeviceFlag(text);
    if (!d.ok()) return config_error(d.status().message());
    devices.push_back(std::move(*d));
  }
  // Self-registration (docs/storaged.md, "Registration"): checked here, started once serving.
  const int64_t zone = flags.GetInt("zone");
  if (zone < 0 || zone > INT32_MAX) return config_error("--zone must be an integer >= 0");
  std::string storage_host = flags.GetString("storage-host");
  if (storage_host.empty()) {
    storage_host = IsWildcardHost(listen->first) ? HostName() : listen->first;
  } else if (storage_host.find_first_of(" \t/") != std::string::npos) {
    return config_error("--storage-host must be a host name or address");
  }
  // The API as the provisioner dials it: the host of --listen, unless that
  // is a wildcard address, then the storage host.
  const std::string manage_host = IsWildcardHost(listen->first) ? storage_host : listen->first;
  const std::string cluster = flags.GetString("cluster");
  if (cluster.size() > 128 ||
      cluster.find_first_not_of(
          "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") !=
          std::string::npos) {
    return config_error("--cluster must match [A-Za-z0-9._-]{0,128}");
  }
  std::unique_ptr<Registrar> registrar;
  if (const std::string& url = flags.GetString("provisioner"); !url.empty()) {
    if (flags.GetString("join-key-file").empty()) {
      return config_error("--join-key-file is required with --provisioner");
    }
    auto key = ReadSecretFile(flags.GetString("join-key-file"));
    if (!key.ok()) return config_error("--join-key-file: " + key.status().message());
    if (key->size() < 16) return config_error("--join-key-file: the key is shorter than 16 bytes");
    RegistrarOptions ro;
    ro.provisioner = url;
    ro.ca_file = flags.GetString("provisioner-ca-file");
    ro.join_key = std::move(*key);
    auto r = Registrar::Create(std::move(ro));
    if (!r.ok()) return config_error("--provisioner: " + r.status().message());
    registrar = std::move(*r);
  } else {
    for (const char* f :
         {"join-key-file", "provisioner-ca-file", "zone", "storage-host", "cluster"}) {
      if (flags.IsSet(f))
        spdlog::warn("event=flag-ignored flag=--{} reason=\"no --provisioner\"", f);
    }
  }

  if (Status s = MakeDirs(state_dir); !s.ok()) return config_error(s.message());
  auto lock_fd = LockStateDir(state_dir);
  if (!lock_fd.ok()) {
    spdlog::critical("event=state-dir-locked error=\"{}\"", lock_fd.status().message());
    std::fprintf(stderr, "storaged: %s\n", lock_fd.status().message().c_str());
    return kExitFailure;
  }
  auto state = std::make_unique<NodeState>();
  auto state_store = StateStore::Open(state_dir, state.get());
  if (!state_store.ok()) {
    spdlog::critical("event=state-corrupt error=\"{}\"", state_store.status().message());
    std::fprintf(stderr, "storaged: %s\n", state_store.status().message().c_str());
    return kExitFailure;
  }
  spdlog::info("event=state-loaded path={} devices={} bricks={} specs={} brickd_port={}",
               (*state_store)->path(), state->devices.size(), state->bricks.size(),
               state->specs.size(), state->brickd_port);

  // Signals are taken by one thread with sigwait; every other thread blocks them.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  const int configured_port = brickd_listen->second;
  const int brickd_port = configured_port != 0 ? configured_port : state->brickd_port;
  Manager manager(state_store->get(), std::move(*state));
  SpecHub hub;
  manager.SetSpecListener(
      [&hub](const std::string& name, const SpecRecord* now) { hub.Publish(name, now); });
  for (const auto& [name, rec] : manager.Snapshot().specs) hub.Publish(name, &rec);
  // --device flags: added like AddDevice (an identical existing device is fine).
  for (const DeviceFlag& d : devices) {
    spb::AddDeviceRequest req;
    req.set_device_id(d.id);
    req.set_path(d.path);
    req.set_capacity_bytes(d.capacity_bytes);
    auto added = manager.AddDevice(req);
    if (!added.ok()) {
      spdlog::critical("event=device-flag-failed device={} path={} error=\"{}\"", d.id, d.path,
                       added.status().ToString());
      std::fprintf(stderr, "storaged: --device %s: %s\n", d.id.c_str(),
                   added.status().ToString().c_str());
      return kExitFailure;
    }
    spdlog::info("event=device-flag device={} path={} capacity_bytes={} created={}", d.id,
                 added->device().path(), added->device().capacity_bytes(), added->created());
  }

  SupervisorOptions so;
  so.brickd_binary = *brickd_binary;
  so.external = brickd_external;
  so.host = brickd_listen->first;
  so.port = brickd_port;
  // brickd reads the token files itself: absolute paths, whatever its cwd.
  so.token_file = Absolute(flags.GetString("token-file"));
  so.admin_token_file = Absolute(flags.GetString("admin-token-file"));
  so.admin_token = *admin_token;
  so.state_dir = state_dir;
  so.log_level = flags.GetString("log-level");
  so.log_json = flags.GetBool("log-json");
  so.threads = brickd_threads;
  BrickdSupervisor supervisor(
      so, [&manager] { return manager.AttachAll(); },
      [&manager](int port) { return manager.SetBrickdPort(port); });
  manager.SetSupervisor(&supervisor);
  if (configured_port != 0 && manager.brickd_port() != configured_port) {
    if (Status s = manager.SetBrickdPort(configured_port); !s.ok()) {
      spdlog::critical("event=state-write-failed error=\"{}\"", s.ToString());
      return kExitFailure;
    }
  }
  if (Status s = supervisor.Start(); !s.ok()) {
    spdlog::critical("event=brickd-start-failed error=\"{}\"", s.ToString());
    std::fprintf(stderr, "storaged: cannot start brickd: %s\n", s.ToString().c_str());
    return kExitFailure;
  }
  manager.SetBrickdAddress(supervisor.address());

  // ---- Self-heal: the ONE place where the heal engine is plugged in. ----
  // HealEngine (storaged/heal_engine.h) implements storaged::HealHook: one
  // heal::VolumeHealer per replicated volume with a brick on this node.
  std::unique_ptr<HealHook> heal;
  if (flags.GetBool("heal")) {
    heal::Options ho;
    ho.token = *data_token;
    // Data heals copy brick to brick (the cluster's brickds share the admin
    // token; one that does not take it gets copies through this process).
    if (flags.GetBool("heal-peer-copy")) ho.admin_token = *admin_token;
    ho.parallel = static_cast<int>(flags.GetInt("heal-parallel"));
    ho.interval = std::chrono::milliseconds(flags.GetInt("heal-interval-ms"));
    ho.idle_interval = std::chrono::milliseconds(flags.GetInt("heal-idle-interval-ms"));
    ho.full_crawl_interval = std::chrono::seconds(flags.GetInt("heal-full-crawl-s"));
    ho.block_size = static_cast<uint32_t>(flags.GetInt("heal-block-size"));
    // One pool polls every healer of the node (a node with 500 volumes had
    // 500 healer threads); healers keep it alive until the last one stops.
    if (heal_threads > 0) ho.scheduler = std::make_shared<heal::Scheduler>(heal_threads, 64);
    heal = std::make_unique<HealEngine>(ho);
  }
  manager.SetHealHook(heal.get());
  manager.NotifyHeal();

  Authenticator auth(*data_token, *admin_token);
  RpcCounters counters;
  StoragedServiceImpl service(&manager, &supervisor, &auth, &hub, &counters, heal.get());
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  int api_port = 0;
  builder.AddListeningPort(flags.GetString("listen"), grpc::InsecureServerCredentials(), &api_port);
  builder.RegisterService(&service);
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  // Spec watchers ping an idle stream every 30 s (client/spec_fetch.cc).
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 20000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || api_port == 0) {
    spdlog::critical("event=listen-failed address={}", flags.GetString("listen"));
    std::fprintf(stderr, "storaged: cannot listen on %s\n", flags.GetString("listen").c_str());
    supervisor.Stop(std::chrono::seconds(10));
    return kExitFailure;
  }
  const std::string api_address = listen->first + ":" + std::to_string(api_port);
  std::atomic<bool> serving{true};

  httplib::Server http;
  http.new_task_queue = [] { return new httplib::ThreadPool(2); };
  http.Get("/metrics", [&](const httplib::Request& req, httplib::Response& res) {
    if (Status s = auth.CheckHeader(req.get_header_value("Authorization"), Role::kData, "/metrics");
        !s.ok()) {
      res.status = 401;
      res.set_content(s.message() + "\n", "text/plain");
      return;
    }
    MetricsView v;
    v.brickd_up = supervisor.up();
    v.brickd_restarts = supervisor.restarts();
    v.figures = manager.GetFigures();
    v.watchers = hub.watchers();
    v.rpcs = counters.Snapshot();
    v.registered = registrar != nullptr && registrar->registered();
    res.set_content(RenderPrometheus(v), "text/plain; version=0.0.4");
  });
  http.Get("/healthz", [&](const httplib::Request&, httplib::Response& res) {
    if (!serving.load()) {
      res.status = 503;
      res.set_content("storaged is shutting down\n", "text/plain");
    } else if (!supervisor.up()) {
      res.status = 503;
      res.set_content("brickd is down: " + supervisor.down_reason() + "\n", "text/plain");
    } else {
      res.set_content("ok\n", "text/plain");
    }
  });
  const int metrics_port = metrics_listen->second == 0
                               ? http.bind_to_any_port(metrics_listen->first)
                               : (http.bind_to_port(metrics_listen->first, metrics_listen->second)
                                      ? metrics_listen->second
                                      : -1);
  if (metrics_port <= 0) {
    spdlog::critical("event=listen-failed address={}", metrics_flag);
    std::fprintf(stderr, "storaged: cannot listen on %s\n", metrics_flag.c_str());
    server->Shutdown();
    supervisor.Stop(std::chrono::seconds(10));
    return kExitFailure;
  }
  std::thread http_thread([&] { http.listen_after_bind(); });
  const std::string metrics_address = metrics_listen->first + ":" + std::to_string(metrics_port);
  service.SetIdentity({node_name, api_address, metrics_address, CAIRN_VERSION, UnixMillis()});

  // The gRPC health service follows /healthz.
  std::mutex health_mu;
  std::condition_variable health_cv;
  bool health_stop = false;
  std::thread health_thread([&] {
    std::unique_lock lock(health_mu);
    bool last = false, first = true;
    while (!health_stop) {
      bool up = supervisor.up();
      if (first || up != last) {
        server->GetHealthCheckService()->SetServingStatus(up);
        last = up;
        first = false;
      }
      health_cv.wait_for(lock, std::chrono::milliseconds(250));
    }
  });

  spdlog::info("event=serving node={} api={} metrics={} brickd={} brickd_pid={} adopted={}",
               node_name, api_address, metrics_address, supervisor.address(), supervisor.pid(),
               supervisor.adopted());
  const std::string ready_file = flags.GetString("ready-file");
  const nlohmann::json ready_json{{"listen", api_address},
                                  {"metrics", metrics_address},
                                  {"brickd", supervisor.address()},
                                  {"pid", ::getpid()}};
  if (!ready_file.empty()) {
    if (Status s = WriteFileAtomic(ready_file, ready_json.dump() + "\n", 0644); !s.ok()) {
      spdlog::error("event=ready-file-failed error=\"{}\"", s.ToString());
    }
  }
  // Registration runs beside serving and never delays readiness; once it
  // succeeds the ready file is rewritten with the provisioner's node id.
  if (registrar) {
    RegistrationRequest rr;
    rr.name = node_name;
    rr.manage = manage_host + ":" + std::to_string(api_port);
    rr.storage = storage_host;
    rr.zone = zone;
    rr.cluster = cluster;
    registrar->Start(std::move(rr), [&ready_file, ready_json](const Registration& reg) {
      if (ready_file.empty()) return;
      nlohmann::json j = ready_json;
      j["provisioner_node_id"] = reg.node_id;
      j["provisioner_cluster"] = reg.cluster;
      if (Status s = WriteFileAtomic(ready_file, j.dump() + "\n", 0644); !s.ok()) {
        spdlog::error("event=ready-file-failed error=\"{}\"", s.ToString());
      }
    });
  }

  int sig = 0;
  sigwait(&sigs, &sig);
  spdlog::info("event=shutdown signal={}", sig);
  serving = false;
  if (registrar) registrar->RequestStop();  // wakes its backoff wait now
  hub.Close();                              // watch streams end now, not at the deadline
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(1000));
  {
    std::lock_guard lock(health_mu);
    health_stop = true;
  }
  health_cv.notify_all();
  health_thread.join();
  http.stop();
  http_thread.join();
  if (registrar) registrar->Stop();  // aborts a request in flight, joins
  if (heal) heal->Stop();
  supervisor.Stop(std::chrono::seconds(10));
  ::close(*lock_fd);
  spdlog::info("event=stopped");
  return kExitOk;
}

}  // namespace
}  // namespace cairn::storaged

int main(int argc, char** argv) { return cairn::storaged::Run(argc, argv); }
