// What the NVIDIA GPU descriptions (h100.cpp, h200.cpp, a100.cpp) share: the sources they cite, the
// figures no datasheet gives (derived or assumed, with the arithmetic), and the one builder that turns
// a card's datasheet figures into a Device. A new NVIDIA card is one file that calls nvidia_gpu().
//
// Sources, named per constant as [tag]:
//   [h100-ds]  NVIDIA H100 Tensor Core GPU datasheet (SXM5): 3.35 TB/s HBM3, 989.4 TFLOP/s dense
//              fp16/bf16 tensor (1979 with 2:4 sparsity), 1.98 GHz max boost.
//   [h100-wp]  NVIDIA H100 Tensor Core GPU architecture whitepaper: 132 SMs on the SXM5 part, 50 MB L2.
//   [h200-ds]  NVIDIA H200 datasheet (SXM): 141 GB HBM3e at 4.8 TB/s; same GH100 compute as the H100 SXM.
//   [h200-ms]  measured on this project's lent H200 machines (/work/.library/device/KINDS.md, H200.md):
//              132 SMs and 60 MB of L2 as PyTorch reports them; device-to-device copy ~4.3 TB/s (bytes
//              read + written); 8192^3 bf16 matmul 769-798 TFLOP/s on random data; SM clock 1980 MHz
//              under load.
//   [a100-ds]  NVIDIA A100 datasheet (SXM4 80 GB): 2039 GB/s HBM2e, 312 TFLOP/s dense fp16/bf16 tensor.
//   [a100-wp]  NVIDIA A100 architecture whitepaper: 108 SMs, 40 MB L2, 5120 B/clk L2 read bandwidth;
//              1410 MHz boost (also what deviceQuery prints for an A100-SXM4-80GB).
// Where no source gives a figure the comment says "assumed" or "derived" and shows the arithmetic;
// those are the first candidates for a measurement (`w4a16 bench --backend cuda`).
#pragma once

#include <map>

#include "plan/device_registry.hpp"

namespace w4a16::plan::devices::nvidia {

// Int4 -> 16-bit dequantization on the SIMT pipes, derived: the register trick (mask the nibbles into
// the mantissa of a magic fp16 constant with lop3, subtract the constant, then multiply by the scale,
// two weights per half2 instruction) costs about 1.5 warp-lane instructions per weight; an SM issues
// 4 warp instructions (4 x 32 lanes) per clock, so about 128 / 1.5 = 85 weights per clock per SM.
inline constexpr double kDequantWeightsPerClockPerSm = 128.0 / 1.5;

// One kernel launch, assumed: back-to-back kernels of one stream start a few microseconds apart. No
// measurement in this project yet (the lent H200 was not available when this was written).
inline constexpr double kLaunchSeconds = 3e-6;

// One producer -> consumer hand-off through global memory (a flag written with release semantics,
// polled by another SM through L2), assumed: about 1 us including the fence.
inline constexpr double kSyncSeconds = 1e-6;

// What one SM can pull from HBM on its own, assumed: an SM with a deep async-copy pipeline reaches about
// twice its fair share (HBM / SMs), so half of the SMs saturate HBM. Only split-K's gain over
// data-parallel at few tiles depends on it.
inline constexpr double kSmShareFactor = 2.0;

// L2 read bandwidth per clock: 5120 B/clk [a100-wp]. NVIDIA gives no figure for Hopper; the H100 and
// H200 descriptions assume the same per clock.
inline constexpr double kL2BytesPerClock = 5120.0;

// Shared memory per SM: 228 KB on Hopper [h100-wp], 164 KB on the A100 [a100-wp].
inline constexpr double kHopperSmemBytes = 228 * 1024.0;
inline constexpr double kAmpereSmemBytes = 164 * 1024.0;

// One card's figures, each cited in its file.
struct Figures {
  int sms = 0;             // streaming multiprocessors
  double hbm = 0;          // HBM bandwidth, bytes/s
  double l2_bytes = 0;     // L2 size
  double l2_bw = 0;        // L2 bandwidth, bytes/s
  double dense_flops = 0;  // dense fp16/bf16 tensor FLOP/s of the whole card
  double clock_hz = 0;     // SM clock
  double smem_bytes = 0;   // shared memory per SM
};

// Aggregate HBM read bandwidth against busy SMs: each SM pulls at most `per_sm`, all together at most
// `hbm`. One entry at the knee says exactly that (read_bw_at is proportional below the first entry and
// flat beyond the last).
inline std::map<int, double> saturating(double per_sm, double hbm, int sms) {
  const int knee = static_cast<int>(hbm / per_sm);
  if (knee >= sms) return {{sms, per_sm * sms}};
  return {{knee, per_sm * knee}, {knee + 1, hbm}};
}

// The Device of card `entry` (its name and summary) with figures `f`.
inline Device gpu(const DeviceEntry& entry, const Figures& f) {
  Device d;
  d.name = std::string(entry.name);
  d.summary = std::string(entry.summary);
  d.kind = DeviceKind::gpu;
  d.cores = f.sms;
  d.vector_cores = f.sms;   // the SIMT pipes of the same SM dequantize
  d.tile_n = 128;           // CTA tile width: Marlin-class kernels use 64-256 columns
  d.fused_possible = true;  // registers feed the tensor cores directly (Marlin-style kernels)
  d.core_read_bw = kSmShareFactor * f.hbm / f.sms;
  d.read_bw = saturating(d.core_read_bw, f.hbm, f.sms);
  d.write_bw = f.hbm;  // one HBM pool; the datasheets give one figure for reads and writes
  d.vector_core_read_bw = d.core_read_bw;
  d.vector_core_write_bw = d.core_read_bw;
  d.llc_bytes = f.l2_bytes;
  d.llc_bw = f.l2_bw;
  d.local_bytes = f.smem_bytes;
  d.local_bw = 128.0 * f.clock_hz;  // shared memory delivers 128 B/clk per SM (32 banks x 4 B) [h100-wp, a100-wp]
  d.matrix_flops = f.dense_flops / f.sms;  // dense tensor rate per SM
  d.vector_ops = 4.0 * f.clock_hz;         // warp instructions issued per second (4 schedulers per SM)
  d.vector_lanes = 32;                     // lanes of one warp instruction
  d.dequant_weights_per_s = kDequantWeightsPerClockPerSm * f.clock_hz;
  d.launch_s = kLaunchSeconds;
  d.sync_s = kSyncSeconds;
  // The decoupled path writes the whole 16-bit W (dequant kernel) and reads it back (cuBLAS); when it
  // fits in L2, assumed all of it is served there. Not calibrated on GPUs (the one calibrated value is
  // the 910B's, docs/model.md).
  d.workspace_l2_hit = 1.0;
  return d;
}

}  // namespace w4a16::plan::devices::nvidia
