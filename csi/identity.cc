#include "csi/identity.h"

#include "csi/capability.h"

#ifndef CAIRN_VERSION
#define CAIRN_VERSION "unknown"
#endif

namespace cairn::csi {

using ::csi::v1::PluginCapability;

grpc::Status IdentityServer::GetPluginInfo(grpc::ServerContext*,
                                           const ::csi::v1::GetPluginInfoRequest*,
                                           ::csi::v1::GetPluginInfoResponse* rep) {
  rep->set_name(kDriverName);
  rep->set_vendor_version(CAIRN_VERSION);
  (*rep->mutable_manifest())["roles"] = std::string(controller_ ? "controller" : "") +
                                        (controller_ && node_ ? "," : "") + (node_ ? "node" : "");
  return grpc::Status::OK;
}

grpc::Status IdentityServer::GetPluginCapabilities(grpc::ServerContext*,
                                                   const ::csi::v1::GetPluginCapabilitiesRequest*,
                                                   ::csi::v1::GetPluginCapabilitiesResponse* rep) {
  if (controller_ != nullptr) {
    rep->add_capabilities()->mutable_service()->set_type(
        PluginCapability::Service::CONTROLLER_SERVICE);
  }
  rep->add_capabilities()->mutable_service()->set_type(
      PluginCapability::Service::VOLUME_ACCESSIBILITY_CONSTRAINTS);
  rep->add_capabilities()->mutable_volume_expansion()->set_type(
      PluginCapability::VolumeExpansion::ONLINE);
  return grpc::Status::OK;
}

grpc::Status IdentityServer::Probe(grpc::ServerContext*, const ::csi::v1::ProbeRequest*,
                                   ::csi::v1::ProbeResponse* rep) {
  const int64_t t0 = NowMs();
  Status s = Status::Ok();
  if (node_ != nullptr) s = node_->Ready();
  if (s.ok() && controller_ != nullptr) s = controller_->Ready();
  if (s.ok()) rep->mutable_ready()->set_value(true);
  return Finish("Probe", "", s, t0);
}

}  // namespace cairn::csi
