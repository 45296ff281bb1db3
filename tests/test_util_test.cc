// Tests of the test helpers themselves (tests/test_util.h): the process
// tests rely on them to report failures clearly and to leave nothing behind.
#include "tests/test_util.h"

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <fstream>

#include "common/id.h"

namespace cairn::test {
namespace {

bool Exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

TEST(TempDirTest, RemovesItsTreeEvenWithReadOnlyDirectories) {
  std::string path;
  {
    TempDir dir;
    path = dir.path();
    ASSERT_EQ(path.rfind("/tmp/cairn-test-", 0), 0u) << path;
    const std::string deep = dir.MakeSubdir("a/b/c");
    std::ofstream(deep + "/file") << "x";
    ASSERT_EQ(::symlink("/etc/passwd", (deep + "/link").c_str()), 0);
    ASSERT_EQ(::chmod(deep.c_str(), 0500), 0);
    ASSERT_EQ(::chmod(dir.Sub("a").c_str(), 0), 0);
  }
  EXPECT_FALSE(Exists(path));
  EXPECT_TRUE(Exists("/etc/passwd")) << "a symlink's target must never be removed";
}

TEST(BrickdProcessTest, StartFailsWithBrickdsOwnMessageWhenItExits) {
  BrickdOptions options;
  options.extra_args = {"--threads=1"};  // brickd refuses this and exits
  auto p = BrickdProcess::Start(options);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("exited before it was ready"), std::string::npos)
      << p.status().ToString();
  EXPECT_NE(p.status().message().find("--threads must be 2..1024"), std::string::npos)
      << p.status().ToString();
}

TEST(BrickdProcessTest, StartFailsClearlyWithoutAnExecutable) {
  BrickdOptions options;
  options.binary = "/nonexistent/brickd";
  auto p = BrickdProcess::Start(options);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("execv of brickd failed"), std::string::npos)
      << p.status().ToString();
}

TEST(BrickdProcessTest, RestartKeepsTokensAndPortAndDestructorReaps) {
  auto started = BrickdProcess::Start();
  ASSERT_TRUE(started.ok()) << started.status().ToString();
  std::unique_ptr<BrickdProcess> p = std::move(*started);
  const pid_t first_pid = p->pid();
  const int port = p->grpc_port();
  const std::string token = p->admin_token();
  ASSERT_TRUE(p->Running());

  auto killed = p->Kill(SIGKILL);
  ASSERT_TRUE(IsOk(killed));
  EXPECT_TRUE(WIFSIGNALED(*killed) && WTERMSIG(*killed) == SIGKILL) << DescribeWaitStatus(*killed);
  EXPECT_FALSE(p->Running());
  EXPECT_EQ(p->pid(), -1);

  ASSERT_TRUE(IsOk(p->Restart()));
  EXPECT_NE(p->pid(), first_pid);
  EXPECT_EQ(p->grpc_port(), port);
  EXPECT_EQ(p->admin_token(), token);
  BrickdClient client(p->address());
  EXPECT_TRUE(IsOk(
      client.Call(&pb::BrickAdmin::Stub::ListBricks, pb::ListBricksRequest(), p->admin_token())));

  const pid_t second_pid = p->pid();
  const std::string dir = p->dir();
  p.reset();
  // Killed and reaped: the pid names no process (not even a zombie) any more.
  EXPECT_EQ(::kill(second_pid, 0), -1);
  EXPECT_EQ(errno, ESRCH);
  EXPECT_FALSE(Exists(dir));
}

TEST(BrickdProcessTest, CallCarriesCodeAndErrno) {
  TempDir bricks;
  auto started = BrickdProcess::Start();
  ASSERT_TRUE(started.ok()) << started.status().ToString();
  BrickdProcess& p = **started;
  BrickdClient client(p.address());
  pb::AttachRequest req;
  req.set_brick_id("b1");
  req.set_path(bricks.Sub("missing"));
  auto r = client.Call(&pb::BrickAdmin::Stub::Attach, req, p.admin_token());
  EXPECT_TRUE(HasStatus(r, StatusCode::kNotFound, ENOENT));
  EXPECT_FALSE(HasStatus(r, StatusCode::kNotFound, EIO));
  EXPECT_FALSE(IsOk(r));
  // The threads and ports of a fresh brickd can be read.
  EXPECT_GT(ThreadCount(p.pid()), 1);
  auto ports = ListeningTcpPorts(p.pid());
  EXPECT_NE(std::find(ports.begin(), ports.end(), p.grpc_port()), ports.end());
  EXPECT_NE(std::find(ports.begin(), ports.end(), p.metrics_port()), ports.end());
}

}  // namespace
}  // namespace cairn::test
