// The provisioner killed at every step of create, delete and expand (the
// CrashPoint hooks of service.cc, via $CAIRN_PROVISIONER_CRASH_AT) and at
// random moments (SIGKILL): after a restart, recovery and reconciliation must
// leave no orphan brick or spec on any node, every volume ready with all its
// bricks and specs, and capacity accounted exactly.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <map>
#include <random>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "client/spec.h"
#include "common/id.h"
#include "tests/node_cluster.h"
#include "tests/provisioner_util.h"

namespace cairn::test {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
constexpr auto npos = std::string::npos;

// j[k] by value (safe in a range-for over a temporary), null when absent.
json Field(const json& j, const char* k) { return j.is_object() && j.contains(k) ? j[k] : json(); }

json Obj(const HttpReply& r) {
  json j = r.Json();
  return j.is_object() ? j : json::object();
}

std::string Show(const HttpReply& r) {
  std::string s = "HTTP " + std::to_string(r.status);
  if (!r.Header("Location").empty()) s += " Location: " + r.Header("Location");
  return s + " body: " + r.body.substr(0, 1000);
}

std::string Tail(const std::string& text, size_t n = 6000) {
  return text.size() <= n ? text : "...\n" + text.substr(text.size() - n);
}

class ProvisionerCrashTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto c =
        NodeCluster::Start({.nodes = 4, .device_capacity = 10ull << 30, .create_volume = false});
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    nodes_ = std::move(*c);
    auto p = ProvisionerProcess::Start(*nodes_, {"--reconcile-s=1"});
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    prov_ = std::move(*p);
    Status s = prov_->RegisterAll();
    ASSERT_TRUE(s.ok()) << s.ToString() << "\n" << prov_->Log();
  }

  ProvisionerHttp& http() { return prov_->http(); }

  json Create(const json& body) {
    HttpReply r = http().Call("POST", "/volumes", body.dump());
    EXPECT_EQ(r.status, 202) << body.dump() << " → " << Show(r);
    HttpReply v = http().Follow(r);
    EXPECT_EQ(v.status, 200) << body.dump() << " → " << Show(v) << "\n" << Tail(prov_->Log());
    return Obj(v);
  }

  // Everything that is wrong right now ("" when the invariant holds):
  //  (a) every provisioner brick (b + 32 hex) on a node belongs to a volume of
  //      GET /volumes, on that node; every provisioner-made spec on a node is
  //      of such a volume (same id);
  //  (b) every volume is ready, each of its bricks exists on its node with its
  //      size, and its spec (generation, id, bricks, size) is on every node of
  //      its cluster;
  //  (c) each device's "used" (GET /devices) is the sum of its bricks' sizes,
  //      and equals what storaged has allocated on it.
  std::string Violations() {
    std::ostringstream bad;
    HttpReply lv = http().Call("GET", "/volumes");
    if (lv.status != 200) return "GET /volumes: " + Show(lv);
    std::map<std::string, json> volumes;  // id → info
    std::map<std::string, std::string> volume_by_name;
    for (const auto& id : Field(Obj(lv), "volumes")) {
      HttpReply r = http().Call("GET", "/volumes/" + id.get<std::string>());
      if (r.status != 200) return "GET /volumes/" + id.get<std::string>() + ": " + Show(r);
      volumes[id] = Obj(r);
      volume_by_name[Obj(r).value("name", "")] = id;
    }
    HttpReply ln = http().Call("GET", "/nodes");
    if (ln.status != 200) return "GET /nodes: " + Show(ln);
    std::map<std::string, int> index;  // node id → node index
    std::map<std::string, std::string> cluster_of;
    std::vector<json> devices;
    for (const auto& id : Field(Obj(ln), "nodes")) {
      HttpReply r = http().Call("GET", "/nodes/" + id.get<std::string>());
      if (r.status != 200) return "GET /nodes/…: " + Show(r);
      json n = Obj(r);
      for (int i = 0; i < nodes_->nodes(); ++i) {
        if (n["hostnames"]["manage"][0] == nodes_->api_address(i)) index[id] = i;
      }
      cluster_of[id] = n.value("cluster", "");
      for (const auto& d : n["devices"]) {
        HttpReply dr = http().Call("GET", "/devices/" + d.value("id", ""));
        if (dr.status != 200) return "GET /devices/…: " + Show(dr);
        json dj = Obj(dr);
        dj["node_index"] = index.count(id) ? index[id] : -1;
        devices.push_back(dj);
      }
    }
    // What the nodes have.
    const std::regex brick_re("b[0-9a-f]{32}");
    std::vector<std::map<std::string, uint64_t>> node_bricks(nodes_->nodes());
    std::vector<std::map<std::string, client::VolumeSpec>> node_specs(nodes_->nodes());
    std::vector<std::map<std::string, spb::Device>> node_devices(nodes_->nodes());
    for (int i = 0; i < nodes_->nodes(); ++i) {
      auto lb = nodes_->client(i).Call(&spb::Storaged::Stub::ListBricks, spb::ListBricksRequest());
      if (!lb.ok()) return "node " + std::to_string(i) + " ListBricks: " + lb.status().ToString();
      for (const auto& b : lb->bricks()) {
        if (std::regex_match(b.brick_id(), brick_re))
          node_bricks[i][b.brick_id()] = b.capacity_bytes();
      }
      auto ls = nodes_->client(i).Call(&spb::Storaged::Stub::ListVolumeSpecs,
                                       spb::ListVolumeSpecsRequest());
      if (!ls.ok())
        return "node " + std::to_string(i) + " ListVolumeSpecs: " + ls.status().ToString();
      for (const auto& s : ls->specs()) {
        auto spec = client::VolumeSpec::Parse(s.spec_json());
        if (!spec.ok()) {
          bad << "node " << i << ": unparsable spec " << s.name() << "\n";
          continue;
        }
        node_specs[i][s.name()] = *spec;
      }
      auto ld =
          nodes_->client(i).Call(&spb::Storaged::Stub::ListDevices, spb::ListDevicesRequest());
      if (!ld.ok()) return "node " + std::to_string(i) + " ListDevices: " + ld.status().ToString();
      for (const auto& d : ld->devices()) node_devices[i][d.path()] = d;
    }

    // (a) no orphans.
    std::map<std::string, std::pair<std::string, int>> brick_owner;  // brick → volume, node index
    for (const auto& [vid, v] : volumes) {
      for (const auto& b : v["bricks"]) {
        const std::string nid = b.value("node", "");
        brick_owner[b.value("id", "")] = {vid, index.count(nid) ? index[nid] : -1};
      }
    }
    for (int i = 0; i < nodes_->nodes(); ++i) {
      for (const auto& [bid, cap] : node_bricks[i]) {
        auto it = brick_owner.find(bid);
        if (it == brick_owner.end()) {
          bad << "(a) orphan brick " << bid << " on node " << i << "\n";
        } else if (it->second.second != i) {
          bad << "(a) brick " << bid << " on node " << i << " belongs to node " << it->second.second
              << "\n";
        }
      }
      for (const auto& [name, spec] : node_specs[i]) {
        bool provisioner_made = true;
        for (const auto& sv : spec.subvolumes) {
          for (const auto& b : sv) provisioner_made &= std::regex_match(b.brick_id, brick_re);
        }
        if (!provisioner_made) continue;
        auto it = volume_by_name.find(name);
        auto vid = it == volume_by_name.end() ? StatusOr<Uuid>(Status::NotFound(""))
                                              : Uuid::Parse(it->second);
        if (!vid.ok() || *vid != spec.volume_id) {
          bad << "(a) orphan spec " << name << " (volume " << spec.volume_id.ToHex() << ") on node "
              << i << "\n";
        }
      }
    }
    // (b) every volume whole.
    std::map<std::string, uint64_t> device_bricks_kib;  // device id → sum of brick sizes
    for (const auto& [vid, v] : volumes) {
      const std::string name = v.value("name", "");
      if (v.value("state", "") != "ready") {
        bad << "(b) volume " << name << " is " << v.value("state", "") << "\n";
      }
      std::set<std::string> ids;
      for (const auto& b : v["bricks"]) {
        const std::string bid = b.value("id", "");
        ids.insert(bid);
        const uint64_t kib = b.value("size", uint64_t{0});
        device_bricks_kib[b.value("device", "")] += kib;
        const int i = brick_owner[bid].second;
        if (i < 0) {
          bad << "(b) brick " << bid << " of " << name << " is on an unknown node\n";
          continue;
        }
        auto it = node_bricks[i].find(bid);
        if (it == node_bricks[i].end()) {
          bad << "(b) brick " << bid << " of " << name << " missing on node " << i << "\n";
        } else if (it->second != kib * 1024) {
          bad << "(b) brick " << bid << " of " << name << " has " << it->second << " bytes on node "
              << i << ", the store says " << kib << " KiB\n";
        }
      }
      auto want_id = Uuid::Parse(vid);
      for (const auto& [nid, i] : index) {
        if (cluster_of[nid] != v.value("cluster", "")) continue;
        auto it = node_specs[i].find(name);
        if (it == node_specs[i].end()) {
          bad << "(b) spec of " << name << " missing on node " << i << "\n";
          continue;
        }
        const client::VolumeSpec& s = it->second;
        std::set<std::string> spec_ids;
        for (const auto& sv : s.subvolumes) {
          for (const auto& b : sv) spec_ids.insert(b.brick_id);
        }
        if (!want_id.ok() || s.volume_id != *want_id || s.generation != v.value("generation", 0u) ||
            spec_ids != ids ||
            (s.size_bytes != 0 && s.size_bytes != v.value("size", uint64_t{0}) << 30)) {
          bad << "(b) spec of " << name << " on node " << i << " is generation " << s.generation
              << " size " << s.size_bytes << " with " << spec_ids.size()
              << " bricks; the volume: generation " << v.value("generation", 0) << " size "
              << v.value("size", 0) << " GiB with " << ids.size() << " bricks\n";
        }
      }
    }
    // (c) capacity.
    for (const auto& d : devices) {
      const std::string did = d.value("id", "");
      const uint64_t used = d["storage"].value("used", uint64_t{0});
      const uint64_t total = d["storage"].value("total", uint64_t{0});
      const uint64_t free = d["storage"].value("free", uint64_t{0});
      if (used != device_bricks_kib[did]) {
        bad << "(c) device " << did << " used " << used << " KiB, its bricks have "
            << device_bricks_kib[did] << " KiB\n";
      }
      if (used + free != total) bad << "(c) device " << did << ": used + free != total\n";
      const int i = d.value("node_index", -1);
      if (i < 0) continue;
      auto it = node_devices[i].find(d.value("name", ""));
      if (it == node_devices[i].end()) {
        bad << "(c) device " << d.value("name", "") << " not on node " << i << "\n";
      } else if (it->second.allocated_bytes() != used * 1024 ||
                 it->second.capacity_bytes() != total * 1024) {
        bad << "(c) device " << d.value("name", "") << " on node " << i << ": storaged allocated "
            << it->second.allocated_bytes() << " of " << it->second.capacity_bytes()
            << " bytes; the provisioner: used " << used << " of " << total << " KiB\n";
      }
    }
    return bad.str();
  }

  // Polls the invariant for up to `timeout`; fails the test with what is
  // still wrong.
  void ExpectConverges(const std::string& what, milliseconds timeout = milliseconds(10000)) {
    const auto t0 = Clock::now();
    std::string v;
    for (;;) {
      v = Violations();
      if (v.empty() || Clock::now() - t0 > timeout) break;
      std::this_thread::sleep_for(milliseconds(100));
    }
    EXPECT_EQ(v, "") << what << ": not converged after "
                     << std::chrono::duration<double>(Clock::now() - t0).count() << " s\n"
                     << Tail(prov_->Log());
  }

  // Restarts the provisioner with the crash hook at `point`, runs `op`, waits
  // for the crash (exit 137), restarts it normally. Returns op's reply.
  HttpReply CrashAt(const std::string& point, const std::function<HttpReply()>& op) {
    HttpReply r;
    Status s = prov_->Restart({"CAIRN_PROVISIONER_CRASH_AT=" + point});
    EXPECT_TRUE(s.ok()) << s.ToString();
    if (!s.ok()) return r;
    const size_t crashes_before = Count(prov_->Log(), "step=" + point);
    r = op();
    // The reply may or may not get out before the process exits.
    EXPECT_TRUE(r.status == 202 || r.status == 0) << point << ": " << Show(r);
    auto st = prov_->WaitExit(std::chrono::seconds(20));
    EXPECT_TRUE(st.ok()) << point << ": the provisioner did not crash: " << st.status().ToString()
                         << "\n"
                         << Tail(prov_->Log());
    if (!st.ok()) {
      (void)prov_->Stop(true);
    } else {
      EXPECT_TRUE(WIFEXITED(*st) && WEXITSTATUS(*st) == 137)
          << point << ": " << DescribeWaitStatus(*st);
    }
    EXPECT_EQ(Count(prov_->Log(), "step=" + point), crashes_before + 1) << point;
    s = prov_->Restart();
    EXPECT_TRUE(s.ok()) << s.ToString();
    return r;
  }

  static size_t Count(const std::string& text, const std::string& what) {
    size_t n = 0;
    for (size_t p = text.find(what); p != npos; p = text.find(what, p + 1)) ++n;
    return n;
  }

  void DeleteAll() {
    HttpReply lv = http().Call("GET", "/volumes");
    ASSERT_EQ(lv.status, 200);
    for (const auto& id : Field(Obj(lv), "volumes")) {
      HttpReply d = http().Call("DELETE", "/volumes/" + id.get<std::string>());
      ASSERT_EQ(d.status, 202) << Show(d);
      EXPECT_EQ(http().Follow(d).status, 204);
    }
  }

  // No provisioner brick and no spec left on any node.
  void ExpectNodesEmpty() {
    for (int i = 0; i < nodes_->nodes(); ++i) {
      auto lb = nodes_->client(i).Call(&spb::Storaged::Stub::ListBricks, spb::ListBricksRequest());
      ASSERT_TRUE(lb.ok());
      EXPECT_EQ(lb->bricks_size(), 0) << "node " << i << ": " << lb->DebugString();
      auto ls = nodes_->client(i).Call(&spb::Storaged::Stub::ListVolumeSpecs,
                                       spb::ListVolumeSpecsRequest());
      ASSERT_TRUE(ls.ok());
      EXPECT_EQ(ls->specs_size(), 0) << "node " << i;
    }
  }

  std::unique_ptr<NodeCluster> nodes_;
  std::unique_ptr<ProvisionerProcess> prov_;
};

TEST_F(ProvisionerCrashTest, CreateCrashesRollBack) {
  ExpectConverges("at the start");
  json keep = Create({{"name", "bystander"}, {"size", 1}});  // must survive every recovery
  for (const std::string point :
       {"volume.create:before-bricks", "volume.create:after-bricks", "volume.create:after-spec"}) {
    SCOPED_TRACE(point);
    const std::string name = "c-" + point.substr(point.find(':') + 1);
    HttpReply r = CrashAt(point, [&] {
      return http().Call("POST", "/volumes", json{{"name", name}, {"size", 2}}.dump());
    });
    ExpectConverges(point);
    // Rolled back: no such volume; its operation says so.
    EXPECT_EQ(Obj(http().Call("GET", "/volumes?name=" + name))["volumes"], json::array());
    if (r.status == 202) {
      HttpReply q = http().Call("GET", r.Header("Location"));
      EXPECT_EQ(q.status, 500) << Show(q);
      EXPECT_NE(q.body.find("rolled back"), npos) << q.body;
    }
    // The name can be used again, and what it makes is whole.
    json v = Create({{"name", name}, {"size", 2}});
    EXPECT_EQ(v.value("state", ""), "ready");
    ExpectConverges(point + ", created again");
    HttpReply d = http().Call("DELETE", "/volumes/" + v.value("id", ""));
    ASSERT_EQ(d.status, 202);
    EXPECT_EQ(http().Follow(d).status, 204);
  }
  EXPECT_EQ(Obj(http().Call("GET", "/volumes"))["volumes"], json({keep.value("id", "")}));
  ExpectConverges("at the end");
  DeleteAll();
  ExpectNodesEmpty();
}

TEST_F(ProvisionerCrashTest, DeleteCrashesRollForward) {
  json keep = Create({{"name", "bystander"}, {"size", 1}});
  for (const std::string point :
       {"volume.delete:before-nodes", "volume.delete:after-specs", "volume.delete:after-nodes"}) {
    SCOPED_TRACE(point);
    const std::string name = "d-" + point.substr(point.find(':') + 1);
    json v = Create({{"name", name}, {"size", 2}, {"arbiter", true}});
    const std::string id = v.value("id", "");
    ASSERT_FALSE(id.empty());
    HttpReply r = CrashAt(point, [&] { return http().Call("DELETE", "/volumes/" + id); });
    ExpectConverges(point);
    // Rolled forward: gone, and the operation finished.
    EXPECT_EQ(http().Call("GET", "/volumes/" + id).status, 404);
    EXPECT_EQ(Obj(http().Call("GET", "/volumes?name=" + name))["volumes"], json::array());
    if (r.status == 202) {
      EXPECT_EQ(http().Follow(r).status, 204);
    }
    // Its name is free again.
    json again = Create({{"name", name}, {"size", 1}});
    EXPECT_EQ(again.value("state", ""), "ready");
    ExpectConverges(point + ", created again");
    HttpReply d = http().Call("DELETE", "/volumes/" + again.value("id", ""));
    ASSERT_EQ(d.status, 202);
    EXPECT_EQ(http().Follow(d).status, 204);
  }
  EXPECT_EQ(Obj(http().Call("GET", "/volumes"))["volumes"], json({keep.value("id", "")}));
  DeleteAll();
  ExpectNodesEmpty();
}

TEST_F(ProvisionerCrashTest, ExpandCrashesRollForward) {
  const std::string point = "volume.expand:after-bricks";
  // In place: every brick grows.
  {
    json v = Create({{"name", "grow"}, {"size", 2}});
    const std::string id = v.value("id", "");
    HttpReply r = CrashAt(point, [&] {
      return http().Call("POST", "/volumes/" + id + "/expand", R"({"expand_size":1})");
    });
    ExpectConverges("in place");
    json after = Obj(http().Call("GET", "/volumes/" + id));
    EXPECT_EQ(after.value("size", 0), 3) << after.dump();
    EXPECT_EQ(after.value("state", ""), "ready");
    ASSERT_EQ(after["bricks"].size(), 3u);
    for (const auto& b : after["bricks"]) EXPECT_EQ(b.value("size", uint64_t{0}), 3ull << 20);
    if (r.status == 202) {
      EXPECT_EQ(http().Follow(r).status, 200);
    }
    // And it expands again normally.
    HttpReply e = http().Call("POST", "/volumes/" + id + "/expand", R"({"expand_size":1})");
    ASSERT_EQ(e.status, 202) << Show(e);
    EXPECT_EQ(Obj(http().Follow(e)).value("size", 0), 4);
    ExpectConverges("in place, expanded again");
    DeleteAll();
  }
  // New replica sets: 6 GiB on three 10 GiB devices cannot grow by 5 in place.
  {
    json v = Create({{"name", "wide"}, {"size", 6}});
    const std::string id = v.value("id", "");
    HttpReply r = CrashAt(point, [&] {
      return http().Call("POST", "/volumes/" + id + "/expand", R"({"expand_size":5})");
    });
    ExpectConverges("new sets");
    json after = Obj(http().Call("GET", "/volumes/" + id));
    EXPECT_EQ(after.value("size", 0), 11) << after.dump();
    EXPECT_EQ(after.value("state", ""), "ready");
    EXPECT_GT(after["bricks"].size(), 3u) << after.dump();
    if (r.status == 202) {
      EXPECT_EQ(http().Follow(r).status, 200);
    }
    DeleteAll();
  }
  ExpectConverges("at the end");
  ExpectNodesEmpty();
}

// SIGKILL at a random moment while a client creates, expands and deletes.
//
// Each iteration a client thread runs operations back to back (create, delete
// or expand of a live volume). The test picks one of its first three
// operations and kills the provisioner a random 0–40 ms after a trigger: the
// operation's request being sent, or its 202 plus 0–200 ms (in 40 ms steps),
// so that kills land in the HTTP handler and at every step of the work that
// follows (an operation takes ~100–300 ms here). Then: restart, converge.
TEST_F(ProvisionerCrashTest, RandomKillsDuringCreatesAndDeletes) {
  uint32_t seed = std::random_device{}();
  if (const char* s = std::getenv("CAIRN_TEST_SEED"); s != nullptr && *s != '\0') {
    seed = static_cast<uint32_t>(std::strtoul(s, nullptr, 10));
  }
  std::printf("random kill seed %u (CAIRN_TEST_SEED=%u repeats the schedule)\n", seed, seed);
  std::fflush(stdout);
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  constexpr int kIterations = 15;
  std::map<std::string, int> outcomes;  // "create 202→200" etc.
  std::vector<std::string> kills;
  for (int iter = 0; iter < kIterations; ++iter) {
    SCOPED_TRACE("iteration " + std::to_string(iter));
    std::vector<std::string> live;
    for (const auto& id : Field(Obj(http().Call("GET", "/volumes")), "volumes")) {
      live.push_back(id);
    }
    // What the client thread is doing, for the killer to time its kill.
    std::mutex mu;
    std::condition_variable cv;
    int started = 0;       // operations started
    int accepted_op = -1;  // the last operation answered 202 (its index)
    std::string kind;      // of the last operation started
    Clock::time_point t_started, t_accepted;
    std::atomic<bool> stop{false};
    std::map<std::string, int> seen;
    const uint32_t worker_seed = rng();
    std::thread worker([&] {
      std::mt19937 r(worker_seed);
      while (!stop) {
        const int choice = static_cast<int>(r() % 20);
        std::string what = "create";
        if (!live.empty() && (live.size() >= 4 || choice < 7)) {
          what = "delete";
        } else if (!live.empty() && choice < 11) {
          what = "expand";
        }
        int index;
        {
          std::lock_guard l(mu);
          index = started++;
          kind = what;
          t_started = Clock::now();
        }
        cv.notify_all();
        auto accepted = [&](const HttpReply& a) {
          if (a.status != 202) return;
          {
            std::lock_guard l(mu);
            accepted_op = index;
            t_accepted = Clock::now();
          }
          cv.notify_all();
        };
        HttpReply a, b;
        size_t k = live.empty() ? 0 : r() % live.size();
        if (what == "delete") {
          a = http().Call("DELETE", "/volumes/" + live[k]);
          accepted(a);
          b = http().Follow(a, "admin", std::chrono::seconds(10));
          if (b.status == 204 || a.status == 404) live.erase(live.begin() + k);
        } else if (what == "expand") {
          a = http().Call("POST", "/volumes/" + live[k] + "/expand", R"({"expand_size":1})");
          accepted(a);
          b = http().Follow(a, "admin", std::chrono::seconds(10));
        } else {
          // Names come from a small pool: deleted names are reused, and a
          // create of a live name is idempotent (same shape) or 409.
          json body = {{"name", "k" + std::to_string(r() % 8)}, {"size", 1 + r() % 2}};
          if (r() % 3 == 0) body["arbiter"] = true;
          a = http().Call("POST", "/volumes", body.dump());
          accepted(a);
          b = http().Follow(a, "admin", std::chrono::seconds(10));
          const std::string id = Obj(b).value("id", "");
          if (b.status == 200 && std::find(live.begin(), live.end(), id) == live.end()) {
            live.push_back(id);
          }
        }
        std::lock_guard l(mu);
        seen[what + " " + std::to_string(a.status) + "→" + std::to_string(b.status)]++;
      }
    });
    // The kill.
    const int target = static_cast<int>(rng() % 3);
    const bool after_accept = rng() % 2 == 1;
    const milliseconds offset(after_accept ? 40 * (rng() % 6) : 0);
    const milliseconds jitter(rng() % 41);
    std::string killed;
    {
      std::unique_lock l(mu);
      const bool ready = cv.wait_for(l, std::chrono::seconds(60), [&] {
        return after_accept ? accepted_op >= target || started > target + 1 : started > target;
      });
      EXPECT_TRUE(ready) << "the client thread did not get to operation " << target;
      const bool from_accept = after_accept && accepted_op >= target;
      const Clock::time_point t0 = from_accept ? t_accepted : t_started;
      const std::string trigger =
          (from_accept ? " 202+" : " sent+") + std::to_string((offset + jitter).count()) + " ms";
      l.unlock();
      std::this_thread::sleep_until(t0 + offset + jitter);
      l.lock();  // what runs now is what the kill interrupts
      killed = kind + " #" + std::to_string(started - 1) + trigger;
    }
    stop = true;
    auto st = prov_->Stop(/*kill=*/true);
    worker.join();
    ASSERT_TRUE(st.ok()) << st.status().ToString();
    kills.push_back(killed);
    for (const auto& [k, n] : seen) outcomes[k] += n;
    Status s = prov_->Restart();
    ASSERT_TRUE(s.ok()) << s.ToString();
    ExpectConverges("after the kill during " + killed);
    if (HasFailure()) break;
  }
  std::string summary;
  for (const auto& k : kills) summary += "  killed during " + k + "\n";
  for (const auto& [k, n] : outcomes) summary += "  " + k + ": " + std::to_string(n) + "\n";
  std::printf("operations (HTTP status of the request → of its end; 0: killed):\n%s",
              summary.c_str());
  // What is left still works, and goes cleanly.
  json v = Create({{"name", "after-the-storm"}, {"size", 1}});
  EXPECT_EQ(v.value("state", ""), "ready");
  ExpectConverges("after a last create");
  DeleteAll();
  ExpectConverges("after deleting everything");
  ExpectNodesEmpty();
}

}  // namespace
}  // namespace cairn::test
