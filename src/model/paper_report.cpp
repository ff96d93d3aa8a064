#include "model/paper_report.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "model/units_text.hpp"
#include "plan/devices/ascend910b.hpp"

namespace w4a16::model {

namespace {

using plan::DeviceKind;

// How a predicted figure compares with the paper's: "agrees" within 10 %, else the relative gap.
std::string compare(double predicted, double paper) {
  const double rel = predicted / paper - 1.0;
  if (std::abs(rel) <= 0.10) return fmt::format("agrees ({:+.0f}%)", 100 * rel);
  return fmt::format("disagrees ({:+.0f}%)", 100 * rel);
}

// Rows of the per-shape tables: the distinct (K, N) of the suite, K/N descending.
std::vector<ModelShape> table_rows(const ModelSuite& suite) {
  std::vector<ModelShape> rows;
  std::set<std::pair<int64_t, int64_t>> seen;
  for (const auto& s : suite.shapes) {
    if (seen.insert({s.k, s.n}).second) rows.push_back(s);
  }
  std::stable_sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.k_over_n() > b.k_over_n(); });
  return rows;
}

const ShapeEval* find_eval(const std::vector<ShapeEval>& evals, int64_t m, int64_t k, int64_t n) {
  for (const auto& e : evals) {
    if (e.m == m && e.shape.k == k && e.shape.n == n) return &e;
  }
  return nullptr;
}

// One table: a row per (K, N), a column per M, each cell from `cell`.
template <typename Cell>
void print_table(const std::vector<ShapeEval>& evals, const ModelSuite& suite, const Cell& cell) {
  std::string header = fmt::format("  {:>13} {:>6} {:<28}", "K x N", "K/N", "layer");
  for (int64_t m : suite.m) header += fmt::format(" {:>13}", fmt::format("M={}", m));
  fmt::print("{}\n", header);
  for (const auto& row : table_rows(suite)) {
    std::string line = fmt::format("  {:>13} {:>6.2f} {:<28}", fmt::format("{}x{}", row.k, row.n), row.k_over_n(),
                                   (row.source + " " + row.layer).substr(0, 28));
    for (int64_t m : suite.m) {
      const auto* e = find_eval(evals, m, row.k, row.n);
      line += fmt::format(" {:>13}", e ? cell(*e) : std::string("-"));
    }
    fmt::print("{}\n", line);
  }
}

std::string terms_text(const plan::Prediction& p) {
  std::string out;
  for (const auto& t : p.terms) {
    out += fmt::format("{}{} {:.1f} us ({:.0f}%)", out.empty() ? "" : ", ", t.name, t.seconds * 1e6,
                       p.seconds > 0 ? 100 * t.seconds / p.seconds : 0.0);
  }
  return out;
}

std::string plan_text(const plan::Candidate& c) {
  std::string s =
      c.partition == Partition::split_k ? fmt::format("split-K S={}", c.split_k) : std::string("data-parallel");
  s += fmt::format(", tile_n {}, {} cores", c.tile_n, c.threads - c.vector_threads);
  if (c.vector_threads > 0) s += fmt::format(" + {} vector", c.vector_threads);
  return s;
}

// "<label> 12.3 us, <plan>; bound: <term>" and the terms on the next line, `indent` deeper.
void print_choice(const char* label, const Choice& c, const char* indent) {
  fmt::print("{}{} {:.1f} us, {}; bound: {}\n{}  {}\n", indent, label, c.prediction.seconds * 1e6,
             plan_text(c.candidate), c.prediction.bound, indent, terms_text(c.prediction));
}

void print_device(const PaperRun& run) {
  const plan::Device& device = run.device;
  std::string ms;
  for (int64_t m : run.suite.m) {
    if (!ms.empty()) ms += ',';  // not `"," + to_string(m)`: GCC 12's -Wrestrict false positive at -O3
    ms += std::to_string(m);
  }
  fmt::print("w4a16 model: device {} | suite {} ({} shapes x M {{{}}}) | g={} fp16 | tile_n {} | split-K S <= {}\n",
             device.name, run.suite.name, run.suite.shapes.size(), ms, run.config.group_size, run.tile_n,
             run.config.max_split);
  fmt::print("{}\n", device.summary);
  fmt::print(
      "  cores {} ({}) + {} vector | HBM {} (read with all cores), write {} | L2 {} at {} | per core: read {}, "
      "vector read {}, vector write {}\n",
      device.cores, plan::to_string(device.kind), device.vector_cores, gbps_text(hbm_bandwidth(device)),
      gbps_text(device.write_bw), mib_text(device.llc_bytes), gbps_text(device.llc_bw), gbps_text(device.core_read_bw),
      gbps_text(device.vector_core_read_bw), gbps_text(device.vector_core_write_bw));
  fmt::print(
      "  matrix {:.1f} TFLOP/s per core ({:.0f} in all) | dequant {:.1f} G weights/s per vector core | launch {:.1f} "
      "us, sync {:.1f} us | fused path: {} | workspace_l2_hit {:.3f} ({})\n",
      device.matrix_flops / 1e12, device.matrix_flops * device.cores / 1e12, device.dequant_weights_per_s / 1e9,
      device.launch_s * 1e6, device.sync_s * 1e6, device.fused_possible ? "yes" : "no", device.workspace_l2_hit,
      run.l2_origin);
  if (device.kind == DeviceKind::npu) {
    namespace b = plan::devices::ascend910b;
    fmt::print("  buffers per AIC: L1 {}, L0A {}, L0B {}, L0C {}; per AIV: UB {}; FixPipe L0C->GM {}\n",
               mib_text(b::kL1Bytes), mib_text(b::kL0aBytes), mib_text(b::kL0bBytes), mib_text(b::kL0cBytes),
               mib_text(b::kUbBytes), gbps_text(b::kL0cToGm));
  }
}

void print_method(const PaperRun& run) {
  const SuiteSummary& summary = run.summary;
  fmt::print("\nMethod: ONE parameter is calibrated against ONE figure of the paper; the other figure is predicted.\n");
  if (run.calibration) {
    const Calibration& c = *run.calibration;
    fmt::print(
        "  calibrated  workspace_l2_hit = {:.4f}: best W4A16/FP16 over the suite = {:.3f} (target: {}){}; "
        "bisection, {} steps\n",
        c.value, c.achieved, c.figure, c.bracketed ? "" : " -- NOT REACHABLE in [0, 1], nearest end kept",
        c.iterations);
  } else {
    fmt::print(
        "  not calibrated: workspace_l2_hit = {:.4f}, {}; best W4A16/FP16 = {:.3f} (paper: at most {:.2f}x, {})\n",
        run.device.workspace_l2_hit, run.l2_origin, summary.best_vs_fp16, kPaperBestVsFp16,
        compare(summary.best_vs_fp16, kPaperBestVsFp16));
  }
  if (run.device.kind != DeviceKind::npu) {
    fmt::print("  (the paper's figures are the Ascend 910's: on a {} they are a reference, not a target)\n",
               plan::to_string(run.device.kind));
  }
  fmt::print(
      "  predicted   split-K over data-parallel for K >> N (K >= 2N, every M; {} evaluations, split-K faster in {}): "
      "{:.2f}x - {:.2f}x\n",
      summary.splitk_count, summary.splitk_wins, summary.splitk_min, summary.splitk_max);
  fmt::print("              paper: {:.2f}x - {:.2f}x | low end {} | high end {}\n", kPaperSplitKMin, kPaperSplitKMax,
             compare(summary.splitk_min, kPaperSplitKMin), compare(summary.splitk_max, kPaperSplitKMax));
}

// (a) and (b): the per-shape tables.
void print_speedup_tables(const PaperRun& run) {
  fmt::print("\n(a) split-K over data-parallel, decoupled W4A16 (DP time / best split-K time; the split factor S)\n");
  print_table(run.evals, run.suite, [](const ShapeEval& e) {
    return fmt::format("{:.2f} S={}", e.splitk_speedup(), e.splitk.candidate.split_k);
  });
  fmt::print("\n(b) decoupled W4A16 over FP16 (FP16 time / best W4A16 time; both with their best partition)\n");
  print_table(run.evals, run.suite, [](const ShapeEval& e) { return fmt::format("{:.2f}", e.w4a16_vs_fp16()); });
  const auto& best = run.evals[run.summary.best_index];
  fmt::print("  best: {:.3f}x at M={} {}x{} ({} {}); paper: at most {:.2f}x\n", run.summary.best_vs_fp16, best.m,
             best.shape.k, best.shape.n, best.shape.source, best.shape.layer, kPaperBestVsFp16);
}

// The bytes per weight behind the HBM term (cost_model.cpp's npu formula): what the 16-bit round trip
// adds to the int4 stream, against FP16's 2 B.
void print_hbm_bytes(const PaperRun& run) {
  const double hit = run.device.workspace_l2_hit;
  const double int4 = 0.5 + 2.0 / double(run.config.group_size);  // codes + fp16 scales (sym)
  const double misses = (1.0 - hit) * 2.0 * 2.0;
  if (run.device.kind != DeviceKind::npu) return;
  fmt::print(
      "  HBM bytes per weight: int4 + scales {:.3f} B, 16-bit workspace write + read-back missing L2 "
      "(1 - {:.3f}) x 4 B = {:.3f} B: the round trip is {:.0f}% of the HBM traffic ({:.3f} B against FP16's "
      "2 B); L2 serves another {:.3f} B\n",
      int4, hit, misses, 100 * misses / (int4 + misses), int4 + misses, hit * 4.0);
}

// Why split-K wins where it wins most: the two plans of the largest predicted speed-up.
void print_largest_splitk(const std::vector<ShapeEval>& evals) {
  const ShapeEval* top = nullptr;
  for (const auto& e : evals) {
    if (k_much_larger(e.shape) && (!top || e.splitk_speedup() > top->splitk_speedup())) top = &e;
  }
  if (!top) return;
  fmt::print("  largest split-K speed-up, M={} {}x{} ({:.2f}x):\n", top->m, top->shape.k, top->shape.n,
             top->splitk_speedup());
  print_choice("data-parallel", top->dp, "    ");
  print_choice("split-K      ", top->splitk, "    ");
}

// (c): where the time goes at the best case, and what bounds the decoupled W4A16 over the suite.
void print_breakdown(const PaperRun& run) {
  const auto& best = run.evals[run.summary.best_index];
  fmt::print("\n(c) where the time goes, at the best case M={} {}x{}\n", best.m, best.shape.k, best.shape.n);
  print_choice("W4A16 decoupled", best.w4a16(), "  ");
  print_choice("FP16 dense     ", best.fp16, "  ");
  print_choice("fused (hypothetical)", best.fused, "  ");
  print_hbm_bytes(run);
  print_largest_splitk(run.evals);
  std::map<std::string, int> bounds;
  for (const auto& e : run.evals) ++bounds[e.w4a16().prediction.bound];
  std::string tally;
  for (const auto& [name, count] : bounds) tally += fmt::format("{}{}: {}", tally.empty() ? "" : ", ", name, count);
  fmt::print("  what bounds the decoupled W4A16 over the whole suite ({} evaluations): {}\n", run.evals.size(), tally);
}

// (d): per M, the largest decoupled/FP16, fused/FP16 and fused/decoupled ratios.
void print_fused(const PaperRun& run) {
  fmt::print("\n(d) a fused design on the same chip (fused_possible forced true): FP16 time / fused time\n");
  fmt::print("  {:>6} {:>18} {:>18} {:>18}\n", "M", "decoupled/FP16 max", "fused/FP16 max", "fused/decoupled max");
  for (int64_t m : run.suite.m) {
    double dec = 0, fus = 0, gain = 0;
    for (const auto& e : run.evals) {
      if (e.m != m) continue;
      dec = std::max(dec, e.w4a16_vs_fp16());
      fus = std::max(fus, e.fused_vs_fp16());
      gain = std::max(gain, e.w4a16().prediction.seconds / e.fused.prediction.seconds);
    }
    fmt::print("  {:>6} {:>18.2f} {:>18.2f} {:>18.2f}\n", m, dec, fus, gain);
  }
  fmt::print("  best fused over FP16: {:.2f}x (the int4 read alone would allow 2 B / (0.5 B + scales) = {:.2f}x)\n",
             run.summary.best_fused_vs_fp16, 2.0 / (0.5 + 2.0 / double(run.config.group_size)));
}

void print_sensitivity(const PaperRun& run) {
  fmt::print("\n(e) sensitivity (workspace_l2_hit held at {:.4f} unless it is the row's axis; nothing re-fitted)\n",
             run.device.workspace_l2_hit);
  fmt::print("  {:<26} {:>18} {:>16} {:>16} {:>22} {:>12}\n", "axis", "value", "best W4A16/FP16", "at MxKxN",
             "split-K range (K>>N)", "fused/FP16");
  for (const auto& r : run.sensitivity) {
    fmt::print("  {:<26} {:>18} {:>16.3f} {:>16} {:>22} {:>12.2f}\n", r.axis, r.value, r.summary.best_vs_fp16,
               r.best_shape, r.splitk_range(), r.summary.best_fused_vs_fp16);
  }
}

}  // namespace

void print_paper_run(const PaperRun& run) {
  print_device(run);
  print_method(run);
  print_speedup_tables(run);
  print_breakdown(run);
  print_fused(run);
  print_sensitivity(run);
}

}  // namespace w4a16::model
