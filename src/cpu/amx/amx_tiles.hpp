// The tile-instruction policy of tile_gemm.hpp on the hardware: AMX-TILE and AMX-BF16.
//
// Written as asm statements rather than GCC's intrinsics: those are macros that paste the tile
// number into the instruction text (so it cannot be a template argument) and declare no memory
// clobber (so the compiler may move the vector stores that fill a buffer after the tile load that
// reads it, or the reads of a stored C tile before the tile store). Here every tile load and store
// is ordered with the memory accesses around it. AT&T operand order: sources first.
#pragma once

#include <cstring>

#include "cpu/amx/tile_gemm.hpp"

namespace w4a16::cpu {
namespace {

struct AmxTiles {
  // LDTILECFG costs ~55 ns and zeroes every tile; a thread keeps its configuration between calls
  // (STTILECFG reads it back: another library's tile code on the same thread may have changed it).
  static void configure(const TileConfig& want) {
    TileConfig have;
    __asm__ volatile("sttilecfg %0" : "=m"(have));
    if (std::memcmp(&have, &want, sizeof(TileConfig)) != 0) __asm__ volatile("ldtilecfg %0" ::"m"(want));
  }
  template <int t>
  static void load(const void* base, int64_t stride) {
    __asm__ volatile("tileloadd (%0,%1,1), %%tmm%c2" ::"r"(base), "r"(stride), "i"(t) : "memory");
  }
  template <int t>
  static void store(void* base, int64_t stride) {
    __asm__ volatile("tilestored %%tmm%c2, (%0,%1,1)" ::"r"(base), "r"(stride), "i"(t) : "memory");
  }
  template <int t>
  static void zero() {
    __asm__ volatile("tilezero %%tmm%c0" ::"i"(t));
  }
  template <int c, int a, int b>
  static void dot() {
    __asm__ volatile("tdpbf16ps %%tmm%c2, %%tmm%c1, %%tmm%c0" ::"i"(c), "i"(a), "i"(b));
  }
};

}  // namespace
}  // namespace w4a16::cpu
