// The one-parameter calibration of the 910B model (calibrate_ascend.hpp).
#include "model/calibrate_ascend.hpp"

#include <fmt/format.h>

#include <cmath>

namespace w4a16::model {

Solve solve_nondecreasing(const std::function<double(double)>& f, double target, double lo, double hi,
                          double x_tolerance, int max_iterations) {
  Solve s;
  const double f_lo = f(lo), f_hi = f(hi);
  if (!(f_lo <= target)) return {lo, f_lo, 0, false};  // already above the target at the low end
  if (!(f_hi >= target)) return {hi, f_hi, 0, false};  // cannot reach it at the high end
  // Invariant: f(lo) <= target <= f(hi).
  double f_mid = f_lo;
  while (hi - lo > x_tolerance && s.iterations < max_iterations) {
    const double mid = 0.5 * (lo + hi);
    f_mid = f(mid);
    ++s.iterations;
    if (f_mid < target) {
      lo = mid;
    } else {
      hi = mid;
    }
  }
  // The end of the final bracket whose value is nearer the target.
  const double a = f(lo), b = f(hi);
  s.bracketed = true;
  if (std::abs(a - target) <= std::abs(b - target)) {
    s.x = lo, s.f = a;
  } else {
    s.x = hi, s.f = b;
  }
  return s;
}

double best_vs_fp16(const plan::Device& device, const ModelSuite& suite, const EvalConfig& config) {
  return summarize(evaluate_suite(device, suite, config)).best_vs_fp16;
}

Calibration calibrate_workspace_l2_hit(const plan::Device& device, const ModelSuite& suite, const EvalConfig& config,
                                       double target) {
  plan::Device d = device;
  const auto ratio = [&](double hit) {
    d.workspace_l2_hit = hit;
    return best_vs_fp16(d, suite, config);
  };
  const Solve s = solve_nondecreasing(ratio, target, 0.0, 1.0, 1e-5);
  Calibration c;
  c.figure = target == kPaperBestVsFp16 ? "W4A16 reaches at most 1.48x over FP16 x FP16 (paper abstract)"
                                        : fmt::format("a best W4A16 / FP16 ratio of {:.3f} (given)", target);
  c.target = target;
  c.value = s.x;
  c.achieved = s.f;
  c.iterations = s.iterations;
  c.bracketed = s.bracketed;
  return c;
}

}  // namespace w4a16::model
