#include "csi/controller.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <map>

#include "cairnctl/settings.h"
#include "csi/capability.h"
#include "csi/params.h"

namespace cairn::csi {
namespace {

using ::csi::v1::ControllerServiceCapability;
using nlohmann::json;

std::map<std::string, std::string> ToMap(const google::protobuf::Map<std::string, std::string>& m) {
  return {m.begin(), m.end()};
}

std::string Str(const json& j, const char* key) {
  if (!j.is_object() || !j.contains(key) || !j[key].is_string()) return "";
  return j[key].get<std::string>();
}

int64_t Int(const json& j, const char* key) {
  if (!j.is_object() || !j.contains(key) || !j[key].is_number()) return 0;
  return j[key].get<int64_t>();
}

int ReplicaOf(const json& info) {
  const json d = info.value("durability", json::object());
  if (d.value("type", "replicate") == "none") return 1;
  return d.value("replicate", json::object()).value("replica", 3);
}

Status CheckCapabilities(
    const google::protobuf::RepeatedPtrField<::csi::v1::VolumeCapability>& caps) {
  if (caps.empty()) return Status::InvalidArgument("volume_capabilities is required");
  for (int i = 0; i < caps.size(); ++i) {
    CAIRN_RETURN_IF_ERROR(
        CheckCapability(caps[i], "volume_capabilities[" + std::to_string(i) + "]"));
  }
  return Status::Ok();
}

// The volume info of `id`; NotFound when the provisioner does not know it.
StatusOr<json> GetVolume(ctl::Api& api, const std::string& id) { return api.Get("/volumes/" + id); }

}  // namespace

bool IsProvisionerId(const std::string& id) {
  if (id.size() != 32) return false;
  return std::all_of(id.begin(), id.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

StatusOr<std::unique_ptr<ctl::RestClient>> ControllerServer::Client(const Secrets* secrets) const {
  std::string server = options_.server, user = options_.user, key = options_.key;
  if (secrets != nullptr) {
    if (auto it = secrets->find("server"); it != secrets->end() && !it->second.empty()) {
      server = it->second;
    }
    if (auto it = secrets->find("user"); it != secrets->end() && !it->second.empty()) {
      user = it->second;
    }
    if (auto it = secrets->find("key"); it != secrets->end() && !it->second.empty()) {
      key = it->second;
    }
  }
  if (server.empty()) {
    return Status::FailedPrecondition(
        "no provisioner configured: start cairn-csi with --provisioner URL (or a context file), "
        "or pass a \"server\" secret");
  }
  CAIRN_ASSIGN_OR_RETURN(server, ctl::NormalizeServerUrl(server));
  if (key.empty()) {
    return Status::FailedPrecondition(
        "no provisioner key: start cairn-csi with --provisioner-key-file, or pass a \"key\" "
        "secret");
  }
  if (user != "admin" && user != "user") {
    return Status::InvalidArgument("provisioner user must be admin or user, not \"" + user + "\"");
  }
  return std::make_unique<ctl::RestClient>(server, user, key, options_.rest);
}

Status ControllerServer::Ready() const {
  CAIRN_ASSIGN_OR_RETURN(auto api, Client(nullptr));
  auto r = api->Send("GET", "/hello", "");
  if (!r.ok()) return r.status();
  if (r->status != 200) {
    return Status::Unavailable("provisioner " + api->server() + " answered GET /hello with " +
                               std::to_string(r->status) + ": " + r->body.substr(0, 200));
  }
  return Status::Ok();
}

void ControllerServer::ToCsi(const json& info, ::csi::v1::Volume* out) const {
  out->set_volume_id(Str(info, "id"));
  out->set_capacity_bytes(Int(info, "size") * kGiB);
  auto& ctx = *out->mutable_volume_context();
  ctx["name"] = Str(info, "name");
  const json cairn = info.value("mount", json::object()).value("cairn", json::object());
  ctx["source"] = Str(cairn, "source");
  auto* topo = out->add_accessible_topology();
  (*topo->mutable_segments())[kTopologyKey] = options_.topology_value;
}

Status ControllerServer::Create(const ::csi::v1::CreateVolumeRequest& req, ::csi::v1::Volume* out) {
  if (req.name().empty()) return Status::InvalidArgument("name is required");
  if (req.name().size() > 1024) return Status::InvalidArgument("name is too long");
  CAIRN_RETURN_IF_ERROR(CheckCapabilities(req.volume_capabilities()));
  if (req.has_volume_content_source()) {
    return Status::InvalidArgument(
        "volume_content_source: creating a volume from a snapshot or another volume is not "
        "supported");
  }
  CAIRN_ASSIGN_OR_RETURN(CreateParams params, ParseParameters(ToMap(req.parameters())));
  if (req.has_accessibility_requirements() &&
      req.accessibility_requirements().requisite_size() > 0) {
    bool ok = false;
    for (const auto& t : req.accessibility_requirements().requisite()) {
      auto it = t.segments().find(kTopologyKey);
      if (it != t.segments().end() && it->second == options_.topology_value) ok = true;
    }
    if (!ok) {
      return Status::ResourceExhausted(
          std::string("accessibility_requirements: no requisite topology has ") + kTopologyKey +
          "=" + options_.topology_value + ", the only place this driver's volumes live");
    }
  }
  const int64_t required = req.capacity_range().required_bytes();
  const int64_t limit = req.capacity_range().limit_bytes();
  CAIRN_ASSIGN_OR_RETURN(int64_t gib, SizeGiB(required, limit));
  const std::string name = VolumeNameFor(req.name(), params);
  CAIRN_ASSIGN_OR_RETURN(auto api, Client(&req.secrets()));

  auto created = api->Post("/volumes", params.RequestBody(name, gib));
  if (created.ok()) {
    ToCsi(*created, out);
    spdlog::info("event=volume-created csi_name=\"{}\" volume={} name={} gib={}", req.name(),
                 out->volume_id(), name, gib);
    return Status::Ok();
  }
  if (created.status().code() == StatusCode::kNotFound) {
    // POST /volumes names a missing thing only for the clusters it was given.
    return Status::InvalidArgument("parameter clusterid: " + created.status().message());
  }
  if (created.status().code() != StatusCode::kAlreadyExists) return created.status();
  // Same name, another size: is what exists compatible with this request?
  CAIRN_ASSIGN_OR_RETURN(json list, api->Get("/volumes?name=" + name));
  const json ids = list.value("volumes", json::array());
  if (ids.empty() || !ids[0].is_string()) return created.status();
  CAIRN_ASSIGN_OR_RETURN(json info, GetVolume(*api, ids[0].get<std::string>()));
  const int64_t have = Int(info, "size") * kGiB;
  const bool arbiter = info.value("arbiter", false);
  if (Str(info, "state") == "ready" && SizeFits(have, required, limit) &&
      ReplicaOf(info) == params.replica && arbiter == params.arbiter) {
    ToCsi(info, out);
    return Status::Ok();
  }
  return Status::AlreadyExists("a volume named " + name + " (CSI name \"" + req.name() +
                               "\") exists with " + std::to_string(Int(info, "size")) +
                               " GiB, replica " + std::to_string(ReplicaOf(info)) +
                               (arbiter ? " arbiter" : "") + ", state " + Str(info, "state") +
                               "; this request asks for " + std::to_string(gib) + " GiB, replica " +
                               std::to_string(params.replica) + (params.arbiter ? " arbiter" : ""));
}

Status ControllerServer::Delete(const ::csi::v1::DeleteVolumeRequest& req) {
  if (req.volume_id().empty()) return Status::InvalidArgument("volume_id is required");
  if (!IsProvisionerId(req.volume_id())) return Status::Ok();  // never one of ours: gone
  CAIRN_ASSIGN_OR_RETURN(auto api, Client(&req.secrets()));
  auto r = api->Delete("/volumes/" + req.volume_id());
  if (!r.ok() && r.status().code() == StatusCode::kNotFound) return Status::Ok();
  if (!r.ok()) return r.status();
  spdlog::info("event=volume-deleted volume={}", req.volume_id());
  return Status::Ok();
}

Status ControllerServer::Expand(const ::csi::v1::ControllerExpandVolumeRequest& req,
                                ::csi::v1::ControllerExpandVolumeResponse* rep) {
  if (req.volume_id().empty()) return Status::InvalidArgument("volume_id is required");
  if (!req.has_capacity_range()) return Status::InvalidArgument("capacity_range is required");
  if (req.has_volume_capability()) {
    CAIRN_RETURN_IF_ERROR(CheckCapability(req.volume_capability(), "volume_capability"));
  }
  const int64_t required = req.capacity_range().required_bytes();
  const int64_t limit = req.capacity_range().limit_bytes();
  CAIRN_ASSIGN_OR_RETURN(int64_t gib, SizeGiB(required, limit));
  if (!IsProvisionerId(req.volume_id())) {
    return Status::NotFound("volume " + req.volume_id() + " does not exist");
  }
  CAIRN_ASSIGN_OR_RETURN(auto api, Client(&req.secrets()));
  CAIRN_ASSIGN_OR_RETURN(json info, GetVolume(*api, req.volume_id()));
  const int64_t have = Int(info, "size");
  if (gib > have) {
    CAIRN_ASSIGN_OR_RETURN(info, api->Post("/volumes/" + req.volume_id() + "/expand",
                                           json{{"expand_size", gib - have}}));
    spdlog::info("event=volume-expanded volume={} from_gib={} to_gib={}", req.volume_id(), have,
                 Int(info, "size"));
  } else if (limit > 0 && have * kGiB > limit) {
    return Status::OutOfRange("volume " + req.volume_id() + " is already " + std::to_string(have) +
                              " GiB, above limit_bytes " + std::to_string(limit) +
                              " (volumes never shrink)");
  }
  rep->set_capacity_bytes(Int(info, "size") * kGiB);
  rep->set_node_expansion_required(false);
  return Status::Ok();
}

Status ControllerServer::Validate(const ::csi::v1::ValidateVolumeCapabilitiesRequest& req,
                                  ::csi::v1::ValidateVolumeCapabilitiesResponse* rep) {
  if (req.volume_id().empty()) return Status::InvalidArgument("volume_id is required");
  if (req.volume_capabilities().empty()) {
    return Status::InvalidArgument("volume_capabilities is required");
  }
  if (!IsProvisionerId(req.volume_id())) {
    return Status::NotFound("volume " + req.volume_id() + " does not exist");
  }
  CAIRN_ASSIGN_OR_RETURN(auto api, Client(&req.secrets()));
  CAIRN_ASSIGN_OR_RETURN(json info, GetVolume(*api, req.volume_id()));
  CAIRN_ASSIGN_OR_RETURN(CreateParams params, ParseParameters(ToMap(req.parameters())));
  (void)params;
  ::csi::v1::Volume mine;
  ToCsi(info, &mine);
  for (const auto& [k, v] : req.volume_context()) {
    auto it = mine.volume_context().find(k);
    if (it == mine.volume_context().end() || it->second != v) {
      rep->set_message("volume_context." + k + " does not match the volume's");
      return Status::Ok();
    }
  }
  for (int i = 0; i < req.volume_capabilities_size(); ++i) {
    Status s = CheckCapability(req.volume_capabilities(i),
                               "volume_capabilities[" + std::to_string(i) + "]");
    if (!s.ok()) {
      rep->set_message(s.message());
      return Status::Ok();  // not confirmed
    }
  }
  auto* c = rep->mutable_confirmed();
  *c->mutable_volume_context() = req.volume_context();
  *c->mutable_volume_capabilities() = req.volume_capabilities();
  *c->mutable_parameters() = req.parameters();
  return Status::Ok();
}

Status ControllerServer::List(const ::csi::v1::ListVolumesRequest& req,
                              ::csi::v1::ListVolumesResponse* rep) {
  if (req.max_entries() < 0) return Status::InvalidArgument("max_entries must not be negative");
  size_t start = 0;
  if (!req.starting_token().empty()) {
    const std::string& t = req.starting_token();
    auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), start);
    if (ec != std::errc() || p != t.data() + t.size()) {
      return Status::Aborted("starting_token \"" + t + "\" is not one this driver gave out");
    }
  }
  CAIRN_ASSIGN_OR_RETURN(auto api, Client(nullptr));
  CAIRN_ASSIGN_OR_RETURN(json list, api->Get("/volumes"));
  std::vector<std::string> ids;
  for (const auto& id : list.value("volumes", json::array())) {
    if (id.is_string()) ids.push_back(id.get<std::string>());
  }
  std::sort(ids.begin(), ids.end());
  if (start > ids.size()) {
    return Status::Aborted("starting_token " + req.starting_token() + " is past the end (" +
                           std::to_string(ids.size()) + " volumes)");
  }
  const size_t max = req.max_entries() > 0 ? static_cast<size_t>(req.max_entries()) : ids.size();
  size_t i = start;
  for (; i < ids.size() && static_cast<size_t>(rep->entries_size()) < max; ++i) {
    auto info = GetVolume(*api, ids[i]);
    if (!info.ok()) {
      if (info.status().code() == StatusCode::kNotFound) continue;  // deleted meanwhile
      return info.status();
    }
    if (Str(*info, "state") != "ready") continue;
    ToCsi(*info, rep->add_entries()->mutable_volume());
  }
  if (i < ids.size()) rep->set_next_token(std::to_string(i));
  return Status::Ok();
}

Status ControllerServer::Capacity(const ::csi::v1::GetCapacityRequest& req,
                                  ::csi::v1::GetCapacityResponse* rep) {
  for (int i = 0; i < req.volume_capabilities_size(); ++i) {
    CAIRN_RETURN_IF_ERROR(CheckCapability(req.volume_capabilities(i),
                                          "volume_capabilities[" + std::to_string(i) + "]"));
  }
  CAIRN_ASSIGN_OR_RETURN(CreateParams params, ParseParameters(ToMap(req.parameters())));
  if (req.has_accessible_topology()) {
    auto it = req.accessible_topology().segments().find(kTopologyKey);
    if (it == req.accessible_topology().segments().end() || it->second != options_.topology_value) {
      rep->set_available_capacity(0);  // nothing of ours lives there
      return Status::Ok();
    }
  }
  CAIRN_ASSIGN_OR_RETURN(auto api, Client(nullptr));
  CAIRN_ASSIGN_OR_RETURN(json topo, api->Get("/topology"));
  int64_t free_kib = 0;
  for (const auto& cluster : topo.value("clusters", json::array())) {
    if (!params.clusters.empty() && std::find(params.clusters.begin(), params.clusters.end(),
                                              Str(cluster, "id")) == params.clusters.end()) {
      continue;
    }
    for (const auto& node : cluster.value("nodes", json::array())) {
      if (node.value("state", "online") != "online") continue;
      for (const auto& dev : node.value("devices", json::array())) {
        if (dev.value("state", "online") != "online") continue;
        free_kib += dev.value("storage", json::object()).value("free", int64_t{0});
      }
    }
  }
  // Every byte is stored `replica` times (an arbiter brick holds metadata only).
  const int64_t bytes = free_kib * 1024 / std::max(1, params.replica);
  rep->set_available_capacity(bytes);
  rep->mutable_minimum_volume_size()->set_value(kGiB);
  return Status::Ok();
}

// ---------------------------------------------------------------------------

grpc::Status ControllerServer::CreateVolume(grpc::ServerContext*,
                                            const ::csi::v1::CreateVolumeRequest* req,
                                            ::csi::v1::CreateVolumeResponse* rep) {
  const int64_t t0 = NowMs();
  return Finish("CreateVolume", req->name(), Create(*req, rep->mutable_volume()), t0);
}

grpc::Status ControllerServer::DeleteVolume(grpc::ServerContext*,
                                            const ::csi::v1::DeleteVolumeRequest* req,
                                            ::csi::v1::DeleteVolumeResponse*) {
  const int64_t t0 = NowMs();
  return Finish("DeleteVolume", req->volume_id(), Delete(*req), t0);
}

grpc::Status ControllerServer::ControllerExpandVolume(
    grpc::ServerContext*, const ::csi::v1::ControllerExpandVolumeRequest* req,
    ::csi::v1::ControllerExpandVolumeResponse* rep) {
  const int64_t t0 = NowMs();
  return Finish("ControllerExpandVolume", req->volume_id(), Expand(*req, rep), t0);
}

grpc::Status ControllerServer::ValidateVolumeCapabilities(
    grpc::ServerContext*, const ::csi::v1::ValidateVolumeCapabilitiesRequest* req,
    ::csi::v1::ValidateVolumeCapabilitiesResponse* rep) {
  const int64_t t0 = NowMs();
  return Finish("ValidateVolumeCapabilities", req->volume_id(), Validate(*req, rep), t0);
}

grpc::Status ControllerServer::ListVolumes(grpc::ServerContext*,
                                           const ::csi::v1::ListVolumesRequest* req,
                                           ::csi::v1::ListVolumesResponse* rep) {
  const int64_t t0 = NowMs();
  return Finish("ListVolumes", "", List(*req, rep), t0);
}

grpc::Status ControllerServer::GetCapacity(grpc::ServerContext*,
                                           const ::csi::v1::GetCapacityRequest* req,
                                           ::csi::v1::GetCapacityResponse* rep) {
  const int64_t t0 = NowMs();
  return Finish("GetCapacity", "", Capacity(*req, rep), t0);
}

grpc::Status ControllerServer::ControllerGetCapabilities(
    grpc::ServerContext*, const ::csi::v1::ControllerGetCapabilitiesRequest*,
    ::csi::v1::ControllerGetCapabilitiesResponse* rep) {
  for (auto t : {ControllerServiceCapability::RPC::CREATE_DELETE_VOLUME,
                 ControllerServiceCapability::RPC::LIST_VOLUMES,
                 ControllerServiceCapability::RPC::GET_CAPACITY,
                 ControllerServiceCapability::RPC::EXPAND_VOLUME,
                 ControllerServiceCapability::RPC::SINGLE_NODE_MULTI_WRITER}) {
    rep->add_capabilities()->mutable_rpc()->set_type(t);
  }
  return grpc::Status::OK;
}

}  // namespace cairn::csi
