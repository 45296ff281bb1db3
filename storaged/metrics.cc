// Prometheus rendering of storaged's figures.
#include "storaged/metrics.h"

namespace cairn::storaged {
namespace {

void Family(std::string* out, const char* name, const char* type, const char* help) {
  *out += std::string("# HELP ") + name + " " + help + "\n";
  *out += std::string("# TYPE ") + name + " " + type + "\n";
}

template <class T>
void Line(std::string* out, const std::string& name, const std::string& labels, T value) {
  *out += name;
  if (!labels.empty()) *out += "{" + labels + "}";
  *out += " " + std::to_string(value) + "\n";
}

}  // namespace

std::string RenderPrometheus(const MetricsView& v) {
  std::string out;
  Family(&out, "cairn_storaged_brickd_up", "gauge",
         "1 while the node's brickd runs with its bricks attached.");
  Line(&out, "cairn_storaged_brickd_up", "", v.brickd_up ? 1 : 0);
  Family(&out, "cairn_storaged_brickd_restarts_total", "counter",
         "Restarts of brickd by this storaged.");
  Line(&out, "cairn_storaged_brickd_restarts_total", "", v.brickd_restarts);
  Family(&out, "cairn_storaged_devices", "gauge", "Devices of this node.");
  Line(&out, "cairn_storaged_devices", "", v.figures.devices);
  Family(&out, "cairn_storaged_bricks", "gauge", "Bricks of this node.");
  Line(&out, "cairn_storaged_bricks", "", v.figures.bricks);
  Family(&out, "cairn_storaged_device_capacity_bytes", "gauge",
         "Bytes a device may give to bricks.");
  for (const auto& d : v.figures.per_device) {
    Line(&out, "cairn_storaged_device_capacity_bytes", "device=\"" + d.id + "\"", d.capacity);
  }
  Family(&out, "cairn_storaged_device_allocated_bytes", "gauge",
         "Sum of the capacities of a device's bricks.");
  for (const auto& d : v.figures.per_device) {
    Line(&out, "cairn_storaged_device_allocated_bytes", "device=\"" + d.id + "\"", d.allocated);
  }
  Family(&out, "cairn_storaged_volume_specs", "gauge", "Volume specs stored on this node.");
  Line(&out, "cairn_storaged_volume_specs", "", v.figures.specs);
  Family(&out, "cairn_storaged_spec_watchers", "gauge", "Open WatchVolumeSpec streams.");
  Line(&out, "cairn_storaged_spec_watchers", "", v.watchers);
  Family(&out, "cairn_storaged_rpcs_total", "counter", "API calls by method and status code.");
  for (const auto& [key, n] : v.rpcs) {
    Line(&out, "cairn_storaged_rpcs_total",
         "method=\"" + key.first + "\",code=\"" + std::string(StatusCodeName(key.second)) + "\"",
         n);
  }
  Family(&out, "cairn_storaged_registered", "gauge",
         "1 once this node registered with the provisioner (--provisioner), else 0.");
  Line(&out, "cairn_storaged_registered", "", v.registered ? 1 : 0);
  return out;
}

}  // namespace cairn::storaged
