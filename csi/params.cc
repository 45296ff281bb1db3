#include "csi/params.h"

#include <openssl/sha.h>

#include <charconv>
#include <cstdio>

namespace cairn::csi {
namespace {

constexpr char kK8sPrefix[] = "csi.storage.k8s.io/";

bool ValidVolumeName(const std::string& s) {
  if (s.empty() || s.size() > 100) return false;
  for (char c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

// Keeps [A-Za-z0-9-] and turns anything else into '-'.
std::string Sanitize(const std::string& s) {
  std::string out;
  for (char c : s) {
    const bool ok =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
    out += ok ? c : '-';
  }
  return out;
}

StatusOr<int> ParseReplica(const std::string& key, const std::string& v) {
  int n = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc() || p != v.data() + v.size() || n < 1 || n > 5) {
    return Status::InvalidArgument("parameter " + key + "=\"" + v +
                                   "\": the replica count must be 1 to 5");
  }
  return n;
}

StatusOr<bool> ParseBool(const std::string& key, const std::string& v) {
  if (v == "true" || v == "True" || v == "1" || v == "yes") return true;
  if (v == "false" || v == "False" || v == "0" || v == "no" || v.empty()) return false;
  return Status::InvalidArgument("parameter " + key + "=\"" + v + "\": must be true or false");
}

std::vector<std::string> SplitList(const std::string& v) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos <= v.size()) {
    size_t end = v.find(',', pos);
    if (end == std::string::npos) end = v.size();
    std::string item = v.substr(pos, end - pos);
    while (!item.empty() && item.front() == ' ') item.erase(item.begin());
    while (!item.empty() && item.back() == ' ') item.pop_back();
    if (!item.empty()) out.push_back(item);
    pos = end + 1;
  }
  return out;
}

}  // namespace

nlohmann::json CreateParams::RequestBody(const std::string& name, int64_t size_gib) const {
  nlohmann::json body = {{"name", name}, {"size", size_gib}};
  if (replica == 1) {
    body["durability"] = {{"type", "none"}};
  } else {
    body["durability"] = {{"type", "replicate"}, {"replicate", {{"replica", replica}}}};
  }
  if (arbiter) body["arbiter"] = true;
  if (!clusters.empty()) body["clusters"] = clusters;
  if (!zones.empty()) body["zones"] = zones;
  return body;
}

StatusOr<CreateParams> ParseParameters(const std::map<std::string, std::string>& parameters) {
  CreateParams p;
  bool replica_set = false;
  for (const auto& [key, value] : parameters) {
    if (key.rfind(kK8sPrefix, 0) == 0) {
      const std::string rest = key.substr(sizeof(kK8sPrefix) - 1);
      if (rest == "pvc/name") p.pvc_name = value;
      if (rest == "pvc/namespace") p.pvc_namespace = value;
      continue;
    }
    if (key == "volumetype") {
      if (value == "none") {
        p.replica = 1;
      } else if (value.rfind("replicate:", 0) == 0) {
        CAIRN_ASSIGN_OR_RETURN(p.replica, ParseReplica(key, value.substr(10)));
      } else if (value.rfind("disperse", 0) == 0) {
        return Status::InvalidArgument("parameter volumetype=\"" + value +
                                       "\": disperse volumes are not supported");
      } else {
        return Status::InvalidArgument("parameter volumetype=\"" + value +
                                       "\": expected replicate:N or none");
      }
      replica_set = true;
    } else if (key == "replica") {
      CAIRN_ASSIGN_OR_RETURN(p.replica, ParseReplica(key, value));
      replica_set = true;
    } else if (key == "arbiter") {
      CAIRN_ASSIGN_OR_RETURN(p.arbiter, ParseBool(key, value));
    } else if (key == "clusterid" || key == "clusterids" || key == "clusters") {
      p.clusters = SplitList(value);
    } else if (key == "zones" || key == "zone") {
      p.zones.clear();
      for (const std::string& z : SplitList(value)) {
        int n = 0;
        auto [ptr, ec] = std::from_chars(z.data(), z.data() + z.size(), n);
        if (ec != std::errc() || ptr != z.data() + z.size() || n < 1) {
          return Status::InvalidArgument("parameter " + key + "=\"" + value +
                                         "\": a comma-separated list of zone numbers (>= 1)");
        }
        p.zones.push_back(n);
      }
    } else if (key == "volumenameprefix") {
      if (value.empty() || value.size() > 40 || !ValidVolumeName(value) ||
          value.find('_') != std::string::npos) {
        return Status::InvalidArgument("parameter volumenameprefix=\"" + value +
                                       "\": 1 to 40 characters of [A-Za-z0-9-]");
      }
      p.name_prefix = value;
    } else if (key == "volumeoptions") {
      // Heketi's "option value" pairs, comma-separated; only the arbiter one has a meaning here.
      for (const std::string& opt : SplitList(value)) {
        if (opt == "user.heketi.arbiter true") {
          p.arbiter = true;
        } else if (opt == "user.heketi.arbiter false") {
          p.arbiter = false;
        } else {
          return Status::InvalidArgument("parameter volumeoptions: unsupported option \"" + opt +
                                         "\" (only user.heketi.arbiter true|false)");
        }
      }
    } else {
      return Status::InvalidArgument(
          "unknown parameter \"" + key +
          "\" (known: volumetype, replica, arbiter, clusterid, zones, volumenameprefix, "
          "volumeoptions)");
    }
  }
  if (p.arbiter && p.replica != 3) {
    if (!replica_set) {
      p.replica = 3;
    } else {
      return Status::InvalidArgument("an arbiter volume needs replica 3, not " +
                                     std::to_string(p.replica));
    }
  }
  return p;
}

std::string VolumeNameFor(const std::string& csi_name, const CreateParams& params) {
  if (params.name_prefix.empty()) {
    if (ValidVolumeName(csi_name)) return csi_name;
    return "csi-" + Sha256Hex(csi_name).substr(0, 32);
  }
  const std::string tag = Sha256Hex(csi_name).substr(0, 8);
  std::string name = params.name_prefix;
  // Heketi: PREFIX_NAMESPACE_PVCNAME_ID; the parts must leave room for the tag.
  for (const std::string* part : {&params.pvc_namespace, &params.pvc_name}) {
    if (part->empty()) continue;
    name += "_" + Sanitize(*part);
  }
  if (params.pvc_name.empty()) name += "_" + Sanitize(csi_name);
  if (name.size() > 100 - 9) name.resize(100 - 9);
  return name + "_" + tag;
}

StatusOr<int64_t> SizeGiB(int64_t required_bytes, int64_t limit_bytes) {
  if (required_bytes < 0 || limit_bytes < 0) {
    return Status::InvalidArgument("capacity_range: bytes must not be negative");
  }
  int64_t gib = 1;
  if (required_bytes > 0) {
    gib = required_bytes / kGiB + (required_bytes % kGiB != 0 ? 1 : 0);
  }
  if (limit_bytes > 0 && gib * kGiB > limit_bytes) {
    return Status::OutOfRange("capacity_range: volumes come in whole GiB; " + std::to_string(gib) +
                              " GiB (" + std::to_string(gib * kGiB) +
                              " bytes) exceeds limit_bytes " + std::to_string(limit_bytes));
  }
  if (gib > kMaxVolumeGiB) {
    return Status::OutOfRange("capacity_range: " + std::to_string(gib) +
                              " GiB is more than the maximum " + std::to_string(kMaxVolumeGiB) +
                              " GiB");
  }
  return gib;
}

std::string Sha256Hex(const std::string& s) {
  unsigned char d[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(s.data()), s.size(), d);
  std::string out;
  char buf[3];
  for (unsigned char c : d) {
    std::snprintf(buf, sizeof(buf), "%02x", c);
    out += buf;
  }
  return out;
}

bool SizeFits(int64_t bytes, int64_t required_bytes, int64_t limit_bytes) {
  if (required_bytes > 0 && bytes < required_bytes) return false;
  if (limit_bytes > 0 && bytes > limit_bytes) return false;
  return true;
}

}  // namespace cairn::csi
