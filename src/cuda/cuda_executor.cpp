// The CUDA backend's executor: device memory, the upload of a packed weight, and one call's stages
// (prepare_x -> fused [-> reduce, atomic split-K] | dequant -> cuBLAS [-> bias epilogue]) queued on the caller's
// stream. It decides nothing: cuda_plan.cpp did.
#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <exception>

#include "common/check.hpp"
#include "cuda/cuda_objects.hpp"
#include "cuda/gpu_pack.hpp"

namespace w4a16::cuda {

void check(cudaError_t status, const char* what) {
  if (status != cudaSuccess) fail(ErrorCode::internal, "cuda: {} failed: {}", what, cudaGetErrorString(status));
}

namespace {

void check_launch(const char* what) {
  const char* error = last_launch_error();
  if (*error) fail(ErrorCode::internal, "cuda: launching {} failed: {}", what, error);
}

}  // namespace

// Makes `device` current for the scope and restores the caller's device after.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device) {
    check(cudaGetDevice(&previous_), "cudaGetDevice");
    if (previous_ != device) check(cudaSetDevice(device), "cudaSetDevice");
  }
  ~DeviceGuard() { cudaSetDevice(previous_); }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = 0;
};

namespace {

template <typename T>
DeviceBuffer upload_vector(int device, const std::vector<T>& v) {
  if (v.empty()) return {};
  DeviceBuffer b(device, int64_t(v.size() * sizeof(T)));
  check(cudaMemcpy(b.get(), v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice), "cudaMemcpy");
  return b;
}

Elem elem_of(DType d) { return d == DType::f16 ? Elem::f16 : d == DType::bf16 ? Elem::bf16 : Elem::f32; }
cudaDataType_t cublas_type(DType d) {
  return d == DType::f16 ? CUDA_R_16F : d == DType::bf16 ? CUDA_R_16BF : CUDA_R_32F;
}

char* at(CudaWorkspace::Impl& ws, int64_t offset) { return static_cast<char*>(ws.buffer.get()) + offset; }

cublasHandle_t cublas_for(CudaWorkspace::Impl& ws, const CudaLaunchPlan& plan, cudaStream_t stream) {
  if (!ws.cublas) {
    cublasHandle_t h = nullptr;
    if (cublasCreate(&h) != CUBLAS_STATUS_SUCCESS) fail(ErrorCode::internal, "cuda: cublasCreate failed");
    ws.cublas = h;
  }
  auto h = static_cast<cublasHandle_t>(ws.cublas);
  // Reductions inside cuBLAS stay in fp32 (the default allows them in the 16-bit output type).
  if (cublasSetMathMode(h, cublasMath_t(CUBLAS_DEFAULT_MATH | CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION)) !=
          CUBLAS_STATUS_SUCCESS ||
      cublasSetStream(h, stream) != CUBLAS_STATUS_SUCCESS ||
      cublasSetWorkspace(h, at(ws, plan.workspace.cublas_offset), size_t(plan.workspace.cublas_bytes)) !=
          CUBLAS_STATUS_SUCCESS) {
    fail(ErrorCode::internal, "cuda: configuring the cuBLAS handle failed");
  }
  return h;
}

// out[m][n] = x[m][k] * W[n][k]^T with W row-major [n][w_ld]: in cuBLAS's column-major terms
// out^T (n x m, ld n) = W^T... i.e. op(A) = A^T with A = W as a (k x n, lda w_ld) matrix.
void cublas_gemm(cublasHandle_t h, const void* w16, int64_t w_ld, DType w_dtype, const void* x, int64_t x_ld, int64_t m,
                 int64_t k, int64_t n, void* out, DType out_dtype) {
  const float alpha = 1.f, beta = 0.f;
  const cublasStatus_t s = cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, int(n), int(m), int(k), &alpha, w16,
                                        cublas_type(w_dtype), int(w_ld), x, cublas_type(w_dtype), int(x_ld), &beta, out,
                                        cublas_type(out_dtype), int(n), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
  if (s != CUBLAS_STATUS_SUCCESS) fail(ErrorCode::internal, "cuda: cublasGemmEx failed (status {})", int(s));
}

}  // namespace

DeviceBuffer::DeviceBuffer(int device, int64_t bytes) : device_(device), bytes_(bytes) {
  if (bytes == 0) return;
  DeviceGuard guard(device);
  const cudaError_t s = cudaMalloc(&ptr_, size_t(bytes));
  if (s != cudaSuccess) {
    ptr_ = nullptr;
    bytes_ = 0;
    fail(ErrorCode::io, "cuda: allocating {} bytes on device {} failed: {}", bytes, device, cudaGetErrorString(s));
  }
}

DeviceBuffer::~DeviceBuffer() {
  if (!ptr_) return;
  int previous = 0;
  cudaGetDevice(&previous);
  cudaSetDevice(device_);
  cudaFree(ptr_);
  cudaSetDevice(previous);
}

void zero_device(const DeviceBuffer& b) {
  if (b.bytes() == 0) return;
  DeviceGuard guard(b.device());
  check(cudaMemset(b.get(), 0, size_t(b.bytes())), "cudaMemset");
  check(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
}

bool is_capturing(void* stream) {
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  check(cudaStreamIsCapturing(static_cast<cudaStream_t>(stream), &status), "cudaStreamIsCapturing");
  return status != cudaStreamCaptureStatusNone;
}

int resolve_device(int device) {
  require(device >= -1, "cuda: device index {} is invalid (-1 = the current device, else 0, 1, ...)", device);
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
    fail(ErrorCode::unsupported, "cuda: no usable CUDA device ({})", cuda_devices().note);
  }
  require(device < count, "cuda: device {} does not exist ({} device{})", device, count, count == 1 ? "" : "s");
  if (device == -1) check(cudaGetDevice(&device), "cudaGetDevice");
  return device;
}

int device_sm_count(int device) {
  int sms = 0;
  check(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device), "cudaDeviceGetAttribute");
  return sms;
}

void check_device_pointer(const void* p, int device, const char* what) {
  cudaPointerAttributes attr{};
  if (cudaPointerGetAttributes(&attr, p) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky-free error of an unknown pointer
    fail(ErrorCode::invalid_argument, "cuda gemm: {} is not CUDA memory", what);
  }
  const bool usable =
      attr.type == cudaMemoryTypeManaged || (attr.type == cudaMemoryTypeDevice && attr.device == device);
  require(usable, "cuda gemm: {} must be device memory on device {} (got {} memory{})", what, device,
          attr.type == cudaMemoryTypeHost           ? "pinned host"
          : attr.type == cudaMemoryTypeUnregistered ? "host"
                                                    : "device",
          attr.type == cudaMemoryTypeDevice ? fmt::format(" of device {}", attr.device) : std::string());
}

std::unique_ptr<CudaWeight::Impl> upload(const QuantizedWeight& w, DType act, int device) {
  DeviceGuard guard(device);
  int major = 0;
  check(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device), "cudaDeviceGetAttribute");
  if (major < 8) {
    fail(ErrorCode::unsupported,
         "cuda: device {} is sm_{}x; the kernels need sm_80 or newer (mma.m16n8k16 bf16, cp.async)", device, major);
  }
  const GpuPackedWeight p = pack_gpu(w, act);
  auto impl = std::make_unique<CudaWeight::Impl>();
  impl->device = device;
  impl->sms = device_sm_count(device);
  const Elem elem = act == DType::bf16 ? Elem::bf16 : Elem::f16;
  for (int i = 0; i < 3; ++i) impl->resident[i] = fused_resident_blocks(16 << i, elem);
  impl->n = p.n;
  impl->k = p.k;
  impl->n_slabs = p.n_slabs;
  impl->k_slabs = p.k_slabs;
  impl->group_size = p.group_size;
  impl->groups = p.groups;
  impl->act = act;
  impl->codes = upload_vector(device, p.codes);
  impl->scales = upload_vector(device, p.scales);
  impl->offsets = upload_vector(device, p.offsets);
  impl->zero_adds = upload_vector(device, p.zero_adds);
  impl->perm = upload_vector(device, p.perm);
  if (w.has_bias()) {
    std::vector<float> bias(size_t(w.n()));
    for (int64_t i = 0; i < w.n(); ++i) bias[size_t(i)] = w.bias_value(i);
    impl->bias = upload_vector(device, bias);
  }
  return impl;
}

std::unique_ptr<CudaWeight::Impl> clone(const CudaWeight::Impl& w) {
  DeviceGuard guard(w.device);
  auto c = std::make_unique<CudaWeight::Impl>();
  c->device = w.device;
  c->sms = w.sms;
  for (int i = 0; i < 3; ++i) c->resident[i] = w.resident[i];
  c->n = w.n;
  c->k = w.k;
  c->n_slabs = w.n_slabs;
  c->k_slabs = w.k_slabs;
  c->group_size = w.group_size;
  c->groups = w.groups;
  c->act = w.act;
  const auto copy = [&](const DeviceBuffer& from) {
    DeviceBuffer to(w.device, from.bytes());
    if (from.bytes())
      check(cudaMemcpy(to.get(), from.get(), size_t(from.bytes()), cudaMemcpyDeviceToDevice), "cudaMemcpy");
    return to;
  };
  c->codes = copy(w.codes);
  c->scales = copy(w.scales);
  c->offsets = copy(w.offsets);
  c->zero_adds = copy(w.zero_adds);
  c->perm = copy(w.perm);
  c->bias = copy(w.bias);
  return c;
}

void execute(const CudaLaunchPlan& plan, const MatrixRef& x, CudaWeight::Impl& w, const MutableMatrixRef& y,
             CudaWorkspace::Impl& ws, void* stream_ptr) {
  DeviceGuard guard(w.device);
  const auto stream = static_cast<cudaStream_t>(stream_ptr);
  const CudaPlan& p = plan.public_plan;
  const DeviceArrays arrays = w.arrays();
  const int64_t m = x.rows, k_pad = w.k_slabs * 16;
  float* partials = reinterpret_cast<float*>(at(ws, plan.workspace.partials_offset));

  const void* xk = x.data;  // the x the kernels read
  if (plan.prepare_x) {
    void* prepared = at(ws, plan.workspace.x_offset);
    launch_prepare_x(x.data, x.cols, m, w.k, arrays.perm, elem_of(x.dtype), prepared, plan.x_ld, stream);
    check_launch("prepare_x");
    xk = prepared;
  }

  if (p.strategy == Strategy::fused) {
    FusedArgs a;
    a.w = arrays;
    a.x = xk;
    a.x_ld = plan.x_ld;
    a.m = m;
    a.tile_rows = p.tile_rows;
    a.splits = p.split_k;
    a.slabs_per_split = plan.slabs_per_split;
    a.y = y.data;
    a.y_dtype = elem_of(y.dtype);
    a.partials = partials;
    a.counters = reinterpret_cast<unsigned*>(at(ws, plan.workspace.counters_offset));
    a.output = p.split_k == 1 ? FusedOutput::direct : p.atomic_split_k ? FusedOutput::atomic : FusedOutput::partials;
    if (a.output == FusedOutput::atomic) {
      check(cudaMemsetAsync(partials, 0, size_t(plan.workspace.partials_bytes), stream), "cudaMemsetAsync");
    }
    launch_fused_gemm(a, stream);
    check_launch("the fused kernel");
    if (a.output == FusedOutput::atomic) {
      launch_reduce_partials(partials, 1, m, w.n, arrays.bias, y.data, a.y_dtype, stream);
      check_launch("the split-K reduction");
    }
    return;
  }

  // decoupled / dense: a 16-bit W, then cuBLAS.
  const void* w16 = nullptr;
  if (p.strategy == Strategy::decoupled) {
    void* panel = at(ws, plan.workspace.w16_offset);
    launch_dequant(arrays, panel, k_pad, stream);
    check_launch("the dequantization kernel");
    w16 = panel;
  } else {
    std::lock_guard<std::mutex> lock(w.dense_mutex);
    if (!w.dense.get()) {
      require(!is_capturing(stream),
              "cuda gemm: the dense strategy makes its 16-bit copy of W on its first call, which cannot happen "
              "during a CUDA graph capture: make one dense call before capturing");
      DeviceBuffer dense(w.device, w.n * k_pad * 2);
      launch_dequant(arrays, dense.get(), k_pad, stream);
      check_launch("the dequantization kernel");
      check(cudaStreamSynchronize(stream), "cudaStreamSynchronize");  // other streams may use it next
      w.dense = std::move(dense);
    }
    w16 = w.dense.get();
  }
  cublasHandle_t h = cublas_for(ws, plan, stream);
  if (plan.bias_epilogue) {
    cublas_gemm(h, w16, k_pad, w.act, xk, plan.x_ld, m, w.k, w.n, partials, DType::f32);
    launch_reduce_partials(partials, 1, m, w.n, arrays.bias, y.data, elem_of(y.dtype), stream);
    check_launch("the bias epilogue");
  } else {
    cublas_gemm(h, w16, k_pad, w.act, xk, plan.x_ld, m, w.k, w.n, y.data, y.dtype);
  }
}

}  // namespace w4a16::cuda

namespace w4a16 {

CudaWorkspace::Impl::~Impl() {
  if (cublas) cublasDestroy(static_cast<cublasHandle_t>(cublas));
}

}  // namespace w4a16

namespace w4a16 {

void cuda_gemm_from_host(const MatrixRef& x, const CudaWeight& w, const MutableMatrixRef& y,
                         const CudaGemmOptions& options) {
  const CudaWeight::Impl& wi = w.impl();
  require(x.rows >= 0 && y.rows == x.rows, "cuda gemm: x has {} rows, y {}", x.rows, y.rows);
  const auto x_bytes = checked_mul(checked_mul(x.rows, x.cols).value_or(-1), int64_t(dtype_size(x.dtype)));
  const auto y_bytes = checked_mul(checked_mul(y.rows, y.cols).value_or(-1), int64_t(dtype_size(y.dtype)));
  require(x_bytes && y_bytes, "cuda gemm: x or y is too large");
  cuda::DeviceGuard guard(wi.device);
  cuda::DeviceBuffer dx(wi.device, *x_bytes), dy(wi.device, *y_bytes);
  cudaStream_t stream = nullptr;
  cuda::check(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate");
  std::exception_ptr failure;
  {
    CudaWorkspace workspace;  // destroyed (with its cuBLAS handle) before the stream
    try {
      // Copies on the call's stream: a non-blocking stream does not wait for the legacy one.
      if (*x_bytes) {
        cuda::check(cudaMemcpyAsync(dx.get(), x.data, size_t(*x_bytes), cudaMemcpyHostToDevice, stream), "cudaMemcpy");
      }
      gemm({dx.get(), x.dtype, x.rows, x.cols}, w, {dy.get(), y.dtype, y.rows, y.cols}, workspace, stream, options);
      if (*y_bytes) {
        cuda::check(cudaMemcpyAsync(y.data, dy.get(), size_t(*y_bytes), cudaMemcpyDeviceToHost, stream), "cudaMemcpy");
      }
      cuda::check(cudaStreamSynchronize(stream), "the gemm");
    } catch (...) {
      failure = std::current_exception();
      cudaStreamSynchronize(stream);
    }
  }
  cudaStreamDestroy(stream);
  if (failure) std::rethrow_exception(failure);
}

}  // namespace w4a16
