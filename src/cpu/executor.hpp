// The CPU executor: runs a plan, decides nothing. A plan (GemmPlan, public) names registry
// entries; resolve() turns it into an ExecPlan of entry pointers once, and execute() runs the
// named stages of one call:
//
//   prepare_activations  x permuted (act-order), padded to K' and widened to fp32, unless the
//                        bf16-dot entries can read it in place
//   group_sums           sum of x over each group (asym / float zero only)
//   run_work_items       work items (column tile, K slice) dealt to threads in contiguous runs;
//                        fused / dense run their entry per item, decoupled dequantizes a batch of
//                        items into an L2 panel first, pipelined hands panels between roles
//   reduce_split_k       split-K partial tiles summed in slice order (deterministic for fixed S)
//   write_tile           bias, rounding to y's dtype
#pragma once

#include "cpu/kernels.hpp"
#include "cpu/packed_weight.hpp"

namespace w4a16::cpu {

struct ExecPlan {
  Strategy strategy = Strategy::fused;
  bool split = false;  // partials + reduction (split-K with S > 1, and every pipelined plan)
  int split_k = 1;
  int threads = 1;
  int vector_threads = 0;
  XFormat x_format = XFormat::f32;
  DType dense_dtype = DType::bf16;
  Q4Kernel q4 = nullptr;
  DenseKernel dense = nullptr;
  DequantKernel dequant = nullptr;
  int64_t row_panels = 1;
  int64_t panel_bytes = int64_t(1) << 20;  // decoupled: per-thread panel budget
};

// Looks the plan's entry names up in `table` (and the lower tables it falls back to, and the
// study's widen / stream entries). Throws Error(invalid_argument) for names it does not find.
ExecPlan resolve(const GemmPlan& plan, const PackedWeight::Impl& w, const KernelTable& table,
                 int64_t decoupled_panel_bytes);

// Arguments already checked (check_gemm_args).
void execute(const MatrixRef& x, const PackedWeight::Impl& w, const MutableMatrixRef& y, const ExecPlan& plan);

}  // namespace w4a16::cpu
