// libcairn's Volume: inode table, distribution and replication.
// Design and rules: docs/client.md.
#include "client/volume.h"

#include <linux/falloc.h>
#include <linux/fs.h>
#include <spdlog/spdlog.h>
#include <sys/xattr.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <unordered_map>

#include "client/layout.h"
#include "client/node.h"
#include "client/version.h"
#include "common/status_errno.h"

namespace cairn::client {

namespace {

constexpr size_t kMaxIo = 4u << 20;  // the brick's limit per read/write
constexpr std::string_view kSystemXattrPrefix = "trusted.cairn.";
constexpr size_t kClearBatch = 1024;

struct UuidHash {
  size_t operator()(const Uuid& u) const { return static_cast<size_t>(u.Hash()); }
};

uint32_t ModeTypeOf(pb::FileType t) {
  switch (t) {
    case pb::FILE_TYPE_DIRECTORY:
      return S_IFDIR;
    case pb::FILE_TYPE_SYMLINK:
      return S_IFLNK;
    case pb::FILE_TYPE_FIFO:
      return S_IFIFO;
    case pb::FILE_TYPE_SOCKET:
      return S_IFSOCK;
    case pb::FILE_TYPE_CHAR_DEVICE:
      return S_IFCHR;
    case pb::FILE_TYPE_BLOCK_DEVICE:
      return S_IFBLK;
    default:
      return S_IFREG;
  }
}

// Replicas at the highest counters (not stale) whose tag differs from a
// strict majority's applied other mutations than the rest (brick.proto,
// Version.tag) — e.g. a write that failed elsewhere: stale too, so reads
// avoid them until heal has compared and settled the copies. Without a
// strict majority nothing changes (heal decides).
void MarkTagMinority(const std::vector<pb::Version>& versions, const std::vector<bool>& known,
                     std::vector<bool>* stale) {
  std::map<uint64_t, int> count;
  int total = 0;
  for (size_t r = 0; r < versions.size(); ++r) {
    if (!known[r] || (*stale)[r]) continue;
    ++count[versions[r].tag()];
    ++total;
  }
  if (count.size() < 2) return;
  for (const auto& [tag, n] : count) {
    if (2 * n <= total) continue;
    for (size_t r = 0; r < versions.size(); ++r) {
      if (known[r] && !(*stale)[r] && versions[r].tag() != tag) (*stale)[r] = true;
    }
    return;
  }
}

Status Errno(int err, std::string message) { return StatusFromErrno(err, std::move(message)); }

int ErrnoOf(const Status& s) { return s.posix_errno() != 0 ? s.posix_errno() : ErrnoFromStatus(s); }

// What a mutation changes, for quorum rules (an arbiter votes on names and
// metadata; data needs a data brick among the acknowledgements).
enum class Kind { kData, kMeta, kEntry };

}  // namespace

void Attr::ToStat(struct stat* st) const {
  *st = {};
  st->st_ino = ino;
  st->st_mode = mode;
  st->st_uid = uid;
  st->st_gid = gid;
  st->st_nlink = nlink;
  st->st_size = static_cast<off_t>(size);
  st->st_blocks = static_cast<blkcnt_t>(blocks);
  st->st_blksize = blksize;
  st->st_rdev = rdev;
  st->st_atim = {atime_ns / 1000000000, atime_ns % 1000000000};
  st->st_mtim = {mtime_ns / 1000000000, mtime_ns % 1000000000};
  st->st_ctim = {ctime_ns / 1000000000, ctime_ns % 1000000000};
}

// ---------------------------------------------------------------------------

struct Replica {
  Node* node = nullptr;
  std::string brick_id;
  bool arbiter = false;
  int global = 0;  // index over all bricks of the volume
};

struct Subvol {
  std::vector<Replica> replicas;
  std::vector<CallTarget> targets;
  int quorum = 1;
  // Replicas that share at least one brick with every write quorum: between
  // them they hold every acknowledged mutation.
  size_t read_quorum() const {
    const size_t rc = replicas.size();
    return rc - std::min(static_cast<size_t>(std::max(quorum, 1)), rc) + 1;
  }
};

// Per-object client state. Files live on one subvolume; directories on all
// (their versions are tracked on subvolume 0, their "home").
struct Inode {
  Ino ino = 0;
  Uuid id;
  int subvol = -1;  // -1: a directory

  std::mutex mu;  // guards everything below
  uint64_t nlookup = 0;
  int open_count = 0;
  bool unlinked = false;  // last name gone while open: Forget at the last Release
  bool verified = false;  // versions known from a read quorum of replicas (see Register)
  Attr attr;
  std::vector<pb::Version> versions;  // per replica of the home subvolume
  std::vector<bool> stale;            // replicas that missed mutations: never read
  std::shared_ptr<const Layout> layout;
  // The object's xattr names as of xattrs_at (from a lookup or readdirplus).
  bool xattrs_known = false;
  std::vector<std::string> xattr_names;
  std::chrono::steady_clock::time_point xattrs_at;

  // Directories: when `attr` was last set from the parent attributes of an
  // entry operation's reply (see Options::dir_attr_cache_timeout).
  std::chrono::steady_clock::time_point dir_attr_at{};
  // Names a brick answered ENODATA for since, and when (at most a few: the
  // kernel asks security.capability before every write of a file).
  std::vector<std::pair<std::string, std::chrono::steady_clock::time_point>> absent_xattrs;

  void LearnXattrs(const pb::Attr& a) {
    if (!a.xattr_names_valid()) return;
    xattrs_known = true;
    xattr_names.assign(a.xattr_names().begin(), a.xattr_names().end());
    xattrs_at = std::chrono::steady_clock::now();
    absent_xattrs.clear();
  }
  bool KnownAbsent(std::string_view name, std::chrono::steady_clock::duration ttl) const {
    const auto now = std::chrono::steady_clock::now();
    if (xattrs_known && now - xattrs_at < ttl &&
        std::find(xattr_names.begin(), xattr_names.end(), name) == xattr_names.end()) {
      return true;
    }
    for (const auto& [n, at] : absent_xattrs) {
      if (n == name) return now - at < ttl;
    }
    return false;
  }
  void LearnAbsent(std::string_view name) {
    constexpr size_t kMaxAbsent = 8;
    std::erase_if(absent_xattrs, [&](const auto& e) { return e.first == name; });
    if (absent_xattrs.size() >= kMaxAbsent) absent_xattrs.erase(absent_xattrs.begin());
    absent_xattrs.emplace_back(std::string(name), std::chrono::steady_clock::now());
  }
  void LearnPresent(std::string_view name) {
    std::erase_if(absent_xattrs, [&](const auto& e) { return e.first == name; });
  }

  // Serialises data mutations so that replicas apply them in one order.
  std::mutex write_mu;

  int home() const { return subvol < 0 ? 0 : subvol; }
};

// Clears dirty marks and forgets unlinked-open objects in batches, per brick.
class Janitor {
 public:
  Janitor(std::vector<CallTarget> bricks, std::string token, std::chrono::milliseconds interval,
          std::chrono::milliseconds timeout)
      : bricks_(std::move(bricks)),
        token_(std::move(token)),
        interval_(interval),
        timeout_(timeout),
        pending_(bricks_.size()) {
    thread_ = std::thread([this] { Run(); });
  }
  ~Janitor() {
    {
      std::lock_guard l(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
    Flush();
  }

  void Clear(int brick, const Uuid& id, const pb::Version& v) {
    std::lock_guard l(mu_);
    pending_[brick].clear[id] = v;
    if (pending_[brick].clear.size() >= kClearBatch) cv_.notify_one();
  }
  void Forget(int brick, const Uuid& id) {
    std::lock_guard l(mu_);
    pending_[brick].forget.push_back(id);
  }

  void Flush() {
    std::vector<Pending> work(bricks_.size());
    {
      std::lock_guard l(mu_);
      work.swap(pending_);
      pending_.resize(bricks_.size());
    }
    std::vector<CallTarget> targets;
    std::vector<size_t> which;
    for (size_t b = 0; b < work.size(); ++b) {
      if (work[b].clear.empty() && work[b].forget.empty()) continue;
      targets.push_back(bricks_[b]);
      which.push_back(b);
    }
    if (targets.empty()) return;
    // Forget first: it also drops the objects' dirty marks.
    std::vector<CallTarget> forget_targets;
    std::vector<size_t> forget_which;
    for (size_t i = 0; i < targets.size(); ++i) {
      if (work[which[i]].forget.empty()) continue;
      forget_targets.push_back(targets[i]);
      forget_which.push_back(which[i]);
    }
    if (!forget_targets.empty()) {
      FanOut<pb::ForgetRequest, pb::Empty>(
          forget_targets, token_, timeout_,
          [&](size_t i) {
            pb::ForgetRequest r;
            r.set_brick_id(forget_targets[i].brick_id);
            for (const Uuid& id : work[forget_which[i]].forget) r.add_ids(id.Raw());
            return r;
          },
          CAIRN_ASYNC(Forget));
    }
    // ClearDirty in chunks of kClearBatch per brick. (Marks meant for a
    // brick that is down now are dropped: they stay on the brick, for heal.)
    for (;;) {
      std::vector<CallTarget> clear_targets;
      std::vector<pb::ClearDirtyRequest> requests;
      for (size_t i = 0; i < targets.size(); ++i) {
        auto& m = work[which[i]].clear;
        if (m.empty()) continue;
        pb::ClearDirtyRequest r;
        r.set_brick_id(targets[i].brick_id);
        while (!m.empty() && static_cast<size_t>(r.entries_size()) < kClearBatch) {
          auto it = m.begin();
          auto* e = r.add_entries();
          e->set_id(it->first.Raw());
          *e->mutable_version() = it->second;
          m.erase(it);
        }
        clear_targets.push_back(targets[i]);
        requests.push_back(std::move(r));
      }
      if (clear_targets.empty()) break;
      FanOut<pb::ClearDirtyRequest, pb::ClearDirtyReply>(
          clear_targets, token_, timeout_, [&](size_t i) { return std::move(requests[i]); },
          CAIRN_ASYNC(ClearDirty));
    }
  }

 private:
  struct Pending {
    std::map<Uuid, pb::Version> clear;
    std::vector<Uuid> forget;
  };

  void Run() {
    std::unique_lock l(mu_);
    while (!stop_) {
      cv_.wait_for(l, interval_);
      if (stop_) break;
      l.unlock();
      Flush();
      l.lock();
    }
  }

  std::vector<CallTarget> bricks_;
  std::string token_;
  std::chrono::milliseconds interval_;
  std::chrono::milliseconds timeout_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::vector<Pending> pending_;
  std::thread thread_;
};

// ---------------------------------------------------------------------------

class VolumeImpl {
 public:
  VolumeImpl(VolumeSpec spec, Options options);
  ~VolumeImpl();
  Status Connect();

  VolumeSpec spec_;
  Options options_;
  std::string client_id_ = Uuid::Random().Raw();
  std::atomic<uint64_t> seq_{0};
  bool replicated_ = false;

  std::vector<std::unique_ptr<Node>> nodes_;
  std::vector<Subvol> subvols_;
  std::vector<CallTarget> all_bricks_;  // by Replica::global
  std::unique_ptr<Janitor> janitor_;
  std::atomic<int> open_files_{0};

  // Prober of disconnected nodes.
  std::thread prober_;
  std::mutex prober_mu_;
  std::condition_variable prober_cv_;
  bool stopping_ = false;

  // Inode table.
  std::mutex table_mu_;
  std::unordered_map<Ino, std::shared_ptr<Inode>> inodes_;
  std::unordered_map<Uuid, Ino, UuidHash> by_id_;
  Ino next_ino_ = kRootIno + 1;

  int nsub() const { return static_cast<int>(subvols_.size()); }
  pb::Txn NewTxn() {
    pb::Txn t;
    t.set_client_id(client_id_);
    t.set_seq(seq_.fetch_add(1) + 1);
    t.set_mark_dirty(replicated_);
    // Bricks refuse it after 3/4 of our own deadline: a request delayed in
    // the network is never applied after we reported it failed.
    t.set_deadline_unix_ms(
        std::chrono::duration_cast<std::chrono::milliseconds>(
            (std::chrono::system_clock::now() + options_.rpc_timeout * 3 / 4).time_since_epoch())
            .count());
    return t;
  }

  StatusOr<std::shared_ptr<Inode>> Get(Ino ino) {
    std::lock_guard l(table_mu_);
    auto it = inodes_.find(ino);
    if (it == inodes_.end()) {
      return Status(StatusCode::kNotFound, "unknown inode " + std::to_string(ino), ESTALE);
    }
    return it->second;
  }
  // Removes n from the table once neither the kernel (lookup references)
  // nor an open file refers to it. Call with table_mu_ and n.mu held, on a
  // shared_ptr the caller owns (erasing must not free n under its lock).
  void DropIfUnused(const std::shared_ptr<Inode>& n) {
    if (n->ino == kRootIno || n->nlookup != 0 || n->open_count != 0) return;
    by_id_.erase(n->id);
    inodes_.erase(n->ino);
  }

  std::shared_ptr<Inode> FindById(const Uuid& id) {
    std::lock_guard l(table_mu_);
    auto it = by_id_.find(id);
    if (it == by_id_.end()) return nullptr;
    auto n = inodes_.find(it->second);
    return n == inodes_.end() ? nullptr : n->second;
  }

  // Registers (or refreshes) the object behind a set of replica answers from
  // subvolume `s`. `answers` has one entry per replica of s (nullptr: no answer).
  std::shared_ptr<Inode> Register(int s, const std::vector<const pb::Attr*>& answers,
                                  uint64_t add_refs);
  Attr ToAttr(const pb::Attr& a, Ino ino) const;

  // ---- Replication core.
  template <class Rep>
  struct Fan {
    std::vector<BrickResult<Rep>> results;  // one per replica of the subvolume
    int chosen = -1;                        // the replica whose reply stands for the result
  };

  // Sends one mutation to every replica of subvolume s and applies the
  // quorum rules. `obj` (may be null) gets its stale marks and versions
  // updated from `version_of(reply)`.
  template <class Req, class Rep, class MakeReq, class Issue, class VersionOf>
  StatusOr<Fan<Rep>> Mutate(int s, Kind kind, Inode* obj, MakeReq make, Issue issue,
                            VersionOf version_of);

  // Reads: the replicas of the object's home subvolume that hold current data.
  StatusOr<int> PickReplica(Inode& n, bool data);
  Status Refresh(Inode& n);
  Status EnsureVerified(Inode& n);
  // Clears dirty marks when every replica acknowledged with equal versions.
  void MaybeClear(int s, const Uuid& id, const std::vector<const pb::Version*>& versions);

  // ---- Distribution.
  StatusOr<std::shared_ptr<const Layout>> LayoutOf(Inode& dir);
  StatusOr<int> HashedSubvol(Inode& dir, std::string_view name);
  // Looks `name` up (hashed subvolume first, then the others).
  StatusOr<std::pair<int, Fan<pb::AttrReply>>> Locate(Inode& dir, std::string_view name);
  StatusOr<Fan<pb::AttrReply>> LookupOn(int s, const Uuid& parent, std::string_view name);
  StatusOr<Attr> LookupImpl(Ino parent, std::string_view name, uint64_t refs);

  StatusOr<Attr> CreateImpl(Ino parent, std::string_view name, uint32_t mode, uint64_t rdev,
                            std::string_view target, const Caller& caller, char kind);
  Status RemoveImpl(Ino parent, std::string_view name, bool dir);
  // ENOTEMPTY unless the directory is empty on every subvolume.
  Status CheckEmptyEverywhere(const std::string& dir_id);
  Status RenameOn(const std::vector<int>& subvols, Inode& op, std::string_view on, Inode& np,
                  std::string_view nn, unsigned flags, Uuid* replaced);
  void ObjectGone(int s, const Uuid& id);
  StatusOr<Attr> SetAttrImpl(Inode& n, const SetAttrArgs& args);
  // Runs a mutation of object n (one with an AttrReply) on every subvolume
  // holding it — a file's one, a directory's all with its home last —
  // clears the dirty marks and returns the attributes from the home
  // subvolume. make(sv, i) builds the request for replica i of sv.
  template <class Req, class MakeReq, class Issue>
  StatusOr<pb::Attr> MutateObject(Inode& n, Kind kind, MakeReq make, Issue issue);

  template <class Req, class Rep, class MakeReq, class Issue>
  StatusOr<Rep> CallOne(const CallTarget& t, MakeReq make, Issue issue);

  // After an entry operation in `dir` on subvolume s: keeps the directory's
  // attributes from the reply of the replica GetAttr would ask
  // (`parent_of(reply)`, null or empty if that reply has none).
  template <class Rep, class ParentOf>
  void LearnDirAttr(Inode& dir, int s, const std::vector<BrickResult<Rep>>& results,
                    ParentOf parent_of);

  void ProbeLoop();
};

VolumeImpl::VolumeImpl(VolumeSpec spec, Options options)
    : spec_(std::move(spec)), options_(std::move(options)) {
  replicated_ = spec_.replica > 1;
  std::map<std::string, Node*> by_addr;
  int global = 0;
  for (const auto& sv : spec_.subvolumes) {
    Subvol sub;
    sub.quorum = spec_.Quorum();
    for (const auto& b : sv) {
      Node*& node = by_addr[b.node];
      if (node == nullptr) {
        nodes_.push_back(std::make_unique<Node>(b.node));
        node = nodes_.back().get();
      }
      sub.replicas.push_back({node, b.brick_id, b.arbiter, global++});
      sub.targets.push_back({node, b.brick_id});
      all_bricks_.push_back({node, b.brick_id});
    }
    subvols_.push_back(std::move(sub));
  }
  auto root = std::make_shared<Inode>();
  root->ino = kRootIno;
  root->id = Uuid::Root();
  root->subvol = -1;
  root->nlookup = 1;
  root->attr.ino = kRootIno;
  root->attr.id = root->id;
  root->attr.mode = S_IFDIR | 0755;
  root->versions.resize(subvols_[0].replicas.size());
  root->stale.resize(subvols_[0].replicas.size());
  inodes_[kRootIno] = root;
  by_id_[root->id] = kRootIno;
}

VolumeImpl::~VolumeImpl() {
  {
    std::lock_guard l(prober_mu_);
    stopping_ = true;
  }
  prober_cv_.notify_all();
  if (prober_.joinable()) prober_.join();
  janitor_.reset();  // flushes
}

Status VolumeImpl::Connect() {
  // Every brick answers StatFs (which also checks the token and that the
  // brick is attached); wait for connections up to connect_timeout.
  auto st = FanOut<pb::StatFsRequest, pb::StatFsReply>(
      all_bricks_, options_.token, options_.connect_timeout,
      [&](size_t i) {
        pb::StatFsRequest r;
        r.set_brick_id(all_bricks_[i].brick_id);
        return r;
      },
      CAIRN_ASYNC(StatFs), /*include_down=*/true, /*wait_for_ready=*/true);
  std::set<Node*> up;
  std::string problems;
  for (size_t i = 0; i < all_bricks_.size(); ++i) {
    if (st[i].ok()) {
      up.insert(all_bricks_[i].node);
      continue;
    }
    const Status& s = st[i].status;
    if (s.code() == StatusCode::kUnauthenticated || s.code() == StatusCode::kPermissionDenied) {
      return Status(StatusCode::kPermissionDenied,
                    "brick " + all_bricks_[i].brick_id + " on " + all_bricks_[i].node->address() +
                        " refused the token: " + s.message(),
                    EACCES);
    }
    if (!problems.empty()) problems += "; ";
    problems += "brick " + all_bricks_[i].brick_id + " on " + all_bricks_[i].node->address() +
                ": " + s.message();
  }
  for (auto& n : nodes_) {
    if (!up.count(n.get())) {
      n->SetConnected(false);
    }
  }
  for (size_t s = 0; s < subvols_.size(); ++s) {
    int reachable = 0;
    for (size_t r = 0; r < subvols_[s].replicas.size(); ++r) {
      size_t g = subvols_[s].replicas[r].global;
      if (st[g].ok()) ++reachable;
    }
    if (reachable < subvols_[s].quorum) {
      return Status(StatusCode::kUnavailable,
                    "volume " + spec_.name + ": subvolume " + std::to_string(s) + " has " +
                        std::to_string(reachable) + " of " +
                        std::to_string(subvols_[s].replicas.size()) +
                        " bricks reachable, quorum is " + std::to_string(subvols_[s].quorum) +
                        " (" + problems + ")",
                    ENOTCONN);
    }
  }
  if (!problems.empty()) {
    spdlog::warn("event=volume_open_degraded volume={} problems=\"{}\"", spec_.name, problems);
  }
  janitor_ = std::make_unique<Janitor>(all_bricks_, options_.token, options_.clear_dirty_interval,
                                       options_.rpc_timeout);
  prober_ = std::thread([this] { ProbeLoop(); });
  // The root's attributes and versions.
  auto root = Get(kRootIno);
  if (root.ok()) {
    Status s = Refresh(**root);
    if (!s.ok()) return s;
  }
  return Status::Ok();
}

void VolumeImpl::ProbeLoop() {
  std::unique_lock l(prober_mu_);
  while (!stopping_) {
    prober_cv_.wait_for(l, options_.reconnect_interval);
    if (stopping_) break;
    l.unlock();
    for (auto& node : nodes_) {
      if (node->connected()) continue;
      if (!node->WaitConnected(options_.reconnect_interval)) continue;
      std::string brick;
      for (const auto& b : all_bricks_) {
        if (b.node == node.get()) {
          brick = b.brick_id;
          break;
        }
      }
      grpc::ClientContext ctx;
      PrepareContext(&ctx, options_.token, std::chrono::milliseconds(1000));
      pb::StatFsRequest req;
      req.set_brick_id(brick);
      pb::StatFsReply rep;
      grpc::Status s = node->stub()->StatFs(&ctx, req, &rep);
      if (!IsTransportFailure(s) && node->SetConnected(true)) {
        spdlog::info("event=brick_node_reconnected node={}", node->address());
      }
    }
    l.lock();
  }
}

Attr VolumeImpl::ToAttr(const pb::Attr& a, Ino ino) const {
  Attr out;
  out.ino = ino;
  auto id = Uuid::FromBytes(a.id());
  if (id.ok()) out.id = *id;
  out.mode = a.mode();
  out.uid = a.uid();
  out.gid = a.gid();
  out.nlink = a.nlink();
  out.size = a.size();
  out.blocks = a.blocks();
  out.blksize = a.blksize() != 0 ? a.blksize() : 4096;
  out.rdev = a.rdev();
  out.atime_ns = a.atime_ns();
  out.mtime_ns = a.mtime_ns();
  out.ctime_ns = a.ctime_ns();
  return out;
}

std::shared_ptr<Inode> VolumeImpl::Register(int s, const std::vector<const pb::Attr*>& answers,
                                            uint64_t add_refs) {
  const Subvol& sv = subvols_[s];
  // The freshest answer, preferring data bricks (an arbiter has no sizes).
  int best = -1;
  for (size_t r = 0; r < answers.size(); ++r) {
    if (answers[r] == nullptr) continue;
    if (best < 0) {
      best = static_cast<int>(r);
      continue;
    }
    const pb::Attr& b = *answers[best];
    const pb::Attr& c = *answers[r];
    bool better = VersionLess(b.version(), c.version()) ||
                  (sv.replicas[best].arbiter && !sv.replicas[r].arbiter &&
                   !VersionLess(c.version(), b.version()));
    if (better) best = static_cast<int>(r);
  }
  if (best < 0) return nullptr;
  auto id = Uuid::FromBytes(answers[best]->id());
  if (!id.ok()) return nullptr;
  {
    // Among equally fresh data replicas, the one reads go to (PickReplica).
    std::vector<int> fresh;
    for (size_t r = 0; r < answers.size(); ++r) {
      if (answers[r] != nullptr && !sv.replicas[r].arbiter &&
          !VersionLess(answers[r]->version(), answers[best]->version())) {
        fresh.push_back(static_cast<int>(r));
      }
    }
    if (!fresh.empty()) best = fresh[id->Hash() % fresh.size()];
  }
  const pb::Attr& a = *answers[best];
  const bool dir = a.type() == pb::FILE_TYPE_DIRECTORY;

  std::shared_ptr<Inode> n;
  bool created = false;
  {
    std::lock_guard l(table_mu_);
    auto it = by_id_.find(*id);
    if (it != by_id_.end()) {
      n = inodes_.at(it->second);
    } else {
      n = std::make_shared<Inode>();
      created = true;
      n->ino = next_ino_++;
      n->id = *id;
      n->subvol = dir ? -1 : s;
      inodes_[n->ino] = n;
      by_id_[*id] = n->ino;
    }
    // References are taken under the table lock, so a concurrent Forget
    // cannot drop the entry between finding it and referencing it.
    std::lock_guard nl(n->mu);
    n->nlookup += add_refs;
  }
  std::lock_guard l(n->mu);
  if (dir) n->subvol = -1;
  // Versions are tracked on the home subvolume only.
  if (s == n->home()) {
    const size_t rc = sv.replicas.size();
    n->versions.resize(rc);
    n->stale.resize(rc);
    pb::Version max;
    for (size_t r = 0; r < rc; ++r) {
      if (answers[r] != nullptr) max = VersionMax(max, answers[r]->version());
    }
    for (const auto& v : n->versions) max = VersionMax(max, v);
    size_t answered = 0;
    for (size_t r = 0; r < rc; ++r) {
      if (answers[r] != nullptr) {
        ++answered;
        n->versions[r] = answers[r]->version();
        n->stale[r] = VersionLess(answers[r]->version(), max);
      } else {
        // Not asked or unreachable. A replica known to hold the newest
        // version the others show cannot have missed an acknowledged
        // mutation since (the answers include a read quorum); anything else
        // is not read until a fresh answer shows it current.
        if (created || VersionLess(n->versions[r], max)) n->stale[r] = true;
      }
    }
    std::vector<bool> known(rc);
    for (size_t r = 0; r < rc; ++r) known[r] = answers[r] != nullptr;
    MarkTagMinority(n->versions, known, &n->stale);
    n->verified = answered >= sv.read_quorum() || n->verified;
  }
  // Only an arbiter answered for a file: its size means nothing; keep ours.
  if (!(sv.replicas[best].arbiter && !dir && n->attr.ino != 0)) n->attr = ToAttr(a, n->ino);
  n->LearnXattrs(a);
  return n;
}

template <class Req, class Rep, class MakeReq, class Issue, class VersionOf>
StatusOr<VolumeImpl::Fan<Rep>> VolumeImpl::Mutate(int s, Kind kind, Inode* obj, MakeReq make,
                                                  Issue issue, VersionOf version_of) {
  const Subvol& sv = subvols_[s];
  int up = 0;
  for (const auto& r : sv.replicas) up += r.node->connected() ? 1 : 0;
  if (up < sv.quorum) {
    return Status(StatusCode::kFailedPrecondition,
                  "volume " + spec_.name + ": subvolume " + std::to_string(s) + " has " +
                      std::to_string(up) + " of " + std::to_string(sv.replicas.size()) +
                      " bricks connected; quorum " + std::to_string(sv.quorum) +
                      " is needed to write",
                  EROFS);
  }
  Fan<Rep> fan;
  fan.results = FanOut<Req, Rep>(sv.targets, options_.token, options_.rpc_timeout, make, issue);
  if (fan.results.size() != sv.replicas.size()) return Status::Internal("fan-out size");
  int ok = 0, ok_data = 0, transport = 0;
  std::map<int, int> errors;  // errno → count
  const Status* first_error = nullptr;
  for (size_t r = 0; r < fan.results.size(); ++r) {
    const auto& res = fan.results[r];
    if (res.ok()) {
      ++ok;
      if (!sv.replicas[r].arbiter) {
        bool stale = false;
        if (obj != nullptr && s == obj->home()) {
          std::lock_guard l(obj->mu);
          stale = r < obj->stale.size() && obj->stale[r];
        }
        if (!stale) ++ok_data;
        if (fan.chosen < 0 || sv.replicas[fan.chosen].arbiter) fan.chosen = static_cast<int>(r);
      } else if (fan.chosen < 0) {
        fan.chosen = static_cast<int>(r);
      }
    } else if (res.transport) {
      ++transport;
    } else {
      ++errors[ErrnoOf(res.status)];
      if (first_error == nullptr) first_error = &res.status;
    }
  }
  const bool quorum = ok >= sv.quorum && (kind != Kind::kData || ok_data >= 1);
  if (obj != nullptr && s == obj->home()) {
    // The reply that stands for the result comes from the replica reads of
    // this object go to (see PickReplica), so times do not jump between
    // replicas' slightly different clocks.
    std::vector<int> good;
    {
      std::lock_guard l(obj->mu);
      for (size_t r = 0; r < fan.results.size(); ++r) {
        if (fan.results[r].ok() && !sv.replicas[r].arbiter &&
            !(r < obj->stale.size() && obj->stale[r])) {
          good.push_back(static_cast<int>(r));
        }
      }
    }
    if (!good.empty()) fan.chosen = good[obj->id.Hash() % good.size()];
  }
  // Record which replicas have this mutation and which missed it.
  if (obj != nullptr && s == obj->home()) {
    std::lock_guard l(obj->mu);
    const size_t rc = sv.replicas.size();
    obj->versions.resize(rc);
    obj->stale.resize(rc);
    if (ok > 0) {
      pb::Version max;
      for (size_t r = 0; r < rc; ++r) {
        if (fan.results[r].ok()) max = VersionMax(max, version_of(fan.results[r].reply));
      }
      for (size_t r = 0; r < rc; ++r) {
        if (fan.results[r].ok()) {
          obj->versions[r] = version_of(fan.results[r].reply);
          if (VersionLess(obj->versions[r], max)) obj->stale[r] = true;
        } else {
          obj->stale[r] = true;
        }
      }
      std::vector<bool> known(rc);
      for (size_t r = 0; r < rc; ++r) known[r] = fan.results[r].ok();
      MarkTagMinority(obj->versions, known, &obj->stale);
    }
  }
  if (quorum) {
    if (ok < static_cast<int>(sv.replicas.size())) {
      spdlog::debug("event=mutation_degraded subvolume={} acked={} of={}", s, ok,
                    sv.replicas.size());
    }
    return fan;
  }
  // No quorum. An answer shared by a quorum of bricks (or by every brick
  // that answered, when none acknowledged) is the answer: EEXIST, ENOENT...
  const Status* most = nullptr;
  int most_count = 0;
  for (const auto& [err, count] : errors) {
    if (count > most_count) {
      most_count = count;
      for (const auto& res : fan.results) {
        if (!res.ok() && !res.transport && ErrnoOf(res.status) == err) {
          most = &res.status;
          break;
        }
      }
    }
  }
  if (most != nullptr && (most_count >= sv.quorum || (ok == 0 && errors.size() == 1))) {
    return *most;
  }
  if (transport > 0) {
    return Status(StatusCode::kFailedPrecondition,
                  "volume " + spec_.name + ": subvolume " + std::to_string(s) + ": only " +
                      std::to_string(ok) + " of " + std::to_string(sv.replicas.size()) +
                      " bricks acknowledged; quorum is " + std::to_string(sv.quorum),
                  EROFS);
  }
  if (ok == 0 && most != nullptr) return *most;
  return Status(StatusCode::kInternal,
                "volume " + spec_.name + ": subvolume " + std::to_string(s) +
                    ": bricks disagree (" + std::to_string(ok) + " acknowledged)",
                EIO);
}

void VolumeImpl::MaybeClear(int s, const Uuid& id,
                            const std::vector<const pb::Version*>& versions) {
  if (!replicated_) return;
  const Subvol& sv = subvols_[s];
  if (versions.size() != sv.replicas.size()) return;
  for (const auto* v : versions) {
    if (v == nullptr || !VersionEq(*v, *versions[0])) return;
  }
  for (size_t r = 0; r < versions.size(); ++r) {
    janitor_->Clear(sv.replicas[r].global, id, *versions[r]);
  }
}

StatusOr<int> VolumeImpl::PickReplica(Inode& n, bool data) {
  const Subvol& sv = subvols_[n.home()];
  // A connected replica that may serve this object; `current` also needs it
  // not marked stale.
  auto candidates = [&](bool current) {
    std::vector<int> out;
    std::lock_guard l(n.mu);
    for (size_t r = 0; r < sv.replicas.size(); ++r) {
      if (!sv.replicas[r].node->connected()) continue;
      if (current && r < n.stale.size() && n.stale[r]) continue;
      if (sv.replicas[r].arbiter && (data || n.subvol >= 0)) continue;
      out.push_back(static_cast<int>(r));
    }
    return out;
  };
  std::vector<int> good = candidates(true);
  // Every connected one looks behind. An object changed while it was looked
  // up can: a lookup's answers are not taken at one instant (the arbiter may
  // answer after one more create or write than the data brick asked, and
  // the data brick not asked counts as unknown). Ask them all again, up to
  // three times, before answering EIO; one that really is behind stays so.
  for (int attempt = 0; good.empty() && attempt < 3 && !candidates(false).empty(); ++attempt) {
    CAIRN_RETURN_IF_ERROR(Refresh(n));
    good = candidates(true);
  }
  if (good.empty()) {
    return Status(StatusCode::kUnavailable,
                  "no connected replica holds current data of " + n.id.ToString(), EIO);
  }
  // Spread objects over replicas, but keep one object on one replica.
  return good[n.id.Hash() % good.size()];
}

Status VolumeImpl::Refresh(Inode& n) {
  const int s = n.home();
  const Subvol& sv = subvols_[s];
  auto results = FanOut<pb::GetAttrRequest, pb::AttrReply>(
      sv.targets, options_.token, options_.rpc_timeout,
      [&](size_t i) {
        pb::GetAttrRequest r;
        r.set_brick_id(sv.targets[i].brick_id);
        r.set_id(n.id.Raw());
        return r;
      },
      CAIRN_ASYNC(GetAttr));
  std::vector<const pb::Attr*> answers(results.size(), nullptr);
  const Status* err = nullptr;
  for (size_t r = 0; r < results.size(); ++r) {
    if (results[r].ok()) {
      answers[r] = &results[r].reply.attr();
    } else if (!results[r].transport && err == nullptr) {
      err = &results[r].status;
    }
  }
  bool any = std::any_of(answers.begin(), answers.end(), [](auto* a) { return a != nullptr; });
  if (!any) {
    if (err != nullptr) return *err;
    return Status(StatusCode::kUnavailable,
                  "no brick of subvolume " + std::to_string(s) + " answered for " + n.id.ToString(),
                  ENOTCONN);
  }
  Register(s, answers, 0);
  return Status::Ok();
}

Status VolumeImpl::EnsureVerified(Inode& n) {
  bool verified;
  {
    std::lock_guard l(n.mu);
    verified = n.verified;
  }
  if (verified) return Status::Ok();
  return Refresh(n);
}

template <class Rep, class ParentOf>
void VolumeImpl::LearnDirAttr(Inode& dir, int s, const std::vector<BrickResult<Rep>>& results,
                              ParentOf parent_of) {
  if (options_.dir_attr_cache_timeout.count() <= 0 || s != dir.home()) return;
  auto r = PickReplica(dir, false);
  if (!r.ok() || *r >= static_cast<int>(results.size()) || !results[*r].ok()) return;
  const pb::Attr* a = parent_of(results[*r].reply);
  if (a == nullptr || a->id().empty()) return;  // a brick without Attr.parent
  std::lock_guard l(dir.mu);
  dir.attr = ToAttr(*a, dir.ino);
  dir.dir_attr_at = std::chrono::steady_clock::now();
}

template <class Req, class Rep, class MakeReq, class Issue>
StatusOr<Rep> VolumeImpl::CallOne(const CallTarget& t, MakeReq make, Issue issue) {
  auto r = FanOut<Req, Rep>(
      {t}, options_.token, options_.rpc_timeout, [&](size_t) { return make(); }, issue);
  if (!r[0].ok()) return r[0].status;
  return std::move(r[0].reply);
}

// ---- Distribution ----------------------------------------------------------

StatusOr<std::shared_ptr<const Layout>> VolumeImpl::LayoutOf(Inode& dir) {
  {
    std::lock_guard l(dir.mu);
    if (dir.layout) return dir.layout;
  }
  std::shared_ptr<const Layout> layout;
  auto r = PickReplica(dir, false);
  if (r.ok()) {
    const CallTarget& t = subvols_[0].targets[*r];
    auto v = CallOne<pb::GetXattrRequest, pb::GetXattrReply>(
        t,
        [&] {
          pb::GetXattrRequest q;
          q.set_brick_id(t.brick_id);
          q.set_id(dir.id.Raw());
          q.set_name(kLayoutXattr);
          return q;
        },
        CAIRN_ASYNC(GetXattr));
    if (v.ok()) {
      auto parsed = Layout::Parse(v->value(), nsub());
      if (parsed.ok()) {
        layout = std::make_shared<Layout>(std::move(*parsed));
      } else {
        spdlog::warn("event=bad_layout dir={} error=\"{}\"", dir.id.ToString(),
                     parsed.status().message());
      }
    } else if (ErrnoOf(v.status()) != ENODATA) {
      return v.status();
    }
  }
  // No layout stored (the root, or written by an older client): the volume's
  // even layout.
  if (!layout) layout = std::make_shared<Layout>(Layout::Even(nsub(), spec_.generation));
  std::lock_guard l(dir.mu);
  dir.layout = layout;
  return layout;
}

StatusOr<int> VolumeImpl::HashedSubvol(Inode& dir, std::string_view name) {
  if (nsub() == 1) return 0;
  CAIRN_ASSIGN_OR_RETURN(auto layout, LayoutOf(dir));
  return layout->SubvolumeFor(name);
}

StatusOr<VolumeImpl::Fan<pb::AttrReply>> VolumeImpl::LookupOn(int s, const Uuid& parent,
                                                              std::string_view name) {
  const Subvol& sv = subvols_[s];
  const size_t rc = sv.replicas.size();
  Fan<pb::AttrReply> fan;
  fan.results.resize(rc);
  // Asks the replicas in `which` (indexes into the subvolume) at once.
  auto ask = [&](const std::vector<size_t>& which) {
    std::vector<CallTarget> targets;
    for (size_t r : which) targets.push_back(sv.targets[r]);
    auto got = FanOut<pb::LookupRequest, pb::AttrReply>(
        targets, options_.token, options_.rpc_timeout,
        [&](size_t i) {
          pb::LookupRequest r;
          r.set_brick_id(targets[i].brick_id);
          r.set_parent_id(parent.Raw());
          r.set_name(std::string(name));
          return r;
        },
        CAIRN_ASYNC(Lookup));
    for (size_t i = 0; i < which.size(); ++i) fan.results[which[i]] = std::move(got[i]);
  };
  // A read quorum first: rc - quorum + 1 replicas share at least one brick
  // with every write quorum, so between them they hold every acknowledged
  // create and unlink of this name and the newest acknowledged version of
  // the object. When they agree (all found the same object, or none found
  // it) that is the answer; otherwise the others are asked too and all vote.
  // The replicas asked are spread by name, connected ones first.
  const size_t want = sv.read_quorum();
  std::vector<size_t> first;
  if (rc >= 3 && want < rc) {
    const size_t start = (parent.Hash() ^ std::hash<std::string_view>{}(name)) % rc;
    for (size_t k = 0; k < rc && first.size() < want; ++k) {
      size_t r = (start + k) % rc;
      if (sv.replicas[r].node->connected()) first.push_back(r);
    }
  }
  std::vector<size_t> rest;
  if (first.size() == want) {
    ask(first);
    bool agree = true;
    int found = 0, missing = 0;
    for (size_t r : first) {
      const auto& res = fan.results[r];
      if (res.ok()) {
        ++found;
        agree = agree && res.reply.attr().id() == fan.results[first[0]].reply.attr().id();
      } else if (!res.transport && ErrnoOf(res.status) == ENOENT) {
        ++missing;
      } else {
        agree = false;
      }
    }
    if (!agree || (found > 0 && missing > 0)) {
      for (size_t r = 0; r < rc; ++r) {
        if (std::find(first.begin(), first.end(), r) == first.end()) rest.push_back(r);
      }
      ask(rest);
    }
  } else {
    for (size_t r = 0; r < rc; ++r) rest.push_back(r);
    ask(rest);
  }
  int ok = 0, enoent = 0;
  const Status* other = nullptr;
  for (size_t r = 0; r < fan.results.size(); ++r) {
    const auto& res = fan.results[r];
    if (!res.sent && !res.transport) continue;  // not asked
    if (res.ok()) {
      if (fan.chosen >= 0 && res.reply.attr().id() != fan.results[fan.chosen].reply.attr().id()) {
        return Status(StatusCode::kDataLoss,
                      "replicas disagree about '" + std::string(name) + "' (split brain)", EIO);
      }
      ++ok;
      if (fan.chosen < 0 || sv.replicas[fan.chosen].arbiter) fan.chosen = static_cast<int>(r);
    } else if (res.transport) {
      continue;  // unreachable: no vote
    } else if (ErrnoOf(res.status) == ENOENT) {
      ++enoent;
    } else if (other == nullptr) {
      other = &res.status;
    }
  }
  // A replica that missed a create (or an unlink) is outvoted; on a tie the
  // name exists (no acknowledged create is ever hidden).
  if (ok > 0 && ok >= enoent) return fan;
  if (enoent > 0) {
    return Status(StatusCode::kNotFound, "no entry '" + std::string(name) + "'", ENOENT);
  }
  if (other != nullptr) return *other;
  return Status(StatusCode::kUnavailable,
                "no brick of subvolume " + std::to_string(s) + " is reachable", ENOTCONN);
}

StatusOr<std::pair<int, VolumeImpl::Fan<pb::AttrReply>>> VolumeImpl::Locate(Inode& dir,
                                                                            std::string_view name) {
  CAIRN_ASSIGN_OR_RETURN(int hashed, HashedSubvol(dir, name));
  auto fan = LookupOn(hashed, dir.id, name);
  if (fan.ok() || ErrnoOf(fan.status()) != ENOENT || nsub() == 1) {
    if (!fan.ok()) return fan.status();
    return std::make_pair(hashed, std::move(*fan));
  }
  // Not where its name hashes: created under another layout or renamed.
  for (int s = 0; s < nsub(); ++s) {
    if (s == hashed) continue;
    auto other = LookupOn(s, dir.id, name);
    if (other.ok()) return std::make_pair(s, std::move(*other));
    if (ErrnoOf(other.status()) != ENOENT) return other.status();
  }
  return fan.status();
}

StatusOr<Attr> VolumeImpl::LookupImpl(Ino parent, std::string_view name, uint64_t refs) {
  CAIRN_ASSIGN_OR_RETURN(auto dir, Get(parent));
  if (dir->subvol >= 0) return Errno(ENOTDIR, "not a directory");
  CAIRN_ASSIGN_OR_RETURN(auto found, Locate(*dir, name));
  auto& [s, fan] = found;
  int home = fan.results[fan.chosen].reply.attr().type() == pb::FILE_TYPE_DIRECTORY ? 0 : s;
  Fan<pb::AttrReply> home_fan;
  if (home != s) {
    // A directory found on another subvolume: its versions live on subvolume 0.
    CAIRN_ASSIGN_OR_RETURN(home_fan, LookupOn(home, dir->id, name));
  }
  auto& use = home != s ? home_fan : fan;
  std::vector<const pb::Attr*> answers(use.results.size(), nullptr);
  for (size_t r = 0; r < use.results.size(); ++r) {
    if (use.results[r].ok()) answers[r] = &use.results[r].reply.attr();
  }
  auto n = Register(home, answers, refs);
  if (n == nullptr) return Status(StatusCode::kDataLoss, "malformed id from brick", EIO);
  std::lock_guard l(n->mu);
  return n->attr;
}

// ---- Creation ------------------------------------------------------------------

StatusOr<Attr> VolumeImpl::CreateImpl(Ino parent, std::string_view name, uint32_t mode,
                                      uint64_t rdev, std::string_view target, const Caller& caller,
                                      char kind) {
  CAIRN_ASSIGN_OR_RETURN(auto dir, Get(parent));
  if (dir->subvol >= 0) return Errno(ENOTDIR, "not a directory");
  Caller owner = caller;
  {
    std::lock_guard l(dir->mu);
    // BSD group semantics under a set-group-id directory.
    if (dir->attr.mode & S_ISGID) {
      owner.gid = dir->attr.gid;
      if (kind == 'd') mode |= S_ISGID;
    }
  }
  const Uuid id = Uuid::Random();
  pb::CreateRequest base;
  base.set_parent_id(dir->id.Raw());
  base.set_name(std::string(name));
  base.set_new_id(id.Raw());
  *base.mutable_txn() = NewTxn();
  base.mutable_caller()->set_uid(owner.uid);
  base.mutable_caller()->set_gid(owner.gid);
  base.set_mode(mode);
  base.set_rdev(rdev);
  base.set_symlink_target(std::string(target));

  auto version_of = [](const pb::AttrReply& r) -> const pb::Version& { return r.attr().version(); };
  auto issue = [kind](pb::Brick::Stub* stub, grpc::ClientContext* ctx, const pb::CreateRequest& req,
                      grpc::CompletionQueue* cq) {
    switch (kind) {
      case 'd':
        return stub->PrepareAsyncMkdir(ctx, req, cq);
      case 'l':
        return stub->PrepareAsyncSymlink(ctx, req, cq);
      case 'n':
        return stub->PrepareAsyncMknod(ctx, req, cq);
      default:
        return stub->PrepareAsyncCreate(ctx, req, cq);
    }
  };

  if (kind == 'd') {
    if (nsub() > 1) {
      auto* x = base.add_xattrs();
      x->set_name(kLayoutXattr);
      x->set_value(Layout::Even(nsub(), spec_.generation).ToString());
    }
    // Directories exist on every subvolume; subvolume 0 first (it is their home).
    std::vector<Fan<pb::AttrReply>> fans(nsub());
    for (int s = 0; s < nsub(); ++s) {
      const Subvol& sv = subvols_[s];
      auto fan = Mutate<pb::CreateRequest, pb::AttrReply>(
          s, Kind::kEntry, nullptr,
          [&](size_t i) {
            pb::CreateRequest r = base;
            r.set_brick_id(sv.targets[i].brick_id);
            return r;
          },
          issue, version_of);
      if (!fan.ok()) {
        if (s > 0) {
          spdlog::warn("event=mkdir_partial name={} subvolume={} error=\"{}\"", name, s,
                       fan.status().message());
        }
        return fan.status();
      }
      fans[s] = std::move(*fan);
    }
    for (int s = 0; s < nsub(); ++s) {
      std::vector<const pb::Version*> pv, ov;
      for (auto& res : fans[s].results) {
        pv.push_back(res.ok() ? &res.reply.attr().parent_version() : nullptr);
        ov.push_back(res.ok() ? &res.reply.attr().version() : nullptr);
      }
      MaybeClear(s, dir->id, pv);
      MaybeClear(s, id, ov);
    }
    LearnDirAttr(*dir, 0, fans[0].results,
                 [](const pb::AttrReply& r) { return &r.attr().parent(); });
    std::vector<const pb::Attr*> answers;
    for (auto& res : fans[0].results) answers.push_back(res.ok() ? &res.reply.attr() : nullptr);
    auto n = Register(0, answers, 1);
    if (n == nullptr) return Status(StatusCode::kDataLoss, "malformed reply", EIO);
    std::lock_guard l(n->mu);
    return n->attr;
  }

  CAIRN_ASSIGN_OR_RETURN(int s, HashedSubvol(*dir, name));
  const Subvol& sv = subvols_[s];
  CAIRN_ASSIGN_OR_RETURN(auto fan, (Mutate<pb::CreateRequest, pb::AttrReply>(
                                       s, Kind::kEntry, nullptr,
                                       [&](size_t i) {
                                         pb::CreateRequest r = base;
                                         r.set_brick_id(sv.targets[i].brick_id);
                                         return r;
                                       },
                                       issue, version_of)));
  std::vector<const pb::Attr*> answers;
  std::vector<const pb::Version*> pv, ov;
  for (auto& res : fan.results) {
    answers.push_back(res.ok() ? &res.reply.attr() : nullptr);
    pv.push_back(res.ok() ? &res.reply.attr().parent_version() : nullptr);
    ov.push_back(res.ok() ? &res.reply.attr().version() : nullptr);
  }
  MaybeClear(s, dir->id, pv);
  MaybeClear(s, id, ov);
  LearnDirAttr(*dir, s, fan.results, [](const pb::AttrReply& r) { return &r.attr().parent(); });
  auto n = Register(s, answers, 1);
  if (n == nullptr) return Status(StatusCode::kDataLoss, "malformed reply", EIO);
  std::lock_guard l(n->mu);
  if (kind == 'f') {
    ++n->open_count;
    ++open_files_;
  }
  // A new object has no xattrs yet.
  n->xattrs_known = true;
  n->xattr_names.clear();
  n->xattrs_at = std::chrono::steady_clock::now();
  return n->attr;
}

// ---- Removal ---------------------------------------------------------------------

void VolumeImpl::ObjectGone(int s, const Uuid& id) {
  // Unlinked while open here: keep it on the bricks until the last Release.
  auto n = FindById(id);
  if (n != nullptr) {
    std::lock_guard l(n->mu);
    if (n->open_count > 0) {
      n->unlinked = true;
      return;
    }
  }
  for (const auto& r : subvols_[s].replicas) janitor_->Forget(r.global, id);
}

Status VolumeImpl::CheckEmptyEverywhere(const std::string& dir_id) {
  for (int s = 0; s < nsub(); ++s) {
    const Subvol& sv = subvols_[s];
    bool checked = false;
    for (size_t r = 0; r < sv.replicas.size() && !checked; ++r) {
      if (!sv.replicas[r].node->connected()) continue;
      auto page = CallOne<pb::ReadDirRequest, pb::ReadDirReply>(
          sv.targets[r],
          [&] {
            pb::ReadDirRequest q;
            q.set_brick_id(sv.targets[r].brick_id);
            q.set_id(dir_id);
            q.set_max_entries(1);
            return q;
          },
          CAIRN_ASYNC(ReadDir));
      if (!page.ok()) {
        if (ErrnoOf(page.status()) == ENOENT) {
          checked = true;
          continue;
        }
        if (!sv.replicas[r].node->connected()) continue;
        return page.status();
      }
      if (page->entries_size() > 0) return Errno(ENOTEMPTY, "directory not empty");
      checked = true;
    }
  }
  return Status::Ok();
}

Status VolumeImpl::RemoveImpl(Ino parent, std::string_view name, bool is_dir) {
  CAIRN_ASSIGN_OR_RETURN(auto dir, Get(parent));
  if (dir->subvol >= 0) return Errno(ENOTDIR, "not a directory");
  std::vector<int> where;
  if (is_dir || nsub() == 1) {
    for (int s = 0; s < nsub(); ++s) where.push_back(s);
  } else {
    CAIRN_ASSIGN_OR_RETURN(auto found, Locate(*dir, name));
    where.push_back(found.first);
  }
  if (is_dir && nsub() > 1) {
    // Refuse before removing anything: a directory that is empty on one
    // subvolume may hold files on another.
    CAIRN_ASSIGN_OR_RETURN(auto found, Locate(*dir, name));
    auto& fan = found.second;
    const pb::Attr& a = fan.results[fan.chosen].reply.attr();
    if (a.type() != pb::FILE_TYPE_DIRECTORY) return Errno(ENOTDIR, "not a directory");
    CAIRN_RETURN_IF_ERROR(CheckEmptyEverywhere(a.id()));
  }
  // Keep an unlinked file's data on the bricks only if some file is open here.
  const bool keep_open = !is_dir && open_files_.load() > 0;
  Status result = Status::Ok();
  // Subvolume 0 last for directories: it holds their home copy.
  std::reverse(where.begin(), where.end());
  for (int s : where) {
    const Subvol& sv = subvols_[s];
    const pb::Txn txn = NewTxn();
    auto fan = Mutate<pb::UnlinkRequest, pb::UnlinkReply>(
        s, Kind::kEntry, nullptr,
        [&](size_t i) {
          pb::UnlinkRequest r;
          r.set_brick_id(sv.targets[i].brick_id);
          r.set_parent_id(dir->id.Raw());
          r.set_name(std::string(name));
          *r.mutable_txn() = txn;
          r.set_keep_open(keep_open);
          return r;
        },
        [is_dir](pb::Brick::Stub* stub, grpc::ClientContext* ctx, const pb::UnlinkRequest& req,
                 grpc::CompletionQueue* cq) {
          return is_dir ? stub->PrepareAsyncRmdir(ctx, req, cq)
                        : stub->PrepareAsyncUnlink(ctx, req, cq);
        },
        [](const pb::UnlinkReply& r) -> const pb::Version& { return r.parent_version(); });
    if (!fan.ok()) {
      // A directory missing on a non-home subvolume is already gone there.
      if (is_dir && s != 0 && ErrnoOf(fan.status()) == ENOENT) continue;
      return fan.status();
    }
    std::vector<const pb::Version*> pv;
    for (auto& res : fan->results) pv.push_back(res.ok() ? &res.reply.parent_version() : nullptr);
    MaybeClear(s, dir->id, pv);
    LearnDirAttr(*dir, s, fan->results, [](const pb::UnlinkReply& r) { return &r.parent(); });
    const pb::UnlinkReply& rep = fan->results[fan->chosen].reply;
    auto id = Uuid::FromBytes(rep.id());
    if (!id.ok()) continue;
    auto n = FindById(*id);
    if (n != nullptr) {
      std::lock_guard l(n->mu);
      n->attr.nlink = is_dir ? 0 : rep.nlink();
    }
    if (!is_dir && rep.nlink() == 0 && keep_open) ObjectGone(s, *id);
  }
  return result;
}

// ---- Rename -----------------------------------------------------------------------

Status VolumeImpl::RenameOn(const std::vector<int>& subvols, Inode& op, std::string_view on,
                            Inode& np, std::string_view nn, unsigned flags, Uuid* replaced) {
  const bool keep_open = open_files_.load() > 0;
  for (auto it = subvols.rbegin(); it != subvols.rend(); ++it) {
    const int s = *it;
    const Subvol& sv = subvols_[s];
    const pb::Txn txn = NewTxn();
    auto fan = Mutate<pb::RenameRequest, pb::RenameReply>(
        s, Kind::kEntry, nullptr,
        [&](size_t i) {
          pb::RenameRequest r;
          r.set_brick_id(sv.targets[i].brick_id);
          r.set_old_parent_id(op.id.Raw());
          r.set_old_name(std::string(on));
          r.set_new_parent_id(np.id.Raw());
          r.set_new_name(std::string(nn));
          *r.mutable_txn() = txn;
          r.set_flags(flags);
          r.set_keep_open_replaced(keep_open);
          return r;
        },
        CAIRN_ASYNC(Rename),
        [](const pb::RenameReply& r) -> const pb::Version& { return r.old_parent_version(); });
    if (!fan.ok()) return fan.status();
    std::vector<const pb::Version*> ov, nv;
    for (auto& res : fan->results) {
      ov.push_back(res.ok() ? &res.reply.old_parent_version() : nullptr);
      nv.push_back(res.ok() && op.id != np.id ? &res.reply.new_parent_version() : nullptr);
    }
    MaybeClear(s, op.id, ov);
    if (op.id != np.id) MaybeClear(s, np.id, nv);
    const pb::RenameReply& rep = fan->results[fan->chosen].reply;
    if (!rep.replaced_id().empty() && !(flags & RENAME_EXCHANGE)) {
      auto id = Uuid::FromBytes(rep.replaced_id());
      if (id.ok()) {
        if (replaced != nullptr) *replaced = *id;
        if (keep_open) ObjectGone(s, *id);
      }
    }
  }
  return Status::Ok();
}

// ---- SetAttr -----------------------------------------------------------------------

template <class Req, class MakeReq, class Issue>
StatusOr<pb::Attr> VolumeImpl::MutateObject(Inode& n, Kind kind, MakeReq make, Issue issue) {
  std::vector<int> where;
  if (n.subvol >= 0) {
    where.push_back(n.subvol);
  } else {
    for (int s = nsub() - 1; s >= 0; --s) where.push_back(s);
  }
  std::optional<pb::Attr> home;
  for (int s : where) {
    const Subvol& sv = subvols_[s];
    CAIRN_ASSIGN_OR_RETURN(
        auto fan,
        (Mutate<Req, pb::AttrReply>(
            s, kind, &n, [&](size_t i) { return make(sv, i); }, issue,
            [](const pb::AttrReply& r) -> const pb::Version& { return r.attr().version(); })));
    std::vector<const pb::Version*> v;
    for (auto& res : fan.results) v.push_back(res.ok() ? &res.reply.attr().version() : nullptr);
    MaybeClear(s, n.id, v);
    if (s == n.home()) home = std::move(*fan.results[fan.chosen].reply.mutable_attr());
  }
  if (!home) return Status::Internal("mutation: no reply from the home subvolume");
  return std::move(*home);
}

StatusOr<Attr> VolumeImpl::SetAttrImpl(Inode& n, const SetAttrArgs& args) {
  std::unique_lock<std::mutex> wl;
  if (args.valid & SetAttrArgs::kSize) {
    if (n.subvol < 0) return Errno(EISDIR, "truncate of a directory");
    wl = std::unique_lock(n.write_mu);
  }
  const pb::Txn txn = NewTxn();
  const Kind kind = (args.valid & SetAttrArgs::kSize) ? Kind::kData : Kind::kMeta;
  CAIRN_ASSIGN_OR_RETURN(pb::Attr a, (MutateObject<pb::SetAttrRequest>(
                                         n, kind,
                                         [&](const Subvol& sv, size_t i) {
                                           pb::SetAttrRequest r;
                                           r.set_brick_id(sv.targets[i].brick_id);
                                           r.set_id(n.id.Raw());
                                           *r.mutable_txn() = txn;
                                           r.set_valid(args.valid);
                                           r.set_mode(args.mode & 07777);
                                           r.set_uid(args.uid);
                                           r.set_gid(args.gid);
                                           r.set_size(args.size);
                                           r.set_atime_ns(args.atime_ns);
                                           r.set_mtime_ns(args.mtime_ns);
                                           return r;
                                         },
                                         CAIRN_ASYNC(SetAttr))));
  std::lock_guard l(n.mu);
  n.attr = ToAttr(a, n.ino);
  return n.attr;
}

// ===========================================================================
// Volume

Volume::Volume(std::unique_ptr<VolumeImpl> impl) : impl_(std::move(impl)) {}
Volume::~Volume() = default;

StatusOr<std::unique_ptr<Volume>> Volume::Open(const VolumeSpec& spec, Options options) {
  if (spec.subvolumes.empty()) return Status::InvalidArgument("volume spec has no subvolumes");
  DisableMutexDeadlockDetection();
  auto impl = std::make_unique<VolumeImpl>(spec, std::move(options));
  CAIRN_RETURN_IF_ERROR(impl->Connect());
  spdlog::info("event=volume_open volume={} type={} subvolumes={} replica={} arbiter={}", spec.name,
               VolumeSpec::TypeName(spec.type), spec.subvolumes.size(), spec.replica, spec.arbiter);
  return std::unique_ptr<Volume>(new Volume(std::move(impl)));
}

const VolumeSpec& Volume::spec() const { return impl_->spec_; }

std::vector<BrickHealth> Volume::Health() const {
  std::vector<BrickHealth> out;
  for (size_t s = 0; s < impl_->subvols_.size(); ++s) {
    for (const auto& r : impl_->subvols_[s].replicas) {
      out.push_back(
          {static_cast<int>(s), r.node->address(), r.brick_id, r.arbiter, r.node->connected()});
    }
  }
  return out;
}

StatusOr<Attr> Volume::Lookup(Ino parent, std::string_view name) {
  return impl_->LookupImpl(parent, name, 1);
}

void Volume::AddRef(Ino ino) {
  auto n = impl_->Get(ino);
  if (!n.ok()) return;
  std::lock_guard l((*n)->mu);
  ++(*n)->nlookup;
}

void Volume::Forget(Ino ino, uint64_t nlookup) {
  if (ino == kRootIno) return;
  std::lock_guard tl(impl_->table_mu_);
  auto it = impl_->inodes_.find(ino);
  if (it == impl_->inodes_.end()) return;
  std::shared_ptr<Inode> n = it->second;
  std::lock_guard l(n->mu);
  n->nlookup = nlookup >= n->nlookup ? 0 : n->nlookup - nlookup;
  impl_->DropIfUnused(n);
}

StatusOr<Attr> Volume::GetAttr(Ino ino) {
  CAIRN_ASSIGN_OR_RETURN(auto n, impl_->Get(ino));
  {
    // A directory this client just changed: the reply carried its attributes.
    std::lock_guard l(n->mu);
    if (n->subvol < 0 && n->dir_attr_at != std::chrono::steady_clock::time_point{} &&
        std::chrono::steady_clock::now() - n->dir_attr_at <
            impl_->options_.dir_attr_cache_timeout) {
      return n->attr;
    }
  }
  CAIRN_RETURN_IF_ERROR(impl_->EnsureVerified(*n));
  for (int attempt = 0; attempt < 3; ++attempt) {
    CAIRN_ASSIGN_OR_RETURN(int r, impl_->PickReplica(*n, false));
    const CallTarget& t = impl_->subvols_[n->home()].targets[r];
    auto rep = impl_->CallOne<pb::GetAttrRequest, pb::AttrReply>(
        t,
        [&] {
          pb::GetAttrRequest q;
          q.set_brick_id(t.brick_id);
          q.set_id(n->id.Raw());
          return q;
        },
        CAIRN_ASYNC(GetAttr));
    if (!rep.ok()) {
      if (!t.node->connected()) continue;  // that node went away: another replica
      return rep.status();
    }
    std::lock_guard l(n->mu);
    if (r < static_cast<int>(n->versions.size()) &&
        VersionLess(rep->attr().version(), n->versions[r])) {
      n->stale[r] = true;  // went backwards: not current after all
      continue;
    }
    n->attr = impl_->ToAttr(rep->attr(), n->ino);
    return n->attr;
  }
  return Status(StatusCode::kUnavailable, "no replica answered", EIO);
}

StatusOr<Attr> Volume::SetAttr(Ino ino, const SetAttrArgs& args) {
  CAIRN_ASSIGN_OR_RETURN(auto n, impl_->Get(ino));
  return impl_->SetAttrImpl(*n, args);
}

StatusOr<Attr> Volume::Create(Ino parent, std::string_view name, uint32_t mode,
                              const Caller& caller) {
  return impl_->CreateImpl(parent, name, mode & 07777, 0, "", caller, 'f');
}
StatusOr<Attr> Volume::Mknod(Ino parent, std::string_view name, uint32_t mode, uint64_t rdev,
                             const Caller& caller) {
  return impl_->CreateImpl(parent, name, mode, rdev, "", caller, 'n');
}
StatusOr<Attr> Volume::Mkdir(Ino parent, std::string_view name, uint32_t mode,
                             const Caller& caller) {
  return impl_->CreateImpl(parent, name, mode & 07777, 0, "", caller, 'd');
}
StatusOr<Attr> Volume::Symlink(Ino parent, std::string_view name, std::string_view target,
                               const Caller& caller) {
  return impl_->CreateImpl(parent, name, 0777, 0, target, caller, 'l');
}

StatusOr<Attr> Volume::Link(Ino ino, Ino new_parent, std::string_view new_name) {
  CAIRN_ASSIGN_OR_RETURN(auto n, impl_->Get(ino));
  CAIRN_ASSIGN_OR_RETURN(auto dir, impl_->Get(new_parent));
  if (n->subvol < 0) return Errno(EPERM, "hard links to directories are not allowed");
  if (dir->subvol >= 0) return Errno(ENOTDIR, "not a directory");
  const int s = n->subvol;
  const Subvol& sv = impl_->subvols_[s];
  const pb::Txn txn = impl_->NewTxn();
  CAIRN_ASSIGN_OR_RETURN(
      auto fan,
      (impl_->Mutate<pb::LinkRequest, pb::AttrReply>(
          s, Kind::kEntry, nullptr,
          [&](size_t i) {
            pb::LinkRequest r;
            r.set_brick_id(sv.targets[i].brick_id);
            r.set_id(n->id.Raw());
            r.set_new_parent_id(dir->id.Raw());
            r.set_new_name(std::string(new_name));
            *r.mutable_txn() = txn;
            return r;
          },
          CAIRN_ASYNC(Link),
          [](const pb::AttrReply& r) -> const pb::Version& { return r.attr().version(); })));
  std::vector<const pb::Version*> pv;
  std::vector<const pb::Attr*> answers;
  for (auto& res : fan.results) {
    pv.push_back(res.ok() ? &res.reply.attr().parent_version() : nullptr);
    answers.push_back(res.ok() ? &res.reply.attr() : nullptr);
  }
  impl_->MaybeClear(s, dir->id, pv);
  impl_->LearnDirAttr(*dir, s, fan.results,
                      [](const pb::AttrReply& r) { return &r.attr().parent(); });
  auto reg = impl_->Register(s, answers, 1);
  if (reg == nullptr) return Status(StatusCode::kDataLoss, "malformed reply", EIO);
  std::lock_guard l(reg->mu);
  return reg->attr;
}

StatusOr<std::string> Volume::Readlink(Ino ino) {
  CAIRN_ASSIGN_OR_RETURN(auto n, impl_->Get(ino));
  CAIRN_RETURN_IF_ERROR(impl_->EnsureVerified(*n));
  CAIRN_ASSIGN_OR_RETURN(int r, impl_->PickReplica(*n, false));
  const CallTarget& t = impl_->subvols_[n->home()].targets[r];
  CAIRN_ASSIGN_OR_RETURN(auto rep, (impl_->CallOne<pb::ReadlinkRequest, pb::ReadlinkReply>(
                                       t,
                                       [&] {
                                         pb::ReadlinkRequest q;
                                         q.set_brick_id(t.brick_id);
                                         q.set_id(n->id.Raw());
                                         return q;
                                       },
                                       CAIRN_ASYNC(Readlink))));
  return rep.target();
}

Status Volume::Unlink(Ino parent, std::string_view name) {
  return impl_->RemoveImpl(parent, name, false);
}
Status Volume::Rmdir(Ino parent, std::string_view name) {
  return impl_->RemoveImpl(parent, name, true);
}

Status Volume::Rename(Ino old_parent, std::string_view old_name, Ino new_parent,
                      std::string_view new_name, unsigned flags) {
  if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE)) return Errno(EINVAL, "unknown rename flags");
  if ((flags & RENAME_NOREPLACE) && (flags & RENAME_EXCHANGE)) {
    return Errno(EINVAL, "RENAME_NOREPLACE with RENAME_EXCHANGE");
  }
  CAIRN_ASSIGN_OR_RETURN(auto op, impl_->Get(old_parent));
  CAIRN_ASSIGN_OR_RETURN(auto np, impl_->Get(new_parent));
  if (op->subvol >= 0 || np->subvol >= 0) return Errno(ENOTDIR, "not a directory");
  const int ns = impl_->nsub();
  if (ns == 1) return impl_->RenameOn({0}, *op, old_name, *np, new_name, flags, nullptr);

  CAIRN_ASSIGN_OR_RETURN(auto src, impl_->Locate(*op, old_name));
  const pb::Attr& sa = src.second.results[src.second.chosen].reply.attr();
  const bool src_dir = sa.type() == pb::FILE_TYPE_DIRECTORY;
  auto dst = impl_->Locate(*np, new_name);
  if (!dst.ok() && ErrnoOf(dst.status()) != ENOENT) return dst.status();
  const pb::Attr* da = dst.ok() ? &dst->second.results[dst->second.chosen].reply.attr() : nullptr;
  const bool dst_dir = da != nullptr && da->type() == pb::FILE_TYPE_DIRECTORY;
  if (da != nullptr && sa.id() == da->id()) return Status::Ok();  // two names of one file
  std::vector<int> others;  // every subvolume but 0, for directories
  for (int s = 1; s < ns; ++s) others.push_back(s);

  if (src_dir || dst_dir) {
    if (da != nullptr && (flags & RENAME_NOREPLACE)) return Errno(EEXIST, "rename target exists");
    if (src_dir && dst_dir) {
      // Directories exist everywhere. A replaced one must be empty everywhere;
      // subvolume 0 goes first, so a refusal there changes nothing.
      if (!(flags & RENAME_EXCHANGE)) CAIRN_RETURN_IF_ERROR(impl_->CheckEmptyEverywhere(da->id()));
      CAIRN_RETURN_IF_ERROR(impl_->RenameOn({0}, *op, old_name, *np, new_name, flags, nullptr));
      return impl_->RenameOn(others, *op, old_name, *np, new_name, flags, nullptr);
    }
    if (da == nullptr) {
      CAIRN_RETURN_IF_ERROR(impl_->RenameOn({0}, *op, old_name, *np, new_name, flags, nullptr));
      return impl_->RenameOn(others, *op, old_name, *np, new_name, flags, nullptr);
    }
    // A directory and a file.
    if (!(flags & RENAME_EXCHANGE)) {
      return src_dir ? Errno(ENOTDIR, "rename of a directory onto a file")
                     : Errno(EISDIR, "rename of a file onto a directory");
    }
    // Exchange: on the file's subvolume both names swap; elsewhere only the
    // directory exists and moves to the other name.
    const int fs = src_dir ? dst->first : src.first;
    CAIRN_RETURN_IF_ERROR(impl_->RenameOn({fs}, *op, old_name, *np, new_name, flags, nullptr));
    for (int s = 0; s < ns; ++s) {
      if (s == fs) continue;
      Status st = src_dir ? impl_->RenameOn({s}, *op, old_name, *np, new_name, 0, nullptr)
                          : impl_->RenameOn({s}, *np, new_name, *op, old_name, 0, nullptr);
      CAIRN_RETURN_IF_ERROR(st);
    }
    return Status::Ok();
  }
  const int s = src.first;
  if (da == nullptr || dst->first == s) {
    // Same subvolume (or no target): one rename where the file lives. Its new
    // name may hash elsewhere; lookups search the other subvolumes.
    return impl_->RenameOn({s}, *op, old_name, *np, new_name, flags, nullptr);
  }
  // The target is a file on another subvolume.
  const int t = dst->first;
  if (flags & RENAME_NOREPLACE) return Errno(EEXIST, "rename target exists");
  if (flags & RENAME_EXCHANGE) {
    // Each file keeps its subvolume and takes the other's name.
    CAIRN_RETURN_IF_ERROR(impl_->RenameOn({s}, *op, old_name, *np, new_name, 0, nullptr));
    return impl_->RenameOn({t}, *np, new_name, *op, old_name, 0, nullptr);
  }
  // Remove the target first (it is replaced), then rename where the file lives.
  CAIRN_RETURN_IF_ERROR(impl_->RemoveImpl(new_parent, new_name, false));
  return impl_->RenameOn({s}, *op, old_name, *np, new_name, 0, nullptr);
}

StatusOr<std::vector<DirEntry>> Volume::ReadDir(Ino dir_ino, bool plus) {
  CAIRN_ASSIGN_OR_RETURN(auto dir, impl_->Get(dir_ino));
  if (dir->subvol >= 0) return Errno(ENOTDIR, "not a directory");
  CAIRN_RETURN_IF_ERROR(impl_->EnsureVerified(*dir));
  std::vector<DirEntry> out;
  for (int s = 0; s < impl_->nsub(); ++s) {
    const Subvol& sv = impl_->subvols_[s];
    int r = -1;
    if (s == 0) {
      CAIRN_ASSIGN_OR_RETURN(r, impl_->PickReplica(*dir, true));
    } else {
      for (size_t i = 0; i < sv.replicas.size(); ++i) {
        if (sv.replicas[i].node->connected() && !sv.replicas[i].arbiter) {
          r = static_cast<int>(i);
          break;
        }
      }
      if (r < 0) return Errno(EIO, "no brick of subvolume " + std::to_string(s) + " reachable");
    }
    const CallTarget& t = sv.targets[r];
    uint64_t cookie = 0;
    for (;;) {
      CAIRN_ASSIGN_OR_RETURN(auto page, (impl_->CallOne<pb::ReadDirRequest, pb::ReadDirReply>(
                                            t,
                                            [&] {
                                              pb::ReadDirRequest q;
                                              q.set_brick_id(t.brick_id);
                                              q.set_id(dir->id.Raw());
                                              q.set_cookie(cookie);
                                              q.set_with_attrs(plus);
                                              return q;
                                            },
                                            CAIRN_ASYNC(ReadDir))));
      for (const auto& e : page.entries()) {
        const bool is_dir = e.type() == pb::FILE_TYPE_DIRECTORY;
        if (s > 0 && is_dir) continue;  // directories are listed from subvolume 0
        DirEntry de;
        de.name = e.name();
        de.mode = ModeTypeOf(e.type());
        if (plus) {
          if (e.id().empty()) continue;  // not created through Cairn
          std::vector<const pb::Attr*> answers(sv.replicas.size(), nullptr);
          answers[r] = &e.attr();
          auto id = Uuid::FromBytes(e.id());
          if (!id.ok()) continue;
          auto known = impl_->FindById(*id);
          if (known != nullptr) {
            std::lock_guard l(known->mu);
            bool usable = (is_dir ? s == 0 : known->subvol == s) &&
                          !(r < static_cast<int>(known->stale.size()) && known->stale[r]);
            if (usable) {
              known->attr = impl_->ToAttr(e.attr(), known->ino);
              known->LearnXattrs(e.attr());
            }
            de.attr = known->attr;
          } else {
            // Seen on one replica only: not verified (see EnsureVerified).
            auto n = impl_->Register(is_dir ? 0 : s, answers, 0);
            if (n == nullptr) continue;
            std::lock_guard l(n->mu);
            n->verified = false;
            std::fill(n->stale.begin(), n->stale.end(), false);
            de.attr = n->attr;
          }
          de.mode = de.attr.mode;
        }
        out.push_back(std::move(de));
      }
      if (page.eof()) break;
      cookie = page.next_cookie();
    }
  }
  return out;
}

Status Volume::Open(Ino ino) {
  CAIRN_ASSIGN_OR_RETURN(auto n, impl_->Get(ino));
  CAIRN_RETURN_IF_ERROR(impl_->EnsureVerified(*n));
  std::lock_guard l(n->mu);
  ++n->open_count;
  ++impl_->open_files_;
  return Status::Ok();
}

void Volume::Release(Ino ino) {
  auto got = impl_->Get(ino);
  if (!got.ok()) return;
  auto& n = *got;
  bool forget = false;
  {
    std::lock_guard l(n->mu);
    if (n->open_count > 0) {
      --n->open_count;
      --impl_->open_files_;
    }
    forget = n->open_count == 0 && n->unlinked;
    if (forget) n->unlinked = false;
  }
  if (forget && n->subvol >= 0) {
    for (const auto& r : impl_->subvols_[n->subvol].replicas) {
      impl_->janitor_->Forget(r.global, n->id);
    }
  }
  std::lock_guard tl(impl_->table_mu_);
  std::lock_guard l(n->mu);
  impl_->DropIfUnused(n);
}

Status Volume::Read(Ino ino, uint64_t offset, size_t size, std::string* out) {
  out->clear();
  CAIRN_ASSIGN_OR_RETURN(auto n, impl_->Get(ino));
  if (n->subvol < 0) return Errno(EISDIR, "read of a directory");
  CAIRN_RETURN_IF_ERROR(impl_->EnsureVerified(*n));
  const Subvol& sv = impl_->subvols_[n->subvol];
  while (out->size() < size) {
    const size_t want = std::min(size - out->size(), kMaxIo);
    StatusOr<pb::ReadReply> rep = Status::Internal("unset");
    for (int attempt = 0; attempt < static_cast<int>(sv.replicas.size()); ++attempt) {
      CAIRN_ASSIGN_OR_RETURN(int r, impl_->PickReplica(*n, true));
      const CallTarget& t = sv.targets[r];
      rep = impl_->CallOne<pb::ReadRequest, pb::ReadReply>(
          t,
          [&] {
            pb::ReadRequest q;
            q.set_brick_id(t.brick_id);
            q.set_id(n->id.Raw());
            q.set_offset(offset + out->size());
            q.set_size(static_cast<uint32_t>(want));
            return q;
          },
          CAIRN_ASYNC(Read));
      if (rep.ok() || t.node->connected()) break;  // an answer, or a real error
    }
    if (!rep.ok()) return rep.status();
    // Decided before the data is moved out of the reply.
    const bool last = rep->eof() || rep->data().size() < want;
    if (out->empty()) {
      *out = std::move(*rep->mutable_data());
    } else {
      out->append(rep->data());
    }
    if (last) break;
  }
  return Status::Ok();
}

StatusOr<WriteResult> Volume::Write(Ino ino, uint64_t offset, std::string_view data, bool append) {
  CAIRN_ASSIGN_OR_RETURN(auto n, impl_->Get(ino));
  if (n->subvol < 0) return Errno(EISDIR, "write to a directory");
  std::lock_guard wl(n->write_mu);
  if (append) {
    std::lock_guard l(n->mu);
    offset = n->attr.size;
  }
  const int s = n->subvol;
  const Subvol& sv = impl_->subvols_[s];
  WriteResult result;
  result.offset = offset;
  size_t done = 0;
  do {
    const std::string_view piece = data.substr(done, kMaxIo);
    const pb::Txn txn = impl_->NewTxn();
    const uint64_t at = offset + done;
    CAIRN_ASSIGN_OR_RETURN(
        auto fan,
        (impl_->Mutate<pb::WriteRequest, pb::WriteReply>(
            s, Kind::kData, n.get(),
            [&](size_t i) {
              pb::WriteRequest r;
              r.set_brick_id(sv.targets[i].brick_id);
              r.set_id(n->id.Raw());
              *r.mutable_txn() = txn;
              r.set_offset(at);
              // An arbiter votes without the data.
              if (!sv.replicas[i].arbiter) {
                r.set_data(piece.data(), piece.size());
              }
              return r;
            },
            CAIRN_ASYNC(Write),
            [](const pb::WriteReply& r) -> const pb::Version& { return r.attr().version(); })));
    std::vector<const pb::Version*> v;
    for (auto& res : fan.results) v.push_back(res.ok() ? &res.reply.attr().version() : nullptr);
    impl_->MaybeClear(s, n->id, v);
    const pb::WriteReply& rep = fan.results[fan.chosen].reply;
    done += rep.written();
    std::lock_guard l(n->mu);
    n->attr = impl_->ToAttr(rep.attr(), n->ino);
    result.attr = n->attr;
    if (rep.written() < piece.size()) break;  // short write (should not happen)
  } while (done < data.size());
  result.written = done;
  return result;
}

Status Volume::Fsync(Ino ino, bool datasync) {
  CAIRN_ASSIGN_OR_RETURN(auto n, impl_->Get(ino));
  const Subvol& sv = impl_->subvols_[n->home()];
  auto results = FanOut<pb::FsyncRequest, pb::Empty>(
      sv.targets, impl_->options_.token, impl_->options_.rpc_timeout,
      [&](size_t i) {
        pb::FsyncRequest r;
        r.set_brick_id(sv.targets[i].brick_id);
        r.set_id(n->id.Raw());
        r.set_datasync(datasync);
        return r;
      },
      CAIRN_ASYNC(Fsync));
  int ok = 0;
  const Status* err = nullptr;
  for (size_t r = 0; r < results.size(); ++r) {
    if (results[r].ok()) {
      ++ok;
    } else if (!results[r].transport && err == nullptr) {
      err = &results[r].status;
    }
  }
  if (ok >= sv.quorum) return Status::Ok();
  if (err != nullptr) return *err;
  return Errno(EIO, "fsync reached " + std::to_string(ok) + " bricks, quorum is " +
                        std::to_string(sv.quorum));
}

StatusOr<Attr> Volume::Fallocate(Ino ino, int mode, uint64_t offset, uint64_t length) {
  CAIRN_ASSIGN_OR_RETURN(auto n, impl_->Get(ino));
  if (n->subvol < 0) return Errno(EISDIR, "fallocate on a directory");
  std::lock_guard wl(n->write_mu);
  const pb::Txn txn = impl_->NewTxn();
  // The arbiter votes without allocating: it punches the range instead (it
  // holds no data), which bumps its data version like the others'.
  CAIRN_ASSIGN_OR_RETURN(pb::Attr a,
                         (impl_->MutateObject<pb::FallocateRequest>(
                             *n, Kind::kData,
                             [&](const Subvol& sv, size_t i) {
                               pb::FallocateRequest r;
                               r.set_brick_id(sv.targets[i].brick_id);
                               r.set_id(n->id.Raw());
                               *r.mutable_txn() = txn;
                               r.set_offset(offset);
                               r.set_length(length);
                               r.set_mode(sv.replicas[i].arbiter
                                              ? FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE
                                              : static_cast<uint32_t>(mode));
                               return r;
                             },
                             CAIRN_ASYNC(Fallocate))));
  std::lock_guard l(n->mu);
  n->attr = impl_->ToAttr(a, n->ino);
  return n->attr;
}

namespace {
bool IsSystemXattr(std::string_view name) { return name.rfind(kSystemXattrPrefix, 0) == 0; }
}  // namespace

StatusOr<std::string> Volume::GetXattr(Ino ino, std::string_view name) {
  if (IsSystemXattr(name)) return Errno(EPERM, "xattr namespace trusted.cairn. is reserved");
  CAIRN_ASSIGN_OR_RETURN(auto n, impl_->Get(ino));
  {
    // md-cache: a name not among those the last lookup saw, or one a brick
    // lately said is absent, does not exist (for xattr_cache_timeout).
    std::lock_guard l(n->mu);
    if (n->KnownAbsent(name, impl_->options_.xattr_cache_timeout)) {
      return Errno(ENODATA, "no xattr " + std::string(name));
    }
  }
  CAIRN_RETURN_IF_ERROR(impl_->EnsureVerified(*n));
  CAIRN_ASSIGN_OR_RETURN(int r, impl_->PickReplica(*n, false));
  const CallTarget& t = impl_->subvols_[n->home()].targets[r];
  auto rep = impl_->CallOne<pb::GetXattrRequest, pb::GetXattrReply>(
      t,
      [&] {
        pb::GetXattrRequest q;
        q.set_brick_id(t.brick_id);
        q.set_id(n->id.Raw());
        q.set_name(std::string(name));
        return q;
      },
      CAIRN_ASYNC(GetXattr));
  if (!rep.ok()) {
    if (ErrnoOf(rep.status()) == ENODATA) {
      std::lock_guard l(n->mu);
      n->LearnAbsent(name);
    }
    return rep.status();
  }
  return std::move(*rep->mutable_value());
}

Status Volume::SetXattr(Ino ino, std::string_view name, std::string_view value, int flags) {
  if (IsSystemXattr(name)) return Errno(EPERM, "xattr namespace trusted.cairn. is reserved");
  CAIRN_ASSIGN_OR_RETURN(auto n, impl_->Get(ino));
  const pb::Txn txn = impl_->NewTxn();
  CAIRN_RETURN_IF_ERROR(impl_
                            ->MutateObject<pb::SetXattrRequest>(
                                *n, Kind::kMeta,
                                [&](const Subvol& sv, size_t i) {
                                  pb::SetXattrRequest r;
                                  r.set_brick_id(sv.targets[i].brick_id);
                                  r.set_id(n->id.Raw());
                                  *r.mutable_txn() = txn;
                                  r.set_name(std::string(name));
                                  r.set_value(std::string(value));
                                  r.set_flags(static_cast<uint32_t>(flags));
                                  return r;
                                },
                                CAIRN_ASYNC(SetXattr))
                            .status());
  std::lock_guard l(n->mu);
  n->LearnPresent(name);
  if (n->xattrs_known &&
      std::find(n->xattr_names.begin(), n->xattr_names.end(), name) == n->xattr_names.end()) {
    n->xattr_names.emplace_back(name);
  }
  return Status::Ok();
}

StatusOr<std::vector<std::string>> Volume::ListXattr(Ino ino) {
  CAIRN_ASSIGN_OR_RETURN(auto n, impl_->Get(ino));
  CAIRN_RETURN_IF_ERROR(impl_->EnsureVerified(*n));
  CAIRN_ASSIGN_OR_RETURN(int r, impl_->PickReplica(*n, false));
  const CallTarget& t = impl_->subvols_[n->home()].targets[r];
  CAIRN_ASSIGN_OR_RETURN(auto rep, (impl_->CallOne<pb::ListXattrRequest, pb::ListXattrReply>(
                                       t,
                                       [&] {
                                         pb::ListXattrRequest q;
                                         q.set_brick_id(t.brick_id);
                                         q.set_id(n->id.Raw());
                                         return q;
                                       },
                                       CAIRN_ASYNC(ListXattr))));
  std::vector<std::string> out;
  for (const auto& name : rep.names()) {
    if (!IsSystemXattr(name)) out.push_back(name);
  }
  return out;
}

Status Volume::RemoveXattr(Ino ino, std::string_view name) {
  if (IsSystemXattr(name)) return Errno(EPERM, "xattr namespace trusted.cairn. is reserved");
  CAIRN_ASSIGN_OR_RETURN(auto n, impl_->Get(ino));
  const pb::Txn txn = impl_->NewTxn();
  CAIRN_RETURN_IF_ERROR(impl_
                            ->MutateObject<pb::RemoveXattrRequest>(
                                *n, Kind::kMeta,
                                [&](const Subvol& sv, size_t i) {
                                  pb::RemoveXattrRequest r;
                                  r.set_brick_id(sv.targets[i].brick_id);
                                  r.set_id(n->id.Raw());
                                  *r.mutable_txn() = txn;
                                  r.set_name(std::string(name));
                                  return r;
                                },
                                CAIRN_ASYNC(RemoveXattr))
                            .status());
  std::lock_guard l(n->mu);
  std::erase(n->xattr_names, std::string(name));
  return Status::Ok();
}

StatusOr<VolumeStat> Volume::StatFs() {
  VolumeStat out;
  bool first = true;
  for (int s = 0; s < impl_->nsub(); ++s) {
    const Subvol& sv = impl_->subvols_[s];
    std::vector<CallTarget> data;
    for (size_t r = 0; r < sv.replicas.size(); ++r) {
      if (!sv.replicas[r].arbiter) data.push_back(sv.targets[r]);
    }
    auto results = FanOut<pb::StatFsRequest, pb::StatFsReply>(
        data, impl_->options_.token, impl_->options_.rpc_timeout,
        [&](size_t i) {
          pb::StatFsRequest r;
          r.set_brick_id(data[i].brick_id);
          return r;
        },
        CAIRN_ASYNC(StatFs));
    // A subvolume is as big as its smallest replica and as full as its fullest.
    bool any = false;
    uint64_t cap = UINT64_MAX, used = 0, files = UINT64_MAX, ffree = UINT64_MAX, free = UINT64_MAX;
    for (auto& res : results) {
      if (!res.ok()) continue;
      any = true;
      cap = std::min(cap, res.reply.capacity_bytes());
      used = std::max(used, res.reply.used_bytes());
      free = std::min(free, res.reply.free_bytes());
      files = std::min(files, res.reply.files());
      ffree = std::min(ffree, res.reply.files_free());
      if (first) {
        out.block_size = res.reply.block_size() != 0 ? res.reply.block_size() : 4096;
        out.max_name_bytes = res.reply.max_name_bytes() != 0 ? res.reply.max_name_bytes() : 255;
        first = false;
      }
    }
    if (!any) return Errno(EIO, "no brick of subvolume " + std::to_string(s) + " answered");
    out.capacity_bytes += cap;
    out.used_bytes += used;
    out.free_bytes += free;
    out.files += files;
    out.files_free += ffree;
  }
  if (impl_->spec_.size_bytes != 0) {
    out.capacity_bytes = impl_->spec_.size_bytes;
    out.free_bytes =
        std::min(out.free_bytes,
                 out.capacity_bytes > out.used_bytes ? out.capacity_bytes - out.used_bytes : 0);
  }
  return out;
}

StatusOr<Attr> Volume::Resolve(std::string_view path) {
  Ino cur = kRootIno;
  CAIRN_ASSIGN_OR_RETURN(Attr attr, GetAttr(kRootIno));
  size_t pos = 0;
  std::vector<Ino> refs;
  Status status = Status::Ok();
  while (pos < path.size()) {
    size_t end = path.find('/', pos);
    if (end == std::string_view::npos) end = path.size();
    std::string_view part = path.substr(pos, end - pos);
    pos = end + 1;
    if (part.empty() || part == ".") continue;
    auto next = Lookup(cur, part);
    if (!next.ok()) {
      status = next.status();
      break;
    }
    refs.push_back(next->ino);
    attr = *next;
    cur = next->ino;
  }
  // Drop the references from the far end, so parents outlive children.
  for (auto it = refs.rbegin(); it != refs.rend(); ++it) Forget(*it, 1);
  if (!status.ok()) return status;
  return attr;
}

}  // namespace cairn::client
