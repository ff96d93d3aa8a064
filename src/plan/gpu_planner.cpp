// The GPU planner's rules. The fused kernel fills one wave of resident blocks and no more; cuBLAS
// strategies (decoupled, dense) are never split.
#include "plan/gpu_planner.hpp"

#include <algorithm>

#include "common/check.hpp"
#include "cuda/kernels.hpp"

namespace w4a16::plan {

namespace {

using cuda::CudaShape;

// 16 rows per block while M is small (the weight stream is the whole cost); bigger tiles reuse
// each dequantized slab for more rows once M grows.
int tile_rows_for(int64_t m) { return m <= 16 ? 16 : m <= 32 ? 32 : 64; }

// S for the fused kernel, with a note per decision appended to `p.notes`.
int64_t fused_split(const CudaShape& sh, const CudaGemmOptions& options, CudaPlan& p) {
  const int64_t tiles = cuda::output_tiles(sh, p.tile_rows);
  const int64_t max_splits = std::max<int64_t>(sh.k_slabs / cuda::kMinSlabsPerSplit, 1);
  int64_t s = 1;
  if (options.split_k > 0) {
    s = std::min<int64_t>({options.split_k, sh.k_slabs, cuda::kMaxGridYZ});
    if (options.split_k > s)
      p.notes += fmt::format("split_k {} clamped to {} (slabs of K, grid); ", options.split_k, s);
  } else if (options.partition != Partition::data_parallel) {
    // As many splits as fill one wave of resident blocks, never more: a second, partial wave
    // would leave SMs idle at the end (tiles x S slightly above the slots is the worst case).
    const int64_t slots = int64_t(std::max(sh.sms, 1)) * cuda::resident_blocks(sh, p.tile_rows);
    s = std::clamp<int64_t>(slots / tiles, 1, max_splits);
    if (options.partition == Partition::split_k) s = std::max<int64_t>(s, std::min<int64_t>(2, sh.k_slabs));
    p.notes += fmt::format("{} output tiles for {} resident blocks: S = {}; ", tiles, slots, s);
  }
  if (s > 1 && !options.atomic_split_k && tiles > cuda::kMaxCounterTiles) {
    p.notes += fmt::format("{} output tiles exceed the {} split-K counters: S = 1; ", tiles, cuda::kMaxCounterTiles);
    s = 1;
  }
  if (options.partition == Partition::data_parallel && options.split_k > 1) {
    fail(ErrorCode::invalid_argument, "cuda: split_k = {} with the data-parallel partition", options.split_k);
  }
  return s;
}

}  // namespace

cuda::CudaLaunchPlan plan_cuda(const CudaShape& sh, const CudaGemmOptions& options) {
  require(options.split_k >= 0 && options.split_k <= kMaxThreads, "cuda: split_k must be in [0, {}], got {}",
          kMaxThreads, options.split_k);
  require(options.strategy != Strategy::pipelined,
          "cuda: the pipelined strategy is CPU-only (use fused, decoupled or dense)");
  require(sh.n_slabs <= cuda::kMaxGridYZ, "cuda: N = {} exceeds the fused kernel's grid ({} x 64 columns)", sh.n,
          cuda::kMaxGridYZ);
  CudaPlan p;
  p.strategy = options.strategy == Strategy::automatic ? Strategy::fused : options.strategy;
  p.tile_rows = tile_rows_for(sh.m);
  p.atomic_split_k = options.atomic_split_k;
  if (p.strategy == Strategy::fused) {
    p.split_k = int(fused_split(sh, options, p));
  } else if (options.partition == Partition::split_k || options.split_k > 1) {
    fail(ErrorCode::invalid_argument, "cuda: split-K is a partition of the fused kernel, not of {} (cuBLAS)",
         to_string(p.strategy));
  }
  return cuda::lay_out(sh, std::move(p));
}

}  // namespace w4a16::plan
