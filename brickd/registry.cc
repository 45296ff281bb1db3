// Brick registry and its state file.
#include "brickd/registry.h"

#include <chrono>
#include <climits>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/file_util.h"
#include "common/log.h"
#include "common/status_errno.h"

namespace cairn::brickd {

Status ValidateBrickId(const std::string& id) {
  if (id.empty() || id.size() > 128) {
    return Status::InvalidArgument("brick_id must be 1..128 characters");
  }
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok) return Status::InvalidArgument("brick_id may only hold [A-Za-z0-9._-]");
  }
  if (id == "." || id == "..") return Status::InvalidArgument("brick_id may not be . or ..");
  return Status::Ok();
}

pb::BrickInfo InfoOf(const Brick& b) {
  pb::BrickInfo info;
  info.set_brick_id(b.id());
  info.set_path(b.path());
  info.set_capacity_bytes(b.capacity_bytes());
  info.set_used_bytes(static_cast<uint64_t>(std::max<int64_t>(0, b.used_bytes())));
  return info;
}

namespace {

// Normalises an absolute path: no "." or ".." components, no double or trailing slash.
StatusOr<std::string> NormalPath(const std::string& path) {
  if (path.empty() || path[0] != '/') {
    return Status::InvalidArgument("brick path must be absolute, got '" + path + "'");
  }
  if (path.size() > 4000) return Status::InvalidArgument("brick path too long");
  std::string out;
  size_t i = 0;
  while (i < path.size()) {
    while (i < path.size() && path[i] == '/') ++i;
    size_t j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    std::string_view part(path.data() + i, j - i);
    if (part == "." || part == "..") {
      return Status::InvalidArgument("brick path may not contain '.' or '..': '" + path + "'");
    }
    if (!part.empty()) {
      out += '/';
      out += part;
    }
    i = j;
  }
  if (out.empty()) return Status::InvalidArgument("the file system root cannot be a brick");
  return out;
}

bool Nested(const std::string& a, const std::string& b) {
  auto inside = [](const std::string& outer, const std::string& inner) {
    return inner.size() > outer.size() && inner.compare(0, outer.size(), outer) == 0 &&
           inner[outer.size()] == '/';
  };
  return inside(a, b) || inside(b, a);
}

}  // namespace

BrickRegistry::BrickRegistry(std::string state_file) : state_file_(std::move(state_file)) {}

BrickRegistry::~BrickRegistry() { CloseAll(); }

Status BrickRegistry::Restore() {
  if (state_file_.empty()) return Status::Ok();
  auto text = ReadFile(state_file_);
  if (!text.ok()) {
    if (text.status().IsNotFound()) return Status::Ok();
    return text.status();
  }
  auto j = nlohmann::json::parse(*text, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("bricks") || !j["bricks"].is_array()) {
    return Status::FailedPrecondition("state file " + state_file_ + " is corrupt");
  }
  size_t restored = 0;
  for (const auto& e : j["bricks"]) {
    pb::AttachRequest req;
    req.set_brick_id(e.value("brick_id", ""));
    req.set_path(e.value("path", ""));
    req.set_capacity_bytes(e.value("capacity_bytes", uint64_t{0}));
    auto r = Attach(req);
    if (!r.ok()) {
      spdlog::error("event=restore-failed brick={} path={} error=\"{}\"", req.brick_id(),
                    req.path(), r.status().ToString());
      continue;
    }
    ++restored;
  }
  spdlog::info("event=restored bricks={} of={}", restored, j["bricks"].size());
  return Status::Ok();
}

StatusOr<pb::AttachReply> BrickRegistry::Attach(const pb::AttachRequest& req) {
  CAIRN_RETURN_IF_ERROR(ValidateBrickId(req.brick_id()));
  CAIRN_ASSIGN_OR_RETURN(std::string normal, NormalPath(req.path()));
  // Compare real locations: a symlinked path must not hide nesting or aliasing.
  char real[PATH_MAX];
  if (::realpath(normal.c_str(), real) == nullptr) {
    return StatusFromErrno(errno, "brick path " + normal);
  }
  const std::string path = real;
  std::lock_guard admin(admin_mu_);
  {
    std::shared_lock lock(mu_);
    if (auto it = bricks_.find(req.brick_id()); it != bricks_.end()) {
      if (it->second->path() != path) {
        return Status::AlreadyExists("brick " + req.brick_id() + " is attached at " +
                                     it->second->path());
      }
      if (req.capacity_bytes() != it->second->capacity_bytes()) {
        it->second->set_capacity_bytes(req.capacity_bytes());
      }
      pb::AttachReply reply;
      *reply.mutable_brick() = InfoOf(*it->second);
      return reply;
    }
    for (const auto& [id, b] : bricks_) {
      if (b->path() == path) {
        return Status::AlreadyExists(path + " is already served as brick " + id);
      }
      if (Nested(b->path(), path)) {
        return Status::FailedPrecondition(path + " is nested with brick " + id + " at " +
                                          b->path());
      }
    }
  }
  bool initialised = false;
  CAIRN_ASSIGN_OR_RETURN(auto brick,
                         Brick::Open({req.brick_id(), path, req.capacity_bytes()}, &initialised));
  {
    std::unique_lock lock(mu_);
    bricks_.emplace(req.brick_id(), brick);
  }
  Status saved = SaveLocked();
  if (!saved.ok()) {
    std::unique_lock lock(mu_);
    bricks_.erase(req.brick_id());
    return saved.WithContext("record attached brick");
  }
  spdlog::info("event=attached brick={} path={} capacity_bytes={} initialised={}", req.brick_id(),
               path, req.capacity_bytes(), initialised);
  pb::AttachReply reply;
  *reply.mutable_brick() = InfoOf(*brick);
  reply.set_initialised(initialised);
  return reply;
}

Status BrickRegistry::Detach(const std::string& brick_id) {
  std::lock_guard admin(admin_mu_);
  std::shared_ptr<Brick> brick;
  {
    std::unique_lock lock(mu_);
    auto it = bricks_.find(brick_id);
    if (it == bricks_.end()) return Status::NotFound("no brick " + brick_id + " is attached");
    brick = std::move(it->second);
    bricks_.erase(it);
  }
  CAIRN_RETURN_IF_ERROR(SaveLocked());
  // Let in-flight operations finish (they hold references) before the clean close.
  for (int i = 0; i < 3000 && brick.use_count() > 1; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  spdlog::info("event=detached brick={} path={}", brick_id, brick->path());
  brick.reset();
  return Status::Ok();
}

StatusOr<pb::BrickInfo> BrickRegistry::SetCapacity(const std::string& brick_id,
                                                   uint64_t capacity_bytes) {
  std::lock_guard admin(admin_mu_);
  auto brick = Find(brick_id);
  if (!brick) return Status::NotFound("no brick " + brick_id + " is attached");
  brick->set_capacity_bytes(capacity_bytes);
  CAIRN_RETURN_IF_ERROR(SaveLocked());
  spdlog::info("event=capacity brick={} capacity_bytes={}", brick_id, capacity_bytes);
  return InfoOf(*brick);
}

std::shared_ptr<Brick> BrickRegistry::Find(const std::string& brick_id) const {
  std::shared_lock lock(mu_);
  auto it = bricks_.find(brick_id);
  return it == bricks_.end() ? nullptr : it->second;
}

std::vector<std::shared_ptr<Brick>> BrickRegistry::List() const {
  std::shared_lock lock(mu_);
  std::vector<std::shared_ptr<Brick>> out;
  out.reserve(bricks_.size());
  for (const auto& [id, b] : bricks_) out.push_back(b);
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a->id() < b->id(); });
  return out;
}

size_t BrickRegistry::size() const {
  std::shared_lock lock(mu_);
  return bricks_.size();
}

void BrickRegistry::CloseAll() {
  std::lock_guard admin(admin_mu_);
  std::unordered_map<std::string, std::shared_ptr<Brick>> all;
  {
    std::unique_lock lock(mu_);
    all.swap(bricks_);
  }
  // The state file keeps listing them: a restart serves them again.
  all.clear();
}

Status BrickRegistry::SaveLocked() {
  if (state_file_.empty()) return Status::Ok();
  nlohmann::json list = nlohmann::json::array();
  for (const auto& b : List()) {
    list.push_back(
        {{"brick_id", b->id()}, {"path", b->path()}, {"capacity_bytes", b->capacity_bytes()}});
  }
  return WriteFileAtomic(state_file_, nlohmann::json{{"bricks", list}}.dump(1) + "\n");
}

}  // namespace cairn::brickd
