// Connections to brickd nodes and parallel calls to several bricks.
//
// One gRPC channel per brickd node, shared by every brick of every
// subvolume it serves. Calls use the callback API so a mutation goes to all
// replicas at once and the caller waits for the slowest (one round trip).
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "common/status_grpc.h"
#include "proto/brick.grpc.pb.h"

namespace cairn::client {

namespace pb = ::cairn::brick::v1;

// One brickd process.
class Node {
 public:
  explicit Node(std::string address);

  const std::string& address() const { return address_; }
  pb::Brick::Stub* stub() const { return stub_.get(); }

  // False after a call failed for transport reasons until a probe succeeds.
  bool connected() const { return connected_.load(std::memory_order_acquire); }
  // Returns true if this call changed the state.
  bool SetConnected(bool up) { return connected_.exchange(up) != up; }

  // Asks the channel to connect and waits up to `timeout` until it is. A
  // call that fails fast on a broken channel never drives the connection
  // attempt: gRPC only completes a pending TCP connect while some thread
  // polls, so a prober must wait here rather than only send fail-fast calls
  // (else a returning brick is noticed seconds late, by chance).
  bool WaitConnected(std::chrono::milliseconds timeout);

 private:
  std::string address_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<pb::Brick::Stub> stub_;
  std::atomic<bool> connected_{true};
};

// The result of one call to one brick.
template <class Rep>
struct BrickResult {
  bool sent = false;       // false: skipped (node known to be down)
  bool transport = false;  // unreachable, reset or timed out: the brick's state is unknown
  Status status;           // ok, or the brick's answer (with errno)
  Rep reply;
  bool ok() const { return sent && status.ok(); }
};

// True for gRPC failures that say nothing about the operation's outcome.
bool IsTransportFailure(const grpc::Status& status);

struct CallTarget {
  Node* node = nullptr;
  std::string brick_id;
};

// Logs a node going away (once per transition).
void OnDisconnect(const Node& node, const Status& why);

// Sets up a context: deadline and bearer token.
void PrepareContext(grpc::ClientContext* ctx, const std::string& token,
                    std::chrono::milliseconds timeout);

// The calling thread's completion queue. FanOut waits on it itself, so the
// answers reach the caller without a hand-off through gRPC's callback
// threads (two context switches less per call on a small machine).
grpc::CompletionQueue* ThreadCompletionQueue();

// Calls `issue(stub, ctx, request, cq)` (which returns the call's
// ClientAsyncResponseReader, see CAIRN_ASYNC) for every target whose node is
// connected (all of them if `include_down`), in parallel, and waits for all
// answers. `make_request(i)` builds the request for target i. With
// `wait_for_ready` a call waits for its connection (up to the deadline)
// instead of failing at once on a node that is not connected yet.
//   auto r = FanOut<pb::WriteRequest, pb::WriteReply>(targets, token, timeout,
//       [&](size_t i) { ... }, CAIRN_ASYNC(Write));
template <class Req, class Rep, class MakeReq, class Issue>
std::vector<BrickResult<Rep>> FanOut(const std::vector<CallTarget>& targets,
                                     const std::string& token, std::chrono::milliseconds timeout,
                                     MakeReq make_request, Issue issue, bool include_down = false,
                                     bool wait_for_ready = false) {
  const size_t n = targets.size();
  std::vector<BrickResult<Rep>> results(n);
  std::vector<Req> requests(n);
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts(n);
  std::vector<std::unique_ptr<grpc::ClientAsyncResponseReader<Rep>>> readers(n);
  std::vector<grpc::Status> statuses(n);
  grpc::CompletionQueue* cq = ThreadCompletionQueue();
  size_t pending = 0;
  for (size_t i = 0; i < n; ++i) {
    if (!include_down && !targets[i].node->connected()) {
      results[i].transport = true;
      results[i].status = Status(
          StatusCode::kUnavailable,
          "brick " + targets[i].brick_id + " on " + targets[i].node->address() + " is disconnected",
          ENOTCONN);
      continue;
    }
    requests[i] = make_request(i);
    contexts[i] = std::make_unique<grpc::ClientContext>();
    PrepareContext(contexts[i].get(), token, timeout);
    contexts[i]->set_wait_for_ready(wait_for_ready);
    results[i].sent = true;
    readers[i] = issue(targets[i].node->stub(), contexts[i].get(), requests[i], cq);
    readers[i]->StartCall();
    readers[i]->Finish(&results[i].reply, &statuses[i], reinterpret_cast<void*>(i + 1));
    ++pending;
  }
  // Every call has a deadline, so every Finish completes.
  while (pending > 0) {
    void* tag = nullptr;
    bool ok = false;
    if (!cq->Next(&tag, &ok)) break;  // only at shutdown
    --pending;
  }
  for (size_t i = 0; i < n; ++i) {
    if (!results[i].sent) continue;
    if (statuses[i].ok()) continue;
    results[i].transport = IsTransportFailure(statuses[i]);
    results[i].status = FromGrpcStatus(statuses[i], *contexts[i]);
    if (results[i].transport && targets[i].node->SetConnected(false)) {
      OnDisconnect(*targets[i].node, results[i].status);
    }
  }
  return results;
}

// The "issue" callable for FanOut of one Brick method: CAIRN_ASYNC(Write).
#define CAIRN_ASYNC(Method)                                                              \
  [](::cairn::brick::v1::Brick::Stub* stub, ::grpc::ClientContext* ctx, const auto& req, \
     ::grpc::CompletionQueue* cq) { return stub->PrepareAsync##Method(ctx, req, cq); }

}  // namespace cairn::client
