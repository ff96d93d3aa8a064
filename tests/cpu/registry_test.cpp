// Every entry of every kernel table this CPU supports, called directly on packed tiles with
// sub-ranges of groups (or chunks) and compared with its generic twin from kernels.hpp:
//   * fused and dense entries within the derived bound of twin_check.hpp (they sum in a different order);
//   * dequant entries bitwise (the rounding contract of kernels.hpp).
// Outputs are poisoned with NaN before each call; inputs are fresh random values, never zeros.
// The registry's shape: names that spell the fields, M ranges without gaps, chains to scalar.
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
#include "cpu/twin_check.hpp"

namespace w4a16::cpu {
namespace {

using twin::kCases;
using twin::make_weight;

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
    if (t->dequant.fn) {
      EXPECT_EQ(t->dequant.isa, t) << t->dequant.name;
    }
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
  if (!env || !*env) {
    EXPECT_EQ(active_isa(), usable.back()) << "the usable table with the longest chain runs";
  }
}

TEST(Registry, EveryFusedEntryMatchesItsGenericTwinOnSubRangesOfGroups) {
  int checked = 0;
  for (const KernelTable* t : supported_tables()) {
    for (const Q4Entry& e : t->q4) checked += twin::check_fused_twin(e.name, e.fn, e.x, e.m_min, e.m_max);
  }
  EXPECT_GT(checked, 0);
}

TEST(Registry, EveryDenseEntryMatchesItsGenericTwinOnSubRangesOfChunks) {
  int checked = 0;
  for (const KernelTable* t : supported_tables()) {
    for (const DenseEntry& e : t->dense)
      checked += twin::check_dense_twin(e.name, e.fn, e.weight, e.x, e.m_min, e.m_max);
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
