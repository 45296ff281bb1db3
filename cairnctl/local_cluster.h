// `cairnctl local up|down`: a whole Cairn cluster on this machine.
//
// DIR (default ~/.cairn/local) holds everything:
//   admin.key user.key join.key   the provisioner's JWT keys (0600, random)
//   node.token data.token         storaged's admin token and the data token
//   local.json                    what was asked for: nodes, device size, ports
//   cluster.json                  what runs: pids, addresses, mounts (gone after `down`)
//   provisioner.db                the provisioner's store
//   node-I/                       storaged I's state dir, with its device node-I/device
//   logs/NAME.log                 each process's stdout and stderr
//
// Processes get their own session and no parent-death signal: they outlive
// cairnctl. They are stopped by pid only, after checking /proc/PID/cmdline.
//
//   LocalUpOptions o;  o.dir = "/tmp/c";  o.context_path = "/tmp/c/config";
//   CAIRN_RETURN_IF_ERROR(LocalUp(o, std::cout));
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "common/status.h"

namespace cairn::ctl {

struct LocalUpOptions {
  std::string dir;  // absolute
  // Unset: the value recorded in DIR/local.json, else the default.
  std::optional<int> nodes;                // default 3
  std::optional<int64_t> device_size_gib;  // default min(100, free space of DIR's fs / nodes)
  std::optional<int> port;                 // provisioner; default 8080; 0: any
  std::optional<int> storaged_port;        // default 24007 (brickd: +2); 0: any
  std::string context_path;                // written on success
  std::chrono::milliseconds ready_timeout{30000};     // per process
  std::chrono::milliseconds register_timeout{30000};  // all nodes registered
  std::chrono::milliseconds stop_timeout{15000};      // rollback after a failure
};

// Starts (or restarts, or finds running) the cluster in `options.dir`,
// writes the context file and prints a summary to `out`. On a failure what
// this call started is stopped again.
Status LocalUp(const LocalUpOptions& options, std::ostream& out);

struct LocalDownOptions {
  std::string dir;  // absolute
  bool purge = false;
  std::string context_path;  // removed with --purge if it points at DIR
  std::chrono::milliseconds stop_timeout{15000};
};

// Unmounts the recorded mounts, stops the recorded processes (SIGTERM, then
// SIGKILL after the timeout), forgets them; --purge removes DIR.
Status LocalDown(const LocalDownOptions& options, std::ostream& out);

// Records a `volume mount` of the local cluster in DIR/cluster.json so that
// `local down` unmounts it (no-op when nothing runs there); and forgets one.
Status RecordLocalMount(const std::string& dir, const std::string& mountpoint,
                        const std::string& volume);
Status ForgetLocalMount(const std::string& dir, const std::string& mountpoint);

// The provisioner URL recorded in DIR/cluster.json, or "" when none.
std::string LocalServerUrl(const std::string& dir);

// ---------------------------------------------------------------------------
// Pieces, exposed for tests.

// A program: beside `exe_dir`, else `exe_dir`/../`build_subdir`/`name` (the
// build tree), else on `path_env` ($PATH). NotFound lists where it looked.
StatusOr<std::string> FindBinaryIn(const std::string& exe_dir, const std::string& name,
                                   const std::string& build_subdir, const std::string& path_env);
// The same from this executable's directory and $PATH.
StatusOr<std::string> FindBinary(const std::string& name, const std::string& build_subdir);

// True iff `pid` runs `binary` (same base name as argv[0]) with `marker`
// among its arguments.
bool ProcessMatches(pid_t pid, const std::string& binary, const std::string& marker);

// Ok iff host:port can be bound now (port 0: always). The error names it.
Status CheckPortFree(const std::string& host, int port, const std::string& hint);

// Default device size: min(100, free GiB of the fs at `dir` / nodes), at least 1.
StatusOr<int64_t> DefaultDeviceSizeGib(const std::string& dir, int nodes);

// Last `lines` lines of a file ("" if unreadable).
std::string TailFile(const std::string& path, size_t lines = 20);

// Absolute form of `path` ("~/" is $HOME; relative is from the working dir).
std::string AbsolutePath(const std::string& path);

}  // namespace cairn::ctl
