// cairn-csc: a small CSI client (after the csc tool CSI driver authors use)
// to drive any CSI driver's socket by hand or from scripts: the calls a
// container orchestrator makes, one command each (docs/csi.md, "cairn-csc").
//
//   cairn-csc --endpoint unix:///var/lib/cairn/csi.sock info
//   eval "$(cairn-csc create pvc-1 --size 1 --mode rwx -o env)"   # CSI_VOLUME_ID, CSI_CONTEXT_*
//   cairn-csc stage "$CSI_VOLUME_ID" /var/lib/kubelet/.../globalmount --context source=...
//   cairn-csc publish "$CSI_VOLUME_ID" STAGING TARGET [--readonly]
//   cairn-csc stats "$CSI_VOLUME_ID" TARGET
//
// Replies are printed as JSON (protobuf's JSON mapping); a failed call prints
// "cairn-csc: CODE: message" and exits 1; a bad command line exits 2.
#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "proto/csi.grpc.pb.h"

namespace {

namespace csi = ::csi::v1;
constexpr int64_t kGiB = int64_t{1} << 30;

constexpr char kUsage[] =
    "usage: cairn-csc [--endpoint unix:///path/csi.sock] COMMAND ...\n"
    "  info                                   plugin info, capabilities, probe, node info\n"
    "  create NAME [--size GiB] [--mode M] [--param K=V]... [--secret K=V]... [-o json|env]\n"
    "  delete VOLUME_ID\n"
    "  expand VOLUME_ID --size GiB\n"
    "  validate VOLUME_ID [--mode M]\n"
    "  list [--max N] [--token T]\n"
    "  capacity [--param K=V]...\n"
    "  stage VOLUME_ID STAGING --context K=V... [--mode M] [--mount-flag F]... [--group GID]\n"
    "  unstage VOLUME_ID STAGING\n"
    "  publish VOLUME_ID STAGING TARGET [--readonly] [--mode M] [--context K=V]...\n"
    "  unpublish VOLUME_ID TARGET\n"
    "  stats VOLUME_ID PATH\n"
    "  node-expand VOLUME_ID PATH [--size GiB]\n"
    "M (access mode): rwo (single node writer, default for stage/publish), rwop, rox, rwx\n"
    "(default for create). --endpoint defaults to $CSI_ENDPOINT, else\n"
    "unix://$HOME/.cairn/local/csi.sock (the one `cairnctl local up` starts).\n";

int Usage(const std::string& why) {
  std::fprintf(stderr, "cairn-csc: %s\n%s", why.c_str(), kUsage);
  return 2;
}

std::string Json(const google::protobuf::Message& m) {
  std::string out;
  google::protobuf::util::JsonPrintOptions o;
  o.add_whitespace = true;
  o.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(m, &out, o);
  return out;
}

int Fail(const grpc::Status& s) {
  static const char* kNames[] = {"OK",
                                 "CANCELLED",
                                 "UNKNOWN",
                                 "INVALID_ARGUMENT",
                                 "DEADLINE_EXCEEDED",
                                 "NOT_FOUND",
                                 "ALREADY_EXISTS",
                                 "PERMISSION_DENIED",
                                 "RESOURCE_EXHAUSTED",
                                 "FAILED_PRECONDITION",
                                 "ABORTED",
                                 "OUT_OF_RANGE",
                                 "UNIMPLEMENTED",
                                 "INTERNAL",
                                 "UNAVAILABLE",
                                 "DATA_LOSS",
                                 "UNAUTHENTICATED"};
  const int c = s.error_code();
  std::fprintf(stderr, "cairn-csc: %s: %s\n", c >= 0 && c <= 16 ? kNames[c] : "?",
               s.error_message().c_str());
  return 1;
}

// The command line after the endpoint: positionals and --flags (repeatable).
struct Args {
  std::vector<std::string> pos;
  std::multimap<std::string, std::string> flags;
  std::string Get(const std::string& k, const std::string& def = "") const {
    auto it = flags.find(k);
    return it == flags.end() ? def : it->second;
  }
  bool Has(const std::string& k) const { return flags.count(k) != 0; }
  std::map<std::string, std::string> Pairs(const std::string& k, std::string* bad) const {
    std::map<std::string, std::string> out;
    auto [b, e] = flags.equal_range(k);
    for (auto it = b; it != e; ++it) {
      auto eq = it->second.find('=');
      if (eq == std::string::npos || eq == 0) {
        *bad = "--" + k + " " + it->second + ": expected KEY=VALUE";
        continue;
      }
      out[it->second.substr(0, eq)] = it->second.substr(eq + 1);
    }
    return out;
  }
  std::vector<std::string> All(const std::string& k) const {
    std::vector<std::string> out;
    auto [b, e] = flags.equal_range(k);
    for (auto it = b; it != e; ++it) out.push_back(it->second);
    return out;
  }
};

bool ParseMode(const std::string& m, csi::VolumeCapability::AccessMode::Mode* out) {
  using AM = csi::VolumeCapability::AccessMode;
  if (m == "rwo")
    *out = AM::SINGLE_NODE_WRITER;
  else if (m == "rwop")
    *out = AM::SINGLE_NODE_SINGLE_WRITER;
  else if (m == "rox")
    *out = AM::MULTI_NODE_READER_ONLY;
  else if (m == "rwx")
    *out = AM::MULTI_NODE_MULTI_WRITER;
  else
    return false;
  return true;
}

bool ParseGiB(const std::string& s, int64_t* bytes) {
  char* end = nullptr;
  const double g = std::strtod(s.c_str(), &end);
  if (s.empty() || *end != '\0' || !(g > 0) || g > 1e6) return false;
  *bytes = static_cast<int64_t>(g * static_cast<double>(kGiB));
  return true;
}

template <class Stub, class Req, class Rep>
grpc::Status Call(Stub* stub, grpc::Status (Stub::*m)(grpc::ClientContext*, const Req&, Rep*),
                  const Req& req, Rep* rep) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(5));
  return (stub->*m)(&ctx, req, rep);
}

std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

int Run(int argc, char** argv) {
  std::string endpoint;
  if (const char* e = std::getenv("CSI_ENDPOINT"); e != nullptr && *e != '\0') endpoint = e;
  if (endpoint.empty()) {
    const char* home = std::getenv("HOME");
    endpoint = std::string("unix://") + (home ? home : "/root") + "/.cairn/local/csi.sock";
  }
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (arg == "--readonly") {
      a.flags.emplace("readonly", "1");
      continue;
    }
    if (arg.rfind("--", 0) == 0 || arg == "-o") {
      std::string key = arg == "-o" ? "o" : arg.substr(2), value;
      if (auto eq = key.find('='); eq != std::string::npos) {
        value = key.substr(eq + 1);
        key = key.substr(0, eq);
      } else {
        if (i + 1 >= argc) return Usage(arg + " needs a value");
        value = argv[++i];
      }
      if (key == "endpoint") {
        endpoint = value;
      } else {
        a.flags.emplace(key, value);
      }
      continue;
    }
    a.pos.push_back(arg);
  }
  if (a.pos.empty()) return Usage("no command");
  std::string target = endpoint;
  if (target.rfind("unix://", 0) == 0) target = "unix:" + target.substr(7);
  auto channel = grpc::CreateChannel(target, grpc::InsecureChannelCredentials());
  auto identity = csi::Identity::NewStub(channel);
  auto controller = csi::Controller::NewStub(channel);
  auto node = csi::Node::NewStub(channel);

  const std::string cmd = a.pos[0];
  auto need = [&](size_t n, const char* what) -> bool {
    if (a.pos.size() != n + 1) {
      Usage(cmd + " takes " + what);
      return false;
    }
    return true;
  };
  std::string bad;
  csi::VolumeCapability cap;
  cap.mutable_mount();
  csi::VolumeCapability::AccessMode::Mode mode;
  if (!ParseMode(a.Get("mode", cmd == "create" || cmd == "validate" ? "rwx" : "rwo"), &mode)) {
    return Usage("--mode must be rwo, rwop, rox or rwx");
  }
  cap.mutable_access_mode()->set_mode(mode);
  for (const auto& f : a.All("mount-flag")) cap.mutable_mount()->add_mount_flags(f);
  if (a.Has("group")) cap.mutable_mount()->set_volume_mount_group(a.Get("group"));

  if (cmd == "info") {
    csi::GetPluginInfoResponse info;
    if (auto s = Call(identity.get(), &csi::Identity::Stub::GetPluginInfo,
                      csi::GetPluginInfoRequest(), &info);
        !s.ok()) {
      return Fail(s);
    }
    std::cout << Json(info);
    csi::GetPluginCapabilitiesResponse caps;
    if (Call(identity.get(), &csi::Identity::Stub::GetPluginCapabilities,
             csi::GetPluginCapabilitiesRequest(), &caps)
            .ok()) {
      std::cout << Json(caps);
    }
    csi::ProbeResponse probe;
    auto ps = Call(identity.get(), &csi::Identity::Stub::Probe, csi::ProbeRequest(), &probe);
    if (ps.ok()) {
      std::cout << Json(probe);
    } else {
      std::cout << "{\"probe_error\": \"" << ps.error_message() << "\"}\n";
    }
    csi::NodeGetInfoResponse ni;
    if (Call(node.get(), &csi::Node::Stub::NodeGetInfo, csi::NodeGetInfoRequest(), &ni).ok()) {
      std::cout << Json(ni);
    }
    return 0;
  }
  if (cmd == "create") {
    if (!need(1, "NAME")) return 2;
    csi::CreateVolumeRequest r;
    r.set_name(a.pos[1]);
    int64_t bytes = kGiB;
    if (a.Has("size") && !ParseGiB(a.Get("size"), &bytes)) return Usage("--size: GiB > 0");
    r.mutable_capacity_range()->set_required_bytes(bytes);
    *r.add_volume_capabilities() = cap;
    for (const auto& [k, v] : a.Pairs("param", &bad)) (*r.mutable_parameters())[k] = v;
    for (const auto& [k, v] : a.Pairs("secret", &bad)) (*r.mutable_secrets())[k] = v;
    if (!bad.empty()) return Usage(bad);
    csi::CreateVolumeResponse rep;
    if (auto s = Call(controller.get(), &csi::Controller::Stub::CreateVolume, r, &rep); !s.ok()) {
      return Fail(s);
    }
    if (a.Get("o", "json") == "env") {
      std::cout << "CSI_VOLUME_ID=" << ShellQuote(rep.volume().volume_id()) << "\n";
      std::cout << "CSI_CAPACITY_BYTES=" << rep.volume().capacity_bytes() << "\n";
      for (const auto& [k, v] : rep.volume().volume_context()) {
        std::string name;
        for (char c : k) name += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
        std::cout << "CSI_CONTEXT_" << name << "=" << ShellQuote(v) << "\n";
      }
    } else {
      std::cout << Json(rep);
    }
    return 0;
  }
  if (cmd == "delete") {
    if (!need(1, "VOLUME_ID")) return 2;
    csi::DeleteVolumeRequest r;
    r.set_volume_id(a.pos[1]);
    csi::DeleteVolumeResponse rep;
    if (auto s = Call(controller.get(), &csi::Controller::Stub::DeleteVolume, r, &rep); !s.ok()) {
      return Fail(s);
    }
    std::cout << "deleted " << a.pos[1] << "\n";
    return 0;
  }
  if (cmd == "expand") {
    if (!need(1, "VOLUME_ID")) return 2;
    int64_t bytes = 0;
    if (!ParseGiB(a.Get("size"), &bytes)) return Usage("expand needs --size GiB");
    csi::ControllerExpandVolumeRequest r;
    r.set_volume_id(a.pos[1]);
    r.mutable_capacity_range()->set_required_bytes(bytes);
    csi::ControllerExpandVolumeResponse rep;
    if (auto s = Call(controller.get(), &csi::Controller::Stub::ControllerExpandVolume, r, &rep);
        !s.ok()) {
      return Fail(s);
    }
    std::cout << Json(rep);
    return 0;
  }
  if (cmd == "validate") {
    if (!need(1, "VOLUME_ID")) return 2;
    csi::ValidateVolumeCapabilitiesRequest r;
    r.set_volume_id(a.pos[1]);
    *r.add_volume_capabilities() = cap;
    csi::ValidateVolumeCapabilitiesResponse rep;
    if (auto s =
            Call(controller.get(), &csi::Controller::Stub::ValidateVolumeCapabilities, r, &rep);
        !s.ok()) {
      return Fail(s);
    }
    std::cout << Json(rep);
    return 0;
  }
  if (cmd == "list") {
    csi::ListVolumesRequest r;
    r.set_max_entries(std::atoi(a.Get("max", "0").c_str()));
    r.set_starting_token(a.Get("token"));
    csi::ListVolumesResponse rep;
    if (auto s = Call(controller.get(), &csi::Controller::Stub::ListVolumes, r, &rep); !s.ok()) {
      return Fail(s);
    }
    std::cout << Json(rep);
    return 0;
  }
  if (cmd == "capacity") {
    csi::GetCapacityRequest r;
    for (const auto& [k, v] : a.Pairs("param", &bad)) (*r.mutable_parameters())[k] = v;
    if (!bad.empty()) return Usage(bad);
    csi::GetCapacityResponse rep;
    if (auto s = Call(controller.get(), &csi::Controller::Stub::GetCapacity, r, &rep); !s.ok()) {
      return Fail(s);
    }
    std::cout << Json(rep);
    return 0;
  }
  if (cmd == "stage") {
    if (!need(2, "VOLUME_ID STAGING")) return 2;
    csi::NodeStageVolumeRequest r;
    r.set_volume_id(a.pos[1]);
    r.set_staging_target_path(a.pos[2]);
    *r.mutable_volume_capability() = cap;
    for (const auto& [k, v] : a.Pairs("context", &bad)) (*r.mutable_volume_context())[k] = v;
    for (const auto& [k, v] : a.Pairs("secret", &bad)) (*r.mutable_secrets())[k] = v;
    if (!bad.empty()) return Usage(bad);
    csi::NodeStageVolumeResponse rep;
    if (auto s = Call(node.get(), &csi::Node::Stub::NodeStageVolume, r, &rep); !s.ok()) {
      return Fail(s);
    }
    std::cout << "staged " << a.pos[1] << " at " << a.pos[2] << "\n";
    return 0;
  }
  if (cmd == "unstage") {
    if (!need(2, "VOLUME_ID STAGING")) return 2;
    csi::NodeUnstageVolumeRequest r;
    r.set_volume_id(a.pos[1]);
    r.set_staging_target_path(a.pos[2]);
    csi::NodeUnstageVolumeResponse rep;
    if (auto s = Call(node.get(), &csi::Node::Stub::NodeUnstageVolume, r, &rep); !s.ok()) {
      return Fail(s);
    }
    std::cout << "unstaged " << a.pos[1] << " from " << a.pos[2] << "\n";
    return 0;
  }
  if (cmd == "publish") {
    if (!need(3, "VOLUME_ID STAGING TARGET")) return 2;
    csi::NodePublishVolumeRequest r;
    r.set_volume_id(a.pos[1]);
    r.set_staging_target_path(a.pos[2]);
    r.set_target_path(a.pos[3]);
    r.set_readonly(a.Has("readonly"));
    *r.mutable_volume_capability() = cap;
    for (const auto& [k, v] : a.Pairs("context", &bad)) (*r.mutable_volume_context())[k] = v;
    if (!bad.empty()) return Usage(bad);
    csi::NodePublishVolumeResponse rep;
    if (auto s = Call(node.get(), &csi::Node::Stub::NodePublishVolume, r, &rep); !s.ok()) {
      return Fail(s);
    }
    std::cout << "published " << a.pos[1] << " at " << a.pos[3]
              << (r.readonly() ? " (read-only)" : "") << "\n";
    return 0;
  }
  if (cmd == "unpublish") {
    if (!need(2, "VOLUME_ID TARGET")) return 2;
    csi::NodeUnpublishVolumeRequest r;
    r.set_volume_id(a.pos[1]);
    r.set_target_path(a.pos[2]);
    csi::NodeUnpublishVolumeResponse rep;
    if (auto s = Call(node.get(), &csi::Node::Stub::NodeUnpublishVolume, r, &rep); !s.ok()) {
      return Fail(s);
    }
    std::cout << "unpublished " << a.pos[1] << " from " << a.pos[2] << "\n";
    return 0;
  }
  if (cmd == "stats") {
    if (!need(2, "VOLUME_ID PATH")) return 2;
    csi::NodeGetVolumeStatsRequest r;
    r.set_volume_id(a.pos[1]);
    r.set_volume_path(a.pos[2]);
    csi::NodeGetVolumeStatsResponse rep;
    if (auto s = Call(node.get(), &csi::Node::Stub::NodeGetVolumeStats, r, &rep); !s.ok()) {
      return Fail(s);
    }
    std::cout << Json(rep);
    return 0;
  }
  if (cmd == "node-expand") {
    if (!need(2, "VOLUME_ID PATH")) return 2;
    csi::NodeExpandVolumeRequest r;
    r.set_volume_id(a.pos[1]);
    r.set_volume_path(a.pos[2]);
    int64_t bytes = 0;
    if (a.Has("size")) {
      if (!ParseGiB(a.Get("size"), &bytes)) return Usage("--size: GiB > 0");
      r.mutable_capacity_range()->set_required_bytes(bytes);
    }
    csi::NodeExpandVolumeResponse rep;
    if (auto s = Call(node.get(), &csi::Node::Stub::NodeExpandVolume, r, &rep); !s.ok()) {
      return Fail(s);
    }
    std::cout << Json(rep);
    return 0;
  }
  return Usage("unknown command " + cmd);
}

}  // namespace

int main(int argc, char** argv) { return Run(argc, argv); }
