// HealHook: where storaged plugs in the self-heal engine (built elsewhere, as
// a library). storaged only calls this interface; with no hook set the heal
// RPCs answer UNIMPLEMENTED "self-heal is not built into this storaged".
//
//   class Engine : public storaged::HealHook { ... };
//   std::unique_ptr<HealHook> hook = std::make_unique<Engine>(...);  // storaged/main.cc
//
// Threads: OnSpecsChanged is called once at start, OnSpecChanged after every
// spec put or delete, one call at a time (never concurrently with each other
// or themselves) and in order, from an RPC thread; Info/Start/Resolve are
// called from RPC threads, possibly concurrently. Stop is called once, at
// shutdown, after the API stopped serving; nothing is called after it.
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

  // Every volume spec in which this node has a brick (a brick whose node is
  // `brickd_address`); at start. Volumes not listed have no brick here.
  virtual void OnSpecsChanged(const std::vector<client::VolumeSpec>& local_specs,
                              const std::string& brickd_address) = 0;
  // One spec was put or deleted: `local_spec` is its new content if it has a
  // brick on this node, null if it was deleted or has no brick here (any
  // more). The other volumes are unchanged, so a node with many volumes does
  // not pay for all of them on every change.
  virtual void OnSpecChanged(const std::string& name, const client::VolumeSpec* local_spec,
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
