// cairnctl without a cluster: settings precedence, topology.json, name/id
// resolution, tables, the command line (against an in-memory API), and the
// REST client's JWTs and queue following against a real in-test HTTP server.
#include <gtest/gtest.h>
#include <httplib.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include "cairnctl/cli.h"
#include "cairnctl/local_cluster.h"
#include "cairnctl/rest_client.h"
#include "cairnctl/settings.h"
#include "cairnctl/table.h"
#include "cairnctl/topology.h"
#include "common/file_util.h"
#include "common/jwt.h"

namespace cairn::ctl {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

// A fresh directory, removed at the end.
class ScratchDir {
 public:
  ScratchDir() {
    std::string tmpl = (fs::temp_directory_path() / "cairnctl-test-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string Write(const std::string& name, const std::string& text) const {
    std::string p = path_ + "/" + name;
    EXPECT_TRUE(WriteFileAtomic(p, text, 0600).ok());
    return p;
  }

 private:
  std::string path_;
};

// An environment for ResolveSettings / RunCli.
class FakeEnv {
 public:
  void Set(const std::string& k, const std::string& v) { vars_[k] = v; }
  GetEnvFn Fn() const {
    return [this](const char* name) -> const char* {
      auto it = vars_.find(name);
      return it == vars_.end() ? nullptr : it->second.c_str();
    };
  }

 private:
  std::map<std::string, std::string> vars_;
};

// ---------------------------------------------------------------------------
// Settings.

class CairnctlSettings : public ::testing::Test {
 protected:
  void SetUp() override {
    env_.Set("HOME", dir_.path() + "/home");
    config_ = dir_.Write("config", R"({"server": "127.0.0.1:9000", "user": "admin",
        "key_file": "admin.key", "data_token_file": "data.token", "local_dir": "local"})");
    dir_.Write("admin.key", "file-key-0123456789\n");
    env_.Set("CAIRN_CONFIG", config_);
  }
  StatusOr<Settings> Resolve(const SettingsFlags& f = {}) { return ResolveSettings(f, env_.Fn()); }

  ScratchDir dir_;
  FakeEnv env_;
  std::string config_;
};

TEST_F(CairnctlSettings, ContextFileAlone) {
  auto s = Resolve();
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->server, "http://127.0.0.1:9000");
  EXPECT_EQ(s->user, "admin");
  EXPECT_EQ(s->key, "file-key-0123456789");
  // Relative paths in the context are relative to its directory.
  EXPECT_EQ(s->data_token_file, dir_.path() + "/data.token");
  EXPECT_EQ(s->local_dir, dir_.path() + "/local");
  EXPECT_EQ(s->config_path, config_);
  EXPECT_TRUE(s->config_exists);
  EXPECT_TRUE(s->RequireServer().ok());
  EXPECT_TRUE(s->RequireKey().ok());
}

TEST_F(CairnctlSettings, EnvironmentBeatsContextAndCairnBeatsHeketi) {
  env_.Set("HEKETI_CLI_SERVER", "http://heketi:8080");
  env_.Set("HEKETI_CLI_USER", "user");
  env_.Set("HEKETI_CLI_KEY", "heketi-key");
  auto s = Resolve();
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->server, "http://heketi:8080");
  EXPECT_EQ(s->user, "user");
  EXPECT_EQ(s->key, "heketi-key");
  EXPECT_EQ(s->server_source, "HEKETI_CLI_SERVER");

  env_.Set("CAIRN_SERVER", "https://cairn:8443/");
  env_.Set("CAIRN_USER", "admin");
  env_.Set("CAIRN_KEY", "cairn-key");
  s = Resolve();
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->server, "https://cairn:8443");
  EXPECT_EQ(s->user, "admin");
  EXPECT_EQ(s->key, "cairn-key");
  EXPECT_EQ(s->key_source, "CAIRN_KEY");
}

TEST_F(CairnctlSettings, FlagsBeatEnvironment) {
  env_.Set("CAIRN_SERVER", "http://env:1");
  env_.Set("CAIRN_KEY", "env-key");
  env_.Set("CAIRN_USER", "admin");
  std::string key_file = dir_.Write("flag.key", "flag-file-key\n");
  SettingsFlags f;
  f.server = "flag:2";
  f.user = "user";
  f.key_file = key_file;
  f.data_token_file = "/x/data.token";
  auto s = Resolve(f);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->server, "http://flag:2");
  EXPECT_EQ(s->user, "user");
  EXPECT_EQ(s->key, "flag-file-key");
  EXPECT_EQ(s->key_source, "--key-file");
  EXPECT_EQ(s->data_token_file, "/x/data.token");

  f.key_file.reset();
  f.key = "flag-key";
  s = Resolve(f);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->key, "flag-key");

  f.key_file = key_file;
  EXPECT_TRUE(Resolve(f).status().IsInvalidArgument());  // both
}

TEST_F(CairnctlSettings, ConfigFlagBeatsCairnConfig) {
  std::string other = dir_.Write("other", R"({"server": "http://other:7", "key": "k2"})");
  SettingsFlags f;
  f.config = other;
  auto s = Resolve(f);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->server, "http://other:7");
  EXPECT_EQ(s->key, "k2");
  EXPECT_EQ(s->config_path, other);
}

TEST_F(CairnctlSettings, DefaultContextIsUnderHome) {
  FakeEnv bare;
  bare.Set("HOME", "/nonexistent-home");
  auto s = ResolveSettings({}, bare.Fn());
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->config_path, "/nonexistent-home/.cairn/config");
  EXPECT_FALSE(s->config_exists);
  EXPECT_TRUE(s->server.empty());
  Status need = s->RequireServer();
  ASSERT_FALSE(need.ok());
  EXPECT_NE(need.message().find("cairnctl local up"), std::string::npos) << need.message();
  EXPECT_NE(need.message().find("--server"), std::string::npos) << need.message();
  EXPECT_NE(s->RequireKey().message().find("--key-file"), std::string::npos);
}

TEST_F(CairnctlSettings, BadInputIsNamed) {
  dir_.Write("config", "{not json");
  auto s = Resolve();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find(config_), std::string::npos) << s.status().message();

  dir_.Write("config", R"({"server": 12})");
  EXPECT_NE(Resolve().status().message().find("\"server\" must be a string"), std::string::npos);

  dir_.Write("config", R"({"key": "a", "key_file": "b"})");
  EXPECT_FALSE(Resolve().ok());

  dir_.Write("config", R"({"server": "ftp://x"})");
  EXPECT_NE(Resolve().status().message().find("http or https"), std::string::npos);

  dir_.Write("config", R"({"key_file": "missing.key"})");
  EXPECT_NE(Resolve().status().message().find("missing.key"), std::string::npos);

  dir_.Write("config", "{}");
  SettingsFlags f;
  f.user = "root";
  EXPECT_NE(Resolve(f).status().message().find("admin or user"), std::string::npos);

  // An explicit --config must exist; $CAIRN_CONFIG need not.
  f = {};
  f.config = dir_.path() + "/nope";
  EXPECT_FALSE(Resolve(f).ok());
  env_.Set("CAIRN_CONFIG", dir_.path() + "/nope");
  EXPECT_TRUE(Resolve().ok());
}

TEST(CairnctlServerUrl, Normalized) {
  EXPECT_EQ(*NormalizeServerUrl("127.0.0.1:8080"), "http://127.0.0.1:8080");
  EXPECT_EQ(*NormalizeServerUrl("http://h:1/"), "http://h:1");
  EXPECT_EQ(*NormalizeServerUrl("https://h"), "https://h");
  EXPECT_FALSE(NormalizeServerUrl("").ok());
  EXPECT_FALSE(NormalizeServerUrl("http://").ok());
  EXPECT_FALSE(NormalizeServerUrl("http://h:1/api").ok());
  EXPECT_FALSE(NormalizeServerUrl("gopher://h").ok());
}

TEST(CairnctlContext, WriteAndParseRoundTrip) {
  ScratchDir dir;
  Context c;
  c.server = "http://127.0.0.1:8080";
  c.user = "admin";
  c.key_file = "/k";
  c.data_token_file = "/d";
  c.local_dir = "/l";
  const std::string path = dir.path() + "/sub/config";
  ASSERT_TRUE(WriteContext(path, c).ok());
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto back = ParseContext(*ReadFile(path), path);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->ToJson(), c.ToJson());
}

// ---------------------------------------------------------------------------
// topology.json

constexpr char kTopology[] = R"({
  "clusters": [{"nodes": [
    {"node": {"hostnames": {"manage": ["10.0.0.1"], "storage": ["192.168.0.1"]}, "zone": 1},
     "devices": ["/srv/d1", {"name": "/srv/d2", "destroydata": true, "capacity_kib": 1048576}]},
    {"node": {"hostnames": {"manage": ["10.0.0.2:24007"], "storage": ["192.168.0.2"]},
              "zone": 2, "tags": {"rack": "r2"}},
     "devices": [{"name": "/srv/d3"}]}]},
   {"nodes": [
    {"node": {"hostnames": {"manage": ["10.0.1.1"], "storage": ["10.0.1.1"]}},
     "devices": []}]}]})";

TEST(CairnctlTopology, ParsesHeketiFormat) {
  auto t = ParseTopology(kTopology);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  ASSERT_EQ(t->clusters.size(), 2u);
  ASSERT_EQ(t->clusters[0].nodes.size(), 2u);
  const auto& n0 = t->clusters[0].nodes[0];
  EXPECT_EQ(n0.manage, std::vector<std::string>{"10.0.0.1"});
  EXPECT_EQ(n0.storage, std::vector<std::string>{"192.168.0.1"});
  EXPECT_EQ(n0.zone, 1);
  ASSERT_EQ(n0.devices.size(), 2u);
  EXPECT_EQ(n0.devices[0].name, "/srv/d1");
  EXPECT_FALSE(n0.devices[0].destroydata);
  EXPECT_EQ(n0.devices[0].capacity_kib, 0);
  EXPECT_EQ(n0.devices[1].name, "/srv/d2");
  EXPECT_TRUE(n0.devices[1].destroydata);
  EXPECT_EQ(n0.devices[1].capacity_kib, 1048576);
  EXPECT_EQ(t->clusters[0].nodes[1].zone, 2);
  EXPECT_EQ(t->clusters[0].nodes[1].tags, json({{"rack", "r2"}}));
  EXPECT_EQ(t->clusters[1].nodes[0].zone, 1);  // default
  EXPECT_TRUE(t->clusters[1].nodes[0].devices.empty());
}

TEST(CairnctlTopology, BadInputIsNamed) {
  struct Case {
    std::string text;
    std::string want;
  };
  const std::string node_ok = R"({"hostnames": {"manage": ["a"], "storage": ["a"]}})";
  std::vector<Case> cases = {
      {"{", "not valid JSON"},
      {"[]", "must be a JSON object"},
      {"{}", "\"clusters\" must be a list"},
      {R"({"clusters": [1]})", "clusters[0] must be an object"},
      {R"({"clusters": [{}]})", "clusters[0]: \"nodes\" must be a list"},
      {R"({"clusters": [{"nodes": [{}]}]})", "clusters[0].nodes[0]: \"node\" must be an object"},
      {R"({"clusters": [{"nodes": [{"node": {}}]}]})", "\"hostnames\" must be an object"},
      {R"({"clusters": [{"nodes": [{"node": {"hostnames": {"storage": ["a"]}}}]}]})",
       "hostnames.manage is missing"},
      {R"({"clusters": [{"nodes": [{"node": {"hostnames": {"manage": [], "storage": ["a"]}}}]}]})",
       "clusters[0].nodes[0].node: hostnames.manage must be a non-empty list of strings"},
      {R"({"clusters": [{"nodes": [{"node": {"hostnames": {"manage": ["a"]}}}]}]})",
       "hostnames.storage is missing"},
      {R"({"clusters": [{"nodes": [{"node": {"hostnames": {"manage": ["a"], "storage": [3]}}}]}]})",
       "hostnames.storage must be a non-empty list of strings"},
      {R"({"clusters": [{"nodes": [{"node": {"hostnames": {"manage": ["a"], "storage": ["a"]},
          "zone": 0}}]}]})",
       "zone must be an integer of at least 1"},
      {R"({"clusters": [{"nodes": [{"node": {"hostnames": {"manage": ["a"], "storage": ["a"]},
          "zone": "1"}}]}]})",
       "zone must be an integer"},
      {R"({"clusters": [{"nodes": [{"node": )" + node_ok + R"(, "devices": "/d"}]}]})",
       "devices must be a list"},
      {R"({"clusters": [{"nodes": [{"node": )" + node_ok + R"(, "devices": [7]}]}]})",
       "clusters[0].nodes[0].devices[0] must be a device name"},
      {R"({"clusters": [{"nodes": [{"node": )" + node_ok + R"(, "devices": [""]}]}]})",
       "empty device name"},
      {R"({"clusters": [{"nodes": [{"node": )" + node_ok + R"(, "devices": [{"name": 1}]}]}]})",
       "devices[0]: name must be a non-empty string"},
      {R"({"clusters": [{"nodes": [{"node": )" + node_ok +
           R"(, "devices": [{"name": "/d", "capacity_kib": -1}]}]}]})",
       "capacity_kib must be a non-negative integer"},
      {R"({"clusters": [{"nodes": [{"node": )" + node_ok +
           R"(, "devices": [{"name": "/d", "destroydata": "yes"}]}]}]})",
       "destroydata must be a boolean"},
      {R"({"clusters": [{"nodes": [{"node": )" + node_ok + R"(, "devices": ["/d", "/d"]}]}]})",
       "devices[1]: device /d is listed twice"},
      {R"({"clusters": [{"nodes": [{"node": )" + node_ok + R"(}, {"node": {"hostnames":
          {"manage": ["a:24007"], "storage": ["b"]}}}]}]})",
       "clusters[0].nodes[1]: manage host a:24007 is also clusters[0].nodes[0]'s"},
  };
  for (const auto& c : cases) {
    auto t = ParseTopology(c.text);
    ASSERT_FALSE(t.ok()) << c.text;
    EXPECT_TRUE(t.status().IsInvalidArgument());
    EXPECT_NE(t.status().message().find(c.want), std::string::npos)
        << "input: " << c.text << "\nerror: " << t.status().message() << "\nwanted: " << c.want;
  }
}

TEST(CairnctlTopology, ManageHostsCompareWithTheDefaultPort) {
  EXPECT_EQ(NormalizeManageHost("10.0.0.1"), "10.0.0.1:24007");
  EXPECT_EQ(NormalizeManageHost("10.0.0.1:24007"), "10.0.0.1:24007");
  EXPECT_EQ(NormalizeManageHost("n1:25000"), "n1:25000");
  EXPECT_EQ(NormalizeManageHost("[::1]"), "[::1]:24007");
  EXPECT_EQ(NormalizeManageHost("::1"), "[::1]:24007");
}

// ---------------------------------------------------------------------------
// An in-memory API: handlers by "METHOD PATH", every call recorded.

class FakeApi : public Api {
 public:
  using Handler = std::function<StatusOr<json>(const json* body)>;
  void On(const std::string& method_path, Handler h) { handlers_[method_path] = std::move(h); }
  void OnJson(const std::string& method_path, json answer) {
    handlers_[method_path] = [answer](const json*) -> StatusOr<json> { return answer; };
  }
  StatusOr<json> Call(const std::string& method, const std::string& path,
                      const json* body) override {
    calls.push_back(method + " " + path);
    if (body != nullptr) bodies.push_back(*body);
    auto it = handlers_.find(method + " " + path);
    if (it == handlers_.end()) return Status::NotFound("no route " + method + " " + path);
    return it->second(body);
  }
  std::vector<std::string> calls;
  std::vector<json> bodies;

 private:
  std::map<std::string, Handler> handlers_;
};

const std::string kV1 = "0123456789abcdef0123456789abcdef";
const std::string kV2 = "fedcba9876543210fedcba9876543210";

json Volume(const std::string& id, const std::string& name, int size = 1) {
  return {{"id", id},
          {"name", name},
          {"size", size},
          {"state", "ready"},
          {"cluster", "c1"},
          {"durability", {{"type", "replicate"}, {"replicate", {{"replica", 3}}}}},
          {"arbiter", false},
          {"mount",
           {{"cairn",
             {{"source", "127.0.0.2:24007,127.0.0.3:24007:/" + name},
              {"servers", {"127.0.0.2:24007", "127.0.0.3:24007"}}}}}},
          {"bricks",
           {{{"id", "b1"},
             {"node", "n1"},
             {"path", "/d/bricks/b1"},
             {"size", 1048576},
             {"subvolume", 0},
             {"arbiter", false}}}}};
}

TEST(CairnctlTopology, LoadIsIdempotent) {
  FakeApi api;
  // Known: 10.0.0.1 (as host:port) with /srv/d1, in cluster c1.
  api.OnJson("GET /topology",
             {{"clusters",
               {{{"id", "c1"},
                 {"nodes",
                  {{{"id", "n1"},
                    {"cluster", "c1"},
                    {"hostnames", {{"manage", {"10.0.0.1:24007"}}, {"storage", {"192.168.0.1"}}}},
                    {"devices", {{{"id", "d1"}, {"name", "/srv/d1"}}}}}}}}}}});
  int node_count = 0;
  api.On("POST /nodes", [&](const json* body) -> StatusOr<json> {
    return json{{"id", "new" + std::to_string(++node_count)}, {"cluster", body->at("cluster")}};
  });
  api.OnJson("POST /devices", json());
  api.OnJson("POST /clusters", {{"id", "c2"}});
  auto t = ParseTopology(kTopology);
  ASSERT_TRUE(t.ok());
  std::vector<std::string> report;
  Status s = LoadTopology(api, *t, &report);
  ASSERT_TRUE(s.ok()) << s.ToString();
  std::vector<std::string> want = {
      "using cluster c1",
      "skipped node 10.0.0.1: exists (id n1)",
      "skipped device /srv/d1 on 10.0.0.1: exists (id d1)",
      "created device /srv/d2 on 10.0.0.1",
      "created node 10.0.0.2:24007 (id new1, zone 2)",
      "created device /srv/d3 on 10.0.0.2:24007",
      "created cluster c2",
      "created node 10.0.1.1 (id new2, zone 1)",
  };
  EXPECT_EQ(report, want);
  // The requests carry what the file says.
  std::vector<json> posts = api.bodies;
  ASSERT_EQ(posts.size(), 5u);
  EXPECT_EQ(posts[0], json({{"node", "n1"},
                            {"name", "/srv/d2"},
                            {"destroydata", true},
                            {"capacity_kib", 1048576},
                            {"tags", json::object()}}));
  EXPECT_EQ(posts[1]["cluster"], "c1");
  EXPECT_EQ(posts[1]["zone"], 2);
  EXPECT_EQ(posts[1]["hostnames"]["manage"], json({"10.0.0.2:24007"}));
  EXPECT_EQ(posts[1]["hostnames"]["storage"], json({"192.168.0.2"}));
  EXPECT_EQ(posts[1]["tags"], json({{"rack", "r2"}}));
  EXPECT_EQ(posts[2]["node"], "new1");
  EXPECT_EQ(posts[3], json({{"file", true}, {"block", false}}));
  EXPECT_EQ(posts[4]["cluster"], "c2");
}

TEST(CairnctlTopology, LoadStopsAtTheFirstErrorWithContext) {
  FakeApi api;
  api.OnJson("GET /topology", {{"clusters", json::array()}});
  api.OnJson("POST /clusters", {{"id", "c9"}});
  api.OnJson("POST /nodes", {{"id", "n9"}});
  api.On("POST /devices",
         [](const json*) -> StatusOr<json> { return Status::InvalidArgument("no such dir"); });
  auto t = ParseTopology(kTopology);
  ASSERT_TRUE(t.ok());
  std::vector<std::string> report;
  Status s = LoadTopology(api, *t, &report);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.message(), "add device /srv/d1 on 10.0.0.1: no such dir");
  EXPECT_EQ(report.back(), "created node 10.0.0.1 (id n9, zone 1)");
}

// ---------------------------------------------------------------------------
// Names and ids.

TEST(CairnctlResolve, IdsAndNames) {
  FakeApi api;
  api.OnJson("GET /volumes/" + kV1, Volume(kV1, "data"));
  api.OnJson("GET /volumes/" + kV2, Volume(kV2, "logs"));
  api.OnJson("GET /volumes?name=data", {{"volumes", {kV1}}});
  api.OnJson("GET /volumes?name=nothing", {{"volumes", json::array()}});

  auto v = ResolveVolume(api, kV1);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ((*v)["name"], "data");
  EXPECT_EQ(api.calls, std::vector<std::string>{"GET /volumes/" + kV1});

  api.calls.clear();
  v = ResolveVolume(api, "data");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ((*v)["id"], kV1);
  EXPECT_EQ(api.calls, (std::vector<std::string>{"GET /volumes?name=data", "GET /volumes/" + kV1}));

  v = ResolveVolume(api, "nothing");
  EXPECT_TRUE(v.status().IsNotFound());
  EXPECT_EQ(v.status().message(), "no volume named nothing");

  EXPECT_TRUE(ResolveVolume(api, "bad/name").status().IsNotFound());
  EXPECT_TRUE(ResolveVolume(api, "").status().IsInvalidArgument());
}

TEST(CairnctlResolve, HexNamesFallBackToNamesAndServersIgnoringTheQueryWork) {
  FakeApi api;
  const std::string hex_name = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
  api.OnJson("GET /volumes/" + kV1, Volume(kV1, hex_name));
  api.OnJson("GET /volumes/" + kV2, Volume(kV2, "logs"));
  // A Heketi that ignores ?name= lists every volume.
  api.OnJson("GET /volumes?name=" + hex_name, {{"volumes", {kV2, kV1}}});
  api.OnJson("GET /volumes?name=logs", {{"volumes", {kV2, kV1}}});
  auto v = ResolveVolume(api, hex_name);  // not an id: falls back to the name
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ((*v)["id"], kV1);
  v = ResolveVolume(api, "logs");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ((*v)["id"], kV2);
  EXPECT_TRUE(LooksLikeId(kV1));
  EXPECT_FALSE(LooksLikeId("0123456789ABCDEF0123456789ABCDEF"));
  EXPECT_FALSE(LooksLikeId("abc"));
}

TEST(CairnctlResolve, SeveralVolumesOfOneNameAreAnError) {
  FakeApi api;
  api.OnJson("GET /volumes/" + kV1, Volume(kV1, "twin"));
  api.OnJson("GET /volumes/" + kV2, Volume(kV2, "twin"));
  api.OnJson("GET /volumes?name=twin", {{"volumes", {kV1, kV2}}});
  auto v = ResolveVolume(api, "twin");
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.status().message().find(kV1), std::string::npos);
  EXPECT_NE(v.status().message().find(kV2), std::string::npos);
}

TEST(CairnctlResolve, ServerErrorsPassThrough) {
  FakeApi api;
  api.On("GET /volumes?name=x",
         [](const json*) -> StatusOr<json> { return Status::Unavailable("down"); });
  EXPECT_TRUE(ResolveVolume(api, "x").status().IsUnavailable());
}

// ---------------------------------------------------------------------------
// Tables.

TEST(CairnctlTable, AlignsColumns) {
  Table t({"ID", "NAME", "SIZE"});
  t.AddRow({"1", "a-long-name", "10 GiB"});
  t.AddRow({"22", "b"});  // missing cell: empty
  EXPECT_EQ(t.Render(),
            "ID  NAME         SIZE\n"
            "1   a-long-name  10 GiB\n"
            "22  b\n");
  Table u({"Ä", "B"});
  u.AddRow({"xy", "z"});
  EXPECT_EQ(u.Render(), "Ä   B\nxy  z\n");
}

TEST(CairnctlTable, KeyValuesAndSizes) {
  KeyValues kv;
  kv.Add("Id", "x");
  kv.Add("Mount source", "h:/v");
  kv.Add("Empty", "");
  EXPECT_EQ(kv.Render(), "Id:            x\nMount source:  h:/v\nEmpty:\n");
  EXPECT_EQ(HumanKib(0), "0 B");
  EXPECT_EQ(HumanKib(512), "512 KiB");
  EXPECT_EQ(HumanKib(1536), "1.5 MiB");
  EXPECT_EQ(HumanKib(1048576), "1 GiB");
  EXPECT_EQ(HumanKib(100ULL << 20), "100 GiB");
  EXPECT_EQ(HumanGib(3), "3 GiB");
}

TEST(CairnctlTable, Volumes) {
  json a = Volume(kV1, "data", 10);
  json b = Volume(kV2, "arb", 2);
  b["arbiter"] = true;
  json c = Volume("c", "single");
  c["durability"] = {{"type", "none"}};
  EXPECT_EQ(ReplicaText(a), "3");
  EXPECT_EQ(ReplicaText(b), "3 (arbiter)");
  EXPECT_EQ(ReplicaText(c), "1");
  std::string list = RenderVolumeList({a, b});
  EXPECT_EQ(list,
            "ID                                NAME  SIZE    REPLICA      STATE  CLUSTER\n"
            "0123456789abcdef0123456789abcdef  data  10 GiB  3            ready  c1\n"
            "fedcba9876543210fedcba9876543210  arb   2 GiB   3 (arbiter)  ready  c1\n");
  std::string info = RenderVolumeInfo(a);
  EXPECT_NE(info.find("Name:          data\n"), std::string::npos) << info;
  EXPECT_NE(info.find("Mount source:  127.0.0.2:24007,127.0.0.3:24007:/data\n"), std::string::npos)
      << info;
  EXPECT_NE(info.find("b1     n1    0          1 GiB  no       /d/bricks/b1"), std::string::npos)
      << info;
}

TEST(CairnctlTable, HealInfo) {
  json h = {{"volume", "t1"},
            {"id", kV1},
            {"pending", 3},
            {"split_brain",
             {{{"id", "g1"}, {"kind", "data"}, {"bricks", {"b1", "b2"}}, {"detail", "x"}}}},
            {"bricks",
             {{{"brick", "b1"},
               {"address", "127.0.0.2:24009"},
               {"pending", 3},
               {"connected", true},
               {"node", "n1"}},
              {{"brick", "b3"}, {"pending", nullptr}, {"connected", false}, {"node", "n3"}}}},
            {"nodes", {{{"node", "node-2"}, {"reachable", false}, {"error", "unavailable"}}}},
            {"healed_objects", 5},
            {"healed_bytes", 2048}};
  std::string s = RenderHealInfo(h, [](const std::string& id) { return "name-" + id; });
  EXPECT_EQ(s, "volume t1 (" + kV1 +
                   "): 3 pending, 1 in split-brain, 5 objects healed (2 KiB)\n"
                   "BRICK  NODE     ADDRESS          CONNECTED  PENDING  SPLIT-BRAIN\n"
                   "b1     name-n1  127.0.0.2:24009  yes        3        1\n"
                   "b3     name-n3                   no         ?        0\n"
                   "node node-2 unreachable: unavailable\n"
                   "split-brain data g1 on b1,b2: x\n");
}

// ---------------------------------------------------------------------------
// The command line.

TEST(CairnctlPreParse, OutputFormatsMountOptionsAndConfig) {
  auto p = PreParse({"cairnctl", "-o", "json", "volume", "list"});
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->output, "json");
  EXPECT_EQ(p->rest, (std::vector<std::string>{"cairnctl", "volume", "list"}));

  p = PreParse({"cairnctl", "volume", "list", "-ojson", "--config", "/c"});
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->output, "json");
  EXPECT_EQ(p->config, "/c");

  // After `volume mount`, -o is cairn-mount's; a flag's value is not a command word.
  p = PreParse({"cairnctl", "--server", "volume", "volume", "mount", "v", "/m", "-o", "ro", "-o",
                "kernel_cache"});
  ASSERT_TRUE(p.ok());
  EXPECT_FALSE(p->output.has_value());
  EXPECT_EQ(p->mount_options, "ro,kernel_cache");
  EXPECT_EQ(p->rest, (std::vector<std::string>{"cairnctl", "--server", "volume", "volume", "mount",
                                               "v", "/m"}));
  p = PreParse({"cairnctl", "volume", "mount", "v", "/m", "-o", "json"});
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->output, "json");

  EXPECT_FALSE(PreParse({"cairnctl", "volume", "list", "-o"}).ok());
  EXPECT_FALSE(PreParse({"cairnctl", "-x", "volume"}).ok());
}

class CairnctlCli : public ::testing::Test {
 protected:
  void SetUp() override {
    env_.Set("HOME", dir_.path());
    env_.Set("CAIRN_SERVER", "http://127.0.0.1:1");
    env_.Set("CAIRN_KEY", "test-key-0123456789");
    api_.OnJson("GET /volumes", {{"volumes", {kV1, kV2}}});
    api_.OnJson("GET /volumes/" + kV1, Volume(kV1, "data"));
    api_.OnJson("GET /volumes/" + kV2, Volume(kV2, "logs", 5));
    api_.OnJson("GET /volumes?name=data", {{"volumes", {kV1}}});
  }
  int Run(std::vector<std::string> args) {
    args.insert(args.begin(), "cairnctl");
    out_.str("");
    err_.str("");
    CliEnv env;
    env.getenv_fn = env_.Fn();
    env.api = [this](const Settings& s) -> std::unique_ptr<Api> {
      settings_ = s;
      return std::make_unique<Forward>(&api_);
    };
    return RunCli(args, out_, err_, env);
  }
  // Hands calls to the test's FakeApi.
  struct Forward : Api {
    explicit Forward(FakeApi* a) : api(a) {}
    StatusOr<json> Call(const std::string& m, const std::string& p, const json* b) override {
      return api->Call(m, p, b);
    }
    FakeApi* api;
  };

  ScratchDir dir_;
  FakeEnv env_;
  FakeApi api_;
  Settings settings_;
  std::ostringstream out_, err_;
};

TEST_F(CairnctlCli, VolumeListTableAndJson) {
  ASSERT_EQ(Run({"volume", "list"}), 0) << err_.str();
  EXPECT_EQ(out_.str(), RenderVolumeList({Volume(kV1, "data"), Volume(kV2, "logs", 5)}));
  ASSERT_EQ(Run({"volume", "list", "-o", "json"}), 0) << err_.str();
  EXPECT_EQ(json::parse(out_.str()), json({{"volumes", {kV1, kV2}}}));
  EXPECT_EQ(settings_.server, "http://127.0.0.1:1");
  EXPECT_EQ(settings_.key, "test-key-0123456789");
}

TEST_F(CairnctlCli, VolumeCreateSendsTheRequestAndPrintsTheVolume) {
  api_.On("POST /volumes", [](const json* body) -> StatusOr<json> {
    json v = Volume(kV1, body->value("name", "vol_x"), body->at("size").get<int>());
    return v;
  });
  ASSERT_EQ(Run({"volume", "create", "--name", "t1", "--size", "2", "--replica", "3", "--arbiter"}),
            0)
      << err_.str();
  ASSERT_EQ(api_.bodies.size(), 1u);
  EXPECT_EQ(api_.bodies[0],
            json({{"size", 2},
                  {"name", "t1"},
                  {"arbiter", true},
                  {"durability", {{"type", "replicate"}, {"replicate", {{"replica", 3}}}}}}));
  EXPECT_NE(out_.str().find("volume t1 created"), std::string::npos) << out_.str();
  EXPECT_NE(out_.str().find("Id:            " + kV1), std::string::npos) << out_.str();
  EXPECT_NE(out_.str().find("Size:          2 GiB"), std::string::npos);
  EXPECT_NE(out_.str().find("Replica:       3"), std::string::npos);
  EXPECT_NE(out_.str().find("Mount source:  127.0.0.2:24007,127.0.0.3:24007:/t1"),
            std::string::npos);

  api_.bodies.clear();
  ASSERT_EQ(Run({"volume", "create", "--size", "1", "--replica", "1"}), 0) << err_.str();
  EXPECT_EQ(api_.bodies[0]["durability"], json({{"type", "none"}}));
  EXPECT_FALSE(api_.bodies[0].contains("name"));
}

TEST_F(CairnctlCli, NamesAndIdsReachTheRightRoutes) {
  api_.OnJson("DELETE /volumes/" + kV1, json());
  api_.OnJson("POST /volumes/" + kV1 + "/expand", Volume(kV1, "data", 3));
  ASSERT_EQ(Run({"volume", "delete", "data"}), 0) << err_.str();
  EXPECT_EQ(api_.calls.back(), "DELETE /volumes/" + kV1);
  EXPECT_EQ(out_.str(), "volume data (" + kV1 + ") deleted\n");
  ASSERT_EQ(Run({"volume", "expand", kV1, "--size", "2"}), 0) << err_.str();
  EXPECT_EQ(api_.calls.back(), "POST /volumes/" + kV1 + "/expand");
  EXPECT_EQ(api_.bodies.back(), json({{"expand_size", 2}}));
  EXPECT_EQ(out_.str(), "volume data expanded: 1 GiB -> 3 GiB\n");
  ASSERT_EQ(Run({"volume", "info", "data", "-o", "json"}), 0);
  EXPECT_EQ(json::parse(out_.str()), Volume(kV1, "data"));
}

TEST_F(CairnctlCli, ExitCodesAndMessages) {
  EXPECT_EQ(Run({}), 2);
  EXPECT_EQ(Run({"frobnicate"}), 2);
  EXPECT_NE(err_.str().find("unknown command 'frobnicate'"), std::string::npos);
  EXPECT_EQ(Run({"volume", "create", "--name", "x"}), 2);
  EXPECT_NE(err_.str().find("--size is required"), std::string::npos) << err_.str();
  EXPECT_EQ(Run({"volume", "create", "--size", "1", "--replica", "2", "--arbiter"}), 2);
  EXPECT_EQ(Run({"volume", "info"}), 2);
  EXPECT_EQ(Run({"volume", "info", "a", "b"}), 2);
  EXPECT_EQ(Run({"volume", "list", "--size", "3"}), 2);
  EXPECT_NE(err_.str().find("--size does not apply to 'volume list'"), std::string::npos);
  EXPECT_EQ(Run({"volume", "list", "-o", "yaml"}), 2);
  EXPECT_EQ(Run({"volume", "list", "--bogus"}), 2);
  EXPECT_EQ(Run({"topology", "load"}), 2);
  EXPECT_EQ(Run({"--help"}), 0);

  // An API error: its text, exit 1.
  api_.On("POST /volumes", [](const json*) -> StatusOr<json> {
    return Status::AlreadyExists("volume t1 exists with size 5 (asked: 1)");
  });
  EXPECT_EQ(Run({"volume", "create", "--name", "t1", "--size", "1"}), 1);
  EXPECT_EQ(err_.str(), "cairnctl: volume t1 exists with size 5 (asked: 1)\n");
  EXPECT_EQ(Run({"volume", "info", "nothing-here"}), 1);

  // No server anywhere: says how to get one, exit 2.
  FakeEnv bare;
  bare.Set("HOME", dir_.path());
  env_ = bare;
  EXPECT_EQ(Run({"volume", "list"}), 2);
  EXPECT_NE(err_.str().find("cairnctl local up"), std::string::npos) << err_.str();
}

TEST_F(CairnctlCli, TopologyLoadReadsTheFile) {
  std::string path = dir_.path() + "/topo.json";
  ASSERT_TRUE(WriteFileAtomic(path, kTopology).ok());
  api_.OnJson("GET /topology", {{"clusters", json::array()}});
  api_.OnJson("POST /clusters", {{"id", "c1"}});
  int n = 0;
  api_.On("POST /nodes", [&](const json*) -> StatusOr<json> {
    return json{{"id", "n" + std::to_string(++n)}};
  });
  api_.OnJson("POST /devices", json());
  ASSERT_EQ(Run({"topology", "load", "--json", path}), 0) << err_.str();
  EXPECT_NE(out_.str().find("created device /srv/d3 on 10.0.0.2:24007\n"), std::string::npos)
      << out_.str();
  ASSERT_TRUE(WriteFileAtomic(path, R"({"clusters": 3})").ok());
  EXPECT_EQ(Run({"topology", "load", "--json", path}), 2);
  EXPECT_NE(err_.str().find("\"clusters\" must be a list"), std::string::npos);
  EXPECT_EQ(Run({"topology", "load", "--json", dir_.path() + "/missing.json"}), 2);
}

TEST_F(CairnctlCli, NodeAndDeviceCommands) {
  api_.OnJson("GET /nodes", {{"nodes", {"n1"}}});
  api_.OnJson("GET /nodes/n1",
              {{"id", "n1"},
               {"name", "node-0"},
               {"cluster", "c1"},
               {"zone", 1},
               {"state", "online"},
               {"hostnames", {{"manage", {"127.0.0.2:24007"}}, {"storage", {"127.0.0.2"}}}},
               {"devices",
                {{{"id", "d1"},
                  {"name", "/srv/d1"},
                  {"state", "online"},
                  {"storage", {{"total", 1048576}, {"used", 0}, {"free", 1048576}}},
                  {"bricks", json::array()}}}}});
  api_.OnJson("POST /nodes/n1/state", json());
  ASSERT_EQ(Run({"node", "list"}), 0) << err_.str();
  EXPECT_EQ(out_.str(),
            "ID  NAME    ZONE  MANAGE           STORAGE    STATE   DEVICES  CLUSTER\n"
            "n1  node-0  1     127.0.0.2:24007  127.0.0.2  online  1        c1\n");
  ASSERT_EQ(Run({"device", "list"}), 0) << err_.str();
  EXPECT_EQ(out_.str(),
            "ID  NODE    NAME     STATE   TOTAL  USED  FREE   BRICKS\n"
            "d1  node-0  /srv/d1  online  1 GiB  0 B   1 GiB  0\n");
  ASSERT_EQ(Run({"node", "disable", "n1"}), 0) << err_.str();
  EXPECT_EQ(api_.bodies.back(), json({{"state", "offline"}}));
  ASSERT_EQ(Run({"node", "enable", "n1"}), 0);
  EXPECT_EQ(api_.bodies.back(), json({{"state", "online"}}));
  api_.OnJson("POST /devices", json());
  ASSERT_EQ(Run({"device", "add", "--node", "n1", "--name", "/srv/d1", "--capacity", "1"}), 0)
      << err_.str();
  EXPECT_EQ(api_.bodies.back(), json({{"node", "n1"},
                                      {"name", "/srv/d1"},
                                      {"destroydata", false},
                                      {"capacity_kib", 1048576}}));
  EXPECT_EQ(out_.str(), "device /srv/d1 added to node n1 (id d1)\n");
  EXPECT_EQ(Run({"node", "add", "--cluster", "c1", "--manage", "h"}), 2);
}

// ---------------------------------------------------------------------------
// The REST client against a real HTTP server that checks every JWT.

void WaitRunning(httplib::Server& s) {
  for (int i = 0; i < 2000 && !s.is_running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

class CairnctlRest : public ::testing::Test {
 protected:
  static constexpr char kKey[] = "0123456789abcdef0123456789abcdef";

  void SetUp() override {
    // Every request must carry a token for exactly its method and path.
    server_.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard lock(mu_);
      seen_.push_back(req.method + " " + req.path);
      std::string auth = req.get_header_value("Authorization");
      if (auth.rfind("Bearer ", 0) != 0) {
        res.status = 401;
        res.set_content("no token", "text/plain");
        return httplib::Server::HandlerResponse::Handled;
      }
      const int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count();
      auto claims =
          VerifyJwt(auth.substr(7), kKey, {.method = req.method, .path = req.path, .now = now});
      if (!claims.ok()) {
        res.status = 401;
        res.set_content(claims.status().message(), "text/plain");
        return httplib::Server::HandlerResponse::Handled;
      }
      issuers_.push_back((*claims)["iss"].get<std::string>());
      return httplib::Server::HandlerResponse::Unhandled;
    });
    server_.Post("/volumes", [](const httplib::Request& req, httplib::Response& res) {
      json body = json::parse(req.body);
      if (body.value("name", "") == "bad") {
        res.status = 400;
        res.set_content("name must match [A-Za-z0-9_-]{1,100}\n", "text/plain");
        return;
      }
      res.status = 202;
      res.set_header("Location", "/queue/op1");
    });
    server_.Get("/queue/op1", [this](const httplib::Request&, httplib::Response& res) {
      if (++polls_ <= 3) {
        res.status = 200;
        res.set_header("X-Pending", "true");
        return;
      }
      res.status = 303;
      res.set_header("Location", "/volumes/" + kV1);
    });
    server_.Get("/volumes/" + kV1, [](const httplib::Request&, httplib::Response& res) {
      res.set_content(Volume(kV1, "t1").dump(), "application/json");
    });
    server_.Get("/volumes", [](const httplib::Request& req, httplib::Response& res) {
      json ids = json::array();
      if (req.get_param_value("name") == "t1" || !req.has_param("name")) ids.push_back(kV1);
      res.set_content(json({{"volumes", ids}}).dump(), "application/json");
    });
    server_.Delete("/volumes/" + kV1, [](const httplib::Request&, httplib::Response& res) {
      res.status = 202;
      res.set_header("Location", "/queue/op2");
    });
    server_.Get("/queue/op2",
                [](const httplib::Request&, httplib::Response& res) { res.status = 204; });
    server_.Post("/volumes/" + kV1 + "/expand",
                 [](const httplib::Request&, httplib::Response& res) {
                   res.status = 202;
                   res.set_header("Location", "/queue/op3");
                 });
    server_.Get("/queue/op3", [](const httplib::Request&, httplib::Response& res) {
      res.status = 500;
      res.set_content("expand failed: device d1 has 0 bytes left", "text/plain");
    });
    server_.Get("/hello", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("Hello from Cairn (Heketi API)", "text/plain");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    ASSERT_GT(port_, 0);
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    WaitRunning(server_);
    url_ = "http://127.0.0.1:" + std::to_string(port_);
  }
  void TearDown() override {
    server_.stop();
    if (thread_.joinable()) thread_.join();
  }
  std::vector<std::string> Seen() {
    std::lock_guard lock(mu_);
    return seen_;
  }

  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  std::string url_;
  std::mutex mu_;
  std::vector<std::string> seen_;
  std::vector<std::string> issuers_;
  std::atomic<int> polls_{0};
};

TEST_F(CairnctlRest, CreateFollowsTheQueueTo303AndFetchesTheResult) {
  RestClient api(url_, "admin", kKey);
  const auto start = std::chrono::steady_clock::now();
  auto v = api.Post("/volumes", {{"name", "t1"}, {"size", 1}});
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ((*v)["id"], kV1);
  EXPECT_EQ((*v)["mount"]["cairn"]["source"], "127.0.0.2:24007,127.0.0.3:24007:/t1");
  EXPECT_EQ(Seen(),
            (std::vector<std::string>{"POST /volumes", "GET /queue/op1", "GET /queue/op1",
                                      "GET /queue/op1", "GET /queue/op1", "GET /volumes/" + kV1}));
  // Backoff 5, 10, 20 ms: well under a second.
  EXPECT_LT(took, std::chrono::seconds(1));
  std::lock_guard lock(mu_);
  for (const auto& iss : issuers_) EXPECT_EQ(iss, "admin");
}

TEST_F(CairnctlRest, DeleteEndsWith204AndFailuresCarryTheServersText) {
  RestClient api(url_, "user", kKey);
  auto d = api.Delete("/volumes/" + kV1);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_TRUE(d->is_null());

  auto e = api.Post("/volumes/" + kV1 + "/expand", {{"expand_size", 1}});
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().code(), StatusCode::kInternal);
  EXPECT_EQ(e.status().message(), "expand failed: device d1 has 0 bytes left");

  auto bad = api.Post("/volumes", {{"name", "bad"}, {"size", 1}});
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(bad.status().IsInvalidArgument());
  EXPECT_EQ(bad.status().message(), "name must match [A-Za-z0-9_-]{1,100}");

  auto missing = api.Get("/volumes/ffffffffffffffffffffffffffffffff");
  EXPECT_TRUE(missing.status().IsNotFound()) << missing.status().ToString();

  auto hello = api.Get("/hello");
  ASSERT_TRUE(hello.ok());
  EXPECT_EQ(*hello, json("Hello from Cairn (Heketi API)"));
  std::lock_guard lock(mu_);
  for (const auto& iss : issuers_) EXPECT_EQ(iss, "user");
}

TEST_F(CairnctlRest, TheQueryIsNotPartOfTheTokensPath) {
  RestClient api(url_, "admin", kKey);
  auto v = ResolveVolume(api, "t1");
  ASSERT_TRUE(v.ok()) << v.status().ToString();  // the server verified qsh over /volumes
  EXPECT_EQ((*v)["id"], kV1);
}

TEST_F(CairnctlRest, AWrongKeyIsRefusedWithTheReason) {
  RestClient api(url_, "admin", "another-key-another-key");
  auto r = api.Get("/volumes");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnauthenticated);
  EXPECT_NE(r.status().message().find("signature"), std::string::npos) << r.status().message();
}

TEST_F(CairnctlRest, UnreachableServerNamesTheUrl) {
  server_.stop();
  thread_.join();
  RestClient api(url_, "admin", kKey);
  auto r = api.Get("/volumes");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsUnavailable());
  EXPECT_NE(r.status().message().find(url_), std::string::npos) << r.status().message();
}

TEST_F(CairnctlRest, TheWholeCommandLine) {
  ScratchDir dir;
  std::string key_file = dir.Write("admin.key", std::string(kKey) + "\n");
  FakeEnv env;
  env.Set("HOME", dir.path());
  env.Set("HEKETI_CLI_SERVER", url_);
  std::ostringstream out, err;
  int rc = RunCli(
      {"cairnctl", "--key-file", key_file, "volume", "create", "--name", "t1", "--size", "1"}, out,
      err, {.getenv_fn = env.Fn(), .api = {}});
  ASSERT_EQ(rc, 0) << err.str();
  EXPECT_NE(out.str().find("volume t1 created"), std::string::npos) << out.str();
  EXPECT_NE(out.str().find("Mount source:  127.0.0.2:24007,127.0.0.3:24007:/t1"),
            std::string::npos);
  // The server's text and exit 1 on a failed operation.
  out.str("");
  rc = RunCli({"cairnctl", "--key-file", key_file, "volume", "expand", "t1", "--size", "1"}, out,
              err, {.getenv_fn = env.Fn(), .api = {}});
  EXPECT_EQ(rc, 1);
  EXPECT_NE(err.str().find("cairnctl: expand failed: device d1 has 0 bytes left"),
            std::string::npos)
      << err.str();
  // Nothing listening: the URL is named.
  std::ostringstream err2;
  env.Set("CAIRN_SERVER", "http://127.0.0.1:1");
  rc = RunCli({"cairnctl", "--key-file", key_file, "volume", "list"}, out, err2,
              {.getenv_fn = env.Fn(), .api = {}});
  EXPECT_EQ(rc, 1);
  EXPECT_NE(err2.str().find("http://127.0.0.1:1"), std::string::npos) << err2.str();
}

// ---------------------------------------------------------------------------
// local: the pieces that need no cluster.

TEST(CairnctlPieces, FindsBinariesBesideInTheBuildTreeAndOnPath) {
  ScratchDir dir;
  fs::create_directories(dir.path() + "/build/cairnctl");
  fs::create_directories(dir.path() + "/build/fuse");
  fs::create_directories(dir.path() + "/bin");
  auto make_exe = [](const std::string& p) {
    ASSERT_TRUE(WriteFileAtomic(p, "#!/bin/sh\n", 0755).ok());
  };
  make_exe(dir.path() + "/build/fuse/cairn-mount");
  make_exe(dir.path() + "/bin/cairn-mount");
  const std::string exe_dir = dir.path() + "/build/cairnctl";
  auto found = FindBinaryIn(exe_dir, "cairn-mount", "fuse", dir.path() + "/bin");
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(*found, dir.path() + "/build/fuse/cairn-mount");
  make_exe(exe_dir + "/cairn-mount");
  EXPECT_EQ(*FindBinaryIn(exe_dir, "cairn-mount", "fuse", ""), exe_dir + "/cairn-mount");
  EXPECT_EQ(*FindBinaryIn("/nonexistent", "cairn-mount", "fuse", "/x:" + dir.path() + "/bin"),
            dir.path() + "/bin/cairn-mount");
  auto none = FindBinaryIn(exe_dir, "cairn-provisioner", "provisioner", "");
  EXPECT_TRUE(none.status().IsNotFound());
  EXPECT_NE(none.status().message().find("cairn-provisioner"), std::string::npos);
}

TEST(CairnctlPieces, ProcessMatchingAndPorts) {
  const pid_t self = ::getpid();
  auto args = ProcessCmdline(self);
  ASSERT_FALSE(args.empty());
  EXPECT_FALSE(ProcessMatches(self, "storaged", "--state-dir=/x"));
  EXPECT_FALSE(ProcessMatches(self, args[0], "--not-an-arg"));
  EXPECT_FALSE(ProcessMatches(999999999, "storaged", "x"));

  // A port in use is named.
  httplib::Server s;
  int port = s.bind_to_any_port("127.0.0.1");
  ASSERT_GT(port, 0);
  std::thread t([&] { s.listen_after_bind(); });
  WaitRunning(s);
  Status busy = CheckPortFree("127.0.0.1", port, "try --port");
  s.stop();
  t.join();
  ASSERT_FALSE(busy.ok());
  EXPECT_NE(busy.message().find("127.0.0.1:" + std::to_string(port)), std::string::npos);
  EXPECT_NE(busy.message().find("try --port"), std::string::npos);
  EXPECT_TRUE(CheckPortFree("127.0.0.1", 0, "").ok());
}

TEST(CairnctlPieces, DeviceSizeTailAndPaths) {
  ScratchDir dir;
  auto g = DefaultDeviceSizeGib(dir.path(), 3);
  ASSERT_TRUE(g.ok());
  EXPECT_GE(*g, 1);
  EXPECT_LE(*g, 100);
  std::string log = dir.Write("log", "1\n2\n3\n4\n");
  EXPECT_EQ(TailFile(log, 2), "3\n4\n");
  EXPECT_EQ(TailFile(log, 10), "1\n2\n3\n4\n");
  EXPECT_EQ(TailFile(dir.path() + "/none"), "");
  EXPECT_EQ(AbsolutePath("/a/b/../c/"), "/a/c");
  EXPECT_EQ(AbsolutePath("x"), (fs::current_path() / "x").string());
}

TEST(CairnctlPieces, RefusesADirectoryItDidNotMake) {
  ScratchDir dir;
  dir.Write("precious", "data");
  LocalUpOptions up;
  up.dir = dir.path();
  up.context_path = dir.path() + "/config";
  std::ostringstream out;
  Status s = LocalUp(up, out);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("not a cairnctl local cluster directory"), std::string::npos);
  LocalDownOptions down;
  down.dir = dir.path();
  down.purge = true;
  EXPECT_FALSE(LocalDown(down, out).ok());
  EXPECT_TRUE(fs::exists(dir.path() + "/precious"));
}

}  // namespace
}  // namespace cairn::ctl
