// WorkerPool: a fixed set of threads running queued tasks in order.
//
//   WorkerPool pool(16);
//   if (!pool.Submit([&] { DoWork(); })) Refuse();   // queue full
//
// brickd runs every RPC's file system work here: the gRPC callback threads
// never block on disk, and calls beyond the pool's size wait in the queue
// instead of being refused. Thread safety: Submit may be called from any thread.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace cairn::brickd {

class WorkerPool {
 public:
  // Starts `threads` workers; at most `max_queued` tasks wait beyond them.
  WorkerPool(int threads, size_t max_queued);
  // Runs every queued task, then joins the workers.
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Queues `task`. Returns false iff the queue is full (the task is dropped).
  bool Submit(std::function<void()> task);

 private:
  void Loop();

  const size_t max_queued_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;  // GUARDED_BY(mu_)
  bool stopping_ = false;                    // GUARDED_BY(mu_)
  std::vector<std::thread> threads_;
};

}  // namespace cairn::brickd
