// cairnctl's settings: which provisioner, as whom, with which key.
//
// Each setting comes from the first of: a command-line flag, the environment
// (CAIRN_SERVER/CAIRN_USER/CAIRN_KEY, else Heketi's HEKETI_CLI_SERVER/
// HEKETI_CLI_USER/HEKETI_CLI_KEY), the context file ($CAIRN_CONFIG, default
// ~/.cairn/config: JSON {"server","user","key" or "key_file",
// "data_token_file","local_dir"}).
//
//   SettingsFlags f;  f.server = "http://127.0.0.1:8080";
//   CAIRN_ASSIGN_OR_RETURN(Settings s, ResolveSettings(f, [](const char* n) { return getenv(n);
//   })); CAIRN_RETURN_IF_ERROR(s.RequireServer());
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "common/status.h"

namespace cairn::ctl {

// What the command line said (unset: not given).
struct SettingsFlags {
  std::optional<std::string> server;
  std::optional<std::string> user;
  std::optional<std::string> key;
  std::optional<std::string> key_file;
  std::optional<std::string> config;           // the context file
  std::optional<std::string> data_token_file;  // for volume mount
};

// Reads an environment variable (nullptr: unset). std::getenv in main.
using GetEnvFn = std::function<const char*(const char*)>;

struct Settings {
  std::string server;  // normalized URL ("http://host:port", no trailing '/'); may be empty
  std::string user = "admin";
  std::string key;  // the JWT signing key; may be empty
  std::string data_token_file;
  std::string local_dir;
  // The context file these settings looked at (whether or not it exists).
  std::string config_path;
  bool config_exists = false;
  // Where server/key came from, for messages ("--server", "CAIRN_SERVER", the file).
  std::string server_source;
  std::string key_source;

  // Ok iff there is a server; else says how to get one.
  Status RequireServer() const;
  // Ok iff there is a key; else says how to give one.
  Status RequireKey() const;
};

// Resolves the settings (precedence above). Fails on an unreadable or
// malformed context file, an unreadable key file or a bad user.
StatusOr<Settings> ResolveSettings(const SettingsFlags& flags, const GetEnvFn& getenv_fn);

// The context file path: `flag` if set, else $CAIRN_CONFIG, else $HOME/.cairn/config.
std::string ContextPath(const std::optional<std::string>& flag, const GetEnvFn& getenv_fn);

// "127.0.0.1:8080" -> "http://127.0.0.1:8080"; strips a trailing '/'.
// InvalidArgument for a scheme other than http/https or an empty host.
StatusOr<std::string> NormalizeServerUrl(const std::string& url);

// The context file's contents.
struct Context {
  std::string server;
  std::string user;
  std::string key;
  std::string key_file;
  std::string data_token_file;
  std::string local_dir;

  nlohmann::json ToJson() const;
};

// Parses a context file's text; `path` names it in errors. Unknown keys are ignored.
StatusOr<Context> ParseContext(const std::string& text, const std::string& path);

// Writes `context` to `path` (mode 0600, creating its directory with 0700).
Status WriteContext(const std::string& path, const Context& context);

}  // namespace cairn::ctl
