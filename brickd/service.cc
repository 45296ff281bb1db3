// gRPC glue: authenticate, queue the work on the pool, find the brick, run the
// operation, record metrics, map the Status. Nothing else happens here.
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

Status Authenticator::Check(const grpc::ServerContextBase& context, Role role) const {
  const auto& md = context.client_metadata();
  auto it = md.find("authorization");
  if (it == md.end()) return Status::Unauthenticated("missing bearer token");
  return CheckHeader(std::string_view(it->second.data(), it->second.size()), role);
}

namespace {

// Calls allowed to wait for a worker before brickd answers RESOURCE_EXHAUSTED.
constexpr size_t kMaxQueuedCalls = 1 << 16;

grpc::ServerUnaryReactor* Finished(grpc::CallbackServerContext* ctx, const Status& s) {
  auto* reactor = ctx->DefaultReactor();
  reactor->Finish(ToGrpcStatus(s, ctx));
  return reactor;
}

Status Overloaded() {
  return Status::ResourceExhausted("brickd is overloaded: too many calls queued");
}

// Short operations run inline on the gRPC thread that received them: a hop
// to the worker pool and back costs two context switches, more than the few
// file system calls most operations make. Operations that may take long
// (fsync, large reads and writes, directory listings, allocation, checksums) go to the
// pool, so they never hold up gRPC's threads.
constexpr size_t kInlineIoBytes = 64 << 10;
bool RunsInline(Op op) {
  switch (op) {
    case Op::kFsync:
    case Op::kFallocate:
    case Op::kReadDir:
    case Op::kListDirty:
    case Op::kRead:
    case Op::kWrite:
    case Op::kChecksum:
      return false;
    default:
      return true;
  }
}
template <typename Req>
bool RunsInline(Op op, const Req&) {
  return RunsInline(op);
}
bool RunsInline(Op, const pb::ReadRequest& r) { return r.size() <= kInlineIoBytes; }
bool RunsInline(Op, const pb::WriteRequest& r) { return r.data().size() <= kInlineIoBytes; }

}  // namespace

template <typename Req, typename Fn>
grpc::ServerUnaryReactor* BrickServiceImpl::Serve(Op op, grpc::CallbackServerContext* ctx,
                                                  const Req* req, Fn fn) {
  if (Status s = auth_->Check(*ctx, Role::kData); !s.ok()) return Finished(ctx, s);
  auto* reactor = ctx->DefaultReactor();
  auto work = [this, op, ctx, req, reactor, fn = std::move(fn)]() mutable {
    std::shared_ptr<Brick> brick = registry_->Find(req->brick_id());
    Status s;
    if (!brick) {
      s = Status::NotFound("no brick '" + req->brick_id() + "' on this node");
    } else {
      auto start = std::chrono::steady_clock::now();
      s = fn(*brick);
      brick->stats().Record(op, std::chrono::steady_clock::now() - start, s.ok());
    }
    reactor->Finish(ToGrpcStatus(s, ctx));
  };
  if (RunsInline(op, *req)) {
    work();
    return reactor;
  }
  bool queued = pool_->Submit(std::move(work));
  if (!queued) reactor->Finish(ToGrpcStatus(Overloaded(), ctx));
  return reactor;
}

// A Brick RPC whose Brick method returns StatusOr<T>: the value goes to OUT.
#define CAIRN_BRICK_RPC(METHOD, REQ, REP, OP, OUT)                                       \
  grpc::ServerUnaryReactor* BrickServiceImpl::METHOD(grpc::CallbackServerContext* ctx,   \
                                                     const pb::REQ* req, pb::REP* out) { \
    return Serve(Op::OP, ctx, req, [req, out](Brick& b) -> Status {                      \
      auto r = b.METHOD(*req);                                                           \
      if (!r.ok()) return r.status();                                                    \
      OUT = std::move(*r);                                                               \
      return Status::Ok();                                                               \
    });                                                                                  \
  }

CAIRN_BRICK_RPC(Lookup, LookupRequest, AttrReply, kLookup, *out->mutable_attr())
CAIRN_BRICK_RPC(GetAttr, GetAttrRequest, AttrReply, kGetAttr, *out->mutable_attr())
CAIRN_BRICK_RPC(SetAttr, SetAttrRequest, AttrReply, kSetAttr, *out->mutable_attr())
CAIRN_BRICK_RPC(Create, CreateRequest, AttrReply, kCreate, *out->mutable_attr())
CAIRN_BRICK_RPC(Mknod, CreateRequest, AttrReply, kMknod, *out->mutable_attr())
CAIRN_BRICK_RPC(Mkdir, CreateRequest, AttrReply, kMkdir, *out->mutable_attr())
CAIRN_BRICK_RPC(Symlink, CreateRequest, AttrReply, kSymlink, *out->mutable_attr())
CAIRN_BRICK_RPC(Link, LinkRequest, AttrReply, kLink, *out->mutable_attr())
CAIRN_BRICK_RPC(Readlink, ReadlinkRequest, ReadlinkReply, kReadlink, *out)
CAIRN_BRICK_RPC(Read, ReadRequest, ReadReply, kRead, *out)
CAIRN_BRICK_RPC(Write, WriteRequest, WriteReply, kWrite, *out)
CAIRN_BRICK_RPC(Fallocate, FallocateRequest, AttrReply, kFallocate, *out->mutable_attr())
CAIRN_BRICK_RPC(Truncate, TruncateRequest, AttrReply, kTruncate, *out->mutable_attr())
CAIRN_BRICK_RPC(Unlink, UnlinkRequest, UnlinkReply, kUnlink, *out)
CAIRN_BRICK_RPC(Rmdir, UnlinkRequest, UnlinkReply, kRmdir, *out)
CAIRN_BRICK_RPC(Rename, RenameRequest, RenameReply, kRename, *out)
CAIRN_BRICK_RPC(ReadDir, ReadDirRequest, ReadDirReply, kReadDir, *out)
CAIRN_BRICK_RPC(GetXattr, GetXattrRequest, GetXattrReply, kGetXattr, *out)
CAIRN_BRICK_RPC(SetXattr, SetXattrRequest, AttrReply, kSetXattr, *out->mutable_attr())
CAIRN_BRICK_RPC(ListXattr, ListXattrRequest, ListXattrReply, kListXattr, *out)
CAIRN_BRICK_RPC(RemoveXattr, RemoveXattrRequest, AttrReply, kRemoveXattr, *out->mutable_attr())
CAIRN_BRICK_RPC(StatFs, StatFsRequest, StatFsReply, kStatFs, *out)
CAIRN_BRICK_RPC(ListDirty, ListDirtyRequest, ListDirtyReply, kListDirty, *out)
CAIRN_BRICK_RPC(ClearDirty, ClearDirtyRequest, ClearDirtyReply, kClearDirty, *out)
CAIRN_BRICK_RPC(Checksum, ChecksumRequest, ChecksumReply, kChecksum, *out)
CAIRN_BRICK_RPC(Locate, LocateRequest, LocateReply, kLocate, *out)
CAIRN_BRICK_RPC(SetVersion, SetVersionRequest, AttrReply, kSetVersion, *out->mutable_attr())

#undef CAIRN_BRICK_RPC

grpc::ServerUnaryReactor* BrickServiceImpl::Fsync(grpc::CallbackServerContext* ctx,
                                                  const pb::FsyncRequest* req, pb::Empty*) {
  return Serve(Op::kFsync, ctx, req, [req](Brick& b) { return b.Fsync(*req); });
}
grpc::ServerUnaryReactor* BrickServiceImpl::Forget(grpc::CallbackServerContext* ctx,
                                                   const pb::ForgetRequest* req, pb::Empty*) {
  return Serve(Op::kForget, ctx, req, [req](Brick& b) { return b.Forget(*req); });
}

grpc::ServerUnaryReactor* BrickServiceImpl::DirtySummary(grpc::CallbackServerContext* ctx,
                                                         const pb::DirtySummaryRequest*,
                                                         pb::DirtySummaryReply* out) {
  if (Status s = auth_->Check(*ctx, Role::kData); !s.ok()) return Finished(ctx, s);
  auto* reactor = ctx->DefaultReactor();
  bool queued = pool_->Submit([this, ctx, reactor, out] {
    // A brick whose index cannot be read counts as dirty: its healer polls it
    // in full and reports what is wrong.
    for (const auto& b : registry_->List()) {
      auto* e = out->add_bricks();
      e->set_brick_id(b->id());
      auto dirty = b->HasDirty();
      e->set_dirty(!dirty.ok() || *dirty);
    }
    reactor->Finish(ToGrpcStatus(Status::Ok(), ctx));
  });
  if (!queued) reactor->Finish(ToGrpcStatus(Overloaded(), ctx));
  return reactor;
}

std::shared_ptr<client::Node> BrickServiceImpl::Peer(const std::string& address) {
  constexpr size_t kMaxPeers = 1024;  // a cluster's brickds; more: start over
  std::lock_guard l(peers_mu_);
  if (auto it = peers_.find(address); it != peers_.end()) return it->second;
  if (peers_.size() >= kMaxPeers) peers_.clear();
  auto node = std::make_shared<client::Node>(address);
  peers_[address] = node;
  return node;
}

grpc::ServerUnaryReactor* BrickServiceImpl::CopyFrom(grpc::CallbackServerContext* ctx,
                                                     const pb::CopyFromRequest* req,
                                                     pb::WriteReply* out) {
  if (Status s = auth_->Check(*ctx, Role::kAdmin); !s.ok()) return Finished(ctx, s);
  if (req->length() == 0 || req->length() > kMaxIoBytes) {
    return Finished(ctx, Status(StatusCode::kInvalidArgument,
                                "length must be 1.." + std::to_string(kMaxIoBytes) + ", not " +
                                    std::to_string(req->length()),
                                EINVAL));
  }
  if (req->source_node().empty() || req->source_brick_id().empty()) {
    return Finished(ctx, Status(StatusCode::kInvalidArgument,
                                "source_node and source_brick_id are required", EINVAL));
  }
  if (!registry_->Find(req->brick_id())) {
    return Finished(ctx, Status::NotFound("no brick '" + req->brick_id() + "' on this node"));
  }
  // The source is read with the callback API: no worker waits on the
  // network (a worker blocked on a source served by this very brickd could
  // otherwise wait for a worker). The write runs on the pool.
  struct Call {
    grpc::ClientContext ctx;
    pb::ReadRequest rq;
    pb::ReadReply rp;
    std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
  };
  auto call = std::make_shared<Call>();
  call->rq.set_brick_id(req->source_brick_id());
  call->rq.set_id(req->id());
  call->rq.set_offset(req->offset());
  call->rq.set_size(req->length());
  const auto limit = std::chrono::system_clock::now() + std::chrono::seconds(60);
  client::PrepareContext(&call->ctx, auth_->data_token(), std::chrono::seconds(60));
  call->ctx.set_deadline(std::min(limit, ctx->deadline()));
  std::shared_ptr<client::Node> source = Peer(req->source_node());
  auto* reactor = ctx->DefaultReactor();
  source->stub()->async()->Read(
      &call->ctx, &call->rq, &call->rp,
      [this, call, source, ctx, req, out, reactor](grpc::Status st) {
        if (!st.ok()) {
          const Status s = FromGrpcStatus(st, call->ctx);
          const std::string what = "source brick " + req->source_brick_id() + " on " +
                                   req->source_node() + ": " + s.message();
          reactor->Finish(ToGrpcStatus(client::IsTransportFailure(st)
                                           ? Status(StatusCode::kUnavailable, what, ENOTCONN)
                                           : Status(s.code(), what, s.posix_errno()),
                                       ctx));
          return;
        }
        bool queued = pool_->Submit([this, call, ctx, req, out, reactor] {
          std::shared_ptr<Brick> brick = registry_->Find(req->brick_id());
          Status s;
          if (!brick) {
            s = Status::NotFound("no brick '" + req->brick_id() + "' on this node");
          } else {
            pb::WriteRequest w;
            w.set_brick_id(req->brick_id());
            w.set_id(req->id());
            *w.mutable_txn() = req->txn();
            w.set_offset(req->offset());
            std::string* data = call->rp.mutable_data();
            // The source shrank meanwhile: its version moved, and the heal's
            // commit (conditional on it) will not take this copy.
            if (data->size() < req->length()) data->resize(req->length(), '\0');
            w.set_data(std::move(*data));
            auto r = brick->Write(w);
            s = r.status();
            if (r.ok()) *out = std::move(*r);
            brick->stats().Record(Op::kCopyFrom, std::chrono::steady_clock::now() - call->start,
                                  s.ok());
          }
          reactor->Finish(ToGrpcStatus(s, ctx));
        });
        if (!queued) reactor->Finish(ToGrpcStatus(Overloaded(), ctx));
      });
  return reactor;
}

template <typename Req, typename Fn>
grpc::ServerUnaryReactor* BrickAdminServiceImpl::Serve(grpc::CallbackServerContext* ctx, const Req*,
                                                       Fn fn) {
  if (Status s = auth_->Check(*ctx, Role::kAdmin); !s.ok()) return Finished(ctx, s);
  auto* reactor = ctx->DefaultReactor();
  bool queued = pool_->Submit(
      [ctx, reactor, fn = std::move(fn)]() mutable { reactor->Finish(ToGrpcStatus(fn(), ctx)); });
  if (!queued) reactor->Finish(ToGrpcStatus(Overloaded(), ctx));
  return reactor;
}

grpc::ServerUnaryReactor* BrickAdminServiceImpl::Attach(grpc::CallbackServerContext* ctx,
                                                        const pb::AttachRequest* req,
                                                        pb::AttachReply* out) {
  return Serve(ctx, req, [this, req, out]() -> Status {
    auto r = registry_->Attach(*req);
    if (!r.ok()) return r.status();
    *out = std::move(*r);
    return Status::Ok();
  });
}

grpc::ServerUnaryReactor* BrickAdminServiceImpl::Detach(grpc::CallbackServerContext* ctx,
                                                        const pb::DetachRequest* req, pb::Empty*) {
  return Serve(ctx, req, [this, req] { return registry_->Detach(req->brick_id()); });
}

grpc::ServerUnaryReactor* BrickAdminServiceImpl::ListBricks(grpc::CallbackServerContext* ctx,
                                                            const pb::ListBricksRequest* req,
                                                            pb::ListBricksReply* out) {
  return Serve(ctx, req, [this, out] {
    for (const auto& b : registry_->List()) *out->add_bricks() = InfoOf(*b);
    return Status::Ok();
  });
}

grpc::ServerUnaryReactor* BrickAdminServiceImpl::SetCapacity(grpc::CallbackServerContext* ctx,
                                                             const pb::SetCapacityRequest* req,
                                                             pb::BrickInfo* out) {
  return Serve(ctx, req, [this, req, out]() -> Status {
    auto r = registry_->SetCapacity(req->brick_id(), req->capacity_bytes());
    if (!r.ok()) return r.status();
    *out = std::move(*r);
    return Status::Ok();
  });
}

}  // namespace cairn::brickd
