// Self-heal of a replicated volume (docs/heal.md).
//
//   heal::Options o;
//   o.token = data_token;
//   o.local_node = "10.0.0.2:24009";   // this node's brickd, as in the spec
//   auto healer = heal::VolumeHealer::Start(spec, o);
//   heal::Info info = (*healer)->GetInfo();
//
// One VolumeHealer per replicated volume with a brick on the node. It heals
// the subvolumes whose lowest reachable replica is its local brick: polls the
// dirty indexes of all replicas, brings replicas with lower versions up to
// date (entries, data block by block, metadata) with conditional writes that
// never overwrite a client's newer mutation, and clears the marks. Split-brain
// (equal versions, different contents, no majority) is reported, not healed,
// until Resolve. All methods are thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "client/spec.h"
#include "common/digest.h"
#include "common/id.h"
#include "common/status.h"

namespace cairn::heal {

class Scheduler;

struct Options {
  std::string token;  // data token of the volume's bricks
  // brickd's admin token. Given, data heals copy brick to brick (the sink's
  // brickd reads from the source's: Brick.CopyFrom) instead of through the
  // healer; a brickd without the call, or that refuses the token, gets the
  // copies through the healer from then on. Empty: always through the healer.
  std::string admin_token;
  std::string local_node;  // this node's brickd address as written in the spec ("host:port")
  int parallel = 8;        // objects healed at once (bound)
  std::chrono::milliseconds interval{250};  // dirty-index poll period
  // A volume that is quiet (no dirty entry, every replica reachable) is
  // polled ever less often, doubling up to this (a node with hundreds of
  // volumes must not spend its CPU polling them 4 times a second). A replica
  // away or a dirty entry brings the period back to `interval` at once.
  // 0 or <= interval: always `interval`.
  std::chrono::milliseconds idle_interval{0};
  std::chrono::seconds full_crawl_interval{600};  // safety-net full crawl; 0 = never
  // A quiet volume's poll first asks each of its brickd for its node-wide
  // dirty summary (one call per brickd per `interval`, shared by every
  // healer of the process) and skips the per-brick probes and listings when
  // every brick is attached and clean. False: always poll every brick.
  bool node_summaries = true;
  // Start as if a pass had found the volume quiet: the first poll already
  // trusts the node summaries (one that does not list a brick is fetched
  // again when 50 ms old). For a volume just created, whose bricks are new
  // and empty; without node summaries it has no effect.
  bool start_quiet = false;
  uint32_t block_size = 128 * 1024;  // data heal granularity (power of two, 4K..4M)
  // Block digests asked of the bricks (common/digest.h). A brick that does
  // not know the algorithm answers with SHA-256; the healer then uses that.
  DigestAlgorithm digest = DigestAlgorithm::kXxh3_128;
  std::chrono::milliseconds rpc_timeout{15000};
  // Runs the healer's polls on this pool, shared with the other healers of
  // the process, instead of on a thread of its own (null).
  std::shared_ptr<Scheduler> scheduler;
};

// A pool of threads that runs the polls of many VolumeHealers: a node with
// hundreds of volumes keeps a few heal threads instead of one per volume.
// Each healer is due at its own time (its interval, backed off while quiet;
// Kick and TriggerFullCrawl make it due now) and runs on one thread at a time.
// The pool keeps `min_threads` and grows, up to `max_threads`, while healers
// are due and every thread is busy (a pass that heals for minutes, or polls
// waiting on an unreachable brick); threads above `min_threads` leave after
// 10 s without work. Healers hold a reference: it lives until the last one
// is gone.
class SchedulerImpl;
class Scheduler {
 public:
  explicit Scheduler(int min_threads = 2, int max_threads = 64);
  ~Scheduler();  // joins the threads
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Threads right now (for tests and metrics).
  int threads() const;

 private:
  friend class HealerImpl;
  std::unique_ptr<SchedulerImpl> impl_;
};

// How Resolve picks the good copy of a split-brain object.
enum class Policy {
  kSourceBrick,  // the brick named by source_brick
  kLatestMtime,  // the (data) replica with the latest mtime
  kBiggerFile,   // the replica with the largest file (regular files only)
};

// One brick's dirty index as GetInfo found it.
struct BrickPending {
  std::string brick_id, node;
  bool connected = false;
  uint64_t pending = 0;                 // entries in its dirty index
  std::vector<std::string> sample_ids;  // a few of them (canonical uuid form)
};

struct SplitBrain {
  Uuid id;
  std::string kind;                 // data|metadata|entry
  std::vector<std::string> bricks;  // the disagreeing replicas (brick ids)
  std::string detail;
};

struct Stats {
  uint64_t healed_objects = 0;
  uint64_t healed_bytes = 0;  // data bytes written to sinks
  uint64_t checksummed_bytes = 0;
  uint64_t entries_created = 0;
  uint64_t entries_removed = 0;
  uint64_t errors = 0;
  uint64_t full_crawls = 0;
  uint64_t passes = 0;             // polls that probed and listed the bricks
  uint64_t summary_skips = 0;      // polls answered by the node-wide dirty summaries
  uint64_t peer_copied_bytes = 0;  // of healed_bytes, copied brick to brick (CopyFrom)
  bool active = false;             // a pass is healing right now
};

struct Info {
  std::vector<BrickPending> bricks;  // every brick of the volume, in spec order
  std::vector<SplitBrain> split_brain;
  Stats stats;
};

class HealerImpl;

class VolumeHealer {
 public:
  // Starts polling (on a thread of its own, or on options.scheduler).
  // InvalidArgument for a volume that is not replicated or bad options.
  static StatusOr<std::unique_ptr<VolumeHealer>> Start(const client::VolumeSpec& spec,
                                                       Options options);
  // Stops and joins its threads promptly (work in progress is abandoned; it
  // is conditional, so nothing is left half-committed).
  ~VolumeHealer();
  VolumeHealer(const VolumeHealer&) = delete;
  VolumeHealer& operator=(const VolumeHealer&) = delete;

  // Pending = dirty-index entries per brick of the volume (asks the bricks).
  Info GetInfo();
  // Polls now instead of at the next interval.
  void Kick();
  // Walks the whole tree on every replica at the next poll.
  void TriggerFullCrawl();
  // Heals a split-brain object from the copy the policy picks (source_brick
  // for kSourceBrick). Also works on objects not reported as split-brain.
  Status Resolve(const Uuid& id, Policy policy, const std::string& source_brick);

 private:
  explicit VolumeHealer(std::unique_ptr<HealerImpl> impl);
  std::unique_ptr<HealerImpl> impl_;
};

}  // namespace cairn::heal
