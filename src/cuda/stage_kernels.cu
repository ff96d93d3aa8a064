// The small kernels around the fused one: preparing x (act-order gather, padding to 16-byte rows),
// the fp32-to-y epilogue (atomic split-K, cuBLAS's fp32 output: + bias, one rounding), and the
// decoupled pipeline's dequantization of W to 16 bit.
#include <cuda_runtime.h>

#include "cuda/device_math.cuh"
#include "cuda/gpu_layout.hpp"
#include "cuda/kernels.hpp"

namespace w4a16::cuda {
namespace {

namespace L = layout;
using namespace device;

__global__ void prepare_x_kernel(const uint16_t* x, int64_t x_ld, int64_t m, int64_t k, const int32_t* perm,
                                 uint16_t* out, int64_t out_ld) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= m * out_ld) return;
  const int64_t row = i / out_ld, col = i % out_ld;
  uint16_t v = 0;
  if (col < k) v = x[row * x_ld + (perm ? perm[col] : col)];
  out[i] = v;
}

__global__ void reduce_kernel(const float* partials, int splits, int64_t m, int64_t n, const float* bias, void* y,
                              Elem y_dtype) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= m * n) return;
  float v = partials[i];
  for (int s = 1; s < splits; ++s) v += partials[int64_t(s) * m * n + i];
  if (bias) v += bias[i % n];
  store(y, y_dtype, i, v);
}

// One warp per slab: lane l computes its 16 b registers exactly as the fused kernel does and
// stores each (two consecutive k of one column) as one 32-bit word of W [n][ld].
template <Elem A, int ZM>
__global__ void dequant_kernel(const DeviceArrays w, uint32_t* out, int64_t ld) {
  const int lane = threadIdx.x % 32;
  const int64_t slab = int64_t(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
  if (slab >= w.n_slabs * w.k_slabs) return;
  const int64_t nb = slab / w.k_slabs, kb = slab % w.k_slabs;
  const uint4 words = *reinterpret_cast<const uint4*>(w.codes + L::code_word_index(nb, kb, w.k_slabs, lane, 0));
  const int64_t g = L::group_of_slab(kb, w.group_size, w.groups);
  const int64_t param = L::group_param_index(g, nb * L::kSlabN + lane / 4, w.n_slabs);  // the lane's 8 tiles
  const uint4 sc = *reinterpret_cast<const uint4*>(w.scales + param);
  uint4 zp = make_uint4(0, 0, 0, 0);
  if constexpr (ZM == kAsym) zp = *reinterpret_cast<const uint4*>(w.offsets + param);
  if constexpr (ZM == kFloatZero) zp = *reinterpret_cast<const uint4*>(w.zero_adds + param);
  const uint32_t wv[4] = {words.x, words.y, words.z, words.w};
  const uint32_t sv[4] = {sc.x, sc.y, sc.z, sc.w};
  const uint32_t zv[4] = {zp.x, zp.y, zp.z, zp.w};
#pragma unroll
  for (int jw = 0; jw < 4; ++jw) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int t = 2 * jw + h;
      const int64_t n = nb * L::kSlabN + 8 * t + lane / 4;
      if (n >= w.n) continue;
      uint32_t b[2];
      tile_registers<A, ZM>(wv[jw], sv[jw], zv[jw], h, b);
#pragma unroll
      for (int r = 0; r < 2; ++r) {  // b0: k = 2q, 2q + 1; b1: k = 2q + 8, 2q + 9
        const int64_t k = kb * L::kSlabK + 2 * (lane % 4) + 8 * r;
        out[(n * ld + k) / 2] = b[r];
      }
    }
  }
}

template <Elem A>
void dequant_zero_mode(const DeviceArrays& w, uint32_t* out, int64_t ld, cudaStream_t stream) {
  const int64_t slabs = w.n_slabs * w.k_slabs;
  const unsigned blocks = unsigned((slabs + 7) / 8);
  if (w.offsets) {
    dequant_kernel<A, kAsym><<<blocks, 256, 0, stream>>>(w, out, ld);
  } else if (w.zero_adds) {
    dequant_kernel<A, kFloatZero><<<blocks, 256, 0, stream>>>(w, out, ld);
  } else {
    dequant_kernel<A, kSym><<<blocks, 256, 0, stream>>>(w, out, ld);
  }
}

unsigned blocks_for(int64_t elements) { return unsigned((elements + 255) / 256); }

}  // namespace

void launch_prepare_x(const void* x, int64_t x_ld, int64_t m, int64_t k, const int32_t* perm, Elem dtype, void* out,
                      int64_t out_ld, void* stream) {
  (void)dtype;  // 16-bit either way: the gather moves bits
  prepare_x_kernel<<<blocks_for(m * out_ld), 256, 0, static_cast<cudaStream_t>(stream)>>>(
      static_cast<const uint16_t*>(x), x_ld, m, k, perm, static_cast<uint16_t*>(out), out_ld);
}

void launch_reduce_partials(const float* partials, int splits, int64_t m, int64_t n, const float* bias, void* y,
                            Elem y_dtype, void* stream) {
  reduce_kernel<<<blocks_for(m * n), 256, 0, static_cast<cudaStream_t>(stream)>>>(partials, splits, m, n, bias, y,
                                                                                  y_dtype);
}

void launch_dequant(const DeviceArrays& w, void* w16, int64_t ld, void* stream) {
  const auto s = static_cast<cudaStream_t>(stream);
  if (w.act == Elem::bf16) {
    dequant_zero_mode<Elem::bf16>(w, static_cast<uint32_t*>(w16), ld, s);
  } else {
    dequant_zero_mode<Elem::f16>(w, static_cast<uint32_t*>(w16), ld, s);
  }
}

const char* last_launch_error() {
  const cudaError_t e = cudaGetLastError();
  return e == cudaSuccess ? "" : cudaGetErrorString(e);
}

}  // namespace w4a16::cuda
