// System call helpers.
#include "brickd/fs.h"

#include <linux/openat2.h>
#include <sys/syscall.h>
#include <sys/xattr.h>

#include <cerrno>

#include "common/status_errno.h"

namespace cairn::brickd {

std::string ProcPath(int fd, std::string_view name) {
  std::string p = "/proc/self/fd/" + std::to_string(fd);
  if (!name.empty()) {
    p += '/';
    p += name;
  }
  return p;
}

int OpenBeneath(int dirfd, const std::string& path, int flags, uint64_t extra_resolve) {
  struct open_how how {};
  how.flags = static_cast<uint64_t>(flags | O_CLOEXEC);
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | extra_resolve;
  for (;;) {
    long fd = ::syscall(SYS_openat2, dirfd, path.c_str(), &how, sizeof(how));
    if (fd < 0 && errno == EAGAIN) continue;  // a concurrent rename raced the walk
    return static_cast<int>(fd);
  }
}

int GetXattrPath(const std::string& path, const char* name, std::string* out) {
  char buf[512];
  ssize_t n = ::getxattr(path.c_str(), name, buf, sizeof(buf));
  if (n >= 0) {
    out->assign(buf, static_cast<size_t>(n));
    return 0;
  }
  if (errno != ERANGE) return -1;
  ssize_t size = ::getxattr(path.c_str(), name, nullptr, 0);
  if (size < 0) return -1;
  out->resize(static_cast<size_t>(size));
  n = ::getxattr(path.c_str(), name, out->data(), out->size());
  if (n < 0) return -1;
  out->resize(static_cast<size_t>(n));
  return 0;
}

Status Errno(std::string_view what) { return StatusFromErrno(errno, what); }

}  // namespace cairn::brickd
