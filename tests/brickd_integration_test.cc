// Process-level integration tests of brickd: a real brickd child process
// driven over real gRPC (and HTTP for /metrics). They pin what only the whole
// process shows: authentication, the admin API, rejection of bad input
// without harm to the process, concurrency, attach/detach under load,
// restarts (clean and kill -9), metrics, bounded threads and clean shutdown.
// The semantics of each file operation are pinned in depth by the in-process
// unit tests (brickd/brick_test.cc); here a smoke test suffices.
#include <fcntl.h>
#include <httplib.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "brickd/brick.h"
#include "common/id.h"
#include "tests/test_util.h"

namespace cairn::test {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using brickd::kMaxIoBytes;

constexpr uint64_t kMiB = 1 << 20;

// Deterministic pseudo-random bytes (xorshift64*), so contents can be checked
// without keeping copies.
std::string Pattern(uint64_t seed, size_t n) {
  std::string s(n, '\0');
  uint64_t x = (seed * 0x9E3779B97F4A7C15ULL) | 1;
  for (size_t i = 0; i < n; i += 8) {
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    uint64_t v = x * 0x2545F4914F6CDD1DULL;
    std::memcpy(s.data() + i, &v, std::min<size_t>(8, n - i));
  }
  return s;
}

// Errors seen by worker threads, checked by the test's main thread (gtest
// assertions belong there).
class ErrorLog {
 public:
  void Add(std::string what) {
    std::lock_guard lock(mu_);
    if (errors_.size() < 20) errors_.push_back(std::move(what));
    ++count_;
  }
  size_t count() const {
    std::lock_guard lock(mu_);
    return count_;
  }
  std::string Summary() const {
    std::lock_guard lock(mu_);
    std::string out = std::to_string(count_) + " error(s):";
    for (const auto& e : errors_) out += "\n  " + e;
    return out;
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::string> errors_;
  size_t count_ = 0;
};

// Data-path calls on one brick with one token.
class BrickFs {
 public:
  BrickFs(const BrickdClient& client, std::string token, std::string brick)
      : client_(client), token_(std::move(token)), brick_(std::move(brick)) {}

  StatusOr<pb::Attr> MakeEntry(bool dir, const Uuid& parent, const std::string& name,
                               const Uuid& id = Uuid::Random()) const {
    pb::CreateRequest req;
    req.set_brick_id(brick_);
    req.set_parent_id(parent.Raw());
    req.set_name(name);
    req.set_new_id(id.Raw());
    req.set_mode(dir ? 0755 : 0644);
    auto r = client_.Call(dir ? &pb::Brick::Stub::Mkdir : &pb::Brick::Stub::Create, req, token_);
    if (!r.ok()) return r.status();
    return r->attr();
  }
  StatusOr<Uuid> Mkdir(const Uuid& parent, const std::string& name) const {
    auto a = MakeEntry(true, parent, name);
    if (!a.ok()) return a.status();
    return Uuid::FromBytes(a->id());
  }
  StatusOr<Uuid> Create(const Uuid& parent, const std::string& name) const {
    auto a = MakeEntry(false, parent, name);
    if (!a.ok()) return a.status();
    return Uuid::FromBytes(a->id());
  }
  StatusOr<pb::WriteReply> Write(const std::string& id_raw, uint64_t offset,
                                 std::string data) const {
    pb::WriteRequest req;
    req.set_brick_id(brick_);
    req.set_id(id_raw);
    req.set_offset(offset);
    req.set_data(std::move(data));
    return client_.Call(&pb::Brick::Stub::Write, req, token_);
  }
  StatusOr<pb::WriteReply> Write(const Uuid& id, uint64_t offset, std::string data) const {
    return Write(id.Raw(), offset, std::move(data));
  }
  StatusOr<pb::ReadReply> Read(const std::string& id_raw, uint64_t offset, uint32_t size) const {
    pb::ReadRequest req;
    req.set_brick_id(brick_);
    req.set_id(id_raw);
    req.set_offset(offset);
    req.set_size(size);
    return client_.Call(&pb::Brick::Stub::Read, req, token_);
  }
  // Reads the whole file in 1 MiB pieces.
  StatusOr<std::string> ReadAll(const Uuid& id) const {
    std::string out;
    for (;;) {
      auto r = Read(id.Raw(), out.size(), kMiB);
      if (!r.ok()) return r.status();
      out += r->data();
      if (r->eof() || r->data().empty()) return out;
    }
  }
  StatusOr<pb::Attr> GetAttr(const std::string& id_raw) const {
    pb::GetAttrRequest req;
    req.set_brick_id(brick_);
    req.set_id(id_raw);
    auto r = client_.Call(&pb::Brick::Stub::GetAttr, req, token_);
    if (!r.ok()) return r.status();
    return r->attr();
  }
  StatusOr<pb::Attr> Lookup(const Uuid& parent, const std::string& name) const {
    pb::LookupRequest req;
    req.set_brick_id(brick_);
    req.set_parent_id(parent.Raw());
    req.set_name(name);
    auto r = client_.Call(&pb::Brick::Stub::Lookup, req, token_);
    if (!r.ok()) return r.status();
    return r->attr();
  }
  StatusOr<pb::UnlinkReply> Remove(bool dir, const Uuid& parent, const std::string& name) const {
    pb::UnlinkRequest req;
    req.set_brick_id(brick_);
    req.set_parent_id(parent.Raw());
    req.set_name(name);
    return client_.Call(dir ? &pb::Brick::Stub::Rmdir : &pb::Brick::Stub::Unlink, req, token_);
  }
  StatusOr<pb::RenameReply> Rename(const Uuid& old_parent, const std::string& old_name,
                                   const Uuid& new_parent, const std::string& new_name) const {
    pb::RenameRequest req;
    req.set_brick_id(brick_);
    req.set_old_parent_id(old_parent.Raw());
    req.set_old_name(old_name);
    req.set_new_parent_id(new_parent.Raw());
    req.set_new_name(new_name);
    return client_.Call(&pb::Brick::Stub::Rename, req, token_);
  }
  // All entries of a directory, following cookies across pages.
  StatusOr<std::vector<pb::DirEntry>> ReadDir(const Uuid& id, bool with_attrs = false) const {
    std::vector<pb::DirEntry> out;
    pb::ReadDirRequest req;
    req.set_brick_id(brick_);
    req.set_id(id.Raw());
    req.set_with_attrs(with_attrs);
    for (int page = 0; page < 10000; ++page) {
      auto r = client_.Call(&pb::Brick::Stub::ReadDir, req, token_);
      if (!r.ok()) return r.status();
      for (auto& e : *r->mutable_entries()) out.push_back(std::move(e));
      if (r->eof()) return out;
      req.set_cookie(r->next_cookie());
    }
    return Status::Internal("readdir did not reach eof");
  }
  StatusOr<pb::StatFsReply> StatFs() const {
    pb::StatFsRequest req;
    req.set_brick_id(brick_);
    return client_.Call(&pb::Brick::Stub::StatFs, req, token_);
  }

 private:
  const BrickdClient& client_;
  const std::string token_;
  const std::string brick_;
};

std::set<std::string> Names(const std::vector<pb::DirEntry>& entries) {
  std::set<std::string> out;
  for (const auto& e : entries) out.insert(e.name());
  return out;
}

class BrickdTest : public ::testing::Test {
 protected:
  // Starts brickd_ and connects client_ to it.
  void StartBrickd(BrickdOptions options = {}) {
    auto p = BrickdProcess::Start(std::move(options));
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    brickd_ = std::move(*p);
    client_ = std::make_unique<BrickdClient>(brickd_->address());
  }
  // Restarts brickd_ (same tokens and state file) and reconnects client_.
  void RestartBrickd() {
    client_.reset();
    Status s = brickd_->Restart();
    ASSERT_TRUE(s.ok()) << s.ToString();
    client_ = std::make_unique<BrickdClient>(brickd_->address());
  }

  // Stops brickd_ with SIGTERM and expects exit status 0. The test's own
  // connection is closed first: an idle connection holds brickd's shutdown
  // up (see SigtermExitsZeroWithinFiveSecondsWithIdleClientsConnected).
  void StopBrickd() {
    client_.reset();
    auto stopped = brickd_->Kill(SIGTERM);
    ASSERT_TRUE(IsOk(stopped));
    EXPECT_TRUE(WIFEXITED(*stopped) && WEXITSTATUS(*stopped) == 0) << DescribeWaitStatus(*stopped);
  }

  StatusOr<pb::AttachReply> Attach(const std::string& id, const std::string& path,
                                   uint64_t capacity_bytes = 0) const {
    pb::AttachRequest req;
    req.set_brick_id(id);
    req.set_path(path);
    req.set_capacity_bytes(capacity_bytes);
    return client_->Call(&pb::BrickAdmin::Stub::Attach, req, brickd_->admin_token());
  }
  Status Detach(const std::string& id) const {
    pb::DetachRequest req;
    req.set_brick_id(id);
    return client_->Call(&pb::BrickAdmin::Stub::Detach, req, brickd_->admin_token()).status();
  }
  StatusOr<pb::ListBricksReply> ListBricks() const {
    return client_->Call(&pb::BrickAdmin::Stub::ListBricks, pb::ListBricksRequest(),
                         brickd_->admin_token());
  }
  // Attaches a brick in a new directory named after it.
  void AttachFresh(const std::string& id, uint64_t capacity_bytes = 0) {
    auto r = Attach(id, bricks_.MakeSubdir(id), capacity_bytes);
    ASSERT_TRUE(IsOk(r)) << "attach " << id;
    ASSERT_TRUE(r->initialised());
  }
  BrickFs Fs(const std::string& brick) const {
    return BrickFs(*client_, brickd_->data_token(), brick);
  }

  // The process is alive and answers StatFs on `brick`.
  void ExpectServing(const std::string& brick = "b1") {
    ASSERT_GT(brickd_->pid(), 0) << "brickd was reaped";
    EXPECT_EQ(::kill(brickd_->pid(), 0), 0) << "brickd is gone";
    EXPECT_TRUE(brickd_->Running()) << "brickd exited; log:\n" << brickd_->Log();
    EXPECT_TRUE(IsOk(Fs(brick).StatFs()));
  }

  // Declared first: removed last, after brickd_ is dead.
  TempDir bricks_{"cairn-bricks"};
  std::unique_ptr<BrickdProcess> brickd_;
  std::unique_ptr<BrickdClient> client_;
};

// ---------------------------------------------------------------------------
// Authentication.

TEST_F(BrickdTest, AuthWithoutTokenIsUnauthenticatedOnBothServices) {
  ASSERT_NO_FATAL_FAILURE(StartBrickd());
  ASSERT_NO_FATAL_FAILURE(AttachFresh("b1"));
  pb::StatFsRequest statfs;
  statfs.set_brick_id("b1");
  EXPECT_TRUE(
      HasStatus(client_->Call(&pb::Brick::Stub::StatFs, statfs, ""), StatusCode::kUnauthenticated));
  EXPECT_TRUE(
      HasStatus(client_->Call(&pb::BrickAdmin::Stub::ListBricks, pb::ListBricksRequest(), ""),
                StatusCode::kUnauthenticated));
  pb::AttachRequest attach;
  attach.set_brick_id("b2");
  attach.set_path(bricks_.MakeSubdir("b2"));
  EXPECT_TRUE(HasStatus(client_->Call(&pb::BrickAdmin::Stub::Attach, attach, ""),
                        StatusCode::kUnauthenticated));
  // A scheme other than Bearer is no token either.
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", "Basic " + brickd_->data_token());
  pb::StatFsReply reply;
  EXPECT_TRUE(HasStatus(FromGrpcStatus(client_->brick()->StatFs(&ctx, statfs, &reply), ctx),
                        StatusCode::kUnauthenticated));
}

TEST_F(BrickdTest, AuthWithWrongTokenIsUnauthenticatedEvenForUnknownBricks) {
  ASSERT_NO_FATAL_FAILURE(StartBrickd());
  ASSERT_NO_FATAL_FAILURE(AttachFresh("b1"));
  const std::string wrong = RandomHexToken();
  for (const std::string brick : {"b1", "no-such-brick"}) {
    pb::StatFsRequest req;
    req.set_brick_id(brick);
    // Authentication comes before the brick lookup: no probing for brick ids.
    EXPECT_TRUE(HasStatus(client_->Call(&pb::Brick::Stub::StatFs, req, wrong),
                          StatusCode::kUnauthenticated))
        << brick;
  }
  // A prefix of the real token is still wrong.
  pb::StatFsRequest req;
  req.set_brick_id("b1");
  EXPECT_TRUE(
      HasStatus(client_->Call(&pb::Brick::Stub::StatFs, req, brickd_->data_token().substr(0, 10)),
                StatusCode::kUnauthenticated));
  EXPECT_TRUE(
      HasStatus(client_->Call(&pb::BrickAdmin::Stub::ListBricks, pb::ListBricksRequest(), wrong),
                StatusCode::kUnauthenticated));
}

TEST_F(BrickdTest, AuthDataTokenOnAdminServiceIsPermissionDenied) {
  ASSERT_NO_FATAL_FAILURE(StartBrickd());
  ASSERT_NO_FATAL_FAILURE(AttachFresh("b1"));
  const std::string& data = brickd_->data_token();
  pb::AttachRequest attach;
  attach.set_brick_id("b2");
  attach.set_path(bricks_.MakeSubdir("b2"));
  EXPECT_TRUE(HasStatus(client_->Call(&pb::BrickAdmin::Stub::Attach, attach, data),
                        StatusCode::kPermissionDenied));
  pb::DetachRequest detach;
  detach.set_brick_id("b1");
  EXPECT_TRUE(HasStatus(client_->Call(&pb::BrickAdmin::Stub::Detach, detach, data),
                        StatusCode::kPermissionDenied));
  EXPECT_TRUE(
      HasStatus(client_->Call(&pb::BrickAdmin::Stub::ListBricks, pb::ListBricksRequest(), data),
                StatusCode::kPermissionDenied));
  pb::SetCapacityRequest cap;
  cap.set_brick_id("b1");
  cap.set_capacity_bytes(kMiB);
  EXPECT_TRUE(HasStatus(client_->Call(&pb::BrickAdmin::Stub::SetCapacity, cap, data),
                        StatusCode::kPermissionDenied));
  // Nothing changed: b1 is still the only brick, and b2 was not initialised.
  auto list = ListBricks();
  ASSERT_TRUE(IsOk(list));
  ASSERT_EQ(list->bricks_size(), 1);
  EXPECT_EQ(list->bricks(0).brick_id(), "b1");
  EXPECT_EQ(list->bricks(0).capacity_bytes(), 0u);
  struct stat st;
  EXPECT_NE(::stat((bricks_.Sub("b2") + "/.cairn").c_str(), &st), 0);
}

TEST_F(BrickdTest, AuthAdminTokenWorksOnBothServices) {
  ASSERT_NO_FATAL_FAILURE(StartBrickd());
  ASSERT_NO_FATAL_FAILURE(AttachFresh("b1"));
  BrickFs admin_fs(*client_, brickd_->admin_token(), "b1");
  EXPECT_TRUE(IsOk(admin_fs.StatFs()));
  auto id = admin_fs.Create(Uuid::Root(), "f");
  ASSERT_TRUE(IsOk(id));
  EXPECT_TRUE(IsOk(admin_fs.Write(*id, 0, "hello")));
  // And the data token works on the data path.
  auto back = Fs("b1").ReadAll(*id);
  ASSERT_TRUE(IsOk(back));
  EXPECT_EQ(*back, "hello");
  EXPECT_TRUE(IsOk(ListBricks()));
}

TEST_F(BrickdTest, AuthTokensNeverAppearInLog) {
  BrickdOptions options;
  options.log_level = "trace";  // the most brickd ever logs
  options.state_file = true;
  ASSERT_NO_FATAL_FAILURE(StartBrickd(options));
  ASSERT_NO_FATAL_FAILURE(AttachFresh("b1"));
  const std::string wrong = RandomHexToken();
  // Successful and failed calls of every kind.
  auto id = Fs("b1").Create(Uuid::Root(), "f");
  ASSERT_TRUE(IsOk(id));
  EXPECT_TRUE(IsOk(Fs("b1").Write(*id, 0, "data")));
  EXPECT_FALSE(BrickFs(*client_, wrong, "b1").StatFs().ok());
  EXPECT_FALSE(BrickFs(*client_, brickd_->data_token(), "nope").StatFs().ok());
  pb::AttachRequest attach;
  attach.set_brick_id("b2");
  attach.set_path(bricks_.MakeSubdir("b2"));
  EXPECT_FALSE(client_->Call(&pb::BrickAdmin::Stub::Attach, attach, brickd_->data_token()).ok());
  EXPECT_FALSE(client_->Call(&pb::BrickAdmin::Stub::Attach, attach, wrong).ok());
  EXPECT_TRUE(IsOk(Detach("b1")));
  httplib::Client http(brickd_->host(), brickd_->metrics_port());
  http.Get("/metrics", {{"Authorization", "Bearer " + wrong}});
  http.Get("/metrics", {{"Authorization", "Bearer " + brickd_->data_token()}});
  ASSERT_NO_FATAL_FAILURE(StopBrickd());

  const std::string log = brickd_->Log();
  EXPECT_NE(log.find("event=attached"), std::string::npos) << "brickd logged nothing?\n" << log;
  EXPECT_EQ(log.find(brickd_->data_token()), std::string::npos) << log;
  EXPECT_EQ(log.find(brickd_->admin_token()), std::string::npos) << log;
  EXPECT_EQ(log.find(wrong), std::string::npos) << "a presented (wrong) token was logged:\n" << log;
  EXPECT_EQ(ReadFileOrEmpty(brickd_->state_file()).find(brickd_->admin_token()), std::string::npos);
}

// ---------------------------------------------------------------------------
// Attach, detach, list.

TEST_F(BrickdTest, AttachInitialisesFreshDirectory) {
  ASSERT_NO_FATAL_FAILURE(StartBrickd());
  const std::string path = bricks_.MakeSubdir("b1");
  auto r = Attach("b1", path, 5 * kMiB);
  ASSERT_TRUE(IsOk(r));
  EXPECT_TRUE(r->initialised());
  EXPECT_EQ(r->brick().brick_id(), "b1");
  EXPECT_EQ(r->brick().path(), path);
  EXPECT_EQ(r->brick().capacity_bytes(), 5 * kMiB);
  EXPECT_EQ(r->brick().used_bytes(), 0u);
  struct stat st;
  ASSERT_EQ(::stat((path + "/.cairn").c_str(), &st), 0) << std::strerror(errno);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  // The new brick serves at once, and its root is empty (.cairn is hidden).
  auto entries = Fs("b1").ReadDir(Uuid::Root());
  ASSERT_TRUE(IsOk(entries));
  EXPECT_TRUE(entries->empty()) << entries->front().name();
}

TEST_F(BrickdTest, AttachSameIdAndPathAgainIsIdempotent) {
  ASSERT_NO_FATAL_FAILURE(StartBrickd());
  ASSERT_NO_FATAL_FAILURE(AttachFresh("b1"));
  auto id = Fs("b1").Create(Uuid::Root(), "keep");
  ASSERT_TRUE(IsOk(id));
  // Trailing and doubled slashes name the same directory.
  for (const std::string& path :
       {bricks_.Sub("b1"), bricks_.Sub("b1") + "/", bricks_.path() + "//b1"}) {
    auto again = Attach("b1", path);
    ASSERT_TRUE(IsOk(again)) << path;
    EXPECT_FALSE(again->initialised()) << path;
    EXPECT_EQ(again->brick().path(), bricks_.Sub("b1"));
  }
  auto list = ListBricks();
  ASSERT_TRUE(IsOk(list));
  EXPECT_EQ(list->bricks_size(), 1);
  EXPECT_TRUE(IsOk(Fs("b1").Lookup(Uuid::Root(), "keep")));
}

TEST_F(BrickdTest, AttachSameIdOtherPathIsAlreadyExists) {
  ASSERT_NO_FATAL_FAILURE(StartBrickd());
  ASSERT_NO_FATAL_FAILURE(AttachFresh("b1"));
  EXPECT_TRUE(HasStatus(Attach("b1", bricks_.MakeSubdir("other")), StatusCode::kAlreadyExists));
  // The other directory was left alone.
  struct stat st;
  EXPECT_NE(::stat((bricks_.Sub("other") + "/.cairn").c_str(), &st), 0);
}

TEST_F(BrickdTest, AttachOtherIdSamePathIsAlreadyExists) {
  ASSERT_NO_FATAL_FAILURE(StartBrickd());
  ASSERT_NO_FATAL_FAILURE(AttachFresh("b1"));
  EXPECT_TRUE(HasStatus(Attach("b2", bricks_.Sub("b1")), StatusCode::kAlreadyExists));
  auto list = ListBricks();
  ASSERT_TRUE(IsOk(list));
  EXPECT_EQ(list->bricks_size(), 1);
}

TEST_F(BrickdTest, AttachNestedPathIsFailedPrecondition) {
  ASSERT_NO_FATAL_FAILURE(StartBrickd());
  const std::string outer = bricks_.MakeSubdir("outer");
  ASSERT_TRUE(IsOk(Attach("outer", outer)));
  // Inside an attached brick.
  EXPECT_TRUE(HasStatus(Attach("inner", bricks_.MakeSubdir("outer/inner")),
                        StatusCode::kFailedPrecondition));
  // Around an attached brick.
  ASSERT_TRUE(IsOk(Attach("deep", bricks_.MakeSubdir("wrap/deep"))));
  EXPECT_TRUE(HasStatus(Attach("wrap", bricks_.Sub("wrap")), StatusCode::kFailedPrecondition));
  // A sibling whose name merely starts alike is not nested.
  EXPECT_TRUE(IsOk(Attach("outer2", bricks_.MakeSubdir("outer2"))));
}

// Nesting is about directories, not spellings: a symlink in the path must not
// let a brick be placed inside another brick's tree.
TEST_F(BrickdTest, AttachNestedThroughSymlinkIsFailedPrecondition) {
  ASSERT_NO_FATAL_FAILURE(StartBrickd());
  const std::string outer = bricks_.MakeSubdir("outer");
  ASSERT_TRUE(IsOk(Attach("outer", outer)));
  bricks_.MakeSubdir("outer/inner");
  ASSERT_EQ(::symlink(outer.c_str(), bricks_.Sub("alias").c_str()), 0) << std::strerror(errno);
  EXPECT_TRUE(
      HasStatus(Attach("inner", bricks_.Sub("alias") + "/inner"), StatusCode::kFailedPrecondition));
  struct stat st;
  EXPECT_NE(::stat((outer + "/inner/.cairn").c_str(), &st), 0)
      << "a brick was initialised inside brick 'outer'";
}

TEST_F(BrickdTest, AttachBadBrickIdIsInvalidArgument) {
  ASSERT_NO_FATAL_FAILURE(StartBrickd());
  const std::string path = bricks_.MakeSubdir("b");
  for (const std::string& id : {std::string(), std::string("a/b"), std::string(".."),
                                std::string("."), std::string(200, 'x'), std::string(129, 'y'),
                                std::string("a b"), std::string("b\n1"), std::string("\xc3\xa9")}) {
    EXPECT_TRUE(HasStatus(Attach(id, path), StatusCode::kInvalidArgument)) << "id '" << id << "'";
  }
  // Nothing was initialised by the rejected attaches; the longest legal id works.
  struct stat st;
  EXPECT_NE(::stat((path + "/.cairn").c_str(), &st), 0);
  EXPECT_TRUE(IsOk(Attach(std::string(128, 'z'), path)));
}

TEST_F(BrickdTest, AttachRelativeOrDotDotPathIsInvalidArgument) {
  ASSERT_NO_FATAL_FAILURE(StartBrickd());
  bricks_.MakeSubdir("a");
  bricks_.MakeSubdir("b");
  std::string cut = bricks_.path().substr(1);  // relative form of the same directory
  for (const std::string& path :
       {cut + "/a", std::string("a"), std::string(""), bricks_.path() + "/a/../b",
        bricks_.path() + "/./a", bricks_.path() + "/..", std::string("/")}) {
    EXPECT_TRUE(HasStatus(Attach("b1", path), StatusCode::kInvalidArgument)) << "'" << path << "'";
  }
}

TEST_F(BrickdTest, AttachMissingPathIsNotFoundWithEnoent) {
  ASSERT_NO_FATAL_FAILURE(StartBrickd());
  EXPECT_TRUE(HasStatus(Attach("b1", bricks_.Sub("missing")), StatusCode::kNotFound, ENOENT));
  auto list = ListBricks();
  ASSERT_TRUE(IsOk(list));
  EXPECT_EQ(list->bricks_size(), 0);
}

TEST_F(BrickdTest, AttachDirectoryOfAnotherBrickIsFailedPrecondition) {
  ASSERT_NO_FATAL_FAILURE(StartBrickd());
  ASSERT_NO_FATAL_FAILURE(AttachFresh("x"));
  ASSERT_TRUE(IsOk(Detach("x")));
  EXPECT_TRUE(HasStatus(Attach("y", bricks_.Sub("x")), StatusCode::kFailedPrecondition));
  // Its owner may have it back.
  auto again = Attach("x", bricks_.Sub("x"));
  ASSERT_TRUE(IsOk(again));
  EXPECT_FALSE(again->initialised());
}

TEST_F(BrickdTest, ListBricksListsAttachedBricksAndDetachUnknownIsNotFound) {
  ASSERT_NO_FATAL_FAILURE(StartBrickd());
  for (const char* id : {"b3", "b1", "b2"}) ASSERT_NO_FATAL_FAILURE(AttachFresh(id, 3 * kMiB));
  auto list = ListBricks();
  ASSERT_TRUE(IsOk(list));
  std::map<std::string, pb::BrickInfo> by_id;
  for (const auto& b : list->bricks()) by_id[b.brick_id()] = b;
  ASSERT_EQ(by_id.size(), 3u);
  for (const char* id : {"b1", "b2", "b3"}) {
    EXPECT_EQ(by_id[id].path(), bricks_.Sub(id));
    EXPECT_EQ(by_id[id].capacity_bytes(), 3 * kMiB);
  }
  EXPECT_TRUE(HasStatus(Detach("nope"), StatusCode::kNotFound));
  ASSERT_TRUE(IsOk(Detach("b2")));
  EXPECT_TRUE(HasStatus(Detach("b2"), StatusCode::kNotFound));
  list = ListBricks();
  ASSERT_TRUE(IsOk(list));
  ASSERT_EQ(list->bricks_size(), 2);
  EXPECT_TRUE(HasStatus(Fs("b2").StatFs(), StatusCode::kNotFound));
}

// ---------------------------------------------------------------------------
// Bad input on the data path: refused precisely, and the process carries on.

TEST_F(BrickdTest, DataPathUnknownBrickIsNotFound) {
  ASSERT_NO_FATAL_FAILURE(StartBrickd());
  ASSERT_NO_FATAL_FAILURE(AttachFresh("b1"));
  for (const std::string& brick :
       std::vector<std::string>{"b2", "", "../b1", std::string(300, 'b')}) {
    EXPECT_TRUE(HasStatus(Fs(brick).StatFs(), StatusCode::kNotFound)) << brick;
    EXPECT_TRUE(HasStatus(Fs(brick).GetAttr(Uuid::Root().Raw()), StatusCode::kNotFound)) << brick;
  }
  ExpectServing();
}

TEST_F(BrickdTest, DataPathIdOfWrongLengthIsInvalidArgument) {
  ASSERT_NO_FATAL_FAILURE(StartBrickd());
  ASSERT_NO_FATAL_FAILURE(AttachFresh("b1"));
  BrickFs fs = Fs("b1");
  for (const std::string& bad :
       {std::string("abc"), std::string(), std::string(17, 'x'), std::string(Uuid::kSize, '\0')}) {
    SCOPED_TRACE("id of " + std::to_string(bad.size()) + " bytes");
    EXPECT_TRUE(HasStatus(fs.GetAttr(bad), StatusCode::kInvalidArgument));
    EXPECT_TRUE(HasStatus(fs.Read(bad, 0, 10), StatusCode::kInvalidArgument));
    EXPECT_TRUE(HasStatus(fs.Write(bad, 0, "x"), StatusCode::kInvalidArgument));
    pb::CreateRequest create;
    create.set_brick_id("b1");
    create.set_parent_id(bad);
    create.set_name("f");
    create.set_new_id(Uuid::Random().Raw());
    EXPECT_TRUE(HasStatus(client_->Call(&pb::Brick::Stub::Create, create, brickd_->data_token()),
                          StatusCode::kInvalidArgument));
    create.set_parent_id(Uuid::Root().Raw());
    create.set_new_id(bad);
    EXPECT_TRUE(HasStatus(client_->Call(&pb::Brick::Stub::Create, create, brickd_->data_token()),
                          StatusCode::kInvalidArgument));
  }
  // Nothing was created by the rejected calls.
  auto entries = fs.ReadDir(Uuid::Root());
  ASSERT_TRUE(IsOk(entries));
  EXPECT_TRUE(entries->empty());
  ExpectServing();
}

TEST_F(BrickdTest, DataPathUnknownFileIdIsNotFoundWithEnoent) {
  ASSERT_NO_FATAL_FAILURE(StartBrickd());
  ASSERT_NO_FATAL_FAILURE(AttachFresh("b1"));
  BrickFs fs = Fs("b1");
  const std::string unknown = Uuid::Random().Raw();
  EXPECT_TRUE(HasStatus(fs.GetAttr(unknown), StatusCode::kNotFound, ENOENT));
  EXPECT_TRUE(HasStatus(fs.Read(unknown, 0, 10), StatusCode::kNotFound, ENOENT));
  EXPECT_TRUE(HasStatus(fs.Write(unknown, 0, "x"), StatusCode::kNotFound, ENOENT));
  auto parent = Uuid::FromBytes(unknown);
  ASSERT_TRUE(IsOk(parent));
  EXPECT_TRUE(HasStatus(fs.Create(*parent, "f"), StatusCode::kNotFound, ENOENT));
  EXPECT_TRUE(HasStatus(fs.Lookup(Uuid::Root(), "missing"), StatusCode::kNotFound, ENOENT));
  ExpectServing();
}

TEST_F(BrickdTest, WriteOverFourMiBIsRejectedAndBrickdKeepsServing) {
  ASSERT_NO_FATAL_FAILURE(StartBrickd());
  ASSERT_NO_FATAL_FAILURE(AttachFresh("b1"));
  BrickFs fs = Fs("b1");
  auto id = fs.Create(Uuid::Root(), "big");
  ASSERT_TRUE(IsOk(id));
  // One byte over the limit still fits gRPC's message limit (4 MiB + 64 KiB):
  // brickd itself refuses it with EINVAL.
  EXPECT_TRUE(HasStatus(fs.Write(*id, 0, std::string(kMaxIoBytes + 1, 'a')),
                        StatusCode::kInvalidArgument, EINVAL));
  // Well over it, gRPC's receive limit refuses the message before brickd sees
  // it: RESOURCE_EXHAUSTED without an errno.
  EXPECT_TRUE(
      HasStatus(fs.Write(*id, 0, std::string(6 * kMiB, 'b')), StatusCode::kResourceExhausted, 0));
  // Exactly the limit is fine, and nothing of the refused writes landed.
  auto attr = fs.GetAttr(id->Raw());
  ASSERT_TRUE(IsOk(attr));
  EXPECT_EQ(attr->size(), 0u);
  auto ok = fs.Write(*id, 0, Pattern(1, kMaxIoBytes));
  ASSERT_TRUE(IsOk(ok));
  EXPECT_EQ(ok->written(), kMaxIoBytes);
  ExpectServing();
}

TEST_F(BrickdTest, ReadOverFourMiBIsInvalidArgument) {
  ASSERT_NO_FATAL_FAILURE(StartBrickd());
  ASSERT_NO_FATAL_FAILURE(AttachFresh("b1"));
  BrickFs fs = Fs("b1");
  auto id = fs.Create(Uuid::Root(), "f");
  ASSERT_TRUE(IsOk(id));
  ASSERT_TRUE(IsOk(fs.Write(*id, 0, "small")));
  EXPECT_TRUE(
      HasStatus(fs.Read(id->Raw(), 0, kMaxIoBytes + 1), StatusCode::kInvalidArgument, EINVAL));
  EXPECT_TRUE(HasStatus(fs.Read(id->Raw(), 0, UINT32_MAX), StatusCode::kInvalidArgument, EINVAL));
  auto r = fs.Read(id->Raw(), 0, kMaxIoBytes);
  ASSERT_TRUE(IsOk(r));
  EXPECT_EQ(r->data(), "small");
  EXPECT_TRUE(r->eof());
  ExpectServing();
}

// ---------------------------------------------------------------------------
// A smoke test of the file operations over gRPC.

TEST_F(BrickdTest, RoundTripThroughRootDirectory) {
  ASSERT_NO_FATAL_FAILURE(StartBrickd());
  ASSERT_NO_FATAL_FAILURE(AttachFresh("b1"));
  BrickFs fs = Fs("b1");
  const Uuid root = Uuid::Root();

  const Uuid dir_id = Uuid::Random();
  auto dir = fs.MakeEntry(true, root, "dir", dir_id);
  ASSERT_TRUE(IsOk(dir));
  EXPECT_EQ(dir->id(), dir_id.Raw());
  EXPECT_EQ(dir->type(), pb::FILE_TYPE_DIRECTORY);

  const Uuid file_id = Uuid::Random();
  auto file = fs.MakeEntry(false, dir_id, "file", file_id);
  ASSERT_TRUE(IsOk(file));
  EXPECT_EQ(file->type(), pb::FILE_TYPE_REGULAR);
  EXPECT_EQ(file->size(), 0u);

  const std::string data = Pattern(42, kMiB);
  auto w = fs.Write(file_id, 0, data);
  ASSERT_TRUE(IsOk(w));
  EXPECT_EQ(w->written(), kMiB);
  EXPECT_EQ(w->attr().size(), kMiB);
  auto back = fs.ReadAll(file_id);
  ASSERT_TRUE(IsOk(back));
  EXPECT_TRUE(*back == data) << "1 MiB read back differs";

  auto listing = fs.ReadDir(dir_id, /*with_attrs=*/true);
  ASSERT_TRUE(IsOk(listing));
  ASSERT_EQ(listing->size(), 1u);
  EXPECT_EQ((*listing)[0].name(), "file");
  EXPECT_EQ((*listing)[0].id(), file_id.Raw());
  EXPECT_EQ((*listing)[0].attr().size(), kMiB);
  auto top = fs.ReadDir(root);
  ASSERT_TRUE(IsOk(top));
  EXPECT_EQ(Names(*top), std::set<std::string>{"dir"});

  ASSERT_TRUE(IsOk(fs.Rename(dir_id, "file", root, "moved")));
  auto moved = fs.Lookup(root, "moved");
  ASSERT_TRUE(IsOk(moved));
  EXPECT_EQ(moved->id(), file_id.Raw());
  EXPECT_EQ(moved->size(), kMiB);
  EXPECT_TRUE(HasStatus(fs.Lookup(dir_id, "file"), StatusCode::kNotFound, ENOENT));

  auto statfs = fs.StatFs();
  ASSERT_TRUE(IsOk(statfs));
  EXPECT_GE(statfs->used_bytes(), kMiB);
  EXPECT_GT(statfs->capacity_bytes(), 0u);
  EXPECT_EQ(statfs->max_name_bytes(), 255u);

  auto unlinked = fs.Remove(false, root, "moved");
  ASSERT_TRUE(IsOk(unlinked));
  EXPECT_EQ(unlinked->id(), file_id.Raw());
  EXPECT_EQ(unlinked->nlink(), 0u);
  EXPECT_TRUE(HasStatus(fs.GetAttr(file_id.Raw()), StatusCode::kNotFound, ENOENT));
  ASSERT_TRUE(IsOk(fs.Remove(true, root, "dir")));
  top = fs.ReadDir(root);
  ASSERT_TRUE(IsOk(top));
  EXPECT_TRUE(top->empty());
  statfs = fs.StatFs();
  ASSERT_TRUE(IsOk(statfs));
  EXPECT_EQ(statfs->used_bytes(), 0u) << "space of the unlinked file was not given back";
}

// brick.proto: DirEntry.id is "empty for an object the brick has no id for",
// so a plain ReadDir (without attributes) carries the ids too.
TEST_F(BrickdTest, ReadDirCarriesEntryIdsWithAttrsOnly) {
  // Plain readdir is the cheap path (no xattr reads); readdirplus carries ids.
  ASSERT_NO_FATAL_FAILURE(StartBrickd());
  ASSERT_NO_FATAL_FAILURE(AttachFresh("b1"));
  BrickFs fs = Fs("b1");
  auto file = fs.Create(Uuid::Root(), "f");
  ASSERT_TRUE(IsOk(file));
  auto dir = fs.Mkdir(Uuid::Root(), "d");
  ASSERT_TRUE(IsOk(dir));
  auto plus = fs.ReadDir(Uuid::Root(), /*with_attrs=*/true);
  ASSERT_TRUE(IsOk(plus));
  ASSERT_EQ(plus->size(), 2u);
  for (const auto& e : *plus) {
    EXPECT_EQ(e.id(), (e.name() == "f" ? *file : *dir).Raw()) << "entry " << e.name();
    EXPECT_EQ(e.attr().id(), e.id());
  }
  auto plain = fs.ReadDir(Uuid::Root(), /*with_attrs=*/false);
  ASSERT_TRUE(IsOk(plain));
  ASSERT_EQ(plain->size(), 2u);
  for (const auto& e : *plain) {
    EXPECT_TRUE(e.id().empty()) << "entry " << e.name();
    EXPECT_EQ(e.type(), e.name() == "f" ? pb::FILE_TYPE_REGULAR : pb::FILE_TYPE_DIRECTORY);
  }
}

// ---------------------------------------------------------------------------
// Concurrency.

TEST_F(BrickdTest, ConcurrentClientsOnSharedDirectoriesSeeNoErrors) {
  ASSERT_NO_FATAL_FAILURE(StartBrickd());
  ASSERT_NO_FATAL_FAILURE(AttachFresh("b1"));
  ASSERT_NO_FATAL_FAILURE(AttachFresh("b2"));
  constexpr int kThreads = 16;
  constexpr int kCycles = 250;
  constexpr int kDirs = 4;
  constexpr int kKeepEvery = 10;  // every 10th file stays, to count them afterwards
  std::vector<Uuid> dirs1, dirs2;
  for (int d = 0; d < kDirs; ++d) {
    auto a = Fs("b1").Mkdir(Uuid::Root(), "d" + std::to_string(d));
    auto b = Fs("b2").Mkdir(Uuid::Root(), "d" + std::to_string(d));
    ASSERT_TRUE(IsOk(a));
    ASSERT_TRUE(IsOk(b));
    dirs1.push_back(*a);
    dirs2.push_back(*b);
  }

  ErrorLog errors;
  std::atomic<int> verified{0};
  ThreadGroup threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.Add([&, t] {
      BrickdClient client(brickd_->address());
      // Connected first, as in ThreadsStayBounded: a first connect can fail with both cores
      // busy, and a channel in backoff fails its calls at once (not what this test checks).
      if (!client.channel()->WaitForConnected(std::chrono::system_clock::now() +
                                              std::chrono::seconds(30))) {
        errors.Add("thread " + std::to_string(t) + ": no connection in 30 s");
        return;
      }
      BrickFs fs1(client, brickd_->data_token(), "b1");
      BrickFs fs2(client, brickd_->data_token(), "b2");
      for (int i = 0; i < kCycles; ++i) {
        const bool second = i % 8 == 7;  // some of the work on the other brick
        const BrickFs& fs = second ? fs2 : fs1;
        const Uuid& dir = (second ? dirs2 : dirs1)[(t + i) % kDirs];
        const std::string name = "t" + std::to_string(t) + "-" + std::to_string(i);
        const std::string where = (second ? "b2/" : "b1/") + name;
        auto id = fs.Create(dir, name);
        if (!id.ok()) {
          errors.Add("create " + where + ": " + id.status().ToString());
          continue;
        }
        const std::string data = Pattern(t * 100000 + i, 1 + (i * 7919) % (48 << 10));
        auto w = fs.Write(*id, 0, data);
        if (!w.ok() || w->written() != data.size()) {
          errors.Add("write " + where + ": " + w.status().ToString());
          continue;
        }
        auto r = fs.Read(id->Raw(), 0, static_cast<uint32_t>(data.size() + 100));
        if (!r.ok()) {
          errors.Add("read " + where + ": " + r.status().ToString());
          continue;
        }
        if (r->data() != data || !r->eof()) {
          errors.Add("read " + where + ": contents differ");
          continue;
        }
        ++verified;
        if (i % kKeepEvery == 0) continue;
        auto u = fs.Remove(false, dir, name);
        if (!u.ok() || u->id() != id->Raw()) {
          errors.Add("unlink " + where + ": " + u.status().ToString());
        }
      }
    });
  }
  threads.JoinAll();
  ASSERT_EQ(errors.count(), 0u) << errors.Summary();
  EXPECT_EQ(verified.load(), kThreads * kCycles);

  // Exactly the kept files remain, each where it was made.
  std::map<std::string, std::set<std::string>> want;  // "bN/dK" -> names
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kCycles; i += kKeepEvery) {
      const bool second = i % 8 == 7;
      want[std::string(second ? "b2" : "b1") + "/d" + std::to_string((t + i) % kDirs)].insert(
          "t" + std::to_string(t) + "-" + std::to_string(i));
    }
  }
  for (int d = 0; d < kDirs; ++d) {
    for (const char* brick : {"b1", "b2"}) {
      const std::string key = std::string(brick) + "/d" + std::to_string(d);
      auto entries = Fs(brick).ReadDir((brick == std::string("b1") ? dirs1 : dirs2)[d]);
      ASSERT_TRUE(IsOk(entries)) << key;
      EXPECT_EQ(Names(*entries), want[key]) << key;
    }
  }
}

TEST_F(BrickdTest, AttachDetachChurnDoesNotDisturbServingBricks) {
  ASSERT_NO_FATAL_FAILURE(StartBrickd());
  ASSERT_NO_FATAL_FAILURE(AttachFresh("A"));
  ASSERT_NO_FATAL_FAILURE(AttachFresh("B"));
  std::vector<std::string> churn;  // C..Z
  for (char c = 'C'; c <= 'Z'; ++c) churn.emplace_back(1, c);
  for (const auto& id : churn) bricks_.MakeSubdir(id);
  constexpr int kCycles = 50;

  std::atomic<bool> stop{false};
  std::atomic<int> io_ops{0};
  ErrorLog io_errors;
  ThreadGroup io(&stop);
  for (int t = 0; t < 4; ++t) {
    io.Add([&, t] {
      BrickdClient client(brickd_->address());
      BrickFs fs(client, brickd_->data_token(), t % 2 == 0 ? "A" : "B");
      for (int i = 0; !stop.load(); ++i) {
        const std::string name = "io" + std::to_string(t) + "-" + std::to_string(i);
        const std::string data = Pattern(t * 1000000 + i, 4096 + i % 5000);
        auto id = fs.Create(Uuid::Root(), name);
        if (!id.ok()) {
          io_errors.Add("create " + name + ": " + id.status().ToString());
          continue;
        }
        auto w = fs.Write(*id, 0, data);
        auto r = fs.Read(id->Raw(), 0, static_cast<uint32_t>(data.size()));
        auto u = fs.Remove(false, Uuid::Root(), name);
        if (!w.ok() || !r.ok() || !u.ok() || r->data() != data) {
          io_errors.Add("io on " + name + ": write " + w.status().ToString() + ", read " +
                        r.status().ToString() + ", unlink " + u.status().ToString());
          continue;
        }
        io_ops.fetch_add(4);
      }
    });
  }

  const std::string c_data = Pattern(7, 100000);
  Uuid c_file;
  for (int cycle = 0; cycle < kCycles; ++cycle) {
    SCOPED_TRACE("cycle " + std::to_string(cycle));
    for (const auto& id : churn) {
      auto r = Attach(id, bricks_.Sub(id));
      ASSERT_TRUE(IsOk(r)) << "attach " << id;
      EXPECT_EQ(r->initialised(), cycle == 0) << id;
    }
    if (cycle == 0) {
      auto f = Fs("C").Create(Uuid::Root(), "kept");
      ASSERT_TRUE(IsOk(f));
      c_file = *f;
      ASSERT_TRUE(IsOk(Fs("C").Write(c_file, 0, c_data)));
    } else {
      auto back = Fs("C").ReadAll(c_file);
      ASSERT_TRUE(IsOk(back));
      ASSERT_TRUE(*back == c_data) << "C's file changed across detach/attach";
    }
    auto list = ListBricks();
    ASSERT_TRUE(IsOk(list));
    EXPECT_EQ(list->bricks_size(), 2 + static_cast<int>(churn.size()));
    for (const auto& id : churn) ASSERT_TRUE(IsOk(Detach(id))) << "detach " << id;
    EXPECT_TRUE(HasStatus(Fs("C").GetAttr(c_file.Raw()), StatusCode::kNotFound));
    EXPECT_TRUE(HasStatus(Fs("Z").StatFs(), StatusCode::kNotFound));
  }
  io.JoinAll();
  EXPECT_EQ(io_errors.count(), 0u) << io_errors.Summary();
  RecordProperty("io_ops_during_churn", io_ops.load());
  EXPECT_GT(io_ops.load(), 0);
  auto list = ListBricks();
  ASSERT_TRUE(IsOk(list));
  EXPECT_EQ(list->bricks_size(), 2);
}

// ---------------------------------------------------------------------------
// Restarts.

TEST_F(BrickdTest, RestartAfterSigtermReattachesBricksWithTheirFiles) {
  BrickdOptions options;
  options.state_file = true;
  ASSERT_NO_FATAL_FAILURE(StartBrickd(options));
  ASSERT_NO_FATAL_FAILURE(AttachFresh("b1"));
  ASSERT_NO_FATAL_FAILURE(AttachFresh("b2", 64 * kMiB));
  struct File {
    std::string brick;
    Uuid parent;
    std::string name;
    Uuid id;
    std::string data;
  };
  std::vector<File> files;
  for (const char* brick : {"b1", "b2"}) {
    BrickFs fs = Fs(brick);
    auto sub = fs.Mkdir(Uuid::Root(), "sub");
    ASSERT_TRUE(IsOk(sub));
    int n = 0;
    for (size_t size : {size_t{0}, size_t{1}, size_t{4096}, size_t{300000}, size_t{kMiB}}) {
      const Uuid parent = n % 2 == 0 ? Uuid::Root() : *sub;
      const std::string name = "f" + std::to_string(n++);
      auto id = fs.Create(parent, name);
      ASSERT_TRUE(IsOk(id));
      std::string data = Pattern(size + n, size);
      if (!data.empty()) {
        ASSERT_TRUE(IsOk(fs.Write(*id, 0, data)));
      }
      files.push_back({brick, parent, name, *id, std::move(data)});
    }
  }
  std::map<std::string, uint64_t> used_before;
  for (const char* brick : {"b1", "b2"}) {
    auto s = Fs(brick).StatFs();
    ASSERT_TRUE(IsOk(s));
    used_before[brick] = s->used_bytes();
  }

  ASSERT_NO_FATAL_FAILURE(StopBrickd());
  ASSERT_NO_FATAL_FAILURE(RestartBrickd());

  auto list = ListBricks();
  ASSERT_TRUE(IsOk(list));
  ASSERT_EQ(list->bricks_size(), 2);
  std::map<std::string, pb::BrickInfo> by_id;
  for (const auto& b : list->bricks()) by_id[b.brick_id()] = b;
  EXPECT_EQ(by_id["b1"].path(), bricks_.Sub("b1"));
  EXPECT_EQ(by_id["b2"].path(), bricks_.Sub("b2"));
  EXPECT_EQ(by_id["b1"].capacity_bytes(), 0u);
  EXPECT_EQ(by_id["b2"].capacity_bytes(), 64 * kMiB);
  for (const auto& f : files) {
    SCOPED_TRACE(f.brick + "/" + f.name);
    BrickFs fs = Fs(f.brick);
    auto attr = fs.Lookup(f.parent, f.name);
    ASSERT_TRUE(IsOk(attr));
    EXPECT_EQ(attr->id(), f.id.Raw());
    EXPECT_EQ(attr->size(), f.data.size());
    auto back = fs.ReadAll(f.id);
    ASSERT_TRUE(IsOk(back));
    EXPECT_TRUE(*back == f.data) << "contents differ after restart";
  }
  for (const char* brick : {"b1", "b2"}) {
    auto s = Fs(brick).StatFs();
    ASSERT_TRUE(IsOk(s));
    EXPECT_EQ(s->used_bytes(), used_before[brick]) << brick;
  }
}

TEST_F(BrickdTest, RestartAfterSigkillMidWriteKeepsAcknowledgedWritesAndRecountsUsage) {
  BrickdOptions options;
  options.state_file = true;
  ASSERT_NO_FATAL_FAILURE(StartBrickd(options));
  ASSERT_NO_FATAL_FAILURE(AttachFresh("b1"));
  ASSERT_NO_FATAL_FAILURE(AttachFresh("b2"));
  // A file on b2 written before the workload starts.
  auto steady = Fs("b2").Create(Uuid::Root(), "steady");
  ASSERT_TRUE(IsOk(steady));
  const std::string steady_data = Pattern(99, 200000);
  ASSERT_TRUE(IsOk(Fs("b2").Write(*steady, 0, steady_data)));

  struct Acked {
    std::string name;
    Uuid id;
    size_t size;
    uint64_t seed;
  };
  std::mutex mu;
  std::vector<Acked> acked;  // GUARDED_BY(mu)
  std::atomic<bool> failed{false};
  std::atomic<bool> stop{false};  // only if the test ends early
  ThreadGroup writer(&stop);
  writer.Add([&] {
    BrickdClient client(brickd_->address());
    BrickFs fs(client, brickd_->data_token(), "b1");
    for (int i = 0; i < 100000 && !stop.load(); ++i) {
      const std::string name = "w" + std::to_string(i);
      const size_t size = 8192 + (i * 4099) % 200000;
      const uint64_t seed = 5000 + i;
      const std::string data = Pattern(seed, size);
      auto id = fs.Create(Uuid::Root(), name);
      // Two writes per file, so the kill may fall between them.
      if (!id.ok() || !fs.Write(*id, 0, data.substr(0, size / 2)).ok() ||
          !fs.Write(*id, size / 2, data.substr(size / 2)).ok()) {
        failed = true;  // brickd is gone: stop at once, before the restart
        return;
      }
      std::lock_guard lock(mu);
      acked.push_back({name, *id, size, seed});
    }
  });
  // Kill once a good number of writes were acknowledged.
  const auto deadline = Clock::now() + 20s;
  for (;;) {
    {
      std::lock_guard lock(mu);
      if (acked.size() >= 40) break;
    }
    if (failed || Clock::now() > deadline) break;
    std::this_thread::sleep_for(1ms);
  }
  ASSERT_FALSE(failed.load()) << "the writer failed before the kill; log:\n" << brickd_->Log();
  auto killed = brickd_->Kill(SIGKILL);
  writer.JoinAll();
  ASSERT_TRUE(IsOk(killed));
  ASSERT_GE(acked.size(), 40u);
  ASSERT_NO_FATAL_FAILURE(RestartBrickd());

  auto list = ListBricks();
  ASSERT_TRUE(IsOk(list));
  EXPECT_EQ(list->bricks_size(), 2);
  BrickFs fs = Fs("b1");
  for (const auto& a : acked) {
    SCOPED_TRACE(a.name);
    auto attr = fs.Lookup(Uuid::Root(), a.name);
    ASSERT_TRUE(IsOk(attr));
    EXPECT_EQ(attr->id(), a.id.Raw());
    auto back = fs.ReadAll(a.id);
    ASSERT_TRUE(IsOk(back));
    EXPECT_TRUE(*back == Pattern(a.seed, a.size)) << "acknowledged write lost or torn";
  }
  auto steady_back = Fs("b2").ReadAll(*steady);
  ASSERT_TRUE(IsOk(steady_back));
  EXPECT_TRUE(*steady_back == steady_data);

  // Usage was recounted: it equals the allocation of the files on the brick,
  // including the one whose write the kill cut short.
  for (const char* brick : {"b1", "b2"}) {
    auto entries = Fs(brick).ReadDir(Uuid::Root(), /*with_attrs=*/true);
    ASSERT_TRUE(IsOk(entries));
    uint64_t allocated = 0;
    for (const auto& e : *entries) {
      if (e.type() == pb::FILE_TYPE_REGULAR) allocated += e.attr().blocks() * 512;
    }
    auto s = Fs(brick).StatFs();
    ASSERT_TRUE(IsOk(s));
    EXPECT_EQ(s->used_bytes(), allocated) << brick;
  }
}

TEST_F(BrickdTest, CapacitySurvivesRestart) {
  BrickdOptions options;
  options.state_file = true;
  ASSERT_NO_FATAL_FAILURE(StartBrickd(options));
  ASSERT_NO_FATAL_FAILURE(AttachFresh("b1", kMiB));
  ASSERT_NO_FATAL_FAILURE(StopBrickd());
  ASSERT_NO_FATAL_FAILURE(RestartBrickd());

  auto list = ListBricks();
  ASSERT_TRUE(IsOk(list));
  ASSERT_EQ(list->bricks_size(), 1);
  EXPECT_EQ(list->bricks(0).capacity_bytes(), kMiB);
  BrickFs fs = Fs("b1");
  auto statfs = fs.StatFs();
  ASSERT_TRUE(IsOk(statfs));
  EXPECT_EQ(statfs->capacity_bytes(), kMiB);
  auto id = fs.Create(Uuid::Root(), "f");
  ASSERT_TRUE(IsOk(id));
  EXPECT_TRUE(
      HasStatus(fs.Write(*id, 0, Pattern(3, 2 * kMiB)), StatusCode::kResourceExhausted, ENOSPC));
  // Within the capacity, writes go on.
  EXPECT_TRUE(IsOk(fs.Write(*id, 0, Pattern(4, kMiB / 2))));
}

// ---------------------------------------------------------------------------
// Metrics.

TEST_F(BrickdTest, MetricsWithoutValidTokenAre401) {
  ASSERT_NO_FATAL_FAILURE(StartBrickd());
  ASSERT_GT(brickd_->metrics_port(), 0);
  httplib::Client http(brickd_->host(), brickd_->metrics_port());
  http.set_connection_timeout(5);
  auto none = http.Get("/metrics");
  ASSERT_TRUE(none) << httplib::to_string(none.error());
  EXPECT_EQ(none->status, 401);
  EXPECT_EQ(none->body.find("cairn_brick"), std::string::npos);
  auto wrong = http.Get("/metrics", {{"Authorization", "Bearer " + RandomHexToken()}});
  ASSERT_TRUE(wrong);
  EXPECT_EQ(wrong->status, 401);
  auto basic = http.Get("/metrics", {{"Authorization", "Basic " + brickd_->data_token()}});
  ASSERT_TRUE(basic);
  EXPECT_EQ(basic->status, 401);
}

TEST_F(BrickdTest, MetricsCountWritesAndExposeLatencyHistograms) {
  ASSERT_NO_FATAL_FAILURE(StartBrickd());
  ASSERT_NO_FATAL_FAILURE(AttachFresh("b1"));
  ASSERT_NO_FATAL_FAILURE(AttachFresh("b2"));
  BrickFs fs = Fs("b1");
  auto id = fs.Create(Uuid::Root(), "f");
  ASSERT_TRUE(IsOk(id));
  constexpr int kWrites = 7;
  for (int i = 0; i < kWrites; ++i) ASSERT_TRUE(IsOk(fs.Write(*id, i * 1000, Pattern(i, 1000))));
  // A failed write counts as an operation and as an error.
  EXPECT_FALSE(fs.Write(Uuid::Random(), 0, "x").ok());
  ASSERT_TRUE(IsOk(fs.Read(id->Raw(), 0, 10)));

  httplib::Client http(brickd_->host(), brickd_->metrics_port());
  http.set_connection_timeout(5);
  auto res = http.Get("/metrics", {{"Authorization", "Bearer " + brickd_->data_token()}});
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  ASSERT_EQ(res->status, 200) << res->body;
  EXPECT_EQ(res->get_header_value("Content-Type").rfind("text/plain", 0), 0u);
  const std::string& body = res->body;
  auto has_line = [&body](const std::string& line) {
    return body.find("\n" + line + "\n") != std::string::npos;
  };
  const int ops = kWrites + 1;
  EXPECT_TRUE(has_line("cairn_brick_ops_total{brick=\"b1\",op=\"write\"} " + std::to_string(ops)))
      << body;
  EXPECT_TRUE(has_line("cairn_brick_op_errors_total{brick=\"b1\",op=\"write\"} 1")) << body;
  EXPECT_TRUE(has_line("cairn_brick_ops_total{brick=\"b1\",op=\"create\"} 1")) << body;
  EXPECT_TRUE(has_line("cairn_brick_ops_total{brick=\"b1\",op=\"read\"} 1")) << body;
  EXPECT_TRUE(
      has_line("cairn_brick_op_duration_seconds_bucket{brick=\"b1\",op=\"write\",le=\"+Inf\"} " +
               std::to_string(ops)))
      << body;
  EXPECT_TRUE(has_line("cairn_brick_op_duration_seconds_count{brick=\"b1\",op=\"write\"} " +
                       std::to_string(ops)))
      << body;
  EXPECT_NE(body.find("# TYPE cairn_brick_op_duration_seconds histogram"), std::string::npos);
  EXPECT_TRUE(
      has_line("cairn_brick_written_bytes_total{brick=\"b1\"} " + std::to_string(kWrites * 1000)))
      << body;
  EXPECT_TRUE(has_line("cairn_brickd_bricks 2")) << body;
  // b2 served nothing: no operation lines for it.
  EXPECT_EQ(body.find("cairn_brick_ops_total{brick=\"b2\""), std::string::npos);
  // Buckets are cumulative: never decreasing along le for b1's writes.
  uint64_t last = 0;
  int buckets = 0;
  const std::string prefix = "cairn_brick_op_duration_seconds_bucket{brick=\"b1\",op=\"write\",le=";
  for (size_t pos = body.find(prefix); pos != std::string::npos; pos = body.find(prefix, pos + 1)) {
    size_t space = body.find(' ', pos);
    uint64_t v = std::stoull(body.substr(space + 1, body.find('\n', space) - space - 1));
    EXPECT_GE(v, last);
    last = v;
    ++buckets;
  }
  EXPECT_GE(buckets, 2);
  EXPECT_EQ(last, static_cast<uint64_t>(ops));
}

// ---------------------------------------------------------------------------
// Resources: threads and ports do not grow with bricks or clients.

// The gRPC and metrics ports of a brickd, sorted.
std::vector<int> ExpectedPorts(const BrickdProcess& p) {
  std::vector<int> ports = {p.grpc_port(), p.metrics_port()};
  std::sort(ports.begin(), ports.end());
  return ports;
}

TEST_F(BrickdTest, ThreadsStayBoundedWithManyBricksAndClients) {
  constexpr int kServerThreads = 8;
  constexpr int kBricks = 200;
  constexpr int kClients = 32;
  BrickdOptions options;
  options.threads = kServerThreads;
  ASSERT_NO_FATAL_FAILURE(StartBrickd(options));
  ASSERT_NO_FATAL_FAILURE(AttachFresh("warm"));
  // Let gRPC's pool settle for one sequential client before counting.
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(IsOk(Fs("warm").StatFs()));
  const int idle_threads = ThreadCount(brickd_->pid());
  ASSERT_GT(idle_threads, 0);

  std::vector<std::string> ids;
  for (int i = 0; i < kBricks; ++i) {
    ids.push_back("m" + std::to_string(i));
    auto r = Attach(ids.back(), bricks_.MakeSubdir(ids.back()));
    ASSERT_TRUE(IsOk(r)) << ids.back();
  }
  const int threads_with_bricks = ThreadCount(brickd_->pid());
  // Bricks cost no threads (a little slack for gRPC's own housekeeping).
  EXPECT_LE(threads_with_bricks, idle_threads + 2) << "idle: " << idle_threads << " threads, with "
                                                   << kBricks << " bricks: " << threads_with_bricks;

  std::atomic<bool> done{false};
  std::atomic<int> max_threads{0};
  ThreadGroup sampler(&done);
  sampler.Add([&] {
    while (!done.load()) {
      int n = ThreadCount(brickd_->pid());
      int m = max_threads.load();
      while (n > m && !max_threads.compare_exchange_weak(m, n)) {
      }
      std::this_thread::sleep_for(1ms);
    }
  });
  ErrorLog errors;
  ThreadGroup clients;
  for (int c = 0; c < kClients; ++c) {
    clients.Add([&, c] {
      BrickdClient client(brickd_->address());
      // Connected before the first call: with both cores busy a first connect can fail, and
      // the calls of a channel in backoff fail at once (not what this test counts).
      if (!client.channel()->WaitForConnected(std::chrono::system_clock::now() +
                                              std::chrono::seconds(30))) {
        errors.Add("client " + std::to_string(c) + ": no connection in 30 s");
        return;
      }
      for (int i = 0; i < 40; ++i) {
        const std::string& brick = ids[(c * 41 + i * 7) % kBricks];
        BrickFs fs(client, brickd_->data_token(), brick);
        const std::string name = "c" + std::to_string(c) + "-" + std::to_string(i);
        const std::string data = Pattern(c * 1000 + i, 8192);
        auto id = fs.Create(Uuid::Root(), name);
        if (!id.ok()) {
          errors.Add("create " + brick + "/" + name + ": " + id.status().ToString());
          continue;
        }
        auto w = fs.Write(*id, 0, data);
        auto r = fs.Read(id->Raw(), 0, 8192);
        auto u = fs.Remove(false, Uuid::Root(), name);
        if (!w.ok() || !r.ok() || !u.ok() || r->data() != data) {
          errors.Add(brick + "/" + name + ": write " + w.status().ToString() + ", read " +
                     r.status().ToString() + ", unlink " + u.status().ToString());
        }
      }
    });
  }
  clients.JoinAll();
  sampler.JoinAll();
  EXPECT_EQ(errors.count(), 0u) << errors.Summary();
  RecordProperty("idle_threads", idle_threads);
  RecordProperty("threads_with_bricks", threads_with_bricks);
  RecordProperty("max_threads_under_load", max_threads.load());
  EXPECT_LE(max_threads.load(), kServerThreads + 16)
      << "idle: " << idle_threads << ", with bricks: " << threads_with_bricks;
  ExpectServing("warm");
}

// More concurrent calls than --threads must wait for a thread, not fail:
// clients cannot tell "busy" from a real error.
TEST_F(BrickdTest, CallsBeyondThreadLimitAreQueuedNotRefused) {
  BrickdOptions options;
  options.threads = 2;
  ASSERT_NO_FATAL_FAILURE(StartBrickd(options));
  ASSERT_NO_FATAL_FAILURE(AttachFresh("b1"));
  auto id = Fs("b1").Create(Uuid::Root(), "f");
  ASSERT_TRUE(IsOk(id));
  ASSERT_TRUE(IsOk(Fs("b1").Write(*id, 0, Pattern(1, 256 << 10))));
  ErrorLog errors;
  ThreadGroup clients;
  for (int c = 0; c < 8; ++c) {
    clients.Add([&] {
      BrickdClient client(brickd_->address());
      BrickFs fs(client, brickd_->data_token(), "b1");
      for (int i = 0; i < 50; ++i) {
        auto r = fs.Read(id->Raw(), 0, 256 << 10);
        if (!r.ok()) errors.Add("read: " + r.status().ToString());
      }
    });
  }
  clients.JoinAll();
  EXPECT_EQ(errors.count(), 0u) << errors.Summary();
}

TEST_F(BrickdTest, ListensOnExactlyOneGrpcPortAndOneMetricsPort) {
  ASSERT_NO_FATAL_FAILURE(StartBrickd());
  EXPECT_EQ(ListeningTcpPorts(brickd_->pid()), ExpectedPorts(*brickd_));
  for (int i = 0; i < 50; ++i) {
    ASSERT_NO_FATAL_FAILURE(AttachFresh("p" + std::to_string(i)));
  }
  // Bricks add no ports either (brick multiplexing).
  EXPECT_EQ(ListeningTcpPorts(brickd_->pid()), ExpectedPorts(*brickd_));
}

// ---------------------------------------------------------------------------
// Process life.

// Sends SIGTERM and expects exit status 0 within 5 s.
void ExpectCleanExitWithinFiveSeconds(BrickdProcess& brickd) {
  const auto start = Clock::now();
  auto stopped = brickd.Kill(SIGTERM, 5s);
  ASSERT_TRUE(IsOk(stopped)) << "no exit within 5 s of SIGTERM; log:\n" << brickd.Log();
  EXPECT_TRUE(WIFEXITED(*stopped)) << DescribeWaitStatus(*stopped);
  EXPECT_EQ(WEXITSTATUS(*stopped), 0) << DescribeWaitStatus(*stopped);
  EXPECT_LT(Clock::now() - start, 5s);
}

TEST_F(BrickdTest, SigtermExitsZeroWithinFiveSecondsAndClosesBricksCleanly) {
  ASSERT_NO_FATAL_FAILURE(StartBrickd());
  ASSERT_NO_FATAL_FAILURE(AttachFresh("b1"));
  ASSERT_NO_FATAL_FAILURE(AttachFresh("b2"));
  auto id = Fs("b1").Create(Uuid::Root(), "f");
  ASSERT_TRUE(IsOk(id));
  ASSERT_TRUE(IsOk(Fs("b1").Write(*id, 0, Pattern(1, 100000))));
  client_.reset();  // no connection left open
  ASSERT_NO_FATAL_FAILURE(ExpectCleanExitWithinFiveSeconds(*brickd_));
  // Each brick recorded its usage at the clean close (no recount next time).
  for (const char* brick : {"b1", "b2"}) {
    struct stat st;
    EXPECT_EQ(::stat((bricks_.Sub(brick) + "/.cairn/clean").c_str(), &st), 0) << brick;
  }
}

// Clients (FUSE mounts, storaged) keep their connections open while idle; a
// stop must not wait for them to go away.
TEST_F(BrickdTest, SigtermExitsZeroWithinFiveSecondsWithIdleClientsConnected) {
  ASSERT_NO_FATAL_FAILURE(StartBrickd());
  ASSERT_NO_FATAL_FAILURE(AttachFresh("b1"));
  BrickdClient idle(brickd_->address());
  ASSERT_TRUE(IsOk(BrickFs(idle, brickd_->data_token(), "b1").StatFs()));
  ASSERT_TRUE(IsOk(Fs("b1").StatFs()));
  ASSERT_NO_FATAL_FAILURE(ExpectCleanExitWithinFiveSeconds(*brickd_));
}

// gRPC's SO_REUSEPORT would let a second server bind the same port and take a
// share of the connections: a port in use must make brickd fail instead.
TEST_F(BrickdTest, SecondBrickdOnATakenPortFailsToStart) {
  ASSERT_NO_FATAL_FAILURE(StartBrickd());
  ASSERT_NO_FATAL_FAILURE(AttachFresh("b1"));
  BrickdOptions second;
  second.port = brickd_->grpc_port();
  second.ready_timeout = 10s;
  auto other = BrickdProcess::Start(second);
  EXPECT_FALSE(other.ok()) << "a second brickd started on port " << brickd_->grpc_port();
  if (other.ok()) {
    // Connections to the port now land on either process.
    int misrouted = 0;
    for (int i = 0; i < 20; ++i) {
      BrickdClient c(brickd_->address());
      if (!BrickFs(c, brickd_->data_token(), "b1").StatFs().ok()) ++misrouted;
    }
    ADD_FAILURE() << misrouted << " of 20 new connections reached the wrong brickd";
  }
  ExpectServing();
}

TEST_F(BrickdTest, ServesOnAnotherLoopbackAddress) {
  BrickdOptions options;
  options.host = "127.0.0.2";
  ASSERT_NO_FATAL_FAILURE(StartBrickd(options));
  EXPECT_EQ(brickd_->address(), "127.0.0.2:" + std::to_string(brickd_->grpc_port()));
  ASSERT_NO_FATAL_FAILURE(AttachFresh("b1"));
  EXPECT_TRUE(IsOk(Fs("b1").StatFs()));
  // Bound to 127.0.0.2 only: the same port on 127.0.0.1 is not brickd.
  BrickdClient other("127.0.0.1:" + std::to_string(brickd_->grpc_port()));
  pb::StatFsRequest req;
  req.set_brick_id("b1");
  EXPECT_TRUE(HasStatus(other.Call(&pb::Brick::Stub::StatFs, req, brickd_->data_token(), 2s),
                        StatusCode::kUnavailable));
  httplib::Client http("127.0.0.2", brickd_->metrics_port());
  auto res = http.Get("/metrics", {{"Authorization", "Bearer " + brickd_->data_token()}});
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
}

// ---------------------------------------------------------------------------
// CopyFrom: self-heal's brick-to-brick copy.

// The sink brickd (brickd_) reads from a second brickd sharing its data
// token, and writes what it read as a heal write would.
// Pages of `path` in [offset, offset + length) that are in the page cache.
size_t ResidentPages(const std::string& path, size_t offset, size_t length) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return SIZE_MAX;
  void* map = ::mmap(nullptr, length, PROT_READ, MAP_SHARED, fd, static_cast<off_t>(offset));
  ::close(fd);
  if (map == MAP_FAILED) return SIZE_MAX;
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  std::vector<unsigned char> in((length + page - 1) / page);
  size_t n = SIZE_MAX;
  if (::mincore(map, length, in.data()) == 0) {
    n = 0;
    for (unsigned char c : in) n += c & 1;
  }
  ::munmap(map, length);
  return n;
}

// A client's large write goes around the brick's page cache (O_DIRECT for its
// aligned part); small and unaligned writes are buffered; the data is the same.
TEST_F(BrickdTest, LargeWritesGoAroundThePageCacheSmallOnesAreBuffered) {
  ASSERT_NO_FATAL_FAILURE(StartBrickd());
  ASSERT_NO_FATAL_FAILURE(AttachFresh("b1"));
  BrickFs fs = Fs("b1");
  const Uuid id = Uuid::Random();
  ASSERT_TRUE(IsOk(fs.MakeEntry(false, Uuid::Root(), "f", id)));
  const std::string path = bricks_.Sub("b1") + "/f";
  std::string data(2 * kMiB + 5000, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>('a' + (i * 7919) % 26);
  ASSERT_TRUE(IsOk(fs.Write(id, 0, data.substr(0, kMiB))));            // direct
  ASSERT_TRUE(IsOk(fs.Write(id, kMiB, data.substr(kMiB, 64 << 10))));  // small: buffered
  ASSERT_TRUE(IsOk(fs.Write(id, kMiB + (64 << 10), data.substr(kMiB + (64 << 10)))));
  auto got = fs.ReadAll(id);
  ASSERT_TRUE(IsOk(got));
  EXPECT_TRUE(*got == data) << "the brick's file differs from what was written";
  int probe = ::open(path.c_str(), O_RDONLY | O_DIRECT | O_CLOEXEC);
  if (probe < 0) GTEST_SKIP() << "the brick's file system refuses O_DIRECT: all writes buffered";
  ::close(probe);
  // Reading back through brickd above filled the cache; drop this file's pages and write again.
  int drop = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(drop, 0);
  EXPECT_EQ(::posix_fadvise(drop, 0, 0, POSIX_FADV_DONTNEED), 0);
  ::close(drop);
  ASSERT_TRUE(IsOk(fs.Write(id, 0, data.substr(0, kMiB))));
  ASSERT_TRUE(IsOk(fs.Write(id, kMiB, data.substr(kMiB, 64 << 10))));
  EXPECT_EQ(ResidentPages(path, 0, kMiB), 0u) << "the 1 MiB write went through the page cache";
  EXPECT_EQ(ResidentPages(path, kMiB, 64 << 10), 16u) << "the 64 KiB write did not";
  got = fs.ReadAll(id);
  ASSERT_TRUE(IsOk(got));
  EXPECT_TRUE(*got == data);
}

TEST_F(BrickdTest, CopyFromCopiesFromAnotherBrickdAndChecksEverything) {
  ASSERT_NO_FATAL_FAILURE(StartBrickd());
  ASSERT_NO_FATAL_FAILURE(AttachFresh("sink"));
  BrickdOptions so;
  so.data_token = brickd_->data_token();
  auto src = BrickdProcess::Start(so);
  ASSERT_TRUE(IsOk(src));
  BrickdClient src_client((*src)->address());
  pb::AttachRequest attach;
  attach.set_brick_id("src");
  attach.set_path(bricks_.MakeSubdir("src"));
  ASSERT_TRUE(IsOk(src_client.Call(&pb::BrickAdmin::Stub::Attach, attach, (*src)->admin_token())));
  BrickFs source(src_client, brickd_->data_token(), "src");
  BrickFs sink = Fs("sink");

  // The same file (same id) on both; 5 MiB + 1000 bytes of data on the source.
  const Uuid id = Uuid::Random();
  ASSERT_TRUE(IsOk(source.MakeEntry(false, Uuid::Root(), "f", id)));
  ASSERT_TRUE(IsOk(sink.MakeEntry(false, Uuid::Root(), "f", id)));
  std::string data(5 * kMiB + 1000, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>('a' + (i * 7919) % 26);
  ASSERT_TRUE(IsOk(source.Write(id, 0, data.substr(0, 4 * kMiB))));
  ASSERT_TRUE(IsOk(source.Write(id, 4 * kMiB, data.substr(4 * kMiB))));

  auto copy = [&](uint64_t off, uint32_t len, const std::string& token,
                  const std::string& node = "", const std::string& brick = "src",
                  const pb::Version* expected = nullptr) {
    pb::CopyFromRequest q;
    q.set_brick_id("sink");
    q.set_id(id.Raw());
    q.set_offset(off);
    q.set_length(len);
    q.set_source_node(node.empty() ? (*src)->address() : node);
    q.set_source_brick_id(brick);
    if (expected != nullptr) *q.mutable_txn()->mutable_expected() = *expected;
    return client_->Call(&pb::Brick::Stub::CopyFrom, q, token);
  };
  const std::string& admin = brickd_->admin_token();
  // The aligned head (direct I/O), then the unaligned tail, then a piece in
  // the middle at an unaligned offset (buffered).
  auto head = copy(0, 4 * kMiB, admin);
  ASSERT_TRUE(IsOk(head));
  EXPECT_EQ(head->written(), 4 * kMiB);
  auto tail = copy(4 * kMiB, kMiB + 1000, admin);
  ASSERT_TRUE(IsOk(tail));
  EXPECT_EQ(tail->attr().size(), data.size());
  ASSERT_TRUE(IsOk(sink.Write(id, 1000, std::string(5000, 'Z'))));
  ASSERT_TRUE(IsOk(copy(1000, 5000, admin)));
  auto got = sink.ReadAll(id);
  ASSERT_TRUE(IsOk(got));
  EXPECT_TRUE(*got == data) << "the sink's copy differs from the source";

  // Refusals, each with its code; nothing changes on the sink.
  EXPECT_TRUE(HasStatus(copy(0, kMiB, brickd_->data_token()), StatusCode::kPermissionDenied));
  EXPECT_TRUE(HasStatus(copy(0, 0, admin), StatusCode::kInvalidArgument));
  EXPECT_TRUE(HasStatus(copy(0, 4 * kMiB + 1, admin), StatusCode::kInvalidArgument));
  auto unreachable = copy(0, kMiB, admin, "127.0.0.1:1");
  EXPECT_TRUE(HasStatus(unreachable, StatusCode::kUnavailable));
  EXPECT_NE(unreachable.status().message().find("source brick src on 127.0.0.1:1"),
            std::string::npos)
      << unreachable.status().ToString();
  auto no_brick = copy(0, kMiB, admin, "", "nope");
  EXPECT_TRUE(HasStatus(no_brick, StatusCode::kNotFound));
  EXPECT_NE(no_brick.status().message().find("source brick nope"), std::string::npos);
  pb::CopyFromRequest no_sink;
  no_sink.set_brick_id("nosink");
  no_sink.set_id(id.Raw());
  no_sink.set_length(10);
  no_sink.set_source_node((*src)->address());
  no_sink.set_source_brick_id("src");
  EXPECT_TRUE(
      HasStatus(client_->Call(&pb::Brick::Stub::CopyFrom, no_sink, admin), StatusCode::kNotFound));
  // A heal's compare-and-set: a version the sink does not have refuses it.
  pb::Version stale;
  stale.set_data(12345);
  ASSERT_TRUE(IsOk(sink.Write(id, 0, std::string(10, 'Q'))));
  auto refused = copy(0, kMiB, admin, "", "src", &stale);
  EXPECT_TRUE(HasStatus(refused, StatusCode::kFailedPrecondition)) << refused.status().ToString();
  auto after = sink.Read(id.Raw(), 0, 10);
  ASSERT_TRUE(IsOk(after));
  EXPECT_EQ(after->data(), std::string(10, 'Q'));
  EXPECT_TRUE(brickd_->Running()) << brickd_->Log();
}

}  // namespace
}  // namespace cairn::test
