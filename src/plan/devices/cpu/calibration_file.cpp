// The calibration file's JSON: what `w4a16 calibrate` writes and every later process's "cpu" description
// reads back, trusting it only when it is a regular file, parses, has every figure in range (the
// FigureRanges of the header), and was written on this CPU.
#include "plan/devices/cpu/calibration_file.hpp"

#include <charconv>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "common/check.hpp"
#include "common/host.hpp"
#include "cpu/thread_pool.hpp"
#include "io/atomic_file.hpp"
#include "io/input_file.hpp"
#include "io/quant_config.hpp"

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

// Why a file is not trusted, naming the key and value at fault: thrown by the readers below and
// caught by read_calibration_file(), which ignores the whole file.
struct Untrusted : std::runtime_error {
  using std::runtime_error::runtime_error;
};

constexpr uint64_t kMaxFileBytes = 1u << 20;  // a real file is a few KiB (a dozen figures per strategy)
constexpr int kMaxThreads = 4096;             // a thread-count key above this is not this machine's
constexpr int64_t kMaxM = int64_t(1) << 30;   // the largest M an in-core scale may be keyed by

// A value as the warning prints it: its JSON, cut after 40 bytes (a string value may be long).
std::string shown(const nlohmann::json& j) {
  std::string text = j.dump();
  if (text.size() > 40) text = text.substr(0, 40) + "...";
  return text;
}

const nlohmann::json& member(const nlohmann::json& object, const std::string& path, const char* key) {
  const auto it = object.find(key);
  if (it == object.end()) throw Untrusted(fmt::format("{}{} is missing", path, key));
  return *it;
}

// A number within `range` (so finite), or Untrusted naming `key` and the value.
double figure(const nlohmann::json& j, const std::string& key, const FigureRange& range) {
  if (!j.is_number()) throw Untrusted(fmt::format("{} = {} is not a number", key, shown(j)));
  const double v = j.get<double>();
  if (!(v >= range.lo && v <= range.hi)) {
    throw Untrusted(fmt::format("{} = {} is outside [{}, {}] {}", key, v, range.lo, range.hi, range.unit));
  }
  return v;
}

// An integer in [lo, hi] (a float such as 1e300 is refused, never converted), or Untrusted.
int64_t whole(const nlohmann::json& j, const std::string& key, int64_t lo, int64_t hi) {
  const bool in_range = j.is_number_unsigned()  ? j.get<uint64_t>() >= uint64_t(lo) && j.get<uint64_t>() <= uint64_t(hi)
                        : j.is_number_integer() ? j.get<int64_t>() >= lo && j.get<int64_t>() <= hi
                                                : false;
  if (!in_range) throw Untrusted(fmt::format("{} = {} is not an integer in [{}, {}]", key, shown(j), lo, hi));
  return j.get<int64_t>();
}

// A thread count spelled as an object key: decimal digits only, 1 to kMaxThreads.
int thread_key(const std::string& text, const std::string& key) {
  int t = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), t);
  if (error != std::errc() || end != text.data() + text.size() || t < 1 || t > kMaxThreads) {
    throw Untrusted(fmt::format("{} is not a thread count in [1, {}]", key, kMaxThreads));
  }
  return t;
}

// {"<threads>": rate, ...}, every rate within `range`.
std::map<int, double> rates_from(const nlohmann::json& j, const std::string& name, const FigureRange& range) {
  if (!j.is_object()) throw Untrusted(fmt::format("{} is not an object", name));
  std::map<int, double> r;
  for (const auto& [key, value] : j.items()) {
    const std::string where = fmt::format("{}[\"{}\"]", name, key);
    r[thread_key(key, where)] = figure(value, where, range);
  }
  return r;
}

// {"<strategy>": [{"threads": t, "m": m, "scale": s}, ...], ...}, every scale within range.
InCoreScales scales_from(const nlohmann::json& j) {
  if (!j.is_object()) throw Untrusted("incore_scale is not an object");
  InCoreScales out;
  for (const auto& [strategy, list] : j.items()) {
    const std::string name = fmt::format("incore_scale[\"{}\"]", strategy);
    if (!list.is_array()) throw Untrusted(fmt::format("{} is not an array", name));
    for (size_t i = 0; i < list.size(); ++i) {
      const std::string where = fmt::format("{}[{}].", name, i);
      const nlohmann::json& e = list[i];
      if (!e.is_object()) throw Untrusted(fmt::format("{}[{}] is not an object", name, i));
      const int t = int(whole(member(e, where, "threads"), where + "threads", 1, kMaxThreads));
      const int64_t m = whole(member(e, where, "m"), where + "m", 1, kMaxM);
      out[strategy][{t, m}] = figure(member(e, where, "scale"), where + "scale", kInCoreScaleRange);
    }
  }
  return out;
}

}  // namespace

std::filesystem::path calibration_path() {
  if (const char* p = std::getenv("W4A16_CALIBRATION"); p && *p) return p;
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x)
    return std::filesystem::path(x) / "w4a16/calibration.json";
  if (const char* h = std::getenv("HOME"); h && *h) return std::filesystem::path(h) / ".cache/w4a16/calibration.json";
  return "w4a16-calibration.json";
}

CalibrationFile read_calibration_file() {
  const auto path = calibration_path();
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return {};  // never calibrated: nothing to say
  try {
    const auto j = io::parse_bounded_json(io::read_text_file(path, kMaxFileBytes), path.string());
    if (!j.is_object()) throw Untrusted("the file is not a JSON object");
    const nlohmann::json& version = member(j, "", "version");
    if (version != kCalibrationVersion) return {};  // another version's: stale, measured again by calibrate
    CpuCalibration c;
    const nlohmann::json& cpu = member(j, "", "cpu");
    if (!cpu.is_string()) throw Untrusted(fmt::format("cpu = {} is not a string", shown(cpu)));
    c.cpu = cpu.get<std::string>();
    c.threads = int(whole(member(j, "", "threads"), "threads", 1, kMaxThreads));
    c.read_gbps = rates_from(member(j, "", "read_gbps"), "read_gbps", kReadGbpsRange);
    if (c.read_gbps.empty()) throw Untrusted("read_gbps is empty");
    c.fma_gflops = rates_from(member(j, "", "fma_gflops"), "fma_gflops", kGflopsRange);
    c.dot_gflops = rates_from(member(j, "", "dot_gflops"), "dot_gflops", kGflopsRange);
    if (const auto tile = j.find("tile_gflops"); tile != j.end()) {  // absent in older files
      c.tile_gflops = rates_from(*tile, "tile_gflops", kTileGflopsRange);
    }
    if (const auto rate = j.find("tile_dequant_gweights"); rate != j.end()) {  // absent in older files
      c.tile_dequant_gweights = rates_from(*rate, "tile_dequant_gweights", kTileDequantRange);
    }
    const nlohmann::json& fork_join = member(j, "", "fork_join_us");
    c.fork_join_us = fork_join == 0 ? 0.0 : figure(fork_join, "fork_join_us", kForkJoinUsRange);
    if (const auto wake = j.find("wake_us"); wake != j.end() && *wake != 0) {  // absent in older files
      c.wake_us = figure(*wake, "wake_us", kForkJoinUsRange);
    }
    c.incore_scale = scales_from(member(j, "", "incore_scale"));
    if (c.cpu != host::cpu_name() || c.threads != cpu::available_cpus()) return {};  // another machine's: stale
    return {.calibration = std::move(c), .ignored = ""};
  } catch (const Untrusted& e) {
    return {.calibration = std::nullopt, .ignored = fmt::format("'{}': {}", path.string(), e.what())};
  } catch (const std::exception& e) {  // unreadable (a FIFO, a directory), too large, or not JSON
    return {.calibration = std::nullopt, .ignored = e.what()};
  }
}

std::optional<CpuCalibration> load_calibration() { return read_calibration_file().calibration; }

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
                            {"tile_gflops", rates_json(c.tile_gflops)},
                            {"tile_dequant_gweights", rates_json(c.tile_dequant_gweights)},
                            {"fork_join_us", c.fork_join_us},
                            {"wake_us", c.wake_us},
                            {"incore_scale", scales_json(c.incore_scale)}};
  io::AtomicFile out(path);
  out.write(j.dump(2) + "\n");
  out.commit();
}

}  // namespace w4a16::plan::devices
