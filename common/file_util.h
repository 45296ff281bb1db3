// Small crash-safe file helpers shared by the daemons.
//
//   CAIRN_RETURN_IF_ERROR(WriteFileAtomic("/var/lib/cairn/state.json", json));
//   CAIRN_ASSIGN_OR_RETURN(std::string token, ReadSecretFile(path));
#pragma once

#include <sys/types.h>

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

// True iff `a` and `b` are equal, in time independent of where they differ.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

}  // namespace cairn
