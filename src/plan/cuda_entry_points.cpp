// The public CUDA gemm and planning entry points: plan (gpu_planner.hpp), then execute
// (cuda/cuda_objects.hpp). The CUDA objects themselves (weights, workspaces) are cuda/cuda_api.cpp's.
#include <cstdint>

#include "common/check.hpp"
#include "cuda/cuda_objects.hpp"
#include "plan/gpu_planner.hpp"
#include "w4a16/w4a16.hpp"

namespace w4a16 {

namespace {

// What the planner reads of one call: the shape, the weight's layout and its device's occupancy.
cuda::CudaShape shape_of(int64_t m, const CudaWeight::Impl& w, const void* x, DType y_dtype) {
  require(m >= 0, "cuda: M = {} < 0", m);
  const auto mk = checked_mul(m, w.k), mn = checked_mul(m, w.n);
  require(mk && mn && *mk <= kMaxGemmElements && *mn <= kMaxGemmElements,
          "cuda: M = {} makes M*K or M*N exceed the limit of {} elements", m, kMaxGemmElements);
  cuda::CudaShape sh;
  sh.m = m;
  sh.k = w.k;
  sh.n = w.n;
  sh.n_slabs = w.n_slabs;
  sh.k_slabs = w.k_slabs;
  sh.sms = w.sms;
  sh.has_perm = w.perm.get() != nullptr;
  sh.has_bias = w.bias.get() != nullptr;
  sh.x_direct = w.k % 8 == 0 && reinterpret_cast<uintptr_t>(x) % 16 == 0;
  sh.act = w.act;
  sh.y_dtype = y_dtype;
  for (int i = 0; i < 3; ++i) sh.resident[i] = w.resident[i];
  return sh;
}

}  // namespace

CudaPlan plan_cuda_gemm(int64_t m, const CudaWeight& w, const CudaGemmOptions& options, std::optional<DType> y) {
  return plan::plan_cuda(shape_of(m, w.impl(), nullptr, y.value_or(w.impl().act)), options).public_plan;
}

void gemm(const MatrixRef& x, const CudaWeight& w, const MutableMatrixRef& y, CudaWorkspace& workspace, void* stream,
          const CudaGemmOptions& options) {
  CudaWeight::Impl& wi = w.impl();
  require(x.dtype == wi.act, "cuda gemm: x is {} but the weight was packed for {} activations", to_string(x.dtype),
          to_string(wi.act));
  require(x.rows >= 0 && x.cols == wi.k, "cuda gemm: x is {}x{}, the weight needs K = {} columns", x.rows, x.cols,
          wi.k);
  require(y.rows == x.rows && y.cols == wi.n, "cuda gemm: y is {}x{}, expected {}x{}", y.rows, y.cols, x.rows, wi.n);
  if (x.rows == 0) return;
  require(x.data != nullptr && y.data != nullptr, "cuda gemm: null x or y");
  cuda::check_device_pointer(x.data, wi.device, "x");
  cuda::check_device_pointer(y.data, wi.device, "y");
  const cuda::CudaLaunchPlan plan = plan::plan_cuda(shape_of(x.rows, wi, x.data, y.dtype), options);
  if (workspace.bytes() < plan.workspace.total) {
    require(!cuda::is_capturing(stream),
            "cuda gemm: the workspace must grow to {} bytes, which cannot happen during a CUDA graph capture: "
            "call CudaWorkspace::reserve(plan_cuda_gemm(...).workspace_bytes) (or run the call once) before capturing",
            plan.workspace.total);
  }
  workspace.reserve(plan.workspace.total, wi.device);
  cuda::execute(plan, x, wi, y, workspace.impl(), stream);
}

}  // namespace w4a16
