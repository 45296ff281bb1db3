// storaged's state database (SQLite, one row per record) and the legacy
// state file it imports; every field is checked on the way in.
#include "storaged/state.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>

#include "common/file_util.h"
#include "common/sqlite.h"
#include "common/status_errno.h"

namespace cairn::storaged {
namespace {

using nlohmann::json;

constexpr int kFormat = 1;

Status Corrupt(const std::string& what) { return Status(StatusCode::kDataLoss, what); }

}  // namespace

Status ValidateId(std::string_view what, const std::string& id) {
  if (id.empty() || id.size() > 128) {
    return Status::InvalidArgument(std::string(what) + " must be 1..128 characters");
  }
  for (char c : id) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-')) {
      return Status::InvalidArgument(std::string(what) + " '" + id +
                                     "' may only hold [A-Za-z0-9._-]");
    }
  }
  if (id == "." || id == "..") {
    return Status::InvalidArgument(std::string(what) + " may not be . or ..");
  }
  return Status::Ok();
}

std::string NodeState::BrickPath(const BrickRecord& brick) const {
  auto it = devices.find(brick.device_id);
  if (it == devices.end()) return "";
  return it->second.path + "/bricks/" + brick.id;
}

uint64_t NodeState::AllocatedBytes(const std::string& device_id) const {
  uint64_t sum = 0;
  for (const auto& [id, b] : bricks) {
    if (b.device_id == device_id) sum += b.capacity_bytes;
  }
  return sum;
}

std::string NodeState::ToJson() const {
  json j;
  j["format"] = kFormat;
  j["brickd_port"] = brickd_port;
  j["devices"] = json::array();
  for (const auto& [id, d] : devices) {
    j["devices"].push_back({{"device_id", d.id},
                            {"path", d.path},
                            {"capacity_bytes", d.capacity_bytes},
                            {"capacity_from_fs", d.capacity_from_fs}});
  }
  j["bricks"] = json::array();
  for (const auto& [id, b] : bricks) {
    j["bricks"].push_back(
        {{"brick_id", b.id}, {"device_id", b.device_id}, {"capacity_bytes", b.capacity_bytes}});
  }
  j["specs"] = json::array();
  for (const auto& [name, s] : specs) j["specs"].push_back(json::parse(s.json));
  return j.dump(1) + "\n";
}

namespace {

// o[key] as T, or DataLoss naming `where` and the key.
template <class T>
StatusOr<T> Field(const json& o, const char* key, const std::string& where) {
  if (!o.is_object() || !o.contains(key)) {
    return Corrupt(where + (where.empty() ? "" : ": ") + "'" + key + "' is missing");
  }
  const json& v = o[key];
  bool ok;
  if constexpr (std::is_same_v<T, bool>) {
    ok = v.is_boolean();
  } else if constexpr (std::is_same_v<T, std::string>) {
    ok = v.is_string();
  } else if constexpr (std::is_same_v<T, json>) {
    ok = v.is_array();
  } else {
    ok = v.is_number_unsigned() || (v.is_number_integer() && v.template get<int64_t>() >= 0);
  }
  if (!ok) return Corrupt(where + (where.empty() ? "" : ": ") + "'" + key + "' has the wrong type");
  return v.template get<T>();
}

}  // namespace

StatusOr<NodeState> NodeState::FromJson(std::string_view text) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Corrupt("not valid JSON");
  if (!j.is_object()) return Corrupt("not a JSON object");
  NodeState st;
  try {
    if (!j.contains("format") || j["format"] != kFormat) {
      return Corrupt("'format' must be " + std::to_string(kFormat));
    }
    CAIRN_ASSIGN_OR_RETURN(uint64_t port, Field<uint64_t>(j, "brickd_port", ""));
    if (port > 65535) return Corrupt("'brickd_port' must be 0..65535");
    st.brickd_port = static_cast<int>(port);
    CAIRN_ASSIGN_OR_RETURN(json devices, Field<json>(j, "devices", ""));
    CAIRN_ASSIGN_OR_RETURN(json bricks, Field<json>(j, "bricks", ""));
    CAIRN_ASSIGN_OR_RETURN(json specs, Field<json>(j, "specs", ""));
    for (size_t i = 0; i < devices.size(); ++i) {
      const json& d = devices[i];
      const std::string where = "devices[" + std::to_string(i) + "]";
      DeviceRecord rec;
      CAIRN_ASSIGN_OR_RETURN(rec.id, Field<std::string>(d, "device_id", where));
      CAIRN_ASSIGN_OR_RETURN(rec.path, Field<std::string>(d, "path", where));
      CAIRN_ASSIGN_OR_RETURN(rec.capacity_bytes, Field<uint64_t>(d, "capacity_bytes", where));
      CAIRN_ASSIGN_OR_RETURN(rec.capacity_from_fs, Field<bool>(d, "capacity_from_fs", where));
      if (Status s = ValidateId("device_id", rec.id); !s.ok()) {
        return Corrupt(where + ": " + s.message());
      }
      if (rec.path.empty() || rec.path[0] != '/') {
        return Corrupt("device " + rec.id + ": path must be absolute");
      }
      if (!st.devices.emplace(rec.id, rec).second) {
        return Corrupt("device " + rec.id + " appears twice");
      }
    }
    for (size_t i = 0; i < bricks.size(); ++i) {
      const json& b = bricks[i];
      const std::string where = "bricks[" + std::to_string(i) + "]";
      BrickRecord rec;
      CAIRN_ASSIGN_OR_RETURN(rec.id, Field<std::string>(b, "brick_id", where));
      CAIRN_ASSIGN_OR_RETURN(rec.device_id, Field<std::string>(b, "device_id", where));
      CAIRN_ASSIGN_OR_RETURN(rec.capacity_bytes, Field<uint64_t>(b, "capacity_bytes", where));
      if (Status s = ValidateId("brick_id", rec.id); !s.ok()) {
        return Corrupt(where + ": " + s.message());
      }
      if (st.devices.count(rec.device_id) == 0) {
        return Corrupt("brick " + rec.id + " is on unknown device '" + rec.device_id + "'");
      }
      if (!st.bricks.emplace(rec.id, rec).second) {
        return Corrupt("brick " + rec.id + " appears twice");
      }
    }
    for (size_t i = 0; i < specs.size(); ++i) {
      auto spec = client::VolumeSpec::Parse(specs[i].dump());
      if (!spec.ok()) {
        return Corrupt("specs[" + std::to_string(i) + "]: " + spec.status().message());
      }
      SpecRecord rec{*spec, spec->ToJson()};
      if (!st.specs.emplace(spec->name, std::move(rec)).second) {
        return Corrupt("volume spec " + spec->name + " appears twice");
      }
    }
  } catch (const json::exception& e) {
    return Corrupt(e.what());
  }
  return st;
}

// ---------------------------------------------------------------------------
// The database.

namespace {

// Each migration takes the schema from version i to i+1 (PRAGMA user_version).
const char* const kMigrations[] = {
    R"sql(
CREATE TABLE meta (
  key TEXT PRIMARY KEY,
  value INTEGER NOT NULL
);
CREATE TABLE devices (
  id TEXT PRIMARY KEY,
  path TEXT NOT NULL,
  capacity_bytes INTEGER NOT NULL,
  capacity_from_fs INTEGER NOT NULL
);
CREATE TABLE bricks (
  id TEXT PRIMARY KEY,
  device_id TEXT NOT NULL REFERENCES devices(id),
  capacity_bytes INTEGER NOT NULL
);
CREATE INDEX bricks_by_device ON bricks(device_id);
CREATE TABLE specs (
  name TEXT PRIMARY KEY,
  generation INTEGER NOT NULL,
  json TEXT NOT NULL
);
)sql",
};
static_assert(sizeof(kMigrations) / sizeof(kMigrations[0]) == StateStore::kSchemaVersion);

constexpr const char* kRecoverHint = " (fix or restore it; storaged will not start empty over it)";

Status Exec(sqlite3* db, const char* sql) {
  char* err = nullptr;
  const int rc = sqlite3_exec(db, sql, nullptr, nullptr, &err);
  if (rc == SQLITE_OK) return Status::Ok();
  std::string msg = err ? err : sqlite3_errstr(rc);
  sqlite3_free(err);
  return Status::Internal("sqlite: " + msg);
}

using Stmt = ::cairn::SqlStmt;

// The statements that write one record; used by the Put/Delete calls and to
// fill a new database.
constexpr const char* kPutDevice =
    "INSERT INTO devices(id, path, capacity_bytes, capacity_from_fs) VALUES(?,?,?,?) "
    "ON CONFLICT(id) DO UPDATE SET path=excluded.path, capacity_bytes=excluded.capacity_bytes, "
    "capacity_from_fs=excluded.capacity_from_fs";
constexpr const char* kPutBrick =
    "INSERT INTO bricks(id, device_id, capacity_bytes) VALUES(?,?,?) "
    "ON CONFLICT(id) DO UPDATE SET device_id=excluded.device_id, "
    "capacity_bytes=excluded.capacity_bytes";
constexpr const char* kPutSpec =
    "INSERT INTO specs(name, generation, json) VALUES(?,?,?) "
    "ON CONFLICT(name) DO UPDATE SET generation=excluded.generation, json=excluded.json";
constexpr const char* kPutPort =
    "INSERT INTO meta(key, value) VALUES('brickd_port', ?) "
    "ON CONFLICT(key) DO UPDATE SET value=excluded.value";

Status RunPutDevice(sqlite3* db, const DeviceRecord& d) {
  return Stmt(db, kPutDevice)
      .Bind(d.id)
      .Bind(d.path)
      .Bind(d.capacity_bytes)
      .Bind(d.capacity_from_fs)
      .Run();
}
Status RunPutBrick(sqlite3* db, const BrickRecord& b) {
  return Stmt(db, kPutBrick).Bind(b.id).Bind(b.device_id).Bind(b.capacity_bytes).Run();
}
Status RunPutSpec(sqlite3* db, const SpecRecord& s) {
  return Stmt(db, kPutSpec).Bind(s.spec.name).Bind(s.spec.generation).Bind(s.json).Run();
}
Status RunPutPort(sqlite3* db, int port) { return Stmt(db, kPutPort).Bind(port).Run(); }

// Brings the schema to kSchemaVersion, one transaction per step. A database
// without a schema is refused unless `fresh` (one being built).
Status Migrate(sqlite3* db, bool fresh) {
  Stmt q(db, "PRAGMA user_version");
  CAIRN_ASSIGN_OR_RETURN(bool row, q.Step());
  const int version = row ? static_cast<int>(q.Int(0)) : 0;
  if (version == 0 && !fresh) {
    return Corrupt("it has no schema (user_version 0): not a storaged state database");
  }
  if (version > StateStore::kSchemaVersion) {
    return Status::FailedPrecondition(
        "its schema version " + std::to_string(version) + " is newer than this storaged's (" +
        std::to_string(StateStore::kSchemaVersion) + "): upgrade storaged");
  }
  for (int v = version; v < StateStore::kSchemaVersion; ++v) {
    CAIRN_RETURN_IF_ERROR(Exec(db, "BEGIN IMMEDIATE"));
    Status s = Exec(db, kMigrations[v]);
    if (s.ok()) s = Exec(db, ("PRAGMA user_version=" + std::to_string(v + 1)).c_str());
    if (s.ok()) s = Exec(db, "COMMIT");
    if (!s.ok()) {
      (void)Exec(db, "ROLLBACK");
      return Status(s.code(), "migration to schema " + std::to_string(v + 1) + ": " + s.message());
    }
  }
  return Status::Ok();
}

Status SyncDir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return StatusFromErrno(errno, "open " + dir);
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) return StatusFromErrno(err, "fsync " + dir);
  return Status::Ok();
}

bool Exists(const std::string& path, Status* error) {
  if (::access(path.c_str(), F_OK) == 0) return true;
  if (errno != ENOENT) *error = StatusFromErrno(errno, "access " + path);
  return false;
}

// Builds a complete database at `tmp` holding `initial` (closed on return).
Status Build(const std::string& tmp, const NodeState& initial) {
  for (const char* suffix : {"", "-journal", "-wal", "-shm"}) {
    const std::string p = tmp + suffix;
    if (::unlink(p.c_str()) != 0 && errno != ENOENT) return StatusFromErrno(errno, "unlink " + p);
  }
  sqlite3* db = nullptr;
  const int rc =
      sqlite3_open_v2(tmp.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
  std::unique_ptr<sqlite3, int (*)(sqlite3*)> close(db, sqlite3_close);
  if (rc != SQLITE_OK) {
    return Status::Internal("create " + tmp + ": " +
                            (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc)));
  }
  CAIRN_RETURN_IF_ERROR(Exec(db, "PRAGMA synchronous=FULL"));
  CAIRN_RETURN_IF_ERROR(Exec(db, "PRAGMA foreign_keys=ON"));
  CAIRN_RETURN_IF_ERROR(Migrate(db, /*fresh=*/true));
  CAIRN_RETURN_IF_ERROR(Exec(db, "BEGIN IMMEDIATE"));
  Status s = RunPutPort(db, initial.brickd_port);
  for (const auto& [id, d] : initial.devices) {
    if (s.ok()) s = RunPutDevice(db, d);
  }
  for (const auto& [id, b] : initial.bricks) {
    if (s.ok()) s = RunPutBrick(db, b);
  }
  for (const auto& [name, spec] : initial.specs) {
    if (s.ok()) s = RunPutSpec(db, spec);
  }
  if (s.ok()) s = Exec(db, "COMMIT");
  if (!s.ok()) (void)Exec(db, "ROLLBACK");
  return s;
}

}  // namespace

StatusOr<std::unique_ptr<StateStore>> StateStore::Open(const std::string& state_dir,
                                                       NodeState* state) {
  const std::string path = state_dir + "/state.db";
  const std::string legacy = state_dir + "/state.json";
  Status error;
  const bool have_db = Exists(path, &error);
  CAIRN_RETURN_IF_ERROR(error);
  const bool have_legacy = Exists(legacy, &error);
  CAIRN_RETURN_IF_ERROR(error);
  if (!have_db) {
    // A new database is built beside and renamed into place: an existing
    // state.db is always complete (schema and, on migration, every record).
    NodeState initial;
    if (have_legacy) {
      auto text = ReadFile(legacy);
      if (!text.ok()) {
        return Corrupt("state file " + legacy + " cannot be read: " + text.status().message());
      }
      auto st = NodeState::FromJson(*text);
      if (!st.ok()) {
        return Corrupt("state file " + legacy + " is corrupt: " + st.status().message() +
                       kRecoverHint);
      }
      initial = std::move(*st);
    }
    const std::string tmp = path + ".tmp";
    CAIRN_RETURN_IF_ERROR(Build(tmp, initial).WithContext("create state database " + tmp));
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
      return StatusFromErrno(errno, "rename " + tmp + " to " + path);
    }
    CAIRN_RETURN_IF_ERROR(SyncDir(state_dir));
    if (have_legacy) {
      const std::string done = legacy + ".migrated";
      if (::rename(legacy.c_str(), done.c_str()) != 0) {
        return StatusFromErrno(errno, "rename " + legacy + " to " + done);
      }
      CAIRN_RETURN_IF_ERROR(SyncDir(state_dir));
      spdlog::info(
          "event=state-migrated from={} to={} devices={} bricks={} specs={} brickd_port={} "
          "old_file={}",
          legacy, path, initial.devices.size(), initial.bricks.size(), initial.specs.size(),
          initial.brickd_port, done);
    }
  } else if (have_legacy) {
    spdlog::warn(
        "event=state-json-ignored path={} database={} reason=\"the database exists; the old "
        "state file is not read (remove it once checked)\"",
        legacy, path);
  }

  sqlite3* db = nullptr;
  const int rc =
      sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX, nullptr);
  std::unique_ptr<StateStore> store(new StateStore(db, path));
  if (rc != SQLITE_OK) {
    return Status::FailedPrecondition("state database " + path + " cannot be opened: " +
                                      (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc)));
  }
  sqlite3_busy_timeout(db, 5000);
  auto corrupt = [&](const Status& s) {
    if (s.code() == StatusCode::kFailedPrecondition) {
      return Status(s.code(), "state database " + path + ": " + s.message());
    }
    return Corrupt("state database " + path + " is corrupt: " + s.message() + kRecoverHint);
  };
  {
    // Read before anything is written: a file that is not one of our
    // databases (an empty one included) is left as it is.
    Stmt q(db, "PRAGMA user_version");
    auto row = q.Step();
    if (!row.ok()) return corrupt(row.status());
    if (!*row || q.Int(0) == 0) {
      return corrupt(Corrupt("it has no schema (user_version 0): not a storaged state database"));
    }
  }
  // WAL: a commit appends its pages to the log and fsyncs it (synchronous=FULL).
  for (const char* pragma :
       {"PRAGMA synchronous=FULL", "PRAGMA foreign_keys=ON", "PRAGMA journal_mode=WAL"}) {
    if (Status s = Exec(db, pragma); !s.ok()) return corrupt(s);
  }
  if (Status s = Migrate(db, /*fresh=*/false); !s.ok()) return corrupt(s);
  {
    Stmt q(db, "PRAGMA quick_check");
    auto row = q.Step();
    if (!row.ok()) return corrupt(row.status());
    if (!*row || q.Text(0) != "ok") return corrupt(Corrupt("quick_check: " + q.Text(0)));
  }
  auto loaded = store->Load();
  if (!loaded.ok()) return loaded.status();
  *state = std::move(*loaded);
  return store;
}

StateStore::~StateStore() { sqlite3_close(db_); }

StatusOr<NodeState> StateStore::Load() {
  NodeState st;
  auto load = [&]() -> Status {
    {
      Stmt q(db_, "SELECT key, value FROM meta");
      for (;;) {
        CAIRN_ASSIGN_OR_RETURN(bool row, q.Step());
        if (!row) break;
        if (q.Text(0) != "brickd_port") continue;
        if (!q.IsInt(1) || q.Int(1) < 0 || q.Int(1) > 65535) {
          return Corrupt("'brickd_port' must be 0..65535");
        }
        st.brickd_port = static_cast<int>(q.Int(1));
      }
    }
    {
      Stmt q(db_, "SELECT id, path, capacity_bytes, capacity_from_fs FROM devices");
      for (;;) {
        CAIRN_ASSIGN_OR_RETURN(bool row, q.Step());
        if (!row) break;
        DeviceRecord rec{q.Text(0), q.Text(1), static_cast<uint64_t>(q.Int(2)), q.Int(3) != 0};
        if (Status s = ValidateId("device_id", rec.id); !s.ok()) {
          return Corrupt("devices: " + s.message());
        }
        if (!q.IsText(1) || rec.path.empty() || rec.path[0] != '/') {
          return Corrupt("device " + rec.id + ": path must be absolute");
        }
        if (!q.IsInt(2) || !q.IsInt(3)) {
          return Corrupt("device " + rec.id + ": capacity has the wrong type");
        }
        st.devices.emplace(rec.id, rec);
      }
    }
    {
      Stmt q(db_, "SELECT id, device_id, capacity_bytes FROM bricks");
      for (;;) {
        CAIRN_ASSIGN_OR_RETURN(bool row, q.Step());
        if (!row) break;
        BrickRecord rec{q.Text(0), q.Text(1), static_cast<uint64_t>(q.Int(2))};
        if (Status s = ValidateId("brick_id", rec.id); !s.ok()) {
          return Corrupt("bricks: " + s.message());
        }
        if (!q.IsInt(2)) return Corrupt("brick " + rec.id + ": capacity has the wrong type");
        if (st.devices.count(rec.device_id) == 0) {
          return Corrupt("brick " + rec.id + " is on unknown device '" + rec.device_id + "'");
        }
        st.bricks.emplace(rec.id, rec);
      }
    }
    {
      Stmt q(db_, "SELECT name, generation, json FROM specs");
      for (;;) {
        CAIRN_ASSIGN_OR_RETURN(bool row, q.Step());
        if (!row) break;
        const std::string name = q.Text(0);
        auto spec = client::VolumeSpec::Parse(q.Text(2));
        if (!spec.ok()) return Corrupt("volume spec " + name + ": " + spec.status().message());
        if (spec->name != name || !q.IsInt(1) ||
            static_cast<uint64_t>(q.Int(1)) != spec->generation) {
          return Corrupt("volume spec " + name + ": its row does not match its JSON (name " +
                         spec->name + ", generation " + std::to_string(spec->generation) + ")");
        }
        SpecRecord rec{*spec, spec->ToJson()};
        st.specs.emplace(name, std::move(rec));
      }
    }
    return Status::Ok();
  };
  if (Status s = load(); !s.ok()) {
    return Corrupt("state database " + path_ + " is corrupt: " + s.message() + kRecoverHint);
  }
  return st;
}

Status StateStore::PutDevice(const DeviceRecord& d) {
  return RunPutDevice(db_, d).WithContext("state database " + path_ + ": put device " + d.id);
}

Status StateStore::PutBrick(const BrickRecord& b) {
  return RunPutBrick(db_, b).WithContext("state database " + path_ + ": put brick " + b.id);
}

Status StateStore::PutSpec(const SpecRecord& s) {
  return RunPutSpec(db_, s).WithContext("state database " + path_ + ": put volume spec " +
                                        s.spec.name);
}

Status StateStore::PutBrickAndSpec(const BrickRecord& b, const SpecRecord& spec) {
  Status s = Exec(db_, "BEGIN IMMEDIATE");
  if (s.ok()) {
    s = RunPutBrick(db_, b);
    if (s.ok()) s = RunPutSpec(db_, spec);
    if (s.ok()) s = Exec(db_, "COMMIT");
    if (!s.ok()) (void)Exec(db_, "ROLLBACK");
  }
  return s.WithContext("state database " + path_ + ": put brick " + b.id + " and volume spec " +
                       spec.spec.name);
}

Status StateStore::SetBrickdPort(int port) {
  return RunPutPort(db_, port).WithContext("state database " + path_ + ": put brickd port");
}

Status StateStore::DeleteDevice(const std::string& device_id) {
  return Stmt(db_, "DELETE FROM devices WHERE id=?")
      .Bind(device_id)
      .Run()
      .WithContext("state database " + path_ + ": delete device " + device_id);
}

Status StateStore::DeleteBrick(const std::string& brick_id) {
  return Stmt(db_, "DELETE FROM bricks WHERE id=?")
      .Bind(brick_id)
      .Run()
      .WithContext("state database " + path_ + ": delete brick " + brick_id);
}

Status StateStore::DeleteSpec(const std::string& name) {
  return Stmt(db_, "DELETE FROM specs WHERE name=?")
      .Bind(name)
      .Run()
      .WithContext("state database " + path_ + ": delete volume spec " + name);
}

}  // namespace cairn::storaged
