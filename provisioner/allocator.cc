#include "provisioner/allocator.h"

#include <algorithm>
#include <cstdio>
#include <optional>
#include <set>
#include <utility>

namespace cairn::provisioner {
namespace {

constexpr uint64_t kMiB = 1024;         // in KiB
constexpr uint64_t kGiB = 1024 * kMiB;  // in KiB
constexpr int kMaxReplica = 16;
// Sizes above this (4 EiB) are refused so that rounding and sums of a few
// bricks cannot overflow.
constexpr uint64_t kMaxSizeKib = uint64_t{1} << 52;

// `v` rounded up to a multiple of `align` (> 0); v <= kMaxSizeKib.
uint64_t RoundUp(uint64_t v, uint64_t align) { return (v + align - 1) / align * align; }

// "100 GiB", "1.5 GiB", "512 MiB", "3 KiB": the unit an operator would use.
std::string FormatKib(uint64_t kib) {
  auto fmt = [](uint64_t v, uint64_t unit, const char* name) {
    char buf[64];
    if (v % unit == 0) {
      std::snprintf(buf, sizeof buf, "%llu %s", static_cast<unsigned long long>(v / unit), name);
    } else {
      std::snprintf(buf, sizeof buf, "%.1f %s", static_cast<double>(v) / unit, name);
    }
    return std::string(buf);
  };
  if (kib >= kGiB) return fmt(kib, kGiB, "GiB");
  if (kib >= kMiB) return fmt(kib, kMiB, "MiB");
  return fmt(kib, 1, "KiB");
}

// The arbiter brick for data bricks of `brick_kib` (a multiple of `align`):
// ArbiterBrickKib, kept a multiple of the alignment like every brick.
uint64_t AlignedArbiterKib(uint64_t brick_kib, uint64_t align) {
  return std::min(brick_kib, RoundUp(ArbiterBrickKib(brick_kib), align));
}

// "1 node", "3 nodes".
std::string Nodes(size_t n) { return std::to_string(n) + (n == 1 ? " node" : " nodes"); }

// One online device of an online node, with what is left of it during an
// attempt.
struct Candidate {
  size_t node = 0;    // index into Placer::nodes_
  size_t device = 0;  // index into that node's devices
  uint64_t free_kib = 0;
};

// Greedy placement over a snapshot; one Placer per Allocate call.
class Placer {
 public:
  explicit Placer(const std::vector<NodeFree>& nodes) : nodes_(nodes) {
    for (size_t n = 0; n < nodes.size(); ++n) {
      if (!nodes[n].online) continue;
      for (size_t d = 0; d < nodes[n].devices.size(); ++d) {
        const DeviceFree& dev = nodes[n].devices[d];
        if (dev.online && dev.free_kib > 0) initial_.push_back({n, d, dev.free_kib});
      }
    }
    // Id order once, so that the scan below meets ties in id order.
    std::sort(initial_.begin(), initial_.end(), [&](const Candidate& a, const Candidate& b) {
      const NodeFree& na = nodes_[a.node];
      const NodeFree& nb = nodes_[b.node];
      if (na.id != nb.id) return na.id < nb.id;
      if (a.node != b.node) return a.node < b.node;
      const std::string& da = na.devices[a.device].id;
      const std::string& db = nb.devices[b.device].id;
      if (da != db) return da < db;
      return a.device < b.device;
    });
  }

  // Online nodes with at least one online device that has free space.
  size_t NodesWithFreeSpace() const {
    std::set<size_t> with_space;
    for (const Candidate& c : initial_) with_space.insert(c.node);
    return with_space.size();
  }

  // A cheap necessary condition for `sets` sets of `data_bricks` bricks of
  // `brick_kib`: a node holds at most one brick per set.
  bool MayFit(int sets, int data_bricks, uint64_t brick_kib) const {
    std::vector<uint64_t> per_node(nodes_.size(), 0);
    for (const Candidate& c : initial_) per_node[c.node] += c.free_kib / brick_kib;
    uint64_t slots = 0;
    for (uint64_t n : per_node) slots += std::min<uint64_t>(n, static_cast<uint64_t>(sets));
    return slots >= static_cast<uint64_t>(sets) * static_cast<uint64_t>(data_bricks);
  }

  // Places `sets` sets of `data_bricks` bricks of `brick_kib` plus, when
  // `arbiter_kib` > 0, one arbiter brick each. Nullopt if the greedy walk
  // runs out of room.
  std::optional<std::vector<ReplicaSet>> TryPlace(int sets, int data_bricks, uint64_t brick_kib,
                                                  uint64_t arbiter_kib) const {
    std::vector<Candidate> cands = initial_;
    std::vector<int> node_bricks(nodes_.size(), 0);
    std::vector<ReplicaSet> result;
    result.reserve(static_cast<size_t>(sets));
    for (int s = 0; s < sets; ++s) {
      ReplicaSet set;
      std::vector<bool> node_used(nodes_.size(), false);
      std::set<int> zones_used;
      const int bricks = data_bricks + (arbiter_kib > 0 ? 1 : 0);
      for (int b = 0; b < bricks; ++b) {
        const bool arbiter = b >= data_bricks;
        const uint64_t size = arbiter ? arbiter_kib : brick_kib;
        const std::optional<size_t> pick = Pick(cands, node_bricks, node_used, zones_used, size);
        if (!pick) return std::nullopt;
        Candidate& c = cands[*pick];
        c.free_kib -= size;
        ++node_bricks[c.node];
        node_used[c.node] = true;
        zones_used.insert(ZoneOf(c.node));
        set.push_back({nodes_[c.node].id, nodes_[c.node].devices[c.device].id, size, arbiter});
      }
      result.push_back(std::move(set));
    }
    return result;
  }

  // For messages: the largest free device of each online node, most free
  // first, e.g. "node a 40 GiB, node b 8 GiB".
  std::string MostFree(size_t max_listed) const {
    std::vector<std::pair<uint64_t, size_t>> best;  // (free, node)
    for (const Candidate& c : initial_) {
      auto it = std::find_if(best.begin(), best.end(), [&](auto& p) { return p.second == c.node; });
      if (it == best.end()) {
        best.push_back({c.free_kib, c.node});
      } else {
        it->first = std::max(it->first, c.free_kib);
      }
    }
    std::stable_sort(best.begin(), best.end(),
                     [](const auto& a, const auto& b) { return a.first > b.first; });
    std::string out;
    for (size_t i = 0; i < best.size() && i < max_listed; ++i) {
      if (i > 0) out += ", ";
      out += "node " + nodes_[best[i].second].id + " " + FormatKib(best[i].first);
    }
    if (best.size() > max_listed) out += ", ...";
    if (best.empty()) out = "none";
    return out;
  }

 private:
  int ZoneOf(size_t node) const { return std::max(nodes_[node].zone, 1); }

  // The candidate for the next brick of a set: a node not yet in the set; a
  // zone not yet in the set if any such candidate has room; then the most
  // free space, fewer bricks on the node in this request, id order.
  std::optional<size_t> Pick(const std::vector<Candidate>& cands,
                             const std::vector<int>& node_bricks,
                             const std::vector<bool>& node_used, const std::set<int>& zones_used,
                             uint64_t size) const {
    std::optional<size_t> best;
    bool best_new_zone = false;
    for (size_t i = 0; i < cands.size(); ++i) {
      const Candidate& c = cands[i];
      if (node_used[c.node] || c.free_kib < size) continue;
      const bool new_zone = !zones_used.contains(ZoneOf(c.node));
      if (best) {
        const Candidate& b = cands[*best];
        // `cands` is in id order, so keeping the earlier one settles full ties.
        if (new_zone != best_new_zone) {
          if (!new_zone) continue;
        } else if (c.free_kib != b.free_kib) {
          if (c.free_kib < b.free_kib) continue;
        } else if (node_bricks[c.node] >= node_bricks[b.node]) {
          continue;
        }
      }
      best = i;
      best_new_zone = new_zone;
    }
    return best;
  }

  const std::vector<NodeFree>& nodes_;
  std::vector<Candidate> initial_;  // in node id, device id order
};

}  // namespace

uint64_t ArbiterBrickKib(uint64_t data_brick_kib) {
  const uint64_t sixty_fourth = data_brick_kib / 64 + (data_brick_kib % 64 != 0 ? 1 : 0);
  const uint64_t mib_rounded = sixty_fourth / kMiB * kMiB + (sixty_fourth % kMiB != 0 ? kMiB : 0);
  return std::min(data_brick_kib, std::max<uint64_t>(mib_rounded, 16 * kMiB));
}

StatusOr<std::vector<ReplicaSet>> Allocate(const std::vector<NodeFree>& nodes,
                                           const AllocRequest& request) {
  if (request.size_kib == 0) return Status::InvalidArgument("volume size must be > 0");
  if (request.size_kib > kMaxSizeKib) {
    return Status::InvalidArgument("volume size " + FormatKib(request.size_kib) +
                                   " is larger than the maximum " + FormatKib(kMaxSizeKib));
  }
  if (request.replica < 1 || request.replica > kMaxReplica) {
    return Status::InvalidArgument("replica must be 1.." + std::to_string(kMaxReplica) + ", got " +
                                   std::to_string(request.replica));
  }
  if (request.arbiter && request.replica != 3) {
    return Status::InvalidArgument("arbiter needs replica 3, got replica " +
                                   std::to_string(request.replica));
  }
  if (request.max_sets < 1) {
    return Status::InvalidArgument("max_sets must be >= 1, got " +
                                   std::to_string(request.max_sets));
  }
  if (request.brick_align_kib == 0 || request.brick_align_kib > kMaxSizeKib) {
    return Status::InvalidArgument("brick_align_kib must be 1.." + std::to_string(kMaxSizeKib) +
                                   ", got " + std::to_string(request.brick_align_kib));
  }
  const uint64_t align = request.brick_align_kib;
  const uint64_t min_brick_kib = RoundUp(std::min(request.min_brick_kib, kMaxSizeKib), align);

  Placer placer(nodes);
  const size_t replica = static_cast<size_t>(request.replica);
  const size_t online =
      std::count_if(nodes.begin(), nodes.end(), [](const NodeFree& n) { return n.online; });
  const size_t with_space = placer.NodesWithFreeSpace();
  if (online < replica) {
    return Status::ResourceExhausted("needs " + Nodes(replica) + " with free space, " +
                                     std::to_string(online) + (online == 1 ? " is" : " are") +
                                     " online");
  }
  if (with_space < replica) {
    return Status::ResourceExhausted("needs " + Nodes(replica) + " with free space, only " +
                                     std::to_string(with_space) + " of " + std::to_string(online) +
                                     " online nodes have an online device with any");
  }

  const int data_bricks = request.arbiter ? 2 : request.replica;
  for (int k = 1; k <= request.max_sets; ++k) {
    const uint64_t share = request.size_kib / k + (request.size_kib % k != 0 ? 1 : 0);
    const uint64_t brick_kib = std::max(RoundUp(share, align), min_brick_kib);
    const uint64_t arbiter_kib = request.arbiter ? AlignedArbiterKib(brick_kib, align) : 0;
    if (placer.MayFit(k, data_bricks, brick_kib)) {
      std::optional<std::vector<ReplicaSet>> sets =
          placer.TryPlace(k, data_bricks, brick_kib, arbiter_kib);
      if (sets) return std::move(*sets);
    }
    // Bricks no longer shrink: more sets would only need more space.
    if (brick_kib == min_brick_kib) break;
  }

  const uint64_t one_set_kib = std::max(RoundUp(request.size_kib, align), min_brick_kib);
  std::string need = data_bricks == 1 ? "no node has " + FormatKib(one_set_kib) + " free"
                                      : "no " + Nodes(static_cast<size_t>(data_bricks)) + " have " +
                                            FormatKib(one_set_kib) + " free each";
  if (request.arbiter) {
    need += " (plus a third with " + FormatKib(AlignedArbiterKib(one_set_kib, align)) +
            " for the arbiter)";
  }
  if (request.max_sets > 1) {
    need += " even when split into up to " + std::to_string(request.max_sets) + " replica sets";
  }
  return Status::ResourceExhausted(need + " (most free: " + placer.MostFree(8) + ")");
}

}  // namespace cairn::provisioner
