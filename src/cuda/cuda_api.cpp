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
  device = device == -1 && ws.device >= 0 ? ws.device : cuda::resolve_device(device);
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
  device = cuda::resolve_device(device);
  return CudaWeight(cuda::upload(w, act, device));
}

}  // namespace w4a16
