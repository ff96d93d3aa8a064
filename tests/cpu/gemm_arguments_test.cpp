// Arguments gemm() must refuse with Error instead of crashing or computing garbage (faults 4 and 6
// of the adversarial review at commit e185524).
#include <gtest/gtest.h>

#include <cstring>
#include <utility>

#include "cpu/kernel_check.hpp"

namespace w4a16::test {
namespace {

template <typename F>
void expect_invalid(F&& body, const std::string& needle) {
  try {
    body();
    ADD_FAILURE() << "expected Error(invalid_argument) mentioning '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::invalid_argument) << e.what();
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

// Every public entry point that reads a PackedWeight throws for an empty one (default-constructed
// or moved-from); gemm, plan_gemm and unpack used to dereference a null pointer.
TEST(EmptyPackedWeight, EveryEntryPointThrowsInsteadOfCrashing) {
  KernelInput in;
  in.m = 2, in.k = 64, in.n = 8, in.g = 32;
  PreparedInput p = prepare(in, 1);
  PackedWeight moved_to = std::move(p.packed);
  PackedWeight empty;
  HostMatrix y(in.act, in.m, in.n);
  for (const PackedWeight* w : {&empty, &p.packed}) {
    expect_invalid([&] { gemm(p.x.ref(), *w, y.mut()); }, "PackedWeight is empty");
    expect_invalid([&] { plan_gemm(1, *w, DType::bf16); }, "PackedWeight is empty");
    expect_invalid([&] { unpack(*w); }, "PackedWeight is empty");
    expect_invalid([&] { (void)w->n(); }, "PackedWeight is empty");
    expect_invalid([&] { (void)w->k(); }, "PackedWeight is empty");
    expect_invalid([&] { (void)w->layout(); }, "PackedWeight is empty");
    expect_invalid([&] { (void)w->is_quantized(); }, "PackedWeight is empty");
    expect_invalid([&] { (void)w->impl(); }, "PackedWeight is empty");
  }
  gemm(p.x.ref(), moved_to, y.mut());  // the moved-to weight works
}

// y overlapping x (or the weight's bias) is refused before anything is written: the kernels read
// x while they write y, in blocks and from several threads, so an in-place call gave 383-448
// wrong outputs of 2048 with bf16 activations, varying from run to run.
TEST(GemmAliasing, OutputOverlappingInputIsRefused) {
  KernelInput in;
  in.m = 4, in.k = 256, in.n = 256, in.g = 64, in.bias = true;  // K == N: y == x has matching sizes
  const PreparedInput p = prepare(in, 2);
  std::vector<uint16_t> buffer(size_t(3 * in.m * in.k));
  uint16_t* x_at = buffer.data() + in.m * in.k;
  std::memcpy(x_at, p.x.data(), size_t(in.m * in.k) * 2);
  const MatrixRef x{x_at, in.act, in.m, in.k};
  for (const int64_t shift : {int64_t(0), int64_t(7), in.m * in.k - 1, -(in.m * in.n - 1)}) {
    SCOPED_TRACE(shift);
    const MutableMatrixRef y{x_at + shift, in.act, in.m, in.n};
    expect_invalid([&] { gemm(x, p.packed, y); }, "overlaps an input");
    expect_invalid([&] { gemm(x, p.weight, y); }, "overlaps an input");
    expect_invalid([&] { reference_gemm(x, p.weight, y); }, "overlaps an input");
    EXPECT_EQ(std::memcmp(x_at, p.x.data(), size_t(in.m * in.k) * 2), 0) << "x was written";
  }
  // The output may end exactly where x begins (or begin where it ends).
  HostMatrix y(in.act, in.m, in.n);
  const MutableMatrixRef before{x_at - in.m * in.n, in.act, in.m, in.n};
  gemm(x, p.packed, before);
  std::memcpy(y.data(), before.data, size_t(in.m * in.n) * 2);
  EXPECT_EQ(check_output(p, y, Strategy::fused, "adjacent output"), 0);

  // The weight's own bias buffer is an input too.
  const auto& bias = p.weight.bias().data;
  ASSERT_GE(bias.size(), size_t(in.n) * 2);
  const MutableMatrixRef into_bias{const_cast<std::byte*>(bias.data()), DType::bf16, 1, in.n};
  const MatrixRef x1{p.x.data(), in.act, 1, in.k};
  expect_invalid([&] { reference_gemm(x1, p.weight, into_bias); }, "overlaps an input");
}

}  // namespace
}  // namespace w4a16::test
