// Self-heal against three real brickd on 127.0.0.2-4: a node is killed,
// libcairn mutates the volume with quorum 2 of 3, the node comes back, a
// VolumeHealer heals it, and the three brick directories are compared ON DISK
// (names, types, sizes, contents, mode/owner/mtime, xattrs, ids, versions,
// hard links). Also: granular data heal figures, sparse files, a client
// writing during the heal, marks of a dead client, split-brain and Resolve,
// the arbiter, the full crawl. See docs/heal.md.
#include "heal/heal.h"

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/fs.h>
#include <openssl/evp.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>

#include "client/volume.h"
#include "tests/brick_snapshot.h"
#include "tests/cluster_util.h"

namespace cairn::test {
namespace {

using client::Ino;
using client::kRootIno;
using client::Volume;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

Status StatusOf(const Status& s) { return s; }
template <class T>
Status StatusOf(const StatusOr<T>& s) {
  return s.status();
}
#define ASSERT_OK(expr)                                               \
  do {                                                                \
    auto&& _s = (expr);                                               \
    ASSERT_TRUE(_s.ok()) << #expr << ": " << StatusOf(_s).ToString(); \
  } while (0)

constexpr uint64_t kMiB = 1ull << 20;
constexpr uint64_t kGiB = 1ull << 30;

std::string Pattern(size_t n, uint32_t seed) {
  std::string s(n, '\0');
  std::mt19937_64 rng(seed);
  for (size_t i = 0; i + 8 <= n; i += 8) {
    uint64_t v = rng();
    std::memcpy(s.data() + i, &v, 8);
  }
  return s;
}

// ---- The fixture --------------------------------------------------------------

class HealTest : public ::testing::Test {
 protected:
  void Start(ClusterOptions o = {}) {
    o.name = "healvol";
    auto c = TestCluster::Start(o);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    cluster_ = std::move(*c);
    auto v = cluster_->OpenVolume();
    ASSERT_TRUE(v.ok()) << v.status().ToString();
    vol_ = std::move(*v);
  }
  void TearDown() override {
    healers_.clear();
    vol_.reset();
    cluster_.reset();
  }

  heal::Options HealOptions(int node) {
    heal::Options o;
    o.token = cluster_->token();
    o.local_node = cluster_->node(node).address();
    o.interval = 100ms;
    o.full_crawl_interval = 0s;
    o.rpc_timeout = 10000ms;
    return o;
  }
  heal::VolumeHealer* StartHealer(int node = 0) {
    auto h = heal::VolumeHealer::Start(cluster_->spec(), HealOptions(node));
    EXPECT_TRUE(h.ok()) << h.status().ToString();
    if (!h.ok()) return nullptr;
    healers_.push_back(std::move(*h));
    return healers_.back().get();
  }
  // One healer per node, as storaged runs them.
  void StartAllHealers() {
    for (int i = 0; i < cluster_->nodes(); ++i) StartHealer(i);
  }

  static uint64_t Pending(const heal::Info& info) {
    uint64_t n = 0;
    for (const auto& b : info.bricks) n += b.pending;
    return n;
  }
  static std::string Show(const heal::Info& info) {
    std::ostringstream o;
    for (const auto& b : info.bricks) {
      o << b.brick_id << (b.connected ? "" : "(down)") << " pending=" << b.pending;
      for (const auto& id : b.sample_ids) o << " " << id;
      o << "; ";
    }
    o << "healed=" << info.stats.healed_objects << " bytes=" << info.stats.healed_bytes
      << " errors=" << info.stats.errors << " split=" << info.split_brain.size();
    return o.str();
  }
  // Waits until every brick answers with an empty dirty index.
  ::testing::AssertionResult WaitHealed(heal::VolumeHealer* h, std::chrono::seconds limit = 180s) {
    const auto end = std::chrono::steady_clock::now() + limit;
    heal::Info info;
    while (std::chrono::steady_clock::now() < end) {
      info = h->GetInfo();
      bool up = std::all_of(info.bricks.begin(), info.bricks.end(),
                            [](const auto& b) { return b.connected; });
      if (up && Pending(info) == 0) return ::testing::AssertionSuccess();
      std::this_thread::sleep_for(200ms);
    }
    return ::testing::AssertionFailure()
           << "not healed in " << limit.count() << " s: " << Show(info);
  }

  std::string BrickDiff(int s, int a, int b, bool data = true) {
    return DiffBrickSnapshots(TakeBrickSnapshot(cluster_->brick_path(s, a)),
                              TakeBrickSnapshot(cluster_->brick_path(s, b)), data);
  }
  // All replicas of every subvolume equal (the arbiter without data).
  void ExpectBricksEqual() {
    const auto& spec = cluster_->spec();
    for (size_t s = 0; s < spec.subvolumes.size(); ++s) {
      for (size_t r = 1; r < spec.subvolumes[s].size(); ++r) {
        const bool data = !spec.subvolumes[s][r].arbiter;
        std::string d = BrickDiff(static_cast<int>(s), 0, static_cast<int>(r), data);
        EXPECT_TRUE(d.empty()) << "subvolume " << s << ": replica 0 vs " << r << ":\n" << d;
      }
    }
  }

  // ---- Volume helpers (lookup references are kept: a test's volume is short-lived).
  Ino Path(const std::string& path) {
    Ino cur = kRootIno;
    std::stringstream ss(path);
    std::string part;
    while (std::getline(ss, part, '/')) {
      if (part.empty()) continue;
      auto a = vol_->Lookup(cur, part);
      EXPECT_TRUE(a.ok()) << path << ": " << a.status().ToString();
      if (!a.ok()) return 0;
      cur = a->ino;
    }
    return cur;
  }
  Ino Mkdir(Ino parent, const std::string& name, uint32_t mode = 0755) {
    auto a = vol_->Mkdir(parent, name, mode, {0, 0});
    EXPECT_TRUE(a.ok()) << name << ": " << a.status().ToString();
    return a.ok() ? a->ino : 0;
  }
  Ino Put(Ino parent, const std::string& name, const std::string& data, uint32_t mode = 0644) {
    auto a = vol_->Create(parent, name, mode, {1000, 1000});
    EXPECT_TRUE(a.ok()) << name << ": " << a.status().ToString();
    if (!a.ok()) return 0;
    if (!data.empty()) {
      auto w = vol_->Write(a->ino, 0, data, false);
      EXPECT_TRUE(w.ok()) << name << ": " << w.status().ToString();
    }
    vol_->Release(a->ino);
    return a->ino;
  }
  Status Truncate(Ino ino, uint64_t size) {
    client::SetAttrArgs a;
    a.valid = client::SetAttrArgs::kSize;
    a.size = size;
    return vol_->SetAttr(ino, a).status();
  }
  Status Kill(int node) { return cluster_->node(node).Kill(SIGKILL).status(); }

  // A direct client of the brickd serving replica r of subvolume 0.
  BrickdClient Brick(int r) {
    return BrickdClient(cluster_->node(cluster_->node_of(0, r)).address());
  }
  std::string BrickId(int r) { return cluster_->spec().subvolumes[0][r].brick_id; }

  std::unique_ptr<TestCluster> cluster_;
  std::unique_ptr<Volume> vol_;
  std::vector<std::unique_ptr<heal::VolumeHealer>> healers_;
};

// ---- Entries --------------------------------------------------------------------

TEST_F(HealTest, EntryHealCreatesRenamesRemovesLinksAndSymlinks) {
  Start();
  Ino keep = Mkdir(kRootIno, "keep");
  Put(keep, "a.txt", "alpha");
  Put(keep, "x", "ex");
  Put(kRootIno, "gone.txt", "bye");
  Ino gonedir = Mkdir(kRootIno, "gonedir");
  Put(gonedir, "f1", "one");
  Ino gsub = Mkdir(gonedir, "sub");
  Put(gsub, "f2", "two");
  Put(kRootIno, "mv.txt", Pattern(2 * kMiB, 1));
  Ino moveme = Mkdir(kRootIno, "moveme");
  Put(moveme, "big", Pattern(4 * kMiB, 2));
  Ino inner = Mkdir(moveme, "inner");
  Put(inner, "small", "s");
  Mkdir(kRootIno, "dst");
  Mkdir(kRootIno, "swap1");
  Mkdir(kRootIno, "swap2");
  Put(Path("swap1"), "one", "1");
  Ino intonew = Mkdir(kRootIno, "intonew");  // moves into a directory made while away
  Put(intonew, "payload", Pattern(kMiB, 5));
  Put(kRootIno, "replacer", Pattern(kMiB, 6));
  Put(kRootIno, "replaced", "old target");
  Ino doomed = Mkdir(kRootIno, "doomed");  // emptied by moving its file out, then removed
  Put(doomed, "survivor", Pattern(kMiB, 7));

  ASSERT_OK(Kill(2));
  // Created while node 2 is away.
  Put(kRootIno, "new.txt", Pattern(300000, 3));
  Ino nd = Mkdir(kRootIno, "newdir", 0750);
  Ino deep = Mkdir(Mkdir(nd, "deep"), "deeper");
  Put(deep, "leaf", Pattern(70000, 4), 0600);
  ASSERT_OK(vol_->Symlink(kRootIno, "ln", "keep/a.txt", {1000, 1000}));
  ASSERT_OK(vol_->Symlink(nd, "abs", "/etc/passwd", {0, 0}));
  ASSERT_OK(vol_->Link(Path("keep/a.txt"), nd, "hard"));
  ASSERT_OK(vol_->Mknod(kRootIno, "fifo", S_IFIFO | 0640, 0, {1000, 1000}));
  // Renamed: a file across directories, one within its directory, a directory
  // with contents to another parent, and two directories exchanged.
  ASSERT_OK(vol_->Rename(kRootIno, "mv.txt", keep, "mv2.txt", 0));
  ASSERT_OK(vol_->Rename(keep, "x", keep, "y", 0));
  ASSERT_OK(vol_->Rename(kRootIno, "moveme", Path("dst"), "moved", 0));
  ASSERT_OK(vol_->Rename(kRootIno, "swap1", kRootIno, "swap2", RENAME_EXCHANGE));
  Ino newparent = Mkdir(kRootIno, "newparent");
  ASSERT_OK(vol_->Rename(kRootIno, "intonew", newparent, "intonew", 0));
  ASSERT_OK(vol_->Rename(kRootIno, "replacer", kRootIno, "replaced", 0));
  ASSERT_OK(vol_->Rename(doomed, "survivor", kRootIno, "survivor", 0));
  ASSERT_OK(vol_->Rmdir(kRootIno, "doomed"));
  // Removed: a file and a whole tree.
  ASSERT_OK(vol_->Unlink(kRootIno, "gone.txt"));
  ASSERT_OK(vol_->Unlink(gsub, "f2"));
  ASSERT_OK(vol_->Rmdir(gonedir, "sub"));
  ASSERT_OK(vol_->Unlink(gonedir, "f1"));
  ASSERT_OK(vol_->Rmdir(kRootIno, "gonedir"));

  ASSERT_OK(cluster_->RestartNode(2));
  StartAllHealers();
  ASSERT_TRUE(WaitHealed(healers_[0].get()));
  ExpectBricksEqual();
  // Renamed files and directories were moved on node 2, not copied again
  // (moved.big, mv2.txt, newparent/intonew/payload, replaced, survivor):
  // only the new files' data travelled.
  uint64_t bytes = 0;
  for (auto& h : healers_) bytes += h->GetInfo().stats.healed_bytes;
  EXPECT_LE(bytes, 300000u + 70000u + 2 * 131072) << "renamed data was copied again";
  EXPECT_GE(bytes, 300000u + 70000u);
  auto info = healers_[0]->GetInfo();
  EXPECT_TRUE(info.split_brain.empty());
  EXPECT_EQ(info.stats.errors, 0u);
  // The volume reads the same, whichever replica it picks.
  auto leaf = vol_->Lookup(deep, "leaf");
  ASSERT_OK(leaf);
  std::string back;
  ASSERT_OK(vol_->Read(leaf->ino, 0, 100000, &back));
  EXPECT_EQ(back, Pattern(70000, 4));
}

// ---- Metadata --------------------------------------------------------------------

TEST_F(HealTest, MetadataHealModeOwnerTimesAndXattrs) {
  Start();
  Ino d = Mkdir(kRootIno, "d");
  Ino f = Put(d, "f", "data");
  Ino g = Put(kRootIno, "g", "gee");
  ASSERT_OK(vol_->SetXattr(f, "user.remove", "me", 0));
  ASSERT_OK(vol_->SetXattr(g, "user.change", "before", 0));
  ASSERT_OK(vol_->Symlink(kRootIno, "ln", "g", {0, 0}));

  ASSERT_OK(Kill(1));
  client::SetAttrArgs a;
  a.valid = client::SetAttrArgs::kMode | client::SetAttrArgs::kUid | client::SetAttrArgs::kGid;
  a.mode = 04750;
  a.uid = 1234;
  a.gid = 5678;
  ASSERT_OK(vol_->SetAttr(f, a));
  a.valid = client::SetAttrArgs::kMode;
  a.mode = 0700;
  ASSERT_OK(vol_->SetAttr(d, a));
  client::SetAttrArgs t;
  t.valid = client::SetAttrArgs::kAtime | client::SetAttrArgs::kMtime;
  t.atime_ns = 1000000000LL * 1600000000 + 123;
  t.mtime_ns = 1000000000LL * 1500000000 + 456789;
  ASSERT_OK(vol_->SetAttr(g, t));
  ASSERT_OK(vol_->SetXattr(f, "user.new", std::string(3000, 'n'), 0));
  ASSERT_OK(vol_->RemoveXattr(f, "user.remove"));
  ASSERT_OK(vol_->SetXattr(g, "user.change", "after", 0));
  ASSERT_OK(vol_->SetXattr(d, "user.dir", "x", 0));
  a.valid = client::SetAttrArgs::kUid;
  a.uid = 42;
  ASSERT_OK(vol_->SetAttr(Path("ln"), a));
  ASSERT_OK(vol_->SetAttr(d, t));  // a directory's times, set last

  ASSERT_OK(cluster_->RestartNode(1));
  StartHealer(0);
  ASSERT_TRUE(WaitHealed(healers_[0].get()));
  ExpectBricksEqual();
  // Explicit times are exact on every replica.
  for (int r = 0; r < 3; ++r) {
    auto snap = TakeBrickSnapshot(cluster_->brick_path(0, r));
    EXPECT_EQ(snap["g"].mtime_ns, t.mtime_ns) << r;
    EXPECT_EQ(snap["d"].mtime_ns, t.mtime_ns) << r;
    EXPECT_EQ(snap["d/f"].mode & 07777, 04750u) << r;
    EXPECT_EQ(snap["d/f"].uid, 1234u) << r;
    EXPECT_EQ(snap["d/f"].xattrs.count("user.remove"), 0u) << r;
    EXPECT_EQ(snap["g"].xattrs["user.change"], "after") << r;
    EXPECT_EQ(snap["ln"].uid, 42u) << r;
  }
  EXPECT_EQ(healers_[0]->GetInfo().stats.healed_bytes, 0u);
}

// ---- Data ----------------------------------------------------------------------

TEST_F(HealTest, GranularDataHealCopiesOnlyChangedBlocks) {
  Start();
  Ino f = Put(kRootIno, "big", "");
  ASSERT_OK(Truncate(f, kGiB));
  const uint64_t mid = 512 * kMiB;
  // Real data around the region that will change (and some at both ends).
  ASSERT_OK(vol_->Write(f, mid - 8 * kMiB, Pattern(16 * kMiB, 5), false));
  ASSERT_OK(vol_->Write(f, 0, Pattern(kMiB, 6), false));
  ASSERT_OK(vol_->Write(f, kGiB - kMiB, Pattern(kMiB, 7), false));

  ASSERT_OK(Kill(2));
  // 1 MiB overwritten in the middle, not aligned to the 128 KiB heal blocks.
  ASSERT_OK(vol_->Write(f, mid + 64 * 1024, Pattern(kMiB, 8), false));
  ASSERT_OK(cluster_->RestartNode(2));
  // Brick to brick: the sink's brickd reads the changed blocks itself.
  heal::Options o = HealOptions(0);
  o.admin_token = cluster_->admin_token();
  auto h = heal::VolumeHealer::Start(cluster_->spec(), o);
  ASSERT_OK(h);
  healers_.push_back(std::move(*h));
  ASSERT_TRUE(WaitHealed(healers_[0].get()));
  auto st = healers_[0]->GetInfo().stats;
  EXPECT_GE(st.healed_bytes, kMiB);
  EXPECT_LE(st.healed_bytes, kMiB + kMiB / 2);
  EXPECT_EQ(st.peer_copied_bytes, st.healed_bytes);
  EXPECT_GE(st.checksummed_bytes, kGiB);
  EXPECT_EQ(st.errors, 0u);
  std::printf("granular heal of a 1 GiB file: healed_bytes=%llu checksummed_bytes=%llu\n",
              static_cast<unsigned long long>(st.healed_bytes),
              static_cast<unsigned long long>(st.checksummed_bytes));
  ExpectBricksEqual();
  // Still sparse on the healed brick.
  auto snap = TakeBrickSnapshot(cluster_->brick_path(0, 2));
  EXPECT_LT(snap["big"].blocks * 512, 64 * kMiB);
}

TEST_F(HealTest, TruncateExtendAndPunchWhileDown) {
  Start();
  Ino shrink = Put(kRootIno, "shrink", Pattern(4 * kMiB, 10));
  Ino grow = Put(kRootIno, "grow", Pattern(kMiB, 11));
  Ino punch = Put(kRootIno, "punch", Pattern(2 * kMiB, 12));
  Ino empty = Put(kRootIno, "empty", Pattern(300000, 13));
  Ino append = Put(kRootIno, "append", Pattern(1000, 14));
  ASSERT_OK(Kill(0));
  ASSERT_OK(Truncate(shrink, kMiB + 100));
  ASSERT_OK(Truncate(grow, 3 * kMiB));
  ASSERT_OK(vol_->Write(grow, 2 * kMiB + kMiB / 2, "tail data", false));
  ASSERT_OK(vol_->Fallocate(punch, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 256 * 1024, kMiB));
  ASSERT_OK(Truncate(empty, 0));
  ASSERT_OK(vol_->Write(append, 0, "more", true));
  ASSERT_OK(cluster_->RestartNode(0));
  // node 0 is back and heals its own subvolume (lowest replica). Its admin
  // token is one the brickds refuse: the copies fall back to going through
  // the healer.
  for (int i = 0; i < cluster_->nodes(); ++i) {
    heal::Options o = HealOptions(i);
    o.admin_token = "not-the-admin-token";
    auto h = heal::VolumeHealer::Start(cluster_->spec(), o);
    ASSERT_OK(h);
    healers_.push_back(std::move(*h));
  }
  ASSERT_TRUE(WaitHealed(healers_[0].get()));
  EXPECT_GT(healers_[0]->GetInfo().stats.healed_bytes, 0u);
  EXPECT_EQ(healers_[0]->GetInfo().stats.peer_copied_bytes, 0u);
  ExpectBricksEqual();
  auto snap = TakeBrickSnapshot(cluster_->brick_path(0, 0));
  EXPECT_EQ(snap["shrink"].size, kMiB + 100);
  EXPECT_EQ(snap["grow"].size, 3 * kMiB);
  EXPECT_EQ(snap["empty"].size, 0u);
  EXPECT_EQ(snap["append"].size, 1004u);
}

TEST_F(HealTest, FiveGiBSparseFileStaysSparse) {
  Start();
  ASSERT_OK(Kill(2));
  Ino f = Put(kRootIno, "sparse", "head");
  ASSERT_OK(Truncate(f, 5 * kGiB));
  ASSERT_OK(vol_->Write(f, 4 * kGiB + kGiB / 2, Pattern(200000, 20), false));
  ASSERT_OK(vol_->Write(f, 5 * kGiB - 10, "end", false));
  ASSERT_OK(cluster_->RestartNode(2));
  auto start = std::chrono::steady_clock::now();
  StartHealer(0);
  ASSERT_TRUE(WaitHealed(healers_[0].get()));
  auto took = std::chrono::steady_clock::now() - start;
  ExpectBricksEqual();
  auto snap = TakeBrickSnapshot(cluster_->brick_path(0, 2));
  EXPECT_EQ(snap["sparse"].size, 5 * kGiB);
  EXPECT_LT(snap["sparse"].blocks * 512, 2 * kMiB) << "the healed copy is not sparse";
  auto st = healers_[0]->GetInfo().stats;
  EXPECT_LT(st.healed_bytes, kMiB);
  std::printf("5 GiB sparse file healed in %.1f s, healed_bytes=%llu\n",
              std::chrono::duration<double>(took).count(),
              static_cast<unsigned long long>(st.healed_bytes));
}

TEST_F(HealTest, StopsPromptlyMidHealAndTheNextHealerFinishes) {
  Start();
  constexpr uint64_t kSize = 128 * kMiB;
  Ino f = Put(kRootIno, "f", Pattern(kSize, 80));
  ASSERT_OK(Kill(1));
  ASSERT_OK(vol_->Write(f, 0, Pattern(kSize, 81), false));
  ASSERT_OK(cluster_->RestartNode(1));
  heal::VolumeHealer* h = StartHealer(0);
  const auto end = std::chrono::steady_clock::now() + 60s;
  while (h->GetInfo().stats.healed_bytes == 0 && std::chrono::steady_clock::now() < end) {
    std::this_thread::sleep_for(20ms);
  }
  auto info = h->GetInfo();
  ASSERT_GT(info.stats.healed_bytes, 0u);
  const auto stop = std::chrono::steady_clock::now();
  healers_.clear();  // in the middle of copying
  EXPECT_LT(std::chrono::steady_clock::now() - stop, 5s);
  // Nothing was committed half-way: replica 1 is still behind, still pending.
  h = StartHealer(0);
  ASSERT_TRUE(WaitHealed(h));
  ExpectBricksEqual();
}

// ---- Pending while a replica is away --------------------------------------------

TEST_F(HealTest, PendingStaysWhileTheReplicaIsDownAndNothingIsHealed) {
  Start();
  Ino f = Put(kRootIno, "f", "v1");
  ASSERT_OK(Kill(2));
  ASSERT_OK(vol_->Write(f, 0, "v2 while node 2 is away", false));
  Put(kRootIno, "g", "new");
  heal::VolumeHealer* h = StartHealer(0);
  std::this_thread::sleep_for(2s);  // many polls
  auto info = h->GetInfo();
  EXPECT_FALSE(info.bricks[2].connected);
  EXPECT_GT(info.bricks[0].pending, 0u) << Show(info);
  EXPECT_GT(info.bricks[1].pending, 0u) << Show(info);
  EXPECT_EQ(info.stats.healed_objects, 0u);
  EXPECT_EQ(info.stats.healed_bytes, 0u);
  EXPECT_EQ(info.stats.errors, 0u);
  // A healer on node 1 does not take over while replica 0 is reachable.
  heal::VolumeHealer* h1 = StartHealer(1);
  std::this_thread::sleep_for(1s);
  EXPECT_EQ(h1->GetInfo().stats.healed_objects, 0u);
  ASSERT_OK(cluster_->RestartNode(2));
  ASSERT_TRUE(WaitHealed(h));  // noticed on its own: no Kick
  ExpectBricksEqual();
}

// A quiet volume's polls are answered by one DirtySummary per brickd instead
// of probes and listings of every brick; a replica going away or a mark
// brings the full poll back at once, and the heal still happens on its own.
TEST_F(HealTest, QuietPollsUseNodeSummariesAndStillSeeDamage) {
  Start();
  Ino f = Put(kRootIno, "f", "v1");
  heal::VolumeHealer* h = StartHealer(0);
  ASSERT_TRUE(WaitHealed(h));
  std::this_thread::sleep_for(1s);
  const auto a = h->GetInfo().stats;
  std::this_thread::sleep_for(1500ms);  // ~15 polls at 100 ms
  const auto b = h->GetInfo().stats;
  EXPECT_GE(b.summary_skips - a.summary_skips, 8u);
  EXPECT_LE(b.passes - a.passes, 1u);
  ASSERT_OK(Kill(2));
  ASSERT_OK(vol_->Write(f, 0, "v2 while node 2 is away", false));
  std::this_thread::sleep_for(1s);
  const auto c = h->GetInfo();
  EXPECT_GE(c.stats.passes - b.passes, 3u);
  EXPECT_FALSE(c.bricks[2].connected) << Show(c);
  EXPECT_GT(Pending(c), 0u) << Show(c);
  ASSERT_OK(cluster_->RestartNode(2));
  ASSERT_TRUE(WaitHealed(h));  // noticed on its own: no Kick
  ExpectBricksEqual();
  // Switched off: every poll is a full pass.
  heal::Options o = HealOptions(1);
  o.node_summaries = false;
  auto off = heal::VolumeHealer::Start(cluster_->spec(), o);
  ASSERT_TRUE(off.ok()) << off.status().ToString();
  std::this_thread::sleep_for(1s);
  EXPECT_EQ((*off)->GetInfo().stats.summary_skips, 0u);
  EXPECT_GE((*off)->GetInfo().stats.passes, 5u);
}

// storaged starts the healer of a volume it has just created quiet: the
// first polls trust the node summaries (no pass over every brick). Damage
// is still seen: a dirty mark or a replica away makes the poll a pass.
TEST_F(HealTest, HealerOfANewVolumeStartsQuietButSeesDamage) {
  Start();
  Ino f = Put(kRootIno, "f", "v1");
  ASSERT_TRUE(WaitHealed(StartHealer(0)));  // the client's marks are gone
  healers_.clear();
  heal::Options o = HealOptions(0);
  o.start_quiet = true;
  auto quiet = heal::VolumeHealer::Start(cluster_->spec(), o);
  ASSERT_OK(quiet);
  std::this_thread::sleep_for(1s);  // ~10 polls at 100 ms
  auto stats = (*quiet)->GetInfo().stats;
  EXPECT_EQ(stats.passes, 0u);
  EXPECT_GE(stats.summary_skips, 5u);
  quiet->reset();

  ASSERT_OK(Kill(2));
  ASSERT_OK(vol_->Write(f, 0, "v2 while node 2 is away", false));
  ASSERT_OK(cluster_->RestartNode(2));
  auto h = heal::VolumeHealer::Start(cluster_->spec(), o);
  ASSERT_OK(h);
  healers_.push_back(std::move(*h));
  ASSERT_TRUE(WaitHealed(healers_.back().get()));
  EXPECT_GT(healers_.back()->GetInfo().stats.passes, 0u);
  EXPECT_GT(healers_.back()->GetInfo().stats.healed_objects, 0u);
  ExpectBricksEqual();
}

// storaged runs every healer of a node on one heal::Scheduler: a few threads,
// not one per volume. Kick still starts a poll at once.
TEST_F(HealTest, HealersShareASchedulerAndKickWakesThem) {
  Start();
  auto sched = std::make_shared<heal::Scheduler>(1, 4);
  EXPECT_EQ(sched->threads(), 1);
  Ino f = Put(kRootIno, "f", "v1");
  ASSERT_OK(Kill(1));
  ASSERT_OK(vol_->Write(f, 0, "v2 while node 1 is away", false));
  Put(kRootIno, "g", "new");
  ASSERT_OK(cluster_->RestartNode(1));
  // Twenty healers of replicas 1 and 2: never the owners while replica 0 is
  // reachable, they only poll (every 100 ms), all on the pool.
  for (int i = 0; i < 20; ++i) {
    auto o = HealOptions(1 + i % 2);
    o.scheduler = sched;
    auto h = heal::VolumeHealer::Start(cluster_->spec(), o);
    ASSERT_OK(h);
    healers_.push_back(std::move(*h));
  }
  // The owner polls once a minute: only Kick can make it heal within the test.
  auto o = HealOptions(0);
  o.scheduler = sched;
  o.interval = 60s;
  auto owner = heal::VolumeHealer::Start(cluster_->spec(), o);
  ASSERT_OK(owner);
  heal::VolumeHealer* h = owner->get();
  healers_.push_back(std::move(*owner));
  std::this_thread::sleep_for(500ms);
  EXPECT_GT(Pending(h->GetInfo()), 0u) << "healed before any Kick";
  const auto end = std::chrono::steady_clock::now() + 30s;
  heal::Info info;
  for (;;) {
    info = h->GetInfo();
    if (Pending(info) == 0) break;
    ASSERT_LT(std::chrono::steady_clock::now(), end) << "not healed: " << Show(info);
    h->Kick();  // a dirty entry is healed at its second sighting
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_GT(info.stats.healed_objects, 0u);
  EXPECT_GE(sched->threads(), 1);
  EXPECT_LE(sched->threads(), 4);
  ExpectBricksEqual();
  // Twenty-one healers leave the pool promptly.
  const auto stop = std::chrono::steady_clock::now();
  healers_.clear();
  EXPECT_LT(std::chrono::steady_clock::now() - stop, 5s);
}

TEST_F(HealTest, TheNextReplicasHealerTakesOverWhenReplicaZeroIsDown) {
  Start();
  Ino f = Put(kRootIno, "f", Pattern(100000, 30));
  ASSERT_OK(Kill(1));
  ASSERT_OK(vol_->Write(f, 5000, "changed", false));
  ASSERT_OK(cluster_->RestartNode(1));
  ASSERT_OK(Kill(0));  // replica 0 away: node 1's healer heals its own brick from replica 2
  heal::VolumeHealer* h1 = StartHealer(1);
  const auto end = std::chrono::steady_clock::now() + 60s;
  while (h1->GetInfo().stats.healed_objects == 0 && std::chrono::steady_clock::now() < end) {
    std::this_thread::sleep_for(200ms);
  }
  EXPECT_GT(h1->GetInfo().stats.healed_objects, 0u);
  // Still pending (replica 0 is away) until it is back.
  EXPECT_GT(Pending(h1->GetInfo()), 0u);
  EXPECT_TRUE(BrickDiff(0, 1, 2).empty()) << BrickDiff(0, 1, 2);
  // Replica 0 back: its own node's healer is the one again.
  ASSERT_OK(cluster_->RestartNode(0));
  heal::VolumeHealer* h0 = StartHealer(0);
  ASSERT_TRUE(WaitHealed(h0));
  ExpectBricksEqual();
}

// ---- Races with a client ---------------------------------------------------------

TEST_F(HealTest, ClientWritingDuringTheHealEndsIdentical) {
  Start();
  constexpr uint64_t kSize = 64 * kMiB;
  Ino f = Put(kRootIno, "busy", Pattern(kSize, 40));
  ASSERT_OK(Kill(2));
  // Everything changes while node 2 is away: the heal has 64 MiB to copy.
  std::string model = Pattern(kSize, 41);
  ASSERT_OK(vol_->Write(f, 0, model, false));
  ASSERT_OK(cluster_->RestartNode(2));
  std::this_thread::sleep_for(500ms);  // the client sees node 2 again
  StartHealer(0);
  // A client keeps writing blocks at random places while the heal runs.
  std::atomic<int> writes{0}, failures{0};
  std::mutex model_mu;
  {
    ThreadGroup writers;  // joined when the 4 s of writes are over
    writers.Add([&] {
      std::mt19937_64 rng(7);
      const auto end = std::chrono::steady_clock::now() + 4s;
      while (std::chrono::steady_clock::now() < end) {
        const uint64_t off = rng() % (kSize - 65536);
        std::string data = Pattern(65536, static_cast<uint32_t>(rng()));
        auto w = vol_->Write(f, off, data, false);
        if (!w.ok()) {
          ++failures;
          continue;
        }
        {
          std::lock_guard l(model_mu);
          model.replace(off, data.size(), data);
        }
        ++writes;
        std::this_thread::sleep_for(5ms);  // the heal runs between the writes
      }
    });
  }
  EXPECT_EQ(failures.load(), 0);
  EXPECT_GT(writes.load(), 10);
  ASSERT_TRUE(WaitHealed(healers_[0].get()));
  ExpectBricksEqual();
  // And it is the data the client wrote.
  std::string back;
  ASSERT_OK(vol_->Read(f, 0, kSize, &back));
  EXPECT_TRUE(back == model) << "contents differ from what the client wrote";
  std::printf("writes during heal: %d, healed_bytes=%llu\n", writes.load(),
              static_cast<unsigned long long>(healers_[0]->GetInfo().stats.healed_bytes));
}

TEST_F(HealTest, MarksLeftByADeadClientAreCleared) {
  Start();
  Ino f = Put(kRootIno, "f", "same everywhere");
  Ino d = Mkdir(kRootIno, "d");
  (void)d;
  const std::string id = vol_->GetAttr(f)->id.Raw();
  // A client that wrote to every replica and died before clearing its marks.
  for (int r = 0; r < 3; ++r) {
    pb::WriteRequest w;
    w.set_brick_id(BrickId(r));
    w.set_id(id);
    w.set_offset(0);
    w.set_data("SAME");
    w.mutable_txn()->set_mark_dirty(true);
    ASSERT_OK(Brick(r).Call(&pb::Brick::Stub::Write, w, cluster_->token()));
  }
  for (int r = 0; r < 3; ++r) {
    size_t marks = 0;
    for (auto& e : fs::directory_iterator(cluster_->brick_path(0, r) + "/.cairn/dirty")) {
      (void)e;
      ++marks;
    }
    EXPECT_GT(marks, 0u) << r;
  }
  heal::VolumeHealer* h = StartHealer(0);
  ASSERT_TRUE(WaitHealed(h, 60s));
  EXPECT_EQ(h->GetInfo().stats.healed_bytes, 0u);  // nothing to copy: only marks
  EXPECT_TRUE(h->GetInfo().split_brain.empty());
  ExpectBricksEqual();
}

// ---- Split-brain -------------------------------------------------------------------

class SplitBrainTest : public HealTest {
 protected:
  // Writes `data` to replica r of file `id` with mark_dirty, as a client that
  // reached only that replica would (version data + 1 there).
  void WriteOn(int r, const std::string& id, const std::string& data) {
    pb::TruncateRequest t;
    t.set_brick_id(BrickId(r));
    t.set_id(id);
    t.set_size(0);
    ASSERT_OK(Brick(r).Call(&pb::Brick::Stub::Truncate, t, cluster_->token()));
    pb::WriteRequest w;
    w.set_brick_id(BrickId(r));
    w.set_id(id);
    w.set_data(data);
    w.mutable_txn()->set_mark_dirty(true);
    ASSERT_OK(Brick(r).Call(&pb::Brick::Stub::Write, w, cluster_->token()));
  }
  void SetMtime(int r, const std::string& id, int64_t ns) {
    pb::SetAttrRequest s;
    s.set_brick_id(BrickId(r));
    s.set_id(id);
    s.set_valid(pb::SetAttrRequest::VALID_MTIME);
    s.set_mtime_ns(ns);
    ASSERT_OK(Brick(r).Call(&pb::Brick::Stub::SetAttr, s, cluster_->token()));
  }
  std::string OnDisk(int r, const std::string& name) {
    return ReadFileOrEmpty(cluster_->brick_path(0, r) + "/" + name);
  }
  const heal::SplitBrain* Find(const heal::Info& info, const Uuid& id) {
    for (const auto& sb : info.split_brain) {
      if (sb.id == id) return &sb;
    }
    return nullptr;
  }
  bool WaitSplit(heal::VolumeHealer* h, const Uuid& id, std::chrono::seconds limit = 60s) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
      if (Find(h->GetInfo(), id) != nullptr) return true;
      std::this_thread::sleep_for(100ms);
    }
    return false;
  }
};

TEST_F(SplitBrainTest, DetectedNotHealedThenEachPolicyResolves) {
  Start();
  // Three files, each with three different copies at equal data versions
  // (failed non-quorum writes that each reached one replica).
  struct Case {
    std::string name;
    heal::Policy policy;
    int winner;
  };
  const std::vector<Case> cases = {{"by-brick", heal::Policy::kSourceBrick, 1},
                                   {"by-mtime", heal::Policy::kLatestMtime, 2},
                                   {"by-size", heal::Policy::kBiggerFile, 0}};
  std::map<std::string, Uuid> ids;
  for (const auto& c : cases) {
    Ino f = Put(kRootIno, c.name, "original");
    ids[c.name] = vol_->GetAttr(f)->id;
  }
  vol_.reset();  // the writer is gone; only the bricks remember
  for (const auto& c : cases) {
    const std::string id = ids[c.name].Raw();
    for (int r = 0; r < 3; ++r) {
      // Sizes: the winner of by-size is the biggest.
      size_t size = c.policy == heal::Policy::kBiggerFile ? (r == 0 ? 30000 : 20000 + r) : 1000 + r;
      WriteOn(r, id, Pattern(size, 100 + r));
    }
  }
  // mtimes: replica 2 holds the latest by-mtime copy.
  for (int r = 0; r < 3; ++r) {
    SetMtime(r, ids["by-mtime"].Raw(), 1000000000LL * (1700000000 + (r == 2 ? 100 : r)));
  }
  heal::VolumeHealer* h = StartHealer(0);
  for (const auto& c : cases) {
    ASSERT_TRUE(WaitSplit(h, ids[c.name])) << c.name << ": " << Show(h->GetInfo());
  }
  auto info = h->GetInfo();
  const heal::SplitBrain* sb = Find(info, ids["by-brick"]);
  ASSERT_NE(sb, nullptr);
  EXPECT_EQ(sb->kind, "data");
  EXPECT_EQ(sb->bricks.size(), 3u);
  EXPECT_FALSE(sb->detail.empty());
  EXPECT_GT(Pending(info), 0u);
  // Not healed automatically: every replica keeps its own copy.
  std::this_thread::sleep_for(1s);
  for (const auto& c : cases) {
    EXPECT_NE(OnDisk(0, c.name), OnDisk(1, c.name)) << c.name;
    EXPECT_NE(OnDisk(1, c.name), OnDisk(2, c.name)) << c.name;
  }
  // Each policy picks its copy.
  EXPECT_FALSE(h->Resolve(ids["by-brick"], heal::Policy::kSourceBrick, "no-such-brick").ok());
  for (const auto& c : cases) {
    const std::string expect = OnDisk(c.winner, c.name);
    ASSERT_OK(h->Resolve(ids[c.name], c.policy,
                         c.policy == heal::Policy::kSourceBrick ? BrickId(c.winner) : ""));
    for (int r = 0; r < 3; ++r) EXPECT_EQ(OnDisk(r, c.name), expect) << c.name << " replica " << r;
  }
  ASSERT_TRUE(WaitHealed(h, 60s));
  EXPECT_TRUE(h->GetInfo().split_brain.empty());
  ExpectBricksEqual();
}

TEST_F(SplitBrainTest, DetectedWhileTheThirdReplicaIsAwayAndWhenItIsBehind) {
  Start();
  Ino f = Put(kRootIno, "f", "original");
  const Uuid uid = vol_->GetAttr(f)->id;
  vol_.reset();
  ASSERT_OK(Kill(2));
  WriteOn(0, uid.Raw(), "copy zero");
  WriteOn(1, uid.Raw(), "copy one, longer");
  heal::VolumeHealer* h = StartHealer(0);
  ASSERT_TRUE(WaitSplit(h, uid)) << Show(h->GetInfo());
  EXPECT_EQ(Find(h->GetInfo(), uid)->bricks.size(), 2u);
  // Back, with the original at a lower version: a sink, but no majority
  // among the sources. Nothing is healed.
  ASSERT_OK(cluster_->RestartNode(2));
  std::this_thread::sleep_for(1500ms);
  EXPECT_NE(Find(h->GetInfo(), uid), nullptr);
  EXPECT_EQ(OnDisk(0, "f"), "copy zero");
  EXPECT_EQ(OnDisk(1, "f"), "copy one, longer");
  EXPECT_EQ(OnDisk(2, "f"), "original");
  EXPECT_EQ(h->GetInfo().stats.healed_bytes, 0u);
  ASSERT_OK(h->Resolve(uid, heal::Policy::kSourceBrick, BrickId(0)));
  ASSERT_TRUE(WaitHealed(h, 60s));
  for (int r = 0; r < 3; ++r) EXPECT_EQ(OnDisk(r, "f"), "copy zero") << r;
  ExpectBricksEqual();
}

TEST_F(SplitBrainTest, AMajorityOfEqualVersionsWinsWithoutSplitBrain) {
  Start();
  Ino f = Put(kRootIno, "f", "original");
  const std::string id = vol_->GetAttr(f)->id.Raw();
  vol_.reset();
  WriteOn(0, id, "majority");
  WriteOn(1, id, "majority");
  WriteOn(2, id, "minority!");
  heal::VolumeHealer* h = StartHealer(0);
  ASSERT_TRUE(WaitHealed(h, 60s));
  EXPECT_TRUE(h->GetInfo().split_brain.empty());
  EXPECT_EQ(OnDisk(2, "f"), "majority");
  ExpectBricksEqual();
}

TEST_F(SplitBrainTest, MetadataSplitBrainIsReportedAndResolved) {
  Start();
  Ino f = Put(kRootIno, "f", "data");
  const std::string id = vol_->GetAttr(f)->id.Raw();
  vol_.reset();
  for (int r = 0; r < 3; ++r) {
    pb::SetAttrRequest s;
    s.set_brick_id(BrickId(r));
    s.set_id(id);
    s.set_valid(pb::SetAttrRequest::VALID_MODE);
    s.set_mode(0600 + 010 * r);
    s.mutable_txn()->set_mark_dirty(true);
    ASSERT_OK(Brick(r).Call(&pb::Brick::Stub::SetAttr, s, cluster_->token()));
  }
  heal::VolumeHealer* h = StartHealer(0);
  auto uid = Uuid::FromBytes(id);
  ASSERT_TRUE(WaitSplit(h, *uid));
  EXPECT_EQ(Find(h->GetInfo(), *uid)->kind, "metadata");
  ASSERT_OK(h->Resolve(*uid, heal::Policy::kSourceBrick, BrickId(2)));
  ASSERT_TRUE(WaitHealed(h, 60s));
  for (int r = 0; r < 3; ++r) {
    EXPECT_EQ(TakeBrickSnapshot(cluster_->brick_path(0, r))["f"].mode & 07777, 0620u) << r;
  }
  ExpectBricksEqual();
}

// ---- Arbiter --------------------------------------------------------------------

TEST_F(HealTest, ArbiterVolumeHealsNamesToTheArbiterAndDataBetweenDataBricks) {
  ClusterOptions o;
  o.arbiter = 1;
  Start(o);
  Ino d = Mkdir(kRootIno, "d");
  Ino f = Put(d, "f", Pattern(500000, 50));
  // The arbiter (replica 2) away: names, metadata, data versions.
  ASSERT_OK(Kill(2));
  Put(d, "new", Pattern(300000, 51));
  ASSERT_OK(vol_->Write(f, 1000, "changed while the arbiter was away", false));
  ASSERT_OK(vol_->SetXattr(f, "user.tag", "t", 0));
  Mkdir(d, "sub");
  ASSERT_OK(cluster_->RestartNode(2));
  heal::VolumeHealer* h = StartHealer(0);
  ASSERT_TRUE(WaitHealed(h));
  EXPECT_EQ(h->GetInfo().stats.healed_bytes, 0u) << "the arbiter got data";
  ExpectBricksEqual();
  auto arb = TakeBrickSnapshot(cluster_->brick_path(0, 2));
  ASSERT_TRUE(arb.count("d/new"));
  // No data blocks (at most ext4's block for xattrs that do not fit the inode).
  EXPECT_LE(arb["d/new"].blocks, 8u);
  EXPECT_LE(arb["d/f"].blocks, 8u);
  EXPECT_EQ(arb["d/f"].xattrs["user.tag"], "t");

  // A data brick away: its data comes from the other data brick.
  ASSERT_OK(Kill(1));
  ASSERT_OK(vol_->Write(f, 200000, Pattern(100000, 52), false));
  Put(d, "while-1-away", Pattern(70000, 53));
  ASSERT_OK(cluster_->RestartNode(1));
  ASSERT_TRUE(WaitHealed(h));
  ExpectBricksEqual();
  EXPECT_LE(TakeBrickSnapshot(cluster_->brick_path(0, 2))["d/while-1-away"].blocks, 8u);
}

// ---- Full crawl -------------------------------------------------------------------

TEST_F(HealTest, FullCrawlHealsWhatNoMarkRemembers) {
  Start();
  Ino d = Mkdir(kRootIno, "d");
  Ino f = Put(d, "f", Pattern(100000, 60));
  ASSERT_OK(Kill(2));
  Put(d, "created", "c");
  ASSERT_OK(vol_->Write(f, 0, "XYZ", false));
  Mkdir(Mkdir(kRootIno, "nd"), "nested");
  vol_.reset();
  ASSERT_OK(cluster_->RestartNode(2));
  // The dirty indexes are lost (e.g. restored from a backup without them).
  for (int r = 0; r < 3; ++r) {
    for (auto& e : fs::directory_iterator(cluster_->brick_path(0, r) + "/.cairn/dirty")) {
      fs::remove(e.path());
    }
  }
  heal::VolumeHealer* h = StartHealer(0);
  std::this_thread::sleep_for(1s);
  EXPECT_EQ(h->GetInfo().stats.healed_objects, 0u);  // nothing pending, nothing known
  EXPECT_FALSE(BrickDiff(0, 0, 2).empty());
  h->TriggerFullCrawl();
  const auto end = std::chrono::steady_clock::now() + 120s;
  while (std::chrono::steady_clock::now() < end &&
         (h->GetInfo().stats.full_crawls == 0 || h->GetInfo().stats.active)) {
    std::this_thread::sleep_for(200ms);
  }
  EXPECT_GE(h->GetInfo().stats.full_crawls, 1u);
  ASSERT_TRUE(WaitHealed(h, 60s));
  ExpectBricksEqual();
}

// ---- Distribute-replicate ------------------------------------------------------------

TEST_F(HealTest, EverySubvolumeOfADistributedVolumeHeals) {
  ClusterOptions o;
  o.subvolumes = 2;
  Start(o);
  Ino d = Mkdir(kRootIno, "d");
  for (int i = 0; i < 10; ++i) Put(d, "f" + std::to_string(i), Pattern(5000 + i, 70 + i));
  ASSERT_OK(Kill(1));
  for (int i = 0; i < 10; ++i) {
    ASSERT_OK(vol_->Write(Path("d/f" + std::to_string(i)), 10, "changed", false));
  }
  for (int i = 10; i < 20; ++i) Put(d, "f" + std::to_string(i), Pattern(3000, 70 + i));
  Mkdir(d, "sub");
  ASSERT_OK(cluster_->RestartNode(1));
  StartAllHealers();
  ASSERT_TRUE(WaitHealed(healers_[0].get()));
  ExpectBricksEqual();
}

TEST_F(HealTest, BadOptionsAndVolumesAreRefused) {
  Start();
  auto o = HealOptions(0);
  o.block_size = 1000;
  EXPECT_FALSE(heal::VolumeHealer::Start(cluster_->spec(), o).ok());
  o = HealOptions(0);
  o.parallel = 0;
  EXPECT_FALSE(heal::VolumeHealer::Start(cluster_->spec(), o).ok());
  client::VolumeSpec single = cluster_->spec();
  single.replica = 1;
  EXPECT_FALSE(heal::VolumeHealer::Start(single, HealOptions(0)).ok());
  // A healer with no local brick heals nothing but still reports.
  o = HealOptions(0);
  o.local_node = "127.0.0.9:1";
  auto h = heal::VolumeHealer::Start(cluster_->spec(), o);
  ASSERT_OK(h);
  auto info = (*h)->GetInfo();
  EXPECT_EQ(info.bricks.size(), 3u);
  EXPECT_EQ(Pending(info), 0u);
  EXPECT_EQ((*h)->Resolve(Uuid::Random(), heal::Policy::kLatestMtime, "").posix_errno(), ENOENT);
}

}  // namespace
}  // namespace cairn::test
