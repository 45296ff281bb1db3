// Tests for crash-safe writes, file reads, secret files and constant-time compare.
#include "common/file_util.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace cairn {
namespace {

class FileUtilTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Pin the umask so mode checks do not depend on the caller's environment.
    old_umask_ = ::umask(022);
    std::string tmpl = (std::filesystem::temp_directory_path() / "file_util_test.XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }

  void TearDown() override {
    std::filesystem::remove_all(dir_);
    ::umask(old_umask_);
  }

  std::string Path(const std::string& name) const { return dir_ + "/" + name; }

  // Reads `path` without going through the code under test.
  static std::string Slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }

  static void Put(const std::string& path, const std::string& contents) {
    std::ofstream(path, std::ios::binary) << contents;
  }

  static int ModeOf(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return -1;
    return static_cast<int>(st.st_mode & 07777);
  }

  std::vector<std::string> Entries() const {
    std::vector<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(dir_)) {
      names.push_back(e.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    return names;
  }

  mode_t old_umask_ = 0;
  std::string dir_;
};

TEST_F(FileUtilTest, WriteFileAtomicCreatesFileWithExactContents) {
  std::string contents("state\0with nul\nand more", 23);
  ASSERT_TRUE(WriteFileAtomic(Path("state.json"), contents).ok());
  EXPECT_EQ(Slurp(Path("state.json")), contents);
}

TEST_F(FileUtilTest, WriteFileAtomicHandlesEmptyAndLargeContents) {
  ASSERT_TRUE(WriteFileAtomic(Path("empty"), "").ok());
  EXPECT_TRUE(std::filesystem::exists(Path("empty")));
  EXPECT_EQ(Slurp(Path("empty")), "");

  std::string big;
  for (int i = 0; i < 300000; ++i) big += static_cast<char>('a' + i % 26);
  ASSERT_TRUE(WriteFileAtomic(Path("big"), big).ok());
  EXPECT_EQ(Slurp(Path("big")), big);
}

TEST_F(FileUtilTest, WriteFileAtomicReplacesLongerFileCompletely) {
  Put(Path("f"), "the old contents were much longer than the new ones");
  ASSERT_TRUE(WriteFileAtomic(Path("f"), "new").ok());
  EXPECT_EQ(Slurp(Path("f")), "new");
}

TEST_F(FileUtilTest, WriteFileAtomicDefaultModeIsOwnerOnly) {
  ASSERT_TRUE(WriteFileAtomic(Path("secret"), "s").ok());
  EXPECT_EQ(ModeOf(Path("secret")), 0600);
}

TEST_F(FileUtilTest, WriteFileAtomicAppliesGivenMode) {
  ASSERT_TRUE(WriteFileAtomic(Path("shared"), "s", 0644).ok());
  EXPECT_EQ(ModeOf(Path("shared")), 0644);
  ASSERT_TRUE(WriteFileAtomic(Path("group"), "s", 0640).ok());
  EXPECT_EQ(ModeOf(Path("group")), 0640);
}

TEST_F(FileUtilTest, WriteFileAtomicReplacementTakesTheNewMode) {
  Put(Path("f"), "old");
  ASSERT_EQ(::chmod(Path("f").c_str(), 0644), 0);
  ASSERT_TRUE(WriteFileAtomic(Path("f"), "new", 0600).ok());
  EXPECT_EQ(ModeOf(Path("f")), 0600);
  EXPECT_EQ(Slurp(Path("f")), "new");
}

TEST_F(FileUtilTest, WriteFileAtomicLeavesNoTempFileBehind) {
  ASSERT_TRUE(WriteFileAtomic(Path("a"), "1").ok());
  ASSERT_TRUE(WriteFileAtomic(Path("a"), "2").ok());
  ASSERT_TRUE(WriteFileAtomic(Path("b"), "3").ok());
  EXPECT_EQ(Entries(), (std::vector<std::string>{"a", "b"}));
}

TEST_F(FileUtilTest, WriteFileAtomicDoesNotReuseStaleTempFileMode) {
  // A crash mid-write can leave the temporary file behind; a restarted daemon
  // in a container often gets the same pid and so the same temporary name.
  // The secret must still end up with the requested mode, not the stale one.
  std::string stale = Path("token") + ".tmp." + std::to_string(::getpid());
  Put(stale, "stale partial contents that are long");
  ASSERT_EQ(::chmod(stale.c_str(), 0644), 0);
  ASSERT_TRUE(WriteFileAtomic(Path("token"), "s3cret", 0600).ok());
  EXPECT_EQ(ModeOf(Path("token")), 0600);
  EXPECT_EQ(Slurp(Path("token")), "s3cret");
}

TEST_F(FileUtilTest, ConcurrentWritersOfOnePathNeverMixContents) {
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([this, t] {
      std::string body(4096, static_cast<char>('a' + t));
      for (int i = 0; i < 20; ++i) ASSERT_TRUE(WriteFileAtomic(Path("state"), body).ok());
    });
  }
  for (auto& th : threads) th.join();
  std::string got = Slurp(Path("state"));
  ASSERT_EQ(got.size(), 4096u);
  EXPECT_EQ(got, std::string(4096, got[0]));
  EXPECT_EQ(Entries(), std::vector<std::string>{"state"});
}

TEST_F(FileUtilTest, WriteFileAtomicIntoMissingDirectoryIsNotFound) {
  std::string path = Path("no-such-dir/state.json");
  Status s = WriteFileAtomic(path, "x");
  EXPECT_EQ(s.code(), StatusCode::kNotFound) << s.ToString();
  EXPECT_EQ(s.posix_errno(), ENOENT);
  EXPECT_NE(s.message().find(path), std::string::npos) << s.ToString();
  EXPECT_EQ(Entries(), std::vector<std::string>{});
}

TEST_F(FileUtilTest, WriteFileAtomicOverDirectoryFailsAndCleansUp) {
  ASSERT_TRUE(std::filesystem::create_directory(Path("d")));
  Status s = WriteFileAtomic(Path("d"), "x");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.posix_errno(), EISDIR) << s.ToString();
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(Entries(), std::vector<std::string>{"d"});
}

TEST_F(FileUtilTest, WriteFileAtomicWithRelativePathWritesInCurrentDirectory) {
  std::filesystem::path old = std::filesystem::current_path();
  std::filesystem::current_path(dir_);
  Status s = WriteFileAtomic("relative.txt", "rel");
  std::filesystem::current_path(old);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(Slurp(Path("relative.txt")), "rel");
}

TEST_F(FileUtilTest, ReadFileReturnsWholeContents) {
  std::string contents(200000, 'z');
  contents[0] = '\0';
  contents.back() = '\n';
  Put(Path("f"), contents);
  StatusOr<std::string> r = ReadFile(Path("f"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, contents);
}

TEST_F(FileUtilTest, ReadFileOfEmptyFileIsEmpty) {
  Put(Path("f"), "");
  StatusOr<std::string> r = ReadFile(Path("f"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, "");
}

TEST_F(FileUtilTest, ReadFileMissingIsNotFoundWithEnoent) {
  StatusOr<std::string> r = ReadFile(Path("missing"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(r.status().posix_errno(), ENOENT);
  EXPECT_NE(r.status().message().find(Path("missing")), std::string::npos);
}

TEST_F(FileUtilTest, ReadFileOfDirectoryIsEisdir) {
  StatusOr<std::string> r = ReadFile(dir_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().posix_errno(), EISDIR) << r.status().ToString();
}

TEST_F(FileUtilTest, WriteThenReadRoundTrips) {
  std::string contents = "{\"bricks\": []}\n";
  ASSERT_TRUE(WriteFileAtomic(Path("s"), contents).ok());
  StatusOr<std::string> r = ReadFile(Path("s"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, contents);
}

TEST_F(FileUtilTest, ReadSecretFileTrimsWhitespaceAndNewline) {
  const std::pair<std::string, std::string> cases[] = {
      {"s3cret", "s3cret"},         {"s3cret\n", "s3cret"}, {"  s3cret \n", "s3cret"},
      {"\ts3cret\t\r\n", "s3cret"}, {"tok\r\n", "tok"},     {"a b\n", "a b"},
  };
  for (const auto& [contents, want] : cases) {
    Put(Path("secret"), contents);
    StatusOr<std::string> r = ReadSecretFile(Path("secret"));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(*r, want);
  }
}

TEST_F(FileUtilTest, ReadSecretFileTakesOnlyTheFirstLine) {
  Put(Path("secret"), "first\nsecond\nthird\n");
  StatusOr<std::string> r = ReadSecretFile(Path("secret"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, "first");
}

TEST_F(FileUtilTest, ReadSecretFileEmptyIsInvalidArgument) {
  for (const char* contents : {"", "\n", "   \t\r\n", "\nsecret-on-second-line\n"}) {
    Put(Path("secret"), contents);
    StatusOr<std::string> r = ReadSecretFile(Path("secret"));
    ASSERT_FALSE(r.ok()) << "contents: '" << contents << "'";
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(r.status().message().find("secret-on-second-line"), std::string::npos)
        << "the error must not leak file contents";
  }
}

TEST_F(FileUtilTest, ReadSecretFileMissingIsNotFound) {
  StatusOr<std::string> r = ReadSecretFile(Path("missing"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(r.status().posix_errno(), ENOENT);
}

TEST(ConstantTimeEquals, EqualStringsAreEqual) {
  EXPECT_TRUE(ConstantTimeEquals("", ""));
  EXPECT_TRUE(ConstantTimeEquals("token", "token"));
  EXPECT_TRUE(ConstantTimeEquals(std::string("a\0b", 3), std::string("a\0b", 3)));
}

TEST(ConstantTimeEquals, AnyDifferenceIsUnequal) {
  EXPECT_FALSE(ConstantTimeEquals("token", "tokem"));  // last byte
  EXPECT_FALSE(ConstantTimeEquals("token", "Token"));  // first byte
  EXPECT_FALSE(ConstantTimeEquals(std::string("a\0b", 3), std::string("a\0c", 3)));
}

TEST(ConstantTimeEquals, DifferentLengthsAreUnequal) {
  EXPECT_FALSE(ConstantTimeEquals("token", "token2"));
  EXPECT_FALSE(ConstantTimeEquals("token2", "token"));
  EXPECT_FALSE(ConstantTimeEquals("", "x"));
}

TEST(ProcessCmdline, ReadsArgvOfALiveProcessAndNothingOfAGoneOne) {
  auto self = ProcessCmdline(::getpid());
  ASSERT_FALSE(self.empty());
  EXPECT_NE(self[0].find("common_test"), std::string::npos) << self[0];
  EXPECT_TRUE(ProcessCmdline(0).empty());
  EXPECT_TRUE(ProcessCmdline(-5).empty());
}

TEST(UnescapeMountField, UndoesOctalEscapesOnly) {
  EXPECT_EQ(UnescapeMountField("/mnt/a\\040b"), "/mnt/a b");
  EXPECT_EQ(UnescapeMountField("x\\134y\\011"), "x\\y\t");
  EXPECT_EQ(UnescapeMountField("plain"), "plain");
  EXPECT_EQ(UnescapeMountField("bad\\09z"), "bad\\09z");  // 9 is not octal
  EXPECT_EQ(UnescapeMountField("end\\04"), "end\\04");    // too short
}

TEST(MountTable, FindsTopMountsAndMountPointsUnderADirectory) {
  auto table = ReadMountTable();
  ASSERT_TRUE(table.ok()) << table.status().ToString();
  ASSERT_FALSE(table->empty());
  ASSERT_TRUE(TopMountAt("/").has_value());
  auto proc = TopMountAt("/proc");
  ASSERT_TRUE(proc.has_value());
  EXPECT_EQ(proc->fs_type, "proc");
  EXPECT_FALSE(TopMountAt("/etc").has_value());  // a directory, not a mount point
  EXPECT_TRUE(MountPointsUnder("/no/such/dir").empty());

  // Stacked and nested tmpfs mounts, one under a name with a space (escaped in
  // mountinfo). Needs CAP_SYS_ADMIN; skipped without it.
  char tmpl[] = "/tmp/cairn-mounttable-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  const std::string a = dir + "/a b";
  ASSERT_EQ(::mkdir(a.c_str(), 0755), 0);
  if (::mount("cairn-t1", a.c_str(), "tmpfs", 0, "size=1m") != 0) {
    std::filesystem::remove_all(dir);
    GTEST_SKIP() << "cannot mount tmpfs: " << std::strerror(errno);
  }
  ASSERT_EQ(::mount("cairn-t2", a.c_str(), "tmpfs", MS_RDONLY, "size=1m"), 0);
  const std::string nested = dir + "/b";
  ASSERT_EQ(::mkdir(nested.c_str(), 0755), 0);
  ASSERT_EQ(::mount("cairn-t3", nested.c_str(), "tmpfs", 0, "size=1m"), 0);
  const std::string deep = nested + "/deeper";
  ASSERT_EQ(::mkdir(deep.c_str(), 0755), 0);
  ASSERT_EQ(::mount("cairn-t4", deep.c_str(), "tmpfs", 0, "size=1m"), 0);
  auto top = TopMountAt(a);
  ASSERT_TRUE(top.has_value());
  EXPECT_EQ(top->mount_point, a);
  EXPECT_EQ(top->fs_type, "tmpfs");
  EXPECT_EQ(top->source, "cairn-t2");  // the later, stacked one
  EXPECT_TRUE(top->read_only());
  EXPECT_FALSE(TopMountAt(nested)->read_only());
  // Each point once (a b is mounted twice), deepest first.
  EXPECT_EQ(MountPointsUnder(dir), (std::vector<std::string>{deep, a, nested}));
  for (const std::string& p : {deep, nested, a, a}) ::umount2(p.c_str(), MNT_DETACH);
  EXPECT_TRUE(MountPointsUnder(dir).empty());
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace cairn
