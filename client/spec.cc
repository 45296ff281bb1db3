#include "client/spec.h"

#include <nlohmann/json.hpp>
#include <set>

#include "common/file_util.h"

namespace cairn::client {
namespace {

using nlohmann::json;

Status Bad(const std::string& what) { return Status::InvalidArgument("volume spec: " + what); }

bool ValidBrickId(const std::string& id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-')) {
      return false;
    }
  }
  return true;
}

// "host:port" with a numeric port 1..65535 ("[v6]:port" accepted too).
bool ValidNode(const std::string& node) {
  size_t colon = node.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == node.size()) return false;
  std::string port = node.substr(colon + 1);
  if (port.size() > 5) return false;
  for (char c : port) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  }
  int p = std::stoi(port);
  return p > 0 && p < 65536;
}

}  // namespace

std::string_view VolumeSpec::TypeName(Type type) {
  switch (type) {
    case Type::kDistribute:
      return "distribute";
    case Type::kReplicate:
      return "replicate";
    case Type::kDistributeReplicate:
      return "distribute-replicate";
  }
  return "?";
}

StatusOr<VolumeSpec> VolumeSpec::Parse(std::string_view text) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Bad("not valid JSON");
  if (!j.is_object()) return Bad("must be a JSON object");
  VolumeSpec spec;
  try {
    if (!j.contains("volume_id") || !j["volume_id"].is_string()) {
      return Bad("'volume_id' (string) is required");
    }
    auto id = Uuid::Parse(j["volume_id"].get<std::string>());
    if (!id.ok()) return Bad("'volume_id': " + id.status().message());
    spec.volume_id = *id;
    if (!j.contains("name") || !j["name"].is_string() || j["name"].get<std::string>().empty()) {
      return Bad("'name' (non-empty string) is required");
    }
    spec.name = j["name"].get<std::string>();
    if (spec.name.size() > 128 || spec.name.find_first_of("/ \t\n,") != std::string::npos) {
      return Bad("'name' must be at most 128 characters without '/', ',' or spaces");
    }
    std::string type = j.value("type", "replicate");
    if (type == "distribute") {
      spec.type = Type::kDistribute;
    } else if (type == "replicate") {
      spec.type = Type::kReplicate;
    } else if (type == "distribute-replicate") {
      spec.type = Type::kDistributeReplicate;
    } else {
      return Bad("'type' must be distribute, replicate or distribute-replicate, not '" + type +
                 "'");
    }
    auto num = [&](const char* key, int64_t def, int64_t lo, int64_t hi) -> StatusOr<int64_t> {
      if (!j.contains(key)) return def;
      if (!j[key].is_number_integer()) return Bad(std::string("'") + key + "' must be an integer");
      int64_t v = j[key].get<int64_t>();
      if (v < lo || v > hi) {
        return Bad(std::string("'") + key + "' must be in " + std::to_string(lo) + ".." +
                   std::to_string(hi));
      }
      return v;
    };
    CAIRN_ASSIGN_OR_RETURN(int64_t replica, num("replica", 1, 1, 5));
    CAIRN_ASSIGN_OR_RETURN(int64_t arbiter, num("arbiter", 0, 0, 1));
    CAIRN_ASSIGN_OR_RETURN(int64_t generation, num("generation", 0, 0, INT64_MAX));
    if (j.contains("size_bytes") && !j["size_bytes"].is_number_unsigned() &&
        !(j["size_bytes"].is_number_integer() && j["size_bytes"].get<int64_t>() == 0)) {
      return Bad("'size_bytes' must be a non-negative integer");
    }
    spec.replica = static_cast<int>(replica);
    spec.arbiter = static_cast<int>(arbiter);
    spec.generation = static_cast<uint64_t>(generation);
    spec.size_bytes = j.value("size_bytes", uint64_t{0});
    if (spec.arbiter == 1 && spec.replica != 3) return Bad("'arbiter': 1 needs 'replica': 3");
    if (spec.type == Type::kDistribute && spec.replica != 1) {
      return Bad("type distribute has 'replica': 1");
    }
    if (spec.type != Type::kDistribute && spec.replica < 2) {
      return Bad("type " + type + " needs 'replica' >= 2");
    }

    if (!j.contains("subvolumes") || !j["subvolumes"].is_array() || j["subvolumes"].empty()) {
      return Bad("'subvolumes' (non-empty array of brick lists) is required");
    }
    if (j["subvolumes"].size() > 1024) return Bad("'subvolumes': at most 1024");
    std::set<std::pair<std::string, std::string>> seen;
    for (size_t s = 0; s < j["subvolumes"].size(); ++s) {
      const json& sv = j["subvolumes"][s];
      std::string where = "'subvolumes[" + std::to_string(s) + "]'";
      if (!sv.is_array()) return Bad(where + " must be an array of bricks");
      if (static_cast<int>(sv.size()) != spec.replica) {
        return Bad(where + " has " + std::to_string(sv.size()) + " bricks; 'replica' is " +
                   std::to_string(spec.replica));
      }
      std::vector<BrickRef> bricks;
      for (size_t r = 0; r < sv.size(); ++r) {
        const json& b = sv[r];
        std::string bw = "'subvolumes[" + std::to_string(s) + "][" + std::to_string(r) + "]'";
        if (!b.is_object() || !b.contains("node") || !b["node"].is_string() ||
            !b.contains("brick_id") || !b["brick_id"].is_string()) {
          return Bad(bw + " needs string fields 'node' and 'brick_id'");
        }
        BrickRef ref;
        ref.node = b["node"].get<std::string>();
        ref.brick_id = b["brick_id"].get<std::string>();
        if (!ValidNode(ref.node))
          return Bad(bw + ": 'node' must be host:port, not '" + ref.node + "'");
        if (!ValidBrickId(ref.brick_id)) {
          return Bad(bw + ": 'brick_id' must match [A-Za-z0-9._-]{1,128}");
        }
        if (!seen.insert({ref.node, ref.brick_id}).second) {
          return Bad(bw + ": brick " + ref.brick_id + " on " + ref.node + " appears twice");
        }
        ref.arbiter = spec.arbiter == 1 && r + 1 == sv.size();
        bricks.push_back(std::move(ref));
      }
      spec.subvolumes.push_back(std::move(bricks));
    }
    if (spec.type == Type::kReplicate && spec.subvolumes.size() != 1) {
      return Bad("type replicate has exactly one subvolume (use distribute-replicate)");
    }
  } catch (const json::exception& e) {
    return Bad(e.what());
  }
  return spec;
}

StatusOr<VolumeSpec> VolumeSpec::Load(const std::string& path) {
  auto text = ReadFile(path);
  if (!text.ok()) {
    return Status(text.status().code(), "volume spec " + path + ": " + text.status().message(),
                  text.status().posix_errno());
  }
  auto spec = Parse(*text);
  if (!spec.ok()) return Status::InvalidArgument(path + ": " + spec.status().message());
  return spec;
}

std::string VolumeSpec::ToJson() const {
  json j;
  j["volume_id"] = volume_id.ToString();
  j["name"] = name;
  j["type"] = std::string(TypeName(type));
  j["replica"] = replica;
  j["arbiter"] = arbiter;
  j["generation"] = generation;
  j["size_bytes"] = size_bytes;
  j["subvolumes"] = json::array();
  for (const auto& sv : subvolumes) {
    json a = json::array();
    for (const auto& b : sv) a.push_back({{"node", b.node}, {"brick_id", b.brick_id}});
    j["subvolumes"].push_back(std::move(a));
  }
  return j.dump(2) + "\n";
}

}  // namespace cairn::client
