#include "common/digest.h"

#include <openssl/evp.h>
#define XXH_INLINE_ALL
#include <xxhash.h>

#include <array>
#include <mutex>

namespace cairn {

std::string BlockDigest(DigestAlgorithm algo, const void* data, size_t n) {
  if (algo == DigestAlgorithm::kXxh3_128) {
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, XXH3_128bits(data, n));
    return std::string(reinterpret_cast<const char*>(c.digest), kBlockDigestBytes);
  }
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data, n, out, &len, EVP_sha256(), nullptr);
  return std::string(reinterpret_cast<const char*>(out), kBlockDigestBytes);
}

std::string ZeroBlockDigest(DigestAlgorithm algo, uint64_t n) {
  const bool pow2 = n > 0 && (n & (n - 1)) == 0 && n <= (64ull << 20);
  if (!pow2) return BlockDigest(algo, std::string(n, '\0').data(), n);
  static std::mutex mu;
  static std::array<std::array<std::string, 64>, 2> cache;
  const size_t a = algo == DigestAlgorithm::kXxh3_128 ? 1 : 0;
  const int log = __builtin_ctzll(n);
  std::lock_guard l(mu);
  std::string& d = cache[a][log];
  if (d.empty()) d = BlockDigest(algo, std::string(n, '\0').data(), n);
  return d;
}

std::string_view DigestAlgorithmName(DigestAlgorithm algo) {
  return algo == DigestAlgorithm::kXxh3_128 ? "xxh3-128" : "sha256-128";
}

}  // namespace cairn
