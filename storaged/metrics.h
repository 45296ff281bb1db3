// storaged's /metrics page (Prometheus text exposition format 0.0.4).
//
//   MetricsView v{.brickd_up = sup.up(), ...};
//   res.set_content(RenderPrometheus(v), "text/plain; version=0.0.4");
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>

#include "common/status.h"
#include "storaged/manager.h"

namespace cairn::storaged {

struct MetricsView {
  bool brickd_up = false;
  uint64_t brickd_restarts = 0;
  Manager::Figures figures;
  size_t watchers = 0;
  std::map<std::pair<std::string, StatusCode>, uint64_t> rpcs;
  // 1 once registered with the provisioner (--provisioner); 0 before and without one.
  bool registered = false;
};

std::string RenderPrometheus(const MetricsView& view);

}  // namespace cairn::storaged
