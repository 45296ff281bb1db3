// cairnctl settings: flags > environment > context file.
#include "cairnctl/settings.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "common/file_util.h"

namespace cairn::ctl {
namespace {

const char* Env(const GetEnvFn& getenv_fn, const char* name) {
  const char* v = getenv_fn ? getenv_fn(name) : nullptr;
  return (v != nullptr && *v != '\0') ? v : nullptr;
}

// Directory part of `path` ("." if none).
std::string DirName(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// `p` relative to `base_dir` unless absolute; "~/" is the home directory.
std::string Resolve(const std::string& p, const std::string& base_dir, const GetEnvFn& getenv_fn) {
  if (p.empty() || p[0] == '/') return p;
  if (p.rfind("~/", 0) == 0) {
    const char* home = Env(getenv_fn, "HOME");
    return std::string(home != nullptr ? home : "") + p.substr(1);
  }
  return base_dir + "/" + p;
}

}  // namespace

nlohmann::json Context::ToJson() const {
  nlohmann::json j = nlohmann::json::object();
  if (!server.empty()) j["server"] = server;
  if (!user.empty()) j["user"] = user;
  if (!key.empty()) j["key"] = key;
  if (!key_file.empty()) j["key_file"] = key_file;
  if (!data_token_file.empty()) j["data_token_file"] = data_token_file;
  if (!local_dir.empty()) j["local_dir"] = local_dir;
  return j;
}

StatusOr<Context> ParseContext(const std::string& text, const std::string& path) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return Status::InvalidArgument("context file " + path + " is not a JSON object");
  }
  Context c;
  for (const auto& [name, field] :
       std::initializer_list<std::pair<const char*, std::string Context::*>>{
           {"server", &Context::server},
           {"user", &Context::user},
           {"key", &Context::key},
           {"key_file", &Context::key_file},
           {"data_token_file", &Context::data_token_file},
           {"local_dir", &Context::local_dir}}) {
    auto it = j.find(name);
    if (it == j.end() || it->is_null()) continue;
    if (!it->is_string()) {
      return Status::InvalidArgument("context file " + path + ": \"" + name +
                                     "\" must be a string");
    }
    c.*field = it->get<std::string>();
  }
  if (!c.key.empty() && !c.key_file.empty()) {
    return Status::InvalidArgument("context file " + path +
                                   ": give \"key\" or \"key_file\", not both");
  }
  return c;
}

Status WriteContext(const std::string& path, const Context& context) {
  const std::string dir = DirName(path);
  std::error_code ec;
  if (!std::filesystem::exists(dir, ec)) {
    std::filesystem::create_directories(dir, ec);
    if (ec) return Status::Internal("cannot create " + dir + ": " + ec.message());
    ::chmod(dir.c_str(), 0700);
  }
  return WriteFileAtomic(path, context.ToJson().dump(2) + "\n", 0600)
      .WithContext("context file " + path);
}

StatusOr<std::string> NormalizeServerUrl(const std::string& url) {
  std::string u = url;
  while (!u.empty() && u.back() == ' ') u.pop_back();
  while (!u.empty() && u.front() == ' ') u.erase(0, 1);
  if (u.empty()) return Status::InvalidArgument("empty server URL");
  std::string scheme = "http";
  std::string rest = u;
  if (auto scheme_end = u.find("://"); scheme_end != std::string::npos) {
    scheme = u.substr(0, scheme_end);
    rest = u.substr(scheme_end + 3);
    if (scheme != "http" && scheme != "https") {
      return Status::InvalidArgument("server URL " + url + ": scheme must be http or https");
    }
  }
  while (!rest.empty() && rest.back() == '/') rest.pop_back();
  if (rest.empty() || rest.front() == ':' || rest.front() == '/') {
    return Status::InvalidArgument("server URL " + url + " has no host");
  }
  if (rest.find('/') != std::string::npos) {
    return Status::InvalidArgument("server URL " + url + " must be scheme://host[:port] (no path)");
  }
  return scheme + "://" + rest;
}

std::string ContextPath(const std::optional<std::string>& flag, const GetEnvFn& getenv_fn) {
  if (flag.has_value() && !flag->empty()) return *flag;
  if (const char* c = Env(getenv_fn, "CAIRN_CONFIG")) return c;
  const char* home = Env(getenv_fn, "HOME");
  return std::string(home != nullptr ? home : "") + "/.cairn/config";
}

Status Settings::RequireServer() const {
  if (!server.empty()) return Status::Ok();
  return Status::InvalidArgument(
      "no provisioner to talk to: start a local cluster with `cairnctl local up`, or pass "
      "--server URL (or set CAIRN_SERVER, or \"server\" in the context file " +
      config_path + ")");
}

Status Settings::RequireKey() const {
  if (!key.empty()) return Status::Ok();
  return Status::InvalidArgument(
      "no key to sign requests with: pass --key-file F (or --key, CAIRN_KEY, or \"key_file\" in "
      "the context file " +
      config_path + "); `cairnctl local up` writes one");
}

StatusOr<Settings> ResolveSettings(const SettingsFlags& flags, const GetEnvFn& getenv_fn) {
  Settings s;
  s.config_path = ContextPath(flags.config, getenv_fn);
  Context ctx;
  {
    struct stat st;
    if (::stat(s.config_path.c_str(), &st) == 0) {
      auto text = ReadFile(s.config_path);
      if (!text.ok()) {
        return Status::InvalidArgument("cannot read context file " + s.config_path + ": " +
                                       text.status().message());
      }
      CAIRN_ASSIGN_OR_RETURN(ctx, ParseContext(*text, s.config_path));
      s.config_exists = true;
    } else if (flags.config.has_value()) {
      // An explicit --config must exist; $CAIRN_CONFIG and the default may not (yet).
      return Status::InvalidArgument("context file " + s.config_path + ": " + std::strerror(errno));
    }
  }
  const std::string ctx_dir = DirName(s.config_path);

  // Server.
  std::string server;
  if (flags.server.has_value()) {
    server = *flags.server;
    s.server_source = "--server";
  } else if (const char* v = Env(getenv_fn, "CAIRN_SERVER")) {
    server = v;
    s.server_source = "CAIRN_SERVER";
  } else if (const char* v = Env(getenv_fn, "HEKETI_CLI_SERVER")) {
    server = v;
    s.server_source = "HEKETI_CLI_SERVER";
  } else if (!ctx.server.empty()) {
    server = ctx.server;
    s.server_source = s.config_path;
  }
  if (!server.empty()) {
    auto normalized = NormalizeServerUrl(server);
    if (!normalized.ok()) return normalized.status().WithContext(s.server_source);
    s.server = *normalized;
  }

  // User.
  if (flags.user.has_value()) {
    s.user = *flags.user;
  } else if (const char* v = Env(getenv_fn, "CAIRN_USER")) {
    s.user = v;
  } else if (const char* v = Env(getenv_fn, "HEKETI_CLI_USER")) {
    s.user = v;
  } else if (!ctx.user.empty()) {
    s.user = ctx.user;
  }
  if (s.user != "admin" && s.user != "user") {
    return Status::InvalidArgument("user must be admin or user, not '" + s.user + "'");
  }

  // Key: a flag (either form), then the environment, then the context.
  auto read_key = [&](const std::string& path, const std::string& source) -> Status {
    auto k = ReadSecretFile(path);
    if (!k.ok()) {
      return Status::InvalidArgument(source + ": cannot read key file " + path + ": " +
                                     k.status().message());
    }
    s.key = *k;
    s.key_source = source;
    return Status::Ok();
  };
  if (flags.key.has_value() && flags.key_file.has_value()) {
    return Status::InvalidArgument("give --key or --key-file, not both");
  }
  if (flags.key.has_value()) {
    s.key = *flags.key;
    s.key_source = "--key";
  } else if (flags.key_file.has_value()) {
    CAIRN_RETURN_IF_ERROR(read_key(*flags.key_file, "--key-file"));
  } else if (const char* v = Env(getenv_fn, "CAIRN_KEY")) {
    s.key = v;
    s.key_source = "CAIRN_KEY";
  } else if (const char* v = Env(getenv_fn, "HEKETI_CLI_KEY")) {
    s.key = v;
    s.key_source = "HEKETI_CLI_KEY";
  } else if (!ctx.key.empty()) {
    s.key = ctx.key;
    s.key_source = s.config_path;
  } else if (!ctx.key_file.empty()) {
    CAIRN_RETURN_IF_ERROR(
        read_key(Resolve(ctx.key_file, ctx_dir, getenv_fn), "context file " + s.config_path));
  }

  // The data token (volume mount) and the local cluster.
  if (flags.data_token_file.has_value()) {
    s.data_token_file = *flags.data_token_file;
  } else if (const char* v = Env(getenv_fn, "CAIRN_DATA_TOKEN_FILE")) {
    s.data_token_file = v;
  } else {
    s.data_token_file = Resolve(ctx.data_token_file, ctx_dir, getenv_fn);
  }
  s.local_dir = Resolve(ctx.local_dir, ctx_dir, getenv_fn);
  return s;
}

}  // namespace cairn::ctl
