#include "common/parallel.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace cairn {
namespace {

// Every item waits until all n have started: passes only if they run at once.
TEST(ParallelTest, ItemsRunAtOnce) {
  constexpr size_t kN = 8;
  std::mutex mu;
  std::condition_variable cv;
  size_t started = 0;
  auto out = RunParallelStatus(kN, [&](size_t i) -> Status {
    std::unique_lock l(mu);
    ++started;
    cv.notify_all();
    if (!cv.wait_for(l, std::chrono::seconds(10), [&] { return started == kN; })) {
      return Status::DeadlineExceeded("item " + std::to_string(i) + " ran alone");
    }
    return i % 2 == 0 ? Status::Ok() : Status::NotFound(std::to_string(i));
  });
  ASSERT_EQ(out.size(), kN);
  for (size_t i = 0; i < kN; ++i) {
    if (i % 2 == 0) {
      EXPECT_TRUE(out[i].ok()) << out[i].ToString();
    } else {
      EXPECT_EQ(out[i].code(), StatusCode::kNotFound) << out[i].ToString();
      EXPECT_EQ(out[i].message(), std::to_string(i));
    }
  }
}

TEST(ParallelTest, EachItemRunsOnceAndNestedFanOutsFinish) {
  std::atomic<int> runs[16] = {};
  std::atomic<int> inner{0};
  RunParallel(16, [&](size_t i) {
    runs[i].fetch_add(1);
    // Every item fans out again: the pool is busy, so the callers help.
    RunParallel(4, [&](size_t) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      inner.fetch_add(1);
    });
  });
  for (auto& r : runs) EXPECT_EQ(r.load(), 1);
  EXPECT_EQ(inner.load(), 16 * 4);
  RunParallel(0, [&](size_t) { ADD_FAILURE() << "no item to run"; });
}

TEST(ParallelTest, HelpersAreReusedNotSpawnedPerCall) {
  RunParallel(3, [](size_t) { std::this_thread::sleep_for(std::chrono::milliseconds(5)); });
  const size_t before = ParallelHelpers();
  for (int k = 0; k < 200; ++k) {
    RunParallel(3, [](size_t) {});
  }
  EXPECT_LE(ParallelHelpers(), std::max<size_t>(before, 2) + 2);
  EXPECT_LE(ParallelHelpers(), kMaxParallelHelpers);
}

}  // namespace
}  // namespace cairn
