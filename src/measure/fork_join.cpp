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

double measure_fork_join_us(int threads) {
  auto& pool = cpu::ThreadPool::instance();
  std::atomic<int> sink{0};
  auto part = [&](int i) { sink.fetch_add(i, std::memory_order_relaxed); };
  std::vector<double> us;
  for (int rep = 0; rep < 2000; ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
    pool.run(threads, threads, part);
    us.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
  }
  std::nth_element(us.begin(), us.begin() + us.size() / 2, us.end());
  return us[us.size() / 2];
}

double measure_wake_us(int threads) {
  auto& pool = cpu::ThreadPool::instance();
  std::atomic<int> sink{0};
  auto part = [&](int i) { sink.fetch_add(i, std::memory_order_relaxed); };
  const auto idle = std::chrono::microseconds(cpu::ThreadPool::spin_us() + 2000);  // past the spin: asleep
  std::vector<double> us;
  for (int rep = 0; rep < 40; ++rep) {
    std::this_thread::sleep_for(idle);
    const auto t0 = std::chrono::steady_clock::now();
    pool.run(threads, threads, part);
    us.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
  }
  std::nth_element(us.begin(), us.begin() + us.size() / 2, us.end());
  return us[us.size() / 2];
}

}  // namespace w4a16::measure
