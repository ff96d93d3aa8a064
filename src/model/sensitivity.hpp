// Section (e) of `w4a16 model`: how the paper's findings move when one input of the model moves —
// HBM bandwidth, the workspace's L2 hit share, the split factor, the data-parallel tile width —
// with workspace_l2_hit held at its calibrated value unless it is the row's axis (nothing re-fitted).
#pragma once

#include <string>
#include <vector>

#include "model/paper_eval.hpp"
#include "model/paper_suite.hpp"
#include "plan/device.hpp"

namespace w4a16::model {

struct SensitivityRow {
  std::string axis;   // "HBM bandwidth", "workspace L2 hit", "split factor S", "tile_n (both partitions)"
  std::string value;  // the axis' value in this row, as printed
  SuiteSummary summary;
  std::string best_shape;  // "MxKxN" of summary.best_index
  bool has_splitk = true;  // false where S is forced: there is no split-K / data-parallel choice to compare

  // "1.01x - 1.74x", or "-" without a split-K choice.
  std::string splitk_range() const;
};

// Every row of the table, axis by axis, the suite evaluated again for each.
std::vector<SensitivityRow> sensitivity(const plan::Device& device, const ModelSuite& suite, const EvalConfig& config);

}  // namespace w4a16::model
