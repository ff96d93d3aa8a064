/* Calls into the C API as a foreign caller makes them (ctypes, cffi, Rust, a C cast): enum
 * arguments built from arbitrary int32 values, negative ones included. In C an enum object may
 * hold any value of its compatible integer type, so this file has no undefined behavior of its
 * own; the library must range-check these values as integers (tests/capi/c_api_test.cpp). */
#include "w4a16/w4a16.h"

w4a16_status foreign_quantize(const float* w, int64_t n, int64_t k, int32_t w_dtype, int32_t zero_mode,
                              int32_t scale_dtype, w4a16_weight** out) {
  return w4a16_quantize(w, (w4a16_dtype)w_dtype, n, k, 0, (w4a16_zero_mode)zero_mode, (w4a16_dtype)scale_dtype, out);
}

w4a16_status foreign_gemm(const void* x, int32_t x_dtype, int64_t m, int64_t k, const w4a16_weight* weight, void* y,
                          int32_t y_dtype, int64_t n, int32_t strategy, int32_t partition) {
  w4a16_gemm_options options = {0};
  options.strategy = (w4a16_strategy)strategy;
  options.partition = (w4a16_partition)partition;
  return w4a16_gemm_ex(x, (w4a16_dtype)x_dtype, m, k, weight, y, (w4a16_dtype)y_dtype, n, &options);
}

w4a16_status foreign_gemm_reference(const void* x, int32_t x_dtype, int64_t m, int64_t k, const w4a16_weight* weight,
                                    void* y, int32_t y_dtype, int64_t n) {
  return w4a16_gemm_reference(x, (w4a16_dtype)x_dtype, m, k, weight, y, (w4a16_dtype)y_dtype, n);
}
