#include "csi/capability.h"

#include <spdlog/spdlog.h>

#include <chrono>

#include "common/status_grpc.h"

namespace cairn::csi {

using ::csi::v1::VolumeCapability;

Status CheckCapability(const VolumeCapability& cap, const std::string& where) {
  if (cap.has_block()) {
    return Status::InvalidArgument(
        where +
        ": the block access type is not supported yet (Cairn serves file volumes; "
        "use a Filesystem volumeMode)");
  }
  if (!cap.has_mount()) {
    return Status::InvalidArgument(where + ": an access type (mount) is required");
  }
  const std::string& fs = cap.mount().fs_type();
  if (!fs.empty() && fs != "cairn" && fs != "fuse.cairn") {
    return Status::InvalidArgument(where + ": fs_type \"" + fs +
                                   "\" is not supported (leave it empty, or \"cairn\")");
  }
  switch (cap.access_mode().mode()) {
    case VolumeCapability::AccessMode::SINGLE_NODE_WRITER:
    case VolumeCapability::AccessMode::SINGLE_NODE_READER_ONLY:
    case VolumeCapability::AccessMode::MULTI_NODE_READER_ONLY:
    case VolumeCapability::AccessMode::MULTI_NODE_SINGLE_WRITER:
    case VolumeCapability::AccessMode::MULTI_NODE_MULTI_WRITER:
    case VolumeCapability::AccessMode::SINGLE_NODE_SINGLE_WRITER:
    case VolumeCapability::AccessMode::SINGLE_NODE_MULTI_WRITER:
      return Status::Ok();
    default:
      return Status::InvalidArgument(where + ": access_mode is required (got " +
                                     std::to_string(cap.access_mode().mode()) + ")");
  }
}

bool ReaderOnly(const VolumeCapability& cap) {
  const auto m = cap.access_mode().mode();
  return m == VolumeCapability::AccessMode::SINGLE_NODE_READER_ONLY ||
         m == VolumeCapability::AccessMode::MULTI_NODE_READER_ONLY;
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

grpc::Status Finish(const char* method, const std::string& volume_id, const Status& status,
                    int64_t started_ms) {
  const int64_t ms = NowMs() - started_ms;
  if (status.ok()) {
    spdlog::info("event=csi-call method={} volume={} code=OK ms={}", method, volume_id, ms);
  } else {
    spdlog::warn("event=csi-call method={} volume={} code={} ms={} error=\"{}\"", method, volume_id,
                 StatusCodeName(status.code()), ms, status.message());
  }
  return ToGrpcStatus(status, nullptr);
}

}  // namespace cairn::csi
