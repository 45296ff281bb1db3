// BrickdSupervisor: runs the node's ONE brickd and keeps it running.
//
//   BrickdSupervisor sup(options, /*on_ready=*/[&] { return manager.AttachAll(); },
//                        /*on_port=*/[&](int port) { return manager.SetBrickdPort(port); });
//   CAIRN_RETURN_IF_ERROR(sup.Start());   // adopt a recorded brickd, or start one
//   auto bricks = sup.ListBricks();        // BrickAdmin calls with the admin token
//   sup.Stop(std::chrono::seconds(10));    // SIGTERM brickd, wait, SIGKILL if needed
//
// Start adopts a brickd that a previous storaged started and recorded in
// STATE_DIR/brickd.pid if it still runs (its /proc/PID/cmdline is a brickd
// with our ready file and address) instead of starting a second one; else it
// starts brickd with posix_spawn (own session, no parent-death signal, so it
// outlives a killed storaged) and waits for its ready file. Either way
// on_ready() then attaches the bricks.
//
// With `external`, brickd is somebody else's to run (its own container): see
// SupervisorOptions::external.
//
// A monitor thread watches brickd through a pidfd (which works for a process
// that is not our child too) and restarts it when it exits: the first restart
// at once, then after 200 ms doubling up to 5 s; the delay starts over once
// brickd has stayed up for 30 s. Every start gets a fresh gRPC channel (no
// reconnect backoff inherited from the dead one) and calls on_ready().
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "common/status.h"
#include "proto/brick.grpc.pb.h"

namespace grpc {
class ClientContext;
}

namespace cairn::storaged {

namespace bpb = ::cairn::brick::v1;

struct SupervisorOptions {
  std::string brickd_binary;  // absolute path
  std::string host;           // brickd's listen host
  int port = 0;               // 0: brickd picks one at its first start
  std::string token_file;
  std::string admin_token_file;
  std::string admin_token;  // for our BrickAdmin calls
  std::string state_dir;
  std::string log_level = "info";
  bool log_json = false;
  int threads = 0;  // brickd --threads; 0: brickd's default
  // brickd runs on its own (e.g. its own container in the node's pod, which
  // the kubelet restarts): storaged neither starts nor stops it. It finds it
  // at host:port, attaches the bricks once it answers, and attaches them
  // again whenever a restarted brickd (fewer bricks than attached) answers.
  bool external = false;
  std::chrono::milliseconds external_poll{500};
  std::chrono::milliseconds ready_timeout{30000};
  std::chrono::milliseconds rpc_timeout{10000};
};

class BrickdSupervisor {
 public:
  // on_ready: attaches the bricks to a brickd that just became ready (called
  //   from Start and from the monitor thread, never concurrently).
  // on_port: a brickd started with port 0 chose this port (persist it).
  BrickdSupervisor(SupervisorOptions options, std::function<Status()> on_ready,
                   std::function<Status(int port)> on_port);
  ~BrickdSupervisor();
  BrickdSupervisor(const BrickdSupervisor&) = delete;
  BrickdSupervisor& operator=(const BrickdSupervisor&) = delete;

  // Adopts or starts brickd, waits until it is ready, calls on_ready, and
  // starts the monitor. An error means brickd could not be started.
  Status Start();
  // Stops the monitor, then sends brickd SIGTERM and waits up to `grace` for
  // it to exit (SIGKILL after that). Idempotent.
  void Stop(std::chrono::milliseconds grace);

  // brickd's data address host:port (known once Start succeeded).
  std::string address() const;
  // Pid of the running brickd, 0 if none.
  pid_t pid() const;
  // True while brickd runs with its bricks attached.
  bool up() const { return up_.load(); }
  // Why it is not up ("" when up).
  std::string down_reason() const;
  uint64_t restarts() const { return restarts_.load(); }
  bool adopted() const { return adopted_.load(); }

  // BrickAdmin calls to the running brickd (UNAVAILABLE when there is none).
  // `timeout` 0: the default RPC timeout. Attaching a brick that was not
  // closed cleanly recounts its usage, which takes time with many files.
  StatusOr<bpb::AttachReply> Attach(const bpb::AttachRequest& request,
                                    std::chrono::milliseconds timeout = {});
  Status Detach(const std::string& brick_id);
  StatusOr<bpb::ListBricksReply> ListBricks();
  StatusOr<bpb::BrickInfo> SetCapacity(const std::string& brick_id, uint64_t capacity_bytes);

 private:
  Status TryAdopt(bool* adopted);
  Status SpawnAndWait();
  Status WaitReady(pid_t pid, int pidfd, int* port);
  void Connect(int port);
  void MonitorLoop();
  // external: polls brickd, re-attaches the bricks after it restarted.
  void ExternalLoop();
  // external: one poll; true iff brickd answers with every brick attached.
  bool ExternalCheck(size_t* attached);
  // Reaps (when it is our child) and closes the pidfd of a brickd that exited.
  std::string ReapLocked();
  void KillAndWait(int pidfd, pid_t pid, bool child, std::chrono::milliseconds grace);
  Status WritePidFile(pid_t pid, int port);
  bool Stopping() const;
  // Waits up to `d`; false if Stop was requested meanwhile.
  bool SleepUnlessStopped(std::chrono::milliseconds d);
  std::shared_ptr<bpb::BrickAdmin::Stub> stub() const;
  template <class Req, class Rep>
  Status CallAdmin(grpc::Status (bpb::BrickAdmin::Stub::*method)(grpc::ClientContext*, const Req&,
                                                                 Rep*),
                   const Req& req, Rep* rep, std::chrono::milliseconds timeout);
  std::string pid_file() const;
  std::string ready_file() const;
  std::string listen_arg() const;

  const SupervisorOptions options_;
  const std::function<Status()> on_ready_;
  const std::function<Status(int)> on_port_;

  mutable std::mutex mu_;
  pid_t pid_ = 0;       // GUARDED_BY(mu_)
  int pidfd_ = -1;      // GUARDED_BY(mu_)
  bool child_ = false;  // GUARDED_BY(mu_): we started it (and must reap it)
  int port_ = 0;        // GUARDED_BY(mu_)
  std::string down_reason_ = "brickd not started yet";  // GUARDED_BY(mu_)
  std::shared_ptr<bpb::BrickAdmin::Stub> stub_;         // GUARDED_BY(mu_)

  std::atomic<bool> up_{false};
  // external: bricks attached at the last (re)attach; Start, then the monitor thread only.
  size_t external_attached_ = 0;
  std::atomic<bool> adopted_{false};
  std::atomic<uint64_t> restarts_{0};
  int stop_fd_ = -1;  // eventfd, readable once Stop was called
  std::atomic<bool> stopped_{false};
  // BrickAdmin calls in flight, cancelled by Stop (an attach may take long).
  std::mutex calls_mu_;
  std::set<grpc::ClientContext*> calls_;  // GUARDED_BY(calls_mu_)
  bool calls_closed_ = false;             // GUARDED_BY(calls_mu_)
  std::thread monitor_;
};

// The brickd to run: `flag` if set; else "brickd" beside the running
// executable; else the first "brickd" in $PATH. NotFound naming the places tried.
StatusOr<std::string> FindBrickdBinary(const std::string& flag);

}  // namespace cairn::storaged
