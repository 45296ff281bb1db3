// cairn-fsx: a randomized data-integrity exerciser for ONE file on any mounted
// file system, in the spirit of xfstests' fsx.
//
//   cairn-fsx [options] FILE        (cairn-fsx --help lists the options)
//
// It runs a random mix of pwrite/pread/ftruncate/fallocate/mmap operations on
// FILE and checks every result (data, short-read counts, st_size after every
// op) against an in-memory model of the file. Bytes written by op N at offset
// O are PatternByte(seed, N, O), so a mismatch report can name the op that
// wrote the expected bytes and the op whose data was found instead.
//
// Exit status: 0 all checks passed, 1 mismatch or unexpected error (the report
// gives the seed, the op, the first differing offset, both byte windows and the
// last --log-ops ops), 2 bad usage.
//
// Tolerated errors (--tolerate-errno EIO,EROFS,...). An op failing with a
// listed errno is counted and not applied to the model. A failed mutation may
// still have been applied in part on the server, so the model keeps, for the
// bytes it covered, BOTH possibilities: the old content stays in the model and
// the op's new content is kept as an "unknown layer" (a write's data; zeros
// for truncate-down, punch hole and zero range). A read accepts each byte in
// an unknown range if it equals the old value or any overlapping layer's value,
// until a later successful mutation of that byte makes it known again. The
// length is uncertain too: it may be anything between the old and the new
// length, so the tool fstat()s (retrying before each later op while fstat
// fails with a tolerated errno) and adopts the observed length if it lies in
// that range, else it reports a size mismatch. Tolerated fsync/close failures
// do not change the model: every write was acknowledged on its own. SIGBUS on
// an mmap access counts as EIO.
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/flags.h"

namespace cairn::fsx {
namespace {

static_assert(std::endian::native == std::endian::little, "pattern words assume little endian");

constexpr int kExitOk = 0;
constexpr int kExitFail = 1;
constexpr int kExitUsage = 2;

constexpr const char kUsage[] = R"(usage: cairn-fsx [options] FILE
Randomized data-integrity exerciser: a random mix of writes (also beyond EOF),
reads (also across EOF), truncates, fallocates and optionally mmap reads/writes
on FILE, every result checked against an in-memory model of the file.

options:
  --ops N              data ops to run (default 100000)
  --seed S             random seed (default: time-based; always printed)
  --max-size BYTES     max file length the ops create (default 8M; K/M/G suffixes)
  --max-io BYTES       max size of one read/write (default 256K)
  --mmap               also mmap reads and mmap writes (MAP_SHARED + msync)
  --no-truncate        no ftruncate ops
  --no-fallocate       no fallocate ops (keep_size, punch_hole, zero_range, plain;
                       a mode failing with EOPNOTSUPP is disabled for the run)
  --fsync-every N      fsync after every N ops (default 0: random, ~1% of ops)
  --reopen-every N     close and reopen FILE every N ops (default 1000; 0 never)
  --verify-every N     verify the whole file every N ops (default 5000; 0 only
                       at the end)
  --tolerate-errno L   comma-separated errno names or numbers (e.g. EROFS,EIO):
                       an op failing with one of them is counted, not applied,
                       and the bytes it may have changed become "old or new"
  --create             create/truncate FILE at start (by default it is created
                       if missing and truncated to 0: every run starts empty)
  --log-ops N          recent ops to dump on failure (default 100)
  --progress           progress line with ops/s every 2 s on stderr
  --quiet              print only the seed, failures and a one-line result
  --config FILE        JSON file of option values (command line wins)

exit status: 0 passed, 1 mismatch or unexpected error, 2 bad usage
)";

// ---------------------------------------------------------------------------
// Data pattern.

uint64_t Mix(uint64_t x) {  // splitmix64 finalizer
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

uint64_t OpKey(uint64_t seed, uint64_t op) { return Mix(seed ^ Mix(op * 0xd6e8feb86659fd93ULL)); }

uint8_t PatternByte(uint64_t key, int64_t off) {
  return static_cast<uint8_t>(Mix(key + static_cast<uint64_t>(off >> 3)) >> ((off & 7) * 8));
}

// Fills out[0, n) with the bytes op `key` writes at [off, off + n).
void FillPattern(uint64_t key, int64_t off, int64_t n, uint8_t* out) {
  int64_t i = 0;
  while (i < n && ((off + i) & 7) != 0) {
    out[i] = PatternByte(key, off + i);
    ++i;
  }
  for (; i + 8 <= n; i += 8) {
    uint64_t w = Mix(key + static_cast<uint64_t>((off + i) >> 3));
    std::memcpy(out + i, &w, 8);
  }
  for (; i < n; ++i) out[i] = PatternByte(key, off + i);
}

// ---------------------------------------------------------------------------
// Errno names and SIGBUS during mmap accesses.

std::string ErrnoName(int err) {
  const char* name = strerrorname_np(err);
  std::string s = name != nullptr ? name : "errno " + std::to_string(err);
  return s + " (" + std::strerror(err) + ")";
}

int ErrnoFromName(const std::string& name) {
  if (!name.empty() && std::all_of(name.begin(), name.end(), ::isdigit)) return std::stoi(name);
  for (int e = 1; e < 4096; ++e) {
    const char* n = strerrorname_np(e);
    if (n != nullptr && name == n) return e;
  }
  return 0;
}

sigjmp_buf g_sigbus_jump;
volatile sig_atomic_t g_sigbus_armed = 0;

void OnSigbus(int sig) {
  if (g_sigbus_armed) {
    g_sigbus_armed = 0;
    siglongjmp(g_sigbus_jump, 1);
  }
  signal(sig, SIG_DFL);
  raise(sig);
}

// memcpy that returns false instead of dying when the mapping raises SIGBUS.
[[gnu::noinline]] bool GuardedCopy(void* dst, const void* src, size_t n) {
  if (sigsetjmp(g_sigbus_jump, 1) != 0) return false;
  g_sigbus_armed = 1;
  std::memcpy(dst, src, n);
  g_sigbus_armed = 0;
  return true;
}

// ---------------------------------------------------------------------------
// Options.

struct Options {
  std::string path;
  std::string command_line;
  int64_t ops = 100000;
  int64_t seed = 0;
  bool seed_given = false;
  int64_t max_size = 8 << 20;
  int64_t max_io = 256 << 10;
  bool mmap = false;
  bool truncate = true;
  bool fallocate = true;
  int64_t fsync_every = 0;
  int64_t reopen_every = 1000;
  int64_t verify_every = 5000;
  bool progress = false;
  bool quiet = false;
  int64_t log_ops = 100;
  bool create = false;
  std::set<int> tolerate;
  bool self_test_corrupt = false;
};

// "4096", "64K", "8M", "1G", "8MiB" -> bytes; -1 if malformed.
int64_t ParseSize(const std::string& text) {
  size_t pos = 0;
  while (pos < text.size() && std::isdigit(static_cast<unsigned char>(text[pos]))) ++pos;
  if (pos == 0 || pos > 15) return -1;
  int64_t v = std::stoll(text.substr(0, pos));
  std::string suffix = text.substr(pos);
  if (suffix.empty() || suffix == "B") return v;
  static const std::map<std::string, int> kShift = {{"K", 10},   {"KiB", 10}, {"k", 10},  {"M", 20},
                                                    {"MiB", 20}, {"G", 30},   {"GiB", 30}};
  auto it = kShift.find(suffix);
  return it == kShift.end() ? -1 : v << it->second;
}

int UsageError(const std::string& msg) {
  std::fprintf(stderr, "cairn-fsx: %s\n(cairn-fsx --help for usage)\n", msg.c_str());
  return kExitUsage;
}

// Returns -1 when parsed, else the exit code to return right away.
int ParseOptions(int argc, char** argv, Options* o) {
  Flags flags("cairn-fsx", "randomized data-integrity exerciser");
  flags.AddInt("ops", o->ops, "");
  flags.AddInt("seed", 0, "");
  flags.AddString("max-size", "8M", "");
  flags.AddString("max-io", "256K", "");
  flags.AddBool("mmap", false, "");
  flags.AddBool("truncate", true, "");
  flags.AddBool("fallocate", true, "");
  flags.AddInt("fsync-every", o->fsync_every, "");
  flags.AddInt("reopen-every", o->reopen_every, "");
  flags.AddInt("verify-every", o->verify_every, "");
  flags.AddBool("progress", false, "");
  flags.AddBool("quiet", false, "");
  flags.AddInt("log-ops", o->log_ops, "");
  flags.AddBool("create", false, "");
  flags.AddString("tolerate-errno", "", "");
  flags.AddBool("self-test-corrupt", false, "");  // hidden: flips a byte behind the model
  if (Status s = flags.Parse(argc, argv); !s.ok()) return UsageError(s.message());
  if (flags.help_requested()) {
    std::fputs(kUsage, stdout);
    return kExitOk;
  }
  if (flags.positional().size() != 1) {
    return UsageError(flags.positional().empty() ? "missing FILE" : "exactly one FILE, please");
  }
  o->path = flags.positional()[0];
  for (int i = 0; i < argc; ++i) o->command_line += (i ? " " : "") + std::string(argv[i]);
  o->ops = flags.GetInt("ops");
  o->seed_given = flags.IsSet("seed");
  o->seed = flags.GetInt("seed");
  o->max_size = ParseSize(flags.GetString("max-size"));
  o->max_io = ParseSize(flags.GetString("max-io"));
  o->mmap = flags.GetBool("mmap");
  o->truncate = flags.GetBool("truncate");
  o->fallocate = flags.GetBool("fallocate");
  o->fsync_every = flags.GetInt("fsync-every");
  o->reopen_every = flags.GetInt("reopen-every");
  o->verify_every = flags.GetInt("verify-every");
  o->progress = flags.GetBool("progress");
  o->quiet = flags.GetBool("quiet");
  o->log_ops = flags.GetInt("log-ops");
  o->create = flags.GetBool("create");
  o->self_test_corrupt = flags.GetBool("self-test-corrupt");
  if (o->ops < 0) return UsageError("--ops must be >= 0");
  if (o->max_size <= 0) return UsageError("--max-size wants a positive size like 8M");
  if (o->max_io <= 0) return UsageError("--max-io wants a positive size like 256K");
  if (o->max_io > o->max_size) {
    if (flags.IsSet("max-io")) return UsageError("--max-io must not exceed --max-size");
    o->max_io = o->max_size;
  }
  if (o->fsync_every < 0 || o->reopen_every < 0 || o->verify_every < 0 || o->log_ops < 0) {
    return UsageError("--fsync-every, --reopen-every, --verify-every, --log-ops must be >= 0");
  }
  std::string list = flags.GetString("tolerate-errno");
  for (size_t start = 0; start < list.size();) {
    size_t comma = std::min(list.find(',', start), list.size());
    std::string name = list.substr(start, comma - start);
    start = comma + 1;
    if (name.empty()) continue;
    int err = ErrnoFromName(name);
    if (err <= 0) return UsageError("--tolerate-errno: unknown errno name '" + name + "'");
    o->tolerate.insert(err);
  }
  return -1;
}

// ---------------------------------------------------------------------------
// The exerciser.

// The data ops come first, in the order of PickKind's weights.
enum class Kind : uint8_t {
  kWrite,
  kRead,
  kTruncate,
  kFallocate,
  kMmapRead,
  kMmapWrite,
  kFsync,
  kReopen,
  kVerify,
  kStat,
  kCorrupt,
  kCount
};
constexpr int kNumKinds = static_cast<int>(Kind::kCount);
constexpr const char* kKindNames[kNumKinds] = {"write",     "read",       "truncate", "fallocate",
                                               "mmap_read", "mmap_write", "fsync",    "reopen",
                                               "verify",    "fstat",      "corrupt"};

struct FallocMode {
  int flags;
  const char* name;
  bool zeroes;      // content of [off, end) within the file becomes 0
  bool keeps_size;  // never extends the file
};
constexpr FallocMode kFallocModes[] = {
    {FALLOC_FL_KEEP_SIZE, "keep_size", false, true},
    {FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, "punch_hole", true, true},
    {FALLOC_FL_ZERO_RANGE, "zero_range", true, false},
    {0, "plain", false, false},
};
constexpr int kNumFallocModes = 4;

// One op, for the recent-op log and the provenance history.
struct OpRecord {
  uint64_t n = 0;
  Kind kind = Kind::kWrite;
  int8_t mode = -1;  // fallocate mode index
  int err = 0;       // errno of a (tolerated) failure; 0 ok
  int64_t off = 0;
  int64_t len = 0;  // bytes; for truncate the new length
  int64_t size_before = 0;
  int64_t result = 0;  // bytes read/written; size adopted after a resync
};

// A range whose bytes may also hold `alt` (or zeros when alt is empty).
struct Layer {
  int64_t off;
  int64_t end;
  uint64_t op;
  std::vector<uint8_t> alt;
  uint8_t At(int64_t pos) const { return alt.empty() ? 0 : alt[pos - off]; }
};

class Exerciser {
 public:
  explicit Exerciser(Options opt)
      : o_(std::move(opt)),
        seed_(static_cast<uint64_t>(o_.seed)),
        rng_(seed_),
        model_(o_.max_size, 0),
        buf_(std::max<int64_t>(o_.max_io, kVerifyChunk)),
        ring_(o_.log_ops) {
    for (bool& e : falloc_enabled_) e = o_.fallocate;
  }

  int Run();

 private:
  static constexpr int64_t kVerifyChunk = 1 << 20;
  using Clock = std::chrono::steady_clock;

  // Randomness.
  int64_t RandRange(int64_t lo, int64_t hi) {  // inclusive
    return lo + static_cast<int64_t>(rng_() % static_cast<uint64_t>(hi - lo + 1));
  }
  int64_t RandIoSize(int64_t max) {
    switch (rng_() % 4) {
      case 0:
        return RandRange(1, std::min<int64_t>(max, 512));
      case 1: {  // log-uniform
        int bits = std::bit_width(static_cast<uint64_t>(max));
        return std::min(max, RandRange(1, int64_t{1} << RandRange(0, bits - 1)));
      }
      default:
        return RandRange(1, max);
    }
  }
  int64_t RandOffset() {
    int64_t off;
    switch (rng_() % 8) {
      case 0:  // at / around EOF
        off = len_ + RandRange(-4096, 4096);
        break;
      case 1:  // page aligned
        off = RandRange(0, o_.max_size - 1) & ~int64_t{4095};
        break;
      default:
        off = RandRange(0, o_.max_size - 1);
        break;
    }
    return std::clamp<int64_t>(off, 0, o_.max_size - 1);
  }

  // Model.
  void ApplyData(int64_t off, const uint8_t* data, int64_t n) {
    std::memcpy(&model_[off], data, n);
    ClipLayers(off, off + n);
    len_ = std::max(len_, off + n);
  }
  void ApplyZero(int64_t off, int64_t end) {
    if (end <= off) return;
    std::memset(&model_[off], 0, end - off);
    ClipLayers(off, end);
  }
  void SetLength(int64_t n) {
    if (n < len_) ApplyZero(n, len_);
    ClipLayers(n, INT64_MAX);
    len_ = n;
  }
  void ClipLayers(int64_t off, int64_t end);
  void AddLayer(int64_t off, int64_t end, const uint8_t* alt) {
    end = std::min(end, o_.max_size);
    if (end <= off) return;
    Layer l{off, end, op_, {}};
    if (alt != nullptr) l.alt.assign(alt, alt + (end - off));
    layers_.push_back(std::move(l));
  }
  // True iff buf[0, n) is a possible content of [off, off + n); else *bad is
  // the first offset that is not.
  bool Matches(int64_t off, const uint8_t* buf, int64_t n, int64_t* bad) const;

  // Ops.
  void DoWrite();
  void DoRead(int64_t force_at);
  void DoTruncate();
  void DoFallocate();
  void DoMmap(bool write);
  void DoFsync();
  bool Reopen(bool close_first);
  bool Verify();
  void CheckSize();
  bool ResolvePending();
  void Corrupt();
  Kind PickKind();

  // Bookkeeping and reports.
  OpRecord& Begin(Kind kind, int64_t off, int64_t len, int8_t mode = -1);
  // A failed call: returns if `err` is tolerated (after counting it), else fails the run.
  void Failed(const char* call, int err);
  void Mutated(const OpRecord& r) {
    if (history_.size() >= (size_t{1} << 20)) {
      history_.erase(history_.begin(), history_.begin() + history_.size() / 2);
      history_trimmed_ = true;
    }
    history_.push_back(r);
  }
  void Pending(int64_t lo, int64_t hi) {
    pending_ = true;
    pending_lo_ = std::min(lo, hi);
    pending_hi_ = std::max(lo, hi);
  }
  [[noreturn]] void Fail(const std::string& what, const std::string& details = "");
  [[noreturn]] void Mismatch(int64_t off, const uint8_t* buf, int64_t n, int64_t bad);
  std::string Describe(const OpRecord& r) const;
  std::string Provenance(int64_t pos, const uint8_t* actual, int64_t avail, bool expected) const;
  void Say(const char* fmt, ...) const __attribute__((format(printf, 2, 3)));
  void Progress(bool force);
  void Summary();

  Options o_;
  uint64_t seed_;  // o_.seed as the pattern key
  std::mt19937_64 rng_;
  std::vector<uint8_t> model_;  // file content; zero beyond len_
  std::vector<uint8_t> buf_;
  int64_t len_ = 0;
  std::vector<Layer> layers_;
  bool pending_ = false;  // the length is uncertain after a tolerated failed mutation
  int64_t pending_lo_ = 0, pending_hi_ = 0;
  int fd_ = -1;
  uint64_t op_ = 0;  // current op number (1-based)
  OpRecord* cur_ = nullptr;
  OpRecord scratch_;
  std::vector<OpRecord> ring_;
  uint64_t logged_ = 0;
  std::vector<OpRecord> history_;  // successful and failed mutations, for provenance
  bool history_trimmed_ = false;
  bool falloc_enabled_[kNumFallocModes];
  std::vector<std::string> disabled_notes_;
  int64_t corrupt_at_ = 0, force_read_at_ = -1;

  // Statistics.
  uint64_t count_[kNumKinds] = {};
  uint64_t falloc_count_[kNumFallocModes] = {};
  uint64_t bytes_read_ = 0, bytes_written_ = 0, short_writes_ = 0, resyncs_ = 0;
  std::map<std::string, uint64_t> tolerated_;  // "write EIO" -> count
  Clock::time_point start_, last_progress_;
  uint64_t last_progress_op_ = 0;
};

void Exerciser::Say(const char* fmt, ...) const {
  if (o_.quiet) return;
  va_list ap;
  va_start(ap, fmt);
  std::vfprintf(stderr, fmt, ap);
  va_end(ap);
}

void Exerciser::ClipLayers(int64_t off, int64_t end) {
  if (layers_.empty()) return;
  std::vector<Layer> out;
  for (Layer& l : layers_) {
    if (l.end <= off || l.off >= end) {
      out.push_back(std::move(l));
      continue;
    }
    if (l.off < off) {
      Layer left{l.off, off, l.op, {}};
      if (!l.alt.empty()) left.alt.assign(l.alt.begin(), l.alt.begin() + (off - l.off));
      out.push_back(std::move(left));
    }
    if (l.end > end) {
      Layer right{end, l.end, l.op, {}};
      if (!l.alt.empty()) right.alt.assign(l.alt.begin() + (end - l.off), l.alt.end());
      out.push_back(std::move(right));
    }
  }
  layers_ = std::move(out);
}

bool Exerciser::Matches(int64_t off, const uint8_t* buf, int64_t n, int64_t* bad) const {
  if (n == 0) return true;
  if (std::memcmp(&model_[off], buf, n) == 0) return true;
  for (int64_t i = 0; i < n; ++i) {
    int64_t pos = off + i;
    if (buf[i] == model_[pos]) continue;
    bool ok = false;
    for (const Layer& l : layers_) {
      if (pos >= l.off && pos < l.end && l.At(pos) == buf[i]) {
        ok = true;
        break;
      }
    }
    if (!ok) {
      *bad = pos;
      return false;
    }
  }
  return true;
}

OpRecord& Exerciser::Begin(Kind kind, int64_t off, int64_t len, int8_t mode) {
  OpRecord& r = ring_.empty() ? scratch_ : ring_[logged_ % ring_.size()];
  ++logged_;
  r = OpRecord{op_, kind, mode, 0, off, len, len_, 0};
  cur_ = &r;
  ++count_[static_cast<int>(kind)];
  return r;
}

void Exerciser::Failed(const char* call, int err) {
  if (cur_ != nullptr) cur_->err = err;
  if (!o_.tolerate.count(err)) {
    Fail(std::string(call) + " failed: " + ErrnoName(err));
  }
  const char* name = strerrorname_np(err);
  ++tolerated_[std::string(kKindNames[static_cast<int>(cur_->kind)]) + " " +
               (name != nullptr ? name : std::to_string(err))];
}

std::string Exerciser::Describe(const OpRecord& r) const {
  char line[256];
  const char* kind = kKindNames[static_cast<int>(r.kind)];
  int m = std::snprintf(line, sizeof(line), "op %" PRIu64 " %s", r.n, kind);
  auto add = [&](const char* fmt, auto... args) {
    if (m < static_cast<int>(sizeof(line))) {
      m += std::snprintf(line + m, sizeof(line) - m, fmt, args...);
    }
  };
  switch (r.kind) {
    case Kind::kWrite:
    case Kind::kRead:
    case Kind::kMmapRead:
    case Kind::kMmapWrite:
      add(" 0x%" PRIx64 "..0x%" PRIx64 " (%" PRId64 " bytes at %" PRId64 ")", r.off, r.off + r.len,
          r.len, r.off);
      break;
    case Kind::kTruncate:
      add(" %" PRId64 " -> %" PRId64, r.size_before, r.len);
      break;
    case Kind::kFallocate:
      add(" %s 0x%" PRIx64 "..0x%" PRIx64 " (%" PRId64 " bytes)",
          r.mode >= 0 ? kFallocModes[r.mode].name : "?", r.off, r.off + r.len, r.len);
      break;
    case Kind::kCorrupt:
      add(" flipped byte at 0x%" PRIx64, r.off);
      break;
    default:
      break;
  }
  add(" [size %" PRId64 "]", r.size_before);
  if (r.err != 0) {
    const char* name = strerrorname_np(r.err);
    add(" FAILED %s", name != nullptr ? name : "?");
  }
  if (r.kind == Kind::kStat && r.result >= 0) add(" resync: size %" PRId64, r.result);
  return line;
}

// Which op wrote the bytes at `pos` (expected), or whose data the actual bytes look like.
std::string Exerciser::Provenance(int64_t pos, const uint8_t* actual, int64_t avail,
                                  bool expected) const {
  if (expected) {
    for (auto it = history_.rbegin(); it != history_.rend(); ++it) {
      const OpRecord& r = *it;
      if (r.err != 0) continue;
      int64_t a = r.off, b = r.off + r.len;
      bool zeroes = false;
      if (r.kind == Kind::kTruncate) {
        a = r.len, b = r.size_before, zeroes = true;
      } else if (r.kind == Kind::kFallocate) {
        if (!kFallocModes[r.mode].zeroes) continue;
        zeroes = true;
      } else if (r.kind == Kind::kStat) {  // a resync that shrank the file
        a = r.result, b = r.size_before, zeroes = true;
      }
      if (pos >= a && pos < b) {
        return (zeroes ? "zeroed by " : "written by ") + Describe(r);
      }
    }
    return history_trimmed_ ? "not in the kept history" : "never written: a hole (zeros)";
  }
  int64_t k = std::min<int64_t>(avail, 8);
  if (std::all_of(actual, actual + k, [](uint8_t b) { return b == 0; })) {
    return "zeros (a hole, truncate, punch or unwritten data?)";
  }
  for (auto it = history_.rbegin(); it != history_.rend(); ++it) {
    const OpRecord& r = *it;
    if (r.kind != Kind::kWrite && r.kind != Kind::kMmapWrite) continue;
    if (pos < r.off || pos >= r.off + r.len) continue;
    uint64_t key = OpKey(seed_, r.n);
    bool same = true;
    for (int64_t i = 0; i < k && pos + i < r.off + r.len; ++i) {
      if (PatternByte(key, pos + i) != actual[i]) same = false;
    }
    if (same) return "data of " + Describe(r) + (r.n == op_ ? "" : " (stale?)");
  }
  return "not the data of any write in the history at this offset";
}

void HexWindow(std::string* out, int64_t start, const uint8_t* bytes, int64_t n,
               const uint8_t* other) {
  char tmp[32];
  std::snprintf(tmp, sizeof(tmp), "    0x%08" PRIx64 ":", start);
  *out += tmp;
  for (int64_t i = 0; i < n; ++i) {
    std::snprintf(tmp, sizeof(tmp), " %02x", bytes[i]);
    *out += tmp;
  }
  *out += "\n               ";
  for (int64_t i = 0; i < n; ++i) *out += bytes[i] != other[i] ? " ^^" : "   ";
  *out += "\n";
}

void Exerciser::Mismatch(int64_t off, const uint8_t* buf, int64_t n, int64_t bad) {
  int64_t first = bad, last = bad, count = 0;
  for (int64_t pos = bad; pos < off + n; ++pos) {
    int64_t b = 0;
    if (buf[pos - off] != model_[pos] && !Matches(pos, buf + (pos - off), 1, &b)) {
      last = pos;
      ++count;
    }
  }
  int64_t w0 = std::max(off, bad & ~int64_t{15});
  int64_t wn = std::min<int64_t>(32, off + n - w0);
  char head[256];
  std::snprintf(head, sizeof(head),
                "  first differing offset 0x%" PRIx64 " (%" PRId64 "); %" PRId64
                " bytes differ in 0x%" PRIx64 "..0x%" PRIx64 "\n",
                first, first, count, first, last + 1);
  std::string d = head;
  d += "  expected (" + Provenance(bad, nullptr, 0, true) + "):\n";
  HexWindow(&d, w0, &model_[w0], wn, buf + (w0 - off));
  d += "  actual (" + Provenance(bad, buf + (bad - off), off + n - bad, false) + "):\n";
  HexWindow(&d, w0, buf + (w0 - off), wn, &model_[w0]);
  for (const Layer& l : layers_) {
    if (bad >= l.off && bad < l.end) {
      std::snprintf(head, sizeof(head),
                    "  (0x%" PRIx64 " is in an unknown range of failed op %" PRIu64
                    "; its value there would be %02x)\n",
                    bad, l.op, l.At(bad));
      d += head;
    }
  }
  Fail("data mismatch", d);
}

void Exerciser::Fail(const std::string& what, const std::string& details) {
  std::fflush(stdout);
  std::string out = "cairn-fsx: FAILED: " + what + "\n";
  out += "  seed " + std::to_string(o_.seed) + ", op " + std::to_string(op_) + ", file " + o_.path +
         ", model size " + std::to_string(len_) + "\n";
  if (cur_ != nullptr) out += "  during " + Describe(*cur_) + "\n";
  out += details;
  if (!layers_.empty()) {
    out += "  unknown ranges after tolerated failures: " + std::to_string(layers_.size()) + "\n";
  }
  uint64_t n = std::min<uint64_t>(logged_, ring_.size());
  out += "  last " + std::to_string(n) + " ops (oldest first):\n";
  for (uint64_t i = logged_ - n; i < logged_; ++i) {
    out += "    " + Describe(ring_[i % ring_.size()]) + "\n";
  }
  out += "  replay: " + o_.command_line;
  if (!o_.seed_given) out += " --seed " + std::to_string(o_.seed);
  out += "\n";
  std::fputs(out.c_str(), stderr);
  std::exit(kExitFail);
}

void Exerciser::DoWrite() {
  int64_t off = RandOffset();
  int64_t n = std::min(RandIoSize(o_.max_io), o_.max_size - off);
  OpRecord& r = Begin(Kind::kWrite, off, n);
  uint8_t* data = buf_.data();
  FillPattern(OpKey(seed_, op_), off, n, data);
  int64_t done = 0;
  while (done < n) {
    ssize_t w = pwrite(fd_, data + done, n - done, off + done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      int err = w < 0 ? errno : EIO;
      if (done > 0) ApplyData(off, data, done);
      Failed(w < 0 ? "pwrite" : "pwrite (returned 0)", err);
      AddLayer(off + done, off + n, data + done);
      Pending(len_, std::max(len_, off + n));
      Mutated(r);
      return;
    }
    if (w < n - done) ++short_writes_;
    done += w;
  }
  r.result = n;
  bytes_written_ += n;
  ApplyData(off, data, n);
  Mutated(r);
}

void Exerciser::DoRead(int64_t force_at) {
  int64_t off, n;
  if (force_at >= 0) {  // a read that covers force_at
    n = RandIoSize(o_.max_io);
    off = std::max<int64_t>(0, force_at - RandRange(0, n - 1));
    n = std::max(n, force_at - off + 1);
  } else {
    off = rng_() % 8 < 7 ? RandRange(0, std::max<int64_t>(len_ - 1, 0))
                         : std::max<int64_t>(0, len_ + RandRange(-o_.max_io / 2, o_.max_io));
    n = RandIoSize(o_.max_io);
  }
  OpRecord& r = Begin(Kind::kRead, off, n);
  ssize_t got;
  do {
    got = pread(fd_, buf_.data(), n, off);
  } while (got < 0 && errno == EINTR);
  if (got < 0) return Failed("pread", errno);
  r.result = got;
  bytes_read_ += got;
  int64_t want = std::clamp<int64_t>(len_ - off, 0, n);
  if (got != want) {
    Fail("read length mismatch: pread returned " + std::to_string(got) + ", expected " +
         std::to_string(want) + " (file length " + std::to_string(len_) + ")");
  }
  int64_t bad = 0;
  if (!Matches(off, buf_.data(), got, &bad)) Mismatch(off, buf_.data(), got, bad);
}

void Exerciser::DoTruncate() {
  int64_t n;
  switch (rng_() % 4) {
    case 0:
      n = len_ - RandIoSize(o_.max_io);
      break;
    case 1:
      n = len_ + RandIoSize(o_.max_io);
      break;
    default:
      n = RandRange(0, o_.max_size);
      break;
  }
  n = std::clamp<int64_t>(n, 0, o_.max_size);
  OpRecord& r = Begin(Kind::kTruncate, 0, n);
  if (ftruncate(fd_, n) != 0) {
    Failed("ftruncate", errno);
    AddLayer(n, len_, nullptr);  // bytes cut off may read as zero later
    Pending(len_, n);
  } else {
    SetLength(n);
  }
  Mutated(r);
}

void Exerciser::DoFallocate() {
  int enabled[kNumFallocModes], k = 0;
  for (int i = 0; i < kNumFallocModes; ++i) {
    if (falloc_enabled_[i]) enabled[k++] = i;
  }
  int mode = enabled[rng_() % k];
  const FallocMode& fm = kFallocModes[mode];
  int64_t off = RandOffset();
  int64_t n = std::min(RandIoSize(o_.max_io), o_.max_size - off);
  OpRecord& r = Begin(Kind::kFallocate, off, n, static_cast<int8_t>(mode));
  ++falloc_count_[mode];
  int64_t end = off + n;
  if (fallocate(fd_, fm.flags, off, n) != 0) {
    int err = errno;
    if ((err == EOPNOTSUPP || err == ENOSYS) && !o_.tolerate.count(err)) {
      falloc_enabled_[mode] = false;
      r.err = err;
      std::string note = std::string("fallocate ") + fm.name + ": " + ErrnoName(err) +
                         "; mode disabled for this run";
      Say("cairn-fsx: %s\n", note.c_str());
      disabled_notes_.push_back(note);
      return;
    }
    Failed("fallocate", err);
    if (fm.zeroes) AddLayer(off, std::min(end, len_), nullptr);
    if (!fm.keeps_size) Pending(len_, std::max(len_, end));
  } else {
    if (fm.zeroes) ApplyZero(off, std::min(end, len_));
    if (!fm.keeps_size) len_ = std::max(len_, end);
  }
  Mutated(r);
}

void Exerciser::DoMmap(bool write) {
  int64_t off = RandRange(0, len_ - 1);
  int64_t n = RandIoSize(std::min(o_.max_io, len_ - off));
  OpRecord& r = Begin(write ? Kind::kMmapWrite : Kind::kMmapRead, off, n);
  static const int64_t kPage = sysconf(_SC_PAGESIZE);
  int64_t map_off = off & ~(kPage - 1);
  size_t map_len = static_cast<size_t>(off + n - map_off);
  void* p =
      mmap(nullptr, map_len, write ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED, fd_, map_off);
  if (p == MAP_FAILED) return Failed("mmap", errno);
  uint8_t* at = static_cast<uint8_t*>(p) + (off - map_off);
  uint8_t* data = buf_.data();
  if (write) {
    FillPattern(OpKey(seed_, op_), off, n, data);
    const char* failed_call = nullptr;
    int err = 0;
    if (!GuardedCopy(at, data, n)) {
      failed_call = "store to the mapping (SIGBUS, counted as EIO)", err = EIO;
    } else if (msync(p, map_len, MS_SYNC) != 0) {
      failed_call = "msync", err = errno;
    }
    munmap(p, map_len);
    if (failed_call != nullptr) {
      Failed(failed_call, err);
      AddLayer(off, off + n, data);
    } else {
      r.result = n;
      bytes_written_ += n;
      ApplyData(off, data, n);
    }
    Mutated(r);
    return;
  }
  bool ok = GuardedCopy(data, at, n);
  munmap(p, map_len);
  if (!ok) return Failed("load from the mapping (SIGBUS, counted as EIO)", EIO);
  r.result = n;
  bytes_read_ += n;
  int64_t bad = 0;
  if (!Matches(off, data, n, &bad)) Mismatch(off, data, n, bad);
}

void Exerciser::DoFsync() {
  Begin(Kind::kFsync, 0, 0);
  if (fsync(fd_) != 0) Failed("fsync", errno);
}

bool Exerciser::Reopen(bool close_first) {
  Begin(Kind::kReopen, 0, 0);
  if (close_first && fd_ >= 0) {
    int rc = close(fd_);
    fd_ = -1;
    if (rc != 0) Failed("close", errno);
  }
  fd_ = open(o_.path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd_ < 0) {
    Failed("open", errno);
    return false;
  }
  return true;
}

// Reads the whole file (and one byte at EOF, which must not be there) and
// compares it with the model; false after a tolerated error.
bool Exerciser::Verify() {
  OpRecord& r = Begin(Kind::kVerify, 0, len_);
  for (int64_t off = 0;; off += kVerifyChunk) {
    bool at_eof = off >= len_;
    int64_t n = at_eof ? 1 : std::min(kVerifyChunk, len_ - off);
    if (at_eof) off = len_;
    ssize_t got;
    do {
      got = pread(fd_, buf_.data(), n, off);
    } while (got < 0 && errno == EINTR);
    if (got < 0) {
      Failed("pread (full verification)", errno);
      return false;
    }
    int64_t want = at_eof ? 0 : n;
    if (got != want) {
      Fail("read length mismatch in full verification: pread(" + std::to_string(n) + " at " +
           std::to_string(off) + ") returned " + std::to_string(got) + ", expected " +
           std::to_string(want) + " (file length " + std::to_string(len_) + ")");
    }
    bytes_read_ += got;
    int64_t bad = 0;
    if (!Matches(off, buf_.data(), got, &bad)) Mismatch(off, buf_.data(), got, bad);
    if (at_eof) break;
  }
  r.result = len_;
  return true;
}

void Exerciser::CheckSize() {
  struct stat st;
  if (fstat(fd_, &st) != 0) {
    OpRecord& r = Begin(Kind::kStat, 0, 0);
    r.result = -1;
    return Failed("fstat", errno);
  }
  ++count_[static_cast<int>(Kind::kStat)];
  if (st.st_size != len_) {
    Fail("size mismatch: fstat says " + std::to_string(st.st_size) + ", model says " +
         std::to_string(len_));
  }
}

// After a tolerated failed mutation the length is only known to lie in
// [pending_lo_, pending_hi_]: adopt what fstat says if it does.
bool Exerciser::ResolvePending() {
  OpRecord& r = Begin(Kind::kStat, 0, 0);
  r.result = -1;
  struct stat st;
  if (fstat(fd_, &st) != 0) {
    Failed("fstat (resync)", errno);
    return false;
  }
  if (st.st_size < pending_lo_ || st.st_size > pending_hi_) {
    Fail("size mismatch after a failed op: fstat says " + std::to_string(st.st_size) +
         ", expected between " + std::to_string(pending_lo_) + " and " +
         std::to_string(pending_hi_));
  }
  r.result = st.st_size;
  if (st.st_size < len_) Mutated(r);
  SetLength(st.st_size);
  pending_ = false;
  ++resyncs_;
  return true;
}

// Self-test: flips one byte through a second descriptor, behind the model's back.
void Exerciser::Corrupt() {
  int64_t at = RandRange(0, len_ - 1);
  Begin(Kind::kCorrupt, at, 1);
  int fd = open(o_.path.c_str(), O_RDWR | O_CLOEXEC);
  uint8_t b = 0;
  if (fd < 0 || pread(fd, &b, 1, at) != 1) Fail("self-test: cannot read the byte to corrupt");
  b ^= 0xa5;
  if (pwrite(fd, &b, 1, at) != 1) Fail("self-test: cannot corrupt");
  close(fd);
  Say("cairn-fsx: self-test: flipped the byte at offset %" PRId64 " behind the model's back\n", at);
  corrupt_at_ = 0;
  force_read_at_ = at;
}

Kind Exerciser::PickKind() {
  bool any_falloc = false;
  for (bool e : falloc_enabled_) any_falloc |= e;
  bool maps = o_.mmap && len_ > 0;
  const int weights[] = {30,
                         30,
                         o_.truncate ? 6 : 0,
                         any_falloc ? 8 : 0,
                         maps ? 10 : 0,
                         maps ? 10 : 0,
                         o_.fsync_every == 0 ? 1 : 0};
  int total = 0;
  for (int w : weights) total += w;
  int pick = static_cast<int>(rng_() % total);
  for (int i = 0;; ++i) {
    if (pick < weights[i]) return static_cast<Kind>(i);
    pick -= weights[i];
  }
}

void Exerciser::Progress(bool force) {
  auto now = Clock::now();
  double dt = std::chrono::duration<double>(now - last_progress_).count();
  if (!force && dt < 2.0) return;
  double rate = dt > 0 ? static_cast<double>(op_ - last_progress_op_) / dt : 0;
  uint64_t tolerated = 0;
  for (auto& [k, v] : tolerated_) tolerated += v;
  std::fprintf(stderr,
               "cairn-fsx: op %" PRIu64 "/%" PRId64 " (%.0f%%), %.0f ops/s, size %" PRId64
               ", %" PRIu64 " tolerated failures\n",
               op_, o_.ops, o_.ops ? 100.0 * static_cast<double>(op_) / o_.ops : 100.0, rate, len_,
               tolerated);
  last_progress_ = now;
  last_progress_op_ = op_;
}

void Exerciser::Summary() {
  double secs = std::chrono::duration<double>(Clock::now() - start_).count();
  double rate = secs > 0 ? static_cast<double>(o_.ops) / secs : 0;
  std::printf("cairn-fsx: %" PRId64 " ops OK on %s (seed %" PRId64 "), %.2f s, %.0f ops/s\n",
              o_.ops, o_.path.c_str(), o_.seed, secs, rate);
  if (o_.quiet) return;
  std::string line = "  ops:";
  for (int i = 0; i < kNumKinds; ++i) {
    if (count_[i] == 0) continue;
    line += " " + std::string(kKindNames[i]) + " " + std::to_string(count_[i]);
    if (static_cast<Kind>(i) == Kind::kFallocate) {
      line += " (";
      for (int m = 0; m < kNumFallocModes; ++m) {
        line += std::string(m ? ", " : "") + kFallocModes[m].name + " " +
                std::to_string(falloc_count_[m]);
      }
      line += ")";
    }
    line += ",";
  }
  line.pop_back();
  std::printf("%s\n", line.c_str());
  std::printf("  bytes: %.1f MiB written, %.1f MiB read (incl. verification); final size %" PRId64
              "; %" PRIu64 " short writes\n",
              static_cast<double>(bytes_written_) / (1 << 20),
              static_cast<double>(bytes_read_) / (1 << 20), len_, short_writes_);
  for (const std::string& note : disabled_notes_) std::printf("  %s\n", note.c_str());
  if (!tolerated_.empty()) {
    line = "  tolerated failures:";
    for (auto& [k, v] : tolerated_) line += " " + k + " " + std::to_string(v) + ",";
    line.pop_back();
    std::printf("%s; %" PRIu64 " size resyncs; %zu unknown ranges left\n", line.c_str(), resyncs_,
                layers_.size());
  }
}

int Exerciser::Run() {
  struct sigaction sa = {};
  sa.sa_handler = OnSigbus;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGBUS, &sa, nullptr);

  std::printf("cairn-fsx: seed %" PRId64 ", %" PRId64 " ops on %s (max size %" PRId64
              ", max io %" PRId64 "%s)\n",
              o_.seed, o_.ops, o_.path.c_str(), o_.max_size, o_.max_io, o_.mmap ? ", mmap" : "");
  std::fflush(stdout);
  int flags = O_RDWR | O_CREAT | O_CLOEXEC | (o_.create ? O_TRUNC : 0);
  fd_ = open(o_.path.c_str(), flags, 0644);
  if (fd_ < 0) Fail("open " + o_.path + ": " + ErrnoName(errno));
  if (ftruncate(fd_, 0) != 0) Fail("ftruncate " + o_.path + " to 0: " + ErrnoName(errno));
  if (o_.self_test_corrupt) corrupt_at_ = std::max<int64_t>(1, o_.ops / 2);
  start_ = last_progress_ = Clock::now();

  for (op_ = 1; op_ <= static_cast<uint64_t>(o_.ops); ++op_) {
    if (fd_ < 0 && !Reopen(false)) continue;
    if (pending_ && !ResolvePending()) continue;
    if (corrupt_at_ != 0 && op_ >= static_cast<uint64_t>(corrupt_at_) && len_ > 0) Corrupt();
    int64_t force = force_read_at_;
    force_read_at_ = -1;
    switch (force >= 0 ? Kind::kRead : PickKind()) {
      case Kind::kWrite:
        DoWrite();
        break;
      case Kind::kRead:
        DoRead(force);
        break;
      case Kind::kTruncate:
        DoTruncate();
        break;
      case Kind::kFallocate:
        DoFallocate();
        break;
      case Kind::kMmapRead:
        DoMmap(false);
        break;
      case Kind::kMmapWrite:
        DoMmap(true);
        break;
      default:
        DoFsync();
        break;
    }
    if (pending_) {
      ResolvePending();
    } else {
      CheckSize();
    }
    if (o_.fsync_every > 0 && op_ % o_.fsync_every == 0) DoFsync();
    if (o_.reopen_every > 0 && op_ % o_.reopen_every == 0) Reopen(true);
    if (o_.verify_every > 0 && op_ % o_.verify_every == 0 && fd_ >= 0 && !pending_) Verify();
    if (o_.progress && (op_ & 255) == 0) Progress(false);
  }
  op_ = o_.ops;  // the final steps are logged under the last op
  if (o_.progress) Progress(true);

  // Final verification; after tolerated failures, give the file system some time.
  bool done = false;
  for (int attempt = 0; attempt < 10 && !done; ++attempt) {
    if (attempt > 0) std::this_thread::sleep_for(std::chrono::seconds(1));
    done = (fd_ >= 0 || Reopen(false)) && (!pending_ || ResolvePending()) && Verify();
  }
  if (!done) Fail("could not do the final verification (tolerated errors persist)");
  CheckSize();
  if (close(fd_) != 0) {
    int err = errno;
    if (!o_.tolerate.count(err)) Fail("close failed: " + ErrnoName(err));
  }
  Summary();
  return kExitOk;
}

}  // namespace
}  // namespace cairn::fsx

int main(int argc, char** argv) {
  cairn::fsx::Options opt;
  if (int rc = cairn::fsx::ParseOptions(argc, argv, &opt); rc >= 0) return rc;
  if (!opt.seed_given) {
    auto now = std::chrono::system_clock::now().time_since_epoch().count();
    opt.seed = static_cast<int64_t>(
        cairn::fsx::Mix(static_cast<uint64_t>(now) ^ static_cast<uint64_t>(getpid())) >> 1);
  }
  return cairn::fsx::Exerciser(std::move(opt)).Run();
}
