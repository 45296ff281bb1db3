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
#include <fcntl.h>
#include <spdlog/fmt/fmt.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "bench/bench_util.h"
#include "common/file_util.h"
#include "common/flags.h"
#include "common/id.h"
#include "common/status.h"

#ifndef CAIRN_BRICKD_DEFAULT_PATH
#define CAIRN_BRICKD_DEFAULT_PATH "brickd"
#endif
#ifndef CAIRN_MOUNT_DEFAULT_PATH
#define CAIRN_MOUNT_DEFAULT_PATH "cairn-mount"
#endif

namespace cairn::bench {
namespace {

constexpr char kVolumeName[] = "fsbench";
constexpr int kReplica = 3;
constexpr size_t kMiB = size_t{1} << 20;
constexpr size_t kSmallFileBytes = 4096;
constexpr size_t kBlockBytes = 4096;  // random I/O block
constexpr auto kCommandTimeout = std::chrono::minutes(30);

// ---- Options.

struct Options : CommonOptions {
  int64_t seq_mib = 1024;
  int files = 10000;
  int dirs = 2000;
  int seconds = 10;
  int jobs = 4;
  int64_t random_file_mib = 256;
  std::string cairn_dir;
  std::string gluster_dir;
  bool drop_caches = true;
  std::string brickd;
  std::string brickd_log_level;
  std::string cairn_mount;
  std::string cairn_mount_options;
  // --profile: perf (system-wide) during every measured phase; data in profile_dir.
  bool profile = false;
  std::string perf;
  fs::path profile_dir;
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
struct SideResult : SideReport {
  std::string path;  // the directory the workloads ran in
  std::string fstype;
  std::map<std::string, Figure> figures;
  // --profile: per workload key, where the CPU went (perf report lines).
  std::map<std::string, std::vector<std::string>> profiles;
};

// --profile: `perf record -a` from just before a measured phase starts until its figure is
// recorded, then `perf report` by process (thread name) and library, and by symbol. System-wide,
// because the time of a file system operation is spent in the kernel, the FUSE client and the
// brick servers at once. Thread names: cairn-mount (FUSE client, incl. its gRPC calls),
// nexting_thread and default-executo (gRPC's threads: brickd's server), glusterfs (Gluster's
// client), glusterfsd (its bricks), swapper (idle).
class PhaseProfiler {
 public:
  PhaseProfiler(const Options& opt, std::string side) : opt_(opt), side_(std::move(side)) {}
  PhaseProfiler(const PhaseProfiler&) = delete;
  PhaseProfiler& operator=(const PhaseProfiler&) = delete;
  ~PhaseProfiler() { StopPerf(); }

  // Starts recording (a recording already running is dropped).
  void Start() {
    if (!opt_.profile) return;
    StopPerf();
    data_ = opt_.profile_dir / fmt::format("{}-{}.data", side_, ++count_);
    auto child =
        ChildProcess::Start("perf", {opt_.perf, "record", "-a", "-F", "499", "-o", data_.string()},
                            opt_.profile_dir / "perf.log");
    if (!child.ok()) {
      error_ = child.status().ToString();
      return;
    }
    perf_ = std::move(*child);
    SleepMs(300);  // perf opens its per-CPU buffers before the phase starts
  }

  // Stops recording and returns the report (empty if nothing was recorded).
  std::vector<std::string> Finish() {
    if (!opt_.profile) return {};
    if (perf_ == nullptr) return {"no profile: " + (error_.empty() ? "perf not running" : error_)};
    StopPerf();
    std::vector<std::string> lines =
        PerfReportRows(opt_.perf, data_, {"--sort", "comm,dso", "--percent-limit", "2"}, 10, 110,
                       /*with_samples=*/false);
    auto syms = PerfReportRows(opt_.perf, data_, {"--sort", "sym", "--percent-limit", "1"}, 10, 110,
                               /*with_samples=*/false);
    lines.insert(lines.end(), syms.begin(), syms.end());
    std::error_code ec;
    if (!opt_.keep) fs::remove(data_, ec);
    return lines;
  }

 private:
  void StopPerf() {
    if (perf_ == nullptr) return;
    StopPerfRecord(*perf_);
    perf_.reset();
  }

  const Options& opt_;
  const std::string side_;
  std::unique_ptr<ChildProcess> perf_;
  fs::path data_;
  std::string error_;
  int count_ = 0;
};

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
    if (opt_.profile) out_->profiles[key] = profiler_.Finish();
    const Workload& w = WorkloadOf(key);
    Progress("  {:<34} {:>15}  ({} {} in {:.3f} s)", w.label, FormatValue(w, value), ops, w.counted,
             seconds);
  }

  // sync, then drops the page cache, dentries and inodes. If that is not possible (not root),
  // says so once and goes on: the figures then include cache hits.
  Status DropCaches() {
    if (!opt_.drop_caches || drop_failed_) {
      profiler_.Start();
      return CheckInterrupted();
    }
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
    // Every measured phase starts right after this.
    profiler_.Start();
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
    CAIRN_RETURN_IF_ERROR(DropCaches());
    Progress("sequential write of {} MiB ...", mib);
    auto start = Clock::now();
    CAIRN_RETURN_IF_ERROR(WriteSequentialFile(path, mib, opt_.seed));
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
      return WriteNewFile(name(j, i), data);
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
  PhaseProfiler profiler_{opt_, out_->name};
};

// Runs the workloads in a fresh directory under `base` (removed afterwards unless --keep).
Status RunWorkloads(const Options& opt, const fs::path& base, SideResult* out) {
  std::string tmpl = (base / "fs_bench.XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) return ErrnoStatus("mkdtemp", tmpl);
  const fs::path dir = tmpl;
  out->path = dir.string();
  if (auto m = MountContaining(dir)) out->fstype = m->fs_type;
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
      CAIRN_ASSIGN_OR_RETURN(json ready,
                             WaitForReadyFile(*b.proc, b.ready, b.log, std::chrono::seconds(10)));
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
    const json spec = ReplicatedVolumeSpec(kVolumeName, replicas);
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
    FuseMount::Unmount(mount_, &problems_);
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
    brick::v1::AttachReply reply;
    // Capacity 0: only the file system's limit.
    return BrickdClient(node, admin_token, "").Attach(brick_id, path, 0, &reply);
  }

  const Options& opt_;
  const fs::path dir_;
  std::vector<Brickd> brickds_;
  std::unique_ptr<FuseMount> mount_;
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
                            m ? m->fs_type : "unknown file system", m ? m->mount_point : "?");
  fmt::print(stderr, "{}: measuring {}\n", out->name, out->target);
  return RunWorkloads(opt, dir, out);
}

Status MeasureCairn(const Options& opt, const fs::path& root, SideResult* out) {
  if (!opt.cairn_dir.empty()) {
    Status s = MeasureGivenDirectory(opt, opt.cairn_dir, out);
    auto m = MountContaining(opt.cairn_dir);
    if (!m || m->fs_type.rfind("fuse.cairn", 0) != 0) {
      out->notes.push_back(
          fmt::format("--cairn-dir is on {}, not a Cairn mount: these are not "
                      "Cairn's figures",
                      m ? m->fs_type : "an unknown file system"));
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
  GlusterCluster cluster(opt.gluster, root / "gluster", kVolumeName, kReplica);
  Status s = cluster.Start(version);
  out->target = cluster.target();
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
  if (auto_cairn || auto_gluster) {
    CAIRN_RETURN_IF_ERROR(CheckRootAndFuse(
        "setting up the mounts needs root (glusterd, FUSE allow_other, dropping the page cache): "
        "run as root, or pass --cairn-dir / --gluster-dir for directories already mounted"));
  }
  if (auto_cairn) {
    CAIRN_RETURN_IF_ERROR(
        CheckExecutable(opt.brickd, "brickd",
                        " (build it: cmake --build BUILD --target brickd, or pass "
                        "--brickd=PATH)"));
    CAIRN_RETURN_IF_ERROR(CheckExecutable(
        opt.cairn_mount, "cairn-mount",
        ": the Cairn FUSE client is not built (cmake --build BUILD --target cairn-mount), or "
        "pass --cairn-mount=PATH; to measure a directory that is already mounted pass "
        "--cairn-dir=DIR, or measure GlusterFS alone with --only=gluster"));
  }
  if (auto_gluster) {
    CAIRN_RETURN_IF_ERROR(CheckGlusterClusterCanStart(
        opt.gluster, "; or pass --only=cairn, or --gluster-dir=DIR for a volume already mounted",
        ", or pass --gluster-dir"));
  }
  return Status::Ok();
}

// ---- Report.

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
  json out = SideReportJson(side);
  out["path"] = side.path;
  out["fstype"] = side.fstype;
  out["figures"] = figures;
  if (!side.profiles.empty()) out["profiles"] = side.profiles;
  return out;
}

int Main(int argc, char** argv) {
  InstallSignalThread("fs_bench");
  Flags flags("fs_bench",
              "File-system workloads on a Cairn replica-3 mount and a GlusterFS replica-3 volume, "
              "same run, side by side.");
  flags.AddInt("size-mib", 1024, "size of the sequential-I/O file (MiB)");
  flags.AddInt("files", 10000, "small files (4 KiB) to create, stat, read and delete");
  flags.AddInt("dirs", 2000, "directories to mkdir and rmdir");
  flags.AddInt("seconds", 10, "duration of each random-I/O phase (s)");
  flags.AddInt("jobs", 4, "parallel jobs (threads) for random I/O, small files and directories");
  flags.AddInt("random-file-mib", 256, "size of each job's random-I/O file (MiB)");
  flags.AddString("cairn-dir", "",
                  "run the Cairn workloads in this (already mounted) directory instead of "
                  "setting up a Cairn volume");
  flags.AddString("gluster-dir", "",
                  "run the GlusterFS workloads in this (already mounted) directory instead of "
                  "setting up a GlusterFS volume");
  flags.AddBool("drop-caches", true, "drop the page cache before each measured phase");
  flags.AddString("brickd", CAIRN_BRICKD_DEFAULT_PATH, "brickd executable");
  flags.AddString("brickd-log-level", "warn", "brickd --log-level");
  flags.AddString("cairn-mount", CAIRN_MOUNT_DEFAULT_PATH, "cairn-mount executable");
  flags.AddBool("profile", false,
                "record a system-wide CPU profile (perf) of every measured phase and print where "
                "the time went (perf slows the run a little: take figures from a run without it)");
  flags.AddString("cairn-mount-options", "",
                  "extra cairn-mount -o options, appended after token_file=...,allow_other");
  AddCommonFlags(flags,
                 "smoke-run sizes: --size-mib 64 --files 1000 --dirs 200 --seconds 2 "
                 "--random-file-mib 16 (explicit flags win)",
                 "keep the temporary directory (bricks, logs, spec) and the workload files; "
                 "processes are stopped and mounts unmounted regardless",
                 "random seed for data and offsets (0: random)");
  if (auto exit_code = ParseFlagsOrExit(flags, argc, argv)) return *exit_code;
  Options opt;
  if (!ReadCommonFlags(flags, &opt)) return 2;
  auto sized = [&](const char* name, int64_t quick_value) {
    return QuickSized(flags, opt, name, quick_value);
  };
  opt.seq_mib = sized("size-mib", 64);
  opt.files = static_cast<int>(std::clamp<int64_t>(sized("files", 1000), -1, 10'000'000));
  opt.dirs = static_cast<int>(std::clamp<int64_t>(sized("dirs", 200), -1, 10'000'000));
  opt.seconds = static_cast<int>(std::clamp<int64_t>(sized("seconds", 2), -1, 86400));
  opt.random_file_mib = sized("random-file-mib", 16);
  opt.jobs = static_cast<int>(std::clamp<int64_t>(flags.GetInt("jobs"), -1, 1024));
  opt.cairn_dir = flags.GetString("cairn-dir");
  opt.gluster_dir = flags.GetString("gluster-dir");
  opt.drop_caches = flags.GetBool("drop-caches");
  opt.brickd = flags.GetString("brickd");
  opt.brickd_log_level = flags.GetString("brickd-log-level");
  opt.cairn_mount = flags.GetString("cairn-mount");
  opt.cairn_mount_options = flags.GetString("cairn-mount-options");
  opt.profile = flags.GetBool("profile");
  if (opt.profile) {
    opt.perf = FindExecutable("perf");
    if (opt.perf.empty()) {
      fmt::print(stderr, "fs_bench: --profile needs perf (Debian: linux-perf)\n");
      return 2;
    }
    std::string tmpl = (fs::temp_directory_path() / "cairn-fs-bench-perf.XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) {
      fmt::print(stderr, "fs_bench: mkdtemp {}: {}\n", tmpl, ErrnoText(errno));
      return 2;
    }
    opt.profile_dir = tmpl;
  }
  if (opt.seq_mib < 1 || opt.seq_mib > (int64_t{1} << 24) || opt.files < opt.jobs ||
      opt.dirs < opt.jobs || opt.seconds < 1 || opt.jobs < 1 || opt.random_file_mib < 1 ||
      opt.random_file_mib > (int64_t{1} << 24)) {
    fmt::print(stderr,
               "fs_bench: --size-mib, --random-file-mib and --seconds must be >= 1, --jobs "
               ">= 1, --files and --dirs >= --jobs\n");
    return 2;
  }

  const std::string sizes = fmt::format(
      "sequential file {} MiB; random I/O {} jobs x {} MiB files, {} s each; {} x 4 KiB files "
      "and {} directories, {} jobs (one directory each); page cache {}",
      opt.seq_mib, opt.jobs, opt.random_file_mib, opt.seconds, opt.files, opt.dirs, opt.jobs,
      opt.drop_caches ? "dropped before each phase" : "NOT dropped (--no-drop-caches)");
  RunFrame run;
  SideResult cairn, gluster;
  if (auto exit_code = RunBothSides(
          Preflight(opt), opt, "cairn-fs-bench", sizes, &run, &cairn,
          [&](const RunFrame& r) { return MeasureCairn(opt, r.root(), &cairn); }, &gluster,
          [&](const RunFrame& r) {
            return MeasureGluster(opt, r.gluster_version, r.root(), &gluster);
          })) {
    return *exit_code;
  }

  // The report.
  const std::string& gluster_title = run.gluster_title;
  const Table table({34, 15, 15, 16, 8, 0});
  fmt::print("\n");
  table.Print({"workload", "Cairn", gluster_title, "Cairn/GlusterFS", "target", ""});
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
    table.Print({w.label,
                 c != nullptr ? FormatValue(w, c->value) : (cairn.measured ? "error" : "-"),
                 g != nullptr ? FormatValue(w, g->value) : (gluster.measured ? "error" : "-"),
                 ratio_text, target_text, verdict});
  }
  fmt::print(
      "  ratios: Cairn/GlusterFS for rates, GlusterFS time / Cairn time for ls -lR and "
      "find (\"x faster\")\n");
  if (passed + missed > 0) fmt::print("  targets: {} PASS, {} MISS\n", passed, missed);
  if (opt.profile) {
    fmt::print("\nprofiles (perf record -a, share of all CPU samples; swapper = idle)\n");
    for (const auto& w : kWorkloads) {
      for (const SideResult* side : {&cairn, &gluster}) {
        auto it = side->profiles.find(w.key);
        if (it == side->profiles.end()) continue;
        fmt::print("  {} / {}\n", w.label, side == &cairn ? "Cairn" : gluster_title);
        for (const auto& line : it->second) fmt::print("      {}\n", line);
      }
    }
    std::error_code ec;
    if (!opt.keep)
      fs::remove_all(opt.profile_dir, ec);
    else
      fmt::print("  perf data kept in {}\n", opt.profile_dir.string());
  }

  const json out = {{"benchmark", "fs"},
                    {"machine", run.machine.Json()},
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
                    {"gluster_version", run.gluster_version},
                    {"cairn", SideJson(cairn)},
                    {"gluster", SideJson(gluster)},
                    {"ratios", ratios},
                    {"targets", targets}};
  return FinishRun(out, {&cairn, &gluster}, opt.json_file);
}

}  // namespace
}  // namespace cairn::bench

int main(int argc, char** argv) { return cairn::bench::Main(argc, argv); }
