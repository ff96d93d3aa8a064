// Built without the CUDA backend: the API exists, and says so.
#include "common/check.hpp"
#include "cuda/cuda_objects.hpp"

namespace w4a16::cuda {

namespace {
[[noreturn]] void not_built() {
  fail(ErrorCode::unsupported,
       "cuda: this build of w4a16 has no CUDA backend (configure with the CUDA toolkit installed, W4A16_CUDA=AUTO or "
       "ON)");
}
}  // namespace

DeviceBuffer::DeviceBuffer(int, int64_t) { not_built(); }
DeviceBuffer::~DeviceBuffer() = default;
void zero_device(const DeviceBuffer&) { not_built(); }
int resolve_device(int device) {
  require(device >= -1, "cuda: device index {} is invalid (-1 = the current device, else 0, 1, ...)", device);
  not_built();
}
bool is_capturing(void*) { not_built(); }
int device_sm_count(int) { not_built(); }
void check_device_pointer(const void*, int, const char*) { not_built(); }
std::unique_ptr<CudaWeight::Impl> upload(const QuantizedWeight&, DType, int) { not_built(); }
std::unique_ptr<CudaWeight::Impl> clone(const CudaWeight::Impl&) { not_built(); }
void execute(const CudaLaunchPlan&, const MatrixRef&, CudaWeight::Impl&, const MutableMatrixRef&, CudaWorkspace::Impl&,
             void*) {
  not_built();
}

}  // namespace w4a16::cuda

namespace w4a16 {
CudaWorkspace::Impl::~Impl() = default;
void cuda_gemm_from_host(const MatrixRef&, const CudaWeight&, const MutableMatrixRef&, const CudaGemmOptions&) {
  cuda::resolve_device(-1);  // throws: not built
}
}  // namespace w4a16
