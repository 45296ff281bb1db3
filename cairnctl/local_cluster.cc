// cairnctl local up|down.
#include "cairnctl/local_cluster.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "cairnctl/rest_client.h"
#include "cairnctl/settings.h"
#include "cairnctl/topology.h"
#include "common/file_util.h"
#include "common/id.h"

extern char** environ;

namespace cairn::ctl {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr char kLocalFile[] = "local.json";
constexpr char kClusterFile[] = "cluster.json";
constexpr char kLockFile[] = "cairnctl.lock";
constexpr int kDefaultNodes = 3;
constexpr int kDefaultPort = 8080;
constexpr int kDefaultStoragedPort = 24007;
constexpr int64_t kMaxDefaultDeviceGib = 100;
constexpr int kMaxNodes = 200;  // 127.0.0.2 ... 127.0.0.201

std::string BaseName(const std::string& p) {
  auto slash = p.rfind('/');
  return slash == std::string::npos ? p : p.substr(slash + 1);
}

Status Errno(int err, const std::string& what) {
  return Status(StatusCode::kInternal, what + ": " + std::strerror(err), err);
}

Status MakeDirs(const std::string& path, mode_t mode) {
  std::error_code ec;
  fs::create_directories(path, ec);
  if (ec) return Status::Internal("cannot create " + path + ": " + ec.message());
  ::chmod(path.c_str(), mode);
  return Status::Ok();
}

// An exclusive flock on DIR/cairnctl.lock, so two cairnctl do not change DIR at once.
class DirLock {
 public:
  static StatusOr<std::unique_ptr<DirLock>> Take(const std::string& dir) {
    const std::string path = dir + "/" + kLockFile;
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return Errno(errno, "open " + path);
    if (::flock(fd, LOCK_EX) != 0) {
      Status s = Errno(errno, "lock " + path);
      ::close(fd);
      return s;
    }
    auto l = std::unique_ptr<DirLock>(new DirLock);
    l->fd_ = fd;
    return l;
  }
  ~DirLock() {
    if (fd_ >= 0) ::close(fd_);
  }

 private:
  DirLock() = default;
  int fd_ = -1;
};

// ---------------------------------------------------------------------------
// The files of DIR.

struct LocalConfig {
  int nodes = kDefaultNodes;
  int64_t device_size_gib = 0;
  int port = kDefaultPort;
  int storaged_port = kDefaultStoragedPort;
  // The ports each process had last time, so that a restart with port 0
  // keeps the addresses clients and the provisioner know (when still free).
  std::map<std::string, int> last_ports;
};

StatusOr<std::optional<LocalConfig>> LoadLocalConfig(const std::string& dir) {
  const std::string path = dir + "/" + kLocalFile;
  if (::access(path.c_str(), F_OK) != 0) return std::optional<LocalConfig>();
  CAIRN_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Status::Internal(path + " is not a JSON object");
  LocalConfig c;
  try {
    c.nodes = j.at("nodes").get<int>();
    c.device_size_gib = j.at("device_size_gib").get<int64_t>();
    c.port = j.value("port", kDefaultPort);
    c.storaged_port = j.value("storaged_port", kDefaultStoragedPort);
    if (j.contains("last_ports") && j["last_ports"].is_object()) {
      for (const auto& [name, port] : j["last_ports"].items()) {
        if (port.is_number_integer()) c.last_ports[name] = port.get<int>();
      }
    }
  } catch (const json::exception& e) {
    return Status::Internal(path + ": " + e.what());
  }
  return std::optional<LocalConfig>(c);
}

Status SaveLocalConfig(const std::string& dir, const LocalConfig& c) {
  json j = {{"format", 1},
            {"nodes", c.nodes},
            {"device_size_gib", c.device_size_gib},
            {"port", c.port},
            {"storaged_port", c.storaged_port},
            {"last_ports", c.last_ports}};
  return WriteFileAtomic(dir + "/" + kLocalFile, j.dump(2) + "\n", 0600);
}

constexpr char kCsiName[] = "csi";

// One process of the cluster.
struct Proc {
  std::string name;  // "provisioner", "node-0", ...
  std::string binary;
  pid_t pid = -1;
  std::string address;  // host:port it serves on
  std::string marker;   // an argument only this cluster's process has
  std::string log;
  std::string state_dir;  // storaged only

  json ToJson() const {
    json j = {{"name", name},       {"binary", binary}, {"pid", pid},
              {"address", address}, {"marker", marker}, {"log", log}};
    if (!state_dir.empty()) j["state_dir"] = state_dir;
    return j;
  }
  static Proc FromJson(const json& j) {
    Proc p;
    p.name = j.value("name", "");
    p.binary = j.value("binary", "");
    p.pid = j.value("pid", -1);
    p.address = j.value("address", "");
    p.marker = j.value("marker", "");
    p.log = j.value("log", "");
    p.state_dir = j.value("state_dir", "");
    return p;
  }
  bool Running() const { return pid > 0 && ProcessMatches(pid, binary, marker); }
};

struct ClusterState {
  std::string server;
  std::vector<Proc> procs;
  json mounts = json::array();  // [{"path","volume"}]

  Proc* Find(const std::string& name) {
    for (auto& p : procs) {
      if (p.name == name) return &p;
    }
    return nullptr;
  }
  void Put(const Proc& p) {
    if (Proc* q = Find(p.name)) {
      *q = p;
    } else {
      procs.push_back(p);
    }
  }
  void Remove(const std::string& name) {
    procs.erase(
        std::remove_if(procs.begin(), procs.end(), [&](const Proc& p) { return p.name == name; }),
        procs.end());
  }
};

StatusOr<std::optional<ClusterState>> LoadClusterState(const std::string& dir) {
  const std::string path = dir + "/" + kClusterFile;
  if (::access(path.c_str(), F_OK) != 0) return std::optional<ClusterState>();
  CAIRN_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Status::Internal(path + " is not a JSON object");
  ClusterState s;
  s.server = j.value("server", "");
  if (j.contains("processes") && j["processes"].is_array()) {
    for (const auto& p : j["processes"]) {
      if (p.is_object()) s.procs.push_back(Proc::FromJson(p));
    }
  }
  if (j.contains("mounts") && j["mounts"].is_array()) s.mounts = j["mounts"];
  return std::optional<ClusterState>(std::move(s));
}

Status SaveClusterState(const std::string& dir, const ClusterState& s) {
  json procs = json::array();
  for (const auto& p : s.procs) procs.push_back(p.ToJson());
  json j = {{"format", 1},
            {"dir", dir},
            {"server", s.server},
            {"processes", procs},
            {"mounts", s.mounts}};
  return WriteFileAtomic(dir + "/" + kClusterFile, j.dump(2) + "\n", 0600);
}

// Keeps the secret in `path`, or writes a fresh random one (0600).
StatusOr<std::string> EnsureSecret(const std::string& path) {
  if (::access(path.c_str(), F_OK) == 0) {
    auto s = ReadSecretFile(path);
    if (s.ok()) return *s;
    return Status::Internal("secret file " + path + ": " + s.status().message());
  }
  std::string secret = RandomHexToken(32);
  CAIRN_RETURN_IF_ERROR(WriteFileAtomic(path, secret + "\n", 0600));
  return secret;
}

// ---------------------------------------------------------------------------
// Processes.

// Starts `args` in its own session with stdin /dev/null and stdout/stderr
// appended to `log`; nothing else inherited. Not tied to our life.
StatusOr<pid_t> SpawnDaemon(const std::vector<std::string>& args, const std::string& log) {
  std::vector<std::string> store = args;
  std::vector<char*> argv;
  for (auto& a : store) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, defaults;
  sigemptyset(&none);
  sigemptyset(&defaults);
  for (int sig : {SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGCHLD, SIGQUIT}) sigaddset(&defaults, sig);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSID);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log.c_str(),
                                   O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);
  pid_t pid = 0;
  int err = ::posix_spawn(&pid, argv[0], &actions, &attr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (err != 0) return Errno(err, "cannot start " + args[0]);
  return pid;
}

// True iff `pid` no longer runs (reaped if it is our child; a zombie counts as gone).
bool Gone(pid_t pid) {
  int status = 0;
  pid_t r = ::waitpid(pid, &status, WNOHANG);
  if (r == pid) return true;
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  if (!in) return true;
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto paren = stat.rfind(')');
  if (paren == std::string::npos || paren + 2 >= stat.size()) return true;
  char state = stat[paren + 2];
  return state == 'Z' || state == 'X';
}

std::string DescribeExit(int status) {
  if (WIFEXITED(status)) return "exited with " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status))
    return std::string("killed by signal ") + std::to_string(WTERMSIG(status));
  return "stopped";
}

std::string WithLogTail(const std::string& message, const std::string& log) {
  std::string tail = TailFile(log, 20);
  if (tail.empty()) return message + " (its log " + log + " is empty)";
  return message + "; last lines of " + log + ":\n" + tail;
}

// Waits for `ready_file` naming `pid`. Fails (with the log's tail) when the
// process exits first or the timeout passes.
StatusOr<json> WaitReady(const Proc& p, const std::string& ready_file,
                         std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    int status = 0;
    if (::waitpid(p.pid, &status, WNOHANG) == p.pid) {
      return Status::Internal(WithLogTail(p.name + " (" + BaseName(p.binary) + ", pid " +
                                              std::to_string(p.pid) + ") " + DescribeExit(status) +
                                              " before it was ready",
                                          p.log));
    }
    if (::access(ready_file.c_str(), F_OK) == 0) {
      auto text = ReadFile(ready_file);
      if (text.ok()) {
        json j = json::parse(*text, nullptr, false);
        if (!j.is_discarded() && j.is_object() && j.value("pid", -1) == p.pid) return j;
      }
    }
    if (Clock::now() > deadline) {
      return Status::DeadlineExceeded(
          WithLogTail(p.name + " (pid " + std::to_string(p.pid) + ") was not ready within " +
                          std::to_string(timeout.count() / 1000) + " s (no " + ready_file + ")",
                      p.log));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

// A storaged's brickd (from STATE_DIR/brickd.pid), if it still runs: it
// survives a storaged that had to be SIGKILLed.
struct Target {
  std::string what;
  pid_t pid;
  std::function<bool()> ours;
};

std::optional<Target> BrickdOf(const Proc& storaged) {
  if (storaged.state_dir.empty()) return std::nullopt;
  auto text = ReadFile(storaged.state_dir + "/brickd.pid");
  if (!text.ok()) return std::nullopt;
  json j = json::parse(*text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  pid_t pid = j.value("pid", -1);
  if (pid <= 0) return std::nullopt;
  const std::string ready = storaged.state_dir + "/brickd.ready";
  auto ours = [pid, ready] {
    auto args = ProcessCmdline(pid);
    if (args.empty() || BaseName(args[0]) != "brickd") return false;
    return std::any_of(args.begin(), args.end(), [&](const std::string& a) {
      return a.rfind("--ready-file", 0) == 0 && a.find(ready) != std::string::npos;
    });
  };
  return Target{storaged.name + "'s brickd", pid, ours};
}

// SIGTERM to every target that is ours, up to `timeout` for them to go,
// SIGKILL to the rest. Returns one line per target stopped.
std::vector<std::string> StopTargets(const std::vector<Target>& targets,
                                     std::chrono::milliseconds timeout) {
  std::vector<std::string> lines;
  std::vector<const Target*> live;
  for (const auto& t : targets) {
    if (t.pid > 0 && t.ours() && ::kill(t.pid, SIGTERM) == 0) live.push_back(&t);
  }
  const auto deadline = Clock::now() + timeout;
  std::set<pid_t> killed;
  for (;;) {
    bool all_gone = true;
    for (const Target* t : live) {
      if (!Gone(t->pid)) all_gone = false;
    }
    if (all_gone) break;
    if (Clock::now() > deadline) {
      for (const Target* t : live) {
        if (!Gone(t->pid) && t->ours()) {
          ::kill(t->pid, SIGKILL);
          killed.insert(t->pid);
        }
      }
      const auto kill_deadline = Clock::now() + std::chrono::seconds(5);
      while (Clock::now() < kill_deadline &&
             !std::all_of(live.begin(), live.end(), [](const Target* t) { return Gone(t->pid); })) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  for (const Target* t : live) {
    std::string l = "stopped " + t->what + " (pid " + std::to_string(t->pid) + ")";
    if (killed.count(t->pid) != 0) {
      l += Gone(t->pid) ? " with SIGKILL after " + std::to_string(timeout.count() / 1000) + " s"
                        : ": STILL RUNNING after SIGKILL";
    }
    lines.push_back(l);
  }
  return lines;
}

// Stops the given processes of the cluster (and any brickd a storaged left).
std::vector<std::string> StopProcs(const std::vector<Proc>& procs,
                                   std::chrono::milliseconds timeout) {
  std::vector<Target> targets;
  for (const auto& p : procs) {
    Proc copy = p;
    targets.push_back({p.name, p.pid, [copy] { return copy.Running(); }});
  }
  auto lines = StopTargets(targets, timeout);
  // storaged stops its brickd on SIGTERM; one left behind (storaged killed) goes now.
  std::vector<Target> brickds;
  for (const auto& p : procs) {
    if (auto b = BrickdOf(p); b.has_value() && b->ours()) brickds.push_back(*b);
  }
  for (auto& l : StopTargets(brickds, timeout)) lines.push_back(l);
  return lines;
}

// ---------------------------------------------------------------------------
// Mounts.

bool IsMountPoint(const std::string& path) { return TopMountAt(path).has_value(); }

// Runs a program (looked up on $PATH) to completion; its output goes to *output.
StatusOr<int> RunQuiet(const std::vector<std::string>& args, std::string* output) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return Errno(errno, "pipe");
  std::vector<std::string> store = args;
  std::vector<char*> argv;
  for (auto& a : store) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDERR_FILENO);
  pid_t pid = 0;
  int err = ::posix_spawnp(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(fds[1]);
  if (err != 0) {
    ::close(fds[0]);
    return Errno(err, "cannot run " + args[0]);
  }
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fds[0], buf, sizeof(buf))) > 0 || (n < 0 && errno == EINTR)) {
    if (n > 0) output->append(buf, static_cast<size_t>(n));
  }
  ::close(fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// fusermount3 -u, and a lazy unmount if the mount is busy.
std::string Unmount(const std::string& path) {
  if (!IsMountPoint(path)) return "mount " + path + ": not mounted any more";
  std::string out;
  auto rc = RunQuiet({"fusermount3", "-u", path}, &out);
  if (rc.ok() && *rc == 0) return "unmounted " + path;
  out.clear();
  auto lazy = RunQuiet({"fusermount3", "-u", "-z", path}, &out);
  if (lazy.ok() && *lazy == 0) return "unmounted " + path + " (lazily: it was busy)";
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return "could not unmount " + path + ": " + (lazy.ok() ? out : lazy.status().message());
}

// Removes `path` and everything in it without crossing into other file systems.
Status RemoveTree(const std::string& path) {
  std::error_code ec;
  struct stat root;
  if (::lstat(path.c_str(), &root) != 0) return Status::Ok();
  std::vector<std::string> stack = {path};
  std::vector<std::string> dirs;
  while (!stack.empty()) {
    std::string d = stack.back();
    stack.pop_back();
    dirs.push_back(d);
    for (auto it = fs::directory_iterator(d, ec); !ec && it != fs::directory_iterator();
         it.increment(ec)) {
      const std::string p = it->path().string();
      struct stat st;
      if (::lstat(p.c_str(), &st) != 0) continue;
      if (S_ISDIR(st.st_mode)) {
        if (st.st_dev != root.st_dev) {
          return Status::FailedPrecondition(p + " is a mount point; not removing " + path);
        }
        ::chmod(p.c_str(), 0700);
        stack.push_back(p);
      } else if (::unlink(p.c_str()) != 0 && errno != ENOENT) {
        return Errno(errno, "remove " + p);
      }
    }
    if (ec) return Status::Internal("list " + d + ": " + ec.message());
  }
  for (auto it = dirs.rbegin(); it != dirs.rend(); ++it) {
    if (::rmdir(it->c_str()) != 0 && errno != ENOENT) return Errno(errno, "remove " + *it);
  }
  return Status::Ok();
}

// True iff DIR is empty, missing, or one `local up` made.
bool UsableDir(const std::string& dir) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) return true;
  for (const char* ours : {kLocalFile, kClusterFile, kLockFile, "admin.key"}) {
    if (fs::exists(dir + "/" + ours, ec)) return true;
  }
  return fs::is_directory(dir, ec) && fs::is_empty(dir, ec);
}

std::string NodeHost(int i) { return "127.0.0." + std::to_string(2 + i); }

// The port a process listens on: the configured one; for 0, the one it had
// last time if that is free (stable addresses across restarts), else 0 (any).
int PortFor(const LocalConfig& cfg, const std::string& name, const std::string& host,
            int configured) {
  if (configured != 0) return configured;
  auto it = cfg.last_ports.find(name);
  if (it == cfg.last_ports.end() || it->second <= 0 || it->second > 65535) return 0;
  return CheckPortFree(host, it->second, "").ok() ? it->second : 0;
}

int PortOf(const std::string& address) {
  auto colon = address.rfind(':');
  if (colon == std::string::npos) return 0;
  try {
    return std::stoi(address.substr(colon + 1));
  } catch (...) {
    return 0;
  }
}

// Ports a cluster with these settings listens on (for the "taken" check).
struct PortUse {
  std::string host;
  int port;
  std::string what;
};

}  // namespace

// ---------------------------------------------------------------------------
// Exposed helpers.

std::string AbsolutePath(const std::string& path) {
  std::string p = path;
  if (p == "~" || p.rfind("~/", 0) == 0) {
    const char* home = std::getenv("HOME");
    p = std::string(home != nullptr ? home : "") + p.substr(1);
  }
  fs::path abs = fs::path(p).is_absolute() ? fs::path(p) : fs::current_path() / p;
  std::string s = abs.lexically_normal().string();
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  return s;
}

StatusOr<std::string> FindBinaryIn(const std::string& exe_dir, const std::string& name,
                                   const std::string& build_subdir, const std::string& path_env) {
  std::vector<std::string> candidates;
  if (!exe_dir.empty()) {
    candidates.push_back(exe_dir + "/" + name);
    candidates.push_back(exe_dir + "/../" + build_subdir + "/" + name);
  }
  std::stringstream dirs(path_env);
  std::string d;
  while (std::getline(dirs, d, ':')) {
    if (!d.empty()) candidates.push_back(d + "/" + name);
  }
  for (const auto& c : candidates) {
    struct stat st;
    if (::stat(c.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(c.c_str(), X_OK) == 0) {
      return fs::path(c).lexically_normal().string();
    }
  }
  return Status::NotFound("cannot find " + name + ": looked beside cairnctl (" + exe_dir +
                          "), in " + exe_dir + "/../" + build_subdir + " and on $PATH");
}

StatusOr<std::string> FindBinary(const std::string& name, const std::string& build_subdir) {
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  const char* path = std::getenv("PATH");
  return FindBinaryIn(ec ? std::string() : exe.parent_path().string(), name, build_subdir,
                      path != nullptr ? path : "");
}

bool ProcessMatches(pid_t pid, const std::string& binary, const std::string& marker) {
  if (pid <= 0) return false;
  auto args = ProcessCmdline(pid);
  if (args.empty() || BaseName(args[0]) != BaseName(binary)) return false;
  return std::find(args.begin() + 1, args.end(), marker) != args.end();
}

Status CheckPortFree(const std::string& host, int port, const std::string& hint) {
  if (port == 0) return Status::Ok();
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Errno(errno, "socket");
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (::inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
    ::close(fd);
    return Status::InvalidArgument("bad IPv4 address " + host);
  }
  int rc = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  int err = errno;
  ::close(fd);
  if (rc == 0) return Status::Ok();
  const std::string where = host + ":" + std::to_string(port);
  if (err == EADDRINUSE) {
    return Status::FailedPrecondition(where + " is already in use (another Cairn cluster or " +
                                      "program listens there); " + hint);
  }
  return Errno(err, "cannot bind " + where);
}

StatusOr<int64_t> DefaultDeviceSizeGib(const std::string& dir, int nodes) {
  struct statvfs st;
  if (::statvfs(dir.c_str(), &st) != 0) return Errno(errno, "statvfs " + dir);
  const uint64_t free_bytes = static_cast<uint64_t>(st.f_bavail) * st.f_frsize;
  int64_t gib = static_cast<int64_t>(free_bytes / static_cast<uint64_t>(std::max(nodes, 1)) >> 30);
  return std::clamp<int64_t>(gib, 1, kMaxDefaultDeviceGib);
}

std::string TailFile(const std::string& path, size_t lines) {
  auto text = ReadFile(path);
  if (!text.ok()) return "";
  std::string t = *text;
  while (!t.empty() && t.back() == '\n') t.pop_back();
  size_t pos = t.size();
  for (size_t n = 0; n < lines && pos > 0; ++n) {
    pos = t.rfind('\n', pos - 1);
    if (pos == std::string::npos) {
      pos = 0;
      break;
    }
  }
  std::string tail = pos == 0 ? t : t.substr(pos + 1);
  return tail.empty() ? "" : tail + "\n";
}

std::string LocalServerUrl(const std::string& dir) {
  auto st = LoadClusterState(dir);
  if (!st.ok() || !st->has_value()) return "";
  return (*st)->server;
}

Status RecordLocalMount(const std::string& dir, const std::string& mountpoint,
                        const std::string& volume) {
  CAIRN_ASSIGN_OR_RETURN(auto lock, DirLock::Take(dir));
  CAIRN_ASSIGN_OR_RETURN(auto st, LoadClusterState(dir));
  if (!st.has_value()) return Status::Ok();
  json kept = json::array();
  for (const auto& m : st->mounts) {
    if (m.value("path", "") != mountpoint) kept.push_back(m);
  }
  kept.push_back({{"path", mountpoint}, {"volume", volume}});
  st->mounts = kept;
  return SaveClusterState(dir, *st);
}

Status ForgetLocalMount(const std::string& dir, const std::string& mountpoint) {
  CAIRN_ASSIGN_OR_RETURN(auto lock, DirLock::Take(dir));
  CAIRN_ASSIGN_OR_RETURN(auto st, LoadClusterState(dir));
  if (!st.has_value()) return Status::Ok();
  json kept = json::array();
  for (const auto& m : st->mounts) {
    if (m.value("path", "") != mountpoint) kept.push_back(m);
  }
  st->mounts = kept;
  return SaveClusterState(dir, *st);
}

// ---------------------------------------------------------------------------
// local up

namespace {

// Waits until every node is registered with its current address.
Status WaitRegistered(const std::string& url, const std::string& admin_key,
                      const std::vector<Proc>& nodes, std::chrono::milliseconds timeout) {
  RestOptions ro;
  ro.connect_timeout = std::chrono::milliseconds(2000);
  ro.read_timeout = std::chrono::milliseconds(10000);
  RestClient api(url, "admin", admin_key, ro);
  const auto deadline = Clock::now() + timeout;
  std::string last_problem;
  for (;;) {
    std::map<std::string, std::string> want;  // name -> normalized manage
    for (const auto& n : nodes) want[n.name] = NormalizeManageHost(n.address);
    auto list = api.Get("/nodes");
    if (list.ok() && list->is_object() && list->contains("nodes")) {
      for (const auto& id : (*list)["nodes"]) {
        if (!id.is_string()) continue;
        auto info = api.Get("/nodes/" + id.get<std::string>());
        if (!info.ok() || !info->is_object()) continue;
        auto it = want.find(info->value("name", ""));
        if (it == want.end()) continue;
        const json& hn = info->value("hostnames", json::object());
        bool same = false;
        if (hn.contains("manage") && hn["manage"].is_array()) {
          for (const auto& h : hn["manage"]) {
            if (h.is_string() && NormalizeManageHost(h.get<std::string>()) == it->second) {
              same = true;
            }
          }
        }
        if (same) want.erase(it);
      }
      if (want.empty()) return Status::Ok();
      last_problem = "not registered yet:";
      for (const auto& [name, addr] : want) last_problem += " " + name + " (" + addr + ")";
    } else {
      last_problem = list.ok() ? "GET /nodes answered " + list->dump()
                               : "GET /nodes: " + list.status().message();
    }
    if (Clock::now() > deadline) {
      std::string msg = "the nodes did not all register with the provisioner within " +
                        std::to_string(timeout.count() / 1000) + " s; " + last_problem;
      for (const auto& n : nodes) {
        if (last_problem.find(n.name + " ") != std::string::npos) {
          msg = WithLogTail(msg, n.log);
          break;
        }
      }
      return Status::DeadlineExceeded(msg);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

void PrintSummary(std::ostream& out, const std::string& dir, const ClusterState& st,
                  const LocalConfig& cfg, const std::string& context_path, bool already) {
  out << (already ? "The local Cairn cluster in " + dir + " is already up.\n"
                  : "Local Cairn cluster up in " + dir + " (" + std::to_string(cfg.nodes) +
                        " nodes).\n");
  for (const auto& p : st.procs) {
    if (p.name == "provisioner") {
      out << "  provisioner  " << st.server << "  (pid " << p.pid << ")\n";
    }
  }
  for (const auto& p : st.procs) {
    if (p.name == kCsiName) {
      out << "  csi          cairn-csi " << p.address << "  (pid " << p.pid << ")\n";
    }
  }
  for (const auto& p : st.procs) {
    if (p.name == "provisioner" || p.name == kCsiName) continue;
    out << "  " << p.name << std::string(p.name.size() < 11 ? 11 - p.name.size() : 1, ' ')
        << "  storaged " << p.address << "  (pid " << p.pid << "), device " << p.state_dir
        << "/device (" << cfg.device_size_gib << " GiB)\n";
  }
  out << "  logs         " << dir << "/logs\n";
  out << "  context      " << context_path << " (server, admin key, data token)\n";
  out << "Next:\n"
      << "  cairnctl node list\n"
      << "  cairnctl volume create --name vol1 --size 1\n"
      << "  mkdir -p /mnt/vol1 && cairnctl volume mount vol1 /mnt/vol1\n"
      << "  cairnctl volume list\n"
      << "  cairnctl local down" << (dir == AbsolutePath("~/.cairn/local") ? "" : " --dir " + dir)
      << "   (add --purge to delete everything)\n";
}

}  // namespace

Status LocalUp(const LocalUpOptions& o, std::ostream& out) {
  const std::string dir = o.dir;
  if (dir.empty() || dir[0] != '/') return Status::InvalidArgument("--dir must be absolute");
  if (!UsableDir(dir)) {
    return Status::InvalidArgument(dir +
                                   " exists and is not a cairnctl local cluster directory (no " +
                                   kLocalFile + "); pass --dir with a new or empty directory");
  }
  CAIRN_RETURN_IF_ERROR(MakeDirs(dir, 0700));
  CAIRN_ASSIGN_OR_RETURN(auto lock, DirLock::Take(dir));

  // What to run: as recorded, unless the flags say otherwise.
  CAIRN_ASSIGN_OR_RETURN(auto recorded, LoadLocalConfig(dir));
  LocalConfig cfg;
  if (recorded.has_value()) {
    cfg = *recorded;
    if (o.nodes.has_value() && *o.nodes != cfg.nodes) {
      return Status::InvalidArgument(dir + " holds a cluster of " + std::to_string(cfg.nodes) +
                                     " nodes, not " + std::to_string(*o.nodes) +
                                     " (`cairnctl local down --purge` starts over)");
    }
    if (o.device_size_gib.has_value() && *o.device_size_gib != cfg.device_size_gib) {
      return Status::InvalidArgument(
          dir + " holds devices of " + std::to_string(cfg.device_size_gib) + " GiB, not " +
          std::to_string(*o.device_size_gib) + " (`cairnctl local down --purge` starts over)");
    }
  } else {
    cfg.nodes = o.nodes.value_or(kDefaultNodes);
    if (o.device_size_gib.has_value()) {
      cfg.device_size_gib = *o.device_size_gib;
    } else {
      CAIRN_ASSIGN_OR_RETURN(cfg.device_size_gib, DefaultDeviceSizeGib(dir, cfg.nodes));
    }
  }
  if (o.port.has_value()) cfg.port = *o.port;
  if (o.storaged_port.has_value()) cfg.storaged_port = *o.storaged_port;
  if (cfg.nodes < 1 || cfg.nodes > kMaxNodes) {
    return Status::InvalidArgument("--nodes must be 1 to " + std::to_string(kMaxNodes));
  }
  if (cfg.device_size_gib < 1) return Status::InvalidArgument("--device-size must be at least 1");
  if (cfg.port < 0 || cfg.port > 65535) return Status::InvalidArgument("--port must be 0-65535");
  if (cfg.storaged_port < 0 || cfg.storaged_port > 65533) {
    return Status::InvalidArgument("--storaged-port must be 0-65533");
  }

  Context ctx;
  ctx.user = "admin";
  ctx.key_file = dir + "/admin.key";
  ctx.data_token_file = dir + "/data.token";
  ctx.local_dir = dir;

  // What runs already.
  CAIRN_ASSIGN_OR_RETURN(auto loaded, LoadClusterState(dir));
  ClusterState st = loaded.has_value() ? std::move(*loaded) : ClusterState();
  std::vector<std::string> names = {"provisioner"};
  for (int i = 0; i < cfg.nodes; ++i) names.push_back("node-" + std::to_string(i));
  // The CSI driver (both roles) on DIR/csi.sock, when this build has it.
  auto csi_bin = FindBinary("cairn-csi", "csi");
  if (csi_bin.ok()) names.push_back(kCsiName);
  std::set<std::string> running;
  for (const auto& name : names) {
    if (Proc* p = st.Find(name); p != nullptr && p->Running()) running.insert(name);
  }
  if (running.size() == names.size()) {
    ctx.server = st.server;
    CAIRN_RETURN_IF_ERROR(WriteContext(o.context_path, ctx));
    PrintSummary(out, dir, st, cfg, o.context_path, /*already=*/true);
    return Status::Ok();
  }

  // Everything to start must find its ports free.
  {
    std::vector<PortUse> ports;
    if (running.count("provisioner") == 0) {
      ports.push_back({"127.0.0.1", cfg.port, "the provisioner (--port)"});
    }
    for (int i = 0; i < cfg.nodes; ++i) {
      if (running.count(names[static_cast<size_t>(i) + 1]) != 0) continue;
      ports.push_back({NodeHost(i), cfg.storaged_port, "storaged of node-" + std::to_string(i)});
      if (cfg.storaged_port != 0) {
        ports.push_back(
            {NodeHost(i), cfg.storaged_port + 2, "brickd of node-" + std::to_string(i)});
      }
    }
    for (const auto& p : ports) {
      CAIRN_RETURN_IF_ERROR(CheckPortFree(
          p.host, p.port,
          "needed by " + p.what +
              ". Stop what uses it (`cairnctl local down` for another local cluster), or pick " +
              "other ports (--port, --storaged-port; 0 = any)"));
    }
  }

  // Secrets (kept across restarts).
  CAIRN_ASSIGN_OR_RETURN(std::string admin_key, EnsureSecret(dir + "/admin.key"));
  CAIRN_RETURN_IF_ERROR(EnsureSecret(dir + "/user.key").status());
  CAIRN_RETURN_IF_ERROR(EnsureSecret(dir + "/join.key").status());
  CAIRN_ASSIGN_OR_RETURN(std::string node_token, EnsureSecret(dir + "/node.token"));
  CAIRN_ASSIGN_OR_RETURN(std::string data_token, EnsureSecret(dir + "/data.token"));
  if (data_token == node_token) {
    ::unlink((dir + "/data.token").c_str());
    CAIRN_ASSIGN_OR_RETURN(data_token, EnsureSecret(dir + "/data.token"));
  }
  CAIRN_RETURN_IF_ERROR(SaveLocalConfig(dir, cfg));
  CAIRN_RETURN_IF_ERROR(MakeDirs(dir + "/logs", 0755));
  for (int i = 0; i < cfg.nodes; ++i) {
    CAIRN_RETURN_IF_ERROR(MakeDirs(dir + "/node-" + std::to_string(i) + "/device", 0755));
  }

  CAIRN_ASSIGN_OR_RETURN(std::string provisioner_bin,
                         FindBinary("cairn-provisioner", "provisioner"));
  CAIRN_ASSIGN_OR_RETURN(std::string storaged_bin, FindBinary("storaged", "storaged"));
  auto brickd_bin = FindBinary("brickd", "brickd");  // else storaged finds its own

  std::vector<Proc> started;
  auto fail = [&](const Status& why) -> Status {
    for (const auto& line : StopProcs(started, o.stop_timeout)) out << line << "\n";
    for (const auto& p : started) st.Remove(p.name);
    // A first start that failed leaves no settings behind: the next try may differ.
    if (!recorded.has_value()) ::unlink((dir + "/" + kLocalFile).c_str());
    if (st.procs.empty()) {
      ::unlink((dir + "/" + kClusterFile).c_str());
    } else {
      (void)SaveClusterState(dir, st);
    }
    return why;
  };

  // The provisioner.
  if (running.count("provisioner") == 0) {
    Proc p;
    p.name = "provisioner";
    p.binary = provisioner_bin;
    p.marker = "--db=" + dir + "/provisioner.db";
    p.log = dir + "/logs/provisioner.log";
    const std::string ready = dir + "/provisioner.ready";
    ::unlink(ready.c_str());
    const int port = PortFor(cfg, p.name, "127.0.0.1", cfg.port);
    std::vector<std::string> args = {provisioner_bin,
                                     "--listen=127.0.0.1:" + std::to_string(port),
                                     p.marker,
                                     "--admin-key-file=" + dir + "/admin.key",
                                     "--user-key-file=" + dir + "/user.key",
                                     "--join-key-file=" + dir + "/join.key",
                                     "--node-token-file=" + dir + "/node.token",
                                     "--ready-file=" + ready};
    auto pid = SpawnDaemon(args, p.log);
    if (!pid.ok()) return fail(pid.status());
    p.pid = *pid;
    p.address = "127.0.0.1:" + std::to_string(port);
    started.push_back(p);
    st.Put(p);
    if (Status s = SaveClusterState(dir, st); !s.ok()) return fail(s);
    auto r = WaitReady(p, ready, o.ready_timeout);
    if (!r.ok()) return fail(r.status());
    p.address = r->value("listen", p.address);
    st.server = r->value("url", "http://" + p.address);
    st.Put(p);
    started.back() = p;
    if (Status s = SaveClusterState(dir, st); !s.ok()) return fail(s);
  }
  if (st.server.empty()) return fail(Status::Internal("no provisioner URL recorded in " + dir));

  // The nodes: all started, then each awaited.
  std::vector<std::pair<Proc, std::string>> waiting;  // proc, ready file
  for (int i = 0; i < cfg.nodes; ++i) {
    const std::string name = "node-" + std::to_string(i);
    if (running.count(name) != 0) continue;
    const std::string state_dir = dir + "/" + name;
    const std::string host = NodeHost(i);
    Proc p;
    p.name = name;
    p.binary = storaged_bin;
    p.state_dir = state_dir;
    p.marker = "--state-dir=" + state_dir;
    p.log = dir + "/logs/" + name + ".log";
    p.address = host + ":" + std::to_string(PortFor(cfg, name, host, cfg.storaged_port));
    const std::string ready = state_dir + "/ready.json";
    ::unlink(ready.c_str());
    std::vector<std::string> args = {
        storaged_bin,
        "--listen=" + p.address,
        p.marker,
        "--node-name=" + name,
        "--token-file=" + dir + "/data.token",
        "--admin-token-file=" + dir + "/node.token",
        "--provisioner=" + st.server,
        "--join-key-file=" + dir + "/join.key",
        "--zone=" + std::to_string(i + 1),
        "--device=dev=" + state_dir + "/device:" + std::to_string(cfg.device_size_gib),
        "--ready-file=" + ready,
        "--brickd-listen=" + host + ":" +
            std::to_string(cfg.storaged_port == 0 ? 0 : cfg.storaged_port + 2)};
    if (brickd_bin.ok()) args.push_back("--brickd=" + *brickd_bin);
    auto pid = SpawnDaemon(args, p.log);
    if (!pid.ok()) return fail(pid.status());
    p.pid = *pid;
    started.push_back(p);
    st.Put(p);
    waiting.emplace_back(p, ready);
  }
  if (Status s = SaveClusterState(dir, st); !s.ok()) return fail(s);
  for (auto& [p, ready] : waiting) {
    auto r = WaitReady(p, ready, o.ready_timeout);
    if (!r.ok()) return fail(r.status());
    p.address = r->value("listen", p.address);
    st.Put(p);
  }
  if (Status s = SaveClusterState(dir, st); !s.ok()) return fail(s);

  std::vector<Proc> nodes;
  for (const auto& p : st.procs) {
    if (p.name != "provisioner" && p.name != kCsiName) nodes.push_back(p);
  }
  if (Status s = WaitRegistered(st.server, admin_key, nodes, o.register_timeout); !s.ok()) {
    return fail(s);
  }
  if (csi_bin.ok() && running.count(kCsiName) == 0) {
    Proc p;
    p.name = kCsiName;
    p.binary = *csi_bin;
    p.marker = "--state-dir=" + dir + "/csi";
    p.log = dir + "/logs/cairn-csi.log";
    const std::string socket = dir + "/csi.sock";
    p.address = "unix://" + socket;
    ::unlink(socket.c_str());
    std::vector<std::string> args = {*csi_bin,
                                     "--endpoint=" + p.address,
                                     "--role=both",
                                     "--node-id=local",
                                     p.marker,
                                     "--provisioner=" + st.server,
                                     "--provisioner-user=admin",
                                     "--provisioner-key-file=" + dir + "/admin.key",
                                     "--data-token-file=" + dir + "/data.token"};
    auto pid = SpawnDaemon(args, p.log);
    if (!pid.ok()) return fail(pid.status());
    p.pid = *pid;
    started.push_back(p);
    st.Put(p);
    if (Status s = SaveClusterState(dir, st); !s.ok()) return fail(s);
    const auto deadline = std::chrono::steady_clock::now() + o.ready_timeout;
    while (::access(socket.c_str(), F_OK) != 0) {
      if (!p.Running() || std::chrono::steady_clock::now() > deadline) {
        return fail(Status::Internal(
            WithLogTail("cairn-csi did not open " + socket + " (log " + p.log + ")", p.log)));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  for (const auto& p : st.procs) {
    if (int port = PortOf(p.address); port > 0) cfg.last_ports[p.name] = port;
  }
  if (Status s = SaveLocalConfig(dir, cfg); !s.ok()) return fail(s);
  ctx.server = st.server;
  if (Status s = WriteContext(o.context_path, ctx); !s.ok()) return fail(s);
  PrintSummary(out, dir, st, cfg, o.context_path, /*already=*/false);
  return Status::Ok();
}

// ---------------------------------------------------------------------------
// local down

Status LocalDown(const LocalDownOptions& o, std::ostream& out) {
  const std::string dir = o.dir;
  if (dir.empty() || dir[0] != '/') return Status::InvalidArgument("--dir must be absolute");
  std::error_code ec;
  if (!fs::exists(dir, ec)) {
    out << "nothing to do: " << dir << " does not exist\n";
    return Status::Ok();
  }
  if (!UsableDir(dir) || fs::is_empty(dir, ec)) {
    if (fs::is_empty(dir, ec) && o.purge) {
      ::rmdir(dir.c_str());
      out << "removed " << dir << "\n";
      return Status::Ok();
    }
    return Status::InvalidArgument(dir + " is not a cairnctl local cluster directory (no " +
                                   kLocalFile + ")");
  }
  std::string problems;
  {
    CAIRN_ASSIGN_OR_RETURN(auto lock, DirLock::Take(dir));
    CAIRN_ASSIGN_OR_RETURN(auto loaded, LoadClusterState(dir));
    if (!loaded.has_value()) {
      out << "no processes recorded in " << dir << " (already down)\n";
    } else {
      ClusterState& st = *loaded;
      for (const auto& m : st.mounts) {
        const std::string line = Unmount(m.value("path", ""));
        out << line << "\n";
        if (line.rfind("could not", 0) == 0) problems += line + "; ";
      }
      // What the CSI driver mounted (staging and published paths under DIR).
      for (const auto& path : MountPointsUnder(dir)) {
        const std::string line = Unmount(path);
        out << line << "\n";
        if (line.rfind("could not", 0) == 0) problems += line + "; ";
      }
      // The provisioner and the CSI driver first (they stop calling the nodes), then the nodes.
      std::vector<Proc> first, rest;
      for (const auto& p : st.procs) {
        (p.name == "provisioner" || p.name == kCsiName ? first : rest).push_back(p);
      }
      for (const auto& line : StopProcs(first, o.stop_timeout)) out << line << "\n";
      for (const auto& line : StopProcs(rest, o.stop_timeout)) out << line << "\n";
      for (const auto& p : st.procs) {
        if (p.Running()) problems += p.name + " (pid " + std::to_string(p.pid) + ") still runs; ";
      }
      if (problems.empty()) {
        ::unlink((dir + "/" + kClusterFile).c_str());
      }
    }
  }
  if (!problems.empty()) {
    return Status::Internal("local down " + dir + ": " + problems + "(nothing removed)");
  }
  if (!o.purge) {
    out << "local cluster in " << dir << " is down (keys and data kept; `cairnctl local up"
        << " --dir " << dir << "` restarts it)\n";
    return Status::Ok();
  }
  CAIRN_RETURN_IF_ERROR(RemoveTree(dir));
  out << "removed " << dir << "\n";
  // A context pointing at the removed cluster has nothing left to use.
  if (!o.context_path.empty()) {
    auto text = ReadFile(o.context_path);
    if (text.ok()) {
      auto c = ParseContext(*text, o.context_path);
      if (c.ok() && !c->local_dir.empty() && AbsolutePath(c->local_dir) == dir) {
        ::unlink(o.context_path.c_str());
        out << "removed context " << o.context_path << "\n";
      }
    }
  }
  return Status::Ok();
}

}  // namespace cairn::ctl
