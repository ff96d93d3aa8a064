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

// fork(): a child process has only the thread that called fork(), so the pool's workers do not
// exist there. pthread_atfork handlers make the child abandon the parent's pool (its memory is
// kept reachable, never destroyed: destroying it would join threads that are not there) and
// instance() builds a fresh one on the child's first parallel call. The prepare handler takes
// the pool's `busy_` lock, so a fork waits for a parallel call in flight to finish and the child
// never inherits a half-run job. The pool is never destroyed in any process either: workers
// sleep until exit, and exit() joins nothing.
class ThreadPool {
 public:
  // The shared pool of this process, sized to available_cpus() - 1 workers (the caller is the
  // other thread); rebuilt after fork() on first use in the child.
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

  // Runs fn(i) for every i in [0, parts) each on its own thread, all at the same time (part 0 on
  // the calling thread, part i on worker i), and waits: for parts that wait on one another (the
  // pipelined strategy's spinning roles), which run() cannot serve since it may run its parts one
  // after another. Returns false, having run nothing, when that cannot be guaranteed: another
  // call owns the pool (run() would fall back to the calling thread there; this includes a call
  // from inside a part of another call) or parts > max_threads(). Simultaneous means each part
  // has a thread, not a CPU: on a loaded machine the parts' waits must yield. `fn` must not throw.
  template <typename F>
  bool run_concurrent(int parts, F& fn) {
    return run_concurrent_erased(
        parts, [](void* ctx, int part) { (*static_cast<F*>(ctx))(part); }, &fn);
  }

  int max_threads() const { return int(workers_.size()) + 1; }

  // How long a worker spins for the next job after each one before it sleeps, in microseconds:
  // a job that comes within that time starts at once (~1 us), one that comes later wakes the
  // workers (tens of us). 0 = passive: workers sleep at once and leave the cores to the caller.
  // Default: $W4A16_WAIT_POLICY ("active" = kDefaultSpinUs, "passive" = 0, or a number of
  // microseconds in [0, kMaxSpinUs]) read at the first use, else kDefaultSpinUs. Any thread may
  // change it at any time; a sleeping worker keeps sleeping until the next job.
  static constexpr int kDefaultSpinUs = 300;
  static constexpr int kMaxSpinUs = 100000;
  static int spin_us();
  static void set_spin_us(int us);  // clamped to [0, kMaxSpinUs]

 private:
  explicit ThreadPool(int workers, ThreadPool* abandoned);
  ~ThreadPool() = delete;  // see fork() above: a pool lives as long as its process image
  static void before_fork();
  static void after_fork_in_parent();
  static void after_fork_in_child();
  void worker_loop(int index);
  void run_erased(int parts, int threads, void (*call)(void*, int), void* ctx);
  bool run_concurrent_erased(int parts, void (*call)(void*, int), void* ctx);
  // Publishes a job to the workers and runs the calling thread's parts; busy_ must be held.
  void dispatch(int parts, int threads, void (*call)(void*, int), void* ctx);

  std::vector<std::thread> workers_;
  ThreadPool* abandoned_ = nullptr;  // the pool this one replaced after a fork (kept reachable)
  uint64_t fork_epoch_ = 0;          // value of the process's fork counter when this pool was made
  std::mutex busy_;                  // held by the call that owns the pool
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
};

// CPUs this process may run on: the affinity mask, further capped by a cgroup v2/v1 CPU quota.
int available_cpus();

}  // namespace w4a16::cpu
