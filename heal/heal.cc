// VolumeHealer: the poll loop (who heals, dirty indexes, backoff), the full
// crawl, GetInfo and Resolve. Healing one object is object_heal.cc.
// Design: docs/heal.md.
#include "heal/heal.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <deque>

#include "heal/healer.h"

namespace cairn::heal {

namespace {

constexpr auto kProgressLogEvery = std::chrono::seconds(5);
constexpr auto kMaxBackoff = std::chrono::seconds(30);
constexpr auto kProbeTimeout = std::chrono::milliseconds(2000);
constexpr auto kReconnectWait = std::chrono::milliseconds(100);
// A dirty entry seen this many polls is healed even if its versions keep moving.
constexpr int kForcePolls = 20;
constexpr uint32_t kListPage = 4096;
constexpr size_t kSampleIds = 5;

bool SameVersions(const std::vector<std::optional<pb::Version>>& a,
                  const std::vector<std::optional<pb::Version>>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].has_value() != b[i].has_value()) return false;
    if (a[i] && !VersionEq(*a[i], *b[i])) return false;
  }
  return true;
}

}  // namespace

std::string VersionText(const pb::Version& v) {
  return std::to_string(v.data()) + "/" + std::to_string(v.meta()) + "/" +
         std::to_string(v.entry());
}

// One connection per brickd for every healer of the process: a node with
// hundreds of volumes would otherwise hold hundreds of connections to each
// brickd (and each costs the brickd memory). Kept while a healer uses it.
static std::shared_ptr<client::Node> SharedNode(const std::string& address) {
  static std::mutex mu;
  static std::map<std::string, std::weak_ptr<client::Node>> nodes;
  std::lock_guard l(mu);
  auto& weak = nodes[address];
  if (auto node = weak.lock()) return node;
  auto node = std::make_shared<client::Node>(address);
  weak = node;
  return node;
}

// Node-wide dirty summaries (Brick.DirtySummary), one call per brickd per
// `max_age` for every healer of the process. A brickd that cannot answer
// (down, or one without the call) gives no summary: its volumes poll in full.
namespace {
struct NodeSummary {
  std::mutex mu;  // held while fetching: one call at a time per brickd
  std::chrono::steady_clock::time_point at{};
  bool ok = false;
  std::map<std::string, bool> dirty;  // brick id → has dirty entries
};

std::shared_ptr<NodeSummary> SummaryOf(const std::string& address) {
  static std::mutex mu;
  static std::map<std::string, std::shared_ptr<NodeSummary>> all;
  std::lock_guard l(mu);
  auto& p = all[address];
  if (!p) p = std::make_shared<NodeSummary>();
  return p;
}

// A summary that does not list a brick is fetched again once it is this old:
// the brick may be newer than the summary (the bricks of a new volume are
// created on all its nodes at about the same time).
constexpr auto kUnlistedMaxAge = std::chrono::milliseconds(50);

// Whether `brick` on `node` is attached and clean by a summary at most
// `max_age` old (fetched now if the cached one is older).
bool SummaryClean(client::Node* node, const std::string& brick, const std::string& token,
                  std::chrono::milliseconds max_age) {
  auto sum = SummaryOf(node->address());
  std::lock_guard l(sum->mu);
  const auto now = std::chrono::steady_clock::now();
  const bool unlisted = sum->ok && !sum->dirty.count(brick) && now - sum->at > kUnlistedMaxAge;
  if (now - sum->at > max_age || unlisted) {
    sum->at = now;
    sum->ok = false;
    sum->dirty.clear();
    if (node->connected()) {
      auto res = client::FanOut<pb::DirtySummaryRequest, pb::DirtySummaryReply>(
          {client::CallTarget{node, ""}}, token, kProbeTimeout,
          [](size_t) { return pb::DirtySummaryRequest(); }, CAIRN_ASYNC(DirtySummary));
      if (res[0].ok()) {
        sum->ok = true;
        for (const auto& b : res[0].reply.bricks()) sum->dirty[b.brick_id()] = b.dirty();
      }
    }
  }
  if (!sum->ok) return false;
  auto it = sum->dirty.find(brick);
  return it != sum->dirty.end() && !it->second;
}
}  // namespace

bool HealerImpl::SummariesClean() {
  if (!opt_.node_summaries) return false;
  {
    std::lock_guard l(mu_);
    if (!quiet_ || !retry_.empty() || !parked_.empty() || !in_progress_.empty()) return false;
  }
  for (const Subvolume& sub : subs_) {
    if (sub.local < 0) continue;
    for (size_t r = 0; r < sub.replicas.size(); ++r) {
      {
        std::lock_guard l(mu_);
        if (!sub.reachable[r]) return false;
      }
      if (!SummaryClean(sub.replicas[r].node, sub.replicas[r].brick_id, opt_.token,
                        opt_.interval)) {
        return false;
      }
    }
  }
  return true;
}

// ---------------------------------------------------------------------------
// Scheduler: healers due at their own times, run by an elastic pool.

class SchedulerImpl {
 public:
  using Clock = std::chrono::steady_clock;

  SchedulerImpl(int min_threads, int max_threads)
      : min_(std::max(1, min_threads)), max_(std::max(min_, max_threads)) {
    std::lock_guard l(mu_);
    for (int i = 0; i < min_; ++i) SpawnLocked();
    monitor_ = std::thread([this] { Monitor(); });
  }

  ~SchedulerImpl() {
    std::map<std::thread::id, std::thread> threads;
    {
      std::lock_guard l(mu_);
      stop_ = true;
      cv_.notify_all();
      monitor_cv_.notify_all();
      threads.swap(threads_);
    }
    monitor_.join();
    for (auto& [id, t] : threads) t.join();
  }

  int threads() const {
    std::lock_guard l(mu_);
    return live_;
  }

  void Add(HealerImpl* h, std::chrono::milliseconds first_wait) {
    std::lock_guard l(mu_);
    Job& j = jobs_[h];
    j.due = Clock::now() + first_wait;
    j.queued = true;
    queue_.emplace(j.due, h);
    cv_.notify_one();
    monitor_cv_.notify_one();
  }

  void Wake(HealerImpl* h) {
    std::lock_guard l(mu_);
    auto it = jobs_.find(h);
    if (it == jobs_.end() || it->second.removing) return;
    Job& j = it->second;
    if (j.running) {
      j.wake = true;  // due again as soon as this poll ends
      return;
    }
    if (!j.queued) return;
    queue_.erase({j.due, h});
    j.due = Clock::now();
    queue_.emplace(j.due, h);
    cv_.notify_one();
    monitor_cv_.notify_one();
  }

  // Returns once `h` is not running and never will be again.
  void Remove(HealerImpl* h) {
    std::unique_lock l(mu_);
    auto it = jobs_.find(h);
    if (it == jobs_.end()) return;
    it->second.removing = true;
    if (it->second.queued) queue_.erase({it->second.due, h});
    done_cv_.wait(l, [&] { return !jobs_.at(h).running; });
    jobs_.erase(h);
  }

 private:
  struct Job {
    Clock::time_point due;
    bool queued = false;
    bool running = false;
    bool wake = false;
    bool removing = false;
  };

  // A healer this late with no thread free to take it: one more thread.
  static constexpr auto kLate = std::chrono::milliseconds(50);
  // A thread beyond min_threads leaves after this long without work.
  static constexpr auto kIdleExit = std::chrono::seconds(10);

  void SpawnLocked() {
    // Threads that left (idle) are joined first: their stacks go.
    for (const auto& id : exited_) {
      auto it = threads_.find(id);
      if (it == threads_.end()) continue;
      it->second.join();  // it has released mu_ and is ending
      threads_.erase(it);
    }
    exited_.clear();
    ++live_;
    std::thread t([this] { Work(); });
    const auto id = t.get_id();
    threads_.emplace(id, std::move(t));
  }

  // Grows the pool while the next healer is overdue and every thread is busy
  // (each thread may be in a long pass: nobody else would notice).
  void Monitor() {
    std::unique_lock l(mu_);
    while (!stop_) {
      const auto now = Clock::now();
      if (queue_.empty()) {
        monitor_cv_.wait_for(l, kIdleExit);
        continue;
      }
      const auto late = queue_.begin()->first + kLate;
      if (late > now) {
        monitor_cv_.wait_until(l, late);
        continue;
      }
      if (idle_ == 0 && live_ < max_) SpawnLocked();
      monitor_cv_.wait_for(l, kLate);  // then look again
    }
  }

  void Work() {
    std::unique_lock l(mu_);
    auto idle_since = Clock::now();
    while (!stop_) {
      const auto now = Clock::now();
      if (queue_.empty() || queue_.begin()->first > now) {
        if (live_ > min_ && now - idle_since > kIdleExit) break;
        const auto until = queue_.empty() ? now + kIdleExit : queue_.begin()->first;
        ++idle_;
        cv_.wait_until(l, std::min(until, now + kIdleExit));
        --idle_;
        continue;
      }
      HealerImpl* h = queue_.begin()->second;
      queue_.erase(queue_.begin());
      Job& j = jobs_.at(h);
      j.queued = false;
      j.running = true;
      j.wake = false;
      l.unlock();
      const std::chrono::milliseconds wait = h->Tick();
      l.lock();
      Job& done = jobs_.at(h);  // Remove waits for running == false before erasing
      done.running = false;
      if (done.removing) {
        done_cv_.notify_all();
      } else {
        done.due = done.wake ? Clock::now() : Clock::now() + wait;
        done.wake = false;
        done.queued = true;
        queue_.emplace(done.due, h);
        monitor_cv_.notify_one();
      }
      idle_since = Clock::now();
    }
    --live_;
    exited_.push_back(std::this_thread::get_id());  // joined by the next spawn or the destructor
  }

  const int min_, max_;
  mutable std::mutex mu_;
  std::condition_variable cv_, done_cv_, monitor_cv_;
  bool stop_ = false;
  int live_ = 0;  // threads in Work
  int idle_ = 0;  // of them, waiting for a due healer
  std::map<HealerImpl*, Job> jobs_;
  std::set<std::pair<Clock::time_point, HealerImpl*>> queue_;
  std::map<std::thread::id, std::thread> threads_;
  std::vector<std::thread::id> exited_;
  std::thread monitor_;
};

Scheduler::Scheduler(int min_threads, int max_threads)
    : impl_(std::make_unique<SchedulerImpl>(min_threads, max_threads)) {}
Scheduler::~Scheduler() = default;
int Scheduler::threads() const { return impl_->threads(); }

// ---------------------------------------------------------------------------

HealerImpl::HealerImpl(client::VolumeSpec spec, Options options)
    : spec_(std::move(spec)), opt_(std::move(options)) {
  std::map<std::string, client::Node*> by_addr;
  for (const auto& sv : spec_.subvolumes) {
    Subvolume sub;
    sub.quorum = spec_.Quorum();
    for (const auto& b : sv) {
      client::Node*& node = by_addr[b.node];
      if (node == nullptr) {
        nodes_.push_back(SharedNode(b.node));
        node = nodes_.back().get();
      }
      if (b.node == opt_.local_node) sub.local = static_cast<int>(sub.replicas.size());
      sub.replicas.push_back({node, b.brick_id, b.arbiter, {node, b.brick_id}});
    }
    sub.reachable.assign(sub.replicas.size(), true);
    subs_.push_back(std::move(sub));
  }
  digest_ = opt_.digest;
  quiet_ = opt_.start_quiet && opt_.node_summaries;
}

HealerImpl::~HealerImpl() {
  stopping_ = true;
  {
    std::lock_guard l(mu_);
    kick_ = true;
  }
  cv_.notify_all();
  // Waits for a poll of ours that runs on the scheduler (it sees stopping()).
  if (opt_.scheduler) opt_.scheduler->impl_->Remove(this);
  if (thread_.joinable()) thread_.join();
}

void HealerImpl::StartPolling() {
  next_crawl_ = std::chrono::steady_clock::now() + opt_.full_crawl_interval;
  wait_ = opt_.interval;
  if (opt_.scheduler) {
    opt_.scheduler->impl_->Add(this, opt_.interval);
  } else {
    thread_ = std::thread([this] { Run(); });
  }
}

void HealerImpl::Kick() {
  {
    std::lock_guard l(mu_);
    kick_ = true;
  }
  cv_.notify_all();
  if (opt_.scheduler) opt_.scheduler->impl_->Wake(this);
}

void HealerImpl::TriggerFullCrawl() {
  {
    std::lock_guard l(mu_);
    crawl_ = true;
  }
  cv_.notify_all();
  if (opt_.scheduler) opt_.scheduler->impl_->Wake(this);
}

pb::Txn HealerImpl::HealTxn(const pb::Version& expected) {
  pb::Txn t;
  t.set_client_id(client_id_);
  t.set_seq(seq_.fetch_add(1) + 1);
  t.set_mark_dirty(false);
  *t.mutable_expected() = expected;
  return t;
}

StatusOr<std::vector<ReplicaState>> HealerImpl::Stat(int s, const Uuid& id) {
  const Subvolume& sub = subs_[s];
  std::vector<client::CallTarget> targets;
  for (const auto& r : sub.replicas) targets.push_back(r.target);
  auto res = client::FanOut<pb::GetAttrRequest, pb::AttrReply>(
      targets, opt_.token, opt_.rpc_timeout,
      [&](size_t i) {
        pb::GetAttrRequest q;
        q.set_brick_id(targets[i].brick_id);
        q.set_id(id.Raw());
        return q;
      },
      CAIRN_ASYNC(GetAttr), /*include_down=*/true);
  std::vector<ReplicaState> out(res.size());
  for (size_t r = 0; r < res.size(); ++r) {
    if (res[r].ok()) {
      out[r].reachable = true;
      out[r].attr = std::move(*res[r].reply.mutable_attr());
      // A file without a name (unlinked while open, or a crashed create) is
      // as good as gone for heal.
      out[r].present = out[r].attr.type() == pb::FILE_TYPE_DIRECTORY || out[r].attr.nlink() > 0;
    } else if (res[r].transport || res[r].status.code() == StatusCode::kUnavailable ||
               (res[r].status.code() == StatusCode::kNotFound &&
                res[r].status.posix_errno() == 0)) {
      out[r].reachable = false;  // down, or the brick is not attached there (now)
    } else if (res[r].status.posix_errno() == ENOENT) {
      out[r].reachable = true;
    } else {
      return res[r].status.WithContext("brick " + sub.replicas[r].brick_id);
    }
  }
  return out;
}

StatusOr<Listing> HealerImpl::List(const Replica& r, const Uuid& dir) {
  Listing out;
  uint64_t cookie = 0;
  for (;;) {
    pb::ReadDirRequest q;
    q.set_id(dir.Raw());
    q.set_cookie(cookie);
    q.set_max_entries(kListPage);
    q.set_with_attrs(true);
    CAIRN_ASSIGN_OR_RETURN(
        auto page, (Call<pb::ReadDirRequest, pb::ReadDirReply>(r, q, CAIRN_ASYNC(ReadDir))));
    for (auto& e : *page.mutable_entries()) {
      if (e.id().empty()) continue;  // not created through Cairn: not heal's
      auto id = Uuid::FromBytes(e.id());
      if (!id.ok()) continue;
      out[e.name()] = Entry{*id, std::move(*e.mutable_attr())};
    }
    if (page.eof()) break;
    cookie = page.next_cookie();
  }
  return out;
}

StatusOr<Meta> HealerImpl::GetMeta(const Replica& r, const Uuid& id, const pb::Attr& attr) {
  Meta m;
  m.mode = attr.mode();
  m.uid = attr.uid();
  m.gid = attr.gid();
  pb::ListXattrRequest lq;
  lq.set_id(id.Raw());
  CAIRN_ASSIGN_OR_RETURN(
      auto names, (Call<pb::ListXattrRequest, pb::ListXattrReply>(r, lq, CAIRN_ASYNC(ListXattr))));
  // The listing has the client-owned trusted.cairn.layout/linkto too.
  for (const auto& name : names.names()) {
    pb::GetXattrRequest q;
    q.set_id(id.Raw());
    q.set_name(name);
    auto v = Call<pb::GetXattrRequest, pb::GetXattrReply>(r, q, CAIRN_ASYNC(GetXattr));
    if (v.ok()) {
      m.xattrs[name] = std::move(*v->mutable_value());
    } else if (v.status().posix_errno() != ENODATA) {
      return v.status();
    }
  }
  return m;
}

void HealerImpl::RecordSplitBrain(int s, const Uuid& id, const std::string& kind,
                                  const std::vector<int>& replicas, const std::string& detail,
                                  const std::vector<ReplicaState>& state) {
  SplitRecord rec;
  rec.info.id = id;
  rec.info.kind = kind;
  for (int r : replicas) rec.info.bricks.push_back(subs_[s].replicas[r].brick_id);
  rec.info.detail = detail;
  for (const auto& x : state) rec.versions.push_back(x.present ? x.attr.version() : pb::Version());
  bool fresh;
  {
    std::lock_guard l(mu_);
    auto it = split_.find({s, id});
    fresh = it == split_.end() || it->second.info.kind != kind;
    split_[{s, id}] = std::move(rec);
  }
  if (fresh) {
    std::string bricks;
    for (int r : replicas) bricks += (bricks.empty() ? "" : ",") + subs_[s].replicas[r].brick_id;
    spdlog::error("event=heal_split_brain volume={} id={} kind={} bricks={} detail=\"{}\"",
                  spec_.name, id.ToString(), kind, bricks, detail);
  }
}

bool HealerImpl::Verified(int s, const Uuid& id, const std::vector<ReplicaState>& st) {
  std::lock_guard l(mu_);
  auto it = verified_.find({s, id});
  if (it == verified_.end() || it->second.size() != st.size()) return false;
  for (size_t r = 0; r < st.size(); ++r) {
    if (st[r].present != it->second[r].has_value()) return false;
    if (st[r].present && !VersionEq(st[r].attr.version(), *it->second[r])) return false;
  }
  return true;
}

bool HealerImpl::VerifiedAmong(int s, const Uuid& id, const std::vector<ReplicaState>& st,
                               const std::vector<int>& rs) {
  std::lock_guard l(mu_);
  auto it = verified_.find({s, id});
  if (it == verified_.end() || it->second.size() != st.size()) return false;
  for (int r : rs) {
    const auto& rec = it->second[static_cast<size_t>(r)];
    if (!st[r].present || !rec.has_value() || !VersionEq(st[r].attr.version(), *rec)) return false;
  }
  return true;
}

void HealerImpl::SetVerified(int s, const Uuid& id,
                             std::vector<std::optional<pb::Version>> versions) {
  std::lock_guard l(mu_);
  verified_[{s, id}] = std::move(versions);
}

void HealerImpl::Park(int s, int r, const Uuid& id) {
  std::lock_guard l(mu_);
  parked_.insert({s, r, id});
}

void HealerImpl::SweepParked() {
  std::vector<std::tuple<int, int, Uuid>> parked;
  {
    std::lock_guard l(mu_);
    parked.assign(parked_.begin(), parked_.end());
  }
  for (const auto& [s, r, id] : parked) {
    auto st = Stat(s, id);
    if (!st.ok()) continue;
    bool linked = (*st)[r].present;
    bool elsewhere = false;
    for (size_t o = 0; o < st->size(); ++o) {
      if (static_cast<int>(o) != r && ((*st)[o].present || !(*st)[o].reachable)) elsewhere = true;
    }
    if (!linked && elsewhere) continue;  // still waits for its new name
    if (!linked) {
      // Gone from every other replica: drop the parked data.
      pb::ForgetRequest q;
      q.add_ids(id.Raw());
      (void)Call<pb::ForgetRequest, pb::Empty>(subs_[s].replicas[r], q, CAIRN_ASYNC(Forget));
    }
    std::lock_guard l(mu_);
    parked_.erase({s, r, id});
  }
}

// ---- The poll loop -----------------------------------------------------------

void HealerImpl::Run() {
  std::unique_lock l(mu_);
  auto wait = opt_.interval;
  while (!stopping()) {
    cv_.wait_for(l, wait, [this] { return kick_ || crawl_ || stopping(); });
    if (stopping()) break;
    l.unlock();
    wait = Tick();
    l.lock();
  }
}

std::chrono::milliseconds HealerImpl::Tick() {
  if (stopping()) return opt_.interval;
  bool crawl, kicked;
  {
    std::lock_guard l(mu_);
    const auto now = std::chrono::steady_clock::now();
    crawl = crawl_ || (opt_.full_crawl_interval.count() > 0 && now >= next_crawl_);
    kicked = kick_;
    kick_ = false;
    crawl_ = false;
  }
  if (!crawl && !kicked && SummariesClean()) {
    summary_skips_.fetch_add(1);
  } else {
    passes_.fetch_add(1);
    Pass();
  }
  if (crawl && !stopping()) {
    FullCrawl();
    next_crawl_ = std::chrono::steady_clock::now() + opt_.full_crawl_interval;
  }
  std::lock_guard l(mu_);
  wait_ = quiet_ && opt_.idle_interval > opt_.interval ? std::min(wait_ * 2, opt_.idle_interval)
                                                       : opt_.interval;
  return wait_;
}

bool HealerImpl::ProbeAndOwn(int s) {
  Subvolume& sub = subs_[s];
  std::vector<client::CallTarget> targets;
  for (const auto& r : sub.replicas) {
    // Drives the reconnection of a replica that was away (returns at once
    // for a connected one); the probe below fails fast on a down one.
    r.target.node->WaitConnected(kReconnectWait);
    targets.push_back(r.target);
  }
  auto res = client::FanOut<pb::StatFsRequest, pb::StatFsReply>(
      targets, opt_.token, std::min(opt_.rpc_timeout, std::chrono::milliseconds(kProbeTimeout)),
      [&](size_t i) {
        pb::StatFsRequest q;
        q.set_brick_id(targets[i].brick_id);
        return q;
      },
      CAIRN_ASYNC(StatFs), /*include_down=*/true);
  std::vector<bool> reach(res.size());
  bool back = false;
  {
    std::lock_guard l(mu_);
    for (size_t r = 0; r < res.size(); ++r) {
      reach[r] = res[r].ok();
      if (reach[r]) sub.replicas[r].node->SetConnected(true);
      if (reach[r] == sub.reachable[r]) continue;
      if (reach[r]) {
        back = true;
        spdlog::info("event=heal_brick_reachable volume={} subvolume={} brick={} node={}",
                     spec_.name, s, sub.replicas[r].brick_id, sub.replicas[r].node->address());
      } else {
        spdlog::warn("event=heal_brick_unreachable volume={} subvolume={} brick={} error=\"{}\"",
                     spec_.name, s, sub.replicas[r].brick_id, res[r].status.message());
      }
    }
    sub.reachable = reach;
    // A brick came back: what waited for it is due now.
    if (back) {
      for (auto it = retry_.begin(); it != retry_.end();) {
        it = it->first.first == s ? retry_.erase(it) : std::next(it);
      }
    }
  }
  if (sub.local < 0 || !reach[sub.local]) return false;
  for (int r = 0; r < sub.local; ++r) {
    if (reach[r]) return false;  // a lower replica's healer heals this subvolume
  }
  return true;
}

void HealerImpl::ParallelFor(size_t n, const std::function<void(size_t)>& fn) {
  // The calling thread works too; extra threads come from one budget of
  // options.parallel shared by nested calls (a directory healing its new
  // children inside a pass), so there are never more than that at work.
  size_t extra = 0;
  const int budget = std::max(1, opt_.parallel);
  for (int busy = busy_.load(); extra + 1 < n;) {
    if (busy >= budget - 1) break;
    if (busy_.compare_exchange_weak(busy, busy + 1)) {
      ++extra;
      busy = busy_.load();
    }
  }
  std::atomic<size_t> next{0};
  auto worker = [&] {
    for (;;) {
      const size_t i = next.fetch_add(1);
      if (i >= n || stopping()) return;
      fn(i);
    }
  };
  std::vector<std::thread> threads;
  for (size_t t = 0; t < extra; ++t) threads.emplace_back(worker);
  worker();
  for (auto& t : threads) t.join();
  busy_.fetch_sub(static_cast<int>(extra));
}

void HealerImpl::Settle(int s, const Uuid& id, const StatusOr<Outcome>& result) {
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard l(mu_);
  const auto key = std::make_pair(s, id);
  if (result.ok() && (*result == Outcome::kDone || *result == Outcome::kSplitBrain)) {
    retry_.erase(key);
    if (*result == Outcome::kDone) {
      split_.erase(key);
      verified_.erase(key);
    }
    return;
  }
  Retry& r = retry_[key];
  r.attempts = std::min(r.attempts + 1, 16);
  auto backoff = std::chrono::duration_cast<std::chrono::milliseconds>(opt_.interval) *
                 (1 << std::min(r.attempts - 1, 7));
  if (result.ok() && *result == Outcome::kDeferred) {
    backoff = std::min<std::chrono::milliseconds>(backoff, std::chrono::seconds(5));
  }
  r.next = now + std::min<std::chrono::milliseconds>(backoff, kMaxBackoff);
  if (result.ok()) return;
  const Status& st = result.status();
  if (st.posix_errno() == ESTALE) {
    spdlog::debug("event=heal_raced volume={} id={} error=\"{}\"", spec_.name, id.ToString(),
                  st.message());
    return;
  }
  if (st.code() == StatusCode::kUnavailable) return;  // a brick went away: waits for it
  errors_.fetch_add(1);
  spdlog::warn("event=heal_error volume={} subvolume={} id={} attempts={} error=\"{}\"", spec_.name,
               s, id.ToString(), r.attempts, st.ToString());
}

void HealerImpl::MaybeLogProgress() {
  const auto now = std::chrono::steady_clock::now();
  {
    std::lock_guard l(mu_);
    if (now - last_progress_log_ < kProgressLogEvery) return;
    last_progress_log_ = now;
  }
  spdlog::info("event=heal_progress volume={} healed={} pending={} bytes={} checksummed={}",
               spec_.name, healed_objects_.load(), pending_now_.load(), healed_bytes_.load(),
               checksummed_bytes_.load());
}

void HealerImpl::Pass() {
  struct Work {
    int s;
    Uuid id;
  };
  std::vector<Work> work;
  uint64_t dirty_total = 0;
  bool all_up = true;
  const auto now = std::chrono::steady_clock::now();
  for (int s = 0; s < static_cast<int>(subs_.size()); ++s) {
    if (stopping()) return;
    const Subvolume& sub = subs_[s];
    if (sub.local < 0) continue;
    const bool owner = ProbeAndOwn(s);
    for (bool up : sub.reachable) all_up = all_up && up;
    if (!owner) {
      std::lock_guard l(mu_);
      for (auto it = seen_.begin(); it != seen_.end();) {
        it = it->first.first == s ? seen_.erase(it) : std::next(it);
      }
      continue;
    }
    // The dirty indexes of every reachable replica: a brick that was away
    // lacks, in its own, what it missed.
    std::map<Uuid, std::vector<std::optional<pb::Version>>> dirty;
    for (size_t r = 0; r < sub.replicas.size(); ++r) {
      if (!sub.reachable[r]) continue;
      std::string after;
      for (;;) {
        pb::ListDirtyRequest q;
        q.set_after(after);
        q.set_max_entries(kListPage);
        auto page = Call<pb::ListDirtyRequest, pb::ListDirtyReply>(sub.replicas[r], q,
                                                                   CAIRN_ASYNC(ListDirty));
        if (!page.ok()) break;
        for (const auto& e : page->entries()) {
          auto id = Uuid::FromBytes(e.id());
          if (!id.ok()) continue;
          auto& v = dirty[*id];
          v.resize(sub.replicas.size());
          v[r] = e.version();
          after = id->ToHex();
        }
        if (page->eof() || page->entries_size() == 0) break;
      }
    }
    dirty_total += dirty.size();
    std::lock_guard l(mu_);
    for (auto it = seen_.begin(); it != seen_.end();) {
      bool drop = it->first.first == s && !dirty.count(it->first.second);
      it = drop ? seen_.erase(it) : std::next(it);
    }
    for (auto it = retry_.begin(); it != retry_.end();) {
      bool drop = it->first.first == s && !dirty.count(it->first.second);
      it = drop ? retry_.erase(it) : std::next(it);
    }
    for (auto it = split_.begin(); it != split_.end();) {
      bool drop = it->first.first == s && !dirty.count(it->first.second);
      it = drop ? split_.erase(it) : std::next(it);
    }
    for (auto it = verified_.begin(); it != verified_.end();) {
      bool drop = it->first.first == s && !dirty.count(it->first.second);
      it = drop ? verified_.erase(it) : std::next(it);
    }
    for (auto& [id, versions] : dirty) {
      const auto key = std::make_pair(s, id);
      Seen& seen = seen_[key];
      // Marks of mutations in flight come and go within ~50 ms: heal what
      // stays put for a whole interval.
      const bool stable = seen.polls > 0 && SameVersions(seen.versions, versions);
      seen.versions = versions;
      ++seen.polls;
      if (!stable && seen.polls < kForcePolls) continue;
      auto sp = split_.find(key);
      if (sp != split_.end()) {
        bool same = true;
        for (size_t r = 0; r < versions.size(); ++r) {
          if (versions[r] && r < sp->second.versions.size() &&
              !VersionEq(*versions[r], sp->second.versions[r])) {
            same = false;
          }
        }
        if (same) continue;  // left alone until Resolve or a new mutation
      }
      auto rt = retry_.find(key);
      if (rt != retry_.end() && rt->second.next > now) continue;
      if (in_progress_.count(key)) continue;
      work.push_back({s, id});
    }
  }
  {
    std::lock_guard l(mu_);
    quiet_ = all_up && dirty_total == 0 && work.empty();
  }
  if (work.empty()) {
    std::lock_guard l(mu_);
    if (had_work_ && dirty_total == 0) {
      had_work_ = false;
      const double secs =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - pass_start_).count();
      spdlog::info("event=heal_done volume={} healed={} bytes={} seconds={:.1f}", spec_.name,
                   healed_objects_.load() - pass_healed_start_,
                   healed_bytes_.load() - pass_bytes_start_, secs);
    }
  } else {
    std::lock_guard l(mu_);
    if (!had_work_) {
      had_work_ = true;
      pass_start_ = last_progress_log_ = now;
      pass_healed_start_ = healed_objects_.load();
      pass_bytes_start_ = healed_bytes_.load();
      spdlog::info("event=heal_start volume={} dirty={}", spec_.name, work.size());
    }
  }
  if (!work.empty()) {
    active_ = true;
    pending_now_ = work.size();
    ParallelFor(work.size(), [&](size_t i) {
      Settle(work[i].s, work[i].id, HealClaimed(work[i].s, work[i].id));
      pending_now_.fetch_sub(1);
      MaybeLogProgress();
    });
    active_ = false;
  }
  bool parked;
  {
    std::lock_guard l(mu_);
    parked = !parked_.empty();
  }
  if (parked && !stopping()) SweepParked();
}

// ---- Full crawl ----------------------------------------------------------------

void HealerImpl::FullCrawl() {
  const auto start = std::chrono::steady_clock::now();
  const uint64_t healed = healed_objects_.load();
  spdlog::info("event=heal_full_crawl_start volume={}", spec_.name);
  for (int s = 0; s < static_cast<int>(subs_.size()); ++s) {
    if (stopping()) return;
    if (subs_[s].local < 0 || !ProbeAndOwn(s)) continue;
    CrawlSubvolume(s);
  }
  full_crawls_.fetch_add(1);
  spdlog::info("event=heal_full_crawl_done volume={} healed={} seconds={:.1f}", spec_.name,
               healed_objects_.load() - healed,
               std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
}

void HealerImpl::CrawlSubvolume(int s) {
  const Subvolume& sub = subs_[s];
  const size_t n = sub.replicas.size();
  std::deque<Uuid> queue{Uuid::Root()};
  std::set<Uuid> visited;
  active_ = true;
  while (!queue.empty() && !stopping()) {
    const Uuid dir = queue.front();
    queue.pop_front();
    if (!visited.insert(dir).second) continue;
    // The directory's listing on every replica that has it.
    std::vector<std::optional<Listing>> lists(n);
    auto list_all = [&]() -> bool {
      auto st = Stat(s, dir);
      if (!st.ok()) return false;
      bool differ = false;
      const pb::Version* first = nullptr;
      for (size_t r = 0; r < n; ++r) {
        lists[r].reset();
        if (!(*st)[r].present) continue;
        if (first != nullptr && !VersionEq(*first, (*st)[r].attr.version())) differ = true;
        if (first == nullptr) first = &(*st)[r].attr.version();
        auto l = List(sub.replicas[r], dir);
        if (l.ok()) lists[r] = std::move(*l);
      }
      std::optional<Listing>* base = nullptr;
      for (auto& l : lists) {
        if (!l) continue;
        if (base == nullptr) {
          base = &l;
          continue;
        }
        if (l->size() != (*base)->size()) differ = true;
        for (auto a = l->begin(), b = (*base)->begin(); !differ && a != l->end(); ++a, ++b) {
          if (a->first != b->first || a->second.id != b->second.id) differ = true;
        }
      }
      return differ;
    };
    if (list_all()) {
      Settle(s, dir, HealClaimed(s, dir));
      list_all();
    }
    // Children whose versions differ between replicas.
    std::map<Uuid, std::vector<const pb::Attr*>> children;
    for (size_t r = 0; r < n; ++r) {
      if (!lists[r]) continue;
      for (const auto& [name, e] : *lists[r]) {
        auto& v = children[e.id];
        v.resize(n, nullptr);
        v[r] = &e.attr;
      }
    }
    std::vector<Uuid> heal;
    for (const auto& [id, attrs] : children) {
      const pb::Attr* first = nullptr;
      bool differ = false;
      bool is_dir = false;
      for (const pb::Attr* a : attrs) {
        if (a == nullptr) continue;
        is_dir = is_dir || a->type() == pb::FILE_TYPE_DIRECTORY;
        if (first != nullptr && !VersionEq(first->version(), a->version())) differ = true;
        if (first == nullptr) first = a;
      }
      if (differ) heal.push_back(id);
      if (is_dir) queue.push_back(id);
    }
    ParallelFor(heal.size(), [&](size_t i) { Settle(s, heal[i], HealClaimed(s, heal[i])); });
  }
  active_ = false;
}

// ---- GetInfo and Resolve ----------------------------------------------------

Info HealerImpl::GetInfo() {
  Info info;
  struct Cursor {
    const Replica* r;
    BrickPending* out;
    std::string after;
    bool done = false;
  };
  for (const auto& sub : subs_) {
    for (const auto& r : sub.replicas) {
      BrickPending bp;
      bp.brick_id = r.brick_id;
      bp.node = r.node->address();
      bp.connected = true;
      info.bricks.push_back(std::move(bp));
    }
  }
  std::vector<Cursor> cursors;
  size_t i = 0;
  for (const auto& sub : subs_) {
    for (const auto& r : sub.replicas) cursors.push_back({&r, &info.bricks[i++], "", false});
  }
  // Page through every brick's index, all bricks in parallel.
  for (;;) {
    std::vector<Cursor*> active;
    std::vector<client::CallTarget> targets;
    for (auto& c : cursors) {
      if (c.done) continue;
      active.push_back(&c);
      targets.push_back(c.r->target);
    }
    if (active.empty()) break;
    auto res = client::FanOut<pb::ListDirtyRequest, pb::ListDirtyReply>(
        targets, opt_.token, std::min(opt_.rpc_timeout, std::chrono::milliseconds(5000)),
        [&](size_t k) {
          pb::ListDirtyRequest q;
          q.set_brick_id(targets[k].brick_id);
          q.set_after(active[k]->after);
          q.set_max_entries(kListPage);
          return q;
        },
        CAIRN_ASYNC(ListDirty), /*include_down=*/true);
    for (size_t k = 0; k < res.size(); ++k) {
      Cursor& c = *active[k];
      if (!res[k].ok()) {
        c.out->connected = false;
        c.done = true;
        continue;
      }
      for (const auto& e : res[k].reply.entries()) {
        auto id = Uuid::FromBytes(e.id());
        if (!id.ok()) continue;
        ++c.out->pending;
        if (c.out->sample_ids.size() < kSampleIds) c.out->sample_ids.push_back(id->ToString());
        c.after = id->ToHex();
      }
      if (res[k].reply.eof() || res[k].reply.entries_size() == 0) c.done = true;
    }
  }
  {
    std::lock_guard l(mu_);
    for (const auto& [key, rec] : split_) info.split_brain.push_back(rec.info);
  }
  info.stats.healed_objects = healed_objects_.load();
  info.stats.healed_bytes = healed_bytes_.load();
  info.stats.checksummed_bytes = checksummed_bytes_.load();
  info.stats.passes = passes_.load();
  info.stats.summary_skips = summary_skips_.load();
  info.stats.peer_copied_bytes = peer_copied_bytes_.load();
  info.stats.entries_created = entries_created_.load();
  info.stats.entries_removed = entries_removed_.load();
  info.stats.errors = errors_.load();
  info.stats.full_crawls = full_crawls_.load();
  info.stats.active = active_.load();
  return info;
}

Status HealerImpl::Resolve(const Uuid& id, Policy policy, const std::string& source_brick) {
  std::vector<int> where;
  {
    std::lock_guard l(mu_);
    for (const auto& [key, rec] : split_) {
      if (key.second == id) where.push_back(key.first);
    }
  }
  if (where.empty()) {
    for (int s = 0; s < static_cast<int>(subs_.size()); ++s) {
      auto st = Stat(s, id);
      if (!st.ok()) return st.status();
      for (const auto& x : *st) {
        if (x.present) {
          where.push_back(s);
          break;
        }
      }
    }
  }
  if (where.empty()) {
    return Status(StatusCode::kNotFound,
                  "no brick of volume " + spec_.name + " holds " + id.ToString(), ENOENT);
  }
  for (int s : where) {
    const Subvolume& sub = subs_[s];
    CAIRN_ASSIGN_OR_RETURN(auto st, Stat(s, id));
    int pick = -1;
    bool is_file = false;
    for (const auto& x : st)
      is_file = is_file || (x.present && x.attr.type() == pb::FILE_TYPE_REGULAR);
    for (size_t r = 0; r < st.size(); ++r) {
      const auto& x = st[r];
      const bool usable = x.present && !(is_file && sub.replicas[r].arbiter);
      switch (policy) {
        case Policy::kSourceBrick:
          if (sub.replicas[r].brick_id != source_brick) break;
          if (!x.reachable) {
            return Status(StatusCode::kUnavailable, "brick " + source_brick + " is unreachable",
                          ENOTCONN);
          }
          if (!x.present) {
            return Status(StatusCode::kFailedPrecondition,
                          "brick " + source_brick + " does not hold " + id.ToString(), ENOENT);
          }
          if (!usable) {
            return Status(StatusCode::kInvalidArgument,
                          "brick " + source_brick + " is an arbiter: it holds no data", EINVAL);
          }
          pick = static_cast<int>(r);
          break;
        case Policy::kLatestMtime:
          if (usable && (pick < 0 || x.attr.mtime_ns() > st[pick].attr.mtime_ns())) {
            pick = static_cast<int>(r);
          }
          break;
        case Policy::kBiggerFile:
          if (!is_file) {
            return Status(StatusCode::kInvalidArgument,
                          id.ToString() + " is not a regular file: no bigger-file policy", EINVAL);
          }
          if (usable && (pick < 0 || x.attr.size() > st[pick].attr.size())) {
            pick = static_cast<int>(r);
          }
          break;
      }
    }
    if (pick < 0) {
      return Status(StatusCode::kInvalidArgument,
                    policy == Policy::kSourceBrick
                        ? "brick '" + source_brick + "' is not a replica of " + id.ToString()
                        : "no replica qualifies as the source of " + id.ToString(),
                    EINVAL);
    }
    // Another thread may be looking at it: wait for it a little.
    StatusOr<Outcome> out = Outcome::kDeferred;
    for (int attempt = 0; attempt < 100; ++attempt) {
      out = HealClaimed(s, id, pick);
      if (!out.ok() || *out != Outcome::kDeferred) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (!out.ok()) return out.status();
    if (*out == Outcome::kDeferred) {
      return Status(StatusCode::kUnavailable, id.ToString() + " is busy; try again", EAGAIN);
    }
    spdlog::info("event=heal_resolved volume={} id={} source={} policy={}", spec_.name,
                 id.ToString(), sub.replicas[pick].brick_id, static_cast<int>(policy));
    std::lock_guard l(mu_);
    split_.erase({s, id});
    retry_.erase({s, id});
  }
  return Status::Ok();
}

// ---------------------------------------------------------------------------

VolumeHealer::VolumeHealer(std::unique_ptr<HealerImpl> impl) : impl_(std::move(impl)) {}
VolumeHealer::~VolumeHealer() = default;

StatusOr<std::unique_ptr<VolumeHealer>> VolumeHealer::Start(const client::VolumeSpec& spec,
                                                            Options options) {
  if (spec.replica < 2) {
    return Status::InvalidArgument("volume " + spec.name + " is not replicated: nothing to heal");
  }
  if (spec.subvolumes.empty()) return Status::InvalidArgument("volume spec has no subvolumes");
  const uint32_t bs = options.block_size;
  if (bs < 4096 || bs > (4u << 20) || (bs & (bs - 1)) != 0) {
    return Status::InvalidArgument("block_size must be a power of two, 4 KiB..4 MiB");
  }
  if (options.parallel < 1) return Status::InvalidArgument("parallel must be at least 1");
  if (options.interval.count() <= 0) return Status::InvalidArgument("interval must be positive");
  auto impl = std::make_unique<HealerImpl>(spec, std::move(options));
  int local = 0;
  for (const auto& sub : impl->subs_) local += sub.local >= 0 ? 1 : 0;
  spdlog::info("event=heal_start_healer volume={} subvolumes={} local_bricks={} node={}", spec.name,
               spec.subvolumes.size(), local, impl->opt_.local_node);
  impl->StartPolling();
  return std::unique_ptr<VolumeHealer>(new VolumeHealer(std::move(impl)));
}

Info VolumeHealer::GetInfo() { return impl_->GetInfo(); }
void VolumeHealer::Kick() { impl_->Kick(); }
void VolumeHealer::TriggerFullCrawl() { impl_->TriggerFullCrawl(); }
Status VolumeHealer::Resolve(const Uuid& id, Policy policy, const std::string& source_brick) {
  return impl_->Resolve(id, policy, source_brick);
}

}  // namespace cairn::heal
