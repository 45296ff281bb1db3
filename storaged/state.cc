// storaged's state file: JSON in, JSON out, every field checked on the way in.
#include "storaged/state.h"

#include <unistd.h>

#include <cerrno>
#include <nlohmann/json.hpp>

#include "common/file_util.h"

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

StatusOr<NodeState> StateFile::Load() const {
  if (::access(path_.c_str(), F_OK) != 0 && errno == ENOENT) return NodeState{};
  auto text = ReadFile(path_);
  if (!text.ok()) {
    return Corrupt("state file " + path_ + " cannot be read: " + text.status().message());
  }
  auto st = NodeState::FromJson(*text);
  if (!st.ok()) {
    return Corrupt("state file " + path_ + " is corrupt: " + st.status().message() +
                   " (fix or restore it; storaged will not start empty over it)");
  }
  return st;
}

Status StateFile::Save(const NodeState& state) const {
  return WriteFileAtomic(path_, state.ToJson(), 0600);
}

}  // namespace cairn::storaged
