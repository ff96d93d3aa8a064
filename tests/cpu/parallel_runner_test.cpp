// GemmOptions::runner: a call's parts run on the caller's threads (PyTorch's intra-op pool in
// w4a16._torch_ops) instead of w4a16's pool. Whatever threads run the parts, and in whatever
// order, y is the bits of the same plan on the pool, and within the reference's bound.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cpu/kernel_check.hpp"

namespace w4a16::test {
namespace {

// A runner that records what it was asked for and runs every part on its own std::thread
// (`threaded`) or all of them on the calling thread, last part first (not threaded).
struct RecordingRunner {
  bool threaded = true;
  std::atomic<int> calls{0};
  std::mutex mutex;
  std::vector<int> parts_seen;  // every part index run, over all calls

  static void run(void* ctx, int parts, void (*part)(void*, int), void* part_ctx) {
    auto& self = *static_cast<RecordingRunner*>(ctx);
    self.calls.fetch_add(1);
    const auto one = [&](int i) {
      part(part_ctx, i);
      const std::lock_guard lock(self.mutex);
      self.parts_seen.push_back(i);
    };
    if (!self.threaded) {
      for (int i = parts - 1; i >= 0; --i) one(i);
      return;
    }
    std::vector<std::thread> threads;
    for (int i = 0; i < parts; ++i) threads.emplace_back(one, i);
    for (auto& t : threads) t.join();
  }
  ParallelRunner runner() { return ParallelRunner{&RecordingRunner::run, this}; }
};

TEST(ParallelRunner, EveryStrategyGivesThePoolsBitsOnTheCallersThreads) {
  for (bool threaded : {true, false}) {
    for (auto [m, zero] : {std::pair{int64_t(1), ZeroMode::sym}, {int64_t(5), ZeroMode::float_zero}}) {
      KernelInput in;
      in.m = m, in.k = 1024 + 96, in.n = 333, in.g = 32, in.zero = zero, in.perm = m > 1, in.bias = true;
      const PreparedInput p = prepare(in, 17 + m);
      for (Strategy strategy : {Strategy::fused, Strategy::decoupled, Strategy::dense, Strategy::pipelined}) {
        for (Partition partition : {Partition::data_parallel, Partition::split_k}) {
          if (strategy == Strategy::pipelined && partition == Partition::data_parallel) continue;
          for (int threads : {2, 3}) {
            const std::string what = fmt::format("{} {} {} M={} threads={}", threaded ? "threaded" : "serial",
                                                 to_string(strategy), to_string(partition), m, threads);
            GemmOptions o;
            o.strategy = strategy;
            o.partition = partition;
            o.split_k = 3;
            o.threads = threads;
            HostMatrix on_pool(in.act, in.m, in.n);
            on_pool.poison();
            gemm(p.x.ref(), p.packed, on_pool.mut(), o);

            RecordingRunner recorder;
            recorder.threaded = threaded;
            o.runner = recorder.runner();
            HostMatrix on_runner(in.act, in.m, in.n);
            on_runner.poison();
            gemm(p.x.ref(), p.packed, on_runner.mut(), o);

            EXPECT_EQ(on_runner.bits, on_pool.bits) << what;
            EXPECT_EQ(check_output(p, on_runner, strategy, what), 0);
            // Each call's parts 0..threads-1 once each (work items, then split-K's reduction).
            ASSERT_GE(recorder.calls.load(), 1) << what;
            std::vector<int> seen = recorder.parts_seen;
            std::sort(seen.begin(), seen.end());
            for (int i = 0; i < threads; ++i) {
              EXPECT_EQ(std::count(seen.begin(), seen.end(), i), recorder.calls.load()) << what << " part " << i;
            }
            EXPECT_EQ(int(seen.size()), threads * recorder.calls.load()) << what;
          }
        }
      }
    }
  }
}

// With threads = 0 the planner chooses, up to the runner's own thread count: never more parts than
// the runner has threads, and a runner of one thread is never called.
TEST(ParallelRunner, TheRunnersThreadCountBoundsThePlannersChoice) {
  KernelInput in;
  in.m = 1, in.k = 4096, in.n = 2048, in.g = 128, in.zero = ZeroMode::sym;
  const PreparedInput p = prepare(in, 9);
  struct Bounded {
    int most = 0;
    std::atomic<int> calls{0}, over{0};
    static void run(void* ctx, int parts, void (*part)(void*, int), void* part_ctx) {
      auto& self = *static_cast<Bounded*>(ctx);
      self.calls.fetch_add(1);
      if (parts > self.most) self.over.fetch_add(1);
      for (int i = 0; i < parts; ++i) part(part_ctx, i);
    }
  };
  for (int most : {1, 2, 3}) {
    Bounded bounded;
    bounded.most = most;
    GemmOptions o;  // threads = 0: the planner's choice
    o.runner = ParallelRunner{&Bounded::run, &bounded, most};
    HostMatrix y(in.act, in.m, in.n);
    y.poison();
    gemm(p.x.ref(), p.packed, y.mut(), o);
    EXPECT_EQ(bounded.over.load(), 0) << "runner of " << most;
    if (most == 1) EXPECT_EQ(bounded.calls.load(), 0);
    EXPECT_EQ(plan_gemm(1, p.packed, in.act, o).threads <= most, true) << "runner of " << most;
    EXPECT_EQ(check_output(p, y, Strategy::fused, "runner of " + std::to_string(most)), 0);
  }
  GemmOptions bad;
  bad.runner.threads = -1;
  HostMatrix y(in.act, in.m, in.n);
  EXPECT_THROW(gemm(p.x.ref(), p.packed, y.mut(), bad), Error);
}

TEST(ParallelRunner, AOneThreadPlanNeverCallsTheRunner) {
  KernelInput in;
  in.m = 2, in.k = 512, in.n = 130, in.g = 64, in.zero = ZeroMode::asym;
  const PreparedInput p = prepare(in, 5);
  RecordingRunner recorder;
  GemmOptions o;
  o.threads = 1;
  o.runner = recorder.runner();
  HostMatrix y(in.act, in.m, in.n);
  y.poison();
  gemm(p.x.ref(), p.packed, y.mut(), o);
  EXPECT_EQ(recorder.calls.load(), 0);
  EXPECT_EQ(check_output(p, y, Strategy::fused, "one thread"), 0);
}

}  // namespace
}  // namespace w4a16::test
