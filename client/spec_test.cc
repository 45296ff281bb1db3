#include "client/spec.h"

#include <gtest/gtest.h>

namespace cairn::client {
namespace {

const char* kGood = R"({"volume_id": "6f1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d", "name": "v1",
  "type": "distribute-replicate", "replica": 3, "arbiter": 1, "generation": 7,
  "size_bytes": 1073741824,
  "subvolumes": [[{"node": "127.0.0.2:7001", "brick_id": "a1"},
                  {"node": "127.0.0.3:7001", "brick_id": "a2"},
                  {"node": "127.0.0.4:7001", "brick_id": "a3"}],
                 [{"node": "127.0.0.2:7001", "brick_id": "b1"},
                  {"node": "127.0.0.3:7001", "brick_id": "b2"},
                  {"node": "127.0.0.4:7001", "brick_id": "b3"}]]})";

TEST(VolumeSpecTest, ParsesAndRoundTrips) {
  auto spec = VolumeSpec::Parse(kGood);
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  EXPECT_EQ(spec->name, "v1");
  EXPECT_EQ(spec->type, VolumeSpec::Type::kDistributeReplicate);
  EXPECT_EQ(spec->replica, 3);
  EXPECT_EQ(spec->generation, 7u);
  EXPECT_EQ(spec->size_bytes, 1073741824u);
  ASSERT_EQ(spec->subvolumes.size(), 2u);
  EXPECT_FALSE(spec->subvolumes[1][1].arbiter);
  EXPECT_TRUE(spec->subvolumes[1][2].arbiter);  // the last brick of each subvolume
  EXPECT_EQ(spec->Quorum(), 2);
  auto again = VolumeSpec::Parse(spec->ToJson());
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->ToJson(), spec->ToJson());
}

TEST(VolumeSpecTest, BadSpecsNameTheField) {
  struct Case {
    std::string json;
    std::string mentions;
  };
  const std::vector<Case> cases = {
      {"not json", "JSON"},
      {"[]", "object"},
      {R"({"name": "v"})", "volume_id"},
      {R"({"volume_id": "zz", "name": "v"})", "volume_id"},
      {R"({"volume_id": "6f1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d"})", "name"},
      {R"({"volume_id": "6f1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d", "name": "v", "type": "raid"})",
       "type"},
      {R"({"volume_id": "6f1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d", "name": "v", "replica": 3,
           "subvolumes": [[{"node": "h:1", "brick_id": "a"}]]})",
       "replica"},
      {R"({"volume_id": "6f1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d", "name": "v", "replica": 2,
           "subvolumes": [[{"node": "h", "brick_id": "a"}, {"node": "h:2", "brick_id": "b"}]]})",
       "node"},
      {R"({"volume_id": "6f1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d", "name": "v", "replica": 2,
           "subvolumes": [[{"node": "h:1", "brick_id": "a/b"}, {"node": "h:2", "brick_id": "b"}]]})",
       "brick_id"},
      {R"({"volume_id": "6f1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d", "name": "v", "replica": 2,
           "subvolumes": [[{"node": "h:1", "brick_id": "a"}, {"node": "h:1", "brick_id": "a"}]]})",
       "twice"},
      {R"({"volume_id": "6f1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d", "name": "v", "replica": 2,
           "arbiter": 1, "subvolumes": [[{"node": "h:1", "brick_id": "a"},
           {"node": "h:2", "brick_id": "b"}]]})",
       "arbiter"},
      {R"({"volume_id": "6f1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d", "name": "v", "replica": 2,
           "subvolumes": []})",
       "subvolumes"},
  };
  for (const auto& c : cases) {
    auto spec = VolumeSpec::Parse(c.json);
    ASSERT_FALSE(spec.ok()) << c.json;
    EXPECT_EQ(spec.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(spec.status().message().find(c.mentions), std::string::npos)
        << spec.status().message();
  }
}

TEST(VolumeSpecTest, LoadNamesTheFile) {
  auto spec = VolumeSpec::Load("/nonexistent/spec.json");
  ASSERT_FALSE(spec.ok());
  EXPECT_NE(spec.status().message().find("/nonexistent/spec.json"), std::string::npos);
}

}  // namespace
}  // namespace cairn::client
