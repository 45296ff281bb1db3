// Comparing per-object versions (brick.proto Version): counters per component
// plus the tag of the set of mutations applied. Shared by libcairn and heal.
#pragma once

#include <algorithm>

#include "proto/brick.pb.h"

namespace cairn::client {

// Some component's counter is lower: `a` missed mutations `b` has.
inline bool VersionLess(const brick::v1::Version& a, const brick::v1::Version& b) {
  return a.data() < b.data() || a.meta() < b.meta() || a.entry() < b.entry();
}

// Same counters and the same set of mutations applied.
inline bool VersionEq(const brick::v1::Version& a, const brick::v1::Version& b) {
  return a.data() == b.data() && a.meta() == b.meta() && a.entry() == b.entry() &&
         a.tag() == b.tag();
}

// Component-wise maximum of the counters (the tag is left 0).
inline brick::v1::Version VersionMax(const brick::v1::Version& a, const brick::v1::Version& b) {
  brick::v1::Version m;
  m.set_data(std::max(a.data(), b.data()));
  m.set_meta(std::max(a.meta(), b.meta()));
  m.set_entry(std::max(a.entry(), b.entry()));
  return m;
}

}  // namespace cairn::client
