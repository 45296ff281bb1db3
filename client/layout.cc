#include "client/layout.h"

#include <algorithm>
#include <cstdio>
#include <sstream>

#include "common/hash.h"

namespace cairn::client {

Layout Layout::Even(int subvolumes, uint64_t generation) {
  Layout l;
  l.generation = generation;
  const uint64_t span = (uint64_t{1} << 32) / static_cast<uint64_t>(subvolumes);
  for (int s = 0; s < subvolumes; ++s) {
    Range r;
    r.subvolume = s;
    r.start = static_cast<uint32_t>(span * s);
    r.end = s + 1 == subvolumes ? 0xffffffffu : static_cast<uint32_t>(span * (s + 1) - 1);
    l.ranges.push_back(r);
  }
  return l;
}

StatusOr<Layout> Layout::Parse(std::string_view text, int subvolumes) {
  std::istringstream in{std::string(text)};
  std::string magic, version, gen;
  if (!(in >> magic >> version >> gen) || magic != "cairn-layout" || version != "v1" ||
      gen.rfind("gen=", 0) != 0) {
    return Status::InvalidArgument("layout: bad header");
  }
  Layout l;
  try {
    l.generation = std::stoull(gen.substr(4));
  } catch (...) {
    return Status::InvalidArgument("layout: bad generation");
  }
  std::string tok;
  while (in >> tok) {
    int s = 0;
    unsigned start = 0, end = 0;
    char tail = 0;
    if (std::sscanf(tok.c_str(), "%d:%8x-%8x%c", &s, &start, &end, &tail) != 3 || s < 0 ||
        s >= subvolumes || start > end) {
      return Status::InvalidArgument("layout: bad range '" + tok + "'");
    }
    l.ranges.push_back({s, start, end});
  }
  std::sort(l.ranges.begin(), l.ranges.end(),
            [](const Range& a, const Range& b) { return a.start < b.start; });
  uint64_t next = 0;
  for (const Range& r : l.ranges) {
    if (r.start != next) return Status::InvalidArgument("layout: ranges leave a gap or overlap");
    next = uint64_t{r.end} + 1;
  }
  if (next != (uint64_t{1} << 32)) return Status::InvalidArgument("layout: ranges do not cover");
  return l;
}

std::string Layout::ToString() const {
  std::string out = "cairn-layout v1 gen=" + std::to_string(generation);
  char buf[48];
  for (const Range& r : ranges) {
    std::snprintf(buf, sizeof(buf), " %d:%08x-%08x", r.subvolume, r.start, r.end);
    out += buf;
  }
  return out;
}

int Layout::SubvolumeFor(std::string_view name) const {
  uint32_t h = Murmur3_32(name);
  // Few ranges: a linear scan beats anything cleverer.
  for (const Range& r : ranges) {
    if (h >= r.start && h <= r.end) return r.subvolume;
  }
  return ranges.empty() ? 0 : ranges.back().subvolume;
}

}  // namespace cairn::client
