// The FUSE low-level operations of cairn-mount, each mapped onto client::Volume.
//
//   CairnFs fs(volume.get(), {.entry_timeout_s = 1, .attr_timeout_s = 1});
//   fuse_session* se = fuse_session_new(&args, &CairnFs::Ops(), sizeof(fuse_lowlevel_ops), &fs);
//
// FUSE inode numbers are the Volume's Ino numbers (the root is 1 on both
// sides), so no table is kept here: every reply that hands the kernel an
// entry (lookup, create, mknod, mkdir, symlink, link, readdirplus) carries
// exactly one Volume lookup reference, and forget gives them back.
//
// Locks: getlk/setlk/flock are not implemented, so the kernel keeps POSIX and
// flock locks locally on this mount (they do not reach other clients).
// flush answers 0 without doing anything: every write was already
// acknowledged by a quorum of replicas, so there is nothing to flush and close()
// must not fail for it.
#pragma once

#include <fuse_lowlevel.h>

#include "client/volume.h"

namespace cairn::fuse {

struct FsOptions {
  double entry_timeout_s = 1.0;
  double attr_timeout_s = 1.0;
  // 0: a missing name is answered ENOENT and not cached by the kernel.
  double negative_timeout_s = 0.0;
  // Keep the page cache of a file across opens (fuse_file_info.keep_cache).
  bool kernel_cache = false;
  // conn->max_write and max_readahead asked for at init.
  unsigned max_write_bytes = 1 << 20;
  unsigned max_readahead_bytes = 1 << 20;
};

class CairnFs {
 public:
  // `volume` must outlive the FUSE session.
  CairnFs(client::Volume* volume, FsOptions options) : volume_(volume), options_(options) {}
  CairnFs(const CairnFs&) = delete;
  CairnFs& operator=(const CairnFs&) = delete;

  // The operation table; the session's userdata must be a CairnFs*.
  static const fuse_lowlevel_ops& Ops();

  client::Volume* volume() const { return volume_; }
  const FsOptions& options() const { return options_; }

 private:
  client::Volume* const volume_;
  const FsOptions options_;
};

}  // namespace cairn::fuse
