// The CUDA kernels' launch interface: plain structs of device pointers and sizes, so that the host
// side (cuda_backend.cpp, compiled by the C++ compiler) never sees a CUDA type and the .cu files
// never see the public API. Streams travel as void* (a cudaStream_t).
//
// Stages of one call (docs/kernels.md, "CUDA"):
//   prepare_x      x gathered by the act-order permutation and/or padded to 16-byte rows
//   fused_gemm     int4 slabs -> registers -> mma, per (m tile, 64-column slab, K split)
//   reduce         atomic split-K / cuBLAS's fp32 output: + bias, converted into y
//   dequant        decoupled: the 16-bit W written to a workspace, then cuBLAS (cuda_backend.cpp)
#pragma once

#include <cstdint>

namespace w4a16::cuda {

enum class Elem : int { f16 = 0, bf16 = 1, f32 = 2 };

// The packed weight on the device (GpuPackedWeight's arrays, uploaded).
struct DeviceArrays {
  const uint32_t* codes = nullptr;      // [n_slabs][k_slabs][32][4]
  const uint16_t* scales = nullptr;     // [G][n_slabs][8][8]
  const uint16_t* offsets = nullptr;    // asym: MAGIC + z, same layout; null otherwise
  const uint16_t* zero_adds = nullptr;  // float zero: zf, same layout; null otherwise
  const int32_t* perm = nullptr;        // [K] act-order, or null
  const float* bias = nullptr;          // [N] or null
  int64_t n = 0, k = 0, n_slabs = 0, k_slabs = 0, group_size = 0, groups = 0;
  Elem act = Elem::f16;  // the mma's operand dtype (x and the 16-bit weights)
};

// Where the fused kernel's block sums go.
enum class FusedOutput : int {
  direct = 0,    // y (+ bias), converted to y's dtype: one split
  partials = 1,  // partials[split][m][n] in fp32; the tile's last split to finish sums them in split
                 // order (+ bias) into y: one launch, deterministic (a counter per tile, self-resetting)
  atomic = 2,    // atomicAdd into partials[m][n] (zeroed first), then reduce_partials with splits = 1
};

struct FusedArgs {
  DeviceArrays w;
  const void* x = nullptr;  // [m][x_ld] of w.act, 16-byte aligned rows, zero (or ignored) past K
  int64_t x_ld = 0, m = 0;
  int tile_rows = 16;  // 16, 32 or 64 rows of x per block
  int splits = 1;      // K splits (gridDim.z)
  int64_t slabs_per_split = 0;
  FusedOutput output = FusedOutput::direct;
  void* y = nullptr;  // [m][n] of y_dtype (direct)
  Elem y_dtype = Elem::f16;
  float* partials = nullptr;
  unsigned* counters = nullptr;  // partials: one per output tile (m tile, slab), zero between calls
};

// The split-K tile counters live at the start of every workspace, zeroed when it is allocated and
// left zero by every call; at most this many output tiles may split K.
inline constexpr int64_t kMaxCounterTiles = int64_t(1) << 16;

// x [m][K] (row stride x_ld) -> out [m][out_ld]: out[i][k] = x[i][perm ? perm[k] : k] for k < K, 0 up
// to out_ld (= k_slabs * 16).
void launch_prepare_x(const void* x, int64_t x_ld, int64_t m, int64_t k, const int32_t* perm, Elem dtype, void* out,
                      int64_t out_ld, void* stream);
void launch_fused_gemm(const FusedArgs& args, void* stream);
// y[i][n] = sum over s < splits of partials[s][i][n] (in that order) + bias[n], converted to y_dtype.
void launch_reduce_partials(const float* partials, int splits, int64_t m, int64_t n, const float* bias, void* y,
                            Elem y_dtype, void* stream);
// The 16-bit W [n][ld] (ld = k_slabs * 16) in stored column order, every element as the fused
// kernel computes it (gpu_weight() on the host).
void launch_dequant(const DeviceArrays& w, void* w16, int64_t ld, void* stream);

// The dynamic shared memory the fused kernel needs for `tile_rows` (the host sets the attribute once).
int fused_smem_bytes(int tile_rows);
// Its blocks resident per SM on the current device (the occupancy calculator); 0 when unknown.
int fused_resident_blocks(int tile_rows, Elem act);

// The last launch's error as text ("" when none), clearing it.
const char* last_launch_error();

}  // namespace w4a16::cuda
