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
  std::string cpu;                              // brand string of the CPU it was measured on
  int threads = 1;                              // CPUs the process could use
  std::map<int, double> read_gbps;              // streaming DRAM read, GB/s
  std::map<int, double> fma_gflops;             // vfmadd231ps (zmm, or ymm on AVX2), GFLOP/s, all threads together
  std::map<int, double> dot_gflops;             // vdpbf16ps zmm, GFLOP/s; empty without AVX512-BF16
  std::map<int, double> tile_gflops;            // tdpbf16ps on 16-row tiles (AMX), GFLOP/s; empty without usable AMX
  std::map<int, double> tile_dequant_gweights;  // int4 -> bf16 B tiles (the AMX pipeline's vector stage),
                                                // 10^9 weights/s; empty without usable AMX
  double fork_join_us = 0;                      // one ThreadPool::run over all threads with empty parts
  double wake_us = 0;                           // the same when the workers sleep (past their spin); 0 = not measured
  InCoreScales incore_scale;                    // hot calls' in-core time over the model's (Device::incore_scale)
};

// The range every figure of the file must lie in, or the whole file is ignored: a rate of 5e-324
// passes "> 0" and makes every prediction NaN, one of 1e-300 predicts 10^300 ms. The bounds are
// wide on purpose (a real machine is far inside them); they only keep out what no machine measures.
struct FigureRange {
  double lo, hi;
  const char* unit;
};
// Streaming read: 1 MB/s is four orders of magnitude below any DRAM; 1 PB/s is over 100x an
// accelerator's HBM (H200: 4.8 TB/s), let alone a CPU socket's (~0.6 TB/s).
inline constexpr FigureRange kReadGbpsRange{1e-3, 1e6, "GB/s"};
// FMA / bf16-dot peaks, all threads together: 1 MFLOP/s is below any CPU that runs AVX2; 10
// PFLOP/s is 4096 threads (the most a key may name) at 2.4 TFLOP/s each, over 3x the bf16-dot
// peak of a 5 GHz AVX-512 core (2 units x 32 pairs x 2 FLOP x 5 GHz = 640 GFLOP/s).
inline constexpr FigureRange kGflopsRange{1e-3, 1e7, "GFLOP/s"};
// The AMX tile peak: a tile unit does 1024 bf16 MACs a cycle per core (~3.4 TFLOP/s measured,
// KERNEL-NOTES.md), so 4096 threads at 5 GHz stay below 10^8 GFLOP/s.
inline constexpr FigureRange kTileGflopsRange{1e-3, 1e8, "GFLOP/s"};
// The dequantize-to-tile rate: a core stores at most two 64-byte vectors (64 bf16 weights) a cycle,
// so 4096 threads at 5 GHz stay below 2 x 10^6 Gweights/s.
inline constexpr FigureRange kTileDequantRange{1e-3, 1e7, "Gweights/s"};
// One fork/join of the pool: 1 ns to 1 s (0 is accepted too: a 1-thread pool runs inline, and the
// clock may round that to nothing).
inline constexpr FigureRange kForkJoinUsRange{1e-3, 1e6, "us"};
// An in-core scale (measured over modeled time): exactly the interval `w4a16 calibrate`'s solver
// searches (src/measure/incore.cpp), so every value it can write is read back and nothing else.
inline constexpr FigureRange kInCoreScaleRange{0.05, 50, "(measured / modeled)"};

// $W4A16_CALIBRATION if set, else $XDG_CACHE_HOME/w4a16/calibration.json, else
// ~/.cache/w4a16/calibration.json.
std::filesystem::path calibration_path();

// What reading the file found.
struct CalibrationFile {
  std::optional<CpuCalibration> calibration;  // set when the file exists, is valid and was made on this CPU
  // Why a file that exists was not trusted, naming the key and value at fault ("" when there is
  // no file, when it is trusted, or when it is only stale: another CPU, thread count or version).
  std::string ignored;
};
// The file at calibration_path(), read without blocking (a FIFO or device there is refused:
// io/input_file.hpp) and every figure range-checked (the ranges above).
CalibrationFile read_calibration_file();
// read_calibration_file().calibration: a stale or damaged file is ignored, never trusted.
std::optional<CpuCalibration> load_calibration();
// Writes the file atomically (creating its directory). Throws Error(io) on failure.
void save_calibration(const CpuCalibration& c);

}  // namespace w4a16::plan::devices
