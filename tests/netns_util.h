// Network namespaces for partition tests: one namespace per "node", joined by
// veth pairs to a bridge in the test's own namespace, all created by the test
// and removed when the object goes (also after a failed assertion).
//
//   auto net = NetnsTopology::Create(3);
//   ASSERT_TRUE(net.ok()) << net.status().ToString();
//   (*net)->address(0)                 // "10.251.X.11": node 0's address in its namespace
//   (*net)->Wrap(0, {"/path/storaged", ...})   // argv that runs in node 0's namespace
//   (*net)->Isolate(2);  ...  (*net)->Rejoin(2);   // partition node 2 away and back
//
// Only the network namespace changes (nsenter --net): processes keep the test's
// mount namespace, so a FUSE mount made from inside a node's namespace is
// visible to the test. The test's namespace reaches every node through the
// bridge's address (host_address()), partitioned or not, except an isolated one.
// Needs root, `ip` (iproute2) and `nsenter` (util-linux).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace cairn::test {

class NetnsTopology {
 public:
  // Creates `nodes` namespaces with their veth links on a fresh bridge and a
  // fresh /24 (10.251.X.0/24, X chosen from the pid so parallel tests do not
  // collide). Leftovers of an earlier crashed run of a dead pid are removed first.
  static StatusOr<std::unique_ptr<NetnsTopology>> Create(int nodes);
  ~NetnsTopology();
  NetnsTopology(const NetnsTopology&) = delete;
  NetnsTopology& operator=(const NetnsTopology&) = delete;

  int nodes() const { return nodes_; }
  // The address of node i inside its namespace, and of the bridge (the test's side).
  std::string address(int i) const;
  std::string host_address() const;
  // /run/netns/NAME of node i.
  std::string ns_path(int i) const;
  // argv that runs `argv` inside node i's network namespace.
  std::vector<std::string> Wrap(int i, const std::vector<std::string>& argv) const;

  // Cuts node i off (its link to the bridge goes down: packets are dropped, so
  // peers see timeouts, as with a pulled cable), and joins it back.
  Status Isolate(int i);
  Status Rejoin(int i);

 private:
  NetnsTopology() = default;
  std::string Name(const std::string& what) const;
  void Destroy();

  int nodes_ = 0;
  int subnet_ = 0;
  std::string prefix_;
  std::vector<std::string> created_ns_;
  bool bridge_ = false;
};

}  // namespace cairn::test
