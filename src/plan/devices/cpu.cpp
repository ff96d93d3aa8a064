// "cpu": the machine this process runs on, as the cost model sees it: from the calibration given to
// this process (use_calibration), else `w4a16 calibrate`'s file (cpu/calibration_file.hpp), else the
// dev machine's measured defaults scaled to this CPU's count and ISA.
#include "plan/devices/cpu.hpp"

#include <fmt/format.h>
#include <pthread.h>

#include <mutex>

#include "common/host.hpp"
#include "common/printable.hpp"
#include "cpu/cpu_features.hpp"
#include "cpu/thread_pool.hpp"
#include "cpu/tile_permission.hpp"
#include "plan/devices/device_entry.hpp"
#include "plan/plan_cache.hpp"

namespace w4a16::plan::devices {

namespace {

// The dev machine (`lscpu`: Intel(R) Xeon(R) Processor, family 6 model 207, KVM guest, 2 vCPUs),
// measured by `w4a16 calibrate` on 2026-11-30: streaming read 17.0 / 33.3 GB/s, vfmadd231ps zmm
// 176 / 346 GFLOP/s, vdpbf16ps zmm 86 / 172 GFLOP/s on 1 / 2 threads; pool fork/join 4 us.
CpuCalibration dev_machine_defaults() {
  CpuCalibration c;
  c.cpu = "defaults (the dev machine's figures; run `w4a16 calibrate` to measure this CPU)";
  c.threads = 2;
  c.read_gbps = {{1, 17.0}, {2, 33.3}};
  c.fma_gflops = {{1, 176.0}, {2, 346.0}};
  c.dot_gflops = {{1, 86.0}, {2, 172.0}};
  // An AMX CPU's tile peak, where AMX is offered and calibrate has not measured it: tdpbf16ps on a
  // 2-vCPU Intel Xeon KVM guest with AMX-BF16, 2026-12-05, by a standalone prototype
  // (../shared/KERNEL-NOTES.md); `w4a16 calibrate` has not yet run on an AMX CPU.
  c.tile_gflops = {{1, 3400.0}, {2, 6500.0}};
  // Its vector unit's exact int4 -> bf16 B-tile rate there: 7.4-8 ns per 512 weights per core.
  c.tile_dequant_gweights = {{1, 64.0}, {2, 128.0}};
  c.fork_join_us = 4.0;
  c.wake_us =
      315.0;  // the fork/join when the workers sleep: `w4a16 calibrate`, AMD EPYC (Zen 4, KVM, 2 vCPUs), 2026-12-05
  // In-core scales by (threads, M): `w4a16 bench --validate-model --suite llm --threads 2`
  // on 2026-12-02 (docs/data/validate-model.json, "model_device.incore").
  c.incore_scale["fused"] = {{{1, 1}, 0.93}, {{1, 4}, 1.42}, {{1, 16}, 1.63}, {{1, 64}, 1.58},
                             {{2, 1}, 1.30}, {{2, 4}, 1.45}, {{2, 16}, 1.72}, {{2, 64}, 1.65}};
  c.incore_scale["dense"] = {{{1, 1}, 1.09}, {{1, 4}, 1.35}, {{1, 16}, 1.42}, {{1, 64}, 1.46},
                             {{2, 1}, 1.39}, {{2, 4}, 1.42}, {{2, 16}, 1.47}, {{2, 64}, 1.47}};
  c.incore_scale["decoupled"] = {{{1, 1}, 1.20}, {{1, 4}, 1.46}, {{1, 16}, 1.47}, {{1, 64}, 1.47},
                                 {{2, 1}, 1.47}, {{2, 4}, 1.44}, {{2, 16}, 1.47}, {{2, 64}, 1.52}};
  c.incore_scale["pipelined"] = {{{2, 1}, 3.22}, {{2, 4}, 2.72}, {{2, 16}, 1.59}, {{2, 64}, 1.50}};
  return c;
}

std::mutex g_override_mutex;
std::optional<CpuCalibration> g_override;  // use_calibration()'s, in preference to the file
// Held across fork() (see plan_cache.cpp's g_mutex): a child must not inherit it locked.
[[maybe_unused]] const int g_fork_handlers = pthread_atfork(
    [] { g_override_mutex.lock(); }, [] { g_override_mutex.unlock(); }, [] { g_override_mutex.unlock(); });

}  // namespace

void use_calibration(const std::optional<CpuCalibration>& c) {
  std::lock_guard lock(g_override_mutex);
  g_override = c;
}

Device this_cpu() {
  std::optional<CpuCalibration> given;
  {
    std::lock_guard lock(g_override_mutex);
    given = g_override;
  }
  if (given) return describe_cpu(*given, "measured in this run");
  const CalibrationFile file = read_calibration_file();
  if (file.calibration) return describe_cpu(*file.calibration, "`w4a16 calibrate` " + calibration_path().string());
  // A damaged, out-of-range or unreadable file is not silently dropped: the user asked for it (or
  // calibrate wrote it), so say once, as the description is made, why the defaults plan instead.
  if (!file.ignored.empty()) {
    fmt::print(stderr, "w4a16: warning: calibration file ignored, the defaults plan instead: {}\n",
               printable(file.ignored));
  }
  return describe_cpu(dev_machine_defaults(), "");
}

Device describe_cpu(const CpuCalibration& c, const std::string& source) {
  const bool measured = !source.empty();  // else the dev machine's defaults
  const auto& f = cpu::cpu_features();
  const int cores = cpu::available_cpus();
  const bool avx512 = f.has_avx512_core();
  Device d;
  d.name = "cpu";
  d.kind = DeviceKind::cpu;
  d.summary = fmt::format("{} | {} CPUs | {}", host::cpu_name(), cores, measured ? source : c.cpu);
  d.cores = d.vector_cores = cores;
  // A calibration without a rate (a CPU without the FMA probe, a run that measured no read) keeps
  // the defaults' figure for it, marked below as not measured.
  const CpuCalibration defaults = dev_machine_defaults();
  for (const auto& [t, g] : c.read_gbps.empty() ? defaults.read_gbps : c.read_gbps) d.read_bw[t] = g * 1e9;
  d.core_read_bw = d.read_bw.begin()->second / d.read_bw.begin()->first;
  d.write_bw = 0.5 * d.read_bw.rbegin()->second;  // assumption: writes stream at half the read (unused on hot paths)
  // Per core: the 1-thread peaks (the multi-thread ones only confirm they scale).
  const auto per_core = [](const std::map<int, double>& r) {
    return r.empty() ? 0.0 : r.begin()->second / r.begin()->first;
  };
  // The defaults are AVX-512 figures; an AVX2-only CPU issues half the lanes per instruction.
  d.vector_lanes = avx512 ? 16 : 8;
  const bool fma_measured = measured && !c.fma_gflops.empty();
  d.matrix_flops =
      per_core(fma_measured ? c.fma_gflops : defaults.fma_gflops) * 1e9 * (fma_measured || avx512 ? 1.0 : 0.5);
  d.dot_flops = f.has_avx512_bf16() ? per_core(c.dot_gflops) * 1e9 : 0.0;
  d.vector_ops = d.matrix_flops / (2.0 * d.vector_lanes);  // FMA instructions per second = vector issue rate
  if (cpu::tile_access().granted) {
    d.tile_flops = per_core(measured && !c.tile_gflops.empty() ? c.tile_gflops : defaults.tile_gflops) * 1e9;
    const bool rate_measured = measured && !c.tile_dequant_gweights.empty();
    d.dequant_weights_per_s = per_core(rate_measured ? c.tile_dequant_gweights : defaults.tile_dequant_gweights) * 1e9;
  }
  d.llc_bytes = double(host::l3_bytes());
  d.local_bytes = double(host::cache_bytes(2, int64_t(1) << 20));
  // Cache bandwidths are not measured by calibrate: 32 B/cycle from L3 and 64 B/cycle from L2
  // per core at the clock the FMA peak implies (2 FMA instructions per cycle).
  const double clock = d.vector_ops / 2.0;
  d.llc_bw = 32.0 * clock * cores;
  d.local_bw = 64.0 * clock;
  d.launch_s = c.fork_join_us * 1e-6;
  d.wake_s = (c.wake_us > 0 ? c.wake_us : defaults.wake_us) * 1e-6;
  d.sync_s = 0.2e-6;  // a flag's cache line moving between two cores and being polled: ~100-200 ns
  // Measured, not assumed: on the dev machine (Intel Xeon, family 6 model 207) a fused call at
  // M = 1 takes the *sum* of its weight read and its in-core work (measured / (read + compute)
  // = 0.97 on 1 thread, 0.88 on 2; measured / max = 1.70: `w4a16 bench --validate-model`,
  // docs/data/validate-model*.json). The loads of the stream compete with the dequantization for
  // the core rather than hiding behind it.
  d.read_compute_overlap = 0.0;
  d.workspace_l2_hit = 1.0;
  d.incore_scale = c.incore_scale;
  return d;
}

namespace {

// The registry's "cpu" is the description the planner holds for this process (read once, replaced by
// plan::use_cpu_calibration), so that `--device cpu` and gemm() plan with the same figures.
Device planner_cpu() { return *cpu_device(); }

}  // namespace

constinit const DeviceEntry entry_cpu{
    .name = "cpu",
    .order = 0,
    .summary = "this machine: `w4a16 calibrate`'s figures, or the dev machine's defaults",
    .describe = &planner_cpu,
};

}  // namespace w4a16::plan::devices
