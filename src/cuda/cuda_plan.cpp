#include "cuda/cuda_plan.hpp"

#include <algorithm>

#include "common/check.hpp"

namespace w4a16::cuda {

namespace {

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
int64_t align256(int64_t bytes) { return ceil_div(bytes, 256) * 256; }

// 16 rows per block while M is small (the weight stream is the whole cost); bigger tiles reuse
// each dequantized slab for more rows once M grows.
int tile_rows_for(int64_t m) { return m <= 16 ? 16 : m <= 32 ? 32 : 64; }

}  // namespace

int resident_blocks_per_sm(int tile_rows) { return tile_rows <= 16 ? 5 : tile_rows <= 32 ? 3 : 2; }

CudaLaunchPlan plan_cuda(const CudaShape& sh, const CudaGemmOptions& options) {
  require(options.split_k >= 0, "cuda: split_k must be >= 0, got {}", options.split_k);
  require(options.strategy != Strategy::pipelined,
          "cuda: the pipelined strategy is CPU-only (use fused, decoupled or dense)");
  require(sh.n_slabs <= kMaxGridYZ, "cuda: N = {} exceeds the fused kernel's grid ({} x 64 columns)", sh.n, kMaxGridYZ);
  CudaLaunchPlan lp;
  CudaPlan& p = lp.public_plan;
  p.strategy = options.strategy == Strategy::automatic ? Strategy::fused : options.strategy;
  p.tile_rows = tile_rows_for(sh.m);
  const int64_t m_tiles = std::max<int64_t>(ceil_div(sh.m, p.tile_rows), 1);
  const int64_t tiles = m_tiles * sh.n_slabs;
  const int64_t max_splits = std::max<int64_t>(sh.k_slabs / kMinSlabsPerSplit, 1);

  int64_t s = 1;
  if (p.strategy == Strategy::fused) {
    if (options.split_k > 0) {
      s = std::min<int64_t>({options.split_k, sh.k_slabs, kMaxGridYZ});
      if (options.split_k > s)
        p.notes += fmt::format("split_k {} clamped to {} (slabs of K, grid); ", options.split_k, s);
    } else if (options.partition != Partition::data_parallel) {
      // As many splits as fill one wave of resident blocks, never more: a second, partial wave
      // would leave SMs idle at the end (tiles x S slightly above the slots is the worst case).
      const int measured = sh.resident[p.tile_rows <= 16 ? 0 : p.tile_rows <= 32 ? 1 : 2];
      const int64_t slots =
          int64_t(std::max(sh.sms, 1)) * (measured > 0 ? measured : resident_blocks_per_sm(p.tile_rows));
      s = std::clamp<int64_t>(slots / tiles, 1, max_splits);
      if (options.partition == Partition::split_k) s = std::max<int64_t>(s, std::min<int64_t>(2, sh.k_slabs));
      p.notes += fmt::format("{} output tiles for {} resident blocks: S = {}; ", tiles, slots, s);
    }
    if (s > 1 && !options.atomic_split_k && tiles > kMaxCounterTiles) {
      p.notes += fmt::format("{} output tiles exceed the {} split-K counters: S = 1; ", tiles, kMaxCounterTiles);
      s = 1;
    }
    if (options.partition == Partition::data_parallel && options.split_k > 1) {
      fail(ErrorCode::invalid_argument, "cuda: split_k = {} with the data-parallel partition", options.split_k);
    }
  } else if (options.partition == Partition::split_k || options.split_k > 1) {
    fail(ErrorCode::invalid_argument, "cuda: split-K is a partition of the fused kernel, not of {} (cuBLAS)",
         to_string(p.strategy));
  }
  // Slices of whole slabs; recompute S so that none is empty.
  lp.slabs_per_split = ceil_div(sh.k_slabs, s);
  s = std::max<int64_t>(ceil_div(sh.k_slabs, lp.slabs_per_split), 1);
  p.split_k = int(s);
  p.partition = s > 1 ? Partition::split_k : Partition::data_parallel;
  p.atomic_split_k = s > 1 && options.atomic_split_k;
  p.blocks = p.strategy == Strategy::fused ? tiles * s : 0;

  const int64_t k_pad = sh.k_slabs * 16;
  lp.prepare_x = sh.has_perm || !sh.x_direct;
  lp.x_ld = lp.prepare_x ? k_pad : sh.k;
  const bool cublas_writes_y = sh.y_dtype == sh.act || sh.y_dtype == DType::f32;
  lp.bias_epilogue = p.strategy != Strategy::fused && (sh.has_bias || !cublas_writes_y);

  WorkspaceLayout& ws = lp.workspace;
  int64_t at = 0;
  auto region = [&](int64_t& offset, int64_t& bytes, int64_t want) {
    offset = at;
    bytes = want;
    at += align256(want);
  };
  region(ws.counters_offset, ws.counters_bytes, kMaxCounterTiles * 4);
  region(ws.x_offset, ws.x_bytes, lp.prepare_x ? sh.m * k_pad * 2 : 0);
  int64_t partials = 0;
  if (p.partition == Partition::split_k) partials = (p.atomic_split_k ? 1 : s) * sh.m * sh.n * 4;
  if (lp.bias_epilogue) partials = sh.m * sh.n * 4;
  region(ws.partials_offset, ws.partials_bytes, partials);
  region(ws.w16_offset, ws.w16_bytes, p.strategy == Strategy::decoupled ? sh.n * k_pad * 2 : 0);
  region(ws.cublas_offset, ws.cublas_bytes, p.strategy == Strategy::fused ? 0 : kCublasWorkspaceBytes);
  ws.total = at;
  p.workspace_bytes = at;
  if (lp.prepare_x) p.notes += sh.has_perm ? "x gathered by the act-order permutation; " : "x copied to 16-byte rows; ";
  if (!p.notes.empty()) p.notes.resize(p.notes.size() - 2);
  return lp;
}

}  // namespace w4a16::cuda
