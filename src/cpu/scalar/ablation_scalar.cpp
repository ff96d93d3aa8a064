// The bottleneck study's ablations (study_kernels.hpp), portable versions: the widening copy and
// the bare int4 stream on any CPU.
#include "cpu/study_kernels.hpp"
#include "cpu/tile_math.hpp"

namespace w4a16::cpu {

extern const KernelTable kernels_scalar;

namespace {

void widen_generic(const Q4Tile& w, int64_t g0, int64_t g1, DType dtype, void* panel) {
  const int64_t base = w.geom.chunk_begin(g0);
  for (int64_t chunk = base; chunk < w.geom.chunk_end(g1 - 1); ++chunk) {
    for (int64_t c = 0; c < kTileN; ++c) {
      for (int kk = 0; kk < 8; ++kk) {
        // The code as the mantissa of 1.0: a normal number (denormal operands would make the
        // FMA kernels that read the panel take microcode assists on Intel cores).
        const uint16_t v = uint16_t(code_at(w.codes, chunk, c, kk) | (dtype == DType::bf16 ? 0x3F80 : 0x3C00));
        const int64_t k = (chunk - base) * 8 + kk;
        if (dtype == DType::bf16) {
          static_cast<uint16_t*>(panel)[((k / 2) * kTileN + c) * 2 + (k & 1)] = v;
        } else {
          static_cast<uint16_t*>(panel)[k * kTileN + c] = v;
        }
      }
    }
  }
}

void stream_generic(const Q4Tile& w, const Activations& x, int64_t g0, int64_t g1, float* out) {
  uint32_t acc = 0;
  for (int64_t i = w.geom.chunk_begin(g0) * kTileN; i < w.geom.chunk_end(g1 - 1) * kTileN; ++i) acc ^= w.codes[i];
  const auto* scales = static_cast<const uint8_t*>(w.scales);
  for (int64_t i = g0 * kTileN * int64_t(dtype_size(w.scale_dtype));
       i < g1 * kTileN * int64_t(dtype_size(w.scale_dtype)); ++i) {
    acc ^= scales[i];
  }
  for (int64_t i = 0; i < x.m * kTileN; ++i) out[i] = float(acc & 0xFF);
}

}  // namespace

extern const StudyKernels study_kernels_scalar = {
    .isa = &kernels_scalar,
    .widen = {.name = "widen__scalar", .isa = &kernels_scalar, .fn = widen_generic},
    .stream = {.name = "stream__scalar", .isa = &kernels_scalar, .x = XFormat::f32, .fn = stream_generic},
};

}  // namespace w4a16::cpu
