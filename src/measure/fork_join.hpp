// The launch cost of a parallel phase on this machine, as `w4a16 calibrate` measures it for the
// "cpu" description (plan/devices/cpu/calibration_file.hpp, CpuCalibration::fork_join_us).
#pragma once

namespace w4a16::measure {

// One ThreadPool::run over all `threads` with empty parts, in microseconds (median of many): the
// launch cost of a parallel phase that the cost model charges (Device::launch_s).
double measure_fork_join_us(int threads);

// The same run when the workers sleep (they are left idle past their spin before each run), in
// microseconds (median): what a parallel call costs under the passive wait policy
// (set_worker_spin_us(0)), Device::wake_s.
double measure_wake_us(int threads);

}  // namespace w4a16::measure
