// The provisioner's REST API route by route (docs/provisioner.md "Routes"),
// against a real cairn-provisioner on real storaged nodes: good and bad input,
// authentication, Heketi's cluster/node/device flow, parallel creates that
// exhaust the capacity, idempotent creates under concurrency, placement.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <fstream>
#include <map>
#include <mutex>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "common/jwt.h"
#include "tests/node_cluster.h"
#include "tests/provisioner_util.h"

namespace cairn::test {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;
constexpr auto npos = std::string::npos;
constexpr uint64_t kGibKib = 1 << 20;

// The reply as a JSON object ({} when it is not one), never throwing.
// j[k] by value (safe in a range-for over a temporary), null when absent.
json Field(const json& j, const char* k) { return j.is_object() && j.contains(k) ? j[k] : json(); }

json Obj(const HttpReply& r) {
  json j = r.Json();
  return j.is_object() ? j : json::object();
}

std::string Show(const HttpReply& r) {
  std::string s = "HTTP " + std::to_string(r.status);
  if (!r.Header("Location").empty()) s += " Location: " + r.Header("Location");
  return s + " body: " + r.body.substr(0, 2000);
}

std::string Unknown() { return "0123456789abcdef0123456789abcdef"; }

class ProvisionerApiTest : public ::testing::Test {
 protected:
  void StartNodes(int nodes, uint64_t device_gib) {
    auto c = NodeCluster::Start(
        {.nodes = nodes, .device_capacity = device_gib << 30, .create_volume = false});
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    nodes_ = std::move(*c);
  }
  void StartProvisioner(const std::vector<std::string>& extra = {}) {
    auto p = ProvisionerProcess::Start(*nodes_, extra);
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    prov_ = std::move(*p);
  }
  // Nodes, provisioner, and every node registered (zones[i], default 1).
  void StartAll(int nodes, uint64_t device_gib, const std::vector<int>& zones = {}) {
    ASSERT_NO_FATAL_FAILURE(StartNodes(nodes, device_gib));
    ASSERT_NO_FATAL_FAILURE(StartProvisioner());
    Status s = prov_->RegisterAll(zones);
    ASSERT_TRUE(s.ok()) << s.ToString() << "\n" << prov_->Log();
  }

  ProvisionerHttp& http() { return prov_->http(); }

  // POST /nodes/register for node i, as storaged does it.
  HttpReply Register(int i, int zone = 1, const std::string& iss = "node",
                     const std::string& name = "") {
    json body = {{"name", name.empty() ? "node" + std::to_string(i) : name},
                 {"manage", nodes_->api_address(i)},
                 {"storage", nodes_->host(i)},
                 {"zone", zone}};
    return http().Call("POST", "/nodes/register", body.dump(), iss);
  }

  // Creates a volume and returns its info; fails the test otherwise.
  json Create(const json& body, const std::string& iss = "admin") {
    HttpReply r = http().Call("POST", "/volumes", body.dump(), iss);
    EXPECT_EQ(r.status, 202) << body.dump() << " → " << Show(r);
    if (r.status != 202) return json::object();
    HttpReply v = http().Follow(r, iss);
    EXPECT_EQ(v.status, 200) << body.dump() << " → " << Show(v) << "\n" << prov_->Log();
    return Obj(v);
  }

  // Follows an async reply that must end in 204.
  void ExpectDone204(const HttpReply& accepted, const std::string& what) {
    ASSERT_EQ(accepted.status, 202) << what << ": " << Show(accepted);
    EXPECT_EQ(accepted.Header("Location").rfind("/queue/", 0), 0u) << what;
    HttpReply f = http().Follow(accepted);
    EXPECT_EQ(f.status, 204) << what << ": " << Show(f) << "\n" << prov_->Log();
  }

  void Delete(const std::string& volume_id) {
    HttpReply d = http().Call("DELETE", "/volumes/" + volume_id);
    ExpectDone204(d, "delete volume " + volume_id);
  }

  json Get(const std::string& path) {
    HttpReply r = http().Call("GET", path);
    EXPECT_EQ(r.status, 200) << path << ": " << Show(r);
    return Obj(r);
  }

  // node id (provisioner) → node index, from the manage addresses.
  std::map<std::string, int> NodeIndex() {
    std::map<std::string, int> out;
    for (const auto& id : Field(Get("/nodes"), "nodes")) {
      json n = Get("/nodes/" + id.get<std::string>());
      for (int i = 0; i < nodes_->nodes(); ++i) {
        if (n["hostnames"]["manage"][0] == nodes_->api_address(i)) out[id] = i;
      }
    }
    return out;
  }

  // storaged's view of node i's devices.
  std::vector<spb::Device> NodeDevices(int i) {
    auto r = nodes_->client(i).Call(&spb::Storaged::Stub::ListDevices, spb::ListDevicesRequest());
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    std::vector<spb::Device> out;
    if (r.ok()) out.assign(r->devices().begin(), r->devices().end());
    return out;
  }
  std::set<std::string> NodeBricks(int i) {
    auto r = nodes_->client(i).Call(&spb::Storaged::Stub::ListBricks, spb::ListBricksRequest());
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    std::set<std::string> out;
    if (r.ok()) {
      for (const auto& b : r->bricks()) out.insert(b.brick_id());
    }
    return out;
  }

  // Mounts the volume as its info says, writes a file, reads it back, unmounts.
  // Call from one thread per mount (the mount's child is tied to its thread).
  void MountWriteRead(const json& info) {
    const std::string name = info.value("name", "");
    const std::string source = info["mount"]["cairn"].value("source", "");
    ASSERT_FALSE(source.empty()) << info.dump();
    auto m = nodes_->Mount({}, source);
    ASSERT_TRUE(m.ok()) << name << ": " << m.status().ToString();
    const std::string file = (*m)->Path("probe.txt");
    const std::string text = "written to " + name + "\n";
    {
      std::ofstream out(file);
      out << text;
      out.close();
      EXPECT_TRUE(out.good()) << name << ": write " << file;
    }
    {
      std::ifstream in(file);  // closed before the unmount (else: busy)
      std::stringstream got;
      got << in.rdbuf();
      EXPECT_EQ(got.str(), text) << name;
    }
    Status u = (*m)->Unmount();
    EXPECT_TRUE(u.ok()) << name << ": " << u.ToString();
  }

  std::unique_ptr<NodeCluster> nodes_;
  std::unique_ptr<ProvisionerProcess> prov_;
};

// ---------------------------------------------------------------------------
// Unauthenticated routes, metrics, unknown routes.

TEST_F(ProvisionerApiTest, HelloHealthzMetricsWithoutAndWithAuth) {
  ASSERT_NO_FATAL_FAILURE(StartAll(3, 10));
  HttpReply hello = http().Call("GET", "/hello", "", "");
  EXPECT_EQ(hello.status, 200) << Show(hello);
  EXPECT_NE(hello.body.find("Hello from Cairn (Heketi API)"), npos) << hello.body;
  HttpReply health = http().Call("GET", "/healthz", "", "");
  EXPECT_EQ(health.status, 200) << Show(health);

  // /metrics on the main port needs the admin.
  EXPECT_EQ(http().Call("GET", "/metrics", "", "").status, 401);
  EXPECT_EQ(http().Call("GET", "/metrics", "", "user").status, 401);
  EXPECT_EQ(http().Call("GET", "/metrics", "", "node").status, 401);
  json v = Create({{"name", "metered"}, {"size", 1}});
  HttpReply m = http().Call("GET", "/metrics");
  ASSERT_EQ(m.status, 200) << Show(m);
  EXPECT_EQ(m.Header("Content-Type").rfind("text/plain", 0), 0u) << m.Header("Content-Type");
  EXPECT_NE(m.body.find("# TYPE cairn_provisioner_volumes gauge"), npos) << m.body;
  EXPECT_NE(m.body.find("cairn_provisioner_volumes{state=\"ready\"} 1\n"), npos) << m.body;
  EXPECT_NE(m.body.find("cairn_provisioner_nodes 3\n"), npos) << m.body;
  EXPECT_NE(m.body.find("cairn_provisioner_http_requests_total"), npos) << m.body;
  // Requests are counted per route: the queue and volume ids become {id}.
  EXPECT_NE(m.body.find("route=\"GET /queue/{id}\""), npos) << m.body;
  EXPECT_EQ(m.body.find(v.value("id", "-")), npos) << m.body;

  // An unknown route: 404 (after authentication).
  EXPECT_EQ(http().Call("GET", "/no/such/route").status, 404);
  EXPECT_EQ(http().Call("GET", "/no/such/route", "", "").status, 401);
}

// ---------------------------------------------------------------------------
// Authentication: every way a token can be wrong, and the roles.

TEST_F(ProvisionerApiTest, TokensAreCheckedAndRolesEnforced) {
  ASSERT_NO_FATAL_FAILURE(StartAll(3, 10));
  ProvisionerHttp& h = http();
  const std::vector<std::string> keys = {h.key("admin"), h.key("user"), h.key("node")};
  auto expect401 = [&](const HttpReply& r, const std::string& what, const std::string& reason) {
    EXPECT_EQ(r.status, 401) << what << ": " << Show(r);
    if (!reason.empty()) {
      EXPECT_NE(r.body.find(reason), npos) << what << ": " << r.body;
    }
    for (const auto& k : keys) EXPECT_EQ(r.body.find(k), npos) << what << ": the key leaked";
  };
  const int64_t now = static_cast<int64_t>(std::time(nullptr));
  auto claims = [&](const std::string& iss, const std::string& method, const std::string& path) {
    return json{{"iss", iss}, {"iat", now}, {"exp", now + 300}, {"qsh", JwtQsh(method, path)}};
  };
  auto get_volumes = [&](const std::string& authorization) {
    return h.CallWithAuth("GET", "/volumes", "", authorization);
  };

  // A valid admin token works; the baseline.
  EXPECT_EQ(get_volumes("Bearer " + h.Token("admin", "GET", "/volumes")).status, 200);

  expect401(get_volumes(""), "no header", "Authorization");
  expect401(get_volumes("Basic YWRtaW46c2VjcmV0"), "basic auth", "Bearer");
  expect401(get_volumes("Bearer "), "empty bearer", "");
  expect401(get_volumes("Bearer not-a-jwt"), "garbage", "");
  expect401(get_volumes("Bearer a.b.c"), "garbage parts", "");

  // exp: more than 120 s ago is expired; 60 s ago is within the leeway.
  expect401(get_volumes("Bearer " + h.Token("admin", "GET", "/volumes", -600, -200)),
            "expired 200 s ago", "expired");
  EXPECT_EQ(get_volumes("Bearer " + h.Token("admin", "GET", "/volumes", -600, -60)).status, 200);
  // No exp at all.
  json no_exp = claims("admin", "GET", "/volumes");
  no_exp.erase("exp");
  expect401(get_volumes("Bearer " + SignJwt(h.key("admin"), no_exp)), "no exp", "exp");
  // iat: more than 120 s in the future is refused; 60 s is within the leeway.
  expect401(get_volumes("Bearer " + h.Token("admin", "GET", "/volumes", 300, 900)),
            "issued in the future", "future");
  EXPECT_EQ(get_volumes("Bearer " + h.Token("admin", "GET", "/volumes", 60, 300)).status, 200);

  // Wrongly signed: another key, or the user key claiming to be the admin.
  expect401(get_volumes("Bearer " + SignJwt("an-entirely-different-key-0123",
                                            claims("admin", "GET", "/volumes"))),
            "other key", "signature");
  expect401(get_volumes("Bearer " + SignJwt(h.key("user"), claims("admin", "GET", "/volumes"))),
            "user key as admin", "signature");
  // A tampered payload (claims swapped under a valid signature).
  {
    std::string t = h.Token("user", "GET", "/volumes");
    std::string admin_payload = Base64UrlEncode(claims("admin", "GET", "/volumes").dump());
    auto d1 = t.find('.'), d2 = t.rfind('.');
    std::string forged = t.substr(0, d1 + 1) + admin_payload + t.substr(d2);
    expect401(get_volumes("Bearer " + forged), "tampered payload", "signature");
  }
  // alg none, with and without a signature part.
  {
    const std::string body = Base64UrlEncode(claims("admin", "GET", "/volumes").dump());
    const std::string none = Base64UrlEncode(R"({"alg":"none","typ":"JWT"})");
    expect401(get_volumes("Bearer " + none + "." + body + "."), "alg none", "alg");
    const std::string hs512 = Base64UrlEncode(R"({"alg":"HS512","typ":"JWT"})");
    std::string t = SignJwt(h.key("admin"), claims("admin", "GET", "/volumes"));
    expect401(get_volumes("Bearer " + hs512 + t.substr(t.find('.'))), "alg HS512", "alg");
  }
  // qsh: a token for another method or another path.
  expect401(get_volumes("Bearer " + h.Token("admin", "POST", "/volumes")), "qsh other method",
            "qsh");
  expect401(get_volumes("Bearer " + h.Token("admin", "GET", "/clusters")), "qsh other path", "qsh");
  expect401(h.CallWithAuth("DELETE", "/volumes/" + Unknown(), "",
                           "Bearer " + h.Token("admin", "GET", "/volumes/" + Unknown())),
            "qsh GET for DELETE", "qsh");
  expect401(h.CallWithAuth("POST", "/volumes", R"({"size":1})",
                           "Bearer " + h.Token("admin", "POST", "/volumes/")),
            "qsh trailing slash", "qsh");
  {
    json no_qsh = claims("admin", "GET", "/volumes");
    no_qsh.erase("qsh");
    expect401(get_volumes("Bearer " + SignJwt(h.key("admin"), no_qsh)), "no qsh", "qsh");
  }
  // The query string is not part of qsh.
  EXPECT_EQ(
      h.CallWithAuth("GET", "/volumes?name=x", "", "Bearer " + h.Token("admin", "GET", "/volumes"))
          .status,
      200);
  // Unknown or missing issuer.
  expect401(get_volumes("Bearer " + SignJwt(h.key("admin"), claims("root", "GET", "/volumes"))),
            "iss root", "issuer");
  {
    json no_iss = claims("admin", "GET", "/volumes");
    no_iss.erase("iss");
    expect401(get_volumes("Bearer " + SignJwt(h.key("admin"), no_iss)), "no iss", "");
  }

  // The user key: volume routes and the queue only.
  for (const auto& [method, path] : std::vector<std::pair<std::string, std::string>>{
           {"GET", "/clusters"},
           {"POST", "/clusters"},
           {"GET", "/clusters/" + Unknown()},
           {"GET", "/nodes"},
           {"POST", "/nodes"},
           {"GET", "/nodes/" + Unknown()},
           {"POST", "/nodes/register"},
           {"POST", "/devices"},
           {"GET", "/devices/" + Unknown()},
           {"DELETE", "/devices/" + Unknown()},
           {"GET", "/topology"},
           {"GET", "/metrics"},
       }) {
    expect401(h.Call(method, path, "{}", "user"), "user " + method + " " + path, "user may not");
  }
  EXPECT_EQ(h.Call("GET", "/volumes", "", "user").status, 200);
  json v = Create({{"name", "users-volume"}, {"size", 1}}, "user");
  ASSERT_TRUE(v.contains("id")) << v.dump();
  const std::string id = v["id"];
  EXPECT_EQ(h.Call("GET", "/volumes/" + id, "", "user").status, 200);
  EXPECT_EQ(h.Call("GET", "/volumes?name=users-volume", "", "user").status, 200);
  EXPECT_EQ(h.Call("GET", "/volumes/" + id + "/heal", "", "user").status, 200);
  HttpReply e = h.Call("POST", "/volumes/" + id + "/expand", R"({"expand_size":1})", "user");
  ASSERT_EQ(e.status, 202) << Show(e);
  EXPECT_EQ(h.Follow(e, "user").status, 200);
  HttpReply d = h.Call("DELETE", "/volumes/" + id, "", "user");
  ASSERT_EQ(d.status, 202) << Show(d);
  EXPECT_EQ(h.Follow(d, "user").status, 204);  // /queue/… with the user key

  // The node key: registration only; registration: the node key or the admin.
  for (const auto& [method, path] : std::vector<std::pair<std::string, std::string>>{
           {"GET", "/volumes"},
           {"POST", "/volumes"},
           {"GET", "/clusters"},
           {"GET", "/nodes"},
           {"POST", "/nodes"},
           {"GET", "/queue/" + Unknown()},
           {"GET", "/metrics"},
       }) {
    expect401(h.Call(method, path, R"({"size":1})", "node"), "node " + method + " " + path, "");
  }
  HttpReply reg = Register(0, 1, "node");
  EXPECT_EQ(reg.status, 200) << Show(reg);
  EXPECT_EQ(Register(0, 1, "admin").status, 200);
  expect401(Register(0, 1, "user"), "user registers", "");
  expect401(Register(0, 1, ""), "anonymous registers", "");
  // A registration with a token for another path.
  expect401(h.CallWithAuth("POST", "/nodes/register", "{}",
                           "Bearer " + h.Token("node", "POST", "/nodes")),
            "node token for /nodes", "");
}

// ---------------------------------------------------------------------------
// Volume create: every kind of bad input.

TEST_F(ProvisionerApiTest, VolumeCreateRejectsBadInput) {
  ASSERT_NO_FATAL_FAILURE(StartAll(3, 10));
  struct Case {
    std::string body;
    int code;
    std::string reason;  // a substring of the error text
  };
  const std::string too_long = json{{"size", 1}, {"name", std::string(101, 'a')}}.dump();
  const std::vector<Case> cases = {
      // Not JSON: 422.
      {R"({"size":)", 422, "JSON"},
      {"size=1", 422, "JSON"},
      {R"({"size":1,})", 422, "JSON"},
      // Not an object.
      {"", 400, "object"},
      {"[1,2,3]", 400, "object"},
      {R"("size")", 400, "object"},
      {"null", 400, "object"},
      // size: an integer number of GiB, 1 … 1048576.
      {"{}", 400, "size"},
      {R"({"size":"1"})", 400, "size"},
      {R"({"size":1.5})", 400, "size"},
      {R"({"size":1.0})", 400, "size"},
      {R"({"size":null})", 400, "size"},
      {R"({"size":true})", 400, "size"},
      {R"({"size":[1]})", 400, "size"},
      {R"({"size":0})", 400, "size"},
      {R"({"size":-1})", 400, "size"},
      {R"({"size":-9223372036854775808})", 400, "size"},
      {R"({"size":1048577})", 400, "size"},
      {R"({"size":18446744073709551615})", 400, "size"},
      {R"({"size":1e30})", 400, "size"},
      {R"({"size":123456789012345678901234567890})", 400, "size"},
      // name: [A-Za-z0-9_-]{1,100}.
      {R"({"size":1,"name":"a b"})", 400, "name"},
      {R"({"size":1,"name":"x/y"})", 400, "name"},
      {R"({"size":1,"name":"../etc"})", 400, "name"},
      {R"({"size":1,"name":"vol.1"})", 400, "name"},
      {R"({"size":1,"name":"caf\u00e9"})", 400, "name"},
      {R"({"size":1,"name":"nul\u0000"})", 400, "name"},
      {R"({"size":1,"name":123})", 400, "name"},
      {R"({"size":1,"name":["a"]})", 400, "name"},
      {too_long, 400, "name"},
      // durability.
      {R"({"size":1,"durability":"replicate"})", 400, "durability"},
      {R"({"size":1,"durability":3})", 400, "durability"},
      {R"({"size":1,"durability":{"type":5}})", 400, "durability"},
      {R"({"size":1,"durability":{"type":null}})", 400, "durability"},
      {R"({"size":1,"durability":{"type":["replicate"]}})", 400, "durability"},
      {R"({"size":1,"durability":{"type":"mirror"}})", 400, "durability"},
      {R"({"size":1,"durability":{"type":"disperse","disperse":{"data":4,"redundancy":2}}})", 400,
       "disperse volumes are not supported"},
      {R"({"size":1,"durability":{"type":"replicate","replicate":3}})", 400, "replicate"},
      {R"({"size":1,"durability":{"type":"replicate","replicate":{"replica":"3"}}})", 400,
       "replica"},
      {R"({"size":1,"durability":{"type":"replicate","replicate":{"replica":2.5}}})", 400,
       "replica"},
      {R"({"size":1,"durability":{"type":"replicate","replicate":{"replica":0}}})", 400, "replica"},
      {R"({"size":1,"durability":{"type":"replicate","replicate":{"replica":-3}}})", 400,
       "replica"},
      {R"({"size":1,"durability":{"type":"replicate","replicate":{"replica":17}}})", 400,
       "replica"},
      // A volume spec holds at most 5 replicas.
      {R"({"size":1,"durability":{"type":"replicate","replicate":{"replica":6}}})", 400, "replica"},
      {R"({"size":1,"durability":{"type":"replicate","replicate":{"replica":4294967299}}})", 400,
       "replica"},
      // arbiter: replica 3 only, a boolean.
      {R"({"size":1,"arbiter":true,"durability":{"type":"replicate","replicate":{"replica":2}}})",
       400, "arbiter"},
      {R"({"size":1,"arbiter":true,"durability":{"type":"none"}})", 400, "arbiter"},
      {R"({"size":1,"glustervolumeoptions":["user.heketi.arbiter true"],)"
       R"("durability":{"type":"replicate","replicate":{"replica":2}}})",
       400, "arbiter"},
      {R"({"size":1,"arbiter":"yes"})", 400, "arbiter"},
      {R"({"size":1,"arbiter":1})", 400, "arbiter"},
      {R"({"size":1,"glustervolumeoptions":"user.heketi.arbiter true"})", 400,
       "glustervolumeoptions"},
      {R"({"size":1,"glustervolumeoptions":[1]})", 400, "glustervolumeoptions"},
      // clusters.
      {R"({"size":1,"clusters":"abc"})", 400, "clusters"},
      {R"({"size":1,"clusters":[1]})", 400, "clusters"},
      {R"({"size":1,"clusters":["0123456789abcdef0123456789abcdef"]})", 404, "cluster"},
      // snapshots are not supported.
      {R"({"size":1,"snapshot":{"enable":true,"factor":1.5}})", 400, "snapshot"},
      {R"({"size":1,"snapshot":{"enable":"yes"}})", 400, "snapshot"},
  };
  for (const auto& c : cases) {
    HttpReply r = http().Call("POST", "/volumes", c.body);
    EXPECT_EQ(r.status, c.code) << c.body << " → " << Show(r);
    EXPECT_NE(r.body.find(c.reason), npos) << c.body << " → " << Show(r);
    EXPECT_EQ(r.Header("Content-Type").rfind("text/plain", 0), 0u)
        << c.body << " → " << r.Header("Content-Type");
    EXPECT_TRUE(r.Header("Location").empty()) << c.body;
  }
  // Valid requests that cannot be placed: 507 with the reason.
  for (const std::string body :
       {R"({"size":1,"durability":{"type":"replicate","replicate":{"replica":4}}})",
        R"({"size":1,"durability":{"type":"replicate","replicate":{"replica":5}}})",
        R"({"size":1048576})", R"({"size":11})"}) {
    HttpReply r = http().Call("POST", "/volumes", body);
    EXPECT_EQ(r.status, 507) << body << " → " << Show(r);
    EXPECT_NE(r.body.find("cannot place"), npos) << body << " → " << Show(r);
  }
  // Nothing was created anywhere.
  EXPECT_EQ(Get("/volumes")["volumes"].size(), 0u);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(NodeBricks(i).empty()) << i;
  json dev = Get("/nodes/" + Get("/nodes")["nodes"][0].get<std::string>())["devices"][0];
  EXPECT_EQ(dev["storage"]["used"].get<uint64_t>(), 0u) << dev.dump();

  // What is valid: 100 characters of name, "none" durability, unknown keys
  // ignored, no name → vol_<id>, Heketi's arbiter option.
  json a = Create({{"name", std::string(100, 'Z')}, {"size", 1}, {"extra", {{"x", 1}}}});
  EXPECT_EQ(a.value("name", ""), std::string(100, 'Z'));
  json b = Create({{"size", 1}, {"durability", {{"type", "none"}}}});
  EXPECT_EQ(b.value("name", ""), "vol_" + b.value("id", "?")) << b.dump();
  EXPECT_EQ(b["bricks"].size(), 1u) << b.dump();
  EXPECT_EQ(b["durability"].value("type", ""), "none");
  json c = Create({{"name", "heketi-arbiter"},
                   {"size", 1},
                   {"glustervolumeoptions", {"user.heketi.arbiter true"}}});
  EXPECT_TRUE(c.value("arbiter", false)) << c.dump();
  EXPECT_EQ(c["glustervolumeoptions"], json({"user.heketi.arbiter true"}));
  // Same name, other shape: 409 naming both.
  HttpReply conflict = http().Call(
      "POST", "/volumes",
      json{{"name", "heketi-arbiter"}, {"size", 1}, {"durability", {{"type", "none"}}}}.dump());
  EXPECT_EQ(conflict.status, 409) << Show(conflict);
  EXPECT_NE(conflict.body.find("heketi-arbiter"), npos) << conflict.body;
}

TEST_F(ProvisionerApiTest, ExpandRejectsBadInput) {
  ASSERT_NO_FATAL_FAILURE(StartAll(3, 10));
  json v = Create({{"name", "to-expand"}, {"size", 2}});
  const std::string path = "/volumes/" + v.value("id", "") + "/expand";
  const std::vector<std::pair<std::string, int>> cases = {
      {"{", 422},
      {"", 400},
      {"[]", 400},
      {"{}", 400},
      {R"({"expand_size":0})", 400},
      {R"({"expand_size":-1})", 400},
      {R"({"expand_size":"1"})", 400},
      {R"({"expand_size":1.5})", 400},
      {R"({"expand_size":null})", 400},
      {R"({"expand_size":1048576})", 400},  // 2 + 1048576 > the maximum
      {R"({"expand_size":18446744073709551615})", 400},
      {R"({"expand_size":100})", 507},  // does not fit anywhere
  };
  for (const auto& [body, code] : cases) {
    HttpReply r = http().Call("POST", path, body);
    EXPECT_EQ(r.status, code) << body << " → " << Show(r);
  }
  EXPECT_EQ(http().Call("POST", "/volumes/" + Unknown() + "/expand", R"({"expand_size":1})").status,
            404);
  json after = Get("/volumes/" + v.value("id", ""));
  EXPECT_EQ(after.value("size", 0), 2);
  EXPECT_EQ(after.value("generation", 0), 1);
  EXPECT_EQ(after.value("state", ""), "ready");
}

// ---------------------------------------------------------------------------
// Hostile bodies: deep nesting, odd tag values. A 4xx, and the service lives.

TEST_F(ProvisionerApiTest, HostileBodiesAreRefusedWithoutHarm) {
  ASSERT_NO_FATAL_FAILURE(StartAll(3, 10));
  const std::string node0 = Get("/nodes")["nodes"][0];
  const std::string dev0 = Get("/nodes/" + node0)["devices"][0].value("id", "");
  constexpr int kDepth = 200000;  // < 1 MiB of brackets
  const std::string deep_array = std::string(kDepth, '[') + std::string(kDepth, ']');
  std::string deep_object;
  for (int i = 0; i < kDepth / 2; ++i) deep_object += R"({"a":)";
  deep_object += "1" + std::string(kDepth / 2, '}');
  const std::string cluster = Get("/clusters")["clusters"][0];
  const std::string node_body_prefix =
      R"({"cluster":")" + cluster +
      R"(","hostnames":{"manage":["127.0.0.1:1"],"storage":["h"]},"tags":{"x":)";
  const std::string dev_body_prefix =
      R"({"node":")" + node0 + R"(","name":"/nonexistent/dir","tags":{"x":)";
  const std::vector<std::tuple<std::string, std::string, std::string, std::string>> cases = {
      {"POST", "/volumes", deep_array, "user"},
      {"POST", "/volumes", R"({"size":1,"name":)" + deep_array + "}", "user"},
      {"POST", "/volumes",
       R"({"size":1,"durability":{"type":"replicate","replicate":{"replica":)" + deep_array + "}}}",
       "user"},
      {"POST", "/volumes", R"({"size":1,"clusters":)" + deep_array + "}", "user"},
      {"POST", "/volumes", R"({"size":1,"glustervolumeoptions":)" + deep_array + "}", "user"},
      {"POST", "/clusters", R"({"file":)" + deep_object + "}", "admin"},
      {"POST", "/nodes", node_body_prefix + deep_object + "}}", "admin"},
      {"POST", "/nodes", node_body_prefix + "1}}", "admin"},
      {"POST", "/nodes", node_body_prefix + "[\"a\"]}}", "admin"},
      {"POST", "/devices", dev_body_prefix + deep_object + "}}", "admin"},
      {"POST", "/devices", dev_body_prefix + "true}}", "admin"},
      {"POST", "/nodes/" + node0 + "/tags",
       R"({"change_type":"set","tags":{"x":)" + deep_object + "}}", "admin"},
      {"POST", "/devices/" + dev0 + "/tags",
       R"({"change_type":"update","tags":{"x":)" + deep_array + "}}", "admin"},
      {"POST", "/nodes/register", deep_object, "node"},
  };
  for (const auto& [method, path, body, iss] : cases) {
    HttpReply r = http().Call(method, path, body, iss);
    EXPECT_GE(r.status, 400) << method << " " << path << " " << body.substr(0, 120) << " → "
                             << Show(r);
    EXPECT_LT(r.status, 500) << method << " " << path << " " << body.substr(0, 120) << " → "
                             << Show(r) << "\n"
                             << prov_->Log().substr(0, 4000);
    ASSERT_EQ(http().Call("GET", "/hello", "", "").status, 200)
        << "the provisioner died on " << method << " " << path << "\n"
        << prov_->Log().substr(prov_->Log().size() > 4000 ? prov_->Log().size() - 4000 : 0);
  }
  // Nothing of it was stored.
  EXPECT_EQ(Get("/nodes")["nodes"].size(), 3u);
  EXPECT_EQ(Get("/nodes/" + node0)["tags"], json::object());
  EXPECT_EQ(Get("/devices/" + dev0)["tags"], json::object());
  EXPECT_EQ(Get("/volumes")["volumes"].size(), 0u);
  EXPECT_EQ(Get("/clusters")["clusters"].size(), 1u);
}

// ---------------------------------------------------------------------------
// Unknown ids and non-ids: 404 on every route.

TEST_F(ProvisionerApiTest, UnknownIdsAre404) {
  ASSERT_NO_FATAL_FAILURE(StartAll(3, 10));
  const std::string u = Unknown();
  const std::vector<std::tuple<std::string, std::string, std::string>> routes = {
      {"GET", "/volumes/" + u, ""},
      {"DELETE", "/volumes/" + u, ""},
      {"GET", "/volumes/" + u + "/heal", ""},
      {"POST", "/volumes/" + u + "/expand", R"({"expand_size":1})"},
      {"GET", "/nodes/" + u, ""},
      {"DELETE", "/nodes/" + u, ""},
      {"POST", "/nodes/" + u + "/state", R"({"state":"offline"})"},
      {"POST", "/nodes/" + u + "/tags", R"({"change_type":"set","tags":{}})"},
      {"GET", "/devices/" + u, ""},
      {"DELETE", "/devices/" + u, ""},
      {"POST", "/devices/" + u + "/state", R"({"state":"offline"})"},
      {"POST", "/devices/" + u + "/resync", ""},
      {"POST", "/devices/" + u + "/tags", R"({"change_type":"set","tags":{}})"},
      {"GET", "/clusters/" + u, ""},
      {"DELETE", "/clusters/" + u, ""},
      {"POST", "/clusters/" + u + "/flags", R"({"file":true})"},
      {"GET", "/queue/" + u, ""},
      // Not ids: no such route.
      {"GET", "/volumes/xyz", ""},
      {"GET", "/volumes/0123456789ABCDEF0123456789ABCDEF", ""},
      {"GET", "/volumes/" + u + "0", ""},
      {"GET", "/volumes/" + u.substr(1), ""},
      {"DELETE", "/volumes/not-an-id", ""},
      {"GET", "/nodes/zz", ""},
      {"GET", "/devices/" + std::string(32, 'g'), ""},
      {"GET", "/clusters/..", ""},
      {"GET", "/queue/nothex", ""},
      {"GET", "/queue/" + u + "/x", ""},
  };
  for (const auto& [method, path, body] : routes) {
    HttpReply r = http().Call(method, path, body);
    EXPECT_EQ(r.status, 404) << method << " " << path << " → " << Show(r);
    EXPECT_FALSE(r.body.empty()) << method << " " << path;
  }
  // Node registration pointing at a node that is not what it says: 400.
  HttpReply liar = Register(0, 1, "node", "node7");
  EXPECT_EQ(liar.status, 400) << Show(liar);
  EXPECT_NE(liar.body.find("node0"), npos) << liar.body;
}

TEST_F(ProvisionerApiTest, BodiesOverOneMiBAre413) {
  ASSERT_NO_FATAL_FAILURE(StartAll(3, 10));
  const std::string big = R"({"size":1,"pad":")" + std::string(1 << 20, 'a') + R"("})";
  for (const std::string path : {"/volumes", "/clusters", "/nodes", "/devices"}) {
    HttpReply r = http().Call("POST", path, big);
    EXPECT_EQ(r.status, 413) << path << " → " << Show(r);
  }
  HttpReply reg = http().Call("POST", "/nodes/register", big, "node");
  EXPECT_EQ(reg.status, 413) << Show(reg);
  // Just under the limit is read (and the unknown key ignored).
  const std::string fits =
      R"({"size":1,"name":"padded","pad":")" + std::string((1 << 20) - 100, 'a') + R"("})";
  HttpReply ok = http().Call("POST", "/volumes", fits);
  ASSERT_EQ(ok.status, 202) << Show(ok);
  EXPECT_EQ(http().Follow(ok).status, 200);
  EXPECT_EQ(Get("/volumes")["volumes"].size(), 1u);
}

// ---------------------------------------------------------------------------
// Heketi's way: clusters, nodes and devices added by hand.

TEST_F(ProvisionerApiTest, HeketiFlowClustersNodesDevicesTagsTopology) {
  // Four storaged; nodes 0-2 register themselves, node 3 is added with POST /nodes.
  ASSERT_NO_FATAL_FAILURE(StartNodes(4, 10));
  ASSERT_NO_FATAL_FAILURE(StartProvisioner());
  EXPECT_EQ(Get("/clusters")["clusters"].size(), 0u);
  for (int i = 0; i < 3; ++i) {
    HttpReply r = Register(i, i + 1);
    ASSERT_EQ(r.status, 200) << Show(r);
  }
  json clusters = Get("/clusters");
  ASSERT_EQ(clusters["clusters"].size(), 1u) << clusters.dump();
  const std::string c1 = clusters["clusters"][0];

  // POST /clusters: 201 with its info.
  HttpReply made = http().Call("POST", "/clusters", R"({"file":true,"block":false})");
  ASSERT_EQ(made.status, 201) << Show(made);
  json c2info = Obj(made);
  const std::string c2 = c2info.value("id", "");
  ASSERT_TRUE(std::regex_match(c2, std::regex("[0-9a-f]{32}"))) << made.body;
  EXPECT_EQ(c2info["nodes"], json::array());
  EXPECT_EQ(c2info["volumes"], json::array());
  EXPECT_EQ(c2info["blockvolumes"], json::array());
  EXPECT_TRUE(c2info.value("file", false));
  EXPECT_FALSE(c2info.value("block", true));
  HttpReply bare = http().Call("POST", "/clusters");  // no body: defaults
  ASSERT_EQ(bare.status, 201) << Show(bare);
  const std::string c3 = Obj(bare).value("id", "");
  EXPECT_EQ(http().Call("POST", "/clusters", R"({"file":"yes"})").status, 400);
  EXPECT_EQ(http().Call("POST", "/clusters", R"({"block":1})").status, 400);
  EXPECT_EQ(http().Call("POST", "/clusters", R"({"file":)").status, 422);
  EXPECT_EQ(http().Call("POST", "/clusters", "[]").status, 400);
  std::set<std::string> listed;
  for (const auto& c : Field(Get("/clusters"), "clusters")) listed.insert(c);
  EXPECT_EQ(listed, (std::set<std::string>{c1, c2, c3}));
  EXPECT_EQ(Get("/clusters/" + c1)["nodes"].size(), 3u);
  // Flags.
  EXPECT_EQ(
      http().Call("POST", "/clusters/" + c3 + "/flags", R"({"file":false,"block":true})").status,
      200);
  json c3info = Get("/clusters/" + c3);
  EXPECT_FALSE(c3info.value("file", true));
  EXPECT_TRUE(c3info.value("block", false));
  EXPECT_EQ(http().Call("POST", "/clusters/" + c3 + "/flags", R"({"file":"no"})").status, 400);
  EXPECT_EQ(http().Call("POST", "/clusters/" + c3 + "/flags", "{").status, 422);
  HttpReply del3 = http().Call("DELETE", "/clusters/" + c3);
  EXPECT_EQ(del3.status, 200) << Show(del3);
  EXPECT_EQ(http().Call("GET", "/clusters/" + c3).status, 404);

  // POST /nodes: bad input.
  const json node3 = {
      {"cluster", c2},
      {"hostnames", {{"manage", {nodes_->api_address(3)}}, {"storage", {nodes_->host(3)}}}},
      {"zone", 2},
      {"tags", {{"rack", "r3"}}}};
  auto with = [&](const std::string& k, const json& v) {
    json b = node3;
    if (v.is_null()) {
      b.erase(k);
    } else {
      b[k] = v;
    }
    return b.dump();
  };
  const std::vector<std::pair<std::string, int>> bad_nodes = {
      {"{", 422},
      {"[]", 400},
      {with("cluster", nullptr), 400},
      {with("cluster", 7), 400},
      {with("cluster", Unknown()), 404},
      {with("hostnames", nullptr), 400},
      {with("hostnames", "h"), 400},
      {with("hostnames", {{"manage", nodes_->api_address(3)}, {"storage", {"h"}}}), 400},
      {with("hostnames", {{"manage", json::array()}, {"storage", {"h"}}}), 400},
      {with("hostnames", {{"manage", {nodes_->api_address(3)}}}), 400},
      {with("zone", "2"), 400},
      {with("zone", -1), 400},
      {with("zone", 1.5), 400},
      {with("tags", "rack=r3"), 400},
      {with("tags", json::array()), 400},
      // A node already known by that address: 409.
      {with("hostnames", {{"manage", {nodes_->api_address(0)}}, {"storage", {nodes_->host(0)}}}),
       409},
  };
  for (const auto& [body, code] : bad_nodes) {
    HttpReply r = http().Call("POST", "/nodes", body);
    EXPECT_EQ(r.status, code) << body << " → " << Show(r);
  }
  // A manage address where nothing listens: accepted, then the op fails (500).
  {
    HttpReply r =
        http().Call("POST", "/nodes",
                    with("hostnames", {{"manage", {"127.0.0.1:1"}}, {"storage", {"127.0.0.1"}}}));
    ASSERT_EQ(r.status, 202) << Show(r);
    HttpReply f = http().Follow(r);
    EXPECT_EQ(f.status, 500) << Show(f);
    EXPECT_EQ(Get("/nodes")["nodes"].size(), 3u);
  }

  // POST /nodes for the unregistered storaged: 202 → /queue → 303 /nodes/{id}.
  HttpReply add = http().Call("POST", "/nodes", node3.dump());
  ASSERT_EQ(add.status, 202) << Show(add);
  std::string node_location;
  for (const auto deadline = Clock::now() + std::chrono::seconds(30);;) {
    HttpReply q = http().Call("GET", add.Header("Location"));
    if (q.status == 303) {
      node_location = q.Header("Location");
      break;
    }
    ASSERT_EQ(q.status, 200) << Show(q) << "\n" << prov_->Log();
    ASSERT_EQ(q.Header("X-Pending"), "true");
    ASSERT_LT(Clock::now(), deadline);
  }
  ASSERT_TRUE(std::regex_match(node_location, std::regex("/nodes/[0-9a-f]{32}"))) << node_location;
  const std::string n3 = node_location.substr(7);
  json n3info = Get(node_location);
  EXPECT_EQ(n3info.value("id", ""), n3);
  EXPECT_EQ(n3info.value("cluster", ""), c2);
  EXPECT_EQ(n3info.value("name", ""), "node3");  // the storaged's own name
  EXPECT_EQ(n3info.value("zone", 0), 2);
  EXPECT_EQ(n3info.value("state", ""), "online");
  EXPECT_EQ(n3info["hostnames"]["manage"], json({nodes_->api_address(3)}));
  EXPECT_EQ(n3info["hostnames"]["storage"], json({nodes_->host(3)}));
  EXPECT_EQ(n3info["tags"], json({{"rack", "r3"}}));
  EXPECT_EQ(n3info["devices"], json::array());  // Heketi's way: devices come next
  EXPECT_FALSE(n3info.value("brickd", "").empty());
  EXPECT_EQ(Get("/nodes")["nodes"].size(), 4u);
  EXPECT_EQ(Get("/clusters/" + c2)["nodes"], json({n3}));
  // The same storaged again: 409.
  EXPECT_EQ(http().Call("POST", "/nodes", node3.dump()).status, 409);

  // POST /devices: bad input.
  const std::string dir = nodes_->dir().MakeSubdir("node3-extra");
  const json dev = {{"node", n3}, {"name", dir}, {"capacity_kib", 4 * kGibKib}};
  auto dwith = [&](const std::string& k, const json& v) {
    json b = dev;
    if (v.is_null()) {
      b.erase(k);
    } else {
      b[k] = v;
    }
    return b.dump();
  };
  const std::vector<std::pair<std::string, int>> bad_devices = {
      {"{", 422},
      {"7", 400},
      {dwith("node", nullptr), 400},
      {dwith("node", 3), 400},
      {dwith("node", Unknown()), 404},
      {dwith("name", nullptr), 400},
      {dwith("name", "relative/dir"), 400},
      {dwith("name", 5), 400},
      {dwith("capacity_kib", -1), 400},
      {dwith("capacity_kib", "4"), 400},
      {dwith("capacity_kib", 1.5), 400},
      {dwith("tags", "x"), 400},
  };
  for (const auto& [body, code] : bad_devices) {
    HttpReply r = http().Call("POST", "/devices", body);
    EXPECT_EQ(r.status, code) << body << " → " << Show(r);
  }
  // A directory that does not exist: accepted, the op fails, no device row stays.
  {
    HttpReply r = http().Call("POST", "/devices", dwith("name", dir + "-missing"));
    ASSERT_EQ(r.status, 202) << Show(r);
    EXPECT_EQ(http().Follow(r).status, 500);
    EXPECT_EQ(Get("/nodes/" + n3)["devices"], json::array());
  }
  // POST /devices on a new directory: 202 → 204.
  HttpReply dadd = http().Call("POST", "/devices", dev.dump());
  ExpectDone204(dadd, "add device");
  json n3devs = Get("/nodes/" + n3)["devices"];
  ASSERT_EQ(n3devs.size(), 1u) << n3devs.dump();
  const std::string d3 = n3devs[0].value("id", "");
  json d3info = Get("/devices/" + d3);
  EXPECT_EQ(d3info.value("name", ""), dir);
  EXPECT_EQ(d3info.value("node", ""), n3);
  EXPECT_EQ(d3info.value("state", ""), "online");
  EXPECT_EQ(d3info["storage"], json({{"total", 4 * kGibKib}, {"free", 4 * kGibKib}, {"used", 0}}));
  EXPECT_EQ(d3info["bricks"], json::array());
  // storaged has it, with that capacity.
  bool on_node = false;
  for (const auto& d : NodeDevices(3)) {
    if (d.path() == dir) {
      on_node = true;
      EXPECT_EQ(d.capacity_bytes(), 4ull << 30);
    }
  }
  EXPECT_TRUE(on_node);
  EXPECT_EQ(http().Call("POST", "/devices", dev.dump()).status, 409);  // same name again
  ExpectDone204(http().Call("POST", "/devices/" + d3 + "/resync"), "resync");
  EXPECT_EQ(Get("/devices/" + d3)["storage"].value("total", uint64_t{0}), 4 * kGibKib);

  // Tags on nodes and devices: set, update, delete.
  for (const std::string& base : {"/nodes/" + n3, "/devices/" + d3}) {
    auto tags = [&](const json& body) {
      HttpReply r = http().Call("POST", base + "/tags", body.dump());
      EXPECT_EQ(r.status, 200) << base << " " << body.dump() << " → " << Show(r);
      return Obj(r)["tags"];
    };
    EXPECT_EQ(tags({{"change_type", "set"}, {"tags", {{"a", "1"}, {"b", "2"}}}}),
              json({{"a", "1"}, {"b", "2"}}));
    EXPECT_EQ(tags({{"change_type", "update"}, {"tags", {{"b", "3"}, {"c", "4"}}}}),
              json({{"a", "1"}, {"b", "3"}, {"c", "4"}}));
    EXPECT_EQ(tags({{"change_type", "delete"}, {"tags", {{"a", ""}, {"zz", ""}}}}),
              json({{"b", "3"}, {"c", "4"}}));
    EXPECT_EQ(Get(base)["tags"], json({{"b", "3"}, {"c", "4"}}));
    for (const std::string bad :
         {R"({"change_type":"merge","tags":{}})", R"({"change_type":5,"tags":{}})",
          R"({"tags":{}})", R"({"change_type":"set","tags":"a=1"})",
          R"({"change_type":"set","tags":["a"]})", R"({"change_type":"set"})",
          R"({"change_type":"set","tags":{"a":1}})", "[]"}) {
      HttpReply r = http().Call("POST", base + "/tags", bad);
      EXPECT_EQ(r.status, 400) << base << " " << bad << " → " << Show(r);
    }
    EXPECT_EQ(http().Call("POST", base + "/tags", "{").status, 422);
    EXPECT_EQ(Get(base)["tags"], json({{"b", "3"}, {"c", "4"}}));
  }

  // A volume in cluster c2 (one node: replica 1) lands on the new device.
  json v = Create(
      {{"name", "in-c2"}, {"size", 1}, {"durability", {{"type", "none"}}}, {"clusters", {c2}}});
  ASSERT_EQ(v["bricks"].size(), 1u) << v.dump();
  EXPECT_EQ(v["bricks"][0].value("device", ""), d3);
  EXPECT_EQ(v["bricks"][0].value("node", ""), n3);
  EXPECT_EQ(v["bricks"][0].value("size", uint64_t{0}), kGibKib);
  EXPECT_EQ(v.value("cluster", ""), c2);
  d3info = Get("/devices/" + d3);
  EXPECT_EQ(d3info["storage"],
            json({{"total", 4 * kGibKib}, {"free", 3 * kGibKib}, {"used", kGibKib}}));
  ASSERT_EQ(d3info["bricks"].size(), 1u);
  EXPECT_EQ(d3info["bricks"][0].value("volume", ""), v.value("id", ""));
  EXPECT_EQ(NodeBricks(3).size(), 1u);
  EXPECT_EQ(Get("/clusters/" + c2)["volumes"], json({v.value("id", "")}));

  // Deletes refused while something depends on the object: 409.
  HttpReply r409 = http().Call("DELETE", "/devices/" + d3);
  EXPECT_EQ(r409.status, 409) << Show(r409);
  r409 = http().Call("DELETE", "/nodes/" + n3);
  EXPECT_EQ(r409.status, 409) << Show(r409);
  r409 = http().Call("DELETE", "/clusters/" + c2);
  EXPECT_EQ(r409.status, 409) << Show(r409);
  r409 = http().Call("DELETE", "/clusters/" + c1);
  EXPECT_EQ(r409.status, 409) << Show(r409);

  // Node and device state: offline → no new bricks there; bad states 400.
  ExpectDone204(http().Call("POST", "/devices/" + d3 + "/state", R"({"state":"offline"})"),
                "device offline");
  EXPECT_EQ(Get("/devices/" + d3).value("state", ""), "offline");
  const json c2vol = {{"size", 1}, {"durability", {{"type", "none"}}}, {"clusters", {c2}}};
  EXPECT_EQ(http().Call("POST", "/volumes", c2vol.dump()).status, 507);
  ExpectDone204(http().Call("POST", "/devices/" + d3 + "/state", R"({"state":"online"})"),
                "device online");
  ExpectDone204(http().Call("POST", "/nodes/" + n3 + "/state", R"({"state":"failed"})"),
                "node failed");
  EXPECT_EQ(Get("/nodes/" + n3).value("state", ""), "failed");
  EXPECT_EQ(http().Call("POST", "/volumes", c2vol.dump()).status, 507);
  ExpectDone204(http().Call("POST", "/nodes/" + n3 + "/state", R"({"state":"offline"})"),
                "node offline");
  EXPECT_EQ(http().Call("POST", "/volumes", c2vol.dump()).status, 507);
  ExpectDone204(http().Call("POST", "/nodes/" + n3 + "/state", R"({"state":"online"})"),
                "node online");
  EXPECT_EQ(Get("/nodes/" + n3).value("state", ""), "online");
  for (const std::string& base : {"/nodes/" + n3, "/devices/" + d3}) {
    for (const std::string bad : {R"({"state":"gone"})", R"({"state":1})", "{}", "[]"}) {
      EXPECT_EQ(http().Call("POST", base + "/state", bad).status, 400) << base << " " << bad;
    }
    EXPECT_EQ(http().Call("POST", base + "/state", "{").status, 422) << base;
  }

  // GET /topology: both clusters, their nodes (with devices) and volumes.
  json topo = Get("/topology");
  ASSERT_EQ(topo["clusters"].size(), 2u) << topo.dump();
  bool saw_c1 = false, saw_c2 = false;
  for (const auto& c : topo["clusters"]) {
    if (c.value("id", "") == c1) {
      saw_c1 = true;
      EXPECT_EQ(c["nodes"].size(), 3u);
      EXPECT_EQ(c["volumes"].size(), 0u);
      for (const auto& n : c["nodes"]) {
        EXPECT_EQ(n["devices"].size(), 1u) << n.dump();
        EXPECT_EQ(n.value("zone", 0), std::stoi(n.value("name", "node9").substr(4)) + 1);
      }
    } else if (c.value("id", "") == c2) {
      saw_c2 = true;
      ASSERT_EQ(c["nodes"].size(), 1u);
      EXPECT_EQ(c["nodes"][0].value("id", ""), n3);
      ASSERT_EQ(c["nodes"][0]["devices"].size(), 1u);
      EXPECT_EQ(c["nodes"][0]["devices"][0].value("id", ""), d3);
      ASSERT_EQ(c["volumes"].size(), 1u);
      EXPECT_EQ(c["volumes"][0].value("name", ""), "in-c2");
      EXPECT_EQ(c["volumes"][0]["bricks"].size(), 1u);
    }
  }
  EXPECT_TRUE(saw_c1 && saw_c2) << topo.dump();

  // Take c2 apart in order: volume, device, node, cluster.
  Delete(v.value("id", ""));
  EXPECT_EQ(Get("/devices/" + d3)["storage"].value("used", uint64_t{1}), 0u);
  ExpectDone204(http().Call("DELETE", "/devices/" + d3), "delete device");
  EXPECT_EQ(http().Call("GET", "/devices/" + d3).status, 404);
  for (const auto& d : NodeDevices(3)) EXPECT_NE(d.path(), dir) << "storaged still has it";
  EXPECT_EQ(Get("/nodes/" + n3)["devices"], json::array());
  ExpectDone204(http().Call("DELETE", "/nodes/" + n3), "delete node");
  EXPECT_EQ(http().Call("GET", "/nodes/" + n3).status, 404);
  EXPECT_EQ(Get("/nodes")["nodes"].size(), 3u);
  EXPECT_EQ(http().Call("DELETE", "/clusters/" + c2).status, 200);
  EXPECT_EQ(http().Call("GET", "/clusters/" + c2).status, 404);
  EXPECT_EQ(Get("/clusters")["clusters"], json({c1}));
  EXPECT_EQ(http().Call("DELETE", "/devices/" + d3).status, 404);
  EXPECT_EQ(http().Call("DELETE", "/nodes/" + n3).status, 404);
  EXPECT_EQ(http().Call("DELETE", "/clusters/" + c2).status, 404);
}

// ---------------------------------------------------------------------------
// 50 creates at once on 3 × 40 GiB: exactly 40 fit, nothing double-booked.

TEST_F(ProvisionerApiTest, ParallelCreatesFillTheDevicesExactlyAndAllMount) {
  ASSERT_NO_FATAL_FAILURE(StartAll(3, 40));
  constexpr int kCreates = 50;
  std::vector<HttpReply> posted(kCreates), finished(kCreates);
  {
    std::vector<std::thread> threads;
    for (int i = 0; i < kCreates; ++i) {
      threads.emplace_back([&, i] {
        posted[i] = http().Call(
            "POST", "/volumes",
            json{{"name", "par-" + std::to_string(i)},
                 {"size", 1},
                 {"durability", {{"type", "replicate"}, {"replicate", {{"replica", 3}}}}}}
                .dump());
        if (posted[i].status == 202) finished[i] = http().Follow(posted[i]);
      });
    }
    for (auto& t : threads) t.join();
  }
  int accepted = 0, full = 0;
  std::vector<json> volumes;
  for (int i = 0; i < kCreates; ++i) {
    if (posted[i].status == 202) {
      ++accepted;
      EXPECT_EQ(finished[i].status, 200) << i << ": " << Show(finished[i]);
      if (finished[i].status == 200) volumes.push_back(Obj(finished[i]));
    } else {
      EXPECT_EQ(posted[i].status, 507) << i << ": " << Show(posted[i]);
      if (posted[i].status == 507) ++full;
    }
  }
  EXPECT_EQ(accepted, 40);
  EXPECT_EQ(full, 10);
  ASSERT_EQ(volumes.size(), 40u) << prov_->Log();
  EXPECT_EQ(Get("/volumes")["volumes"].size(), 40u);

  // No brick shared, every replica set on three nodes, every device full and
  // not beyond: storaged's accounting and the provisioner's agree.
  std::set<std::string> brick_ids;
  for (const auto& v : volumes) {
    EXPECT_EQ(v.value("state", ""), "ready");
    std::set<std::string> nodes;
    for (const auto& b : v["bricks"]) {
      EXPECT_TRUE(brick_ids.insert(b.value("id", "")).second) << "brick shared: " << b.dump();
      nodes.insert(b.value("node", ""));
    }
    EXPECT_EQ(nodes.size(), 3u) << v.dump();
  }
  for (int i = 0; i < 3; ++i) {
    auto devs = NodeDevices(i);
    ASSERT_EQ(devs.size(), 1u);
    EXPECT_LE(devs[0].allocated_bytes(), devs[0].capacity_bytes()) << i;
    EXPECT_EQ(devs[0].allocated_bytes(), 40ull << 30) << i;
    EXPECT_EQ(devs[0].bricks(), 40u) << i;
  }
  for (const auto& nid : Field(Get("/nodes"), "nodes")) {
    for (const auto& d : Field(Get("/nodes/" + nid.get<std::string>()), "devices")) {
      json info = Get("/devices/" + d.value("id", ""));
      const uint64_t total = info["storage"].value("total", uint64_t{0});
      const uint64_t used = info["storage"].value("used", uint64_t{0});
      EXPECT_EQ(total, 40 * kGibKib);
      EXPECT_LE(used, total);
      EXPECT_EQ(used, 40 * kGibKib);
      EXPECT_EQ(info["storage"].value("free", uint64_t{1}), 0u);
      EXPECT_EQ(info["bricks"].size(), 40u);
    }
  }
  // One more does not fit either.
  EXPECT_EQ(http().Call("POST", "/volumes", R"({"size":1})").status, 507);

  // Every volume mounts and keeps what is written. One at a time: with
  // several threads, a child forked by one (cairn-mount, fusermount3) could
  // inherit another's open file on its mount for a moment and make that
  // unmount EBUSY.
  const auto t0 = Clock::now();
  for (const auto& v : volumes) MountWriteRead(v);
  std::printf("mounted, wrote and read %zu volumes in %.1f s\n", volumes.size(),
              std::chrono::duration<double>(Clock::now() - t0).count());
}

// ---------------------------------------------------------------------------
// Idempotent create under concurrency: one name, one volume.

TEST_F(ProvisionerApiTest, ConcurrentCreatesOfOneNameMakeOneVolume) {
  ASSERT_NO_FATAL_FAILURE(StartAll(3, 10));
  constexpr int kCreates = 10;
  std::vector<HttpReply> posted(kCreates), finished(kCreates);
  std::vector<std::thread> threads;
  for (int i = 0; i < kCreates; ++i) {
    threads.emplace_back([&, i] {
      posted[i] = http().Call("POST", "/volumes", R"({"name":"same","size":2})");
      finished[i] = http().Follow(posted[i]);
    });
  }
  for (auto& t : threads) t.join();
  std::set<std::string> ids;
  for (int i = 0; i < kCreates; ++i) {
    EXPECT_EQ(posted[i].status, 202) << i << ": " << Show(posted[i]);
    EXPECT_EQ(finished[i].status, 200) << i << ": " << Show(finished[i]);
    ids.insert(Obj(finished[i]).value("id", ""));
  }
  EXPECT_EQ(ids.size(), 1u);
  EXPECT_EQ(Get("/volumes")["volumes"].size(), 1u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(NodeBricks(i).size(), 1u) << i;
  // And once more, after it is ready: the same volume (a finished op).
  json again = Create({{"name", "same"}, {"size", 2}});
  EXPECT_EQ(again.value("id", ""), *ids.begin());
  // Parallel creates of the same name with different sizes: one wins, the
  // others are 409.
  std::vector<HttpReply> mixed(6);
  threads.clear();
  for (int i = 0; i < 6; ++i) {
    threads.emplace_back([&, i] {
      mixed[i] =
          http().Call("POST", "/volumes", json{{"name", "mixed"}, {"size", 1 + i % 2}}.dump());
    });
  }
  for (auto& t : threads) t.join();
  std::map<int, int> codes;
  for (const auto& r : mixed) codes[r.status]++;
  EXPECT_EQ(codes[202] + codes[409], 6) << mixed[0].body;
  EXPECT_EQ(codes[202], 3);  // the winner's size: the three of that size
  for (const auto& r : mixed) {
    if (r.status == 202) {
      EXPECT_EQ(http().Follow(r).status, 200);
    }
  }
  EXPECT_EQ(Get("/volumes")["volumes"].size(), 2u);
}

// ---------------------------------------------------------------------------
// Placement: distinct nodes, zones spread, replica 1, arbiter.

TEST_F(ProvisionerApiTest, PlacementSpreadsNodesAndZones) {
  ASSERT_NO_FATAL_FAILURE(StartAll(4, 20, {1, 1, 2, 3}));
  std::map<std::string, int> zone_of;
  for (const auto& nid : Field(Get("/nodes"), "nodes")) {
    json n = Get("/nodes/" + nid.get<std::string>());
    zone_of[nid] = n.value("zone", 0);
  }
  ASSERT_EQ(zone_of.size(), 4u);
  for (int i = 0; i < 10; ++i) {
    json v = Create({{"name", "z" + std::to_string(i)}, {"size", 1}});
    ASSERT_EQ(v["bricks"].size(), 3u) << v.dump();
    std::map<int, std::set<std::string>> sets;  // subvolume → nodes
    std::map<int, std::set<int>> zones;
    for (const auto& b : v["bricks"]) {
      const int sv = b.value("subvolume", -1);
      EXPECT_TRUE(sets[sv].insert(b.value("node", "")).second)
          << "two replicas on a node: " << v.dump();
      zones[sv].insert(zone_of[b.value("node", "")]);
    }
    for (const auto& [sv, z] : zones) {
      EXPECT_EQ(z, (std::set<int>{1, 2, 3})) << "set " << sv << " of " << v.dump();
    }
  }
  // Replica 1 ("none"): one brick.
  json one = Create({{"name", "single"}, {"size", 2}, {"durability", {{"type", "none"}}}});
  ASSERT_EQ(one["bricks"].size(), 1u) << one.dump();
  EXPECT_EQ(one["bricks"][0].value("size", uint64_t{0}), 2 * kGibKib);
  EXPECT_EQ(one["durability"], json({{"type", "none"}}));
  // Replica 2: distinct nodes, distinct zones.
  json two = Create({{"name", "double"},
                     {"size", 1},
                     {"durability", {{"type", "replicate"}, {"replicate", {{"replica", 2}}}}}});
  ASSERT_EQ(two["bricks"].size(), 2u) << two.dump();
  EXPECT_NE(two["bricks"][0].value("node", ""), two["bricks"][1].value("node", ""));
  EXPECT_NE(zone_of[two["bricks"][0].value("node", "")],
            zone_of[two["bricks"][1].value("node", "")]);
  EXPECT_EQ(two["durability"]["replicate"].value("replica", 0), 2);
  // Arbiter: 2 data bricks of the size, then a smaller arbiter brick, last.
  json arb = Create({{"name", "arb"}, {"size", 4}, {"arbiter", true}});
  ASSERT_EQ(arb["bricks"].size(), 3u) << arb.dump();
  EXPECT_TRUE(arb.value("arbiter", false));
  std::set<std::string> arb_nodes;
  std::set<int> arb_zones;
  for (size_t i = 0; i < 3; ++i) {
    const json& b = arb["bricks"][i];
    arb_nodes.insert(b.value("node", ""));
    arb_zones.insert(zone_of[b.value("node", "")]);
    EXPECT_EQ(b.value("arbiter", true), i == 2) << arb.dump();
    if (i < 2) {
      EXPECT_EQ(b.value("size", uint64_t{0}), 4 * kGibKib);
    } else {
      EXPECT_LT(b.value("size", uint64_t{0}), 4 * kGibKib);
      EXPECT_GT(b.value("size", uint64_t{0}), 0u);
    }
  }
  EXPECT_EQ(arb_nodes.size(), 3u);
  EXPECT_EQ(arb_zones, (std::set<int>{1, 2, 3}));
  // Each volume's spec is on every node with that layout.
  for (int i = 0; i < 4; ++i) {
    spb::GetVolumeSpecRequest q;
    q.set_name("arb");
    auto s = nodes_->client(i).Call(&spb::Storaged::Stub::GetVolumeSpec, q);
    ASSERT_TRUE(s.ok()) << i << ": " << s.status().ToString();
    auto spec = client::VolumeSpec::Parse(s->spec_json());
    ASSERT_TRUE(spec.ok());
    EXPECT_EQ(spec->arbiter, 1);
    ASSERT_EQ(spec->subvolumes.size(), 1u);
    EXPECT_TRUE(spec->subvolumes[0][2].arbiter);
    EXPECT_EQ(spec->subvolumes[0][2].brick_id, arb["bricks"][2].value("id", ""));
  }
  // Restricted to zones 1 and 3: replica 2 on the zone-1 and zone-3 nodes only,
  // recorded, and kept when an expansion needs new replica sets.
  for (int i = 0; i < 3; ++i) {
    json zv = Create({{"name", "zoned" + std::to_string(i)},
                      {"size", 1},
                      {"zones", {3, 1}},
                      {"durability", {{"type", "replicate"}, {"replicate", {{"replica", 2}}}}}});
    ASSERT_EQ(zv["bricks"].size(), 2u) << zv.dump();
    EXPECT_EQ(zv["zones"], json({1, 3})) << zv.dump();
    for (const auto& b : zv["bricks"]) {
      const int z = zone_of[b.value("node", "")];
      EXPECT_TRUE(z == 1 || z == 3) << "brick in zone " << z << ": " << zv.dump();
    }
  }
  // Zone 2 alone has one node: a replica-2 volume cannot go there.
  HttpReply r =
      http().Call("POST", "/volumes",
                  json({{"size", 1},
                        {"zones", {2}},
                        {"durability", {{"type", "replicate"}, {"replicate", {{"replica", 2}}}}}})
                      .dump());
  EXPECT_EQ(r.status, 507) << Show(r);
  EXPECT_NE(r.body.find("cannot place"), std::string::npos) << Show(r);
  for (const json& bad : {json({{"size", 1}, {"zones", "1"}}), json({{"size", 1}, {"zones", {0}}}),
                          json({{"size", 1}, {"zones", {"a"}}})}) {
    HttpReply b = http().Call("POST", "/volumes", bad.dump());
    EXPECT_EQ(b.status, 400) << bad.dump() << " → " << Show(b);
    EXPECT_NE(b.body.find("zones"), std::string::npos) << Show(b);
  }
  // Mount the arbiter and the single volume.
  MountWriteRead(arb);
  MountWriteRead(one);
}

// ---------------------------------------------------------------------------
// Lookup by name, heal info, deletes twice and during a create.

// A node can hold a stale spec of the same name (its volume was deleted
// while the node was away). CreateBrick refuses to store the new spec over it;
// the provisioner then creates the brick alone and replaces the stale spec.
TEST_F(ProvisionerApiTest, StaleSpecOfTheSameNameOnANodeIsReplaced) {
  ASSERT_NO_FATAL_FAILURE(StartAll(3, 20));
  client::VolumeSpec stale;
  stale.volume_id = Uuid::Random();
  stale.name = "gamma";
  stale.type = client::VolumeSpec::Type::kDistribute;
  stale.replica = 1;
  stale.generation = 1;
  stale.subvolumes = {{client::BrickRef{nodes_->brickd_address(1), "bstale", false}}};
  spb::PutVolumeSpecRequest put;
  put.set_spec_json(stale.ToJson());
  ASSERT_TRUE(nodes_->client(1).Call(&spb::Storaged::Stub::PutVolumeSpec, put).ok());

  json v = Create({{"name", "gamma"}, {"size", 1}});
  auto id = Uuid::Parse(v.value("id", ""));
  ASSERT_TRUE(id.ok()) << v.dump();
  for (int i = 0; i < nodes_->nodes(); ++i) {
    spb::GetVolumeSpecRequest get;
    get.set_name("gamma");
    auto got = nodes_->client(i).Call(&spb::Storaged::Stub::GetVolumeSpec, get);
    ASSERT_TRUE(got.ok()) << "node " << i << ": " << got.status().ToString();
    auto spec = client::VolumeSpec::Parse(got->spec_json());
    ASSERT_TRUE(spec.ok()) << spec.status().ToString();
    EXPECT_EQ(spec->volume_id, *id) << "node " << i;
    EXPECT_EQ(spec->replica, 3) << "node " << i;
  }
  ASSERT_NO_FATAL_FAILURE(MountWriteRead(v));
}

TEST_F(ProvisionerApiTest, ListByNameHealAndDeleteEdgeCases) {
  ASSERT_NO_FATAL_FAILURE(StartAll(3, 20));
  json a = Create({{"name", "alpha"}, {"size", 1}});
  json b = Create({{"name", "beta"}, {"size", 1}});
  const std::string aid = a.value("id", ""), bid = b.value("id", "");
  EXPECT_EQ(Get("/volumes?name=alpha")["volumes"], json({aid}));
  EXPECT_EQ(Get("/volumes?name=beta")["volumes"], json({bid}));
  EXPECT_EQ(Get("/volumes?name=gamma")["volumes"], json::array());
  EXPECT_EQ(Get("/volumes?name=alph")["volumes"], json::array());
  std::set<std::string> all;
  for (const auto& id : Field(Get("/volumes"), "volumes")) all.insert(id);
  EXPECT_EQ(all, (std::set<std::string>{aid, bid}));

  // The volume info shape.
  EXPECT_EQ(a.value("size", 0), 1);
  EXPECT_EQ(a.value("cluster", ""), Get("/clusters")["clusters"][0].get<std::string>());
  EXPECT_EQ(a["durability"], json({{"type", "replicate"}, {"replicate", {{"replica", 3}}}}));
  EXPECT_EQ(a.value("generation", 0), 1);
  EXPECT_EQ(a["mount"]["glusterfs"]["hosts"].size(), 3u);
  EXPECT_EQ(a["mount"]["cairn"]["servers"].size(), 3u);
  EXPECT_NE(a["mount"]["cairn"].value("source", "").find(":/alpha"), npos);
  for (const auto& br : a["bricks"]) {
    EXPECT_TRUE(std::regex_match(br.value("id", ""), std::regex("b[0-9a-f]{32}"))) << br.dump();
    EXPECT_EQ(br.value("volume", ""), aid);
    EXPECT_NE(br.value("path", "").find("/bricks/" + br.value("id", "")), npos) << br.dump();
  }

  // Heal info of a healthy volume: every brick, nothing pending.
  HttpReply heal = http().Call("GET", "/volumes/" + aid + "/heal");
  ASSERT_EQ(heal.status, 200) << Show(heal);
  json h = Obj(heal);
  EXPECT_EQ(h.value("volume", ""), "alpha");
  ASSERT_EQ(h["bricks"].size(), 3u) << h.dump();
  std::set<std::string> healed_bricks;
  for (const auto& e : h["bricks"]) {
    healed_bricks.insert(e.value("brick", ""));
    EXPECT_TRUE(e["pending"].is_number()) << e.dump();
    if (e["pending"].is_number()) {
      EXPECT_EQ(e["pending"].get<uint64_t>(), 0u) << e.dump();
    }
  }
  std::set<std::string> a_bricks;
  for (const auto& br : a["bricks"]) a_bricks.insert(br.value("id", ""));
  EXPECT_EQ(healed_bricks, a_bricks);
  EXPECT_EQ(h.value("pending", uint64_t{1}), 0u);
  EXPECT_EQ(h["split_brain"], json::array());

  // Delete twice: the second is the same operation (or 404 once done).
  HttpReply d1 = http().Call("DELETE", "/volumes/" + aid);
  ASSERT_EQ(d1.status, 202) << Show(d1);
  HttpReply d2 = http().Call("DELETE", "/volumes/" + aid);
  if (d2.status == 202) {
    EXPECT_EQ(d2.Header("Location"), d1.Header("Location"));
  } else {
    EXPECT_EQ(d2.status, 404) << Show(d2);
  }
  EXPECT_EQ(http().Follow(d1).status, 204);
  EXPECT_EQ(http().Follow(d1).status, 204);  // a finished op stays queryable
  HttpReply d3 = http().Call("DELETE", "/volumes/" + aid);
  EXPECT_EQ(d3.status, 404) << Show(d3);
  EXPECT_EQ(Get("/volumes?name=alpha")["volumes"], json::array());
  // The name is free again.
  json a2 = Create({{"name", "alpha"}, {"size", 2}});
  EXPECT_NE(a2.value("id", ""), aid);

  // Delete while creating: queue 8 creates behind the workers, delete the
  // last at once. Either 409 (still creating) or it waits behind the create;
  // in the end no trace of it is left.
  std::vector<HttpReply> creates;
  for (int i = 0; i < 8; ++i) {
    creates.push_back(http().Call("POST", "/volumes",
                                  json{{"name", "q" + std::to_string(i)}, {"size", 1}}.dump()));
    ASSERT_EQ(creates.back().status, 202) << Show(creates.back());
  }
  json ids = Get("/volumes?name=q7")["volumes"];
  ASSERT_EQ(ids.size(), 1u) << "the volume row is visible as soon as the create is accepted";
  const std::string qid = ids[0];
  HttpReply early = http().Call("DELETE", "/volumes/" + qid);
  std::printf("delete during create: HTTP %d %s\n", early.status, early.body.c_str());
  EXPECT_TRUE(early.status == 409 || early.status == 202) << Show(early);
  if (early.status == 409) {
    EXPECT_NE(early.body.find("busy"), npos) << early.body;
    // Info while creating (or already ready).
    json info = Get("/volumes/" + qid);
    EXPECT_TRUE(info.value("state", "") == "creating" || info.value("state", "") == "ready")
        << info.dump();
  }
  for (const auto& c : creates) EXPECT_EQ(http().Follow(c).status, 200);
  if (early.status == 202) {
    EXPECT_EQ(http().Follow(early).status, 204);
  } else {
    Delete(qid);
  }
  EXPECT_EQ(http().Call("GET", "/volumes/" + qid).status, 404);
  // Expand during a delete / of a deleting volume: 409 or 404, never a mess.
  HttpReply dq = http().Call("DELETE", "/volumes/" + bid);
  ASSERT_EQ(dq.status, 202);
  HttpReply ex = http().Call("POST", "/volumes/" + bid + "/expand", R"({"expand_size":1})");
  EXPECT_TRUE(ex.status == 409 || ex.status == 404) << Show(ex);
  EXPECT_EQ(http().Follow(dq).status, 204);
  // Everything left: alpha (new) and q0..q6; the bricks on the nodes match.
  std::set<std::string> expected_bricks;
  size_t count = 0;
  for (const auto& id : Field(Get("/volumes"), "volumes")) {
    ++count;
    for (const auto& br : Field(Get("/volumes/" + id.get<std::string>()), "bricks")) {
      expected_bricks.insert(br.value("id", ""));
    }
  }
  EXPECT_EQ(count, 8u);
  std::set<std::string> on_nodes;
  for (int i = 0; i < 3; ++i) {
    for (const auto& id : NodeBricks(i)) on_nodes.insert(id);
  }
  EXPECT_EQ(on_nodes, expected_bricks);
}

}  // namespace
}  // namespace cairn::test
