// The GPTQ format: its quantization_config, and the importer: unpack qweight along K and qzeros
// along N, undo v1's z - 1, turn act-order g_idx into a permutation with contiguous groups,
// transpose to W's [N, K].
#include "io/import_gptq.hpp"

#include <array>

#include "common/check.hpp"
#include "io/config_fields.hpp"

namespace w4a16::io {

namespace {

GptqConfig parse_gptq(const ConfigFields& f) {
  require_4_bits(f.integer({"bits"}, 0, 64), "GPTQ", f.source());
  GptqConfig c;
  c.group_size = group_size_field(f, {"group_size"});
  c.sym = f.boolean("sym", true);             // AutoGPTQ's default
  c.desc_act = f.boolean("desc_act", false);  // AutoGPTQ's default
  // GPTQModel writes "format"; AutoGPTQ "checkpoint_format"; both absent = the original v1.
  const std::string format = lower(f.string({"checkpoint_format", "format"}).value_or("gptq"));
  if (format == "gptq_v2") {
    c.v2 = true;
  } else if (format != "gptq") {
    fail(ErrorCode::unsupported, "{}: GPTQ checkpoint format '{}' is not supported (gptq or gptq_v2)", f.source(),
         format);
  }
  return c;
}

std::string describe_gptq(const GptqConfig& c) {
  return fmt::format("gptq {} {} {}{}", c.v2 ? "v2" : "v1", group_size_text(c.group_size), c.sym ? "sym" : "asym",
                     c.desc_act ? " act-order" : "");
}

constexpr std::array<std::string_view, 5> kGptqSuffixes = {".qweight", ".qzeros", ".scales", ".g_idx", ".bias"};

}  // namespace

const ImportFormat<GptqConfig> GptqConfig::format = {
    .name = "gptq",
    .parse = parse_gptq,
    .tensor_suffixes = kGptqSuffixes,
    .import = import_gptq,
    .describe = describe_gptq,
};

QuantizedWeight import_gptq(const TensorSource& source, std::string_view module, const GptqConfig& config,
                            std::vector<std::string>* warnings) {
  const std::string m(module);
  const TensorView& qweight = require_tensor(source, m + ".qweight");
  const TensorView& qzeros = require_tensor(source, m + ".qzeros");
  const TensorView& scales = require_tensor(source, m + ".scales");
  const TensorView* g_idx_tensor = source.find(m + ".g_idx");

  require_dtype(qweight, {StDType::I32});
  require_dtype(qzeros, {StDType::I32});
  const DType scale_dtype = floating_dtype(scales);
  require_rank(qweight, 2);
  require_rank(scales, 2);
  const int64_t words_k = qweight.shape[0];  // ceil(K/8)
  const int64_t n = qweight.shape[1];
  if (words_k <= 0 || n <= 0) fail(ErrorCode::format, "tensor '{}': empty shape", qweight.name);
  if (n % 8 != 0)
    fail(ErrorCode::format, "tensor '{}': N = {} is not a multiple of 8 (qzeros packs 8 per word)", qweight.name, n);

  // K: from g_idx when present (it may end inside the last word), else 8 per qweight row.
  std::vector<int64_t> g_idx;
  int64_t k = words_k * 8;
  if (g_idx_tensor != nullptr) {
    require_rank(*g_idx_tensor, 1);
    g_idx = load_integers(*g_idx_tensor);
    k = g_idx_tensor->shape[0];
    if (k <= 0 || (k + 7) / 8 != words_k) {
      fail(ErrorCode::format, "tensor '{}': K = {} does not match '{}' with {} rows of 8", g_idx_tensor->name, k,
           qweight.name, words_k);
    }
  }
  const int64_t g = config.group_size == -1 ? k : config.group_size;
  const int64_t groups = (k + g - 1) / g;
  require_shape(scales, {groups, n}, fmt::format("[ceil(K/g), N] with K = {}, g = {}", k, g));
  require_shape(qzeros, {groups, n / 8}, fmt::format("[ceil(K/g), N/8] with K = {}, g = {}, N = {}", k, g, n));
  std::vector<int32_t> perm;
  if (g_idx_tensor != nullptr) perm = act_order_permutation(g_idx, k, g, groups, g_idx_tensor->name);

  // zeros [N, G]
  const std::vector<uint32_t> zero_words = load_words(qzeros);  // [G, N/8]
  std::vector<uint8_t> zeros(static_cast<size_t>(n * groups));
  int64_t sixteens = 0;
  for (int64_t j = 0; j < groups; ++j) {
    for (int64_t col = 0; col < n; ++col) {
      const uint8_t stored = nibble(zero_words[size_t(j * (n / 8) + col / 8)], int(col % 8));
      const uint8_t z = config.v2 ? stored : uint8_t(stored + 1);
      sixteens += z == 16;
      zeros[size_t(col * groups + j)] = z;
    }
  }
  if (sixteens > 0 && warnings != nullptr) {
    warnings->push_back(fmt::format(
        "tensor '{}': {} v1 zeros stored as 15 read as z = 16 (as vLLM does; AutoGPTQ's CUDA kernels read 0)",
        qzeros.name, sixteens));
  }

  // codes [N, ceil(K/2)]: stored column j is input feature perm[j] (or j).
  const std::vector<uint32_t> words = load_words(qweight);  // [ceil(K/8), N]
  const int64_t row_bytes = (k + 1) / 2;
  std::vector<uint8_t> codes(size_t(n * row_bytes), 0);
  for (int64_t j = 0; j < k; ++j) {
    const int64_t feature = perm.empty() ? j : perm[size_t(j)];
    const uint32_t* row = words.data() + feature / 8 * n;
    const int shift = int(feature % 8);
    for (int64_t col = 0; col < n; ++col) {
      codes[size_t(col * row_bytes + j / 2)] |= uint8_t(nibble(row[col], shift) << (4 * (j & 1)));
    }
  }
  return assemble_weight(module, n, k, g, scale_dtype, std::move(codes), transpose_elements(scales), std::move(zeros),
                         std::move(perm), read_bias(source, module, n));
}

}  // namespace w4a16::io
