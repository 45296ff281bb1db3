// Brick: one directory tree served by brickd, addressed by volume-wide ids.
//
// On-disk layout of a brick at PATH (see docs/brickd.md):
//   PATH/...                 the volume's tree, as plain files and directories
//   PATH/.cairn/brick.json   format version and brick id
//   PATH/.cairn/h/XX/HEX     hard link of every non-directory, named by its id
//   PATH/.cairn/d/XX/HEX     symlink per directory: "../PXX/PHEX/NAME", i.e. via
//                            its parent's handle (GlusterFS's .glusterfs layout)
//   PATH/.cairn/o/HEX        unlinked-while-open files, until Forget
//   PATH/.cairn/dirty/HEX    dirty index: objects with unacknowledged mutations
//   PATH/.cairn/tmp/         staging for new directories
//   PATH/.cairn/clean        usage at the last clean close (absent while attached)
// Every object carries its id in xattr trusted.cairn.id and, once mutated by a
// replicated client, its versions in trusted.cairn.ver.
//
// Confinement: callers name objects only by id, or by a parent id plus one
// path component that is validated (no '/', NUL, "." or ".."; ".cairn" is
// reserved at the root). Directories are opened with openat2(RESOLVE_BENEATH)
// from the brick root and their id is verified; final components are never
// followed (O_NOFOLLOW / AT_SYMLINK_NOFOLLOW), so no operation reaches outside.
//
// Thread safety: all methods may be called concurrently from any thread.
// Mutations of one object (and entry changes in one directory) are serialised
// by a striped lock table shared by all bricks of the process.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "brickd/metrics.h"
#include "common/id.h"
#include "common/status.h"
#include "proto/brick.pb.h"

namespace cairn::brickd {

namespace pb = ::cairn::brick::v1;

// The largest read or write payload one request may carry.
inline constexpr uint32_t kMaxIoBytes = 4u << 20;
// The most entries one ReadDir page returns.
inline constexpr uint32_t kMaxReadDirEntries = 4096;

class Brick {
 public:
  struct Options {
    std::string id;
    std::string path;             // absolute path of an existing directory
    uint64_t capacity_bytes = 0;  // 0: only the backing file system limits
  };

  // Opens the brick at options.path, initialising it if it is not one yet
  // (then *initialised is set). Fails with FailedPrecondition if the directory
  // belongs to another brick id. After an unclean close, usage is recounted,
  // which may take a significant amount of work.
  static StatusOr<std::shared_ptr<Brick>> Open(const Options& options, bool* initialised);

  // Closes cleanly: records the usage so the next Open need not recount.
  ~Brick();
  Brick(const Brick&) = delete;
  Brick& operator=(const Brick&) = delete;

  const std::string& id() const { return id_; }
  const std::string& path() const { return path_; }
  uint64_t capacity_bytes() const { return capacity_bytes_.load(std::memory_order_relaxed); }
  void set_capacity_bytes(uint64_t bytes) { capacity_bytes_.store(bytes); }
  // Bytes allocated to non-directory objects (st_blocks), kept incrementally.
  int64_t used_bytes() const { return used_bytes_.load(std::memory_order_relaxed); }
  BrickStats& stats() { return stats_; }

  StatusOr<pb::Attr> Lookup(const pb::LookupRequest& req);
  StatusOr<pb::Attr> GetAttr(const pb::GetAttrRequest& req);
  StatusOr<pb::Attr> SetAttr(const pb::SetAttrRequest& req);
  StatusOr<pb::Attr> Create(const pb::CreateRequest& req);
  StatusOr<pb::Attr> Mknod(const pb::CreateRequest& req);
  StatusOr<pb::Attr> Mkdir(const pb::CreateRequest& req);
  StatusOr<pb::Attr> Symlink(const pb::CreateRequest& req);
  StatusOr<pb::Attr> Link(const pb::LinkRequest& req);
  StatusOr<pb::ReadlinkReply> Readlink(const pb::ReadlinkRequest& req);
  StatusOr<pb::ReadReply> Read(const pb::ReadRequest& req);
  // The 4 KiB-aligned part of a write of 512 KiB or more goes around the
  // page cache (O_DIRECT): filling fresh page cache costs more CPU than the
  // disk write, and a stream one client writes (or self-heal copies) would
  // evict what clients read. Where direct I/O is not possible (tmpfs,
  // unaligned), and for smaller writes, the write is buffered.
  StatusOr<pb::WriteReply> Write(const pb::WriteRequest& req);
  Status Fsync(const pb::FsyncRequest& req);
  StatusOr<pb::Attr> Fallocate(const pb::FallocateRequest& req);
  StatusOr<pb::Attr> Truncate(const pb::TruncateRequest& req);
  StatusOr<pb::UnlinkReply> Unlink(const pb::UnlinkRequest& req);
  StatusOr<pb::UnlinkReply> Rmdir(const pb::UnlinkRequest& req);
  StatusOr<pb::RenameReply> Rename(const pb::RenameRequest& req);
  StatusOr<pb::ReadDirReply> ReadDir(const pb::ReadDirRequest& req);
  StatusOr<pb::GetXattrReply> GetXattr(const pb::GetXattrRequest& req);
  StatusOr<pb::Attr> SetXattr(const pb::SetXattrRequest& req);
  StatusOr<pb::ListXattrReply> ListXattr(const pb::ListXattrRequest& req);
  StatusOr<pb::Attr> RemoveXattr(const pb::RemoveXattrRequest& req);
  StatusOr<pb::StatFsReply> StatFs(const pb::StatFsRequest& req);
  Status Forget(const pb::ForgetRequest& req);
  StatusOr<pb::ListDirtyReply> ListDirty(const pb::ListDirtyRequest& req);
  // True if the dirty index has at least one entry (reads up to the first).
  // A brick found clean is not read again until something is marked: a
  // node's summary of hundreds of quiet bricks costs no directory reads.
  StatusOr<bool> HasDirty();
  StatusOr<pb::ClearDirtyReply> ClearDirty(const pb::ClearDirtyRequest& req);
  // Self-heal (docs/heal.md): block digests of a file, a directory's parent
  // and name, and a compare-and-set of an object's versions.
  StatusOr<pb::ChecksumReply> Checksum(const pb::ChecksumRequest& req);
  StatusOr<pb::LocateReply> Locate(const pb::LocateRequest& req);
  StatusOr<pb::Attr> SetVersion(const pb::SetVersionRequest& req);

 private:
  friend struct BrickOps;
  Brick(std::string id, std::string path, uint64_t capacity_bytes, int root_fd, int meta_fd);

  const std::string id_;
  const std::string path_;
  std::atomic<uint64_t> capacity_bytes_;
  std::atomic<int64_t> used_bytes_{0};
  const int root_fd_;  // the brick directory
  const int meta_fd_;  // PATH/.cairn
  // Dirty marks are hard links to .cairn/mark.N (no inode per mark); N moves
  // on when a base file reaches the file system's link limit.
  std::atomic<int> mark_base_{0};
  // Marks made (counted after each mark's link exists), and the count at
  // which HasDirty last found the index empty (~0: never).
  std::atomic<uint64_t> marks_made_{0};
  std::atomic<uint64_t> clean_at_{~uint64_t{0}};
  BrickStats stats_;
};

}  // namespace cairn::brickd
