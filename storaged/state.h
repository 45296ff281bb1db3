// storaged's persistent state: devices, bricks, volume specs and the port of
// the node's brickd, kept in an SQLite database in the state directory, one
// row per record (docs/storaged.md, "State"). A change writes only its own
// rows, in one transaction, so its cost does not grow with the number of
// volumes.
//
//   NodeState state;
//   auto store = StateStore::Open(state_dir, &state);  // STATE_DIR/state.db
//   if (!store.ok()) { /* corrupt: say so and exit, never start empty */ }
//   CAIRN_RETURN_IF_ERROR((*store)->PutBrick(brick));   // committed (fsync) on return
//   state.bricks[brick.id] = brick;                     // the caller keeps NodeState
//
// A state dir of an older storaged (STATE_DIR/state.json) is imported once
// when there is no database yet; the file is then renamed state.json.migrated.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "client/spec.h"
#include "common/status.h"

struct sqlite3;

namespace cairn::storaged {

struct DeviceRecord {
  std::string id;
  std::string path;  // absolute, symlinks resolved
  uint64_t capacity_bytes = 0;
  bool capacity_from_fs = false;  // added with capacity 0 (the file system's size)
};

struct BrickRecord {
  std::string id;
  std::string device_id;
  uint64_t capacity_bytes = 0;
};

struct SpecRecord {
  client::VolumeSpec spec;
  std::string json;  // canonical: spec.ToJson()
};

struct NodeState {
  std::map<std::string, DeviceRecord> devices;
  std::map<std::string, BrickRecord> bricks;
  std::map<std::string, SpecRecord> specs;
  int brickd_port = 0;  // 0: not chosen yet

  // The directory of `brick` (DEVICE/bricks/BRICK_ID); "" if its device is unknown.
  std::string BrickPath(const BrickRecord& brick) const;
  // Sum of the capacities of the bricks on `device_id`.
  uint64_t AllocatedBytes(const std::string& device_id) const;

  // The legacy state file's format (storaged before the database); used to
  // import it and by tests.
  std::string ToJson() const;
  // Parses and checks a state file's text; any problem is DataLoss naming it.
  static StatusOr<NodeState> FromJson(std::string_view text);
};

// The state database. Not thread-safe: the caller serialises calls (storaged's
// Manager holds its admin lock). Every write is one transaction (WAL,
// synchronous=FULL): when it returns OK the change survives a crash or power
// loss; when it fails nothing of it was stored.
class StateStore {
 public:
  static constexpr int kSchemaVersion = 1;

  // Opens STATE_DIR/state.db and reads it into *state (every row checked like
  // the old state file: ids, absolute paths, bricks on known devices, specs
  // through the spec parser). A missing database is created — built as
  // state.db.tmp and renamed into place, so an existing state.db is always a
  // complete one — from STATE_DIR/state.json if there is one (which is then
  // renamed state.json.migrated), else empty. A database or legacy file that
  // cannot be read or checked is DataLoss ("state database P is corrupt: ..."
  // or "state file P is corrupt: ..."); nothing is created over it.
  static StatusOr<std::unique_ptr<StateStore>> Open(const std::string& state_dir, NodeState* state);
  ~StateStore();
  StateStore(const StateStore&) = delete;
  StateStore& operator=(const StateStore&) = delete;

  const std::string& path() const { return path_; }

  // Insert or replace one record.
  Status PutDevice(const DeviceRecord& device);
  Status PutBrick(const BrickRecord& brick);
  Status PutSpec(const SpecRecord& spec);
  // Both in one transaction (one commit, one fsync).
  Status PutBrickAndSpec(const BrickRecord& brick, const SpecRecord& spec);
  // Remove one record (no error if it is not there).
  Status DeleteDevice(const std::string& device_id);
  Status DeleteBrick(const std::string& brick_id);
  Status DeleteSpec(const std::string& name);
  Status SetBrickdPort(int port);

  // Reads and checks every row again (what Open loads).
  StatusOr<NodeState> Load();

 private:
  StateStore(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}

  sqlite3* db_;
  std::string path_;
};

// InvalidArgument unless `id` matches [A-Za-z0-9._-]{1,128} (and is not . or ..).
Status ValidateId(std::string_view what, const std::string& id);

}  // namespace cairn::storaged
