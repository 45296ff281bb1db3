// storaged's self-registration with the provisioner (storaged/registration.h,
// docs/storaged.md "Registration"). A real httplib::Server on 127.0.0.1:0
// stands in for the provisioner: it verifies the join-key JWT with VerifyJwt
// (iss node, qsh of POST&/nodes/register), can answer 503 or hang, calls the
// node back (GetNode at `manage`) like the real one, and records every call.
// First the parsers and the Registrar in-process (fast backoff, https with a
// self-signed certificate), then real storaged processes (tests/node_cluster.h)
// with --provisioner and --device.
#include "storaged/registration.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/file_util.h"
#include "common/id.h"
#include "common/jwt.h"
#include "tests/node_cluster.h"

namespace cairn::storaged {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using test::NodeCluster;
using test::NodeClusterOptions;
using test::StoragedClient;
using test::TempDir;
namespace spb = ::cairn::storaged::v1;

constexpr uint64_t kGiB = uint64_t{1} << 30;
constexpr char kClusterId[] = "c0ffee00c0ffee00c0ffee00c0ffee00";

std::string HasText(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos ? "" : "'" + needle + "' not in: " + haystack;
}
#define EXPECT_CONTAINS(haystack, needle) EXPECT_EQ(HasText((haystack), (needle)), "")

bool WaitFor(const std::function<bool()>& pred, milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(milliseconds(10));
  }
  return pred();
}

int64_t MillisBetween(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration_cast<milliseconds>(b - a).count();
}

int64_t UnixNow() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A stand-in provisioner serving POST /nodes/register only.
class FakeProvisioner {
 public:
  struct Call {
    int status = 0;
    nlohmann::json body;
    std::string error;      // the refusal's text
    std::string node_name;  // GetNode at `manage` during the request ("" if not asked)
    Clock::time_point at;
  };

  // With `cert`/`pkey` (PEM files): HTTPS.
  explicit FakeProvisioner(std::string key, const std::string& cert = "",
                           const std::string& pkey = "")
      : key_(std::move(key)) {
    if (cert.empty()) {
      server_ = std::make_unique<httplib::Server>();
    } else {
      server_ = std::make_unique<httplib::SSLServer>(cert.c_str(), pkey.c_str());
    }
    server_->Post("/nodes/register", [this](const httplib::Request& req, httplib::Response& res) {
      Handle(req, res);
    });
    port_ = server_->bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_->listen_after_bind(); });
    WaitFor([this] { return server_->is_running(); }, milliseconds(5000));
  }
  ~FakeProvisioner() {
    Release();
    server_->stop();
    thread_.join();
  }

  int port() const { return port_; }
  std::string url() const {
    return std::string(tls() ? "https" : "http") + "://127.0.0.1:" + std::to_string(port_);
  }
  bool tls() const { return dynamic_cast<httplib::SSLServer*>(server_.get()) != nullptr; }

  // The next `n` authenticated requests get `status`.
  void FailNext(int n, int status = 503) {
    std::lock_guard lock(mu_);
    fail_next_ = n;
    fail_status_ = status;
  }
  // Authenticated requests wait (unanswered) until Release().
  void Hang() {
    std::lock_guard lock(mu_);
    hang_ = true;
  }
  void Release() {
    std::lock_guard lock(mu_);
    hang_ = false;
    cv_.notify_all();
  }
  // Call the node back at `manage` with the token in this file (GetNode).
  void SetNodeTokenFile(const std::string& path) {
    std::lock_guard lock(mu_);
    node_token_file_ = path;
  }

  std::vector<Call> calls() {
    std::lock_guard lock(mu_);
    return calls_;
  }
  int arrived() {
    std::lock_guard lock(mu_);
    return arrived_;
  }
  bool WaitCalls(size_t n, milliseconds timeout) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return calls_.size() >= n; });
  }
  // The id this fake gives the node called `name`.
  static std::string IdFor(const std::string& name) {
    std::string id = JwtQsh("node", name).substr(0, 32);
    return id;
  }

 private:
  void Handle(const httplib::Request& req, httplib::Response& res) {
    Call call;
    call.at = Clock::now();
    {
      std::lock_guard lock(mu_);
      ++arrived_;
    }
    auto refuse = [&](int status, const std::string& why) {
      res.status = status;
      res.set_content(why, "text/plain");
      call.status = status;
      call.error = why;
    };
    const std::string auth = req.get_header_value("Authorization");
    const std::string token = auth.rfind("Bearer ", 0) == 0 ? auth.substr(7) : "";
    auto issuer = PeekJwtIssuer(token);
    auto verified =
        VerifyJwt(token, key_, {.method = "POST", .path = "/nodes/register", .now = UnixNow()});
    auto body = nlohmann::json::parse(req.body, nullptr, false);
    if (token.empty()) {
      refuse(401, "no bearer token");
    } else if (!issuer.ok() || *issuer != "node") {
      refuse(401, "not a node token");
    } else if (!verified.ok()) {
      refuse(401, verified.status().message());
    } else if (verified->value("iss", "") != "node") {
      refuse(401, "iss is not node");
    } else if (!body.is_object()) {
      refuse(422, "body is not JSON");
    } else {
      call.body = body;
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return !hang_; });
      std::string token_file = node_token_file_;
      const bool fail = fail_next_ > 0;
      if (fail) --fail_next_;
      const int fail_status = fail_status_;
      lock.unlock();
      if (!token_file.empty()) {
        // As the provisioner does: the node must answer at `manage`.
        StoragedClient node(body.value("manage", ""), *ReadSecretFile(token_file));
        auto info = node.Call(&spb::Storaged::Stub::GetNode, spb::GetNodeRequest(), {},
                              std::chrono::seconds(5));
        call.node_name = info.ok() ? info->name() : "error: " + info.status().ToString();
      }
      if (fail) {
        refuse(fail_status, "injected failure");
      } else {
        const std::string cluster = body.value("cluster", "");
        nlohmann::json reply{{"id", IdFor(body.value("name", ""))},
                             {"cluster", cluster.empty() ? kClusterId : cluster}};
        res.status = 200;
        res.set_content(reply.dump(), "application/json");
        call.status = 200;
      }
    }
    std::lock_guard lock(mu_);
    calls_.push_back(std::move(call));
    cv_.notify_all();
  }

  const std::string key_;
  std::unique_ptr<httplib::Server> server_;
  int port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Call> calls_;
  int arrived_ = 0;
  int fail_next_ = 0;
  int fail_status_ = 503;
  bool hang_ = false;
  std::string node_token_file_;
};

// A self-signed certificate for IP 127.0.0.1 (also its own CA) and its key, as PEM files.
bool MakeSelfSignedCert(const std::string& cert_path, const std::string& key_path) {
  EVP_PKEY* pkey = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  if (pkey == nullptr) return false;
  X509* x = X509_new();
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
  X509_gmtime_adj(X509_getm_notBefore(x), -60);
  X509_gmtime_adj(X509_getm_notAfter(x), 3600);
  X509_set_pubkey(x, pkey);
  X509_NAME* name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("127.0.0.1"), -1, -1, 0);
  X509_set_issuer_name(x, name);
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, x, x, nullptr, nullptr, 0);
  bool ok = true;
  for (auto [nid, value] : {std::pair{NID_subject_alt_name, "IP:127.0.0.1"},
                            std::pair{NID_basic_constraints, "critical,CA:TRUE"}}) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
    ok = ok && ext != nullptr && X509_add_ext(x, ext, -1) == 1;
    X509_EXTENSION_free(ext);
  }
  ok = ok && X509_sign(x, pkey, EVP_sha256()) > 0;
  BIO* c = BIO_new_file(cert_path.c_str(), "w");
  BIO* k = BIO_new_file(key_path.c_str(), "w");
  ok = ok && c != nullptr && k != nullptr && PEM_write_bio_X509(c, x) == 1 &&
       PEM_write_bio_PrivateKey(k, pkey, nullptr, nullptr, 0, nullptr, nullptr) == 1;
  BIO_free(c);
  BIO_free(k);
  X509_free(x);
  EVP_PKEY_free(pkey);
  return ok;
}

// ---------------------------------------------------------------------------
// Parsers.

TEST(ProvisionerUrlTest, AcceptsHttpAndHttpsWithHostAndPort) {
  auto u = ParseProvisionerUrl("http://127.0.0.1:8080");
  ASSERT_TRUE(u.ok()) << u.status().ToString();
  EXPECT_EQ(u->scheme, "http");
  EXPECT_EQ(u->host, "127.0.0.1");
  EXPECT_EQ(u->port, 8080);
  EXPECT_EQ(u->ToString(), "http://127.0.0.1:8080");

  u = ParseProvisionerUrl("https://prov.cairn.svc:8443/");
  ASSERT_TRUE(u.ok()) << u.status().ToString();
  EXPECT_EQ(u->scheme, "https");
  EXPECT_EQ(u->host, "prov.cairn.svc");
  EXPECT_EQ(u->port, 8443);

  u = ParseProvisionerUrl("http://[::1]:9");
  ASSERT_TRUE(u.ok()) << u.status().ToString();
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->ToString(), "http://[::1]:9");

  EXPECT_EQ(ParseProvisionerUrl("http://prov")->port, 80);
  EXPECT_EQ(ParseProvisionerUrl("https://prov")->port, 443);
}

TEST(ProvisionerUrlTest, RefusesEverythingElseClearly) {
  for (const char* bad : {"", "127.0.0.1:8080", "ftp://h:1", "http://", "http://:80", "http://h:0",
                          "http://h:70000", "http://h:x", "http://h:", "http://h:1/api",
                          "http://::1:8080", "http://[::1", "http://u@h:1", "http://h:1?x=1"}) {
    auto u = ParseProvisionerUrl(bad);
    EXPECT_EQ(u.status().code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_CONTAINS(u.status().message(), "want http://host:port or https://host:port");
  }
}

TEST(ProvisionerUrlTest, ThisBuildSupportsHttps) {
  // Debian's cpp-httplib is built with OpenSSL and says so in its pkg-config
  // flags (-DCPPHTTPLIB_OPENSSL_SUPPORT), which every user of it inherits.
  EXPECT_TRUE(HttpsSupported());
}

TEST(DeviceFlagTest, IdPathAndOptionalGiB) {
  auto d = ParseDeviceFlag("d1=/srv/d1");
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->id, "d1");
  EXPECT_EQ(d->path, "/srv/d1");
  EXPECT_EQ(d->capacity_bytes, 0u);

  d = ParseDeviceFlag("d2=/srv/d2:100");
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->path, "/srv/d2");
  EXPECT_EQ(d->capacity_bytes, 100 * kGiB);

  d = ParseDeviceFlag("d3=/srv/d3:0");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->path, "/srv/d3");
  EXPECT_EQ(d->capacity_bytes, 0u);

  // A colon not followed by digits belongs to the path; '=' in the path is kept.
  d = ParseDeviceFlag("d4=/srv/a:b=c");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->path, "/srv/a:b=c");
  EXPECT_EQ(d->capacity_bytes, 0u);
}

TEST(DeviceFlagTest, MalformedIsInvalidArgumentNamingTheFlag) {
  for (const char* bad : {"d1", "=/srv/d1", "d1=", "d1=srv/d1", "d1=:5", "d1=/x:99999999999999999",
                          "d1=/x:18446744073709551616"}) {
    auto d = ParseDeviceFlag(bad);
    EXPECT_EQ(d.status().code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_CONTAINS(d.status().message(), std::string("--device=") + bad);
  }
}

TEST(RegistrationRequestTest, BodyHasEveryField) {
  RegistrationRequest r{
      .name = "n1", .manage = "10.0.0.2:24007", .storage = "10.0.0.2", .zone = 0, .cluster = ""};
  EXPECT_EQ(r.ToJson(), nlohmann::json::parse(R"({"name":"n1","manage":"10.0.0.2:24007",
      "storage":"10.0.0.2","zone":0,"cluster":""})"));
}

// ---------------------------------------------------------------------------
// The Registrar in-process, against the fake, with a fast backoff.

class RegistrarTest : public ::testing::Test {
 protected:
  RegistrarTest() : key_(RandomHexToken()), fake_(key_) {}

  std::unique_ptr<Registrar> Make(const std::string& key, milliseconds initial = milliseconds(100),
                                  milliseconds max = milliseconds(250),
                                  const std::string& url = "") {
    RegistrarOptions o;
    o.provisioner = url.empty() ? fake_.url() : url;
    o.join_key = key;
    o.initial_backoff = initial;
    o.max_backoff = max;
    auto r = Registrar::Create(std::move(o));
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? std::move(*r) : nullptr;
  }
  static RegistrationRequest Request() {
    return {.name = "node-a", .manage = "127.0.0.1:1", .storage = "st.a", .zone = 2, .cluster = ""};
  }

  std::string key_;
  FakeProvisioner fake_;
};

TEST_F(RegistrarTest, RegistersWithAVerifiedTokenAndTheBody) {
  auto r = Make(key_);
  ASSERT_NE(r, nullptr);
  std::optional<Registration> seen;
  std::mutex mu;
  r->Start(Request(), [&](const Registration& reg) {
    std::lock_guard lock(mu);
    seen = reg;
  });
  ASSERT_TRUE(r->WaitRegistered(milliseconds(10000)));
  EXPECT_TRUE(r->registered());
  auto calls = fake_.calls();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].status, 200) << calls[0].error;
  EXPECT_EQ(calls[0].body, Request().ToJson());
  auto reg = r->registration();
  ASSERT_TRUE(reg.has_value());
  EXPECT_EQ(reg->node_id, FakeProvisioner::IdFor("node-a"));
  EXPECT_EQ(reg->cluster, kClusterId);
  EXPECT_EQ(reg->attempts, 1);
  r->Stop();
  std::lock_guard lock(mu);
  ASSERT_TRUE(seen.has_value());
  EXPECT_EQ(seen->node_id, reg->node_id);
}

TEST_F(RegistrarTest, RetriesWithDoublingBackoffUntil200) {
  fake_.FailNext(3, 503);
  auto r = Make(key_);
  ASSERT_NE(r, nullptr);
  r->Start(Request());
  ASSERT_TRUE(r->WaitRegistered(milliseconds(10000)));
  auto calls = fake_.calls();
  ASSERT_EQ(calls.size(), 4u);
  EXPECT_EQ(calls[0].status, 503);
  EXPECT_EQ(calls[2].status, 503);
  EXPECT_EQ(calls[3].status, 200);
  EXPECT_EQ(r->registration()->attempts, 4);
  // 100 ms, 200 ms, then capped at 250 ms.
  EXPECT_GE(MillisBetween(calls[0].at, calls[1].at), 95);
  EXPECT_GE(MillisBetween(calls[1].at, calls[2].at), 195);
  EXPECT_GE(MillisBetween(calls[2].at, calls[3].at), 245);
  EXPECT_LT(MillisBetween(calls[2].at, calls[3].at), 2000);
}

TEST_F(RegistrarTest, AWrongKeyIs401AndKeepsRetrying) {
  auto r = Make(RandomHexToken());
  ASSERT_NE(r, nullptr);
  r->Start(Request());
  ASSERT_TRUE(fake_.WaitCalls(3, milliseconds(10000)));
  for (const auto& c : fake_.calls()) {
    EXPECT_EQ(c.status, 401);
    EXPECT_CONTAINS(c.error, "signature");
  }
  EXPECT_FALSE(r->registered());
  EXPECT_GE(r->attempts(), 3);
  const auto t = Clock::now();
  r->Stop();
  EXPECT_LT(MillisBetween(t, Clock::now()), 500);
}

TEST_F(RegistrarTest, StopWakesTheBackoffWaitAtOnce) {
  fake_.FailNext(100, 503);
  auto r = Make(key_, std::chrono::seconds(30), std::chrono::seconds(30));
  ASSERT_NE(r, nullptr);
  r->Start(Request());
  ASSERT_TRUE(fake_.WaitCalls(1, milliseconds(10000)));
  std::this_thread::sleep_for(milliseconds(50));  // now in the 30 s wait
  const auto t = Clock::now();
  r->RequestStop();
  EXPECT_LT(MillisBetween(t, Clock::now()), 50);  // RequestStop never blocks
  r->Stop();
  EXPECT_LT(MillisBetween(t, Clock::now()), 500);
  EXPECT_EQ(r->attempts(), 1);
  EXPECT_FALSE(r->WaitRegistered(milliseconds(10)));
}

TEST_F(RegistrarTest, StopAbortsARequestInFlight) {
  fake_.Hang();
  auto r = Make(key_);
  ASSERT_NE(r, nullptr);
  r->Start(Request());
  ASSERT_TRUE(WaitFor([&] { return fake_.arrived() == 1; }, milliseconds(10000)));
  std::this_thread::sleep_for(milliseconds(50));
  const auto t = Clock::now();
  r->Stop();  // the read timeout is 30 s: only the abort ends it this soon
  EXPECT_LT(MillisBetween(t, Clock::now()), 1000);
  EXPECT_FALSE(r->registered());
  fake_.Release();
}

TEST_F(RegistrarTest, AnUnreachableProvisionerIsRetried) {
  // A port nothing listens on: bound (not listening) and closed again.
  int port = 0;
  {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(fd, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
    port = ntohs(addr.sin_port);
    ::close(fd);
  }
  auto r =
      Make(key_, milliseconds(50), milliseconds(50), "http://127.0.0.1:" + std::to_string(port));
  ASSERT_NE(r, nullptr);
  r->Start(Request());
  EXPECT_TRUE(WaitFor([&] { return r->attempts() >= 3; }, milliseconds(10000)));
  EXPECT_FALSE(r->registered());
  const auto t = Clock::now();
  r->Stop();
  EXPECT_LT(MillisBetween(t, Clock::now()), 500);
}

TEST_F(RegistrarTest, CreateRefusesBadOptions) {
  RegistrarOptions o;
  o.provisioner = "ftp://x:1";
  o.join_key = key_;
  EXPECT_EQ(Registrar::Create(o).status().code(), StatusCode::kInvalidArgument);
  o.provisioner = fake_.url();
  o.join_key = "";
  EXPECT_EQ(Registrar::Create(o).status().code(), StatusCode::kInvalidArgument);
  o.join_key = key_;
  o.ca_file = "/nonexistent/ca.pem";
  auto s = Registrar::Create(o).status();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);  // a CA file with http://
  o.provisioner = "https://127.0.0.1:1";
  s = Registrar::Create(o).status();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_CONTAINS(s.message(), "/nonexistent/ca.pem");
}

TEST(RegistrarHttpsTest, RegistersOverTlsWithTheCaFileAndNotWithoutIt) {
  TempDir dir("cairn-reg-tls");
  const std::string cert = dir.Sub("cert.pem"), pkey = dir.Sub("key.pem");
  ASSERT_TRUE(MakeSelfSignedCert(cert, pkey));
  const std::string key = RandomHexToken();
  FakeProvisioner fake(key, cert, pkey);
  ASSERT_TRUE(fake.tls());

  RegistrarOptions o;
  o.provisioner = fake.url();
  o.join_key = key;
  o.initial_backoff = o.max_backoff = milliseconds(100);
  // The system's store does not know this certificate: refused, retried.
  auto untrusting = Registrar::Create(o);
  ASSERT_TRUE(untrusting.ok()) << untrusting.status().ToString();
  (*untrusting)->Start({.name = "tls-node", .manage = "127.0.0.1:1", .storage = "s"});
  EXPECT_TRUE(WaitFor([&] { return (*untrusting)->attempts() >= 2; }, milliseconds(10000)));
  EXPECT_FALSE((*untrusting)->registered());
  (*untrusting)->Stop();
  EXPECT_TRUE(fake.calls().empty());  // no request got through the handshake

  o.ca_file = cert;
  auto r = Registrar::Create(o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  (*r)->Start({.name = "tls-node", .manage = "127.0.0.1:1", .storage = "s", .zone = 4});
  ASSERT_TRUE((*r)->WaitRegistered(milliseconds(10000)));
  auto calls = fake.calls();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].status, 200);
  EXPECT_EQ(calls[0].body.value("zone", -1), 4);
  EXPECT_EQ((*r)->registration()->node_id, FakeProvisioner::IdFor("tls-node"));
}

// ---------------------------------------------------------------------------
// Real storaged processes (one node, tests/node_cluster.h) with --provisioner.

class StoragedRegistrationTest : public ::testing::Test {
 protected:
  StoragedRegistrationTest() : key_(RandomHexToken()), fake_(key_) {
    key_file_ = dir_.Sub("join.key");
    EXPECT_TRUE(WriteFileAtomic(key_file_, key_ + "\n", 0600).ok());
  }

  // One storaged (node0, listening on port 0 at its first start) whose
  // command line gets extra_ appended at every start.
  void StartNode() {
    NodeClusterOptions o{.nodes = 1, .create_volume = false};
    o.wrap = [this](int, const std::vector<std::string>& argv) {
      std::vector<std::string> out = argv;
      for (const auto& a : argv) {
        if (a.rfind("--token-file=", 0) == 0) fake_.SetNodeTokenFile(a.substr(13));
      }
      out.insert(out.end(), extra_.begin(), extra_.end());
      return out;
    };
    auto c = NodeCluster::Start(o);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    c_ = std::move(*c);
  }
  std::vector<std::string> RegistrationArgs(const std::string& key_file) const {
    return {"--provisioner=" + fake_.url(), "--join-key-file=" + key_file};
  }
  std::string Metrics() {
    auto colon = c_->metrics_address(0).rfind(':');
    httplib::Client http(c_->metrics_address(0).substr(0, colon),
                         std::stoi(c_->metrics_address(0).substr(colon + 1)));
    http.set_connection_timeout(5);
    auto res = http.Get("/metrics", {{"Authorization", "Bearer " + c_->token()}});
    return res ? res->body : "";
  }
  std::string ReadyFile() { return test::ReadFileOrEmpty(c_->dir().Sub("node0/ready.json")); }
  std::map<std::string, spb::Device> Devices() {
    auto list = c_->client(0).Call(&spb::Storaged::Stub::ListDevices, spb::ListDevicesRequest());
    EXPECT_TRUE(list.ok()) << list.status().ToString();
    std::map<std::string, spb::Device> out;
    if (list.ok()) {
      for (const auto& d : list->devices()) out[d.device_id()] = d;
    }
    return out;
  }

  TempDir dir_{"cairn-reg"};
  std::string key_;
  std::string key_file_;
  FakeProvisioner fake_;
  std::vector<std::string> extra_;
  std::unique_ptr<NodeCluster> c_;  // after fake_: goes first
};

TEST_F(StoragedRegistrationTest, RegistersWithTheActualPortAddsItsDevicesAndAgainOnRestart) {
  const std::string d1 = dir_.MakeSubdir("d1"), d2 = dir_.MakeSubdir("d2");
  extra_ = RegistrationArgs(key_file_);
  extra_.insert(extra_.end(), {"--zone=3", "--storage-host=storage.node0.test",
                               "--cluster=" + std::string(kClusterId), "--device=d1=" + d1,
                               "--device=d2=" + d2 + ":1"});
  StartNode();
  ASSERT_TRUE(fake_.WaitCalls(1, milliseconds(20000)));
  auto calls = fake_.calls();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].status, 200) << calls[0].error;
  const nlohmann::json& b = calls[0].body;
  EXPECT_EQ(b.value("name", ""), "node0");
  // The address it really listens on (it was started with port 0).
  EXPECT_EQ(b.value("manage", ""), c_->api_address(0));
  EXPECT_NE(b.value("manage", ""), "127.0.0.2:0");
  EXPECT_EQ(b.value("storage", ""), "storage.node0.test");
  EXPECT_EQ(b.value("zone", -1), 3);
  EXPECT_EQ(b.value("cluster", ""), kClusterId);
  EXPECT_EQ(calls[0].node_name, "node0");  // the API served when it registered

  // Its devices: d1 (the file system's size), d2 (1 GiB), and dev0 (NodeCluster's).
  auto devices = Devices();
  ASSERT_EQ(devices.size(), 3u);
  ASSERT_TRUE(devices.count("d1") && devices.count("d2") && devices.count("dev0"));
  EXPECT_EQ(devices["d1"].path(), d1);
  EXPECT_EQ(devices["d1"].capacity_bytes(), devices["d1"].fs_size_bytes());
  EXPECT_EQ(devices["d2"].path(), d2);
  EXPECT_EQ(devices["d2"].capacity_bytes(), kGiB);

  const std::string id = FakeProvisioner::IdFor("node0");
  EXPECT_TRUE(
      WaitFor([&] { return Metrics().find("cairn_storaged_registered 1\n") != std::string::npos; },
              milliseconds(5000)))
      << Metrics();
  EXPECT_TRUE(
      WaitFor([&] { return ReadyFile().find(id) != std::string::npos; }, milliseconds(5000)));
  auto ready = nlohmann::json::parse(ReadyFile(), nullptr, false);
  ASSERT_TRUE(ready.is_object()) << ReadyFile();
  EXPECT_EQ(ready.value("provisioner_node_id", ""), id);
  EXPECT_EQ(ready.value("provisioner_cluster", ""), kClusterId);
  EXPECT_EQ(ready.value("listen", ""), c_->api_address(0));
  std::string log = c_->Log(0);
  EXPECT_CONTAINS(log, "event=registered node_id=" + id + " cluster=" + kClusterId);
  EXPECT_CONTAINS(log, "event=device-flag device=d2");
  EXPECT_EQ(log.find(key_), std::string::npos) << "the join key is in the log";

  // A restart registers again; the --device flags find their devices (no error).
  auto stopped = c_->StopNode(0);
  ASSERT_TRUE(stopped.ok()) << stopped.status().ToString();
  EXPECT_TRUE(WIFEXITED(*stopped) && WEXITSTATUS(*stopped) == 0);
  ASSERT_TRUE(c_->StartNode(0).ok());
  ASSERT_TRUE(fake_.WaitCalls(2, milliseconds(20000)));
  calls = fake_.calls();
  EXPECT_EQ(calls[1].status, 200) << calls[1].error;
  EXPECT_EQ(calls[1].body.value("manage", ""), c_->api_address(0));
  EXPECT_EQ(calls[1].body.value("name", ""), "node0");
  EXPECT_EQ(calls[1].node_name, "node0");
  EXPECT_EQ(Devices().size(), 3u);
  EXPECT_TRUE(
      WaitFor([&] { return ReadyFile().find(id) != std::string::npos; }, milliseconds(5000)));
  log = c_->Log(0);
  EXPECT_CONTAINS(log, "event=device-flag device=d1 path=" + d1);
  EXPECT_CONTAINS(log, "created=false");
  EXPECT_EQ(log.find(key_), std::string::npos);
}

TEST_F(StoragedRegistrationTest, RetriesAfterTwo503sAndThenRegisters) {
  fake_.FailNext(2, 503);
  extra_ = RegistrationArgs(key_file_);
  const auto t0 = Clock::now();
  StartNode();
  // Readiness does not wait for registration.
  EXPECT_LT(fake_.calls().size(), 3u);
  EXPECT_CONTAINS(Metrics(), "cairn_storaged_registered 0\n");
  ASSERT_TRUE(fake_.WaitCalls(3, milliseconds(20000)));
  auto calls = fake_.calls();
  EXPECT_EQ(calls[0].status, 503);
  EXPECT_EQ(calls[1].status, 503);
  EXPECT_EQ(calls[2].status, 200) << calls[2].error;
  // Backoff: 1 s, then 2 s.
  EXPECT_GE(MillisBetween(calls[0].at, calls[1].at), 950);
  EXPECT_GE(MillisBetween(calls[1].at, calls[2].at), 1950);
  EXPECT_LT(MillisBetween(t0, calls[2].at), 15000);
  EXPECT_TRUE(
      WaitFor([&] { return Metrics().find("cairn_storaged_registered 1\n") != std::string::npos; },
              milliseconds(5000)));
  // Logged just before the state changes (registration.cc); give it a moment regardless.
  const std::string registered = "event=registered node_id=" + FakeProvisioner::IdFor("node0");
  WaitFor([&] { return c_->Log(0).find(registered) != std::string::npos; }, milliseconds(5000));
  const std::string log = c_->Log(0);
  EXPECT_CONTAINS(log, "status=503 body=\"injected failure\" retry_in_ms=1000");
  EXPECT_CONTAINS(log, "status=503 body=\"injected failure\" retry_in_ms=2000");
  EXPECT_CONTAINS(log, registered);
}

TEST_F(StoragedRegistrationTest, AWrongJoinKeyIsRefusedRetriedNeverLoggedAndSigtermIsPrompt) {
  const std::string wrong = RandomHexToken();
  const std::string wrong_file = dir_.Sub("wrong.key");
  ASSERT_TRUE(WriteFileAtomic(wrong_file, wrong + "\n", 0600).ok());
  extra_ = RegistrationArgs(wrong_file);
  StartNode();
  ASSERT_TRUE(fake_.WaitCalls(2, milliseconds(20000)));
  for (const auto& call : fake_.calls()) {
    EXPECT_EQ(call.status, 401);
    EXPECT_CONTAINS(call.error, "bad signature");
  }
  EXPECT_CONTAINS(Metrics(), "cairn_storaged_registered 0\n");
  EXPECT_TRUE(WaitFor([&] { return c_->Log(0).find("retry_in_ms=2000") != std::string::npos; },
                      milliseconds(5000)));
  std::string log = c_->Log(0);
  EXPECT_CONTAINS(log, "event=register_failed");
  EXPECT_CONTAINS(log, "status=401");
  EXPECT_EQ(log.find(wrong), std::string::npos) << "the join key is in the log";
  EXPECT_EQ(log.find(key_), std::string::npos);
  EXPECT_EQ(ReadyFile().find("provisioner_node_id"), std::string::npos);

  // SIGTERM while it waits to retry: out within 2 s, exit 0.
  const auto t = Clock::now();
  auto stopped = c_->StopNode(0, milliseconds(2000));
  ASSERT_TRUE(stopped.ok()) << stopped.status().ToString();
  EXPECT_LT(MillisBetween(t, Clock::now()), 2000);
  EXPECT_TRUE(WIFEXITED(*stopped) && WEXITSTATUS(*stopped) == 0)
      << test::DescribeWaitStatus(*stopped);
  log = c_->Log(0);
  EXPECT_CONTAINS(log, "event=stopped");
  EXPECT_EQ(log.find(wrong), std::string::npos);
}

TEST_F(StoragedRegistrationTest, SigtermWhileARequestHangsIsPrompt) {
  fake_.Hang();
  extra_ = RegistrationArgs(key_file_);
  StartNode();
  ASSERT_TRUE(WaitFor([&] { return fake_.arrived() >= 1; }, milliseconds(20000)));
  const auto t = Clock::now();
  auto stopped = c_->StopNode(0, milliseconds(2000));
  ASSERT_TRUE(stopped.ok()) << stopped.status().ToString();
  EXPECT_LT(MillisBetween(t, Clock::now()), 2000);
  EXPECT_TRUE(WIFEXITED(*stopped) && WEXITSTATUS(*stopped) == 0);
  fake_.Release();
}

TEST_F(StoragedRegistrationTest, BadFlagsAndConflictingDevicesAreStartErrors) {
  StartNode();  // no registration: dev0 is added by NodeCluster
  ASSERT_TRUE(c_->StopNode(0).ok());
  const std::string other = dir_.MakeSubdir("other");
  const std::string dev0 = c_->device_path(0);
  struct Case {
    std::vector<std::string> args;
    int exit_code;
    std::string says;
  };
  const std::vector<Case> cases = {
      // A device that conflicts with the state: exit 1.
      {{"--device=dev0=" + other}, 1, "device dev0 exists with path " + dev0},
      {{"--device=dev0=" + dev0 + ":1"}, 1, "device dev0 exists with path " + dev0},
      {{"--device=d9=" + dev0}, 1, "is already device dev0"},
      {{"--device=d9=" + dir_.Sub("missing")}, 1, "not an existing directory"},
      // A bad command line: exit 2.
      {{"--device=nonsense"}, 2, "want ID=PATH[:GiB]"},
      {{"--provisioner=ftp://127.0.0.1:1", "--join-key-file=" + key_file_},
       2,
       "unsupported scheme"},
      {{"--provisioner=" + fake_.url()}, 2, "--join-key-file is required with --provisioner"},
      {{"--provisioner=" + fake_.url(), "--join-key-file=" + dir_.Sub("nokey")},
       2,
       "--join-key-file"},
      {{"--provisioner=" + fake_.url(), "--join-key-file=" + key_file_, "--zone=-1"},
       2,
       "--zone must be an integer >= 0"},
  };
  for (const auto& tc : cases) {
    SCOPED_TRACE(tc.args[0]);
    const size_t before = c_->Log(0).size();
    Status s = c_->StartNode(0, tc.args);
    ASSERT_FALSE(s.ok());
    EXPECT_CONTAINS(s.message(), "exited with " + std::to_string(tc.exit_code));
    EXPECT_CONTAINS(c_->Log(0).substr(before), tc.says);
  }
  // A short key is refused at start too.
  const std::string short_file = dir_.Sub("short.key");
  ASSERT_TRUE(WriteFileAtomic(short_file, "short\n", 0600).ok());
  Status s = c_->StartNode(0, {"--provisioner=" + fake_.url(), "--join-key-file=" + short_file});
  EXPECT_CONTAINS(s.message(), "exited with 2");
  EXPECT_CONTAINS(c_->Log(0), "shorter than 16 bytes");
  EXPECT_TRUE(fake_.calls().empty());

  // The identical device is fine, and so is a new one; nothing registers without --provisioner.
  ASSERT_TRUE(c_->StartNode(0, {"--device=dev0=" + dev0, "--device=d9=" + other}).ok());
  auto devices = Devices();
  EXPECT_EQ(devices.size(), 2u);
  EXPECT_EQ(devices["d9"].path(), other);
  EXPECT_CONTAINS(Metrics(), "cairn_storaged_registered 0\n");
  EXPECT_TRUE(fake_.calls().empty());
}

}  // namespace
}  // namespace cairn::storaged
