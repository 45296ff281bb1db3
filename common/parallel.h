// RunParallel: runs fn(0) … fn(n-1) at once on a process-wide pool of helper
// threads and returns when all have finished.
//
// For fan-outs of blocking calls (one RPC per node): a thread per call costs a
// clone, a fresh stack and its page faults every time; the pool keeps helpers
// between calls. The caller runs items too, so a nested RunParallel (an item
// that fans out again) cannot deadlock on a busy pool: whatever no helper has
// taken, the caller runs itself. The pool grows to the concurrency asked for
// (at most kMaxHelpers) and helpers that stay idle for a while exit.
#pragma once

#include <cstddef>
#include <functional>
#include <vector>

#include "common/status.h"

namespace cairn {

inline constexpr size_t kMaxParallelHelpers = 64;

// fn must not throw. Items run in no particular order, each exactly once.
void RunParallel(size_t n, const std::function<void(size_t)>& fn);

// The statuses of fn(i), in order.
std::vector<Status> RunParallelStatus(size_t n, const std::function<Status(size_t)>& fn);

// Helper threads alive now (for tests).
size_t ParallelHelpers();

}  // namespace cairn
