// Brick operations. See brick.h for the on-disk layout and the confinement rules.
#include "brickd/brick.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <vector>

#include "brickd/fs.h"
#include "common/digest.h"
#include "common/log.h"
#include "common/status_errno.h"

namespace cairn::brickd {
namespace {

constexpr char kIdXattr[] = "trusted.cairn.id";
constexpr char kVersionXattr[] = "trusted.cairn.ver";
constexpr char kMetaDir[] = ".cairn";
constexpr char kInternalXattrPrefix[] = "trusted.cairn.";
// Names under the internal prefix that belong to clients (distribution): a
// directory's hash layout and a pointer file's target subvolume.
constexpr std::string_view kClientXattrs[] = {"trusted.cairn.layout", "trusted.cairn.linkto"};
constexpr int kFormatVersion = 1;
constexpr uint32_t kDefaultReadDirEntries = 1024;
constexpr size_t kReadDirMaxBytes = 1u << 20;

// Striped locks shared by every brick in the process: fixed memory however
// many bricks are attached.
class LockTable {
 public:
  static constexpr size_t kStripes = 4096;
  size_t Index(const void* brick, const Uuid& id) const {
    return (id.Hash() ^ (reinterpret_cast<uintptr_t>(brick) * 0x9e3779b97f4a7c15ULL)) % kStripes;
  }
  std::mutex& At(size_t i) { return stripes_[i]; }

 private:
  std::array<std::mutex, kStripes> stripes_;
};

LockTable& Locks() {
  static LockTable* table = new LockTable();
  return *table;
}

// Holds the stripe(s) of one or two objects, taking them in index order.
class ObjectLock {
 public:
  ObjectLock(const void* brick, const Uuid& a) : ObjectLock(brick, a, a) {}
  ObjectLock(const void* brick, const Uuid& a, const Uuid& b) {
    size_t i = Locks().Index(brick, a), j = Locks().Index(brick, b);
    if (i > j) std::swap(i, j);
    first_ = std::unique_lock(Locks().At(i));
    if (j != i) second_ = std::unique_lock(Locks().At(j));
  }

 private:
  std::unique_lock<std::mutex> first_;
  std::unique_lock<std::mutex> second_;
};

std::string HexOf(const Uuid& id) { return id.ToHex(); }
std::string HandleRel(const Uuid& id) {
  std::string h = HexOf(id);
  return "h/" + h.substr(0, 2) + "/" + h;
}
std::string DirHandleRel(const Uuid& id) {
  std::string h = HexOf(id);
  return "d/" + h.substr(0, 2) + "/" + h;
}
std::string OrphanRel(const Uuid& id) { return "o/" + HexOf(id); }
std::string DirtyRel(const Uuid& id) { return "dirty/" + HexOf(id); }
// What a directory's handle symlink says: its parent's handle, then its name.
std::string DirHandleTarget(const Uuid& parent, std::string_view name) {
  std::string h = HexOf(parent);
  std::string t = "../" + h.substr(0, 2) + "/" + h + "/";
  t += name;
  return t;
}

StatusOr<Uuid> ParseId(const std::string& raw, const char* field) {
  auto id = Uuid::FromBytes(raw);
  if (!id.ok()) return id.status().WithContext(field);
  if (id->IsZero())
    return Status::InvalidArgument(std::string(field) + ": the zero id names nothing");
  return id;
}

Status ValidateName(std::string_view name, bool at_root) {
  if (name.empty()) return Status(StatusCode::kInvalidArgument, "empty name", EINVAL);
  if (name.size() > NAME_MAX) {
    return Status(StatusCode::kInvalidArgument,
                  "name is " + std::to_string(name.size()) + " bytes, the limit is 255",
                  ENAMETOOLONG);
  }
  if (name.find('/') != std::string_view::npos || name.find('\0') != std::string_view::npos) {
    return Status(StatusCode::kInvalidArgument, "name must be one path component (no '/' or NUL)",
                  EINVAL);
  }
  if (name == "." || name == "..") {
    return Status(StatusCode::kInvalidArgument, "'.' and '..' are not names", EINVAL);
  }
  if (at_root && name == kMetaDir) {
    return Status(StatusCode::kPermissionDenied, "'.cairn' is reserved at the volume root", EPERM);
  }
  return Status::Ok();
}

pb::FileType TypeOf(mode_t mode) {
  switch (mode & S_IFMT) {
    case S_IFREG:
      return pb::FILE_TYPE_REGULAR;
    case S_IFDIR:
      return pb::FILE_TYPE_DIRECTORY;
    case S_IFLNK:
      return pb::FILE_TYPE_SYMLINK;
    case S_IFIFO:
      return pb::FILE_TYPE_FIFO;
    case S_IFSOCK:
      return pb::FILE_TYPE_SOCKET;
    case S_IFCHR:
      return pb::FILE_TYPE_CHAR_DEVICE;
    case S_IFBLK:
      return pb::FILE_TYPE_BLOCK_DEVICE;
    default:
      return pb::FILE_TYPE_UNSPECIFIED;
  }
}

pb::FileType TypeOfDirent(unsigned char d_type) { return TypeOf(DTTOIF(d_type)); }

int64_t Ns(const struct timespec& ts) {
  return static_cast<int64_t>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}
struct timespec Ts(int64_t ns) {
  struct timespec ts;
  ts.tv_sec = ns / 1000000000LL;
  ts.tv_nsec = ns % 1000000000LL;
  if (ts.tv_nsec < 0) {
    ts.tv_nsec += 1000000000LL;
    ts.tv_sec -= 1;
  }
  return ts;
}

using XattrList = google::protobuf::RepeatedPtrField<pb::Xattr>;

struct Versions {
  uint64_t data = 0, meta = 0, entry = 0;
  uint64_t tag = 0;  // XOR of a hash of every (client id, seq) applied: see brick.proto
};
enum class VersionField { kData, kMeta, kEntry };

// trusted.cairn.ver is written compact: a marker byte, the three counters
// as LEB128 varints and the 8-byte tag (12 bytes for a new object). With the
// 16-byte id it fits in an ext4 inode's own xattr space (256-byte inodes),
// so creating, looking up or stat-ing an object never touches an external
// xattr block. Bricks written before hold the fixed 32-byte form (or 24,
// without tag); both are read, and a compact form that would be 24 or 32
// bytes long is written in the fixed form instead.
constexpr unsigned char kCompactVersions = 0xCA;

std::string EncodeVersions(const Versions& v) {
  std::string out(1, static_cast<char>(kCompactVersions));
  for (uint64_t x : {v.data, v.meta, v.entry}) {
    do {
      unsigned char b = x & 0x7f;
      x >>= 7;
      out.push_back(static_cast<char>(x != 0 ? b | 0x80 : b));
    } while (x != 0);
  }
  char tag[8];
  std::memcpy(tag, &v.tag, 8);
  out.append(tag, 8);
  if (out.size() == 24 || out.size() == 32) {
    out.resize(32);
    std::memcpy(out.data(), &v.data, 8);
    std::memcpy(out.data() + 8, &v.meta, 8);
    std::memcpy(out.data() + 16, &v.entry, 8);
    std::memcpy(out.data() + 24, &v.tag, 8);
  }
  return out;
}

Versions DecodeVersions(const std::string& raw) {
  Versions v;
  if (raw.size() != 24 && raw.size() != 32 && !raw.empty() &&
      static_cast<unsigned char>(raw[0]) == kCompactVersions) {
    size_t i = 1;
    for (uint64_t* field : {&v.data, &v.meta, &v.entry}) {
      uint64_t x = 0;
      for (int shift = 0; i < raw.size() && shift < 64; shift += 7) {
        const auto b = static_cast<unsigned char>(raw[i++]);
        x |= static_cast<uint64_t>(b & 0x7f) << shift;
        if ((b & 0x80) == 0) break;
      }
      *field = x;
    }
    if (i + 8 <= raw.size()) std::memcpy(&v.tag, raw.data() + i, 8);
    return v;
  }
  if (raw.size() == 24 || raw.size() == 32) {
    std::memcpy(&v.data, raw.data(), 8);
    std::memcpy(&v.meta, raw.data() + 8, 8);
    std::memcpy(&v.entry, raw.data() + 16, 8);
  }
  if (raw.size() == 32) std::memcpy(&v.tag, raw.data() + 24, 8);
  return v;
}

void ToProto(const Versions& v, pb::Version* out) {
  out->set_data(v.data);
  out->set_meta(v.meta);
  out->set_entry(v.entry);
  out->set_tag(v.tag);
}

// The tag contribution of one mutation: a 64-bit mix of the client id and
// its sequence number (splitmix64 finaliser over FNV-1a of the id).
uint64_t TxnTag(const pb::Txn& txn) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : txn.client_id()) h = (h ^ c) * 1099511628211ull;
  uint64_t z = h ^ (txn.seq() * 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// Xattr names a listing shows: everything but the brick's own trusted.cairn.*
// (the client-owned layout and linkto are shown; clients filter them out).
bool Listed(std::string_view name) {
  if (name.rfind(kInternalXattrPrefix, 0) != 0) return true;
  for (auto allowed : kClientXattrs) {
    if (name == allowed) return true;
  }
  return false;
}

// Records the client-visible xattr names of `path` in `a`. `magic`: path is
// /proc/self/fd/N of the object itself (followed, which lands on the object
// even for a symlink); otherwise the final component is not followed.
void FillXattrNames(const std::string& path, bool magic, pb::Attr* a) {
  char buf[4096];
  ssize_t n = magic ? ::listxattr(path.c_str(), buf, sizeof(buf))
                    : ::llistxattr(path.c_str(), buf, sizeof(buf));
  if (n < 0) return;  // too many to list here (ERANGE) or unsupported: not valid
  a->set_xattr_names_valid(true);
  for (ssize_t pos = 0; pos < n;) {
    std::string_view name(buf + pos);
    pos += static_cast<ssize_t>(name.size()) + 1;
    if (!Listed(name)) continue;
    a->add_xattr_names(std::string(name));
  }
}

void FillAttr(const struct stat& st, const Uuid& id, const Versions& v, pb::Attr* a) {
  a->set_id(id.Raw());
  a->set_type(TypeOf(st.st_mode));
  a->set_mode(st.st_mode);
  a->set_uid(st.st_uid);
  a->set_gid(st.st_gid);
  // Every non-directory has one extra link: its handle in .cairn/h or .cairn/o.
  nlink_t nlink = st.st_nlink;
  if (!S_ISDIR(st.st_mode) && nlink > 0) --nlink;
  a->set_nlink(static_cast<uint32_t>(nlink));
  a->set_size(static_cast<uint64_t>(st.st_size));
  a->set_blocks(static_cast<uint64_t>(st.st_blocks));
  a->set_blksize(static_cast<uint32_t>(st.st_blksize));
  a->set_rdev(st.st_rdev);
  a->set_atime_ns(Ns(st.st_atim));
  a->set_mtime_ns(Ns(st.st_mtim));
  a->set_ctime_ns(Ns(st.st_ctim));
  ToProto(v, a->mutable_version());
}

bool VersionEquals(const Versions& a, const pb::Version& b) {
  return a.data == b.data() && a.meta == b.meta() && a.entry == b.entry() && a.tag == b.tag();
}

// "data/meta/entry", for messages.
std::string VersionText(const Versions& v) {
  return std::to_string(v.data) + "/" + std::to_string(v.meta) + "/" + std::to_string(v.entry);
}
std::string VersionText(const pb::Version& v) {
  return VersionText(Versions{v.data(), v.meta(), v.entry(), v.tag()});
}

// Creates `rel` (relative to dirfd) with `make`, creating the fan-out
// directory first if it is missing.
template <typename MakeFn>
int WithFanout(int meta_fd, const std::string& rel, MakeFn&& make) {
  int r = make();
  if (r < 0 && errno == ENOENT) {
    std::string dir = rel.substr(0, rel.find_last_of('/'));
    if (::mkdirat(meta_fd, dir.c_str(), 0700) != 0 && errno != EEXIST) return -1;
    r = make();
  }
  return r;
}

Status ValidateXattrName(const std::string& name) {
  if (name.empty() || name.size() > XATTR_NAME_MAX) {
    return Status(StatusCode::kInvalidArgument, "xattr name must be 1..255 bytes", ERANGE);
  }
  if (name.rfind(kInternalXattrPrefix, 0) == 0) {
    for (auto allowed : kClientXattrs) {
      if (name == allowed) return Status::Ok();
    }
    return Status(StatusCode::kPermissionDenied, "xattr namespace trusted.cairn. is reserved",
                  EPERM);
  }
  static constexpr std::string_view kAllowed[] = {"user.", "trusted.", "security."};
  for (auto p : kAllowed) {
    if (name.compare(0, p.size(), p) == 0 && name.size() > p.size()) return Status::Ok();
  }
  if (name == "system.posix_acl_access" || name == "system.posix_acl_default") return Status::Ok();
  return Status(StatusCode::kUnimplemented, "unsupported xattr namespace in '" + name + "'",
                EOPNOTSUPP);
}

}  // namespace

// The operations, with access to Brick's private state.
struct BrickOps {
  Brick& b;

  // Opens directory `id` (O_RDONLY) and checks that it is the right object.
  StatusOr<Fd> OpenDir(const Uuid& id) {
    if (id == Uuid::Root()) return Fd(b.root_fd_, /*owned=*/false);
    std::string rel = std::string(kMetaDir) + "/" + DirHandleRel(id);
    int fd = OpenBeneath(b.root_fd_, rel, O_RDONLY | O_DIRECTORY);
    if (fd < 0 && errno == ELOOP) return OpenDirSlow(id, 0);  // deeper than 40 levels
    if (fd < 0) return DirOpenError(id);
    Fd dir(fd);
    CAIRN_RETURN_IF_ERROR(VerifyId(dir.get(), id));
    return dir;
  }

  // Resolves a directory handle one parent at a time, for trees too deep for
  // the kernel's symlink limit.
  StatusOr<Fd> OpenDirSlow(const Uuid& id, int depth) {
    if (id == Uuid::Root()) return Fd(b.root_fd_, false);
    if (depth > 8192)
      return Status(StatusCode::kFailedPrecondition, "directory chain too deep", ELOOP);
    char target[PATH_MAX];
    ssize_t n = ::readlinkat(b.meta_fd_, DirHandleRel(id).c_str(), target, sizeof(target) - 1);
    if (n < 0) return DirOpenError(id);
    std::string_view t(target, static_cast<size_t>(n));
    // "../XX/HEX/NAME"
    if (t.size() < 3 + 3 + 33 + 1 || t.substr(0, 3) != "../") {
      return Status::Internal("malformed directory handle for " + id.ToString());
    }
    auto parent = Uuid::Parse(t.substr(6, 32));
    if (!parent.ok()) return Status::Internal("malformed directory handle for " + id.ToString());
    std::string name(t.substr(39));
    CAIRN_ASSIGN_OR_RETURN(Fd pfd, OpenDirSlow(*parent, depth + 1));
    int fd = OpenBeneath(pfd.get(), name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, RESOLVE_NO_SYMLINKS);
    if (fd < 0) return DirOpenError(id);
    Fd dir(fd);
    CAIRN_RETURN_IF_ERROR(VerifyId(dir.get(), id));
    return dir;
  }

  Status DirOpenError(const Uuid& id) {
    int err = errno;
    if (err == ENOENT || err == EXDEV) {
      // Not a directory id: say whether it is a file, for a precise errno.
      if (::faccessat(b.meta_fd_, HandleRel(id).c_str(), F_OK, AT_SYMLINK_NOFOLLOW) == 0) {
        return Status(StatusCode::kFailedPrecondition, id.ToString() + " is not a directory",
                      ENOTDIR);
      }
      return Status(StatusCode::kNotFound, "no directory with id " + id.ToString(), ENOENT);
    }
    return StatusFromErrno(err, "open directory " + id.ToString());
  }

  Status VerifyId(int fd, const Uuid& id) {
    char raw[Uuid::kSize + 1];
    ssize_t n = ::fgetxattr(fd, kIdXattr, raw, sizeof(raw));
    if (n != static_cast<ssize_t>(Uuid::kSize) ||
        std::memcmp(raw, id.bytes().data(), Uuid::kSize) != 0) {
      // The handle points at something else (a rename raced, or was interrupted by a crash).
      return Status(StatusCode::kNotFound, "stale handle for " + id.ToString(), ESTALE);
    }
    return Status::Ok();
  }

  // Any object by id: an O_PATH fd for non-directories, O_RDONLY for directories.
  struct Obj {
    Fd fd;
    struct stat st;
    bool orphan = false;
  };
  StatusOr<Obj> OpenObj(const Uuid& id) {
    Obj o;
    int fd = ::openat(b.meta_fd_, HandleRel(id).c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
      fd = ::openat(b.meta_fd_, OrphanRel(id).c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC);
      o.orphan = fd >= 0;
    }
    if (fd >= 0) {
      o.fd = Fd(fd);
    } else if (errno == ENOENT) {
      auto dir = OpenDir(id);
      if (!dir.ok()) {
        if (dir.status().posix_errno() == ENOENT || dir.status().posix_errno() == ENOTDIR) {
          return Status(StatusCode::kNotFound, "no object with id " + id.ToString(), ENOENT);
        }
        return dir.status();
      }
      o.fd = std::move(*dir);
    } else {
      return Errno("open " + id.ToString());
    }
    if (::fstat(o.fd.get(), &o.st) != 0) return Errno("stat " + id.ToString());
    return o;
  }

  // Opens a regular file by id for I/O.
  StatusOr<Fd> OpenFile(const Uuid& id, int flags) {
    flags |= O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY;
    int fd = ::openat(b.meta_fd_, HandleRel(id).c_str(), flags);
    if (fd < 0 && errno == ENOENT) fd = ::openat(b.meta_fd_, OrphanRel(id).c_str(), flags);
    if (fd < 0) {
      int err = errno;
      if (err == ENOENT) {
        if (::faccessat(b.meta_fd_, DirHandleRel(id).c_str(), F_OK, AT_SYMLINK_NOFOLLOW) == 0) {
          return Status(StatusCode::kFailedPrecondition, id.ToString() + " is a directory", EISDIR);
        }
        return Status(StatusCode::kNotFound, "no file with id " + id.ToString(), ENOENT);
      }
      if (err == ELOOP) {
        return Status(StatusCode::kInvalidArgument, id.ToString() + " is a symlink", EINVAL);
      }
      return StatusFromErrno(err, "open " + id.ToString());
    }
    Fd f(fd);
    struct stat st;
    if (::fstat(fd, &st) != 0) return Errno("stat " + id.ToString());
    if (!S_ISREG(st.st_mode)) {
      return Status(StatusCode::kInvalidArgument, id.ToString() + " is not a regular file", EINVAL);
    }
    return f;
  }

  Versions ReadVersions(int fd) {
    std::string raw;
    // Straight on the descriptor; an O_PATH one (directories, symlinks)
    // answers EBADF and goes through /proc (a path walk more).
    char buf[64];
    ssize_t n = ::fgetxattr(fd, kVersionXattr, buf, sizeof(buf));
    if (n >= 0) return DecodeVersions(std::string(buf, static_cast<size_t>(n)));
    if (errno != EBADF && errno != ERANGE) return {};
    if (GetXattrPath(ProcPath(fd), kVersionXattr, &raw) != 0) return {};
    return DecodeVersions(raw);
  }

  Status BumpVersion(int fd, VersionField field, const pb::Txn& txn, Versions* out) {
    Versions v = ReadVersions(fd);
    v.tag ^= TxnTag(txn) + static_cast<uint64_t>(field);
    switch (field) {
      case VersionField::kData:
        ++v.data;
        break;
      case VersionField::kMeta:
        ++v.meta;
        break;
      case VersionField::kEntry:
        ++v.entry;
        break;
    }
    CAIRN_RETURN_IF_ERROR(WriteVersions(fd, v));
    if (out != nullptr) *out = v;
    return Status::Ok();
  }

  Status WriteVersions(int fd, const Versions& v) {
    const std::string raw = EncodeVersions(v);
    if (::fsetxattr(fd, kVersionXattr, raw.data(), raw.size(), 0) != 0 &&
        (errno != EBADF ||
         ::setxattr(ProcPath(fd).c_str(), kVersionXattr, raw.data(), raw.size(), 0) != 0)) {
      return Errno("record version");
    }
    return Status::Ok();
  }

  // A conditional mutation (txn.expected set, self-heal): refused with ESTALE
  // unless `fd` (the object it changes, or the parent of an entry operation)
  // still has the expected version. Call with the object's lock held.
  Status CheckExpected(const pb::Txn& txn, int fd, const Uuid& id) {
    if (txn.deadline_unix_ms() != 0) {
      const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                 std::chrono::system_clock::now().time_since_epoch())
                                 .count();
      if (now_ms > txn.deadline_unix_ms()) {
        return Status(StatusCode::kDeadlineExceeded,
                      "mutation of " + id.ToString() + " arrived " +
                          std::to_string(now_ms - txn.deadline_unix_ms()) +
                          " ms after its deadline; not applied",
                      ETIMEDOUT);
      }
    }
    if (!txn.has_expected()) return Status::Ok();
    Versions v = ReadVersions(fd);
    if (VersionEquals(v, txn.expected())) return Status::Ok();
    return Status(StatusCode::kFailedPrecondition,
                  "version of " + id.ToString() + " is " + VersionText(v) + ", expected " +
                      VersionText(txn.expected()),
                  ESTALE);
  }

  // Records `id` in the dirty index; done before a mutation is applied, so a
  // crash mid-mutation leaves the object dirty.
  //
  // A mark is a hard link to a shared base file (as GlusterFS's index
  // xlator does): creating and clearing one touches a directory entry only.
  // A file per mark cost an inode allocation and free per mutation, and
  // ext4's inode allocator (recently_deleted) was a third of brickd's CPU in
  // a small-file create profile.
  Status MarkDirty(const Uuid& id) {
    const std::string rel = DirtyRel(id);
    for (int attempt = 0; attempt < 4; ++attempt) {
      int base = b.mark_base_.load();
      const std::string base_rel = "mark." + std::to_string(base);
      if (::linkat(b.meta_fd_, base_rel.c_str(), b.meta_fd_, rel.c_str(), 0) == 0 ||
          errno == EEXIST) {
        b.marks_made_.fetch_add(1);
        return Status::Ok();
      }
      if (errno == ENOENT) {
        int fd = ::openat(b.meta_fd_, base_rel.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
        if (fd >= 0) ::close(fd);
        continue;
      }
      if (errno == EMLINK) {
        b.mark_base_.compare_exchange_strong(base, base + 1);
        continue;
      }
      break;
    }
    // Fall back to a file of its own.
    if (::mknodat(b.meta_fd_, rel.c_str(), S_IFREG | 0600, 0) != 0 && errno != EEXIST) {
      return Errno("mark dirty " + id.ToString());
    }
    b.marks_made_.fetch_add(1);
    return Status::Ok();
  }

  // Applies a mutation's bookkeeping: dirty mark and version bump.
  Status Mutated(const pb::Txn& txn, int fd, VersionField field, Versions* out) {
    if (!txn.mark_dirty()) {
      if (out != nullptr) *out = ReadVersions(fd);
      return Status::Ok();
    }
    return BumpVersion(fd, field, txn, out);
  }

  StatusOr<pb::Attr> AttrOf(int fd, const Uuid& id, const Versions* known = nullptr) {
    struct stat st;
    if (::fstat(fd, &st) != 0) return Errno("stat " + id.ToString());
    pb::Attr a;
    FillAttr(st, id, known != nullptr ? *known : ReadVersions(fd), &a);
    return a;
  }

  // Reads the id of child `name` of directory `dirfd`.
  StatusOr<Uuid> IdAt(int dirfd, std::string_view name) {
    char raw[Uuid::kSize + 1];
    ssize_t n = ::lgetxattr(ProcPath(dirfd, name).c_str(), kIdXattr, raw, sizeof(raw));
    if (n < 0) {
      if (errno == ENODATA) {
        return Status(StatusCode::kFailedPrecondition,
                      "'" + std::string(name) + "' has no Cairn id (not created through Cairn)",
                      EIO);
      }
      return Errno("read id of '" + std::string(name) + "'");
    }
    if (n != static_cast<ssize_t>(Uuid::kSize)) {
      return Status(StatusCode::kDataLoss, "corrupt id on '" + std::string(name) + "'", EIO);
    }
    return Uuid::FromBytes(std::string_view(raw, Uuid::kSize));
  }

  // Reserves `n` bytes of capacity. Returns false iff the brick is full.
  bool Reserve(int64_t n) {
    if (n <= 0) return true;
    uint64_t cap = b.capacity_bytes();
    if (cap == 0) {
      b.used_bytes_.fetch_add(n);
      return true;
    }
    int64_t cur = b.used_bytes_.load();
    do {
      if (cur + n > static_cast<int64_t>(cap)) return false;
    } while (!b.used_bytes_.compare_exchange_weak(cur, cur + n));
    return true;
  }
  // Settles a reservation against the allocation actually seen.
  void Settle(int64_t reserved, blkcnt_t before_blocks, blkcnt_t after_blocks) {
    b.used_bytes_.fetch_add((after_blocks - before_blocks) * 512 - reserved);
  }

  Status NoSpace(uint64_t want) {
    return Status(StatusCode::kResourceExhausted,
                  "brick " + b.id_ + " is full: " + std::to_string(b.used_bytes()) + " of " +
                      std::to_string(b.capacity_bytes()) + " bytes used, " + std::to_string(want) +
                      " more wanted",
                  ENOSPC);
  }

  // Removes the index link of a non-directory whose last name went away
  // (or parks it in o/ while a client still has it open).
  void ReleaseIfUnlinked(const Uuid& id, bool keep_open) {
    struct stat st;
    std::string rel = HandleRel(id);
    if (::fstatat(b.meta_fd_, rel.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return;
    if (st.st_nlink > 1) return;
    if (keep_open) {
      ::renameat(b.meta_fd_, rel.c_str(), b.meta_fd_, OrphanRel(id).c_str());
      return;
    }
    if (::unlinkat(b.meta_fd_, rel.c_str(), 0) == 0) {
      b.used_bytes_.fetch_sub(st.st_blocks * 512);
    }
    ::unlinkat(b.meta_fd_, DirtyRel(id).c_str(), 0);
  }

  Status WriteDirHandle(const Uuid& id, const Uuid& parent, std::string_view name, bool replace) {
    std::string rel = DirHandleRel(id);
    std::string target = DirHandleTarget(parent, name);
    if (!replace) {
      int r = WithFanout(b.meta_fd_, rel,
                         [&] { return ::symlinkat(target.c_str(), b.meta_fd_, rel.c_str()); });
      if (r != 0) return Errno("write directory handle");
      return Status::Ok();
    }
    std::string tmp = rel + ".new";
    ::unlinkat(b.meta_fd_, tmp.c_str(), 0);
    int r = WithFanout(b.meta_fd_, tmp,
                       [&] { return ::symlinkat(target.c_str(), b.meta_fd_, tmp.c_str()); });
    if (r != 0 || ::renameat(b.meta_fd_, tmp.c_str(), b.meta_fd_, rel.c_str()) != 0) {
      return Errno("update directory handle");
    }
    return Status::Ok();
  }

  // Unlink (dir false) or Rmdir (dir true) of `req.name` in `req.parent_id`.
  StatusOr<pb::UnlinkReply> RemoveEntry(const pb::UnlinkRequest& req, bool dir) {
    const char* what = dir ? "rmdir '" : "unlink '";
    CAIRN_ASSIGN_OR_RETURN(Uuid parent, ParseId(req.parent_id(), "parent_id"));
    CAIRN_RETURN_IF_ERROR(ValidateName(req.name(), parent == Uuid::Root()));
    ObjectLock lock(&b, parent);
    CAIRN_ASSIGN_OR_RETURN(Fd pfd, OpenDir(parent));
    CAIRN_RETURN_IF_ERROR(CheckExpected(req.txn(), pfd.get(), parent));
    struct stat st;
    if (::fstatat(pfd.get(), req.name().c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      return Errno(what + req.name() + "'");
    }
    if (S_ISDIR(st.st_mode) != dir) {
      return dir ? Status(StatusCode::kFailedPrecondition,
                          "'" + req.name() + "' is not a directory", ENOTDIR)
                 : Status(StatusCode::kFailedPrecondition, "'" + req.name() + "' is a directory",
                          EISDIR);
    }
    auto id = IdAt(pfd.get(), req.name());
    if (req.txn().mark_dirty()) CAIRN_RETURN_IF_ERROR(MarkDirty(parent));
    if (::unlinkat(pfd.get(), req.name().c_str(), dir ? AT_REMOVEDIR : 0) != 0) {
      return Errno(what + req.name() + "'");
    }
    pb::UnlinkReply reply;
    if (id.ok()) {
      if (dir) {
        ::unlinkat(b.meta_fd_, DirHandleRel(*id).c_str(), 0);
        ::unlinkat(b.meta_fd_, DirtyRel(*id).c_str(), 0);
      } else {
        ReleaseIfUnlinked(*id, req.keep_open());
        // Links left, as the client counts them (without the index link).
        reply.set_nlink(st.st_nlink > 2 ? static_cast<uint32_t>(st.st_nlink - 2) : 0);
      }
      reply.set_id(id->Raw());
    }
    Versions pv;
    CAIRN_RETURN_IF_ERROR(Mutated(req.txn(), pfd.get(), VersionField::kEntry, &pv));
    ToProto(pv, reply.mutable_parent_version());
    // Best effort: the op is done; a client without it asks GetAttr.
    if (auto pa = AttrOf(pfd.get(), parent, &pv); pa.ok()) *reply.mutable_parent() = std::move(*pa);
    return reply;
  }

  // Entry creation shared by Create, Mknod, Mkdir and Symlink.
  enum class Kind { kRegular, kMknod, kDir, kSymlink };
  StatusOr<pb::Attr> CreateEntry(const pb::CreateRequest& req, Kind kind) {
    CAIRN_ASSIGN_OR_RETURN(Uuid parent, ParseId(req.parent_id(), "parent_id"));
    CAIRN_ASSIGN_OR_RETURN(Uuid id, ParseId(req.new_id(), "new_id"));
    if (id == Uuid::Root()) return Status::InvalidArgument("new_id: the root id is taken");
    CAIRN_RETURN_IF_ERROR(ValidateName(req.name(), parent == Uuid::Root()));
    mode_t mode = req.mode();
    if (kind == Kind::kMknod) {
      mode_t type = mode & S_IFMT;
      if (type == 0) type = S_IFREG;
      if (type != S_IFREG && type != S_IFIFO && type != S_IFSOCK && type != S_IFCHR &&
          type != S_IFBLK) {
        return Status(StatusCode::kInvalidArgument, "mknod: unsupported file type", EINVAL);
      }
      mode = type | (mode & 07777);
    } else if ((mode & ~07777u) != 0) {
      return Status(StatusCode::kInvalidArgument, "mode has bits beyond 07777", EINVAL);
    }
    if (kind == Kind::kSymlink &&
        (req.symlink_target().empty() || req.symlink_target().size() >= PATH_MAX ||
         req.symlink_target().find('\0') != std::string::npos)) {
      return Status(StatusCode::kInvalidArgument, "symlink target must be 1..4095 bytes, no NUL",
                    req.symlink_target().empty() ? ENOENT : ENAMETOOLONG);
    }
    const uid_t uid = req.caller().uid();
    const gid_t gid = req.caller().gid();
    if (req.xattrs_size() > 16) {
      return Status(StatusCode::kInvalidArgument, "at most 16 xattrs with a create", E2BIG);
    }
    for (const pb::Xattr& x : req.xattrs()) {
      CAIRN_RETURN_IF_ERROR(ValidateXattrName(x.name()));
      if (x.value().size() > 4096) {
        return Status(StatusCode::kInvalidArgument, "xattr value over 4096 bytes", E2BIG);
      }
    }

    ObjectLock lock(&b, parent);
    CAIRN_ASSIGN_OR_RETURN(Fd pfd, OpenDir(parent));
    CAIRN_RETURN_IF_ERROR(CheckExpected(req.txn(), pfd.get(), parent));
    if (req.txn().mark_dirty()) {
      CAIRN_RETURN_IF_ERROR(MarkDirty(parent));
      CAIRN_RETURN_IF_ERROR(MarkDirty(id));
    }

    // A retried create (same name, same id) succeeds again: replication retries rely on it.
    if (::faccessat(b.meta_fd_, HandleRel(id).c_str(), F_OK, AT_SYMLINK_NOFOLLOW) == 0 ||
        ::faccessat(b.meta_fd_, DirHandleRel(id).c_str(), F_OK, AT_SYMLINK_NOFOLLOW) == 0) {
      return SameCreateOrExists(pfd.get(), id, req.name());
    }
    Fd obj;
    if (kind == Kind::kDir) {
      CAIRN_ASSIGN_OR_RETURN(
          obj, MakeDir(pfd.get(), parent, id, req.name(), mode, uid, gid, req.xattrs()));
    } else {
      std::string rel = HandleRel(id);
      int r = WithFanout(b.meta_fd_, rel, [&]() -> int {
        switch (kind) {
          case Kind::kRegular: {
            int fd = ::openat(b.meta_fd_, rel.c_str(),
                              O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, mode & 07777);
            if (fd >= 0) ::close(fd);
            return fd < 0 ? -1 : 0;
          }
          case Kind::kMknod:
            return ::mknodat(b.meta_fd_, rel.c_str(), mode, static_cast<dev_t>(req.rdev()));
          case Kind::kSymlink:
            return ::symlinkat(req.symlink_target().c_str(), b.meta_fd_, rel.c_str());
          case Kind::kDir:
            break;
        }
        errno = EINVAL;
        return -1;
      });
      if (r != 0) {
        if (errno == EEXIST) return SameCreateOrExists(pfd.get(), id, req.name());
        return Errno("create " + req.name());
      }
      int fd = ::openat(b.meta_fd_, rel.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0) return Errno("open new " + req.name());
      obj = Fd(fd);
      Status s = InitObject(obj.get(), id, kind == Kind::kSymlink ? 0 : (mode & 07777), uid, gid,
                            kind == Kind::kSymlink, req.xattrs());
      if (s.ok() && ::linkat(b.meta_fd_, rel.c_str(), pfd.get(), req.name().c_str(), 0) != 0) {
        s = Errno("link " + req.name());
      }
      if (!s.ok()) {
        ::unlinkat(b.meta_fd_, rel.c_str(), 0);
        ::unlinkat(b.meta_fd_, DirtyRel(id).c_str(), 0);
        return s;
      }
    }
    Versions pv;
    CAIRN_RETURN_IF_ERROR(Mutated(req.txn(), pfd.get(), VersionField::kEntry, &pv));
    CAIRN_ASSIGN_OR_RETURN(pb::Attr attr, AttrOf(obj.get(), id));
    ToProto(pv, attr.mutable_parent_version());
    if (auto pa = AttrOf(pfd.get(), parent, &pv); pa.ok()) *attr.mutable_parent() = std::move(*pa);
    return attr;
  }

  // Sets id, owner and mode of a new object (fd may be O_PATH).
  Status InitObject(int fd, const Uuid& id, mode_t perm, uid_t uid, gid_t gid, bool is_symlink,
                    const XattrList& xattrs) {
    std::string proc = ProcPath(fd);
    if (::setxattr(proc.c_str(), kIdXattr, id.bytes().data(), Uuid::kSize, XATTR_CREATE) != 0) {
      return Errno("set id");
    }
    for (const pb::Xattr& x : xattrs) {
      if (::setxattr(proc.c_str(), x.name().c_str(), x.value().data(), x.value().size(), 0) != 0) {
        return Errno("set xattr " + x.name());
      }
    }
    if (::fchownat(fd, "", uid, gid, AT_EMPTY_PATH) != 0) return Errno("chown");
    // chown may clear set-id bits; set the mode after it.
    if (!is_symlink && ::chmod(proc.c_str(), perm) != 0) return Errno("chmod");
    return Status::Ok();
  }

  // A directory is staged in tmp/ with its id, owner and mode, then renamed
  // into place (RENAME_NOREPLACE), so a crash never leaves one without an id.
  StatusOr<Fd> MakeDir(int pfd, const Uuid& parent, const Uuid& id, const std::string& name,
                       mode_t mode, uid_t uid, gid_t gid, const XattrList& xattrs) {
    std::string rel = DirHandleRel(id);
    Status s = WriteDirHandle(id, parent, name, /*replace=*/false);
    if (!s.ok()) {
      if (s.posix_errno() == EEXIST) {
        return Status(StatusCode::kAlreadyExists, "id " + id.ToString() + " is already in use",
                      EEXIST);
      }
      return s;
    }
    std::string tmp = "tmp/" + HexOf(id);
    auto fail = [&](Status st) -> Status {
      ::unlinkat(b.meta_fd_, tmp.c_str(), AT_REMOVEDIR);
      ::unlinkat(b.meta_fd_, rel.c_str(), 0);
      ::unlinkat(b.meta_fd_, DirtyRel(id).c_str(), 0);
      return st;
    };
    if (::mkdirat(b.meta_fd_, tmp.c_str(), 0700) != 0) return fail(Errno("mkdir " + name));
    int fd = ::openat(b.meta_fd_, tmp.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return fail(Errno("open new directory"));
    Fd dir(fd);
    Status init = InitObject(fd, id, mode, uid, gid, false, xattrs);
    if (!init.ok()) return fail(init);
    if (::renameat2(b.meta_fd_, tmp.c_str(), pfd, name.c_str(), RENAME_NOREPLACE) != 0) {
      return fail(Errno("mkdir " + name));
    }
    return dir;
  }

  // A create whose id is already used: a retry of the same create succeeds
  // (idempotent for replication); anything else is AlreadyExists.
  StatusOr<pb::Attr> SameCreateOrExists(int pfd, const Uuid& id, const std::string& name) {
    auto existing = IdAt(pfd, name);
    if (existing.ok() && *existing == id) {
      CAIRN_ASSIGN_OR_RETURN(Obj o, OpenObj(id));
      return AttrOf(o.fd.get(), id);
    }
    if (!existing.ok() && existing.status().posix_errno() != ENOENT) {
      return Status(StatusCode::kAlreadyExists, "'" + name + "' exists", EEXIST);
    }
    if (existing.ok()) return Status(StatusCode::kAlreadyExists, "'" + name + "' exists", EEXIST);
    return Status(StatusCode::kAlreadyExists, "id " + id.ToString() + " is already in use", EEXIST);
  }
};

// ---------------------------------------------------------------------------

Brick::Brick(std::string id, std::string path, uint64_t capacity_bytes, int root_fd, int meta_fd)
    : id_(std::move(id)),
      path_(std::move(path)),
      capacity_bytes_(capacity_bytes),
      root_fd_(root_fd),
      meta_fd_(meta_fd) {}

Brick::~Brick() {
  // Record the usage so that the next attach need not recount.
  std::string text = std::to_string(used_bytes()) + "\n";
  int fd = ::openat(meta_fd_, "clean.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd >= 0) {
    bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
              ::fsync(fd) == 0;
    ::close(fd);
    if (ok && ::renameat(meta_fd_, "clean.tmp", meta_fd_, "clean") == 0) ::fsync(meta_fd_);
  }
  ::close(meta_fd_);
  ::close(root_fd_);
}

namespace {

// Sums the allocation of every non-directory object: each has exactly one
// index link in h/XX/ or o/.
int64_t CountUsage(int meta_fd) {
  int64_t total = 0;
  auto scan = [&](const std::string& rel) {
    int fd = ::openat(meta_fd, rel.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return;
    DIR* d = ::fdopendir(fd);
    if (d == nullptr) {
      ::close(fd);
      return;
    }
    while (struct dirent* e = ::readdir(d)) {
      if (e->d_name[0] == '.') continue;
      struct stat st;
      if (::fstatat(::dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(st.st_mode)) {
        total += st.st_blocks * 512;
      }
    }
    ::closedir(d);
  };
  for (int i = 0; i < 256; ++i) {
    char sub[8];
    std::snprintf(sub, sizeof(sub), "h/%02x", i);
    scan(sub);
  }
  scan("o");
  return total;
}

Status InitBrickDir(int root_fd, const std::string& brick_id) {
  char raw[Uuid::kSize];
  if (::fgetxattr(root_fd, kIdXattr, raw, sizeof(raw)) >= 0) {
    return Status::FailedPrecondition(
        "directory was a brick but its .cairn is missing; refusing to reinitialise it");
  }
  if (::mkdirat(root_fd, kMetaDir, 0700) != 0) return Errno("mkdir .cairn");
  int meta = ::openat(root_fd, kMetaDir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (meta < 0) return Errno("open .cairn");
  Fd m(meta);
  for (const char* d : {"h", "d", "o", "dirty", "tmp", "d/00"}) {
    if (::mkdirat(meta, d, 0700) != 0) return Errno(std::string("mkdir .cairn/") + d);
  }
  if (::symlinkat("../../..", meta, DirHandleRel(Uuid::Root()).c_str()) != 0) {
    return Errno("write root handle");
  }
  Uuid root = Uuid::Root();
  if (::fsetxattr(root_fd, kIdXattr, root.bytes().data(), Uuid::kSize, 0) != 0) {
    return Errno("set root id (brickd needs CAP_SYS_ADMIN for trusted.* xattrs)");
  }
  std::string json = nlohmann::json{{"format", kFormatVersion}, {"brick_id", brick_id}}.dump();
  int fd = ::openat(meta, "brick.json", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return Errno("create brick.json");
  bool ok = ::write(fd, json.data(), json.size()) == static_cast<ssize_t>(json.size());
  ::close(fd);
  if (!ok) return Errno("write brick.json");
  return Status::Ok();
}

}  // namespace

StatusOr<std::shared_ptr<Brick>> Brick::Open(const Options& options, bool* initialised) {
  *initialised = false;
  if (options.path.empty() || options.path[0] != '/') {
    return Status::InvalidArgument("brick path must be absolute, got '" + options.path + "'");
  }
  int root = ::open(options.path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (root < 0) return Errno("open brick directory " + options.path);
  Fd root_fd(root);
  int meta = ::openat(root, kMetaDir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  int64_t used = 0;
  if (meta < 0 && errno == ENOENT) {
    CAIRN_RETURN_IF_ERROR(InitBrickDir(root, options.id).WithContext(options.path));
    meta = ::openat(root, kMetaDir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (meta < 0) return Errno("open " + options.path + "/.cairn");
    *initialised = true;
  } else if (meta < 0) {
    return Errno("open " + options.path + "/.cairn");
  } else {
    Fd meta_fd(meta);
    // Check ownership: the directory must be this brick's.
    int fd = ::openat(meta, "brick.json", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      char buf[4096];
      ssize_t n = ::read(fd, buf, sizeof(buf));
      ::close(fd);
      auto j = nlohmann::json::parse(std::string(buf, n > 0 ? n : 0), nullptr, false);
      if (j.is_discarded() || !j.contains("brick_id") || !j["brick_id"].is_string()) {
        return Status::FailedPrecondition(options.path + "/.cairn/brick.json is corrupt");
      }
      if (j["brick_id"] != options.id) {
        return Status::FailedPrecondition(options.path + " belongs to brick '" +
                                          j["brick_id"].get<std::string>() + "', not '" +
                                          options.id + "'");
      }
    }
    // Usage: from the clean-close record, else recount.
    char buf[64];
    fd = ::openat(meta, "clean", O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? ::read(fd, buf, sizeof(buf) - 1) : -1;
    if (fd >= 0) ::close(fd);
    if (n > 0) {
      buf[n] = '\0';
      used = std::strtoll(buf, nullptr, 10);
      // From now on the record is stale until the next clean close.
      if (::unlinkat(meta, "clean", 0) != 0 || ::fsync(meta) != 0) return Errno("clear clean mark");
    } else {
      spdlog::warn("brick={} event=recount-usage reason=unclean-close path={}", options.id,
                   options.path);
      used = CountUsage(meta);
    }
    // Directories staged by a create that crashed.
    int tmp = ::openat(meta, "tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (DIR* d = tmp >= 0 ? ::fdopendir(tmp) : nullptr) {
      while (struct dirent* e = ::readdir(d)) {
        if (e->d_name[0] != '.') ::unlinkat(::dirfd(d), e->d_name, AT_REMOVEDIR);
      }
      ::closedir(d);
    }
    meta = ::dup(meta_fd.get());
  }
  auto brick = std::shared_ptr<Brick>(
      new Brick(options.id, options.path, options.capacity_bytes, root_fd.Release(), meta));
  brick->used_bytes_.store(used);
  return brick;
}

// ---------------------------------------------------------------------------
// Operations.

StatusOr<pb::Attr> Brick::Lookup(const pb::LookupRequest& req) {
  BrickOps ops{*this};
  CAIRN_ASSIGN_OR_RETURN(Uuid parent, ParseId(req.parent_id(), "parent_id"));
  CAIRN_RETURN_IF_ERROR(ValidateName(req.name(), parent == Uuid::Root()));
  CAIRN_ASSIGN_OR_RETURN(Fd pfd, ops.OpenDir(parent));
  int fd = ::openat(pfd.get(), req.name().c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return Errno("lookup '" + req.name() + "'");
  Fd obj(fd);
  struct stat st;
  if (::fstat(fd, &st) != 0) return Errno("stat '" + req.name() + "'");
  CAIRN_ASSIGN_OR_RETURN(Uuid id, ops.IdAt(pfd.get(), req.name()));
  if (S_ISDIR(st.st_mode)) {
    // Repair a directory handle left stale by a crash during rename.
    char target[PATH_MAX];
    ssize_t n = ::readlinkat(meta_fd_, DirHandleRel(id).c_str(), target, sizeof(target));
    std::string want = DirHandleTarget(parent, req.name());
    if (n < 0 || std::string_view(target, n) != want) {
      CAIRN_RETURN_IF_ERROR(ops.WriteDirHandle(id, parent, req.name(), n >= 0));
    }
  }
  pb::Attr a;
  FillAttr(st, id, ops.ReadVersions(fd), &a);
  FillXattrNames(ProcPath(fd), /*magic=*/true, &a);
  return a;
}

StatusOr<pb::Attr> Brick::GetAttr(const pb::GetAttrRequest& req) {
  BrickOps ops{*this};
  CAIRN_ASSIGN_OR_RETURN(Uuid id, ParseId(req.id(), "id"));
  CAIRN_ASSIGN_OR_RETURN(auto obj, ops.OpenObj(id));
  pb::Attr a;
  FillAttr(obj.st, id, ops.ReadVersions(obj.fd.get()), &a);
  return a;
}

StatusOr<pb::Attr> Brick::SetAttr(const pb::SetAttrRequest& req) {
  BrickOps ops{*this};
  CAIRN_ASSIGN_OR_RETURN(Uuid id, ParseId(req.id(), "id"));
  const uint32_t valid = req.valid();
  if ((valid & pb::SetAttrRequest::VALID_MODE) && (req.mode() & ~07777u) != 0) {
    return Status(StatusCode::kInvalidArgument, "mode has bits beyond 07777", EINVAL);
  }
  ObjectLock lock(this, id);
  CAIRN_ASSIGN_OR_RETURN(auto obj, ops.OpenObj(id));
  const int fd = obj.fd.get();
  const std::string proc = ProcPath(fd);
  const bool is_link = S_ISLNK(obj.st.st_mode);
  CAIRN_RETURN_IF_ERROR(ops.CheckExpected(req.txn(), fd, id));
  if (req.txn().mark_dirty()) CAIRN_RETURN_IF_ERROR(ops.MarkDirty(id));
  if (valid & (pb::SetAttrRequest::VALID_UID | pb::SetAttrRequest::VALID_GID)) {
    uid_t uid = (valid & pb::SetAttrRequest::VALID_UID) ? req.uid() : static_cast<uid_t>(-1);
    gid_t gid = (valid & pb::SetAttrRequest::VALID_GID) ? req.gid() : static_cast<gid_t>(-1);
    if (::fchownat(fd, "", uid, gid, AT_EMPTY_PATH) != 0) return Errno("chown");
  }
  if ((valid & pb::SetAttrRequest::VALID_MODE) && !is_link) {
    if (::chmod(proc.c_str(), req.mode()) != 0) return Errno("chmod");
  }
  bool data_changed = false;
  if (valid & pb::SetAttrRequest::VALID_SIZE) {
    if (S_ISDIR(obj.st.st_mode))
      return Status(StatusCode::kFailedPrecondition, "truncate of a directory", EISDIR);
    if (!S_ISREG(obj.st.st_mode))
      return Status(StatusCode::kInvalidArgument, "truncate of a special file", EINVAL);
    if (req.size() > static_cast<uint64_t>(LLONG_MAX))
      return Status(StatusCode::kInvalidArgument, "size too large", EFBIG);
    CAIRN_ASSIGN_OR_RETURN(Fd wfd, ops.OpenFile(id, O_WRONLY));
    struct stat before, after;
    ::fstat(wfd.get(), &before);
    if (::ftruncate(wfd.get(), static_cast<off_t>(req.size())) != 0) return Errno("truncate");
    ::fstat(wfd.get(), &after);
    ops.Settle(0, before.st_blocks, after.st_blocks);
    data_changed = true;
  }
  if (valid & (pb::SetAttrRequest::VALID_ATIME | pb::SetAttrRequest::VALID_MTIME |
               pb::SetAttrRequest::VALID_ATIME_NOW | pb::SetAttrRequest::VALID_MTIME_NOW)) {
    struct timespec ts[2];
    ts[0].tv_nsec = UTIME_OMIT;
    ts[1].tv_nsec = UTIME_OMIT;
    if (valid & pb::SetAttrRequest::VALID_ATIME) ts[0] = Ts(req.atime_ns());
    if (valid & pb::SetAttrRequest::VALID_MTIME) ts[1] = Ts(req.mtime_ns());
    if (valid & pb::SetAttrRequest::VALID_ATIME_NOW) ts[0].tv_nsec = UTIME_NOW;
    if (valid & pb::SetAttrRequest::VALID_MTIME_NOW) ts[1].tv_nsec = UTIME_NOW;
    if (::utimensat(AT_FDCWD, proc.c_str(), ts, 0) != 0) return Errno("set times");
  }
  Versions v;
  if (req.txn().mark_dirty()) {
    if (data_changed) {
      CAIRN_RETURN_IF_ERROR(ops.BumpVersion(fd, VersionField::kData, req.txn(), nullptr));
    }
    CAIRN_RETURN_IF_ERROR(ops.BumpVersion(fd, VersionField::kMeta, req.txn(), &v));
  } else {
    v = ops.ReadVersions(fd);
  }
  return ops.AttrOf(fd, id, &v);
}

StatusOr<pb::Attr> Brick::Create(const pb::CreateRequest& req) {
  return BrickOps{*this}.CreateEntry(req, BrickOps::Kind::kRegular);
}
StatusOr<pb::Attr> Brick::Mknod(const pb::CreateRequest& req) {
  return BrickOps{*this}.CreateEntry(req, BrickOps::Kind::kMknod);
}
StatusOr<pb::Attr> Brick::Mkdir(const pb::CreateRequest& req) {
  return BrickOps{*this}.CreateEntry(req, BrickOps::Kind::kDir);
}
StatusOr<pb::Attr> Brick::Symlink(const pb::CreateRequest& req) {
  return BrickOps{*this}.CreateEntry(req, BrickOps::Kind::kSymlink);
}

StatusOr<pb::Attr> Brick::Link(const pb::LinkRequest& req) {
  BrickOps ops{*this};
  CAIRN_ASSIGN_OR_RETURN(Uuid id, ParseId(req.id(), "id"));
  CAIRN_ASSIGN_OR_RETURN(Uuid parent, ParseId(req.new_parent_id(), "new_parent_id"));
  CAIRN_RETURN_IF_ERROR(ValidateName(req.new_name(), parent == Uuid::Root()));
  ObjectLock lock(this, parent);
  CAIRN_ASSIGN_OR_RETURN(Fd pfd, ops.OpenDir(parent));
  CAIRN_RETURN_IF_ERROR(ops.CheckExpected(req.txn(), pfd.get(), parent));
  if (req.txn().mark_dirty()) CAIRN_RETURN_IF_ERROR(ops.MarkDirty(parent));
  std::string rel = HandleRel(id);
  if (::linkat(meta_fd_, rel.c_str(), pfd.get(), req.new_name().c_str(), 0) != 0) {
    int err = errno;
    if (err != ENOENT) return StatusFromErrno(err, "link '" + req.new_name() + "'");
    // An unlinked-but-open file gets a name again: back into the index.
    std::string orphan = OrphanRel(id);
    if (::linkat(meta_fd_, orphan.c_str(), pfd.get(), req.new_name().c_str(), 0) == 0) {
      WithFanout(meta_fd_, rel,
                 [&] { return ::renameat(meta_fd_, orphan.c_str(), meta_fd_, rel.c_str()); });
    } else if (::faccessat(meta_fd_, DirHandleRel(id).c_str(), F_OK, AT_SYMLINK_NOFOLLOW) == 0) {
      return Status(StatusCode::kPermissionDenied, "hard links to directories are not allowed",
                    EPERM);
    } else {
      return Status(StatusCode::kNotFound, "no file with id " + id.ToString(), ENOENT);
    }
  }
  Versions pv;
  CAIRN_RETURN_IF_ERROR(ops.Mutated(req.txn(), pfd.get(), VersionField::kEntry, &pv));
  CAIRN_ASSIGN_OR_RETURN(auto obj, ops.OpenObj(id));
  CAIRN_ASSIGN_OR_RETURN(pb::Attr attr, ops.AttrOf(obj.fd.get(), id));
  ToProto(pv, attr.mutable_parent_version());
  if (auto pa = ops.AttrOf(pfd.get(), parent, &pv); pa.ok())
    *attr.mutable_parent() = std::move(*pa);
  return attr;
}

StatusOr<pb::ReadlinkReply> Brick::Readlink(const pb::ReadlinkRequest& req) {
  CAIRN_ASSIGN_OR_RETURN(Uuid id, ParseId(req.id(), "id"));
  char buf[PATH_MAX];
  ssize_t n = ::readlinkat(meta_fd_, HandleRel(id).c_str(), buf, sizeof(buf));
  if (n < 0 && errno == ENOENT) n = ::readlinkat(meta_fd_, OrphanRel(id).c_str(), buf, sizeof(buf));
  if (n < 0) {
    if (errno == ENOENT)
      return Status(StatusCode::kNotFound, "no object with id " + id.ToString(), ENOENT);
    if (errno == EINVAL)
      return Status(StatusCode::kInvalidArgument, id.ToString() + " is not a symlink", EINVAL);
    return Errno("readlink");
  }
  pb::ReadlinkReply reply;
  reply.set_target(std::string(buf, static_cast<size_t>(n)));
  return reply;
}

StatusOr<pb::ReadReply> Brick::Read(const pb::ReadRequest& req) {
  BrickOps ops{*this};
  CAIRN_ASSIGN_OR_RETURN(Uuid id, ParseId(req.id(), "id"));
  if (req.size() > kMaxIoBytes) {
    return Status(StatusCode::kInvalidArgument,
                  "read of " + std::to_string(req.size()) + " bytes; the limit is " +
                      std::to_string(kMaxIoBytes),
                  EINVAL);
  }
  if (req.offset() > static_cast<uint64_t>(LLONG_MAX)) {
    return Status(StatusCode::kInvalidArgument, "offset too large", EINVAL);
  }
  CAIRN_ASSIGN_OR_RETURN(Fd fd, ops.OpenFile(id, O_RDONLY));
  pb::ReadReply reply;
  std::string* data = reply.mutable_data();
  data->resize(req.size());
  size_t done = 0;
  while (done < req.size()) {
    ssize_t n = ::pread(fd.get(), data->data() + done, req.size() - done,
                        static_cast<off_t>(req.offset() + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Errno("read");
    }
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  data->resize(done);
  struct stat st;
  ::fstat(fd.get(), &st);
  reply.set_eof(req.offset() + done >= static_cast<uint64_t>(st.st_size));
  stats_.AddBytes(false, done);
  return reply;
}

namespace {

// 4 MiB buffers aligned for O_DIRECT, kept for reuse (a fresh one costs page
// faults and zeroing on every write).
class AlignedBuffers {
 public:
  static constexpr size_t kAlign = 4096;
  static constexpr size_t kKept = 4;

  char* Take() {
    {
      std::lock_guard l(mu_);
      if (!free_.empty()) {
        char* b = free_.back();
        free_.pop_back();
        return b;
      }
    }
    return static_cast<char*>(std::aligned_alloc(kAlign, kMaxIoBytes));
  }
  void Give(char* b) {
    {
      std::lock_guard l(mu_);
      if (free_.size() < kKept) {
        free_.push_back(b);
        return;
      }
    }
    std::free(b);
  }

 private:
  std::mutex mu_;
  std::vector<char*> free_;
};

AlignedBuffers& DirectBuffers() {
  static AlignedBuffers* b = new AlignedBuffers;  // never destroyed (workers may outlive exit)
  return *b;
}

// Writes the 4 KiB-aligned head of `data` at `offset` (which must be aligned)
// with O_DIRECT through a second descriptor of `fd`'s file. Returns the bytes
// written: 0 where direct I/O is not possible (the caller writes buffered).
// Writes under 512 KiB stay buffered: they do not flood the page cache, and a
// direct write waits for the disk (small files would heal at disk latency).
size_t WriteAround(int fd, const std::string& data, uint64_t offset) {
  constexpr size_t kAlign = AlignedBuffers::kAlign;
  constexpr size_t kMinAround = 512 * 1024;
  const size_t len = data.size() & ~(kAlign - 1);
  if (offset % kAlign != 0 || len < kMinAround) return 0;
  Fd direct(::open(ProcPath(fd).c_str(), O_WRONLY | O_DIRECT | O_CLOEXEC));
  if (direct.get() < 0) return 0;
  char* buf = DirectBuffers().Take();
  if (buf == nullptr) return 0;
  std::memcpy(buf, data.data(), len);
  size_t done = 0;
  while (done < len) {
    ssize_t n = ::pwrite(direct.get(), buf + done, len - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0 || n % kAlign != 0) {
      if (n > 0) done += static_cast<size_t>(n);
      break;
    }
    done += static_cast<size_t>(n);
  }
  DirectBuffers().Give(buf);
  return done;
}

}  // namespace

StatusOr<pb::WriteReply> Brick::Write(const pb::WriteRequest& req) {
  BrickOps ops{*this};
  CAIRN_ASSIGN_OR_RETURN(Uuid id, ParseId(req.id(), "id"));
  const std::string& data = req.data();
  if (data.size() > kMaxIoBytes) {
    return Status(StatusCode::kInvalidArgument,
                  "write of " + std::to_string(data.size()) + " bytes; the limit is " +
                      std::to_string(kMaxIoBytes),
                  EINVAL);
  }
  ObjectLock lock(this, id);
  CAIRN_ASSIGN_OR_RETURN(Fd fd, ops.OpenFile(id, O_WRONLY));
  CAIRN_RETURN_IF_ERROR(ops.CheckExpected(req.txn(), fd.get(), id));
  struct stat before;
  if (::fstat(fd.get(), &before) != 0) return Errno("stat");
  uint64_t offset = req.append() ? static_cast<uint64_t>(before.st_size) : req.offset();
  if (offset > static_cast<uint64_t>(LLONG_MAX) - data.size()) {
    return Status(StatusCode::kInvalidArgument, "offset + length overflows", EFBIG);
  }
  // Overwriting allocated data needs no new space; anything else may.
  bool overwrite = offset + data.size() <= static_cast<uint64_t>(before.st_size) &&
                   before.st_blocks * 512 >= before.st_size;
  int64_t reserve = overwrite ? 0 : static_cast<int64_t>(data.size());
  if (!ops.Reserve(reserve)) return ops.NoSpace(data.size());
  if (req.txn().mark_dirty()) {
    Status s = ops.MarkDirty(id);
    if (!s.ok()) {
      ops.Settle(reserve, 0, 0);
      return s;
    }
  }
  size_t done = WriteAround(fd.get(), data, offset);
  while (done < data.size()) {
    ssize_t n = ::pwrite(fd.get(), data.data() + done, data.size() - done,
                         static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      Status s = Errno("write");
      struct stat now;
      ::fstat(fd.get(), &now);
      ops.Settle(reserve, before.st_blocks, now.st_blocks);
      return s;
    }
    done += static_cast<size_t>(n);
  }
  struct stat after;
  ::fstat(fd.get(), &after);
  ops.Settle(reserve, before.st_blocks, after.st_blocks);
  Versions v;
  CAIRN_RETURN_IF_ERROR(ops.Mutated(req.txn(), fd.get(), VersionField::kData, &v));
  stats_.AddBytes(true, done);
  pb::WriteReply reply;
  reply.set_written(static_cast<uint32_t>(done));
  reply.set_offset(offset);
  FillAttr(after, id, v, reply.mutable_attr());
  return reply;
}

Status Brick::Fsync(const pb::FsyncRequest& req) {
  BrickOps ops{*this};
  CAIRN_ASSIGN_OR_RETURN(Uuid id, ParseId(req.id(), "id"));
  auto file = ops.OpenFile(id, O_RDONLY);
  Fd fd;
  if (file.ok()) {
    fd = std::move(*file);
  } else if (file.status().posix_errno() == EISDIR) {
    CAIRN_ASSIGN_OR_RETURN(fd, ops.OpenDir(id));
  } else {
    return file.status();
  }
  int r = req.datasync() ? ::fdatasync(fd.get()) : ::fsync(fd.get());
  if (r != 0) return Errno("fsync");
  return Status::Ok();
}

StatusOr<pb::Attr> Brick::Fallocate(const pb::FallocateRequest& req) {
  BrickOps ops{*this};
  CAIRN_ASSIGN_OR_RETURN(Uuid id, ParseId(req.id(), "id"));
  const uint32_t mode = req.mode();
  const uint32_t kind = mode & ~static_cast<uint32_t>(FALLOC_FL_KEEP_SIZE);
  if (kind != 0 && kind != FALLOC_FL_PUNCH_HOLE && kind != FALLOC_FL_ZERO_RANGE) {
    return Status(StatusCode::kUnimplemented,
                  "fallocate mode " + std::to_string(mode) +
                      " is not supported (allocate, KEEP_SIZE, "
                      "PUNCH_HOLE|KEEP_SIZE, ZERO_RANGE)",
                  EOPNOTSUPP);
  }
  if (kind == FALLOC_FL_PUNCH_HOLE && !(mode & FALLOC_FL_KEEP_SIZE)) {
    return Status(StatusCode::kInvalidArgument, "PUNCH_HOLE needs KEEP_SIZE", EOPNOTSUPP);
  }
  if (req.length() == 0 || req.offset() > static_cast<uint64_t>(LLONG_MAX) - req.length()) {
    return Status(StatusCode::kInvalidArgument, "fallocate range is empty or overflows", EINVAL);
  }
  ObjectLock lock(this, id);
  CAIRN_ASSIGN_OR_RETURN(Fd fd, ops.OpenFile(id, O_WRONLY));
  CAIRN_RETURN_IF_ERROR(ops.CheckExpected(req.txn(), fd.get(), id));
  struct stat before, after;
  ::fstat(fd.get(), &before);
  int64_t reserve = kind == FALLOC_FL_PUNCH_HOLE ? 0 : static_cast<int64_t>(req.length());
  if (!ops.Reserve(reserve)) return ops.NoSpace(req.length());
  if (req.txn().mark_dirty()) {
    Status s = ops.MarkDirty(id);
    if (!s.ok()) {
      ops.Settle(reserve, 0, 0);
      return s;
    }
  }
  int r = ::fallocate(fd.get(), static_cast<int>(mode), static_cast<off_t>(req.offset()),
                      static_cast<off_t>(req.length()));
  int err = errno;
  ::fstat(fd.get(), &after);
  ops.Settle(reserve, before.st_blocks, after.st_blocks);
  if (r != 0) return StatusFromErrno(err, "fallocate");
  Versions v;
  CAIRN_RETURN_IF_ERROR(ops.Mutated(req.txn(), fd.get(), VersionField::kData, &v));
  return ops.AttrOf(fd.get(), id, &v);
}

StatusOr<pb::Attr> Brick::Truncate(const pb::TruncateRequest& req) {
  pb::SetAttrRequest s;
  s.set_id(req.id());
  *s.mutable_txn() = req.txn();
  s.set_valid(pb::SetAttrRequest::VALID_SIZE);
  s.set_size(req.size());
  return SetAttr(s);
}

StatusOr<pb::UnlinkReply> Brick::Unlink(const pb::UnlinkRequest& req) {
  return BrickOps{*this}.RemoveEntry(req, /*dir=*/false);
}

StatusOr<pb::UnlinkReply> Brick::Rmdir(const pb::UnlinkRequest& req) {
  return BrickOps{*this}.RemoveEntry(req, /*dir=*/true);
}

StatusOr<pb::RenameReply> Brick::Rename(const pb::RenameRequest& req) {
  BrickOps ops{*this};
  CAIRN_ASSIGN_OR_RETURN(Uuid old_parent, ParseId(req.old_parent_id(), "old_parent_id"));
  CAIRN_ASSIGN_OR_RETURN(Uuid new_parent, ParseId(req.new_parent_id(), "new_parent_id"));
  CAIRN_RETURN_IF_ERROR(ValidateName(req.old_name(), old_parent == Uuid::Root()));
  CAIRN_RETURN_IF_ERROR(ValidateName(req.new_name(), new_parent == Uuid::Root()));
  unsigned int flags = 0;
  if (req.flags() & ~3u)
    return Status(StatusCode::kInvalidArgument, "unknown rename flags", EINVAL);
  if (req.flags() & pb::RenameRequest::FLAGS_NOREPLACE) flags |= RENAME_NOREPLACE;
  if (req.flags() & pb::RenameRequest::FLAGS_EXCHANGE) flags |= RENAME_EXCHANGE;
  if ((flags & RENAME_NOREPLACE) && (flags & RENAME_EXCHANGE)) {
    return Status(StatusCode::kInvalidArgument, "NOREPLACE and EXCHANGE exclude each other",
                  EINVAL);
  }
  ObjectLock lock(this, old_parent, new_parent);
  CAIRN_ASSIGN_OR_RETURN(Fd opfd, ops.OpenDir(old_parent));
  Fd npfd_owned;
  int npfd = opfd.get();
  if (new_parent != old_parent) {
    CAIRN_ASSIGN_OR_RETURN(npfd_owned, ops.OpenDir(new_parent));
    npfd = npfd_owned.get();
  }
  CAIRN_RETURN_IF_ERROR(ops.CheckExpected(req.txn(), npfd, new_parent));
  struct stat src, dst;
  if (::fstatat(opfd.get(), req.old_name().c_str(), &src, AT_SYMLINK_NOFOLLOW) != 0) {
    return Errno("rename '" + req.old_name() + "'");
  }
  CAIRN_ASSIGN_OR_RETURN(Uuid src_id, ops.IdAt(opfd.get(), req.old_name()));
  bool dst_exists = ::fstatat(npfd, req.new_name().c_str(), &dst, AT_SYMLINK_NOFOLLOW) == 0;
  Uuid dst_id;
  if (dst_exists) {
    auto d = ops.IdAt(npfd, req.new_name());
    if (d.ok()) dst_id = *d;
  }
  if (req.txn().mark_dirty()) {
    CAIRN_RETURN_IF_ERROR(ops.MarkDirty(old_parent));
    if (new_parent != old_parent) CAIRN_RETURN_IF_ERROR(ops.MarkDirty(new_parent));
  }
  if (::renameat2(opfd.get(), req.old_name().c_str(), npfd, req.new_name().c_str(), flags) != 0) {
    return Errno("rename '" + req.old_name() + "' to '" + req.new_name() + "'");
  }
  pb::RenameReply reply;
  const bool same_inode = dst_exists && dst.st_ino == src.st_ino && dst.st_dev == src.st_dev;
  if (S_ISDIR(src.st_mode) && !same_inode) {
    CAIRN_RETURN_IF_ERROR(ops.WriteDirHandle(src_id, new_parent, req.new_name(), true));
  }
  if (dst_exists && !dst_id.IsZero() && !same_inode) {
    if (flags & RENAME_EXCHANGE) {
      if (S_ISDIR(dst.st_mode)) {
        CAIRN_RETURN_IF_ERROR(ops.WriteDirHandle(dst_id, old_parent, req.old_name(), true));
      }
    } else {
      reply.set_replaced_id(dst_id.Raw());
      if (S_ISDIR(dst.st_mode)) {
        ::unlinkat(meta_fd_, DirHandleRel(dst_id).c_str(), 0);
        ::unlinkat(meta_fd_, DirtyRel(dst_id).c_str(), 0);
      } else {
        ops.ReleaseIfUnlinked(dst_id, req.keep_open_replaced());
      }
    }
  }
  Versions v;
  CAIRN_RETURN_IF_ERROR(ops.Mutated(req.txn(), opfd.get(), VersionField::kEntry, &v));
  ToProto(v, reply.mutable_old_parent_version());
  if (new_parent != old_parent) {
    CAIRN_RETURN_IF_ERROR(ops.Mutated(req.txn(), npfd, VersionField::kEntry, &v));
    ToProto(v, reply.mutable_new_parent_version());
  }
  return reply;
}

StatusOr<pb::ReadDirReply> Brick::ReadDir(const pb::ReadDirRequest& req) {
  BrickOps ops{*this};
  CAIRN_ASSIGN_OR_RETURN(Uuid id, ParseId(req.id(), "id"));
  uint32_t max = req.max_entries() == 0 ? kDefaultReadDirEntries
                                        : std::min(req.max_entries(), kMaxReadDirEntries);
  CAIRN_ASSIGN_OR_RETURN(Fd dir, ops.OpenDir(id));
  // The root fd is shared: read through a private one so seeking is safe.
  Fd own;
  int fd = dir.get();
  if (id == Uuid::Root()) {
    int f = ::openat(root_fd_, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (f < 0) return Errno("open root");
    own = Fd(f);
    fd = f;
  }
  if (req.cookie() > static_cast<uint64_t>(LLONG_MAX)) {
    return Status(StatusCode::kInvalidArgument, "bad cookie", EINVAL);
  }
  if (::lseek(fd, static_cast<off_t>(req.cookie()), SEEK_SET) < 0) return Errno("seek directory");
  pb::ReadDirReply reply;
  reply.set_next_cookie(req.cookie());
  const bool at_root = id == Uuid::Root();
  alignas(8) char buf[32768];
  size_t bytes = 0;
  for (;;) {
    long n = ::syscall(SYS_getdents64, fd, buf, sizeof(buf));
    if (n < 0) return Errno("readdir");
    if (n == 0) {
      reply.set_eof(true);
      break;
    }
    bool full = false;
    for (long pos = 0; pos < n;) {
      auto* e = reinterpret_cast<struct dirent64*>(buf + pos);
      pos += e->d_reclen;
      std::string_view name(e->d_name);
      if (name == "." || name == ".." || (at_root && name == kMetaDir)) {
        reply.set_next_cookie(static_cast<uint64_t>(e->d_off));
        continue;
      }
      if (static_cast<uint32_t>(reply.entries_size()) >= max || bytes >= kReadDirMaxBytes) {
        full = true;
        break;
      }
      pb::DirEntry* de = reply.add_entries();
      de->set_name(std::string(name));
      de->set_type(TypeOfDirent(e->d_type));
      de->set_cookie(static_cast<uint64_t>(e->d_off));
      bytes += name.size() + 32;
      if (req.with_attrs()) {
        struct stat st;
        if (::fstatat(fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
          auto cid = ops.IdAt(fd, name);
          if (cid.ok()) {
            std::string raw;
            Versions v;  // zero when never versioned
            if (GetXattrPath(ProcPath(fd, name), kVersionXattr, &raw) == 0) v = DecodeVersions(raw);
            FillAttr(st, *cid, v, de->mutable_attr());
            FillXattrNames(ProcPath(fd, name), /*magic=*/false, de->mutable_attr());
            de->set_id(cid->Raw());
          }
          de->set_type(TypeOf(st.st_mode));
        }
        bytes += 128;
      }
      reply.set_next_cookie(static_cast<uint64_t>(e->d_off));
    }
    if (full) break;
  }
  return reply;
}

StatusOr<pb::GetXattrReply> Brick::GetXattr(const pb::GetXattrRequest& req) {
  BrickOps ops{*this};
  CAIRN_ASSIGN_OR_RETURN(Uuid id, ParseId(req.id(), "id"));
  CAIRN_RETURN_IF_ERROR(ValidateXattrName(req.name()));
  CAIRN_ASSIGN_OR_RETURN(auto obj, ops.OpenObj(id));
  pb::GetXattrReply reply;
  if (GetXattrPath(ProcPath(obj.fd.get()), req.name().c_str(), reply.mutable_value()) != 0) {
    if (errno == ENODATA) return Status(StatusCode::kNotFound, "no xattr " + req.name(), ENODATA);
    return Errno("getxattr " + req.name());
  }
  return reply;
}

StatusOr<pb::Attr> Brick::SetXattr(const pb::SetXattrRequest& req) {
  BrickOps ops{*this};
  CAIRN_ASSIGN_OR_RETURN(Uuid id, ParseId(req.id(), "id"));
  CAIRN_RETURN_IF_ERROR(ValidateXattrName(req.name()));
  if (req.value().size() > XATTR_SIZE_MAX) {
    return Status(StatusCode::kOutOfRange, "xattr value over 64 KiB", E2BIG);
  }
  if (req.flags() & ~static_cast<uint32_t>(XATTR_CREATE | XATTR_REPLACE)) {
    return Status(StatusCode::kInvalidArgument, "unknown xattr flags", EINVAL);
  }
  ObjectLock lock(this, id);
  CAIRN_ASSIGN_OR_RETURN(auto obj, ops.OpenObj(id));
  CAIRN_RETURN_IF_ERROR(ops.CheckExpected(req.txn(), obj.fd.get(), id));
  if (req.txn().mark_dirty()) CAIRN_RETURN_IF_ERROR(ops.MarkDirty(id));
  if (::setxattr(ProcPath(obj.fd.get()).c_str(), req.name().c_str(), req.value().data(),
                 req.value().size(), static_cast<int>(req.flags())) != 0) {
    return Errno("setxattr " + req.name());
  }
  Versions v;
  CAIRN_RETURN_IF_ERROR(ops.Mutated(req.txn(), obj.fd.get(), VersionField::kMeta, &v));
  return ops.AttrOf(obj.fd.get(), id, &v);
}

StatusOr<pb::ListXattrReply> Brick::ListXattr(const pb::ListXattrRequest& req) {
  BrickOps ops{*this};
  CAIRN_ASSIGN_OR_RETURN(Uuid id, ParseId(req.id(), "id"));
  CAIRN_ASSIGN_OR_RETURN(auto obj, ops.OpenObj(id));
  std::string proc = ProcPath(obj.fd.get());
  std::string buf(4096, '\0');
  ssize_t n;
  for (;;) {
    n = ::listxattr(proc.c_str(), buf.data(), buf.size());
    if (n >= 0) break;
    if (errno != ERANGE) return Errno("listxattr");
    ssize_t want = ::listxattr(proc.c_str(), nullptr, 0);
    if (want < 0) return Errno("listxattr");
    buf.resize(static_cast<size_t>(want) + 1);
  }
  pb::ListXattrReply reply;
  for (size_t pos = 0; pos < static_cast<size_t>(n);) {
    std::string name(buf.data() + pos);
    pos += name.size() + 1;
    if (!Listed(name)) continue;
    reply.add_names(std::move(name));
  }
  return reply;
}

StatusOr<pb::Attr> Brick::RemoveXattr(const pb::RemoveXattrRequest& req) {
  BrickOps ops{*this};
  CAIRN_ASSIGN_OR_RETURN(Uuid id, ParseId(req.id(), "id"));
  CAIRN_RETURN_IF_ERROR(ValidateXattrName(req.name()));
  ObjectLock lock(this, id);
  CAIRN_ASSIGN_OR_RETURN(auto obj, ops.OpenObj(id));
  CAIRN_RETURN_IF_ERROR(ops.CheckExpected(req.txn(), obj.fd.get(), id));
  if (req.txn().mark_dirty()) CAIRN_RETURN_IF_ERROR(ops.MarkDirty(id));
  if (::removexattr(ProcPath(obj.fd.get()).c_str(), req.name().c_str()) != 0) {
    if (errno == ENODATA) return Status(StatusCode::kNotFound, "no xattr " + req.name(), ENODATA);
    return Errno("removexattr " + req.name());
  }
  Versions v;
  CAIRN_RETURN_IF_ERROR(ops.Mutated(req.txn(), obj.fd.get(), VersionField::kMeta, &v));
  return ops.AttrOf(obj.fd.get(), id, &v);
}

StatusOr<pb::StatFsReply> Brick::StatFs(const pb::StatFsRequest&) {
  struct statfs fs;
  if (::fstatfs(root_fd_, &fs) != 0) return Errno("statfs");
  const uint64_t fs_total = static_cast<uint64_t>(fs.f_blocks) * fs.f_bsize;
  const uint64_t fs_free = static_cast<uint64_t>(fs.f_bavail) * fs.f_bsize;
  const uint64_t used = static_cast<uint64_t>(std::max<int64_t>(0, used_bytes()));
  const uint64_t cap = capacity_bytes();
  pb::StatFsReply r;
  r.set_capacity_bytes(cap != 0 ? cap : fs_total);
  r.set_used_bytes(used);
  uint64_t free = cap != 0 ? (used >= cap ? 0 : cap - used) : fs_free;
  r.set_free_bytes(std::min(free, fs_free));
  r.set_files(fs.f_files);
  r.set_files_free(fs.f_ffree);
  r.set_block_size(4096);
  r.set_max_name_bytes(NAME_MAX);
  return r;
}

Status Brick::Forget(const pb::ForgetRequest& req) {
  for (const auto& raw : req.ids()) {
    CAIRN_ASSIGN_OR_RETURN(Uuid id, ParseId(raw, "ids"));
    ObjectLock lock(this, id);
    struct stat st;
    std::string rel = OrphanRel(id);
    if (::fstatat(meta_fd_, rel.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    if (::unlinkat(meta_fd_, rel.c_str(), 0) == 0) {
      used_bytes_.fetch_sub(st.st_blocks * 512);
      ::unlinkat(meta_fd_, DirtyRel(id).c_str(), 0);
    }
  }
  return Status::Ok();
}

namespace {
// The dirty index directory (PATH/.cairn/dirty), open for readdir.
StatusOr<DIR*> OpenDirtyIndex(int meta_fd) {
  int fd = ::openat(meta_fd, "dirty", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Errno("open dirty index");
  DIR* d = ::fdopendir(fd);
  if (d == nullptr) {
    ::close(fd);
    return Errno("open dirty index");
  }
  return d;
}
}  // namespace

StatusOr<pb::ListDirtyReply> Brick::ListDirty(const pb::ListDirtyRequest& req) {
  BrickOps ops{*this};
  uint32_t max = req.max_entries() == 0 ? kDefaultReadDirEntries
                                        : std::min(req.max_entries(), kMaxReadDirEntries);
  CAIRN_ASSIGN_OR_RETURN(DIR * d, OpenDirtyIndex(meta_fd_));
  std::vector<std::string> names;
  while (struct dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    if (std::string_view(e->d_name) > req.after()) names.emplace_back(e->d_name);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  pb::ListDirtyReply reply;
  reply.set_eof(names.size() <= max);
  if (names.size() > max) names.resize(max);
  for (const auto& n : names) {
    auto id = Uuid::Parse(n);
    if (!id.ok()) continue;
    pb::DirtyEntry* e = reply.add_entries();
    e->set_id(id->Raw());
    auto obj = ops.OpenObj(*id);
    Versions v = obj.ok() ? ops.ReadVersions(obj->fd.get()) : Versions{};
    ToProto(v, e->mutable_version());
  }
  return reply;
}

StatusOr<bool> Brick::HasDirty() {
  // A mark counts itself after its link exists, so one made before the
  // count is read below is in the directory read after it, and one counted
  // later makes the next call read the directory again.
  const uint64_t marks = marks_made_.load();
  if (marks == clean_at_.load()) return false;
  CAIRN_ASSIGN_OR_RETURN(DIR * d, OpenDirtyIndex(meta_fd_));
  bool any = false;
  while (struct dirent* e = ::readdir(d)) {
    if (e->d_name[0] != '.') {
      any = true;
      break;
    }
  }
  ::closedir(d);
  if (!any) clean_at_.store(marks);
  return any;
}

StatusOr<pb::ClearDirtyReply> Brick::ClearDirty(const pb::ClearDirtyRequest& req) {
  BrickOps ops{*this};
  pb::ClearDirtyReply reply;
  for (const auto& entry : req.entries()) {
    CAIRN_ASSIGN_OR_RETURN(Uuid id, ParseId(entry.id(), "entries.id"));
    ObjectLock lock(this, id);
    auto obj = ops.OpenObj(id);
    // A newer mutation (not acknowledged everywhere yet) keeps the mark; the
    // mark of an object that is gone goes (self-heal clears those).
    if (obj.ok() && !VersionEquals(ops.ReadVersions(obj->fd.get()), entry.version())) continue;
    if (!obj.ok() && obj.status().posix_errno() != ENOENT) continue;
    if (::unlinkat(meta_fd_, DirtyRel(id).c_str(), 0) == 0) reply.set_cleared(reply.cleared() + 1);
  }
  return reply;
}

namespace {

constexpr uint32_t kMinChecksumBlock = 4u << 10;
constexpr uint32_t kMaxChecksumBlock = 4u << 20;
constexpr uint64_t kMaxChecksumBlocks = 65536;

}  // namespace

StatusOr<pb::ChecksumReply> Brick::Checksum(const pb::ChecksumRequest& req) {
  BrickOps ops{*this};
  CAIRN_ASSIGN_OR_RETURN(Uuid id, ParseId(req.id(), "id"));
  const uint64_t bs = req.block_size();
  if (bs < kMinChecksumBlock || bs > kMaxChecksumBlock || (bs & (bs - 1)) != 0) {
    return Status(StatusCode::kInvalidArgument,
                  "block_size " + std::to_string(bs) + " must be a power of two, 4 KiB..4 MiB",
                  EINVAL);
  }
  if (req.offset() % bs != 0 || req.offset() > static_cast<uint64_t>(LLONG_MAX) ||
      req.length() > static_cast<uint64_t>(LLONG_MAX) - req.offset()) {
    return Status(StatusCode::kInvalidArgument,
                  "checksum offset must be a multiple of block_size and offset + length in range",
                  EINVAL);
  }
  if ((req.length() + bs - 1) / bs > kMaxChecksumBlocks) {
    return Status(StatusCode::kInvalidArgument,
                  "checksum of " + std::to_string((req.length() + bs - 1) / bs) +
                      " blocks; the limit is " + std::to_string(kMaxChecksumBlocks) + " per call",
                  EINVAL);
  }
  DigestAlgorithm algo = DigestAlgorithm::kSha256_128;
  switch (req.algorithm()) {
    case pb::DIGEST_SHA256_128:
      break;
    case pb::DIGEST_XXH3_128:
      algo = DigestAlgorithm::kXxh3_128;
      break;
    default:
      return Status(StatusCode::kInvalidArgument,
                    "unknown digest algorithm " + std::to_string(req.algorithm()), EINVAL);
  }
  CAIRN_ASSIGN_OR_RETURN(Fd fd, ops.OpenFile(id, O_RDONLY));
  pb::ChecksumReply reply;
  reply.set_algorithm(req.algorithm());
  ToProto(ops.ReadVersions(fd.get()), reply.mutable_version());
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return Errno("stat");
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  reply.set_size(size);
  const uint64_t end = std::min(size, req.offset() + req.length());
  if (req.offset() >= end) return reply;

  std::string buf(bs, '\0');
  std::string zero;  // the digest of a whole zero block (a block in a hole), when first needed
  reply.mutable_digests()->Reserve(static_cast<int>((end - req.offset() + bs - 1) / bs));
  // [data, hole): the first data extent that ends after the current block.
  uint64_t data = 0, hole = 0;
  for (uint64_t at = req.offset(); at < end; at += bs) {
    const uint64_t n = std::min<uint64_t>(bs, end - at);
    if (hole <= at) {
      off_t d = ::lseek(fd.get(), static_cast<off_t>(at), SEEK_DATA);
      if (d < 0) {
        if (errno != ENXIO) return Errno("seek data");
        data = hole = UINT64_MAX;  // nothing but a hole up to the end
      } else {
        off_t h = ::lseek(fd.get(), d, SEEK_HOLE);
        if (h < 0) return Errno("seek hole");
        data = static_cast<uint64_t>(d);
        hole = static_cast<uint64_t>(h);
      }
    }
    if (data >= at + n) {
      if (n == bs) {
        if (zero.empty()) zero = ZeroBlockDigest(algo, bs);
        reply.add_digests(zero);
      } else {
        reply.add_digests(ZeroBlockDigest(algo, n));
      }
      continue;
    }
    size_t done = 0;
    while (done < n) {
      ssize_t r = ::pread(fd.get(), buf.data() + done, n - done, static_cast<off_t>(at + done));
      if (r < 0) {
        if (errno == EINTR) continue;
        return Errno("read");
      }
      if (r == 0) break;  // shrunk meanwhile: the rest reads as zeros
      done += static_cast<size_t>(r);
    }
    if (done < n) std::memset(buf.data() + done, 0, n - done);
    reply.add_digests(BlockDigest(algo, buf.data(), n));
  }
  return reply;
}

StatusOr<pb::LocateReply> Brick::Locate(const pb::LocateRequest& req) {
  BrickOps ops{*this};
  CAIRN_ASSIGN_OR_RETURN(Uuid id, ParseId(req.id(), "id"));
  pb::LocateReply reply;
  if (id == Uuid::Root()) return reply;  // no parent
  // Resolving the handle checks it (exists, is a directory, names this id).
  CAIRN_ASSIGN_OR_RETURN(Fd dir, ops.OpenDir(id));
  char target[PATH_MAX];
  ssize_t n = ::readlinkat(meta_fd_, DirHandleRel(id).c_str(), target, sizeof(target) - 1);
  if (n < 0) return Errno("read handle of " + id.ToString());
  // "../XX/HEX/NAME"
  std::string_view t(target, static_cast<size_t>(n));
  const Status malformed(StatusCode::kDataLoss, "malformed directory handle for " + id.ToString(),
                         EIO);
  if (t.size() <= 39 || t.substr(0, 3) != "../") return malformed;
  auto parent = Uuid::Parse(t.substr(6, 32));
  if (!parent.ok() || !ValidateName(t.substr(39), *parent == Uuid::Root()).ok()) return malformed;
  reply.set_parent_id(parent->Raw());
  reply.set_name(std::string(t.substr(39)));
  return reply;
}

StatusOr<pb::Attr> Brick::SetVersion(const pb::SetVersionRequest& req) {
  BrickOps ops{*this};
  CAIRN_ASSIGN_OR_RETURN(Uuid id, ParseId(req.id(), "id"));
  ObjectLock lock(this, id);
  CAIRN_ASSIGN_OR_RETURN(auto obj, ops.OpenObj(id));
  const Versions cur = ops.ReadVersions(obj.fd.get());
  if (!VersionEquals(cur, req.expected())) {
    return Status(StatusCode::kFailedPrecondition,
                  "version of " + id.ToString() + " is " + VersionText(cur) + ", expected " +
                      VersionText(req.expected()),
                  ESTALE);
  }
  const Versions v{req.version().data(), req.version().meta(), req.version().entry(),
                   req.version().tag()};
  CAIRN_RETURN_IF_ERROR(ops.WriteVersions(obj.fd.get(), v));
  return ops.AttrOf(obj.fd.get(), id, &v);
}

}  // namespace cairn::brickd
