// Small crash-safe file helpers shared by the daemons.
//
//   CAIRN_RETURN_IF_ERROR(WriteFileAtomic("/var/lib/cairn/state.json", json));
//   CAIRN_ASSIGN_OR_RETURN(std::string token, ReadSecretFile(path));
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace cairn {

// Replaces `path` with `contents` crash-safely: write a temporary file beside
// it, fsync, rename over, fsync the directory. A crash leaves the old or the
// new contents, never a mix. May do a significant amount of work (two fsyncs).
Status WriteFileAtomic(const std::string& path, std::string_view contents, int mode = 0600);

// Returns the whole contents of `path`.
StatusOr<std::string> ReadFile(const std::string& path);

// Returns the first line of `path` without surrounding white space; an empty
// secret is InvalidArgument. Never logs the value.
StatusOr<std::string> ReadSecretFile(const std::string& path);

// The argv of process `pid`, from /proc/PID/cmdline (empty if it is gone or a
// zombie).
std::vector<std::string> ProcessCmdline(pid_t pid);

// Undoes the octal escapes of a /proc/self/mountinfo field (\040 for a space).
std::string UnescapeMountField(std::string_view field);

// One line of /proc/self/mountinfo, its path fields unescaped.
struct MountInfoLine {
  std::string dev;   // "major:minor"
  std::string root;  // the mounted subtree of the source file system
  std::string mount_point;
  std::string options;  // per-mount options ("rw,nosuid,nodev,relatime")
  std::string fs_type;  // "fuse.cairn"
  std::string source;
  bool read_only() const { return options == "ro" || options.rfind("ro,", 0) == 0; }
};

// Every mount of this process's mount namespace, in /proc/self/mountinfo
// order (a later one on the same point is mounted on top of an earlier one).
StatusOr<std::vector<MountInfoLine>> ReadMountTable();

// The topmost mount on exactly `path`, if any (none if the table is unreadable).
std::optional<MountInfoLine> TopMountAt(const std::string& path);

// The distinct mount points strictly below `dir`, deepest first.
std::vector<std::string> MountPointsUnder(const std::string& dir);

// True iff `a` and `b` are equal, in time independent of where they differ.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

}  // namespace cairn
