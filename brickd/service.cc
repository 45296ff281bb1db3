// gRPC glue: authenticate, find the brick, run the operation, record metrics,
// map the Status. Nothing else happens here.
#include "brickd/service.h"

#include <chrono>

#include "common/file_util.h"
#include "common/status_grpc.h"

namespace cairn::brickd {

Status Authenticator::CheckHeader(std::string_view header, Role role) const {
  constexpr std::string_view kBearer = "Bearer ";
  if (header.size() <= kBearer.size() || header.substr(0, kBearer.size()) != kBearer) {
    return Status::Unauthenticated("missing bearer token");
  }
  std::string_view token = header.substr(kBearer.size());
  if (ConstantTimeEquals(token, admin_token_)) return Status::Ok();
  if (role == Role::kData && ConstantTimeEquals(token, data_token_)) return Status::Ok();
  if (role == Role::kAdmin && ConstantTimeEquals(token, data_token_)) {
    return Status::PermissionDenied("the data token may not administer bricks");
  }
  return Status::Unauthenticated("invalid token");
}

Status Authenticator::Check(const grpc::ServerContext& context, Role role) const {
  const auto& md = context.client_metadata();
  auto it = md.find("authorization");
  if (it == md.end()) return Status::Unauthenticated("missing bearer token");
  return CheckHeader(std::string_view(it->second.data(), it->second.size()), role);
}

template <typename Req, typename Fn>
grpc::Status BrickServiceImpl::Serve(Op op, grpc::ServerContext* ctx, const Req& req, Fn&& fn) {
  if (Status s = auth_->Check(*ctx, Role::kData); !s.ok()) return ToGrpcStatus(s, ctx);
  std::shared_ptr<Brick> brick = registry_->Find(req.brick_id());
  if (!brick) {
    return ToGrpcStatus(Status::NotFound("no brick '" + req.brick_id() + "' on this node"), ctx);
  }
  auto start = std::chrono::steady_clock::now();
  Status s = fn(*brick);
  brick->stats().Record(op, std::chrono::steady_clock::now() - start, s.ok());
  return ToGrpcStatus(s, ctx);
}

// Runs `call` (a Brick method returning StatusOr<T>) and moves the value into *out.
#define CAIRN_SERVE(OP, METHOD, OUT_EXPR)                   \
  return Serve(Op::OP, ctx, *req, [&](Brick& b) -> Status { \
    auto r = b.METHOD(*req);                                \
    if (!r.ok()) return r.status();                         \
    OUT_EXPR = std::move(*r);                               \
    return Status::Ok();                                    \
  })

grpc::Status BrickServiceImpl::Lookup(grpc::ServerContext* ctx, const pb::LookupRequest* req,
                                      pb::AttrReply* out) {
  CAIRN_SERVE(kLookup, Lookup, *out->mutable_attr());
}
grpc::Status BrickServiceImpl::GetAttr(grpc::ServerContext* ctx, const pb::GetAttrRequest* req,
                                       pb::AttrReply* out) {
  CAIRN_SERVE(kGetAttr, GetAttr, *out->mutable_attr());
}
grpc::Status BrickServiceImpl::SetAttr(grpc::ServerContext* ctx, const pb::SetAttrRequest* req,
                                       pb::AttrReply* out) {
  CAIRN_SERVE(kSetAttr, SetAttr, *out->mutable_attr());
}
grpc::Status BrickServiceImpl::Create(grpc::ServerContext* ctx, const pb::CreateRequest* req,
                                      pb::AttrReply* out) {
  CAIRN_SERVE(kCreate, Create, *out->mutable_attr());
}
grpc::Status BrickServiceImpl::Mknod(grpc::ServerContext* ctx, const pb::CreateRequest* req,
                                     pb::AttrReply* out) {
  CAIRN_SERVE(kMknod, Mknod, *out->mutable_attr());
}
grpc::Status BrickServiceImpl::Mkdir(grpc::ServerContext* ctx, const pb::CreateRequest* req,
                                     pb::AttrReply* out) {
  CAIRN_SERVE(kMkdir, Mkdir, *out->mutable_attr());
}
grpc::Status BrickServiceImpl::Symlink(grpc::ServerContext* ctx, const pb::CreateRequest* req,
                                       pb::AttrReply* out) {
  CAIRN_SERVE(kSymlink, Symlink, *out->mutable_attr());
}
grpc::Status BrickServiceImpl::Link(grpc::ServerContext* ctx, const pb::LinkRequest* req,
                                    pb::AttrReply* out) {
  CAIRN_SERVE(kLink, Link, *out->mutable_attr());
}
grpc::Status BrickServiceImpl::Readlink(grpc::ServerContext* ctx, const pb::ReadlinkRequest* req,
                                        pb::ReadlinkReply* out) {
  CAIRN_SERVE(kReadlink, Readlink, *out);
}
grpc::Status BrickServiceImpl::Read(grpc::ServerContext* ctx, const pb::ReadRequest* req,
                                    pb::ReadReply* out) {
  CAIRN_SERVE(kRead, Read, *out);
}
grpc::Status BrickServiceImpl::Write(grpc::ServerContext* ctx, const pb::WriteRequest* req,
                                     pb::WriteReply* out) {
  CAIRN_SERVE(kWrite, Write, *out);
}
grpc::Status BrickServiceImpl::Fsync(grpc::ServerContext* ctx, const pb::FsyncRequest* req,
                                     pb::Empty*) {
  return Serve(Op::kFsync, ctx, *req, [&](Brick& b) { return b.Fsync(*req); });
}
grpc::Status BrickServiceImpl::Fallocate(grpc::ServerContext* ctx, const pb::FallocateRequest* req,
                                         pb::AttrReply* out) {
  CAIRN_SERVE(kFallocate, Fallocate, *out->mutable_attr());
}
grpc::Status BrickServiceImpl::Truncate(grpc::ServerContext* ctx, const pb::TruncateRequest* req,
                                        pb::AttrReply* out) {
  CAIRN_SERVE(kTruncate, Truncate, *out->mutable_attr());
}
grpc::Status BrickServiceImpl::Unlink(grpc::ServerContext* ctx, const pb::UnlinkRequest* req,
                                      pb::UnlinkReply* out) {
  CAIRN_SERVE(kUnlink, Unlink, *out);
}
grpc::Status BrickServiceImpl::Rmdir(grpc::ServerContext* ctx, const pb::UnlinkRequest* req,
                                     pb::UnlinkReply* out) {
  CAIRN_SERVE(kRmdir, Rmdir, *out);
}
grpc::Status BrickServiceImpl::Rename(grpc::ServerContext* ctx, const pb::RenameRequest* req,
                                      pb::RenameReply* out) {
  CAIRN_SERVE(kRename, Rename, *out);
}
grpc::Status BrickServiceImpl::ReadDir(grpc::ServerContext* ctx, const pb::ReadDirRequest* req,
                                       pb::ReadDirReply* out) {
  CAIRN_SERVE(kReadDir, ReadDir, *out);
}
grpc::Status BrickServiceImpl::GetXattr(grpc::ServerContext* ctx, const pb::GetXattrRequest* req,
                                        pb::GetXattrReply* out) {
  CAIRN_SERVE(kGetXattr, GetXattr, *out);
}
grpc::Status BrickServiceImpl::SetXattr(grpc::ServerContext* ctx, const pb::SetXattrRequest* req,
                                        pb::AttrReply* out) {
  CAIRN_SERVE(kSetXattr, SetXattr, *out->mutable_attr());
}
grpc::Status BrickServiceImpl::ListXattr(grpc::ServerContext* ctx, const pb::ListXattrRequest* req,
                                         pb::ListXattrReply* out) {
  CAIRN_SERVE(kListXattr, ListXattr, *out);
}
grpc::Status BrickServiceImpl::RemoveXattr(grpc::ServerContext* ctx,
                                           const pb::RemoveXattrRequest* req, pb::AttrReply* out) {
  CAIRN_SERVE(kRemoveXattr, RemoveXattr, *out->mutable_attr());
}
grpc::Status BrickServiceImpl::StatFs(grpc::ServerContext* ctx, const pb::StatFsRequest* req,
                                      pb::StatFsReply* out) {
  CAIRN_SERVE(kStatFs, StatFs, *out);
}
grpc::Status BrickServiceImpl::Forget(grpc::ServerContext* ctx, const pb::ForgetRequest* req,
                                      pb::Empty*) {
  return Serve(Op::kForget, ctx, *req, [&](Brick& b) { return b.Forget(*req); });
}
grpc::Status BrickServiceImpl::ListDirty(grpc::ServerContext* ctx, const pb::ListDirtyRequest* req,
                                         pb::ListDirtyReply* out) {
  CAIRN_SERVE(kListDirty, ListDirty, *out);
}
grpc::Status BrickServiceImpl::ClearDirty(grpc::ServerContext* ctx,
                                          const pb::ClearDirtyRequest* req,
                                          pb::ClearDirtyReply* out) {
  CAIRN_SERVE(kClearDirty, ClearDirty, *out);
}

#undef CAIRN_SERVE

grpc::Status BrickAdminServiceImpl::Attach(grpc::ServerContext* ctx, const pb::AttachRequest* req,
                                           pb::AttachReply* out) {
  if (Status s = auth_->Check(*ctx, Role::kAdmin); !s.ok()) return ToGrpcStatus(s, ctx);
  auto r = registry_->Attach(*req);
  if (!r.ok()) return ToGrpcStatus(r.status(), ctx);
  *out = std::move(*r);
  return grpc::Status::OK;
}

grpc::Status BrickAdminServiceImpl::Detach(grpc::ServerContext* ctx, const pb::DetachRequest* req,
                                           pb::Empty*) {
  if (Status s = auth_->Check(*ctx, Role::kAdmin); !s.ok()) return ToGrpcStatus(s, ctx);
  return ToGrpcStatus(registry_->Detach(req->brick_id()), ctx);
}

grpc::Status BrickAdminServiceImpl::ListBricks(grpc::ServerContext* ctx,
                                               const pb::ListBricksRequest*,
                                               pb::ListBricksReply* out) {
  if (Status s = auth_->Check(*ctx, Role::kAdmin); !s.ok()) return ToGrpcStatus(s, ctx);
  for (const auto& b : registry_->List()) *out->add_bricks() = InfoOf(*b);
  return grpc::Status::OK;
}

grpc::Status BrickAdminServiceImpl::SetCapacity(grpc::ServerContext* ctx,
                                                const pb::SetCapacityRequest* req,
                                                pb::BrickInfo* out) {
  if (Status s = auth_->Check(*ctx, Role::kAdmin); !s.ok()) return ToGrpcStatus(s, ctx);
  auto r = registry_->SetCapacity(req->brick_id(), req->capacity_bytes());
  if (!r.ok()) return ToGrpcStatus(r.status(), ctx);
  *out = std::move(*r);
  return grpc::Status::OK;
}

}  // namespace cairn::brickd
