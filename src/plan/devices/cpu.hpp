// "cpu": the machine this process runs on, as the cost model sees it. The figures come from
// `w4a16 calibrate`, which measures them (src/measure/) and caches them in a small JSON file
// (cpu/calibration_file.hpp); without that file (or when it was written on another CPU) the
// built-in figures of the dev machine stand in, scaled to this process's CPU count and ISA, and
// Device::summary says so.
#pragma once

#include <optional>
#include <string>

#include "plan/device.hpp"
#include "plan/devices/cpu/calibration_file.hpp"

namespace w4a16::plan::devices {

// This CPU's description: from the calibration set by use_calibration() if any, else the cached
// file, else the defaults.
Device this_cpu();
// The description calibration `c` gives; `source` says where it comes from (the summary's last
// field; empty = the built-in defaults, which an AVX2-only CPU halves).
Device describe_cpu(const CpuCalibration& c, const std::string& source);
// Makes `c` this process's calibration (what `w4a16 bench --validate-model` measured in its own
// run), in preference to the file. Planning that already happened is not redone: the caller
// resets the planner's cached device and plans (plan::use_cpu_calibration does both).
// std::nullopt: back to the file or the defaults.
void use_calibration(const std::optional<CpuCalibration>& c);

}  // namespace w4a16::plan::devices
