// bench_util: what the benchmarks in bench/ share (library cairn_bench_util).
//
// Every benchmark here starts daemons of its own (brickd, storaged, a private glusterd, FUSE
// clients), measures, prints a report with GlusterFS side by side, and must leave nothing behind
// on any exit path, Ctrl-C included. This library holds the pieces for that:
//
//   - signals: InstallSignalThread() turns SIGINT/SIGTERM/SIGHUP into a flag (Interrupted(),
//     CheckInterrupted()) that the benchmark checks between steps, so that it unwinds through its
//     normal cleanup;
//   - child processes: Spawn(), ChildProcess (a daemon, stopped by pid), RunCommand() (a command
//     with captured output and a deadline), FindExecutable(), WaitForReadyFile();
//   - /proc readers: process status and I/O counters, command lines, the process tree, listening
//     TCP sockets, mounts;
//   - TempDir (the fresh directory everything lives in) and FuseMount (a FUSE daemon started in
//     the foreground, unmounted and stopped in order);
//   - workload helpers: UniqueFd, WriteAll, RunJobs (jobs released together, timed);
//   - statistics (nearest-rank percentiles) and report helpers: MachineInfo, Table, SideReport,
//     EmitResult (the JSON line and --json FILE);
//   - GlusterFS: the brick-host choice (loopback only), preflight checks, GlusterDaemon (a private
//     glusterd whose state, run files, socket and logs live in our directory, and which cleans up
//     what glusterd adds to the system directories) and GlusterCluster (a replica-N volume on it,
//     FUSE-mounted).
//
// Rules every piece follows: processes are only ever stopped by the pid this program started or
// found below its own directory, never by name; children run in their own process group (a
// Ctrl-C reaches only the benchmark, which stops them in order) and get SIGTERM from the kernel
// should the benchmark be SIGKILLed; every blocking wait has a deadline and wakes on a signal.
// Progress goes to stderr, reports to stdout. See bench/README.md.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/file_util.h"
#include "common/flags.h"
#include "common/status.h"
#include "proto/brick.grpc.pb.h"

namespace cairn::bench {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using nlohmann::json;

// ---- Time and errors.

double MsBetween(Clock::time_point a, Clock::time_point b);
double SecondsBetween(Clock::time_point a, Clock::time_point b);
std::string ErrnoText(int err);
// `what path: strerror(errno)`, carrying errno.
Status ErrnoStatus(std::string_view what, const std::string& path);

// ---- Program name and signals.

// Blocks SIGINT/SIGTERM/SIGHUP in every thread (call it first in main, before any thread
// exists) and starts a thread that waits for them: a signal only sets the flag below and prints
// "PROGRAM: interrupted; cleaning up". SIGPIPE is ignored. `program` names the benchmark in
// messages (ProgramName()).
void InstallSignalThread(std::string program);
const std::string& ProgramName();
// True once a signal came.
bool Interrupted();
// Aborted("interrupted by signal N (...)") once a signal came, else Ok.
Status CheckInterrupted();
// Sleeps `ms` milliseconds, waking early on a signal.
void SleepMs(int ms);
// `s` without leading spaces and trailing spaces and line ends.
std::string Trimmed(std::string s);
// 130 once a signal came, else 0 if `ok`, else 1: the benchmarks' exit status.
int ExitCode(bool ok);

// Parses the flags. Returns an exit status when the program should stop now: 0 after printing
// the usage for --help, 2 (with a message) for bad flags or positional arguments.
std::optional<int> ParseFlagsOrExit(Flags& flags, int argc, char** argv);

// --only: "cairn", "gluster" or "both"; false (with a message) for anything else.
bool ParseOnly(const std::string& only, bool* cairn, bool* gluster);

// ---- Text.

std::vector<std::string> SplitWhitespace(std::string_view s);
std::string Join(const std::vector<std::string>& parts, std::string_view sep);
// The whole file, or nullopt if it cannot be read.
std::optional<std::string> ReadText(const std::string& path);
// The last `lines` lines of a log file, indented, for error messages.
std::string LogTail(const fs::path& path, size_t lines = 20);

// ---- /proc readers.

// A numeric field of a "Key: value" file of /proc/<pid>/ ("status": VmRSS in KiB, Threads; "io":
// rchar, wchar, read_bytes, write_bytes), or -1 if unreadable.
int64_t ProcFieldNumber(pid_t pid, std::string_view file, std::string_view key);
inline int64_t ProcStatusNumber(pid_t pid, std::string_view key) {
  return ProcFieldNumber(pid, "status", key);
}
// The sum of ProcStatusNumber over `pids` (unreadable ones count 0); -1 for no pids.
int64_t SumProcStatus(const std::vector<pid_t>& pids, std::string_view key);
std::vector<pid_t> AllPids();
// Parent pid and state letter from /proc/<pid>/stat; ppid -1 if the process is gone.
std::pair<pid_t, char> ProcParentAndState(pid_t pid);
// True while `pid` exists and is not a zombie.
bool ProcessAlive(pid_t pid);
// Waits up to `timeout` for /proc/PID to vanish: the process has exited AND been reaped (by us,
// or by init for a daemon). Until then it is a zombie that e.g. glusterd still counts as running
// (its pid file check only looks for /proc/PID). True iff it vanished.
bool WaitReaped(pid_t pid, std::chrono::milliseconds timeout);
// Every live process below `root` in the process tree.
std::vector<pid_t> Descendants(pid_t root);
// Live processes (other than this one and `except`) whose command line contains `needle`.
std::vector<pid_t> ProcessesNaming(const std::string& needle, pid_t except);
// Live processes whose executable's file name (argv[0]'s last component) is `name`.
std::vector<pid_t> ProcessesCalled(const std::string& name);
// SIGTERM to one process by pid, SIGKILL if it is still there 5 s later.
void KillByPid(pid_t pid);
// Waits up to `timeout` for the processes (other than `except`) naming `needle` to end by
// themselves, then kills those left by pid. Returns one line per process killed:
// "pid N (CMDLINE) still running after WHEN; killed it".
std::vector<std::string> ReapProcessesNaming(const std::string& needle, pid_t except,
                                             std::chrono::milliseconds timeout,
                                             std::string_view when);

struct ListenSocket {
  std::string address;
  int port = 0;
  uint64_t inode = 0;
  std::string role;  // what the process says the port is for, if known
  std::string ToString() const;
};
// Every TCP socket in LISTEN state in the network namespace of `pid` ("self" for ours).
std::vector<ListenSocket> ListeningInNamespace(const std::string& pid);
// The listening TCP sockets that `pid` holds open: LISTEN entries of /proc/<pid>/net/tcp{,6}
// whose socket inode is among /proc/<pid>/fd's links.
std::vector<ListenSocket> ListeningSocketsOf(pid_t pid);
// The LISTEN socket of our network namespace on `port`, if any.
std::optional<ListenSocket> TcpPortListening(int port);
std::string DescribeSockets(const std::vector<ListenSocket>& sockets);
json SocketsJson(const std::vector<ListenSocket>& sockets);

// ---- Mounts (/proc/self/mountinfo).

// common/file_util.h reads the table (ReadMountTable, TopMountAt).
using MountEntry = MountInfoLine;
// The mount holding `path`: the longest mount point that is a prefix of it.
std::optional<MountEntry> MountContaining(const fs::path& path);

// ---- Processes this program starts.

// Forks and execs argv[0] (a path: no PATH search) with stdin from /dev/null, stdout on
// `stdout_fd` and stderr on `stderr_fd`. The child gets its own process group (a Ctrl-C reaches
// only this program, which then stops its children in order) and SIGTERM should this program die
// first.
StatusOr<pid_t> Spawn(const std::vector<std::string>& argv, int stdout_fd, int stderr_fd);
// "exit 0", "killed by signal 9 (Killed)", ...
std::string DescribeWaitStatus(int status);

// A daemon this program started. Stopped by pid (SIGTERM, then SIGKILL) when destroyed.
class ChildProcess {
 public:
  // Starts argv with stdout and stderr appended to `log_path`.
  static StatusOr<std::unique_ptr<ChildProcess>> Start(std::string name,
                                                       const std::vector<std::string>& argv,
                                                       const fs::path& log_path);
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess();

  pid_t pid() const { return pid_; }
  const std::string& name() const { return name_; }

  // True until the process has exited (and then reaps it).
  bool Running();
  // How it ended, e.g. "exit 0" or "killed by signal 9 (Killed)"; "running" before that.
  std::string Ended() const;
  bool ExitedCleanly() const { return ExitCode() == 0; }
  // The exit code once it has exited normally; -1 while running, if killed by a signal or gone.
  int ExitCode() const;
  // Waits up to `d` for the process to exit by itself; true iff it did.
  bool WaitFor(std::chrono::milliseconds d);
  // SIGTERM, up to `grace` to exit, then SIGKILL. Returns the milliseconds the exit took after
  // SIGTERM; sets needed_sigkill() when SIGTERM was not enough.
  double Stop(std::chrono::milliseconds grace);
  // SIGKILL now (a crash, on purpose), then reaps it.
  void Kill();
  bool needed_sigkill() const { return needed_sigkill_; }

 private:
  ChildProcess(std::string name, pid_t pid) : name_(std::move(name)), pid_(pid) {}
  void Poll();

  std::string name_;
  pid_t pid_;
  bool reaped_ = false;
  bool needed_sigkill_ = false;
  int wait_status_ = 0;
};

struct CommandResult {
  int exit_code = -1;  // 128 + signal when killed by a signal
  std::string output;  // stdout and stderr (stderr only with discard_stdout)
  double seconds = 0;  // wall clock from fork to reaping
  double ms() const { return seconds * 1000.0; }
};

// Runs argv to completion with its output captured, killing it (by pid) after `timeout` or on a
// signal to this program (unless !interruptible). With `discard_stdout` its stdout goes to
// /dev/null and only stderr is captured, so that the time measured is the command's own.
StatusOr<CommandResult> RunCommand(const std::vector<std::string>& argv,
                                   std::chrono::milliseconds timeout, bool interruptible,
                                   bool discard_stdout = false);

// Stops a `perf record` child: SIGINT (perf then writes its data and exits), up to 30 s, then
// SIGTERM/SIGKILL. Does nothing if it has already exited.
void StopPerfRecord(ChildProcess& perf);
// `perf report --stdio --no-children -i DATA ARGS...`: its first `top` rows (lines with a '%'),
// trimmed and cut to `width` characters (C++ template names run for pages), after the
// "Samples: ..." line if `with_samples`. On failure, one line saying what went wrong.
std::vector<std::string> PerfReportRows(const std::string& perf, const fs::path& data,
                                        const std::vector<std::string>& args, int top, size_t width,
                                        bool with_samples);

// The full path of an executable: `name` itself if it has a slash, else the first match in
// PATH (plus the sbin and bin directories, where glusterd lives). Empty if there is none.
std::string FindExecutable(const std::string& name);

// Polls for the JSON ready file a daemon writes once it serves (brickd, storaged), up to
// `timeout`; fails early, with the end of `log`, if the daemon exits first.
StatusOr<json> WaitForReadyFile(ChildProcess& daemon, const fs::path& ready, const fs::path& log,
                                std::chrono::milliseconds timeout);
// An integer member of a JSON object; -1 if missing or not an integer.
int JsonInt(const json& j, const char* key);

// PermissionDenied(`not_root`) unless this program runs as root; FailedPrecondition unless
// /dev/fuse is usable.
Status CheckRootAndFuse(std::string_view not_root);
// NotFound("no WHAT executable at PATH" + hint) unless `path` is executable.
Status CheckExecutable(const std::string& path, std::string_view what, std::string_view hint);

// ---- The temporary directory everything lives in.

class TempDir {
 public:
  // mkdtemp of PARENT/PREFIX-XXXXXX. Removed when destroyed (unless `keep`), but never while
  // something is still mounted below it.
  static StatusOr<std::unique_ptr<TempDir>> Create(const std::string& parent,
                                                   const std::string& prefix, bool keep);
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir();
  const fs::path& path() const { return path_; }

 private:
  TempDir(fs::path path, bool keep) : path_(std::move(path)), keep_(keep) {}
  fs::path path_;
  bool keep_;
};

// ---- A FUSE mount served by a daemon this program started in the foreground.

class FuseMount {
 public:
  static constexpr auto kMountTimeout = std::chrono::seconds(20);

  // Starts the daemon (argv, output appended to `log`) and waits up to kMountTimeout for a
  // fuse* mount at `mountpoint`, then for the mount to answer a stat. `clean_exits` are the exit
  // codes that mean the daemon ended normally after the unmount.
  static StatusOr<std::unique_ptr<FuseMount>> Start(std::string name,
                                                    const std::vector<std::string>& argv,
                                                    fs::path mountpoint, fs::path log,
                                                    std::set<int> clean_exits = {0});
  FuseMount(const FuseMount&) = delete;
  FuseMount& operator=(const FuseMount&) = delete;
  ~FuseMount();

  const fs::path& mountpoint() const { return mountpoint_; }
  const std::string& fstype() const { return fstype_; }
  pid_t pid() const { return daemon_ != nullptr ? daemon_->pid() : 0; }

  // Unmounts (saying so on stderr; lazily if still busy after 5 s), waits up to 10 s for the
  // daemon to exit, then stops it by pid. What went wrong is appended to `problems`. Idempotent.
  void Unmount(std::vector<std::string>* problems);
  // Unmount() of `mount` unless it is null.
  static void Unmount(const std::unique_ptr<FuseMount>& mount, std::vector<std::string>* problems);

 private:
  FuseMount(std::string name, fs::path mountpoint, fs::path log, std::set<int> clean_exits)
      : name_(std::move(name)),
        mountpoint_(std::move(mountpoint)),
        log_(std::move(log)),
        clean_exits_(std::move(clean_exits)) {}

  std::string name_;
  fs::path mountpoint_;
  fs::path log_;
  std::set<int> clean_exits_;
  std::unique_ptr<ChildProcess> daemon_;
  std::string fstype_;
  bool done_ = false;
};

// ---- brickd's admin and data API, one gRPC channel.

class BrickdClient {
 public:
  // `node` is host:port.
  BrickdClient(const std::string& node, std::string admin_token, std::string data_token);
  // Waits up to `timeout` for the channel to connect.
  bool WaitForConnected(std::chrono::milliseconds timeout);

  // capacity 0: only the file system's limit.
  Status Attach(const std::string& id, const std::string& path, uint64_t capacity,
                brick::v1::AttachReply* reply);
  Status Detach(const std::string& id);
  StatusOr<brick::v1::ListBricksReply> ListBricks();
  // With the data token, as a client would.
  Status StatFs(const std::string& id, brick::v1::StatFsReply* reply);

 private:
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<brick::v1::BrickAdmin::Stub> admin_;
  std::unique_ptr<brick::v1::Brick::Stub> brick_;
  std::string admin_token_;
  std::string data_token_;
};

// ---- Workload helpers.

// Fills `buf` with pseudo-random bytes from `seed` (never zeros: compression and sparse files
// must not flatter anyone).
void FillRandom(std::vector<char>* buf, uint64_t seed);

// An owned file descriptor. Close() reports close's error, which on FUSE carries flush errors.
class UniqueFd {
 public:
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd();
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  // Closes now; false (errno set) if close failed.
  bool Close();

 private:
  int fd_;
};

// write() until all `n` bytes are written; `path` names the file in errors.
Status WriteAll(int fd, const char* data, size_t n, const std::string& path);
// Creates `path` (O_EXCL), writes `data` in one write, closes it (close's error counts).
Status WriteNewFile(const std::string& path, const std::vector<char>& data);
// Writes `mib` MiB of pseudo-random data (from `seed`; the MiB index stamped into each, so no two
// are alike) to `path` (created or truncated), 1 MiB per write, then fsync and close. Calls
// before_mib(index, fd) before writing each MiB, if given; stops early on a signal.
Status WriteSequentialFile(const std::string& path, int64_t mib, uint64_t seed,
                           const std::function<Status(int64_t index, int fd)>& before_mib = {});
// Reads to EOF into `buf` (reused), returning the byte count.
StatusOr<int64_t> ReadToEnd(int fd, std::vector<char>* buf, const std::string& path);

// Whether the jobs of a phase should stop early: one of them failed, or a signal came.
class StopFlag {
 public:
  bool stopped() const { return stop_.load(std::memory_order_relaxed) || Interrupted(); }
  void Set() { stop_.store(true); }

 private:
  std::atomic<bool> stop_{false};
};

// Runs body(job) on `jobs` threads released together; returns the wall time in seconds from the
// release to the end of the last one. The first error wins; the other jobs see the StopFlag and
// end early.
StatusOr<double> RunJobs(int jobs, const std::function<Status(int job, const StopFlag&)>& body);
// How many of `total` items job `job` of `jobs` handles.
int ItemsOf(int total, int jobs, int job);

// ---- Statistics.

struct LatencyStats {
  size_t n = 0;
  double p50 = 0, p99 = 0, max = 0, mean = 0;
};
// Nearest-rank percentiles of milliseconds.
LatencyStats Summarize(std::vector<double> ms);
double Round(double v, int digits);
// {"n","p50_ms","p99_ms","max_ms","mean_ms"}, null for no samples.
json LatencyJson(const LatencyStats& s);
std::string LatencyText(const LatencyStats& s);

// ---- Report helpers.

// What the machine was like at the start: other load skews the figures, so every report says.
struct MachineInfo {
  unsigned cpus = 0;
  std::string kernel;  // "Linux 6.1.0-..."
  std::string load1;   // 1-minute load average
  static MachineInfo Read();
  json Json() const;             // {"cpus","kernel","loadavg_1m_at_start"}
  std::string Describe() const;  // "2 CPUs, load average 0.42 at start, Linux 6.1.0-..."
};

std::string Kib(int64_t v);  // "123 KiB", "n/a" for < 0
std::string OptNum(const std::optional<double>& v, int digits = 1);
json OptJson(const std::optional<double>& v, int digits = 2);
json PidsJson(const std::vector<pid_t>& pids);
// a / b; nullopt if either is missing or b is 0.
std::optional<double> Ratio(std::optional<double> a, std::optional<double> b);

// A text table of fixed-width columns: the first left-aligned, the others right-aligned and
// separated by two spaces; a width of 0 means no padding (a last "verdict" column).
class Table {
 public:
  explicit Table(std::vector<int> widths, std::string indent = "  ")
      : widths_(std::move(widths)), indent_(std::move(indent)) {}
  std::string Format(const std::vector<std::string>& cells) const;
  // A row on stdout.
  void Print(const std::vector<std::string>& cells) const;
  // A header row on stdout whose first cell starts at the margin, not the indent.
  void PrintHeader(const std::vector<std::string>& cells) const;

 private:
  std::vector<int> widths_;
  std::string indent_;
};

// One side of a side-by-side benchmark (Cairn or GlusterFS): what it ran on and what went wrong.
struct SideReport {
  std::string name;                   // "cairn" or "gluster": progress prefix and JSON key
  bool measured = false;              // requested and attempted
  std::string target;                 // what the workloads ran on, for humans
  std::string error;                  // why figures are missing; empty if none are
  std::vector<std::string> problems;  // cleanup trouble and the like: make the run fail
  std::vector<std::string> notes;     // worth knowing, but the figures stand
};
// "  TITLE  target", then FAILED / note / problem lines; "not measured (--only)" if !measured.
void PrintSide(const std::string& title, const SideReport& side);
// {"target","error","notes","problems"}, or {"skipped": ...} when !measured.
json SideReportJson(const SideReport& side);
// When `requested`: marks the side measured and runs `measure`, whose error becomes side->error
// (and is printed as "NAME: FAILED: ..."). Does nothing once a signal came.
void MeasureSide(SideReport* side, bool requested, const std::function<Status()>& measure);
// "NAME: error" and "NAME: problem" of every side, for the report's FAILED list.
std::vector<std::string> SideFailures(const std::vector<const SideReport*>& sides);
// Prints the FAILED list (if any) on stdout.
void PrintFailures(const std::vector<std::string>& failures);
// Prints `out` as one JSON line (the last line of stdout) and, with `json_file`, writes it
// indented to that file.
Status EmitResult(const json& out, const std::string& json_file);

// ---- The frame of a run: what every benchmark's main does before and after its own part.

struct GlusterOptions {
  std::string glusterd = "glusterd";  // executables: PATH and sbin searched
  std::string gluster_cli = "gluster";
  std::string glusterfs = "glusterfs";  // the FUSE client
  std::string host;                     // brick host; empty: hostname if loopback-only, else
                                        // 127.0.0.2
};

// The flags every side-by-side benchmark (Cairn vs GlusterFS) has.
struct CommonOptions {
  bool quick = false;  // --quick: smoke-run sizes (each benchmark's own)
  bool run_cairn = true;
  bool run_gluster = true;  // --only cairn|gluster|both
  bool keep = false;
  std::string json_file;
  std::string workdir;
  uint64_t seed = 0;  // never 0 once read: a random one then
  GlusterOptions gluster;
};
// --quick, --only, --keep, --json, --workdir, --seed and the GlusterFS flags (with the FUSE
// client).
void AddCommonFlags(Flags& flags, const std::string& quick_help, const std::string& keep_help,
                    const std::string& seed_help);
// Reads them into `opt`; false (with a message) for a bad --only.
bool ReadCommonFlags(const Flags& flags, CommonOptions* opt);
// The value of integer flag `name`, or `quick_value` with --quick unless the flag was given.
int64_t QuickSized(const Flags& flags, const CommonOptions& opt, const char* name,
                   int64_t quick_value);

struct RunFrame {
  std::unique_ptr<TempDir> tmp;  // everything the run makes lives below tmp->path()
  MachineInfo machine;
  std::string gluster_version;  // "10.3"; empty if unknown
  std::string gluster_title;    // "GlusterFS 10.3" (or "GlusterFS")
  std::string sizes;            // what the run does, one line, for the report
  const fs::path& root() const { return tmp->path(); }
};

// Checks `preflight` ("PROGRAM: cannot run: ..."), makes the temporary directory PREFIX-XXXXXX
// under `workdir`, reads the machine and GlusterFS's version (`version_exe --version`; none if
// empty) and, unless `sizes` is empty, says what the run does on stderr. Returns the exit status
// to stop with (1) if something failed; fills `frame` otherwise.
std::optional<int> OpenRun(const Status& preflight, const std::string& workdir,
                           const std::string& prefix, bool keep, const std::string& version_exe,
                           std::string sizes, RunFrame* frame);
// The run of a side-by-side benchmark up to its report: OpenRun (PREFIX-XXXXXX under
// --workdir, GlusterFS's version from --glusterfs), then Cairn's side and GlusterFS's side
// measured in that order (MeasureSide, names "cairn" and "gluster"), then the report's heading:
// "PROGRAM: Cairn vs GlusterFS 10.3, same run, same machine (...)", the sizes and what each side
// ran on. Returns the exit status to stop with: 1 if the run could not start, 130 once a signal
// came.
std::optional<int> RunBothSides(const Status& preflight, const CommonOptions& opt,
                                const std::string& prefix, std::string sizes, RunFrame* frame,
                                SideReport* cairn,
                                const std::function<Status(const RunFrame&)>& measure_cairn,
                                SideReport* gluster,
                                const std::function<Status(const RunFrame&)>& measure_gluster);
// Adds "failures" (SideFailures) and "ok" to `out`, prints the failures, emits the JSON
// (EmitResult) and returns the exit status: 0 if nothing failed, else 1.
int FinishRun(json out, const std::vector<const SideReport*>& sides, const std::string& json_file);

// ---- GlusterFS.

constexpr int kGlusterdPort = 24007;

// --gluster-host, --glusterd, --gluster-cli and (with `fuse_client`) --glusterfs.
void AddGlusterFlags(Flags& flags, bool fuse_client);
GlusterOptions GlusterOptionsFromFlags(const Flags& flags, bool fuse_client);

// The brick host for gluster: a name (or 127.x.y.z address) that resolves to loopback
// addresses only; gluster itself refuses "localhost" and "127.0.0.1" as brick hosts. Returns
// the name and its IPv4 address.
StatusOr<std::pair<std::string, std::string>> GlusterBrickHost(const std::string& wanted);
// The brick host to use: `wanted`, else this machine's name if it is loopback-only, else
// 127.0.0.2 (any 127.x address counts as local to gluster).
StatusOr<std::pair<std::string, std::string>> ChooseGlusterHost(const std::string& wanted);
// "10.3" from `EXE --version` (glusterfs or gluster); empty if it cannot be run.
std::string GlusterVersion(const std::string& exe);
// NotFound, naming the missing program and `hint`, unless glusterd, gluster and (with
// `fuse_client`) glusterfs are installed.
Status CheckGlusterInstalled(const GlusterOptions& opt, bool fuse_client, std::string_view hint);
// FailedPrecondition if a glusterd is running already or its port is taken: the benchmarks
// start their own private glusterd and never touch another one. `hint` ends the message.
Status CheckNoOtherGlusterd(std::string_view hint);
// What a GlusterCluster needs: CheckGlusterInstalled (with the FUSE client; `install_hint`),
// CheckNoOtherGlusterd (`running_hint`) and a usable brick host.
Status CheckGlusterClusterCanStart(const GlusterOptions& opt, std::string_view install_hint,
                                   std::string_view running_hint);

// What `gluster volume status VOLUME detail` says of one brick.
struct GlusterBrickStatus {
  std::string brick;  // HOST:PATH
  bool online = false;
  pid_t pid = 0;
  int port = 0;
};

// A private glusterd --no-daemon: its working directory (state), run directory, unix socket and
// logs live in `dir`; it binds the brick host's loopback address only. Stop() (also run by the
// destructor) stops and deletes the volumes still there, makes sure every process naming `dir`
// is gone (by pid), stops glusterd, and removes the sockets and empty entries glusterd adds to
// /var/lib/glusterd, /var/run/gluster and /var/log/glusterfs even with a private directory (and
// the glfsheal-VOLUME.log that `gluster volume heal VOLUME info` always writes there).
class GlusterDaemon {
 public:
  GlusterDaemon(GlusterOptions opt, fs::path dir) : opt_(std::move(opt)), dir_(std::move(dir)) {}
  GlusterDaemon(const GlusterDaemon&) = delete;
  GlusterDaemon& operator=(const GlusterDaemon&) = delete;
  ~GlusterDaemon() { Stop(); }

  // Chooses the brick host, makes DIR/{state,run,logs,bricks}, starts glusterd and waits up to
  // 20 s for it to answer `volume list`.
  Status Start();

  const fs::path& dir() const { return dir_; }
  const std::string& host() const { return host_; }
  const std::string& address() const { return address_; }
  pid_t pid() const { return glusterd_ != nullptr ? glusterd_->pid() : 0; }

  // `gluster --mode=script --glusterd-sock=... ARGS` (2 min deadline).
  StatusOr<CommandResult> Cli(const std::vector<std::string>& args, bool interruptible = true);
  // A CLI command that must succeed (exit 0).
  StatusOr<CommandResult> CliOk(const std::vector<std::string>& args);

  // `volume create NAME ARGS...`, `volume start NAME [force]`, `volume stop NAME`, `volume
  // delete NAME`, which must succeed; remembered, so that Stop() undoes what is left.
  StatusOr<CommandResult> CreateVolume(const std::string& name,
                                       const std::vector<std::string>& args);
  StatusOr<CommandResult> StartVolume(const std::string& name, bool force = false);
  StatusOr<CommandResult> StopVolume(const std::string& name);
  StatusOr<CommandResult> DeleteVolume(const std::string& name);

  // `gluster volume heal VOLUME info summary`, i.e. glfsheal VOLUME info-summary, told our
  // glusterd's socket: the CLI launches glfsheal without it, and glfsheal then asks the default
  // socket, where no glusterd of ours listens ("Not able to fetch volfile from glusterd").
  StatusOr<CommandResult> HealInfoSummary(const std::string& volume);

  // The bricks of `volume status NAME detail`, in volume order.
  StatusOr<std::vector<GlusterBrickStatus>> BrickStatus(const std::string& volume);
  // Polls BrickStatus until at least `bricks` bricks are online, up to `timeout`.
  Status WaitForBricksOnline(const std::string& volume, int bricks,
                             std::chrono::milliseconds timeout);
  // The live glusterfsd processes serving bricks under our directory (remembering their unix
  // sockets for cleanup).
  std::vector<pid_t> BrickProcesses();

  // Idempotent. `shutdown`, if given, says how glusterd ended.
  void Stop(std::string* shutdown = nullptr);
  const std::vector<std::string>& problems() const { return problems_; }

 private:
  void Problem(std::string what);
  // Remembers the unix sockets (-S PATH) of the gluster processes naming our directory.
  void RememberSockets();

  const GlusterOptions opt_;
  const fs::path dir_;
  std::string glusterd_bin_, cli_bin_, host_, address_, sock_;
  fs::path glusterd_log_;
  std::unique_ptr<ChildProcess> glusterd_;
  std::vector<std::string> created_;    // volumes created and not yet deleted, in order
  std::set<std::string> ever_created_;  // for their glfsheal-VOLUME.log
  std::set<std::string> started_;       // volumes started and not yet stopped
  std::set<std::string> sockets_;
  std::map<std::string, std::set<std::string>> before_;
  std::vector<std::string> problems_;
  bool stopped_ = false;
};

// A Cairn volume spec (client/spec.h) of one replicated subvolume: a random volume_id, type
// "replicate", replica = the number of bricks, generation 1, no size limit. Each brick is
// {"node": brickd HOST:PORT, "brick_id": ID}.
json ReplicatedVolumeSpec(const std::string& name, const json& bricks);

// A GlusterDaemon with one replica-N volume of N bricks (DIR/bricks/b1..bN, on this host, so
// `force`), started, its bricks online, FUSE-mounted at DIR/mnt with `glusterfs --no-daemon`. No
// option is tuned: GlusterFS defaults.
class GlusterCluster {
 public:
  GlusterCluster(const GlusterOptions& opt, fs::path dir, std::string volume, int replica)
      : daemon_(opt, dir),
        opt_(opt),
        dir_(std::move(dir)),
        volume_(std::move(volume)),
        replica_(replica) {}
  GlusterCluster(const GlusterCluster&) = delete;
  GlusterCluster& operator=(const GlusterCluster&) = delete;
  ~GlusterCluster() { Stop(); }

  // `version` only goes into target().
  Status Start(const std::string& version);

  GlusterDaemon& daemon() { return daemon_; }
  const std::string& volume() const { return volume_; }
  // HOST:PATH of each brick, in volume order.
  const std::vector<std::string>& bricks() const { return bricks_; }
  // DIR/bricks/bI (I from 1) on the local file system.
  fs::path brick_dir(int i) const;
  const fs::path& mountpoint() const { return mount_->mountpoint(); }
  // What the mount is, for humans.
  const std::string& target() const { return target_; }

  // Unmounts, then GlusterDaemon::Stop(). Idempotent.
  void Stop();
  // The problems of the unmount and of the daemon's cleanup.
  std::vector<std::string> problems() const;

 private:
  GlusterDaemon daemon_;
  const GlusterOptions opt_;
  const fs::path dir_;
  const std::string volume_;
  const int replica_;
  std::vector<std::string> bricks_;
  std::unique_ptr<FuseMount> mount_;
  std::string target_;
  std::vector<std::string> problems_;
  bool stopped_ = false;
};

}  // namespace cairn::bench
