// The provisioner's logic, apart from HTTP: validation, placement, the
// journaled operations and their recovery, reconciliation with the nodes.
// docs/provisioner.md describes the behaviour; http.cc maps it to routes.
//
// Long operations return an op id at once (HTTP 202 + /queue/{id}) and run on
// a worker pool; Queue() reports their outcome.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "provisioner/allocator.h"
#include "provisioner/nodes.h"
#include "provisioner/store.h"

namespace cairn::provisioner {

using nlohmann::json;

struct ServiceOptions {
  int workers = 4;
  std::chrono::milliseconds reconcile_interval{300000};
  std::chrono::milliseconds retry_interval{5000};  // pending ops whose nodes were unreachable
  // Test hook: the process aborts (as if killed) when an operation reaches
  // this step ("volume.create:bricks", …; see docs/provisioner.md). Read from
  // $CAIRN_PROVISIONER_CRASH_AT by main.
  std::string crash_at;
};

// The outcome of an operation as /queue/{id} reports it.
struct QueueState {
  enum Kind { kPending, kDone, kFailed } kind = kPending;
  std::string location;  // kDone: where the result is ("" → nothing, 204)
  std::string error;     // kFailed
};

class Service {
 public:
  Service(Store* store, NodeClients* nodes, ServiceOptions options);
  ~Service();

  // Recovers unfinished operations, reconciles the nodes, starts the workers
  // and the periodic reconciler.
  Status Start();
  void Stop();

  // Clusters (synchronous).
  StatusOr<json> CreateCluster(const json& body);
  StatusOr<json> ListClusters();
  StatusOr<json> ClusterInfo(const std::string& id);
  Status DeleteCluster(const std::string& id);
  Status SetClusterFlags(const std::string& id, const json& body);

  // Nodes. Async ones return an op id.
  StatusOr<std::string> AddNode(const json& body);
  StatusOr<json> ListNodes();
  StatusOr<json> NodeInfo(const std::string& id);
  StatusOr<std::string> DeleteNode(const std::string& id);
  StatusOr<std::string> SetNodeState(const std::string& id, const json& body);
  StatusOr<json> SetNodeTags(const std::string& id, const json& body);
  StatusOr<json> RegisterNode(const json& body);

  // Devices.
  StatusOr<std::string> AddDevice(const json& body);
  StatusOr<json> DeviceInfo(const std::string& id);
  StatusOr<std::string> DeleteDevice(const std::string& id);
  StatusOr<std::string> SetDeviceState(const std::string& id, const json& body);
  StatusOr<std::string> ResyncDevice(const std::string& id);
  StatusOr<json> SetDeviceTags(const std::string& id, const json& body);

  // Volumes.
  StatusOr<std::string> CreateVolume(const json& body);
  StatusOr<json> ListVolumes(const std::string& name_filter);
  StatusOr<json> VolumeInfo(const std::string& id);
  StatusOr<std::string> DeleteVolume(const std::string& id);
  StatusOr<std::string> ExpandVolume(const std::string& id, const json& body);
  StatusOr<json> VolumeHeal(const std::string& id);

  StatusOr<json> Topology();

  // The state of an operation; waits up to `wait` for a pending one.
  StatusOr<QueueState> Queue(const std::string& op_id, std::chrono::milliseconds wait);

  // Prometheus text for the service's own metrics.
  std::string Metrics();

  // Runs one reconciliation pass now (tests; the periodic one calls it too).
  Status ReconcileNow();

 private:
  // Operations.
  StatusOr<std::string> Enqueue(const OpRow& op);
  void Worker();
  void Retrier();
  void RunOp(const std::string& op_id);
  Status RunVolumeCreate(OpRow& op);
  Status RunVolumeDelete(OpRow& op);
  Status RunVolumeExpand(OpRow& op);
  Status RollbackVolumeExpand(OpRow& op);
  Status RunNodeAdd(OpRow& op);
  Status RunDeviceAdd(OpRow& op);
  Status RunDeviceDelete(OpRow& op);
  Status RunDeviceResync(OpRow& op);
  void Finish(OpRow& op, const Status& result);
  Status Recover();
  void CrashPoint(const std::string& step);

  // Node calls for volumes.
  // Best effort: what an unreachable node keeps, reconciliation removes.
  void DestroyVolumeOnNodes(const VolumeRow& v);
  Status PutSpecEverywhere(const VolumeRow& v, bool require_brick_nodes);
  // The same with `spec` already built, leaving out the nodes in `skip`
  // (ids of nodes that stored it with their bricks).
  Status PutSpecEverywhere(const VolumeRow& v, bool require_brick_nodes, const std::string& spec,
                           const std::set<std::string>& skip);
  StatusOr<std::string> BuildSpec(const VolumeRow& v);
  Status ReconcileNode(const NodeRow& n);

  // JSON views.
  StatusOr<json> NodeJson(const NodeRow& n);
  StatusOr<json> DeviceJson(const DeviceRow& d);
  StatusOr<json> VolumeJson(const VolumeRow& v);
  StatusOr<json> ClusterJson(const ClusterRow& c);

  // Free space of a cluster's online nodes and devices.
  // The free space of the cluster's nodes, only those in `zones` when given.
  StatusOr<std::vector<NodeFree>> FreeSpace(const std::string& cluster_id,
                                            const std::vector<int>& zones = {});

  Store* store_;
  NodeClients* nodes_;
  ServiceOptions options_;

  std::mutex place_mu_;  // placement + reservation are one step

  std::mutex mu_;
  std::condition_variable cv_;      // work queue and op completion
  std::deque<std::string> queue_;   // op ids to run
  std::set<std::string> running_;   // queued or running op ids
  std::set<std::string> deferred_;  // pending ops to retry later (node unreachable)
  bool stopping_ = false;
  std::vector<std::thread> workers_;
  std::thread retrier_;
  std::mutex reconcile_mu_;

  // Metrics.
  std::mutex metrics_mu_;
  std::map<std::string, uint64_t> op_counts_;  // "kind,result" → count
  std::vector<double> create_seconds_;         // last 4096 volume create latencies
  uint64_t orphans_removed_ = 0;
  uint64_t reconciles_ = 0;
};

}  // namespace cairn::provisioner
