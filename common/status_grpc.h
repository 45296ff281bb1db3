// The gRPC edge: Status <-> grpc::Status. Codes map one to one; a precise
// errno travels in the trailing metadata key "cairn-errno".
//
//   return ToGrpcStatus(brick.Unlink(...), context);            // server
//   Status s = FromGrpcStatus(stub->Unlink(&ctx, req, &rep), ctx); // client
#pragma once

#include <grpcpp/client_context.h>
#include <grpcpp/server_context.h>
#include <grpcpp/support/status.h>

#include "common/status.h"

namespace cairn {

// Trailing metadata key carrying the decimal errno of a failed call.
inline constexpr char kErrnoMetadataKey[] = "cairn-errno";

// Converts `status` for a server reply; records its errno in `context`'s
// trailing metadata when there is one (context may be null).
grpc::Status ToGrpcStatus(const Status& status, grpc::ServerContextBase* context);

// Converts the result of a finished client call, reading the errno (if any)
// from `context`'s trailing metadata.
Status FromGrpcStatus(const grpc::Status& status, const grpc::ClientContext& context);

// Turns off abseil's mutex deadlock-graph bookkeeping, which Debian's abseil
// keeps on (a debug-mode default) and which every gRPC call pays for: a
// profile of brickd showed GraphCycles among its top symbols. Idempotent;
// call once at process start (brickd, libcairn's Volume::Open).
void DisableMutexDeadlockDetection();

}  // namespace cairn
