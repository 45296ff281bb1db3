// Test helpers for process-level tests: temporary directories, a real brickd
// child process, and a gRPC client for it.
//
//   TempDir bricks;
//   auto brickd = BrickdProcess::Start();          // fork/exec, waits until ready
//   ASSERT_TRUE(brickd.ok()) << brickd.status().ToString();
//   BrickdClient client((*brickd)->address());
//   pb::AttachRequest req;
//   req.set_brick_id("b1");
//   req.set_path(bricks.MakeSubdir("b1"));
//   auto reply = client.Call(&pb::BrickAdmin::Stub::Attach, req, (*brickd)->admin_token());
//   EXPECT_EQ(reply.status().code(), StatusCode::kOk);
//
// Everything here cleans up after itself (RAII): a BrickdProcess kills its own
// child by pid (never by name) and reaps it; a TempDir removes its tree.
#pragma once

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "common/status.h"
#include "common/status_grpc.h"
#include "proto/brick.grpc.pb.h"

namespace cairn::test {

namespace pb = ::cairn::brick::v1;

// ---------------------------------------------------------------------------
// Files.

// A fresh directory under /tmp (mkdtemp), removed with everything in it when
// the object goes, even read-only subdirectories.
class TempDir {
 public:
  explicit TempDir(std::string_view prefix = "cairn-test");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // Returns path()/name (nothing is created).
  std::string Sub(std::string_view name) const;
  // Creates path()/name (and missing parents) with mode 0755 and returns it.
  std::string MakeSubdir(std::string_view name) const;

 private:
  std::string path_;
};

// Removes `path` and everything beneath it, making directories writable first.
// A missing path is ok.
Status RemoveTree(const std::string& path);

// Returns the whole contents of `path`, or "" if it cannot be read.
std::string ReadFileOrEmpty(const std::string& path);

// ---------------------------------------------------------------------------
// A brickd child process.

struct BrickdOptions {
  // Address to bind gRPC (and metrics) to; any of 127.0.0.0/8 works.
  std::string host = "127.0.0.1";
  // gRPC port; 0 lets brickd pick a free one (read back from its ready file).
  int port = 0;
  // Serve /metrics on host:0.
  bool metrics = true;
  // Pass --state-file (in the process's own directory) so restarts re-attach bricks.
  bool state_file = false;
  // --threads; 0 keeps brickd's default.
  int threads = 0;
  std::string log_level = "info";
  // The data token; empty: a random one. (Nodes of one test volume share one.)
  std::string data_token;
  // The admin token; empty: a random one.
  std::string admin_token;
  // Appended to the command line as given.
  std::vector<std::string> extra_args;
  // How long Start/Restart wait for the ready file.
  std::chrono::milliseconds ready_timeout{20000};
  // The executable; empty: $CAIRN_BRICKD, else the brickd of this build tree.
  std::string binary;
};

// A brickd started with fork/exec in a private temporary directory holding its
// token files, ready file, log (stdout and stderr) and optional state file.
//
// Not thread-safe: drive one BrickdProcess from one thread. The child dies
// with the thread that started it (PR_SET_PDEATHSIG), so a crashed test leaves
// no brickd behind; start it from the test's main thread.
class BrickdProcess {
 public:
  // Starts brickd and waits until it has written its ready file. Fails (with
  // the log's tail) if it exits first or is not ready within the timeout.
  static StatusOr<std::unique_ptr<BrickdProcess>> Start(BrickdOptions options = {});

  // Kills the child with SIGKILL if it still runs, and reaps it.
  ~BrickdProcess();
  BrickdProcess(const BrickdProcess&) = delete;
  BrickdProcess& operator=(const BrickdProcess&) = delete;

  // Pid of the running child; -1 once it has been reaped.
  pid_t pid() const { return pid_; }
  int grpc_port() const { return grpc_port_; }
  int metrics_port() const { return metrics_port_; }
  const std::string& host() const { return options_.host; }
  // "host:grpc_port", for grpc::CreateChannel.
  std::string address() const;
  const std::string& data_token() const { return data_token_; }
  const std::string& admin_token() const { return admin_token_; }
  // The process's private directory (tokens, ready file, log, state file).
  const std::string& dir() const { return dir_.path(); }
  std::string state_file() const { return dir_.Sub("state.json"); }
  std::string log_file() const { return dir_.Sub("brickd.log"); }
  // Everything brickd wrote to stdout and stderr so far, all incarnations.
  std::string Log() const { return ReadFileOrEmpty(log_file()); }

  // True iff the child has not exited (reaps it if it has).
  bool Running();

  // Sends `sig` and waits up to `timeout` for the child to exit. Returns its
  // raw wait status (see DescribeWaitStatus); DeadlineExceeded if it is still
  // running then (it stays running; the destructor kills it).
  StatusOr<int> Kill(int sig, std::chrono::milliseconds timeout = std::chrono::seconds(10));

  // Waits up to `timeout` for the child to exit by itself; returns its wait status.
  StatusOr<int> Wait(std::chrono::milliseconds timeout);

  // Starts brickd again with the same tokens, state file and options; stops a
  // running child with SIGKILL first. Tries the previous gRPC port, falls back
  // to a new one if it cannot be bound. Waits for readiness like Start.
  Status Restart();

 private:
  explicit BrickdProcess(BrickdOptions options);
  Status Spawn(int port);
  Status WaitReady(std::chrono::milliseconds timeout);

  BrickdOptions options_;
  TempDir dir_{"cairn-brickd"};
  std::string data_token_;
  std::string admin_token_;
  pid_t pid_ = -1;
  int exit_status_ = 0;  // wait status of the last child reaped
  int grpc_port_ = 0;
  int metrics_port_ = 0;
};

// "exited with 0", "killed by signal 9", ...
std::string DescribeWaitStatus(int wait_status);

// fork/exec of args[0] (a path) with stdin from /dev/null and stdout and
// stderr to log_fd, no other descriptor inherited, default signal mask; the
// child gets `death_signal` when the calling thread dies (PR_SET_PDEATHSIG).
// log_fd stays open in the caller. Returns the child's pid.
StatusOr<pid_t> SpawnChild(const std::vector<std::string>& args, int log_fd, int death_signal);

// ---------------------------------------------------------------------------
// A gRPC client of one brickd.

inline constexpr std::chrono::milliseconds kDefaultRpcTimeout{10000};
// Client-side message limits: a 4 MiB payload plus headers fits, and bigger
// messages reach the server (which enforces its own limit).
inline constexpr int kClientMaxMessageBytes = 8 << 20;

// One channel (its own TCP connection) with Brick and BrickAdmin stubs.
// Thread-safe, like the gRPC stubs it holds.
class BrickdClient {
 public:
  explicit BrickdClient(const std::string& address);

  // A channel with raised message limits and a private subchannel pool, so
  // that every BrickdClient has a connection of its own.
  static std::shared_ptr<grpc::Channel> NewChannel(const std::string& address);

  const std::string& address() const { return address_; }
  grpc::Channel* channel() const { return channel_.get(); }
  pb::Brick::Stub* brick() const { return brick_.get(); }
  pb::BrickAdmin::Stub* admin() const { return admin_.get(); }

  // Calls a unary method of either service, e.g. Call(&pb::Brick::Stub::Read,
  // req, token), with "authorization: Bearer <token>" (none if token is
  // empty) and a deadline. The result carries the canonical code and the
  // precise errno of a failure (cairn::FromGrpcStatus).
  template <class Stub, class Req, class Rep>
  StatusOr<Rep> Call(grpc::Status (Stub::*method)(grpc::ClientContext*, const Req&, Rep*),
                     const Req& request, std::string_view token,
                     std::chrono::milliseconds timeout = kDefaultRpcTimeout) const {
    grpc::ClientContext context;
    if (!token.empty()) context.AddMetadata("authorization", "Bearer " + std::string(token));
    context.set_deadline(std::chrono::system_clock::now() + timeout);
    Rep reply;
    grpc::Status status = (StubFor<Stub>()->*method)(&context, request, &reply);
    if (status.ok()) return reply;
    return FromGrpcStatus(status, context);
  }

 private:
  template <class Stub>
  Stub* StubFor() const {
    if constexpr (std::is_same_v<Stub, pb::Brick::Stub>) {
      return brick_.get();
    } else {
      static_assert(std::is_same_v<Stub, pb::BrickAdmin::Stub>, "not a brickd stub");
      return admin_.get();
    }
  }

  std::string address_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<pb::Brick::Stub> brick_;
  std::unique_ptr<pb::BrickAdmin::Stub> admin_;
};

// ---------------------------------------------------------------------------
// Assertions on Status, e.g. EXPECT_TRUE(IsOk(r)), EXPECT_TRUE(HasStatus(r, kNotFound, ENOENT)).

::testing::AssertionResult IsOk(const Status& status);
template <class T>
::testing::AssertionResult IsOk(const StatusOr<T>& r) {
  return IsOk(r.status());
}

// Success iff `status` has `code` and, unless posix_errno is -1, exactly that errno.
::testing::AssertionResult HasStatus(const Status& status, StatusCode code, int posix_errno = -1);
template <class T>
::testing::AssertionResult HasStatus(const StatusOr<T>& r, StatusCode code, int posix_errno = -1) {
  if (r.ok()) return HasStatus(Status::Ok(), code, posix_errno);
  return HasStatus(r.status(), code, posix_errno);
}

// ---------------------------------------------------------------------------
// Worker threads.

// Threads joined when the group goes, after raising its stop flag (if given),
// so that an ASSERT returning early from a test never leaves a joinable
// std::thread behind (std::terminate would skip all cleanup). Declare it after
// everything its threads use.
class ThreadGroup {
 public:
  explicit ThreadGroup(std::atomic<bool>* stop = nullptr) : stop_(stop) {}
  ~ThreadGroup() { JoinAll(); }
  ThreadGroup(const ThreadGroup&) = delete;
  ThreadGroup& operator=(const ThreadGroup&) = delete;

  template <class F>
  void Add(F&& fn) {
    threads_.emplace_back(std::forward<F>(fn));
  }
  // Raises the stop flag and waits for every thread.
  void JoinAll() {
    if (stop_ != nullptr) stop_->store(true);
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
    threads_.clear();
  }

 private:
  std::atomic<bool>* const stop_;
  std::vector<std::thread> threads_;
};

// ---------------------------------------------------------------------------
// /proc inspection.

// Threads of process `pid` (the "Threads:" line of /proc/PID/status), or -1.
int ThreadCount(pid_t pid);

// TCP ports process `pid` listens on (IPv4 and IPv6), sorted.
std::vector<int> ListeningTcpPorts(pid_t pid);

}  // namespace cairn::test
