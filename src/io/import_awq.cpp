// The AWQ format (GEMM version): its quantization_config, and the importer: undo the
// [0, 2, 4, 6, 1, 3, 5, 7] interleave of qweight and qzeros, transpose to W's [N, K].
#include "io/import_awq.hpp"

#include <array>

#include "common/check.hpp"
#include "io/config_fields.hpp"

namespace w4a16::io {

namespace {

AwqConfig parse_awq(const ConfigFields& f) {
  require_4_bits(f.integer({"bits", "w_bit"}, 0, 64), "AWQ", f.source());
  AwqConfig c;
  c.group_size = group_size_field(f, {"group_size", "q_group_size"});
  c.zero_point = f.boolean("zero_point", true);
  const std::string version = lower(f.string({"version"}).value_or("gemm"));
  if (version != "gemm") {
    fail(ErrorCode::unsupported,
         "{}: AWQ version '{}' is not supported: only the GEMM layout is imported (gemv, gemv_fast and marlin "
         "store other layouts)",
         f.source(), version);
  }
  // transformers' AwqConfig: backend "llm-awq" is MIT-Han-lab's original packing, not AutoAWQ's.
  const std::string backend = lower(f.string({"backend"}).value_or("autoawq"));
  if (backend != "autoawq") {
    fail(ErrorCode::unsupported, "{}: AWQ backend '{}' is not supported (autoawq only)", f.source(), backend);
  }
  return c;
}

std::string describe_awq(const AwqConfig& c) {
  return fmt::format("awq gemm {}{}", group_size_text(c.group_size), c.zero_point ? " zero-point" : "");
}

QuantizedWeight import_awq_module(const TensorSource& source, std::string_view module, const AwqConfig& config,
                                  std::vector<std::string>* /*warnings: AWQ has no questionable values*/) {
  return import_awq(source, module, config);
}

constexpr std::array<std::string_view, 4> kAwqSuffixes = {".qweight", ".qzeros", ".scales", ".bias"};

}  // namespace

const ImportFormat<AwqConfig> AwqConfig::format = {
    .name = "awq",
    .parse = parse_awq,
    .tensor_suffixes = kAwqSuffixes,
    .import = import_awq_module,
    .describe = describe_awq,
};

QuantizedWeight import_awq(const TensorSource& source, std::string_view module, const AwqConfig& config) {
  const std::string m(module);
  const TensorView& qweight = require_tensor(source, m + ".qweight");
  const TensorView& scales = require_tensor(source, m + ".scales");
  const TensorView* qzeros_tensor = source.find(m + ".qzeros");
  if (qzeros_tensor == nullptr) {
    fail(ErrorCode::format, "missing tensor '{}.qzeros' (AWQ's GEMM layout always stores zeros{})", m,
         config.zero_point ? "" : ", even with zero_point: false");
  }
  const TensorView& qzeros = *qzeros_tensor;
  require_dtype(qweight, {StDType::I32});
  require_dtype(qzeros, {StDType::I32});
  const DType scale_dtype = floating_dtype(scales);
  require_rank(qweight, 2);
  require_rank(scales, 2);
  const int64_t k = qweight.shape[0];
  const int64_t n = scales.shape[1];
  if (k <= 0 || n <= 0) fail(ErrorCode::format, "tensor '{}': empty shape", qweight.name);
  if (n % 8 != 0)
    fail(ErrorCode::format, "tensor '{}': N = {} is not a multiple of 8 (8 columns per word)", scales.name, n);
  require_shape(qweight, {k, n / 8}, fmt::format("[K, N/8] with N = {} from the scales", n));
  const int64_t g = config.group_size == -1 ? k : config.group_size;
  const int64_t groups = (k + g - 1) / g;
  require_shape(scales, {groups, n}, fmt::format("[ceil(K/g), N] with K = {}, g = {}", k, g));
  require_shape(qzeros, {groups, n / 8}, fmt::format("[ceil(K/g), N/8] with K = {}, g = {}", k, g));

  const std::vector<uint32_t> zero_words = load_words(qzeros);  // [G, N/8]
  std::vector<uint8_t> zeros(static_cast<size_t>(n * groups));  // [N, G]
  for (int64_t j = 0; j < groups; ++j) {
    for (int64_t col = 0; col < n; ++col) {
      zeros[size_t(col * groups + j)] = nibble(zero_words[size_t(j * (n / 8) + col / 8)], kAwqNibbleOfColumn[col % 8]);
    }
  }
  const std::vector<uint32_t> words = load_words(qweight);  // [K, N/8]
  const int64_t row_bytes = (k + 1) / 2;
  std::vector<uint8_t> codes(size_t(n * row_bytes), 0);  // [N, ceil(K/2)]
  for (int64_t kk = 0; kk < k; ++kk) {
    const uint32_t* row = words.data() + kk * (n / 8);
    for (int64_t col = 0; col < n; ++col) {
      const uint8_t q = nibble(row[col / 8], kAwqNibbleOfColumn[col % 8]);
      codes[size_t(col * row_bytes + kk / 2)] |= uint8_t(q << (4 * (kk & 1)));
    }
  }
  return assemble_weight(module, n, k, g, scale_dtype, std::move(codes), transpose_elements(scales), std::move(zeros),
                         {}, read_bias(source, module, n));
}

}  // namespace w4a16::io
