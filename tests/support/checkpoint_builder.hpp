// Test-only packers for the checkpoint formats w4a16 imports, written from each format's own
// packing code (as summarized in shared/FORMATS.md), independently of src/io/import_*.cpp:
//   GPTQ  AutoGPTQ qlinear_cuda_old.py `pack`: qweight rows of 8 k's, qzeros along N, v1 stores z - 1
//   AWQ   AutoAWQ gemm.py `from_linear`: along N with order_map [0, 2, 4, 6, 1, 3, 5, 7]
//   CT    compressed-tensors pack_quantized.py `pack_to_int32`: value + 8, packed along dim 1
//         (weights) or dim 0 (zero points), zero-padded
// plus the ground truth they pack (random codes, zeros, scales, g_idx), the format's own dequant
// formula in double, and a writer of checkpoint directories (config.json + one or more shards).
#pragma once

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "io/safetensors.hpp"
#include "io/tensor_source.hpp"
#include "w4a16/w4a16.hpp"

namespace w4a16::test {

// A tensor with its own bytes.
struct OwnedTensor {
  std::string name;
  io::StDType dtype = io::StDType::U8;
  std::vector<int64_t> shape;
  std::vector<std::byte> bytes;
};

template <typename T>
OwnedTensor make_tensor(std::string name, io::StDType dtype, std::vector<int64_t> shape, const std::vector<T>& values) {
  OwnedTensor t{std::move(name), dtype, std::move(shape), std::vector<std::byte>(values.size() * sizeof(T))};
  if (!values.empty()) std::memcpy(t.bytes.data(), values.data(), t.bytes.size());
  return t;
}

// A set of tensors, viewable as an io::TensorSource (the views point into this set).
class TensorSet {
 public:
  void add(OwnedTensor t) { tensors_.push_back(std::move(t)); }
  template <typename T>
  void add(std::string name, io::StDType dtype, std::vector<int64_t> shape, const std::vector<T>& values) {
    add(make_tensor(std::move(name), dtype, std::move(shape), values));
  }
  OwnedTensor* get(const std::string& name) {
    for (OwnedTensor& t : tensors_) {
      if (t.name == name) return &t;
    }
    return nullptr;
  }
  void remove(const std::string& name) {
    std::erase_if(tensors_, [&](const OwnedTensor& t) { return t.name == name; });
  }
  io::TensorMap source() const&& = delete;  // the views would outlive the bytes
  io::TensorMap source() const& {
    io::TensorMap map;
    for (const OwnedTensor& t : tensors_) map.add({t.name, t.dtype, t.shape, t.bytes});
    return map;
  }
  const std::vector<OwnedTensor>& tensors() const { return tensors_; }

 private:
  std::vector<OwnedTensor> tensors_;
};

// --- ground truth -------------------------------------------------------------------------------

// One layer in the formats' own orientation (W[k, n], y = x * W): codes q [K, N] in 0..15, zeros
// z [G, N], scales s [G, N] as raw bits of scale_dtype, g_idx [K].
struct Truth {
  int64_t k = 0, n = 0, g = 0, groups = 0;
  io::StDType scale_dtype = io::StDType::F16;
  std::vector<uint8_t> q;
  std::vector<int> z;
  std::vector<uint16_t> s;
  std::vector<int32_t> g_idx;
  std::vector<uint16_t> bias;  // [N] fp16 bits, or empty

  double scale(int64_t group, int64_t col) const {
    const uint16_t bits = s[size_t(group * n + col)];
    return scale_dtype == io::StDType::BF16 ? double(bf16_to_f32(bits)) : double(f16_to_f32(bits));
  }
  // The format's formula: W[k, n] = s[g_idx[k], n] * (q[k, n] - z[g_idx[k], n]), in double.
  double expected(int64_t kk, int64_t col) const {
    const int64_t group = g_idx[size_t(kk)];
    return scale(group, col) * double(int(q[size_t(kk * n + col)]) - z[size_t(group * n + col)]);
  }
};

// Random codes, zeros in [zero_lo, zero_hi], finite scales of either sign; act_order shuffles
// which input features form each (still uniform) group.
inline Truth random_truth(std::mt19937& rng, int64_t k, int64_t n, int64_t g, bool act_order, int zero_lo, int zero_hi,
                          io::StDType scale_dtype = io::StDType::F16) {
  Truth t;
  t.k = k, t.n = n, t.g = g, t.groups = (k + g - 1) / g, t.scale_dtype = scale_dtype;
  std::uniform_int_distribution<int> code(0, 15), zero(zero_lo, zero_hi);
  std::uniform_real_distribution<float> magnitude(1e-3f, 0.25f);
  t.q.resize(size_t(k * n));
  for (auto& v : t.q) v = uint8_t(code(rng));
  t.z.resize(size_t(t.groups * n));
  for (auto& v : t.z) v = zero(rng);
  t.s.resize(size_t(t.groups * n));
  for (auto& v : t.s) {
    const float x = (rng() & 1) ? magnitude(rng) : -magnitude(rng);
    v = scale_dtype == io::StDType::BF16 ? f32_to_bf16(x) : f32_to_f16(x);
  }
  std::vector<int32_t> order(static_cast<size_t>(k));
  std::iota(order.begin(), order.end(), 0);
  if (act_order) std::shuffle(order.begin(), order.end(), rng);
  t.g_idx.resize(size_t(k));
  for (int64_t i = 0; i < k; ++i) t.g_idx[size_t(order[size_t(i)])] = int32_t(i / g);
  return t;
}

// Every element of dequantize(w) ([N, K], original feature order) equals the formula, bit for bit.
inline void expect_matches(const QuantizedWeight& w, const Truth& t) {
  ASSERT_EQ(w.n(), t.n);
  ASSERT_EQ(w.k(), t.k);
  const std::vector<float> values = dequantize(w);
  int64_t mismatches = 0;
  for (int64_t kk = 0; kk < t.k; ++kk) {
    for (int64_t col = 0; col < t.n; ++col) {
      const double want = t.expected(kk, col);
      ASSERT_EQ(double(float(want)), want) << "the formula's value is not an fp32 value";
      const float got = values[size_t(col * t.k + kk)];
      if (got != float(want) && ++mismatches <= 5) {
        ADD_FAILURE() << "W[k=" << kk << ", n=" << col << "] = " << got << ", expected " << want;
      }
    }
  }
  EXPECT_EQ(mismatches, 0);
}

// --- packers --------------------------------------------------------------------------------------

// GPTQ qweight [ceil(K/8), N]: word [r, n] |= q[8r + j, n] << 4j.
inline std::vector<int32_t> gptq_pack_qweight(const Truth& t) {
  const int64_t rows = (t.k + 7) / 8;
  std::vector<uint32_t> w(size_t(rows * t.n), 0);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t j = 0; j < 8 && r * 8 + j < t.k; ++j) {
      for (int64_t col = 0; col < t.n; ++col)
        w[size_t(r * t.n + col)] |= uint32_t(t.q[size_t((r * 8 + j) * t.n + col)]) << (4 * j);
    }
  }
  return std::vector<int32_t>(w.begin(), w.end());
}

// GPTQ qzeros [G, N/8]: word [grp, c] |= stored(z[grp, 8c + i]) << 4i, stored = z - 1 in v1.
inline std::vector<int32_t> gptq_pack_qzeros(const Truth& t, bool v1) {
  std::vector<uint32_t> w(size_t(t.groups * (t.n / 8)), 0);
  for (int64_t grp = 0; grp < t.groups; ++grp) {
    for (int64_t col = 0; col < t.n; ++col) {
      const int stored = t.z[size_t(grp * t.n + col)] - (v1 ? 1 : 0);
      EXPECT_TRUE(stored >= 0 && stored <= 15) << "zero not representable";
      w[size_t(grp * (t.n / 8) + col / 8)] |= uint32_t(stored) << (4 * (col % 8));
    }
  }
  return std::vector<int32_t>(w.begin(), w.end());
}

// AWQ: values [rows, N] packed along N, nibble i of word [r, c] = value [r, 8c + order_map[i]].
inline std::vector<int32_t> awq_pack(const std::vector<int>& values, int64_t rows, int64_t n) {
  constexpr int order_map[8] = {0, 2, 4, 6, 1, 3, 5, 7};
  std::vector<uint32_t> w(size_t(rows * (n / 8)), 0);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < n / 8; ++c) {
      for (int i = 0; i < 8; ++i)
        w[size_t(r * (n / 8) + c)] |= uint32_t(values[size_t(r * n + c * 8 + order_map[i])]) << (4 * i);
    }
  }
  return std::vector<int32_t>(w.begin(), w.end());
}

// compressed-tensors pack_to_int32: signed values [rows, cols] in [-8, 7], + 8, packed along
// dim 1 (packed_dim = 1, result [rows, ceil(cols/8)]) or dim 0 (result [ceil(rows/8), cols]),
// zero-padded.
inline std::vector<int32_t> ct_pack(const std::vector<int>& signed_values, int64_t rows, int64_t cols, int packed_dim) {
  const int64_t out_rows = packed_dim == 0 ? (rows + 7) / 8 : rows;
  const int64_t out_cols = packed_dim == 1 ? (cols + 7) / 8 : cols;
  std::vector<uint32_t> w(size_t(out_rows * out_cols), 0);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) {
      const int v = signed_values[size_t(r * cols + c)];
      EXPECT_TRUE(v >= -8 && v <= 7);
      const uint32_t u = uint32_t(v + 8);
      if (packed_dim == 1) {
        w[size_t(r * out_cols + c / 8)] |= u << (4 * (c % 8));
      } else {
        w[size_t(r / 8 * out_cols + c)] |= u << (4 * (r % 8));
      }
    }
  }
  return std::vector<int32_t>(w.begin(), w.end());
}

// --- the tensors of one module in each format ----------------------------------------------------

inline void add_bias(TensorSet& set, const std::string& m, const Truth& t) {
  if (!t.bias.empty()) set.add(m + ".bias", io::StDType::F16, {t.n}, t.bias);
}

inline void add_gptq_module(TensorSet& set, const std::string& m, const Truth& t, bool v1, bool with_g_idx = true) {
  set.add(m + ".qweight", io::StDType::I32, {(t.k + 7) / 8, t.n}, gptq_pack_qweight(t));
  set.add(m + ".qzeros", io::StDType::I32, {t.groups, t.n / 8}, gptq_pack_qzeros(t, v1));
  set.add(m + ".scales", t.scale_dtype, {t.groups, t.n}, t.s);
  if (with_g_idx) set.add(m + ".g_idx", io::StDType::I32, {t.k}, t.g_idx);
  add_bias(set, m, t);
}

inline void add_awq_module(TensorSet& set, const std::string& m, const Truth& t) {
  set.add(m + ".qweight", io::StDType::I32, {t.k, t.n / 8},
          awq_pack(std::vector<int>(t.q.begin(), t.q.end()), t.k, t.n));
  set.add(m + ".qzeros", io::StDType::I32, {t.groups, t.n / 8}, awq_pack(t.z, t.groups, t.n));
  set.add(m + ".scales", t.scale_dtype, {t.groups, t.n}, t.s);
  add_bias(set, m, t);
}

// compressed-tensors: weights and scales in nn.Linear's [N, K] / [N, G] orientation.
inline void add_ct_module(TensorSet& set, const std::string& m, const Truth& t, bool asym, bool with_g_idx,
                          io::StDType shape_dtype = io::StDType::I64) {
  std::vector<int> q_signed(static_cast<size_t>(t.n * t.k));
  for (int64_t kk = 0; kk < t.k; ++kk) {
    for (int64_t col = 0; col < t.n; ++col) q_signed[size_t(col * t.k + kk)] = int(t.q[size_t(kk * t.n + col)]) - 8;
  }
  set.add(m + ".weight_packed", io::StDType::I32, {t.n, (t.k + 7) / 8}, ct_pack(q_signed, t.n, t.k, 1));
  std::vector<uint16_t> scale_ng(static_cast<size_t>(t.n * t.groups));
  std::vector<int> zp_ng(static_cast<size_t>(t.n * t.groups));
  for (int64_t grp = 0; grp < t.groups; ++grp) {
    for (int64_t col = 0; col < t.n; ++col) {
      scale_ng[size_t(col * t.groups + grp)] = t.s[size_t(grp * t.n + col)];
      zp_ng[size_t(col * t.groups + grp)] = t.z[size_t(grp * t.n + col)] - 8;
    }
  }
  set.add(m + ".weight_scale", t.scale_dtype, {t.n, t.groups}, scale_ng);
  if (asym)
    set.add(m + ".weight_zero_point", io::StDType::I32, {(t.n + 7) / 8, t.groups}, ct_pack(zp_ng, t.n, t.groups, 0));
  if (shape_dtype == io::StDType::I64) {
    set.add(m + ".weight_shape", shape_dtype, {2}, std::vector<int64_t>{t.n, t.k});
  } else {
    set.add(m + ".weight_shape", shape_dtype, {2}, std::vector<int32_t>{int32_t(t.n), int32_t(t.k)});
  }
  if (with_g_idx) set.add(m + ".weight_g_idx", io::StDType::I32, {t.k}, t.g_idx);
  add_bias(set, m, t);
}

// --- checkpoint directories ---------------------------------------------------------------------

inline void write_text(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  ASSERT_TRUE(out.good()) << path;
}

// Writes config.json and the tensors: one model.safetensors (shards == 1), or `shards` files
// model-0000i-of-0000n.safetensors, tensor i in shard i % shards (so one module's tensors spread
// over several shards), with model.safetensors.index.json.
inline void write_checkpoint(const std::filesystem::path& dir, const std::string& config_json, const TensorSet& set,
                             int shards = 1) {
  std::filesystem::create_directories(dir);
  write_text(dir / "config.json", config_json);
  if (shards == 1) {
    io::SafetensorsWriter writer;
    for (const OwnedTensor& t : set.tensors()) writer.add(t.name, t.dtype, t.shape, t.bytes);
    writer.write(dir / "model.safetensors");
    return;
  }
  std::vector<io::SafetensorsWriter> writers(static_cast<size_t>(shards));
  std::vector<std::string> names;
  for (int s = 0; s < shards; ++s) {
    char name[64];
    std::snprintf(name, sizeof(name), "model-%05d-of-%05d.safetensors", s + 1, shards);
    names.emplace_back(name);
  }
  std::string index = "{\"metadata\": {\"total_size\": 0}, \"weight_map\": {";
  for (size_t i = 0; i < set.tensors().size(); ++i) {
    const OwnedTensor& t = set.tensors()[i];
    writers[i % size_t(shards)].add(t.name, t.dtype, t.shape, t.bytes);
    index += (i ? ", \"" : "\"") + t.name + "\": \"" + names[i % size_t(shards)] + "\"";
  }
  index += "}}";
  for (int s = 0; s < shards; ++s) writers[size_t(s)].write(dir / names[size_t(s)]);
  write_text(dir / "model.safetensors.index.json", index);
}

inline std::string gptq_config_json(int64_t group_size, bool desc_act, bool v2, bool sym = true) {
  return std::string("{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": 64, \"quantization_config\": ") +
         "{\"quant_method\": \"gptq\", \"bits\": 4, \"group_size\": " + std::to_string(group_size) +
         ", \"desc_act\": " + (desc_act ? "true" : "false") + ", \"sym\": " + (sym ? "true" : "false") +
         ", \"damp_percent\": 0.01, \"true_sequential\": true, \"checkpoint_format\": \"" + (v2 ? "gptq_v2" : "gptq") +
         "\"}}";
}

inline std::string awq_config_json(int64_t group_size) {
  return "{\"quantization_config\": {\"quant_method\": \"awq\", \"bits\": 4, \"group_size\": " +
         std::to_string(group_size) + ", \"zero_point\": true, \"version\": \"gemm\"}}";
}

inline std::string ct_config_json(const std::string& strategy, int64_t group_size, bool symmetric,
                                  const std::string& actorder = "null", const std::string& ignore = "[\"lm_head\"]") {
  return "{\"quantization_config\": {\"quant_method\": \"compressed-tensors\", \"format\": \"pack-quantized\", "
         "\"quantization_status\": \"compressed\", \"config_groups\": {\"group_0\": {\"targets\": [\"Linear\"], "
         "\"input_activations\": null, \"output_activations\": null, \"weights\": {\"num_bits\": 4, \"type\": "
         "\"int\", \"symmetric\": " +
         std::string(symmetric ? "true" : "false") + ", \"strategy\": \"" + strategy +
         "\", \"group_size\": " + (strategy == "group" ? std::to_string(group_size) : std::string("null")) +
         ", \"actorder\": " + actorder + ", \"dynamic\": false, \"observer\": \"minmax\"}}}, \"ignore\": " + ignore +
         "}}";
}

}  // namespace w4a16::test
