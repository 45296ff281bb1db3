#include "common/digest.h"

#include <gtest/gtest.h>

#include <string>

namespace cairn {
namespace {

std::string Hex(const std::string& s) {
  static const char* k = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out += k[c >> 4];
    out += k[c & 15];
  }
  return out;
}

TEST(DigestTest, KnownAnswers) {
  // SHA-256("abc") = ba7816bf8f01cfea414140de5dae2223 b00361a396177a9cb410ff61f20015ad.
  EXPECT_EQ(Hex(BlockDigest(DigestAlgorithm::kSha256_128, "abc", 3)),
            "ba7816bf8f01cfea414140de5dae2223");
  // XXH3_128("") (canonical, big-endian) = 99aa06d3014798d86001c324468d497f.
  EXPECT_EQ(Hex(BlockDigest(DigestAlgorithm::kXxh3_128, "", 0)),
            "99aa06d3014798d86001c324468d497f");
  EXPECT_EQ(BlockDigest(DigestAlgorithm::kXxh3_128, "abc", 3).size(), kBlockDigestBytes);
}

TEST(DigestTest, ZeroBlocksMatchAndDifferFromData) {
  for (auto algo : {DigestAlgorithm::kSha256_128, DigestAlgorithm::kXxh3_128}) {
    for (uint64_t n : {4096ull, 131072ull, 1000ull}) {
      std::string zeros(n, '\0');
      EXPECT_EQ(ZeroBlockDigest(algo, n), BlockDigest(algo, zeros.data(), n)) << n;
      EXPECT_EQ(ZeroBlockDigest(algo, n), ZeroBlockDigest(algo, n));  // cached, same
      std::string one = zeros;
      one[n / 2] = 1;
      EXPECT_NE(BlockDigest(algo, one.data(), n), ZeroBlockDigest(algo, n)) << n;
    }
  }
  EXPECT_NE(ZeroBlockDigest(DigestAlgorithm::kSha256_128, 4096),
            ZeroBlockDigest(DigestAlgorithm::kXxh3_128, 4096));
  EXPECT_EQ(DigestAlgorithmName(DigestAlgorithm::kXxh3_128), "xxh3-128");
}

}  // namespace
}  // namespace cairn
