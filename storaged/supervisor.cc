// brickd supervision: spawn or adopt, watch through a pidfd, restart with backoff.
#include "storaged/supervisor.h"

#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <sstream>
#include <vector>

#include "common/file_util.h"
#include "common/status_errno.h"
#include "common/status_grpc.h"

extern char** environ;

namespace cairn::storaged {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Restart backoff (docs/storaged.md): first restart at once, then 200 ms
// doubling up to 5 s; starts over once brickd stayed up for 30 s.
constexpr milliseconds kFirstBackoff{200};
constexpr milliseconds kMaxBackoff{5000};
constexpr milliseconds kStableAfter{30000};

int PidfdOpen(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }

int PidfdSignal(int pidfd, int sig) {
  return static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0));
}

// True once the process behind `pidfd` has exited (it may still be a zombie).
bool PidfdExited(int pidfd, milliseconds timeout) {
  pollfd p{pidfd, POLLIN, 0};
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
    int r = ::poll(&p, 1, static_cast<int>(std::max<int64_t>(0, left.count())));
    if (r > 0) return true;
    if (r == 0) return false;
    if (errno != EINTR) return false;
  }
}

bool HasArg(const std::vector<std::string>& args, const std::string& prefix) {
  return std::any_of(args.begin(), args.end(),
                     [&](const std::string& a) { return a.rfind(prefix, 0) == 0; });
}

std::string Basename(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::string DescribeWait(int status) {
  if (WIFEXITED(status)) return "exited with " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "killed by signal " + std::to_string(WTERMSIG(status));
  return "wait status " + std::to_string(status);
}

}  // namespace

StatusOr<std::string> FindBrickdBinary(const std::string& flag) {
  if (!flag.empty()) {
    if (::access(flag.c_str(), X_OK) != 0) {
      return Status::NotFound("--brickd " + flag + " is not an executable file");
    }
    // Absolute (brickd is found whatever the cwd), but not resolved: a
    // symlink named brickd stays what is run and what adoption looks for.
    if (flag[0] == '/') return flag;
    char cwd[PATH_MAX];
    if (::getcwd(cwd, sizeof(cwd)) == nullptr) return flag;
    return std::string(cwd) + "/" + flag;
  }
  std::vector<std::string> tried;
  char self[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n > 0) {
    self[n] = '\0';
    std::string beside = std::string(self).substr(0, std::string(self).rfind('/')) + "/brickd";
    if (::access(beside.c_str(), X_OK) == 0) return beside;
    tried.push_back(beside);
    // A build tree: build/storaged/storaged next to build/brickd/brickd.
    const std::string dir = std::string(self).substr(0, std::string(self).rfind('/'));
    const std::string tree = dir.substr(0, dir.rfind('/')) + "/brickd/brickd";
    if (::access(tree.c_str(), X_OK) == 0) return tree;
    tried.push_back(tree);
  }
  const char* path = ::getenv("PATH");
  std::stringstream dirs(path != nullptr ? path : "");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    if (dir.empty()) continue;
    std::string candidate = dir + "/brickd";
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  tried.push_back("$PATH");
  std::string where;
  for (const auto& t : tried) where += (where.empty() ? "" : ", ") + t;
  return Status::NotFound("no brickd executable found (tried " + where + "); pass --brickd");
}

BrickdSupervisor::BrickdSupervisor(SupervisorOptions options, std::function<Status()> on_ready,
                                   std::function<Status(int)> on_port)
    : options_(std::move(options)),
      on_ready_(std::move(on_ready)),
      on_port_(std::move(on_port)),
      port_(options_.port) {
  stop_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
}

BrickdSupervisor::~BrickdSupervisor() {
  Stop(milliseconds(10000));
  if (stop_fd_ >= 0) ::close(stop_fd_);
}

std::string BrickdSupervisor::pid_file() const { return options_.state_dir + "/brickd.pid"; }
std::string BrickdSupervisor::ready_file() const { return options_.state_dir + "/brickd.ready"; }
std::string BrickdSupervisor::listen_arg() const {
  return "--listen=" + options_.host + ":" + std::to_string(port_);
}

std::string BrickdSupervisor::address() const {
  std::lock_guard lock(mu_);
  return options_.host + ":" + std::to_string(port_);
}

pid_t BrickdSupervisor::pid() const {
  std::lock_guard lock(mu_);
  return pid_;
}

std::string BrickdSupervisor::down_reason() const {
  if (up_.load()) return "";
  std::lock_guard lock(mu_);
  return down_reason_;
}

bool BrickdSupervisor::Stopping() const {
  pollfd p{stop_fd_, POLLIN, 0};
  return ::poll(&p, 1, 0) > 0;
}

bool BrickdSupervisor::SleepUnlessStopped(milliseconds d) {
  if (d.count() <= 0) return !Stopping();
  pollfd p{stop_fd_, POLLIN, 0};
  const auto deadline = Clock::now() + d;
  for (;;) {
    auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return true;
    int r = ::poll(&p, 1, static_cast<int>(left.count()));
    if (r > 0) return false;
    if (r < 0 && errno != EINTR) return true;
  }
}

Status BrickdSupervisor::WritePidFile(pid_t pid, int port) {
  nlohmann::json j{{"pid", pid},
                   {"port", port},
                   {"address", options_.host + ":" + std::to_string(port)},
                   {"binary", options_.brickd_binary}};
  return WriteFileAtomic(pid_file(), j.dump() + "\n", 0644);
}

void BrickdSupervisor::Connect(int port) {
  grpc::ChannelArguments args;
  // A channel of our own per brickd incarnation: no subchannel (and no
  // reconnect backoff) shared with the channel to the brickd that died.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  auto channel = grpc::CreateCustomChannel(options_.host + ":" + std::to_string(port),
                                           grpc::InsecureChannelCredentials(), args);
  std::shared_ptr<bpb::BrickAdmin::Stub> stub(bpb::BrickAdmin::NewStub(channel));
  std::lock_guard lock(mu_);
  stub_ = std::move(stub);
}

std::shared_ptr<bpb::BrickAdmin::Stub> BrickdSupervisor::stub() const {
  std::lock_guard lock(mu_);
  return stub_;
}

Status BrickdSupervisor::WaitReady(pid_t pid, int pidfd, int* port) {
  const auto deadline = Clock::now() + options_.ready_timeout;
  pollfd fds[2] = {{pidfd, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
  for (;;) {
    auto text = ReadFile(ready_file());
    if (text.ok()) {
      auto j = nlohmann::json::parse(*text, nullptr, false);
      if (j.is_object() && j.value("pid", -1) == pid && j.value("grpc_port", 0) > 0) {
        *port = j.value("grpc_port", 0);
        return Status::Ok();
      }
    }
    if (Clock::now() > deadline) {
      return Status::DeadlineExceeded("brickd (pid " + std::to_string(pid) + ") not ready within " +
                                      std::to_string(options_.ready_timeout.count()) + " ms");
    }
    int r = ::poll(fds, 2, 5);
    if (r > 0 && (fds[1].revents & POLLIN) != 0)
      return Status(StatusCode::kCancelled, "storaged is stopping");
    if (r > 0 && (fds[0].revents & POLLIN) != 0) {
      std::string how;
      {
        std::lock_guard lock(mu_);
        how = ReapLocked();
      }
      return Status::Unavailable("brickd (pid " + std::to_string(pid) +
                                 ") exited before it was ready: " + how +
                                 " (its log is storaged's stderr)");
    }
  }
}

std::string BrickdSupervisor::ReapLocked() {
  std::string how = "exited";
  if (pid_ > 0 && child_) {
    int status = 0;
    pid_t r;
    do {
      r = ::waitpid(pid_, &status, 0);
    } while (r < 0 && errno == EINTR);
    if (r == pid_) how = DescribeWait(status);
  } else if (pid_ > 0) {
    how = "exited (adopted, exit status unknown)";
  }
  if (pidfd_ >= 0) ::close(pidfd_);
  pidfd_ = -1;
  pid_ = 0;
  child_ = false;
  return how;
}

Status BrickdSupervisor::SpawnAndWait() {
  if (::unlink(ready_file().c_str()) != 0 && errno != ENOENT) {
    return StatusFromErrno(errno, "remove " + ready_file());
  }
  int listen_port;
  {
    std::lock_guard lock(mu_);
    listen_port = port_;
  }
  std::vector<std::string> args = {
      options_.brickd_binary,
      "--listen=" + options_.host + ":" + std::to_string(listen_port),
      "--token-file=" + options_.token_file,
      "--admin-token-file=" + options_.admin_token_file,
      "--metrics-listen=" + options_.host + ":0",
      "--ready-file=" + ready_file(),
      "--log-level=" + options_.log_level,
  };
  if (options_.log_json) args.push_back("--log-json");
  if (options_.threads > 0) args.push_back("--threads=" + std::to_string(options_.threads));
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  // posix_spawn: safe in a threaded process. The child gets its own session
  // (a terminal's Ctrl-C is not for it), a clean signal mask, default
  // dispositions, /dev/null as stdin, our stdout/stderr, and no other fd.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, defaults;
  sigemptyset(&none);
  sigemptyset(&defaults);
  for (int sig : {SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGCHLD}) sigaddset(&defaults, sig);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSID);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);
  pid_t pid = 0;
  int err =
      ::posix_spawn(&pid, options_.brickd_binary.c_str(), &actions, &attr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (err != 0) return StatusFromErrno(err, "start " + options_.brickd_binary);
  // Our unreaped child: its pid cannot be reused, so the pidfd is the right one.
  int pidfd = PidfdOpen(pid);
  if (pidfd < 0) {
    Status s = StatusFromErrno(errno, "pidfd_open");
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    return s;
  }
  {
    std::lock_guard lock(mu_);
    pid_ = pid;
    pidfd_ = pidfd;
    child_ = true;
  }
  spdlog::info("event=brickd-started pid={} listen={}:{}", pid, options_.host, listen_port);
  if (Status s = WritePidFile(pid, listen_port); !s.ok()) {
    spdlog::warn("event=pid-file-failed error=\"{}\"", s.ToString());
  }
  int port = 0;
  Status ready = WaitReady(pid, pidfd, &port);
  if (!ready.ok()) {
    std::lock_guard lock(mu_);
    if (pid_ == pid) {
      PidfdSignal(pidfd_, SIGKILL);
      ReapLocked();
    }
    return ready;
  }
  if (listen_port == 0) {
    {
      std::lock_guard lock(mu_);
      port_ = port;
    }
    if (Status s = on_port_(port); !s.ok()) return s.WithContext("record brickd's port");
  } else if (port != listen_port) {
    return Status::Internal("brickd reports port " + std::to_string(port) + ", asked for " +
                            std::to_string(listen_port));
  }
  if (Status s = WritePidFile(pid, port); !s.ok()) {
    spdlog::warn("event=pid-file-failed error=\"{}\"", s.ToString());
  }
  Connect(port);
  return Status::Ok();
}

Status BrickdSupervisor::TryAdopt(bool* adopted) {
  *adopted = false;
  auto text = ReadFile(pid_file());
  if (!text.ok()) return Status::Ok();
  auto j = nlohmann::json::parse(*text, nullptr, false);
  if (!j.is_object() || !j.contains("pid") || !j["pid"].is_number_integer()) {
    spdlog::warn("event=brickd-not-adopted reason=\"unreadable {}\"", pid_file());
    return Status::Ok();
  }
  const pid_t pid = j["pid"].get<pid_t>();
  int recorded_port = j.value("port", 0);
  // Ours: a brickd writing the ready file of this state directory.
  auto is_ours = [&] {
    auto args = ProcessCmdline(pid);
    return !args.empty() && Basename(args[0]) == "brickd" &&
           HasArg(args, "--ready-file=" + ready_file());
  };
  if (pid <= 0 || !is_ours()) {
    spdlog::info("event=brickd-not-adopted pid={} reason=\"not running\"", pid);
    return Status::Ok();
  }
  int pidfd = PidfdOpen(pid);
  if (pidfd < 0 || !is_ours()) {
    if (pidfd >= 0) ::close(pidfd);
    spdlog::info("event=brickd-not-adopted pid={} reason=\"not running\"", pid);
    return Status::Ok();
  }
  auto replace = [&](const std::string& why) {
    spdlog::warn("event=brickd-replaced pid={} reason=\"{}\"", pid, why);
    KillAndWait(pidfd, pid, /*child=*/false, milliseconds(5000));
    ::close(pidfd);
    return Status::Ok();
  };
  if (recorded_port == 0) {
    // It was recorded before it was ready; its ready file may say more.
    auto ready = ReadFile(ready_file());
    auto r = ready.ok() ? nlohmann::json::parse(*ready, nullptr, false) : nlohmann::json();
    if (r.is_object() && r.value("pid", -1) == pid) recorded_port = r.value("grpc_port", 0);
  }
  auto args = ProcessCmdline(pid);
  if (recorded_port == 0) return replace("its port is unknown");
  if (!HasArg(args, "--listen=" + options_.host + ":")) {
    return replace("it listens elsewhere than " + options_.host);
  }
  int wanted;
  {
    std::lock_guard lock(mu_);
    wanted = port_;
  }
  if (wanted != 0 && wanted != recorded_port) {
    return replace("it serves port " + std::to_string(recorded_port) + ", configured " +
                   std::to_string(wanted));
  }
  Connect(recorded_port);
  // It must answer, or it is no use.
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", "Bearer " + options_.admin_token);
  ctx.set_deadline(std::chrono::system_clock::now() + milliseconds(5000));
  ctx.set_wait_for_ready(true);
  bpb::ListBricksReply listed;
  grpc::Status st = stub()->ListBricks(&ctx, bpb::ListBricksRequest(), &listed);
  if (!st.ok()) {
    {
      std::lock_guard lock(mu_);
      stub_.reset();
    }
    return replace("it does not answer: " + FromGrpcStatus(st, ctx).ToString());
  }
  {
    std::lock_guard lock(mu_);
    pid_ = pid;
    pidfd_ = pidfd;
    child_ = false;
    port_ = recorded_port;
  }
  if (wanted == 0) CAIRN_RETURN_IF_ERROR(on_port_(recorded_port));
  spdlog::info("event=brickd-adopted pid={} address={}:{} bricks_attached={}", pid, options_.host,
               recorded_port, listed.bricks_size());
  *adopted = true;
  return Status::Ok();
}

bool BrickdSupervisor::ExternalCheck(size_t* attached) {
  auto list = ListBricks();
  if (!list.ok()) {
    if (up_.exchange(false)) {
      spdlog::warn("event=brickd-unreachable address={} error=\"{}\"", address(),
                   list.status().message());
    }
    std::lock_guard lock(mu_);
    down_reason_ = "brickd at " + options_.host + ":" + std::to_string(port_) +
                   " does not answer: " + list.status().message();
    return false;
  }
  const size_t have = static_cast<size_t>(list->bricks_size());
  if (up_.load() && have >= *attached) return true;
  // First contact, back after being unreachable, or restarted (bricks gone).
  if (have < *attached) {
    restarts_.fetch_add(1);
    spdlog::warn("event=brickd-restarted-externally address={} bricks={} attached_before={}",
                 address(), have, *attached);
  }
  if (Status a = on_ready_(); !a.ok()) {
    spdlog::warn("event=attach-incomplete error=\"{}\"", a.ToString());
  }
  auto after = ListBricks();
  *attached = after.ok() ? static_cast<size_t>(after->bricks_size()) : 0;
  {
    std::lock_guard lock(mu_);
    down_reason_.clear();
  }
  up_ = true;
  spdlog::info("event=brickd-external-ready address={} bricks={}", address(), *attached);
  return true;
}

void BrickdSupervisor::ExternalLoop() {
  while (SleepUnlessStopped(options_.external_poll)) {
    const bool was_up = up_.load();
    if (!ExternalCheck(&external_attached_) && was_up) {
      Connect(port_);  // a fresh channel: no reconnect backoff from the old one
    }
  }
}

Status BrickdSupervisor::Start() {
  if (options_.external) {
    if (options_.port <= 0) {
      return Status::InvalidArgument("an external brickd needs a fixed port (--brickd-listen)");
    }
    {
      std::lock_guard lock(mu_);
      port_ = options_.port;
      down_reason_ = "waiting for brickd at " + options_.host + ":" + std::to_string(port_);
    }
    Connect(options_.port);
    // Wait for the first answer (brickd's container may start a little later), then go on.
    const auto deadline = Clock::now() + options_.ready_timeout;
    while (!ExternalCheck(&external_attached_) && Clock::now() < deadline) {
      if (!SleepUnlessStopped(milliseconds(200))) break;
    }
    if (!up_.load()) spdlog::warn("event=brickd-not-yet address={}", address());
    monitor_ = std::thread([this] { ExternalLoop(); });
    return Status::Ok();
  }
  bool adopted = false;
  CAIRN_RETURN_IF_ERROR(TryAdopt(&adopted));
  adopted_ = adopted;
  if (!adopted) CAIRN_RETURN_IF_ERROR(SpawnAndWait());
  if (Status s = on_ready_(); !s.ok()) {
    spdlog::warn("event=attach-incomplete error=\"{}\"", s.ToString());
  }
  {
    std::lock_guard lock(mu_);
    down_reason_.clear();
  }
  up_ = true;
  monitor_ = std::thread([this] { MonitorLoop(); });
  return Status::Ok();
}

void BrickdSupervisor::MonitorLoop() {
  int failures = 0;
  auto up_since = Clock::now();
  for (;;) {
    int pidfd;
    {
      std::lock_guard lock(mu_);
      pidfd = pidfd_;
    }
    if (pidfd >= 0) {
      pollfd fds[2] = {{pidfd, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
      int r = ::poll(fds, 2, -1);
      if (r < 0 && errno == EINTR) continue;
      if ((fds[1].revents & POLLIN) != 0) return;
      if ((fds[0].revents & POLLIN) == 0) continue;
      const auto died = Clock::now();
      up_ = false;
      std::string how;
      pid_t old;
      {
        std::lock_guard lock(mu_);
        old = pid_;
        how = ReapLocked();
        stub_.reset();
        down_reason_ = "brickd (pid " + std::to_string(old) + ") " + how + "; restarting";
      }
      auto up_for = std::chrono::duration_cast<milliseconds>(died - up_since);
      if (up_for >= kStableAfter) failures = 0;
      spdlog::warn("event=brickd-exited pid={} status=\"{}\" up_ms={}", old, how, up_for.count());
    }
    if (Stopping()) return;
    milliseconds delay{0};
    if (failures > 0) {
      delay = std::min<milliseconds>(kMaxBackoff, kFirstBackoff * (1 << std::min(failures - 1, 8)));
    }
    ++failures;
    if (!SleepUnlessStopped(delay)) return;
    const auto start = Clock::now();
    restarts_.fetch_add(1);
    Status s = SpawnAndWait();
    if (!s.ok()) {
      if (s.code() == StatusCode::kCancelled) return;
      spdlog::error("event=brickd-restart-failed attempt={} error=\"{}\"", failures, s.ToString());
      std::lock_guard lock(mu_);
      down_reason_ = "brickd does not start: " + s.message();
      continue;
    }
    if (Status a = on_ready_(); !a.ok()) {
      spdlog::warn("event=attach-incomplete error=\"{}\"", a.ToString());
    }
    {
      std::lock_guard lock(mu_);
      down_reason_.clear();
    }
    up_ = true;
    up_since = Clock::now();
    spdlog::info("event=brickd-restarted pid={} restarts={} delay_ms={} start_ms={}", pid(),
                 restarts_.load(), delay.count(),
                 std::chrono::duration_cast<milliseconds>(Clock::now() - start).count());
  }
}

void BrickdSupervisor::KillAndWait(int pidfd, pid_t pid, bool child, milliseconds grace) {
  if (PidfdSignal(pidfd, SIGTERM) == 0 && !PidfdExited(pidfd, grace)) {
    spdlog::warn("event=brickd-kill pid={} reason=\"no exit {} ms after SIGTERM\"", pid,
                 grace.count());
    PidfdSignal(pidfd, SIGKILL);
    PidfdExited(pidfd, milliseconds(5000));
  }
  if (child) {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
  }
}

void BrickdSupervisor::Stop(milliseconds grace) {
  if (stopped_.exchange(true)) return;
  uint64_t one = 1;
  if (stop_fd_ >= 0) (void)!::write(stop_fd_, &one, sizeof(one));
  {
    // A monitor busy attaching bricks gets its calls cancelled, not waited for.
    std::lock_guard lock(calls_mu_);
    calls_closed_ = true;
    for (grpc::ClientContext* ctx : calls_) ctx->TryCancel();
  }
  if (monitor_.joinable()) monitor_.join();
  pid_t pid;
  int pidfd;
  bool child;
  {
    std::lock_guard lock(mu_);
    pid = pid_;
    pidfd = pidfd_;
    child = child_;
    pid_ = 0;
    pidfd_ = -1;
    stub_.reset();
    down_reason_ = "storaged is stopping";
  }
  up_ = false;
  if (pidfd >= 0) {
    const auto start = Clock::now();
    KillAndWait(pidfd, pid, child, grace);
    ::close(pidfd);
    spdlog::info("event=brickd-stopped pid={} ms={}", pid,
                 std::chrono::duration_cast<milliseconds>(Clock::now() - start).count());
    ::unlink(pid_file().c_str());
  }
}

template <class Req, class Rep>
Status BrickdSupervisor::CallAdmin(
    grpc::Status (bpb::BrickAdmin::Stub::*method)(grpc::ClientContext*, const Req&, Rep*),
    const Req& req, Rep* rep, milliseconds timeout) {
  auto s = stub();
  if (!s) return Status::Unavailable("brickd is not running (it is being restarted)");
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", "Bearer " + options_.admin_token);
  ctx.set_deadline(std::chrono::system_clock::now() + timeout);
  {
    std::lock_guard lock(calls_mu_);
    if (calls_closed_) return Status::Unavailable("storaged is stopping");
    calls_.insert(&ctx);
  }
  grpc::Status st = (s.get()->*method)(&ctx, req, rep);
  {
    std::lock_guard lock(calls_mu_);
    calls_.erase(&ctx);
  }
  return FromGrpcStatus(st, ctx);
}

StatusOr<bpb::AttachReply> BrickdSupervisor::Attach(const bpb::AttachRequest& request,
                                                    milliseconds timeout) {
  bpb::AttachReply rep;
  CAIRN_RETURN_IF_ERROR(CallAdmin(&bpb::BrickAdmin::Stub::Attach, request, &rep,
                                  timeout.count() > 0 ? timeout : options_.rpc_timeout));
  return rep;
}

Status BrickdSupervisor::Detach(const std::string& brick_id) {
  bpb::DetachRequest req;
  req.set_brick_id(brick_id);
  bpb::Empty rep;
  return CallAdmin(&bpb::BrickAdmin::Stub::Detach, req, &rep, options_.rpc_timeout);
}

StatusOr<bpb::ListBricksReply> BrickdSupervisor::ListBricks() {
  bpb::ListBricksReply rep;
  CAIRN_RETURN_IF_ERROR(CallAdmin(&bpb::BrickAdmin::Stub::ListBricks, bpb::ListBricksRequest(),
                                  &rep, options_.rpc_timeout));
  return rep;
}

StatusOr<bpb::BrickInfo> BrickdSupervisor::SetCapacity(const std::string& brick_id,
                                                       uint64_t capacity_bytes) {
  bpb::SetCapacityRequest req;
  req.set_brick_id(brick_id);
  req.set_capacity_bytes(capacity_bytes);
  bpb::BrickInfo rep;
  CAIRN_RETURN_IF_ERROR(
      CallAdmin(&bpb::BrickAdmin::Stub::SetCapacity, req, &rep, options_.rpc_timeout));
  return rep;
}

}  // namespace cairn::storaged
