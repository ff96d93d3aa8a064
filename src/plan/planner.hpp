// The planner: enumerates the candidate plans of one call, predicts each with the cost model
// and sorts them; the first choosable one is the plan. Deciding only: the executor
// (cpu/executor.hpp) runs a plan and decides nothing.
#pragma once

#include <vector>

#include "cpu/kernels.hpp"
#include "cpu/packed_weight.hpp"
#include "plan/cost_model.hpp"
#include "plan/device.hpp"

namespace w4a16::plan {

// What the CPU executor can run for one weight: its kernel table and the weight's geometry as
// the kernels see it (packed_weight.hpp).
struct CpuTarget {
  const cpu::KernelTable* table = nullptr;
  bool quantized = true;
  int64_t kernel_group = 128;       // g, or kPerChannelGroup for a per-channel weight
  int64_t groups = 1;               // split units of the int4 strategies
  int64_t chunks = 1;               // split units of the dense strategy (8-wide K chunks)
  int64_t k_padded = 8;             // K' (groups padded to whole chunks)
  DType dense_dtype = DType::bf16;  // dense / decoupled weight dtype
  bool bf16_dot = false;            // bf16 x goes to the dot entries (dispatch.hpp prefer_bf16_dot)
};
CpuTarget cpu_target(const PackedWeight::Impl& w, const cpu::KernelTable& table, DType act);
// The target of a shape without a weight (`w4a16 plan M K N`): the layout pack() would make.
// Throws Error(invalid_argument) unless the problem is within the limits of w4a16.hpp (kMaxGemmElements,
// K <= INT32_MAX, positive sizes, fp16/bf16 activations); every planner entry calls it first.
void check_problem(const Problem& p);
CpuTarget cpu_target(const Problem& p, const cpu::KernelTable& table);

// The rows of x per pass over the weight (the executor's row panels): x's rows must stay in L2
// while the tiles stream past; docs/kernels.md "Row panels".
int64_t row_panel_count(int64_t m, int64_t k_padded, XFormat x);

// Every candidate meeting `options`, predicted and sorted (fastest first); the first choosable
// one is marked `chosen`. CPU: the plans the executor can run on `target`; other devices: the
// model's plans (`w4a16 plan --device`), not runnable here.
std::vector<GemmPlan> cpu_plans(const Device& device, const Problem& problem, const CpuTarget& target,
                                const GemmOptions& options);
std::vector<GemmPlan> accelerator_plans(const Device& device, const Problem& problem, const GemmOptions& options);

// A modeled device's output tile per core (Device::tile_n): a GPU kernel's CTA tile, the 910B's L0B
// base block, the CPU's 64.
int64_t accelerator_tile_n(const Device& device);
// One candidate on a modeled device: the cores its items keep busy, on the 910B each AIC with its
// AIVs as the vector role of the decoupled pipeline (a MIX kernel), and its workspace (the ring in
// global memory, the split-K partial sums). What `w4a16 plan --device` and `w4a16 model` predict.
Candidate accelerator_candidate(const Device& device, const Problem& problem, Strategy strategy, int64_t tile_n,
                                int split_k);

// The model's Candidate for a plan (what `predict` is given), for tools that re-predict a plan.
Candidate candidate_of(const GemmPlan& plan, const Device& device);

}  // namespace w4a16::plan
