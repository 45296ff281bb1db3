// cairn-fsx on the local file system: clean runs pass (with and without mmap),
// a byte flipped behind the model's back is reported, bad usage exits 2.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "tests/test_util.h"

#ifndef CAIRN_FSX_PATH
#define CAIRN_FSX_PATH "cairn-fsx"
#endif

namespace cairn::test {
namespace {

struct RunResult {
  int exit_code = -1;  // -1 if it did not exit normally
  std::string output;  // stdout and stderr, interleaved
};

// Runs cairn-fsx with `args`, capturing its output; waits for it by pid.
RunResult RunFsx(const std::vector<std::string>& args) {
  RunResult result;
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    ADD_FAILURE() << "pipe: " << std::strerror(errno);
    return result;
  }
  std::vector<std::string> argv_store = {CAIRN_FSX_PATH};
  argv_store.insert(argv_store.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : argv_store) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    dup2(fds[1], STDERR_FILENO);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(fds[1]);
  if (pid < 0) {
    ADD_FAILURE() << "fork: " << std::strerror(errno);
    close(fds[0]);
    return result;
  }
  char buf[4096];
  for (;;) {
    ssize_t n = read(fds[0], buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    result.output.append(buf, n);
  }
  close(fds[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  return result;
}

class FsxLocalTest : public ::testing::Test {
 protected:
  TempDir dir_{"cairn-fsx-test"};
  std::string file_ = dir_.Sub("fsx-file");
};

TEST_F(FsxLocalTest, CleanRunPasses) {
  RunResult r = RunFsx({"--ops", "20000", "--seed", "1", file_});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("20000 ops OK"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("seed 1"), std::string::npos) << r.output;
}

TEST_F(FsxLocalTest, CleanRunWithMmapPasses) {
  RunResult r = RunFsx({"--ops", "20000", "--seed", "2", "--mmap", file_});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("mmap_write"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("mmap_read"), std::string::npos) << r.output;
}

TEST_F(FsxLocalTest, SmallFileManyReopensAndVerifications) {
  RunResult r = RunFsx({"--ops", "20000", "--max-size", "64K", "--max-io", "8K", "--reopen-every",
                        "50", "--verify-every", "100", "--fsync-every", "500", "--mmap",
                        "--tolerate-errno", "EIO,EROFS", file_});
  EXPECT_EQ(r.exit_code, 0) << r.output;
}

TEST_F(FsxLocalTest, TimeBasedSeedIsPrinted) {
  RunResult r = RunFsx({"--ops", "100", "--quiet", file_});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("seed "), std::string::npos) << r.output;
}

TEST_F(FsxLocalTest, DetectsCorruption) {
  for (const char* extra : {"--no-mmap", "--mmap"}) {
    RunResult r = RunFsx({"--ops", "4000", "--seed", "3", "--self-test-corrupt", extra, file_});
    EXPECT_EQ(r.exit_code, 1) << extra << "\n" << r.output;
    EXPECT_NE(r.output.find("mismatch"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("seed 3"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("first differing offset"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("last 100 ops"), std::string::npos) << r.output;
  }
}

TEST_F(FsxLocalTest, BadUsageExits2) {
  const std::vector<std::vector<std::string>> cases = {
      {},
      {"--ops", "10"},
      {"--ops", "ten", file_},
      {"--ops", "-1", file_},
      {"--bogus", file_},
      {"--max-size", "lots", file_},
      {"--max-size", "64K", "--max-io", "1M", file_},
      {"--tolerate-errno", "EBOGUS", file_},
      {file_, file_ + "2"},
  };
  for (const auto& args : cases) {
    RunResult r = RunFsx(args);
    std::string joined;
    for (const std::string& a : args) joined += a + " ";
    EXPECT_EQ(r.exit_code, 2) << joined << "\n" << r.output;
    EXPECT_NE(r.output.find("cairn-fsx: "), std::string::npos) << joined << "\n" << r.output;
  }
  RunResult help = RunFsx({"--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.output.find("usage: cairn-fsx"), std::string::npos) << help.output;
  EXPECT_EQ(help.output.find("self-test"), std::string::npos) << help.output;
}

TEST_F(FsxLocalTest, FailsOnUnwritableFile) {
  RunResult r = RunFsx({"--ops", "10", dir_.Sub("missing-dir/file")});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("ENOENT"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace cairn::test
