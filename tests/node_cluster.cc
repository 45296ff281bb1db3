// NodeCluster: storaged "nodes" on 127.0.0.2.. with a test volume made through their API.
#include "tests/node_cluster.h"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "common/file_util.h"
#include "common/id.h"
#include "common/status_errno.h"

#ifndef CAIRN_STORAGED_PATH
#define CAIRN_STORAGED_PATH "storaged"
#endif
#ifndef CAIRN_BRICKD_PATH
#define CAIRN_BRICKD_PATH "brickd"
#endif

namespace cairn::test {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

std::string Tail(const std::string& text, size_t max_bytes = 6000) {
  if (text.size() <= max_bytes) return text;
  return "...\n" + text.substr(text.size() - max_bytes);
}

// Waits up to `timeout` for child `pid` to exit; true and its status if it did.
bool WaitChild(pid_t pid, milliseconds timeout, int* status) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    pid_t r = ::waitpid(pid, status, WNOHANG);
    if (r == pid) return true;
    if (r < 0 && errno != EINTR) return false;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(milliseconds(2));
  }
}

// Reaps `pid` if it is our child, waiting up to `timeout` for it to finish
// exiting (a killed process shows as a zombie in /proc a moment before its
// parent can reap it); harmless if it is not our child.
void ReapIfChild(pid_t pid, milliseconds timeout = milliseconds(2000)) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    int status = 0;
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid || (r < 0 && errno == ECHILD)) return;
    if (r == 0 && ProcessAlive(pid)) return;  // still running: not ours to wait for
    if (Clock::now() > deadline) return;
    std::this_thread::sleep_for(milliseconds(1));
  }
}

}  // namespace

bool ProcessAlive(pid_t pid) {
  if (pid <= 0) return false;
  std::string stat = ReadFileOrEmpty("/proc/" + std::to_string(pid) + "/stat");
  if (stat.empty()) return false;
  auto close = stat.rfind(')');
  if (close == std::string::npos || close + 2 >= stat.size()) return false;
  char state = stat[close + 2];
  return state != 'Z' && state != 'X';
}

// ---------------------------------------------------------------------------
// StoragedClient.

StoragedClient::StoragedClient(const std::string& address, std::string token)
    : address_(address), token_(std::move(token)) {
  stub_ = spb::Storaged::NewStub(BrickdClient::NewChannel(address));
}

// ---------------------------------------------------------------------------
// NodeCluster.

std::string NodeCluster::StoragedBinary() {
  const char* env = ::getenv("CAIRN_STORAGED");
  return env != nullptr && *env != '\0' ? env : CAIRN_STORAGED_PATH;
}

std::string NodeCluster::BrickdBinary() {
  const char* env = ::getenv("CAIRN_BRICKD");
  return env != nullptr && *env != '\0' ? env : CAIRN_BRICKD_PATH;
}

std::string NodeCluster::host(int i) const { return nodes_.at(i).host; }
std::string NodeCluster::api_address(int i) const { return nodes_.at(i).api_address; }
std::string NodeCluster::metrics_address(int i) const { return nodes_.at(i).metrics_address; }
std::string NodeCluster::brickd_address(int i) const { return nodes_.at(i).brickd_address; }
std::string NodeCluster::state_dir(int i) const {
  return dir_.Sub("node" + std::to_string(i) + "/state");
}
std::string NodeCluster::device_path(int i) const {
  return dir_.Sub("node" + std::to_string(i) + "/dev");
}
std::string NodeCluster::log_file(int i) const {
  return dir_.Sub("node" + std::to_string(i) + "/storaged.log");
}
std::string NodeCluster::Log(int i) const { return ReadFileOrEmpty(log_file(i)); }

int NodeCluster::node_of(int s, int r) const {
  return (s * options_.replica + r) % static_cast<int>(nodes_.size());
}
std::string NodeCluster::brick_id(int s, int r) const {
  return options_.name + "-s" + std::to_string(s) + "-r" + std::to_string(r);
}
std::string NodeCluster::brick_path(int s, int r) const {
  return device_path(node_of(s, r)) + "/bricks/" + brick_id(s, r);
}

StatusOr<std::unique_ptr<NodeCluster>> NodeCluster::Start(NodeClusterOptions options) {
  if (options.nodes < 1 || options.nodes > 200 || options.subvolumes < 1 || options.replica < 1) {
    return Status::InvalidArgument("node cluster: bad shape");
  }
  // Orphaned brickds (their storaged was killed) become our children, so we
  // can reap them instead of leaving zombies.
  ::prctl(PR_SET_CHILD_SUBREAPER, 1);
  std::unique_ptr<NodeCluster> c(new NodeCluster());
  c->options_ = options;
  c->token_ = RandomHexToken();
  c->admin_token_ = RandomHexToken();
  c->token_path_ = c->dir_.Sub("data.token");
  c->admin_token_path_ = c->dir_.Sub("admin.token");
  CAIRN_RETURN_IF_ERROR(WriteFileAtomic(c->token_path_, c->token_ + "\n", 0600));
  CAIRN_RETURN_IF_ERROR(WriteFileAtomic(c->admin_token_path_, c->admin_token_ + "\n", 0600));
  c->nodes_.resize(options.nodes);
  for (int i = 0; i < options.nodes; ++i) {
    Node& n = c->nodes_[i];
    n.host = i < static_cast<int>(options.hosts.size()) ? options.hosts[i]
                                                        : "127.0.0." + std::to_string(2 + i);
    c->dir_.MakeSubdir("node" + std::to_string(i) + "/dev");
    CAIRN_RETURN_IF_ERROR(c->StartNode(i));
    spb::AddDeviceRequest dev;
    dev.set_device_id("dev" + std::to_string(i));
    dev.set_path(c->device_path(i));
    dev.set_capacity_bytes(options.device_capacity);
    auto added = c->client(i).Call(&spb::Storaged::Stub::AddDevice, dev);
    if (!added.ok()) return added.status().WithContext("node " + std::to_string(i) + " AddDevice");
  }
  if (!options.create_volume) return c;

  c->spec_.volume_id = Uuid::Random();
  c->spec_.name = options.name;
  c->spec_.replica = options.replica;
  c->spec_.arbiter = options.arbiter;
  c->spec_.generation = 1;
  c->spec_.type = options.replica == 1      ? client::VolumeSpec::Type::kDistribute
                  : options.subvolumes == 1 ? client::VolumeSpec::Type::kReplicate
                                            : client::VolumeSpec::Type::kDistributeReplicate;
  for (int s = 0; s < options.subvolumes; ++s) {
    std::vector<client::BrickRef> bricks;
    for (int r = 0; r < options.replica; ++r) {
      const int i = c->node_of(s, r);
      spb::CreateBrickRequest req;
      req.set_device_id("dev" + std::to_string(i));
      req.set_brick_id(c->brick_id(s, r));
      req.set_capacity_bytes(options.brick_capacity);
      auto made = c->client(i).Call(&spb::Storaged::Stub::CreateBrick, req);
      if (!made.ok())
        return made.status().WithContext("node " + std::to_string(i) + " CreateBrick");
      client::BrickRef ref;
      ref.node = c->brickd_address(i);
      ref.brick_id = c->brick_id(s, r);
      ref.arbiter = options.arbiter == 1 && r + 1 == options.replica;
      bricks.push_back(std::move(ref));
    }
    c->spec_.subvolumes.push_back(std::move(bricks));
  }
  // Round-trip through the parser, as storaged stores it.
  CAIRN_ASSIGN_OR_RETURN(c->spec_, client::VolumeSpec::Parse(c->spec_.ToJson()));
  for (int i = 0; i < options.nodes; ++i) {
    spb::PutVolumeSpecRequest put;
    put.set_spec_json(c->spec_.ToJson());
    auto r = c->client(i).Call(&spb::Storaged::Stub::PutVolumeSpec, put);
    if (!r.ok()) return r.status().WithContext("node " + std::to_string(i) + " PutVolumeSpec");
  }
  return c;
}

NodeCluster::~NodeCluster() {
  for (int i = 0; i < nodes(); ++i) {
    Node& n = nodes_[i];
    if (n.pid > 0) {
      NoteBrickdPid(i);
      ::kill(n.pid, SIGKILL);
      int status = 0;
      while (::waitpid(n.pid, &status, 0) < 0 && errno == EINTR) {
      }
      n.pid = -1;
    }
    NoteBrickdPid(i);
    for (pid_t p : std::set<pid_t>(n.brickd_pids)) KillBrickdPid(i, p);
  }
  nodes_.clear();
}

pid_t NodeCluster::recorded_brickd_pid(int i) const {
  auto j = nlohmann::json::parse(ReadFileOrEmpty(state_dir(i) + "/brickd.pid"), nullptr, false);
  if (!j.is_object()) return -1;
  return j.value("pid", -1);
}

void NodeCluster::NoteBrickdPid(int i) {
  pid_t p = recorded_brickd_pid(i);
  if (p > 0) nodes_.at(i).brickd_pids.insert(p);
}

void NodeCluster::KillBrickdPid(int i, pid_t pid) {
  // Only a brickd of this node (its ready file is in this node's state dir):
  // never a process that reused the pid.
  auto args = ProcessCmdline(pid);
  bool ours = false;
  for (const auto& a : args) ours = ours || a == "--ready-file=" + state_dir(i) + "/brickd.ready";
  if (ours) {
    ::kill(pid, SIGKILL);
    const auto deadline = Clock::now() + std::chrono::seconds(10);
    while (ProcessAlive(pid) && Clock::now() < deadline)
      std::this_thread::sleep_for(milliseconds(2));
  }
  ReapIfChild(pid);
  if (!ProcessAlive(pid)) nodes_.at(i).brickd_pids.erase(pid);
}

Status NodeCluster::Spawn(int i, const std::vector<std::string>& extra_args) {
  Node& n = nodes_.at(i);
  const std::string ready = dir_.Sub("node" + std::to_string(i) + "/ready.json");
  if (::unlink(ready.c_str()) != 0 && errno != ENOENT) return StatusFromErrno(errno, "unlink");
  std::vector<std::string> args = {
      StoragedBinary(),
      "--listen=" + n.host + ":" + std::to_string(n.api_port),
      "--state-dir=" + state_dir(i),
      "--node-name=node" + std::to_string(i),
      "--brickd-listen=" + n.host + ":0",
      "--brickd=" + BrickdBinary(),
      "--token-file=" + token_path_,
      "--admin-token-file=" + admin_token_path_,
      "--metrics-listen=" + n.host + ":0",
      "--ready-file=" + ready,
      "--log-level=" + options_.log_level,
  };
  if (options_.brickd_threads > 0) {
    args.push_back("--brickd-threads=" + std::to_string(options_.brickd_threads));
  }
  for (const auto& a : extra_args) args.push_back(a);
  if (options_.wrap) args = options_.wrap(i, args);
  int log_fd = ::open(log_file(i).c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) return StatusFromErrno(errno, "open " + log_file(i));
  auto pid = SpawnChild(args, log_fd, SIGKILL);
  ::close(log_fd);
  if (!pid.ok()) return pid.status();
  n.pid = *pid;
  return Status::Ok();
}

Status NodeCluster::WaitReady(int i, milliseconds timeout) {
  Node& n = nodes_.at(i);
  const std::string ready = dir_.Sub("node" + std::to_string(i) + "/ready.json");
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    int status = 0;
    if (n.pid > 0 && ::waitpid(n.pid, &status, WNOHANG) == n.pid) {
      n.pid = -1;
      return Status::Internal("storaged of node " + std::to_string(i) + " exited (" +
                              DescribeWaitStatus(status) + "); its log:\n" + Tail(Log(i)));
    }
    if (::access(ready.c_str(), F_OK) == 0) {
      auto j = nlohmann::json::parse(ReadFileOrEmpty(ready), nullptr, false);
      if (j.is_object() && j.value("pid", -1) == n.pid) {
        n.api_address = j.value("listen", "");
        n.metrics_address = j.value("metrics", "");
        n.brickd_address = j.value("brickd", "");
        n.api_port = std::stoi(n.api_address.substr(n.api_address.rfind(':') + 1));
        n.client = std::make_unique<StoragedClient>(n.api_address, admin_token_);
        NoteBrickdPid(i);
        return Status::Ok();
      }
    }
    if (Clock::now() > deadline) {
      return Status::DeadlineExceeded("storaged of node " + std::to_string(i) +
                                      " not ready in time; its log:\n" + Tail(Log(i)));
    }
    std::this_thread::sleep_for(milliseconds(5));
  }
}

Status NodeCluster::StartNode(int i, const std::vector<std::string>& extra_args) {
  if (nodes_.at(i).pid > 0)
    return Status::FailedPrecondition("node " + std::to_string(i) + " runs");
  CAIRN_RETURN_IF_ERROR(Spawn(i, extra_args));
  return WaitReady(i, std::chrono::seconds(60));
}

StatusOr<pid_t> NodeCluster::brickd_pid(int i) {
  auto node = client(i).Call(&spb::Storaged::Stub::GetNode, spb::GetNodeRequest());
  if (!node.ok()) return node.status();
  if (node->brickd_pid() > 0) nodes_.at(i).brickd_pids.insert(node->brickd_pid());
  return static_cast<pid_t>(node->brickd_pid());
}

Status NodeCluster::KillNode(int i) {
  Node& n = nodes_.at(i);
  NoteBrickdPid(i);
  if (n.pid > 0) {
    ::kill(n.pid, SIGKILL);
    int status = 0;
    while (::waitpid(n.pid, &status, 0) < 0 && errno == EINTR) {
    }
    n.pid = -1;
  }
  NoteBrickdPid(i);
  for (pid_t p : std::set<pid_t>(n.brickd_pids)) KillBrickdPid(i, p);
  return Status::Ok();
}

Status NodeCluster::KillStoraged(int i) {
  Node& n = nodes_.at(i);
  NoteBrickdPid(i);
  if (n.pid <= 0) return Status::FailedPrecondition("node " + std::to_string(i) + " is stopped");
  ::kill(n.pid, SIGKILL);
  int status = 0;
  while (::waitpid(n.pid, &status, 0) < 0 && errno == EINTR) {
  }
  n.pid = -1;
  return Status::Ok();
}

StatusOr<int> NodeCluster::StopNode(int i, milliseconds timeout) {
  Node& n = nodes_.at(i);
  if (n.pid <= 0) return Status::FailedPrecondition("node " + std::to_string(i) + " is stopped");
  NoteBrickdPid(i);
  ::kill(n.pid, SIGTERM);
  int status = 0;
  if (!WaitChild(n.pid, timeout, &status)) {
    return Status::DeadlineExceeded("storaged of node " + std::to_string(i) +
                                    " still runs after SIGTERM");
  }
  n.pid = -1;
  for (pid_t p : std::set<pid_t>(n.brickd_pids)) {
    ReapIfChild(p);
    if (!ProcessAlive(p)) n.brickd_pids.erase(p);
  }
  return status;
}

StatusOr<pid_t> NodeCluster::KillBrickd(int i) {
  pid_t p = recorded_brickd_pid(i);
  if (p <= 0 || !ProcessAlive(p)) {
    return Status::FailedPrecondition("node " + std::to_string(i) + " has no running brickd");
  }
  nodes_.at(i).brickd_pids.insert(p);
  if (::kill(p, SIGKILL) != 0) return StatusFromErrno(errno, "kill brickd");
  return p;
}

std::string NodeCluster::mount_source(std::vector<int> which) const {
  if (which.empty()) {
    for (int i = 0; i < nodes(); ++i) which.push_back(i);
  }
  std::string s;
  for (int i : which) s += (s.empty() ? "" : ",") + api_address(i);
  return s + ":/" + options_.name;
}

StatusOr<std::unique_ptr<SourceMount>> NodeCluster::Mount(MountOptions options,
                                                          const std::string& source,
                                                          int in_node) const {
  std::function<std::vector<std::string>(const std::vector<std::string>&)> wrap;
  if (in_node >= 0 && options_.wrap) {
    wrap = [this, in_node](const std::vector<std::string>& argv) {
      return options_.wrap(in_node, argv);
    };
  }
  return FuseMount::Start(source.empty() ? mount_source() : source, token_path_, dir_,
                          std::move(options), wrap);
}

StatusOr<std::unique_ptr<client::Volume>> NodeCluster::OpenVolume(client::Options options) const {
  options.token = token_;
  if (options.connect_timeout == client::Options{}.connect_timeout) {
    options.connect_timeout = milliseconds(10000);
  }
  if (options.rpc_timeout == client::Options{}.rpc_timeout)
    options.rpc_timeout = milliseconds(5000);
  options.reconnect_interval = milliseconds(200);
  return client::Volume::Open(spec_, options);
}

}  // namespace cairn::test
