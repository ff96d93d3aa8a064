// The interpolations every formula of the cost model reads a Device through, and DeviceKind's names.
// The built-in descriptions and their lookup by name: device_registry.cpp.
#include "plan/device.hpp"

#include <algorithm>
#include <array>
#include <cmath>

#include "common/name_table.hpp"

namespace w4a16::plan {

namespace {

constexpr std::array<Named<DeviceKind>, 3> kDeviceKindNames = {{
    {DeviceKind::cpu, "cpu"},
    {DeviceKind::gpu, "gpu"},
    {DeviceKind::npu, "npu"},
}};

}  // namespace

std::string_view to_string(DeviceKind kind) { return name_of(kDeviceKindNames, kind); }

double Device::read_bw_at(int busy_cores) const {
  if (read_bw.empty()) return 0;
  const double t = std::max(1, busy_cores);
  auto hi = read_bw.lower_bound(int(t));
  if (hi == read_bw.end()) return std::prev(hi)->second;  // beyond the last measured count: flat
  if (hi->first == int(t)) return hi->second;
  if (hi == read_bw.begin()) return hi->second * t / hi->first;  // below the first: proportional
  const auto lo = std::prev(hi);
  const double f = (t - lo->first) / double(hi->first - lo->first);
  return lo->second + f * (hi->second - lo->second);
}

double Device::incore_scale_at(std::string_view strategy, int threads, int64_t m) const {
  const auto it = incore_scale.find(strategy);
  if (it == incore_scale.end() || it->second.empty()) return 1.0;
  const auto& by = it->second;  // ordered by (threads, M)
  int t = by.begin()->first.first;
  for (const auto& [key, scale] : by) {
    if (key.first <= threads) t = key.first;
  }
  const std::pair<int, int64_t> lo_key{t, 0}, hi_key{t + 1, 0};
  auto first = by.lower_bound(lo_key), last = by.lower_bound(hi_key);  // the entries of thread count t
  auto hi = std::find_if(first, last, [&](const auto& e) { return e.first.second >= m; });
  if (hi == first) return hi->second;              // at or below the smallest calibrated M
  if (hi == last) return std::prev(last)->second;  // beyond the largest
  const auto lo = std::prev(hi);
  const double x0 = std::log(double(lo->first.second)), x1 = std::log(double(hi->first.second));
  const double f = (std::log(double(m)) - x0) / (x1 - x0);
  return lo->second + f * (hi->second - lo->second);
}

}  // namespace w4a16::plan
