// storagectl: an operator's CLI for one storaged (proto/storaged.proto).
//
//   storagectl --server=127.0.0.2:24007 --token-file=admin.token node
//   storagectl ... device add d1 /srv/d1 --capacity 100G
//   storagectl ... brick create d1 b1 --capacity 10G
//   storagectl ... -o json brick list
//   storagectl ... spec put vol1.json
#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>

#include <cstdio>
#include <ctime>
#include <string>
#include <vector>

#include "common/file_util.h"
#include "common/flags.h"
#include "common/status_grpc.h"
#include "proto/storaged.grpc.pb.h"

namespace cairn {
namespace {

namespace spb = ::cairn::storaged::v1;

constexpr char kUsage[] =
    "commands:\n"
    "  node                                      the node, its brickd and its state\n"
    "  device add ID PATH [--capacity BYTES]     add a directory as a device (0: fs size)\n"
    "  device list                               devices with capacity and usage\n"
    "  device remove ID                          remove a device without bricks\n"
    "  brick create DEVICE BRICK --capacity BYTES\n"
    "  brick list                                bricks with capacity and usage\n"
    "  brick delete BRICK [--force]              detach and remove (force: even if in a spec)\n"
    "  brick resize BRICK BYTES                  change a brick's capacity (live)\n"
    "  spec put FILE                             store a volume spec (JSON)\n"
    "  spec get NAME                             print a volume spec\n"
    "  spec list                                 stored volume specs\n"
    "  spec delete NAME                          delete a volume spec\n"
    "  heal info VOLUME                          pending heals and split-brain objects\n"
    "  heal start VOLUME [--full]                start a heal pass now\n"
    "  heal resolve VOLUME ID POLICY [BRICK]     POLICY: source-brick, latest-mtime, bigger-file\n"
    "BYTES may end in K, M, G or T (powers of 1024). -o json prints the replies as JSON.\n";

class Client {
 public:
  Client(const std::string& server, std::string token) : token_(std::move(token)) {
    stub_ = spb::Storaged::NewStub(grpc::CreateChannel(server, grpc::InsecureChannelCredentials()));
  }
  template <class Req, class Rep>
  Status Call(grpc::Status (spb::Storaged::Stub::*method)(grpc::ClientContext*, const Req&, Rep*),
              const Req& req, Rep* rep) {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + token_);
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    return FromGrpcStatus((stub_.get()->*method)(&ctx, req, rep), ctx);
  }

 private:
  std::string token_;
  std::unique_ptr<spb::Storaged::Stub> stub_;
};

StatusOr<uint64_t> ParseBytes(const std::string& text) {
  if (text.empty()) return Status::InvalidArgument("empty size");
  size_t end = 0;
  unsigned long long n = 0;
  try {
    n = std::stoull(text, &end);
  } catch (...) {
    return Status::InvalidArgument("bad size '" + text + "'");
  }
  std::string suffix = text.substr(end);
  if (suffix.size() == 2 && (suffix[1] == 'B' || suffix[1] == 'b' || suffix[1] == 'i')) {
    suffix.pop_back();
  }
  int shift = 0;
  if (suffix.empty()) {
    shift = 0;
  } else if (suffix == "K" || suffix == "k") {
    shift = 10;
  } else if (suffix == "M" || suffix == "m") {
    shift = 20;
  } else if (suffix == "G" || suffix == "g") {
    shift = 30;
  } else if (suffix == "T" || suffix == "t") {
    shift = 40;
  } else {
    return Status::InvalidArgument("bad size '" + text + "' (suffixes: K, M, G, T)");
  }
  if (shift > 0 && n > (~0ULL >> shift)) return Status::InvalidArgument("size too big: " + text);
  return static_cast<uint64_t>(n) << shift;
}

std::string Human(uint64_t n) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1024 && u < 5) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  if (u == 0) {
    std::snprintf(buf, sizeof(buf), "%llu B", static_cast<unsigned long long>(n));
  } else {
    std::snprintf(buf, sizeof(buf), "%.1f %s", v, units[u]);
  }
  return buf;
}

struct Output {
  bool json = false;
  // Prints `m` as JSON (proto field names, defaults included).
  void Json(const google::protobuf::Message& m) const {
    std::string out;
    google::protobuf::util::JsonPrintOptions o;
    o.add_whitespace = true;
    o.always_print_primitive_fields = true;
    o.preserve_proto_field_names = true;
    (void)google::protobuf::util::MessageToJsonString(m, &out, o);
    std::fputs(out.c_str(), stdout);
    if (out.empty() || out.back() != '\n') std::fputc('\n', stdout);
  }
};

Status Need(const std::vector<std::string>& args, size_t n) {
  if (args.size() < n) return Status::InvalidArgument(std::string("missing arguments\n") + kUsage);
  return Status::Ok();
}

Status Run(Client& c, const Flags& flags, const Output& out, const std::vector<std::string>& args) {
  CAIRN_RETURN_IF_ERROR(Need(args, 1));
  const std::string& noun = args[0];
  const std::string verb = args.size() > 1 ? args[1] : "";
  if (noun == "node") {
    spb::NodeInfo rep;
    CAIRN_RETURN_IF_ERROR(c.Call(&spb::Storaged::Stub::GetNode, spb::GetNodeRequest(), &rep));
    if (out.json) {
      out.Json(rep);
      return Status::Ok();
    }
    std::time_t started = static_cast<std::time_t>(rep.started_at_unix_ms() / 1000);
    char when[64];
    std::strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&started));
    std::printf("node:            %s\n", rep.name().c_str());
    std::printf("api:             %s\n", rep.api_address().c_str());
    std::printf("metrics:         %s\n", rep.metrics_address().c_str());
    std::printf("brickd:          %s (pid %d, %s%s, %llu restarts)\n", rep.brickd_address().c_str(),
                rep.brickd_pid(), rep.brickd_up() ? "up" : "DOWN",
                rep.brickd_adopted() ? ", adopted" : "",
                static_cast<unsigned long long>(rep.brickd_restarts()));
    std::printf("started:         %s\n", when);
    std::printf("version:         %s\n", rep.version().c_str());
    return Status::Ok();
  }
  if (noun == "device" && verb == "add") {
    CAIRN_RETURN_IF_ERROR(Need(args, 4));
    spb::AddDeviceRequest req;
    req.set_device_id(args[2]);
    req.set_path(args[3]);
    if (!flags.GetString("capacity").empty()) {
      CAIRN_ASSIGN_OR_RETURN(uint64_t cap, ParseBytes(flags.GetString("capacity")));
      req.set_capacity_bytes(cap);
    }
    spb::AddDeviceReply rep;
    CAIRN_RETURN_IF_ERROR(c.Call(&spb::Storaged::Stub::AddDevice, req, &rep));
    if (out.json) {
      out.Json(rep);
    } else {
      std::printf("device %s %s: %s, capacity %s\n", rep.device().device_id().c_str(),
                  rep.created() ? "added" : "already there", rep.device().path().c_str(),
                  Human(rep.device().capacity_bytes()).c_str());
    }
    return Status::Ok();
  }
  if (noun == "device" && verb == "list") {
    spb::ListDevicesReply rep;
    CAIRN_RETURN_IF_ERROR(
        c.Call(&spb::Storaged::Stub::ListDevices, spb::ListDevicesRequest(), &rep));
    if (out.json) {
      out.Json(rep);
      return Status::Ok();
    }
    std::printf("%-16s %-12s %-12s %-12s %-12s %-6s %s\n", "DEVICE", "CAPACITY", "ALLOCATED",
                "USED", "FS_FREE", "BRICKS", "PATH");
    for (const auto& d : rep.devices()) {
      std::printf("%-16s %-12s %-12s %-12s %-12s %-6u %s\n", d.device_id().c_str(),
                  Human(d.capacity_bytes()).c_str(), Human(d.allocated_bytes()).c_str(),
                  Human(d.used_bytes()).c_str(), Human(d.fs_free_bytes()).c_str(), d.bricks(),
                  d.path().c_str());
    }
    return Status::Ok();
  }
  if (noun == "device" && verb == "remove") {
    CAIRN_RETURN_IF_ERROR(Need(args, 3));
    spb::RemoveDeviceRequest req;
    req.set_device_id(args[2]);
    spb::Empty rep;
    CAIRN_RETURN_IF_ERROR(c.Call(&spb::Storaged::Stub::RemoveDevice, req, &rep));
    if (!out.json) std::printf("device %s removed\n", args[2].c_str());
    return Status::Ok();
  }
  if (noun == "brick" && verb == "create") {
    CAIRN_RETURN_IF_ERROR(Need(args, 4));
    if (flags.GetString("capacity").empty()) {
      return Status::InvalidArgument("brick create needs --capacity BYTES");
    }
    spb::CreateBrickRequest req;
    req.set_device_id(args[2]);
    req.set_brick_id(args[3]);
    CAIRN_ASSIGN_OR_RETURN(uint64_t cap, ParseBytes(flags.GetString("capacity")));
    req.set_capacity_bytes(cap);
    spb::CreateBrickReply rep;
    CAIRN_RETURN_IF_ERROR(c.Call(&spb::Storaged::Stub::CreateBrick, req, &rep));
    if (out.json) {
      out.Json(rep);
    } else {
      std::printf("brick %s %s: %s, capacity %s\n", rep.brick().brick_id().c_str(),
                  rep.created() ? "created" : "already there", rep.brick().path().c_str(),
                  Human(rep.brick().capacity_bytes()).c_str());
    }
    return Status::Ok();
  }
  if (noun == "brick" && verb == "list") {
    spb::ListBricksReply rep;
    CAIRN_RETURN_IF_ERROR(c.Call(&spb::Storaged::Stub::ListBricks, spb::ListBricksRequest(), &rep));
    if (out.json) {
      out.Json(rep);
      return Status::Ok();
    }
    std::printf("%-24s %-16s %-12s %-12s %-8s %s\n", "BRICK", "DEVICE", "CAPACITY", "USED",
                "ATTACHED", "PATH");
    for (const auto& b : rep.bricks()) {
      std::printf("%-24s %-16s %-12s %-12s %-8s %s\n", b.brick_id().c_str(), b.device_id().c_str(),
                  Human(b.capacity_bytes()).c_str(), Human(b.used_bytes()).c_str(),
                  b.attached() ? "yes" : "NO", b.path().c_str());
    }
    return Status::Ok();
  }
  if (noun == "brick" && verb == "delete") {
    CAIRN_RETURN_IF_ERROR(Need(args, 3));
    spb::DeleteBrickRequest req;
    req.set_brick_id(args[2]);
    req.set_force(flags.GetBool("force"));
    spb::Empty rep;
    CAIRN_RETURN_IF_ERROR(c.Call(&spb::Storaged::Stub::DeleteBrick, req, &rep));
    if (!out.json) std::printf("brick %s deleted\n", args[2].c_str());
    return Status::Ok();
  }
  if (noun == "brick" && verb == "resize") {
    CAIRN_RETURN_IF_ERROR(Need(args, 4));
    spb::ResizeBrickRequest req;
    req.set_brick_id(args[2]);
    CAIRN_ASSIGN_OR_RETURN(uint64_t cap, ParseBytes(args[3]));
    req.set_capacity_bytes(cap);
    spb::Brick rep;
    CAIRN_RETURN_IF_ERROR(c.Call(&spb::Storaged::Stub::ResizeBrick, req, &rep));
    if (out.json) {
      out.Json(rep);
    } else {
      std::printf("brick %s: capacity %s, used %s\n", rep.brick_id().c_str(),
                  Human(rep.capacity_bytes()).c_str(), Human(rep.used_bytes()).c_str());
    }
    return Status::Ok();
  }
  if (noun == "spec" && verb == "put") {
    CAIRN_RETURN_IF_ERROR(Need(args, 3));
    CAIRN_ASSIGN_OR_RETURN(std::string text, ReadFile(args[2]));
    spb::PutVolumeSpecRequest req;
    req.set_spec_json(text);
    spb::PutVolumeSpecReply rep;
    CAIRN_RETURN_IF_ERROR(c.Call(&spb::Storaged::Stub::PutVolumeSpec, req, &rep));
    if (out.json) {
      out.Json(rep);
    } else {
      std::printf("volume spec %s generation %llu %s\n", rep.name().c_str(),
                  static_cast<unsigned long long>(rep.generation()),
                  rep.changed() ? "stored" : "already stored");
    }
    return Status::Ok();
  }
  if (noun == "spec" && verb == "get") {
    CAIRN_RETURN_IF_ERROR(Need(args, 3));
    spb::GetVolumeSpecRequest req;
    req.set_name(args[2]);
    spb::VolumeSpecReply rep;
    CAIRN_RETURN_IF_ERROR(c.Call(&spb::Storaged::Stub::GetVolumeSpec, req, &rep));
    if (out.json) {
      out.Json(rep);
    } else {
      std::fputs(rep.spec_json().c_str(), stdout);
    }
    return Status::Ok();
  }
  if (noun == "spec" && verb == "list") {
    spb::ListVolumeSpecsReply rep;
    CAIRN_RETURN_IF_ERROR(
        c.Call(&spb::Storaged::Stub::ListVolumeSpecs, spb::ListVolumeSpecsRequest(), &rep));
    if (out.json) {
      out.Json(rep);
      return Status::Ok();
    }
    std::printf("%-32s %s\n", "VOLUME", "GENERATION");
    for (const auto& s : rep.specs()) {
      std::printf("%-32s %llu\n", s.name().c_str(),
                  static_cast<unsigned long long>(s.generation()));
    }
    return Status::Ok();
  }
  if (noun == "spec" && verb == "delete") {
    CAIRN_RETURN_IF_ERROR(Need(args, 3));
    spb::DeleteVolumeSpecRequest req;
    req.set_name(args[2]);
    spb::Empty rep;
    CAIRN_RETURN_IF_ERROR(c.Call(&spb::Storaged::Stub::DeleteVolumeSpec, req, &rep));
    if (!out.json) std::printf("volume spec %s deleted\n", args[2].c_str());
    return Status::Ok();
  }
  if (noun == "heal" && verb == "info") {
    CAIRN_RETURN_IF_ERROR(Need(args, 3));
    spb::HealInfoRequest req;
    req.set_volume(args[2]);
    spb::HealInfoReply rep;
    CAIRN_RETURN_IF_ERROR(c.Call(&spb::Storaged::Stub::HealInfo, req, &rep));
    if (out.json) {
      out.Json(rep);
      return Status::Ok();
    }
    std::printf("volume %s: heal %s, %llu objects healed (%s), %llu errors, %llu full crawls\n",
                rep.volume().c_str(), rep.active() ? "running" : "idle",
                static_cast<unsigned long long>(rep.healed_objects()),
                Human(rep.healed_bytes()).c_str(), static_cast<unsigned long long>(rep.errors()),
                static_cast<unsigned long long>(rep.full_crawls()));
    std::printf("%-24s %-22s %-9s %s\n", "BRICK", "NODE", "CONNECTED", "PENDING");
    for (const auto& b : rep.bricks()) {
      std::printf("%-24s %-22s %-9s %llu\n", b.brick_id().c_str(), b.node().c_str(),
                  b.connected() ? "yes" : "NO", static_cast<unsigned long long>(b.pending()));
    }
    for (const auto& s : rep.split_brain()) {
      std::printf("split-brain %s %s: %s\n", s.kind().c_str(), s.id().c_str(), s.detail().c_str());
    }
    return Status::Ok();
  }
  if (noun == "heal" && verb == "start") {
    CAIRN_RETURN_IF_ERROR(Need(args, 3));
    spb::StartHealRequest req;
    req.set_volume(args[2]);
    req.set_full(flags.GetBool("full"));
    spb::Empty rep;
    CAIRN_RETURN_IF_ERROR(c.Call(&spb::Storaged::Stub::StartHeal, req, &rep));
    if (!out.json) std::printf("heal of %s started\n", args[2].c_str());
    return Status::Ok();
  }
  if (noun == "heal" && verb == "resolve") {
    CAIRN_RETURN_IF_ERROR(Need(args, 5));
    spb::ResolveSplitBrainRequest req;
    req.set_volume(args[2]);
    req.set_id(args[3]);
    const std::string& p = args[4];
    if (p == "source-brick") {
      req.set_policy(spb::ResolveSplitBrainRequest::SOURCE_BRICK);
      CAIRN_RETURN_IF_ERROR(Need(args, 6));
      req.set_source_brick(args[5]);
    } else if (p == "latest-mtime") {
      req.set_policy(spb::ResolveSplitBrainRequest::LATEST_MTIME);
    } else if (p == "bigger-file") {
      req.set_policy(spb::ResolveSplitBrainRequest::BIGGER_FILE);
    } else {
      return Status::InvalidArgument("unknown policy '" + p + "'\n" + kUsage);
    }
    spb::Empty rep;
    CAIRN_RETURN_IF_ERROR(c.Call(&spb::Storaged::Stub::ResolveSplitBrain, req, &rep));
    if (!out.json) std::printf("%s resolved\n", args[3].c_str());
    return Status::Ok();
  }
  return Status::InvalidArgument("unknown command '" + noun + (verb.empty() ? "" : " " + verb) +
                                 "'\n" + kUsage);
}

}  // namespace
}  // namespace cairn

int main(int argc, char** argv) {
  // "-o json" / "-ojson" is taken out before the flag parser (which knows only --flags).
  cairn::Output out;
  std::vector<const char*> rest = {argv[0]};
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    std::string value;
    if (a == "-o" && i + 1 < argc) {
      value = argv[++i];
    } else if (a.rfind("-o", 0) == 0 && a.size() > 2 && a[2] != '-') {
      value = a.substr(2);
    } else {
      rest.push_back(argv[i]);
      continue;
    }
    if (value == "json") {
      out.json = true;
    } else if (value != "table") {
      std::fprintf(stderr, "storagectl: -o takes json or table, not '%s'\n", value.c_str());
      return 2;
    }
  }
  cairn::Flags flags("storagectl", std::string("Talks to one storaged.\n\n") + cairn::kUsage);
  flags.AddString("server", "127.0.0.1:24007", "storaged address host:port");
  flags.AddString("token-file", "", "file holding the bearer token (admin token to change things)");
  flags.AddString("capacity", "", "capacity for device add / brick create (bytes, K/M/G/T)");
  flags.AddBool("force", false, "brick delete: even if a volume spec uses the brick");
  flags.AddBool("full", false, "heal start: crawl the whole volume");
  if (auto s = flags.Parse(static_cast<int>(rest.size()), rest.data()); !s.ok()) {
    std::fprintf(stderr, "storagectl: %s\n", s.message().c_str());
    return 2;
  }
  if (flags.help_requested()) {
    std::fputs(flags.Usage().c_str(), stdout);
    std::fputs("  -o json|table  output format (default: table)\n", stdout);
    return 0;
  }
  if (flags.GetString("token-file").empty()) {
    std::fprintf(stderr, "storagectl: --token-file is required\n");
    return 2;
  }
  auto token = cairn::ReadSecretFile(flags.GetString("token-file"));
  if (!token.ok()) {
    std::fprintf(stderr, "storagectl: --token-file: %s\n", token.status().message().c_str());
    return 2;
  }
  std::string server = flags.GetString("server");
  if (server.find(':') == std::string::npos) server += ":24007";
  cairn::Client client(server, *token);
  cairn::Status s = cairn::Run(client, flags, out, flags.positional());
  if (!s.ok()) {
    std::fprintf(stderr, "storagectl: %s\n", s.ToString().c_str());
    return s.code() == cairn::StatusCode::kInvalidArgument ? 2 : 1;
  }
  return 0;
}
