// The shape suites of `w4a16 bench`, as data. Model dimensions are from each model's published
// config.json (hidden_size, intermediate_size, num_key_value_heads x head_dim, num_hidden_layers).
#include "measure/suites.hpp"

#include <charconv>

#include "common/check.hpp"

namespace w4a16::measure {

namespace {

// The seven linear layers of a decoder layer: q, k, v, o, gate, up, down (K x N each).
void add_decoder(std::vector<LayerShape>& out, const std::string& model, int64_t hidden, int64_t kv, int64_t inter) {
  out.push_back({model, "q_proj", hidden, hidden, 1});
  out.push_back({model, "k_proj / v_proj", hidden, kv, 2});
  out.push_back({model, "o_proj", hidden, hidden, 1});
  out.push_back({model, "gate_proj / up_proj", hidden, inter, 2});
  out.push_back({model, "down_proj", inter, hidden, 1});
}

std::vector<Suite> make_suites() {
  std::vector<Suite> all;

  Suite llm{"llm", "linear layers of Llama-2-7B, Llama-3-8B, Mistral-7B and Llama-2-70B", {}, {1, 4, 16, 64, 256}, {}};
  add_decoder(llm.layers, "Llama-2-7B", 4096, 4096, 11008);   // MHA: k/v are 4096 x 4096
  add_decoder(llm.layers, "Llama-3-8B", 4096, 1024, 14336);   // GQA 8 kv heads x 128
  add_decoder(llm.layers, "Mistral-7B", 4096, 1024, 14336);   // same dims as Llama-3-8B
  add_decoder(llm.layers, "Llama-2-70B", 8192, 1024, 28672);  // GQA 8 kv heads x 128
  llm.models = {{"Llama-2-7B", 32}, {"Llama-3-8B", 32}, {"Mistral-7B", 32}, {"Llama-2-70B", 80}};
  all.push_back(llm);

  // The main job's default: one model's layers, so `w4a16 bench` finishes in about 2 minutes.
  Suite quick{"llama3-8b", "the linear layers of Llama-3-8B (the default suite)", {}, {1, 4, 16, 64, 256}, {}};
  add_decoder(quick.layers, "Llama-3-8B", 4096, 1024, 14336);
  quick.models = {{"Llama-3-8B", 32}};
  all.push_back(quick);

  Suite kn{"kn",
           "K >> N as in decoding: GQA k/v, down projections, their /8 column-parallel shards, small N",
           {},
           {1, 4, 16},
           {}};
  kn.layers = {
      {"GQA", "k/v 4096->1024", 4096, 1024},    {"GQA", "k/v 8192->1024", 8192, 1024},
      {"MLP", "down 14336->4096", 14336, 4096}, {"MLP", "down 28672->8192", 28672, 8192},
      {"TP/8", "k/v 4096->128", 4096, 128},     {"TP/8", "k/v 8192->128", 8192, 128},
      {"TP/8", "down 14336->512", 14336, 512},  {"TP/8", "down 28672->1024", 28672, 1024},
      {"small-N", "16384->64", 16384, 64},      {"small-N", "8192->64", 8192, 64},
      {"small-N", "28672->128", 28672, 128},
  };
  all.push_back(kn);

  // The study: the vendor split-K kernel's tuning shapes at M = 24 (every K, N pair of the list;
  // K = 3904 = 30.5 x 128 exercises a ragged last group), plus the kn shapes over the batch list.
  Suite paper{
      "paper", "the paper's study: M=24 x {12288,1792,7808,3904,1536}^2, plus the kn shapes", {}, {1, 4, 16, 64}, {}};
  for (int64_t k : kVendorSplitKDims) {
    for (int64_t n : kVendorSplitKDims) paper.layers.push_back({"Ascend split-K", "M=24", k, n, 1, 24});
  }
  for (const auto& l : kn.layers) paper.layers.push_back(l);
  all.push_back(paper);
  return all;
}

int64_t parse_int(std::string_view text, std::string_view what) {
  int64_t v = 0;
  const auto* end = text.data() + text.size();
  const auto r = std::from_chars(text.data(), end, v);
  require(r.ec == std::errc() && r.ptr == end && v > 0, "{}: '{}' is not a positive integer", what, text);
  return v;
}

std::vector<std::string_view> split(std::string_view text, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  for (;;) {
    const size_t pos = text.find(sep, start);
    out.push_back(text.substr(start, pos == std::string_view::npos ? std::string_view::npos : pos - start));
    if (pos == std::string_view::npos) return out;
    start = pos + 1;
  }
}

}  // namespace

const std::vector<Suite>& suites() {
  static const std::vector<Suite> all = make_suites();
  return all;
}

const Suite& find_suite(std::string_view name) { return find_named(suites(), name); }

std::vector<Shape> parse_shapes(std::string_view text) {
  std::vector<Shape> out;
  for (auto item : split(text, ';')) {
    if (item.empty()) continue;
    const auto parts = split(item, ',');
    require(parts.size() == 3, "--shapes: '{}' is not M,K,N", item);
    out.push_back(
        {parse_int(parts[0], "--shapes M"), parse_int(parts[1], "--shapes K"), parse_int(parts[2], "--shapes N")});
  }
  require(!out.empty(), "--shapes: no shape in '{}'", text);
  return out;
}

std::vector<int64_t> parse_batches(std::string_view text) {
  std::vector<int64_t> out;
  for (auto item : split(text, ',')) {
    if (!item.empty()) out.push_back(parse_int(item, "--batch"));
  }
  require(!out.empty(), "--batch: no value in '{}'", text);
  return out;
}

Work suite_work(const Suite& suite, const std::vector<int64_t>& batches) {
  Work work;
  for (const auto& layer : suite.layers) {
    for (int64_t m : layer.m > 0 ? std::vector<int64_t>{layer.m} : batches) work.push_back({layer, m});
  }
  return work;
}

Work shape_work(const std::vector<Shape>& shapes) {
  Work work;
  for (const auto& s : shapes) work.push_back({{"ad-hoc", "", s.k, s.n, 1, s.m}, s.m});
  return work;
}

}  // namespace w4a16::measure
