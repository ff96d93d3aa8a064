// "h200": NVIDIA H200 SXM 141 GB, with the bandwidth and tensor rate measured on this project's lent
// H200 machines rather than the datasheet's. Sources ([h200-ds], [h200-ms], [h100-wp]) and the shared
// builder: nvidia.hpp.
#include "plan/devices/device_entry.hpp"
#include "plan/devices/nvidia.hpp"

namespace w4a16::plan::devices {

namespace {

constexpr double kClock = 1.98e9;  // SM clock read under load [h200-ms]
constexpr nvidia::Figures kFigures{
    .sms = 132,  // [h200-ms], as the H100 SXM [h100-wp]
    // HBM: 4.8 TB/s by the datasheet [h200-ds]; the copy measured here moved ~4.3 TB/s [h200-ms]. We use
    // the measured figure: it is the ceiling our own H200 runs are compared against.
    .hbm = 4.3e12,
    // As reported on the lent machine [h200-ms] (the H100 SXM: 50 MB).
    .l2_bytes = 60.0 * 1024 * 1024,
    .l2_bw = nvidia::kL2BytesPerClock * kClock,  // assumed, as for the H100
    // Dense bf16: 989.4 TFLOP/s by the datasheet (same compute as the H100 SXM [h200-ds]); ~790 measured
    // on random data [h200-ms]. We use the measured figure, for the same reason as the bandwidth.
    .dense_flops = 790e12,
    .clock_hz = kClock,
    .smem_bytes = nvidia::kHopperSmemBytes,  // [h100-wp]
};

Device h200() { return nvidia::gpu(entry_h200, kFigures); }

}  // namespace

constinit const DeviceEntry entry_h200{
    .name = "h200",
    .order = 11,
    .summary = "NVIDIA H200 SXM 141 GB: 132 SMs, 4.3 TB/s and 790 TFLOP/s as measured here (datasheet 4.8, 989)",
    .describe = &h200,
};

}  // namespace w4a16::plan::devices
