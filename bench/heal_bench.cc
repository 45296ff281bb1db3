// heal_bench: how long self-heal takes, and how many bytes it moves, after a replica was away —
// Cairn and GlusterFS in the same run on the same machine, with the Cairn/GlusterFS ratios and
// the target.
//
// Two scenarios, run in this order on a replica-3 volume FUSE-mounted on each side:
//
//   big file     one --size-mib (2048) file written sequentially, 1 MiB per write; at half of
//                it (after an fsync, so that exactly the first half is on all three replicas)
//                one replica is killed (SIGKILL, by pid); the second half is written, fsync'ed,
//                closed. The replica is brought back; the heal time runs from the moment it is
//                back in service to the first poll saying nothing is pending (see below).
//                Target (issue): Cairn <= 4 s; GlusterFS 10.3 took 11.5-14.8 s here.
//   small files  one replica is killed; --files (10,000) files of 4 KiB are created by --jobs
//                threads, each in its own directory (made while all replicas were up); the
//                replica is brought back; heal time as above; heal rate = files / heal time.
//
// GlusterFS: a private glusterd with a replica-3 volume of three bricks on this host, mounted
// with glusterfs (bench_util's GlusterCluster). Taking a replica away kills its glusterfsd (the
// pid `gluster volume status VOL detail` reports); bringing it back is `gluster volume start VOL
// force` until the brick is online; the self-heal daemon heals on its own. While it heals,
// `gluster volume heal VOL statistics heal-count` (the heal index entries, counted by the
// self-heal daemon) is polled; once it says 0 on every brick, `gluster volume heal VOL info
// summary` must confirm 0 with every brick Connected (heal info proper looks at and locks every
// entry, so polling it slows the heal down).
//
// Cairn: three storaged on 127.0.0.2-4 (each starts and supervises its node's brickd), a device
// and a brick on each, the volume spec stored on every node, mounted with cairn-mount. Taking a
// replica away SIGKILLs that node's storaged and its brickd; bringing it back restarts storaged
// with the same state directory (it restarts brickd on the same port and re-attaches the brick)
// until `storagectl node` says brickd is up; heal starts on its own; "heal info" is `storagectl
// heal info VOL -o json` (every brick connected, pending summed), whose healed_bytes and
// checksummed_bytes are reported.
//
// On both sides the bytes the returning brick process wrote (/proc/PID/io write_bytes) are
// reported too. Everything is unmounted, stopped by pid and removed on every exit path, Ctrl-C
// included. A benchmark, not a test: exit 0 even when the target is missed; 1 when something
// broke, 2 for bad flags, 130 when interrupted. See bench/README.md.
#include <fcntl.h>
#include <signal.h>
#include <spdlog/fmt/fmt.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
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
#include "common/status.h"

#ifndef CAIRN_BRICKD_DEFAULT_PATH
#define CAIRN_BRICKD_DEFAULT_PATH "brickd"
#endif
#ifndef CAIRN_MOUNT_DEFAULT_PATH
#define CAIRN_MOUNT_DEFAULT_PATH "cairn-mount"
#endif
#ifndef CAIRN_STORAGED_DEFAULT_PATH
#define CAIRN_STORAGED_DEFAULT_PATH "storaged"
#endif
#ifndef CAIRN_STORAGECTL_DEFAULT_PATH
#define CAIRN_STORAGECTL_DEFAULT_PATH "storagectl"
#endif

namespace cairn::bench {
namespace {

constexpr char kVolumeName[] = "healbench";
constexpr int kReplica = 3;
constexpr size_t kMiB = size_t{1} << 20;
constexpr size_t kSmallFileBytes = 4096;
// The target for the big-file heal, and GlusterFS's figure there.
constexpr double kTargetHealSeconds = 4.0;
constexpr int64_t kTargetSizeMib = 2048;
constexpr char kGlusterReference[] = "11.5-14.8 s (GlusterFS 10.3, 2 GiB, this kind of machine)";

// ---- Options.

struct Options : CommonOptions {
  int64_t size_mib = 2048;
  int files = 10000;
  int jobs = 4;
  int down_replica = 3;  // 1-based
  int poll_ms = 100;
  int heal_timeout_s = 900;
  std::string storaged;
  std::string storagectl;
  std::string brickd;
  std::string cairn_mount;
  std::string cairn_mount_source;  // "servers" or "spec"
  std::string log_level;
};

// ---- What one scenario measured on one side.

struct HealFigures {
  bool measured = false;
  int64_t items = 0;               // MiB written (big file) or files created (small files)
  double write_s = 0;              // the writes, fsync included (not a figure of merit)
  int64_t pending_before = -1;     // heal-info entries just before the replica came back
  double return_s = 0;             // from asking the replica back to it being back in service
  double heal_s = 0;               // from it being back to heal info saying 0
  int polls = 0;                   // pending-heal polls while waiting
  double poll_s_max = 0;           // the longest of them: the resolution of heal_s
  int unconfirmed = 0;             // counts of 0 that the heal info proper did not confirm
  pid_t brick_pid = 0;             // the returning brick process
  int64_t brick_write_bytes = -1;  // its /proc/PID/io write_bytes once healed
  int64_t brick_wchar = -1;        // and wchar
  // Cairn's heal info (summed over the nodes, counted from before the replica came back).
  int64_t healed_bytes = -1;
  int64_t checksummed_bytes = -1;
  int64_t healed_objects = -1;
};

struct HealSide : SideReport {
  HealFigures big, small;
};

// Heal statistics, summed over the nodes that answered (Cairn only).
struct HealCounters {
  int64_t healed_bytes = 0;
  int64_t checksummed_bytes = 0;
  int64_t healed_objects = 0;
};

// What one heal-info call says: pending entries summed over the bricks that answered, and
// whether every brick is connected (only then can nothing pending mean healed).
struct Pending {
  int64_t entries = 0;
  bool all_connected = false;
};

// ---- A replicated, mounted volume whose replica can be taken away and brought back.

class HealTarget {
 public:
  virtual ~HealTarget() = default;
  virtual const fs::path& mountpoint() const = 0;
  // Kills the replica --down-replica (SIGKILL, by pid) and waits until it is dead.
  virtual Status TakeReplicaDown() = 0;
  // Brings it back; returns once it is back in service.
  virtual Status BringReplicaBack() = 0;
  // One heal-info call (or a cheaper count of the same entries, see ConfirmHealed).
  virtual StatusOr<Pending> PendingHeals() = 0;
  // When PendingHeals is a cheaper count than the heal info proper: heal info itself, once the
  // count said 0. True iff it says 0 pending with every brick connected.
  virtual StatusOr<bool> ConfirmHealed() { return true; }
  // The returning brick process (after BringReplicaBack).
  virtual StatusOr<pid_t> ReturnedBrickPid() = 0;
  // Heal statistics, if the system reports them.
  virtual std::optional<HealCounters> Counters() { return std::nullopt; }

  // Waits (not timed: before asking the replica back) until the processes killed by
  // KillReplicaProcess are reaped. Daemons are reaped by init once they died; until then they are
  // zombies, and glusterd takes a brick whose pid file names any /proc entry, a zombie too, for
  // running (`volume start force` would not restart it).
  Status WaitReplicaReaped() {
    for (pid_t pid : killed_) {
      if (!WaitReaped(pid, std::chrono::seconds(30))) {
        CAIRN_RETURN_IF_ERROR(CheckInterrupted());
        return Status::Internal(fmt::format("the killed pid {} was not reaped within 30 s", pid));
      }
    }
    killed_.clear();
    return Status::Ok();
  }

 protected:
  // SIGKILL to `pid` (`what` names it), then waits until it is dead.
  Status KillReplicaProcess(pid_t pid, std::string_view what) {
    ::kill(pid, SIGKILL);
    killed_.push_back(pid);
    const auto deadline = Clock::now() + std::chrono::seconds(10);
    while (ProcessAlive(pid)) {
      if (Clock::now() >= deadline) {
        return Status::Internal(fmt::format("{} pid {} still alive 10 s after SIGKILL", what, pid));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return Status::Ok();
  }

 private:
  std::vector<pid_t> killed_;
};

// Polls heal info from `back` (the replica back in service) until nothing is pending.
Status WaitHealed(const Options& opt, const std::string& name, HealTarget& target,
                  Clock::time_point back, HealFigures* f) {
  const auto deadline = back + std::chrono::seconds(opt.heal_timeout_s);
  auto next_progress = Clock::now() + std::chrono::seconds(2);
  std::string last = "no answer yet";
  for (;;) {
    CAIRN_RETURN_IF_ERROR(CheckInterrupted());
    const auto t0 = Clock::now();
    auto pending = target.PendingHeals();
    const auto t1 = Clock::now();
    ++f->polls;
    f->poll_s_max = std::max(f->poll_s_max, SecondsBetween(t0, t1));
    if (pending.ok() && pending->all_connected && pending->entries == 0) {
      auto confirmed = target.ConfirmHealed();
      if (confirmed.ok() && *confirmed) {
        f->heal_s = SecondsBetween(back, t1);
        return Status::Ok();
      }
      ++f->unconfirmed;
    }
    if (!pending.ok()) {
      CAIRN_RETURN_IF_ERROR(CheckInterrupted());
      if (pending.status().code() == StatusCode::kUnimplemented) return pending.status();
      last = pending.status().ToString();
    } else {
      last = fmt::format("{} pending{}", pending->entries,
                         pending->all_connected ? "" : ", a brick not connected");
    }
    if (t1 >= next_progress) {
      fmt::print(stderr, "{}:   {:.1f} s after the return: {}\n", name, SecondsBetween(back, t1),
                 last);
      next_progress = t1 + std::chrono::seconds(2);
    }
    if (t1 >= deadline) {
      return Status::DeadlineExceeded(
          fmt::format("not healed {} s after the replica came back (--heal-timeout-s): {}",
                      opt.heal_timeout_s, last));
    }
    SleepMs(opt.poll_ms);
  }
}

// Brings the replica back, waits for the heal, and records the figures.
Status ReturnAndHeal(const Options& opt, const std::string& name, HealTarget& target,
                     HealFigures* f) {
  auto pending = target.PendingHeals();
  if (pending.ok()) f->pending_before = pending->entries;
  const std::optional<HealCounters> before = target.Counters();
  CAIRN_RETURN_IF_ERROR(target.WaitReplicaReaped());
  fmt::print(stderr, "{}: {} heal entries pending; bringing replica {} back ...\n", name,
             f->pending_before, opt.down_replica);
  const auto asked = Clock::now();
  CAIRN_RETURN_IF_ERROR(target.BringReplicaBack());
  const auto back = Clock::now();
  f->return_s = SecondsBetween(asked, back);
  fmt::print(stderr, "{}: replica {} back in {:.2f} s; waiting for 0 pending heals ...\n", name,
             opt.down_replica, f->return_s);
  CAIRN_RETURN_IF_ERROR(WaitHealed(opt, name, target, back, f));
  auto pid = target.ReturnedBrickPid();
  if (pid.ok()) {
    f->brick_pid = *pid;
    f->brick_write_bytes = ProcFieldNumber(*pid, "io", "write_bytes");
    f->brick_wchar = ProcFieldNumber(*pid, "io", "wchar");
  }
  if (auto after = target.Counters(); after && before) {
    f->healed_bytes = after->healed_bytes - before->healed_bytes;
    f->checksummed_bytes = after->checksummed_bytes - before->checksummed_bytes;
    f->healed_objects = after->healed_objects - before->healed_objects;
  }
  f->measured = true;
  fmt::print(stderr, "{}: healed in {:.2f} s ({} polls, the longest {:.2f} s)\n", name, f->heal_s,
             f->polls, f->poll_s_max);
  return Status::Ok();
}

// Scenario 1: the big file, replica killed halfway.
Status BigFile(const Options& opt, const std::string& name, HealTarget& target, HealFigures* f) {
  const std::string path = (target.mountpoint() / "heal_bench.big").string();
  const int64_t mib = opt.size_mib;
  const int64_t half = mib / 2;
  fmt::print(stderr, "{}: big file: writing {} MiB to {}, replica {} killed after {} MiB ...\n",
             name, mib, path, opt.down_replica, half);
  const auto start = Clock::now();
  CAIRN_RETURN_IF_ERROR(WriteSequentialFile(path, mib, opt.seed, [&](int64_t i, int fd) -> Status {
    if (i != half) return Status::Ok();
    if (::fsync(fd) != 0) return ErrnoStatus("fsync", path);
    CAIRN_RETURN_IF_ERROR(target.TakeReplicaDown());
    fmt::print(stderr, "{}: replica {} killed at {} MiB\n", name, opt.down_replica, i);
    return Status::Ok();
  }));
  f->write_s = SecondsBetween(start, Clock::now());
  f->items = mib;
  fmt::print(stderr, "{}: wrote {} MiB in {:.1f} s\n", name, mib, f->write_s);
  return ReturnAndHeal(opt, name, target, f);
}

// Scenario 2: small files created while the replica is away.
Status SmallFiles(const Options& opt, const std::string& name, HealTarget& target, HealFigures* f) {
  const fs::path root = target.mountpoint() / "heal_bench.small";
  std::vector<std::string> dirs;
  if (::mkdir(root.c_str(), 0755) != 0) return ErrnoStatus("mkdir", root.string());
  for (int j = 0; j < opt.jobs; ++j) {
    dirs.push_back((root / fmt::format("job{}", j)).string());
    if (::mkdir(dirs.back().c_str(), 0755) != 0) return ErrnoStatus("mkdir", dirs.back());
  }
  std::vector<char> data(kSmallFileBytes);
  FillRandom(&data, opt.seed + 1);
  CAIRN_RETURN_IF_ERROR(target.TakeReplicaDown());
  fmt::print(stderr,
             "{}: small files: replica {} killed; creating {} x {} KiB files, {} jobs ...\n", name,
             opt.down_replica, opt.files, kSmallFileBytes / 1024, opt.jobs);
  auto seconds = RunJobs(opt.jobs, [&](int j, const StopFlag& stop) -> Status {
    const int n = ItemsOf(opt.files, opt.jobs, j);
    for (int i = 0; i < n && !stop.stopped(); ++i) {
      CAIRN_RETURN_IF_ERROR(
          WriteNewFile(fmt::format("{}/f{:06d}", dirs[static_cast<size_t>(j)], i), data));
    }
    return Status::Ok();
  });
  if (!seconds.ok()) return seconds.status();
  f->write_s = *seconds;
  f->items = opt.files;
  fmt::print(stderr, "{}: created {} files in {:.1f} s\n", name, opt.files, f->write_s);
  return ReturnAndHeal(opt, name, target, f);
}

Status RunScenarios(const Options& opt, const std::string& name, HealTarget& target,
                    HealSide* side) {
  CAIRN_RETURN_IF_ERROR(BigFile(opt, name, target, &side->big));
  return SmallFiles(opt, name, target, &side->small);
}

// ---- GlusterFS.

class GlusterHealTarget : public HealTarget {
 public:
  GlusterHealTarget(const Options& opt, GlusterCluster* cluster) : opt_(opt), cluster_(cluster) {}

  const fs::path& mountpoint() const override { return cluster_->mountpoint(); }

  Status TakeReplicaDown() override {
    CAIRN_ASSIGN_OR_RETURN(auto bricks, cluster_->daemon().BrickStatus(cluster_->volume()));
    const size_t index = static_cast<size_t>(opt_.down_replica - 1);
    if (bricks.size() != static_cast<size_t>(kReplica) || !bricks[index].online ||
        bricks[index].pid <= 0) {
      return Status::Internal(
          fmt::format("volume status does not show brick {} online with a pid", index + 1));
    }
    const pid_t pid = bricks[index].pid;
    // Only ever our own brick process: a glusterfsd serving the brick under our directory.
    const auto args = ProcessCmdline(pid);
    if (args.empty() || fs::path(args[0]).filename() != "glusterfsd" ||
        Join(args, " ").find(cluster_->brick_dir(opt_.down_replica).string()) ==
            std::string::npos) {
      return Status::Internal(fmt::format("pid {} ({}) is not the glusterfsd of our brick {}", pid,
                                          Join(args, " "),
                                          cluster_->brick_dir(opt_.down_replica).string()));
    }
    return KillReplicaProcess(pid, "glusterfsd");
  }

  Status BringReplicaBack() override {
    CAIRN_RETURN_IF_ERROR(
        cluster_->daemon().StartVolume(cluster_->volume(), /*force=*/true).status());
    return cluster_->daemon().WaitForBricksOnline(cluster_->volume(), kReplica,
                                                  std::chrono::seconds(60));
  }

  // `gluster volume heal VOL statistics heal-count`: the self-heal daemon counts the entries of
  // each brick's heal index ("Number of entries: N" per brick). Cheap, unlike heal info, which
  // looks at (and locks) every entry: polled while the heal runs, it slowed the heal down.
  StatusOr<Pending> PendingHeals() override {
    CAIRN_ASSIGN_OR_RETURN(
        CommandResult r,
        cluster_->daemon().Cli({"volume", "heal", cluster_->volume(), "statistics", "heal-count"}));
    if (r.exit_code != 0) {
      return Status::Internal(
          fmt::format("'gluster volume heal {} statistics heal-count' failed "
                      "(exit {}): {}",
                      cluster_->volume(), r.exit_code, r.output));
    }
    int bricks = 0, counted = 0;
    int64_t entries = 0;
    std::istringstream in(r.output);
    std::string line;
    while (std::getline(in, line)) {
      constexpr std::string_view kEntries = "Number of entries:";
      if (line.rfind("Brick ", 0) == 0) ++bricks;
      if (line.rfind(kEntries, 0) == 0) {
        const char* value = line.c_str() + kEntries.size();
        char* end = nullptr;
        const long long n = std::strtoll(value, &end, 10);
        if (end != value && n >= 0) {
          ++counted;
          entries += n;
        }
      }
    }
    if (bricks != kReplica) {
      return Status::Internal("unexpected heal-count output: " + r.output);
    }
    return Pending{entries, counted == kReplica};
  }

  // `gluster volume heal VOL info summary`: per brick "Status: Connected" and "Total Number of
  // entries: N".
  StatusOr<bool> ConfirmHealed() override {
    CAIRN_ASSIGN_OR_RETURN(CommandResult r, cluster_->daemon().HealInfoSummary(cluster_->volume()));
    int bricks = 0, connected = 0;
    int64_t entries = 0;
    std::istringstream in(r.output);
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("Brick ", 0) == 0) ++bricks;
      if (line.rfind("Status: Connected", 0) == 0) ++connected;
      constexpr std::string_view kTotal = "Total Number of entries:";
      if (line.rfind(kTotal, 0) == 0) {
        entries += std::max<int64_t>(0, std::strtoll(line.c_str() + kTotal.size(), nullptr, 10));
      }
    }
    if (bricks != kReplica) {
      return Status::Internal("unexpected heal info summary output: " + r.output);
    }
    return connected == kReplica && entries == 0;
  }

  StatusOr<pid_t> ReturnedBrickPid() override {
    CAIRN_ASSIGN_OR_RETURN(auto bricks, cluster_->daemon().BrickStatus(cluster_->volume()));
    const size_t index = static_cast<size_t>(opt_.down_replica - 1);
    if (index >= bricks.size() || bricks[index].pid <= 0) {
      return Status::NotFound("no pid for the returned brick");
    }
    return bricks[index].pid;
  }

 private:
  const Options& opt_;
  GlusterCluster* cluster_;
};

Status MeasureGluster(const Options& opt, const std::string& version, const fs::path& root,
                      HealSide* side) {
  GlusterCluster cluster(opt.gluster, root / "gluster", kVolumeName, kReplica);
  Status s = cluster.Start(version);
  side->target = cluster.target();
  if (s.ok()) {
    GlusterHealTarget target(opt, &cluster);
    s = RunScenarios(opt, "gluster", target, side);
  }
  cluster.Stop();
  for (const auto& p : cluster.problems()) side->problems.push_back(p);
  return s;
}

// ---- Cairn: three storaged (each with its brickd) on 127.0.0.2-4, a replica-3 volume.

class CairnCluster : public HealTarget {
 public:
  CairnCluster(const Options& opt, fs::path dir) : opt_(opt), dir_(std::move(dir)) {}
  CairnCluster(const CairnCluster&) = delete;
  CairnCluster& operator=(const CairnCluster&) = delete;
  ~CairnCluster() override { Stop(); }

  // Starts the nodes, makes a device and a brick on each, stores the volume spec on every node
  // and mounts the volume.
  Status Start() {
    std::error_code ec;
    const fs::path mnt = dir_ / "mnt";
    fs::create_directories(mnt, ec);
    if (ec) return Status::Internal("create " + mnt.string() + ": " + ec.message());
    admin_file_ = dir_ / "admin.token";
    data_file_ = dir_ / "data.token";
    CAIRN_RETURN_IF_ERROR(WriteFileAtomic(admin_file_.string(), RandomHexToken(32) + "\n", 0600));
    CAIRN_RETURN_IF_ERROR(WriteFileAtomic(data_file_.string(), RandomHexToken(32) + "\n", 0600));

    for (int i = 0; i < kReplica; ++i) {
      Node n;
      n.name = fmt::format("n{}", i + 1);
      n.host = fmt::format("127.0.0.{}", i + 2);
      n.dir = dir_ / n.name;
      n.brick_id = fmt::format("hb-{}", i + 1);
      for (const fs::path& d : {n.dir / "state", n.dir / "device"}) {
        fs::create_directories(d, ec);
        if (ec) return Status::Internal("create " + d.string() + ": " + ec.message());
      }
      nodes_.push_back(std::move(n));
    }
    for (auto& n : nodes_) CAIRN_RETURN_IF_ERROR(StartStoraged(n, /*api_port=*/0));
    for (auto& n : nodes_) CAIRN_RETURN_IF_ERROR(WaitStoraged(n));

    // Room for the big file, the small files and then some.
    const int64_t capacity = opt_.size_mib * int64_t{2} * static_cast<int64_t>(kMiB) +
                             int64_t{opt_.files} * 65536 + (int64_t{1} << 30);
    json replicas = json::array();
    std::vector<std::string> described;
    for (auto& n : nodes_) {
      CAIRN_RETURN_IF_ERROR(Ctl(n, {"device", "add", "d1", (n.dir / "device").string()}).status());
      CAIRN_RETURN_IF_ERROR(
          Ctl(n, {"brick", "create", "d1", n.brick_id, fmt::format("--capacity={}", capacity)})
              .status());
      replicas.push_back({{"node", n.brickd}, {"brick_id", n.brick_id}});
      described.push_back(n.brickd + "/" + n.brick_id);
    }
    const json spec = ReplicatedVolumeSpec(kVolumeName, replicas);
    spec_file_ = dir_ / "volume.json";
    CAIRN_RETURN_IF_ERROR(WriteFileAtomic(spec_file_.string(), spec.dump(2) + "\n", 0644));
    for (auto& n : nodes_) {
      CAIRN_RETURN_IF_ERROR(Ctl(n, {"spec", "put", spec_file_.string()}).status());
    }

    // The volume from the storaged of the replicas that stay up (the spec served by them), or
    // from the spec file (--cairn-mount-source=spec).
    std::string source = spec_file_.string();
    if (opt_.cairn_mount_source == "servers") {
      std::vector<std::string> servers;
      for (size_t i = 0; i < nodes_.size(); ++i) {
        if (static_cast<int>(i) + 1 != opt_.down_replica) servers.push_back(nodes_[i].api);
      }
      source = Join(servers, ",") + ":/" + kVolumeName;
    }
    CAIRN_ASSIGN_OR_RETURN(
        mount_, FuseMount::Start(
                    "cairn-mount",
                    {opt_.cairn_mount, "-f", "-o",
                     "token_file=" + data_file_.string() + ",allow_other", source, mnt.string()},
                    mnt, dir_ / "cairn-mount.log"));
    target_ =
        fmt::format("cairn-mount of replica-{} volume '{}' ({}) from {}, {} at {}", kReplica,
                    kVolumeName, Join(described, ", "), source, mount_->fstype(), mnt.string());
    fmt::print(stderr, "cairn: mounted: {}\n", target_);
    return Status::Ok();
  }

  const std::string& target() const { return target_; }
  const fs::path& mountpoint() const override { return mount_->mountpoint(); }

  Status TakeReplicaDown() override {
    Node& n = down();
    CAIRN_ASSIGN_OR_RETURN(json node, CtlJson(n, {"node"}));
    const int brickd = JsonInt(node, "brickd_pid");
    if (brickd <= 0) return Status::Internal("storagectl node shows no brickd pid: " + node.dump());
    if (Join(ProcessCmdline(brickd), " ").find(dir_.string() + "/") == std::string::npos) {
      return Status::Internal(fmt::format("brickd pid {} ({}) is not one of ours", brickd,
                                          Join(ProcessCmdline(brickd), " ")));
    }
    // storaged first (our child: Kill() reaps it), so that it does not restart brickd; then
    // brickd (its own session: reparented to init once storaged died).
    n.storaged->Kill();
    n.killed = true;
    return KillReplicaProcess(brickd, "brickd");
  }

  // Restarts storaged with the same state directory and API port; back once its brickd is up.
  Status BringReplicaBack() override {
    Node& n = down();
    const int port = std::atoi(n.api.substr(n.api.rfind(':') + 1).c_str());
    const std::string brickd = n.brickd;
    CAIRN_RETURN_IF_ERROR(StartStoraged(n, port));
    CAIRN_RETURN_IF_ERROR(WaitStoraged(n));
    if (n.brickd != brickd) {
      return Status::Internal(
          fmt::format("the restarted storaged {} serves its brick at {}, the volume spec says {}",
                      n.name, n.brickd, brickd));
    }
    const auto deadline = Clock::now() + std::chrono::seconds(30);
    std::string last;
    for (;;) {
      auto node = CtlJson(n, {"node"});
      if (node.ok()) {
        auto up = node->find("brickd_up");
        if (up != node->end() && up->is_boolean() && up->get<bool>()) return Status::Ok();
        last = node->dump();
      } else {
        CAIRN_RETURN_IF_ERROR(CheckInterrupted());
        last = node.status().ToString();
      }
      if (Clock::now() >= deadline) {
        return Status::DeadlineExceeded("restarted node's brickd not up within 30 s: " + last);
      }
      SleepMs(20);
    }
  }

  // `storagectl heal info VOL -o json` on the first node that stayed up.
  StatusOr<Pending> PendingHeals() override {
    auto reply = CtlJson(observer(), {"heal", "info", kVolumeName});
    if (!reply.ok() && reply.status().message().find("UNIMPLEMENTED") != std::string::npos) {
      return Status::Unimplemented("storaged runs without the heal engine: " +
                                   reply.status().message());
    }
    CAIRN_ASSIGN_OR_RETURN(json info, std::move(reply));
    auto bricks = info.find("bricks");
    if (bricks == info.end() || !bricks->is_array() ||
        bricks->size() != static_cast<size_t>(kReplica)) {
      return Status::Internal("unexpected heal info: " + info.dump());
    }
    Pending p;
    p.all_connected = true;
    for (const auto& b : *bricks) {
      auto connected = b.find("connected");
      if (connected == b.end() || !connected->is_boolean() || !connected->get<bool>()) {
        p.all_connected = false;
      }
      p.entries += JsonU64(b, "pending");
    }
    return p;
  }

  StatusOr<pid_t> ReturnedBrickPid() override {
    CAIRN_ASSIGN_OR_RETURN(json node, CtlJson(down(), {"node"}));
    const int pid = JsonInt(node, "brickd_pid");
    if (pid <= 0) return Status::NotFound("no brickd pid: " + node.dump());
    return pid;
  }

  // Summed over the nodes whose storaged runs (a restarted one starts again from 0).
  std::optional<HealCounters> Counters() override {
    HealCounters c;
    for (auto& n : nodes_) {
      if (n.storaged == nullptr || !n.storaged->Running()) continue;
      auto info = CtlJson(n, {"heal", "info", kVolumeName});
      if (!info.ok()) return std::nullopt;
      c.healed_bytes += JsonU64(*info, "healed_bytes");
      c.checksummed_bytes += JsonU64(*info, "checksummed_bytes");
      c.healed_objects += JsonU64(*info, "healed_objects");
    }
    return c;
  }

  // Unmounts, stops every storaged (SIGTERM; each must exit 0), then makes sure nothing started
  // below our directory (brickd outlives a killed storaged by design) is left. Idempotent.
  void Stop() {
    if (stopped_) return;
    stopped_ = true;
    FuseMount::Unmount(mount_, &problems_);
    for (auto& n : nodes_) {
      if (n.storaged == nullptr) continue;
      n.storaged->Stop(std::chrono::seconds(15));
      if (!n.storaged->ExitedCleanly() && !n.killed) {
        problems_.push_back(fmt::format("storaged {} (pid {}) did not exit 0 on SIGTERM: {}\n{}",
                                        n.name, n.storaged->pid(), n.storaged->Ended(),
                                        LogTail(n.log)));
      }
    }
    const std::string needle = dir_.string() + "/";
    for (std::string& p :
         ReapProcessesNaming(needle, 0, std::chrono::seconds(10), "its storaged stopped")) {
      problems_.push_back(std::move(p));
    }
  }

  const std::vector<std::string>& problems() const { return problems_; }

 private:
  struct Node {
    std::string name, host, brick_id;
    fs::path dir, log, ready;
    std::string api;     // storaged's gRPC API host:port
    std::string brickd;  // brickd's data address host:port
    std::unique_ptr<ChildProcess> storaged;
    bool killed = false;  // the last storaged process was killed on purpose
  };

  Node& down() { return nodes_[static_cast<size_t>(opt_.down_replica - 1)]; }
  Node& observer() { return nodes_[opt_.down_replica == 1 ? 1 : 0]; }

  static int64_t JsonU64(const json& j, const char* key) {
    auto it = j.find(key);
    if (it == j.end()) return 0;
    if (it->is_number()) return it->get<int64_t>();
    // proto3 JSON prints 64-bit integers as strings.
    if (it->is_string()) return std::strtoll(it->get<std::string>().c_str(), nullptr, 10);
    return 0;
  }

  Status StartStoraged(Node& n, int api_port) {
    n.ready = n.dir / "ready.json";
    n.log = n.dir / "storaged.log";
    std::error_code ec;
    fs::remove(n.ready, ec);
    const std::vector<std::string> argv = {opt_.storaged,
                                           fmt::format("--listen={}:{}", n.host, api_port),
                                           "--state-dir=" + (n.dir / "state").string(),
                                           "--node-name=" + n.name,
                                           "--brickd-listen=" + n.host + ":0",
                                           "--brickd=" + opt_.brickd,
                                           "--token-file=" + data_file_.string(),
                                           "--admin-token-file=" + admin_file_.string(),
                                           "--ready-file=" + n.ready.string(),
                                           "--log-level=" + opt_.log_level};
    fmt::print(stderr, "cairn: starting {}\n", Join(argv, " "));
    n.killed = false;
    CAIRN_ASSIGN_OR_RETURN(n.storaged, ChildProcess::Start("storaged " + n.name, argv, n.log));
    return Status::Ok();
  }

  // Waits for the ready file {"listen","metrics","brickd","pid"}.
  Status WaitStoraged(Node& n) {
    CAIRN_ASSIGN_OR_RETURN(json ready,
                           WaitForReadyFile(*n.storaged, n.ready, n.log, std::chrono::seconds(30)));
    auto text = [&](const char* key) {
      auto it = ready.find(key);
      return it != ready.end() && it->is_string() ? it->get<std::string>() : std::string();
    };
    n.api = text("listen");
    n.brickd = text("brickd");
    if (n.api.empty() || n.brickd.empty()) {
      return Status::Internal("storaged ready file lacks listen/brickd: " + ready.dump());
    }
    return Status::Ok();
  }

  // storagectl --server NODE --token-file ADMIN ARGS (1 min deadline), which must succeed.
  StatusOr<CommandResult> Ctl(Node& n, std::vector<std::string> args) {
    std::vector<std::string> argv = {opt_.storagectl, "--server=" + n.api,
                                     "--token-file=" + admin_file_.string()};
    argv.insert(argv.end(), args.begin(), args.end());
    CAIRN_ASSIGN_OR_RETURN(CommandResult r, RunCommand(argv, std::chrono::minutes(1), true));
    if (r.exit_code != 0) {
      return Status::Internal(fmt::format("'storagectl {}' on {} failed (exit {}): {}",
                                          Join(args, " "), n.name, r.exit_code, r.output));
    }
    return r;
  }

  StatusOr<json> CtlJson(Node& n, std::vector<std::string> args) {
    args.push_back("-o");
    args.push_back("json");
    CAIRN_ASSIGN_OR_RETURN(CommandResult r, Ctl(n, args));
    json j = json::parse(r.output, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) {
      return Status::Internal(
          fmt::format("'storagectl {}' printed no JSON object: {}", Join(args, " "), r.output));
    }
    return j;
  }

  const Options& opt_;
  const fs::path dir_;
  fs::path admin_file_, data_file_, spec_file_;
  std::vector<Node> nodes_;
  std::unique_ptr<FuseMount> mount_;
  std::string target_;
  std::vector<std::string> problems_;
  bool stopped_ = false;
};

Status MeasureCairn(const Options& opt, const fs::path& root, HealSide* side) {
  CairnCluster cluster(opt, root / "cairn");
  Status s = cluster.Start();
  side->target = cluster.target();
  if (s.ok()) s = RunScenarios(opt, "cairn", cluster, side);
  cluster.Stop();
  for (const auto& p : cluster.problems()) side->problems.push_back(p);
  return s;
}

// ---- Preflight: everything a setup needs, checked before anything starts.

Status Preflight(const Options& opt) {
  CAIRN_RETURN_IF_ERROR(CheckRootAndFuse(
      "heal_bench needs root (glusterd, FUSE allow_other, killing and restarting its own "
      "daemons): run it as root"));
  if (opt.run_cairn) {
    const std::string build =
        " (build them: cmake --build BUILD --target storaged storagectl brickd cairn-mount, or "
        "bench/heal_bench.sh; or measure GlusterFS alone with --only=gluster)";
    CAIRN_RETURN_IF_ERROR(CheckExecutable(opt.storaged, "storaged", build));
    CAIRN_RETURN_IF_ERROR(CheckExecutable(opt.storagectl, "storagectl", build));
    CAIRN_RETURN_IF_ERROR(CheckExecutable(opt.brickd, "brickd", build));
    CAIRN_RETURN_IF_ERROR(CheckExecutable(opt.cairn_mount, "cairn-mount", build));
  }
  if (opt.run_gluster) {
    CAIRN_RETURN_IF_ERROR(CheckGlusterClusterCanStart(opt.gluster, "; or pass --only=cairn", ""));
  }
  return Status::Ok();
}

// ---- Report.

std::string Bytes(int64_t n) {
  if (n < 0) return "n/a";
  if (n < int64_t{1} << 20) return fmt::format("{:.1f} KiB", static_cast<double>(n) / 1024);
  if (n < int64_t{1} << 30) return fmt::format("{:.1f} MiB", static_cast<double>(n) / (1 << 20));
  return fmt::format("{:.2f} GiB", static_cast<double>(n) / (1 << 30));
}

std::optional<double> HealSeconds(const HealSide& side, const HealFigures& f) {
  if (!side.measured || !f.measured) return std::nullopt;
  return f.heal_s;
}

std::optional<double> HealRate(const HealSide& side, const HealFigures& f) {
  if (!side.measured || !f.measured || f.heal_s <= 0) return std::nullopt;
  return static_cast<double>(f.items) / f.heal_s;
}

json OptInt(int64_t v) { return v < 0 ? json(nullptr) : json(v); }

json FiguresJson(const HealFigures& f, const char* unit) {
  if (!f.measured) return nullptr;
  return {{"items", f.items},
          {"items_unit", unit},
          {"write_s", Round(f.write_s, 3)},
          {"pending_before_return", OptInt(f.pending_before)},
          {"return_s", Round(f.return_s, 3)},
          {"heal_s", Round(f.heal_s, 3)},
          {"polls", f.polls},
          {"poll_max_s", Round(f.poll_s_max, 3)},
          {"unconfirmed_zero_counts", f.unconfirmed},
          {"returned_brick_pid", f.brick_pid},
          {"returned_brick_write_bytes", OptInt(f.brick_write_bytes)},
          {"returned_brick_wchar", OptInt(f.brick_wchar)},
          {"healed_bytes", OptInt(f.healed_bytes)},
          {"checksummed_bytes", OptInt(f.checksummed_bytes)},
          {"healed_objects", OptInt(f.healed_objects)}};
}

json HealSideJson(const HealSide& side) {
  json out = SideReportJson(side);
  if (!side.measured) return out;
  out["big_file"] = FiguresJson(side.big, "MiB");
  out["small_files"] = FiguresJson(side.small, "files");
  return out;
}

int Main(int argc, char** argv) {
  InstallSignalThread("heal_bench");
  Flags flags("heal_bench",
              "Self-heal time and bytes after a replica was away: Cairn and GlusterFS replica-3 "
              "volumes, same run, side by side.");
  flags.AddInt("size-mib", 2048, "big file: size (MiB); the replica is killed at half of it");
  flags.AddInt("files", 10000, "small files (4 KiB) created while the replica is away");
  flags.AddInt("jobs", 4, "threads creating the small files (one directory each)");
  flags.AddInt("down-replica", 3, "which replica (1-3) is taken away");
  flags.AddInt("poll-ms", 100, "pause between heal-info calls while waiting for the heal");
  flags.AddInt("heal-timeout-s", 900, "give up waiting for a heal after this many seconds");
  flags.AddString("storaged", CAIRN_STORAGED_DEFAULT_PATH, "storaged executable");
  flags.AddString("storagectl", CAIRN_STORAGECTL_DEFAULT_PATH, "storagectl executable");
  flags.AddString("brickd", CAIRN_BRICKD_DEFAULT_PATH, "brickd executable (given to storaged)");
  flags.AddString("cairn-mount", CAIRN_MOUNT_DEFAULT_PATH, "cairn-mount executable");
  flags.AddString("cairn-mount-source", "servers",
                  "what cairn-mount mounts: 'servers' (HOST:PORT,HOST:PORT:/VOLUME, the spec "
                  "served by the storaged that stay up) or 'spec' (the volume spec file)");
  flags.AddString("log-level", "warn", "storaged (and brickd) --log-level");
  AddCommonFlags(flags, "smoke-run sizes: --size-mib 256 --files 1000 (explicit flags win)",
                 "keep the temporary directory (bricks, state, logs); processes are stopped and "
                 "mounts unmounted regardless",
                 "random seed for the data written (0: random)");
  if (auto exit_code = ParseFlagsOrExit(flags, argc, argv)) return *exit_code;

  Options opt;
  if (!ReadCommonFlags(flags, &opt)) return 2;
  opt.size_mib = QuickSized(flags, opt, "size-mib", 256);
  opt.files =
      static_cast<int>(std::clamp<int64_t>(QuickSized(flags, opt, "files", 1000), -1, 10'000'000));
  opt.jobs = static_cast<int>(std::clamp<int64_t>(flags.GetInt("jobs"), -1, 1024));
  opt.down_replica = static_cast<int>(std::clamp<int64_t>(flags.GetInt("down-replica"), -1, 99));
  opt.poll_ms = static_cast<int>(std::clamp<int64_t>(flags.GetInt("poll-ms"), -1, 60000));
  opt.heal_timeout_s =
      static_cast<int>(std::clamp<int64_t>(flags.GetInt("heal-timeout-s"), -1, 86400));
  opt.storaged = flags.GetString("storaged");
  opt.storagectl = flags.GetString("storagectl");
  opt.brickd = flags.GetString("brickd");
  opt.cairn_mount = flags.GetString("cairn-mount");
  opt.cairn_mount_source = flags.GetString("cairn-mount-source");
  opt.log_level = flags.GetString("log-level");
  if (opt.size_mib < 2 || opt.size_mib > (int64_t{1} << 24) || opt.jobs < 1 ||
      opt.files < opt.jobs || opt.down_replica < 1 || opt.down_replica > kReplica ||
      opt.poll_ms < 0 || opt.heal_timeout_s < 1 ||
      (opt.cairn_mount_source != "servers" && opt.cairn_mount_source != "spec")) {
    fmt::print(stderr,
               "heal_bench: --size-mib must be >= 2, --jobs >= 1, --files >= --jobs, "
               "--down-replica 1-3, --poll-ms >= 0, --heal-timeout-s >= 1, "
               "--cairn-mount-source servers or spec\n");
    return 2;
  }

  const std::string sizes = fmt::format(
      "big file {} MiB (replica {} killed after {} MiB); {} x 4 KiB files, {} jobs, created "
      "while replica {} is away; pending heals polled every {} ms",
      opt.size_mib, opt.down_replica, opt.size_mib / 2, opt.files, opt.jobs, opt.down_replica,
      opt.poll_ms);
  RunFrame run;
  HealSide cairn, gluster;
  if (auto exit_code = RunBothSides(
          Preflight(opt), opt, "cairn-heal-bench", sizes, &run, &cairn,
          [&](const RunFrame& r) { return MeasureCairn(opt, r.root(), &cairn); }, &gluster,
          [&](const RunFrame& r) {
            return MeasureGluster(opt, r.gluster_version, r.root(), &gluster);
          })) {
    return *exit_code;
  }

  // The report.
  const std::string& gluster_title = run.gluster_title;
  const auto big_c = HealSeconds(cairn, cairn.big), big_g = HealSeconds(gluster, gluster.big);
  const auto small_c = HealSeconds(cairn, cairn.small);
  const auto small_g = HealSeconds(gluster, gluster.small);
  const auto rate_c = HealRate(cairn, cairn.small), rate_g = HealRate(gluster, gluster.small);
  const auto big_ratio = Ratio(big_c, big_g);
  const auto small_ratio = Ratio(small_c, small_g);
  const auto rate_ratio = Ratio(rate_c, rate_g);
  std::optional<bool> big_pass;
  if (big_c) big_pass = *big_c <= kTargetHealSeconds;

  const Table table({44, 14, 16, 16, 10, 0});
  auto secs = [](const std::optional<double>& v, const HealSide& side) {
    return v ? fmt::format("{:.2f} s", *v) : (side.measured ? "error" : "-");
  };
  auto side_value = [](const HealSide& side, const HealFigures& f, const std::string& text) {
    return f.measured ? text : (side.measured ? "error" : "-");
  };
  auto ratio_text = [](const std::optional<double>& r) {
    return r ? fmt::format("{:.3f}x", *r) : std::string("-");
  };
  fmt::print("\n");
  table.Print({"", "Cairn", gluster_title, "Cairn/GlusterFS", "target", ""});
  table.Print({fmt::format("big file {} MiB: heal time", opt.size_mib), secs(big_c, cairn),
               secs(big_g, gluster), ratio_text(big_ratio),
               fmt::format("<= {:g} s", kTargetHealSeconds),
               big_pass ? (*big_pass ? "PASS" : "MISS") : ""});
  table.Print({"  pending before the return",
               side_value(cairn, cairn.big, std::to_string(cairn.big.pending_before)),
               side_value(gluster, gluster.big, std::to_string(gluster.big.pending_before)), "", "",
               ""});
  table.Print({"  bytes written by the returning brick",
               side_value(cairn, cairn.big, Bytes(cairn.big.brick_write_bytes)),
               side_value(gluster, gluster.big, Bytes(gluster.big.brick_write_bytes)), "", "", ""});
  table.Print(
      {"  healed / checksummed bytes (heal info)",
       side_value(cairn, cairn.big,
                  Bytes(cairn.big.healed_bytes) + " / " + Bytes(cairn.big.checksummed_bytes)),
       gluster.measured ? "not reported" : "-", "", "", ""});
  table.Print({"  replica back in service after",
               side_value(cairn, cairn.big, fmt::format("{:.2f} s", cairn.big.return_s)),
               side_value(gluster, gluster.big, fmt::format("{:.2f} s", gluster.big.return_s)), "",
               "", ""});
  table.Print({fmt::format("{} small files: heal time", opt.files), secs(small_c, cairn),
               secs(small_g, gluster), ratio_text(small_ratio), "", ""});
  table.Print({"  heal rate",
               rate_c ? fmt::format("{:.0f} files/s", *rate_c) : secs(std::nullopt, cairn),
               rate_g ? fmt::format("{:.0f} files/s", *rate_g) : secs(std::nullopt, gluster),
               ratio_text(rate_ratio), "", ""});
  table.Print({"  pending before the return",
               side_value(cairn, cairn.small, std::to_string(cairn.small.pending_before)),
               side_value(gluster, gluster.small, std::to_string(gluster.small.pending_before)), "",
               "", ""});
  table.Print({"  bytes written by the returning brick",
               side_value(cairn, cairn.small, Bytes(cairn.small.brick_write_bytes)),
               side_value(gluster, gluster.small, Bytes(gluster.small.brick_write_bytes)), "", "",
               ""});
  table.Print({"  healed bytes / objects (heal info)",
               side_value(cairn, cairn.small,
                          fmt::format("{} / {}", Bytes(cairn.small.healed_bytes),
                                      cairn.small.healed_objects)),
               gluster.measured ? "not reported" : "-", "", "", ""});
  fmt::print(
      "  heal time: from the replica back in service to the first poll saying 0 pending, every "
      "brick connected\n  (Cairn: storagectl heal info; GlusterFS: heal-count, then confirmed by "
      "heal info summary); resolution: one poll\n  ratios: Cairn/GlusterFS (heal time: lower is "
      "better; heal rate: higher is better); GlusterFS reference: {}\n",
      kGlusterReference);
  if (opt.size_mib != kTargetSizeMib && big_pass) {
    fmt::print("  note: the target is for a {} MiB file; this run wrote {} MiB\n", kTargetSizeMib,
               opt.size_mib);
  }

  json big_target = {{"max_s", kTargetHealSeconds},
                     {"size_mib", kTargetSizeMib},
                     {"result", big_pass ? json(*big_pass ? "PASS" : "MISS") : json(nullptr)}};
  const json out = {{"benchmark", "heal"},
                    {"machine", run.machine.Json()},
                    {"config",
                     {{"size_mib", opt.size_mib},
                      {"files", opt.files},
                      {"file_bytes", kSmallFileBytes},
                      {"jobs", opt.jobs},
                      {"down_replica", opt.down_replica},
                      {"poll_ms", opt.poll_ms},
                      {"quick", opt.quick},
                      {"cairn_mount_source", opt.cairn_mount_source}}},
                    {"gluster_version", run.gluster_version},
                    {"cairn", HealSideJson(cairn)},
                    {"gluster", HealSideJson(gluster)},
                    {"ratios",
                     {{"big_file_heal_time", OptJson(big_ratio, 4)},
                      {"small_files_heal_time", OptJson(small_ratio, 4)},
                      {"small_files_heal_rate", OptJson(rate_ratio, 4)}}},
                    {"targets", {{"big_file_heal_s", big_target}}}};
  return FinishRun(out, {&cairn, &gluster}, opt.json_file);
}

}  // namespace
}  // namespace cairn::bench

int main(int argc, char** argv) { return cairn::bench::Main(argc, argv); }
