// Per-brick operation counters and latency histograms, rendered as Prometheus text.
//
//   auto start = Clock::now();
//   Status s = brick.Write(req);
//   brick.stats().Record(Op::kWrite, Clock::now() - start, s.ok());
//   std::string text = RenderPrometheus(bricks);   // for GET /metrics
//
// Memory is fixed per brick (no allocation per operation) so that thousands of
// idle bricks stay cheap; all updates are relaxed atomics.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace cairn::brickd {

// Every Brick RPC, in proto order.
enum class Op : uint8_t {
  kLookup,
  kGetAttr,
  kSetAttr,
  kCreate,
  kMknod,
  kMkdir,
  kSymlink,
  kLink,
  kReadlink,
  kRead,
  kWrite,
  kFsync,
  kFallocate,
  kTruncate,
  kUnlink,
  kRmdir,
  kRename,
  kReadDir,
  kGetXattr,
  kSetXattr,
  kListXattr,
  kRemoveXattr,
  kStatFs,
  kForget,
  kListDirty,
  kClearDirty,
  kChecksum,
  kLocate,
  kSetVersion,
  kCopyFrom,
  kCount
};

// Returns the lower-case name of `op`, e.g. "write".
std::string_view OpName(Op op);

// Upper bounds of the latency buckets, in microseconds (+Inf implied).
inline constexpr std::array<uint32_t, 13> kLatencyBucketsUs = {
    50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 1000000};

class BrickStats {
 public:
  // Records one finished operation.
  void Record(Op op, std::chrono::nanoseconds elapsed, bool ok);
  // Adds read/written payload bytes.
  void AddBytes(bool write, uint64_t n) {
    (write ? bytes_written_ : bytes_read_).fetch_add(n, std::memory_order_relaxed);
  }

  struct OpSnapshot {
    uint64_t count = 0;
    uint64_t errors = 0;
    uint64_t sum_ns = 0;
    std::array<uint64_t, kLatencyBucketsUs.size() + 1> buckets{};  // not cumulative
  };
  OpSnapshot Snapshot(Op op) const;
  uint64_t bytes_read() const { return bytes_read_.load(std::memory_order_relaxed); }
  uint64_t bytes_written() const { return bytes_written_.load(std::memory_order_relaxed); }

 private:
  struct OpStats {
    std::atomic<uint64_t> count{0};
    std::atomic<uint64_t> errors{0};
    std::atomic<uint64_t> sum_ns{0};
    std::array<std::atomic<uint64_t>, kLatencyBucketsUs.size() + 1> buckets{};
  };
  std::array<OpStats, static_cast<size_t>(Op::kCount)> ops_;
  std::atomic<uint64_t> bytes_read_{0};
  std::atomic<uint64_t> bytes_written_{0};
};

// One brick's labels and figures for rendering.
struct BrickMetricsView {
  std::string brick_id;
  uint64_t capacity_bytes;
  int64_t used_bytes;
  const BrickStats* stats;
};

// Renders the Prometheus text exposition format (version 0.0.4) for `bricks`.
// Operations a brick has never served are left out, to keep output small.
std::string RenderPrometheus(const std::vector<BrickMetricsView>& bricks);

}  // namespace cairn::brickd
