// The C interface under allocation failure: std::bad_alloc becomes W4A16_ERROR_OUT_OF_MEMORY,
// no handle leaks out of a failed call, and w4a16_last_error() still returns a message even when
// recording the message itself cannot allocate.
//
// This file is its own executable, so it can replace the global operator new: a thread-local
// countdown makes the n-th allocation of the calling thread throw. Sanitizer builds keep their
// own allocator (replacing it there would mix allocators), so the tests skip under ASan.
#include <gtest/gtest.h>

#include <cstdlib>
#include <new>
#include <string>
#include <thread>

#include "support/random_data.hpp"
#include "w4a16/w4a16.h"

#if defined(__SANITIZE_ADDRESS__)
#define W4A16_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define W4A16_TEST_ASAN 1
#endif
#endif

namespace {
// Allocations left before one fails on this thread; negative = never fail.
thread_local long t_allocations_left = -1;
}  // namespace

#ifndef W4A16_TEST_ASAN
#if defined(__GNUC__) && !defined(__clang__)
// GCC cannot tell that free() here pairs with the malloc() of the replacement operator new.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
void* operator new(std::size_t size) {
  if (t_allocations_left == 0) throw std::bad_alloc();
  if (t_allocations_left > 0) --t_allocations_left;
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t size) { return operator new(size); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
#endif

namespace {

constexpr int64_t kN = 16, kK = 96;

// Runs `call` with the n-th allocation of this thread failing.
template <typename Call>
w4a16_status with_failing_allocation(long n, Call&& call) {
  t_allocations_left = n;
  const w4a16_status status = call();
  t_allocations_left = -1;
  return status;
}

TEST(CApiOutOfMemory, EveryAllocationOfQuantizeMayFail) {
#ifdef W4A16_TEST_ASAN
  GTEST_SKIP() << "operator new is not replaced under AddressSanitizer";
#endif
  const auto w = w4a16::test::random_matrix(w4a16::DType::f32, kN, kK, 1, 0.02f);
  // Fail allocation 0, 1, 2, ... until the call no longer allocates that many times.
  bool succeeded = false;
  for (long n = 0; n < 1000 && !succeeded; ++n) {
    w4a16_weight* out = reinterpret_cast<w4a16_weight*>(uintptr_t(0x10));
    const w4a16_status status = with_failing_allocation(n, [&] {
      return w4a16_quantize(w.data(), W4A16_DTYPE_F32, kN, kK, 32, W4A16_ZERO_ASYM, W4A16_DTYPE_F16, &out);
    });
    if (status == W4A16_OK) {
      ASSERT_NE(out, nullptr);
      w4a16_weight_free(out);
      succeeded = true;
    } else {
      ASSERT_EQ(status, W4A16_ERROR_OUT_OF_MEMORY) << "allocation " << n << ": " << w4a16_last_error();
      ASSERT_EQ(out, nullptr);
      EXPECT_NE(std::string(w4a16_last_error()).find("out of memory"), std::string::npos) << w4a16_last_error();
    }
  }
  EXPECT_TRUE(succeeded);
}

TEST(CApiOutOfMemory, MessageSurvivesAFailureToRecordIt) {
#ifdef W4A16_TEST_ASAN
  GTEST_SKIP() << "operator new is not replaced under AddressSanitizer";
#endif
  // On a fresh thread the message string has no heap buffer yet, so with every allocation
  // failing, recording "w4a16_quantize: out of memory" fails too and the static fallback is used.
  std::string message;
  w4a16_status status = W4A16_OK;
  std::thread([&] {
    const auto w = w4a16::test::random_matrix(w4a16::DType::f32, kN, kK, 1, 0.02f);
    w4a16_weight* out = nullptr;
    t_allocations_left = 0;
    status = w4a16_quantize(w.data(), W4A16_DTYPE_F32, kN, kK, 32, W4A16_ZERO_SYM, W4A16_DTYPE_F16, &out);
    const char* text = w4a16_last_error();  // must not allocate
    t_allocations_left = -1;
    message = text;
  }).join();
  EXPECT_EQ(status, W4A16_ERROR_OUT_OF_MEMORY);
  EXPECT_EQ(message, "out of memory while recording the error message");
}

}  // namespace
