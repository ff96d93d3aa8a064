// Facts about the host that the planner, the measurement engine and the benchmarks all need:
// cache sizes and the CPU's name. Read once from the OS; no measurement here.
#pragma once

#include <cstdint>
#include <fstream>
#include <string>

#include "w4a16/w4a16.hpp"

namespace w4a16::host {

// Size of a cache level from sysfs (".../cpu0/cache/index<i>/size", e.g. "32768K"; index 2 is
// L2, 3 is L3), else `fallback`. Not sysconf(_SC_LEVEL3_CACHE_SIZE): glibc derives it from cpuid
// and reported 320 MiB for a 32 MiB L3 under KVM. The L3 fallback is 32 MiB (the Zen 4 dev
// machine's, `lscpu`: "L3 cache: 32 MiB (1 instance)").
inline int64_t cache_bytes(int index, int64_t fallback) {
  std::ifstream in("/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(index) + "/size");
  int64_t value = 0;
  char unit = 0;
  if (in >> value && value > 0) {
    if (in >> unit) value <<= (unit == 'K' ? 10 : unit == 'M' ? 20 : 0);
    return value;
  }
  return fallback;
}
inline int64_t l3_bytes() { return cache_bytes(3, int64_t(32) << 20); }

// The processor brand string, or the vendor where a hypervisor hides the brand.
inline std::string cpu_name() {
  const CpuInfo info = cpu_info();
  return info.brand.empty() ? info.vendor : info.brand;
}

}  // namespace w4a16::host
