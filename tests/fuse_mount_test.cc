// cairn-mount as a program: one clear line and a non-zero exit for every
// mount error (bad spec, missing spec, bad mount point, already mounted,
// unreachable bricks, bad option), also when going to the background; clean
// unmount on SIGTERM, SIGINT, fusermount3 -u and umount; read-only mounts; the
// token never reaches the log.
#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "client/spec.h"
#include "common/file_util.h"
#include "tests/cluster_util.h"
#include "tests/mount_util.h"
#include "tests/test_util.h"

namespace cairn::test {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

bool FuseAvailable() { return ::access("/dev/fuse", R_OK | W_OK) == 0 && ::geteuid() == 0; }

// Counts the lines of `s` that are not empty.
int Lines(const std::string& s) {
  int n = 0;
  size_t pos = 0;
  while (pos < s.size()) {
    size_t end = s.find('\n', pos);
    if (end == std::string::npos) end = s.size();
    if (end > pos) ++n;
    pos = end + 1;
  }
  return n;
}

// A spec of a replica-3 volume whose bricks nobody serves.
std::string UnreachableSpec() {
  client::VolumeSpec spec;
  spec.volume_id = Uuid::Random();
  spec.name = "unreachable";
  spec.type = client::VolumeSpec::Type::kReplicate;
  spec.replica = 3;
  spec.generation = 1;
  spec.subvolumes = {{{.node = "127.0.0.9:9", .brick_id = "b1"},
                      {.node = "127.0.0.9:10", .brick_id = "b2"},
                      {.node = "127.0.0.9:11", .brick_id = "b3"}}};
  return spec.ToJson();
}

CommandResult RunMount(std::vector<std::string> args, milliseconds timeout = seconds(60)) {
  args.insert(args.begin(), CairnMountBinary());
  auto r = RunCommand(args, timeout);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : CommandResult{};
}

class FuseMountErrorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!FuseAvailable()) GTEST_SKIP() << "needs root and /dev/fuse";
    ASSERT_TRUE(IsOk(WriteFileAtomic(dir_.Sub("unreachable.json"), UnreachableSpec())));
  }
  std::string Spec() const { return dir_.Sub("unreachable.json"); }

  TempDir dir_{"cairn-mount-errors"};
};

TEST_F(FuseMountErrorsTest, HelpAndVersion) {
  auto help = RunMount({"-h"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.output.find("usage: cairn-mount"), std::string::npos) << help.output;
  EXPECT_NE(help.output.find("token_file="), std::string::npos);
  auto version = RunMount({"-V"});
  EXPECT_EQ(version.exit_code, 0);
  EXPECT_TRUE(version.output.starts_with("cairn-mount ")) << version.output;
}

TEST_F(FuseMountErrorsTest, BadUsageAndOptionValues) {
  const std::string mnt = dir_.MakeSubdir("mnt");
  struct Case {
    std::vector<std::string> args;
    std::string want;
  };
  const std::vector<Case> cases = {
      {{"-o", "entry_timeout=abc", Spec(), mnt}, "bad value for entry_timeout: 'abc'"},
      {{"-o", "attr_timeout=-1", Spec(), mnt}, "bad value for attr_timeout"},
      {{"-o", "log_level=loud", Spec(), mnt}, "bad value for log_level"},
      {{"-o", "bogus_option", Spec(), mnt}, "unknown mount option 'bogus_option'"},
      {{"--frobnicate", Spec(), mnt}, "unknown argument '--frobnicate'"},
      {{Spec()}, "expected SPEC_FILE and MOUNTPOINT"},
  };
  for (const auto& c : cases) {
    auto r = RunMount(c.args);
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_NE(r.output.find("cairn-mount: " + c.want), std::string::npos) << r.output;
    EXPECT_EQ(Lines(r.output), 1) << r.output;
  }
}

TEST_F(FuseMountErrorsTest, SpecErrors) {
  const std::string mnt = dir_.MakeSubdir("mnt");
  // Missing file: the path is named.
  auto missing = RunMount({"-f", dir_.Sub("nope.json"), mnt});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.output.find("nope.json"), std::string::npos) << missing.output;
  EXPECT_EQ(Lines(missing.output), 1) << missing.output;
  // Not JSON.
  ASSERT_TRUE(IsOk(WriteFileAtomic(dir_.Sub("junk.json"), "{not json")));
  auto junk = RunMount({"-f", dir_.Sub("junk.json"), mnt});
  EXPECT_EQ(junk.exit_code, 1);
  EXPECT_TRUE(junk.output.starts_with("cairn-mount: ")) << junk.output;
  EXPECT_NE(junk.output.find("junk.json"), std::string::npos) << junk.output;
  EXPECT_EQ(Lines(junk.output), 1) << junk.output;
  // A field wrong: the field is named.
  auto j = nlohmann::json::parse(UnreachableSpec());
  j["replica"] = "three";
  ASSERT_TRUE(IsOk(WriteFileAtomic(dir_.Sub("field.json"), j.dump())));
  auto field = RunMount({"-f", dir_.Sub("field.json"), mnt});
  EXPECT_EQ(field.exit_code, 1);
  EXPECT_NE(field.output.find("replica"), std::string::npos) << field.output;
  EXPECT_EQ(Lines(field.output), 1) << field.output;
  // A missing token file.
  auto token = RunMount({"-f", "-o", "token_file=" + dir_.Sub("no-token"), Spec(), mnt});
  EXPECT_EQ(token.exit_code, 1);
  EXPECT_NE(token.output.find("no-token"), std::string::npos) << token.output;
}

TEST_F(FuseMountErrorsTest, BadMountPoint) {
  auto missing = RunMount({"-f", Spec(), dir_.Sub("no-such-dir")});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.output.find("mount point " + dir_.Sub("no-such-dir") + " does not exist"),
            std::string::npos)
      << missing.output;
  EXPECT_EQ(Lines(missing.output), 1) << missing.output;
  ASSERT_TRUE(IsOk(WriteFileAtomic(dir_.Sub("file"), "x")));
  auto file = RunMount({"-f", Spec(), dir_.Sub("file")});
  EXPECT_EQ(file.exit_code, 1);
  EXPECT_NE(file.output.find("is not a directory"), std::string::npos) << file.output;
}

TEST_F(FuseMountErrorsTest, UnreachableBricksFailTheMount) {
  const std::string mnt = dir_.MakeSubdir("mnt");
  for (bool foreground : {true, false}) {
    std::vector<std::string> args = {"-o", "connect_timeout=2", Spec(), mnt};
    if (foreground) args.insert(args.begin(), "-f");
    const auto start = std::chrono::steady_clock::now();
    auto r = RunMount(args, seconds(30));
    const auto took = std::chrono::steady_clock::now() - start;
    SCOPED_TRACE(foreground ? "foreground" : "background");
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_NE(r.output.find("cairn-mount: cannot open volume unreachable"), std::string::npos)
        << r.output;
    EXPECT_NE(r.output.find("127.0.0.9"), std::string::npos) << "bricks not named: " << r.output;
    EXPECT_LT(took, seconds(15));
    auto info = FindMount(mnt);
    ASSERT_TRUE(info.ok());
    EXPECT_EQ(info->fstype, "") << "left a mount behind";
  }
}

// ---------------------------------------------------------------------------
// With a real volume.

class FuseMountTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!FuseAvailable()) GTEST_SKIP() << "needs root and /dev/fuse";
    auto cluster = TestCluster::Start({.nodes = 3, .replica = 3});
    ASSERT_TRUE(cluster.ok()) << cluster.status().ToString();
    cluster_ = std::move(*cluster);
  }

  std::unique_ptr<TestCluster> cluster_;
};

TEST_F(FuseMountTest, AlreadyMounted) {
  auto mount = FuseMount::Start(*cluster_);
  ASSERT_TRUE(mount.ok()) << mount.status().ToString();
  auto r = RunMount({"-f", "-o", "token_file=" + cluster_->token_path(), cluster_->spec_path(),
                     (*mount)->path()});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("is already mounted (" + cluster_->spec().name + " fuse.cairn)"),
            std::string::npos)
      << r.output;
  EXPECT_EQ(Lines(r.output), 1) << r.output;
  // The first mount is untouched.
  EXPECT_TRUE((*mount)->Mounted());
  EXPECT_TRUE(IsOk(WriteFileAtomic((*mount)->Path("still-works"), "yes")));
  EXPECT_TRUE(IsOk((*mount)->Unmount()));
}

TEST_F(FuseMountTest, TerminationSignalsUnmountCleanly) {
  for (int sig : {SIGTERM, SIGINT, SIGHUP}) {
    SCOPED_TRACE(strsignal(sig));
    auto mount = FuseMount::Start(*cluster_);
    ASSERT_TRUE(mount.ok()) << mount.status().ToString();
    ASSERT_TRUE(IsOk(WriteFileAtomic((*mount)->Path("f"), "data")));
    ASSERT_TRUE(IsOk((*mount)->Signal(sig)));
    auto status = (*mount)->Wait(seconds(15));
    ASSERT_TRUE(status.ok()) << status.status().ToString() << "\n" << (*mount)->Log();
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
        << DescribeWaitStatus(*status) << "\n"
        << (*mount)->Log();
    EXPECT_FALSE((*mount)->Mounted()) << "mount left behind";
    EXPECT_NE((*mount)->Log().find("event=unmounted"), std::string::npos) << (*mount)->Log();
  }
}

TEST_F(FuseMountTest, UmountCommandEndsTheProcess) {
  auto mount = FuseMount::Start(*cluster_);
  ASSERT_TRUE(mount.ok()) << mount.status().ToString();
  auto r = RunCommand({"umount", (*mount)->path()});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exit_code, 0) << r->output;
  auto status = (*mount)->Wait(seconds(15));
  ASSERT_TRUE(status.ok()) << status.status().ToString();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << DescribeWaitStatus(*status);
}

TEST_F(FuseMountTest, BackgroundMountReportsSuccessAndGoesAwayOnUnmount) {
  TempDir mnt_dir("cairn-mnt-bg");
  const std::string mnt = mnt_dir.MakeSubdir("m");
  const std::string log = cluster_->dir().Sub("bg.log");
  auto r = RunMount({"-o", "token_file=" + cluster_->token_path() + ",log_file=" + log,
                     cluster_->spec_path(), mnt},
                    seconds(30));
  // Whatever happens below, the mount must not outlive the test.
  struct Cleanup {
    std::string path;
    ~Cleanup() {
      auto info = FindMount(path);
      if (info.ok() && info->fstype == "fuse.cairn") ::umount2(path.c_str(), MNT_DETACH);
    }
  } cleanup{mnt};
  ASSERT_EQ(r.exit_code, 0) << r.output << ReadFileOrEmpty(log);
  EXPECT_EQ(r.output, "") << "the parent printed something on success";
  auto info = FindMount(mnt);
  ASSERT_TRUE(info.ok());
  ASSERT_EQ(info->fstype, "fuse.cairn") << "mounted only after the parent exited?";
  EXPECT_TRUE(IsOk(WriteFileAtomic(mnt + "/bg", "background")));
  EXPECT_EQ(ReadFileOrEmpty(mnt + "/bg"), "background");
  // The daemon's pid, from its log.
  std::smatch m;
  const std::string text = ReadFileOrEmpty(log);
  ASSERT_TRUE(std::regex_search(text, m, std::regex("event=mounted .* pid=([0-9]+)"))) << text;
  const pid_t daemon = static_cast<pid_t>(std::stol(m[1]));
  auto u = RunCommand({"fusermount3", "-u", mnt});
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->exit_code, 0) << u->output;
  // It exits by itself (no kill needed).
  const auto deadline = std::chrono::steady_clock::now() + seconds(15);
  while (::kill(daemon, 0) == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(20));
  }
  EXPECT_NE(::kill(daemon, 0), 0) << "cairn-mount (pid " << daemon << ") still runs";
  EXPECT_NE(ReadFileOrEmpty(log).find("event=unmounted"), std::string::npos)
      << ReadFileOrEmpty(log);
}

TEST_F(FuseMountTest, LogNeverContainsTheToken) {
  MountOptions options;
  options.log_level = "trace";
  auto mount = FuseMount::Start(*cluster_, options);
  ASSERT_TRUE(mount.ok()) << mount.status().ToString();
  ASSERT_TRUE(IsOk(WriteFileAtomic((*mount)->Path("f"), "data")));
  EXPECT_TRUE(IsOk((*mount)->Unmount()));
  const std::string log = (*mount)->Log();
  EXPECT_NE(log.find("event=mounted"), std::string::npos) << log;
  EXPECT_EQ(log.find(cluster_->token()), std::string::npos) << "the token is in the log";
}

TEST_F(FuseMountTest, ReadOnlyMount) {
  {
    auto rw = FuseMount::Start(*cluster_);
    ASSERT_TRUE(rw.ok());
    ASSERT_TRUE(IsOk(WriteFileAtomic((*rw)->Path("existing"), "before")));
    ASSERT_TRUE(IsOk((*rw)->Unmount()));
  }
  MountOptions options;
  options.extra_options = {"ro"};
  auto mount = FuseMount::Start(*cluster_, options);
  ASSERT_TRUE(mount.ok()) << mount.status().ToString();
  EXPECT_EQ(ReadFileOrEmpty((*mount)->Path("existing")), "before");
  errno = 0;
  EXPECT_EQ(::open((*mount)->Path("new").c_str(), O_WRONLY | O_CREAT, 0644), -1);
  EXPECT_EQ(errno, EROFS);
  errno = 0;
  EXPECT_EQ(::open((*mount)->Path("existing").c_str(), O_WRONLY), -1);
  EXPECT_EQ(errno, EROFS);
  EXPECT_EQ(::mkdir((*mount)->Path("d").c_str(), 0755), -1);
  auto info = FindMount((*mount)->path());
  ASSERT_TRUE(info.ok());
  EXPECT_TRUE(info->options.starts_with("ro")) << info->options;
}

TEST_F(FuseMountTest, TwoMountsOfOneVolumeSeeEachOther) {
  auto a = FuseMount::Start(*cluster_);
  auto b = FuseMount::Start(*cluster_);
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_TRUE(IsOk(WriteFileAtomic((*a)->Path("from-a"), "hello from a")));
  // A name new to b (no negative caching by default).
  EXPECT_EQ(ReadFileOrEmpty((*b)->Path("from-a")), "hello from a");
  ASSERT_EQ(::mkdir((*b)->Path("dir-b").c_str(), 0755), 0);
  struct stat st;
  EXPECT_EQ(::stat((*a)->Path("dir-b").c_str(), &st), 0);
  // Data rewritten through b is read through a once a's caches expire
  // (attr_timeout 1 s; the page cache is dropped at open).
  ASSERT_TRUE(IsOk(WriteFileAtomic((*b)->Path("shared"), "version 1")));
  EXPECT_EQ(ReadFileOrEmpty((*a)->Path("shared")), "version 1");
  {
    int fd = ::open((*b)->Path("shared").c_str(), O_WRONLY | O_TRUNC);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::write(fd, "version 2!", 10), 10);
    ::close(fd);
  }
  std::this_thread::sleep_for(milliseconds(1200));
  EXPECT_EQ(ReadFileOrEmpty((*a)->Path("shared")), "version 2!");
  EXPECT_TRUE(IsOk((*a)->Unmount()));
  EXPECT_TRUE(IsOk((*b)->Unmount()));
}

}  // namespace
}  // namespace cairn::test
