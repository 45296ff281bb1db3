// Fetching a volume's spec from storaged (proto/storaged.proto), for
// `cairn-mount host[:port][,host[:port]...]:/volume`.
//
//   auto source = ParseServerSource("127.0.0.2,127.0.0.3:24010:/vol1");
//   auto fetched = FetchSpec(source->servers, source->volume, token, std::chrono::seconds(5));
//   auto volume = Volume::Open(fetched->spec, options);
//   SpecWatcher watcher(source->servers, source->volume, token, fetched->generation,
//                       [](const FetchedSpec& newer) { ... });   // a thread until destroyed
//
// Servers are tried in order; the first that answers wins. The token is the
// cluster's data token (the one the bricks take).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "client/spec.h"
#include "common/status.h"

namespace grpc {
class ClientContext;
}

namespace cairn::client {

// storaged's default API port.
inline constexpr int kDefaultStoragedPort = 24007;

struct ServerSource {
  std::vector<std::string> servers;  // host:port (the default port filled in)
  std::string volume;
};

// Parses "host[:port][,host[:port]...]:/volume" ("[v6addr]:port" works too).
// InvalidArgument naming what is wrong.
StatusOr<ServerSource> ParseServerSource(std::string_view source);

struct FetchedSpec {
  VolumeSpec spec;
  std::string json;
  uint64_t generation = 0;
  std::string server;  // the storaged that answered
};

// Asks each server in turn (default port 24007 when a server has none) for
// `volume`'s spec; the first answer wins. Errors name every server tried and
// why; NotFound "volume X not found" when every server answered that it has
// no such volume.
StatusOr<FetchedSpec> FetchSpec(const std::vector<std::string>& servers, const std::string& volume,
                                const std::string& token,
                                std::chrono::milliseconds per_server_timeout);

// Watches a volume's spec on a thread of its own: WatchVolumeSpec on the
// first server that answers, the next one when the stream breaks (after a
// pause, round robin), calling `on_newer` with every generation above the
// newest seen. A deleted spec is reported once through `on_gone` and watched
// for again. Stops (cancelling the stream) when destroyed.
class SpecWatcher {
 public:
  using Callback = std::function<void(const FetchedSpec& spec)>;
  SpecWatcher(std::vector<std::string> servers, std::string volume, std::string token,
              uint64_t known_generation, Callback on_newer,
              std::function<void(const Status& why)> on_gone = nullptr,
              std::chrono::milliseconds retry_interval = std::chrono::milliseconds(1000));
  ~SpecWatcher();
  SpecWatcher(const SpecWatcher&) = delete;
  SpecWatcher& operator=(const SpecWatcher&) = delete;

  uint64_t generation() const { return generation_.load(); }
  // The server of the current stream ("" between streams).
  std::string server() const;

 private:
  void Loop();

  const std::vector<std::string> servers_;
  const std::string volume_;
  const std::string token_;
  const Callback on_newer_;
  const std::function<void(const Status&)> on_gone_;
  const std::chrono::milliseconds retry_interval_;
  std::atomic<uint64_t> generation_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;                      // GUARDED_BY(mu_)
  grpc::ClientContext* active_ = nullptr;  // GUARDED_BY(mu_)
  std::string server_;                     // GUARDED_BY(mu_)
  std::thread thread_;
};

}  // namespace cairn::client
