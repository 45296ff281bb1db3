// Status <-> grpc::Status.
#include "common/status_grpc.h"

#include <absl/synchronization/mutex.h>

#include <charconv>
#include <string>

namespace cairn {

grpc::Status ToGrpcStatus(const Status& status, grpc::ServerContextBase* context) {
  if (status.ok()) return grpc::Status::OK;
  if (context != nullptr && status.posix_errno() != 0) {
    context->AddTrailingMetadata(kErrnoMetadataKey, std::to_string(status.posix_errno()));
  }
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), status.message());
}

Status FromGrpcStatus(const grpc::Status& status, const grpc::ClientContext& context) {
  if (status.ok()) return Status::Ok();
  int err = 0;
  const auto& trailers = context.GetServerTrailingMetadata();
  if (auto it = trailers.find(kErrnoMetadataKey); it != trailers.end()) {
    const char* begin = it->second.data();
    const char* end = begin + it->second.size();
    int value = 0;
    if (auto r = std::from_chars(begin, end, value); r.ec == std::errc() && r.ptr == end) {
      err = value;
    }
  }
  int code = static_cast<int>(status.error_code());
  if (code < 0 || code > static_cast<int>(StatusCode::kUnauthenticated)) {
    code = static_cast<int>(StatusCode::kUnknown);
  }
  return Status(static_cast<StatusCode>(code), status.error_message(), err);
}

void DisableMutexDeadlockDetection() {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
}

}  // namespace cairn
