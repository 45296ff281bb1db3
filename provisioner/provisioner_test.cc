// The provisioner against real storaged nodes: volume lifecycle through the
// REST API, mounts of what it creates, idempotency, expansion, restart.
#include <gtest/gtest.h>
#include <httplib.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <set>
#include <thread>

#include "tests/node_cluster.h"
#include "tests/provisioner_util.h"

namespace cairn::test {
namespace {

using nlohmann::json;

class ProvisionerTest : public ::testing::Test {
 protected:
  void StartAll(int nodes = 3, uint64_t device_gib = 20, std::vector<int> zones = {}) {
    auto c = NodeCluster::Start(
        {.nodes = nodes, .device_capacity = device_gib << 30, .create_volume = false});
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    nodes_ = std::move(*c);
    auto p = ProvisionerProcess::Start(*nodes_);
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    prov_ = std::move(*p);
    Status s = prov_->RegisterAll(zones);
    ASSERT_TRUE(s.ok()) << s.ToString() << "\n" << prov_->Log();
  }

  ProvisionerHttp& http() { return prov_->http(); }

  // Creates a volume and returns its info (fails the test otherwise).
  json Create(const json& body) {
    HttpReply r = http().Call("POST", "/volumes", body.dump());
    EXPECT_EQ(r.status, 202) << r.body;
    HttpReply v = http().Follow(r);
    EXPECT_EQ(v.status, 200) << v.body << "\n" << prov_->Log();
    return v.Json();
  }

  // Bricks (ids) on node i according to its storaged.
  std::set<std::string> NodeBricks(int i) {
    auto r = nodes_->client(i).Call(&spb::Storaged::Stub::ListBricks, spb::ListBricksRequest());
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    std::set<std::string> out;
    if (r.ok()) {
      for (const auto& b : r->bricks()) out.insert(b.brick_id());
    }
    return out;
  }
  std::set<std::string> NodeSpecs(int i) {
    auto r = nodes_->client(i).Call(&spb::Storaged::Stub::ListVolumeSpecs,
                                    spb::ListVolumeSpecsRequest());
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    std::set<std::string> out;
    if (r.ok()) {
      for (const auto& s : r->specs()) out.insert(s.name());
    }
    return out;
  }

  std::unique_ptr<NodeCluster> nodes_;
  std::unique_ptr<ProvisionerProcess> prov_;
};

TEST_F(ProvisionerTest, CreateMountWriteReadDelete) {
  StartAll();
  json v = Create({{"name", "vol1"}, {"size", 2}});
  ASSERT_EQ(v.value("name", ""), "vol1");
  EXPECT_EQ(v.value("size", 0), 2);
  EXPECT_EQ(v.value("state", ""), "ready");
  ASSERT_EQ(v["bricks"].size(), 3u);
  std::set<std::string> brick_nodes;
  for (const auto& b : v["bricks"]) {
    brick_nodes.insert(b["node"].get<std::string>());
    EXPECT_EQ(b["size"].get<uint64_t>(), 2u << 20);  // KiB
  }
  EXPECT_EQ(brick_nodes.size(), 3u) << "replicas share a node: " << v.dump();
  // Every node holds one brick and the spec.
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(NodeBricks(i).size(), 1u) << i;
    EXPECT_TRUE(NodeSpecs(i).count("vol1")) << i;
  }
  // Mount what the volume info says and use it.
  const std::string source = v["mount"]["cairn"]["source"].get<std::string>();
  auto m = nodes_->Mount({}, source);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  const std::string file = (*m)->path() + "/hello.txt";
  { std::ofstream(file) << "hello from the provisioner\n"; }
  std::ifstream in(file);
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "hello from the provisioner");
  struct statvfs st {};
  ASSERT_EQ(::statvfs((*m)->path().c_str(), &st), 0);
  const double gib = static_cast<double>(st.f_blocks) * st.f_frsize / (1 << 30);
  EXPECT_NEAR(gib, 2.0, 0.1);
  m->reset();

  // Same name, same size: the same volume. Other size: 409.
  json again = Create({{"name", "vol1"}, {"size", 2}});
  EXPECT_EQ(again.value("id", ""), v.value("id", ""));
  HttpReply conflict = http().Call("POST", "/volumes", json{{"name", "vol1"}, {"size", 3}}.dump());
  EXPECT_EQ(conflict.status, 409) << conflict.body;

  // Delete: 202 → 204; bricks and specs gone from every node.
  HttpReply d = http().Call("DELETE", "/volumes/" + v["id"].get<std::string>());
  ASSERT_EQ(d.status, 202) << d.body;
  EXPECT_EQ(http().Follow(d).status, 204);
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(NodeBricks(i).empty()) << i;
    EXPECT_FALSE(NodeSpecs(i).count("vol1")) << i;
  }
  EXPECT_EQ(http().Call("GET", "/volumes/" + v["id"].get<std::string>()).status, 404);
}

TEST_F(ProvisionerTest, ExpandInPlaceThenWithANewReplicaSet) {
  StartAll(3, 8);
  json v = Create({{"name", "grow"}, {"size", 3}});
  const std::string id = v["id"];
  auto m = nodes_->Mount({}, v["mount"]["cairn"]["source"].get<std::string>());
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  auto df_gib = [&] {
    struct statvfs st {};
    EXPECT_EQ(::statvfs((*m)->path().c_str(), &st), 0);
    return static_cast<double>(st.f_blocks) * st.f_frsize / (1 << 30);
  };
  EXPECT_NEAR(df_gib(), 3.0, 0.1);
  // In place: 3 → 5 GiB, same bricks, bigger.
  HttpReply e = http().Call("POST", "/volumes/" + id + "/expand", json{{"expand_size", 2}}.dump());
  ASSERT_EQ(e.status, 202) << e.body;
  json v2 = http().Follow(e).Json();
  EXPECT_EQ(v2.value("size", 0), 5);
  ASSERT_EQ(v2["bricks"].size(), 3u);
  for (const auto& b : v2["bricks"]) EXPECT_EQ(b["size"].get<uint64_t>(), 5u << 20);
  auto bricks = nodes_->client(0).Call(&spb::Storaged::Stub::ListBricks, spb::ListBricksRequest());
  ASSERT_TRUE(bricks.ok());
  ASSERT_EQ(bricks->bricks_size(), 1);
  EXPECT_EQ(bricks->bricks(0).capacity_bytes(), 5ull << 30);
  // The mounted client sees it without a remount.
  EXPECT_NEAR(df_gib(), 5.0, 0.1);
  m->reset();
  // A second device on every node, Heketi's way (POST /devices → 202 → 204).
  for (int i = 0; i < 3; ++i) {
    const std::string dir = nodes_->dir().Sub("extra" + std::to_string(i));
    ASSERT_EQ(::mkdir(dir.c_str(), 0755), 0);
    json node = http().Call("GET", "/volumes/" + id).Json()["bricks"][i];
    HttpReply d =
        http().Call("POST", "/devices",
                    json{{"node", node["node"]}, {"name", dir}, {"capacity_kib", 8u << 20}}.dump());
    ASSERT_EQ(d.status, 202) << d.body;
    ASSERT_EQ(http().Follow(d).status, 204) << prov_->Log();
  }
  // 4 more GiB do not fit the first devices in place (9 > 8): a second
  // replica set on the new devices.
  e = http().Call("POST", "/volumes/" + id + "/expand", json{{"expand_size", 4}}.dump());
  ASSERT_EQ(e.status, 202) << e.body;
  json v3 = http().Follow(e).Json();
  EXPECT_EQ(v3.value("size", 0), 9);
  EXPECT_EQ(v3["bricks"].size(), 6u) << v3.dump();
  EXPECT_EQ(v3.value("generation", 0), 3);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(NodeBricks(i).size(), 2u) << i;
  // Too much for what is left: 507 with the reason, nothing changed.
  e = http().Call("POST", "/volumes/" + id + "/expand", json{{"expand_size", 100}}.dump());
  EXPECT_EQ(e.status, 507) << e.body;
  EXPECT_EQ(http().Call("GET", "/volumes/" + id).Json().value("size", 0), 9);
}

TEST_F(ProvisionerTest, RestartKeepsEverything) {
  StartAll();
  json a = Create({{"name", "keep-a"}, {"size", 1}});
  json b = Create({{"name", "keep-b"}, {"size", 1}, {"arbiter", true}});
  auto st = prov_->Stop();
  ASSERT_TRUE(st.ok());
  ASSERT_TRUE(prov_->Restart().ok()) << prov_->Log();
  json list = http().Call("GET", "/volumes").Json();
  EXPECT_EQ(list["volumes"].size(), 2u) << list.dump();
  json a2 = http().Call("GET", "/volumes/" + a["id"].get<std::string>()).Json();
  EXPECT_EQ(a2.dump(), a.dump());
  json b2 = Create({{"name", "keep-b"}, {"size", 1}, {"arbiter", true}});
  EXPECT_EQ(b2.value("id", ""), b.value("id", ""));
  EXPECT_TRUE(b2.value("arbiter", false));
}

TEST_F(ProvisionerTest, SigtermIsPromptWhileANodeIsDown) {
  StartAll();
  Create({{"name", "x"}, {"size", 1}});
  ASSERT_TRUE(nodes_->KillNode(2).ok());
  // The restart's reconciliation waits on the dead node (5 s timeout here).
  ASSERT_TRUE(prov_->Restart().ok()) << prov_->Log();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const auto t0 = std::chrono::steady_clock::now();
  auto st = prov_->Stop();
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_TRUE(WIFEXITED(*st) && WEXITSTATUS(*st) == 0) << *st;
  EXPECT_LT(secs, 2.0) << prov_->Log();
}

TEST_F(ProvisionerTest, ServesHttpsWhenGivenACertificate) {
  auto c = NodeCluster::Start({.nodes = 1, .create_volume = false});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  nodes_ = std::move(*c);
  const std::string cert = nodes_->dir().Sub("cert.pem"), key = nodes_->dir().Sub("key.pem");
  const std::string cmd =
      "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 "
      "-keyout " +
      key + " -out " + cert + " >/dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  auto p = ProvisionerProcess::Start(*nodes_, {"--tls-cert=" + cert, "--tls-key=" + key});
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  prov_ = std::move(*p);
  ASSERT_EQ(prov_->url().rfind("https://", 0), 0u) << prov_->url();
  const int port = std::stoi(prov_->url().substr(prov_->url().rfind(':') + 1));
  httplib::SSLClient tls("127.0.0.1", port);
  tls.set_ca_cert_path(cert.c_str());
  tls.enable_server_certificate_verification(true);
  auto hello = tls.Get("/hello");
  ASSERT_TRUE(hello) << httplib::to_string(hello.error());
  EXPECT_EQ(hello->status, 200);
  // Authenticated routes work over TLS; without a token they are refused.
  httplib::Headers h = {{"Authorization", "Bearer " + http().Token("admin", "GET", "/clusters")}};
  auto clusters = tls.Get("/clusters", h);
  ASSERT_TRUE(clusters);
  EXPECT_EQ(clusters->status, 200) << clusters->body;
  auto anon = tls.Get("/clusters");
  ASSERT_TRUE(anon);
  EXPECT_EQ(anon->status, 401);
  // Plain HTTP to the TLS port gets no answer.
  httplib::Client plain("127.0.0.1", port);
  plain.set_read_timeout(2);
  auto r = plain.Get("/hello");
  EXPECT_TRUE(!r || r->status != 200);
}

}  // namespace
}  // namespace cairn::test
