// The tile-instruction policy of src/cpu/amx/tile_gemm.hpp in plain C++, so that the AMX kernels'
// loops run (and are checked, under ASan too) on CPUs without AMX. Each instruction does what the
// SDM's pseudo-code says, and checks what the hardware would fault on:
//   LDTILECFG  palette 1, at most 16 rows and 64 bytes a row; zeroes every tile
//   TILELOADD / TILESTORED  exactly rows x colsb bytes, row r at base + r * stride (so ASan sees
//              every byte a kernel would make the tile unit read or write); a tile not configured
//              is a fault
//   TDPBF16PS  C[m][n] += A[m][2k] * B[k][2n] + A[m][2k+1] * B[k][2n+1] in fp32, for k in order,
//              each product added on its own (a product of two bf16 is exact in fp32); shapes must
//              agree: rows(A) = rows(C), rows(B) = colsb(A) / 4, colsb(B) = colsb(C)
// Denormals are not flushed (the hardware's DAZ/FTZ); the tests' inputs are normal numbers.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include "cpu/amx/tile_gemm.hpp"
#include "w4a16/float16.hpp"

namespace w4a16::cpu {
namespace {

struct EmulatedTiles {
  struct State {
    TileConfig config;
    bool configured = false;
    int64_t configs = 0;  // LDTILECFGs that changed the configuration
    alignas(64) uint8_t tiles[8][16][64] = {};
  };
  static State& state() {
    thread_local State s;
    return s;
  }
  [[noreturn]] static void fault(const char* what) { throw std::logic_error(what); }

  static void configure(const TileConfig& want) {
    State& s = state();
    if (s.configured && std::memcmp(&s.config, &want, sizeof(TileConfig)) == 0) return;
    if (want.palette != 1 || want.start_row != 0) fault("LDTILECFG: palette 1 and start row 0 expected");
    for (int t = 0; t < 8; ++t) {
      if (want.rows[t] > 16 || want.colsb[t] > 64 || (want.rows[t] == 0) != (want.colsb[t] == 0)) {
        fault("LDTILECFG: a tile of more than 16 rows or 64 bytes, or half configured");
      }
    }
    s.config = want;
    s.configured = true;
    ++s.configs;
    std::memset(s.tiles, 0, sizeof(s.tiles));
  }
  static const TileConfig& checked(int t) {
    const State& s = state();
    if (!s.configured || s.config.rows[t] == 0) fault("tile instruction on a tile that is not configured");
    return s.config;
  }
  template <int t>
  static void load(const void* base, int64_t stride) {
    const TileConfig& c = checked(t);
    auto& tile = state().tiles[t];
    std::memset(tile, 0, sizeof(tile));
    for (int r = 0; r < c.rows[t]; ++r)
      std::memcpy(tile[r], static_cast<const uint8_t*>(base) + r * stride, c.colsb[t]);
  }
  template <int t>
  static void store(void* base, int64_t stride) {
    const TileConfig& c = checked(t);
    for (int r = 0; r < c.rows[t]; ++r)
      std::memcpy(static_cast<uint8_t*>(base) + r * stride, state().tiles[t][r], c.colsb[t]);
  }
  template <int t>
  static void zero() {
    checked(t);
    std::memset(state().tiles[t], 0, sizeof(state().tiles[t]));
  }
  static float bf16(const uint8_t* p) {
    uint16_t h;
    std::memcpy(&h, p, 2);
    return bf16_to_f32(h);
  }
  template <int c, int a, int b>
  static void dot() {
    const TileConfig& cfg = checked(c);
    checked(a);
    checked(b);
    if (cfg.rows[a] != cfg.rows[c] || cfg.rows[b] * 4 != cfg.colsb[a] || cfg.colsb[b] != cfg.colsb[c]) {
      fault("TDPBF16PS: tile shapes do not agree");
    }
    auto& tiles = state().tiles;
    for (int m = 0; m < cfg.rows[c]; ++m) {
      float row[16];
      std::memcpy(row, tiles[c][m], 64);
      for (int k = 0; k < cfg.colsb[a] / 4; ++k) {
        for (int n = 0; n < cfg.colsb[c] / 4; ++n) {
          row[n] += bf16(tiles[a][m] + 4 * k) * bf16(tiles[b][k] + 4 * n);
          row[n] += bf16(tiles[a][m] + 4 * k + 2) * bf16(tiles[b][k] + 4 * n + 2);
        }
      }
      std::memcpy(tiles[c][m], row, size_t(cfg.colsb[c]));
    }
  }
};

}  // namespace
}  // namespace w4a16::cpu
