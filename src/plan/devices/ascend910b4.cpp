// "ascend910b4": Huawei Ascend 910B4 (Atlas A2). Sources, the generation's facts and the shared
// builder: ascend910b.hpp.
#include "plan/devices/ascend910b.hpp"
#include "plan/devices/device_entry.hpp"

namespace w4a16::plan::devices {

namespace {

constexpr double kClock = 1.5e9;  // [sim]
constexpr ascend910b::Sku kSku{
    .aic = 20,  // [hami]
    .clock_hz = kClock,
    .hbm = 0.8e12,                      // [sim]
    .l2_bytes = 96 * ascend910b::kMiB,  // [catlass]
    // The architecture's L2 : HBM ratio at this SKU's clock (ascend910b.hpp): 8 x 1.5 / 1.8 TB/s.
    .l2_bw = ascend910b::kL2BwAtReferenceClock * kClock / ascend910b::kReferenceClock,
};

Device ascend910b4() { return ascend910b::sku(entry_ascend910b4, kSku); }

}  // namespace

constinit const DeviceEntry entry_ascend910b4{
    .name = "ascend910b4",
    .order = 22,
    .summary = "Ascend 910B4: 20 AIC + 40 AIV, 1.5 GHz, HBM 0.8 TB/s, L2 96 MiB (ASCEND-910B.md)",
    .describe = &ascend910b4,
};

}  // namespace w4a16::plan::devices
