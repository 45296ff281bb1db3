// gRPC services of brickd: Brick (data path, by brick id) and BrickAdmin.
//
// Every call authenticates with "authorization: Bearer <token>": the data
// token (or the admin token) for Brick, the admin token for BrickAdmin.
// Servers are gRPC's synchronous kind on a bounded thread pool: no thread,
// port or process per brick.
#pragma once

#include <string>

#include "brickd/registry.h"
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
  Status Check(const grpc::ServerContext& context, Role role) const;
  // Same, for a raw "Authorization" header value (HTTP).
  Status CheckHeader(std::string_view header, Role role) const;

 private:
  const std::string data_token_;
  const std::string admin_token_;
};

class BrickServiceImpl final : public pb::Brick::Service {
 public:
  BrickServiceImpl(BrickRegistry* registry, const Authenticator* auth)
      : registry_(registry), auth_(auth) {}

  grpc::Status Lookup(grpc::ServerContext*, const pb::LookupRequest*, pb::AttrReply*) override;
  grpc::Status GetAttr(grpc::ServerContext*, const pb::GetAttrRequest*, pb::AttrReply*) override;
  grpc::Status SetAttr(grpc::ServerContext*, const pb::SetAttrRequest*, pb::AttrReply*) override;
  grpc::Status Create(grpc::ServerContext*, const pb::CreateRequest*, pb::AttrReply*) override;
  grpc::Status Mknod(grpc::ServerContext*, const pb::CreateRequest*, pb::AttrReply*) override;
  grpc::Status Mkdir(grpc::ServerContext*, const pb::CreateRequest*, pb::AttrReply*) override;
  grpc::Status Symlink(grpc::ServerContext*, const pb::CreateRequest*, pb::AttrReply*) override;
  grpc::Status Link(grpc::ServerContext*, const pb::LinkRequest*, pb::AttrReply*) override;
  grpc::Status Readlink(grpc::ServerContext*, const pb::ReadlinkRequest*,
                        pb::ReadlinkReply*) override;
  grpc::Status Read(grpc::ServerContext*, const pb::ReadRequest*, pb::ReadReply*) override;
  grpc::Status Write(grpc::ServerContext*, const pb::WriteRequest*, pb::WriteReply*) override;
  grpc::Status Fsync(grpc::ServerContext*, const pb::FsyncRequest*, pb::Empty*) override;
  grpc::Status Fallocate(grpc::ServerContext*, const pb::FallocateRequest*,
                         pb::AttrReply*) override;
  grpc::Status Truncate(grpc::ServerContext*, const pb::TruncateRequest*, pb::AttrReply*) override;
  grpc::Status Unlink(grpc::ServerContext*, const pb::UnlinkRequest*, pb::UnlinkReply*) override;
  grpc::Status Rmdir(grpc::ServerContext*, const pb::UnlinkRequest*, pb::UnlinkReply*) override;
  grpc::Status Rename(grpc::ServerContext*, const pb::RenameRequest*, pb::RenameReply*) override;
  grpc::Status ReadDir(grpc::ServerContext*, const pb::ReadDirRequest*, pb::ReadDirReply*) override;
  grpc::Status GetXattr(grpc::ServerContext*, const pb::GetXattrRequest*,
                        pb::GetXattrReply*) override;
  grpc::Status SetXattr(grpc::ServerContext*, const pb::SetXattrRequest*, pb::AttrReply*) override;
  grpc::Status ListXattr(grpc::ServerContext*, const pb::ListXattrRequest*,
                         pb::ListXattrReply*) override;
  grpc::Status RemoveXattr(grpc::ServerContext*, const pb::RemoveXattrRequest*,
                           pb::AttrReply*) override;
  grpc::Status StatFs(grpc::ServerContext*, const pb::StatFsRequest*, pb::StatFsReply*) override;
  grpc::Status Forget(grpc::ServerContext*, const pb::ForgetRequest*, pb::Empty*) override;
  grpc::Status ListDirty(grpc::ServerContext*, const pb::ListDirtyRequest*,
                         pb::ListDirtyReply*) override;
  grpc::Status ClearDirty(grpc::ServerContext*, const pb::ClearDirtyRequest*,
                          pb::ClearDirtyReply*) override;

 private:
  template <typename Req, typename Fn>
  grpc::Status Serve(Op op, grpc::ServerContext* ctx, const Req& req, Fn&& fn);

  BrickRegistry* const registry_;
  const Authenticator* const auth_;
};

class BrickAdminServiceImpl final : public pb::BrickAdmin::Service {
 public:
  BrickAdminServiceImpl(BrickRegistry* registry, const Authenticator* auth)
      : registry_(registry), auth_(auth) {}
  grpc::Status Attach(grpc::ServerContext*, const pb::AttachRequest*, pb::AttachReply*) override;
  grpc::Status Detach(grpc::ServerContext*, const pb::DetachRequest*, pb::Empty*) override;
  grpc::Status ListBricks(grpc::ServerContext*, const pb::ListBricksRequest*,
                          pb::ListBricksReply*) override;
  grpc::Status SetCapacity(grpc::ServerContext*, const pb::SetCapacityRequest*,
                           pb::BrickInfo*) override;

 private:
  BrickRegistry* const registry_;
  const Authenticator* const auth_;
};

}  // namespace cairn::brickd
