// WorkerPool: bounded threads, queued (not refused) work, a full queue refuses.
#include "brickd/worker_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>

namespace cairn::brickd {
namespace {

TEST(WorkerPoolTest, TasksBeyondThreadCountWaitAndAllRun) {
  std::atomic<int> running{0}, peak{0}, done{0};
  {
    WorkerPool pool(2, 1000);
    for (int i = 0; i < 50; ++i) {
      ASSERT_TRUE(pool.Submit([&] {
        int now = ++running;
        int p = peak.load();
        while (now > p && !peak.compare_exchange_weak(p, now)) {
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
        --running;
        ++done;
      }));
    }
  }  // the destructor drains the queue
  EXPECT_EQ(done.load(), 50);
  EXPECT_LE(peak.load(), 2);
}

TEST(WorkerPoolTest, FullQueueRefusesInsteadOfGrowing) {
  // Declared before the pool: the pool joins its worker before these go away.
  std::promise<void> release;
  std::shared_future<void> gate = release.get_future().share();
  std::promise<void> started;
  WorkerPool pool(1, 2);
  ASSERT_TRUE(pool.Submit([&] {
    started.set_value();
    gate.wait();
  }));
  started.get_future().wait();  // the only worker is busy now
  EXPECT_TRUE(pool.Submit([] {}));
  EXPECT_TRUE(pool.Submit([] {}));
  EXPECT_FALSE(pool.Submit([] {}));
  release.set_value();
}

}  // namespace
}  // namespace cairn::brickd
