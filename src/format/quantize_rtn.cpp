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
      const int64_t begin = group * layout.group_size;
      const int64_t end = std::min(k, begin + layout.group_size);
      double lo = INFINITY, hi = -INFINITY, absmax = 0.0;
      for (int64_t col = begin; col < end; ++col) {
        const double v = load_as_f32(w.data, w.dtype, row * k + col);
        if (!std::isfinite(v)) {
          fail(ErrorCode::invalid_argument, "quantize: weight at row {} column {} is not finite ({})", row, col, v);
        }
        values[size_t(col - begin)] = v;
        lo = std::min(lo, v);
        hi = std::max(hi, v);
        absmax = std::max(absmax, std::abs(v));
      }

      const size_t gi = size_t(row * groups + group);
      double s = 0.0, zf = 0.0;
      int zero = 8;
      switch (layout.zero_mode) {
        case ZeroMode::sym:
          s = absmax / 7.5;
          break;
        case ZeroMode::asym:
          lo = std::min(lo, 0.0);
          hi = std::max(hi, 0.0);
          s = (hi - lo) / 15.0;
          break;
        case ZeroMode::float_zero:
          s = (hi - lo) / 15.0;
          zf = lo + 8.0 * s;
          break;
      }
      const double stored_s = round_to_dtype(s, layout.scale_dtype, &scales[gi * sbytes]);
      if (!std::isfinite(stored_s)) {
        fail(ErrorCode::invalid_argument, "quantize: scale {} of row {} group {} overflows {}", s, row, group,
             to_string(layout.scale_dtype));
      }
      double stored_zf = 0.0;
      if (layout.zero_mode == ZeroMode::float_zero) {
        stored_zf = round_to_dtype(zf, layout.scale_dtype, &zeros[gi * sbytes]);
        if (!std::isfinite(stored_zf)) {
          fail(ErrorCode::invalid_argument, "quantize: float zero {} of row {} group {} overflows {}", zf, row, group,
               to_string(layout.scale_dtype));
        }
      }
      if (layout.zero_mode == ZeroMode::asym) {
        zero = stored_s > 0.0 ? clamp_code(-lo / stored_s, 0) : 8;
        zeros[gi] = std::byte(zero);
      }

      for (int64_t col = begin; col < end; ++col) {
        const double v = values[size_t(col - begin)];
        int q = 8;
        if (stored_s > 0.0) {
          q = (layout.zero_mode == ZeroMode::float_zero) ? clamp_code((v - stored_zf) / stored_s, 8)
                                                         : clamp_code(v / stored_s, zero);
        }
        uint8_t& byte = codes[size_t(row * layout.row_bytes() + col / 2)];
        byte = uint8_t(byte | (col & 1 ? q << 4 : q));
      }
    }
  }

  Bias stored_bias;
  if (bias) {
    check_matrix(*bias, "quantize: bias");
    require(bias->rows * bias->cols == n, "quantize: bias has {}x{} elements, expected N={}", bias->rows, bias->cols,
            n);
    stored_bias.dtype = bias->dtype;
    stored_bias.data.resize(size_t(n) * dtype_size(bias->dtype));
    std::memcpy(stored_bias.data.data(), bias->data, stored_bias.data.size());
  }
  return QuantizedWeight(layout, std::move(codes), std::move(scales), std::move(zeros), {}, std::move(stored_bias));
}

}  // namespace w4a16
