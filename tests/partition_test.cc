// A network partition of a 3-node replica-3 volume, with real network
// namespaces: every node (storaged + brickd) runs in its own namespace, the
// namespaces are joined by veth pairs to a bridge the test creates (and
// removes, also on failure: tests/netns_util.h). One FUSE client runs on the
// majority side (node 0's namespace), one on the minority side (node 2's).
// While node 2 is cut off the minority client cannot write (EROFS) and the
// majority client goes on; after the partition heals, heal completes with no
// split-brain, every brick is identical and no acknowledged write is lost —
// including the file both sides wrote, where the minority's failed write
// reached its own brick only.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <thread>

#include "tests/brick_snapshot.h"
#include "tests/file_util.h"
#include "tests/netns_util.h"
#include "tests/node_cluster.h"

namespace cairn::test {
namespace {

// Writes `data` at offset 0 of an existing file (no truncate) and fsyncs.
int OverwriteSynced(const std::string& path, const std::string& data) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  int err = 0;
  if (::pwrite(fd, data.data(), data.size(), 0) != static_cast<ssize_t>(data.size())) err = errno;
  if (err == 0 && ::fsync(fd) != 0) err = errno;
  if (::close(fd) != 0 && err == 0) err = errno;
  return err;
}

int WriteWholeFileSynced(const std::string& path, const std::string& data) {
  return WriteWholeFile(path, data, /*fsync=*/true);
}

using namespace std::chrono_literals;

// What a read returned, for failure messages: which of the test's
// patterns it is (64 KiB writes use seeds 100, 101 and 666..671).
std::string Identify(const std::string& got, const std::string& want) {
  if (got == want) return "as expected";
  std::string out = std::to_string(got.size()) + " bytes";
  for (uint64_t seed : {100, 101, 666, 667, 668, 669, 670, 671}) {
    std::string with_head = Pattern(64 << 10, seed);
    with_head.replace(0, 4096, Pattern(4096, 102));
    if (got == with_head) {
      return out + ", the pattern of seed " + std::to_string(seed) + " under the new head";
    }
    if (got == Pattern(64 << 10, seed))
      return out + ", the pattern of seed " + std::to_string(seed);
  }
  return out + ", no known pattern";
}

uint64_t Pending(const spb::HealInfoReply& r) {
  uint64_t n = 0;
  for (const auto& b : r.bricks()) n += b.pending();
  return n;
}

std::string Show(const spb::HealInfoReply& r) {
  std::ostringstream o;
  for (const auto& b : r.bricks()) {
    o << b.brick_id() << (b.connected() ? "" : "(down)") << " pending=" << b.pending() << "; ";
  }
  o << "healed=" << r.healed_objects() << " bytes=" << r.healed_bytes()
    << " split_brain=" << r.split_brain_size();
  for (const auto& sb : r.split_brain()) o << " [" << sb.id() << " " << sb.kind() << "]";
  return o.str();
}

TEST(PartitionTest, MinorityCannotWriteMajorityGoesOnNoSplitBrainAfter) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root (network namespaces, FUSE)";
  auto net = NetnsTopology::Create(3);
  ASSERT_TRUE(net.ok()) << net.status().ToString();
  NetnsTopology& topo = **net;

  NodeClusterOptions o;
  o.nodes = 3;
  o.replica = 3;
  o.name = "partvol";
  o.log_level = "info";
  for (int i = 0; i < 3; ++i) o.hosts.push_back(topo.address(i));
  o.wrap = [&topo](int node, const std::vector<std::string>& argv) {
    return topo.Wrap(node, argv);
  };
  auto c = NodeCluster::Start(o);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  NodeCluster& cluster = **c;

  // Short timeouts: a peer behind the partition answers nothing at all.
  MountOptions mo;
  mo.attr_timeout_s = 0.1;
  mo.entry_timeout_s = 0.1;
  mo.extra_options = {"rpc_timeout=3", "connect_timeout=3"};
  auto majority = cluster.Mount(mo, "", /*in_node=*/0);
  ASSERT_TRUE(majority.ok()) << majority.status().ToString();
  auto minority = cluster.Mount(mo, "", /*in_node=*/2);
  ASSERT_TRUE(minority.ok()) << minority.status().ToString();
  SourceMount& A = **majority;
  SourceMount& B = **minority;

  std::map<std::string, std::string> acked;
  ASSERT_EQ(::mkdir(A.Path("dir").c_str(), 0755), 0);
  for (int i = 0; i < 10; ++i) {
    const std::string rel = "dir/f" + std::to_string(i);
    acked[rel] = Pattern(32 << 10, i);
    ASSERT_EQ(WriteWholeFileSynced(A.Path(rel), acked[rel]), 0);
  }
  acked["shared"] = Pattern(64 << 10, 100);
  ASSERT_EQ(WriteWholeFileSynced(A.Path("shared"), acked["shared"]), 0);
  {
    int err = 0;
    EXPECT_EQ(ReadWholeFile(B.Path("shared"), &err), acked["shared"]) << std::strerror(err);
  }

  ASSERT_TRUE(topo.Isolate(2).ok());

  // The minority side: every write fails, with EROFS (the first one after
  // the bricks' deadline, the next ones at once). Its first write to
  // "shared" may reach node 2's own brick — unacknowledged, it must not win.
  int minority_ok = 0, minority_erofs = 0, minority_other = 0;
  std::string other;
  auto minority_try = [&](const std::string& rel, const std::string& data) {
    int fd = ::open(B.Path(rel).c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    int err = fd < 0 ? errno : 0;
    if (fd >= 0) {
      if (::pwrite(fd, data.data(), data.size(), 0) != static_cast<ssize_t>(data.size())) {
        err = errno;
      }
      ::close(fd);
    }
    if (err == 0) {
      ++minority_ok;
    } else if (err == EROFS) {
      ++minority_erofs;
    } else {
      ++minority_other;
      other += rel + ": " + std::strerror(err) + "; ";
    }
  };
  const auto t0 = std::chrono::steady_clock::now();
  minority_try("shared", Pattern(64 << 10, 666));
  const double first_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (int i = 0; i < 5; ++i) {
    minority_try("shared", Pattern(64 << 10, 667 + i));
    minority_try("minority-" + std::to_string(i), Pattern(4096, 700 + i));
  }
  std::cerr << "minority: first write failed after " << first_s << " s; " << minority_erofs
            << " EROFS, " << minority_other << " other, " << minority_ok << " succeeded\n";
  EXPECT_EQ(minority_ok, 0);
  EXPECT_EQ(minority_other, 0) << other;
  EXPECT_EQ(minority_erofs, 11);

  // The majority side goes on: rewrites "shared" once (the same version
  // count as the minority's failed write on node 2), writes new files.
  // One write, no truncate: "shared" then has the same version counters on
  // the majority's bricks as on node 2's (which applied the minority's
  // failed write), but not the same mutations (brick.proto Version.tag).
  acked["shared"] = Pattern(64 << 10, 101);
  ASSERT_EQ(OverwriteSynced(A.Path("shared"), acked["shared"]), 0);
  for (int i = 0; i < 30; ++i) {
    const std::string rel = "dir/new" + std::to_string(i);
    acked[rel] = Pattern(8192 + i, 200 + i);
    ASSERT_EQ(WriteWholeFileSynced(A.Path(rel), acked[rel]), 0) << rel;
  }
  ASSERT_EQ(::rename(A.Path("dir/f0").c_str(), A.Path("dir/f0-renamed").c_str()), 0);
  acked["dir/f0-renamed"] = acked["dir/f0"];
  acked.erase("dir/f0");
  ASSERT_EQ(::unlink(A.Path("dir/f1").c_str()), 0);
  acked.erase("dir/f1");

  ASSERT_TRUE(topo.Rejoin(2).ok());
  // Once node 2 is reachable again, the majority writes "shared" once more,
  // on all three bricks: their counters now agree everywhere, and only the
  // tags tell that node 2's copy holds another history. The client must not
  // clear the marks; heal must compare and let the majority's copy win.
  std::this_thread::sleep_for(1500ms);
  const std::string head = Pattern(4096, 102);
  acked["shared"].replace(0, head.size(), head);
  ASSERT_EQ(OverwriteSynced(A.Path("shared"), head), 0);

  // Heal completes on its own, with no split-brain.
  spb::HealInfoReply last;
  bool healed = false;
  int clean = 0;
  const auto deadline = std::chrono::steady_clock::now() + 120s;
  while (std::chrono::steady_clock::now() < deadline) {
    spb::HealInfoRequest req;
    req.set_volume("partvol");
    auto r = cluster.client(0).Call(&spb::Storaged::Stub::HealInfo, req, {}, 10s);
    if (r.ok()) {
      last = *r;
      EXPECT_EQ(r->split_brain_size(), 0) << Show(*r);
      bool up = true;
      for (const auto& b : r->bricks()) up = up && b.connected();
      if (up && Pending(*r) == 0) {
        if (++clean == 2) {
          healed = true;
          break;
        }
      } else {
        clean = 0;
      }
    }
    std::this_thread::sleep_for(200ms);
  }
  std::cerr << "heal info: " << Show(last) << "\n";
  ASSERT_TRUE(healed) << Show(last);

  BrickSnapshot b0 = TakeBrickSnapshot(cluster.brick_path(0, 0));
  for (int r = 1; r < 3; ++r) {
    EXPECT_EQ(DiffBrickSnapshots(b0, TakeBrickSnapshot(cluster.brick_path(0, r))), "")
        << "replica 0 vs replica " << r;
  }

  // No acknowledged write is lost, seen from both sides; nothing of the
  // minority's failed writes is left.
  DropCaches();
  for (SourceMount* m : {&A, &B}) {
    for (const auto& [rel, data] : acked) {
      int err = 0;
      const std::string got = ReadWholeFile(m->Path(rel), &err);
      EXPECT_TRUE(got == data) << rel << " via the " << (m == &A ? "majority" : "minority")
                               << " mount: " << Identify(got, data)
                               << (err ? std::string(": ") + std::strerror(err) : "");
    }
    for (int i = 0; i < 5; ++i) {
      EXPECT_FALSE(std::filesystem::exists(m->Path("minority-" + std::to_string(i))));
    }
  }
}

}  // namespace
}  // namespace cairn::test
