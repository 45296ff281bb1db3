// Block digests for self-heal's granular data comparison. A brick computes
// them (brick.proto Checksum) and the healer compares them across replicas,
// so both sides must use the same algorithm: the request names it and the
// reply says which one the brick used (a brick that predates a newer
// algorithm answers with SHA-256, and the healer then asks again with it).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace cairn {

enum class DigestAlgorithm : int {
  // The first 16 bytes of SHA-256 (OpenSSL). The protocol's default.
  kSha256_128 = 0,
  // XXH3's 128-bit hash (libxxhash): about 20x faster than SHA-256 here.
  // Not cryptographic: two blocks with the same digest are only equal with
  // overwhelming probability for data nobody crafted. A tenant who crafts a
  // collision can only make a heal skip one block of their own file (which
  // the next write or a later full heal still catches); see docs/heal.md.
  kXxh3_128 = 1,
};

inline constexpr size_t kBlockDigestBytes = 16;

// The digest of `n` bytes at `data` (16 bytes).
std::string BlockDigest(DigestAlgorithm algo, const void* data, size_t n);

// The digest of `n` zero bytes, cached per (algorithm, n) for powers of two.
std::string ZeroBlockDigest(DigestAlgorithm algo, uint64_t n);

// "sha256-128", "xxh3-128".
std::string_view DigestAlgorithmName(DigestAlgorithm algo);

}  // namespace cairn
