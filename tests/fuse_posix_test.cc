// POSIX behaviour of a real FUSE mount (cairn-mount over three brickd
// processes), on each standard layout: replica 3, 2 x 3 distribute-replicate,
// replica 3 arbiter 1. Every test gets a fresh volume and mount.
#include <dirent.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/file_util.h"
#include "common/status_errno.h"
#include "tests/cluster_util.h"
#include "tests/mount_util.h"
#include "tests/test_util.h"

namespace cairn::test {
namespace {

// ---------------------------------------------------------------------------
// Helpers.

// Asserts that a system call did not return -1, naming errno otherwise.
#define ASSERT_SYS(expr)                                              \
  do {                                                                \
    errno = 0;                                                        \
    if ((expr) == -1) {                                               \
      const int assert_sys_errno_ = errno;                            \
      FAIL() << #expr << ": " << ErrnoName(assert_sys_errno_) << " (" \
             << std::strerror(assert_sys_errno_) << ")";              \
    }                                                                 \
  } while (0)

#define EXPECT_SYS(expr)                                                     \
  do {                                                                       \
    errno = 0;                                                               \
    if ((expr) == -1) {                                                      \
      const int expect_sys_errno_ = errno;                                   \
      ADD_FAILURE() << #expr << ": " << ErrnoName(expect_sys_errno_) << " (" \
                    << std::strerror(expect_sys_errno_) << ")";              \
    }                                                                        \
  } while (0)

// Expects a system call to fail with exactly errno `err`.
#define EXPECT_ERRNO(err, expr)                                           \
  do {                                                                    \
    errno = 0;                                                            \
    const auto expect_errno_result_ = (expr);                             \
    const int expect_errno_errno_ = errno;                                \
    EXPECT_EQ(expect_errno_result_, -1) << #expr << " succeeded";         \
    if (expect_errno_result_ == -1) {                                     \
      EXPECT_EQ(ErrnoName(expect_errno_errno_), ErrnoName(err)) << #expr; \
    }                                                                     \
  } while (0)

// A file descriptor closed when it goes.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() { Reset(); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  bool ok() const { return fd_ >= 0; }
  void Reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  // Closes now and returns close()'s result.
  int Close() {
    const int r = ::close(fd_);
    fd_ = -1;
    return r;
  }

 private:
  int fd_;
};

// A mapping unmapped when it goes.
class Mapping {
 public:
  Mapping(void* addr, size_t size) : addr_(addr), size_(size) {}
  ~Mapping() {
    if (addr_ != MAP_FAILED) ::munmap(addr_, size_);
  }
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  char* data() const { return static_cast<char*>(addr_); }
  bool ok() const { return addr_ != MAP_FAILED; }

 private:
  void* addr_;
  size_t size_;
};

// Deterministic bytes that differ with `seed` and position.
std::string Pattern(size_t size, uint64_t seed) {
  std::string out(size, '\0');
  uint64_t x = seed * 0x9E3779B97F4A7C15ULL + 1;
  for (size_t i = 0; i < size; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    out[i] = static_cast<char>(x);
  }
  return out;
}

Status WriteAll(int fd, std::string_view data, off_t offset = -1) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = offset < 0 ? ::write(fd, data.data() + done, data.size() - done)
                           : ::pwrite(fd, data.data() + done, data.size() - done,
                                      offset + static_cast<off_t>(done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return StatusFromErrno(errno, "write");
    }
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

Status WriteFile(const std::string& path, std::string_view data, mode_t mode = 0644) {
  Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, mode));
  if (!fd.ok()) return StatusFromErrno(errno, "open " + path);
  CAIRN_RETURN_IF_ERROR(WriteAll(fd.get(), data));
  if (fd.Close() != 0) return StatusFromErrno(errno, "close " + path);
  return Status::Ok();
}

// Reads `size` bytes at `offset` (fewer at end of file).
StatusOr<std::string> PreadAll(int fd, size_t size, off_t offset) {
  std::string out(size, '\0');
  size_t done = 0;
  while (done < size) {
    ssize_t n = ::pread(fd, out.data() + done, size - done, offset + static_cast<off_t>(done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return StatusFromErrno(errno, "pread");
    }
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  out.resize(done);
  return out;
}

StatusOr<struct stat> Stat(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return StatusFromErrno(errno, "stat " + path);
  return st;
}

StatusOr<struct stat> Lstat(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) return StatusFromErrno(errno, "lstat " + path);
  return st;
}

// Names in a directory, without "." and "..", in readdir order.
StatusOr<std::vector<std::string>> ListDir(const std::string& path) {
  DIR* d = ::opendir(path.c_str());
  if (d == nullptr) return StatusFromErrno(errno, "opendir " + path);
  std::vector<std::string> names;
  errno = 0;
  while (struct dirent* e = ::readdir(d)) {
    std::string_view n(e->d_name);
    if (n != "." && n != "..") names.emplace_back(n);
    errno = 0;
  }
  const int e = errno;
  ::closedir(d);
  if (e != 0) return StatusFromErrno(e, "readdir " + path);
  return names;
}

std::set<std::string> Sorted(const std::vector<std::string>& v) { return {v.begin(), v.end()}; }

int64_t Nanos(const struct timespec& ts) {
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

// Retries `pred` until it holds or `timeout` passes.
template <class Pred>
bool Eventually(Pred pred, std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (pred()) return true;
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

// ---------------------------------------------------------------------------
// Fixture: a fresh cluster and mount per test.

class FusePosixTest : public ::testing::TestWithParam<VolumeLayout> {
 protected:
  void SetUp() override {
    if (::access("/dev/fuse", R_OK | W_OK) != 0) GTEST_SKIP() << "no /dev/fuse";
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (brickd xattrs, allow_other)";
    // Other users must reach the mount point (permission tests).
    ASSERT_EQ(::chmod(mnt_dir_.path().c_str(), 0755), 0);
    StartVolume(GetParam().options);
  }

  void TearDown() override {
    if (mount_ != nullptr) {
      if (HasFailure()) {
        // The mount's warnings (EIO, EROFS, ... with the libcairn message) explain most failures.
        const std::string log = mount_->Log();
        std::cerr << "tail of the cairn-mount log:\n"
                  << (log.size() > 6000 ? "..." + log.substr(log.size() - 6000) : log) << "\n";
      }
      Status s = mount_->Unmount();
      EXPECT_TRUE(IsOk(s)) << "log of cairn-mount:\n" << mount_->Log();
    }
    mount_.reset();
    cluster_.reset();
  }

  // (Re)starts the cluster and the mount with `options`.
  void StartVolume(ClusterOptions options) {
    mount_.reset();
    cluster_.reset();
    auto cluster = TestCluster::Start(options);
    ASSERT_TRUE(cluster.ok()) << cluster.status().ToString();
    cluster_ = std::move(*cluster);
    Mount();
  }

  void Mount(MountOptions options = {}) {
    options.mountpoint = mnt_dir_.MakeSubdir("m");
    auto mount = FuseMount::Start(*cluster_, options);
    ASSERT_TRUE(mount.ok()) << mount.status().ToString();
    mount_ = std::move(*mount);
  }

  std::string P(std::string_view rel) const { return mount_->Path(rel); }
  bool Distributed() const { return GetParam().options.subvolumes > 1; }
  bool HasArbiter() const { return GetParam().options.arbiter > 0; }

  TempDir mnt_dir_{"cairn-mnt"};
  std::unique_ptr<TestCluster> cluster_;
  std::unique_ptr<FuseMount> mount_;
};

// ---------------------------------------------------------------------------
// Files.

TEST_P(FusePosixTest, CreateWriteReadStat) {
  // Bigger than max_write (1 MiB) and not a multiple of a page.
  const std::string data = Pattern(3 * (1 << 20) + 12345, 1);
  ASSERT_TRUE(IsOk(WriteFile(P("f"), data)));
  auto st = Stat(P("f"));
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  EXPECT_TRUE(S_ISREG(st->st_mode));
  EXPECT_EQ(st->st_mode & 07777, 0644u);
  EXPECT_EQ(st->st_size, static_cast<off_t>(data.size()));
  EXPECT_EQ(st->st_nlink, 1u);
  EXPECT_EQ(st->st_uid, 0u);
  EXPECT_NE(st->st_ino, 0u);
  EXPECT_GE(st->st_blocks * 512, static_cast<blkcnt_t>(data.size()) - 4096);
  auto back = ReadFile(P("f"));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_TRUE(*back == data) << "contents differ";

  // Overwrite in the middle, across a 1 MiB boundary; read pieces back.
  Fd fd(::open(P("f").c_str(), O_RDWR));
  ASSERT_TRUE(fd.ok());
  const std::string patch = Pattern(200000, 2);
  ASSERT_TRUE(IsOk(WriteAll(fd.get(), patch, (1 << 20) - 1000)));
  std::string expect = data;
  expect.replace((1 << 20) - 1000, patch.size(), patch);
  auto mid = PreadAll(fd.get(), 300000, (1 << 20) - 50000);
  ASSERT_TRUE(mid.ok());
  EXPECT_TRUE(*mid == expect.substr((1 << 20) - 50000, 300000));
  // A read across end of file is short; at end of file it is empty.
  auto tail = PreadAll(fd.get(), 100, static_cast<off_t>(data.size()) - 10);
  ASSERT_TRUE(tail.ok());
  EXPECT_EQ(*tail, expect.substr(data.size() - 10));
  auto past = PreadAll(fd.get(), 100, static_cast<off_t>(data.size()) + 100);
  ASSERT_TRUE(past.ok());
  EXPECT_EQ(past->size(), 0u);
  fd.Reset();
  EXPECT_TRUE(*ReadFile(P("f")) == expect);

  // An empty file.
  ASSERT_TRUE(IsOk(WriteFile(P("empty"), "")));
  EXPECT_EQ(Stat(P("empty"))->st_size, 0);
  EXPECT_EQ(*ReadFile(P("empty")), "");
  // The names are listed.
  EXPECT_EQ(Sorted(*ListDir(P(""))), (std::set<std::string>{"empty", "f"}));
}

TEST_P(FusePosixTest, AppendFromTwoDescriptors) {
  Fd a(::open(P("log").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644));
  Fd b(::open(P("log").c_str(), O_WRONLY | O_APPEND));
  ASSERT_TRUE(a.ok() && b.ok());
  std::string expect;
  for (int i = 0; i < 100; ++i) {
    const std::string rec =
        (i % 2 == 0 ? "a" : "b") + std::to_string(i) + std::string(37, '.') + "\n";
    ASSERT_TRUE(IsOk(WriteAll((i % 2 == 0 ? a : b).get(), rec)));
    expect += rec;
  }
  EXPECT_EQ(*ReadFile(P("log")), expect);
  // pwrite on an O_APPEND descriptor appends too (Linux).
  ASSERT_TRUE(IsOk(WriteAll(a.get(), "tail\n", 0)));
  expect += "tail\n";
  EXPECT_EQ(*ReadFile(P("log")), expect);

  // O_APPEND switched on and off with fcntl.
  Fd c(::open(P("log").c_str(), O_WRONLY));
  ASSERT_TRUE(c.ok());
  ASSERT_SYS(::fcntl(c.get(), F_SETFL, O_APPEND));
  ASSERT_TRUE(IsOk(WriteAll(c.get(), "fcntl\n")));
  expect += "fcntl\n";
  ASSERT_SYS(::fcntl(c.get(), F_SETFL, 0));
  ASSERT_TRUE(IsOk(WriteAll(c.get(), "X", 0)));
  expect[0] = 'X';
  EXPECT_EQ(*ReadFile(P("log")), expect);
}

TEST_P(FusePosixTest, TruncOnOpenAndExclusiveCreate) {
  ASSERT_TRUE(IsOk(WriteFile(P("f"), "some contents")));
  EXPECT_ERRNO(EEXIST, ::open(P("f").c_str(), O_WRONLY | O_CREAT | O_EXCL, 0644));
  {
    Fd fd(::open(P("f").c_str(), O_WRONLY | O_TRUNC));
    ASSERT_TRUE(fd.ok());
    EXPECT_EQ(Stat(P("f"))->st_size, 0);
  }
  EXPECT_EQ(*ReadFile(P("f")), "");
  // O_CREAT without O_EXCL opens the existing file; with O_TRUNC it empties it.
  ASSERT_TRUE(IsOk(WriteFile(P("f"), "again")));
  {
    Fd fd(::open(P("f").c_str(), O_RDWR | O_CREAT, 0600));
    ASSERT_TRUE(fd.ok());
    EXPECT_EQ(*PreadAll(fd.get(), 10, 0), "again");
  }
  EXPECT_EQ(Stat(P("f"))->st_mode & 07777, 0644u);  // mode of the existing file kept
  {
    Fd fd(::open(P("f").c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600));
    ASSERT_TRUE(fd.ok());
  }
  EXPECT_EQ(Stat(P("f"))->st_size, 0);
  Fd fresh(::open(P("new").c_str(), O_WRONLY | O_CREAT | O_EXCL, 0640));
  ASSERT_TRUE(fresh.ok()) << std::strerror(errno);
  EXPECT_EQ(Stat(P("new"))->st_mode & 07777, 0640u);
  // Directories are not opened for writing.
  ASSERT_SYS(::mkdir(P("d").c_str(), 0755));
  EXPECT_ERRNO(EISDIR, ::open(P("d").c_str(), O_WRONLY));
  EXPECT_ERRNO(ENOENT, ::open(P("missing").c_str(), O_RDONLY));
  EXPECT_ERRNO(ENOENT, ::open(P("missing/x").c_str(), O_RDONLY | O_CREAT, 0644));
  EXPECT_ERRNO(ENOTDIR, ::open(P("f/x").c_str(), O_RDONLY | O_CREAT, 0644));
}

TEST_P(FusePosixTest, UnlinkedOpenFileStaysUsable) {
  const std::string data = Pattern(100000, 3);
  ASSERT_TRUE(IsOk(WriteFile(P("f"), data)));
  Fd fd(::open(P("f").c_str(), O_RDWR));
  ASSERT_TRUE(fd.ok());
  ASSERT_SYS(::unlink(P("f").c_str()));
  struct stat st;
  EXPECT_ERRNO(ENOENT, ::stat(P("f").c_str(), &st));
  EXPECT_TRUE(ListDir(P(""))->empty());
  ASSERT_SYS(::fstat(fd.get(), &st));
  EXPECT_EQ(st.st_nlink, 0u);
  EXPECT_EQ(st.st_size, static_cast<off_t>(data.size()));
  EXPECT_TRUE(*PreadAll(fd.get(), data.size(), 0) == data);
  // Still writable, and what is written reads back.
  ASSERT_TRUE(IsOk(WriteAll(fd.get(), "appended", static_cast<off_t>(data.size()))));
  EXPECT_EQ(*PreadAll(fd.get(), 100, static_cast<off_t>(data.size())), "appended");
  ASSERT_SYS(::fstat(fd.get(), &st));
  EXPECT_EQ(st.st_size, static_cast<off_t>(data.size() + 8));
  // A new file may take the name meanwhile.
  ASSERT_TRUE(IsOk(WriteFile(P("f"), "new")));
  EXPECT_EQ(*ReadFile(P("f")), "new");
  EXPECT_TRUE(*PreadAll(fd.get(), data.size(), 0) == data);
  fd.Reset();
  EXPECT_EQ(*ReadFile(P("f")), "new");
}

TEST_P(FusePosixTest, UnlinkedOpenFileFreesSpaceOnClose) {
  ClusterOptions options = GetParam().options;
  options.brick_capacity = 256ull << 20;
  StartVolume(options);
  if (HasFatalFailure()) return;
  auto used = [&]() -> int64_t {
    struct statvfs sv;
    if (::statvfs(P("").c_str(), &sv) != 0) return -1;
    return static_cast<int64_t>((sv.f_blocks - sv.f_bfree) * sv.f_frsize);
  };
  const int64_t before = used();
  ASSERT_GE(before, 0);
  ASSERT_TRUE(IsOk(WriteFile(P("big"), Pattern(16 << 20, 4))));
  ASSERT_TRUE(Eventually([&] { return used() >= before + (15 << 20); }))
      << "usage did not grow: " << before << " -> " << used();
  Fd fd(::open(P("big").c_str(), O_RDONLY));
  ASSERT_TRUE(fd.ok());
  ASSERT_SYS(::unlink(P("big").c_str()));
  // Open: the data is still there (and counted).
  EXPECT_EQ(PreadAll(fd.get(), 16, (16 << 20) - 16)->size(), 16u);
  EXPECT_GE(used(), before + (15 << 20));
  fd.Reset();
  EXPECT_TRUE(Eventually([&] { return used() < before + (1 << 20); }))
      << "space not freed after the last close: " << before << " -> " << used();
}

TEST_P(FusePosixTest, HardLinks) {
  ASSERT_SYS(::mkdir(P("d").c_str(), 0755));
  ASSERT_TRUE(IsOk(WriteFile(P("a"), "shared")));
  ASSERT_SYS(::link(P("a").c_str(), P("b").c_str()));
  ASSERT_SYS(::link(P("a").c_str(), P("d/c").c_str()));
  auto a = Stat(P("a"));
  auto b = Stat(P("b"));
  auto c = Stat(P("d/c"));
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(a->st_ino, b->st_ino);
  EXPECT_EQ(a->st_ino, c->st_ino);
  EXPECT_EQ(a->st_nlink, 3u);
  EXPECT_EQ(b->st_nlink, 3u);
  // Data written under one name is read under the others.
  {
    Fd fd(::open(P("b").c_str(), O_WRONLY | O_APPEND));
    ASSERT_TRUE(fd.ok());
    ASSERT_TRUE(IsOk(WriteAll(fd.get(), " data")));
  }
  EXPECT_EQ(*ReadFile(P("a")), "shared data");
  EXPECT_EQ(*ReadFile(P("d/c")), "shared data");
  ASSERT_SYS(::unlink(P("a").c_str()));
  EXPECT_EQ(*ReadFile(P("b")), "shared data");
  EXPECT_EQ(Stat(P("b"))->st_nlink, 2u);
  ASSERT_SYS(::unlink(P("b").c_str()));
  EXPECT_EQ(*ReadFile(P("d/c")), "shared data");
  EXPECT_EQ(Stat(P("d/c"))->st_nlink, 1u);
  // Errors.
  EXPECT_ERRNO(EEXIST, ::link(P("d/c").c_str(), P("d/c").c_str()));
  EXPECT_ERRNO(EPERM, ::link(P("d").c_str(), P("dirlink").c_str()));
  EXPECT_ERRNO(ENOENT, ::link(P("missing").c_str(), P("x").c_str()));
  EXPECT_EQ(Sorted(*ListDir(P(""))), (std::set<std::string>{"d"}));
  EXPECT_EQ(Sorted(*ListDir(P("d"))), (std::set<std::string>{"c"}));
}

TEST_P(FusePosixTest, ManyHardLinksAcrossDirectories) {
  // Link names hash to every subvolume (layout b); all must reach the same file.
  ASSERT_SYS(::mkdir(P("src").c_str(), 0755));
  ASSERT_SYS(::mkdir(P("dst").c_str(), 0755));
  ASSERT_TRUE(IsOk(WriteFile(P("src/file"), "linked")));
  const ino_t ino = Stat(P("src/file"))->st_ino;
  for (int i = 0; i < 40; ++i) {
    ASSERT_SYS(::link(P("src/file").c_str(), P("dst/l" + std::to_string(i)).c_str()));
  }
  EXPECT_EQ(Stat(P("src/file"))->st_nlink, 41u);
  for (int i = 0; i < 40; ++i) {
    const std::string name = P("dst/l" + std::to_string(i));
    EXPECT_EQ(Stat(name)->st_ino, ino) << name;
    EXPECT_EQ(*ReadFile(name), "linked") << name;
  }
  EXPECT_EQ(ListDir(P("dst"))->size(), 40u);
  for (int i = 0; i < 40; ++i) EXPECT_SYS(::unlink(P("dst/l" + std::to_string(i)).c_str()));
  EXPECT_EQ(Stat(P("src/file"))->st_nlink, 1u);
  EXPECT_TRUE(ListDir(P("dst"))->empty());
}

TEST_P(FusePosixTest, Symlinks) {
  ASSERT_TRUE(IsOk(WriteFile(P("target"), "pointed at")));
  ASSERT_SYS(::symlink("target", P("rel").c_str()));
  ASSERT_SYS(::symlink("/nonexistent/dangling", P("dangling").c_str()));
  ASSERT_SYS(::mkdir(P("dir").c_str(), 0755));
  ASSERT_SYS(::symlink("dir", P("dirlink").c_str()));
  char buf[256];
  ssize_t n = ::readlink(P("rel").c_str(), buf, sizeof(buf));
  ASSERT_EQ(n, 6);
  EXPECT_EQ(std::string(buf, n), "target");
  n = ::readlink(P("dangling").c_str(), buf, sizeof(buf));
  ASSERT_GT(n, 0);
  EXPECT_EQ(std::string(buf, n), "/nonexistent/dangling");
  auto l = Lstat(P("rel"));
  ASSERT_TRUE(l.ok());
  EXPECT_TRUE(S_ISLNK(l->st_mode));
  EXPECT_EQ(l->st_size, 6);
  EXPECT_EQ(*ReadFile(P("rel")), "pointed at");
  EXPECT_TRUE(S_ISREG(Stat(P("rel"))->st_mode));
  EXPECT_ERRNO(ENOENT, ::open(P("dangling").c_str(), O_RDONLY));
  EXPECT_TRUE(Lstat(P("dangling")).ok());
  // Through a symlinked directory.
  ASSERT_TRUE(IsOk(WriteFile(P("dirlink/inside"), "x")));
  EXPECT_EQ(*ReadFile(P("dir/inside")), "x");
  // readlink of a non-link; a symlink over an existing name.
  EXPECT_ERRNO(EINVAL, ::readlink(P("target").c_str(), buf, sizeof(buf)));
  EXPECT_ERRNO(EEXIST, ::symlink("x", P("target").c_str()));
  // A long target.
  const std::string long_target(1000, 'x');
  ASSERT_SYS(::symlink(long_target.c_str(), P("long").c_str()));
  char big[2048];
  n = ::readlink(P("long").c_str(), big, sizeof(big));
  EXPECT_EQ(n, 1000);
  // Removing the link leaves the target.
  ASSERT_SYS(::unlink(P("rel").c_str()));
  EXPECT_EQ(*ReadFile(P("target")), "pointed at");
}

// ---------------------------------------------------------------------------
// Rename.

TEST_P(FusePosixTest, RenameOverExistingFile) {
  ASSERT_TRUE(IsOk(WriteFile(P("a"), "from a")));
  ASSERT_TRUE(IsOk(WriteFile(P("b"), "old b")));
  const ino_t ino_a = Stat(P("a"))->st_ino;
  Fd old_b(::open(P("b").c_str(), O_RDONLY));
  ASSERT_TRUE(old_b.ok());
  ASSERT_SYS(::rename(P("a").c_str(), P("b").c_str()));
  EXPECT_ERRNO(ENOENT, ::access(P("a").c_str(), F_OK));
  EXPECT_EQ(*ReadFile(P("b")), "from a");
  EXPECT_EQ(Stat(P("b"))->st_ino, ino_a);
  // The replaced file lives on while open.
  EXPECT_EQ(*PreadAll(old_b.get(), 100, 0), "old b");
  EXPECT_EQ(Sorted(*ListDir(P(""))), (std::set<std::string>{"b"}));
  // Renaming a name onto itself (or a hard link of it) does nothing.
  ASSERT_SYS(::rename(P("b").c_str(), P("b").c_str()));
  ASSERT_SYS(::link(P("b").c_str(), P("c").c_str()));
  ASSERT_SYS(::rename(P("b").c_str(), P("c").c_str()));
  EXPECT_EQ(*ReadFile(P("b")), "from a");
  EXPECT_ERRNO(ENOENT, ::rename(P("missing").c_str(), P("x").c_str()));
}

TEST_P(FusePosixTest, RenameNoreplace) {
  ASSERT_TRUE(IsOk(WriteFile(P("a"), "a")));
  ASSERT_TRUE(IsOk(WriteFile(P("b"), "b")));
  EXPECT_ERRNO(EEXIST,
               ::renameat2(AT_FDCWD, P("a").c_str(), AT_FDCWD, P("b").c_str(), RENAME_NOREPLACE));
  EXPECT_EQ(*ReadFile(P("a")), "a");
  EXPECT_EQ(*ReadFile(P("b")), "b");
  ASSERT_SYS(::renameat2(AT_FDCWD, P("a").c_str(), AT_FDCWD, P("c").c_str(), RENAME_NOREPLACE));
  EXPECT_EQ(*ReadFile(P("c")), "a");
  EXPECT_EQ(Sorted(*ListDir(P(""))), (std::set<std::string>{"b", "c"}));
  // Unknown flags are refused.
  EXPECT_ERRNO(EINVAL, ::renameat2(AT_FDCWD, P("b").c_str(), AT_FDCWD, P("d").c_str(),
                                   RENAME_NOREPLACE | RENAME_EXCHANGE));
}

TEST_P(FusePosixTest, RenameExchange) {
  ASSERT_TRUE(IsOk(WriteFile(P("a"), "content a")));
  ASSERT_SYS(::mkdir(P("d").c_str(), 0755));
  ASSERT_TRUE(IsOk(WriteFile(P("d/b"), "content b")));
  const ino_t ino_a = Stat(P("a"))->st_ino;
  const ino_t ino_b = Stat(P("d/b"))->st_ino;
  ASSERT_SYS(::renameat2(AT_FDCWD, P("a").c_str(), AT_FDCWD, P("d/b").c_str(), RENAME_EXCHANGE));
  EXPECT_EQ(*ReadFile(P("a")), "content b");
  EXPECT_EQ(*ReadFile(P("d/b")), "content a");
  EXPECT_EQ(Stat(P("a"))->st_ino, ino_b);
  EXPECT_EQ(Stat(P("d/b"))->st_ino, ino_a);
  // A file and a directory swap too.
  ASSERT_SYS(::mkdir(P("e").c_str(), 0755));
  ASSERT_TRUE(IsOk(WriteFile(P("e/inside"), "i")));
  ASSERT_SYS(::renameat2(AT_FDCWD, P("a").c_str(), AT_FDCWD, P("e").c_str(), RENAME_EXCHANGE));
  EXPECT_TRUE(S_ISDIR(Stat(P("a"))->st_mode));
  EXPECT_EQ(*ReadFile(P("a/inside")), "i");
  EXPECT_EQ(*ReadFile(P("e")), "content b");
  EXPECT_ERRNO(ENOENT, ::renameat2(AT_FDCWD, P("a").c_str(), AT_FDCWD, P("missing").c_str(),
                                   RENAME_EXCHANGE));
  EXPECT_EQ(Sorted(*ListDir(P(""))), (std::set<std::string>{"a", "d", "e"}));
}

TEST_P(FusePosixTest, RenameDirectories) {
  ASSERT_SYS(::mkdir(P("a").c_str(), 0755));
  ASSERT_SYS(::mkdir(P("a/b").c_str(), 0755));
  ASSERT_SYS(::mkdir(P("a/b/c").c_str(), 0755));
  ASSERT_TRUE(IsOk(WriteFile(P("a/b/c/f"), "deep")));
  ASSERT_TRUE(IsOk(WriteFile(P("a/b/g"), "shallow")));
  ASSERT_SYS(::mkdir(P("x").c_str(), 0755));
  // Across directories.
  ASSERT_SYS(::rename(P("a/b").c_str(), P("x/b2").c_str()));
  EXPECT_ERRNO(ENOENT, ::access(P("a/b").c_str(), F_OK));
  EXPECT_EQ(*ReadFile(P("x/b2/c/f")), "deep");
  EXPECT_EQ(*ReadFile(P("x/b2/g")), "shallow");
  EXPECT_TRUE(ListDir(P("a"))->empty());
  // Into its own subdirectory.
  EXPECT_ERRNO(EINVAL, ::rename(P("x").c_str(), P("x/b2/c/x").c_str()));
  EXPECT_ERRNO(EINVAL, ::rename(P("x/b2").c_str(), P("x/b2/inner").c_str()));
  // Onto a non-empty directory; onto an empty one; file/dir mismatches.
  ASSERT_SYS(::mkdir(P("full").c_str(), 0755));
  ASSERT_TRUE(IsOk(WriteFile(P("full/f"), "")));
  EXPECT_ERRNO(ENOTEMPTY, ::rename(P("x").c_str(), P("full").c_str()));
  ASSERT_SYS(::mkdir(P("empty").c_str(), 0755));
  ASSERT_SYS(::rename(P("x").c_str(), P("empty").c_str()));
  EXPECT_EQ(*ReadFile(P("empty/b2/c/f")), "deep");
  EXPECT_ERRNO(EISDIR, ::rename(P("full/f").c_str(), P("empty").c_str()));
  EXPECT_ERRNO(ENOTDIR, ::rename(P("empty").c_str(), P("full/f").c_str()));
  EXPECT_EQ(Sorted(*ListDir(P(""))), (std::set<std::string>{"a", "empty", "full"}));
  // The moved tree is fully usable: new files, removal.
  ASSERT_TRUE(IsOk(WriteFile(P("empty/b2/c/new"), "n")));
  EXPECT_TRUE(IsOk(RemoveTree(P("empty"))));
  EXPECT_EQ(Sorted(*ListDir(P(""))), (std::set<std::string>{"a", "full"}));
}

TEST_P(FusePosixTest, RenameManyFilesBetweenDirectories) {
  // On a distributed volume, new names hash to other subvolumes than the old
  // ones: every renamed file must still open, be listed once and be removable.
  constexpr int kFiles = 200;
  ASSERT_SYS(::mkdir(P("d1").c_str(), 0755));
  ASSERT_SYS(::mkdir(P("d2").c_str(), 0755));
  for (int i = 0; i < kFiles; ++i) {
    ASSERT_TRUE(IsOk(WriteFile(P("d1/file" + std::to_string(i)), "contents " + std::to_string(i))));
  }
  for (int i = 0; i < kFiles; ++i) {
    ASSERT_SYS(::rename(P("d1/file" + std::to_string(i)).c_str(),
                        P("d2/renamed-" + std::to_string(i * 7)).c_str()));
  }
  EXPECT_TRUE(ListDir(P("d1"))->empty()) << "d1 still lists names";
  auto names = ListDir(P("d2"));
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(names->size(), static_cast<size_t>(kFiles)) << "a name listed twice or missing";
  std::set<std::string> want;
  for (int i = 0; i < kFiles; ++i) want.insert("renamed-" + std::to_string(i * 7));
  EXPECT_EQ(Sorted(*names), want);
  for (int i = 0; i < kFiles; ++i) {
    auto got = ReadFile(P("d2/renamed-" + std::to_string(i * 7)));
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_EQ(*got, "contents " + std::to_string(i));
  }
  // Renamed again within the directory, and back into d1; then removed.
  for (int i = 0; i < kFiles; ++i) {
    const std::string from = P("d2/renamed-" + std::to_string(i * 7));
    const std::string to =
        i % 2 == 0 ? P("d2/again-" + std::to_string(i)) : P("d1/back-" + std::to_string(i));
    ASSERT_SYS(::rename(from.c_str(), to.c_str()));
  }
  EXPECT_EQ(ListDir(P("d1"))->size(), static_cast<size_t>(kFiles / 2));
  EXPECT_EQ(ListDir(P("d2"))->size(), static_cast<size_t>(kFiles / 2));
  for (int i = 0; i < kFiles; ++i) {
    const std::string name =
        i % 2 == 0 ? P("d2/again-" + std::to_string(i)) : P("d1/back-" + std::to_string(i));
    EXPECT_EQ(*ReadFile(name), "contents " + std::to_string(i)) << name;
    EXPECT_SYS(::unlink(name.c_str()));
  }
  EXPECT_TRUE(ListDir(P("d1"))->empty());
  EXPECT_TRUE(ListDir(P("d2"))->empty());
  // Nothing left behind on any brick (pointer entries of moved names included).
  const auto& spec = cluster_->spec();
  for (int s = 0; s < static_cast<int>(spec.subvolumes.size()); ++s) {
    for (int r = 0; r < static_cast<int>(spec.subvolumes[s].size()); ++r) {
      for (const char* d : {"d1", "d2"}) {
        auto left = ListDir(cluster_->brick_path(s, r) + "/" + d);
        ASSERT_TRUE(left.ok()) << left.status().ToString();
        EXPECT_TRUE(left->empty()) << "brick " << s << "/" << r << " " << d << " still holds "
                                   << left->size() << " entries, e.g. " << left->front();
      }
    }
  }
  EXPECT_SYS(::rmdir(P("d1").c_str()));
  EXPECT_SYS(::rmdir(P("d2").c_str()));
  // Names reused after all that are fresh files.
  ASSERT_TRUE(IsOk(WriteFile(P("file1"), "fresh")));
  EXPECT_EQ(*ReadFile(P("file1")), "fresh");
}

// ---------------------------------------------------------------------------
// Directories.

TEST_P(FusePosixTest, MkdirRmdir) {
  ASSERT_SYS(::mkdir(P("d").c_str(), 0750));
  auto st = Stat(P("d"));
  ASSERT_TRUE(st.ok());
  EXPECT_TRUE(S_ISDIR(st->st_mode));
  EXPECT_EQ(st->st_mode & 07777, 0750u);
  EXPECT_ERRNO(EEXIST, ::mkdir(P("d").c_str(), 0755));
  ASSERT_SYS(::mkdir(P("d/sub1").c_str(), 0755));
  ASSERT_SYS(::mkdir(P("d/sub2").c_str(), 0755));
  ASSERT_TRUE(IsOk(WriteFile(P("d/file"), "")));
  // nlink of a directory is 2 + subdirectories, or 1 ("not counted"): find(1)
  // skips subdirectories of a directory whose nlink says it has none.
  const nlink_t nlink = Stat(P("d"))->st_nlink;
  EXPECT_TRUE(nlink == 4 || nlink == 1) << "nlink " << nlink;
  EXPECT_ERRNO(ENOTEMPTY, ::rmdir(P("d").c_str()));
  EXPECT_ERRNO(ENOTDIR, ::rmdir(P("d/file").c_str()));
  EXPECT_ERRNO(ENOTDIR, ::mkdir(P("d/file/x").c_str(), 0755));
  EXPECT_ERRNO(ENOENT, ::rmdir(P("missing").c_str()));
  EXPECT_ERRNO(EISDIR, ::unlink(P("d/sub1").c_str()));
  EXPECT_ERRNO(EINVAL, ::rmdir(P("d/sub1/.").c_str()));
  ASSERT_SYS(::rmdir(P("d/sub1").c_str()));
  EXPECT_EQ(Sorted(*ListDir(P("d"))), (std::set<std::string>{"file", "sub2"}));
  ASSERT_SYS(::unlink(P("d/file").c_str()));
  ASSERT_SYS(::rmdir(P("d/sub2").c_str()));
  ASSERT_SYS(::rmdir(P("d").c_str()));
  EXPECT_TRUE(ListDir(P(""))->empty());
  // A name can be a directory again after it was one.
  ASSERT_SYS(::mkdir(P("d").c_str(), 0755));
  ASSERT_TRUE(IsOk(WriteFile(P("d/again"), "a")));
  EXPECT_EQ(*ReadFile(P("d/again")), "a");
}

TEST_P(FusePosixTest, ReaddirSeesChangesAfterRewind) {
  ASSERT_SYS(::mkdir(P("d").c_str(), 0755));
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(IsOk(WriteFile(P("d/f" + std::to_string(i)), "")));
  DIR* d = ::opendir(P("d").c_str());
  ASSERT_NE(d, nullptr);
  auto count = [&] {
    int n = 0;
    bool dot = false;
    bool dotdot = false;
    while (struct dirent* e = ::readdir(d)) {
      std::string_view name(e->d_name);
      if (name == ".") {
        dot = true;
      } else if (name == "..") {
        dotdot = true;
      } else {
        ++n;
        EXPECT_EQ(e->d_type, DT_REG) << name;
      }
    }
    EXPECT_TRUE(dot && dotdot) << "no . or ..";
    return n;
  };
  EXPECT_EQ(count(), 5);
  ASSERT_TRUE(IsOk(WriteFile(P("d/f5"), "")));
  ::rewinddir(d);
  EXPECT_EQ(count(), 6);
  ::closedir(d);
}

TEST_P(FusePosixTest, ConcurrentListingsWhileEntriesChange) {
  // Directory handles are opened, read and released on many FUSE threads at
  // once (releasedir may run the moment readdir's reply is out).
  ASSERT_SYS(::mkdir(P("d").c_str(), 0755));
  constexpr int kStable = 300;
  for (int i = 0; i < kStable; ++i) {
    ASSERT_TRUE(IsOk(WriteFile(P("d/stable" + std::to_string(i)), "")));
  }
  std::atomic<bool> stop{false};
  std::atomic<int> bad{0};
  std::atomic<int> listings{0};
  {
    ThreadGroup threads(&stop);
    threads.Add([&] {
      for (int i = 0; !stop.load(); ++i) {
        const std::string name = P("d/churn" + std::to_string(i % 20));
        if (i % 2 == 0) {
          if (!WriteFile(name, "").ok()) ++bad;
        } else {
          ::unlink(name.c_str());
        }
      }
    });
    for (int t = 0; t < 4; ++t) {
      threads.Add([&] {
        while (!stop.load()) {
          auto names = ListDir(P("d"));
          if (!names.ok()) {
            ++bad;
            continue;
          }
          int stable = 0;
          for (const auto& n : *names) stable += n.starts_with("stable") ? 1 : 0;
          if (stable != kStable) ++bad;
          ++listings;
        }
      });
    }
    std::this_thread::sleep_for(std::chrono::seconds(3));
  }
  EXPECT_EQ(bad.load(), 0);
  EXPECT_GT(listings.load(), 10);
  EXPECT_TRUE(mount_->Mounted());
}

TEST_P(FusePosixTest, DirectIo) {
  const size_t size = 1 << 20;
  void* raw = nullptr;
  ASSERT_EQ(::posix_memalign(&raw, 4096, size), 0);
  std::unique_ptr<char, decltype(&std::free)> buf(static_cast<char*>(raw), &std::free);
  const std::string data = Pattern(size, 13);
  std::memcpy(buf.get(), data.data(), size);
  Fd fd(::open(P("direct").c_str(), O_RDWR | O_CREAT | O_DIRECT, 0644));
  ASSERT_TRUE(fd.ok()) << std::strerror(errno);
  ASSERT_EQ(::pwrite(fd.get(), buf.get(), size, 0), static_cast<ssize_t>(size));
  std::memset(buf.get(), 0, size);
  ASSERT_EQ(::pread(fd.get(), buf.get(), size, 0), static_cast<ssize_t>(size));
  EXPECT_TRUE(std::string(buf.get(), size) == data);
  // Unaligned sizes work through FUSE too.
  ASSERT_EQ(::pwrite(fd.get(), "odd", 3, size), 3);
  EXPECT_EQ(Stat(P("direct"))->st_size, static_cast<off_t>(size + 3));
  fd.Reset();
  EXPECT_TRUE(*ReadFile(P("direct")) == data + "odd");
}

TEST_P(FusePosixTest, TenThousandEntriesInOneDirectory) {
  constexpr int kEntries = 10000;
  constexpr int kThreads = 8;
  ASSERT_SYS(::mkdir(P("big").c_str(), 0755));
  std::atomic<int> failures{0};
  std::string first_error;
  std::mutex error_mu;
  auto fail = [&](const std::string& what) {
    if (failures++ == 0) {
      std::lock_guard lock(error_mu);
      first_error = what + ": " + std::strerror(errno);
    }
  };
  {
    ThreadGroup threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.Add([&, t] {
        for (int i = t; i < kEntries; i += kThreads) {
          const std::string name = P("big/entry-" + std::to_string(i));
          int fd = ::open(name.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0644);
          if (fd < 0) {
            fail("create " + name);
            continue;
          }
          ::close(fd);
        }
      });
    }
  }
  ASSERT_EQ(failures.load(), 0) << first_error;
  auto names = ListDir(P("big"));
  ASSERT_TRUE(names.ok()) << names.status().ToString();
  EXPECT_EQ(names->size(), static_cast<size_t>(kEntries));
  const std::set<std::string> unique = Sorted(*names);
  EXPECT_EQ(unique.size(), static_cast<size_t>(kEntries)) << "names listed twice";
  for (int i = 0; i < kEntries; i += kEntries / 100) {
    const std::string name = "entry-" + std::to_string(i);
    EXPECT_EQ(unique.count(name), 1u) << name;
    auto st = Stat(P("big/" + name));
    EXPECT_TRUE(st.ok() && S_ISREG(st->st_mode) && st->st_size == 0) << name;
  }
  {
    ThreadGroup threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.Add([&, t] {
        for (int i = t; i < kEntries; i += kThreads) {
          const std::string name = P("big/entry-" + std::to_string(i));
          if (::unlink(name.c_str()) != 0) fail("unlink " + name);
        }
      });
    }
  }
  ASSERT_EQ(failures.load(), 0) << first_error;
  EXPECT_TRUE(ListDir(P("big"))->empty());
  EXPECT_SYS(::rmdir(P("big").c_str()));
}

TEST_P(FusePosixTest, DeepTree) {
  constexpr int kDepth = 64;
  std::string path = P("");
  for (int i = 0; i < kDepth; ++i) {
    path += "/d" + std::to_string(i);
    ASSERT_SYS(::mkdir(path.c_str(), 0755));
    ASSERT_TRUE(IsOk(WriteFile(path + "/f", std::to_string(i))));
  }
  EXPECT_EQ(*ReadFile(path + "/f"), std::to_string(kDepth - 1));
  EXPECT_TRUE(S_ISDIR(Stat(path)->st_mode));
  ASSERT_TRUE(IsOk(RemoveTree(P("d0"))));
  EXPECT_ERRNO(ENOENT, ::access(P("d0").c_str(), F_OK));
  EXPECT_TRUE(ListDir(P(""))->empty());
}

TEST_P(FusePosixTest, MknodFifoAndDevices) {
  ASSERT_SYS(::mkfifo(P("fifo").c_str(), 0640));
  auto st = Stat(P("fifo"));
  ASSERT_TRUE(st.ok());
  EXPECT_TRUE(S_ISFIFO(st->st_mode));
  EXPECT_EQ(st->st_mode & 07777, 0640u);
  {
    // The kernel runs the FIFO itself: data passes through it locally.
    Fd fd(::open(P("fifo").c_str(), O_RDWR | O_NONBLOCK));
    ASSERT_TRUE(fd.ok()) << std::strerror(errno);
    ASSERT_EQ(::write(fd.get(), "ping", 4), 4);
    char buf[8];
    ASSERT_EQ(::read(fd.get(), buf, sizeof(buf)), 4);
    EXPECT_EQ(std::string(buf, 4), "ping");
  }
  ASSERT_SYS(::mknod(P("null").c_str(), S_IFCHR | 0666, makedev(1, 3)));
  st = Stat(P("null"));
  ASSERT_TRUE(st.ok());
  EXPECT_TRUE(S_ISCHR(st->st_mode));
  EXPECT_EQ(st->st_rdev, makedev(1, 3));
  ASSERT_SYS(::mknod(P("sock").c_str(), S_IFSOCK | 0600, 0));
  EXPECT_TRUE(S_ISSOCK(Stat(P("sock"))->st_mode));
  ASSERT_SYS(::mknod(P("plain").c_str(), S_IFREG | 0600, 0));
  EXPECT_TRUE(S_ISREG(Stat(P("plain"))->st_mode));
  EXPECT_ERRNO(EEXIST, ::mkfifo(P("fifo").c_str(), 0600));
  for (const char* n : {"fifo", "null", "sock", "plain"}) EXPECT_SYS(::unlink(P(n).c_str()));
  EXPECT_TRUE(ListDir(P(""))->empty());
}

// ---------------------------------------------------------------------------
// Extended attributes.

TEST_P(FusePosixTest, Xattrs) {
  ASSERT_TRUE(IsOk(WriteFile(P("f"), "x")));
  const std::string f = P("f");
  ASSERT_SYS(::setxattr(f.c_str(), "user.a", "value-a", 7, 0));
  ASSERT_SYS(::setxattr(f.c_str(), "user.b", "", 0, 0));
  EXPECT_EQ(::getxattr(f.c_str(), "user.a", nullptr, 0), 7);  // the size
  char buf[64];
  ASSERT_EQ(::getxattr(f.c_str(), "user.a", buf, sizeof(buf)), 7);
  EXPECT_EQ(std::string(buf, 7), "value-a");
  EXPECT_EQ(::getxattr(f.c_str(), "user.b", buf, sizeof(buf)), 0);
  EXPECT_ERRNO(ERANGE, ::getxattr(f.c_str(), "user.a", buf, 3));
  EXPECT_ERRNO(ENODATA, ::getxattr(f.c_str(), "user.missing", buf, sizeof(buf)));
  EXPECT_ERRNO(EEXIST, ::setxattr(f.c_str(), "user.a", "v", 1, XATTR_CREATE));
  EXPECT_ERRNO(ENODATA, ::setxattr(f.c_str(), "user.c", "v", 1, XATTR_REPLACE));
  ASSERT_SYS(::setxattr(f.c_str(), "user.a", "replaced", 8, XATTR_REPLACE));
  ASSERT_EQ(::getxattr(f.c_str(), "user.a", buf, sizeof(buf)), 8);
  EXPECT_EQ(std::string(buf, 8), "replaced");
  ASSERT_SYS(::setxattr(f.c_str(), "user.c", "new", 3, XATTR_CREATE));

  // The list, with the size protocol.
  const ssize_t size = ::listxattr(f.c_str(), nullptr, 0);
  ASSERT_GT(size, 0);
  std::string list(static_cast<size_t>(size), '\0');
  ASSERT_EQ(::listxattr(f.c_str(), list.data(), list.size()), size);
  std::set<std::string> names;
  for (size_t pos = 0; pos < list.size();) {
    const size_t end = list.find('\0', pos);
    ASSERT_NE(end, std::string::npos) << "list not NUL-terminated";
    names.insert(list.substr(pos, end - pos));
    pos = end + 1;
  }
  EXPECT_EQ(names.count("user.a") + names.count("user.b") + names.count("user.c"), 3u);
  for (const auto& n : names) {
    EXPECT_FALSE(n.starts_with("trusted.cairn.")) << "internal xattr listed: " << n;
  }
  if (size > 1) EXPECT_ERRNO(ERANGE, ::listxattr(f.c_str(), list.data(), 1));

  ASSERT_SYS(::removexattr(f.c_str(), "user.b"));
  EXPECT_ERRNO(ENODATA, ::getxattr(f.c_str(), "user.b", buf, sizeof(buf)));
  EXPECT_ERRNO(ENODATA, ::removexattr(f.c_str(), "user.b"));

  // A bigger value (the bricks' ext4 keeps all xattrs of an inode in one 4 KiB
  // block, the volume's own included); on a directory.
  const std::string big = Pattern(2000, 9);
  ASSERT_SYS(::setxattr(f.c_str(), "user.big", big.data(), big.size(), 0));
  std::string back(8000, '\0');
  ASSERT_EQ(::getxattr(f.c_str(), "user.big", back.data(), back.size()),
            static_cast<ssize_t>(big.size()));
  EXPECT_TRUE(back.substr(0, big.size()) == big);
  ASSERT_SYS(::mkdir(P("d").c_str(), 0755));
  ASSERT_SYS(::setxattr(P("d").c_str(), "user.dir", "yes", 3, 0));
  ASSERT_EQ(::getxattr(P("d").c_str(), "user.dir", buf, sizeof(buf)), 3);

  // The system's own names are off limits.
  errno = 0;
  EXPECT_EQ(::setxattr(f.c_str(), "trusted.cairn.layout", "x", 1, 0), -1);
  EXPECT_EQ(ErrnoName(errno), ErrnoName(EPERM));
  errno = 0;
  EXPECT_EQ(::setxattr(P("d").c_str(), "trusted.cairn.anything", "x", 1, 0), -1);
  EXPECT_EQ(ErrnoName(errno), ErrnoName(EPERM));
  EXPECT_EQ(::getxattr(P("d").c_str(), "trusted.cairn.layout", buf, sizeof(buf)), -1);
  EXPECT_EQ(::removexattr(P("d").c_str(), "trusted.cairn.layout"), -1);
  // Plain trusted.* names of users work for root.
  EXPECT_SYS(::setxattr(f.c_str(), "trusted.mine", "t", 1, 0));
  // POSIX ACLs are refused rather than stored and not enforced
  // (user::rw- user:1000:rw- group::r-- mask::rw- other::r--).
  const uint32_t acl[] = {2,          0x00060001, 0xffffffff, 0x00060002, 1000,      0x00040004,
                          0xffffffff, 0x00060010, 0xffffffff, 0x00040020, 0xffffffff};
  EXPECT_ERRNO(EOPNOTSUPP, ::setxattr(f.c_str(), "system.posix_acl_access", acl, sizeof(acl), 0));
}

// ---------------------------------------------------------------------------
// Space: fallocate, truncate, sparse files, statfs.

TEST_P(FusePosixTest, Fallocate) {
  Fd fd(::open(P("f").c_str(), O_RDWR | O_CREAT, 0644));
  ASSERT_TRUE(fd.ok());
  // Plain: extends the size; the blocks are allocated.
  ASSERT_SYS(::fallocate(fd.get(), 0, 0, 1 << 20));
  struct stat st;
  ASSERT_SYS(::fstat(fd.get(), &st));
  EXPECT_EQ(st.st_size, 1 << 20);
  EXPECT_GE(st.st_blocks, (1 << 20) / 512);
  EXPECT_EQ(*PreadAll(fd.get(), 4096, 4096), std::string(4096, '\0'));
  // KEEP_SIZE beyond the end: more blocks, same size.
  ASSERT_SYS(::fallocate(fd.get(), FALLOC_FL_KEEP_SIZE, 1 << 20, 1 << 20));
  ASSERT_SYS(::fstat(fd.get(), &st));
  EXPECT_EQ(st.st_size, 1 << 20);
  EXPECT_GE(st.st_blocks, (2 << 20) / 512);
  // PUNCH_HOLE: data there reads as zeros, blocks are freed.
  const std::string data = Pattern(1 << 20, 5);
  ASSERT_TRUE(IsOk(WriteAll(fd.get(), data, 0)));
  ASSERT_SYS(::fstat(fd.get(), &st));
  const blkcnt_t before_punch = st.st_blocks;
  ASSERT_SYS(
      ::fallocate(fd.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 256 << 10, 256 << 10));
  ASSERT_SYS(::fstat(fd.get(), &st));
  EXPECT_EQ(st.st_size, 1 << 20);
  EXPECT_LE(st.st_blocks, before_punch - (255 << 10) / 512);
  std::string expect = data;
  std::fill(expect.begin() + (256 << 10), expect.begin() + (512 << 10), '\0');
  EXPECT_TRUE(*PreadAll(fd.get(), 1 << 20, 0) == expect) << "punched range is not zeros";
  // ZERO_RANGE, also past the end of file (which extends it).
  ASSERT_SYS(::fallocate(fd.get(), FALLOC_FL_ZERO_RANGE, 600 << 10, 100 << 10));
  std::fill(expect.begin() + (600 << 10), expect.begin() + (700 << 10), '\0');
  EXPECT_TRUE(*PreadAll(fd.get(), 1 << 20, 0) == expect) << "zeroed range is not zeros";
  ASSERT_SYS(::fallocate(fd.get(), FALLOC_FL_ZERO_RANGE, (1 << 20) - 10, 100));
  ASSERT_SYS(::fstat(fd.get(), &st));
  EXPECT_EQ(st.st_size, (1 << 20) + 90);
  // Through a fresh stat as well (attributes reach the kernel).
  EXPECT_EQ(Stat(P("f"))->st_size, (1 << 20) + 90);
}

TEST_P(FusePosixTest, TruncateUpAndDown) {
  const std::string data = Pattern(1 << 20, 6);
  ASSERT_TRUE(IsOk(WriteFile(P("f"), data)));
  ASSERT_SYS(::truncate(P("f").c_str(), 100));
  EXPECT_EQ(Stat(P("f"))->st_size, 100);
  EXPECT_EQ(*ReadFile(P("f")), data.substr(0, 100));
  ASSERT_SYS(::truncate(P("f").c_str(), 1 << 20));
  EXPECT_EQ(Stat(P("f"))->st_size, 1 << 20);
  auto back = ReadFile(P("f"));
  ASSERT_TRUE(back.ok());
  EXPECT_TRUE(*back == data.substr(0, 100) + std::string((1 << 20) - 100, '\0'))
      << "bytes past a truncate-down are not zeros after growing again";
  Fd fd(::open(P("f").c_str(), O_RDWR));
  ASSERT_TRUE(fd.ok());
  ASSERT_SYS(::ftruncate(fd.get(), 0));
  struct stat st;
  ASSERT_SYS(::fstat(fd.get(), &st));
  EXPECT_EQ(st.st_size, 0);
  ASSERT_SYS(::ftruncate(fd.get(), 12345));
  EXPECT_EQ(*PreadAll(fd.get(), 20000, 0), std::string(12345, '\0'));
  EXPECT_ERRNO(EINVAL, ::ftruncate(fd.get(), -1));
  ASSERT_SYS(::mkdir(P("d").c_str(), 0755));
  EXPECT_ERRNO(EISDIR, ::truncate(P("d").c_str(), 0));
}

TEST_P(FusePosixTest, SparseFileBeyond4GiB) {
  constexpr off_t kFiveGiB = 5LL << 30;
  constexpr off_t k4GiB = 4LL << 30;
  Fd fd(::open(P("sparse").c_str(), O_RDWR | O_CREAT, 0644));
  ASSERT_TRUE(fd.ok());
  ASSERT_EQ(::pwrite(fd.get(), "Z", 1, kFiveGiB), 1) << std::strerror(errno);
  struct stat st;
  ASSERT_SYS(::fstat(fd.get(), &st));
  EXPECT_EQ(st.st_size, kFiveGiB + 1);
  EXPECT_LT(st.st_blocks, 1024) << "a sparse file takes " << st.st_blocks << " blocks";
  EXPECT_EQ(*PreadAll(fd.get(), 4096, k4GiB), std::string(4096, '\0'));
  EXPECT_EQ(*PreadAll(fd.get(), 10, kFiveGiB - 5), std::string(5, '\0') + "Z");
  // Data across the 4 GiB boundary (32-bit offset truncation would show here).
  const std::string across = Pattern(8192, 7);
  ASSERT_TRUE(IsOk(WriteAll(fd.get(), across, k4GiB - 4096)));
  EXPECT_TRUE(*PreadAll(fd.get(), 8192, k4GiB - 4096) == across);
  EXPECT_EQ(*PreadAll(fd.get(), 4096, 4096), std::string(4096, '\0'));  // still a hole
  auto fresh = Stat(P("sparse"));
  ASSERT_TRUE(fresh.ok());
  EXPECT_EQ(fresh->st_size, kFiveGiB + 1);
  EXPECT_LT(fresh->st_blocks, 1024);
  // Truncating back below 4 GiB.
  ASSERT_SYS(::ftruncate(fd.get(), k4GiB - 1));
  EXPECT_EQ(Stat(P("sparse"))->st_size, k4GiB - 1);
  EXPECT_EQ(*PreadAll(fd.get(), 100, k4GiB - 1), "");
}

TEST_P(FusePosixTest, StatfsShowsCapacityAndUsage) {
  ClusterOptions options = GetParam().options;
  options.brick_capacity = 64ull << 20;
  StartVolume(options);
  if (HasFatalFailure()) return;
  struct statvfs sv;
  ASSERT_SYS(::statvfs(P("").c_str(), &sv));
  const uint64_t capacity = static_cast<uint64_t>(sv.f_blocks) * sv.f_frsize;
  const uint64_t want = static_cast<uint64_t>(options.subvolumes) * options.brick_capacity;
  EXPECT_EQ(capacity, want) << "f_blocks " << sv.f_blocks << " x f_frsize " << sv.f_frsize;
  EXPECT_GT(sv.f_bsize, 0u);
  EXPECT_LE(sv.f_bfree, sv.f_blocks);
  EXPECT_EQ(sv.f_bavail, sv.f_bfree);
  EXPECT_GE(sv.f_namemax, 255u);
  const uint64_t free_before = static_cast<uint64_t>(sv.f_bfree) * sv.f_frsize;
  ASSERT_TRUE(IsOk(WriteFile(P("f"), Pattern(8 << 20, 8))));
  uint64_t free_after = 0;
  EXPECT_TRUE(Eventually([&] {
    if (::statvfs(P("").c_str(), &sv) != 0) return false;
    free_after = static_cast<uint64_t>(sv.f_bfree) * sv.f_frsize;
    return free_after + (7 << 20) <= free_before;
  })) << "free space "
      << free_before << " -> " << free_after << " after writing 8 MiB";
  // df agrees (it uses statfs too).
  auto df = RunCommand({"df", "-B1", "--output=size", P("")});
  ASSERT_TRUE(df.ok());
  EXPECT_NE(df->output.find(std::to_string(want)), std::string::npos) << df->output;
  // Writing beyond the capacity fails with ENOSPC, not silently.
  Fd fd(::open(P("huge").c_str(), O_WRONLY | O_CREAT, 0644));
  ASSERT_TRUE(fd.ok());
  const std::string chunk = Pattern(4 << 20, 9);
  Status s;
  for (int i = 0; i < 64 && s.ok(); ++i) s = WriteAll(fd.get(), chunk);
  EXPECT_EQ(s.posix_errno(), ENOSPC) << s.ToString();
}

// ---------------------------------------------------------------------------
// mmap and locks.

TEST_P(FusePosixTest, MmapReadAndSharedWrite) {
  const size_t size = 3 * 4096 + 100;
  const std::string data = Pattern(size, 10);
  ASSERT_TRUE(IsOk(WriteFile(P("m"), data)));
  Fd fd(::open(P("m").c_str(), O_RDWR));
  ASSERT_TRUE(fd.ok());
  {
    Mapping map(::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0), size);
    ASSERT_TRUE(map.ok()) << std::strerror(errno);
    EXPECT_TRUE(std::string(map.data(), size) == data) << "mmap read differs";
    std::memcpy(map.data() + 10, "MMAP-WRITE", 10);
    std::memcpy(map.data() + 2 * 4096 + 50, "second page", 11);
    ASSERT_SYS(::msync(map.data(), size, MS_SYNC));
  }
  std::string expect = data;
  expect.replace(10, 10, "MMAP-WRITE");
  expect.replace(2 * 4096 + 50, 11, "second page");
  fd.Reset();
  // Through read() on a fresh descriptor (the page cache is dropped at open).
  EXPECT_TRUE(*ReadFile(P("m")) == expect) << "read() does not see the mmap writes";
  // And on the bricks: the writes went out at msync.
  for (int s = 0; s < static_cast<int>(cluster_->spec().subvolumes.size()); ++s) {
    for (int r = 0; r < 3; ++r) {
      if (HasArbiter() && r == 2) continue;
      auto on_brick = ReadFile(cluster_->brick_path(s, r) + "/m");
      if (!on_brick.ok()) continue;  // another subvolume's brick
      EXPECT_TRUE(*on_brick == expect) << "brick " << s << "/" << r << " lacks the mmap writes";
    }
  }
  // An mmap write past the old end after ftruncate grows the file.
  Fd fd2(::open(P("m").c_str(), O_RDWR));
  ASSERT_SYS(::ftruncate(fd2.get(), 8192 * 2));
  {
    Mapping map(::mmap(nullptr, 8192 * 2, PROT_READ | PROT_WRITE, MAP_SHARED, fd2.get(), 0),
                8192 * 2);
    ASSERT_TRUE(map.ok());
    std::memcpy(map.data() + 8192 * 2 - 4, "END!", 4);
    ASSERT_SYS(::msync(map.data(), 8192 * 2, MS_SYNC));
  }
  EXPECT_EQ(*PreadAll(fd2.get(), 4, 8192 * 2 - 4), "END!");
}

TEST_P(FusePosixTest, FlockAndFcntlLocks) {
  ASSERT_TRUE(IsOk(WriteFile(P("lock"), "l")));
  const std::string path = P("lock");
  Fd a(::open(path.c_str(), O_RDWR));
  Fd b(::open(path.c_str(), O_RDWR));
  ASSERT_TRUE(a.ok() && b.ok());
  // flock: per open file description.
  ASSERT_SYS(::flock(a.get(), LOCK_EX | LOCK_NB));
  EXPECT_ERRNO(EWOULDBLOCK, ::flock(b.get(), LOCK_EX | LOCK_NB));
  EXPECT_ERRNO(EWOULDBLOCK, ::flock(b.get(), LOCK_SH | LOCK_NB));
  ASSERT_SYS(::flock(a.get(), LOCK_UN));
  ASSERT_SYS(::flock(b.get(), LOCK_SH | LOCK_NB));
  ASSERT_SYS(::flock(a.get(), LOCK_SH | LOCK_NB));  // shared locks coexist
  ASSERT_SYS(::flock(a.get(), LOCK_UN));
  ASSERT_SYS(::flock(b.get(), LOCK_UN));

  // Open file description locks: a second description conflicts.
  struct flock lk {};
  lk.l_type = F_WRLCK;
  lk.l_whence = SEEK_SET;
  lk.l_start = 0;
  lk.l_len = 100;
  ASSERT_SYS(::fcntl(a.get(), F_OFD_SETLK, &lk));
  struct flock other = lk;
  EXPECT_ERRNO(EAGAIN, ::fcntl(b.get(), F_OFD_SETLK, &other));
  other.l_start = 100;  // a range not locked
  ASSERT_SYS(::fcntl(b.get(), F_OFD_SETLK, &other));
  struct flock probe = lk;
  ASSERT_SYS(::fcntl(b.get(), F_OFD_GETLK, &probe));
  EXPECT_EQ(probe.l_type, F_WRLCK);
  lk.l_type = F_UNLCK;
  ASSERT_SYS(::fcntl(a.get(), F_OFD_SETLK, &lk));
  other.l_type = F_UNLCK;
  ASSERT_SYS(::fcntl(b.get(), F_OFD_SETLK, &other));

  // Classic POSIX locks: another process conflicts (F_SETLK -> EAGAIN) and
  // F_GETLK names the holder.
  struct flock mine {};
  mine.l_type = F_WRLCK;
  mine.l_whence = SEEK_SET;
  ASSERT_SYS(::fcntl(a.get(), F_SETLK, &mine));
  const pid_t self = ::getpid();
  auto child = RunAs(0, 0, [&] {
    int fd = ::open(path.c_str(), O_RDWR);
    if (fd < 0) return 100;
    struct flock l {};
    l.l_type = F_WRLCK;
    l.l_whence = SEEK_SET;
    if (::fcntl(fd, F_SETLK, &l) == 0) return 101;
    if (errno != EAGAIN && errno != EACCES) return 102;
    struct flock g {};
    g.l_type = F_WRLCK;
    g.l_whence = SEEK_SET;
    if (::fcntl(fd, F_GETLK, &g) != 0) return 103;
    if (g.l_type != F_WRLCK || g.l_pid != self) return 104;
    return 0;
  });
  ASSERT_TRUE(child.ok()) << child.status().ToString();
  EXPECT_EQ(*child, 0) << "100 open, 101 lock not exclusive, 102 wrong errno, 103 getlk, "
                          "104 getlk result";
  mine.l_type = F_UNLCK;
  ASSERT_SYS(::fcntl(a.get(), F_SETLK, &mine));
  auto free_now = RunAs(0, 0, [&] {
    int fd = ::open(path.c_str(), O_RDWR);
    struct flock l {};
    l.l_type = F_WRLCK;
    l.l_whence = SEEK_SET;
    return fd >= 0 && ::fcntl(fd, F_SETLK, &l) == 0 ? 0 : 1;
  });
  ASSERT_TRUE(free_now.ok());
  EXPECT_EQ(*free_now, 0);
}

// ---------------------------------------------------------------------------
// Permissions and ownership (the kernel checks with default_permissions; the
// volume stores the caller's identity).

constexpr uid_t kUser = 1000;
constexpr gid_t kGroup = 1000;
constexpr uid_t kOtherUser = 1001;

TEST_P(FusePosixTest, PermissionsAsNonRootUser) {
  ASSERT_SYS(::mkdir(P("private").c_str(), 0700));
  ASSERT_SYS(::mkdir(P("pub").c_str(), 0777));
  ASSERT_SYS(::chmod(P("pub").c_str(), 0777));
  ASSERT_TRUE(IsOk(WriteFile(P("pub/rootfile"), "root's", 0644)));
  const std::string priv = P("private/x");
  const std::string pub = P("pub");
  auto rc = RunAs(kUser, kGroup, [&] {
    if (::open(priv.c_str(), O_WRONLY | O_CREAT, 0644) != -1 || errno != EACCES) return 1;
    struct stat st;
    if (::stat(priv.c_str(), &st) != -1 || errno != EACCES) return 2;
    // Reading root's 0644 file works; writing it does not.
    if (::open((pub + "/rootfile").c_str(), O_RDONLY) < 0) return 3;
    if (::open((pub + "/rootfile").c_str(), O_WRONLY) != -1 || errno != EACCES) return 4;
    // chmod and chown of what is not one's own.
    if (::chmod((pub + "/rootfile").c_str(), 0666) != -1 || errno != EPERM) return 5;
    // Own files: created as the caller.
    int fd = ::open((pub + "/mine").c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0) return 6;
    if (::write(fd, "m", 1) != 1) return 7;
    ::close(fd);
    if (::mkdir((pub + "/mydir").c_str(), 0700) != 0) return 8;
    if (::chmod((pub + "/mine").c_str(), 0640) != 0) return 9;
    // chown to root by a non-root user.
    if (::chown((pub + "/mine").c_str(), 0, static_cast<gid_t>(-1)) != -1 || errno != EPERM) {
      return 10;
    }
    // Removing root's file from a world-writable (non-sticky) dir is allowed.
    if (::symlink("mine", (pub + "/mylink").c_str()) != 0) return 11;
    return 0;
  });
  ASSERT_TRUE(rc.ok()) << rc.status().ToString();
  EXPECT_EQ(*rc, 0) << "step " << *rc << " failed (see the lambda)";
  for (const char* n : {"pub/mine", "pub/mydir"}) {
    auto st = Stat(P(n));
    ASSERT_TRUE(st.ok()) << n;
    EXPECT_EQ(st->st_uid, kUser) << n;
    EXPECT_EQ(st->st_gid, kGroup) << n;
  }
  EXPECT_EQ(Stat(P("pub/mine"))->st_mode & 07777, 0640u);
  EXPECT_EQ(Stat(P("pub/mydir"))->st_mode & 07777, 0700u);
  EXPECT_EQ(Lstat(P("pub/mylink"))->st_uid, kUser);
  // Root may do what the user may not.
  EXPECT_SYS(::chown(P("pub/mine").c_str(), kOtherUser, kOtherUser));
  EXPECT_EQ(Stat(P("pub/mine"))->st_uid, kOtherUser);
  EXPECT_EQ(Stat(P("pub/mine"))->st_gid, kOtherUser);
  // The user now lacks rights on the file it no longer owns (mode 0640, other group).
  const std::string mine = P("pub/mine");
  auto rc2 = RunAs(kUser, kGroup,
                   [&] { return ::open(mine.c_str(), O_RDONLY) == -1 && errno == EACCES ? 0 : 1; });
  ASSERT_TRUE(rc2.ok());
  EXPECT_EQ(*rc2, 0);
}

TEST_P(FusePosixTest, StickyDirectory) {
  ASSERT_SYS(::mkdir(P("tmp").c_str(), 0777));
  ASSERT_SYS(::chmod(P("tmp").c_str(), 01777));
  EXPECT_EQ(Stat(P("tmp"))->st_mode & 07777, 01777u);
  const std::string file = P("tmp/users-file");
  auto created = RunAs(kUser, kGroup, [&] {
    int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0666);
    return fd >= 0 ? 0 : errno;
  });
  ASSERT_TRUE(created.ok());
  ASSERT_EQ(*created, 0) << std::strerror(*created);
  // Another user may not remove or rename it, even though tmp is world-writable.
  const std::string tmp = P("tmp");
  auto other = RunAs(kOtherUser, kOtherUser, [&] {
    if (::unlink(file.c_str()) != -1 || errno != EPERM) return 1;
    if (::rename(file.c_str(), (tmp + "/stolen").c_str()) != -1 || errno != EPERM) return 2;
    // It can create its own file there.
    int fd = ::open((tmp + "/others").c_str(), O_WRONLY | O_CREAT, 0644);
    if (fd < 0) return 3;
    ::close(fd);
    return 0;
  });
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(*other, 0) << "step " << *other;
  // The owner may remove it.
  auto owner = RunAs(kUser, kGroup, [&] { return ::unlink(file.c_str()) == 0 ? 0 : errno; });
  ASSERT_TRUE(owner.ok());
  EXPECT_EQ(*owner, 0);
  // Root may remove anyone's.
  EXPECT_SYS(::unlink(P("tmp/others").c_str()));
}

TEST_P(FusePosixTest, SetgidDirectoryInheritance) {
  constexpr gid_t kDirGroup = 2000;
  ASSERT_SYS(::mkdir(P("sg").c_str(), 0777));
  ASSERT_SYS(::chown(P("sg").c_str(), 0, kDirGroup));
  ASSERT_SYS(::chmod(P("sg").c_str(), 02777));
  EXPECT_EQ(Stat(P("sg"))->st_mode & 07777, 02777u);
  const std::string sg = P("sg");
  auto rc = RunAs(kUser, kGroup, [&] {
    int fd = ::open((sg + "/file").c_str(), O_WRONLY | O_CREAT, 0644);
    if (fd < 0) return 1;
    ::close(fd);
    if (::mkdir((sg + "/sub").c_str(), 0755) != 0) return 2;
    return 0;
  });
  ASSERT_TRUE(rc.ok());
  ASSERT_EQ(*rc, 0);
  auto file = Stat(P("sg/file"));
  auto sub = Stat(P("sg/sub"));
  ASSERT_TRUE(file.ok() && sub.ok());
  EXPECT_EQ(file->st_uid, kUser);
  EXPECT_EQ(file->st_gid, kDirGroup) << "a new file takes the setgid directory's group";
  EXPECT_EQ(sub->st_gid, kDirGroup);
  EXPECT_NE(sub->st_mode & S_ISGID, 0u) << "a new directory inherits the setgid bit";
  // Root creating there gets the directory's group as well.
  ASSERT_TRUE(IsOk(WriteFile(P("sg/rootfile"), "")));
  EXPECT_EQ(Stat(P("sg/rootfile"))->st_gid, kDirGroup);
}

TEST_P(FusePosixTest, Umask) {
  const mode_t old = ::umask(027);
  Fd fd(::open(P("f").c_str(), O_WRONLY | O_CREAT, 0666));
  const int mkdir_rc = ::mkdir(P("d").c_str(), 0777);
  ::umask(old);
  ASSERT_TRUE(fd.ok());
  ASSERT_EQ(mkdir_rc, 0);
  EXPECT_EQ(Stat(P("f"))->st_mode & 07777, 0640u);
  EXPECT_EQ(Stat(P("d"))->st_mode & 07777, 0750u);
}

// ---------------------------------------------------------------------------
// Timestamps.

TEST_P(FusePosixTest, Timestamps) {
  Fd fd(::open(P("t").c_str(), O_RDWR | O_CREAT, 0644));
  ASSERT_TRUE(fd.ok());
  struct stat st0;
  ASSERT_SYS(::fstat(fd.get(), &st0));
  const int64_t now_ns =
      static_cast<int64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count());
  EXPECT_LT(std::llabs(Nanos(st0.st_mtim) - now_ns), 10'000'000'000LL) << "mtime far from now";
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_TRUE(IsOk(WriteAll(fd.get(), "data", 0)));
  struct stat st1;
  ASSERT_SYS(::fstat(fd.get(), &st1));
  EXPECT_GT(Nanos(st1.st_mtim), Nanos(st0.st_mtim)) << "write did not change mtime";
  EXPECT_GT(Nanos(st1.st_ctim), Nanos(st0.st_ctim)) << "write did not change ctime";
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_SYS(::fchmod(fd.get(), 0600));
  struct stat st2;
  ASSERT_SYS(::fstat(fd.get(), &st2));
  EXPECT_GT(Nanos(st2.st_ctim), Nanos(st1.st_ctim)) << "chmod did not change ctime";
  EXPECT_EQ(Nanos(st2.st_mtim), Nanos(st1.st_mtim)) << "chmod changed mtime";

  // Explicit times, to the nanosecond.
  struct timespec times[2] = {{1000000000, 123456789}, {1500000000, 987654321}};
  ASSERT_SYS(::utimensat(AT_FDCWD, P("t").c_str(), times, 0));
  auto st3 = Stat(P("t"));
  ASSERT_TRUE(st3.ok());
  EXPECT_EQ(Nanos(st3->st_atim), 1000000000LL * 1000000000 + 123456789);
  EXPECT_EQ(Nanos(st3->st_mtim), 1500000000LL * 1000000000 + 987654321);
  // UTIME_OMIT keeps one; UTIME_NOW sets now.
  struct timespec omit_now[2] = {{0, UTIME_OMIT}, {0, UTIME_NOW}};
  ASSERT_SYS(::utimensat(AT_FDCWD, P("t").c_str(), omit_now, 0));
  auto st4 = Stat(P("t"));
  ASSERT_TRUE(st4.ok());
  EXPECT_EQ(Nanos(st4->st_atim), Nanos(st3->st_atim));
  EXPECT_LT(std::llabs(Nanos(st4->st_mtim) - now_ns), 10'000'000'000LL);
  ASSERT_SYS(::utimensat(AT_FDCWD, P("t").c_str(), nullptr, 0));  // both now
  auto st5 = Stat(P("t"));
  EXPECT_LT(std::llabs(Nanos(st5->st_atim) - now_ns), 10'000'000'000LL);
  // atime alone, explicitly.
  struct timespec atime_only[2] = {{2000000000, 5}, {0, UTIME_OMIT}};
  ASSERT_SYS(::utimensat(AT_FDCWD, P("t").c_str(), atime_only, 0));
  auto st6 = Stat(P("t"));
  EXPECT_EQ(Nanos(st6->st_atim), 2000000000LL * 1000000000 + 5);
  EXPECT_EQ(Nanos(st6->st_mtim), Nanos(st5->st_mtim));
  // Directory mtime changes when an entry is added.
  ASSERT_SYS(::mkdir(P("d").c_str(), 0755));
  auto d0 = Stat(P("d"));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_TRUE(IsOk(WriteFile(P("d/new"), "")));
  auto d1 = Stat(P("d"));
  EXPECT_GT(Nanos(d1->st_mtim), Nanos(d0->st_mtim)) << "creating an entry kept the dir's mtime";
  // Non-owners may set times to now on a file they can write, not explicit ones.
  ASSERT_SYS(::chmod(P("t").c_str(), 0666));
  const std::string t = P("t");
  auto rc = RunAs(kUser, kGroup, [&] {
    if (::utimensat(AT_FDCWD, t.c_str(), nullptr, 0) != 0) return 1;
    struct timespec ts[2] = {{1, 0}, {1, 0}};
    if (::utimensat(AT_FDCWD, t.c_str(), ts, 0) != -1 || errno != EPERM) return 2;
    return 0;
  });
  ASSERT_TRUE(rc.ok());
  EXPECT_EQ(*rc, 0) << "step " << *rc;
}

// ---------------------------------------------------------------------------
// The bricks, remounting.

TEST_P(FusePosixTest, FileIsOnEachDataBrickAtTheSamePath) {
  ASSERT_SYS(::mkdir(P("dir").c_str(), 0755));
  ASSERT_SYS(::mkdir(P("dir/sub").c_str(), 0755));
  const std::string data = Pattern(300000, 11);
  ASSERT_TRUE(IsOk(WriteFile(P("dir/sub/file"), data)));
  const auto& spec = cluster_->spec();
  int holders = 0;
  for (int s = 0; s < static_cast<int>(spec.subvolumes.size()); ++s) {
    int data_copies = 0;
    for (int r = 0; r < static_cast<int>(spec.subvolumes[s].size()); ++r) {
      const std::string brick = cluster_->brick_path(s, r);
      // Directories exist on every brick.
      struct stat st;
      EXPECT_EQ(::stat((brick + "/dir/sub").c_str(), &st), 0) << brick << ": no dir/sub";
      const std::string copy = brick + "/dir/sub/file";
      if (::stat(copy.c_str(), &st) != 0) continue;
      if (spec.subvolumes[s][r].arbiter) {
        // Names and metadata only: no data (a block may hold its xattrs).
        EXPECT_LE(st.st_blocks, 8) << "the arbiter holds data: " << copy;
        EXPECT_TRUE(ReadFile(copy)->find_first_not_of('\0') == std::string::npos)
            << "the arbiter holds data: " << copy;
        continue;
      }
      ++data_copies;
      auto got = ReadFile(copy);
      ASSERT_TRUE(got.ok());
      EXPECT_TRUE(*got == data) << copy << " differs";
    }
    if (data_copies > 0) {
      ++holders;
      EXPECT_EQ(data_copies, HasArbiter() ? 2 : 3) << "subvolume " << s;
    }
  }
  EXPECT_EQ(holders, 1) << "the file must live on exactly one subvolume";
}

TEST_P(FusePosixTest, DataPersistsAcrossRemount) {
  ASSERT_SYS(::mkdir(P("keep").c_str(), 0755));
  ASSERT_SYS(::mkdir(P("keep/sub").c_str(), 0700));
  const std::string data = Pattern(1 << 20, 12);
  ASSERT_TRUE(IsOk(WriteFile(P("keep/file"), data, 0640)));
  ASSERT_SYS(::symlink("file", P("keep/link").c_str()));
  ASSERT_SYS(::link(P("keep/file").c_str(), P("keep/sub/hard").c_str()));
  ASSERT_SYS(::setxattr(P("keep/file").c_str(), "user.k", "v", 1, 0));
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(IsOk(WriteFile(P("keep/sub/n" + std::to_string(i)), std::to_string(i))));
  }
  ASSERT_TRUE(IsOk(mount_->Unmount())) << mount_->Log();
  EXPECT_FALSE(mount_->Mounted());
  mount_.reset();
  Mount();
  if (HasFatalFailure()) return;
  EXPECT_TRUE(*ReadFile(P("keep/file")) == data);
  EXPECT_EQ(Stat(P("keep/file"))->st_mode & 07777, 0640u);
  EXPECT_EQ(Stat(P("keep/file"))->st_nlink, 2u);
  EXPECT_EQ(Stat(P("keep/sub"))->st_mode & 07777, 0700u);
  char buf[16];
  ASSERT_EQ(::readlink(P("keep/link").c_str(), buf, sizeof(buf)), 4);
  EXPECT_EQ(::getxattr(P("keep/file").c_str(), "user.k", buf, sizeof(buf)), 1);
  EXPECT_EQ(ListDir(P("keep/sub"))->size(), 51u);
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(*ReadFile(P("keep/sub/n" + std::to_string(i))), std::to_string(i));
  }
}

TEST_P(FusePosixTest, ShowsAsFuseCairnWithTheVolumeName) {
  auto info = FindMount(mount_->path());
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->fstype, "fuse.cairn");
  EXPECT_EQ(info->source, cluster_->spec().name);
  // /proc/mounts: "VOLNAME MOUNTPOINT fuse.cairn ..."
  const std::string mounts = ReadFileOrEmpty("/proc/mounts");
  EXPECT_NE(mounts.find(cluster_->spec().name + " " + mount_->path() + " fuse.cairn "),
            std::string::npos);
}

TEST_P(FusePosixTest, ParallelWritersOnDifferentFiles) {
  constexpr int kThreads = 6;
  std::atomic<int> bad{0};
  {
    ThreadGroup threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.Add([&, t] {
        const std::string data = Pattern(2 << 20, 100 + t);
        const std::string name = P("p" + std::to_string(t));
        if (!WriteFile(name, data).ok()) ++bad;
        auto back = ReadFile(name);
        if (!back.ok() || *back != data) ++bad;
      });
    }
  }
  EXPECT_EQ(bad.load(), 0);
}

INSTANTIATE_TEST_SUITE_P(Layouts, FusePosixTest, ::testing::ValuesIn(StandardLayouts()),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace cairn::test
