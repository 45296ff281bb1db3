// The errno edge: POSIX errno values <-> Status. The only place where the
// mapping lives; brickd uses StatusFromErrno after a failed system call and
// the FUSE mount uses ErrnoFromStatus to answer the kernel.
//
//   if (::mkdirat(fd, name, mode) != 0) return StatusFromErrno(errno, "mkdir " + name);
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace cairn {

// Returns the canonical code for a POSIX errno (ENOENT -> kNotFound, ...).
StatusCode CodeFromErrno(int err);

// Returns a status carrying `err` precisely, with message "<context>: <strerror>".
Status StatusFromErrno(int err, std::string_view context);

// Returns the errno a file system must answer for `status`: its recorded errno
// if it has one, else the code's conventional errno (0 for ok).
int ErrnoFromStatus(const Status& status);

// Returns the symbolic name of an errno value, e.g. "ENOENT"; "E<n>" if unknown.
std::string ErrnoName(int err);

}  // namespace cairn
