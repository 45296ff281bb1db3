// cairn-mount: mounts a Cairn file volume with FUSE.
//
//   cairn-mount -o token_file=/etc/cairn/data.token /etc/cairn/vol1.json /mnt/vol1
//   cairn-mount -o token_file=/etc/cairn/data.token node1,node2:/vol1 /mnt/vol1  # via storaged
//   grep vol1 /proc/mounts     # vol1 /mnt/vol1 fuse.cairn rw,nosuid,nodev,...
//   fusermount3 -u /mnt/vol1   # or umount, or SIGTERM: the process exits 0
//
// Without -f the process goes to the background only once the volume is
// mounted, so its exit status (and one line on stderr) reports every mount
// error: bad spec, unknown volume, unreachable storaged or bricks, bad mount
// point, bad option.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>

#include "client/spec.h"
#include "client/spec_fetch.h"
#include "client/volume.h"
#include "common/file_util.h"
#include "common/log.h"
#include "common/malloc_tuning.h"
#include "fuse/cairn_fs.h"
#include "fuse/mount_options.h"

#ifndef CAIRN_VERSION
#define CAIRN_VERSION "unknown"
#endif

namespace cairn::fuse {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

// One-line errors go to the stderr cairn-mount was started with (the
// caller's terminal or pipe), also once fd 2 leads to the log file, until the
// mount is up. They are logged too when the log goes elsewhere.
int g_user_fd = STDERR_FILENO;
bool g_log_is_user_stderr = true;
bool g_logging = false;

void WriteUser(const std::string& text) {
  if (g_user_fd >= 0) (void)!::write(g_user_fd, text.data(), text.size());
}

void PrintError(const std::string& message) {
  WriteUser("cairn-mount: " + message + "\n");
  if (g_logging && !g_log_is_user_stderr) spdlog::error("event=mount-error error=\"{}\"", message);
}

// libfuse's messages ("fuse: bad mount point ...") into our log; errors also
// to the caller while mounting.
void FuseLog(enum fuse_log_level level, const char* fmt, va_list ap) {
  char buf[1024];
  std::vsnprintf(buf, sizeof(buf), fmt, ap);
  std::string msg(buf);
  while (!msg.empty() && msg.back() == '\n') msg.pop_back();
  if (level <= FUSE_LOG_ERR) {
    if (!g_log_is_user_stderr) WriteUser("cairn-mount: " + msg + "\n");
    spdlog::error("event=libfuse msg=\"{}\"", msg);
  } else if (level <= FUSE_LOG_NOTICE) {
    spdlog::info("event=libfuse msg=\"{}\"", msg);
  } else {
    spdlog::debug("event=libfuse msg=\"{}\"", msg);
  }
}

// Lets the kernel read ahead (and so send reads of) up to `kib` KiB at once;
// its default for a FUSE mount is 128 KiB. Best effort: needs root.
void SetReadahead(const std::string& mountpoint, int kib) {
  auto mount = TopMountAt(mountpoint);
  if (!mount.has_value() || kib <= 0) return;
  const std::string knob = "/sys/class/bdi/" + mount->dev + "/read_ahead_kb";
  std::ofstream out(knob);
  out << kib << "\n";
  out.flush();
  if (out.good()) {
    spdlog::info("event=readahead kib={} bdi={}", kib, mount->dev);
  } else {
    spdlog::info("event=readahead-unchanged knob={} reason=\"cannot write\"", knob);
  }
}

// Checks the mount point; returns its resolved absolute path.
StatusOr<std::string> CheckMountpoint(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    const int e = errno;
    if (e == ENOENT) return Status::NotFound("mount point " + path + " does not exist");
    if (e == ENOTCONN) {
      return Status::FailedPrecondition("mount point " + path +
                                        " is a dead FUSE mount (unmount it: fusermount3 -u " +
                                        path + ")");
    }
    return Status::FailedPrecondition("mount point " + path + ": " + std::strerror(e));
  }
  if (!S_ISDIR(st.st_mode)) {
    return Status::FailedPrecondition("mount point " + path + " is not a directory");
  }
  char resolved[PATH_MAX];
  if (::realpath(path.c_str(), resolved) == nullptr) {
    return Status::FailedPrecondition("mount point " + path + ": " + std::strerror(errno));
  }
  if (auto mount = TopMountAt(resolved); mount.has_value()) {
    return Status::AlreadyExists("mount point " + path + " is already mounted (" + mount->source +
                                 " " + mount->fs_type + ")");
  }
  return std::string(resolved);
}

// Goes to the background before any thread exists (libcairn and libfuse start
// threads). The parent waits until the child reports over a pipe and exits
// with the child's status, so mount errors reach the caller. Returns the
// write end of the pipe in the child (-1 in the foreground).
int Daemonize() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    PrintError(std::string("pipe: ") + std::strerror(errno));
    std::exit(kExitFailure);
  }
  const pid_t pid = ::fork();
  if (pid < 0) {
    PrintError(std::string("fork: ") + std::strerror(errno));
    std::exit(kExitFailure);
  }
  if (pid > 0) {
    ::close(fds[1]);
    unsigned char code = kExitFailure;
    ssize_t n;
    do {
      n = ::read(fds[0], &code, 1);
    } while (n < 0 && errno == EINTR);
    if (n == 1) ::_exit(code);
    // The child died without a word (crash): report how.
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (WIFSIGNALED(status)) {
      PrintError("mount process killed by signal " + std::to_string(WTERMSIG(status)));
    }
    ::_exit(WIFEXITED(status) && WEXITSTATUS(status) != 0 ? WEXITSTATUS(status) : kExitFailure);
  }
  ::close(fds[0]);
  ::setsid();
  return fds[1];
}

// Tells the waiting parent (if any) the outcome.
void ReportToParent(int* fd, int code) {
  if (*fd < 0) return;
  const unsigned char c = static_cast<unsigned char>(code);
  (void)!::write(*fd, &c, 1);
  ::close(*fd);
  *fd = -1;
}

// Sets up where the log goes: fd 2 becomes the log file if there is one,
// else /dev/null in the background (else stays). The caller's stderr is kept
// apart for one-line errors (g_user_fd). stdin (and stdout in the background)
// point at /dev/null.
void SetUpStdio(const MountConfig& config) {
  g_user_fd = ::fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
  g_log_is_user_stderr = config.foreground && config.log_file.empty();
  int null_fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null_fd >= 0) {
    ::dup2(null_fd, STDIN_FILENO);
    if (!config.foreground) ::dup2(null_fd, STDOUT_FILENO);
  }
  int log_fd = -1;
  if (!config.log_file.empty()) {
    log_fd = ::open(config.log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  } else if (!config.foreground) {
    log_fd = null_fd;
  }
  if (log_fd >= 0) ::dup2(log_fd, STDERR_FILENO);
  if (log_fd >= 0 && log_fd != null_fd) ::close(log_fd);
  if (null_fd >= 0) ::close(null_fd);
}

// True iff both specs have the same bricks in the same places.
bool SameBricks(const client::VolumeSpec& a, const client::VolumeSpec& b) {
  if (a.subvolumes.size() != b.subvolumes.size() || a.replica != b.replica ||
      a.arbiter != b.arbiter) {
    return false;
  }
  for (size_t s = 0; s < a.subvolumes.size(); ++s) {
    if (a.subvolumes[s].size() != b.subvolumes[s].size()) return false;
    for (size_t r = 0; r < a.subvolumes[s].size(); ++r) {
      if (a.subvolumes[s][r].node != b.subvolumes[s][r].node ||
          a.subvolumes[s][r].brick_id != b.subvolumes[s][r].brick_id) {
        return false;
      }
    }
  }
  return true;
}

int Run(int argc, char** argv) {
  KeepIoBuffersInHeap();  // 1 MiB requests reuse warm heap pages (common/malloc_tuning.h)
  auto parsed = ParseMountArgs(argc, argv);
  if (!parsed.ok()) {
    PrintError(parsed.status().message());
    return kExitUsage;
  }
  MountConfig config = std::move(*parsed);
  if (config.help) {
    std::fputs(MountUsage().c_str(), stdout);
    return kExitOk;
  }
  if (config.version) {
    std::printf("cairn-mount %s (libfuse %s, FUSE API %d)\n", CAIRN_VERSION, fuse_pkgversion(),
                FUSE_USE_VERSION);
    return kExitOk;
  }

  // Everything that can be checked without threads is checked before
  // going to the background, so most errors come straight from here.
  // SOURCE is a spec file if it names one, else host[:port][,...]:/volume
  // (the spec is then fetched from storaged, once in the background: gRPC
  // starts threads).
  client::VolumeSpec spec;
  std::optional<client::ServerSource> server_source;
  struct stat source_st;
  const bool source_is_file = ::stat(config.spec_path.c_str(), &source_st) == 0;
  const bool looks_like_server = !source_is_file &&
                                 config.spec_path.find(":/") != std::string::npos &&
                                 config.spec_path[0] != '/' && config.spec_path[0] != '.';
  if (looks_like_server) {
    auto parsed_source = client::ParseServerSource(config.spec_path);
    if (!parsed_source.ok()) {
      PrintError("SOURCE " + parsed_source.status().message());
      return kExitUsage;
    }
    server_source = std::move(*parsed_source);
  } else {
    auto loaded = client::VolumeSpec::Load(config.spec_path);
    if (!loaded.ok()) {
      std::string msg = loaded.status().message();
      if (msg.find(config.spec_path) == std::string::npos) {
        msg = "volume spec " + config.spec_path + ": " + msg;
      }
      if (!source_is_file) {
        msg += " (SOURCE is a spec file or host[:port][,host[:port]...]:/volume)";
      }
      PrintError(msg);
      return kExitFailure;
    }
    spec = std::move(*loaded);
  }
  std::string token;
  if (!config.token_file.empty()) {
    auto t = ReadSecretFile(config.token_file);
    if (!t.ok()) {
      PrintError("token_file: " + t.status().message());
      return kExitFailure;
    }
    token = std::move(*t);
  }
  auto mountpoint = CheckMountpoint(config.mountpoint);
  if (!mountpoint.ok()) {
    PrintError(mountpoint.status().message());
    return kExitFailure;
  }
  if (!config.log_file.empty()) {
    // Fail now, not silently in the background.
    int fd = ::open(config.log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0) {
      PrintError("log_file " + config.log_file + ": " + std::strerror(errno));
      return kExitFailure;
    }
    ::close(fd);
  }

  // -d: libfuse's request trace arrives through FuseLog at debug level.
  if (config.debug && config.log_level != "trace") config.log_level = "debug";
  int report_fd = config.foreground ? -1 : Daemonize();
  SetUpStdio(config);
  if (Status s = InitLogging({config.log_level, config.log_json, "cairn-mount"}); !s.ok()) {
    PrintError(s.message());
    ReportToParent(&report_fd, kExitUsage);
    return kExitUsage;
  }
  g_logging = true;
  fuse_set_log_func(FuseLog);

  // Termination signals reach only the thread running the FUSE loop (libfuse
  // blocks them in its workers; the Volume's threads inherit this mask).
  sigset_t term;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  sigaddset(&term, SIGINT);
  sigaddset(&term, SIGHUP);
  sigaddset(&term, SIGQUIT);
  pthread_sigmask(SIG_BLOCK, &term, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  client::Options options;
  options.token = token;
  options.connect_timeout =
      std::chrono::milliseconds(static_cast<int64_t>(config.connect_timeout_s * 1000));
  options.rpc_timeout =
      std::chrono::milliseconds(static_cast<int64_t>(config.rpc_timeout_s * 1000));
  // A directory's attributes from this mount's own changes count as fresh no
  // longer than the kernel keeps attributes (attr_timeout=0: always ask).
  options.dir_attr_cache_timeout =
      std::chrono::milliseconds(static_cast<int64_t>(config.attr_timeout_s * 1000));
  uint64_t fetched_generation = 0;
  if (server_source.has_value()) {
    auto fetched = client::FetchSpec(server_source->servers, server_source->volume, token,
                                     options.connect_timeout);
    if (!fetched.ok()) {
      PrintError(fetched.status().IsNotFound()
                     ? fetched.status().message()
                     : "cannot fetch the volume spec: " + fetched.status().message());
      ReportToParent(&report_fd, kExitFailure);
      return kExitFailure;
    }
    spdlog::info("event=spec-fetched volume={} generation={} server={}", fetched->spec.name,
                 fetched->generation, fetched->server);
    spec = std::move(fetched->spec);
    fetched_generation = fetched->generation;
  }
  auto volume = client::Volume::Open(spec, options);
  if (!volume.ok()) {
    PrintError("cannot open volume " + spec.name + ": " + volume.status().message());
    ReportToParent(&report_fd, kExitFailure);
    return kExitFailure;
  }

  CairnFs fs(volume->get(), {.entry_timeout_s = config.entry_timeout_s,
                             .attr_timeout_s = config.attr_timeout_s,
                             .negative_timeout_s = config.negative_timeout_s,
                             .kernel_cache = config.kernel_cache});
  const std::string fuse_options = config.FuseOptions(spec.name);
  std::vector<std::string> fuse_argv_store = {argv[0], "-o", fuse_options};
  if (config.debug) fuse_argv_store.push_back("-d");
  std::vector<char*> fuse_argv;
  for (auto& a : fuse_argv_store) fuse_argv.push_back(a.data());
  fuse_args args = FUSE_ARGS_INIT(static_cast<int>(fuse_argv.size()), fuse_argv.data());
  fuse_session* se = fuse_session_new(&args, &CairnFs::Ops(), sizeof(fuse_lowlevel_ops), &fs);
  fuse_opt_free_args(&args);
  if (se == nullptr) {
    PrintError("cannot set up FUSE with options '" + fuse_options + "'");
    ReportToParent(&report_fd, kExitFailure);
    return kExitFailure;
  }
  if (fuse_set_signal_handlers(se) != 0) {
    PrintError("cannot install signal handlers");
    fuse_session_destroy(se);
    ReportToParent(&report_fd, kExitFailure);
    return kExitFailure;
  }
  if (fuse_session_mount(se, mountpoint->c_str()) != 0) {
    PrintError("cannot mount on " + *mountpoint);
    fuse_remove_signal_handlers(se);
    fuse_session_destroy(se);
    ReportToParent(&report_fd, kExitFailure);
    return kExitFailure;
  }
  SetReadahead(*mountpoint, config.read_ahead_kib);
  spdlog::info("event=mounted volume={} mountpoint={} options=\"{}\" pid={}", spec.name,
               *mountpoint, fuse_options, ::getpid());
  // With a server source, newer generations of the spec are followed (and
  // logged); a live mount keeps its bricks: a topology change needs a remount.
  std::unique_ptr<client::SpecWatcher> watcher;
  if (server_source.has_value()) {
    watcher = std::make_unique<client::SpecWatcher>(
        server_source->servers, server_source->volume, token, fetched_generation,
        [mounted = spec](const client::FetchedSpec& newer) {
          spdlog::info("event=spec_generation volume={} generation={} server={}", newer.spec.name,
                       newer.generation, newer.server);
          if (!SameBricks(mounted, newer.spec)) {
            spdlog::warn(
                "event=spec-topology-changed volume={} generation={} action=\"remount needed: "
                "this mount keeps serving the bricks it was mounted with\"",
                newer.spec.name, newer.generation);
          }
        },
        [volume_name = spec.name](const Status& why) {
          spdlog::warn("event=spec-deleted volume={} reason=\"{}\"", volume_name, why.message());
        });
  }

  if (::chdir("/") != 0) {
    // Not fatal: only keeps the process from pinning a directory.
  }
  ReportToParent(&report_fd, kExitOk);
  if (g_user_fd >= 0) ::close(g_user_fd);
  g_user_fd = -1;

  pthread_sigmask(SIG_UNBLOCK, &term, nullptr);
  fuse_loop_config* loop = fuse_loop_cfg_create();
  fuse_loop_cfg_set_clone_fd(loop, 0);
  fuse_loop_cfg_set_idle_threads(loop, static_cast<unsigned>(config.max_idle_threads));
  fuse_loop_cfg_set_max_threads(loop, static_cast<unsigned>(config.max_threads));
  const int loop_result = fuse_session_loop_mt(se, loop);
  fuse_loop_cfg_destroy(loop);
  pthread_sigmask(SIG_BLOCK, &term, nullptr);

  watcher.reset();
  fuse_session_unmount(se);
  fuse_remove_signal_handlers(se);
  fuse_session_destroy(se);
  // Flushes pending dirty-mark clears and closes the brick connections.
  volume->reset();
  if (loop_result < 0) {
    spdlog::error("event=unmounted volume={} error=\"{}\"", spec.name, std::strerror(-loop_result));
    return kExitFailure;
  }
  spdlog::info("event=unmounted volume={} signal={}", spec.name, loop_result);
  return kExitOk;
}

}  // namespace
}  // namespace cairn::fuse

int main(int argc, char** argv) { return cairn::fuse::Run(argc, argv); }
