// Error helpers shared by every component: one place that builds a w4a16::Error.
#pragma once

#include <fmt/format.h>

#include <limits>

#include "common/printable.hpp"
#include "w4a16/w4a16.hpp"

namespace w4a16 {

// Every message is made printable (common/printable.hpp): messages carry names read from files,
// and whoever prints them (the CLI, a C caller, Python) gets one safe line.
template <typename... Args>
[[noreturn]] void fail(ErrorCode code, fmt::format_string<Args...> format, Args&&... args) {
  throw Error(code, printable(fmt::format(format, std::forward<Args>(args)...)));
}

template <typename... Args>
void require(bool condition, fmt::format_string<Args...> format, Args&&... args) {
  if (!condition) fail(ErrorCode::invalid_argument, format, std::forward<Args>(args)...);
}

// a * b for non-negative sizes, or nullopt when it would overflow int64.
inline std::optional<int64_t> checked_mul(int64_t a, int64_t b) {
  if (a < 0 || b < 0) return std::nullopt;
  if (a != 0 && b > std::numeric_limits<int64_t>::max() / a) return std::nullopt;
  return a * b;
}

// Reads element i of a buffer of dtype as fp32 / writes it from fp32 (rounding to nearest even).
inline float load_as_f32(const void* data, DType dtype, int64_t i) {
  switch (dtype) {
    case DType::f16:
      return f16_to_f32(static_cast<const uint16_t*>(data)[i]);
    case DType::bf16:
      return bf16_to_f32(static_cast<const uint16_t*>(data)[i]);
    case DType::f32:
      return static_cast<const float*>(data)[i];
  }
  return 0.0f;
}

inline void store_from_f32(void* data, DType dtype, int64_t i, float value) {
  switch (dtype) {
    case DType::f16:
      static_cast<uint16_t*>(data)[i] = f32_to_f16(value);
      break;
    case DType::bf16:
      static_cast<uint16_t*>(data)[i] = f32_to_bf16(value);
      break;
    case DType::f32:
      static_cast<float*>(data)[i] = value;
      break;
  }
}

// Validates a caller-owned matrix argument: non-null, positive sizes, expected dtype family.
void check_matrix(const MatrixRef& m, std::string_view what);
void check_matrix(const MutableMatrixRef& m, std::string_view what);
// Refuses an output whose bytes overlap an input's (y == x, or any partial overlap).
void check_disjoint(const MatrixRef& in, const MutableMatrixRef& out, std::string_view what);
void check_disjoint(const void* input, size_t input_bytes, const MutableMatrixRef& out, std::string_view what);

}  // namespace w4a16
