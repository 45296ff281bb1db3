#include "tests/provisioner_util.h"

#include <fcntl.h>
#include <httplib.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ctime>
#include <thread>

#include "common/file_util.h"
#include "common/jwt.h"

namespace cairn::test {

namespace {

using Clock = std::chrono::steady_clock;

std::string RandomKey(const std::string& prefix) {
  return prefix + "-" + Uuid::Random().ToString();
}

}  // namespace

// ---------------------------------------------------------------------------
// HTTP.

std::string ProvisionerHttp::Token(const std::string& iss, const std::string& method,
                                   const std::string& path, int64_t iat_offset_s,
                                   int64_t exp_offset_s) const {
  const int64_t now = static_cast<int64_t>(std::time(nullptr));
  nlohmann::json claims = {{"iss", iss},
                           {"iat", now + iat_offset_s},
                           {"exp", now + exp_offset_s},
                           {"qsh", JwtQsh(method, path)}};
  return SignJwt(keys_.at(iss), claims);
}

HttpReply ProvisionerHttp::CallWithAuth(const std::string& method, const std::string& path,
                                        const std::string& body,
                                        const std::string& authorization) const {
  httplib::Client cli(host_, port_);
  cli.set_connection_timeout(5);
  cli.set_read_timeout(60);
  httplib::Headers headers;
  if (!authorization.empty()) headers.emplace("Authorization", authorization);
  httplib::Result r = [&] {
    if (method == "GET") return cli.Get(path, headers);
    if (method == "DELETE") return cli.Delete(path, headers, body, "application/json");
    if (method == "PUT") return cli.Put(path, headers, body, "application/json");
    return cli.Post(path, headers, body, "application/json");
  }();
  HttpReply out;
  if (!r) {
    out.body = "no reply: " + httplib::to_string(r.error());  // status 0
    return out;
  }
  out.status = r->status;
  out.body = r->body;
  for (const auto& [k, v] : r->headers) out.headers[k] = v;
  return out;
}

HttpReply ProvisionerHttp::Call(const std::string& method, const std::string& path,
                                const std::string& body, const std::string& iss) const {
  std::string auth;
  if (!iss.empty()) {
    std::string bare = path.substr(0, path.find('?'));
    auth = "Bearer " + Token(iss, method, bare);
  }
  return CallWithAuth(method, path, body, auth);
}

HttpReply ProvisionerHttp::Follow(const HttpReply& accepted, const std::string& iss,
                                  std::chrono::milliseconds timeout) const {
  if (accepted.status != 202) return accepted;
  const std::string queue = accepted.Header("Location");
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    HttpReply q = Call("GET", queue, "", iss);
    if (q.status == 303) return Call("GET", q.Header("Location"), "", iss);
    if (q.status != 200 || q.Header("X-Pending") != "true") return q;
    if (Clock::now() > deadline) return q;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

// ---------------------------------------------------------------------------
// Process.

std::string ProvisionerProcess::Binary() {
  const char* env = ::getenv("CAIRN_PROVISIONER");
  return env != nullptr && *env != '\0' ? env : CAIRN_PROVISIONER_PATH;
}

StatusOr<std::unique_ptr<ProvisionerProcess>> ProvisionerProcess::Start(
    NodeCluster& nodes, const std::vector<std::string>& extra_args) {
  std::unique_ptr<ProvisionerProcess> p(new ProvisionerProcess(nodes));
  p->db_path_ = p->dir_.Sub("provisioner.db");
  p->extra_args_ = extra_args;
  std::map<std::string, std::string> keys = {
      {"admin", RandomKey("admin")}, {"user", RandomKey("user")}, {"node", RandomKey("join")}};
  CAIRN_RETURN_IF_ERROR(WriteFileAtomic(p->dir_.Sub("admin.key"), keys["admin"] + "\n", 0600));
  CAIRN_RETURN_IF_ERROR(WriteFileAtomic(p->dir_.Sub("user.key"), keys["user"] + "\n", 0600));
  CAIRN_RETURN_IF_ERROR(WriteFileAtomic(p->dir_.Sub("join.key"), keys["node"] + "\n", 0600));
  p->http_ = std::make_unique<ProvisionerHttp>("127.0.0.1", 0, keys);
  CAIRN_RETURN_IF_ERROR(p->Spawn({}));
  return p;
}

ProvisionerProcess::~ProvisionerProcess() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    int st = 0;
    while (::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
    }
  }
}

std::string ProvisionerProcess::Log() const { return ReadFileOrEmpty(dir_.Sub("provisioner.log")); }

Status ProvisionerProcess::Spawn(const std::vector<std::string>& env) {
  const std::string ready = dir_.Sub("ready.json");
  ::unlink(ready.c_str());
  std::vector<std::string> args;
  if (!env.empty()) {
    args.push_back("/usr/bin/env");
    for (const auto& e : env) args.push_back(e);
  }
  args.insert(
      args.end(),
      {Binary(), "--listen=127.0.0.1:" + std::to_string(port_), "--db=" + db_path_,
       "--admin-key-file=" + dir_.Sub("admin.key"), "--user-key-file=" + dir_.Sub("user.key"),
       "--join-key-file=" + dir_.Sub("join.key"), "--node-token-file=" + nodes_.admin_token_path(),
       "--ready-file=" + ready, "--rpc-timeout-ms=5000"});
  for (const auto& a : extra_args_) args.push_back(a);
  int log_fd =
      ::open(dir_.Sub("provisioner.log").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) return Status::Internal("cannot open the provisioner log");
  auto pid = SpawnChild(args, log_fd, SIGKILL);
  ::close(log_fd);
  if (!pid.ok()) return pid.status();
  pid_ = *pid;
  const auto deadline = Clock::now() + std::chrono::seconds(30);
  for (;;) {
    int st = 0;
    if (::waitpid(pid_, &st, WNOHANG) == pid_) {
      pid_ = -1;
      return Status::Internal("cairn-provisioner exited before it was ready; its log:\n" + Log());
    }
    auto text = ReadFileOrEmpty(ready);
    auto j = nlohmann::json::parse(text, nullptr, false);
    if (!text.empty() && j.is_object()) {
      url_ = j.value("url", "");
      std::string listen = j.value("listen", "");
      port_ = std::stoi(listen.substr(listen.rfind(':') + 1));
      http_->set_port(port_);
      return Status::Ok();
    }
    if (Clock::now() > deadline) {
      return Status::DeadlineExceeded("cairn-provisioner not ready in 30 s; its log:\n" + Log());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

StatusOr<int> ProvisionerProcess::Stop(bool kill) {
  if (pid_ <= 0) return Status::FailedPrecondition("not running");
  ::kill(pid_, kill ? SIGKILL : SIGTERM);
  return WaitExit(std::chrono::seconds(30));
}

StatusOr<int> ProvisionerProcess::WaitExit(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return Status::FailedPrecondition("not running");
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    int st = 0;
    pid_t r = ::waitpid(pid_, &st, WNOHANG);
    if (r == pid_) {
      pid_ = -1;
      return st;
    }
    if (Clock::now() > deadline) return Status::DeadlineExceeded("the provisioner did not exit");
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

Status ProvisionerProcess::Restart(const std::vector<std::string>& env) {
  if (pid_ > 0) {
    auto s = Stop();
    if (!s.ok()) return s.status();
  }
  return Spawn(env);
}

Status ProvisionerProcess::RegisterAll(const std::vector<int>& zones) {
  for (int i = 0; i < nodes_.nodes(); ++i) {
    auto node = nodes_.client(i).Call(&spb::Storaged::Stub::GetNode, spb::GetNodeRequest());
    if (!node.ok()) return node.status();
    nlohmann::json body = {{"name", node->name()},
                           {"manage", nodes_.api_address(i)},
                           {"storage", nodes_.host(i)},
                           {"zone", i < static_cast<int>(zones.size()) ? zones[i] : 1}};
    HttpReply r = http_->Call("POST", "/nodes/register", body.dump(), "node");
    if (r.status != 200) {
      return Status::Internal("register node " + std::to_string(i) + ": HTTP " +
                              std::to_string(r.status) + " " + r.body);
    }
  }
  return Status::Ok();
}

}  // namespace cairn::test
