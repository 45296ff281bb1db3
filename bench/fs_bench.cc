// fs_bench: the file-system workloads of the FUSE-mount issue, run on a Cairn replica-3 mount and
// on a GlusterFS replica-3 volume in the same run on the same machine, with every figure, the
// Cairn/GlusterFS ratios and the targets.
//
// By default it sets both sides up itself, in one fresh temporary directory: three brickd
// processes on 127.0.0.2-4 with one brick each and a cairn-mount FUSE mount of a replica-3 volume
// over them; a private glusterd with a replica-3 volume of three bricks on this host, mounted with
// GlusterFS's FUSE client. Everything is unmounted, stopped by pid and removed at the end, on
// every exit path, Ctrl-C included. --cairn-dir / --gluster-dir run the workloads on directories
// that are already mounted instead.
//
//   cmake --build build -j2 --target fs_bench
//   ./build/bench/fs_bench [--quick] [--only cairn|gluster|both] [--json FILE]    # as root
//
// Workloads, in this order: sequential 1 MiB write (fsync included) and read of one file;
// 4 KiB random write (fsync at the end included) and read, one file per job, fixed duration;
// create / stat / read of small files, one directory per job, then `ls -lR` and `find` over them
// (fork/exec, output to /dev/null), then delete; mkdir and rmdir of directories, one parent per
// job. The page cache is dropped before every measured phase.
//
// A benchmark, not a test: exit 0 even when a target is missed; 1 when something broke, 2 for
// bad flags, 130 when interrupted. See bench/README.md.
#include <arpa/inet.h>
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spdlog/fmt/fmt.h>
#include <sys/mount.h>
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
#include <functional>
#include <latch>
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
#ifndef CAIRN_MOUNT_DEFAULT_PATH
#define CAIRN_MOUNT_DEFAULT_PATH "cairn-mount"
#endif

namespace cairn::bench {
namespace {

namespace fs = std::filesystem;
namespace pb = ::cairn::brick::v1;
using Clock = std::chrono::steady_clock;
using nlohmann::json;

constexpr int kGlusterdPort = 24007;
constexpr char kVolumeName[] = "fsbench";
constexpr int kReplica = 3;
constexpr size_t kMiB = size_t{1} << 20;
constexpr size_t kSmallFileBytes = 4096;
constexpr size_t kBlockBytes = 4096;  // random I/O block
constexpr auto kMountTimeout = std::chrono::seconds(20);
constexpr auto kCommandTimeout = std::chrono::minutes(30);

double SecondsBetween(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

std::string ErrnoText(int err) { return std::strerror(err); }

// `what path: strerror(errno)`, carrying errno.
Status ErrnoStatus(std::string_view what, const std::string& path) {
  const int err = errno;
  return Status(StatusCode::kInternal, fmt::format("{} {}: {}", what, path, ErrnoText(err)), err);
}

// ---- Signals: SIGINT/SIGTERM/SIGHUP only set a flag; the main thread and the workload threads
// notice it between operations and unwind through the normal cleanup.

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
      static constexpr char kMsg[] = "\nfs_bench: interrupted; cleaning up\n";
      if (::write(STDERR_FILENO, kMsg, sizeof(kMsg) - 1) < 0) {
      }
    }
  }).detach();
}

bool Interrupted() { return g_signal.load(std::memory_order_relaxed) != 0; }

Status CheckInterrupted() {
  const int sig = g_signal.load();
  if (sig == 0) return Status::Ok();
  return Status::Aborted(fmt::format("interrupted by signal {} ({})", sig, strsignal(sig)));
}

// Sleeps `ms` milliseconds, waking early on a signal.
void SleepMs(int ms) {
  const auto until = Clock::now() + std::chrono::milliseconds(ms);
  while (!Interrupted() && Clock::now() < until) {
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

std::optional<std::string> ReadText(const std::string& path) {
  auto r = ReadFile(path);
  if (!r.ok()) return std::nullopt;
  return std::move(r).value();
}

// The last `lines` lines of a log file, indented, for error messages.
std::string LogTail(const fs::path& path, size_t lines = 20) {
  auto text = ReadText(path.string());
  if (!text || text->empty()) return "  (" + path.string() + " is empty or missing)";
  std::vector<std::string> all;
  std::istringstream in(*text);
  std::string line;
  while (std::getline(in, line)) all.push_back(line);
  const size_t from = all.size() > lines ? all.size() - lines : 0;
  std::string out = "  --- last lines of " + path.string() + " ---";
  for (size_t i = from; i < all.size(); ++i) out += "\n  " + all[i];
  return out;
}

// ---- /proc readers.

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

// True while `pid` exists and is not a zombie.
bool ProcessAlive(pid_t pid) {
  auto text = ReadText(fmt::format("/proc/{}/stat", pid));
  if (!text) return false;
  const size_t paren = text->rfind(')');
  if (paren == std::string::npos || paren + 2 >= text->size()) return false;
  const char state = (*text)[paren + 2];
  return state != 'Z' && state != 'X';
}

// Live processes (other than this one and `except`) whose command line contains `needle`.
std::vector<pid_t> ProcessesNaming(const std::string& needle, pid_t except) {
  std::vector<pid_t> out;
  for (pid_t pid : AllPids()) {
    if (pid == ::getpid() || pid == except) continue;
    if (Join(ProcCmdline(pid), " ").find(needle) != std::string::npos && ProcessAlive(pid)) {
      out.push_back(pid);
    }
  }
  return out;
}

// True iff some TCP socket of this network namespace listens on `port`.
bool TcpPortListening(int port) {
  for (const char* file : {"/proc/self/net/tcp", "/proc/self/net/tcp6"}) {
    auto text = ReadText(file);
    if (!text) continue;
    std::istringstream in(*text);
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
      auto f = SplitWhitespace(line);
      // sl local_address rem_address st ...
      if (f.size() < 4 || f[3] != "0A") continue;
      const size_t colon = f[1].rfind(':');
      if (colon != std::string::npos &&
          std::strtol(f[1].c_str() + colon + 1, nullptr, 16) == port) {
        return true;
      }
    }
  }
  return false;
}

// SIGTERM to one process by pid, SIGKILL if it is still there 5 s later.
void KillByPid(pid_t pid) {
  ::kill(pid, SIGTERM);
  const auto deadline = Clock::now() + std::chrono::seconds(5);
  while (ProcessAlive(pid) && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (ProcessAlive(pid)) ::kill(pid, SIGKILL);
}

// ---- Mounts (/proc/self/mountinfo).

struct MountEntry {
  std::string mountpoint;
  std::string fstype;
  std::string source;
};

// Undoes mountinfo's octal escapes (\040 for a space, ...).
std::string UnescapeMountField(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() && std::isdigit(static_cast<unsigned char>(s[i + 1]))) {
      out += static_cast<char>(std::strtol(s.substr(i + 1, 3).c_str(), nullptr, 8));
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::vector<MountEntry> ReadMounts() {
  std::vector<MountEntry> out;
  auto text = ReadText("/proc/self/mountinfo");
  if (!text) return out;
  std::istringstream in(*text);
  std::string line;
  while (std::getline(in, line)) {
    // id parent major:minor root mountpoint options [optional...] - fstype source super-options
    auto f = SplitWhitespace(line);
    auto dash = std::find(f.begin(), f.end(), "-");
    if (f.size() < 5 || dash == f.end() || std::distance(dash, f.end()) < 3) continue;
    out.push_back({UnescapeMountField(f[4]), *(dash + 1), UnescapeMountField(*(dash + 2))});
  }
  return out;
}

// The mount at exactly `path` (the topmost one), if any.
std::optional<MountEntry> MountAt(const fs::path& path) {
  std::optional<MountEntry> found;
  for (auto& m : ReadMounts()) {
    if (m.mountpoint == path.string()) found = m;
  }
  return found;
}

// The mount holding `path`: the longest mount point that is a prefix of it.
std::optional<MountEntry> MountContaining(const fs::path& path) {
  std::error_code ec;
  const std::string p = fs::weakly_canonical(path, ec).string();
  std::optional<MountEntry> best;
  for (auto& m : ReadMounts()) {
    const bool under =
        m.mountpoint == "/" || p == m.mountpoint ||
        (p.size() > m.mountpoint.size() && p.compare(0, m.mountpoint.size(), m.mountpoint) == 0 &&
         p[m.mountpoint.size()] == '/');
    if (under && (!best || m.mountpoint.size() >= best->mountpoint.size())) best = m;
  }
  return best;
}

// ---- Processes this program starts.

// Forks and execs argv[0] (a path: no PATH search) with stdin from /dev/null, stdout on
// `stdout_fd` and stderr on `stderr_fd`. The child gets its own process group (a Ctrl-C reaches
// only this program, which then stops its children in order) and SIGTERM should this program die
// first.
StatusOr<pid_t> Spawn(const std::vector<std::string>& argv, int stdout_fd, int stderr_fd) {
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
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(126);
    const int in = open("/dev/null", O_RDONLY);
    if (in < 0 || dup2(in, STDIN_FILENO) < 0 || dup2(stdout_fd, STDOUT_FILENO) < 0 ||
        dup2(stderr_fd, STDERR_FILENO) < 0) {
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
    const int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) return ErrnoStatus("open", log_path.string());
    auto pid = Spawn(argv, fd, fd);
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
  bool ExitedCleanly() const { return ExitCode() == 0; }
  // The exit code once it has exited normally; -1 while running, if killed by a signal or gone.
  int ExitCode() const {
    if (!reaped_ || wait_status_ < 0 || !WIFEXITED(wait_status_)) return -1;
    return WEXITSTATUS(wait_status_);
  }

  // Waits up to `d` for the process to exit by itself; true iff it did.
  bool WaitFor(std::chrono::milliseconds d) {
    const auto deadline = Clock::now() + d;
    for (;;) {
      Poll();
      if (reaped_) return true;
      if (Clock::now() >= deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }

  // SIGTERM, up to `grace` to exit, then SIGKILL. Sets needed_sigkill() when SIGTERM was not
  // enough.
  void Stop(std::chrono::milliseconds grace) {
    if (!Running()) return;
    ::kill(pid_, SIGTERM);
    if (!WaitFor(grace)) {
      needed_sigkill_ = true;
      ::kill(pid_, SIGKILL);
      WaitFor(std::chrono::seconds(10));
    }
  }
  bool needed_sigkill() const { return needed_sigkill_; }

 private:
  ChildProcess(std::string name, pid_t pid) : name_(std::move(name)), pid_(pid) {}

  void Poll() {
    if (reaped_) return;
    int status = 0;
    const pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      reaped_ = true;
      wait_status_ = status;
    } else if (r < 0 && errno == ECHILD) {
      reaped_ = true;
      wait_status_ = -1;
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
  std::string output;  // stdout and stderr (stderr only with discard_stdout)
  double seconds = 0;  // wall clock from fork to reaping
};

// Runs argv to completion with its output captured, killing it (by pid) after `timeout` or on a
// signal to this program (unless !interruptible). With `discard_stdout` its stdout goes to
// /dev/null and only stderr is captured, so that the time measured is the command's own.
StatusOr<CommandResult> RunCommand(const std::vector<std::string>& argv,
                                   std::chrono::milliseconds timeout, bool interruptible,
                                   bool discard_stdout = false) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return Status::Internal("pipe: " + ErrnoText(errno));
  int out_fd = fds[1];
  if (discard_stdout) {
    out_fd = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (out_fd < 0) {
      ::close(fds[0]);
      ::close(fds[1]);
      return ErrnoStatus("open", "/dev/null");
    }
  }
  const auto start = Clock::now();
  auto pid = Spawn(argv, out_fd, fds[1]);
  ::close(fds[1]);
  if (discard_stdout) ::close(out_fd);
  if (!pid.ok()) {
    ::close(fds[0]);
    return pid.status();
  }
  CommandResult result;
  bool timed_out = false, interrupted = false;
  for (;;) {
    pollfd p{fds[0], POLLIN, 0};
    if (::poll(&p, 1, 20) > 0) {
      char buf[4096];
      const ssize_t got = ::read(fds[0], buf, sizeof(buf));
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
    if (interruptible && Interrupted()) {
      interrupted = true;
      break;
    }
  }
  if (timed_out || interrupted) ::kill(*pid, SIGKILL);
  ::close(fds[0]);
  int status = 0;
  while (::waitpid(*pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.seconds = SecondsBetween(start, Clock::now());
  if (interrupted) return CheckInterrupted();
  if (timed_out) {
    return Status::DeadlineExceeded(
        fmt::format("'{}' did not finish in {} s", Join(argv, " "),
                    std::chrono::duration_cast<std::chrono::seconds>(timeout).count()));
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
  const std::string path =
      std::string(env != nullptr ? env : "") + ":/usr/local/sbin:/usr/sbin:/sbin:/usr/bin:/bin";
  std::istringstream in(path);
  std::string dir;
  while (std::getline(in, dir, ':')) {
    if (dir.empty()) continue;
    const std::string candidate = dir + "/" + name;
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
    std::string tmpl = (fs::path(parent) / "cairn-fs-bench-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) return ErrnoStatus("mkdtemp", tmpl);
    return std::unique_ptr<TempDir>(new TempDir(fs::canonical(tmpl), keep));
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    if (keep_) {
      fmt::print(stderr, "fs_bench: kept {} (--keep)\n", path_.string());
      return;
    }
    // Only once nothing is mounted below it: never remove through a mount.
    for (const auto& m : ReadMounts()) {
      if (m.mountpoint.rfind(path_.string() + "/", 0) == 0) {
        fmt::print(stderr, "fs_bench: {} is still mounted; not removing {}\n", m.mountpoint,
                   path_.string());
        return;
      }
    }
    fmt::print(stderr, "fs_bench: removing {}\n", path_.string());
    std::error_code ec;
    fs::remove_all(path_, ec);
    if (ec) {
      fmt::print(stderr, "fs_bench: could not remove {}: {}\n", path_.string(), ec.message());
    }
  }
  const fs::path& path() const { return path_; }

 private:
  TempDir(fs::path path, bool keep) : path_(std::move(path)), keep_(keep) {}
  fs::path path_;
  bool keep_;
};

// ---- A FUSE mount served by a daemon this program started in the foreground.

class FuseMount {
 public:
  // Starts the daemon (argv, output appended to `log`) and waits up to kMountTimeout for a
  // fuse* mount at `mountpoint`, then for the mount to answer a stat. `clean_exits` are the exit
  // codes that mean the daemon ended normally after the unmount.
  static StatusOr<std::unique_ptr<FuseMount>> Start(std::string name,
                                                    const std::vector<std::string>& argv,
                                                    fs::path mountpoint, fs::path log,
                                                    std::set<int> clean_exits = {0}) {
    std::unique_ptr<FuseMount> m(
        new FuseMount(std::move(name), std::move(mountpoint), log, std::move(clean_exits)));
    fmt::print(stderr, "{}: starting {}\n", m->name_, Join(argv, " "));
    CAIRN_ASSIGN_OR_RETURN(m->daemon_, ChildProcess::Start(m->name_, argv, log));
    const auto deadline = Clock::now() + kMountTimeout;
    for (;;) {
      CAIRN_RETURN_IF_ERROR(CheckInterrupted());
      auto entry = MountAt(m->mountpoint_);
      if (entry && entry->fstype.rfind("fuse", 0) == 0) {
        m->fstype_ = entry->fstype;
        break;
      }
      if (!m->daemon_->Running()) {
        return Status::Unavailable(fmt::format("{} exited before mounting {} ({})\n{}", m->name_,
                                               m->mountpoint_.string(), m->daemon_->Ended(),
                                               LogTail(log)));
      }
      if (Clock::now() >= deadline) {
        return Status::DeadlineExceeded(fmt::format("{} did not mount {} within {} s\n{}", m->name_,
                                                    m->mountpoint_.string(), kMountTimeout.count(),
                                                    LogTail(log)));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    struct stat st {};
    if (::stat(m->mountpoint_.c_str(), &st) != 0) {
      const std::string why = ErrnoText(errno);
      return Status::Unavailable(fmt::format("{} mounted {} but it does not answer: {}\n{}",
                                             m->name_, m->mountpoint_.string(), why, LogTail(log)));
    }
    return m;
  }
  FuseMount(const FuseMount&) = delete;
  FuseMount& operator=(const FuseMount&) = delete;
  ~FuseMount() {
    std::vector<std::string> problems;
    Unmount(&problems);
    for (const auto& p : problems) fmt::print(stderr, "{}: {}\n", name_, p);
  }

  const fs::path& mountpoint() const { return mountpoint_; }
  const std::string& fstype() const { return fstype_; }

  // Unmounts (lazily if still busy after 5 s), waits up to 10 s for the daemon to exit, then
  // stops it by pid. What went wrong is appended to `problems`. Idempotent.
  void Unmount(std::vector<std::string>* problems) {
    if (done_) return;
    done_ = true;
    const auto deadline = Clock::now() + std::chrono::seconds(5);
    while (MountAt(mountpoint_)) {
      if (::umount2(mountpoint_.c_str(), 0) == 0) continue;
      if (errno == EBUSY && Clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        continue;
      }
      const std::string why = ErrnoText(errno);
      if (::umount2(mountpoint_.c_str(), MNT_DETACH) == 0) {
        problems->push_back(
            fmt::format("{} was busy ({}); detached it lazily", mountpoint_.string(), why));
      } else {
        const std::string lazy_why = ErrnoText(errno);
        problems->push_back(
            fmt::format("could not unmount {}: {}; unmount it by hand (umount -l {})",
                        mountpoint_.string(), lazy_why, mountpoint_.string()));
      }
      break;
    }
    if (daemon_ == nullptr) return;
    if (!daemon_->WaitFor(std::chrono::seconds(10))) {
      daemon_->Stop(std::chrono::seconds(10));
      problems->push_back(fmt::format("{} (pid {}) did not exit after the unmount; stopped it ({})",
                                      name_, daemon_->pid(), daemon_->Ended()));
    } else if (!clean_exits_.contains(daemon_->ExitCode())) {
      problems->push_back(fmt::format("{} (pid {}) ended with {}\n{}", name_, daemon_->pid(),
                                      daemon_->Ended(), LogTail(log_)));
    }
  }

 private:
  FuseMount(std::string name, fs::path mountpoint, fs::path log, std::set<int> clean_exits)
      : name_(std::move(name)),
        mountpoint_(std::move(mountpoint)),
        log_(std::move(log)),
        clean_exits_(std::move(clean_exits)) {}

  std::string name_;
  fs::path mountpoint_;
  fs::path log_;
  std::set<int> clean_exits_;
  std::unique_ptr<ChildProcess> daemon_;
  std::string fstype_;
  bool done_ = false;
};

// ---- Options.

struct Options {
  int64_t seq_mib = 1024;
  int files = 10000;
  int dirs = 2000;
  int seconds = 10;
  int jobs = 4;
  int64_t random_file_mib = 256;
  bool quick = false;
  bool run_cairn = true;
  bool run_gluster = true;
  std::string cairn_dir;
  std::string gluster_dir;
  bool keep = false;
  std::string json_file;
  bool drop_caches = true;
  std::string workdir;
  std::string brickd;
  std::string brickd_log_level;
  std::string cairn_mount;
  std::string cairn_mount_options;
  std::string gluster_host;
  std::string glusterd;
  std::string gluster_cli;
  std::string glusterfs;
  uint64_t seed = 0;
};

// ---- Workloads and their figures.

enum class Better { kHigher, kLower };

struct Workload {
  const char* key;    // JSON key
  const char* label;  // table row
  const char* unit;
  const char* counted;  // what Figure::ops counts
  Better better;
  double target;  // minimum Cairn/GlusterFS ratio (kLower: times faster) from the issue; 0: none
};

// In the order they run.
constexpr Workload kWorkloads[] = {
    {"seq_write", "sequential write, 1 MiB + fsync", "MiB/s", "MiB", Better::kHigher, 3.0},
    {"seq_read", "sequential read, 1 MiB", "MiB/s", "MiB", Better::kHigher, 1.5},
    {"rand_write", "4 KiB random write + fsync", "IOPS", "I/Os", Better::kHigher, 5.0},
    {"rand_read", "4 KiB random read", "IOPS", "I/Os", Better::kHigher, 3.0},
    {"create", "create 4 KiB files", "files/s", "files", Better::kHigher, 10.0},
    {"stat", "stat", "files/s", "files", Better::kHigher, 10.0},
    {"read", "small-file read", "files/s", "files", Better::kHigher, 5.0},
    {"ls_lr", "ls -lR", "s", "entries", Better::kLower, 5.0},
    {"find", "find", "s", "entries", Better::kLower, 0},
    {"delete", "delete", "files/s", "files", Better::kHigher, 10.0},
    {"mkdir", "mkdir", "dirs/s", "directories", Better::kHigher, 10.0},
    {"rmdir", "rmdir", "dirs/s", "directories", Better::kHigher, 0},
};

const Workload& WorkloadOf(std::string_view key) {
  for (const auto& w : kWorkloads) {
    if (key == w.key) return w;
  }
  std::abort();  // a typo in this file
}

std::string FormatValue(const Workload& w, double v) {
  if (std::string_view(w.unit) == "s") return fmt::format("{:.3f} s", v);
  if (std::string_view(w.unit) == "MiB/s") return fmt::format("{:.1f} MiB/s", v);
  return fmt::format("{:.0f} {}", v, w.unit);
}

struct Figure {
  double value = 0;    // in the workload's unit
  double seconds = 0;  // wall time measured
  int64_t ops = 0;     // MiB (sequential), I/Os (random), files, directories, or entries listed
};

// What was measured on one side, and what went wrong.
struct SideResult {
  std::string name;       // "cairn" or "gluster"
  bool measured = false;  // requested and attempted
  std::string target;     // what the workloads ran on, for humans
  std::string path;       // the directory the workloads ran in
  std::string fstype;
  std::map<std::string, Figure> figures;
  std::string error;                  // why figures are missing; empty if none are
  std::vector<std::string> problems;  // cleanup trouble and the like: make the run fail
  std::vector<std::string> notes;     // worth knowing, but the figures stand
};

void FillRandom(std::vector<char>* buf, uint64_t seed) {
  std::mt19937_64 rng(seed);
  for (size_t i = 0; i + sizeof(uint64_t) <= buf->size(); i += sizeof(uint64_t)) {
    const uint64_t v = rng();
    std::memcpy(buf->data() + i, &v, sizeof(v));
  }
}

// An owned file descriptor. Close() reports close's error, which on FUSE carries flush errors.
class UniqueFd {
 public:
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  // Closes now; false (errno set) if close failed.
  bool Close() {
    const int fd = std::exchange(fd_, -1);
    return fd < 0 || ::close(fd) == 0;
  }

 private:
  int fd_;
};

Status WriteAll(int fd, const char* data, size_t n, const std::string& path) {
  while (n > 0) {
    const ssize_t w = ::write(fd, data, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return w < 0 ? ErrnoStatus("write", path) : Status::Internal("write returned 0");
    data += w;
    n -= static_cast<size_t>(w);
  }
  return Status::Ok();
}

// Reads to EOF into `buf` (reused), returning the byte count.
StatusOr<int64_t> ReadToEnd(int fd, std::vector<char>* buf, const std::string& path) {
  int64_t total = 0;
  for (;;) {
    const ssize_t r = ::read(fd, buf->data(), buf->size());
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return ErrnoStatus("read", path);
    if (r == 0) return total;
    total += r;
  }
}

// Whether the jobs of a phase should stop early: one of them failed, or a signal came.
class StopFlag {
 public:
  bool stopped() const { return stop_.load(std::memory_order_relaxed) || Interrupted(); }
  void Set() { stop_.store(true); }

 private:
  std::atomic<bool> stop_{false};
};

// Runs body(job) on `jobs` threads released together; returns the wall time from the release to
// the end of the last one. The first error wins; the other jobs see the StopFlag and end early.
StatusOr<double> RunJobs(int jobs, const std::function<Status(int job, const StopFlag&)>& body) {
  StopFlag stop;
  std::latch ready(jobs);
  std::atomic<bool> go{false};
  std::vector<Status> results(static_cast<size_t>(jobs));
  std::vector<std::thread> threads;
  threads.reserve(static_cast<size_t>(jobs));
  for (int j = 0; j < jobs; ++j) {
    threads.emplace_back([&, j] {
      ready.count_down();
      go.wait(false);
      Status s = body(j, stop);
      if (!s.ok()) stop.Set();
      results[static_cast<size_t>(j)] = std::move(s);
    });
  }
  ready.wait();
  const auto start = Clock::now();
  go.store(true);
  go.notify_all();
  for (auto& t : threads) t.join();
  const double seconds = SecondsBetween(start, Clock::now());
  CAIRN_RETURN_IF_ERROR(CheckInterrupted());
  for (auto& r : results) {
    if (!r.ok()) return r;
  }
  return seconds;
}

// How many of `total` items job `job` of `jobs` handles.
int ItemsOf(int total, int jobs, int job) { return total / jobs + (job < total % jobs ? 1 : 0); }

// Runs every workload in a fresh directory `dir` and records the figures in `out`.
class WorkloadRunner {
 public:
  WorkloadRunner(const Options& opt, fs::path dir, SideResult* out)
      : opt_(opt), dir_(std::move(dir)), out_(out) {}

  Status Run() {
    CAIRN_RETURN_IF_ERROR(Sequential());
    CAIRN_RETURN_IF_ERROR(RandomIo());
    CAIRN_RETURN_IF_ERROR(SmallFiles());
    CAIRN_RETURN_IF_ERROR(Directories());
    return Status::Ok();
  }

 private:
  template <typename... Args>
  void Progress(fmt::format_string<Args...> format, Args&&... args) {
    fmt::print(stderr, "{}: {}\n", out_->name, fmt::format(format, std::forward<Args>(args)...));
  }

  void Record(const char* key, double value, double seconds, int64_t ops) {
    out_->figures[key] = Figure{value, seconds, ops};
    const Workload& w = WorkloadOf(key);
    Progress("  {:<34} {:>15}  ({} {} in {:.3f} s)", w.label, FormatValue(w, value), ops, w.counted,
             seconds);
  }

  // sync, then drops the page cache, dentries and inodes. If that is not possible (not root),
  // says so once and goes on: the figures then include cache hits.
  Status DropCaches() {
    if (!opt_.drop_caches || drop_failed_) return CheckInterrupted();
    ::sync();
    const int fd = ::open("/proc/sys/vm/drop_caches", O_WRONLY | O_CLOEXEC);
    const bool ok = fd >= 0 && ::write(fd, "3", 1) == 1;
    const int err = errno;
    if (fd >= 0) ::close(fd);
    if (!ok) {
      drop_failed_ = true;
      out_->notes.push_back("could not drop the page cache (" + ErrnoText(err) +
                            "): read and stat figures include cache hits");
      Progress("WARNING: could not drop the page cache: {}", ErrnoText(err));
    }
    return CheckInterrupted();
  }

  Status MakeDir(const fs::path& p) {
    if (::mkdir(p.c_str(), 0755) != 0) return ErrnoStatus("mkdir", p.string());
    return Status::Ok();
  }

  // One file of --size-mib written 1 MiB at a time (fsync and close included), then read back.
  Status Sequential() {
    const std::string path = (dir_ / "sequential.dat").string();
    const int64_t mib = opt_.seq_mib;
    std::vector<char> buf(kMiB);
    FillRandom(&buf, opt_.seed);
    CAIRN_RETURN_IF_ERROR(DropCaches());
    Progress("sequential write of {} MiB ...", mib);
    auto start = Clock::now();
    {
      UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
      if (!fd.valid()) return ErrnoStatus("create", path);
      for (int64_t i = 0; i < mib; ++i) {
        CAIRN_RETURN_IF_ERROR(CheckInterrupted());
        CAIRN_RETURN_IF_ERROR(WriteAll(fd.get(), buf.data(), buf.size(), path));
      }
      if (::fsync(fd.get()) != 0) return ErrnoStatus("fsync", path);
      if (!fd.Close()) return ErrnoStatus("close", path);
    }
    double s = SecondsBetween(start, Clock::now());
    Record("seq_write", static_cast<double>(mib) / s, s, mib);

    CAIRN_RETURN_IF_ERROR(DropCaches());
    Progress("sequential read of {} MiB ...", mib);
    start = Clock::now();
    int64_t total = 0;
    {
      UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
      if (!fd.valid()) return ErrnoStatus("open", path);
      for (;;) {
        CAIRN_RETURN_IF_ERROR(CheckInterrupted());
        const ssize_t r = ::read(fd.get(), buf.data(), buf.size());
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return ErrnoStatus("read", path);
        if (r == 0) break;
        total += r;
      }
      if (!fd.Close()) return ErrnoStatus("close", path);
    }
    s = SecondsBetween(start, Clock::now());
    if (total != mib * static_cast<int64_t>(kMiB)) {
      return Status::Internal(fmt::format("read {} bytes back from {}, wrote {}", total, path,
                                          mib * static_cast<int64_t>(kMiB)));
    }
    Record("seq_read", static_cast<double>(mib) / s, s, mib);
    if (::unlink(path.c_str()) != 0) return ErrnoStatus("unlink", path);
    return Status::Ok();
  }

  // One preallocated file per job; 4 KiB pwrite/pread at random aligned offsets for --seconds.
  Status RandomIo() {
    const int jobs = opt_.jobs;
    const int64_t blocks = opt_.random_file_mib * static_cast<int64_t>(kMiB / kBlockBytes);
    auto file = [&](int j) { return (dir_ / fmt::format("random-{}.dat", j)).string(); };
    std::vector<char> mib_buf(kMiB);
    FillRandom(&mib_buf, opt_.seed + 1);

    CAIRN_RETURN_IF_ERROR(DropCaches());
    Progress("random I/O: writing {} x {} MiB files (not timed) ...", jobs, opt_.random_file_mib);
    auto prepared = RunJobs(jobs, [&](int j, const StopFlag& stop) -> Status {
      const std::string path = file(j);
      UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
      if (!fd.valid()) return ErrnoStatus("create", path);
      for (int64_t i = 0; i < opt_.random_file_mib && !stop.stopped(); ++i) {
        CAIRN_RETURN_IF_ERROR(WriteAll(fd.get(), mib_buf.data(), mib_buf.size(), path));
      }
      if (::fsync(fd.get()) != 0) return ErrnoStatus("fsync", path);
      if (!fd.Close()) return ErrnoStatus("close", path);
      return Status::Ok();
    });
    if (!prepared.ok()) return prepared.status();

    std::vector<int64_t> ops(static_cast<size_t>(jobs), 0);
    const auto duration = std::chrono::seconds(opt_.seconds);
    CAIRN_RETURN_IF_ERROR(DropCaches());
    Progress("4 KiB random write, {} jobs, {} s ...", jobs, opt_.seconds);
    auto written = RunJobs(jobs, [&](int j, const StopFlag& stop) -> Status {
      const std::string path = file(j);
      UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
      if (!fd.valid()) return ErrnoStatus("open", path);
      ::posix_fadvise(fd.get(), 0, 0, POSIX_FADV_RANDOM);
      std::vector<char> block(kBlockBytes);
      FillRandom(&block, opt_.seed + 100 + static_cast<uint64_t>(j));
      std::mt19937_64 rng(opt_.seed + 200 + static_cast<uint64_t>(j));
      std::uniform_int_distribution<int64_t> pick(0, blocks - 1);
      const auto deadline = Clock::now() + duration;
      int64_t n = 0;
      while (!stop.stopped() && Clock::now() < deadline) {
        std::memcpy(block.data(), &n, sizeof(n));  // no two writes alike
        const off_t offset = static_cast<off_t>(pick(rng)) * static_cast<off_t>(kBlockBytes);
        const ssize_t w = ::pwrite(fd.get(), block.data(), kBlockBytes, offset);
        if (w < 0 && errno == EINTR) continue;
        if (w != static_cast<ssize_t>(kBlockBytes)) {
          return w < 0 ? ErrnoStatus("pwrite", path)
                       : Status::Internal(fmt::format("short pwrite of {} bytes on {}", w, path));
        }
        ++n;
      }
      ops[static_cast<size_t>(j)] = n;
      if (::fsync(fd.get()) != 0) return ErrnoStatus("fsync", path);
      if (!fd.Close()) return ErrnoStatus("close", path);
      return Status::Ok();
    });
    if (!written.ok()) return written.status();
    int64_t total = 0;
    for (int64_t n : ops) total += n;
    Record("rand_write", static_cast<double>(total) / *written, *written, total);

    std::fill(ops.begin(), ops.end(), 0);
    CAIRN_RETURN_IF_ERROR(DropCaches());
    Progress("4 KiB random read, {} jobs, {} s ...", jobs, opt_.seconds);
    auto read = RunJobs(jobs, [&](int j, const StopFlag& stop) -> Status {
      const std::string path = file(j);
      UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
      if (!fd.valid()) return ErrnoStatus("open", path);
      ::posix_fadvise(fd.get(), 0, 0, POSIX_FADV_RANDOM);
      std::vector<char> block(kBlockBytes);
      std::mt19937_64 rng(opt_.seed + 300 + static_cast<uint64_t>(j));
      std::uniform_int_distribution<int64_t> pick(0, blocks - 1);
      const auto deadline = Clock::now() + duration;
      int64_t n = 0;
      while (!stop.stopped() && Clock::now() < deadline) {
        const off_t offset = static_cast<off_t>(pick(rng)) * static_cast<off_t>(kBlockBytes);
        const ssize_t r = ::pread(fd.get(), block.data(), kBlockBytes, offset);
        if (r < 0 && errno == EINTR) continue;
        if (r != static_cast<ssize_t>(kBlockBytes)) {
          return r < 0 ? ErrnoStatus("pread", path)
                       : Status::Internal(
                             fmt::format("short pread of {} bytes at {} on {}", r, offset, path));
        }
        ++n;
      }
      ops[static_cast<size_t>(j)] = n;
      return Status::Ok();
    });
    if (!read.ok()) return read.status();
    total = 0;
    for (int64_t n : ops) total += n;
    Record("rand_read", static_cast<double>(total) / *read, *read, total);

    for (int j = 0; j < jobs; ++j) {
      if (::unlink(file(j).c_str()) != 0) return ErrnoStatus("unlink", file(j));
    }
    return Status::Ok();
  }

  // A phase over `total` items split among the jobs: op(job, index, scratch) for each, the page
  // cache dropped first; records items per second under `key`.
  Status ItemPhase(const char* key, int total,
                   const std::function<Status(int, int, std::vector<char>*)>& op) {
    CAIRN_RETURN_IF_ERROR(DropCaches());
    Progress("{}: {} {}, {} jobs ...", key, total, WorkloadOf(key).counted, opt_.jobs);
    auto seconds = RunJobs(opt_.jobs, [&](int j, const StopFlag& stop) -> Status {
      std::vector<char> scratch(2 * kSmallFileBytes);
      const int n = ItemsOf(total, opt_.jobs, j);
      for (int i = 0; i < n && !stop.stopped(); ++i) CAIRN_RETURN_IF_ERROR(op(j, i, &scratch));
      return Status::Ok();
    });
    if (!seconds.ok()) return seconds.status().WithContext(key);
    Record(key, total / *seconds, *seconds, total);
    return Status::Ok();
  }

  // A command over a tree (fork/exec, stdout to /dev/null), the page cache dropped first.
  Status CommandPhase(const char* key, const std::vector<std::string>& argv, int64_t entries) {
    CAIRN_RETURN_IF_ERROR(DropCaches());
    Progress("{} ...", Join(argv, " "));
    CAIRN_ASSIGN_OR_RETURN(CommandResult r,
                           RunCommand(argv, kCommandTimeout, true, /*discard_stdout=*/true));
    if (r.exit_code != 0) {
      return Status::Internal(
          fmt::format("'{}' failed (exit {}): {}", Join(argv, " "), r.exit_code, r.output));
    }
    Record(key, r.seconds, r.seconds, entries);
    return Status::Ok();
  }

  // Create, stat, read of small files (one directory per job), ls -lR, find, delete.
  Status SmallFiles() {
    const fs::path root = dir_ / "small";
    CAIRN_RETURN_IF_ERROR(MakeDir(root));
    std::vector<std::string> job_dirs;
    for (int j = 0; j < opt_.jobs; ++j) {
      job_dirs.push_back((root / fmt::format("job{}", j)).string());
      CAIRN_RETURN_IF_ERROR(MakeDir(job_dirs.back()));
    }
    auto name = [&](int j, int i) {
      return fmt::format("{}/f{:06d}", job_dirs[static_cast<size_t>(j)], i);
    };
    std::vector<char> data(kSmallFileBytes);
    FillRandom(&data, opt_.seed + 2);
    const int files = opt_.files;

    CAIRN_RETURN_IF_ERROR(ItemPhase("create", files, [&](int j, int i, std::vector<char>*) {
      const std::string path = name(j, i);
      UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
      if (!fd.valid()) return ErrnoStatus("create", path);
      CAIRN_RETURN_IF_ERROR(WriteAll(fd.get(), data.data(), data.size(), path));
      if (!fd.Close()) return ErrnoStatus("close", path);
      return Status::Ok();
    }));
    CAIRN_RETURN_IF_ERROR(ItemPhase("stat", files, [&](int j, int i, std::vector<char>*) {
      const std::string path = name(j, i);
      struct stat st {};
      if (::lstat(path.c_str(), &st) != 0) return ErrnoStatus("stat", path);
      if (!S_ISREG(st.st_mode) || st.st_size != static_cast<off_t>(kSmallFileBytes)) {
        return Status::Internal(
            fmt::format("stat {}: mode {:o}, size {}; expected a regular "
                        "file of {} bytes",
                        path, st.st_mode, st.st_size, kSmallFileBytes));
      }
      return Status::Ok();
    }));
    CAIRN_RETURN_IF_ERROR(ItemPhase("read", files, [&](int j, int i, std::vector<char>* buf) {
      const std::string path = name(j, i);
      UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
      if (!fd.valid()) return ErrnoStatus("open", path);
      CAIRN_ASSIGN_OR_RETURN(int64_t got, ReadToEnd(fd.get(), buf, path));
      if (got != static_cast<int64_t>(kSmallFileBytes) ||
          std::memcmp(buf->data(), data.data(), kSmallFileBytes) != 0) {
        return Status::Internal(fmt::format("read {}: {} bytes, not what was written", path, got));
      }
      if (!fd.Close()) return ErrnoStatus("close", path);
      return Status::Ok();
    }));
    const int64_t entries = files + opt_.jobs;
    CAIRN_RETURN_IF_ERROR(CommandPhase("ls_lr", {ls_, "-lR", root.string()}, entries));
    CAIRN_RETURN_IF_ERROR(CommandPhase("find", {find_, root.string()}, entries));
    CAIRN_RETURN_IF_ERROR(ItemPhase("delete", files, [&](int j, int i, std::vector<char>*) {
      const std::string path = name(j, i);
      if (::unlink(path.c_str()) != 0) return ErrnoStatus("unlink", path);
      return Status::Ok();
    }));
    // Every file must be gone: the job directories must be empty.
    for (const auto& d : job_dirs) {
      if (::rmdir(d.c_str()) != 0) return ErrnoStatus("rmdir (after deleting its files)", d);
    }
    if (::rmdir(root.c_str()) != 0) return ErrnoStatus("rmdir", root.string());
    return Status::Ok();
  }

  // mkdir and rmdir of --dirs directories, one parent directory per job.
  Status Directories() {
    const fs::path root = dir_ / "dirs";
    CAIRN_RETURN_IF_ERROR(MakeDir(root));
    std::vector<std::string> parents;
    for (int j = 0; j < opt_.jobs; ++j) {
      parents.push_back((root / fmt::format("job{}", j)).string());
      CAIRN_RETURN_IF_ERROR(MakeDir(parents.back()));
    }
    auto name = [&](int j, int i) {
      return fmt::format("{}/d{:06d}", parents[static_cast<size_t>(j)], i);
    };
    CAIRN_RETURN_IF_ERROR(ItemPhase("mkdir", opt_.dirs, [&](int j, int i, std::vector<char>*) {
      const std::string path = name(j, i);
      if (::mkdir(path.c_str(), 0755) != 0) return ErrnoStatus("mkdir", path);
      return Status::Ok();
    }));
    CAIRN_RETURN_IF_ERROR(ItemPhase("rmdir", opt_.dirs, [&](int j, int i, std::vector<char>*) {
      const std::string path = name(j, i);
      if (::rmdir(path.c_str()) != 0) return ErrnoStatus("rmdir", path);
      return Status::Ok();
    }));
    for (const auto& p : parents) {
      if (::rmdir(p.c_str()) != 0) return ErrnoStatus("rmdir (after removing its directories)", p);
    }
    if (::rmdir(root.c_str()) != 0) return ErrnoStatus("rmdir", root.string());
    return Status::Ok();
  }

  const Options& opt_;
  const fs::path dir_;
  SideResult* out_;
  const std::string ls_ = FindExecutable("ls");
  const std::string find_ = FindExecutable("find");
  bool drop_failed_ = false;
};

// Runs the workloads in a fresh directory under `base` (removed afterwards unless --keep).
Status RunWorkloads(const Options& opt, const fs::path& base, SideResult* out) {
  std::string tmpl = (base / "fs_bench.XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) return ErrnoStatus("mkdtemp", tmpl);
  const fs::path dir = tmpl;
  out->path = dir.string();
  if (auto m = MountContaining(dir)) out->fstype = m->fstype;
  fmt::print(stderr, "{}: workloads in {} ({})\n", out->name, dir.string(), out->fstype);
  WorkloadRunner runner(opt, dir, out);
  Status s = runner.Run();
  if (opt.keep) {
    out->notes.push_back("kept " + dir.string() + " (--keep)");
    return s;
  }
  if (Interrupted() && !s.ok()) return s;  // a quick exit matters more than a tidy tree
  fmt::print(stderr, "{}: removing {}\n", out->name, dir.string());
  std::error_code ec;
  fs::remove_all(dir, ec);
  if (ec) out->problems.push_back("could not remove " + dir.string() + ": " + ec.message());
  return s;
}

// ---- Cairn: three brickd processes on 127.0.0.2-4, one brick each, a replica-3 FUSE mount.

// Polls for brickd's ready file: {"pid": ..., "grpc_port": ..., "metrics_port": ...}.
StatusOr<json> WaitForReadyFile(ChildProcess& brickd, const fs::path& ready, const fs::path& log) {
  const auto deadline = Clock::now() + std::chrono::seconds(10);
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
      return Status::DeadlineExceeded("brickd wrote no ready file within 10 s\n" + LogTail(log));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

class CairnCluster {
 public:
  CairnCluster(const Options& opt, fs::path dir) : opt_(opt), dir_(std::move(dir)) {}
  CairnCluster(const CairnCluster&) = delete;
  CairnCluster& operator=(const CairnCluster&) = delete;
  ~CairnCluster() { Stop(); }

  // Starts the brickds, attaches the bricks, writes the volume spec and mounts it.
  Status Start(SideResult* out) {
    const fs::path bricks = dir_ / "bricks";
    const fs::path mnt = dir_ / "mnt";
    std::error_code ec;
    for (const auto& d : {bricks, mnt}) {
      fs::create_directories(d, ec);
      if (ec) return Status::Internal("create " + d.string() + ": " + ec.message());
    }
    const std::string admin_token = RandomHexToken(32);
    const fs::path admin_file = dir_ / "admin.token";
    const fs::path data_file = dir_ / "data.token";
    CAIRN_RETURN_IF_ERROR(WriteFileAtomic(admin_file.string(), admin_token + "\n", 0600));
    CAIRN_RETURN_IF_ERROR(WriteFileAtomic(data_file.string(), RandomHexToken(32) + "\n", 0600));

    for (int i = 0; i < kReplica; ++i) {
      Brickd b;
      b.host = fmt::format("127.0.0.{}", i + 2);
      b.brick_id = fmt::format("fsb-{}", i + 1);
      b.ready = dir_ / fmt::format("brickd-{}.ready.json", i + 1);
      b.log = dir_ / fmt::format("brickd-{}.log", i + 1);
      const std::vector<std::string> argv = {opt_.brickd,
                                             "--listen=" + b.host + ":0",
                                             "--token-file=" + data_file.string(),
                                             "--admin-token-file=" + admin_file.string(),
                                             "--metrics-listen=" + b.host + ":0",
                                             "--ready-file=" + b.ready.string(),
                                             "--log-level=" + opt_.brickd_log_level};
      fmt::print(stderr, "cairn: starting {}\n", Join(argv, " "));
      CAIRN_ASSIGN_OR_RETURN(b.proc, ChildProcess::Start("brickd " + b.host, argv, b.log));
      brickds_.push_back(std::move(b));
    }
    json replicas = json::array();
    std::vector<std::string> described;
    for (auto& b : brickds_) {
      CAIRN_ASSIGN_OR_RETURN(json ready, WaitForReadyFile(*b.proc, b.ready, b.log));
      auto port = ready.find("grpc_port");
      if (port == ready.end() || !port->is_number_integer() || port->get<int>() <= 0) {
        return Status::Internal("brickd ready file has no valid grpc_port: " + ready.dump());
      }
      const std::string node = fmt::format("{}:{}", b.host, port->get<int>());
      const fs::path brick_dir = bricks / b.brick_id;
      fs::create_directory(brick_dir, ec);
      if (ec) return Status::Internal("create " + brick_dir.string() + ": " + ec.message());
      CAIRN_RETURN_IF_ERROR(Attach(node, admin_token, b.brick_id, brick_dir.string())
                                .WithContext("attach " + b.brick_id + " to brickd at " + node));
      replicas.push_back({{"node", node}, {"brick_id", b.brick_id}});
      described.push_back(node + "/" + b.brick_id);
    }
    const json spec = {{"volume_id", Uuid::Random().ToString()},
                       {"name", kVolumeName},
                       {"type", "replicate"},
                       {"replica", kReplica},
                       {"arbiter", 0},
                       {"generation", 1},
                       {"size_bytes", 0},
                       {"subvolumes", json::array({replicas})}};
    const fs::path spec_file = dir_ / "volume.json";
    CAIRN_RETURN_IF_ERROR(WriteFileAtomic(spec_file.string(), spec.dump(2) + "\n", 0644));

    std::string options = "token_file=" + data_file.string() + ",allow_other";
    if (!opt_.cairn_mount_options.empty()) options += "," + opt_.cairn_mount_options;
    CAIRN_ASSIGN_OR_RETURN(mount_, FuseMount::Start("cairn-mount",
                                                    {opt_.cairn_mount, "-f", "-o", options,
                                                     spec_file.string(), mnt.string()},
                                                    mnt, dir_ / "cairn-mount.log"));
    out->target = fmt::format("cairn-mount of replica-{} volume '{}' ({}), {} at {}", kReplica,
                              kVolumeName, Join(described, ", "), mount_->fstype(), mnt.string());
    fmt::print(stderr, "cairn: mounted: {}\n", out->target);
    if (mount_->fstype().rfind("fuse.cairn", 0) != 0) {
      out->notes.push_back("the mount's file system type is " + mount_->fstype() +
                           ", not fuse.cairn");
    }
    return Status::Ok();
  }

  const fs::path& mountpoint() const { return mount_->mountpoint(); }

  // Unmounts, then stops the brickds (each must exit 0 on SIGTERM). Idempotent.
  void Stop() {
    if (stopped_) return;
    stopped_ = true;
    if (mount_ != nullptr) {
      fmt::print(stderr, "cairn: unmounting {}\n", mount_->mountpoint().string());
      mount_->Unmount(&problems_);
    }
    for (auto& b : brickds_) {
      b.proc->Stop(std::chrono::seconds(10));
      if (!b.proc->ExitedCleanly()) {
        problems_.push_back(fmt::format("brickd on {} (pid {}) did not exit 0 on SIGTERM: {}\n{}",
                                        b.host, b.proc->pid(), b.proc->Ended(), LogTail(b.log)));
      }
    }
  }

  const std::vector<std::string>& problems() const { return problems_; }

 private:
  struct Brickd {
    std::string host;
    std::string brick_id;
    fs::path ready;
    fs::path log;
    std::unique_ptr<ChildProcess> proc;
  };

  static Status Attach(const std::string& node, const std::string& admin_token,
                       const std::string& brick_id, const std::string& path) {
    auto channel = grpc::CreateChannel(node, grpc::InsecureChannelCredentials());
    auto stub = pb::BrickAdmin::NewStub(channel);
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + admin_token);
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    pb::AttachRequest req;
    req.set_brick_id(brick_id);
    req.set_path(path);
    req.set_capacity_bytes(0);  // only the file system's limit
    pb::AttachReply reply;
    return FromGrpcStatus(stub->Attach(&ctx, req, &reply), ctx);
  }

  const Options& opt_;
  const fs::path dir_;
  std::vector<Brickd> brickds_;
  std::unique_ptr<FuseMount> mount_;
  std::vector<std::string> problems_;
  bool stopped_ = false;
};

// ---- GlusterFS: a private glusterd, a replica-3 volume of three bricks on this host, mounted
// with the glusterfs FUSE client.

// The brick host for gluster: a name (or 127.x.y.z address) that resolves to loopback addresses
// only; gluster itself refuses "localhost" and "127.0.0.1" as brick hosts. Returns the name and
// its IPv4 address.
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
                    "resolves to a loopback address only, or --gluster-host=127.0.0.2",
                    host));
  }
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_family = AF_UNSPEC;
  addrinfo* res = nullptr;
  const int rc = ::getaddrinfo(host.c_str(), nullptr, &hints, &res);
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

// The brick host to use: --gluster-host, else this machine's name if it is loopback-only, else
// 127.0.0.2 (any 127.x address counts as local to gluster).
StatusOr<std::pair<std::string, std::string>> ChooseGlusterHost(const Options& opt) {
  auto host = GlusterBrickHost(opt.gluster_host);
  if (!host.ok() && opt.gluster_host.empty()) host = GlusterBrickHost("127.0.0.2");
  return host;
}

// "10.3" from `glusterfs --version`; empty if it cannot be run.
std::string GlusterVersion(const std::string& glusterfs) {
  if (glusterfs.empty()) return "";
  auto r = RunCommand({glusterfs, "--version"}, std::chrono::seconds(10), true);
  if (!r.ok() || r->exit_code != 0) return "";
  auto words = SplitWhitespace(r->output.substr(0, r->output.find('\n')));
  return words.size() >= 2 ? words[1] : "";
}

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

class GlusterCluster {
 public:
  GlusterCluster(const Options& opt, fs::path dir) : opt_(opt), dir_(std::move(dir)) {}
  GlusterCluster(const GlusterCluster&) = delete;
  GlusterCluster& operator=(const GlusterCluster&) = delete;
  ~GlusterCluster() { Stop(); }

  // Starts glusterd, creates and starts the volume, mounts it.
  Status Start(const std::string& version, SideResult* out) {
    glusterd_bin_ = FindExecutable(opt_.glusterd);
    cli_bin_ = FindExecutable(opt_.gluster_cli);
    const std::string glusterfs_bin = FindExecutable(opt_.glusterfs);
    CAIRN_ASSIGN_OR_RETURN(auto host, ChooseGlusterHost(opt_));
    host_ = host.first;
    const std::string address = host.second;

    // glusterd keeps its state, run files, logs and socket in our directory; only the brick
    // processes' unix sockets (and a few empty entries) land in the system directories.
    std::error_code ec;
    for (const char* sub : {"state", "run", "logs", "bricks", "mnt"}) {
      fs::create_directories(dir_ / sub, ec);
      if (ec) return Status::Internal("create " + (dir_ / sub).string() + ": " + ec.message());
    }
    sock_ = (dir_ / "glusterd.socket").string();
    if (sock_.size() >= 100) {
      return Status::InvalidArgument("--workdir is too long for a unix socket path: " + sock_);
    }
    for (const char* d : kSystemDirs) before_[d] = ListTree(d, 3);
    const fs::path volfile = dir_ / "glusterd.vol";
    // cluster-test-mode points the brick and self-heal daemon logs into our directory.
    const std::string vol = fmt::format(
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
        address, kGlusterdPort);
    CAIRN_RETURN_IF_ERROR(WriteFileAtomic(volfile.string(), vol, 0644));
    glusterd_log_ = dir_ / "logs" / "glusterd.log";
    const std::vector<std::string> argv = {
        glusterd_bin_, "--no-daemon", "--volfile=" + volfile.string(),
        "--log-file=" + glusterd_log_.string(), "--pid-file=" + (dir_ / "glusterd.pid").string()};
    fmt::print(stderr, "gluster: starting {}\n", Join(argv, " "));
    CAIRN_ASSIGN_OR_RETURN(glusterd_,
                           ChildProcess::Start("glusterd", argv, dir_ / "logs" / "glusterd.out"));
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

    // `force`: the bricks live on the root file system and on one server, both of which gluster
    // otherwise refuses for a replicated volume. Nothing else is tuned.
    std::vector<std::string> create = {"volume", "create", kVolumeName, "replica",
                                       std::to_string(kReplica)};
    std::vector<std::string> bricks;
    for (int i = 1; i <= kReplica; ++i) {
      const fs::path brick = dir_ / "bricks" / fmt::format("b{}", i);
      fs::create_directory(brick, ec);
      if (ec) return Status::Internal("create " + brick.string() + ": " + ec.message());
      create.push_back(host_ + ":" + brick.string());
      bricks.push_back(create.back());
    }
    create.push_back("force");
    fmt::print(stderr, "gluster: gluster {}\n", Join(create, " "));
    CAIRN_RETURN_IF_ERROR(CliOk(create).status());
    created_ = true;
    CAIRN_RETURN_IF_ERROR(CliOk({"volume", "start", kVolumeName}).status());
    started_ = true;
    CAIRN_RETURN_IF_ERROR(WaitForBricksOnline());

    const fs::path mnt = dir_ / "mnt";
    CAIRN_ASSIGN_OR_RETURN(
        mount_,
        FuseMount::Start("glusterfs",
                         {glusterfs_bin, "--no-daemon", "--volfile-server=" + host_,
                          std::string("--volfile-id=") + kVolumeName,
                          "--log-file=" + (dir_ / "logs" / "mount.log").string(), mnt.string()},
                         mnt, dir_ / "logs" / "mount.out",
                         // After an unmount glusterfs takes its SIGTERM path: exit 15.
                         {0, 15}));
    out->target =
        fmt::format("glusterfs {} FUSE mount of replica-{} volume '{}' ({}), {} at {}", version,
                    kReplica, kVolumeName, Join(bricks, ", "), mount_->fstype(), mnt.string());
    fmt::print(stderr, "gluster: mounted: {}\n", out->target);
    return Status::Ok();
  }

  const fs::path& mountpoint() const { return mount_->mountpoint(); }

  // Unmounts, stops and deletes the volume, makes sure its processes are gone (by pid), stops
  // glusterd, and removes what glusterd added to the system directories. Idempotent.
  void Stop() {
    if (stopped_) return;
    stopped_ = true;
    if (mount_ != nullptr) {
      fmt::print(stderr, "gluster: unmounting {}\n", mount_->mountpoint().string());
      mount_->Unmount(&problems_);
    }
    if (glusterd_ != nullptr && glusterd_->Running() && created_) {
      fmt::print(stderr, "gluster: stopping and deleting volume {}\n", kVolumeName);
      if (started_) {
        auto r = Cli({"volume", "stop", kVolumeName, "force"}, /*interruptible=*/false);
        if (!r.ok() || r->exit_code != 0) {
          Problem("could not stop volume " + std::string(kVolumeName) + ": " +
                  (r.ok() ? r->output : r.status().ToString()));
        }
      }
      auto r = Cli({"volume", "delete", kVolumeName}, /*interruptible=*/false);
      if (!r.ok() || r->exit_code != 0) {
        Problem("could not delete volume " + std::string(kVolumeName) + ": " +
                (r.ok() ? r->output : r.status().ToString()));
      }
    }
    // With the volume stopped, its brick processes and self-heal daemon exit by themselves.
    const std::string needle = dir_.string() + "/";
    const pid_t glusterd_pid = glusterd_ != nullptr ? glusterd_->pid() : 0;
    RememberSockets(needle, glusterd_pid);
    std::vector<pid_t> left = ProcessesNaming(needle, glusterd_pid);
    const auto deadline = Clock::now() + std::chrono::seconds(10);
    while (!left.empty() && Clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      left = ProcessesNaming(needle, glusterd_pid);
    }
    for (pid_t pid : left) {
      Problem(fmt::format("pid {} ({}) still running after the volume stopped; killing it", pid,
                          Join(ProcCmdline(pid), " ")));
      KillByPid(pid);
    }
    if (glusterd_ != nullptr) {
      glusterd_->Stop(std::chrono::seconds(10));
      if (glusterd_->needed_sigkill()) Problem("glusterd ignored SIGTERM; killed");
    }
    for (pid_t pid : ProcessesNaming(needle, 0)) {
      Problem(fmt::format("stray process {} ({}); killing it", pid, Join(ProcCmdline(pid), " ")));
      KillByPid(pid);
    }
    // The brick processes' unix sockets, then empty entries glusterd created.
    for (const auto& sock : sockets_) {
      struct stat st {};
      if (::lstat(sock.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) ::unlink(sock.c_str());
    }
    for (const char* d : kSystemDirs) {
      auto it = before_.find(d);
      if (it == before_.end()) continue;
      std::vector<std::string> added;
      for (const auto& p : ListTree(d, 3)) {
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

  // Polls `gluster volume status NAME detail` until every brick says "Online : Y" (30 s).
  Status WaitForBricksOnline() {
    const auto deadline = Clock::now() + std::chrono::seconds(30);
    std::string last;
    for (;;) {
      CAIRN_ASSIGN_OR_RETURN(CommandResult r, Cli({"volume", "status", kVolumeName, "detail"}));
      last = r.output;
      int online = 0;
      std::istringstream in(r.output);
      std::string line;
      while (std::getline(in, line)) {
        auto w = SplitWhitespace(line);
        if (w.size() >= 3 && w[0] == "Online" && w[1] == ":" && w[2] == "Y") ++online;
      }
      if (r.exit_code == 0 && online >= kReplica) return Status::Ok();
      if (Clock::now() >= deadline) {
        return Status::DeadlineExceeded("the volume's bricks did not come online within 30 s:\n" +
                                        last);
      }
      SleepMs(200);
    }
  }

  // Remembers the unix sockets (-S PATH) of the gluster processes serving our volume.
  void RememberSockets(const std::string& needle, pid_t except) {
    for (pid_t pid : ProcessesNaming(needle, except)) {
      auto args = ProcCmdline(pid);
      for (size_t i = 0; i + 1 < args.size(); ++i) {
        if (args[i] == "-S" || args[i] == "--socket-file") sockets_.insert(args[i + 1]);
      }
    }
  }

  const Options& opt_;
  const fs::path dir_;
  std::string glusterd_bin_, cli_bin_, host_, sock_;
  fs::path glusterd_log_;
  std::unique_ptr<ChildProcess> glusterd_;
  std::unique_ptr<FuseMount> mount_;
  bool created_ = false;
  bool started_ = false;
  std::set<std::string> sockets_;
  std::map<std::string, std::set<std::string>> before_;
  std::vector<std::string> problems_;
  bool stopped_ = false;
};

// ---- One side: set up (or take the given directory), run the workloads, tear down.

// A directory given on the command line: it must exist and be a writable directory.
Status CheckGivenDirectory(const std::string& flag, const std::string& dir) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return Status::InvalidArgument(fmt::format("--{}={}: not a directory", flag, dir));
  }
  if (::access(dir.c_str(), W_OK | X_OK) != 0) {
    return Status::PermissionDenied(fmt::format("--{}={}: not writable", flag, dir));
  }
  return Status::Ok();
}

Status MeasureGivenDirectory(const Options& opt, const std::string& dir, SideResult* out) {
  auto m = MountContaining(dir);
  out->target = fmt::format("the directory {} ({} mounted at {})", dir,
                            m ? m->fstype : "unknown file system", m ? m->mountpoint : "?");
  fmt::print(stderr, "{}: measuring {}\n", out->name, out->target);
  return RunWorkloads(opt, dir, out);
}

Status MeasureCairn(const Options& opt, const fs::path& root, SideResult* out) {
  if (!opt.cairn_dir.empty()) {
    Status s = MeasureGivenDirectory(opt, opt.cairn_dir, out);
    auto m = MountContaining(opt.cairn_dir);
    if (!m || m->fstype.rfind("fuse.cairn", 0) != 0) {
      out->notes.push_back(
          fmt::format("--cairn-dir is on {}, not a Cairn mount: these are not "
                      "Cairn's figures",
                      m ? m->fstype : "an unknown file system"));
    }
    return s;
  }
  CairnCluster cluster(opt, root / "cairn");
  Status s = cluster.Start(out);
  if (s.ok()) s = RunWorkloads(opt, cluster.mountpoint(), out);
  cluster.Stop();
  for (const auto& p : cluster.problems()) out->problems.push_back(p);
  return s;
}

Status MeasureGluster(const Options& opt, const std::string& version, const fs::path& root,
                      SideResult* out) {
  if (!opt.gluster_dir.empty()) return MeasureGivenDirectory(opt, opt.gluster_dir, out);
  GlusterCluster cluster(opt, root / "gluster");
  Status s = cluster.Start(version, out);
  if (s.ok()) s = RunWorkloads(opt, cluster.mountpoint(), out);
  cluster.Stop();
  for (const auto& p : cluster.problems()) out->problems.push_back(p);
  return s;
}

// Everything an automatic setup needs, checked before anything starts: a clear message now beats
// a failure after minutes of benchmarking the other side.
Status Preflight(const Options& opt) {
  const bool auto_cairn = opt.run_cairn && opt.cairn_dir.empty();
  const bool auto_gluster = opt.run_gluster && opt.gluster_dir.empty();
  if (opt.run_cairn && !opt.cairn_dir.empty()) {
    CAIRN_RETURN_IF_ERROR(CheckGivenDirectory("cairn-dir", opt.cairn_dir));
  }
  if (opt.run_gluster && !opt.gluster_dir.empty()) {
    CAIRN_RETURN_IF_ERROR(CheckGivenDirectory("gluster-dir", opt.gluster_dir));
  }
  if ((auto_cairn || auto_gluster) && ::geteuid() != 0) {
    return Status::PermissionDenied(
        "setting up the mounts needs root (glusterd, FUSE allow_other, dropping the page cache): "
        "run as root, or pass --cairn-dir / --gluster-dir for directories already mounted");
  }
  if ((auto_cairn || auto_gluster) && ::access("/dev/fuse", R_OK | W_OK) != 0) {
    return Status::FailedPrecondition("/dev/fuse is missing or not accessible: " +
                                      ErrnoText(errno));
  }
  if (auto_cairn) {
    if (::access(opt.brickd.c_str(), X_OK) != 0) {
      return Status::NotFound(fmt::format(
          "no brickd executable at {} (build it: cmake --build BUILD --target brickd, or pass "
          "--brickd=PATH)",
          opt.brickd));
    }
    if (::access(opt.cairn_mount.c_str(), X_OK) != 0) {
      return Status::NotFound(fmt::format(
          "no cairn-mount executable at {}: the Cairn FUSE client is not built (cmake --build "
          "BUILD --target cairn-mount), or pass --cairn-mount=PATH; to measure a directory "
          "that is already mounted pass --cairn-dir=DIR, or measure GlusterFS alone with "
          "--only=gluster",
          opt.cairn_mount));
    }
  }
  if (auto_gluster) {
    for (const std::string* exe : {&opt.glusterd, &opt.gluster_cli, &opt.glusterfs}) {
      if (FindExecutable(*exe).empty()) {
        return Status::NotFound(fmt::format(
            "GlusterFS is not installed ({} not found): scripts/setup.sh --bench installs it; or "
            "pass --only=cairn, or --gluster-dir=DIR for a volume already mounted",
            *exe));
      }
    }
    for (pid_t pid : AllPids()) {
      auto args = ProcCmdline(pid);
      if (!args.empty() && fs::path(args[0]).filename() == "glusterd" && ProcessAlive(pid)) {
        return Status::FailedPrecondition(fmt::format(
            "a glusterd is already running (pid {}); this benchmark starts its own private "
            "glusterd and will not touch another one: stop it first, or pass --gluster-dir",
            pid));
      }
    }
    if (TcpPortListening(kGlusterdPort)) {
      return Status::FailedPrecondition(
          fmt::format("TCP port {} (glusterd's) is already in use", kGlusterdPort));
    }
    CAIRN_RETURN_IF_ERROR(ChooseGlusterHost(opt).status());
  }
  return Status::Ok();
}

// ---- Report.

double Round(double v, int digits) {
  const double f = std::pow(10.0, digits);
  return std::round(v * f) / f;
}

const Figure* FindFigure(const SideResult& side, const Workload& w) {
  auto it = side.figures.find(w.key);
  return it == side.figures.end() ? nullptr : &it->second;
}

// Cairn/GlusterFS for throughputs, GlusterFS/Cairn (times faster) for elapsed times.
std::optional<double> RatioOf(const Workload& w, const SideResult& cairn,
                              const SideResult& gluster) {
  const Figure* c = FindFigure(cairn, w);
  const Figure* g = FindFigure(gluster, w);
  if (c == nullptr || g == nullptr) return std::nullopt;
  const double num = w.better == Better::kHigher ? c->value : g->value;
  const double den = w.better == Better::kHigher ? g->value : c->value;
  if (den <= 0) return std::nullopt;
  return num / den;
}

json SideJson(const SideResult& side) {
  if (!side.measured) return {{"skipped", "not requested (--only)"}};
  json figures = json::object();
  for (const auto& w : kWorkloads) {
    if (const Figure* f = FindFigure(side, w)) {
      figures[w.key] = {{"value", Round(f->value, 3)},
                        {"unit", w.unit},
                        {"seconds", Round(f->seconds, 4)},
                        {"ops", f->ops}};
    }
  }
  return {{"target", side.target},
          {"path", side.path},
          {"fstype", side.fstype},
          {"figures", figures},
          {"error", side.error.empty() ? json(nullptr) : json(side.error)},
          {"notes", side.notes},
          {"problems", side.problems}};
}

void PrintSide(const std::string& title, const SideResult& side) {
  if (!side.measured) {
    fmt::print("  {:<16}not measured (--only)\n", title);
    return;
  }
  fmt::print("  {:<16}{}\n", title, side.target.empty() ? "(not set up)" : side.target);
  if (!side.error.empty()) fmt::print("  {:<16}FAILED: {}\n", "", side.error);
  for (const auto& n : side.notes) fmt::print("  {:<16}note: {}\n", "", n);
  for (const auto& p : side.problems) fmt::print("  {:<16}problem: {}\n", "", p);
}

int Main(int argc, char** argv) {
  InstallSignalThread();
  Flags flags("fs_bench",
              "File-system workloads on a Cairn replica-3 mount and a GlusterFS replica-3 volume, "
              "same run, side by side.");
  flags.AddInt("size-mib", 1024, "size of the sequential-I/O file (MiB)");
  flags.AddInt("files", 10000, "small files (4 KiB) to create, stat, read and delete");
  flags.AddInt("dirs", 2000, "directories to mkdir and rmdir");
  flags.AddInt("seconds", 10, "duration of each random-I/O phase (s)");
  flags.AddInt("jobs", 4, "parallel jobs (threads) for random I/O, small files and directories");
  flags.AddInt("random-file-mib", 256, "size of each job's random-I/O file (MiB)");
  flags.AddBool("quick", false,
                "smoke-run sizes: --size-mib 64 --files 1000 --dirs 200 --seconds 2 "
                "--random-file-mib 16 (explicit flags win)");
  flags.AddString("only", "both", "cairn, gluster or both");
  flags.AddString("cairn-dir", "",
                  "run the Cairn workloads in this (already mounted) directory instead of "
                  "setting up a Cairn volume");
  flags.AddString("gluster-dir", "",
                  "run the GlusterFS workloads in this (already mounted) directory instead of "
                  "setting up a GlusterFS volume");
  flags.AddBool("keep", false,
                "keep the temporary directory (bricks, logs, spec) and the workload files; "
                "processes are stopped and mounts unmounted regardless");
  flags.AddString("json", "", "also write the JSON result to this file");
  flags.AddBool("drop-caches", true, "drop the page cache before each measured phase");
  flags.AddString("workdir", "/tmp",
                  "directory in which a fresh temporary directory is made (removed at exit)");
  flags.AddString("brickd", CAIRN_BRICKD_DEFAULT_PATH, "brickd executable");
  flags.AddString("brickd-log-level", "warn", "brickd --log-level");
  flags.AddString("cairn-mount", CAIRN_MOUNT_DEFAULT_PATH, "cairn-mount executable");
  flags.AddString("cairn-mount-options", "",
                  "extra cairn-mount -o options, appended after token_file=...,allow_other");
  flags.AddString("gluster-host", "",
                  "gluster brick host, must resolve to loopback only (default: this hostname if "
                  "it does, else 127.0.0.2)");
  flags.AddString("glusterd", "glusterd", "glusterd executable");
  flags.AddString("gluster-cli", "gluster", "gluster CLI executable");
  flags.AddString("glusterfs", "glusterfs", "glusterfs (FUSE client) executable");
  flags.AddInt("seed", 0, "random seed for data and offsets (0: random)");
  Status parsed = flags.Parse(argc, argv);
  if (flags.help_requested()) {
    fmt::print("{}", flags.Usage());
    return 0;
  }
  if (!parsed.ok()) {
    fmt::print(stderr, "fs_bench: {}\n{}", parsed.ToString(), flags.Usage());
    return 2;
  }
  if (!flags.positional().empty()) {
    fmt::print(stderr, "fs_bench: unexpected argument '{}'\n{}", flags.positional()[0],
               flags.Usage());
    return 2;
  }
  Options opt;
  opt.quick = flags.GetBool("quick");
  auto sized = [&](const char* name, int64_t quick_value) {
    return opt.quick && !flags.IsSet(name) ? quick_value : flags.GetInt(name);
  };
  opt.seq_mib = sized("size-mib", 64);
  opt.files = static_cast<int>(std::clamp<int64_t>(sized("files", 1000), -1, 10'000'000));
  opt.dirs = static_cast<int>(std::clamp<int64_t>(sized("dirs", 200), -1, 10'000'000));
  opt.seconds = static_cast<int>(std::clamp<int64_t>(sized("seconds", 2), -1, 86400));
  opt.random_file_mib = sized("random-file-mib", 16);
  opt.jobs = static_cast<int>(std::clamp<int64_t>(flags.GetInt("jobs"), -1, 1024));
  const std::string only = flags.GetString("only");
  opt.run_cairn = only == "both" || only == "cairn";
  opt.run_gluster = only == "both" || only == "gluster";
  opt.cairn_dir = flags.GetString("cairn-dir");
  opt.gluster_dir = flags.GetString("gluster-dir");
  opt.keep = flags.GetBool("keep");
  opt.json_file = flags.GetString("json");
  opt.drop_caches = flags.GetBool("drop-caches");
  opt.workdir = flags.GetString("workdir");
  opt.brickd = flags.GetString("brickd");
  opt.brickd_log_level = flags.GetString("brickd-log-level");
  opt.cairn_mount = flags.GetString("cairn-mount");
  opt.cairn_mount_options = flags.GetString("cairn-mount-options");
  opt.gluster_host = flags.GetString("gluster-host");
  opt.glusterd = flags.GetString("glusterd");
  opt.gluster_cli = flags.GetString("gluster-cli");
  opt.glusterfs = flags.GetString("glusterfs");
  opt.seed = static_cast<uint64_t>(flags.GetInt("seed"));
  if (opt.seed == 0) opt.seed = std::random_device{}();
  if (!opt.run_cairn && !opt.run_gluster) {
    fmt::print(stderr, "fs_bench: --only must be cairn, gluster or both, not '{}'\n", only);
    return 2;
  }
  if (opt.seq_mib < 1 || opt.seq_mib > (int64_t{1} << 24) || opt.files < opt.jobs ||
      opt.dirs < opt.jobs || opt.seconds < 1 || opt.jobs < 1 || opt.random_file_mib < 1 ||
      opt.random_file_mib > (int64_t{1} << 24)) {
    fmt::print(stderr,
               "fs_bench: --size-mib, --random-file-mib and --seconds must be >= 1, --jobs "
               ">= 1, --files and --dirs >= --jobs\n");
    return 2;
  }

  Status ready = Preflight(opt);
  if (!ready.ok()) {
    fmt::print(stderr, "fs_bench: cannot run: {}\n", ready.message());
    return 1;
  }
  auto tmp = TempDir::Create(opt.workdir, opt.keep);
  if (!tmp.ok()) {
    fmt::print(stderr, "fs_bench: {}\n", tmp.status().ToString());
    return 1;
  }
  const fs::path root = (*tmp)->path();
  utsname uts{};
  ::uname(&uts);
  auto loadavg = SplitWhitespace(ReadText("/proc/loadavg").value_or("?"));
  const std::string load1 = loadavg.empty() ? "?" : loadavg[0];
  const std::string gluster_version = GlusterVersion(FindExecutable(opt.glusterfs));
  const std::string gluster_title =
      gluster_version.empty() ? "GlusterFS" : "GlusterFS " + gluster_version;
  const std::string sizes = fmt::format(
      "sequential file {} MiB; random I/O {} jobs x {} MiB files, {} s each; {} x 4 KiB files "
      "and {} directories, {} jobs (one directory each); page cache {}",
      opt.seq_mib, opt.jobs, opt.random_file_mib, opt.seconds, opt.files, opt.dirs, opt.jobs,
      opt.drop_caches ? "dropped before each phase" : "NOT dropped (--no-drop-caches)");
  fmt::print(stderr, "fs_bench: {}\nfs_bench: {} CPUs, load average {}, {} {}; workdir {}\n", sizes,
             std::thread::hardware_concurrency(), load1, uts.sysname, uts.release, root.string());

  SideResult cairn, gluster;
  cairn.name = "cairn";
  gluster.name = "gluster";
  if (opt.run_cairn) {
    cairn.measured = true;
    Status s = MeasureCairn(opt, root, &cairn);
    if (!s.ok()) {
      cairn.error = s.ToString();
      fmt::print(stderr, "cairn: FAILED: {}\n", cairn.error);
    }
  }
  if (opt.run_gluster && !Interrupted()) {
    gluster.measured = true;
    Status s = MeasureGluster(opt, gluster_version, root, &gluster);
    if (!s.ok()) {
      gluster.error = s.ToString();
      fmt::print(stderr, "gluster: FAILED: {}\n", gluster.error);
    }
  }
  if (Interrupted()) {
    fmt::print(stderr, "fs_bench: {}\n", CheckInterrupted().ToString());
    return 130;
  }

  // The report.
  fmt::print(
      "\nfs_bench: Cairn vs {}, same run, same machine ({} CPUs, load average {} at "
      "start, {} {})\n",
      gluster_title, std::thread::hardware_concurrency(), load1, uts.sysname, uts.release);
  fmt::print("  {:<16}{}\n", "sizes", sizes);
  PrintSide("Cairn", cairn);
  PrintSide(gluster_title, gluster);
  fmt::print("\n  {:<34}{:>15}  {:>15}  {:>16}  {:>8}  {}\n", "workload", "Cairn", gluster_title,
             "Cairn/GlusterFS", "target", "");
  json ratios = json::object();
  json targets = json::object();
  int passed = 0, missed = 0;
  for (const auto& w : kWorkloads) {
    const Figure* c = FindFigure(cairn, w);
    const Figure* g = FindFigure(gluster, w);
    const auto ratio = RatioOf(w, cairn, gluster);
    const bool faster = w.better == Better::kLower;
    std::string ratio_text = "-", target_text = "-", verdict;
    if (ratio) ratio_text = fmt::format("{:.2f}x{}", *ratio, faster ? " faster" : "");
    if (w.target > 0) {
      target_text = fmt::format(">= {:g}x", w.target);
      if (ratio) {
        const bool pass = *ratio >= w.target;
        verdict = pass ? "PASS" : "MISS";
        (pass ? passed : missed) += 1;
        targets[w.key] = {{"min_ratio", w.target}, {"result", verdict}};
      } else {
        targets[w.key] = {{"min_ratio", w.target}, {"result", nullptr}};
      }
    }
    ratios[w.key] = ratio ? json(Round(*ratio, 3)) : json(nullptr);
    fmt::print("  {:<34}{:>15}  {:>15}  {:>16}  {:>8}  {}\n", w.label,
               c != nullptr ? FormatValue(w, c->value) : (cairn.measured ? "error" : "-"),
               g != nullptr ? FormatValue(w, g->value) : (gluster.measured ? "error" : "-"),
               ratio_text, target_text, verdict);
  }
  fmt::print(
      "  ratios: Cairn/GlusterFS for rates, GlusterFS time / Cairn time for ls -lR and "
      "find (\"x faster\")\n");
  if (passed + missed > 0) fmt::print("  targets: {} PASS, {} MISS\n", passed, missed);

  std::vector<std::string> failures;
  for (const SideResult* side : {&cairn, &gluster}) {
    if (!side->error.empty()) failures.push_back(side->name + ": " + side->error);
    for (const auto& p : side->problems) failures.push_back(side->name + ": " + p);
  }
  if (!failures.empty()) {
    fmt::print("\nFAILED:\n");
    for (const auto& f : failures) fmt::print("  - {}\n", f);
  }
  const json out = {{"benchmark", "fs"},
                    {"machine",
                     {{"cpus", std::thread::hardware_concurrency()},
                      {"kernel", std::string(uts.sysname) + " " + uts.release},
                      {"loadavg_1m_at_start", load1}}},
                    {"config",
                     {{"size_mib", opt.seq_mib},
                      {"files", opt.files},
                      {"file_bytes", kSmallFileBytes},
                      {"dirs", opt.dirs},
                      {"seconds", opt.seconds},
                      {"jobs", opt.jobs},
                      {"random_file_mib", opt.random_file_mib},
                      {"block_bytes", kBlockBytes},
                      {"quick", opt.quick},
                      {"drop_caches", opt.drop_caches}}},
                    {"gluster_version", gluster_version},
                    {"cairn", SideJson(cairn)},
                    {"gluster", SideJson(gluster)},
                    {"ratios", ratios},
                    {"targets", targets},
                    {"failures", failures},
                    {"ok", failures.empty()}};
  fmt::print("\n{}\n", out.dump());
  std::fflush(stdout);
  if (!opt.json_file.empty()) {
    Status s = WriteFileAtomic(opt.json_file, out.dump(2) + "\n", 0644);
    if (!s.ok()) {
      fmt::print(stderr, "fs_bench: could not write --json file: {}\n", s.ToString());
      return 1;
    }
  }
  return failures.empty() ? 0 : 1;
}

}  // namespace
}  // namespace cairn::bench

int main(int argc, char** argv) { return cairn::bench::Main(argc, argv); }
