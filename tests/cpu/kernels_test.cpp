// Every CPU kernel (fused, decoupled, dense) under every ISA level this CPU has, against the
// fp64 reference, over a pairwise covering set of edge cases (see kernel_check.hpp).
#include <gtest/gtest.h>

#include "common/aligned_buffer.hpp"
#include "cpu/dispatch.hpp"
#include "cpu/kernel_check.hpp"
#include "cpu/packed_weight.hpp"
#include "cpu/study_kernels.hpp"
#include "measure/ablations.hpp"

namespace w4a16::test {
namespace {

// Input factors (each input's reference is computed once and shared by all runs on it).
// Every M range of the registry (1, 2, 3-4, 5-16, 17+; dense 2-4, 5-6, 7+) and balanced-block cuts.
const std::vector<int64_t> kM = {1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 16, 17, 25, 43, 300};
const std::vector<int64_t> kN = {1, 7, 16, 33, 257};
const std::vector<int64_t> kG = {32, 64, 128, 256};
const std::vector<ZeroMode> kZero = {ZeroMode::sym, ZeroMode::asym, ZeroMode::float_zero};
const std::vector<DType> kAct = {DType::f16, DType::bf16};
const std::vector<DType> kScale = {DType::f16, DType::bf16, DType::f32};
// K as a function of g: g, 3g, 11g, 3g + g/2 (ragged last group).
int64_t k_of(int64_t g, int which) {
  switch (which) {
    case 0:
      return g;
    case 1:
      return 3 * g;
    case 2:
      return 11 * g;
    default:
      return 3 * g + g / 2;
  }
}
// Execution factors, rotated over the inputs so that every (S, threads) pair is met.
const std::vector<int> kSplit = {1, 2, 3, 7};
const std::vector<int> kThreads = {1, 2, 3};

std::vector<KernelInput> covering_inputs() {
  const auto rows = pairwise_rows(
      {int(kM.size()), int(kN.size()), int(kG.size()), 4, int(kZero.size()), int(kAct.size()), int(kScale.size()), 2});
  std::vector<KernelInput> out;
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto& r = rows[i];
    KernelInput in;
    in.m = kM[size_t(r[0])];
    in.n = kN[size_t(r[1])];
    in.g = kG[size_t(r[2])];
    in.k = k_of(in.g, r[3]);
    in.zero = kZero[size_t(r[4])];
    in.act = kAct[size_t(r[5])];
    in.scale = kScale[size_t(r[6])];
    in.perm = r[7] == 1;
    in.bias = i % 2 == 0;
    // Keep the default tier fast: the largest products get a smaller K (still ragged/odd cases).
    if (in.m * in.n * in.k > 40'000'000) in.k = k_of(in.g, 3);
    out.push_back(in);
  }
  return out;
}

class KernelsOnIsa : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    const auto isas = supported_isas();
    if (std::find(isas.begin(), isas.end(), GetParam()) == isas.end()) {
      GTEST_SKIP() << "ISA level '" << GetParam() << "' is not available on this CPU (or not built); this CPU runs "
                   << active_isa();
    }
    set_isa_cap(GetParam());
    ASSERT_EQ(active_isa(), GetParam());
  }
  void TearDown() override { set_isa_cap(""); }
};

TEST_P(KernelsOnIsa, AllStrategiesMatchTheReferenceOnACoveringSet) {
  const auto inputs = covering_inputs();
  int runs = 0, bad = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const PreparedInput p = prepare(inputs[i], 1000 + i);
    // Where the table has bf16-dot entries, alternate them with the fp32-FMA ones over the inputs.
    cpu::set_bf16_dot(int(i % 2));
    for (Strategy strategy : {Strategy::fused, Strategy::decoupled, Strategy::dense}) {
      const size_t rot = i * 3 + size_t(strategy);
      const int s = kSplit[rot % kSplit.size()];
      const int threads = kThreads[(rot / kSplit.size()) % kThreads.size()];
      GemmOptions o;
      o.strategy = strategy;
      o.partition = s == 1 ? Partition::data_parallel : Partition::split_k;
      o.split_k = s;
      o.threads = threads;
      if (strategy == Strategy::decoupled) o.decoupled_panel_bytes = (i % 2) ? 4096 : 0;  // tiny ring, default
      HostMatrix y(p.in.act, p.in.m, p.in.n);
      y.poison();
      gemm(p.x.ref(), p.packed, y.mut(), o);
      bad +=
          check_output(p, y, strategy,
                       std::string(to_string(strategy)) + " S=" + std::to_string(s) + " T=" + std::to_string(threads));
      ++runs;
    }
  }
  cpu::set_bf16_dot(-1);
  EXPECT_EQ(bad, 0) << "over " << runs << " runs on " << inputs.size() << " inputs";
}

// Rows of x of a multiple of 4 KiB (K = 2048: 4 KiB in bf16, 8 KiB widened to fp32), in blocks
// of more rows than an L1 set has ways (M = 9, 12, 24 on a 12-row entry): the executor copies them
// one cache line apart (kernels.hpp x_rows_apart); every strategy still meets the reference, on
// both entry families where the table has the two.
TEST_P(KernelsOnIsa, RowsOfAMultipleOf4KiBMeetTheReferenceWhereverTheyAreSpacedApart) {
  EXPECT_FALSE(cpu::x_rows_apart(12, 8, 4096)) << "one block of 8 rows";
  EXPECT_TRUE(cpu::x_rows_apart(12, 12, 4096));
  EXPECT_FALSE(cpu::x_rows_apart(12, 16, 8192)) << "two blocks of 8";
  EXPECT_TRUE(cpu::x_rows_apart(12, 24, 4096)) << "two blocks of 12";
  EXPECT_FALSE(cpu::x_rows_apart(12, 12, 4000)) << "rows fall in different sets";
  EXPECT_FALSE(cpu::x_rows_apart(6, 100, 4096)) << "blocks of at most 6 rows";
  EXPECT_EQ(cpu::block_height(12, 13), 7);
  EXPECT_EQ(cpu::block_height(12, 0), 0) << "no rows: no block, no division by zero";
  int bad = 0, runs = 0, seed = 50;
  for (const int64_t m : {9, 12, 24}) {
    for (const ZeroMode zero : {ZeroMode::sym, ZeroMode::asym}) {
      const PreparedInput p = prepare({.m = m, .k = 2048, .n = 70, .g = 128, .zero = zero, .act = DType::bf16}, ++seed);
      for (const int dot : {0, 1}) {
        cpu::set_bf16_dot(dot);
        for (Strategy strategy : {Strategy::fused, Strategy::decoupled, Strategy::dense}) {
          GemmOptions o;
          o.strategy = strategy;
          o.threads = 2;
          HostMatrix y(p.in.act, p.in.m, p.in.n);
          y.poison();
          gemm(p.x.ref(), p.packed, y.mut(), o);
          bad += check_output(p, y, strategy, std::string(to_string(strategy)) + " M=" + std::to_string(m));
          ++runs;
        }
      }
    }
  }
  cpu::set_bf16_dot(-1);
  EXPECT_EQ(bad, 0) << "over " << runs << " runs";
}

INSTANTIATE_TEST_SUITE_P(Isa, KernelsOnIsa, ::testing::Values("scalar", "avx2", "avx512", "avx512bf16"),
                         [](const auto& info) { return info.param; });

TEST(Kernels, PairwiseRowsCoverEveryPair) {
  const std::vector<int> levels = {12, 5, 4, 4, 3, 2, 3, 2};
  const auto rows = pairwise_rows(levels);
  for (size_t a = 0; a < levels.size(); ++a) {
    for (size_t b = a + 1; b < levels.size(); ++b) {
      for (int i = 0; i < levels[a]; ++i) {
        for (int j = 0; j < levels[b]; ++j) {
          bool found = false;
          for (const auto& r : rows) found |= r[a] == i && r[b] == j;
          ASSERT_TRUE(found) << a << "=" << i << " " << b << "=" << j;
        }
      }
    }
  }
  EXPECT_LT(rows.size(), 12u * 5u * 2u);  // far fewer than the Cartesian product
}

TEST(Kernels, SplitKIsBitwiseDeterministicWhateverTheThreads) {
  KernelInput in;
  in.m = 3, in.k = 2048 + 64, in.n = 70, in.g = 128, in.zero = ZeroMode::asym, in.bias = true;
  const PreparedInput p = prepare(in, 77);
  for (Strategy strategy : {Strategy::fused, Strategy::decoupled, Strategy::dense}) {
    GemmOptions o;
    o.strategy = strategy;
    o.partition = Partition::split_k;
    o.split_k = 3;
    HostMatrix first(in.act, in.m, in.n);
    o.threads = 1;
    gemm(p.x.ref(), p.packed, first.mut(), o);
    for (int run = 0; run < 20; ++run) {
      HostMatrix y(in.act, in.m, in.n);
      y.poison();
      o.threads = 1 + run % 3;
      gemm(p.x.ref(), p.packed, y.mut(), o);
      ASSERT_EQ(y.bits, first.bits) << to_string(strategy) << " run " << run;
    }
  }
}

TEST(Kernels, PlanReportsClampsAndRejectsBadOptions) {
  KernelInput in;
  in.m = 1, in.k = 256, in.n = 16, in.g = 128;
  const PreparedInput p = prepare(in, 5);
  GemmOptions o;
  o.partition = Partition::split_k;
  o.split_k = 7;
  const GemmPlan plan = plan_gemm(1, p.packed, DType::bf16, o);
  EXPECT_EQ(plan.split_k, 2);  // two groups
  EXPECT_NE(plan.notes.find("clamped"), std::string::npos) << plan.notes;
  o.threads = -1;
  EXPECT_THROW(plan_gemm(1, p.packed, DType::bf16, o), Error);
  HostMatrix y(DType::bf16, 1, 16);
  EXPECT_THROW(gemm({p.x.data(), DType::bf16, 1, 255}, p.packed, y.mut()), Error);
}

TEST(Kernels, PackUnpackRoundTripsEveryLayout) {
  for (int64_t g : {32, 64, 128, 256}) {
    for (ZeroMode zero : {ZeroMode::sym, ZeroMode::asym, ZeroMode::float_zero}) {
      for (int64_t k : {g, 3 * g + g / 2, 3 * g + 5}) {
        KernelInput in;
        in.k = k, in.n = 67, in.g = g, in.zero = zero, in.perm = (k % 2) == 1, in.bias = true;
        const PreparedInput p = prepare(in, uint64_t(k + g));
        const QuantizedWeight back = unpack(p.packed);
        EXPECT_EQ(back.codes(), p.weight.codes());
        EXPECT_EQ(back.scales(), p.weight.scales());
        EXPECT_EQ(back.zeros(), p.weight.zeros());
        EXPECT_EQ(back.perm(), p.weight.perm());
        EXPECT_EQ(back.bias().data, p.weight.bias().data);
      }
    }
  }
}

TEST(Kernels, RowPanelsCoverEveryRowOfLargeBatches) {
  // x rows beyond the driver's L2 panel (1 MiB: 32 fp32 rows of K' = 8200) are run in several
  // passes over the tiles, each with its own rows, output rows and split-K partials.
  KernelInput in;
  in.m = 70, in.k = 8200, in.n = 70, in.g = 128, in.zero = ZeroMode::asym, in.act = DType::bf16;
  const PreparedInput p = prepare(in, 4242);
  for (int dot : {0, 1}) {
    cpu::set_bf16_dot(dot);
    for (Strategy s : {Strategy::fused, Strategy::decoupled, Strategy::dense}) {
      for (int split : {1, 3}) {
        GemmOptions o;
        o.strategy = s;
        o.partition = split == 1 ? Partition::data_parallel : Partition::split_k;
        o.split_k = split;
        o.threads = 2;
        HostMatrix y(in.act, in.m, in.n);
        y.poison();
        gemm(p.x.ref(), p.packed, y.mut(), o);
        EXPECT_EQ(check_output(p, y, s, std::string(to_string(s)) + " S=" + std::to_string(split)), 0);
      }
    }
  }
  cpu::set_bf16_dot(-1);
}

TEST(Kernels, OddGroupSizesAndTinyShapes) {
  // Groups that are not a multiple of the 8-wide chunk, K < 8, per-channel odd K.
  for (auto [k, g] : {std::pair{5, 5}, {20, 6}, {77, 77}, {100, 24}, {9, 3}}) {
    for (DType act : {DType::f16, DType::bf16}) {
      KernelInput in;
      in.m = 5, in.k = k, in.n = 9, in.g = g, in.zero = ZeroMode::asym, in.act = act, in.perm = true;
      const PreparedInput p = prepare(in, uint64_t(k * 3 + g));
      for (Strategy s : {Strategy::fused, Strategy::decoupled, Strategy::dense}) {
        for (int64_t m : {int64_t(1), int64_t(5)}) {
          GemmOptions o;
          o.strategy = s;
          HostMatrix y(act, m, in.n);
          y.poison();
          gemm({p.x.data(), act, m, k}, p.packed, y.mut(), o);
          // Rows of a smaller M are a prefix of the prepared input.
          PreparedInput view{p.in, p.weight, PackedWeight(), p.x, p.y_ref, p.abs_terms, p.abs_products};
          view.in.m = m;
          EXPECT_EQ(check_output(view, y, s, std::string(to_string(s))), 0);
        }
      }
    }
  }
}

TEST(Kernels, DenseBaselineFromUnquantizedWeights) {
  const int64_t m = 7, k = 200, n = 70;
  for (DType dtype : {DType::f16, DType::bf16}) {
    const auto w = random_matrix(dtype, n, k, 3, 0.05f);
    const auto x = random_matrix(dtype, m, k, 4);
    const PackedWeight packed = pack_dense(w.ref());
    HostMatrix y(dtype, m, n);
    y.poison();
    gemm(x.ref(), packed, y.mut());
    for (int64_t r = 0; r < m; ++r) {
      for (int64_t c = 0; c < n; ++c) {
        double want = 0, mag = 0;
        for (int64_t i = 0; i < k; ++i) {
          want += double(x.get(r * k + i)) * w.get(c * k + i);
          mag += std::abs(double(x.get(r * k + i)) * w.get(c * k + i));
        }
        const double tol = Tolerance::gamma(k + 4) * mag + Tolerance::output_ulp(dtype) * std::abs(want) + 1e-7;
        ASSERT_NEAR(y.get(r * n + c), want, tol) << r << "," << c;
      }
    }
    GemmOptions fused;
    fused.strategy = Strategy::fused;
    EXPECT_THROW(gemm(x.ref(), packed, y.mut(), fused), Error);
  }
}

}  // namespace
}  // namespace w4a16::test

namespace w4a16::test {
namespace {

// The study's ablation kernels: the widening copy writes exactly the codes, in the dense layout,
// on every ISA; the stream ablation runs everywhere and leaves no poison behind.
TEST(Kernels, AblationsRunOnEveryIsa) {
  KernelInput in;
  in.m = 2, in.k = 3 * 128 + 64, in.n = 70, in.g = 128;
  const PreparedInput p = prepare(in, 31);
  for (const auto& isa : supported_isas()) {
    set_isa_cap(isa);
    for (auto ablation : {measure::Ablation::widen_copy, measure::Ablation::int4_stream}) {
      HostMatrix y(in.act, in.m, in.n);
      y.poison();
      gemm(p.x.ref(), p.packed, y.mut(), measure::ablation_plan(in.m, p.packed, in.act, {}, ablation));
      for (int64_t i = 0; i < in.m * in.n; ++i) ASSERT_FALSE(std::isnan(y.get(i))) << isa << " " << i;
    }
    const cpu::StudyKernels& study = cpu::study_kernels(cpu::active_kernels());
    if (study.isa == &cpu::scalar_kernels()) continue;  // the generic ablation itself
    const auto tile = p.packed.impl().tile(0);
    const int64_t elems = tile.geom.chunks() * cpu::kChunkK * cpu::kTileN;
    for (DType dtype : {DType::bf16, DType::f16}) {
      std::vector<uint16_t> fast(size_t(elems) + 32, 0xFFFF), generic(size_t(elems) + 32, 0xFFFF);
      AlignedBuffer<uint16_t> aligned{static_cast<size_t>(elems)};
      study.widen.fn(tile, 0, tile.geom.groups, dtype, aligned.data());
      std::copy(aligned.data(), aligned.data() + elems, fast.begin());
      cpu::study_kernels_scalar.widen.fn(tile, 0, tile.geom.groups, dtype, generic.data());
      EXPECT_EQ(fast, generic) << isa << " " << to_string(dtype);
    }
  }
  set_isa_cap("");
}

}  // namespace
}  // namespace w4a16::test

namespace w4a16::test {
namespace {

// Per-channel weights (g = K) have one group per row; the packed form repeats the scale every
// 128 weights so that split-K can still cut K (issue 3: "per-channel weights may split at any
// multiple of the kernel's K step").
TEST(Kernels, PerChannelWeightsSplitKAndRoundTrip) {
  for (int64_t k : {1000, 4096 + 24}) {
    for (ZeroMode zero : {ZeroMode::sym, ZeroMode::asym, ZeroMode::float_zero}) {
      KernelInput in;
      in.m = 3, in.k = k, in.n = 70, in.g = k, in.zero = zero, in.perm = zero == ZeroMode::asym, in.bias = true;
      const PreparedInput p = prepare(in, uint64_t(k) + int(zero));
      const QuantizedWeight back = unpack(p.packed);
      EXPECT_EQ(back.codes(), p.weight.codes());
      EXPECT_EQ(back.scales(), p.weight.scales());
      EXPECT_EQ(back.zeros(), p.weight.zeros());
      for (int s : {2, 3, 7}) {
        GemmOptions o;
        o.partition = Partition::split_k;
        o.split_k = s;
        o.threads = 2;
        EXPECT_EQ(plan_gemm(in.m, p.packed, in.act, o).split_k, s);
        for (Strategy strategy : {Strategy::fused, Strategy::decoupled}) {
          o.strategy = strategy;
          HostMatrix y(in.act, in.m, in.n);
          y.poison();
          gemm(p.x.ref(), p.packed, y.mut(), o);
          EXPECT_EQ(check_output(p, y, strategy, "per-channel S=" + std::to_string(s)), 0);
        }
      }
    }
  }
}

}  // namespace
}  // namespace w4a16::test
