// cairn-mount's command line parser.
#include "fuse/mount_options.h"

#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <set>
#include <string_view>

namespace cairn::fuse {
namespace {

// Generic options handed to libfuse (fuse_session_new / fusermount3) or the kernel.
const std::set<std::string, std::less<>>& PassthroughFlags() {
  static const auto* flags = new std::set<std::string, std::less<>>{
      "rw",      "nosuid",  "suid",     "nodev",       "dev",        "noexec",       "exec",
      "noatime", "atime",   "relatime", "strictatime", "nodiratime", "diratime",     "sync",
      "async",   "dirsync", "lazytime", "nolazytime",  "allow_root", "auto_unmount",
  };
  return *flags;
}

// Options that mount(8) and fstab add and that mean nothing to us.
bool IsIgnored(std::string_view opt) {
  return opt == "defaults" || opt == "_netdev" || opt == "nofail" || opt == "auto" ||
         opt == "noauto" || opt == "user" || opt == "nouser" || opt == "users" ||
         opt.starts_with("x-") || opt.starts_with("comment=");
}

StatusOr<double> ParseSeconds(std::string_view key, const std::string& value, double max) {
  errno = 0;
  char* end = nullptr;
  double v = std::strtod(value.c_str(), &end);
  if (value.empty() || end == value.c_str() || *end != '\0' || errno != 0 || !std::isfinite(v) ||
      v < 0 || v > max) {
    return Status::InvalidArgument("bad value for " + std::string(key) + ": '" + value +
                                   "' (seconds, 0.." + std::to_string(static_cast<int>(max)) + ")");
  }
  return v;
}

StatusOr<int> ParseCount(std::string_view key, const std::string& value, int min, int max) {
  errno = 0;
  char* end = nullptr;
  long v = std::strtol(value.c_str(), &end, 10);
  if (value.empty() || *end != '\0' || errno != 0 || v < min || v > max) {
    return Status::InvalidArgument("bad value for " + std::string(key) + ": '" + value + "' (" +
                                   std::to_string(min) + ".." + std::to_string(max) + ")");
  }
  return static_cast<int>(v);
}

// Splits an -o argument at commas; a backslash escapes the next character.
std::vector<std::string> SplitOptions(std::string_view s) {
  std::vector<std::string> out(1);
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) {
      out.back() += s[++i];
    } else if (s[i] == ',') {
      out.emplace_back();
    } else {
      out.back() += s[i];
    }
  }
  return out;
}

// Escapes a value for libfuse's -o parser (commas and backslashes).
std::string EscapeOption(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == ',' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

Status ApplyOption(const std::string& opt, MountConfig* c) {
  if (opt.empty() || IsIgnored(opt)) return Status::Ok();
  const auto eq = opt.find('=');
  const std::string key = opt.substr(0, eq);
  const std::string value = eq == std::string::npos ? "" : opt.substr(eq + 1);
  const bool has_value = eq != std::string::npos;
  auto need_value = [&]() -> Status {
    if (!has_value || value.empty()) {
      return Status::InvalidArgument("option " + key + " needs a value (" + key + "=...)");
    }
    return Status::Ok();
  };
  auto no_value = [&]() -> Status {
    if (has_value) return Status::InvalidArgument("option " + key + " takes no value");
    return Status::Ok();
  };

  if (key == "token_file") {
    CAIRN_RETURN_IF_ERROR(need_value());
    c->token_file = value;
  } else if (key == "entry_timeout" || key == "attr_timeout" || key == "negative_timeout") {
    CAIRN_RETURN_IF_ERROR(need_value());
    CAIRN_ASSIGN_OR_RETURN(double v, ParseSeconds(key, value, 86400));
    (key == "entry_timeout"  ? c->entry_timeout_s
     : key == "attr_timeout" ? c->attr_timeout_s
                             : c->negative_timeout_s) = v;
  } else if (key == "connect_timeout" || key == "rpc_timeout") {
    CAIRN_RETURN_IF_ERROR(need_value());
    CAIRN_ASSIGN_OR_RETURN(double v, ParseSeconds(key, value, 3600));
    if (v <= 0) return Status::InvalidArgument("bad value for " + key + ": must be > 0");
    (key == "connect_timeout" ? c->connect_timeout_s : c->rpc_timeout_s) = v;
  } else if (key == "log_level") {
    CAIRN_RETURN_IF_ERROR(need_value());
    static const std::set<std::string> kLevels = {"trace", "debug",    "info", "warn",
                                                  "error", "critical", "off"};
    if (kLevels.count(value) == 0) {
      return Status::InvalidArgument("bad value for log_level: '" + value +
                                     "' (trace, debug, info, warn, error, critical, off)");
    }
    c->log_level = value;
  } else if (key == "log_file") {
    CAIRN_RETURN_IF_ERROR(need_value());
    c->log_file = value;
  } else if (key == "log_json") {
    CAIRN_RETURN_IF_ERROR(no_value());
    c->log_json = true;
  } else if (key == "max_threads") {
    CAIRN_RETURN_IF_ERROR(need_value());
    CAIRN_ASSIGN_OR_RETURN(c->max_threads, ParseCount(key, value, 1, 1024));
  } else if (key == "max_idle_threads") {
    CAIRN_RETURN_IF_ERROR(need_value());
    CAIRN_ASSIGN_OR_RETURN(c->max_idle_threads, ParseCount(key, value, 1, 1024));
  } else if (key == "read_ahead_kb") {
    CAIRN_RETURN_IF_ERROR(need_value());
    CAIRN_ASSIGN_OR_RETURN(c->read_ahead_kib, ParseCount(key, value, 0, 65536));
  } else if (key == "allow_other" || key == "noallow_other") {
    CAIRN_RETURN_IF_ERROR(no_value());
    c->allow_other = key == "allow_other";
  } else if (key == "default_permissions") {
    CAIRN_RETURN_IF_ERROR(no_value());  // always on
  } else if (key == "ro" || key == "rw") {
    CAIRN_RETURN_IF_ERROR(no_value());
    c->read_only = key == "ro";
  } else if (key == "kernel_cache" || key == "nokernel_cache") {
    CAIRN_RETURN_IF_ERROR(no_value());
    c->kernel_cache = key == "kernel_cache";
  } else if (key == "fsname") {
    CAIRN_RETURN_IF_ERROR(need_value());
    c->fsname = value;
  } else if (key == "subtype") {
    return Status::InvalidArgument("option subtype cannot be changed (always 'cairn')");
  } else if (key == "max_read") {
    CAIRN_RETURN_IF_ERROR(need_value());
    CAIRN_ASSIGN_OR_RETURN(int v, ParseCount(key, value, 4096, 1 << 20));
    c->passthrough.push_back("max_read=" + std::to_string(v));
  } else if (key == "debug") {
    CAIRN_RETURN_IF_ERROR(no_value());
    c->debug = true;
    c->foreground = true;
  } else if (!has_value && PassthroughFlags().count(key) != 0) {
    c->passthrough.push_back(key);
  } else {
    return Status::InvalidArgument("unknown mount option '" + opt + "' (see cairn-mount -h)");
  }
  return Status::Ok();
}

}  // namespace

std::string MountConfig::FuseOptions(const std::string& volume_name) const {
  std::string opts = "fsname=" + EscapeOption(fsname.empty() ? volume_name : fsname) +
                     ",subtype=cairn,default_permissions";
  if (allow_other) opts += ",allow_other";
  opts += read_only ? ",ro" : ",rw";
  for (const auto& p : passthrough) opts += "," + p;
  return opts;
}

StatusOr<MountConfig> ParseMountArgs(int argc, const char* const* argv) {
  MountConfig c;
  c.allow_other = ::geteuid() == 0;
  std::vector<std::string> positional;
  bool options_done = false;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (options_done || arg.empty() || arg[0] != '-' || arg == "-") {
      positional.emplace_back(arg);
    } else if (arg == "--") {
      options_done = true;
    } else if (arg == "-h" || arg == "--help") {
      c.help = true;
    } else if (arg == "-V" || arg == "--version") {
      c.version = true;
    } else if (arg == "-f" || arg == "--foreground") {
      c.foreground = true;
    } else if (arg == "-d" || arg == "--debug") {
      c.debug = true;
      c.foreground = true;
    } else if (arg == "-s") {
      // Single-threaded mode is not offered; accepted for compatibility with mount helpers.
    } else if (arg == "-o" || (arg.starts_with("-o") && arg.size() > 2)) {
      std::string value;
      if (arg == "-o") {
        if (i + 1 >= argc) return Status::InvalidArgument("-o needs an argument");
        value = argv[++i];
      } else {
        value = std::string(arg.substr(2));
      }
      for (const auto& opt : SplitOptions(value)) CAIRN_RETURN_IF_ERROR(ApplyOption(opt, &c));
    } else {
      return Status::InvalidArgument("unknown argument '" + std::string(arg) +
                                     "' (see cairn-mount -h)");
    }
  }
  if (c.help || c.version) return c;
  if (positional.size() != 2) {
    return Status::InvalidArgument("expected SPEC_FILE and MOUNTPOINT, got " +
                                   std::to_string(positional.size()) + " argument" +
                                   (positional.size() == 1 ? "" : "s") + " (see cairn-mount -h)");
  }
  c.spec_path = positional[0];
  c.mountpoint = positional[1];
  return c;
}

std::string MountUsage() {
  return R"(usage: cairn-mount [-f] [-d] [-o opt[,opt...]] SOURCE MOUNTPOINT
Mounts a Cairn file volume with FUSE. SOURCE is the volume's spec file (JSON),
or host[:port][,host[:port]...]:/VOLUME to fetch the spec from storaged (port
24007 by default; the servers are tried in order, the token_file's data token
authenticates). Newer generations of a fetched spec are logged; a change of
bricks needs a remount.
Without -f it goes to the background once the volume is mounted; its exit
status says whether mounting worked. Unmount with `fusermount3 -u MOUNTPOINT`,
`umount MOUNTPOINT` or SIGTERM.

  -f, --foreground      stay in the foreground
  -d, --debug           print every FUSE request (implies -f)
  -h, --help            this text
  -V, --version         print the version
  -o OPTIONS            comma-separated:
    token_file=PATH       file holding the bricks' data token
    entry_timeout=SEC     kernel caching of names (default 1)
    attr_timeout=SEC      kernel caching of attributes (default 1)
    negative_timeout=SEC  kernel caching of missing names (default 0)
    connect_timeout=SEC   wait this long for the bricks at mount (default 10)
    rpc_timeout=SEC       deadline of one brick request (default 15)
    log_level=LEVEL       trace, debug, info, warn, error, critical, off (default info)
    log_file=PATH         log here (default: stderr; nowhere once in the background)
    log_json              log one JSON object per line
    allow_other           let other users access the mount (default when root)
    noallow_other         only the mounting user may access the mount
    ro, rw                read-only or read-write (default rw)
    kernel_cache          keep cached file data across opens (only safe when
                          this mount is the volume's only writer)
    fsname=NAME           the mount's source in /proc/mounts (default: volume name)
    max_threads=N         FUSE worker threads (default 32)
    max_idle_threads=N    idle worker threads kept (default 10)
    max_read=BYTES        largest read request
    read_ahead_kb=KIB     kernel read-ahead (and largest read) in KiB (default 1024;
                          0 keeps the kernel's 128)
    generic: nosuid, suid, nodev, dev, noexec, exec, noatime, relatime, sync,
             async, dirsync, allow_root, auto_unmount; default_permissions is
             always on (the kernel checks permissions)
)";
}

}  // namespace cairn::fuse
