// The AMX pipeline's vector stage as a rate: how many int4 weights per second the vector unit
// turns into bf16 B tiles in L1 (q4_tiles_dequant__amx, the fused AMX entry's own code), the
// term docs/model.md charges beside the tile multiplies. `w4a16 calibrate` measures it where AMX
// is offered and saves it as `tile_dequant_gweights`.
#pragma once

#include "measure/peaks.hpp"

namespace w4a16::measure {

// Weights of the weight it dequantizes per step: one packed tile of K = 512 x 64 columns in
// groups of 128 (16 KB of codes, 16 KB of B tiles per group: L1/L2-resident, as the fused entry's
// current group is; the stream from DRAM is the read term's, not this one's).
inline constexpr int64_t kTileDequantK = 512, kTileDequantGroup = 128;

// Billions of weights per second on `threads` pinned threads (all dequantizing the same tile, each
// core from its own caches), best of `passes` passes of about `seconds`. Needs a usable avx512bf16 table (the
// stage is AVX-512 only); throws Error(unsupported) without one.
double measure_tile_dequant_gweights(int threads, int passes = 5, double seconds = 0.02);

// On 1 and `all_threads` threads where AMX is offered (tile_access().granted), else empty: the
// rate only enters the model beside the tile unit.
PerThreads measure_tile_dequant_rates(int all_threads);

}  // namespace w4a16::measure
