// The compute half of the roofline of `w4a16 bench` (read_bandwidth.hpp holds the memory half): the
// peak rate of each instruction a W4A16 kernel can spend its multiply-accumulates on, measured on
// this machine, on 1 thread and on all threads.
//
// Two instructions compute the same exact bf16 (or fp16) x int4 products with fp32 accumulation:
//   bf16_dot  vdpbf16ps zmm     32 MACs (64 flops): pairs of bf16 products added into 16 fp32 lanes
//                               (an fp16 activation is exactly hi + lo, two bf16 values)
//   fp32_fma  vfmadd231ps zmm   16 MACs (32 flops), or vfmadd231ps ymm 8 MACs (16 flops) on AVX2
// Which one is faster depends on the CPU: on Zen 5 the dot is 2x the fp32 FMA (KERNEL-NOTES.md),
// on the Intel family 6 model 207 KVM guest (`lscpu`: "Intel(R) Xeon(R) Processor", AVX512-BF16,
// no AMX) the fp32 FMA is about 2x the dot (`w4a16 calibrate`, docs/cli.md). The library may pick
// either kernel family per CPU, so the roofline takes the larger of the two.
//
// Why measured and not computed from a clock and a port count: a guest does not know its clock,
// AVX-512 frequency licences differ per CPU, and the dot's throughput differs per core design.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace w4a16::measure {

// One instruction timed in a loop of independent accumulator chains.
struct PeakProbe {
  std::string key;                         // JSON key: "bf16_dot" or "fp32_fma"
  std::string instruction;                 // what is timed: "vdpbf16ps zmm", "vfmadd231ps zmm", ...
  double flops_per_instruction = 0;        // 2 flops per multiply-accumulate
  int chains = 0;                          // independent accumulator chains of `loop`
  float (*loop)(int64_t steps) = nullptr;  // `steps` x `chains` instructions; returns a sum to keep
};

// Independent accumulator chains per thread: enough to cover latency x ports of every CPU we know
// (fp32 FMA: 4 cycles x 2 ports = 8 needed; vdpbf16ps on Zen 5: 6 cycles x 2 ports = 12). The
// ymm loop has 14: AVX2 has 16 vector registers and the two factors take two (peaks.cpp).
inline constexpr int kPeakChains = 16, kPeakChainsYmm = 14;

// The probes this CPU and OS can run (cpuid + xgetbv, not W4A16_ISA: the roofline is the
// machine's): bf16_dot where AVX512-BF16 is usable, fp32_fma as zmm with AVX-512F or as ymm with
// AVX2 + FMA. Empty on a plain x86-64 CPU.
std::vector<PeakProbe> peak_probes();

// GFLOP/s of `probe` on `threads` threads, each pinned to its own CPU of this process's affinity
// mask (round robin if there are fewer): best of `passes` passes of about `seconds` each, after an
// untimed warm-up that also sizes the passes. Five short passes rather than three long ones: on
// a shared 2-vCPU guest the 2-thread figure of a pass drops whenever another process holds one
// CPU (measured: 70-170 GFLOP/s for vdpbf16ps within a minute), and more passes give a better
// chance of one with both CPUs free.
double measure_peak_gflops(const PeakProbe& probe, int threads, int passes = 5, double seconds = 0.02);

// The engine under measure_peak_gflops, for any loop: billions of units per second of `loop` (each
// of its steps does `units_per_step` units on each thread) on `threads` pinned threads, best of
// `passes` passes of about `seconds`, after the same warm-up (tile_dequant_rate.cpp times one).
double measure_pinned_rate(float (*loop)(int64_t steps), double units_per_step, int threads, int passes,
                           double seconds);

// A rate per thread count, e.g. {1: 175, 2: 350}. At a thread count not measured: linear between
// the neighbours, proportional below the fewest, and the rate of the most beyond it (the peaks are
// measured on all the CPUs this process may use: more threads share those cores). Never less
// than the rate of a smaller thread count: more threads can always leave some idle, so a
// multi-thread figure measured while another process held a CPU does not lower the roofline below
// what one thread does.
using PerThreads = std::map<int, double>;
double at_threads(const PerThreads& rates, int threads);

// True when the rate on the most threads is below 0.75 x threads x the 1-thread rate: compute
// peaks scale with cores, so another process most likely held a CPU during the measurement.
bool looks_contended(const PerThreads& rates);

struct ComputePeak {
  std::string key, instruction;
  PerThreads gflops;
};

struct ComputePeaks {
  std::vector<ComputePeak> measured;  // one per probe this CPU runs
  PerThreads given;                   // --peak-gflops: used instead of `measured` when not empty
  // Where AMX is offered: the vector unit's int4 -> bf16 B-tile rate, 10^9 weights/s
  // (tile_dequant_rate.hpp), the other half of a tile entry's in-core time; else empty.
  PerThreads tile_dequant_gweights;
  // The compute rate of the roofline on `threads` threads: the given rate, else the largest of
  // the measured peaks; 0 when nothing is known.
  double roofline_gflops(int threads) const;
};

// Every probe on 1 thread and on `all_threads` threads (about 0.12 s per probe and thread count),
// and the tile dequantization rate where AMX is offered.
ComputePeaks measure_compute_peaks(int all_threads);

// The roofline time of a call, in ms: max(weight bytes / read bandwidth, flops / compute rate).
// A term whose rate is 0 (unknown) is left out; 0 when both are unknown.
double roofline_ms(double weight_bytes, double flops, double read_gbps, double peak_gflops);

}  // namespace w4a16::measure
