// The CSI contract suite: cairn-csi driven over its unix socket with the CSI
// spec's gRPC stubs, against a real local cluster (3 storaged nodes on
// 127.0.0.2-4 + cairn-provisioner): every RPC with valid and invalid
// arguments, idempotency, the create → stage → publish ×2 → write/read →
// unpublish → unstage → delete lifecycle, expansion seen by statvfs (df),
// stats, and FUSE processes killed under published volumes (docs/csi.md).
//
// Every test starts its own cluster and driver and unmounts whatever is left
// under its directory when it ends, also after a failure.
#include <dirent.h>
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "common/file_util.h"
#include "proto/csi.grpc.pb.h"
#include "tests/provisioner_util.h"

namespace cairn::test {
namespace {

namespace csi = ::csi::v1;
using nlohmann::json;
using std::chrono::milliseconds;

constexpr int64_t kGiB = int64_t{1} << 30;
constexpr char kTopologyKey[] = "topology.cairn.io/cluster";

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

bool WriteText(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  out.close();
  return out.good();
}

// errno of stat(path), 0 when it works.
int StatErrno(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 ? 0 : errno;
}

bool IsMounted(const std::string& path) { return TopMountAt(path).has_value(); }

// The pids of cairn-mount processes with `marker` among their arguments.
std::vector<pid_t> CairnMountPids(const std::string& marker) {
  std::vector<pid_t> out;
  DIR* d = ::opendir("/proc");
  if (d == nullptr) return out;
  while (dirent* e = ::readdir(d)) {
    char* end = nullptr;
    long pid = std::strtol(e->d_name, &end, 10);
    if (*end != '\0' || pid <= 0) continue;
    auto argv = ProcessCmdline(static_cast<pid_t>(pid));
    if (argv.empty() || argv[0].find("cairn-mount") == std::string::npos) continue;
    if (std::find(argv.begin(), argv.end(), marker) != argv.end()) out.push_back(pid);
  }
  ::closedir(d);
  return out;
}

template <class Pred>
bool WaitUntil(Pred pred, milliseconds timeout, milliseconds step = milliseconds(50)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(step);
  }
  return pred();
}

// A finished call: its status and reply.
template <class Rep>
struct Result {
  grpc::Status status;
  Rep reply;
  bool ok() const { return status.ok(); }
  grpc::StatusCode code() const { return status.error_code(); }
  std::string Show() const {
    return "code " + std::to_string(status.error_code()) + ": " + status.error_message();
  }
};

// A cairn-csi child process and stubs on its socket.
class CsiDriver {
 public:
  CsiDriver(std::string dir, std::vector<std::string> args)
      : dir_(std::move(dir)), args_(std::move(args)) {}
  ~CsiDriver() { Stop(SIGTERM); }

  std::string socket() const { return dir_ + "/csi.sock"; }
  std::string log() const { return dir_ + "/cairn-csi.log"; }
  pid_t pid() const { return pid_; }

  Status Start() {
    std::vector<std::string> argv = {CAIRN_CSI_PATH, "--endpoint", "unix://" + socket()};
    argv.insert(argv.end(), args_.begin(), args_.end());
    ::unlink(socket().c_str());
    pid_ = ::fork();
    if (pid_ < 0) return Status::Internal("fork failed");
    if (pid_ == 0) {
      int fd = ::open(log().c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      std::vector<char*> c;
      for (auto& a : argv) c.push_back(a.data());
      c.push_back(nullptr);
      ::execv(c[0], c.data());
      ::_exit(127);
    }
    channel_ = grpc::CreateChannel("unix:" + socket(), grpc::InsecureChannelCredentials());
    identity_ = csi::Identity::NewStub(channel_);
    controller_ = csi::Controller::NewStub(channel_);
    node_ = csi::Node::NewStub(channel_);
    const bool up = WaitUntil(
        [&] {
          int st = 0;
          if (pid_ > 0 && ::waitpid(pid_, &st, WNOHANG) == pid_) {
            pid_ = -1;
            return true;  // exited: reported below
          }
          if (::access(socket().c_str(), F_OK) != 0) return false;
          grpc::ClientContext ctx;
          ctx.set_deadline(std::chrono::system_clock::now() + milliseconds(500));
          csi::GetPluginInfoResponse rep;
          return identity_->GetPluginInfo(&ctx, csi::GetPluginInfoRequest(), &rep).ok();
        },
        milliseconds(20000), milliseconds(100));
    if (!up || pid_ < 0) {
      return Status::Unavailable("cairn-csi did not come up:\n" + ReadAll(log()));
    }
    return Status::Ok();
  }

  void Stop(int sig) {
    if (pid_ <= 0) return;
    ::kill(pid_, sig);
    int st = 0;
    for (int i = 0; i < 200; ++i) {
      if (::waitpid(pid_, &st, WNOHANG) == pid_) {
        pid_ = -1;
        return;
      }
      std::this_thread::sleep_for(milliseconds(50));
    }
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, &st, 0);
    pid_ = -1;
  }

  template <class Stub, class Req, class Rep>
  static Result<Rep> Call(Stub* stub,
                          grpc::Status (Stub::*method)(grpc::ClientContext*, const Req&, Rep*),
                          const Req& req) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
    Result<Rep> r;
    r.status = (stub->*method)(&ctx, req, &r.reply);
    return r;
  }

  csi::Identity::Stub* identity() { return identity_.get(); }
  csi::Controller::Stub* controller() { return controller_.get(); }
  csi::Node::Stub* node() { return node_.get(); }

 private:
  std::string dir_;
  std::vector<std::string> args_;
  pid_t pid_ = -1;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<csi::Identity::Stub> identity_;
  std::unique_ptr<csi::Controller::Stub> controller_;
  std::unique_ptr<csi::Node::Stub> node_;
};

csi::VolumeCapability MountCap(csi::VolumeCapability::AccessMode::Mode mode =
                                   csi::VolumeCapability::AccessMode::MULTI_NODE_MULTI_WRITER) {
  csi::VolumeCapability cap;
  cap.mutable_mount();
  cap.mutable_access_mode()->set_mode(mode);
  return cap;
}

csi::VolumeCapability BlockCap() {
  csi::VolumeCapability cap;
  cap.mutable_block();
  cap.mutable_access_mode()->set_mode(csi::VolumeCapability::AccessMode::SINGLE_NODE_WRITER);
  return cap;
}

class CsiContractTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto c = NodeCluster::Start({.nodes = 3, .device_capacity = 40 * kGiB, .create_volume = false});
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    nodes_ = std::move(*c);
    auto p = ProvisionerProcess::Start(*nodes_);
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    prov_ = std::move(*p);
    Status s = prov_->RegisterAll({1, 2, 3});
    ASSERT_TRUE(s.ok()) << s.ToString() << "\n" << prov_->Log();
    key_file_ = dir_.Sub("admin.key");
    ASSERT_TRUE(WriteText(key_file_, prov_->http().key("admin") + "\n"));
    ::chmod(key_file_.c_str(), 0600);
    ASSERT_NO_FATAL_FAILURE(StartDriver());
  }

  void TearDown() override {
    if (HasFailure() && driver_) {
      std::cerr << "---- cairn-csi log (tail) ----\n";
      std::string l = ReadAll(driver_->log());
      std::cerr << (l.size() > 20000 ? l.substr(l.size() - 20000) : l) << "\n";
    }
    driver_.reset();
    extra_driver_.reset();
    for (const auto& mp : MountPointsUnder(dir_.path())) {
      for (int i = 0; i < 8 && IsMounted(mp); ++i) ::umount2(mp.c_str(), MNT_DETACH);
    }
  }

  std::vector<std::string> DriverArgs(const std::string& state_dir, int health_interval_ms,
                                      const std::string& role = "both") {
    return {"--node-id",
            "test-node",
            "--role",
            role,
            "--provisioner",
            prov_->url(),
            "--provisioner-user",
            "admin",
            "--provisioner-key-file",
            key_file_,
            "--data-token-file",
            nodes_->token_path(),
            "--state-dir",
            state_dir,
            "--mount-binary",
            CAIRN_MOUNT_PATH,
            "--health-interval-ms",
            std::to_string(health_interval_ms),
            "--log-level",
            "debug"};
  }

  // The suite's driver: both roles, mounts checked only on demand (so that a
  // broken mount is seen as such before it is repaired).
  void StartDriver() {
    driver_ =
        std::make_unique<CsiDriver>(dir_.MakeSubdir("csi"), DriverArgs(dir_.Sub("csi/state"), 0));
    Status s = driver_->Start();
    ASSERT_TRUE(s.ok()) << s.ToString();
  }

  // Short helpers for the RPCs.
  Result<csi::CreateVolumeResponse> Create(const csi::CreateVolumeRequest& r) {
    return CsiDriver::Call(driver_->controller(), &csi::Controller::Stub::CreateVolume, r);
  }
  csi::CreateVolumeRequest CreateReq(const std::string& name, int64_t required = kGiB) {
    csi::CreateVolumeRequest r;
    r.set_name(name);
    r.mutable_capacity_range()->set_required_bytes(required);
    *r.add_volume_capabilities() = MountCap();
    return r;
  }
  // Creates a volume and returns it; fails the test otherwise.
  csi::Volume MustCreate(const std::string& name, int64_t required = kGiB) {
    auto r = Create(CreateReq(name, required));
    EXPECT_TRUE(r.ok()) << name << ": " << r.Show();
    return r.reply.volume();
  }
  Result<csi::DeleteVolumeResponse> Delete(const std::string& id) {
    csi::DeleteVolumeRequest r;
    r.set_volume_id(id);
    return CsiDriver::Call(driver_->controller(), &csi::Controller::Stub::DeleteVolume, r);
  }
  Result<csi::NodeStageVolumeResponse> Stage(const csi::Volume& v, const std::string& staging,
                                             csi::VolumeCapability cap = MountCap(),
                                             CsiDriver* d = nullptr) {
    csi::NodeStageVolumeRequest r;
    r.set_volume_id(v.volume_id());
    r.set_staging_target_path(staging);
    *r.mutable_volume_capability() = cap;
    *r.mutable_volume_context() = v.volume_context();
    return CsiDriver::Call((d ? d : driver_.get())->node(), &csi::Node::Stub::NodeStageVolume, r);
  }
  Result<csi::NodeUnstageVolumeResponse> Unstage(const std::string& id, const std::string& staging,
                                                 CsiDriver* d = nullptr) {
    csi::NodeUnstageVolumeRequest r;
    r.set_volume_id(id);
    r.set_staging_target_path(staging);
    return CsiDriver::Call((d ? d : driver_.get())->node(), &csi::Node::Stub::NodeUnstageVolume, r);
  }
  Result<csi::NodePublishVolumeResponse> Publish(const csi::Volume& v, const std::string& staging,
                                                 const std::string& target, bool readonly = false,
                                                 csi::VolumeCapability cap = MountCap(),
                                                 CsiDriver* d = nullptr) {
    csi::NodePublishVolumeRequest r;
    r.set_volume_id(v.volume_id());
    r.set_staging_target_path(staging);
    r.set_target_path(target);
    r.set_readonly(readonly);
    *r.mutable_volume_capability() = cap;
    *r.mutable_volume_context() = v.volume_context();
    return CsiDriver::Call((d ? d : driver_.get())->node(), &csi::Node::Stub::NodePublishVolume, r);
  }
  Result<csi::NodeUnpublishVolumeResponse> Unpublish(const std::string& id,
                                                     const std::string& target,
                                                     CsiDriver* d = nullptr) {
    csi::NodeUnpublishVolumeRequest r;
    r.set_volume_id(id);
    r.set_target_path(target);
    return CsiDriver::Call((d ? d : driver_.get())->node(), &csi::Node::Stub::NodeUnpublishVolume,
                           r);
  }
  Result<csi::NodeGetVolumeStatsResponse> Stats(const std::string& id, const std::string& path,
                                                CsiDriver* d = nullptr) {
    csi::NodeGetVolumeStatsRequest r;
    r.set_volume_id(id);
    r.set_volume_path(path);
    return CsiDriver::Call((d ? d : driver_.get())->node(), &csi::Node::Stub::NodeGetVolumeStats,
                           r);
  }
  static int64_t Usage(const csi::NodeGetVolumeStatsResponse& r, csi::VolumeUsage::Unit unit,
                       const char* what) {
    for (const auto& u : r.usage()) {
      if (u.unit() != unit) continue;
      if (std::string(what) == "total") return u.total();
      if (std::string(what) == "used") return u.used();
      return u.available();
    }
    return -1;
  }

  TempDir dir_{"cairn-csi-test"};
  std::unique_ptr<NodeCluster> nodes_;
  std::unique_ptr<ProvisionerProcess> prov_;
  std::string key_file_;
  std::unique_ptr<CsiDriver> driver_;
  std::unique_ptr<CsiDriver> extra_driver_;
};

// ---------------------------------------------------------------------------
// Identity

TEST_F(CsiContractTest, IdentityInfoCapabilitiesAndProbe) {
  auto info = CsiDriver::Call(driver_->identity(), &csi::Identity::Stub::GetPluginInfo,
                              csi::GetPluginInfoRequest());
  ASSERT_TRUE(info.ok()) << info.Show();
  EXPECT_EQ(info.reply.name(), "csi.cairn.io");
  EXPECT_FALSE(info.reply.vendor_version().empty());

  auto caps = CsiDriver::Call(driver_->identity(), &csi::Identity::Stub::GetPluginCapabilities,
                              csi::GetPluginCapabilitiesRequest());
  ASSERT_TRUE(caps.ok()) << caps.Show();
  std::set<int> services;
  bool online_expansion = false;
  for (const auto& c : caps.reply.capabilities()) {
    if (c.has_service()) services.insert(c.service().type());
    if (c.has_volume_expansion() &&
        c.volume_expansion().type() == csi::PluginCapability::VolumeExpansion::ONLINE) {
      online_expansion = true;
    }
  }
  EXPECT_TRUE(services.count(csi::PluginCapability::Service::CONTROLLER_SERVICE));
  EXPECT_TRUE(services.count(csi::PluginCapability::Service::VOLUME_ACCESSIBILITY_CONSTRAINTS));
  EXPECT_TRUE(online_expansion);

  auto probe =
      CsiDriver::Call(driver_->identity(), &csi::Identity::Stub::Probe, csi::ProbeRequest());
  ASSERT_TRUE(probe.ok()) << probe.Show();
  EXPECT_TRUE(probe.reply.ready().value());

  // The provisioner away: the controller is not ready, and says why.
  auto stopped = prov_->Stop();
  ASSERT_TRUE(stopped.ok()) << stopped.status().ToString();
  probe = CsiDriver::Call(driver_->identity(), &csi::Identity::Stub::Probe, csi::ProbeRequest());
  EXPECT_EQ(probe.code(), grpc::StatusCode::UNAVAILABLE) << probe.Show();
  EXPECT_NE(probe.status.error_message().find(prov_->url()), std::string::npos) << probe.Show();
  ASSERT_TRUE(prov_->Restart().ok());
  EXPECT_TRUE(WaitUntil(
      [&] {
        return CsiDriver::Call(driver_->identity(), &csi::Identity::Stub::Probe,
                               csi::ProbeRequest())
            .ok();
      },
      milliseconds(20000), milliseconds(200)));

  // A node-only driver does not claim the controller service.
  extra_driver_ = std::make_unique<CsiDriver>(dir_.MakeSubdir("node-only"),
                                              DriverArgs(dir_.Sub("node-only/state"), 0, "node"));
  ASSERT_TRUE(extra_driver_->Start().ok());
  caps = CsiDriver::Call(extra_driver_->identity(), &csi::Identity::Stub::GetPluginCapabilities,
                         csi::GetPluginCapabilitiesRequest());
  ASSERT_TRUE(caps.ok());
  for (const auto& c : caps.reply.capabilities()) {
    EXPECT_FALSE(c.has_service() &&
                 c.service().type() == csi::PluginCapability::Service::CONTROLLER_SERVICE);
  }
  auto cv = CsiDriver::Call(extra_driver_->controller(), &csi::Controller::Stub::CreateVolume,
                            CreateReq("not-served"));
  EXPECT_EQ(cv.code(), grpc::StatusCode::UNIMPLEMENTED) << cv.Show();
}

TEST_F(CsiContractTest, ServiceCapabilitiesAndNodeInfo) {
  auto cc =
      CsiDriver::Call(driver_->controller(), &csi::Controller::Stub::ControllerGetCapabilities,
                      csi::ControllerGetCapabilitiesRequest());
  ASSERT_TRUE(cc.ok()) << cc.Show();
  std::set<int> ctypes;
  for (const auto& c : cc.reply.capabilities()) ctypes.insert(c.rpc().type());
  for (auto t : {csi::ControllerServiceCapability::RPC::CREATE_DELETE_VOLUME,
                 csi::ControllerServiceCapability::RPC::LIST_VOLUMES,
                 csi::ControllerServiceCapability::RPC::GET_CAPACITY,
                 csi::ControllerServiceCapability::RPC::EXPAND_VOLUME}) {
    EXPECT_TRUE(ctypes.count(t)) << t;
  }
  // No ControllerPublish: the node mounts straight from the bricks.
  EXPECT_FALSE(ctypes.count(csi::ControllerServiceCapability::RPC::PUBLISH_UNPUBLISH_VOLUME));
  csi::ControllerPublishVolumeRequest pub;
  pub.set_volume_id("x");
  auto p =
      CsiDriver::Call(driver_->controller(), &csi::Controller::Stub::ControllerPublishVolume, pub);
  EXPECT_EQ(p.code(), grpc::StatusCode::UNIMPLEMENTED);

  auto nc = CsiDriver::Call(driver_->node(), &csi::Node::Stub::NodeGetCapabilities,
                            csi::NodeGetCapabilitiesRequest());
  ASSERT_TRUE(nc.ok()) << nc.Show();
  std::set<int> ntypes;
  for (const auto& c : nc.reply.capabilities()) ntypes.insert(c.rpc().type());
  for (auto t : {csi::NodeServiceCapability::RPC::STAGE_UNSTAGE_VOLUME,
                 csi::NodeServiceCapability::RPC::GET_VOLUME_STATS,
                 csi::NodeServiceCapability::RPC::VOLUME_CONDITION,
                 csi::NodeServiceCapability::RPC::EXPAND_VOLUME,
                 csi::NodeServiceCapability::RPC::VOLUME_MOUNT_GROUP}) {
    EXPECT_TRUE(ntypes.count(t)) << t;
  }

  auto ni =
      CsiDriver::Call(driver_->node(), &csi::Node::Stub::NodeGetInfo, csi::NodeGetInfoRequest());
  ASSERT_TRUE(ni.ok()) << ni.Show();
  EXPECT_EQ(ni.reply.node_id(), "test-node");
  EXPECT_EQ(ni.reply.accessible_topology().segments().at(kTopologyKey), "cairn");
}

// ---------------------------------------------------------------------------
// Controller

TEST_F(CsiContractTest, CreateVolumeRejectsBadArguments) {
  struct Case {
    std::string what;
    std::function<void(csi::CreateVolumeRequest&)> edit;
    grpc::StatusCode code;
    std::string says;
  };
  const std::vector<Case> cases = {
      {"no name", [](auto& r) { r.clear_name(); }, grpc::StatusCode::INVALID_ARGUMENT, "name"},
      {"no capabilities", [](auto& r) { r.clear_volume_capabilities(); },
       grpc::StatusCode::INVALID_ARGUMENT, "volume_capabilities"},
      {"block", [](auto& r) { *r.mutable_volume_capabilities(0) = BlockCap(); },
       grpc::StatusCode::INVALID_ARGUMENT, "block"},
      {"no access mode",
       [](auto& r) {
         r.mutable_volume_capabilities(0)->mutable_access_mode()->set_mode(
             csi::VolumeCapability::AccessMode::UNKNOWN);
       },
       grpc::StatusCode::INVALID_ARGUMENT, "access_mode"},
      {"fs_type ext4",
       [](auto& r) { r.mutable_volume_capabilities(0)->mutable_mount()->set_fs_type("ext4"); },
       grpc::StatusCode::INVALID_ARGUMENT, "ext4"},
      {"unknown parameter", [](auto& r) { (*r.mutable_parameters())["colour"] = "blue"; },
       grpc::StatusCode::INVALID_ARGUMENT, "colour"},
      {"disperse", [](auto& r) { (*r.mutable_parameters())["volumetype"] = "disperse:4:2"; },
       grpc::StatusCode::INVALID_ARGUMENT, "disperse"},
      {"replica 9", [](auto& r) { (*r.mutable_parameters())["replica"] = "9"; },
       grpc::StatusCode::INVALID_ARGUMENT, "replica"},
      {"arbiter with replica 2",
       [](auto& r) {
         (*r.mutable_parameters())["replica"] = "2";
         (*r.mutable_parameters())["arbiter"] = "true";
       },
       grpc::StatusCode::INVALID_ARGUMENT, "arbiter"},
      {"limit below required",
       [](auto& r) {
         r.mutable_capacity_range()->set_required_bytes(3 * kGiB);
         r.mutable_capacity_range()->set_limit_bytes(2 * kGiB);
       },
       grpc::StatusCode::OUT_OF_RANGE, "limit_bytes"},
      {"limit under one GiB",
       [](auto& r) {
         r.mutable_capacity_range()->set_required_bytes(0);
         r.mutable_capacity_range()->set_limit_bytes(kGiB / 2);
       },
       grpc::StatusCode::OUT_OF_RANGE, "whole GiB"},
      {"negative size", [](auto& r) { r.mutable_capacity_range()->set_required_bytes(-1); },
       grpc::StatusCode::INVALID_ARGUMENT, "negative"},
      {"clone source",
       [](auto& r) { r.mutable_volume_content_source()->mutable_volume()->set_volume_id("v"); },
       grpc::StatusCode::INVALID_ARGUMENT, "volume_content_source"},
      {"topology elsewhere",
       [](auto& r) {
         (*r.mutable_accessibility_requirements()
               ->add_requisite()
               ->mutable_segments())[kTopologyKey] = "other-cluster";
       },
       grpc::StatusCode::RESOURCE_EXHAUSTED, "requisite"},
      {"too big for the devices",
       [](auto& r) { r.mutable_capacity_range()->set_required_bytes(1000 * kGiB); },
       grpc::StatusCode::RESOURCE_EXHAUSTED, ""},
      {"wrong key in secrets",
       [](auto& r) { (*r.mutable_secrets())["key"] = "not-the-key-0123456"; },
       grpc::StatusCode::UNAUTHENTICATED, ""},
  };
  for (const auto& c : cases) {
    auto req = CreateReq("bad-" + std::to_string(&c - cases.data()));
    c.edit(req);
    auto r = Create(req);
    EXPECT_EQ(r.code(), c.code) << c.what << ": " << r.Show();
    EXPECT_NE(r.status.error_message().find(c.says), std::string::npos)
        << c.what << ": " << r.Show();
    EXPECT_FALSE(r.status.error_message().empty()) << c.what;
  }
  // Nothing was created by any of them.
  auto list = CsiDriver::Call(driver_->controller(), &csi::Controller::Stub::ListVolumes,
                              csi::ListVolumesRequest());
  ASSERT_TRUE(list.ok()) << list.Show();
  EXPECT_EQ(list.reply.entries_size(), 0);
}

TEST_F(CsiContractTest, CreateVolumeIsIdempotentByName) {
  auto first = Create(CreateReq("pvc-idem", kGiB + 1));  // rounds up to 2 GiB
  ASSERT_TRUE(first.ok()) << first.Show();
  const csi::Volume& v = first.reply.volume();
  EXPECT_EQ(v.capacity_bytes(), 2 * kGiB);
  EXPECT_EQ(v.volume_id().size(), 32u);
  EXPECT_FALSE(v.volume_context().at("source").empty());
  EXPECT_EQ(v.volume_context().at("name"), "pvc-idem");
  ASSERT_EQ(v.accessible_topology_size(), 1);
  EXPECT_EQ(v.accessible_topology(0).segments().at(kTopologyKey), "cairn");

  // The same request again: the same volume.
  auto again = Create(CreateReq("pvc-idem", kGiB + 1));
  ASSERT_TRUE(again.ok()) << again.Show();
  EXPECT_EQ(again.reply.volume().volume_id(), v.volume_id());
  EXPECT_EQ(again.reply.volume().volume_context().at("source"), v.volume_context().at("source"));
  // A compatible range (2 GiB fits 1..3 GiB) is the same volume too.
  auto range = CreateReq("pvc-idem", kGiB);
  range.mutable_capacity_range()->set_limit_bytes(3 * kGiB);
  auto compatible = Create(range);
  ASSERT_TRUE(compatible.ok()) << compatible.Show();
  EXPECT_EQ(compatible.reply.volume().volume_id(), v.volume_id());
  // Same name, incompatible size or durability: AlreadyExists.
  auto bigger = Create(CreateReq("pvc-idem", 5 * kGiB));
  EXPECT_EQ(bigger.code(), grpc::StatusCode::ALREADY_EXISTS) << bigger.Show();
  auto r1 = CreateReq("pvc-idem", 2 * kGiB);
  (*r1.mutable_parameters())["volumetype"] = "none";
  auto other = Create(r1);
  EXPECT_EQ(other.code(), grpc::StatusCode::ALREADY_EXISTS) << other.Show();

  // Four callers at once with one new name: one volume.
  std::vector<std::string> ids(4);
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      auto r = Create(CreateReq("pvc-race"));
      ids[i] = r.ok() ? r.reply.volume().volume_id() : "error: " + r.Show();
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 1; i < 4; ++i) EXPECT_EQ(ids[i], ids[0]);
  EXPECT_EQ(ids[0].size(), 32u) << ids[0];

  // Names that are not provisioner names are mapped, stably.
  auto odd = Create(CreateReq("a name with spaces/and slashes"));
  ASSERT_TRUE(odd.ok()) << odd.Show();
  auto odd2 = Create(CreateReq("a name with spaces/and slashes"));
  ASSERT_TRUE(odd2.ok()) << odd2.Show();
  EXPECT_EQ(odd.reply.volume().volume_id(), odd2.reply.volume().volume_id());
  EXPECT_EQ(odd.reply.volume().volume_context().at("name").rfind("csi-", 0), 0u);

  // Heketi-style prefix with the PVC's namespace and name.
  auto pre = CreateReq("pvc-0b9e7f3c-5d1c-4b88-9d5e-6f0a1c2b3d4e");
  (*pre.mutable_parameters())["volumenameprefix"] = "team";
  (*pre.mutable_parameters())["csi.storage.k8s.io/pvc/name"] = "data";
  (*pre.mutable_parameters())["csi.storage.k8s.io/pvc/namespace"] = "shop";
  (*pre.mutable_parameters())["volumetype"] = "replicate:2";
  auto p = Create(pre);
  ASSERT_TRUE(p.ok()) << p.Show();
  EXPECT_EQ(p.reply.volume().volume_context().at("name").rfind("team_shop_data_", 0), 0u)
      << p.reply.volume().volume_context().at("name");
  json info = prov_->http().Call("GET", "/volumes/" + p.reply.volume().volume_id()).Json();
  EXPECT_EQ(info["durability"]["replicate"]["replica"], 2) << info.dump();

  // zones: the bricks go to those zones' nodes only (nodes are in zones 1, 2, 3).
  auto zr = CreateReq("pvc-zones");
  (*zr.mutable_parameters())["zones"] = "2,3";
  (*zr.mutable_parameters())["replica"] = "2";
  auto z = Create(zr);
  ASSERT_TRUE(z.ok()) << z.Show();
  json zinfo = prov_->http().Call("GET", "/volumes/" + z.reply.volume().volume_id()).Json();
  EXPECT_EQ(zinfo["zones"], json({2, 3})) << zinfo.dump();
  for (const auto& b : zinfo["bricks"]) {
    json n = prov_->http().Call("GET", "/nodes/" + b.value("node", "")).Json();
    EXPECT_NE(n.value("zone", 0), 1) << zinfo.dump();
  }
  // An unknown cluster is the StorageClass's mistake: InvalidArgument.
  auto uc = CreateReq("pvc-unknown-cluster");
  (*uc.mutable_parameters())["clusterid"] = std::string(32, 'a');
  auto u = Create(uc);
  EXPECT_EQ(u.code(), grpc::StatusCode::INVALID_ARGUMENT) << u.Show();
  EXPECT_NE(u.status.error_message().find("clusterid"), std::string::npos) << u.Show();
}

TEST_F(CsiContractTest, DeleteVolumeIsIdempotent) {
  csi::Volume v = MustCreate("pvc-del");
  ASSERT_FALSE(v.volume_id().empty());
  auto d = Delete(v.volume_id());
  ASSERT_TRUE(d.ok()) << d.Show();
  EXPECT_EQ(prov_->http().Call("GET", "/volumes/" + v.volume_id()).status, 404);
  // Gone already, never ours, malformed: all succeed.
  EXPECT_TRUE(Delete(v.volume_id()).ok());
  EXPECT_TRUE(Delete(std::string(32, '0')).ok());
  EXPECT_TRUE(Delete("not-a-cairn-id").ok());
  auto empty = Delete("");
  EXPECT_EQ(empty.code(), grpc::StatusCode::INVALID_ARGUMENT) << empty.Show();
  // The name is free again: a new create makes a new volume.
  csi::Volume again = MustCreate("pvc-del");
  EXPECT_NE(again.volume_id(), v.volume_id());
}

TEST_F(CsiContractTest, ValidateListAndCapacity) {
  csi::Volume a = MustCreate("pvc-a");
  csi::Volume b = MustCreate("pvc-b");
  csi::Volume c = MustCreate("pvc-c");

  csi::ValidateVolumeCapabilitiesRequest vr;
  vr.set_volume_id(a.volume_id());
  *vr.add_volume_capabilities() = MountCap();
  *vr.add_volume_capabilities() =
      MountCap(csi::VolumeCapability::AccessMode::MULTI_NODE_READER_ONLY);
  auto ok = CsiDriver::Call(driver_->controller(),
                            &csi::Controller::Stub::ValidateVolumeCapabilities, vr);
  ASSERT_TRUE(ok.ok()) << ok.Show();
  EXPECT_TRUE(ok.reply.has_confirmed());
  EXPECT_EQ(ok.reply.confirmed().volume_capabilities_size(), 2);
  *vr.add_volume_capabilities() = BlockCap();
  auto block = CsiDriver::Call(driver_->controller(),
                               &csi::Controller::Stub::ValidateVolumeCapabilities, vr);
  ASSERT_TRUE(block.ok()) << block.Show();
  EXPECT_FALSE(block.reply.has_confirmed());
  EXPECT_NE(block.reply.message().find("block"), std::string::npos) << block.reply.message();
  vr.set_volume_id(std::string(32, 'f'));
  auto missing = CsiDriver::Call(driver_->controller(),
                                 &csi::Controller::Stub::ValidateVolumeCapabilities, vr);
  EXPECT_EQ(missing.code(), grpc::StatusCode::NOT_FOUND) << missing.Show();
  vr.set_volume_id(a.volume_id());
  vr.clear_volume_capabilities();
  auto nocaps = CsiDriver::Call(driver_->controller(),
                                &csi::Controller::Stub::ValidateVolumeCapabilities, vr);
  EXPECT_EQ(nocaps.code(), grpc::StatusCode::INVALID_ARGUMENT) << nocaps.Show();
  vr.set_volume_id("");
  *vr.add_volume_capabilities() = MountCap();
  auto noid = CsiDriver::Call(driver_->controller(),
                              &csi::Controller::Stub::ValidateVolumeCapabilities, vr);
  EXPECT_EQ(noid.code(), grpc::StatusCode::INVALID_ARGUMENT) << noid.Show();

  // Paging one entry at a time visits every volume once.
  std::set<std::string> seen;
  csi::ListVolumesRequest lr;
  lr.set_max_entries(1);
  int pages = 0;
  for (;;) {
    auto page = CsiDriver::Call(driver_->controller(), &csi::Controller::Stub::ListVolumes, lr);
    ASSERT_TRUE(page.ok()) << page.Show();
    ASSERT_LE(page.reply.entries_size(), 1);
    for (const auto& e : page.reply.entries()) {
      EXPECT_TRUE(seen.insert(e.volume().volume_id()).second) << "listed twice";
      EXPECT_EQ(e.volume().capacity_bytes(), kGiB);
    }
    ++pages;
    ASSERT_LT(pages, 10);
    if (page.reply.next_token().empty()) break;
    lr.set_starting_token(page.reply.next_token());
  }
  EXPECT_EQ(seen, (std::set<std::string>{a.volume_id(), b.volume_id(), c.volume_id()}));
  lr.set_starting_token("bogus");
  auto bad = CsiDriver::Call(driver_->controller(), &csi::Controller::Stub::ListVolumes, lr);
  EXPECT_EQ(bad.code(), grpc::StatusCode::ABORTED) << bad.Show();
  lr.set_starting_token("99");
  bad = CsiDriver::Call(driver_->controller(), &csi::Controller::Stub::ListVolumes, lr);
  EXPECT_EQ(bad.code(), grpc::StatusCode::ABORTED) << bad.Show();
  lr.clear_starting_token();
  lr.set_max_entries(-1);
  bad = CsiDriver::Call(driver_->controller(), &csi::Controller::Stub::ListVolumes, lr);
  EXPECT_EQ(bad.code(), grpc::StatusCode::INVALID_ARGUMENT) << bad.Show();

  // Capacity: 3 × 40 GiB devices minus 3 × 3 GiB of bricks, stored 3 times
  // (replica 3) or once (volumetype none).
  csi::GetCapacityRequest gc;
  auto cap3 = CsiDriver::Call(driver_->controller(), &csi::Controller::Stub::GetCapacity, gc);
  ASSERT_TRUE(cap3.ok()) << cap3.Show();
  EXPECT_GT(cap3.reply.available_capacity(), 30 * kGiB);
  EXPECT_LE(cap3.reply.available_capacity(), 37 * kGiB);
  (*gc.mutable_parameters())["volumetype"] = "none";
  auto cap1 = CsiDriver::Call(driver_->controller(), &csi::Controller::Stub::GetCapacity, gc);
  ASSERT_TRUE(cap1.ok()) << cap1.Show();
  EXPECT_EQ(cap1.reply.available_capacity() / 3, cap3.reply.available_capacity());
  (*gc.mutable_accessible_topology()->mutable_segments())[kTopologyKey] = "elsewhere";
  auto none = CsiDriver::Call(driver_->controller(), &csi::Controller::Stub::GetCapacity, gc);
  ASSERT_TRUE(none.ok()) << none.Show();
  EXPECT_EQ(none.reply.available_capacity(), 0);
  (*gc.mutable_parameters())["bogus"] = "1";
  auto badp = CsiDriver::Call(driver_->controller(), &csi::Controller::Stub::GetCapacity, gc);
  EXPECT_EQ(badp.code(), grpc::StatusCode::INVALID_ARGUMENT) << badp.Show();
}

// ---------------------------------------------------------------------------
// Node

TEST_F(CsiContractTest, NodeCallsRejectBadArguments) {
  csi::Volume v = MustCreate("pvc-node-bad");
  const std::string staging = dir_.Sub("staging-bad");
  const std::string target = dir_.Sub("target-bad");

  auto s = Stage(v, "");
  EXPECT_EQ(s.code(), grpc::StatusCode::INVALID_ARGUMENT) << s.Show();
  s = Stage(v, "relative/path");
  EXPECT_EQ(s.code(), grpc::StatusCode::INVALID_ARGUMENT) << s.Show();
  s = Stage(v, staging, BlockCap());
  EXPECT_EQ(s.code(), grpc::StatusCode::INVALID_ARGUMENT) << s.Show();
  EXPECT_NE(s.status.error_message().find("block"), std::string::npos);
  csi::Volume nosource = v;
  nosource.mutable_volume_context()->erase("source");
  s = Stage(nosource, staging);
  EXPECT_EQ(s.code(), grpc::StatusCode::INVALID_ARGUMENT) << s.Show();
  csi::Volume noid = v;
  noid.clear_volume_id();
  s = Stage(noid, staging);
  EXPECT_EQ(s.code(), grpc::StatusCode::INVALID_ARGUMENT) << s.Show();
  {
    csi::NodeStageVolumeRequest r;
    r.set_volume_id(v.volume_id());
    r.set_staging_target_path(staging);
    *r.mutable_volume_context() = v.volume_context();
    auto nocap = CsiDriver::Call(driver_->node(), &csi::Node::Stub::NodeStageVolume, r);
    EXPECT_EQ(nocap.code(), grpc::StatusCode::INVALID_ARGUMENT) << nocap.Show();
  }
  // A bad mount option is cairn-mount's InvalidArgument, with its words.
  auto cap = MountCap();
  cap.mutable_mount()->add_mount_flags("no_such_option=1");
  s = Stage(v, staging, cap);
  EXPECT_EQ(s.code(), grpc::StatusCode::INVALID_ARGUMENT) << s.Show();
  EXPECT_NE(s.status.error_message().find("no_such_option"), std::string::npos) << s.Show();
  cap = MountCap();
  cap.mutable_mount()->add_mount_flags("token_file=/etc/passwd");
  s = Stage(v, staging, cap);
  EXPECT_EQ(s.code(), grpc::StatusCode::INVALID_ARGUMENT) << s.Show();
  // A volume that does not exist on the nodes: Unavailable naming it, nothing left mounted.
  csi::Volume ghost = v;
  (*ghost.mutable_volume_context())["source"] = "127.0.0.2:1:/ghost";
  ghost.set_volume_id(std::string(32, 'e'));
  s = Stage(ghost, dir_.Sub("staging-ghost"));
  EXPECT_EQ(s.code(), grpc::StatusCode::UNAVAILABLE) << s.Show();
  EXPECT_FALSE(IsMounted(dir_.Sub("staging-ghost")));

  // Publishing what is not staged is FailedPrecondition.
  auto p = Publish(v, staging, target);
  EXPECT_EQ(p.code(), grpc::StatusCode::FAILED_PRECONDITION) << p.Show();
  p = Publish(v, staging, "");
  EXPECT_EQ(p.code(), grpc::StatusCode::INVALID_ARGUMENT) << p.Show();
  p = Publish(v, "", target);
  EXPECT_EQ(p.code(), grpc::StatusCode::INVALID_ARGUMENT) << p.Show();
  p = Publish(v, staging, target, false, BlockCap());
  EXPECT_EQ(p.code(), grpc::StatusCode::INVALID_ARGUMENT) << p.Show();

  // Stats of what does not exist or is not mounted: NotFound.
  auto st = Stats(v.volume_id(), dir_.Sub("nowhere"));
  EXPECT_EQ(st.code(), grpc::StatusCode::NOT_FOUND) << st.Show();
  st = Stats(v.volume_id(), dir_.MakeSubdir("plain-dir"));
  EXPECT_EQ(st.code(), grpc::StatusCode::NOT_FOUND) << st.Show();
  st = Stats("", dir_.Sub("nowhere"));
  EXPECT_EQ(st.code(), grpc::StatusCode::INVALID_ARGUMENT) << st.Show();

  // Undoing what was never done succeeds.
  EXPECT_TRUE(Unpublish(v.volume_id(), dir_.Sub("never-published")).ok());
  EXPECT_TRUE(Unstage(v.volume_id(), dir_.Sub("never-staged")).ok());
  EXPECT_EQ(Unpublish("", target).code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Unstage(v.volume_id(), "").code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(CsiContractTest, LifecycleTwoPodsShareAVolumeAndExpansionShowsInDf) {
  csi::Volume v = MustCreate("pvc-life");
  ASSERT_FALSE(v.volume_id().empty());
  const std::string staging = dir_.Sub("kubelet/plugins/csi.cairn.io/globalmount");
  const std::string pod1 = dir_.Sub("kubelet/pods/pod1/volumes/mount");
  const std::string pod2 = dir_.Sub("kubelet/pods/pod2/volumes/mount");
  const std::string pod3 = dir_.Sub("kubelet/pods/pod3/volumes/mount");

  auto s = Stage(v, staging);
  ASSERT_TRUE(s.ok()) << s.Show();
  EXPECT_TRUE(IsMounted(staging));
  s = Stage(v, staging);  // again: nothing changes
  ASSERT_TRUE(s.ok()) << s.Show();
  EXPECT_EQ(CairnMountPids(staging).size(), 1u);
  // Another staging path for a staged volume is refused.
  auto other = Stage(v, dir_.Sub("other-staging"));
  EXPECT_EQ(other.code(), grpc::StatusCode::ALREADY_EXISTS) << other.Show();

  ASSERT_TRUE(Publish(v, staging, pod1).ok());
  ASSERT_TRUE(Publish(v, staging, pod2).ok());
  auto again = Publish(v, staging, pod1);
  EXPECT_TRUE(again.ok()) << again.Show();
  auto ro_conflict = Publish(v, staging, pod1, /*readonly=*/true);
  EXPECT_EQ(ro_conflict.code(), grpc::StatusCode::ALREADY_EXISTS) << ro_conflict.Show();
  ASSERT_TRUE(Publish(v, staging, pod3, /*readonly=*/true).ok());

  // Pod 1 writes, pod 2 reads; pod 3 (read-only) reads but cannot write.
  ASSERT_TRUE(WriteText(pod1 + "/hello.txt", "from pod 1\n"));
  EXPECT_EQ(ReadAll(pod2 + "/hello.txt"), "from pod 1\n");
  ASSERT_TRUE(WriteText(pod2 + "/reply.txt", "from pod 2\n"));
  EXPECT_EQ(ReadAll(pod1 + "/reply.txt"), "from pod 2\n");
  EXPECT_EQ(ReadAll(pod3 + "/hello.txt"), "from pod 1\n");
  int fd = ::open((pod3 + "/nope.txt").c_str(), O_CREAT | O_WRONLY, 0644);
  EXPECT_EQ(fd, -1);
  EXPECT_EQ(errno, EROFS);
  if (fd >= 0) ::close(fd);

  // Stats: a 1 GiB volume with something in it.
  auto st = Stats(v.volume_id(), pod1);
  ASSERT_TRUE(st.ok()) << st.Show();
  EXPECT_FALSE(st.reply.volume_condition().abnormal());
  const int64_t total = Usage(st.reply, csi::VolumeUsage::BYTES, "total");
  EXPECT_GE(total, kGiB * 9 / 10);
  EXPECT_LE(total, kGiB);
  EXPECT_GT(Usage(st.reply, csi::VolumeUsage::BYTES, "available"), 0);
  EXPECT_GT(Usage(st.reply, csi::VolumeUsage::INODES, "total"), 0);
  EXPECT_GE(Usage(st.reply, csi::VolumeUsage::INODES, "used"), 2);
  auto st_staging = Stats(v.volume_id(), staging);
  ASSERT_TRUE(st_staging.ok()) << st_staging.Show();

  // Online expansion to 3 GiB: df on the published path shows it, no remount.
  csi::ControllerExpandVolumeRequest er;
  er.set_volume_id(v.volume_id());
  er.mutable_capacity_range()->set_required_bytes(3 * kGiB);
  auto ex =
      CsiDriver::Call(driver_->controller(), &csi::Controller::Stub::ControllerExpandVolume, er);
  ASSERT_TRUE(ex.ok()) << ex.Show();
  EXPECT_EQ(ex.reply.capacity_bytes(), 3 * kGiB);
  EXPECT_FALSE(ex.reply.node_expansion_required());
  auto ex2 = CsiDriver::Call(driver_->controller(), &csi::Controller::Stub::ControllerExpandVolume,
                             er);  // idempotent
  ASSERT_TRUE(ex2.ok()) << ex2.Show();
  EXPECT_EQ(ex2.reply.capacity_bytes(), 3 * kGiB);
  int64_t df_total = 0;
  EXPECT_TRUE(WaitUntil(
      [&] {
        struct statvfs vfs;
        if (::statvfs(pod2.c_str(), &vfs) != 0) return false;
        df_total = static_cast<int64_t>(vfs.f_blocks) * vfs.f_frsize;
        return df_total > 2 * kGiB;
      },
      milliseconds(10000)))
      << "df total " << df_total;
  auto cmd = RunCommand({"/bin/df", "-B1", "--output=size", pod2});
  ASSERT_TRUE(cmd.ok());
  std::cout << "df after expansion: " << cmd->output;
  csi::NodeExpandVolumeRequest ne;
  ne.set_volume_id(v.volume_id());
  ne.set_volume_path(pod1);
  ne.mutable_capacity_range()->set_required_bytes(3 * kGiB);
  auto nx = CsiDriver::Call(driver_->node(), &csi::Node::Stub::NodeExpandVolume, ne);
  ASSERT_TRUE(nx.ok()) << nx.Show();
  EXPECT_GT(nx.reply.capacity_bytes(), 2 * kGiB);
  er.set_volume_id(std::string(32, 'd'));
  auto exm =
      CsiDriver::Call(driver_->controller(), &csi::Controller::Stub::ControllerExpandVolume, er);
  EXPECT_EQ(exm.code(), grpc::StatusCode::NOT_FOUND) << exm.Show();
  er.set_volume_id(v.volume_id());
  er.clear_capacity_range();
  exm = CsiDriver::Call(driver_->controller(), &csi::Controller::Stub::ControllerExpandVolume, er);
  EXPECT_EQ(exm.code(), grpc::StatusCode::INVALID_ARGUMENT) << exm.Show();

  // Tear down, each step twice.
  for (const auto& t : {pod1, pod2, pod3}) {
    auto u = Unpublish(v.volume_id(), t);
    ASSERT_TRUE(u.ok()) << t << ": " << u.Show();
    EXPECT_FALSE(IsMounted(t));
    EXPECT_EQ(StatErrno(t), ENOENT) << t;
    EXPECT_TRUE(Unpublish(v.volume_id(), t).ok());
  }
  auto pids = CairnMountPids(staging);
  ASSERT_EQ(pids.size(), 1u);
  auto u = Unstage(v.volume_id(), staging);
  ASSERT_TRUE(u.ok()) << u.Show();
  EXPECT_FALSE(IsMounted(staging));
  EXPECT_TRUE(WaitUntil([&] { return CairnMountPids(staging).empty(); }, milliseconds(10000)))
      << "cairn-mount did not exit after the unmount";
  EXPECT_TRUE(Unstage(v.volume_id(), staging).ok());
  auto d = Delete(v.volume_id());
  ASSERT_TRUE(d.ok()) << d.Show();

  // The data outlived the mounts until the delete: a fresh volume is empty.
  csi::Volume fresh = MustCreate("pvc-life");
  ASSERT_TRUE(Stage(fresh, staging).ok());
  EXPECT_EQ(StatErrno(staging + "/hello.txt"), ENOENT);
  ASSERT_TRUE(Unstage(fresh.volume_id(), staging).ok());
}

TEST_F(CsiContractTest, MountGroupLetsAnFsGroupWrite) {
  csi::Volume v = MustCreate("pvc-group");
  const std::string staging = dir_.Sub("g/staging");
  const std::string target = dir_.Sub("g/target");
  auto cap = MountCap();
  cap.mutable_mount()->set_volume_mount_group("4321");
  ASSERT_TRUE(Stage(v, staging, cap).ok());
  ASSERT_TRUE(Publish(v, staging, target, false, cap).ok());
  struct stat st;
  ASSERT_EQ(::stat(target.c_str(), &st), 0);
  EXPECT_EQ(st.st_gid, 4321u);
  EXPECT_EQ(st.st_mode & (S_IRWXG | S_ISGID), static_cast<mode_t>(S_IRWXG | S_ISGID));
  // The parent directories of the test dir must be traversable by the pod user.
  ::chmod(dir_.path().c_str(), 0755);
  ::chmod(dir_.Sub("g").c_str(), 0755);
  // A pod running as uid 7000 with supplementary group 4321 writes; the file
  // inherits the group.
  const std::string file = target + "/pod-file";
  auto rc = RunAs(7000, 7000,
                  [&] {
                    int fd = ::open(file.c_str(), O_CREAT | O_WRONLY, 0664);
                    if (fd < 0) return errno;
                    ::close(fd);
                    return 0;
                  },
                  {4321});
  ASSERT_TRUE(rc.ok());
  EXPECT_EQ(*rc, 0) << std::strerror(*rc);
  ASSERT_EQ(::stat(file.c_str(), &st), 0);
  EXPECT_EQ(st.st_gid, 4321u);
  // Without the group: refused.
  auto denied = RunAs(7001, 7001, [&] {
    int fd = ::open((target + "/other").c_str(), O_CREAT | O_WRONLY, 0664);
    if (fd < 0) return errno;
    ::close(fd);
    return 0;
  });
  ASSERT_TRUE(denied.ok());
  EXPECT_EQ(*denied, EACCES);
  auto bad = cap;
  bad.mutable_mount()->set_volume_mount_group("staff");
  auto s = Stage(v, dir_.Sub("g/staging2"), bad);
  EXPECT_EQ(s.code(), grpc::StatusCode::INVALID_ARGUMENT) << s.Show();
  ASSERT_TRUE(Unpublish(v.volume_id(), target).ok());
  ASSERT_TRUE(Unstage(v.volume_id(), staging).ok());
}

// The FUSE process under two published targets is killed: stats say the
// volume is abnormal, the driver remounts it and re-binds both targets, and
// the data is there.
TEST_F(CsiContractTest, KilledFuseProcessIsReportedAndRecovered) {
  csi::Volume v = MustCreate("pvc-heal");
  const std::string staging = dir_.Sub("k/staging");
  const std::string pod1 = dir_.Sub("k/pod1");
  const std::string pod2 = dir_.Sub("k/pod2");
  ASSERT_TRUE(Stage(v, staging).ok());
  ASSERT_TRUE(Publish(v, staging, pod1).ok());
  ASSERT_TRUE(Publish(v, staging, pod2, /*readonly=*/true).ok());
  ASSERT_TRUE(WriteText(pod1 + "/before.txt", "written before the crash\n"));

  auto pids = CairnMountPids(staging);
  ASSERT_EQ(pids.size(), 1u);
  ASSERT_EQ(::kill(pids[0], SIGKILL), 0);
  ASSERT_TRUE(WaitUntil([&] { return StatErrno(pod1) == ENOTCONN; }, milliseconds(10000)))
      << "stat " << pod1 << ": " << std::strerror(StatErrno(pod1));
  EXPECT_EQ(StatErrno(pod2), ENOTCONN);  // "Transport endpoint is not connected"

  // Stats: abnormal, saying why (this driver repairs only on demand).
  auto st = Stats(v.volume_id(), pod1);
  ASSERT_TRUE(st.ok()) << st.Show();
  EXPECT_TRUE(st.reply.volume_condition().abnormal());
  EXPECT_NE(st.reply.volume_condition().message().find("not connected"), std::string::npos)
      << st.reply.volume_condition().message();

  // ...which also set the repair going: both targets work again.
  ASSERT_TRUE(WaitUntil(
      [&] {
        auto s = Stats(v.volume_id(), pod1);
        return s.ok() && !s.reply.volume_condition().abnormal() && StatErrno(pod2) == 0;
      },
      milliseconds(30000), milliseconds(200)))
      << ReadAll(driver_->log()).substr(0, 0);
  EXPECT_EQ(ReadAll(pod1 + "/before.txt"), "written before the crash\n");
  EXPECT_EQ(ReadAll(pod2 + "/before.txt"), "written before the crash\n");
  ASSERT_TRUE(WriteText(pod1 + "/after.txt", "written after the recovery\n"));
  EXPECT_EQ(ReadAll(pod2 + "/after.txt"), "written after the recovery\n");
  // pod2 is still read-only.
  EXPECT_FALSE(WriteText(pod2 + "/ro.txt", "x"));
  auto new_pids = CairnMountPids(staging);
  ASSERT_EQ(new_pids.size(), 1u);
  EXPECT_NE(new_pids[0], pids[0]);

  ASSERT_TRUE(Unpublish(v.volume_id(), pod1).ok());
  ASSERT_TRUE(Unpublish(v.volume_id(), pod2).ok());
  ASSERT_TRUE(Unstage(v.volume_id(), staging).ok());
}

// A node plugin with a health interval repairs a killed FUSE process without
// being asked; a restarted node plugin repairs what died while it was down.
TEST_F(CsiContractTest, HealthLoopAndRestartRecoverMounts) {
  csi::Volume v = MustCreate("pvc-loop");
  const std::string state = dir_.Sub("node2/state");
  extra_driver_ =
      std::make_unique<CsiDriver>(dir_.MakeSubdir("node2"), DriverArgs(state, 300, "node"));
  ASSERT_TRUE(extra_driver_->Start().ok());
  CsiDriver* d = extra_driver_.get();
  const std::string staging = dir_.Sub("node2/staging");
  const std::string pod = dir_.Sub("node2/pod");
  ASSERT_TRUE(Stage(v, staging, MountCap(), d).ok());
  ASSERT_TRUE(Publish(v, staging, pod, false, MountCap(), d).ok());
  ASSERT_TRUE(WriteText(pod + "/a.txt", "a\n"));

  // Killed under a running driver: repaired by the loop alone.
  auto pids = CairnMountPids(staging);
  ASSERT_EQ(pids.size(), 1u);
  ASSERT_EQ(::kill(pids[0], SIGKILL), 0);
  // Repaired means the target serves the file again: the pod directory alone
  // stats fine between the driver's unmount of the dead target and its bind.
  ASSERT_TRUE(WaitUntil(
      [&] {
        auto now = CairnMountPids(staging);
        return now.size() == 1 && now[0] != pids[0] && IsMounted(pod) &&
               ReadAll(pod + "/a.txt") == "a\n";
      },
      milliseconds(30000), milliseconds(100)))
      << ReadAll(extra_driver_->log());

  // The driver killed, then the FUSE process: the next driver repairs it at start.
  extra_driver_->Stop(SIGKILL);
  pids = CairnMountPids(staging);
  ASSERT_EQ(pids.size(), 1u);
  ASSERT_EQ(::kill(pids[0], SIGKILL), 0);
  ASSERT_TRUE(WaitUntil([&] { return StatErrno(pod) == ENOTCONN; }, milliseconds(10000)));
  ASSERT_TRUE(extra_driver_->Start().ok());
  ASSERT_TRUE(WaitUntil([&] { return IsMounted(pod) && ReadAll(pod + "/a.txt") == "a\n"; },
                        milliseconds(30000), milliseconds(100)))
      << ReadAll(extra_driver_->log());
  // And the records still drive unpublish/unstage.
  ASSERT_TRUE(Unpublish(v.volume_id(), pod, d).ok());
  ASSERT_TRUE(Unstage(v.volume_id(), staging, d).ok());
  EXPECT_FALSE(IsMounted(staging));
  EXPECT_EQ(StatErrno(state + "/volumes/" + v.volume_id() + ".json"), ENOENT);
}

}  // namespace
}  // namespace cairn::test
