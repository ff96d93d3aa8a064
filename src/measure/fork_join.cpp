// Times the thread pool's fork/join with nothing to do: 2000 runs, the median kept (a run that the
// OS preempts is an outlier, not the cost).
#include "measure/fork_join.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "cpu/thread_pool.hpp"

namespace w4a16::measure {

namespace {
// Median time of `runs` empty pool runs over `threads`, in microseconds; `idle` is waited before
// each (untimed).
double median_run_us(int threads, int runs, std::chrono::microseconds idle) {
  auto& pool = cpu::ThreadPool::instance();
  std::atomic<int> sink{0};
  auto part = [&](int i) { sink.fetch_add(i, std::memory_order_relaxed); };
  std::vector<double> us;
  for (int rep = 0; rep < runs; ++rep) {
    if (idle.count() > 0) std::this_thread::sleep_for(idle);
    const auto t0 = std::chrono::steady_clock::now();
    pool.run(threads, threads, part);
    us.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
  }
  std::nth_element(us.begin(), us.begin() + us.size() / 2, us.end());
  return us[us.size() / 2];
}
}  // namespace

double measure_fork_join_us(int threads) { return median_run_us(threads, 2000, std::chrono::microseconds(0)); }

double measure_wake_us(int threads) {
  // Idle past the workers' spin before each run: they are asleep when it starts.
  return median_run_us(threads, 40, std::chrono::microseconds(cpu::ThreadPool::spin_us() + 2000));
}

}  // namespace w4a16::measure
