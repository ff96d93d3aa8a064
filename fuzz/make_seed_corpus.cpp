// Writes the seed corpus of the safetensors fuzz target (fuzz/corpus/safetensors/):
//
//   safetensors_fuzz_make_corpus OUTPUT_DIR
//
// Every seed is a valid file, small (< 8 KB) and deterministic: the weights come from a fixed
// integer generator, not from std:: distributions whose output differs between standard libraries.
// The committed corpus was produced by this program; rerun it after a format change.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <numeric>
#include <vector>

#include "common/check.hpp"
#include "io/quantized_file.hpp"
#include "io/safetensors.hpp"

namespace {

using namespace w4a16;

// Values in [-1, 1) from a 64-bit LCG, never exactly 0.
std::vector<float> weights(int64_t count, uint64_t seed) {
  std::vector<float> out(static_cast<size_t>(count));
  uint64_t state = seed * 6364136223846793005ull + 1442695040888963407ull;
  for (float& v : out) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    v = float(int64_t(state >> 40) - (int64_t(1) << 23)) / float(1 << 23);
    if (v == 0.0f) v = 0.5f;
  }
  return out;
}

QuantizedWeight quantized(int64_t n, int64_t k, int64_t g, ZeroMode mode, DType scale_dtype, uint64_t seed,
                          std::optional<DType> bias_dtype = std::nullopt) {
  const auto w = weights(n * k, seed);
  QuantizeOptions options;
  options.group_size = g;
  options.zero_mode = mode;
  options.scale_dtype = scale_dtype;
  std::vector<std::byte> bias_bytes;
  std::optional<MatrixRef> bias;
  if (bias_dtype) {
    const auto values = weights(n, seed + 99);
    bias_bytes.resize(size_t(n) * dtype_size(*bias_dtype));
    for (int64_t i = 0; i < n; ++i) store_from_f32(bias_bytes.data(), *bias_dtype, i, values[size_t(i)]);
    bias = MatrixRef{bias_bytes.data(), *bias_dtype, n, 1};
  }
  return quantize(MatrixRef{w.data(), DType::f32, n, k}, options, bias);
}

// The same layer with a reversed-pairs act-order permutation.
QuantizedWeight with_perm(const QuantizedWeight& w) {
  std::vector<int32_t> perm(static_cast<size_t>(w.k()));
  std::iota(perm.begin(), perm.end(), 0);
  for (size_t i = 0; i + 1 < perm.size(); i += 2) std::swap(perm[i], perm[i + 1]);
  return QuantizedWeight(w.layout(), w.codes(), w.scales(), w.zeros(), std::move(perm), w.bias());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: safetensors_fuzz_make_corpus OUTPUT_DIR\n");
    return 2;
  }
  const std::filesystem::path dir = argv[1];
  std::filesystem::create_directories(dir);
  try {
    // One sym layer, fp16 scales, ragged last group (K = 40, g = 16), fp16 bias.
    const QuantizedWeight sym = quantized(3, 40, 16, ZeroMode::sym, DType::f16, 1, DType::f16);
    save_quantized(dir / "sym_bias.safetensors", {{"model.layers.0.self_attn.q_proj.weight", &sym}});

    // asym, bf16 scales, odd K, act-order permutation.
    const QuantizedWeight asym = with_perm(quantized(2, 33, 8, ZeroMode::asym, DType::bf16, 2));
    save_quantized(dir / "asym_perm.safetensors", {{"mlp.down_proj", &asym}});

    // float zeros, fp32 scales, fp32 bias, per-channel.
    const QuantizedWeight fz = quantized(2, 24, 24, ZeroMode::float_zero, DType::f32, 3, DType::f32);
    save_quantized(dir / "float_fp32.safetensors", {{"lm_head", &fz}});

    // Two layers (sym with perm and bf16 bias, asym) next to foreign tensors and metadata.
    const QuantizedWeight a = with_perm(quantized(2, 16, 8, ZeroMode::sym, DType::f16, 4, DType::bf16));
    const QuantizedWeight b = quantized(2, 17, 8, ZeroMode::asym, DType::f16, 5, DType::f32);
    io::SafetensorsWriter mixed;
    const std::vector<std::byte> embed(2 * 4 * 2, std::byte(0x3C));
    mixed.add("model.embed_tokens.weight", io::StDType::F16, {2, 4}, embed);
    io::add_quantized(mixed, "model.layers.1.mlp.up_proj.weight", a);
    mixed.add("model.norm.empty", io::StDType::F32, {0}, {});
    io::add_quantized(mixed, "model.layers.1.mlp.gate_proj", b);
    mixed.set_metadata("format", "pt");
    mixed.write(dir / "two_layers_mixed.safetensors");

    // Plain tensors of several dtypes: scalar, zero-size, multi-dimensional.
    io::SafetensorsWriter plain;
    std::vector<std::byte> bytes(64);
    for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = std::byte(i * 7);
    plain.add("f16", io::StDType::F16, {2, 2}, std::span(bytes).first(8));
    plain.add("bf16", io::StDType::BF16, {3}, std::span(bytes).subspan(8, 6));
    plain.add("f32.scalar", io::StDType::F32, {}, std::span(bytes).subspan(14, 4));
    plain.add("i32", io::StDType::I32, {1, 2, 1}, std::span(bytes).subspan(18, 8));
    plain.add("zero", io::StDType::I64, {4, 0}, {});
    plain.add("u8", io::StDType::U8, {5}, std::span(bytes).subspan(26, 5));
    plain.add("f64", io::StDType::F64, {1}, std::span(bytes).subspan(31, 8));
    plain.set_metadata("format", "pt");
    plain.set_metadata("note", "seed");
    plain.write(dir / "plain_tensors.safetensors");

    // No tensors at all.
    io::SafetensorsWriter().write(dir / "empty.safetensors");
  } catch (const Error& e) {
    std::fprintf(stderr, "safetensors_fuzz_make_corpus: %s\n", e.what());
    return 1;
  }
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    std::printf("%8ju  %s\n", std::uintmax_t(entry.file_size()), entry.path().filename().c_str());
  }
  return 0;
}
