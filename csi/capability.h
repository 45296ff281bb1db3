// Checks shared by the controller and node services: volume capabilities,
// the topology segment, and the gRPC edge with a log line per call.
#pragma once

#include <grpcpp/support/status.h>

#include <string>

#include "common/status.h"
#include "proto/csi.pb.h"

namespace cairn::csi {

inline constexpr char kDriverName[] = "csi.cairn.io";
inline constexpr char kTopologyKey[] = "topology.cairn.io/cluster";

// Ok iff Cairn can serve `cap`: a mount access type with fs_type "" or
// "cairn" and a known access mode. Block is InvalidArgument with the reason.
// `where` names the field in messages ("volume_capabilities[0]").
Status CheckCapability(const ::csi::v1::VolumeCapability& cap, const std::string& where);

// True for the reader-only access modes (the mount is read-only).
bool ReaderOnly(const ::csi::v1::VolumeCapability& cap);

// The gRPC status of a finished call, logged as one structured line
// (`event=csi-call method= volume= code= ms=`; errors with their message).
grpc::Status Finish(const char* method, const std::string& volume_id, const Status& status,
                    int64_t started_ms);

// Milliseconds of a steady clock, for Finish.
int64_t NowMs();

}  // namespace cairn::csi
