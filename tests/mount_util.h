// Test helpers for real FUSE mounts: a cairn-mount child process mounting a
// TestCluster's volume, and running code as another user.
//
//   auto cluster = TestCluster::Start({.nodes = 3, .replica = 3});
//   auto mount = FuseMount::Start(**cluster);       // waits until mounted
//   ASSERT_TRUE(mount.ok()) << mount.status().ToString();
//   WriteFile((*mount)->Path("hello"), "hi");
//   EXPECT_TRUE(IsOk((*mount)->Unmount()));          // cairn-mount exited 0
//   int rc = RunAs(1000, 1000, [&] { return ::mkdir(p.c_str(), 0755) == 0 ? 0 : errno; });
//
// A FuseMount unmounts when it goes, even after a failed test: fusermount3 -u,
// then (if that does not finish) a lazy umount and SIGKILL of its own child, by
// pid. The child also gets SIGTERM if the test process dies
// (PR_SET_PDEATHSIG), which makes it unmount. Declare a FuseMount after the
// TestCluster it mounts, so that it goes first.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "tests/cluster_util.h"

namespace cairn::test {

struct MountOptions {
  // Extra -o options, e.g. {"ro"} or {"kernel_cache"}.
  std::vector<std::string> extra_options;
  double entry_timeout_s = 1.0;
  double attr_timeout_s = 1.0;
  double negative_timeout_s = 0.0;
  std::string log_level = "info";
  // Where to mount; empty: a fresh directory under the cluster's dir().
  std::string mountpoint;
  // How long Start waits for the mount to appear.
  std::chrono::milliseconds mount_timeout{30000};
  // The executable; empty: $CAIRN_MOUNT, else the cairn-mount of this build tree.
  std::string binary;
};

// A cairn-mount -f child process and its mount. Drive it from one thread
// (the one that started it: the child dies with that thread).
class FuseMount {
 public:
  // Starts cairn-mount and waits until /proc/self/mountinfo shows the mount
  // (fstype fuse.cairn). Fails with the log's tail if it exits first or the
  // mount does not appear in time.
  static StatusOr<std::unique_ptr<FuseMount>> Start(const TestCluster& cluster,
                                                    MountOptions options = {});
  // The same for any SOURCE (a spec file or `host:port,...:/volume`) with the
  // data token in `token_path`; mount points and logs go under `dir`. `wrap`
  // (may be empty) rewrites the argv, e.g. to run in a network namespace.
  static StatusOr<std::unique_ptr<FuseMount>> Start(
      const std::string& source, const std::string& token_path, const TempDir& dir,
      MountOptions options = {},
      const std::function<std::vector<std::string>(const std::vector<std::string>&)>& wrap = {});

  // Unmount(); a failure is reported with ADD_FAILURE only if the mount is
  // still there afterwards.
  ~FuseMount();
  FuseMount(const FuseMount&) = delete;
  FuseMount& operator=(const FuseMount&) = delete;

  // The mount point (absolute).
  const std::string& path() const { return path_; }
  // path()/rel.
  std::string Path(std::string_view rel) const;
  // Pid of cairn-mount; -1 once reaped.
  pid_t pid() const { return pid_; }
  // Everything cairn-mount wrote (stderr and stdout, its log).
  std::string Log() const;
  const std::string& log_file() const { return log_file_; }

  // True iff the mount point is a fuse.cairn mount right now.
  bool Mounted() const;

  // Unmounts with fusermount3 -u and waits for cairn-mount to exit. If that
  // does not work within `timeout` (busy, hung), detaches the mount (umount -l)
  // and kills the child. Ok iff the mount is gone and cairn-mount exited 0;
  // otherwise the error says what happened, with the log's tail. Idempotent.
  Status Unmount(std::chrono::milliseconds timeout = std::chrono::seconds(20));

  // Waits up to `timeout` for cairn-mount to exit by itself; returns its wait status.
  StatusOr<int> Wait(std::chrono::milliseconds timeout);

  // Sends `sig` to cairn-mount.
  Status Signal(int sig);

 private:
  FuseMount() = default;
  bool Reap(int* status);

  std::string path_;
  std::string log_file_;
  pid_t pid_ = -1;
  int exit_status_ = -1;  // wait status once reaped
};

// The cairn-mount executable: $CAIRN_MOUNT, else the one of this build tree.
std::string CairnMountBinary();

// Result of running a program to completion.
struct CommandResult {
  int exit_code = -1;  // -1: did not exit normally (see wait_status)
  int wait_status = 0;
  std::string output;  // stdout and stderr, interleaved
};

// Runs argv[0] (a path) with `argv`, capturing its output; kills it with
// SIGKILL after `timeout`. Fails only if it could not be started.
StatusOr<CommandResult> RunCommand(const std::vector<std::string>& argv,
                                   std::chrono::milliseconds timeout = std::chrono::seconds(120));

// Runs `fn` in a forked child as uid/gid (supplementary groups `groups`,
// none by default) and returns the child's exit code, i.e. fn's return value
// (use 0 for success, an errno for a failure). The child is killed after
// `timeout`. Only the calling thread exists in the child: `fn` should do
// system calls and simple work, not use locks other threads may hold.
StatusOr<int> RunAs(uid_t uid, gid_t gid, const std::function<int()>& fn,
                    const std::vector<gid_t>& groups = {},
                    std::chrono::milliseconds timeout = std::chrono::seconds(60));

// The volume layouts the FUSE tests run on: "Replica3" (replica 3 over three
// nodes), "DistRep2x3" (2 x 3 distribute-replicate) and "Arbiter" (replica 3
// arbiter 1).
struct VolumeLayout {
  std::string name;
  ClusterOptions options;
};
std::vector<VolumeLayout> StandardLayouts();
// gtest prints a layout by its name.
inline void PrintTo(const VolumeLayout& layout, std::ostream* os) { *os << layout.name; }

// The fstype and source of the mount at `path` ("" if none), from /proc/self/mountinfo.
struct MountInfo {
  std::string fstype;
  std::string source;
  std::string options;  // per-mount options, e.g. "rw,nosuid,nodev,relatime"
};
StatusOr<MountInfo> FindMount(const std::string& path);

}  // namespace cairn::test
