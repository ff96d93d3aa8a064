// The shapes `w4a16 model` evaluates the paper's pipeline on, as data (values in paper_suite.cpp).
// Shapes are M x K x N as everywhere: a layer is K (in_features) x N (out_features), M comes from the
// suite's batch list. The paper evaluates "diverse matrix shapes and batch sizes" without listing them
// in its abstract; these are the decode shapes of the models it targets and the shapes the vendor's
// own split-K W4A16 kernel is tuned for (shared/ASCEND-910B.md).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace w4a16::model {

struct ModelShape {
  std::string source;  // "Llama-3-8B", "vendor split-K", ...
  std::string layer;   // "down_proj", "k/v", "whitelist", ...
  int64_t k = 0, n = 0;
  double k_over_n() const { return static_cast<double>(k) / static_cast<double>(n); }
};

struct ModelSuite {
  std::string name;
  std::string description;
  std::vector<ModelShape> shapes;
  std::vector<int64_t> m;  // batch sizes (tokens) each shape is evaluated at
};

// "paper" (the default: vendor + llm), "vendor", "llm".
const std::vector<ModelSuite>& model_suites();
// Throws Error(invalid_argument) listing the names for an unknown one.
const ModelSuite& model_suite(std::string_view name);

// K >> N as the paper uses it, made a rule: K at least twice N. The predicted split-K range is taken
// over these shapes (every M).
inline bool k_much_larger(const ModelShape& s) { return s.k >= 2 * s.n; }

}  // namespace w4a16::model
