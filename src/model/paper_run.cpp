#include "model/paper_run.hpp"

#include <fmt/format.h>

#include <utility>

namespace w4a16::model {

namespace {

// The one calibrated parameter: solved on a decoupled NPU unless given; elsewhere the description's.
void settle_workspace_l2_hit(PaperRun& run, double l2_hit) {
  plan::Device& device = run.device;
  if (l2_hit >= 0) {
    device.workspace_l2_hit = l2_hit;
    run.l2_origin = "given by --l2-hit (not calibrated)";
  } else if (device.kind == plan::DeviceKind::npu && !device.fused_possible) {
    fmt::print(stderr, "calibrating workspace_l2_hit against the paper's {:.2f}x...\n", kPaperBestVsFp16);
    run.calibration = calibrate_workspace_l2_hit(device, run.suite, run.config);
    device.workspace_l2_hit = run.calibration->value;
    run.l2_origin = "calibrated";
  } else {
    run.l2_origin = "the description's; calibration applies to the decoupled NPU only";
  }
}

}  // namespace

PaperRun run_paper_model(plan::Device device, ModelSuite suite, const EvalConfig& config, double l2_hit) {
  PaperRun run;
  run.device = std::move(device);
  run.suite = std::move(suite);
  run.config = config;
  settle_workspace_l2_hit(run, l2_hit);
  run.evals = evaluate_suite(run.device, run.suite, run.config);
  run.summary = summarize(run.evals);
  run.tile_n = config.tile_n > 0 ? config.tile_n : default_tile_n(run.device);
  run.sensitivity = sensitivity(run.device, run.suite, run.config);
  return run;
}

}  // namespace w4a16::model
