// Brick placement: where the bricks of a new volume (or of an expansion) go.
//
// Pure: takes a snapshot of the cluster's free space and a request, returns
// replica sets or a clear error. No I/O, no locks; the caller serializes
// allocations and reserves what it returns in the same store transaction.
//
// Rules:
//  - the bricks of one replica set are on distinct nodes (never two on one
//    node); when the candidate nodes span several zones, a set's bricks are on
//    as many distinct zones as possible (distinct zones when there are at
//    least as many zones as bricks in a set);
//  - balanced by free capacity: each brick goes to the device with the most
//    free space among the nodes/zones still allowed for its set (ties: fewer
//    bricks already on the node in this request, then id order, so results are
//    deterministic);
//  - only nodes and devices in state "online" are used;
//  - a volume larger than any set of devices can hold becomes several replica
//    sets (distribute): the smallest k (1..max_sets) such that k sets of
//    ceil(size / k) (rounded up to brick_align_kib) each fit;
//  - arbiter (replica 3 only): each set has 2 data bricks of the set size and
//    one arbiter brick (names and metadata only) of ArbiterBrickKib(size),
//    placed on a third node (and zone when possible); the arbiter goes to the
//    node/device with the most free space after the data bricks.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace cairn::provisioner {

struct DeviceFree {
  std::string id;
  uint64_t free_kib = 0;  // total minus what its bricks are given
  bool online = true;
};

struct NodeFree {
  std::string id;
  int zone = 1;  // Heketi's zones are integers >= 1 (0 counts as 1)
  bool online = true;
  std::vector<DeviceFree> devices;
};

struct AllocRequest {
  uint64_t size_kib = 0;  // the volume's usable size (or the size to add)
  int replica = 3;        // bricks per set (1..16); counts the arbiter
  bool arbiter = false;   // replica must be 3
  int max_sets = 64;
  uint64_t brick_align_kib = 1024;  // brick sizes are multiples of this
  uint64_t min_brick_kib = 1024;
};

struct BrickPlacement {
  std::string node_id;
  std::string device_id;
  uint64_t size_kib = 0;
  bool arbiter = false;
};

// One replica set (a subvolume): `replica` bricks, data bricks first, the
// arbiter (if any) last.
using ReplicaSet = std::vector<BrickPlacement>;

// Size of the arbiter brick for data bricks of `data_brick_kib`:
// data/64 rounded up to a MiB, at least 16 MiB, at most the data brick size.
uint64_t ArbiterBrickKib(uint64_t data_brick_kib);

// Places the request. Errors:
//  - InvalidArgument: size 0, replica out of range, arbiter without replica 3;
//  - ResourceExhausted (the "can't place" case), with a message that says
//    why: "needs 3 nodes with free space, 2 are online" / "no 3 nodes have
//    N GiB free each even when split into up to 64 replica sets (most free:
//    node a 10 GiB, node b 8 GiB, ...)".
StatusOr<std::vector<ReplicaSet>> Allocate(const std::vector<NodeFree>& nodes,
                                           const AllocRequest& request);

}  // namespace cairn::provisioner
