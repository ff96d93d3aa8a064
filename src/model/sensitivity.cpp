#include "model/sensitivity.hpp"

#include <fmt/format.h>

#include <cmath>
#include <set>
#include <utility>

#include "model/units_text.hpp"

namespace w4a16::model {

using plan::Device;

std::string SensitivityRow::splitk_range() const {
  return has_splitk ? fmt::format("{:.2f}x - {:.2f}x", summary.splitk_min, summary.splitk_max) : std::string("-");
}

namespace {

SensitivityRow sensitivity_row(std::string axis, std::string value, const Device& d, const ModelSuite& suite,
                               const EvalConfig& config) {
  const auto evals = evaluate_suite(d, suite, config);
  const auto s = summarize(evals);
  const auto& b = evals[s.best_index];
  return {std::move(axis), std::move(value), s, fmt::format("{}x{}x{}", b.m, b.shape.k, b.shape.n),
          config.force_split == 0};
}

}  // namespace

std::vector<SensitivityRow> sensitivity(const Device& device, const ModelSuite& suite, const EvalConfig& config) {
  std::vector<SensitivityRow> rows;
  const double hbm = hbm_bandwidth(device);
  for (double f : {0.5, 0.75, 1.0, 1.25}) {
    const Device d = with_hbm_bandwidth(device, f * hbm);
    rows.push_back(sensitivity_row("HBM bandwidth", gbps_text(f * hbm), d, suite, config));
  }
  std::set<double> hits = {0.0, 0.25, 0.5, 0.75, 0.9, 1.0};
  hits.insert(std::round(device.workspace_l2_hit * 1000) / 1000);
  for (double h : hits) {
    Device d = device;
    d.workspace_l2_hit = h;
    rows.push_back(sensitivity_row("workspace L2 hit", fmt::format("{:.3f}", h), d, suite, config));
  }
  for (int s : {1, 2, 3, 4, 5, 8, 10, 16, 20, 32}) {
    if (s > config.max_split) continue;
    EvalConfig c = config;
    c.force_split = s;
    rows.push_back(
        sensitivity_row("split factor S", s == 1 ? "1 (data-parallel)" : std::to_string(s), device, suite, c));
  }
  for (int64_t t : {64, 128, 256, 512}) {
    EvalConfig c = config;
    c.tile_n = t;
    rows.push_back(sensitivity_row("tile_n (both partitions)", std::to_string(t), device, suite, c));
  }
  return rows;
}

}  // namespace w4a16::model
