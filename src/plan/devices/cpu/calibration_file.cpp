// The calibration file's JSON: what `w4a16 calibrate` writes and every later process's "cpu" description
// reads back, trusting it only when it parses, is in range, and was written on this CPU.
#include "plan/devices/cpu/calibration_file.hpp"

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "common/check.hpp"
#include "common/host.hpp"
#include "cpu/thread_pool.hpp"
#include "io/atomic_file.hpp"

namespace w4a16::plan::devices {

namespace {

constexpr int kCalibrationVersion = 2;  // 2: in-core scales

nlohmann::json rates_json(const std::map<int, double>& r) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [t, v] : r) j[std::to_string(t)] = v;
  return j;
}

nlohmann::json scales_json(const InCoreScales& scales) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [strategy, by] : scales) {
    auto& list = j[strategy] = nlohmann::json::array();
    for (const auto& [key, scale] : by) list.push_back({{"threads", key.first}, {"m", key.second}, {"scale", scale}});
  }
  return j;
}

// Throws on anything but positive finite scales keyed by positive thread counts and M.
InCoreScales scales_from(const nlohmann::json& j) {
  InCoreScales out;
  for (const auto& [strategy, list] : j.items()) {
    for (const auto& e : list) {
      const int t = e.at("threads").get<int>();
      const int64_t m = e.at("m").get<int64_t>();
      const double v = e.at("scale").get<double>();
      if (t < 1 || t > 4096 || m < 1 || m > (int64_t(1) << 30) || !(v > 0 && v < 1e3))
        throw std::runtime_error("bad scale");
      out[strategy][{t, m}] = v;
    }
  }
  return out;
}

// Throws on anything but positive finite rates keyed by positive thread counts.
std::map<int, double> rates_from(const nlohmann::json& j) {
  std::map<int, double> r;
  for (const auto& [key, value] : j.items()) {
    const int t = std::stoi(key);
    const double v = value.get<double>();
    if (t < 1 || t > 4096 || !(v > 0 && v < 1e9)) throw std::runtime_error("bad rate");
    r[t] = v;
  }
  return r;
}

}  // namespace

std::filesystem::path calibration_path() {
  if (const char* p = std::getenv("W4A16_CALIBRATION"); p && *p) return p;
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x)
    return std::filesystem::path(x) / "w4a16/calibration.json";
  if (const char* h = std::getenv("HOME"); h && *h) return std::filesystem::path(h) / ".cache/w4a16/calibration.json";
  return "w4a16-calibration.json";
}

std::optional<CpuCalibration> load_calibration() {
  std::ifstream in(calibration_path());
  if (!in) return std::nullopt;
  try {
    const auto j = nlohmann::json::parse(in);
    if (j.at("version").get<int>() != kCalibrationVersion) return std::nullopt;
    CpuCalibration c;
    c.cpu = j.at("cpu").get<std::string>();
    c.threads = j.at("threads").get<int>();
    c.read_gbps = rates_from(j.at("read_gbps"));
    c.fma_gflops = rates_from(j.at("fma_gflops"));
    c.dot_gflops = rates_from(j.at("dot_gflops"));
    c.fork_join_us = j.at("fork_join_us").get<double>();
    c.incore_scale = scales_from(j.at("incore_scale"));
    if (c.cpu != host::cpu_name() || c.threads != cpu::available_cpus() || c.read_gbps.empty()) return std::nullopt;
    if (!(c.fork_join_us >= 0 && c.fork_join_us < 1e6)) return std::nullopt;
    return c;
  } catch (const std::exception&) {
    return std::nullopt;  // damaged or foreign: measured again by the next `w4a16 calibrate`
  }
}

void save_calibration(const CpuCalibration& c) {
  const auto path = calibration_path();
  std::error_code ec;
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path(), ec);
  const nlohmann::json j = {{"version", kCalibrationVersion},
                            {"cpu", c.cpu},
                            {"threads", c.threads},
                            {"read_gbps", rates_json(c.read_gbps)},
                            {"fma_gflops", rates_json(c.fma_gflops)},
                            {"dot_gflops", rates_json(c.dot_gflops)},
                            {"fork_join_us", c.fork_join_us},
                            {"incore_scale", scales_json(c.incore_scale)}};
  io::AtomicFile out(path);
  out.write(j.dump(2) + "\n");
  out.commit();
}

}  // namespace w4a16::plan::devices
