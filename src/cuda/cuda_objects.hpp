// What a CudaWeight and a CudaWorkspace hold, and the executor interface behind the public CUDA
// API: cuda_api.cpp checks arguments and plans (every build), cuda_executor.cpp talks to the CUDA
// runtime and cuBLAS (CUDA builds), cuda_executor_none.cpp says "built without CUDA" (the rest).
#pragma once

#include <cstdint>
#include <mutex>
#include <vector>

#include "cuda/cuda_plan.hpp"
#include "cuda/kernels.hpp"
#include "w4a16/w4a16.hpp"

namespace w4a16::cuda {

// Frees on its device when destroyed. Move-only.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(int device, int64_t bytes);  // allocates; throws Error(io) when the device is full
  DeviceBuffer(DeviceBuffer&& o) noexcept { swap(o); }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    DeviceBuffer(std::move(o)).swap(*this);
    return *this;
  }
  ~DeviceBuffer();
  void* get() const { return ptr_; }
  int device() const { return device_; }
  int64_t bytes() const { return bytes_; }
  template <typename T>
  T* as() const {
    return static_cast<T*>(ptr_);
  }

 private:
  void swap(DeviceBuffer& o) noexcept {
    std::swap(device_, o.device_);
    std::swap(ptr_, o.ptr_);
    std::swap(bytes_, o.bytes_);
  }
  int device_ = -1;
  void* ptr_ = nullptr;
  int64_t bytes_ = 0;
};

}  // namespace w4a16::cuda

namespace w4a16 {

struct CudaWeight::Impl {
  int device = 0;
  int sms = 0;
  int resident[3] = {0, 0, 0};  // fused-kernel blocks per SM for 16-, 32-, 64-row tiles
  int64_t n = 0, k = 0, n_slabs = 0, k_slabs = 0, group_size = 0, groups = 0;
  DType act = DType::f16;
  cuda::DeviceBuffer codes, scales, offsets, zero_adds, perm, bias;
  // Strategy::dense: the 16-bit W [n][k_slabs * 16], made by the first dense call.
  std::mutex dense_mutex;
  cuda::DeviceBuffer dense;

  cuda::DeviceArrays arrays() const;
};

struct CudaWorkspace::Impl {
  int device = -1;
  cuda::DeviceBuffer buffer;
  // Buffers replaced by a larger one, kept until the workspace goes: work still queued, or a CUDA
  // graph captured earlier, may use them.
  std::vector<cuda::DeviceBuffer> retired;
  void* cublas = nullptr;  // cublasHandle_t, created by the first cuBLAS call
  ~Impl();
};

}  // namespace w4a16

namespace w4a16::cuda {

// Sets every byte of b to 0 and waits (a new workspace: its split-K counters must start at 0).
void zero_device(const DeviceBuffer& b);
// The device a call's `device` argument names: -1 the caller's current device, 0..count-1 that
// device. Throws Error(invalid_argument) for an index below -1 or past the last device, and
// Error(unsupported) when no device is usable (or the build has no CUDA backend).
int resolve_device(int device);
// Whether `stream` (a cudaStream_t) is being captured into a CUDA graph (no allocation then).
bool is_capturing(void* stream);
int device_sm_count(int device);
// Throws Error(invalid_argument) unless p is device (or managed) memory usable on `device`.
void check_device_pointer(const void* p, int device, const char* what);
std::unique_ptr<CudaWeight::Impl> upload(const QuantizedWeight& w, DType act, int device);
// A copy of w on its device (device-to-device; the dense copy is not cloned): the benchmark's
// rotated weights without packing on the host again.
std::unique_ptr<CudaWeight::Impl> clone(const CudaWeight::Impl& w);
void execute(const CudaLaunchPlan& plan, const MatrixRef& x, CudaWeight::Impl& w, const MutableMatrixRef& y,
             CudaWorkspace::Impl& workspace, void* stream);

}  // namespace w4a16::cuda
