// Tests for allocator.h.
#include "provisioner/allocator.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace cairn::provisioner {
namespace {

constexpr uint64_t kMiB = 1024;
constexpr uint64_t kGiB = 1024 * kMiB;

uint64_t RoundUp(uint64_t v, uint64_t align) { return (v + align - 1) / align * align; }

// Node `id` in `zone` with one online device per entry of `free_kib`, named
// id + "-d0", id + "-d1", ...
NodeFree Node(std::string id, int zone, std::vector<uint64_t> free_kib) {
  NodeFree n{.id = std::move(id), .zone = zone, .devices = {}};
  for (size_t i = 0; i < free_kib.size(); ++i) {
    n.devices.push_back({.id = n.id + "-d" + std::to_string(i), .free_kib = free_kib[i]});
  }
  return n;
}

// `count` identical nodes n0, n1, ... with one device of `free_kib`, zones
// cycling through 1..zones.
std::vector<NodeFree> EqualNodes(int count, uint64_t free_kib, int zones = 1) {
  std::vector<NodeFree> nodes;
  for (int i = 0; i < count; ++i) {
    nodes.push_back(Node("n" + std::to_string(i), 1 + i % zones, {free_kib}));
  }
  return nodes;
}

AllocRequest Request(uint64_t size_kib, int replica = 3) {
  return {.size_kib = size_kib, .replica = replica};
}

const NodeFree* FindNode(const std::vector<NodeFree>& nodes, const std::string& id) {
  for (const NodeFree& n : nodes) {
    if (n.id == id) return &n;
  }
  return nullptr;
}

int ZoneOf(const NodeFree& n) { return std::max(n.zone, 1); }

// The size of the arbiter brick that goes with data bricks of `brick_kib`.
uint64_t ExpectedArbiterKib(uint64_t brick_kib, uint64_t align) {
  return std::min(brick_kib, RoundUp(ArbiterBrickKib(brick_kib), align));
}

// The largest free online device of each online node.
std::vector<uint64_t> LargestFreePerNode(const std::vector<NodeFree>& nodes) {
  std::vector<uint64_t> out;
  for (const NodeFree& n : nodes) {
    if (!n.online) continue;
    uint64_t best = 0;
    for (const DeviceFree& d : n.devices) {
      if (d.online) best = std::max(best, d.free_kib);
    }
    out.push_back(best);
  }
  return out;
}

// Data brick size when the request is split into `k` sets.
uint64_t BrickKibForSets(const AllocRequest& r, uint64_t k) {
  const uint64_t share = (r.size_kib + k - 1) / k;
  return std::max(RoundUp(share, r.brick_align_kib), RoundUp(r.min_brick_kib, r.brick_align_kib));
}

// Whether one replica set holding the whole request surely fits: `data`
// nodes with a device of the brick size, plus (arbiter) a third node with a
// device of the arbiter size. Exact for a single set.
bool OneSetFits(const std::vector<NodeFree>& nodes, const AllocRequest& r) {
  const uint64_t brick = BrickKibForSets(r, 1);
  const std::vector<uint64_t> largest = LargestFreePerNode(nodes);
  const auto at_least = [&](uint64_t kib) {
    return std::count_if(largest.begin(), largest.end(), [&](uint64_t f) { return f >= kib; });
  };
  if (!r.arbiter) return at_least(brick) >= r.replica;
  return at_least(brick) >= 2 && at_least(ExpectedArbiterKib(brick, r.brick_align_kib)) >= 3;
}

// Whether `replica` nodes each have one device that could take a brick of
// every set for some k <= max_sets: then a placement surely exists, and a
// greedy placer cannot miss it.
bool SurelyFitsSomeSplit(const std::vector<NodeFree>& nodes, const AllocRequest& r) {
  const std::vector<uint64_t> largest = LargestFreePerNode(nodes);
  for (int k = 1; k <= r.max_sets; ++k) {
    const uint64_t per_node = static_cast<uint64_t>(k) * BrickKibForSets(r, k);
    if (std::count_if(largest.begin(), largest.end(), [&](uint64_t f) { return f >= per_node; }) >=
        r.replica) {
      return true;
    }
  }
  return false;
}

// Checks everything a successful placement must satisfy; `what` names the case.
void ExpectValidPlacement(const std::vector<NodeFree>& nodes, const AllocRequest& r,
                          const std::vector<ReplicaSet>& sets, const std::string& what) {
  SCOPED_TRACE(what);
  ASSERT_FALSE(sets.empty());
  ASSERT_LE(sets.size(), static_cast<size_t>(r.max_sets));
  const uint64_t brick_kib = sets[0][0].size_kib;
  EXPECT_EQ(brick_kib % r.brick_align_kib, 0u);
  EXPECT_GE(brick_kib, r.min_brick_kib);
  EXPECT_GE(sets.size() * brick_kib, r.size_kib) << "sets do not hold the volume";
  EXPECT_EQ(brick_kib, BrickKibForSets(r, sets.size())) << "brick size is not ceil(size / k)";

  // Every brick's device, and what the request takes from it.
  std::map<std::pair<std::string, std::string>, uint64_t> taken;
  uint64_t total_kib = 0;
  for (const ReplicaSet& set : sets) {
    ASSERT_EQ(set.size(), static_cast<size_t>(r.replica));
    std::set<std::string> set_nodes;
    for (size_t i = 0; i < set.size(); ++i) {
      const BrickPlacement& b = set[i];
      const bool want_arbiter = r.arbiter && i + 1 == set.size();
      EXPECT_EQ(b.arbiter, want_arbiter);
      EXPECT_EQ(b.size_kib,
                want_arbiter ? ExpectedArbiterKib(brick_kib, r.brick_align_kib) : brick_kib);
      EXPECT_EQ(b.size_kib % r.brick_align_kib, 0u);
      EXPECT_TRUE(set_nodes.insert(b.node_id).second) << "two bricks of a set on " << b.node_id;
      const NodeFree* node = FindNode(nodes, b.node_id);
      ASSERT_NE(node, nullptr) << b.node_id;
      EXPECT_TRUE(node->online) << b.node_id;
      const auto dev = std::find_if(node->devices.begin(), node->devices.end(),
                                    [&](const DeviceFree& d) { return d.id == b.device_id; });
      ASSERT_NE(dev, node->devices.end()) << b.device_id << " is not on " << b.node_id;
      EXPECT_TRUE(dev->online) << b.device_id;
      taken[{b.node_id, b.device_id}] += b.size_kib;
      total_kib += b.size_kib;
    }
  }
  for (const auto& [where, kib] : taken) {
    const NodeFree* node = FindNode(nodes, where.first);
    for (const DeviceFree& d : node->devices) {
      if (d.id == where.second) {
        EXPECT_LE(kib, d.free_kib) << "device " << d.id << " over-committed";
      }
    }
  }

  // A zone holding a node with a device that can take the whole request is
  // always available to a set, so each set spans at least as many zones as
  // there are such zones (up to the set size).
  std::set<int> roomy_zones;
  std::set<int> all_zones;
  bool all_roomy = true;
  for (const NodeFree& n : nodes) {
    if (!n.online) continue;
    bool roomy = false;
    for (const DeviceFree& d : n.devices) roomy |= d.online && d.free_kib >= total_kib;
    if (roomy) roomy_zones.insert(ZoneOf(n));
    all_roomy &= roomy;
    all_zones.insert(ZoneOf(n));
  }
  for (const ReplicaSet& set : sets) {
    std::set<int> zones;
    for (const BrickPlacement& b : set) zones.insert(ZoneOf(*FindNode(nodes, b.node_id)));
    EXPECT_GE(zones.size(), std::min(set.size(), roomy_zones.size()));
    if (all_roomy) {
      EXPECT_EQ(zones.size(), std::min(set.size(), all_zones.size()));
    }
  }
}

// ---------------------------------------------------------------------------
// Arguments

TEST(AllocateArgs, RejectsBadRequests) {
  const std::vector<NodeFree> nodes = EqualNodes(4, 100 * kGiB);
  auto code = [&](AllocRequest r) { return Allocate(nodes, r).status().code(); };
  EXPECT_EQ(code(Request(0)), StatusCode::kInvalidArgument);
  EXPECT_EQ(code(Request(kGiB, 0)), StatusCode::kInvalidArgument);
  EXPECT_EQ(code(Request(kGiB, -1)), StatusCode::kInvalidArgument);
  EXPECT_EQ(code(Request(kGiB, 17)), StatusCode::kInvalidArgument);
  EXPECT_EQ(code({.size_kib = kGiB, .replica = 3, .max_sets = 0}), StatusCode::kInvalidArgument);
  EXPECT_EQ(code({.size_kib = kGiB, .replica = 3, .brick_align_kib = 0}),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(code(Request(~uint64_t{0})), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Allocate(nodes, Request(kGiB, 1)).ok());
  EXPECT_TRUE(Allocate(EqualNodes(16, kGiB), Request(kGiB, 16)).ok());
}

TEST(AllocateArgs, ArbiterNeedsReplicaThree) {
  const std::vector<NodeFree> nodes = EqualNodes(4, 100 * kGiB);
  for (int replica : {1, 2, 4}) {
    StatusOr<std::vector<ReplicaSet>> r =
        Allocate(nodes, {.size_kib = kGiB, .replica = replica, .arbiter = true});
    ASSERT_FALSE(r.ok());
    EXPECT_TRUE(r.status().IsInvalidArgument());
    EXPECT_NE(r.status().message().find("replica 3"), std::string::npos) << r.status().message();
    EXPECT_NE(r.status().message().find(std::to_string(replica)), std::string::npos);
  }
}

TEST(AllocateArgs, ReplicaMessageNamesTheValue) {
  StatusOr<std::vector<ReplicaSet>> r = Allocate(EqualNodes(3, kGiB), Request(kGiB, 17));
  EXPECT_EQ(r.status().message(), "replica must be 1..16, got 17");
}

// ---------------------------------------------------------------------------
// Placement rules

TEST(Allocate, OneSetOnDistinctNodesWithAlignedBricks) {
  const std::vector<NodeFree> nodes = EqualNodes(3, 100 * kGiB);
  const AllocRequest req = Request(10 * kGiB + 1);
  StatusOr<std::vector<ReplicaSet>> r = Allocate(nodes, req);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ((*r)[0][0].size_kib, 10 * kGiB + kMiB);
  ExpectValidPlacement(nodes, req, *r, "one set");
}

TEST(Allocate, SmallVolumesGetTheMinimumBrick) {
  const std::vector<NodeFree> nodes = EqualNodes(3, 100 * kGiB);
  StatusOr<std::vector<ReplicaSet>> r = Allocate(nodes, Request(1));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)[0][0].size_kib, kMiB);

  r = Allocate(nodes, {.size_kib = 1, .replica = 3, .min_brick_kib = kGiB});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)[0][0].size_kib, kGiB);

  r = Allocate(nodes,
               {.size_kib = 5000, .replica = 3, .brick_align_kib = 4096, .min_brick_kib = 0});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)[0][0].size_kib, 8192u);
}

TEST(Allocate, UsesOnlyOnlineNodesAndDevices) {
  std::vector<NodeFree> nodes = {
      Node("a", 1, {10 * kGiB}),
      Node("b", 1, {500 * kGiB, 20 * kGiB}),
      Node("c", 1, {30 * kGiB}),
      Node("d", 1, {900 * kGiB}),
  };
  nodes[1].devices[0].online = false;  // b's big device is off
  nodes[3].online = false;             // d is off
  StatusOr<std::vector<ReplicaSet>> r = Allocate(nodes, Request(5 * kGiB));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ((*r)[0][0].device_id, "c-d0");  // most free online device
  EXPECT_EQ((*r)[0][1].device_id, "b-d1");
  EXPECT_EQ((*r)[0][2].device_id, "a-d0");
}

TEST(Allocate, PicksMostFreeDeviceFirst) {
  const std::vector<NodeFree> nodes = {
      Node("a", 1, {10 * kGiB, 70 * kGiB}),
      Node("b", 1, {50 * kGiB}),
      Node("c", 1, {60 * kGiB}),
      Node("d", 1, {20 * kGiB}),
  };
  StatusOr<std::vector<ReplicaSet>> r = Allocate(nodes, Request(kGiB, 2));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)[0][0].device_id, "a-d1");
  EXPECT_EQ((*r)[0][1].device_id, "c-d0");
}

TEST(Allocate, TiesGoToIdOrderWhateverTheInputOrder) {
  std::vector<NodeFree> nodes = {Node("c", 1, {kGiB}), Node("a", 1, {kGiB}), Node("b", 1, {kGiB})};
  StatusOr<std::vector<ReplicaSet>> r1 = Allocate(nodes, Request(kMiB, 2));
  std::reverse(nodes.begin(), nodes.end());
  StatusOr<std::vector<ReplicaSet>> r2 = Allocate(nodes, Request(kMiB, 2));
  ASSERT_TRUE(r1.ok() && r2.ok());
  EXPECT_EQ((*r1)[0][0].node_id, "a");
  EXPECT_EQ((*r1)[0][1].node_id, "b");
  EXPECT_EQ((*r2)[0][0].node_id, "a");
  EXPECT_EQ((*r2)[0][1].node_id, "b");
}

TEST(Allocate, TieGoesToNodeWithFewerBricksInThisRequest) {
  // Replica 1, 150 GiB: two sets of 75 GiB. After a-d0 takes the first, a-d1
  // and b-d0 both have 100 GiB; b has no brick of this request yet.
  const std::vector<NodeFree> nodes = {Node("a", 1, {100 * kGiB, 100 * kGiB}),
                                       Node("b", 1, {100 * kGiB})};
  StatusOr<std::vector<ReplicaSet>> r = Allocate(nodes, Request(150 * kGiB, 1));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0][0].device_id, "a-d0");
  EXPECT_EQ((*r)[1][0].device_id, "b-d0");
}

TEST(Allocate, IsDeterministic) {
  std::vector<NodeFree> nodes = EqualNodes(7, 50 * kGiB, 3);
  const AllocRequest req = Request(100 * kGiB);  // two sets of 50 GiB
  StatusOr<std::vector<ReplicaSet>> a = Allocate(nodes, req);
  std::shuffle(nodes.begin(), nodes.end(), std::mt19937(7));
  StatusOr<std::vector<ReplicaSet>> b = Allocate(nodes, req);
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_EQ(a->size(), 2u);
  ASSERT_EQ(a->size(), b->size());
  for (size_t s = 0; s < a->size(); ++s) {
    for (size_t i = 0; i < (*a)[s].size(); ++i) {
      EXPECT_EQ((*a)[s][i].device_id, (*b)[s][i].device_id);
      EXPECT_EQ((*a)[s][i].size_kib, (*b)[s][i].size_kib);
    }
  }
}

// ---------------------------------------------------------------------------
// Zones

TEST(AllocateZones, SpreadsEachSetOverDistinctZones) {
  // Zone 1 has the most space, but a set never takes two bricks there while
  // other zones have room.
  const std::vector<NodeFree> nodes = {
      Node("a", 1, {900 * kGiB}), Node("b", 1, {800 * kGiB}), Node("c", 1, {700 * kGiB}),
      Node("d", 2, {100 * kGiB}), Node("e", 3, {50 * kGiB}),
  };
  StatusOr<std::vector<ReplicaSet>> r = Allocate(nodes, Request(10 * kGiB));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)[0][0].node_id, "a");
  EXPECT_EQ((*r)[0][1].node_id, "d");
  EXPECT_EQ((*r)[0][2].node_id, "e");
}

TEST(AllocateZones, DistinctZonesInEverySetOfAManySetVolume) {
  const std::vector<NodeFree> nodes = EqualNodes(9, 20 * kGiB, 3);
  const AllocRequest req = Request(50 * kGiB);
  StatusOr<std::vector<ReplicaSet>> r = Allocate(nodes, req);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->size(), 3u);
  ExpectValidPlacement(nodes, req, *r, "9 nodes, 3 zones");
  for (const ReplicaSet& set : *r) {
    std::set<int> zones;
    for (const BrickPlacement& b : set) zones.insert(FindNode(nodes, b.node_id)->zone);
    EXPECT_EQ(zones.size(), 3u);
  }
}

TEST(AllocateZones, AsManyZonesAsPossibleWhenFewerZonesThanBricks) {
  const std::vector<NodeFree> nodes = EqualNodes(6, 100 * kGiB, 2);
  StatusOr<std::vector<ReplicaSet>> r = Allocate(nodes, Request(kGiB));
  ASSERT_TRUE(r.ok());
  std::set<int> zones;
  for (const BrickPlacement& b : (*r)[0]) zones.insert(FindNode(nodes, b.node_id)->zone);
  EXPECT_EQ(zones.size(), 2u);
}

TEST(AllocateZones, ZoneZeroIsZoneOne) {
  // If zone 0 were its own zone, b (zone 1, more free) would not be picked.
  const std::vector<NodeFree> nodes = {Node("a", 0, {100 * kGiB}), Node("b", 1, {90 * kGiB}),
                                       Node("c", 2, {10 * kGiB})};
  StatusOr<std::vector<ReplicaSet>> r = Allocate(nodes, Request(kGiB, 2));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)[0][0].node_id, "a");
  EXPECT_EQ((*r)[0][1].node_id, "c");
}

TEST(AllocateZones, FallsBackToASharedZoneWhenOtherZonesAreFull) {
  const std::vector<NodeFree> nodes = {Node("a", 1, {100 * kGiB}), Node("b", 1, {90 * kGiB}),
                                       Node("c", 2, {kGiB})};
  StatusOr<std::vector<ReplicaSet>> r = Allocate(nodes, Request(10 * kGiB, 2));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)[0][0].node_id, "a");
  EXPECT_EQ((*r)[0][1].node_id, "b");
}

// ---------------------------------------------------------------------------
// Balance

TEST(AllocateBalance, SequentialAllocationsSpreadEvenly) {
  std::vector<NodeFree> nodes = EqualNodes(7, 1000 * kGiB);
  std::map<std::string, int> bricks;
  for (int i = 0; i < 30; ++i) {
    StatusOr<std::vector<ReplicaSet>> r = Allocate(nodes, Request(10 * kGiB));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_EQ(r->size(), 1u);
    // The caller reserves what it got before the next allocation.
    for (const BrickPlacement& b : (*r)[0]) {
      ++bricks[b.node_id];
      for (NodeFree& n : nodes) {
        if (n.id == b.node_id) n.devices[0].free_kib -= b.size_kib;
      }
    }
  }
  ASSERT_EQ(bricks.size(), 7u);
  const auto [lo, hi] =
      std::minmax_element(bricks.begin(), bricks.end(),
                          [](const auto& a, const auto& b) { return a.second < b.second; });
  EXPECT_LE(hi->second - lo->second, 1)
      << hi->first << " has " << hi->second << ", " << lo->first << " has " << lo->second;
}

TEST(AllocateBalance, SetsOfOneRequestSpreadOverNodesNotDevices) {
  // Eight 10 GiB devices per node, replica 2, 120 GiB: twelve sets of 10 GiB,
  // one per device. Every device ties on free space, so only "fewer bricks on
  // the node in this request" keeps id order from filling n0 and n1 first.
  std::vector<NodeFree> nodes;
  for (int i = 0; i < 6; ++i)
    nodes.push_back(Node("n" + std::to_string(i), 1, std::vector<uint64_t>(8, 10 * kGiB)));
  const AllocRequest req = Request(120 * kGiB, 2);
  StatusOr<std::vector<ReplicaSet>> r = Allocate(nodes, req);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->size(), 12u);
  ExpectValidPlacement(nodes, req, *r, "6x8 devices");
  std::map<std::string, int> bricks;
  for (const ReplicaSet& set : *r) {
    for (const BrickPlacement& b : set) ++bricks[b.node_id];
  }
  ASSERT_EQ(bricks.size(), 6u);
  for (const auto& [node, count] : bricks) EXPECT_EQ(count, 4) << node;
}

// ---------------------------------------------------------------------------
// Splitting into several replica sets

TEST(AllocateSplit, HundredGibOnThreeFortyGibNodesReplicaOneIsThreeSets) {
  // k=1 needs 100 GiB on one device, k=2 50 GiB: neither fits 40 GiB; k=3
  // bricks of ceil(100 GiB / 3) rounded up to a MiB = 34134 MiB do.
  const std::vector<NodeFree> nodes = EqualNodes(3, 40 * kGiB);
  const AllocRequest req = Request(100 * kGiB, 1);
  StatusOr<std::vector<ReplicaSet>> r = Allocate(nodes, req);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 3u);
  EXPECT_EQ((*r)[0][0].size_kib, 34134 * kMiB);
  ExpectValidPlacement(nodes, req, *r, "replica 1");
}

TEST(AllocateSplit, HundredGibReplicaThreeOnNineFortyGibNodesIsThreeSets) {
  const std::vector<NodeFree> nodes = EqualNodes(9, 40 * kGiB);
  const AllocRequest req = Request(100 * kGiB);
  StatusOr<std::vector<ReplicaSet>> r = Allocate(nodes, req);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 3u);
  ExpectValidPlacement(nodes, req, *r, "9 nodes");
  std::set<std::string> used;
  for (const ReplicaSet& set : *r) {
    for (const BrickPlacement& b : set) EXPECT_TRUE(used.insert(b.node_id).second);
  }
}

TEST(AllocateSplit, HundredGibReplicaThreeOnThreeFortyGibNodesDoesNotFit) {
  // 300 GiB of bricks on 120 GiB: no split helps, and the message says why.
  StatusOr<std::vector<ReplicaSet>> r = Allocate(EqualNodes(3, 40 * kGiB), Request(100 * kGiB));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(r.status().message(),
            "no 3 nodes have 100 GiB free each even when split into up to 64 replica sets "
            "(most free: node n0 40 GiB, node n1 40 GiB, node n2 40 GiB)");
}

TEST(AllocateSplit, SeveralDevicesPerNodeHoldSeveralSets) {
  // Each node has three 40 GiB devices: the three sets of 34134 MiB go one
  // per device.
  std::vector<NodeFree> nodes;
  for (const char* id : {"a", "b", "c"})
    nodes.push_back(Node(id, 1, {40 * kGiB, 40 * kGiB, 40 * kGiB}));
  const AllocRequest req = Request(100 * kGiB);
  StatusOr<std::vector<ReplicaSet>> r = Allocate(nodes, req);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 3u);
  ExpectValidPlacement(nodes, req, *r, "3x3 devices");
  std::set<std::string> devices;
  for (const ReplicaSet& set : *r) {
    for (const BrickPlacement& b : set) EXPECT_TRUE(devices.insert(b.device_id).second);
  }
}

TEST(AllocateSplit, AccountsForSpaceTakenByEarlierSets) {
  // Two sets of 30 GiB would fit one brick each on a 50 GiB device, but each
  // device would then hold 60 GiB: no k works.
  StatusOr<std::vector<ReplicaSet>> r = Allocate(EqualNodes(3, 50 * kGiB), Request(60 * kGiB));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted);

  // With a second device per node, two sets fit.
  std::vector<NodeFree> nodes;
  for (const char* id : {"a", "b", "c"}) nodes.push_back(Node(id, 1, {50 * kGiB, 50 * kGiB}));
  r = Allocate(nodes, Request(60 * kGiB));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->size(), 2u);
  ExpectValidPlacement(nodes, Request(60 * kGiB), *r, "2 devices");
}

TEST(AllocateSplit, RespectsMaxSets) {
  AllocRequest req = Request(100 * kGiB);
  req.max_sets = 2;
  StatusOr<std::vector<ReplicaSet>> r = Allocate(EqualNodes(9, 40 * kGiB), req);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(r.status().message().find("up to 2 replica sets"), std::string::npos)
      << r.status().message();

  req.max_sets = 1;
  r = Allocate(EqualNodes(9, 40 * kGiB), req);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message().find("replica sets"), std::string::npos) << r.status().message();
}

// ---------------------------------------------------------------------------
// Arbiter

TEST(ArbiterBrickKib, IsASixtyFourthRoundedToMibBetweenSixteenMibAndTheDataBrick) {
  EXPECT_EQ(ArbiterBrickKib(0), 0u);
  EXPECT_EQ(ArbiterBrickKib(10 * kMiB), 10 * kMiB);  // capped by the data brick
  EXPECT_EQ(ArbiterBrickKib(16 * kMiB), 16 * kMiB);
  EXPECT_EQ(ArbiterBrickKib(kGiB), 16 * kMiB);  // 1 GiB / 64 = 16 MiB
  EXPECT_EQ(ArbiterBrickKib(50 * kGiB), 800 * kMiB);
  EXPECT_EQ(ArbiterBrickKib(64 * kGiB), kGiB);
  EXPECT_EQ(ArbiterBrickKib(64 * kGiB + 1), kGiB + kMiB);  // rounded up to a MiB
  EXPECT_EQ(ArbiterBrickKib(2 * kGiB - 1), 32 * kMiB);
}

TEST(AllocateArbiter, TwoDataBricksAndASmallArbiterOnAThirdNode) {
  const std::vector<NodeFree> nodes = {Node("a", 1, {100 * kGiB}), Node("b", 2, {100 * kGiB}),
                                       Node("c", 3, {2 * kGiB})};
  const AllocRequest req = {.size_kib = 50 * kGiB, .replica = 3, .arbiter = true};
  StatusOr<std::vector<ReplicaSet>> r = Allocate(nodes, req);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 1u);
  const ReplicaSet& set = (*r)[0];
  EXPECT_EQ(set[0].node_id, "a");
  EXPECT_EQ(set[1].node_id, "b");
  EXPECT_FALSE(set[0].arbiter);
  EXPECT_FALSE(set[1].arbiter);
  EXPECT_EQ(set[0].size_kib, 50 * kGiB);
  EXPECT_EQ(set[2].node_id, "c");
  EXPECT_TRUE(set[2].arbiter);
  EXPECT_EQ(set[2].size_kib, 800 * kMiB);
  ExpectValidPlacement(nodes, req, *r, "arbiter");
}

TEST(AllocateArbiter, ArbiterGoesToAThirdZoneAndMostFreeNodeLeft) {
  const std::vector<NodeFree> nodes = {
      Node("a", 1, {100 * kGiB}), Node("b", 2, {90 * kGiB}), Node("c", 1, {80 * kGiB}),
      Node("d", 3, {5 * kGiB}),   Node("e", 3, {6 * kGiB}),
  };
  StatusOr<std::vector<ReplicaSet>> r =
      Allocate(nodes, {.size_kib = 10 * kGiB, .replica = 3, .arbiter = true});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)[0][0].node_id, "a");
  EXPECT_EQ((*r)[0][1].node_id, "b");
  EXPECT_EQ((*r)[0][2].node_id, "e");  // zone 3, more free than d; not c (zone 1)
}

TEST(AllocateArbiter, FailsWhenNoThirdNodeCanHoldTheArbiter) {
  const std::vector<NodeFree> nodes = {Node("a", 1, {100 * kGiB}), Node("b", 1, {100 * kGiB}),
                                       Node("c", 1, {500 * kMiB})};
  StatusOr<std::vector<ReplicaSet>> r =
      Allocate(nodes, {.size_kib = 50 * kGiB, .replica = 3, .arbiter = true});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(r.status().message(),
            "no 2 nodes have 50 GiB free each (plus a third with 800 MiB for the arbiter) even "
            "when split into up to 64 replica sets (most free: node a 100 GiB, node b 100 GiB, "
            "node c 500 MiB)");
}

// ---------------------------------------------------------------------------
// Failures

TEST(AllocateFailures, FewerOnlineNodesThanReplica) {
  std::vector<NodeFree> nodes = EqualNodes(4, 100 * kGiB);
  nodes[0].online = false;
  nodes[1].online = false;
  StatusOr<std::vector<ReplicaSet>> r = Allocate(nodes, Request(kGiB));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(r.status().message(), "needs 3 nodes with free space, 2 are online");
  EXPECT_TRUE(Allocate(nodes, Request(kGiB, 2)).ok());
  EXPECT_EQ(Allocate({}, Request(kGiB, 1)).status().message(),
            "needs 1 node with free space, 0 are online");
}

TEST(AllocateFailures, OnlineNodesWithoutUsableDevices) {
  std::vector<NodeFree> nodes = EqualNodes(4, 100 * kGiB);
  nodes[0].devices[0].online = false;
  nodes[1].devices[0].free_kib = 0;
  nodes[2].devices.clear();
  StatusOr<std::vector<ReplicaSet>> r = Allocate(nodes, Request(kGiB));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(r.status().message(),
            "needs 3 nodes with free space, only 1 of 4 online nodes have an online device with "
            "any");
}

TEST(AllocateFailures, MessageListsMostFreeNodesWithUsefulNumbers) {
  std::vector<NodeFree> nodes;
  for (int i = 0; i < 10; ++i) {
    nodes.push_back(Node("n" + std::to_string(i), 1, {static_cast<uint64_t>(i + 1) * kGiB / 2}));
  }
  AllocRequest req = Request(100 * kGiB);
  req.max_sets = 4;
  StatusOr<std::vector<ReplicaSet>> r = Allocate(nodes, req);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(),
            "no 3 nodes have 100 GiB free each even when split into up to 4 replica sets (most "
            "free: node n9 5 GiB, node n8 4.5 GiB, node n7 4 GiB, node n6 3.5 GiB, node n5 3 GiB, "
            "node n4 2.5 GiB, node n3 2 GiB, node n2 1.5 GiB, ...)");
}

TEST(AllocateFailures, ReplicaOneMessage) {
  AllocRequest req = Request(100 * kGiB, 1);
  req.max_sets = 1;
  StatusOr<std::vector<ReplicaSet>> r = Allocate({Node("a", 1, {10 * kGiB, 3 * kMiB + 512})}, req);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "no node has 100 GiB free (most free: node a 10 GiB)");
  r = Allocate({Node("a", 1, {3 * kMiB + 512})}, req);
  EXPECT_EQ(r.status().message(), "no node has 100 GiB free (most free: node a 3.5 MiB)");
}

// ---------------------------------------------------------------------------
// Randomized topologies

struct RandomCase {
  std::vector<NodeFree> nodes;
  AllocRequest request;
  std::string description;
};

RandomCase MakeRandomCase(std::mt19937& rng, int index) {
  auto uniform = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  auto chance = [&](double p) { return std::bernoulli_distribution(p)(rng); };
  RandomCase c;
  const int node_count = uniform(1, 9);
  const int zones = uniform(1, 4);
  for (int n = 0; n < node_count; ++n) {
    // Ids deliberately not in input order.
    NodeFree node{
        .id = "node" + std::to_string((n * 7 + 3) % 10), .zone = uniform(0, zones), .devices = {}};
    node.online = !chance(0.1);
    const int devices = uniform(1, 3);
    for (int d = 0; d < devices; ++d) {
      uint64_t free_kib = std::uniform_int_distribution<uint64_t>(0, 200 * kGiB)(rng);
      if (chance(0.2)) free_kib = free_kib / kGiB * kGiB;  // round numbers make ties
      node.devices.push_back({.id = node.id + "/dev" + std::to_string(d),
                              .free_kib = free_kib,
                              .online = !chance(0.1)});
    }
    c.nodes.push_back(std::move(node));
  }
  AllocRequest& r = c.request;
  r.size_kib = std::uniform_int_distribution<uint64_t>(1, 300 * kGiB)(rng);
  r.arbiter = chance(0.2);
  r.replica = r.arbiter ? 3 : uniform(1, 4);
  const int max_sets[] = {1, 2, 4, 64};
  r.max_sets = max_sets[uniform(0, 3)];
  const uint64_t aligns[] = {1, kMiB, 4 * kMiB};
  r.brick_align_kib = aligns[uniform(0, 2)];
  const uint64_t mins[] = {0, kMiB, kGiB};
  r.min_brick_kib = mins[uniform(0, 2)];
  c.description = "case " + std::to_string(index) + ": " + std::to_string(node_count) +
                  " nodes, size " + std::to_string(r.size_kib) + " KiB, replica " +
                  std::to_string(r.replica) + (r.arbiter ? " arbiter" : "") + ", max_sets " +
                  std::to_string(r.max_sets);
  return c;
}

TEST(AllocateProperty, RandomTopologiesKeepEveryRule) {
  std::mt19937 rng(20240611);
  int placed = 0;
  int split = 0;
  int refused = 0;
  for (int i = 0; i < 500; ++i) {
    const RandomCase c = MakeRandomCase(rng, i);
    SCOPED_TRACE(c.description);
    StatusOr<std::vector<ReplicaSet>> r = Allocate(c.nodes, c.request);

    size_t usable_nodes = 0;
    for (uint64_t f : LargestFreePerNode(c.nodes)) usable_nodes += f > 0 ? 1 : 0;
    if (usable_nodes < static_cast<size_t>(c.request.replica)) {
      ASSERT_FALSE(r.ok());
      EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted);
      EXPECT_EQ(r.status().message().rfind("needs ", 0), 0u) << r.status().message();
    }
    // A single set fits exactly when the simple count says so, and then it is
    // the answer (the smallest k).
    if (OneSetFits(c.nodes, c.request)) {
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      EXPECT_EQ(r->size(), 1u);
    }
    if (SurelyFitsSomeSplit(c.nodes, c.request)) {
      EXPECT_TRUE(r.ok()) << r.status().ToString();
    }
    if (!r.ok()) {
      ++refused;
      EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted) << r.status().ToString();
      continue;
    }
    ++placed;
    if (r->size() > 1) ++split;
    EXPECT_FALSE(OneSetFits(c.nodes, c.request) && r->size() > 1);
    ExpectValidPlacement(c.nodes, c.request, *r, c.description);
  }
  // The generator must exercise every outcome.
  EXPECT_GT(placed, 100);
  EXPECT_GT(split, 20);
  EXPECT_GT(refused, 50);
  RecordProperty("placed", placed);
  RecordProperty("split", split);
  RecordProperty("refused", refused);
}

TEST(AllocateProperty, RandomRoomyTopologiesUseDistinctZones) {
  // Every online node can take the whole request: each set spans
  // min(replica, zones) zones.
  std::mt19937 rng(42);
  for (int i = 0; i < 200; ++i) {
    RandomCase c = MakeRandomCase(rng, i);
    c.request.size_kib = std::uniform_int_distribution<uint64_t>(1, kGiB)(rng);
    c.request.max_sets = 1;
    for (NodeFree& n : c.nodes) {
      for (DeviceFree& d : n.devices) d.free_kib = 100 * kGiB;
    }
    StatusOr<std::vector<ReplicaSet>> r = Allocate(c.nodes, c.request);
    if (!r.ok()) {
      EXPECT_EQ(r.status().message().rfind("needs ", 0), 0u) << r.status().message();
      continue;
    }
    ExpectValidPlacement(c.nodes, c.request, *r, c.description);
  }
}

}  // namespace
}  // namespace cairn::provisioner
