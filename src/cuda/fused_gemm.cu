// The fused W4A16 kernel: int4 slabs streamed by cp.async through a 4-stage shared-memory
// pipeline, dequantized in registers (device_math.cuh: no int -> float conversions), multiplied by
// mma.sync.m16n8k16 into fp32 accumulators.
//
// Grid: x = m tiles (16 * MT rows of x), y = 64-column slabs of W, z = K splits. x varies fastest,
// so the blocks that share a slab column run together and its bytes come from L2 after the first.
// Block: 4 warps. A pipeline stage is 128 k (8 slabs); warp w multiplies slabs 2w and 2w + 1 of
// each stage for all 64 columns and all MT m tiles, so the 4 warps split K inside the block and
// their accumulators are summed at the end in warp order (deterministic). With K split, the
// tile's last split to finish sums the splits' fp32 partials in split order (deterministic too).
//
// Shared memory per stage (bytes, StageLayout):
//   x      [16 MT][136] 16-bit   the stage's 128 columns of x, rows padded (layout::kXRow)
//   codes  [8 slabs][32 lanes][16 B]
//   scales [8 slabs][8 rows r = n % 8][8 tiles]       lane l reads row l / 4 as one uint4
//   zeros  same: MAGIC + z (asym) or zf (float zero); unused for sym
#include <cuda_runtime.h>

#include <atomic>

#include "cuda/device_math.cuh"
#include "cuda/gpu_layout.hpp"
#include "cuda/kernels.hpp"

namespace w4a16::cuda {
namespace {

namespace L = layout;
using namespace device;

constexpr int kWarps = 4, kThreads = kWarps * 32, kStages = 4, kSlabsPerWarp = 2;
constexpr int kStageSlabs = kWarps * kSlabsPerWarp;
static_assert(kStageSlabs * L::kSlabK == L::kTileK, "a stage is the x tile's width");

template <int MT>
struct StageLayout {
  static constexpr int x_bytes = MT * 16 * L::kXRow * 2;
  static constexpr int code_bytes = kStageSlabs * L::kSlabWords * 4;
  static constexpr int param_bytes = kStageSlabs * 8 * 8 * 2;
  static constexpr int x_off = 0;
  static constexpr int code_off = x_off + x_bytes;
  static constexpr int scale_off = code_off + code_bytes;
  static constexpr int zero_off = scale_off + param_bytes;
  static constexpr int bytes = zero_off + param_bytes;
  static constexpr int pipeline = kStages * bytes;
  // The epilogue's fp32 tile per warp, rows padded to 72 floats: the c-fragment stores of rows r and
  // r + 4 share banks (2-way) instead of all 8 rows (8-way). Reuses the pipeline's memory.
  static constexpr int kRedRow = L::kSlabN + 8;
  static constexpr int reduce = kWarps * MT * 16 * kRedRow * 4;
  static constexpr int smem = pipeline > reduce ? pipeline : reduce;
  static_assert(x_bytes % 16 == 0 && bytes % 16 == 0, "cp.async needs 16-byte aligned destinations");
};

template <Elem A, int MT, int ZM>
__global__ void __launch_bounds__(kThreads) fused_kernel(const FusedArgs args) {
  using S = StageLayout<MT>;
  extern __shared__ __align__(16) unsigned char smem[];
  const DeviceArrays& w = args.w;
  const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
  const int64_t m0 = int64_t(blockIdx.x) * MT * 16;
  const int64_t nb = blockIdx.y;
  const int split = blockIdx.z;
  const int64_t kb_begin = int64_t(split) * args.slabs_per_split;
  const int64_t kb_end = kb_begin + args.slabs_per_split < w.k_slabs ? kb_begin + args.slabs_per_split : w.k_slabs;
  const int64_t slabs = kb_end > kb_begin ? kb_end - kb_begin : 0;
  const int iters = int((slabs + kStageSlabs - 1) / kStageSlabs);
  const uint16_t* x = static_cast<const uint16_t*>(args.x);

  // Rows of x past M are never loaded (at M = 1, 15 of the tile's 16 rows: most of a stage's copies
  // otherwise): whatever they hold only reaches the same rows of the mma's output (its rows are
  // independent), which the epilogue drops.
  const int rows = args.m - m0 < MT * 16 ? int(args.m - m0) : MT * 16;

  // Stage `it` (slabs kb_begin + 8 it ...) into buffer `buf`: every thread issues its share of
  // 16-byte copies; slabs past the split are skipped, x past K is zero-filled.
  auto load_stage = [&](int buf, int it) {
    unsigned char* st = smem + buf * S::bytes;
    const int64_t kb0 = kb_begin + int64_t(it) * kStageSlabs;
#pragma unroll
    for (int c = tid; c < kStageSlabs * 32; c += kThreads) {
      const int64_t kb = kb0 + c / 32;
      if (kb < kb_end)
        cp_async16(st + S::code_off + c * 16, w.codes + L::code_word_index(nb, kb, w.k_slabs, c % 32, 0), true);
    }
    if (tid < 64 || (ZM != kSym && tid < 128)) {
      const int c = tid % 64;  // threads 0..63: scales; 64..127: MAGIC + z or zf
      const int64_t kb = kb0 + c / 8;
      if (kb < kb_end) {
        const int64_t g = L::group_of_slab(kb, w.group_size, w.groups);
        const uint16_t* src = tid < 64 ? w.scales : (ZM == kAsym ? w.offsets : w.zero_adds);
        cp_async16(st + (tid < 64 ? S::scale_off : S::zero_off) + c * 16,
                   src + L::group_param_index(g, nb * L::kSlabN + c % 8, w.n_slabs), true);
      }
    }
    for (int c = tid; c < rows * 16; c += kThreads) {
      const int row = c / 16, chunk = c % 16;
      const int64_t gm = m0 + row, col = kb0 * L::kSlabK + chunk * 8;
      const bool valid = col < w.k;
      cp_async16(st + S::x_off + L::x_tile_index(row, chunk * 8) * 2, valid ? x + gm * args.x_ld + col : x, valid);
    }
  };

  float acc[MT][8][4];
#pragma unroll
  for (int mt = 0; mt < MT; ++mt)
#pragma unroll
    for (int t = 0; t < 8; ++t)
#pragma unroll
      for (int r = 0; r < 4; ++r) acc[mt][t][r] = 0.f;

  // Warp `warp`'s two slabs of stage `it`, read from buffer `buf`.
  auto compute_stage = [&](int buf, int it) {
    const unsigned char* st = smem + buf * S::bytes;
    const int64_t kb0 = kb_begin + int64_t(it) * kStageSlabs;
#pragma unroll
    for (int j = 0; j < kSlabsPerWarp; ++j) {
      const int s = warp * kSlabsPerWarp + j;
      if (kb0 + s >= kb_end) break;  // warp-uniform: the split's last stage may be short
      const uint4 words = *reinterpret_cast<const uint4*>(st + S::code_off + (s * 32 + lane) * 16);
      const uint4 sc = *reinterpret_cast<const uint4*>(st + S::scale_off + (s * 8 + lane / 4) * 16);
      uint4 zp = make_uint4(0, 0, 0, 0);
      if constexpr (ZM != kSym) zp = *reinterpret_cast<const uint4*>(st + S::zero_off + (s * 8 + lane / 4) * 16);
      uint32_t a[MT][4];
#pragma unroll
      for (int mt = 0; mt < MT; ++mt)
#pragma unroll
        for (int reg = 0; reg < 4; ++reg) {
          const L::RowCol rc = L::a_fragment(lane, reg);
          a[mt][reg] = *reinterpret_cast<const uint32_t*>(
              st + S::x_off + L::x_tile_index(mt * 16 + rc.row, s * L::kSlabK + rc.col) * 2);
        }
      const uint32_t wv[4] = {words.x, words.y, words.z, words.w};
      const uint32_t sv[4] = {sc.x, sc.y, sc.z, sc.w};
      const uint32_t zv[4] = {zp.x, zp.y, zp.z, zp.w};
#pragma unroll
      for (int jw = 0; jw < 4; ++jw) {
#pragma unroll
        for (int h = 0; h < 2; ++h) {  // tile t = 2 jw + h
          uint32_t b[2];
          tile_registers<A, ZM>(wv[jw], sv[jw], zv[jw], h, b);
#pragma unroll
          for (int mt = 0; mt < MT; ++mt) mma<A>(acc[mt][2 * jw + h], a[mt], b[0], b[1]);
        }
      }
    }
  };

  // The pipeline: kStages - 1 stages in flight while one is multiplied. Every iteration commits a
  // group (empty past the end) so that wait_group counts stages.
#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) {
    if (s < iters) load_stage(s, s);
    cp_async_commit();
  }
  for (int it = 0; it < iters; ++it) {
    cp_async_wait<kStages - 2>();
    __syncthreads();  // stage `it` is visible to all, and stage it - 1's buffer is free
    const int next = it + kStages - 1;
    if (next < iters) load_stage(next % kStages, next);
    cp_async_commit();
    compute_stage(it % kStages, it);
  }
  cp_async_wait<0>();
  __syncthreads();

  // Epilogue: each warp's tile into shared memory, summed in warp order, written out.
  constexpr int kTileElems = MT * 16 * L::kSlabN, kRed = MT * 16 * S::kRedRow;
  float* red = reinterpret_cast<float*>(smem);
#pragma unroll
  for (int mt = 0; mt < MT; ++mt)
#pragma unroll
    for (int t = 0; t < 8; ++t)
#pragma unroll
      for (int r = 0; r < 4; ++r) {
        const L::RowCol rc = L::c_fragment(lane, r);
        red[warp * kRed + (mt * 16 + rc.row) * S::kRedRow + t * 8 + rc.col] = acc[mt][t][r];
      }
  __syncthreads();
  for (int e = tid; e < kTileElems; e += kThreads) {
    const int at = (e / L::kSlabN) * S::kRedRow + e % L::kSlabN;
    float v = red[at];
#pragma unroll
    for (int wp = 1; wp < kWarps; ++wp) v += red[wp * kRed + at];
    const int64_t gm = m0 + e / L::kSlabN, gn = nb * L::kSlabN + e % L::kSlabN;
    if (gm >= args.m || gn >= w.n) continue;
    if (args.output == FusedOutput::direct) {
      if (w.bias) v += w.bias[gn];
      store(args.y, args.y_dtype, gm * w.n + gn, v);
    } else if (args.output == FusedOutput::partials) {
      args.partials[(int64_t(split) * args.m + gm) * w.n + gn] = v;
    } else {
      atomicAdd(args.partials + gm * w.n + gn, v);
    }
  }
  if (args.output != FusedOutput::partials) return;

  // Split-K fix-up: the tile's last split to arrive sums the S partials in split order. The
  // fence makes this block's partials visible before its arrival is counted; the last block
  // reads the others' through L2 (ld.global.cg: L1 is not coherent across SMs).
  __shared__ bool last;
  __threadfence();
  __syncthreads();
  if (tid == 0) {
    unsigned* counter = args.counters + (int64_t(blockIdx.y) * gridDim.x + blockIdx.x);
    last = atomicAdd(counter, 1u) == unsigned(args.splits - 1);
    if (last) *counter = 0;  // every split has arrived: ready for the next call
  }
  __syncthreads();
  if (!last) return;
  __threadfence();
  const int64_t plane = args.m * w.n;
  for (int e = tid; e < kTileElems; e += kThreads) {
    const int64_t gm = m0 + e / L::kSlabN, gn = nb * L::kSlabN + e % L::kSlabN;
    if (gm >= args.m || gn >= w.n) continue;
    const float* p = args.partials + gm * w.n + gn;
    float v = __ldcg(p);
    for (int s = 1; s < args.splits; ++s) v += __ldcg(p + s * plane);
    if (w.bias) v += w.bias[gn];
    store(args.y, args.y_dtype, gm * w.n + gn, v);
  }
}

// Above 48 KiB of dynamic shared memory a kernel must opt in, once per device (remembered for
// devices 0..63 after it succeeded; others ask every time).
template <Elem A, int MT, int ZM>
void opt_in() {
  constexpr int bytes = StageLayout<MT>::smem;
  if (bytes <= 48 * 1024) return;
  static std::atomic<uint64_t> done{0};
  int device = 0;
  cudaGetDevice(&device);
  const uint64_t bit = device < 64 ? uint64_t(1) << device : 0;
  if (bit && (done.load(std::memory_order_acquire) & bit)) return;
  if (cudaFuncSetAttribute(fused_kernel<A, MT, ZM>, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes) ==
      cudaSuccess) {
    done.fetch_or(bit, std::memory_order_acq_rel);
  } else {
    cudaGetLastError();  // the launch that follows fails and says why; keep no stale error behind
  }
}

template <Elem A, int MT, int ZM>
void launch(const FusedArgs& a, cudaStream_t stream) {
  constexpr int bytes = StageLayout<MT>::smem;
  opt_in<A, MT, ZM>();
  const dim3 grid(unsigned((a.m + MT * 16 - 1) / (MT * 16)), unsigned(a.w.n_slabs), unsigned(a.splits));
  fused_kernel<A, MT, ZM><<<grid, kThreads, bytes, stream>>>(a);
}

template <Elem A, int MT>
void launch_zero_mode(const FusedArgs& a, cudaStream_t stream) {
  if (a.w.offsets) {
    launch<A, MT, kAsym>(a, stream);
  } else if (a.w.zero_adds) {
    launch<A, MT, kFloatZero>(a, stream);
  } else {
    launch<A, MT, kSym>(a, stream);
  }
}

template <Elem A>
void launch_tile(const FusedArgs& a, cudaStream_t stream) {
  if (a.tile_rows <= 16) {
    launch_zero_mode<A, 1>(a, stream);
  } else if (a.tile_rows <= 32) {
    launch_zero_mode<A, 2>(a, stream);
  } else {
    launch_zero_mode<A, 4>(a, stream);
  }
}

}  // namespace

template <Elem A, int MT>
int resident() {
  opt_in<A, MT, kAsym>();  // one variant stands for the three zero modes (a few registers apart)
  int blocks = 0;
  if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, fused_kernel<A, MT, kAsym>, kThreads,
                                                    StageLayout<MT>::smem) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return blocks;
}

int fused_resident_blocks(int tile_rows, Elem act) {
  if (act == Elem::bf16) {
    return tile_rows <= 16   ? resident<Elem::bf16, 1>()
           : tile_rows <= 32 ? resident<Elem::bf16, 2>()
                             : resident<Elem::bf16, 4>();
  }
  return tile_rows <= 16   ? resident<Elem::f16, 1>()
         : tile_rows <= 32 ? resident<Elem::f16, 2>()
                           : resident<Elem::f16, 4>();
}

int fused_smem_bytes(int tile_rows) {
  return tile_rows <= 16 ? StageLayout<1>::smem : tile_rows <= 32 ? StageLayout<2>::smem : StageLayout<4>::smem;
}

void launch_fused_gemm(const FusedArgs& args, void* stream) {
  const auto s = static_cast<cudaStream_t>(stream);
  if (args.w.act == Elem::bf16) {
    launch_tile<Elem::bf16>(args, s);
  } else {
    launch_tile<Elem::f16>(args, s);
  }
}

}  // namespace w4a16::cuda
