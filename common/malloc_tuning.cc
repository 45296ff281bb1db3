#include "common/malloc_tuning.h"

#include <malloc.h>
#include <spdlog/spdlog.h>

namespace cairn {

void KeepIoBuffersInHeap(size_t mmap_threshold, size_t trim_threshold) {
  // Setting either also turns off glibc's dynamic threshold adjustment.
  if (mallopt(M_MMAP_THRESHOLD, static_cast<int>(mmap_threshold)) != 1 ||
      mallopt(M_TRIM_THRESHOLD, static_cast<int>(trim_threshold)) != 1) {
    spdlog::warn("event=mallopt_refused mmap_threshold={} trim_threshold={}", mmap_threshold,
                 trim_threshold);
  }
}

}  // namespace cairn
