// cairn-mount with a server source (`host[:port][,...]:/volume`) against
// storaged nodes: the spec is fetched (from a backup server when the first is
// down), unknown volumes and bad sources are clear errors, newer generations
// are followed, and a mount carries on while storaged restarts a killed brickd.
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>

#include "common/file_util.h"
#include "common/id.h"
#include "tests/node_cluster.h"

namespace cairn::test {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using S = spb::Storaged::Stub;

std::string HasText(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos ? "" : "'" + needle + "' not in: " + haystack;
}
#define EXPECT_CONTAINS(haystack, needle) EXPECT_EQ(HasText((haystack), (needle)), "")

bool WaitFor(const std::function<bool()>& pred, milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(milliseconds(20));
  }
  return pred();
}

std::unique_ptr<NodeCluster> MustStart(NodeClusterOptions o) {
  auto c = NodeCluster::Start(std::move(o));
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return c.ok() ? std::move(*c) : nullptr;
}

bool WriteAll(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
  out.close();
  return out.good();
}

std::string ReadAll(const std::string& path) { return ReadFileOrEmpty(path); }

// Reaps our zombie children named cairn-mount: the daemon half of a
// background cairn-mount that failed is an orphan, and the test process (a
// child subreaper, see NodeCluster) inherits it.
void ReapMountZombies() {
  const auto deadline = Clock::now() + std::chrono::seconds(2);
  do {
    DIR* proc = ::opendir("/proc");
    if (proc == nullptr) return;
    int reaped = 0;
    while (dirent* e = ::readdir(proc)) {
      const pid_t pid = static_cast<pid_t>(std::atoi(e->d_name));
      if (pid <= 0) continue;
      const std::string status = ReadFileOrEmpty("/proc/" + std::to_string(pid) + "/status");
      if (status.find("Name:\tcairn-mount\n") == std::string::npos ||
          status.find("State:\tZ") == std::string::npos ||
          status.find("\nPPid:\t" + std::to_string(::getpid()) + "\n") == std::string::npos) {
        continue;
      }
      if (::waitpid(pid, nullptr, WNOHANG) == pid) ++reaped;
    }
    ::closedir(proc);
    if (reaped > 0) return;
    std::this_thread::sleep_for(milliseconds(20));
  } while (Clock::now() < deadline);
}

int Lines(const std::string& s) {
  int n = 0;
  for (char ch : s) n += ch == '\n';
  return n;
}

TEST(StoragedMountTest, ServerSourceMountCarriesOnWhileBrickdRestarts) {
  auto c = MustStart({.nodes = 3, .replica = 3});
  ASSERT_NE(c, nullptr);
  auto mount = c->Mount();
  ASSERT_TRUE(mount.ok()) << mount.status().ToString();
  auto info = FindMount((*mount)->path());
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->source, "testvol");
  EXPECT_CONTAINS((*mount)->Log(),
                  "event=spec-fetched volume=testvol generation=1 server=" + c->api_address(0));
  ASSERT_TRUE(WriteAll((*mount)->Path("hello"), "hello world"));
  EXPECT_EQ(ReadAll((*mount)->Path("hello")), "hello world");
  struct stat st;
  for (int r = 0; r < 3; ++r) {
    EXPECT_EQ(::stat((c->brick_path(0, r) + "/hello").c_str(), &st), 0) << "replica " << r;
  }

  // A writer appends through the mount the whole time brickd of node 1 is
  // killed and restarted by its storaged.
  std::atomic<bool> stop{false};
  std::atomic<int> errors{0};
  std::atomic<int> chunks{0};
  const std::string chunk(64 << 10, 'z');
  std::string first_error;
  std::thread writer([&] {
    int fd = ::open((*mount)->Path("stream").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd < 0) {
      errors++;
      return;
    }
    while (!stop.load()) {
      ssize_t n = ::write(fd, chunk.data(), chunk.size());
      if (n != static_cast<ssize_t>(chunk.size())) {
        if (errors++ == 0) first_error = std::strerror(errno);
      } else {
        chunks++;
      }
      std::this_thread::sleep_for(milliseconds(10));
    }
    if (::close(fd) != 0) errors++;
  });
  std::this_thread::sleep_for(milliseconds(500));
  auto old = c->brickd_pid(1);
  ASSERT_TRUE(IsOk(old));
  auto killed_at = Clock::now();
  ASSERT_TRUE(IsOk(c->KillBrickd(1)));
  ASSERT_TRUE(WaitFor([&] { return !ProcessAlive(*old); }, std::chrono::seconds(5)));
  Clock::time_point serving = Clock::time_point::max();
  while (Clock::now() - killed_at < std::chrono::seconds(30)) {
    BrickdClient b(c->brickd_address(1));
    pb::StatFsRequest req;
    req.set_brick_id(c->brick_id(0, 1));
    if (b.Call(&pb::Brick::Stub::StatFs, req, c->token(), milliseconds(300)).ok()) {
      serving = Clock::now();
      break;
    }
    std::this_thread::sleep_for(milliseconds(5));
  }
  ASSERT_NE(serving, Clock::time_point::max()) << c->Log(1);
  const auto ms = std::chrono::duration_cast<milliseconds>(serving - killed_at).count();
  std::printf("[ measure  ] kill -9 brickd under a mount -> brick serving again: %lld ms\n",
              static_cast<long long>(ms));
  RecordProperty("brickd_restart_ms", static_cast<int>(ms));
  EXPECT_LT(ms, 2000);
  const int before = chunks.load();
  std::this_thread::sleep_for(std::chrono::seconds(2));
  stop = true;
  writer.join();
  EXPECT_EQ(errors.load(), 0) << "writes failed through the mount: " << first_error;
  EXPECT_GT(chunks.load(), before) << "writes stopped after the restart";
  const std::string streamed = ReadAll((*mount)->Path("stream"));
  EXPECT_EQ(streamed.size(), static_cast<size_t>(chunks.load()) * chunk.size());
  EXPECT_EQ(streamed.find_first_not_of('z'), std::string::npos);

  // New files reach the restarted brick once the client has reconnected.
  EXPECT_TRUE(WaitFor(
      [&] {
        static int n = 0;
        const std::string name = "late" + std::to_string(n++);
        if (!WriteAll((*mount)->Path(name), "x")) return false;
        return ::stat((c->brick_path(0, 1) + "/" + name).c_str(), &st) == 0;
      },
      std::chrono::seconds(15)));
  EXPECT_EQ(ReadAll((*mount)->Path("hello")), "hello world");
  EXPECT_TRUE(IsOk((*mount)->Unmount()));
}

TEST(StoragedMountTest, BackupServerWhenTheFirstIsDown) {
  auto c = MustStart({.nodes = 3, .replica = 3});
  ASSERT_NE(c, nullptr);
  const std::string source = c->mount_source({0, 1});
  ASSERT_TRUE(IsOk(c->StopNode(0)));  // storaged and its brickd: quorum is 2 of 3
  MountOptions options;
  options.extra_options = {"connect_timeout=3"};  // Open waits this long for the stopped brick
  auto mount = c->Mount(options, source);
  ASSERT_TRUE(mount.ok()) << mount.status().ToString();
  EXPECT_CONTAINS((*mount)->Log(), "server=" + c->api_address(1));
  ASSERT_TRUE(WriteAll((*mount)->Path("f"), "via the backup"));
  EXPECT_EQ(ReadAll((*mount)->Path("f")), "via the backup");
  EXPECT_TRUE(IsOk((*mount)->Unmount()));
}

TEST(StoragedMountTest, ClearErrorsForUnknownVolumesAndBadSources) {
  auto c = MustStart({.nodes = 1, .replica = 1});
  ASSERT_NE(c, nullptr);
  const std::string mnt = c->dir().MakeSubdir("mnt-errors");
  auto run = [&](const std::string& source, bool foreground = true, const std::string& token = "") {
    std::vector<std::string> argv = {CairnMountBinary()};
    if (foreground) argv.push_back("-f");
    argv.push_back("-o");
    argv.push_back("token_file=" + (token.empty() ? c->token_path() : token));
    argv.push_back(source);
    argv.push_back(mnt);
    auto r = RunCommand(argv, std::chrono::seconds(60));
    EXPECT_TRUE(r.ok());
    return r.ok() ? *r : CommandResult{};
  };
  const std::string api = c->api_address(0);
  for (bool fg : {true, false}) {
    auto unknown = run(api + ":/nope", fg);
    EXPECT_EQ(unknown.exit_code, 1) << unknown.output;
    EXPECT_CONTAINS(unknown.output, "cairn-mount: volume nope not found");
    EXPECT_CONTAINS(unknown.output, api);
    EXPECT_EQ(Lines(unknown.output), 1) << unknown.output;
    if (!fg) ReapMountZombies();
  }
  auto down = run("127.0.0.9:1:/testvol");
  EXPECT_EQ(down.exit_code, 1);
  EXPECT_CONTAINS(down.output, "cannot fetch the volume spec");
  EXPECT_CONTAINS(down.output, "127.0.0.9:1");
  EXPECT_EQ(Lines(down.output), 1) << down.output;
  ASSERT_TRUE(WriteFileAtomic(c->dir().Sub("bad.token"), "wrong\n").ok());
  auto token = run(api + ":/testvol", true, c->dir().Sub("bad.token"));
  EXPECT_EQ(token.exit_code, 1);
  EXPECT_CONTAINS(token.output, "UNAUTHENTICATED");
  auto bad = run(api + ":/a/b");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_CONTAINS(bad.output, "cairn-mount: SOURCE");
  auto neither = run("no-such-spec.json");
  EXPECT_EQ(neither.exit_code, 1);
  EXPECT_CONTAINS(neither.output, "no-such-spec.json");
  EXPECT_CONTAINS(neither.output, "host[:port]");
  EXPECT_EQ(Lines(neither.output), 1) << neither.output;
  auto found = FindMount(mnt);
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(found->fstype, "") << "something got mounted";
  // The token is never logged.
  EXPECT_EQ(c->Log(0).find(c->token()), std::string::npos);
}

TEST(StoragedMountTest, NewerGenerationsAreLogged) {
  auto c = MustStart({.nodes = 3, .replica = 3});
  ASSERT_NE(c, nullptr);
  auto mount = c->Mount();
  ASSERT_TRUE(mount.ok()) << mount.status().ToString();
  client::VolumeSpec spec = c->spec();
  spec.generation = 2;
  for (int i = 0; i < c->nodes(); ++i) {
    spb::PutVolumeSpecRequest put;
    put.set_spec_json(spec.ToJson());
    ASSERT_TRUE(IsOk(c->client(i).Call(&S::PutVolumeSpec, put)));
  }
  ASSERT_TRUE(WaitFor(
      [&] {
        return (*mount)->Log().find("event=spec_generation volume=testvol generation=2") !=
               std::string::npos;
      },
      std::chrono::seconds(10)))
      << (*mount)->Log();
  EXPECT_EQ((*mount)->Log().find("event=spec-topology-changed"), std::string::npos);

  // Other bricks: logged as needing a remount; the mount keeps working.
  spb::CreateBrickRequest cr;
  cr.set_device_id("dev0");
  cr.set_brick_id("extra");
  cr.set_capacity_bytes(1 << 20);
  ASSERT_TRUE(IsOk(c->client(0).Call(&S::CreateBrick, cr)));
  spec.generation = 3;
  spec.subvolumes[0][0].brick_id = "extra";
  spb::PutVolumeSpecRequest put;
  put.set_spec_json(spec.ToJson());
  ASSERT_TRUE(IsOk(c->client(0).Call(&S::PutVolumeSpec, put)));
  ASSERT_TRUE(WaitFor(
      [&] {
        return (*mount)->Log().find("event=spec-topology-changed volume=testvol generation=3") !=
               std::string::npos;
      },
      std::chrono::seconds(10)))
      << (*mount)->Log();
  EXPECT_CONTAINS((*mount)->Log(), "remount needed");
  ASSERT_TRUE(WriteAll((*mount)->Path("still"), "works"));
  EXPECT_EQ(ReadAll((*mount)->Path("still")), "works");
  EXPECT_TRUE(IsOk((*mount)->Unmount()));
}

}  // namespace
}  // namespace cairn::test
