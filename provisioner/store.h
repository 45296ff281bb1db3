// The provisioner's state: SQLite (WAL, synchronous=FULL), schema versioned
// with PRAGMA user_version and migrated at open. One connection, serialized by
// a mutex; `Tx` runs several calls as one transaction (BEGIN IMMEDIATE).
//
//   auto store = Store::Open("/var/lib/cairn/provisioner.db");
//   Status s = (*store)->Tx([&] { ... inserts ...; return Status::Ok(); });
//
// Sizes are KiB for devices and bricks, GiB for volumes (Heketi's units).
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace cairn::provisioner {

struct ClusterRow {
  std::string id;
  bool file = true;
  bool block = false;
};

struct NodeRow {
  std::string id;
  std::string cluster_id;
  std::string name;     // storaged's node name (unique)
  std::string manage;   // storaged API, host:port
  std::string storage;  // host clients reach the bricks at
  std::string brickd;   // brickd data address (host:port), from GetNode
  int zone = 1;
  std::string state = "online";  // online | offline | failed
  nlohmann::json tags = nlohmann::json::object();
};

struct DeviceRow {
  std::string id;
  std::string node_id;
  std::string name;         // the directory on the node
  std::string storaged_id;  // the device id inside storaged
  uint64_t total_kib = 0;
  std::string state = "online";
  nlohmann::json tags = nlohmann::json::object();
};

struct VolumeRow {
  std::string id;
  std::string name;
  std::string cluster_id;
  uint64_t size_gib = 0;
  uint64_t created_gib = 0;  // the size it was created with
  int replica = 3;
  bool arbiter = false;
  std::string state;  // creating | ready | expanding | deleting
  uint64_t generation = 1;
  int64_t created_ms = 0;
  // The zones its bricks may go to (create and expansion); empty: any.
  std::vector<int> zones = {};
};

struct BrickRow {
  std::string id;
  std::string volume_id;
  std::string device_id;
  std::string node_id;
  uint64_t size_kib = 0;
  int subvolume = 0;
  int position = 0;
  bool arbiter = false;
};

// An operation: the journal entry of a multi-step change and the queue item
// clients poll.
struct OpRow {
  std::string id;
  std::string kind;    // volume.create | volume.delete | volume.expand | node.add | ...
  std::string target;  // the id of the object it acts on
  std::string state;   // pending | done | failed
  std::string result;  // on done: the Location to redirect to ("" → 204)
  std::string error;   // on failed
  nlohmann::json payload = nlohmann::json::object();
  int64_t created_ms = 0;
  int64_t finished_ms = 0;
};

class Store {
 public:
  static constexpr int kSchemaVersion = 3;

  // Opens (creating) the database and migrates it. A database whose schema
  // is newer than this binary is refused (FailedPrecondition).
  static StatusOr<std::unique_ptr<Store>> Open(const std::string& path);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Runs `fn` in one transaction: committed if it returns ok, rolled back
  // otherwise. Nests (inner calls join the outer transaction).
  Status Tx(const std::function<Status()>& fn);

  // Clusters.
  Status InsertCluster(const ClusterRow& c);
  StatusOr<ClusterRow> GetCluster(const std::string& id);
  StatusOr<std::vector<ClusterRow>> ListClusters();
  Status UpdateCluster(const ClusterRow& c);
  Status DeleteCluster(const std::string& id);

  // Nodes.
  Status InsertNode(const NodeRow& n);
  Status UpdateNode(const NodeRow& n);
  StatusOr<NodeRow> GetNode(const std::string& id);
  StatusOr<std::optional<NodeRow>> FindNodeByName(const std::string& name);
  StatusOr<std::optional<NodeRow>> FindNodeByManage(const std::string& manage);
  // All nodes, or those of one cluster.
  StatusOr<std::vector<NodeRow>> ListNodes(const std::string& cluster_id = "");
  Status DeleteNode(const std::string& id);

  // Devices.
  Status InsertDevice(const DeviceRow& d);
  Status UpdateDevice(const DeviceRow& d);
  StatusOr<DeviceRow> GetDevice(const std::string& id);
  StatusOr<std::vector<DeviceRow>> ListDevices(const std::string& node_id = "");
  Status DeleteDevice(const std::string& id);
  // KiB given to bricks on the device (kept by triggers on bricks).
  StatusOr<uint64_t> DeviceAllocatedKib(const std::string& device_id);

  // Volumes and bricks.
  Status InsertVolume(const VolumeRow& v);
  Status UpdateVolume(const VolumeRow& v);
  StatusOr<VolumeRow> GetVolume(const std::string& id);
  StatusOr<std::optional<VolumeRow>> FindVolumeByName(const std::string& name);
  StatusOr<std::vector<VolumeRow>> ListVolumes(const std::string& cluster_id = "");
  // Deletes the volume and its bricks.
  Status DeleteVolume(const std::string& id);
  Status InsertBrick(const BrickRow& b);
  Status UpdateBrick(const BrickRow& b);
  Status DeleteBrick(const std::string& id);
  // A volume's bricks by (subvolume, position); "" for every brick.
  StatusOr<std::vector<BrickRow>> ListBricks(const std::string& volume_id = "");
  StatusOr<std::vector<BrickRow>> ListBricksOnDevice(const std::string& device_id);

  // Operations.
  Status InsertOp(const OpRow& op);
  Status UpdateOp(const OpRow& op);
  StatusOr<OpRow> GetOp(const std::string& id);
  StatusOr<std::vector<OpRow>> ListOps(const std::string& state);
  // The pending op acting on `target`, if any.
  StatusOr<std::optional<OpRow>> PendingOpFor(const std::string& target);
  // Forgets finished ops older than `before_ms`.
  Status PruneOps(int64_t before_ms);

 private:
  explicit Store(sqlite3* db) : db_(db) {}
  Status Migrate();
  Status Exec(const std::string& sql);
  sqlite3* db_;
  std::recursive_mutex mu_;
  int tx_depth_ = 0;
};

// A new 32-hex-character id (Heketi's format).
std::string NewId();
int64_t NowMs();

}  // namespace cairn::provisioner
