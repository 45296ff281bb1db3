// The CSI Node service: stages a Cairn volume with cairn-mount, publishes it
// by bind mounts, reports stats and health, and brings back staged volumes
// whose FUSE process died (docs/csi.md, "Node").
//
//   NodeServer node({.node_id = "n1", .state_dir = "/var/lib/cairn-csi", ...});
//   CAIRN_RETURN_IF_ERROR(node.Start());   // loads records, starts the health thread
//   builder.RegisterService(&node);
//   ...
//   node.Stop();
#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "proto/csi.grpc.pb.h"

namespace cairn::csi {

struct NodeOptions {
  std::string node_id;
  std::string state_dir = "/var/lib/cairn-csi";
  std::string mount_binary;     // cairn-mount
  std::string data_token_file;  // used unless a dataToken secret is given
  std::string topology_value = "cairn";
  // How often staged mounts are checked; 0: only at start and on demand
  // (NodeGetVolumeStats finding one broken).
  std::chrono::milliseconds health_interval{5000};
  std::chrono::milliseconds mount_timeout{90000};
};

class NodeServer final : public ::csi::v1::Node::Service {
 public:
  explicit NodeServer(NodeOptions options);
  ~NodeServer() override;

  // Reads the records in STATE/volumes, then starts the health thread (which
  // checks every record at once).
  Status Start();
  void Stop();

  // Ok iff this node can mount: /dev/fuse and the mount binary are usable.
  Status Ready() const;

  // Runs one health pass now (tests; the thread does it on its own).
  void CheckAllNow();
  // Mount recoveries done so far.
  int recoveries() const;

  grpc::Status NodeStageVolume(grpc::ServerContext*, const ::csi::v1::NodeStageVolumeRequest*,
                               ::csi::v1::NodeStageVolumeResponse*) override;
  grpc::Status NodeUnstageVolume(grpc::ServerContext*, const ::csi::v1::NodeUnstageVolumeRequest*,
                                 ::csi::v1::NodeUnstageVolumeResponse*) override;
  grpc::Status NodePublishVolume(grpc::ServerContext*, const ::csi::v1::NodePublishVolumeRequest*,
                                 ::csi::v1::NodePublishVolumeResponse*) override;
  grpc::Status NodeUnpublishVolume(grpc::ServerContext*,
                                   const ::csi::v1::NodeUnpublishVolumeRequest*,
                                   ::csi::v1::NodeUnpublishVolumeResponse*) override;
  grpc::Status NodeGetVolumeStats(grpc::ServerContext*, const ::csi::v1::NodeGetVolumeStatsRequest*,
                                  ::csi::v1::NodeGetVolumeStatsResponse*) override;
  grpc::Status NodeExpandVolume(grpc::ServerContext*, const ::csi::v1::NodeExpandVolumeRequest*,
                                ::csi::v1::NodeExpandVolumeResponse*) override;
  grpc::Status NodeGetCapabilities(grpc::ServerContext*,
                                   const ::csi::v1::NodeGetCapabilitiesRequest*,
                                   ::csi::v1::NodeGetCapabilitiesResponse*) override;
  grpc::Status NodeGetInfo(grpc::ServerContext*, const ::csi::v1::NodeGetInfoRequest*,
                           ::csi::v1::NodeGetInfoResponse*) override;

 private:
  // What the node knows of one staged volume; STATE/volumes/<key>.json.
  struct Record {
    std::string volume_id;
    std::string source;
    std::string staging_path;
    std::vector<std::string> mount_options;  // -o options, token_file included
    bool read_only = false;
    std::string token_copy;               // a token file we wrote from a secret ("" if none)
    int64_t mount_group = -1;             // volume_mount_group, -1: none
    std::map<std::string, bool> targets;  // published target → read-only
  };

  // One call at a time per volume; a second one gets Aborted.
  class VolumeLock {
   public:
    VolumeLock(NodeServer* node, const std::string& volume_id, bool wait = false);
    ~VolumeLock();
    bool held() const { return held_; }

   private:
    NodeServer* node_;
    std::string volume_id_;
    bool held_ = false;
  };

  Status Stage(const ::csi::v1::NodeStageVolumeRequest& req);
  Status Unstage(const ::csi::v1::NodeUnstageVolumeRequest& req);
  Status Publish(const ::csi::v1::NodePublishVolumeRequest& req);
  Status Unpublish(const ::csi::v1::NodeUnpublishVolumeRequest& req);
  Status Stats(const ::csi::v1::NodeGetVolumeStatsRequest& req,
               ::csi::v1::NodeGetVolumeStatsResponse* rep);
  Status Expand(const ::csi::v1::NodeExpandVolumeRequest& req,
                ::csi::v1::NodeExpandVolumeResponse* rep);

  // Mounts the record's volume on its staging path (cairn-mount).
  Status MountStaging(const Record& r);
  // Gives the volume's root group `gid` and g+rwxs.
  Status ApplyMountGroup(const std::string& path, int64_t gid);
  // Remounts a dead staging mount and re-binds its targets; the caller holds the lock.
  Status Recover(Record& r, const std::string& why);
  void HealthLoop();
  void CheckRecord(const std::string& volume_id);

  std::string RecordPath(const std::string& volume_id) const;
  Status SaveRecord(const Record& r);
  void DropRecord(const Record& r);
  bool GetRecord(const std::string& volume_id, Record* out) const;
  void PutRecord(const Record& r);
  void EraseRecord(const std::string& volume_id);
  // The record whose staging path or one of whose targets is `path`.
  bool RecordForPath(const std::string& path, Record* out) const;

  NodeOptions options_;
  mutable std::mutex mu_;
  std::map<std::string, Record> records_;
  std::set<std::string> busy_;
  std::condition_variable busy_cv_;
  int recoveries_ = 0;

  std::mutex health_mu_;
  std::condition_variable health_cv_;
  bool health_kick_ = false;
  bool stopping_ = false;
  std::thread health_thread_;
};

}  // namespace cairn::csi
