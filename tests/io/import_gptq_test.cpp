// GPTQ importer: FORMATS.md's vectors, randomized round trips against the format's formula (v1 /
// v2 zeros, g in {32, 64, 128, per-channel}, act-order, fp16 / bf16 scales, bias), a sharded
// act-order checkpoint, and one test per bad input.
#include "io/import_gptq.hpp"

#include <gtest/gtest.h>

#include "io/hf_checkpoint.hpp"
#include "support/checkpoint_builder.hpp"
#include "support/io_test_util.hpp"

namespace w4a16 {
namespace {

using io::StDType;
using test::expect_error;
using test::TensorSet;
using test::Truth;

// One column (N = 8 for the zeros' packing), K = 8, g = 8.
TensorSet one_word_layer(uint32_t qweight_col0, uint32_t qzeros_word) {
  TensorSet set;
  std::vector<int32_t> qweight(8, 0);
  qweight[0] = int32_t(qweight_col0);
  set.add("m.qweight", StDType::I32, {1, 8}, qweight);
  set.add("m.qzeros", StDType::I32, {1, 1}, std::vector<int32_t>{int32_t(qzeros_word)});
  set.add("m.scales", StDType::F16, {1, 8}, std::vector<uint16_t>(8, f32_to_f16(0.5f)));
  return set;
}

TEST(ImportGptq, VectorCodesDownKPackTo0x76543210) {
  Truth t;
  t.k = 8, t.n = 1, t.g = 8, t.groups = 1;
  t.q = {0, 1, 2, 3, 4, 5, 6, 7};
  EXPECT_EQ(uint32_t(test::gptq_pack_qweight(t)[0]), 0x76543210u);

  const TensorSet set = one_word_layer(0x76543210u, 0x77777777u);
  const io::TensorMap src = set.source();
  const QuantizedWeight w = io::import_gptq(src, "m", {.group_size = 8, .sym = true, .v2 = false});
  for (int k = 0; k < 8; ++k) {
    EXPECT_EQ(w.code(0, k), k);
    EXPECT_EQ(w.code(1, k), 0);
  }
}

TEST(ImportGptq, VectorSymZerosAre0x77777777InV1And0x88888888InV2) {
  const TensorSet set1 = one_word_layer(0x76543210u, 0x77777777u);
  const TensorSet set2 = one_word_layer(0x76543210u, 0x88888888u);
  const io::TensorMap v1 = set1.source();
  const io::TensorMap v2 = set2.source();
  const QuantizedWeight a = io::import_gptq(v1, "m", {.group_size = 8, .v2 = false});
  const QuantizedWeight b = io::import_gptq(v2, "m", {.group_size = 8, .v2 = true});
  EXPECT_EQ(a.zero_mode(), ZeroMode::sym);
  EXPECT_EQ(b.zero_mode(), ZeroMode::sym);
  EXPECT_EQ(dequantize(a), dequantize(b));
  EXPECT_EQ(dequantize(a)[3], 0.5f * (3 - 8));
  // The same v1 word read as v2 is z = 7: asym.
  EXPECT_EQ(io::import_gptq(v1, "m", {.group_size = 8, .v2 = true}).zero_mode(), ZeroMode::asym);
}

TEST(ImportGptq, V1StoredFifteenReadsSixteenWithAWarning) {
  const TensorSet set = one_word_layer(0x76543210u, 0x7777777Fu);
  const io::TensorMap src = set.source();
  std::vector<std::string> warnings;
  const QuantizedWeight w = io::import_gptq(src, "m", {.group_size = 8, .v2 = false}, &warnings);
  EXPECT_EQ(w.zero_mode(), ZeroMode::asym);
  EXPECT_EQ(w.zero_int(0, 0), 16);
  EXPECT_EQ(w.zero_int(1, 0), 8);
  EXPECT_EQ(w.value(0, 7), 0.5f * (7 - 16));
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("16"), std::string::npos);
}

struct Case {
  int64_t k, n, g;  // g = -1: per channel
  bool act_order, v2;
  StDType scale_dtype;
};

class GptqRoundTrip : public ::testing::TestWithParam<Case> {};

TEST_P(GptqRoundTrip, EveryElementEqualsTheFormula) {
  const Case c = GetParam();
  std::mt19937 rng(uint32_t(c.k * 131 + c.n * 7 + c.g + c.act_order * 3 + c.v2));
  const int64_t g = c.g == -1 ? c.k : c.g;
  // v1 represents z in [1, 16]; v2 z in [0, 15].
  Truth t = test::random_truth(rng, c.k, c.n, g, c.act_order, c.v2 ? 0 : 1, c.v2 ? 15 : 16, c.scale_dtype);
  t.bias.assign(size_t(c.n), f32_to_f16(0.125f));
  TensorSet set;
  test::add_gptq_module(set, "model.layers.0.mlp.up_proj", t, !c.v2);
  const io::TensorMap src = set.source();
  const io::GptqConfig config{.group_size = c.g, .sym = false, .desc_act = c.act_order, .v2 = c.v2};
  const QuantizedWeight w = io::import_gptq(src, "model.layers.0.mlp.up_proj", config);
  EXPECT_EQ(w.has_perm(), c.act_order && g < c.k);
  EXPECT_EQ(w.scale_dtype(), c.scale_dtype == StDType::BF16 ? DType::bf16 : DType::f16);
  ASSERT_TRUE(w.has_bias());
  EXPECT_EQ(w.bias_value(0), 0.125f);
  test::expect_matches(w, t);
}

INSTANTIATE_TEST_SUITE_P(Shapes, GptqRoundTrip,
                         ::testing::Values(Case{256, 64, 32, false, false, StDType::F16},
                                           Case{256, 64, 64, true, false, StDType::F16},
                                           Case{256, 32, 128, true, true, StDType::F16},
                                           Case{192, 16, -1, false, true, StDType::F16},
                                           Case{200, 24, 64, true, true, StDType::BF16},  // K % 8 = 0, ragged group
                                           Case{100, 8, 32, true, false, StDType::F16},   // K % 8 != 0
                                           Case{128, 8, 32, false, true, StDType::BF16}));

TEST(ImportGptq, WithoutGIdxGroupsAreKOverG) {
  std::mt19937 rng(5);
  const Truth t = test::random_truth(rng, 128, 16, 32, false, 1, 16);
  TensorSet set;
  test::add_gptq_module(set, "m", t, /*v1=*/true, /*with_g_idx=*/false);
  const io::TensorMap src = set.source();
  test::expect_matches(io::import_gptq(src, "m", {.group_size = 32}), t);
}

TEST(ImportGptq, ShardedActOrderCheckpoint) {
  test::TempDir dir;
  std::mt19937 rng(11);
  const Truth up = test::random_truth(rng, 256, 32, 64, true, 1, 16);
  const Truth down = test::random_truth(rng, 128, 64, 64, true, 1, 16);
  TensorSet set;
  test::add_gptq_module(set, "model.layers.0.mlp.up_proj", up, true);
  test::add_gptq_module(set, "model.layers.0.mlp.down_proj", down, true);
  set.add("model.embed_tokens.weight", StDType::F16, {4, 8}, std::vector<uint16_t>(32, f32_to_f16(1.0f)));
  test::write_checkpoint(dir.path(), test::gptq_config_json(64, true, false), set, /*shards=*/3);

  const io::HfCheckpoint ckpt = io::HfCheckpoint::open(dir.path());
  EXPECT_EQ(ckpt.shard_names().size(), 3u);
  const std::vector<std::string> modules = io::quantized_modules(ckpt);
  ASSERT_EQ(modules, (std::vector<std::string>{"model.layers.0.mlp.down_proj", "model.layers.0.mlp.up_proj"}));
  const QuantizedWeight w_down = io::import_module(ckpt, modules[0]);
  const QuantizedWeight w_up = io::import_module(ckpt, modules[1] + ".weight");
  EXPECT_TRUE(w_up.has_perm());
  test::expect_matches(w_down, down);
  test::expect_matches(w_up, up);
}

// --- bad input: one test per case ----------------------------------------------------------------

TensorSet valid_set(Truth* out = nullptr) {
  std::mt19937 rng(3);
  const Truth t = test::random_truth(rng, 64, 16, 16, true, 1, 16);
  TensorSet set;
  test::add_gptq_module(set, "m", t, true);
  if (out) *out = t;
  return set;
}

void expect_refused(const TensorSet& set, const std::string& substring, io::GptqConfig config = {.group_size = 16}) {
  const io::TensorMap src = set.source();
  expect_error([&] { io::import_gptq(src, "m", config); }, ErrorCode::format, substring);
}

TEST(ImportGptqRefuses, WrongQweightDtype) {
  TensorSet set = valid_set();
  set.get("m.qweight")->dtype = StDType::F32;
  expect_refused(set, "m.qweight");
}

TEST(ImportGptqRefuses, IntegerScales) {
  TensorSet set = valid_set();
  auto* s = set.get("m.scales");
  s->dtype = StDType::I16;
  expect_refused(set, "m.scales");
}

TEST(ImportGptqRefuses, ScalesWithTheWrongGroupCount) { expect_refused(valid_set(), "m.scales", {.group_size = 32}); }

TEST(ImportGptqRefuses, QzerosWithTheWrongShape) {
  TensorSet set = valid_set();
  auto* z = set.get("m.qzeros");
  z->shape = {2, 4};  // same bytes (4 groups x 2 words), wrong shape
  expect_refused(set, "m.qzeros");
}

TEST(ImportGptqRefuses, GIdxOutOfRange) {
  TensorSet set = valid_set();
  auto* g = set.get("m.g_idx");
  const int32_t bad = 4;  // groups = 64 / 16 = 4
  std::memcpy(g->bytes.data() + 5 * 4, &bad, 4);
  expect_refused(set, "g_idx[5] = 4");
}

TEST(ImportGptqRefuses, GIdxLengthDisagreesWithQweight) {
  TensorSet set = valid_set();
  set.remove("m.g_idx");
  set.add("m.g_idx", StDType::I32, {72}, std::vector<int32_t>(72, 0));
  expect_refused(set, "m.g_idx");
}

TEST(ImportGptqRefuses, NonUniformActOrderGroups) {
  TensorSet set = valid_set();
  set.remove("m.g_idx");
  std::vector<int32_t> g_idx(64);
  for (int k = 0; k < 64; ++k) g_idx[size_t(k)] = (k * 7) % 4;  // 16 each: fine...
  g_idx[0] = 1;                                                 // ...but now group 1 holds 17 and group 0 holds 15
  set.add("m.g_idx", StDType::I32, {64}, g_idx);
  expect_refused(set, "act-order group 0 holds 15");
}

TEST(ImportGptqRefuses, MissingQzeros) {
  TensorSet set = valid_set();
  set.remove("m.qzeros");
  expect_refused(set, "missing tensor 'm.qzeros'");
}

TEST(ImportGptqRefuses, NNotAMultipleOfEight) {
  TensorSet set;
  set.add("m.qweight", StDType::I32, {1, 4}, std::vector<int32_t>(4, 0));
  set.add("m.qzeros", StDType::I32, {1, 1}, std::vector<int32_t>(1, 0));
  set.add("m.scales", StDType::F16, {1, 4}, std::vector<uint16_t>(4, 0x3C00));
  expect_refused(set, "multiple of 8");
}

TEST(ImportGptqRefuses, BiasOfTheWrongLength) {
  TensorSet set = valid_set();
  set.add("m.bias", StDType::F16, {15}, std::vector<uint16_t>(15, 0));
  expect_refused(set, "m.bias");
}

TEST(ImportGptqRefuses, NonFiniteScale) {
  TensorSet set = valid_set();
  const uint16_t inf = 0x7C00;
  std::memcpy(set.get("m.scales")->bytes.data(), &inf, 2);
  expect_refused(set, "module 'm'");
}

// A module whose own name ends in ".weight" (tensors `<module>.qweight`, ...) is listed and imported
// under that name; it failed with "missing tensor 'x.qweight'" (the name was stripped to its
// parent). A tensor name given for its module still finds it, and a module that is in neither form
// is named, with both tensor names tried.
TEST(ImportModuleNames, AModuleNamedLikeATensorIsImportedAndAMissingOneIsNamed) {
  const TensorSet plain = one_word_layer(0x76543210u, 0x77777777u);
  TensorSet dotted;
  for (test::OwnedTensor t : plain.tensors()) {
    t.name = "x.weight" + t.name.substr(1);  // m.qweight -> x.weight.qweight
    dotted.add(std::move(t));
  }
  const io::QuantConfig config = io::GptqConfig{.group_size = 8, .v2 = false};
  const io::TensorMap dotted_src = dotted.source(), plain_src = plain.source();
  EXPECT_EQ(io::quantized_modules(config, dotted_src), std::vector<std::string>{"x.weight"});
  EXPECT_EQ(dequantize(io::import_module(config, dotted_src, "x.weight")),
            dequantize(io::import_module(config, plain_src, "m")));
  EXPECT_EQ(io::import_module(config, plain_src, "m.weight").k(), 8);
  expect_error([&] { io::import_module(config, dotted_src, "x"); }, ErrorCode::format,
               "no gptq module 'x' in the checkpoint (no tensor 'x.qweight')");
  expect_error([&] { io::import_module(config, plain_src, "y.weight"); }, ErrorCode::format,
               "no tensor 'y.weight.qweight' or 'y.qweight'");
}

}  // namespace
}  // namespace w4a16
