// w4a16::convert (and so `w4a16 convert`): every source kind into one w4a16 file whose layers
// reproduce the source format's dequantization and whose other tensors are copied through.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>
#include <random>

#include "io/gguf.hpp"
#include "io/import_gguf.hpp"
#include "io/quantized_file.hpp"
#include "io/safetensors.hpp"
#include "support/checkpoint_builder.hpp"
#include "support/gguf_builder.hpp"
#include "support/io_test_util.hpp"
#include "support/random_data.hpp"

namespace w4a16 {
namespace {

using test::expect_error;
using test::TempDir;
using test::TensorSet;
using test::Truth;

// y = x * W^T through the packed kernels, against the fp64 oracle on the same weight, with the
// fp32-accumulation bound (gamma_n * sum |x||w|, n = K + groups + 4) plus one bf16 output rounding.
void expect_gemm_matches_reference(const QuantizedWeight& w) {
  const int64_t m = 3;
  const auto x = test::random_matrix(DType::bf16, m, w.k(), 5);
  test::HostMatrix y(DType::bf16, m, w.n()), ref(DType::bf16, m, w.n());
  y.poison();
  gemm(x.ref(), pack(w), y.mut());
  reference_gemm(x.ref(), w, ref.mut());
  const std::vector<float> dense = dequantize(w);
  const double n_add = double(w.k() + w.groups() + 4), u = 0x1p-24, gamma = n_add * u / (1 - n_add * u);
  int bad = 0;
  for (int64_t r = 0; r < m; ++r) {
    for (int64_t c = 0; c < w.n(); ++c) {
      double abs_sum = std::abs(w.bias_value(c));
      for (int64_t k = 0; k < w.k(); ++k)
        abs_sum += std::abs(double(x.get(r * w.k() + k)) * dense[size_t(c * w.k() + k)]);
      const double want = ref.get(r * w.n() + c), got = y.get(r * w.n() + c);
      const double e = gamma * abs_sum * 8;  // (q - z) up to 16 times s: 8 bounds |q - z|s / |w| loosely enough
      const double tol = e + 0x1p-7 * (std::abs(want) + e) + 0x1p-133;
      if (!(std::abs(got - want) <= tol) && ++bad <= 3)
        ADD_FAILURE() << "y[" << r << "," << c << "] " << got << " vs " << want;
    }
  }
  EXPECT_EQ(bad, 0);
}

std::string metadata_of(const std::filesystem::path& path, const std::string& key) {
  const auto file = io::SafetensorsFile::open(path);
  const auto it = file.metadata().find(key);
  return it == file.metadata().end() ? "" : it->second;
}

TEST(Convert, ShardedGptqActOrderAwqAndCompressedTensorsCheckpoints) {
  std::mt19937 rng(3);
  struct Case {
    std::string name, config;
    int shards;
  };
  for (const Case& c : {Case{"gptq", test::gptq_config_json(32, /*desc_act=*/true, /*v2=*/false, /*sym=*/false), 3},
                        Case{"awq", test::awq_config_json(32), 1},
                        Case{"compressed-tensors", test::ct_config_json("group", 32, /*symmetric=*/false), 2}}) {
    SCOPED_TRACE(c.name);
    TempDir dir;
    TensorSet set;
    std::vector<std::pair<std::string, Truth>> truths;
    for (int layer = 0; layer < 3; ++layer) {
      const std::string module = "model.layers." + std::to_string(layer) + ".mlp.up_proj";
      const bool act_order = c.name == "gptq";
      const int zero_lo = c.name == "gptq" ? 1 : 0, zero_hi = c.name == "gptq" ? 16 : 15;
      Truth t = test::random_truth(rng, 96, 24, 32, act_order, zero_lo, zero_hi);
      if (c.name == "gptq") test::add_gptq_module(set, module, t, /*v1=*/true);
      if (c.name == "awq") test::add_awq_module(set, module, t);
      if (c.name == "compressed-tensors") test::add_ct_module(set, module, t, /*asym=*/true, /*with_g_idx=*/false);
      truths.emplace_back(module, std::move(t));
    }
    set.add("model.embed_tokens.weight", io::StDType::F16, {5, 4}, std::vector<uint16_t>(20, 0x3c00));
    set.add("model.norm.weight", io::StDType::BF16, {4}, std::vector<uint16_t>{1, 2, 3, 4});
    const auto src = dir / "ckpt";
    test::write_checkpoint(src, R"({"w4a16_test_marker": 4, )" + c.config.substr(1), set, c.shards);
    const auto out = dir / "out.safetensors";
    std::vector<std::string> progress;
    const ConvertReport report = convert(src, out, [&](int64_t i, int64_t n, std::string_view name, std::string_view) {
      EXPECT_LE(i, n);
      progress.emplace_back(name);
    });
    EXPECT_EQ(report.source_format, c.name);
    EXPECT_EQ(report.quantized_layers, 3);
    EXPECT_EQ(report.copied_tensors, 2);
    EXPECT_EQ(progress.size(), 5u);
    EXPECT_EQ(list_quantized(out).size(), 3u);
    for (const auto& [module, truth] : truths) {
      const QuantizedWeight w = load_quantized(out, module);
      test::expect_matches(w, truth);  // every element bit-exact against the format's formula
      EXPECT_EQ(w.has_perm(), c.name == "gptq");
      expect_gemm_matches_reference(w);
    }
    const auto file = io::SafetensorsFile::open(out);
    ASSERT_NE(file.find("model.norm.weight"), nullptr);
    EXPECT_EQ(file.find("model.layers.0.mlp.up_proj.qweight"), nullptr) << "packed source tensors are replaced";
    const auto norm = file.data(*file.find("model.norm.weight"));
    EXPECT_EQ(norm.size(), 8u);
    EXPECT_EQ(std::memcmp(norm.data(), std::vector<uint16_t>{1, 2, 3, 4}.data(), 8), 0);
    const auto config = nlohmann::json::parse(metadata_of(out, "config.json"));
    EXPECT_EQ(config["w4a16_test_marker"], 4);
    EXPECT_EQ(metadata_of(out, "w4a16.source"), c.name);
  }
}

TEST(Convert, GgufFileWrittenByGgufPy) {
  const auto src = std::filesystem::path(W4A16_SOURCE_DIR) / "tests/data/gguf/model.gguf";
  TempDir dir;
  const auto out = dir / "model.w4a16.safetensors";
  const ConvertReport report = convert(src, out);
  const io::GgufFile gguf = io::GgufFile::open(src);
  int64_t importable = 0;
  for (const auto& t : gguf.tensors()) importable += io::gguf_weight_importable(t.type) && t.n_dims == 2;
  EXPECT_EQ(report.source_format, "gguf");
  EXPECT_EQ(report.quantized_layers, importable);
  EXPECT_GT(report.quantized_layers, 0);
  const auto file = io::SafetensorsFile::open(out);
  for (const auto& t : gguf.tensors()) {
    SCOPED_TRACE(t.name);
    if (io::gguf_weight_importable(t.type) && t.n_dims == 2) {
      const QuantizedWeight got = load_quantized(out, t.name), want = io::import_gguf_weight(gguf, t);
      EXPECT_EQ(got.codes(), want.codes());
      EXPECT_EQ(got.scales(), want.scales());
      EXPECT_EQ(got.zeros(), want.zeros());
      EXPECT_EQ(got.layout().zero_mode, want.layout().zero_mode);
      expect_gemm_matches_reference(got);
      continue;
    }
    const io::TensorInfo* info = file.find(t.name);
    ASSERT_NE(info, nullptr);
    if (t.type == io::GgmlType::Q8_0) {  // dequantized with ggml's formula, as F32
      const std::vector<float> values = io::dequantize_gguf_tensor(t);
      ASSERT_EQ(info->dtype, io::StDType::F32);
      ASSERT_EQ(file.data(*info).size(), values.size() * 4);
      EXPECT_EQ(std::memcmp(file.data(*info).data(), values.data(), values.size() * 4), 0);
    } else {  // copied byte for byte
      ASSERT_EQ(file.data(*info).size(), t.data.size());
      EXPECT_EQ(std::memcmp(file.data(*info).data(), t.data.data(), t.data.size()), 0);
    }
  }
  const auto metadata = nlohmann::json::parse(metadata_of(out, "gguf"));
  EXPECT_TRUE(metadata.contains("general.architecture"));
}

TEST(Convert, RefusesWhatItCannotConvert) {
  TempDir dir;
  expect_error([&] { convert(dir / "missing", dir / "o.safetensors"); }, ErrorCode::io, "cannot find");
  test::write_text(dir / "x.bin", "not a model");
  expect_error([&] { convert(dir / "x.bin", dir / "o.safetensors"); }, ErrorCode::unsupported, "neither");
  TensorSet set;
  set.add("w.weight", io::StDType::F16, {2, 2}, std::vector<uint16_t>(4, 0));
  test::write_checkpoint(dir / "plain", R"({"hidden_size": 2})", set);
  expect_error([&] { convert(dir / "plain", dir / "o.safetensors"); }, ErrorCode::unsupported, "w4a16 quantize");
  test::write_checkpoint(dir / "exl2", R"({"quantization_config": {"quant_method": "exl2"}})", set);
  expect_error([&] { convert(dir / "exl2", dir / "o.safetensors"); }, ErrorCode::unsupported, "EXL2");
  test::write_checkpoint(dir / "gptq8",
                         R"({"quantization_config": {"quant_method": "gptq", "bits": 8, "group_size": 128}})", set);
  expect_error([&] { convert(dir / "gptq8", dir / "o.safetensors"); }, ErrorCode::unsupported, "8");
  EXPECT_FALSE(std::filesystem::exists(dir / "o.safetensors"));
  const auto gguf = std::filesystem::path(W4A16_SOURCE_DIR) / "tests/data/gguf/model.gguf";
  expect_error([&] { convert(gguf, gguf); }, ErrorCode::invalid_argument, "is the input");
}

// --- guarantees (docs/guarantees.md, "Files") ---------------------------------------------------

constexpr uint32_t kGgufF32 = 0, kGgufQ4_0 = 2, kGgufQ4_1 = 3, kGgufQ4_K = 12, kGgufI32 = 26;

// A GGUF file of `tensors` (name, dims fastest first, type, bytes), each at its own aligned offset.
struct GgufTensorSpec {
  std::string name;
  std::vector<uint64_t> dims;
  uint32_t type;
  std::vector<std::byte> bytes;
};
std::filesystem::path write_gguf(const TempDir& dir, std::string_view file,
                                 const std::vector<GgufTensorSpec>& tensors) {
  test::GgufBuilder builder;
  std::vector<std::byte> data;
  for (const GgufTensorSpec& t : tensors) {
    data.resize((data.size() + 31) / 32 * 32);
    builder.tensor(t.name, t.dims, t.type, data.size());
    data.insert(data.end(), t.bytes.begin(), t.bytes.end());
  }
  const auto path = dir / file;
  test::write_bytes(path, builder.data(data).build());
  return path;
}

// Every quantized tensor's dimensions are checked where its layout is built, before any size is
// derived from them: a K = 0 Q4_0 / Q4_1 / Q4_K tensor killed `convert` with SIGFPE (a group size
// of min(32, K) = 0); N = 0 is refused alike.
TEST(ConvertGuarantees, AQuantizedTensorWithAZeroDimensionIsAFormatErrorNotACrash) {
  TempDir dir;
  for (const uint32_t type : {kGgufQ4_0, kGgufQ4_1, kGgufQ4_K}) {
    for (const std::vector<uint64_t>& dims : {std::vector<uint64_t>{0, 5}, std::vector<uint64_t>{256, 0}}) {
      SCOPED_TRACE(::testing::Message() << "type " << type << " dims [" << dims[0] << ", " << dims[1] << "]");
      const auto src = write_gguf(dir, "zero.gguf", {{"blk.0.attn_q.weight", dims, type, {}}});
      expect_error([&] { convert(src, dir / "o.safetensors"); }, ErrorCode::format, "blk.0.attn_q");
      EXPECT_FALSE(std::filesystem::exists(dir / "o.safetensors"));
    }
  }
}

// A GGUF tensor name that is not UTF-8 cannot be a safetensors name (a JSON string): Error(format)
// naming it, escaped. It escaped convert as an nlohmann::json type_error (found by gguf_fuzz once it
// ran convert; the input is fuzz/corpus/gguf/convert_invalid_utf8_name).
TEST(ConvertGuarantees, ATensorNameThatIsNotUtf8IsAFormatError) {
  TempDir dir;
  constexpr uint32_t kGgufQ5_0 = 6;  // kept as raw bytes: its name goes to gguf.raw_tensors
  for (const uint32_t type : {kGgufQ5_0, kGgufF32, kGgufQ4_0}) {
    const size_t bytes = type == kGgufQ5_0 ? 22 : type == kGgufQ4_0 ? 18 : 32 * 4;
    const auto src = write_gguf(dir, "bad.gguf", {{"blk.\x81.weight", {32, 1}, type, std::vector<std::byte>(bytes)}});
    expect_error([&] { convert(src, dir / "o.safetensors"); }, ErrorCode::format, "blk.\\x81.weight");
    EXPECT_FALSE(std::filesystem::exists(dir / "o.safetensors"));
  }
}

// convert() checks the file it is about to write by the rules load applies (one function,
// io::check_quantized_layers): a GGUF `<module>.bias` of I32, or of the wrong length, next to a
// quantized `<module>.weight` converted with exit 0 into a file whose layer no one could load.
TEST(ConvertGuarantees, ConvertNeverWritesAFileThatLoadRefuses) {
  TempDir dir;
  const std::vector<std::byte> q4_0_rows(18 * 3);  // [K = 32, N = 3]: one block a row, scale 0
  const auto bias = [](uint32_t type, uint64_t n) {
    return GgufTensorSpec{"a.bias", {n}, type, std::vector<std::byte>(n * 4, std::byte{0x3c})};
  };
  for (const auto& [what, wrong] : {std::pair{"I32 [3]", bias(kGgufI32, 3)}, std::pair{"F32 [4]", bias(kGgufF32, 4)}}) {
    SCOPED_TRACE(what);
    const auto src = write_gguf(dir, "bias.gguf", {{"a.weight", {32, 3}, kGgufQ4_0, q4_0_rows}, wrong});
    expect_error([&] { convert(src, dir / "o.safetensors"); }, ErrorCode::format, "a.bias");
    EXPECT_FALSE(std::filesystem::exists(dir / "o.safetensors"));
  }
  const auto src = write_gguf(dir, "good.gguf", {{"a.weight", {32, 3}, kGgufQ4_0, q4_0_rows}, bias(kGgufF32, 3)});
  convert(src, dir / "o.safetensors");
  const QuantizedWeight w = load_quantized(dir / "o.safetensors", "a");
  ASSERT_TRUE(w.has_bias());
  EXPECT_EQ(w.bias_value(2), std::bit_cast<float>(0x3c3c3c3cu));
}

}  // namespace
}  // namespace w4a16
