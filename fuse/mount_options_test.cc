// cairn-mount's command line: our options are taken out of -o, generic ones
// pass through, bad values and unknown options are errors naming the option.
#include "fuse/mount_options.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <string>
#include <vector>

namespace cairn::fuse {
namespace {

StatusOr<MountConfig> Parse(std::vector<std::string> args) {
  args.insert(args.begin(), "cairn-mount");
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  return ParseMountArgs(static_cast<int>(argv.size()), argv.data());
}

TEST(MountOptionsTest, DefaultsAndPositionals) {
  auto c = Parse({"/etc/vol.json", "/mnt/v"});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->spec_path, "/etc/vol.json");
  EXPECT_EQ(c->mountpoint, "/mnt/v");
  EXPECT_FALSE(c->foreground);
  EXPECT_DOUBLE_EQ(c->entry_timeout_s, 1.0);
  EXPECT_DOUBLE_EQ(c->attr_timeout_s, 1.0);
  EXPECT_DOUBLE_EQ(c->negative_timeout_s, 0.0);
  EXPECT_EQ(c->allow_other, ::geteuid() == 0);
  EXPECT_EQ(c->log_level, "info");
  EXPECT_EQ(c->read_ahead_kib, 1024);
}

TEST(MountOptionsTest, OwnOptionsAreParsed) {
  auto c = Parse({"-f", "-o",
                  "token_file=/t,entry_timeout=2.5,attr_timeout=0,negative_timeout=3,"
                  "log_level=debug,log_file=/l,noallow_other,ro,max_threads=4,read_ahead_kb=0",
                  "spec", "mnt"});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_TRUE(c->foreground);
  EXPECT_EQ(c->token_file, "/t");
  EXPECT_DOUBLE_EQ(c->entry_timeout_s, 2.5);
  EXPECT_DOUBLE_EQ(c->attr_timeout_s, 0.0);
  EXPECT_DOUBLE_EQ(c->negative_timeout_s, 3.0);
  EXPECT_EQ(c->log_level, "debug");
  EXPECT_EQ(c->log_file, "/l");
  EXPECT_FALSE(c->allow_other);
  EXPECT_TRUE(c->read_only);
  EXPECT_EQ(c->max_threads, 4);
  EXPECT_EQ(c->read_ahead_kib, 0);
  EXPECT_EQ(c->FuseOptions("vol1"), "fsname=vol1,subtype=cairn,default_permissions,ro");
}

TEST(MountOptionsTest, OptionsMayFollowPositionalsLikeMountHelpers) {
  auto c = Parse({"spec", "mnt", "-o", "rw,nosuid,nodev,_netdev,defaults", "-oallow_other"});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_TRUE(c->allow_other);
  EXPECT_EQ(c->FuseOptions("v"),
            "fsname=v,subtype=cairn,default_permissions,allow_other,rw,nosuid,nodev");
}

TEST(MountOptionsTest, FsnameIsEscapedForLibfuse) {
  auto c = Parse({"-o", "noallow_other", "spec", "mnt"});
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->FuseOptions("a,b"), "fsname=a\\,b,subtype=cairn,default_permissions,rw");
}

TEST(MountOptionsTest, BadValuesNameTheOption) {
  for (const char* opt :
       {"entry_timeout=abc", "attr_timeout=-1", "negative_timeout=", "log_level=loud",
        "max_threads=0", "token_file", "ro=1", "connect_timeout=0"}) {
    auto c = Parse({"-o", opt, "spec", "mnt"});
    ASSERT_FALSE(c.ok()) << opt;
    EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument) << opt;
    const std::string key = std::string(opt).substr(0, std::string(opt).find('='));
    EXPECT_NE(c.status().message().find(key), std::string::npos) << c.status().message();
  }
}

TEST(MountOptionsTest, UnknownOptionsAndArgumentsAreErrors) {
  auto c = Parse({"-o", "frobnicate", "spec", "mnt"});
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("frobnicate"), std::string::npos);
  EXPECT_FALSE(Parse({"--bogus", "spec", "mnt"}).ok());
  EXPECT_FALSE(Parse({"-o", "subtype=x", "spec", "mnt"}).ok());
  EXPECT_FALSE(Parse({"spec"}).ok());
  EXPECT_FALSE(Parse({"spec", "mnt", "extra"}).ok());
  EXPECT_FALSE(Parse({"spec", "mnt", "-o"}).ok());
}

TEST(MountOptionsTest, HelpAndVersionNeedNoPositionals) {
  auto h = Parse({"-h"});
  ASSERT_TRUE(h.ok());
  EXPECT_TRUE(h->help);
  auto v = Parse({"--version"});
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->version);
  EXPECT_NE(MountUsage().find("token_file=PATH"), std::string::npos);
}

}  // namespace
}  // namespace cairn::fuse
