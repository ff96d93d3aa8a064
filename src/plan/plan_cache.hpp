// The plans of `gemm(x, w, y, options)`: chosen once per (shape, dtype, options, kernel table)
// by the planner and kept, so that a call after the first for its shape plans nothing and
// allocates nothing.
#pragma once

#include <memory>

#include "cpu/executor.hpp"
#include "plan/devices/cpu.hpp"

namespace w4a16::plan {

// This CPU's description ("cpu"), read once per process; replaced by use_cpu_calibration().
std::shared_ptr<const Device> cpu_device();
// Plans with calibration `c` from now on (devices::use_calibration; std::nullopt: the file or the
// defaults again) and forgets the plans already cached (decided with the old description).
void use_cpu_calibration(const std::optional<devices::CpuCalibration>& c);

// The executor's plan for M rows of `act` on weight `w`: the planner's choice under `options`
// (cached). Throws what the planner throws for options no plan meets.
cpu::ExecPlan cached_exec_plan(const PackedWeight::Impl& w, int64_t m, DType act, const GemmOptions& options,
                               const cpu::KernelTable& table);

// The planner's candidates for one call on this CPU (plan_candidates; not cached).
std::vector<GemmPlan> weight_plans(const PackedWeight::Impl& w, int64_t m, DType act, const GemmOptions& options,
                                   const cpu::KernelTable& table);

}  // namespace w4a16::plan
