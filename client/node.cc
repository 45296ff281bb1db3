#include "client/node.h"

#include <spdlog/spdlog.h>

namespace cairn::client {

namespace {
// A 4 MiB payload plus headers fits; the brick enforces its own limit.
constexpr int kMaxMessageBytes = 8 << 20;
}  // namespace

Node::Node(std::string address) : address_(std::move(address)) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(kMaxMessageBytes);
  args.SetMaxSendMessageSize(kMaxMessageBytes);
  // A brick that comes back is reconnected quickly (gRPC's default backoff
  // grows to two minutes).
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  // One connection per node and mount, not shared with other channels.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  channel_ = grpc::CreateCustomChannel(address_, grpc::InsecureChannelCredentials(), args);
  stub_ = pb::Brick::NewStub(channel_);
}

bool Node::WaitConnected(std::chrono::milliseconds timeout) {
  if (channel_->GetState(/*try_to_connect=*/true) == GRPC_CHANNEL_READY) return true;
  return channel_->WaitForConnected(std::chrono::system_clock::now() + timeout);
}

bool IsTransportFailure(const grpc::Status& status) {
  switch (status.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
    case grpc::StatusCode::CANCELLED:
      return true;
    default:
      return false;
  }
}

grpc::CompletionQueue* ThreadCompletionQueue() {
  struct Holder {
    grpc::CompletionQueue cq;
    ~Holder() {
      cq.Shutdown();
      void* tag;
      bool ok;
      while (cq.Next(&tag, &ok)) {
      }
    }
  };
  thread_local Holder holder;
  return &holder.cq;
}

void OnDisconnect(const Node& node, const Status& why) {
  spdlog::warn("event=brick_node_disconnected node={} reason=\"{}\"", node.address(),
               why.message());
}

void PrepareContext(grpc::ClientContext* ctx, const std::string& token,
                    std::chrono::milliseconds timeout) {
  ctx->set_deadline(std::chrono::system_clock::now() + timeout);
  if (!token.empty()) ctx->AddMetadata("authorization", "Bearer " + token);
}

}  // namespace cairn::client
