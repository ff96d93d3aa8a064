// AWQ GEMM importer: undo the [0, 2, 4, 6, 1, 3, 5, 7] interleave of qweight and qzeros, transpose
// to W's [N, K].
#include "io/import_awq.hpp"

#include "common/check.hpp"

namespace w4a16::io {

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
