// FUSE low-level operations → client::Volume.
#include "fuse/cairn_fs.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <cerrno>
#include <mutex>
#include <string>
#include <vector>

#include "common/status_errno.h"

namespace cairn::fuse {
namespace {

using client::Attr;
using client::Ino;
using client::Volume;

// ---------------------------------------------------------------------------
// Helpers.

CairnFs* Fs(fuse_req_t req) { return static_cast<CairnFs*>(fuse_req_userdata(req)); }
Volume* Vol(fuse_req_t req) { return Fs(req)->volume(); }

// The errno for the kernel: never 0 for a failure.
int ErrnoOf(const Status& s) {
  int e = s.posix_errno();
  if (e <= 0) e = ErrnoFromStatus(s);
  return e > 0 ? e : EIO;
}

// Answers in the normal course of things (a missing name, a full directory,
// ...) are logged at debug level; anything else is worth a warning.
bool IsRoutineErrno(int e) {
  switch (e) {
    case ENOENT:
    case EEXIST:
    case ENOTEMPTY:
    case ENOTDIR:
    case EISDIR:
    case ENODATA:
    case ERANGE:
    case EACCES:
    case EPERM:
    case EINVAL:
    case ENAMETOOLONG:
    case EXDEV:
    case ENOSPC:
    case EDQUOT:
    case EOPNOTSUPP:
    case EFBIG:
    case ELOOP:
      return true;
    default:
      return false;
  }
}

void ReplyError(fuse_req_t req, const Status& s, const char* op, uint64_t ino) {
  const int e = ErrnoOf(s);
  if (IsRoutineErrno(e)) {
    spdlog::debug("event=op-failed op={} ino={} errno={} error=\"{}\"", op, ino, ErrnoName(e),
                  s.ToString());
  } else {
    spdlog::warn("event=op-failed op={} ino={} errno={} error=\"{}\"", op, ino, ErrnoName(e),
                 s.ToString());
  }
  fuse_reply_err(req, e);
}

void ReplyStatus(fuse_req_t req, const Status& s, const char* op, uint64_t ino) {
  if (s.ok()) {
    fuse_reply_err(req, 0);
  } else {
    ReplyError(req, s, op, ino);
  }
}

client::Caller CallerOf(fuse_req_t req) {
  const fuse_ctx* ctx = fuse_req_ctx(req);
  return {ctx->uid, ctx->gid};
}

fuse_entry_param EntryOf(const CairnFs& fs, const Attr& attr) {
  fuse_entry_param e{};
  e.ino = attr.ino;
  e.generation = 0;
  attr.ToStat(&e.attr);
  e.attr_timeout = fs.options().attr_timeout_s;
  e.entry_timeout = fs.options().entry_timeout_s;
  return e;
}

// Replies an entry that carries one Volume lookup reference. If the kernel
// does not take the reply (the request was interrupted), the reference goes back.
void ReplyEntry(fuse_req_t req, const Attr& attr) {
  Volume* vol = Vol(req);  // a reply frees req: nothing of it may be used after
  fuse_entry_param e = EntryOf(*Fs(req), attr);
  if (fuse_reply_entry(req, &e) != 0) vol->Forget(attr.ino, 1);
}

// Replies an entry op's result (Lookup, Mknod, Mkdir, Symlink, Link).
void ReplyEntryResult(fuse_req_t req, const StatusOr<Attr>& r, const char* op, uint64_t ino) {
  if (!r.ok()) {
    ReplyError(req, r.status(), op, ino);
    return;
  }
  ReplyEntry(req, *r);
}

void ReplyAttr(fuse_req_t req, const StatusOr<Attr>& r, const char* op, uint64_t ino) {
  if (!r.ok()) {
    ReplyError(req, r.status(), op, ino);
    return;
  }
  struct stat st;
  r->ToStat(&st);
  fuse_reply_attr(req, &st, Fs(req)->options().attr_timeout_s);
}

int64_t Nanos(const struct timespec& ts) {
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

// Sets up an open file's reply flags (open and create).
void SetOpenFlags(const CairnFs& fs, fuse_file_info* fi) {
  fi->fh = 0;
  fi->keep_cache = fs.options().kernel_cache ? 1 : 0;
  // O_DIRECT bypasses the page cache (and then mmap is refused, as on NFS).
  fi->direct_io = (fi->flags & O_DIRECT) != 0 ? 1 : 0;
}

// True iff the caller of `req` may open a file with `attr` as `flags` asks.
// Only needed where the kernel could not check (create racing with another
// client that created the name first).
bool MayOpen(fuse_req_t req, const Attr& attr, int flags) {
  const fuse_ctx* ctx = fuse_req_ctx(req);
  if (ctx->uid == 0) return true;
  unsigned want = 0;
  switch (flags & O_ACCMODE) {
    case O_RDONLY:
      want = 4;
      break;
    case O_WRONLY:
      want = 2;
      break;
    default:
      want = 6;
  }
  if ((flags & O_TRUNC) != 0) want |= 2;
  unsigned bits = attr.mode & 7;
  if (ctx->uid == attr.uid) {
    bits = (attr.mode >> 6) & 7;
  } else {
    bool in_group = ctx->gid == attr.gid;
    if (!in_group) {
      gid_t groups[64];
      int n = fuse_req_getgroups(req, 64, groups);
      for (int i = 0; i < std::min(n, 64) && !in_group; ++i) in_group = groups[i] == attr.gid;
    }
    if (in_group) bits = (attr.mode >> 3) & 7;
  }
  return (bits & want) == want;
}

// ---------------------------------------------------------------------------
// Session.

void OpInit(void* userdata, fuse_conn_info* conn) {
  auto* fs = static_cast<CairnFs*>(userdata);
  // libfuse has already capped max_write to its buffer (1 MiB on 3.14); only lower it.
  conn->max_write = std::min(conn->max_write, fs->options().max_write_bytes);
  // The kernel takes the smaller of this and its own proposal.
  conn->max_readahead = fs->options().max_readahead_bytes;
  // O_TRUNC arrives as a setattr (the kernel sends it), not inside open.
  conn->want &= ~FUSE_CAP_ATOMIC_O_TRUNC;
  // The kernel clears setuid/setgid bits on write and chown (it sends the setattr).
  conn->want &= ~FUSE_CAP_HANDLE_KILLPRIV;
  // Writes go straight to the bricks (correctness first, docs/client-design.md).
  conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
  if ((conn->capable & FUSE_CAP_CACHE_SYMLINKS) != 0) conn->want |= FUSE_CAP_CACHE_SYMLINKS;
  if ((conn->capable & FUSE_CAP_PARALLEL_DIROPS) != 0) conn->want |= FUSE_CAP_PARALLEL_DIROPS;
  if ((conn->capable & FUSE_CAP_READDIRPLUS) != 0) {
    conn->want |= FUSE_CAP_READDIRPLUS | FUSE_CAP_READDIRPLUS_AUTO;
  }
  conn->time_gran = 1;
  spdlog::info(
      "event=fuse-init proto={}.{} max_write={} max_readahead={} max_background={} "
      "capable={:#x} want={:#x}",
      conn->proto_major, conn->proto_minor, conn->max_write, conn->max_readahead,
      conn->max_background, conn->capable, conn->want);
}

void OpDestroy(void* /*userdata*/) { spdlog::info("event=fuse-destroy"); }

// ---------------------------------------------------------------------------
// Names.

void OpLookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  auto r = Vol(req)->Lookup(parent, name);
  if (!r.ok() && ErrnoOf(r.status()) == ENOENT && Fs(req)->options().negative_timeout_s > 0) {
    // Ino 0: "no such name", cached for the negative timeout.
    fuse_entry_param e{};
    e.entry_timeout = Fs(req)->options().negative_timeout_s;
    fuse_reply_entry(req, &e);
    return;
  }
  ReplyEntryResult(req, r, "lookup", parent);
}

void OpForget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
  Vol(req)->Forget(ino, nlookup);
  fuse_reply_none(req);
}

void OpForgetMulti(fuse_req_t req, size_t count, fuse_forget_data* forgets) {
  Volume* vol = Vol(req);
  for (size_t i = 0; i < count; ++i) vol->Forget(forgets[i].ino, forgets[i].nlookup);
  fuse_reply_none(req);
}

void OpGetattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info* /*fi*/) {
  ReplyAttr(req, Vol(req)->GetAttr(ino), "getattr", ino);
}

void OpSetattr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set,
               fuse_file_info* /*fi*/) {
  using client::SetAttrArgs;
  SetAttrArgs a;
  if ((to_set & FUSE_SET_ATTR_MODE) != 0) {
    a.valid |= SetAttrArgs::kMode;
    a.mode = attr->st_mode & 07777;
  }
  if ((to_set & FUSE_SET_ATTR_UID) != 0) {
    a.valid |= SetAttrArgs::kUid;
    a.uid = attr->st_uid;
  }
  if ((to_set & FUSE_SET_ATTR_GID) != 0) {
    a.valid |= SetAttrArgs::kGid;
    a.gid = attr->st_gid;
  }
  if ((to_set & FUSE_SET_ATTR_SIZE) != 0) {
    if (attr->st_size < 0) {
      fuse_reply_err(req, EINVAL);
      return;
    }
    a.valid |= SetAttrArgs::kSize;
    a.size = static_cast<uint64_t>(attr->st_size);
  }
  // The kernel sets ATIME together with ATIME_NOW; NOW wins.
  if ((to_set & FUSE_SET_ATTR_ATIME_NOW) != 0) {
    a.valid |= SetAttrArgs::kAtimeNow;
  } else if ((to_set & FUSE_SET_ATTR_ATIME) != 0) {
    a.valid |= SetAttrArgs::kAtime;
    a.atime_ns = Nanos(attr->st_atim);
  }
  if ((to_set & FUSE_SET_ATTR_MTIME_NOW) != 0) {
    a.valid |= SetAttrArgs::kMtimeNow;
  } else if ((to_set & FUSE_SET_ATTR_MTIME) != 0) {
    a.valid |= SetAttrArgs::kMtime;
    a.mtime_ns = Nanos(attr->st_mtim);
  }
  // FUSE_SET_ATTR_CTIME alone: the Volume sets ctime itself on every change.
  if (a.valid == 0) {
    ReplyAttr(req, Vol(req)->GetAttr(ino), "setattr", ino);
    return;
  }
  ReplyAttr(req, Vol(req)->SetAttr(ino, a), "setattr", ino);
}

void OpReadlink(fuse_req_t req, fuse_ino_t ino) {
  auto r = Vol(req)->Readlink(ino);
  if (!r.ok()) {
    ReplyError(req, r.status(), "readlink", ino);
    return;
  }
  fuse_reply_readlink(req, r->c_str());
}

void OpMknod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, dev_t rdev) {
  ReplyEntryResult(req, Vol(req)->Mknod(parent, name, mode, rdev, CallerOf(req)), "mknod", parent);
}

void OpMkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) {
  ReplyEntryResult(req, Vol(req)->Mkdir(parent, name, mode & 07777, CallerOf(req)), "mkdir",
                   parent);
}

void OpUnlink(fuse_req_t req, fuse_ino_t parent, const char* name) {
  ReplyStatus(req, Vol(req)->Unlink(parent, name), "unlink", parent);
}

void OpRmdir(fuse_req_t req, fuse_ino_t parent, const char* name) {
  ReplyStatus(req, Vol(req)->Rmdir(parent, name), "rmdir", parent);
}

void OpSymlink(fuse_req_t req, const char* link, fuse_ino_t parent, const char* name) {
  ReplyEntryResult(req, Vol(req)->Symlink(parent, name, link, CallerOf(req)), "symlink", parent);
}

void OpRename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t newparent,
              const char* newname, unsigned int flags) {
  // RENAME_WHITEOUT and unknown flags are not supported; NOREPLACE and
  // EXCHANGE exclude each other (the kernel checks that too).
  if ((flags & ~static_cast<unsigned>(RENAME_NOREPLACE | RENAME_EXCHANGE)) != 0 ||
      flags == (RENAME_NOREPLACE | RENAME_EXCHANGE)) {
    fuse_reply_err(req, EINVAL);
    return;
  }
  ReplyStatus(req, Vol(req)->Rename(parent, name, newparent, newname, flags), "rename", parent);
}

void OpLink(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char* newname) {
  ReplyEntryResult(req, Vol(req)->Link(ino, newparent, newname), "link", ino);
}

// ---------------------------------------------------------------------------
// Files.

void OpOpen(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  if (Status s = Vol(req)->Open(ino); !s.ok()) {
    ReplyError(req, s, "open", ino);
    return;
  }
  SetOpenFlags(*Fs(req), fi);
  Volume* vol = Vol(req);  // a reply frees req
  if (fuse_reply_open(req, fi) != 0) vol->Release(ino);
}

void OpCreate(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode,
              fuse_file_info* fi) {
  Volume* vol = Vol(req);
  auto r = vol->Create(parent, name, mode & 07777, CallerOf(req));
  if (!r.ok() && ErrnoOf(r.status()) == EEXIST && (fi->flags & O_EXCL) == 0) {
    // Another client created the name after the kernel saw it missing: without
    // O_EXCL, open what is there (as the kernel would had it seen the entry).
    r = vol->Lookup(parent, name);
    if (r.ok()) {
      int err = 0;
      if (S_ISDIR(r->mode)) {
        err = EISDIR;
      } else if (!S_ISREG(r->mode)) {
        err = EEXIST;  // a FIFO or device needs the kernel's own open path
      } else if (!MayOpen(req, *r, fi->flags)) {
        err = EACCES;
      } else if (Status s = vol->Open(r->ino); !s.ok()) {
        err = ErrnoOf(s);
      } else if ((fi->flags & O_TRUNC) != 0) {
        client::SetAttrArgs trunc;
        trunc.valid = client::SetAttrArgs::kSize | client::SetAttrArgs::kMtimeNow;
        auto t = vol->SetAttr(r->ino, trunc);
        if (t.ok()) {
          r = Attr(*t);
        } else {
          vol->Release(r->ino);
          err = ErrnoOf(t.status());
        }
      }
      if (err != 0) {
        vol->Forget(r->ino, 1);
        fuse_reply_err(req, err);
        return;
      }
    }
  }
  if (!r.ok()) {
    ReplyError(req, r.status(), "create", parent);
    return;
  }
  SetOpenFlags(*Fs(req), fi);
  fuse_entry_param e = EntryOf(*Fs(req), *r);
  if (fuse_reply_create(req, &e, fi) != 0) {
    vol->Release(r->ino);
    vol->Forget(r->ino, 1);
  }
}

void OpRead(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* /*fi*/) {
  if (off < 0) {
    fuse_reply_err(req, EINVAL);
    return;
  }
  std::string data;
  if (Status s = Vol(req)->Read(ino, static_cast<uint64_t>(off), size, &data); !s.ok()) {
    ReplyError(req, s, "read", ino);
    return;
  }
  fuse_reply_buf(req, data.data(), data.size());
}

void OpWrite(fuse_req_t req, fuse_ino_t ino, const char* buf, size_t size, off_t off,
             fuse_file_info* fi) {
  if (off < 0) {
    fuse_reply_err(req, EINVAL);
    return;
  }
  // The kernel sends the file's current flags with every write, so O_APPEND
  // set or cleared later with fcntl(F_SETFL) counts. Page-cache write-back
  // (mmap) carries no flags and always writes at its offset.
  const bool append = fi->writepage == 0 && (fi->flags & O_APPEND) != 0;
  auto r = Vol(req)->Write(ino, static_cast<uint64_t>(off), std::string_view(buf, size), append);
  if (!r.ok()) {
    ReplyError(req, r.status(), "write", ino);
    return;
  }
  fuse_reply_write(req, r->written);
}

void OpFlush(fuse_req_t req, fuse_ino_t /*ino*/, fuse_file_info* /*fi*/) {
  // Writes are acknowledged by a quorum before they are answered: nothing to do.
  fuse_reply_err(req, 0);
}

void OpRelease(fuse_req_t req, fuse_ino_t ino, fuse_file_info* /*fi*/) {
  Vol(req)->Release(ino);
  fuse_reply_err(req, 0);
}

void OpFsync(fuse_req_t req, fuse_ino_t ino, int datasync, fuse_file_info* /*fi*/) {
  ReplyStatus(req, Vol(req)->Fsync(ino, datasync != 0), "fsync", ino);
}

void OpFallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
                 fuse_file_info* /*fi*/) {
  if (offset < 0 || length <= 0) {
    fuse_reply_err(req, EINVAL);
    return;
  }
  auto r =
      Vol(req)->Fallocate(ino, mode, static_cast<uint64_t>(offset), static_cast<uint64_t>(length));
  ReplyStatus(req, r.status(), "fallocate", ino);
}

// ---------------------------------------------------------------------------
// Directories. opendir keeps a per-handle snapshot of the listing, taken at
// offset 0 (so rewinddir sees a fresh one); an entry's offset is its index + 1
// in [".", "..", entries...].

struct DirHandle {
  std::mutex mu;
  bool loaded = false;
  std::vector<client::DirEntry> entries;
};

DirHandle* DirOf(fuse_file_info* fi) { return reinterpret_cast<DirHandle*>(fi->fh); }

void OpOpendir(fuse_req_t req, fuse_ino_t /*ino*/, fuse_file_info* fi) {
  auto* h = new DirHandle;
  fi->fh = reinterpret_cast<uint64_t>(h);
  if (fuse_reply_open(req, fi) != 0) delete h;
}

void ReadDir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi,
             bool plus) {
  DirHandle* h = DirOf(fi);
  Volume* vol = Vol(req);
  const CairnFs& fs = *Fs(req);
  // Replies go out only after the handle's lock is released: once the kernel
  // has the last page it may send releasedir (which frees the handle) at once.
  std::unique_lock lock(h->mu);
  if (off == 0 || !h->loaded) {
    // With attributes always: the kernel asks readdirplus at offset 0, and
    // plain readdir calls can use the same snapshot.
    auto r = vol->ReadDir(ino, /*plus=*/true);
    if (!r.ok()) {
      lock.unlock();
      ReplyError(req, r.status(), plus ? "readdirplus" : "readdir", ino);
      return;
    }
    h->entries = std::move(*r);
    h->loaded = true;
  }
  std::string buf(size, '\0');
  size_t used = 0;
  std::vector<Ino> refs;  // lookup references handed out with this reply
  const size_t total = h->entries.size() + 2;
  for (size_t i = off < 0 ? 0 : static_cast<size_t>(off); i < total; ++i) {
    const char* name = nullptr;
    fuse_entry_param e{};
    if (i < 2) {
      // "." and "..": no attributes for the kernel (ino 0), so no reference.
      name = i == 0 ? "." : "..";
      e.attr.st_ino = i == 0 ? ino : FUSE_ROOT_ID;
      e.attr.st_mode = S_IFDIR;
    } else {
      const client::DirEntry& d = h->entries[i - 2];
      name = d.name.c_str();
      if (d.attr.ino != 0) {
        d.attr.ToStat(&e.attr);
        e.ino = d.attr.ino;
      } else {
        e.attr.st_mode = d.mode & S_IFMT;
      }
    }
    const off_t next = static_cast<off_t>(i + 1);
    size_t n = 0;
    if (plus) {
      e.attr_timeout = fs.options().attr_timeout_s;
      e.entry_timeout = fs.options().entry_timeout_s;
      n = fuse_add_direntry_plus(req, buf.data() + used, size - used, name, &e, next);
    } else {
      n = fuse_add_direntry(req, buf.data() + used, size - used, name, &e.attr, next);
    }
    if (n > size - used) break;
    used += n;
    if (plus && e.ino != 0) {
      vol->AddRef(e.ino);
      refs.push_back(e.ino);
    }
  }
  lock.unlock();
  if (fuse_reply_buf(req, buf.data(), used) != 0) {
    for (Ino r : refs) vol->Forget(r, 1);
  }
}

void OpReaddir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  ReadDir(req, ino, size, off, fi, /*plus=*/false);
}

void OpReaddirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  ReadDir(req, ino, size, off, fi, /*plus=*/true);
}

void OpReleasedir(fuse_req_t req, fuse_ino_t /*ino*/, fuse_file_info* fi) {
  delete DirOf(fi);
  fuse_reply_err(req, 0);
}

void OpFsyncdir(fuse_req_t req, fuse_ino_t /*ino*/, int /*datasync*/, fuse_file_info* /*fi*/) {
  // Entry operations are acknowledged by a quorum before they are answered.
  fuse_reply_err(req, 0);
}

// ---------------------------------------------------------------------------
// Volume-wide.

void OpStatfs(fuse_req_t req, fuse_ino_t ino) {
  auto r = Vol(req)->StatFs();
  if (!r.ok()) {
    ReplyError(req, r.status(), "statfs", ino);
    return;
  }
  struct statvfs st {};
  const uint32_t bs = r->block_size != 0 ? r->block_size : 4096;
  st.f_bsize = bs;
  st.f_frsize = bs;
  st.f_blocks = r->capacity_bytes / bs;
  st.f_bfree = r->free_bytes / bs;
  st.f_bavail = st.f_bfree;
  st.f_files = r->files;
  st.f_ffree = r->files_free;
  st.f_favail = r->files_free;
  st.f_namemax = r->max_name_bytes;
  fuse_reply_statfs(req, &st);
}

// ---------------------------------------------------------------------------
// Extended attributes. size 0 asks for the size; a buffer too small is ERANGE.

void ReplyXattrValue(fuse_req_t req, const std::string& value, size_t size) {
  if (size == 0) {
    fuse_reply_xattr(req, value.size());
  } else if (size < value.size()) {
    fuse_reply_err(req, ERANGE);
  } else {
    fuse_reply_buf(req, value.data(), value.size());
  }
}

void OpSetxattr(fuse_req_t req, fuse_ino_t ino, const char* name, const char* value, size_t size,
                int flags) {
  // POSIX ACLs are not supported (no FUSE_CAP_POSIX_ACL: the kernel checks the
  // mode bits only). Storing one would look like success and protect nothing.
  if (std::string_view(name).starts_with("system.posix_acl_")) {
    fuse_reply_err(req, EOPNOTSUPP);
    return;
  }
  ReplyStatus(req, Vol(req)->SetXattr(ino, name, std::string_view(value, size), flags), "setxattr",
              ino);
}

void OpGetxattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) {
  auto r = Vol(req)->GetXattr(ino, name);
  if (!r.ok()) {
    ReplyError(req, r.status(), "getxattr", ino);
    return;
  }
  ReplyXattrValue(req, *r, size);
}

void OpListxattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
  auto r = Vol(req)->ListXattr(ino);
  if (!r.ok()) {
    ReplyError(req, r.status(), "listxattr", ino);
    return;
  }
  std::string list;
  for (const auto& name : *r) {
    list += name;
    list += '\0';
  }
  ReplyXattrValue(req, list, size);
}

void OpRemovexattr(fuse_req_t req, fuse_ino_t ino, const char* name) {
  ReplyStatus(req, Vol(req)->RemoveXattr(ino, name), "removexattr", ino);
}

fuse_lowlevel_ops MakeOps() {
  fuse_lowlevel_ops ops{};
  ops.init = OpInit;
  ops.destroy = OpDestroy;
  ops.lookup = OpLookup;
  ops.forget = OpForget;
  ops.forget_multi = OpForgetMulti;
  ops.getattr = OpGetattr;
  ops.setattr = OpSetattr;
  ops.readlink = OpReadlink;
  ops.mknod = OpMknod;
  ops.mkdir = OpMkdir;
  ops.unlink = OpUnlink;
  ops.rmdir = OpRmdir;
  ops.symlink = OpSymlink;
  ops.rename = OpRename;
  ops.link = OpLink;
  ops.open = OpOpen;
  ops.read = OpRead;
  ops.write = OpWrite;
  ops.flush = OpFlush;
  ops.release = OpRelease;
  ops.fsync = OpFsync;
  ops.opendir = OpOpendir;
  ops.readdir = OpReaddir;
  ops.readdirplus = OpReaddirplus;
  ops.releasedir = OpReleasedir;
  ops.fsyncdir = OpFsyncdir;
  ops.statfs = OpStatfs;
  ops.setxattr = OpSetxattr;
  ops.getxattr = OpGetxattr;
  ops.listxattr = OpListxattr;
  ops.removexattr = OpRemovexattr;
  ops.create = OpCreate;
  ops.fallocate = OpFallocate;
  // No getlk/setlk/flock: the kernel keeps locks locally on this mount.
  return ops;
}

}  // namespace

const fuse_lowlevel_ops& CairnFs::Ops() {
  static const fuse_lowlevel_ops ops = MakeOps();
  return ops;
}

}  // namespace cairn::fuse
