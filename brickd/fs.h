// Thin, errno-preserving wrappers over the *at() system calls brickd needs,
// plus an owning file descriptor.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <string_view>
#include <utility>

#include "common/status.h"

namespace cairn::brickd {

// An owned file descriptor (or a borrowed one, never closed).
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd, bool owned = true) : fd_(fd), owned_(owned) {}
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)), owned_(o.owned_) {}
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      Reset();
      fd_ = std::exchange(o.fd_, -1);
      owned_ = o.owned_;
    }
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { Reset(); }
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  // Gives up ownership and returns the descriptor.
  int Release() { return std::exchange(fd_, -1); }
  void Reset() {
    if (fd_ >= 0 && owned_) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
  bool owned_ = true;
};

// "/proc/self/fd/N" or "/proc/self/fd/N/NAME": reaches an O_PATH fd's object
// (or a directory fd's child) for calls that have no fd form, without
// following a final symlink beyond the object itself.
std::string ProcPath(int fd, std::string_view name = {});

// openat2(dirfd, path, flags, RESOLVE_BENEATH | extra_resolve); -1 and errno on failure.
int OpenBeneath(int dirfd, const std::string& path, int flags, uint64_t extra_resolve = 0);

// Reads an xattr into `out`; returns -1 with errno on failure (ENODATA if absent).
int GetXattrPath(const std::string& path, const char* name, std::string* out);

// Returns the status for the errno of a failed call, prefixed with `what`.
Status Errno(std::string_view what);

}  // namespace cairn::brickd
