// storaged's self-registration with the provisioner (docs/provisioner.md,
// "Nodes join two ways"; docs/storaged.md, "Registration").
//
//   RegistrarOptions o;
//   o.provisioner = "http://10.0.0.1:8080";
//   o.join_key = *ReadSecretFile(key_file);       // never logged
//   CAIRN_ASSIGN_OR_RETURN(auto registrar, Registrar::Create(std::move(o)));
//   ...                                            // once the API serves:
//   registrar->Start({.name = "node1", .manage = "10.0.0.2:24007", .storage = "10.0.0.2",
//                     .zone = 1, .cluster = ""},
//                    [](const Registration& r) { ... });
//   ...
//   registrar->RequestStop();   // at SIGTERM: returns at once
//   registrar->Stop();          // joins the thread
//
// The registrar POSTs /nodes/register with `Authorization: Bearer <JWT>`
// (HS256 with the join key, iss "node", qsh of POST&/nodes/register, a fresh
// token per attempt) from a thread of its own, and retries until it gets a
// 200 with {"id","cluster"}: 1 s, doubling up to 30 s between attempts. Each
// failure is logged as `event=register_failed status=… body=… retry_in_ms=…`,
// the success as `event=registered node_id=… cluster=…`. Stopping wakes the
// wait between attempts and aborts a request in flight, so it never sleeps
// through a SIGTERM.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>

#include "common/status.h"

namespace httplib {
class ClientImpl;
}

namespace cairn::storaged {

// The provisioner's address: http://host[:port] or https://host[:port]
// (default ports 80 and 443; IPv6 hosts in brackets; no path but "/").
struct ProvisionerUrl {
  std::string scheme;  // "http" or "https"
  std::string host;    // without brackets
  int port = 0;
  std::string ToString() const;
};
StatusOr<ProvisionerUrl> ParseProvisionerUrl(const std::string& url);
// False when this build's cpp-httplib has no OpenSSL support (https refused).
bool HttpsSupported();

// One --device=ID=PATH[:GiB] flag. The part after the last ':' is the
// capacity in GiB when it is all digits (0 or absent: the file system's
// size); otherwise it belongs to the path.
struct DeviceFlag {
  std::string id;
  std::string path;
  uint64_t capacity_bytes = 0;
};
StatusOr<DeviceFlag> ParseDeviceFlag(const std::string& text);

// The body of POST /nodes/register.
struct RegistrationRequest {
  std::string name = {};     // the node name (GetNode's)
  std::string manage = {};   // host:port of storaged's gRPC API, as listening
  std::string storage = {};  // host clients reach the bricks at
  int64_t zone = 1;
  std::string cluster = {};  // "" lets the provisioner choose
  nlohmann::json ToJson() const;
};

struct RegistrarOptions {
  std::string provisioner;  // URL, see ParseProvisionerUrl
  std::string ca_file;      // https: PEM CA bundle; empty: the system's store
  std::string join_key;     // the JWT HS256 key (iss node); a secret
  std::chrono::milliseconds initial_backoff{1000};
  std::chrono::milliseconds max_backoff{30000};
  std::chrono::milliseconds connect_timeout{3000};
  // The provisioner calls this storaged back (GetNode, ListDevices) before it
  // answers, so this is generous.
  std::chrono::milliseconds read_timeout{30000};
};

// The provisioner's answer.
struct Registration {
  std::string node_id;
  std::string cluster;
  int attempts = 0;  // requests sent, the successful one included
};

class Registrar {
 public:
  using Callback = std::function<void(const Registration&)>;

  // InvalidArgument for a bad URL, an empty key, https without OpenSSL
  // support, or a missing CA file.
  static StatusOr<std::unique_ptr<Registrar>> Create(RegistrarOptions options);
  ~Registrar();  // Stop()
  Registrar(const Registrar&) = delete;
  Registrar& operator=(const Registrar&) = delete;

  // Starts the thread registering `request`; `on_registered` runs on it once,
  // after the success. Only the first call does anything.
  void Start(RegistrationRequest request, Callback on_registered = nullptr);
  // Asks the thread to end (wakes its wait between attempts) and returns at
  // once: call it first thing at shutdown.
  void RequestStop();
  // RequestStop(), aborts a request in flight and joins the thread.
  // Idempotent. Takes at most the connect timeout (a request still
  // connecting cannot be aborted), usually nothing.
  void Stop();

  bool registered() const { return registered_.load(); }
  std::optional<Registration> registration() const;
  int attempts() const { return attempts_.load(); }
  // True once registered; false if `timeout` passed or the registrar stopped first.
  bool WaitRegistered(std::chrono::milliseconds timeout);

 private:
  Registrar(RegistrarOptions options, ProvisionerUrl url,
            std::unique_ptr<httplib::ClientImpl> client);
  void Run();
  // One POST. On success fills `out`; else `status` and `body` say why.
  bool Attempt(Registration* out, std::string* status, std::string* body);

  const RegistrarOptions options_;
  const ProvisionerUrl url_;
  RegistrationRequest request_;  // set by Start, before the thread
  Callback on_registered_;

  // One client for every attempt; Stop() calls its stop(), which aborts a
  // request in flight (httplib's one thread-safe way to do that).
  std::unique_ptr<httplib::ClientImpl> client_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;                   // GUARDED_BY(mu_)
  bool done_ = false;                   // GUARDED_BY(mu_): the thread finished
  std::optional<Registration> result_;  // GUARDED_BY(mu_)
  std::atomic<bool> registered_{false};
  std::atomic<int> attempts_{0};
  std::thread thread_;
};

}  // namespace cairn::storaged
