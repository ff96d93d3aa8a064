// The CPU kernel contract: packed layouts, micro-kernel signatures and the per-ISA kernel table.
//
// Packed int4 layout (made once by pack(), see packed_weight.cpp). Output columns are cut into
// tiles of kTileN = 64 (four 16-lane fp32 vectors; N is padded with code 8 / scale 0 columns).
// K is cut into chunks of kChunkK = 8; every group is padded to whole chunks (gp = ceil(g/8)*8,
// the last group to ceil(L/8)*8), so a chunk never straddles two groups. Per tile:
//
//   codes   [chunks][64] uint32   one word per column per chunk, nibbles:
//             bits  0-3 k0 | 4-7 k2 | 8-11 k4 | 12-15 k6 | 16-19 k1 | 20-23 k3 | 24-27 k5 | 28-31 k7
//           The low 16 bits hold the even k and the high 16 bits the odd k of the chunk, so one
//           16-bit shift right by 4j leaves the pair (k_2j, k_2j+1) of every column in the low
//           nibble of each half: the operand layout of vdpbf16ps (a pair of adjacent k per
//           32-bit lane, lanes = columns, hence no horizontal sums). A 32-bit shift by 4j puts
//           k_{order[j]} (order = 0,2,4,6,1,3,5,7) in the low nibble of each lane for the fp32
//           kernels, whose table lookup (vpermps) ignores the higher bits.
//   scales  [G][64] in the scale dtype (fp16, bf16 or fp32), kept 16-bit so the byte ratio to
//           a dense weight stays what the format promises.
//   zeros   [G][64] uint8 (asym) or scale dtype (float zero); absent for sym.
//
// Dense layouts (the FP16 baseline and the decoupled workspace), per tile:
//   bf16    [K'/2][64] uint32: bf16 pair (k even in the low half, k+1 in the high half)
//   fp16    [K'][64]   uint16: one fp16 per column per k (vcvtph2ps widens 16 columns at once)
//
// Every kernel reduces over whole groups (or whole chunks for dense) and *overwrites* an fp32
// tile out[m][64]: the driver adds bias, reduces split-K partials and rounds to the output dtype.
#pragma once

#include <cstdint>
#include <span>

#include "w4a16/w4a16.hpp"

namespace w4a16::cpu {

inline constexpr int64_t kTileN = 64;
inline constexpr int64_t kChunkK = 8;

// Where the groups of a packed weight start, in chunks.
struct GroupGeometry {
  int64_t groups = 0;             // G = ceil(K/g)
  int64_t chunks_per_group = 0;   // ceil(g/8)
  int64_t last_group_chunks = 0;  // ceil(L/8), L = length of the last group
  int64_t chunks() const { return (groups - 1) * chunks_per_group + last_group_chunks; }
  int64_t chunk_begin(int64_t group) const { return group * chunks_per_group; }
  int64_t chunk_end(int64_t group) const { return group == groups - 1 ? chunks() : (group + 1) * chunks_per_group; }
};

// One tile of a packed int4 weight.
struct Q4Tile {
  const uint32_t* codes = nullptr;  // [chunks][64]
  const void* scales = nullptr;     // [G][64] scale dtype
  const void* zeros = nullptr;      // [G][64] uint8 (asym) / scale dtype (float) / nullptr (sym)
  DType scale_dtype = DType::f16;
  ZeroMode zero_mode = ZeroMode::sym;
  GroupGeometry geom;
};

// Activations as the kernels read them: rows of the padded, permuted K' (zeros in padding).
struct Activations {
  const void* data = nullptr;         // [m][ld]: bf16 bits for *_bf16 kernels, fp32 otherwise
  int64_t ld = 0;                     // elements between rows
  const float* group_sums = nullptr;  // [m][G] sum of each group of x (asym/float zero), else nullptr
  int64_t m = 0;
};

// out[r][c] = sum over groups [g0, g1) of  s[g][c] * sum_{k in g} x[r][k] * (q[k][c] - 8)
//                                        + coef[g][c] * group_sums[r][g]
// with coef = (8 - z) * s (asym), zf (float zero), 0 (sym). out is [x.m][64] fp32.
using Q4Kernel = void (*)(const Q4Tile& w, const Activations& x, int64_t g0, int64_t g1, float* out);

// out[r][c] = sum over chunks [c0, c1) of the dense tile (layout per kernel, see above).
using DenseKernel = void (*)(const void* tile, const Activations& x, int64_t c0, int64_t c1, float* out);

// Decoupled stage 1: writes groups [g0, g1) of the tile as dense 16-bit weights (q - z) * s (+ zf),
// rounded as dequant_generic states (below), into `panel` in the dense layout of `dtype` (bf16 pairs or
// fp16), starting at the first chunk of g0.
using DequantKernel = void (*)(const Q4Tile& w, int64_t g0, int64_t g1, DType dtype, void* panel);

// How the rows of x reach an entry. An entry reads up to MR rows of x at once, in the fewest
// blocks of at most MR rows, of balanced heights (M = 13 with MR = 12: 7 + 6). When a row is a
// multiple of 4 KiB, the same k of every row falls in one L1 set (64 sets of 64 bytes on every
// x86 L1 we run on), and a block of more rows than the set has ways evicts its own x: on Zen 4
// (32 KB, 8-way) `w4a16_bench_registry` measured q4_bf16_12x32__avx512bf16 at 193 GFLOP/s with 9
// rows a block, 142 with 11 and 111 with 12 (K = 4096). The executor then copies x with one more
// cache line a row (`x_rows_apart`); a block of at most kRowsPerL1Set rows reads it in place.
inline constexpr int64_t kRowsPerL1Set = 8;
inline int64_t block_height(int64_t mr, int64_t m) {
  if (m <= 0 || mr <= 0) return 0;  // no rows (or no block): nothing is read
  const int64_t blocks = (m + mr - 1) / mr;
  return (m + blocks - 1) / blocks;
}
inline bool x_rows_apart(int64_t mr, int64_t m, int64_t row_bytes) {
  return row_bytes % 4096 == 0 && block_height(mr, m) > kRowsPerL1Set;
}

struct CpuFeatures;
struct KernelTable;

// Rows of x without an upper bound.
inline constexpr int64_t kAnyM = INT64_MAX;

// One micro-kernel of the registry, described by its fields (the planner, the cost model, the
// tests and the benchmarks read these, never the name). Names are family_MRxNR__isa and are only
// printed: e.g. q4_f32_12x32__avx512 keeps up to MR = 12 rows x NR = 32 columns of fp32
// accumulators (two passes over the 64 columns of a tile); tests/cpu/registry_test.cpp checks
// that each name spells its fields.
struct Q4Entry {
  const char* name = nullptr;
  const KernelTable* isa = nullptr;  // the table (ISA) it is compiled for
  XFormat x = XFormat::f32;          // how it reads x (Activations::data)
  int mr = 1, nr = kTileN;           // register block: rows of x x output columns
  bool panel = false;                // dequantizes each group once into an L1 panel that every
                                     // row block reads (the prefill entries), not once per block
  int64_t m_min = 1, m_max = kAnyM;  // the rows of x it serves (the planner picks by M)
  Q4Kernel fn = nullptr;
};

struct DenseEntry {
  const char* name = nullptr;
  const KernelTable* isa = nullptr;
  DType weight = DType::bf16;  // f16: [K'][64] fp16; bf16: [K'/2][64] bf16 pairs
  XFormat x = XFormat::f32;
  int mr = 1, nr = kTileN;
  int64_t m_min = 1, m_max = kAnyM;
  DenseKernel fn = nullptr;
};

struct DequantEntry {
  const char* name = nullptr;
  const KernelTable* isa = nullptr;
  DequantKernel fn = nullptr;
};

// One instruction set and its kernels: one table_<isa>.cpp per ISA folder, listed by the ISA's
// one line in src/CMakeLists.txt (w4a16_isa_library), which also gives its compiler flags. An ISA
// need not contain another: `fallback` names the table that serves the formats and stages this
// one has no entry for (avx512bf16 adds the bf16-dot entries and falls back to avx512's fp32
// ones; a tile unit would add its entries beside AVX-512 the same way). Dispatch (dispatch.hpp)
// runs the usable table with the longest fallback chain, so a table is preferred over the ones it
// falls back to.
struct KernelTable {
  const char* name = "scalar";                   // W4A16_ISA / set_isa_cap spelling, GemmPlan::isa
  bool (*usable)(const CpuFeatures&) = nullptr;  // this CPU and OS can run it (cpuid + xgetbv)
  const KernelTable* fallback = nullptr;         // nullptr for scalar only
  bool tiles = false;  // multiplies on a matrix unit (AMX tiles): its bf16-x entries are preferred
                       // whatever the vector-dot rule (dispatch.hpp prefer_bf16_dot) says
  std::span<const Q4Entry> q4;
  std::span<const DenseEntry> dense;
  DequantEntry dequant;  // empty: the fallback's
};

// The tables this build has, in their CMake order (cpu/dispatch.cpp; generated list).
std::span<const KernelTable* const> kernel_tables();
// The scalar table: the generic twins, which serve every format and M.
const KernelTable& scalar_kernels();

// The generic twins (kernels_scalar.cpp): the portable definition of each contract above, which
// every registry entry is tested against (tests/cpu/registry_test.cpp). Same summation structure
// (fp32 per-group accumulators, then s * acc + coef * group_sum).
void q4_f32_generic(const Q4Tile& w, const Activations& x, int64_t g0, int64_t g1, float* out);
void q4_bf16_generic(const Q4Tile& w, const Activations& x, int64_t g0, int64_t g1, float* out);
void dense_f16_f32_generic(const void* tile, const Activations& x, int64_t c0, int64_t c1, float* out);
void dense_bf16_f32_generic(const void* tile, const Activations& x, int64_t c0, int64_t c1, float* out);
void dense_bf16_bf16_generic(const void* tile, const Activations& x, int64_t c0, int64_t c1, float* out);
// The dequantization rounding contract, which every dequant entry meets bitwise: the value
// (q - 8) * s + coef is one fp32 fused multiply-add (one rounding; exact for sym and asym with
// 16-bit scales, where it equals (q - z) * s), then one round-to-nearest-even to the 16-bit dtype.
void dequant_generic(const Q4Tile& w, int64_t g0, int64_t g1, DType dtype, void* panel);

}  // namespace w4a16::cpu
