// compressed-tensors pack-quantized importer: FORMATS.md's vector, randomized round trips (sym /
// asym, group / channel, actorder with weight_g_idx, K not a multiple of 8, I32 / I64
// weight_shape, legacy I8 zero points), a checkpoint directory, one test per bad input.
#include "io/import_compressed_tensors.hpp"

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

TEST(ImportCompressedTensors, VectorSignedMinusEightToMinusOnePackTo0x76543210) {
  EXPECT_EQ(uint32_t(test::ct_pack({-8, -7, -6, -5, -4, -3, -2, -1}, 1, 8, 1)[0]), 0x76543210u);

  TensorSet set;
  set.add("m.weight_packed", StDType::I32, {1, 1}, std::vector<int32_t>{0x76543210});
  set.add("m.weight_scale", StDType::BF16, {1, 1}, std::vector<uint16_t>{f32_to_bf16(0.25f)});
  set.add("m.weight_shape", StDType::I64, {2}, std::vector<int64_t>{1, 8});
  const io::TensorMap src = set.source();
  const QuantizedWeight w = io::import_compressed_tensors(src, "m", {.name = "group_0", .group_size = 8});
  EXPECT_EQ(w.zero_mode(), ZeroMode::sym);
  EXPECT_EQ(w.scale_dtype(), DType::bf16);
  for (int k = 0; k < 8; ++k) EXPECT_EQ(w.value(0, k), 0.25f * (k - 8));
}

struct Case {
  int64_t k, n, g;  // g = 0: channel
  bool asym, act_order;
  StDType scale_dtype, shape_dtype;
};

class CtRoundTrip : public ::testing::TestWithParam<Case> {};

TEST_P(CtRoundTrip, EveryElementEqualsTheFormula) {
  const Case c = GetParam();
  std::mt19937 rng(uint32_t(c.k * 5 + c.n + c.g + c.asym + 2 * c.act_order));
  const int64_t g = c.g == 0 ? c.k : c.g;
  Truth t = test::random_truth(rng, c.k, c.n, g, c.act_order, c.asym ? 0 : 8, c.asym ? 15 : 8, c.scale_dtype);
  TensorSet set;
  test::add_ct_module(set, "model.layers.1.mlp.down_proj", t, c.asym, c.act_order, c.shape_dtype);
  const io::TensorMap src = set.source();
  const io::CtScheme scheme{.name = "group_0", .targets = {"Linear"}, .symmetric = !c.asym, .group_size = c.g};
  const QuantizedWeight w = io::import_compressed_tensors(src, "model.layers.1.mlp.down_proj", scheme);
  EXPECT_EQ(w.zero_mode(), c.asym ? ZeroMode::asym : ZeroMode::sym);
  EXPECT_EQ(w.has_perm(), c.act_order && g < c.k);
  test::expect_matches(w, t);
}

INSTANTIATE_TEST_SUITE_P(Shapes, CtRoundTrip,
                         ::testing::Values(Case{256, 64, 128, false, false, StDType::F16, StDType::I64},
                                           Case{256, 64, 32, true, false, StDType::BF16, StDType::I64},
                                           Case{100, 20, 32, true, false, StDType::F16, StDType::I32},  // K, N % 8 != 0
                                           Case{192, 16, 0, false, false, StDType::BF16, StDType::I64},
                                           Case{256, 24, 64, false, true, StDType::F16, StDType::I64},
                                           Case{160, 13, 32, true, true, StDType::BF16, StDType::I32}));

TEST(ImportCompressedTensors, LegacyUnpackedInt8ZeroPoints) {
  std::mt19937 rng(4);
  const Truth t = test::random_truth(rng, 64, 8, 32, false, 0, 15);
  TensorSet set;
  test::add_ct_module(set, "m", t, /*asym=*/false, false);
  std::vector<int8_t> zp(size_t(t.n * t.groups));
  for (int64_t grp = 0; grp < t.groups; ++grp) {
    for (int64_t n = 0; n < t.n; ++n) zp[size_t(n * t.groups + grp)] = int8_t(t.z[size_t(grp * t.n + n)] - 8);
  }
  set.add("m.weight_zero_point", StDType::I8, {t.n, t.groups}, zp);
  const io::TensorMap src = set.source();
  test::expect_matches(io::import_compressed_tensors(src, "m", {.symmetric = false, .group_size = 32}), t);
}

TEST(ImportCompressedTensors, CheckpointDirectoryWithIgnoreList) {
  test::TempDir dir;
  std::mt19937 rng(8);
  const Truth t = test::random_truth(rng, 128, 16, 64, true, 0, 15);
  TensorSet set;
  test::add_ct_module(set, "model.layers.0.self_attn.q_proj", t, true, true);
  set.add("lm_head.weight", StDType::F16, {2, 4}, std::vector<uint16_t>(8, 0));
  test::write_checkpoint(dir.path(), test::ct_config_json("group", 64, false, "\"group\""), set, 2);
  const io::HfCheckpoint ckpt = io::HfCheckpoint::open(dir.path());
  ASSERT_EQ(io::quantized_modules(ckpt), std::vector<std::string>{"model.layers.0.self_attn.q_proj"});
  test::expect_matches(io::import_module(ckpt, "model.layers.0.self_attn.q_proj"), t);
}

TensorSet valid_set() {
  std::mt19937 rng(10);
  const Truth t = test::random_truth(rng, 64, 16, 32, false, 0, 15);
  TensorSet set;
  test::add_ct_module(set, "m", t, true, false);
  return set;
}

void expect_refused(const TensorSet& set, const std::string& substring,
                    io::CtScheme scheme = {.name = "group_0", .symmetric = false, .group_size = 32}) {
  const io::TensorMap src = set.source();
  expect_error([&] { io::import_compressed_tensors(src, "m", scheme); }, ErrorCode::format, substring);
}

TEST(ImportCompressedTensorsRefuses, WeightShapeDisagreesWithPacked) {
  TensorSet set = valid_set();
  set.remove("m.weight_shape");
  set.add("m.weight_shape", StDType::I64, {2}, std::vector<int64_t>{16, 72});
  expect_refused(set, "m.weight_packed");
}

TEST(ImportCompressedTensorsRefuses, FloatWeightShape) {
  TensorSet set = valid_set();
  set.remove("m.weight_shape");
  set.add("m.weight_shape", StDType::F32, {2}, std::vector<float>{16, 64});
  expect_refused(set, "m.weight_shape");
}

TEST(ImportCompressedTensorsRefuses, AsymmetricWithoutZeroPoint) {
  TensorSet set = valid_set();
  set.remove("m.weight_zero_point");
  expect_refused(set, "missing tensor 'm.weight_zero_point'");
}

TEST(ImportCompressedTensorsRefuses, NonZeroZeroPointInASymmetricScheme) {
  expect_refused(valid_set(), "symmetric", {.name = "group_0", .symmetric = true, .group_size = 32});
}

TEST(ImportCompressedTensorsRefuses, ZeroPointWithTheWrongShape) {
  TensorSet set = valid_set();
  set.get("m.weight_zero_point")->shape = {1, 4};
  expect_refused(set, "m.weight_zero_point");
}

TEST(ImportCompressedTensorsRefuses, ScalesForAnotherGroupSize) {
  expect_refused(valid_set(), "m.weight_scale", {.name = "group_0", .symmetric = false, .group_size = 16});
}

TEST(ImportCompressedTensorsRefuses, GIdxOutOfRange) {
  TensorSet set = valid_set();
  std::vector<int32_t> g_idx(64, 0);
  for (int k = 0; k < 64; ++k) g_idx[size_t(k)] = k / 32;
  g_idx[63] = -1;
  set.add("m.weight_g_idx", StDType::I32, {64}, g_idx);
  expect_refused(set, "g_idx[63] = -1");
}

TEST(ImportCompressedTensorsRefuses, MissingScale) {
  TensorSet set = valid_set();
  set.remove("m.weight_scale");
  expect_refused(set, "missing tensor 'm.weight_scale'");
}

}  // namespace
}  // namespace w4a16
