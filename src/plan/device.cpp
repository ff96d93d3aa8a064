// Device lookup by name and the bandwidth interpolation every formula of the cost model uses.
#include "plan/device.hpp"

#include <algorithm>
#include <cmath>

#include "common/check.hpp"
#include "plan/devices/cpu.hpp"
#include "plan/devices/devices.hpp"
#include "plan/plan_cache.hpp"

namespace w4a16::plan {

std::string_view to_string(DeviceKind kind) {
  switch (kind) {
    case DeviceKind::cpu:
      return "cpu";
    case DeviceKind::gpu:
      return "gpu";
    case DeviceKind::npu:
      return "npu";
  }
  return "?";
}

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

std::vector<std::string> device_names() {
  return {"cpu", "h100", "h200", "a100", "ascend910b2", "ascend910b3", "ascend910b4"};
}

Device device(std::string_view name) {
  if (name == "cpu") return *cpu_device();
  if (name == "h100") return devices::h100_sxm();
  if (name == "h200") return devices::h200();
  if (name == "a100") return devices::a100();
  if (name == "ascend910b2") return devices::ascend910b2();
  if (name == "ascend910b3") return devices::ascend910b3();
  if (name == "ascend910b4") return devices::ascend910b4();
  std::string known;
  for (const auto& n : device_names()) known += (known.empty() ? "" : ", ") + n;
  fail(ErrorCode::invalid_argument, "unknown device '{}' (expected one of {})", name, known);
}

}  // namespace w4a16::plan
