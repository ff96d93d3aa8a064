// Lists CUDA devices through the runtime API; a machine without a GPU gets a note, not an error.
#include <cuda_runtime.h>

#include <cstdio>

#include "cuda/device_query.hpp"

namespace w4a16::cuda {

DeviceQuery query_devices() {
  DeviceQuery q;
  q.built = true;
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    q.note = std::string("no usable CUDA device: ") + cudaGetErrorString(status);
    return q;
  }
  for (int i = 0; i < count; ++i) {
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, i) != cudaSuccess) continue;
    char line[640];  // the name is at most 256 bytes: the whole line fits
    std::snprintf(line, sizeof line, "%s (sm_%d%d, %d SMs, %.1f GiB)", prop.name, prop.major, prop.minor,
                  prop.multiProcessorCount, double(prop.totalGlobalMem) / (1024.0 * 1024.0 * 1024.0));
    q.devices.emplace_back(line);
  }
  if (q.devices.empty()) q.note = "no CUDA device found";
  return q;
}

}  // namespace w4a16::cuda
