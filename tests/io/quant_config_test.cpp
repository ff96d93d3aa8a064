// quantization_config reader: every accepted variant, and one test per refusal (each message
// names the variant or the field).
#include "io/quant_config.hpp"

#include <gtest/gtest.h>

#include "support/checkpoint_builder.hpp"
#include "support/io_test_util.hpp"

namespace w4a16 {
namespace {

using test::expect_error;

io::QuantConfig parse(const std::string& quantization_config) {
  const auto config =
      io::parse_quant_config("{\"model_type\": \"llama\", \"quantization_config\": " + quantization_config + "}");
  if (!config) throw std::runtime_error("no quantization_config");
  return *config;
}

void expect_refused(const std::string& quantization_config, ErrorCode code, const std::string& substring) {
  expect_error([&] { parse(quantization_config); }, code, substring);
}

TEST(QuantConfig, NoQuantizationConfigIsNullopt) {
  EXPECT_FALSE(io::parse_quant_config("{\"hidden_size\": 4096}").has_value());
  EXPECT_FALSE(io::parse_quant_config("{\"quantization_config\": null}").has_value());
}

TEST(QuantConfig, GptqV1) {
  const auto c = std::get<io::GptqConfig>(*io::parse_quant_config(test::gptq_config_json(128, false, false)));
  EXPECT_EQ(c.group_size, 128);
  EXPECT_FALSE(c.v2);
  EXPECT_FALSE(c.desc_act);
  EXPECT_TRUE(c.sym);
}

TEST(QuantConfig, GptqV2ActOrderPerChannelFromEitherKey) {
  const auto a = std::get<io::GptqConfig>(*io::parse_quant_config(test::gptq_config_json(-1, true, true, false)));
  EXPECT_EQ(a.group_size, -1);
  EXPECT_TRUE(a.v2);
  EXPECT_TRUE(a.desc_act);
  EXPECT_FALSE(a.sym);
  const auto b =
      std::get<io::GptqConfig>(parse(R"({"quant_method": "gptq", "bits": 4, "group_size": 32, "format": "gptq_v2"})"));
  EXPECT_TRUE(b.v2);
}

TEST(QuantConfig, AwqGemmInBothSpellings) {
  const auto a = std::get<io::AwqConfig>(*io::parse_quant_config(test::awq_config_json(64)));
  EXPECT_EQ(a.group_size, 64);
  EXPECT_TRUE(a.zero_point);
  const auto b = std::get<io::AwqConfig>(
      parse(R"({"quant_method": "awq", "w_bit": 4, "q_group_size": 128, "zero_point": false, "version": "GEMM"})"));
  EXPECT_EQ(b.group_size, 128);
  EXPECT_FALSE(b.zero_point);
}

TEST(QuantConfig, CompressedTensors) {
  const auto c = std::get<io::CompressedTensorsConfig>(
      *io::parse_quant_config(test::ct_config_json("group", 128, false, "\"group\"", "[\"lm_head\", \"re:.*gate$\"]")));
  ASSERT_EQ(c.schemes.size(), 1u);
  EXPECT_EQ(c.schemes[0].name, "group_0");
  EXPECT_EQ(c.schemes[0].targets, std::vector<io::CtTarget>{"Linear"});
  EXPECT_EQ(c.schemes[0].group_size, 128);
  EXPECT_FALSE(c.schemes[0].symmetric);
  EXPECT_EQ(c.schemes[0].actorder, "group");
  EXPECT_EQ(c.ignore, (std::vector<io::CtTarget>{"lm_head", "re:.*gate$"}));
  const auto ch =
      std::get<io::CompressedTensorsConfig>(*io::parse_quant_config(test::ct_config_json("channel", 0, true)));
  EXPECT_EQ(ch.schemes[0].group_size, 0);
  EXPECT_TRUE(ch.schemes[0].symmetric);
  EXPECT_NE(io::describe(ch).find("per-channel"), std::string::npos);
}

TEST(QuantConfigRefuses, EightBitGptq) {
  expect_refused(R"({"quant_method": "gptq", "bits": 8, "group_size": 128})", ErrorCode::unsupported, "8-bit GPTQ");
}

TEST(QuantConfigRefuses, ThreeBitGptq) {
  expect_refused(R"({"quant_method": "gptq", "bits": 3, "group_size": 128})", ErrorCode::unsupported, "3-bit GPTQ");
}

TEST(QuantConfigRefuses, GptqMarlinFormat) {
  expect_refused(R"({"quant_method": "gptq", "bits": 4, "group_size": 128, "checkpoint_format": "marlin"})",
                 ErrorCode::unsupported, "'marlin'");
}

TEST(QuantConfigRefuses, Exl2) {
  expect_refused(R"({"quant_method": "exl2", "bits": 4.65})", ErrorCode::unsupported, "EXL2");
}

TEST(QuantConfigRefuses, UnknownMethod) {
  expect_refused(R"({"quant_method": "bitsandbytes", "load_in_4bit": true})", ErrorCode::unsupported, "'bitsandbytes'");
}

TEST(QuantConfigRefuses, AwqGemv) {
  expect_refused(R"({"quant_method": "awq", "bits": 4, "group_size": 128, "version": "gemv"})", ErrorCode::unsupported,
                 "AWQ version 'gemv'");
}

TEST(QuantConfigRefuses, AwqGemvFast) {
  expect_refused(R"({"quant_method": "awq", "bits": 4, "group_size": 128, "version": "gemv_fast"})",
                 ErrorCode::unsupported, "'gemv_fast'");
}

TEST(QuantConfigRefuses, AwqMarlin) {
  expect_refused(R"({"quant_method": "awq", "bits": 4, "group_size": 128, "version": "marlin"})",
                 ErrorCode::unsupported, "'marlin'");
}

TEST(QuantConfigRefuses, AwqLlmAwqBackend) {
  expect_refused(R"({"quant_method": "awq", "bits": 4, "group_size": 128, "backend": "llm-awq"})",
                 ErrorCode::unsupported, "'llm-awq'");
}

TEST(QuantConfigRefuses, MissingBits) {
  expect_refused(R"({"quant_method": "gptq", "group_size": 128})", ErrorCode::format, "missing field 'bits'");
}

TEST(QuantConfigRefuses, MissingQuantMethod) {
  expect_refused(R"({"bits": 4})", ErrorCode::format, "missing field 'quant_method'");
}

TEST(QuantConfigRefuses, BitsAsAString) {
  expect_refused(R"({"quant_method": "gptq", "bits": "4", "group_size": 128})", ErrorCode::format,
                 "'bits' must be an integer");
}

TEST(QuantConfigRefuses, GroupSizeAsAFloat) {
  expect_refused(R"({"quant_method": "gptq", "bits": 4, "group_size": 128.0})", ErrorCode::format,
                 "'group_size' must be an integer");
}

TEST(QuantConfigRefuses, GroupSizeZero) {
  expect_refused(R"({"quant_method": "gptq", "bits": 4, "group_size": 0})", ErrorCode::format, "group_size 0");
}

TEST(QuantConfigRefuses, DescActAsAString) {
  expect_refused(R"({"quant_method": "gptq", "bits": 4, "group_size": 128, "desc_act": "yes"})", ErrorCode::format,
                 "'desc_act' must be true or false");
}

TEST(QuantConfigRefuses, QuantizationConfigNotAnObject) {
  expect_refused(R"([1, 2])", ErrorCode::format, "must be an object");
}

TEST(QuantConfigRefuses, CompressedTensorsOtherFormat) {
  expect_refused(R"({"quant_method": "compressed-tensors", "format": "float-quantized", "config_groups": {}})",
                 ErrorCode::unsupported, "'float-quantized'");
}

TEST(QuantConfigRefuses, CompressedTensorsEightBit) {
  std::string c = test::ct_config_json("group", 128, true);
  c.replace(c.find("\"num_bits\": 4"), 13, "\"num_bits\": 8");
  expect_error([&] { io::parse_quant_config(c); }, ErrorCode::unsupported, "8-bit compressed-tensors");
}

TEST(QuantConfigRefuses, CompressedTensorsFloatWeights) {
  std::string c = test::ct_config_json("group", 128, true);
  c.replace(c.find("\"type\": \"int\""), 13, "\"type\": \"float\"");
  expect_error([&] { io::parse_quant_config(c); }, ErrorCode::unsupported, "'float' weights");
}

TEST(QuantConfigRefuses, CompressedTensorsQuantizedActivations) {
  std::string c = test::ct_config_json("group", 128, true);
  c.replace(c.find("\"input_activations\": null"), 25, "\"input_activations\": {\"num_bits\": 8}");
  expect_error([&] { io::parse_quant_config(c); }, ErrorCode::unsupported, "input_activations");
}

TEST(QuantConfigRefuses, CompressedTensorsTensorStrategy) {
  expect_error([&] { io::parse_quant_config(test::ct_config_json("tensor", 0, true)); }, ErrorCode::unsupported,
               "strategy 'tensor'");
}

TEST(QuantConfigRefuses, CompressedTensorsMissingGroups) {
  expect_refused(R"({"quant_method": "compressed-tensors", "format": "pack-quantized"})", ErrorCode::format,
                 "missing field 'config_groups'");
}

TEST(QuantConfigRefuses, CompressedTensorsTargetsNotStrings) {
  expect_refused(
      R"({"quant_method": "compressed-tensors", "format": "pack-quantized", "config_groups": {"g": {"targets": [1], "weights": {}}}})",
      ErrorCode::format, "'targets' must be a list of strings");
}

TEST(QuantConfigRefuses, InvalidJson) {
  expect_error([] { io::parse_quant_config("{\"quantization_config\": {"); }, ErrorCode::format, "invalid JSON");
}

TEST(QuantConfigRefuses, DeepNesting) {
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  expect_error([&] { io::parse_quant_config(deep); }, ErrorCode::format, "nested deeper than 64");
}

TEST(QuantConfigRefuses, OversizedText) {
  const std::string big(io::kMaxConfigBytes + 1, ' ');
  expect_error([&] { io::parse_quant_config(big); }, ErrorCode::format, "the limit is");
}

TEST(QuantConfigRefuses, TopLevelNotAnObject) {
  expect_error([] { io::parse_quant_config("42"); }, ErrorCode::format, "top level");
}

}  // namespace
}  // namespace w4a16
