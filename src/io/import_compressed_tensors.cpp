// compressed-tensors pack-quantized importer: the packed layout already is W's [N, K]
// orientation; only the nibble order along K and the zero points along N need unpacking.
#include "io/import_compressed_tensors.hpp"

#include "common/check.hpp"

namespace w4a16::io {

QuantizedWeight import_compressed_tensors(const TensorSource& source, std::string_view module, const CtScheme& scheme) {
  const std::string m(module);
  const TensorView& packed = require_tensor(source, m + ".weight_packed");
  const TensorView& scales = require_tensor(source, m + ".weight_scale");
  const TensorView& shape = require_tensor(source, m + ".weight_shape");
  const TensorView* zero_tensor = source.find(m + ".weight_zero_point");
  const TensorView* g_idx_tensor = source.find(m + ".weight_g_idx");

  require_dtype(packed, {StDType::I32});
  const DType scale_dtype = floating_dtype(scales);
  require_rank(packed, 2);
  require_rank(scales, 2);
  require_shape(shape, {2}, "(N, K)");
  const std::vector<int64_t> nk = load_integers(shape);
  const int64_t n = nk[0], k = nk[1];
  if (n <= 0 || k <= 0 || k > (int64_t(1) << 40)) {
    fail(ErrorCode::format, "tensor '{}': (N, K) = ({}, {}) is not a valid shape", shape.name, n, k);
  }
  require_shape(packed, {n, (k + 7) / 8}, fmt::format("[N, ceil(K/8)] with (N, K) = ({}, {})", n, k));
  const int64_t g = scheme.group_size == 0 ? k : scheme.group_size;
  const int64_t groups = (k + g - 1) / g;
  require_shape(scales, {n, groups}, fmt::format("[N, ceil(K/g)] with K = {}, g = {}", k, g));

  std::vector<uint8_t> zeros(size_t(n * groups), 8);  // [N, G]
  if (zero_tensor != nullptr) {
    const TensorView& zt = *zero_tensor;
    require_dtype(zt, {StDType::I32, StDType::I8});
    if (zt.dtype == StDType::I32) {
      require_shape(zt, {(n + 7) / 8, groups}, fmt::format("[ceil(N/8), ceil(K/g)] with N = {}, G = {}", n, groups));
      const std::vector<uint32_t> words = load_words(zt);
      for (int64_t col = 0; col < n; ++col) {
        for (int64_t j = 0; j < groups; ++j) {
          zeros[size_t(col * groups + j)] = nibble(words[size_t(col / 8 * groups + j)], int(col % 8));
        }
      }
    } else {
      require_shape(zt, {n, groups}, fmt::format("[N, ceil(K/g)] with N = {}, G = {}", n, groups));
      for (size_t i = 0; i < zeros.size(); ++i) {
        const int zp = int(static_cast<int8_t>(zt.data[i]));
        if (zp < -8 || zp > 7) fail(ErrorCode::format, "tensor '{}': zero point {} is outside [-8, 7]", zt.name, zp);
        zeros[i] = uint8_t(zp + 8);
      }
    }
    if (scheme.symmetric && std::any_of(zeros.begin(), zeros.end(), [](uint8_t z) { return z != 8; })) {
      fail(ErrorCode::format, "tensor '{}': non-zero zero points in symmetric scheme '{}'", zt.name, scheme.name);
    }
  } else if (!scheme.symmetric) {
    fail(ErrorCode::format, "missing tensor '{}.weight_zero_point' (scheme '{}' is asymmetric)", m, scheme.name);
  }

  std::vector<int32_t> perm;
  if (g_idx_tensor != nullptr) {
    require_shape(*g_idx_tensor, {k}, "[K]");
    perm = act_order_permutation(load_integers(*g_idx_tensor), k, g, groups, g_idx_tensor->name);
  }

  const std::vector<uint32_t> words = load_words(packed);  // [N, ceil(K/8)]
  const int64_t words_k = (k + 7) / 8;
  const int64_t row_bytes = (k + 1) / 2;
  std::vector<uint8_t> codes(size_t(n * row_bytes), 0);  // [N, ceil(K/2)]
  for (int64_t col = 0; col < n; ++col) {
    const uint32_t* row = words.data() + col * words_k;
    uint8_t* out = codes.data() + col * row_bytes;
    for (int64_t j = 0; j < k; ++j) {
      const int64_t feature = perm.empty() ? j : perm[size_t(j)];
      out[j / 2] |= uint8_t(nibble(row[feature / 8], int(feature % 8)) << (4 * (j & 1)));
    }
  }
  std::vector<std::byte> scale_bytes(scales.data.begin(), scales.data.end());
  return assemble_weight(module, n, k, g, scale_dtype, std::move(codes), std::move(scale_bytes), std::move(zeros),
                         std::move(perm), read_bias(source, module, n));
}

}  // namespace w4a16::io
