// gRPC glue: authenticate, count, call the Manager, map the Status. Watchers.
#include "storaged/service.h"

#include <spdlog/spdlog.h>

#include "common/file_util.h"
#include "common/status_grpc.h"

namespace cairn::storaged {

// ---------------------------------------------------------------------------
// Authentication.

Status Authenticator::CheckHeader(std::string_view header, Role role, std::string_view what) const {
  constexpr std::string_view kBearer = "Bearer ";
  if (header.size() <= kBearer.size() || header.substr(0, kBearer.size()) != kBearer) {
    return Status::Unauthenticated("missing bearer token");
  }
  std::string_view token = header.substr(kBearer.size());
  if (ConstantTimeEquals(token, admin_token_)) return Status::Ok();
  if (ConstantTimeEquals(token, data_token_)) {
    if (role == Role::kData) return Status::Ok();
    return Status::PermissionDenied("the data token may not call " + std::string(what) +
                                    ": it needs the admin token");
  }
  return Status::Unauthenticated("invalid token");
}

Status Authenticator::Check(const grpc::ServerContextBase& context, Role role,
                            std::string_view method) const {
  const auto& md = context.client_metadata();
  auto it = md.find("authorization");
  if (it == md.end()) return Status::Unauthenticated("missing bearer token");
  return CheckHeader(std::string_view(it->second.data(), it->second.size()), role, method);
}

// ---------------------------------------------------------------------------
// Counters.

void RpcCounters::Record(const std::string& method, StatusCode code) {
  std::lock_guard lock(mu_);
  ++counts_[{method, code}];
}

std::map<std::pair<std::string, StatusCode>, uint64_t> RpcCounters::Snapshot() const {
  std::lock_guard lock(mu_);
  return counts_;
}

// ---------------------------------------------------------------------------
// Watchers.

// One WatchVolumeSpec stream. Holds no thread while it waits: the hub hands
// it newer generations (Offer) or the end of the stream (End); at most one
// write is in flight, and only the newest pending generation is kept.
// Deletes itself in OnDone.
class WatchReactor final : public grpc::ServerWriteReactor<spb::VolumeSpecReply> {
 public:
  WatchReactor(SpecHub* hub, RpcCounters* counters, std::string name, uint64_t known)
      : hub_(hub), counters_(counters), name_(std::move(name)), sent_(known) {}

  // Registers with the hub (which offers the current spec at once), or
  // finishes with the hub's refusal.
  void Begin() {
    grpc::Status refusal;
    if (!hub_->Add(this, name_, &refusal)) End(refusal);
  }

  const std::string& name() const { return name_; }
  // Called by the hub (its lock held) before it offers anything.
  void MarkRegistered() { registered_.store(true); }

  // Called by the hub, its lock held.
  void Offer(uint64_t generation, const std::string& json) {
    std::lock_guard lock(mu_);
    if (end_.has_value()) return;
    uint64_t newest = next_.has_value() ? next_->generation() : sent_;
    if (generation <= newest) return;
    spb::VolumeSpecReply m;
    m.set_name(name_);
    m.set_spec_json(json);
    m.set_generation(generation);
    next_ = std::move(m);
    PumpLocked();
  }
  void End(const grpc::Status& status) {
    std::lock_guard lock(mu_);
    if (!end_.has_value()) end_ = status;
    PumpLocked();
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard lock(mu_);
    writing_ = false;
    if (!ok) {
      if (!end_.has_value()) end_ = grpc::Status(grpc::StatusCode::CANCELLED, "watcher went away");
      next_.reset();
    }
    PumpLocked();
  }
  void OnCancel() override {
    std::lock_guard lock(mu_);
    if (!end_.has_value()) end_ = grpc::Status(grpc::StatusCode::CANCELLED, "watch cancelled");
    next_.reset();
    PumpLocked();
  }
  void OnDone() override {
    if (registered_) hub_->Remove(this);
    counters_->Record("WatchVolumeSpec", static_cast<StatusCode>(final_code_));
    delete this;
  }

 private:
  // Starts the next write, or finishes once nothing is left to write.
  void PumpLocked() {
    if (finished_ || writing_) return;
    if (next_.has_value()) {
      writing_msg_ = std::move(*next_);
      next_.reset();
      sent_ = writing_msg_.generation();
      writing_ = true;
      StartWrite(&writing_msg_);
      return;
    }
    if (end_.has_value()) {
      finished_ = true;
      final_code_ = end_->error_code();
      Finish(*end_);
    }
  }

  SpecHub* const hub_;
  RpcCounters* const counters_;
  const std::string name_;
  std::atomic<bool> registered_{false};

  std::mutex mu_;
  uint64_t sent_;                             // GUARDED_BY(mu_): newest generation written
  std::optional<spb::VolumeSpecReply> next_;  // GUARDED_BY(mu_)
  spb::VolumeSpecReply writing_msg_;          // GUARDED_BY(mu_): alive until OnWriteDone
  bool writing_ = false;                      // GUARDED_BY(mu_)
  bool finished_ = false;                     // GUARDED_BY(mu_)
  std::optional<grpc::Status> end_;           // GUARDED_BY(mu_)
  grpc::StatusCode final_code_ = grpc::StatusCode::OK;
};

bool SpecHub::Add(WatchReactor* w, const std::string& name, grpc::Status* refusal) {
  std::lock_guard lock(mu_);
  if (closed_) {
    *refusal = grpc::Status(grpc::StatusCode::UNAVAILABLE, "storaged is shutting down");
    return false;
  }
  auto it = latest_.find(name);
  if (it == latest_.end()) {
    *refusal = grpc::Status(grpc::StatusCode::NOT_FOUND, "volume " + name + " not found");
    return false;
  }
  w->MarkRegistered();
  watchers_.emplace(name, w);
  w->Offer(it->second.first, it->second.second);
  return true;
}

void SpecHub::Remove(WatchReactor* w) {
  std::lock_guard lock(mu_);
  auto [b, e] = watchers_.equal_range(w->name());
  for (auto it = b; it != e; ++it) {
    if (it->second == w) {
      watchers_.erase(it);
      return;
    }
  }
}

void SpecHub::Publish(const std::string& name, const SpecRecord* now) {
  std::lock_guard lock(mu_);
  auto [b, e] = watchers_.equal_range(name);
  if (now != nullptr) {
    latest_[name] = {now->spec.generation, now->json};
    for (auto it = b; it != e; ++it) it->second->Offer(now->spec.generation, now->json);
    return;
  }
  latest_.erase(name);
  const grpc::Status gone(grpc::StatusCode::NOT_FOUND, "volume spec " + name + " was deleted");
  for (auto it = b; it != e; ++it) it->second->End(gone);
  watchers_.erase(b, e);
}

void SpecHub::Close() {
  std::lock_guard lock(mu_);
  closed_ = true;
  const grpc::Status bye(grpc::StatusCode::UNAVAILABLE, "storaged is shutting down");
  for (auto& [name, w] : watchers_) w->End(bye);
  watchers_.clear();
}

size_t SpecHub::watchers() const {
  std::lock_guard lock(mu_);
  return watchers_.size();
}

// ---------------------------------------------------------------------------
// The service.

void StoragedServiceImpl::SetIdentity(NodeIdentity identity) {
  std::lock_guard lock(identity_mu_);
  identity_ = std::move(identity);
}

template <class Fn>
grpc::Status StoragedServiceImpl::Serve(const char* method, Role role, grpc::ServerContext* ctx,
                                        Fn fn) {
  Status s = auth_->Check(*ctx, role, method);
  if (!s.ok()) {
    spdlog::warn("event=rpc-refused method={} peer={} code={} reason=\"{}\"", method, ctx->peer(),
                 StatusCodeName(s.code()), s.message());
  } else {
    s = fn();
    if (!s.ok()) {
      spdlog::debug("event=rpc-failed method={} code={} error=\"{}\"", method,
                    StatusCodeName(s.code()), s.message());
    }
  }
  counters_->Record(method, s.code());
  return ToGrpcStatus(s, ctx);
}

// Runs `call` (returning StatusOr<T>) and moves its value to *out.
#define CAIRN_STORAGED_VALUE(call, out) \
  [&]() -> Status {                     \
    auto r = (call);                    \
    if (!r.ok()) return r.status();     \
    *(out) = std::move(*r);             \
    return Status::Ok();                \
  }

grpc::Status StoragedServiceImpl::GetNode(grpc::ServerContext* ctx, const spb::GetNodeRequest*,
                                          spb::NodeInfo* out) {
  return Serve("GetNode", Role::kData, ctx, [&]() -> Status {
    std::lock_guard lock(identity_mu_);
    out->set_name(identity_.name);
    out->set_api_address(identity_.api_address);
    out->set_metrics_address(identity_.metrics_address);
    out->set_version(identity_.version);
    out->set_started_at_unix_ms(identity_.started_at_unix_ms);
    out->set_brickd_address(manager_->brickd_address());
    out->set_brickd_pid(supervisor_->pid());
    out->set_brickd_up(supervisor_->up());
    out->set_brickd_restarts(supervisor_->restarts());
    out->set_brickd_adopted(supervisor_->adopted());
    return Status::Ok();
  });
}

grpc::Status StoragedServiceImpl::AddDevice(grpc::ServerContext* ctx,
                                            const spb::AddDeviceRequest* req,
                                            spb::AddDeviceReply* out) {
  return Serve("AddDevice", Role::kAdmin, ctx,
               CAIRN_STORAGED_VALUE(manager_->AddDevice(*req), out));
}

grpc::Status StoragedServiceImpl::RemoveDevice(grpc::ServerContext* ctx,
                                               const spb::RemoveDeviceRequest* req, spb::Empty*) {
  return Serve("RemoveDevice", Role::kAdmin, ctx,
               [&] { return manager_->RemoveDevice(req->device_id()); });
}

grpc::Status StoragedServiceImpl::ListDevices(grpc::ServerContext* ctx,
                                              const spb::ListDevicesRequest*,
                                              spb::ListDevicesReply* out) {
  return Serve("ListDevices", Role::kAdmin, ctx, [&] {
    *out = manager_->ListDevices();
    return Status::Ok();
  });
}

grpc::Status StoragedServiceImpl::CreateBrick(grpc::ServerContext* ctx,
                                              const spb::CreateBrickRequest* req,
                                              spb::CreateBrickReply* out) {
  return Serve("CreateBrick", Role::kAdmin, ctx,
               CAIRN_STORAGED_VALUE(manager_->CreateBrick(*req), out));
}

grpc::Status StoragedServiceImpl::DeleteBrick(grpc::ServerContext* ctx,
                                              const spb::DeleteBrickRequest* req, spb::Empty*) {
  return Serve("DeleteBrick", Role::kAdmin, ctx, [&] { return manager_->DeleteBrick(*req); });
}

grpc::Status StoragedServiceImpl::ResizeBrick(grpc::ServerContext* ctx,
                                              const spb::ResizeBrickRequest* req, spb::Brick* out) {
  return Serve("ResizeBrick", Role::kAdmin, ctx,
               CAIRN_STORAGED_VALUE(manager_->ResizeBrick(*req), out));
}

grpc::Status StoragedServiceImpl::ListBricks(grpc::ServerContext* ctx,
                                             const spb::ListBricksRequest*,
                                             spb::ListBricksReply* out) {
  return Serve("ListBricks", Role::kAdmin, ctx, [&] {
    *out = manager_->ListBricks();
    return Status::Ok();
  });
}

grpc::Status StoragedServiceImpl::PutVolumeSpec(grpc::ServerContext* ctx,
                                                const spb::PutVolumeSpecRequest* req,
                                                spb::PutVolumeSpecReply* out) {
  return Serve("PutVolumeSpec", Role::kAdmin, ctx,
               CAIRN_STORAGED_VALUE(manager_->PutVolumeSpec(req->spec_json()), out));
}

grpc::Status StoragedServiceImpl::DeleteVolumeSpec(grpc::ServerContext* ctx,
                                                   const spb::DeleteVolumeSpecRequest* req,
                                                   spb::Empty*) {
  return Serve("DeleteVolumeSpec", Role::kAdmin, ctx,
               [&] { return manager_->DeleteVolumeSpec(req->name()); });
}

grpc::Status StoragedServiceImpl::GetVolumeSpec(grpc::ServerContext* ctx,
                                                const spb::GetVolumeSpecRequest* req,
                                                spb::VolumeSpecReply* out) {
  return Serve("GetVolumeSpec", Role::kData, ctx,
               CAIRN_STORAGED_VALUE(manager_->GetVolumeSpec(req->name()), out));
}

grpc::Status StoragedServiceImpl::ListVolumeSpecs(grpc::ServerContext* ctx,
                                                  const spb::ListVolumeSpecsRequest*,
                                                  spb::ListVolumeSpecsReply* out) {
  return Serve("ListVolumeSpecs", Role::kData, ctx, [&] {
    *out = manager_->ListVolumeSpecs();
    return Status::Ok();
  });
}

namespace {

Status NoHeal() { return Status::Unimplemented("self-heal is not built into this storaged"); }

bool IsHex(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

}  // namespace

grpc::Status StoragedServiceImpl::HealInfo(grpc::ServerContext* ctx,
                                           const spb::HealInfoRequest* req,
                                           spb::HealInfoReply* out) {
  return Serve("HealInfo", Role::kData, ctx, [&]() -> Status {
    if (heal_ == nullptr) return NoHeal();
    if (req->volume().empty()) return Status::InvalidArgument("volume is required");
    return CAIRN_STORAGED_VALUE(heal_->Info(req->volume()), out)();
  });
}

grpc::Status StoragedServiceImpl::StartHeal(grpc::ServerContext* ctx,
                                            const spb::StartHealRequest* req, spb::Empty*) {
  return Serve("StartHeal", Role::kAdmin, ctx, [&]() -> Status {
    if (heal_ == nullptr) return NoHeal();
    if (req->volume().empty()) return Status::InvalidArgument("volume is required");
    return heal_->Start(req->volume(), req->full());
  });
}

grpc::Status StoragedServiceImpl::ResolveSplitBrain(grpc::ServerContext* ctx,
                                                    const spb::ResolveSplitBrainRequest* req,
                                                    spb::Empty*) {
  return Serve("ResolveSplitBrain", Role::kAdmin, ctx, [&]() -> Status {
    if (heal_ == nullptr) return NoHeal();
    if (req->volume().empty()) return Status::InvalidArgument("volume is required");
    if (!IsHex(req->id())) return Status::InvalidArgument("id must be the object's hex id");
    if (req->policy() == spb::ResolveSplitBrainRequest::POLICY_UNSPECIFIED) {
      return Status::InvalidArgument(
          "policy is required (SOURCE_BRICK, LATEST_MTIME, BIGGER_FILE)");
    }
    if (req->policy() == spb::ResolveSplitBrainRequest::SOURCE_BRICK &&
        req->source_brick().empty()) {
      return Status::InvalidArgument("policy SOURCE_BRICK needs source_brick");
    }
    return heal_->Resolve(*req);
  });
}

grpc::ServerWriteReactor<spb::VolumeSpecReply>* StoragedServiceImpl::WatchVolumeSpec(
    grpc::CallbackServerContext* ctx, const spb::WatchVolumeSpecRequest* req) {
  auto* w = new WatchReactor(hub_, counters_, req->name(), req->known_generation());
  Status s = auth_->Check(*ctx, Role::kData, "WatchVolumeSpec");
  if (s.ok() && req->name().empty()) s = Status::InvalidArgument("volume name is required");
  if (!s.ok()) {
    if (s.code() == StatusCode::kUnauthenticated || s.code() == StatusCode::kPermissionDenied) {
      spdlog::warn("event=rpc-refused method=WatchVolumeSpec peer={} code={} reason=\"{}\"",
                   ctx->peer(), StatusCodeName(s.code()), s.message());
    }
    w->End(ToGrpcStatus(s, ctx));
    return w;
  }
  w->Begin();
  return w;
}

}  // namespace cairn::storaged
