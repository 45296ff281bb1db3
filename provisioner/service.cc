#include "provisioner/service.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <regex>

#include "client/spec.h"
#include "common/id.h"
#include "common/parallel.h"

namespace cairn::provisioner {

namespace {

constexpr uint64_t kMaxVolumeGib = 1 << 20;  // 1 PiB
constexpr int64_t kKeepFinishedOpsMs = 3600 * 1000;
const std::regex kNameRe("[A-Za-z0-9_-]{1,100}");
const std::regex kBrickIdRe("b[0-9a-f]{32}");
const std::regex kIdRe("[0-9a-f]{32}");

Status Bad(std::string m) { return Status::InvalidArgument(std::move(m)); }

// A new operation row: pending, or already done (for changes that are
// immediate but answer through the queue as Heketi's do).
OpRow NewOp(const std::string& kind, const std::string& target, bool done) {
  OpRow op;
  op.id = NewId();
  op.kind = kind;
  op.target = target;
  op.state = done ? "done" : "pending";
  op.created_ms = NowMs();
  if (done) op.finished_ms = op.created_ms;
  return op;
}

Status FirstError(const std::vector<Status>& v) {
  for (const auto& s : v) {
    if (!s.ok()) return s;
  }
  return Status::Ok();
}

StatusOr<uint64_t> PositiveInt(const json& body, const char* key, uint64_t max, const char* unit) {
  if (!body.contains(key)) return Bad(std::string(key) + " is required");
  const json& v = body[key];
  if (!v.is_number_integer()) {
    return Bad(std::string(key) + " must be an integer number of " + unit);
  }
  if (v.is_number_unsigned() ? v.get<uint64_t>() == 0 : v.get<int64_t>() <= 0) {
    return Bad(std::string(key) + " must be at least 1 " + unit);
  }
  if (v.is_number_unsigned() && v.get<uint64_t>() > max) {
    return Bad(std::string(key) + " must be at most " + std::to_string(max) + " " + unit);
  }
  return v.get<uint64_t>();
}

StatusOr<std::string> OptString(const json& body, const char* key) {
  if (!body.contains(key) || body[key].is_null()) return std::string();
  if (!body[key].is_string()) return Bad(std::string(key) + " must be a string");
  return body[key].get<std::string>();
}

Status RequireObject(const json& body) {
  return body.is_object() ? Status::Ok() : Bad("the body must be a JSON object");
}

// Tags are an object of strings. (Anything else would also be stored as is,
// and a deeply nested value crashes the JSON dump: recursion.)
Status CheckTags(const json& tags) {
  if (!tags.is_object()) return Bad("tags must be an object");
  for (const auto& [k, v] : tags.items()) {
    if (!v.is_string()) return Bad("tag " + k.substr(0, 64) + " must be a string");
  }
  return Status::Ok();
}

StatusOr<json> ApplyTags(json tags, const json& body) {
  CAIRN_RETURN_IF_ERROR(RequireObject(body));
  // json::value() throws on a type mismatch (→ 500): check the type first.
  if (body.contains("change_type") && !body["change_type"].is_string()) {
    return Bad("change_type must be set, update or delete");
  }
  std::string change = body.value("change_type", "");
  if (!body.contains("tags")) return Bad("tags must be an object");
  CAIRN_RETURN_IF_ERROR(CheckTags(body["tags"]));
  if (change == "set") {
    tags = body["tags"];
  } else if (change == "update") {
    for (const auto& [k, v] : body["tags"].items()) tags[k] = v;
  } else if (change == "delete") {
    for (const auto& [k, v] : body["tags"].items()) tags.erase(k);
  } else {
    return Bad("change_type must be set, update or delete");
  }
  return tags;
}

std::string HostOf(const std::string& address) {
  if (!address.empty() && address.front() == '[') {
    auto e = address.find(']');
    return e == std::string::npos ? address : address.substr(0, e + 1);
  }
  auto c = address.rfind(':');
  return c == std::string::npos ? address : address.substr(0, c);
}

}  // namespace

Service::Service(Store* store, NodeClients* nodes, ServiceOptions options)
    : store_(store), nodes_(nodes), options_(std::move(options)) {}

Service::~Service() { Stop(); }

Status Service::Start() {
  CAIRN_RETURN_IF_ERROR(Recover());
  {
    std::lock_guard l(mu_);
    stopping_ = false;
  }
  for (int i = 0; i < std::max(1, options_.workers); ++i)
    workers_.emplace_back([this] { Worker(); });
  retrier_ = std::thread([this] { Retrier(); });
  return Status::Ok();
}

void Service::Stop() {
  {
    std::lock_guard l(mu_);
    if (stopping_ && workers_.empty()) return;
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : workers_) t.join();
  workers_.clear();
  if (retrier_.joinable()) retrier_.join();
}

void Service::CrashPoint(const std::string& step) {
  if (!options_.crash_at.empty() && options_.crash_at == step) {
    spdlog::critical("event=crash_point step={} (test hook)", step);
    std::_Exit(137);
  }
}

// ---------------------------------------------------------------------------
// Operations: queue, workers, recovery.

StatusOr<std::string> Service::Enqueue(const OpRow& op) {
  {
    std::lock_guard l(mu_);
    queue_.push_back(op.id);
    running_.insert(op.id);
  }
  cv_.notify_all();
  return op.id;
}

void Service::Worker() {
  std::unique_lock l(mu_);
  for (;;) {
    cv_.wait(l, [&] { return stopping_ || !queue_.empty(); });
    if (stopping_) return;
    std::string id = queue_.front();
    queue_.pop_front();
    l.unlock();
    RunOp(id);
    l.lock();
    if (!deferred_.count(id)) running_.erase(id);
    cv_.notify_all();
  }
}

void Service::Retrier() {
  // The first reconciliation runs at once (after a restart the nodes may hold
  // what a crash left behind), then every reconcile_interval.
  auto next_reconcile = std::chrono::steady_clock::now();
  std::unique_lock l(mu_);
  bool first = true;
  while (!stopping_) {
    if (!first) cv_.wait_for(l, options_.retry_interval, [&] { return stopping_; });
    first = false;
    if (stopping_) return;
    // Ops that could not reach a node are tried again.
    for (const auto& id : deferred_) queue_.push_back(id);
    deferred_.clear();
    cv_.notify_all();
    l.unlock();
    (void)store_->PruneOps(NowMs() - kKeepFinishedOpsMs);
    if (std::chrono::steady_clock::now() >= next_reconcile) {
      Status s = ReconcileNow();
      if (!s.ok()) spdlog::warn("event=reconcile_failed error=\"{}\"", s.message());
      next_reconcile = std::chrono::steady_clock::now() + options_.reconcile_interval;
    }
    l.lock();
  }
}

void Service::RunOp(const std::string& id) {
  auto op = store_->GetOp(id);
  if (!op.ok() || op->state != "pending") return;
  const auto t0 = std::chrono::steady_clock::now();
  Status s;
  if (op->kind == "volume.create") {
    s = RunVolumeCreate(*op);
  } else if (op->kind == "volume.delete") {
    s = RunVolumeDelete(*op);
  } else if (op->kind == "volume.expand") {
    s = RunVolumeExpand(*op);
  } else if (op->kind == "node.add") {
    s = RunNodeAdd(*op);
  } else if (op->kind == "device.add") {
    s = RunDeviceAdd(*op);
  } else if (op->kind == "device.delete") {
    s = RunDeviceDelete(*op);
  } else if (op->kind == "device.resync") {
    s = RunDeviceResync(*op);
  } else {
    s = Status::Internal("unknown operation kind " + op->kind);
  }
  if (op->state == "pending" && s.code() == StatusCode::kUnavailable &&
      op->kind == "volume.delete") {
    // Deletes always finish (reconcile removes what an unreachable node kept).
    s = Status::Ok();
  }
  if (op->state == "pending") Finish(*op, s);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::lock_guard l(metrics_mu_);
  op_counts_[op->kind + "," + (op->state == "done" ? "ok" : "error")]++;
  if (op->kind == "volume.create" && op->state == "done") {
    // From the request (op created) to ready.
    const double total = static_cast<double>(op->finished_ms - op->created_ms) / 1000.0;
    create_seconds_.push_back(std::max(total, secs));
    if (create_seconds_.size() > 4096) create_seconds_.erase(create_seconds_.begin());
  }
}

void Service::Finish(OpRow& op, const Status& result) {
  op.state = result.ok() ? "done" : "failed";
  op.error = result.ok() ? "" : result.message();
  op.finished_ms = NowMs();
  Status s = store_->UpdateOp(op);
  if (!s.ok()) spdlog::error("event=op_update_failed op={} error=\"{}\"", op.id, s.message());
  if (result.ok()) {
    spdlog::info("event=op_done op={} kind={} target={}", op.id, op.kind, op.target);
  } else {
    spdlog::warn("event=op_failed op={} kind={} target={} error=\"{}\"", op.id, op.kind, op.target,
                 result.message());
  }
}

StatusOr<QueueState> Service::Queue(const std::string& id, std::chrono::milliseconds wait) {
  if (!std::regex_match(id, kIdRe)) return Status::NotFound("operation " + id + " not found");
  if (wait.count() > 0) {
    std::unique_lock l(mu_);
    cv_.wait_for(l, wait, [&] { return stopping_ || !running_.count(id); });
  }
  CAIRN_ASSIGN_OR_RETURN(OpRow op, store_->GetOp(id));
  QueueState q;
  if (op.state == "pending") {
    q.kind = QueueState::kPending;
  } else if (op.state == "done") {
    q.kind = QueueState::kDone;
    q.location = op.result;
  } else {
    q.kind = QueueState::kFailed;
    q.error = op.error;
  }
  return q;
}

// Unfinished operations at start: creates roll back, deletes and expands
// roll forward; node/device adds are undone.
Status Service::Recover() {
  CAIRN_ASSIGN_OR_RETURN(auto pending, store_->ListOps("pending"));
  for (auto& op : pending) {
    spdlog::info("event=recover op={} kind={} target={}", op.id, op.kind, op.target);
    if (op.kind == "volume.create") {
      auto v = store_->GetVolume(op.target);
      if (v.ok()) {
        DestroyVolumeOnNodes(*v);
        CAIRN_RETURN_IF_ERROR(store_->DeleteVolume(v->id));
      }
      Finish(op, Status::Aborted("interrupted by a provisioner restart; rolled back"));
    } else if (op.kind == "device.add") {
      auto d = store_->GetDevice(op.target);
      if (d.ok()) {
        if (auto n = store_->GetNode(d->node_id); n.ok()) {
          sd::RemoveDeviceRequest q;
          q.set_device_id(d->storaged_id);
          sd::Empty r;
          Status s = nodes_->Call(n->manage, &sd::Storaged::Stub::RemoveDevice, q, &r);
          if (!s.ok() && s.code() != StatusCode::kNotFound) {
            spdlog::warn("event=recover_device_remove_failed device={} error=\"{}\"", d->id,
                         s.message());
          }
        }
        CAIRN_RETURN_IF_ERROR(store_->DeleteDevice(d->id));
      }
      Finish(op, Status::Aborted("interrupted by a provisioner restart; rolled back"));
    } else if (op.kind == "node.add") {
      Finish(op, Status::Aborted("interrupted by a provisioner restart"));
    } else {
      // volume.delete, volume.expand, device.delete, device.resync: again.
      RunOp(op.id);
    }
  }
  return Status::Ok();
}

// ---------------------------------------------------------------------------
// Reconciliation with the nodes.

Status Service::ReconcileNow() {
  std::lock_guard rl(reconcile_mu_);
  CAIRN_ASSIGN_OR_RETURN(auto nodes, store_->ListNodes());
  auto results = RunParallelStatus(nodes.size(), [&](size_t i) { return ReconcileNode(nodes[i]); });
  std::lock_guard l(metrics_mu_);
  ++reconciles_;
  for (size_t i = 0; i < nodes.size(); ++i) {
    if (!results[i].ok()) {
      spdlog::info("event=reconcile_skipped node={} reason=\"{}\"", nodes[i].name,
                   results[i].message());
    }
  }
  return Status::Ok();
}

Status Service::ReconcileNode(const NodeRow& n) {
  // Bricks: what the node has that no row names (and no running op is about
  // to create: rows are written before the node call) is an orphan.
  sd::ListBricksRequest lq;
  sd::ListBricksReply lr;
  CAIRN_RETURN_IF_ERROR(nodes_->Call(n.manage, &sd::Storaged::Stub::ListBricks, lq, &lr));
  sd::ListVolumeSpecsRequest sq;
  sd::ListVolumeSpecsReply sr;
  CAIRN_RETURN_IF_ERROR(nodes_->Call(n.manage, &sd::Storaged::Stub::ListVolumeSpecs, sq, &sr));
  // Read the store after listing the node, so anything created meanwhile is known.
  CAIRN_ASSIGN_OR_RETURN(auto bricks, store_->ListBricks());
  std::set<std::string> known;
  for (const auto& b : bricks) known.insert(b.id);
  CAIRN_ASSIGN_OR_RETURN(auto volumes, store_->ListVolumes());
  std::map<std::string, const VolumeRow*> by_name;
  for (const auto& v : volumes) by_name[v.name] = &v;

  std::set<std::string> removed_specs;
  for (const auto& spec : sr.specs()) {
    auto it = by_name.find(spec.name());
    bool ours = false;
    if (it != by_name.end()) {
      auto parsed = client::VolumeSpec::Parse(spec.spec_json());
      auto id = Uuid::Parse(it->second->id);
      ours = parsed.ok() && id.ok() && parsed->volume_id == *id;
    }
    if (ours) continue;
    // Only specs made of provisioner bricks are ours to remove.
    auto parsed = client::VolumeSpec::Parse(spec.spec_json());
    bool provisioner_made = parsed.ok();
    if (parsed.ok()) {
      for (const auto& sv : parsed->subvolumes) {
        for (const auto& b : sv) provisioner_made &= std::regex_match(b.brick_id, kBrickIdRe);
      }
    }
    if (!provisioner_made) continue;
    sd::DeleteVolumeSpecRequest dq;
    dq.set_name(spec.name());
    sd::Empty dr;
    Status s = nodes_->Call(n.manage, &sd::Storaged::Stub::DeleteVolumeSpec, dq, &dr);
    removed_specs.insert(spec.name());
    spdlog::info("event=orphan_spec_removed node={} volume={} ok={}", n.name, spec.name(), s.ok());
  }
  for (const auto& b : lr.bricks()) {
    if (!std::regex_match(b.brick_id(), kBrickIdRe) || known.count(b.brick_id())) continue;
    sd::DeleteBrickRequest dq;
    dq.set_brick_id(b.brick_id());
    dq.set_force(true);
    sd::Empty dr;
    Status s = nodes_->Call(n.manage, &sd::Storaged::Stub::DeleteBrick, dq, &dr);
    if (s.ok() || s.code() == StatusCode::kNotFound) {
      spdlog::info("event=orphan_brick_removed node={} brick={}", n.name, b.brick_id());
      std::lock_guard l(metrics_mu_);
      ++orphans_removed_;
    } else {
      spdlog::warn("event=orphan_brick_remove_failed node={} brick={} error=\"{}\"", n.name,
                   b.brick_id(), s.message());
    }
  }
  // Ready volumes whose spec this node lacks (it was away, or a stale spec
  // of that name was just removed) get it now.
  std::map<std::string, uint64_t> have;
  for (const auto& spec : sr.specs()) {
    if (!removed_specs.count(spec.name())) have[spec.name()] = spec.generation();
  }
  for (const auto& v : volumes) {
    if (v.state != "ready" || v.cluster_id != n.cluster_id) continue;
    auto h = have.find(v.name);
    if (h != have.end() && h->second >= v.generation) continue;
    auto spec = BuildSpec(v);
    if (!spec.ok()) continue;
    sd::PutVolumeSpecRequest pq;
    pq.set_spec_json(*spec);
    sd::PutVolumeSpecReply pr;
    Status s = nodes_->Call(n.manage, &sd::Storaged::Stub::PutVolumeSpec, pq, &pr);
    if (!s.ok()) {
      // A stale spec of another volume with the same name: replace it.
      sd::DeleteVolumeSpecRequest dq;
      dq.set_name(v.name);
      sd::Empty dr;
      if (nodes_->Call(n.manage, &sd::Storaged::Stub::DeleteVolumeSpec, dq, &dr).ok()) {
        s = nodes_->Call(n.manage, &sd::Storaged::Stub::PutVolumeSpec, pq, &pr);
      }
    }
    spdlog::info("event=spec_repaired node={} volume={} generation={} ok={}", n.name, v.name,
                 v.generation, s.ok());
  }
  return Status::Ok();
}

// ---------------------------------------------------------------------------
// Clusters.

StatusOr<json> Service::ClusterJson(const ClusterRow& c) {
  CAIRN_ASSIGN_OR_RETURN(auto nodes, store_->ListNodes(c.id));
  CAIRN_ASSIGN_OR_RETURN(auto volumes, store_->ListVolumes(c.id));
  json j = {{"id", c.id},
            {"file", c.file},
            {"block", c.block},
            {"nodes", json::array()},
            {"volumes", json::array()},
            {"blockvolumes", json::array()}};
  for (const auto& n : nodes) j["nodes"].push_back(n.id);
  for (const auto& v : volumes) j["volumes"].push_back(v.id);
  return j;
}

StatusOr<json> Service::CreateCluster(const json& body) {
  ClusterRow c;
  c.id = NewId();
  if (!body.is_null()) {
    CAIRN_RETURN_IF_ERROR(RequireObject(body));
    if (body.contains("file")) {
      if (!body["file"].is_boolean()) return Bad("file must be true or false");
      c.file = body["file"].get<bool>();
    }
    if (body.contains("block")) {
      if (!body["block"].is_boolean()) return Bad("block must be true or false");
      c.block = body["block"].get<bool>();
    }
  }
  CAIRN_RETURN_IF_ERROR(store_->InsertCluster(c));
  spdlog::info("event=cluster_created cluster={}", c.id);
  return ClusterJson(c);
}

StatusOr<json> Service::ListClusters() {
  CAIRN_ASSIGN_OR_RETURN(auto cs, store_->ListClusters());
  json ids = json::array();
  for (const auto& c : cs) ids.push_back(c.id);
  return json{{"clusters", ids}};
}

StatusOr<json> Service::ClusterInfo(const std::string& id) {
  CAIRN_ASSIGN_OR_RETURN(auto c, store_->GetCluster(id));
  return ClusterJson(c);
}

Status Service::DeleteCluster(const std::string& id) {
  return store_->Tx([&] {
    CAIRN_ASSIGN_OR_RETURN(auto c, store_->GetCluster(id));
    CAIRN_ASSIGN_OR_RETURN(auto nodes, store_->ListNodes(c.id));
    CAIRN_ASSIGN_OR_RETURN(auto volumes, store_->ListVolumes(c.id));
    if (!nodes.empty() || !volumes.empty()) {
      return Status::AlreadyExists("cluster " + id + " still has " + std::to_string(nodes.size()) +
                                   " nodes and " + std::to_string(volumes.size()) + " volumes");
    }
    return store_->DeleteCluster(id);
  });
}

Status Service::SetClusterFlags(const std::string& id, const json& body) {
  CAIRN_RETURN_IF_ERROR(RequireObject(body));
  CAIRN_ASSIGN_OR_RETURN(auto c, store_->GetCluster(id));
  for (const char* k : {"file", "block"}) {
    if (body.contains(k) && !body[k].is_boolean())
      return Bad(std::string(k) + " must be a boolean");
  }
  c.file = body.value("file", c.file);
  c.block = body.value("block", c.block);
  return store_->UpdateCluster(c);
}

// ---------------------------------------------------------------------------
// Nodes.

StatusOr<json> Service::NodeJson(const NodeRow& n) {
  CAIRN_ASSIGN_OR_RETURN(auto devices, store_->ListDevices(n.id));
  json devs = json::array();
  for (const auto& d : devices) {
    CAIRN_ASSIGN_OR_RETURN(json dj, DeviceJson(d));
    devs.push_back(std::move(dj));
  }
  return json{{"id", n.id},
              {"cluster", n.cluster_id},
              {"name", n.name},
              {"zone", n.zone},
              {"hostnames", {{"manage", {n.manage}}, {"storage", {n.storage}}}},
              {"brickd", n.brickd},
              {"state", n.state},
              {"tags", n.tags},
              {"devices", devs}};
}

StatusOr<std::string> Service::AddNode(const json& body) {
  CAIRN_RETURN_IF_ERROR(RequireObject(body));
  CAIRN_ASSIGN_OR_RETURN(std::string cluster, OptString(body, "cluster"));
  if (cluster.empty()) return Bad("cluster is required");
  CAIRN_RETURN_IF_ERROR(store_->GetCluster(cluster).status());
  const json& h = body.contains("hostnames") ? body["hostnames"] : json();
  auto first = [&](const char* k) -> StatusOr<std::string> {
    if (!h.is_object() || !h.contains(k) || !h[k].is_array() || h[k].empty() ||
        !h[k][0].is_string() || h[k][0].get<std::string>().empty()) {
      return Bad(std::string("hostnames.") + k + " must be a non-empty list of host names");
    }
    return h[k][0].get<std::string>();
  };
  CAIRN_ASSIGN_OR_RETURN(std::string manage, first("manage"));
  CAIRN_ASSIGN_OR_RETURN(std::string storage, first("storage"));
  int zone = 1;
  if (body.contains("zone")) {
    if (!body["zone"].is_number_integer() || body["zone"].get<int64_t>() < 0 ||
        body["zone"].get<int64_t>() > 1000000) {
      return Bad("zone must be a non-negative integer");
    }
    zone = static_cast<int>(body["zone"].get<int64_t>());
  }
  json tags = json::object();
  if (body.contains("tags")) {
    CAIRN_RETURN_IF_ERROR(CheckTags(body["tags"]));
    tags = body["tags"];
  }
  manage = WithDefaultPort(manage);
  CAIRN_ASSIGN_OR_RETURN(auto existing, store_->FindNodeByManage(manage));
  if (existing) return Status::AlreadyExists("node " + manage + " already exists: " + existing->id);
  OpRow op = NewOp("node.add", NewId(), /*done=*/false);  // the node's id to be
  op.payload = {{"cluster", cluster},
                {"manage", manage},
                {"storage", storage},
                {"zone", zone},
                {"tags", tags}};
  CAIRN_RETURN_IF_ERROR(store_->InsertOp(op));
  return Enqueue(op);
}

Status Service::RunNodeAdd(OpRow& op) {
  const json& p = op.payload;
  const std::string manage = p.value("manage", "");
  sd::GetNodeRequest q;
  sd::NodeInfo info;
  CAIRN_RETURN_IF_ERROR(nodes_->Call(manage, &sd::Storaged::Stub::GetNode, q, &info));
  NodeRow n;
  n.id = op.target;
  n.cluster_id = p.value("cluster", "");
  n.name = info.name();
  n.manage = manage;
  n.storage = p.value("storage", HostOf(manage));
  n.brickd = info.brickd_address();
  n.zone = p.value("zone", 1);
  n.tags = p.value("tags", json::object());
  return store_->Tx([&] {
    CAIRN_ASSIGN_OR_RETURN(auto same, store_->FindNodeByName(n.name));
    if (same) return Status::AlreadyExists("a node named " + n.name + " exists: " + same->id);
    CAIRN_RETURN_IF_ERROR(store_->InsertNode(n));
    op.state = "done";
    op.result = "/nodes/" + n.id;
    op.finished_ms = NowMs();
    spdlog::info("event=node_added node={} name={} manage={}", n.id, n.name, n.manage);
    return store_->UpdateOp(op);
  });
}

StatusOr<json> Service::RegisterNode(const json& body) {
  CAIRN_RETURN_IF_ERROR(RequireObject(body));
  CAIRN_ASSIGN_OR_RETURN(std::string name, OptString(body, "name"));
  CAIRN_ASSIGN_OR_RETURN(std::string manage, OptString(body, "manage"));
  CAIRN_ASSIGN_OR_RETURN(std::string storage, OptString(body, "storage"));
  CAIRN_ASSIGN_OR_RETURN(std::string cluster, OptString(body, "cluster"));
  if (name.empty() || manage.empty()) return Bad("name and manage are required");
  int zone = 1;
  if (body.contains("zone")) {
    if (!body["zone"].is_number_integer() || body["zone"].get<int64_t>() < 0) {
      return Bad("zone must be a non-negative integer");
    }
    zone = static_cast<int>(body["zone"].get<int64_t>());
  }
  manage = WithDefaultPort(manage);
  if (storage.empty()) storage = HostOf(manage);
  // The node must be what it says: ask it.
  sd::GetNodeRequest gq;
  sd::NodeInfo info;
  CAIRN_RETURN_IF_ERROR(nodes_->Call(manage, &sd::Storaged::Stub::GetNode, gq, &info));
  if (info.name() != name) {
    return Bad("the storaged at " + manage + " is named " + info.name() + ", not " + name);
  }
  sd::ListDevicesRequest dq;
  sd::ListDevicesReply dr;
  CAIRN_RETURN_IF_ERROR(nodes_->Call(manage, &sd::Storaged::Stub::ListDevices, dq, &dr));

  NodeRow n;
  bool created = false;
  Status s = store_->Tx([&] {
    CAIRN_ASSIGN_OR_RETURN(auto existing, store_->FindNodeByName(name));
    if (existing) {
      n = *existing;
      if (!cluster.empty() && cluster != n.cluster_id) {
        return Status::AlreadyExists("node " + name + " belongs to cluster " + n.cluster_id);
      }
    } else {
      if (cluster.empty()) {
        CAIRN_ASSIGN_OR_RETURN(auto cs, store_->ListClusters());
        if (cs.size() > 1) return Bad("several clusters exist: name one in the request");
        if (cs.empty()) {
          ClusterRow c;
          c.id = NewId();
          CAIRN_RETURN_IF_ERROR(store_->InsertCluster(c));
          spdlog::info("event=cluster_created cluster={} by=registration", c.id);
          cluster = c.id;
        } else {
          cluster = cs[0].id;
        }
      } else {
        CAIRN_RETURN_IF_ERROR(store_->GetCluster(cluster).status());
      }
      n.id = NewId();
      n.cluster_id = cluster;
      n.name = name;
      created = true;
    }
    // Another node registered at this address before (an address reused).
    CAIRN_ASSIGN_OR_RETURN(auto at, store_->FindNodeByManage(manage));
    if (at && at->id != n.id) {
      return Status::AlreadyExists("address " + manage + " belongs to node " + at->name);
    }
    n.manage = manage;
    n.storage = storage;
    n.brickd = info.brickd_address();
    n.zone = zone;
    CAIRN_RETURN_IF_ERROR(created ? store_->InsertNode(n) : store_->UpdateNode(n));
    CAIRN_ASSIGN_OR_RETURN(auto devices, store_->ListDevices(n.id));
    for (const auto& d : dr.devices()) {
      bool known = std::any_of(devices.begin(), devices.end(),
                               [&](const DeviceRow& x) { return x.storaged_id == d.device_id(); });
      if (known) {
        for (auto x : devices) {
          if (x.storaged_id == d.device_id() && x.total_kib != d.capacity_bytes() / 1024) {
            x.total_kib = d.capacity_bytes() / 1024;
            CAIRN_RETURN_IF_ERROR(store_->UpdateDevice(x));
          }
        }
        continue;
      }
      DeviceRow row;
      row.id = NewId();
      row.node_id = n.id;
      row.name = d.path();
      row.storaged_id = d.device_id();
      row.total_kib = d.capacity_bytes() / 1024;
      CAIRN_RETURN_IF_ERROR(store_->InsertDevice(row));
      spdlog::info("event=device_adopted node={} device={} path={} total_kib={}", n.name, row.id,
                   row.name, row.total_kib);
    }
    return Status::Ok();
  });
  CAIRN_RETURN_IF_ERROR(s);
  spdlog::info("event=node_registered node={} name={} manage={} new={}", n.id, n.name, n.manage,
               created);
  // A returning node catches up (specs it missed, orphans) in the background.
  std::thread([this, n] { (void)ReconcileNode(n); }).detach();
  return json{{"id", n.id}, {"cluster", n.cluster_id}};
}

StatusOr<json> Service::ListNodes() {
  CAIRN_ASSIGN_OR_RETURN(auto ns, store_->ListNodes());
  json ids = json::array();
  for (const auto& n : ns) ids.push_back(n.id);
  return json{{"nodes", ids}};
}

StatusOr<json> Service::NodeInfo(const std::string& id) {
  CAIRN_ASSIGN_OR_RETURN(auto n, store_->GetNode(id));
  return NodeJson(n);
}

StatusOr<std::string> Service::DeleteNode(const std::string& id) {
  OpRow op;
  Status s = store_->Tx([&] {
    CAIRN_ASSIGN_OR_RETURN(auto n, store_->GetNode(id));
    CAIRN_ASSIGN_OR_RETURN(auto devices, store_->ListDevices(n.id));
    if (!devices.empty()) {
      return Status::AlreadyExists("node " + n.name + " still has " +
                                   std::to_string(devices.size()) + " devices");
    }
    CAIRN_RETURN_IF_ERROR(store_->DeleteNode(id));
    op = NewOp("node.delete", id, /*done=*/true);
    return store_->InsertOp(op);
  });
  CAIRN_RETURN_IF_ERROR(s);
  return op.id;
}

StatusOr<std::string> Service::SetNodeState(const std::string& id, const json& body) {
  CAIRN_RETURN_IF_ERROR(RequireObject(body));
  CAIRN_ASSIGN_OR_RETURN(std::string state, OptString(body, "state"));
  if (state != "online" && state != "offline" && state != "failed") {
    return Bad("state must be online, offline or failed");
  }
  OpRow op;
  Status s = store_->Tx([&] {
    CAIRN_ASSIGN_OR_RETURN(auto n, store_->GetNode(id));
    n.state = state;
    CAIRN_RETURN_IF_ERROR(store_->UpdateNode(n));
    op = NewOp("node.state", id, /*done=*/true);
    return store_->InsertOp(op);
  });
  CAIRN_RETURN_IF_ERROR(s);
  return op.id;
}

StatusOr<json> Service::SetNodeTags(const std::string& id, const json& body) {
  CAIRN_ASSIGN_OR_RETURN(auto n, store_->GetNode(id));
  CAIRN_ASSIGN_OR_RETURN(n.tags, ApplyTags(n.tags, body));
  CAIRN_RETURN_IF_ERROR(store_->UpdateNode(n));
  return json{{"tags", n.tags}};
}

// ---------------------------------------------------------------------------
// Devices.

StatusOr<json> Service::DeviceJson(const DeviceRow& d) {
  CAIRN_ASSIGN_OR_RETURN(auto bricks, store_->ListBricksOnDevice(d.id));
  uint64_t used = 0;
  json bj = json::array();
  for (const auto& b : bricks) {
    used += b.size_kib;
    bj.push_back({{"id", b.id},
                  {"path", d.name + "/bricks/" + b.id},
                  {"device", d.id},
                  {"node", d.node_id},
                  {"volume", b.volume_id},
                  {"size", b.size_kib}});
  }
  return json{{"id", d.id},
              {"name", d.name},
              {"node", d.node_id},
              {"state", d.state},
              {"storage",
               {{"total", d.total_kib},
                {"used", used},
                {"free", d.total_kib > used ? d.total_kib - used : 0}}},
              {"bricks", bj},
              {"tags", d.tags}};
}

StatusOr<std::string> Service::AddDevice(const json& body) {
  CAIRN_RETURN_IF_ERROR(RequireObject(body));
  CAIRN_ASSIGN_OR_RETURN(std::string node_id, OptString(body, "node"));
  CAIRN_ASSIGN_OR_RETURN(std::string name, OptString(body, "name"));
  if (node_id.empty()) return Bad("node is required");
  if (name.empty() || name.front() != '/') return Bad("name must be an absolute directory path");
  uint64_t capacity_kib = 0;
  if (body.contains("capacity_kib")) {
    if (!body["capacity_kib"].is_number_unsigned()) {
      return Bad("capacity_kib must be a non-negative integer");
    }
    capacity_kib = body["capacity_kib"].get<uint64_t>();
  }
  json tags = json::object();
  if (body.contains("tags")) {
    CAIRN_RETURN_IF_ERROR(CheckTags(body["tags"]));
    tags = body["tags"];
  }
  OpRow op;
  Status s = store_->Tx([&] {
    CAIRN_ASSIGN_OR_RETURN(auto n, store_->GetNode(node_id));
    CAIRN_ASSIGN_OR_RETURN(auto devices, store_->ListDevices(n.id));
    for (const auto& d : devices) {
      if (d.name == name) {
        return Status::AlreadyExists("device " + name + " already exists on node " + n.name + ": " +
                                     d.id);
      }
    }
    DeviceRow d;
    d.id = NewId();
    d.node_id = n.id;
    d.name = name;
    d.storaged_id = d.id;
    d.state = "adding";
    d.tags = tags;
    CAIRN_RETURN_IF_ERROR(store_->InsertDevice(d));
    op = NewOp("device.add", d.id, /*done=*/false);
    op.payload = {{"capacity_kib", capacity_kib}};
    return store_->InsertOp(op);
  });
  CAIRN_RETURN_IF_ERROR(s);
  return Enqueue(op);
}

Status Service::RunDeviceAdd(OpRow& op) {
  CAIRN_ASSIGN_OR_RETURN(auto d, store_->GetDevice(op.target));
  CAIRN_ASSIGN_OR_RETURN(auto n, store_->GetNode(d.node_id));
  sd::AddDeviceRequest q;
  q.set_device_id(d.storaged_id);
  q.set_path(d.name);
  q.set_capacity_bytes(op.payload.value("capacity_kib", uint64_t{0}) * 1024);
  sd::AddDeviceReply r;
  Status s = nodes_->Call(n.manage, &sd::Storaged::Stub::AddDevice, q, &r);
  if (!s.ok()) {
    (void)store_->DeleteDevice(d.id);
    return s;
  }
  d.total_kib = r.device().capacity_bytes() / 1024;
  d.state = "online";
  CAIRN_RETURN_IF_ERROR(store_->UpdateDevice(d));
  spdlog::info("event=device_added device={} node={} path={} total_kib={}", d.id, n.name, d.name,
               d.total_kib);
  return Status::Ok();
}

StatusOr<json> Service::DeviceInfo(const std::string& id) {
  CAIRN_ASSIGN_OR_RETURN(auto d, store_->GetDevice(id));
  return DeviceJson(d);
}

StatusOr<std::string> Service::DeleteDevice(const std::string& id) {
  OpRow op;
  Status s = store_->Tx([&] {
    CAIRN_ASSIGN_OR_RETURN(auto d, store_->GetDevice(id));
    CAIRN_ASSIGN_OR_RETURN(auto bricks, store_->ListBricksOnDevice(d.id));
    if (!bricks.empty()) {
      return Status::AlreadyExists("device " + d.name + " still holds " +
                                   std::to_string(bricks.size()) + " bricks");
    }
    CAIRN_ASSIGN_OR_RETURN(auto pending, store_->PendingOpFor(id));
    if (pending) return Status::AlreadyExists("device " + d.name + " is busy: " + pending->kind);
    d.state = "deleting";
    CAIRN_RETURN_IF_ERROR(store_->UpdateDevice(d));
    op = NewOp("device.delete", id, /*done=*/false);
    return store_->InsertOp(op);
  });
  CAIRN_RETURN_IF_ERROR(s);
  return Enqueue(op);
}

Status Service::RunDeviceDelete(OpRow& op) {
  auto d = store_->GetDevice(op.target);
  if (!d.ok()) return Status::Ok();  // already gone
  CAIRN_ASSIGN_OR_RETURN(auto n, store_->GetNode(d->node_id));
  sd::RemoveDeviceRequest q;
  q.set_device_id(d->storaged_id);
  sd::Empty r;
  Status s = nodes_->Call(n.manage, &sd::Storaged::Stub::RemoveDevice, q, &r);
  if (!s.ok() && s.code() != StatusCode::kNotFound) {
    d->state = "online";
    (void)store_->UpdateDevice(*d);
    return s;
  }
  return store_->DeleteDevice(d->id);
}

StatusOr<std::string> Service::SetDeviceState(const std::string& id, const json& body) {
  CAIRN_RETURN_IF_ERROR(RequireObject(body));
  CAIRN_ASSIGN_OR_RETURN(std::string state, OptString(body, "state"));
  if (state != "online" && state != "offline" && state != "failed") {
    return Bad("state must be online, offline or failed");
  }
  OpRow op;
  Status s = store_->Tx([&] {
    CAIRN_ASSIGN_OR_RETURN(auto d, store_->GetDevice(id));
    if (d.state == "adding" || d.state == "deleting") {
      return Status::AlreadyExists("device " + d.name + " is " + d.state);
    }
    d.state = state;
    CAIRN_RETURN_IF_ERROR(store_->UpdateDevice(d));
    op = NewOp("device.state", id, /*done=*/true);
    return store_->InsertOp(op);
  });
  CAIRN_RETURN_IF_ERROR(s);
  return op.id;
}

StatusOr<std::string> Service::ResyncDevice(const std::string& id) {
  CAIRN_RETURN_IF_ERROR(store_->GetDevice(id).status());
  OpRow op = NewOp("device.resync", id, /*done=*/false);
  CAIRN_RETURN_IF_ERROR(store_->InsertOp(op));
  return Enqueue(op);
}

Status Service::RunDeviceResync(OpRow& op) {
  CAIRN_ASSIGN_OR_RETURN(auto d, store_->GetDevice(op.target));
  CAIRN_ASSIGN_OR_RETURN(auto n, store_->GetNode(d.node_id));
  sd::ListDevicesRequest q;
  sd::ListDevicesReply r;
  CAIRN_RETURN_IF_ERROR(nodes_->Call(n.manage, &sd::Storaged::Stub::ListDevices, q, &r));
  for (const auto& x : r.devices()) {
    if (x.device_id() == d.storaged_id) {
      d.total_kib = x.capacity_bytes() / 1024;
      return store_->UpdateDevice(d);
    }
  }
  return Status::NotFound("node " + n.name + " has no device " + d.storaged_id);
}

StatusOr<json> Service::SetDeviceTags(const std::string& id, const json& body) {
  CAIRN_ASSIGN_OR_RETURN(auto d, store_->GetDevice(id));
  CAIRN_ASSIGN_OR_RETURN(d.tags, ApplyTags(d.tags, body));
  CAIRN_RETURN_IF_ERROR(store_->UpdateDevice(d));
  return json{{"tags", d.tags}};
}

// ---------------------------------------------------------------------------
// Volumes.

StatusOr<std::vector<NodeFree>> Service::FreeSpace(const std::string& cluster_id,
                                                   const std::vector<int>& zones) {
  CAIRN_ASSIGN_OR_RETURN(auto nodes, store_->ListNodes(cluster_id));
  std::vector<NodeFree> out;
  for (const auto& n : nodes) {
    const int zone = n.zone <= 0 ? 1 : n.zone;
    if (!zones.empty() && std::find(zones.begin(), zones.end(), zone) == zones.end()) continue;
    NodeFree nf;
    nf.id = n.id;
    nf.zone = n.zone <= 0 ? 1 : n.zone;
    nf.online = n.state == "online";
    CAIRN_ASSIGN_OR_RETURN(auto devices, store_->ListDevices(n.id));
    for (const auto& d : devices) {
      CAIRN_ASSIGN_OR_RETURN(uint64_t used, store_->DeviceAllocatedKib(d.id));
      nf.devices.push_back(
          {d.id, d.total_kib > used ? d.total_kib - used : 0, d.state == "online"});
    }
    out.push_back(std::move(nf));
  }
  return out;
}

StatusOr<std::string> Service::CreateVolume(const json& body) {
  CAIRN_RETURN_IF_ERROR(RequireObject(body));
  CAIRN_ASSIGN_OR_RETURN(uint64_t size, PositiveInt(body, "size", kMaxVolumeGib, "GiB"));
  CAIRN_ASSIGN_OR_RETURN(std::string name, OptString(body, "name"));
  const std::string id = NewId();
  if (name.empty()) name = "vol_" + id;
  if (!std::regex_match(name, kNameRe)) {
    return Bad("name must match [A-Za-z0-9_-]{1,100}, not '" + name.substr(0, 120) + "'");
  }
  int replica = 3;
  if (body.contains("durability")) {
    const json& d = body["durability"];
    if (!d.is_object()) return Bad("durability must be an object");
    // json::value() throws on a type mismatch: check the type first.
    if (d.contains("type") && !d["type"].is_string()) {
      return Bad("durability.type must be a string");
    }
    const std::string type = d.contains("type") ? d["type"].get<std::string>() : "replicate";
    if (type == "none") {
      replica = 1;
    } else if (type == "replicate") {
      if (d.contains("replicate")) {
        const json& r = d["replicate"];
        if (!r.is_object()) return Bad("durability.replicate must be an object");
        if (r.contains("replica")) {
          if (!r["replica"].is_number_integer()) {
            return Bad("durability.replicate.replica must be an integer");
          }
          int64_t rv = r["replica"].get<int64_t>();
          if (rv < 1 || rv > 5) return Bad("durability.replicate.replica must be 1..5");
          replica = static_cast<int>(rv);
        }
      }
    } else if (type == "disperse") {
      return Bad("disperse volumes are not supported: use replicate");
    } else {
      return Bad("durability.type must be none or replicate, not '" + type.substr(0, 64) + "'");
    }
  }
  bool arbiter = false;
  if (body.contains("arbiter")) {
    if (!body["arbiter"].is_boolean()) return Bad("arbiter must be true or false");
    arbiter = body["arbiter"].get<bool>();
  }
  if (body.contains("glustervolumeoptions")) {
    const json& o = body["glustervolumeoptions"];
    if (!o.is_array()) return Bad("glustervolumeoptions must be a list of strings");
    for (const auto& x : o) {
      if (!x.is_string()) return Bad("glustervolumeoptions must be a list of strings");
      if (x.get<std::string>() == "user.heketi.arbiter true") arbiter = true;
    }
  }
  if (arbiter && replica != 3) return Bad("arbiter needs replica 3");
  std::vector<std::string> clusters;
  if (body.contains("clusters")) {
    if (!body["clusters"].is_array()) return Bad("clusters must be a list of cluster ids");
    for (const auto& c : body["clusters"]) {
      if (!c.is_string()) return Bad("clusters must be a list of cluster ids");
      CAIRN_RETURN_IF_ERROR(store_->GetCluster(c.get<std::string>()).status());
      clusters.push_back(c.get<std::string>());
    }
  }
  std::vector<int> zones;
  if (body.contains("zones")) {
    const json& z = body["zones"];
    if (!z.is_array()) return Bad("zones must be a list of zone numbers");
    for (const auto& x : z) {
      if (!x.is_number_integer() || x.get<int64_t>() < 1 || x.get<int64_t>() > 1000000) {
        return Bad("zones must be a list of zone numbers (integers >= 1)");
      }
      const int zone = static_cast<int>(x.get<int64_t>());
      if (std::find(zones.begin(), zones.end(), zone) == zones.end()) zones.push_back(zone);
    }
    std::sort(zones.begin(), zones.end());
  }
  if (body.contains("snapshot") && body["snapshot"].is_object()) {
    const json& snap = body["snapshot"];
    // json::value() throws on a type mismatch: check the type first.
    if (snap.contains("enable") && !snap["enable"].is_boolean()) {
      return Bad("snapshot.enable must be true or false");
    }
    if (snap.value("enable", false)) return Bad("snapshots are not supported");
  }

  std::lock_guard place(place_mu_);
  // Idempotent by name.
  CAIRN_ASSIGN_OR_RETURN(auto existing, store_->FindVolumeByName(name));
  if (existing) {
    const VolumeRow& v = *existing;
    const bool same = v.replica == replica && v.arbiter == arbiter &&
                      (size == v.created_gib || size == v.size_gib);
    if (!same) {
      return Status::AlreadyExists("volume " + name + " exists with size " +
                                   std::to_string(v.size_gib) + " GiB, replica " +
                                   std::to_string(v.replica) + (v.arbiter ? " arbiter" : "") +
                                   "; requested " + std::to_string(size) + " GiB, replica " +
                                   std::to_string(replica) + (arbiter ? " arbiter" : ""));
    }
    if (v.state == "deleting") return Status::AlreadyExists("volume " + name + " is being deleted");
    CAIRN_ASSIGN_OR_RETURN(auto pending, store_->PendingOpFor(v.id));
    if (pending) return pending->id;
    OpRow op = NewOp("volume.create", v.id, /*done=*/true);
    op.result = "/volumes/" + v.id;
    op.payload = {{"existing", true}};
    CAIRN_RETURN_IF_ERROR(store_->InsertOp(op));
    return op.id;
  }
  if (clusters.empty()) {
    CAIRN_ASSIGN_OR_RETURN(auto cs, store_->ListClusters());
    for (const auto& c : cs) {
      if (c.file) clusters.push_back(c.id);
    }
    if (clusters.empty()) return Status::FailedPrecondition("no cluster accepts file volumes");
  }
  AllocRequest req;
  req.size_kib = size << 20;
  req.replica = replica;
  req.arbiter = arbiter;
  Status last = Status::ResourceExhausted("no cluster");
  std::string cluster;
  std::vector<ReplicaSet> sets;
  for (const auto& c : clusters) {
    CAIRN_ASSIGN_OR_RETURN(auto free, FreeSpace(c, zones));
    auto placed = Allocate(free, req);
    if (placed.ok()) {
      cluster = c;
      sets = std::move(*placed);
      break;
    }
    last = placed.status();
  }
  if (cluster.empty()) {
    if (last.code() == StatusCode::kInvalidArgument) return last;
    return Status::ResourceExhausted("cannot place volume " + name + " (" + std::to_string(size) +
                                     " GiB, replica " + std::to_string(replica) +
                                     "): " + last.message());
  }
  VolumeRow v;
  v.id = id;
  v.name = name;
  v.cluster_id = cluster;
  v.size_gib = v.created_gib = size;
  v.replica = replica;
  v.arbiter = arbiter;
  v.zones = zones;
  v.state = "creating";
  v.generation = 1;
  v.created_ms = NowMs();
  OpRow op = NewOp("volume.create", v.id, /*done=*/false);
  op.created_ms = v.created_ms;
  Status s = store_->Tx([&] {
    CAIRN_RETURN_IF_ERROR(store_->InsertVolume(v));
    for (size_t si = 0; si < sets.size(); ++si) {
      for (size_t bi = 0; bi < sets[si].size(); ++bi) {
        const BrickPlacement& p = sets[si][bi];
        BrickRow b;
        b.id = "b" + NewId();
        b.volume_id = v.id;
        b.device_id = p.device_id;
        b.node_id = p.node_id;
        b.size_kib = p.size_kib;
        b.subvolume = static_cast<int>(si);
        b.position = static_cast<int>(bi);
        b.arbiter = p.arbiter;
        CAIRN_RETURN_IF_ERROR(store_->InsertBrick(b));
      }
    }
    return store_->InsertOp(op);
  });
  CAIRN_RETURN_IF_ERROR(s);
  spdlog::info("event=volume_create_accepted volume={} name={} size_gib={} replica={} sets={}",
               v.id, v.name, size, replica, sets.size());
  return Enqueue(op);
}

Status Service::RunVolumeCreate(OpRow& op) {
  CAIRN_ASSIGN_OR_RETURN(auto v, store_->GetVolume(op.target));
  CAIRN_ASSIGN_OR_RETURN(auto bricks, store_->ListBricks(v.id));
  CAIRN_ASSIGN_OR_RETURN(std::string spec, BuildSpec(v));
  CrashPoint("volume.create:before-bricks");
  // Each CreateBrick carries the volume's spec, which the node stores in the
  // brick's commit: the nodes holding bricks need no PutVolumeSpec. A node
  // that refuses the spec (a stale one of the same name from a deleted
  // volume) or does not know the field gets the brick alone, and the spec
  // from PutSpecEverywhere, which sorts out stale ones.
  std::vector<char> spec_stored(bricks.size(), 0);
  auto results = RunParallelStatus(bricks.size(), [&](size_t i) -> Status {
    const BrickRow& b = bricks[i];
    CAIRN_ASSIGN_OR_RETURN(auto n, store_->GetNode(b.node_id));
    CAIRN_ASSIGN_OR_RETURN(auto d, store_->GetDevice(b.device_id));
    sd::CreateBrickRequest q;
    q.set_device_id(d.storaged_id);
    q.set_brick_id(b.id);
    q.set_capacity_bytes(b.size_kib * 1024);
    q.set_spec_json(spec);
    sd::CreateBrickReply r;
    Status s = nodes_->Call(n.manage, &sd::Storaged::Stub::CreateBrick, q, &r);
    if (s.code() == StatusCode::kAlreadyExists || s.code() == StatusCode::kFailedPrecondition ||
        s.code() == StatusCode::kInvalidArgument) {
      q.clear_spec_json();
      s = nodes_->Call(n.manage, &sd::Storaged::Stub::CreateBrick, q, &r);
    }
    spec_stored[i] = s.ok() && r.spec_stored();
    return s;
  });
  Status s = FirstError(results);
  if (s.ok()) {
    CrashPoint("volume.create:after-bricks");
    std::set<std::string> have_spec;
    std::set<std::string> lack_spec;
    for (size_t i = 0; i < bricks.size(); ++i) {
      (spec_stored[i] ? have_spec : lack_spec).insert(bricks[i].node_id);
    }
    for (const auto& id : lack_spec) have_spec.erase(id);
    s = PutSpecEverywhere(v, /*require_brick_nodes=*/true, spec, have_spec);
  }
  if (!s.ok()) {
    // Roll back: nothing of a failed create stays on the nodes.
    DestroyVolumeOnNodes(v);
    CAIRN_RETURN_IF_ERROR(store_->DeleteVolume(v.id));
    return s;
  }
  CrashPoint("volume.create:after-spec");
  return store_->Tx([&] {
    v.state = "ready";
    CAIRN_RETURN_IF_ERROR(store_->UpdateVolume(v));
    op.state = "done";
    op.result = "/volumes/" + v.id;
    op.finished_ms = NowMs();
    spdlog::info("event=volume_created volume={} name={} ms={}", v.id, v.name,
                 op.finished_ms - op.created_ms);
    return store_->UpdateOp(op);
  });
}

StatusOr<std::string> Service::BuildSpec(const VolumeRow& v) {
  CAIRN_ASSIGN_OR_RETURN(auto bricks, store_->ListBricks(v.id));
  client::VolumeSpec spec;
  CAIRN_ASSIGN_OR_RETURN(spec.volume_id, Uuid::Parse(v.id));
  spec.name = v.name;
  spec.replica = v.replica;
  spec.arbiter = v.arbiter ? 1 : 0;
  spec.generation = v.generation;
  // 0: the size is the bricks' capacity, which a mounted client reads live
  // (statfs), so an in-place expansion shows in `df` without a remount.
  spec.size_bytes = 0;
  std::map<std::string, NodeRow> nodes;
  for (const auto& b : bricks) {
    if (!nodes.count(b.node_id)) {
      CAIRN_ASSIGN_OR_RETURN(nodes[b.node_id], store_->GetNode(b.node_id));
    }
    if (static_cast<size_t>(b.subvolume) >= spec.subvolumes.size()) {
      spec.subvolumes.resize(b.subvolume + 1);
    }
    spec.subvolumes[b.subvolume].push_back({nodes[b.node_id].brickd, b.id, b.arbiter});
  }
  if (v.replica == 1) {
    spec.type = client::VolumeSpec::Type::kDistribute;
  } else if (spec.subvolumes.size() > 1) {
    spec.type = client::VolumeSpec::Type::kDistributeReplicate;
  } else {
    spec.type = client::VolumeSpec::Type::kReplicate;
  }
  return spec.ToJson();
}

Status Service::PutSpecEverywhere(const VolumeRow& v, bool require_brick_nodes) {
  CAIRN_ASSIGN_OR_RETURN(std::string spec, BuildSpec(v));
  return PutSpecEverywhere(v, require_brick_nodes, spec, {});
}

Status Service::PutSpecEverywhere(const VolumeRow& v, bool require_brick_nodes,
                                  const std::string& spec, const std::set<std::string>& skip) {
  CAIRN_ASSIGN_OR_RETURN(auto all_nodes, store_->ListNodes(v.cluster_id));
  std::vector<NodeRow> nodes;
  for (auto& n : all_nodes) {
    if (!skip.count(n.id)) nodes.push_back(std::move(n));
  }
  if (nodes.empty()) return Status::Ok();
  CAIRN_ASSIGN_OR_RETURN(auto bricks, store_->ListBricks(v.id));
  std::set<std::string> brick_nodes;
  for (const auto& b : bricks) brick_nodes.insert(b.node_id);
  CAIRN_ASSIGN_OR_RETURN(Uuid vid, Uuid::Parse(v.id));
  auto results = RunParallelStatus(nodes.size(), [&](size_t i) -> Status {
    const NodeRow& n = nodes[i];
    sd::PutVolumeSpecRequest q;
    q.set_spec_json(spec);
    sd::PutVolumeSpecReply r;
    Status s = nodes_->Call(n.manage, &sd::Storaged::Stub::PutVolumeSpec, q, &r);
    if (s.code() == StatusCode::kAlreadyExists || s.code() == StatusCode::kFailedPrecondition) {
      // A spec of that name from a deleted volume (its node was away then).
      sd::GetVolumeSpecRequest gq;
      gq.set_name(v.name);
      sd::VolumeSpecReply gr;
      if (nodes_->Call(n.manage, &sd::Storaged::Stub::GetVolumeSpec, gq, &gr).ok()) {
        auto old = client::VolumeSpec::Parse(gr.spec_json());
        if (old.ok() && old->volume_id != vid) {
          sd::DeleteVolumeSpecRequest dq;
          dq.set_name(v.name);
          sd::Empty dr;
          CAIRN_RETURN_IF_ERROR(
              nodes_->Call(n.manage, &sd::Storaged::Stub::DeleteVolumeSpec, dq, &dr));
          s = nodes_->Call(n.manage, &sd::Storaged::Stub::PutVolumeSpec, q, &r);
        }
      }
    }
    return s;
  });
  for (size_t i = 0; i < nodes.size(); ++i) {
    if (results[i].ok()) continue;
    if (require_brick_nodes && brick_nodes.count(nodes[i].id)) return results[i];
    spdlog::warn("event=spec_put_failed node={} volume={} error=\"{}\" (reconcile retries)",
                 nodes[i].name, v.name, results[i].message());
  }
  return Status::Ok();
}

void Service::DestroyVolumeOnNodes(const VolumeRow& v) {
  auto nodes = store_->ListNodes(v.cluster_id);
  auto bricks = store_->ListBricks(v.id);
  if (!nodes.ok() || !bricks.ok()) return;
  auto spec_results = RunParallelStatus(nodes->size(), [&](size_t i) -> Status {
    sd::DeleteVolumeSpecRequest q;
    q.set_name(v.name);
    sd::Empty r;
    return nodes_->Call((*nodes)[i].manage, &sd::Storaged::Stub::DeleteVolumeSpec, q, &r);
  });
  CrashPoint("volume.delete:after-specs");
  auto brick_results = RunParallelStatus(bricks->size(), [&](size_t i) -> Status {
    const BrickRow& b = (*bricks)[i];
    CAIRN_ASSIGN_OR_RETURN(auto n, store_->GetNode(b.node_id));
    sd::DeleteBrickRequest q;
    q.set_brick_id(b.id);
    q.set_force(true);
    sd::Empty r;
    Status s = nodes_->Call(n.manage, &sd::Storaged::Stub::DeleteBrick, q, &r);
    return s.code() == StatusCode::kNotFound ? Status::Ok() : s;
  });
  Status first = FirstError(spec_results);
  if (first.ok()) first = FirstError(brick_results);
  if (!first.ok()) {
    spdlog::warn("event=volume_destroy_incomplete volume={} error=\"{}\" (reconcile finishes it)",
                 v.name, first.message());
  }
}

StatusOr<std::string> Service::DeleteVolume(const std::string& id) {
  std::lock_guard place(place_mu_);
  OpRow op;
  bool reuse = false;
  Status s = store_->Tx([&] {
    CAIRN_ASSIGN_OR_RETURN(auto v, store_->GetVolume(id));
    CAIRN_ASSIGN_OR_RETURN(auto pending, store_->PendingOpFor(id));
    if (pending) {
      if (pending->kind == "volume.delete") {
        op = *pending;
        reuse = true;
        return Status::Ok();
      }
      return Status::AlreadyExists("volume " + v.name + " is busy: " + pending->kind +
                                   " in progress");
    }
    v.state = "deleting";
    CAIRN_RETURN_IF_ERROR(store_->UpdateVolume(v));
    op = NewOp("volume.delete", id, /*done=*/false);
    return store_->InsertOp(op);
  });
  CAIRN_RETURN_IF_ERROR(s);
  if (reuse) return op.id;
  return Enqueue(op);
}

Status Service::RunVolumeDelete(OpRow& op) {
  auto v = store_->GetVolume(op.target);
  if (!v.ok()) return Status::Ok();  // already gone
  CrashPoint("volume.delete:before-nodes");
  DestroyVolumeOnNodes(*v);
  CrashPoint("volume.delete:after-nodes");
  return store_->Tx([&] {
    CAIRN_RETURN_IF_ERROR(store_->DeleteVolume(v->id));
    op.state = "done";
    op.finished_ms = NowMs();
    spdlog::info("event=volume_deleted volume={} name={}", v->id, v->name);
    return store_->UpdateOp(op);
  });
}

StatusOr<std::string> Service::ExpandVolume(const std::string& id, const json& body) {
  CAIRN_RETURN_IF_ERROR(RequireObject(body));
  CAIRN_ASSIGN_OR_RETURN(uint64_t add, PositiveInt(body, "expand_size", kMaxVolumeGib, "GiB"));
  std::lock_guard place(place_mu_);
  CAIRN_ASSIGN_OR_RETURN(auto v, store_->GetVolume(id));
  if (v.state != "ready") return Status::AlreadyExists("volume " + v.name + " is " + v.state);
  if (v.size_gib + add > kMaxVolumeGib) return Bad("the volume would exceed 1048576 GiB");
  CAIRN_ASSIGN_OR_RETURN(auto bricks, store_->ListBricks(v.id));
  int sets = 0;
  for (const auto& b : bricks) sets = std::max(sets, b.subvolume + 1);
  // In place: every brick of every set grows by ceil(add / sets) (arbiters by
  // their share), if each device has the room.
  const uint64_t grow_kib = ((add << 20) + sets - 1) / sets;
  std::map<std::string, uint64_t> need;  // device → KiB
  std::map<std::string, uint64_t> new_size;
  for (const auto& b : bricks) {
    uint64_t target = b.size_kib + grow_kib;
    if (b.arbiter) {
      uint64_t data = 0;
      for (const auto& x : bricks) {
        if (x.subvolume == b.subvolume && !x.arbiter) data = x.size_kib + grow_kib;
      }
      target = std::max(b.size_kib, ArbiterBrickKib(data));
    }
    new_size[b.id] = target;
    need[b.device_id] += target - b.size_kib;
  }
  bool in_place = true;
  for (const auto& [dev, kib] : need) {
    CAIRN_ASSIGN_OR_RETURN(auto d, store_->GetDevice(dev));
    CAIRN_ASSIGN_OR_RETURN(uint64_t used, store_->DeviceAllocatedKib(dev));
    if (d.state != "online" || used + kib > d.total_kib) in_place = false;
  }
  std::vector<ReplicaSet> added;
  if (!in_place) {
    CAIRN_ASSIGN_OR_RETURN(auto free, FreeSpace(v.cluster_id, v.zones));
    AllocRequest req;
    req.size_kib = add << 20;
    req.replica = v.replica;
    req.arbiter = v.arbiter;
    auto placed = Allocate(free, req);
    if (!placed.ok()) {
      return Status::ResourceExhausted("cannot expand volume " + v.name + " by " +
                                       std::to_string(add) + " GiB: " + placed.status().message());
    }
    added = std::move(*placed);
  }
  OpRow op = NewOp("volume.expand", v.id, /*done=*/false);
  json old_sizes = json::object();
  for (const auto& b : bricks) old_sizes[b.id] = b.size_kib;
  json new_bricks = json::array();
  Status s = store_->Tx([&] {
    if (in_place) {
      for (auto b : bricks) {
        b.size_kib = new_size[b.id];
        CAIRN_RETURN_IF_ERROR(store_->UpdateBrick(b));
      }
    } else {
      for (size_t si = 0; si < added.size(); ++si) {
        for (size_t bi = 0; bi < added[si].size(); ++bi) {
          const BrickPlacement& p = added[si][bi];
          BrickRow b;
          b.id = "b" + NewId();
          b.volume_id = v.id;
          b.device_id = p.device_id;
          b.node_id = p.node_id;
          b.size_kib = p.size_kib;
          b.subvolume = sets + static_cast<int>(si);
          b.position = static_cast<int>(bi);
          b.arbiter = p.arbiter;
          CAIRN_RETURN_IF_ERROR(store_->InsertBrick(b));
          new_bricks.push_back(b.id);
        }
      }
    }
    op.payload = {{"old_size_gib", v.size_gib},
                  {"old_generation", v.generation},
                  {"old_sizes", old_sizes},
                  {"new_bricks", new_bricks},
                  {"in_place", in_place}};
    v.state = "expanding";
    v.size_gib += add;
    v.generation += 1;
    CAIRN_RETURN_IF_ERROR(store_->UpdateVolume(v));
    return store_->InsertOp(op);
  });
  CAIRN_RETURN_IF_ERROR(s);
  spdlog::info("event=volume_expand_accepted volume={} add_gib={} in_place={} new_sets={}", v.id,
               add, in_place, added.size());
  return Enqueue(op);
}

Status Service::RunVolumeExpand(OpRow& op) {
  CAIRN_ASSIGN_OR_RETURN(auto v, store_->GetVolume(op.target));
  CAIRN_ASSIGN_OR_RETURN(auto bricks, store_->ListBricks(v.id));
  std::set<std::string> new_ids;
  for (const auto& b : op.payload.value("new_bricks", json::array())) {
    new_ids.insert(b.get<std::string>());
  }
  const json old_sizes = op.payload.value("old_sizes", json::object());
  auto results = RunParallelStatus(bricks.size(), [&](size_t i) -> Status {
    const BrickRow& b = bricks[i];
    CAIRN_ASSIGN_OR_RETURN(auto n, store_->GetNode(b.node_id));
    if (new_ids.count(b.id)) {
      CAIRN_ASSIGN_OR_RETURN(auto d, store_->GetDevice(b.device_id));
      sd::CreateBrickRequest q;
      q.set_device_id(d.storaged_id);
      q.set_brick_id(b.id);
      q.set_capacity_bytes(b.size_kib * 1024);
      sd::CreateBrickReply r;
      return nodes_->Call(n.manage, &sd::Storaged::Stub::CreateBrick, q, &r);
    }
    if (old_sizes.value(b.id, uint64_t{0}) == b.size_kib) return Status::Ok();
    sd::ResizeBrickRequest q;
    q.set_brick_id(b.id);
    q.set_capacity_bytes(b.size_kib * 1024);
    sd::Brick r;
    return nodes_->Call(n.manage, &sd::Storaged::Stub::ResizeBrick, q, &r);
  });
  Status s = FirstError(results);
  CrashPoint("volume.expand:after-bricks");
  if (s.ok()) s = PutSpecEverywhere(v, /*require_brick_nodes=*/true);
  if (!s.ok()) {
    Status r = RollbackVolumeExpand(op);
    if (!r.ok())
      spdlog::error("event=expand_rollback_failed volume={} error=\"{}\"", v.name, r.message());
    return s;
  }
  return store_->Tx([&] {
    v.state = "ready";
    CAIRN_RETURN_IF_ERROR(store_->UpdateVolume(v));
    op.state = "done";
    op.result = "/volumes/" + v.id;
    op.finished_ms = NowMs();
    spdlog::info("event=volume_expanded volume={} size_gib={} generation={}", v.id, v.size_gib,
                 v.generation);
    return store_->UpdateOp(op);
  });
}

Status Service::RollbackVolumeExpand(OpRow& op) {
  CAIRN_ASSIGN_OR_RETURN(auto v, store_->GetVolume(op.target));
  CAIRN_ASSIGN_OR_RETURN(auto bricks, store_->ListBricks(v.id));
  const json old_sizes = op.payload.value("old_sizes", json::object());
  for (auto b : bricks) {
    CAIRN_ASSIGN_OR_RETURN(auto n, store_->GetNode(b.node_id));
    if (!old_sizes.contains(b.id)) {
      sd::DeleteBrickRequest q;
      q.set_brick_id(b.id);
      q.set_force(true);
      sd::Empty r;
      (void)nodes_->Call(n.manage, &sd::Storaged::Stub::DeleteBrick, q, &r);
      CAIRN_RETURN_IF_ERROR(store_->DeleteBrick(b.id));
    } else if (old_sizes[b.id].get<uint64_t>() != b.size_kib) {
      b.size_kib = old_sizes[b.id].get<uint64_t>();
      sd::ResizeBrickRequest q;
      q.set_brick_id(b.id);
      q.set_capacity_bytes(b.size_kib * 1024);
      sd::Brick r;
      (void)nodes_->Call(n.manage, &sd::Storaged::Stub::ResizeBrick, q, &r);
      CAIRN_RETURN_IF_ERROR(store_->UpdateBrick(b));
    }
  }
  v.size_gib = op.payload.value("old_size_gib", v.size_gib);
  // The generation stays advanced: nodes may hold the new one already, and a
  // spec generation never goes back.
  v.state = "ready";
  v.generation += 1;
  CAIRN_RETURN_IF_ERROR(store_->UpdateVolume(v));
  return PutSpecEverywhere(v, /*require_brick_nodes=*/false);
}

StatusOr<json> Service::VolumeJson(const VolumeRow& v) {
  CAIRN_ASSIGN_OR_RETURN(auto bricks, store_->ListBricks(v.id));
  CAIRN_ASSIGN_OR_RETURN(auto nodes, store_->ListNodes(v.cluster_id));
  std::map<std::string, const NodeRow*> by_id;
  for (const auto& n : nodes) by_id[n.id] = &n;
  std::vector<const NodeRow*> order;  // the volume's nodes first, then the others online
  auto add = [&](const NodeRow* n) {
    if (n && std::find(order.begin(), order.end(), n) == order.end()) order.push_back(n);
  };
  json bj = json::array();
  for (const auto& b : bricks) {
    add(by_id[b.node_id]);
    std::string path;
    if (auto d = store_->GetDevice(b.device_id); d.ok()) path = d->name + "/bricks/" + b.id;
    bj.push_back({{"id", b.id},
                  {"path", path},
                  {"device", b.device_id},
                  {"node", b.node_id},
                  {"volume", v.id},
                  {"size", b.size_kib},
                  {"subvolume", b.subvolume},
                  {"arbiter", b.arbiter}});
  }
  for (const auto& n : nodes) {
    if (n.state == "online") add(&n);
  }
  json hosts = json::array(), servers = json::array();
  std::string backups;
  for (size_t i = 0; i < order.size(); ++i) {
    hosts.push_back(order[i]->storage);
    servers.push_back(order[i]->manage);
    if (i > 0) backups += (backups.empty() ? "" : ",") + order[i]->storage;
  }
  std::string source;
  for (const auto& s : servers) source += (source.empty() ? "" : ",") + s.get<std::string>();
  source += ":/" + v.name;
  json durability = v.replica == 1
                        ? json{{"type", "none"}}
                        : json{{"type", "replicate"}, {"replicate", {{"replica", v.replica}}}};
  json options = json::array();
  if (v.arbiter) options.push_back("user.heketi.arbiter true");
  return json{{"id", v.id},
              {"name", v.name},
              {"cluster", v.cluster_id},
              {"size", v.size_gib},
              {"state", v.state},
              {"durability", durability},
              {"arbiter", v.arbiter},
              {"zones", v.zones},
              {"snapshot", {{"enable", false}, {"factor", 1}}},
              {"gid", 0},
              {"generation", v.generation},
              {"glustervolumeoptions", options},
              {"blockinfo", json::object()},
              {"mount",
               {{"glusterfs",
                 {{"hosts", hosts},
                  {"device", (order.empty() ? std::string() : order[0]->storage) + ":/" + v.name},
                  {"options", {{"backup-volfile-servers", backups}}}}},
                {"cairn", {{"source", source}, {"servers", servers}}}}},
              {"bricks", bj}};
}

StatusOr<json> Service::ListVolumes(const std::string& name_filter) {
  json ids = json::array();
  if (!name_filter.empty()) {
    CAIRN_ASSIGN_OR_RETURN(auto v, store_->FindVolumeByName(name_filter));
    if (v) ids.push_back(v->id);
    return json{{"volumes", ids}};
  }
  CAIRN_ASSIGN_OR_RETURN(auto vs, store_->ListVolumes());
  for (const auto& v : vs) ids.push_back(v.id);
  return json{{"volumes", ids}};
}

StatusOr<json> Service::VolumeInfo(const std::string& id) {
  CAIRN_ASSIGN_OR_RETURN(auto v, store_->GetVolume(id));
  return VolumeJson(v);
}

StatusOr<json> Service::VolumeHeal(const std::string& id) {
  CAIRN_ASSIGN_OR_RETURN(auto v, store_->GetVolume(id));
  CAIRN_ASSIGN_OR_RETURN(auto bricks, store_->ListBricks(v.id));
  std::vector<std::string> node_ids;
  for (const auto& b : bricks) {
    if (std::find(node_ids.begin(), node_ids.end(), b.node_id) == node_ids.end()) {
      node_ids.push_back(b.node_id);
    }
  }
  std::vector<sd::HealInfoReply> replies(node_ids.size());
  std::vector<NodeRow> rows(node_ids.size());
  auto results = RunParallelStatus(node_ids.size(), [&](size_t i) -> Status {
    CAIRN_ASSIGN_OR_RETURN(rows[i], store_->GetNode(node_ids[i]));
    sd::HealInfoRequest q;
    q.set_volume(v.name);
    return nodes_->Call(rows[i].manage, &sd::Storaged::Stub::HealInfo, q, &replies[i]);
  });
  // Each node reports the bricks its healer watches; a brick's pending count
  // is the highest any node saw.
  std::map<std::string, json> per_brick;
  json split = json::array();
  std::set<std::string> split_seen;
  json nodes = json::array();
  uint64_t healed_objects = 0, healed_bytes = 0;
  for (size_t i = 0; i < node_ids.size(); ++i) {
    json nj = {{"node", rows[i].name}, {"reachable", results[i].ok()}};
    if (!results[i].ok()) {
      nj["error"] = results[i].message();
      nodes.push_back(nj);
      continue;
    }
    const auto& r = replies[i];
    nj["active"] = r.active();
    nj["healed_objects"] = r.healed_objects();
    nj["healed_bytes"] = r.healed_bytes();
    healed_objects += r.healed_objects();
    healed_bytes += r.healed_bytes();
    nodes.push_back(nj);
    for (const auto& b : r.bricks()) {
      json& e = per_brick[b.brick_id()];
      if (e.is_null()) e = {{"brick", b.brick_id()}, {"address", b.node()}, {"pending", 0}};
      e["pending"] = std::max(e["pending"].get<uint64_t>(), b.pending());
      e["connected"] = b.connected();
    }
    for (const auto& sb : r.split_brain()) {
      if (!split_seen.insert(sb.id()).second) continue;
      split.push_back({{"id", sb.id()},
                       {"kind", sb.kind()},
                       {"bricks", std::vector<std::string>(sb.bricks().begin(), sb.bricks().end())},
                       {"detail", sb.detail()}});
    }
  }
  json bj = json::array();
  uint64_t pending = 0;
  for (const auto& b : bricks) {
    auto it = per_brick.find(b.id);
    json e = it != per_brick.end()
                 ? it->second
                 : json{{"brick", b.id}, {"pending", nullptr}, {"connected", false}};
    e["node"] = b.node_id;
    if (e["pending"].is_number()) pending += e["pending"].get<uint64_t>();
    bj.push_back(e);
  }
  return json{{"volume", v.name},
              {"id", v.id},
              {"pending", pending},
              {"split_brain", split},
              {"bricks", bj},
              {"nodes", nodes},
              {"healed_objects", healed_objects},
              {"healed_bytes", healed_bytes}};
}

StatusOr<json> Service::Topology() {
  CAIRN_ASSIGN_OR_RETURN(auto cs, store_->ListClusters());
  json clusters = json::array();
  for (const auto& c : cs) {
    CAIRN_ASSIGN_OR_RETURN(json cj, ClusterJson(c));
    CAIRN_ASSIGN_OR_RETURN(auto nodes, store_->ListNodes(c.id));
    CAIRN_ASSIGN_OR_RETURN(auto volumes, store_->ListVolumes(c.id));
    cj["nodes"] = json::array();
    for (const auto& n : nodes) {
      CAIRN_ASSIGN_OR_RETURN(json nj, NodeJson(n));
      cj["nodes"].push_back(std::move(nj));
    }
    cj["volumes"] = json::array();
    for (const auto& v : volumes) {
      CAIRN_ASSIGN_OR_RETURN(json vj, VolumeJson(v));
      cj["volumes"].push_back(std::move(vj));
    }
    clusters.push_back(std::move(cj));
  }
  return json{{"clusters", clusters}};
}

std::string Service::Metrics() {
  std::string out;
  auto volumes = store_->ListVolumes();
  auto nodes = store_->ListNodes();
  auto devices = store_->ListDevices();
  out += "# HELP cairn_provisioner_volumes Volumes by state.\n";
  out += "# TYPE cairn_provisioner_volumes gauge\n";
  std::map<std::string, int> by_state;
  if (volumes.ok()) {
    for (const auto& v : *volumes) by_state[v.state]++;
  }
  for (const char* s : {"creating", "ready", "expanding", "deleting"}) {
    out += "cairn_provisioner_volumes{state=\"" + std::string(s) + "\"} " +
           std::to_string(by_state[s]) + "\n";
  }
  out += "# HELP cairn_provisioner_nodes Registered nodes.\n# TYPE cairn_provisioner_nodes gauge\n";
  out += "cairn_provisioner_nodes " + std::to_string(nodes.ok() ? nodes->size() : 0) + "\n";
  uint64_t total = 0, used = 0;
  if (devices.ok()) {
    for (const auto& d : *devices) {
      total += d.total_kib;
      auto a = store_->DeviceAllocatedKib(d.id);
      used += a.ok() ? *a : 0;
    }
  }
  out +=
      "# HELP cairn_provisioner_capacity_bytes Device capacity, total and allocated to bricks.\n";
  out += "# TYPE cairn_provisioner_capacity_bytes gauge\n";
  out += "cairn_provisioner_capacity_bytes{kind=\"total\"} " + std::to_string(total * 1024) + "\n";
  out +=
      "cairn_provisioner_capacity_bytes{kind=\"allocated\"} " + std::to_string(used * 1024) + "\n";
  std::lock_guard l(metrics_mu_);
  out += "# HELP cairn_provisioner_operations_total Finished operations by kind and result.\n";
  out += "# TYPE cairn_provisioner_operations_total counter\n";
  for (const auto& [k, n] : op_counts_) {
    auto comma = k.find(',');
    out += "cairn_provisioner_operations_total{kind=\"" + k.substr(0, comma) + "\",result=\"" +
           k.substr(comma + 1) + "\"} " + std::to_string(n) + "\n";
  }
  out += "# HELP cairn_provisioner_volume_create_seconds Request to ready, recent creates.\n";
  out += "# TYPE cairn_provisioner_volume_create_seconds summary\n";
  std::vector<double> v = create_seconds_;
  std::sort(v.begin(), v.end());
  for (double q : {0.5, 0.9, 0.99}) {
    double x = v.empty() ? 0 : v[std::min(v.size() - 1, static_cast<size_t>(q * v.size()))];
    out += "cairn_provisioner_volume_create_seconds{quantile=\"" + std::to_string(q).substr(0, 4) +
           "\"} " + std::to_string(x) + "\n";
  }
  double sum = 0;
  for (double x : v) sum += x;
  out += "cairn_provisioner_volume_create_seconds_sum " + std::to_string(sum) + "\n";
  out += "cairn_provisioner_volume_create_seconds_count " + std::to_string(v.size()) + "\n";
  out += "# TYPE cairn_provisioner_orphans_removed_total counter\n";
  out += "cairn_provisioner_orphans_removed_total " + std::to_string(orphans_removed_) + "\n";
  out += "# TYPE cairn_provisioner_reconciles_total counter\n";
  out += "cairn_provisioner_reconciles_total " + std::to_string(reconciles_) + "\n";
  return out;
}

}  // namespace cairn::provisioner
