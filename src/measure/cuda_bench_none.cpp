// Built without the CUDA backend: `w4a16 bench --backend cuda` says so.
#include "common/check.hpp"
#include "measure/cuda_bench.hpp"

namespace w4a16::measure {

int run_cuda_bench(const CudaBenchConfig&) {
  fail(ErrorCode::unsupported,
       "bench --backend cuda: this build of w4a16 has no CUDA backend (configure with the "
       "CUDA toolkit installed, W4A16_CUDA=AUTO or ON)");
}

}  // namespace w4a16::measure
