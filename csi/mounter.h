// Mount plumbing of the node service: mount table lookups, health probes,
// cairn-mount runs, bind mounts and unmounts that also work when the FUSE
// process behind a mount is gone (docs/csi.md, "Node").
//
//   CAIRN_RETURN_IF_ERROR(RunCairnMount({.binary = b, .source = s, .target = staging,
//                                        .options = {"token_file=/t"}}));
//   CAIRN_RETURN_IF_ERROR(BindMount(staging, target, /*read_only=*/true));
//   if (Probe(target) == MountHealth::kBroken) ...   // ENOTCONN: FUSE process died
//   CAIRN_RETURN_IF_ERROR(Unmount(target));           // lazily if it must
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "common/file_util.h"
#include "common/status.h"

namespace cairn::csi {

using MountEntry = MountInfoLine;  // common/file_util.h

// The topmost mount on `path` (as /proc/self/mountinfo lists it, after the
// path's trailing '/' is dropped), if any.
std::optional<MountEntry> FindMount(const std::string& path);

enum class MountHealth {
  kMissing,     // the path does not exist
  kNotMounted,  // a directory (or file) with nothing mounted on it
  kHealthy,     // mounted and answering stat
  kBroken,      // mounted, but stat fails (ENOTCONN: its FUSE process died)
};
const char* MountHealthName(MountHealth h);
// What `path` is now; `error` (optional) gets the failing stat's message.
MountHealth Probe(const std::string& path, std::string* error = nullptr);

struct CairnMountRequest {
  std::string binary;
  std::string source;
  std::string target;
  std::vector<std::string> options;  // joined into one -o
  std::string stderr_file;           // where its stderr goes (read back on failure)
  std::chrono::milliseconds timeout{std::chrono::seconds(90)};
};
// Runs cairn-mount (it daemonizes once mounted). Exit 2 → InvalidArgument,
// other failures → Unavailable, both with cairn-mount's own message.
Status RunCairnMount(const CairnMountRequest& request);

// Bind-mounts `source` on `target` (nosuid, nodev), read-only when asked.
Status BindMount(const std::string& source, const std::string& target, bool read_only);

// Unmounts every mount stacked on `path`; not mounted is Ok. Busy or broken
// mounts are detached (MNT_DETACH).
Status Unmount(const std::string& path);

// mkdir -p with mode 0750; an existing directory is Ok. A broken mount at
// `path` counts as existing.
Status MakeDirs(const std::string& path);

}  // namespace cairn::csi
