// A real cairn-provisioner child process on top of a NodeCluster, and an HTTP
// client that signs every request with a JWT (admin, user or node key).
//
//   auto nodes = NodeCluster::Start({.nodes = 3, .create_volume = false});
//   auto p = ProvisionerProcess::Start(**nodes);
//   ASSERT_OK((*p)->RegisterAll());              // POST /nodes/register per node
//   auto r = (*p)->http().Call("POST", "/volumes", R"({"size":1})");
//   auto v = (*p)->http().Follow(r);             // 202 → /queue → 303 → JSON
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/status.h"
#include "tests/node_cluster.h"
#include "tests/test_util.h"

namespace cairn::test {

struct HttpReply {
  int status = 0;  // 0: no connection
  std::string body;
  std::map<std::string, std::string> headers;
  nlohmann::json Json() const {
    auto j = nlohmann::json::parse(body, nullptr, false);
    return j;
  }
  std::string Header(const std::string& k) const {
    auto it = headers.find(k);
    return it == headers.end() ? "" : it->second;
  }
};

class ProvisionerHttp {
 public:
  ProvisionerHttp(std::string host, int port, std::map<std::string, std::string> keys)
      : host_(std::move(host)), port_(port), keys_(std::move(keys)) {}
  void set_port(int port) { port_ = port; }

  // A request signed as `iss` ("admin", "user", "node"; "" for no token).
  HttpReply Call(const std::string& method, const std::string& path, const std::string& body = "",
                 const std::string& iss = "admin") const;
  // A request with a caller-made Authorization header value ("" for none).
  HttpReply CallWithAuth(const std::string& method, const std::string& path,
                         const std::string& body, const std::string& authorization) const;
  // A token for METHOD&PATH signed with `key` and these claims.
  std::string Token(const std::string& iss, const std::string& method, const std::string& path,
                    int64_t iat_offset_s = 0, int64_t exp_offset_s = 300) const;
  const std::string& key(const std::string& iss) const { return keys_.at(iss); }

  // Follows a 202 through /queue/{id} until it finishes: the final reply
  // (the 303 target's GET, a 204, or the 500).
  HttpReply Follow(const HttpReply& accepted, const std::string& iss = "admin",
                   std::chrono::milliseconds timeout = std::chrono::seconds(60)) const;

 private:
  std::string host_;
  int port_;
  std::map<std::string, std::string> keys_;
};

class ProvisionerProcess {
 public:
  // Starts a provisioner on 127.0.0.1:0 with a fresh database, keys, and the
  // nodes' admin token as its node token.
  static StatusOr<std::unique_ptr<ProvisionerProcess>> Start(
      NodeCluster& nodes, const std::vector<std::string>& extra_args = {});
  ~ProvisionerProcess();

  ProvisionerHttp& http() { return *http_; }
  const std::string& url() const { return url_; }
  const std::string& db_path() const { return db_path_; }
  pid_t pid() const { return pid_; }
  std::string Log() const;

  // POST /nodes/register (as storaged does) for every node of the cluster,
  // with zone zones[i] (default 1).
  Status RegisterAll(const std::vector<int>& zones = {});

  // Stops (SIGTERM, or SIGKILL when `kill`), waits; returns the wait status.
  StatusOr<int> Stop(bool kill = false);
  // Starts it again on the same port and database; `env` entries are
  // NAME=VALUE added to the environment (e.g. the crash-point hook).
  Status Restart(const std::vector<std::string>& env = {});
  // Waits for the process to exit by itself (e.g. at a crash point).
  StatusOr<int> WaitExit(std::chrono::milliseconds timeout);

  static std::string Binary();

 private:
  ProvisionerProcess(NodeCluster& nodes) : nodes_(nodes) {}
  Status Spawn(const std::vector<std::string>& env);

  NodeCluster& nodes_;
  TempDir dir_{"cairn-prov"};
  std::string db_path_, url_;
  std::vector<std::string> extra_args_;
  int port_ = 0;
  pid_t pid_ = -1;
  std::unique_ptr<ProvisionerHttp> http_;
};

}  // namespace cairn::test
