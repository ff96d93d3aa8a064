// Which CUDA devices this process can use (for `w4a16 info` and for skipping GPU tests).
#pragma once

#include <string>
#include <vector>

namespace w4a16::cuda {

struct DeviceQuery {
  bool built = false;                // the library was compiled with the CUDA backend
  std::vector<std::string> devices;  // "NVIDIA H100 80GB HBM3 (sm_90, 132 SMs, 79.1 GiB)"
  std::string note;                  // why the list is empty, when it is
};

DeviceQuery query_devices();

}  // namespace w4a16::cuda
