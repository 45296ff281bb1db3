// cairn-mount's command line: `cairn-mount [-f] [-d] [-o opt[,opt...]] SOURCE MOUNTPOINT`
// (SOURCE: a spec file, or host[:port][,host[:port]...]:/volume; see fuse/main.cc).
//
//   auto config = ParseMountArgs(argc, argv);
//   if (!config.ok()) { fprintf(stderr, "cairn-mount: %s\n", ...); return 2; }
//   config->fuse_options  // "fsname=vol1,subtype=cairn,default_permissions,..." for libfuse
//
// Options of our own (token_file=, entry_timeout=, ...) are taken out of -o;
// generic mount options that libfuse or the kernel understand (ro, nosuid,
// allow_other, ...) are passed through; anything else is an error here, with
// the option named, rather than a libfuse message later.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"

namespace cairn::fuse {

struct MountConfig {
  std::string spec_path;  // SOURCE: a spec file, or host[:port][,...]:/volume
  std::string mountpoint;

  bool foreground = false;  // -f
  bool debug = false;       // -d: libfuse's request trace (implies -f)
  bool help = false;        // -h / --help
  bool version = false;     // -V / --version

  std::string token_file;  // the bricks' data token; empty: none
  double entry_timeout_s = 1.0;
  double attr_timeout_s = 1.0;
  double negative_timeout_s = 0.0;  // 0: no negative caching (other clients create names)
  std::string log_level = "info";
  std::string log_file;  // empty: stderr (nothing once daemonized)
  bool log_json = false;
  bool allow_other = true;  // default: on iff running as root
  bool read_only = false;
  bool kernel_cache = false;  // keep the page cache across opens (single-client volumes)
  std::string fsname;         // empty: the volume's name
  int max_threads = 32;       // FUSE worker threads
  int max_idle_threads = 10;
  int read_ahead_kib = 1024;        // the mount's bdi read_ahead_kb; 0: the kernel's default
  double connect_timeout_s = 10.0;  // Volume::Open waits this long for quorum
  double rpc_timeout_s = 15.0;      // one brick RPC

  // Generic mount options passed to libfuse as given (ro, nosuid, ...).
  std::vector<std::string> passthrough;

  // The -o string for fuse_session_new: fsname, subtype, default_permissions,
  // allow_other, ro and the pass-through options. `volume_name` is the fsname
  // unless fsname= was given.
  std::string FuseOptions(const std::string& volume_name) const;
};

// Parses argv. Errors are InvalidArgument with the offending argument named.
// With -h or -V the positional arguments are not required.
StatusOr<MountConfig> ParseMountArgs(int argc, const char* const* argv);

// The text printed by -h.
std::string MountUsage();

}  // namespace cairn::fuse
