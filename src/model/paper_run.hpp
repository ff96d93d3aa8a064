// `w4a16 model` computed, before anything is printed: the device with its one calibrated parameter,
// the suite's evaluations and their summary, and the sensitivity table. paper_report.hpp prints it,
// paper_json.hpp writes it; docs/model.md explains each figure.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "model/calibrate_ascend.hpp"
#include "model/paper_eval.hpp"
#include "model/paper_suite.hpp"
#include "model/sensitivity.hpp"
#include "plan/device.hpp"

namespace w4a16::model {

struct PaperRun {
  plan::Device device;  // workspace_l2_hit as used: given, calibrated or the description's
  ModelSuite suite;
  EvalConfig config;
  int64_t tile_n = 0;                      // config.tile_n, or the device's default when that is 0
  std::optional<Calibration> calibration;  // on a decoupled NPU unless --l2-hit was given
  std::string l2_origin;                   // where workspace_l2_hit came from, in words
  std::vector<ShapeEval> evals;
  SuiteSummary summary;
  std::vector<SensitivityRow> sensitivity;
};

// The paper's evaluation of `suite` on `device`. workspace_l2_hit: l2_hit when it is >= 0, else
// calibrated against the paper's 1.48x on a decoupled NPU (a note on stderr), else the description's.
PaperRun run_paper_model(plan::Device device, ModelSuite suite, const EvalConfig& config, double l2_hit);

}  // namespace w4a16::model
