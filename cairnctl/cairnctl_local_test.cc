// End to end: the real `cairnctl local up` (cairn-provisioner and three
// storaged, each with its brickd), a volume created, mounted with
// cairn-mount, written and read through the mount, listed, and `local down
// --purge`. Ports are picked by the programs (--port 0, --storaged-port 0), so
// a developer's running cluster on 8080/24007 is not disturbed. Needs root
// and /dev/fuse (like every FUSE test). The fixture unmounts and runs `local
// down` even when a test fails.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cairnctl/local_cluster.h"
#include "common/file_util.h"

#ifndef CAIRNCTL_PATH
#define CAIRNCTL_PATH "cairnctl"
#endif

extern char** environ;

namespace cairn::ctl {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct Result {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

bool Mounted(const std::string& path) { return TopMountAt(path).has_value(); }

class CairnctlLocalCluster : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0 || ::access("/dev/fuse", R_OK | W_OK) != 0) {
      GTEST_SKIP() << "needs root and /dev/fuse";
    }
    std::string tmpl = "/tmp/cairnctl-local-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
    dir_ = root_ + "/cluster";
    config_ = root_ + "/home/.cairn/config";
    mnt_ = root_ + "/mnt";
    ASSERT_EQ(::mkdir(mnt_.c_str(), 0755), 0);
  }

  void TearDown() override {
    if (root_.empty()) return;
    // Always: nothing mounted, nothing running, nothing left.
    if (Mounted(mnt_)) {
      Run({"fusermount3", "-u", mnt_}, std::chrono::seconds(20), /*path_lookup=*/true);
      if (Mounted(mnt_)) ::umount2(mnt_.c_str(), MNT_DETACH);
    }
    std::vector<std::pair<pid_t, std::string>> recorded = RecordedProcesses();
    if (fs::exists(dir_ + "/cluster.json")) {
      Result down = Ctl({"local", "down", "--dir", dir_, "--purge"});
      if (down.exit_code != 0) ADD_FAILURE() << "local down in TearDown: " << down.output;
    }
    // Belt and braces: a recorded process still running is killed by pid.
    for (const auto& [pid, binary] : recorded) {
      auto args = ProcessCmdline(pid);
      if (!args.empty() && fs::path(args[0]).filename() == fs::path(binary).filename()) {
        ADD_FAILURE() << binary << " (pid " << pid << ") survived local down";
        ::kill(pid, SIGKILL);
      }
    }
    if (!Mounted(mnt_)) {
      std::error_code ec;
      fs::remove_all(root_, ec);
    }
  }

  // Runs a program to completion with HOME in the test dir, CAIRN_CONFIG set
  // and no other CAIRN_/HEKETI_CLI_ settings; kills it after `timeout`.
  Result Run(const std::vector<std::string>& args,
             std::chrono::milliseconds timeout = std::chrono::seconds(120),
             bool path_lookup = false) {
    std::vector<std::string> env_store;
    for (char** e = environ; *e != nullptr; ++e) {
      std::string kv = *e;
      if (kv.rfind("CAIRN_", 0) == 0 || kv.rfind("HEKETI_CLI_", 0) == 0 ||
          kv.rfind("HOME=", 0) == 0) {
        continue;
      }
      env_store.push_back(kv);
    }
    env_store.push_back("HOME=" + root_ + "/home");
    env_store.push_back("CAIRN_CONFIG=" + config_);
    std::vector<char*> envp;
    for (auto& kv : env_store) envp.push_back(kv.data());
    envp.push_back(nullptr);
    std::vector<std::string> store = args;
    std::vector<char*> argv;
    for (auto& a : store) argv.push_back(a.data());
    argv.push_back(nullptr);

    Result r;
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
      r.output = "pipe failed";
      return r;
    }
    const pid_t parent = ::getpid();
    pid_t pid = ::fork();
    if (pid == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(127);
      int null_fd = ::open("/dev/null", O_RDONLY);
      ::dup2(null_fd, 0);
      ::dup2(fds[1], 1);
      ::dup2(fds[1], 2);
      ::syscall(SYS_close_range, 3U, ~0U, 0U);
      if (path_lookup) {
        ::execvpe(argv[0], argv.data(), envp.data());
      } else {
        ::execve(argv[0], argv.data(), envp.data());
      }
      ::_exit(127);
    }
    ::close(fds[1]);
    if (pid < 0) {
      ::close(fds[0]);
      r.output = "fork failed";
      return r;
    }
    // Read until EOF (our child and anything holding the pipe closed it) or the deadline.
    const auto deadline = Clock::now() + timeout;
    ::fcntl(fds[0], F_SETFL, O_NONBLOCK);
    char buf[4096];
    for (;;) {
      ssize_t n = ::read(fds[0], buf, sizeof(buf));
      if (n > 0) {
        r.output.append(buf, static_cast<size_t>(n));
        continue;
      }
      if (n == 0) break;
      if (Clock::now() > deadline) {
        ::kill(pid, SIGKILL);
        r.output += "\n[killed after " + std::to_string(timeout.count() / 1000) + " s]";
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ::close(fds[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return r;
  }

  Result Ctl(std::vector<std::string> args,
             std::chrono::milliseconds timeout = std::chrono::seconds(120)) {
    args.insert(args.begin(), CAIRNCTL_PATH);
    return Run(args, timeout);
  }

  std::vector<std::pair<pid_t, std::string>> RecordedProcesses() {
    std::vector<std::pair<pid_t, std::string>> out;
    auto text = ReadFile(dir_ + "/cluster.json");
    if (!text.ok()) return out;
    json j = json::parse(*text, nullptr, false);
    if (j.is_discarded()) return out;
    for (const auto& p : j.value("processes", json::array())) {
      out.emplace_back(p.value("pid", -1), p.value("binary", ""));
    }
    return out;
  }

  std::string root_, dir_, config_, mnt_;
};

TEST_F(CairnctlLocalCluster, UpCreateMountWriteListDown) {
  // Up: provisioner + 3 nodes, ports picked by the programs.
  Result up = Ctl({"local", "up", "--dir", dir_, "--nodes", "3", "--port", "0", "--storaged-port",
                   "0", "--device-size", "2"});
  ASSERT_EQ(up.exit_code, 0) << up.output;
  EXPECT_NE(up.output.find("provisioner  http://127.0.0.1:"), std::string::npos) << up.output;
  EXPECT_NE(up.output.find("node-2"), std::string::npos) << up.output;
  EXPECT_NE(up.output.find(dir_ + "/logs"), std::string::npos) << up.output;

  // The context file points at it; the secrets are private and distinct.
  auto ctx_text = ReadFile(config_);
  ASSERT_TRUE(ctx_text.ok()) << "no context file " << config_;
  json ctx = json::parse(*ctx_text);
  EXPECT_EQ(ctx["local_dir"], dir_);
  EXPECT_EQ(ctx["user"], "admin");
  EXPECT_EQ(ctx["key_file"], dir_ + "/admin.key");
  EXPECT_EQ(ctx["data_token_file"], dir_ + "/data.token");
  for (const char* f : {"admin.key", "user.key", "join.key", "node.token", "data.token"}) {
    struct stat st;
    ASSERT_EQ(::stat((dir_ + "/" + f).c_str(), &st), 0) << f;
    EXPECT_EQ(st.st_mode & 0777, 0600u) << f;
  }
  EXPECT_NE(*ReadSecretFile(dir_ + "/node.token"), *ReadSecretFile(dir_ + "/data.token"));
  // The provisioner, three storaged and the CSI driver (on DIR/csi.sock).
  auto procs = RecordedProcesses();
  ASSERT_EQ(procs.size(), 5u);
  EXPECT_NE(up.output.find("cairn-csi unix://" + dir_ + "/csi.sock"), std::string::npos)
      << up.output;
  struct stat sock;
  EXPECT_EQ(::stat((dir_ + "/csi.sock").c_str(), &sock), 0);
  EXPECT_TRUE(S_ISSOCK(sock.st_mode));
  for (const auto& [pid, binary] : procs) {
    EXPECT_FALSE(ProcessCmdline(pid).empty()) << binary << " pid " << pid << " is not running";
  }

  // Again: already up.
  Result again = Ctl({"local", "up", "--dir", dir_});
  EXPECT_EQ(again.exit_code, 0) << again.output;
  EXPECT_NE(again.output.find("already up"), std::string::npos) << again.output;

  // Every node registered.
  Result nodes = Ctl({"node", "list", "-o", "json"});
  ASSERT_EQ(nodes.exit_code, 0) << nodes.output;
  EXPECT_EQ(json::parse(nodes.output)["nodes"].size(), 3u) << nodes.output;

  // A volume.
  Result create = Ctl({"volume", "create", "--name", "t1", "--size", "1"});
  ASSERT_EQ(create.exit_code, 0) << create.output;
  EXPECT_NE(create.output.find("volume t1 created"), std::string::npos) << create.output;
  EXPECT_NE(create.output.find("Mount source:"), std::string::npos) << create.output;
  Result info = Ctl({"volume", "info", "t1", "-o", "json"});
  ASSERT_EQ(info.exit_code, 0) << info.output;
  json volume = json::parse(info.output);
  const std::string id = volume.value("id", "");
  EXPECT_EQ(id.size(), 32u) << info.output;
  EXPECT_EQ(volume["bricks"].size(), 3u) << info.output;

  // Mounted through cairnctl; written and read back through the mount.
  Result mount = Ctl({"volume", "mount", "t1", mnt_});
  ASSERT_EQ(mount.exit_code, 0) << mount.output;
  ASSERT_TRUE(Mounted(mnt_)) << mount.output;
  std::string data(3 << 20, '\0');
  std::mt19937 rng(42);
  for (auto& c : data) c = static_cast<char>(rng());
  {
    std::ofstream out(mnt_ + "/hello.bin", std::ios::binary);
    out.write(data.data(), static_cast<std::streamsize>(data.size()));
    out.close();
    ASSERT_TRUE(out.good()) << "write through the mount failed: " << std::strerror(errno);
  }
  {
    std::ifstream in(mnt_ + "/hello.bin", std::ios::binary);
    std::string back((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_TRUE(back == data) << "read back " << back.size() << " bytes, wrote " << data.size();
  }
  auto recorded = ReadFile(dir_ + "/cluster.json");
  ASSERT_TRUE(recorded.ok());
  EXPECT_NE(recorded->find(mnt_), std::string::npos) << "mount not recorded: " << *recorded;

  // Listed as the API's JSON, and as a table.
  Result list = Ctl({"volume", "list", "-o", "json"});
  ASSERT_EQ(list.exit_code, 0) << list.output;
  json ids = json::parse(list.output)["volumes"];
  EXPECT_NE(std::find(ids.begin(), ids.end(), id), ids.end()) << list.output;
  Result table = Ctl({"volume", "list"});
  ASSERT_EQ(table.exit_code, 0) << table.output;
  EXPECT_NE(table.output.find(id + "  t1"), std::string::npos) << table.output;

  // Down: the mount goes, every process goes, the directory goes.
  Result down = Ctl({"local", "down", "--dir", dir_, "--purge"});
  ASSERT_EQ(down.exit_code, 0) << down.output;
  EXPECT_NE(down.output.find("unmounted " + mnt_), std::string::npos) << down.output;
  EXPECT_FALSE(Mounted(mnt_));
  EXPECT_FALSE(fs::exists(dir_));
  for (const auto& [pid, binary] : procs) {
    auto args = ProcessCmdline(pid);
    EXPECT_TRUE(args.empty() || fs::path(args[0]).filename() != fs::path(binary).filename())
        << binary << " (pid " << pid << ") still runs";
  }
}

TEST_F(CairnctlLocalCluster, RestartKeepsTheClusterAndItsVolumes) {
  Result up = Ctl({"local", "up", "--dir", dir_, "--nodes", "3", "--port", "0", "--storaged-port",
                   "0", "--device-size", "2"});
  ASSERT_EQ(up.exit_code, 0) << up.output;
  Result create = Ctl({"volume", "create", "--name", "keep", "--size", "1"});
  ASSERT_EQ(create.exit_code, 0) << create.output;
  const std::string admin_key = *ReadSecretFile(dir_ + "/admin.key");

  Result down = Ctl({"local", "down", "--dir", dir_});
  ASSERT_EQ(down.exit_code, 0) << down.output;
  EXPECT_TRUE(fs::exists(dir_ + "/admin.key"));
  EXPECT_FALSE(fs::exists(dir_ + "/cluster.json"));

  Result again = Ctl({"local", "up", "--dir", dir_});
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_EQ(*ReadSecretFile(dir_ + "/admin.key"), admin_key);
  Result info = Ctl({"volume", "info", "keep"});
  EXPECT_EQ(info.exit_code, 0) << info.output;
  // A different node count is refused (exit 2), the cluster keeps running.
  Result other = Ctl({"local", "up", "--dir", dir_, "--nodes", "4"});
  EXPECT_EQ(other.exit_code, 2) << other.output;
}

}  // namespace
}  // namespace cairn::ctl
