// The store's allocation bookkeeping: devices' allocated KiB kept by triggers
// on bricks, and the migration that adds it to an existing database.
#include "provisioner/store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include "tests/test_util.h"

namespace cairn::provisioner {
namespace {

constexpr uint64_t kGib = 1024 * 1024;  // in KiB

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override { Open(); }

  void Open() {
    auto s = Store::Open(dir_.Sub("p.db"));
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
  }

  // A cluster, a node with devices d1 and d2 and an empty volume v.
  void Populate() {
    ClusterRow c{"c1", true, false};
    ASSERT_TRUE(store_->InsertCluster(c).ok());
    NodeRow n;
    n.id = "n1";
    n.cluster_id = "c1";
    n.name = "node1";
    n.manage = "127.0.0.2:1";
    n.storage = "127.0.0.2";
    n.brickd = "127.0.0.2:2";
    ASSERT_TRUE(store_->InsertNode(n).ok());
    for (const char* id : {"d1", "d2"}) {
      DeviceRow d;
      d.id = id;
      d.node_id = "n1";
      d.name = std::string("/dev/") + id;
      d.storaged_id = id;
      d.total_kib = 100 * kGib;
      ASSERT_TRUE(store_->InsertDevice(d).ok());
    }
    VolumeRow v;
    v.id = "v";
    v.name = "vol";
    v.cluster_id = "c1";
    v.size_gib = v.created_gib = 1;
    v.state = "ready";
    ASSERT_TRUE(store_->InsertVolume(v).ok());
  }

  BrickRow Brick(const std::string& id, const std::string& device, uint64_t kib) {
    BrickRow b;
    b.id = id;
    b.volume_id = "v";
    b.device_id = device;
    b.node_id = "n1";
    b.size_kib = kib;
    return b;
  }

  uint64_t Allocated(const std::string& device) {
    auto a = store_->DeviceAllocatedKib(device);
    EXPECT_TRUE(a.ok()) << a.status().ToString();
    return a.ok() ? *a : ~uint64_t{0};
  }

  test::TempDir dir_{"cairn-store"};
  std::unique_ptr<Store> store_;
};

TEST_F(StoreTest, AllocatedKibFollowsEveryBrickChange) {
  Populate();
  EXPECT_EQ(Allocated("d1"), 0u);
  EXPECT_EQ(Allocated("nodev"), 0u);
  ASSERT_TRUE(store_->InsertBrick(Brick("b1", "d1", 1 * kGib)).ok());
  ASSERT_TRUE(store_->InsertBrick(Brick("b2", "d1", 2 * kGib)).ok());
  ASSERT_TRUE(store_->InsertBrick(Brick("b3", "d2", 4 * kGib)).ok());
  EXPECT_EQ(Allocated("d1"), 3 * kGib);
  EXPECT_EQ(Allocated("d2"), 4 * kGib);
  // A rolled-back transaction leaves no trace.
  Status failed = store_->Tx([&] {
    EXPECT_TRUE(store_->InsertBrick(Brick("b4", "d1", 8 * kGib)).ok());
    return Status::Internal("roll back");
  });
  EXPECT_FALSE(failed.ok());
  EXPECT_EQ(Allocated("d1"), 3 * kGib);
  // Resized, then moved to the other device.
  ASSERT_TRUE(store_->UpdateBrick(Brick("b2", "d1", 5 * kGib)).ok());
  EXPECT_EQ(Allocated("d1"), 6 * kGib);
  ASSERT_TRUE(store_->UpdateBrick(Brick("b2", "d2", 5 * kGib)).ok());
  EXPECT_EQ(Allocated("d1"), 1 * kGib);
  EXPECT_EQ(Allocated("d2"), 9 * kGib);
  ASSERT_TRUE(store_->DeleteBrick("b3").ok());
  EXPECT_EQ(Allocated("d2"), 5 * kGib);
  // Survives a reopen; deleting the volume frees what its bricks held.
  store_.reset();
  Open();
  EXPECT_EQ(Allocated("d1"), 1 * kGib);
  EXPECT_EQ(Allocated("d2"), 5 * kGib);
  ASSERT_TRUE(store_->DeleteVolume("v").ok());
  EXPECT_EQ(Allocated("d1"), 0u);
  EXPECT_EQ(Allocated("d2"), 0u);
}

// A database of schema 2 (no allocated_kib, no triggers) gets the column
// filled from its bricks when opened.
TEST_F(StoreTest, MigrationFillsAllocatedKibOfAnExistingDatabase) {
  Populate();
  ASSERT_TRUE(store_->InsertBrick(Brick("b1", "d1", 1 * kGib)).ok());
  ASSERT_TRUE(store_->InsertBrick(Brick("b2", "d1", 2 * kGib)).ok());
  ASSERT_TRUE(store_->InsertBrick(Brick("b3", "d2", 4 * kGib)).ok());
  store_.reset();
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(dir_.Sub("p.db").c_str(), &db), SQLITE_OK);
  char* err = nullptr;
  int rc = sqlite3_exec(db,
                        "DROP TRIGGER bricks_allocate; DROP TRIGGER bricks_free;"
                        "DROP TRIGGER bricks_reallocate;"
                        "ALTER TABLE devices DROP COLUMN allocated_kib;"
                        "PRAGMA user_version=2;",
                        nullptr, nullptr, &err);
  EXPECT_EQ(rc, SQLITE_OK) << (err ? err : "");
  sqlite3_free(err);
  sqlite3_close(db);
  Open();
  EXPECT_EQ(Allocated("d1"), 3 * kGib);
  EXPECT_EQ(Allocated("d2"), 4 * kGib);
  ASSERT_TRUE(store_->InsertBrick(Brick("b5", "d2", 1 * kGib)).ok());
  EXPECT_EQ(Allocated("d2"), 5 * kGib);
}

}  // namespace
}  // namespace cairn::provisioner
