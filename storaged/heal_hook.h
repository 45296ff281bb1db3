// HealHook: where storaged plugs in the self-heal engine (built elsewhere, as
// a library). storaged only calls this interface; with no hook set the heal
// RPCs answer UNIMPLEMENTED "self-heal is not built into this storaged".
//
//   class Engine : public storaged::HealHook { ... };
//   std::unique_ptr<HealHook> hook = std::make_unique<Engine>(...);  // storaged/main.cc
//
// Threads: OnSpecsChanged is called at start and after every spec put or
// delete, one call at a time (never concurrently with itself), from an RPC
// thread; Info/Start/Resolve are called from RPC threads, possibly
// concurrently. Stop is called once, at shutdown, after the API stopped
// serving; nothing is called after it.
#pragma once

#include <string>
#include <vector>

#include "client/spec.h"
#include "common/status.h"
#include "proto/storaged.pb.h"

namespace cairn::storaged {

class HealHook {
 public:
  virtual ~HealHook() = default;

  // The volume specs in which this node has a brick (a brick whose node is
  // `brickd_address`), after every change; an empty list when none is left.
  virtual void OnSpecsChanged(const std::vector<client::VolumeSpec>& local_specs,
                              const std::string& brickd_address) = 0;
  // The heal state of one volume (NOT_FOUND if it has no brick on this node).
  virtual StatusOr<cairn::storaged::v1::HealInfoReply> Info(const std::string& volume) = 0;
  // Starts a heal pass now (a full crawl with `full`).
  virtual Status Start(const std::string& volume, bool full) = 0;
  // Resolves one split-brain object with the request's policy.
  virtual Status Resolve(const cairn::storaged::v1::ResolveSplitBrainRequest& request) = 0;
  // Stops every heal activity; returns once it has stopped.
  virtual void Stop() = 0;
};

}  // namespace cairn::storaged
