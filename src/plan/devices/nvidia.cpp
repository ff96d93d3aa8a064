// NVIDIA GPU descriptions for the cost model: H100 SXM5, H200 SXM, A100 SXM4 80 GB.
//
// Sources, named per constant below as [tag]:
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
#include "plan/devices/devices.hpp"

namespace w4a16::plan::devices {

namespace {

// Aggregate HBM read bandwidth against busy SMs: each SM pulls at most `per_sm`, all together at most
// `hbm`. One entry at the knee says exactly that (read_bw_at is proportional below the first entry and
// flat beyond the last).
std::map<int, double> saturating(double per_sm, double hbm, int sms) {
  const int knee = static_cast<int>(hbm / per_sm);
  if (knee >= sms) return {{sms, per_sm * sms}};
  return {{knee, per_sm * knee}, {knee + 1, hbm}};
}

// Int4 -> 16-bit dequantization on the SIMT pipes, derived: the register trick (mask the nibbles into
// the mantissa of a magic fp16 constant with lop3, subtract the constant, then multiply by the scale,
// two weights per half2 instruction) costs about 1.5 warp-lane instructions per weight; an SM issues
// 4 warp instructions (4 x 32 lanes) per clock, so about 128 / 1.5 = 85 weights per clock per SM.
constexpr double kDequantWeightsPerClockPerSm = 128.0 / 1.5;

// One kernel launch, assumed: back-to-back kernels of one stream start a few microseconds apart. No
// measurement in this project yet (the lent H200 was not available when this was written).
constexpr double kLaunchSeconds = 3e-6;

// One producer -> consumer hand-off through global memory (a flag written with release semantics,
// polled by another SM through L2), assumed: about 1 us including the fence.
constexpr double kSyncSeconds = 1e-6;

// What one SM can pull from HBM on its own, assumed: an SM with a deep async-copy pipeline reaches about
// twice its fair share (HBM / SMs), so half of the SMs saturate HBM. Only split-K's gain over
// data-parallel at few tiles depends on it.
constexpr double kSmShareFactor = 2.0;

Device gpu(std::string name, std::string summary, int sms, double hbm, double l2_bytes, double l2_bw,
           double dense_flops, double clock_hz) {
  Device d;
  d.name = std::move(name);
  d.summary = std::move(summary);
  d.kind = DeviceKind::gpu;
  d.cores = sms;
  d.vector_cores = sms;     // the SIMT pipes of the same SM dequantize
  d.fused_possible = true;  // registers feed the tensor cores directly (Marlin-style kernels)
  d.core_read_bw = kSmShareFactor * hbm / sms;
  d.read_bw = saturating(d.core_read_bw, hbm, sms);
  d.write_bw = hbm;  // one HBM pool; the datasheets give one figure for reads and writes
  d.vector_core_read_bw = d.core_read_bw;
  d.vector_core_write_bw = d.core_read_bw;
  d.llc_bytes = l2_bytes;
  d.llc_bw = l2_bw;
  d.local_bytes = 228 * 1024.0;        // shared memory per SM: 228 KB on Hopper [h100-wp], 164 KB on A100 (set below)
  d.local_bw = 128.0 * clock_hz;       // shared memory delivers 128 B/clk per SM (32 banks x 4 B) [h100-wp, a100-wp]
  d.matrix_flops = dense_flops / sms;  // dense tensor rate per SM
  d.vector_ops = 4.0 * clock_hz;       // warp instructions issued per second (4 schedulers per SM)
  d.vector_lanes = 32;                 // lanes of one warp instruction
  d.dequant_weights_per_s = kDequantWeightsPerClockPerSm * clock_hz;
  d.launch_s = kLaunchSeconds;
  d.sync_s = kSyncSeconds;
  // The decoupled path writes the whole 16-bit W (dequant kernel) and reads it back (cuBLAS); when it
  // fits in L2, assumed all of it is served there. Not calibrated on GPUs (the one calibrated value is
  // the 910B's, docs/model.md).
  d.workspace_l2_hit = 1.0;
  return d;
}

}  // namespace

Device h100_sxm() {
  constexpr double kHbm = 3.35e12;            // bytes/s [h100-ds]
  constexpr int kSms = 132;                   // [h100-wp]
  constexpr double kL2 = 50.0 * 1024 * 1024;  // [h100-wp]; cudaDeviceProp reports 50 MiB
  constexpr double kDense = 989.4e12;         // dense fp16/bf16 tensor FLOP/s [h100-ds]
  constexpr double kClock = 1.98e9;           // max boost [h100-ds]
  // L2 bandwidth, assumed: the A100's 5120 B/clk [a100-wp] at the H100's clock (NVIDIA gives no figure).
  constexpr double kL2Bw = 5120.0 * kClock;
  return gpu("h100", "NVIDIA H100 SXM5 80 GB: 132 SMs, 3.35 TB/s, 50 MB L2 (datasheet + whitepaper)", kSms, kHbm, kL2,
             kL2Bw, kDense, kClock);
}

Device h200() {
  // HBM: 4.8 TB/s by the datasheet [h200-ds]; the copy measured here moved ~4.3 TB/s [h200-ms]. We use
  // the measured figure: it is the ceiling our own H200 runs are compared against.
  constexpr double kHbm = 4.3e12;
  constexpr int kSms = 132;                   // [h200-ms], as the H100 SXM [h100-wp]
  constexpr double kL2 = 60.0 * 1024 * 1024;  // as reported on the lent machine [h200-ms] (the H100 SXM: 50 MB)
  // Dense bf16: 989.4 TFLOP/s by the datasheet (same compute as the H100 SXM [h200-ds]); ~790 measured
  // on random data [h200-ms]. We use the measured figure, for the same reason as the bandwidth.
  constexpr double kDense = 790e12;
  constexpr double kClock = 1.98e9;          // SM clock read under load [h200-ms]
  constexpr double kL2Bw = 5120.0 * kClock;  // assumed, as for the H100
  return gpu("h200", "NVIDIA H200 SXM 141 GB: 132 SMs, 4.3 TB/s and 790 TFLOP/s as measured here (datasheet 4.8, 989)",
             kSms, kHbm, kL2, kL2Bw, kDense, kClock);
}

Device a100() {
  constexpr double kHbm = 2.039e12;           // bytes/s, SXM4 80 GB [a100-ds]
  constexpr int kSms = 108;                   // [a100-wp]
  constexpr double kL2 = 40.0 * 1024 * 1024;  // [a100-wp]; deviceQuery prints 41943040 bytes
  constexpr double kDense = 312e12;           // dense fp16/bf16 tensor FLOP/s [a100-ds]
  constexpr double kClock = 1.41e9;           // boost [a100-wp]
  constexpr double kL2Bw = 5120.0 * kClock;   // 5120 B/clk [a100-wp] = 7.2 TB/s
  Device d = gpu("a100", "NVIDIA A100 SXM4 80 GB: 108 SMs, 2.04 TB/s, 40 MB L2 (datasheet + whitepaper)", kSms, kHbm,
                 kL2, kL2Bw, kDense, kClock);
  d.local_bytes = 164 * 1024.0;  // shared memory per SM on A100 [a100-wp]
  return d;
}

}  // namespace w4a16::plan::devices
