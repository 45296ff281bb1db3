#include "tests/file_util.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <random>

namespace cairn::test {

std::string Pattern(size_t n, uint64_t seed) {
  std::string s(n, '\0');
  std::mt19937_64 rng(seed);
  for (size_t i = 0; i < n; i += 8) {
    const uint64_t v = rng();
    std::memcpy(s.data() + i, &v, std::min<size_t>(8, n - i));
  }
  return s;
}

int WriteWholeFile(const std::string& path, const std::string& data, bool fsync) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return errno;
  int err = 0;
  for (size_t off = 0; off < data.size() && err == 0;) {
    ssize_t n = ::write(fd, data.data() + off, std::min<size_t>(data.size() - off, 1 << 20));
    if (n < 0) {
      err = errno;
    } else {
      off += static_cast<size_t>(n);
    }
  }
  if (err == 0 && fsync && ::fsync(fd) != 0) err = errno;
  if (::close(fd) != 0 && err == 0) err = errno;
  return err;
}

std::string ReadWholeFile(const std::string& path, int* err) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    *err = errno;
    return "";
  }
  (void)::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  std::string out, buf(1 << 20, '\0');
  *err = 0;
  for (;;) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0) {
      *err = errno;
      out.clear();
      break;
    }
    if (n == 0) break;
    out.append(buf.data(), static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

void DropCaches() {
  ::sync();
  int fd = ::open("/proc/sys/vm/drop_caches", O_WRONLY | O_CLOEXEC);
  if (fd >= 0) {
    (void)!::write(fd, "3", 1);
    ::close(fd);
  }
}

}  // namespace cairn::test
