// Concurrency guarantees of gemm() (w4a16.hpp: reentrant, immutable shareable weights), in the
// situations a serving process creates: many threads making their first call at once (pool,
// per-thread workspaces and the lazy dense copy are created under contention), and the ISA cap
// changed while calls run. These tests, fork_test and the concurrent cases of gemm_contracts_test
// and c_api_test carry the ctest label "concurrency" and also run under ThreadSanitizer
// (scripts/test.sh).
#include <gtest/gtest.h>

#include <atomic>
#include <barrier>
#include <thread>
#include <vector>

#include "cpu/kernel_check.hpp"

namespace w4a16::test {
namespace {

constexpr int kThreads = 6;

// Declared first in this file so that it is this process's first gemm: the thread pool is made
// by whichever of the racing calls gets there first.
TEST(Concurrency, FirstCallsFromManyThreadsAtOnce) {
  KernelInput in;
  in.m = 5, in.k = 1024 + 40, in.n = 200, in.g = 64, in.zero = ZeroMode::float_zero, in.bias = true, in.perm = true;
  const PreparedInput p = prepare(in, 21);
  std::barrier start(kThreads);
  std::atomic<int> bad{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      GemmOptions o;
      o.strategy = t % 3 == 0 ? Strategy::fused : t % 3 == 1 ? Strategy::dense : Strategy::decoupled;
      o.partition = t % 2 ? Partition::split_k : Partition::data_parallel;
      o.threads = 2;
      HostMatrix y(in.act, in.m, in.n);
      y.poison();
      start.arrive_and_wait();
      gemm(p.x.ref(), p.packed, y.mut(), o);  // dense: the first call makes the lazy dense copy
      bad += check_output(p, y, o.strategy, "thread " + std::to_string(t));
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(bad.load(), 0);
}

TEST(Concurrency, IsaCapChangedDuringCalls) {
  const std::vector<std::string> isas = supported_isas();
  if (isas.size() < 2) GTEST_SKIP() << "this CPU runs one ISA level only";
  KernelInput in;
  in.m = 2, in.k = 512, in.n = 130, in.g = 32, in.zero = ZeroMode::asym, in.act = DType::bf16;
  const PreparedInput p = prepare(in, 22);
  std::atomic<bool> stop{false};
  std::atomic<int> bad{0}, calls{0};
  std::vector<std::thread> callers;
  for (int t = 0; t < 3; ++t) {
    callers.emplace_back([&, t] {
      GemmOptions o;
      o.strategy = t == 0 ? Strategy::fused : Strategy::decoupled;
      o.threads = 2;
      while (!stop.load()) {
        HostMatrix y(in.act, in.m, in.n);
        y.poison();
        gemm(p.x.ref(), p.packed, y.mut(), o);
        (void)plan_gemm(in.m, p.packed, in.act, o);
        bad += check_output(p, y, o.strategy, "caller " + std::to_string(t));
        ++calls;
      }
    });
  }
  for (int flip = 0; flip < 200 || calls.load() < 30; ++flip) {
    set_isa_cap(isas[size_t(flip) % isas.size()]);
    std::this_thread::yield();
  }
  stop = true;
  for (auto& t : callers) t.join();
  set_isa_cap("");
  EXPECT_EQ(bad.load(), 0);
}

}  // namespace
}  // namespace w4a16::test
