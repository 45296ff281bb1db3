// Test helpers for real FUSE mounts.
#include "tests/mount_util.h"

#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "common/file_util.h"
#include "common/status_errno.h"

#ifndef CAIRN_MOUNT_PATH
#define CAIRN_MOUNT_PATH "cairn-mount"
#endif

namespace cairn::test {
namespace {

using Clock = std::chrono::steady_clock;

std::string Tail(const std::string& text, size_t max_bytes = 4000) {
  if (text.size() <= max_bytes) return text;
  return "...\n" + text.substr(text.size() - max_bytes);
}

// Formats seconds for a mount option ("1.5").
std::string Seconds(double s) {
  std::ostringstream out;
  out << s;
  return out.str();
}

// Polls waitpid(pid) until it exits or `timeout` passes. Returns true and its
// wait status if it exited.
bool WaitPid(pid_t pid, std::chrono::milliseconds timeout, int* status) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    pid_t r = ::waitpid(pid, status, WNOHANG);
    if (r == pid) return true;
    if (r < 0 && errno != EINTR) return false;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

}  // namespace

std::vector<VolumeLayout> StandardLayouts() {
  return {
      {"Replica3", {.nodes = 3, .subvolumes = 1, .replica = 3}},
      {"DistRep2x3", {.nodes = 3, .subvolumes = 2, .replica = 3}},
      {"Arbiter", {.nodes = 3, .subvolumes = 1, .replica = 3, .arbiter = 1}},
  };
}

std::string CairnMountBinary() {
  const char* env = ::getenv("CAIRN_MOUNT");
  return env != nullptr && *env != '\0' ? env : CAIRN_MOUNT_PATH;
}

// ---------------------------------------------------------------------------
// Mount table.

StatusOr<MountInfo> FindMount(const std::string& path) {
  CAIRN_ASSIGN_OR_RETURN(auto table, ReadMountTable());
  MountInfo found;
  for (const auto& m : table) {
    if (m.mount_point == path) found = {m.fs_type, m.source, m.options};  // the last is on top
  }
  return found;
}

// ---------------------------------------------------------------------------
// FuseMount.

StatusOr<std::unique_ptr<FuseMount>> FuseMount::Start(const TestCluster& cluster,
                                                      MountOptions options) {
  return Start(cluster.spec_path(), cluster.token_path(), cluster.dir(), std::move(options));
}

StatusOr<std::unique_ptr<FuseMount>> FuseMount::Start(
    const std::string& source, const std::string& token_path, const TempDir& dir,
    MountOptions options,
    const std::function<std::vector<std::string>(const std::vector<std::string>&)>& wrap) {
  static std::atomic<int> counter{0};
  const int n = counter++;
  std::unique_ptr<FuseMount> m(new FuseMount);
  std::string mountpoint =
      options.mountpoint.empty() ? dir.MakeSubdir("mnt" + std::to_string(n)) : options.mountpoint;
  char resolved[PATH_MAX];
  if (::realpath(mountpoint.c_str(), resolved) == nullptr) {
    return StatusFromErrno(errno, "mount point " + mountpoint);
  }
  m->path_ = resolved;
  m->log_file_ = dir.Sub("cairn-mount-" + std::to_string(n) + ".log");

  const std::string binary = options.binary.empty() ? CairnMountBinary() : options.binary;
  std::string opts = "token_file=" + token_path +
                     ",entry_timeout=" + Seconds(options.entry_timeout_s) +
                     ",attr_timeout=" + Seconds(options.attr_timeout_s) +
                     ",negative_timeout=" + Seconds(options.negative_timeout_s) +
                     ",log_level=" + options.log_level;
  for (const auto& o : options.extra_options) opts += "," + o;
  std::vector<std::string> args = {binary, "-f", "-o", opts, source, m->path_};
  if (wrap) args = wrap(args);

  int log_fd = ::open(m->log_file_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) return StatusFromErrno(errno, "open " + m->log_file_);
  // SIGTERM (not SIGKILL) if the test dies: cairn-mount then unmounts.
  auto pid = SpawnChild(args, log_fd, SIGTERM);
  if (!pid.ok()) {
    ::close(log_fd);
    return pid.status();
  }
  ::close(log_fd);
  m->pid_ = *pid;

  const auto deadline = Clock::now() + options.mount_timeout;
  for (;;) {
    int status = 0;
    if (m->Reap(&status)) {
      return Status::Internal("cairn-mount exited before the mount appeared (" +
                              DescribeWaitStatus(status) + "); its log:\n" + Tail(m->Log()));
    }
    if (m->Mounted()) return m;
    if (Clock::now() > deadline) {
      Status s = Status::DeadlineExceeded("mount at " + m->path_ + " did not appear within " +
                                          std::to_string(options.mount_timeout.count()) +
                                          " ms; log:\n" + Tail(m->Log()));
      (void)m->Unmount(std::chrono::seconds(5));
      return s;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

FuseMount::~FuseMount() {
  Status s = Unmount();
  if (!s.ok() && Mounted()) ADD_FAILURE() << "could not unmount " << path_ << ": " << s.ToString();
}

std::string FuseMount::Path(std::string_view rel) const {
  if (rel.empty()) return path_;
  return path_ + "/" + std::string(rel);
}

std::string FuseMount::Log() const { return ReadFileOrEmpty(log_file_); }

bool FuseMount::Mounted() const {
  auto info = FindMount(path_);
  return info.ok() && info->fstype == "fuse.cairn";
}

bool FuseMount::Reap(int* status) {
  if (pid_ <= 0) {
    *status = exit_status_;
    return true;
  }
  pid_t r = ::waitpid(pid_, status, WNOHANG);
  if (r == pid_) {
    pid_ = -1;
    exit_status_ = *status;
    return true;
  }
  return false;
}

StatusOr<int> FuseMount::Wait(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return exit_status_;
  int status = 0;
  if (WaitPid(pid_, timeout, &status)) {
    pid_ = -1;
    exit_status_ = status;
    return status;
  }
  return Status::DeadlineExceeded("cairn-mount (pid " + std::to_string(pid_) +
                                  ") still running after " + std::to_string(timeout.count()) +
                                  " ms");
}

Status FuseMount::Signal(int sig) {
  if (pid_ <= 0) return Status::FailedPrecondition("cairn-mount is not running");
  if (::kill(pid_, sig) != 0) return StatusFromErrno(errno, "kill");
  return Status::Ok();
}

Status FuseMount::Unmount(std::chrono::milliseconds timeout) {
  std::string problems;
  if (Mounted()) {
    auto r = RunCommand({"fusermount3", "-u", path_}, timeout);
    if (!r.ok()) {
      problems += "fusermount3 -u: " + r.status().ToString() + "; ";
    } else if (r->exit_code != 0) {
      problems += "fusermount3 -u failed: " + r->output + "; ";
    }
  }
  if (pid_ > 0) {
    // A clean unmount ends the FUSE loop: cairn-mount exits by itself.
    auto waited = Wait(problems.empty() ? timeout : std::chrono::milliseconds(0));
    if (!waited.ok()) {
      if (problems.empty()) problems += waited.status().message() + " after unmount; ";
      if (Mounted() && ::umount2(path_.c_str(), MNT_DETACH) != 0) {
        problems += std::string("umount -l: ") + std::strerror(errno) + "; ";
      }
      // SIGTERM first (it unmounts what is left); SIGKILL if that does not do.
      ::kill(pid_, SIGTERM);
      if (!Wait(std::chrono::seconds(5)).ok()) {
        problems += "cairn-mount ignored SIGTERM, killed; ";
        ::kill(pid_, SIGKILL);
        (void)Wait(std::chrono::seconds(10));
      }
    }
  }
  if (Mounted()) {
    if (::umount2(path_.c_str(), MNT_DETACH) != 0) {
      problems += std::string("umount -l: ") + std::strerror(errno) + "; ";
    } else {
      problems += "mount was left behind (detached); ";
    }
  }
  if (pid_ > 0) problems += "cairn-mount (pid " + std::to_string(pid_) + ") is still running; ";
  if (pid_ <= 0 && exit_status_ != -1 &&
      !(WIFEXITED(exit_status_) && WEXITSTATUS(exit_status_) == 0)) {
    problems += "cairn-mount " + DescribeWaitStatus(exit_status_) + "; ";
  }
  if (problems.empty()) return Status::Ok();
  return Status::Internal("unmount " + path_ + ": " + problems + "log:\n" + Tail(Log()));
}

// ---------------------------------------------------------------------------
// Processes.

StatusOr<CommandResult> RunCommand(const std::vector<std::string>& args,
                                   std::chrono::milliseconds timeout) {
  if (args.empty()) return Status::InvalidArgument("no command");
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return StatusFromErrno(errno, "pipe");
  std::vector<std::string> store = args;
  std::vector<char*> argv;
  for (auto& a : store) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    return StatusFromErrno(errno, "fork");
  }
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    int null_fd = ::open("/dev/null", O_RDONLY);
    if (null_fd < 0 || ::dup2(null_fd, 0) < 0 || ::dup2(fds[1], 1) < 0 || ::dup2(fds[1], 2) < 0) {
      ::_exit(126);
    }
    ::syscall(SYS_close_range, 3U, ~0U, 0U);
    ::execvp(argv[0], argv.data());
    const char msg[] = "test: exec failed\n";
    (void)!::write(2, msg, sizeof(msg) - 1);
    ::_exit(127);
  }
  ::close(fds[1]);
  CommandResult result;
  const auto deadline = Clock::now() + timeout;
  bool exited = false;
  bool killed = false;
  bool eof = false;
  while (!eof) {
    pollfd p{fds[0], POLLIN, 0};
    int r = ::poll(&p, 1, 50);
    if (r > 0) {
      char buf[4096];
      ssize_t n = ::read(fds[0], buf, sizeof(buf));
      if (n > 0) {
        result.output.append(buf, static_cast<size_t>(n));
        continue;
      }
      if (n == 0 || errno != EINTR) eof = true;
    }
    if (!exited && ::waitpid(pid, &result.wait_status, WNOHANG) == pid) exited = true;
    // A grandchild may keep the pipe open: stop reading soon after the child is gone.
    if (exited && r == 0) break;
    if (!exited && !killed && Clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      killed = true;
      result.output += "\n[test: killed after " + std::to_string(timeout.count()) + " ms]\n";
    }
  }
  ::close(fds[0]);
  if (!exited) {
    while (::waitpid(pid, &result.wait_status, 0) < 0 && errno == EINTR) {
    }
  }
  result.exit_code = WIFEXITED(result.wait_status) ? WEXITSTATUS(result.wait_status) : -1;
  return result;
}

StatusOr<int> RunAs(uid_t uid, gid_t gid, const std::function<int()>& fn,
                    const std::vector<gid_t>& groups, std::chrono::milliseconds timeout) {
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) return StatusFromErrno(errno, "fork");
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(125);
    if (::setgroups(groups.size(), groups.data()) != 0 || ::setgid(gid) != 0 ||
        ::setuid(uid) != 0) {
      ::_exit(124);
    }
    ::_exit(fn() & 0xff);
  }
  int status = 0;
  if (!WaitPid(pid, timeout, &status)) {
    ::kill(pid, SIGKILL);
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return Status::DeadlineExceeded("RunAs child did not finish within " +
                                    std::to_string(timeout.count()) + " ms");
  }
  if (!WIFEXITED(status)) return Status::Internal("RunAs child " + DescribeWaitStatus(status));
  if (WEXITSTATUS(status) == 124) {
    return Status::Internal("RunAs child could not switch to uid " + std::to_string(uid));
  }
  return WEXITSTATUS(status);
}

}  // namespace cairn::test
