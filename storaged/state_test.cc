// storaged's state database (records persist, the legacy state.json is
// imported once, every kind of corruption is refused) and the server-source
// syntax of cairn-mount (client/spec_fetch.h).
#include "storaged/state.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>
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

// A temporary state directory, removed at the end.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/cairn-state-XXXXXX";
    EXPECT_NE(::mkdtemp(tmpl), nullptr);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

bool Exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

// Runs SQL on a database directly, as a damaged or foreign file would be.
void RawSql(const std::string& db_path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(db_path.c_str(), &db), SQLITE_OK);
  char* err = nullptr;
  const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
  EXPECT_EQ(rc, SQLITE_OK) << sql << ": " << (err ? err : "");
  sqlite3_free(err);
  sqlite3_close(db);
}

StatusOr<NodeState> OpenAndLoad(const std::string& dir) {
  NodeState st;
  auto store = StateStore::Open(dir, &st);
  if (!store.ok()) return store.status();
  return st;
}

TEST(StateStoreTest, NewDatabaseIsEmptyAndEveryRecordPersists) {
  TempDir dir;
  NodeState st;
  {
    auto store = StateStore::Open(dir.path(), &st);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    EXPECT_EQ((*store)->path(), dir.Sub("state.db"));
    EXPECT_TRUE(st.devices.empty() && st.bricks.empty() && st.specs.empty());
    EXPECT_EQ(st.brickd_port, 0);
    EXPECT_TRUE(Exists(dir.Sub("state.db")));
    EXPECT_FALSE(Exists(dir.Sub("state.db.tmp")));
    EXPECT_FALSE(Exists(dir.Sub("state.json")));
    const NodeState want = Sample();
    StateStore& s = **store;
    ASSERT_TRUE(s.SetBrickdPort(want.brickd_port).ok());
    for (const auto& [id, d] : want.devices) ASSERT_TRUE(s.PutDevice(d).ok());
    for (const auto& [id, b] : want.bricks) ASSERT_TRUE(s.PutBrick(b).ok());
    for (const auto& [name, spec] : want.specs) ASSERT_TRUE(s.PutSpec(spec).ok());
    auto back = s.Load();
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_EQ(back->ToJson(), want.ToJson());
    // Updates replace the row; deletes remove it (and are idempotent).
    ASSERT_TRUE(s.PutBrick({"b2", "d1", 300 << 20}).ok());
    ASSERT_TRUE(s.PutBrick({"b3", "d2", 1 << 20}).ok());
    ASSERT_TRUE(s.DeleteBrick("b1").ok());
    ASSERT_TRUE(s.DeleteBrick("b1").ok());
    ASSERT_TRUE(s.DeleteSpec("vol1").ok());
    ASSERT_TRUE(s.DeleteSpec("vol1").ok());
    ASSERT_TRUE(s.SetBrickdPort(24010).ok());
    // A brick on an unknown device is refused by the database too.
    EXPECT_FALSE(s.PutBrick({"b4", "d9", 1}).ok());
  }
  auto again = OpenAndLoad(dir.path());
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->brickd_port, 24010);
  EXPECT_EQ(again->devices.size(), 2u);
  EXPECT_EQ(again->bricks.size(), 2u);
  EXPECT_EQ(again->bricks.at("b2").capacity_bytes, 300u << 20);
  EXPECT_EQ(again->bricks.at("b3").device_id, "d2");
  EXPECT_TRUE(again->specs.empty());
  {
    NodeState st2;
    auto store = StateStore::Open(dir.path(), &st2);
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE((*store)->DeleteBrick("b3").ok());
    ASSERT_TRUE((*store)->DeleteDevice("d2").ok());
  }
  again = OpenAndLoad(dir.path());
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->devices.count("d2"), 0u);
}

TEST(StateStoreTest, LegacyStateJsonIsImportedOnce) {
  TempDir dir;
  const std::string legacy = Sample().ToJson();
  ASSERT_TRUE(WriteFileAtomic(dir.Sub("state.json"), legacy).ok());
  auto st = OpenAndLoad(dir.path());
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  EXPECT_EQ(st->ToJson(), legacy);
  EXPECT_EQ(st->specs.at("vol1").spec.generation, 3u);
  EXPECT_TRUE(Exists(dir.Sub("state.db")));
  EXPECT_FALSE(Exists(dir.Sub("state.json")));
  EXPECT_EQ(ReadFile(dir.Sub("state.json.migrated")).value(), legacy);
  // Later starts read the database only: a state.json that reappears (an
  // older storaged run in the same dir, say) is not imported again.
  NodeState other;
  other.brickd_port = 1;
  ASSERT_TRUE(WriteFileAtomic(dir.Sub("state.json"), other.ToJson()).ok());
  auto again = OpenAndLoad(dir.path());
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->ToJson(), legacy);
  EXPECT_TRUE(Exists(dir.Sub("state.json")));
}

TEST(StateStoreTest, CorruptLegacyFileIsRefusedAndNothingCreated) {
  TempDir dir;
  const std::string path = dir.Sub("state.json");
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
    ASSERT_TRUE(WriteFileAtomic(path, text).ok());
    auto st = OpenAndLoad(dir.path());
    ASSERT_FALSE(st.ok()) << text;
    EXPECT_EQ(st.status().code(), StatusCode::kDataLoss);
    EXPECT_NE(st.status().message().find("state file " + path + " is corrupt"), std::string::npos)
        << st.status().message();
    EXPECT_NE(st.status().message().find(want), std::string::npos)
        << "want '" << want << "' in: " << st.status().message();
    EXPECT_FALSE(Exists(dir.Sub("state.db"))) << text;
    EXPECT_FALSE(Exists(dir.Sub("state.db.tmp"))) << text;
    EXPECT_EQ(ReadFile(path).value(), text) << "state file changed";
  }
}

TEST(StateStoreTest, CorruptDatabaseIsRefusedWithTheReason) {
  TempDir dir;
  const std::string db = dir.Sub("state.db");
  auto expect_refused = [&](const std::string& what, const std::string& want,
                            StatusCode code = StatusCode::kDataLoss) {
    auto st = OpenAndLoad(dir.path());
    ASSERT_FALSE(st.ok()) << what;
    EXPECT_EQ(st.status().code(), code) << what << ": " << st.status().ToString();
    EXPECT_NE(st.status().message().find("state database " + db), std::string::npos)
        << st.status().message();
    EXPECT_NE(st.status().message().find(want), std::string::npos)
        << what << ": want '" << want << "' in: " << st.status().message();
  };
  auto fresh = [&] {
    std::error_code ec;
    for (const char* f : {"state.db", "state.db-wal", "state.db-shm", "state.json.migrated"}) {
      std::filesystem::remove(dir.Sub(f), ec);
    }
    ASSERT_TRUE(WriteFileAtomic(dir.Sub("state.json"), Sample().ToJson()).ok());
    ASSERT_TRUE(OpenAndLoad(dir.path()).ok());
  };

  // Not a database at all; an empty file (never an empty state).
  const std::string junk = "this is not an SQLite database, it is junk\n" + std::string(8192, 'x');
  ASSERT_TRUE(WriteFileAtomic(db, junk).ok());
  expect_refused("junk", "is corrupt");
  EXPECT_TRUE(ReadFile(db).value() == junk) << "database changed";
  ASSERT_TRUE(WriteFileAtomic(db, "").ok());
  expect_refused("empty file", "no schema");
  EXPECT_TRUE(ReadFile(db).value().empty()) << "database changed";
  // A database of something else.
  ::unlink(db.c_str());
  RawSql(db, "CREATE TABLE t(x)");
  expect_refused("foreign database", "no schema");
  // A newer schema.
  fresh();
  RawSql(db, "PRAGMA user_version=99");
  expect_refused("newer schema", "newer than this storaged's", StatusCode::kFailedPrecondition);
  // Rows that do not pass the checks.
  const std::vector<std::pair<std::string, std::string>> rows = {
      {"UPDATE devices SET path='srv' WHERE id='d1'", "absolute"},
      {"UPDATE devices SET id='d/1' WHERE id='d2'", "device_id"},
      {"UPDATE devices SET capacity_bytes='x' WHERE id='d1'", "wrong type"},
      {"UPDATE bricks SET device_id='d9' WHERE id='b1'", "unknown device 'd9'"},
      {"UPDATE meta SET value=70000", "brickd_port"},
      {"UPDATE specs SET json='{}'", "volume spec vol1"},
      {"UPDATE specs SET generation=4", "does not match"},
      {"DROP TABLE bricks", "no such table"},
  };
  for (const auto& [sql, want] : rows) {
    fresh();
    RawSql(db, sql);
    expect_refused(sql, want);
  }
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
