// Quantized layers in safetensors files: save/load round trips over every zero mode and scale
// dtype (ragged groups, odd K, act-order perm, bias), module-name handling, and the metadata /
// tensor mismatches a reader must reject.
#include "io/quantized_file.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "common/check.hpp"
#include "support/io_test_util.hpp"

namespace w4a16::io {
namespace {

using test::expect_error;
using test::read_bytes;
using test::TempDir;

// Quantizes random fp32 weights [n, k] (and an fp32 bias when asked).
QuantizedWeight make_weight(int64_t n, int64_t k, int64_t g, ZeroMode mode, DType scale_dtype, bool with_bias,
                            uint32_t seed = 1) {
  const auto w = test::random_weights(n * k, seed);
  QuantizeOptions options;
  options.group_size = g;
  options.zero_mode = mode;
  options.scale_dtype = scale_dtype;
  std::optional<MatrixRef> bias;
  std::vector<float> bias_values;
  if (with_bias) {
    bias_values = test::random_weights(n, seed + 1000);
    bias = MatrixRef{bias_values.data(), DType::f32, 1, n};
  }
  return quantize(MatrixRef{w.data(), DType::f32, n, k}, options, bias);
}

// An act-order layer built directly: random codes (odd K padding nibble 0), scales, zeros, a
// random permutation and a bf16 bias.
QuantizedWeight make_perm_weight(int64_t n, int64_t k, int64_t g, ZeroMode mode, DType scale_dtype) {
  QuantizedLayout layout{n, k, g, mode, scale_dtype};
  std::mt19937 rng(7);
  std::vector<uint8_t> codes(size_t(n * layout.row_bytes()));
  for (int64_t row = 0; row < n; ++row) {
    for (int64_t col = 0; col < k; ++col) {
      const uint8_t q = uint8_t(rng() % 16);
      codes[size_t(row * layout.row_bytes() + col / 2)] |= (col & 1) ? uint8_t(q << 4) : q;
    }
  }
  const int64_t count = n * layout.groups();
  const size_t sbytes = dtype_size(scale_dtype);
  std::vector<std::byte> scales(size_t(count) * sbytes);
  for (int64_t i = 0; i < count; ++i) store_from_f32(scales.data(), scale_dtype, i, 0.01f * float(1 + rng() % 100));
  std::vector<std::byte> zeros;
  if (mode == ZeroMode::asym) {
    zeros.resize(size_t(count));
    for (auto& z : zeros) z = std::byte(rng() % 17);
  } else if (mode == ZeroMode::float_zero) {
    zeros.resize(size_t(count) * sbytes);
    for (int64_t i = 0; i < count; ++i)
      store_from_f32(zeros.data(), scale_dtype, i, 0.1f * float(int(rng() % 21) - 10));
  }
  std::vector<int32_t> perm(static_cast<size_t>(k));
  std::iota(perm.begin(), perm.end(), 0);
  std::shuffle(perm.begin(), perm.end(), rng);
  Bias bias{DType::bf16, std::vector<std::byte>(size_t(n) * 2)};
  for (int64_t i = 0; i < n; ++i) store_from_f32(bias.data.data(), DType::bf16, i, float(i) - 1.5f);
  return QuantizedWeight(layout, std::move(codes), std::move(scales), std::move(zeros), std::move(perm),
                         std::move(bias));
}

void expect_same(const QuantizedWeight& a, const QuantizedWeight& b) {
  EXPECT_EQ(a.n(), b.n());
  EXPECT_EQ(a.k(), b.k());
  EXPECT_EQ(a.group_size(), b.group_size());
  EXPECT_EQ(a.zero_mode(), b.zero_mode());
  EXPECT_EQ(a.scale_dtype(), b.scale_dtype());
  EXPECT_EQ(a.codes(), b.codes());
  EXPECT_EQ(a.scales(), b.scales());
  EXPECT_EQ(a.zeros(), b.zeros());
  EXPECT_EQ(a.perm(), b.perm());
  EXPECT_EQ(a.has_bias(), b.has_bias());
  EXPECT_EQ(a.bias().data, b.bias().data);
  if (a.has_bias()) {
    EXPECT_EQ(a.bias().dtype, b.bias().dtype);
  }
  EXPECT_EQ(dequantize(a), dequantize(b));
}

// ---------------------------------------------------------------------------------------------
// Round trips
// ---------------------------------------------------------------------------------------------

class QuantizedRoundTrip : public ::testing::TestWithParam<std::tuple<ZeroMode, DType>> {};

TEST_P(QuantizedRoundTrip, RaggedGroupsWithBias) {
  const auto [mode, scale_dtype] = GetParam();
  TempDir dir;
  // K = 70 with g = 32: groups of 32, 32 and a ragged 6.
  const QuantizedWeight w = make_weight(5, 70, 32, mode, scale_dtype, /*with_bias=*/true);
  ASSERT_EQ(w.groups(), 3);
  const auto path = dir / "layer.safetensors";
  save_quantized(path, {{"model.layers.0.mlp.down_proj.weight", &w}});
  expect_same(load_quantized(path, "model.layers.0.mlp.down_proj"), w);
  expect_same(load_quantized(path, "model.layers.0.mlp.down_proj.weight"), w);
}

TEST_P(QuantizedRoundTrip, OddKWithoutBias) {
  const auto [mode, scale_dtype] = GetParam();
  TempDir dir;
  const QuantizedWeight w = make_weight(3, 37, 16, mode, scale_dtype, /*with_bias=*/false);
  const auto path = dir / "odd.safetensors";
  save_quantized(path, {{"odd", &w}});
  const QuantizedWeight loaded = load_quantized(path, "odd");
  expect_same(loaded, w);
  EXPECT_FALSE(loaded.has_bias());
  // The padding nibble of every row (the high nibble of the last byte) is written as 0.
  const auto file = SafetensorsFile::open(path);
  const auto codes = file.data(*file.find("odd.w4a16.codes"));
  ASSERT_EQ(codes.size(), 3u * 19u);
  for (int row = 0; row < 3; ++row) EXPECT_EQ(int(codes[size_t(row * 19 + 18)]) >> 4, 0) << "row " << row;
}

TEST_P(QuantizedRoundTrip, ActOrderPermAndBias) {
  const auto [mode, scale_dtype] = GetParam();
  TempDir dir;
  const QuantizedWeight w = make_perm_weight(4, 45, 8, mode, scale_dtype);
  const auto path = dir / "perm.safetensors";
  save_quantized(path, {{"perm_layer", &w}});
  expect_same(load_quantized(path, "perm_layer.weight"), w);
  const auto file = SafetensorsFile::open(path);
  const TensorInfo* perm = file.find("perm_layer.w4a16.perm");
  ASSERT_NE(perm, nullptr);
  EXPECT_EQ(perm->dtype, StDType::I32);
  EXPECT_EQ(perm->shape, std::vector<int64_t>{45});
  const TensorInfo* bias = file.find("perm_layer.bias");
  ASSERT_NE(bias, nullptr);
  EXPECT_EQ(bias->dtype, StDType::BF16);
}

INSTANTIATE_TEST_SUITE_P(AllModes, QuantizedRoundTrip,
                         ::testing::Combine(::testing::Values(ZeroMode::sym, ZeroMode::asym, ZeroMode::float_zero),
                                            ::testing::Values(DType::f16, DType::bf16, DType::f32)),
                         [](const auto& info) {
                           return std::string(to_string(std::get<0>(info.param))) + "_" +
                                  std::string(to_string(std::get<1>(info.param)));
                         });

// A converter adds layers lazily: the file is byte-identical to the eager one, and each weight
// is made once, while the file is written (and dropped after its last tensor).
TEST(QuantizedFile, LazyLayersWriteTheSameBytesOneLayerAtATime) {
  TempDir dir;
  const QuantizedWeight a = make_perm_weight(7, 90, 32, ZeroMode::float_zero, DType::f32);
  const QuantizedWeight b = make_weight(5, 70, 32, ZeroMode::asym, DType::bf16, /*with_bias=*/true);
  SafetensorsWriter eager;
  add_quantized(eager, "m.a", a);
  add_quantized(eager, "m.b", b);
  eager.write(dir / "eager.safetensors");

  SafetensorsWriter lazy;
  std::vector<std::string> made;
  for (const auto& [name, weight] : {std::pair{"m.a", &a}, std::pair{"m.b", &b}}) {
    add_quantized_lazy(lazy, name, describe(*weight), [&made, name = std::string(name), weight] {
      made.push_back(name);
      return *weight;
    });
  }
  EXPECT_TRUE(made.empty()) << "nothing is made before write()";
  lazy.write(dir / "lazy.safetensors");
  EXPECT_EQ(made, (std::vector<std::string>{"m.a", "m.b"})) << "each layer made once, in file order";
  EXPECT_EQ(read_bytes(dir / "lazy.safetensors"), read_bytes(dir / "eager.safetensors"));

  // A maker that returns a different layout is an internal error, and no file is left.
  SafetensorsWriter wrong;
  add_quantized_lazy(wrong, "m.a", describe(a), [&] { return b; });
  expect_error([&] { wrong.write(dir / "wrong.safetensors"); }, ErrorCode::internal, "differs from its description");
  EXPECT_FALSE(std::filesystem::exists(dir / "wrong.safetensors"));
}

TEST(QuantizedFile, PerChannelAndBiasDtypes) {
  TempDir dir;
  for (const DType bias_dtype : {DType::f16, DType::bf16, DType::f32}) {
    SCOPED_TRACE(std::string(to_string(bias_dtype)));
    const auto values = test::random_weights(6 * 20, 3);
    std::vector<std::byte> bias_bytes(6 * dtype_size(bias_dtype));
    for (int i = 0; i < 6; ++i) store_from_f32(bias_bytes.data(), bias_dtype, i, 0.25f * float(i + 1));
    QuantizeOptions options;
    options.group_size = 0;  // per-channel
    const QuantizedWeight w =
        quantize(MatrixRef{values.data(), DType::f32, 6, 20}, options, MatrixRef{bias_bytes.data(), bias_dtype, 6, 1});
    ASSERT_EQ(w.group_size(), 20);
    const auto path = dir / "pc.safetensors";
    save_quantized(path, {{"pc", &w}});
    const QuantizedWeight loaded = load_quantized(path, "pc");
    expect_same(loaded, w);
    EXPECT_EQ(loaded.bias().dtype, bias_dtype);
  }
}

TEST(QuantizedFile, MetadataJson) {
  TempDir dir;
  const QuantizedWeight w = make_weight(2, 64, 32, ZeroMode::asym, DType::bf16, false);
  save_quantized(dir / "m.safetensors", {{"layer.weight", &w}});
  const auto file = SafetensorsFile::open(dir / "m.safetensors");
  const auto meta = nlohmann::json::parse(file.metadata().at("layer.w4a16"));
  EXPECT_EQ(meta, nlohmann::json::parse(R"({"format":"w4a16","version":1,"n":2,"k":64,"group_size":32,
      "zero_mode":"asym","scale_dtype":"bf16","act_order":false})"));
  std::vector<std::string> names;
  for (const auto& t : file.tensors()) names.push_back(t.name);
  EXPECT_EQ(names, (std::vector<std::string>{"layer.w4a16.codes", "layer.w4a16.scales", "layer.w4a16.zeros"}));
  EXPECT_EQ(file.find("layer.w4a16.codes")->shape, (std::vector<int64_t>{2, 32}));
  EXPECT_EQ(file.find("layer.w4a16.scales")->dtype, StDType::BF16);
  EXPECT_EQ(file.find("layer.w4a16.zeros")->dtype, StDType::U8);
}

// ---------------------------------------------------------------------------------------------
// Names and listing
// ---------------------------------------------------------------------------------------------

TEST(QuantizedFile, ModuleName) {
  EXPECT_EQ(module_name("model.layers.0.mlp.down_proj.weight"), "model.layers.0.mlp.down_proj");
  EXPECT_EQ(module_name("model.layers.0.mlp.down_proj"), "model.layers.0.mlp.down_proj");
  EXPECT_EQ(module_name("lm_head.weight.weight"), "lm_head.weight");
  EXPECT_EQ(module_name("weight"), "weight");
  EXPECT_EQ(module_name("x.weights"), "x.weights");
  EXPECT_EQ(module_name(""), "");
}

TEST(QuantizedFile, ListInFileOrderAndIgnoreForeignTensors) {
  TempDir dir;
  const QuantizedWeight a = make_weight(2, 32, 32, ZeroMode::sym, DType::f16, false, 1);
  const QuantizedWeight b = make_weight(3, 40, 8, ZeroMode::asym, DType::f32, true, 2);
  SafetensorsWriter writer;
  const auto embed = test::filled_bytes(12);
  writer.add("model.embed_tokens.weight", StDType::F16, {2, 3}, embed);
  add_quantized(writer, "z.proj.weight", a);
  add_quantized(writer, "a.proj", b);
  writer.set_metadata("format", "pt");
  const auto path = dir / "mixed.safetensors";
  writer.write(path);
  EXPECT_EQ(list_quantized(path), (std::vector<std::string>{"z.proj", "a.proj"}));
  expect_same(load_quantized(path, "z.proj"), a);
  expect_same(load_quantized(path, "a.proj.weight"), b);
}

// A module whose own name ends in ".weight" (another tool's choice) is listed and loads as listed.
TEST(QuantizedFile, ModuleNamedLikeATensor) {
  TempDir dir;
  const QuantizedWeight w = make_weight(2, 32, 32, ZeroMode::sym, DType::f16, false);
  SafetensorsWriter writer;
  add_quantized(writer, "odd", w);
  const auto path = dir / "o.safetensors";
  writer.write(path);
  // Rename the layer to "odd.weight" by rewriting names and the metadata key.
  const auto file = SafetensorsFile::open(path);
  SafetensorsWriter renamed;
  for (const auto& t : file.tensors()) {
    const auto data = file.data(t);
    renamed.add_owned("odd.weight" + t.name.substr(3), t.dtype, t.shape,
                      std::vector<std::byte>(data.begin(), data.end()));
  }
  renamed.set_metadata("odd.weight.w4a16", file.metadata().at("odd.w4a16"));
  renamed.write(dir / "renamed.safetensors");
  EXPECT_EQ(list_quantized(dir / "renamed.safetensors"), std::vector<std::string>{"odd.weight"});
  expect_same(load_quantized(dir / "renamed.safetensors", "odd.weight"), w);
  expect_same(load_quantized(dir / "renamed.safetensors", "odd.weight.weight"), w);
}

TEST(QuantizedFile, ListEmptyFile) {
  TempDir dir;
  SafetensorsWriter().write(dir / "e.safetensors");
  EXPECT_TRUE(list_quantized(dir / "e.safetensors").empty());
}

TEST(QuantizedFile, LayerNotFound) {
  TempDir dir;
  const QuantizedWeight w = make_weight(2, 32, 32, ZeroMode::sym, DType::f16, false);
  save_quantized(dir / "f.safetensors", {{"present", &w}});
  expect_error([&] { load_quantized(dir / "f.safetensors", "absent.weight"); }, ErrorCode::invalid_argument,
               "no quantized layer 'absent'");
  expect_error([&] { load_quantized(dir / "f.safetensors", "absent"); }, ErrorCode::invalid_argument, "has: present");
}

TEST(QuantizedFile, SaveRejectsBadArguments) {
  TempDir dir;
  const QuantizedWeight w = make_weight(2, 32, 32, ZeroMode::sym, DType::f16, false);
  expect_error(
      [&] {
        save_quantized(dir / "x.safetensors", {{"a", nullptr}});
      },
      ErrorCode::invalid_argument, "null weight");
  expect_error(
      [&] {
        save_quantized(dir / "x.safetensors", {{"a", &w}, {"a.weight", &w}});
      },
      ErrorCode::invalid_argument, "'a' is given twice");
  expect_error(
      [&] {
        save_quantized(dir / "x.safetensors", {{".weight", &w}});
      },
      ErrorCode::invalid_argument, "empty module name");
  EXPECT_FALSE(std::filesystem::exists(dir / "x.safetensors"));
  const auto bad_path = dir / "missing_dir" / "x.safetensors";
  expect_error([&] { save_quantized(bad_path, {{"a", &w}}); }, ErrorCode::io, bad_path.string());
}

TEST(QuantizedFile, AddRejectsTensorAlreadyInWriter) {
  const QuantizedWeight w = make_weight(2, 32, 32, ZeroMode::sym, DType::f16, true);
  SafetensorsWriter writer;
  writer.add_owned("m.bias", StDType::F32, {2}, test::filled_bytes(8));
  expect_error([&] { add_quantized(writer, "m", w); }, ErrorCode::invalid_argument, "already holds tensor 'm.bias'");
  EXPECT_FALSE(writer.contains("m.w4a16.codes"));  // nothing half-added
}

TEST(QuantizedFile, LoadMalformedFileNamesPath) {
  TempDir dir;
  const auto path = dir / "junk.safetensors";
  test::write_bytes(path, test::make_safetensors("[]"));
  expect_error([&] { load_quantized(path, "x"); }, ErrorCode::format, path.string());
  expect_error([&] { list_quantized(path); }, ErrorCode::format, "not a JSON object");
  expect_error([&] { list_quantized(dir / "nope.safetensors"); }, ErrorCode::io, "nope.safetensors");
}

// ---------------------------------------------------------------------------------------------
// Metadata / tensor mismatches. Each test starts from a valid file, edits one thing, and checks
// that reading the layer fails with a format error naming the layer.
// ---------------------------------------------------------------------------------------------

struct EditableFile {
  struct Tensor {
    std::string name;
    StDType dtype;
    std::vector<int64_t> shape;
    std::vector<std::byte> data;
  };
  std::vector<Tensor> tensors;
  std::map<std::string, std::string> metadata;

  Tensor* find(const std::string& name) {
    for (auto& t : tensors) {
      if (t.name == name) return &t;
    }
    return nullptr;
  }
  void erase(const std::string& name) {
    std::erase_if(tensors, [&](const Tensor& t) { return t.name == name; });
  }
  nlohmann::json meta(const std::string& key) const { return nlohmann::json::parse(metadata.at(key)); }
  void set_meta(const std::string& key, const nlohmann::json& value) { metadata[key] = value.dump(); }
};

class QuantizedMismatch : public ::testing::Test {
 protected:
  // Writes `weight` as layer "blk.0.attn" (plus one foreign tensor), lets `edit` change it, and
  // expects reading the layer to fail with `code` and `substring`.
  void expect_rejected(const QuantizedWeight& weight, const std::function<void(EditableFile&)>& edit,
                       const std::string& substring, ErrorCode code = ErrorCode::format) {
    SafetensorsWriter writer;
    add_quantized(writer, "blk.0.attn.weight", weight);
    const auto original = dir_ / "original.safetensors";
    writer.write(original);

    EditableFile editable;
    {
      const auto file = SafetensorsFile::open(original);
      for (const auto& t : file.tensors()) {
        const auto data = file.data(t);
        editable.tensors.push_back({t.name, t.dtype, t.shape, std::vector<std::byte>(data.begin(), data.end())});
      }
      editable.metadata = file.metadata();
    }
    edit(editable);
    SafetensorsWriter edited;
    for (auto& t : editable.tensors) edited.add_owned(t.name, t.dtype, t.shape, t.data);
    for (const auto& [key, value] : editable.metadata) edited.set_metadata(key, value);
    const auto path = dir_ / "edited.safetensors";
    edited.write(path);

    expect_error([&] { load_quantized(path, "blk.0.attn"); }, code, substring);
    if (code == ErrorCode::format) {
      expect_error([&] { load_quantized(path, "blk.0.attn.weight"); }, code, "quantized layer 'blk.0.attn'");
      expect_error([&] { load_quantized(path, "blk.0.attn"); }, code, path.string());
    }
  }

  static constexpr const char* kCodes = "blk.0.attn.w4a16.codes";
  static constexpr const char* kScales = "blk.0.attn.w4a16.scales";
  static constexpr const char* kZeros = "blk.0.attn.w4a16.zeros";
  static constexpr const char* kPerm = "blk.0.attn.w4a16.perm";
  static constexpr const char* kBias = "blk.0.attn.bias";
  static constexpr const char* kMeta = "blk.0.attn.w4a16";

  TempDir dir_;
  QuantizedWeight sym_ = make_weight(4, 48, 16, ZeroMode::sym, DType::f16, true);
  QuantizedWeight asym_ = make_weight(4, 48, 16, ZeroMode::asym, DType::f16, false);
  QuantizedWeight float_ = make_weight(4, 48, 16, ZeroMode::float_zero, DType::bf16, false);
  QuantizedWeight perm_ = make_perm_weight(4, 48, 16, ZeroMode::sym, DType::f32);
};

TEST_F(QuantizedMismatch, UneditedFileLoads) {
  SafetensorsWriter writer;
  add_quantized(writer, "blk.0.attn", sym_);
  writer.write(dir_ / "ok.safetensors");
  expect_same(load_quantized(dir_ / "ok.safetensors", "blk.0.attn"), sym_);
}

TEST_F(QuantizedMismatch, MissingCodes) {
  expect_rejected(
      sym_, [](EditableFile& f) { f.erase(kCodes); }, "tensor 'blk.0.attn.w4a16.codes' is missing");
}

TEST_F(QuantizedMismatch, MissingScales) {
  expect_rejected(
      sym_, [](EditableFile& f) { f.erase(kScales); }, "tensor 'blk.0.attn.w4a16.scales' is missing");
}

TEST_F(QuantizedMismatch, WrongCodesShape) {
  expect_rejected(
      sym_,
      [](EditableFile& f) {
        f.find(kCodes)->shape = {24, 4};
      },
      "has shape [24, 4], expected [4, 24]");
}

TEST_F(QuantizedMismatch, WrongCodesDtype) {
  expect_rejected(
      sym_, [](EditableFile& f) { f.find(kCodes)->dtype = StDType::I8; }, "has dtype I8, expected U8");
}

TEST_F(QuantizedMismatch, WrongScalesShape) {
  expect_rejected(
      sym_,
      [](EditableFile& f) {
        f.find(kScales)->shape = {3, 4};
      },
      "has shape [3, 4], expected [4, 3]");
}

TEST_F(QuantizedMismatch, WrongScalesDtype) {
  expect_rejected(
      sym_, [](EditableFile& f) { f.find(kScales)->dtype = StDType::BF16; }, "has dtype BF16, expected F16");
}

TEST_F(QuantizedMismatch, MetadataShapeDisagreesWithTensors) {
  expect_rejected(
      sym_,
      [](EditableFile& f) {
        auto meta = f.meta(kMeta);
        meta["n"] = 5;
        f.set_meta(kMeta, meta);
      },
      "expected [5, 24]");
}

TEST_F(QuantizedMismatch, MissingZerosInAsymMode) {
  expect_rejected(
      asym_, [](EditableFile& f) { f.erase(kZeros); }, "tensor 'blk.0.attn.w4a16.zeros' is missing");
}

TEST_F(QuantizedMismatch, ZerosPresentInSymMode) {
  expect_rejected(
      sym_,
      [](EditableFile& f) {
        f.tensors.push_back({kZeros, StDType::U8, {4, 3}, std::vector<std::byte>(12)});
      },
      "present in sym mode");
}

TEST_F(QuantizedMismatch, WrongFloatZerosDtype) {
  expect_rejected(
      float_,
      [](EditableFile& f) {
        f.find(kZeros)->dtype = StDType::F16;  // scales are BF16
      },
      "has dtype F16, expected BF16");
}

TEST_F(QuantizedMismatch, ZeroValueAbove16) {
  expect_rejected(
      asym_, [](EditableFile& f) { f.find(kZeros)->data[5] = std::byte(17); }, "zero 17 at row 1 group 2");
}

TEST_F(QuantizedMismatch, NonFiniteScale) {
  expect_rejected(
      sym_,
      [](EditableFile& f) {
        f.find(kScales)->data[0] = std::byte(0x00);
        f.find(kScales)->data[1] = std::byte(0x7C);  // fp16 +inf
      },
      "scale at row 0 group 0 is not finite");
}

TEST_F(QuantizedMismatch, BadVersion) {
  expect_rejected(
      sym_,
      [](EditableFile& f) {
        auto meta = f.meta(kMeta);
        meta["version"] = 2;
        f.set_meta(kMeta, meta);
      },
      "format version 2 is not supported");
}

TEST_F(QuantizedMismatch, VersionNotAnInteger) {
  expect_rejected(
      sym_,
      [](EditableFile& f) {
        auto meta = f.meta(kMeta);
        meta["version"] = "1";
        f.set_meta(kMeta, meta);
      },
      "\"version\" is not an integer");
}

TEST_F(QuantizedMismatch, DeeplyNestedMetadataValue) {
  expect_rejected(
      sym_,
      [](EditableFile& f) {
        constexpr size_t kDepth = 200'000;  // a recursive dump() segfaults at 100k at -O0
        f.metadata[kMeta] =
            "{\"format\":\"w4a16\",\"version\":" + std::string(kDepth, '[') + std::string(kDepth, ']') + "}";
      },
      "\"version\" is not an integer (an array)");
}

TEST_F(QuantizedMismatch, MissingVersion) {
  expect_rejected(
      sym_,
      [](EditableFile& f) {
        auto meta = f.meta(kMeta);
        meta.erase("version");
        f.set_meta(kMeta, meta);
      },
      "metadata has no \"version\"");
}

TEST_F(QuantizedMismatch, WrongFormatName) {
  expect_rejected(
      sym_,
      [](EditableFile& f) {
        auto meta = f.meta(kMeta);
        meta["format"] = "gptq";
        f.set_meta(kMeta, meta);
      },
      "\"format\" is 'gptq'");
}

TEST_F(QuantizedMismatch, MetadataNotJson) {
  expect_rejected(
      sym_, [](EditableFile& f) { f.metadata[kMeta] = "{not json"; }, "is not valid JSON");
}

TEST_F(QuantizedMismatch, MetadataNotAnObject) {
  expect_rejected(
      sym_, [](EditableFile& f) { f.metadata[kMeta] = "[1]"; }, "is not a JSON object");
}

TEST_F(QuantizedMismatch, UnknownZeroMode) {
  expect_rejected(
      sym_,
      [](EditableFile& f) {
        auto meta = f.meta(kMeta);
        meta["zero_mode"] = "symmetric";
        f.set_meta(kMeta, meta);
      },
      "zero_mode 'symmetric' is not sym, asym or float");
}

TEST_F(QuantizedMismatch, UnknownScaleDtype) {
  expect_rejected(
      sym_,
      [](EditableFile& f) {
        auto meta = f.meta(kMeta);
        meta["scale_dtype"] = "f16";
        f.set_meta(kMeta, meta);
      },
      "scale_dtype 'f16' is not fp16, bf16 or fp32");
}

TEST_F(QuantizedMismatch, NonPositiveSizes) {
  expect_rejected(
      sym_,
      [](EditableFile& f) {
        auto meta = f.meta(kMeta);
        meta["k"] = 0;
        f.set_meta(kMeta, meta);
      },
      "must be positive");
}

TEST_F(QuantizedMismatch, GroupSizeAboveK) {
  expect_rejected(
      sym_,
      [](EditableFile& f) {
        auto meta = f.meta(kMeta);
        meta["group_size"] = 49;
        f.set_meta(kMeta, meta);
      },
      "group size 49 exceeds K=48");
}

TEST_F(QuantizedMismatch, ActOrderWithoutPerm) {
  expect_rejected(
      perm_, [](EditableFile& f) { f.erase(kPerm); }, "tensor 'blk.0.attn.w4a16.perm' is missing");
}

TEST_F(QuantizedMismatch, PermWithoutActOrder) {
  expect_rejected(
      perm_,
      [](EditableFile& f) {
        auto meta = f.meta(kMeta);
        meta["act_order"] = false;
        f.set_meta(kMeta, meta);
      },
      "metadata says act_order=false");
}

TEST_F(QuantizedMismatch, ActOrderNotBoolean) {
  expect_rejected(
      perm_,
      [](EditableFile& f) {
        auto meta = f.meta(kMeta);
        meta["act_order"] = 1;
        f.set_meta(kMeta, meta);
      },
      "\"act_order\" is not true or false");
}

TEST_F(QuantizedMismatch, PermNotAPermutation) {
  expect_rejected(
      perm_,
      [](EditableFile& f) {
        auto& data = f.find(kPerm)->data;
        std::memcpy(data.data() + 4, data.data(), 4);  // perm[1] = perm[0]
      },
      "is not a permutation");
}

TEST_F(QuantizedMismatch, PermOutOfRange) {
  expect_rejected(
      perm_,
      [](EditableFile& f) {
        const int32_t bad = 48;
        std::memcpy(f.find(kPerm)->data.data(), &bad, 4);
      },
      "perm[0]=48 is outside [0, K=48)");
}

TEST_F(QuantizedMismatch, WrongPermDtype) {
  expect_rejected(
      perm_, [](EditableFile& f) { f.find(kPerm)->dtype = StDType::F32; }, "has dtype F32, expected I32");
}

TEST_F(QuantizedMismatch, WrongBiasShape) {
  expect_rejected(
      sym_,
      [](EditableFile& f) {
        f.find(kBias)->shape = {2, 2};
      },
      "tensor 'blk.0.attn.bias' has shape [2, 2], expected [4]");
}

TEST_F(QuantizedMismatch, WrongBiasDtype) {
  expect_rejected(
      sym_,
      [](EditableFile& f) {
        auto* bias = f.find(kBias);
        bias->dtype = StDType::I32;
      },
      "has dtype I32, expected F16 or BF16 or F32");
}

}  // namespace
}  // namespace w4a16::io
