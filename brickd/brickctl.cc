// brickctl: talk to one brickd directly — attach/detach bricks, inspect them,
// and move files in and out of a brick's root. An operator's and a demo's tool;
// volumes (distribution, replication) are the client library's job.
//
//   brickctl --addr=127.0.0.1:24009 --token-file=admin.token attach b1 /srv/bricks/b1
//   brickctl ... put b1 ./report.pdf report.pdf
//   brickctl ... ls b1
#include <grpcpp/grpcpp.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include "common/file_util.h"
#include "common/flags.h"
#include "common/id.h"
#include "common/status_grpc.h"
#include "proto/brick.grpc.pb.h"

namespace cairn {
namespace {

namespace pb = ::cairn::brick::v1;

constexpr char kUsage[] =
    "commands:\n"
    "  attach BRICK PATH [CAPACITY_BYTES]   attach a directory as a brick\n"
    "  detach BRICK                         detach a brick\n"
    "  list                                 list attached bricks\n"
    "  statfs BRICK                         capacity and usage\n"
    "  put BRICK LOCAL_FILE NAME            copy a local file into the brick root\n"
    "  get BRICK NAME                       print a file from the brick root\n"
    "  ls BRICK                             list the brick root with attributes\n";

class Client {
 public:
  Client(const std::string& addr, std::string token) : token_(std::move(token)) {
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(8 << 20);
    args.SetMaxSendMessageSize(8 << 20);
    auto ch = grpc::CreateCustomChannel(addr, grpc::InsecureChannelCredentials(), args);
    brick_ = pb::Brick::NewStub(ch);
    admin_ = pb::BrickAdmin::NewStub(ch);
  }
  template <typename Stub, typename Req, typename Rep>
  Status Call(Stub* stub, grpc::Status (Stub::*method)(grpc::ClientContext*, const Req&, Rep*),
              const Req& req, Rep* rep) {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + token_);
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    return FromGrpcStatus((stub->*method)(&ctx, req, rep), ctx);
  }
  pb::Brick::Stub* brick() { return brick_.get(); }
  pb::BrickAdmin::Stub* admin() { return admin_.get(); }

 private:
  std::string token_;
  std::unique_ptr<pb::Brick::Stub> brick_;
  std::unique_ptr<pb::BrickAdmin::Stub> admin_;
};

Status Need(const std::vector<std::string>& args, size_t n) {
  if (args.size() < n) return Status::InvalidArgument(std::string("missing arguments\n") + kUsage);
  return Status::Ok();
}

Status Run(Client& c, const std::vector<std::string>& args) {
  CAIRN_RETURN_IF_ERROR(Need(args, 1));
  const std::string& cmd = args[0];
  const std::string root = Uuid::Root().Raw();
  if (cmd == "attach") {
    CAIRN_RETURN_IF_ERROR(Need(args, 3));
    pb::AttachRequest req;
    req.set_brick_id(args[1]);
    req.set_path(args[2]);
    if (args.size() > 3) req.set_capacity_bytes(std::stoull(args[3]));
    pb::AttachReply rep;
    CAIRN_RETURN_IF_ERROR(c.Call(c.admin(), &pb::BrickAdmin::Stub::Attach, req, &rep));
    std::printf("attached %s at %s%s\n", rep.brick().brick_id().c_str(), rep.brick().path().c_str(),
                rep.initialised() ? " (new brick)" : "");
    return Status::Ok();
  }
  if (cmd == "detach") {
    CAIRN_RETURN_IF_ERROR(Need(args, 2));
    pb::DetachRequest req;
    req.set_brick_id(args[1]);
    pb::Empty rep;
    CAIRN_RETURN_IF_ERROR(c.Call(c.admin(), &pb::BrickAdmin::Stub::Detach, req, &rep));
    std::printf("detached %s\n", args[1].c_str());
    return Status::Ok();
  }
  if (cmd == "list") {
    pb::ListBricksReply rep;
    CAIRN_RETURN_IF_ERROR(
        c.Call(c.admin(), &pb::BrickAdmin::Stub::ListBricks, pb::ListBricksRequest(), &rep));
    std::printf("%-24s %-14s %-14s %s\n", "BRICK", "CAPACITY", "USED", "PATH");
    for (const auto& b : rep.bricks()) {
      std::printf("%-24s %-14llu %-14llu %s\n", b.brick_id().c_str(),
                  static_cast<unsigned long long>(b.capacity_bytes()),
                  static_cast<unsigned long long>(b.used_bytes()), b.path().c_str());
    }
    return Status::Ok();
  }
  CAIRN_RETURN_IF_ERROR(Need(args, 2));
  const std::string& brick = args[1];
  if (cmd == "statfs") {
    pb::StatFsRequest req;
    req.set_brick_id(brick);
    pb::StatFsReply rep;
    CAIRN_RETURN_IF_ERROR(c.Call(c.brick(), &pb::Brick::Stub::StatFs, req, &rep));
    std::printf("brick %s: capacity %llu bytes, used %llu, free %llu, inodes free %llu\n",
                brick.c_str(), static_cast<unsigned long long>(rep.capacity_bytes()),
                static_cast<unsigned long long>(rep.used_bytes()),
                static_cast<unsigned long long>(rep.free_bytes()),
                static_cast<unsigned long long>(rep.files_free()));
    return Status::Ok();
  }
  if (cmd == "put") {
    CAIRN_RETURN_IF_ERROR(Need(args, 4));
    CAIRN_ASSIGN_OR_RETURN(std::string data, ReadFile(args[2]));
    pb::CreateRequest cr;
    cr.set_brick_id(brick);
    cr.set_parent_id(root);
    cr.set_name(args[3]);
    cr.set_new_id(Uuid::Random().Raw());
    cr.set_mode(0644);
    pb::AttrReply attr;
    CAIRN_RETURN_IF_ERROR(c.Call(c.brick(), &pb::Brick::Stub::Create, cr, &attr));
    constexpr size_t kChunk = 1 << 20;
    for (size_t off = 0; off < data.size(); off += kChunk) {
      pb::WriteRequest w;
      w.set_brick_id(brick);
      w.set_id(attr.attr().id());
      w.set_offset(off);
      w.set_data(data.substr(off, kChunk));
      pb::WriteReply wr;
      CAIRN_RETURN_IF_ERROR(c.Call(c.brick(), &pb::Brick::Stub::Write, w, &wr));
    }
    std::printf("put %s (%zu bytes) id %s\n", args[3].c_str(), data.size(),
                Uuid::FromBytes(attr.attr().id())->ToString().c_str());
    return Status::Ok();
  }
  if (cmd == "get") {
    CAIRN_RETURN_IF_ERROR(Need(args, 3));
    pb::LookupRequest l;
    l.set_brick_id(brick);
    l.set_parent_id(root);
    l.set_name(args[2]);
    pb::AttrReply attr;
    CAIRN_RETURN_IF_ERROR(c.Call(c.brick(), &pb::Brick::Stub::Lookup, l, &attr));
    for (uint64_t off = 0;;) {
      pb::ReadRequest r;
      r.set_brick_id(brick);
      r.set_id(attr.attr().id());
      r.set_offset(off);
      r.set_size(1 << 20);
      pb::ReadReply rep;
      CAIRN_RETURN_IF_ERROR(c.Call(c.brick(), &pb::Brick::Stub::Read, r, &rep));
      std::fwrite(rep.data().data(), 1, rep.data().size(), stdout);
      off += rep.data().size();
      if (rep.eof() || rep.data().empty()) break;
    }
    return Status::Ok();
  }
  if (cmd == "ls") {
    pb::ReadDirRequest r;
    r.set_brick_id(brick);
    r.set_id(root);
    r.set_with_attrs(true);
    for (;;) {
      pb::ReadDirReply rep;
      CAIRN_RETURN_IF_ERROR(c.Call(c.brick(), &pb::Brick::Stub::ReadDir, r, &rep));
      for (const auto& e : rep.entries()) {
        auto id = Uuid::FromBytes(e.attr().id());
        std::printf("%06o %5u %5u %10llu  %s  %s\n", e.attr().mode(), e.attr().uid(),
                    e.attr().gid(), static_cast<unsigned long long>(e.attr().size()),
                    id.ok() ? id->ToString().c_str() : "-", e.name().c_str());
      }
      if (rep.eof()) break;
      r.set_cookie(rep.next_cookie());
    }
    return Status::Ok();
  }
  return Status::InvalidArgument("unknown command '" + cmd + "'\n" + kUsage);
}

}  // namespace
}  // namespace cairn

int main(int argc, char** argv) {
  cairn::Flags flags("brickctl", std::string("Talks to one brickd.\n\n") + cairn::kUsage);
  flags.AddString("addr", "127.0.0.1:24009", "brickd address host:port");
  flags.AddString("token-file", "", "file holding the bearer token (admin token for attach)");
  if (auto s = flags.Parse(argc, argv); !s.ok()) {
    std::fprintf(stderr, "brickctl: %s\n", s.message().c_str());
    return 2;
  }
  if (flags.help_requested()) {
    std::fputs(flags.Usage().c_str(), stdout);
    return 0;
  }
  auto token = cairn::ReadSecretFile(flags.GetString("token-file"));
  if (!token.ok()) {
    std::fprintf(stderr, "brickctl: --token-file: %s\n", token.status().message().c_str());
    return 2;
  }
  cairn::Client client(flags.GetString("addr"), *token);
  cairn::Status s = cairn::Run(client, flags.positional());
  if (!s.ok()) {
    std::fprintf(stderr, "brickctl: %s\n", s.ToString().c_str());
    return s.code() == cairn::StatusCode::kInvalidArgument ? 2 : 1;
  }
  return 0;
}
