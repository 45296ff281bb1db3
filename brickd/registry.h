// BrickRegistry: the bricks one brickd serves, by id (brick multiplexing).
//
//   BrickRegistry reg("/var/lib/cairn/brickd-state.json");
//   CAIRN_RETURN_IF_ERROR(reg.Restore());          // re-attach after a restart
//   auto reply = reg.Attach(request);              // admin RPC
//   std::shared_ptr<Brick> b = reg.Find("b1");      // every data RPC
//
// Thread safety: all methods may be called concurrently. Find is a shared
// lock and a hash lookup; Attach/Detach are serialised among themselves.
#pragma once

#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "brickd/brick.h"
#include "common/status.h"
#include "proto/brick.pb.h"

namespace cairn::brickd {

class BrickRegistry {
 public:
  // `state_file` records the attached bricks so a restarted brickd serves
  // them again; empty disables that (storaged then re-attaches them).
  explicit BrickRegistry(std::string state_file);
  ~BrickRegistry();

  // Re-attaches the bricks listed in the state file. Bricks that fail are
  // logged and left out; returns an error only if the file is unreadable.
  Status Restore();

  // Attaches a brick. Attaching the same id and path again is a no-op
  // (idempotent); a different path for an attached id, or a path already
  // served under another id, is AlreadyExists.
  StatusOr<pb::AttachReply> Attach(const pb::AttachRequest& req);
  // Detaches a brick once its in-flight operations finish. NotFound if unknown.
  Status Detach(const std::string& brick_id);
  StatusOr<pb::BrickInfo> SetCapacity(const std::string& brick_id, uint64_t capacity_bytes);

  // Returns the brick, or null.
  std::shared_ptr<Brick> Find(const std::string& brick_id) const;
  std::vector<std::shared_ptr<Brick>> List() const;
  size_t size() const;

  // Detaches every brick (clean close, usage recorded). For shutdown.
  void CloseAll();

 private:
  Status SaveLocked();

  const std::string state_file_;
  std::mutex admin_mu_;  // serialises Attach/Detach/SetCapacity and state-file writes
  mutable std::shared_mutex mu_;
  std::unordered_map<std::string, std::shared_ptr<Brick>> bricks_;  // GUARDED_BY(mu_)
};

// Returns InvalidArgument unless `id` matches [A-Za-z0-9._-]{1,128}.
Status ValidateBrickId(const std::string& id);

pb::BrickInfo InfoOf(const Brick& b);

}  // namespace cairn::brickd
