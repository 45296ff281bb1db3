// A directory's distribution layout: which subvolume owns which range of the
// 32-bit name hash (docs/client.md). Stored on the directory, on every
// subvolume, in xattr "trusted.cairn.layout" as text:
//
//   cairn-layout v1 gen=1 0:00000000-7fffffff 1:80000000-ffffffff
//
// so a later expansion can give a directory a new layout (and a new
// generation) without moving every file at once.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace cairn::client {

inline constexpr char kLayoutXattr[] = "trusted.cairn.layout";

struct Layout {
  struct Range {
    int subvolume = 0;
    uint32_t start = 0;  // inclusive
    uint32_t end = 0;    // inclusive
  };
  uint64_t generation = 0;
  std::vector<Range> ranges;  // sorted by start, covering 0..0xffffffff

  // Equal ranges over `subvolumes` subvolumes, in order.
  static Layout Even(int subvolumes, uint64_t generation);
  // Parses and checks the ranges cover the hash space exactly once and name
  // subvolumes below `subvolumes`.
  static StatusOr<Layout> Parse(std::string_view text, int subvolumes);
  std::string ToString() const;

  // The subvolume owning `name` (hash: Murmur3_32, seed 0).
  int SubvolumeFor(std::string_view name) const;
};

}  // namespace cairn::client
