// PackedWeight::Impl: a QuantizedWeight in the CPU kernels' layout (kernels.hpp), plus lazily
// made dense copies for the dense strategy.
#pragma once

#include <mutex>

#include "common/aligned_buffer.hpp"
#include "cpu/kernels.hpp"

namespace w4a16 {

inline constexpr int64_t kPerChannelGroup = 128;

namespace cpu {
// How pack() lays out a weight of K x N in groups of g, as the kernels see it; the one place it is
// computed (pack() and the planner's shape-only targets both call it).
struct PackedGeometry {
  int64_t tiles = 0;         // ceil(N / 64)
  int64_t kernel_group = 0;  // g, or kPerChannelGroup for a per-channel weight (PackedWeight::Impl)
  GroupGeometry geom;
  int64_t k_padded = 0;   // chunks * 8
  bool x_padded = false;  // K' differs from K or groups are padded: x is copied into K'
};
// g above K is read as K (per-channel), as plan_candidates() takes a layout's g.
PackedGeometry packed_geometry(int64_t k, int64_t n, int64_t group_size);
}  // namespace cpu

struct PackedWeight::Impl {
  QuantizedLayout layout;  // n, k, g, zero mode, scale dtype of the source
  bool quantized = true;   // false: made by pack_dense(), only `dense_*` is filled
  int64_t tiles = 0;       // ceil(N / 64)
  // The group length the kernels see: g, except for a per-channel weight (g = K > 128), whose one
  // scale per row is repeated every kPerChannelGroup weights so that split-K can cut K (the
  // kernels only split on group boundaries). The math is unchanged: s * sum over the row equals
  // the sum of s * (sum over each piece).
  int64_t kernel_group = 0;
  cpu::GroupGeometry geom;  // kernel group -> chunk mapping (groups padded to whole chunks)
  int64_t k_padded = 0;     // chunks * 8: the K' the kernels see
  bool x_padded = false;    // K' differs from K or groups are padded: x is copied into K'

  AlignedBuffer<uint32_t> codes;    // [tiles][chunks][64]
  AlignedBuffer<std::byte> scales;  // [tiles][G][64] scale dtype
  AlignedBuffer<std::byte> zeros;   // [tiles][G][64] uint8 / scale dtype; empty for sym
  std::vector<int32_t> perm;        // [K] or empty
  Bias bias;                        // as given
  std::vector<float> bias_f32;      // [N] or empty

  // Dense 16-bit copies in the dense layouts of kernels.hpp, indexed by DType (f16, bf16).
  mutable std::once_flag dense_once[2];
  mutable AlignedBuffer<uint16_t> dense[2];

  // Position in K' of stored column k (groups padded to whole chunks).
  int64_t padded_k(int64_t k) const {
    const int64_t g = k / kernel_group;
    return g * geom.chunks_per_group * cpu::kChunkK + (k - g * kernel_group);
  }
  // The source group (of layout.group_size) that kernel group g belongs to.
  int64_t source_group(int64_t g) const { return g * kernel_group / layout.group_size; }
  size_t scale_bytes() const { return dtype_size(layout.scale_dtype); }
  cpu::Q4Tile tile(int64_t t) const;
  // The dense copy for dtype (f16 or bf16), made on first use; thread-safe.
  const uint16_t* dense_tile(DType dtype, int64_t t) const;
  int64_t dense_tile_elems() const { return k_padded * cpu::kTileN; }
};

}  // namespace w4a16
