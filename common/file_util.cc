// Crash-safe writes and secret files.
#include "common/file_util.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <sstream>

#include "common/id.h"
#include "common/status_errno.h"

namespace cairn {

Status WriteFileAtomic(const std::string& path, std::string_view contents, int mode) {
  // Unique per call (pid alone collides between threads and across restarts of
  // pid 1 in a container); O_EXCL so a leftover never lends us its mode.
  std::string tmp = path + ".tmp." + std::to_string(::getpid()) + "." + RandomHexToken(6);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) return StatusFromErrno(errno, "create " + tmp);
  size_t done = 0;
  while (done < contents.size()) {
    ssize_t n = ::write(fd, contents.data() + done, contents.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      return StatusFromErrno(err, "write " + tmp);
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    return StatusFromErrno(err, "fsync " + tmp);
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return StatusFromErrno(err, "rename " + tmp);
  }
  std::string dir = path.substr(0, path.find_last_of('/') + 1);
  if (dir.empty()) dir = ".";
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return Status::Ok();
}

StatusOr<std::string> ReadFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return StatusFromErrno(errno, "open " + path);
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      return StatusFromErrno(err, "read " + path);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

StatusOr<std::string> ReadSecretFile(const std::string& path) {
  CAIRN_ASSIGN_OR_RETURN(std::string raw, ReadFile(path));
  if (auto nl = raw.find('\n'); nl != std::string::npos) raw.resize(nl);
  size_t b = raw.find_first_not_of(" \t\r");
  size_t e = raw.find_last_not_of(" \t\r");
  if (b == std::string::npos) return Status::InvalidArgument("secret file " + path + " is empty");
  return raw.substr(b, e - b + 1);
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::vector<std::string> ProcessCmdline(pid_t pid) {
  std::vector<std::string> args;
  auto text = ReadFile("/proc/" + std::to_string(pid) + "/cmdline");
  if (!text.ok()) return args;
  size_t start = 0;
  while (start < text->size()) {
    size_t end = text->find('\0', start);
    if (end == std::string::npos) end = text->size();
    args.push_back(text->substr(start, end - start));
    start = end + 1;
  }
  return args;
}

std::string UnescapeMountField(std::string_view field) {
  std::string out;
  for (size_t i = 0; i < field.size(); ++i) {
    if (field[i] == '\\' && i + 3 < field.size() &&
        field.substr(i + 1, 3).find_first_not_of("01234567") == std::string_view::npos) {
      out += static_cast<char>((field[i + 1] - '0') * 64 + (field[i + 2] - '0') * 8 +
                               (field[i + 3] - '0'));
      i += 3;
    } else {
      out += field[i];
    }
  }
  return out;
}

StatusOr<std::vector<MountInfoLine>> ReadMountTable() {
  std::ifstream in("/proc/self/mountinfo");
  if (!in) return StatusFromErrno(errno, "open /proc/self/mountinfo");
  std::vector<MountInfoLine> out;
  std::string line;
  while (std::getline(in, line)) {
    // ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTIONS
    std::istringstream f(line);
    std::string id, parent, tok;
    MountInfoLine m;
    if (!(f >> id >> parent >> m.dev >> m.root >> m.mount_point >> m.options)) continue;
    while (f >> tok && tok != "-") {
    }
    f >> m.fs_type >> m.source;
    m.root = UnescapeMountField(m.root);
    m.mount_point = UnescapeMountField(m.mount_point);
    m.source = UnescapeMountField(m.source);
    out.push_back(std::move(m));
  }
  return out;
}

std::optional<MountInfoLine> TopMountAt(const std::string& path) {
  auto table = ReadMountTable();
  if (!table.ok()) return std::nullopt;
  std::optional<MountInfoLine> found;
  for (auto& m : *table) {
    if (m.mount_point == path) found = std::move(m);  // later lines are on top
  }
  return found;
}

std::vector<std::string> MountPointsUnder(const std::string& dir) {
  std::vector<std::string> out;
  auto table = ReadMountTable();
  if (!table.ok()) return out;
  for (const auto& m : *table) {
    if (m.mount_point.rfind(dir + "/", 0) == 0) out.push_back(m.mount_point);
  }
  std::sort(out.begin(), out.end(), [](const std::string& a, const std::string& b) {
    return a.size() != b.size() ? a.size() > b.size() : a < b;
  });
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

}  // namespace cairn
