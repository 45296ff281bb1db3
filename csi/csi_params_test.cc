// StorageClass parameters, provisioner names and sizes (csi/params.h), the
// capability checks and the mount table reader.
#include <gtest/gtest.h>

#include "csi/capability.h"
#include "csi/controller.h"
#include "csi/mounter.h"
#include "csi/params.h"

namespace cairn::csi {
namespace {

TEST(CsiParamsTest, DefaultsAreReplicaThree) {
  auto p = ParseParameters({});
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->replica, 3);
  EXPECT_FALSE(p->arbiter);
  auto body = p->RequestBody("pvc-1", 4);
  EXPECT_EQ(body["name"], "pvc-1");
  EXPECT_EQ(body["size"], 4);
  EXPECT_EQ(body["durability"]["type"], "replicate");
  EXPECT_EQ(body["durability"]["replicate"]["replica"], 3);
  EXPECT_FALSE(body.contains("clusters"));
}

TEST(CsiParamsTest, HeketiNamesAndCairnNames) {
  auto p = ParseParameters({{"volumetype", "replicate:2"},
                            {"clusterid", "c1, c2"},
                            {"csi.storage.k8s.io/pvc/name", "data"},
                            {"csi.storage.k8s.io/pvc/namespace", "shop"},
                            {"csi.storage.k8s.io/provisioner-secret-name", "ignored"}});
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->replica, 2);
  EXPECT_EQ(p->clusters, (std::vector<std::string>{"c1", "c2"}));
  EXPECT_EQ(p->pvc_name, "data");
  EXPECT_EQ(p->pvc_namespace, "shop");
  EXPECT_EQ(p->RequestBody("n", 1)["clusters"].size(), 2u);

  auto zoned = ParseParameters({{"zones", "3, 1"}});
  ASSERT_TRUE(zoned.ok()) << zoned.status().ToString();
  EXPECT_EQ(zoned->zones, (std::vector<int>{3, 1}));
  EXPECT_EQ(zoned->RequestBody("n", 1)["zones"], nlohmann::json({3, 1}));
  EXPECT_FALSE(ParseParameters({}).value().RequestBody("n", 1).contains("zones"));

  auto none = ParseParameters({{"volumetype", "none"}});
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->replica, 1);
  EXPECT_EQ(none->RequestBody("n", 1)["durability"]["type"], "none");

  auto arb = ParseParameters({{"volumeoptions", "user.heketi.arbiter true"}});
  ASSERT_TRUE(arb.ok()) << arb.status().ToString();
  EXPECT_TRUE(arb->arbiter);
  EXPECT_EQ(arb->replica, 3);
  EXPECT_EQ(arb->RequestBody("n", 1)["arbiter"], true);
  auto arb2 = ParseParameters({{"arbiter", "true"}, {"replica", "3"}});
  ASSERT_TRUE(arb2.ok());
  EXPECT_TRUE(arb2->arbiter);
}

TEST(CsiParamsTest, BadParametersNameTheProblem) {
  const std::vector<std::pair<std::map<std::string, std::string>, std::string>> bad = {
      {{{"volumetype", "disperse:4:2"}}, "disperse"},
      {{{"volumetype", "mirror"}}, "replicate:N"},
      {{{"volumetype", "replicate:0"}}, "1 to 5"},
      {{{"volumetype", "replicate:x"}}, "1 to 5"},
      {{{"replica", "6"}}, "1 to 5"},
      {{{"arbiter", "maybe"}}, "true or false"},
      {{{"arbiter", "true"}, {"replica", "2"}}, "replica 3"},
      {{{"volumenameprefix", "has_underscore"}}, "volumenameprefix"},
      {{{"volumenameprefix", "sp ace"}}, "volumenameprefix"},
      {{{"volumeoptions", "performance.cache-size 1GB"}}, "unsupported option"},
      {{{"colour", "blue"}}, "colour"},
      {{{"zones", "1,x"}}, "zone numbers"},
      {{{"zones", "0"}}, "zone numbers"},
  };
  for (const auto& [params, says] : bad) {
    auto p = ParseParameters(params);
    ASSERT_FALSE(p.ok()) << says;
    EXPECT_EQ(p.status().code(), StatusCode::kInvalidArgument) << says;
    EXPECT_NE(p.status().message().find(says), std::string::npos) << p.status().message();
  }
}

TEST(CsiParamsTest, VolumeNamesAreStableAndValid) {
  CreateParams none;
  EXPECT_EQ(VolumeNameFor("pvc-1234", none), "pvc-1234");
  const std::string odd = VolumeNameFor("a name/with odd chars", none);
  EXPECT_EQ(odd, VolumeNameFor("a name/with odd chars", none));
  EXPECT_EQ(odd.rfind("csi-", 0), 0u);
  EXPECT_EQ(odd.size(), 36u);
  EXPECT_NE(odd, VolumeNameFor("a name/with odd chars!", none));
  EXPECT_EQ(VolumeNameFor(std::string(101, 'a'), none).rfind("csi-", 0), 0u);

  CreateParams pre;
  pre.name_prefix = "team";
  pre.pvc_name = "data.v1";
  pre.pvc_namespace = "shop";
  const std::string n = VolumeNameFor("pvc-abc", pre);
  EXPECT_EQ(n.rfind("team_shop_data-v1_", 0), 0u) << n;
  EXPECT_EQ(n.size(), std::string("team_shop_data-v1_").size() + 8);
  EXPECT_NE(n, VolumeNameFor("pvc-abd", pre));  // two PVCs, two names
  pre.pvc_name = std::string(300, 'x');
  const std::string longname = VolumeNameFor("pvc-abc", pre);
  EXPECT_LE(longname.size(), 100u);
  CreateParams prefix_only;
  prefix_only.name_prefix = "p";
  EXPECT_EQ(VolumeNameFor("pvc-9", prefix_only).rfind("p_pvc-9_", 0), 0u);
  for (const std::string& name : {odd, n, longname}) {
    for (char c : name)
      EXPECT_TRUE(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-') << name;
  }
}

TEST(CsiParamsTest, SizesRoundUpToWholeGiB) {
  EXPECT_EQ(*SizeGiB(0, 0), 1);
  EXPECT_EQ(*SizeGiB(1, 0), 1);
  EXPECT_EQ(*SizeGiB(kGiB, 0), 1);
  EXPECT_EQ(*SizeGiB(kGiB + 1, 0), 2);
  EXPECT_EQ(*SizeGiB(kGiB, kGiB), 1);
  EXPECT_EQ(*SizeGiB(0, 5 * kGiB), 1);
  EXPECT_EQ(*SizeGiB(3 * kGiB, 4 * kGiB), 3);
  EXPECT_EQ(SizeGiB(kGiB + 1, kGiB + 100).status().code(), StatusCode::kOutOfRange);
  EXPECT_EQ(SizeGiB(0, kGiB - 1).status().code(), StatusCode::kOutOfRange);
  EXPECT_EQ(SizeGiB(-1, 0).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(SizeGiB(0, -1).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(SizeGiB((kMaxVolumeGiB + 1) * kGiB, 0).status().code(), StatusCode::kOutOfRange);
  EXPECT_TRUE(SizeFits(2 * kGiB, kGiB, 3 * kGiB));
  EXPECT_TRUE(SizeFits(2 * kGiB, 0, 0));
  EXPECT_FALSE(SizeFits(2 * kGiB, 3 * kGiB, 0));
  EXPECT_FALSE(SizeFits(2 * kGiB, 0, kGiB));
}

TEST(CsiParamsTest, CapabilityChecks) {
  ::csi::v1::VolumeCapability cap;
  EXPECT_EQ(CheckCapability(cap, "c").code(), StatusCode::kInvalidArgument);  // no access type
  cap.mutable_mount();
  EXPECT_EQ(CheckCapability(cap, "c").code(), StatusCode::kInvalidArgument);  // no mode
  cap.mutable_access_mode()->set_mode(
      ::csi::v1::VolumeCapability::AccessMode::MULTI_NODE_MULTI_WRITER);
  EXPECT_TRUE(CheckCapability(cap, "c").ok());
  EXPECT_FALSE(ReaderOnly(cap));
  cap.mutable_mount()->set_fs_type("cairn");
  EXPECT_TRUE(CheckCapability(cap, "c").ok());
  cap.mutable_mount()->set_fs_type("xfs");
  EXPECT_EQ(CheckCapability(cap, "c").code(), StatusCode::kInvalidArgument);
  cap.mutable_mount()->clear_fs_type();
  cap.mutable_access_mode()->set_mode(
      ::csi::v1::VolumeCapability::AccessMode::MULTI_NODE_READER_ONLY);
  EXPECT_TRUE(ReaderOnly(cap));
  cap.mutable_block();
  Status s = CheckCapability(cap, "volume_capabilities[2]");
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("volume_capabilities[2]"), std::string::npos);
  EXPECT_NE(s.message().find("block"), std::string::npos);
}

TEST(CsiParamsTest, ProvisionerIdsAndMountTable) {
  EXPECT_TRUE(IsProvisionerId("0123456789abcdef0123456789abcdef"));
  EXPECT_FALSE(IsProvisionerId("0123456789ABCDEF0123456789abcdef"));
  EXPECT_FALSE(IsProvisionerId("../../etc"));
  EXPECT_FALSE(IsProvisionerId(""));
  auto root = FindMount("/");
  ASSERT_TRUE(root.has_value());
  EXPECT_EQ(root->mount_point, "/");
  EXPECT_EQ(Probe("/"), MountHealth::kHealthy);
  EXPECT_EQ(Probe("/no/such/path/here"), MountHealth::kMissing);
  EXPECT_EQ(Probe("/etc"), MountHealth::kNotMounted);
  EXPECT_TRUE(FindMount("/proc").has_value());
  EXPECT_TRUE(FindMount("/proc/").has_value());  // a trailing slash is the same path
}

}  // namespace
}  // namespace cairn::csi
