#include "measure/reference_sample.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstddef>

#include "common/check.hpp"
#include "w4a16/float16.hpp"

namespace w4a16::measure {

ReferenceSample::ReferenceSample(const MatrixRef& x, const QuantizedWeight& w, int64_t columns)
    : act_(x.dtype), n_(w.n()) {
  const int64_t m = x.rows, k = x.cols;
  require(m > 0 && k == w.k() && columns > 0, "bench: reference sample of a {}x{} x for a {}x{} weight", m, k, w.n(),
          w.k());
  rows_ = {0, m / 2, m - 1};
  rows_.erase(std::unique(rows_.begin(), rows_.end()), rows_.end());
  const int64_t samples = std::min(n_, columns);
  for (int64_t i = 0; i < samples; ++i) cols_.push_back(i * n_ / samples);

  // The sampled output columns are rows of W: codes, scales and zeros of those rows.
  const size_t rb = size_t(w.layout().row_bytes()), gs = size_t(w.groups());
  const size_t sb = dtype_size(w.scale_dtype()), zb = w.zero_mode() == ZeroMode::asym ? 1 : sb;
  std::vector<uint8_t> codes;
  std::vector<std::byte> scales, zeros;
  for (int64_t c : cols_) {
    codes.insert(codes.end(), w.codes().begin() + c * rb, w.codes().begin() + (c + 1) * rb);
    scales.insert(scales.end(), w.scales().begin() + c * gs * sb, w.scales().begin() + (c + 1) * gs * sb);
    if (!w.zeros().empty())
      zeros.insert(zeros.end(), w.zeros().begin() + c * gs * zb, w.zeros().begin() + (c + 1) * gs * zb);
  }
  QuantizedLayout layout = w.layout();
  layout.n = samples;
  const QuantizedWeight sub(layout, std::move(codes), std::move(scales), std::move(zeros));

  const size_t esize = dtype_size(act_);
  const auto* xb = static_cast<const std::byte*>(x.data);
  std::vector<std::byte> xs;  // [rows, K] the sampled rows of x
  for (int64_t r : rows_) xs.insert(xs.end(), xb + r * k * esize, xb + (r + 1) * k * esize);
  const int64_t rows = int64_t(rows_.size());
  ref_.resize(size_t(rows * samples));
  reference_gemm({xs.data(), act_, rows, k}, sub, {ref_.data(), act_, rows, samples});
  for (size_t i = 0; i < ref_.size(); ++i)
    ref_max_ = std::max(ref_max_, double(std::abs(load_as_f32(ref_.data(), act_, int64_t(i)))));
}

std::string ReferenceSample::mismatch(const MatrixRef& y) const {
  require(y.dtype == act_ && y.cols == n_ && y.rows > rows_.back(),
          "bench: output {}x{} {} checked against a sample of {} columns", y.rows, y.cols, to_string(y.dtype), n_);
  double worst = 0;
  int64_t worst_r = 0, worst_c = 0;
  for (size_t i = 0; i < rows_.size(); ++i) {
    for (size_t j = 0; j < cols_.size(); ++j) {
      const double got = load_as_f32(y.data, act_, rows_[i] * n_ + cols_[j]);
      const double want = load_as_f32(ref_.data(), act_, int64_t(i * cols_.size() + j));
      const double err = std::isfinite(got) ? std::abs(got - want) : INFINITY;
      if (!(err <= worst)) {
        worst = err;
        worst_r = rows_[i];
        worst_c = cols_[j];
      }
    }
  }
  if (worst <= kRelTolerance * ref_max_ + kAbsTolerance) return {};
  return fmt::format(
      "output differs from the reference by {:.4g} at (m={}, n={}); max |reference| {:.4g}, tolerance {} "
      "of it + {}",
      worst, worst_r, worst_c, ref_max_, kRelTolerance, kAbsTolerance);
}

}  // namespace w4a16::measure
