// Fork-join thread pool and CPU-count detection.
#include "cpu/thread_pool.hpp"

#include <sched.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <string>

namespace w4a16::cpu {

namespace {

// cgroup v2 "cpu.max" ("max 100000" or "200000 100000"), or v1 cfs quota/period.
double cgroup_cpu_limit() {
  std::ifstream v2("/sys/fs/cgroup/cpu.max");
  std::string quota;
  double period = 0;
  if (v2 >> quota >> period && quota != "max" && period > 0) return std::stod(quota) / period;
  std::ifstream q1("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"), p1("/sys/fs/cgroup/cpu/cpu.cfs_period_us");
  double q = 0, p = 0;
  if (q1 >> q && p1 >> p && q > 0 && p > 0) return q / p;
  return 0;
}

}  // namespace

int available_cpus() {
  int count = int(std::thread::hardware_concurrency());
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) count = CPU_COUNT(&set);
  const double limit = cgroup_cpu_limit();
  if (limit > 0) count = std::min(count, std::max(1, int(std::ceil(limit))));
  return std::max(1, count);
}

ThreadPool& ThreadPool::instance() {
  static ThreadPool pool(available_cpus() - 1);
  return pool;
}

ThreadPool::ThreadPool(int workers) {
  for (int i = 0; i < workers; ++i) workers_.emplace_back([this, i] { worker_loop(i + 1); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::worker_loop(int index) {
  uint64_t seen = 0;
  for (;;) {
    std::unique_lock lock(mutex_);
    wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
    if (stop_) return;
    seen = generation_;
    if (index >= threads_) continue;
    const auto call = call_;
    void* const ctx = ctx_;
    const int parts = parts_, threads = threads_;
    lock.unlock();
    for (int p = index; p < parts; p += threads) call(ctx, p);
    lock.lock();
    if (--pending_ == 0) done_.notify_one();
  }
}

void ThreadPool::run_erased(int parts, int threads, void (*call)(void*, int), void* ctx) {
  threads = std::clamp(threads, 1, std::min(parts, max_threads()));
  std::unique_lock busy(busy_, std::try_to_lock);
  if (threads == 1 || !busy.owns_lock()) {
    for (int p = 0; p < parts; ++p) call(ctx, p);
    return;
  }
  {
    std::lock_guard lock(mutex_);
    call_ = call;
    ctx_ = ctx;
    parts_ = parts;
    threads_ = threads;
    pending_ = threads - 1;
    ++generation_;
  }
  wake_.notify_all();
  for (int p = 0; p < parts; p += threads) call(ctx, p);
  std::unique_lock lock(mutex_);
  done_.wait(lock, [&] { return pending_ == 0; });
  call_ = nullptr;
}

}  // namespace w4a16::cpu
