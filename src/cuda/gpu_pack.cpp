#include "cuda/gpu_pack.hpp"

#include <algorithm>

#include "common/check.hpp"
#include "cuda/gpu_layout.hpp"
#include "w4a16/float16.hpp"

namespace w4a16::cuda {

namespace {

uint16_t to_16(double v, DType dtype) { return dtype == DType::bf16 ? f64_to_bf16(v) : f64_to_f16(v); }
double from_16(uint16_t bits, DType dtype) { return dtype == DType::bf16 ? bf16_to_f32(bits) : f16_to_f32(bits); }
int magic_value(DType dtype) { return dtype == DType::bf16 ? layout::kMagicValueBf16 : layout::kMagicValueF16; }
uint16_t magic_bits(DType dtype) { return dtype == DType::bf16 ? layout::kMagicBf16 : layout::kMagicF16; }

}  // namespace

GpuPackedWeight pack_gpu(const QuantizedWeight& w, DType dtype) {
  require(dtype == DType::f16 || dtype == DType::bf16, "cuda: activations must be fp16 or bf16, got {}",
          to_string(dtype));
  GpuPackedWeight p;
  p.n = w.n();
  p.k = w.k();
  p.group_size = std::min(w.group_size(), w.k());
  p.groups = w.groups();
  if (p.group_size < p.k && p.group_size % layout::kSlabK != 0) {
    fail(ErrorCode::unsupported,
         "cuda: group size {} is not a multiple of 16 (nor per-channel): the CUDA kernels read 16 k at a time from one "
         "group; use the CPU backend for this layer",
         w.group_size());
  }
  p.zero_mode = w.zero_mode();
  p.dtype = dtype;
  p.n_slabs = (p.n + layout::kSlabN - 1) / layout::kSlabN;
  p.k_slabs = (p.k + layout::kSlabK - 1) / layout::kSlabK;
  p.perm = w.perm();

  p.codes.assign(size_t(p.n_slabs * p.k_slabs * layout::kSlabWords), 0u);
  for (int64_t n = 0; n < p.n; ++n) {
    for (int64_t k = 0; k < p.k; ++k) {
      const layout::Slot s = layout::slot_of(int(k % layout::kSlabK), int(n % layout::kSlabN));
      const int64_t i = layout::code_word_index(n / layout::kSlabN, k / layout::kSlabK, p.k_slabs, s.lane, s.word);
      p.codes[size_t(i)] |= uint32_t(w.code(n, k)) << (4 * s.nibble);
    }
  }

  const size_t params = size_t(p.groups * p.n_slabs * layout::kSlabN);
  p.scales.assign(params, to_16(0.0, dtype));  // padded columns: scale 0
  if (p.zero_mode == ZeroMode::asym) p.offsets.assign(params, to_16(magic_value(dtype) + 8, dtype));
  if (p.zero_mode == ZeroMode::float_zero) p.zero_adds.assign(params, to_16(0.0, dtype));
  for (int64_t g = 0; g < p.groups; ++g) {
    for (int64_t n = 0; n < p.n; ++n) {
      const size_t i = size_t(layout::group_param_index(g, n, p.n_slabs));
      p.scales[i] = to_16(w.scale(n, g), dtype);
      if (!p.offsets.empty()) p.offsets[i] = to_16(magic_value(dtype) + w.zero_int(n, g), dtype);  // exact
      if (!p.zero_adds.empty()) p.zero_adds[i] = to_16(w.zero_float(n, g), dtype);
    }
  }
  return p;
}

uint16_t gpu_weight(const GpuPackedWeight& p, int64_t n, int64_t k) {
  require(n >= 0 && n < p.n_slabs * layout::kSlabN && k >= 0 && k < p.k_slabs * layout::kSlabK,
          "cuda: element ({}, {}) outside the packed {}x{}", n, k, p.n, p.k);
  const layout::Slot s = layout::slot_of(int(k % layout::kSlabK), int(n % layout::kSlabN));
  const uint32_t word =
      p.codes[size_t(layout::code_word_index(n / layout::kSlabN, k / layout::kSlabK, p.k_slabs, s.lane, s.word))];
  const uint32_t pair = layout::magic_pair(word, s.nibble % 4, magic_bits(p.dtype));
  const uint16_t half = uint16_t(s.nibble / 4 ? pair >> 16 : pair & 0xFFFF);  // MAGIC + q
  const int64_t g = layout::group_of_slab(k / layout::kSlabK, p.group_size, p.groups);
  const size_t i = size_t(layout::group_param_index(g, n, p.n_slabs));
  const double offset = p.offsets.empty() ? double(magic_value(p.dtype) + 8) : from_16(p.offsets[i], p.dtype);
  const double c = from_16(to_16(from_16(half, p.dtype) - offset, p.dtype), p.dtype);  // hsub2: exact
  const double zf = p.zero_adds.empty() ? 0.0 : from_16(p.zero_adds[i], p.dtype);
  return to_16(c * from_16(p.scales[i], p.dtype) + zf, p.dtype);  // hfma2: one rounding
}

}  // namespace w4a16::cuda
