// The pool's wait policy (set_worker_spin_us, W4A16_WAIT_POLICY): workers spin for the set time
// after a call and then sleep, so a caller that does its own work between calls keeps its cores;
// gemm stays correct whatever the policy, with calls that find the workers spinning or asleep.
#include "cpu/thread_pool.hpp"

#include <gtest/gtest.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>

#include "cpu/kernel_check.hpp"
#include "w4a16/w4a16.hpp"

namespace w4a16 {
namespace {

// CPU time, in nanoseconds, of this process's threads other than the caller. Each thread's
// scheduler clock is read through the id Linux gives a thread's CPU clock (the one
// pthread_getcpuclockid builds: ~tid << 3 | per-thread | sched), which counts nanoseconds where
// /proc's utime/stime count ticks of 10 ms.
long long other_threads_cpu_ns() {
  long long ns = 0;
  const std::string self = std::to_string(::gettid());
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    const std::string name = task.path().filename();
    if (name == self) continue;
    const auto tid = static_cast<unsigned>(std::stoul(name));
    const auto clock = static_cast<clockid_t>((~tid << 3) | 4u | 2u);
    timespec t{};
    if (::clock_gettime(clock, &t) == 0) ns += t.tv_sec * 1'000'000'000LL + t.tv_nsec;
  }
  return ns;
}

class WaitPolicy : public ::testing::Test {
 protected:
  void SetUp() override { spin_ = worker_spin_us(); }
  void TearDown() override { set_worker_spin_us(spin_); }
  int spin_ = 0;
};

// Passive: after a parallel call the workers sleep at once. Over 300 ms of the caller's own work
// they take (almost) no CPU; set to spin for 100 ms (the maximum) they take CPU for up to that
// long. The bounds are far apart so that a loaded machine (ctest -j, CI) cannot cross them: a
// spinning worker that gets a tenth of a core still shows 10 ms; sleeping workers take none.
TEST_F(WaitPolicy, PassiveWorkersLeaveTheCoresToTheCaller) {
  auto& pool = cpu::ThreadPool::instance();
  if (pool.max_threads() < 2) GTEST_SKIP() << "one CPU: the pool has no worker";
  std::atomic<int> parts_run{0};
  auto part = [&](int) { parts_run.fetch_add(1, std::memory_order_relaxed); };
  const auto idle_cpu_ms_after_a_call = [&] {
    parts_run = 0;
    pool.run(pool.max_threads(), pool.max_threads(), part);
    EXPECT_EQ(parts_run.load(), pool.max_threads());
    const long long before = other_threads_cpu_ns();
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    return static_cast<double>(other_threads_cpu_ns() - before) / 1e6;
  };
  set_worker_spin_us(0);
  EXPECT_LE(idle_cpu_ms_after_a_call(), 5.0) << "ms of CPU: passive workers kept spinning";
  set_worker_spin_us(100000);
  EXPECT_GE(idle_cpu_ms_after_a_call(), 10.0) << "ms of CPU: active workers did not spin";
  set_worker_spin_us(0);
  EXPECT_EQ(worker_spin_us(), 0);
  set_worker_spin_us(-5);  // clamped
  EXPECT_EQ(worker_spin_us(), 0);
  set_worker_spin_us(1 << 30);
  EXPECT_EQ(worker_spin_us(), cpu::ThreadPool::kMaxSpinUs);
}

// Correct results whatever the policy, on calls that find the workers spinning or asleep.
TEST_F(WaitPolicy, GemmIsCorrectWithSpinningAndSleepingWorkers) {
  test::KernelInput in;
  in.m = 3, in.k = 640, in.n = 200, in.g = 64, in.zero = ZeroMode::asym, in.act = DType::bf16;
  const auto p = test::prepare(in, 91);
  GemmOptions o;
  o.threads = 2;
  for (const int spin : {0, 300, 100000}) {
    set_worker_spin_us(spin);
    for (int call = 0; call < 3; ++call) {
      if (call == 2) std::this_thread::sleep_for(std::chrono::milliseconds(5));  // past a short spin
      test::HostMatrix y(in.act, in.m, in.n);
      y.poison();
      gemm(p.x.ref(), p.packed, y.mut(), o);
      EXPECT_EQ(test::check_output(p, y, Strategy::fused, "spin " + std::to_string(spin)), 0);
    }
  }
}

}  // namespace
}  // namespace w4a16
