// Names of dtypes and zero modes, and the argument checks every entry point shares.
#include <array>
#include <string>

#include "common/check.hpp"
#include "common/name_table.hpp"

namespace w4a16 {

size_t dtype_size(DType dtype) { return dtype == DType::f32 ? 4 : 2; }

namespace {
// Canonical spelling first; the aliases after it are accepted by parse_dtype only.
constexpr std::array<Named<DType>, 8> kDTypeNames{{{DType::f16, "fp16"},
                                                   {DType::bf16, "bf16"},
                                                   {DType::f32, "fp32"},
                                                   {DType::f16, "f16"},
                                                   {DType::f16, "float16"},
                                                   {DType::bf16, "bfloat16"},
                                                   {DType::f32, "f32"},
                                                   {DType::f32, "float32"}}};
constexpr std::array<Named<ZeroMode>, 3> kZeroModeNames{
    {{ZeroMode::sym, "sym"}, {ZeroMode::asym, "asym"}, {ZeroMode::float_zero, "float"}}};
}  // namespace

std::string_view to_string(DType dtype) { return name_of(kDTypeNames, dtype); }
DType parse_dtype(std::string_view name) { return parse_name(kDTypeNames, name, "dtype"); }
std::string_view to_string(ZeroMode mode) { return name_of(kZeroModeNames, mode); }
ZeroMode parse_zero_mode(std::string_view name) { return parse_name(kZeroModeNames, name, "zero mode"); }

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
