// The packed int4 layout of the CUDA kernels and the bit trick that dequantizes it, as functions
// that compile for the host and the device alike: every index and bit operation the kernels use is
// tested on the CPU (tests/cuda/gpu_layout_test.cpp), where a layout bug costs no GPU time.
//
// The matrix instruction is mma.sync.m16n8k16 (fp16 or bf16 operands, fp32 accumulators). Its B
// operand is a 16 (k) x 8 (n) tile held by the 32 lanes of a warp, two 32-bit registers per lane,
// each register two 16-bit values along k (PTX ISA, "Matrix Fragments for mma.m16n8k16"):
//   lane l, q = l % 4, column n = l / 4:
//     b0 = { B[2q][n],     B[2q + 1][n] }      (low half, high half)
//     b1 = { B[2q + 8][n], B[2q + 9][n] }
//
// A slab is 16 (k) x 64 (n) codes: eight such tiles side by side, 1024 codes, 512 bytes of int4 =
// 32 lanes x 4 words of 8 nibbles. A lane's 4 words hold exactly the 32 codes it needs for the 8
// tiles (8 tiles x 2 registers x 2 halves), so it loads them as one 16-byte vector and the warp
// reads its slab in one coalesced 512-byte sweep.
//
//   word j of lane l holds tiles t = 2j and 2j + 1 (h = t % 2) of column n = 8t + l / 4;
//   nibble slot s (bits 4s .. 4s+3) holds pair p = s % 4 and element e = s / 4 of the pair, where
//     p = 2h + (k >= 8)   (b0 of tile 2j, b1 of tile 2j, b0 of tile 2j+1, b1 of tile 2j+1)
//     e = k % 2           (low or high half of the register)
//   so k = 2q + e + 8 (p % 2).
//
// Why this interleave: pair p is extracted with one shift, one AND and one OR,
//     ((word >> 4p) & 0x000F000F) | MAGIC
// which drops slot p into the low half and slot p + 4 into the high half of a 32-bit register,
// each below the mantissa of a 16-bit float MAGIC: 0x6400 is 1024.0 in fp16 (10 mantissa bits),
// 0x4300 is 128.0 in bf16 (7 mantissa bits), so the half reads MAGIC + q exactly. One subtraction
// of (MAGIC + z) gives q - z, one multiply (or FMA, for a float zero) by the scale the weight:
// no integer-to-float conversion instruction on the hot path. The result is the mma's b register.
//
// The packed weight (gpu_pack.hpp) is slabs in N-major order, [N/64][K/16][32 lanes][4 words], so
// that a thread block streaming its columns over K (or its split-K slice) reads one contiguous run.
// Scales (and zero offsets, float zeros) of group g and slab column nb are permuted the same way:
// [G][N/64][8 (n % 8)][8 (tile t)], so lane l reads the 8 scales of its column n = 8t + l/4 as one
// 16-byte vector.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define W4A16_HD __host__ __device__ __forceinline__
#else
#define W4A16_HD inline
#endif

namespace w4a16::cuda::layout {

inline constexpr int kSlabK = 16;
inline constexpr int kSlabN = 64;
inline constexpr int kLanes = 32;
inline constexpr int kWordsPerLane = 4;
inline constexpr int kSlabWords = kLanes * kWordsPerLane;  // 128 words = 1024 codes
inline constexpr int kTilesPerSlab = kSlabN / 8;           // n8 tiles of the mma

// The 16-bit float constants of the trick: MAGIC + q is exact for every code q in [0, 15].
inline constexpr uint16_t kMagicF16 = 0x6400;   // 1024.0
inline constexpr uint16_t kMagicBf16 = 0x4300;  // 128.0
inline constexpr int kMagicValueF16 = 1024;
inline constexpr int kMagicValueBf16 = 128;

// Where code (k, n) of a slab lives (k in [0, 16), n in [0, 64)).
struct Slot {
  int lane = 0, word = 0, nibble = 0;
};

W4A16_HD Slot slot_of(int k, int n) {
  const int t = n / 8, h = t % 2, q = (k % 8) / 2, e = k % 2, hi = k / 8;
  Slot s;
  s.lane = (n % 8) * 4 + q;
  s.word = t / 2;
  s.nibble = (2 * h + hi) + 4 * e;
  return s;
}

// The inverse: the (k, n) a lane's word and nibble slot hold.
W4A16_HD void element_of(int lane, int word, int nibble, int& k, int& n) {
  const int p = nibble % 4, e = nibble / 4, h = p / 2, hi = p % 2;
  n = 8 * (2 * word + h) + lane / 4;
  k = 2 * (lane % 4) + e + 8 * hi;
}

// The n8 tile and the register (0: b0, 1: b1) that pair p of word j feeds.
W4A16_HD int tile_of_pair(int word, int pair) { return 2 * word + pair / 2; }
W4A16_HD int register_of_pair(int pair) { return pair % 2; }

// Pair p of a word: slot p in the low half and slot p + 4 in the high half, each OR'ed under a
// 16-bit float `magic` (kMagicF16 or kMagicBf16) so that the half reads magic + code.
W4A16_HD uint32_t magic_pair(uint32_t word, int pair, uint16_t magic) {
  return ((word >> (4 * pair)) & 0x000F000Fu) | (uint32_t(magic) << 16 | magic);
}

// Word index of (slab column nb, slab row kb, lane, word) in the packed codes, N-major.
W4A16_HD int64_t code_word_index(int64_t nb, int64_t kb, int64_t k_slabs, int lane, int word) {
  return ((nb * k_slabs + kb) * kLanes + lane) * kWordsPerLane + word;
}

// The group of slab row kb: a slab lies in one group (g is a multiple of 16, or per-channel, where
// the padded last slab of a K that is no multiple of 16 still belongs to the one group).
W4A16_HD int64_t group_of_slab(int64_t kb, int64_t group_size, int64_t groups) {
  const int64_t g = kb * kSlabK / group_size;
  return g < groups - 1 ? g : groups - 1;
}

// Index of the scale (or zero) of group g, column n in the permuted [G][N/64][8][8] layout.
W4A16_HD int64_t group_param_index(int64_t g, int64_t n, int64_t n_slabs) {
  const int64_t nb = n / kSlabN, t = (n % kSlabN) / 8, r = n % 8;
  return ((g * n_slabs + nb) * 8 + r) * 8 + t;
}

// The A and C fragments of mma.m16n8k16 (PTX ISA, same section), lane l, row r = l / 4, q = l % 4:
//   A (16 x 16, row-major, two 16-bit values per register, low half first):
//     a0 = A[r][2q..2q+1], a1 = A[r+8][2q..2q+1], a2 = A[r][2q+8..2q+9], a3 = A[r+8][2q+8..2q+9]
//   C (16 x 8, fp32, one value per register):
//     c0 = C[r][2q], c1 = C[r][2q+1], c2 = C[r+8][2q], c3 = C[r+8][2q+1]
// The kernels read A from the x tile in shared memory and write C through these two functions.
struct RowCol {
  int row = 0, col = 0;
};
W4A16_HD RowCol a_fragment(int lane, int reg) {  // the first (low-half) element of register reg
  return {lane / 4 + 8 * (reg % 2), 2 * (lane % 4) + 8 * (reg / 2)};
}
W4A16_HD RowCol c_fragment(int lane, int reg) { return {lane / 4 + 8 * (reg / 2), 2 * (lane % 4) + reg % 2}; }

// The x tile in shared memory: rows of kTileK activations padded by 8 (16 bytes) so that the 32
// lanes' a-register loads (8 rows x 4 words) fall in 32 different banks: a row is 68 words, and
// 68 r + q mod 32 = 4 r + q is distinct for r < 8, q < 4. 16-byte rows keep cp.async aligned.
inline constexpr int kTileK = 128;  // k per pipeline stage: 4 warps x 2 slabs
inline constexpr int kXRow = kTileK + 8;
W4A16_HD int x_tile_index(int row, int col) { return row * kXRow + col; }

}  // namespace w4a16::cuda::layout
