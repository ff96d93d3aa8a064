// Fork-join thread pool and CPU-count detection.
#include "cpu/thread_pool.hpp"

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <string>
#include <string_view>

#include "w4a16/w4a16.hpp"

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

namespace {
std::atomic<ThreadPool*> g_pool{nullptr};
std::atomic<uint64_t> g_fork_epoch{0};  // forks this process image descends from
std::mutex g_create;                    // serializes making a pool (held across fork by the handlers)
std::once_flag g_handlers;
}  // namespace

ThreadPool& ThreadPool::instance() {
  ThreadPool* pool = g_pool.load(std::memory_order_acquire);
  if (pool != nullptr && pool->fork_epoch_ == g_fork_epoch.load(std::memory_order_relaxed)) return *pool;
  std::call_once(g_handlers, [] { ::pthread_atfork(before_fork, after_fork_in_parent, after_fork_in_child); });
  std::lock_guard lock(g_create);
  pool = g_pool.load(std::memory_order_acquire);
  if (pool == nullptr || pool->fork_epoch_ != g_fork_epoch.load(std::memory_order_relaxed)) {
    pool = new ThreadPool(available_cpus() - 1, pool);
    g_pool.store(pool, std::memory_order_release);
  }
  return *pool;
}

ThreadPool::ThreadPool(int workers, ThreadPool* abandoned)
    : abandoned_(abandoned), fork_epoch_(g_fork_epoch.load(std::memory_order_relaxed)) {
  for (int i = 0; i < workers; ++i) workers_.emplace_back([this, i] { worker_loop(i + 1); });
}

void ThreadPool::before_fork() {
  g_create.lock();
  if (ThreadPool* pool = g_pool.load(std::memory_order_acquire)) pool->busy_.lock();
}

void ThreadPool::after_fork_in_parent() {
  if (ThreadPool* pool = g_pool.load(std::memory_order_acquire)) pool->busy_.unlock();
  g_create.unlock();
}

void ThreadPool::after_fork_in_child() {
  // The child is single-threaded here. The old pool stays locked and abandoned; the next
  // instance() sees the new epoch and builds a pool whose workers exist in this process.
  g_fork_epoch.fetch_add(1, std::memory_order_relaxed);
  g_create.unlock();
}

namespace {
inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// $W4A16_WAIT_POLICY as microseconds of spinning; the default when unset or not understood.
int spin_us_from_environment() {
  const char* value = std::getenv("W4A16_WAIT_POLICY");
  if (value == nullptr || *value == '\0') return ThreadPool::kDefaultSpinUs;
  const std::string_view text(value);
  if (text == "active" || text == "ACTIVE") return ThreadPool::kDefaultSpinUs;
  if (text == "passive" || text == "PASSIVE") return 0;
  int us = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), us);
  if (error != std::errc() || end != text.data() + text.size() || us < 0 || us > ThreadPool::kMaxSpinUs) {
    return ThreadPool::kDefaultSpinUs;
  }
  return us;
}

std::atomic<int>& spin_setting() {
  static std::atomic<int> us{spin_us_from_environment()};
  return us;
}
}  // namespace

int ThreadPool::spin_us() { return spin_setting().load(std::memory_order_relaxed); }
void ThreadPool::set_spin_us(int us) { spin_setting().store(std::clamp(us, 0, kMaxSpinUs), std::memory_order_relaxed); }

void ThreadPool::worker_loop(int index) {
  uint64_t seen = 0;
  for (;;) {
    // Spin a little for the next job (spin_us()), then sleep.
    const int spin = spin_us();
    const auto spin_until = std::chrono::steady_clock::now() + std::chrono::microseconds(spin);
    int polls = 0;
    while (generation_.load(std::memory_order_acquire) == seen) {
      cpu_relax();
      if ((spin == 0 || ++polls % 256 == 0) && std::chrono::steady_clock::now() > spin_until) {
        std::unique_lock lock(mutex_);
        sleepers_.fetch_add(1);
        wake_.wait(lock, [&] { return generation_.load() != seen; });
        sleepers_.fetch_sub(1);
        break;
      }
    }
    seen = generation_.load(std::memory_order_acquire);
    // Every worker acknowledges every job (after running its parts, if it has any), so the job's
    // fields are not rewritten while any worker may still read them.
    const int threads = threads_;
    for (int p = index; index < threads && p < parts_; p += threads) call_(ctx_, p);
    pending_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

namespace {
// Whether this thread owns a pool call (holds busy_): a call from inside one of its part-0 parts
// must not try_lock a mutex its own thread holds (undefined for std::mutex), so it is treated as
// "busy" without asking the mutex.
thread_local bool t_owns_call = false;

// busy_ taken for the calling thread, or not owned when another call (or this thread's) has it.
std::unique_lock<std::mutex> try_own(std::mutex& busy) {
  if (t_owns_call) return {};
  return std::unique_lock(busy, std::try_to_lock);
}

struct OwnedCall {
  OwnedCall() { t_owns_call = true; }
  ~OwnedCall() { t_owns_call = false; }
};
}  // namespace

void ThreadPool::run_erased(int parts, int threads, void (*call)(void*, int), void* ctx) {
  threads = std::clamp(threads, 1, std::min(parts, max_threads()));
  std::unique_lock busy = threads == 1 ? std::unique_lock<std::mutex>() : try_own(busy_);
  if (!busy.owns_lock()) {
    for (int p = 0; p < parts; ++p) call(ctx, p);
    return;
  }
  const OwnedCall owned;
  dispatch(parts, threads, call, ctx);
}

bool ThreadPool::run_concurrent_erased(int parts, void (*call)(void*, int), void* ctx) {
  if (parts < 1 || parts > max_threads()) return false;
  std::unique_lock busy = try_own(busy_);
  if (!busy.owns_lock()) return false;
  const OwnedCall owned;
  // threads == parts: worker i takes part i alone (worker_loop's stride is `threads`), the caller
  // part 0, and every worker takes each job (it spins or is woken), so all parts run at once.
  if (parts == 1) {
    call(ctx, 0);
  } else {
    dispatch(parts, parts, call, ctx);
  }
  return true;
}

void ThreadPool::dispatch(int parts, int threads, void (*call)(void*, int), void* ctx) {
  call_ = call;
  ctx_ = ctx;
  parts_ = parts;
  threads_ = threads;
  pending_.store(int(workers_.size()), std::memory_order_relaxed);
  generation_.fetch_add(1);  // seq_cst: ordered before the sleepers_ check below
  if (sleepers_.load() > 0) {
    { std::lock_guard lock(mutex_); }
    wake_.notify_all();
  }
  for (int p = 0; p < parts; p += threads) call(ctx, p);
  while (pending_.load(std::memory_order_acquire) != 0) cpu_relax();
}

}  // namespace w4a16::cpu

namespace w4a16 {
void set_worker_spin_us(int microseconds) { cpu::ThreadPool::set_spin_us(microseconds); }
int worker_spin_us() { return cpu::ThreadPool::spin_us(); }
}  // namespace w4a16
