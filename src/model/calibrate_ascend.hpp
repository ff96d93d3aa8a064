// Calibration of the Ascend 910B model, by the rule: fit at most ONE free parameter against
// ONE published figure, and predict the others.
//
//   calibrated  workspace_l2_hit, the share of the decoupled pipeline's 16-bit round trip through global
//               memory (AIV writes, AIC reads back) that L2 serves instead of HBM; no public source gives
//               it. It is solved so that the best W4A16 / FP16 ratio over the suite equals the paper's
//               "at most 1.48x".
//   predicted   split-K over data-parallel for K >> N (the paper: 1.01x-1.74x), from the same device
//               description with that one value, nothing else adjusted.
#pragma once

#include <functional>
#include <string>

#include "model/paper_eval.hpp"
#include "model/paper_suite.hpp"
#include "plan/device.hpp"

namespace w4a16::model {

// The paper's figures (shared/seed/paper-abstract.txt).
inline constexpr double kPaperBestVsFp16 = 1.48;  // W4A16 reaches at most 1.48x over FP16 x FP16
inline constexpr double kPaperSplitKMin = 1.01;   // split-K over data-parallel when K >> N
inline constexpr double kPaperSplitKMax = 1.74;

// Bisection for f(x) = target on [lo, hi], f nondecreasing in x. When the target is outside
// [f(lo), f(hi)] the nearer end is returned with bracketed = false.
struct Solve {
  double x = 0;  // the solution (or the nearer end)
  double f = 0;  // f(x)
  int iterations = 0;
  bool bracketed = false;
};
Solve solve_nondecreasing(const std::function<double(double)>& f, double target, double lo, double hi,
                          double x_tolerance = 1e-6, int max_iterations = 100);

struct Calibration {
  std::string parameter = "workspace_l2_hit";
  std::string figure;   // which published figure it was fitted to
  double target = 0;    // that figure
  double value = 0;     // the calibrated parameter
  double achieved = 0;  // the best W4A16 / FP16 ratio over the suite at `value`
  int iterations = 0;
  bool bracketed = false;  // false: no value in [0, 1] reaches the target; `value` is the nearer end
};

// The best W4A16 / FP16 ratio over the suite with `device` as given (summarize(...).best_vs_fp16).
double best_vs_fp16(const plan::Device& device, const ModelSuite& suite, const EvalConfig& config);

// Solves device.workspace_l2_hit in [0, 1] so that best_vs_fp16 equals `target`. The device's other
// fields are left as they are.
Calibration calibrate_workspace_l2_hit(const plan::Device& device, const ModelSuite& suite, const EvalConfig& config,
                                       double target = kPaperBestVsFp16);

}  // namespace w4a16::model
