// The contracts of gemm() stated in w4a16.hpp: no heap allocation on the hot path after the first
// call for a shape, reentrancy, a shareable immutable packed weight, and an fp32 y that holds the
// result before its one rounding.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <new>
#include <string>
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

// y may be fp32 (partial sums added before one rounding: tensor parallelism). It holds exactly
// the value that a 16-bit y rounds, on every strategy, partition and instruction set this CPU
// runs; and it is within the fp32 part of the kernels' bound (check_output without the output
// rounding) of the double reference, which writes fp32 too.
TEST(GemmContracts, AnFp32OutputIsTheResultBeforeItsOneRounding) {
  for (const DType act : {DType::bf16, DType::f16}) {
    KernelInput in;
    in.m = 5, in.k = 320 + 24, in.n = 130, in.g = 64, in.zero = ZeroMode::asym, in.act = act, in.bias = true;
    const PreparedInput p = prepare(in, 21);
    HostMatrix ref32(DType::f32, in.m, in.n);
    reference_gemm(p.x.ref(), p.weight, ref32.mut());
    for (int64_t i = 0; i < in.m * in.n; ++i) {
      const uint16_t rounded = act == DType::bf16 ? f32_to_bf16(ref32.get(i)) : f32_to_f16(ref32.get(i));
      // Each is the double rounded once; they could differ only where the fp32 value lands exactly
      // on a 16-bit halfway point (double rounding), which no value of this input does.
      ASSERT_EQ(p.y_ref.bits[size_t(i)], rounded) << "the reference's fp32 and 16-bit outputs disagree at " << i;
    }
    for (const std::string& isa : supported_isas()) {
      set_isa_cap(isa);
      for (Strategy strategy : {Strategy::fused, Strategy::decoupled, Strategy::dense, Strategy::pipelined}) {
        for (Partition partition : {Partition::data_parallel, Partition::split_k}) {
          GemmOptions o;
          o.strategy = strategy, o.partition = partition, o.split_k = 3, o.threads = 2;
          const std::string what =
              isa + " " + std::string(to_string(strategy)) + " " + std::string(to_string(partition));
          HostMatrix y16(act, in.m, in.n), y32(DType::f32, in.m, in.n);
          y16.poison(), y32.poison();
          gemm(p.x.ref(), p.packed, y16.mut(), o);
          gemm(p.x.ref(), p.packed, y32.mut(), o);
          int mismatches = 0;
          for (int64_t i = 0; i < in.m * in.n; ++i) {
            const uint16_t rounded = act == DType::bf16 ? f32_to_bf16(y32.get(i)) : f32_to_f16(y32.get(i));
            mismatches += rounded != y16.bits[size_t(i)];
          }
          EXPECT_EQ(mismatches, 0) << what << ": fp32 y rounded != 16-bit y";
          EXPECT_EQ(check_output(p, y16, strategy, what), 0);
          const int64_t groups = (in.k + in.g - 1) / in.g, kp = groups * ((in.g + 7) / 8) * 8;
          const double gamma = Tolerance::gamma(kp + groups + 4);
          for (int64_t i = 0; i < in.m * in.n; ++i) {
            double e = gamma * (p.abs_terms[size_t(i)] + std::abs(p.weight.bias_value(i % in.n)));
            if (strategy != Strategy::fused) e += Tolerance::weight_rounding(act) * p.abs_products[size_t(i)];
            const double err = std::abs(double(y32.get(i)) - double(ref32.get(i)));
            ASSERT_LE(err, e + std::abs(double(ref32.get(i))) * 0x1p-24) << what << " y[" << i << "]";
          }
        }
      }
    }
    set_isa_cap("");
  }
}

// The executor rounds to bf16 with its own branch-free loop (executor.cpp round_row_to_bf16, so
// that it vectorizes); it must be f32_to_bf16 bit for bit on what random data never reaches:
// NaN rows, infinities, values that round up to infinity.
TEST(GemmContracts, TheBf16OutputRoundingIsTheScalarRoundingOnSpecialValues) {
  KernelInput in;
  in.m = 4, in.k = 96, in.n = 70, in.g = 32, in.zero = ZeroMode::sym, in.act = DType::bf16, in.bias = true;
  PreparedInput p = prepare(in, 5);
  p.x.set(0 * in.k + 3, std::numeric_limits<float>::quiet_NaN());  // row 0: NaN everywhere
  p.x.set(1 * in.k + 7, std::numeric_limits<float>::infinity());   // row 1: +-inf (NaN where w = 0)
  for (int64_t k = 0; k < in.k; ++k) p.x.set(2 * in.k + k, k % 2 ? 3.0e38f : -3.0e38f);  // row 2: huge sums
  GemmOptions o;
  o.threads = 1;
  HostMatrix y16(DType::bf16, in.m, in.n), y32(DType::f32, in.m, in.n);
  y16.poison(), y32.poison();
  gemm(p.x.ref(), p.packed, y16.mut(), o);
  gemm(p.x.ref(), p.packed, y32.mut(), o);
  int specials = 0;
  for (int64_t i = 0; i < in.m * in.n; ++i) {
    const float v = y32.get(i);
    specials += !std::isfinite(v) || !std::isfinite(bf16_to_f32(f32_to_bf16(v)));
    ASSERT_EQ(y16.bits[size_t(i)], f32_to_bf16(v)) << "y[" << i << "] = " << v;
  }
  EXPECT_GE(specials, 2 * in.n) << "the input did not reach the special values it is meant to";
}

}  // namespace
}  // namespace w4a16::test
