// A test volume on one machine: one brickd per "node" bound to 127.0.0.2,
// 127.0.0.3, ... with bricks attached, and the volume spec and token file
// written, ready for client::Volume::Open or cairn-mount.
//
//   auto cluster = TestCluster::Start({.nodes = 3, .replica = 3});
//   ASSERT_TRUE(cluster.ok()) << cluster.status().ToString();
//   auto vol = (*cluster)->OpenVolume();          // libcairn
//   (*cluster)->spec_path(), (*cluster)->token_path()   // for cairn-mount
//   (*cluster)->node(1).Kill(SIGKILL); (*cluster)->node(1).Restart();
//
// Bricks are laid out round-robin: subvolume s, replica r lives on node
// (s * replica + r) % nodes, so with nodes == replica every subvolume has one
// brick on each node. All nodes share one data token. Everything is removed
// when the object goes (processes killed by pid, directories deleted).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "client/spec.h"
#include "client/volume.h"
#include "common/status.h"
#include "tests/test_util.h"

namespace cairn::test {

struct ClusterOptions {
  int nodes = 3;
  int subvolumes = 1;
  int replica = 3;
  int arbiter = 0;              // 1: the last brick of every subvolume is an arbiter
  uint64_t brick_capacity = 0;  // per brick; 0: unlimited
  std::string name = "testvol";
  std::string log_level = "warning";
  int brickd_threads = 0;  // 0: brickd's default
  bool metrics = false;    // serve brickd's /metrics (BrickdProcess::metrics_port)
};

class TestCluster {
 public:
  static StatusOr<std::unique_ptr<TestCluster>> Start(ClusterOptions options = {});
  ~TestCluster();

  const client::VolumeSpec& spec() const { return spec_; }
  // The spec as a file, and a file with the data token (cairn-mount -o token_file=).
  const std::string& spec_path() const { return spec_path_; }
  const std::string& token_path() const { return token_path_; }
  const std::string& token() const { return token_; }
  // The admin token, shared by the nodes (as storaged's nodes share one).
  const std::string& admin_token() const { return admin_token_; }
  int nodes() const { return static_cast<int>(nodes_.size()); }
  BrickdProcess& node(int i) { return *nodes_.at(i); }
  // The directory of brick (subvolume s, replica r) on its node.
  std::string brick_path(int s, int r) const;
  // Node index that serves brick (s, r).
  int node_of(int s, int r) const;
  // A scratch directory removed with the cluster (mount points, logs).
  const TempDir& dir() const { return dir_; }

  // Opens the volume with libcairn (short timeouts suited to tests).
  StatusOr<std::unique_ptr<client::Volume>> OpenVolume(client::Options options = {}) const;

  // Restarts node i (SIGKILL first if it still runs); its bricks are attached
  // again from its state file, on the same port.
  Status RestartNode(int i);

 private:
  TestCluster() = default;
  ClusterOptions options_;
  TempDir dir_{"cairn-cluster"};
  std::vector<std::unique_ptr<BrickdProcess>> nodes_;
  client::VolumeSpec spec_;
  std::string spec_path_;
  std::string token_path_;
  std::string token_;
  std::string admin_token_;
};

}  // namespace cairn::test
