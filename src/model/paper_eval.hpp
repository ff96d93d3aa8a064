// The paper's evaluation on a modeled device: for one shape and batch size, the candidate plans of
// each strategy and partition (built here, as the executor would run them on that device), each
// predicted with the cost model (plan/cost_model.hpp), and the best of each family kept.
//
//   decoupled W4A16  the paper's pipeline: dequantize into a global-memory workspace, then the matrix
//                    engine multiplies (on the 910B: AIVs produce, their AIC consumes); best
//                    data-parallel and best split-K candidate, kept apart (the paper's comparison)
//   FP16 baseline    Strategy::dense on the same device, 2 bytes per weight, best of both partitions
//   fused W4A16      Strategy::fused on the same device with fused_possible forced true: what a fused
//                    design would give where the hardware had a path (on the 910B it has none)
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/paper_suite.hpp"
#include "plan/cost_model.hpp"

namespace w4a16::model {

struct EvalConfig {
  int64_t group_size = 128;  // g of the int4 weight (the paper does not state it; 128 is the usual choice)
  ZeroMode zero_mode = ZeroMode::sym;
  DType act = DType::f16;  // the paper's activations
  int64_t tile_n = 0;      // output columns per work item; 0 = the device's default (default_tile_n)
  int max_split = 32;      // split-K factors tried: 2 .. max_split (and at most one group per slice)
  int force_split = 0;     // > 0: the W4A16 candidates use exactly this S (1 = data-parallel only)
};

// Output columns per work item when EvalConfig::tile_n is 0: the device's Device::tile_n: the
// 910B's base block (256 columns fill L0B at 128 rows of K), 128 on a GPU (a thread block's tile), 64
// on a CPU (the kernels' tile).
int64_t default_tile_n(const plan::Device& device);

// The candidates of one strategy and partition for this problem on this device. split_k = 0 means
// every S the config allows; data_parallel ignores it.
std::vector<plan::Candidate> make_candidates(const plan::Device& device, const plan::Problem& problem,
                                             Strategy strategy, Partition partition, const EvalConfig& config,
                                             int split_k = 0);

struct Choice {
  plan::Candidate candidate;
  plan::Prediction prediction;
  double ms() const { return prediction.seconds * 1e3; }
};

// The fastest of the candidates (the first on ties). Throws Error(internal) when there are none.
Choice best_of(const plan::Device& device, const plan::Problem& problem,
               const std::vector<plan::Candidate>& candidates);

struct ShapeEval {
  ModelShape shape;
  int64_t m = 1;
  Choice dp;      // decoupled W4A16, data-parallel
  Choice splitk;  // decoupled W4A16, best split-K (absent when force_split = 1: then a copy of dp)
  Choice fp16;    // dense 16-bit weight, best partition
  Choice fused;   // fused W4A16 with fused_possible forced true, best partition

  const Choice& w4a16() const { return splitk.prediction.seconds < dp.prediction.seconds ? splitk : dp; }
  double splitk_speedup() const { return dp.prediction.seconds / splitk.prediction.seconds; }
  double w4a16_vs_fp16() const { return fp16.prediction.seconds / w4a16().prediction.seconds; }
  double fused_vs_fp16() const { return fp16.prediction.seconds / fused.prediction.seconds; }
};

// The device with another HBM bandwidth (`--hbm-gbps`, the sensitivity table): the aggregate read curve
// rebuilt with the same per-core limit, and the write bandwidth set to it. L2 is on-chip and unchanged.
plan::Device with_hbm_bandwidth(const plan::Device& device, double bytes_per_s);
// The HBM bandwidth a description assumes: its aggregate read bandwidth with every core busy.
double hbm_bandwidth(const plan::Device& device);

plan::Problem make_problem(const ModelShape& shape, int64_t m, const EvalConfig& config, bool quantized = true);
ShapeEval evaluate(const plan::Device& device, const ModelShape& shape, int64_t m, const EvalConfig& config);
std::vector<ShapeEval> evaluate_suite(const plan::Device& device, const ModelSuite& suite, const EvalConfig& config);

// The numbers the paper states, from a suite's evaluations.
struct SuiteSummary {
  double best_vs_fp16 = 0;                // max over the suite of FP16 time / decoupled W4A16 time
  size_t best_index = 0;                  // the evaluation where it occurs
  double splitk_min = 0, splitk_max = 0;  // split-K over data-parallel, over the K >> N evaluations
  size_t splitk_count = 0;                // how many K >> N evaluations there are
  size_t splitk_wins = 0;                 // ... and in how many split-K is faster
  double best_fused_vs_fp16 = 0;          // max over the suite of FP16 time / fused time
};
SuiteSummary summarize(const std::vector<ShapeEval>& evals);

}  // namespace w4a16::model
