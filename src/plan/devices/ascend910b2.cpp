// "ascend910b2": Huawei Ascend 910B2 (Atlas A2). Sources, the generation's facts and the shared
// builder: ascend910b.hpp.
#include "plan/devices/ascend910b.hpp"
#include "plan/devices/device_entry.hpp"

namespace w4a16::plan::devices {

namespace {

constexpr double kClock = 1.8e9;  // [sim]; the pto-isa cost model uses 1.85 GHz
constexpr ascend910b::Sku kSku{
    .aic = 24,  // [hami]
    .clock_hz = kClock,
    // The sources give 1.6 TB/s and one configuration 1.2 [sim]; we use 1.6 (`w4a16 model --hbm-gbps`
    // varies it, and the sensitivity table spans 0.8-1.6).
    .hbm = 1.6e12,
    .l2_bytes = 192 * ascend910b::kMiB,          // [catlass]
    .l2_bw = ascend910b::kL2BwAtReferenceClock,  // 5 x HBM [boost] at this clock (ascend910b.hpp)
};

Device ascend910b2() { return ascend910b::sku(entry_ascend910b2, kSku); }

}  // namespace

constinit const DeviceEntry entry_ascend910b2{
    .name = "ascend910b2",
    .order = 20,
    .summary = "Ascend 910B2: 24 AIC + 48 AIV, 1.8 GHz, HBM 1.6 TB/s, L2 192 MiB (ASCEND-910B.md)",
    .describe = &ascend910b2,
};

}  // namespace w4a16::plan::devices
