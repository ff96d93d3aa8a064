// Quantize one Llama-like linear layer to INT4 with the C++ API, multiply a few tokens with it,
// and check the result against x * dequantize(W)^T computed here in double.
//
// Limitations: the weight is random (normal, sigma 0.02), not a trained layer, and N is a slice
// of a real layer's 14336 outputs so that the check stays fast.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>
#include <w4a16/w4a16.hpp>

int main() {
  const int64_t m = 4, k = 4096, n = 512;  // tokens, in_features, out_features

  std::mt19937 rng(42);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> w(size_t(n * k));  // [N, K] fp32, like torch.nn.Linear.weight
  for (float& v : w) v = 0.02f * normal(rng);
  std::vector<uint16_t> x(size_t(m * k));  // [M, K] fp16 bits
  for (uint16_t& v : x) v = w4a16::f32_to_f16(normal(rng));

  // Group size 128, symmetric, fp16 scales: the common GPTQ/AWQ setting.
  const w4a16::QuantizedWeight q =
      w4a16::quantize({w.data(), w4a16::DType::f32, n, k}, {128, w4a16::ZeroMode::sym, w4a16::DType::f16});

  std::vector<uint16_t> y(size_t(m * n));  // [M, N] fp16 bits
  w4a16::gemm({x.data(), w4a16::DType::f16, m, k}, q, {y.data(), w4a16::DType::f16, m, n});

  // Quantization error, and the GEMM against the dequantized weights it should reproduce.
  const std::vector<float> wd = w4a16::dequantize(q);  // [N, K]
  double max_qerr = 0, max_err = 0, max_ref = 0;
  for (size_t i = 0; i < w.size(); ++i) max_qerr = std::max(max_qerr, double(std::abs(w[i] - wd[i])));
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double ref = 0;
      for (int64_t p = 0; p < k; ++p) ref += double(w4a16::f16_to_f32(x[size_t(i * k + p)])) * wd[size_t(j * k + p)];
      max_err = std::max(max_err, std::abs(double(w4a16::f16_to_f32(y[size_t(i * n + j)])) - ref));
      max_ref = std::max(max_ref, std::abs(ref));
    }
  }

  std::printf("w4a16 %s: M x K x N = %lld x %lld x %lld, g = %lld\n", std::string(w4a16::version()).c_str(),
              (long long)m, (long long)k, (long long)n, (long long)q.group_size());
  std::printf("max |W - dequant(W)|         = %.3g (weights ~ 0.02)\n", max_qerr);
  std::printf("max |y - x * dequant(W)^T|   = %.3g (max |y| = %.3g)\n", max_err, max_ref);
  // fp16 output: one rounding, half an ulp = 2^-11 relative; allow a few ulps for the kernel.
  const bool ok = max_err <= 0x1p-9 * max_ref;
  std::printf("%s\n", ok ? "OK" : "FAILED: error above 2^-9 * max |y|");
  return ok ? 0 : 1;
}
