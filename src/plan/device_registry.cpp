// The list of built-in devices, made from the generated plan/device_list.inc (one line per file of
// src/plan/devices/), and the lookups by name.
#include "plan/device_registry.hpp"

#include <algorithm>
#include <tuple>

#include "common/check.hpp"
#include "plan/devices/device_entry.hpp"

namespace w4a16::plan {

const std::vector<const DeviceEntry*>& device_entries() {
  static const std::vector<const DeviceEntry*> entries = [] {
    std::vector<const DeviceEntry*> list = {
#define W4A16_DEVICE(stem) &devices::entry_##stem,
#include "plan/device_list.inc"
#undef W4A16_DEVICE
    };
    std::sort(list.begin(), list.end(), [](const DeviceEntry* a, const DeviceEntry* b) {
      return std::tie(a->order, a->name) < std::tie(b->order, b->name);
    });
    return list;
  }();
  return entries;
}

std::vector<std::string> device_names() {
  std::vector<std::string> names;
  for (const DeviceEntry* e : device_entries()) names.emplace_back(e->name);
  return names;
}

Device device(std::string_view name) {
  for (const DeviceEntry* e : device_entries()) {
    if (e->name == name) return e->describe();
  }
  std::string known;
  for (const auto& n : device_names()) known += (known.empty() ? "" : ", ") + n;
  fail(ErrorCode::invalid_argument, "unknown device '{}' (expected one of {})", name, known);
}

}  // namespace w4a16::plan
