// Calls to the nodes' storaged (proto/storaged.proto) with the cluster's node
// token. One channel per storaged address, kept for the provisioner's life.
//
//   NodeClients nodes(token, 10s);
//   pb::CreateBrickRequest q; ...
//   pb::CreateBrickReply r;
//   Status s = nodes.Call("127.0.0.2:24007", &pb::Storaged::Stub::CreateBrick, q, &r);
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "common/status.h"
#include "proto/storaged.grpc.pb.h"

namespace cairn::provisioner {

namespace sd = ::cairn::storaged::v1;

class NodeClients {
 public:
  NodeClients(std::string token, std::chrono::milliseconds timeout)
      : token_(std::move(token)), timeout_(timeout) {}

  // The stub for a storaged at host[:port] (24007 when no port).
  sd::Storaged::Stub* Stub(const std::string& address);

  // One unary call. A node that does not answer within the timeout is
  // Unavailable "node A: …"; a node's own error keeps its code, with the
  // address in front of the message.
  template <class Req, class Rep>
  Status Call(const std::string& address,
              grpc::Status (sd::Storaged::Stub::*method)(grpc::ClientContext*, const Req&, Rep*),
              const Req& request, Rep* reply) {
    grpc::ClientContext ctx;
    Prepare(&ctx);
    if (!Track(&ctx))
      return Status::Unavailable("node " + address + ": the provisioner is stopping");
    grpc::Status s = (Stub(address)->*method)(&ctx, request, reply);
    Untrack(&ctx);
    return Convert(address, s, ctx);
  }

  // Cancels every call in flight and fails every later one (shutdown: no
  // SIGTERM waits for an unreachable node's timeout).
  void CancelAll();

  std::chrono::milliseconds timeout() const { return timeout_; }

 private:
  void Prepare(grpc::ClientContext* ctx) const;
  bool Track(grpc::ClientContext* ctx);
  void Untrack(grpc::ClientContext* ctx);
  static Status Convert(const std::string& address, const grpc::Status& s,
                        const grpc::ClientContext& ctx);

  std::string token_;
  std::chrono::milliseconds timeout_;
  std::mutex mu_;
  std::map<std::string, std::unique_ptr<sd::Storaged::Stub>> stubs_;
  std::mutex calls_mu_;
  std::set<grpc::ClientContext*> calls_;
  bool cancelled_ = false;
};

// "host" → "host:24007"; "host:port" unchanged.
std::string WithDefaultPort(const std::string& address);

}  // namespace cairn::provisioner
