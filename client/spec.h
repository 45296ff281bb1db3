// A volume's spec: which bricks make it up and how (docs/client.md).
//
//   {"volume_id": "6f1c…", "name": "vol1", "type": "replicate",
//    "replica": 3, "arbiter": 0, "generation": 1, "size_bytes": 0,
//    "subvolumes": [[{"node": "127.0.0.2:7001", "brick_id": "b1"},
//                    {"node": "127.0.0.3:7001", "brick_id": "b2"},
//                    {"node": "127.0.0.4:7001", "brick_id": "b3"}]]}
//
// type: "distribute" (replica 1), "replicate" (one subvolume) or
// "distribute-replicate". Every subvolume has `replica` bricks; with
// "arbiter": 1 the last brick of each subvolume is an arbiter (names and
// metadata only, no data). size_bytes 0: the bricks' capacity is the size.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/id.h"
#include "common/status.h"

namespace cairn::client {

struct BrickRef {
  std::string node;  // "host:port" of the brickd serving it
  std::string brick_id;
  bool arbiter = false;  // derived from the spec's "arbiter" count
};

struct VolumeSpec {
  enum class Type { kDistribute, kReplicate, kDistributeReplicate };

  Uuid volume_id;
  std::string name;
  Type type = Type::kReplicate;
  int replica = 1;
  int arbiter = 0;  // 0 or 1 (replica 3 only)
  uint64_t generation = 0;
  uint64_t size_bytes = 0;
  std::vector<std::vector<BrickRef>> subvolumes;

  // Parses and validates; errors are InvalidArgument naming the field.
  static StatusOr<VolumeSpec> Parse(std::string_view json);
  // Reads and parses a spec file (NotFound / InvalidArgument with the path).
  static StatusOr<VolumeSpec> Load(const std::string& path);
  std::string ToJson() const;

  // Replicas whose vote counts for a mutation to succeed.
  int Quorum() const { return replica / 2 + 1; }
  static std::string_view TypeName(Type type);
};

}  // namespace cairn::client
