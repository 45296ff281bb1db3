// A cluster of storaged "nodes" on one machine: one storaged per node on
// 127.0.0.(2+i), each with its own state directory, a device (a directory)
// and the bricks of one test volume created through the storaged API; the
// volume spec is put on every storaged, ready for `cairn-mount host:/volume`.
//
//   auto c = NodeCluster::Start({.nodes = 3, .replica = 3});
//   ASSERT_TRUE(c.ok()) << c.status().ToString();
//   auto node = (*c)->client(0).Call(&spb::Storaged::Stub::GetNode, spb::GetNodeRequest());
//   auto mount = (*c)->Mount();                 // cairn-mount 127.0.0.2:P,...:/testvol
//   (*c)->KillBrickd(1);                         // storaged restarts it
//   (*c)->KillNode(2); (*c)->StartNode(2);       // same state dir, same ports
//
// storaged runs its own brickd (no parent-death signal: a killed storaged
// leaves it running). The test process becomes a child subreaper so that
// such orphans are its children and can be reaped. Everything is cleaned up
// when the cluster goes, also after a failed test: storaged processes and
// every brickd they started are killed by pid, directories removed. Declare
// mounts after the cluster so that they go first.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "client/spec.h"
#include "client/volume.h"
#include "common/status.h"
#include "common/status_grpc.h"
#include "proto/storaged.grpc.pb.h"
#include "tests/mount_util.h"
#include "tests/test_util.h"

namespace cairn::test {

namespace spb = ::cairn::storaged::v1;

struct NodeClusterOptions {
  int nodes = 3;
  int replica = 3;
  int arbiter = 0;
  int subvolumes = 1;
  std::string name = "testvol";
  uint64_t device_capacity = 0;       // per node; 0: the file system's size
  uint64_t brick_capacity = 1 << 30;  // per brick (> 0)
  std::string log_level = "info";
  int brickd_threads = 0;  // 0: brickd's default
  // false: nodes with their device only (no bricks, no spec).
  bool create_volume = true;
  // Node addresses; empty: 127.0.0.(2+i).
  std::vector<std::string> hosts = {};
  // Rewrites the argv of node i's storaged (and of mounts made "in" node i),
  // e.g. to run it in a network namespace (tests/netns_util.h). The program
  // must exec the command (same pid), as nsenter does.
  std::function<std::vector<std::string>(int node, const std::vector<std::string>& argv)> wrap =
      nullptr;
};

// One channel to one storaged with the bearer token added to every call.
class StoragedClient {
 public:
  StoragedClient(const std::string& address, std::string token);
  spb::Storaged::Stub* stub() const { return stub_.get(); }
  const std::string& address() const { return address_; }

  // Calls a unary method with this client's token (or `token` if given;
  // "-" for none) and a deadline.
  template <class Req, class Rep>
  StatusOr<Rep> Call(grpc::Status (spb::Storaged::Stub::*method)(grpc::ClientContext*, const Req&,
                                                                 Rep*),
                     const Req& request, std::string_view token = {},
                     std::chrono::milliseconds timeout = std::chrono::seconds(30)) const {
    grpc::ClientContext context;
    std::string t = token.empty() ? token_ : std::string(token);
    if (t != "-") context.AddMetadata("authorization", "Bearer " + t);
    context.set_deadline(std::chrono::system_clock::now() + timeout);
    Rep reply;
    grpc::Status status = (stub_.get()->*method)(&context, request, &reply);
    if (status.ok()) return reply;
    return FromGrpcStatus(status, context);
  }

 private:
  std::string address_;
  std::string token_;
  std::unique_ptr<spb::Storaged::Stub> stub_;
};

// A cairn-mount -f child mounting a server source (FuseMount's source form).
using SourceMount = FuseMount;

class NodeCluster {
 public:
  static StatusOr<std::unique_ptr<NodeCluster>> Start(NodeClusterOptions options = {});
  ~NodeCluster();
  NodeCluster(const NodeCluster&) = delete;
  NodeCluster& operator=(const NodeCluster&) = delete;

  int nodes() const { return static_cast<int>(nodes_.size()); }
  const NodeClusterOptions& options() const { return options_; }
  const client::VolumeSpec& spec() const { return spec_; }
  // Token files: the data token (clients, bricks) and the admin token.
  const std::string& token_path() const { return token_path_; }
  const std::string& admin_token_path() const { return admin_token_path_; }
  const std::string& token() const { return token_; }
  const std::string& admin_token() const { return admin_token_; }
  // A scratch directory removed with the cluster.
  const TempDir& dir() const { return dir_; }

  std::string host(int i) const;
  std::string api_address(int i) const;
  std::string metrics_address(int i) const;
  std::string brickd_address(int i) const;
  std::string state_dir(int i) const;
  std::string device_path(int i) const;
  std::string log_file(int i) const;
  // Everything node i's storaged (and its brickd) wrote, all incarnations.
  std::string Log(int i) const;
  // Pid of node i's storaged (-1 when stopped).
  pid_t storaged_pid(int i) const { return nodes_.at(i).pid; }
  // Pid of node i's brickd, from its storaged (GetNode).
  StatusOr<pid_t> brickd_pid(int i);
  // The pid recorded in node i's state dir (brickd.pid), or -1.
  pid_t recorded_brickd_pid(int i) const;
  // An admin-token client of node i's storaged.
  StoragedClient& client(int i) { return *nodes_.at(i).client; }

  // SIGKILL storaged, then its brickd (by pid); both reaped.
  Status KillNode(int i);
  // SIGKILL storaged only: its brickd keeps running (for adoption).
  Status KillStoraged(int i);
  // SIGTERM storaged and wait for it to exit (it stops its brickd). Returns
  // storaged's wait status.
  StatusOr<int> StopNode(int i, std::chrono::milliseconds timeout = std::chrono::seconds(30));
  // Starts node i's storaged again (same state dir and API port) and waits
  // for its ready file. `extra_args` are appended to the command line.
  Status StartNode(int i, const std::vector<std::string>& extra_args = {});
  // SIGKILL node i's brickd; returns the pid killed.
  StatusOr<pid_t> KillBrickd(int i);

  // "127.0.0.2:P,127.0.0.3:P:/name" over the given nodes (default: all).
  std::string mount_source(std::vector<int> nodes = {}) const;
  // The brick of subvolume s, replica r: its node, id and directory.
  int node_of(int s, int r) const;
  std::string brick_id(int s, int r) const;
  std::string brick_path(int s, int r) const;

  // cairn-mount of mount_source() (or `source`), token_file = the data token;
  // with in_node >= 0 run through that node's wrap (e.g. in its namespace).
  StatusOr<std::unique_ptr<SourceMount>> Mount(MountOptions options = {},
                                               const std::string& source = "",
                                               int in_node = -1) const;
  // Opens the volume with libcairn (short timeouts suited to tests).
  StatusOr<std::unique_ptr<client::Volume>> OpenVolume(client::Options options = {}) const;

  // The storaged executable: $CAIRN_STORAGED, else the one of this build tree.
  static std::string StoragedBinary();
  static std::string BrickdBinary();

 private:
  struct Node {
    std::string host;
    int api_port = 0;  // 0 before the first start
    std::string api_address;
    std::string metrics_address;
    std::string brickd_address;
    pid_t pid = -1;
    std::set<pid_t> brickd_pids;  // every brickd seen, for cleanup
    std::unique_ptr<StoragedClient> client;
  };
  NodeCluster() = default;
  Status Spawn(int i, const std::vector<std::string>& extra_args);
  Status WaitReady(int i, std::chrono::milliseconds timeout);
  void NoteBrickdPid(int i);
  // SIGKILL `pid` if it is a brickd of node i, wait until it is gone, reap it if ours.
  void KillBrickdPid(int i, pid_t pid);

  NodeClusterOptions options_;
  TempDir dir_{"cairn-nodes"};
  std::vector<Node> nodes_;
  client::VolumeSpec spec_;
  std::string token_, admin_token_, token_path_, admin_token_path_;
};

// True iff `pid` exists and is not a zombie.
bool ProcessAlive(pid_t pid);

}  // namespace cairn::test
