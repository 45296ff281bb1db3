// Manager: storaged's devices, bricks and volume specs — the rules, the
// accounting and the persistence behind the Storaged RPCs (proto/storaged.proto).
//
//   Manager m(state_store.get(), std::move(loaded_state));
//   m.SetSupervisor(&supervisor);            // brickd's BrickAdmin
//   auto dev = m.AddDevice(request);          // persisted before it returns
//   m.AddSpecListener([](const std::string& name, const SpecRecord* now) { ... });
//
// Every change is written to the state database (its own rows, one
// transaction) before the call returns, then applied to the in-memory state
// in place: no mutation copies, serialises or rewrites the whole state, so
// its cost does not grow with the number of volumes. Mutations are serialised
// by one admin lock, which is also held while bricks are (re-)attached after
// a brickd start (AttachAll), so a re-attach never races a brick being
// created or deleted. Readers take a short lock on the in-memory state only.
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "common/status.h"
#include "proto/storaged.pb.h"
#include "storaged/heal_hook.h"
#include "storaged/state.h"
#include "storaged/supervisor.h"

namespace cairn::storaged {

namespace spb = ::cairn::storaged::v1;

class Manager {
 public:
  Manager(StateStore* store, NodeState state);

  // Wiring, before the API serves.
  void SetSupervisor(BrickdSupervisor* supervisor) { supervisor_ = supervisor; }
  void SetHealHook(HealHook* hook) { heal_ = hook; }
  // Called (under the admin lock, so in order) after every spec change;
  // `now` is null when the spec was deleted.
  using SpecListener = std::function<void(const std::string& name, const SpecRecord* now)>;
  void SetSpecListener(SpecListener listener) { listener_ = std::move(listener); }
  // This node's brickd address as written in volume specs.
  void SetBrickdAddress(const std::string& address);
  std::string brickd_address() const;

  int brickd_port() const;
  // Persists the port brickd chose at its first start.
  Status SetBrickdPort(int port);
  // Attaches every brick to the running brickd (idempotent). Failures of
  // single bricks are logged; an error only when brickd itself failed.
  Status AttachAll();
  // Calls the heal hook with every spec that has a brick on this node (at
  // start; after that each spec change is passed on alone).
  void NotifyHeal();

  StatusOr<spb::AddDeviceReply> AddDevice(const spb::AddDeviceRequest& req);
  Status RemoveDevice(const std::string& device_id);
  spb::ListDevicesReply ListDevices();

  StatusOr<spb::CreateBrickReply> CreateBrick(const spb::CreateBrickRequest& req);
  Status DeleteBrick(const spb::DeleteBrickRequest& req);
  StatusOr<spb::Brick> ResizeBrick(const spb::ResizeBrickRequest& req);
  spb::ListBricksReply ListBricks();

  StatusOr<spb::PutVolumeSpecReply> PutVolumeSpec(const std::string& spec_json);
  StatusOr<spb::VolumeSpecReply> GetVolumeSpec(const std::string& name) const;
  Status DeleteVolumeSpec(const std::string& name);
  spb::ListVolumeSpecsReply ListVolumeSpecs() const;

  // Figures for /metrics.
  struct Figures {
    size_t devices = 0;
    size_t bricks = 0;
    size_t specs = 0;
    struct Dev {
      std::string id;
      uint64_t capacity = 0;
      uint64_t allocated = 0;
    };
    std::vector<Dev> per_device;
  };
  Figures GetFigures() const;
  // A copy of the current state (readers that list everything).
  NodeState Snapshot() const;

 private:
  // Applies a change to the in-memory state (admin lock held, after the
  // database took it).
  template <class Fn>
  void Apply(Fn fn) {
    std::lock_guard lock(mu_);
    fn(state_);
  }
  // Used bytes and attachment of bricks, from brickd (empty when it is down).
  std::map<std::string, bpb::BrickInfo> BrickdView();
  spb::Brick BrickOf(const NodeState& st, const BrickRecord& b,
                     const std::map<std::string, bpb::BrickInfo>& view) const;
  // Whether `rec` must be stored (false: that generation is stored with the
  // same content); FailedPrecondition for an older generation, AlreadyExists
  // for the same generation with other content. Admin lock held.
  StatusOr<bool> SpecNeedsPut(const SpecRecord& rec) const;
  // Stores `rec` (unless `stored`: already in the database and the state),
  // logs it and tells the listener and the heal hook; releases `admin`.
  Status StoreSpec(std::unique_lock<std::mutex> admin, const SpecRecord& rec, bool stored);
  // True if `spec` has a brick on brickd `address`.
  static bool IsLocal(const client::VolumeSpec& spec, const std::string& address);
  // Notifies the listener and the heal hook of one spec's change (`now` null:
  // deleted); releases `admin` in between so the hook (which may be slow)
  // runs outside the admin lock but in order.
  void SpecChanged(std::unique_lock<std::mutex> admin, const std::string& name,
                   const SpecRecord* now);

  StateStore* const store_;
  BrickdSupervisor* supervisor_ = nullptr;
  HealHook* heal_ = nullptr;
  SpecListener listener_;

  std::mutex admin_mu_;  // serialises mutations, database writes and AttachAll
  std::mutex heal_mu_;   // one heal hook call at a time, in order
  mutable std::mutex mu_;
  // GUARDED_BY(mu_) for readers; written only with admin_mu_ held too, so a
  // holder of admin_mu_ may read it without mu_.
  NodeState state_;
  std::string brickd_address_;  // GUARDED_BY(mu_)
};

}  // namespace cairn::storaged
