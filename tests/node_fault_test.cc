// Whole-node faults on a 3-node storaged cluster (nodes on 127.0.0.2-4, each
// with its own state directory), through a real FUSE mount of a replica-3
// volume fetched from storaged: a node (storaged + brickd) killed with SIGKILL
// in the middle of a write workload and restarted; files and directories
// created, renamed and deleted while a node is down; a storaged restart that
// must keep its pending heals. In every case heal must complete with no one
// asking (no StartHeal call), heal info must reach 0 and every brick must end
// byte-identical, with identical metadata (tests/brick_snapshot.h).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <thread>

#include "tests/brick_snapshot.h"
#include "tests/file_util.h"
#include "tests/node_cluster.h"

namespace cairn::test {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

class NodeFaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    NodeClusterOptions o;
    o.nodes = 3;
    o.replica = 3;
    o.name = "faultvol";
    o.log_level = getenv("CAIRN_TEST_LOG") ? getenv("CAIRN_TEST_LOG") : "info";
    o.brick_capacity = 4ull << 30;
    auto c = NodeCluster::Start(o);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    cluster_ = std::move(*c);
    MountOptions mo;
    // Short attribute caching: the test reads through the mount after heal.
    mo.attr_timeout_s = 0.1;
    mo.entry_timeout_s = 0.1;
    auto m = cluster_->Mount(mo);
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    mount_ = std::move(*m);
  }
  void TearDown() override {
    if (HasFailure() && cluster_ != nullptr) {
      for (int i = 0; i < cluster_->nodes(); ++i) {
        std::string log = cluster_->Log(i);
        if (log.size() > 6000) log = log.substr(log.size() - 6000);
        std::cerr << "---- node " << i << " log tail:\n" << log << "\n";
      }
      if (mount_ != nullptr) {
        std::string log = mount_->Log();
        if (log.size() > 4000) log = log.substr(log.size() - 4000);
        std::cerr << "---- mount log tail:\n" << log << "\n";
      }
    }
    mount_.reset();
    cluster_.reset();
  }

  // Heal info of the volume as node i's storaged reports it.
  StatusOr<spb::HealInfoReply> Info(int i) {
    spb::HealInfoRequest req;
    req.set_volume(cluster_->spec().name);
    return cluster_->client(i).Call(&spb::Storaged::Stub::HealInfo, req, {}, 10s);
  }
  static uint64_t Pending(const spb::HealInfoReply& r) {
    uint64_t n = 0;
    for (const auto& b : r.bricks()) n += b.pending();
    return n;
  }
  static std::string Show(const spb::HealInfoReply& r) {
    std::ostringstream o;
    for (const auto& b : r.bricks()) {
      o << b.brick_id() << (b.connected() ? "" : "(down)") << " pending=" << b.pending() << "; ";
    }
    o << "healed=" << r.healed_objects() << " bytes=" << r.healed_bytes()
      << " peer_copied=" << r.peer_copied_bytes() << " split_brain=" << r.split_brain_size()
      << " errors=" << r.errors();
    return o.str();
  }

  // Waits until node i's heal info shows every brick connected with nothing
  // pending, twice in a row (a pass may be between two polls). Returns the
  // last reply; fails the test on timeout.
  spb::HealInfoReply WaitHealed(int i, std::chrono::seconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    spb::HealInfoReply last;
    int clean = 0;
    while (std::chrono::steady_clock::now() < deadline) {
      auto r = Info(i);
      if (r.ok()) {
        last = *r;
        bool all_up = true;
        for (const auto& b : r->bricks()) all_up = all_up && b.connected();
        if (all_up && Pending(*r) == 0 && r->split_brain_size() == 0) {
          if (++clean == 2) return last;
        } else {
          clean = 0;
        }
      }
      std::this_thread::sleep_for(200ms);
    }
    ADD_FAILURE() << "heal did not complete within " << timeout.count() << " s: " << Show(last);
    return last;
  }

  // Every brick of the volume holds the same tree: names, types, sizes,
  // contents (SHA-256), mode, owner, times (1 s slack: replicas apply a
  // client's mutation on their own clocks), xattrs, versions and ids.
  void ExpectBricksIdentical() {
    const auto& spec = cluster_->spec();
    for (size_t s = 0; s < spec.subvolumes.size(); ++s) {
      BrickSnapshot first = TakeBrickSnapshot(cluster_->brick_path(static_cast<int>(s), 0));
      EXPECT_GT(first.size(), 0u);
      for (size_t r = 1; r < spec.subvolumes[s].size(); ++r) {
        BrickSnapshot other =
            TakeBrickSnapshot(cluster_->brick_path(static_cast<int>(s), static_cast<int>(r)));
        EXPECT_EQ(DiffBrickSnapshots(first, other), "")
            << "subvolume " << s << ": replica 0 vs replica " << r;
      }
    }
  }

  std::unique_ptr<NodeCluster> cluster_;
  std::unique_ptr<SourceMount> mount_;
};

// A node dies (storaged and brickd, SIGKILL) while clients write: new files
// of several sizes, appends to a log, rewrites of existing files, new
// directories. The writers carry on with two of three bricks; the node comes
// back while they still write. Heal completes on its own; no acknowledged
// write is lost; all replicas end identical.
TEST_F(NodeFaultTest, WholeNodeKilledDuringWritesHealsWithoutRequest) {
  std::mutex mu;
  std::map<std::string, std::string> acked;  // path relative to the mount → contents
  std::atomic<bool> stop{false};
  std::atomic<int> errors{0};
  std::atomic<int> writes{0};
  std::string first_error;
  auto note_error = [&](const std::string& what, int err) {
    std::lock_guard l(mu);
    if (errors++ == 0) first_error = what + ": " + std::strerror(err);
  };
  // Seed: files that exist before the fault, rewritten during it.
  for (int i = 0; i < 20; ++i) {
    const std::string rel = "seed-" + std::to_string(i);
    const std::string data = Pattern(64 << 10, 1000 + i);
    ASSERT_EQ(WriteWholeFile(mount_->Path(rel), data), 0);
    acked[rel] = data;
  }
  auto writer = [&](int w) {
    ASSERT_EQ(::mkdir(mount_->Path("w" + std::to_string(w)).c_str(), 0755), 0);
    uint64_t seq = 0;
    std::string log;
    while (!stop.load()) {
      ++seq;
      const std::string dir = "w" + std::to_string(w) + "/d" + std::to_string(seq % 7);
      if (seq <= 7) {
        if (::mkdir(mount_->Path(dir).c_str(), 0750) != 0) note_error("mkdir " + dir, errno);
      }
      const size_t size = (seq % 5 == 0) ? (1 << 20) + 4097 : 4096 * (1 + seq % 9);
      const std::string rel = dir + "/f" + std::to_string(seq);
      const std::string data = Pattern(size, w * 1000000 + seq);
      if (int err = WriteWholeFile(mount_->Path(rel), data); err != 0) {
        note_error("write " + rel, err);
        continue;
      }
      // Rewrite a seed file now and then (an object that exists on the dead node).
      std::string seed_rel, seed_data;
      if (seq % 4 == 0) {
        seed_rel = "seed-" + std::to_string((w * 7 + seq) % 20);
        seed_data = Pattern(48 << 10, w * 7777 + seq);
        if (int err = WriteWholeFile(mount_->Path(seed_rel), seed_data); err != 0) {
          note_error("rewrite " + seed_rel, err);
          seed_rel.clear();
        }
      }
      // An append-only log: every acknowledged append must survive.
      const std::string line = "w" + std::to_string(w) + " seq " + std::to_string(seq) + "\n";
      int fd = ::open(mount_->Path("w" + std::to_string(w) + "/log").c_str(),
                      O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
      bool log_ok = false;
      if (fd >= 0) {
        log_ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
        if (!log_ok) note_error("append", errno);
        if (::close(fd) != 0) {
          note_error("close log", errno);
          log_ok = false;
        }
      } else {
        note_error("open log", errno);
      }
      if (log_ok) log += line;
      std::lock_guard l(mu);
      acked[rel] = data;
      if (!seed_rel.empty()) acked[seed_rel] = seed_data;
      acked["w" + std::to_string(w) + "/log"] = log;
      ++writes;
    }
  };
  std::thread w1(writer, 1), w2(writer, 2);
  auto wait_writes = [&](int n) {
    const auto deadline = std::chrono::steady_clock::now() + 120s;
    const int target = writes.load() + n;
    while (writes.load() < target && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(20ms);
    }
  };
  wait_writes(40);
  ASSERT_TRUE(cluster_->KillNode(2).ok());
  const int at_kill = writes.load();
  wait_writes(150);
  // Pending heals accumulate on the surviving bricks while node 2 is away.
  auto during = Info(0);
  ASSERT_TRUE(during.ok()) << during.status().ToString();
  EXPECT_GT(Pending(*during), 0u) << Show(*during);
  ASSERT_TRUE(cluster_->StartNode(2).ok());
  wait_writes(60);  // writers carry on while the node returns
  stop = true;
  w1.join();
  w2.join();
  EXPECT_EQ(errors.load(), 0) << first_error;
  std::cerr << "writes: " << at_kill << " before the kill, " << writes.load() << " in all\n";

  // No StartHeal: storaged heals on its own.
  const auto healed = WaitHealed(0, 180s);
  std::cerr << "heal info: " << Show(healed) << "\n";
  EXPECT_GT(healed.healed_objects(), 0u);
  // Data went brick to brick (Brick.CopyFrom), not through storaged.
  EXPECT_GT(healed.peer_copied_bytes(), 0u) << Show(healed);
  EXPECT_EQ(healed.peer_copied_bytes(), healed.healed_bytes()) << Show(healed);
  ExpectBricksIdentical();

  // Every acknowledged write reads back through the mount.
  int bad = 0;
  for (const auto& [rel, data] : acked) {
    int err = 0;
    const std::string got = ReadWholeFile(mount_->Path(rel), &err);
    if (err != 0 || got != data) {
      if (++bad <= 5) {
        ADD_FAILURE() << rel << ": " << (err ? std::strerror(err) : "contents differ") << " ("
                      << got.size() << " bytes, expected " << data.size() << ")";
      }
    }
  }
  EXPECT_EQ(bad, 0) << "of " << acked.size() << " files";
}

// Entry heal: while node 1 is down, files and directories are created,
// renamed (within and across directories, a directory with contents moved
// under another parent), hard-linked, symlinked, chmod-ed, given xattrs and
// deleted. When node 1 returns its brick ends identical to the others.
TEST_F(NodeFaultTest, EntriesChangedWhileNodeDownAreHealed) {
  auto P = [&](const std::string& rel) { return mount_->Path(rel); };
  ASSERT_EQ(::mkdir(P("keep").c_str(), 0755), 0);
  ASSERT_EQ(::mkdir(P("gone").c_str(), 0755), 0);
  ASSERT_EQ(::mkdir(P("moving").c_str(), 0755), 0);
  ASSERT_EQ(::mkdir(P("moving/sub").c_str(), 0755), 0);
  for (int i = 0; i < 10; ++i) {
    ASSERT_EQ(WriteWholeFile(P("moving/sub/f" + std::to_string(i)), Pattern(10000 + i, i)), 0);
    ASSERT_EQ(WriteWholeFile(P("gone/f" + std::to_string(i)), Pattern(5000, 50 + i)), 0);
    ASSERT_EQ(WriteWholeFile(P("keep/old" + std::to_string(i)), Pattern(7000, 70 + i)), 0);
  }
  ASSERT_TRUE(cluster_->KillNode(1).ok());

  // Created.
  ASSERT_EQ(::mkdir(P("new").c_str(), 0700), 0);
  ASSERT_EQ(::mkdir(P("new/deeper").c_str(), 0755), 0);
  for (int i = 0; i < 20; ++i) {
    ASSERT_EQ(
        WriteWholeFile(P("new/deeper/n" + std::to_string(i)), Pattern(3000 + i * 100, 300 + i)), 0);
  }
  ASSERT_EQ(::symlink("deeper/n1", P("new/link").c_str()), 0);
  ASSERT_EQ(::link(P("keep/old0").c_str(), P("new/hard0").c_str()), 0);
  ASSERT_EQ(::mkfifo(P("new/fifo").c_str(), 0600), 0);
  // Renamed: a file within a directory, a file across directories, a
  // directory with contents under another parent.
  ASSERT_EQ(::rename(P("keep/old1").c_str(), P("keep/renamed1").c_str()), 0);
  ASSERT_EQ(::rename(P("keep/old2").c_str(), P("new/moved2").c_str()), 0);
  ASSERT_EQ(::rename(P("moving/sub").c_str(), P("new/sub-moved").c_str()), 0);
  // Replaced by rename over an existing name.
  ASSERT_EQ(::rename(P("keep/old3").c_str(), P("keep/old4").c_str()), 0);
  // Deleted: files and a whole directory tree.
  ASSERT_EQ(::unlink(P("keep/old5").c_str()), 0);
  for (int i = 0; i < 10; ++i) ASSERT_EQ(::unlink(P("gone/f" + std::to_string(i)).c_str()), 0);
  ASSERT_EQ(::rmdir(P("gone").c_str()), 0);
  ASSERT_EQ(::rmdir(P("moving").c_str()), 0);
  // Metadata.
  ASSERT_EQ(::chmod(P("keep/old6").c_str(), 0600), 0);
  ASSERT_EQ(::chown(P("keep/old7").c_str(), 1000, 1000), 0);
  ASSERT_EQ(::setxattr(P("keep/old8").c_str(), "user.color", "blue", 4, 0), 0);
  ASSERT_EQ(::truncate(P("keep/old9").c_str(), 100), 0);

  auto during = Info(0);
  ASSERT_TRUE(during.ok()) << during.status().ToString();
  EXPECT_GT(Pending(*during), 0u) << Show(*during);
  ASSERT_TRUE(cluster_->StartNode(1).ok());
  const auto healed = WaitHealed(0, 120s);
  std::cerr << "heal info: " << Show(healed) << "\n";
  ExpectBricksIdentical();

  // And the brick of node 1 has exactly what the mount shows.
  const std::string b1 = cluster_->brick_path(0, 1);
  EXPECT_FALSE(fs::exists(b1 + "/gone"));
  EXPECT_FALSE(fs::exists(b1 + "/moving"));
  EXPECT_TRUE(fs::is_directory(b1 + "/new/sub-moved"));
  EXPECT_TRUE(fs::exists(b1 + "/new/sub-moved/f9"));
  EXPECT_TRUE(fs::exists(b1 + "/keep/renamed1"));
  EXPECT_FALSE(fs::exists(b1 + "/keep/old1"));
  EXPECT_TRUE(fs::is_symlink(b1 + "/new/link"));
  struct stat a, b;
  ASSERT_EQ(::stat((b1 + "/keep/old0").c_str(), &a), 0);
  ASSERT_EQ(::stat((b1 + "/new/hard0").c_str(), &b), 0);
  EXPECT_EQ(a.st_ino, b.st_ino) << "hard link healed as a copy";
}

// storaged restarts keep pending heals: node 2 is down while writes happen;
// then nodes 0 and 1 are restarted (storaged SIGTERM stops their brickd too,
// so the bricks close and reopen). Heal info still shows the pending entries
// (they live in the bricks' dirty indexes, on disk), and once node 2 is back
// heal completes.
TEST_F(NodeFaultTest, StoragedRestartKeepsPendingHeals) {
  ASSERT_TRUE(cluster_->KillNode(2).ok());
  ASSERT_EQ(::mkdir(mount_->Path("d").c_str(), 0755), 0);
  for (int i = 0; i < 50; ++i) {
    ASSERT_EQ(WriteWholeFile(mount_->Path("d/f" + std::to_string(i)), Pattern(20000, i)), 0);
  }
  auto before = Info(0);
  ASSERT_TRUE(before.ok()) << before.status().ToString();
  const uint64_t pending_before = Pending(*before);
  EXPECT_GE(pending_before, 51u) << Show(*before);

  mount_.reset();  // no client: nothing clears marks behind our back
  for (int i : {0, 1}) {
    auto st = cluster_->StopNode(i);
    ASSERT_TRUE(st.ok()) << st.status().ToString();
    ASSERT_TRUE(cluster_->StartNode(i).ok());
  }
  // The restarted storaged still has its bricks and the spec, and the
  // pending entries are still there (node 2 is still down).
  auto specs = cluster_->client(0).Call(&spb::Storaged::Stub::ListVolumeSpecs,
                                        spb::ListVolumeSpecsRequest());
  ASSERT_TRUE(specs.ok()) << specs.status().ToString();
  EXPECT_EQ(specs->specs_size(), 1);
  spb::HealInfoReply after;
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (std::chrono::steady_clock::now() < deadline) {
    auto r = Info(0);
    if (r.ok() && r->bricks_size() == 3 && r->bricks(0).connected() && r->bricks(1).connected()) {
      after = *r;
      break;
    }
    std::this_thread::sleep_for(200ms);
  }
  EXPECT_GE(Pending(after), pending_before) << Show(after);

  ASSERT_TRUE(cluster_->StartNode(2).ok());
  const auto healed = WaitHealed(0, 120s);
  std::cerr << "heal info: " << Show(healed) << "\n";
  ExpectBricksIdentical();
}

}  // namespace
}  // namespace cairn::test
