// provisioner_bench: how fast cairn-provisioner turns REST calls into ready volumes, and what the
// volumes cost the nodes — with GlusterFS's `gluster volume create` + `start` side by side in the
// same run on the same machine, the Cairn/GlusterFS ratios and the issue's targets.
//
// Cairn: a cairn-provisioner (SQLite in the temporary directory) and three storaged (each running
// its node's one brickd) on 127.0.0.2-4, self-registered with the provisioner's join key
// (storaged --provisioner --join-key-file --device), each with one device on a sparse ext4 file
// system loop-mounted in the temporary directory (500 x 1 GiB per node is more than this
// machine's disk; a device's capacity cannot exceed its file system's size). Then, through the
// REST API (Heketi's, JWT-signed per request):
//
//   batch create  --volumes (500) replica-3 volumes of --size-gib (1) by --concurrency (4)
//                 clients: latency from POST /volumes to the 303 of its /queue/{op}; volumes/s of
//                 the whole batch
//   with all of them present: brickd and storaged RSS per node (VmRSS), brickd RSS per brick
//                 ((RSS with N bricks - RSS with 0 bricks) / N), brickd processes per node
//   sequential    --sequential (50) more volumes created one at a time by one client, then
//                 deleted one at a time (single-client latencies, with N volumes present)
//   batch delete  the N volumes by --concurrency clients: latency from DELETE to the 204 of its
//                 /queue/{op}; deletes/s
//
// GlusterFS: a private glusterd (bench_util's GlusterDaemon) with cluster.brick-multiplex on;
// --gluster-volumes (50) times `gluster volume create NAME replica 3 HOST:n1/NAME HOST:n2/NAME
// HOST:n3/NAME force` + `gluster volume start NAME`, each timed (HOST: the private glusterd's
// host; bricks on the same loop file system); glusterfsd RSS per brick; then `volume stop` +
// `volume delete` of each, timed.
//
// --profile cpu|syscalls records the provisioner and the first storaged during the batch create
// (perf record -g / strace -f -c -w) and prints the top items. Everything started is
// stopped by pid, the loop file system unmounted and its loop device detached, and the temporary
// directory removed on every exit path, Ctrl-C included. A benchmark, not a test: exit 0 even
// when a target is missed; 1 when something broke, 2 for bad flags, 130 when interrupted. See
// bench/README.md.
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <httplib.h>
#include <signal.h>
#include <spdlog/fmt/fmt.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "bench/bench_util.h"
#include "common/file_util.h"
#include "common/flags.h"
#include "common/id.h"
#include "common/jwt.h"
#include "common/status.h"
#include "common/status_grpc.h"
#include "proto/storaged.grpc.pb.h"

#ifndef CAIRN_PROVISIONER_DEFAULT_PATH
#define CAIRN_PROVISIONER_DEFAULT_PATH "cairn-provisioner"
#endif
#ifndef CAIRN_STORAGED_DEFAULT_PATH
#define CAIRN_STORAGED_DEFAULT_PATH "storaged"
#endif
#ifndef CAIRN_BRICKD_DEFAULT_PATH
#define CAIRN_BRICKD_DEFAULT_PATH "brickd"
#endif

namespace cairn::bench {
namespace {

namespace spb = ::cairn::storaged::v1;

constexpr int kReplica = 3;
constexpr int64_t kGiB = int64_t{1} << 30;
// The issue's targets.
constexpr double kTargetP50Ms = 20.0;
constexpr double kTargetVolumesPerS = 50.0;
constexpr double kTargetKibPerBrick = 64.0;
constexpr int kTargetVolumes = 500;
constexpr char kVolumePrefix[] = "pbench-";
constexpr char kSequentialPrefix[] = "pbench-seq-";

// ---- Options.

struct Options {
  int volumes = 500;
  int gluster_volumes = 50;
  int concurrency = 4;
  int sequential = 50;
  int size_gib = 1;
  int idle_ms = 1000;
  int node_probes = 10;
  int64_t loop_gib = 2048;
  int workers = 0;
  bool heal = true;
  bool tcp_nodelay = true;
  bool quick = false;
  bool keep = false;
  bool run_cairn = true;
  bool run_gluster = true;
  std::string profile;  // "", "cpu" or "syscalls"
  std::string json_file;
  std::string workdir;
  std::string provisioner, storaged, brickd;
  std::string log_level;
  std::string provisioner_log_level;
  std::vector<std::string> gluster_hosts;
  GlusterOptions gluster;
};

// ---- Small helpers.

// utime + stime of a process, in clock ticks; -1 if unreadable.
int64_t CpuTicks(pid_t pid) {
  auto text = ReadText(fmt::format("/proc/{}/stat", pid));
  if (!text) return -1;
  const size_t paren = text->rfind(')');
  if (paren == std::string::npos) return -1;
  // After "comm)": state(3) ppid ... utime is field 14, stime 15 (1-based, comm = 2).
  auto f = SplitWhitespace(std::string_view(*text).substr(paren + 1));
  if (f.size() < 13) return -1;
  return std::strtoll(f[11].c_str(), nullptr, 10) + std::strtoll(f[12].c_str(), nullptr, 10);
}

double CpuPercent(int64_t ticks0, int64_t ticks1, double seconds) {
  if (ticks0 < 0 || ticks1 < 0 || seconds <= 0) return -1;
  return 100.0 * static_cast<double>(ticks1 - ticks0) / static_cast<double>(sysconf(_SC_CLK_TCK)) /
         seconds;
}

// Open file descriptors of a process, and its soft limit ("Max open files" of /proc/PID/limits).
int64_t OpenFds(pid_t pid) {
  std::error_code ec;
  int64_t n = 0;
  for (fs::directory_iterator it(fmt::format("/proc/{}/fd", pid), ec), end; !ec && it != end;
       it.increment(ec)) {
    ++n;
  }
  return ec ? -1 : n;
}

int64_t FdLimit(pid_t pid) {
  auto text = ReadText(fmt::format("/proc/{}/limits", pid));
  if (!text) return -1;
  std::istringstream in(*text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("Max open files", 0) == 0) {
      auto f = SplitWhitespace(line.substr(14));
      return f.empty() ? -1 : std::strtoll(f[0].c_str(), nullptr, 10);
    }
  }
  return -1;
}

int64_t FileSize(const fs::path& p) {
  std::error_code ec;
  const auto n = fs::file_size(p, ec);
  return ec ? -1 : static_cast<int64_t>(n);
}

std::string Bytes(int64_t n) {
  if (n < 0) return "n/a";
  if (n < int64_t{1} << 20) return fmt::format("{:.1f} KiB", static_cast<double>(n) / 1024);
  if (n < int64_t{1} << 30) return fmt::format("{:.1f} MiB", static_cast<double>(n) / (1 << 20));
  return fmt::format("{:.2f} GiB", static_cast<double>(n) / (1 << 30));
}

json OptInt(int64_t v) { return v < 0 ? json(nullptr) : json(v); }

// ---- The loop-mounted scratch file system the devices (and GlusterFS's bricks) live on.

class LoopFs {
 public:
  LoopFs() = default;
  LoopFs(const LoopFs&) = delete;
  LoopFs& operator=(const LoopFs&) = delete;
  ~LoopFs() { Remove(nullptr); }

  // A sparse IMAGE of `size_gib`, ext4 on it (inode tables and journal not zeroed: nothing of the
  // 2 TiB is written), a loop device, mounted at MNT with noinit_itable (no background zeroing).
  Status Create(const fs::path& image, const fs::path& mnt, int64_t size_gib) {
    image_ = image;
    mnt_ = mnt;
    const std::string mkfs = FindExecutable("mkfs.ext4");
    const std::string losetup = FindExecutable("losetup");
    if (mkfs.empty() || losetup.empty()) {
      return Status::NotFound(
          "mkfs.ext4 and losetup are needed for the loop file system (e2fsprogs, "
          "mount); or pass --loop-gib=0");
    }
    losetup_ = losetup;
    {
      const int fd = ::open(image.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
      if (fd < 0) return ErrnoStatus("create", image.string());
      const int rc = ::ftruncate(fd, size_gib * kGiB);
      const int err = errno;
      ::close(fd);
      if (rc != 0) {
        return Status::Internal(
            fmt::format("truncate {} to {} GiB: {}", image.string(), size_gib, ErrnoText(err)));
      }
    }
    const auto t0 = Clock::now();
    // -N: a million inodes (the default ratio would make 128 Mi inodes, 32 GiB of inode tables).
    CAIRN_ASSIGN_OR_RETURN(
        CommandResult made,
        RunCommand({mkfs, "-q", "-F", "-m", "0", "-N", "1048576", "-E",
                    "lazy_itable_init=1,lazy_journal_init=1", "-L", "cairnbench", image.string()},
                   std::chrono::minutes(5), /*interruptible=*/false));
    if (made.exit_code != 0) {
      return Status::Internal(fmt::format("mkfs.ext4 {} failed (exit {}): {}", image.string(),
                                          made.exit_code, made.output));
    }
    // Not interruptible: a loop device attached and not known to us would leak.
    CAIRN_ASSIGN_OR_RETURN(CommandResult attached,
                           RunCommand({losetup, "--find", "--show", image.string()},
                                      std::chrono::minutes(1), /*interruptible=*/false));
    if (attached.exit_code != 0) {
      return Status::Internal(fmt::format("losetup --find --show {} failed (exit {}): {}",
                                          image.string(), attached.exit_code, attached.output));
    }
    device_ = Trimmed(attached.output);
    if (device_.rfind("/dev/loop", 0) != 0) {
      const std::string out = device_;
      device_.clear();
      return Status::Internal("losetup printed no loop device: " + out);
    }
    std::error_code ec;
    fs::create_directories(mnt, ec);
    if (ec) return Status::Internal("create " + mnt.string() + ": " + ec.message());
    if (::mount(device_.c_str(), mnt.c_str(), "ext4", 0, "noinit_itable") != 0) {
      return ErrnoStatus("mount " + device_ + " on", mnt.string());
    }
    mounted_ = true;
    struct statvfs sv {};
    if (::statvfs(mnt.c_str(), &sv) == 0) {
      size_bytes_ = static_cast<int64_t>(sv.f_blocks) * static_cast<int64_t>(sv.f_frsize);
    }
    fmt::print(stderr, "loop fs: {} GiB sparse ext4 {} on {} at {} ({:.1f} s; {} on disk)\n",
               size_gib, image.string(), device_, mnt.string(), SecondsBetween(t0, Clock::now()),
               Bytes(DiskUsage()));
    return Status::Ok();
  }

  // Bytes the sparse image really occupies on the disk under it.
  int64_t DiskUsage() const {
    struct stat st {};
    if (image_.empty() || ::stat(image_.c_str(), &st) != 0) return -1;
    return static_cast<int64_t>(st.st_blocks) * 512;
  }

  const fs::path& mountpoint() const { return mnt_; }
  const std::string& device() const { return device_; }
  int64_t size_bytes() const { return size_bytes_; }
  bool active() const { return mounted_; }

  // Unmounts (lazily if still busy after 10 s), detaches the loop device, removes the image
  // unless `keep_image`. Idempotent; what went wrong is appended to `problems` (or printed).
  void Remove(std::vector<std::string>* problems, bool keep_image = false) {
    auto problem = [&](std::string what) {
      fmt::print(stderr, "loop fs cleanup: {}\n", what);
      if (problems != nullptr) problems->push_back(std::move(what));
    };
    if (mounted_) {
      const auto deadline = Clock::now() + std::chrono::seconds(10);
      for (;;) {
        if (::umount2(mnt_.c_str(), 0) == 0) break;
        const int err = errno;
        if (err == EBUSY && Clock::now() < deadline) {
          std::this_thread::sleep_for(std::chrono::milliseconds(100));
          continue;
        }
        if (::umount2(mnt_.c_str(), MNT_DETACH) == 0) {
          problem(
              fmt::format("{} was busy ({}); detached it lazily", mnt_.string(), ErrnoText(err)));
        } else {
          problem(fmt::format("could not unmount {}: {}; unmount it by hand", mnt_.string(),
                              ErrnoText(errno)));
        }
        break;
      }
      mounted_ = false;
    }
    if (!device_.empty()) {
      auto r = RunCommand({losetup_, "-d", device_}, std::chrono::seconds(30),
                          /*interruptible=*/false);
      if (!r.ok() || r->exit_code != 0) {
        problem(fmt::format("losetup -d {} failed: {}", device_,
                            r.ok() ? r->output : r.status().ToString()));
      }
      device_.clear();
    }
    if (!image_.empty()) {
      std::error_code ec;
      if (keep_image) {
        fmt::print(stderr, "loop fs: kept the image {} (--keep; mount -o loop,ro it to look)\n",
                   image_.string());
      } else {
        fs::remove(image_, ec);
      }
      image_.clear();
    }
  }

 private:
  fs::path image_, mnt_;
  std::string losetup_, device_;
  int64_t size_bytes_ = -1;
  bool mounted_ = false;
};

// ---- The REST client: one keep-alive connection per client thread, a JWT per request.

struct Reply {
  int status = 0;  // 0: no answer (the transport error is in `body`)
  std::string body;
  std::string location;
  bool pending = false;
};

class Rest {
 public:
  Rest(const std::string& host, int port, std::string key, bool nodelay)
      : cli_(host, port), key_(std::move(key)) {
    cli_.set_keep_alive(true);
    cli_.set_tcp_nodelay(nodelay);
    cli_.set_connection_timeout(5);
    cli_.set_read_timeout(120);
    cli_.set_write_timeout(60);
  }

  // METHOD PATH signed as admin. A transport error is retried once (every call used here is
  // idempotent: volume create by name, delete by id, GETs).
  Reply Call(const std::string& method, const std::string& path, const std::string& body = "") {
    Reply r = Once(method, path, body);
    if (r.status == 0 && !Interrupted()) r = Once(method, path, body);
    return r;
  }

 private:
  Reply Once(const std::string& method, const std::string& path, const std::string& body) {
    const int64_t now = static_cast<int64_t>(std::time(nullptr));
    const std::string bare = path.substr(0, path.find('?'));
    httplib::Headers headers = {
        {"Authorization",
         "Bearer " + SignJwt(key_, MakeRequestClaims("admin", method, bare, now))}};
    httplib::Result res = [&] {
      if (method == "GET") return cli_.Get(path, headers);
      if (method == "DELETE") return cli_.Delete(path, headers, body, "application/json");
      return cli_.Post(path, headers, body, "application/json");
    }();
    Reply out;
    if (!res) {
      out.body = httplib::to_string(res.error());
      return out;
    }
    out.status = res->status;
    out.body = res->body;
    out.location = res->get_header_value("Location");
    out.pending = res->get_header_value("X-Pending") == "true";
    return out;
  }

  httplib::Client cli_;
  std::string key_;
};

std::string Describe(const std::string& what, const Reply& r) {
  if (r.status == 0) return fmt::format("{}: no answer ({})", what, r.body);
  return fmt::format("{}: HTTP {} {}", what, r.status, r.body.substr(0, 500));
}

// Follows /queue/{op} until the operation is done: GET /queue answers 200 + X-Pending while it
// runs (the provisioner itself waits up to --queue-wait-ms before saying so, so no pause here).
StatusOr<Reply> FollowQueue(Rest& rest, const std::string& queue, const std::string& what) {
  const auto deadline = Clock::now() + std::chrono::minutes(2);
  for (;;) {
    Reply q = rest.Call("GET", queue);
    if (q.status != 200 || !q.pending) return q;
    CAIRN_RETURN_IF_ERROR(CheckInterrupted());
    if (Clock::now() >= deadline) {
      return Status::DeadlineExceeded(what + ": still pending after 2 min (" + queue + ")");
    }
  }
}

// POST /volumes → 202 → /queue → 303 /volumes/{id}: the volume id and the milliseconds from the
// POST to the 303.
StatusOr<std::pair<std::string, double>> CreateVolume(Rest& rest, const std::string& name,
                                                      int size_gib) {
  const json body = {
      {"size", size_gib},
      {"name", name},
      {"durability", {{"type", "replicate"}, {"replicate", {{"replica", kReplica}}}}}};
  const std::string what = "create " + name;
  const auto t0 = Clock::now();
  Reply r = rest.Call("POST", "/volumes", body.dump());
  if (r.status != 202 || r.location.rfind("/queue/", 0) != 0) {
    return Status::Internal(Describe(what + " (POST /volumes)", r));
  }
  CAIRN_ASSIGN_OR_RETURN(Reply q, FollowQueue(rest, r.location, what));
  const double ms = MsBetween(t0, Clock::now());
  if (q.status != 303 || q.location.rfind("/volumes/", 0) != 0) {
    return Status::Internal(Describe(what + " (GET " + r.location + ")", q));
  }
  return std::make_pair(q.location.substr(std::strlen("/volumes/")), ms);
}

// DELETE /volumes/{id} → 202 → /queue → 204: milliseconds from the DELETE to the 204.
StatusOr<double> DeleteVolume(Rest& rest, const std::string& id) {
  const std::string what = "delete " + id;
  const auto t0 = Clock::now();
  Reply r = rest.Call("DELETE", "/volumes/" + id);
  if (r.status != 202 || r.location.rfind("/queue/", 0) != 0) {
    return Status::Internal(Describe(what + " (DELETE)", r));
  }
  CAIRN_ASSIGN_OR_RETURN(Reply q, FollowQueue(rest, r.location, what));
  const double ms = MsBetween(t0, Clock::now());
  if (q.status != 204) return Status::Internal(Describe(what + " (GET " + r.location + ")", q));
  return ms;
}

StatusOr<json> GetJson(Rest& rest, const std::string& path) {
  Reply r = rest.Call("GET", path);
  if (r.status != 200) return Status::Internal(Describe("GET " + path, r));
  json j = json::parse(r.body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Status::Internal("GET " + path + ": not JSON: " + r.body);
  return j;
}

// ---- Profiling (perf) of some processes for a while.

class Profiler {
 public:
  Profiler(std::string mode, fs::path dir) : mode_(std::move(mode)), dir_(std::move(dir)) {}
  Profiler(const Profiler&) = delete;
  Profiler& operator=(const Profiler&) = delete;
  ~Profiler() { Stop(); }

  // Starts one perf record (cpu) or strace (syscalls) per process.
  Status Start(const std::vector<std::pair<std::string, pid_t>>& targets) {
    perf_ = FindExecutable(mode_ == "cpu" ? "perf" : "strace");
    if (perf_.empty()) {
      return Status::NotFound(mode_ == "cpu" ? "perf is not installed (Debian: linux-perf)"
                                             : "strace is not installed (Debian: strace)");
    }
    for (const auto& [name, pid] : targets) {
      Target t;
      t.name = name;
      t.pid = pid;
      t.data = dir_ / fmt::format("{}-{}.{}", mode_ == "cpu" ? "perf" : "strace", name,
                                  mode_ == "cpu" ? "data" : "txt");
      std::vector<std::string> argv;
      if (mode_ == "cpu") {
        argv = {perf_, "record",           "-g", "-F", "499", "-o", t.data.string(),
                "-p",  std::to_string(pid)};
      } else {
        // strace, not `perf trace -s`: perf trace -p does not follow the threads created after
        // it attached (gRPC's server threads, the healers), strace -f does. -w: wall-clock time.
        argv = {perf_, "-f", "-c", "-w", "-o", t.data.string(), "-p", std::to_string(pid)};
      }
      fmt::print(stderr, "profile: {}\n", Join(argv, " "));
      CAIRN_ASSIGN_OR_RETURN(t.perf, ChildProcess::Start("perf " + name, argv,
                                                         dir_ / fmt::format("perf-{}.log", name)));
      targets_.push_back(std::move(t));
    }
    // perf needs a moment to attach to every thread.
    SleepMs(1000);
    return Status::Ok();
  }

  // SIGINT (perf writes its data / summary then), up to 30 s, then SIGTERM/SIGKILL.
  void Stop() {
    for (auto& t : targets_) {
      if (t.perf != nullptr) StopPerfRecord(*t.perf);
    }
  }

  // The top items per process, as text lines.
  std::map<std::string, std::vector<std::string>> Report(int top) {
    Stop();
    std::map<std::string, std::vector<std::string>> out;
    for (auto& t : targets_) {
      out[t.name] = mode_ == "cpu" ? CpuReport(t, top) : SyscallReport(t, top);
    }
    return out;
  }

  const std::string& mode() const { return mode_; }

 private:
  struct Target {
    std::string name;
    pid_t pid = 0;
    fs::path data;
    std::unique_ptr<ChildProcess> perf;
  };

  std::vector<std::string> CpuReport(const Target& t, int top) {
    return PerfReportRows(perf_, t.data,
                          {"-g", "none", "--percent-limit", "0.3", "--sort", "dso,sym"}, top, 150,
                          /*with_samples=*/true);
  }

  // strace -c -w prints "% time, seconds, usecs/call, calls, [errors], syscall" rows, summed over
  // the threads, with wall-clock time. Waits (futex, epoll, poll, accept, nanosleep...) are mostly
  // idle threads and are listed apart.
  std::vector<std::string> SyscallReport(const Target& t, int top) {
    auto text = ReadText(t.data.string());
    if (!text) return {"no strace output at " + t.data.string()};
    struct Sum {
      int64_t calls = 0;
      double total_ms = 0;
    };
    std::map<std::string, Sum> sums;
    std::istringstream in(*text);
    std::string line;
    while (std::getline(in, line)) {
      auto f = SplitWhitespace(line);
      if (f.size() < 5 || f.back() == "total") continue;
      char* end = nullptr;
      const double seconds = std::strtod(f[1].c_str(), &end);
      if (end == f[1].c_str() || *end != '\0') continue;
      const long long calls = std::strtoll(f[3].c_str(), &end, 10);
      if (end == f[3].c_str() || *end != '\0') continue;
      Sum& s = sums[f.back()];
      s.calls += calls;
      s.total_ms += seconds * 1000.0;
    }
    static const std::set<std::string> kWaits = {
        "futex",           "epoll_wait",   "epoll_pwait",     "poll",   "ppoll",   "select",
        "pselect6",        "nanosleep",    "clock_nanosleep", "accept", "accept4", "wait4",
        "rt_sigtimedwait", "epoll_pwait2", "restart_syscall"};
    std::vector<std::pair<std::string, Sum>> work, waits;
    for (auto& [name, s] : sums) (kWaits.count(name) ? waits : work).push_back({name, s});
    auto by_total = [](const auto& a, const auto& b) {
      return a.second.total_ms > b.second.total_ms;
    };
    std::sort(work.begin(), work.end(), by_total);
    std::sort(waits.begin(), waits.end(), by_total);
    std::vector<std::string> lines;
    lines.push_back(fmt::format("{:<22} {:>9} {:>12} {:>10}", "syscall (all threads)", "calls",
                                "total ms", "avg ms"));
    for (size_t i = 0; i < work.size() && static_cast<int>(i) < top; ++i) {
      const auto& [name, s] = work[i];
      lines.push_back(fmt::format("{:<22} {:>9} {:>12.1f} {:>10.3f}", name, s.calls, s.total_ms,
                                  s.calls > 0 ? s.total_ms / s.calls : 0.0));
    }
    std::vector<std::string> w;
    for (size_t i = 0; i < waits.size() && i < 4; ++i) {
      w.push_back(fmt::format("{} {} calls {:.0f} ms", waits[i].first, waits[i].second.calls,
                              waits[i].second.total_ms));
    }
    if (!w.empty()) lines.push_back("waits (idle threads mostly): " + Join(w, "; "));
    if (sums.empty()) lines.push_back("nothing parsed from " + t.data.string());
    return lines;
  }

  std::string mode_;
  fs::path dir_;
  std::string perf_;
  std::vector<Target> targets_;
};

// ---- Cairn.

// The storaged RPCs of one volume create and delete, as the provisioner makes them (CreateBrick
// and PutVolumeSpec on each node, then DeleteVolumeSpec and DeleteBrick), but one at a time and
// timed each: what one storaged takes per call with the volumes present at that moment.
struct NodeRpcTimes {
  LatencyStats create_brick, put_spec, delete_spec, delete_brick;
  bool measured = false;
};

struct NodeFigures {
  std::string name;
  pid_t storaged_pid = 0, brickd_pid = 0;
  int brickd_processes = -1;      // brickd processes naming this node's directory
  int64_t brickd_rss_0 = -1;      // KiB, no brick, idle
  int64_t brickd_rss_n = -1;      // KiB, N bricks, idle
  int64_t brickd_rss_after = -1;  // KiB, after the deletes
  int64_t brickd_threads_0 = -1, brickd_threads_n = -1;
  int64_t storaged_rss_0 = -1, storaged_rss_n = -1;
  int64_t storaged_threads_0 = -1, storaged_threads_n = -1;
  double storaged_cpu_idle_0 = -1, storaged_cpu_idle_n = -1;  // % of one core, idle window
  double brickd_cpu_idle_0 = -1, brickd_cpu_idle_n = -1;
  int bricks_listed_n = -1;      // brickd ListBricks with N volumes
  int bricks_listed_after = -1;  // and after the deletes
  int64_t state_bytes_n = -1;    // storaged's state.db + WAL with N volumes
  std::optional<double> kib_per_brick;
};

struct CairnFigures {
  int volumes = 0;
  int sequential = 0;
  int concurrency = 0;
  LatencyStats create, create_seq, del, del_seq;
  LatencyStats create_first, create_last;  // the first and last tenth of the batch (by start)
  LatencyStats server_create;  // the provisioner's own op time (event=volume_created ms=)
  double create_s = 0, delete_s = 0;
  double create_rate = 0, delete_rate = 0;
  double create_seq_rate = 0, delete_seq_rate = 0;
  std::vector<NodeFigures> nodes;
  int64_t provisioner_rss_0 = -1, provisioner_rss_n = -1;
  double provisioner_cpu_idle_n = -1;
  int64_t db_bytes_n = -1;  // database + WAL
  std::optional<double> kib_per_brick_max, kib_per_brick_mean;
  std::optional<bool> one_brickd_per_node;
  std::string loop_fs;
  std::map<std::string, std::vector<std::string>> profile;
  NodeRpcTimes rpc_0, rpc_n;  // storaged RPCs with no volume and with the N present
  bool measured = false;
};

class CairnCluster {
 public:
  CairnCluster(const Options& opt, fs::path dir, fs::path device_root)
      : opt_(opt), dir_(std::move(dir)), device_root_(std::move(device_root)) {}
  CairnCluster(const CairnCluster&) = delete;
  CairnCluster& operator=(const CairnCluster&) = delete;
  ~CairnCluster() { Stop(); }

  // Keys and tokens, the provisioner, a cluster, three storaged registering themselves with
  // their device; returns once the provisioner lists the three nodes with a device each.
  Status Start() {
    std::error_code ec;
    fs::create_directories(dir_ / "provisioner", ec);
    if (ec) return Status::Internal("create " + dir_.string() + ": " + ec.message());
    admin_token_ = RandomHexToken(32);
    data_token_ = RandomHexToken(32);
    admin_key_ = RandomHexToken(32);
    const std::string user_key = RandomHexToken(32), join_key = RandomHexToken(32);
    CAIRN_RETURN_IF_ERROR(WriteFileAtomic(Path("admin.token"), admin_token_ + "\n", 0600));
    CAIRN_RETURN_IF_ERROR(WriteFileAtomic(Path("data.token"), data_token_ + "\n", 0600));
    CAIRN_RETURN_IF_ERROR(WriteFileAtomic(Path("admin.key"), admin_key_ + "\n", 0600));
    CAIRN_RETURN_IF_ERROR(WriteFileAtomic(Path("user.key"), user_key + "\n", 0600));
    CAIRN_RETURN_IF_ERROR(WriteFileAtomic(Path("join.key"), join_key + "\n", 0600));

    // The provisioner.
    prov_log_ = dir_ / "provisioner" / "provisioner.log";
    const fs::path ready = dir_ / "provisioner" / "ready.json";
    db_ = dir_ / "provisioner" / "provisioner.db";
    std::vector<std::string> argv = {opt_.provisioner,
                                     "--listen=127.0.0.1:0",
                                     "--db=" + db_.string(),
                                     "--admin-key-file=" + Path("admin.key"),
                                     "--user-key-file=" + Path("user.key"),
                                     "--join-key-file=" + Path("join.key"),
                                     "--node-token-file=" + Path("admin.token"),
                                     "--ready-file=" + ready.string(),
                                     "--log-level=" + opt_.provisioner_log_level};
    if (opt_.workers > 0) argv.push_back(fmt::format("--workers={}", opt_.workers));
    fmt::print(stderr, "cairn: starting {}\n", Join(argv, " "));
    CAIRN_ASSIGN_OR_RETURN(provisioner_, ChildProcess::Start("cairn-provisioner", argv, prov_log_));
    CAIRN_ASSIGN_OR_RETURN(
        json r, WaitForReadyFile(*provisioner_, ready, prov_log_, std::chrono::seconds(30)));
    const std::string listen = r.value("listen", "");
    url_ = r.value("url", "");
    const size_t colon = listen.rfind(':');
    if (colon == std::string::npos || url_.empty()) {
      return Status::Internal("provisioner ready file lacks listen/url: " + r.dump());
    }
    host_ = listen.substr(0, colon);
    port_ = std::atoi(listen.c_str() + colon + 1);
    Rest rest = Client();

    // One cluster, named to every storaged.
    Reply c = rest.Call("POST", "/clusters", R"({"file":true,"block":false})");
    if (c.status != 201) return Status::Internal(Describe("POST /clusters", c));
    json cj = json::parse(c.body, nullptr, false);
    if (!cj.is_object() || !cj.contains("id") || !cj["id"].is_string()) {
      return Status::Internal("POST /clusters answered no id: " + c.body);
    }
    cluster_ = cj["id"].get<std::string>();

    // The nodes.
    const int64_t device_gib = DeviceGib();
    for (int i = 0; i < kReplica; ++i) {
      Node n;
      n.name = fmt::format("n{}", i + 1);
      n.host = fmt::format("127.0.0.{}", i + 2);
      n.dir = dir_ / n.name;
      n.device = device_root_ / n.name;
      for (const fs::path& d : {n.dir / "state", n.device}) {
        fs::create_directories(d, ec);
        if (ec) return Status::Internal("create " + d.string() + ": " + ec.message());
      }
      n.ready = n.dir / "ready.json";
      n.log = n.dir / "storaged.log";
      std::vector<std::string> sargv = {
          opt_.storaged,
          fmt::format("--listen={}:0", n.host),
          "--state-dir=" + (n.dir / "state").string(),
          "--node-name=" + n.name,
          "--brickd-listen=" + n.host + ":0",
          "--brickd=" + opt_.brickd,
          "--token-file=" + Path("data.token"),
          "--admin-token-file=" + Path("admin.token"),
          "--ready-file=" + n.ready.string(),
          "--log-level=" + opt_.log_level,
          fmt::format("--heal={}", opt_.heal ? "true" : "false"),
          "--provisioner=" + url_,
          "--join-key-file=" + Path("join.key"),
          fmt::format("--device=d1={}:{}", n.device.string(), device_gib),
          fmt::format("--zone={}", i + 1),
          "--cluster=" + cluster_};
      fmt::print(stderr, "cairn: starting {}\n", Join(sargv, " "));
      CAIRN_ASSIGN_OR_RETURN(n.storaged, ChildProcess::Start("storaged " + n.name, sargv, n.log));
      nodes_.push_back(std::move(n));
    }
    for (auto& n : nodes_) {
      CAIRN_ASSIGN_OR_RETURN(
          json sr, WaitForReadyFile(*n.storaged, n.ready, n.log, std::chrono::seconds(30)));
      n.brickd_address = sr.value("brickd", "");
      n.api = sr.value("listen", "");
      if (n.brickd_address.empty() || n.api.empty()) {
        return Status::Internal("storaged ready file lacks listen/brickd: " + sr.dump());
      }
      CAIRN_ASSIGN_OR_RETURN(std::string pid_text,
                             ReadFile((n.dir / "state" / "brickd.pid").string()));
      json pj = json::parse(pid_text, nullptr, false);
      n.brickd_pid = pj.is_object() ? pj.value("pid", 0) : 0;
      if (n.brickd_pid <= 0 ||
          Join(ProcessCmdline(n.brickd_pid), " ").find(n.dir.string() + "/") == std::string::npos) {
        return Status::Internal(
            fmt::format("{}: brickd.pid names no brickd of ours: {}", n.name, pid_text));
      }
    }
    return WaitRegistered(rest);
  }

  Rest Client() const { return Rest(host_, port_, admin_key_, opt_.tcp_nodelay); }

  struct Node {
    std::string name, host;
    fs::path dir, device, ready, log;
    std::unique_ptr<ChildProcess> storaged;
    std::string brickd_address;
    std::string api;  // storaged's gRPC API host:port
    pid_t brickd_pid = 0;
  };
  std::vector<Node>& nodes() { return nodes_; }
  pid_t provisioner_pid() const { return provisioner_ != nullptr ? provisioner_->pid() : 0; }
  const fs::path& db() const { return db_; }
  const fs::path& provisioner_log() const { return prov_log_; }
  const std::string& url() const { return url_; }

  // brickd's own list of bricks on node `n`.
  StatusOr<int> BrickdBricks(const Node& n) const {
    BrickdClient c(n.brickd_address, admin_token_, data_token_);
    CAIRN_ASSIGN_OR_RETURN(auto reply, c.ListBricks());
    return reply.bricks_size();
  }

  // One storaged RPC with the admin token (the node token the provisioner calls with): the
  // milliseconds it took.
  template <class Req, class Rep>
  StatusOr<double> NodeCall(const Node& n,
                            grpc::Status (spb::Storaged::Stub::*method)(grpc::ClientContext*,
                                                                        const Req&, Rep*),
                            const Req& req) {
    auto& stub = stubs_[n.api];
    if (stub == nullptr) {
      stub = spb::Storaged::NewStub(grpc::CreateChannel(n.api, grpc::InsecureChannelCredentials()));
    }
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + admin_token_);
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    Rep reply;
    const auto t0 = Clock::now();
    Status s = FromGrpcStatus(((*stub).*method)(&ctx, req, &reply), ctx);
    const double ms = MsBetween(t0, Clock::now());
    if (!s.ok()) return s.WithContext(n.name);
    return ms;
  }

  // SIGTERM every storaged (each must exit 0; it stops its brickd), then the provisioner (exit
  // 0); then anything still naming our directory is stopped by pid and reported. Idempotent.
  void Stop() {
    if (stopped_) return;
    stopped_ = true;
    for (auto& n : nodes_) {
      if (n.storaged == nullptr) continue;
      n.storaged->Stop(std::chrono::seconds(20));
      if (!n.storaged->ExitedCleanly()) {
        problems_.push_back(fmt::format("storaged {} (pid {}) did not exit 0 on SIGTERM: {}\n{}",
                                        n.name, n.storaged->pid(), n.storaged->Ended(),
                                        LogTail(n.log)));
      }
    }
    if (provisioner_ != nullptr) {
      provisioner_->Stop(std::chrono::seconds(20));
      if (!provisioner_->ExitedCleanly()) {
        problems_.push_back(fmt::format("cairn-provisioner (pid {}) did not exit 0 on SIGTERM: {}",
                                        provisioner_->pid(), provisioner_->Ended()));
      }
    }
    const std::string needle = dir_.string() + "/";
    for (std::string& p :
         ReapProcessesNaming(needle, 0, std::chrono::seconds(10), "its parent stopped")) {
      problems_.push_back(std::move(p));
    }
  }

  const std::vector<std::string>& problems() const { return problems_; }

  // GiB of each node's device: the volumes and the sequential ones, and some room.
  int64_t DeviceGib() const { return int64_t{opt_.volumes + opt_.sequential} * opt_.size_gib + 16; }

 private:
  std::string Path(const char* name) const { return (dir_ / name).string(); }

  // Until GET /nodes lists our three nodes, each online with its device.
  Status WaitRegistered(Rest& rest) {
    const auto deadline = Clock::now() + std::chrono::seconds(60);
    std::string last;
    for (;;) {
      CAIRN_RETURN_IF_ERROR(CheckInterrupted());
      for (auto& n : nodes_) {
        if (!n.storaged->Running()) {
          return Status::Unavailable(fmt::format("storaged {} exited ({})\n{}", n.name,
                                                 n.storaged->Ended(), LogTail(n.log)));
        }
      }
      auto list = GetJson(rest, "/nodes");
      int ready = 0;
      if (list.ok() && (*list)["nodes"].is_array()) {
        for (const auto& id : (*list)["nodes"]) {
          auto node = GetJson(rest, "/nodes/" + id.get<std::string>());
          if (!node.ok()) continue;
          const auto& devices = (*node)["devices"];
          if (node->value("state", "") == "online" && devices.is_array() && !devices.empty()) {
            ++ready;
          }
        }
        last = fmt::format("{} of {} nodes registered with a device", ready, kReplica);
      } else {
        last = list.ok() ? list->dump() : list.status().ToString();
      }
      if (ready >= kReplica) return Status::Ok();
      if (Clock::now() >= deadline) {
        return Status::DeadlineExceeded(fmt::format(
            "the nodes did not register within 60 s: {}\n{}", last, LogTail(nodes_.front().log)));
      }
      SleepMs(100);
    }
  }

  const Options& opt_;
  const fs::path dir_;
  const fs::path device_root_;
  std::string admin_token_, data_token_, admin_key_;
  fs::path prov_log_, db_;
  std::unique_ptr<ChildProcess> provisioner_;
  std::string url_, host_, cluster_;
  int port_ = 0;
  std::vector<Node> nodes_;
  std::map<std::string, std::unique_ptr<spb::Storaged::Stub>> stubs_;
  std::vector<std::string> problems_;
  bool stopped_ = false;
};

// ProbeNodes: NodeRpcTimes for `probes` volumes made and removed that way.
Status ProbeNodes(CairnCluster& cluster, int probes, const std::string& tag, int size_gib,
                  NodeRpcTimes* out) {
  std::vector<double> cb, ps, ds, db;
  auto& nodes = cluster.nodes();
  for (int k = 0; k < probes; ++k) {
    CAIRN_RETURN_IF_ERROR(CheckInterrupted());
    const std::string id = fmt::format("probe-{}-{}", tag, k + 1);
    json bricks = json::array();
    for (auto& n : nodes) {
      spb::CreateBrickRequest q;
      q.set_device_id("d1");
      q.set_brick_id(id);
      q.set_capacity_bytes(static_cast<uint64_t>(size_gib) * kGiB);
      CAIRN_ASSIGN_OR_RETURN(double ms, cluster.NodeCall(n, &spb::Storaged::Stub::CreateBrick, q));
      cb.push_back(ms);
      bricks.push_back({{"node", n.brickd_address}, {"brick_id", id}});
    }
    spb::PutVolumeSpecRequest pq;
    pq.set_spec_json(ReplicatedVolumeSpec(id, bricks).dump());
    for (auto& n : nodes) {
      CAIRN_ASSIGN_OR_RETURN(double ms,
                             cluster.NodeCall(n, &spb::Storaged::Stub::PutVolumeSpec, pq));
      ps.push_back(ms);
    }
    spb::DeleteVolumeSpecRequest dq;
    dq.set_name(id);
    for (auto& n : nodes) {
      CAIRN_ASSIGN_OR_RETURN(double ms,
                             cluster.NodeCall(n, &spb::Storaged::Stub::DeleteVolumeSpec, dq));
      ds.push_back(ms);
    }
    spb::DeleteBrickRequest bq;
    bq.set_brick_id(id);
    bq.set_force(true);
    for (auto& n : nodes) {
      CAIRN_ASSIGN_OR_RETURN(double ms, cluster.NodeCall(n, &spb::Storaged::Stub::DeleteBrick, bq));
      db.push_back(ms);
    }
  }
  out->create_brick = Summarize(cb);
  out->put_spec = Summarize(ps);
  out->delete_spec = Summarize(ds);
  out->delete_brick = Summarize(db);
  out->measured = probes > 0;
  return Status::Ok();
}

// Runs `op(client, i)` for i in [0, n) on `clients` threads (each with its own keep-alive
// connection), released together; per-item milliseconds in `ms` (by index). Returns the wall time
// in seconds.
StatusOr<double> RunBatch(const CairnCluster& cluster, int n, int clients,
                          const std::function<StatusOr<double>(Rest&, int)>& op,
                          std::vector<double>* ms, const std::string& progress) {
  ms->assign(static_cast<size_t>(n), 0);
  std::atomic<int> next{0}, done{0};
  const int every = std::max(1, n / 5);
  return RunJobs(clients, [&](int, const StopFlag& stop) -> Status {
    Rest rest = cluster.Client();
    for (;;) {
      if (stop.stopped()) return CheckInterrupted();
      const int i = next.fetch_add(1);
      if (i >= n) return Status::Ok();
      CAIRN_ASSIGN_OR_RETURN(double t, op(rest, i));
      (*ms)[static_cast<size_t>(i)] = t;
      const int d = done.fetch_add(1) + 1;
      if (d % every == 0 || d == n) fmt::print(stderr, "cairn: {} {}/{}\n", progress, d, n);
    }
  });
}

// The provisioner's own create times (event=volume_created ... ms=N) of the volumes named
// PREFIX + digits (the batch).
LatencyStats ServerCreateTimes(const fs::path& log) {
  std::vector<double> ms;
  auto text = ReadText(log.string());
  if (!text) return {};
  static const std::regex re(R"(event=volume_created volume=\S+ name=pbench-(\d+) ms=(\d+))");
  std::istringstream in(*text);
  std::string line;
  while (std::getline(in, line)) {
    std::smatch m;
    if (std::regex_search(line, m, re)) ms.push_back(std::strtod(m[2].str().c_str(), nullptr));
  }
  return Summarize(ms);
}

struct IdleReading {
  int64_t ticks0 = -1, ticks1 = -1;
};

// Reads every process's RSS/threads after `idle_ms` of idleness, and their CPU use over it.
void ReadNodes(const Options& opt, CairnCluster& cluster, CairnFigures* f, bool with_volumes) {
  auto& nodes = cluster.nodes();
  std::vector<IdleReading> sd(nodes.size()), bd(nodes.size());
  IdleReading prov;
  prov.ticks0 = CpuTicks(cluster.provisioner_pid());
  for (size_t i = 0; i < nodes.size(); ++i) {
    sd[i].ticks0 = CpuTicks(nodes[i].storaged->pid());
    bd[i].ticks0 = CpuTicks(nodes[i].brickd_pid);
  }
  const auto t0 = Clock::now();
  SleepMs(opt.idle_ms);
  const double secs = SecondsBetween(t0, Clock::now());
  prov.ticks1 = CpuTicks(cluster.provisioner_pid());
  for (size_t i = 0; i < nodes.size(); ++i) {
    auto& n = nodes[i];
    NodeFigures& nf = f->nodes[i];
    sd[i].ticks1 = CpuTicks(n.storaged->pid());
    bd[i].ticks1 = CpuTicks(n.brickd_pid);
    const int64_t brss = ProcStatusNumber(n.brickd_pid, "VmRSS");
    const int64_t bthr = ProcStatusNumber(n.brickd_pid, "Threads");
    const int64_t srss = ProcStatusNumber(n.storaged->pid(), "VmRSS");
    const int64_t sthr = ProcStatusNumber(n.storaged->pid(), "Threads");
    const double scpu = CpuPercent(sd[i].ticks0, sd[i].ticks1, secs);
    const double bcpu = CpuPercent(bd[i].ticks0, bd[i].ticks1, secs);
    if (!with_volumes) {
      nf.brickd_rss_0 = brss;
      nf.brickd_threads_0 = bthr;
      nf.storaged_rss_0 = srss;
      nf.storaged_threads_0 = sthr;
      nf.storaged_cpu_idle_0 = scpu;
      nf.brickd_cpu_idle_0 = bcpu;
    } else {
      nf.brickd_rss_n = brss;
      nf.brickd_threads_n = bthr;
      nf.storaged_rss_n = srss;
      nf.storaged_threads_n = sthr;
      nf.storaged_cpu_idle_n = scpu;
      nf.brickd_cpu_idle_n = bcpu;
    }
  }
  if (!with_volumes) {
    f->provisioner_rss_0 = ProcStatusNumber(cluster.provisioner_pid(), "VmRSS");
  } else {
    f->provisioner_rss_n = ProcStatusNumber(cluster.provisioner_pid(), "VmRSS");
    f->provisioner_cpu_idle_n = CpuPercent(prov.ticks0, prov.ticks1, secs);
  }
}

Status RunCairn(const Options& opt, CairnCluster& cluster, const fs::path& root, CairnFigures* f,
                SideReport* side) {
  CAIRN_RETURN_IF_ERROR(cluster.Start());
  auto& nodes = cluster.nodes();
  f->volumes = opt.volumes;
  f->sequential = opt.sequential;
  f->concurrency = opt.concurrency;
  f->nodes.resize(nodes.size());
  for (size_t i = 0; i < nodes.size(); ++i) {
    f->nodes[i].name = nodes[i].name;
    f->nodes[i].storaged_pid = nodes[i].storaged->pid();
    f->nodes[i].brickd_pid = nodes[i].brickd_pid;
  }
  fmt::print(stderr, "cairn: provisioner {} with 3 nodes registered; idle readings ...\n",
             cluster.url());
  ReadNodes(opt, cluster, f, /*with_volumes=*/false);
  f->measured = true;
  if (opt.node_probes > 0) {
    fmt::print(stderr, "cairn: timing storaged's RPCs, {} probe volumes, none present ...\n",
               opt.node_probes);
    CAIRN_RETURN_IF_ERROR(ProbeNodes(cluster, opt.node_probes, "0", opt.size_gib, &f->rpc_0));
  }

  // 1. The batch of creates.
  std::unique_ptr<Profiler> profiler;
  if (!opt.profile.empty()) {
    profiler = std::make_unique<Profiler>(opt.profile, root);
    Status s = profiler->Start({{"provisioner", cluster.provisioner_pid()},
                                {"storaged-n1", nodes.front().storaged->pid()}});
    if (!s.ok()) {
      side->notes.push_back("profile not recorded: " + s.ToString());
      profiler.reset();
    }
  }
  std::vector<std::string> ids(static_cast<size_t>(opt.volumes));
  std::vector<double> create_ms;
  fmt::print(stderr, "cairn: creating {} replica-3 {} GiB volumes, {} clients ...\n", opt.volumes,
             opt.size_gib, opt.concurrency);
  StatusOr<double> batch = RunBatch(
      cluster, opt.volumes, opt.concurrency,
      [&](Rest& rest, int i) -> StatusOr<double> {
        CAIRN_ASSIGN_OR_RETURN(
            auto r,
            CreateVolume(rest, fmt::format("{}{:04d}", kVolumePrefix, i + 1), opt.size_gib));
        ids[static_cast<size_t>(i)] = r.first;
        return r.second;
      },
      &create_ms, "created");
  // The profile even of a batch that failed: it says where the time went.
  if (profiler != nullptr && !Interrupted()) {
    fmt::print(stderr, "cairn: profile reports ...\n");
    f->profile = profiler->Report(18);
  }
  profiler.reset();
  CAIRN_ASSIGN_OR_RETURN(f->create_s, std::move(batch));
  f->create = Summarize(create_ms);
  {
    const size_t tenth = std::max<size_t>(1, create_ms.size() / 10);
    f->create_first = Summarize({create_ms.begin(), create_ms.begin() + tenth});
    f->create_last = Summarize({create_ms.end() - tenth, create_ms.end()});
  }
  f->create_rate = opt.volumes / f->create_s;
  f->server_create = ServerCreateTimes(cluster.provisioner_log());
  fmt::print(stderr, "cairn: {} volumes in {:.2f} s ({:.1f}/s); create→ready {}\n", opt.volumes,
             f->create_s, f->create_rate, LatencyText(f->create));

  // 2. Check: every volume ready, three bricks on three nodes; brickd serves N bricks per node.
  {
    Rest rest = cluster.Client();
    CAIRN_ASSIGN_OR_RETURN(json list, GetJson(rest, "/volumes"));
    const size_t listed = list["volumes"].is_array() ? list["volumes"].size() : 0;
    if (listed != static_cast<size_t>(opt.volumes)) {
      return Status::Internal(
          fmt::format("GET /volumes lists {} volumes, expected {}", listed, opt.volumes));
    }
    for (const auto& id : ids) {
      CAIRN_RETURN_IF_ERROR(CheckInterrupted());
      CAIRN_ASSIGN_OR_RETURN(json v, GetJson(rest, "/volumes/" + id));
      std::set<std::string> brick_nodes;
      if (v["bricks"].is_array()) {
        for (const auto& b : v["bricks"]) brick_nodes.insert(b.value("node", ""));
      }
      if (v.value("state", "") != "ready" || brick_nodes.size() != static_cast<size_t>(kReplica)) {
        return Status::Internal("volume not ready on three nodes: " + v.dump());
      }
    }
    for (size_t i = 0; i < nodes.size(); ++i) {
      CAIRN_ASSIGN_OR_RETURN(f->nodes[i].bricks_listed_n, cluster.BrickdBricks(nodes[i]));
      if (f->nodes[i].bricks_listed_n != opt.volumes) {
        return Status::Internal(fmt::format("brickd of {} lists {} bricks, expected {}",
                                            nodes[i].name, f->nodes[i].bricks_listed_n,
                                            opt.volumes));
      }
    }
  }

  // 3. Memory and processes with the N volumes present (idle).
  fmt::print(stderr, "cairn: {} volumes present; idle readings ...\n", opt.volumes);
  ReadNodes(opt, cluster, f, /*with_volumes=*/true);
  bool one_each = true;
  std::vector<double> per_brick;
  for (size_t i = 0; i < nodes.size(); ++i) {
    auto& n = nodes[i];
    NodeFigures& nf = f->nodes[i];
    int count = 0;
    for (pid_t pid : ProcessesNaming(n.dir.string() + "/", 0)) {
      auto args = ProcessCmdline(pid);
      if (!args.empty() && fs::path(args[0]).filename() == "brickd") ++count;
    }
    nf.brickd_processes = count;
    one_each = one_each && count == 1;
    const fs::path state_db = n.dir / "state" / "state.db";
    const int64_t sdb = FileSize(state_db), swal = FileSize(state_db.string() + "-wal");
    nf.state_bytes_n = sdb < 0 ? -1 : sdb + std::max<int64_t>(0, swal);
    if (nf.brickd_rss_0 >= 0 && nf.brickd_rss_n >= 0) {
      nf.kib_per_brick = static_cast<double>(nf.brickd_rss_n - nf.brickd_rss_0) / opt.volumes;
      per_brick.push_back(*nf.kib_per_brick);
    }
  }
  f->one_brickd_per_node = one_each;
  if (per_brick.size() == nodes.size()) {
    f->kib_per_brick_max = *std::max_element(per_brick.begin(), per_brick.end());
    double sum = 0;
    for (double v : per_brick) sum += v;
    f->kib_per_brick_mean = sum / static_cast<double>(per_brick.size());
  }
  const int64_t db = FileSize(cluster.db()), wal = FileSize(cluster.db().string() + "-wal");
  f->db_bytes_n = db < 0 ? -1 : db + std::max<int64_t>(0, wal);

  if (opt.node_probes > 0) {
    fmt::print(stderr, "cairn: timing storaged's RPCs, {} probe volumes, {} present ...\n",
               opt.node_probes, opt.volumes);
    CAIRN_RETURN_IF_ERROR(ProbeNodes(cluster, opt.node_probes, "n", opt.size_gib, &f->rpc_n));
  }

  // 4. Sequential: one client, one volume at a time, with the N present.
  if (opt.sequential > 0) {
    fmt::print(stderr, "cairn: {} sequential creates, then {} sequential deletes ...\n",
               opt.sequential, opt.sequential);
    Rest rest = cluster.Client();
    std::vector<std::string> seq_ids;
    std::vector<double> ms;
    const auto t0 = Clock::now();
    for (int i = 0; i < opt.sequential; ++i) {
      CAIRN_RETURN_IF_ERROR(CheckInterrupted());
      CAIRN_ASSIGN_OR_RETURN(
          auto r,
          CreateVolume(rest, fmt::format("{}{:03d}", kSequentialPrefix, i + 1), opt.size_gib));
      seq_ids.push_back(r.first);
      ms.push_back(r.second);
    }
    f->create_seq_rate = opt.sequential / SecondsBetween(t0, Clock::now());
    f->create_seq = Summarize(ms);
    ms.clear();
    const auto t1 = Clock::now();
    for (const auto& id : seq_ids) {
      CAIRN_RETURN_IF_ERROR(CheckInterrupted());
      CAIRN_ASSIGN_OR_RETURN(double t, DeleteVolume(rest, id));
      ms.push_back(t);
    }
    f->delete_seq_rate = opt.sequential / SecondsBetween(t1, Clock::now());
    f->del_seq = Summarize(ms);
    fmt::print(stderr, "cairn: sequential create→ready {}\ncairn: sequential delete {}\n",
               LatencyText(f->create_seq), LatencyText(f->del_seq));
  }

  // 5. The batch of deletes.
  std::vector<double> delete_ms;
  fmt::print(stderr, "cairn: deleting the {} volumes, {} clients ...\n", opt.volumes,
             opt.concurrency);
  CAIRN_ASSIGN_OR_RETURN(f->delete_s, RunBatch(
                                          cluster, opt.volumes, opt.concurrency,
                                          [&](Rest& rest, int i) {
                                            return DeleteVolume(rest, ids[static_cast<size_t>(i)]);
                                          },
                                          &delete_ms, "deleted"));
  f->del = Summarize(delete_ms);
  f->delete_rate = opt.volumes / f->delete_s;
  fmt::print(stderr, "cairn: {} deletes in {:.2f} s ({:.1f}/s); delete {}\n", opt.volumes,
             f->delete_s, f->delete_rate, LatencyText(f->del));

  // 6. Check: nothing left.
  {
    Rest rest = cluster.Client();
    CAIRN_ASSIGN_OR_RETURN(json list, GetJson(rest, "/volumes"));
    if (!list["volumes"].is_array() || !list["volumes"].empty()) {
      return Status::Internal("volumes left after the deletes: " + list.dump().substr(0, 500));
    }
    for (size_t i = 0; i < nodes.size(); ++i) {
      CAIRN_ASSIGN_OR_RETURN(f->nodes[i].bricks_listed_after, cluster.BrickdBricks(nodes[i]));
      f->nodes[i].brickd_rss_after = ProcStatusNumber(nodes[i].brickd_pid, "VmRSS");
      if (f->nodes[i].bricks_listed_after != 0) {
        return Status::Internal(fmt::format("brickd of {} still lists {} bricks", nodes[i].name,
                                            f->nodes[i].bricks_listed_after));
      }
    }
  }
  return Status::Ok();
}

Status MeasureCairn(const Options& opt, const fs::path& root, const LoopFs* loop, CairnFigures* f,
                    SideReport* side) {
  const fs::path device_root =
      loop != nullptr && loop->active() ? loop->mountpoint() / "cairn" : root / "devices";
  CairnCluster cluster(opt, root / "cairn", device_root);
  // A device's capacity cannot exceed its file system's size.
  struct statvfs sv {};
  std::error_code ec;
  fs::create_directories(device_root, ec);
  if (::statvfs(device_root.c_str(), &sv) == 0) {
    const int64_t fs_bytes = static_cast<int64_t>(sv.f_blocks) * static_cast<int64_t>(sv.f_frsize);
    if (cluster.DeviceGib() * kGiB > fs_bytes) {
      return Status::FailedPrecondition(
          fmt::format("each device needs {} GiB but {} is only {}: raise --loop-gib",
                      cluster.DeviceGib(), device_root.string(), Bytes(fs_bytes)));
    }
  }
  f->loop_fs = loop != nullptr && loop->active()
                   ? fmt::format("devices on a {} ext4 loop file system ({})",
                                 Bytes(loop->size_bytes()), loop->device())
                   : "devices in " + device_root.string();
  side->target = fmt::format(
      "cairn-provisioner + 3 storaged/brickd on 127.0.0.2-4 (self-registered, --heal={}), {} "
      "GiB device each; {}",
      opt.heal ? "true" : "false", cluster.DeviceGib(), f->loop_fs);
  Status s = RunCairn(opt, cluster, root, f, side);
  cluster.Stop();
  for (const auto& p : cluster.problems()) side->problems.push_back(p);
  return s;
}

// ---- GlusterFS.

struct GlusterFigures {
  int volumes = 0;
  std::vector<std::string> hosts;
  LatencyStats create, start, create_start, stop_delete;
  double create_s = 0, delete_s = 0;
  double create_rate = 0, delete_rate = 0;
  std::vector<pid_t> pids_1, pids_n;
  int64_t rss_1 = -1, rss_n = -1;  // KiB, glusterfsd summed, idle
  int64_t threads_n = -1;
  int64_t fds_n = -1, fd_limit = -1;  // open descriptors of the glusterfsd(s), and the limit
  int bricks_online = -1;             // over every volume, after the last start
  std::vector<std::string> notes;
  int64_t glusterd_rss_n = -1;
  std::optional<double> kib_per_brick;
  std::string shutdown;
  bool measured = false;
};

Status RunGluster(const Options& opt, GlusterDaemon& daemon, GlusterFigures* f) {
  CAIRN_RETURN_IF_ERROR(daemon.Start());
  CAIRN_RETURN_IF_ERROR(
      daemon.CliOk({"volume", "set", "all", "cluster.brick-multiplex", "on"}).status());
  f->hosts = opt.gluster_hosts;
  if (f->hosts.empty()) f->hosts.assign(kReplica, daemon.host());
  f->volumes = opt.gluster_volumes;
  std::vector<double> create_ms, start_ms, total_ms, stop_ms;
  std::vector<std::string> names;
  const int every = std::max(1, opt.gluster_volumes / 5);
  f->measured = true;
  const auto t0 = Clock::now();
  for (int k = 0; k < opt.gluster_volumes; ++k) {
    CAIRN_RETURN_IF_ERROR(CheckInterrupted());
    const std::string name = fmt::format("pbench{:04d}", k + 1);
    std::vector<std::string> args = {"replica", std::to_string(kReplica)};
    for (int b = 0; b < kReplica; ++b) {
      const fs::path brick = daemon.dir() / "bricks" / fmt::format("n{}", b + 1) / name;
      std::error_code ec;
      fs::create_directories(brick, ec);
      if (ec) return Status::Internal("create " + brick.string() + ": " + ec.message());
      args.push_back(f->hosts[static_cast<size_t>(b)] + ":" + brick.string());
    }
    // `force`: three replicas on one machine.
    args.push_back("force");
    if (k == 0) fmt::print(stderr, "gluster: gluster volume create {} {}\n", name, Join(args, " "));
    CAIRN_ASSIGN_OR_RETURN(CommandResult created, daemon.CreateVolume(name, args));
    names.push_back(name);
    CAIRN_ASSIGN_OR_RETURN(CommandResult started, daemon.StartVolume(name));
    create_ms.push_back(created.ms());
    start_ms.push_back(started.ms());
    total_ms.push_back(created.ms() + started.ms());
    if (k == 0) {
      // The first volume: its bricks online, then the idle RSS of the brick process(es).
      const auto paused = Clock::now();
      CAIRN_RETURN_IF_ERROR(daemon.WaitForBricksOnline(name, kReplica, std::chrono::seconds(60)));
      SleepMs(opt.idle_ms);
      f->pids_1 = daemon.BrickProcesses();
      f->rss_1 = SumProcStatus(f->pids_1, "VmRSS");
      fmt::print(stderr, "gluster: first volume's bricks online; glusterfsd RSS {} KiB\n",
                 f->rss_1);
      // Not part of the batch's time.
      f->create_s -= SecondsBetween(paused, Clock::now());
    }
    if ((k + 1) % every == 0 || k + 1 == opt.gluster_volumes) {
      fmt::print(stderr, "gluster: created+started {}/{} (last {:.1f} ms)\n", k + 1,
                 opt.gluster_volumes, created.ms() + started.ms());
    }
  }
  f->create_s += SecondsBetween(t0, Clock::now());
  f->create_rate = opt.gluster_volumes / f->create_s;
  f->create = Summarize(create_ms);
  f->start = Summarize(start_ms);
  f->create_start = Summarize(total_ms);
  // The last volume's bricks online; a brick that does not come online (glusterfsd out of
  // descriptors, say) is counted and noted, not an error: the figures are per online brick.
  if (Status online = daemon.WaitForBricksOnline(names.back(), kReplica, std::chrono::seconds(60));
      !online.ok()) {
    CAIRN_RETURN_IF_ERROR(CheckInterrupted());
    f->notes.push_back(online.message());
  }
  f->bricks_online = 0;
  for (const auto& name : names) {
    CAIRN_ASSIGN_OR_RETURN(auto bricks, daemon.BrickStatus(name));
    for (const auto& b : bricks) f->bricks_online += b.online ? 1 : 0;
  }
  if (f->bricks_online < opt.gluster_volumes * kReplica) {
    f->notes.push_back(fmt::format("{} of the {} bricks online after the last volume start",
                                   f->bricks_online, opt.gluster_volumes * kReplica));
  }
  SleepMs(opt.idle_ms);
  CAIRN_RETURN_IF_ERROR(CheckInterrupted());
  f->pids_n = daemon.BrickProcesses();
  f->rss_n = SumProcStatus(f->pids_n, "VmRSS");
  f->threads_n = SumProcStatus(f->pids_n, "Threads");
  for (pid_t pid : f->pids_n) {
    f->fds_n = std::max<int64_t>(0, f->fds_n) + std::max<int64_t>(0, OpenFds(pid));
    f->fd_limit = FdLimit(pid);
  }
  f->glusterd_rss_n = ProcStatusNumber(daemon.pid(), "VmRSS");
  if (f->bricks_online > kReplica && f->rss_1 >= 0 && f->rss_n >= 0) {
    f->kib_per_brick =
        static_cast<double>(f->rss_n - f->rss_1) / static_cast<double>(f->bricks_online - kReplica);
  }
  fmt::print(stderr, "gluster: {} volumes: {} glusterfsd, RSS {} KiB; stopping and deleting ...\n",
             opt.gluster_volumes, f->pids_n.size(), f->rss_n);
  const auto t1 = Clock::now();
  while (!names.empty()) {
    CAIRN_RETURN_IF_ERROR(CheckInterrupted());
    const std::string name = names.back();
    CAIRN_ASSIGN_OR_RETURN(CommandResult stopped, daemon.StopVolume(name));
    CAIRN_ASSIGN_OR_RETURN(CommandResult deleted, daemon.DeleteVolume(name));
    names.pop_back();
    stop_ms.push_back(stopped.ms() + deleted.ms());
  }
  f->delete_s = SecondsBetween(t1, Clock::now());
  f->delete_rate = opt.gluster_volumes / f->delete_s;
  f->stop_delete = Summarize(stop_ms);
  return Status::Ok();
}

Status MeasureGluster(const Options& opt, const fs::path& root, const LoopFs* loop,
                      GlusterFigures* f, SideReport* side) {
  CAIRN_RETURN_IF_ERROR(CheckNoOtherGlusterd(""));
  const fs::path dir =
      loop != nullptr && loop->active() ? loop->mountpoint() / "gluster" : root / "gluster";
  GlusterDaemon daemon(opt.gluster, dir);
  side->target = fmt::format(
      "private glusterd, cluster.brick-multiplex on, replica-3 volumes on bricks {} ({})",
      opt.gluster_hosts.empty() ? "HOST:B1 HOST:B2 HOST:B3" : Join(opt.gluster_hosts, ", "),
      loop != nullptr && loop->active() ? "on the same loop file system" : dir.string());
  Status s = RunGluster(opt, daemon, f);
  for (const auto& n : f->notes) side->notes.push_back(n);
  if (f->fds_n >= 0 && f->fd_limit > 0 && f->fds_n * 100 >= f->fd_limit * 95) {
    // A multiplexed glusterfsd holds a few hundred descriptors per brick; glusterd asks for
    // 65536 ("ulimit -n") and keeps the inherited limit if it may not raise it.
    side->notes.push_back(fmt::format(
        "glusterfsd holds {} file descriptors, its limit is {}: brick attaches to it fail once "
        "it is full, and glusterd then waits for each (`volume start` takes ~60 s)",
        f->fds_n, f->fd_limit));
  }
  daemon.Stop(&f->shutdown);
  for (const auto& p : daemon.problems()) side->problems.push_back(p);
  return s;
}

// ---- Preflight.

Status Preflight(const Options& opt) {
  if (::geteuid() != 0) {
    return Status::PermissionDenied(
        "provisioner_bench needs root (loop device and mount, glusterd): run it as root");
  }
  if (opt.run_cairn) {
    const std::string build =
        " (build them: cmake --build BUILD --target cairn-provisioner storaged brickd, or "
        "bench/provisioner_bench.sh)";
    CAIRN_RETURN_IF_ERROR(CheckExecutable(opt.provisioner, "cairn-provisioner", build));
    CAIRN_RETURN_IF_ERROR(CheckExecutable(opt.storaged, "storaged", build));
    CAIRN_RETURN_IF_ERROR(CheckExecutable(opt.brickd, "brickd", build));
  }
  return Status::Ok();
}

// ---- Report.

std::string Ms(const LatencyStats& s, double v) {
  return s.n == 0 ? "-" : fmt::format("{:.1f} ms", v);
}

std::string Verdict(std::optional<bool> pass) { return pass ? (*pass ? "PASS" : "MISS") : ""; }

json CairnJson(const CairnFigures& f, const SideReport& side) {
  json out = SideReportJson(side);
  if (!f.measured) return out;
  json nodes = json::array();
  for (const auto& n : f.nodes) {
    nodes.push_back({{"name", n.name},
                     {"storaged_pid", n.storaged_pid},
                     {"brickd_pid", n.brickd_pid},
                     {"brickd_processes", n.brickd_processes},
                     {"brickd_rss_kib_0", OptInt(n.brickd_rss_0)},
                     {"brickd_rss_kib_n", OptInt(n.brickd_rss_n)},
                     {"brickd_rss_kib_after_delete", OptInt(n.brickd_rss_after)},
                     {"brickd_kib_per_brick", OptJson(n.kib_per_brick, 2)},
                     {"brickd_threads_0", OptInt(n.brickd_threads_0)},
                     {"brickd_threads_n", OptInt(n.brickd_threads_n)},
                     {"storaged_rss_kib_0", OptInt(n.storaged_rss_0)},
                     {"storaged_rss_kib_n", OptInt(n.storaged_rss_n)},
                     {"storaged_threads_0", OptInt(n.storaged_threads_0)},
                     {"storaged_threads_n", OptInt(n.storaged_threads_n)},
                     {"storaged_cpu_idle_pct_0", Round(n.storaged_cpu_idle_0, 1)},
                     {"storaged_cpu_idle_pct_n", Round(n.storaged_cpu_idle_n, 1)},
                     {"brickd_cpu_idle_pct_0", Round(n.brickd_cpu_idle_0, 1)},
                     {"brickd_cpu_idle_pct_n", Round(n.brickd_cpu_idle_n, 1)},
                     {"bricks_listed_n", n.bricks_listed_n},
                     {"bricks_listed_after_delete", n.bricks_listed_after},
                     {"state_db_bytes_n", OptInt(n.state_bytes_n)}});
  }
  out["volumes"] = f.volumes;
  out["concurrency"] = f.concurrency;
  out["sequential"] = f.sequential;
  out["create"] = LatencyJson(f.create);
  out["create_s"] = Round(f.create_s, 3);
  out["create_first_tenth"] = LatencyJson(f.create_first);
  out["create_last_tenth"] = LatencyJson(f.create_last);
  out["volumes_per_s"] = Round(f.create_rate, 2);
  out["provisioner_create_op"] = LatencyJson(f.server_create);
  out["create_sequential"] = LatencyJson(f.create_seq);
  out["volumes_per_s_sequential"] = Round(f.create_seq_rate, 2);
  out["delete"] = LatencyJson(f.del);
  out["delete_s"] = Round(f.delete_s, 3);
  out["deletes_per_s"] = Round(f.delete_rate, 2);
  out["delete_sequential"] = LatencyJson(f.del_seq);
  out["deletes_per_s_sequential"] = Round(f.delete_seq_rate, 2);
  out["brickd_kib_per_brick_max"] = OptJson(f.kib_per_brick_max, 2);
  out["brickd_kib_per_brick_mean"] = OptJson(f.kib_per_brick_mean, 2);
  out["one_brickd_per_node"] = f.one_brickd_per_node ? json(*f.one_brickd_per_node) : json(nullptr);
  out["provisioner_rss_kib_0"] = OptInt(f.provisioner_rss_0);
  out["provisioner_rss_kib_n"] = OptInt(f.provisioner_rss_n);
  out["provisioner_cpu_idle_pct_n"] = Round(f.provisioner_cpu_idle_n, 1);
  out["provisioner_db_bytes_n"] = OptInt(f.db_bytes_n);
  out["nodes"] = nodes;
  out["storage"] = f.loop_fs;
  auto rpc_json = [](const NodeRpcTimes& t) -> json {
    if (!t.measured) return nullptr;
    return {{"create_brick", LatencyJson(t.create_brick)},
            {"put_volume_spec", LatencyJson(t.put_spec)},
            {"delete_volume_spec", LatencyJson(t.delete_spec)},
            {"delete_brick", LatencyJson(t.delete_brick)}};
  };
  out["storaged_rpcs_0"] = rpc_json(f.rpc_0);
  out["storaged_rpcs_n"] = rpc_json(f.rpc_n);
  if (!f.profile.empty()) out["profile"] = f.profile;
  return out;
}

json GlusterJson(const GlusterFigures& f, const SideReport& side) {
  json out = SideReportJson(side);
  if (!f.measured) return out;
  out["volumes"] = f.volumes;
  out["brick_hosts"] = f.hosts;
  out["create"] = LatencyJson(f.create);
  out["start"] = LatencyJson(f.start);
  out["create_start"] = LatencyJson(f.create_start);
  out["volumes_per_s"] = Round(f.create_rate, 2);
  out["stop_delete"] = LatencyJson(f.stop_delete);
  out["deletes_per_s"] = Round(f.delete_rate, 2);
  out["glusterfsd_processes_1"] = f.pids_1.size();
  out["glusterfsd_processes_n"] = f.pids_n.size();
  out["glusterfsd_pids"] = PidsJson(f.pids_n);
  out["glusterfsd_rss_kib_1"] = OptInt(f.rss_1);
  out["glusterfsd_rss_kib_n"] = OptInt(f.rss_n);
  out["glusterfsd_threads_n"] = OptInt(f.threads_n);
  out["glusterfsd_fds_n"] = OptInt(f.fds_n);
  out["bricks_online"] = f.bricks_online;
  out["glusterfsd_fd_limit"] = OptInt(f.fd_limit);
  out["glusterfsd_kib_per_brick"] = OptJson(f.kib_per_brick, 2);
  out["glusterd_rss_kib_n"] = OptInt(f.glusterd_rss_n);
  out["glusterd_shutdown"] = f.shutdown;
  return out;
}

int Main(int argc, char** argv) {
  InstallSignalThread("provisioner_bench");
  Flags flags("provisioner_bench",
              "Volume create/delete through cairn-provisioner's REST API on a 3-node local "
              "cluster (latency, volumes/s, brickd RSS per brick), GlusterFS volume create+start "
              "side by side.");
  flags.AddInt("volumes", 500, "replica-3 volumes created (then deleted) in the batch");
  flags.AddInt("concurrency", 4, "REST clients running the batch's creates and deletes");
  flags.AddInt("sequential", 50,
               "volumes then created and deleted one at a time by one client (0: none)");
  flags.AddInt("size-gib", 1, "size of each volume (GiB)");
  flags.AddInt("gluster-volumes", 50, "GlusterFS replica-3 volumes created+started");
  flags.AddString("gluster-brick-hosts", "",
                  "the three GlusterFS brick hosts, comma-separated (empty: the private glusterd's "
                  "host three times; other hosts only work if glusterd listens there too: a brick "
                  "process fetches its volfile from its brick's host)");
  flags.AddInt("idle-ms", 1000, "pause before the idle RSS/CPU readings");
  flags.AddInt("node-probes", 10,
               "volumes whose storaged RPCs (CreateBrick, PutVolumeSpec, DeleteVolumeSpec, "
               "DeleteBrick) are timed one by one, directly, with 0 and with N volumes (0: none)");
  flags.AddInt("loop-gib", 2048,
               "size of the sparse ext4 loop file system the devices and bricks live on (0: none; "
               "the devices then go in the temporary directory)");
  flags.AddInt("workers", 0, "cairn-provisioner --workers (0: its default)");
  flags.AddBool("tcp-nodelay", true,
                "TCP_NODELAY on the REST clients' connections (as Go's net/http and curl do)");
  flags.AddBool("heal", true, "storaged --heal (the self-heal daemon, a healer per volume)");
  flags.AddString("profile", "",
                  "profile the provisioner and storaged n1 during the batch create: cpu (perf "
                  "record -g) or syscalls (strace -f -c -w; slows them down)");
  flags.AddString("provisioner", CAIRN_PROVISIONER_DEFAULT_PATH, "cairn-provisioner executable");
  flags.AddString("storaged", CAIRN_STORAGED_DEFAULT_PATH, "storaged executable");
  flags.AddString("brickd", CAIRN_BRICKD_DEFAULT_PATH, "brickd executable (given to storaged)");
  flags.AddString("log-level", "warn", "storaged (and brickd) --log-level");
  flags.AddString("provisioner-log-level", "info",
                  "cairn-provisioner --log-level (info: its per-operation times are read back)");
  flags.AddBool(
      "quick", false,
      "smoke run: --volumes 50 --sequential 10 --gluster-volumes 10 (explicit flags win)");
  flags.AddString("only", "both", "cairn, gluster or both");
  flags.AddBool(
      "keep", false,
      "keep the temporary directory (state, logs, profiles) and the loop image (unmounted); "
      "processes are stopped and the loop file system unmounted regardless");
  flags.AddString("json", "", "also write the JSON result to this file");
  flags.AddString("workdir", "/tmp",
                  "directory in which a fresh temporary directory is made (removed at exit)");
  AddGlusterFlags(flags, /*fuse_client=*/false);
  if (auto exit_code = ParseFlagsOrExit(flags, argc, argv)) return *exit_code;

  Options opt;
  opt.quick = flags.GetBool("quick");
  auto sized = [&](const char* name, int64_t quick_value) {
    const int64_t v = opt.quick && !flags.IsSet(name) ? quick_value : flags.GetInt(name);
    return static_cast<int>(std::clamp<int64_t>(v, -1, 1'000'000));
  };
  opt.volumes = sized("volumes", 50);
  opt.sequential = sized("sequential", 10);
  opt.gluster_volumes = sized("gluster-volumes", 10);
  opt.concurrency = sized("concurrency", 4);
  opt.size_gib = sized("size-gib", 1);
  opt.idle_ms = sized("idle-ms", 1000);
  opt.node_probes = sized("node-probes", 10);
  opt.workers = sized("workers", 0);
  opt.loop_gib = flags.GetInt("loop-gib");
  opt.heal = flags.GetBool("heal");
  opt.tcp_nodelay = flags.GetBool("tcp-nodelay");
  opt.profile = flags.GetString("profile");
  opt.provisioner = flags.GetString("provisioner");
  opt.storaged = flags.GetString("storaged");
  opt.brickd = flags.GetString("brickd");
  opt.log_level = flags.GetString("log-level");
  opt.provisioner_log_level = flags.GetString("provisioner-log-level");
  opt.keep = flags.GetBool("keep");
  opt.json_file = flags.GetString("json");
  opt.workdir = flags.GetString("workdir");
  opt.gluster = GlusterOptionsFromFlags(flags, /*fuse_client=*/false);
  for (auto& h : SplitWhitespace(
           std::regex_replace(flags.GetString("gluster-brick-hosts"), std::regex(","), " "))) {
    opt.gluster_hosts.push_back(h);
  }
  if (!ParseOnly(flags.GetString("only"), &opt.run_cairn, &opt.run_gluster)) return 2;
  if (opt.volumes < 1 || opt.concurrency < 1 || opt.sequential < 0 || opt.size_gib < 1 ||
      opt.gluster_volumes < 1 || opt.idle_ms < 0 || opt.node_probes < 0 || opt.workers < 0 ||
      opt.loop_gib < 0 ||
      (!opt.gluster_hosts.empty() && opt.gluster_hosts.size() != static_cast<size_t>(kReplica)) ||
      (opt.profile != "" && opt.profile != "cpu" && opt.profile != "syscalls")) {
    fmt::print(stderr,
               "provisioner_bench: --volumes, --concurrency, --size-gib and --gluster-volumes must "
               "be >= 1, --sequential, --idle-ms, --node-probes, --workers, --loop-gib >= 0, "
               "--gluster-brick-hosts three hosts (or empty), --profile cpu or syscalls\n");
    return 2;
  }

  const std::string sizes = fmt::format(
      "Cairn: {} replica-3 {} GiB volumes by {} clients, then {} sequential, then the {} deleted "
      "by {} clients; GlusterFS: {} replica-3 volumes created+started, one at a time",
      opt.volumes, opt.size_gib, opt.concurrency, opt.sequential, opt.volumes, opt.concurrency,
      opt.gluster_volumes);
  RunFrame run;
  // "glusterd" for the version: this benchmark needs no FUSE client.
  if (auto exit_code = OpenRun(Preflight(opt), opt.workdir, "cairn-provisioner-bench", opt.keep,
                               opt.run_gluster ? opt.gluster.gluster_cli : "", sizes, &run)) {
    return *exit_code;
  }
  // Destroyed before `run` (declared after it): the temporary directory is never removed while
  // the loop file system is mounted in it.
  LoopFs loop;
  std::vector<std::string> loop_problems;
  SideReport cairn_side, gluster_side;
  cairn_side.name = "cairn";
  gluster_side.name = "gluster";
  CairnFigures cairn;
  GlusterFigures gluster;
  std::string gluster_skipped;
  Status loop_status = Status::Ok();
  if (opt.loop_gib > 0) {
    loop_status = loop.Create(run.root() / "fs.img", run.root() / "fs", opt.loop_gib);
    if (!loop_status.ok()) {
      fmt::print(stderr, "provisioner_bench: loop file system: {}\n", loop_status.ToString());
    }
  }
  if (loop_status.ok()) {
    MeasureSide(&cairn_side, opt.run_cairn, [&] {
      return MeasureCairn(opt, run.root(), opt.loop_gib > 0 ? &loop : nullptr, &cairn, &cairn_side);
    });
    if (opt.run_gluster) {
      if (Status inst = CheckGlusterInstalled(opt.gluster, /*fuse_client=*/false, ""); !inst.ok()) {
        gluster_skipped =
            "GlusterFS is not available (" + inst.message() + "); Cairn's figures only";
        fmt::print(stderr, "gluster: {}\n", gluster_skipped);
      } else {
        MeasureSide(&gluster_side, true, [&] {
          return MeasureGluster(opt, run.root(), opt.loop_gib > 0 ? &loop : nullptr, &gluster,
                                &gluster_side);
        });
      }
    }
  } else {
    cairn_side.measured = opt.run_cairn;
    cairn_side.error = "loop file system: " + loop_status.ToString();
  }
  const int64_t loop_disk = loop.DiskUsage();
  loop.Remove(&loop_problems, opt.keep);
  for (const auto& p : loop_problems) cairn_side.problems.push_back("loop fs: " + p);
  if (Interrupted()) {
    fmt::print(stderr, "provisioner_bench: {}\n", CheckInterrupted().ToString());
    return 130;
  }

  // ---- The report.
  fmt::print("\nprovisioner_bench: Cairn vs {}, same run, same machine ({})\n", run.gluster_title,
             run.machine.Describe());
  fmt::print("  {:<16}{}\n", "sizes", run.sizes);
  PrintSide("Cairn", cairn_side);
  if (!gluster_skipped.empty()) {
    fmt::print("  {:<16}{}\n", run.gluster_title, gluster_skipped);
  } else {
    PrintSide(run.gluster_title, gluster_side);
  }
  if (loop_disk >= 0) {
    fmt::print("  {:<16}the sparse image occupied {} of disk at the end\n", "", Bytes(loop_disk));
  }

  const bool have_c = cairn.measured && cairn_side.error.empty();
  const bool have_g = gluster.measured && gluster_side.error.empty();
  std::optional<bool> p50_pass, p50_seq_pass, rate_pass, rss_pass, one_pass;
  if (have_c) {
    p50_pass = cairn.create.p50 <= kTargetP50Ms;
    if (cairn.create_seq.n > 0) p50_seq_pass = cairn.create_seq.p50 <= kTargetP50Ms;
    rate_pass = cairn.create_rate >= kTargetVolumesPerS;
    if (cairn.kib_per_brick_max) rss_pass = *cairn.kib_per_brick_max <= kTargetKibPerBrick;
    one_pass = cairn.one_brickd_per_node;
  }
  auto ratio = [](double a, double b) -> std::optional<double> {
    if (b <= 0) return std::nullopt;
    return a / b;
  };
  std::optional<double> r_p50, r_p99, r_rate, r_del_p50, r_del_rate, r_rss;
  if (have_c && have_g) {
    const LatencyStats& c_seq = cairn.create_seq.n > 0 ? cairn.create_seq : cairn.create;
    const LatencyStats& d_seq = cairn.del_seq.n > 0 ? cairn.del_seq : cairn.del;
    r_p50 = ratio(c_seq.p50, gluster.create_start.p50);
    r_p99 = ratio(c_seq.p99, gluster.create_start.p99);
    r_rate = ratio(cairn.create_rate, gluster.create_rate);
    r_del_p50 = ratio(d_seq.p50, gluster.stop_delete.p50);
    r_del_rate = ratio(cairn.delete_rate, gluster.delete_rate);
    if (cairn.kib_per_brick_mean && gluster.kib_per_brick && *gluster.kib_per_brick > 0) {
      r_rss = *cairn.kib_per_brick_mean / *gluster.kib_per_brick;
    }
  }

  const Table table({44, 24, 22, 14, 0});
  auto rtext = [](const std::optional<double>& r) {
    return r ? fmt::format("{:.3f}x", *r) : std::string("-");
  };
  auto rate = [](bool have, double v) { return have ? fmt::format("{:.1f}/s", v) : "-"; };
  const bool seq = have_c && cairn.create_seq.n > 0;
  fmt::print("\n");
  table.PrintHeader({"", "Cairn", run.gluster_title, "Cairn/Gluster", "target"});
  if (have_c || have_g) {
    table.Print(
        {"batch create",
         have_c ? fmt::format("{} vols, {} clients", cairn.volumes, cairn.concurrency) : "-",
         have_g ? fmt::format("{} vols, one at a time", gluster.volumes) : "-", "", ""});
    table.Print({"  create→ready p50", have_c ? Ms(cairn.create, cairn.create.p50) : "-", "", "",
                 fmt::format("<= {:g} ms {}", kTargetP50Ms, Verdict(p50_pass))});
    table.Print(
        {"  create→ready p99 / max",
         have_c ? fmt::format("{:.1f} / {:.1f} ms", cairn.create.p99, cairn.create.max) : "-", "",
         "", ""});
    table.Print(
        {"  p50, first / last tenth of the batch",
         have_c ? fmt::format("{:.1f} / {:.1f} ms", cairn.create_first.p50, cairn.create_last.p50)
                : "-",
         "", "", ""});
    table.Print(
        {"  provisioner's own op time p50 / p99",
         have_c && cairn.server_create.n > 0
             ? fmt::format("{:.0f} / {:.0f} ms", cairn.server_create.p50, cairn.server_create.p99)
             : "-",
         "", "", ""});
    table.Print({"  volumes/s (whole batch)", rate(have_c, cairn.create_rate),
                 rate(have_g, gluster.create_rate), rtext(r_rate),
                 fmt::format(">= {:g}/s {}", kTargetVolumesPerS, Verdict(rate_pass))});
    table.Print({"batch delete", "", "", "", ""});
    table.Print({"  delete p50 / p99",
                 have_c ? fmt::format("{:.1f} / {:.1f} ms", cairn.del.p50, cairn.del.p99) : "-", "",
                 "", ""});
    table.Print({"  deletes/s (whole batch)", rate(have_c, cairn.delete_rate),
                 rate(have_g, gluster.delete_rate), rtext(r_del_rate), ""});
    table.Print({"one client, one at a time",
                 seq ? fmt::format("{} vols, {} present", cairn.create_seq.n, cairn.volumes) : "-",
                 have_g ? fmt::format("{} vols", gluster.volumes) : "-", "", ""});
    table.Print({"  create→ready p50 (GlusterFS: create+start)",
                 seq ? Ms(cairn.create_seq, cairn.create_seq.p50) : "-",
                 have_g ? Ms(gluster.create_start, gluster.create_start.p50) : "-", rtext(r_p50),
                 seq ? fmt::format("<= {:g} ms {}", kTargetP50Ms, Verdict(p50_seq_pass)) : ""});
    table.Print({"  create→ready p99", seq ? Ms(cairn.create_seq, cairn.create_seq.p99) : "-",
                 have_g ? Ms(gluster.create_start, gluster.create_start.p99) : "-", rtext(r_p99),
                 ""});
    table.Print({"  volumes/s", rate(seq, cairn.create_seq_rate), rate(have_g, gluster.create_rate),
                 "", ""});
    table.Print(
        {"  delete p50 (GlusterFS: stop+delete)", seq ? Ms(cairn.del_seq, cairn.del_seq.p50) : "-",
         have_g ? Ms(gluster.stop_delete, gluster.stop_delete.p50) : "-", rtext(r_del_p50), ""});
    table.Print({"  delete p99", seq ? Ms(cairn.del_seq, cairn.del_seq.p99) : "-",
                 have_g ? Ms(gluster.stop_delete, gluster.stop_delete.p99) : "-", "", ""});
    table.Print({"memory", "", "", "", ""});
    table.Print(
        {"  brick process RSS per brick",
         have_c && cairn.kib_per_brick_max
             ? fmt::format("{:.1f} KiB (worst node)", *cairn.kib_per_brick_max)
             : "-",
         have_g && gluster.kib_per_brick ? fmt::format("{:.1f} KiB", *gluster.kib_per_brick) : "-",
         rtext(r_rss), fmt::format("<= {:g} KiB {}", kTargetKibPerBrick, Verdict(rss_pass))});
    int brickds = 0;
    for (const auto& n : cairn.nodes) brickds += std::max(0, n.brickd_processes);
    table.Print({"  brick processes", have_c ? fmt::format("{} brickd (3 nodes)", brickds) : "-",
                 have_g ? fmt::format("{} glusterfsd", gluster.pids_n.size()) : "-", "",
                 fmt::format("1 per node {}", Verdict(one_pass))});
    if (have_g) {
      table.Print({"  glusterfsd RSS, 1 vol / all vols", "",
                   fmt::format("{} / {} KiB", gluster.rss_1, gluster.rss_n), "", ""});
      table.Print({"  glusterd RSS, all vols", "", Kib(gluster.glusterd_rss_n), "", ""});
      table.Print({"  glusterfsd open fds / limit", "",
                   fmt::format("{} / {}", gluster.fds_n, gluster.fd_limit), "", ""});
    }
  }
  if (have_c) {
    fmt::print(
        "\n  Cairn per node, idle readings with 0 and with {} volumes (CPU: % of one core "
        "over {} ms)\n",
        cairn.volumes, opt.idle_ms);
    const Table nt({10, 24, 16, 24, 18, 18, 12});
    nt.PrintHeader({"node", "brickd RSS 0 → N", "KiB/brick", "storaged RSS 0 → N",
                    "threads sd/bd (N)", "idle CPU sd/bd", "state.db+WAL"});
    for (const auto& n : cairn.nodes) {
      nt.Print({n.name, fmt::format("{} → {} KiB", n.brickd_rss_0, n.brickd_rss_n),
                OptNum(n.kib_per_brick, 1),
                fmt::format("{} → {} KiB", n.storaged_rss_0, n.storaged_rss_n),
                fmt::format("{} / {}", n.storaged_threads_n, n.brickd_threads_n),
                fmt::format("{:.1f}% / {:.1f}%", n.storaged_cpu_idle_n, n.brickd_cpu_idle_n),
                Bytes(n.state_bytes_n)});
    }
    if (cairn.rpc_0.measured && cairn.rpc_n.measured) {
      fmt::print(
          "  storaged RPCs, one at a time, p50 / p99 over 3 nodes x {} probes, with 0 → {} "
          "volumes present:\n",
          opt.node_probes, cairn.volumes);
      auto pair = [](const LatencyStats& a, const LatencyStats& b) {
        return fmt::format("{:.1f} / {:.1f} ms → {:.1f} / {:.1f} ms", a.p50, a.p99, b.p50, b.p99);
      };
      fmt::print("    CreateBrick {}   PutVolumeSpec {}\n",
                 pair(cairn.rpc_0.create_brick, cairn.rpc_n.create_brick),
                 pair(cairn.rpc_0.put_spec, cairn.rpc_n.put_spec));
      fmt::print("    DeleteVolumeSpec {}   DeleteBrick {}\n",
                 pair(cairn.rpc_0.delete_spec, cairn.rpc_n.delete_spec),
                 pair(cairn.rpc_0.delete_brick, cairn.rpc_n.delete_brick));
    }
    fmt::print(
        "  provisioner RSS {} → {} KiB, idle CPU {:.1f}% with {} volumes; database + WAL {}\n",
        cairn.provisioner_rss_0, cairn.provisioner_rss_n, cairn.provisioner_cpu_idle_n,
        cairn.volumes, Bytes(cairn.db_bytes_n));
    if (opt.volumes != kTargetVolumes) {
      fmt::print("  note: the targets are for {} volumes; this run made {}\n", kTargetVolumes,
                 opt.volumes);
    }
  }
  fmt::print(
      "  create→ready: POST /volumes to the 303 of its /queue/{{op}}, client side (a keep-alive "
      "connection per client);\n  GlusterFS: the `volume create` + `volume start` CLI wall clock, "
      "one volume at a time. Latency ratios compare one\n  client with one client; volumes/s and "
      "deletes/s: Cairn's batch vs GlusterFS's sequence. RSS per brick: (RSS with N\n  - RSS with "
      "0) / N per brickd (target: worst node; ratio: mean of the nodes); GlusterFS: (RSS with K "
      "volumes\n  - RSS with 1) / (bricks online - 3), glusterfsd summed. Ratios are "
      "Cairn/GlusterFS.\n");
  if (!cairn.profile.empty()) {
    fmt::print("\n  Profile of the batch create ({}):\n",
               opt.profile == "cpu" ? "perf record -g, self time"
                                    : "strace -f -c -w, wall clock summed over threads");
    for (const auto& [name, lines] : cairn.profile) {
      fmt::print("  {}:\n", name);
      for (const auto& l : lines) fmt::print("    {}\n", l);
    }
  }

  json targets = {
      {"create_p50_ms",
       {{"max", kTargetP50Ms}, {"result", p50_pass ? json(Verdict(p50_pass)) : json(nullptr)}}},
      {"create_p50_sequential_ms",
       {{"max", kTargetP50Ms},
        {"result", p50_seq_pass ? json(Verdict(p50_seq_pass)) : json(nullptr)}}},
      {"volumes_per_s",
       {{"min", kTargetVolumesPerS},
        {"result", rate_pass ? json(Verdict(rate_pass)) : json(nullptr)}}},
      {"brickd_kib_per_brick",
       {{"max", kTargetKibPerBrick},
        {"result", rss_pass ? json(Verdict(rss_pass)) : json(nullptr)}}},
      {"one_brickd_per_node", {{"result", one_pass ? json(Verdict(one_pass)) : json(nullptr)}}},
      {"volumes", kTargetVolumes}};
  json gluster_json = gluster_skipped.empty() ? GlusterJson(gluster, gluster_side)
                                              : json{{"skipped", gluster_skipped}};
  const json out = {{"benchmark", "provisioner"},
                    {"machine", run.machine.Json()},
                    {"config",
                     {{"volumes", opt.volumes},
                      {"concurrency", opt.concurrency},
                      {"sequential", opt.sequential},
                      {"size_gib", opt.size_gib},
                      {"gluster_volumes", opt.gluster_volumes},
                      {"heal", opt.heal},
                      {"tcp_nodelay", opt.tcp_nodelay},
                      {"workers", opt.workers},
                      {"node_probes", opt.node_probes},
                      {"loop_gib", opt.loop_gib},
                      {"quick", opt.quick}}},
                    {"gluster_version", run.gluster_version},
                    {"cairn", CairnJson(cairn, cairn_side)},
                    {"gluster", gluster_json},
                    {"ratios",
                     {{"create_p50_sequential", OptJson(r_p50, 4)},
                      {"create_p99_sequential", OptJson(r_p99, 4)},
                      {"volumes_per_s", OptJson(r_rate, 4)},
                      {"delete_p50_sequential", OptJson(r_del_p50, 4)},
                      {"deletes_per_s", OptJson(r_del_rate, 4)},
                      {"kib_per_brick", OptJson(r_rss, 4)}}},
                    {"targets", targets}};
  return FinishRun(out, {&cairn_side, &gluster_side}, opt.json_file);
}

}  // namespace
}  // namespace cairn::bench

int main(int argc, char** argv) { return cairn::bench::Main(argc, argv); }
