// Tests for Status/StatusOr and the three edge mappings (errno, gRPC, HTTP).
#include "common/status.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/status_errno.h"
#include "common/status_grpc.h"
#include "common/status_http.h"
#include "proto/brick.grpc.pb.h"

namespace cairn {
namespace {

// Every code, in numeric order.
const std::vector<StatusCode>& AllCodes() {
  static const std::vector<StatusCode> codes = {
      StatusCode::kOk,
      StatusCode::kCancelled,
      StatusCode::kUnknown,
      StatusCode::kInvalidArgument,
      StatusCode::kDeadlineExceeded,
      StatusCode::kNotFound,
      StatusCode::kAlreadyExists,
      StatusCode::kPermissionDenied,
      StatusCode::kResourceExhausted,
      StatusCode::kFailedPrecondition,
      StatusCode::kAborted,
      StatusCode::kOutOfRange,
      StatusCode::kUnimplemented,
      StatusCode::kInternal,
      StatusCode::kUnavailable,
      StatusCode::kDataLoss,
      StatusCode::kUnauthenticated,
  };
  return codes;
}

std::vector<StatusCode> AllErrorCodes() {
  std::vector<StatusCode> codes;
  for (StatusCode c : AllCodes()) {
    if (c != StatusCode::kOk) codes.push_back(c);
  }
  return codes;
}

// ---------------------------------------------------------------------------
// Status basics

TEST(Status, DefaultIsOkWithNoMessageOrErrno) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kOk);
  EXPECT_EQ(s.message(), "");
  EXPECT_EQ(s.posix_errno(), 0);
  EXPECT_EQ(s, Status::Ok());
}

TEST(Status, ErrorCarriesCodeMessageAndErrno) {
  Status s(StatusCode::kNotFound, "no such brick b1", ENOENT);
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_EQ(s.message(), "no such brick b1");
  EXPECT_EQ(s.posix_errno(), ENOENT);
}

TEST(Status, FactoriesProduceTheirCodes) {
  struct Case {
    Status (*make)(std::string);
    StatusCode code;
  };
  const Case cases[] = {
      {&Status::InvalidArgument, StatusCode::kInvalidArgument},
      {&Status::NotFound, StatusCode::kNotFound},
      {&Status::AlreadyExists, StatusCode::kAlreadyExists},
      {&Status::PermissionDenied, StatusCode::kPermissionDenied},
      {&Status::ResourceExhausted, StatusCode::kResourceExhausted},
      {&Status::FailedPrecondition, StatusCode::kFailedPrecondition},
      {&Status::OutOfRange, StatusCode::kOutOfRange},
      {&Status::Unimplemented, StatusCode::kUnimplemented},
      {&Status::Internal, StatusCode::kInternal},
      {&Status::Unavailable, StatusCode::kUnavailable},
      {&Status::Unauthenticated, StatusCode::kUnauthenticated},
      {&Status::Aborted, StatusCode::kAborted},
      {&Status::DeadlineExceeded, StatusCode::kDeadlineExceeded},
  };
  for (const Case& c : cases) {
    Status s = c.make("why");
    EXPECT_EQ(s.code(), c.code) << StatusCodeName(c.code);
    EXPECT_EQ(s.message(), "why");
    EXPECT_EQ(s.posix_errno(), 0);
    EXPECT_FALSE(s.ok());
  }
}

TEST(Status, PredicatesMatchOnlyTheirCode) {
  EXPECT_TRUE(Status::NotFound("x").IsNotFound());
  EXPECT_FALSE(Status::Internal("x").IsNotFound());
  EXPECT_TRUE(Status::AlreadyExists("x").IsAlreadyExists());
  EXPECT_FALSE(Status::NotFound("x").IsAlreadyExists());
  EXPECT_TRUE(Status::InvalidArgument("x").IsInvalidArgument());
  EXPECT_FALSE(Status::OutOfRange("x").IsInvalidArgument());
  EXPECT_TRUE(Status::Unavailable("x").IsUnavailable());
  EXPECT_FALSE(Status::DeadlineExceeded("x").IsUnavailable());
}

TEST(Status, EqualityComparesCodeMessageAndErrno) {
  Status base(StatusCode::kNotFound, "m", ENOENT);
  EXPECT_EQ(base, Status(StatusCode::kNotFound, "m", ENOENT));
  EXPECT_NE(base, Status(StatusCode::kInternal, "m", ENOENT));
  EXPECT_NE(base, Status(StatusCode::kNotFound, "other", ENOENT));
  EXPECT_NE(base, Status(StatusCode::kNotFound, "m", ESTALE));
  EXPECT_NE(base, Status(StatusCode::kNotFound, "m"));
}

TEST(StatusCodeName, NamesEveryCodeCanonically) {
  const std::pair<StatusCode, std::string_view> names[] = {
      {StatusCode::kOk, "OK"},
      {StatusCode::kCancelled, "CANCELLED"},
      {StatusCode::kUnknown, "UNKNOWN"},
      {StatusCode::kInvalidArgument, "INVALID_ARGUMENT"},
      {StatusCode::kDeadlineExceeded, "DEADLINE_EXCEEDED"},
      {StatusCode::kNotFound, "NOT_FOUND"},
      {StatusCode::kAlreadyExists, "ALREADY_EXISTS"},
      {StatusCode::kPermissionDenied, "PERMISSION_DENIED"},
      {StatusCode::kResourceExhausted, "RESOURCE_EXHAUSTED"},
      {StatusCode::kFailedPrecondition, "FAILED_PRECONDITION"},
      {StatusCode::kAborted, "ABORTED"},
      {StatusCode::kOutOfRange, "OUT_OF_RANGE"},
      {StatusCode::kUnimplemented, "UNIMPLEMENTED"},
      {StatusCode::kInternal, "INTERNAL"},
      {StatusCode::kUnavailable, "UNAVAILABLE"},
      {StatusCode::kDataLoss, "DATA_LOSS"},
      {StatusCode::kUnauthenticated, "UNAUTHENTICATED"},
  };
  ASSERT_EQ(std::size(names), AllCodes().size());
  for (const auto& [code, name] : names) EXPECT_EQ(StatusCodeName(code), name);
}

TEST(StatusCodeName, OutOfRangeValueIsUnknown) {
  EXPECT_EQ(StatusCodeName(static_cast<StatusCode>(99)), "UNKNOWN");
}

TEST(StatusToString, OkIsJustOk) { EXPECT_EQ(Status::Ok().ToString(), "OK"); }

TEST(StatusToString, ErrorWithoutErrnoIsCodeAndMessage) {
  EXPECT_EQ(Status::InvalidArgument("port 0 is not allowed").ToString(),
            "INVALID_ARGUMENT: port 0 is not allowed");
}

TEST(StatusToString, AppendsSymbolicErrnoName) {
  EXPECT_EQ(Status(StatusCode::kNotFound, "no such brick b1", ENOENT).ToString(),
            "NOT_FOUND: no such brick b1 [ENOENT]");
  EXPECT_EQ(Status(StatusCode::kFailedPrecondition, "rmdir d", ENOTEMPTY).ToString(),
            "FAILED_PRECONDITION: rmdir d [ENOTEMPTY]");
}

TEST(StatusToString, UnknownErrnoIsPrintedNumerically) {
  EXPECT_EQ(Status(StatusCode::kInternal, "odd", 9999).ToString(), "INTERNAL: odd [E9999]");
}

TEST(StatusWithContext, PrefixesMessageAndKeepsCodeAndErrno) {
  Status s = Status(StatusCode::kPermissionDenied, "open f", EACCES).WithContext("brick b1");
  EXPECT_EQ(s.code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(s.message(), "brick b1: open f");
  EXPECT_EQ(s.posix_errno(), EACCES);
}

TEST(StatusWithContext, NestsOutermostFirst) {
  Status s = Status::NotFound("x").WithContext("inner").WithContext("outer");
  EXPECT_EQ(s.message(), "outer: inner: x");
}

TEST(StatusWithContext, OkStaysOkWithoutMessage) {
  Status s = Status::Ok().WithContext("ctx");
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.message(), "");
}

// ---------------------------------------------------------------------------
// StatusOr

TEST(StatusOr, HoldsValue) {
  StatusOr<int> v = 42;
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v.status().ok());
  EXPECT_EQ(v.value(), 42);
  EXPECT_EQ(*v, 42);
}

TEST(StatusOr, HoldsErrorAndNoValue) {
  StatusOr<int> v = Status(StatusCode::kNotFound, "gone", ENOENT);
  EXPECT_FALSE(v.ok());
  EXPECT_EQ(v.status(), Status(StatusCode::kNotFound, "gone", ENOENT));
}

TEST(StatusOr, ArrowAndMutationReachTheValue) {
  StatusOr<std::string> v = std::string("abc");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->size(), 3u);
  v->append("d");
  *v += "e";
  EXPECT_EQ(v.value(), "abcde");
}

TEST(StatusOr, MoveOnlyValueCanBeMovedOut) {
  StatusOr<std::unique_ptr<int>> v = std::make_unique<int>(7);
  ASSERT_TRUE(v.ok());
  std::unique_ptr<int> p = std::move(v).value();
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(*p, 7);
}

#ifdef NDEBUG
TEST(StatusOr, BuiltFromOkStatusBecomesInternalErrorInReleaseBuilds) {
  StatusOr<int> v = Status::Ok();
  EXPECT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), StatusCode::kInternal);
}
#else
TEST(StatusOrDeathTest, BuiltFromOkStatusAssertsInDebugBuilds) {
  EXPECT_DEATH({ StatusOr<int> v = Status::Ok(); }, "no value");
}
#endif

// ---------------------------------------------------------------------------
// Macros

StatusOr<int> ParsePositive(int x) {
  if (x <= 0) return Status::InvalidArgument("not positive");
  return x;
}

StatusOr<int> DoubledPositive(int x, int* reached) {
  CAIRN_ASSIGN_OR_RETURN(int v, ParsePositive(x));
  ++*reached;
  return v * 2;
}

TEST(Macros, AssignOrReturnDeclaresValueOnSuccess) {
  int reached = 0;
  StatusOr<int> r = DoubledPositive(21, &reached);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 42);
  EXPECT_EQ(reached, 1);
}

TEST(Macros, AssignOrReturnReturnsTheErrorEarly) {
  int reached = 0;
  StatusOr<int> r = DoubledPositive(-1, &reached);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.status(), Status::InvalidArgument("not positive"));
  EXPECT_EQ(reached, 0);
}

Status AssignIntoExistingAndMoveOnly(int x, std::unique_ptr<int>* out) {
  int v = 0;
  CAIRN_ASSIGN_OR_RETURN(v, ParsePositive(x));
  CAIRN_ASSIGN_OR_RETURN(*out, StatusOr<std::unique_ptr<int>>(std::make_unique<int>(v)));
  return Status::Ok();
}

TEST(Macros, AssignOrReturnWorksForExistingLvaluesAndMoveOnlyTypes) {
  std::unique_ptr<int> out;
  ASSERT_TRUE(AssignIntoExistingAndMoveOnly(5, &out).ok());
  ASSERT_NE(out, nullptr);
  EXPECT_EQ(*out, 5);
  EXPECT_TRUE(AssignIntoExistingAndMoveOnly(0, &out).IsInvalidArgument());
}

Status Step(Status result, int* calls) {
  ++*calls;
  return result;
}

Status TwoSteps(Status first, int* calls, bool* reached_end) {
  CAIRN_RETURN_IF_ERROR(Step(first, calls));
  CAIRN_RETURN_IF_ERROR(Step(Status::Ok(), calls));
  *reached_end = true;
  return Status::Ok();
}

TEST(Macros, ReturnIfErrorPassesThroughOk) {
  int calls = 0;
  bool reached_end = false;
  EXPECT_TRUE(TwoSteps(Status::Ok(), &calls, &reached_end).ok());
  EXPECT_EQ(calls, 2);
  EXPECT_TRUE(reached_end);
}

TEST(Macros, ReturnIfErrorReturnsFirstErrorAndEvaluatesOnce) {
  int calls = 0;
  bool reached_end = false;
  Status s = TwoSteps(Status(StatusCode::kAborted, "boom", EDEADLK), &calls, &reached_end);
  EXPECT_EQ(s, Status(StatusCode::kAborted, "boom", EDEADLK));
  EXPECT_EQ(calls, 1);
  EXPECT_FALSE(reached_end);
}

StatusOr<std::string> ReturnIfErrorInStatusOrFunction(bool fail) {
  CAIRN_RETURN_IF_ERROR(fail ? Status::Unavailable("down") : Status::Ok());
  return std::string("fine");
}

TEST(Macros, ReturnIfErrorWorksInStatusOrFunctions) {
  EXPECT_EQ(ReturnIfErrorInStatusOrFunction(false).value(), "fine");
  EXPECT_TRUE(ReturnIfErrorInStatusOrFunction(true).status().IsUnavailable());
}

// ---------------------------------------------------------------------------
// errno edge

TEST(ErrnoEdge, CodeFromErrnoMapsFileSystemErrors) {
  const std::pair<int, StatusCode> cases[] = {
      {0, StatusCode::kOk},
      {ENOENT, StatusCode::kNotFound},
      {ENODATA, StatusCode::kNotFound},
      {ESTALE, StatusCode::kNotFound},
      {ENXIO, StatusCode::kNotFound},
      {EEXIST, StatusCode::kAlreadyExists},
      {EACCES, StatusCode::kPermissionDenied},
      {EPERM, StatusCode::kPermissionDenied},
      {ENOSPC, StatusCode::kResourceExhausted},
      {EDQUOT, StatusCode::kResourceExhausted},
      {EMFILE, StatusCode::kResourceExhausted},
      {ENFILE, StatusCode::kResourceExhausted},
      {ENOMEM, StatusCode::kResourceExhausted},
      {EFBIG, StatusCode::kResourceExhausted},
      {EMLINK, StatusCode::kResourceExhausted},
      {ENOTEMPTY, StatusCode::kFailedPrecondition},
      {ENOTDIR, StatusCode::kFailedPrecondition},
      {EISDIR, StatusCode::kFailedPrecondition},
      {EXDEV, StatusCode::kFailedPrecondition},
      {ELOOP, StatusCode::kFailedPrecondition},
      {EBUSY, StatusCode::kFailedPrecondition},
      {EROFS, StatusCode::kFailedPrecondition},
      {ETXTBSY, StatusCode::kFailedPrecondition},
      {EINVAL, StatusCode::kInvalidArgument},
      {ENAMETOOLONG, StatusCode::kInvalidArgument},
      {EBADF, StatusCode::kInvalidArgument},
      {ERANGE, StatusCode::kOutOfRange},
      {E2BIG, StatusCode::kOutOfRange},
      {EOVERFLOW, StatusCode::kOutOfRange},
      {EOPNOTSUPP, StatusCode::kUnimplemented},
      {ENOSYS, StatusCode::kUnimplemented},
      {ENOTTY, StatusCode::kUnimplemented},
      {ETIMEDOUT, StatusCode::kDeadlineExceeded},
      {ECONNREFUSED, StatusCode::kUnavailable},
      {ECONNRESET, StatusCode::kUnavailable},
      {EHOSTUNREACH, StatusCode::kUnavailable},
      {ENETUNREACH, StatusCode::kUnavailable},
      {ENOTCONN, StatusCode::kUnavailable},
      {EAGAIN, StatusCode::kUnavailable},
      {ECANCELED, StatusCode::kCancelled},
      {EINTR, StatusCode::kCancelled},
      {EDEADLK, StatusCode::kAborted},
      {EIO, StatusCode::kInternal},
      {ENOLINK, StatusCode::kInternal},
      {9999, StatusCode::kInternal},
  };
  for (const auto& [err, code] : cases) {
    EXPECT_EQ(CodeFromErrno(err), code)
        << ErrnoName(err) << " gave " << StatusCodeName(CodeFromErrno(err));
  }
}

TEST(ErrnoEdge, StatusFromErrnoKeepsPreciseErrnoAndDescribesIt) {
  // EDQUOT and ENOSPC share a code; the errno must still tell them apart.
  Status quota = StatusFromErrno(EDQUOT, "write f");
  Status full = StatusFromErrno(ENOSPC, "write f");
  EXPECT_EQ(quota.code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(full.code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(quota.posix_errno(), EDQUOT);
  EXPECT_EQ(full.posix_errno(), ENOSPC);
  EXPECT_EQ(quota.message(), std::string("write f: ") + std::strerror(EDQUOT));
  EXPECT_NE(quota, full);
}

TEST(ErrnoEdge, StatusFromErrnoZeroIsOk) {
  Status s = StatusFromErrno(0, "nothing happened");
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.posix_errno(), 0);
}

TEST(ErrnoEdge, OkMapsToZeroErrno) { EXPECT_EQ(ErrnoFromStatus(Status::Ok()), 0); }

TEST(ErrnoEdge, RecordedErrnoWinsOverCodeDefaultForEveryCode) {
  for (StatusCode code : AllErrorCodes()) {
    // EXDEV is nobody's conventional errno, so a pass can only come from the record.
    EXPECT_EQ(ErrnoFromStatus(Status(code, "m", EXDEV)), EXDEV) << StatusCodeName(code);
  }
}

TEST(ErrnoEdge, StatusFromErrnoRoundTripsThroughErrnoFromStatus) {
  for (int err : {ENOENT, EEXIST, EACCES, ENOSPC, EDQUOT, ENOTEMPTY, ENOTDIR, EISDIR, EXDEV, ELOOP,
                  EINVAL, ENAMETOOLONG, ERANGE, EOPNOTSUPP, EIO, ESTALE, EROFS}) {
    EXPECT_EQ(ErrnoFromStatus(StatusFromErrno(err, "op")), err) << ErrnoName(err);
  }
}

TEST(ErrnoEdge, ConventionalErrnoForEveryCodeWithoutRecord) {
  const std::pair<StatusCode, int> cases[] = {
      {StatusCode::kCancelled, ECANCELED},
      {StatusCode::kUnknown, EIO},
      {StatusCode::kInvalidArgument, EINVAL},
      {StatusCode::kDeadlineExceeded, ETIMEDOUT},
      {StatusCode::kNotFound, ENOENT},
      {StatusCode::kAlreadyExists, EEXIST},
      {StatusCode::kPermissionDenied, EACCES},
      {StatusCode::kResourceExhausted, ENOSPC},
      {StatusCode::kFailedPrecondition, EPERM},
      {StatusCode::kAborted, EIO},
      {StatusCode::kOutOfRange, ERANGE},
      {StatusCode::kUnimplemented, EOPNOTSUPP},
      {StatusCode::kInternal, EIO},
      {StatusCode::kUnavailable, EIO},
      {StatusCode::kDataLoss, EIO},
      {StatusCode::kUnauthenticated, EACCES},
  };
  ASSERT_EQ(std::size(cases), AllErrorCodes().size());
  for (const auto& [code, err] : cases) {
    EXPECT_EQ(ErrnoFromStatus(Status(code, "no errno")), err) << StatusCodeName(code);
  }
}

TEST(ErrnoEdge, ConventionalErrnoMapsBackToItsCodeWhereDistinct) {
  // Codes with a dedicated conventional errno survive code -> errno -> code.
  for (StatusCode code :
       {StatusCode::kCancelled, StatusCode::kInvalidArgument, StatusCode::kDeadlineExceeded,
        StatusCode::kNotFound, StatusCode::kAlreadyExists, StatusCode::kPermissionDenied,
        StatusCode::kResourceExhausted, StatusCode::kOutOfRange, StatusCode::kUnimplemented,
        StatusCode::kInternal}) {
    EXPECT_EQ(CodeFromErrno(ErrnoFromStatus(Status(code, "m"))), code) << StatusCodeName(code);
  }
}

TEST(ErrnoEdge, ErrnoNameIsSymbolic) {
  EXPECT_EQ(ErrnoName(ENOENT), "ENOENT");
  EXPECT_EQ(ErrnoName(ENOTEMPTY), "ENOTEMPTY");
  EXPECT_EQ(ErrnoName(EDQUOT), "EDQUOT");
  EXPECT_EQ(ErrnoName(9999), "E9999");
}

// ---------------------------------------------------------------------------
// gRPC edge, in process

TEST(GrpcEdge, CodesMapOneToOneForEveryCode) {
  const std::pair<StatusCode, grpc::StatusCode> cases[] = {
      {StatusCode::kCancelled, grpc::StatusCode::CANCELLED},
      {StatusCode::kUnknown, grpc::StatusCode::UNKNOWN},
      {StatusCode::kInvalidArgument, grpc::StatusCode::INVALID_ARGUMENT},
      {StatusCode::kDeadlineExceeded, grpc::StatusCode::DEADLINE_EXCEEDED},
      {StatusCode::kNotFound, grpc::StatusCode::NOT_FOUND},
      {StatusCode::kAlreadyExists, grpc::StatusCode::ALREADY_EXISTS},
      {StatusCode::kPermissionDenied, grpc::StatusCode::PERMISSION_DENIED},
      {StatusCode::kResourceExhausted, grpc::StatusCode::RESOURCE_EXHAUSTED},
      {StatusCode::kFailedPrecondition, grpc::StatusCode::FAILED_PRECONDITION},
      {StatusCode::kAborted, grpc::StatusCode::ABORTED},
      {StatusCode::kOutOfRange, grpc::StatusCode::OUT_OF_RANGE},
      {StatusCode::kUnimplemented, grpc::StatusCode::UNIMPLEMENTED},
      {StatusCode::kInternal, grpc::StatusCode::INTERNAL},
      {StatusCode::kUnavailable, grpc::StatusCode::UNAVAILABLE},
      {StatusCode::kDataLoss, grpc::StatusCode::DATA_LOSS},
      {StatusCode::kUnauthenticated, grpc::StatusCode::UNAUTHENTICATED},
  };
  ASSERT_EQ(std::size(cases), AllErrorCodes().size());
  for (const auto& [code, grpc_code] : cases) {
    grpc::Status g = ToGrpcStatus(Status(code, "msg"), nullptr);
    EXPECT_EQ(g.error_code(), grpc_code) << StatusCodeName(code);
    EXPECT_EQ(g.error_message(), "msg");

    grpc::ClientContext ctx;
    Status back = FromGrpcStatus(grpc::Status(grpc_code, "msg"), ctx);
    EXPECT_EQ(back.code(), code) << StatusCodeName(code);
    EXPECT_EQ(back.message(), "msg");
    EXPECT_EQ(back.posix_errno(), 0);
  }
}

TEST(GrpcEdge, OkMapsToOkBothWays) {
  EXPECT_TRUE(ToGrpcStatus(Status::Ok(), nullptr).ok());
  grpc::ClientContext ctx;
  EXPECT_TRUE(FromGrpcStatus(grpc::Status::OK, ctx).ok());
}

TEST(GrpcEdge, CodeBeyondKnownRangeBecomesUnknown) {
  grpc::ClientContext ctx;
  Status s = FromGrpcStatus(grpc::Status(static_cast<grpc::StatusCode>(42), "future"), ctx);
  EXPECT_EQ(s.code(), StatusCode::kUnknown);
  EXPECT_EQ(s.message(), "future");
}

// ---------------------------------------------------------------------------
// gRPC edge over a real channel

namespace brick = ::cairn::brick::v1;

// Detach answers per brick_id:
//   "<code>,<errno>"  -> ToGrpcStatus(Status(code, "x", errno))
//   "raw:<text>"      -> FAILED_PRECONDITION with cairn-errno set to <text> verbatim.
class FakeBrickAdmin final : public brick::BrickAdmin::Service {
 public:
  grpc::Status Detach(grpc::ServerContext* context, const brick::DetachRequest* request,
                      brick::Empty*) override {
    const std::string& id = request->brick_id();
    if (id.rfind("raw:", 0) == 0) {
      context->AddTrailingMetadata(kErrnoMetadataKey, id.substr(4));
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "raw");
    }
    int code = 0;
    int err = 0;
    size_t comma = id.find(',');
    if (comma == std::string::npos) return grpc::Status(grpc::StatusCode::INTERNAL, "bad id");
    std::from_chars(id.data(), id.data() + comma, code);
    std::from_chars(id.data() + comma + 1, id.data() + id.size(), err);
    return ToGrpcStatus(Status(static_cast<StatusCode>(code), "x", err), context);
  }
};

class GrpcRoundTrip : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_GT(port, 0);
    auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(port),
                                       grpc::InsecureChannelCredentials());
    stub_ = brick::BrickAdmin::NewStub(channel);
  }

  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown();
  }

  // Calls Detach with `brick_id` and converts the reply with FromGrpcStatus.
  Status CallDetach(const std::string& brick_id) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    brick::DetachRequest req;
    req.set_brick_id(brick_id);
    brick::Empty reply;
    grpc::Status g = stub_->Detach(&ctx, req, &reply);
    return FromGrpcStatus(g, ctx);
  }

  FakeBrickAdmin service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<brick::BrickAdmin::Stub> stub_;
};

TEST_F(GrpcRoundTrip, ErrnoSurvivesTheWire) {
  Status s = CallDetach(std::to_string(static_cast<int>(StatusCode::kFailedPrecondition)) + "," +
                        std::to_string(ENOTEMPTY));
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(s.posix_errno(), ENOTEMPTY);
  EXPECT_EQ(s.message(), "x");
  EXPECT_EQ(ErrnoFromStatus(s), ENOTEMPTY);
}

TEST_F(GrpcRoundTrip, EveryCodeSurvivesTheWireWithAndWithoutErrno) {
  for (StatusCode code : AllErrorCodes()) {
    int c = static_cast<int>(code);
    Status plain = CallDetach(std::to_string(c) + ",0");
    EXPECT_EQ(plain.code(), code) << StatusCodeName(code);
    EXPECT_EQ(plain.posix_errno(), 0) << StatusCodeName(code);

    Status with_errno = CallDetach(std::to_string(c) + "," + std::to_string(EXDEV));
    EXPECT_EQ(with_errno.code(), code) << StatusCodeName(code);
    EXPECT_EQ(with_errno.posix_errno(), EXDEV) << StatusCodeName(code);
  }
}

TEST_F(GrpcRoundTrip, OkCarriesNoErrno) {
  Status s = CallDetach("0,0");
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.posix_errno(), 0);
}

TEST_F(GrpcRoundTrip, MalformedErrnoTrailerIsIgnored) {
  for (const char* junk : {"raw:12abc", "raw:", "raw: 5", "raw:99999999999999999999"}) {
    Status s = CallDetach(junk);
    EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << junk;
    EXPECT_EQ(s.posix_errno(), 0) << junk;
  }
  Status good = CallDetach("raw:39");
  EXPECT_EQ(good.posix_errno(), 39);
}

// ---------------------------------------------------------------------------
// HTTP edge

TEST(HttpEdge, HttpStatusForEveryCode) {
  const std::pair<StatusCode, int> cases[] = {
      {StatusCode::kOk, 200},
      {StatusCode::kCancelled, 499},
      {StatusCode::kUnknown, 500},
      {StatusCode::kInvalidArgument, 400},
      {StatusCode::kDeadlineExceeded, 504},
      {StatusCode::kNotFound, 404},
      {StatusCode::kAlreadyExists, 409},
      {StatusCode::kPermissionDenied, 403},
      {StatusCode::kResourceExhausted, 507},
      {StatusCode::kFailedPrecondition, 400},
      {StatusCode::kAborted, 409},
      {StatusCode::kOutOfRange, 400},
      {StatusCode::kUnimplemented, 501},
      {StatusCode::kInternal, 500},
      {StatusCode::kUnavailable, 503},
      {StatusCode::kDataLoss, 500},
      {StatusCode::kUnauthenticated, 401},
  };
  ASSERT_EQ(std::size(cases), AllCodes().size());
  for (const auto& [code, http] : cases) {
    Status s = code == StatusCode::kOk ? Status::Ok() : Status(code, "m");
    EXPECT_EQ(HttpStatusFromStatus(s), http) << StatusCodeName(code);
  }
}

TEST(HttpEdge, SuccessAndRedirectRepliesAreOk) {
  for (int http : {200, 201, 204, 303}) {
    EXPECT_TRUE(StatusFromHttp(http, "ignored").ok()) << http;
  }
}

TEST(HttpEdge, StatusFromHttpMapsErrorReplies) {
  const std::pair<int, StatusCode> cases[] = {
      {400, StatusCode::kInvalidArgument},   {401, StatusCode::kUnauthenticated},
      {403, StatusCode::kPermissionDenied},  {404, StatusCode::kNotFound},
      {409, StatusCode::kAlreadyExists},     {418, StatusCode::kFailedPrecondition},
      {422, StatusCode::kInvalidArgument},   {429, StatusCode::kResourceExhausted},
      {499, StatusCode::kCancelled},         {500, StatusCode::kInternal},
      {501, StatusCode::kUnimplemented},     {502, StatusCode::kUnavailable},
      {503, StatusCode::kUnavailable},       {504, StatusCode::kDeadlineExceeded},
      {507, StatusCode::kResourceExhausted},
  };
  for (const auto& [http, code] : cases) {
    Status s = StatusFromHttp(http, "body text");
    EXPECT_EQ(s.code(), code) << http;
    EXPECT_EQ(s.message(), "body text") << http;
    EXPECT_EQ(s.posix_errno(), 0) << http;
  }
}

TEST(HttpEdge, EmptyBodyGetsMessageNamingTheHttpStatus) {
  Status s = StatusFromHttp(418, "");
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(s.message(), "HTTP 418");
}

TEST(HttpEdge, CodesWithOwnHttpStatusRoundTrip) {
  for (StatusCode code :
       {StatusCode::kInvalidArgument, StatusCode::kDeadlineExceeded, StatusCode::kNotFound,
        StatusCode::kAlreadyExists, StatusCode::kPermissionDenied, StatusCode::kResourceExhausted,
        StatusCode::kCancelled, StatusCode::kUnimplemented, StatusCode::kInternal,
        StatusCode::kUnavailable, StatusCode::kUnauthenticated}) {
    Status back = StatusFromHttp(HttpStatusFromStatus(Status(code, "m")), "m");
    EXPECT_EQ(back.code(), code) << StatusCodeName(code);
  }
}

}  // namespace
}  // namespace cairn
