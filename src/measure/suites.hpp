// Shape suites for `w4a16 bench` (data in suites.cpp). Shapes are M x K x N everywhere: a layer
// is K (in_features) x N (out_features); M comes from the batch list.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/check.hpp"

namespace w4a16::measure {

// The K and N values CANN's split-K weight_quant_batch_matmul_v2 template is whitelisted for (at
// M = 24): the bench's "paper" suite and the model's "vendor" shapes take every K, N pair of them.
inline constexpr int64_t kVendorSplitKDims[] = {12288, 1792, 7808, 3904, 1536};

// "a, b, c": the .name of each entry, for option help and messages.
template <class Entry>
std::string joined_names(const std::vector<Entry>& entries) {
  std::string names;
  for (const auto& e : entries) names += (names.empty() ? "" : ", ") + e.name;
  return names;
}

// The entry named `name` of a suite list (the bench's and the model's alike); throws
// Error(invalid_argument) "unknown suite '<name>' (expected one of: a, b)" otherwise.
template <class Entry>
const Entry& find_named(const std::vector<Entry>& entries, std::string_view name) {
  for (const auto& e : entries) {
    if (e.name == name) return e;
  }
  fail(ErrorCode::invalid_argument, "unknown suite '{}' (expected one of: {})", name, joined_names(entries));
}

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

// What a bench runs, in order: (layer, M) pairs.
using Work = std::vector<std::pair<LayerShape, int64_t>>;
// Each layer of the suite at its fixed M, else at every M of `batches`.
Work suite_work(const Suite& suite, const std::vector<int64_t>& batches);
// Ad-hoc shapes, each its own layer (model "ad-hoc") at its M.
Work shape_work(const std::vector<Shape>& shapes);

}  // namespace w4a16::measure
