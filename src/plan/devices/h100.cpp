// "h100": NVIDIA H100 SXM5 80 GB. Sources ([h100-ds], [h100-wp], [a100-wp]) and the shared builder:
// nvidia.hpp.
#include "plan/devices/device_entry.hpp"
#include "plan/devices/nvidia.hpp"

namespace w4a16::plan::devices {

namespace {

constexpr double kClock = 1.98e9;  // max boost [h100-ds]
constexpr nvidia::Figures kFigures{
    .sms = 132,                                  // [h100-wp]
    .hbm = 3.35e12,                              // bytes/s [h100-ds]
    .l2_bytes = 50.0 * 1024 * 1024,              // [h100-wp]; cudaDeviceProp reports 50 MiB
    .l2_bw = nvidia::kL2BytesPerClock * kClock,  // assumed: the A100's per clock
    .dense_flops = 989.4e12,                     // dense fp16/bf16 tensor FLOP/s [h100-ds]
    .clock_hz = kClock,
    .smem_bytes = nvidia::kHopperSmemBytes,  // [h100-wp]
};

Device h100() { return nvidia::gpu(entry_h100, kFigures); }

}  // namespace

constinit const DeviceEntry entry_h100{
    .name = "h100",
    .order = 10,
    .summary = "NVIDIA H100 SXM5 80 GB: 132 SMs, 3.35 TB/s, 50 MB L2 (datasheet + whitepaper)",
    .describe = &h100,
};

}  // namespace w4a16::plan::devices
