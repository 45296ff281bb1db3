// HealEngine: storaged's self-heal — one heal::VolumeHealer (heal/heal.h,
// docs/heal.md) per replicated volume that has a brick on this node, kept in
// step with the stored specs, and the heal RPCs answered from them.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "heal/heal.h"
#include "storaged/heal_hook.h"

namespace cairn::storaged {

class HealEngine : public HealHook {
 public:
  // `options.token` (the data token) is used for every brick; local_node is
  // filled in from OnSpecsChanged.
  explicit HealEngine(heal::Options options);
  ~HealEngine() override;

  void OnSpecsChanged(const std::vector<client::VolumeSpec>& local_specs,
                      const std::string& brickd_address) override;
  void OnSpecChanged(const std::string& name, const client::VolumeSpec* local_spec,
                     const std::string& brickd_address) override;
  StatusOr<cairn::storaged::v1::HealInfoReply> Info(const std::string& volume) override;
  Status Start(const std::string& volume, bool full) override;
  Status Resolve(const cairn::storaged::v1::ResolveSplitBrainRequest& request) override;
  void Stop() override;

 private:
  struct Entry {
    uint64_t generation = 0;
    std::string spec_json;
    std::string local_node;
    std::shared_ptr<heal::VolumeHealer> healer;
  };
  StatusOr<std::shared_ptr<heal::VolumeHealer>> Find(const std::string& volume);
  // Starts, restarts (spec or address changed) or keeps the healer of
  // `spec` (a local one), or stops it (`spec` null or not replicated).
  // Replaced healers go to `gone`, to be destroyed (joined) outside mu_.
  // `live`: a single spec changed (a put), not the whole set (start-up).
  void UpdateLocked(const std::string& name, const client::VolumeSpec* spec,
                    const std::string& brickd_address, bool live, std::vector<Entry>* gone);

  heal::Options options_;
  std::mutex mu_;
  bool stopped_ = false;
  std::map<std::string, Entry> healers_;  // by volume name
};

}  // namespace cairn::storaged
