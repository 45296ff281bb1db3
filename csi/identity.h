// The CSI Identity service: plugin name and version, capabilities, and a
// probe that checks what the served roles need (docs/csi.md, "Identity").
#pragma once

#include "csi/controller.h"
#include "csi/node.h"
#include "proto/csi.grpc.pb.h"

namespace cairn::csi {

class IdentityServer final : public ::csi::v1::Identity::Service {
 public:
  // Either may be null (the role is not served).
  IdentityServer(const ControllerServer* controller, const NodeServer* node)
      : controller_(controller), node_(node) {}

  grpc::Status GetPluginInfo(grpc::ServerContext*, const ::csi::v1::GetPluginInfoRequest*,
                             ::csi::v1::GetPluginInfoResponse*) override;
  grpc::Status GetPluginCapabilities(grpc::ServerContext*,
                                     const ::csi::v1::GetPluginCapabilitiesRequest*,
                                     ::csi::v1::GetPluginCapabilitiesResponse*) override;
  grpc::Status Probe(grpc::ServerContext*, const ::csi::v1::ProbeRequest*,
                     ::csi::v1::ProbeResponse*) override;

 private:
  const ControllerServer* controller_;
  const NodeServer* node_;
};

}  // namespace cairn::csi
