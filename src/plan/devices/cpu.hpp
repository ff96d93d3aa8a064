// "cpu": the machine this process runs on, as the cost model sees it. The figures come from
// `w4a16 calibrate`, which measures them and caches them in a small JSON file; without that file
// (or when it was written on another CPU) the built-in figures of the dev machine stand in,
// scaled to this process's CPU count and ISA, and Device::summary says so.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>

#include "plan/device.hpp"

namespace w4a16::plan::devices {

// What `w4a16 calibrate` measured (rates keyed by thread count).
struct CpuCalibration {
  std::string cpu;                   // brand string of the CPU it was measured on
  int threads = 1;                   // CPUs the process could use
  std::map<int, double> read_gbps;   // streaming DRAM read, GB/s
  std::map<int, double> fma_gflops;  // vfmadd231ps (zmm, or ymm on AVX2), GFLOP/s, all threads together
  std::map<int, double> dot_gflops;  // vdpbf16ps zmm, GFLOP/s; empty without AVX512-BF16
  double fork_join_us = 0;           // one ThreadPool::run over all threads with empty parts
  InCoreScales incore_scale;         // hot calls' in-core time over the model's (Device::incore_scale)
};

// $W4A16_CALIBRATION if set, else $XDG_CACHE_HOME/w4a16/calibration.json, else
// ~/.cache/w4a16/calibration.json.
std::filesystem::path calibration_path();
// The cached calibration when the file exists, parses, and was made on this CPU (brand and
// thread count); std::nullopt otherwise (a stale or damaged file is ignored, never trusted).
std::optional<CpuCalibration> load_calibration();
// Writes the file atomically (creating its directory). Throws Error(io) on failure.
void save_calibration(const CpuCalibration& c);

// This CPU's description: from the calibration set by use_calibration() if any, else the cached
// file, else the defaults.
Device this_cpu();
// The description calibration `c` gives; `source` says where it comes from (the summary's last
// field; empty = the built-in defaults, which an AVX2-only CPU halves).
Device describe_cpu(const CpuCalibration& c, const std::string& source);
// Makes `c` this process's calibration (what `w4a16 bench --validate-model` measured in its own
// run), in preference to the file. Planning that already happened is not redone: the caller
// resets the planner's cached device and plans (plan::use_cpu_calibration does both).
// std::nullopt: back to the file or the defaults.
void use_calibration(const std::optional<CpuCalibration>& c);

// One ThreadPool::run over all `threads` with empty parts, in microseconds (median of many): the
// launch cost of a parallel phase that the cost model charges.
double measure_fork_join_us(int threads);

}  // namespace w4a16::plan::devices
