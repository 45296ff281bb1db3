// Config: command-line flags, optionally read from a JSON file too.
//
//   Flags flags("brickd", "serves bricks");
//   flags.AddString("listen", "127.0.0.1:24007", "address:port to serve on");
//   flags.AddInt("threads", 8, "request threads");
//   CAIRN_RETURN_IF_ERROR(flags.Parse(argc, argv));
//   std::string listen = flags.GetString("listen");
//
// Accepted forms: --name=value, --name value, --bool-flag, --no-bool-flag.
// A flag given twice keeps the last value, except a list flag (AddStringList),
// which keeps every occurrence in order:
//   flags.AddStringList("device", "ID=PATH; repeatable");
//   for (const std::string& d : flags.GetStringList("device")) ...
// `--config FILE` loads a JSON object whose keys are flag names (a list flag
// takes a string or an array of strings); flags given on the command line win
// over the file, the file over the defaults.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"

namespace cairn {

class Flags {
 public:
  Flags(std::string program, std::string summary);

  void AddString(const std::string& name, std::string default_value, std::string help);
  void AddInt(const std::string& name, int64_t default_value, std::string help);
  void AddBool(const std::string& name, bool default_value, std::string help);
  // A repeatable string flag; empty unless given.
  void AddStringList(const std::string& name, std::string help);

  // Parses argv. Unknown flags and malformed values are InvalidArgument.
  // Non-flag arguments are kept in positional().
  Status Parse(int argc, const char* const* argv);

  // True iff --help was given; Usage() then says what to print.
  bool help_requested() const { return help_; }
  std::string Usage() const;

  std::string GetString(const std::string& name) const;
  int64_t GetInt(const std::string& name) const;
  bool GetBool(const std::string& name) const;
  // Every value of a list flag, in the order given; GetString of a list flag
  // is its last value.
  std::vector<std::string> GetStringList(const std::string& name) const;
  // True iff the flag was set on the command line or in the config file.
  bool IsSet(const std::string& name) const;
  const std::vector<std::string>& positional() const { return positional_; }

 private:
  enum class Type { kString, kInt, kBool, kStringList };
  struct Flag {
    Type type;
    std::string value;
    std::string help;
    std::string default_value;
    bool set = false;
    std::vector<std::string> values = {};  // kStringList only
  };
  Status Set(const std::string& name, const std::string& value, bool from_file);
  Status LoadFile(const std::string& path);

  std::string program_;
  std::string summary_;
  std::map<std::string, Flag> flags_;
  std::vector<std::string> positional_;
  bool help_ = false;
};

// Splits a "host:port" flag value (port 0..65535; 0: any free port).
// InvalidArgument naming the value otherwise.
StatusOr<std::pair<std::string, int>> SplitHostPort(const std::string& address);

}  // namespace cairn
