// The CSI Controller service over the provisioner's REST API: create (by
// name, idempotent), delete, expand, validate, list, capacity
// (docs/csi.md, "Controller").
//
//   ControllerServer controller({.server = url, .user = "admin", .key = key});
//   builder.RegisterService(&controller);
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "cairnctl/rest_client.h"
#include "common/status.h"
#include "proto/csi.grpc.pb.h"

namespace cairn::csi {

struct ControllerOptions {
  std::string server;  // provisioner URL; may be empty when every call carries a "server" secret
  std::string user = "admin";
  std::string key;
  std::string topology_value = "cairn";
  ctl::RestOptions rest;
};

class ControllerServer final : public ::csi::v1::Controller::Service {
 public:
  explicit ControllerServer(ControllerOptions options) : options_(std::move(options)) {}

  // Ok iff the provisioner answers an authenticated GET /hello.
  Status Ready() const;

  grpc::Status CreateVolume(grpc::ServerContext*, const ::csi::v1::CreateVolumeRequest*,
                            ::csi::v1::CreateVolumeResponse*) override;
  grpc::Status DeleteVolume(grpc::ServerContext*, const ::csi::v1::DeleteVolumeRequest*,
                            ::csi::v1::DeleteVolumeResponse*) override;
  grpc::Status ControllerExpandVolume(grpc::ServerContext*,
                                      const ::csi::v1::ControllerExpandVolumeRequest*,
                                      ::csi::v1::ControllerExpandVolumeResponse*) override;
  grpc::Status ValidateVolumeCapabilities(grpc::ServerContext*,
                                          const ::csi::v1::ValidateVolumeCapabilitiesRequest*,
                                          ::csi::v1::ValidateVolumeCapabilitiesResponse*) override;
  grpc::Status ListVolumes(grpc::ServerContext*, const ::csi::v1::ListVolumesRequest*,
                           ::csi::v1::ListVolumesResponse*) override;
  grpc::Status GetCapacity(grpc::ServerContext*, const ::csi::v1::GetCapacityRequest*,
                           ::csi::v1::GetCapacityResponse*) override;
  grpc::Status ControllerGetCapabilities(grpc::ServerContext*,
                                         const ::csi::v1::ControllerGetCapabilitiesRequest*,
                                         ::csi::v1::ControllerGetCapabilitiesResponse*) override;

 private:
  using Secrets = google::protobuf::Map<std::string, std::string>;
  // A client for one call: the configured provisioner and key, or the
  // call's secrets ("server", "user", "key").
  StatusOr<std::unique_ptr<ctl::RestClient>> Client(const Secrets* secrets) const;

  Status Create(const ::csi::v1::CreateVolumeRequest& req, ::csi::v1::Volume* out);
  Status Delete(const ::csi::v1::DeleteVolumeRequest& req);
  Status Expand(const ::csi::v1::ControllerExpandVolumeRequest& req,
                ::csi::v1::ControllerExpandVolumeResponse* rep);
  Status Validate(const ::csi::v1::ValidateVolumeCapabilitiesRequest& req,
                  ::csi::v1::ValidateVolumeCapabilitiesResponse* rep);
  Status List(const ::csi::v1::ListVolumesRequest& req, ::csi::v1::ListVolumesResponse* rep);
  Status Capacity(const ::csi::v1::GetCapacityRequest& req, ::csi::v1::GetCapacityResponse* rep);

  // Fills a CSI Volume from the provisioner's volume info.
  void ToCsi(const nlohmann::json& info, ::csi::v1::Volume* out) const;

  ControllerOptions options_;
};

// True iff `id` looks like a provisioner id (32 lower-case hex).
bool IsProvisionerId(const std::string& id);

}  // namespace cairn::csi
