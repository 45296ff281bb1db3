#include "csi/node.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "common/file_util.h"
#include "csi/capability.h"
#include "csi/mounter.h"
#include "csi/params.h"

namespace cairn::csi {
namespace {

using ::csi::v1::NodeServiceCapability;
using ::csi::v1::VolumeUsage;
using nlohmann::json;

constexpr char kSecretDataToken[] = "dataToken";

bool SafeFileName(const std::string& s) {
  if (s.empty() || s.size() > 100 || s == "." || s == "..") return false;
  for (char c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-' || c == '.';
    if (!ok) return false;
  }
  return true;
}

std::string FileKey(const std::string& volume_id) {
  return SafeFileName(volume_id) ? volume_id : "h-" + Sha256Hex(volume_id).substr(0, 40);
}

std::string TrimSlash(std::string p) {
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  return p;
}

Status CheckPath(const std::string& what, const std::string& path) {
  if (path.empty()) return Status::InvalidArgument(what + " is required");
  if (path[0] != '/') return Status::InvalidArgument(what + " must be absolute: " + path);
  if (path.find('\0') != std::string::npos || path.find('\n') != std::string::npos) {
    return Status::InvalidArgument(what + " contains a NUL or newline");
  }
  return Status::Ok();
}

}  // namespace

// ---------------------------------------------------------------------------
// Locks and records.

NodeServer::VolumeLock::VolumeLock(NodeServer* node, const std::string& volume_id, bool wait)
    : node_(node), volume_id_(volume_id) {
  std::unique_lock<std::mutex> l(node_->mu_);
  if (wait) {
    node_->busy_cv_.wait(l, [&] { return node_->busy_.count(volume_id_) == 0; });
  }
  held_ = node_->busy_.insert(volume_id_).second;
}

NodeServer::VolumeLock::~VolumeLock() {
  if (!held_) return;
  std::lock_guard<std::mutex> l(node_->mu_);
  node_->busy_.erase(volume_id_);
  node_->busy_cv_.notify_all();
}

NodeServer::NodeServer(NodeOptions options) : options_(std::move(options)) {}

NodeServer::~NodeServer() { Stop(); }

std::string NodeServer::RecordPath(const std::string& volume_id) const {
  return options_.state_dir + "/volumes/" + FileKey(volume_id) + ".json";
}

Status NodeServer::SaveRecord(const Record& r) {
  json j = {{"volume_id", r.volume_id},       {"source", r.source},
            {"staging_path", r.staging_path}, {"mount_options", r.mount_options},
            {"read_only", r.read_only},       {"token_copy", r.token_copy},
            {"mount_group", r.mount_group},   {"targets", r.targets}};
  return WriteFileAtomic(RecordPath(r.volume_id), j.dump(2) + "\n", 0600)
      .WithContext("write node record");
}

void NodeServer::DropRecord(const Record& r) {
  ::unlink(RecordPath(r.volume_id).c_str());
  if (!r.token_copy.empty()) ::unlink(r.token_copy.c_str());
  EraseRecord(r.volume_id);
}

bool NodeServer::GetRecord(const std::string& volume_id, Record* out) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = records_.find(volume_id);
  if (it == records_.end()) return false;
  *out = it->second;
  return true;
}

void NodeServer::PutRecord(const Record& r) {
  std::lock_guard<std::mutex> l(mu_);
  records_[r.volume_id] = r;
}

void NodeServer::EraseRecord(const std::string& volume_id) {
  std::lock_guard<std::mutex> l(mu_);
  records_.erase(volume_id);
}

bool NodeServer::RecordForPath(const std::string& path, Record* out) const {
  std::lock_guard<std::mutex> l(mu_);
  for (const auto& [id, r] : records_) {
    if (r.staging_path == path || r.targets.count(path)) {
      *out = r;
      return true;
    }
  }
  return false;
}

Status NodeServer::Start() {
  for (const char* sub : {"/volumes", "/tokens", "/logs"}) {
    CAIRN_RETURN_IF_ERROR(MakeDirs(options_.state_dir + sub));
  }
  std::error_code ec;
  for (const auto& entry :
       std::filesystem::directory_iterator(options_.state_dir + "/volumes", ec)) {
    if (entry.path().extension() != ".json") continue;
    const std::string path = entry.path().string();
    auto text = ReadFile(path);
    json j = text.ok() ? json::parse(*text, nullptr, false) : json();
    Record r;
    try {
      r.volume_id = j.at("volume_id").get<std::string>();
      r.source = j.at("source").get<std::string>();
      r.staging_path = j.at("staging_path").get<std::string>();
      r.mount_options = j.at("mount_options").get<std::vector<std::string>>();
      r.read_only = j.value("read_only", false);
      r.token_copy = j.value("token_copy", "");
      r.mount_group = j.value("mount_group", int64_t{-1});
      r.targets = j.value("targets", std::map<std::string, bool>{});
    } catch (const json::exception& e) {
      // Not fatal: the volume is not watched, and a NodeStageVolume adopts its mount again.
      spdlog::error("event=record-corrupt path={} error=\"{}\" moved_to={}.corrupt", path,
                    text.ok() ? e.what() : text.status().message(), path);
      ::rename(path.c_str(), (path + ".corrupt").c_str());
      continue;
    }
    spdlog::info("event=record-loaded volume={} staging={} targets={}", r.volume_id, r.staging_path,
                 r.targets.size());
    PutRecord(r);
  }
  {
    std::lock_guard<std::mutex> l(health_mu_);
    stopping_ = false;
    health_kick_ = true;  // check what the records say at once
  }
  health_thread_ = std::thread([this] { HealthLoop(); });
  return Status::Ok();
}

void NodeServer::Stop() {
  {
    std::lock_guard<std::mutex> l(health_mu_);
    stopping_ = true;
  }
  health_cv_.notify_all();
  if (health_thread_.joinable()) health_thread_.join();
}

Status NodeServer::Ready() const {
  if (::access("/dev/fuse", R_OK | W_OK) != 0) {
    return Status::FailedPrecondition(std::string("/dev/fuse: ") + std::strerror(errno));
  }
  if (::access(options_.mount_binary.c_str(), X_OK) != 0) {
    return Status::FailedPrecondition("mount binary " + options_.mount_binary + ": " +
                                      std::strerror(errno));
  }
  return Status::Ok();
}

int NodeServer::recoveries() const {
  std::lock_guard<std::mutex> l(mu_);
  return recoveries_;
}

// ---------------------------------------------------------------------------
// Mounting.

Status NodeServer::MountStaging(const Record& r) {
  CAIRN_RETURN_IF_ERROR(MakeDirs(r.staging_path));
  CairnMountRequest m;
  m.binary = options_.mount_binary;
  m.source = r.source;
  m.target = r.staging_path;
  m.options = r.mount_options;
  m.stderr_file = options_.state_dir + "/logs/" + FileKey(r.volume_id) + ".mount-error";
  m.timeout = options_.mount_timeout;
  Status s = RunCairnMount(m);
  if (!s.ok()) return s.WithContext("mount " + r.source + " on " + r.staging_path);
  if (r.mount_group >= 0) CAIRN_RETURN_IF_ERROR(ApplyMountGroup(r.staging_path, r.mount_group));
  return Status::Ok();
}

Status NodeServer::ApplyMountGroup(const std::string& path, int64_t gid) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    return Status::Internal("stat " + path + ": " + std::strerror(errno));
  }
  if (st.st_gid != static_cast<gid_t>(gid) &&
      ::chown(path.c_str(), static_cast<uid_t>(-1), static_cast<gid_t>(gid)) != 0) {
    return Status::Internal("chgrp " + std::to_string(gid) + " " + path + ": " +
                            std::strerror(errno));
  }
  const mode_t want = (st.st_mode & 07777) | S_IRWXG | S_ISGID;
  if ((st.st_mode & 07777) != want && ::chmod(path.c_str(), want) != 0) {
    return Status::Internal("chmod " + path + ": " + std::strerror(errno));
  }
  return Status::Ok();
}

Status NodeServer::Recover(Record& r, const std::string& why) {
  spdlog::warn("event=mount-recover volume={} staging={} reason=\"{}\"", r.volume_id,
               r.staging_path, why);
  CAIRN_RETURN_IF_ERROR(Unmount(r.staging_path));
  CAIRN_RETURN_IF_ERROR(MountStaging(r));
  for (const auto& [target, ro] : r.targets) {
    if (Probe(target) == MountHealth::kHealthy) continue;
    CAIRN_RETURN_IF_ERROR(Unmount(target));
    CAIRN_RETURN_IF_ERROR(MakeDirs(target));
    CAIRN_RETURN_IF_ERROR(BindMount(r.staging_path, target, ro));
  }
  {
    std::lock_guard<std::mutex> l(mu_);
    ++recoveries_;
  }
  spdlog::info("event=mount-recovered volume={} staging={} targets={}", r.volume_id, r.staging_path,
               r.targets.size());
  return Status::Ok();
}

void NodeServer::CheckRecord(const std::string& volume_id) {
  VolumeLock lock(this, volume_id);
  if (!lock.held()) return;  // a call is working on it; next round
  Record r;
  if (!GetRecord(volume_id, &r)) return;
  std::string error;
  MountHealth h = Probe(r.staging_path, &error);
  bool targets_ok = true;
  for (const auto& [target, ro] : r.targets) {
    if (Probe(target) != MountHealth::kHealthy) targets_ok = false;
  }
  if (h == MountHealth::kHealthy && targets_ok) return;
  const std::string why =
      h != MountHealth::kHealthy
          ? std::string("staging mount ") + MountHealthName(h) + (error.empty() ? "" : ": " + error)
          : "a published target is not mounted";
  if (Status s = Recover(r, why); !s.ok()) {
    spdlog::error("event=mount-recover-failed volume={} error=\"{}\"", volume_id, s.message());
  }
}

void NodeServer::CheckAllNow() {
  std::vector<std::string> ids;
  {
    std::lock_guard<std::mutex> l(mu_);
    for (const auto& [id, r] : records_) ids.push_back(id);
  }
  for (const auto& id : ids) CheckRecord(id);
}

void NodeServer::HealthLoop() {
  std::unique_lock<std::mutex> l(health_mu_);
  while (!stopping_) {
    if (!health_kick_) {
      if (options_.health_interval.count() > 0) {
        health_cv_.wait_for(l, options_.health_interval);
      } else {
        health_cv_.wait(l, [&] { return stopping_ || health_kick_; });
      }
    }
    if (stopping_) break;
    health_kick_ = false;
    l.unlock();
    CheckAllNow();
    l.lock();
  }
}

// ---------------------------------------------------------------------------
// RPCs.

Status NodeServer::Stage(const ::csi::v1::NodeStageVolumeRequest& req) {
  if (req.volume_id().empty()) return Status::InvalidArgument("volume_id is required");
  CAIRN_RETURN_IF_ERROR(CheckPath("staging_target_path", req.staging_target_path()));
  if (!req.has_volume_capability()) {
    return Status::InvalidArgument("volume_capability is required");
  }
  CAIRN_RETURN_IF_ERROR(CheckCapability(req.volume_capability(), "volume_capability"));
  auto src = req.volume_context().find("source");
  if (src == req.volume_context().end() || src->second.empty()) {
    return Status::InvalidArgument(
        "volume_context.source is required (host:port[,...]:/VOLUME, as CreateVolume returns "
        "it; a static PersistentVolume sets it in volumeAttributes)");
  }
  const std::string staging = TrimSlash(req.staging_target_path());
  Record want;
  want.volume_id = req.volume_id();
  want.source = src->second;
  want.staging_path = staging;
  want.read_only = ReaderOnly(req.volume_capability());
  const auto& mount_group = req.volume_capability().mount().volume_mount_group();
  if (!mount_group.empty()) {
    char* end = nullptr;
    errno = 0;
    long long g = std::strtoll(mount_group.c_str(), &end, 10);
    if (errno != 0 || *end != '\0' || g < 0 || g > 0x7fffffff) {
      return Status::InvalidArgument("volume_mount_group \"" + mount_group +
                                     "\" is not a numeric group id");
    }
    want.mount_group = g;
  }
  // The data token: a node-stage secret wins over the node's file.
  std::string token_file = options_.data_token_file;
  auto secret = req.secrets().find(kSecretDataToken);
  if (secret != req.secrets().end() && !secret->second.empty()) {
    want.token_copy = options_.state_dir + "/tokens/" + FileKey(req.volume_id()) + ".token";
    CAIRN_RETURN_IF_ERROR(WriteFileAtomic(want.token_copy, secret->second + "\n", 0600));
    token_file = want.token_copy;
  }
  if (token_file.empty()) {
    return Status::FailedPrecondition(
        "no data token: start cairn-csi with --data-token-file, or give a \"dataToken\" "
        "node-stage secret");
  }
  want.mount_options.push_back("token_file=" + token_file);
  want.mount_options.push_back("log_file=" + options_.state_dir + "/logs/" +
                               FileKey(req.volume_id()) + ".log");
  if (want.read_only) want.mount_options.push_back("ro");
  for (const auto& flag : req.volume_capability().mount().mount_flags()) {
    if (flag.find(',') != std::string::npos && flag.find("token_file") != std::string::npos) {
      return Status::InvalidArgument("mount_flags may not set token_file");
    }
    if (flag.rfind("token_file=", 0) == 0 || flag.rfind("log_file=", 0) == 0) {
      return Status::InvalidArgument("mount_flags may not set " + flag.substr(0, flag.find('=')));
    }
    want.mount_options.push_back(flag);
  }
  VolumeLock lock(this, req.volume_id());
  if (!lock.held()) {
    return Status::Aborted("an operation on volume " + req.volume_id() + " is in progress");
  }
  Record r;
  const bool known = GetRecord(req.volume_id(), &r);
  if (known && r.staging_path != staging) {
    return Status::AlreadyExists("volume " + req.volume_id() + " is already staged at " +
                                 r.staging_path);
  }
  if (known) {
    want.targets = r.targets;
    if (want.source != r.source || want.read_only != r.read_only) {
      return Status::AlreadyExists("volume " + req.volume_id() + " is staged at " + staging +
                                   " with another source or access mode");
    }
  }

  std::string error;
  switch (Probe(staging, &error)) {
    case MountHealth::kHealthy: {
      auto m = FindMount(staging);
      if (!m || m->fs_type != "fuse.cairn") {
        return Status::FailedPrecondition("staging_target_path " + staging +
                                          " has another file system mounted (" +
                                          (m ? m->fs_type : "?") + ")");
      }
      if (!known) {
        // Mounted by an earlier incarnation that lost its record: adopt it.
        spdlog::info("event=stage-adopted volume={} staging={}", want.volume_id, staging);
      }
      if (want.mount_group >= 0) CAIRN_RETURN_IF_ERROR(ApplyMountGroup(staging, want.mount_group));
      break;
    }
    case MountHealth::kBroken:
      spdlog::warn("event=stage-remount volume={} staging={} reason=\"{}\"", want.volume_id,
                   staging, error);
      CAIRN_RETURN_IF_ERROR(Unmount(staging));
      CAIRN_RETURN_IF_ERROR(MountStaging(want));
      break;
    case MountHealth::kMissing:
    case MountHealth::kNotMounted:
      CAIRN_RETURN_IF_ERROR(MountStaging(want));
      break;
  }
  if (Status s = SaveRecord(want); !s.ok()) {
    (void)Unmount(staging);
    return s;
  }
  PutRecord(want);
  return Status::Ok();
}

Status NodeServer::Unstage(const ::csi::v1::NodeUnstageVolumeRequest& req) {
  if (req.volume_id().empty()) return Status::InvalidArgument("volume_id is required");
  CAIRN_RETURN_IF_ERROR(CheckPath("staging_target_path", req.staging_target_path()));
  const std::string staging = TrimSlash(req.staging_target_path());
  VolumeLock lock(this, req.volume_id());
  if (!lock.held())
    return Status::Aborted("an operation on volume " + req.volume_id() + " is in progress");
  Record r;
  const bool known = GetRecord(req.volume_id(), &r);
  CAIRN_RETURN_IF_ERROR(Unmount(staging));
  if (::rmdir(staging.c_str()) != 0 && errno != ENOENT && errno != ENOTEMPTY) {
    spdlog::warn("event=rmdir-failed path={} error=\"{}\"", staging, std::strerror(errno));
  }
  if (known) DropRecord(r);
  return Status::Ok();
}

Status NodeServer::Publish(const ::csi::v1::NodePublishVolumeRequest& req) {
  if (req.volume_id().empty()) return Status::InvalidArgument("volume_id is required");
  CAIRN_RETURN_IF_ERROR(CheckPath("target_path", req.target_path()));
  CAIRN_RETURN_IF_ERROR(CheckPath("staging_target_path", req.staging_target_path()));
  if (!req.has_volume_capability()) {
    return Status::InvalidArgument("volume_capability is required");
  }
  CAIRN_RETURN_IF_ERROR(CheckCapability(req.volume_capability(), "volume_capability"));
  const std::string staging = TrimSlash(req.staging_target_path());
  const std::string target = TrimSlash(req.target_path());
  if (target == staging) {
    return Status::InvalidArgument("target_path and staging_target_path are the same");
  }
  const bool ro = req.readonly() || ReaderOnly(req.volume_capability());
  VolumeLock lock(this, req.volume_id());
  if (!lock.held())
    return Status::Aborted("an operation on volume " + req.volume_id() + " is in progress");

  Record r;
  const bool known = GetRecord(req.volume_id(), &r);
  if (known && r.staging_path != staging) {
    return Status::FailedPrecondition("volume " + req.volume_id() + " is staged at " +
                                      r.staging_path + ", not " + staging);
  }
  MountHealth sh = Probe(staging);
  if (sh == MountHealth::kBroken && known) {
    CAIRN_RETURN_IF_ERROR(Recover(r, "staging mount broken at publish"));
    sh = Probe(staging);
  }
  if (sh != MountHealth::kHealthy) {
    return Status::FailedPrecondition("volume " + req.volume_id() + " is not staged at " + staging +
                                      " (" + MountHealthName(sh) + "): call NodeStageVolume first");
  }
  std::string error;
  switch (Probe(target, &error)) {
    case MountHealth::kHealthy: {
      auto m = FindMount(target);
      auto sm = FindMount(staging);
      if (m && sm && m->source == sm->source && m->fs_type == sm->fs_type) {
        if (m->read_only() != ro) {
          return Status::AlreadyExists("target_path " + target + " is already published " +
                                       (m->read_only() ? "read-only" : "read-write"));
        }
        if (known && !r.targets.count(target)) {
          r.targets[target] = ro;
          CAIRN_RETURN_IF_ERROR(SaveRecord(r));
          PutRecord(r);
        }
        return Status::Ok();  // published already
      }
      return Status::FailedPrecondition("target_path " + target +
                                        " has something else mounted on it");
    }
    case MountHealth::kBroken:
      CAIRN_RETURN_IF_ERROR(Unmount(target));
      break;
    case MountHealth::kMissing:
      CAIRN_RETURN_IF_ERROR(MakeDirs(target));
      break;
    case MountHealth::kNotMounted:
      break;
  }
  CAIRN_RETURN_IF_ERROR(BindMount(staging, target, ro));
  const auto& mount_group = req.volume_capability().mount().volume_mount_group();
  if (!mount_group.empty() && !ro) {
    char* end = nullptr;
    long long g = std::strtoll(mount_group.c_str(), &end, 10);
    if (*end != '\0' || g < 0) {
      (void)Unmount(target);
      return Status::InvalidArgument("volume_mount_group \"" + mount_group +
                                     "\" is not a numeric group id");
    }
    CAIRN_RETURN_IF_ERROR(ApplyMountGroup(target, g));
  }
  if (known) {
    r.targets[target] = ro;
    if (Status s = SaveRecord(r); !s.ok()) {
      (void)Unmount(target);
      return s;
    }
    PutRecord(r);
  }
  return Status::Ok();
}

Status NodeServer::Unpublish(const ::csi::v1::NodeUnpublishVolumeRequest& req) {
  if (req.volume_id().empty()) return Status::InvalidArgument("volume_id is required");
  CAIRN_RETURN_IF_ERROR(CheckPath("target_path", req.target_path()));
  const std::string target = TrimSlash(req.target_path());
  VolumeLock lock(this, req.volume_id());
  if (!lock.held())
    return Status::Aborted("an operation on volume " + req.volume_id() + " is in progress");
  CAIRN_RETURN_IF_ERROR(Unmount(target));
  if (::rmdir(target.c_str()) != 0 && errno != ENOENT) {
    if (errno == ENOTEMPTY || errno == EEXIST) {
      spdlog::warn("event=target-not-empty path={} (left in place)", target);
    } else if (errno != ENOTDIR) {
      return Status::Internal("rmdir " + target + ": " + std::strerror(errno));
    }
  }
  Record r;
  if (GetRecord(req.volume_id(), &r) && r.targets.erase(target) > 0) {
    CAIRN_RETURN_IF_ERROR(SaveRecord(r));
    PutRecord(r);
  }
  return Status::Ok();
}

Status NodeServer::Stats(const ::csi::v1::NodeGetVolumeStatsRequest& req,
                         ::csi::v1::NodeGetVolumeStatsResponse* rep) {
  if (req.volume_id().empty()) return Status::InvalidArgument("volume_id is required");
  CAIRN_RETURN_IF_ERROR(CheckPath("volume_path", req.volume_path()));
  const std::string path = TrimSlash(req.volume_path());
  std::string error;
  const MountHealth h = Probe(path, &error);
  if (h == MountHealth::kMissing)
    return Status::NotFound("volume_path " + path + " does not exist");
  if (h == MountHealth::kNotMounted) {
    return Status::NotFound("volume " + req.volume_id() + " is not mounted at " + path);
  }
  auto* cond = rep->mutable_volume_condition();
  if (h == MountHealth::kBroken) {
    cond->set_abnormal(true);
    cond->set_message("mount is broken (" + error +
                      "): the FUSE process is gone; the node plugin is remounting it");
    {
      std::lock_guard<std::mutex> l(health_mu_);
      health_kick_ = true;
    }
    health_cv_.notify_all();
    return Status::Ok();
  }
  struct statvfs vfs;
  if (::statvfs(path.c_str(), &vfs) != 0) {
    cond->set_abnormal(true);
    cond->set_message("statvfs " + path + ": " + std::strerror(errno));
    return Status::Ok();
  }
  const int64_t frsize = vfs.f_frsize != 0 ? vfs.f_frsize : vfs.f_bsize;
  auto* bytes = rep->add_usage();
  bytes->set_unit(VolumeUsage::BYTES);
  bytes->set_total(static_cast<int64_t>(vfs.f_blocks) * frsize);
  bytes->set_available(static_cast<int64_t>(vfs.f_bavail) * frsize);
  bytes->set_used(static_cast<int64_t>(vfs.f_blocks - vfs.f_bfree) * frsize);
  auto* inodes = rep->add_usage();
  inodes->set_unit(VolumeUsage::INODES);
  inodes->set_total(static_cast<int64_t>(vfs.f_files));
  inodes->set_available(static_cast<int64_t>(vfs.f_favail));
  inodes->set_used(static_cast<int64_t>(vfs.f_files - vfs.f_ffree));
  cond->set_abnormal(false);
  cond->set_message("mounted");
  return Status::Ok();
}

Status NodeServer::Expand(const ::csi::v1::NodeExpandVolumeRequest& req,
                          ::csi::v1::NodeExpandVolumeResponse* rep) {
  if (req.volume_id().empty()) return Status::InvalidArgument("volume_id is required");
  CAIRN_RETURN_IF_ERROR(CheckPath("volume_path", req.volume_path()));
  if (req.has_volume_capability()) {
    CAIRN_RETURN_IF_ERROR(CheckCapability(req.volume_capability(), "volume_capability"));
  }
  const std::string path = TrimSlash(req.volume_path());
  const MountHealth h = Probe(path);
  if (h == MountHealth::kMissing || h == MountHealth::kNotMounted) {
    return Status::NotFound("volume " + req.volume_id() + " is not mounted at " + path);
  }
  if (h == MountHealth::kBroken) {
    return Status::Unavailable("the mount at " + path + " is broken; it is being remounted");
  }
  // The bricks grew when the controller expanded the volume; statfs is live.
  const int64_t want = req.capacity_range().required_bytes();
  int64_t total = 0;
  for (int i = 0; i < 50; ++i) {
    struct statvfs vfs;
    if (::statvfs(path.c_str(), &vfs) != 0) {
      return Status::Internal("statvfs " + path + ": " + std::strerror(errno));
    }
    total = static_cast<int64_t>(vfs.f_blocks) * (vfs.f_frsize != 0 ? vfs.f_frsize : vfs.f_bsize);
    if (want <= 0 || total >= want) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  rep->set_capacity_bytes(total);
  return Status::Ok();
}

grpc::Status NodeServer::NodeStageVolume(grpc::ServerContext*,
                                         const ::csi::v1::NodeStageVolumeRequest* req,
                                         ::csi::v1::NodeStageVolumeResponse*) {
  const int64_t t0 = NowMs();
  return Finish("NodeStageVolume", req->volume_id(), Stage(*req), t0);
}

grpc::Status NodeServer::NodeUnstageVolume(grpc::ServerContext*,
                                           const ::csi::v1::NodeUnstageVolumeRequest* req,
                                           ::csi::v1::NodeUnstageVolumeResponse*) {
  const int64_t t0 = NowMs();
  return Finish("NodeUnstageVolume", req->volume_id(), Unstage(*req), t0);
}

grpc::Status NodeServer::NodePublishVolume(grpc::ServerContext*,
                                           const ::csi::v1::NodePublishVolumeRequest* req,
                                           ::csi::v1::NodePublishVolumeResponse*) {
  const int64_t t0 = NowMs();
  return Finish("NodePublishVolume", req->volume_id(), Publish(*req), t0);
}

grpc::Status NodeServer::NodeUnpublishVolume(grpc::ServerContext*,
                                             const ::csi::v1::NodeUnpublishVolumeRequest* req,
                                             ::csi::v1::NodeUnpublishVolumeResponse*) {
  const int64_t t0 = NowMs();
  return Finish("NodeUnpublishVolume", req->volume_id(), Unpublish(*req), t0);
}

grpc::Status NodeServer::NodeGetVolumeStats(grpc::ServerContext*,
                                            const ::csi::v1::NodeGetVolumeStatsRequest* req,
                                            ::csi::v1::NodeGetVolumeStatsResponse* rep) {
  const int64_t t0 = NowMs();
  return Finish("NodeGetVolumeStats", req->volume_id(), Stats(*req, rep), t0);
}

grpc::Status NodeServer::NodeExpandVolume(grpc::ServerContext*,
                                          const ::csi::v1::NodeExpandVolumeRequest* req,
                                          ::csi::v1::NodeExpandVolumeResponse* rep) {
  const int64_t t0 = NowMs();
  return Finish("NodeExpandVolume", req->volume_id(), Expand(*req, rep), t0);
}

grpc::Status NodeServer::NodeGetCapabilities(grpc::ServerContext*,
                                             const ::csi::v1::NodeGetCapabilitiesRequest*,
                                             ::csi::v1::NodeGetCapabilitiesResponse* rep) {
  for (auto t :
       {NodeServiceCapability::RPC::STAGE_UNSTAGE_VOLUME,
        NodeServiceCapability::RPC::GET_VOLUME_STATS, NodeServiceCapability::RPC::EXPAND_VOLUME,
        NodeServiceCapability::RPC::VOLUME_CONDITION,
        NodeServiceCapability::RPC::SINGLE_NODE_MULTI_WRITER,
        NodeServiceCapability::RPC::VOLUME_MOUNT_GROUP}) {
    rep->add_capabilities()->mutable_rpc()->set_type(t);
  }
  return grpc::Status::OK;
}

grpc::Status NodeServer::NodeGetInfo(grpc::ServerContext*, const ::csi::v1::NodeGetInfoRequest*,
                                     ::csi::v1::NodeGetInfoResponse* rep) {
  rep->set_node_id(options_.node_id);
  rep->set_max_volumes_per_node(0);
  (*rep->mutable_accessible_topology()->mutable_segments())[kTopologyKey] = options_.topology_value;
  return grpc::Status::OK;
}

}  // namespace cairn::csi
