/* Uses the installed package from strict C99 through w4a16.h: quantize, gemm vs reference. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <w4a16/w4a16.h>

static float bf16_to_f32(uint16_t b) {
  const uint32_t u = (uint32_t)b << 16;
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}

int main(void) {
  enum { M = 2, K = 96, N = 8 };
  float w[N * K];
  uint16_t x[M * K], y[M * N], y_ref[M * N]; /* x fp16, y bf16 bits */
  w4a16_weight* q = NULL;
  int64_t n = 0, k = 0;
  int i;
  for (i = 0; i < N * K; ++i) w[i] = 0.01f * (float)(i % 17 - 8) + 0.001f; /* never 0 */
  for (i = 0; i < M * K; ++i) x[i] = (uint16_t)(0x3C00 + (i % 7) * 0x40);  /* fp16 in [1, 1.4] */

  if (w4a16_quantize(w, W4A16_DTYPE_F32, N, K, 32, W4A16_ZERO_FLOAT, W4A16_DTYPE_F16, &q) != W4A16_OK ||
      w4a16_weight_shape(q, &n, &k) != W4A16_OK || n != N || k != K ||
      w4a16_gemm(x, W4A16_DTYPE_F16, M, K, q, y, W4A16_DTYPE_BF16, N) != W4A16_OK ||
      w4a16_gemm_reference(x, W4A16_DTYPE_F16, M, K, q, y_ref, W4A16_DTYPE_BF16, N) != W4A16_OK) {
    fprintf(stderr, "package_c: %s\n", w4a16_last_error());
    w4a16_weight_free(q);
    return 1;
  }
  w4a16_weight_free(q);
  /* Bad arguments (NULL weight, K off by one) must fail with a message, never crash. */
  if (w4a16_gemm(x, W4A16_DTYPE_F16, M, K - 1, NULL, y, W4A16_DTYPE_F16, N) != W4A16_ERROR_INVALID_ARGUMENT ||
      strlen(w4a16_last_error()) == 0) {
    fprintf(stderr, "package_c: bad arguments were accepted\n");
    return 1;
  }
  for (i = 0; i < M * N; ++i) {
    /* bf16 output: within an ulp (2^-7) of the reference, plus slack for fp32 accumulation. */
    const float a = bf16_to_f32(y[i]), b = bf16_to_f32(y_ref[i]);
    if (!(fabsf(a - b) <= 0x1p-7f * fabsf(b) + 1e-3f)) {
      fprintf(stderr, "package_c: y[%d] = %g, reference %g\n", i, (double)a, (double)b);
      return 1;
    }
  }
  printf("package_c: w4a16 %s OK\n", w4a16_version());
  return 0;
}
