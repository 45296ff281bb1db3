// Devices, bricks and specs: validation, accounting, persistence, brickd calls.
#include "storaged/manager.h"

#include <limits.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <cerrno>
#include <chrono>
#include <filesystem>
#include <optional>

#include "common/status_errno.h"

namespace cairn::storaged {
namespace {

std::string Bytes(uint64_t n) { return std::to_string(n) + " bytes"; }

struct FsSize {
  uint64_t size = 0;
  uint64_t free = 0;
};

StatusOr<FsSize> StatFs(const std::string& path) {
  struct statvfs sv;
  if (::statvfs(path.c_str(), &sv) != 0) return StatusFromErrno(errno, "statvfs " + path);
  return FsSize{static_cast<uint64_t>(sv.f_blocks) * sv.f_frsize,
                static_cast<uint64_t>(sv.f_bavail) * sv.f_frsize};
}

// True if one of the two absolute, resolved paths lies beneath the other.
bool Nested(const std::string& a, const std::string& b) {
  auto under = [](const std::string& child, const std::string& parent) {
    return child.size() > parent.size() && child.compare(0, parent.size(), parent) == 0 &&
           (parent == "/" || child[parent.size()] == '/');
  };
  return under(a, b) || under(b, a);
}

// Brickd's answer means it is gone, not that it refused.
bool IsTransport(const Status& s) {
  return s.code() == StatusCode::kUnavailable || s.code() == StatusCode::kDeadlineExceeded ||
         s.code() == StatusCode::kCancelled;
}

}  // namespace

Manager::Manager(StateStore* store, NodeState state) : store_(store), state_(std::move(state)) {}

void Manager::SetBrickdAddress(const std::string& address) {
  std::lock_guard lock(mu_);
  brickd_address_ = address;
}

std::string Manager::brickd_address() const {
  std::lock_guard lock(mu_);
  return brickd_address_;
}

int Manager::brickd_port() const {
  std::lock_guard lock(mu_);
  return state_.brickd_port;
}

NodeState Manager::Snapshot() const {
  std::lock_guard lock(mu_);
  return state_;
}

Status Manager::SetBrickdPort(int port) {
  std::lock_guard admin(admin_mu_);
  if (state_.brickd_port == port) return Status::Ok();
  CAIRN_RETURN_IF_ERROR(store_->SetBrickdPort(port));
  Apply([&](NodeState& st) { st.brickd_port = port; });
  spdlog::info("event=brickd-port-recorded port={}", port);
  return Status::Ok();
}

Status Manager::AttachAll() {
  std::lock_guard admin(admin_mu_);
  const auto start = std::chrono::steady_clock::now();
  const NodeState& st = state_;  // the admin lock keeps it still
  size_t attached = 0, failed = 0;
  for (const auto& [id, b] : st.bricks) {
    bpb::AttachRequest req;
    req.set_brick_id(id);
    req.set_path(st.BrickPath(b));
    req.set_capacity_bytes(b.capacity_bytes);
    // Generous: a brick that was not closed cleanly has its usage recounted.
    auto r = supervisor_->Attach(req, std::chrono::minutes(10));
    if (r.ok()) {
      ++attached;
      continue;
    }
    if (r.status().code() == StatusCode::kUnavailable) {
      // brickd is gone; the supervisor restarts it and calls us again.
      return r.status().WithContext("attach brick " + id);
    }
    ++failed;
    spdlog::error("event=attach-failed brick={} path={} error=\"{}\"", id, req.path(),
                  r.status().ToString());
  }
  spdlog::info("event=bricks-attached attached={} failed={} ms={}", attached, failed,
               std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::steady_clock::now() - start)
                   .count());
  return Status::Ok();
}

std::map<std::string, bpb::BrickInfo> Manager::BrickdView() {
  std::map<std::string, bpb::BrickInfo> view;
  if (supervisor_ == nullptr) return view;
  auto listed = supervisor_->ListBricks();
  if (!listed.ok()) return view;
  for (const auto& b : listed->bricks()) view[b.brick_id()] = b;
  return view;
}

// ---------------------------------------------------------------------------
// Devices.

StatusOr<spb::AddDeviceReply> Manager::AddDevice(const spb::AddDeviceRequest& req) {
  CAIRN_RETURN_IF_ERROR(ValidateId("device_id", req.device_id()));
  if (req.path().empty()) return Status::InvalidArgument("device path is required");
  char real[PATH_MAX];
  if (::realpath(req.path().c_str(), real) == nullptr) {
    const int e = errno;
    return Status(
        StatusCode::kInvalidArgument,
        "device path " + req.path() + " is not an existing directory: " + std::strerror(e), e);
  }
  const std::string path = real;
  struct stat st;
  if (::stat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return Status(StatusCode::kInvalidArgument, "device path " + req.path() + " is not a directory",
                  ENOTDIR);
  }
  CAIRN_ASSIGN_OR_RETURN(FsSize fs, StatFs(path));
  if (req.capacity_bytes() > fs.size) {
    return Status::InvalidArgument(
        "device " + req.device_id() + ": capacity " + Bytes(req.capacity_bytes()) +
        " exceeds the size of the file system at " + path + " (" + Bytes(fs.size) + ")");
  }
  DeviceRecord rec{req.device_id(), path,
                   req.capacity_bytes() == 0 ? fs.size : req.capacity_bytes(),
                   req.capacity_bytes() == 0};

  std::lock_guard admin(admin_mu_);
  const NodeState& cur = state_;  // the admin lock keeps it still
  spb::AddDeviceReply reply;
  auto fill = [&](const DeviceRecord& d) {
    spb::Device* out = reply.mutable_device();
    out->set_device_id(d.id);
    out->set_path(d.path);
    out->set_capacity_bytes(d.capacity_bytes);
    out->set_allocated_bytes(cur.AllocatedBytes(d.id));
    out->set_fs_size_bytes(fs.size);
    out->set_fs_free_bytes(fs.free);
  };
  if (auto it = cur.devices.find(rec.id); it != cur.devices.end()) {
    const DeviceRecord& have = it->second;
    const bool same_capacity = req.capacity_bytes() == 0
                                   ? have.capacity_from_fs
                                   : have.capacity_bytes == rec.capacity_bytes;
    if (have.path == rec.path && same_capacity) {
      fill(have);
      reply.set_created(false);
      return reply;
    }
    return Status::AlreadyExists("device " + rec.id + " exists with path " + have.path +
                                 " and capacity " + Bytes(have.capacity_bytes));
  }
  for (const auto& [id, d] : cur.devices) {
    if (d.path == rec.path) return Status::AlreadyExists(rec.path + " is already device " + id);
    if (Nested(d.path, rec.path)) {
      return Status::FailedPrecondition(rec.path + " is nested with device " + id + " at " +
                                        d.path);
    }
  }
  CAIRN_RETURN_IF_ERROR(store_->PutDevice(rec));
  Apply([&](NodeState& st) { st.devices[rec.id] = rec; });
  spdlog::info("event=device-added device={} path={} capacity_bytes={}", rec.id, rec.path,
               rec.capacity_bytes);
  fill(rec);
  reply.set_created(true);
  return reply;
}

Status Manager::RemoveDevice(const std::string& device_id) {
  CAIRN_RETURN_IF_ERROR(ValidateId("device_id", device_id));
  std::lock_guard admin(admin_mu_);
  if (state_.devices.count(device_id) == 0) return Status::NotFound("no device " + device_id);
  std::string holding;
  size_t n = 0;
  for (const auto& [id, b] : state_.bricks) {
    if (b.device_id != device_id) continue;
    if (n++ < 5) holding += (holding.empty() ? "" : ", ") + id;
  }
  if (n > 0) {
    return Status::FailedPrecondition("device " + device_id + " holds " + std::to_string(n) +
                                      " brick(s) (" + holding + (n > 5 ? ", ..." : "") +
                                      "); delete them first");
  }
  CAIRN_RETURN_IF_ERROR(store_->DeleteDevice(device_id));
  Apply([&](NodeState& st) { st.devices.erase(device_id); });
  spdlog::info("event=device-removed device={}", device_id);
  return Status::Ok();
}

spb::ListDevicesReply Manager::ListDevices() {
  NodeState st = Snapshot();
  auto view = BrickdView();
  spb::ListDevicesReply reply;
  for (const auto& [id, d] : st.devices) {
    spb::Device* out = reply.add_devices();
    out->set_device_id(id);
    out->set_path(d.path);
    out->set_capacity_bytes(d.capacity_bytes);
    out->set_allocated_bytes(st.AllocatedBytes(id));
    uint64_t used = 0;
    uint32_t bricks = 0;
    for (const auto& [bid, b] : st.bricks) {
      if (b.device_id != id) continue;
      ++bricks;
      if (auto it = view.find(bid); it != view.end()) used += it->second.used_bytes();
    }
    out->set_used_bytes(used);
    out->set_bricks(bricks);
    if (auto fs = StatFs(d.path); fs.ok()) {
      out->set_fs_size_bytes(fs->size);
      out->set_fs_free_bytes(fs->free);
    }
  }
  return reply;
}

// ---------------------------------------------------------------------------
// Bricks.

spb::Brick Manager::BrickOf(const NodeState& st, const BrickRecord& b,
                            const std::map<std::string, bpb::BrickInfo>& view) const {
  spb::Brick out;
  out.set_brick_id(b.id);
  out.set_device_id(b.device_id);
  out.set_path(st.BrickPath(b));
  out.set_capacity_bytes(b.capacity_bytes);
  if (auto it = view.find(b.id); it != view.end()) {
    out.set_used_bytes(it->second.used_bytes());
    out.set_attached(true);
  }
  return out;
}

StatusOr<spb::CreateBrickReply> Manager::CreateBrick(const spb::CreateBrickRequest& req) {
  CAIRN_RETURN_IF_ERROR(ValidateId("device_id", req.device_id()));
  CAIRN_RETURN_IF_ERROR(ValidateId("brick_id", req.brick_id()));
  if (req.capacity_bytes() == 0) return Status::InvalidArgument("capacity_bytes must be > 0");
  std::optional<SpecRecord> spec;
  if (!req.spec_json().empty()) {
    auto parsed = client::VolumeSpec::Parse(req.spec_json());
    if (!parsed.ok()) return parsed.status().WithContext("spec_json");
    bool listed = false;
    for (const auto& sv : parsed->subvolumes) {
      for (const auto& ref : sv) listed = listed || ref.brick_id == req.brick_id();
    }
    if (!listed) {
      return Status::InvalidArgument("spec_json: volume " + parsed->name + " does not list brick " +
                                     req.brick_id());
    }
    spec = SpecRecord{*parsed, parsed->ToJson()};
  }
  std::unique_lock admin(admin_mu_);
  const NodeState& prev = state_;  // the admin lock keeps it still (but for Apply below)
  auto dev = prev.devices.find(req.device_id());
  if (dev == prev.devices.end()) return Status::NotFound("no device " + req.device_id());
  // A spec PutVolumeSpec would refuse is refused before anything is created.
  bool put_spec = false;
  if (spec) {
    CAIRN_ASSIGN_OR_RETURN(put_spec, SpecNeedsPut(*spec));
  }
  BrickRecord rec{req.brick_id(), req.device_id(), req.capacity_bytes()};
  const std::string path = dev->second.path + "/bricks/" + rec.id;
  bpb::AttachRequest attach;
  attach.set_brick_id(rec.id);
  attach.set_path(path);
  attach.set_capacity_bytes(rec.capacity_bytes);
  spb::CreateBrickReply reply;
  reply.set_spec_stored(spec.has_value());

  if (auto it = prev.bricks.find(rec.id); it != prev.bricks.end()) {
    const BrickRecord& have = it->second;
    if (have.device_id != rec.device_id || have.capacity_bytes != rec.capacity_bytes) {
      return Status::AlreadyExists("brick " + rec.id + " exists on device " + have.device_id +
                                   " with capacity " + Bytes(have.capacity_bytes));
    }
    // Identical: make sure brickd serves it.
    auto attached = supervisor_->Attach(attach);
    if (!attached.ok()) return attached.status().WithContext("attach brick " + rec.id);
    *reply.mutable_brick() = BrickOf(prev, have, {{rec.id, attached->brick()}});
    reply.set_created(false);
    if (put_spec) CAIRN_RETURN_IF_ERROR(StoreSpec(std::move(admin), *spec, /*stored=*/false));
    return reply;
  }
  const uint64_t allocated = prev.AllocatedBytes(rec.device_id);
  const uint64_t capacity = dev->second.capacity_bytes;
  if (allocated > capacity || rec.capacity_bytes > capacity - allocated) {
    return Status::ResourceExhausted(
        "device " + rec.device_id + " has " + Bytes(capacity - std::min(allocated, capacity)) +
        " left to allocate (capacity " + Bytes(capacity) + ", allocated " + Bytes(allocated) +
        "); brick " + rec.id + " needs " + Bytes(rec.capacity_bytes));
  }
  const std::string bricks_dir = dev->second.path + "/bricks";
  if (::mkdir(bricks_dir.c_str(), 0755) != 0 && errno != EEXIST) {
    return StatusFromErrno(errno, "mkdir " + bricks_dir);
  }
  bool made = true;
  if (::mkdir(path.c_str(), 0755) != 0) {
    if (errno != EEXIST) return StatusFromErrno(errno, "mkdir " + path);
    made = false;
    spdlog::warn("event=brick-dir-exists brick={} path={} reason=\"kept; its data is served\"",
                 rec.id, path);
  }
  // A new spec (no generation of it stored) goes into the brick's commit; a
  // newer generation of a stored one is put only once the brick serves, so
  // an undo never has to bring an old generation back.
  const bool spec_with_brick = put_spec && prev.specs.count(spec->spec.name) == 0;
  if (Status s = spec_with_brick ? store_->PutBrickAndSpec(rec, *spec) : store_->PutBrick(rec);
      !s.ok()) {
    if (made) ::rmdir(path.c_str());
    return s;
  }
  Apply([&](NodeState& st) {
    st.bricks[rec.id] = rec;
    if (spec_with_brick) st.specs[spec->spec.name] = *spec;
  });
  auto attached = supervisor_->Attach(attach);
  if (!attached.ok()) {
    // Undo: the brick (and a spec stored with it) do not exist unless
    // brickd serves the brick.
    (void)supervisor_->Detach(rec.id);
    if (Status s = store_->DeleteBrick(rec.id); !s.ok()) {
      spdlog::error("event=state-revert-failed brick={} error=\"{}\"", rec.id, s.ToString());
    }
    if (spec_with_brick) {
      if (Status s = store_->DeleteSpec(spec->spec.name); !s.ok()) {
        spdlog::error("event=state-revert-failed volume={} error=\"{}\"", spec->spec.name,
                      s.ToString());
      }
    }
    Apply([&](NodeState& st) {
      st.bricks.erase(rec.id);
      if (spec_with_brick) st.specs.erase(spec->spec.name);
    });
    if (made) {
      std::error_code ec;
      std::filesystem::remove_all(path, ec);
    }
    return attached.status().WithContext("attach brick " + rec.id + " to brickd");
  }
  spdlog::info("event=brick-created brick={} device={} path={} capacity_bytes={}", rec.id,
               rec.device_id, path, rec.capacity_bytes);
  *reply.mutable_brick() = BrickOf(prev, rec, {{rec.id, attached->brick()}});
  reply.set_created(true);
  if (put_spec) CAIRN_RETURN_IF_ERROR(StoreSpec(std::move(admin), *spec, spec_with_brick));
  return reply;
}

Status Manager::DeleteBrick(const spb::DeleteBrickRequest& req) {
  CAIRN_RETURN_IF_ERROR(ValidateId("brick_id", req.brick_id()));
  std::lock_guard admin(admin_mu_);
  auto it = state_.bricks.find(req.brick_id());
  if (it == state_.bricks.end()) return Status::NotFound("no brick " + req.brick_id());
  const std::string address = brickd_address();
  if (!req.force()) {
    for (const auto& [name, s] : state_.specs) {
      for (const auto& sv : s.spec.subvolumes) {
        for (const auto& ref : sv) {
          if (ref.node == address && ref.brick_id == req.brick_id()) {
            return Status::FailedPrecondition(
                "brick " + req.brick_id() + " is in volume spec " + name + " (generation " +
                std::to_string(s.spec.generation) +
                "); delete or change the spec first, or delete with force");
          }
        }
      }
    }
  }
  const std::string path = state_.BrickPath(it->second);
  Status detached = supervisor_->Detach(req.brick_id());
  if (!detached.ok() && !detached.IsNotFound()) {
    // A brickd that is down does not serve it, and will not get it back:
    // re-attaching waits for this lock and reads the state we write below.
    if (!(IsTransport(detached) && !supervisor_->up())) {
      return detached.WithContext("detach brick " + req.brick_id() + " from brickd");
    }
  }
  CAIRN_RETURN_IF_ERROR(store_->DeleteBrick(req.brick_id()));
  Apply([&](NodeState& st) { st.bricks.erase(req.brick_id()); });
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
  if (ec) {
    spdlog::warn("event=brick-dir-not-removed brick={} path={} error=\"{}\"", req.brick_id(), path,
                 ec.message());
  }
  spdlog::info("event=brick-deleted brick={} path={} force={}", req.brick_id(), path, req.force());
  return Status::Ok();
}

StatusOr<spb::Brick> Manager::ResizeBrick(const spb::ResizeBrickRequest& req) {
  CAIRN_RETURN_IF_ERROR(ValidateId("brick_id", req.brick_id()));
  if (req.capacity_bytes() == 0) return Status::InvalidArgument("capacity_bytes must be > 0");
  std::lock_guard admin(admin_mu_);
  const NodeState& prev = state_;  // the admin lock keeps it still (but for Apply below)
  auto it = prev.bricks.find(req.brick_id());
  if (it == prev.bricks.end()) return Status::NotFound("no brick " + req.brick_id());
  const BrickRecord have = it->second;
  const DeviceRecord& dev = prev.devices.at(have.device_id);
  const uint64_t want = req.capacity_bytes();
  if (want > have.capacity_bytes) {
    const uint64_t others = prev.AllocatedBytes(dev.id) - have.capacity_bytes;
    if (others > dev.capacity_bytes || want > dev.capacity_bytes - others) {
      return Status::ResourceExhausted("device " + dev.id + " cannot give brick " + have.id + " " +
                                       Bytes(want) + ": capacity " + Bytes(dev.capacity_bytes) +
                                       ", other bricks have " + Bytes(others));
    }
  } else if (want < have.capacity_bytes) {
    auto view = supervisor_->ListBricks();
    if (!view.ok()) return view.status().WithContext("read brick usage from brickd");
    for (const auto& b : view->bricks()) {
      if (b.brick_id() == have.id && b.used_bytes() > want) {
        return Status::FailedPrecondition("brick " + have.id + " uses " + Bytes(b.used_bytes()) +
                                          "; it cannot shrink to " + Bytes(want));
      }
    }
  }
  BrickRecord resized = have;
  resized.capacity_bytes = want;
  CAIRN_RETURN_IF_ERROR(store_->PutBrick(resized));
  Apply([&](NodeState& st) { st.bricks[have.id] = resized; });
  auto info = supervisor_->SetCapacity(have.id, want);
  if (!info.ok()) {
    if (Status s = store_->PutBrick(have); !s.ok()) {
      spdlog::error("event=state-revert-failed brick={} error=\"{}\"", have.id, s.ToString());
    }
    Apply([&](NodeState& st) { st.bricks[have.id] = have; });
    return info.status().WithContext("resize brick " + have.id + " in brickd");
  }
  spdlog::info("event=brick-resized brick={} from_bytes={} to_bytes={}", have.id,
               have.capacity_bytes, want);
  return BrickOf(prev, resized, {{have.id, *info}});
}

spb::ListBricksReply Manager::ListBricks() {
  NodeState st = Snapshot();
  auto view = BrickdView();
  spb::ListBricksReply reply;
  for (const auto& [id, b] : st.bricks) *reply.add_bricks() = BrickOf(st, b, view);
  return reply;
}

// ---------------------------------------------------------------------------
// Volume specs.

bool Manager::IsLocal(const client::VolumeSpec& spec, const std::string& address) {
  for (const auto& sv : spec.subvolumes) {
    for (const auto& ref : sv) {
      if (ref.node == address) return true;
    }
  }
  return false;
}

void Manager::NotifyHeal() {
  if (heal_ == nullptr) return;
  std::lock_guard heal(heal_mu_);
  const std::string address = brickd_address();
  std::vector<client::VolumeSpec> local;
  {
    std::lock_guard lock(mu_);
    for (const auto& [name, s] : state_.specs) {
      if (IsLocal(s.spec, address)) local.push_back(s.spec);
    }
  }
  heal_->OnSpecsChanged(local, address);
}

void Manager::SpecChanged(std::unique_lock<std::mutex> admin, const std::string& name,
                          const SpecRecord* now) {
  if (listener_) listener_(name, now);
  if (heal_ == nullptr) return;
  const std::string address = brickd_address();
  const client::VolumeSpec* local =
      now != nullptr && IsLocal(now->spec, address) ? &now->spec : nullptr;
  // Hand over from the admin lock to the heal lock: the hook sees changes in
  // order without holding up other admin calls while it works. Only the
  // changed spec is passed: the hook's work does not grow with the others.
  std::unique_lock heal(heal_mu_);
  admin.unlock();
  heal_->OnSpecChanged(name, local, address);
}

Status Manager::StoreSpec(std::unique_lock<std::mutex> admin, const SpecRecord& rec, bool stored) {
  if (!stored) {
    CAIRN_RETURN_IF_ERROR(store_->PutSpec(rec));
    Apply([&](NodeState& st) { st.specs[rec.spec.name] = rec; });
  }
  spdlog::info("event=spec-put volume={} generation={}", rec.spec.name, rec.spec.generation);
  SpecChanged(std::move(admin), rec.spec.name, &rec);
  return Status::Ok();
}

StatusOr<bool> Manager::SpecNeedsPut(const SpecRecord& rec) const {
  const std::string& name = rec.spec.name;
  const uint64_t gen = rec.spec.generation;
  auto it = state_.specs.find(name);
  if (it == state_.specs.end()) return true;
  const uint64_t have = it->second.spec.generation;
  if (gen < have) {
    return Status::FailedPrecondition("volume spec " + name + ": generation " +
                                      std::to_string(gen) + " is older than the stored " +
                                      std::to_string(have));
  }
  if (gen == have) {
    if (it->second.json == rec.json) return false;
    return Status::AlreadyExists("volume spec " + name + " generation " + std::to_string(gen) +
                                 " is stored with different content; put a higher generation");
  }
  return true;
}

StatusOr<spb::PutVolumeSpecReply> Manager::PutVolumeSpec(const std::string& spec_json) {
  auto parsed = client::VolumeSpec::Parse(spec_json);
  if (!parsed.ok()) return parsed.status();
  SpecRecord rec{*parsed, parsed->ToJson()};
  const std::string name = rec.spec.name;
  const uint64_t gen = rec.spec.generation;
  std::unique_lock admin(admin_mu_);
  spb::PutVolumeSpecReply reply;
  reply.set_name(name);
  reply.set_generation(gen);
  CAIRN_ASSIGN_OR_RETURN(bool put, SpecNeedsPut(rec));
  reply.set_changed(put);
  if (put) CAIRN_RETURN_IF_ERROR(StoreSpec(std::move(admin), rec, /*stored=*/false));
  return reply;
}

StatusOr<spb::VolumeSpecReply> Manager::GetVolumeSpec(const std::string& name) const {
  if (name.empty()) return Status::InvalidArgument("volume name is required");
  std::lock_guard lock(mu_);
  auto it = state_.specs.find(name);
  if (it == state_.specs.end()) return Status::NotFound("volume " + name + " not found");
  spb::VolumeSpecReply reply;
  reply.set_name(name);
  reply.set_spec_json(it->second.json);
  reply.set_generation(it->second.spec.generation);
  return reply;
}

Status Manager::DeleteVolumeSpec(const std::string& name) {
  if (name.empty()) return Status::InvalidArgument("volume name is required");
  std::unique_lock admin(admin_mu_);
  if (state_.specs.count(name) == 0) return Status::Ok();
  CAIRN_RETURN_IF_ERROR(store_->DeleteSpec(name));
  Apply([&](NodeState& st) { st.specs.erase(name); });
  spdlog::info("event=spec-deleted volume={}", name);
  SpecChanged(std::move(admin), name, nullptr);
  return Status::Ok();
}

spb::ListVolumeSpecsReply Manager::ListVolumeSpecs() const {
  std::lock_guard lock(mu_);
  spb::ListVolumeSpecsReply reply;
  for (const auto& [name, s] : state_.specs) {
    spb::VolumeSpecReply* out = reply.add_specs();
    out->set_name(name);
    out->set_spec_json(s.json);
    out->set_generation(s.spec.generation);
  }
  return reply;
}

Manager::Figures Manager::GetFigures() const {
  std::lock_guard lock(mu_);
  Figures f;
  f.devices = state_.devices.size();
  f.bricks = state_.bricks.size();
  f.specs = state_.specs.size();
  for (const auto& [id, d] : state_.devices) {
    f.per_device.push_back({id, d.capacity_bytes, state_.AllocatedBytes(id)});
  }
  return f;
}

}  // namespace cairn::storaged
