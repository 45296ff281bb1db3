// Healing one object on one subvolume: versions → sources and sinks, entry,
// data and metadata heal with conditional writes, commit, clear. See
// docs/heal.md ("Healing one object").
#include <linux/falloc.h>
#include <linux/fs.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <algorithm>
#include <future>
#include <mutex>
#include <thread>

#include "heal/healer.h"

namespace cairn::heal {

namespace {

Status Deferred(const std::string& why) { return Status(StatusCode::kAborted, why, EAGAIN); }
bool IsDeferred(const Status& s) { return s.code() == StatusCode::kAborted; }
bool Has(const std::vector<int>& v, int x) { return std::find(v.begin(), v.end(), x) != v.end(); }

pb::DigestAlgorithm ToProto(DigestAlgorithm a) {
  return a == DigestAlgorithm::kXxh3_128 ? pb::DIGEST_XXH3_128 : pb::DIGEST_SHA256_128;
}

std::string TempName(const Uuid& id) { return ".cairn-heal-" + id.ToHex(); }

}  // namespace

// The heal of one object: built per attempt, discarded after.
class ObjectHealer {
 public:
  ObjectHealer(HealerImpl& h, int s, const Uuid& id, int force, int depth,
               const std::vector<int>& fresh)
      : h_(h),
        s_(s),
        id_(id),
        force_(force),
        depth_(depth),
        sub_(h.subs_[s]),
        n_(sub_.replicas.size()),
        touched_(n_, false),
        fresh_(fresh) {}

  StatusOr<Outcome> Run();

 private:
  const Replica& rep(int r) const { return sub_.replicas[r]; }
  const pb::Version& v(int r) const { return st_[r].attr.version(); }
  bool arbiter(int r) const { return rep(r).arbiter; }
  // A source to read from: a data brick if there is one among `from`.
  int Pick(const std::vector<int>& from) const {
    for (int r : from) {
      if (!arbiter(r)) return r;
    }
    return from.empty() ? -1 : from[0];
  }
  std::vector<std::string> Bricks(const std::vector<int>& rs) const {
    std::vector<std::string> out;
    for (int r : rs) out.push_back(rep(r).brick_id);
    return out;
  }

  // Versions unchanged since the start on the given replicas (a comparison of
  // contents made meanwhile is valid).
  StatusOr<bool> Unchanged(const std::vector<int>& rs);
  // Groups `rs` by `key(r)`; the group held by a quorum of the replica count,
  // if any, goes to *winners (otherwise *winners is empty). True if all agree.
  template <class Key>
  bool Agree(const std::vector<int>& rs, const std::map<int, Key>& key, std::vector<int>* winners);

  Status Commit();
  Status ClearAll(const pb::Version& version);

  // ---- Entries.
  StatusOr<Outcome> HealEntries();
  Status EntryHeal(int S, int K, const Listing& ls, Listing lk);
  StatusOr<bool> RemoveOnSink(int S, int K, const Uuid& parent, const std::string& name,
                              const Entry& ke, const pb::Version& expected, bool name_needed);
  Status Purge(int S, int K, const Uuid& dir);
  Status AddOnSink(int S, int K, const std::string& name, const Entry& se,
                   const pb::Version& expected, Listing* lk);
  Status CreateOnSink(int S, int K, const std::string& name, const Entry& se,
                      const pb::Version& expected);
  StatusOr<bool> MoveDir(int K, const Uuid& from, const std::string& from_name, const Uuid& to,
                         const std::string& to_name, const pb::Version* expected_to);
  StatusOr<pb::LocateReply> Locate(int r, const Uuid& dir);

  // ---- Data.
  StatusOr<Outcome> HealData();
  Status DataPass(const std::vector<int>& srcs, const std::vector<int>& sinks, bool* disagree);
  StatusOr<std::vector<pb::ChecksumReply>> Checksums(const std::vector<int>& who, uint64_t off,
                                                     const std::vector<uint64_t>& lengths);
  // Copies the blocks whose digests differ from the source's (sums[0]) to
  // each sink (sums[first_sink + j] for sinks[j]).
  Status CopyBlocks(int S, const std::vector<int>& sinks, uint64_t chunk_off, uint64_t chunk_len,
                    const std::vector<pb::ChecksumReply>& sums, size_t first_sink);
  StatusOr<std::map<int, std::string>> Fingerprints(const std::vector<int>& who);
  Status Truncate(int K, uint64_t size);

  // ---- Metadata.
  StatusOr<Outcome> CompareMeta();
  Status MetaHeal(int K, int M, int T);

  HealerImpl& h_;
  const int s_;
  const Uuid id_;
  const int force_;
  const int depth_;
  const Subvolume& sub_;
  const size_t n_;
  std::vector<ReplicaState> st_;
  pb::Version target_;
  std::vector<int> dsrc_, msrc_, esrc_;  // sources per component
  std::vector<int> dsink_;               // data bricks behind on data
  std::vector<int> asink_;               // the arbiter behind on data
  std::vector<int> msink_, esink_;
  std::vector<bool> touched_;  // replicas changed by this heal: their times are set last
  std::map<int, Meta> metas_;
  std::map<int, Listing> listings_;
  // Objects this heal created, and on which replicas.
  std::map<Uuid, std::vector<int>> created_;
  // The sources were found to agree at their current versions by an earlier
  // heal: no comparison this time.
  bool verified_ = false;
  // Replicas where a parent's entry heal just created this object: their
  // times are the heal's, whatever the versions say.
  const std::vector<int> fresh_;
};

StatusOr<bool> ObjectHealer::Unchanged(const std::vector<int>& rs) {
  CAIRN_ASSIGN_OR_RETURN(auto now, h_.Stat(s_, id_));
  for (int r : rs) {
    if (!now[r].present || !VersionEq(now[r].attr.version(), v(r))) return false;
  }
  return true;
}

template <class Key>
bool ObjectHealer::Agree(const std::vector<int>& rs, const std::map<int, Key>& key,
                         std::vector<int>* winners) {
  std::vector<std::vector<int>> groups;
  for (int r : rs) {
    bool placed = false;
    for (auto& g : groups) {
      if (key.at(g[0]) == key.at(r)) {
        g.push_back(r);
        placed = true;
        break;
      }
    }
    if (!placed) groups.push_back({r});
  }
  winners->clear();
  if (groups.size() <= 1) {
    *winners = rs;
    return true;
  }
  for (auto& g : groups) {
    if (static_cast<int>(g.size()) >= sub_.quorum) *winners = g;
  }
  return false;
}

StatusOr<Outcome> ObjectHealer::Run() {
  CAIRN_ASSIGN_OR_RETURN(st_, h_.Stat(s_, id_));
  size_t reachable = 0, present = 0;
  for (const auto& x : st_) {
    reachable += x.reachable ? 1 : 0;
    present += x.present ? 1 : 0;
  }
  const bool all = reachable == n_;
  if (present == 0) {
    // Gone everywhere (or never fully created): only its marks are left.
    if (!all) return Outcome::kWaiting;
    CAIRN_RETURN_IF_ERROR(ClearAll(pb::Version()));
    return Outcome::kDone;
  }
  pb::FileType type = pb::FILE_TYPE_UNSPECIFIED;
  std::vector<int> have;
  for (size_t r = 0; r < n_; ++r) {
    if (!st_[r].present) continue;
    if (type != pb::FILE_TYPE_UNSPECIFIED && st_[r].attr.type() != type) {
      h_.RecordSplitBrain(s_, id_, "entry", have, "replicas hold different file types", st_);
      return Outcome::kSplitBrain;
    }
    type = st_[r].attr.type();
    have.push_back(static_cast<int>(r));
  }
  if (present < reachable) {
    // Its directory's entry heal creates or removes it. A directory knows its
    // parent: heal that one now.
    if (type == pb::FILE_TYPE_DIRECTORY && depth_ == 0) {
      for (int r : have) {
        auto loc = Locate(r, id_);
        if (!loc.ok() || loc->parent_id().empty()) continue;
        auto parent = Uuid::FromBytes(loc->parent_id());
        if (parent.ok()) (void)h_.HealClaimed(s_, *parent, -1, depth_ + 1);
        break;
      }
    }
    return Outcome::kDeferred;
  }

  // Versions: sources and sinks per component.
  uint64_t data_top = 0;
  for (int r : have) {
    target_ = VersionMax(target_, v(r));
    if (!arbiter(r)) data_top = std::max(data_top, v(r).data());
  }
  if (force_ >= 0) {
    if (!st_[force_].present) {
      return Status(StatusCode::kFailedPrecondition,
                    "brick " + rep(force_).brick_id + " does not hold " + id_.ToString(), ENOENT);
    }
    dsrc_ = msrc_ = esrc_ = {force_};
    target_.set_data(target_.data() + 1);
    target_.set_meta(target_.meta() + 1);
    target_.set_entry(target_.entry() + 1);
  } else {
    // Only the arbiter holds the newest data version: the data brick that has
    // it may be the missing one.
    if (target_.data() > data_top && !all) return Outcome::kWaiting;
    for (int r : have) {
      if (!arbiter(r) && v(r).data() == data_top) dsrc_.push_back(r);
      if (v(r).meta() == target_.meta()) msrc_.push_back(r);
      if (v(r).entry() == target_.entry()) esrc_.push_back(r);
    }
  }
  // The tag the healed replicas take (brick.proto Version.tag): the one most
  // replicas at the target counters have (the chosen source's when forced).
  // Replicas at the target counters with another tag applied other
  // mutations: "behind", so their contents are compared below.
  {
    std::map<uint64_t, int> tags;
    for (int r : have) {
      const pb::Version& x = v(r);
      if (x.data() == target_.data() && x.meta() == target_.meta() &&
          x.entry() == target_.entry()) {
        ++tags[x.tag()];
      }
    }
    uint64_t best = 0;
    int best_n = 0;
    for (const auto& [t, n] : tags) {
      if (n > best_n) best = t, best_n = n;
    }
    target_.set_tag(force_ >= 0 ? v(force_).tag() : best);
  }
  const bool is_dir = type == pb::FILE_TYPE_DIRECTORY;
  const bool is_file = type == pb::FILE_TYPE_REGULAR;
  bool behind = false;
  for (int r : have) {
    if (!arbiter(r) && !Has(dsrc_, r) && is_file) dsink_.push_back(r);
    if (arbiter(r) && is_file && v(r).data() != target_.data()) asink_.push_back(r);
    if (!Has(msrc_, r)) msink_.push_back(r);
    if (is_dir && !Has(esrc_, r)) esink_.push_back(r);
    if (!VersionEq(v(r), target_)) behind = true;
  }
  for (int r : fresh_) {
    if (r >= 0 && r < static_cast<int>(n_) && st_[r].present) touched_[r] = true;
  }
  // Everything reachable agrees (and was compared at these versions); the
  // missing replica keeps it pending.
  verified_ = h_.Verified(s_, id_, st_);
  if (!behind && !all && fresh_.empty() && verified_) return Outcome::kWaiting;

  // Entries, data, then metadata (times last), then the commit.
  if (is_dir) {
    CAIRN_ASSIGN_OR_RETURN(Outcome o, HealEntries());
    if (o != Outcome::kDone) return o;
  }
  if (is_file) {
    CAIRN_ASSIGN_OR_RETURN(Outcome o, HealData());
    if (o != Outcome::kDone) return o;
  }
  CAIRN_ASSIGN_OR_RETURN(Outcome mo, CompareMeta());
  if (mo != Outcome::kDone) return mo;
  const int M = Pick(msrc_);
  int T = M;  // whose times the healed replicas take
  if (is_file && !dsrc_.empty()) T = Pick(dsrc_);
  if (is_dir && !esrc_.empty()) T = Pick(esrc_);
  for (int r : dsink_) touched_[r] = true;
  for (int r : asink_) touched_[r] = true;
  for (int r : msink_) touched_[r] = true;
  for (int r : esink_) touched_[r] = true;
  bool healed = false;
  for (size_t r = 0; r < n_; ++r) {
    if (!touched_[r]) continue;
    CAIRN_RETURN_IF_ERROR(MetaHeal(static_cast<int>(r), M, T));
    healed = true;
  }
  CAIRN_RETURN_IF_ERROR(Commit());
  if (healed || behind) {
    h_.healed_objects_.fetch_add(1);
    spdlog::debug("event=heal_object volume={} id={} target={}", h_.spec_.name, id_.ToString(),
                  VersionText(target_));
  }
  if (!all) {
    // The reachable copies agree at the target: not compared again until
    // their versions move (a replica down for long costs one comparison).
    std::vector<std::optional<pb::Version>> now(n_);
    for (int r : have) now[r] = target_;
    h_.SetVerified(s_, id_, std::move(now));
    return Outcome::kWaiting;
  }
  CAIRN_RETURN_IF_ERROR(ClearAll(target_));
  return Outcome::kDone;
}

Status ObjectHealer::Commit() {
  for (size_t r = 0; r < n_; ++r) {
    if (!st_[r].present || VersionEq(v(r), target_)) continue;
    pb::SetVersionRequest q;
    q.set_id(id_.Raw());
    *q.mutable_expected() = v(r);
    *q.mutable_version() = target_;
    auto rep_or = h_.Call<pb::SetVersionRequest, pb::AttrReply>(rep(r), q, CAIRN_ASYNC(SetVersion));
    if (!rep_or.ok()) return rep_or.status();
  }
  return Status::Ok();
}

Status ObjectHealer::ClearAll(const pb::Version& version) {
  std::vector<client::CallTarget> targets;
  for (const auto& r : sub_.replicas) targets.push_back(r.target);
  auto res = client::FanOut<pb::ClearDirtyRequest, pb::ClearDirtyReply>(
      targets, h_.opt_.token, h_.opt_.rpc_timeout,
      [&](size_t i) {
        pb::ClearDirtyRequest q;
        q.set_brick_id(targets[i].brick_id);
        auto* e = q.add_entries();
        e->set_id(id_.Raw());
        *e->mutable_version() = version;
        return q;
      },
      CAIRN_ASYNC(ClearDirty), /*include_down=*/true);
  for (auto& r : res) {
    if (!r.ok()) return r.status;
  }
  return Status::Ok();
}

// ---- Entries ----------------------------------------------------------------

StatusOr<pb::LocateReply> ObjectHealer::Locate(int r, const Uuid& dir) {
  pb::LocateRequest q;
  q.set_id(dir.Raw());
  return h_.Call<pb::LocateRequest, pb::LocateReply>(rep(r), q, CAIRN_ASYNC(Locate));
}

StatusOr<Outcome> ObjectHealer::HealEntries() {
  const bool compare =
      force_ < 0 && !verified_ && esrc_.size() >= 2 && !h_.VerifiedAmong(s_, id_, st_, esrc_);
  std::vector<int> need = esink_;
  if (compare) {
    need.insert(need.end(), esrc_.begin(), esrc_.end());
  } else {
    need.push_back(Pick(esrc_));
  }
  for (int r : need) {
    if (listings_.count(r)) continue;
    CAIRN_ASSIGN_OR_RETURN(listings_[r], h_.List(rep(r), id_));
  }
  if (compare) {
    std::vector<int> winners;
    std::map<int, std::vector<std::pair<std::string, Uuid>>> keys;
    for (int r : esrc_) {
      auto& k = keys[r];  // an empty directory has a key too
      for (const auto& [name, e] : listings_[r]) k.emplace_back(name, e.id);
    }
    if (!Agree(esrc_, keys, &winners)) {
      CAIRN_ASSIGN_OR_RETURN(bool still, Unchanged(esrc_));
      if (!still) return Outcome::kDeferred;
      if (winners.empty()) {
        h_.RecordSplitBrain(s_, id_, "entry", esrc_,
                            "directory listings differ at entry version " +
                                std::to_string(target_.entry()) + " with no majority",
                            st_);
        return Outcome::kSplitBrain;
      }
      // The majority's listing wins: the others are healed from it.
      for (int r : esrc_) {
        if (!Has(winners, r)) esink_.push_back(r);
      }
      esrc_ = winners;
    }
  }
  const int S = Pick(esrc_);
  bool deferred = false;
  for (int K : esink_) {
    Status st = EntryHeal(S, K, listings_[S], listings_[K]);
    touched_[K] = true;
    if (IsDeferred(st)) {
      deferred = true;
      continue;
    }
    CAIRN_RETURN_IF_ERROR(st);
  }
  // New objects are healed fully (a new directory recursively), several at
  // once. Deeper than 64 levels, their own dirty marks bring them.
  if (depth_ < 64 && !h_.stopping()) {
    std::vector<std::pair<Uuid, std::vector<int>>> todo(created_.begin(), created_.end());
    h_.ParallelFor(todo.size(), [&](size_t i) {
      auto o = h_.HealClaimed(s_, todo[i].first, -1, depth_ + 1, todo[i].second);
      if (!o.ok()) {
        spdlog::debug("event=heal_child_failed volume={} id={} error=\"{}\"", h_.spec_.name,
                      todo[i].first.ToString(), o.status().ToString());
      }
    });
  }
  return deferred ? Outcome::kDeferred : Outcome::kDone;
}

Status ObjectHealer::EntryHeal(int S, int K, const Listing& ls, Listing lk) {
  const pb::Version ek = v(K);
  bool deferred = false;
  // Names the sink has and the source has not (or under another id).
  const Listing before = lk;
  for (const auto& [name, ke] : before) {
    if (!lk.count(name)) continue;  // moved away meanwhile
    auto it = ls.find(name);
    if (it != ls.end() && it->second.id == ke.id) continue;
    auto removed = RemoveOnSink(S, K, id_, name, ke, ek, /*name_needed=*/it != ls.end());
    if (!removed.ok()) {
      // A directory to purge holds one that moved where the source has it
      // now: that place may be one this very heal creates below. Go on.
      if (!IsDeferred(removed.status())) return removed.status();
      deferred = true;
      continue;
    }
    if (!*removed) {
      deferred = true;
      continue;
    }
    lk.erase(name);
  }
  // Directories moved within D changed names: list again.
  if (lk.size() != before.size()) {
    CAIRN_ASSIGN_OR_RETURN(lk, h_.List(rep(K), id_));
  }
  // Names the sink lacks.
  for (const auto& [name, se] : ls) {
    auto it = lk.find(name);
    if (it != lk.end()) {
      if (it->second.id != se.id) deferred = true;  // still taken
      continue;
    }
    Status st = AddOnSink(S, K, name, se, ek, &lk);
    if (IsDeferred(st)) {
      deferred = true;
      continue;
    }
    CAIRN_RETURN_IF_ERROR(st);
  }
  return deferred ? Deferred("entries wait for other directories' heal") : Status::Ok();
}

StatusOr<bool> ObjectHealer::RemoveOnSink(int S, int K, const Uuid& parent, const std::string& name,
                                          const Entry& ke, const pb::Version& expected,
                                          bool name_needed) {
  if (ke.attr.type() == pb::FILE_TYPE_DIRECTORY) {
    // Still somewhere on the source: it was moved while the sink was away.
    auto where = Locate(S, ke.id);
    if (where.ok() && !where->parent_id().empty()) {
      CAIRN_ASSIGN_OR_RETURN(Uuid to, Uuid::FromBytes(where->parent_id()));
      CAIRN_ASSIGN_OR_RETURN(bool moved, MoveDir(K, parent, name, to, where->name(), nullptr));
      if (moved) return true;
      if (name_needed && name != TempName(ke.id)) {
        // Out of the way of the name the source uses, until its place exists.
        return MoveDir(K, parent, name, parent, TempName(ke.id), &expected);
      }
      return false;
    }
    if (!where.ok() && where.status().posix_errno() != ENOENT) return where.status();
    CAIRN_RETURN_IF_ERROR(Purge(S, K, ke.id));
    pb::UnlinkRequest q;
    q.set_parent_id(parent.Raw());
    q.set_name(name);
    *q.mutable_txn() = h_.HealTxn(expected);
    auto r = h_.Call<pb::UnlinkRequest, pb::UnlinkReply>(rep(K), q, CAIRN_ASYNC(Rmdir));
    if (!r.ok() && r.status().posix_errno() != ENOENT) return r.status();
    h_.entries_removed_.fetch_add(1);
    return true;
  }
  // A file the source still has (under another name, maybe in another
  // directory) is parked on the sink — its data kept by id — until the heal
  // of its new directory links it again; never deleted and copied anew.
  bool wanted = false;
  if (!ke.id.IsZero()) {
    pb::GetAttrRequest g;
    g.set_id(ke.id.Raw());
    auto a = h_.Call<pb::GetAttrRequest, pb::AttrReply>(rep(S), g, CAIRN_ASYNC(GetAttr));
    if (a.ok()) {
      wanted = a->attr().nlink() > 0;
    } else if (a.status().posix_errno() != ENOENT) {
      return a.status();
    }
  }
  pb::UnlinkRequest q;
  q.set_parent_id(parent.Raw());
  q.set_name(name);
  q.set_keep_open(wanted);
  *q.mutable_txn() = h_.HealTxn(expected);
  auto r = h_.Call<pb::UnlinkRequest, pb::UnlinkReply>(rep(K), q, CAIRN_ASYNC(Unlink));
  if (!r.ok() && r.status().posix_errno() != ENOENT) return r.status();
  if (r.ok() && wanted && r->nlink() == 0) h_.Park(s_, K, ke.id);
  h_.entries_removed_.fetch_add(1);
  return true;
}

Status ObjectHealer::Purge(int S, int K, const Uuid& dir) {
  pb::GetAttrRequest g;
  g.set_id(dir.Raw());
  CAIRN_ASSIGN_OR_RETURN(
      auto a, (h_.Call<pb::GetAttrRequest, pb::AttrReply>(rep(K), g, CAIRN_ASYNC(GetAttr))));
  CAIRN_ASSIGN_OR_RETURN(Listing lk, h_.List(rep(K), dir));
  for (const auto& [name, e] : lk) {
    if (h_.stopping()) return Deferred("stopping");
    CAIRN_ASSIGN_OR_RETURN(bool removed,
                           RemoveOnSink(S, K, dir, name, e, a.attr().version(), false));
    if (!removed) return Deferred("a directory to remove holds one that moved");
  }
  return Status::Ok();
}

StatusOr<bool> ObjectHealer::MoveDir(int K, const Uuid& from, const std::string& from_name,
                                     const Uuid& to, const std::string& to_name,
                                     const pb::Version* expected_to) {
  auto get = [&](const Uuid& d) -> StatusOr<std::optional<pb::Attr>> {
    pb::GetAttrRequest g;
    g.set_id(d.Raw());
    auto a = h_.Call<pb::GetAttrRequest, pb::AttrReply>(rep(K), g, CAIRN_ASYNC(GetAttr));
    if (a.ok()) return std::optional<pb::Attr>(a->attr());
    if (a.status().posix_errno() == ENOENT) return std::optional<pb::Attr>();
    return a.status();
  };
  // Directories other than the one under heal keep their times.
  std::vector<pb::Attr> keep;
  pb::Version want;
  if (expected_to != nullptr) {
    want = *expected_to;
  }
  if (to != id_ || expected_to == nullptr) {
    CAIRN_ASSIGN_OR_RETURN(auto ta, get(to));
    if (!ta) return false;  // its place is not there yet
    if (expected_to == nullptr) want = ta->version();
    if (to != id_) keep.push_back(*ta);
  }
  if (from != id_ && from != to) {
    CAIRN_ASSIGN_OR_RETURN(auto fa, get(from));
    if (!fa) return false;
    keep.push_back(*fa);
  }
  pb::RenameRequest q;
  q.set_old_parent_id(from.Raw());
  q.set_old_name(from_name);
  q.set_new_parent_id(to.Raw());
  q.set_new_name(to_name);
  q.set_flags(pb::RenameRequest::FLAGS_NOREPLACE);
  *q.mutable_txn() = h_.HealTxn(want);
  auto r = h_.Call<pb::RenameRequest, pb::RenameReply>(rep(K), q, CAIRN_ASYNC(Rename));
  if (!r.ok()) {
    const int e = r.status().posix_errno();
    // Taken, gone, or into its own subtree: not now.
    if (e == EEXIST || e == ENOENT || e == EINVAL || e == ENOTEMPTY || e == ENOTDIR) return false;
    return r.status();
  }
  for (const pb::Attr& a : keep) {
    pb::SetAttrRequest t;
    t.set_id(a.id());
    t.set_valid(pb::SetAttrRequest::VALID_ATIME | pb::SetAttrRequest::VALID_MTIME);
    t.set_atime_ns(a.atime_ns());
    t.set_mtime_ns(a.mtime_ns());
    *t.mutable_txn() = h_.HealTxn(a.version());
    (void)h_.Call<pb::SetAttrRequest, pb::AttrReply>(rep(K), t, CAIRN_ASYNC(SetAttr));
  }
  return true;
}

Status ObjectHealer::AddOnSink(int S, int K, const std::string& name, const Entry& se,
                               const pb::Version& expected, Listing* lk) {
  pb::GetAttrRequest g;
  g.set_id(se.id.Raw());
  auto ka = h_.Call<pb::GetAttrRequest, pb::AttrReply>(rep(K), g, CAIRN_ASYNC(GetAttr));
  if (ka.ok()) {
    // The sink has the object elsewhere: move (directory) or link (file) it.
    if (ka->attr().type() == pb::FILE_TYPE_DIRECTORY) {
      CAIRN_ASSIGN_OR_RETURN(auto where, Locate(K, se.id));
      if (where.parent_id().empty()) return Deferred("the root cannot move");
      CAIRN_ASSIGN_OR_RETURN(Uuid from, Uuid::FromBytes(where.parent_id()));
      CAIRN_ASSIGN_OR_RETURN(bool moved, MoveDir(K, from, where.name(), id_, name, &expected));
      if (!moved) return Deferred("directory " + se.id.ToString() + " cannot move yet");
      if (from == id_) lk->erase(where.name());
    } else {
      pb::LinkRequest q;
      q.set_id(se.id.Raw());
      q.set_new_parent_id(id_.Raw());
      q.set_new_name(name);
      *q.mutable_txn() = h_.HealTxn(expected);
      auto r = h_.Call<pb::LinkRequest, pb::AttrReply>(rep(K), q, CAIRN_ASYNC(Link));
      if (!r.ok()) {
        if (r.status().posix_errno() == EEXIST) return Deferred("name taken");
        return r.status();
      }
    }
    (*lk)[name] = se;
    h_.entries_created_.fetch_add(1);
    return Status::Ok();
  }
  if (ka.status().posix_errno() != ENOENT) return ka.status();
  CAIRN_RETURN_IF_ERROR(CreateOnSink(S, K, name, se, expected));
  (*lk)[name] = se;
  created_[se.id].push_back(K);
  h_.entries_created_.fetch_add(1);
  return Status::Ok();
}

Status ObjectHealer::CreateOnSink(int S, int K, const std::string& name, const Entry& se,
                                  const pb::Version& expected) {
  pb::CreateRequest q;
  q.set_parent_id(id_.Raw());
  q.set_name(name);
  q.set_new_id(se.id.Raw());
  *q.mutable_txn() = h_.HealTxn(expected);
  q.mutable_caller()->set_uid(se.attr.uid());
  q.mutable_caller()->set_gid(se.attr.gid());
  const pb::FileType type = se.attr.type();
  // The client-owned xattrs that must be there before the name appears.
  const char* owned = type == pb::FILE_TYPE_DIRECTORY ? kLayoutXattr
                      : type == pb::FILE_TYPE_REGULAR ? kLinktoXattr
                                                      : nullptr;
  if (owned != nullptr && se.attr.xattr_names_valid() &&
      std::find(se.attr.xattr_names().begin(), se.attr.xattr_names().end(), owned) ==
          se.attr.xattr_names().end()) {
    owned = nullptr;  // the listing says it has none
  }
  if (owned != nullptr) {
    pb::GetXattrRequest x;
    x.set_id(se.id.Raw());
    x.set_name(owned);
    auto val = h_.Call<pb::GetXattrRequest, pb::GetXattrReply>(rep(S), x, CAIRN_ASYNC(GetXattr));
    if (val.ok()) {
      auto* xa = q.add_xattrs();
      xa->set_name(owned);
      xa->set_value(val->value());
    } else if (val.status().posix_errno() != ENODATA) {
      return val.status();
    }
  }
  StatusOr<pb::AttrReply> r = Status::Internal("unset");
  switch (type) {
    case pb::FILE_TYPE_REGULAR:
      q.set_mode(se.attr.mode() & 07777);
      r = h_.Call<pb::CreateRequest, pb::AttrReply>(rep(K), q, CAIRN_ASYNC(Create));
      break;
    case pb::FILE_TYPE_DIRECTORY:
      q.set_mode(se.attr.mode() & 07777);
      r = h_.Call<pb::CreateRequest, pb::AttrReply>(rep(K), q, CAIRN_ASYNC(Mkdir));
      break;
    case pb::FILE_TYPE_SYMLINK: {
      pb::ReadlinkRequest l;
      l.set_id(se.id.Raw());
      CAIRN_ASSIGN_OR_RETURN(auto target, (h_.Call<pb::ReadlinkRequest, pb::ReadlinkReply>(
                                              rep(S), l, CAIRN_ASYNC(Readlink))));
      q.set_symlink_target(target.target());
      q.set_mode(0777);
      r = h_.Call<pb::CreateRequest, pb::AttrReply>(rep(K), q, CAIRN_ASYNC(Symlink));
      break;
    }
    case pb::FILE_TYPE_FIFO:
    case pb::FILE_TYPE_SOCKET:
    case pb::FILE_TYPE_CHAR_DEVICE:
    case pb::FILE_TYPE_BLOCK_DEVICE:
      q.set_mode(se.attr.mode());
      q.set_rdev(se.attr.rdev());
      r = h_.Call<pb::CreateRequest, pb::AttrReply>(rep(K), q, CAIRN_ASYNC(Mknod));
      break;
    default:
      return Status(StatusCode::kInternal, "'" + name + "' has an unknown file type", EIO);
  }
  if (!r.ok()) {
    if (r.status().posix_errno() == EEXIST) return Deferred("'" + name + "' exists");
    return r.status();
  }
  return Status::Ok();
}

// ---- Data -------------------------------------------------------------------

StatusOr<Outcome> ObjectHealer::HealData() {
  const bool compare =
      force_ < 0 && !verified_ && dsrc_.size() >= 2 && !h_.VerifiedAmong(s_, id_, st_, dsrc_);
  if (dsrc_.empty()) return Outcome::kDone;  // no data brick has it (arbiter only)
  const int S = Pick(dsrc_);
  std::vector<int> srcs = compare ? dsrc_ : std::vector<int>{S};
  // The arbiter holds no data: only the source's size (sparse).
  for (int K : asink_) {
    if (st_[K].attr.size() != st_[S].attr.size()) {
      CAIRN_RETURN_IF_ERROR(Truncate(K, st_[S].attr.size()));
    }
  }
  if (dsink_.empty() && !compare) return Outcome::kDone;
  bool disagree = false;
  CAIRN_RETURN_IF_ERROR(DataPass(srcs, dsink_, &disagree));
  if (!disagree) return Outcome::kDone;
  // Equal data versions, different contents: does a majority agree?
  CAIRN_ASSIGN_OR_RETURN(auto prints, Fingerprints(dsrc_));
  std::vector<int> winners;
  (void)Agree(dsrc_, prints, &winners);
  CAIRN_ASSIGN_OR_RETURN(bool still, Unchanged(dsrc_));
  if (!still) return Outcome::kDeferred;
  if (winners.empty()) {
    std::string sizes;
    for (int r : dsrc_) {
      sizes +=
          (sizes.empty() ? "" : ", ") + rep(r).brick_id + ":" + std::to_string(st_[r].attr.size());
    }
    h_.RecordSplitBrain(s_, id_, "data", dsrc_,
                        "copies at data version " + std::to_string(v(dsrc_[0]).data()) +
                            " differ with no majority (sizes " + sizes + ")",
                        st_);
    return Outcome::kSplitBrain;
  }
  for (int r : dsrc_) {
    if (!Has(winners, r)) dsink_.push_back(r);
  }
  dsrc_ = winners;
  disagree = false;
  CAIRN_RETURN_IF_ERROR(DataPass({Pick(dsrc_)}, dsink_, &disagree));
  return Outcome::kDone;
}

Status ObjectHealer::Truncate(int K, uint64_t size) {
  pb::SetAttrRequest q;
  q.set_id(id_.Raw());
  q.set_valid(pb::SetAttrRequest::VALID_SIZE);
  q.set_size(size);
  *q.mutable_txn() = h_.HealTxn(v(K));
  touched_[K] = true;
  CAIRN_RETURN_IF_ERROR(
      (h_.Call<pb::SetAttrRequest, pb::AttrReply>(rep(K), q, CAIRN_ASYNC(SetAttr))).status());
  st_[K].attr.set_size(size);  // (its version stays: heal writes bump none)
  return Status::Ok();
}

StatusOr<std::vector<pb::ChecksumReply>> ObjectHealer::Checksums(
    const std::vector<int>& who, uint64_t off, const std::vector<uint64_t>& lengths) {
  std::vector<client::CallTarget> targets;
  for (int r : who) targets.push_back(rep(r).target);
  for (;;) {
    const DigestAlgorithm algo = h_.digest_.load();
    auto res = client::FanOut<pb::ChecksumRequest, pb::ChecksumReply>(
        targets, h_.opt_.token, h_.opt_.rpc_timeout,
        [&](size_t i) {
          pb::ChecksumRequest q;
          q.set_brick_id(targets[i].brick_id);
          q.set_id(id_.Raw());
          q.set_offset(off);
          q.set_length(lengths[i]);
          q.set_block_size(h_.opt_.block_size);
          q.set_algorithm(ToProto(algo));
          return q;
        },
        CAIRN_ASYNC(Checksum), /*include_down=*/true);
    std::vector<pb::ChecksumReply> out;
    bool other = false;
    for (auto& r : res) {
      if (!r.ok()) {
        if (r.transport) return Status(StatusCode::kUnavailable, r.status.message(), ENOTCONN);
        return r.status;
      }
      other = other || r.reply.algorithm() != ToProto(algo);
      out.push_back(std::move(r.reply));
    }
    if (!other) return out;
    if (algo == DigestAlgorithm::kSha256_128) {
      return Status(StatusCode::kInternal, "a brick answered a checksum with another algorithm",
                    EIO);
    }
    // A brick that predates `algo` (it answered SHA-256): SHA-256 everywhere.
    spdlog::warn("event=heal_digest_fallback volume={} from={} to=sha256-128", h_.spec_.name,
                 DigestAlgorithmName(algo));
    h_.digest_ = DigestAlgorithm::kSha256_128;
  }
}

Status ObjectHealer::DataPass(const std::vector<int>& srcs, const std::vector<int>& sinks,
                              bool* disagree) {
  const int S = srcs[0];
  const uint64_t size = st_[S].attr.size();
  const auto t0 = std::chrono::steady_clock::now();
  for (int r : srcs) {
    if (st_[r].attr.size() != size) {
      *disagree = true;
      return Status::Ok();
    }
  }
  // Sinks take the source's size first (extended sparse, or cut).
  for (int K : sinks) {
    if (st_[K].attr.size() != size) CAIRN_RETURN_IF_ERROR(Truncate(K, size));
  }
  std::vector<int> who = srcs;
  who.insert(who.end(), sinks.begin(), sinks.end());
  using Sums = StatusOr<std::vector<pb::ChecksumReply>>;
  auto fetch = [this, &who, size](uint64_t off) {
    return std::async(std::launch::async, [this, who, size, off]() -> Sums {
      return Checksums(who, off,
                       std::vector<uint64_t>(who.size(), std::min(kChunkBytes, size - off)));
    });
  };
  std::future<Sums> next;
  if (size > 0) next = fetch(0);
  for (uint64_t off = 0; off < size; off += kChunkBytes) {
    Sums sums = next.get();
    if (off + kChunkBytes < size) next = fetch(off + kChunkBytes);
    if (h_.stopping()) return Deferred("stopping");
    if (!sums.ok()) return sums.status();
    const uint64_t len = std::min(kChunkBytes, size - off);
    for (size_t i = 0; i < who.size(); ++i) {
      const int r = who[i];
      if (!VersionEq((*sums)[i].version(), v(r)) || (*sums)[i].size() != size) {
        if (Has(srcs, r)) return Deferred("the source changed during the heal");
        return Status(StatusCode::kFailedPrecondition,
                      "brick " + rep(r).brick_id + " changed during the heal", ESTALE);
      }
      if ((*sums)[i].digests_size() != (*sums)[0].digests_size()) {
        return Status(StatusCode::kInternal, "checksum replies of different lengths", EIO);
      }
    }
    h_.checksummed_bytes_.fetch_add(len);
    h_.MaybeLogProgress();
    for (size_t i = 1; i < srcs.size(); ++i) {
      for (int b = 0; b < (*sums)[0].digests_size(); ++b) {
        if ((*sums)[i].digests(b) != (*sums)[0].digests(b)) {
          *disagree = true;
          return Status::Ok();
        }
      }
    }
    CAIRN_RETURN_IF_ERROR(CopyBlocks(S, sinks, off, len, *sums, srcs.size()));
  }
  if (size >= kChunkBytes) {
    spdlog::info(
        "event=heal_data volume={} id={} size={} sources={} sinks={} digest={} seconds={:.3f}",
        h_.spec_.name, id_.ToString(), size, srcs.size(), sinks.size(),
        DigestAlgorithmName(h_.digest_.load()),
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return Status::Ok();
}

Status ObjectHealer::CopyBlocks(int S, const std::vector<int>& sinks, uint64_t chunk_off,
                                uint64_t chunk_len, const std::vector<pb::ChecksumReply>& sums,
                                size_t first_sink) {
  // The runs of differing blocks (at most 4 MiB each) of every sink.
  struct Run {
    int K;
    uint64_t off, len;
    bool zero;  // zeros on the source: punched on the sink (sparse stays sparse)
  };
  std::vector<Run> runs;
  const uint64_t bs = h_.opt_.block_size;
  const pb::ChecksumReply& src = sums[0];
  const int nb = src.digests_size();
  const DigestAlgorithm algo = src.algorithm() == pb::DIGEST_XXH3_128
                                   ? DigestAlgorithm::kXxh3_128
                                   : DigestAlgorithm::kSha256_128;
  const std::string zero_block = ZeroBlockDigest(algo, bs);
  auto zero = [&](int b) {
    const uint64_t len = std::min<uint64_t>(bs, chunk_len - b * bs);
    if (len == bs) return src.digests(b) == zero_block;
    return src.digests(b) == ZeroBlockDigest(algo, len);
  };
  const int max_run = static_cast<int>(kMaxIo / bs);
  for (size_t j = 0; j < sinks.size(); ++j) {
    const pb::ChecksumReply& sink = sums[first_sink + j];
    int b = 0;
    while (b < nb) {
      if (src.digests(b) == sink.digests(b)) {
        ++b;
        continue;
      }
      const bool z = zero(b);
      int e = b + 1;
      while (e < nb && e - b < max_run && src.digests(e) != sink.digests(e) && zero(e) == z) ++e;
      const uint64_t off = chunk_off + b * bs;
      runs.push_back({sinks[j], off, std::min<uint64_t>(e * bs, chunk_len) - b * bs, z});
      touched_[sinks[j]] = true;
      b = e;
    }
  }
  auto copy = [&](const Run& run) -> Status {
    if (run.zero) {
      pb::FallocateRequest q;
      q.set_id(id_.Raw());
      q.set_mode(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE);
      q.set_offset(run.off);
      q.set_length(run.len);
      *q.mutable_txn() = h_.HealTxn(v(run.K));
      return h_.Call<pb::FallocateRequest, pb::AttrReply>(rep(run.K), q, CAIRN_ASYNC(Fallocate))
          .status();
    }
    if (!h_.opt_.admin_token.empty() && h_.peer_copy_.load()) {
      // Brick to brick: the sink's brickd reads the run from the source's.
      pb::CopyFromRequest q;
      q.set_id(id_.Raw());
      q.set_offset(run.off);
      q.set_length(static_cast<uint32_t>(run.len));
      q.set_source_node(rep(S).node->address());
      q.set_source_brick_id(rep(S).brick_id);
      *q.mutable_txn() = h_.HealTxn(v(run.K));
      auto r = h_.CallWith<pb::CopyFromRequest, pb::WriteReply>(h_.opt_.admin_token, rep(run.K), q,
                                                                CAIRN_ASYNC(CopyFrom));
      if (r.ok()) {
        h_.healed_bytes_.fetch_add(run.len);
        h_.peer_copied_bytes_.fetch_add(run.len);
        return Status::Ok();
      }
      const StatusCode c = r.status().code();
      if (c != StatusCode::kUnimplemented && c != StatusCode::kUnauthenticated &&
          c != StatusCode::kPermissionDenied) {
        return r.status();
      }
      // A brickd older than the call, or one that does not take this node's
      // admin token: copies go through the healer from now on.
      if (h_.peer_copy_.exchange(false)) {
        spdlog::warn(
            "event=heal_copy_fallback volume={} brick={} node={} reason=\"{}\" (copies go "
            "through the healer)",
            h_.spec_.name, rep(run.K).brick_id, rep(run.K).node->address(), r.status().message());
      }
    }
    pb::ReadRequest rq;
    rq.set_id(id_.Raw());
    rq.set_offset(run.off);
    rq.set_size(static_cast<uint32_t>(run.len));
    CAIRN_ASSIGN_OR_RETURN(
        auto data, (h_.Call<pb::ReadRequest, pb::ReadReply>(rep(S), rq, CAIRN_ASYNC(Read))));
    // The source shrank meanwhile (its version moved; the commit stays behind it).
    if (data.data().size() < run.len) data.mutable_data()->resize(run.len, '\0');
    pb::WriteRequest wq;
    wq.set_id(id_.Raw());
    wq.set_offset(run.off);
    wq.set_data(std::move(*data.mutable_data()));
    *wq.mutable_txn() = h_.HealTxn(v(run.K));
    CAIRN_RETURN_IF_ERROR(
        (h_.Call<pb::WriteRequest, pb::WriteReply>(rep(run.K), wq, CAIRN_ASYNC(Write))).status());
    h_.healed_bytes_.fetch_add(run.len);
    return Status::Ok();
  };
  // A few runs in flight at once: one 4 MiB read-then-write is latency-bound.
  std::atomic<size_t> next{0};
  std::mutex mu;
  Status first;
  auto worker = [&] {
    for (;;) {
      const size_t i = next.fetch_add(1);
      if (i >= runs.size()) return;
      {
        std::lock_guard l(mu);
        if (!first.ok()) return;
      }
      Status st = copy(runs[i]);
      if (!st.ok()) {
        std::lock_guard l(mu);
        if (first.ok()) first = st;
      }
    }
  };
  std::vector<std::thread> extra;
  for (size_t t = 1; t < std::min(runs.size(), kCopyStreams); ++t) extra.emplace_back(worker);
  worker();
  for (auto& t : extra) t.join();
  return first;
}

StatusOr<std::map<int, std::string>> ObjectHealer::Fingerprints(const std::vector<int>& who) {
  uint64_t max = 0;
  for (int r : who) max = std::max<uint64_t>(max, st_[r].attr.size());
  std::map<int, std::string> acc;
  for (int r : who) acc[r] = std::to_string(st_[r].attr.size()) + ":";
  for (uint64_t off = 0; off < max; off += kChunkBytes) {
    std::vector<uint64_t> lengths;
    for (int r : who) {
      const uint64_t sz = st_[r].attr.size();
      lengths.push_back(sz > off ? std::min(kChunkBytes, sz - off) : 0);
    }
    CAIRN_ASSIGN_OR_RETURN(auto sums, Checksums(who, off, lengths));
    for (size_t i = 0; i < who.size(); ++i) {
      // Digests of digests keep the fingerprint short.
      std::string all;
      for (const auto& d : sums[i].digests()) all += d;
      acc[who[i]] += BlockDigest(DigestAlgorithm::kSha256_128, all.data(), all.size());
    }
  }
  return acc;
}

// ---- Metadata ---------------------------------------------------------------

StatusOr<Outcome> ObjectHealer::CompareMeta() {
  const bool compare =
      force_ < 0 && !verified_ && msrc_.size() >= 2 && !h_.VerifiedAmong(s_, id_, st_, msrc_);
  if (!compare) return Outcome::kDone;
  // Every source's xattr names at once, then the values of those listed.
  std::vector<client::CallTarget> targets;
  for (int r : msrc_) targets.push_back(rep(r).target);
  auto lists = client::FanOut<pb::ListXattrRequest, pb::ListXattrReply>(
      targets, h_.opt_.token, h_.opt_.rpc_timeout,
      [&](size_t i) {
        pb::ListXattrRequest q;
        q.set_brick_id(targets[i].brick_id);
        q.set_id(id_.Raw());
        return q;
      },
      CAIRN_ASYNC(ListXattr), /*include_down=*/true);
  for (size_t i = 0; i < msrc_.size(); ++i) {
    const int r = msrc_[i];
    if (!lists[i].ok()) return lists[i].status;
    Meta& m = metas_[r];
    m.mode = st_[r].attr.mode();
    m.uid = st_[r].attr.uid();
    m.gid = st_[r].attr.gid();
    for (const auto& name : lists[i].reply.names()) {
      pb::GetXattrRequest q;
      q.set_id(id_.Raw());
      q.set_name(name);
      auto val = h_.Call<pb::GetXattrRequest, pb::GetXattrReply>(rep(r), q, CAIRN_ASYNC(GetXattr));
      if (val.ok()) {
        m.xattrs[name] = std::move(*val->mutable_value());
      } else if (val.status().posix_errno() != ENODATA) {
        return val.status();
      }
    }
  }
  std::vector<int> winners;
  if (Agree(msrc_, metas_, &winners)) return Outcome::kDone;
  CAIRN_ASSIGN_OR_RETURN(bool still, Unchanged(msrc_));
  if (!still) return Outcome::kDeferred;
  if (winners.empty()) {
    h_.RecordSplitBrain(s_, id_, "metadata", msrc_,
                        "mode, owner or xattrs differ at metadata version " +
                            std::to_string(target_.meta()) + " with no majority",
                        st_);
    return Outcome::kSplitBrain;
  }
  for (int r : msrc_) {
    if (!Has(winners, r)) msink_.push_back(r);
  }
  msrc_ = winners;
  return Outcome::kDone;
}

Status ObjectHealer::MetaHeal(int K, int M, int T) {
  if (!metas_.count(M)) {
    CAIRN_ASSIGN_OR_RETURN(metas_[M], h_.GetMeta(rep(M), id_, st_[M].attr));
  }
  CAIRN_ASSIGN_OR_RETURN(Meta mk, h_.GetMeta(rep(K), id_, st_[K].attr));
  const Meta& mm = metas_[M];
  for (const auto& [name, value] : mm.xattrs) {
    auto it = mk.xattrs.find(name);
    if (it != mk.xattrs.end() && it->second == value) continue;
    pb::SetXattrRequest q;
    q.set_id(id_.Raw());
    q.set_name(name);
    q.set_value(value);
    *q.mutable_txn() = h_.HealTxn(v(K));
    CAIRN_RETURN_IF_ERROR(
        (h_.Call<pb::SetXattrRequest, pb::AttrReply>(rep(K), q, CAIRN_ASYNC(SetXattr))).status());
  }
  for (const auto& [name, value] : mk.xattrs) {
    if (mm.xattrs.count(name)) continue;
    pb::RemoveXattrRequest q;
    q.set_id(id_.Raw());
    q.set_name(name);
    *q.mutable_txn() = h_.HealTxn(v(K));
    auto r = h_.Call<pb::RemoveXattrRequest, pb::AttrReply>(rep(K), q, CAIRN_ASYNC(RemoveXattr));
    if (!r.ok() && r.status().posix_errno() != ENODATA) return r.status();
  }
  // Owner, mode (after chown, which may clear set-id bits) and times, last
  // (T's own times are the reference).
  pb::SetAttrRequest q;
  q.set_id(id_.Raw());
  uint32_t valid = K == T ? 0 : pb::SetAttrRequest::VALID_ATIME | pb::SetAttrRequest::VALID_MTIME;
  if (mk.uid != mm.uid || mk.gid != mm.gid) {
    valid |= pb::SetAttrRequest::VALID_UID | pb::SetAttrRequest::VALID_GID;
  }
  if (st_[K].attr.type() != pb::FILE_TYPE_SYMLINK) valid |= pb::SetAttrRequest::VALID_MODE;
  if (valid == 0) return Status::Ok();
  q.set_valid(valid);
  q.set_uid(mm.uid);
  q.set_gid(mm.gid);
  q.set_mode(mm.mode & 07777);
  q.set_atime_ns(st_[T].attr.atime_ns());
  q.set_mtime_ns(st_[T].attr.mtime_ns());
  *q.mutable_txn() = h_.HealTxn(v(K));
  return h_.Call<pb::SetAttrRequest, pb::AttrReply>(rep(K), q, CAIRN_ASYNC(SetAttr)).status();
}

// ---------------------------------------------------------------------------

StatusOr<Outcome> HealerImpl::HealObject(int s, const Uuid& id, int force, int depth,
                                         const std::vector<int>& fresh) {
  return ObjectHealer(*this, s, id, force, depth, fresh).Run();
}

StatusOr<Outcome> HealerImpl::HealClaimed(int s, const Uuid& id, int force, int depth,
                                          const std::vector<int>& fresh) {
  {
    std::lock_guard l(mu_);
    if (!in_progress_.insert({s, id}).second) return Outcome::kDeferred;
  }
  auto r = HealObject(s, id, force, depth, fresh);
  std::lock_guard l(mu_);
  in_progress_.erase({s, id});
  return r;
}

}  // namespace cairn::heal
