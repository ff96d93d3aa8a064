// What one CUDA gemm call runs: the launch plan the executor (cuda_executor.cpp) is handed, and the
// geometry that follows from a choice (K slices, prepared x, epilogue, workspace layout). Which
// strategy, tile and split factor to run is chosen by the GPU planner (plan/gpu_planner.hpp), the
// one place that decides; nothing here chooses. Plain C++, tested on every machine
// (tests/cuda/cuda_plan_test.cpp).
#pragma once

#include <cstdint>

#include "cuda/kernels.hpp"
#include "w4a16/w4a16.hpp"

namespace w4a16::cuda {

struct CudaShape {
  int64_t m = 0, k = 0, n = 0;
  int64_t n_slabs = 0, k_slabs = 0;  // ceil(N / 64), ceil(K / 16)
  int sms = 0;                       // streaming multiprocessors of the device
  bool has_perm = false;             // act-order: x is gathered first
  bool x_direct = false;             // x's rows are 16-byte aligned (K % 8 == 0, aligned base)
  bool has_bias = false;
  DType act = DType::f16;      // x's dtype (the weight's)
  DType y_dtype = DType::f16;  // y's: cuBLAS writes only act or fp32, another goes through fp32
  // Fused-kernel blocks resident per SM for tiles of 16, 32, 64 rows (the occupancy calculator on
  // this device); 0: resident_blocks_per_sm()'s estimate.
  int resident[3] = {0, 0, 0};
};

// An estimate of the fused kernel's blocks resident per SM for a tile of 16, 32 or 64 rows, used when
// the device's occupancy is unknown: shared memory (41, 58, 92 KiB of ~227) and registers (~80,
// ~128, ~218 x 128 threads of 64 Ki) allow 5, 3 and 2 on sm_90.
int resident_blocks_per_sm(int tile_rows);
// The fused kernel's blocks resident per SM on `shape`'s device for a tile of `tile_rows`: the
// occupancy calculator's figure when known, else the estimate above.
int resident_blocks(const CudaShape& shape, int tile_rows);
// Output tiles of the fused kernel: ceil(M / tile_rows) (at least one) x the N / 64 slabs.
int64_t output_tiles(const CudaShape& shape, int tile_rows);
// The grid's limits: N / 64 slabs on grid.y and S on grid.z.
inline constexpr int64_t kMaxGridYZ = 65535;
// A split multiplies at least this many 16-k slabs (two pipeline stages), so that filling the
// pipeline and writing the fp32 partials stay small beside its share of the weight.
inline constexpr int64_t kMinSlabsPerSplit = 16;
// cuBLAS's own workspace (its documented recommendation for Hopper), carved from ours.
inline constexpr int64_t kCublasWorkspaceBytes = int64_t(32) << 20;

// Byte offsets into the caller's CudaWorkspace (each region 256-byte aligned).
struct WorkspaceLayout {
  // Always first and always there: the split-K tile counters (kernels.hpp, kMaxCounterTiles), which
  // CudaWorkspace zeroes when it allocates and every call leaves zero.
  int64_t counters_offset = 0, counters_bytes = 0;
  int64_t x_offset = 0, x_bytes = 0;                // prepared x [m][k_slabs * 16]
  int64_t partials_offset = 0, partials_bytes = 0;  // fp32 split-K partials / decoupled fp32 output
  int64_t w16_offset = 0, w16_bytes = 0;            // decoupled: the 16-bit W [n][k_slabs * 16]
  int64_t cublas_offset = 0, cublas_bytes = 0;      // decoupled / dense: cuBLAS's workspace
  int64_t total = 0;
};

struct CudaLaunchPlan {
  CudaPlan public_plan;  // what plan_cuda_gemm() reports
  int64_t x_ld = 0;      // row stride of the x the kernel reads (K, or k_slabs * 16 when prepared)
  bool prepare_x = false;
  int64_t slabs_per_split = 0;
  // decoupled / dense with a bias, or a y of the other 16-bit dtype: cuBLAS writes fp32, the
  // reduction kernel adds the bias and converts
  bool bias_epilogue = false;
  WorkspaceLayout workspace;
};

// The launch plan of a choice: `chosen` names the strategy, the tile rows, the split factor S wanted
// (>= 1; the fused strategy only), whether split-K sums atomically, and the notes of the decisions so
// far ("...; " each). K is cut into slices of whole slabs and S recomputed so that none is empty;
// the partition, blocks and workspace bytes follow, and the notes end with how x is prepared.
CudaLaunchPlan lay_out(const CudaShape& shape, CudaPlan chosen);

}  // namespace w4a16::cuda
