// Heap tuning for processes that move large I/O buffers (brickd, cairn-mount).
//
//   int main() { cairn::KeepIoBuffersInHeap(); ... }
//
// glibc serves allocations of 128 KiB and more with a fresh mmap and unmaps
// them on free, so every 1 MiB write request, protobuf message and gRPC
// buffer lands on fresh pages: a page fault and a zeroed page per 4 KiB. On
// a VM whose host reclaims idle memory that is slower than the copy itself
// (fs_bench's sequential write: 37 % of the client's CPU in page faults and
// clear_page). Keeping such buffers in the heap lets freed ones be reused.
#pragma once

#include <cstddef>

namespace cairn {

// Serves allocations below `mmap_threshold` from the heap and returns free
// heap memory to the system only beyond `trim_threshold`. Call once, early.
void KeepIoBuffersInHeap(size_t mmap_threshold = size_t{32} << 20,
                         size_t trim_threshold = size_t{64} << 20);

}  // namespace cairn
