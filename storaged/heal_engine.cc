#include "storaged/heal_engine.h"

#include <spdlog/spdlog.h>

#include <set>

namespace cairn::storaged {

namespace spb = ::cairn::storaged::v1;

HealEngine::HealEngine(heal::Options options) : options_(std::move(options)) {}

HealEngine::~HealEngine() { Stop(); }

void HealEngine::UpdateLocked(const std::string& name, const client::VolumeSpec* spec,
                              const std::string& brickd_address, bool live,
                              std::vector<Entry>* gone) {
  auto it = healers_.find(name);
  if (spec == nullptr || spec->replica < 2) {  // nothing to heal on a distribute volume
    if (it == healers_.end()) return;
    spdlog::info("event=heal_stopped volume={}", name);
    gone->push_back(std::move(it->second));
    healers_.erase(it);
    return;
  }
  std::string json = spec->ToJson();
  if (it != healers_.end() && it->second.spec_json == json &&
      it->second.local_node == brickd_address) {
    return;
  }
  if (it != healers_.end()) {
    gone->push_back(std::move(it->second));
    healers_.erase(it);
  }
  heal::Options o = options_;
  o.local_node = brickd_address;
  // A volume's first spec seen live (it was just created): its bricks are
  // new and empty, so the healer trusts the node summaries from the start
  // rather than polling every brick once. At start-up, or for a new
  // generation, the first poll is a full pass.
  o.start_quiet = live && it == healers_.end() && spec->generation == 1;
  auto healer = heal::VolumeHealer::Start(*spec, o);
  if (!healer.ok()) {
    spdlog::error("event=heal_start_failed volume={} error=\"{}\"", name,
                  healer.status().ToString());
    return;
  }
  spdlog::info("event=heal_started volume={} generation={} local_node={}", name, spec->generation,
               brickd_address);
  healers_[name] = Entry{spec->generation, std::move(json), brickd_address, std::move(*healer)};
}

void HealEngine::OnSpecsChanged(const std::vector<client::VolumeSpec>& local_specs,
                                const std::string& brickd_address) {
  std::vector<Entry> gone;
  {
    std::lock_guard l(mu_);
    if (stopped_) return;
    std::set<std::string> present;
    for (const auto& spec : local_specs) {
      present.insert(spec.name);
      UpdateLocked(spec.name, &spec, brickd_address, /*live=*/false, &gone);
    }
    std::vector<std::string> absent;
    for (const auto& [name, e] : healers_) {
      if (present.count(name) == 0) absent.push_back(name);
    }
    for (const auto& name : absent)
      UpdateLocked(name, nullptr, brickd_address, /*live=*/false, &gone);
  }
  gone.clear();  // healers stop (join their threads) outside the lock
}

void HealEngine::OnSpecChanged(const std::string& name, const client::VolumeSpec* local_spec,
                               const std::string& brickd_address) {
  std::vector<Entry> gone;
  {
    std::lock_guard l(mu_);
    if (stopped_) return;
    UpdateLocked(name, local_spec, brickd_address, /*live=*/true, &gone);
  }
  gone.clear();  // outside the lock
}

StatusOr<std::shared_ptr<heal::VolumeHealer>> HealEngine::Find(const std::string& volume) {
  std::lock_guard l(mu_);
  auto it = healers_.find(volume);
  if (it == healers_.end()) {
    return Status(StatusCode::kNotFound,
                  "volume '" + volume + "' is not a replicated volume with a brick on this node",
                  ENOENT);
  }
  return it->second.healer;
}

StatusOr<spb::HealInfoReply> HealEngine::Info(const std::string& volume) {
  CAIRN_ASSIGN_OR_RETURN(auto healer, Find(volume));
  heal::Info info = healer->GetInfo();
  spb::HealInfoReply reply;
  reply.set_volume(volume);
  for (const auto& b : info.bricks) {
    auto* out = reply.add_bricks();
    out->set_brick_id(b.brick_id);
    out->set_node(b.node);
    out->set_connected(b.connected);
    out->set_pending(b.pending);
    for (const auto& id : b.sample_ids) out->add_sample_ids(id);
  }
  for (const auto& sb : info.split_brain) {
    auto* out = reply.add_split_brain();
    out->set_id(sb.id.ToString());
    out->set_kind(sb.kind);
    for (const auto& b : sb.bricks) out->add_bricks(b);
    out->set_detail(sb.detail);
  }
  reply.set_healed_objects(info.stats.healed_objects);
  reply.set_healed_bytes(info.stats.healed_bytes);
  reply.set_checksummed_bytes(info.stats.checksummed_bytes);
  reply.set_errors(info.stats.errors);
  reply.set_active(info.stats.active);
  reply.set_full_crawls(info.stats.full_crawls);
  reply.set_passes(info.stats.passes);
  reply.set_summary_skips(info.stats.summary_skips);
  reply.set_peer_copied_bytes(info.stats.peer_copied_bytes);
  return reply;
}

Status HealEngine::Start(const std::string& volume, bool full) {
  CAIRN_ASSIGN_OR_RETURN(auto healer, Find(volume));
  if (full) healer->TriggerFullCrawl();
  healer->Kick();
  return Status::Ok();
}

Status HealEngine::Resolve(const spb::ResolveSplitBrainRequest& request) {
  CAIRN_ASSIGN_OR_RETURN(auto healer, Find(request.volume()));
  auto id = Uuid::Parse(request.id());
  if (!id.ok()) {
    return Status(StatusCode::kInvalidArgument, "bad object id '" + request.id() + "'", EINVAL);
  }
  heal::Policy policy;
  switch (request.policy()) {
    case spb::ResolveSplitBrainRequest::SOURCE_BRICK:
      if (request.source_brick().empty()) {
        return Status(StatusCode::kInvalidArgument, "policy SOURCE_BRICK needs source_brick",
                      EINVAL);
      }
      policy = heal::Policy::kSourceBrick;
      break;
    case spb::ResolveSplitBrainRequest::LATEST_MTIME:
      policy = heal::Policy::kLatestMtime;
      break;
    case spb::ResolveSplitBrainRequest::BIGGER_FILE:
      policy = heal::Policy::kBiggerFile;
      break;
    default:
      return Status(StatusCode::kInvalidArgument,
                    "policy must be SOURCE_BRICK, LATEST_MTIME or BIGGER_FILE", EINVAL);
  }
  return healer->Resolve(*id, policy, request.source_brick());
}

void HealEngine::Stop() {
  std::map<std::string, Entry> gone;
  {
    std::lock_guard l(mu_);
    stopped_ = true;
    gone.swap(healers_);
  }
  gone.clear();
}

}  // namespace cairn::storaged
