// gRPC services of brickd: Brick (data path, by brick id) and BrickAdmin.
//
// Every call authenticates with "authorization: Bearer <token>": the data
// token (or the admin token) for Brick, the admin token for BrickAdmin.
// Servers use gRPC's callback API; the file system work of every call runs on
// one bounded WorkerPool shared by all bricks: no thread, port or process per
// brick, and calls beyond the pool's size queue rather than fail.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "brickd/registry.h"
#include "brickd/worker_pool.h"
#include "client/node.h"
#include "common/status.h"
#include "proto/brick.grpc.pb.h"

namespace cairn::brickd {

// Which token a call needs.
enum class Role { kData, kAdmin };

// Checks bearer tokens in constant time. Tokens are never logged.
class Authenticator {
 public:
  Authenticator(std::string data_token, std::string admin_token)
      : data_token_(std::move(data_token)), admin_token_(std::move(admin_token)) {}
  // Ok iff the call carries a token good for `role`.
  Status Check(const grpc::ServerContextBase& context, Role role) const;
  // Same, for a raw "Authorization" header value (HTTP).
  Status CheckHeader(std::string_view header, Role role) const;
  // The data token, for brickd's own calls to other brickds (CopyFrom).
  const std::string& data_token() const { return data_token_; }

 private:
  const std::string data_token_;
  const std::string admin_token_;
};

// The data path. Work runs on `pool`; calls beyond its size wait in its queue.
class BrickServiceImpl final : public pb::Brick::CallbackService {
 public:
  BrickServiceImpl(BrickRegistry* registry, const Authenticator* auth, WorkerPool* pool)
      : registry_(registry), auth_(auth), pool_(pool) {}

  grpc::ServerUnaryReactor* Lookup(grpc::CallbackServerContext*, const pb::LookupRequest*,
                                   pb::AttrReply*) override;
  grpc::ServerUnaryReactor* GetAttr(grpc::CallbackServerContext*, const pb::GetAttrRequest*,
                                    pb::AttrReply*) override;
  grpc::ServerUnaryReactor* SetAttr(grpc::CallbackServerContext*, const pb::SetAttrRequest*,
                                    pb::AttrReply*) override;
  grpc::ServerUnaryReactor* Create(grpc::CallbackServerContext*, const pb::CreateRequest*,
                                   pb::AttrReply*) override;
  grpc::ServerUnaryReactor* Mknod(grpc::CallbackServerContext*, const pb::CreateRequest*,
                                  pb::AttrReply*) override;
  grpc::ServerUnaryReactor* Mkdir(grpc::CallbackServerContext*, const pb::CreateRequest*,
                                  pb::AttrReply*) override;
  grpc::ServerUnaryReactor* Symlink(grpc::CallbackServerContext*, const pb::CreateRequest*,
                                    pb::AttrReply*) override;
  grpc::ServerUnaryReactor* Link(grpc::CallbackServerContext*, const pb::LinkRequest*,
                                 pb::AttrReply*) override;
  grpc::ServerUnaryReactor* Readlink(grpc::CallbackServerContext*, const pb::ReadlinkRequest*,
                                     pb::ReadlinkReply*) override;
  grpc::ServerUnaryReactor* Read(grpc::CallbackServerContext*, const pb::ReadRequest*,
                                 pb::ReadReply*) override;
  grpc::ServerUnaryReactor* Write(grpc::CallbackServerContext*, const pb::WriteRequest*,
                                  pb::WriteReply*) override;
  grpc::ServerUnaryReactor* Fsync(grpc::CallbackServerContext*, const pb::FsyncRequest*,
                                  pb::Empty*) override;
  grpc::ServerUnaryReactor* Fallocate(grpc::CallbackServerContext*, const pb::FallocateRequest*,
                                      pb::AttrReply*) override;
  grpc::ServerUnaryReactor* Truncate(grpc::CallbackServerContext*, const pb::TruncateRequest*,
                                     pb::AttrReply*) override;
  grpc::ServerUnaryReactor* Unlink(grpc::CallbackServerContext*, const pb::UnlinkRequest*,
                                   pb::UnlinkReply*) override;
  grpc::ServerUnaryReactor* Rmdir(grpc::CallbackServerContext*, const pb::UnlinkRequest*,
                                  pb::UnlinkReply*) override;
  grpc::ServerUnaryReactor* Rename(grpc::CallbackServerContext*, const pb::RenameRequest*,
                                   pb::RenameReply*) override;
  grpc::ServerUnaryReactor* ReadDir(grpc::CallbackServerContext*, const pb::ReadDirRequest*,
                                    pb::ReadDirReply*) override;
  grpc::ServerUnaryReactor* GetXattr(grpc::CallbackServerContext*, const pb::GetXattrRequest*,
                                     pb::GetXattrReply*) override;
  grpc::ServerUnaryReactor* SetXattr(grpc::CallbackServerContext*, const pb::SetXattrRequest*,
                                     pb::AttrReply*) override;
  grpc::ServerUnaryReactor* ListXattr(grpc::CallbackServerContext*, const pb::ListXattrRequest*,
                                      pb::ListXattrReply*) override;
  grpc::ServerUnaryReactor* RemoveXattr(grpc::CallbackServerContext*, const pb::RemoveXattrRequest*,
                                        pb::AttrReply*) override;
  grpc::ServerUnaryReactor* StatFs(grpc::CallbackServerContext*, const pb::StatFsRequest*,
                                   pb::StatFsReply*) override;
  grpc::ServerUnaryReactor* Forget(grpc::CallbackServerContext*, const pb::ForgetRequest*,
                                   pb::Empty*) override;
  grpc::ServerUnaryReactor* ListDirty(grpc::CallbackServerContext*, const pb::ListDirtyRequest*,
                                      pb::ListDirtyReply*) override;
  grpc::ServerUnaryReactor* ClearDirty(grpc::CallbackServerContext*, const pb::ClearDirtyRequest*,
                                       pb::ClearDirtyReply*) override;
  grpc::ServerUnaryReactor* Checksum(grpc::CallbackServerContext*, const pb::ChecksumRequest*,
                                     pb::ChecksumReply*) override;
  grpc::ServerUnaryReactor* Locate(grpc::CallbackServerContext*, const pb::LocateRequest*,
                                   pb::LocateReply*) override;
  grpc::ServerUnaryReactor* DirtySummary(grpc::CallbackServerContext*,
                                         const pb::DirtySummaryRequest*,
                                         pb::DirtySummaryReply*) override;
  grpc::ServerUnaryReactor* CopyFrom(grpc::CallbackServerContext*, const pb::CopyFromRequest*,
                                     pb::WriteReply*) override;
  grpc::ServerUnaryReactor* SetVersion(grpc::CallbackServerContext*, const pb::SetVersionRequest*,
                                       pb::AttrReply*) override;

 private:
  template <typename Req, typename Fn>
  grpc::ServerUnaryReactor* Serve(Op op, grpc::CallbackServerContext* ctx, const Req* req, Fn fn);

  // The connection to another brickd (CopyFrom's sources), made once.
  std::shared_ptr<client::Node> Peer(const std::string& address);

  BrickRegistry* const registry_;
  const Authenticator* const auth_;
  WorkerPool* const pool_;
  std::mutex peers_mu_;
  std::map<std::string, std::shared_ptr<client::Node>> peers_;  // GUARDED_BY(peers_mu_)
};

// Attach/detach/list/resize; admin token only.
class BrickAdminServiceImpl final : public pb::BrickAdmin::CallbackService {
 public:
  BrickAdminServiceImpl(BrickRegistry* registry, const Authenticator* auth, WorkerPool* pool)
      : registry_(registry), auth_(auth), pool_(pool) {}

  grpc::ServerUnaryReactor* Attach(grpc::CallbackServerContext*, const pb::AttachRequest*,
                                   pb::AttachReply*) override;
  grpc::ServerUnaryReactor* Detach(grpc::CallbackServerContext*, const pb::DetachRequest*,
                                   pb::Empty*) override;
  grpc::ServerUnaryReactor* ListBricks(grpc::CallbackServerContext*, const pb::ListBricksRequest*,
                                       pb::ListBricksReply*) override;
  grpc::ServerUnaryReactor* SetCapacity(grpc::CallbackServerContext*, const pb::SetCapacityRequest*,
                                        pb::BrickInfo*) override;

 private:
  template <typename Req, typename Fn>
  grpc::ServerUnaryReactor* Serve(grpc::CallbackServerContext* ctx, const Req* req, Fn fn);

  BrickRegistry* const registry_;
  const Authenticator* const auth_;
  WorkerPool* const pool_;
};

}  // namespace cairn::brickd
