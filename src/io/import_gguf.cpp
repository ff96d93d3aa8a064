// GGUF blocks into QuantizedWeight, and ggml's reference dequantization (import_gguf.hpp).
//
// Block layouts (ggml-common.h; every multi-byte field little-endian, no padding):
//
//   block_q4_0 (18 bytes, 32 values)     block_q4_1 (20 bytes, 32 values)
//     0  fp16 d                             0  fp16 d
//     2  u8 qs[16]                          2  fp16 m
//                                           4  u8 qs[16]
//   value j (j < 16) = low nibble of qs[j], value j + 16 = high nibble of qs[j]: the low nibbles
//   hold the first half of the block, not adjacent pairs as w4a16's codes do.
//
//   block_q8_0 (34 bytes, 32 values): 0 fp16 d, 2 int8 qs[32]; value j = d * qs[j].
//
//   block_q4_K (144 bytes, 256 values = 8 sub-blocks of 32)
//     0  fp16 d        super-block scale of the sub-block scales
//     2  fp16 dmin     super-block scale of the sub-block mins
//     4  u8 scales[12] eight 6-bit scales sc[j] and eight 6-bit mins m[j], packed (see scale_min_q4_k)
//    16  u8 qs[128]    four chunks of 32 bytes; chunk c holds sub-block 2c in its low nibbles and
//                      sub-block 2c + 1 in its high nibbles
//   value = d*sc[j] * q - dmin*m[j] for q in sub-block j.
#include "io/import_gguf.hpp"

#include <array>
#include <bit>
#include <cmath>
#include <cstring>

#include "common/check.hpp"

namespace w4a16::io {

namespace {

struct BlockQ4_0 {
  uint16_t d;
  uint8_t qs[16];
};
static_assert(sizeof(BlockQ4_0) == 18);

struct BlockQ4_1 {
  uint16_t d;
  uint16_t m;
  uint8_t qs[16];
};
static_assert(sizeof(BlockQ4_1) == 20);

struct BlockQ8_0 {
  uint16_t d;
  int8_t qs[32];
};
static_assert(sizeof(BlockQ8_0) == 34);

struct BlockQ4_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[12];
  uint8_t qs[128];
};
static_assert(sizeof(BlockQ4_K) == 144);

// Block i of a tensor's bytes (the span's size was checked against the block count at parse time;
// memcpy because the data section only guarantees the file's alignment, not the struct's).
template <typename Block>
Block load_block(std::span<const std::byte> data, int64_t i) {
  Block b;
  std::memcpy(&b, data.data() + size_t(i) * sizeof(Block), sizeof(Block));
  return b;
}

// Sub-block j's 6-bit scale and min (ggml-quants.c get_scale_min_k4). The 12 bytes:
//   bytes 0-3   bits 0-5: sc[0..3]         bits 6-7: bits 4-5 of sc[4..7]
//   bytes 4-7   bits 0-5: m[0..3]          bits 6-7: bits 4-5 of m[4..7]
//   bytes 8-11  bits 0-3: bits 0-3 of sc[4..7]   bits 4-7: bits 0-3 of m[4..7]
void scale_min_q4_k(int j, const uint8_t* s, uint8_t& sc, uint8_t& m) {
  if (j < 4) {
    sc = s[j] & 63;
    m = s[j + 4] & 63;
  } else {
    sc = uint8_t((s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4));
    m = uint8_t((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
  }
}

// Codes of 32 consecutive values stored as ggml does (value l in the low nibble of qs[l] for
// l < 16, value l + 16 in its high nibble), written into 16 bytes of w4a16 codes (value 2i in
// the low nibble of byte i, value 2i + 1 in its high nibble).
void repack_q4_32(const uint8_t* qs, uint8_t* out) {  // qs[16] -> out[16]
  uint8_t codes[32];                                  // [32] in K order
  for (int l = 0; l < 16; ++l) {
    codes[l] = qs[l] & 0x0F;
    codes[l + 16] = qs[l] >> 4;
  }
  for (int i = 0; i < 16; ++i) out[i] = uint8_t(codes[2 * i] | (codes[2 * i + 1] << 4));
}

// One Q4_K sub-block: 32 values, one per byte of qs[32] (nibble `shift` = 0 low, 4 high).
void repack_q4_k_sub(const uint8_t* qs, int shift, uint8_t* out) {  // qs[32] -> out[16]
  for (int i = 0; i < 16; ++i) {
    out[i] = uint8_t(((qs[2 * i] >> shift) & 0x0F) | (((qs[2 * i + 1] >> shift) & 0x0F) << 4));
  }
}

// The float zero zf = fp32(8s + add) (add = m for Q4_1, -dmin*m for Q4_K), so that value() =
// fl((q - 8)*s + zf) matches ggml's fl(q*s + add): (q - 8)*s and q*s are exact in fp32 (s has at
// most 17 significant bits, q 4), so when 8s + add is representable both sides round the same
// exact sum once and agree bit for bit. Otherwise zf is off by at most ulp(zf)/2 and the result by
// at most ulp(zf)/2 + ulp(ours)/2 + ulp(ggml)/2. (Trying zf's fp32 neighbours instead, to match
// all 16 codes, never helped on the adversarial test tensors, so it is not done.)
float float_zero_for(float s, float add) { return 8.0f * s + add; }  // 8s is exact: one rounding

void store_f32(std::vector<std::byte>& out, size_t index, float value) {
  std::memcpy(out.data() + index * 4, &value, 4);
}

bool f16_finite(uint16_t bits) { return (bits & 0x7C00) != 0x7C00; }

// One tensor's weight being built, row by row: [N, K/32] groups of 32 along K.
struct WeightRows {
  const GgufTensor& tensor;
  std::string_view source;  // the file, for messages
  int64_t blocks_per_row = 0;
  int64_t groups = 0;             // K / 32
  int64_t row_bytes = 0;          // K / 2
  std::vector<uint8_t> codes;     // [N, K/2], low nibble = even k
  std::vector<std::byte> scales;  // [N, K/32] in the type's scale dtype
  std::vector<std::byte> zeros;   // [N, K/32] fp32 float zeros; empty for Q4_0

  [[noreturn]] void bad_scale(int64_t row, int64_t block, std::string_view what, uint16_t bits) const {
    fail(ErrorCode::format, "gguf {}: tensor '{}': row {} block {}: fp16 {} 0x{:04x} is not finite", source,
         tensor.name, row, block, what, bits);
  }
};

// Q4_0: s = d (fp16, kept as stored), value = (q - 8)*s: w4a16's sym mode exactly.
void decode_row_q4_0(WeightRows& w, int64_t row) {
  for (int64_t b = 0; b < w.blocks_per_row; ++b) {
    const auto block = load_block<BlockQ4_0>(w.tensor.data, row * w.blocks_per_row + b);
    if (!f16_finite(block.d)) w.bad_scale(row, b, "d", block.d);
    std::memcpy(w.scales.data() + size_t(row * w.groups + b) * 2, &block.d, 2);
    repack_q4_32(block.qs, w.codes.data() + row * w.row_bytes + b * 16);
  }
}

// Q4_1: s = d, zf = 8d + m (fp32).
void decode_row_q4_1(WeightRows& w, int64_t row) {
  for (int64_t b = 0; b < w.blocks_per_row; ++b) {
    const auto block = load_block<BlockQ4_1>(w.tensor.data, row * w.blocks_per_row + b);
    if (!f16_finite(block.d)) w.bad_scale(row, b, "d", block.d);
    if (!f16_finite(block.m)) w.bad_scale(row, b, "m", block.m);
    const float s = f16_to_f32(block.d);
    const size_t g = size_t(row * w.groups + b);
    store_f32(w.scales, g, s);
    store_f32(w.zeros, g, float_zero_for(s, f16_to_f32(block.m)));
    repack_q4_32(block.qs, w.codes.data() + row * w.row_bytes + b * 16);
  }
}

// Q4_K: per sub-block j of 32, s = d*sc[j], zf = 8*d*sc[j] - dmin*m[j] (fp32).
void decode_row_q4_k(WeightRows& w, int64_t row) {
  for (int64_t b = 0; b < w.blocks_per_row; ++b) {
    const auto block = load_block<BlockQ4_K>(w.tensor.data, row * w.blocks_per_row + b);
    if (!f16_finite(block.d)) w.bad_scale(row, b, "d", block.d);
    if (!f16_finite(block.dmin)) w.bad_scale(row, b, "dmin", block.dmin);
    const float d = f16_to_f32(block.d), dmin = f16_to_f32(block.dmin);
    for (int j = 0; j < 8; ++j) {
      uint8_t sc = 0, m = 0;
      scale_min_q4_k(j, block.scales, sc, m);
      const float s = d * float(sc);      // exact: 11 x 6 significant bits
      const float min = dmin * float(m);  // exact
      const size_t g = size_t(row * w.groups + b * 8 + j);
      store_f32(w.scales, g, s);
      store_f32(w.zeros, g, float_zero_for(s, -min));
      repack_q4_k_sub(block.qs + 32 * (j / 2), 4 * (j % 2), w.codes.data() + row * w.row_bytes + b * 128 + j * 16);
    }
  }
}

// The types import_gguf_weight reads, what each becomes, and its row decoder.
struct WeightType {
  GgmlType type;
  ZeroMode zero_mode;
  DType scale_dtype;
  void (*decode_row)(WeightRows& weight, int64_t row);
};

constexpr std::array<WeightType, 3> kWeightTypes = {{
    {GgmlType::Q4_0, ZeroMode::sym, DType::f16, decode_row_q4_0},
    {GgmlType::Q4_1, ZeroMode::float_zero, DType::f32, decode_row_q4_1},
    {GgmlType::Q4_K, ZeroMode::float_zero, DType::f32, decode_row_q4_k},
}};

const WeightType* weight_type(GgmlType type) {
  for (const WeightType& entry : kWeightTypes) {
    if (entry.type == type) return &entry;
  }
  return nullptr;
}

}  // namespace

bool gguf_weight_importable(GgmlType type) { return weight_type(type) != nullptr; }

QuantizedWeight import_gguf_weight(const GgufFile& file, const GgufTensor& tensor) {
  const std::string_view source = file.source();
  const WeightType* type = weight_type(tensor.type);
  if (type == nullptr) {
    fail(ErrorCode::unsupported, "gguf {}: tensor '{}': {} cannot be imported as a 4-bit weight (Q4_0, Q4_1, Q4_K)",
         source, tensor.name, ggml_type_name(tensor.type));
  }
  if (tensor.n_dims != 2 || tensor.dims[0] <= 0 || tensor.dims[1] <= 0) {
    fail(ErrorCode::format, "gguf {}: tensor '{}': a weight is 2-D [K, N] with K, N > 0; got n_dims {} [{}, {}]",
         source, tensor.name, tensor.n_dims, tensor.dims[0], tensor.dims[1]);
  }
  const int64_t k = tensor.dims[0], n = tensor.dims[1];
  if (k > INT32_MAX) fail(ErrorCode::format, "gguf {}: tensor '{}': K = {} is too large", source, tensor.name, k);
  const GgmlTypeInfo& info = *ggml_type_info(uint32_t(tensor.type));
  const int64_t blocks_per_row = k / info.block_size;  // dims[0] % block_size == 0 checked at parse time
  if (int64_t(tensor.data.size()) != n * blocks_per_row * info.block_bytes) {
    fail(ErrorCode::invalid_argument, "gguf {}: tensor '{}': data span of {} bytes does not match its shape", source,
         tensor.name, tensor.data.size());
  }

  WeightRows w{
      .tensor = tensor, .source = source, .blocks_per_row = blocks_per_row, .groups = k / 32, .row_bytes = k / 2};
  w.codes.resize(size_t(n * w.row_bytes));
  w.scales.resize(size_t(n * w.groups) * dtype_size(type->scale_dtype));
  if (type->zero_mode == ZeroMode::float_zero) w.zeros.resize(size_t(n * w.groups) * 4);
  for (int64_t row = 0; row < n; ++row) type->decode_row(w, row);

  QuantizedLayout layout;
  layout.n = n;
  layout.k = k;
  layout.group_size = 32;
  layout.zero_mode = type->zero_mode;
  layout.scale_dtype = type->scale_dtype;
  return QuantizedWeight(layout, std::move(w.codes), std::move(w.scales), std::move(w.zeros));
}

std::vector<float> dequantize_gguf_tensor(const GgufTensor& tensor) {
  const GgmlTypeInfo* info = ggml_type_info(uint32_t(tensor.type));
  const int64_t numel = tensor.numel();
  if (info == nullptr || uint64_t(numel / info->block_size) * info->block_bytes != tensor.data.size()) {
    fail(ErrorCode::invalid_argument, "gguf tensor '{}': data span of {} bytes does not match its shape and type",
         tensor.name, tensor.data.size());
  }
  const auto& data = tensor.data;
  const int64_t blocks = numel / info->block_size;
  std::vector<float> out(static_cast<size_t>(numel));  // [numel], dims[0] fastest
  switch (tensor.type) {
    case GgmlType::F32:
      if (!data.empty()) std::memcpy(out.data(), data.data(), data.size());
      break;
    case GgmlType::F16:
    case GgmlType::BF16:
      for (int64_t i = 0; i < numel; ++i) {
        uint16_t bits;
        std::memcpy(&bits, data.data() + i * 2, 2);
        out[size_t(i)] = tensor.type == GgmlType::F16 ? f16_to_f32(bits) : bf16_to_f32(bits);
      }
      break;
    case GgmlType::Q8_0:  // dequantize_row_q8_0: y = qs[j]*d
      for (int64_t i = 0; i < blocks; ++i) {
        const auto b = load_block<BlockQ8_0>(data, i);
        const float d = f16_to_f32(b.d);
        for (int j = 0; j < 32; ++j) out[size_t(i * 32 + j)] = float(b.qs[j]) * d;
      }
      break;
    case GgmlType::Q4_0:  // dequantize_row_q4_0: y = ((qs & 15) - 8)*d
      for (int64_t i = 0; i < blocks; ++i) {
        const auto b = load_block<BlockQ4_0>(data, i);
        const float d = f16_to_f32(b.d);
        for (int j = 0; j < 16; ++j) {
          out[size_t(i * 32 + j)] = float((b.qs[j] & 0x0F) - 8) * d;
          out[size_t(i * 32 + j + 16)] = float((b.qs[j] >> 4) - 8) * d;
        }
      }
      break;
    case GgmlType::Q4_1:  // dequantize_row_q4_1: y = q*d + m
      for (int64_t i = 0; i < blocks; ++i) {
        const auto b = load_block<BlockQ4_1>(data, i);
        const float d = f16_to_f32(b.d), m = f16_to_f32(b.m);
        for (int j = 0; j < 16; ++j) {
          out[size_t(i * 32 + j)] = float(b.qs[j] & 0x0F) * d + m;
          out[size_t(i * 32 + j + 16)] = float(b.qs[j] >> 4) * d + m;
        }
      }
      break;
    case GgmlType::Q4_K:  // dequantize_row_q4_K: y = (d*sc)*q - dmin*m
      for (int64_t i = 0; i < blocks; ++i) {
        const auto b = load_block<BlockQ4_K>(data, i);
        const float d = f16_to_f32(b.d), dmin = f16_to_f32(b.dmin);
        float* y = out.data() + i * 256;
        for (int j = 0; j < 8; ++j) {
          uint8_t sc = 0, m = 0;
          scale_min_q4_k(j, b.scales, sc, m);
          const float d1 = d * float(sc), m1 = dmin * float(m);
          const uint8_t* qs = b.qs + 32 * (j / 2);
          const int shift = 4 * (j % 2);
          for (int l = 0; l < 32; ++l) y[j * 32 + l] = d1 * float((qs[l] >> shift) & 0x0F) - m1;
        }
      }
      break;
    default:
      fail(ErrorCode::unsupported,
           "gguf tensor '{}': dequantizing {} is not supported (F32, F16, BF16, Q8_0, Q4_0, "
           "Q4_1, Q4_K)",
           tensor.name, info->name);
  }
  return out;
}

}  // namespace w4a16::io
