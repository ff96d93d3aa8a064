// "a100": NVIDIA A100 SXM4 80 GB. Sources ([a100-ds], [a100-wp]) and the shared builder: nvidia.hpp.
#include "plan/devices/device_entry.hpp"
#include "plan/devices/nvidia.hpp"

namespace w4a16::plan::devices {

namespace {

constexpr double kClock = 1.41e9;  // boost [a100-wp]
constexpr nvidia::Figures kFigures{
    .sms = 108,                                  // [a100-wp]
    .hbm = 2.039e12,                             // bytes/s, SXM4 80 GB [a100-ds]
    .l2_bytes = 40.0 * 1024 * 1024,              // [a100-wp]; deviceQuery prints 41943040 bytes
    .l2_bw = nvidia::kL2BytesPerClock * kClock,  // 5120 B/clk [a100-wp] = 7.2 TB/s
    .dense_flops = 312e12,                       // dense fp16/bf16 tensor FLOP/s [a100-ds]
    .clock_hz = kClock,
    .smem_bytes = nvidia::kAmpereSmemBytes,  // [a100-wp]
};

Device a100() { return nvidia::gpu(entry_a100, kFigures); }

}  // namespace

constinit const DeviceEntry entry_a100{
    .name = "a100",
    .order = 12,
    .summary = "NVIDIA A100 SXM4 80 GB: 108 SMs, 2.04 TB/s, 40 MB L2 (datasheet + whitepaper)",
    .describe = &a100,
};

}  // namespace w4a16::plan::devices
