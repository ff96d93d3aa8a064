// The CPU executor: runs a plan, decides nothing. A plan (GemmPlan, public) holds its registry
// entries; exec_plan() checks it against the weight and copies what the stages read into an
// ExecPlan (no lookups, no names), and execute() runs the named stages of one call:
//
//   prepare_activations  x permuted (act-order), padded to K' and widened to fp32, unless the
//                        bf16-dot entries can read it in place; rows kept off one L1 set for tiles
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

// The decoupled strategy's panel budget per thread when GemmOptions leaves it 0: half of a 2 MB L2,
// so that the dequantized panel is still there when the dense kernel reads it.
inline constexpr int64_t kDefaultPanelBytes = int64_t(1) << 20;

struct ExecPlan {
  Strategy strategy = Strategy::fused;
  bool split = false;  // partials + reduction (split-K with S > 1, and every pipelined plan)
  int split_k = 1;
  int threads = 1;
  int vector_threads = 0;
  XFormat x_format = XFormat::f32;
  int64_t x_block_rows = 1;  // the most rows of x the entries read at once (their MR): x_rows_apart()
                             // of kernels.hpp says whether x is copied with rows one cache line apart
  DType dense_dtype = DType::bf16;
  Q4Kernel q4 = nullptr;
  DenseKernel dense = nullptr;
  DequantKernel dequant = nullptr;
  int64_t row_panels = 1;
  int64_t panel_bytes = kDefaultPanelBytes;  // decoupled: per-thread panel budget
};

// The executor's form of `plan` for weight `w`, checked: made for `active` (the table now in force),
// a concrete strategy, the entries its strategy needs with their dtypes. Throws Error
// (invalid_argument, or unsupported for a non-dense strategy on a dense-only weight).
ExecPlan exec_plan(const GemmPlan& plan, const PackedWeight::Impl& w, const KernelTable& active);

// Arguments already checked (check_gemm_args). The parallel stages run their parts on `runner`
// when it is set, else on the thread pool.
void execute(const MatrixRef& x, const PackedWeight::Impl& w, const MutableMatrixRef& y, const ExecPlan& plan,
             const ParallelRunner& runner = {});

}  // namespace w4a16::cpu
