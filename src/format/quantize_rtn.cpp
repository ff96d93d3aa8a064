// Round-to-nearest (RTN) quantization of a dense weight into a QuantizedWeight.
//
// Per group of one output row (values w_i, i in the group), arithmetic in double:
//   sym:   s = max|w_i| / 7.5                      (GPTQ's symmetric divisor: 2*absmax / 15)
//          q_i = clamp(rne(w_i / s') + 8, 0, 15)
//   asym:  lo = min(min w_i, 0), hi = max(max w_i, 0), s = (hi - lo) / 15
//          z = clamp(rne(-lo / s'), 0, 15), q_i = clamp(rne(w_i / s') + z, 0, 15)
//   float: lo = min w_i, hi = max w_i, s = (hi - lo) / 15, zf = lo + 8 s
//          q_i = clamp(rne((w_i - zf') / s') + 8, 0, 15)
// where s' (and zf') are s (and zf) rounded once, to nearest even, to the scale dtype, and codes
// are computed from the *stored* values so the error bound holds for what is on disk:
//   sym:   |w - w^| <= 0.5 s' + 7.5 |s - s'|
//   asym:  |w - w^| <= 0.5 s' + 15  |s - s'|
//   float: |w - w^| <= 0.5 s' + 8   |s - s'| + |zf - zf'|
// (docs/formats.md derives them). A group whose stored scale is 0 gets q = 8 (and z = 8).
#include <algorithm>
#include <cmath>
#include <cstring>

#include "common/check.hpp"

namespace w4a16 {

namespace {

// Rounds a double once to the scale dtype and returns the stored bits and their value.
double round_to_dtype(double v, DType dtype, std::byte* out) {
  switch (dtype) {
    case DType::f16: {
      const uint16_t bits = f64_to_f16(v);
      std::memcpy(out, &bits, 2);
      return f16_to_f32(bits);
    }
    case DType::bf16: {
      const uint16_t bits = f64_to_bf16(v);
      std::memcpy(out, &bits, 2);
      return bf16_to_f32(bits);
    }
    case DType::f32: {
      const float f = float(v);
      std::memcpy(out, &f, 4);
      return f;
    }
  }
  return 0.0;
}

// clamp(rne(ratio) + offset, 0, 15); rounding happens before the offset is added, as documented.
int clamp_code(double ratio, int offset) { return int(std::clamp(std::nearbyint(ratio) + double(offset), 0.0, 15.0)); }

// One group's values (fp64) and their range; refuses a non-finite weight.
struct GroupValues {
  double lo = INFINITY, hi = -INFINITY, absmax = 0.0;
};
GroupValues read_group(const MatrixRef& w, int64_t row, int64_t begin, int64_t end, std::vector<double>& values) {
  GroupValues g;
  for (int64_t col = begin; col < end; ++col) {
    const double v = load_as_f32(w.data, w.dtype, row * w.cols + col);
    if (!std::isfinite(v)) {
      fail(ErrorCode::invalid_argument, "quantize: weight at row {} column {} is not finite ({})", row, col, v);
    }
    values[size_t(col - begin)] = v;
    g.lo = std::min(g.lo, v);
    g.hi = std::max(g.hi, v);
    g.absmax = std::max(g.absmax, std::abs(v));
  }
  return g;
}

// The group's parameters as stored: the scale (and float zero) rounded to the scale dtype and
// written at `scale` / `float_zero`, the integer zero (8 unless asym).
struct GroupParams {
  double s = 0.0, zf = 0.0;
  int zero = 8;
};
GroupParams store_params(GroupValues g, const QuantizedLayout& layout, int64_t row, int64_t group, std::byte* scale,
                         std::byte* float_zero) {
  double s = 0.0, zf = 0.0;
  switch (layout.zero_mode) {
    case ZeroMode::sym:
      s = g.absmax / 7.5;
      break;
    case ZeroMode::asym:
      g.lo = std::min(g.lo, 0.0);
      g.hi = std::max(g.hi, 0.0);
      s = (g.hi - g.lo) / 15.0;
      break;
    case ZeroMode::float_zero:
      s = (g.hi - g.lo) / 15.0;
      zf = g.lo + 8.0 * s;
      break;
  }
  GroupParams p;
  p.s = round_to_dtype(s, layout.scale_dtype, scale);
  if (!std::isfinite(p.s)) {
    fail(ErrorCode::invalid_argument, "quantize: scale {} of row {} group {} overflows {}", s, row, group,
         to_string(layout.scale_dtype));
  }
  if (layout.zero_mode == ZeroMode::float_zero) {
    p.zf = round_to_dtype(zf, layout.scale_dtype, float_zero);
    if (!std::isfinite(p.zf)) {
      fail(ErrorCode::invalid_argument, "quantize: float zero {} of row {} group {} overflows {}", zf, row, group,
           to_string(layout.scale_dtype));
    }
  }
  if (layout.zero_mode == ZeroMode::asym) p.zero = p.s > 0.0 ? clamp_code(-g.lo / p.s, 0) : 8;
  return p;
}

// Codes of columns [begin, end) of one row: two per byte, the even column in the low nibble.
void encode_group(const std::vector<double>& values, const GroupParams& p, ZeroMode mode, int64_t begin, int64_t end,
                  uint8_t* row_codes) {
  for (int64_t col = begin; col < end; ++col) {
    const double v = values[size_t(col - begin)];
    int q = 8;
    if (p.s > 0.0) q = mode == ZeroMode::float_zero ? clamp_code((v - p.zf) / p.s, 8) : clamp_code(v / p.s, p.zero);
    uint8_t& byte = row_codes[col / 2];
    byte = uint8_t(byte | (col & 1 ? q << 4 : q));
  }
}

Bias copy_bias(const std::optional<MatrixRef>& bias, int64_t n) {
  Bias stored;
  if (!bias) return stored;
  check_matrix(*bias, "quantize: bias");
  require(bias->rows * bias->cols == n, "quantize: bias has {}x{} elements, expected N={}", bias->rows, bias->cols, n);
  stored.dtype = bias->dtype;
  stored.data.resize(size_t(n) * dtype_size(bias->dtype));
  std::memcpy(stored.data.data(), bias->data, stored.data.size());
  return stored;
}

}  // namespace

QuantizedWeight quantize(const MatrixRef& w, const QuantizeOptions& options, const std::optional<MatrixRef>& bias) {
  check_matrix(w, "quantize: weight");
  const int64_t n = w.rows, k = w.cols;
  require(options.group_size >= 0, "quantize: group size {} must be >= 0 (0 = per-channel)", options.group_size);
  QuantizedLayout layout;
  layout.n = n;
  layout.k = k;
  layout.group_size = (options.group_size == 0) ? k : std::min(options.group_size, k);
  layout.zero_mode = options.zero_mode;
  layout.scale_dtype = options.scale_dtype.value_or(w.dtype);
  require(k <= INT32_MAX, "quantize: K={} is too large", k);

  const int64_t groups = layout.groups();
  const size_t sbytes = dtype_size(layout.scale_dtype);
  std::vector<uint8_t> codes(size_t(n * layout.row_bytes()), 0);
  std::vector<std::byte> scales(size_t(n * groups) * sbytes);
  std::vector<std::byte> zeros;
  if (layout.zero_mode == ZeroMode::asym) zeros.resize(size_t(n * groups));
  if (layout.zero_mode == ZeroMode::float_zero) zeros.resize(size_t(n * groups) * sbytes);

  std::vector<double> values(size_t(layout.group_size));
  for (int64_t row = 0; row < n; ++row) {
    for (int64_t group = 0; group < groups; ++group) {
      const int64_t begin = group * layout.group_size, end = std::min(k, begin + layout.group_size);
      const size_t gi = size_t(row * groups + group);
      std::byte* float_zero = layout.zero_mode == ZeroMode::float_zero ? &zeros[gi * sbytes] : nullptr;
      const GroupParams p =
          store_params(read_group(w, row, begin, end, values), layout, row, group, &scales[gi * sbytes], float_zero);
      if (layout.zero_mode == ZeroMode::asym) zeros[gi] = std::byte(p.zero);
      encode_group(values, p, layout.zero_mode, begin, end, codes.data() + row * layout.row_bytes());
    }
  }
  return QuantizedWeight(layout, std::move(codes), std::move(scales), std::move(zeros), {}, copy_bias(bias, n));
}

}  // namespace w4a16
