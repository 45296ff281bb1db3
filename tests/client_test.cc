// libcairn against real brickd processes on 127.0.0.2-4: replication with
// quorum, versions and dirty marks, distribution, arbiter, and bricks killed
// in the middle of work.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <linux/falloc.h>
#include <signal.h>
#include <sys/stat.h>

#include <atomic>
#include <filesystem>
#include <random>
#include <thread>

#include "client/volume.h"
#include "tests/cluster_util.h"

namespace cairn::test {
namespace {

using client::Attr;
using client::kRootIno;
using client::Volume;
namespace fs = std::filesystem;

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
#define EXPECT_ERRNO(expr, err)                                           \
  do {                                                                    \
    auto&& _r = (expr);                                                   \
    Status _st = StatusOf(_r);                                            \
    EXPECT_FALSE(_st.ok()) << #expr;                                      \
    EXPECT_EQ(_st.posix_errno(), err) << #expr << ": " << _st.ToString(); \
  } while (0)

std::string Pattern(size_t n, uint32_t seed) {
  std::string s(n, '\0');
  std::mt19937 rng(seed);
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

// Files as they sit in a brick directory.
std::string BrickFile(const TestCluster& c, int s, int r, const std::string& rel) {
  return ReadFileOrEmpty(c.brick_path(s, r) + "/" + rel);
}
bool BrickHas(const TestCluster& c, int s, int r, const std::string& rel) {
  struct stat st;
  return ::lstat((c.brick_path(s, r) + "/" + rel).c_str(), &st) == 0;
}
size_t DirtyCount(const TestCluster& c, int s, int r) {
  size_t n = 0;
  for (auto& e : fs::directory_iterator(c.brick_path(s, r) + "/.cairn/dirty")) {
    (void)e;
    ++n;
  }
  return n;
}

// brickd's count of `op` calls on node `b` (its /metrics).
int64_t OpCount(BrickdProcess& b, const std::string& op) {
  httplib::Client http(b.host(), b.metrics_port());
  http.set_connection_timeout(5);
  auto res = http.Get("/metrics", {{"Authorization", "Bearer " + b.data_token()}});
  if (!res || res->status != 200) return -1;
  int64_t total = 0;
  const std::string key = ",op=\"" + op + "\"} ";
  size_t at = 0;
  while ((at = res->body.find("cairn_brick_ops_total{", at)) != std::string::npos) {
    size_t eol = res->body.find('\n', at);
    std::string line = res->body.substr(at, eol - at);
    if (size_t k = line.find(key); k != std::string::npos) {
      total += std::stoll(line.substr(k + key.size()));
    }
    at = eol;
  }
  return total;
}

class ClientTest : public ::testing::Test {
 protected:
  void Start(ClusterOptions o) {
    auto c = TestCluster::Start(o);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    cluster_ = std::move(*c);
    auto v = cluster_->OpenVolume();
    ASSERT_TRUE(v.ok()) << v.status().ToString();
    vol_ = std::move(*v);
  }
  // Creates `name` in the root with `data`; returns its inode.
  client::Ino Put(const std::string& name, const std::string& data, client::Ino dir = kRootIno) {
    auto f = vol_->Create(dir, name, 0644, {0, 0});
    EXPECT_TRUE(f.ok()) << f.status().ToString();
    if (!f.ok()) return 0;
    auto w = vol_->Write(f->ino, 0, data, false);
    EXPECT_TRUE(w.ok()) << w.status().ToString();
    vol_->Release(f->ino);
    return f->ino;
  }
  std::string Get(client::Ino ino, size_t max = 64 << 20) {
    std::string out;
    Status s = vol_->Read(ino, 0, max, &out);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return out;
  }

  std::unique_ptr<TestCluster> cluster_;
  std::unique_ptr<Volume> vol_;
};

TEST_F(ClientTest, ReplicaThreeWritesEveryBrickAndClearsDirtyMarks) {
  Start({.nodes = 3, .replica = 3});
  auto d = vol_->Mkdir(kRootIno, "dir", 0755, {1000, 1000});
  ASSERT_OK(d);
  const std::string data = Pattern(3 << 20, 1);
  client::Ino f = Put("file", data, d->ino);
  EXPECT_EQ(Get(f), data);
  for (int r = 0; r < 3; ++r) {
    EXPECT_EQ(BrickFile(*cluster_, 0, r, "dir/file"), data) << "replica " << r;
  }
  auto a = vol_->GetAttr(f);
  ASSERT_OK(a);
  EXPECT_EQ(a->size, data.size());
  EXPECT_EQ(a->uid, 0u);
  auto da = vol_->GetAttr(d->ino);
  EXPECT_EQ(da->uid, 1000u);
  EXPECT_TRUE(S_ISDIR(da->mode));
  // Every replica acknowledged: the client clears the marks in the background.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  for (int r = 0; r < 3; ++r) EXPECT_EQ(DirtyCount(*cluster_, 0, r), 0u) << "replica " << r;
  // Lookup by name from the root finds the same inode.
  auto found = vol_->Resolve("/dir/file");
  ASSERT_OK(found);
  EXPECT_EQ(found->ino, f);
  EXPECT_ERRNO(vol_->Resolve("/dir/nope"), ENOENT);
}

TEST_F(ClientTest, NamespaceOperations) {
  Start({.nodes = 3, .replica = 3});
  client::Ino f = Put("a", "hello");
  EXPECT_ERRNO(vol_->Create(kRootIno, "a", 0644, {0, 0}), EEXIST);
  ASSERT_OK(vol_->Link(f, kRootIno, "b"));
  EXPECT_EQ(vol_->GetAttr(f)->nlink, 2u);
  ASSERT_OK(vol_->Rename(kRootIno, "b", kRootIno, "c", 0));
  EXPECT_ERRNO(vol_->Lookup(kRootIno, "b"), ENOENT);
  ASSERT_OK(vol_->Unlink(kRootIno, "a"));
  auto c = vol_->Lookup(kRootIno, "c");
  ASSERT_OK(c);
  EXPECT_EQ(Get(c->ino), "hello");
  ASSERT_OK(vol_->Symlink(kRootIno, "ln", "c", {0, 0}));
  auto ln = vol_->Lookup(kRootIno, "ln");
  EXPECT_EQ(*vol_->Readlink(ln->ino), "c");
  ASSERT_OK(vol_->Mkdir(kRootIno, "d", 0700, {0, 0}));
  Put("x", "1", vol_->Lookup(kRootIno, "d")->ino);
  EXPECT_ERRNO(vol_->Rmdir(kRootIno, "d"), ENOTEMPTY);
  auto entries = vol_->ReadDir(kRootIno, true);
  ASSERT_OK(entries);
  std::set<std::string> names;
  for (auto& e : *entries) names.insert(e.name);
  EXPECT_EQ(names, (std::set<std::string>{"c", "ln", "d"}));
  ASSERT_OK(vol_->SetXattr(c->ino, "user.k", "v", 0));
  EXPECT_EQ(*vol_->GetXattr(c->ino, "user.k"), "v");
  EXPECT_ERRNO(vol_->SetXattr(c->ino, "trusted.cairn.layout", "x", 0), EPERM);
  EXPECT_ERRNO(vol_->GetXattr(c->ino, "user.none"), ENODATA);
  ASSERT_OK(vol_->RemoveXattr(c->ino, "user.k"));
  EXPECT_ERRNO(vol_->GetXattr(c->ino, "user.k"), ENODATA);
  // Another client's xattr shows once the cached names expire.
  {
    auto other = cluster_->OpenVolume();
    ASSERT_OK(other);
    auto oc = (*other)->Lookup(kRootIno, "c");
    ASSERT_OK(oc);
    ASSERT_OK((*other)->SetXattr(oc->ino, "user.from-other", "1", 0));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  EXPECT_EQ(*vol_->GetXattr(c->ino, "user.from-other"), "1");
  auto st = vol_->StatFs();
  ASSERT_OK(st);
  EXPECT_GT(st->capacity_bytes, 0u);
}

TEST_F(ClientTest, ForgottenInodesLeaveTheTableAndComeBackOnLookup) {
  Start({.nodes = 3, .replica = 3});
  for (int i = 0; i < 300; ++i) Put("f" + std::to_string(i), std::to_string(i));
  auto list = vol_->ReadDir(kRootIno, true);
  ASSERT_OK(list);
  for (auto& e : *list) vol_->AddRef(e.attr.ino);
  std::vector<client::Ino> inos;
  for (int i = 0; i < 300; ++i) {
    auto e = vol_->Lookup(kRootIno, "f" + std::to_string(i));
    ASSERT_OK(e);
    inos.push_back(e->ino);
  }
  // Every reference dropped (as the kernel does after a cache drop): gone.
  for (client::Ino ino : inos) vol_->Forget(ino, 3);  // create + readdirplus + lookup
  for (client::Ino ino : inos) EXPECT_ERRNO(vol_->GetAttr(ino), ESTALE);
  for (int i = 0; i < 300; ++i) {
    auto e = vol_->Lookup(kRootIno, "f" + std::to_string(i));
    ASSERT_OK(e);
    EXPECT_EQ(Get(e->ino), std::to_string(i));
    vol_->Forget(e->ino, 1);
  }
}

TEST_F(ClientTest, UnlinkedOpenFileStaysReadableUntilRelease) {
  Start({.nodes = 3, .replica = 3});
  auto f = vol_->Create(kRootIno, "tmp", 0600, {0, 0});
  ASSERT_OK(f);
  ASSERT_OK(vol_->Write(f->ino, 0, "still here", false));
  ASSERT_OK(vol_->Unlink(kRootIno, "tmp"));
  EXPECT_ERRNO(vol_->Lookup(kRootIno, "tmp"), ENOENT);
  EXPECT_EQ(Get(f->ino), "still here");
  ASSERT_OK(vol_->Write(f->ino, 10, "!", false));
  EXPECT_EQ(Get(f->ino), "still here!");
  vol_->Release(f->ino);
  vol_->Forget(f->ino, 1);
  // The parked data goes away with the batched Forget.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  for (int r = 0; r < 3; ++r) {
    EXPECT_TRUE(fs::is_empty(cluster_->brick_path(0, r) + "/.cairn/o")) << r;
  }
}

TEST_F(ClientTest, OneBrickKilledMidWriteLosesNothing) {
  Start({.nodes = 3, .replica = 3});
  auto f = vol_->Create(kRootIno, "seq", 0644, {0, 0});
  ASSERT_OK(f);
  std::string model;
  for (int i = 0; i < 64; ++i) {
    if (i == 20) {
      auto k = cluster_->node(1).Kill(SIGKILL);
      ASSERT_OK(k);
    }
    std::string piece = Pattern(64 << 10, 100 + i);
    auto w = vol_->Write(f->ino, model.size(), piece, false);
    ASSERT_TRUE(w.ok()) << "write " << i << ": " << w.status().ToString();
    model += piece;
  }
  EXPECT_EQ(Get(f->ino), model);
  // The surviving replicas hold everything and keep the file dirty for heal.
  EXPECT_EQ(BrickFile(*cluster_, 0, 0, "seq"), model);
  EXPECT_EQ(BrickFile(*cluster_, 0, 2, "seq"), model);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_GE(DirtyCount(*cluster_, 0, 0), 1u);
  auto health = vol_->Health();
  EXPECT_FALSE(health[1].connected);

  // The node comes back: new writes reach it again; the missed file is not
  // read from it (stale) until heal.
  ASSERT_OK(cluster_->RestartNode(1));
  bool back = false;
  for (int i = 0; i < 150 && !back; ++i) {  // up to 15 s: reconnects are slower under load
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    back = vol_->Health()[1].connected;
  }
  ASSERT_TRUE(back);
  Put("after", "fresh");
  EXPECT_EQ(BrickFile(*cluster_, 0, 1, "after"), "fresh");
  for (int i = 0; i < 10; ++i) EXPECT_EQ(Get(f->ino), model);
}

// A lookup asks a read quorum (2 of 3) first; where they disagree the third
// brick is asked and the majority wins. A brick that was away while names were
// removed, created and files rewritten is outvoted whichever pair is asked,
// and its old data is never read.
TEST_F(ClientTest, LookupsAskAReadQuorumAndAStaleReplicaIsOutvoted) {
  Start({.nodes = 3, .replica = 3, .metrics = true});
  constexpr int kNames = 24;
  auto name = [](const char* what, int i) { return std::string(what) + std::to_string(i); };
  std::vector<client::Ino> kept;
  for (int i = 0; i < kNames; ++i) {
    Put(name("gone", i), "old");
    kept.push_back(Put(name("kept", i), "old" + std::to_string(i)));
  }
  // Directories whose entries do not change while node 1 is away, so a
  // listing may come from node 1; only their file's data does.
  constexpr int kDirs = 8;
  std::vector<client::Ino> in_dir;
  for (int i = 0; i < kDirs; ++i) {
    auto d = vol_->Mkdir(kRootIno, name("dir", i), 0755, {0, 0});
    ASSERT_OK(d);
    in_dir.push_back(Put("f", "old", d->ino));
  }
  ASSERT_OK(cluster_->node(1).Kill(SIGKILL));
  for (int i = 0; i < kNames; ++i) {
    ASSERT_OK(vol_->Unlink(kRootIno, name("gone", i)));
    Put(name("born", i), "new" + std::to_string(i));
    ASSERT_OK(vol_->Write(kept[i], 0, "NEW" + std::to_string(i), false));
  }
  for (client::Ino f : in_dir) ASSERT_OK(vol_->Write(f, 0, "NEW", false));
  ASSERT_OK(cluster_->RestartNode(1));
  // A second client, which learnt nothing while node 1 was away.
  auto other = cluster_->OpenVolume();
  ASSERT_OK(other);
  auto& v2 = *other;
  bool all = false;
  for (int i = 0; i < 150 && !all; ++i) {
    auto h = v2->Health();
    all = h[0].connected && h[1].connected && h[2].connected;
    if (!all) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(all);
  auto lookups = [&] {
    int64_t n = 0;
    for (int b = 0; b < 3; ++b) {
      int64_t c = OpCount(cluster_->node(b), "lookup");
      EXPECT_GE(c, 0) << "metrics of node " << b;
      n += c;
    }
    return n;
  };
  const int64_t before = lookups();
  for (int i = 0; i < kNames; ++i) {
    EXPECT_ERRNO(v2->Lookup(kRootIno, name("gone", i)), ENOENT);
    auto b = v2->Lookup(kRootIno, name("born", i));
    ASSERT_OK(b);
    std::string got;
    ASSERT_OK(v2->Read(b->ino, 0, 100, &got));
    EXPECT_EQ(got, "new" + std::to_string(i));
  }
  const int64_t disputed = lookups() - before;
  // Every disputed name cost 2 or 3 calls; with 24 names some pair left node 1 out.
  EXPECT_GE(disputed, 2 * 2 * kNames);
  EXPECT_LT(disputed, 3 * 2 * kNames);
  // Names the replicas agree on (node 1 has the file, at an older version)
  // cost exactly two calls each, and the newer data is what reads return.
  const int64_t agreed_before = lookups();
  for (int i = 0; i < kNames; ++i) {
    auto k = v2->Lookup(kRootIno, name("kept", i));
    ASSERT_OK(k);
    std::string got;
    ASSERT_OK(v2->Read(k->ino, 0, 100, &got));
    const std::string want = "NEW" + std::to_string(i);
    EXPECT_EQ(got.substr(0, want.size()), want) << name("kept", i);
  }
  EXPECT_EQ(lookups() - agreed_before, 2 * kNames);
  // Node 1 still holds the old copies (nothing healed them): they were outvoted.
  EXPECT_EQ(BrickFile(*cluster_, 0, 1, "kept0"), "old0");
  EXPECT_TRUE(BrickHas(*cluster_, 0, 1, "gone0"));

  // A file first seen in a listing (one replica's word, maybe node 1's) is
  // checked against a read quorum before its data is read.
  auto third = cluster_->OpenVolume();
  ASSERT_OK(third);
  auto& v3 = *third;
  for (int i = 0; i < 150; ++i) {
    auto h = v3->Health();
    if (h[0].connected && h[1].connected && h[2].connected) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  for (int i = 0; i < kDirs; ++i) {
    auto d = v3->Lookup(kRootIno, name("dir", i));
    ASSERT_OK(d);
    auto list = v3->ReadDir(d->ino, /*plus=*/true);
    ASSERT_OK(list);
    client::Ino f = 0;
    for (const auto& e : *list) {
      if (e.name == "f") f = e.attr.ino;
    }
    ASSERT_NE(f, 0u);
    std::string got;
    ASSERT_OK(v3->Read(f, 0, 100, &got));
    EXPECT_EQ(got, "NEW") << name("dir", i);
  }
  EXPECT_EQ(BrickFile(*cluster_, 0, 1, "dir0/f"), "old");
}

// An xattr a brick said is absent is answered from memory until the cache
// timeout (the kernel asks security.capability before every write); a set
// through this client is seen at once, another client's after the timeout.
TEST_F(ClientTest, AbsentXattrsAreRememberedUntilTheTimeout) {
  Start({.nodes = 3, .replica = 3, .metrics = true});
  client::Options o;
  o.xattr_cache_timeout = std::chrono::milliseconds(3000);
  auto a = cluster_->OpenVolume(o);
  auto b = cluster_->OpenVolume(o);
  ASSERT_OK(a);
  ASSERT_OK(b);
  auto f = (*a)->Create(kRootIno, "f", 0644, {0, 0});
  ASSERT_OK(f);
  auto getxattrs = [&] {
    int64_t n = 0;
    for (int i = 0; i < 3; ++i) n += OpCount(cluster_->node(i), "getxattr");
    return n;
  };
  // What the create taught this client has expired: the first ask goes to a brick.
  std::this_thread::sleep_for(std::chrono::milliseconds(3100));
  const int64_t start = getxattrs();
  EXPECT_ERRNO((*a)->GetXattr(f->ino, "security.capability"), ENODATA);
  EXPECT_EQ(getxattrs(), start + 1);
  for (int i = 0; i < 20; ++i) EXPECT_ERRNO((*a)->GetXattr(f->ino, "security.capability"), ENODATA);
  EXPECT_EQ(getxattrs(), start + 1) << "answered from memory";
  // A set here is seen at once.
  EXPECT_ERRNO((*a)->GetXattr(f->ino, "user.k"), ENODATA);
  ASSERT_OK((*a)->SetXattr(f->ino, "user.k", "v1", 0));
  auto v = (*a)->GetXattr(f->ino, "user.k");
  ASSERT_OK(v);
  EXPECT_EQ(*v, "v1");
  // Another client's set is seen once the timeout has passed.
  EXPECT_ERRNO((*a)->GetXattr(f->ino, "user.other"), ENODATA);
  auto fb = (*b)->Lookup(kRootIno, "f");
  ASSERT_OK(fb);
  ASSERT_OK((*b)->SetXattr(fb->ino, "user.other", "x", 0));
  std::this_thread::sleep_for(std::chrono::milliseconds(3100));
  auto other = (*a)->GetXattr(f->ino, "user.other");
  ASSERT_OK(other);
  EXPECT_EQ(*other, "x");
}

// A directory's attributes come back with every create, mkdir, link, unlink
// and rmdir in it; GetAttr of the directory right after is answered from them
// (the kernel asks after every such change), not from a brick.
TEST_F(ClientTest, EntryOperationsReturnTheDirectorysAttributes) {
  Start({.nodes = 3, .replica = 3, .metrics = true});
  auto getattrs = [&] {
    int64_t n = 0;
    for (int i = 0; i < 3; ++i) n += OpCount(cluster_->node(i), "getattr");
    return n;
  };
  // A timeout long enough that a loaded machine cannot outrun it below.
  client::Options cached;
  cached.dir_attr_cache_timeout = std::chrono::milliseconds(5000);
  auto opened = cluster_->OpenVolume(cached);
  ASSERT_OK(opened);
  auto& v = *opened;
  auto d = v->Mkdir(kRootIno, "d", 0750, {0, 0});
  ASSERT_OK(d);
  auto before = v->GetAttr(d->ino);
  ASSERT_OK(before);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // times must move
  const int64_t start = getattrs();
  auto f = v->Create(d->ino, "f", 0644, {0, 0});
  ASSERT_OK(f);
  ASSERT_OK(v->Write(f->ino, 0, "x", false));
  v->Release(f->ino);
  auto after_create = v->GetAttr(d->ino);
  ASSERT_OK(after_create);
  EXPECT_GT(after_create->mtime_ns, before->mtime_ns);
  EXPECT_EQ(after_create->mode, static_cast<uint32_t>(S_IFDIR | 0750));
  ASSERT_OK(v->Link(f->ino, d->ino, "g"));
  ASSERT_OK(v->Mkdir(d->ino, "sub", 0755, {0, 0}));
  auto after_mkdir = v->GetAttr(d->ino);
  ASSERT_OK(after_mkdir);
  EXPECT_EQ(after_mkdir->nlink, 3u) << "a subdirectory's '..'";
  ASSERT_OK(v->Unlink(d->ino, "g"));
  ASSERT_OK(v->Rmdir(d->ino, "sub"));
  auto after_rmdir = v->GetAttr(d->ino);
  ASSERT_OK(after_rmdir);
  EXPECT_EQ(after_rmdir->nlink, 2u);
  EXPECT_GE(after_rmdir->mtime_ns, after_create->mtime_ns);
  EXPECT_EQ(getattrs(), start) << "every GetAttr of the directory was answered from a reply";
  // What a brick answers agrees with what the replies said.
  std::this_thread::sleep_for(std::chrono::milliseconds(5100));
  auto asked = v->GetAttr(d->ino);
  ASSERT_OK(asked);
  EXPECT_EQ(getattrs(), start + 1) << "older than dir_attr_cache_timeout: asked";
  EXPECT_EQ(asked->mtime_ns, after_rmdir->mtime_ns);
  EXPECT_EQ(asked->nlink, after_rmdir->nlink);
  EXPECT_EQ(asked->mode, after_rmdir->mode);

  // With the cache off, every GetAttr asks.
  client::Options o;
  o.dir_attr_cache_timeout = std::chrono::milliseconds(0);
  auto strict = cluster_->OpenVolume(o);
  ASSERT_OK(strict);
  auto sd = (*strict)->Lookup(kRootIno, "d");
  ASSERT_OK(sd);
  auto nf = (*strict)->Create(sd->ino, "h", 0644, {0, 0});
  ASSERT_OK(nf);
  (*strict)->Release(nf->ino);
  const int64_t strict_start = getattrs();
  ASSERT_OK((*strict)->GetAttr(sd->ino));
  EXPECT_EQ(getattrs(), strict_start + 1);
}

TEST_F(ClientTest, TwoBricksDownRefusesWritesButServesReads) {
  Start({.nodes = 3, .replica = 3});
  client::Ino keep = Put("keep", "unchanged");
  auto f = vol_->Create(kRootIno, "w", 0644, {0, 0});
  ASSERT_OK(f);
  ASSERT_OK(vol_->Write(f->ino, 0, "before", false));
  ASSERT_OK(cluster_->node(1).Kill(SIGKILL));
  ASSERT_OK(cluster_->node(2).Kill(SIGKILL));
  auto w = vol_->Write(f->ino, 0, "during", false);
  ASSERT_FALSE(w.ok());
  EXPECT_TRUE(w.status().posix_errno() == EROFS || w.status().posix_errno() == EIO)
      << w.status().ToString();
  EXPECT_ERRNO(vol_->Create(kRootIno, "new", 0644, {0, 0}), EROFS);
  EXPECT_EQ(Get(keep), "unchanged");
  // Both come back: writes work again and reach all three.
  ASSERT_OK(cluster_->RestartNode(1));
  ASSERT_OK(cluster_->RestartNode(2));
  bool back = false;
  for (int i = 0; i < 150 && !back; ++i) {  // up to 15 s: reconnects are slower under load
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    auto h = vol_->Health();
    back = h[1].connected && h[2].connected;
  }
  ASSERT_TRUE(back);
  Put("later", "works");
  for (int r = 0; r < 3; ++r) EXPECT_EQ(BrickFile(*cluster_, 0, r, "later"), "works");
  EXPECT_EQ(Get(keep), "unchanged");
}

TEST_F(ClientTest, DistributeReplicateSpreadsFilesAndRenamesAcrossSubvolumes) {
  Start({.nodes = 3, .subvolumes = 2, .replica = 3});
  ASSERT_OK(vol_->Mkdir(kRootIno, "a", 0755, {0, 0}));
  ASSERT_OK(vol_->Mkdir(kRootIno, "b", 0755, {0, 0}));
  client::Ino a = vol_->Lookup(kRootIno, "a")->ino;
  client::Ino b = vol_->Lookup(kRootIno, "b")->ino;
  // Directories exist on both subvolumes.
  for (int s = 0; s < 2; ++s) EXPECT_TRUE(BrickHas(*cluster_, s, 0, "a")) << s;
  const int n = 200;
  for (int i = 0; i < n; ++i) Put("f" + std::to_string(i), "data" + std::to_string(i), a);
  int on0 = 0, on1 = 0;
  for (int i = 0; i < n; ++i) {
    bool h0 = BrickHas(*cluster_, 0, 0, "a/f" + std::to_string(i));
    bool h1 = BrickHas(*cluster_, 1, 0, "a/f" + std::to_string(i));
    EXPECT_NE(h0, h1) << i;
    on0 += h0;
    on1 += h1;
  }
  EXPECT_GT(on0, n / 4);
  EXPECT_GT(on1, n / 4);
  // Renames to other names and directories: every file still reads right.
  for (int i = 0; i < n; ++i) {
    ASSERT_OK(vol_->Rename(a, "f" + std::to_string(i), b, "g" + std::to_string(i * 7), 0));
  }
  auto list = vol_->ReadDir(b, true);
  ASSERT_OK(list);
  EXPECT_EQ(list->size(), static_cast<size_t>(n));
  std::set<std::string> names;
  for (auto& e : *list) names.insert(e.name);
  EXPECT_EQ(names.size(), static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    auto e = vol_->Lookup(b, "g" + std::to_string(i * 7));
    ASSERT_OK(e);
    EXPECT_EQ(Get(e->ino), "data" + std::to_string(i));
    vol_->Forget(e->ino, 1);
  }
  // Rename over a file that lives on the other subvolume replaces it.
  Put("t1", "one", a);
  Put("t2", "two", a);
  ASSERT_OK(vol_->Rename(a, "t1", a, "t2", 0));
  EXPECT_EQ(Get(vol_->Lookup(a, "t2")->ino), "one");
  EXPECT_ERRNO(vol_->Lookup(a, "t1"), ENOENT);
  EXPECT_EQ(vol_->ReadDir(a, false)->size(), 1u);
  for (int i = 0; i < n; ++i) ASSERT_OK(vol_->Unlink(b, "g" + std::to_string(i * 7)));
  EXPECT_TRUE(vol_->ReadDir(b, false)->empty());
  ASSERT_OK(vol_->Unlink(a, "t2"));
  ASSERT_OK(vol_->Rmdir(kRootIno, "b"));
  for (int s = 0; s < 2; ++s) EXPECT_FALSE(BrickHas(*cluster_, s, 0, "b")) << s;
}

TEST_F(ClientTest, ArbiterKeepsNamesAndVersionsButNoData) {
  Start({.nodes = 3, .replica = 3, .arbiter = 1});
  const std::string data = Pattern(1 << 20, 7);
  client::Ino f = Put("f", data);
  EXPECT_EQ(BrickFile(*cluster_, 0, 0, "f"), data);
  EXPECT_EQ(BrickFile(*cluster_, 0, 1, "f"), data);
  EXPECT_TRUE(BrickHas(*cluster_, 0, 2, "f"));
  EXPECT_EQ(BrickFile(*cluster_, 0, 2, "f"), "");
  EXPECT_EQ(vol_->GetAttr(f)->size, data.size());
  ASSERT_OK(vol_->Fallocate(f, 0, 0, 4 << 20));
  struct stat st;
  ASSERT_EQ(::stat((cluster_->brick_path(0, 2) + "/f").c_str(), &st), 0);
  EXPECT_LT(st.st_blocks, 64);  // an xattr block at most, none of the 4 MiB
  // One data brick down: the other data brick plus the arbiter make quorum.
  ASSERT_OK(cluster_->node(1).Kill(SIGKILL));
  ASSERT_OK(vol_->Write(f, 0, "new", false));
  std::string want = data;
  want.replace(0, 3, "new");
  want.resize(4 << 20, '\0');
  EXPECT_EQ(Get(f), want);
  // Data brick 0 down too: only the arbiter is left, no quorum for anything.
  ASSERT_OK(cluster_->node(0).Kill(SIGKILL));
  EXPECT_ERRNO(vol_->Write(f, 0, "x", false), EROFS);
}

TEST_F(ClientTest, OpenFailsClearlyForUnreachableBricksAndWrongToken) {
  Start({.nodes = 3, .replica = 3});
  vol_.reset();
  client::VolumeSpec bad = cluster_->spec();
  for (auto& b : bad.subvolumes[0]) b.node = "127.0.0.9:1";
  client::Options o;
  o.connect_timeout = std::chrono::milliseconds(500);
  auto v = Volume::Open(bad, o);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(v.status().message().find("127.0.0.9:1"), std::string::npos) << v.status().message();
  o.token = "wrong";
  auto w = Volume::Open(cluster_->spec(), o);
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.status().code(), StatusCode::kPermissionDenied) << w.status().ToString();
}

}  // namespace
}  // namespace cairn::test
