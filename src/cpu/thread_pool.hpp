// A fork-join pool of persistent std::threads.
//
// Why not OpenMP: the library must be reentrant (two user threads may call gemm at once) and must
// not impose an OpenMP runtime on users who link their own; a 100-line pool with static
// assignment gives deterministic work placement and a cost we can see.
#pragma once

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

namespace w4a16::cpu {

class ThreadPool {
 public:
  // The shared pool, sized to available_cpus() - 1 workers (the caller is the other thread).
  static ThreadPool& instance();

  // Runs fn(i) for i in [0, parts) on min(parts, threads) threads and waits. The calling thread
  // is part 0's runner. If another call is using the pool, this one runs every part on the
  // calling thread (same results: parts, not threads, define the work).
  // `fn` is any callable taking the part index; it is passed by reference (no std::function, so
  // no allocation on the hot path). It must not throw.
  template <typename F>
  void run(int parts, int threads, F& fn) {
    run_erased(
        parts, threads, [](void* ctx, int part) { (*static_cast<F*>(ctx))(part); }, &fn);
  }

  int max_threads() const { return int(workers_.size()) + 1; }
  ~ThreadPool();

 private:
  explicit ThreadPool(int workers);
  void worker_loop(int index);
  void run_erased(int parts, int threads, void (*call)(void*, int), void* ctx);

  std::vector<std::thread> workers_;
  std::mutex busy_;  // held by the call that owns the pool
  // A job is published by writing the fields below and then bumping generation_ (release);
  // workers spin on generation_ for a while after each job (waking a sleeping thread costs tens
  // of microseconds, as much as a whole decode GEMV of a small layer) and then sleep on wake_.
  std::mutex mutex_;
  std::condition_variable wake_;
  void (*call_)(void*, int) = nullptr;
  void* ctx_ = nullptr;
  int parts_ = 0, threads_ = 0;
  std::atomic<int> pending_{0};
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> sleepers_{0};
  std::atomic<bool> stop_{false};
};

// CPUs this process may run on: the affinity mask, further capped by a cgroup v2/v1 CPU quota.
int available_cpus();

}  // namespace w4a16::cpu
