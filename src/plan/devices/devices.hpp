// The built-in device descriptions other than "cpu" (devices/cpu.cpp): NVIDIA GPUs (nvidia.cpp) and the
// Ascend 910B SKUs (ascend910b.cpp). Each function returns a Device whose every constant is commented
// with its source in its .cpp file; device() (plan/device.cpp) looks them up by name.
//
// The Ascend on-chip buffers and copy paths that Device has no field for are named below, so that
// `w4a16 model` can print them beside the description and the tests can check them against it.
#pragma once

#include "plan/device.hpp"

namespace w4a16::plan::devices {

// NVIDIA (nvidia.cpp). kind = gpu, cores = SMs.
Device h100_sxm();  // "h100": H100 SXM5 80 GB
Device h200();      // "h200": H200 SXM 141 GB
Device a100();      // "a100": A100 SXM4 80 GB

// Huawei Ascend 910B (ascend910b.cpp), the decoupled Atlas A2 generation. kind = npu,
// cores = AIC (cube cores), vector_cores = AIV = 2 x AIC, fused_possible = false.
Device ascend910b2();  // "ascend910b2": 24 AIC, 1.6 TB/s, 192 MiB L2
Device ascend910b3();  // "ascend910b3": 20 AIC, 1.6 TB/s, 192 MiB L2 (the model's default)
Device ascend910b4();  // "ascend910b4": 20 AIC, 0.8 TB/s, 96 MiB L2, lower clock

// Facts of the 910B that Device has no field for. Sources: shared/ASCEND-910B.md, which names the
// catlass AtlasA2 architecture header (buffer sizes), CANN's AI Core documentation (cube and vector
// widths) and one public cost model of the copy paths (pto-isa's; rates in GiB/s per core and
// direction). The same on every SKU of the generation.
namespace ascend910b {

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

}  // namespace ascend910b

}  // namespace w4a16::plan::devices
