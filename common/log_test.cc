// Tests for JSON escaping and logger set-up.
#include "common/log.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

namespace cairn {
namespace {

TEST(JsonEscape, PlainTextIsUnchanged) {
  EXPECT_EQ(JsonEscape(""), "");
  EXPECT_EQ(JsonEscape("attached brick=b1 path=/srv/b1"), "attached brick=b1 path=/srv/b1");
}

TEST(JsonEscape, EscapesQuotesAndBackslash) {
  EXPECT_EQ(JsonEscape(R"(say "hi")"), R"(say \"hi\")");
  EXPECT_EQ(JsonEscape(R"(C:\dir\f)"), R"(C:\\dir\\f)");
  EXPECT_EQ(JsonEscape(R"(\")"), R"(\\\")");
}

TEST(JsonEscape, EscapesNewlineReturnAndTab) {
  EXPECT_EQ(JsonEscape("a\nb"), "a\\nb");
  EXPECT_EQ(JsonEscape("a\rb"), "a\\rb");
  EXPECT_EQ(JsonEscape("a\tb"), "a\\tb");
}

TEST(JsonEscape, EscapesOtherControlCharsAsUnicode) {
  EXPECT_EQ(JsonEscape(std::string("\0", 1)), "\\u0000");
  EXPECT_EQ(JsonEscape("\x01"), "\\u0001");
  EXPECT_EQ(JsonEscape("\x1b[31m"), "\\u001b[31m");
  EXPECT_EQ(JsonEscape("\x1f"), "\\u001f");
}

TEST(JsonEscape, LeavesUtf8Untouched) {
  EXPECT_EQ(JsonEscape("caf\xc3\xa9 \xe2\x9c\x93"), "caf\xc3\xa9 \xe2\x9c\x93");
}

TEST(JsonEscape, EveryAsciiCharRoundTripsThroughAJsonParser) {
  std::string all;
  for (int c = 0; c < 0x80; ++c) all += static_cast<char>(c);
  std::string literal = "\"" + JsonEscape(all) + "\"";
  nlohmann::json j = nlohmann::json::parse(literal, nullptr, /*allow_exceptions=*/false);
  ASSERT_FALSE(j.is_discarded()) << literal;
  ASSERT_TRUE(j.is_string());
  EXPECT_EQ(j.get<std::string>(), all);
}

TEST(InitLogging, RejectsUnknownLevel) {
  for (const char* level : {"loud", "INFO ", "verbose", ""}) {
    Status s = InitLogging({.level = level, .json = false, .name = "log_test"});
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << "level '" << level << "'";
    if (*level != '\0') {
      EXPECT_NE(s.message().find(level), std::string::npos) << s.ToString();
    }
  }
}

TEST(InitLogging, AcceptsInfoInHumanAndJsonModes) {
  Status human = InitLogging({.level = "info", .json = false, .name = "log_test"});
  EXPECT_TRUE(human.ok()) << human.ToString();
  EXPECT_EQ(spdlog::default_logger()->level(), spdlog::level::info);
  Status json = InitLogging({.level = "info", .json = true, .name = "log_test"});
  EXPECT_TRUE(json.ok()) << json.ToString();
  EXPECT_EQ(spdlog::default_logger()->level(), spdlog::level::info);
}

TEST(InitLogging, CanBeCalledAgainToChangeLevel) {
  ASSERT_TRUE(InitLogging({.level = "debug", .name = "log_test"}).ok());
  EXPECT_EQ(spdlog::default_logger()->level(), spdlog::level::debug);
  ASSERT_TRUE(InitLogging({.level = "warn", .name = "log_test"}).ok());
  EXPECT_EQ(spdlog::default_logger()->level(), spdlog::level::warn);
  ASSERT_TRUE(InitLogging({.level = "off", .name = "log_test"}).ok());
  EXPECT_EQ(spdlog::default_logger()->level(), spdlog::level::off);
}

TEST(InitLogging, JsonModeWritesOneParsableObjectPerLine) {
  ASSERT_TRUE(InitLogging({.level = "info", .json = true, .name = "logtest"}).ok());
  testing::internal::CaptureStderr();
  spdlog::info("detached brick={} reason=\"{}\"", "b1", "line1\nline2\\");
  spdlog::debug("below the level");
  spdlog::default_logger()->flush();
  std::string out = testing::internal::GetCapturedStderr();

  std::vector<std::string> lines;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines.push_back(line);
  }
  ASSERT_EQ(lines.size(), 1u) << out;
  nlohmann::json j = nlohmann::json::parse(lines[0], nullptr, /*allow_exceptions=*/false);
  ASSERT_TRUE(j.is_object()) << lines[0];
  EXPECT_EQ(j.value("msg", ""), "detached brick=b1 reason=\"line1\nline2\\\"");
  EXPECT_EQ(j.value("level", ""), "info");
  EXPECT_EQ(j.value("component", ""), "logtest");
  EXPECT_TRUE(j.contains("ts"));
  EXPECT_TRUE(j["pid"].is_number_integer());
}

TEST(InitLogging, HumanModeWritesComponentAndMessage) {
  ASSERT_TRUE(InitLogging({.level = "info", .json = false, .name = "logtest"}).ok());
  testing::internal::CaptureStderr();
  spdlog::warn("disk nearly full brick={}", "b2");
  spdlog::default_logger()->flush();
  std::string out = testing::internal::GetCapturedStderr();
  EXPECT_NE(out.find("logtest["), std::string::npos) << out;
  EXPECT_NE(out.find("disk nearly full brick=b2"), std::string::npos) << out;
  EXPECT_EQ(out.find('{'), std::string::npos) << out;
}

}  // namespace
}  // namespace cairn
