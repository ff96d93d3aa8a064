// Device-side building blocks shared by the fused kernel and the stage kernels: the int4 -> 16-bit
// dequantization of one register pair (layout::magic_pair + one subtraction + one multiply or FMA),
// the mma.m16n8k16 instruction, cp.async, and the conversions of the epilogues.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "cuda/gpu_layout.hpp"
#include "cuda/kernels.hpp"

namespace w4a16::cuda::device {

// Zero modes as template parameters (QuantizedWeight's ZeroMode is not visible here).
enum : int { kSym = 0, kAsym = 1, kFloatZero = 2 };

template <Elem A>
__device__ __forceinline__ constexpr uint16_t magic() {
  return A == Elem::bf16 ? layout::kMagicBf16 : layout::kMagicF16;
}
// MAGIC + 8 in both halves: the offset of the sym and float-zero modes (exact in both dtypes).
template <Elem A>
__device__ __forceinline__ constexpr uint32_t sym_offset2() {
  return uint32_t(magic<A>() + 8) * 0x10001u;
}

// The 16-bit value `half` (0: low, 1: high) of a word, copied into both halves.
__device__ __forceinline__ uint32_t dup_half(uint32_t word, int half) {
  return __byte_perm(word, 0, half ? 0x3232 : 0x1010);
}

template <Elem A>
struct Half2;
template <>
struct Half2<Elem::f16> {
  using T2 = __half2;
};
template <>
struct Half2<Elem::bf16> {
  using T2 = __nv_bfloat162;
};

template <typename T>
__device__ __forceinline__ T from_bits(uint32_t bits) {
  T v;
  static_assert(sizeof(T) == 4);
  memcpy(&v, &bits, 4);
  return v;
}
template <typename T>
__device__ __forceinline__ uint32_t to_bits(T v) {
  uint32_t bits;
  memcpy(&bits, &v, 4);
  return bits;
}

// One b register of the mma: pair p of a packed word, as two 16-bit weights along k.
//   c = (MAGIC + q) - offset   exact: both are integers below 2^8 (bf16) / 2^11 (fp16)
//   w = c * scale              (sym, asym)  or  fma(c, scale, zf)  (float zero): one rounding
// offset2 / scale2 / zf2 hold the column's value in both halves.
template <Elem A, int ZM>
__device__ __forceinline__ uint32_t dequant_pair(uint32_t word, int pair, uint32_t offset2, uint32_t scale2,
                                                 uint32_t zf2) {
  using T2 = typename Half2<A>::T2;
  const uint32_t biased = layout::magic_pair(word, pair, magic<A>());
  const T2 c = __hsub2(from_bits<T2>(biased), from_bits<T2>(offset2));
  if constexpr (ZM == kFloatZero) {
    return to_bits(__hfma2(c, from_bits<T2>(scale2), from_bits<T2>(zf2)));
  } else {
    return to_bits(__hmul2(c, from_bits<T2>(scale2)));
  }
}

// Both b registers of n8 tile 2 jw + h for one lane: pairs 2h (b0) and 2h + 1 (b1) of its code word
// jw, with word jw of its scale row and of its zero row (MAGIC + z, or zf; unused for sym).
template <Elem A, int ZM>
__device__ __forceinline__ void tile_registers(uint32_t word, uint32_t scale_word, uint32_t zero_word, int h,
                                               uint32_t (&b)[2]) {
  const uint32_t scale2 = dup_half(scale_word, h);
  const uint32_t offset2 = ZM == kAsym ? dup_half(zero_word, h) : sym_offset2<A>();
  const uint32_t zf2 = ZM == kFloatZero ? dup_half(zero_word, h) : 0u;
  b[0] = dequant_pair<A, ZM>(word, 2 * h, offset2, scale2, zf2);
  b[1] = dequant_pair<A, ZM>(word, 2 * h + 1, offset2, scale2, zf2);
}

// d += a * b for one m16n8k16 tile, fp32 accumulators.
template <Elem A>
__device__ __forceinline__ void mma(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  if constexpr (A == Elem::bf16) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  } else {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
}

// 16 bytes global -> shared, bypassing L1 (each byte is read once). valid = false zero-fills the
// destination and reads nothing (the source must still be a valid address).
__device__ __forceinline__ void cp_async16(void* smem, const void* gmem, bool valid) {
  const unsigned dst = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  const int bytes = valid ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(gmem), "r"(bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

// Writes v (fp32) as element i of a y of dtype `dtype`, rounded to nearest even.
__device__ __forceinline__ void store(void* y, Elem dtype, int64_t i, float v) {
  if (dtype == Elem::f16) {
    static_cast<__half*>(y)[i] = __float2half_rn(v);
  } else if (dtype == Elem::bf16) {
    static_cast<__nv_bfloat16*>(y)[i] = __float2bfloat16_rn(v);
  } else {
    static_cast<float*>(y)[i] = v;
  }
}

}  // namespace w4a16::cuda::device
