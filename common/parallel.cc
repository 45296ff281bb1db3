#include "common/parallel.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>

namespace cairn {
namespace {

constexpr auto kIdleExit = std::chrono::seconds(30);

struct Batch {
  const std::function<void(size_t)>* fn;
  size_t n;
  std::atomic<size_t> next{0};
  std::mutex mu;
  std::condition_variable cv;
  size_t done = 0;  // GUARDED_BY(mu)

  // Runs items until none is left to claim.
  void Help() {
    for (;;) {
      const size_t i = next.fetch_add(1);
      if (i >= n) return;
      (*fn)(i);
      std::lock_guard l(mu);
      if (++done == n) cv.notify_all();
    }
  }
};

class Pool {
 public:
  // Offers `helpers` tickets for the batch to the pool.
  void Offer(const std::shared_ptr<Batch>& b, size_t helpers) {
    std::lock_guard l(mu_);
    for (size_t i = 0; i < helpers; ++i) tickets_.push_back(b);
    while (idle_ < tickets_.size() && threads_ < kMaxParallelHelpers) {
      ++threads_;
      ++idle_;
      std::thread([this] { Loop(); }).detach();
    }
    cv_.notify_all();
  }

  // Takes back the tickets no helper has taken (every item is claimed):
  // stale tickets would make the pool grow for work that is not there.
  void Withdraw(const Batch* b) {
    std::lock_guard l(mu_);
    std::erase_if(tickets_, [&](const std::shared_ptr<Batch>& t) { return t.get() == b; });
  }

  size_t threads() {
    std::lock_guard l(mu_);
    return threads_;
  }

 private:
  void Loop() {
    std::unique_lock l(mu_);
    for (;;) {
      if (!cv_.wait_for(l, kIdleExit, [this] { return !tickets_.empty(); })) {
        --idle_;
        --threads_;
        return;
      }
      std::shared_ptr<Batch> b = std::move(tickets_.front());
      tickets_.pop_front();
      --idle_;
      l.unlock();
      b->Help();
      b.reset();
      l.lock();
      ++idle_;
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Batch>> tickets_;
  size_t threads_ = 0;
  size_t idle_ = 0;
};

// Never destroyed: detached helpers may still wait on it at exit.
Pool& ThePool() {
  static Pool* pool = new Pool;
  return *pool;
}

}  // namespace

void RunParallel(size_t n, const std::function<void(size_t)>& fn) {
  if (n == 0) return;
  if (n == 1) {
    fn(0);
    return;
  }
  auto b = std::make_shared<Batch>();
  b->fn = &fn;
  b->n = n;
  ThePool().Offer(b, n - 1);
  b->Help();
  ThePool().Withdraw(b.get());
  std::unique_lock l(b->mu);
  b->cv.wait(l, [&] { return b->done == b->n; });
}

std::vector<Status> RunParallelStatus(size_t n, const std::function<Status(size_t)>& fn) {
  std::vector<Status> out(n);
  RunParallel(n, [&](size_t i) { out[i] = fn(i); });
  return out;
}

size_t ParallelHelpers() { return ThePool().threads(); }

}  // namespace cairn
