// Heketi topology.json parsing and idempotent loading.
#include "cairnctl/topology.h"

#include <map>

namespace cairn::ctl {
namespace {

using json = nlohmann::json;

StatusOr<std::vector<std::string>> StringList(const json& j, const std::string& where) {
  if (!j.is_array() || j.empty()) {
    return Status::InvalidArgument(where + " must be a non-empty list of strings");
  }
  std::vector<std::string> out;
  for (const auto& e : j) {
    if (!e.is_string() || e.get<std::string>().empty()) {
      return Status::InvalidArgument(where + " must be a non-empty list of strings");
    }
    out.push_back(e.get<std::string>());
  }
  return out;
}

Status Tags(const json& parent, const std::string& where, json* out) {
  auto it = parent.find("tags");
  if (it == parent.end() || it->is_null()) return Status::Ok();
  if (!it->is_object()) return Status::InvalidArgument(where + ": tags must be an object");
  for (const auto& [k, v] : it->items()) {
    if (!v.is_string()) {
      return Status::InvalidArgument(where + ": tag '" + k + "' must be a string");
    }
  }
  *out = *it;
  return Status::Ok();
}

StatusOr<TopologyDevice> ParseDevice(const json& j, const std::string& where) {
  TopologyDevice d;
  if (j.is_string()) {
    d.name = j.get<std::string>();
    if (d.name.empty()) return Status::InvalidArgument(where + ": empty device name");
    return d;
  }
  if (!j.is_object()) {
    return Status::InvalidArgument(where + " must be a device name or an object with \"name\"");
  }
  auto name = j.find("name");
  if (name == j.end() || !name->is_string() || name->get<std::string>().empty()) {
    return Status::InvalidArgument(where + ": name must be a non-empty string");
  }
  d.name = name->get<std::string>();
  if (auto it = j.find("destroydata"); it != j.end() && !it->is_null()) {
    if (!it->is_boolean())
      return Status::InvalidArgument(where + ": destroydata must be a boolean");
    d.destroydata = it->get<bool>();
  }
  if (auto it = j.find("capacity_kib"); it != j.end() && !it->is_null()) {
    if (!it->is_number_integer() || it->get<int64_t>() < 0) {
      return Status::InvalidArgument(where + ": capacity_kib must be a non-negative integer");
    }
    d.capacity_kib = it->get<int64_t>();
  }
  CAIRN_RETURN_IF_ERROR(Tags(j, where, &d.tags));
  return d;
}

StatusOr<TopologyNode> ParseNode(const json& j, const std::string& where) {
  if (!j.is_object()) return Status::InvalidArgument(where + " must be an object");
  auto node = j.find("node");
  if (node == j.end() || !node->is_object()) {
    return Status::InvalidArgument(where + ": \"node\" must be an object");
  }
  const std::string nwhere = where + ".node";
  auto hostnames = node->find("hostnames");
  if (hostnames == node->end() || !hostnames->is_object()) {
    return Status::InvalidArgument(nwhere + ": \"hostnames\" must be an object");
  }
  TopologyNode n;
  auto manage = hostnames->find("manage");
  if (manage == hostnames->end()) {
    return Status::InvalidArgument(nwhere + ": hostnames.manage is missing");
  }
  CAIRN_ASSIGN_OR_RETURN(n.manage, StringList(*manage, nwhere + ": hostnames.manage"));
  auto storage = hostnames->find("storage");
  if (storage == hostnames->end()) {
    return Status::InvalidArgument(nwhere + ": hostnames.storage is missing");
  }
  CAIRN_ASSIGN_OR_RETURN(n.storage, StringList(*storage, nwhere + ": hostnames.storage"));
  if (auto z = node->find("zone"); z != node->end() && !z->is_null()) {
    if (!z->is_number_integer() || z->get<int64_t>() < 1) {
      return Status::InvalidArgument(nwhere + ": zone must be an integer of at least 1");
    }
    n.zone = z->get<int64_t>();
  }
  CAIRN_RETURN_IF_ERROR(Tags(*node, nwhere, &n.tags));
  auto devices = j.find("devices");
  if (devices != j.end() && !devices->is_null()) {
    if (!devices->is_array()) return Status::InvalidArgument(where + ": devices must be a list");
    std::map<std::string, size_t> seen;
    for (size_t i = 0; i < devices->size(); ++i) {
      const std::string dwhere = where + ".devices[" + std::to_string(i) + "]";
      CAIRN_ASSIGN_OR_RETURN(TopologyDevice d, ParseDevice((*devices)[i], dwhere));
      if (auto [it, fresh] = seen.emplace(d.name, i); !fresh) {
        return Status::InvalidArgument(dwhere + ": device " + d.name + " is listed twice (also " +
                                       where + ".devices[" + std::to_string(it->second) + "])");
      }
      n.devices.push_back(std::move(d));
    }
  }
  return n;
}

// What the provisioner knows, by normalized manage host.
struct KnownNode {
  std::string id;
  std::string cluster;
  std::map<std::string, std::string> devices;  // name -> id
};

StatusOr<std::map<std::string, KnownNode>> FetchKnown(Api& api) {
  CAIRN_ASSIGN_OR_RETURN(json topo, api.Get("/topology"));
  std::map<std::string, KnownNode> known;
  if (!topo.is_object() || !topo.contains("clusters") || !topo["clusters"].is_array()) {
    return Status::Internal("GET /topology: unexpected answer " + topo.dump());
  }
  for (const auto& c : topo["clusters"]) {
    const std::string cid = c.value("id", "");
    if (!c.contains("nodes") || !c["nodes"].is_array()) continue;
    for (const auto& n : c["nodes"]) {
      if (!n.is_object()) continue;
      KnownNode k;
      k.id = n.value("id", "");
      k.cluster = n.value("cluster", cid);
      if (n.contains("devices") && n["devices"].is_array()) {
        for (const auto& d : n["devices"]) {
          if (d.is_object()) k.devices[d.value("name", "")] = d.value("id", "");
        }
      }
      if (n.contains("hostnames") && n["hostnames"].is_object() &&
          n["hostnames"].contains("manage") && n["hostnames"]["manage"].is_array()) {
        for (const auto& h : n["hostnames"]["manage"]) {
          if (h.is_string()) known[NormalizeManageHost(h.get<std::string>())] = k;
        }
      }
    }
  }
  return known;
}

const KnownNode* FindKnown(const std::map<std::string, KnownNode>& known, const TopologyNode& n) {
  for (const auto& h : n.manage) {
    auto it = known.find(NormalizeManageHost(h));
    if (it != known.end()) return &it->second;
  }
  return nullptr;
}

}  // namespace

std::string NormalizeManageHost(const std::string& host) {
  if (host.empty()) return host;
  if (host.front() == '[') {  // [v6]:port
    return host.find("]:") == std::string::npos ? host + ":24007" : host;
  }
  auto colon = host.find(':');
  if (colon == std::string::npos) return host + ":24007";
  if (host.find(':', colon + 1) != std::string::npos) return "[" + host + "]:24007";  // bare v6
  return host;
}

StatusOr<Topology> ParseTopology(const std::string& text) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Status::InvalidArgument("topology file is not valid JSON");
  if (!j.is_object()) return Status::InvalidArgument("topology file must be a JSON object");
  auto clusters = j.find("clusters");
  if (clusters == j.end() || !clusters->is_array()) {
    return Status::InvalidArgument("topology file: \"clusters\" must be a list");
  }
  Topology t;
  std::map<std::string, std::string> manage_seen;  // normalized host -> where
  for (size_t c = 0; c < clusters->size(); ++c) {
    const std::string cwhere = "clusters[" + std::to_string(c) + "]";
    const json& cj = (*clusters)[c];
    if (!cj.is_object()) return Status::InvalidArgument(cwhere + " must be an object");
    auto nodes = cj.find("nodes");
    if (nodes == cj.end() || !nodes->is_array()) {
      return Status::InvalidArgument(cwhere + ": \"nodes\" must be a list");
    }
    TopologyCluster tc;
    for (size_t n = 0; n < nodes->size(); ++n) {
      const std::string nwhere = cwhere + ".nodes[" + std::to_string(n) + "]";
      CAIRN_ASSIGN_OR_RETURN(TopologyNode node, ParseNode((*nodes)[n], nwhere));
      for (const auto& h : node.manage) {
        auto [it, fresh] = manage_seen.emplace(NormalizeManageHost(h), nwhere);
        if (!fresh) {
          return Status::InvalidArgument(nwhere + ": manage host " + h + " is also " + it->second +
                                         "'s");
        }
      }
      tc.nodes.push_back(std::move(node));
    }
    t.clusters.push_back(std::move(tc));
  }
  return t;
}

Status LoadTopology(Api& api, const Topology& topology, std::vector<std::string>* report) {
  CAIRN_ASSIGN_OR_RETURN(auto known, FetchKnown(api));
  for (const auto& tc : topology.clusters) {
    // A cluster of the file is the cluster of its first known node, else a new one.
    std::string cluster_id;
    for (const auto& n : tc.nodes) {
      if (const KnownNode* k = FindKnown(known, n); k != nullptr && !k->cluster.empty()) {
        cluster_id = k->cluster;
        break;
      }
    }
    if (cluster_id.empty() && !tc.nodes.empty()) {
      CAIRN_ASSIGN_OR_RETURN(json c, api.Post("/clusters", {{"file", true}, {"block", false}}));
      cluster_id = c.is_object() ? c.value("id", "") : "";
      if (cluster_id.empty()) return Status::Internal("POST /clusters: no id in " + c.dump());
      report->push_back("created cluster " + cluster_id);
    } else if (!cluster_id.empty()) {
      report->push_back("using cluster " + cluster_id);
    }
    for (const auto& n : tc.nodes) {
      const std::string host = n.manage.front();
      std::string node_id;
      std::map<std::string, std::string> have_devices;
      if (const KnownNode* k = FindKnown(known, n)) {
        node_id = k->id;
        have_devices = k->devices;
        report->push_back("skipped node " + host + ": exists (id " + node_id + ")");
      } else {
        json req = {{"cluster", cluster_id},
                    {"hostnames", {{"manage", n.manage}, {"storage", n.storage}}},
                    {"zone", n.zone},
                    {"tags", n.tags}};
        CAIRN_ASSIGN_OR_RETURN(json info, api.Post("/nodes", req));
        node_id = info.is_object() ? info.value("id", "") : "";
        if (node_id.empty()) {
          // No result document: find it by its manage host.
          CAIRN_ASSIGN_OR_RETURN(known, FetchKnown(api));
          const KnownNode* k = FindKnown(known, n);
          if (k == nullptr)
            return Status::Internal("node " + host + " was added but is not listed");
          node_id = k->id;
        }
        report->push_back("created node " + host + " (id " + node_id + ", zone " +
                          std::to_string(n.zone) + ")");
      }
      for (const auto& d : n.devices) {
        if (auto it = have_devices.find(d.name); it != have_devices.end()) {
          report->push_back("skipped device " + d.name + " on " + host + ": exists (id " +
                            it->second + ")");
          continue;
        }
        json req = {{"node", node_id},
                    {"name", d.name},
                    {"destroydata", d.destroydata},
                    {"capacity_kib", d.capacity_kib},
                    {"tags", d.tags}};
        CAIRN_RETURN_IF_ERROR(
            api.Post("/devices", req).status().WithContext("add device " + d.name + " on " + host));
        report->push_back("created device " + d.name + " on " + host);
      }
    }
  }
  return Status::Ok();
}

}  // namespace cairn::ctl
