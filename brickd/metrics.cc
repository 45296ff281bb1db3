// Brick statistics and Prometheus rendering.
#include "brickd/metrics.h"

#include <vector>

namespace cairn::brickd {

std::string_view OpName(Op op) {
  static constexpr std::array<std::string_view, static_cast<size_t>(Op::kCount)> kNames = {
      "lookup",    "getattr",    "setattr",   "create",      "mknod",      "mkdir",
      "symlink",   "link",       "readlink",  "read",        "write",      "fsync",
      "fallocate", "truncate",   "unlink",    "rmdir",       "rename",     "readdir",
      "getxattr",  "setxattr",   "listxattr", "removexattr", "statfs",     "forget",
      "listdirty", "cleardirty", "checksum",  "locate",      "setversion", "copyfrom"};
  auto i = static_cast<size_t>(op);
  return i < kNames.size() ? kNames[i] : "unknown";
}

void BrickStats::Record(Op op, std::chrono::nanoseconds elapsed, bool ok) {
  OpStats& s = ops_[static_cast<size_t>(op)];
  s.count.fetch_add(1, std::memory_order_relaxed);
  if (!ok) s.errors.fetch_add(1, std::memory_order_relaxed);
  auto ns = static_cast<uint64_t>(elapsed.count() < 0 ? 0 : elapsed.count());
  s.sum_ns.fetch_add(ns, std::memory_order_relaxed);
  uint64_t us = ns / 1000;
  size_t b = 0;
  while (b < kLatencyBucketsUs.size() && us > kLatencyBucketsUs[b]) ++b;
  s.buckets[b].fetch_add(1, std::memory_order_relaxed);
}

BrickStats::OpSnapshot BrickStats::Snapshot(Op op) const {
  const OpStats& s = ops_[static_cast<size_t>(op)];
  OpSnapshot out;
  out.count = s.count.load(std::memory_order_relaxed);
  out.errors = s.errors.load(std::memory_order_relaxed);
  out.sum_ns = s.sum_ns.load(std::memory_order_relaxed);
  for (size_t i = 0; i < out.buckets.size(); ++i) {
    out.buckets[i] = s.buckets[i].load(std::memory_order_relaxed);
  }
  return out;
}

std::string RenderPrometheus(const std::vector<BrickMetricsView>& bricks) {
  std::string out;
  out.reserve(256 + bricks.size() * 256);
  auto line = [&out](std::string_view name, std::string_view labels, auto value) {
    out += name;
    if (!labels.empty()) {
      out += '{';
      out += labels;
      out += '}';
    }
    out += ' ';
    out += std::to_string(value);
    out += '\n';
  };
  out += "# HELP cairn_brickd_bricks Bricks attached to this brickd.\n";
  out += "# TYPE cairn_brickd_bricks gauge\n";
  line("cairn_brickd_bricks", "", bricks.size());

  out += "# HELP cairn_brick_capacity_bytes Capacity limit of the brick (0: none).\n";
  out += "# TYPE cairn_brick_capacity_bytes gauge\n";
  for (const auto& b : bricks)
    line("cairn_brick_capacity_bytes", "brick=\"" + b.brick_id + "\"", b.capacity_bytes);
  out += "# HELP cairn_brick_used_bytes Bytes allocated to files on the brick.\n";
  out += "# TYPE cairn_brick_used_bytes gauge\n";
  for (const auto& b : bricks)
    line("cairn_brick_used_bytes", "brick=\"" + b.brick_id + "\"", b.used_bytes);
  out += "# HELP cairn_brick_read_bytes_total Payload bytes read.\n";
  out += "# TYPE cairn_brick_read_bytes_total counter\n";
  for (const auto& b : bricks) {
    line("cairn_brick_read_bytes_total", "brick=\"" + b.brick_id + "\"", b.stats->bytes_read());
  }
  out += "# HELP cairn_brick_written_bytes_total Payload bytes written.\n";
  out += "# TYPE cairn_brick_written_bytes_total counter\n";
  for (const auto& b : bricks) {
    line("cairn_brick_written_bytes_total", "brick=\"" + b.brick_id + "\"",
         b.stats->bytes_written());
  }

  std::string ops, errors, hist;
  for (const auto& b : bricks) {
    for (size_t i = 0; i < static_cast<size_t>(Op::kCount); ++i) {
      auto snap = b.stats->Snapshot(static_cast<Op>(i));
      if (snap.count == 0) continue;
      std::string labels =
          "brick=\"" + b.brick_id + "\",op=\"" + std::string(OpName(static_cast<Op>(i))) + "\"";
      ops += "cairn_brick_ops_total{" + labels + "} " + std::to_string(snap.count) + "\n";
      errors += "cairn_brick_op_errors_total{" + labels + "} " + std::to_string(snap.errors) + "\n";
      uint64_t cumulative = 0;
      for (size_t k = 0; k < snap.buckets.size(); ++k) {
        cumulative += snap.buckets[k];
        std::string le = k < kLatencyBucketsUs.size()
                             ? std::to_string(kLatencyBucketsUs[k] / 1e6).substr(0, 8)
                             : std::string("+Inf");
        hist += "cairn_brick_op_duration_seconds_bucket{" + labels + ",le=\"" + le + "\"} " +
                std::to_string(cumulative) + "\n";
      }
      char sum[64];
      std::snprintf(sum, sizeof(sum), "%.9f", static_cast<double>(snap.sum_ns) / 1e9);
      hist += "cairn_brick_op_duration_seconds_sum{" + labels + "} " + sum + "\n";
      hist += "cairn_brick_op_duration_seconds_count{" + labels + "} " +
              std::to_string(snap.count) + "\n";
    }
  }
  out += "# HELP cairn_brick_ops_total Operations served, by brick and operation.\n";
  out += "# TYPE cairn_brick_ops_total counter\n" + ops;
  out += "# HELP cairn_brick_op_errors_total Operations that failed.\n";
  out += "# TYPE cairn_brick_op_errors_total counter\n" + errors;
  out += "# HELP cairn_brick_op_duration_seconds Operation latency inside brickd.\n";
  out += "# TYPE cairn_brick_op_duration_seconds histogram\n" + hist;
  return out;
}

}  // namespace cairn::brickd
