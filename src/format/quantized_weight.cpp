// QuantizedWeight: construction-time validation, element access and dequantize().
#include <cmath>

#include "common/check.hpp"

namespace w4a16 {

namespace {

bool is_float_dtype(DType d) { return d == DType::f16 || d == DType::bf16 || d == DType::f32; }

void check_all_finite(const std::vector<std::byte>& data, DType dtype, int64_t groups, std::string_view what) {
  const int64_t count = int64_t(data.size() / dtype_size(dtype));
  for (int64_t i = 0; i < count; ++i) {
    const float v = load_as_f32(data.data(), dtype, i);
    require(std::isfinite(v), "QuantizedWeight: {} at row {} group {} is not finite ({})", what, i / groups, i % groups,
            v);
  }
}

}  // namespace

void QuantizedLayout::validate() const {
  require(n > 0 && k > 0, "quantized layout: N={} and K={} must be positive", n, k);
  require(k <= INT32_MAX, "quantized layout: K={} is too large (max {})", k, INT32_MAX);
  require(group_size >= 1, "quantized layout: group size {} must be >= 1", group_size);
  require(group_size <= k, "quantized layout: group size {} exceeds K={} (use g = K for per-channel)", group_size, k);
  require(is_float_dtype(scale_dtype), "quantized layout: invalid scale dtype {}", int(scale_dtype));
  require(zero_mode == ZeroMode::sym || zero_mode == ZeroMode::asym || zero_mode == ZeroMode::float_zero,
          "quantized layout: invalid zero mode {}", int(zero_mode));
  const auto group_count = checked_mul(n, groups());  // scales and zeros take up to 4 bytes a group
  require(checked_mul(n, row_bytes()) && group_count && checked_mul(*group_count, 4),
          "quantized layout: N={} x K={} is too large", n, k);
}

QuantizedWeight::QuantizedWeight(QuantizedLayout layout, std::vector<uint8_t> codes, std::vector<std::byte> scales,
                                 std::vector<std::byte> zeros, std::vector<int32_t> perm, Bias bias)
    : layout_(layout),
      codes_(std::move(codes)),
      scales_(std::move(scales)),
      zeros_(std::move(zeros)),
      perm_(std::move(perm)),
      bias_(std::move(bias)) {
  layout_.validate();
  const auto& l = layout_;
  const auto code_bytes = checked_mul(l.n, l.row_bytes());
  const auto group_count = checked_mul(l.n, l.groups());
  require(int64_t(codes_.size()) == *code_bytes, "QuantizedWeight: codes hold {} bytes, expected N*ceil(K/2) = {}",
          codes_.size(), *code_bytes);
  const int64_t scale_bytes = *group_count * int64_t(dtype_size(l.scale_dtype));
  require(int64_t(scales_.size()) == scale_bytes,
          "QuantizedWeight: scales hold {} bytes, expected N*ceil(K/g) = {} values of {} ({} bytes)", scales_.size(),
          *group_count, to_string(l.scale_dtype), scale_bytes);
  check_all_finite(scales_, l.scale_dtype, l.groups(), "scale");

  switch (l.zero_mode) {
    case ZeroMode::sym:
      require(zeros_.empty(), "QuantizedWeight: sym mode takes no zeros, got {} bytes", zeros_.size());
      break;
    case ZeroMode::asym:
      require(int64_t(zeros_.size()) == *group_count,
              "QuantizedWeight: asym zeros hold {} bytes, expected N*ceil(K/g) = {} uint8 values", zeros_.size(),
              *group_count);
      for (size_t i = 0; i < zeros_.size(); ++i) {
        const int z = int(zeros_[i]);
        require(z <= 16, "QuantizedWeight: zero {} at row {} group {} is outside [0, 16]", z, int64_t(i) / l.groups(),
                int64_t(i) % l.groups());
      }
      break;
    case ZeroMode::float_zero:
      require(int64_t(zeros_.size()) == scale_bytes,
              "QuantizedWeight: float zeros hold {} bytes, expected {} values of {} ({} bytes)", zeros_.size(),
              *group_count, to_string(l.scale_dtype), scale_bytes);
      check_all_finite(zeros_, l.scale_dtype, l.groups(), "float zero");
      break;
  }

  if (!perm_.empty()) {
    require(int64_t(perm_.size()) == l.k, "QuantizedWeight: perm has {} entries, expected K={}", perm_.size(), l.k);
    std::vector<bool> seen(size_t(l.k), false);
    for (size_t i = 0; i < perm_.size(); ++i) {
      const int32_t p = perm_[i];
      require(p >= 0 && p < l.k, "QuantizedWeight: perm[{}]={} is outside [0, K={})", i, p, l.k);
      require(!seen[size_t(p)], "QuantizedWeight: perm is not a permutation ({} appears twice)", p);
      seen[size_t(p)] = true;
    }
  }

  if (!bias_.data.empty()) {
    require(is_float_dtype(bias_.dtype), "QuantizedWeight: invalid bias dtype {}", int(bias_.dtype));
    require(int64_t(bias_.data.size()) == l.n * int64_t(dtype_size(bias_.dtype)),
            "QuantizedWeight: bias holds {} bytes, expected N={} values of {}", bias_.data.size(), l.n,
            to_string(bias_.dtype));
  }
}

float QuantizedWeight::scale(int64_t row, int64_t group) const {
  return load_as_f32(scales_.data(), layout_.scale_dtype, row * layout_.groups() + group);
}

int QuantizedWeight::zero_int(int64_t row, int64_t group) const {
  if (layout_.zero_mode != ZeroMode::asym) return 8;
  return int(zeros_[size_t(row * layout_.groups() + group)]);
}

float QuantizedWeight::zero_float(int64_t row, int64_t group) const {
  if (layout_.zero_mode != ZeroMode::float_zero) return 0.0f;
  return load_as_f32(zeros_.data(), layout_.scale_dtype, row * layout_.groups() + group);
}

float QuantizedWeight::bias_value(int64_t row) const {
  return bias_.data.empty() ? 0.0f : load_as_f32(bias_.data.data(), bias_.dtype, row);
}

float QuantizedWeight::value(int64_t row, int64_t col) const {
  const int64_t group = col / layout_.group_size;
  const float centered = float(int(code(row, col)) - zero_int(row, group));
  return centered * scale(row, group) + zero_float(row, group);
}

std::vector<float> dequantize(const QuantizedWeight& w) {
  const int64_t n = w.n(), k = w.k();
  std::vector<float> out(size_t(n * k));  // [N, K] in original input-feature order
  for (int64_t row = 0; row < n; ++row) {
    for (int64_t col = 0; col < k; ++col) {
      const int64_t dst = w.has_perm() ? w.perm()[size_t(col)] : col;
      out[size_t(row * k + dst)] = w.value(row, col);
    }
  }
  return out;
}

}  // namespace w4a16
