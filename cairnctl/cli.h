// cairnctl's command line: parsing, settings and every command
// (docs/provisioner.md, "cairnctl"). main() is RunCli with the real
// environment, stdout and stderr.
//
//   cairnctl [--server URL] [--user admin|user] [--key KEY | --key-file F]
//            [--config F] [-o table|json] COMMAND ...
//
// Exit codes: 0 ok, 1 the operation failed, 2 bad command line (or settings).
#pragma once

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <vector>

#include "cairnctl/rest_client.h"
#include "cairnctl/settings.h"
#include "common/status.h"

namespace cairn::ctl {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;
inline constexpr int kExitUsage = 2;

// Makes the API client for resolved settings (tests pass an in-memory one).
using ApiFactory = std::function<std::unique_ptr<Api>(const Settings&)>;

struct CliEnv {
  GetEnvFn getenv_fn;  // std::getenv in main
  ApiFactory api;      // empty: a RestClient for the settings
};

// Runs one cairnctl invocation (argv[0] is the program). Output goes to
// `out`, errors to `err` (one "cairnctl: ..." line, the server's text for
// API errors). Returns the exit code.
int RunCli(const std::vector<std::string>& argv, std::ostream& out, std::ostream& err,
           const CliEnv& env);

// The command-line split done before flag parsing: "-o json|table" is the
// output format, except after `volume mount` where "-o OPTS" are mount
// options; --config is the context file (not a flags file).
struct PreParsed {
  std::vector<std::string> rest;  // argv without the parts taken out
  std::optional<std::string> output;
  std::optional<std::string> mount_options;
  std::optional<std::string> config;
};
StatusOr<PreParsed> PreParse(const std::vector<std::string>& argv);

// A volume's info by name or id: an id (32 hex) is tried as an id first;
// names are looked up with GET /volumes?name=N (checked against each
// candidate's name, so a server that ignores the query still works).
// NotFound "no volume named or with id X"; several: InvalidArgument listing them.
StatusOr<nlohmann::json> ResolveVolume(Api& api, const std::string& name_or_id);

// True iff `s` is 32 lower-case hex characters (an API id).
bool LooksLikeId(const std::string& s);

// The table and key/value renderings, exposed for tests.
std::string RenderVolumeList(const std::vector<nlohmann::json>& volumes);
std::string RenderVolumeInfo(const nlohmann::json& volume);
std::string ReplicaText(const nlohmann::json& volume);
// GET /volumes/{id}/heal as a table; `node_name` maps node ids to names (may be empty).
std::string RenderHealInfo(const nlohmann::json& heal,
                           const std::function<std::string(const std::string&)>& node_name);

}  // namespace cairn::ctl
