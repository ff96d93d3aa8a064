// The C interface (w4a16.h): the success path against the reference and the C++ API, and every
// way a C caller can get an argument wrong. Each failure must return the right status, leave the
// outputs untouched (handles set to NULL), and explain itself through w4a16_last_error().
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "support/random_data.hpp"
#include "w4a16/w4a16.h"
#include "w4a16/w4a16.hpp"

namespace {

using w4a16::DType;
using w4a16::test::HostMatrix;
using w4a16::test::random_matrix;

// Owns a handle for the duration of a test.
struct WeightDeleter {
  void operator()(w4a16_weight* w) const { w4a16_weight_free(w); }
};
using WeightPtr = std::unique_ptr<w4a16_weight, WeightDeleter>;

w4a16_dtype c_dtype(DType d) {
  switch (d) {
    case DType::f16:
      return W4A16_DTYPE_F16;
    case DType::bf16:
      return W4A16_DTYPE_BF16;
    case DType::f32:
      return W4A16_DTYPE_F32;
  }
  return W4A16_DTYPE_MAX_ENUM_;
}

std::string last_error() { return w4a16_last_error(); }

// A pointer value that is not NULL and must be overwritten with NULL by a failing constructor.
w4a16_weight* const kSentinelHandle = reinterpret_cast<w4a16_weight*>(uintptr_t(0x10));

// Enum values no w4a16 enumerator has (inside the enum's range because of *_MAX_ENUM_).
const w4a16_dtype kBadDtypes[] = {static_cast<w4a16_dtype>(3), static_cast<w4a16_dtype>(42)};

constexpr int64_t kN = 40, kK = 200, kGroup = 64;  // K = 3 * 64 + 8: a ragged last group

// A quantized random weight [kN, kK] (Llama-like magnitudes), built through the C API.
WeightPtr make_weight(w4a16_zero_mode mode = W4A16_ZERO_SYM, int64_t group = kGroup,
                      w4a16_dtype scale = W4A16_DTYPE_F16, uint64_t seed = 1) {
  const HostMatrix w = random_matrix(DType::f32, kN, kK, seed, 0.02f);
  w4a16_weight* out = nullptr;
  const w4a16_status status = w4a16_quantize(w.data(), W4A16_DTYPE_F32, kN, kK, group, mode, scale, &out);
  EXPECT_EQ(status, W4A16_OK) << last_error();
  return WeightPtr(out);
}

std::vector<float> dequantized(const w4a16_weight* w) {
  int64_t n = 0, k = 0;
  EXPECT_EQ(w4a16_weight_shape(w, &n, &k), W4A16_OK) << last_error();
  std::vector<float> out(size_t(n * k), NAN);
  EXPECT_EQ(w4a16_weight_dequantize(w, out.data(), n * k), W4A16_OK) << last_error();
  return out;
}

// A scratch directory per test, removed afterwards (tests may run in parallel processes).
class CApiFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = std::filesystem::temp_directory_path() / ("w4a16_capi_" + std::to_string(::getpid()) + "_" + info->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string file(const std::string& name) const { return (dir_ / name).string(); }

  std::filesystem::path dir_;
};

// ---------------------------------------------------------------------------------------------
// Success paths
// ---------------------------------------------------------------------------------------------

TEST(CApi, VersionMatchesMacrosAndCppApi) {
  const std::string expected = std::to_string(W4A16_VERSION_MAJOR) + "." + std::to_string(W4A16_VERSION_MINOR) + "." +
                               std::to_string(W4A16_VERSION_PATCH);
  EXPECT_EQ(std::string(w4a16_version()), expected);
  EXPECT_EQ(std::string(w4a16_version()), std::string(w4a16::version()));
}

TEST(CApi, EnumsAreStable) {
  // These values are ABI: bindings in other languages hard-code them.
  EXPECT_EQ(int(W4A16_OK), 0);
  EXPECT_EQ(int(W4A16_ERROR_INVALID_ARGUMENT), int(w4a16::ErrorCode::invalid_argument));
  EXPECT_EQ(int(W4A16_ERROR_FORMAT), int(w4a16::ErrorCode::format));
  EXPECT_EQ(int(W4A16_ERROR_IO), int(w4a16::ErrorCode::io));
  EXPECT_EQ(int(W4A16_ERROR_UNSUPPORTED), int(w4a16::ErrorCode::unsupported));
  EXPECT_EQ(int(W4A16_ERROR_INTERNAL), int(w4a16::ErrorCode::internal));
  EXPECT_EQ(int(W4A16_ERROR_OUT_OF_MEMORY), 6);
  EXPECT_EQ(int(W4A16_DTYPE_F16), 0);
  EXPECT_EQ(int(W4A16_DTYPE_BF16), 1);
  EXPECT_EQ(int(W4A16_DTYPE_F32), 2);
  EXPECT_EQ(int(W4A16_ZERO_SYM), 0);
  EXPECT_EQ(int(W4A16_ZERO_ASYM), 1);
  EXPECT_EQ(int(W4A16_ZERO_FLOAT), 2);
}

TEST(CApi, ShapeAndInfo) {
  struct Case {
    int64_t group;
    int64_t expected_group;
    w4a16_zero_mode mode;
    w4a16_dtype scale;
  };
  const Case cases[] = {{kGroup, kGroup, W4A16_ZERO_SYM, W4A16_DTYPE_F16},
                        {32, 32, W4A16_ZERO_ASYM, W4A16_DTYPE_BF16},
                        {0, kK, W4A16_ZERO_FLOAT, W4A16_DTYPE_F32},    // 0 = per-channel
                        {1000, kK, W4A16_ZERO_SYM, W4A16_DTYPE_F32}};  // g > K is taken as K
  for (const Case& c : cases) {
    const WeightPtr w = make_weight(c.mode, c.group, c.scale);
    ASSERT_NE(w, nullptr);
    int64_t n = 0, k = 0, group = 0;
    w4a16_zero_mode mode = W4A16_ZERO_MAX_ENUM_;
    w4a16_dtype scale = W4A16_DTYPE_MAX_ENUM_;
    ASSERT_EQ(w4a16_weight_shape(w.get(), &n, &k), W4A16_OK) << last_error();
    ASSERT_EQ(w4a16_weight_info(w.get(), &group, &mode, &scale), W4A16_OK) << last_error();
    EXPECT_EQ(n, kN);
    EXPECT_EQ(k, kK);
    EXPECT_EQ(group, c.expected_group);
    EXPECT_EQ(mode, c.mode);
    EXPECT_EQ(scale, c.scale);
  }
}

// The CUDA entry points: on a machine without a GPU (or a build without CUDA) a clean
// W4A16_ERROR_UNSUPPORTED with a message, NULL handles, and frees that accept NULL.
TEST(CApi, CudaWithoutAGpuIsUnsupported) {
  if (!w4a16::cuda_devices().devices.empty()) GTEST_SKIP() << "a CUDA device is present (tests/cuda covers it)";
  const WeightPtr w = make_weight(W4A16_ZERO_SYM, kGroup, W4A16_DTYPE_F16);
  ASSERT_NE(w, nullptr);
  w4a16_cuda_weight* cw = reinterpret_cast<w4a16_cuda_weight*>(&cw);  // must be overwritten with NULL
  EXPECT_EQ(w4a16_cuda_weight_create(w.get(), W4A16_DTYPE_F16, -1, &cw), W4A16_ERROR_UNSUPPORTED);
  EXPECT_EQ(cw, nullptr);
  EXPECT_NE(std::string(last_error()).find("CUDA"), std::string::npos) << last_error();
  EXPECT_EQ(w4a16_cuda_weight_create(nullptr, W4A16_DTYPE_F16, -1, &cw), W4A16_ERROR_INVALID_ARGUMENT);
  // An explicit index is as unsupported as the current device (was INTERNAL "cudaGetDevice
  // failed"); an index below -1 is the caller's error whatever the machine (was "no usable device").
  EXPECT_EQ(w4a16_cuda_weight_create(w.get(), W4A16_DTYPE_F16, 7, &cw), W4A16_ERROR_UNSUPPORTED) << last_error();
  EXPECT_EQ(w4a16_cuda_weight_create(w.get(), W4A16_DTYPE_F16, -12345, &cw), W4A16_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(last_error()).find("-12345"), std::string::npos) << last_error();
  w4a16_cuda_workspace* ws = nullptr;
  ASSERT_EQ(w4a16_cuda_workspace_create(&ws), W4A16_OK) << last_error();  // host object: no device needed
  EXPECT_EQ(
      w4a16_cuda_gemm(nullptr, W4A16_DTYPE_F16, 1, kK, nullptr, nullptr, W4A16_DTYPE_F16, kN, ws, nullptr, nullptr),
      W4A16_ERROR_INVALID_ARGUMENT);
  w4a16_cuda_workspace_free(ws);
  w4a16_cuda_workspace_free(nullptr);
  w4a16_cuda_weight_free(nullptr);
}

// The C wrapper must hand the C++ quantizer exactly what it was given: same codes, scales, zeros.
TEST(CApi, QuantizeMatchesCppApi) {
  for (const DType src : {DType::f32, DType::f16, DType::bf16}) {
    const HostMatrix w = random_matrix(src, kN, kK, 7, 0.02f);
    w4a16_weight* handle = nullptr;
    ASSERT_EQ(w4a16_quantize(w.data(), c_dtype(src), kN, kK, 32, W4A16_ZERO_ASYM, W4A16_DTYPE_BF16, &handle), W4A16_OK)
        << last_error();
    const WeightPtr owner(handle);
    const auto expected = w4a16::dequantize(w4a16::quantize(w.ref(), {32, w4a16::ZeroMode::asym, DType::bf16}));
    const auto got = dequantized(handle);
    ASSERT_EQ(got.size(), expected.size());
    EXPECT_EQ(std::memcmp(got.data(), expected.data(), got.size() * sizeof(float)), 0) << to_string(src);
  }
}

// w4a16_gemm against w4a16_gemm_reference, and the reference against x * dequantize(W)^T computed
// here in double, for every act dtype pair and zero mode, M from 1 to 17.
class CApiGemm : public ::testing::TestWithParam<std::tuple<w4a16_zero_mode, DType, DType>> {};

TEST_P(CApiGemm, MatchesReference) {
  const auto [mode, xt, yt] = GetParam();
  const WeightPtr w = make_weight(mode, kGroup, W4A16_DTYPE_F16, 3);
  ASSERT_NE(w, nullptr);
  const std::vector<float> wd = dequantized(w.get());  // [N, K]
  // Tolerances: the reference rounds the exact (double) sum once, so it is within half an ulp of
  // y's dtype (1 ulp for float zeros, whose fp32 dequantized values round once more). A fast
  // kernel accumulates in fp32 in its own order (error <= K * 2^-24 * sum |x w|) and rounds
  // again: one more ulp. The planner may choose the decoupled strategy, which dequantizes W to x's
  // dtype first (at M = 17 with bf16 x on AMD Zen 4, whose bf16 dot is fast): each weight is then
  // rounded once more, to within its unit roundoff, which adds w_round * sum |x w|.
  const double ulp = yt == DType::f16 ? 0x1p-10 : 0x1p-7;
  const double w_round = xt == DType::bf16 ? 0x1p-8 : 0x1p-11;
  for (const int64_t m : {1, 2, 5, 17}) {
    const HostMatrix x = random_matrix(xt, m, kK, uint64_t(100 + m));
    HostMatrix y(yt, m, kN), y_ref(yt, m, kN);
    y.poison();
    y_ref.poison();
    ASSERT_EQ(w4a16_gemm(x.data(), c_dtype(xt), m, kK, w.get(), y.data(), c_dtype(yt), kN), W4A16_OK) << last_error();
    ASSERT_EQ(w4a16_gemm_reference(x.data(), c_dtype(xt), m, kK, w.get(), y_ref.data(), c_dtype(yt), kN), W4A16_OK)
        << last_error();
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t j = 0; j < kN; ++j) {
        double exact = 0.0, magnitude = 0.0;
        for (int64_t k = 0; k < kK; ++k) {
          const double p = double(x.get(i * kK + k)) * double(wd[size_t(j * kK + k)]);
          exact += p;
          magnitude += std::abs(p);
        }
        const int64_t e = i * kN + j;
        const double got_ref = y_ref.get(e), got = y.get(e);
        ASSERT_NEAR(got_ref, exact, ulp * std::abs(exact) + 1e-7) << "reference, m=" << i << " n=" << j;
        ASSERT_NEAR(got, got_ref, ulp * std::abs(got_ref) + (kK * 0x1p-24 + w_round) * magnitude + 1e-7)
            << "gemm, m=" << i << " n=" << j;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllModesAndDtypes, CApiGemm,
                         ::testing::Combine(::testing::Values(W4A16_ZERO_SYM, W4A16_ZERO_ASYM, W4A16_ZERO_FLOAT),
                                            ::testing::Values(DType::f16, DType::bf16),
                                            ::testing::Values(DType::f16, DType::bf16)));

// A handle is read-only: several threads may multiply with it at once and get identical results.
TEST(CApi, ConcurrentGemmOnOneHandle) {
  const WeightPtr w = make_weight();
  ASSERT_NE(w, nullptr);
  constexpr int64_t m = 3;
  const HostMatrix x = random_matrix(DType::f16, m, kK, 5);
  HostMatrix expected(DType::f16, m, kN);
  ASSERT_EQ(w4a16_gemm(x.data(), W4A16_DTYPE_F16, m, kK, w.get(), expected.data(), W4A16_DTYPE_F16, kN), W4A16_OK);
  std::vector<HostMatrix> outputs(4, HostMatrix(DType::f16, m, kN));
  std::vector<w4a16_status> statuses(outputs.size(), W4A16_ERROR_INTERNAL);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < outputs.size(); ++t) {
    threads.emplace_back([&, t] {
      statuses[t] = w4a16_gemm(x.data(), W4A16_DTYPE_F16, m, kK, w.get(), outputs[t].data(), W4A16_DTYPE_F16, kN);
    });
  }
  for (auto& t : threads) t.join();
  for (size_t t = 0; t < outputs.size(); ++t) {
    EXPECT_EQ(statuses[t], W4A16_OK);
    EXPECT_EQ(outputs[t].bits, expected.bits) << "thread " << t;
  }
}

TEST_F(CApiFiles, SaveLoadRoundTrip) {
  for (const w4a16_zero_mode mode : {W4A16_ZERO_SYM, W4A16_ZERO_ASYM, W4A16_ZERO_FLOAT}) {
    const WeightPtr w = make_weight(mode, 32, W4A16_DTYPE_BF16, 9);
    ASSERT_NE(w, nullptr);
    const std::string path = file("layer.safetensors");
    ASSERT_EQ(w4a16_weight_save(w.get(), path.c_str(), "model.layers.0.mlp.up_proj.weight"), W4A16_OK) << last_error();

    // Both spellings of the layer name find it.
    for (const char* name : {"model.layers.0.mlp.up_proj", "model.layers.0.mlp.up_proj.weight"}) {
      w4a16_weight* handle = nullptr;
      ASSERT_EQ(w4a16_weight_load(path.c_str(), name, &handle), W4A16_OK) << last_error();
      const WeightPtr loaded(handle);
      int64_t n = 0, k = 0, group = 0;
      w4a16_zero_mode loaded_mode = W4A16_ZERO_MAX_ENUM_;
      w4a16_dtype scale = W4A16_DTYPE_MAX_ENUM_;
      ASSERT_EQ(w4a16_weight_shape(handle, &n, &k), W4A16_OK);
      ASSERT_EQ(w4a16_weight_info(handle, &group, &loaded_mode, &scale), W4A16_OK);
      EXPECT_EQ(n, kN);
      EXPECT_EQ(k, kK);
      EXPECT_EQ(group, 32);
      EXPECT_EQ(loaded_mode, mode);
      EXPECT_EQ(scale, W4A16_DTYPE_BF16);

      const auto a = dequantized(w.get()), b = dequantized(handle);
      EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0) << name;

      const HostMatrix x = random_matrix(DType::bf16, 4, kK, 21);
      HostMatrix y0(DType::bf16, 4, kN), y1(DType::bf16, 4, kN);
      ASSERT_EQ(w4a16_gemm(x.data(), W4A16_DTYPE_BF16, 4, kK, w.get(), y0.data(), W4A16_DTYPE_BF16, kN), W4A16_OK);
      ASSERT_EQ(w4a16_gemm(x.data(), W4A16_DTYPE_BF16, 4, kK, handle, y1.data(), W4A16_DTYPE_BF16, kN), W4A16_OK);
      EXPECT_EQ(y0.bits, y1.bits) << name;
    }
  }
}

TEST(CApi, FreeNullIsANoOp) { w4a16_weight_free(nullptr); }

// ---------------------------------------------------------------------------------------------
// Error paths
// ---------------------------------------------------------------------------------------------

// Expects `status` to be INVALID_ARGUMENT with a message naming the function and `needle`.
#define EXPECT_INVALID(call, function, needle)                                                                         \
  do {                                                                                                                 \
    const w4a16_status status_ = (call);                                                                               \
    EXPECT_EQ(status_, W4A16_ERROR_INVALID_ARGUMENT) << #call;                                                         \
    EXPECT_NE(last_error().find(function), std::string::npos) << #call << ": '" << last_error() << "'";                \
    EXPECT_NE(last_error().find(needle), std::string::npos) << #call << ": '" << last_error() << "' lacks " << needle; \
  } while (0)

TEST(CApiErrors, QuantizeNullPointers) {
  const HostMatrix w = random_matrix(DType::f32, kN, kK, 1);
  w4a16_weight* out = kSentinelHandle;
  EXPECT_INVALID(w4a16_quantize(nullptr, W4A16_DTYPE_F32, kN, kK, 64, W4A16_ZERO_SYM, W4A16_DTYPE_F16, &out),
                 "w4a16_quantize", "w is NULL");
  EXPECT_EQ(out, nullptr);
  EXPECT_INVALID(w4a16_quantize(w.data(), W4A16_DTYPE_F32, kN, kK, 64, W4A16_ZERO_SYM, W4A16_DTYPE_F16, nullptr),
                 "w4a16_quantize", "out is NULL");
}

TEST(CApiErrors, QuantizeBadEnums) {
  const HostMatrix w = random_matrix(DType::f32, kN, kK, 1);
  for (const w4a16_dtype bad : kBadDtypes) {
    w4a16_weight* out = kSentinelHandle;
    EXPECT_INVALID(w4a16_quantize(w.data(), bad, kN, kK, 64, W4A16_ZERO_SYM, W4A16_DTYPE_F16, &out), "w4a16_quantize",
                   "w_dtype");
    EXPECT_EQ(out, nullptr);
    EXPECT_INVALID(w4a16_quantize(w.data(), W4A16_DTYPE_F32, kN, kK, 64, W4A16_ZERO_SYM, bad, &out), "w4a16_quantize",
                   "scale_dtype");
  }
  w4a16_weight* out = kSentinelHandle;
  EXPECT_INVALID(
      w4a16_quantize(w.data(), W4A16_DTYPE_F32, kN, kK, 64, static_cast<w4a16_zero_mode>(3), W4A16_DTYPE_F16, &out),
      "w4a16_quantize", "zero_mode");
  EXPECT_EQ(out, nullptr);
}

TEST(CApiErrors, QuantizeBadSizesAndValues) {
  HostMatrix w = random_matrix(DType::f32, kN, kK, 1);
  w4a16_weight* out = kSentinelHandle;
  const auto quantize = [&](int64_t n, int64_t k, int64_t g) {
    return w4a16_quantize(w.data(), W4A16_DTYPE_F32, n, k, g, W4A16_ZERO_SYM, W4A16_DTYPE_F16, &out);
  };
  EXPECT_INVALID(quantize(0, kK, 64), "w4a16_quantize", "must be positive");
  EXPECT_INVALID(quantize(kN, 0, 64), "w4a16_quantize", "must be positive");
  EXPECT_INVALID(quantize(-1, kK, 64), "w4a16_quantize", "must be positive");
  EXPECT_INVALID(quantize(kN, -7, 64), "w4a16_quantize", "must be positive");
  EXPECT_INVALID(quantize(kN, kK, -1), "w4a16_quantize", "group_size");
  // n * k overflows int64: must be rejected before anything reads w.
  EXPECT_INVALID(quantize(int64_t(1) << 40, int64_t(1) << 30, 64), "w4a16_quantize", "overflow");
  EXPECT_EQ(out, nullptr);
  // A NaN weight is named by its row and column.
  w.set(3 * kK + 17, NAN);
  EXPECT_INVALID(quantize(kN, kK, 64), "w4a16_quantize", "row 3 column 17");
  w.set(3 * kK + 17, INFINITY);
  EXPECT_INVALID(quantize(kN, kK, 64), "w4a16_quantize", "row 3 column 17");
  EXPECT_EQ(out, nullptr);
}

TEST(CApiErrors, GemmNullPointersAndBadEnums) {
  const WeightPtr w = make_weight();
  const HostMatrix x = random_matrix(DType::f16, 2, kK, 1);
  HostMatrix y(DType::f16, 2, kN);
  y.poison();
  const std::vector<uint16_t> poisoned = y.bits;
  using Gemm = decltype(&w4a16_gemm);
  for (const auto& [gemm, name] : {std::pair<Gemm, const char*>{&w4a16_gemm, "w4a16_gemm"},
                                   std::pair<Gemm, const char*>{&w4a16_gemm_reference, "w4a16_gemm_reference"}}) {
    EXPECT_INVALID(gemm(nullptr, W4A16_DTYPE_F16, 2, kK, w.get(), y.data(), W4A16_DTYPE_F16, kN), name, "x is NULL");
    EXPECT_INVALID(gemm(x.data(), W4A16_DTYPE_F16, 2, kK, nullptr, y.data(), W4A16_DTYPE_F16, kN), name,
                   "weight is NULL");
    EXPECT_INVALID(gemm(x.data(), W4A16_DTYPE_F16, 2, kK, w.get(), nullptr, W4A16_DTYPE_F16, kN), name, "y is NULL");
    for (const w4a16_dtype bad : kBadDtypes) {
      EXPECT_INVALID(gemm(x.data(), bad, 2, kK, w.get(), y.data(), W4A16_DTYPE_F16, kN), name, "x_dtype");
      EXPECT_INVALID(gemm(x.data(), W4A16_DTYPE_F16, 2, kK, w.get(), y.data(), bad, kN), name, "y_dtype");
    }
    // fp32 is a valid dtype but not an activation dtype.
    EXPECT_INVALID(gemm(x.data(), W4A16_DTYPE_F32, 2, kK, w.get(), y.data(), W4A16_DTYPE_F16, kN), name,
                   "fp16 or bf16");
  }
  EXPECT_EQ(y.bits, poisoned) << "a failed call wrote to y";
}

// y may be fp32 (partial sums added before one rounding): it holds the value the fp16 y rounds.
TEST(CApi, Fp32OutputIsTheValueBeforeTheRounding) {
  const WeightPtr w = make_weight();
  const HostMatrix x = random_matrix(DType::f16, 2, kK, 1);
  // The fast path: both outputs come from the same fp32 accumulators. (The reference rounds its
  // double once to either dtype; its fp32 then rounded to fp16 could differ at an exact halfway.)
  for (const auto& [gemm, name] : {std::pair{&w4a16_gemm, "w4a16_gemm"}}) {
    HostMatrix y16(DType::f16, 2, kN), y32(DType::f32, 2, kN);
    y16.poison(), y32.poison();
    ASSERT_EQ(gemm(x.data(), W4A16_DTYPE_F16, 2, kK, w.get(), y16.data(), W4A16_DTYPE_F16, kN), W4A16_OK) << name;
    ASSERT_EQ(gemm(x.data(), W4A16_DTYPE_F16, 2, kK, w.get(), y32.data(), W4A16_DTYPE_F32, kN), W4A16_OK) << name;
    for (int64_t i = 0; i < 2 * kN; ++i) {
      ASSERT_EQ(w4a16::f32_to_f16(y32.get(i)), y16.bits[size_t(i)]) << name << " y[" << i << "]";
    }
  }
}

TEST(CApiErrors, GemmBadSizes) {
  const WeightPtr w = make_weight();
  const HostMatrix x = random_matrix(DType::bf16, 2, kK + 1, 1);  // large enough for every call below
  HostMatrix y(DType::bf16, 2, kN + 1);
  y.poison();
  const std::vector<uint16_t> poisoned = y.bits;
  const auto gemm = [&](int64_t m, int64_t k, int64_t n) {
    return w4a16_gemm(x.data(), W4A16_DTYPE_BF16, m, k, w.get(), y.data(), W4A16_DTYPE_BF16, n);
  };
  EXPECT_INVALID(gemm(0, kK, kN), "w4a16_gemm", "m = 0");
  EXPECT_INVALID(gemm(-3, kK, kN), "w4a16_gemm", "m = -3");
  EXPECT_INVALID(gemm(2, kK - 1, kN), "w4a16_gemm", "k = 199 does not match the weight's K = 200");
  EXPECT_INVALID(gemm(2, kK + 1, kN), "w4a16_gemm", "k = 201");
  EXPECT_INVALID(gemm(2, 0, kN), "w4a16_gemm", "k = 0");
  EXPECT_INVALID(gemm(2, kK, kN + 1), "w4a16_gemm", "n = 41 does not match the weight's N = 40");
  EXPECT_INVALID(gemm(2, kK, -1), "w4a16_gemm", "n = -1");
  // m * k overflows: rejected before x is read.
  EXPECT_INVALID(gemm(std::numeric_limits<int64_t>::max() / 2, kK, kN), "w4a16_gemm", "overflow");
  EXPECT_EQ(y.bits, poisoned) << "a failed call wrote to y";
}

TEST(CApiErrors, WeightQueriesValidatePointers) {
  const WeightPtr w = make_weight();
  int64_t n = 0, k = 0, group = 0;
  w4a16_zero_mode mode = W4A16_ZERO_SYM;
  w4a16_dtype scale = W4A16_DTYPE_F16;
  EXPECT_INVALID(w4a16_weight_shape(nullptr, &n, &k), "w4a16_weight_shape", "weight is NULL");
  EXPECT_INVALID(w4a16_weight_shape(w.get(), nullptr, &k), "w4a16_weight_shape", "n is NULL");
  EXPECT_INVALID(w4a16_weight_shape(w.get(), &n, nullptr), "w4a16_weight_shape", "k is NULL");
  EXPECT_INVALID(w4a16_weight_info(nullptr, &group, &mode, &scale), "w4a16_weight_info", "weight is NULL");
  EXPECT_INVALID(w4a16_weight_info(w.get(), nullptr, &mode, &scale), "w4a16_weight_info", "group_size is NULL");
  EXPECT_INVALID(w4a16_weight_info(w.get(), &group, nullptr, &scale), "w4a16_weight_info", "zero_mode is NULL");
  EXPECT_INVALID(w4a16_weight_info(w.get(), &group, &mode, nullptr), "w4a16_weight_info", "scale_dtype is NULL");

  std::vector<float> out(size_t(kN * kK + 1), -1.0f);
  EXPECT_INVALID(w4a16_weight_dequantize(nullptr, out.data(), kN * kK), "w4a16_weight_dequantize", "weight is NULL");
  EXPECT_INVALID(w4a16_weight_dequantize(w.get(), nullptr, kN * kK), "w4a16_weight_dequantize", "out is NULL");
  for (const int64_t bad : {int64_t(0), int64_t(-1), kN * kK - 1, kN * kK + 1}) {
    EXPECT_INVALID(w4a16_weight_dequantize(w.get(), out.data(), bad), "w4a16_weight_dequantize", "out_elems");
  }
  for (const float v : out) ASSERT_EQ(v, -1.0f) << "a failed call wrote to out";
}

TEST_F(CApiFiles, LoadAndSaveErrors) {
  const WeightPtr w = make_weight();
  const std::string path = file("ok.safetensors");
  ASSERT_EQ(w4a16_weight_save(w.get(), path.c_str(), "layer"), W4A16_OK) << last_error();

  w4a16_weight* out = kSentinelHandle;
  EXPECT_INVALID(w4a16_weight_load(nullptr, "layer", &out), "w4a16_weight_load", "path is NULL");
  EXPECT_EQ(out, nullptr);
  EXPECT_INVALID(w4a16_weight_load(path.c_str(), nullptr, &out), "w4a16_weight_load", "layer is NULL");
  EXPECT_INVALID(w4a16_weight_load(path.c_str(), "layer", nullptr), "w4a16_weight_load", "out is NULL");
  EXPECT_INVALID(w4a16_weight_load("", "layer", &out), "w4a16_weight_load", "path is empty");
  EXPECT_INVALID(w4a16_weight_save(nullptr, path.c_str(), "layer"), "w4a16_weight_save", "weight is NULL");
  EXPECT_INVALID(w4a16_weight_save(w.get(), nullptr, "layer"), "w4a16_weight_save", "path is NULL");
  EXPECT_INVALID(w4a16_weight_save(w.get(), path.c_str(), nullptr), "w4a16_weight_save", "layer is NULL");
  EXPECT_INVALID(w4a16_weight_save(w.get(), path.c_str(), ""), "w4a16_weight_save", "layer name is empty");

  // A missing file is an I/O error and the message names the path.
  out = kSentinelHandle;
  const std::string missing = file("missing.safetensors");
  EXPECT_EQ(w4a16_weight_load(missing.c_str(), "layer", &out), W4A16_ERROR_IO);
  EXPECT_EQ(out, nullptr);
  EXPECT_NE(last_error().find("w4a16_weight_load"), std::string::npos) << last_error();
  EXPECT_NE(last_error().find("missing.safetensors"), std::string::npos) << last_error();

  // So is reading a directory, and writing into a directory that does not exist.
  EXPECT_EQ(w4a16_weight_load(dir_.c_str(), "layer", &out), W4A16_ERROR_IO) << last_error();
  const std::string unwritable = file("no/such/dir/out.safetensors");
  EXPECT_EQ(w4a16_weight_save(w.get(), unwritable.c_str(), "layer"), W4A16_ERROR_IO) << last_error();

  // A file that is not safetensors is a format error.
  const std::string garbage = file("garbage.safetensors");
  std::ofstream(garbage, std::ios::binary) << "this is not a safetensors file, just some text";
  out = kSentinelHandle;
  EXPECT_EQ(w4a16_weight_load(garbage.c_str(), "layer", &out), W4A16_ERROR_FORMAT) << last_error();
  EXPECT_EQ(out, nullptr);

  // A layer that is not in the file is an argument error that names the layer.
  out = kSentinelHandle;
  EXPECT_EQ(w4a16_weight_load(path.c_str(), "no.such.layer", &out), W4A16_ERROR_INVALID_ARGUMENT) << last_error();
  EXPECT_EQ(out, nullptr);
  EXPECT_NE(last_error().find("no.such.layer"), std::string::npos) << last_error();
}

// ---------------------------------------------------------------------------------------------
// w4a16_last_error
// ---------------------------------------------------------------------------------------------

TEST(CApiLastError, KeptUntilTheNextFailure) {
  int64_t n = 0, k = 0;
  ASSERT_EQ(w4a16_weight_shape(nullptr, &n, &k), W4A16_ERROR_INVALID_ARGUMENT);
  const std::string first = last_error();
  EXPECT_EQ(first, "w4a16_weight_shape: weight is NULL");
  // A successful call leaves the message alone...
  const WeightPtr w = make_weight();
  ASSERT_EQ(w4a16_weight_shape(w.get(), &n, &k), W4A16_OK);
  EXPECT_EQ(last_error(), first);
  // ...and the next failure replaces it.
  ASSERT_EQ(w4a16_weight_shape(w.get(), nullptr, &k), W4A16_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(last_error(), "w4a16_weight_shape: n is NULL");
  EXPECT_NE(w4a16_last_error(), nullptr);
}

TEST(CApiLastError, IsPerThread) {
  int64_t n = 0, k = 0;
  ASSERT_EQ(w4a16_weight_shape(nullptr, &n, &k), W4A16_ERROR_INVALID_ARGUMENT);
  const std::string main_message = last_error();

  std::string fresh, own;
  std::thread other([&] {
    fresh = w4a16_last_error();  // nothing has failed on this thread yet
    int64_t group = 0;
    w4a16_zero_mode mode;
    w4a16_dtype scale;
    w4a16_weight_info(nullptr, &group, &mode, &scale);
    own = w4a16_last_error();
  });
  other.join();
  EXPECT_EQ(fresh, "");
  EXPECT_EQ(own, "w4a16_weight_info: weight is NULL");
  EXPECT_EQ(last_error(), main_message) << "another thread's failure leaked into this thread's message";
}

}  // namespace

namespace {

TEST(CApiOptions, EveryStrategyAndPartitionMatchesTheReference) {
  const WeightPtr w = make_weight(W4A16_ZERO_ASYM);
  const HostMatrix x = random_matrix(DType::bf16, 6, kK, 21);
  HostMatrix ref(DType::bf16, 6, kN);
  ASSERT_EQ(w4a16_gemm_reference(x.data(), W4A16_DTYPE_BF16, 6, kK, w.get(), ref.data(), W4A16_DTYPE_BF16, kN),
            W4A16_OK);
  for (w4a16_strategy s : {W4A16_STRATEGY_AUTO, W4A16_STRATEGY_FUSED, W4A16_STRATEGY_DECOUPLED, W4A16_STRATEGY_DENSE}) {
    for (w4a16_partition p : {W4A16_PARTITION_AUTO, W4A16_PARTITION_DATA_PARALLEL, W4A16_PARTITION_SPLIT_K}) {
      const w4a16_gemm_options o = {s, p, 2, 2};
      HostMatrix y(DType::bf16, 6, kN);
      y.poison();
      ASSERT_EQ(w4a16_gemm_ex(x.data(), W4A16_DTYPE_BF16, 6, kK, w.get(), y.data(), W4A16_DTYPE_BF16, kN, &o), W4A16_OK)
          << last_error();
      for (int i = 0; i < 6 * kN; ++i) {
        // Dense and decoupled round W to bf16 (2^-8 relative per weight): a loose bound suffices
        // here; tests/cpu/kernels_test.cpp holds the derived one.
        EXPECT_NEAR(y.get(i), ref.get(i), 0.02 * std::abs(ref.get(i)) + 0.02) << s << " " << p << " " << i;
      }
    }
  }
}

TEST(CApiOptions, RejectsBadOptions) {
  const WeightPtr w = make_weight();
  const HostMatrix x = random_matrix(DType::f16, 1, kK, 2);
  HostMatrix y(DType::f16, 1, kN);
  const w4a16_gemm_options bad[] = {{static_cast<w4a16_strategy>(9), W4A16_PARTITION_AUTO, 0, 0},
                                    {W4A16_STRATEGY_AUTO, static_cast<w4a16_partition>(5), 0, 0},
                                    {W4A16_STRATEGY_AUTO, W4A16_PARTITION_SPLIT_K, -1, 0},
                                    {W4A16_STRATEGY_AUTO, W4A16_PARTITION_AUTO, 0, -3}};
  for (const auto& o : bad) {
    EXPECT_EQ(w4a16_gemm_ex(x.data(), W4A16_DTYPE_F16, 1, kK, w.get(), y.data(), W4A16_DTYPE_F16, kN, &o),
              W4A16_ERROR_INVALID_ARGUMENT);
    EXPECT_NE(last_error().find("w4a16_gemm_ex"), std::string::npos) << last_error();
  }
}

TEST(CApiOptions, SetIsaCapsAndRestores) {
  const std::string before = w4a16_active_isa();
  ASSERT_EQ(w4a16_set_isa("scalar"), W4A16_OK);
  EXPECT_STREQ(w4a16_active_isa(), "scalar");
  EXPECT_EQ(w4a16_set_isa("sse9"), W4A16_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(last_error().find("unknown ISA"), std::string::npos) << last_error();
  ASSERT_EQ(w4a16_set_isa(nullptr), W4A16_OK);
  EXPECT_EQ(std::string(w4a16_active_isa()), before);
}

TEST(CApiOptions, WorkerSpinIsSetAndRangeChecked) {
  const int32_t before = w4a16_worker_spin_us();
  ASSERT_EQ(w4a16_set_worker_spin_us(0), W4A16_OK);
  EXPECT_EQ(w4a16_worker_spin_us(), 0);
  EXPECT_EQ(w4a16_set_worker_spin_us(-1), W4A16_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(w4a16_set_worker_spin_us(100001), W4A16_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(last_error().find("100000"), std::string::npos) << last_error();
  EXPECT_EQ(w4a16_worker_spin_us(), 0);
  ASSERT_EQ(w4a16_set_worker_spin_us(before), W4A16_OK);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Foreign callers and aliasing (faults 5 and 6 of the review at commit e185524)
// ---------------------------------------------------------------------------------------------

extern "C" {
w4a16_status foreign_quantize(const float* w, int64_t n, int64_t k, int32_t w_dtype, int32_t zero_mode,
                              int32_t scale_dtype, w4a16_weight** out);
w4a16_status foreign_gemm(const void* x, int32_t x_dtype, int64_t m, int64_t k, const w4a16_weight* weight, void* y,
                          int32_t y_dtype, int64_t n, int32_t strategy, int32_t partition);
w4a16_status foreign_gemm_reference(const void* x, int32_t x_dtype, int64_t m, int64_t k, const w4a16_weight* weight,
                                    void* y, int32_t y_dtype, int64_t n);
}

namespace {

// Every int32 a foreign caller may pass that names no enumerator: negative, just past the last
// one, and the extremes. The ASan+UBSan build of this test fails on any out-of-range enum load.
const int32_t kForeignBadEnums[] = {
    -1, -2, 3, 4, 5, 1000, std::numeric_limits<int32_t>::min(), std::numeric_limits<int32_t>::max()};

TEST(CApiForeignCallers, AnyInt32EnumValueIsRangeCheckedWithoutUndefinedBehavior) {
  const HostMatrix wf = random_matrix(DType::f32, kN, kK, 3, 0.02f);
  const float* w = reinterpret_cast<const float*>(wf.data());
  for (const int32_t bad : kForeignBadEnums) {
    SCOPED_TRACE(bad);
    w4a16_weight* out = kSentinelHandle;
    EXPECT_INVALID(foreign_quantize(w, kN, kK, bad, W4A16_ZERO_SYM, W4A16_DTYPE_F16, &out), "w4a16_quantize",
                   "w_dtype = " + std::to_string(bad));
    EXPECT_EQ(out, nullptr);
    EXPECT_INVALID(foreign_quantize(w, kN, kK, W4A16_DTYPE_F32, bad, W4A16_DTYPE_F16, &out), "w4a16_quantize",
                   "zero_mode = " + std::to_string(bad));
    EXPECT_INVALID(foreign_quantize(w, kN, kK, W4A16_DTYPE_F32, W4A16_ZERO_SYM, bad, &out), "w4a16_quantize",
                   "scale_dtype = " + std::to_string(bad));
  }
  const WeightPtr weight = make_weight();
  const HostMatrix x = random_matrix(DType::bf16, 2, kK, 4);
  HostMatrix y(DType::bf16, 2, kN);
  y.poison();
  const std::vector<uint16_t> poisoned = y.bits;
  for (const int32_t bad : kForeignBadEnums) {
    SCOPED_TRACE(bad);
    EXPECT_INVALID(foreign_gemm(x.data(), bad, 2, kK, weight.get(), y.data(), W4A16_DTYPE_BF16, kN, 0, 0),
                   "w4a16_gemm_ex", "x_dtype");
    EXPECT_INVALID(foreign_gemm(x.data(), W4A16_DTYPE_BF16, 2, kK, weight.get(), y.data(), bad, kN, 0, 0),
                   "w4a16_gemm_ex", "y_dtype");
    if (bad != 3 && bad != 4) {  // W4A16_STRATEGY_DENSE, W4A16_STRATEGY_PIPELINED
      EXPECT_INVALID(
          foreign_gemm(x.data(), W4A16_DTYPE_BF16, 2, kK, weight.get(), y.data(), W4A16_DTYPE_BF16, kN, bad, 0),
          "w4a16_gemm_ex", "options->strategy = " + std::to_string(bad));
    }
    EXPECT_INVALID(
        foreign_gemm(x.data(), W4A16_DTYPE_BF16, 2, kK, weight.get(), y.data(), W4A16_DTYPE_BF16, kN, 0, bad),
        "w4a16_gemm_ex", "options->partition = " + std::to_string(bad));
    EXPECT_INVALID(foreign_gemm_reference(x.data(), bad, 2, kK, weight.get(), y.data(), W4A16_DTYPE_BF16, kN),
                   "w4a16_gemm_reference", "x_dtype");
  }
  EXPECT_EQ(y.bits, poisoned) << "a refused call wrote to y";
}

// y == x used to return OK with 383-448 of 2048 bf16 outputs wrong (kernels read x while they
// write y, from several threads). Any overlap is now refused and y is left untouched.
TEST(CApiErrors, GemmOutputOverlappingInputIsRefused) {
  const WeightPtr weight = make_weight();
  // One buffer big enough for x [m, K] or y [m, N] at several offsets.
  constexpr int64_t m = 4;
  const HostMatrix x = random_matrix(DType::bf16, m, kK, 5);
  for (const int64_t shift : {int64_t(0), int64_t(1), int64_t(kK * m - 1), -int64_t(kN * m - 1)}) {
    SCOPED_TRACE(shift);
    std::vector<uint16_t> buffer(size_t(4 * kK * m), 0);
    uint16_t* x_at = buffer.data() + 2 * kK * m;
    std::memcpy(x_at, x.data(), size_t(m * kK) * 2);
    uint16_t* y_at = x_at + shift;
    EXPECT_INVALID(w4a16_gemm(x_at, W4A16_DTYPE_BF16, m, kK, weight.get(), y_at, W4A16_DTYPE_BF16, kN), "w4a16_gemm",
                   "overlaps an input");
    EXPECT_INVALID(w4a16_gemm_reference(x_at, W4A16_DTYPE_BF16, m, kK, weight.get(), y_at, W4A16_DTYPE_BF16, kN),
                   "w4a16_gemm_reference", "overlaps an input");
    EXPECT_EQ(std::memcmp(x_at, x.data(), size_t(m * kK) * 2), 0) << "x was written";
  }
  // Adjacent, not overlapping: accepted.
  std::vector<uint16_t> buffer(size_t(m * (kK + kN)), 0);
  std::memcpy(buffer.data(), x.data(), size_t(m * kK) * 2);
  EXPECT_EQ(
      w4a16_gemm(buffer.data(), W4A16_DTYPE_BF16, m, kK, weight.get(), buffer.data() + m * kK, W4A16_DTYPE_BF16, kN),
      W4A16_OK)
      << last_error();
}

}  // namespace
