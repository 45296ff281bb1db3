// Test helpers: temporary directories, a brickd child process, a gRPC client.
#include "tests/test_util.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "common/file_util.h"
#include "common/id.h"
#include "common/status_errno.h"

#ifndef CAIRN_BRICKD_PATH
#define CAIRN_BRICKD_PATH "brickd"
#endif

namespace cairn::test {
namespace {

using Clock = std::chrono::steady_clock;

Status ErrnoStatus(std::string_view what) { return StatusFromErrno(errno, what); }

// The last `max_bytes` of a log, for failure messages.
std::string Tail(const std::string& text, size_t max_bytes = 4000) {
  if (text.size() <= max_bytes) return text;
  return "...\n" + text.substr(text.size() - max_bytes);
}

}  // namespace

// ---------------------------------------------------------------------------
// Files.

TempDir::TempDir(std::string_view prefix) {
  std::string tmpl = "/tmp/" + std::string(prefix) + "-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) {
    ADD_FAILURE() << "mkdtemp " << tmpl << ": " << std::strerror(errno);
    return;
  }
  path_ = tmpl;
}

TempDir::~TempDir() {
  if (path_.empty()) return;
  if (Status s = RemoveTree(path_); !s.ok()) {
    ADD_FAILURE() << "remove " << path_ << ": " << s.ToString();
  }
}

std::string TempDir::Sub(std::string_view name) const { return path_ + "/" + std::string(name); }

std::string TempDir::MakeSubdir(std::string_view name) const {
  std::string path = Sub(name);
  for (size_t i = path_.size() + 1; i <= path.size(); ++i) {
    if (i == path.size() || path[i] == '/') {
      std::string part = path.substr(0, i);
      if (::mkdir(part.c_str(), 0755) != 0 && errno != EEXIST) {
        ADD_FAILURE() << "mkdir " << part << ": " << std::strerror(errno);
      }
    }
  }
  return path;
}

Status RemoveTree(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) {
    return errno == ENOENT ? Status::Ok() : ErrnoStatus("lstat " + path);
  }
  if (!S_ISDIR(st.st_mode)) {
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) return ErrnoStatus("unlink " + path);
    return Status::Ok();
  }
  // Without write and search permission a non-root owner could not empty it.
  if ((st.st_mode & 0700) != 0700) ::chmod(path.c_str(), (st.st_mode & 07777) | 0700);
  std::vector<std::string> names;
  if (DIR* d = ::opendir(path.c_str())) {
    while (struct dirent* e = ::readdir(d)) {
      std::string_view n(e->d_name);
      if (n != "." && n != "..") names.emplace_back(n);
    }
    ::closedir(d);
  } else {
    return ErrnoStatus("opendir " + path);
  }
  Status first;
  for (const auto& n : names) {
    Status s = RemoveTree(path + "/" + n);
    if (!s.ok() && first.ok()) first = s;
  }
  if (::rmdir(path.c_str()) != 0 && errno != ENOENT && first.ok()) {
    first = ErrnoStatus("rmdir " + path);
  }
  return first;
}

std::string ReadFileOrEmpty(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// ---------------------------------------------------------------------------
// BrickdProcess.

std::string DescribeWaitStatus(int wait_status) {
  if (WIFEXITED(wait_status)) return "exited with " + std::to_string(WEXITSTATUS(wait_status));
  if (WIFSIGNALED(wait_status)) {
    return "killed by signal " + std::to_string(WTERMSIG(wait_status)) + " (" +
           ::strsignal(WTERMSIG(wait_status)) + ")";
  }
  return "wait status " + std::to_string(wait_status);
}

BrickdProcess::BrickdProcess(BrickdOptions options) : options_(std::move(options)) {
  if (options_.binary.empty()) {
    const char* env = ::getenv("CAIRN_BRICKD");
    options_.binary = env != nullptr && *env != '\0' ? env : CAIRN_BRICKD_PATH;
  }
  data_token_ = options_.data_token.empty() ? RandomHexToken() : options_.data_token;
  admin_token_ = options_.admin_token.empty() ? RandomHexToken() : options_.admin_token;
}

StatusOr<std::unique_ptr<BrickdProcess>> BrickdProcess::Start(BrickdOptions options) {
  std::unique_ptr<BrickdProcess> p(new BrickdProcess(std::move(options)));
  if (p->dir().empty()) return Status::Internal("no temporary directory for brickd");
  CAIRN_RETURN_IF_ERROR(WriteFileAtomic(p->dir_.Sub("data.token"), p->data_token_ + "\n", 0600));
  CAIRN_RETURN_IF_ERROR(WriteFileAtomic(p->dir_.Sub("admin.token"), p->admin_token_ + "\n", 0600));
  CAIRN_RETURN_IF_ERROR(p->Spawn(p->options_.port));
  CAIRN_RETURN_IF_ERROR(p->WaitReady(p->options_.ready_timeout));
  return p;
}

BrickdProcess::~BrickdProcess() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
  }
}

std::string BrickdProcess::address() const {
  return options_.host + ":" + std::to_string(grpc_port_);
}

Status BrickdProcess::Spawn(int port) {
  std::vector<std::string> args = {
      options_.binary,
      "--listen=" + options_.host + ":" + std::to_string(port),
      "--token-file=" + dir_.Sub("data.token"),
      "--admin-token-file=" + dir_.Sub("admin.token"),
      "--ready-file=" + dir_.Sub("ready.json"),
      "--metrics-listen=" + (options_.metrics ? options_.host + ":0" : std::string()),
      "--log-level=" + options_.log_level,
  };
  if (options_.state_file) args.push_back("--state-file=" + state_file());
  if (options_.threads > 0) args.push_back("--threads=" + std::to_string(options_.threads));
  for (const auto& a : options_.extra_args) args.push_back(a);

  if (::unlink(dir_.Sub("ready.json").c_str()) != 0 && errno != ENOENT) {
    return ErrnoStatus("remove old ready file");
  }
  int log_fd = ::open(log_file().c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) return ErrnoStatus("open " + log_file());
  std::string banner = "=== test: starting " + args[0] + " on " + options_.host + ":" +
                       std::to_string(port) + " ===\n";
  (void)!::write(log_fd, banner.data(), banner.size());
  // Die with the test (even if it crashes) so no brickd outlives it.
  auto pid = SpawnChild(args, log_fd, SIGKILL);
  if (!pid.ok()) {
    ::close(log_fd);
    return pid.status();
  }
  ::close(log_fd);
  pid_ = *pid;
  grpc_port_ = 0;
  metrics_port_ = 0;
  return Status::Ok();
}

Status BrickdProcess::WaitReady(std::chrono::milliseconds timeout) {
  const std::string ready = dir_.Sub("ready.json");
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    if (!Running()) {
      return Status::Internal("brickd exited before it was ready (" +
                              DescribeWaitStatus(exit_status_) + "); its log:\n" + Tail(Log()));
    }
    if (::access(ready.c_str(), F_OK) == 0) {
      // The ready file is written atomically (rename): present means complete.
      auto j = nlohmann::json::parse(ReadFileOrEmpty(ready), nullptr, false);
      if (j.is_discarded() || !j.is_object()) {
        return Status::Internal("ready file " + ready + " is not JSON");
      }
      if (j.value("pid", -1) != pid_) {
        return Status::Internal("ready file names pid " + std::to_string(j.value("pid", -1)) +
                                ", the child is " + std::to_string(pid_));
      }
      grpc_port_ = j.value("grpc_port", 0);
      metrics_port_ = j.value("metrics_port", 0);
      if (grpc_port_ <= 0) return Status::Internal("ready file has no grpc_port: " + j.dump());
      return Status::Ok();
    }
    if (Clock::now() > deadline) {
      return Status::DeadlineExceeded("brickd not ready within " + std::to_string(timeout.count()) +
                                      " ms; its log:\n" + Tail(Log()));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

bool BrickdProcess::Running() {
  if (pid_ <= 0) return false;
  int status = 0;
  pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    pid_ = -1;
    exit_status_ = status;
    return false;
  }
  return true;
}

StatusOr<int> BrickdProcess::Wait(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return Status::FailedPrecondition("brickd is not running");
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    int status = 0;
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      pid_ = -1;
      exit_status_ = status;
      return status;
    }
    if (r < 0 && errno != EINTR) return ErrnoStatus("waitpid");
    if (Clock::now() > deadline) {
      return Status::DeadlineExceeded("brickd (pid " + std::to_string(pid_) +
                                      ") still running after " + std::to_string(timeout.count()) +
                                      " ms");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

StatusOr<int> BrickdProcess::Kill(int sig, std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return Status::FailedPrecondition("brickd is not running");
  if (::kill(pid_, sig) != 0) return ErrnoStatus("kill");
  return Wait(timeout);
}

Status BrickdProcess::Restart() {
  if (pid_ > 0) {
    auto killed = Kill(SIGKILL);
    if (!killed.ok()) return killed.status();
  }
  const int old_port = grpc_port_;
  CAIRN_RETURN_IF_ERROR(Spawn(old_port));
  Status s = WaitReady(options_.ready_timeout);
  if (s.ok() || old_port == 0 || Running()) return s;
  // The old port was taken meanwhile: any free port will do.
  CAIRN_RETURN_IF_ERROR(Spawn(0));
  return WaitReady(options_.ready_timeout);
}

// ---------------------------------------------------------------------------
// BrickdClient.

std::shared_ptr<grpc::Channel> BrickdClient::NewChannel(const std::string& address) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(kClientMaxMessageBytes);
  args.SetMaxSendMessageSize(kClientMaxMessageBytes);
  // gRPC shares connections among channels with equal arguments by default.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
}

BrickdClient::BrickdClient(const std::string& address)
    : address_(address),
      channel_(NewChannel(address)),
      brick_(pb::Brick::NewStub(channel_)),
      admin_(pb::BrickAdmin::NewStub(channel_)) {}

// ---------------------------------------------------------------------------
// Assertions.

::testing::AssertionResult IsOk(const Status& status) {
  if (status.ok()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << status.ToString();
}

::testing::AssertionResult HasStatus(const Status& status, StatusCode code, int posix_errno) {
  bool errno_ok = posix_errno < 0 || status.posix_errno() == posix_errno;
  if (status.code() == code && errno_ok) return ::testing::AssertionSuccess();
  auto failure = ::testing::AssertionFailure();
  failure << "want " << StatusCodeName(code);
  if (posix_errno >= 0) failure << " [" << ErrnoName(posix_errno) << "]";
  failure << ", got " << (status.ok() ? std::string("OK") : status.ToString());
  if (!status.ok()) failure << " (errno " << ErrnoName(status.posix_errno()) << ")";
  return failure;
}

// ---------------------------------------------------------------------------
// /proc.

int ThreadCount(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("Threads:", 0) == 0) return std::atoi(line.c_str() + 8);
  }
  return -1;
}

std::vector<int> ListeningTcpPorts(pid_t pid) {
  // Socket inodes the process holds.
  std::set<std::string> inodes;
  std::string fd_dir = "/proc/" + std::to_string(pid) + "/fd";
  if (DIR* d = ::opendir(fd_dir.c_str())) {
    while (struct dirent* e = ::readdir(d)) {
      char target[256];
      std::string link = fd_dir + "/" + e->d_name;
      ssize_t n = ::readlink(link.c_str(), target, sizeof(target) - 1);
      if (n <= 0) continue;
      std::string_view t(target, static_cast<size_t>(n));
      if (t.rfind("socket:[", 0) == 0 && t.back() == ']') {
        inodes.emplace(t.substr(8, t.size() - 9));
      }
    }
    ::closedir(d);
  }
  std::vector<int> ports;
  for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    std::ifstream in(table);
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
      // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
      std::istringstream fields(line);
      std::string sl, local, remote, state, queues, timer, retr, uid, timeout, inode;
      fields >> sl >> local >> remote >> state >> queues >> timer >> retr >> uid >> timeout >>
          inode;
      if (state != "0A" || inodes.count(inode) == 0) continue;  // 0A: LISTEN
      auto colon = local.rfind(':');
      if (colon == std::string::npos) continue;
      ports.push_back(static_cast<int>(std::stoul(local.substr(colon + 1), nullptr, 16)));
    }
  }
  std::sort(ports.begin(), ports.end());
  return ports;
}

StatusOr<pid_t> SpawnChild(const std::vector<std::string>& args, int log_fd, int death_signal) {
  // Everything the child needs is prepared before fork: after it, only
  // async-signal-safe calls (the test process has other threads).
  std::vector<std::string> copy = args;
  std::vector<char*> argv;
  for (auto& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  const std::string program = args.empty() ? "" : args[0].substr(args[0].rfind('/') + 1);
  const std::string failed = "test: execv of " + program + " failed\n";
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) return StatusFromErrno(errno, "fork");
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, death_signal);
    if (::getppid() != parent) ::_exit(127);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::signal(SIGPIPE, SIG_DFL);
    int null_fd = ::open("/dev/null", O_RDONLY);
    if (null_fd < 0 || ::dup2(null_fd, 0) < 0 || ::dup2(log_fd, 1) < 0 || ::dup2(log_fd, 2) < 0) {
      ::_exit(126);
    }
    // No descriptor of the test process (sockets, files) leaks into the child.
    ::syscall(SYS_close_range, 3U, ~0U, 0U);
    ::execv(argv[0], argv.data());
    (void)!::write(2, failed.data(), failed.size());
    ::_exit(127);
  }
  return pid;
}

}  // namespace cairn::test
