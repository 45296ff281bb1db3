#include "csi/mounter.h"

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "common/file_util.h"

extern char** environ;

namespace cairn::csi {
namespace {

std::string Trim(std::string path) {
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  return path;
}

std::string Errstr(int err) { return std::strerror(err); }

}  // namespace

std::optional<MountEntry> FindMount(const std::string& path) { return TopMountAt(Trim(path)); }

const char* MountHealthName(MountHealth h) {
  switch (h) {
    case MountHealth::kMissing:
      return "missing";
    case MountHealth::kNotMounted:
      return "not-mounted";
    case MountHealth::kHealthy:
      return "healthy";
    case MountHealth::kBroken:
      return "broken";
  }
  return "?";
}

MountHealth Probe(const std::string& path, std::string* error) {
  struct stat st;
  if (::stat(path.c_str(), &st) == 0) {
    return FindMount(path) ? MountHealth::kHealthy : MountHealth::kNotMounted;
  }
  const int err = errno;
  if (error != nullptr) *error = "stat " + path + ": " + Errstr(err);
  if (err == ENOENT && !FindMount(path)) return MountHealth::kMissing;
  if (FindMount(path)) return MountHealth::kBroken;  // ENOTCONN, EIO, ...
  return err == ENOENT ? MountHealth::kMissing : MountHealth::kBroken;
}

Status RunCairnMount(const CairnMountRequest& r) {
  std::string joined;
  for (const std::string& o : r.options) {
    if (o.empty()) continue;
    if (!joined.empty()) joined += ",";
    joined += o;
  }
  std::vector<std::string> args = {r.binary};
  if (!joined.empty()) {
    args.push_back("-o");
    args.push_back(joined);
  }
  args.push_back(r.source);
  args.push_back(r.target);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  const std::string err_path = r.stderr_file.empty() ? "/dev/null" : r.stderr_file;
  posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, err_path.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  short flags = POSIX_SPAWN_SETSIGMASK;
  posix_spawnattr_setflags(&attr, flags);
  pid_t pid = -1;
  const int err = ::posix_spawn(&pid, r.binary.c_str(), &fa, &attr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (err != 0) return Status::FailedPrecondition("cannot run " + r.binary + ": " + Errstr(err));

  const auto deadline = std::chrono::steady_clock::now() + r.timeout;
  int status = 0;
  for (;;) {
    const pid_t w = ::waitpid(pid, &status, WNOHANG);
    if (w == pid) break;
    if (w < 0 && errno != EINTR) return Status::Internal("waitpid: " + Errstr(errno));
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      (void)Unmount(r.target);
      return Status::DeadlineExceeded("cairn-mount of " + r.source + " on " + r.target +
                                      " took longer than " +
                                      std::to_string(r.timeout.count() / 1000) + " s");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return Status::Ok();
  std::string message;
  if (!r.stderr_file.empty()) {
    auto text = ReadFile(r.stderr_file);
    if (text.ok()) message = *text;
  }
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
  if (message.size() > 2000) message = message.substr(message.size() - 2000);
  if (message.empty()) {
    message = WIFEXITED(status)
                  ? "cairn-mount exited with " + std::to_string(WEXITSTATUS(status))
                  : "cairn-mount killed by signal " + std::to_string(WTERMSIG(status));
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 2) return Status::InvalidArgument(message);
  return Status::Unavailable(message);
}

Status BindMount(const std::string& source, const std::string& target, bool read_only) {
  if (::mount(source.c_str(), target.c_str(), nullptr, MS_BIND, nullptr) != 0) {
    return Status::Internal("bind mount " + source + " on " + target + ": " + Errstr(errno));
  }
  unsigned long flags = MS_BIND | MS_REMOUNT | MS_NOSUID | MS_NODEV;
  if (read_only) flags |= MS_RDONLY;
  if (::mount(nullptr, target.c_str(), nullptr, flags, nullptr) != 0) {
    const int e = errno;
    ::umount2(target.c_str(), MNT_DETACH);
    return Status::Internal("remount " + target + (read_only ? " read-only" : "") + ": " +
                            Errstr(e));
  }
  return Status::Ok();
}

Status Unmount(const std::string& path_in) {
  const std::string path = Trim(path_in);
  for (int i = 0; i < 64 && FindMount(path); ++i) {
    if (::umount2(path.c_str(), 0) == 0) continue;
    const int e = errno;
    if (e == EINVAL && !FindMount(path)) break;
    // Busy (a pod still has files open) or broken (ENOTCONN): detach it.
    if (::umount2(path.c_str(), MNT_DETACH) != 0) {
      return Status::Internal("unmount " + path + ": " + Errstr(e) + "; detach: " + Errstr(errno));
    }
  }
  if (FindMount(path)) return Status::Internal("unmount " + path + ": still mounted");
  return Status::Ok();
}

Status MakeDirs(const std::string& path) {
  std::string cur;
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t end = path.find('/', pos);
    if (end == std::string::npos) end = path.size();
    cur = path.substr(0, end);
    pos = end + 1;
    if (cur.empty()) continue;
    if (::mkdir(cur.c_str(), 0750) != 0 && errno != EEXIST) {
      const int e = errno;
      struct stat st;
      if (::lstat(cur.c_str(), &st) == 0) continue;  // e.g. a broken mount point
      return Status::Internal("mkdir " + cur + ": " + Errstr(e));
    }
  }
  return Status::Ok();
}

}  // namespace cairn::csi
