// The pure parts of the controller: StorageClass parameters, the provisioner
// volume name derived from a CSI name, capacity ranges in GiB (docs/csi.md).
//
//   CAIRN_ASSIGN_OR_RETURN(CreateParams p, ParseParameters(request_parameters));
//   std::string name = VolumeNameFor(request.name(), p);   // stable per CSI name
//   CAIRN_ASSIGN_OR_RETURN(int64_t gib, SizeGiB(required_bytes, limit_bytes));
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/status.h"

namespace cairn::csi {

inline constexpr int64_t kGiB = int64_t{1} << 30;
// The provisioner's size range (GiB).
inline constexpr int64_t kMaxVolumeGiB = 1048576;

struct CreateParams {
  int replica = 3;
  bool arbiter = false;
  std::vector<std::string> clusters;
  std::vector<int> zones;  // only these zones' nodes get bricks; empty: any
  std::string name_prefix;
  // From external-provisioner's --extra-create-metadata, for naming only.
  std::string pvc_name;
  std::string pvc_namespace;

  // The body of POST /volumes for `name` and `size_gib`.
  nlohmann::json RequestBody(const std::string& name, int64_t size_gib) const;
};

// Parses a StorageClass's parameters. Known keys: volumetype (replicate:N |
// none), replica, arbiter, clusterid, zones ("1,3"), volumenameprefix, volumeoptions; keys
// starting with "csi.storage.k8s.io/" are accepted (pvc/name and
// pvc/namespace are kept). Anything else is InvalidArgument naming the key.
StatusOr<CreateParams> ParseParameters(const std::map<std::string, std::string>& parameters);

// The provisioner volume name for a CSI volume name: the name itself when it
// matches [A-Za-z0-9_-]{1,100} and there is no prefix; with a prefix,
// PREFIX_NAMESPACE_PVCNAME_<8 hex> (Heketi's volumenameprefix form, PVC parts
// omitted when unknown); otherwise "csi-" + 32 hex of SHA-256(name). Always a
// function of (name, prefix, pvc name, namespace) only, so retries agree.
std::string VolumeNameFor(const std::string& csi_name, const CreateParams& params);

// The volume size in whole GiB for a CSI capacity range (0: unset): the
// required bytes rounded up, 1 GiB when neither is set, the limit rounded down
// when only the limit is set. OutOfRange when the limit is below the rounded
// required size, when no whole GiB fits, or above the provisioner's maximum;
// InvalidArgument for negative values.
StatusOr<int64_t> SizeGiB(int64_t required_bytes, int64_t limit_bytes);

// Lower-case hex SHA-256 of `s` (names, file keys).
std::string Sha256Hex(const std::string& s);

// True iff `bytes` is within the range (0 bounds are unset).
bool SizeFits(int64_t bytes, int64_t required_bytes, int64_t limit_bytes);

}  // namespace cairn::csi
