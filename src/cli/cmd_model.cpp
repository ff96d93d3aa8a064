// `w4a16 model --device ascend910b3 [--suite paper] [--hbm-gbps X] [--l2-hit H] [--json FILE]`: the
// paper's evaluation on a modeled device, predicted with the cost model (plan/cost_model.hpp).
//
// Printed, in order: the device description; the calibration (ONE parameter, workspace_l2_hit, fitted
// to ONE figure, the paper's "at most 1.48x over FP16", and the split-K range PREDICTED from it, each
// with the paper's figure beside it); (a) split-K over data-parallel per shape and M; (b) decoupled
// W4A16 over FP16; (c) the breakdown of the best case, showing which term bounds it; (d) a fused design
// on the same chip; (e) the sensitivity of the findings to HBM bandwidth, the L2 hit share, the split
// factor and the data-parallel tile width. docs/model.md explains each; bench/model_plot.py
// draws the --json output.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "cli/arg_checks.hpp"
#include "cli/commands.hpp"
#include "common/check.hpp"
#include "io/atomic_file.hpp"
#include "model/calibrate_ascend.hpp"
#include "model/paper_eval.hpp"
#include "model/paper_suite.hpp"
#include "plan/cost_model.hpp"
#include "plan/device.hpp"
#include "plan/devices/devices.hpp"

namespace w4a16::cli {

namespace {

using nlohmann::json;
using plan::Device;
using plan::DeviceKind;

constexpr const char* kSchema = "w4a16-model/1";  // docs/model.md, "JSON output"

struct ModelArgs {
  std::string device = "ascend910b3";
  std::string suite = "paper";
  double hbm_gbps = 0;  // 0 = the description's
  double l2_hit = -1;   // < 0 = calibrate (npu) or the description's (others)
  int64_t tile_n = 0;   // 0 = the device's default
  int64_t max_split = 32;
  int64_t group_size = 128;
  std::string m;  // batch list override
  std::string json_path;
};

// ---------------------------------------------------------------- formatting helpers

std::string gbps(double bytes_per_s) { return fmt::format("{:.0f} GB/s", bytes_per_s / 1e9); }

std::string mib(double bytes) {
  return bytes >= 1024.0 * 1024.0 ? fmt::format("{:.0f} MiB", bytes / (1024.0 * 1024.0))
                                  : fmt::format("{:.0f} KiB", bytes / 1024.0);
}

// How a predicted figure compares with the paper's: "agrees" within 10 %, else the relative gap.
std::string compare(double predicted, double paper) {
  const double rel = predicted / paper - 1.0;
  if (std::abs(rel) <= 0.10) return fmt::format("agrees ({:+.0f}%)", 100 * rel);
  return fmt::format("disagrees ({:+.0f}%)", 100 * rel);
}

// Rows of the per-shape tables: the distinct (K, N) of the suite, K/N descending.
std::vector<model::ModelShape> table_rows(const model::ModelSuite& suite) {
  std::vector<model::ModelShape> rows;
  std::set<std::pair<int64_t, int64_t>> seen;
  for (const auto& s : suite.shapes) {
    if (seen.insert({s.k, s.n}).second) rows.push_back(s);
  }
  std::stable_sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.k_over_n() > b.k_over_n(); });
  return rows;
}

const model::ShapeEval* find_eval(const std::vector<model::ShapeEval>& evals, int64_t m, int64_t k, int64_t n) {
  for (const auto& e : evals) {
    if (e.m == m && e.shape.k == k && e.shape.n == n) return &e;
  }
  return nullptr;
}

// One table: a row per (K, N), a column per M, each cell from `cell`.
template <typename Cell>
void print_table(const std::vector<model::ShapeEval>& evals, const model::ModelSuite& suite, const Cell& cell) {
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

// ---------------------------------------------------------------- JSON

json device_json(const Device& d) {
  json j = {{"name", d.name},
            {"summary", d.summary},
            {"kind", std::string(plan::to_string(d.kind))},
            {"cores", d.cores},
            {"vector_cores", d.vector_cores},
            {"fused_possible", d.fused_possible},
            {"hbm_bytes_per_s", model::hbm_bandwidth(d)},
            {"write_bytes_per_s", d.write_bw},
            {"core_read_bytes_per_s", d.core_read_bw},
            {"vector_core_read_bytes_per_s", d.vector_core_read_bw},
            {"vector_core_write_bytes_per_s", d.vector_core_write_bw},
            {"l2_bytes", d.llc_bytes},
            {"l2_bytes_per_s", d.llc_bw},
            {"local_bytes", d.local_bytes},
            {"local_bytes_per_s", d.local_bw},
            {"matrix_flops_per_core", d.matrix_flops},
            {"dequant_weights_per_s_per_vector_core", d.dequant_weights_per_s},
            {"launch_s", d.launch_s},
            {"sync_s", d.sync_s},
            {"workspace_l2_hit", d.workspace_l2_hit}};
  json read = json::object();
  for (const auto& [cores, bw] : d.read_bw) read[std::to_string(cores)] = bw;
  j["read_bw"] = read;
  return j;
}

json choice_json(const model::Choice& c) {
  json terms = json::object();
  for (const auto& t : c.prediction.terms) terms[t.name] = t.seconds * 1e3;
  return {{"ms", c.ms()},
          {"bound", c.prediction.bound},
          {"partition", c.candidate.partition == Partition::split_k ? "splitk" : "dp"},
          {"split_k", c.candidate.split_k},
          {"tile_n", c.candidate.tile_n},
          {"threads", c.candidate.threads},
          {"vector_threads", c.candidate.vector_threads},
          {"terms_ms", terms}};
}

json eval_json(const model::ShapeEval& e) {
  return {{"source", e.shape.source},
          {"layer", e.shape.layer},
          {"m", e.m},
          {"k", e.shape.k},
          {"n", e.shape.n},
          {"k_over_n", e.shape.k_over_n()},
          {"k_much_larger", model::k_much_larger(e.shape)},
          {"splitk_speedup", e.splitk_speedup()},
          {"w4a16_vs_fp16", e.w4a16_vs_fp16()},
          {"fused_vs_fp16", e.fused_vs_fp16()},
          {"dp", choice_json(e.dp)},
          {"splitk", choice_json(e.splitk)},
          {"fp16", choice_json(e.fp16)},
          {"fused", choice_json(e.fused)}};
}

// ---------------------------------------------------------------- the sensitivity table

struct SensitivityRow {
  std::string axis;
  std::string value;
  model::SuiteSummary summary;
  std::string best_shape;
  bool has_splitk = true;  // false where S is forced: there is no split-K / data-parallel choice to compare

  std::string splitk_range() const {
    return has_splitk ? fmt::format("{:.2f}x - {:.2f}x", summary.splitk_min, summary.splitk_max) : std::string("-");
  }
};

SensitivityRow sensitivity_row(std::string axis, std::string value, const Device& d, const model::ModelSuite& suite,
                               const model::EvalConfig& config) {
  const auto evals = model::evaluate_suite(d, suite, config);
  const auto s = model::summarize(evals);
  const auto& b = evals[s.best_index];
  return {std::move(axis), std::move(value), s, fmt::format("{}x{}x{}", b.m, b.shape.k, b.shape.n),
          config.force_split == 0};
}

std::vector<SensitivityRow> sensitivity(const Device& device, const model::ModelSuite& suite,
                                        const model::EvalConfig& config) {
  std::vector<SensitivityRow> rows;
  const double hbm = model::hbm_bandwidth(device);
  for (double f : {0.5, 0.75, 1.0, 1.25}) {
    const Device d = model::with_hbm_bandwidth(device, f * hbm);
    rows.push_back(sensitivity_row("HBM bandwidth", gbps(f * hbm), d, suite, config));
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
    model::EvalConfig c = config;
    c.force_split = s;
    rows.push_back(
        sensitivity_row("split factor S", s == 1 ? "1 (data-parallel)" : std::to_string(s), device, suite, c));
  }
  for (int64_t t : {64, 128, 256, 512}) {
    model::EvalConfig c = config;
    c.tile_n = t;
    rows.push_back(sensitivity_row("tile_n (both partitions)", std::to_string(t), device, suite, c));
  }
  return rows;
}

// ---------------------------------------------------------------- the command

void run_model(const ModelArgs& a) {
  const auto names = plan::device_names();
  if (std::find(names.begin(), names.end(), a.device) == names.end()) {
    std::string list;
    for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
    throw UsageError(fmt::format("model: --device must be one of {}, got {}", list, shown(a.device)));
  }
  Device device = plan::device(a.device);
  if (a.hbm_gbps > 0) device = model::with_hbm_bandwidth(device, a.hbm_gbps * 1e9);

  std::string suites;
  bool known = false;
  for (const auto& s : model::model_suites()) {
    suites += (suites.empty() ? "" : ", ") + s.name;
    known = known || s.name == a.suite;
  }
  if (!known) throw UsageError(fmt::format("model: --suite must be one of {}, got {}", suites, shown(a.suite)));
  model::ModelSuite suite = model::model_suite(a.suite);
  if (!a.m.empty()) {
    suite.m.clear();
    for (const auto item : split(a.m, ',')) {
      if (!item.empty()) suite.m.push_back(*parse_int64(item));  // checked by the option's validator
    }
  }
  model::EvalConfig config;
  config.group_size = a.group_size;
  config.tile_n = a.tile_n;
  config.max_split = static_cast<int>(a.max_split);

  // The one calibrated parameter: solved on a decoupled NPU unless given; elsewhere the description's.
  std::optional<model::Calibration> calibration;
  std::string l2_origin;
  if (a.l2_hit >= 0) {
    device.workspace_l2_hit = a.l2_hit;
    l2_origin = "given by --l2-hit (not calibrated)";
  } else if (device.kind == DeviceKind::npu && !device.fused_possible) {
    fmt::print(stderr, "calibrating workspace_l2_hit against the paper's {:.2f}x...\n", model::kPaperBestVsFp16);
    calibration = model::calibrate_workspace_l2_hit(device, suite, config);
    device.workspace_l2_hit = calibration->value;
    l2_origin = "calibrated";
  } else {
    l2_origin = "the description's; calibration applies to the decoupled NPU only";
  }

  const auto evals = model::evaluate_suite(device, suite, config);
  const auto summary = model::summarize(evals);
  const int64_t tile_n = config.tile_n > 0 ? config.tile_n : model::default_tile_n(device);

  std::string ms;
  for (int64_t m : suite.m) ms += (ms.empty() ? "" : ",") + std::to_string(m);
  fmt::print("w4a16 model: device {} | suite {} ({} shapes x M {{{}}}) | g={} fp16 | tile_n {} | split-K S <= {}\n",
             device.name, suite.name, suite.shapes.size(), ms, config.group_size, tile_n, config.max_split);
  fmt::print("{}\n", device.summary);
  fmt::print(
      "  cores {} ({}) + {} vector | HBM {} (read with all cores), write {} | L2 {} at {} | per core: read {}, "
      "vector read {}, vector write {}\n",
      device.cores, plan::to_string(device.kind), device.vector_cores, gbps(model::hbm_bandwidth(device)),
      gbps(device.write_bw), mib(device.llc_bytes), gbps(device.llc_bw), gbps(device.core_read_bw),
      gbps(device.vector_core_read_bw), gbps(device.vector_core_write_bw));
  fmt::print(
      "  matrix {:.1f} TFLOP/s per core ({:.0f} in all) | dequant {:.1f} G weights/s per vector core | launch {:.1f} "
      "us, sync {:.1f} us | fused path: {} | workspace_l2_hit {:.3f} ({})\n",
      device.matrix_flops / 1e12, device.matrix_flops * device.cores / 1e12, device.dequant_weights_per_s / 1e9,
      device.launch_s * 1e6, device.sync_s * 1e6, device.fused_possible ? "yes" : "no", device.workspace_l2_hit,
      l2_origin);
  if (device.kind == DeviceKind::npu) {
    namespace b = plan::devices::ascend910b;
    fmt::print("  buffers per AIC: L1 {}, L0A {}, L0B {}, L0C {}; per AIV: UB {}; FixPipe L0C->GM {}\n",
               mib(b::kL1Bytes), mib(b::kL0aBytes), mib(b::kL0bBytes), mib(b::kL0cBytes), mib(b::kUbBytes),
               gbps(b::kL0cToGm));
  }

  // ---- calibrated vs predicted
  fmt::print("\nMethod: ONE parameter is calibrated against ONE figure of the paper; the other figure is predicted.\n");
  if (calibration) {
    fmt::print(
        "  calibrated  workspace_l2_hit = {:.4f}: best W4A16/FP16 over the suite = {:.3f} (target: {}){}; "
        "bisection, {} steps\n",
        calibration->value, calibration->achieved, calibration->figure,
        calibration->bracketed ? "" : " -- NOT REACHABLE in [0, 1], nearest end kept", calibration->iterations);
  } else {
    fmt::print(
        "  not calibrated: workspace_l2_hit = {:.4f}, {}; best W4A16/FP16 = {:.3f} (paper: at most {:.2f}x, {})\n",
        device.workspace_l2_hit, l2_origin, summary.best_vs_fp16, model::kPaperBestVsFp16,
        compare(summary.best_vs_fp16, model::kPaperBestVsFp16));
  }
  if (device.kind != DeviceKind::npu) {
    fmt::print("  (the paper's figures are the Ascend 910's: on a {} they are a reference, not a target)\n",
               plan::to_string(device.kind));
  }
  fmt::print(
      "  predicted   split-K over data-parallel for K >> N (K >= 2N, every M; {} evaluations, split-K faster in {}): "
      "{:.2f}x - {:.2f}x\n",
      summary.splitk_count, summary.splitk_wins, summary.splitk_min, summary.splitk_max);
  fmt::print("              paper: {:.2f}x - {:.2f}x | low end {} | high end {}\n", model::kPaperSplitKMin,
             model::kPaperSplitKMax, compare(summary.splitk_min, model::kPaperSplitKMin),
             compare(summary.splitk_max, model::kPaperSplitKMax));

  // ---- (a)
  fmt::print("\n(a) split-K over data-parallel, decoupled W4A16 (DP time / best split-K time; the split factor S)\n");
  print_table(evals, suite, [](const model::ShapeEval& e) {
    return fmt::format("{:.2f} S={}", e.splitk_speedup(), e.splitk.candidate.split_k);
  });

  // ---- (b)
  fmt::print("\n(b) decoupled W4A16 over FP16 (FP16 time / best W4A16 time; both with their best partition)\n");
  print_table(evals, suite, [](const model::ShapeEval& e) { return fmt::format("{:.2f}", e.w4a16_vs_fp16()); });
  const auto& best = evals[summary.best_index];
  fmt::print("  best: {:.3f}x at M={} {}x{} ({} {}); paper: at most {:.2f}x\n", summary.best_vs_fp16, best.m,
             best.shape.k, best.shape.n, best.shape.source, best.shape.layer, model::kPaperBestVsFp16);

  // ---- (c)
  fmt::print("\n(c) where the time goes, at the best case M={} {}x{}\n", best.m, best.shape.k, best.shape.n);
  const auto& w = best.w4a16();
  fmt::print("  W4A16 decoupled {:.1f} us, {}; bound: {}\n    {}\n", w.prediction.seconds * 1e6, plan_text(w.candidate),
             w.prediction.bound, terms_text(w.prediction));
  fmt::print("  FP16 dense      {:.1f} us, {}; bound: {}\n    {}\n", best.fp16.prediction.seconds * 1e6,
             plan_text(best.fp16.candidate), best.fp16.prediction.bound, terms_text(best.fp16.prediction));
  fmt::print("  fused (hypothetical) {:.1f} us, {}; bound: {}\n    {}\n", best.fused.prediction.seconds * 1e6,
             plan_text(best.fused.candidate), best.fused.prediction.bound, terms_text(best.fused.prediction));
  {
    // The bytes per weight behind the HBM term (cost_model.cpp's npu formula): what the 16-bit round trip
    // adds to the int4 stream, against FP16's 2 B.
    const double int4 = 0.5 + 2.0 / double(config.group_size);  // codes + fp16 scales (sym)
    const double misses = (1.0 - device.workspace_l2_hit) * 2.0 * 2.0;
    if (device.kind == DeviceKind::npu) {
      fmt::print(
          "  HBM bytes per weight: int4 + scales {:.3f} B, 16-bit workspace write + read-back missing L2 "
          "(1 - {:.3f}) x 4 B = {:.3f} B: the round trip is {:.0f}% of the HBM traffic ({:.3f} B against FP16's "
          "2 B); L2 serves another {:.3f} B\n",
          int4, device.workspace_l2_hit, misses, 100 * misses / (int4 + misses), int4 + misses,
          device.workspace_l2_hit * 4.0);
    }
  }
  {
    // Why split-K wins where it wins most: the two plans of the largest predicted speed-up.
    const model::ShapeEval* top = nullptr;
    for (const auto& e : evals) {
      if (model::k_much_larger(e.shape) && (!top || e.splitk_speedup() > top->splitk_speedup())) top = &e;
    }
    if (top) {
      fmt::print("  largest split-K speed-up, M={} {}x{} ({:.2f}x):\n", top->m, top->shape.k, top->shape.n,
                 top->splitk_speedup());
      fmt::print("    data-parallel {:.1f} us, {}; bound: {}\n      {}\n", top->dp.prediction.seconds * 1e6,
                 plan_text(top->dp.candidate), top->dp.prediction.bound, terms_text(top->dp.prediction));
      fmt::print("    split-K       {:.1f} us, {}; bound: {}\n      {}\n", top->splitk.prediction.seconds * 1e6,
                 plan_text(top->splitk.candidate), top->splitk.prediction.bound, terms_text(top->splitk.prediction));
    }
  }
  std::map<std::string, int> bounds;
  for (const auto& e : evals) ++bounds[e.w4a16().prediction.bound];
  std::string tally;
  for (const auto& [name, count] : bounds) tally += fmt::format("{}{}: {}", tally.empty() ? "" : ", ", name, count);
  fmt::print("  what bounds the decoupled W4A16 over the whole suite ({} evaluations): {}\n", evals.size(), tally);

  // ---- (d)
  fmt::print("\n(d) a fused design on the same chip (fused_possible forced true): FP16 time / fused time\n");
  fmt::print("  {:>6} {:>18} {:>18} {:>18}\n", "M", "decoupled/FP16 max", "fused/FP16 max", "fused/decoupled max");
  for (int64_t m : suite.m) {
    double dec = 0, fus = 0, gain = 0;
    for (const auto& e : evals) {
      if (e.m != m) continue;
      dec = std::max(dec, e.w4a16_vs_fp16());
      fus = std::max(fus, e.fused_vs_fp16());
      gain = std::max(gain, e.w4a16().prediction.seconds / e.fused.prediction.seconds);
    }
    fmt::print("  {:>6} {:>18.2f} {:>18.2f} {:>18.2f}\n", m, dec, fus, gain);
  }
  fmt::print("  best fused over FP16: {:.2f}x (the int4 read alone would allow 2 B / (0.5 B + scales) = {:.2f}x)\n",
             summary.best_fused_vs_fp16, 2.0 / (0.5 + 2.0 / double(config.group_size)));

  // ---- (e)
  fmt::print("\n(e) sensitivity (workspace_l2_hit held at {:.4f} unless it is the row's axis; nothing re-fitted)\n",
             device.workspace_l2_hit);
  const auto rows = sensitivity(device, suite, config);
  fmt::print("  {:<26} {:>18} {:>16} {:>16} {:>22} {:>12}\n", "axis", "value", "best W4A16/FP16", "at MxKxN",
             "split-K range (K>>N)", "fused/FP16");
  for (const auto& r : rows) {
    fmt::print("  {:<26} {:>18} {:>16.3f} {:>16} {:>22} {:>12.2f}\n", r.axis, r.value, r.summary.best_vs_fp16,
               r.best_shape, r.splitk_range(), r.summary.best_fused_vs_fp16);
  }

  if (!a.json_path.empty()) {
    json out = {
        {"schema", kSchema},
        {"command", command_line()},
        {"device", device_json(device)},
        {"suite", {{"name", suite.name}, {"description", suite.description}, {"m", suite.m}}},
        {"config",
         {{"group_size", config.group_size}, {"act", "f16"}, {"tile_n", tile_n}, {"max_split", config.max_split}}}};
    json cal = {{"parameter", "workspace_l2_hit"}, {"value", device.workspace_l2_hit}, {"origin", l2_origin}};
    if (calibration) {
      cal["figure"] = calibration->figure;
      cal["target"] = calibration->target;
      cal["achieved"] = calibration->achieved;
      cal["iterations"] = calibration->iterations;
      cal["bracketed"] = calibration->bracketed;
    }
    out["calibration"] = cal;
    out["predicted"] = {{"splitk_min", summary.splitk_min},
                        {"splitk_max", summary.splitk_max},
                        {"splitk_evaluations", summary.splitk_count},
                        {"splitk_wins", summary.splitk_wins},
                        {"paper_splitk_min", model::kPaperSplitKMin},
                        {"paper_splitk_max", model::kPaperSplitKMax},
                        {"best_w4a16_vs_fp16", summary.best_vs_fp16},
                        {"paper_best_w4a16_vs_fp16", model::kPaperBestVsFp16},
                        {"best_fused_vs_fp16", summary.best_fused_vs_fp16}};
    json results = json::array();
    for (const auto& e : evals) results.push_back(eval_json(e));
    out["results"] = results;
    json sens = json::array();
    for (const auto& r : rows) {
      sens.push_back({{"axis", r.axis},
                      {"value", r.value},
                      {"best_w4a16_vs_fp16", r.summary.best_vs_fp16},
                      {"at", r.best_shape},
                      {"splitk_min", r.has_splitk ? json(r.summary.splitk_min) : json(nullptr)},
                      {"splitk_max", r.has_splitk ? json(r.summary.splitk_max) : json(nullptr)},
                      {"best_fused_vs_fp16", r.summary.best_fused_vs_fp16}});
    }
    out["sensitivity"] = sens;
    io::write_file_atomically(a.json_path, out.dump(1) + "\n");
    fmt::print("\nwrote {}\n", a.json_path);
  }
}

// A finite number in [min, max], with a short message otherwise.
CLI::Validator number_in(double min, double max, std::string what) {
  return CLI::Validator(
      [min, max, what](std::string& input) -> std::string {
        double value = 0;
        const char* end = input.data() + input.size();
        const auto [ptr, ec] = std::from_chars(input.data(), end, value);
        if (ec != std::errc() || ptr != end || input.empty() || !std::isfinite(value) || value < min || value > max) {
          return "must be " + what + ", got " + shown(input);
        }
        return {};
      },
      "NUMBER");
}

}  // namespace

Command register_model(CLI::App& app) {
  auto args = std::make_shared<ModelArgs>();
  auto* sub = app.add_subcommand("model", "the paper's evaluation on a modeled device (Ascend 910B by default)");
  sub->add_option("--device", args->device,
                  "device description: ascend910b2|ascend910b3|ascend910b4|h100|h200|a100|cpu")
      ->capture_default_str();
  sub->add_option("--suite", args->suite, "shapes: paper (vendor + llm) | vendor | llm")->capture_default_str();
  sub->add_option("--hbm-gbps", args->hbm_gbps, "HBM bandwidth in GB/s instead of the description's")
      ->check(number_in(1, 1e6, "a bandwidth in GB/s in [1, 1000000]"));
  sub->add_option("--l2-hit", args->l2_hit, "workspace L2 hit share in [0, 1] instead of calibrating it")
      ->check(number_in(0, 1, "a share in [0, 1]"));
  sub->add_option("--tile-n", args->tile_n, "output columns per work item (default: 256 on the 910B)")
      ->check(integer_in(16, 1 << 20));
  sub->add_option("--max-split", args->max_split, "largest split-K factor tried")
      ->check(integer_in(2, 256))
      ->capture_default_str();
  sub->add_option("--group-size,-g", args->group_size, "quantization group size")
      ->check(integer_in(1, 1 << 20))
      ->capture_default_str();
  sub->add_option("--m", args->m, "batch sizes, e.g. 1,8,24 (default: the suite's)")->check(positive_integer_list());
  sub->add_option("--json", args->json_path, "write every prediction as JSON (schema w4a16-model/1)");
  return {sub, [args] { run_model(*args); }};
}

}  // namespace w4a16::cli
