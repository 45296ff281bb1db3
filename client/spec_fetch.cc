// Volume specs from storaged: one-shot fetch with fail-over, and a watcher.
#include "client/spec_fetch.h"

#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include "common/status_grpc.h"
#include "proto/storaged.grpc.pb.h"

namespace cairn::client {
namespace {

namespace spb = ::cairn::storaged::v1;

// "host" -> "host:24007"; "host:port" and "[v6]:port" stay.
StatusOr<std::string> NormalizeServer(std::string_view s) {
  std::string server(s);
  if (server.empty()) return Status::InvalidArgument("empty server name");
  std::string host, port;
  if (server[0] == '[') {
    auto close = server.find(']');
    if (close == std::string::npos) return Status::InvalidArgument("bad server '" + server + "'");
    host = server.substr(0, close + 1);
    if (close + 1 < server.size()) {
      if (server[close + 1] != ':') return Status::InvalidArgument("bad server '" + server + "'");
      port = server.substr(close + 2);
      if (port.empty()) return Status::InvalidArgument("bad port in server '" + server + "'");
    }
  } else {
    auto colon = server.find(':');
    host = server.substr(0, colon);
    if (colon != std::string::npos) {
      port = server.substr(colon + 1);
      if (port.empty()) return Status::InvalidArgument("bad port in server '" + server + "'");
    }
  }
  if (host.empty() || host == "[]") return Status::InvalidArgument("bad server '" + server + "'");
  if (port.empty()) return host + ":" + std::to_string(kDefaultStoragedPort);
  if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
      std::stoi(port) < 1 || std::stoi(port) > 65535) {
    return Status::InvalidArgument("bad port in server '" + server + "'");
  }
  return host + ":" + port;
}

std::shared_ptr<grpc::Channel> NewChannel(const std::string& server, bool keepalive = false) {
  grpc::ChannelArguments args;
  if (keepalive) {
    // A watch stream is idle for long stretches: pings notice a storaged
    // that vanished without closing the connection (storaged permits them).
    args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 30000);
    args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
    args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  }
  // Our own connection: a short-lived fetch never waits on a shared
  // subchannel's reconnect backoff.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 200);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  return grpc::CreateCustomChannel(server, grpc::InsecureChannelCredentials(), args);
}

StatusOr<FetchedSpec> ToFetched(const spb::VolumeSpecReply& rep, const std::string& server) {
  auto spec = VolumeSpec::Parse(rep.spec_json());
  if (!spec.ok()) {
    return Status(StatusCode::kDataLoss, "storaged " + server + " sent a bad spec for " +
                                             rep.name() + ": " + spec.status().message());
  }
  FetchedSpec out;
  out.spec = std::move(*spec);
  out.json = rep.spec_json();
  out.generation = rep.generation();
  out.server = server;
  return out;
}

}  // namespace

StatusOr<ServerSource> ParseServerSource(std::string_view source) {
  const std::string text(source);
  auto sep = text.rfind(":/");
  if (sep == std::string::npos || sep == 0) {
    return Status::InvalidArgument("'" + text + "' is not host[:port][,host[:port]...]:/volume");
  }
  ServerSource out;
  out.volume = text.substr(sep + 2);
  if (out.volume.empty() || out.volume.find('/') != std::string::npos) {
    return Status::InvalidArgument("'" + text + "': the volume name after ':/' must be one name");
  }
  std::string list = text.substr(0, sep);
  size_t start = 0;
  while (start <= list.size()) {
    size_t comma = list.find(',', start);
    std::string one =
        list.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    auto server = NormalizeServer(one);
    if (!server.ok())
      return Status::InvalidArgument("'" + text + "': " + server.status().message());
    out.servers.push_back(*server);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

StatusOr<FetchedSpec> FetchSpec(const std::vector<std::string>& servers, const std::string& volume,
                                const std::string& token,
                                std::chrono::milliseconds per_server_timeout) {
  if (servers.empty()) return Status::InvalidArgument("no storaged server given");
  if (volume.empty()) return Status::InvalidArgument("no volume name given");
  std::string tried;
  size_t not_found = 0;
  StatusCode last = StatusCode::kUnavailable;
  size_t auth_failures = 0;
  for (const auto& given : servers) {
    auto server = NormalizeServer(given);
    if (!server.ok()) return server.status();
    auto stub = spb::Storaged::NewStub(NewChannel(*server));
    grpc::ClientContext ctx;
    if (!token.empty()) ctx.AddMetadata("authorization", "Bearer " + token);
    ctx.set_deadline(std::chrono::system_clock::now() + per_server_timeout);
    spb::GetVolumeSpecRequest req;
    req.set_name(volume);
    spb::VolumeSpecReply rep;
    Status s = FromGrpcStatus(stub->GetVolumeSpec(&ctx, req, &rep), ctx);
    if (s.ok()) {
      auto fetched = ToFetched(rep, *server);
      if (fetched.ok()) return fetched;
      s = fetched.status();
    }
    if (s.IsNotFound()) ++not_found;
    if (s.code() == StatusCode::kUnauthenticated || s.code() == StatusCode::kPermissionDenied) {
      ++auth_failures;
    }
    last = s.code();
    tried += (tried.empty() ? "" : "; ") + *server + ": " + std::string(StatusCodeName(s.code())) +
             ": " + s.message();
  }
  if (not_found == servers.size()) {
    return Status::NotFound("volume " + volume + " not found (asked " + tried + ")");
  }
  StatusCode code = auth_failures == servers.size() ? last : StatusCode::kUnavailable;
  return Status(code,
                "cannot fetch the spec of volume " + volume + " from any storaged (" + tried + ")");
}

SpecWatcher::SpecWatcher(std::vector<std::string> servers, std::string volume, std::string token,
                         uint64_t known_generation, Callback on_newer,
                         std::function<void(const Status&)> on_gone,
                         std::chrono::milliseconds retry_interval)
    : servers_(std::move(servers)),
      volume_(std::move(volume)),
      token_(std::move(token)),
      on_newer_(std::move(on_newer)),
      on_gone_(std::move(on_gone)),
      retry_interval_(retry_interval),
      generation_(known_generation) {
  thread_ = std::thread([this] { Loop(); });
}

SpecWatcher::~SpecWatcher() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
    if (active_ != nullptr) active_->TryCancel();
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::string SpecWatcher::server() const {
  std::lock_guard lock(mu_);
  return server_;
}

void SpecWatcher::Loop() {
  size_t next = 0;
  bool reported_gone = false;
  for (;;) {
    {
      std::lock_guard lock(mu_);
      if (stop_) return;
    }
    if (servers_.empty()) return;
    auto server = NormalizeServer(servers_[next % servers_.size()]);
    if (!server.ok()) return;
    auto stub = spb::Storaged::NewStub(NewChannel(*server, /*keepalive=*/true));
    grpc::ClientContext ctx;
    if (!token_.empty()) ctx.AddMetadata("authorization", "Bearer " + token_);
    {
      std::lock_guard lock(mu_);
      if (stop_) return;
      active_ = &ctx;
      server_ = *server;
    }
    spb::WatchVolumeSpecRequest req;
    req.set_name(volume_);
    req.set_known_generation(generation_.load());
    auto reader = stub->WatchVolumeSpec(&ctx, req);
    spb::VolumeSpecReply rep;
    bool got_any = false;
    while (reader->Read(&rep)) {
      got_any = true;
      reported_gone = false;
      if (rep.generation() <= generation_.load()) continue;
      auto fetched = ToFetched(rep, *server);
      if (!fetched.ok()) {
        spdlog::warn("event=spec-watch-bad-spec volume={} server={} error=\"{}\"", volume_, *server,
                     fetched.status().message());
        continue;
      }
      generation_ = rep.generation();
      on_newer_(*fetched);
    }
    Status s = FromGrpcStatus(reader->Finish(), ctx);
    {
      std::lock_guard lock(mu_);
      active_ = nullptr;
      server_.clear();
      if (stop_) return;
    }
    if (s.IsNotFound()) {
      if (!reported_gone && on_gone_) on_gone_(s);
      reported_gone = true;
    } else {
      spdlog::info("event=spec-watch-ended volume={} server={} code={} error=\"{}\"", volume_,
                   *server, StatusCodeName(s.code()), s.message());
    }
    // A server that served the stream for a while is tried again first;
    // one that failed at once makes way for the next.
    if (!got_any || !s.IsNotFound()) ++next;
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, retry_interval_, [this] { return stop_; });
    if (stop_) return;
  }
}

}  // namespace cairn::client
