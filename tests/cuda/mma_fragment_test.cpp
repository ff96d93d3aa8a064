// The fused kernel's register-level step on the CPU: one warp multiplying one slab, lane by lane,
// with the index functions the kernel uses (a_fragment, x_tile_index, slot layout, the scale row,
// dup of a half, magic_pair, c_fragment) and mma.m16n8k16 emulated from the PTX definition of its
// fragments, written out here independently of gpu_layout.hpp. If any of the kernel's mappings
// disagreed with the instruction's, the emulated tile would not be x * W.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <vector>

#include "cuda/gpu_layout.hpp"
#include "cuda/gpu_pack.hpp"
#include "support/random_data.hpp"
#include "support/random_quantized.hpp"
#include "w4a16/float16.hpp"

namespace w4a16::cuda {
namespace {

namespace L = layout;

double from_16(uint16_t bits, DType dtype) { return dtype == DType::bf16 ? bf16_to_f32(bits) : f16_to_f32(bits); }
uint16_t to_16(double v, DType dtype) { return dtype == DType::bf16 ? f64_to_bf16(v) : f64_to_f16(v); }

// PTX ISA, "Matrix Fragments for mma.m16n8k16" (.f16/.bf16): element i of a lane's fragment,
// g = lane / 4 (groupID), q = lane % 4 (threadID_in_group); register i / 2, half i % 2.
struct Pos {
  int row, col;
};
Pos ptx_a(int lane, int i) {  // i in [0, 8)
  const int g = lane / 4, q = lane % 4;
  const int row = (i < 2 || (i >= 4 && i < 6)) ? g : g + 8;
  const int col = q * 2 + (i & 1) + (i >= 4 ? 8 : 0);
  return {row, col};
}
Pos ptx_b(int lane, int i) {  // i in [0, 4): {row = k, col = n}
  const int g = lane / 4, q = lane % 4;
  return {q * 2 + (i & 1) + (i >= 2 ? 8 : 0), g};
}
Pos ptx_c(int lane, int i) {  // i in [0, 4)
  const int g = lane / 4, q = lane % 4;
  return {i < 2 ? g : g + 8, q * 2 + (i & 1)};
}

TEST(MmaFragments, AAndCIndexFunctionsAreThePtxDefinition) {
  for (int lane = 0; lane < 32; ++lane) {
    for (int reg = 0; reg < 4; ++reg) {
      const L::RowCol rc = L::a_fragment(lane, reg);
      for (int half = 0; half < 2; ++half) {
        const Pos want = ptx_a(lane, 2 * reg + half);
        EXPECT_EQ(rc.row, want.row) << "lane " << lane << " a" << reg;
        EXPECT_EQ(rc.col + half, want.col) << "lane " << lane << " a" << reg << " half " << half;
      }
      const L::RowCol c = L::c_fragment(lane, reg);
      EXPECT_EQ(c.row, ptx_c(lane, reg).row) << "lane " << lane << " c" << reg;
      EXPECT_EQ(c.col, ptx_c(lane, reg).col) << "lane " << lane << " c" << reg;
    }
  }
}

// The x tile's padded rows put a warp's 32 a-register loads in 32 distinct banks.
TEST(MmaFragments, XTileLoadsAreFreeOfBankConflicts) {
  for (int reg = 0; reg < 4; ++reg) {
    for (int slab = 0; slab < L::kTileK / L::kSlabK; ++slab) {
      std::array<int, 32> lanes_per_bank{};
      for (int lane = 0; lane < 32; ++lane) {
        const L::RowCol rc = L::a_fragment(lane, reg);
        const int byte = L::x_tile_index(rc.row, slab * L::kSlabK + rc.col) * 2;
        ASSERT_EQ(byte % 4, 0);
        ++lanes_per_bank[size_t((byte / 4) % 32)];
      }
      for (int b = 0; b < 32; ++b) EXPECT_EQ(lanes_per_bank[size_t(b)], 1) << "reg " << reg << " slab " << slab;
    }
  }
}

uint32_t dup_half(uint32_t word, int half) {  // __byte_perm(word, 0, half ? 0x3232 : 0x1010)
  const uint32_t v = (word >> (16 * half)) & 0xFFFF;
  return v | v << 16;
}

// dequant_pair of device_math.cuh, one rounding per half2 instruction.
uint32_t dequant_pair(uint32_t word, int pair, uint32_t offset2, uint32_t scale2, uint32_t zf2, bool float_zero,
                      DType act) {
  const uint16_t magic = act == DType::bf16 ? L::kMagicBf16 : L::kMagicF16;
  const uint32_t biased = L::magic_pair(word, pair, magic);
  uint32_t out = 0;
  for (int h = 0; h < 2; ++h) {
    const auto half = [&](uint32_t v) { return from_16(uint16_t(v >> (16 * h)), act); };
    const double c = from_16(to_16(half(biased) - half(offset2), act), act);
    const double w = float_zero ? c * half(scale2) + half(zf2) : c * half(scale2);
    out |= uint32_t(to_16(w, act)) << (16 * h);
  }
  return out;
}

struct Lane {
  std::array<uint32_t, 4> a{};
  uint32_t b0 = 0, b1 = 0;
};

// mma.sync m16n8k16 over the warp: D += A * B with A, B gathered from the lanes by the PTX map.
void emulated_mma(const std::array<Lane, 32>& lanes, std::array<std::array<double, 4>, 32>& acc, DType act) {
  double a[16][16] = {}, b[16][8] = {};
  for (int lane = 0; lane < 32; ++lane) {
    for (int i = 0; i < 8; ++i) {
      const Pos p = ptx_a(lane, i);
      a[p.row][p.col] = from_16(uint16_t(lanes[size_t(lane)].a[size_t(i / 2)] >> (16 * (i % 2))), act);
    }
    for (int i = 0; i < 4; ++i) {
      const Pos p = ptx_b(lane, i);
      const uint32_t reg = i < 2 ? lanes[size_t(lane)].b0 : lanes[size_t(lane)].b1;
      b[p.row][p.col] = from_16(uint16_t(reg >> (16 * (i % 2))), act);
    }
  }
  for (int lane = 0; lane < 32; ++lane) {
    for (int i = 0; i < 4; ++i) {
      const Pos p = ptx_c(lane, i);
      double d = 0;
      for (int k = 0; k < 16; ++k) d += a[p.row][k] * b[k][p.col];
      acc[size_t(lane)][size_t(i)] += d;
    }
  }
}

// compute_stage of fused_gemm.cu for one slab (kb, nb) at position `s` of the stage's x tile.
std::vector<double> warp_step(const std::vector<uint16_t>& xs, int mt_count, int s, const GpuPackedWeight& p,
                              int64_t nb, int64_t kb) {
  const bool asym = !p.offsets.empty(), float_zero = !p.zero_adds.empty();
  const int64_t g = std::min(kb * L::kSlabK / p.group_size, p.groups - 1);
  std::vector<std::array<std::array<std::array<double, 4>, 32>, 8>> acc(
      static_cast<size_t>(mt_count));              // [mt][t][lane][r]
  std::array<std::array<Lane, 32>, 8> per_tile{};  // [t][lane]
  for (int mt = 0; mt < mt_count; ++mt) {
    for (int lane = 0; lane < 32; ++lane) {
      uint32_t wv[4], sv[4], zv[4];
      const int64_t row = ((g * p.n_slabs + nb) * 8 + lane / 4) * 8;  // the lane's uint4 of scales
      for (int j = 0; j < 4; ++j) {
        wv[j] = p.codes[size_t(L::code_word_index(nb, kb, p.k_slabs, lane, j))];
        sv[j] = uint32_t(p.scales[size_t(row + 2 * j)]) | uint32_t(p.scales[size_t(row + 2 * j + 1)]) << 16;
        const std::vector<uint16_t>& z = asym ? p.offsets : p.zero_adds;
        zv[j] = z.empty() ? 0u : uint32_t(z[size_t(row + 2 * j)]) | uint32_t(z[size_t(row + 2 * j + 1)]) << 16;
      }
      std::array<uint32_t, 4> a{};
      for (int reg = 0; reg < 4; ++reg) {
        const L::RowCol rc = L::a_fragment(lane, reg);
        const size_t i = size_t(L::x_tile_index(mt * 16 + rc.row, s * L::kSlabK + rc.col));
        a[size_t(reg)] = uint32_t(xs[i]) | uint32_t(xs[i + 1]) << 16;
      }
      const uint32_t sym2 = uint32_t((p.dtype == DType::bf16 ? L::kMagicBf16 : L::kMagicF16) + 8) * 0x10001u;
      for (int jw = 0; jw < 4; ++jw) {
        for (int h = 0; h < 2; ++h) {
          const int t = 2 * jw + h;
          const uint32_t scale2 = dup_half(sv[jw], h);
          const uint32_t offset2 = asym ? dup_half(zv[jw], h) : sym2;
          const uint32_t zf2 = float_zero ? dup_half(zv[jw], h) : 0u;
          Lane& l = per_tile[size_t(t)][size_t(lane)];
          l.a = a;
          l.b0 = dequant_pair(wv[jw], 2 * h, offset2, scale2, zf2, float_zero, p.dtype);
          l.b1 = dequant_pair(wv[jw], 2 * h + 1, offset2, scale2, zf2, float_zero, p.dtype);
        }
      }
    }
    for (int t = 0; t < 8; ++t) emulated_mma(per_tile[size_t(t)], acc[size_t(mt)][size_t(t)], p.dtype);
  }
  // The epilogue's placement: c_fragment -> (row, 8 t + col) of the [16 MT][64] tile.
  std::vector<double> tile(size_t(mt_count * 16 * L::kSlabN), NAN);
  for (int mt = 0; mt < mt_count; ++mt)
    for (int t = 0; t < 8; ++t)
      for (int lane = 0; lane < 32; ++lane)
        for (int r = 0; r < 4; ++r) {
          const L::RowCol rc = L::c_fragment(lane, r);
          tile[size_t((mt * 16 + rc.row) * L::kSlabN + t * 8 + rc.col)] =
              acc[size_t(mt)][size_t(t)][size_t(lane)][size_t(r)];
        }
  return tile;
}

TEST(MmaFragments, OneWarpStepIsTheTileProduct) {
  uint64_t seed = 1;
  for (const ZeroMode mode : {ZeroMode::sym, ZeroMode::asym, ZeroMode::float_zero}) {
    for (const DType act : {DType::f16, DType::bf16}) {
      const QuantizedWeight w = test::random_weight(128, 64, 32, mode, DType::f16, false, seed++);
      const GpuPackedWeight p = pack_gpu(w, act);
      const int mt_count = 2, s = 3;  // the slab sits at k 48..63 of the stage's x tile
      const int64_t nb = 1, kb = 2;
      // The x tile as the pipeline leaves it in shared memory, padding poisoned: reading it is a bug.
      const test::HostMatrix x = test::random_matrix(act, mt_count * 16, L::kTileK, seed++);
      std::vector<uint16_t> xs(size_t(mt_count * 16 * L::kXRow), act == DType::f16 ? 0x7E00 : 0x7FC0);
      for (int r = 0; r < mt_count * 16; ++r)
        for (int c = 0; c < L::kTileK; ++c) xs[size_t(L::x_tile_index(r, c))] = x.bits[size_t(r * L::kTileK + c)];

      const std::vector<double> tile = warp_step(xs, mt_count, s, p, nb, kb);
      for (int r = 0; r < mt_count * 16; ++r) {
        for (int n = 0; n < L::kSlabN; ++n) {
          double want = 0;
          for (int k = 0; k < L::kSlabK; ++k) {
            want += from_16(x.bits[size_t(r * L::kTileK + s * L::kSlabK + k)], act) *
                    from_16(gpu_weight(p, nb * L::kSlabN + n, kb * L::kSlabK + k), act);
          }
          const double got = tile[size_t(r * L::kSlabN + n)];
          ASSERT_NEAR(got, want, 1e-12 * (1 + std::abs(want)))
              << to_string(mode) << " " << to_string(act) << " row " << r << " col " << n;
        }
      }
    }
  }
}

}  // namespace
}  // namespace w4a16::cuda
