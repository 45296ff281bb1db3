// Tests for Uuid, random tokens and hex encoding.
#include "common/id.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <set>
#include <string>
#include <unordered_set>
#include <vector>

namespace cairn {
namespace {

constexpr char kSample[] = "3f2c9a8e-1b2c-4d5e-8f90-123456789abc";
constexpr char kSampleHex[] = "3f2c9a8e1b2c4d5e8f90123456789abc";

bool IsLowerHex(const std::string& s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

TEST(Uuid, DefaultIsZero) {
  Uuid id;
  EXPECT_TRUE(id.IsZero());
  EXPECT_EQ(id.ToString(), "00000000-0000-0000-0000-000000000000");
}

TEST(Uuid, RandomIsVersion4WithRfc4122Variant) {
  for (int i = 0; i < 64; ++i) {
    Uuid id = Uuid::Random();
    EXPECT_EQ(id.bytes()[6] >> 4, 4) << id.ToString();
    EXPECT_EQ(id.bytes()[8] & 0xc0, 0x80) << id.ToString();
    std::string s = id.ToString();
    EXPECT_EQ(s[14], '4') << s;
    EXPECT_NE(std::string("89ab").find(s[19]), std::string::npos) << s;
    EXPECT_FALSE(id.IsZero());
  }
}

TEST(Uuid, RandomDiffersBetweenCalls) {
  std::set<Uuid> seen;
  for (int i = 0; i < 1000; ++i) seen.insert(Uuid::Random());
  EXPECT_EQ(seen.size(), 1000u);
}

TEST(Uuid, RootIsAllZeroButLastByteOne) {
  Uuid root = Uuid::Root();
  EXPECT_EQ(root.ToString(), "00000000-0000-0000-0000-000000000001");
  EXPECT_FALSE(root.IsZero());
  EXPECT_EQ(root, Uuid::Root());
  EXPECT_NE(root, Uuid());
}

TEST(Uuid, ToStringIsCanonicalLowerCaseDashedForm) {
  StatusOr<Uuid> id = Uuid::Parse(kSampleHex);
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  EXPECT_EQ(id->ToString(), kSample);
  EXPECT_EQ(id->ToHex(), kSampleHex);
  EXPECT_EQ(id->bytes()[0], 0x3f);
  EXPECT_EQ(id->bytes()[15], 0xbc);
}

TEST(Uuid, ParseRoundTripsDashedForm) {
  for (int i = 0; i < 32; ++i) {
    Uuid id = Uuid::Random();
    StatusOr<Uuid> back = Uuid::Parse(id.ToString());
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_EQ(*back, id);
  }
}

TEST(Uuid, ParseRoundTripsHexForm) {
  for (int i = 0; i < 32; ++i) {
    Uuid id = Uuid::Random();
    std::string hex = id.ToHex();
    EXPECT_EQ(hex.size(), 32u);
    EXPECT_TRUE(IsLowerHex(hex)) << hex;
    StatusOr<Uuid> back = Uuid::Parse(hex);
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_EQ(*back, id);
  }
}

TEST(Uuid, ParseAcceptsUpperCase) {
  StatusOr<Uuid> upper = Uuid::Parse("3F2C9A8E-1B2C-4D5E-8F90-123456789ABC");
  ASSERT_TRUE(upper.ok()) << upper.status().ToString();
  EXPECT_EQ(upper->ToString(), kSample);
  StatusOr<Uuid> upper_hex = Uuid::Parse("3F2C9A8E1B2C4D5E8F90123456789ABC");
  ASSERT_TRUE(upper_hex.ok()) << upper_hex.status().ToString();
  EXPECT_EQ(upper_hex->ToString(), kSample);
}

TEST(Uuid, ParseRejectsBadLengths) {
  for (const char* bad : {"", "3f2c", "3f2c9a8e1b2c4d5e8f90123456789ab",  // 31
                          "3f2c9a8e1b2c4d5e8f90123456789abcd",            // 33
                          "3f2c9a8e-1b2c-4d5e-8f90-123456789ab",          // 35
                          "3f2c9a8e-1b2c-4d5e-8f90-123456789abcd",        // 37
                          "{3f2c9a8e-1b2c-4d5e-8f90-123456789abc}"}) {
    StatusOr<Uuid> r = Uuid::Parse(bad);
    EXPECT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << bad;
  }
}

TEST(Uuid, ParseRejectsNonHexCharacters) {
  for (const char* bad :
       {"3f2c9a8e-1b2c-4d5e-8f90-123456789abg", "3f2c9a8e1b2c4d5e8f90123456789abz",
        "3f2c9a8e1b2c4d5e8f90123456789a c", "+f2c9a8e1b2c4d5e8f90123456789abc",
        "3f2c9a8e-1b2c-4d5e-8f90-12345678 9ab"}) {
    StatusOr<Uuid> r = Uuid::Parse(bad);
    EXPECT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << bad;
  }
}

TEST(Uuid, ParseRejectsMisplacedDashes) {
  for (const char* bad : {"3f2c9a8e1-b2c-4d5e-8f90-123456789abc",  // dash at 9, not 8
                          "3f2c9a8e-1b2c4-d5e-8f90-123456789abc",  // dash at 14
                          "3f2c9a8e-1b2c-4d5e-8f901-23456789abc",  // dash at 24
                          "3f2c9a8e11b2c14d5e18f901123456789abc",  // 36 with no dashes
                          "3f2c9a8e-1b2c4d5e8f90123456789abc",     // 33 with one dash
                          "3f2c9a8e1b2c4d5e8f90123456789a-c"}) {   // 32 with a dash
    StatusOr<Uuid> r = Uuid::Parse(bad);
    EXPECT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << bad;
  }
}

TEST(Uuid, ParseErrorQuotesTheInput) {
  StatusOr<Uuid> r = Uuid::Parse("not-an-id");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("not-an-id"), std::string::npos) << r.status().ToString();
}

TEST(Uuid, FromBytesRejectsWrongSizes) {
  for (size_t n : {0u, 1u, 15u, 17u, 32u}) {
    StatusOr<Uuid> r = Uuid::FromBytes(std::string(n, 'x'));
    EXPECT_FALSE(r.ok()) << n;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << n;
  }
}

TEST(Uuid, RawRoundTripsThroughFromBytes) {
  for (int i = 0; i < 32; ++i) {
    Uuid id = Uuid::Random();
    std::string raw = id.Raw();
    ASSERT_EQ(raw.size(), Uuid::kSize);
    StatusOr<Uuid> back = Uuid::FromBytes(raw);
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_EQ(*back, id);
  }
}

TEST(Uuid, RawIsTheBytesInOrderIncludingZeros) {
  std::string raw = Uuid::Root().Raw();
  EXPECT_EQ(raw, std::string(15, '\0') + '\x01');
  StatusOr<Uuid> back = Uuid::FromBytes(raw);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, Uuid::Root());
}

TEST(Uuid, UsableInUnorderedSet) {
  std::unordered_set<Uuid> set;
  std::vector<Uuid> ids;
  for (int i = 0; i < 500; ++i) ids.push_back(Uuid::Random());
  for (const Uuid& id : ids) set.insert(id);
  for (const Uuid& id : ids) set.insert(id);  // duplicates collapse
  set.insert(Uuid::Root());
  set.insert(*Uuid::Parse("00000000000000000000000000000001"));
  EXPECT_EQ(set.size(), 501u);
  for (const Uuid& id : ids) EXPECT_EQ(set.count(id), 1u);
  EXPECT_EQ(set.count(Uuid()), 0u);
}

TEST(Uuid, HashSpreadsIds) {
  // Ids differing in a single byte (as sequential ids might) must not collide wholesale.
  std::unordered_set<size_t> hashes;
  for (int i = 0; i < 256; ++i) {
    std::array<uint8_t, Uuid::kSize> b{};
    b[15] = static_cast<uint8_t>(i);
    hashes.insert(std::hash<Uuid>{}(Uuid(b)));
    b[15] = 0;
    b[0] = static_cast<uint8_t>(i);
    hashes.insert(std::hash<Uuid>{}(Uuid(b)));
  }
  EXPECT_GT(hashes.size(), 500u);
}

TEST(Uuid, OrderingFollowsBytes) {
  EXPECT_LT(Uuid(), Uuid::Root());
  EXPECT_LT(*Uuid::Parse("00000000000000000000000000000002"),
            *Uuid::Parse("10000000000000000000000000000000"));
}

TEST(HexEncode, EncodesBytesAsLowerCaseHex) {
  EXPECT_EQ(HexEncode(""), "");
  EXPECT_EQ(HexEncode("abc"), "616263");
  EXPECT_EQ(HexEncode(std::string("\x00\xff\x10\xab", 4)), "00ff10ab");
}

TEST(RandomHexToken, DefaultIs32BytesOfLowerHex) {
  std::string t = RandomHexToken();
  EXPECT_EQ(t.size(), 64u);
  EXPECT_TRUE(IsLowerHex(t)) << t;
}

TEST(RandomHexToken, LengthIsTwiceTheByteCount) {
  for (size_t n : {0u, 1u, 5u, 16u, 100u}) {
    std::string t = RandomHexToken(n);
    EXPECT_EQ(t.size(), 2 * n);
    EXPECT_TRUE(IsLowerHex(t)) << t;
  }
}

TEST(RandomHexToken, DiffersBetweenCalls) {
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) seen.insert(RandomHexToken(16));
  EXPECT_EQ(seen.size(), 100u);
}

TEST(RandomBytes, FillsTheWholeBuffer) {
  // A 4 KiB buffer left all-zero after filling would mean nothing was written.
  std::string buf(4096, '\0');
  RandomBytes(buf.data(), buf.size());
  size_t zeros_in_tail = 0;
  for (size_t i = buf.size() - 64; i < buf.size(); ++i) zeros_in_tail += buf[i] == '\0';
  EXPECT_LT(zeros_in_tail, 16u);
}

}  // namespace
}  // namespace cairn
