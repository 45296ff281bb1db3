// libcairn: the volume client. Opens a volume from its spec, connects to its
// bricks and offers a POSIX-like API addressed by inode numbers, shaped for
// the FUSE low-level API (and used by the iSCSI target, self-heal and tools).
//
//   auto spec = VolumeSpec::Load("vol.json");
//   auto vol = Volume::Open(*spec, {.token = "..."});
//   auto f = (*vol)->Create(kRootIno, "hello", 0644, {0, 0});   // +1 lookup ref
//   (*vol)->Write(f->ino, 0, "hi", false);
//   (*vol)->Release(f->ino);                                    // Create opened it
//   (*vol)->Forget(f->ino, 1);
//
// Distribution: directories exist on every subvolume; a file lives on the
// subvolume whose range in its parent's layout holds hash(name). Replication:
// every mutation goes to all replicas of a subvolume in parallel, one round
// trip each; it succeeds with a quorum of acknowledgements (else EROFS).
// See docs/client.md.
//
// Errors are Status values whose posix_errno() is the errno to give the
// application (ENOENT, EEXIST, EROFS, EIO, ...). All methods are thread-safe.
#pragma once

#include <sys/stat.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "client/spec.h"
#include "common/id.h"
#include "common/status.h"

namespace cairn::client {

// Inode numbers are per Volume object (per mount), stable while referenced.
using Ino = uint64_t;
inline constexpr Ino kRootIno = 1;

struct Attr {
  Ino ino = 0;
  Uuid id;
  uint32_t mode = 0;  // st_mode: type and permission bits
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint32_t nlink = 0;
  uint64_t size = 0;
  uint64_t blocks = 0;  // 512-byte units
  uint32_t blksize = 4096;
  uint64_t rdev = 0;
  int64_t atime_ns = 0;
  int64_t mtime_ns = 0;
  int64_t ctime_ns = 0;

  bool IsDir() const { return S_ISDIR(mode); }
  // Fills a struct stat (st_ino = ino).
  void ToStat(struct stat* st) const;
};

// The identity that owns new objects.
struct Caller {
  uint32_t uid = 0;
  uint32_t gid = 0;
};

// What SetAttr changes: OR of the bits below.
struct SetAttrArgs {
  enum : uint32_t {
    kMode = 1,
    kUid = 2,
    kGid = 4,
    kSize = 8,
    kAtime = 16,
    kMtime = 32,
    kAtimeNow = 64,
    kMtimeNow = 128,
  };
  uint32_t valid = 0;
  uint32_t mode = 0;  // permission bits (07777)
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint64_t size = 0;
  int64_t atime_ns = 0;
  int64_t mtime_ns = 0;
};

struct DirEntry {
  std::string name;
  uint32_t mode = 0;  // type bits (S_IFDIR, S_IFREG, ...) always; permission bits with attrs
  // With ReadDir(plus=true): the entry's attributes (attr.ino is registered in
  // the inode table with NO lookup reference; call AddRef for each entry
  // handed to the kernel). Without plus: attr.ino is 0.
  Attr attr;
};

struct WriteResult {
  uint64_t written = 0;
  uint64_t offset = 0;  // where the data went (the old end of file with append)
  Attr attr;            // after the write
};

struct VolumeStat {
  uint64_t capacity_bytes = 0;  // the volume's size: spec size_bytes, or the bricks' total
  uint64_t used_bytes = 0;
  uint64_t free_bytes = 0;
  uint64_t files = 0;
  uint64_t files_free = 0;
  uint32_t block_size = 4096;
  uint32_t max_name_bytes = 255;
};

// State of one brick as the client sees it.
struct BrickHealth {
  int subvolume = 0;
  std::string node;
  std::string brick_id;
  bool arbiter = false;
  bool connected = false;
};

struct Options {
  // Bearer token for the bricks' data API (empty: none).
  std::string token;
  // Deadline of one brick RPC; a brick that does not answer in time counts as
  // failed for that operation (and is probed in the background).
  std::chrono::milliseconds rpc_timeout{15000};
  // Open() waits up to this long for every subvolume to reach quorum.
  std::chrono::milliseconds connect_timeout{10000};
  // Dirty marks acknowledged by every replica are cleared in batches this often.
  std::chrono::milliseconds clear_dirty_interval{50};
  // How often a disconnected brick is probed.
  std::chrono::milliseconds reconnect_interval{500};
  // How long the xattr names learnt from a lookup or readdirplus answer
  // "no such xattr" (ENODATA) without asking a brick.
  std::chrono::milliseconds xattr_cache_timeout{1000};
  // How long the attributes of a directory returned by a create, mkdir, link,
  // unlink or rmdir in it through this client answer GetAttr of that
  // directory without asking a brick. (The kernel asks after every change of
  // a directory, for the permission checks of the next operation in it.) 0:
  // always ask. Another client's change to the directory's mode or owner is
  // seen up to this much later, as with the kernel's own attr_timeout.
  std::chrono::milliseconds dir_attr_cache_timeout{1000};
};

class VolumeImpl;

class Volume {
 public:
  // Connects to the bricks. Fails (Unavailable, with the bricks named) when a
  // subvolume cannot reach quorum within options.connect_timeout, and
  // InvalidArgument for a bad spec.
  static StatusOr<std::unique_ptr<Volume>> Open(const VolumeSpec& spec, Options options);
  // Flushes pending dirty-mark clears and closes the connections.
  ~Volume();
  Volume(const Volume&) = delete;
  Volume& operator=(const Volume&) = delete;

  const VolumeSpec& spec() const;
  std::vector<BrickHealth> Health() const;

  // ---- Names. Every call that returns an Attr for an entry (Lookup, Create,
  // Mknod, Mkdir, Symlink, Link) adds one lookup reference to attr.ino, like
  // FUSE's nlookup; Forget drops them. The root is always referenced.
  StatusOr<Attr> Lookup(Ino parent, std::string_view name);
  void AddRef(Ino ino);
  void Forget(Ino ino, uint64_t nlookup);

  StatusOr<Attr> GetAttr(Ino ino);
  StatusOr<Attr> SetAttr(Ino ino, const SetAttrArgs& args);

  // Create also opens the file (pair it with Release).
  StatusOr<Attr> Create(Ino parent, std::string_view name, uint32_t mode, const Caller& caller);
  // mode includes the type bits (S_IFIFO, S_IFSOCK, S_IFCHR, S_IFBLK, S_IFREG).
  StatusOr<Attr> Mknod(Ino parent, std::string_view name, uint32_t mode, uint64_t rdev,
                       const Caller& caller);
  StatusOr<Attr> Mkdir(Ino parent, std::string_view name, uint32_t mode, const Caller& caller);
  StatusOr<Attr> Symlink(Ino parent, std::string_view name, std::string_view target,
                         const Caller& caller);
  StatusOr<Attr> Link(Ino ino, Ino new_parent, std::string_view new_name);
  StatusOr<std::string> Readlink(Ino ino);
  // An unlinked file that is still open keeps its data until its last Release.
  Status Unlink(Ino parent, std::string_view name);
  Status Rmdir(Ino parent, std::string_view name);
  // flags: 0, RENAME_NOREPLACE or RENAME_EXCHANGE (linux/fs.h values 1 and 2).
  Status Rename(Ino old_parent, std::string_view old_name, Ino new_parent,
                std::string_view new_name, unsigned flags);

  // The whole listing of a directory, merged over subvolumes ("." and ".."
  // not included). plus: with attributes (see DirEntry).
  StatusOr<std::vector<DirEntry>> ReadDir(Ino dir, bool plus);

  // ---- File data. Open/Release count open handles (for unlink-while-open).
  Status Open(Ino ino);
  void Release(Ino ino);
  // Reads up to `size` bytes at `offset` into `out` (resized to what was read;
  // short only at end of file).
  Status Read(Ino ino, uint64_t offset, size_t size, std::string* out);
  // Writes `data` at `offset` (or at the end of file with append). Any size;
  // split into brick-sized pieces.
  StatusOr<WriteResult> Write(Ino ino, uint64_t offset, std::string_view data, bool append);
  Status Fsync(Ino ino, bool datasync);
  // mode: FALLOC_FL_* (KEEP_SIZE, PUNCH_HOLE|KEEP_SIZE, ZERO_RANGE).
  StatusOr<Attr> Fallocate(Ino ino, int mode, uint64_t offset, uint64_t length);

  // ---- Extended attributes ("trusted.cairn.*" is the system's own: EPERM).
  StatusOr<std::string> GetXattr(Ino ino, std::string_view name);
  // flags: 0, XATTR_CREATE or XATTR_REPLACE.
  Status SetXattr(Ino ino, std::string_view name, std::string_view value, int flags);
  StatusOr<std::vector<std::string>> ListXattr(Ino ino);
  Status RemoveXattr(Ino ino, std::string_view name);

  StatusOr<VolumeStat> StatFs();

  // ---- Conveniences for tools and tests (no lookup references are kept).
  // Resolves "/a/b/c" (relative to the root; symlinks are not followed).
  StatusOr<Attr> Resolve(std::string_view path);

 private:
  explicit Volume(std::unique_ptr<VolumeImpl> impl);
  std::unique_ptr<VolumeImpl> impl_;
};

}  // namespace cairn::client
