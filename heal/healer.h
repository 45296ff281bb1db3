// Internals of VolumeHealer (heal.h), shared by heal.cc (the poll loop,
// GetInfo, Resolve, the full crawl) and object_heal.cc (healing one object).
// Design: docs/heal.md.
#pragma once

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "client/node.h"
#include "client/spec.h"
#include "client/version.h"
#include "common/id.h"
#include "common/status.h"
#include "heal/heal.h"

namespace cairn::heal {

namespace pb = ::cairn::brick::v1;

// Bytes of data per Checksum call (and per step of the data heal).
inline constexpr uint64_t kChunkBytes = 64ull << 20;
// The brick's limit per Read/Write.
inline constexpr uint64_t kMaxIo = 4ull << 20;
// Read-then-write copies in flight at once during a data heal.
inline constexpr size_t kCopyStreams = 4;
inline constexpr char kLayoutXattr[] = "trusted.cairn.layout";
inline constexpr char kLinktoXattr[] = "trusted.cairn.linkto";

// What became of one object's heal.
enum class Outcome {
  kDone,        // healed (or nothing to do) and its marks cleared where possible
  kWaiting,     // needs a replica that is unreachable: retried when one comes back
  kDeferred,    // depends on another object's heal (its directory): retried next poll
  kSplitBrain,  // recorded, left alone until Resolve
};

// One replica of a subvolume.
struct Replica {
  client::Node* node = nullptr;
  std::string brick_id;
  bool arbiter = false;
  client::CallTarget target;
};

struct Subvolume {
  std::vector<Replica> replicas;
  int local = -1;  // index of this node's brick, -1: none
  int quorum = 2;
  // Reachability at the last probe (guarded by HealerImpl::mu_).
  std::vector<bool> reachable;
};

// One replica's view of an object.
struct ReplicaState {
  bool reachable = false;
  bool present = false;
  pb::Attr attr;  // when present
};

// A directory listing: name → (id, attributes).
struct Entry {
  Uuid id;
  pb::Attr attr;
};
using Listing = std::map<std::string, Entry>;

// Metadata compared between replicas (times excluded: they differ slightly
// between bricks by nature).
struct Meta {
  uint32_t mode = 0, uid = 0, gid = 0;
  std::map<std::string, std::string> xattrs;
  friend bool operator==(const Meta&, const Meta&) = default;
};

using client::VersionEq;
using client::VersionMax;
std::string VersionText(const pb::Version& v);

// The healer of one volume. Public: what VolumeHealer and ObjectHealer use;
// private: the poll loop's state.
class HealerImpl {
 public:
  HealerImpl(client::VolumeSpec spec, Options options);
  // Stops the loop and joins it.
  ~HealerImpl();

  // Starts polling: on opt_.scheduler, else on a thread of its own.
  void StartPolling();
  // One poll: a pass, and a full crawl when one is due. Returns the wait
  // until the next (interval, or longer while quiet). Called by one thread at
  // a time (the healer's own, or a scheduler's).
  std::chrono::milliseconds Tick();
  Info GetInfo();
  void Kick();
  void TriggerFullCrawl();
  Status Resolve(const Uuid& id, Policy policy, const std::string& source_brick);

  // ---- Brick calls (heal.cc). Transport failures are Unavailable/ENOTCONN.
  template <class Req, class Rep, class Issue>
  StatusOr<Rep> Call(const Replica& r, Req req, Issue issue,
                     std::chrono::milliseconds timeout = std::chrono::milliseconds(0)) {
    return CallWith<Req, Rep>(opt_.token, r, std::move(req), issue, timeout);
  }
  // The same with another token.
  template <class Req, class Rep, class Issue>
  StatusOr<Rep> CallWith(const std::string& token, const Replica& r, Req req, Issue issue,
                         std::chrono::milliseconds timeout = std::chrono::milliseconds(0));
  // GetAttr of `id` on every replica of subvolume s, in parallel.
  StatusOr<std::vector<ReplicaState>> Stat(int s, const Uuid& id);
  StatusOr<Listing> List(const Replica& r, const Uuid& dir);
  StatusOr<Meta> GetMeta(const Replica& r, const Uuid& id, const pb::Attr& attr);
  // The Txn of a heal write: unmarked, conditional on `expected`.
  pb::Txn HealTxn(const pb::Version& expected);

  // ---- Healing one object (object_heal.cc).
  // Heals `id` on subvolume s unless another thread is at it (kDeferred).
  // force >= 0: Resolve — replica `force` is the source of everything.
  // fresh: replicas where an entry heal just created it (their times are set).
  StatusOr<Outcome> HealClaimed(int s, const Uuid& id, int force = -1, int depth = 0,
                                const std::vector<int>& fresh = {});
  void RecordSplitBrain(int s, const Uuid& id, const std::string& kind,
                        const std::vector<int>& replicas, const std::string& detail,
                        const std::vector<ReplicaState>& state);
  // Whether the copies of `id` were compared (and agreed) at the versions in
  // `st` — every present replica's version as recorded by SetVerified.
  bool Verified(int s, const Uuid& id, const std::vector<ReplicaState>& st);
  // True if replicas `rs` were compared (and agreed) at the versions they
  // have now in `st`, whatever the other replicas were then: sources that
  // agreed need no new comparison when a sink returns.
  bool VerifiedAmong(int s, const Uuid& id, const std::vector<ReplicaState>& st,
                     const std::vector<int>& rs);
  void SetVerified(int s, const Uuid& id, std::vector<std::optional<pb::Version>> versions);
  // Records a file parked on replica r of subvolume s (see parked_).
  void Park(int s, int r, const Uuid& id);
  // Runs fn(i) for i in [0, n) on the calling thread and as many more as the
  // budget of options.parallel allows (nested calls share it).
  void ParallelFor(size_t n, const std::function<void(size_t)>& fn);
  // Logs event=heal_progress if the last one is 5 s old (also called from
  // long data heals).
  void MaybeLogProgress();
  bool stopping() const { return stopping_.load(std::memory_order_relaxed); }

  const client::VolumeSpec spec_;
  const Options opt_;
  const std::string client_id_ = Uuid::Random().Raw();
  std::vector<std::shared_ptr<client::Node>> nodes_;  // shared with other healers
  std::vector<Subvolume> subs_;
  // The digest algorithm asked of the bricks: options.digest until a brick
  // answers with another one (an older brickd), then that one for good.
  std::atomic<DigestAlgorithm> digest_;
  // Copies go brick to brick (Options.admin_token; false after a brickd
  // could not do it).
  std::atomic<bool> peer_copy_{true};
  // Statistics.
  std::atomic<uint64_t> healed_objects_{0}, healed_bytes_{0}, checksummed_bytes_{0},
      entries_created_{0}, entries_removed_{0}, errors_{0}, full_crawls_{0};
  std::atomic<uint64_t> peer_copied_bytes_{0};  // of healed_bytes_: brick to brick
  std::atomic<bool> active_{false};

 private:
  StatusOr<Outcome> HealObject(int s, const Uuid& id, int force, int depth,
                               const std::vector<int>& fresh);

  // ---- The poll loop (heal.cc).
  void Run();  // the healer's own thread, without a scheduler
  void Pass();
  void FullCrawl();
  void CrawlSubvolume(int s);
  // Probes subvolume s's bricks; true if this healer heals it now.
  bool ProbeAndOwn(int s);
  // Retry and backoff bookkeeping after one object's heal.
  void Settle(int s, const Uuid& id, const StatusOr<Outcome>& result);
  // Forgets parked files that no longer need to wait (linked again, or gone
  // on every other replica).
  void SweepParked();

  std::atomic<uint64_t> seq_{0};
  std::atomic<uint64_t> pending_now_{0};  // objects left in the current pass
  std::atomic<int> busy_{0};              // extra threads at work (ParallelFor)
  std::atomic<bool> stopping_{false};
  std::thread thread_;

  std::mutex mu_;  // guards everything below
  std::condition_variable cv_;
  bool kick_ = false;
  bool crawl_ = false;
  // Objects being healed by some thread (subvolume, id).
  std::set<std::pair<int, Uuid>> in_progress_;
  // Dirty ids as seen by the last polls: versions per replica (absent: not dirty there).
  struct Seen {
    std::vector<std::optional<pb::Version>> versions;
    int polls = 0;
  };
  std::map<std::pair<int, Uuid>, Seen> seen_;
  struct Retry {
    int attempts = 0;
    std::chrono::steady_clock::time_point next;
  };
  std::map<std::pair<int, Uuid>, Retry> retry_;
  struct SplitRecord {
    SplitBrain info;
    std::vector<pb::Version> versions;  // per replica when detected (zero: absent)
  };
  std::map<std::pair<int, Uuid>, SplitRecord> split_;
  // Objects whose reachable copies agreed at these versions (per replica).
  std::map<std::pair<int, Uuid>, std::vector<std::optional<pb::Version>>> verified_;
  // Files parked in a sink's orphan area (Unlink keep_open) by an entry heal
  // until the heal of their new directory links them again: (subvolume,
  // replica, id).
  std::set<std::tuple<int, int, Uuid>> parked_;
  // Touched by Tick only (one thread at a time).
  std::chrono::steady_clock::time_point next_crawl_;
  std::chrono::milliseconds wait_{0};
  bool had_work_ = false;
  bool quiet_ = false;  // the last pass found nothing dirty and every replica up
  // True if the node-wide summaries show nothing to do (see Options).
  bool SummariesClean();
  std::atomic<uint64_t> passes_{0}, summary_skips_{0};
  std::chrono::steady_clock::time_point pass_start_, last_progress_log_;
  uint64_t pass_healed_start_ = 0, pass_bytes_start_ = 0;
};

template <class Req, class Rep, class Issue>
StatusOr<Rep> HealerImpl::CallWith(const std::string& token, const Replica& r, Req req, Issue issue,
                                   std::chrono::milliseconds timeout) {
  req.set_brick_id(r.brick_id);
  auto res = client::FanOut<Req, Rep>(
      {r.target}, token, timeout.count() > 0 ? timeout : opt_.rpc_timeout,
      [&](size_t) { return req; }, issue, /*include_down=*/true);
  if (res[0].ok()) return std::move(res[0].reply);
  if (res[0].transport) {
    return Status(
        StatusCode::kUnavailable,
        "brick " + r.brick_id + " on " + r.node->address() + ": " + res[0].status.message(),
        ENOTCONN);
  }
  return res[0].status;
}

}  // namespace cairn::heal
