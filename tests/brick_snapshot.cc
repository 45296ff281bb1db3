#include "tests/brick_snapshot.h"

#include <dirent.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <vector>

#include "common/id.h"

namespace cairn::test {
namespace {

// Digest of a file's contents that skips holes and zero 64 KiB pieces, so a
// sparse 5 GiB file is hashed in milliseconds: equal size and equal non-zero
// pieces mean equal contents.
std::string ContentDigest(const std::string& path, uint64_t size) {
  int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return "open-failed";
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  std::string head = std::to_string(size) + ";";
  EVP_DigestUpdate(ctx, head.data(), head.size());
  constexpr uint64_t kPiece = 64 << 10;
  std::string buf(kPiece, '\0');
  const std::string zero(kPiece, '\0');
  off_t off = 0;
  while (static_cast<uint64_t>(off) < size) {
    off_t data = ::lseek(fd, off, SEEK_DATA);
    if (data < 0) break;
    off_t hole = ::lseek(fd, data, SEEK_HOLE);
    if (hole < 0) hole = static_cast<off_t>(size);
    for (uint64_t p = static_cast<uint64_t>(data) / kPiece * kPiece;
         p < static_cast<uint64_t>(hole) && p < size; p += kPiece) {
      ssize_t n = ::pread(fd, buf.data(), kPiece, static_cast<off_t>(p));
      if (n <= 0) break;
      if (std::memcmp(buf.data(), zero.data(), static_cast<size_t>(n)) == 0) continue;
      EVP_DigestUpdate(ctx, &p, sizeof(p));
      EVP_DigestUpdate(ctx, buf.data(), static_cast<size_t>(n));
    }
    off = hole;
  }
  ::close(fd);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx, md, &len);
  EVP_MD_CTX_free(ctx);
  return HexEncode(std::string(reinterpret_cast<char*>(md), len));
}

void Walk(const std::string& root, const std::string& rel, BrickSnapshot* out,
          std::map<uint64_t, std::vector<std::string>>* inodes) {
  const std::string dir = rel.empty() ? root : root + "/" + rel;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return;
  std::vector<std::string> names;
  while (auto* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    if (rel.empty() && name == ".cairn") continue;
    names.push_back(name);
  }
  ::closedir(d);
  for (const auto& name : names) {
    const std::string r = rel.empty() ? name : rel + "/" + name;
    const std::string path = root + "/" + r;
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0) continue;
    BrickObject n;
    n.mode = st.st_mode;
    n.uid = st.st_uid;
    n.gid = st.st_gid;
    n.mtime_ns = st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
    n.size = static_cast<uint64_t>(st.st_size);
    n.blocks = static_cast<uint64_t>(st.st_blocks);
    n.ino = st.st_ino;
    n.nlink = S_ISDIR(st.st_mode) ? 0 : st.st_nlink - 1;
    switch (st.st_mode & S_IFMT) {
      case S_IFREG:
        n.type = 'f';
        n.digest = ContentDigest(path, n.size);
        (*inodes)[st.st_ino].push_back(r);
        break;
      case S_IFDIR:
        n.type = 'd';
        break;
      case S_IFLNK: {
        n.type = 'l';
        char buf[4096];
        ssize_t k = ::readlink(path.c_str(), buf, sizeof(buf));
        if (k > 0) n.target.assign(buf, static_cast<size_t>(k));
        break;
      }
      case S_IFIFO:
        n.type = 'p';
        break;
      case S_IFSOCK:
        n.type = 's';
        break;
      default:
        n.type = S_ISCHR(st.st_mode) ? 'c' : 'b';
        n.rdev = st.st_rdev;
    }
    char list[8192];
    ssize_t len = ::llistxattr(path.c_str(), list, sizeof(list));
    for (ssize_t pos = 0; pos < len;) {
      std::string xn(list + pos);
      pos += static_cast<ssize_t>(xn.size()) + 1;
      const bool keep = xn.rfind("user.", 0) == 0 || xn == "trusted.cairn.id" ||
                        xn == "trusted.cairn.ver" || xn == "trusted.cairn.layout" ||
                        xn == "trusted.cairn.linkto";
      if (!keep) continue;
      char val[65536];
      ssize_t vl = ::lgetxattr(path.c_str(), xn.c_str(), val, sizeof(val));
      n.xattrs[xn] = vl >= 0 ? std::string(val, static_cast<size_t>(vl)) : "?";
    }
    (*out)[r] = n;
    if (n.type == 'd') Walk(root, r, out, inodes);
  }
}

}  // namespace

BrickSnapshot TakeBrickSnapshot(const std::string& brick) {
  BrickSnapshot s;
  std::map<uint64_t, std::vector<std::string>> inodes;
  Walk(brick, "", &s, &inodes);
  for (auto& [path, n] : s) {
    if (n.type != 'f') continue;
    auto paths = inodes[n.ino];
    std::sort(paths.begin(), paths.end());
    for (const auto& p : paths) n.links += p + ";";
  }
  return s;
}

std::string DescribeBrickObject(const BrickObject& n) {
  std::ostringstream o;
  o << n.type << " mode=" << std::oct << n.mode << std::dec << " uid=" << n.uid << " gid=" << n.gid
    << " size=" << n.size << " nlink=" << n.nlink << " mtime=" << n.mtime_ns
    << " digest=" << n.digest.substr(0, 12) << " links=" << n.links;
  for (const auto& [k, v] : n.xattrs) {
    o << " " << k << "="
      << (k == "trusted.cairn.id" || k == "trusted.cairn.ver" ? HexEncode(v) : v);
  }
  return o.str();
}

// Differences between two bricks' trees ("" if none). data=false: an
// arbiter, whose files hold no data (sizes and contents not compared).
std::string DiffBrickSnapshots(const BrickSnapshot& a, const BrickSnapshot& b, bool data,
                               int64_t mtime_slack_ns) {
  std::ostringstream o;
  for (const auto& [p, x] : a) {
    auto it = b.find(p);
    if (it == b.end()) {
      o << "  only in A: " << p << "\n";
      continue;
    }
    const BrickObject& y = it->second;
    bool same = x.type == y.type && x.mode == y.mode && x.uid == y.uid && x.gid == y.gid &&
                x.nlink == y.nlink && x.target == y.target && x.rdev == y.rdev &&
                x.xattrs == y.xattrs && x.links == y.links;
    // An arbiter's files take no data: the client's empty writes do not move
    // their mtime, so neither their sizes nor their mtimes are comparable.
    if (data || x.type != 'f') same = same && std::llabs(x.mtime_ns - y.mtime_ns) <= mtime_slack_ns;
    if (data && x.type == 'f') same = same && x.size == y.size && x.digest == y.digest;
    if (!same)
      o << "  " << p << "\n    A: " << DescribeBrickObject(x)
        << "\n    B: " << DescribeBrickObject(y) << "\n";
  }
  for (const auto& [p, y] : b) {
    if (!a.count(p)) o << "  only in B: " << p << "\n";
  }
  return o.str();
}

}  // namespace cairn::test
