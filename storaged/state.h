// storaged's persistent state: devices, bricks, volume specs and the port of
// the node's brickd, kept in one JSON file in the state directory
// (docs/storaged.md, "State").
//
//   StateFile file(state_dir + "/state.json");
//   auto state = file.Load();            // a missing file is an empty state
//   if (!state.ok()) { /* corrupt: say so and exit, never start empty */ }
//   state->bricks["b1"] = {...};
//   CAIRN_RETURN_IF_ERROR(file.Save(*state));   // temp, fsync, rename, fsync dir
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "client/spec.h"
#include "common/status.h"

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

  std::string ToJson() const;
  // Parses and checks a state file's text; any problem is DataLoss naming it.
  static StatusOr<NodeState> FromJson(std::string_view text);
};

// The state file. Not thread-safe: the caller serialises Save calls.
class StateFile {
 public:
  explicit StateFile(std::string path) : path_(std::move(path)) {}
  const std::string& path() const { return path_; }

  // The stored state; an empty one if the file does not exist. A file that
  // cannot be read or parsed is an error (DataLoss: "state file P is corrupt: ...").
  StatusOr<NodeState> Load() const;
  // Replaces the file crash-safely (WriteFileAtomic).
  Status Save(const NodeState& state) const;

 private:
  std::string path_;
};

// InvalidArgument unless `id` matches [A-Za-z0-9._-]{1,128} (and is not . or ..).
Status ValidateId(std::string_view what, const std::string& id);

}  // namespace cairn::storaged
