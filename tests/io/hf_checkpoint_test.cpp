// Hugging Face checkpoint directories: single file and shards, the index checks (lying index,
// path traversal, missing shard, tensor in two shards), config.json limits, and the
// compressed-tensors target / ignore matching.
#include "io/hf_checkpoint.hpp"

#include <gtest/gtest.h>

#include "support/checkpoint_builder.hpp"
#include "support/io_test_util.hpp"

namespace w4a16 {
namespace {

using io::StDType;
using test::expect_error;
using test::TensorSet;
using test::Truth;

TensorSet two_layers(Truth* a = nullptr) {
  std::mt19937 rng(21);
  const Truth t = test::random_truth(rng, 64, 16, 32, false, 1, 16);
  TensorSet set;
  test::add_gptq_module(set, "model.layers.0.mlp.up_proj", t, true);
  test::add_gptq_module(set, "model.layers.1.mlp.up_proj", t, true);
  if (a) *a = t;
  return set;
}

TEST(HfCheckpoint, SingleFile) {
  test::TempDir dir;
  Truth t;
  test::write_checkpoint(dir.path(), test::gptq_config_json(32, false, false), two_layers(&t));
  const io::HfCheckpoint ckpt = io::HfCheckpoint::open(dir.path());
  EXPECT_EQ(ckpt.shard_names(), std::vector<std::string>{"model.safetensors"});
  ASSERT_TRUE(ckpt.quant_config().has_value());
  EXPECT_EQ(io::quant_method(*ckpt.quant_config()), "gptq");
  EXPECT_EQ(io::quantized_modules(ckpt).size(), 2u);
  test::expect_matches(io::import_module(ckpt, "model.layers.1.mlp.up_proj"), t);
}

TEST(HfCheckpoint, ShardsExposeEveryMappedTensor) {
  test::TempDir dir;
  const TensorSet set = two_layers();
  test::write_checkpoint(dir.path(), test::gptq_config_json(32, false, false), set, 4);
  const io::HfCheckpoint ckpt = io::HfCheckpoint::open(dir.path());
  EXPECT_EQ(ckpt.shard_names().size(), 4u);
  EXPECT_EQ(ckpt.names().size(), set.tensors().size());
  EXPECT_EQ(ckpt.shard_of("model.layers.0.mlp.up_proj.qweight"), "model-00001-of-00004.safetensors");
  EXPECT_EQ(ckpt.shard_of("nope"), "");
}

TEST(HfCheckpoint, UnquantizedModelOpensButHasNoModules) {
  test::TempDir dir;
  TensorSet set;
  set.add("w.weight", StDType::F16, {2, 2}, std::vector<uint16_t>(4, 0));
  test::write_checkpoint(dir.path(), "{\"hidden_size\": 2}", set);
  const io::HfCheckpoint ckpt = io::HfCheckpoint::open(dir.path());
  EXPECT_FALSE(ckpt.quant_config().has_value());
  expect_error([&] { io::quantized_modules(ckpt); }, ErrorCode::unsupported, "no quantization_config");
}

TEST(HfCheckpoint, UnsupportedConfigIsRefusedAtOpen) {
  test::TempDir dir;
  test::write_checkpoint(dir.path(), R"({"quantization_config": {"quant_method": "exl2"}})", two_layers());
  expect_error([&] { io::HfCheckpoint::open(dir.path()); }, ErrorCode::unsupported, "EXL2");
}

// Rewrites the index of a 2-shard checkpoint.
void write_index(const std::filesystem::path& dir, const std::string& weight_map) {
  test::write_text(dir / "model.safetensors.index.json", "{\"weight_map\": " + weight_map + "}");
}

TEST(HfCheckpointRefuses, LyingIndex) {
  test::TempDir dir;
  test::write_checkpoint(dir.path(), test::gptq_config_json(32, false, false), two_layers(), 2);
  // tensor 0 is in shard 1; claim it is in shard 2.
  write_index(dir.path(), R"({"model.layers.0.mlp.up_proj.qweight": "model-00002-of-00002.safetensors",
                              "model.layers.0.mlp.up_proj.qzeros": "model-00002-of-00002.safetensors"})");
  expect_error([&] { io::HfCheckpoint::open(dir.path()); }, ErrorCode::format,
               "maps tensor 'model.layers.0.mlp.up_proj.qweight' to 'model-00002-of-00002.safetensors'");
}

TEST(HfCheckpointRefuses, IndexNamesATensorNoShardHolds) {
  test::TempDir dir;
  test::write_checkpoint(dir.path(), test::gptq_config_json(32, false, false), two_layers(), 2);
  write_index(dir.path(), R"({"ghost.qweight": "model-00001-of-00002.safetensors"})");
  expect_error([&] { io::HfCheckpoint::open(dir.path()); }, ErrorCode::format, "ghost.qweight");
}

TEST(HfCheckpointRefuses, ShardPathTraversal) {
  test::TempDir dir;
  test::write_checkpoint(dir.path(), test::gptq_config_json(32, false, false), two_layers(), 2);
  for (const char* shard : {"../model-00001-of-00002.safetensors", "sub/x.safetensors", "/etc/passwd", "..", ".",
                            "a\\\\b.safetensors", ""}) {
    write_index(dir.path(), std::string(R"({"t": ")") + shard + "\"}");
    expect_error([&] { io::HfCheckpoint::open(dir.path()); }, ErrorCode::format, "not a plain file name");
  }
}

TEST(HfCheckpointRefuses, MissingShard) {
  test::TempDir dir;
  test::write_checkpoint(dir.path(), test::gptq_config_json(32, false, false), two_layers(), 2);
  std::filesystem::remove(dir.path() / "model-00002-of-00002.safetensors");
  expect_error([&] { io::HfCheckpoint::open(dir.path()); }, ErrorCode::format,
               "shard 'model-00002-of-00002.safetensors' listed in model.safetensors.index.json does not exist");
}

TEST(HfCheckpointRefuses, TensorInTwoShards) {
  test::TempDir dir;
  TensorSet set = two_layers();
  test::write_checkpoint(dir.path(), test::gptq_config_json(32, false, false), set, 2);
  // Shard 2 rewritten to also hold shard 1's first tensor.
  io::SafetensorsWriter writer;
  for (size_t i = 0; i < set.tensors().size(); ++i) {
    const auto& t = set.tensors()[i];
    if (i % 2 == 1 || i == 0) writer.add(t.name, t.dtype, t.shape, t.bytes);
  }
  writer.write(dir.path() / "model-00002-of-00002.safetensors");
  expect_error([&] { io::HfCheckpoint::open(dir.path()); }, ErrorCode::format, "is in two shards");
}

TEST(HfCheckpointRefuses, WeightMapNotAnObject) {
  test::TempDir dir;
  test::write_checkpoint(dir.path(), test::gptq_config_json(32, false, false), two_layers(), 2);
  write_index(dir.path(), "[\"model-00001-of-00002.safetensors\"]");
  expect_error([&] { io::HfCheckpoint::open(dir.path()); }, ErrorCode::format, "'weight_map' must be an object");
}

TEST(HfCheckpointRefuses, MissingConfig) {
  test::TempDir dir;
  test::write_checkpoint(dir.path(), "{}", two_layers());
  std::filesystem::remove(dir.path() / "config.json");
  expect_error([&] { io::HfCheckpoint::open(dir.path()); }, ErrorCode::io, "no config.json");
}

TEST(HfCheckpointRefuses, NoWeights) {
  test::TempDir dir;
  test::write_text(dir.path() / "config.json", "{}");
  expect_error([&] { io::HfCheckpoint::open(dir.path()); }, ErrorCode::io, "neither");
}

TEST(HfCheckpointRefuses, OversizedConfig) {
  test::TempDir dir;
  test::write_checkpoint(dir.path(), "{}", two_layers());
  std::filesystem::resize_file(dir.path() / "config.json", io::kMaxConfigBytes + 1);
  expect_error([&] { io::HfCheckpoint::open(dir.path()); }, ErrorCode::format, "the limit is");
}

// --- compressed-tensors targets and ignore ---------------------------------------------------------

TEST(CtSchemeFor, TargetsAndIgnore) {
  io::CompressedTensorsConfig c;
  c.schemes.push_back({.name = "attn", .targets = {"re:.*self_attn\\..*"}, .group_size = 64});
  c.schemes.push_back({.name = "rest", .targets = {"Linear"}, .group_size = 128});
  c.ignore = {"lm_head", "re:.*mlp\\.gate$"};
  EXPECT_EQ(io::ct_scheme_for(c, "model.layers.0.self_attn.q_proj").name, "attn");
  EXPECT_EQ(io::ct_scheme_for(c, "model.layers.0.mlp.up_proj").name, "rest");
  expect_error([&] { io::ct_scheme_for(c, "lm_head"); }, ErrorCode::format, "ignore list names it");
  expect_error([&] { io::ct_scheme_for(c, "model.layers.3.mlp.gate"); }, ErrorCode::format, "ignore list");
  c.schemes.pop_back();
  expect_error([&] { io::ct_scheme_for(c, "model.layers.0.mlp.up_proj"); }, ErrorCode::format,
               "no config group targets it");
  // A regex is compiled with its target (when the config is read), so a bad one fails there.
  expect_error([&] { c.schemes[0].targets = {"re:(unclosed"}; }, ErrorCode::format, "invalid regex");
}

}  // namespace
}  // namespace w4a16
