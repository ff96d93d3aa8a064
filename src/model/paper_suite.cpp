// The model's shape suites. Model dimensions are from each model's published config.json
// (hidden_size, intermediate_size, num_key_value_heads x head_dim); the vendor list is every pair of
// the K, N values CANN's split-K template is whitelisted for (measure/suites.hpp, shared with the bench).
#include "model/paper_suite.hpp"

#include "measure/suites.hpp"

namespace w4a16::model {

namespace {

// Decode batch sizes: 1 (one sequence), 8, 24 (the vendor kernel's whitelisted M), 64 and 128 (large
// decode batches, where the 16-bit weight is reused across 4-8 of the cube's 16-row blocks).
const std::vector<int64_t> kDecodeM = {1, 8, 24, 64, 128};

std::vector<ModelShape> vendor_shapes() {
  std::vector<ModelShape> out;
  for (int64_t k : measure::kVendorSplitKDims) {  // every K, N pair of the whitelist
    for (int64_t n : measure::kVendorSplitKDims) out.push_back({"vendor", "split-K whitelist", k, n});
  }
  return out;
}

std::vector<ModelShape> llm_shapes() {
  return {
      // K >> N: the shapes split-K is for.
      {"Llama-2-7B", "down_proj", 11008, 4096},       // intermediate 11008 -> hidden 4096
      {"Llama-3-8B", "k_proj / v_proj", 4096, 1024},  // GQA: 8 kv heads x 128
      {"Llama-3-8B", "down_proj", 14336, 4096},
      {"Llama-2-70B", "k_proj / v_proj", 8192, 1024},
      {"Llama-2-70B", "down_proj", 28672, 8192},
      // K = N and K < N, for contrast: split-K has little to gain there.
      {"Llama-3-8B", "q_proj / o_proj", 4096, 4096},
      {"Llama-3-8B", "gate_proj / up_proj", 4096, 14336},
      {"Llama-2-70B", "q_proj / o_proj", 8192, 8192},
  };
}

std::vector<ModelSuite> make_suites() {
  std::vector<ModelSuite> all;
  ModelSuite paper{"paper",
                   "the vendor split-K whitelist (K, N in {12288,1792,7808,3904,1536}) and Llama decode layers",
                   vendor_shapes(), kDecodeM};
  for (auto& s : llm_shapes()) paper.shapes.push_back(std::move(s));
  all.push_back(std::move(paper));
  all.push_back(
      {"vendor", "the vendor split-K whitelist: K, N in {12288, 1792, 7808, 3904, 1536}", vendor_shapes(), kDecodeM});
  all.push_back({"llm", "Llama-2-7B / Llama-3-8B / Llama-2-70B decode layers", llm_shapes(), kDecodeM});
  return all;
}

}  // namespace

const std::vector<ModelSuite>& model_suites() {
  static const std::vector<ModelSuite> all = make_suites();
  return all;
}

const ModelSuite& model_suite(std::string_view name) { return measure::find_named(model_suites(), name); }

}  // namespace w4a16::model
