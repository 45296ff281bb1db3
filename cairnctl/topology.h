// Heketi's topology.json and `cairnctl topology load`.
//
//   {"clusters": [{"nodes": [{"node": {"hostnames": {"manage": ["10.0.0.1"],
//                                                   "storage": ["10.0.0.1"]},
//                                     "zone": 1},
//                             "devices": ["/dev/sdb",
//                                         {"name": "/srv/d2", "destroydata": false,
//                                          "capacity_kib": 1048576}]}]}]}
//
// Loading is idempotent: a node whose manage host is known is skipped (and
// its cluster reused), and so is a device whose name its node already has.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cairnctl/rest_client.h"
#include "common/status.h"

namespace cairn::ctl {

struct TopologyDevice {
  std::string name;
  bool destroydata = false;
  int64_t capacity_kib = 0;  // 0: the file system's size
  nlohmann::json tags = nlohmann::json::object();
};

struct TopologyNode {
  std::vector<std::string> manage;
  std::vector<std::string> storage;
  int64_t zone = 1;
  nlohmann::json tags = nlohmann::json::object();
  std::vector<TopologyDevice> devices;
};

struct TopologyCluster {
  std::vector<TopologyNode> nodes;
};

struct Topology {
  std::vector<TopologyCluster> clusters;
};

// Parses a topology.json; errors name the element ("clusters[0].nodes[1].node:
// hostnames.manage must be a non-empty list of strings").
StatusOr<Topology> ParseTopology(const std::string& text);

// "host" and "host:24007" are the same storaged; compared in this form.
std::string NormalizeManageHost(const std::string& host);

// Creates what `topology` has and the provisioner does not. Each line of
// `report` says what was created or skipped ("created node 10.0.0.1 (id …)",
// "skipped device /srv/d1 on 10.0.0.1: exists (id …)"). Stops at the first
// error (what was created stays; running it again carries on).
Status LoadTopology(Api& api, const Topology& topology, std::vector<std::string>* report);

}  // namespace cairn::ctl
