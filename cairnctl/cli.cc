// cairnctl commands.
#include "cairnctl/cli.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>

#include "cairnctl/local_cluster.h"
#include "cairnctl/table.h"
#include "cairnctl/topology.h"
#include "common/file_util.h"
#include "common/flags.h"

extern char** environ;

namespace cairn::ctl {
namespace {

using json = nlohmann::json;

constexpr char kUsage[] =
    "usage: cairnctl [--server URL] [--user admin|user] [--key KEY | --key-file F]\n"
    "                [--config F] [-o table|json] COMMAND\n"
    "commands:\n"
    "  cluster list | info ID | create | delete ID\n"
    "  node list | info ID | delete ID | enable ID | disable ID\n"
    "  node add --cluster C --manage HOST[:PORT] --storage HOST [--zone N]\n"
    "  device list | info ID | delete ID | resync ID\n"
    "  device add --node N --name PATH [--capacity GiB]\n"
    "  volume list | info NAME|ID | delete NAME|ID\n"
    "  volume create --name N --size GiB [--replica 3] [--arbiter]\n"
    "  volume expand NAME|ID --size GiB       add GiB to the volume\n"
    "  volume mount NAME|ID DIR [-o OPTS]     mount with cairn-mount (OPTS: its -o options)\n"
    "  volume unmount DIR\n"
    "  volume heal info NAME|ID               pending heals and split-brain per brick\n"
    "  topology load --json topology.json     Heketi's format; known nodes/devices skipped\n"
    "  topology info                          the whole tree\n"
    "  local up [--nodes 3] [--dir ~/.cairn/local] [--device-size GiB] [--port 8080]\n"
    "           [--storaged-port 24007]      a whole cluster on this machine\n"
    "  local down [--dir DIR] [--purge]\n"
    "Settings: flags, else CAIRN_SERVER/CAIRN_USER/CAIRN_KEY (or HEKETI_CLI_*), else the\n"
    "context file ($CAIRN_CONFIG, default ~/.cairn/config), which `local up` writes.\n"
    "Exit codes: 0 ok, 1 the operation failed, 2 bad command line.\n";

// Flags that take a value (for PreParse to skip their values).
const std::set<std::string>& ValueFlags() {
  static const std::set<std::string> v = {
      "server",  "user",     "key",         "key-file", "data-token-file",
      "cluster", "manage",   "storage",     "zone",     "node",
      "name",    "capacity", "size",        "replica",  "json",
      "nodes",   "dir",      "device-size", "port",     "storaged-port",
      "output",  "options"};
  return v;
}

// A usage error: exit code 2.
struct UsageError {
  std::string message;
};

class Cli {
 public:
  Cli(const Flags& flags, const PreParsed& pre, std::ostream& out, std::ostream& err,
      const CliEnv& env)
      : flags_(flags), pre_(pre), out_(out), err_(err), env_(env) {}

  int Run();

 private:
  Status Dispatch();
  Status Usage(const std::string& m) {
    usage_error_ = true;
    return Status::InvalidArgument(m);
  }
  // Positional argument i (after noun and verb), or a usage error.
  Status Args(size_t min, size_t max);
  Status AllowFlags(std::initializer_list<const char*> names);
  StatusOr<int64_t> PositiveInt(const char* flag, bool required);
  Status NeedApi();
  void Print(const json& j) { out_ << j.dump(2) << "\n"; }

  Status ClusterCmd();
  Status NodeCmd();
  Status DeviceCmd();
  Status VolumeCmd();
  Status TopologyCmd();
  Status LocalCmd();

  Status VolumeMount(const json& volume, const std::string& dir);
  Status VolumeUnmount(const std::string& dir);
  std::string NodeName(const std::string& id);
  std::string LocalDir(const std::optional<std::string>& flag);

  const Flags& flags_;
  const PreParsed& pre_;
  std::ostream& out_;
  std::ostream& err_;
  const CliEnv& env_;
  bool json_ = false;
  bool usage_error_ = false;
  std::vector<std::string> args_;  // positional
  std::string noun_, verb_;
  Settings settings_;
  std::unique_ptr<Api> api_;
  std::map<std::string, std::string> node_names_;
};

int Cli::Run() {
  args_ = flags_.positional();
  if (pre_.output.has_value()) {
    if (*pre_.output == "json") {
      json_ = true;
    } else if (*pre_.output != "table") {
      err_ << "cairnctl: -o takes json or table, not '" << *pre_.output << "'\n";
      return kExitUsage;
    }
  }
  Status s = Dispatch();
  if (s.ok()) return kExitOk;
  std::string msg = s.message();
  while (!msg.empty() && msg.back() == '\n') msg.pop_back();
  err_ << "cairnctl: " << msg << "\n";
  if (usage_error_) return kExitUsage;
  return kExitFailed;
}

Status Cli::Args(size_t min, size_t max) {
  const size_t n = args_.size() - 2;
  if (n < min || n > max) {
    std::string cmd = noun_ + (verb_.empty() ? "" : " " + verb_);
    return Usage((n < min ? "missing arguments for '" : "too many arguments for '") + cmd + "'\n" +
                 kUsage);
  }
  return Status::Ok();
}

Status Cli::AllowFlags(std::initializer_list<const char*> names) {
  static const std::set<std::string> global = {"server",          "user",  "key", "key-file",
                                               "data-token-file", "output"};
  std::set<std::string> allowed(global);
  for (const char* n : names) allowed.insert(n);
  for (const char* f : {"cluster", "manage", "storage", "zone", "node", "name", "capacity", "size",
                        "replica", "arbiter", "json", "nodes", "dir", "device-size", "port",
                        "storaged-port", "purge", "options"}) {
    if (flags_.IsSet(f) && allowed.count(f) == 0) {
      return Usage(std::string("--") + f + " does not apply to '" + noun_ +
                   (verb_.empty() ? "" : " " + verb_) + "'");
    }
  }
  if (pre_.mount_options.has_value() && allowed.count("options") == 0) {
    return Usage("-o " + *pre_.mount_options + ": -o takes json or table");
  }
  return Status::Ok();
}

StatusOr<int64_t> Cli::PositiveInt(const char* flag, bool required) {
  if (!flags_.IsSet(flag)) {
    if (required) return Usage("--" + std::string(flag) + " is required");
    return int64_t{0};
  }
  int64_t v = flags_.GetInt(flag);
  if (v < 1) return Usage("--" + std::string(flag) + " must be at least 1");
  return v;
}

Status Cli::NeedApi() {
  SettingsFlags sf;
  auto opt = [&](const char* name) -> std::optional<std::string> {
    if (!flags_.IsSet(name)) return std::nullopt;
    return flags_.GetString(name);
  };
  sf.server = opt("server");
  sf.user = opt("user");
  sf.key = opt("key");
  sf.key_file = opt("key-file");
  sf.data_token_file = opt("data-token-file");
  sf.config = pre_.config;
  auto s = ResolveSettings(sf, env_.getenv_fn);
  if (!s.ok()) return Usage(s.status().message());
  settings_ = *s;
  if (Status r = settings_.RequireServer(); !r.ok()) return Usage(r.message());
  if (Status r = settings_.RequireKey(); !r.ok()) return Usage(r.message());
  if (env_.api) {
    api_ = env_.api(settings_);
  } else {
    api_ = std::make_unique<RestClient>(settings_.server, settings_.user, settings_.key);
  }
  return Status::Ok();
}

Status Cli::Dispatch() {
  if (args_.empty()) return Usage(std::string("no command\n") + kUsage);
  noun_ = args_[0];
  verb_ = args_.size() > 1 ? args_[1] : "";
  if (args_.size() < 2) args_.push_back("");  // so that args_[2...] are the arguments
  if (noun_ == "cluster") return ClusterCmd();
  if (noun_ == "node") return NodeCmd();
  if (noun_ == "device") return DeviceCmd();
  if (noun_ == "volume") return VolumeCmd();
  if (noun_ == "topology") return TopologyCmd();
  if (noun_ == "local") return LocalCmd();
  return Usage("unknown command '" + noun_ + "'\n" + kUsage);
}

std::string Str(const json& j, const char* key) {
  if (!j.is_object()) return "";
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return "";
  if (it->is_string()) return it->get<std::string>();
  return it->dump();
}

std::string Join(const json& list, const std::string& sep = ",") {
  std::string out;
  if (!list.is_array()) return out;
  for (const auto& e : list) {
    if (!out.empty()) out += sep;
    out += e.is_string() ? e.get<std::string>() : e.dump();
  }
  return out;
}

std::vector<std::string> IdList(const json& j, const char* key) {
  std::vector<std::string> ids;
  if (j.is_object() && j.contains(key) && j[key].is_array()) {
    for (const auto& e : j[key]) {
      if (e.is_string()) ids.push_back(e.get<std::string>());
    }
  }
  return ids;
}

uint64_t U64(const json& j, const char* key) {
  if (!j.is_object()) return 0;
  auto it = j.find(key);
  if (it == j.end() || !it->is_number()) return 0;
  return it->is_number_unsigned() ? it->get<uint64_t>()
                                  : static_cast<uint64_t>(std::max<int64_t>(0, it->get<int64_t>()));
}

std::string Bool(const json& j, const char* key) {
  return j.is_object() && j.value(key, false) ? "yes" : "no";
}

// ---------------------------------------------------------------------------
// cluster

Status Cli::ClusterCmd() {
  if (verb_ == "list") {
    CAIRN_RETURN_IF_ERROR(Args(0, 0));
    CAIRN_RETURN_IF_ERROR(AllowFlags({}));
    CAIRN_RETURN_IF_ERROR(NeedApi());
    CAIRN_ASSIGN_OR_RETURN(json list, api_->Get("/clusters"));
    if (json_) {
      Print(list);
      return Status::Ok();
    }
    Table t({"ID", "NODES", "VOLUMES", "FILE", "BLOCK"});
    for (const auto& id : IdList(list, "clusters")) {
      CAIRN_ASSIGN_OR_RETURN(json c, api_->Get("/clusters/" + id));
      t.AddRow({id, std::to_string(IdList(c, "nodes").size()),
                std::to_string(IdList(c, "volumes").size()), Bool(c, "file"), Bool(c, "block")});
    }
    out_ << t.Render();
    return Status::Ok();
  }
  if (verb_ == "info") {
    CAIRN_RETURN_IF_ERROR(Args(1, 1));
    CAIRN_RETURN_IF_ERROR(AllowFlags({}));
    CAIRN_RETURN_IF_ERROR(NeedApi());
    CAIRN_ASSIGN_OR_RETURN(json c, api_->Get("/clusters/" + args_[2]));
    if (json_) {
      Print(c);
      return Status::Ok();
    }
    KeyValues kv;
    kv.Add("Cluster", Str(c, "id"));
    kv.Add("File", Bool(c, "file"));
    kv.Add("Block", Bool(c, "block"));
    kv.Add("Nodes", Join(c.value("nodes", json::array()), " "));
    kv.Add("Volumes", Join(c.value("volumes", json::array()), " "));
    out_ << kv.Render();
    return Status::Ok();
  }
  if (verb_ == "create") {
    CAIRN_RETURN_IF_ERROR(Args(0, 0));
    CAIRN_RETURN_IF_ERROR(AllowFlags({}));
    CAIRN_RETURN_IF_ERROR(NeedApi());
    CAIRN_ASSIGN_OR_RETURN(json c, api_->Post("/clusters", {{"file", true}, {"block", false}}));
    if (json_) {
      Print(c);
    } else {
      out_ << "cluster " << Str(c, "id") << " created\n";
    }
    return Status::Ok();
  }
  if (verb_ == "delete") {
    CAIRN_RETURN_IF_ERROR(Args(1, 1));
    CAIRN_RETURN_IF_ERROR(AllowFlags({}));
    CAIRN_RETURN_IF_ERROR(NeedApi());
    CAIRN_ASSIGN_OR_RETURN(json r, api_->Delete("/clusters/" + args_[2]));
    if (json_) {
      Print(r);
    } else {
      out_ << "cluster " << args_[2] << " deleted\n";
    }
    return Status::Ok();
  }
  return Usage("unknown command 'cluster " + verb_ + "'\n" + kUsage);
}

// ---------------------------------------------------------------------------
// node

std::string Cli::NodeName(const std::string& id) {
  if (id.empty()) return "";
  auto it = node_names_.find(id);
  if (it != node_names_.end()) return it->second;
  std::string name = id;
  if (auto n = api_->Get("/nodes/" + id); n.ok() && !Str(*n, "name").empty())
    name = Str(*n, "name");
  node_names_[id] = name;
  return name;
}

Status Cli::NodeCmd() {
  if (verb_ == "list") {
    CAIRN_RETURN_IF_ERROR(Args(0, 0));
    CAIRN_RETURN_IF_ERROR(AllowFlags({}));
    CAIRN_RETURN_IF_ERROR(NeedApi());
    CAIRN_ASSIGN_OR_RETURN(json list, api_->Get("/nodes"));
    if (json_) {
      Print(list);
      return Status::Ok();
    }
    Table t({"ID", "NAME", "ZONE", "MANAGE", "STORAGE", "STATE", "DEVICES", "CLUSTER"});
    for (const auto& id : IdList(list, "nodes")) {
      CAIRN_ASSIGN_OR_RETURN(json n, api_->Get("/nodes/" + id));
      json hn = n.value("hostnames", json::object());
      t.AddRow({id, Str(n, "name"), Str(n, "zone"), Join(hn.value("manage", json::array())),
                Join(hn.value("storage", json::array())), Str(n, "state"),
                std::to_string(n.value("devices", json::array()).size()), Str(n, "cluster")});
    }
    out_ << t.Render();
    return Status::Ok();
  }
  if (verb_ == "info") {
    CAIRN_RETURN_IF_ERROR(Args(1, 1));
    CAIRN_RETURN_IF_ERROR(AllowFlags({}));
    CAIRN_RETURN_IF_ERROR(NeedApi());
    CAIRN_ASSIGN_OR_RETURN(json n, api_->Get("/nodes/" + args_[2]));
    if (json_) {
      Print(n);
      return Status::Ok();
    }
    json hn = n.value("hostnames", json::object());
    KeyValues kv;
    kv.Add("Node", Str(n, "id"));
    kv.Add("Name", Str(n, "name"));
    kv.Add("State", Str(n, "state"));
    kv.Add("Cluster", Str(n, "cluster"));
    kv.Add("Zone", Str(n, "zone"));
    kv.Add("Manage", Join(hn.value("manage", json::array())));
    kv.Add("Storage", Join(hn.value("storage", json::array())));
    if (n.contains("brickd")) kv.Add("Brickd", Str(n, "brickd"));
    if (n.contains("tags") && n["tags"].is_object() && !n["tags"].empty()) {
      kv.Add("Tags", n["tags"].dump());
    }
    out_ << kv.Render();
    Table t({"DEVICE", "NAME", "STATE", "TOTAL", "USED", "FREE", "BRICKS"});
    for (const auto& d : n.value("devices", json::array())) {
      json s = d.value("storage", json::object());
      t.AddRow({Str(d, "id"), Str(d, "name"), Str(d, "state"), HumanKib(U64(s, "total")),
                HumanKib(U64(s, "used")), HumanKib(U64(s, "free")),
                std::to_string(d.value("bricks", json::array()).size())});
    }
    out_ << "Devices:\n" << t.Render();
    return Status::Ok();
  }
  if (verb_ == "add") {
    CAIRN_RETURN_IF_ERROR(Args(0, 0));
    CAIRN_RETURN_IF_ERROR(AllowFlags({"cluster", "manage", "storage", "zone"}));
    for (const char* f : {"cluster", "manage", "storage"}) {
      if (flags_.GetString(f).empty()) return Usage(std::string("node add needs --") + f);
    }
    int64_t zone = 1;
    if (flags_.IsSet("zone")) {
      CAIRN_ASSIGN_OR_RETURN(zone, PositiveInt("zone", false));
    }
    CAIRN_RETURN_IF_ERROR(NeedApi());
    json req = {{"cluster", flags_.GetString("cluster")},
                {"hostnames",
                 {{"manage", json::array({flags_.GetString("manage")})},
                  {"storage", json::array({flags_.GetString("storage")})}}},
                {"zone", zone}};
    CAIRN_ASSIGN_OR_RETURN(json n, api_->Post("/nodes", req));
    if (json_) {
      Print(n);
    } else {
      out_ << "node " << Str(n, "id") << " (" << Str(n, "name") << ") added to cluster "
           << flags_.GetString("cluster") << "\n";
    }
    return Status::Ok();
  }
  if (verb_ == "delete" || verb_ == "enable" || verb_ == "disable") {
    CAIRN_RETURN_IF_ERROR(Args(1, 1));
    CAIRN_RETURN_IF_ERROR(AllowFlags({}));
    CAIRN_RETURN_IF_ERROR(NeedApi());
    const std::string& id = args_[2];
    StatusOr<json> r = verb_ == "delete"
                           ? api_->Delete("/nodes/" + id)
                           : api_->Post("/nodes/" + id + "/state",
                                        {{"state", verb_ == "enable" ? "online" : "offline"}});
    CAIRN_RETURN_IF_ERROR(r.status());
    if (json_) {
      Print(*r);
    } else {
      out_ << "node " << id << " "
           << (verb_ == "delete"   ? "deleted"
               : verb_ == "enable" ? "enabled (online)"
                                   : "disabled (offline)")
           << "\n";
    }
    return Status::Ok();
  }
  return Usage("unknown command 'node " + verb_ + "'\n" + kUsage);
}

// ---------------------------------------------------------------------------
// device

Status Cli::DeviceCmd() {
  if (verb_ == "list") {
    CAIRN_RETURN_IF_ERROR(Args(0, 0));
    CAIRN_RETURN_IF_ERROR(AllowFlags({}));
    CAIRN_RETURN_IF_ERROR(NeedApi());
    CAIRN_ASSIGN_OR_RETURN(json list, api_->Get("/nodes"));
    json devices = json::array();
    Table t({"ID", "NODE", "NAME", "STATE", "TOTAL", "USED", "FREE", "BRICKS"});
    for (const auto& id : IdList(list, "nodes")) {
      CAIRN_ASSIGN_OR_RETURN(json n, api_->Get("/nodes/" + id));
      for (const auto& d : n.value("devices", json::array())) {
        json s = d.value("storage", json::object());
        devices.push_back(d);
        t.AddRow({Str(d, "id"), Str(n, "name").empty() ? id : Str(n, "name"), Str(d, "name"),
                  Str(d, "state"), HumanKib(U64(s, "total")), HumanKib(U64(s, "used")),
                  HumanKib(U64(s, "free")),
                  std::to_string(d.value("bricks", json::array()).size())});
      }
    }
    if (json_) {
      Print({{"devices", devices}});
    } else {
      out_ << t.Render();
    }
    return Status::Ok();
  }
  if (verb_ == "info") {
    CAIRN_RETURN_IF_ERROR(Args(1, 1));
    CAIRN_RETURN_IF_ERROR(AllowFlags({}));
    CAIRN_RETURN_IF_ERROR(NeedApi());
    CAIRN_ASSIGN_OR_RETURN(json d, api_->Get("/devices/" + args_[2]));
    if (json_) {
      Print(d);
      return Status::Ok();
    }
    json s = d.value("storage", json::object());
    KeyValues kv;
    kv.Add("Device", Str(d, "id"));
    kv.Add("Name", Str(d, "name"));
    kv.Add("Node", Str(d, "node") + " (" + NodeName(Str(d, "node")) + ")");
    kv.Add("State", Str(d, "state"));
    kv.Add("Total", HumanKib(U64(s, "total")));
    kv.Add("Used", HumanKib(U64(s, "used")));
    kv.Add("Free", HumanKib(U64(s, "free")));
    out_ << kv.Render();
    Table t({"BRICK", "VOLUME", "SIZE", "PATH"});
    for (const auto& b : d.value("bricks", json::array())) {
      t.AddRow({Str(b, "id"), Str(b, "volume"), HumanKib(U64(b, "size")), Str(b, "path")});
    }
    out_ << "Bricks:\n" << t.Render();
    return Status::Ok();
  }
  if (verb_ == "add") {
    CAIRN_RETURN_IF_ERROR(Args(0, 0));
    CAIRN_RETURN_IF_ERROR(AllowFlags({"node", "name", "capacity"}));
    for (const char* f : {"node", "name"}) {
      if (flags_.GetString(f).empty()) return Usage(std::string("device add needs --") + f);
    }
    CAIRN_ASSIGN_OR_RETURN(int64_t gib, PositiveInt("capacity", false));
    CAIRN_RETURN_IF_ERROR(NeedApi());
    const std::string node = flags_.GetString("node");
    const std::string name = flags_.GetString("name");
    json req = {{"node", node},
                {"name", name},
                {"destroydata", false},
                {"capacity_kib", gib * 1024 * 1024}};
    CAIRN_RETURN_IF_ERROR(api_->Post("/devices", req).status());
    // The route answers without the device: find its id on the node.
    std::string id;
    json added;
    if (auto n = api_->Get("/nodes/" + node); n.ok()) {
      for (const auto& d : n->value("devices", json::array())) {
        if (Str(d, "name") == name) {
          id = Str(d, "id");
          added = d;
        }
      }
    }
    if (json_) {
      Print(added);
    } else {
      out_ << "device " << name << " added to node " << node
           << (id.empty() ? "" : " (id " + id + ")") << "\n";
    }
    return Status::Ok();
  }
  if (verb_ == "delete" || verb_ == "resync") {
    CAIRN_RETURN_IF_ERROR(Args(1, 1));
    CAIRN_RETURN_IF_ERROR(AllowFlags({}));
    CAIRN_RETURN_IF_ERROR(NeedApi());
    const std::string& id = args_[2];
    StatusOr<json> r = verb_ == "delete" ? api_->Delete("/devices/" + id)
                                         : api_->Post("/devices/" + id + "/resync", json::object());
    CAIRN_RETURN_IF_ERROR(r.status());
    if (json_) {
      Print(*r);
    } else {
      out_ << "device " << id << (verb_ == "delete" ? " deleted" : " resynced") << "\n";
    }
    return Status::Ok();
  }
  return Usage("unknown command 'device " + verb_ + "'\n" + kUsage);
}

// ---------------------------------------------------------------------------
// volume

Status Cli::VolumeCmd() {
  if (verb_ == "list") {
    CAIRN_RETURN_IF_ERROR(Args(0, 0));
    CAIRN_RETURN_IF_ERROR(AllowFlags({}));
    CAIRN_RETURN_IF_ERROR(NeedApi());
    CAIRN_ASSIGN_OR_RETURN(json list, api_->Get("/volumes"));
    if (json_) {
      Print(list);
      return Status::Ok();
    }
    std::vector<json> volumes;
    for (const auto& id : IdList(list, "volumes")) {
      auto v = api_->Get("/volumes/" + id);
      if (v.ok()) {
        volumes.push_back(*v);
      } else if (!v.status().IsNotFound()) {  // deleted meanwhile: left out
        return v.status();
      }
    }
    out_ << RenderVolumeList(volumes);
    return Status::Ok();
  }
  if (verb_ == "info") {
    CAIRN_RETURN_IF_ERROR(Args(1, 1));
    CAIRN_RETURN_IF_ERROR(AllowFlags({}));
    CAIRN_RETURN_IF_ERROR(NeedApi());
    CAIRN_ASSIGN_OR_RETURN(json v, ResolveVolume(*api_, args_[2]));
    if (json_) {
      Print(v);
      return Status::Ok();
    }
    // Brick nodes by name where the provisioner knows them.
    if (v.contains("bricks") && v["bricks"].is_array()) {
      for (auto& b : v["bricks"]) {
        if (b.is_object() && b.contains("node")) b["node_name"] = NodeName(Str(b, "node"));
      }
    }
    out_ << RenderVolumeInfo(v);
    return Status::Ok();
  }
  if (verb_ == "create") {
    CAIRN_RETURN_IF_ERROR(Args(0, 0));
    CAIRN_RETURN_IF_ERROR(AllowFlags({"name", "size", "replica", "arbiter", "cluster"}));
    CAIRN_ASSIGN_OR_RETURN(int64_t size, PositiveInt("size", true));
    int64_t replica = 3;
    if (flags_.IsSet("replica")) {
      CAIRN_ASSIGN_OR_RETURN(replica, PositiveInt("replica", false));
    }
    if (flags_.GetBool("arbiter") && replica != 3) {
      return Usage("--arbiter needs --replica 3");
    }
    CAIRN_RETURN_IF_ERROR(NeedApi());
    json req = {{"size", size}, {"arbiter", flags_.GetBool("arbiter")}};
    if (!flags_.GetString("name").empty()) req["name"] = flags_.GetString("name");
    if (replica == 1) {
      req["durability"] = {{"type", "none"}};
    } else {
      req["durability"] = {{"type", "replicate"}, {"replicate", {{"replica", replica}}}};
    }
    if (!flags_.GetString("cluster").empty()) {
      req["clusters"] = json::array({flags_.GetString("cluster")});
    }
    CAIRN_ASSIGN_OR_RETURN(json v, api_->Post("/volumes", req));
    if (json_) {
      Print(v);
      return Status::Ok();
    }
    out_ << "volume " << Str(v, "name") << " created\n";
    KeyValues kv;
    kv.Add("Id", Str(v, "id"));
    kv.Add("Name", Str(v, "name"));
    kv.Add("Size", HumanGib(U64(v, "size")));
    kv.Add("Replica", ReplicaText(v));
    kv.Add("Mount source",
           v.value("mount", json::object()).value("cairn", json::object()).value("source", ""));
    out_ << kv.Render();
    return Status::Ok();
  }
  if (verb_ == "delete") {
    CAIRN_RETURN_IF_ERROR(Args(1, 1));
    CAIRN_RETURN_IF_ERROR(AllowFlags({}));
    CAIRN_RETURN_IF_ERROR(NeedApi());
    CAIRN_ASSIGN_OR_RETURN(json v, ResolveVolume(*api_, args_[2]));
    CAIRN_ASSIGN_OR_RETURN(json r, api_->Delete("/volumes/" + Str(v, "id")));
    if (json_) {
      Print(r);
    } else {
      out_ << "volume " << Str(v, "name") << " (" << Str(v, "id") << ") deleted\n";
    }
    return Status::Ok();
  }
  if (verb_ == "expand") {
    CAIRN_RETURN_IF_ERROR(Args(1, 1));
    CAIRN_RETURN_IF_ERROR(AllowFlags({"size"}));
    CAIRN_ASSIGN_OR_RETURN(int64_t size, PositiveInt("size", true));
    CAIRN_RETURN_IF_ERROR(NeedApi());
    CAIRN_ASSIGN_OR_RETURN(json v, ResolveVolume(*api_, args_[2]));
    CAIRN_ASSIGN_OR_RETURN(
        json r, api_->Post("/volumes/" + Str(v, "id") + "/expand", {{"expand_size", size}}));
    if (json_) {
      Print(r);
    } else {
      out_ << "volume " << Str(v, "name") << " expanded: " << HumanGib(U64(v, "size")) << " -> "
           << (r.is_object() ? HumanGib(U64(r, "size")) : "?") << "\n";
    }
    return Status::Ok();
  }
  if (verb_ == "mount") {
    CAIRN_RETURN_IF_ERROR(Args(2, 2));
    CAIRN_RETURN_IF_ERROR(AllowFlags({"options"}));
    CAIRN_RETURN_IF_ERROR(NeedApi());
    CAIRN_ASSIGN_OR_RETURN(json v, ResolveVolume(*api_, args_[2]));
    return VolumeMount(v, args_[3]);
  }
  if (verb_ == "unmount" || verb_ == "umount") {
    CAIRN_RETURN_IF_ERROR(Args(1, 1));
    CAIRN_RETURN_IF_ERROR(AllowFlags({}));
    return VolumeUnmount(args_[2]);
  }
  if (verb_ == "heal") {
    if (args_.size() < 3 || args_[2] != "info") {
      return Usage("unknown command 'volume heal" + (args_.size() > 2 ? " " + args_[2] : "") +
                   "' (volume heal info NAME)");
    }
    if (args_.size() != 4) return Usage("usage: cairnctl volume heal info NAME|ID");
    CAIRN_RETURN_IF_ERROR(AllowFlags({}));
    CAIRN_RETURN_IF_ERROR(NeedApi());
    CAIRN_ASSIGN_OR_RETURN(json v, ResolveVolume(*api_, args_[3]));
    CAIRN_ASSIGN_OR_RETURN(json h, api_->Get("/volumes/" + Str(v, "id") + "/heal"));
    if (json_ || !h.is_object()) {
      Print(h);
      return Status::Ok();
    }
    out_ << RenderHealInfo(h, [this](const std::string& id) { return NodeName(id); });
    return Status::Ok();
  }
  return Usage("unknown command 'volume " + verb_ + "'\n" + kUsage);
}

// Runs a program with our stdio; its exit code (128+N for a signal).
StatusOr<int> RunInherit(const std::vector<std::string>& args) {
  std::vector<std::string> store = args;
  std::vector<char*> argv;
  for (auto& a : store) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  int err = ::posix_spawnp(&pid, argv[0], nullptr, nullptr, argv.data(), environ);
  if (err != 0) return Status::Internal("cannot run " + args[0] + ": " + std::strerror(err));
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// The mount point as the kernel will list it (symlinks resolved), when it exists.
std::string MountPath(const std::string& dir_arg) {
  std::error_code ec;
  auto canonical = std::filesystem::canonical(AbsolutePath(dir_arg), ec);
  return ec ? AbsolutePath(dir_arg) : canonical.string();
}

Status Cli::VolumeMount(const json& v, const std::string& dir_arg) {
  const std::string source =
      v.value("mount", json::object()).value("cairn", json::object()).value("source", "");
  if (source.empty()) {
    return Status::Internal(
        "volume " + Str(v, "name") +
        " has no mount.cairn.source in its info (is it ready? state: " + Str(v, "state") + ")");
  }
  if (settings_.data_token_file.empty()) {
    return Usage(
        "no data token to mount with: pass --data-token-file F (or CAIRN_DATA_TOKEN_FILE, or "
        "\"data_token_file\" in the context file " +
        settings_.config_path + ")");
  }
  if (::access(settings_.data_token_file.c_str(), R_OK) != 0) {
    return Status::InvalidArgument("data token file " + settings_.data_token_file + ": " +
                                   std::strerror(errno));
  }
  const std::string dir = MountPath(dir_arg);
  // Only a mount of the local cluster's provisioner is recorded there.
  std::string local_dir;
  if (!settings_.local_dir.empty() && LocalServerUrl(settings_.local_dir) == settings_.server) {
    local_dir = settings_.local_dir;
  }
  std::string options = "token_file=" + settings_.data_token_file;
  const std::string extra = pre_.mount_options.value_or("");
  if (!local_dir.empty() && extra.find("log_file=") == std::string::npos) {
    options += ",log_file=" + local_dir + "/logs/mount-" + Str(v, "name") + ".log";
  }
  if (!extra.empty()) options += "," + extra;
  CAIRN_ASSIGN_OR_RETURN(std::string binary, FindBinary("cairn-mount", "fuse"));
  CAIRN_ASSIGN_OR_RETURN(int rc, RunInherit({binary, "-o", options, source, dir}));
  if (rc != 0) {
    return Status::Internal("cairn-mount of " + Str(v, "name") + " on " + dir +
                            " failed (exit code " + std::to_string(rc) + ")");
  }
  if (!local_dir.empty()) {
    if (Status s = RecordLocalMount(local_dir, dir, Str(v, "name")); !s.ok()) {
      err_ << "cairnctl: warning: mounted, but could not record it for `local down`: "
           << s.message() << "\n";
    }
  }
  if (json_) {
    Print({{"volume", Str(v, "name")},
           {"id", Str(v, "id")},
           {"source", source},
           {"mountpoint", dir}});
  } else {
    out_ << "volume " << Str(v, "name") << " mounted on " << dir << " (" << source << ")\n";
  }
  return Status::Ok();
}

Status Cli::VolumeUnmount(const std::string& dir_arg) {
  const std::string dir = MountPath(dir_arg);
  CAIRN_ASSIGN_OR_RETURN(int rc, RunInherit({"fusermount3", "-u", dir}));
  if (rc != 0) {
    return Status::Internal("fusermount3 -u " + dir + " failed (exit code " + std::to_string(rc) +
                            ")");
  }
  // Forget it in the local cluster (if the context has one).
  SettingsFlags sf;
  sf.config = pre_.config;
  if (auto s = ResolveSettings(sf, env_.getenv_fn); s.ok() && !s->local_dir.empty()) {
    (void)ForgetLocalMount(s->local_dir, dir);
  }
  if (!json_) out_ << "unmounted " << dir << "\n";
  return Status::Ok();
}

// ---------------------------------------------------------------------------
// topology

void PrintTopology(std::ostream& out, const json& topo) {
  for (const auto& c : topo.value("clusters", json::array())) {
    out << "Cluster " << Str(c, "id") << " (file: " << Bool(c, "file")
        << ", block: " << Bool(c, "block") << ")\n";
    const json volumes = c.value("volumes", json::array());
    out << "  Volumes: " << volumes.size() << "\n";
    for (const auto& v : volumes) {
      if (!v.is_object()) continue;
      out << "    " << Str(v, "name") << "  " << Str(v, "id") << "  " << HumanGib(U64(v, "size"))
          << "  replica " << ReplicaText(v) << "  " << Str(v, "state") << "\n";
    }
    const json nodes = c.value("nodes", json::array());
    out << "  Nodes: " << nodes.size() << "\n";
    for (const auto& n : nodes) {
      if (!n.is_object()) continue;
      json hn = n.value("hostnames", json::object());
      out << "    Node " << Str(n, "id") << " (" << Str(n, "name") << ")  zone " << Str(n, "zone")
          << "  manage " << Join(hn.value("manage", json::array())) << "  storage "
          << Join(hn.value("storage", json::array())) << "  " << Str(n, "state") << "\n";
      for (const auto& d : n.value("devices", json::array())) {
        json s = d.value("storage", json::object());
        out << "      Device " << Str(d, "id") << "  " << Str(d, "name") << "  " << Str(d, "state")
            << "  total " << HumanKib(U64(s, "total")) << ", used " << HumanKib(U64(s, "used"))
            << ", free " << HumanKib(U64(s, "free")) << "\n";
        for (const auto& b : d.value("bricks", json::array())) {
          out << "        Brick " << Str(b, "id") << "  " << HumanKib(U64(b, "size")) << "  "
              << Str(b, "path") << "\n";
        }
      }
    }
  }
}

Status Cli::TopologyCmd() {
  if (verb_ == "load") {
    CAIRN_RETURN_IF_ERROR(Args(0, 0));
    CAIRN_RETURN_IF_ERROR(AllowFlags({"json"}));
    if (flags_.GetString("json").empty()) return Usage("topology load needs --json FILE");
    const std::string path = flags_.GetString("json");
    auto text = ReadFile(path);
    if (!text.ok()) return Usage("cannot read " + path + ": " + text.status().message());
    auto topo = ParseTopology(*text);
    if (!topo.ok()) return Usage(path + ": " + topo.status().message());
    CAIRN_RETURN_IF_ERROR(NeedApi());
    std::vector<std::string> report;
    Status s = LoadTopology(*api_, *topo, &report);
    if (json_) {
      Print({{"report", report}, {"ok", s.ok()}});
    } else {
      for (const auto& l : report) out_ << l << "\n";
    }
    return s;
  }
  if (verb_ == "info") {
    CAIRN_RETURN_IF_ERROR(Args(0, 0));
    CAIRN_RETURN_IF_ERROR(AllowFlags({}));
    CAIRN_RETURN_IF_ERROR(NeedApi());
    CAIRN_ASSIGN_OR_RETURN(json t, api_->Get("/topology"));
    if (json_) {
      Print(t);
    } else {
      PrintTopology(out_, t);
    }
    return Status::Ok();
  }
  return Usage("unknown command 'topology " + verb_ + "'\n" + kUsage);
}

// ---------------------------------------------------------------------------
// local

std::string Cli::LocalDir(const std::optional<std::string>& flag) {
  if (flag.has_value()) return AbsolutePath(*flag);
  // The context's local cluster, else the default.
  const std::string path = ContextPath(pre_.config, env_.getenv_fn);
  if (auto text = ReadFile(path); text.ok()) {
    if (auto c = ParseContext(*text, path); c.ok() && !c->local_dir.empty()) {
      return AbsolutePath(c->local_dir);
    }
  }
  const char* home = env_.getenv_fn ? env_.getenv_fn("HOME") : nullptr;
  return AbsolutePath(std::string(home != nullptr ? home : "") + "/.cairn/local");
}

Status Cli::LocalCmd() {
  std::optional<std::string> dir_flag;
  if (flags_.IsSet("dir")) {
    if (flags_.GetString("dir").empty()) return Usage("--dir needs a directory");
    dir_flag = flags_.GetString("dir");
  }
  const std::string context_path = ContextPath(pre_.config, env_.getenv_fn);
  if (verb_ == "up") {
    CAIRN_RETURN_IF_ERROR(Args(0, 0));
    CAIRN_RETURN_IF_ERROR(AllowFlags({"nodes", "dir", "device-size", "port", "storaged-port"}));
    LocalUpOptions o;
    o.dir = LocalDir(dir_flag);
    o.context_path = context_path;
    if (flags_.IsSet("nodes")) {
      CAIRN_ASSIGN_OR_RETURN(int64_t n, PositiveInt("nodes", false));
      o.nodes = static_cast<int>(n);
    }
    if (flags_.IsSet("device-size")) {
      CAIRN_ASSIGN_OR_RETURN(o.device_size_gib, PositiveInt("device-size", false));
    }
    for (auto [flag, field] : {std::pair{"port", &o.port}, {"storaged-port", &o.storaged_port}}) {
      if (!flags_.IsSet(flag)) continue;
      int64_t p = flags_.GetInt(flag);
      if (p < 0 || p > 65535) return Usage(std::string("--") + flag + " must be 0-65535");
      *field = static_cast<int>(p);
    }
    Status s = LocalUp(o, out_);
    if (s.IsInvalidArgument()) usage_error_ = true;
    return s;
  }
  if (verb_ == "down") {
    CAIRN_RETURN_IF_ERROR(Args(0, 0));
    CAIRN_RETURN_IF_ERROR(AllowFlags({"dir", "purge"}));
    LocalDownOptions o;
    o.dir = LocalDir(dir_flag);
    o.purge = flags_.GetBool("purge");
    o.context_path = context_path;
    return LocalDown(o, out_);
  }
  return Usage("unknown command 'local " + verb_ + "'\n" + kUsage);
}

}  // namespace

// ---------------------------------------------------------------------------

bool LooksLikeId(const std::string& s) {
  return s.size() == 32 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

StatusOr<json> ResolveVolume(Api& api, const std::string& name_or_id) {
  if (name_or_id.empty()) return Status::InvalidArgument("empty volume name");
  if (LooksLikeId(name_or_id)) {
    auto v = api.Get("/volumes/" + name_or_id);
    if (v.ok()) return v;
    if (!v.status().IsNotFound()) return v.status();
  }
  // Names are [A-Za-z0-9_-]: nothing to escape in the query.
  for (char c : name_or_id) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-') {
      return Status::NotFound("no volume named " + name_or_id +
                              " (names are letters, digits, '_' and '-')");
    }
  }
  CAIRN_ASSIGN_OR_RETURN(json list, api.Get("/volumes?name=" + name_or_id));
  std::vector<json> found;
  for (const auto& id : IdList(list, "volumes")) {
    auto v = api.Get("/volumes/" + id);
    if (!v.ok()) {
      if (v.status().IsNotFound()) continue;  // deleted meanwhile
      return v.status();
    }
    if (Str(*v, "name") == name_or_id) found.push_back(*v);
  }
  if (found.empty()) {
    return Status::NotFound("no volume named " + name_or_id +
                            (LooksLikeId(name_or_id) ? " or with that id" : ""));
  }
  if (found.size() > 1) {
    std::string ids;
    for (const auto& v : found) ids += " " + Str(v, "id");
    return Status::InvalidArgument("several volumes are named " + name_or_id +
                                   "; give an id:" + ids);
  }
  return found.front();
}

std::string ReplicaText(const json& v) {
  json d = v.value("durability", json::object());
  std::string type = Str(d, "type");
  std::string r;
  if (type == "none") {
    r = "1";
  } else if (type == "replicate" || type.empty()) {
    json rep = d.value("replicate", json::object());
    r = rep.contains("replica") ? Str(rep, "replica") : "3";
  } else {
    r = type;
  }
  if (v.value("arbiter", false)) r += " (arbiter)";
  return r;
}

std::string RenderVolumeList(const std::vector<json>& volumes) {
  Table t({"ID", "NAME", "SIZE", "REPLICA", "STATE", "CLUSTER"});
  for (const auto& v : volumes) {
    t.AddRow({Str(v, "id"), Str(v, "name"), HumanGib(U64(v, "size")), ReplicaText(v),
              Str(v, "state"), Str(v, "cluster")});
  }
  return t.Render();
}

std::string RenderVolumeInfo(const json& v) {
  KeyValues kv;
  kv.Add("Id", Str(v, "id"));
  kv.Add("Name", Str(v, "name"));
  kv.Add("Size", HumanGib(U64(v, "size")));
  kv.Add("State", Str(v, "state"));
  kv.Add("Replica", ReplicaText(v));
  kv.Add("Cluster", Str(v, "cluster"));
  if (v.contains("generation")) kv.Add("Generation", Str(v, "generation"));
  json cairn = v.value("mount", json::object()).value("cairn", json::object());
  kv.Add("Mount source", Str(cairn, "source"));
  std::string out = kv.Render();
  Table t({"BRICK", "NODE", "SUBVOLUME", "SIZE", "ARBITER", "PATH"});
  for (const auto& b : v.value("bricks", json::array())) {
    std::string node = Str(b, "node_name").empty() ? Str(b, "node") : Str(b, "node_name");
    t.AddRow({Str(b, "id"), node, Str(b, "subvolume"), HumanKib(U64(b, "size")), Bool(b, "arbiter"),
              Str(b, "path")});
  }
  return out + "Bricks:\n" + t.Render();
}

std::string RenderHealInfo(const json& h,
                           const std::function<std::string(const std::string&)>& node_name) {
  const json split = h.value("split_brain", json::array());
  std::string out = "volume " + Str(h, "volume") + " (" + Str(h, "id") + "): " +
                    (h.contains("pending") && h["pending"].is_number() ? Str(h, "pending") : "?") +
                    " pending, " + std::to_string(split.size()) + " in split-brain, " +
                    std::to_string(U64(h, "healed_objects")) + " objects healed (" +
                    HumanKib(U64(h, "healed_bytes") / 1024) + ")\n";
  Table t({"BRICK", "NODE", "ADDRESS", "CONNECTED", "PENDING", "SPLIT-BRAIN"});
  for (const auto& b : h.value("bricks", json::array())) {
    const std::string id = Str(b, "brick");
    size_t in_split = 0;
    for (const auto& sb : split) {
      const json bricks = sb.value("bricks", json::array());
      if (std::find(bricks.begin(), bricks.end(), json(id)) != bricks.end()) ++in_split;
    }
    const std::string pending =
        b.contains("pending") && b["pending"].is_number() ? Str(b, "pending") : "?";
    t.AddRow({id, node_name ? node_name(Str(b, "node")) : Str(b, "node"), Str(b, "address"),
              Bool(b, "connected"), pending, std::to_string(in_split)});
  }
  out += t.Render();
  for (const auto& n : h.value("nodes", json::array())) {
    if (!n.value("reachable", true)) {
      out += "node " + Str(n, "node") + " unreachable: " + Str(n, "error") + "\n";
    }
  }
  for (const auto& sb : split) {
    out += "split-brain " + Str(sb, "kind") + " " + Str(sb, "id") + " on " +
           Join(sb.value("bricks", json::array()), ",") +
           (Str(sb, "detail").empty() ? "" : ": " + Str(sb, "detail")) + "\n";
  }
  return out;
}

StatusOr<PreParsed> PreParse(const std::vector<std::string>& argv) {
  PreParsed p;
  if (!argv.empty()) p.rest.push_back(argv[0]);
  std::vector<std::string> positional;
  auto take_o = [&](const std::string& value) -> Status {
    const bool mount =
        positional.size() >= 2 && positional[0] == "volume" && positional[1] == "mount";
    if (mount && value != "json" && value != "table") {
      if (p.mount_options.has_value()) {
        *p.mount_options += "," + value;
      } else {
        p.mount_options = value;
      }
    } else {
      p.output = value;
    }
    return Status::Ok();
  };
  for (size_t i = 1; i < argv.size(); ++i) {
    const std::string& a = argv[i];
    if (a == "--") {
      for (; i < argv.size(); ++i) p.rest.push_back(argv[i]);
      break;
    }
    if (a == "-o" || a == "--output" || a == "--options") {
      if (i + 1 >= argv.size()) return Status::InvalidArgument(a + " needs a value");
      const std::string value = argv[++i];
      if (a == "--options") {
        p.mount_options = p.mount_options.has_value() ? *p.mount_options + "," + value : value;
      } else {
        CAIRN_RETURN_IF_ERROR(take_o(value));
      }
      continue;
    }
    if (a.rfind("-o", 0) == 0 && a.size() > 2 && a[2] != '-') {
      CAIRN_RETURN_IF_ERROR(take_o(a[2] == '=' ? a.substr(3) : a.substr(2)));
      continue;
    }
    if (a.rfind("--output=", 0) == 0) {
      p.output = a.substr(9);
      continue;
    }
    if (a.rfind("--options=", 0) == 0) {
      const std::string value = a.substr(10);
      p.mount_options = p.mount_options.has_value() ? *p.mount_options + "," + value : value;
      continue;
    }
    if (a == "--config") {
      if (i + 1 >= argv.size()) return Status::InvalidArgument("--config needs a file");
      p.config = argv[++i];
      continue;
    }
    if (a.rfind("--config=", 0) == 0) {
      p.config = a.substr(9);
      continue;
    }
    if (a == "-h") {
      p.rest.push_back("--help");
      continue;
    }
    if (a.size() > 2 && a.compare(0, 2, "--") == 0) {
      p.rest.push_back(a);
      const std::string name = a.substr(2);
      if (name.find('=') == std::string::npos && ValueFlags().count(name) != 0 &&
          i + 1 < argv.size()) {
        p.rest.push_back(argv[++i]);
      }
      continue;
    }
    if (a.size() > 1 && a[0] == '-' && !(a[1] >= '0' && a[1] <= '9')) {
      return Status::InvalidArgument("unknown option " + a);
    }
    positional.push_back(a);
    p.rest.push_back(a);
  }
  return p;
}

int RunCli(const std::vector<std::string>& argv, std::ostream& out, std::ostream& err,
           const CliEnv& env) {
  auto pre = PreParse(argv);
  if (!pre.ok()) {
    err << "cairnctl: " << pre.status().message() << "\n";
    return kExitUsage;
  }
  Flags flags("cairnctl", std::string("The operator CLI of Cairn's provisioner.\n\n") + kUsage);
  flags.AddString("server", "", "provisioner URL (http[s]://host:port)");
  flags.AddString("user", "", "JWT issuer: admin (default) or user");
  flags.AddString("key", "", "JWT key (prefer --key-file)");
  flags.AddString("key-file", "", "file holding the JWT key");
  flags.AddString("data-token-file", "", "the cluster's data token file (volume mount)");
  flags.AddString("cluster", "", "node add, volume create: the cluster id");
  flags.AddString("manage", "", "node add: storaged address host[:port]");
  flags.AddString("storage", "", "node add: data address host");
  flags.AddInt("zone", 1, "node add: failure zone");
  flags.AddString("node", "", "device add: the node id");
  flags.AddString("name", "", "device add: directory on the node; volume create: volume name");
  flags.AddInt("capacity", 0, "device add: capacity in GiB (0: the file system's size)");
  flags.AddInt("size", 0, "volume create: size in GiB; volume expand: GiB to add");
  flags.AddInt("replica", 3, "volume create: copies (1-16)");
  flags.AddBool("arbiter", false, "volume create: replica 3 with an arbiter brick");
  flags.AddString("json", "", "topology load: Heketi topology.json file");
  flags.AddInt("nodes", 3, "local up: storaged nodes");
  flags.AddString("dir", "", "local up/down: the cluster's directory (default ~/.cairn/local)");
  flags.AddInt("device-size", 0, "local up: GiB per node (default min(100, free/nodes))");
  flags.AddInt("port", 8080, "local up: provisioner port (0: any)");
  flags.AddInt("storaged-port", 24007, "local up: storaged port on 127.0.0.N (0: any)");
  flags.AddBool("purge", false, "local down: remove the directory too");
  std::vector<const char*> cargv;
  for (const auto& a : pre->rest) cargv.push_back(a.c_str());
  if (Status s = flags.Parse(static_cast<int>(cargv.size()), cargv.data()); !s.ok()) {
    err << "cairnctl: " << s.message() << "\n";
    return kExitUsage;
  }
  if (flags.help_requested()) {
    out << flags.Usage();
    out << "  -o json|table\n      output format (default: table); after `volume mount`, "
           "cairn-mount's -o options\n  --config=FILE\n      the context file (default "
           "$CAIRN_CONFIG, else ~/.cairn/config)\n";
    return kExitOk;
  }
  Cli cli(flags, *pre, out, err, env);
  return cli.Run();
}

}  // namespace cairn::ctl
