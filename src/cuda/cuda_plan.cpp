// The launch geometry of a chosen CUDA plan (cuda_plan.hpp): K slices of whole slabs, the prepared x,
// the bias epilogue and the workspace regions, each 256-byte aligned.
#include "cuda/cuda_plan.hpp"

#include <algorithm>

#include "common/check.hpp"

namespace w4a16::cuda {

namespace {

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
int64_t align256(int64_t bytes) { return ceil_div(bytes, 256) * 256; }

// The regions of the caller's CudaWorkspace, in this order: counters, prepared x, fp32 partials, the
// decoupled 16-bit W, cuBLAS's own workspace.
WorkspaceLayout workspace_layout(const CudaShape& sh, const CudaLaunchPlan& lp) {
  const CudaPlan& p = lp.public_plan;
  const int64_t k_pad = sh.k_slabs * 16;
  WorkspaceLayout ws;
  int64_t at = 0;
  auto region = [&](int64_t& offset, int64_t& bytes, int64_t want) {
    offset = at;
    bytes = want;
    at += align256(want);
  };
  region(ws.counters_offset, ws.counters_bytes, kMaxCounterTiles * 4);
  region(ws.x_offset, ws.x_bytes, lp.prepare_x ? sh.m * k_pad * 2 : 0);
  int64_t partials = 0;
  if (p.partition == Partition::split_k) partials = (p.atomic_split_k ? 1 : p.split_k) * sh.m * sh.n * 4;
  if (lp.bias_epilogue) partials = sh.m * sh.n * 4;
  region(ws.partials_offset, ws.partials_bytes, partials);
  region(ws.w16_offset, ws.w16_bytes, p.strategy == Strategy::decoupled ? sh.n * k_pad * 2 : 0);
  region(ws.cublas_offset, ws.cublas_bytes, p.strategy == Strategy::fused ? 0 : kCublasWorkspaceBytes);
  ws.total = at;
  return ws;
}

}  // namespace

int resident_blocks_per_sm(int tile_rows) { return tile_rows <= 16 ? 5 : tile_rows <= 32 ? 3 : 2; }

int resident_blocks(const CudaShape& sh, int tile_rows) {
  const int measured = sh.resident[tile_rows <= 16 ? 0 : tile_rows <= 32 ? 1 : 2];
  return measured > 0 ? measured : resident_blocks_per_sm(tile_rows);
}

int64_t output_tiles(const CudaShape& sh, int tile_rows) {
  return std::max<int64_t>(ceil_div(sh.m, tile_rows), 1) * sh.n_slabs;
}

CudaLaunchPlan lay_out(const CudaShape& sh, CudaPlan chosen) {
  CudaLaunchPlan lp;
  CudaPlan& p = lp.public_plan = std::move(chosen);
  // Slices of whole slabs; recompute S so that none is empty.
  lp.slabs_per_split = ceil_div(sh.k_slabs, std::max(p.split_k, 1));
  const int64_t s = std::max<int64_t>(ceil_div(sh.k_slabs, lp.slabs_per_split), 1);
  p.split_k = int(s);
  p.partition = s > 1 ? Partition::split_k : Partition::data_parallel;
  p.atomic_split_k = s > 1 && p.atomic_split_k;
  p.blocks = p.strategy == Strategy::fused ? output_tiles(sh, p.tile_rows) * s : 0;

  lp.prepare_x = sh.has_perm || !sh.x_direct;
  lp.x_ld = lp.prepare_x ? sh.k_slabs * 16 : sh.k;
  const bool cublas_writes_y = sh.y_dtype == sh.act || sh.y_dtype == DType::f32;
  lp.bias_epilogue = p.strategy != Strategy::fused && (sh.has_bias || !cublas_writes_y);

  lp.workspace = workspace_layout(sh, lp);
  p.workspace_bytes = lp.workspace.total;
  if (lp.prepare_x) p.notes += sh.has_perm ? "x gathered by the act-order permutation; " : "x copied to 16-byte rows; ";
  if (!p.notes.empty()) p.notes.resize(p.notes.size() - 2);
  return lp;
}

}  // namespace w4a16::cuda
