// bench_util: see bench_util.h.
#include "bench/bench_util.h"

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
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <latch>
#include <random>
#include <sstream>
#include <thread>

#include "common/file_util.h"
#include "common/id.h"
#include "common/status_grpc.h"

namespace cairn::bench {

namespace pb = ::cairn::brick::v1;

// ---- Time and errors.

double MsBetween(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

double SecondsBetween(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

std::string ErrnoText(int err) { return std::strerror(err); }

Status ErrnoStatus(std::string_view what, const std::string& path) {
  const int err = errno;
  return Status(StatusCode::kInternal, fmt::format("{} {}: {}", what, path, ErrnoText(err)), err);
}

// ---- Program name and signals.

namespace {
std::atomic<int> g_signal{0};
std::string& ProgramNameStorage() {
  static std::string name = "bench";
  return name;
}
}  // namespace

const std::string& ProgramName() { return ProgramNameStorage(); }

void InstallSignalThread(std::string program) {
  ProgramNameStorage() = std::move(program);
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
  // An ordinary thread (sigwait), not a signal handler: it may format.
  const std::string message = "\n" + ProgramName() + ": interrupted; cleaning up\n";
  std::thread([set, message] {
    for (;;) {
      int sig = 0;
      if (sigwait(&set, &sig) != 0) return;
      g_signal.store(sig);
      if (::write(STDERR_FILENO, message.data(), message.size()) < 0) {
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

std::string Trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  size_t b = 0;
  while (b < s.size() && s[b] == ' ') ++b;
  return s.substr(b);
}

void SleepMs(int ms) {
  const auto until = Clock::now() + std::chrono::milliseconds(ms);
  while (!Interrupted() && Clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(std::min(ms, 20)));
  }
}

int ExitCode(bool ok) { return Interrupted() ? 130 : (ok ? 0 : 1); }

std::optional<int> ParseFlagsOrExit(Flags& flags, int argc, char** argv) {
  Status parsed = flags.Parse(argc, argv);
  if (flags.help_requested()) {
    fmt::print("{}", flags.Usage());
    return 0;
  }
  if (!parsed.ok()) {
    fmt::print(stderr, "{}: {}\n{}", ProgramName(), parsed.ToString(), flags.Usage());
    return 2;
  }
  if (!flags.positional().empty()) {
    fmt::print(stderr, "{}: unexpected argument '{}'\n{}", ProgramName(), flags.positional()[0],
               flags.Usage());
    return 2;
  }
  return std::nullopt;
}

bool ParseOnly(const std::string& only, bool* cairn, bool* gluster) {
  *cairn = only == "both" || only == "cairn";
  *gluster = only == "both" || only == "gluster";
  if (*cairn || *gluster) return true;
  fmt::print(stderr, "{}: --only must be cairn, gluster or both, not '{}'\n", ProgramName(), only);
  return false;
}

// ---- Text.

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

std::string LogTail(const fs::path& path, size_t lines) {
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

int64_t ProcFieldNumber(pid_t pid, std::string_view file, std::string_view key) {
  auto text = ReadText(fmt::format("/proc/{}/{}", pid, file));
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

int64_t SumProcStatus(const std::vector<pid_t>& pids, std::string_view key) {
  int64_t sum = 0;
  for (pid_t pid : pids) sum += std::max<int64_t>(0, ProcStatusNumber(pid, key));
  return pids.empty() ? -1 : sum;
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

std::pair<pid_t, char> ProcParentAndState(pid_t pid) {
  auto text = ReadText(fmt::format("/proc/{}/stat", pid));
  if (!text) return {-1, '?'};
  const size_t paren = text->rfind(')');
  if (paren == std::string::npos) return {-1, '?'};
  std::istringstream rest(text->substr(paren + 1));
  char state = '?';
  long ppid = -1;
  rest >> state >> ppid;
  return {static_cast<pid_t>(ppid), state};
}

bool ProcessAlive(pid_t pid) {
  auto [ppid, state] = ProcParentAndState(pid);
  return ppid >= 0 && state != 'Z' && state != 'X';
}

bool WaitReaped(pid_t pid, std::chrono::milliseconds timeout) {
  const std::string proc = fmt::format("/proc/{}", pid);
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    struct stat st {};
    if (::stat(proc.c_str(), &st) != 0 && errno == ENOENT) return true;
    if (Clock::now() >= deadline || Interrupted()) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

std::vector<pid_t> Descendants(pid_t root) {
  std::multimap<pid_t, pid_t> children;
  for (pid_t pid : AllPids()) {
    auto [ppid, state] = ProcParentAndState(pid);
    if (ppid >= 0 && state != 'Z') children.emplace(ppid, pid);
  }
  std::vector<pid_t> out;
  std::vector<pid_t> todo = {root};
  while (!todo.empty()) {
    const pid_t p = todo.back();
    todo.pop_back();
    auto [b, e] = children.equal_range(p);
    for (auto it = b; it != e; ++it) {
      out.push_back(it->second);
      todo.push_back(it->second);
    }
  }
  return out;
}

std::vector<pid_t> ProcessesNaming(const std::string& needle, pid_t except) {
  std::vector<pid_t> out;
  for (pid_t pid : AllPids()) {
    if (pid == ::getpid() || pid == except) continue;
    if (Join(ProcessCmdline(pid), " ").find(needle) != std::string::npos && ProcessAlive(pid)) {
      out.push_back(pid);
    }
  }
  return out;
}

std::vector<pid_t> ProcessesCalled(const std::string& name) {
  std::vector<pid_t> out;
  for (pid_t pid : AllPids()) {
    auto args = ProcessCmdline(pid);
    if (!args.empty() && fs::path(args[0]).filename() == name && ProcessAlive(pid)) {
      out.push_back(pid);
    }
  }
  return out;
}

void KillByPid(pid_t pid) {
  ::kill(pid, SIGTERM);
  const auto deadline = Clock::now() + std::chrono::seconds(5);
  while (ProcessAlive(pid) && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (ProcessAlive(pid)) ::kill(pid, SIGKILL);
}

std::vector<std::string> ReapProcessesNaming(const std::string& needle, pid_t except,
                                             std::chrono::milliseconds timeout,
                                             std::string_view when) {
  std::vector<pid_t> left = ProcessesNaming(needle, except);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!left.empty() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    left = ProcessesNaming(needle, except);
  }
  std::vector<std::string> killed;
  for (pid_t pid : left) {
    killed.push_back(fmt::format("pid {} ({}) still running after {}; killed it", pid,
                                 Join(ProcessCmdline(pid), " "), when));
    KillByPid(pid);
  }
  return killed;
}

std::string ListenSocket::ToString() const {
  return fmt::format("{}:{}{}", address, port, role.empty() ? "" : " " + role);
}

namespace {

std::set<uint64_t> SocketInodes(pid_t pid) {
  std::set<uint64_t> out;
  std::error_code ec;
  fs::directory_iterator it(fmt::format("/proc/{}/fd", pid), ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    std::error_code link_ec;
    const std::string target = fs::read_symlink(it->path(), link_ec).string();
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
      const uint32_t word =
          static_cast<uint32_t>(std::strtoul(hex.substr(8 * i, 8).c_str(), nullptr, 16));
      std::memcpy(&a.s6_addr[4 * i], &word, sizeof(word));
    }
    inet_ntop(AF_INET6, &a, buf, sizeof(buf));
    return std::string("[") + buf + "]";
  }
  return hex;
}

}  // namespace

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
      const size_t colon = f[1].rfind(':');
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

std::vector<ListenSocket> ListeningSocketsOf(pid_t pid) {
  const std::set<uint64_t> inodes = SocketInodes(pid);
  std::vector<ListenSocket> out;
  for (const auto& s : ListeningInNamespace(std::to_string(pid))) {
    if (inodes.count(s.inode) != 0) out.push_back(s);
  }
  return out;
}

std::optional<ListenSocket> TcpPortListening(int port) {
  for (const auto& s : ListeningInNamespace("self")) {
    if (s.port == port) return s;
  }
  return std::nullopt;
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

// ---- Mounts.

namespace {}  // namespace

std::optional<MountEntry> MountContaining(const fs::path& path) {
  std::error_code ec;
  const std::string p = fs::weakly_canonical(path, ec).string();
  std::optional<MountEntry> best;
  auto table = ReadMountTable();
  if (!table.ok()) return best;
  for (auto& m : *table) {
    const std::string& mp = m.mount_point;
    const bool under =
        mp == "/" || p == mp ||
        (p.size() > mp.size() && p.compare(0, mp.size(), mp) == 0 && p[mp.size()] == '/');
    if (under && (!best || mp.size() >= best->mount_point.size())) best = m;
  }
  return best;
}

// ---- Processes this program starts.

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

StatusOr<std::unique_ptr<ChildProcess>> ChildProcess::Start(std::string name,
                                                            const std::vector<std::string>& argv,
                                                            const fs::path& log_path) {
  const int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoStatus("open", log_path.string());
  auto pid = Spawn(argv, fd, fd);
  ::close(fd);
  if (!pid.ok()) return pid.status().WithContext("start " + name);
  return std::unique_ptr<ChildProcess>(new ChildProcess(std::move(name), *pid));
}

ChildProcess::~ChildProcess() {
  if (!reaped_) Stop(std::chrono::seconds(10));
}

bool ChildProcess::Running() {
  Poll();
  return !reaped_;
}

std::string ChildProcess::Ended() const {
  if (!reaped_) return "running";
  return wait_status_ < 0 ? "gone (not our child?)" : DescribeWaitStatus(wait_status_);
}

int ChildProcess::ExitCode() const {
  if (!reaped_ || wait_status_ < 0 || !WIFEXITED(wait_status_)) return -1;
  return WEXITSTATUS(wait_status_);
}

bool ChildProcess::WaitFor(std::chrono::milliseconds d) {
  const auto deadline = Clock::now() + d;
  for (;;) {
    Poll();
    if (reaped_) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

double ChildProcess::Stop(std::chrono::milliseconds grace) {
  const auto start = Clock::now();
  if (!Running()) return 0;
  ::kill(pid_, SIGTERM);
  if (!WaitFor(grace)) {
    needed_sigkill_ = true;
    ::kill(pid_, SIGKILL);
    WaitFor(std::chrono::seconds(10));
  }
  return MsBetween(start, Clock::now());
}

void ChildProcess::Kill() {
  if (!Running()) return;
  ::kill(pid_, SIGKILL);
  WaitFor(std::chrono::seconds(10));
}

void ChildProcess::Poll() {
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

void StopPerfRecord(ChildProcess& perf) {
  if (!perf.Running()) return;
  ::kill(perf.pid(), SIGINT);
  if (!perf.WaitFor(std::chrono::seconds(30))) perf.Stop(std::chrono::seconds(5));
}

std::vector<std::string> PerfReportRows(const std::string& perf, const fs::path& data,
                                        const std::vector<std::string>& args, int top, size_t width,
                                        bool with_samples) {
  std::vector<std::string> argv = {perf, "report", "--stdio", "--no-children", "-i", data.string()};
  argv.insert(argv.end(), args.begin(), args.end());
  auto r = RunCommand(argv, std::chrono::minutes(3), /*interruptible=*/true);
  if (!r.ok()) return {"perf report failed: " + r.status().ToString()};
  if (r->exit_code != 0) return {"perf report failed: " + r->output.substr(0, 300)};
  std::vector<std::string> lines;
  std::istringstream in(r->output);
  std::string line, samples;
  while (std::getline(in, line) && static_cast<int>(lines.size()) < top) {
    if (line.rfind("# Samples:", 0) == 0) samples = line.substr(2);
    if (line.empty() || line[0] == '#' || line.find('%') == std::string::npos) continue;
    line = Trimmed(line);
    if (line.size() > width) line = line.substr(0, width - 3) + "...";
    lines.push_back(line);
  }
  if (with_samples && !samples.empty()) lines.insert(lines.begin(), samples);
  if (lines.empty()) lines.push_back("no samples: " + r->output.substr(0, 300));
  return lines;
}

StatusOr<CommandResult> RunCommand(const std::vector<std::string>& argv,
                                   std::chrono::milliseconds timeout, bool interruptible,
                                   bool discard_stdout) {
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
        fmt::format("'{}' did not finish in {} ms", Join(argv, " "), timeout.count()));
  }
  result.exit_code = WIFEXITED(status)     ? WEXITSTATUS(status)
                     : WIFSIGNALED(status) ? 128 + WTERMSIG(status)
                                           : -1;
  return result;
}

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

StatusOr<json> WaitForReadyFile(ChildProcess& daemon, const fs::path& ready, const fs::path& log,
                                std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    CAIRN_RETURN_IF_ERROR(CheckInterrupted());
    if (!daemon.Running()) {
      return Status::Unavailable(fmt::format("{} exited before it was ready ({})\n{}",
                                             daemon.name(), daemon.Ended(), LogTail(log)));
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
      return Status::DeadlineExceeded(fmt::format("{} wrote no ready file within {:.0f} s\n{}",
                                                  daemon.name(), timeout.count() / 1000.0,
                                                  LogTail(log)));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

int JsonInt(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number_integer()) return -1;
  return it->get<int>();
}

Status CheckRootAndFuse(std::string_view not_root) {
  if (::geteuid() != 0) return Status::PermissionDenied(std::string(not_root));
  if (::access("/dev/fuse", R_OK | W_OK) != 0) {
    return Status::FailedPrecondition("/dev/fuse is missing or not accessible: " +
                                      ErrnoText(errno));
  }
  return Status::Ok();
}

Status CheckExecutable(const std::string& path, std::string_view what, std::string_view hint) {
  if (::access(path.c_str(), X_OK) == 0) return Status::Ok();
  return Status::NotFound(fmt::format("no {} executable at {}{}", what, path, hint));
}

// ---- TempDir.

StatusOr<std::unique_ptr<TempDir>> TempDir::Create(const std::string& parent,
                                                   const std::string& prefix, bool keep) {
  std::error_code ec;
  fs::create_directories(parent, ec);
  if (ec) return Status::Internal("create " + parent + ": " + ec.message());
  std::string tmpl = (fs::path(parent) / (prefix + "-XXXXXX")).string();
  if (::mkdtemp(tmpl.data()) == nullptr) return ErrnoStatus("mkdtemp", tmpl);
  return std::unique_ptr<TempDir>(new TempDir(fs::canonical(tmpl), keep));
}

TempDir::~TempDir() {
  if (keep_) {
    fmt::print(stderr, "{}: kept {} (--keep)\n", ProgramName(), path_.string());
    return;
  }
  // Only once nothing is mounted below it: never remove through a mount.
  if (auto under = MountPointsUnder(path_.string()); !under.empty()) {
    fmt::print(stderr, "{}: {} is still mounted; not removing {}\n", ProgramName(), under.back(),
               path_.string());
    return;
  }
  fmt::print(stderr, "{}: removing {}\n", ProgramName(), path_.string());
  std::error_code ec;
  fs::remove_all(path_, ec);
  if (ec) {
    fmt::print(stderr, "{}: could not remove {}: {}\n", ProgramName(), path_.string(),
               ec.message());
  }
}

// ---- FuseMount.

StatusOr<std::unique_ptr<FuseMount>> FuseMount::Start(std::string name,
                                                      const std::vector<std::string>& argv,
                                                      fs::path mountpoint, fs::path log,
                                                      std::set<int> clean_exits) {
  std::unique_ptr<FuseMount> m(
      new FuseMount(std::move(name), std::move(mountpoint), log, std::move(clean_exits)));
  fmt::print(stderr, "{}: starting {}\n", m->name_, Join(argv, " "));
  CAIRN_ASSIGN_OR_RETURN(m->daemon_, ChildProcess::Start(m->name_, argv, log));
  const auto deadline = Clock::now() + kMountTimeout;
  for (;;) {
    CAIRN_RETURN_IF_ERROR(CheckInterrupted());
    auto entry = TopMountAt(m->mountpoint_.string());
    if (entry && entry->fs_type.rfind("fuse", 0) == 0) {
      m->fstype_ = entry->fs_type;
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
    return Status::Unavailable(fmt::format("{} mounted {} but it does not answer: {}\n{}", m->name_,
                                           m->mountpoint_.string(), why, LogTail(log)));
  }
  return m;
}

FuseMount::~FuseMount() {
  std::vector<std::string> problems;
  Unmount(&problems);
  for (const auto& p : problems) fmt::print(stderr, "{}: {}\n", name_, p);
}

void FuseMount::Unmount(const std::unique_ptr<FuseMount>& mount,
                        std::vector<std::string>* problems) {
  if (mount != nullptr) mount->Unmount(problems);
}

void FuseMount::Unmount(std::vector<std::string>* problems) {
  if (done_) return;
  done_ = true;
  if (TopMountAt(mountpoint_.string()))
    fmt::print(stderr, "{}: unmounting {}\n", name_, mountpoint_.string());
  const auto deadline = Clock::now() + std::chrono::seconds(5);
  while (TopMountAt(mountpoint_.string())) {
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
      problems->push_back(fmt::format("could not unmount {}: {}; unmount it by hand (umount -l {})",
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

// ---- BrickdClient.

namespace {
void PrepareContext(grpc::ClientContext* ctx, const std::string& token) {
  ctx->AddMetadata("authorization", "Bearer " + token);
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
}
}  // namespace

BrickdClient::BrickdClient(const std::string& node, std::string admin_token, std::string data_token)
    : channel_(grpc::CreateChannel(node, grpc::InsecureChannelCredentials())),
      admin_(pb::BrickAdmin::NewStub(channel_)),
      brick_(pb::Brick::NewStub(channel_)),
      admin_token_(std::move(admin_token)),
      data_token_(std::move(data_token)) {}

bool BrickdClient::WaitForConnected(std::chrono::milliseconds timeout) {
  return channel_->WaitForConnected(std::chrono::system_clock::now() + timeout);
}

Status BrickdClient::Attach(const std::string& id, const std::string& path, uint64_t capacity,
                            pb::AttachReply* reply) {
  grpc::ClientContext ctx;
  PrepareContext(&ctx, admin_token_);
  pb::AttachRequest req;
  req.set_brick_id(id);
  req.set_path(path);
  req.set_capacity_bytes(capacity);
  return FromGrpcStatus(admin_->Attach(&ctx, req, reply), ctx);
}

Status BrickdClient::Detach(const std::string& id) {
  grpc::ClientContext ctx;
  PrepareContext(&ctx, admin_token_);
  pb::DetachRequest req;
  req.set_brick_id(id);
  pb::Empty reply;
  return FromGrpcStatus(admin_->Detach(&ctx, req, &reply), ctx);
}

StatusOr<pb::ListBricksReply> BrickdClient::ListBricks() {
  grpc::ClientContext ctx;
  PrepareContext(&ctx, admin_token_);
  pb::ListBricksReply reply;
  Status s = FromGrpcStatus(admin_->ListBricks(&ctx, pb::ListBricksRequest(), &reply), ctx);
  if (!s.ok()) return s;
  return reply;
}

Status BrickdClient::StatFs(const std::string& id, pb::StatFsReply* reply) {
  grpc::ClientContext ctx;
  PrepareContext(&ctx, data_token_);
  pb::StatFsRequest req;
  req.set_brick_id(id);
  return FromGrpcStatus(brick_->StatFs(&ctx, req, reply), ctx);
}

// ---- Workload helpers.

void FillRandom(std::vector<char>* buf, uint64_t seed) {
  std::mt19937_64 rng(seed);
  for (size_t i = 0; i + sizeof(uint64_t) <= buf->size(); i += sizeof(uint64_t)) {
    const uint64_t v = rng();
    std::memcpy(buf->data() + i, &v, sizeof(v));
  }
}

UniqueFd::~UniqueFd() {
  if (fd_ >= 0) ::close(fd_);
}

bool UniqueFd::Close() {
  const int fd = std::exchange(fd_, -1);
  return fd < 0 || ::close(fd) == 0;
}

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

Status WriteNewFile(const std::string& path, const std::vector<char>& data) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (!fd.valid()) return ErrnoStatus("create", path);
  CAIRN_RETURN_IF_ERROR(WriteAll(fd.get(), data.data(), data.size(), path));
  if (!fd.Close()) return ErrnoStatus("close", path);
  return Status::Ok();
}

Status WriteSequentialFile(const std::string& path, int64_t mib, uint64_t seed,
                           const std::function<Status(int64_t index, int fd)>& before_mib) {
  std::vector<char> buf(size_t{1} << 20);
  FillRandom(&buf, seed);
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd.valid()) return ErrnoStatus("create", path);
  for (int64_t i = 0; i < mib; ++i) {
    CAIRN_RETURN_IF_ERROR(CheckInterrupted());
    if (before_mib) CAIRN_RETURN_IF_ERROR(before_mib(i, fd.get()));
    std::memcpy(buf.data(), &i, sizeof(i));
    CAIRN_RETURN_IF_ERROR(WriteAll(fd.get(), buf.data(), buf.size(), path));
  }
  if (::fsync(fd.get()) != 0) return ErrnoStatus("fsync", path);
  if (!fd.Close()) return ErrnoStatus("close", path);
  return Status::Ok();
}

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

int ItemsOf(int total, int jobs, int job) { return total / jobs + (job < total % jobs ? 1 : 0); }

// ---- Statistics.

LatencyStats Summarize(std::vector<double> ms) {
  LatencyStats s;
  s.n = ms.size();
  if (ms.empty()) return s;
  std::sort(ms.begin(), ms.end());
  auto rank = [&](double p) {
    const size_t idx = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(ms.size())));
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
  const double f = std::pow(10.0, digits);
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

// ---- Report helpers.

MachineInfo MachineInfo::Read() {
  MachineInfo m;
  m.cpus = std::thread::hardware_concurrency();
  utsname uts{};
  ::uname(&uts);
  m.kernel = std::string(uts.sysname) + " " + uts.release;
  auto loadavg = SplitWhitespace(ReadText("/proc/loadavg").value_or("?"));
  m.load1 = loadavg.empty() ? "?" : loadavg[0];
  return m;
}

json MachineInfo::Json() const {
  return {{"cpus", cpus}, {"kernel", kernel}, {"loadavg_1m_at_start", load1}};
}

std::string MachineInfo::Describe() const {
  return fmt::format("{} CPUs, load average {} at start, {}", cpus, load1, kernel);
}

std::string Kib(int64_t v) { return v < 0 ? "n/a" : fmt::format("{} KiB", v); }

std::string OptNum(const std::optional<double>& v, int digits) {
  return v ? fmt::format("{:.{}f}", *v, digits) : "n/a";
}

json OptJson(const std::optional<double>& v, int digits) {
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

std::string Table::Format(const std::vector<std::string>& cells) const {
  std::string out = indent_;
  for (size_t i = 0; i < cells.size(); ++i) {
    const int width = i < widths_.size() ? widths_[i] : 0;
    if (i == 0) {
      out += fmt::format("{:<{}}", cells[i], width);
    } else {
      if (i > 1) out += "  ";
      out += fmt::format("{:>{}}", cells[i], width);
    }
  }
  return out;
}

void Table::Print(const std::vector<std::string>& cells) const {
  fmt::print("{}\n", Format(cells));
}

void Table::PrintHeader(const std::vector<std::string>& cells) const {
  std::vector<int> widths = widths_;
  if (!widths.empty()) widths[0] += static_cast<int>(indent_.size());
  fmt::print("{}\n", Table(widths, "").Format(cells));
}

void PrintSide(const std::string& title, const SideReport& side) {
  if (!side.measured) {
    fmt::print("  {:<16}not measured (--only)\n", title);
    return;
  }
  fmt::print("  {:<16}{}\n", title, side.target.empty() ? "(not set up)" : side.target);
  if (!side.error.empty()) fmt::print("  {:<16}FAILED: {}\n", "", side.error);
  for (const auto& n : side.notes) fmt::print("  {:<16}note: {}\n", "", n);
  for (const auto& p : side.problems) fmt::print("  {:<16}problem: {}\n", "", p);
}

json SideReportJson(const SideReport& side) {
  if (!side.measured) return {{"skipped", "not requested (--only)"}};
  return {{"target", side.target},
          {"error", side.error.empty() ? json(nullptr) : json(side.error)},
          {"notes", side.notes},
          {"problems", side.problems}};
}

void MeasureSide(SideReport* side, bool requested, const std::function<Status()>& measure) {
  if (!requested || Interrupted()) return;
  side->measured = true;
  Status s = measure();
  if (!s.ok()) {
    side->error = s.ToString();
    fmt::print(stderr, "{}: FAILED: {}\n", side->name, side->error);
  }
}

std::vector<std::string> SideFailures(const std::vector<const SideReport*>& sides) {
  std::vector<std::string> failures;
  for (const SideReport* side : sides) {
    if (!side->error.empty()) failures.push_back(side->name + ": " + side->error);
    for (const auto& p : side->problems) failures.push_back(side->name + ": " + p);
  }
  return failures;
}

void PrintFailures(const std::vector<std::string>& failures) {
  if (failures.empty()) return;
  fmt::print("\nFAILED:\n");
  for (const auto& f : failures) fmt::print("  - {}\n", f);
}

Status EmitResult(const json& out, const std::string& json_file) {
  fmt::print("\n{}\n", out.dump());
  std::fflush(stdout);
  if (json_file.empty()) return Status::Ok();
  return WriteFileAtomic(json_file, out.dump(2) + "\n", 0644).WithContext("--json file");
}

// ---- The frame of a run.

std::optional<int> OpenRun(const Status& preflight, const std::string& workdir,
                           const std::string& prefix, bool keep, const std::string& version_exe,
                           std::string sizes, RunFrame* frame) {
  if (!preflight.ok()) {
    fmt::print(stderr, "{}: cannot run: {}\n", ProgramName(), preflight.message());
    return 1;
  }
  auto tmp = TempDir::Create(workdir, prefix, keep);
  if (!tmp.ok()) {
    fmt::print(stderr, "{}: {}\n", ProgramName(), tmp.status().ToString());
    return 1;
  }
  frame->tmp = std::move(tmp).value();
  frame->machine = MachineInfo::Read();
  frame->gluster_version = version_exe.empty() ? "" : GlusterVersion(FindExecutable(version_exe));
  frame->gluster_title =
      frame->gluster_version.empty() ? "GlusterFS" : "GlusterFS " + frame->gluster_version;
  frame->sizes = std::move(sizes);
  if (!frame->sizes.empty()) {
    fmt::print(stderr, "{0}: {1}\n{0}: {2}; workdir {3}\n", ProgramName(), frame->sizes,
               frame->machine.Describe(), frame->root().string());
  }
  return std::nullopt;
}

void AddCommonFlags(Flags& flags, const std::string& quick_help, const std::string& keep_help,
                    const std::string& seed_help) {
  flags.AddBool("quick", false, quick_help);
  flags.AddString("only", "both", "cairn, gluster or both");
  flags.AddBool("keep", false, keep_help);
  flags.AddString("json", "", "also write the JSON result to this file");
  flags.AddString("workdir", "/tmp",
                  "directory in which a fresh temporary directory is made (removed at exit)");
  flags.AddInt("seed", 0, seed_help);
  AddGlusterFlags(flags, /*fuse_client=*/true);
}

bool ReadCommonFlags(const Flags& flags, CommonOptions* opt) {
  opt->quick = flags.GetBool("quick");
  if (!ParseOnly(flags.GetString("only"), &opt->run_cairn, &opt->run_gluster)) return false;
  opt->keep = flags.GetBool("keep");
  opt->json_file = flags.GetString("json");
  opt->workdir = flags.GetString("workdir");
  opt->seed = static_cast<uint64_t>(flags.GetInt("seed"));
  if (opt->seed == 0) opt->seed = std::random_device{}();
  opt->gluster = GlusterOptionsFromFlags(flags, /*fuse_client=*/true);
  return true;
}

int64_t QuickSized(const Flags& flags, const CommonOptions& opt, const char* name,
                   int64_t quick_value) {
  return opt.quick && !flags.IsSet(name) ? quick_value : flags.GetInt(name);
}

std::optional<int> RunBothSides(const Status& preflight, const CommonOptions& opt,
                                const std::string& prefix, std::string sizes, RunFrame* frame,
                                SideReport* cairn,
                                const std::function<Status(const RunFrame&)>& measure_cairn,
                                SideReport* gluster,
                                const std::function<Status(const RunFrame&)>& measure_gluster) {
  if (auto exit_code = OpenRun(preflight, opt.workdir, prefix, opt.keep, opt.gluster.glusterfs,
                               std::move(sizes), frame)) {
    return exit_code;
  }
  cairn->name = "cairn";
  gluster->name = "gluster";
  MeasureSide(cairn, opt.run_cairn, [&] { return measure_cairn(*frame); });
  MeasureSide(gluster, opt.run_gluster, [&] { return measure_gluster(*frame); });
  if (Interrupted()) {
    fmt::print(stderr, "{}: {}\n", ProgramName(), CheckInterrupted().ToString());
    return 130;
  }
  fmt::print("\n{}: Cairn vs {}, same run, same machine ({})\n", ProgramName(),
             frame->gluster_title, frame->machine.Describe());
  fmt::print("  {:<16}{}\n", "sizes", frame->sizes);
  PrintSide("Cairn", *cairn);
  PrintSide(frame->gluster_title, *gluster);
  return std::nullopt;
}

int FinishRun(json out, const std::vector<const SideReport*>& sides, const std::string& json_file) {
  const std::vector<std::string> failures = SideFailures(sides);
  PrintFailures(failures);
  out["failures"] = failures;
  out["ok"] = failures.empty();
  if (Status s = EmitResult(out, json_file); !s.ok()) {
    fmt::print(stderr, "{}: could not write --json file: {}\n", ProgramName(), s.ToString());
    return 1;
  }
  return failures.empty() ? 0 : 1;
}

// ---- GlusterFS.

void AddGlusterFlags(Flags& flags, bool fuse_client) {
  flags.AddString("gluster-host", "",
                  "gluster brick host, must resolve to loopback only (default: this hostname if "
                  "it does, else 127.0.0.2)");
  flags.AddString("glusterd", "glusterd", "glusterd executable");
  flags.AddString("gluster-cli", "gluster", "gluster CLI executable");
  if (fuse_client) flags.AddString("glusterfs", "glusterfs", "glusterfs (FUSE client) executable");
}

GlusterOptions GlusterOptionsFromFlags(const Flags& flags, bool fuse_client) {
  GlusterOptions opt;
  opt.host = flags.GetString("gluster-host");
  opt.glusterd = flags.GetString("glusterd");
  opt.gluster_cli = flags.GetString("gluster-cli");
  if (fuse_client) opt.glusterfs = flags.GetString("glusterfs");
  return opt;
}

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

StatusOr<std::pair<std::string, std::string>> ChooseGlusterHost(const std::string& wanted) {
  auto host = GlusterBrickHost(wanted);
  if (!host.ok() && wanted.empty()) host = GlusterBrickHost("127.0.0.2");
  return host;
}

std::string GlusterVersion(const std::string& exe) {
  if (exe.empty()) return "";
  auto r = RunCommand({exe, "--version"}, std::chrono::seconds(10), true);
  if (!r.ok() || r->exit_code != 0) return "";
  auto words = SplitWhitespace(r->output.substr(0, r->output.find('\n')));
  return words.size() >= 2 ? words[1] : "";
}

Status CheckGlusterClusterCanStart(const GlusterOptions& opt, std::string_view install_hint,
                                   std::string_view running_hint) {
  CAIRN_RETURN_IF_ERROR(CheckGlusterInstalled(opt, /*fuse_client=*/true, install_hint));
  CAIRN_RETURN_IF_ERROR(CheckNoOtherGlusterd(running_hint));
  return ChooseGlusterHost(opt.host).status();
}

Status CheckGlusterInstalled(const GlusterOptions& opt, bool fuse_client, std::string_view hint) {
  std::vector<const std::string*> programs = {&opt.glusterd, &opt.gluster_cli};
  if (fuse_client) programs.push_back(&opt.glusterfs);
  for (const std::string* exe : programs) {
    if (FindExecutable(*exe).empty()) {
      return Status::NotFound(
          fmt::format("GlusterFS is not installed ({} not found): scripts/setup.sh --bench "
                      "installs it{}",
                      *exe, hint));
    }
  }
  return Status::Ok();
}

Status CheckNoOtherGlusterd(std::string_view hint) {
  const std::vector<pid_t> running = ProcessesCalled("glusterd");
  if (!running.empty()) {
    return Status::FailedPrecondition(
        fmt::format("a glusterd is already running (pid {}); this benchmark starts its own private "
                    "glusterd and will not touch another one: stop it first{}",
                    running.front(), hint));
  }
  if (auto s = TcpPortListening(kGlusterdPort)) {
    return Status::FailedPrecondition(fmt::format("TCP port {} (glusterd's) is already in use ({})",
                                                  kGlusterdPort, s->ToString()));
  }
  return Status::Ok();
}

namespace {

constexpr const char* kGlusterSystemDirs[] = {"/var/lib/glusterd", "/var/run/gluster",
                                              "/var/log/glusterfs"};

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

std::string Trim(std::string_view s) {
  const size_t b = s.find_first_not_of(" \t");
  if (b == std::string_view::npos) return "";
  const size_t e = s.find_last_not_of(" \t\r");
  return std::string(s.substr(b, e - b + 1));
}

}  // namespace

Status GlusterDaemon::Start() {
  glusterd_bin_ = FindExecutable(opt_.glusterd);
  cli_bin_ = FindExecutable(opt_.gluster_cli);
  if (glusterd_bin_.empty() || cli_bin_.empty()) {
    return CheckGlusterInstalled(opt_, /*fuse_client=*/false, "");
  }
  auto host = GlusterBrickHost(opt_.host);
  if (!host.ok() && opt_.host.empty()) {
    // This machine's name is not loopback-only: any other 127.x address is, and gluster counts
    // it as local.
    fmt::print(stderr, "gluster: {}; using 127.0.0.2\n", host.status().message());
    host = GlusterBrickHost("127.0.0.2");
  }
  if (!host.ok()) return host.status();
  host_ = host->first;
  address_ = host->second;

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
  for (const char* d : kGlusterSystemDirs) before_[d] = ListTree(d, 3);
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
      (dir_ / "state").string(), (dir_ / "run").string(), sock_, (dir_ / "logs").string(), address_,
      kGlusterdPort);
  CAIRN_RETURN_IF_ERROR(WriteFileAtomic(volfile.string(), vol, 0644));
  glusterd_log_ = dir_ / "logs" / "glusterd.log";
  const std::vector<std::string> argv = {
      glusterd_bin_, "--no-daemon", "--volfile=" + volfile.string(),
      "--log-file=" + glusterd_log_.string(), "--pid-file=" + (dir_ / "glusterd.pid").string()};
  fmt::print(stderr, "gluster: starting {}\n", Join(argv, " "));
  CAIRN_ASSIGN_OR_RETURN(glusterd_,
                         ChildProcess::Start("glusterd", argv, dir_ / "logs" / "glusterd.out"));
  const auto deadline = Clock::now() + std::chrono::seconds(20);
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
  return Status::Ok();
}

StatusOr<CommandResult> GlusterDaemon::Cli(const std::vector<std::string>& args,
                                           bool interruptible) {
  std::vector<std::string> argv = {cli_bin_, "--mode=script", "--glusterd-sock=" + sock_,
                                   "--log-file=" + (dir_ / "logs" / "cli.log").string()};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv, std::chrono::seconds(120), interruptible);
}

StatusOr<CommandResult> GlusterDaemon::CliOk(const std::vector<std::string>& args) {
  CAIRN_ASSIGN_OR_RETURN(CommandResult r, Cli(args));
  if (r.exit_code != 0) {
    return Status::Internal(
        fmt::format("'gluster {}' failed (exit {}): {}", Join(args, " "), r.exit_code, r.output));
  }
  return r;
}

StatusOr<CommandResult> GlusterDaemon::CreateVolume(const std::string& name,
                                                    const std::vector<std::string>& args) {
  std::vector<std::string> cmd = {"volume", "create", name};
  cmd.insert(cmd.end(), args.begin(), args.end());
  CAIRN_ASSIGN_OR_RETURN(CommandResult r, CliOk(cmd));
  created_.push_back(name);
  ever_created_.insert(name);
  return r;
}

StatusOr<CommandResult> GlusterDaemon::StartVolume(const std::string& name, bool force) {
  std::vector<std::string> cmd = {"volume", "start", name};
  if (force) cmd.push_back("force");
  CAIRN_ASSIGN_OR_RETURN(CommandResult r, CliOk(cmd));
  started_.insert(name);
  return r;
}

StatusOr<CommandResult> GlusterDaemon::StopVolume(const std::string& name) {
  CAIRN_ASSIGN_OR_RETURN(CommandResult r, CliOk({"volume", "stop", name}));
  started_.erase(name);
  return r;
}

StatusOr<CommandResult> GlusterDaemon::DeleteVolume(const std::string& name) {
  CAIRN_ASSIGN_OR_RETURN(CommandResult r, CliOk({"volume", "delete", name}));
  created_.erase(std::remove(created_.begin(), created_.end(), name), created_.end());
  return r;
}

StatusOr<CommandResult> GlusterDaemon::HealInfoSummary(const std::string& volume) {
  // Where distributions put it (GLFSHEAL_PREFIX).
  std::string glfsheal;
  for (const char* dir :
       {"/usr/lib/x86_64-linux-gnu/glusterfs", "/usr/lib/aarch64-linux-gnu/glusterfs",
        "/usr/libexec/glusterfs", "/usr/lib64/glusterfs", "/usr/lib/glusterfs",
        "/usr/local/libexec/glusterfs"}) {
    const std::string candidate = std::string(dir) + "/glfsheal";
    if (::access(candidate.c_str(), X_OK) == 0) {
      glfsheal = candidate;
      break;
    }
  }
  if (glfsheal.empty())
    return Status::NotFound("glfsheal (GlusterFS's heal-info helper) not found");
  CAIRN_ASSIGN_OR_RETURN(CommandResult r,
                         RunCommand({glfsheal, volume, "info-summary", "glusterd-sock", sock_},
                                    std::chrono::seconds(120), /*interruptible=*/true));
  if (r.exit_code != 0) {
    return Status::Internal(fmt::format("'glfsheal {} info-summary' failed (exit {}): {}", volume,
                                        r.exit_code, r.output));
  }
  return r;
}

StatusOr<std::vector<GlusterBrickStatus>> GlusterDaemon::BrickStatus(const std::string& volume) {
  CAIRN_ASSIGN_OR_RETURN(CommandResult r, CliOk({"volume", "status", volume, "detail"}));
  // Blocks of "Key   : value" lines, each starting with "Brick : Brick HOST:PATH".
  std::vector<GlusterBrickStatus> out;
  std::istringstream in(r.output);
  std::string line;
  while (std::getline(in, line)) {
    const size_t colon = line.find(" : ");
    if (colon == std::string::npos) continue;
    const std::string key = Trim(std::string_view(line).substr(0, colon));
    const std::string value = Trim(std::string_view(line).substr(colon + 3));
    if (key == "Brick") {
      out.push_back({});
      out.back().brick = value.rfind("Brick ", 0) == 0 ? value.substr(6) : value;
    } else if (out.empty()) {
      continue;
    } else if (key == "Online") {
      out.back().online = value == "Y";
    } else if (key == "Pid") {
      out.back().pid = static_cast<pid_t>(std::atoi(value.c_str()));
    } else if (key == "TCP Port") {
      out.back().port = std::atoi(value.c_str());
    }
  }
  return out;
}

Status GlusterDaemon::WaitForBricksOnline(const std::string& volume, int bricks,
                                          std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  std::string last;
  for (;;) {
    auto status = BrickStatus(volume);
    int online = 0;
    if (status.ok()) {
      std::vector<std::string> described;
      for (const auto& b : *status) {
        if (b.online) ++online;
        described.push_back(
            fmt::format("{} online={} pid={}", b.brick, b.online ? "Y" : "N", b.pid));
      }
      last = Join(described, "; ");
      if (online >= bricks) return Status::Ok();
    } else {
      CAIRN_RETURN_IF_ERROR(CheckInterrupted());
      last = status.status().ToString();
    }
    if (Clock::now() >= deadline) {
      return Status::DeadlineExceeded(
          fmt::format("{} of the {} bricks of volume {} online after {:.0f} s: {}", online, bricks,
                      volume, timeout.count() / 1000.0, last));
    }
    SleepMs(200);
    CAIRN_RETURN_IF_ERROR(CheckInterrupted());
  }
}

std::vector<pid_t> GlusterDaemon::BrickProcesses() {
  std::vector<pid_t> out;
  for (pid_t pid : ProcessesNaming(dir_.string() + "/", this->pid())) {
    auto args = ProcessCmdline(pid);
    if (args.empty() || fs::path(args[0]).filename() != "glusterfsd") continue;
    out.push_back(pid);
    for (size_t i = 0; i + 1 < args.size(); ++i) {
      if (args[i] == "-S" || args[i] == "--socket-file") sockets_.insert(args[i + 1]);
    }
  }
  return out;
}

void GlusterDaemon::RememberSockets() {
  for (pid_t pid : ProcessesNaming(dir_.string() + "/", this->pid())) {
    auto args = ProcessCmdline(pid);
    for (size_t i = 0; i + 1 < args.size(); ++i) {
      if (args[i] == "-S" || args[i] == "--socket-file") sockets_.insert(args[i + 1]);
    }
  }
}

void GlusterDaemon::Problem(std::string what) {
  fmt::print(stderr, "gluster cleanup: {}\n", what);
  problems_.push_back(std::move(what));
}

void GlusterDaemon::Stop(std::string* shutdown) {
  if (stopped_) return;
  stopped_ = true;
  if (glusterd_ != nullptr && glusterd_->Running() && !created_.empty()) {
    fmt::print(stderr, "gluster: stopping and deleting volume(s) {}\n", Join(created_, ", "));
    for (auto it = created_.rbegin(); it != created_.rend(); ++it) {
      if (started_.count(*it) != 0) {
        auto r = Cli({"volume", "stop", *it, "force"}, /*interruptible=*/false);
        if (!r.ok() || r->exit_code != 0) {
          Problem("could not stop volume " + *it + ": " +
                  (r.ok() ? r->output : r.status().ToString()));
        }
      }
      auto r = Cli({"volume", "delete", *it}, /*interruptible=*/false);
      if (!r.ok() || r->exit_code != 0) {
        Problem("could not delete volume " + *it + ": " +
                (r.ok() ? r->output : r.status().ToString()));
      }
    }
  }
  created_.clear();
  started_.clear();
  // With the volumes stopped, their brick processes and self-heal daemon exit by themselves.
  const std::string needle = dir_.string() + "/";
  const pid_t glusterd_pid = pid();
  RememberSockets();
  for (const std::string& p :
       ReapProcessesNaming(needle, glusterd_pid, std::chrono::seconds(10), "the volumes stopped")) {
    Problem(p);
  }
  if (glusterd_ != nullptr) {
    const double ms = glusterd_->Stop(std::chrono::seconds(10));
    if (glusterd_->needed_sigkill()) Problem("glusterd ignored SIGTERM; killed");
    if (shutdown != nullptr) {
      *shutdown = glusterd_->Ended() + fmt::format(" {:.0f} ms after SIGTERM", ms);
    }
  }
  // Anything else still running that names our directory (nothing, normally).
  for (pid_t pid : ProcessesNaming(needle, 0)) {
    Problem(fmt::format("stray process {} ({}); killing it", pid, Join(ProcessCmdline(pid), " ")));
    KillByPid(pid);
  }
  // The brick processes' unix sockets, then empty entries glusterd created.
  for (const auto& sock : sockets_) {
    struct stat st {};
    if (::lstat(sock.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) ::unlink(sock.c_str());
  }
  std::set<std::string> heal_logs;  // written by our `volume heal VOLUME info` calls
  for (const auto& v : ever_created_) {
    heal_logs.insert(fmt::format("/var/log/glusterfs/glfsheal-{}.log", v));
  }
  for (const char* d : kGlusterSystemDirs) {
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
      } else if (S_ISSOCK(st.st_mode) || (S_ISREG(st.st_mode) && st.st_size == 0) ||
                 (S_ISREG(st.st_mode) && heal_logs.contains(p))) {
        removed = ::unlink(p.c_str()) == 0;
      }
      if (!removed) Problem("left behind (not empty, not removed): " + p);
    }
  }
}

json ReplicatedVolumeSpec(const std::string& name, const json& bricks) {
  return {{"volume_id", Uuid::Random().ToString()},
          {"name", name},
          {"type", "replicate"},
          {"replica", bricks.size()},
          {"arbiter", 0},
          {"generation", 1},
          {"size_bytes", 0},
          {"subvolumes", json::array({bricks})}};
}

// ---- GlusterCluster.

fs::path GlusterCluster::brick_dir(int i) const { return dir_ / "bricks" / fmt::format("b{}", i); }

Status GlusterCluster::Start(const std::string& version) {
  const std::string glusterfs_bin = FindExecutable(opt_.glusterfs);
  if (glusterfs_bin.empty()) return CheckGlusterInstalled(opt_, /*fuse_client=*/true, "");
  CAIRN_RETURN_IF_ERROR(daemon_.Start());
  std::error_code ec;
  const fs::path mnt = dir_ / "mnt";
  fs::create_directories(mnt, ec);
  if (ec) return Status::Internal("create " + mnt.string() + ": " + ec.message());

  // `force`: the bricks live on the root file system and on one server, both of which gluster
  // otherwise refuses for a replicated volume. Nothing else is tuned.
  std::vector<std::string> args = {"replica", std::to_string(replica_)};
  for (int i = 1; i <= replica_; ++i) {
    const fs::path brick = brick_dir(i);
    fs::create_directory(brick, ec);
    if (ec) return Status::Internal("create " + brick.string() + ": " + ec.message());
    bricks_.push_back(daemon_.host() + ":" + brick.string());
    args.push_back(bricks_.back());
  }
  args.push_back("force");
  fmt::print(stderr, "gluster: gluster volume create {} {}\n", volume_, Join(args, " "));
  CAIRN_RETURN_IF_ERROR(daemon_.CreateVolume(volume_, args).status());
  CAIRN_RETURN_IF_ERROR(daemon_.StartVolume(volume_).status());
  CAIRN_RETURN_IF_ERROR(daemon_.WaitForBricksOnline(volume_, replica_, std::chrono::seconds(30)));

  CAIRN_ASSIGN_OR_RETURN(
      mount_,
      FuseMount::Start("glusterfs",
                       {glusterfs_bin, "--no-daemon", "--volfile-server=" + daemon_.host(),
                        "--volfile-id=" + volume_,
                        "--log-file=" + (dir_ / "logs" / "mount.log").string(), mnt.string()},
                       mnt, dir_ / "logs" / "mount.out",
                       // After an unmount glusterfs takes its SIGTERM path: exit 15.
                       {0, 15}));
  target_ = fmt::format("glusterfs {} FUSE mount of replica-{} volume '{}' ({}), {} at {}", version,
                        replica_, volume_, Join(bricks_, ", "), mount_->fstype(), mnt.string());
  fmt::print(stderr, "gluster: mounted: {}\n", target_);
  return Status::Ok();
}

void GlusterCluster::Stop() {
  if (stopped_) return;
  stopped_ = true;
  FuseMount::Unmount(mount_, &problems_);
  daemon_.Stop();
}

std::vector<std::string> GlusterCluster::problems() const {
  std::vector<std::string> out = problems_;
  out.insert(out.end(), daemon_.problems().begin(), daemon_.problems().end());
  return out;
}

}  // namespace cairn::bench
