// In-process tests of Brick: every operation, its errors, confinement,
// capacity, versions and the dirty index. Runs as root (trusted.* xattrs).
#include "brickd/brick.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/falloc.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "common/digest.h"

namespace cairn::brickd {
namespace {

namespace fs = std::filesystem;

class BrickTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cairn-brick-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    base_ = tmpl;
    path_ = base_ + "/brick";
    ASSERT_EQ(::mkdir(path_.c_str(), 0755), 0);
    Reopen(0);
  }
  void TearDown() override {
    brick_.reset();
    fs::remove_all(base_);
  }
  void Reopen(uint64_t capacity) {
    brick_.reset();
    bool init = false;
    auto b = Brick::Open({"b1", path_, capacity}, &init);
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    brick_ = *b;
  }

  std::string Root() { return Uuid::Root().Raw(); }

  StatusOr<pb::Attr> MakeEntry(const std::string& parent, const std::string& name, char kind,
                               uint32_t mode = 0644, std::string target = "", bool dirty = false,
                               std::string id = "") {
    pb::CreateRequest r;
    r.set_parent_id(parent);
    r.set_name(name);
    r.set_new_id(id.empty() ? Uuid::Random().Raw() : id);
    r.set_mode(mode);
    r.mutable_caller()->set_uid(1000);
    r.mutable_caller()->set_gid(1000);
    r.set_symlink_target(target);
    r.mutable_txn()->set_mark_dirty(dirty);
    switch (kind) {
      case 'd':
        return brick_->Mkdir(r);
      case 'l':
        return brick_->Symlink(r);
      case 'n':
        return brick_->Mknod(r);
      default:
        return brick_->Create(r);
    }
  }
  std::string Mkdir(const std::string& parent, const std::string& name) {
    auto a = MakeEntry(parent, name, 'd', 0755);
    EXPECT_TRUE(a.ok()) << a.status().ToString();
    return a.ok() ? a->id() : "";
  }
  std::string CreateFile(const std::string& parent, const std::string& name) {
    auto a = MakeEntry(parent, name, 'f');
    EXPECT_TRUE(a.ok()) << a.status().ToString();
    return a.ok() ? a->id() : "";
  }
  StatusOr<pb::WriteReply> Write(const std::string& id, uint64_t off, const std::string& data,
                                 bool dirty = false) {
    pb::WriteRequest w;
    w.set_id(id);
    w.set_offset(off);
    w.set_data(data);
    w.mutable_txn()->set_mark_dirty(dirty);
    return brick_->Write(w);
  }
  StatusOr<std::string> Read(const std::string& id, uint64_t off, uint32_t size) {
    pb::ReadRequest r;
    r.set_id(id);
    r.set_offset(off);
    r.set_size(size);
    auto rep = brick_->Read(r);
    if (!rep.ok()) return rep.status();
    return rep->data();
  }
  StatusOr<pb::Attr> Lookup(const std::string& parent, const std::string& name) {
    pb::LookupRequest r;
    r.set_parent_id(parent);
    r.set_name(name);
    return brick_->Lookup(r);
  }
  StatusOr<pb::Attr> GetAttr(const std::string& id) {
    pb::GetAttrRequest r;
    r.set_id(id);
    return brick_->GetAttr(r);
  }
  StatusOr<pb::RenameReply> Rename(const std::string& op, const std::string& on,
                                   const std::string& np, const std::string& nn,
                                   uint32_t flags = 0) {
    pb::RenameRequest r;
    r.set_old_parent_id(op);
    r.set_old_name(on);
    r.set_new_parent_id(np);
    r.set_new_name(nn);
    r.set_flags(flags);
    return brick_->Rename(r);
  }
  StatusOr<pb::UnlinkReply> Unlink(const std::string& parent, const std::string& name,
                                   bool keep_open = false) {
    pb::UnlinkRequest r;
    r.set_parent_id(parent);
    r.set_name(name);
    r.set_keep_open(keep_open);
    return brick_->Unlink(r);
  }
  StatusOr<pb::UnlinkReply> Rmdir(const std::string& parent, const std::string& name) {
    pb::UnlinkRequest r;
    r.set_parent_id(parent);
    r.set_name(name);
    return brick_->Rmdir(r);
  }
  std::vector<std::string> Names(const std::string& dir) {
    std::vector<std::string> out;
    pb::ReadDirRequest r;
    r.set_id(dir);
    for (;;) {
      auto rep = brick_->ReadDir(r);
      EXPECT_TRUE(rep.ok()) << rep.status().ToString();
      if (!rep.ok()) break;
      for (const auto& e : rep->entries()) out.push_back(e.name());
      if (rep->eof()) break;
      r.set_cookie(rep->next_cookie());
    }
    std::sort(out.begin(), out.end());
    return out;
  }
  uint64_t StatFsUsed() {
    auto r = brick_->StatFs({});
    EXPECT_TRUE(r.ok());
    return r.ok() ? r->used_bytes() : 0;
  }

  std::string base_, path_;
  std::shared_ptr<Brick> brick_;
};

bool VersionIs(const pb::Version& v, uint64_t data, uint64_t meta, uint64_t entry) {
  return v.data() == data && v.meta() == meta && v.entry() == entry;
}

#define EXPECT_ERRNO(expr, err)                                            \
  do {                                                                     \
    auto r_ = (expr);                                                      \
    ASSERT_FALSE(r_.ok()) << "expected errno " << (err);                   \
    EXPECT_EQ(r_.status().posix_errno(), (err)) << r_.status().ToString(); \
  } while (0)

// ---- Layout and ids.

TEST_F(BrickTest, NewBrickIsAPlainDirectoryWithHiddenIndex) {
  EXPECT_TRUE(fs::is_directory(path_ + "/.cairn/h"));
  EXPECT_TRUE(fs::exists(path_ + "/.cairn/brick.json"));
  std::string f = CreateFile(Root(), "hello.txt");
  ASSERT_TRUE(Write(f, 0, "hi there").ok());
  // An operator can read the data with plain tools.
  std::ifstream in(path_ + "/hello.txt");
  std::string content((std::istreambuf_iterator<char>(in)), {});
  EXPECT_EQ(content, "hi there");
  // The root lists the file but never the index.
  EXPECT_EQ(Names(Root()), std::vector<std::string>{"hello.txt"});
}

TEST_F(BrickTest, OpenRefusesDirectoryOfAnotherBrick) {
  brick_.reset();
  bool init = false;
  auto other = Brick::Open({"b2", path_, 0}, &init);
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(other.status().message().find("b1"), std::string::npos);
}

TEST_F(BrickTest, LookupReturnsTheIdGivenAtCreate) {
  std::string id = Uuid::Random().Raw();
  auto made = MakeEntry(Root(), "f", 'f', 0640, "", false, id);
  ASSERT_TRUE(made.ok()) << made.status().ToString();
  auto a = Lookup(Root(), "f");
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->id(), id);
  EXPECT_EQ(a->type(), pb::FILE_TYPE_REGULAR);
  EXPECT_EQ(a->mode() & 07777, 0640u);
  EXPECT_EQ(a->uid(), 1000u);
  EXPECT_EQ(a->gid(), 1000u);
  EXPECT_EQ(a->nlink(), 1u);  // the index link is not shown
}

TEST_F(BrickTest, CreateRetriedWithSameIdSucceedsAndOtherIdIsEexist) {
  std::string id = Uuid::Random().Raw();
  ASSERT_TRUE(MakeEntry(Root(), "f", 'f', 0644, "", false, id).ok());
  auto again = MakeEntry(Root(), "f", 'f', 0644, "", false, id);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->id(), id);
  EXPECT_ERRNO(MakeEntry(Root(), "f", 'f'), EEXIST);
  EXPECT_ERRNO(MakeEntry(Root(), "f", 'd'), EEXIST);
  // An id already used under another name is refused too.
  EXPECT_ERRNO(MakeEntry(Root(), "g", 'f', 0644, "", false, id), EEXIST);
}

TEST_F(BrickTest, MalformedIdsAreInvalidArgument) {
  pb::GetAttrRequest r;
  r.set_id("abc");
  auto a = brick_->GetAttr(r);
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.status().code(), StatusCode::kInvalidArgument);
  r.set_id(std::string(16, '\0'));
  EXPECT_EQ(brick_->GetAttr(r).status().code(), StatusCode::kInvalidArgument);
  EXPECT_ERRNO(GetAttr(Uuid::Random().Raw()), ENOENT);
}

// ---- Entry operations.

TEST_F(BrickTest, MkdirNestedAndOpenByIdAfterParentRename) {
  std::string a = Mkdir(Root(), "a");
  std::string b = Mkdir(a, "b");
  std::string f = CreateFile(b, "f");
  ASSERT_TRUE(Rename(Root(), "a", Root(), "a2").ok());
  // Children resolve by id through the renamed parent.
  EXPECT_TRUE(Write(f, 0, "x").ok());
  EXPECT_TRUE(Lookup(b, "f").ok());
  std::string c = Mkdir(b, "c");
  EXPECT_TRUE(fs::is_directory(path_ + "/a2/b/c"));
}

TEST_F(BrickTest, MknodMakesFifoAndRejectsDirectoryType) {
  auto fifo = MakeEntry(Root(), "pipe", 'n', S_IFIFO | 0600);
  ASSERT_TRUE(fifo.ok()) << fifo.status().ToString();
  EXPECT_EQ(fifo->type(), pb::FILE_TYPE_FIFO);
  // I/O on special files is the client kernel's business, never the brick's.
  EXPECT_ERRNO(Read(fifo->id(), 0, 10), EINVAL);
  EXPECT_ERRNO(MakeEntry(Root(), "d", 'n', S_IFDIR | 0755), EINVAL);
  auto reg = MakeEntry(Root(), "r", 'n', S_IFREG | 0600);
  ASSERT_TRUE(reg.ok());
  EXPECT_EQ(reg->type(), pb::FILE_TYPE_REGULAR);
}

TEST_F(BrickTest, SymlinkReadlinkAndNoFollow) {
  auto l = MakeEntry(Root(), "ln", 'l', 0, "some/where/../else");
  ASSERT_TRUE(l.ok()) << l.status().ToString();
  EXPECT_EQ(l->type(), pb::FILE_TYPE_SYMLINK);
  pb::ReadlinkRequest r;
  r.set_id(l->id());
  auto t = brick_->Readlink(r);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->target(), "some/where/../else");
  EXPECT_ERRNO(MakeEntry(Root(), "empty", 'l', 0, ""), ENOENT);
  std::string f = CreateFile(Root(), "f");
  r.set_id(f);
  EXPECT_ERRNO(brick_->Readlink(r), EINVAL);
}

TEST_F(BrickTest, HardLinkCountsAndSurvivesUnlinkOfOneName) {
  std::string d = Mkdir(Root(), "d");
  std::string f = CreateFile(Root(), "f");
  ASSERT_TRUE(Write(f, 0, "payload").ok());
  pb::LinkRequest l;
  l.set_id(f);
  l.set_new_parent_id(d);
  l.set_new_name("f2");
  auto a = brick_->Link(l);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->nlink(), 2u);
  auto u = Unlink(Root(), "f");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->nlink(), 1u);
  EXPECT_EQ(*Read(f, 0, 100), "payload");
  ASSERT_TRUE(Unlink(d, "f2").ok());
  EXPECT_ERRNO(GetAttr(f), ENOENT);
  // Hard links to directories are refused.
  l.set_id(d);
  l.set_new_name("dlink");
  EXPECT_ERRNO(brick_->Link(l), EPERM);
}

TEST_F(BrickTest, UnlinkOfOpenFileKeepsDataUntilForget) {
  std::string f = CreateFile(Root(), "f");
  ASSERT_TRUE(Write(f, 0, std::string(100000, 'z')).ok());
  uint64_t used = StatFsUsed();
  EXPECT_GE(used, 100000u);
  auto u = Unlink(Root(), "f", /*keep_open=*/true);
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->nlink(), 0u);
  EXPECT_EQ(Read(f, 0, 5).value(), "zzzzz");
  EXPECT_TRUE(Write(f, 0, "a").ok());
  auto attr = GetAttr(f);
  ASSERT_TRUE(attr.ok());
  EXPECT_EQ(attr->nlink(), 0u);
  EXPECT_EQ(StatFsUsed(), used);
  pb::ForgetRequest fg;
  fg.add_ids(f);
  ASSERT_TRUE(brick_->Forget(fg).ok());
  EXPECT_ERRNO(GetAttr(f), ENOENT);
  EXPECT_LT(StatFsUsed(), used);
}

TEST_F(BrickTest, UnlinkAndRmdirErrors) {
  std::string d = Mkdir(Root(), "d");
  CreateFile(d, "f");
  EXPECT_ERRNO(Unlink(Root(), "d"), EISDIR);
  EXPECT_ERRNO(Rmdir(d, "f"), ENOTDIR);
  EXPECT_ERRNO(Rmdir(Root(), "d"), ENOTEMPTY);
  EXPECT_ERRNO(Unlink(Root(), "missing"), ENOENT);
  ASSERT_TRUE(Unlink(d, "f").ok());
  auto r = Rmdir(Root(), "d");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->id(), d);
  EXPECT_ERRNO(GetAttr(d), ENOENT);
  EXPECT_FALSE(fs::exists(path_ + "/d"));
}

TEST_F(BrickTest, RenameOverExistingFileReplacesIt) {
  std::string a = CreateFile(Root(), "a");
  std::string b = CreateFile(Root(), "b");
  ASSERT_TRUE(Write(a, 0, "A").ok());
  ASSERT_TRUE(Write(b, 0, "B").ok());
  auto r = Rename(Root(), "a", Root(), "b");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->replaced_id(), b);
  EXPECT_EQ(Lookup(Root(), "b")->id(), a);
  EXPECT_ERRNO(GetAttr(b), ENOENT);  // the replaced file is gone from the index too
  EXPECT_ERRNO(Lookup(Root(), "a"), ENOENT);
}

TEST_F(BrickTest, RenameNoreplaceAndExchange) {
  std::string a = CreateFile(Root(), "a");
  std::string d = Mkdir(Root(), "d");
  EXPECT_ERRNO(Rename(Root(), "a", Root(), "d", pb::RenameRequest::FLAGS_NOREPLACE), EEXIST);
  ASSERT_TRUE(Rename(Root(), "a", Root(), "d", pb::RenameRequest::FLAGS_EXCHANGE).ok());
  EXPECT_EQ(Lookup(Root(), "d")->id(), a);
  EXPECT_EQ(Lookup(Root(), "a")->id(), d);
  // The exchanged directory still opens by id (its handle followed it).
  EXPECT_TRUE(Mkdir(d, "inner").size() == 16);
  EXPECT_TRUE(fs::is_directory(path_ + "/a/inner"));
  EXPECT_ERRNO(Rename(Root(), "a", Root(), "d", 3), EINVAL);
}

TEST_F(BrickTest, RenameDirectoryAcrossParentsAndIntoItselfFails) {
  std::string x = Mkdir(Root(), "x");
  std::string y = Mkdir(Root(), "y");
  std::string sub = Mkdir(x, "sub");
  ASSERT_TRUE(Rename(x, "sub", y, "moved").ok());
  EXPECT_TRUE(fs::is_directory(path_ + "/y/moved"));
  EXPECT_TRUE(CreateFile(sub, "inside").size() == 16);
  EXPECT_TRUE(fs::exists(path_ + "/y/moved/inside"));
  // A directory cannot move beneath itself.
  EXPECT_ERRNO(Rename(Root(), "y", sub, "loop"), EINVAL);
  // Over a non-empty directory: ENOTEMPTY.
  EXPECT_ERRNO(Rename(Root(), "x", Root(), "y"), ENOTEMPTY);
  // Over an empty directory: replaces it, and its handle is dropped.
  ASSERT_TRUE(Rename(y, "moved", Root(), "x").ok());
  EXPECT_ERRNO(GetAttr(x), ENOENT);
  EXPECT_TRUE(Lookup(Root(), "x").ok());
}

TEST_F(BrickTest, ReadDirPagesWithCookiesAndAttrs) {
  std::string d = Mkdir(Root(), "d");
  std::set<std::string> want;
  for (int i = 0; i < 250; ++i) {
    std::string n = "file-" + std::to_string(i);
    CreateFile(d, n);
    want.insert(n);
  }
  pb::ReadDirRequest r;
  r.set_id(d);
  r.set_max_entries(64);
  r.set_with_attrs(true);
  std::set<std::string> got;
  int pages = 0;
  for (;;) {
    auto rep = brick_->ReadDir(r);
    ASSERT_TRUE(rep.ok()) << rep.status().ToString();
    ++pages;
    EXPECT_LE(rep->entries_size(), 64);
    for (const auto& e : rep->entries()) {
      EXPECT_TRUE(got.insert(e.name()).second) << "duplicate " << e.name();
      EXPECT_EQ(e.id().size(), 16u);
      EXPECT_EQ(e.attr().id(), e.id());
      EXPECT_EQ(e.type(), pb::FILE_TYPE_REGULAR);
    }
    if (rep->eof()) break;
    r.set_cookie(rep->next_cookie());
  }
  EXPECT_EQ(got, want);
  EXPECT_GE(pages, 4);
  pb::GetAttrRequest ga;
  std::string f = Lookup(d, "file-1")->id();
  r.set_id(f);
  r.set_cookie(0);
  EXPECT_ERRNO(brick_->ReadDir(r), ENOTDIR);
}

// ---- Data operations.

TEST_F(BrickTest, WriteReadAtOffsetsAndEof) {
  std::string f = CreateFile(Root(), "f");
  auto w = Write(f, 10, "0123456789");
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(w->written(), 10u);
  EXPECT_EQ(w->attr().size(), 20u);
  pb::ReadRequest r;
  r.set_id(f);
  r.set_offset(5);
  r.set_size(100);
  auto rep = brick_->Read(r);
  ASSERT_TRUE(rep.ok());
  EXPECT_EQ(rep->data(), std::string(5, '\0') + "0123456789");
  EXPECT_TRUE(rep->eof());
  r.set_offset(0);
  r.set_size(4);
  EXPECT_FALSE(brick_->Read(r)->eof());
  // Large payloads up to the 4 MiB limit; beyond it, a precise error.
  std::string big(kMaxIoBytes, 'q');
  ASSERT_TRUE(Write(f, 0, big).ok());
  EXPECT_EQ(Read(f, 0, kMaxIoBytes).value(), big);
  EXPECT_ERRNO(Write(f, 0, big + "x"), EINVAL);
  EXPECT_ERRNO(Read(f, 0, kMaxIoBytes + 1), EINVAL);
}

TEST_F(BrickTest, AppendWritesAtEnd) {
  std::string f = CreateFile(Root(), "log");
  pb::WriteRequest w;
  w.set_id(f);
  w.set_append(true);
  w.set_offset(999);
  w.set_data("one,");
  ASSERT_TRUE(brick_->Write(w).ok());
  w.set_data("two");
  auto r = brick_->Write(w);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->offset(), 4u);
  EXPECT_EQ(Read(f, 0, 100).value(), "one,two");
}

TEST_F(BrickTest, WriteToDirectoryOrSymlinkIsRefused) {
  std::string d = Mkdir(Root(), "d");
  EXPECT_ERRNO(Write(d, 0, "x"), EISDIR);
  auto l = MakeEntry(Root(), "l", 'l', 0, "/etc/passwd");
  ASSERT_TRUE(l.ok());
  EXPECT_ERRNO(Write(l->id(), 0, "x"), EINVAL);
}

TEST_F(BrickTest, TruncateGrowsSparseAndShrinks) {
  std::string f = CreateFile(Root(), "f");
  ASSERT_TRUE(Write(f, 0, "abcdef").ok());
  pb::TruncateRequest t;
  t.set_id(f);
  t.set_size(3);
  ASSERT_TRUE(brick_->Truncate(t).ok());
  EXPECT_EQ(Read(f, 0, 100).value(), "abc");
  t.set_size(5ull << 30);  // 5 GiB, sparse
  auto a = brick_->Truncate(t);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->size(), 5ull << 30);
  EXPECT_LT(a->blocks() * 512, 1u << 20);
  EXPECT_EQ(Read(f, (5ull << 30) - 2, 10).value(), std::string(2, '\0'));
  std::string d = Mkdir(Root(), "d");
  t.set_id(d);
  EXPECT_ERRNO(brick_->Truncate(t), EISDIR);
}

TEST_F(BrickTest, FallocateAllocatesPunchesAndZeroes) {
  std::string f = CreateFile(Root(), "f");
  pb::FallocateRequest r;
  r.set_id(f);
  r.set_offset(0);
  r.set_length(1 << 20);
  auto a = brick_->Fallocate(r);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->size(), 1u << 20);
  EXPECT_GE(a->blocks() * 512, 1u << 20);
  ASSERT_TRUE(Write(f, 0, std::string(1 << 20, 'x')).ok());
  r.set_mode(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE);
  r.set_offset(4096);
  r.set_length(8192);
  ASSERT_TRUE(brick_->Fallocate(r).ok());
  EXPECT_EQ(Read(f, 4096, 8192).value(), std::string(8192, '\0'));
  EXPECT_EQ(Read(f, 0, 4096).value(), std::string(4096, 'x'));
  r.set_mode(FALLOC_FL_ZERO_RANGE);
  r.set_offset(100);
  r.set_length(10);
  ASSERT_TRUE(brick_->Fallocate(r).ok());
  EXPECT_EQ(Read(f, 95, 20).value(), "xxxxx" + std::string(10, '\0') + "xxxxx");
  r.set_mode(FALLOC_FL_PUNCH_HOLE);  // without KEEP_SIZE
  EXPECT_ERRNO(brick_->Fallocate(r), EOPNOTSUPP);
  r.set_mode(0x40);  // INSERT_RANGE: not supported
  EXPECT_ERRNO(brick_->Fallocate(r), EOPNOTSUPP);
  r.set_mode(0);
  r.set_length(0);
  EXPECT_ERRNO(brick_->Fallocate(r), EINVAL);
}

TEST_F(BrickTest, FsyncFilesAndDirectories) {
  std::string f = CreateFile(Root(), "f");
  std::string d = Mkdir(Root(), "d");
  pb::FsyncRequest r;
  r.set_id(f);
  EXPECT_TRUE(brick_->Fsync(r).ok());
  r.set_datasync(true);
  EXPECT_TRUE(brick_->Fsync(r).ok());
  r.set_id(d);
  EXPECT_TRUE(brick_->Fsync(r).ok());
  r.set_id(Uuid::Random().Raw());
  EXPECT_ERRNO(
      [&] {
        auto s = brick_->Fsync(r);
        return StatusOr<int>(s.ok() ? Status::Internal("ok") : s);
      }(),
      ENOENT);
}

// ---- Metadata.

TEST_F(BrickTest, SetAttrModeOwnerTimesSize) {
  std::string f = CreateFile(Root(), "f");
  pb::SetAttrRequest s;
  s.set_id(f);
  s.set_valid(pb::SetAttrRequest::VALID_MODE | pb::SetAttrRequest::VALID_UID |
              pb::SetAttrRequest::VALID_GID | pb::SetAttrRequest::VALID_ATIME |
              pb::SetAttrRequest::VALID_MTIME);
  s.set_mode(04750);
  s.set_uid(42);
  s.set_gid(43);
  s.set_atime_ns(1000000000LL * 1000000 + 123);
  s.set_mtime_ns(1000000000LL * 2000000 + 456);
  auto a = brick_->SetAttr(s);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->mode() & 07777, 04750u);  // set-uid kept although chown ran first
  EXPECT_EQ(a->uid(), 42u);
  EXPECT_EQ(a->gid(), 43u);
  EXPECT_EQ(a->atime_ns(), 1000000000LL * 1000000 + 123);
  EXPECT_EQ(a->mtime_ns(), 1000000000LL * 2000000 + 456);
  s.set_valid(pb::SetAttrRequest::VALID_MTIME_NOW);
  auto now = brick_->SetAttr(s);
  ASSERT_TRUE(now.ok());
  EXPECT_GT(now->mtime_ns(), 1000000000LL * 1700000000);
  s.set_valid(pb::SetAttrRequest::VALID_MODE);
  s.set_mode(0170000);
  EXPECT_ERRNO(brick_->SetAttr(s), EINVAL);
}

TEST_F(BrickTest, SetAttrOnSymlinkChangesTheLinkNotItsTarget) {
  std::string f = CreateFile(Root(), "target");
  auto l = MakeEntry(Root(), "l", 'l', 0, "target");
  ASSERT_TRUE(l.ok());
  pb::SetAttrRequest s;
  s.set_id(l->id());
  s.set_valid(pb::SetAttrRequest::VALID_UID | pb::SetAttrRequest::VALID_MTIME |
              pb::SetAttrRequest::VALID_MODE);
  s.set_uid(77);
  s.set_mode(0777);
  s.set_mtime_ns(5000000000LL);
  auto a = brick_->SetAttr(s);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->uid(), 77u);
  EXPECT_EQ(a->mtime_ns(), 5000000000LL);
  auto t = GetAttr(f);
  EXPECT_EQ(t->uid(), 1000u);
  EXPECT_NE(t->mtime_ns(), 5000000000LL);
  EXPECT_EQ(t->mode() & 07777, 0644u);
}

TEST_F(BrickTest, LookupAndReadDirPlusCarryXattrNames) {
  std::string f = CreateFile(Root(), "f");
  auto made = MakeEntry(Root(), "ln", 'l', 0, "f");
  ASSERT_TRUE(made.ok());
  pb::SetXattrRequest s;
  s.set_id(f);
  s.set_name("user.a");
  s.set_value("1");
  ASSERT_TRUE(brick_->SetXattr(s).ok());
  pb::LookupRequest l;
  l.set_parent_id(Root());
  l.set_name("f");
  auto a = brick_->Lookup(l);
  ASSERT_TRUE(a.ok());
  EXPECT_TRUE(a->xattr_names_valid());
  // The brick's own trusted.cairn.* names are never shown.
  EXPECT_EQ(std::vector<std::string>(a->xattr_names().begin(), a->xattr_names().end()),
            std::vector<std::string>{"user.a"});
  l.set_name("ln");
  a = brick_->Lookup(l);
  ASSERT_TRUE(a.ok());
  EXPECT_TRUE(a->xattr_names_valid());
  EXPECT_EQ(a->xattr_names_size(), 0);  // the symlink's own, not its target's
  pb::ReadDirRequest rd;
  rd.set_id(Root());
  rd.set_with_attrs(true);
  auto page = brick_->ReadDir(rd);
  ASSERT_TRUE(page.ok());
  for (const auto& e : page->entries()) {
    EXPECT_TRUE(e.attr().xattr_names_valid()) << e.name();
    EXPECT_EQ(e.attr().xattr_names_size(), e.name() == "f" ? 1 : 0) << e.name();
  }
}

TEST_F(BrickTest, XattrsSetGetListRemoveAndReservedNamespace) {
  std::string f = CreateFile(Root(), "f");
  pb::SetXattrRequest s;
  s.set_id(f);
  s.set_name("user.color");
  s.set_value(std::string("bl\0ue", 5));
  ASSERT_TRUE(brick_->SetXattr(s).ok());
  s.set_flags(XATTR_CREATE);
  EXPECT_ERRNO(brick_->SetXattr(s), EEXIST);
  s.set_flags(XATTR_REPLACE);
  s.set_name("user.none");
  EXPECT_ERRNO(brick_->SetXattr(s), ENODATA);
  pb::GetXattrRequest g;
  g.set_id(f);
  g.set_name("user.color");
  EXPECT_EQ(brick_->GetXattr(g)->value(), std::string("bl\0ue", 5));
  // Values beyond the 64 KiB xattr limit are refused before reaching the disk;
  // larger-than-a-buffer values that the backing file system takes round-trip.
  s.set_flags(0);
  s.set_name("trusted.big");
  s.set_value(std::string(65537, 'v'));
  EXPECT_ERRNO(brick_->SetXattr(s), E2BIG);
  s.set_value(std::string(2000, 'v'));
  ASSERT_TRUE(brick_->SetXattr(s).ok());
  g.set_name("trusted.big");
  EXPECT_EQ(brick_->GetXattr(g)->value(), std::string(2000, 'v'));
  pb::ListXattrRequest l;
  l.set_id(f);
  auto names = brick_->ListXattr(l);
  ASSERT_TRUE(names.ok());
  std::set<std::string> got(names->names().begin(), names->names().end());
  EXPECT_EQ(got, (std::set<std::string>{"user.color", "trusted.big"}));
  s.set_name("trusted.cairn.id");
  s.set_value(std::string(16, 'x'));
  EXPECT_ERRNO(brick_->SetXattr(s), EPERM);
  g.set_name("trusted.cairn.id");
  EXPECT_ERRNO(brick_->GetXattr(g), EPERM);
  s.set_name("bogus.ns");
  EXPECT_ERRNO(brick_->SetXattr(s), EOPNOTSUPP);
  pb::RemoveXattrRequest r;
  r.set_id(f);
  r.set_name("user.color");
  ASSERT_TRUE(brick_->RemoveXattr(r).ok());
  EXPECT_ERRNO(brick_->RemoveXattr(r), ENODATA);
  g.set_name("user.color");
  EXPECT_ERRNO(brick_->GetXattr(g), ENODATA);
  // Directories carry xattrs too.
  std::string d = Mkdir(Root(), "d");
  s.set_id(d);
  s.set_name("user.dir");
  s.set_value("1");
  EXPECT_TRUE(brick_->SetXattr(s).ok());
}

TEST_F(BrickTest, StatFsReportsCapacityAndUsage) {
  brick_.reset();
  Reopen(10 << 20);
  auto s = brick_->StatFs({});
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->capacity_bytes(), 10u << 20);
  EXPECT_EQ(s->used_bytes(), 0u);
  EXPECT_EQ(s->free_bytes(), 10u << 20);
  EXPECT_EQ(s->max_name_bytes(), 255u);
  EXPECT_GT(s->files(), 0u);
  std::string f = CreateFile(Root(), "f");
  ASSERT_TRUE(Write(f, 0, std::string(1 << 20, 'a')).ok());
  s = brick_->StatFs({});
  EXPECT_GE(s->used_bytes(), 1u << 20);
  EXPECT_LE(s->used_bytes(), (1u << 20) + 65536);
  EXPECT_EQ(s->free_bytes(), (10u << 20) - s->used_bytes());
}

// ---- Capacity.

TEST_F(BrickTest, CapacityLimitGivesEnospcAndFreesOnDelete) {
  Reopen(4 << 20);
  std::string f = CreateFile(Root(), "f");
  ASSERT_TRUE(Write(f, 0, std::string(3 << 20, 'a')).ok());
  EXPECT_ERRNO(Write(f, 3 << 20, std::string(2 << 20, 'b')), ENOSPC);
  // Overwriting allocated data needs no new space and still works when nearly full.
  EXPECT_TRUE(Write(f, 0, std::string(1 << 20, 'c')).ok());
  std::string g = CreateFile(Root(), "g");
  EXPECT_ERRNO(Write(g, 0, std::string(2 << 20, 'd')), ENOSPC);
  pb::FallocateRequest fa;
  fa.set_id(g);
  fa.set_length(2 << 20);
  EXPECT_ERRNO(brick_->Fallocate(fa), ENOSPC);
  ASSERT_TRUE(Unlink(Root(), "f").ok());
  EXPECT_LT(StatFsUsed(), 65536u);
  EXPECT_TRUE(Write(g, 0, std::string(2 << 20, 'd')).ok());
}

TEST_F(BrickTest, UsageSurvivesCleanCloseAndIsRecountedAfterCrash) {
  std::string f = CreateFile(Root(), "f");
  ASSERT_TRUE(Write(f, 0, std::string(300000, 'a')).ok());
  uint64_t used = StatFsUsed();
  Reopen(0);
  EXPECT_EQ(StatFsUsed(), used);
  EXPECT_FALSE(fs::exists(path_ + "/.cairn/clean"));  // stale while attached
  // A file placed behind the brick's back is not a Cairn object: not counted.
  std::ofstream(path_ + "/junk-not-indexed") << std::string(50000, 'j');
  // Simulate a crash: the clean-close record is missing, so usage is recounted.
  brick_.reset();
  ASSERT_TRUE(fs::remove(path_ + "/.cairn/clean"));
  bool init = false;
  auto b = Brick::Open({"b1", path_, 0}, &init);
  ASSERT_TRUE(b.ok());
  brick_ = *b;
  EXPECT_EQ(StatFsUsed(), used);  // recount sees only indexed objects
}

// ---- Confinement.

TEST_F(BrickTest, NamesWithSlashDotDotOrAbsoluteAreRejected) {
  for (const std::string bad : {"../escape", "/etc/passwd", "a/b", "..", ".", ""}) {
    auto r = MakeEntry(Root(), bad, 'f');
    ASSERT_FALSE(r.ok()) << "accepted name '" << bad << "'";
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_ERRNO(Lookup(Root(), bad), EINVAL);
  }
  EXPECT_ERRNO(MakeEntry(Root(), std::string(256, 'n'), 'f'), ENAMETOOLONG);
  EXPECT_ERRNO(MakeEntry(Root(), std::string("nul\0byte", 8), 'f'), EINVAL);
  EXPECT_FALSE(fs::exists(base_ + "/escape"));
}

TEST_F(BrickTest, ReservedIndexDirectoryIsUntouchable) {
  EXPECT_ERRNO(Lookup(Root(), ".cairn"), EPERM);
  EXPECT_ERRNO(MakeEntry(Root(), ".cairn", 'd'), EPERM);
  EXPECT_ERRNO(Unlink(Root(), ".cairn"), EPERM);
  EXPECT_ERRNO(Rmdir(Root(), ".cairn"), EPERM);
  CreateFile(Root(), "f");
  EXPECT_ERRNO(Rename(Root(), "f", Root(), ".cairn"), EPERM);
  // ".cairn" is an ordinary name below the root.
  std::string d = Mkdir(Root(), "d");
  EXPECT_TRUE(MakeEntry(d, ".cairn", 'f').ok());
}

TEST_F(BrickTest, SymlinkPointingOutsideIsNeverFollowed) {
  std::string outside = base_ + "/outside";
  ASSERT_EQ(::mkdir(outside.c_str(), 0755), 0);
  std::ofstream(outside + "/secret") << "secret";
  auto l = MakeEntry(Root(), "evil", 'l', 0, outside);
  ASSERT_TRUE(l.ok());
  // Creating "through" the symlink is impossible: parents are ids, and a
  // symlink's id is not a directory.
  EXPECT_ERRNO(MakeEntry(l->id(), "planted", 'f'), ENOTDIR);
  EXPECT_ERRNO(Lookup(l->id(), "secret"), ENOTDIR);
  EXPECT_ERRNO(Read(l->id(), 0, 10), EINVAL);
  pb::SetXattrRequest s;
  s.set_id(l->id());
  s.set_name("trusted.mark");
  s.set_value("1");
  ASSERT_TRUE(brick_->SetXattr(s).ok());
  char buf[8];
  EXPECT_LT(::getxattr((outside).c_str(), "trusted.mark", buf, sizeof(buf)), 0);
  EXPECT_FALSE(fs::exists(outside + "/planted"));
}

TEST_F(BrickTest, DirectoryReplacedBySymlinkBehindOurBackIsNotFollowed) {
  // An attacker with host access swaps a directory for a symlink to outside.
  std::string outside = base_ + "/outside";
  ASSERT_EQ(::mkdir(outside.c_str(), 0755), 0);
  std::string d = Mkdir(Root(), "d");
  ASSERT_EQ(::rename((path_ + "/d").c_str(), (path_ + "/moved").c_str()), 0);
  ASSERT_EQ(::symlink(outside.c_str(), (path_ + "/d").c_str()), 0);
  auto r = MakeEntry(d, "planted", 'f');
  EXPECT_FALSE(r.ok());
  EXPECT_FALSE(fs::exists(outside + "/planted"));
  // A relative symlink escaping with .. is refused the same way.
  ASSERT_EQ(::unlink((path_ + "/d").c_str()), 0);
  ASSERT_EQ(::symlink("../outside", (path_ + "/d").c_str()), 0);
  EXPECT_FALSE(MakeEntry(d, "planted2", 'f').ok());
  EXPECT_FALSE(fs::exists(outside + "/planted2"));
}

TEST_F(BrickTest, HardLinkToOutsideFileIsNotServed) {
  // A hard link planted in the brick to a file outside has no Cairn id.
  std::string outside = base_ + "/outside-file";
  std::ofstream(outside) << "secret";
  ASSERT_EQ(::link(outside.c_str(), (path_ + "/planted").c_str()), 0);
  auto a = Lookup(Root(), "planted");
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.status().code(), StatusCode::kFailedPrecondition);
  // Link requests only take ids the brick issued: no way to name the outside file.
  pb::LinkRequest l;
  l.set_id(Uuid::Random().Raw());
  l.set_new_parent_id(Root());
  l.set_new_name("x");
  EXPECT_ERRNO(brick_->Link(l), ENOENT);
}

TEST_F(BrickTest, RenameOutOfTheBrickIsImpossible) {
  CreateFile(Root(), "f");
  EXPECT_ERRNO(Rename(Root(), "f", Root(), "../../f"), EINVAL);
  EXPECT_ERRNO(Rename(Root(), "f", Root(), "/tmp/f"), EINVAL);
  EXPECT_ERRNO(Rename(Root(), "f", Uuid::Random().Raw(), "f"), ENOENT);
  EXPECT_TRUE(fs::exists(path_ + "/f"));
}

// ---- Deep trees: more levels than the kernel follows symlinks.

TEST_F(BrickTest, DirectoriesDeeperThanSymlinkLimitStillOpenById) {
  std::string parent = Root();
  std::vector<std::string> ids;
  for (int i = 0; i < 60; ++i) {
    parent = Mkdir(parent, "l" + std::to_string(i));
    ASSERT_EQ(parent.size(), 16u) << "level " << i;
    ids.push_back(parent);
  }
  std::string f = CreateFile(parent, "deep.txt");
  ASSERT_TRUE(Write(f, 0, "bottom").ok());
  EXPECT_EQ(Names(ids.back()), std::vector<std::string>{"deep.txt"});
  EXPECT_TRUE(Lookup(ids[45], "l46").ok());
}

// ---- Versions and the dirty index.

TEST_F(BrickTest, MarkedMutationsBumpVersionsAndEnterDirtyIndex) {
  ASSERT_TRUE(brick_->HasDirty().ok());
  EXPECT_FALSE(*brick_->HasDirty());  // a fresh brick: nothing to heal
  auto made = MakeEntry(Root(), "f", 'f', 0644, "", /*dirty=*/true);
  ASSERT_TRUE(made.ok());
  EXPECT_TRUE(*brick_->HasDirty());
  std::string f = made->id();
  auto w = Write(f, 0, "v1", /*dirty=*/true);
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(w->attr().version().data(), 1u);
  w = Write(f, 0, "v2", true);
  EXPECT_EQ(w->attr().version().data(), 2u);
  // An unmarked write leaves versions alone.
  w = Write(f, 0, "v3", false);
  EXPECT_EQ(w->attr().version().data(), 2u);
  EXPECT_EQ(GetAttr(Root())->version().entry(), 1u);

  pb::ListDirtyRequest ld;
  auto dirty = brick_->ListDirty(ld);
  ASSERT_TRUE(dirty.ok());
  std::set<std::string> ids;
  for (const auto& e : dirty->entries()) ids.insert(e.id());
  EXPECT_TRUE(ids.count(f));
  EXPECT_TRUE(ids.count(Root()));
  // Marks are links to one base file: no inode of their own.
  struct stat base, mark;
  ASSERT_EQ(::stat((path_ + "/.cairn/mark.0").c_str(), &base), 0);
  ASSERT_EQ(::stat((path_ + "/.cairn/dirty/" + Uuid::FromBytes(f)->ToHex()).c_str(), &mark), 0);
  EXPECT_EQ(base.st_ino, mark.st_ino);

  // Clearing with a stale version keeps the mark; with the current one, clears it.
  pb::ClearDirtyRequest cd;
  auto* e = cd.add_entries();
  e->set_id(f);
  e->mutable_version()->set_data(1);
  EXPECT_EQ(brick_->ClearDirty(cd)->cleared(), 0u);
  *e->mutable_version() = GetAttr(f)->version();
  EXPECT_EQ(brick_->ClearDirty(cd)->cleared(), 1u);
  dirty = brick_->ListDirty(ld);
  for (const auto& d : dirty->entries()) EXPECT_NE(d.id(), f);
  EXPECT_TRUE(*brick_->HasDirty());  // the root's mark is still there
  *e = pb::DirtyEntry();
  e->set_id(Root());
  *e->mutable_version() = GetAttr(Root())->version();
  EXPECT_EQ(brick_->ClearDirty(cd)->cleared(), 1u);
  EXPECT_FALSE(*brick_->HasDirty());
  // Found clean, then marked again: seen at once (the clean answer is
  // remembered only until the next mark).
  EXPECT_FALSE(*brick_->HasDirty());
  ASSERT_TRUE(Write(f, 0, "v4", /*dirty=*/true).ok());
  EXPECT_TRUE(*brick_->HasDirty());
  EXPECT_TRUE(*brick_->HasDirty());
}

TEST_F(BrickTest, EntryOpsReportTheParentVersionForClearDirty) {
  std::string d = Mkdir(Root(), "d");
  auto made = MakeEntry(d, "f", 'f', 0644, "", /*dirty=*/true);
  ASSERT_TRUE(made.ok());
  EXPECT_EQ(made->parent_version().entry(), 1u);
  made = MakeEntry(d, "g", 'f', 0644, "", /*dirty=*/true);
  ASSERT_TRUE(made.ok());
  EXPECT_EQ(made->parent_version().entry(), 2u);
  // The reported version clears the parent's mark.
  pb::ClearDirtyRequest cd;
  auto* e = cd.add_entries();
  e->set_id(d);
  *e->mutable_version() = made->parent_version();
  EXPECT_EQ(brick_->ClearDirty(cd)->cleared(), 1u);

  pb::UnlinkRequest u;
  u.set_parent_id(d);
  u.set_name("g");
  u.mutable_txn()->set_mark_dirty(true);
  auto un = brick_->Unlink(u);
  ASSERT_TRUE(un.ok());
  EXPECT_EQ(un->parent_version().entry(), 3u);

  pb::RenameRequest r;
  r.set_old_parent_id(d);
  r.set_old_name("f");
  r.set_new_parent_id(Root());
  r.set_new_name("f2");
  r.mutable_txn()->set_mark_dirty(true);
  auto rn = brick_->Rename(r);
  ASSERT_TRUE(rn.ok());
  EXPECT_EQ(rn->old_parent_version().entry(), 4u);
  EXPECT_EQ(rn->new_parent_version().entry(), GetAttr(Root())->version().entry());
}

TEST_F(BrickTest, CreateSetsClientXattrsBeforeTheNameAppears) {
  pb::CreateRequest r;
  r.set_parent_id(Root());
  r.set_name("dir");
  r.set_new_id(Uuid::Random().Raw());
  r.set_mode(0755);
  auto* x = r.add_xattrs();
  x->set_name("trusted.cairn.layout");
  x->set_value("v1 layout");
  auto made = brick_->Mkdir(r);
  ASSERT_TRUE(made.ok()) << made.status().ToString();
  pb::GetXattrRequest g;
  g.set_id(made->id());
  g.set_name("trusted.cairn.layout");
  EXPECT_EQ(brick_->GetXattr(g)->value(), "v1 layout");
  // Listings show the client-owned names (self-heal copies them), never the
  // brick's own id and versions.
  pb::ListXattrRequest l;
  l.set_id(made->id());
  auto listed = brick_->ListXattr(l);
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(std::vector<std::string>(listed->names().begin(), listed->names().end()),
            std::vector<std::string>{"trusted.cairn.layout"});
  // A pointer file carries its target; the brick's own names stay reserved.
  r.set_name("ptr");
  r.set_new_id(Uuid::Random().Raw());
  r.set_mode(0);
  x->set_name("trusted.cairn.linkto");
  x->set_value("1");
  ASSERT_TRUE(brick_->Mknod(r).ok());
  r.set_name("bad");
  r.set_new_id(Uuid::Random().Raw());
  x->set_name("trusted.cairn.ver");
  EXPECT_ERRNO(brick_->Create(r), EPERM);
  EXPECT_FALSE(fs::exists(path_ + "/bad"));
  x->set_name("user.ok");
  x->set_value(std::string(5000, 'v'));
  EXPECT_ERRNO(brick_->Create(r), E2BIG);
  // Clients may update the layout later (expansion).
  pb::SetXattrRequest s;
  s.set_id(made->id());
  s.set_name("trusted.cairn.layout");
  s.set_value("v2 layout");
  EXPECT_TRUE(brick_->SetXattr(s).ok());
  EXPECT_EQ(brick_->GetXattr(g)->value(), "v2 layout");
}

TEST_F(BrickTest, ListDirtyPagesInIdOrder) {
  for (int i = 0; i < 30; ++i)
    ASSERT_TRUE(MakeEntry(Root(), "f" + std::to_string(i), 'f', 0644, "", true).ok());
  pb::ListDirtyRequest ld;
  ld.set_max_entries(7);
  std::vector<std::string> all;
  for (;;) {
    auto r = brick_->ListDirty(ld);
    ASSERT_TRUE(r.ok());
    for (const auto& e : r->entries()) all.push_back(Uuid::FromBytes(e.id())->ToHex());
    if (r->eof()) break;
    ld.set_after(all.back());
  }
  EXPECT_EQ(all.size(), 31u);  // 30 files + the root directory
  EXPECT_TRUE(std::is_sorted(all.begin(), all.end()));
}

// ---- Self-heal support: Checksum, Locate, SetVersion, conditional mutations.

std::string Sha16(const std::string& data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), out, &len, EVP_sha256(), nullptr);
  return std::string(reinterpret_cast<const char*>(out), 16);
}

TEST_F(BrickTest, ChecksumDigestsBlocksReadingHolesAsZeros) {
  std::string f = CreateFile(Root(), "f");
  const std::string a(4096, 'a'), c(4096, 'c');
  ASSERT_TRUE(Write(f, 0, a).ok());
  ASSERT_TRUE(Write(f, 2 * 4096, c + "tail").ok());  // block 1 is a hole, block 3 is short
  pb::ChecksumRequest q;
  q.set_id(f);
  q.set_offset(0);
  q.set_length(1 << 20);  // clipped at the end of the file
  q.set_block_size(4096);
  auto r = brick_->Checksum(q);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->size(), 3 * 4096u + 4);
  ASSERT_EQ(r->digests_size(), 4);
  EXPECT_EQ(r->digests(0), Sha16(a));
  EXPECT_EQ(r->digests(1), Sha16(std::string(4096, '\0')));
  EXPECT_EQ(r->digests(2), Sha16(c));
  EXPECT_EQ(r->digests(3), Sha16("tail"));
  // A written zero block and a hole look the same.
  std::string g = CreateFile(Root(), "g");
  ASSERT_TRUE(Write(g, 4096, std::string(4096, '\0')).ok());
  q.set_id(g);
  r = brick_->Checksum(q);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->digests_size(), 2);
  EXPECT_EQ(r->digests(0), r->digests(1));
  // Past the end: no digests, the size still reported.
  q.set_id(f);
  q.set_offset(1 << 20);
  r = brick_->Checksum(q);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->digests_size(), 0);
  EXPECT_EQ(r->size(), 3 * 4096u + 4);
  // A marked write moves the version the reply carries.
  ASSERT_TRUE(Write(f, 0, "x", /*dirty=*/true).ok());
  EXPECT_EQ(brick_->Checksum(q)->version().data(), 1u);
}

TEST_F(BrickTest, ChecksumUsesTheAlgorithmAskedForAndSaysWhichOne) {
  std::string f = CreateFile(Root(), "f");
  const std::string a(4096, 'a');
  ASSERT_TRUE(Write(f, 0, a + "tail").ok());
  pb::ChecksumRequest q;
  q.set_id(f);
  q.set_length(1 << 20);
  q.set_block_size(4096);
  // Absent: SHA-256, as before the field existed.
  auto r = brick_->Checksum(q);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->algorithm(), pb::DIGEST_SHA256_128);
  EXPECT_EQ(r->digests(0), Sha16(a));
  q.set_algorithm(pb::DIGEST_XXH3_128);
  r = brick_->Checksum(q);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->algorithm(), pb::DIGEST_XXH3_128);
  ASSERT_EQ(r->digests_size(), 2);
  EXPECT_EQ(r->digests(0), BlockDigest(DigestAlgorithm::kXxh3_128, a.data(), a.size()));
  EXPECT_EQ(r->digests(1), BlockDigest(DigestAlgorithm::kXxh3_128, "tail", 4));
  EXPECT_NE(r->digests(0), Sha16(a));
  // A hole reads as zeros under either algorithm.
  pb::TruncateRequest t;
  t.set_id(f);
  t.set_size(3 * 4096);
  ASSERT_TRUE(brick_->Truncate(t).ok());
  r = brick_->Checksum(q);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->digests_size(), 3);
  EXPECT_EQ(r->digests(2), ZeroBlockDigest(DigestAlgorithm::kXxh3_128, 4096));
  // An algorithm this brick does not know: refused, naming it.
  q.set_algorithm(static_cast<pb::DigestAlgorithm>(7));
  r = brick_->Checksum(q);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().posix_errno(), EINVAL);
  EXPECT_NE(r.status().message().find("algorithm 7"), std::string::npos) << r.status().message();
}

TEST_F(BrickTest, ChecksumOfALargeSparseFileReadsOnlyItsData) {
  std::string f = CreateFile(Root(), "sparse");
  pb::TruncateRequest t;
  t.set_id(f);
  t.set_size(8ull << 30);
  ASSERT_TRUE(brick_->Truncate(t).ok());
  ASSERT_TRUE(Write(f, 5ull << 30, "data").ok());
  pb::ChecksumRequest q;
  q.set_id(f);
  q.set_block_size(4u << 20);
  q.set_length(8ull << 30);  // 2048 blocks of 4 MiB
  auto start = std::chrono::steady_clock::now();
  auto r = brick_->Checksum(q);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  ASSERT_EQ(r->digests_size(), 2048);
  const std::string zero = Sha16(std::string(4u << 20, '\0'));
  int data_blocks = 0;
  for (int i = 0; i < r->digests_size(); ++i) data_blocks += r->digests(i) != zero ? 1 : 0;
  EXPECT_EQ(data_blocks, 1);
  EXPECT_NE(r->digests(1280), zero);
}

TEST_F(BrickTest, ChecksumRefusesBadArguments) {
  std::string f = CreateFile(Root(), "f");
  ASSERT_TRUE(Write(f, 0, "abc").ok());
  pb::ChecksumRequest q;
  q.set_id(f);
  q.set_length(4096);
  for (uint32_t bs : {0u, 1000u, 2048u, 12288u, 8u << 20}) {
    q.set_block_size(bs);
    auto r = brick_->Checksum(q);
    EXPECT_TRUE(r.status().IsInvalidArgument()) << bs << ": " << r.status().ToString();
  }
  q.set_block_size(4096);
  q.set_offset(100);  // not a multiple of the block size
  EXPECT_TRUE(brick_->Checksum(q).status().IsInvalidArgument());
  q.set_offset(0);
  q.set_length(65537ull * 4096);  // over 65536 blocks
  EXPECT_TRUE(brick_->Checksum(q).status().IsInvalidArgument());
  q.set_length(65536ull * 4096);
  EXPECT_TRUE(brick_->Checksum(q).ok());
  q.set_offset(UINT64_MAX - 4095);
  EXPECT_TRUE(brick_->Checksum(q).status().IsInvalidArgument());
  q.set_offset(0);
  q.set_length(4096);
  q.set_id("short");
  EXPECT_TRUE(brick_->Checksum(q).status().IsInvalidArgument());
  q.set_id(Uuid::Random().Raw());
  EXPECT_ERRNO(brick_->Checksum(q), ENOENT);
  q.set_id(Mkdir(Root(), "d"));
  EXPECT_ERRNO(brick_->Checksum(q), EISDIR);
  auto l = MakeEntry(Root(), "l", 'l', 0777, "/etc/passwd");
  ASSERT_TRUE(l.ok());
  q.set_id(l->id());
  EXPECT_ERRNO(brick_->Checksum(q), EINVAL);  // never follows a symlink (confinement)
}

TEST_F(BrickTest, LocateGivesADirectorysParentAndName) {
  std::string a = Mkdir(Root(), "a");
  std::string b = Mkdir(a, "b");
  pb::LocateRequest q;
  q.set_id(b);
  auto r = brick_->Locate(q);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->parent_id(), a);
  EXPECT_EQ(r->name(), "b");
  ASSERT_TRUE(Rename(a, "b", Root(), "c").ok());
  r = brick_->Locate(q);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->parent_id(), Root());
  EXPECT_EQ(r->name(), "c");
  // The root has no parent.
  q.set_id(Root());
  r = brick_->Locate(q);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->parent_id().empty());
  EXPECT_TRUE(r->name().empty());
  // Files and unknown ids.
  q.set_id(CreateFile(a, "f"));
  EXPECT_ERRNO(brick_->Locate(q), ENOTDIR);
  q.set_id(Uuid::Random().Raw());
  EXPECT_ERRNO(brick_->Locate(q), ENOENT);
  q.set_id("bad");
  EXPECT_TRUE(brick_->Locate(q).status().IsInvalidArgument());
}

TEST_F(BrickTest, ConfinementLocateOfATamperedHandleRevealsNothing) {
  std::string a = Mkdir(Root(), "a");
  const std::string handle = path_ + "/.cairn/d/" + Uuid::FromBytes(a)->ToHex().substr(0, 2) + "/" +
                             Uuid::FromBytes(a)->ToHex();
  ASSERT_EQ(::unlink(handle.c_str()), 0);
  ASSERT_EQ(::symlink("../../../../../../etc", handle.c_str()), 0);
  pb::LocateRequest q;
  q.set_id(a);
  auto r = brick_->Locate(q);
  EXPECT_FALSE(r.ok());
  // Pointing at another directory of the brick fails the id check.
  std::string b = Mkdir(Root(), "b");
  ASSERT_EQ(::unlink(handle.c_str()), 0);
  ASSERT_EQ(::symlink(("../00/" + Uuid::Root().ToHex() + "/b").c_str(), handle.c_str()), 0);
  r = brick_->Locate(q);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.status().posix_errno(), ESTALE) << r.status().ToString();
  (void)b;
}

// Version.tag: equal for replicas that applied the same set of mutations in
// any order, different when one applied a mutation the other did not (even
// at equal counters); SetVersion sets it; old 24-byte version xattrs read
// as tag 0.
TEST_F(BrickTest, VersionTagsIdentifyTheSetOfMutationsApplied) {
  auto write = [&](const std::string& id, const std::string& client, uint64_t seq) {
    pb::WriteRequest w;
    w.set_id(id);
    w.set_data("x");
    w.mutable_txn()->set_mark_dirty(true);
    w.mutable_txn()->set_client_id(client);
    w.mutable_txn()->set_seq(seq);
    auto r = brick_->Write(w);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? r->attr().version() : pb::Version();
  };
  const std::string a(16, 'a'), b(16, 'b');
  std::string f1 = CreateFile(Root(), "f1"), f2 = CreateFile(Root(), "f2");
  std::string f3 = CreateFile(Root(), "f3");
  write(f1, a, 1);
  const pb::Version v1 = write(f1, b, 7);
  write(f2, b, 7);
  const pb::Version v2 = write(f2, a, 1);  // the same two, the other order
  write(f3, a, 1);
  const pb::Version v3 = write(f3, a, 2);  // one of them replaced by another
  EXPECT_EQ(v1.data(), 2u);
  EXPECT_EQ(v2.data(), 2u);
  EXPECT_EQ(v3.data(), 2u);
  EXPECT_NE(v1.tag(), 0u);
  EXPECT_EQ(v1.tag(), v2.tag());
  EXPECT_NE(v1.tag(), v3.tag());
  // ClearDirty needs the tag too.
  pb::ClearDirtyRequest cd;
  auto* e = cd.add_entries();
  e->set_id(f3);
  *e->mutable_version() = v1;  // right counters, wrong tag
  EXPECT_EQ(brick_->ClearDirty(cd)->cleared(), 0u);
  *e->mutable_version() = v3;
  EXPECT_EQ(brick_->ClearDirty(cd)->cleared(), 1u);
  // SetVersion (heal's commit) takes the source's tag.
  pb::SetVersionRequest q;
  q.set_id(f3);
  *q.mutable_expected() = v3;
  *q.mutable_version() = v1;
  ASSERT_TRUE(brick_->SetVersion(q).ok());
  EXPECT_EQ(GetAttr(f3)->version().tag(), v1.tag());
  // A version recorded before tags existed (24 bytes) reads as tag 0.
  const std::string old(24, '\0');
  ASSERT_EQ(::setxattr((path_ + "/f2").c_str(), "trusted.cairn.ver", old.data(), old.size(), 0), 0);
  EXPECT_EQ(GetAttr(f2)->version().tag(), 0u);
  EXPECT_EQ(GetAttr(f2)->version().data(), 0u);
}

// Create, Mkdir, Link, Unlink and Rmdir replies carry the parent directory's
// attributes after the op, the same GetAttr answers.
TEST_F(BrickTest, EntryRepliesCarryTheParentsAttributes) {
  std::string d = Mkdir(Root(), "d");
  auto same = [&](const pb::Attr& parent, const char* op) {
    auto now = GetAttr(d);
    ASSERT_TRUE(now.ok());
    EXPECT_EQ(parent.id(), d) << op;
    EXPECT_EQ(parent.mode(), now->mode()) << op;
    EXPECT_EQ(parent.nlink(), now->nlink()) << op;
    EXPECT_EQ(parent.mtime_ns(), now->mtime_ns()) << op;
    EXPECT_EQ(parent.ctime_ns(), now->ctime_ns()) << op;
    EXPECT_EQ(parent.version().entry(), now->version().entry()) << op;
  };
  auto f = MakeEntry(d, "f", 'f', 0644, "", /*dirty=*/true);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  same(f->parent(), "create");
  EXPECT_EQ(f->parent().version().entry(), f->parent_version().entry());
  auto sub = MakeEntry(d, "sub", 'd', 0755, "", /*dirty=*/true);
  ASSERT_TRUE(sub.ok());
  same(sub->parent(), "mkdir");
  EXPECT_EQ(sub->parent().nlink(), 3u);
  pb::LinkRequest l;
  l.set_id(f->id());
  l.set_new_parent_id(d);
  l.set_new_name("g");
  auto linked = brick_->Link(l);
  ASSERT_TRUE(linked.ok()) << linked.status().ToString();
  same(linked->parent(), "link");
  pb::UnlinkRequest u;
  u.set_parent_id(d);
  u.set_name("g");
  auto un = brick_->Unlink(u);
  ASSERT_TRUE(un.ok()) << un.status().ToString();
  same(un->parent(), "unlink");
  u.set_name("sub");
  auto rm = brick_->Rmdir(u);
  ASSERT_TRUE(rm.ok()) << rm.status().ToString();
  same(rm->parent(), "rmdir");
  EXPECT_EQ(rm->parent().nlink(), 2u);
}

// Versions are stored compact so that id and versions fit in the inode's own
// xattr space; large counters and the fixed 32-byte form of older bricks
// read back exactly.
TEST_F(BrickTest, VersionsAreStoredCompactAndOldFormsStillRead) {
  std::string f = CreateFile(Root(), "f");
  pb::SetVersionRequest q;
  q.set_id(f);
  q.mutable_version()->set_data(1);
  q.mutable_version()->set_tag(0x0123456789abcdefull);
  ASSERT_TRUE(brick_->SetVersion(q).ok());
  char raw[64];
  ssize_t n = ::getxattr((path_ + "/f").c_str(), "trusted.cairn.ver", raw, sizeof(raw));
  EXPECT_EQ(n, 12) << "marker, three one-byte counters and the tag";
  EXPECT_EQ(GetAttr(f)->version().data(), 1u);
  EXPECT_EQ(GetAttr(f)->version().tag(), 0x0123456789abcdefull);
  // Counters of every size round-trip, including the encodings that would be
  // 24 or 32 bytes long (written in the fixed form instead).
  const uint64_t values[] = {0,          127,
                             128,        300,
                             1ull << 35, 1ull << 56,
                             ~0ull,      (1ull << 63) + 5,
                             1ull << 49, (1ull << 49) - 1};
  for (uint64_t d : values) {
    for (uint64_t m : values) {
      pb::Version want;
      want.set_data(d);
      want.set_meta(m);
      want.set_entry(d ^ m);
      want.set_tag(d * 31 + m);
      *q.mutable_expected() = GetAttr(f)->version();
      *q.mutable_version() = want;
      auto r = brick_->SetVersion(q);
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      auto got = GetAttr(f)->version();
      ASSERT_EQ(got.data(), d);
      ASSERT_EQ(got.meta(), m);
      ASSERT_EQ(got.entry(), d ^ m);
      ASSERT_EQ(got.tag(), d * 31 + m);
      n = ::getxattr((path_ + "/f").c_str(), "trusted.cairn.ver", raw, sizeof(raw));
      ASSERT_GE(n, 12);
      ASSERT_NE(n, 24);
    }
  }
  // The fixed 32-byte form written by older bricks.
  uint64_t fixed[4] = {7, 8, 9, 10};
  ASSERT_EQ(::setxattr((path_ + "/f").c_str(), "trusted.cairn.ver", fixed, sizeof(fixed), 0), 0);
  auto v = GetAttr(f)->version();
  EXPECT_EQ(v.data(), 7u);
  EXPECT_EQ(v.meta(), 8u);
  EXPECT_EQ(v.entry(), 9u);
  EXPECT_EQ(v.tag(), 10u);
}

TEST_F(BrickTest, SetVersionIsACompareAndSet) {
  std::string f = CreateFile(Root(), "f");
  pb::SetVersionRequest q;
  q.set_id(f);
  q.mutable_version()->set_data(5);
  q.mutable_version()->set_meta(6);
  q.mutable_version()->set_entry(7);
  auto r = brick_->SetVersion(q);  // expected 0/0/0: never versioned
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->version().data(), 5u);
  EXPECT_EQ(GetAttr(f)->version().meta(), 6u);
  // A stale expectation changes nothing and names the current version.
  q.mutable_version()->set_data(9);
  r = brick_->SetVersion(q);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(r.status().posix_errno(), ESTALE);
  EXPECT_NE(r.status().message().find("5/6/7"), std::string::npos) << r.status().message();
  EXPECT_EQ(GetAttr(f)->version().data(), 5u);
  *q.mutable_expected() = GetAttr(f)->version();
  EXPECT_EQ(brick_->SetVersion(q)->version().data(), 9u);
  // Directories too; nothing enters the dirty index.
  std::string d = Mkdir(Root(), "d");
  q.set_id(d);
  q.clear_expected();
  EXPECT_TRUE(brick_->SetVersion(q).ok());
  EXPECT_EQ(brick_->ListDirty({})->entries_size(), 0);
  q.set_id(Uuid::Random().Raw());
  EXPECT_ERRNO(brick_->SetVersion(q), ENOENT);
  q.set_id("x");
  EXPECT_TRUE(brick_->SetVersion(q).status().IsInvalidArgument());
}

TEST_F(BrickTest, ConditionalMutationsApplyOnlyAtTheExpectedVersion) {
  std::string d = Mkdir(Root(), "d");
  std::string f = CreateFile(d, "f");
  ASSERT_TRUE(Write(f, 0, "old").ok());
  // Give both a version, as a replicated client would.
  pb::SetVersionRequest sv;
  sv.mutable_version()->set_data(3);
  sv.mutable_version()->set_meta(3);
  sv.mutable_version()->set_entry(3);
  sv.set_id(f);
  ASSERT_TRUE(brick_->SetVersion(sv).ok());
  sv.set_id(d);
  ASSERT_TRUE(brick_->SetVersion(sv).ok());
  pb::Txn wrong, right;
  wrong.mutable_expected()->set_data(2);
  *right.mutable_expected() = sv.version();

  pb::WriteRequest w;
  w.set_id(f);
  w.set_data("new");
  *w.mutable_txn() = wrong;
  EXPECT_ERRNO(brick_->Write(w), ESTALE);
  EXPECT_EQ(*Read(f, 0, 10), "old");
  *w.mutable_txn() = right;
  ASSERT_TRUE(brick_->Write(w).ok());
  EXPECT_EQ(*Read(f, 0, 10), "new");

  pb::SetAttrRequest sa;
  sa.set_id(f);
  sa.set_valid(pb::SetAttrRequest::VALID_MODE);
  sa.set_mode(0600);
  *sa.mutable_txn() = wrong;
  EXPECT_ERRNO(brick_->SetAttr(sa), ESTALE);
  EXPECT_EQ(GetAttr(f)->mode() & 07777, 0644u);
  pb::SetXattrRequest sx;
  sx.set_id(f);
  sx.set_name("user.k");
  sx.set_value("v");
  *sx.mutable_txn() = wrong;
  EXPECT_ERRNO(brick_->SetXattr(sx), ESTALE);
  pb::RemoveXattrRequest rx;
  rx.set_id(f);
  rx.set_name("user.k");
  *rx.mutable_txn() = wrong;
  EXPECT_ERRNO(brick_->RemoveXattr(rx), ESTALE);
  pb::FallocateRequest fa;
  fa.set_id(f);
  fa.set_length(4096);
  *fa.mutable_txn() = wrong;
  EXPECT_ERRNO(brick_->Fallocate(fa), ESTALE);
  pb::TruncateRequest tr;
  tr.set_id(f);
  *tr.mutable_txn() = wrong;
  EXPECT_ERRNO(brick_->Truncate(tr), ESTALE);
  EXPECT_EQ(GetAttr(f)->size(), 3u);

  // Entry operations check the directory.
  pb::CreateRequest cr;
  cr.set_parent_id(d);
  cr.set_name("g");
  cr.set_new_id(Uuid::Random().Raw());
  cr.set_mode(0644);
  *cr.mutable_txn() = wrong;
  EXPECT_ERRNO(brick_->Create(cr), ESTALE);
  EXPECT_ERRNO(brick_->Mkdir(cr), ESTALE);
  pb::LinkRequest lk;
  lk.set_id(f);
  lk.set_new_parent_id(d);
  lk.set_new_name("h");
  *lk.mutable_txn() = wrong;
  EXPECT_ERRNO(brick_->Link(lk), ESTALE);
  pb::UnlinkRequest un;
  un.set_parent_id(d);
  un.set_name("f");
  *un.mutable_txn() = wrong;
  EXPECT_ERRNO(brick_->Unlink(un), ESTALE);
  pb::RenameRequest rn;
  ASSERT_FALSE(CreateFile(Root(), "top").empty());
  rn.set_old_parent_id(Root());
  rn.set_old_name("top");
  rn.set_new_parent_id(d);  // checked against the new parent
  rn.set_new_name("x");
  *rn.mutable_txn() = wrong;
  EXPECT_ERRNO(brick_->Rename(rn), ESTALE);
  EXPECT_EQ(Names(d), std::vector<std::string>{"f"});
  // At the expected version they apply, and (unmarked) bump nothing.
  *cr.mutable_txn() = right;
  ASSERT_TRUE(brick_->Create(cr).ok());
  *lk.mutable_txn() = right;
  ASSERT_TRUE(brick_->Link(lk).ok());
  *rn.mutable_txn() = right;
  ASSERT_TRUE(brick_->Rename(rn).ok());
  *un.mutable_txn() = right;
  ASSERT_TRUE(brick_->Unlink(un).ok());
  EXPECT_EQ(Names(d), (std::vector<std::string>{"g", "h", "x"}));
  EXPECT_TRUE(VersionIs(GetAttr(d)->version(), 3, 3, 3));
  EXPECT_TRUE(VersionIs(GetAttr(f)->version(), 3, 3, 3));
}

TEST_F(BrickTest, UnmarkedMutationsNeitherBumpVersionsNorMarkDirty) {
  std::string d = Mkdir(Root(), "d");
  std::string f = CreateFile(d, "f");
  pb::SetVersionRequest sv;
  sv.mutable_version()->set_data(1);
  sv.mutable_version()->set_meta(1);
  sv.mutable_version()->set_entry(1);
  for (const std::string& id : {d, f}) {
    sv.set_id(id);
    ASSERT_TRUE(brick_->SetVersion(sv).ok());
  }
  // Every mutation, as self-heal sends them (mark_dirty=false).
  ASSERT_TRUE(Write(f, 0, "data").ok());
  pb::SetAttrRequest sa;
  sa.set_id(f);
  sa.set_valid(pb::SetAttrRequest::VALID_MODE | pb::SetAttrRequest::VALID_SIZE |
               pb::SetAttrRequest::VALID_MTIME);
  sa.set_mode(0600);
  sa.set_size(2);
  ASSERT_TRUE(brick_->SetAttr(sa).ok());
  pb::FallocateRequest fa;
  fa.set_id(f);
  fa.set_length(8192);
  ASSERT_TRUE(brick_->Fallocate(fa).ok());
  pb::SetXattrRequest sx;
  sx.set_id(f);
  sx.set_name("user.k");
  ASSERT_TRUE(brick_->SetXattr(sx).ok());
  pb::RemoveXattrRequest rx;
  rx.set_id(f);
  rx.set_name("user.k");
  ASSERT_TRUE(brick_->RemoveXattr(rx).ok());
  ASSERT_TRUE(MakeEntry(d, "sub", 'd', 0755).ok());
  ASSERT_TRUE(MakeEntry(d, "l", 'l', 0777, "t").ok());
  ASSERT_TRUE(MakeEntry(d, "n", 'n', S_IFIFO | 0644).ok());
  pb::LinkRequest lk;
  lk.set_id(f);
  lk.set_new_parent_id(d);
  lk.set_new_name("f2");
  ASSERT_TRUE(brick_->Link(lk).ok());
  ASSERT_TRUE(Rename(d, "f2", d, "f3").ok());
  ASSERT_TRUE(Unlink(d, "f3").ok());
  ASSERT_TRUE(Rmdir(d, "sub").ok());
  EXPECT_TRUE(VersionIs(GetAttr(d)->version(), 1, 1, 1));
  EXPECT_TRUE(VersionIs(GetAttr(f)->version(), 1, 1, 1));
  EXPECT_EQ(brick_->ListDirty({})->entries_size(), 0);
}

TEST_F(BrickTest, ClearDirtyDropsTheMarkOfAnObjectThatIsGone) {
  auto made = MakeEntry(Root(), "f", 'f', 0644, "", /*dirty=*/true);
  ASSERT_TRUE(made.ok());
  const std::string hex = Uuid::FromBytes(made->id())->ToHex();
  // The object disappears behind the index's back (a crash between steps).
  ASSERT_EQ(::unlink((path_ + "/f").c_str()), 0);
  ASSERT_EQ(::unlink((path_ + "/.cairn/h/" + hex.substr(0, 2) + "/" + hex).c_str()), 0);
  ASSERT_TRUE(fs::exists(path_ + "/.cairn/dirty/" + hex));
  pb::ClearDirtyRequest cd;
  auto* e = cd.add_entries();
  e->set_id(made->id());
  e->mutable_version()->set_data(42);  // whatever version: nothing to compare with
  EXPECT_EQ(brick_->ClearDirty(cd)->cleared(), 1u);
  EXPECT_FALSE(fs::exists(path_ + "/.cairn/dirty/" + hex));
  // An id never seen is not an error either.
  e->set_id(Uuid::Random().Raw());
  EXPECT_EQ(brick_->ClearDirty(cd)->cleared(), 0u);
}

// ---- Concurrency inside one brick.

TEST_F(BrickTest, ConcurrentCreatesAndWritesInOneDirectory) {
  std::string d = Mkdir(Root(), "d");
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 100; ++i) {
        std::string name = "t" + std::to_string(t) + "-" + std::to_string(i);
        auto a = MakeEntry(d, name, 'f');
        if (!a.ok()) {
          ++failures;
          continue;
        }
        std::string data = name + std::string(1000, 'x');
        if (!Write(a->id(), 0, data, true).ok()) ++failures;
        auto back = Read(a->id(), 0, 2000);
        if (!back.ok() || *back != data) ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(Names(d).size(), 800u);
}

}  // namespace
}  // namespace cairn::brickd
