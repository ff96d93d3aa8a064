// The AMX kernels' loops, written once over a tile-instruction policy `T` so that the same code
// runs on the hardware (amx_tiles.hpp, the registry entries) and, in the tests, on an emulation of
// the tile instructions on any AVX512-BF16 CPU (tests/support/emulated_tiles.hpp).
//
// The pipeline is the paper's on one core: the vector unit (AVX-512) dequantizes int4 weights into
// B tiles in L1 — the on-chip workspace — and the matrix unit (TDPBF16PS) multiplies them:
//
//   packed codes --AVX-512: shift + vpermw--> B tiles in L1 --TDPBF16PS--> fp32 C tiles
//   (a group at a time)                      [step][4 x 16 columns]      --> out += s * C (+ coef * sum x)
//
// Tiles (palette 1): a B tile is 16 rows x 16 columns of bf16 *pairs* (the VNNI layout: row p holds
// k = 2p, 2p + 1 of each column, k even in the low half), i.e. 32 k x 16 columns; an A tile is up
// to 16 rows of x x 32 bf16 k; a C tile up to 16 rows x 16 fp32. The packed word of a column keeps
// the even k of a chunk of 8 in its low 16 bits and the odd k in its high 16 bits (kernels.hpp),
// so one 16-bit shift right by 4j and one vpermw through a table of bf16(q - 8) give the pairs
// (k_2j, k_2j+1) of 16 columns: one B-tile row, exact (|q - 8| <= 8 needs 4 bits). A step is 32 k
// = 4 chunks; a group of g k is ceil(g / 32) steps, and its last step, when g is not a multiple
// of 32, has zero rows in B and zero columns in A (x is copied into a small A buffer there), so
// that it adds exactly nothing beyond the group.
//
// Registers (1 x 4 blocking, MR = 16 rows x NR = 64 columns): tmm0-3 the C tiles of the 64 columns
// of a packed tile, tmm4 the A tile, tmm5-7 the B tiles in turn. A tile multiply costs the same for
// 1 to 16 rows, so M is cut into the fewest blocks of equal height (M = 20: 2 x 10); the last block
// ends at row M and may overlap the one before it (its first rows are computed again and skipped).
//
// T: configure(TileConfig) (LDTILECFG unless already in force), and for tile numbers t, c, a, b as
// template arguments load<t>(base, stride), store<t>(base, stride), zero<t>(), dot<c, a, b>()
// (TDPBF16PS). Tile loads and stores order with the surrounding memory accesses (the buffers
// written by vector stores just before them, read just after).
//
// Internal linkage (as in avx512_common.hpp): the hardware and emulated instantiations are compiled
// with different flags and must not be merged by the linker.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "common/aligned_buffer.hpp"
#include "common/thread_scratch.hpp"
#include "cpu/amx/tile_dequant.hpp"
#include "cpu/avx512/q4_blocks_avx512.hpp"

namespace w4a16::cpu {
namespace {

inline constexpr int kTileRows = 16;                         // rows of A and C, pair rows of B
inline constexpr int kStepK = 32;                            // k per tile step (16 bf16 pairs)
inline constexpr int kStepChunks = 4;                        // chunks of 8 k per step
inline constexpr int kColumnTiles = 4;                       // C tiles per packed tile of 64 columns
inline constexpr int64_t kTileCells = 256;                   // 32-bit cells of a tile: 16 rows x 64 bytes
static_assert(kTileStepCells == kColumnTiles * kTileCells);  // one step's 4 B tiles (tile_dequant.hpp)

// Steps of 32 k that cover `chunks` chunks of 8 k (the last one may be partial).
inline int64_t step_count(int64_t chunks) { return (chunks + kStepChunks - 1) / kStepChunks; }

// The 64-byte LDTILECFG operand: palette 1; C tiles (0-3) and the A tile (4) `rows` x 64 bytes,
// B tiles (5-7) 16 x 64 bytes. The same for every call with the same row-block height.
struct alignas(64) TileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};
static_assert(sizeof(TileConfig) == 64);

inline TileConfig tile_config(int rows) {
  TileConfig c;
  for (int t = 0; t < 8; ++t) {
    c.colsb[t] = 64;
    c.rows[t] = uint8_t(t <= 4 ? rows : kTileRows);
  }
  return c;
}

// Row blocks of M: the fewest blocks of at most 16 rows, all of the same height.
struct RowBlocks {
  int64_t count = 1, rows = 1;
  explicit RowBlocks(int64_t m) : count((m + kTileRows - 1) / kTileRows), rows(block_height(kTileRows, m)) {}
  int64_t first_row(int64_t m, int64_t b) const { return std::min(b * rows, m - rows); }
};

// Per-thread buffers, heap-held (thread_scratch.hpp: they survive fork and small thread stacks).
struct TileBuffers {
  AlignedBuffer<uint32_t> b;  // [steps or 2 slots][4 column tiles][16 pair rows][16 columns]
  AlignedBuffer<uint16_t> a;  // [16 rows][32 k]: x of a group's last, partial step
  AlignedBuffer<float> c;     // [4 column tiles][16 rows][16 columns]: C tiles read back
};

template <class Tag>
TileBuffers& tile_buffers() {
  TileBuffers& t = thread_scratch<TileBuffers, Tag>();
  if (t.a.size() == 0) {
    t.a.resize(kTileRows * kStepK);
    t.c.resize(kColumnTiles * kTileCells);
  }
  return t;
}

// B tiles of steps [s0, s1) of group chunks [cb, ce): step s holds chunks cb + 4s .. cb + 4s + 3.
inline void dequant_steps(const Q4Tile& w, int64_t cb, int64_t ce, int64_t s0, int64_t s1, __m512i table, uint32_t* b) {
  for (int64_t s = s0; s < s1; ++s) {
    uint32_t* step = b + (s - s0) * kTileStepCells;
    const int64_t c0 = cb + s * kStepChunks, c1 = std::min(ce, c0 + kStepChunks);
    for (int64_t chunk = c0; chunk < c1; ++chunk) {
      const int64_t row = (chunk - c0) * 4;
#pragma GCC unroll 4
      for (int j = 0; j < kColumnTiles; ++j) {
        const __m512i packed = _mm512_load_si512(w.codes + chunk * kTileN + 16 * j);
#pragma GCC unroll 4
        for (int p = 0; p < 4; ++p) {  // the bf16-dot entries' step (DotBf16), on one load of the words
          _mm512_store_si512(step + j * kTileCells + (row + p) * 16,
                             _mm512_permutexvar_epi16(_mm512_srli_epi16(packed, unsigned(4 * p)), table));
        }
      }
    }
    for (int64_t row = (c1 - c0) * 4; row < kTileRows; ++row) {  // a partial step: zero pair rows
      for (int j = 0; j < kColumnTiles; ++j)
        _mm512_store_si512(step + j * kTileCells + row * 16, _mm512_setzero_si512());
    }
  }
}

// The A tile of a step: read in place from x when the step is whole, else its `k` (< 32) columns
// are copied into `buffer` with zeros after them.
template <class T>
inline void load_a(const uint16_t* x, int64_t ld, int64_t rows, int64_t k, uint16_t* buffer) {
  if (k == kStepK) {
    T::template load<4>(x, ld * 2);
    return;
  }
  const __mmask32 keep = __mmask32((uint64_t(1) << k) - 1);
  for (int64_t r = 0; r < rows; ++r)
    _mm512_store_si512(buffer + r * kStepK, _mm512_maskz_loadu_epi16(keep, x + r * ld));
  T::template load<4>(buffer, kStepK * 2);
}

// C += A x B for the four column tiles of one step: B tile j at b + j * next_tile cells, its rows
// `stride` bytes apart.
template <class T>
inline void multiply_step(const uint32_t* b, int64_t next_tile, int64_t stride) {
  T::template load<5>(b, stride);
  T::template dot<0, 4, 5>();
  T::template load<6>(b + next_tile, stride);
  T::template dot<1, 4, 6>();
  T::template load<7>(b + 2 * next_tile, stride);
  T::template dot<2, 4, 7>();
  T::template load<5>(b + 3 * next_tile, stride);
  T::template dot<3, 4, 5>();
}

template <class T>
inline void zero_c() {
  T::template zero<0>();
  T::template zero<1>();
  T::template zero<2>();
  T::template zero<3>();
}

template <class T>
inline void store_c(float* c, int64_t stride) {
  T::template store<0>(c, stride);
  T::template store<1>(c + 16, stride);
  T::template store<2>(c + 32, stride);
  T::template store<3>(c + 48, stride);
}

// out rows [r0 + skip, r0 + rows) += s * C + coef * (sum of x over group g), C read back from the tiles.
template <class T>
inline void add_group(const Q4Tile& w, const Activations& x, int64_t g, int64_t r0, int64_t skip, int64_t rows,
                      float* c, float* out) {
  T::template store<0>(c, 64);
  T::template store<1>(c + kTileCells, 64);
  T::template store<2>(c + 2 * kTileCells, 64);
  T::template store<3>(c + 3 * kTileCells, 64);
  GroupParams p[kColumnTiles];
#pragma GCC unroll 4
  for (int j = 0; j < kColumnTiles; ++j) p[j] = group_params(w, g, j);
  for (int64_t r = skip; r < rows; ++r) {
    float* o = out + (r0 + r) * kTileN;
    const __m512 sum = x.group_sums ? _mm512_set1_ps(x.group_sums[(r0 + r) * w.geom.groups + g]) : __m512{};
#pragma GCC unroll 4
    for (int j = 0; j < kColumnTiles; ++j) {
      __m512 v = _mm512_fmadd_ps(p[j].scale, _mm512_load_ps(c + j * kTileCells + r * 16), _mm512_loadu_ps(o + 16 * j));
      if (x.group_sums) v = _mm512_fmadd_ps(p[j].coef, sum, v);
      _mm512_storeu_ps(o + 16 * j, v);
    }
  }
}

// The fused entry (Q4Kernel contract of kernels.hpp): x as bf16 rows of K'.
//
// One row block (M <= 16): the vector unit and the tile unit work side by side, a step apart. In
// program order step s is multiplied (tile loads and TDPBF16PS, which the tile unit takes over)
// before step s + 1 is dequantized into the other of two 4 KB B buffers (vector instructions the
// out-of-order core issues meanwhile): the paper's AIV -> workspace -> AIC pipeline, with a ring
// of two slots in L1. Several row blocks: each group is dequantized whole first (every block reads
// all of its steps), then each block runs its steps and adds its C tiles.
template <class T, class Tag>
void q4_bf16_tiles(const Q4Tile& w, const Activations& x, int64_t g0, int64_t g1, float* out) {
  const int64_t m = x.m;
  if (m <= 0) return;
  const RowBlocks blocks(m);
  TileBuffers& buf = tile_buffers<Tag>();
  T::configure(tile_config(int(blocks.rows)));
  const __m512i table = DotBf16::table();
  const auto* xs = static_cast<const uint16_t*>(x.data);
  std::fill(out, out + m * kTileN, 0.0f);
  const auto a_tile = [&](int64_t cb, int64_t ce, int64_t s, int64_t r0) {
    const int64_t k0 = (cb + s * kStepChunks) * kChunkK, k = std::min<int64_t>(kStepK, ce * kChunkK - k0);
    load_a<T>(xs + r0 * x.ld + k0, x.ld, blocks.rows, k, buf.a.data());
  };
  if (blocks.count == 1) {
    buf.b.reserve_discard(size_t(2 * kTileStepCells));
    uint32_t* slot[2] = {buf.b.data(), buf.b.data() + kTileStepCells};
    for (int64_t g = g0; g < g1; ++g) {
      const int64_t cb = w.geom.chunk_begin(g), ce = w.geom.chunk_end(g);
      const int64_t steps = step_count(ce - cb);
      zero_c<T>();
      dequant_steps(w, cb, ce, 0, 1, table, slot[0]);
      for (int64_t s = 0; s < steps; ++s) {
        a_tile(cb, ce, s, 0);
        const uint32_t* b = slot[s & 1];
        multiply_step<T>(b, kTileCells, 64);
        if (s + 1 < steps) dequant_steps(w, cb, ce, s + 1, s + 2, table, slot[(s + 1) & 1]);
      }
      add_group<T>(w, x, g, 0, 0, m, buf.c.data(), out);
    }
    return;
  }
  for (int64_t g = g0; g < g1; ++g) {
    const int64_t cb = w.geom.chunk_begin(g), ce = w.geom.chunk_end(g);
    const int64_t steps = step_count(ce - cb);
    buf.b.reserve_discard(size_t(steps * kTileStepCells));
    dequant_steps(w, cb, ce, 0, steps, table, buf.b.data());
    for (int64_t blk = 0; blk < blocks.count; ++blk) {
      const int64_t r0 = blocks.first_row(m, blk);
      zero_c<T>();
      for (int64_t s = 0; s < steps; ++s) {
        a_tile(cb, ce, s, r0);
        const uint32_t* b = buf.b.data() + s * kTileStepCells;
        multiply_step<T>(b, kTileCells, 64);
      }
      add_group<T>(w, x, g, r0, blk * blocks.rows - r0, blocks.rows, buf.c.data(), out);
    }
  }
}

// The dense entry (DenseKernel contract): W as bf16 pairs [K'/2][64], read by the B tiles in
// place (16 pair rows of 16 columns, 256 bytes apart); a partial last step is copied with zero rows.
template <class T, class Tag>
void dense_bf16_tiles(const void* tile, const Activations& x, int64_t c0, int64_t c1, float* out) {
  const int64_t m = x.m;
  if (m <= 0) return;
  const RowBlocks blocks(m);
  TileBuffers& buf = tile_buffers<Tag>();
  T::configure(tile_config(int(blocks.rows)));
  const auto* xs = static_cast<const uint16_t*>(x.data);
  const auto* wt = static_cast<const uint32_t*>(tile);
  const int64_t steps = step_count(c1 - c0);
  const int64_t whole = (c1 - c0) / kStepChunks;
  if (whole < steps) {  // the partial last step, once: [4 column tiles][16 pair rows][16]
    buf.b.reserve_discard(size_t(kTileStepCells));
    const int64_t p0 = (c0 + whole * kStepChunks) * 4, pairs = (c1 - c0 - whole * kStepChunks) * 4;
    for (int j = 0; j < kColumnTiles; ++j) {
      for (int64_t p = 0; p < kTileRows; ++p) {
        const __m512i row = p < pairs ? _mm512_loadu_si512(wt + (p0 + p) * kTileN + 16 * j) : _mm512_setzero_si512();
        _mm512_store_si512(buf.b.data() + j * kTileCells + p * 16, row);
      }
    }
  }
  for (int64_t blk = 0; blk < blocks.count; ++blk) {
    const int64_t r0 = blocks.first_row(m, blk);
    zero_c<T>();
    for (int64_t s = 0; s < steps; ++s) {
      const int64_t k0 = (c0 + s * kStepChunks) * kChunkK, k = std::min<int64_t>(kStepK, c1 * kChunkK - k0);
      load_a<T>(xs + r0 * x.ld + k0, x.ld, blocks.rows, k, buf.a.data());
      if (s < whole) {
        const uint32_t* b = wt + (c0 + s * kStepChunks) * 4 * kTileN;
        multiply_step<T>(b, 16, kTileN * 4);
      } else {
        const uint32_t* b = buf.b.data();
        multiply_step<T>(b, kTileCells, 64);
      }
    }
    store_c<T>(out + r0 * kTileN, kTileN * 4);  // rows computed twice hold the same values
  }
}

}  // namespace
}  // namespace w4a16::cpu
