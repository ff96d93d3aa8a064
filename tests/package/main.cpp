// Uses the installed package from C++: both headers, quantize, gemm against the reference.
#include <w4a16/w4a16.h>

#include <cstdio>
#include <string>
#include <vector>
#include <w4a16/w4a16.hpp>

int main() {
  const int64_t m = 2, k = 96, n = 8;
  std::vector<float> w(size_t(n * k));
  for (size_t i = 0; i < w.size(); ++i) w[i] = 0.01f * float(int(i % 17) - 8) + 0.001f;  // never 0
  std::vector<uint16_t> x(size_t(m * k)), y(size_t(m * n)), y_ref(size_t(m * n));
  for (size_t i = 0; i < x.size(); ++i) x[i] = w4a16::f32_to_bf16(float(int(i % 5) - 2) + 0.5f);

  const auto q = w4a16::quantize({w.data(), w4a16::DType::f32, n, k}, {32, w4a16::ZeroMode::sym, {}});
  w4a16::gemm({x.data(), w4a16::DType::bf16, m, k}, q, {y.data(), w4a16::DType::bf16, m, n});
  w4a16::reference_gemm({x.data(), w4a16::DType::bf16, m, k}, q, {y_ref.data(), w4a16::DType::bf16, m, n});

  // The C header from C++: same library, same version.
  if (std::string(w4a16_version()) != std::string(w4a16::version())) {
    std::fprintf(stderr, "version mismatch: %s vs %s\n", w4a16_version(), std::string(w4a16::version()).c_str());
    return 1;
  }
  int64_t rows = 0, cols = 0;
  if (w4a16_weight_shape(nullptr, &rows, &cols) != W4A16_ERROR_INVALID_ARGUMENT) return 1;

  for (size_t i = 0; i < y.size(); ++i) {
    const float a = w4a16::bf16_to_f32(y[i]), b = w4a16::bf16_to_f32(y_ref[i]);
    if (!(a - b <= 0x1p-6f * (b < 0 ? -b : b) + 1e-6f && b - a <= 0x1p-6f * (b < 0 ? -b : b) + 1e-6f)) {
      std::fprintf(stderr, "y[%zu] = %g, reference %g\n", i, a, b);
      return 1;
    }
  }
  std::printf("package_cpp: w4a16 %s OK\n", w4a16_version());
  return 0;
}
