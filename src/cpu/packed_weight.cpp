// pack(), unpack() and pack_dense(): QuantizedWeight <-> the CPU layout of kernels.hpp.
#include "cpu/packed_weight.hpp"

#include <algorithm>
#include <cstring>

#include "cpu/tile_math.hpp"

namespace w4a16 {

namespace cpu {
void dequant_generic(const Q4Tile& w, int64_t g0, int64_t g1, DType dtype, void* panel);
}

using cpu::kChunkK;
using cpu::kTileN;

PackedWeight::PackedWeight() = default;
PackedWeight::PackedWeight(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PackedWeight::PackedWeight(PackedWeight&&) noexcept = default;
PackedWeight& PackedWeight::operator=(PackedWeight&&) noexcept = default;
PackedWeight::~PackedWeight() = default;

cpu::PackedGeometry cpu::packed_geometry(int64_t k, int64_t n, int64_t group_size) {
  PackedGeometry p;
  const int64_t g = std::min(group_size, k);
  p.tiles = (n + kTileN - 1) / kTileN;
  const bool per_channel = g == k && k > kPerChannelGroup;
  p.kernel_group = per_channel ? kPerChannelGroup : g;
  p.geom.groups = (k + p.kernel_group - 1) / p.kernel_group;
  p.geom.chunks_per_group = (p.kernel_group + kChunkK - 1) / kChunkK;
  const int64_t last = k - (p.geom.groups - 1) * p.kernel_group;
  p.geom.last_group_chunks = (last + kChunkK - 1) / kChunkK;
  p.k_padded = p.geom.chunks() * kChunkK;
  p.x_padded = p.k_padded != k || (p.kernel_group % kChunkK != 0 && p.geom.groups > 1);
  return p;
}

namespace {
const PackedWeight::Impl& checked(const std::unique_ptr<PackedWeight::Impl>& p) {
  require(p != nullptr, "PackedWeight is empty (moved-from or default-constructed)");
  return *p;
}

void init_geometry(PackedWeight::Impl& p, const QuantizedLayout& layout) {
  p.layout = layout;
  const cpu::PackedGeometry g = cpu::packed_geometry(layout.k, layout.n, layout.group_size);
  p.tiles = g.tiles;
  p.kernel_group = g.kernel_group;
  p.geom = g.geom;
  p.k_padded = g.k_padded;
  p.x_padded = g.x_padded;
}
}  // namespace

const PackedWeight::Impl& PackedWeight::impl() const { return checked(impl_); }
int64_t PackedWeight::n() const { return checked(impl_).layout.n; }
int64_t PackedWeight::k() const { return checked(impl_).layout.k; }
bool PackedWeight::is_quantized() const { return checked(impl_).quantized; }
const QuantizedLayout& PackedWeight::layout() const { return checked(impl_).layout; }

cpu::Q4Tile PackedWeight::Impl::tile(int64_t t) const {
  cpu::Q4Tile q;
  q.codes = codes.data() + t * geom.chunks() * kTileN;
  q.scales = scales.data() + t * geom.groups * kTileN * int64_t(scale_bytes());
  if (layout.zero_mode == ZeroMode::asym) q.zeros = zeros.data() + t * geom.groups * kTileN;
  if (layout.zero_mode == ZeroMode::float_zero) {
    q.zeros = zeros.data() + t * geom.groups * kTileN * int64_t(scale_bytes());
  }
  q.scale_dtype = layout.scale_dtype;
  q.zero_mode = layout.zero_mode;
  q.geom = geom;
  return q;
}

const uint16_t* PackedWeight::Impl::dense_tile(DType dtype, int64_t t) const {
  const int index = dtype == DType::bf16 ? 1 : 0;
  std::call_once(dense_once[index], [&] {
    require(quantized, "internal: dense copy of a dense-only weight must be made by pack_dense");
    dense[index].resize(size_t(tiles * dense_tile_elems()));
    for (int64_t i = 0; i < tiles; ++i) {
      cpu::dequant_generic(tile(i), 0, geom.groups, dtype, dense[index].data() + i * dense_tile_elems());
    }
  });
  return dense[index].data() + t * dense_tile_elems();
}

PackedWeight pack(const QuantizedWeight& w) {
  auto p = std::make_unique<PackedWeight::Impl>();
  init_geometry(*p, w.layout());
  const int64_t groups = p->geom.groups, chunks = p->geom.chunks();
  const size_t sb = p->scale_bytes();
  p->codes.resize(size_t(p->tiles * chunks * kTileN));
  p->scales.resize(size_t(p->tiles * groups * kTileN) * sb);
  if (w.zero_mode() == ZeroMode::asym) p->zeros.resize(size_t(p->tiles * groups * kTileN));
  if (w.zero_mode() == ZeroMode::float_zero) p->zeros.resize(size_t(p->tiles * groups * kTileN) * sb);

  // Every code starts at 8 (value 0 in sym): padding k and padding columns contribute nothing
  // even before their zero-filled activations or zero scales are applied.
  for (size_t i = 0; i < p->codes.size(); ++i) p->codes[i] = 0x88888888u;
  for (int64_t n = 0; n < w.n(); ++n) {
    const int64_t t = n / kTileN, c = n % kTileN;
    uint32_t* tile_codes = p->codes.data() + t * chunks * kTileN;
    for (int64_t k = 0; k < w.k(); ++k) {
      const int64_t kp = p->padded_k(k);
      uint32_t& word = tile_codes[(kp / kChunkK) * kTileN + c];
      const int shift = cpu::nibble_shift(int(kp % kChunkK));
      word = (word & ~(0xFu << shift)) | (uint32_t(w.code(n, k)) << shift);
    }
    for (int64_t g = 0; g < groups; ++g) {
      const size_t dst = size_t((t * groups + g) * kTileN + c);
      const size_t src = size_t(n * w.groups() + p->source_group(g));
      std::memcpy(&p->scales[dst * sb], &w.scales()[src * sb], sb);
      if (w.zero_mode() == ZeroMode::asym) p->zeros[dst] = w.zeros()[src];
      if (w.zero_mode() == ZeroMode::float_zero) std::memcpy(&p->zeros[dst * sb], &w.zeros()[src * sb], sb);
    }
  }
  // Padding columns of asym weights get z = 8 so that their coefficient (8 - z) * s is 0.
  if (w.zero_mode() == ZeroMode::asym) {
    for (int64_t n = w.n(); n < p->tiles * kTileN; ++n) {
      for (int64_t g = 0; g < groups; ++g)
        p->zeros[size_t(((n / kTileN) * groups + g) * kTileN + n % kTileN)] = std::byte{8};
    }
  }
  p->perm = w.perm();
  p->bias = w.bias();
  if (w.has_bias()) {
    p->bias_f32.resize(size_t(w.n()));
    for (int64_t n = 0; n < w.n(); ++n) p->bias_f32[size_t(n)] = w.bias_value(n);
  }
  return PackedWeight(std::move(p));
}

QuantizedWeight unpack(const PackedWeight& packed) {
  const auto& p = packed.impl();
  require(p.quantized, "unpack: this weight was packed dense (pack_dense) and has no codes");
  const auto& l = p.layout;
  const int64_t groups = l.groups(), chunks = p.geom.chunks();
  const size_t sb = p.scale_bytes();
  std::vector<uint8_t> codes(size_t(l.n * l.row_bytes()), 0);
  std::vector<std::byte> scales(size_t(l.n * groups) * sb), zeros;
  if (l.zero_mode == ZeroMode::asym) zeros.resize(size_t(l.n * groups));
  if (l.zero_mode == ZeroMode::float_zero) zeros.resize(size_t(l.n * groups) * sb);
  for (int64_t n = 0; n < l.n; ++n) {
    const int64_t t = n / kTileN, c = n % kTileN;
    const uint32_t* tile_codes = p.codes.data() + t * chunks * kTileN;
    for (int64_t k = 0; k < l.k; ++k) {
      const int64_t kp = p.padded_k(k);
      const int q = cpu::code_at(tile_codes, kp / kChunkK, c, int(kp % kChunkK));
      codes[size_t(n * l.row_bytes() + k / 2)] |= uint8_t((k & 1) ? q << 4 : q);
    }
    for (int64_t g = 0; g < groups; ++g) {  // source group g starts in kernel group g * g_src / kg
      const size_t src = size_t((t * p.geom.groups + g * l.group_size / p.kernel_group) * kTileN + c);
      std::memcpy(&scales[size_t(n * groups + g) * sb], &p.scales[src * sb], sb);
      if (l.zero_mode == ZeroMode::asym) zeros[size_t(n * groups + g)] = p.zeros[src];
      if (l.zero_mode == ZeroMode::float_zero) std::memcpy(&zeros[size_t(n * groups + g) * sb], &p.zeros[src * sb], sb);
    }
  }
  return QuantizedWeight(l, std::move(codes), std::move(scales), std::move(zeros), p.perm, p.bias);
}

PackedWeight pack_dense(const MatrixRef& w, const std::optional<MatrixRef>& bias) {
  check_matrix(w, "pack_dense: weight");
  require(w.dtype == DType::f16 || w.dtype == DType::bf16, "pack_dense: weight must be fp16 or bf16, got {}",
          to_string(w.dtype));
  auto p = std::make_unique<PackedWeight::Impl>();
  QuantizedLayout layout{w.rows, w.cols, w.cols, ZeroMode::sym, w.dtype};
  init_geometry(*p, layout);
  p->quantized = false;
  const int index = w.dtype == DType::bf16 ? 1 : 0;
  std::call_once(p->dense_once[index], [] {});  // filled right here, never lazily
  auto& dense = p->dense[index];
  dense.resize(size_t(p->tiles * p->dense_tile_elems()));
  const auto* src = static_cast<const uint16_t*>(w.data);
  for (int64_t n = 0; n < w.rows; ++n) {
    uint16_t* tile = dense.data() + (n / kTileN) * p->dense_tile_elems();
    const int64_t c = n % kTileN;
    for (int64_t k = 0; k < w.cols; ++k) {
      const uint16_t v = src[n * w.cols + k];
      if (w.dtype == DType::bf16) {
        tile[((k / 2) * kTileN + c) * 2 + (k & 1)] = v;
      } else {
        tile[k * kTileN + c] = v;
      }
    }
  }
  if (bias) {
    check_matrix(*bias, "pack_dense: bias");
    require(bias->rows * bias->cols == w.rows, "pack_dense: bias has {} elements, expected N={}",
            bias->rows * bias->cols, w.rows);
    p->bias_f32.resize(size_t(w.rows));
    for (int64_t n = 0; n < w.rows; ++n) p->bias_f32[size_t(n)] = load_as_f32(bias->data, bias->dtype, n);
  }
  return PackedWeight(std::move(p));
}

}  // namespace w4a16
