// Every entry of every kernel table this CPU supports, called directly on packed tiles with
// sub-ranges of groups (or chunks) and compared with its generic twin from kernels.hpp:
//   * fused and dense entries within the derived bound below (they sum in a different order);
//   * dequant entries bitwise (the rounding contract of kernels.hpp).
// Outputs are poisoned with NaN before each call; inputs are fresh random values, never zeros.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "common/aligned_buffer.hpp"
#include "cpu/cpu_features.hpp"
#include "cpu/dispatch.hpp"
#include "cpu/packed_weight.hpp"
#include "cpu/tile_math.hpp"

namespace w4a16::cpu {
namespace {

constexpr double kU = 0x1p-24;  // unit roundoff of fp32

// Every table of the build that this CPU can run, whatever the cap.
std::vector<const KernelTable*> supported_tables() {
  std::vector<const KernelTable*> out;
  for (const KernelTable* t : kernel_tables()) {
    if (t->usable(cpu_features())) out.push_back(t);
  }
  return out;
}

// "q4_f32_12x32__avx512" spells MR = 12, NR = 32; a name without a block (the scalar twins) is
// 1 x 64. Only this test reads names: the library reads the fields.
std::pair<int, int> block_in_name(const std::string& name) {
  const size_t end = name.find("__"), x = name.rfind('x', end), start = name.rfind('_', x);
  if (end == std::string::npos || x == std::string::npos || start == std::string::npos || start + 1 >= x) {
    return {1, 64};
  }
  const std::string rows = name.substr(start + 1, x - start - 1), cols = name.substr(x + 1, end - x - 1);
  if (rows.find_first_not_of("0123456789") != std::string::npos ||
      cols.find_first_not_of("0123456789") != std::string::npos) {
    return {1, 64};
  }
  return {std::stoi(rows), std::stoi(cols)};
}

struct Case {
  int64_t k, g;
  ZeroMode zero;
  DType scale;
};

// Rows of x: fp32 copies of bf16-representable values (so the bf16 and fp32 forms are the same
// numbers), stored with a leading dimension larger than K' to catch indexing by K.
struct Rows {
  int64_t m = 0, ld = 0;
  AlignedBuffer<float> f32;
  AlignedBuffer<uint16_t> bf16;
  std::vector<float> group_sums;  // [m][G], random (the kernels only combine them)
  Activations as(XFormat x, bool with_sums) const {
    return {x == XFormat::bf16 ? static_cast<const void*>(bf16.data()) : f32.data(), ld,
            with_sums ? group_sums.data() : nullptr, m};
  }
};

Rows make_rows(int64_t m, int64_t kp, int64_t groups, std::mt19937_64& rng) {
  std::normal_distribution<float> normal;
  Rows r;
  r.m = m;
  r.ld = kp + 24;
  r.f32.resize(size_t(m * r.ld));
  r.bf16.resize(size_t(m * r.ld));
  for (int64_t i = 0; i < m * r.ld; ++i) {
    float v = normal(rng);
    if (v == 0.0f) v = 0.5f;
    r.bf16[size_t(i)] = f32_to_bf16(v);
    r.f32[size_t(i)] = bf16_to_f32(r.bf16[size_t(i)]);
  }
  r.group_sums.resize(size_t(m * groups));
  for (auto& v : r.group_sums) v = 8.0f * normal(rng);
  return r;
}

PackedWeight make_weight(const Case& c, int64_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal;
  std::vector<float> w(size_t(n * c.k));
  for (auto& v : w) v = normal(rng);
  return pack(
      quantize({w.data(), DType::f32, n, c.k}, {.group_size = c.g, .zero_mode = c.zero, .scale_dtype = c.scale}));
}

const std::vector<Case> kCases = {
    {200, 32, ZeroMode::sym, DType::bf16},         // ragged last group (200 = 6 * 32 + 8)
    {384, 128, ZeroMode::asym, DType::f16},        //
    {260, 64, ZeroMode::float_zero, DType::f32},   // ragged, fp32 scales and zeros
    {512, 256, ZeroMode::asym, DType::bf16},       //
    {100, 100, ZeroMode::float_zero, DType::f16},  // per-channel K, padded to whole chunks
};

// The M values an entry is called with: its range's ends and a middle, capped at 40 rows.
std::vector<int64_t> rows_for(int64_t lo, int64_t hi) {
  const int64_t top = std::min<int64_t>(hi, std::max<int64_t>(lo, 40));
  const std::set<int64_t> unique = {lo, (lo + top) / 2, top};
  return {unique.begin(), unique.end()};
}

// The bound for one output: both the entry and its twin sum, per group of n terms, products
// x * (q - 8) (exact in fp32) in some order, then form s * acc + coef * gsum and add it to the
// running sum over at most G groups. Each is within (n + G + 2) * u of the exact value relative
// to the sum of the absolute values of every term (the standard recursive-summation bound
// gamma_n ~ n * u); the difference of the two is at most twice that.
double q4_bound(const Q4Tile& w, const Rows& x, bool sums, int64_t r, int64_t c, int64_t g0, int64_t g1) {
  double mass = 0;
  int64_t longest = 0;
  for (int64_t g = g0; g < g1; ++g) {
    double group = 0;
    for (int64_t ch = w.geom.chunk_begin(g); ch < w.geom.chunk_end(g); ++ch) {
      for (int kk = 0; kk < 8; ++kk) {
        group += std::fabs(double(x.f32[size_t(r * x.ld + ch * 8 + kk)]) * (code_at(w.codes, ch, c, kk) - 8));
      }
    }
    longest = std::max(longest, (w.geom.chunk_end(g) - w.geom.chunk_begin(g)) * 8);
    mass += std::fabs(double(tile_scale(w, g, c))) * group;
    if (sums) mass += std::fabs(double(tile_zero_coef(w, g, c)) * x.group_sums[size_t(r * w.geom.groups + g)]);
  }
  return 2.0 * double(longest + (g1 - g0) + 2) * kU * mass + 1e-30;
}

TEST(Registry, EveryTableCoversEveryMOfItsFormatsWithUniqueSpecNamedEntries) {
  std::set<std::string> names;
  for (const KernelTable* t : supported_tables()) {
    const std::string isa = std::string("__") + t->name;
    for (XFormat x : {XFormat::f32, XFormat::bf16}) {
      int64_t next = 1;  // the entries of a format, in table order, tile [1, inf) without gaps
      bool any = false;
      for (const Q4Entry& e : t->q4) {
        if (e.x != x) continue;
        any = true;
        EXPECT_EQ(e.m_min, next) << e.name;
        EXPECT_LE(e.m_min, e.m_max) << e.name;
        next = e.m_max == kAnyM ? kAnyM : e.m_max + 1;
      }
      if (any) {
        EXPECT_EQ(next, kAnyM) << t->name << ": the last fused entry must serve every larger M";
      }
    }
    for (const Q4Entry& e : t->q4) {
      ASSERT_NE(e.fn, nullptr) << e.name;
      const std::string name = e.name;
      EXPECT_TRUE(names.insert(name).second) << "duplicate entry name " << name;
      EXPECT_EQ(name.rfind(e.x == XFormat::bf16 ? "q4_bf16" : "q4_f32", 0), 0u) << name;
      EXPECT_EQ(name.substr(name.size() - isa.size()), isa) << name << " is not in its ISA's table";
      EXPECT_EQ(e.isa, t) << name;
      EXPECT_EQ(block_in_name(name), std::make_pair(e.mr, e.nr)) << name << ": the name must spell MR x NR";
      EXPECT_EQ(name.find("_panel_") != std::string::npos, e.panel) << name;
    }
    for (const DenseEntry& e : t->dense) {
      ASSERT_NE(e.fn, nullptr) << e.name;
      const std::string name = e.name;
      EXPECT_TRUE(names.insert(name).second) << "duplicate entry name " << name;
      const std::string family =
          std::string(e.weight == DType::f16 ? "dense_f16" : "dense_bf16") + (e.x == XFormat::bf16 ? "_bf16" : "_f32");
      EXPECT_EQ(name.rfind(family, 0), 0u) << name;
      EXPECT_EQ(name.substr(name.size() - isa.size()), isa) << name;
      EXPECT_EQ(e.isa, t) << name;
      EXPECT_EQ(block_in_name(name), std::make_pair(e.mr, e.nr)) << name << ": the name must spell MR x NR";
    }
    if (t->dequant.fn) EXPECT_EQ(t->dequant.isa, t) << t->dequant.name;
    EXPECT_NE(find_dequant(*t).fn, nullptr) << t->name;
    // The lookups return an entry for every M whatever the table (lower tables fill the gaps).
    for (int64_t m : {1, 2, 5, 24, 25, 1000}) {
      EXPECT_NE(find_q4(*t, XFormat::f32, m), nullptr) << t->name << " M=" << m;
      EXPECT_NE(find_dense(*t, DType::f16, XFormat::f32, m), nullptr) << t->name << " M=" << m;
      EXPECT_NE(find_dense(*t, DType::bf16, XFormat::f32, m), nullptr) << t->name << " M=" << m;
    }
  }
}

// The ISA registry: unique names, each table's chain ends in scalar, dispatch prefers a table over
// the ones it falls back to, and a cap bounds the choice to the cap's chain.
TEST(Registry, TablesChainToScalarAndTheCapBoundsTheChoice) {
  std::set<std::string> names;
  for (const KernelTable* t : kernel_tables()) {
    EXPECT_TRUE(names.insert(t->name).second) << t->name;
    ASSERT_NE(t->usable, nullptr) << t->name;
    const KernelTable* last = t;
    int depth = 0;
    while (last->fallback && depth < 64) last = last->fallback, ++depth;
    EXPECT_EQ(last, &scalar_kernels()) << t->name;
    EXPECT_EQ(&kernel_table(t->name), t);
  }
  EXPECT_THROW(kernel_table("no_such_isa"), Error);
  const std::vector<std::string> usable = supported_isas();
  ASSERT_FALSE(usable.empty());
  EXPECT_EQ(usable.front(), "scalar");
  for (const std::string& cap : usable) {
    set_isa_cap(cap);
    EXPECT_EQ(active_isa(), cap) << "a usable cap is what runs";
  }
  set_isa_cap("");
  const char* env = std::getenv("W4A16_ISA");
  if (!env || !*env) EXPECT_EQ(active_isa(), usable.back()) << "the usable table with the longest chain runs";
}

TEST(Registry, EveryFusedEntryMatchesItsGenericTwinOnSubRangesOfGroups) {
  int checked = 0;
  for (const KernelTable* t : supported_tables()) {
    for (const Q4Entry& e : t->q4) {
      const Q4Kernel twin = e.x == XFormat::bf16 ? q4_bf16_generic : q4_f32_generic;
      for (size_t ci = 0; ci < kCases.size(); ++ci) {
        const Case& c = kCases[ci];
        const PackedWeight packed = make_weight(c, 2 * kTileN - 5, 17 + ci);
        const auto& p = packed.impl();
        const int64_t groups = p.geom.groups;
        std::mt19937_64 rng(1000 + ci);
        for (int64_t m : rows_for(e.m_min, e.m_max)) {
          const Rows x = make_rows(m, p.k_padded, groups, rng);
          const bool sums = c.zero != ZeroMode::sym;
          // Sub-ranges: all groups; from the second; up to the one before last; a single one.
          const std::vector<std::pair<int64_t, int64_t>> ranges = {{0, groups},
                                                                   {std::min<int64_t>(1, groups - 1), groups},
                                                                   {0, std::max<int64_t>(1, groups - 1)},
                                                                   {groups / 2, groups / 2 + 1}};
          for (auto [g0, g1] : ranges) {
            for (int64_t tile = 0; tile < p.tiles; ++tile) {
              const Q4Tile w = p.tile(tile);
              AlignedBuffer<float> got(size_t(m * kTileN)), want(size_t(m * kTileN));
              for (int64_t i = 0; i < m * kTileN; ++i) got[size_t(i)] = want[size_t(i)] = NAN;
              e.fn(w, x.as(e.x, sums), g0, g1, got.data());
              twin(w, x.as(e.x, sums), g0, g1, want.data());
              int bad = 0;
              for (int64_t r = 0; r < m && bad < 3; ++r) {
                for (int64_t col = 0; col < kTileN && bad < 3; ++col) {
                  const double d = std::fabs(double(got[size_t(r * kTileN + col)]) - want[size_t(r * kTileN + col)]);
                  const double bound = q4_bound(w, x, sums, r, col, g0, g1);
                  if (!(d <= bound)) {
                    ++bad;
                    ADD_FAILURE() << e.name << " M=" << m << " K=" << c.k << " g=" << c.g << " " << to_string(c.zero)
                                  << " scales " << to_string(c.scale) << " groups [" << g0 << "," << g1 << ") tile "
                                  << tile << " row " << r << " col " << col << ": got " << got[size_t(r * kTileN + col)]
                                  << " want " << want[size_t(r * kTileN + col)] << " (bound " << bound << ")";
                  }
                }
              }
              ++checked;
            }
          }
        }
      }
    }
  }
  EXPECT_GT(checked, 0);
}

TEST(Registry, EveryDenseEntryMatchesItsGenericTwinOnSubRangesOfChunks) {
  int checked = 0;
  for (const KernelTable* t : supported_tables()) {
    for (const DenseEntry& e : t->dense) {
      const DenseKernel twin = e.weight == DType::f16 ? dense_f16_f32_generic
                               : e.x == XFormat::bf16 ? dense_bf16_bf16_generic
                                                      : dense_bf16_f32_generic;
      const Case c{392, 8, ZeroMode::float_zero, DType::f32};  // 49 chunks: several blocks of 16, ragged
      const PackedWeight packed = make_weight(c, kTileN, 99);
      const auto& p = packed.impl();
      const uint16_t* tile = p.dense_tile(e.weight, 0);
      const int64_t chunks = p.geom.chunks();
      std::mt19937_64 rng(7);
      for (int64_t m : rows_for(e.m_min, e.m_max)) {
        const Rows x = make_rows(m, p.k_padded, 1, rng);
        for (auto [c0, c1] : std::vector<std::pair<int64_t, int64_t>>{{0, chunks}, {3, chunks}, {5, 22}, {17, 18}}) {
          AlignedBuffer<float> got(size_t(m * kTileN)), want(size_t(m * kTileN));
          for (int64_t i = 0; i < m * kTileN; ++i) got[size_t(i)] = want[size_t(i)] = NAN;
          e.fn(tile, x.as(e.x, false), c0, c1, got.data());
          twin(tile, x.as(e.x, false), c0, c1, want.data());
          for (int64_t r = 0; r < m; ++r) {
            for (int64_t col = 0; col < kTileN; ++col) {
              double mass = 0;  // sum of |x * w| over the range: products of 16-bit values are exact in fp32
              for (int64_t k = c0 * 8; k < c1 * 8; ++k) {
                const uint16_t bits =
                    e.weight == DType::f16 ? tile[k * kTileN + col] : tile[((k / 2) * kTileN + col) * 2 + (k & 1)];
                const float wv = e.weight == DType::f16 ? f16_to_f32(bits) : bf16_to_f32(bits);
                mass += std::fabs(double(x.f32[size_t(r * x.ld + k)]) * wv);
              }
              const double bound = 2.0 * double((c1 - c0) * 8 + 2) * kU * mass + 1e-30;
              const double d = std::fabs(double(got[size_t(r * kTileN + col)]) - want[size_t(r * kTileN + col)]);
              ASSERT_LE(d, bound) << e.name << " M=" << m << " chunks [" << c0 << "," << c1 << ") row " << r << " col "
                                  << col << ": got " << got[size_t(r * kTileN + col)] << " want "
                                  << want[size_t(r * kTileN + col)];
            }
          }
          ++checked;
        }
      }
    }
  }
  EXPECT_GT(checked, 0);
}

TEST(Registry, EveryDequantEntryIsBitwiseTheGenericTwin) {
  int checked = 0;
  for (const KernelTable* t : supported_tables()) {
    for (size_t ci = 0; ci < kCases.size(); ++ci) {
      const PackedWeight packed = make_weight(kCases[ci], kTileN + 3, 40 + ci);
      const auto& p = packed.impl();
      const int64_t groups = p.geom.groups;
      for (DType dtype : {DType::f16, DType::bf16}) {
        for (auto [g0, g1] : std::vector<std::pair<int64_t, int64_t>>{
                 {0, groups}, {groups / 2, groups}, {0, std::max<int64_t>(1, groups / 2)}}) {
          for (int64_t tile = 0; tile < p.tiles; ++tile) {
            const size_t elems = size_t((p.geom.chunk_end(g1 - 1) - p.geom.chunk_begin(g0)) * 8 * kTileN);
            AlignedBuffer<uint16_t> got(elems), want(elems);
            std::memset(got.data(), 0xA5, elems * 2);
            std::memset(want.data(), 0x5A, elems * 2);
            if (!t->dequant.fn) continue;  // the fallback's, tested with its own table
            t->dequant.fn(p.tile(tile), g0, g1, dtype, got.data());
            dequant_generic(p.tile(tile), g0, g1, dtype, want.data());
            ASSERT_EQ(std::memcmp(got.data(), want.data(), elems * 2), 0)
                << t->dequant.name << " " << to_string(dtype) << " case " << ci << " groups [" << g0 << "," << g1
                << ") tile " << tile;
            ++checked;
          }
        }
      }
    }
  }
  EXPECT_GT(checked, 0);
}

}  // namespace
}  // namespace w4a16::cpu
