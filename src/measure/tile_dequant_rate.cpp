#include "measure/tile_dequant_rate.hpp"

#include "common/aligned_buffer.hpp"
#include "common/check.hpp"
#include "cpu/amx/tile_dequant.hpp"
#include "cpu/cpu_features.hpp"
#include "cpu/packed_weight.hpp"
#include "cpu/tile_permission.hpp"
#include "measure/random_bits.hpp"

namespace w4a16::measure {

namespace {

// The one tile every thread reads (each core keeps its own copy in its caches); made on first use.
const PackedWeight& dequant_weight() {
  static const PackedWeight w = [] {
    const auto bits = random_bits(DType::bf16, cpu::kTileN * kTileDequantK, 0.02, 7);
    return pack(quantize({bits.data(), DType::bf16, cpu::kTileN, kTileDequantK},
                         {kTileDequantGroup, ZeroMode::sym, DType::bf16}));
  }();
  return w;
}

float loop_tile_dequant(int64_t steps) {
  const auto& p = dequant_weight().impl();
  const cpu::Q4Tile tile = p.tile(0);
  // One group's B tiles, overwritten by each group as in the fused entry.
  thread_local AlignedBuffer<uint32_t> tiles(size_t(kTileDequantGroup / 32 * cpu::kTileStepCells));
  for (int64_t i = 0; i < steps; ++i) cpu::q4_tiles_dequant__amx(tile, 0, p.geom.groups, tiles.data());
  return float(tiles[size_t(steps) % tiles.size()]);
}

}  // namespace

double measure_tile_dequant_gweights(int threads, int passes, double seconds) {
  if (!cpu::cpu_features().has_avx512_bf16()) {
    fail(ErrorCode::unsupported, "the tile dequantization rate needs AVX512-BF16, which this CPU does not offer");
  }
  (void)dequant_weight();  // packed before the clock starts
  return measure_pinned_rate(&loop_tile_dequant, double(cpu::kTileN * kTileDequantK), threads, passes, seconds);
}

PerThreads measure_tile_dequant_rates(int all_threads) {
  PerThreads rates;
  if (!cpu::tile_access().granted) return rates;
  rates[1] = measure_tile_dequant_gweights(1);
  if (all_threads > 1) rates[all_threads] = measure_tile_dequant_gweights(all_threads);
  return rates;
}

}  // namespace w4a16::measure
