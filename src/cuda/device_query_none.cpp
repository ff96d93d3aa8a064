// Built without the CUDA backend: there is nothing to query.
#include "cuda/device_query.hpp"

namespace w4a16::cuda {

DeviceQuery query_devices() { return {false, {}, "built without CUDA (W4A16_CUDA=OFF or no nvcc)"}; }

}  // namespace w4a16::cuda
