// The contracts of gemm() stated in w4a16.hpp: no heap allocation on the hot path after the first
// call for a shape, reentrancy, and a shareable immutable packed weight.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <thread>

#include "cpu/kernel_check.hpp"

namespace {
std::atomic<long> g_allocations{0};
}

void* operator new(std::size_t size) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size ? size : 1)) return p;
  throw std::bad_alloc();
}
// The nothrow form too (std::stable_sort's temporary buffer uses it): every allocation that the
// replaced operator delete frees must come from this malloc, or ASan reports a mismatch.
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  return std::malloc(size ? size : 1);
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }

namespace w4a16::test {
namespace {

TEST(GemmContracts, NoHeapAllocationAfterTheFirstCallForAShape) {
  const long start = g_allocations.load();
  void* volatile probe = ::operator new(16);  // a direct call may not be elided, unlike a new-expression
  ::operator delete(probe);
  ASSERT_EQ(g_allocations.load() - start, 1) << "the allocation counter must see operator new";
  for (auto [m, zero] :
       {std::pair{int64_t(1), ZeroMode::sym}, {int64_t(3), ZeroMode::asym}, {int64_t(20), ZeroMode::float_zero}}) {
    KernelInput in;
    in.m = m, in.k = 1024 + 64, in.n = 200, in.g = 64, in.zero = zero, in.perm = true, in.bias = true;
    const PreparedInput p = prepare(in, 3);
    for (Strategy strategy : {Strategy::fused, Strategy::decoupled, Strategy::dense}) {
      for (Partition partition : {Partition::data_parallel, Partition::split_k}) {
        GemmOptions o;
        o.strategy = strategy;
        o.partition = partition;
        o.split_k = 3;
        o.threads = 2;
        HostMatrix y(in.act, in.m, in.n);
        gemm(p.x.ref(), p.packed, y.mut(), o);  // sizes workspaces, makes the dense copy
        const long before = g_allocations.load();
        for (int i = 0; i < 3; ++i) gemm(p.x.ref(), p.packed, y.mut(), o);
        EXPECT_EQ(g_allocations.load() - before, 0) << to_string(strategy) << " " << to_string(partition) << " M=" << m;
      }
    }
  }
}

TEST(GemmContracts, ConcurrentCallsOnOneSharedPackedWeight) {
  KernelInput in;
  in.m = 4, in.k = 2048, in.n = 300, in.g = 128, in.zero = ZeroMode::asym;
  const PreparedInput p = prepare(in, 8);
  GemmOptions o;
  o.partition = Partition::split_k;
  o.split_k = 2;
  HostMatrix expected(in.act, in.m, in.n);
  gemm(p.x.ref(), p.packed, expected.mut(), o);
  std::atomic<int> mismatches{0};
  std::vector<std::thread> callers;
  for (int t = 0; t < 4; ++t) {
    callers.emplace_back([&] {
      for (int i = 0; i < 25; ++i) {
        HostMatrix y(in.act, in.m, in.n);
        y.poison();
        gemm(p.x.ref(), p.packed, y.mut(), o);
        if (y.bits != expected.bits) ++mismatches;
      }
    });
  }
  for (auto& t : callers) t.join();
  EXPECT_EQ(mismatches.load(), 0);
  EXPECT_EQ(check_output(p, expected, Strategy::fused, "fused"), 0);
}

}  // namespace
}  // namespace w4a16::test
