// A device description: every constant the cost model (cost_model.hpp) reads, as data. One file
// per device in src/plan/devices/ (the registry: device_registry.hpp), each constant commented with
// its source (a document, or the command that measured it). Units: bytes, seconds, FLOP/s, weights/s.
//
// The same fields describe three kinds of machine:
//   cpu  cores = threads of the pool; the matrix engine and the vector unit are the same core
//        (the FMA / bf16-dot ports), so dequantization and multiply-adds share its issue slots.
//   gpu  cores = SMs; tensor cores and the integer/FP32 pipes run concurrently in one SM.
//   npu  (Ascend 910B) cores = AIC (cube cores); vector_cores = AIV. Separate cores: the
//        dequantized weight can only reach the cube through global memory (fused_possible =
//        false), which is the round trip the paper measures.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace w4a16::plan {

enum class DeviceKind { cpu, gpu, npu };

// strategy name -> (threads, M) -> scale.
using InCoreScales = std::map<std::string, std::map<std::pair<int, int64_t>, double>, std::less<>>;
std::string_view to_string(DeviceKind kind);

struct Device {
  std::string name;     // the --device spelling: "cpu", "h100", "h200", "a100", "ascend910b2", ...
  std::string summary;  // one line for tables: the CPU model / card / SKU and where the figures come from
  DeviceKind kind = DeviceKind::cpu;

  int cores = 1;               // threads (cpu), SMs (gpu), AIC cube cores (npu)
  int vector_cores = 1;        // cores that dequantize: = cores on cpu/gpu, the AIV count on npu
  bool fused_possible = true;  // false: no path from the dequantizing unit to the matrix unit but memory

  // Memory. Aggregate read bandwidth from DRAM/HBM with `t` cores busy; at a count not listed,
  // linear between neighbours, proportional below the first, flat beyond the last (read_bw_at).
  std::map<int, double> read_bw;
  double write_bw = 0;      // aggregate DRAM/HBM write bandwidth
  double core_read_bw = 0;  // what one core can pull on its own (DMA / load ports), bytes/s
  double vector_core_read_bw = 0, vector_core_write_bw = 0;  // npu AIV GM->UB / UB->GM; else = core_read_bw
  double llc_bytes = 0;                                      // last-level cache (cpu L3, gpu/npu L2)
  double llc_bw = 0;                                         // its aggregate bandwidth, bytes/s
  double local_bytes = 0;  // per-core cache/buffer a decoupled panel can stay in (cpu L2, npu L1)
  double local_bw = 0;     // per-core bandwidth of that buffer, bytes/s

  // Compute, per core.
  double matrix_flops = 0;           // 16-bit x 16-bit products with fp32 accumulation (2 flops per MAC);
                                     // cpu: the fp32 FMA rate (x widened to fp32, weights to fp32 lanes)
  double dot_flops = 0;              // cpu: the bf16 pair-dot rate (vdpbf16ps) where the CPU has one, else 0
  double vector_ops = 0;             // cpu: 512-bit (or 256-bit) vector instructions issued per second
                                     // (the ports the FMAs and the dequantization share)
  int vector_lanes = 16;             // cpu: fp32 lanes of one such instruction
  double tile_flops = 0;             // cpu: the AMX tile rate (tdpbf16ps on 16-row tiles) where the
                                     // amx kernels are offered, else 0; a tile multiply costs the same for
                                     // fewer rows, so the model charges whole 16-row blocks
  double dequant_weights_per_s = 0;  // npu/gpu: int4 -> 16-bit weights one vector core makes per second;
                                     // cpu: int4 -> bf16 B-tile weights per core (the AMX pipeline's vector
                                     // stage, `w4a16 calibrate`) where tiles are offered, else 0

  // Overheads.
  double launch_s = 0;         // starting and joining one parallel phase (pool fork/join, kernel launch)
  double wake_s = 0;           // cpu: the same when the pool's workers sleep (passive wait policy); 0 = launch_s
  double sync_s = 0;           // one producer -> consumer hand-off through memory (flag + cache line transfer)
  double ring_slot_k = 0;      // decoupled pipeline: K rows of one ring slot (the first fill waits for one
                               // slot, not a whole work item); 0 = a whole item
  int64_t tile_n = 64;         // output columns one matrix core owns per work item: the CPU's 64-wide tile, a GPU
                               // kernel's CTA tile, the 910B's L0B base block (the modeled devices' plans)
  double ring_k = 0;           // decoupled pipeline: K rows of 16-bit weights per matrix core in flight in a ring in
                               // memory (the 910B's vendor kernel); 0 = the whole 16-bit W is written to memory first
  bool atomic_reduce = false;  // split-K partials added in place by the matrix cores (910B FixPipe
                               // atomics): no second launch for the reduction
  double read_compute_overlap = 1.0;  // cpu: 1 = a core's weight stream hides behind its arithmetic (the
                                      // item costs the max), 0 = they add up (measured: docs/model.md)
  double workspace_l2_hit = 1.0;      // share of the decoupled workspace's round trip served by the LLC
                                      // when it fits (the one parameter calibrated on the 910B; docs/model.md)
  // cpu: measured in-core time over the model's instruction count, per strategy ("fused", "dense",
  // "decoupled", "pipelined") and (threads, M): `w4a16 calibrate` times hot calls on an
  // L2-resident weight (src/measure/incore.hpp). The model multiplies its in-core terms by it;
  // empty = 1 (not measured).
  InCoreScales incore_scale;
  // The scale for `strategy` at `threads` and `m`: the largest calibrated thread count <= threads
  // (else the smallest), linear in log M between calibrated Ms, flat beyond them; 1 if none.
  double incore_scale_at(std::string_view strategy, int threads, int64_t m) const;

  double read_bw_at(int busy_cores) const;
};

// The descriptions this build knows (device_registry.hpp, in its order): "cpu" first (this machine:
// `w4a16 calibrate`'s cached figures, or built-in defaults when never calibrated), then the GPUs
// and the Ascend SKUs.
std::vector<std::string> device_names();
// The description named `name`; throws Error(invalid_argument) listing device_names() for an unknown one.
Device device(std::string_view name);

}  // namespace w4a16::plan
