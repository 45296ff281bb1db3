#include "common/hash.h"

#include <gtest/gtest.h>

namespace cairn {
namespace {

// Reference values of MurmurHash3_x86_32 (from the reference implementation).
TEST(Murmur3Test, KnownAnswers) {
  EXPECT_EQ(Murmur3_32("", 0), 0u);
  EXPECT_EQ(Murmur3_32("", 1), 0x514E28B7u);
  EXPECT_EQ(Murmur3_32("", 0xffffffff), 0x81F16F39u);
  EXPECT_EQ(Murmur3_32("hello", 0), 0x248BFA47u);
  EXPECT_EQ(Murmur3_32("Hello, world!", 1234), 0xFAF6CDB3u);
  EXPECT_EQ(Murmur3_32("The quick brown fox jumps over the lazy dog", 0), 0x2E4FF723u);
  EXPECT_EQ(Murmur3_32(std::string_view("\0\0\0\0", 4), 0), 0x2362F9DEu);
}

TEST(Murmur3Test, SpreadsSimilarNamesOverTheRange) {
  int high = 0;
  for (int i = 0; i < 1000; ++i) {
    if (Murmur3_32("file-" + std::to_string(i)) >= 0x80000000u) ++high;
  }
  EXPECT_GT(high, 400);
  EXPECT_LT(high, 600);
}

}  // namespace
}  // namespace cairn
