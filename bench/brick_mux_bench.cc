// brick_mux_bench: what one more brick costs in Cairn's brick-multiplexing brickd, measured side
// by side with GlusterFS's brick multiplexing in the same run on the same machine.
//
// It starts ONE brickd (fresh tokens, fresh temporary directory), attaches --bricks fresh empty
// bricks through BrickAdmin.Attach one call at a time (each timed on the client's wall clock),
// and reports the processes, listening TCP ports, threads and resident memory (VmRSS) serving
// them, the attach latency, and a quick serving check (StatFs on random bricks with the data
// token, a timed Detach). With --gluster it starts a private glusterd with
// cluster.brick-multiplex on, creates and starts --gluster-volumes single-brick volumes (each
// create+start timed), measures the glusterfsd brick process(es) the same way, and prints
// Cairn/GlusterFS ratios. Output: a human-readable report, then one JSON line.
//
//   cmake --build build -j2 --target brickd brick_mux_bench
//   ./build/bench/brick_mux_bench [--bricks 1000] [--gluster [--gluster-volumes 50]]
//
// A benchmark, not a test: it exits 0 even when a target is missed, non-zero only when something
// broke (1) or it was interrupted (130). Every process it starts is stopped by pid and its
// temporary directory removed on every exit path, Ctrl-C included. See bench/README.md.
#include <spdlog/fmt/fmt.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
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
#include "proto/brick.grpc.pb.h"

#ifndef CAIRN_BRICKD_DEFAULT_PATH
#define CAIRN_BRICKD_DEFAULT_PATH "brickd"
#endif

namespace cairn::bench {
namespace {

namespace pb = ::cairn::brick::v1;

// Targets from the brick-multiplexing issue.
constexpr double kTargetKibPerBrick = 64.0;
constexpr double kTargetAttachP99Ms = 5.0;
// Reference figures for GlusterFS 10.3 brick-multiplex on this kind of machine (from the issue).
constexpr char kGlusterReference[] =
    "~1,000 KiB per extra brick, 110-140 ms per volume create+start";

// ---- Options.

struct Options {
  std::string brickd;
  int bricks = 1000;
  std::string workdir;
  int64_t capacity_bytes = 0;
  int brickd_threads = 0;
  std::string brickd_log_level;
  bool state_file = false;
  int statfs_samples = 10;
  int idle_ms = 1000;
  uint64_t seed = 0;
  bool keep = false;
  bool gluster = false;
  int gluster_volumes = 50;
  GlusterOptions gluster_opt;
};

// ---- Cairn: one brickd, N bricks.

struct CairnFigures {
  std::string brickd;
  int bricks = 0;
  pid_t pid = 0;
  int grpc_port = 0;
  int metrics_port = 0;
  std::vector<pid_t> children;
  std::vector<ListenSocket> listening_0, listening_n;
  int64_t threads_0 = -1, threads_1 = -1, threads_n = -1;
  int64_t rss_0 = -1, rss_1 = -1, rss_1_idle = -1, rss_n = -1, rss_n_idle = -1;  // KiB
  std::optional<double> kib_per_brick;       // from the idle figures
  std::optional<double> kib_per_brick_busy;  // right after attaching
  LatencyStats attach;
  int not_initialised = 0;
  size_t listed_after_attach = 0;
  int statfs_ok = 0;
  LatencyStats statfs;
  std::string detached;
  double detach_ms = 0;
  size_t listed_after_detach = 0;
  std::string statfs_after_detach;  // status code name of StatFs on the detached brick
  std::string shutdown;
  double shutdown_ms = 0;
  int idle_ms = 0;
  std::vector<std::string> notes;  // oddities worth a look that did not break the run
};

// Starts brickd, attaches the bricks, measures, checks that it serves, stops it. Checks that
// fail without stopping the run are appended to `failures`.
Status RunCairn(const Options& opt, const fs::path& root, CairnFigures* f,
                std::vector<std::string>* failures) {
  f->brickd = opt.brickd;
  f->bricks = opt.bricks;
  f->idle_ms = opt.idle_ms;
  if (::access(opt.brickd.c_str(), X_OK) != 0) {
    return Status::NotFound(
        fmt::format("no brickd executable at {} (build it: cmake --build build -j2 --target "
                    "brickd, or pass --brickd=PATH)",
                    opt.brickd));
  }
  const fs::path dir = root / "cairn";
  const fs::path bricks_dir = dir / "bricks";
  std::error_code ec;
  fs::create_directories(bricks_dir, ec);
  if (ec) return Status::Internal("create " + bricks_dir.string() + ": " + ec.message());

  const std::string admin_token = RandomHexToken(32);
  const std::string data_token = RandomHexToken(32);
  const fs::path admin_file = dir / "admin.token";
  const fs::path data_file = dir / "data.token";
  CAIRN_RETURN_IF_ERROR(WriteFileAtomic(admin_file.string(), admin_token + "\n", 0600));
  CAIRN_RETURN_IF_ERROR(WriteFileAtomic(data_file.string(), data_token + "\n", 0600));
  const fs::path ready = dir / "ready.json";
  const fs::path log = dir / "brickd.log";

  std::vector<std::string> argv = {opt.brickd,
                                   "--listen=127.0.0.1:0",
                                   "--token-file=" + data_file.string(),
                                   "--admin-token-file=" + admin_file.string(),
                                   "--metrics-listen=127.0.0.1:0",
                                   "--ready-file=" + ready.string(),
                                   "--log-level=" + opt.brickd_log_level};
  if (opt.state_file) argv.push_back("--state-file=" + (dir / "state.json").string());
  if (opt.brickd_threads > 0) argv.push_back(fmt::format("--threads={}", opt.brickd_threads));
  fmt::print(stderr, "cairn: starting {}\n", Join(argv, " "));
  CAIRN_ASSIGN_OR_RETURN(std::unique_ptr<ChildProcess> brickd,
                         ChildProcess::Start("brickd", argv, log));
  f->pid = brickd->pid();

  CAIRN_ASSIGN_OR_RETURN(json ready_json,
                         WaitForReadyFile(*brickd, ready, log, std::chrono::seconds(10)));
  f->grpc_port = JsonInt(ready_json, "grpc_port");
  f->metrics_port = JsonInt(ready_json, "metrics_port");
  if (f->grpc_port <= 0 || f->grpc_port > 65535) {
    return Status::Internal("ready file has no valid grpc_port: " + ready_json.dump());
  }
  if (JsonInt(ready_json, "pid") != brickd->pid()) {
    failures->push_back(
        fmt::format("brickd's ready file says pid {}, but the process started is {}",
                    JsonInt(ready_json, "pid"), brickd->pid()));
  }

  BrickdClient client(fmt::format("127.0.0.1:{}", f->grpc_port), admin_token, data_token);
  if (!client.WaitForConnected(std::chrono::seconds(5))) {
    return Status::Unavailable(
        fmt::format("cannot connect to brickd at 127.0.0.1:{}\n{}", f->grpc_port, LogTail(log)));
  }
  const pid_t pid = brickd->pid();
  f->rss_0 = ProcStatusNumber(pid, "VmRSS");
  f->threads_0 = ProcStatusNumber(pid, "Threads");
  f->listening_0 = ListeningSocketsOf(pid);

  // Attach, one call at a time; directory creation is not timed.
  std::vector<std::string> ids;
  std::vector<double> latencies;
  ids.reserve(static_cast<size_t>(opt.bricks));
  latencies.reserve(static_cast<size_t>(opt.bricks));
  const int progress_every = std::max(1, opt.bricks / 10);
  for (int i = 0; i < opt.bricks; ++i) {
    CAIRN_RETURN_IF_ERROR(CheckInterrupted());
    std::string id = fmt::format("bench-{:05d}", i);
    fs::path path = bricks_dir / id;
    fs::create_directory(path, ec);
    if (ec) return Status::Internal("create " + path.string() + ": " + ec.message());
    pb::AttachReply reply;
    auto t0 = Clock::now();
    Status s = client.Attach(id, path.string(), static_cast<uint64_t>(opt.capacity_bytes), &reply);
    double ms = MsBetween(t0, Clock::now());
    if (!s.ok()) {
      if (!brickd->Running()) {
        return Status::Unavailable(fmt::format("brickd died during Attach of brick {} ({})\n{}",
                                               i + 1, brickd->Ended(), LogTail(log)));
      }
      return s.WithContext(fmt::format("Attach {} (brick {} of {})", id, i + 1, opt.bricks));
    }
    latencies.push_back(ms);
    ids.push_back(id);
    if (!reply.initialised()) ++f->not_initialised;
    if (reply.brick().brick_id() != id) {
      failures->push_back(
          fmt::format("Attach {} answered brick_id '{}'", id, reply.brick().brick_id()));
    }
    if (i == 0) {
      f->rss_1 = ProcStatusNumber(pid, "VmRSS");
      SleepMs(opt.idle_ms);
      f->rss_1_idle = ProcStatusNumber(pid, "VmRSS");
      f->threads_1 = ProcStatusNumber(pid, "Threads");
    }
    if ((i + 1) % progress_every == 0 || i + 1 == opt.bricks) {
      fmt::print(stderr, "cairn: attached {}/{} (last {:.3f} ms, RSS {} KiB)\n", i + 1, opt.bricks,
                 ms, ProcStatusNumber(pid, "VmRSS"));
    }
  }
  f->rss_n = ProcStatusNumber(pid, "VmRSS");
  SleepMs(opt.idle_ms);
  CAIRN_RETURN_IF_ERROR(CheckInterrupted());
  f->rss_n_idle = ProcStatusNumber(pid, "VmRSS");
  f->threads_n = ProcStatusNumber(pid, "Threads");
  f->listening_n = ListeningSocketsOf(pid);
  for (auto* sockets : {&f->listening_0, &f->listening_n}) {
    for (auto& s : *sockets) {
      s.role = s.port == f->grpc_port      ? "(gRPC)"
               : s.port == f->metrics_port ? "(metrics)"
                                           : "(not in the ready file)";
    }
  }
  for (const auto& s : f->listening_n) {
    if (s.port != f->grpc_port && s.port != f->metrics_port) {
      f->notes.push_back(fmt::format(
          "brickd listens on {}:{}, which its ready file does not announce", s.address, s.port));
    }
  }
  f->children = Descendants(pid);
  f->attach = Summarize(latencies);
  if (opt.bricks > 1) {
    const double extra = static_cast<double>(opt.bricks - 1);
    f->kib_per_brick = static_cast<double>(f->rss_n_idle - f->rss_1_idle) / extra;
    f->kib_per_brick_busy = static_cast<double>(f->rss_n - f->rss_1) / extra;
  }
  if (f->not_initialised > 0) {
    failures->push_back(fmt::format(
        "{} Attach replies to fresh empty directories said initialised=false", f->not_initialised));
  }
  if (!f->children.empty()) {
    failures->push_back(fmt::format("brickd has {} child process(es)", f->children.size()));
  }

  // Serving check: ListBricks, StatFs on random bricks with the data token, one Detach.
  CAIRN_ASSIGN_OR_RETURN(pb::ListBricksReply listed, client.ListBricks());
  f->listed_after_attach = static_cast<size_t>(listed.bricks_size());
  if (f->listed_after_attach != ids.size()) {
    failures->push_back(fmt::format("ListBricks lists {} bricks after {} Attach calls",
                                    f->listed_after_attach, ids.size()));
  }
  std::mt19937_64 rng(opt.seed != 0 ? opt.seed : std::random_device{}());
  std::vector<std::string> sample = ids;
  std::shuffle(sample.begin(), sample.end(), rng);
  sample.resize(std::min(sample.size(), static_cast<size_t>(opt.statfs_samples)));
  std::vector<double> statfs_ms;
  for (const auto& id : sample) {
    CAIRN_RETURN_IF_ERROR(CheckInterrupted());
    pb::StatFsReply reply;
    auto t0 = Clock::now();
    Status s = client.StatFs(id, &reply);
    statfs_ms.push_back(MsBetween(t0, Clock::now()));
    if (!s.ok()) {
      failures->push_back(fmt::format("StatFs {} (data token): {}", id, s.ToString()));
    } else if (opt.capacity_bytes > 0 &&
               reply.capacity_bytes() != static_cast<uint64_t>(opt.capacity_bytes)) {
      failures->push_back(fmt::format("StatFs {}: capacity_bytes {}, attached with {}", id,
                                      reply.capacity_bytes(), opt.capacity_bytes));
    } else {
      ++f->statfs_ok;
    }
  }
  f->statfs = Summarize(statfs_ms);

  f->detached = ids[std::uniform_int_distribution<size_t>(0, ids.size() - 1)(rng)];
  auto t0 = Clock::now();
  Status detached = client.Detach(f->detached);
  f->detach_ms = MsBetween(t0, Clock::now());
  if (!detached.ok()) {
    failures->push_back(fmt::format("Detach {}: {}", f->detached, detached.ToString()));
  } else {
    CAIRN_ASSIGN_OR_RETURN(pb::ListBricksReply after, client.ListBricks());
    f->listed_after_detach = static_cast<size_t>(after.bricks_size());
    if (f->listed_after_detach + 1 != ids.size()) {
      failures->push_back(fmt::format("ListBricks lists {} bricks after detaching 1 of {}",
                                      f->listed_after_detach, ids.size()));
    }
    pb::StatFsReply reply;
    Status s = client.StatFs(f->detached, &reply);
    f->statfs_after_detach = s.ok() ? "OK" : std::string(StatusCodeName(s.code()));
    if (s.ok()) failures->push_back("StatFs on a detached brick succeeded");
  }

  // Clean shutdown.
  f->shutdown_ms = brickd->Stop(std::chrono::seconds(10));
  f->shutdown = brickd->Ended() + (brickd->needed_sigkill() ? " (SIGTERM ignored for 10 s)" : "");
  if (!brickd->ExitedCleanly()) {
    failures->push_back("brickd did not exit 0 on SIGTERM: " + f->shutdown + "\n" + LogTail(log));
  }
  return Status::Ok();
}

// ---- GlusterFS: one private glusterd with cluster.brick-multiplex on, K single-brick volumes.

struct GlusterFigures {
  std::string version;
  std::string host;
  std::string address;
  int volumes = 0;
  pid_t glusterd_pid = 0;
  int64_t glusterd_rss = -1;
  std::vector<pid_t> pids_1, pids_k;  // glusterfsd processes serving our bricks
  pid_t status_pid = 0;               // the brick pid `gluster volume status ... detail` reports
  std::vector<ListenSocket> listening_k;
  int64_t threads_1 = -1, threads_k = -1;
  int64_t rss_1 = -1, rss_1_idle = -1, rss_k = -1, rss_k_idle = -1;  // KiB, summed over pids
  std::optional<double> kib_per_brick;
  std::optional<double> kib_per_brick_busy;
  LatencyStats create, start, create_start, stop_delete;
  std::string shutdown;
  int idle_ms = 0;
};

class GlusterRun {
 public:
  GlusterRun(const Options& opt, fs::path dir) : opt_(opt), daemon_(opt.gluster_opt, dir) {}
  GlusterRun(const GlusterRun&) = delete;
  GlusterRun& operator=(const GlusterRun&) = delete;

  // Starts glusterd and turns brick multiplexing on.
  Status Start(GlusterFigures* f) {
    f->version = GlusterVersion(FindExecutable(opt_.gluster_opt.gluster_cli));
    CAIRN_RETURN_IF_ERROR(CheckNoOtherGlusterd(""));
    CAIRN_RETURN_IF_ERROR(daemon_.Start());
    f->host = daemon_.host();
    f->address = daemon_.address();
    f->glusterd_pid = daemon_.pid();
    CAIRN_RETURN_IF_ERROR(
        daemon_.CliOk({"volume", "set", "all", "cluster.brick-multiplex", "on"}).status());
    return Status::Ok();
  }

  // Creates and starts the volumes, measures, then stops and deletes them.
  Status Measure(GlusterFigures* f) {
    f->volumes = opt_.gluster_volumes;
    f->idle_ms = opt_.idle_ms;
    std::vector<double> create_ms, start_ms, total_ms, stop_ms;
    std::vector<std::string> names;
    const int progress_every = std::max(1, opt_.gluster_volumes / 5);
    for (int k = 0; k < opt_.gluster_volumes; ++k) {
      CAIRN_RETURN_IF_ERROR(CheckInterrupted());
      std::string name = fmt::format("cairnbench{:04d}", k + 1);
      fs::path brick = daemon_.dir() / "bricks" / name;
      std::error_code ec;
      fs::create_directory(brick, ec);
      if (ec) return Status::Internal("create " + brick.string() + ": " + ec.message());
      // `force`: the bricks live on the root file system, which gluster otherwise refuses.
      CAIRN_ASSIGN_OR_RETURN(
          CommandResult created,
          daemon_.CreateVolume(name, {daemon_.host() + ":" + brick.string(), "force"}));
      names.push_back(name);
      CAIRN_ASSIGN_OR_RETURN(CommandResult started, daemon_.StartVolume(name));
      create_ms.push_back(created.ms());
      start_ms.push_back(started.ms());
      total_ms.push_back(created.ms() + started.ms());
      if (k == 0) {
        f->pids_1 = daemon_.BrickProcesses();
        f->rss_1 = SumProcStatus(f->pids_1, "VmRSS");
        SleepMs(opt_.idle_ms);
        f->pids_1 = daemon_.BrickProcesses();
        f->rss_1_idle = SumProcStatus(f->pids_1, "VmRSS");
        f->threads_1 = SumProcStatus(f->pids_1, "Threads");
        auto status = daemon_.BrickStatus(name);
        f->status_pid = status.ok() && !status->empty() ? status->front().pid : 0;
      }
      if ((k + 1) % progress_every == 0 || k + 1 == opt_.gluster_volumes) {
        fmt::print(stderr, "gluster: created+started {}/{} (last {:.1f} ms)\n", k + 1,
                   opt_.gluster_volumes, created.ms() + started.ms());
      }
    }
    f->rss_k = SumProcStatus(daemon_.BrickProcesses(), "VmRSS");
    SleepMs(opt_.idle_ms);
    CAIRN_RETURN_IF_ERROR(CheckInterrupted());
    f->pids_k = daemon_.BrickProcesses();
    f->rss_k_idle = SumProcStatus(f->pids_k, "VmRSS");
    f->threads_k = SumProcStatus(f->pids_k, "Threads");
    for (pid_t pid : f->pids_k) {
      auto s = ListeningSocketsOf(pid);
      f->listening_k.insert(f->listening_k.end(), s.begin(), s.end());
    }
    f->glusterd_rss = ProcStatusNumber(daemon_.pid(), "VmRSS");
    if (opt_.gluster_volumes > 1) {
      const double extra = static_cast<double>(opt_.gluster_volumes - 1);
      f->kib_per_brick = static_cast<double>(f->rss_k_idle - f->rss_1_idle) / extra;
      f->kib_per_brick_busy = static_cast<double>(f->rss_k - f->rss_1) / extra;
    }
    f->create = Summarize(create_ms);
    f->start = Summarize(start_ms);
    f->create_start = Summarize(total_ms);

    // Tear down what we made, timing stop+delete of each volume.
    while (!names.empty()) {
      CAIRN_RETURN_IF_ERROR(CheckInterrupted());
      const std::string name = names.back();
      CAIRN_ASSIGN_OR_RETURN(CommandResult stopped, daemon_.StopVolume(name));
      CAIRN_ASSIGN_OR_RETURN(CommandResult deleted, daemon_.DeleteVolume(name));
      names.pop_back();
      stop_ms.push_back(stopped.ms() + deleted.ms());
    }
    f->stop_delete = Summarize(stop_ms);
    return Status::Ok();
  }

  // Stops and deletes the volumes still there, the brick processes still running (by pid),
  // glusterd, and removes what glusterd added to the system directories. Idempotent.
  void Cleanup(GlusterFigures* f) { daemon_.Stop(&f->shutdown); }

  const std::vector<std::string>& problems() const { return daemon_.problems(); }

 private:
  const Options& opt_;
  GlusterDaemon daemon_;
};

// ---- Report.

void Row(std::string_view label, const std::string& value) {
  fmt::print("  {:<30}{}\n", label, value);
}

void PrintCairn(const CairnFigures& f) {
  fmt::print("\nCairn brick multiplexing: {} bricks attached to ONE brickd (pid {})\n", f.bricks,
             f.pid);
  Row("brickd", f.brickd);
  Row("processes serving the bricks",
      fmt::format("{} (brickd; {} child processes)", 1 + f.children.size(), f.children.size()));
  Row("listening TCP ports",
      fmt::format("{} with 0 bricks, {} with {} ({})", f.listening_0.size(), f.listening_n.size(),
                  f.bricks, DescribeSockets(f.listening_n)));
  Row("threads", fmt::format("{} with 0 bricks, {} with 1, {} with {}", f.threads_0, f.threads_1,
                             f.threads_n, f.bricks));
  Row("RSS, 0 bricks", Kib(f.rss_0));
  Row("RSS, 1 brick",
      fmt::format("{} (idle {} ms later: {})", Kib(f.rss_1), f.idle_ms, Kib(f.rss_1_idle)));
  Row(fmt::format("RSS, {} bricks", f.bricks),
      fmt::format("{} (idle {} ms later: {})", Kib(f.rss_n), f.idle_ms, Kib(f.rss_n_idle)));
  Row("KiB per additional brick",
      fmt::format("{} idle ({} right after attaching)", OptNum(f.kib_per_brick),
                  OptNum(f.kib_per_brick_busy)));
  Row("Attach latency", LatencyText(f.attach));
  Row("ListBricks", fmt::format("{} bricks", f.listed_after_attach));
  Row("StatFs (data token)", fmt::format("{}/{} ok, p50 {:.3f} ms, max {:.3f} ms", f.statfs_ok,
                                         f.statfs.n, f.statfs.p50, f.statfs.max));
  Row("Detach", fmt::format("{} in {:.3f} ms; then ListBricks {}, StatFs on it {}", f.detached,
                            f.detach_ms, f.listed_after_detach, f.statfs_after_detach));
  Row("shutdown (SIGTERM)",
      fmt::format("{} in {:.0f} ms (client still connected)", f.shutdown, f.shutdown_ms));
  for (const auto& n : f.notes) Row("note", n);
}

void PrintGluster(const GlusterFigures& g) {
  fmt::print("\nGlusterFS {} brick multiplexing: {} single-brick volumes, brick host {} ({})\n",
             g.version, g.volumes, g.host, g.address);
  Row("glusterfsd processes", fmt::format("{} with 1 volume, {} with {} (pids {})", g.pids_1.size(),
                                          g.pids_k.size(), g.volumes, fmt::join(g.pids_k, ", ")));
  Row("brick pid per volume status", g.status_pid != 0 ? std::to_string(g.status_pid) : "n/a");
  Row("listening TCP ports",
      fmt::format("{} ({})", g.listening_k.size(), DescribeSockets(g.listening_k)));
  Row("threads", fmt::format("{} with 1 volume, {} with {}", g.threads_1, g.threads_k, g.volumes));
  Row("RSS, 1 volume",
      fmt::format("{} (idle {} ms later: {})", Kib(g.rss_1), g.idle_ms, Kib(g.rss_1_idle)));
  Row(fmt::format("RSS, {} volumes", g.volumes),
      fmt::format("{} (idle {} ms later: {})", Kib(g.rss_k), g.idle_ms, Kib(g.rss_k_idle)));
  Row("KiB per additional brick",
      fmt::format("{} idle ({} right after starting)", OptNum(g.kib_per_brick),
                  OptNum(g.kib_per_brick_busy)));
  Row("volume create", LatencyText(g.create));
  Row("volume start", LatencyText(g.start));
  Row("volume create+start", LatencyText(g.create_start));
  Row("volume stop+delete", LatencyText(g.stop_delete));
  Row("glusterd (management) RSS", Kib(g.glusterd_rss));
  Row("glusterd shutdown (SIGTERM)", g.shutdown);
  Row("reference (issue)", kGlusterReference);
}

json CairnJson(const CairnFigures& f) {
  return {{"bricks", f.bricks},
          {"brickd_pid", f.pid},
          {"processes", 1 + f.children.size()},
          {"brickd_children", f.children.size()},
          {"listen_ports_0", f.listening_0.size()},
          {"listen_ports", f.listening_n.size()},
          {"listen_addresses", SocketsJson(f.listening_n)},
          {"threads_0", f.threads_0},
          {"threads_1", f.threads_1},
          {"threads_n", f.threads_n},
          {"rss_kib_0", f.rss_0},
          {"rss_kib_1", f.rss_1},
          {"rss_kib_1_idle", f.rss_1_idle},
          {"rss_kib_n", f.rss_n},
          {"rss_kib_n_idle", f.rss_n_idle},
          {"kib_per_brick", OptJson(f.kib_per_brick)},
          {"kib_per_brick_busy", OptJson(f.kib_per_brick_busy)},
          {"attach", LatencyJson(f.attach)},
          {"list_bricks", f.listed_after_attach},
          {"statfs_ok", f.statfs_ok},
          {"statfs", LatencyJson(f.statfs)},
          {"detach_ms", Round(f.detach_ms, 3)},
          {"statfs_after_detach", f.statfs_after_detach},
          {"shutdown", f.shutdown},
          {"shutdown_ms", Round(f.shutdown_ms, 1)},
          {"notes", f.notes}};
}

json GlusterJson(const GlusterFigures& g) {
  return {{"version", g.version},
          {"brick_host", g.host},
          {"volumes", g.volumes},
          {"glusterfsd_processes_1", g.pids_1.size()},
          {"glusterfsd_processes", g.pids_k.size()},
          {"glusterfsd_pids", PidsJson(g.pids_k)},
          {"listen_ports", g.listening_k.size()},
          {"listen_addresses", SocketsJson(g.listening_k)},
          {"threads_1", g.threads_1},
          {"threads_k", g.threads_k},
          {"rss_kib_1", g.rss_1},
          {"rss_kib_1_idle", g.rss_1_idle},
          {"rss_kib_k", g.rss_k},
          {"rss_kib_k_idle", g.rss_k_idle},
          {"kib_per_brick", OptJson(g.kib_per_brick)},
          {"kib_per_brick_busy", OptJson(g.kib_per_brick_busy)},
          {"create", LatencyJson(g.create)},
          {"start", LatencyJson(g.start)},
          {"create_start", LatencyJson(g.create_start)},
          {"stop_delete", LatencyJson(g.stop_delete)},
          {"glusterd_rss_kib", g.glusterd_rss}};
}

int Main(int argc, char** argv) {
  InstallSignalThread("brick_mux_bench");
  Flags flags("brick_mux_bench",
              "Brick-multiplexing benchmark: one brickd, many bricks; GlusterFS side by side.");
  flags.AddString("brickd", CAIRN_BRICKD_DEFAULT_PATH, "brickd executable to start");
  flags.AddInt("bricks", 1000, "bricks to attach");
  flags.AddString("workdir", "/tmp",
                  "directory in which a fresh temporary directory is made (removed at exit)");
  flags.AddInt("capacity-bytes", int64_t{1} << 30, "capacity_bytes of every attached brick");
  flags.AddInt("brickd-threads", 0, "brickd --threads (0: brickd's default)");
  flags.AddString("brickd-log-level", "warn", "brickd --log-level");
  flags.AddBool("state-file", false, "give brickd a --state-file (persisted brick list)");
  flags.AddInt("statfs-samples", 10, "random bricks to StatFs in the serving check");
  flags.AddInt("idle-ms", 1000, "pause before reading idle RSS");
  flags.AddInt("seed", 0, "random seed for the serving check (0: random)");
  flags.AddBool("keep", false, "keep the temporary directory (for debugging)");
  flags.AddBool("gluster", false, "also measure GlusterFS brick multiplexing");
  flags.AddInt("gluster-volumes", 50, "GlusterFS single-brick volumes to create and start");
  AddGlusterFlags(flags, /*fuse_client=*/false);
  if (auto exit_code = ParseFlagsOrExit(flags, argc, argv)) return *exit_code;
  Options opt;
  opt.brickd = flags.GetString("brickd");
  opt.bricks = static_cast<int>(flags.GetInt("bricks"));
  opt.workdir = flags.GetString("workdir");
  opt.capacity_bytes = flags.GetInt("capacity-bytes");
  opt.brickd_threads = static_cast<int>(flags.GetInt("brickd-threads"));
  opt.brickd_log_level = flags.GetString("brickd-log-level");
  opt.state_file = flags.GetBool("state-file");
  opt.statfs_samples = static_cast<int>(flags.GetInt("statfs-samples"));
  opt.idle_ms = static_cast<int>(flags.GetInt("idle-ms"));
  opt.seed = static_cast<uint64_t>(flags.GetInt("seed"));
  opt.keep = flags.GetBool("keep");
  opt.gluster = flags.GetBool("gluster");
  opt.gluster_volumes = static_cast<int>(flags.GetInt("gluster-volumes"));
  opt.gluster_opt = GlusterOptionsFromFlags(flags, /*fuse_client=*/false);
  if (opt.bricks < 1 || opt.bricks > 100000 || opt.gluster_volumes < 1 ||
      opt.gluster_volumes > 10000 || opt.capacity_bytes < 0 || opt.statfs_samples < 0 ||
      opt.idle_ms < 0) {
    fmt::print(stderr,
               "brick_mux_bench: --bricks, --gluster-volumes, --capacity-bytes, "
               "--statfs-samples or --idle-ms out of range\n");
    return 2;
  }

  RunFrame frame;
  if (auto exit_code = OpenRun(Status::Ok(), opt.workdir, "cairn-brick-mux", opt.keep,
                               /*version_exe=*/"", /*sizes=*/"", &frame)) {
    return *exit_code;
  }
  const fs::path& root = frame.root();
  // Other load on the machine skews latencies: say how busy it was.
  const MachineInfo& machine = frame.machine;
  fmt::print("brick_mux_bench: {} bricks{}; {} CPUs, load average {}, {}; workdir {}\n", opt.bricks,
             opt.gluster ? fmt::format(", GlusterFS {} volumes", opt.gluster_volumes) : "",
             machine.cpus, machine.load1, machine.kernel, root.string());

  std::vector<std::string> failures;
  CairnFigures cairn;
  Status s = RunCairn(opt, root, &cairn, &failures);
  if (s.ok()) s = CheckInterrupted();
  if (!s.ok()) {
    fmt::print(stderr, "brick_mux_bench: FAILED (Cairn): {}\n", s.ToString());
    return ExitCode(s.ok());
  }
  PrintCairn(cairn);

  json gluster_json;
  std::optional<GlusterFigures> gluster;
  if (!opt.gluster) {
    fmt::print("\nGlusterFS: not measured (run with --gluster)\n");
    gluster_json = {{"skipped", "not requested (--gluster)"}};
  } else if (!CheckGlusterInstalled(opt.gluster_opt, /*fuse_client=*/false, "").ok()) {
    fmt::print("\nGlusterFS: not installed (scripts/setup.sh --bench)\n");
    gluster_json = {{"skipped", "not installed"}};
  } else {
    GlusterFigures g;
    GlusterRun run(opt, root / "gluster");
    s = run.Start(&g);
    if (s.ok()) s = run.Measure(&g);
    run.Cleanup(&g);
    for (const auto& p : run.problems()) failures.push_back("gluster cleanup: " + p);
    if (Interrupted()) {
      fmt::print(stderr, "brick_mux_bench: {}\n", CheckInterrupted().ToString());
      return 130;
    }
    if (s.ok()) {
      PrintGluster(g);
      gluster_json = GlusterJson(g);
      gluster = g;
    } else {
      fmt::print("\nGlusterFS: FAILED: {}\n", s.ToString());
      failures.push_back("GlusterFS: " + s.ToString());
      gluster_json = {{"error", s.ToString()}};
    }
  }

  // Side by side, ratios and targets.
  json ratios = nullptr;
  if (gluster) {
    const GlusterFigures& g = *gluster;
    auto kib = Ratio(cairn.kib_per_brick, g.kib_per_brick);
    auto p50 = Ratio(cairn.attach.p50, g.create_start.p50);
    auto p99 = Ratio(cairn.attach.p99, g.create_start.p99);
    const Table table({38, 18, 18, 14});
    fmt::print("\n");
    table.PrintHeader({"Side by side (same run, same machine)", "Cairn",
                       fmt::format("GlusterFS {}", g.version), "Cairn/Gluster"});
    auto side = [&](std::string_view label, const std::string& a, const std::string& b,
                    const std::string& r) {
      table.Print({std::string(label), a, b, r});
    };
    side("bricks", std::to_string(cairn.bricks), std::to_string(g.volumes), "");
    side("processes serving the bricks", std::to_string(1 + cairn.children.size()),
         std::to_string(g.pids_k.size()), "");
    side("listening TCP ports", std::to_string(cairn.listening_n.size()),
         std::to_string(g.listening_k.size()), "");
    side("threads with all bricks", std::to_string(cairn.threads_n), std::to_string(g.threads_k),
         "");
    side("RSS with 1 brick, idle (KiB)", std::to_string(cairn.rss_1_idle),
         std::to_string(g.rss_1_idle), "");
    side("RSS with all bricks, idle (KiB)", std::to_string(cairn.rss_n_idle),
         std::to_string(g.rss_k_idle), "");
    side("KiB per additional brick", OptNum(cairn.kib_per_brick), OptNum(g.kib_per_brick),
         OptNum(kib, 4));
    side("attach vs create+start p50 (ms)", fmt::format("{:.3f}", cairn.attach.p50),
         fmt::format("{:.3f}", g.create_start.p50), OptNum(p50, 5));
    side("attach vs create+start p99 (ms)", fmt::format("{:.3f}", cairn.attach.p99),
         fmt::format("{:.3f}", g.create_start.p99), OptNum(p99, 5));
    side("detach vs stop+delete (ms)", fmt::format("{:.3f}", cairn.detach_ms),
         fmt::format("{:.3f} p50", g.stop_delete.p50), "");
    if (kib && *kib > 0) {
      fmt::print("  GlusterFS needs {:.0f}x the memory per extra brick", 1.0 / *kib);
    }
    if (p50 && *p50 > 0) {
      fmt::print("; adding a brick takes it {:.0f}x as long (p50)", 1.0 / *p50);
    }
    fmt::print("\n");
    ratios = {{"kib_per_brick", OptJson(kib, 5)},
              {"attach_p50", OptJson(p50, 6)},
              {"attach_p99", OptJson(p99, 6)}};
  }

  const bool kib_pass = cairn.kib_per_brick && *cairn.kib_per_brick <= kTargetKibPerBrick;
  const bool p99_pass = cairn.attach.n > 0 && cairn.attach.p99 <= kTargetAttachP99Ms;
  fmt::print("\nTargets (Cairn)\n");
  fmt::print("  {:<36}{:>14}  {}\n",
             fmt::format("RSS per idle brick <= {:.0f} KiB", kTargetKibPerBrick),
             OptNum(cairn.kib_per_brick) + " KiB", kib_pass ? "PASS" : "MISS");
  fmt::print("  {:<36}{:>14}  {}\n", fmt::format("attach p99 <= {:.0f} ms", kTargetAttachP99Ms),
             fmt::format("{:.3f} ms", cairn.attach.p99), p99_pass ? "PASS" : "MISS");
  if (!failures.empty()) {
    fmt::print("\nChecks that FAILED:\n");
    for (const auto& f : failures) fmt::print("  - {}\n", f);
  }

  json out = {{"benchmark", "brick_mux"},
              {"machine", machine.Json()},
              {"cairn", CairnJson(cairn)},
              {"gluster", gluster_json},
              {"ratios", ratios},
              {"targets",
               {{"kib_per_brick_max", kTargetKibPerBrick},
                {"kib_per_brick", kib_pass ? "PASS" : "MISS"},
                {"attach_p99_ms_max", kTargetAttachP99Ms},
                {"attach_p99", p99_pass ? "PASS" : "MISS"}}},
              {"failures", failures},
              {"ok", failures.empty()}};
  (void)EmitResult(out, "");
  return failures.empty() ? 0 : 1;
}

}  // namespace
}  // namespace cairn::bench

int main(int argc, char** argv) { return cairn::bench::Main(argc, argv); }
