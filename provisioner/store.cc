#include "provisioner/store.h"

#include <openssl/rand.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "common/sqlite.h"

namespace cairn::provisioner {

using Stmt = ::cairn::SqlStmt;

namespace {

// Each migration takes the schema from version i to i+1.
const char* const kMigrations[] = {
    R"sql(
CREATE TABLE clusters (
  id TEXT PRIMARY KEY,
  file INTEGER NOT NULL,
  block INTEGER NOT NULL
);
CREATE TABLE nodes (
  id TEXT PRIMARY KEY,
  cluster_id TEXT NOT NULL REFERENCES clusters(id),
  name TEXT NOT NULL UNIQUE,
  manage TEXT NOT NULL UNIQUE,
  storage TEXT NOT NULL,
  brickd TEXT NOT NULL,
  zone INTEGER NOT NULL,
  state TEXT NOT NULL,
  tags TEXT NOT NULL
);
CREATE TABLE devices (
  id TEXT PRIMARY KEY,
  node_id TEXT NOT NULL REFERENCES nodes(id),
  name TEXT NOT NULL,
  storaged_id TEXT NOT NULL,
  total_kib INTEGER NOT NULL,
  state TEXT NOT NULL,
  tags TEXT NOT NULL,
  UNIQUE (node_id, name),
  UNIQUE (node_id, storaged_id)
);
CREATE TABLE volumes (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  cluster_id TEXT NOT NULL REFERENCES clusters(id),
  size_gib INTEGER NOT NULL,
  created_gib INTEGER NOT NULL,
  replica INTEGER NOT NULL,
  arbiter INTEGER NOT NULL,
  state TEXT NOT NULL,
  generation INTEGER NOT NULL,
  created_ms INTEGER NOT NULL
);
CREATE TABLE bricks (
  id TEXT PRIMARY KEY,
  volume_id TEXT NOT NULL REFERENCES volumes(id) ON DELETE CASCADE,
  device_id TEXT NOT NULL REFERENCES devices(id),
  node_id TEXT NOT NULL REFERENCES nodes(id),
  size_kib INTEGER NOT NULL,
  subvolume INTEGER NOT NULL,
  position INTEGER NOT NULL,
  arbiter INTEGER NOT NULL
);
CREATE INDEX bricks_by_volume ON bricks(volume_id);
CREATE INDEX bricks_by_device ON bricks(device_id);
CREATE TABLE ops (
  id TEXT PRIMARY KEY,
  kind TEXT NOT NULL,
  target TEXT NOT NULL,
  state TEXT NOT NULL,
  result TEXT NOT NULL,
  error TEXT NOT NULL,
  payload TEXT NOT NULL,
  created_ms INTEGER NOT NULL,
  finished_ms INTEGER NOT NULL
);
CREATE INDEX ops_by_state ON ops(state);
CREATE INDEX ops_by_target ON ops(target);
)sql",
    // 2: volumes restricted to zones ("1,3"; '' = any zone).
    R"sql(
ALTER TABLE volumes ADD COLUMN zones TEXT NOT NULL DEFAULT '';
)sql",
    // 3: each device's allocated KiB kept by triggers on bricks (placement
    // read a SUM over the device's bricks, which grew with every volume).
    R"sql(
ALTER TABLE devices ADD COLUMN allocated_kib INTEGER NOT NULL DEFAULT 0;
UPDATE devices SET allocated_kib =
  (SELECT COALESCE(SUM(size_kib), 0) FROM bricks WHERE bricks.device_id = devices.id);
CREATE TRIGGER bricks_allocate AFTER INSERT ON bricks BEGIN
  UPDATE devices SET allocated_kib = allocated_kib + NEW.size_kib WHERE id = NEW.device_id;
END;
CREATE TRIGGER bricks_free AFTER DELETE ON bricks BEGIN
  UPDATE devices SET allocated_kib = allocated_kib - OLD.size_kib WHERE id = OLD.device_id;
END;
CREATE TRIGGER bricks_reallocate AFTER UPDATE OF size_kib, device_id ON bricks BEGIN
  UPDATE devices SET allocated_kib = allocated_kib - OLD.size_kib WHERE id = OLD.device_id;
  UPDATE devices SET allocated_kib = allocated_kib + NEW.size_kib WHERE id = NEW.device_id;
END;
)sql",
};
constexpr int kMigrationCount = sizeof(kMigrations) / sizeof(kMigrations[0]);
static_assert(kMigrationCount == Store::kSchemaVersion);

}  // namespace

std::string NewId() {
  unsigned char b[16];
  if (RAND_bytes(b, sizeof(b)) != 1) std::abort();
  static const char* hex = "0123456789abcdef";
  std::string s;
  s.reserve(32);
  for (unsigned char c : b) {
    s.push_back(hex[c >> 4]);
    s.push_back(hex[c & 15]);
  }
  return s;
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

StatusOr<std::unique_ptr<Store>> Store::Open(const std::string& path) {
  sqlite3* db = nullptr;
  int rc =
      sqlite3_open_v2(path.c_str(), &db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return Status::FailedPrecondition("cannot open database " + path + ": " + msg);
  }
  std::unique_ptr<Store> store(new Store(db));
  sqlite3_busy_timeout(db, 5000);
  for (const char* pragma :
       {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL", "PRAGMA foreign_keys=ON"}) {
    Status s = store->Exec(pragma);
    if (!s.ok()) return Status::FailedPrecondition("database " + path + ": " + s.message());
  }
  Status s = store->Migrate();
  if (!s.ok()) return Status(s.code(), "database " + path + ": " + s.message());
  return store;
}

Store::~Store() { sqlite3_close(db_); }

Status Store::Exec(const std::string& sql) {
  char* err = nullptr;
  int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    std::string msg = err ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    return Status::Internal("sqlite: " + msg);
  }
  return Status::Ok();
}

Status Store::Migrate() {
  std::lock_guard l(mu_);
  Stmt q(db_, "PRAGMA user_version");
  auto row = q.Step();
  if (!row.ok()) return row.status();
  const int version = static_cast<int>(q.Int(0));
  if (version > kSchemaVersion) {
    return Status::FailedPrecondition("schema version " + std::to_string(version) +
                                      " is newer than this provisioner's (" +
                                      std::to_string(kSchemaVersion) + "): upgrade it");
  }
  for (int v = version; v < kSchemaVersion; ++v) {
    Status s = Tx([&] {
      CAIRN_RETURN_IF_ERROR(Exec(kMigrations[v]));
      return Exec("PRAGMA user_version=" + std::to_string(v + 1));
    });
    if (!s.ok()) {
      return Status(s.code(), "migration to schema " + std::to_string(v + 1) + ": " + s.message());
    }
  }
  return Status::Ok();
}

Status Store::Tx(const std::function<Status()>& fn) {
  std::lock_guard l(mu_);
  if (tx_depth_ > 0) {
    ++tx_depth_;
    Status s = fn();
    --tx_depth_;
    return s;
  }
  CAIRN_RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
  ++tx_depth_;
  Status s = fn();
  --tx_depth_;
  if (!s.ok()) {
    (void)Exec("ROLLBACK");
    return s;
  }
  Status c = Exec("COMMIT");
  if (!c.ok()) (void)Exec("ROLLBACK");
  return c;
}

// --------------------------------------------------------------------------
// Clusters.

Status Store::InsertCluster(const ClusterRow& c) {
  std::lock_guard l(mu_);
  return Stmt(db_, "INSERT INTO clusters(id, file, block) VALUES(?,?,?)")
      .BindAll(c.id, c.file, c.block)
      .Run();
}

Status Store::UpdateCluster(const ClusterRow& c) {
  std::lock_guard l(mu_);
  return Stmt(db_, "UPDATE clusters SET file=?, block=? WHERE id=?")
      .BindAll(c.file, c.block, c.id)
      .Run();
}

StatusOr<std::vector<ClusterRow>> Store::ListClusters() {
  std::lock_guard l(mu_);
  Stmt q(db_, "SELECT id, file, block FROM clusters ORDER BY rowid");
  return q.All([](Stmt& q) { return ClusterRow{q.Text(0), q.Int(1) != 0, q.Int(2) != 0}; });
}

StatusOr<ClusterRow> Store::GetCluster(const std::string& id) {
  std::lock_guard l(mu_);
  Stmt q(db_, "SELECT id, file, block FROM clusters WHERE id=?");
  q.Bind(id);
  auto r = q.Step();
  if (!r.ok()) return r.status();
  if (!*r) return Status::NotFound("cluster " + id + " not found");
  return ClusterRow{q.Text(0), q.Int(1) != 0, q.Int(2) != 0};
}

Status Store::DeleteCluster(const std::string& id) {
  std::lock_guard l(mu_);
  return Stmt(db_, "DELETE FROM clusters WHERE id=?").Bind(id).Run();
}

// --------------------------------------------------------------------------
// Nodes.

namespace {
constexpr const char* kNodeCols =
    "id, cluster_id, name, manage, storage, brickd, zone, state, tags";
}

#define CAIRN_READ_NODE(q)                                                                        \
  NodeRow {                                                                                       \
    q.Text(0), q.Text(1), q.Text(2), q.Text(3), q.Text(4), q.Text(5), static_cast<int>(q.Int(6)), \
        q.Text(7), q.Json(8)                                                                      \
  }

Status Store::InsertNode(const NodeRow& n) {
  std::lock_guard l(mu_);
  return Stmt(db_, (std::string("INSERT INTO nodes(") + kNodeCols + ") VALUES(?,?,?,?,?,?,?,?,?)")
                       .c_str())
      .BindAll(n.id, n.cluster_id, n.name, n.manage, n.storage, n.brickd, n.zone, n.state, n.tags)
      .Run();
}

Status Store::UpdateNode(const NodeRow& n) {
  std::lock_guard l(mu_);
  return Stmt(db_,
              "UPDATE nodes SET cluster_id=?, name=?, manage=?, storage=?, brickd=?, zone=?, "
              "state=?, tags=? WHERE id=?")
      .BindAll(n.cluster_id, n.name, n.manage, n.storage, n.brickd, n.zone, n.state, n.tags, n.id)
      .Run();
}

StatusOr<NodeRow> Store::GetNode(const std::string& id) {
  std::lock_guard l(mu_);
  Stmt q(db_, (std::string("SELECT ") + kNodeCols + " FROM nodes WHERE id=?").c_str());
  q.Bind(id);
  auto r = q.Step();
  if (!r.ok()) return r.status();
  if (!*r) return Status::NotFound("node " + id + " not found");
  return CAIRN_READ_NODE(q);
}

StatusOr<std::optional<NodeRow>> Store::FindNodeByName(const std::string& name) {
  std::lock_guard l(mu_);
  Stmt q(db_, (std::string("SELECT ") + kNodeCols + " FROM nodes WHERE name=?").c_str());
  q.Bind(name);
  return q.First([](Stmt& q) { return CAIRN_READ_NODE(q); });
}

StatusOr<std::optional<NodeRow>> Store::FindNodeByManage(const std::string& manage) {
  std::lock_guard l(mu_);
  Stmt q(db_, (std::string("SELECT ") + kNodeCols + " FROM nodes WHERE manage=?").c_str());
  q.Bind(manage);
  return q.First([](Stmt& q) { return CAIRN_READ_NODE(q); });
}

StatusOr<std::vector<NodeRow>> Store::ListNodes(const std::string& cluster_id) {
  std::lock_guard l(mu_);
  std::string sql = std::string("SELECT ") + kNodeCols + " FROM nodes";
  if (!cluster_id.empty()) sql += " WHERE cluster_id=?";
  sql += " ORDER BY name";
  Stmt q(db_, sql.c_str());
  if (!cluster_id.empty()) q.Bind(cluster_id);
  return q.All([](Stmt& q) { return CAIRN_READ_NODE(q); });
}

Status Store::DeleteNode(const std::string& id) {
  std::lock_guard l(mu_);
  return Stmt(db_, "DELETE FROM nodes WHERE id=?").Bind(id).Run();
}

// --------------------------------------------------------------------------
// Devices.

namespace {
constexpr const char* kDeviceCols = "id, node_id, name, storaged_id, total_kib, state, tags";
}

#define CAIRN_READ_DEVICE(q)                                                                \
  DeviceRow {                                                                               \
    q.Text(0), q.Text(1), q.Text(2), q.Text(3), static_cast<uint64_t>(q.Int(4)), q.Text(5), \
        q.Json(6)                                                                           \
  }

Status Store::InsertDevice(const DeviceRow& d) {
  std::lock_guard l(mu_);
  return Stmt(db_, (std::string("INSERT INTO devices(") + kDeviceCols + ") VALUES(?,?,?,?,?,?,?)")
                       .c_str())
      .BindAll(d.id, d.node_id, d.name, d.storaged_id, d.total_kib, d.state, d.tags)
      .Run();
}

Status Store::UpdateDevice(const DeviceRow& d) {
  std::lock_guard l(mu_);
  return Stmt(db_,
              "UPDATE devices SET node_id=?, name=?, storaged_id=?, total_kib=?, state=?, tags=? "
              "WHERE id=?")
      .BindAll(d.node_id, d.name, d.storaged_id, d.total_kib, d.state, d.tags, d.id)
      .Run();
}

StatusOr<DeviceRow> Store::GetDevice(const std::string& id) {
  std::lock_guard l(mu_);
  Stmt q(db_, (std::string("SELECT ") + kDeviceCols + " FROM devices WHERE id=?").c_str());
  q.Bind(id);
  auto r = q.Step();
  if (!r.ok()) return r.status();
  if (!*r) return Status::NotFound("device " + id + " not found");
  return CAIRN_READ_DEVICE(q);
}

StatusOr<std::vector<DeviceRow>> Store::ListDevices(const std::string& node_id) {
  std::lock_guard l(mu_);
  std::string sql = std::string("SELECT ") + kDeviceCols + " FROM devices";
  if (!node_id.empty()) sql += " WHERE node_id=?";
  sql += " ORDER BY node_id, name";
  Stmt q(db_, sql.c_str());
  if (!node_id.empty()) q.Bind(node_id);
  return q.All([](Stmt& q) { return CAIRN_READ_DEVICE(q); });
}

Status Store::DeleteDevice(const std::string& id) {
  std::lock_guard l(mu_);
  return Stmt(db_, "DELETE FROM devices WHERE id=?").Bind(id).Run();
}

StatusOr<uint64_t> Store::DeviceAllocatedKib(const std::string& device_id) {
  std::lock_guard l(mu_);
  Stmt q(db_, "SELECT allocated_kib FROM devices WHERE id=?");
  q.Bind(device_id);
  CAIRN_ASSIGN_OR_RETURN(bool row, q.Step());
  // No such device: nothing is allocated on it (as the SUM over no bricks).
  return row ? static_cast<uint64_t>(q.Int(0)) : 0;
}

// --------------------------------------------------------------------------
// Volumes and bricks.

namespace {
constexpr const char* kVolumeCols =
    "id, name, cluster_id, size_gib, created_gib, replica, arbiter, state, generation, created_ms, "
    "zones";

std::string ZonesText(const std::vector<int>& zones) {
  std::string out;
  for (int z : zones) out += (out.empty() ? "" : ",") + std::to_string(z);
  return out;
}

std::vector<int> ParseZones(const std::string& text) {
  std::vector<int> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find(',', pos);
    if (end == std::string::npos) end = text.size();
    out.push_back(std::atoi(text.substr(pos, end - pos).c_str()));
    pos = end + 1;
  }
  return out;
}
constexpr const char* kBrickCols =
    "id, volume_id, device_id, node_id, size_kib, subvolume, position, arbiter";
}  // namespace

#define CAIRN_READ_VOLUME(q)                                                                   \
  VolumeRow {                                                                                  \
    q.Text(0), q.Text(1), q.Text(2), static_cast<uint64_t>(q.Int(3)),                          \
        static_cast<uint64_t>(q.Int(4)), static_cast<int>(q.Int(5)), q.Int(6) != 0, q.Text(7), \
        static_cast<uint64_t>(q.Int(8)), q.Int(9), ParseZones(q.Text(10))                      \
  }
#define CAIRN_READ_BRICK(q)                                                      \
  BrickRow {                                                                     \
    q.Text(0), q.Text(1), q.Text(2), q.Text(3), static_cast<uint64_t>(q.Int(4)), \
        static_cast<int>(q.Int(5)), static_cast<int>(q.Int(6)), q.Int(7) != 0    \
  }

Status Store::InsertVolume(const VolumeRow& v) {
  std::lock_guard l(mu_);
  return Stmt(db_, (std::string("INSERT INTO volumes(") + kVolumeCols +
                    ") VALUES(?,?,?,?,?,?,?,?,?,?,?)")
                       .c_str())
      .BindAll(v.id, v.name, v.cluster_id, v.size_gib, v.created_gib, v.replica, v.arbiter, v.state,
               v.generation, v.created_ms, ZonesText(v.zones))
      .Run();
}

Status Store::UpdateVolume(const VolumeRow& v) {
  std::lock_guard l(mu_);
  return Stmt(db_,
              "UPDATE volumes SET name=?, cluster_id=?, size_gib=?, created_gib=?, replica=?, "
              "arbiter=?, state=?, generation=?, created_ms=?, zones=? WHERE id=?")
      .BindAll(v.name, v.cluster_id, v.size_gib, v.created_gib, v.replica, v.arbiter, v.state,
               v.generation, v.created_ms, ZonesText(v.zones), v.id)
      .Run();
}

StatusOr<VolumeRow> Store::GetVolume(const std::string& id) {
  std::lock_guard l(mu_);
  Stmt q(db_, (std::string("SELECT ") + kVolumeCols + " FROM volumes WHERE id=?").c_str());
  q.Bind(id);
  auto r = q.Step();
  if (!r.ok()) return r.status();
  if (!*r) return Status::NotFound("volume " + id + " not found");
  return CAIRN_READ_VOLUME(q);
}

StatusOr<std::optional<VolumeRow>> Store::FindVolumeByName(const std::string& name) {
  std::lock_guard l(mu_);
  Stmt q(db_, (std::string("SELECT ") + kVolumeCols + " FROM volumes WHERE name=?").c_str());
  q.Bind(name);
  return q.First([](Stmt& q) { return CAIRN_READ_VOLUME(q); });
}

StatusOr<std::vector<VolumeRow>> Store::ListVolumes(const std::string& cluster_id) {
  std::lock_guard l(mu_);
  std::string sql = std::string("SELECT ") + kVolumeCols + " FROM volumes";
  if (!cluster_id.empty()) sql += " WHERE cluster_id=?";
  sql += " ORDER BY created_ms, id";
  Stmt q(db_, sql.c_str());
  if (!cluster_id.empty()) q.Bind(cluster_id);
  return q.All([](Stmt& q) { return CAIRN_READ_VOLUME(q); });
}

Status Store::DeleteVolume(const std::string& id) {
  std::lock_guard l(mu_);
  return Tx([&] {
    CAIRN_RETURN_IF_ERROR(Stmt(db_, "DELETE FROM bricks WHERE volume_id=?").Bind(id).Run());
    return Stmt(db_, "DELETE FROM volumes WHERE id=?").Bind(id).Run();
  });
}

Status Store::InsertBrick(const BrickRow& b) {
  std::lock_guard l(mu_);
  return Stmt(db_, (std::string("INSERT INTO bricks(") + kBrickCols + ") VALUES(?,?,?,?,?,?,?,?)")
                       .c_str())
      .BindAll(b.id, b.volume_id, b.device_id, b.node_id, b.size_kib, b.subvolume, b.position,
               b.arbiter)
      .Run();
}

Status Store::UpdateBrick(const BrickRow& b) {
  std::lock_guard l(mu_);
  return Stmt(db_,
              "UPDATE bricks SET volume_id=?, device_id=?, node_id=?, size_kib=?, subvolume=?, "
              "position=?, arbiter=? WHERE id=?")
      .BindAll(b.volume_id, b.device_id, b.node_id, b.size_kib, b.subvolume, b.position, b.arbiter,
               b.id)
      .Run();
}

Status Store::DeleteBrick(const std::string& id) {
  std::lock_guard l(mu_);
  return Stmt(db_, "DELETE FROM bricks WHERE id=?").Bind(id).Run();
}

StatusOr<std::vector<BrickRow>> Store::ListBricks(const std::string& volume_id) {
  std::lock_guard l(mu_);
  std::string sql = std::string("SELECT ") + kBrickCols + " FROM bricks";
  if (!volume_id.empty()) sql += " WHERE volume_id=?";
  sql += " ORDER BY volume_id, subvolume, position";
  Stmt q(db_, sql.c_str());
  if (!volume_id.empty()) q.Bind(volume_id);
  return q.All([](Stmt& q) { return CAIRN_READ_BRICK(q); });
}

StatusOr<std::vector<BrickRow>> Store::ListBricksOnDevice(const std::string& device_id) {
  std::lock_guard l(mu_);
  Stmt q(db_, (std::string("SELECT ") + kBrickCols +
               " FROM bricks WHERE device_id=? ORDER BY volume_id, subvolume, position")
                  .c_str());
  q.Bind(device_id);
  return q.All([](Stmt& q) { return CAIRN_READ_BRICK(q); });
}

// --------------------------------------------------------------------------
// Operations.

namespace {
constexpr const char* kOpCols =
    "id, kind, target, state, result, error, payload, created_ms, finished_ms";
}

#define CAIRN_READ_OP(q)                                                                   \
  OpRow {                                                                                  \
    q.Text(0), q.Text(1), q.Text(2), q.Text(3), q.Text(4), q.Text(5), q.Json(6), q.Int(7), \
        q.Int(8)                                                                           \
  }

Status Store::InsertOp(const OpRow& op) {
  std::lock_guard l(mu_);
  return Stmt(db_,
              (std::string("INSERT INTO ops(") + kOpCols + ") VALUES(?,?,?,?,?,?,?,?,?)").c_str())
      .BindAll(op.id, op.kind, op.target, op.state, op.result, op.error, op.payload, op.created_ms,
               op.finished_ms)
      .Run();
}

Status Store::UpdateOp(const OpRow& op) {
  std::lock_guard l(mu_);
  return Stmt(db_,
              "UPDATE ops SET kind=?, target=?, state=?, result=?, error=?, payload=?, "
              "created_ms=?, finished_ms=? WHERE id=?")
      .BindAll(op.kind, op.target, op.state, op.result, op.error, op.payload, op.created_ms,
               op.finished_ms, op.id)
      .Run();
}

StatusOr<OpRow> Store::GetOp(const std::string& id) {
  std::lock_guard l(mu_);
  Stmt q(db_, (std::string("SELECT ") + kOpCols + " FROM ops WHERE id=?").c_str());
  q.Bind(id);
  auto r = q.Step();
  if (!r.ok()) return r.status();
  if (!*r) return Status::NotFound("operation " + id + " not found");
  return CAIRN_READ_OP(q);
}

StatusOr<std::vector<OpRow>> Store::ListOps(const std::string& state) {
  std::lock_guard l(mu_);
  Stmt q(db_,
         (std::string("SELECT ") + kOpCols + " FROM ops WHERE state=? ORDER BY created_ms, rowid")
             .c_str());
  q.Bind(state);
  return q.All([](Stmt& q) { return CAIRN_READ_OP(q); });
}

StatusOr<std::optional<OpRow>> Store::PendingOpFor(const std::string& target) {
  std::lock_guard l(mu_);
  Stmt q(db_, (std::string("SELECT ") + kOpCols +
               " FROM ops WHERE target=? AND state='pending' ORDER BY created_ms LIMIT 1")
                  .c_str());
  q.Bind(target);
  return q.First([](Stmt& q) { return CAIRN_READ_OP(q); });
}

Status Store::PruneOps(int64_t before_ms) {
  std::lock_guard l(mu_);
  return Stmt(db_, "DELETE FROM ops WHERE state!='pending' AND finished_ms<?")
      .Bind(before_ms)
      .Run();
}

}  // namespace cairn::provisioner
