// brick_mux_bench: what one more brick costs in Cairn's brick-multiplexing brickd, measured side
// by side with GlusterFS's brick multiplexing in the same run on the same machine.
//
// It starts ONE brickd (fresh tokens, fresh temporary directory), attaches --bricks fresh empty
// bricks through BrickAdmin.Attach one call at a time (each timed on the client's wall clock),
// and reports the processes, listening TCP ports, threads and resident memory (VmRSS) serving
// them, the attach latency, and a quick serving check (StatFs on random bricks with the data
// token, a timed Detach). With --gluster it starts a private glusterd with
// cluster.brick-multiplex on, creates and starts --gluster-volumes single-brick volumes (each
// create+start timed), measures the glusterfsd brick process(es) the same way, and prints
// Cairn/GlusterFS ratios. Output: a human-readable report, then one JSON line.
//
//   cmake --build build -j2 --target brickd brick_mux_bench
//   ./build/bench/brick_mux_bench [--bricks 1000] [--gluster [--gluster-volumes 50]]
//
// A benchmark, not a test: it exits 0 even when a target is missed, non-zero only when something
// broke (1) or it was interrupted (130). Every process it starts is stopped by pid and its
// temporary directory removed on every exit path, Ctrl-C included. See bench/README.md.
#include <arpa/inet.h>
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spdlog/fmt/fmt.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "common/file_util.h"
#include "common/flags.h"
#include "common/id.h"
#include "common/status.h"
#include "common/status_grpc.h"
#include "proto/brick.grpc.pb.h"

#ifndef CAIRN_BRICKD_DEFAULT_PATH
#define CAIRN_BRICKD_DEFAULT_PATH "brickd"
#endif

namespace cairn::bench {
namespace {

namespace fs = std::filesystem;
namespace pb = ::cairn::brick::v1;
using Clock = std::chrono::steady_clock;
using nlohmann::json;

// Targets from the brick-multiplexing issue.
constexpr double kTargetKibPerBrick = 64.0;
constexpr double kTargetAttachP99Ms = 5.0;
// Reference figures for GlusterFS 10.3 brick-multiplex on this kind of machine (from the issue).
constexpr char kGlusterReference[] =
    "~1,000 KiB per extra brick, 110-140 ms per volume create+start";
constexpr int kGlusterdPort = 24007;

double MsBetween(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

std::string ErrnoText(int err) { return std::strerror(err); }

// ---- Signals: SIGINT/SIGTERM/SIGHUP only set a flag; the main thread notices it between steps
// (every RPC and command has a deadline) and unwinds through the normal cleanup.

std::atomic<int> g_signal{0};

void InstallSignalThread() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  // Before any thread exists, so that every thread (gRPC's included) inherits the mask.
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  sigaction(SIGPIPE, &ignore, nullptr);
  std::thread([set] {
    for (;;) {
      int sig = 0;
      if (sigwait(&set, &sig) != 0) return;
      g_signal.store(sig);
      static constexpr char kMsg[] = "\nbrick_mux_bench: interrupted; cleaning up\n";
      if (::write(STDERR_FILENO, kMsg, sizeof(kMsg) - 1) < 0) {
      }
    }
  }).detach();
}

Status CheckInterrupted() {
  int sig = g_signal.load();
  if (sig == 0) return Status::Ok();
  return Status::Aborted(fmt::format("interrupted by signal {} ({})", sig, strsignal(sig)));
}

// Sleeps `ms` milliseconds, waking early on a signal.
void SleepMs(int ms) {
  auto until = Clock::now() + std::chrono::milliseconds(ms);
  while (g_signal.load() == 0 && Clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(std::min(ms, 20)));
  }
}

// ---- Small text helpers.

std::vector<std::string> SplitWhitespace(std::string_view s) {
  std::vector<std::string> out;
  std::istringstream in{std::string(s)};
  std::string tok;
  while (in >> tok) out.push_back(tok);
  return out;
}

std::string Join(const std::vector<std::string>& parts, std::string_view sep) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i > 0) out += sep;
    out += parts[i];
  }
  return out;
}

// The last `lines` lines of a log file, indented, for error messages.
std::string LogTail(const fs::path& path, size_t lines = 20) {
  auto text = ReadFile(path.string());
  if (!text.ok() || text->empty()) return "  (" + path.string() + " is empty or missing)";
  std::vector<std::string> all;
  std::istringstream in(*text);
  std::string line;
  while (std::getline(in, line)) all.push_back(line);
  size_t from = all.size() > lines ? all.size() - lines : 0;
  std::string out = "  --- last lines of " + path.string() + " ---";
  for (size_t i = from; i < all.size(); ++i) out += "\n  " + all[i];
  return out;
}

// ---- /proc readers.

std::optional<std::string> ReadText(const std::string& path) {
  auto r = ReadFile(path);
  if (!r.ok()) return std::nullopt;
  return std::move(r).value();
}

// A numeric field of /proc/<pid>/status ("VmRSS" in KiB, "Threads"), or -1 if unreadable.
int64_t ProcStatusNumber(pid_t pid, std::string_view key) {
  auto text = ReadText(fmt::format("/proc/{}/status", pid));
  if (!text) return -1;
  std::istringstream in(*text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.size() > key.size() && line.compare(0, key.size(), key) == 0 &&
        line[key.size()] == ':') {
      return std::strtoll(line.c_str() + key.size() + 1, nullptr, 10);
    }
  }
  return -1;
}

std::vector<std::string> ProcCmdline(pid_t pid) {
  std::vector<std::string> args;
  auto text = ReadText(fmt::format("/proc/{}/cmdline", pid));
  if (!text) return args;
  size_t start = 0;
  while (start < text->size()) {
    size_t end = text->find('\0', start);
    if (end == std::string::npos) end = text->size();
    args.push_back(text->substr(start, end - start));
    start = end + 1;
  }
  return args;
}

std::vector<pid_t> AllPids() {
  std::vector<pid_t> pids;
  std::error_code ec;
  fs::directory_iterator it("/proc", ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (!name.empty() && std::all_of(name.begin(), name.end(), ::isdigit)) {
      pids.push_back(static_cast<pid_t>(std::stol(name)));
    }
  }
  return pids;
}

// Parent pid and state letter from /proc/<pid>/stat; ppid -1 if the process is gone.
std::pair<pid_t, char> ProcParentAndState(pid_t pid) {
  auto text = ReadText(fmt::format("/proc/{}/stat", pid));
  if (!text) return {-1, '?'};
  size_t paren = text->rfind(')');
  if (paren == std::string::npos) return {-1, '?'};
  std::istringstream rest(text->substr(paren + 1));
  char state = '?';
  long ppid = -1;
  rest >> state >> ppid;
  return {static_cast<pid_t>(ppid), state};
}

// True while `pid` exists and is not a zombie.
bool ProcessAlive(pid_t pid) {
  auto [ppid, state] = ProcParentAndState(pid);
  return ppid >= 0 && state != 'Z' && state != 'X';
}

// Every live process below `root` in the process tree.
std::vector<pid_t> Descendants(pid_t root) {
  std::multimap<pid_t, pid_t> children;
  for (pid_t pid : AllPids()) {
    auto [ppid, state] = ProcParentAndState(pid);
    if (ppid >= 0 && state != 'Z') children.emplace(ppid, pid);
  }
  std::vector<pid_t> out;
  std::vector<pid_t> todo = {root};
  while (!todo.empty()) {
    pid_t p = todo.back();
    todo.pop_back();
    auto [b, e] = children.equal_range(p);
    for (auto it = b; it != e; ++it) {
      out.push_back(it->second);
      todo.push_back(it->second);
    }
  }
  return out;
}

std::set<uint64_t> SocketInodes(pid_t pid) {
  std::set<uint64_t> out;
  std::error_code ec;
  fs::directory_iterator it(fmt::format("/proc/{}/fd", pid), ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    std::error_code link_ec;
    std::string target = fs::read_symlink(it->path(), link_ec).string();
    if (!link_ec && target.rfind("socket:[", 0) == 0) {
      out.insert(std::strtoull(target.c_str() + 8, nullptr, 10));
    }
  }
  return out;
}

// "0100007F" / 32 hex digits (as /proc/net/tcp{,6} print them) to a printable address.
std::string DecodeProcNetAddress(const std::string& hex) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (hex.size() == 8) {
    in_addr a{};
    a.s_addr = static_cast<uint32_t>(std::strtoul(hex.c_str(), nullptr, 16));
    inet_ntop(AF_INET, &a, buf, sizeof(buf));
    return buf;
  }
  if (hex.size() == 32) {
    in6_addr a{};
    for (int i = 0; i < 4; ++i) {
      uint32_t word =
          static_cast<uint32_t>(std::strtoul(hex.substr(8 * i, 8).c_str(), nullptr, 16));
      std::memcpy(&a.s6_addr[4 * i], &word, sizeof(word));
    }
    inet_ntop(AF_INET6, &a, buf, sizeof(buf));
    return std::string("[") + buf + "]";
  }
  return hex;
}

struct ListenSocket {
  std::string address;
  int port = 0;
  uint64_t inode = 0;
  std::string role;  // what the process says the port is for, if known
  std::string ToString() const {
    return fmt::format("{}:{}{}", address, port, role.empty() ? "" : " " + role);
  }
};

// Every TCP socket in LISTEN state in the network namespace of `pid` ("self" for ours).
std::vector<ListenSocket> ListeningInNamespace(const std::string& pid) {
  std::vector<ListenSocket> out;
  for (const char* file : {"tcp", "tcp6"}) {
    auto text = ReadText(fmt::format("/proc/{}/net/{}", pid, file));
    if (!text) continue;
    std::istringstream in(*text);
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
      auto f = SplitWhitespace(line);
      // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode ...
      if (f.size() < 10 || f[3] != "0A") continue;
      size_t colon = f[1].rfind(':');
      if (colon == std::string::npos) continue;
      ListenSocket s;
      s.address = DecodeProcNetAddress(f[1].substr(0, colon));
      s.port = static_cast<int>(std::strtol(f[1].c_str() + colon + 1, nullptr, 16));
      s.inode = std::strtoull(f[9].c_str(), nullptr, 10);
      out.push_back(s);
    }
  }
  return out;
}

// The listening TCP sockets that `pid` holds open: LISTEN entries of /proc/<pid>/net/tcp{,6}
// whose socket inode is among /proc/<pid>/fd's links.
std::vector<ListenSocket> ListeningSocketsOf(pid_t pid) {
  std::set<uint64_t> inodes = SocketInodes(pid);
  std::vector<ListenSocket> out;
  for (const auto& s : ListeningInNamespace(std::to_string(pid))) {
    if (inodes.count(s.inode) != 0) out.push_back(s);
  }
  return out;
}

std::string DescribeSockets(const std::vector<ListenSocket>& sockets) {
  std::vector<std::string> parts;
  for (const auto& s : sockets) parts.push_back(s.ToString());
  return Join(parts, ", ");
}

json SocketsJson(const std::vector<ListenSocket>& sockets) {
  json a = json::array();
  for (const auto& s : sockets) a.push_back(s.ToString());
  return a;
}

// ---- Latency statistics.

struct LatencyStats {
  size_t n = 0;
  double p50 = 0, p99 = 0, max = 0, mean = 0;
};

// Nearest-rank percentiles.
LatencyStats Summarize(std::vector<double> ms) {
  LatencyStats s;
  s.n = ms.size();
  if (ms.empty()) return s;
  std::sort(ms.begin(), ms.end());
  auto rank = [&](double p) {
    size_t idx = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(ms.size())));
    return ms[std::clamp<size_t>(idx, 1, ms.size()) - 1];
  };
  s.p50 = rank(50);
  s.p99 = rank(99);
  s.max = ms.back();
  double sum = 0;
  for (double v : ms) sum += v;
  s.mean = sum / static_cast<double>(ms.size());
  return s;
}

double Round(double v, int digits) {
  double f = std::pow(10.0, digits);
  return std::round(v * f) / f;
}

json LatencyJson(const LatencyStats& s) {
  if (s.n == 0) return nullptr;
  return {{"n", s.n},
          {"p50_ms", Round(s.p50, 3)},
          {"p99_ms", Round(s.p99, 3)},
          {"max_ms", Round(s.max, 3)},
          {"mean_ms", Round(s.mean, 3)}};
}

std::string LatencyText(const LatencyStats& s) {
  return fmt::format("p50 {:.3f} ms   p99 {:.3f} ms   max {:.3f} ms   (mean {:.3f} ms, n={})",
                     s.p50, s.p99, s.max, s.mean, s.n);
}

// ---- Processes this program starts.

// Forks and execs argv[0] (a path: no PATH search) with stdin from /dev/null and stdout and
// stderr on `out_fd`. With `die_with_parent` the child gets SIGTERM should this program die
// first.
StatusOr<pid_t> Spawn(const std::vector<std::string>& argv, int out_fd, bool die_with_parent) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  rlimit rl{};
  int max_fd = 4096;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
    max_fd = static_cast<int>(std::min<rlim_t>(rl.rlim_cur, 65536));
  }
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) return Status::Internal("fork: " + ErrnoText(errno));
  if (pid == 0) {
    // Only async-signal-safe calls from here to exec.
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    sigaction(SIGPIPE, &dfl, nullptr);
    if (die_with_parent) {
      prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (getppid() != parent) _exit(126);
    }
    int in = open("/dev/null", O_RDONLY);
    if (in < 0 || dup2(in, STDIN_FILENO) < 0 || dup2(out_fd, STDOUT_FILENO) < 0 ||
        dup2(out_fd, STDERR_FILENO) < 0) {
      _exit(126);
    }
    if (close_range(3, ~0U, 0) != 0) {
      for (int fd = 3; fd < max_fd; ++fd) close(fd);
    }
    execv(args[0], args.data());
    _exit(127);
  }
  return pid;
}

std::string DescribeWaitStatus(int status) {
  if (WIFEXITED(status)) return fmt::format("exit {}", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    return fmt::format("killed by signal {} ({})", WTERMSIG(status), strsignal(WTERMSIG(status)));
  }
  return fmt::format("wait status {}", status);
}

// A daemon this program started. Stopped by pid (SIGTERM, then SIGKILL) when destroyed.
class ChildProcess {
 public:
  // Starts argv with stdout and stderr appended to `log_path`.
  static StatusOr<std::unique_ptr<ChildProcess>> Start(std::string name,
                                                       const std::vector<std::string>& argv,
                                                       const fs::path& log_path) {
    int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) return Status::Internal("open " + log_path.string() + ": " + ErrnoText(errno));
    auto pid = Spawn(argv, fd, /*die_with_parent=*/true);
    ::close(fd);
    if (!pid.ok()) return pid.status().WithContext("start " + name);
    return std::unique_ptr<ChildProcess>(new ChildProcess(std::move(name), *pid));
  }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess() {
    if (!reaped_) Stop(std::chrono::seconds(10));
  }

  pid_t pid() const { return pid_; }
  const std::string& name() const { return name_; }

  // True until the process has exited (and then reaps it).
  bool Running() {
    Poll();
    return !reaped_;
  }

  // How it ended, e.g. "exit 0" or "killed by signal 9 (Killed)"; "running" before that.
  std::string Ended() const {
    if (!reaped_) return "running";
    return wait_status_ < 0 ? "gone (not our child?)" : DescribeWaitStatus(wait_status_);
  }
  bool ExitedCleanly() const {
    return reaped_ && wait_status_ >= 0 && WIFEXITED(wait_status_) &&
           WEXITSTATUS(wait_status_) == 0;
  }

  // SIGTERM, up to `grace` to exit, then SIGKILL. Returns the milliseconds the exit took after
  // SIGTERM; sets needed_sigkill() when SIGTERM was not enough.
  double Stop(std::chrono::milliseconds grace) {
    auto start = Clock::now();
    if (!Running()) return 0;
    ::kill(pid_, SIGTERM);
    if (!WaitFor(grace)) {
      needed_sigkill_ = true;
      ::kill(pid_, SIGKILL);
      WaitFor(std::chrono::seconds(10));
    }
    return MsBetween(start, Clock::now());
  }
  bool needed_sigkill() const { return needed_sigkill_; }

 private:
  ChildProcess(std::string name, pid_t pid) : name_(std::move(name)), pid_(pid) {}

  void Poll() {
    if (reaped_) return;
    int status = 0;
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      reaped_ = true;
      wait_status_ = status;
    } else if (r < 0 && errno == ECHILD) {
      reaped_ = true;
      wait_status_ = -1;
    }
  }

  bool WaitFor(std::chrono::milliseconds d) {
    auto deadline = Clock::now() + d;
    for (;;) {
      Poll();
      if (reaped_) return true;
      if (Clock::now() >= deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }

  std::string name_;
  pid_t pid_;
  bool reaped_ = false;
  bool needed_sigkill_ = false;
  int wait_status_ = 0;
};

struct CommandResult {
  int exit_code = -1;  // 128 + signal when killed by a signal
  std::string output;  // stdout and stderr
  double ms = 0;       // wall clock from fork to reaping
};

// Runs argv to completion with stdout and stderr captured, killing it (by pid) after `timeout`
// or, when `interruptible`, on a signal to this program.
StatusOr<CommandResult> RunCommand(const std::vector<std::string>& argv,
                                   std::chrono::milliseconds timeout, bool interruptible) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return Status::Internal("pipe: " + ErrnoText(errno));
  auto start = Clock::now();
  auto pid = Spawn(argv, fds[1], /*die_with_parent=*/true);
  ::close(fds[1]);
  if (!pid.ok()) {
    ::close(fds[0]);
    return pid.status();
  }
  CommandResult result;
  bool timed_out = false, interrupted = false;
  for (;;) {
    pollfd p{fds[0], POLLIN, 0};
    int n = ::poll(&p, 1, 50);
    if (n > 0) {
      char buf[4096];
      ssize_t got = ::read(fds[0], buf, sizeof(buf));
      if (got > 0) {
        result.output.append(buf, static_cast<size_t>(got));
      } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
        break;  // EOF: the command (and anything it spawned) closed its output
      }
    }
    if (Clock::now() - start > timeout) {
      timed_out = true;
      break;
    }
    if (interruptible && g_signal.load() != 0) {
      interrupted = true;
      break;
    }
  }
  if (timed_out || interrupted) ::kill(*pid, SIGKILL);
  ::close(fds[0]);
  int status = 0;
  while (::waitpid(*pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.ms = MsBetween(start, Clock::now());
  if (interrupted) return CheckInterrupted();
  if (timed_out) {
    return Status::DeadlineExceeded(
        fmt::format("'{}' did not finish in {} ms", Join(argv, " "), timeout.count()));
  }
  result.exit_code = WIFEXITED(status)     ? WEXITSTATUS(status)
                     : WIFSIGNALED(status) ? 128 + WTERMSIG(status)
                                           : -1;
  return result;
}

// The full path of an executable: `name` itself if it has a slash, else the first match in
// PATH (plus the sbin directories, where glusterd lives). Empty if there is none.
std::string FindExecutable(const std::string& name) {
  if (name.find('/') != std::string::npos) return ::access(name.c_str(), X_OK) == 0 ? name : "";
  const char* env = std::getenv("PATH");
  std::string path = std::string(env != nullptr ? env : "") + ":/usr/local/sbin:/usr/sbin:/sbin";
  std::istringstream in(path);
  std::string dir;
  while (std::getline(in, dir, ':')) {
    if (dir.empty()) continue;
    std::string candidate = dir + "/" + name;
    struct stat st {};
    if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
        ::access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
  }
  return "";
}

// ---- The temporary directory everything lives in.

class TempDir {
 public:
  static StatusOr<std::unique_ptr<TempDir>> Create(const std::string& parent, bool keep) {
    std::error_code ec;
    fs::create_directories(parent, ec);
    if (ec) return Status::Internal("create " + parent + ": " + ec.message());
    std::string tmpl = (fs::path(parent) / "cairn-brick-mux-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) {
      return Status::Internal("mkdtemp " + tmpl + ": " + ErrnoText(errno));
    }
    return std::unique_ptr<TempDir>(new TempDir(fs::canonical(tmpl), keep));
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    if (keep_) {
      fmt::print(stderr, "brick_mux_bench: kept {} (--keep)\n", path_.string());
      return;
    }
    std::error_code ec;
    fs::remove_all(path_, ec);
    if (ec) {
      fmt::print(stderr, "brick_mux_bench: could not remove {}: {}\n", path_.string(),
                 ec.message());
    }
  }
  const fs::path& path() const { return path_; }

 private:
  TempDir(fs::path path, bool keep) : path_(std::move(path)), keep_(keep) {}
  fs::path path_;
  bool keep_;
};

// ---- Options.

struct Options {
  std::string brickd;
  int bricks = 1000;
  std::string workdir;
  int64_t capacity_bytes = 0;
  int brickd_threads = 0;
  std::string brickd_log_level;
  bool state_file = false;
  int statfs_samples = 10;
  int idle_ms = 1000;
  uint64_t seed = 0;
  bool keep = false;
  bool gluster = false;
  int gluster_volumes = 50;
  std::string gluster_host;
  std::string glusterd;
  std::string gluster_cli;
};

// ---- Cairn: one brickd, N bricks.

struct CairnFigures {
  std::string brickd;
  int bricks = 0;
  pid_t pid = 0;
  int grpc_port = 0;
  int metrics_port = 0;
  std::vector<pid_t> children;
  std::vector<ListenSocket> listening_0, listening_n;
  int64_t threads_0 = -1, threads_1 = -1, threads_n = -1;
  int64_t rss_0 = -1, rss_1 = -1, rss_1_idle = -1, rss_n = -1, rss_n_idle = -1;  // KiB
  std::optional<double> kib_per_brick;       // from the idle figures
  std::optional<double> kib_per_brick_busy;  // right after attaching
  LatencyStats attach;
  int not_initialised = 0;
  size_t listed_after_attach = 0;
  int statfs_ok = 0;
  LatencyStats statfs;
  std::string detached;
  double detach_ms = 0;
  size_t listed_after_detach = 0;
  std::string statfs_after_detach;  // status code name of StatFs on the detached brick
  std::string shutdown;
  double shutdown_ms = 0;
  int idle_ms = 0;
  std::vector<std::string> notes;  // oddities worth a look that did not break the run
};

class BrickdClient {
 public:
  BrickdClient(const std::shared_ptr<grpc::Channel>& channel, std::string admin_token,
               std::string data_token)
      : admin_(pb::BrickAdmin::NewStub(channel)),
        brick_(pb::Brick::NewStub(channel)),
        admin_token_(std::move(admin_token)),
        data_token_(std::move(data_token)) {}

  Status Attach(const std::string& id, const std::string& path, uint64_t capacity,
                pb::AttachReply* reply) {
    grpc::ClientContext ctx;
    Prepare(&ctx, admin_token_);
    pb::AttachRequest req;
    req.set_brick_id(id);
    req.set_path(path);
    req.set_capacity_bytes(capacity);
    return FromGrpcStatus(admin_->Attach(&ctx, req, reply), ctx);
  }
  Status Detach(const std::string& id) {
    grpc::ClientContext ctx;
    Prepare(&ctx, admin_token_);
    pb::DetachRequest req;
    req.set_brick_id(id);
    pb::Empty reply;
    return FromGrpcStatus(admin_->Detach(&ctx, req, &reply), ctx);
  }
  StatusOr<pb::ListBricksReply> ListBricks() {
    grpc::ClientContext ctx;
    Prepare(&ctx, admin_token_);
    pb::ListBricksReply reply;
    Status s = FromGrpcStatus(admin_->ListBricks(&ctx, pb::ListBricksRequest(), &reply), ctx);
    if (!s.ok()) return s;
    return reply;
  }
  // With the data token, as a client would.
  Status StatFs(const std::string& id, pb::StatFsReply* reply) {
    grpc::ClientContext ctx;
    Prepare(&ctx, data_token_);
    pb::StatFsRequest req;
    req.set_brick_id(id);
    return FromGrpcStatus(brick_->StatFs(&ctx, req, reply), ctx);
  }

 private:
  static void Prepare(grpc::ClientContext* ctx, const std::string& token) {
    ctx->AddMetadata("authorization", "Bearer " + token);
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  }

  std::unique_ptr<pb::BrickAdmin::Stub> admin_;
  std::unique_ptr<pb::Brick::Stub> brick_;
  std::string admin_token_;
  std::string data_token_;
};

// Polls for brickd's ready file: {"pid": ..., "grpc_port": ..., "metrics_port": ...}.
StatusOr<json> WaitForReadyFile(ChildProcess& brickd, const fs::path& ready, const fs::path& log,
                                std::chrono::seconds timeout) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    CAIRN_RETURN_IF_ERROR(CheckInterrupted());
    if (!brickd.Running()) {
      return Status::Unavailable(
          fmt::format("brickd exited before it was ready ({})\n{}", brickd.Ended(), LogTail(log)));
    }
    std::error_code ec;
    if (fs::exists(ready, ec)) {
      CAIRN_ASSIGN_OR_RETURN(std::string text, ReadFile(ready.string()));
      json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
      if (j.is_discarded() || !j.is_object()) {
        return Status::Internal("ready file " + ready.string() + " is not a JSON object: " + text);
      }
      return j;
    }
    if (Clock::now() >= deadline) {
      return Status::DeadlineExceeded(
          fmt::format("brickd wrote no ready file within {} s\n{}", timeout.count(), LogTail(log)));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

int JsonInt(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number_integer()) return -1;
  return it->get<int>();
}

// Starts brickd, attaches the bricks, measures, checks that it serves, stops it. Checks that
// fail without stopping the run are appended to `failures`.
Status RunCairn(const Options& opt, const fs::path& root, CairnFigures* f,
                std::vector<std::string>* failures) {
  f->brickd = opt.brickd;
  f->bricks = opt.bricks;
  f->idle_ms = opt.idle_ms;
  if (::access(opt.brickd.c_str(), X_OK) != 0) {
    return Status::NotFound(
        fmt::format("no brickd executable at {} (build it: cmake --build build -j2 --target "
                    "brickd, or pass --brickd=PATH)",
                    opt.brickd));
  }
  const fs::path dir = root / "cairn";
  const fs::path bricks_dir = dir / "bricks";
  std::error_code ec;
  fs::create_directories(bricks_dir, ec);
  if (ec) return Status::Internal("create " + bricks_dir.string() + ": " + ec.message());

  const std::string admin_token = RandomHexToken(32);
  const std::string data_token = RandomHexToken(32);
  const fs::path admin_file = dir / "admin.token";
  const fs::path data_file = dir / "data.token";
  CAIRN_RETURN_IF_ERROR(WriteFileAtomic(admin_file.string(), admin_token + "\n", 0600));
  CAIRN_RETURN_IF_ERROR(WriteFileAtomic(data_file.string(), data_token + "\n", 0600));
  const fs::path ready = dir / "ready.json";
  const fs::path log = dir / "brickd.log";

  std::vector<std::string> argv = {opt.brickd,
                                   "--listen=127.0.0.1:0",
                                   "--token-file=" + data_file.string(),
                                   "--admin-token-file=" + admin_file.string(),
                                   "--metrics-listen=127.0.0.1:0",
                                   "--ready-file=" + ready.string(),
                                   "--log-level=" + opt.brickd_log_level};
  if (opt.state_file) argv.push_back("--state-file=" + (dir / "state.json").string());
  if (opt.brickd_threads > 0) argv.push_back(fmt::format("--threads={}", opt.brickd_threads));
  fmt::print(stderr, "cairn: starting {}\n", Join(argv, " "));
  CAIRN_ASSIGN_OR_RETURN(std::unique_ptr<ChildProcess> brickd,
                         ChildProcess::Start("brickd", argv, log));
  f->pid = brickd->pid();

  CAIRN_ASSIGN_OR_RETURN(json ready_json,
                         WaitForReadyFile(*brickd, ready, log, std::chrono::seconds(10)));
  f->grpc_port = JsonInt(ready_json, "grpc_port");
  f->metrics_port = JsonInt(ready_json, "metrics_port");
  if (f->grpc_port <= 0 || f->grpc_port > 65535) {
    return Status::Internal("ready file has no valid grpc_port: " + ready_json.dump());
  }
  if (JsonInt(ready_json, "pid") != brickd->pid()) {
    failures->push_back(
        fmt::format("brickd's ready file says pid {}, but the process started is {}",
                    JsonInt(ready_json, "pid"), brickd->pid()));
  }

  auto channel = grpc::CreateChannel(fmt::format("127.0.0.1:{}", f->grpc_port),
                                     grpc::InsecureChannelCredentials());
  if (!channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(5))) {
    return Status::Unavailable(
        fmt::format("cannot connect to brickd at 127.0.0.1:{}\n{}", f->grpc_port, LogTail(log)));
  }
  BrickdClient client(channel, admin_token, data_token);
  const pid_t pid = brickd->pid();
  f->rss_0 = ProcStatusNumber(pid, "VmRSS");
  f->threads_0 = ProcStatusNumber(pid, "Threads");
  f->listening_0 = ListeningSocketsOf(pid);

  // Attach, one call at a time; directory creation is not timed.
  std::vector<std::string> ids;
  std::vector<double> latencies;
  ids.reserve(static_cast<size_t>(opt.bricks));
  latencies.reserve(static_cast<size_t>(opt.bricks));
  const int progress_every = std::max(1, opt.bricks / 10);
  for (int i = 0; i < opt.bricks; ++i) {
    CAIRN_RETURN_IF_ERROR(CheckInterrupted());
    std::string id = fmt::format("bench-{:05d}", i);
    fs::path path = bricks_dir / id;
    fs::create_directory(path, ec);
    if (ec) return Status::Internal("create " + path.string() + ": " + ec.message());
    pb::AttachReply reply;
    auto t0 = Clock::now();
    Status s = client.Attach(id, path.string(), static_cast<uint64_t>(opt.capacity_bytes), &reply);
    double ms = MsBetween(t0, Clock::now());
    if (!s.ok()) {
      if (!brickd->Running()) {
        return Status::Unavailable(fmt::format("brickd died during Attach of brick {} ({})\n{}",
                                               i + 1, brickd->Ended(), LogTail(log)));
      }
      return s.WithContext(fmt::format("Attach {} (brick {} of {})", id, i + 1, opt.bricks));
    }
    latencies.push_back(ms);
    ids.push_back(id);
    if (!reply.initialised()) ++f->not_initialised;
    if (reply.brick().brick_id() != id) {
      failures->push_back(
          fmt::format("Attach {} answered brick_id '{}'", id, reply.brick().brick_id()));
    }
    if (i == 0) {
      f->rss_1 = ProcStatusNumber(pid, "VmRSS");
      SleepMs(opt.idle_ms);
      f->rss_1_idle = ProcStatusNumber(pid, "VmRSS");
      f->threads_1 = ProcStatusNumber(pid, "Threads");
    }
    if ((i + 1) % progress_every == 0 || i + 1 == opt.bricks) {
      fmt::print(stderr, "cairn: attached {}/{} (last {:.3f} ms, RSS {} KiB)\n", i + 1, opt.bricks,
                 ms, ProcStatusNumber(pid, "VmRSS"));
    }
  }
  f->rss_n = ProcStatusNumber(pid, "VmRSS");
  SleepMs(opt.idle_ms);
  CAIRN_RETURN_IF_ERROR(CheckInterrupted());
  f->rss_n_idle = ProcStatusNumber(pid, "VmRSS");
  f->threads_n = ProcStatusNumber(pid, "Threads");
  f->listening_n = ListeningSocketsOf(pid);
  for (auto* sockets : {&f->listening_0, &f->listening_n}) {
    for (auto& s : *sockets) {
      s.role = s.port == f->grpc_port      ? "(gRPC)"
               : s.port == f->metrics_port ? "(metrics)"
                                           : "(not in the ready file)";
    }
  }
  for (const auto& s : f->listening_n) {
    if (s.port != f->grpc_port && s.port != f->metrics_port) {
      f->notes.push_back(fmt::format(
          "brickd listens on {}:{}, which its ready file does not announce", s.address, s.port));
    }
  }
  f->children = Descendants(pid);
  f->attach = Summarize(latencies);
  if (opt.bricks > 1) {
    const double extra = static_cast<double>(opt.bricks - 1);
    f->kib_per_brick = static_cast<double>(f->rss_n_idle - f->rss_1_idle) / extra;
    f->kib_per_brick_busy = static_cast<double>(f->rss_n - f->rss_1) / extra;
  }
  if (f->not_initialised > 0) {
    failures->push_back(fmt::format(
        "{} Attach replies to fresh empty directories said initialised=false", f->not_initialised));
  }
  if (!f->children.empty()) {
    failures->push_back(fmt::format("brickd has {} child process(es)", f->children.size()));
  }

  // Serving check: ListBricks, StatFs on random bricks with the data token, one Detach.
  CAIRN_ASSIGN_OR_RETURN(pb::ListBricksReply listed, client.ListBricks());
  f->listed_after_attach = static_cast<size_t>(listed.bricks_size());
  if (f->listed_after_attach != ids.size()) {
    failures->push_back(fmt::format("ListBricks lists {} bricks after {} Attach calls",
                                    f->listed_after_attach, ids.size()));
  }
  std::mt19937_64 rng(opt.seed != 0 ? opt.seed : std::random_device{}());
  std::vector<std::string> sample = ids;
  std::shuffle(sample.begin(), sample.end(), rng);
  sample.resize(std::min(sample.size(), static_cast<size_t>(opt.statfs_samples)));
  std::vector<double> statfs_ms;
  for (const auto& id : sample) {
    CAIRN_RETURN_IF_ERROR(CheckInterrupted());
    pb::StatFsReply reply;
    auto t0 = Clock::now();
    Status s = client.StatFs(id, &reply);
    statfs_ms.push_back(MsBetween(t0, Clock::now()));
    if (!s.ok()) {
      failures->push_back(fmt::format("StatFs {} (data token): {}", id, s.ToString()));
    } else if (opt.capacity_bytes > 0 &&
               reply.capacity_bytes() != static_cast<uint64_t>(opt.capacity_bytes)) {
      failures->push_back(fmt::format("StatFs {}: capacity_bytes {}, attached with {}", id,
                                      reply.capacity_bytes(), opt.capacity_bytes));
    } else {
      ++f->statfs_ok;
    }
  }
  f->statfs = Summarize(statfs_ms);

  f->detached = ids[std::uniform_int_distribution<size_t>(0, ids.size() - 1)(rng)];
  auto t0 = Clock::now();
  Status detached = client.Detach(f->detached);
  f->detach_ms = MsBetween(t0, Clock::now());
  if (!detached.ok()) {
    failures->push_back(fmt::format("Detach {}: {}", f->detached, detached.ToString()));
  } else {
    CAIRN_ASSIGN_OR_RETURN(pb::ListBricksReply after, client.ListBricks());
    f->listed_after_detach = static_cast<size_t>(after.bricks_size());
    if (f->listed_after_detach + 1 != ids.size()) {
      failures->push_back(fmt::format("ListBricks lists {} bricks after detaching 1 of {}",
                                      f->listed_after_detach, ids.size()));
    }
    pb::StatFsReply reply;
    Status s = client.StatFs(f->detached, &reply);
    f->statfs_after_detach = s.ok() ? "OK" : std::string(StatusCodeName(s.code()));
    if (s.ok()) failures->push_back("StatFs on a detached brick succeeded");
  }

  // Clean shutdown.
  f->shutdown_ms = brickd->Stop(std::chrono::seconds(10));
  f->shutdown = brickd->Ended() + (brickd->needed_sigkill() ? " (SIGTERM ignored for 10 s)" : "");
  if (!brickd->ExitedCleanly()) {
    failures->push_back("brickd did not exit 0 on SIGTERM: " + f->shutdown + "\n" + LogTail(log));
  }
  return Status::Ok();
}

// ---- GlusterFS: one private glusterd with cluster.brick-multiplex on, K single-brick volumes.

struct GlusterFigures {
  std::string version;
  std::string host;
  std::string address;
  int volumes = 0;
  pid_t glusterd_pid = 0;
  int64_t glusterd_rss = -1;
  std::vector<pid_t> pids_1, pids_k;  // glusterfsd processes serving our bricks
  pid_t status_pid = 0;               // the brick pid `gluster volume status ... detail` reports
  std::vector<ListenSocket> listening_k;
  int64_t threads_1 = -1, threads_k = -1;
  int64_t rss_1 = -1, rss_1_idle = -1, rss_k = -1, rss_k_idle = -1;  // KiB, summed over pids
  std::optional<double> kib_per_brick;
  std::optional<double> kib_per_brick_busy;
  LatencyStats create, start, create_start, stop_delete;
  std::string shutdown;
  int idle_ms = 0;
};

// A file or directory tree listing, to find out what glusterd adds to the system directories.
std::set<std::string> ListTree(const fs::path& root, int max_depth) {
  std::set<std::string> out;
  std::error_code ec;
  fs::recursive_directory_iterator it(root, fs::directory_options::skip_permission_denied, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    out.insert(it->path().string());
    if (it.depth() >= max_depth) it.disable_recursion_pending();
  }
  return out;
}

// The brick host for gluster: a name (or 127.x.y.z address) that resolves to loopback
// addresses only; gluster itself refuses "localhost" and "127.0.0.1" as brick hosts. Returns
// the name and its IPv4 address.
StatusOr<std::pair<std::string, std::string>> GlusterBrickHost(const std::string& wanted) {
  std::string host = wanted;
  if (host.empty()) {
    char buf[256] = {};
    if (::gethostname(buf, sizeof(buf) - 1) != 0) {
      return Status::Internal("gethostname: " + ErrnoText(errno));
    }
    host = buf;
  }
  if (host == "localhost" || host == "127.0.0.1" || host.rfind("0.", 0) == 0) {
    return Status::InvalidArgument(
        fmt::format("gluster refuses '{}' as a brick host; pass --gluster-host=NAME where NAME "
                    "resolves to a loopback address only (e.g. the hostname in /etc/hosts), or "
                    "--gluster-host=127.0.0.2",
                    host));
  }
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_family = AF_UNSPEC;
  addrinfo* res = nullptr;
  int rc = ::getaddrinfo(host.c_str(), nullptr, &hints, &res);
  if (rc != 0) {
    return Status::FailedPrecondition(
        fmt::format("cannot resolve gluster brick host '{}': {}", host, gai_strerror(rc)));
  }
  std::string ipv4, non_loopback;
  for (addrinfo* a = res; a != nullptr; a = a->ai_next) {
    char buf[INET6_ADDRSTRLEN] = {};
    if (a->ai_family == AF_INET) {
      auto* sin = reinterpret_cast<sockaddr_in*>(a->ai_addr);
      inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof(buf));
      if ((ntohl(sin->sin_addr.s_addr) >> 24) == 127) {
        if (ipv4.empty()) ipv4 = buf;
      } else {
        non_loopback = buf;
      }
    } else if (a->ai_family == AF_INET6) {
      auto* sin6 = reinterpret_cast<sockaddr_in6*>(a->ai_addr);
      inet_ntop(AF_INET6, &sin6->sin6_addr, buf, sizeof(buf));
      if (!IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr)) non_loopback = buf;
    }
  }
  ::freeaddrinfo(res);
  if (!non_loopback.empty()) {
    return Status::FailedPrecondition(fmt::format(
        "gluster brick host '{}' resolves to {}, which is not a loopback address; pass "
        "--gluster-host=NAME where NAME resolves to 127.x.y.z only, or --gluster-host=127.0.0.2",
        host, non_loopback));
  }
  if (ipv4.empty()) {
    return Status::FailedPrecondition(
        fmt::format("gluster brick host '{}' has no IPv4 loopback address", host));
  }
  return std::make_pair(host, ipv4);
}

class GlusterRun {
 public:
  GlusterRun(const Options& opt, fs::path dir) : opt_(opt), dir_(std::move(dir)) {}
  GlusterRun(const GlusterRun&) = delete;
  GlusterRun& operator=(const GlusterRun&) = delete;
  ~GlusterRun() { Cleanup(); }

  // Starts glusterd and turns brick multiplexing on.
  Status Start(GlusterFigures* f) {
    glusterd_bin_ = FindExecutable(opt_.glusterd);
    cli_bin_ = FindExecutable(opt_.gluster_cli);
    CAIRN_ASSIGN_OR_RETURN(CommandResult version,
                           RunCommand({cli_bin_, "--version"}, std::chrono::seconds(10), true));
    auto words = SplitWhitespace(version.output.substr(0, version.output.find('\n')));
    f->version = words.size() >= 2 ? words[1] : version.output;

    for (pid_t pid : AllPids()) {
      auto args = ProcCmdline(pid);
      if (!args.empty() && fs::path(args[0]).filename() == "glusterd" && ProcessAlive(pid)) {
        return Status::FailedPrecondition(fmt::format(
            "a glusterd is already running (pid {}); this benchmark starts its own private "
            "glusterd and will not touch another one: stop it first",
            pid));
      }
    }
    for (const auto& s : ListeningInNamespace("self")) {
      if (s.port == kGlusterdPort) {
        return Status::FailedPrecondition(fmt::format(
            "TCP port {} (glusterd's) is already in use ({})", kGlusterdPort, s.ToString()));
      }
    }
    auto host = GlusterBrickHost(opt_.gluster_host);
    if (!host.ok() && opt_.gluster_host.empty()) {
      // This machine's name is not loopback-only: any other 127.x address is, and gluster
      // counts it as local.
      fmt::print(stderr, "gluster: {}; using 127.0.0.2\n", host.status().message());
      host = GlusterBrickHost("127.0.0.2");
    }
    if (!host.ok()) return host.status();
    f->host = host_ = host->first;
    f->address = host->second;

    // glusterd keeps its state, run files, logs and socket in our directory; only the brick
    // processes' unix sockets (and a few empty entries) land in the system directories.
    std::error_code ec;
    for (const char* sub : {"state", "run", "logs", "bricks"}) {
      fs::create_directories(dir_ / sub, ec);
      if (ec) return Status::Internal("create " + (dir_ / sub).string() + ": " + ec.message());
    }
    sock_ = (dir_ / "glusterd.socket").string();
    if (sock_.size() >= 100) {
      return Status::InvalidArgument("--workdir is too long for a unix socket path: " + sock_);
    }
    for (const char* d : kSystemDirs) before_[d] = ListTree(d, 3);
    const fs::path volfile = dir_ / "glusterd.vol";
    std::string vol = fmt::format(
        "volume management\n"
        "    type mgmt/glusterd\n"
        "    option working-directory {}\n"
        "    option run-directory {}\n"
        "    option glusterd-sockfile {}\n"
        "    option cluster-test-mode {}\n"
        "    option transport-type socket\n"
        "    option transport.socket.bind-address {}\n"
        "    option transport.socket.listen-port {}\n"
        "    option transport.socket.keepalive-time 10\n"
        "    option transport.socket.keepalive-interval 2\n"
        "    option transport.socket.read-fail-log off\n"
        "    option ping-timeout 0\n"
        "    option event-threads 1\n"
        "    option max-port 60999\n"
        "end-volume\n",
        (dir_ / "state").string(), (dir_ / "run").string(), sock_, (dir_ / "logs").string(),
        f->address, kGlusterdPort);
    CAIRN_RETURN_IF_ERROR(WriteFileAtomic(volfile.string(), vol, 0644));
    glusterd_log_ = dir_ / "logs" / "glusterd.log";
    std::vector<std::string> argv = {glusterd_bin_, "--no-daemon", "--volfile=" + volfile.string(),
                                     "--log-file=" + glusterd_log_.string(),
                                     "--pid-file=" + (dir_ / "glusterd.pid").string()};
    fmt::print(stderr, "gluster: starting {}\n", Join(argv, " "));
    CAIRN_ASSIGN_OR_RETURN(glusterd_,
                           ChildProcess::Start("glusterd", argv, dir_ / "logs" / "glusterd.out"));
    f->glusterd_pid = glusterd_->pid();

    auto deadline = Clock::now() + std::chrono::seconds(20);
    for (;;) {
      CAIRN_RETURN_IF_ERROR(CheckInterrupted());
      if (!glusterd_->Running()) {
        return Status::Unavailable(fmt::format("glusterd exited at start ({})\n{}",
                                               glusterd_->Ended(), LogTail(glusterd_log_)));
      }
      if (fs::exists(sock_, ec)) {
        CAIRN_ASSIGN_OR_RETURN(CommandResult r, Cli({"volume", "list"}));
        if (r.exit_code == 0) break;
      }
      if (Clock::now() >= deadline) {
        return Status::DeadlineExceeded("glusterd did not answer within 20 s\n" +
                                        LogTail(glusterd_log_));
      }
      SleepMs(100);
    }
    CAIRN_RETURN_IF_ERROR(
        CliOk({"volume", "set", "all", "cluster.brick-multiplex", "on"}).status());
    return Status::Ok();
  }

  // Creates and starts the volumes, measures, then stops and deletes them.
  Status Measure(GlusterFigures* f) {
    f->volumes = opt_.gluster_volumes;
    f->idle_ms = opt_.idle_ms;
    std::vector<double> create_ms, start_ms, total_ms, stop_ms;
    const int progress_every = std::max(1, opt_.gluster_volumes / 5);
    for (int k = 0; k < opt_.gluster_volumes; ++k) {
      CAIRN_RETURN_IF_ERROR(CheckInterrupted());
      std::string name = fmt::format("cairnbench{:04d}", k + 1);
      fs::path brick = dir_ / "bricks" / name;
      std::error_code ec;
      fs::create_directory(brick, ec);
      if (ec) return Status::Internal("create " + brick.string() + ": " + ec.message());
      // `force`: the bricks live on the root file system, which gluster otherwise refuses.
      CAIRN_ASSIGN_OR_RETURN(CommandResult created, CliOk({"volume", "create", name,
                                                           host_ + ":" + brick.string(), "force"}));
      created_.push_back(name);
      CAIRN_ASSIGN_OR_RETURN(CommandResult started, CliOk({"volume", "start", name}));
      started_.insert(name);
      create_ms.push_back(created.ms);
      start_ms.push_back(started.ms);
      total_ms.push_back(created.ms + started.ms);
      if (k == 0) {
        f->pids_1 = BrickProcesses();
        f->rss_1 = SumStatus(f->pids_1, "VmRSS");
        SleepMs(opt_.idle_ms);
        f->pids_1 = BrickProcesses();
        f->rss_1_idle = SumStatus(f->pids_1, "VmRSS");
        f->threads_1 = SumStatus(f->pids_1, "Threads");
        f->status_pid = StatusPid(name);
      }
      if ((k + 1) % progress_every == 0 || k + 1 == opt_.gluster_volumes) {
        fmt::print(stderr, "gluster: created+started {}/{} (last {:.1f} ms)\n", k + 1,
                   opt_.gluster_volumes, created.ms + started.ms);
      }
    }
    f->rss_k = SumStatus(BrickProcesses(), "VmRSS");
    SleepMs(opt_.idle_ms);
    CAIRN_RETURN_IF_ERROR(CheckInterrupted());
    f->pids_k = BrickProcesses();
    f->rss_k_idle = SumStatus(f->pids_k, "VmRSS");
    f->threads_k = SumStatus(f->pids_k, "Threads");
    for (pid_t pid : f->pids_k) {
      auto s = ListeningSocketsOf(pid);
      f->listening_k.insert(f->listening_k.end(), s.begin(), s.end());
    }
    f->glusterd_rss = ProcStatusNumber(glusterd_->pid(), "VmRSS");
    if (opt_.gluster_volumes > 1) {
      const double extra = static_cast<double>(opt_.gluster_volumes - 1);
      f->kib_per_brick = static_cast<double>(f->rss_k_idle - f->rss_1_idle) / extra;
      f->kib_per_brick_busy = static_cast<double>(f->rss_k - f->rss_1) / extra;
    }
    f->create = Summarize(create_ms);
    f->start = Summarize(start_ms);
    f->create_start = Summarize(total_ms);

    // Tear down what we made, timing stop+delete of each volume.
    while (!created_.empty()) {
      CAIRN_RETURN_IF_ERROR(CheckInterrupted());
      const std::string name = created_.back();
      double ms = 0;
      if (started_.count(name) != 0) {
        CAIRN_ASSIGN_OR_RETURN(CommandResult stopped, CliOk({"volume", "stop", name}));
        started_.erase(name);
        ms += stopped.ms;
      }
      CAIRN_ASSIGN_OR_RETURN(CommandResult deleted, CliOk({"volume", "delete", name}));
      created_.pop_back();
      stop_ms.push_back(ms + deleted.ms);
    }
    f->stop_delete = Summarize(stop_ms);
    return Status::Ok();
  }

  // Stops and deletes the volumes still there, the brick processes still running (by pid),
  // glusterd, and removes what glusterd added to the system directories. Idempotent.
  void Cleanup(GlusterFigures* f = nullptr) {
    if (cleaned_) return;
    cleaned_ = true;
    if (glusterd_ != nullptr && glusterd_->Running()) {
      for (auto it = created_.rbegin(); it != created_.rend(); ++it) {
        if (started_.count(*it) != 0) {
          auto r = Cli({"volume", "stop", *it, "force"}, /*interruptible=*/false);
          if (!r.ok() || r->exit_code != 0) Problem("could not stop volume " + *it);
        }
        auto r = Cli({"volume", "delete", *it}, /*interruptible=*/false);
        if (!r.ok() || r->exit_code != 0) Problem("could not delete volume " + *it);
      }
    }
    created_.clear();
    started_.clear();
    // With every volume stopped the brick process exits by itself; make sure of it.
    std::vector<pid_t> left = BrickProcesses();
    auto deadline = Clock::now() + std::chrono::seconds(5);
    while (!left.empty() && Clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      left = BrickProcesses();
    }
    for (pid_t pid : left) {
      Problem(fmt::format("glusterfsd pid {} still running after its volumes stopped; killing it",
                          pid));
      KillByPid(pid);
    }
    if (glusterd_ != nullptr) {
      double ms = glusterd_->Stop(std::chrono::seconds(10));
      std::string how = glusterd_->Ended() + fmt::format(" {:.0f} ms after SIGTERM", ms);
      if (glusterd_->needed_sigkill()) Problem("glusterd ignored SIGTERM; killed");
      if (f != nullptr) f->shutdown = how;
    }
    // Anything else still running that names our directory (nothing, normally).
    for (pid_t pid : AllPids()) {
      if (pid == ::getpid()) continue;
      auto args = ProcCmdline(pid);
      if (ProcessAlive(pid) && Join(args, " ").find(dir_.string()) != std::string::npos) {
        Problem(fmt::format("stray process {} ({}); killing it", pid, Join(args, " ")));
        KillByPid(pid);
      }
    }
    // The brick processes' unix sockets, then empty entries glusterd created.
    for (const auto& sock : sockets_) {
      struct stat st {};
      if (::lstat(sock.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) ::unlink(sock.c_str());
    }
    for (const char* d : kSystemDirs) {
      auto it = before_.find(d);
      if (it == before_.end()) continue;
      std::set<std::string> now = ListTree(d, 3);
      std::vector<std::string> added;
      for (const auto& p : now) {
        if (it->second.count(p) == 0) added.push_back(p);
      }
      // Deepest first, so that directories are empty when their turn comes.
      std::sort(added.begin(), added.end(),
                [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
      for (const auto& p : added) {
        struct stat st {};
        if (::lstat(p.c_str(), &st) != 0) continue;
        bool removed = false;
        if (S_ISDIR(st.st_mode)) {
          removed = ::rmdir(p.c_str()) == 0;
        } else if (S_ISSOCK(st.st_mode) || (S_ISREG(st.st_mode) && st.st_size == 0)) {
          removed = ::unlink(p.c_str()) == 0;
        }
        if (!removed) Problem("left behind (not empty, not removed): " + p);
      }
    }
  }

  const std::vector<std::string>& problems() const { return problems_; }

 private:
  static constexpr const char* kSystemDirs[] = {"/var/lib/glusterd", "/var/run/gluster",
                                                "/var/log/glusterfs"};

  void Problem(std::string what) {
    fmt::print(stderr, "gluster cleanup: {}\n", what);
    problems_.push_back(std::move(what));
  }

  StatusOr<CommandResult> Cli(const std::vector<std::string>& args, bool interruptible = true) {
    std::vector<std::string> argv = {cli_bin_, "--mode=script", "--glusterd-sock=" + sock_,
                                     "--log-file=" + (dir_ / "logs" / "cli.log").string()};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv, std::chrono::seconds(120), interruptible);
  }

  // A CLI command that must succeed.
  StatusOr<CommandResult> CliOk(const std::vector<std::string>& args) {
    CAIRN_ASSIGN_OR_RETURN(CommandResult r, Cli(args));
    if (r.exit_code != 0) {
      return Status::Internal(
          fmt::format("'gluster {}' failed (exit {}): {}", Join(args, " "), r.exit_code, r.output));
    }
    return r;
  }

  // The brick pid `gluster volume status NAME detail` reports (0 if none).
  pid_t StatusPid(const std::string& name) {
    auto r = Cli({"volume", "status", name, "detail"});
    if (!r.ok() || r->exit_code != 0) return 0;
    std::istringstream in(r->output);
    std::string line;
    while (std::getline(in, line)) {
      auto w = SplitWhitespace(line);
      if (w.size() >= 3 && w[0] == "Pid" && w[1] == ":") return std::atoi(w[2].c_str());
    }
    return 0;
  }

  // The live glusterfsd processes serving bricks under our directory. Remembers their unix
  // sockets (-S PATH) for cleanup.
  std::vector<pid_t> BrickProcesses() {
    std::vector<pid_t> out;
    for (pid_t pid : AllPids()) {
      auto args = ProcCmdline(pid);
      if (args.empty() || fs::path(args[0]).filename() != "glusterfsd") continue;
      if (Join(args, " ").find(dir_.string() + "/") == std::string::npos) continue;
      if (!ProcessAlive(pid)) continue;
      out.push_back(pid);
      for (size_t i = 0; i + 1 < args.size(); ++i) {
        if (args[i] == "-S" || args[i] == "--socket-file") sockets_.insert(args[i + 1]);
      }
    }
    return out;
  }

  static int64_t SumStatus(const std::vector<pid_t>& pids, std::string_view key) {
    int64_t sum = 0;
    for (pid_t pid : pids) sum += std::max<int64_t>(0, ProcStatusNumber(pid, key));
    return pids.empty() ? -1 : sum;
  }

  // SIGTERM to one process by pid, SIGKILL if it is still there 5 s later.
  static void KillByPid(pid_t pid) {
    ::kill(pid, SIGTERM);
    auto deadline = Clock::now() + std::chrono::seconds(5);
    while (ProcessAlive(pid) && Clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (ProcessAlive(pid)) ::kill(pid, SIGKILL);
  }

  const Options& opt_;
  const fs::path dir_;
  std::string glusterd_bin_, cli_bin_, host_, sock_;
  fs::path glusterd_log_;
  std::unique_ptr<ChildProcess> glusterd_;
  std::vector<std::string> created_;  // volumes created and not yet deleted
  std::set<std::string> started_;     // volumes started and not yet stopped
  std::set<std::string> sockets_;
  std::map<std::string, std::set<std::string>> before_;
  std::vector<std::string> problems_;
  bool cleaned_ = false;
};

// ---- Report.

std::string Kib(int64_t v) { return v < 0 ? "n/a" : fmt::format("{} KiB", v); }
std::string OptNum(const std::optional<double>& v, int digits = 1) {
  return v ? fmt::format("{:.{}f}", *v, digits) : "n/a";
}
json OptJson(const std::optional<double>& v, int digits = 2) {
  return v ? json(Round(*v, digits)) : json(nullptr);
}
json PidsJson(const std::vector<pid_t>& pids) {
  json a = json::array();
  for (pid_t p : pids) a.push_back(p);
  return a;
}
std::optional<double> Ratio(std::optional<double> a, std::optional<double> b) {
  if (!a || !b || *b == 0) return std::nullopt;
  return *a / *b;
}

void Row(std::string_view label, const std::string& value) {
  fmt::print("  {:<30}{}\n", label, value);
}

void PrintCairn(const CairnFigures& f) {
  fmt::print("\nCairn brick multiplexing: {} bricks attached to ONE brickd (pid {})\n", f.bricks,
             f.pid);
  Row("brickd", f.brickd);
  Row("processes serving the bricks",
      fmt::format("{} (brickd; {} child processes)", 1 + f.children.size(), f.children.size()));
  Row("listening TCP ports",
      fmt::format("{} with 0 bricks, {} with {} ({})", f.listening_0.size(), f.listening_n.size(),
                  f.bricks, DescribeSockets(f.listening_n)));
  Row("threads", fmt::format("{} with 0 bricks, {} with 1, {} with {}", f.threads_0, f.threads_1,
                             f.threads_n, f.bricks));
  Row("RSS, 0 bricks", Kib(f.rss_0));
  Row("RSS, 1 brick",
      fmt::format("{} (idle {} ms later: {})", Kib(f.rss_1), f.idle_ms, Kib(f.rss_1_idle)));
  Row(fmt::format("RSS, {} bricks", f.bricks),
      fmt::format("{} (idle {} ms later: {})", Kib(f.rss_n), f.idle_ms, Kib(f.rss_n_idle)));
  Row("KiB per additional brick",
      fmt::format("{} idle ({} right after attaching)", OptNum(f.kib_per_brick),
                  OptNum(f.kib_per_brick_busy)));
  Row("Attach latency", LatencyText(f.attach));
  Row("ListBricks", fmt::format("{} bricks", f.listed_after_attach));
  Row("StatFs (data token)", fmt::format("{}/{} ok, p50 {:.3f} ms, max {:.3f} ms", f.statfs_ok,
                                         f.statfs.n, f.statfs.p50, f.statfs.max));
  Row("Detach", fmt::format("{} in {:.3f} ms; then ListBricks {}, StatFs on it {}", f.detached,
                            f.detach_ms, f.listed_after_detach, f.statfs_after_detach));
  Row("shutdown (SIGTERM)",
      fmt::format("{} in {:.0f} ms (client still connected)", f.shutdown, f.shutdown_ms));
  for (const auto& n : f.notes) Row("note", n);
}

void PrintGluster(const GlusterFigures& g) {
  fmt::print("\nGlusterFS {} brick multiplexing: {} single-brick volumes, brick host {} ({})\n",
             g.version, g.volumes, g.host, g.address);
  Row("glusterfsd processes", fmt::format("{} with 1 volume, {} with {} (pids {})", g.pids_1.size(),
                                          g.pids_k.size(), g.volumes, fmt::join(g.pids_k, ", ")));
  Row("brick pid per volume status", g.status_pid != 0 ? std::to_string(g.status_pid) : "n/a");
  Row("listening TCP ports",
      fmt::format("{} ({})", g.listening_k.size(), DescribeSockets(g.listening_k)));
  Row("threads", fmt::format("{} with 1 volume, {} with {}", g.threads_1, g.threads_k, g.volumes));
  Row("RSS, 1 volume",
      fmt::format("{} (idle {} ms later: {})", Kib(g.rss_1), g.idle_ms, Kib(g.rss_1_idle)));
  Row(fmt::format("RSS, {} volumes", g.volumes),
      fmt::format("{} (idle {} ms later: {})", Kib(g.rss_k), g.idle_ms, Kib(g.rss_k_idle)));
  Row("KiB per additional brick",
      fmt::format("{} idle ({} right after starting)", OptNum(g.kib_per_brick),
                  OptNum(g.kib_per_brick_busy)));
  Row("volume create", LatencyText(g.create));
  Row("volume start", LatencyText(g.start));
  Row("volume create+start", LatencyText(g.create_start));
  Row("volume stop+delete", LatencyText(g.stop_delete));
  Row("glusterd (management) RSS", Kib(g.glusterd_rss));
  Row("glusterd shutdown (SIGTERM)", g.shutdown);
  Row("reference (issue)", kGlusterReference);
}

json CairnJson(const CairnFigures& f) {
  return {{"bricks", f.bricks},
          {"brickd_pid", f.pid},
          {"processes", 1 + f.children.size()},
          {"brickd_children", f.children.size()},
          {"listen_ports_0", f.listening_0.size()},
          {"listen_ports", f.listening_n.size()},
          {"listen_addresses", SocketsJson(f.listening_n)},
          {"threads_0", f.threads_0},
          {"threads_1", f.threads_1},
          {"threads_n", f.threads_n},
          {"rss_kib_0", f.rss_0},
          {"rss_kib_1", f.rss_1},
          {"rss_kib_1_idle", f.rss_1_idle},
          {"rss_kib_n", f.rss_n},
          {"rss_kib_n_idle", f.rss_n_idle},
          {"kib_per_brick", OptJson(f.kib_per_brick)},
          {"kib_per_brick_busy", OptJson(f.kib_per_brick_busy)},
          {"attach", LatencyJson(f.attach)},
          {"list_bricks", f.listed_after_attach},
          {"statfs_ok", f.statfs_ok},
          {"statfs", LatencyJson(f.statfs)},
          {"detach_ms", Round(f.detach_ms, 3)},
          {"statfs_after_detach", f.statfs_after_detach},
          {"shutdown", f.shutdown},
          {"shutdown_ms", Round(f.shutdown_ms, 1)},
          {"notes", f.notes}};
}

json GlusterJson(const GlusterFigures& g) {
  return {{"version", g.version},
          {"brick_host", g.host},
          {"volumes", g.volumes},
          {"glusterfsd_processes_1", g.pids_1.size()},
          {"glusterfsd_processes", g.pids_k.size()},
          {"glusterfsd_pids", PidsJson(g.pids_k)},
          {"listen_ports", g.listening_k.size()},
          {"listen_addresses", SocketsJson(g.listening_k)},
          {"threads_1", g.threads_1},
          {"threads_k", g.threads_k},
          {"rss_kib_1", g.rss_1},
          {"rss_kib_1_idle", g.rss_1_idle},
          {"rss_kib_k", g.rss_k},
          {"rss_kib_k_idle", g.rss_k_idle},
          {"kib_per_brick", OptJson(g.kib_per_brick)},
          {"kib_per_brick_busy", OptJson(g.kib_per_brick_busy)},
          {"create", LatencyJson(g.create)},
          {"start", LatencyJson(g.start)},
          {"create_start", LatencyJson(g.create_start)},
          {"stop_delete", LatencyJson(g.stop_delete)},
          {"glusterd_rss_kib", g.glusterd_rss}};
}

int Main(int argc, char** argv) {
  InstallSignalThread();
  Flags flags("brick_mux_bench",
              "Brick-multiplexing benchmark: one brickd, many bricks; GlusterFS side by side.");
  flags.AddString("brickd", CAIRN_BRICKD_DEFAULT_PATH, "brickd executable to start");
  flags.AddInt("bricks", 1000, "bricks to attach");
  flags.AddString("workdir", "/tmp",
                  "directory in which a fresh temporary directory is made (removed at exit)");
  flags.AddInt("capacity-bytes", int64_t{1} << 30, "capacity_bytes of every attached brick");
  flags.AddInt("brickd-threads", 0, "brickd --threads (0: brickd's default)");
  flags.AddString("brickd-log-level", "warn", "brickd --log-level");
  flags.AddBool("state-file", false, "give brickd a --state-file (persisted brick list)");
  flags.AddInt("statfs-samples", 10, "random bricks to StatFs in the serving check");
  flags.AddInt("idle-ms", 1000, "pause before reading idle RSS");
  flags.AddInt("seed", 0, "random seed for the serving check (0: random)");
  flags.AddBool("keep", false, "keep the temporary directory (for debugging)");
  flags.AddBool("gluster", false, "also measure GlusterFS brick multiplexing");
  flags.AddInt("gluster-volumes", 50, "GlusterFS single-brick volumes to create and start");
  flags.AddString("gluster-host", "",
                  "gluster brick host, must resolve to loopback only (default: this hostname if "
                  "it does, else 127.0.0.2)");
  flags.AddString("glusterd", "glusterd", "glusterd executable");
  flags.AddString("gluster-cli", "gluster", "gluster CLI executable");
  Status parsed = flags.Parse(argc, argv);
  if (flags.help_requested()) {
    fmt::print("{}", flags.Usage());
    return 0;
  }
  if (!parsed.ok()) {
    fmt::print(stderr, "brick_mux_bench: {}\n{}", parsed.ToString(), flags.Usage());
    return 2;
  }
  Options opt;
  opt.brickd = flags.GetString("brickd");
  opt.bricks = static_cast<int>(flags.GetInt("bricks"));
  opt.workdir = flags.GetString("workdir");
  opt.capacity_bytes = flags.GetInt("capacity-bytes");
  opt.brickd_threads = static_cast<int>(flags.GetInt("brickd-threads"));
  opt.brickd_log_level = flags.GetString("brickd-log-level");
  opt.state_file = flags.GetBool("state-file");
  opt.statfs_samples = static_cast<int>(flags.GetInt("statfs-samples"));
  opt.idle_ms = static_cast<int>(flags.GetInt("idle-ms"));
  opt.seed = static_cast<uint64_t>(flags.GetInt("seed"));
  opt.keep = flags.GetBool("keep");
  opt.gluster = flags.GetBool("gluster");
  opt.gluster_volumes = static_cast<int>(flags.GetInt("gluster-volumes"));
  opt.gluster_host = flags.GetString("gluster-host");
  opt.glusterd = flags.GetString("glusterd");
  opt.gluster_cli = flags.GetString("gluster-cli");
  if (opt.bricks < 1 || opt.bricks > 100000 || opt.gluster_volumes < 1 ||
      opt.gluster_volumes > 10000 || opt.capacity_bytes < 0 || opt.statfs_samples < 0 ||
      opt.idle_ms < 0) {
    fmt::print(stderr,
               "brick_mux_bench: --bricks, --gluster-volumes, --capacity-bytes, "
               "--statfs-samples or --idle-ms out of range\n");
    return 2;
  }

  auto exit_code_for = [](const Status& s) {
    return g_signal.load() != 0 ? 130 : (s.ok() ? 0 : 1);
  };
  auto tmp = TempDir::Create(opt.workdir, opt.keep);
  if (!tmp.ok()) {
    fmt::print(stderr, "brick_mux_bench: {}\n", tmp.status().ToString());
    return 1;
  }
  const fs::path root = (*tmp)->path();
  utsname uts{};
  ::uname(&uts);
  // Other load on the machine skews latencies: say how busy it was.
  auto loadavg = SplitWhitespace(ReadText("/proc/loadavg").value_or("? ? ?"));
  const std::string load1 = loadavg.empty() ? "?" : loadavg[0];
  fmt::print("brick_mux_bench: {} bricks{}; {} CPUs, load average {}, {} {}; workdir {}\n",
             opt.bricks,
             opt.gluster ? fmt::format(", GlusterFS {} volumes", opt.gluster_volumes) : "",
             std::thread::hardware_concurrency(), load1, uts.sysname, uts.release, root.string());

  std::vector<std::string> failures;
  CairnFigures cairn;
  Status s = RunCairn(opt, root, &cairn, &failures);
  if (s.ok()) s = CheckInterrupted();
  if (!s.ok()) {
    fmt::print(stderr, "brick_mux_bench: FAILED (Cairn): {}\n", s.ToString());
    return exit_code_for(s);
  }
  PrintCairn(cairn);

  json gluster_json;
  std::optional<GlusterFigures> gluster;
  if (!opt.gluster) {
    fmt::print("\nGlusterFS: not measured (run with --gluster)\n");
    gluster_json = {{"skipped", "not requested (--gluster)"}};
  } else if (FindExecutable(opt.glusterd).empty() || FindExecutable(opt.gluster_cli).empty()) {
    fmt::print("\nGlusterFS: not installed (scripts/setup.sh --bench)\n");
    gluster_json = {{"skipped", "not installed"}};
  } else {
    GlusterFigures g;
    GlusterRun run(opt, root / "gluster");
    s = run.Start(&g);
    if (s.ok()) s = run.Measure(&g);
    run.Cleanup(&g);
    for (const auto& p : run.problems()) failures.push_back("gluster cleanup: " + p);
    if (g_signal.load() != 0) {
      fmt::print(stderr, "brick_mux_bench: {}\n", CheckInterrupted().ToString());
      return 130;
    }
    if (s.ok()) {
      PrintGluster(g);
      gluster_json = GlusterJson(g);
      gluster = g;
    } else {
      fmt::print("\nGlusterFS: FAILED: {}\n", s.ToString());
      failures.push_back("GlusterFS: " + s.ToString());
      gluster_json = {{"error", s.ToString()}};
    }
  }

  // Side by side, ratios and targets.
  json ratios = nullptr;
  if (gluster) {
    const GlusterFigures& g = *gluster;
    auto kib = Ratio(cairn.kib_per_brick, g.kib_per_brick);
    auto p50 = Ratio(cairn.attach.p50, g.create_start.p50);
    auto p99 = Ratio(cairn.attach.p99, g.create_start.p99);
    fmt::print("\nSide by side (same run, same machine)   {:>18}  {:>18}  {:>14}\n", "Cairn",
               fmt::format("GlusterFS {}", g.version), "Cairn/Gluster");
    auto side = [](std::string_view label, const std::string& a, const std::string& b,
                   const std::string& r) {
      fmt::print("  {:<38}{:>18}  {:>18}  {:>14}\n", label, a, b, r);
    };
    side("bricks", std::to_string(cairn.bricks), std::to_string(g.volumes), "");
    side("processes serving the bricks", std::to_string(1 + cairn.children.size()),
         std::to_string(g.pids_k.size()), "");
    side("listening TCP ports", std::to_string(cairn.listening_n.size()),
         std::to_string(g.listening_k.size()), "");
    side("threads with all bricks", std::to_string(cairn.threads_n), std::to_string(g.threads_k),
         "");
    side("RSS with 1 brick, idle (KiB)", std::to_string(cairn.rss_1_idle),
         std::to_string(g.rss_1_idle), "");
    side("RSS with all bricks, idle (KiB)", std::to_string(cairn.rss_n_idle),
         std::to_string(g.rss_k_idle), "");
    side("KiB per additional brick", OptNum(cairn.kib_per_brick), OptNum(g.kib_per_brick),
         OptNum(kib, 4));
    side("attach vs create+start p50 (ms)", fmt::format("{:.3f}", cairn.attach.p50),
         fmt::format("{:.3f}", g.create_start.p50), OptNum(p50, 5));
    side("attach vs create+start p99 (ms)", fmt::format("{:.3f}", cairn.attach.p99),
         fmt::format("{:.3f}", g.create_start.p99), OptNum(p99, 5));
    side("detach vs stop+delete (ms)", fmt::format("{:.3f}", cairn.detach_ms),
         fmt::format("{:.3f} p50", g.stop_delete.p50), "");
    if (kib && *kib > 0) {
      fmt::print("  GlusterFS needs {:.0f}x the memory per extra brick", 1.0 / *kib);
    }
    if (p50 && *p50 > 0) {
      fmt::print("; adding a brick takes it {:.0f}x as long (p50)", 1.0 / *p50);
    }
    fmt::print("\n");
    ratios = {{"kib_per_brick", OptJson(kib, 5)},
              {"attach_p50", OptJson(p50, 6)},
              {"attach_p99", OptJson(p99, 6)}};
  }

  const bool kib_pass = cairn.kib_per_brick && *cairn.kib_per_brick <= kTargetKibPerBrick;
  const bool p99_pass = cairn.attach.n > 0 && cairn.attach.p99 <= kTargetAttachP99Ms;
  fmt::print("\nTargets (Cairn)\n");
  fmt::print("  {:<36}{:>14}  {}\n",
             fmt::format("RSS per idle brick <= {:.0f} KiB", kTargetKibPerBrick),
             OptNum(cairn.kib_per_brick) + " KiB", kib_pass ? "PASS" : "MISS");
  fmt::print("  {:<36}{:>14}  {}\n", fmt::format("attach p99 <= {:.0f} ms", kTargetAttachP99Ms),
             fmt::format("{:.3f} ms", cairn.attach.p99), p99_pass ? "PASS" : "MISS");
  if (!failures.empty()) {
    fmt::print("\nChecks that FAILED:\n");
    for (const auto& f : failures) fmt::print("  - {}\n", f);
  }

  json out = {{"benchmark", "brick_mux"},
              {"machine",
               {{"cpus", std::thread::hardware_concurrency()},
                {"kernel", std::string(uts.sysname) + " " + uts.release},
                {"loadavg_1m_at_start", load1}}},
              {"cairn", CairnJson(cairn)},
              {"gluster", gluster_json},
              {"ratios", ratios},
              {"targets",
               {{"kib_per_brick_max", kTargetKibPerBrick},
                {"kib_per_brick", kib_pass ? "PASS" : "MISS"},
                {"attach_p99_ms_max", kTargetAttachP99Ms},
                {"attach_p99", p99_pass ? "PASS" : "MISS"}}},
              {"failures", failures},
              {"ok", failures.empty()}};
  fmt::print("\n{}\n", out.dump());
  std::fflush(stdout);
  return failures.empty() ? 0 : 1;
}

}  // namespace
}  // namespace cairn::bench

int main(int argc, char** argv) { return cairn::bench::Main(argc, argv); }
