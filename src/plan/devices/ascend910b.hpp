// What the Ascend 910B (Atlas A2) SKU descriptions (ascend910b2.cpp, ascend910b3.cpp, ascend910b4.cpp)
// share: the generation's facts, the figures no source gives (assumed, or the one calibrated), and the
// builder that turns a SKU's core count, clock, HBM and L2 into a Device. `w4a16 model` prints the
// on-chip buffers and copy paths named here beside the description, and the tests check them against it.
//
// Every figure comes from shared/ASCEND-910B.md, which names its public sources; they are tagged here:
//   [hami]     HAMi's device configuration: AI core (= AIC) count per SKU.
//   [catlass]  catlass's AtlasA2 architecture header: buffer sizes, L2 size, MaxBlock = 20 on the 910B3.
//   [cann]     CANN documentation: cube 16x16x16 fp16 MACs per cycle, vector ONE_REPEAT_BYTE_SIZE = 256,
//              1 AIC : 2 AIV in a MIX kernel (GetTaskRatio).
//   [sim]      Huawei's simulator configurations: clocks (1.8 GHz B2/B3, 1.5 GHz B4; one config notes
//              1.65 GHz measured) and HBM bandwidth (1.6 TB/s B2/B3 with another config giving 1.2;
//              0.8 TB/s B4).
//   [boost]    ascend-boost's hardware header: L2 : HBM bandwidth = 5 : 1.
//   [pto]      pto-isa's cost model: per-core copy rates (below).
// kind = npu, cores = AIC (cube cores), vector_cores = AIV = 2 x AIC, fused_possible = false.
#pragma once

#include <cmath>
#include <map>

#include "plan/device_registry.hpp"

namespace w4a16::plan::devices::ascend910b {

// Facts of the 910B that Device has no field for. Sources: shared/ASCEND-910B.md, which names the
// catlass AtlasA2 architecture header (buffer sizes), CANN's AI Core documentation (cube and vector
// widths) and one public cost model of the copy paths (pto-isa's; rates in GiB/s per core and
// direction). The same on every SKU of the generation.
inline constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;
inline constexpr double kKiB = 1024.0;

// Per AIC buffers (catlass AtlasA2).
inline constexpr double kL1Bytes = 512 * kKiB;   // staging of both operands in the cube's fractal layout
inline constexpr double kL0aBytes = 64 * kKiB;   // left operand of the cube: x [M, K] blocks
inline constexpr double kL0bBytes = 64 * kKiB;   // right operand: W^T [K, N] blocks (the weight)
inline constexpr double kL0cBytes = 128 * kKiB;  // fp32 accumulators [M, N]
// Per AIV buffer (catlass AtlasA2).
inline constexpr double kUbBytes = 192 * kKiB;  // Unified Buffer: where the AIV dequantizes

// Per-core copy paths (pto-isa cost model, GiB/s per core and direction). GM = global memory (HBM,
// through L2). The AIC reads GM->L1 (MTE2), the AIV reads GM->UB (MTE2) and writes UB->GM (MTE3).
inline constexpr double kGmToL1 = 135 * kGiB;   // Device::core_read_bw
inline constexpr double kGmToUb = 101 * kGiB;   // Device::vector_core_read_bw
inline constexpr double kUbToGm = 188 * kGiB;   // Device::vector_core_write_bw
inline constexpr double kL0cToGm = 70 * kGiB;   // FixPipe: fp32 results (atomic add for split-K partials)
inline constexpr double kL1ToL0a = 441 * kGiB;  // MTE1, left operand
inline constexpr double kL1ToL0b = 220 * kGiB;  // MTE1, right operand (the weight): Device::local_bw

// Compute widths (CANN AI Core documentation).
inline constexpr int kCubeM = 16, kCubeK = 16, kCubeN = 16;            // one fp16 cube op per cycle: 16x16x16 MACs
inline constexpr double kCubeMacsPerCycle = kCubeM * kCubeK * kCubeN;  // 4096
inline constexpr double kVectorBytesPerRepeat = 256;  // CANN ONE_REPEAT_BYTE_SIZE: one repeat per cycle
inline constexpr int kVectorF16Lanes = 128;           // 256 B / 2 B
inline constexpr int kVectorF32Lanes = 64;            // 256 B / 4 B
inline constexpr int kAivPerAic = 2;                  // a MIX kernel pairs 1 AIC with 2 AIV (CANN GetTaskRatio)

// Dequantization cost on an AIV, derived (not measured): the vendor kernel's additive form
// (q + offset) * scale takes three vector repeats per 128 fp16 outputs: cast int4 -> fp16, add the
// offset, multiply by the group's scale (the scale broadcast is amortized over a group of >= 32).
inline constexpr double kDequantRepeatsPer128 = 3;

// The tile the cube works on for decode shapes, derived from the buffers above: a 16-bit weight
// block of kBaseK x kBaseN fills L0B exactly (128 x 256 x 2 B = 64 KiB), and kBaseK = 128 is
// also the usual group size, so a block never straddles two groups' scales. `w4a16 model` uses
// kBaseN as the data-parallel tile width per AIC.
inline constexpr int kBaseK = 128;
inline constexpr int kBaseN = 256;
static_assert(kBaseK * kBaseN * 2 == kL0bBytes, "the base block fills L0B");

// The vendor split-K kernel's ring in global memory between the AIVs and their AIC (ASCEND-910B.md):
// 4 slots per AIC, each a group-aligned K chunk of the tile's 16-bit weights. The chunk length is not
// public; 4 x kBaseK rows is our choice: a 256 KiB slot is half of L1, so the AIC can double-buffer
// it, and each AIV's half (64 KiB of weights: int4 + scales + fp16 result, 161 KiB) fits its UB.
inline constexpr int kRingSlots = 4;
inline constexpr int kSlotK = 4 * kBaseK;

// ---------------------------------------------------------------- figures the SKUs share

inline constexpr double kMiB = 1024.0 * 1024.0;

// L2 bandwidth, derived: 5 x HBM [boost] on the 1.6 TB/s parts (910B2/B3, 1.8 GHz [sim]) = 8 TB/s.
// The ratio is the architecture's, so a SKU at another clock scales this on-chip figure by its clock,
// not by its HBM.
inline constexpr double kL2BwAtReferenceClock = 5.0 * 1.6e12;
inline constexpr double kReferenceClock = 1.8e9;

// Kernel start, assumed (no public figure): a MIX kernel dispatches blockDim AIC tasks and their AIVs;
// we take 3 us, the order of a GPU kernel launch. It adds the same to FP16 and W4A16 times.
inline constexpr double kLaunchSeconds = 3e-6;

// One cross-core hand-off, assumed (no public figure): CrossCoreSetFlag by the producer, the
// consumer's CrossCoreWaitFlag seeing it, plus the L2 transfer of the first block: 0.5 us. Paid per
// ring slot only when the pipeline drains, i.e. once at the start and once per split-K reduction.
inline constexpr double kSyncSeconds = 0.5e-6;

// Workspace L2 hit: the share of the AIV -> GM -> AIC round trip of the 16-bit weight served by L2
// instead of HBM. NOT a published figure: the one parameter calibrated, against the paper's 1.48x
// (`w4a16 model --device ascend910b3` solves for it; docs/model.md). The same value is used on
// every SKU: the ring (kRingSlots x kSlotK x 256 x 2 B per AIC, 20 MiB on the B3) fits every L2.
inline constexpr double kWorkspaceL2Hit = 0.766;

// One SKU's figures, each cited in its file.
struct Sku {
  int aic = 0;          // AI cores (cube cores) [hami, catlass]
  double clock_hz = 0;  // [sim]
  double hbm = 0;       // HBM bandwidth, bytes/s [sim]
  double l2_bytes = 0;  // [catlass]
  double l2_bw = 0;     // derived from kL2BwAtReferenceClock
};

// Aggregate GM read bandwidth against busy cores: each core pulls at most GM->L1 [pto], all together
// at most HBM. One entry at the knee and one past it say that exactly (read_bw_at is proportional
// below the first entry, linear between entries, flat beyond the last).
inline std::map<int, double> saturating(double per_core, double hbm) {
  const int knee = static_cast<int>(std::floor(hbm / per_core));
  return {{knee, per_core * knee}, {knee + 1, hbm}};
}

// The Device of SKU `entry` (its name and summary) with figures `s`.
inline Device sku(const DeviceEntry& entry, const Sku& s) {
  Device d;
  d.name = std::string(entry.name);
  d.summary = std::string(entry.summary);
  d.kind = DeviceKind::npu;
  d.cores = s.aic;                      // AIC (cube cores) [hami, catlass]
  d.vector_cores = kAivPerAic * s.aic;  // AIV: 1 AIC : 2 AIV [cann]
  d.fused_possible = false;             // AIV and AIC exchange data only through GM (ASCEND-910B.md)

  d.core_read_bw = kGmToL1;  // AIC GM -> L1 (MTE2) [pto]
  d.read_bw = saturating(d.core_read_bw, s.hbm);
  d.write_bw = s.hbm;                // one HBM pool; the sources give one figure for both directions
  d.vector_core_read_bw = kGmToUb;   // AIV GM -> UB (MTE2) [pto]
  d.vector_core_write_bw = kUbToGm;  // AIV UB -> GM (MTE3) [pto]
  d.llc_bytes = s.l2_bytes;          // [catlass]
  d.llc_bw = s.l2_bw;                // derived, see kL2BwAtReferenceClock
  d.local_bytes = kL1Bytes;          // AIC L1: where the cube stages the weight panel [catlass]
  d.local_bw = kL1ToL0b;             // L1 -> L0B: the weight's path into the cube [pto]

  d.matrix_flops = 2.0 * kCubeMacsPerCycle * s.clock_hz;  // 4096 MAC/cycle [cann]: 14.7 TFLOP/s per AIC at 1.8 GHz
  d.vector_ops = s.clock_hz;                              // one 256-B repeat per cycle per AIV [cann]
  d.vector_lanes = kVectorF32Lanes;                       // fp32 lanes of one repeat (128 fp16)
  // Derived: 128 fp16 outputs per kDequantRepeatsPer128 repeats (above): ~77 G weights/s per AIV.
  d.dequant_weights_per_s = kVectorF16Lanes / kDequantRepeatsPer128 * s.clock_hz;

  d.launch_s = kLaunchSeconds;
  d.sync_s = kSyncSeconds;
  d.workspace_l2_hit = kWorkspaceL2Hit;
  d.ring_slot_k = kSlotK;          // the vendor kernel's ring: one slot fills before the cube starts
  d.atomic_reduce = true;          // FixPipe adds split-K partials atomically into GM (ASCEND-910B.md)
  d.tile_n = kBaseN;               // the L0B base block: the data-parallel tile width per AIC (above)
  d.ring_k = kRingSlots * kSlotK;  // the vendor kernel's ring: kRingSlots slots of kSlotK rows per AIC
  return d;
}

}  // namespace w4a16::plan::devices::ascend910b
