/* The same as quantize_and_gemm.cpp through the plain C API (w4a16.h), in C11, with bf16
 * activations: quantize a random Llama-like layer, multiply a few tokens, check the result
 * against x * dequantize(W)^T computed here in double. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <w4a16/w4a16.h>

/* bf16 is the upper half of an fp32; round to nearest even (no NaNs occur here). */
static uint16_t f32_to_bf16(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  return (uint16_t)((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}
static float bf16_to_f32(uint16_t b) {
  const uint32_t u = (uint32_t)b << 16;
  float f;
  memcpy(&f, &u, 4);
  return f;
}
/* Uniform in [-1, 1), never exactly 0, from a fixed-seed LCG: the same numbers everywhere. */
static float uniform(uint64_t* state) {
  *state = *state * 6364136223846793005u + 1442695040888963407u;
  return (float)(((double)(*state >> 40) + 0.5) / 8388608.0 - 1.0);
}

#define CHECK(call)                                                  \
  do {                                                               \
    if ((call) != W4A16_OK) {                                        \
      fprintf(stderr, "%s failed: %s\n", #call, w4a16_last_error()); \
      return 1;                                                      \
    }                                                                \
  } while (0)

int main(void) {
  enum { M = 4, K = 4096, N = 512 };              /* tokens, in_features, out_features */
  float* w = malloc(sizeof(float) * N * K);       /* [N, K] fp32 */
  float* wd = malloc(sizeof(float) * N * K);      /* [N, K] dequantized */
  uint16_t* x = malloc(sizeof(uint16_t) * M * K); /* [M, K] bf16 bits */
  uint16_t y[M * N];                              /* [M, N] bf16 bits */
  uint64_t rng = 42;
  w4a16_weight* q = NULL;
  if (!w || !wd || !x) return 1;
  for (int i = 0; i < N * K; ++i) w[i] = 0.035f * uniform(&rng);
  for (int i = 0; i < M * K; ++i) x[i] = f32_to_bf16(uniform(&rng));

  CHECK(w4a16_quantize(w, W4A16_DTYPE_F32, N, K, 128, W4A16_ZERO_ASYM, W4A16_DTYPE_BF16, &q));
  CHECK(w4a16_gemm(x, W4A16_DTYPE_BF16, M, K, q, y, W4A16_DTYPE_BF16, N));
  CHECK(w4a16_weight_dequantize(q, wd, (int64_t)N * K));

  double max_err = 0, max_ref = 0;
  for (int i = 0; i < M; ++i) {
    for (int j = 0; j < N; ++j) {
      double ref = 0;
      for (int p = 0; p < K; ++p) ref += (double)bf16_to_f32(x[i * K + p]) * wd[j * K + p];
      max_err = fmax(max_err, fabs(bf16_to_f32(y[i * N + j]) - ref));
      max_ref = fmax(max_ref, fabs(ref));
    }
  }
  printf("w4a16 %s (C API): M x K x N = %d x %d x %d, asym, g = 128\n", w4a16_version(), M, K, N);
  printf("max |y - x * dequant(W)^T| = %.3g (max |y| = %.3g)\n", max_err, max_ref);
  /* bf16 output: half an ulp = 2^-8 relative; allow a few ulps for the kernel. */
  const int ok = max_err <= 0x1p-6 * max_ref;
  printf("%s\n", ok ? "OK" : "FAILED: error above 2^-6 * max |y|");
  w4a16_weight_free(q);
  free(w);
  free(wd);
  free(x);
  return ok ? 0 : 1;
}
