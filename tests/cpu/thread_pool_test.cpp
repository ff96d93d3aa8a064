// The pool's wait policy (set_worker_spin_us, W4A16_WAIT_POLICY): workers spin for the set time
// after a call and then sleep, so a caller that does its own work between calls keeps its cores;
// gemm stays correct whatever the policy, with calls that find the workers spinning or asleep.
#include "cpu/thread_pool.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "cpu/kernel_check.hpp"
#include "w4a16/w4a16.hpp"

namespace w4a16 {
namespace {

// CPU time (user + system, in clock ticks) of this process's threads other than the caller.
long long other_threads_cpu_ticks() {
  long long ticks = 0;
  const std::string self = std::to_string(::gettid());
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    if (task.path().filename() == self) continue;
    std::ifstream stat(task.path() / "stat");
    std::string line;
    std::getline(stat, line);
    // Fields after the ")" closing the name: state is field 3, utime 14, stime 15.
    std::istringstream rest(line.substr(line.rfind(')') + 2));
    std::string field;
    long long utime = 0, stime = 0;
    for (int i = 3; i <= 15 && rest >> field; ++i) {
      if (i == 14) utime = std::stoll(field);
      if (i == 15) stime = std::stoll(field);
    }
    ticks += utime + stime;
  }
  return ticks;
}

class WaitPolicy : public ::testing::Test {
 protected:
  void SetUp() override { spin_ = worker_spin_us(); }
  void TearDown() override { set_worker_spin_us(spin_); }
  int spin_ = 0;
};

// Passive: after a parallel call the workers sleep at once. Over 300 ms of the caller's own work
// they take (almost) no CPU; set to spin for 100 ms (the maximum) they take about that much each
// (at least half of it on a loaded machine). Measured in CPU time of the worker threads (clock
// ticks of 10 ms), not in wall time.
TEST_F(WaitPolicy, PassiveWorkersLeaveTheCoresToTheCaller) {
  auto& pool = cpu::ThreadPool::instance();
  if (pool.max_threads() < 2) GTEST_SKIP() << "one CPU: the pool has no worker";
  std::atomic<int> parts_run{0};
  auto part = [&](int) { parts_run.fetch_add(1, std::memory_order_relaxed); };
  const auto idle_cpu_after_a_call = [&] {
    parts_run = 0;
    pool.run(pool.max_threads(), pool.max_threads(), part);
    EXPECT_EQ(parts_run.load(), pool.max_threads());
    const long long before = other_threads_cpu_ticks();
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    return other_threads_cpu_ticks() - before;
  };
  set_worker_spin_us(0);
  EXPECT_LE(idle_cpu_after_a_call(), 2) << "ticks of 10 ms: passive workers kept spinning";
  set_worker_spin_us(100000);
  EXPECT_GE(idle_cpu_after_a_call(), 5) << "ticks of 10 ms: active workers did not spin";
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
