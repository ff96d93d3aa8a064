// Shape suites for `w4a16 bench` (data in suites.cpp). Shapes are M x K x N everywhere: a layer
// is K (in_features) x N (out_features); M comes from the batch list.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace w4a16::measure {

struct LayerShape {
  std::string model;  // "Llama-3-8B"
  std::string layer;  // "q_proj", "gate_proj", "kv shard /8", ...
  int64_t k = 0, n = 0;
  int per_decoder_layer = 1;  // how many such matmuls one decoder layer runs (llm suite)
  int64_t m = 0;              // fixed M for this shape (paper suite), 0 = use the batch list
};

struct ModelInfo {
  std::string name;
  int decoder_layers = 0;
};

struct Suite {
  std::string name;
  std::string description;
  std::vector<LayerShape> layers;
  std::vector<int64_t> batches;   // default M list
  std::vector<ModelInfo> models;  // for per-decoder-layer and whole-model totals (llm)
};

const std::vector<Suite>& suites();
const Suite& find_suite(std::string_view name);  // throws Error(invalid_argument) listing the names

struct Shape {
  int64_t m = 0, k = 0, n = 0;
};
// "1,4096,14336;16,4096,4096" -> shapes (M,K,N); throws Error(invalid_argument) on bad text.
std::vector<Shape> parse_shapes(std::string_view text);
// "1,4,16" -> {1, 4, 16}
std::vector<int64_t> parse_batches(std::string_view text);

}  // namespace w4a16::measure
