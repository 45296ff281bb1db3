// Fixed hash functions whose values are part of on-disk formats (a file's
// subvolume is chosen by hashing its name). Never change their output.
#pragma once

#include <cstdint>
#include <string_view>

namespace cairn {

// MurmurHash3 x86_32 (Austin Appleby, public domain) of `data` with `seed`.
// Known answers: "" seed 0 → 0; "hello" seed 0 → 0x248bfa47.
uint32_t Murmur3_32(std::string_view data, uint32_t seed = 0);

}  // namespace cairn
