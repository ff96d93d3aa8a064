// Huawei Ascend 910B (Atlas A2) descriptions for the cost model: the SKUs 910B2, 910B3 and 910B4.
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
//   [pto]      pto-isa's cost model: per-core copy rates (devices.hpp, namespace ascend910b).
// Buffer sizes and copy rates that Device has no field for are named in devices.hpp.
#include <cmath>

#include "plan/devices/devices.hpp"

namespace w4a16::plan::devices {

namespace {

using namespace ascend910b;

// HBM bandwidth: the sources give 1.6 TB/s for the 910B2/B3 and one configuration 1.2; we use 1.6
// (`w4a16 model --hbm-gbps` varies it, and the sensitivity table spans 0.8-1.6). 910B4: 0.8 [sim].
constexpr double kHbmB2B3 = 1.6e12;
constexpr double kHbmB4 = 0.8e12;

// Clocks [sim]. The pto-isa cost model uses 1.85 GHz; the B2/B3 configurations 1.8.
constexpr double kClockB2B3 = 1.8e9;
constexpr double kClockB4 = 1.5e9;

// L2 [catlass]: 192 MiB on the B2/B3, 96 MiB on the B4.
constexpr double kMiB = 1024.0 * 1024.0;

// L2 bandwidth, derived: 5 x HBM [boost] on the 1.6 TB/s parts = 8 TB/s. The ratio is the
// architecture's, so on the B4 we scale the on-chip figure by its clock (8 x 1.5 / 1.8), not by its
// slower HBM.
constexpr double kL2BwB2B3 = 5.0 * kHbmB2B3;
constexpr double kL2BwB4 = kL2BwB2B3 * kClockB4 / kClockB2B3;

// Kernel start, assumed (no public figure): a MIX kernel dispatches blockDim AIC tasks and their AIVs;
// we take 3 us, the order of a GPU kernel launch. It adds the same to FP16 and W4A16 times.
constexpr double kLaunchSeconds = 3e-6;

// One cross-core hand-off, assumed (no public figure): CrossCoreSetFlag by the producer, the
// consumer's CrossCoreWaitFlag seeing it, plus the L2 transfer of the first block: 0.5 us. Paid per
// ring slot only when the pipeline drains, i.e. once at the start and once per split-K reduction.
constexpr double kSyncSeconds = 0.5e-6;

// Workspace L2 hit: the share of the AIV -> GM -> AIC round trip of the 16-bit weight served by L2
// instead of HBM. NOT a published figure: the one parameter calibrated, against the paper's 1.48x
// (`w4a16 model --device ascend910b3` solves for it; docs/model.md). The same value is used on
// every SKU: the ring (kRingSlots x kSlotK x 256 x 2 B per AIC, 20 MiB on the B3) fits every L2.
constexpr double kWorkspaceL2Hit = 0.766;

// Aggregate GM read bandwidth against busy cores: each core pulls at most GM->L1 [pto], all together
// at most HBM. One entry at the knee and one past it say that exactly (read_bw_at is proportional
// below the first entry, linear between entries, flat beyond the last).
std::map<int, double> saturating(double per_core, double hbm) {
  const int knee = static_cast<int>(std::floor(hbm / per_core));
  return {{knee, per_core * knee}, {knee + 1, hbm}};
}

Device make_910b(std::string name, std::string summary, int aic, double clock_hz, double hbm, double l2_bytes,
                 double l2_bw) {
  Device d;
  d.name = std::move(name);
  d.summary = std::move(summary);
  d.kind = DeviceKind::npu;
  d.cores = aic;                      // AIC (cube cores) [hami, catlass]
  d.vector_cores = kAivPerAic * aic;  // AIV: 1 AIC : 2 AIV [cann]
  d.fused_possible = false;           // AIV and AIC exchange data only through GM (ASCEND-910B.md)

  d.core_read_bw = kGmToL1;  // AIC GM -> L1 (MTE2) [pto]
  d.read_bw = saturating(d.core_read_bw, hbm);
  d.write_bw = hbm;                  // one HBM pool; the sources give one figure for both directions
  d.vector_core_read_bw = kGmToUb;   // AIV GM -> UB (MTE2) [pto]
  d.vector_core_write_bw = kUbToGm;  // AIV UB -> GM (MTE3) [pto]
  d.llc_bytes = l2_bytes;            // [catlass]
  d.llc_bw = l2_bw;                  // derived above
  d.local_bytes = kL1Bytes;          // AIC L1: where the cube stages the weight panel [catlass]
  d.local_bw = kL1ToL0b;             // L1 -> L0B: the weight's path into the cube [pto]

  d.matrix_flops = 2.0 * kCubeMacsPerCycle * clock_hz;  // 4096 MAC/cycle [cann]: 14.7 TFLOP/s per AIC at 1.8 GHz
  d.vector_ops = clock_hz;                              // one 256-B repeat per cycle per AIV [cann]
  d.vector_lanes = kVectorF32Lanes;                     // fp32 lanes of one repeat (128 fp16)
  // Derived: 128 fp16 outputs per kDequantRepeatsPer128 repeats (devices.hpp): ~77 G weights/s per AIV.
  d.dequant_weights_per_s = kVectorF16Lanes / kDequantRepeatsPer128 * clock_hz;

  d.launch_s = kLaunchSeconds;
  d.sync_s = kSyncSeconds;
  d.workspace_l2_hit = kWorkspaceL2Hit;
  d.ring_slot_k = ascend910b::kSlotK;  // the vendor kernel's ring: one slot fills before the cube starts
  d.atomic_reduce = true;              // FixPipe adds split-K partials atomically into GM (ASCEND-910B.md)
  return d;
}

}  // namespace

Device ascend910b2() {
  return make_910b("ascend910b2", "Ascend 910B2: 24 AIC + 48 AIV, 1.8 GHz, HBM 1.6 TB/s, L2 192 MiB (ASCEND-910B.md)",
                   24, kClockB2B3, kHbmB2B3, 192 * kMiB, kL2BwB2B3);
}

Device ascend910b3() {
  return make_910b("ascend910b3", "Ascend 910B3: 20 AIC + 40 AIV, 1.8 GHz, HBM 1.6 TB/s, L2 192 MiB (ASCEND-910B.md)",
                   20, kClockB2B3, kHbmB2B3, 192 * kMiB, kL2BwB2B3);
}

Device ascend910b4() {
  return make_910b("ascend910b4", "Ascend 910B4: 20 AIC + 40 AIV, 1.5 GHz, HBM 0.8 TB/s, L2 96 MiB (ASCEND-910B.md)",
                   20, kClockB4, kHbmB4, 96 * kMiB, kL2BwB4);
}

}  // namespace w4a16::plan::devices
