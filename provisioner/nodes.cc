#include "provisioner/nodes.h"

#include "common/status_grpc.h"

namespace cairn::provisioner {

std::string WithDefaultPort(const std::string& address) {
  // host:port, [v6]:port, or a bare host.
  if (!address.empty() && address.front() == '[') {
    return address.find("]:") != std::string::npos ? address : address + ":24007";
  }
  return address.find(':') != std::string::npos ? address : address + ":24007";
}

sd::Storaged::Stub* NodeClients::Stub(const std::string& address) {
  std::lock_guard l(mu_);
  auto& stub = stubs_[address];
  if (!stub) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
    args.SetMaxReceiveMessageSize(64 << 20);
    auto channel = grpc::CreateCustomChannel(WithDefaultPort(address),
                                             grpc::InsecureChannelCredentials(), args);
    stub = sd::Storaged::NewStub(channel);
  }
  return stub.get();
}

void NodeClients::Prepare(grpc::ClientContext* ctx) const {
  ctx->set_deadline(std::chrono::system_clock::now() + timeout_);
  // Waits through a reconnect (a restarted storaged) instead of failing at
  // once; the deadline bounds it.
  ctx->set_wait_for_ready(true);
  ctx->AddMetadata("authorization", "Bearer " + token_);
}

bool NodeClients::Track(grpc::ClientContext* ctx) {
  std::lock_guard l(calls_mu_);
  if (cancelled_) return false;
  calls_.insert(ctx);
  return true;
}

void NodeClients::Untrack(grpc::ClientContext* ctx) {
  std::lock_guard l(calls_mu_);
  calls_.erase(ctx);
}

void NodeClients::CancelAll() {
  std::lock_guard l(calls_mu_);
  cancelled_ = true;
  for (auto* ctx : calls_) ctx->TryCancel();
}

Status NodeClients::Convert(const std::string& address, const grpc::Status& s,
                            const grpc::ClientContext& ctx) {
  if (s.ok()) return Status::Ok();
  Status st = FromGrpcStatus(s, ctx);
  if (s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    return Status::Unavailable("node " + address + " did not answer: " + st.message());
  }
  return Status(st.code(), "node " + address + ": " + st.message());
}

}  // namespace cairn::provisioner
