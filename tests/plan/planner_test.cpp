// The cost model's arithmetic on hand-computed cases, the planner's enumeration and choice, and
// plans as values (gemm(x, w, y, plan)). No timing: every number here is predicted.
#include "plan/planner.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <limits>
#include <set>
#include <string>

#include "cpu/cpu_features.hpp"
#include "cpu/dispatch.hpp"
#include "cpu/executor.hpp"
#include "cpu/kernel_check.hpp"
#include "cpu/thread_pool.hpp"
#include "cpu/tile_permission.hpp"
#include "plan/cost_model.hpp"
#include "plan/devices/cpu.hpp"
#include "plan/plan_cache.hpp"
#include "support/peak_memory.hpp"

namespace w4a16 {
namespace {

using plan::Candidate;
using plan::Device;
using plan::DeviceKind;
using plan::Problem;

constexpr double kHuge = 1e30;

// A CPU whose every rate is unlimited except the ones a test sets: each test isolates a term.
Device ideal_cpu(int cores) {
  Device d;
  d.name = "test-cpu";
  d.kind = DeviceKind::cpu;
  d.cores = d.vector_cores = cores;
  d.read_bw = {{1, kHuge}};
  d.core_read_bw = kHuge;
  d.llc_bw = d.local_bw = kHuge;
  d.matrix_flops = d.vector_ops = kHuge;
  d.vector_lanes = 16;
  d.read_compute_overlap = 1.0;
  return d;
}

double term(const plan::Prediction& p, std::string_view name) {
  for (const auto& t : p.terms) {
    if (t.name == name) return t.seconds;
  }
  return -1;
}

// K = 1024, g = 128, fp16 scales, sym: one 64-column item holds 64 x (1024 / 2 + 8 x 2) bytes.
constexpr double kItemBytes = 64.0 * (1024 / 2 + 8 * 2);

TEST(CostModel, PureBandwidthIsBytesOverTheReadRate) {
  Device d = ideal_cpu(1);
  d.read_bw = {{1, 1e9}};
  d.core_read_bw = 1e9;
  const Problem p{.m = 1, .k = 1024, .n = 64, .group_size = 128};
  const auto pr = plan::predict(d, p, Candidate{.strategy = Strategy::fused, .threads = 1});
  EXPECT_NEAR(pr.seconds, kItemBytes / 1e9, 1e-15);
  EXPECT_EQ(pr.bound, "weight read");
}

TEST(CostModel, PureComputeIsFlopsOverThePeakPlusTheDequantInstructions) {
  Device d = ideal_cpu(1);
  d.matrix_flops = 1e11;
  d.vector_ops = d.matrix_flops / 32;  // 16 lanes x 2 flops per FMA instruction
  const Problem p{.m = 4, .k = 1024, .n = 64, .group_size = 128};
  // A 4-row block: per vector of 16 columns and k, 4 FMAs + 2 dequant instructions (shift, permute).
  const Candidate c{.strategy = Strategy::fused, .threads = 1, .block_rows = 4};
  const double fmas = 4.0 * 1024 * 4, dequant = 2.0 * 1024 * 4;  // 4 vectors per k
  EXPECT_NEAR(plan::predict(d, p, c).seconds, (fmas + dequant) / d.vector_ops, 1e-15);
  // The same rows in 1-row blocks dequantize four times as often.
  const Candidate c1{.strategy = Strategy::fused, .threads = 1, .block_rows = 1};
  EXPECT_NEAR(plan::predict(d, p, c1).seconds, (fmas + 4 * dequant) / d.vector_ops, 1e-15);
}

// A tile entry (AMX): whole 16-row blocks at the tile rate, plus the vector unit's dequantization
// into B tiles (once per item: at the measured rate, else 1.5 instructions per vector and k) and
// the per-group scaling of the C tiles into the output (3 instructions per row, vector and group).
// Without a tile rate the candidate is valued as a vector entry.
TEST(CostModel, ATileEntryPaysWhole16RowBlocksAtTheTileRateAndTheDequantOnTheVectorUnit) {
  Device d = ideal_cpu(1);
  d.matrix_flops = 1e11;
  d.vector_ops = d.matrix_flops / 32;
  d.tile_flops = 3e12;
  const auto seconds = [&](int64_t m, const Device& dev) {
    const Problem p{.m = m, .k = 1024, .n = 64, .group_size = 128};
    return plan::predict(dev, p,
                         Candidate{.strategy = Strategy::fused,
                                   .threads = 1,
                                   .block_rows = 16,
                                   .panel = true,
                                   .bf16_dot = true,
                                   .tiles = true})
        .seconds;
  };
  const auto expected = [&](int64_t m) {
    const double blocks = double((m + 15) / 16);
    const double tile = 2.0 * blocks * 16 * 1024 * 64 / d.tile_flops;
    const double vector = (1024.0 * 4 * 1.5 + 8.0 * double(m) * 4 * 3) / d.vector_ops;
    return tile + vector;
  };
  for (int64_t m : {1, 16, 17, 40}) EXPECT_NEAR(seconds(m, d), expected(m), 1e-15) << "M=" << m;
  EXPECT_LT(seconds(16, d) - seconds(1, d), expected(17) - expected(16)) << "rows 2-16 cost no tile time";
  Device measured = d;  // calibrate's dequantize-to-tile rate replaces the instruction count
  measured.dequant_weights_per_s = 2e10;
  for (int64_t m : {1, 40}) {
    const double counted = 1024.0 * 4 * 1.5 / d.vector_ops, timed = 1024.0 * 64 / 2e10;
    EXPECT_NEAR(seconds(m, measured), expected(m) - counted + timed, 1e-15) << "M=" << m;
  }
  Device no_tiles = d;
  no_tiles.tile_flops = 0;
  EXPECT_GT(seconds(16, no_tiles), 2 * seconds(16, d)) << "without a tile rate: the vector formulas";
  // The tile entries' in-core scale is their own ("fused+tiles"); the vector one leaves them alone.
  EXPECT_EQ(plan::incore_key(Candidate{.strategy = Strategy::fused, .tiles = true}), "fused+tiles");
  EXPECT_EQ(plan::incore_key(Candidate{.strategy = Strategy::decoupled}), "decoupled");
  Device scaled = d;
  scaled.incore_scale["fused"] = {{{1, 1}, 3.0}};
  EXPECT_DOUBLE_EQ(seconds(16, scaled), seconds(16, d));
  scaled.incore_scale["fused+tiles"] = {{{1, 1}, 2.0}};
  EXPECT_NEAR(seconds(16, scaled), 2 * seconds(16, d), 1e-15) << "the read is free on this ideal CPU";
}

TEST(CostModel, OverlappedStagesCountTheirMaxNotTheirSum) {
  Device d = ideal_cpu(1);
  d.read_bw = {{1, 1e9}};
  d.core_read_bw = 1e9;
  d.matrix_flops = 1e8;
  d.vector_ops = kHuge;
  const Problem p{.m = 1, .k = 1024, .n = 64, .group_size = 128};
  const auto pr = plan::predict(d, p, Candidate{.strategy = Strategy::fused, .threads = 1});
  const double read = kItemBytes / 1e9, compute = 2.0 * 1024 * 64 / 1e8;
  EXPECT_NEAR(pr.seconds, std::max(read, compute), 1e-15);
  EXPECT_NEAR(term(pr, "weight read"), read, 1e-15);
  EXPECT_NEAR(term(pr, "dequant + matmul"), compute, 1e-15);
  // A CPU whose weight stream does not hide behind its arithmetic adds them (and halfway between).
  d.read_compute_overlap = 0.0;
  EXPECT_NEAR(plan::predict(d, p, Candidate{.strategy = Strategy::fused, .threads = 1}).seconds, read + compute, 1e-15);
  d.read_compute_overlap = 0.5;
  EXPECT_NEAR(plan::predict(d, p, Candidate{.strategy = Strategy::fused, .threads = 1}).seconds,
              std::max(read, compute) + 0.5 * std::min(read, compute), 1e-15);
}

// The in-core scale: looked up by strategy, the nearest calibrated thread count at or below, and
// linear in log M between calibrated Ms; the model multiplies the in-core terms by it, not the read.
TEST(CostModel, InCoreScaleMultipliesTheInCoreTermsOnly) {
  Device d = ideal_cpu(2);
  d.incore_scale["fused"] = {{{1, 1}, 2.0}, {{1, 16}, 4.0}, {{2, 1}, 3.0}};
  EXPECT_DOUBLE_EQ(d.incore_scale_at("fused", 1, 1), 2.0);
  EXPECT_DOUBLE_EQ(d.incore_scale_at("fused", 1, 4), 3.0);   // log 4 is halfway between log 1 and log 16
  EXPECT_DOUBLE_EQ(d.incore_scale_at("fused", 1, 64), 4.0);  // flat beyond the largest M
  EXPECT_DOUBLE_EQ(d.incore_scale_at("fused", 2, 64), 3.0);  // 2 threads: its own (single) entry
  EXPECT_DOUBLE_EQ(d.incore_scale_at("fused", 8, 1), 3.0);   // 8 threads: the largest calibrated below
  EXPECT_DOUBLE_EQ(d.incore_scale_at("dense", 1, 1), 1.0);   // not calibrated

  d.read_bw = {{1, 1e9}};
  d.core_read_bw = 1e9;
  d.matrix_flops = 1e8;
  d.vector_ops = kHuge;
  d.read_compute_overlap = 0.0;
  const Problem p{.m = 1, .k = 1024, .n = 64, .group_size = 128};
  const auto pr = plan::predict(d, p, Candidate{.strategy = Strategy::fused, .threads = 1});
  const double read = kItemBytes / 1e9, compute = 2.0 * 1024 * 64 / 1e8;
  EXPECT_NEAR(term(pr, "weight read"), read, 1e-15);
  EXPECT_NEAR(term(pr, "dequant + matmul"), 2.0 * compute, 1e-15);
  EXPECT_NEAR(pr.seconds, read + 2.0 * compute, 1e-15);
}

TEST(CostModel, WaveQuantizationChargesTheBusiestCore) {
  Device d = ideal_cpu(2);
  d.read_bw = {{1, 1e9}, {2, 2e9}};
  d.core_read_bw = 1e9;
  const Problem p{.m = 1, .k = 1024, .n = 3 * 64, .group_size = 128};  // 3 tiles on 2 cores
  const auto pr = plan::predict(d, p, Candidate{.strategy = Strategy::fused, .threads = 2});
  EXPECT_NEAR(pr.seconds, 2 * kItemBytes / 1e9, 1e-15);  // one core runs 2 items
  // Split-K(3) makes 9 items: the busiest core runs 5 slices of a third of K each, and a second
  // phase reduces 3 partial [1 x 192] fp32 tiles (free on this ideal machine, launches aside).
  const auto split = plan::predict(d, p, Candidate{.strategy = Strategy::fused, .split_k = 3, .threads = 2});
  const double slice_bytes = 64.0 * (3 * 128 / 2 + 3 * 2);  // ceil(8 / 3) = 3 groups
  EXPECT_NEAR(split.seconds, 5 * slice_bytes / 1e9, 1e-15);
}

TEST(CostModel, DecoupledRoundTripOnTheNpuIsTheHbmTrafficOfItsMisses) {
  Device d;
  d.name = "test-npu";
  d.kind = DeviceKind::npu;
  d.cores = 1;
  d.vector_cores = 2;
  d.fused_possible = false;
  d.read_bw = {{1, 1e12}};
  d.write_bw = 1e12;
  d.core_read_bw = d.vector_core_read_bw = d.vector_core_write_bw = kHuge;
  d.llc_bw = kHuge;
  d.matrix_flops = kHuge;
  d.dequant_weights_per_s = kHuge;
  const Problem p{.m = 1, .k = 1024, .n = 256, .group_size = 128};
  const Candidate c{.strategy = Strategy::decoupled, .threads = 1, .vector_threads = 2, .tile_n = 256};
  const double w4 = 256.0 * (512 + 8 * 2), w16 = 256.0 * 1024 * 2;
  for (double h : {0.0, 0.5, 0.8, 1.0}) {
    d.workspace_l2_hit = h;
    // HBM: the int4 read, and a miss share (1 - h) of the 16-bit weight written and read back.
    EXPECT_NEAR(plan::predict(d, p, c).seconds, (w4 + (1 - h) * 2 * w16) / 1e12, 1e-18) << h;
  }
  // The FP16 baseline reads 2 bytes per weight: the ratio at h = 1 is the int4 bound.
  const double fp16 = plan::predict(d, p, Candidate{.strategy = Strategy::dense, .threads = 1, .tile_n = 256}).seconds;
  EXPECT_NEAR(fp16, w16 / 1e12, 1e-18);
}

// The cost model reads the register block, the panel flag and the unit (tiles or vectors) of the
// entry a plan holds, as fields.
TEST(Planner, CandidatesTakeTheBlockShapeFromTheEntry) {
  QuantizedLayout layout;
  layout.k = 4096;
  layout.n = 512;
  layout.group_size = 128;
  for (const int64_t m : {1, 3, 16, 100}) {
    for (const auto& g : plan_candidates(m, layout, DType::bf16)) {
      SCOPED_TRACE(g.kernel);
      ASSERT_NE(g.table, nullptr);
      const plan::Candidate c = plan::candidate_of(g, *plan::cpu_device());
      if (g.strategy == Strategy::fused) {
        ASSERT_NE(g.q4, nullptr);
        EXPECT_EQ(c.block_rows, g.q4->mr);
        EXPECT_EQ(c.panel, g.q4->panel);
        EXPECT_EQ(c.tiles, g.q4->isa->tiles);
        EXPECT_EQ(g.x_format, g.q4->x);
        EXPECT_EQ(g.kernel, g.q4->name);
      } else {
        ASSERT_NE(g.dense, nullptr);
        EXPECT_EQ(c.block_rows, g.dense->mr);
        EXPECT_EQ(c.tiles, g.dense->isa->tiles);
        EXPECT_EQ(g.x_format, g.dense->x);
        EXPECT_EQ(g.dequant != nullptr, g.strategy != Strategy::dense);
      }
    }
  }
}

// GemmOptions::decoupled_panel_bytes travels in the plan: gemm(x, w, y, plan) runs the panel
// budget the plan was made with (it ran 1 MiB whatever the plan said before the plan carried it).
TEST(Planner, APlanKeepsItsDecoupledPanelBudget) {
  test::KernelInput in;
  in.m = 5, in.k = 1024, in.n = 200, in.g = 128, in.zero = ZeroMode::sym, in.act = DType::bf16;
  const auto p = test::prepare(in, 78);
  GemmOptions o;
  o.strategy = Strategy::decoupled;
  o.decoupled_panel_bytes = 4096;
  const GemmPlan plan = plan_gemm(in.m, p.packed, in.act, o);
  EXPECT_EQ(plan.panel_bytes, 4096);
  EXPECT_EQ(cpu::exec_plan(plan, p.packed.impl(), cpu::active_kernels()).panel_bytes, 4096);
  o.decoupled_panel_bytes = 0;
  EXPECT_EQ(plan_gemm(in.m, p.packed, in.act, o).panel_bytes, cpu::kDefaultPanelBytes);
  test::HostMatrix y(in.act, in.m, in.n);
  y.poison();
  gemm(p.x.ref(), p.packed, y.mut(), plan);
  EXPECT_EQ(test::check_output(p, y, plan.strategy, "plan"), 0);
}

// --- limits (docs/guarantees.md, "Calls"): every count and size checked where it enters ----------

ErrorCode error_code_of(const std::function<void()>& call) {
  try {
    call();
  } catch (const Error& e) {
    return e.code();
  }
  ADD_FAILURE() << "the call succeeded";
  return ErrorCode::internal;
}

// Threads are capped at kMaxThreads before anything is listed: `plan 1 4096 4096 --threads
// 2147483647` grew to 24 GB (T - 1 pipelined role splits), --threads 100000 cost 410 MB.
TEST(PlannerLimits, ThreadCountsPastTheMaximumAreRefusedBeforeAnythingIsListed) {
  const QuantizedLayout layout{4096, 4096, 128, ZeroMode::sym, DType::bf16};
  for (const int threads : {kMaxThreads + 1, 100000, std::numeric_limits<int>::max()}) {
    const long long growth = test::peak_growth([&] {
      GemmOptions o;
      o.threads = threads;
      EXPECT_EQ(error_code_of([&] { plan_candidates(1, layout, DType::bf16, o); }), ErrorCode::invalid_argument);
      o = {};
      o.vector_threads = threads;
      EXPECT_EQ(error_code_of([&] { plan_candidates(1, layout, DType::bf16, o); }), ErrorCode::invalid_argument);
      o = {};
      o.split_k = threads;
      EXPECT_EQ(error_code_of([&] { plan_candidates(1, layout, DType::bf16, o); }), ErrorCode::invalid_argument);
    });
    if (!test::kSanitized && growth >= 0) {
      EXPECT_LT(growth, 16 << 20) << threads << " threads";
    }
  }
  GemmOptions o;
  o.threads = kMaxThreads;  // the maximum itself is planned: each split factor with every role split
  o.strategy = Strategy::pipelined;
  const size_t count = plan_candidates(1, layout, DType::bf16, o).size();
  EXPECT_TRUE(count > 0 && count % size_t(kMaxThreads - 1) == 0) << count;
}

// Sizes: M, K, N and their products are checked before the planner derives anything from them
// (`plan 3000000000 3000000000 3000000000` printed a negative workspace, M = 2^62 a workspace of
// 0, M = 2^63 - 1 "internal", K > 2^31 - 1 was planned though no weight can have it).
TEST(PlannerLimits, SizesPastTheLimitsAreInvalidArgumentNeverInternalOrOverflowed) {
  const auto layout = [](int64_t k, int64_t n) { return QuantizedLayout{n, k, 128, ZeroMode::sym, DType::bf16}; };
  const int64_t huge = 3'000'000'000;
  const std::vector<std::pair<int64_t, QuantizedLayout>> refused = {
      {huge, layout(huge, huge)},
      {int64_t(1) << 62, layout(4096, 4096)},
      {std::numeric_limits<int64_t>::max(), layout(4096, 4096)},
      {1, layout(int64_t(INT32_MAX) + 1, 64)},
      {1, layout(4096, int64_t(1) << 40)},
      {0, layout(4096, 4096)},
      {1, layout(4096, -1)}};
  for (const auto& [device, summary] : plan_devices()) {
    for (const auto& [m, l] : refused) {
      EXPECT_EQ(error_code_of([&] { plan_candidates(m, l, DType::bf16, {}, device); }), ErrorCode::invalid_argument)
          << device << " M=" << m << " K=" << l.k << " N=" << l.n;
    }
  }
  const auto p = test::prepare({.m = 1, .k = 256, .n = 64, .g = 128, .zero = ZeroMode::sym, .act = DType::bf16}, 5);
  for (const int64_t m : {int64_t(1) << 62, std::numeric_limits<int64_t>::max()}) {
    EXPECT_EQ(error_code_of([&] { plan_candidates(m, p.packed, DType::bf16); }), ErrorCode::invalid_argument) << m;
  }
  // At the limit every size the planner derives is positive.
  const int64_t m = kMaxGemmElements / 4096;
  for (const auto& plan : plan_candidates(m, layout(4096, 4096), DType::bf16)) {
    EXPECT_GT(plan.workspace_bytes, 0) << to_string(plan.strategy);
    EXPECT_TRUE(std::isfinite(plan.predicted_s) && plan.predicted_s > 0);
  }
}

// A 4-core CPU with the dev machine's per-core figures.
Device realistic_cpu() {
  Device real = ideal_cpu(4);
  real.read_bw = {{1, 17e9}, {2, 33e9}, {4, 60e9}};
  real.core_read_bw = 17e9;
  real.matrix_flops = 176e9;
  real.vector_ops = real.matrix_flops / 32;
  real.local_bw = 176e9;
  real.llc_bw = 300e9;
  real.launch_s = 4e-6;
  return real;
}

// On a tile table (amx) the planner lists the tile entries and those of the vector table it falls
// back to, all under the tile table (the one in force), and the device's tile rate decides: a
// tile unit at the measured 3.4 TFLOP/s per core wins from M = 1 (the model: its dequantization
// on the vector unit is shorter than the vector FMAs), a slow one loses to AVX-512. Planning needs
// no AMX: the table is only read here.
TEST(Planner, OnATileTableTheCostModelChoosesBetweenTilesAndVectors) {
  const cpu::KernelTable& amx = cpu::kernel_table("amx");
  ASSERT_TRUE(amx.tiles);
  for (int64_t m : {1, 16, 128}) {
    const Problem p{.m = m, .k = 4096, .n = 4096, .group_size = 128, .act = DType::bf16};
    const auto chosen_tiles = [&](double tile_flops) {
      Device d = realistic_cpu();
      d.tile_flops = tile_flops;
      const auto plans = plan::cpu_plans(d, p, plan::cpu_target(p, amx), {.strategy = Strategy::fused});
      bool tiles = false, vectors = false;
      for (const auto& g : plans) {
        EXPECT_EQ(g.table, &amx) << g.kernel;
        EXPECT_EQ(g.isa, "amx") << g.kernel;
        (g.q4->isa->tiles ? tiles : vectors) = true;
      }
      EXPECT_TRUE(tiles && vectors) << "both units are candidates, M=" << m;
      const auto it = std::find_if(plans.begin(), plans.end(), [](const GemmPlan& g) { return g.chosen; });
      return it != plans.end() && it->q4->isa->tiles;
    };
    EXPECT_TRUE(chosen_tiles(3.4e12)) << "M=" << m;
    EXPECT_FALSE(chosen_tiles(1e9)) << "M=" << m;
  }
}

// Every candidate is runnable (its split points on group boundaries, within the units, threads
// within the machine), and the choice is the argmin of the candidates' own predictions.
TEST(Planner, CandidatesAreValidAndTheChoiceIsTheirArgmin) {
  const Device real = realistic_cpu();
  const auto& kt = cpu::active_kernels();
  for (int64_t m : {1, 5, 64}) {
    for (int64_t k : {1000, 4096}) {
      for (int64_t n : {64, 200, 4096}) {
        const Problem p{.m = m, .k = k, .n = n, .group_size = 128, .act = DType::bf16};
        const auto target = plan::cpu_target(p, kt);
        const auto plans = plan::cpu_plans(real, p, target, {});
        ASSERT_FALSE(plans.empty());
        int chosen = 0;
        double best = std::numeric_limits<double>::infinity();
        for (const auto& g : plans) {
          SCOPED_TRACE(std::to_string(m) + "x" + std::to_string(k) + "x" + std::to_string(n) + " " + g.kernel);
          EXPECT_GE(g.split_k, 1);
          EXPECT_LE(g.split_k, g.strategy == Strategy::dense ? target.chunks : target.groups);
          EXPECT_GE(g.threads, 1);
          EXPECT_LE(g.threads, real.cores);
          EXPECT_GT(g.predicted_s, 0);
          if (g.strategy == Strategy::pipelined) {
            EXPECT_TRUE(g.vector_threads >= 1 && g.vector_threads < g.threads);
          }
          if (g.strategy != Strategy::dense) best = std::min(best, g.predicted_s);
          chosen += g.chosen;
        }
        EXPECT_EQ(chosen, 1);
        for (const auto& g : plans) {
          if (!g.chosen) continue;
          EXPECT_NE(g.strategy, Strategy::dense) << "the dense baseline is never chosen for a quantized weight";
          EXPECT_EQ(g.predicted_s, best);
        }
      }
    }
  }
}

TEST(Planner, ForcedOptionsRestrictTheCandidates) {
  const auto& kt = cpu::active_kernels();
  const Problem p{.m = 3, .k = 2048, .n = 128, .group_size = 64, .act = DType::f16};
  GemmOptions o;
  o.strategy = Strategy::decoupled;
  o.partition = Partition::split_k;
  o.split_k = 5;
  o.threads = 1;
  const auto plans = plan::cpu_plans(realistic_cpu(), p, plan::cpu_target(p, kt), o);
  for (const auto& g : plans) {
    EXPECT_EQ(g.strategy, Strategy::decoupled);
    EXPECT_EQ(g.partition, Partition::split_k);
    EXPECT_EQ(g.split_k, 5);
    EXPECT_EQ(g.threads, 1);
  }
  o.split_k = 1000;  // clamped to the 32 groups, and said so
  const auto clamped = plan::cpu_plans(realistic_cpu(), p, plan::cpu_target(p, kt), o);
  EXPECT_EQ(clamped.front().split_k, 32);
  EXPECT_NE(clamped.front().notes.find("clamped"), std::string::npos);
}

// Under the passive wait policy a parallel call wakes sleeping workers, and the planner charges
// the wake-up (Device::wake_s, calibrated): a small decode call (576 x 576, SmolLM2's attention)
// runs on the caller's thread alone, a large one (4096 x 14336) still on every core.
TEST(Planner, PassiveWaitPolicyChargesTheWakeUp) {
  const auto& kt = cpu::active_kernels();
  Device d = realistic_cpu();
  d.wake_s = 60e-6;
  const auto chosen = [&](int64_t k, int64_t n) {
    const Problem p{.m = 1, .k = k, .n = n, .group_size = 64, .act = DType::bf16};
    for (const auto& g : plan::cpu_plans(d, p, plan::cpu_target(p, kt), {})) {
      if (g.chosen) return g.threads;
    }
    return 0;
  };
  const int spin = worker_spin_us();
  set_worker_spin_us(300);
  EXPECT_EQ(chosen(576, 576), 4);
  set_worker_spin_us(0);
  EXPECT_EQ(chosen(576, 576), 1);
  EXPECT_EQ(chosen(4096, 14336), 4);
  // Parts on a caller's runner (GemmOptions::runner) wake none of w4a16's workers: no wake-up charged.
  GemmOptions on_runner;
  on_runner.runner = ParallelRunner{[](void*, int parts, void (*part)(void*, int), void* ctx) {
                                      for (int i = 0; i < parts; ++i) part(ctx, i);
                                    },
                                    nullptr, 4};
  const Problem small{.m = 1, .k = 576, .n = 576, .group_size = 64, .act = DType::bf16};
  int threads = 0;
  for (const auto& g : plan::cpu_plans(d, small, plan::cpu_target(small, kt), on_runner)) {
    if (g.chosen) threads = g.threads;
  }
  EXPECT_EQ(threads, 4);
  set_worker_spin_us(spin);
}

// A plan is a value: planned once, it runs the same as the options it came from, and a plan for
// another shape or dtype is refused.
TEST(Planner, PlansRunAsValuesAndRefuseOtherShapes) {
  test::KernelInput in;
  in.m = 7, in.k = 640 + 24, in.n = 150, in.g = 64, in.zero = ZeroMode::asym, in.act = DType::bf16;
  const auto p = test::prepare(in, 77);
  for (const auto& plan : plan_candidates(in.m, p.packed, in.act)) {
    SCOPED_TRACE(plan.kernel + " " + std::string(to_string(plan.strategy)));
    test::HostMatrix y(in.act, in.m, in.n);
    y.poison();
    gemm(p.x.ref(), p.packed, y.mut(), plan);
    EXPECT_EQ(test::check_output(p, y, plan.strategy, "plan"), 0);
  }
  const GemmPlan chosen = plan_gemm(in.m, p.packed, in.act);
  test::HostMatrix by_plan(in.act, in.m, in.n), by_options(in.act, in.m, in.n);
  gemm(p.x.ref(), p.packed, by_plan.mut(), chosen);
  gemm(p.x.ref(), p.packed, by_options.mut());
  EXPECT_EQ(by_plan.bits, by_options.bits) << "auto runs the planner's choice";

  GemmPlan other = chosen;
  other.m = in.m + 1;
  test::HostMatrix y(in.act, in.m, in.n);
  EXPECT_THROW(gemm(p.x.ref(), p.packed, y.mut(), other), Error);
  other = chosen;
  other.q4 = nullptr;
  other.dense = nullptr;
  EXPECT_THROW(gemm(p.x.ref(), p.packed, y.mut(), other), Error);
  other = chosen;
  other.table = nullptr;  // not the active table
  EXPECT_THROW(gemm(p.x.ref(), p.packed, y.mut(), other), Error);
}

TEST(Planner, ModeledDevicesPlanWithoutRunning) {
  QuantizedLayout layout;
  layout.k = 14336;
  layout.n = 1024;
  layout.group_size = 128;
  for (const auto& [name, summary] : plan_devices()) {
    SCOPED_TRACE(name);
    EXPECT_FALSE(summary.empty());
    const auto plans = plan_candidates(16, layout, DType::f16, {}, name);
    ASSERT_FALSE(plans.empty());
    int chosen = 0;
    for (const auto& g : plans) chosen += g.chosen;
    EXPECT_EQ(chosen, 1);
  }
  EXPECT_THROW(plan_candidates(16, layout, DType::f16, {}, "tpu"), Error);
}

// `w4a16 calibrate`'s cache: written, read back on the same CPU, and ignored when damaged.
TEST(CpuDevice, CalibrationCacheRoundTripsAndDamageIsIgnored) {
  const auto path = std::filesystem::temp_directory_path() / ("w4a16-cal-" + std::to_string(::getpid()) + ".json");
  ::setenv("W4A16_CALIBRATION", path.c_str(), 1);
  plan::devices::CpuCalibration c;
  c.cpu = cpu::cpu_features().brand.empty() ? cpu::cpu_features().vendor : cpu::cpu_features().brand;
  c.threads = cpu::available_cpus();
  c.read_gbps = {{1, 12.5}, {2, 20.0}};
  c.fma_gflops = {{1, 100.0}};
  c.dot_gflops = {};
  c.tile_gflops = {{1, 3000.0}, {2, 5900.0}};
  c.tile_dequant_gweights = {{1, 60.0}, {2, 118.0}};
  c.fork_join_us = 3.5;
  c.incore_scale["decoupled"] = {{{1, 4}, 1.75}, {{2, 64}, 2.5}};
  plan::devices::save_calibration(c);
  const auto back = plan::devices::load_calibration();
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->read_gbps, c.read_gbps);
  EXPECT_EQ(back->tile_gflops, c.tile_gflops);
  EXPECT_EQ(back->tile_dequant_gweights, c.tile_dequant_gweights);
  EXPECT_EQ(back->fork_join_us, 3.5);
  EXPECT_EQ(back->incore_scale, c.incore_scale);
  const Device d = plan::devices::this_cpu();
  EXPECT_DOUBLE_EQ(d.read_bw.at(2), 20e9);
  EXPECT_DOUBLE_EQ(d.launch_s, 3.5e-6);
  // The tile rate counts only where the amx kernels are offered.
  EXPECT_DOUBLE_EQ(d.tile_flops, cpu::tile_access().granted ? 3000e9 : 0.0);
  EXPECT_DOUBLE_EQ(d.dequant_weights_per_s, cpu::tile_access().granted ? 60e9 : 0.0);
  EXPECT_DOUBLE_EQ(d.incore_scale_at("decoupled", 1, 4), 1.75);
  for (const char* damaged : {"{", "{\"version\": 2}", "[]", "{\"version\": 2, \"cpu\": 3}"}) {
    std::ofstream(path) << damaged;
    EXPECT_FALSE(plan::devices::load_calibration().has_value()) << damaged;
  }
  plan::devices::save_calibration(c);  // a scale out of range: the whole file is ignored
  {
    std::ifstream in(path);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    text.replace(text.find("1.75"), 4, "-1.75");
    std::ofstream(path) << text;
  }
  EXPECT_FALSE(plan::devices::load_calibration().has_value());
  c.cpu = "another CPU";  // measured elsewhere: not trusted here
  plan::devices::save_calibration(c);
  EXPECT_FALSE(plan::devices::load_calibration().has_value());
  std::filesystem::remove(path);
  ::unsetenv("W4A16_CALIBRATION");
}

// A calibration measured in the process (`bench --validate-model`) replaces the file and the
// plans cached with the old description; std::nullopt goes back.
TEST(CpuDevice, ACalibrationGivenInTheProcessReplacesTheDescription) {
  plan::devices::CpuCalibration c;
  c.cpu = "given";
  c.threads = cpu::available_cpus();
  c.read_gbps = {{1, 1.0}};  // 1 GB/s: every M = 1 plan is the weight read
  c.fma_gflops = {{1, 100.0}};
  c.fork_join_us = 2.0;
  plan::use_cpu_calibration(c);
  const QuantizedLayout layout{
      .n = 64, .k = 1024, .group_size = 128, .zero_mode = ZeroMode::sym, .scale_dtype = DType::bf16};
  GemmOptions o;
  o.strategy = Strategy::fused;
  o.threads = 1;
  const auto plans = plan_candidates(1, layout, DType::bf16, o, "cpu");
  ASSERT_FALSE(plans.empty());
  const double bytes = 64.0 * (1024 / 2 + 8 * 2);
  EXPECT_GE(plans.front().predicted_s, bytes / 1e9);
  EXPECT_NE(plan::cpu_device()->summary.find("measured in this run"), std::string::npos);
  plan::use_cpu_calibration(std::nullopt);
  EXPECT_EQ(plan::cpu_device()->summary.find("measured in this run"), std::string::npos);
  EXPECT_LT(plan_candidates(1, layout, DType::bf16, o, "cpu").front().predicted_s, bytes / 1e9);
}

// Decoupled runs each item out of an L2 panel: splits whose single item exceeds the panel budget
// are not candidates while a larger split fits (K = 14336: one item is 1.75 MiB of bf16, half of it
// fits the default 1 MiB), and are when nothing else fits (a larger budget, data-parallel forced).
TEST(Planner, DecoupledItemsKeepTheirPanelWithinTheBudget) {
  const Problem p{.m = 64, .k = 14336, .n = 4096, .group_size = 128, .act = DType::bf16};
  const auto target = plan::cpu_target(p, cpu::active_kernels());
  const auto splits = [&](GemmOptions o) {
    o.strategy = Strategy::decoupled;
    std::set<int> out;
    for (const auto& g : plan::cpu_plans(realistic_cpu(), p, target, o)) out.insert(g.split_k);
    return out;
  };
  const std::set<int> fitting = splits({});
  EXPECT_FALSE(fitting.empty());
  EXPECT_EQ(fitting.count(1), 0u) << "a 1.75 MiB panel per item against a 1 MiB budget";
  EXPECT_TRUE(splits({.decoupled_panel_bytes = int64_t(4) << 20}).count(1)) << "a 4 MiB budget holds it";
  EXPECT_EQ(splits({.partition = Partition::data_parallel}), std::set<int>{1}) << "nothing else allowed";
}

}  // namespace
}  // namespace w4a16
