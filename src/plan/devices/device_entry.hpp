// Included by every file of src/plan/devices/ (and the registry): declares `entry_<name>` for each
// file of the folder, from the list the build generates (cmake/registry.cmake). A file then defines
// its own entry as
//
//   constinit const DeviceEntry entry_h100{.name = "h100", .order = 10, .summary = "...", .describe = &h100};
//
// which takes external linkage from the declaration below; a file whose entry is misnamed fails to link.
#pragma once

#include "plan/device_registry.hpp"

namespace w4a16::plan::devices {

#define W4A16_DEVICE(stem) extern const DeviceEntry entry_##stem;
#include "plan/device_list.inc"
#undef W4A16_DEVICE

}  // namespace w4a16::plan::devices
