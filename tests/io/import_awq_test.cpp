// AWQ GEMM importer: FORMATS.md's interleave vector, randomized round trips against the formula,
// a checkpoint directory, and one test per bad input.
#include "io/import_awq.hpp"

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

TEST(ImportAwq, VectorColumnsZeroToSevenPackTo0x75316420) {
  EXPECT_EQ(uint32_t(test::awq_pack({0, 1, 2, 3, 4, 5, 6, 7}, 1, 8)[0]), 0x75316420u);

  TensorSet set;
  set.add("m.qweight", StDType::I32, {1, 1}, std::vector<int32_t>{0x75316420});
  set.add("m.qzeros", StDType::I32, {1, 1}, std::vector<int32_t>{int32_t(0x88888888u)});
  set.add("m.scales", StDType::F16, {1, 8}, std::vector<uint16_t>(8, f32_to_f16(2.0f)));
  const io::TensorMap src = set.source();
  const QuantizedWeight w = io::import_awq(src, "m", {.group_size = -1});
  EXPECT_EQ(w.zero_mode(), ZeroMode::sym);
  for (int n = 0; n < 8; ++n) {
    EXPECT_EQ(w.code(n, 0), n);
    EXPECT_EQ(w.value(n, 0), 2.0f * (n - 8));
  }
}

struct Case {
  int64_t k, n, g;
  StDType scale_dtype;
};

class AwqRoundTrip : public ::testing::TestWithParam<Case> {};

TEST_P(AwqRoundTrip, EveryElementEqualsTheFormula) {
  const Case c = GetParam();
  std::mt19937 rng(uint32_t(c.k + c.n * 3 + c.g));
  const int64_t g = c.g == -1 ? c.k : c.g;
  Truth t = test::random_truth(rng, c.k, c.n, g, false, 0, 15, c.scale_dtype);
  t.bias.assign(size_t(c.n), f32_to_f16(-0.5f));
  TensorSet set;
  test::add_awq_module(set, "model.layers.3.self_attn.o_proj", t);
  const io::TensorMap src = set.source();
  const QuantizedWeight w = io::import_awq(src, "model.layers.3.self_attn.o_proj", {.group_size = c.g});
  EXPECT_EQ(w.zero_mode(), ZeroMode::asym);
  EXPECT_FALSE(w.has_perm());
  EXPECT_EQ(w.bias_value(1), -0.5f);
  test::expect_matches(w, t);
}

INSTANTIATE_TEST_SUITE_P(Shapes, AwqRoundTrip,
                         ::testing::Values(Case{256, 64, 128, StDType::F16}, Case{128, 32, 32, StDType::F16},
                                           Case{96, 16, 64, StDType::BF16},  // ragged last group
                                           Case{64, 8, -1, StDType::F16}, Case{33, 24, 16, StDType::F16}));

TEST(ImportAwq, CheckpointDirectory) {
  test::TempDir dir;
  std::mt19937 rng(7);
  const Truth t = test::random_truth(rng, 128, 32, 64, false, 0, 15);
  TensorSet set;
  test::add_awq_module(set, "model.layers.0.mlp.gate_proj", t);
  test::write_checkpoint(dir.path(), test::awq_config_json(64), set);
  const io::HfCheckpoint ckpt = io::HfCheckpoint::open(dir.path());
  ASSERT_EQ(io::quantized_modules(ckpt), std::vector<std::string>{"model.layers.0.mlp.gate_proj"});
  test::expect_matches(io::import_module(ckpt, "model.layers.0.mlp.gate_proj"), t);
}

TensorSet valid_set() {
  std::mt19937 rng(9);
  const Truth t = test::random_truth(rng, 64, 16, 32, false, 0, 15);
  TensorSet set;
  test::add_awq_module(set, "m", t);
  return set;
}

void expect_refused(const TensorSet& set, const std::string& substring, io::AwqConfig config = {.group_size = 32}) {
  const io::TensorMap src = set.source();
  expect_error([&] { io::import_awq(src, "m", config); }, ErrorCode::format, substring);
}

TEST(ImportAwqRefuses, MissingQzerosEvenWithoutZeroPoint) {
  TensorSet set = valid_set();
  set.remove("m.qzeros");
  expect_refused(set, "missing tensor 'm.qzeros'", {.group_size = 32, .zero_point = false});
}

TEST(ImportAwqRefuses, QweightPackedAlongTheWrongAxis) {
  TensorSet set = valid_set();
  set.get("m.qweight")->shape = {8, 16};  // GPTQ's orientation, same bytes
  expect_refused(set, "m.qweight");
}

TEST(ImportAwqRefuses, IntegerScales) {
  TensorSet set = valid_set();
  set.get("m.scales")->dtype = StDType::I16;
  expect_refused(set, "m.scales");
}

TEST(ImportAwqRefuses, GroupSizeDisagreesWithScales) { expect_refused(valid_set(), "m.scales", {.group_size = 16}); }

TEST(ImportAwqRefuses, QzerosWithTheWrongShape) {
  TensorSet set = valid_set();
  set.get("m.qzeros")->shape = {1, 4};
  expect_refused(set, "m.qzeros");
}

TEST(ImportAwqRefuses, WrongQzerosDtype) {
  TensorSet set = valid_set();
  set.get("m.qzeros")->dtype = StDType::F32;
  expect_refused(set, "m.qzeros");
}

}  // namespace
}  // namespace w4a16
