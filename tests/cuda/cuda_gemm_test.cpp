// The CUDA backend on a GPU: every strategy and partition against the exact product of the 16-bit
// weights the kernels compute (gpu_weight) and against the library's fp64 reference, over odd
// shapes, every group size, zero mode, activation and output dtype, act-order and bias, outputs
// poisoned before each call. Skipped, saying why, without a GPU or without the CUDA build.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "support/random_data.hpp"
#include "support/random_quantized.hpp"
#include "w4a16/w4a16.hpp"

#if defined(W4A16_HAVE_CUDA)
#include <cuda_runtime_api.h>

#include "cuda/cuda_objects.hpp"
#include "cuda/gpu_pack.hpp"
#endif

namespace w4a16 {
namespace {

#if defined(W4A16_HAVE_CUDA)

void skip_without_gpu() {
  const CudaDevices d = cuda_devices();
  if (d.devices.empty()) GTEST_SKIP() << "no CUDA device: " << d.note;
}

#define SKIP_WITHOUT_GPU()   \
  do {                       \
    skip_without_gpu();      \
    if (IsSkipped()) return; \
  } while (0)

struct DeviceMem {
  void* p = nullptr;
  explicit DeviceMem(size_t bytes) { EXPECT_EQ(cudaMalloc(&p, bytes == 0 ? 1 : bytes), cudaSuccess); }
  ~DeviceMem() { cudaFree(p); }
  DeviceMem(const DeviceMem&) = delete;
  DeviceMem& operator=(const DeviceMem&) = delete;
};

size_t bytes_of(const test::HostMatrix& m) { return size_t(m.rows * m.cols) * dtype_size(m.dtype); }

double from_16(uint16_t bits, DType dtype) { return dtype == DType::bf16 ? bf16_to_f32(bits) : f16_to_f32(bits); }
double unit_roundoff(DType d) {
  return d == DType::f16 ? std::ldexp(1.0, -11) : d == DType::bf16 ? std::ldexp(1.0, -8) : std::ldexp(1.0, -24);
}

struct Case {
  int64_t m, k, n, g;
};

// Tolerances, per output element, with A = sum_k |x_k w_k| over the 16-bit weights:
//   rounding y to its dtype              u_y |ref|
//   fp32 accumulation                    (K/16 + 8 + S) 2^-22 A   one add per 16-k mma, the 4 warps'
//                                        and S splits' sums; 2^-22 (not 2^-24) leaves room for the
//                                        tensor core's truncating accumulation
//   vs the fp64 reference on the original weights, also each weight's rounding to the activation
//   dtype (twice when its scale was narrowed): 2 u_act A
struct Expected {
  std::vector<double> exact, oracle, bound, oracle_bound;
};

Expected expected_output(const test::HostMatrix& x, const QuantizedWeight& w, DType act, DType y_dtype, int splits) {
  const cuda::GpuPackedWeight p = cuda::pack_gpu(w, act);
  std::vector<double> w16(size_t(w.n() * w.k())), w64(size_t(w.n() * w.k()));
  for (int64_t n = 0; n < w.n(); ++n) {
    for (int64_t k = 0; k < w.k(); ++k) {
      const int64_t g = k / w.group_size();
      w16[size_t(n * w.k() + k)] = from_16(cuda::gpu_weight(p, n, k), act);
      // The reference's weight, in double: (q - z) s + zf with the stored scale and zeros.
      w64[size_t(n * w.k() + k)] =
          double(int(w.code(n, k)) - w.zero_int(n, g)) * double(w.scale(n, g)) + double(w.zero_float(n, g));
    }
  }
  Expected e;
  for (int64_t m = 0; m < x.rows; ++m) {
    for (int64_t n = 0; n < w.n(); ++n) {
      double sum = w.bias_value(n), oracle = w.bias_value(n), a = 0;
      for (int64_t k = 0; k < w.k(); ++k) {
        const double xv = x.get(m * w.k() + (w.has_perm() ? w.perm()[size_t(k)] : k));
        sum += xv * w16[size_t(n * w.k() + k)];
        oracle += xv * w64[size_t(n * w.k() + k)];
        a += std::abs(xv * w16[size_t(n * w.k() + k)]);
      }
      e.exact.push_back(sum);
      e.oracle.push_back(oracle);
      const double b = unit_roundoff(y_dtype) * std::abs(sum) + double(w.k() / 16 + 8 + splits) * std::ldexp(a, -22);
      e.bound.push_back(b + 1e-30);
      e.oracle_bound.push_back(b + 2 * unit_roundoff(act) * a + 1e-30);
    }
  }
  return e;
}

// Runs one gemm on the GPU (y poisoned first) and returns y as doubles.
std::vector<double> run(const test::HostMatrix& x, const CudaWeight& cw, DType y_dtype, CudaWorkspace& ws,
                        const CudaGemmOptions& o, cudaStream_t stream) {
  DeviceMem dx(bytes_of(x)), dy(size_t(x.rows * cw.n()) * dtype_size(y_dtype));
  EXPECT_EQ(cudaMemcpy(dx.p, x.data(), bytes_of(x), cudaMemcpyHostToDevice), cudaSuccess);
  EXPECT_EQ(cudaMemset(dy.p, 0xFF, size_t(x.rows * cw.n()) * dtype_size(y_dtype)), cudaSuccess);  // NaN
  gemm({dx.p, x.dtype, x.rows, x.cols}, cw, {dy.p, y_dtype, x.rows, cw.n()}, ws, stream, o);
  EXPECT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
  test::HostMatrix y(y_dtype, x.rows, cw.n());
  EXPECT_EQ(cudaMemcpy(y.data(), dy.p, bytes_of(y), cudaMemcpyDeviceToHost), cudaSuccess);
  std::vector<double> out(size_t(y.rows * y.cols));
  for (size_t i = 0; i < out.size(); ++i) out[i] = y.get(int64_t(i));
  return out;
}

struct Variant {
  const char* name;
  CudaGemmOptions options;
};

std::vector<Variant> variants() {
  std::vector<Variant> v;
  v.push_back({"auto", {}});
  CudaGemmOptions o;
  o.partition = Partition::data_parallel;
  v.push_back({"fused dp", o});
  o.partition = Partition::split_k;
  o.split_k = 3;
  v.push_back({"fused split-K 3", o});
  o.split_k = 2;
  o.atomic_split_k = true;
  v.push_back({"fused split-K 2 atomic", o});
  o = {};
  o.strategy = Strategy::decoupled;
  v.push_back({"decoupled", o});
  o.strategy = Strategy::dense;
  v.push_back({"dense", o});
  return v;
}

TEST(CudaGemm, EveryStrategyMatchesTheReference) {
  SKIP_WITHOUT_GPU();
  const std::vector<Case> cases = {
      {1, 4096, 256, 128}, {3, 200, 72, 64},    {16, 512, 100, 32},  {17, 1024, 192, 256},
      {33, 768, 64, 768},  {70, 384, 136, 128}, {128, 256, 512, 64}, {5, 100, 40, 100},
  };
  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreate(&stream), cudaSuccess);
  auto ws = std::make_unique<CudaWorkspace>();  // destroyed before the stream its cuBLAS handle uses
  uint64_t seed = 100;
  int checked = 0;
  for (const Case& c : cases) {
    for (const ZeroMode mode : {ZeroMode::sym, ZeroMode::asym, ZeroMode::float_zero}) {
      for (const DType act : {DType::f16, DType::bf16}) {
        // seed alternates with act: the other choices hash seed / 2 so that each meets both dtypes.
        const uint64_t h = seed / 2;
        const bool perm = seed % 3 == 0, bias = h % 2 == 0;
        const DType scale_dtype = (h / 2) % 2 ? DType::bf16 : DType::f16;
        // y cycles through fp16, bf16, fp32 independently of x: every (x, y) pair occurs, the
        // mixed 16-bit ones included (cuBLAS then writes fp32 and the epilogue converts).
        const DType y_dtype = std::array{DType::f16, DType::bf16, DType::f32}[size_t(seed % 3)];
        const QuantizedWeight w = test::random_weight(c.n, c.k, c.g, mode, scale_dtype, perm, seed, bias);
        const test::HostMatrix x = test::random_matrix(act, c.m, c.k, seed + 1);
        ++seed;
        const CudaWeight cw = to_cuda(w, act);
        for (const Variant& v : variants()) {
          const CudaPlan plan = plan_cuda_gemm(c.m, cw, v.options);
          const Expected e = expected_output(x, w, act, y_dtype, plan.split_k);
          const std::vector<double> y = run(x, cw, y_dtype, *ws, v.options, stream);
          const bool fused = plan.strategy == Strategy::fused;
          for (size_t i = 0; i < y.size(); ++i) {
            // Evaluated only when an assertion fails.
            const auto where = [&] {
              return std::string(v.name) + " " + std::to_string(c.m) + "x" + std::to_string(c.k) + "x" +
                     std::to_string(c.n) + " g=" + std::to_string(c.g) + " " + std::string(to_string(mode)) + " act " +
                     std::string(to_string(act)) + " y " + std::string(to_string(y_dtype)) +
                     (perm ? " act-order" : "") + (bias ? " bias" : "") + " at " + std::to_string(i);
            };
            ASSERT_TRUE(std::isfinite(y[i])) << where();
            // cuBLAS may split K its own way: the accumulation bound is the same form.
            ASSERT_NEAR(y[i], e.exact[i], fused ? e.bound[i] : 4 * e.bound[i]) << where();
            ASSERT_NEAR(y[i], e.oracle[i], e.oracle_bound[i] + (fused ? 0 : 3 * e.bound[i])) << where();
          }
          ++checked;
        }
      }
    }
  }
  EXPECT_EQ(checked, int(cases.size()) * 3 * 2 * int(variants().size()));
  ws.reset();
  cudaStreamDestroy(stream);
}

TEST(CudaGemm, SplitKIsDeterministicAndTheWorkspaceStopsGrowing) {
  SKIP_WITHOUT_GPU();
  const QuantizedWeight w = test::random_weight(320, 4096, 128, ZeroMode::asym, DType::f16, false, 7, true);
  const test::HostMatrix x = test::random_matrix(DType::bf16, 9, 4096, 8);
  const CudaWeight cw = to_cuda(w, DType::bf16);
  CudaWorkspace ws;
  CudaGemmOptions o;
  o.split_k = 5;
  const std::vector<double> first = run(x, cw, DType::f32, ws, o, nullptr);
  const int64_t grown = ws.bytes();
  EXPECT_GT(grown, 0);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(run(x, cw, DType::f32, ws, o, nullptr), first) << "split-K 5 changed between runs";
    EXPECT_EQ(ws.bytes(), grown);
  }
}

// The decoupled stage kernel writes exactly the 16-bit weights the host decode computes.
TEST(CudaGemm, DequantKernelIsTheHostDecodeBitForBit) {
  SKIP_WITHOUT_GPU();
  for (const ZeroMode mode : {ZeroMode::sym, ZeroMode::asym, ZeroMode::float_zero}) {
    for (const DType act : {DType::f16, DType::bf16}) {
      const QuantizedWeight w = test::random_weight(200, 328, 64, mode, DType::f16, false, 11);
      const CudaWeight cw = to_cuda(w, act);
      const cuda::GpuPackedWeight p = cuda::pack_gpu(w, act);
      const int64_t ld = p.k_slabs * 16;
      DeviceMem out(size_t(p.n * ld * 2));
      cuda::launch_dequant(cw.impl().arrays(), out.p, ld, nullptr);
      ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
      std::vector<uint16_t> got(size_t(p.n * ld));
      ASSERT_EQ(cudaMemcpy(got.data(), out.p, got.size() * 2, cudaMemcpyDeviceToHost), cudaSuccess);
      for (int64_t n = 0; n < p.n; ++n)
        for (int64_t k = 0; k < p.k; ++k)
          ASSERT_EQ(got[size_t(n * ld + k)], cuda::gpu_weight(p, n, k))
              << to_string(mode) << " " << to_string(act) << " n=" << n << " k=" << k;
    }
  }
}

TEST(CudaGemm, BadArgumentsAreErrorsNotCrashes) {
  SKIP_WITHOUT_GPU();
  const QuantizedWeight w = test::random_weight(64, 128, 32, ZeroMode::sym, DType::f16, false, 3);
  const CudaWeight cw = to_cuda(w, DType::f16);
  CudaWorkspace ws;
  DeviceMem dx(4 * 128 * 2), dy(4 * 64 * 2);
  std::vector<uint16_t> host(4 * 128);
  const auto expect_invalid = [&](const MatrixRef& x, const MutableMatrixRef& y, const std::string& what) {
    try {
      gemm(x, cw, y, ws);
      ADD_FAILURE() << what << ": accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::invalid_argument) << what << ": " << e.what();
    }
  };
  expect_invalid({host.data(), DType::f16, 4, 128}, {dy.p, DType::f16, 4, 64}, "host x");
  expect_invalid({dx.p, DType::bf16, 4, 128}, {dy.p, DType::f16, 4, 64}, "x of another dtype");
  expect_invalid({dx.p, DType::f16, 4, 127}, {dy.p, DType::f16, 4, 64}, "x with the wrong K");
  expect_invalid({dx.p, DType::f16, 4, 128}, {dy.p, DType::f16, 3, 64}, "y with the wrong M");
  CudaGemmOptions pipelined;
  pipelined.strategy = Strategy::pipelined;
  EXPECT_THROW(gemm({dx.p, DType::f16, 4, 128}, cw, {dy.p, DType::f16, 4, 64}, ws, nullptr, pipelined), Error);
  // M = 0 is a no-op, even with null pointers.
  EXPECT_NO_THROW(gemm({nullptr, DType::f16, 0, 128}, cw, {nullptr, DType::f16, 0, 64}, ws));
}

#else

TEST(CudaGemm, NeedsTheCudaBuild) { GTEST_SKIP() << "built without the CUDA backend (W4A16_CUDA=OFF or no nvcc)"; }

#endif

}  // namespace
}  // namespace w4a16
