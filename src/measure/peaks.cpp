// Compute peaks of the roofline (see peaks.hpp).
//
// Each loop runs kPeakChains (ymm: kPeakChainsYmm) independent accumulator chains,
// acc[c] += x * y with x and y loop-invariant registers (checked in the disassembly: no spill in
// the loop): the only dependency is each chain on itself, so the loop runs at the instruction's
// throughput. The values never overflow nor become subnormal
// (each step adds 2^-10 or 2^-9 to an accumulator that starts at 1..16), so no microcode assist
// slows a pass. The functions carry their own target attributes: this file is compiled with the
// baseline flags and each loop is called only after cpuid + xgetbv allowed its ISA.
#include "measure/peaks.hpp"

#include <immintrin.h>
#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <chrono>
#include <cmath>
#include <thread>

#include "cpu/cpu_features.hpp"
#include "cpu/tile_permission.hpp"
#include "measure/tile_dequant_rate.hpp"

namespace w4a16::measure {

namespace {

// vdpbf16ps zmm: acc (16 fp32 lanes) += a[2i] * b[2i] + a[2i+1] * b[2i+1]; 64 flops.
__attribute__((target("avx512f,avx512bf16"))) float loop_dpbf16_zmm(int64_t steps) {
  __m512 vacc[kPeakChains];  // [chains] x 16 fp32 lanes
  for (int c = 0; c < kPeakChains; ++c) vacc[c] = _mm512_set1_ps(float(c + 1));
  const __m512bh va = _mm512_cvtne2ps_pbh(_mm512_set1_ps(1.0f), _mm512_set1_ps(1.0f));          // 32 x bf16 1
  const __m512bh vb = _mm512_cvtne2ps_pbh(_mm512_set1_ps(0x1p-10f), _mm512_set1_ps(0x1p-10f));  // 32 x bf16 2^-10
  for (int64_t i = 0; i < steps; ++i) {
    for (int c = 0; c < kPeakChains; ++c) vacc[c] = _mm512_dpbf16_ps(vacc[c], va, vb);
  }
  for (int c = 1; c < kPeakChains; ++c) vacc[0] = _mm512_add_ps(vacc[0], vacc[c]);
  return _mm512_cvtss_f32(vacc[0]);
}

// vfmadd231ps zmm: acc (16 fp32 lanes) += a * b; 32 flops.
__attribute__((target("avx512f"))) float loop_fma_zmm(int64_t steps) {
  __m512 vacc[kPeakChains];  // [chains] x 16 fp32 lanes
  for (int c = 0; c < kPeakChains; ++c) vacc[c] = _mm512_set1_ps(float(c + 1));
  const __m512 va = _mm512_set1_ps(1.0f), vb = _mm512_set1_ps(0x1p-10f);
  for (int64_t i = 0; i < steps; ++i) {
    for (int c = 0; c < kPeakChains; ++c) vacc[c] = _mm512_fmadd_ps(va, vb, vacc[c]);
  }
  for (int c = 1; c < kPeakChains; ++c) vacc[0] = _mm512_add_ps(vacc[0], vacc[c]);
  return _mm512_cvtss_f32(vacc[0]);
}

// vfmadd231ps ymm: acc (8 fp32 lanes) += a * b; 16 flops. AVX2 has 16 ymm registers: 14 chains
// and the two factors fill them (16 chains would spill); 14 still cover latency x ports of every
// AVX2 CPU (Haswell 5 x 2 = 10, Skylake and Zen 4 x 2 = 8).
__attribute__((target("avx2,fma"))) float loop_fma_ymm(int64_t steps) {
  __m256 vacc[kPeakChainsYmm];  // [chains] x 8 fp32 lanes
  for (int c = 0; c < kPeakChainsYmm; ++c) vacc[c] = _mm256_set1_ps(float(c + 1));
  const __m256 va = _mm256_set1_ps(1.0f), vb = _mm256_set1_ps(0x1p-10f);
  for (int64_t i = 0; i < steps; ++i) {
    for (int c = 0; c < kPeakChainsYmm; ++c) vacc[c] = _mm256_fmadd_ps(va, vb, vacc[c]);
  }
  for (int c = 1; c < kPeakChainsYmm; ++c) vacc[0] = _mm256_add_ps(vacc[0], vacc[c]);
  return _mm256_cvtss_f32(vacc[0]);
}

// tdpbf16ps: four 16 x 16 fp32 C tiles (tmm0-3) += a 16 x 32 bf16 A tile (tmm4) x a B tile of
// 16 pairs x 16 columns (tmm5); 16 x 16 x 32 x 2 = 16384 flops each. Four chains: the tile unit
// overlaps independent accumulations (KERNEL-NOTES.md). A holds 1, B 2^-10: each step adds
// 32 x 2^-10 to every accumulator. Called only where tile_access() granted the tile state; each
// thread configures its own tiles and releases them.
float loop_tdpbf16ps(int64_t steps) {
  alignas(64) uint8_t config[64] = {1};  // palette 1
  for (int t = 0; t < 6; ++t) {
    config[16 + 2 * t] = 64;  // bytes per row
    config[48 + t] = 16;      // rows
  }
  alignas(64) uint16_t a[16 * 32], b[16 * 32];
  for (int i = 0; i < 16 * 32; ++i) a[i] = 0x3F80, b[i] = 0x3A80;  // bf16 1.0, 2^-10
  alignas(64) float c[16 * 16];
  __asm__ volatile("ldtilecfg %0" ::"m"(config));
  __asm__ volatile("tileloadd (%0,%1,1), %%tmm4" ::"r"(a), "r"(int64_t(64)) : "memory");
  __asm__ volatile("tileloadd (%0,%1,1), %%tmm5" ::"r"(b), "r"(int64_t(64)) : "memory");
  __asm__ volatile("tilezero %tmm0\n\ttilezero %tmm1\n\ttilezero %tmm2\n\ttilezero %tmm3");
  for (int64_t i = 0; i < steps; ++i) {
    __asm__ volatile(
        "tdpbf16ps %tmm5, %tmm4, %tmm0\n\t"
        "tdpbf16ps %tmm5, %tmm4, %tmm1\n\t"
        "tdpbf16ps %tmm5, %tmm4, %tmm2\n\t"
        "tdpbf16ps %tmm5, %tmm4, %tmm3");
  }
  __asm__ volatile("tilestored %%tmm3, (%0,%1,1)" ::"r"(c), "r"(int64_t(64)) : "memory");
  __asm__ volatile("tilerelease" ::: "memory");
  return c[0];
}

std::atomic<float> g_peak_sink{0};  // keeps every loop's result observable

// The CPUs of this process's affinity mask, in order (empty if it cannot be read).
std::vector<int> allowed_cpus() {
  std::vector<int> cpus;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return cpus;
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (CPU_ISSET(c, &set)) cpus.push_back(c);
  }
  return cpus;
}

// Seconds from the first thread's start to the last one's end of `threads` pinned threads each
// running `steps` steps of `loop`.
double timed_pass(float (*loop)(int64_t), int64_t steps, int threads, const std::vector<int>& cpus) {
  using Clock = std::chrono::steady_clock;
  std::vector<Clock::time_point> start(static_cast<size_t>(threads)), stop(static_cast<size_t>(threads));
  std::barrier sync(threads);
  std::vector<std::thread> team;
  for (int t = 0; t < threads; ++t) {
    team.emplace_back([&, t] {
      if (!cpus.empty()) {
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(cpus[size_t(t) % cpus.size()], &one);
        pthread_setaffinity_np(pthread_self(), sizeof one, &one);  // best effort: unpinned if refused
      }
      sync.arrive_and_wait();  // every thread pinned and running before anyone starts
      start[size_t(t)] = Clock::now();
      const float sum = loop(steps);
      stop[size_t(t)] = Clock::now();
      g_peak_sink.store(sum, std::memory_order_relaxed);
    });
  }
  for (auto& th : team) th.join();
  const auto first = *std::min_element(start.begin(), start.end());
  const auto last = *std::max_element(stop.begin(), stop.end());
  return std::chrono::duration<double>(last - first).count();
}

}  // namespace

std::vector<PeakProbe> peak_probes() {
  const auto& f = cpu::cpu_features();
  std::vector<PeakProbe> probes;
  if (f.os_saves_zmm && f.avx512f && f.avx512_bf16) {
    probes.push_back({"bf16_dot", "vdpbf16ps zmm", 64, kPeakChains, &loop_dpbf16_zmm});
  }
  if (cpu::tile_access().granted) {
    probes.push_back({"bf16_tile", "tdpbf16ps (16-row tiles)", 16384, 4, &loop_tdpbf16ps});
  }
  if (f.os_saves_zmm && f.avx512f) {
    probes.push_back({"fp32_fma", "vfmadd231ps zmm", 32, kPeakChains, &loop_fma_zmm});
  } else if (f.os_saves_ymm && f.avx2 && f.fma) {
    probes.push_back({"fp32_fma", "vfmadd231ps ymm", 16, kPeakChainsYmm, &loop_fma_ymm});
  }
  return probes;
}

double measure_pinned_rate(float (*loop)(int64_t), double units_per_step, int threads, int passes, double seconds) {
  const std::vector<int> cpus = allowed_cpus();
  // Warm-up and sizing on the same threads: double the steps until a pass takes 5 ms (this also
  // wakes the wide vector units and settles the clock), then scale to `seconds`.
  int64_t steps = 1 << 12;
  double s = timed_pass(loop, steps, threads, cpus);
  while (s < 0.005 && steps < (int64_t(1) << 40)) {
    steps *= 2;
    s = timed_pass(loop, steps, threads, cpus);
  }
  steps = std::max<int64_t>(1, int64_t(double(steps) * seconds / s));
  const double units = units_per_step * double(steps) * threads;
  double best = 0;
  for (int p = 0; p < passes; ++p) best = std::max(best, units / timed_pass(loop, steps, threads, cpus) / 1e9);
  return best;
}

double measure_peak_gflops(const PeakProbe& probe, int threads, int passes, double seconds) {
  return measure_pinned_rate(probe.loop, probe.flops_per_instruction * probe.chains, threads, passes, seconds);
}

double at_threads(const PerThreads& rates, int threads) {
  if (rates.empty()) return 0;
  double rate = 0;
  if (const auto it = rates.find(threads); it != rates.end()) {
    rate = it->second;
  } else if (const auto hi = rates.lower_bound(threads); hi == rates.begin()) {
    rate = hi->second * threads / hi->first;  // below the fewest measured
  } else if (const auto lo = std::prev(hi); hi == rates.end()) {
    rate = lo->second;  // beyond the most measured: no more cores to add
  } else {
    const double w = double(threads - lo->first) / double(hi->first - lo->first);
    rate = lo->second + w * (hi->second - lo->second);
  }
  for (const auto& [t, r] : rates) {
    if (t <= threads) rate = std::max(rate, r);  // what fewer threads reach, more can (idling)
  }
  return rate;
}

bool looks_contended(const PerThreads& rates) {
  if (rates.size() < 2 || !rates.count(1)) return false;
  const auto& [threads, rate] = *rates.rbegin();
  return rate < 0.75 * double(threads) * rates.at(1);
}

double ComputePeaks::roofline_gflops(int threads) const {
  if (!given.empty()) return at_threads(given, threads);
  double best = 0;
  for (const auto& p : measured) best = std::max(best, at_threads(p.gflops, threads));
  return best;
}

ComputePeaks measure_compute_peaks(int all_threads) {
  ComputePeaks peaks;
  for (const auto& probe : peak_probes()) {
    ComputePeak p{probe.key, probe.instruction, {}};
    p.gflops[1] = measure_peak_gflops(probe, 1);
    if (all_threads > 1) p.gflops[all_threads] = measure_peak_gflops(probe, all_threads);
    peaks.measured.push_back(p);
  }
  peaks.tile_dequant_gweights = measure_tile_dequant_rates(all_threads);
  return peaks;
}

double roofline_ms(double weight_bytes, double flops, double read_gbps, double peak_gflops) {
  const double memory_ms = read_gbps > 0 ? weight_bytes / (read_gbps * 1e6) : 0;
  const double compute_ms = peak_gflops > 0 ? flops / (peak_gflops * 1e6) : 0;
  return std::max(memory_ms, compute_ms);
}

}  // namespace w4a16::measure
