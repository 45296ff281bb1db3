#include "client/layout.h"

#include <gtest/gtest.h>

#include <vector>

namespace cairn::client {
namespace {

TEST(LayoutTest, EvenLayoutCoversTheHashSpaceAndRoundTrips) {
  for (int n : {1, 2, 3, 7}) {
    Layout l = Layout::Even(n, 3);
    ASSERT_EQ(l.ranges.size(), static_cast<size_t>(n));
    auto back = Layout::Parse(l.ToString(), n);
    ASSERT_TRUE(back.ok()) << back.status().ToString() << " " << l.ToString();
    EXPECT_EQ(back->ToString(), l.ToString());
    EXPECT_EQ(back->generation, 3u);
  }
  EXPECT_EQ(Layout::Even(2, 1).ToString(),
            "cairn-layout v1 gen=1 0:00000000-7fffffff 1:80000000-ffffffff");
}

TEST(LayoutTest, NamesSpreadOverSubvolumes) {
  Layout l = Layout::Even(2, 1);
  std::vector<int> count(2);
  for (int i = 0; i < 2000; ++i) ++count[l.SubvolumeFor("f" + std::to_string(i))];
  EXPECT_GT(count[0], 800);
  EXPECT_GT(count[1], 800);
  // Fixed: the same name always lands on the same subvolume.
  EXPECT_EQ(l.SubvolumeFor("hello"), l.SubvolumeFor("hello"));
}

TEST(LayoutTest, RejectsGapsOverlapsAndUnknownSubvolumes) {
  EXPECT_FALSE(Layout::Parse("garbage", 2).ok());
  EXPECT_FALSE(Layout::Parse("cairn-layout v1 gen=1 0:00000000-7fffffff", 2).ok());
  EXPECT_FALSE(
      Layout::Parse("cairn-layout v1 gen=1 0:00000000-80000000 1:80000000-ffffffff", 2).ok());
  EXPECT_FALSE(
      Layout::Parse("cairn-layout v1 gen=1 0:00000000-7fffffff 5:80000000-ffffffff", 2).ok());
  EXPECT_TRUE(
      Layout::Parse("cairn-layout v1 gen=2 1:00000000-3fffffff 0:40000000-ffffffff", 2).ok());
}

}  // namespace
}  // namespace cairn::client
