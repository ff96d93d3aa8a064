// The CUDA kernels' layout and dequantization trick, on the CPU: which nibble of which word feeds
// which mma fragment register (against the PTX fragment definition, written out independently
// here), the magic-number decode of every code, and the packed copy of random weights decoding to
// the reference formula bit for bit. No GPU needed: these run in every CI build.
#include "cuda/gpu_layout.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "cuda/gpu_pack.hpp"
#include "support/random_quantized.hpp"
#include "w4a16/float16.hpp"

namespace w4a16::cuda {
namespace {

namespace L = layout;
using test::random_weight;

double from_16(uint16_t bits, DType dtype) { return dtype == DType::bf16 ? bf16_to_f32(bits) : f16_to_f32(bits); }
uint16_t to_16(double v, DType dtype) { return dtype == DType::bf16 ? f64_to_bf16(v) : f64_to_f16(v); }

TEST(GpuLayout, SlotsAreABijectionOfTheSlab) {
  std::set<std::tuple<int, int, int>> used;
  for (int k = 0; k < L::kSlabK; ++k) {
    for (int n = 0; n < L::kSlabN; ++n) {
      const L::Slot s = L::slot_of(k, n);
      ASSERT_TRUE(s.lane >= 0 && s.lane < L::kLanes && s.word >= 0 && s.word < L::kWordsPerLane && s.nibble >= 0 &&
                  s.nibble < 8);
      EXPECT_TRUE(used.insert({s.lane, s.word, s.nibble}).second) << "k=" << k << " n=" << n;
      int k2 = -1, n2 = -1;
      L::element_of(s.lane, s.word, s.nibble, k2, n2);
      EXPECT_EQ(k2, k);
      EXPECT_EQ(n2, n);
    }
  }
  EXPECT_EQ(used.size(), size_t(L::kSlabWords * 8));
}

// PTX ISA, mma.m16n8k16 with .f16/.bf16 operands, fragment of B (16 x 8, "col"): lane l holds
// b0 = {B[2q][g], B[2q+1][g]} and b1 = {B[2q+8][g], B[2q+9][g]} with g = l / 4, q = l % 4, the
// lower k in the lower 16 bits. Pair p of word j must be register (p % 2) of tile 2j + p / 2.
TEST(GpuLayout, EveryPairIsAnMmaFragmentRegister) {
  for (int lane = 0; lane < L::kLanes; ++lane) {
    for (int word = 0; word < L::kWordsPerLane; ++word) {
      for (int pair = 0; pair < 4; ++pair) {
        const int tile = L::tile_of_pair(word, pair), reg = L::register_of_pair(pair);
        for (int half = 0; half < 2; ++half) {
          const int want_k = 2 * (lane % 4) + 8 * reg + half, want_n = 8 * tile + lane / 4;
          int k = -1, n = -1;
          L::element_of(lane, word, pair + 4 * half, k, n);
          EXPECT_EQ(k, want_k) << "lane " << lane << " word " << word << " pair " << pair << " half " << half;
          EXPECT_EQ(n, want_n) << "lane " << lane << " word " << word << " pair " << pair << " half " << half;
        }
      }
    }
  }
}

// Every code in every nibble slot, the other slots random: the half reads MAGIC + code exactly.
TEST(GpuLayout, MagicPairDecodesEveryCodeInEverySlot) {
  std::mt19937 rng(7);
  for (const DType dtype : {DType::f16, DType::bf16}) {
    const uint16_t magic = dtype == DType::f16 ? L::kMagicF16 : L::kMagicBf16;
    const int magic_value = dtype == DType::f16 ? L::kMagicValueF16 : L::kMagicValueBf16;
    EXPECT_EQ(from_16(magic, dtype), magic_value);
    for (int slot = 0; slot < 8; ++slot) {
      for (uint32_t code = 0; code < 16; ++code) {
        const uint32_t others = rng() & ~(0xFu << (4 * slot));
        const uint32_t word = others | (code << (4 * slot));
        const uint32_t pair = L::magic_pair(word, slot % 4, magic);
        const uint16_t half = uint16_t(slot / 4 ? pair >> 16 : pair & 0xFFFF);
        EXPECT_EQ(from_16(half, dtype), double(magic_value + int(code))) << to_string(dtype) << " slot " << slot;
      }
    }
  }
}

// The arithmetic after the trick, for every code and every integer zero: the subtraction of
// MAGIC + z is exact in both dtypes, so w = round(c * s + zf) is one rounding of the exact value.
TEST(GpuLayout, SubtractingTheOffsetIsExactForEveryCodeAndZero) {
  for (const DType dtype : {DType::f16, DType::bf16}) {
    const int magic_value = dtype == DType::f16 ? L::kMagicValueF16 : L::kMagicValueBf16;
    for (int q = 0; q < 16; ++q) {
      for (int z = 0; z <= 16; ++z) {
        const uint16_t offset = to_16(magic_value + z, dtype);
        EXPECT_EQ(from_16(offset, dtype), magic_value + z);
        const uint16_t c = to_16(double(magic_value + q) - from_16(offset, dtype), dtype);
        EXPECT_EQ(from_16(c, dtype), q - z) << to_string(dtype) << " q=" << q << " z=" << z;
      }
    }
  }
}

// The packed copy decodes, element by element through the same bit operations, to the formula
// w = round((q - z) * round(s) + round(zf)) — bit for bit — over ragged N and K, every supported
// group size, zero mode and dtype pair; padded columns decode to 0.
TEST(GpuPack, PackedWeightDecodesToTheFormulaBitForBit) {
  struct Shape {
    int64_t n, k;
  };
  uint64_t seed = 1;
  for (const Shape sh : {Shape{1, 16}, Shape{63, 48}, Shape{64, 128}, Shape{130, 300}, Shape{70, 512}}) {
    for (const int64_t g : {int64_t(16), int64_t(32), int64_t(64), int64_t(128), int64_t(256), sh.k}) {
      if (g > sh.k && g != sh.k) continue;
      for (const ZeroMode mode : {ZeroMode::sym, ZeroMode::asym, ZeroMode::float_zero}) {
        for (const DType scale_dtype : {DType::f16, DType::bf16}) {
          for (const DType act : {DType::f16, DType::bf16}) {
            const QuantizedWeight w = random_weight(sh.n, sh.k, g, mode, scale_dtype, seed % 3 == 0, seed);
            ++seed;
            const GpuPackedWeight p = pack_gpu(w, act);
            ASSERT_EQ(p.codes.size(), size_t(p.n_slabs * p.k_slabs * L::kSlabWords));
            EXPECT_EQ(p.perm, w.perm());
            for (int64_t n = 0; n < sh.n; ++n) {
              for (int64_t k = 0; k < sh.k; ++k) {
                const int64_t grp = k / g;
                const double s = from_16(to_16(w.scale(n, grp), act), act);
                const double zf = from_16(to_16(w.zero_float(n, grp), act), act);
                const uint16_t want = to_16(double(int(w.code(n, k)) - w.zero_int(n, grp)) * s + zf, act);
                const uint16_t got = gpu_weight(p, n, k);
                ASSERT_EQ(got, want) << sh.n << "x" << sh.k << " g=" << g << " " << to_string(mode) << " scales "
                                     << to_string(scale_dtype) << " act " << to_string(act) << " at n=" << n
                                     << " k=" << k;
              }
            }
            for (int64_t n = sh.n; n < p.n_slabs * L::kSlabN; ++n) {
              EXPECT_EQ(from_16(gpu_weight(p, n, 0), act), 0.0) << "padded column " << n;
            }
          }
        }
      }
    }
  }
}

// Close to the reference value too: within one rounding of the 16-bit dtype (two when the scale
// itself was rounded to a narrower dtype), relative to the weight.
TEST(GpuPack, PackedWeightIsTheReferenceValueWithinRounding) {
  const QuantizedWeight w = random_weight(96, 256, 64, ZeroMode::asym, DType::f16, false, 99);
  for (const DType act : {DType::f16, DType::bf16}) {
    const GpuPackedWeight p = pack_gpu(w, act);
    const double ulp = act == DType::f16 ? std::ldexp(1.0, -10) : std::ldexp(1.0, -7);
    for (int64_t n = 0; n < w.n(); ++n) {
      for (int64_t k = 0; k < w.k(); ++k) {
        const double want = w.value(n, k), got = from_16(gpu_weight(p, n, k), act);
        EXPECT_LE(std::abs(got - want), 2 * ulp * std::abs(want) + 1e-30) << "n=" << n << " k=" << k;
      }
    }
  }
}

TEST(GpuPack, RefusesWhatTheKernelsCannotTile) {
  const QuantizedWeight odd = random_weight(8, 96, 24, ZeroMode::sym, DType::f16, false, 5);
  try {
    pack_gpu(odd, DType::f16);
    FAIL() << "g = 24 accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::unsupported);
    EXPECT_NE(std::string(e.what()).find("multiple of 16"), std::string::npos) << e.what();
  }
  const QuantizedWeight ok = random_weight(8, 96, 32, ZeroMode::sym, DType::f16, false, 6);
  EXPECT_THROW(pack_gpu(ok, DType::f32), Error);
  // Per-channel with a K that is not a multiple of 16 is fine: one group, the last slab padded.
  const QuantizedWeight per_channel = random_weight(8, 40, 40, ZeroMode::sym, DType::f16, false, 7);
  EXPECT_NO_THROW(pack_gpu(per_channel, DType::bf16));
}

}  // namespace
}  // namespace w4a16::cuda
