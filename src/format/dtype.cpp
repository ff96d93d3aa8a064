// Names of dtypes and zero modes, and the argument checks every entry point shares.
#include <string>

#include "common/check.hpp"

namespace w4a16 {

size_t dtype_size(DType dtype) { return dtype == DType::f32 ? 4 : 2; }

std::string_view to_string(DType dtype) {
  switch (dtype) {
    case DType::f16:
      return "fp16";
    case DType::bf16:
      return "bf16";
    case DType::f32:
      return "fp32";
  }
  return "?";
}

DType parse_dtype(std::string_view name) {
  if (name == "fp16" || name == "f16" || name == "float16") return DType::f16;
  if (name == "bf16" || name == "bfloat16") return DType::bf16;
  if (name == "fp32" || name == "f32" || name == "float32") return DType::f32;
  fail(ErrorCode::invalid_argument, "unknown dtype '{}' (expected fp16, bf16 or fp32)", name);
}

std::string_view to_string(ZeroMode mode) {
  switch (mode) {
    case ZeroMode::sym:
      return "sym";
    case ZeroMode::asym:
      return "asym";
    case ZeroMode::float_zero:
      return "float";
  }
  return "?";
}

ZeroMode parse_zero_mode(std::string_view name) {
  if (name == "sym") return ZeroMode::sym;
  if (name == "asym") return ZeroMode::asym;
  if (name == "float") return ZeroMode::float_zero;
  fail(ErrorCode::invalid_argument, "unknown zero mode '{}' (expected sym, asym or float)", name);
}

namespace {
template <typename Matrix>
void check_matrix_impl(const Matrix& m, std::string_view what) {
  require(m.data != nullptr, "{}: data pointer is null", what);
  require(m.rows > 0 && m.cols > 0, "{}: shape {}x{} must be positive", what, m.rows, m.cols);
  require(checked_mul(m.rows, m.cols).has_value(), "{}: shape {}x{} overflows", what, m.rows, m.cols);
  require(m.dtype == DType::f16 || m.dtype == DType::bf16 || m.dtype == DType::f32, "{}: invalid dtype value {}", what,
          int(m.dtype));
}
}  // namespace

void check_matrix(const MatrixRef& m, std::string_view what) { check_matrix_impl(m, what); }
void check_matrix(const MutableMatrixRef& m, std::string_view what) { check_matrix_impl(m, what); }

void check_disjoint(const void* input, size_t input_bytes, const MutableMatrixRef& out, std::string_view what) {
  const auto out_bytes = checked_mul(checked_mul(out.rows, out.cols).value_or(-1), int64_t(dtype_size(out.dtype)));
  require(out_bytes.has_value(), "{}: output of {}x{} elements is too large", what, out.rows, out.cols);
  const uintptr_t a = reinterpret_cast<uintptr_t>(input), b = reinterpret_cast<uintptr_t>(out.data);
  require(a + input_bytes >= a && b + uint64_t(*out_bytes) >= b, "{}: a buffer wraps around the address space", what);
  // Kernels read inputs while they write y, in blocks and from several threads: any shared byte
  // makes the result depend on the schedule, so partial overlap is refused as well as y == x.
  const bool overlap = input_bytes > 0 && a < b + uint64_t(*out_bytes) && b < a + input_bytes;
  require(!overlap,
          "{}: the output y [{} bytes at {}] overlaps an input [{} bytes at {}]; in-place gemm is not "
          "supported, pass a separate output buffer",
          what, *out_bytes, out.data, input_bytes, input);
}

void check_disjoint(const MatrixRef& in, const MutableMatrixRef& out, std::string_view what) {
  const auto in_bytes = checked_mul(checked_mul(in.rows, in.cols).value_or(-1), int64_t(dtype_size(in.dtype)));
  require(in_bytes.has_value(), "{}: input of {}x{} elements is too large", what, in.rows, in.cols);
  check_disjoint(in.data, size_t(*in_bytes), out, what);
}

std::string_view version() {
  static const std::string text =
      std::to_string(kVersionMajor) + "." + std::to_string(kVersionMinor) + "." + std::to_string(kVersionPatch);
  return text;
}

}  // namespace w4a16
