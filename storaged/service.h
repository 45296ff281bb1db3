// The Storaged gRPC service (proto/storaged.proto): authentication, RPC
// counters, the Status mapping, and spec watchers. The rules live in Manager.
//
// Unary calls use gRPC's synchronous API (they may wait for brickd or an
// fsync, which must not block the callback threads). WatchVolumeSpec uses
// the callback API: a watcher is a reactor that holds no thread while it
// waits for the next generation, and SpecHub::Close ends every stream at
// once when storaged shuts down.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>

#include "common/status.h"
#include "proto/storaged.grpc.pb.h"
#include "storaged/heal_hook.h"
#include "storaged/manager.h"
#include "storaged/supervisor.h"

namespace cairn::storaged {

// Which token a call needs.
enum class Role { kData, kAdmin };

// Checks bearer tokens in constant time. Tokens are never logged.
class Authenticator {
 public:
  Authenticator(std::string data_token, std::string admin_token)
      : data_token_(std::move(data_token)), admin_token_(std::move(admin_token)) {}
  // Ok iff the call carries a token good for `role`; `method` names the call
  // in the refusal.
  Status Check(const grpc::ServerContextBase& context, Role role, std::string_view method) const;
  // Same, for a raw "Authorization" header value (HTTP).
  Status CheckHeader(std::string_view header, Role role, std::string_view what) const;

 private:
  const std::string data_token_;
  const std::string admin_token_;
};

// Calls by method and status code, for /metrics.
class RpcCounters {
 public:
  void Record(const std::string& method, StatusCode code);
  std::map<std::pair<std::string, StatusCode>, uint64_t> Snapshot() const;

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::string, StatusCode>, uint64_t> counts_;
};

class WatchReactor;

// The latest generation of every spec and the watchers waiting for newer ones.
class SpecHub {
 public:
  // Publish(name, record) after a put; Publish(name, nullptr) after a delete
  // (its watchers end with NOT_FOUND).
  void Publish(const std::string& name, const SpecRecord* now);
  // Ends every watch with UNAVAILABLE and refuses new ones. For shutdown.
  void Close();
  size_t watchers() const;

 private:
  friend class WatchReactor;
  // Registers `w`; false (and `w` is not registered) when closed or the spec is missing.
  bool Add(WatchReactor* w, const std::string& name, grpc::Status* refusal);
  void Remove(WatchReactor* w);

  mutable std::mutex mu_;
  bool closed_ = false;
  std::map<std::string, std::pair<uint64_t, std::string>> latest_;  // name -> (generation, json)
  std::multimap<std::string, WatchReactor*> watchers_;
};

// What GetNode reports besides the supervisor's figures.
struct NodeIdentity {
  std::string name;
  std::string api_address;
  std::string metrics_address;
  std::string version;
  int64_t started_at_unix_ms = 0;
};

class StoragedServiceImpl final
    : public cairn::storaged::v1::Storaged::WithCallbackMethod_WatchVolumeSpec<
          cairn::storaged::v1::Storaged::Service> {
 public:
  StoragedServiceImpl(Manager* manager, BrickdSupervisor* supervisor, const Authenticator* auth,
                      SpecHub* hub, RpcCounters* counters, HealHook* heal)
      : manager_(manager),
        supervisor_(supervisor),
        auth_(auth),
        hub_(hub),
        counters_(counters),
        heal_(heal) {}

  // Filled in once the listening ports are known.
  void SetIdentity(NodeIdentity identity);

  grpc::Status GetNode(grpc::ServerContext*, const spb::GetNodeRequest*, spb::NodeInfo*) override;
  grpc::Status AddDevice(grpc::ServerContext*, const spb::AddDeviceRequest*,
                         spb::AddDeviceReply*) override;
  grpc::Status RemoveDevice(grpc::ServerContext*, const spb::RemoveDeviceRequest*,
                            spb::Empty*) override;
  grpc::Status ListDevices(grpc::ServerContext*, const spb::ListDevicesRequest*,
                           spb::ListDevicesReply*) override;
  grpc::Status CreateBrick(grpc::ServerContext*, const spb::CreateBrickRequest*,
                           spb::CreateBrickReply*) override;
  grpc::Status DeleteBrick(grpc::ServerContext*, const spb::DeleteBrickRequest*,
                           spb::Empty*) override;
  grpc::Status ResizeBrick(grpc::ServerContext*, const spb::ResizeBrickRequest*,
                           spb::Brick*) override;
  grpc::Status ListBricks(grpc::ServerContext*, const spb::ListBricksRequest*,
                          spb::ListBricksReply*) override;
  grpc::Status PutVolumeSpec(grpc::ServerContext*, const spb::PutVolumeSpecRequest*,
                             spb::PutVolumeSpecReply*) override;
  grpc::Status DeleteVolumeSpec(grpc::ServerContext*, const spb::DeleteVolumeSpecRequest*,
                                spb::Empty*) override;
  grpc::Status GetVolumeSpec(grpc::ServerContext*, const spb::GetVolumeSpecRequest*,
                             spb::VolumeSpecReply*) override;
  grpc::Status ListVolumeSpecs(grpc::ServerContext*, const spb::ListVolumeSpecsRequest*,
                               spb::ListVolumeSpecsReply*) override;
  grpc::Status HealInfo(grpc::ServerContext*, const spb::HealInfoRequest*,
                        spb::HealInfoReply*) override;
  grpc::Status StartHeal(grpc::ServerContext*, const spb::StartHealRequest*, spb::Empty*) override;
  grpc::Status ResolveSplitBrain(grpc::ServerContext*, const spb::ResolveSplitBrainRequest*,
                                 spb::Empty*) override;

  grpc::ServerWriteReactor<spb::VolumeSpecReply>* WatchVolumeSpec(
      grpc::CallbackServerContext* context, const spb::WatchVolumeSpecRequest* request) override;

 private:
  template <class Fn>
  grpc::Status Serve(const char* method, Role role, grpc::ServerContext* ctx, Fn fn);

  Manager* const manager_;
  BrickdSupervisor* const supervisor_;
  const Authenticator* const auth_;
  SpecHub* const hub_;
  RpcCounters* const counters_;
  HealHook* const heal_;
  mutable std::mutex identity_mu_;
  NodeIdentity identity_;
};

}  // namespace cairn::storaged
