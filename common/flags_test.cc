// Tests for command-line flags and JSON config files.
#include "common/flags.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <string>
#include <vector>

namespace cairn {
namespace {

// A Flags with one flag of each type, as a daemon would declare them.
class FlagsTest : public ::testing::Test {
 protected:
  FlagsTest() : flags_("brickd", "serves bricks") {
    flags_.AddString("listen", "127.0.0.1:24007", "address:port to serve on");
    flags_.AddInt("threads", 8, "request threads");
    flags_.AddBool("verbose", false, "log more");
    flags_.AddBool("fsync", true, "fsync every write");
  }

  ~FlagsTest() override {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  // Parses `args` as if they followed the program name.
  Status Parse(std::initializer_list<const char*> args) {
    std::vector<const char*> argv = {"brickd"};
    argv.insert(argv.end(), args.begin(), args.end());
    return flags_.Parse(static_cast<int>(argv.size()), argv.data());
  }

  // Writes `contents` to a fresh file in a private temporary directory.
  std::string WriteConfig(const std::string& contents) {
    if (dir_.empty()) {
      std::string tmpl = (std::filesystem::temp_directory_path() / "flags_test.XXXXXX").string();
      char* d = ::mkdtemp(tmpl.data());
      EXPECT_NE(d, nullptr);
      dir_ = tmpl;
    }
    std::string path = dir_ + "/config" + std::to_string(files_++) + ".json";
    std::ofstream(path) << contents;
    return path;
  }

  Flags flags_;
  std::string dir_;
  int files_ = 0;
};

TEST_F(FlagsTest, DefaultsApplyWhenNothingIsGiven) {
  ASSERT_TRUE(Parse({}).ok());
  EXPECT_EQ(flags_.GetString("listen"), "127.0.0.1:24007");
  EXPECT_EQ(flags_.GetInt("threads"), 8);
  EXPECT_FALSE(flags_.GetBool("verbose"));
  EXPECT_TRUE(flags_.GetBool("fsync"));
  EXPECT_FALSE(flags_.IsSet("listen"));
  EXPECT_FALSE(flags_.help_requested());
  EXPECT_TRUE(flags_.positional().empty());
}

TEST_F(FlagsTest, EqualsFormSetsValue) {
  ASSERT_TRUE(Parse({"--listen=0.0.0.0:1", "--threads=16"}).ok());
  EXPECT_EQ(flags_.GetString("listen"), "0.0.0.0:1");
  EXPECT_EQ(flags_.GetInt("threads"), 16);
}

TEST_F(FlagsTest, EqualsFormKeepsFurtherEqualsSignsInValue) {
  ASSERT_TRUE(Parse({"--listen=a=b=c"}).ok());
  EXPECT_EQ(flags_.GetString("listen"), "a=b=c");
}

TEST_F(FlagsTest, EqualsFormAcceptsEmptyString) {
  ASSERT_TRUE(Parse({"--listen="}).ok());
  EXPECT_EQ(flags_.GetString("listen"), "");
  EXPECT_TRUE(flags_.IsSet("listen"));
}

TEST_F(FlagsTest, SpaceFormTakesNextArgument) {
  ASSERT_TRUE(Parse({"--listen", "10.0.0.1:9", "--threads", "3"}).ok());
  EXPECT_EQ(flags_.GetString("listen"), "10.0.0.1:9");
  EXPECT_EQ(flags_.GetInt("threads"), 3);
  EXPECT_TRUE(flags_.positional().empty());
}

TEST_F(FlagsTest, NegativeIntegerIsAccepted) {
  ASSERT_TRUE(Parse({"--threads", "-3"}).ok());
  EXPECT_EQ(flags_.GetInt("threads"), -3);
}

TEST_F(FlagsTest, LastOccurrenceWins) {
  ASSERT_TRUE(Parse({"--threads=1", "--threads=2"}).ok());
  EXPECT_EQ(flags_.GetInt("threads"), 2);
}

TEST_F(FlagsTest, BareBoolFlagSetsTrue) {
  ASSERT_TRUE(Parse({"--verbose"}).ok());
  EXPECT_TRUE(flags_.GetBool("verbose"));
  EXPECT_TRUE(flags_.IsSet("verbose"));
}

TEST_F(FlagsTest, NoPrefixSetsBoolFalse) {
  ASSERT_TRUE(Parse({"--no-fsync"}).ok());
  EXPECT_FALSE(flags_.GetBool("fsync"));
  EXPECT_TRUE(flags_.IsSet("fsync"));
}

TEST_F(FlagsTest, BoolEqualsFormsAcceptTrueAndFalseSpellings) {
  ASSERT_TRUE(Parse({"--fsync=false", "--verbose=true"}).ok());
  EXPECT_FALSE(flags_.GetBool("fsync"));
  EXPECT_TRUE(flags_.GetBool("verbose"));

  for (const char* yes : {"--verbose=1", "--verbose=yes"}) {
    Flags f("p", "s");
    f.AddBool("verbose", false, "h");
    const char* argv[] = {"p", yes};
    ASSERT_TRUE(f.Parse(2, argv).ok()) << yes;
    EXPECT_TRUE(f.GetBool("verbose")) << yes;
  }
  for (const char* no : {"--verbose=0", "--verbose=no"}) {
    Flags f("p", "s");
    f.AddBool("verbose", true, "h");
    const char* argv[] = {"p", no};
    ASSERT_TRUE(f.Parse(2, argv).ok()) << no;
    EXPECT_FALSE(f.GetBool("verbose")) << no;
  }
}

TEST_F(FlagsTest, BoolRejectsOtherValues) {
  Status s = Parse({"--verbose=maybe"});
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("maybe"), std::string::npos) << s.ToString();
}

TEST_F(FlagsTest, BareBoolDoesNotConsumeNextArgument) {
  ASSERT_TRUE(Parse({"--verbose", "file.txt"}).ok());
  EXPECT_TRUE(flags_.GetBool("verbose"));
  EXPECT_EQ(flags_.positional(), std::vector<std::string>{"file.txt"});
}

TEST_F(FlagsTest, UnknownFlagIsInvalidArgumentNamingIt) {
  Status s = Parse({"--nope=1"});
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("--nope"), std::string::npos) << s.ToString();
}

TEST_F(FlagsTest, NoPrefixOnNonBoolFlagIsUnknown) {
  Status s = Parse({"--no-threads"});
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("no-threads"), std::string::npos) << s.ToString();
}

TEST_F(FlagsTest, NoPrefixWithValueIsUnknown) {
  EXPECT_EQ(Parse({"--no-verbose=true"}).code(), StatusCode::kInvalidArgument);
}

TEST_F(FlagsTest, BadIntegerIsInvalidArgument) {
  for (const char* bad : {"--threads=abc", "--threads=12x", "--threads=", "--threads=1.5",
                          "--threads= 4", "--threads=99999999999999999999"}) {
    Flags f("p", "s");
    f.AddInt("threads", 8, "h");
    const char* argv[] = {"p", bad};
    Status s = f.Parse(2, argv);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(s.message().find("--threads"), std::string::npos) << s.ToString();
    EXPECT_EQ(f.GetInt("threads"), 8) << bad;
  }
}

TEST_F(FlagsTest, MissingValueIsInvalidArgument) {
  Status s = Parse({"--listen"});
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("--listen"), std::string::npos) << s.ToString();
  EXPECT_EQ(Parse({"--threads"}).code(), StatusCode::kInvalidArgument);
}

TEST_F(FlagsTest, PositionalArgumentsAreKeptInOrder) {
  ASSERT_TRUE(Parse({"first", "--threads", "2", "second", "-", "-v"}).ok());
  EXPECT_EQ(flags_.GetInt("threads"), 2);
  EXPECT_EQ(flags_.positional(), (std::vector<std::string>{"first", "second", "-", "-v"}));
}

TEST_F(FlagsTest, DoubleDashEndsFlags) {
  ASSERT_TRUE(Parse({"a", "--", "--verbose", "--nope", "b"}).ok());
  EXPECT_FALSE(flags_.GetBool("verbose"));
  EXPECT_FALSE(flags_.IsSet("verbose"));
  EXPECT_EQ(flags_.positional(), (std::vector<std::string>{"a", "--verbose", "--nope", "b"}));
}

TEST_F(FlagsTest, HelpSetsHelpRequested) {
  ASSERT_TRUE(Parse({"--help"}).ok());
  EXPECT_TRUE(flags_.help_requested());
}

TEST_F(FlagsTest, UsageMentionsProgramFlagsHelpAndDefaults) {
  std::string usage = flags_.Usage();
  EXPECT_NE(usage.find("brickd"), std::string::npos) << usage;
  EXPECT_NE(usage.find("serves bricks"), std::string::npos) << usage;
  EXPECT_NE(usage.find("--listen=VALUE"), std::string::npos) << usage;
  EXPECT_NE(usage.find("address:port to serve on"), std::string::npos) << usage;
  EXPECT_NE(usage.find("(default: 127.0.0.1:24007)"), std::string::npos) << usage;
  EXPECT_NE(usage.find("--threads=VALUE"), std::string::npos) << usage;
  EXPECT_NE(usage.find("(default: 8)"), std::string::npos) << usage;
  EXPECT_NE(usage.find("--config=VALUE"), std::string::npos) << usage;
  // Bool flags take no value.
  EXPECT_NE(usage.find("--verbose\n"), std::string::npos) << usage;
  EXPECT_EQ(usage.find("--verbose=VALUE"), std::string::npos) << usage;
  EXPECT_NE(usage.find("(default: true)"), std::string::npos) << usage;
}

TEST_F(FlagsTest, ConfigFileValuesApply) {
  std::string path =
      WriteConfig(R"({"listen": "10.1.1.1:7", "threads": 4, "verbose": true, "fsync": "false"})");
  ASSERT_TRUE(Parse({"--config", path.c_str()}).ok());
  EXPECT_EQ(flags_.GetString("listen"), "10.1.1.1:7");
  EXPECT_EQ(flags_.GetInt("threads"), 4);
  EXPECT_TRUE(flags_.GetBool("verbose"));
  EXPECT_FALSE(flags_.GetBool("fsync"));
  EXPECT_TRUE(flags_.IsSet("listen"));
  EXPECT_TRUE(flags_.IsSet("threads"));
}

TEST_F(FlagsTest, CommandLineWinsOverConfigFileWhateverTheOrder) {
  std::string path = WriteConfig(R"({"threads": 4, "listen": "file:1", "verbose": true})");
  std::string config_arg = "--config=" + path;
  ASSERT_TRUE(Parse({"--threads=9", config_arg.c_str(), "--no-verbose"}).ok());
  EXPECT_EQ(flags_.GetInt("threads"), 9);
  EXPECT_FALSE(flags_.GetBool("verbose"));
  EXPECT_EQ(flags_.GetString("listen"), "file:1");
}

TEST_F(FlagsTest, UnknownKeyInConfigFileIsInvalidArgument) {
  std::string path = WriteConfig(R"({"threads": 4, "bogus": "x"})");
  Status s = Parse({"--config", path.c_str()});
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("bogus"), std::string::npos) << s.ToString();
  EXPECT_NE(s.message().find(path), std::string::npos) << s.ToString();
}

TEST_F(FlagsTest, BadValueTypeInConfigFileIsInvalidArgument) {
  EXPECT_EQ(Parse({"--config", WriteConfig(R"({"threads": "many"})").c_str()}).code(),
            StatusCode::kInvalidArgument);
  Flags f2("p", "s");
  f2.AddInt("threads", 8, "h");
  std::string path = WriteConfig(R"({"threads": 1.5})");
  const char* argv[] = {"p", "--config", path.c_str()};
  EXPECT_EQ(f2.Parse(3, argv).code(), StatusCode::kInvalidArgument);
  Flags f3("p", "s");
  f3.AddString("listen", "", "h");
  std::string path3 = WriteConfig(R"({"listen": ["a"]})");
  const char* argv3[] = {"p", "--config", path3.c_str()};
  EXPECT_EQ(f3.Parse(3, argv3).code(), StatusCode::kInvalidArgument);
}

TEST_F(FlagsTest, NonObjectConfigFileIsInvalidArgument) {
  for (const char* contents : {"[1, 2]", "\"listen\"", "42", "{not json", ""}) {
    Flags f("p", "s");
    std::string path = WriteConfig(contents);
    const char* argv[] = {"p", "--config", path.c_str()};
    Status s = f.Parse(3, argv);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << "contents: " << contents;
  }
}

TEST_F(FlagsTest, MissingConfigFileIsInvalidArgument) {
  Status s = Parse({"--config=/nonexistent/cairn/flags.json"});
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("/nonexistent/cairn/flags.json"), std::string::npos);
}

TEST_F(FlagsTest, IsSetTracksExplicitSettingEvenToTheDefault) {
  std::string path = WriteConfig(R"({"listen": "127.0.0.1:24007"})");
  ASSERT_TRUE(Parse({"--threads=8", "--config", path.c_str()}).ok());
  EXPECT_TRUE(flags_.IsSet("threads"));  // same value as the default, but given
  EXPECT_TRUE(flags_.IsSet("listen"));   // from the file
  EXPECT_TRUE(flags_.IsSet("config"));
  EXPECT_FALSE(flags_.IsSet("verbose"));
  EXPECT_FALSE(flags_.IsSet("no-such-flag"));
}

TEST_F(FlagsTest, UnknownNamesReadAsEmptyDefaults) {
  EXPECT_EQ(flags_.GetString("no-such-flag"), "");
  EXPECT_EQ(flags_.GetInt("no-such-flag"), 0);
  EXPECT_FALSE(flags_.GetBool("no-such-flag"));
}

// A list flag (AddStringList) keeps every occurrence, in order.
class ListFlagsTest : public FlagsTest {
 protected:
  ListFlagsTest() { flags_.AddStringList("device", "ID=PATH; repeatable"); }
};

TEST_F(ListFlagsTest, EmptyWhenNotGiven) {
  ASSERT_TRUE(Parse({}).ok());
  EXPECT_TRUE(flags_.GetStringList("device").empty());
  EXPECT_EQ(flags_.GetString("device"), "");
  EXPECT_FALSE(flags_.IsSet("device"));
}

TEST_F(ListFlagsTest, EveryOccurrenceIsKeptInOrderBothForms) {
  ASSERT_TRUE(Parse({"--device=d1=/a", "--listen=x:1", "--device", "d2=/b:10", "--device="}).ok());
  EXPECT_EQ(flags_.GetStringList("device"), (std::vector<std::string>{"d1=/a", "d2=/b:10", ""}));
  EXPECT_EQ(flags_.GetString("device"), "");  // the last one
  EXPECT_TRUE(flags_.IsSet("device"));
  EXPECT_EQ(flags_.GetString("listen"), "x:1");
}

TEST_F(ListFlagsTest, OtherFlagsStillKeepTheLastOccurrence) {
  ASSERT_TRUE(Parse({"--listen=a:1", "--device=d1=/a", "--listen=b:2"}).ok());
  EXPECT_EQ(flags_.GetString("listen"), "b:2");
  EXPECT_TRUE(flags_.GetStringList("listen").empty());
}

TEST_F(ListFlagsTest, ConfigFileTakesAnArrayOrAString) {
  std::string path = WriteConfig(R"({"device": ["d1=/a", "d2=/b"]})");
  ASSERT_TRUE(Parse({"--config", path.c_str()}).ok());
  EXPECT_EQ(flags_.GetStringList("device"), (std::vector<std::string>{"d1=/a", "d2=/b"}));

  Flags other("storaged", "one device");
  other.AddStringList("device", "ID=PATH");
  std::string one = "--config=" + WriteConfig(R"({"device": "d3=/c"})");
  const char* argv[] = {"storaged", one.c_str()};
  ASSERT_TRUE(other.Parse(2, argv).ok());
  EXPECT_EQ(other.GetStringList("device"), (std::vector<std::string>{"d3=/c"}));
}

TEST_F(ListFlagsTest, CommandLineReplacesTheConfigFileList) {
  std::string path = WriteConfig(R"({"device": ["d1=/a", "d2=/b"]})");
  std::string config_arg = "--config=" + path;
  ASSERT_TRUE(Parse({config_arg.c_str(), "--device=d9=/z"}).ok());
  EXPECT_EQ(flags_.GetStringList("device"), (std::vector<std::string>{"d9=/z"}));
}

TEST_F(ListFlagsTest, NonStringInConfigFileListIsInvalidArgument) {
  std::string path = WriteConfig(R"({"device": ["d1=/a", 3]})");
  Status s = Parse({"--config", path.c_str()});
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("'device'"), std::string::npos) << s.message();
}

TEST_F(ListFlagsTest, UsageSaysRepeatable) {
  EXPECT_NE(flags_.Usage().find("--device=VALUE (repeatable)"), std::string::npos)
      << flags_.Usage();
}

TEST(SplitHostPort, SplitsAndRefusesBadPorts) {
  auto a = SplitHostPort("127.0.0.2:24007");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->first, "127.0.0.2");
  EXPECT_EQ(a->second, 24007);
  auto any = SplitHostPort("[::1]:0");
  ASSERT_TRUE(any.ok());
  EXPECT_EQ(any->first, "[::1]");
  EXPECT_EQ(any->second, 0);
  for (const char* bad : {"", "host", ":80", "h:", "h:x", "h:-1", "h:65536", "h:123456", "h:8 0"}) {
    auto r = SplitHostPort(bad);
    EXPECT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << bad;
  }
}

}  // namespace
}  // namespace cairn
