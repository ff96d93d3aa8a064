// The file in which `w4a16 calibrate` leaves what it measured on this CPU, for the "cpu" device
// description (devices/cpu.cpp) of every later process: the record, where it lives, reading and writing.
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

}  // namespace w4a16::plan::devices
