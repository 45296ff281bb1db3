// storaged's state file (round trip, every kind of corruption refused) and
// the server-source syntax of cairn-mount (client/spec_fetch.h).
#include "storaged/state.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "client/spec_fetch.h"
#include "common/file_util.h"

namespace cairn::storaged {
namespace {

NodeState Sample() {
  NodeState st;
  st.brickd_port = 24009;
  st.devices["d1"] = {"d1", "/srv/d1", 1 << 30, false};
  st.devices["d2"] = {"d2", "/srv/d2", 2ULL << 30, true};
  st.bricks["b1"] = {"b1", "d1", 100 << 20};
  st.bricks["b2"] = {"b2", "d1", 200 << 20};
  auto spec = client::VolumeSpec::Parse(R"({"volume_id": "6f1c2a3b-0000-4000-8000-000000000001",
      "name": "vol1", "type": "replicate", "replica": 2, "generation": 3,
      "subvolumes": [[{"node": "127.0.0.2:24009", "brick_id": "b1"},
                      {"node": "127.0.0.3:24009", "brick_id": "b1"}]]})");
  EXPECT_TRUE(spec.ok()) << spec.status().ToString();
  st.specs["vol1"] = {*spec, spec->ToJson()};
  return st;
}

TEST(StateTest, RoundTrip) {
  NodeState st = Sample();
  auto back = NodeState::FromJson(st.ToJson());
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->ToJson(), st.ToJson());
  EXPECT_EQ(back->brickd_port, 24009);
  EXPECT_EQ(back->devices.at("d2").capacity_from_fs, true);
  EXPECT_EQ(back->bricks.at("b2").capacity_bytes, 200u << 20);
  EXPECT_EQ(back->specs.at("vol1").spec.generation, 3u);
  EXPECT_EQ(back->AllocatedBytes("d1"), 300u << 20);
  EXPECT_EQ(back->BrickPath(back->bricks.at("b1")), "/srv/d1/bricks/b1");
}

TEST(StateTest, MissingFileIsEmptyAndSaveLoads) {
  char tmpl[] = "/tmp/cairn-state-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  StateFile file(dir + "/state.json");
  auto empty = file.Load();
  ASSERT_TRUE(empty.ok()) << empty.status().ToString();
  EXPECT_TRUE(empty->devices.empty());
  ASSERT_TRUE(file.Save(Sample()).ok());
  auto loaded = file.Load();
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->ToJson(), Sample().ToJson());
  ::unlink(file.path().c_str());
  ::rmdir(dir.c_str());
}

TEST(StateTest, CorruptionIsRefusedWithTheReason) {
  char tmpl[] = "/tmp/cairn-state-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  StateFile file(dir + "/state.json");
  const nlohmann::json good = nlohmann::json::parse(Sample().ToJson());
  auto with = [&](auto mutate) {
    nlohmann::json j = good;
    mutate(j);
    return j.dump();
  };
  using J = nlohmann::json;
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "not valid JSON"},
      {"{\"format\": 1", "not valid JSON"},
      {"[]", "not a JSON object"},
      {with([](J& j) { j["format"] = 2; }), "'format'"},
      {with([](J& j) { j.erase("format"); }), "'format'"},
      {with([](J& j) { j["brickd_port"] = 70000; }), "brickd_port"},
      {with([](J& j) { j.erase("bricks"); }), "bricks"},
      {with([](J& j) { j["devices"][0]["device_id"] = "d/1"; }), "device_id"},
      {with([](J& j) { j["devices"][0]["path"] = "srv"; }), "absolute"},
      {with([](J& j) { j["devices"].push_back(j["devices"][0]); }), "appears twice"},
      {with([](J& j) { j["bricks"][1]["device_id"] = "d9"; }), "unknown device"},
      {with([](J& j) { j["bricks"][0]["capacity_bytes"] = "x"; }), "capacity"},
      {with([](J& j) { j["specs"][0]["replica"] = 3; }), "volume spec"},
  };
  for (const auto& [text, want] : cases) {
    ASSERT_TRUE(WriteFileAtomic(file.path(), text).ok());
    auto st = file.Load();
    ASSERT_FALSE(st.ok()) << text;
    EXPECT_EQ(st.status().code(), StatusCode::kDataLoss);
    EXPECT_NE(st.status().message().find("state file " + file.path() + " is corrupt"),
              std::string::npos)
        << st.status().message();
    EXPECT_NE(st.status().message().find(want), std::string::npos)
        << "want '" << want << "' in: " << st.status().message();
  }
  ::unlink(file.path().c_str());
  ::rmdir(dir.c_str());
}

TEST(StateTest, Ids) {
  EXPECT_TRUE(ValidateId("brick_id", "a-b_c.9").ok());
  EXPECT_FALSE(ValidateId("brick_id", "").ok());
  EXPECT_FALSE(ValidateId("brick_id", std::string(129, 'a')).ok());
  EXPECT_FALSE(ValidateId("brick_id", "a/b").ok());
  EXPECT_FALSE(ValidateId("brick_id", "..").ok());
  EXPECT_NE(ValidateId("device_id", "x y").message().find("device_id"), std::string::npos);
}

TEST(ServerSourceTest, Forms) {
  auto one = client::ParseServerSource("node1:/vol1");
  ASSERT_TRUE(one.ok()) << one.status().ToString();
  EXPECT_EQ(one->servers, std::vector<std::string>{"node1:24007"});
  EXPECT_EQ(one->volume, "vol1");
  auto many = client::ParseServerSource("127.0.0.2:7000,127.0.0.3,[::1]:7001:/v");
  ASSERT_TRUE(many.ok()) << many.status().ToString();
  EXPECT_EQ(many->servers,
            (std::vector<std::string>{"127.0.0.2:7000", "127.0.0.3:24007", "[::1]:7001"}));
  EXPECT_EQ(many->volume, "v");
  for (const char* bad : {"vol1", ":/vol1", "node1:/", "node1:/a/b", "node1,:/v", "node1:x:/v",
                          "node1:99999:/v", "node1::/v"}) {
    auto r = client::ParseServerSource(bad);
    EXPECT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(r.status().message().find(bad), std::string::npos) << r.status().message();
  }
}

}  // namespace
}  // namespace cairn::storaged
