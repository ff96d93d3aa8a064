// The registry of built-in device descriptions. Each file src/plan/devices/<name>.cpp defines one
// entry, `devices::entry_<name>`; the build lists the files of that folder (cmake/registry.cmake,
// the generated plan/device_list.inc), so adding a device is adding its file: nothing else names it.
// device_names() and device() (device.hpp) read this list.
#pragma once

#include <string_view>
#include <vector>

#include "plan/device.hpp"

namespace w4a16::plan {

struct DeviceEntry {
  std::string_view name;           // the --device spelling; = the file's name (devices/h100.cpp -> "h100")
  int order = 0;                   // place in listings, smallest first: 0 "cpu", 10s NVIDIA GPUs, 20s Ascend NPUs
  std::string_view summary;        // one line: the card / SKU and where its figures come from ("cpu": this
                                   // machine, whose Device::summary names it at run time)
  Device (*describe)() = nullptr;  // the description, every constant commented with its source
};

// Every entry, by `order` (then by name). Built once; the pointers live as long as the program.
const std::vector<const DeviceEntry*>& device_entries();

}  // namespace w4a16::plan
