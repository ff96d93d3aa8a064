// The public CUDA API's host half, the same in every build: object plumbing, argument checks,
// planning. The device work is cuda_executor.cpp's.
#include <algorithm>
#include <cstdint>

#include "common/check.hpp"
#include "cuda/cuda_objects.hpp"
#include "cuda/device_query.hpp"
#include "w4a16/w4a16.hpp"

namespace w4a16 {

CudaDevices cuda_devices() {
  const cuda::DeviceQuery q = cuda::query_devices();
  return {q.built, q.devices, q.note};
}

CudaWeight::CudaWeight() = default;
CudaWeight::CudaWeight(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
CudaWeight::CudaWeight(CudaWeight&&) noexcept = default;
CudaWeight& CudaWeight::operator=(CudaWeight&&) noexcept = default;
CudaWeight::~CudaWeight() = default;

cuda::DeviceArrays CudaWeight::Impl::arrays() const {
  cuda::DeviceArrays a;
  a.codes = codes.as<const uint32_t>();
  a.scales = scales.as<const uint16_t>();
  a.offsets = offsets.as<const uint16_t>();
  a.zero_adds = zero_adds.as<const uint16_t>();
  a.perm = perm.as<const int32_t>();
  a.bias = bias.as<const float>();
  a.n = n;
  a.k = k;
  a.n_slabs = n_slabs;
  a.k_slabs = k_slabs;
  a.group_size = group_size;
  a.groups = groups;
  a.act = act == DType::bf16 ? cuda::Elem::bf16 : cuda::Elem::f16;
  return a;
}

CudaWeight::Impl& CudaWeight::impl() const {
  require(impl_ != nullptr, "cuda: empty CudaWeight (default-constructed or moved from)");
  return *impl_;
}
int64_t CudaWeight::n() const { return impl().n; }
int64_t CudaWeight::k() const { return impl().k; }
DType CudaWeight::act() const { return impl().act; }
int CudaWeight::device() const { return impl().device; }
int64_t CudaWeight::device_bytes() const {
  const Impl& i = impl();
  return i.codes.bytes() + i.scales.bytes() + i.offsets.bytes() + i.zero_adds.bytes() + i.perm.bytes() +
         i.bias.bytes() + i.dense.bytes();
}

CudaWorkspace::CudaWorkspace() : impl_(std::make_unique<Impl>()) {}
CudaWorkspace::CudaWorkspace(CudaWorkspace&&) noexcept = default;
CudaWorkspace& CudaWorkspace::operator=(CudaWorkspace&&) noexcept = default;
CudaWorkspace::~CudaWorkspace() = default;
CudaWorkspace::Impl& CudaWorkspace::impl() {
  require(impl_ != nullptr, "cuda: moved-from CudaWorkspace");
  return *impl_;
}
int64_t CudaWorkspace::bytes() const { return impl_ ? impl_->buffer.bytes() : 0; }

void CudaWorkspace::reserve(int64_t bytes, int device) {
  require(bytes >= 0, "cuda: workspace size {} < 0", bytes);
  Impl& ws = impl();
  if (device < 0) device = ws.device >= 0 ? ws.device : cuda::current_device();
  require(ws.device < 0 || ws.device == device, "cuda: this workspace belongs to device {}, not {}", ws.device, device);
  ws.device = device;
  if (ws.buffer.bytes() < bytes) {
    // At least doubling, so that the retired buffers (kept alive: queued work and captured graphs
    // may use them) add up to less than the live one.
    cuda::DeviceBuffer grown(device, std::max(bytes, 2 * ws.buffer.bytes()));
    cuda::zero_device(grown);  // the split-K counters start at 0
    if (ws.buffer.get()) ws.retired.push_back(std::move(ws.buffer));
    ws.buffer = std::move(grown);
  }
}

CudaWeight to_cuda(const QuantizedWeight& w, DType act, int device) {
  require(act == DType::f16 || act == DType::bf16, "cuda: activations must be fp16 or bf16, got {}", to_string(act));
  if (device < 0) device = cuda::current_device();
  return CudaWeight(cuda::upload(w, act, device));
}

namespace {

cuda::CudaShape shape_of(int64_t m, const CudaWeight::Impl& w, const void* x, DType y_dtype) {
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
  require(m >= 0, "cuda: M = {} < 0", m);
  return cuda::plan_cuda(shape_of(m, w.impl(), nullptr, y.value_or(w.impl().act)), options).public_plan;
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
  const cuda::CudaLaunchPlan plan = cuda::plan_cuda(shape_of(x.rows, wi, x.data, y.dtype), options);
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
