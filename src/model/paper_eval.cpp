// Candidate plans on a modeled device and the best of each family (paper_eval.hpp).
#include "model/paper_eval.hpp"

#include <algorithm>

#include "common/check.hpp"
#include "plan/planner.hpp"

namespace w4a16::model {

using plan::Candidate;
using plan::Device;
using plan::DeviceKind;
using plan::Problem;

namespace {

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

}  // namespace

int64_t default_tile_n(const Device& device) { return plan::accelerator_tile_n(device); }

std::vector<Candidate> make_candidates(const Device& device, const Problem& problem, Strategy strategy,
                                       Partition partition, const EvalConfig& config, int split_k) {
  const int64_t tile_n = config.tile_n > 0 ? config.tile_n : default_tile_n(device);
  std::vector<Candidate> out;
  if (partition == Partition::data_parallel) {
    out.push_back(plan::accelerator_candidate(device, problem, strategy, tile_n, 1));
    return out;
  }
  // Split points on group boundaries: at most one slice per group.
  const int groups = static_cast<int>(std::min<int64_t>(ceil_div(problem.k, problem.group_size), 1 << 20));
  const int max_s = std::min(config.max_split, groups);
  if (split_k > 0) {
    if (split_k >= 2 && split_k <= groups)
      out.push_back(plan::accelerator_candidate(device, problem, strategy, tile_n, split_k));
    return out;
  }
  for (int s = 2; s <= max_s; ++s) out.push_back(plan::accelerator_candidate(device, problem, strategy, tile_n, s));
  return out;
}

Choice best_of(const Device& device, const Problem& problem, const std::vector<Candidate>& candidates) {
  if (candidates.empty())
    fail(ErrorCode::internal, "model: no candidate plan for {}x{}x{}", problem.m, problem.k, problem.n);
  Choice best;
  bool first = true;
  for (const auto& c : candidates) {
    plan::Prediction p = plan::predict(device, problem, c);
    if (first || p.seconds < best.prediction.seconds) {
      best = {c, std::move(p)};
      first = false;
    }
  }
  return best;
}

Device with_hbm_bandwidth(const Device& device, double bytes_per_s) {
  Device d = device;
  d.write_bw = bytes_per_s;
  const double per_core = device.core_read_bw;
  const int knee = per_core > 0 ? static_cast<int>(bytes_per_s / per_core) : 0;
  if (knee < 1) {
    d.read_bw = {{1, bytes_per_s}};
  } else {
    d.read_bw = {{knee, per_core * knee}, {knee + 1, bytes_per_s}};
  }
  return d;
}

double hbm_bandwidth(const Device& device) { return device.read_bw.empty() ? 0.0 : device.read_bw.rbegin()->second; }

Problem make_problem(const ModelShape& shape, int64_t m, const EvalConfig& config, bool quantized) {
  Problem p;
  p.m = m;
  p.k = shape.k;
  p.n = shape.n;
  p.group_size = config.group_size;
  p.zero_mode = config.zero_mode;
  p.act = config.act;
  p.scale_dtype = DType::f16;
  p.quantized = quantized;
  return p;
}

ShapeEval evaluate(const Device& device, const ModelShape& shape, int64_t m, const EvalConfig& config) {
  ShapeEval e;
  e.shape = shape;
  e.m = m;
  const Problem q = make_problem(shape, m, config, true);
  e.dp = best_of(device, q, make_candidates(device, q, Strategy::decoupled, Partition::data_parallel, config));
  if (config.force_split == 1) {
    e.splitk = e.dp;
  } else {
    auto splits = make_candidates(device, q, Strategy::decoupled, Partition::split_k, config, config.force_split);
    // A forced S larger than the groups allow falls back to data-parallel.
    e.splitk = splits.empty() ? e.dp : best_of(device, q, splits);
    if (config.force_split > 1) e.dp = e.splitk;  // the forced S is the only W4A16 plan
  }

  // FP16 baseline: the dense strategy on a 16-bit weight, best of both partitions.
  const Problem dense = make_problem(shape, m, config, false);
  auto both = make_candidates(device, dense, Strategy::dense, Partition::data_parallel, config);
  for (auto& c : make_candidates(device, dense, Strategy::dense, Partition::split_k, config)) both.push_back(c);
  e.fp16 = best_of(device, dense, both);

  // Fused, where the hardware would allow it.
  Device fusable = device;
  fusable.fused_possible = true;
  auto fused = make_candidates(fusable, q, Strategy::fused, Partition::data_parallel, config);
  for (auto& c : make_candidates(fusable, q, Strategy::fused, Partition::split_k, config)) fused.push_back(c);
  e.fused = best_of(fusable, q, fused);
  return e;
}

std::vector<ShapeEval> evaluate_suite(const Device& device, const ModelSuite& suite, const EvalConfig& config) {
  std::vector<ShapeEval> out;
  out.reserve(suite.shapes.size() * suite.m.size());
  for (int64_t m : suite.m) {
    for (const auto& shape : suite.shapes) out.push_back(evaluate(device, shape, m, config));
  }
  return out;
}

SuiteSummary summarize(const std::vector<ShapeEval>& evals) {
  SuiteSummary s;
  bool first_kn = true;
  for (size_t i = 0; i < evals.size(); ++i) {
    const auto& e = evals[i];
    if (e.w4a16_vs_fp16() > s.best_vs_fp16) {
      s.best_vs_fp16 = e.w4a16_vs_fp16();
      s.best_index = i;
    }
    s.best_fused_vs_fp16 = std::max(s.best_fused_vs_fp16, e.fused_vs_fp16());
    if (!k_much_larger(e.shape)) continue;
    const double r = e.splitk_speedup();
    s.splitk_min = first_kn ? r : std::min(s.splitk_min, r);
    s.splitk_max = first_kn ? r : std::max(s.splitk_max, r);
    first_kn = false;
    ++s.splitk_count;
    if (r > 1.0) ++s.splitk_wins;
  }
  return s;
}

}  // namespace w4a16::model
