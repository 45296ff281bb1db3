// Small file helpers for tests that write through a mount and check what
// comes back: deterministic contents, whole-file writes and uncached reads
// that report the errno instead of failing an assertion (they run on
// writer threads and count errors themselves).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace cairn::test {

// `n` bytes of deterministic pseudo-random data for `seed`.
std::string Pattern(size_t n, uint64_t seed);

// Writes `data` to `path` (created 0644 or truncated), fsyncs when asked,
// closes; 0 or the errno of the first failing call.
int WriteWholeFile(const std::string& path, const std::string& data, bool fsync = false);

// Reads all of `path`, first dropping its cached pages so the storage
// answers; "" and *err = errno on failure, *err = 0 otherwise.
std::string ReadWholeFile(const std::string& path, int* err);

// sync, then drops the kernel's page, dentry and inode caches.
void DropCaches();

}  // namespace cairn::test
