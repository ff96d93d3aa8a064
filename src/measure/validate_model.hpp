// `w4a16 bench --validate-model`: the planner's predictions against measured times on this CPU.
// For each (layer shape, M) the planner's candidates (plan_candidates) are listed with the cost
// model's times; the fastest-predicted few and the chosen one (never the dense baseline, which
// the planner does not choose for a quantized weight) are timed by the bench's runner
// (rotated weights, verified against the reference first), and two questions are answered:
//   1. how far is the model off?   error = predicted / measured - 1, per timed plan
//   2. does it choose well?        auto / best = the chosen plan's time over the fastest measured
//                                  choosable plan's, both re-timed interleaved so that a drift of
//                                  the machine does not read as a bad choice
// A measurement, not a test: a missed target is printed as MISS and changes no exit status.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "measure/incore.hpp"
#include "measure/runner.hpp"
#include "measure/suites.hpp"
#include "w4a16/w4a16.hpp"

namespace w4a16::measure {

// The targets printed beside the figures (the planner's acceptance criteria).
inline constexpr double kTargetMedianError = 0.20;  // median |predicted / measured - 1| over all timed plans
inline constexpr double kTargetAutoMedian = 1.05;   // auto / best, median over the (shape, M) pairs
inline constexpr double kTargetAutoWorst = 1.15;    // auto / best on every (shape, M) pair

struct ValidateConfig {
  BenchConfig bench;      // threads (passed to the planner as GemmOptions::threads), g, zero, act, timing
  double budget_s = 120;  // no (shape, M) pair but the first is started after this many seconds
  int fastest = 6;        // the fastest-predicted candidates timed, dense baseline aside (and the chosen one)
};

struct TimedPlan {
  GemmPlan plan;           // as plan_candidates() listed it (predicted_s, breakdown, chosen)
  std::string label;       // "fused dp T2 q4_bf16_1x64__avx512bf16"
  VariantResult measured;  // median, p10, p90 of the calls
  double error = 0;        // predicted / measured - 1
};

struct PairValidation {
  LayerShape layer;
  int64_t m = 0;
  int candidates = 0;                          // plans plan_candidates() listed
  std::vector<TimedPlan> plans;                // the timed ones, fastest predicted first
  int chosen = -1;                             // index in plans of the planner's choice
  int best = -1;                               // index of the fastest measured choosable plan (the dense baseline of a
                                               // quantized weight is never chosen, so it does not count here)
  VariantResult retimed_chosen, retimed_best;  // the two re-timed interleaved (the same plan twice when
                                               // chosen == best: then the pair shows the noise alone)
  double auto_vs_best = 1;                     // first pass: chosen / best measured
  double auto_vs_best_retimed = 1;             // re-timed: chosen / best (1 when they are the same plan)
};

struct Validation {
  std::vector<PairValidation> pairs;
  std::vector<std::string> not_timed;  // "MxKxN" of the pairs left when the budget was spent
  double budget_s = 0, elapsed_s = 0;
  std::string device;                     // the cost model's description of this CPU (plan/devices/cpu.hpp)
  double model_read_gbps[3] = {0, 0, 0};  // the model's read bandwidth on 1 and 2 threads, GB/s
  std::vector<InCoreSample> incore;       // the hot calls the model's in-core scales were solved from
};

struct ValidationSummary {
  int plans = 0;
  double median_abs_error = 0, worst_abs_error = 0, median_error = 0;  // median_error: signed (the bias)
  std::vector<std::pair<std::string, double>> median_error_by;         // signed median per strategy and per M
  double auto_median = 1, auto_worst = 1;                              // re-timed
  double auto_median_first = 1, auto_worst_first = 1;                  // first pass
  std::string auto_worst_pair;                                         // "MxKxN" of the worst re-timed ratio
  bool error_pass = false, auto_median_pass = false, auto_worst_pass = false;
};

// Validates on `work` (layer, M) in order, one weight set per distinct (K, N) at a time; pairs
// whose (M, K, N) was already timed are skipped. `progress(line)` is told what is being timed.
Validation validate_model(const std::vector<std::pair<LayerShape, int64_t>>& work, const ValidateConfig& config,
                          const std::function<void(const std::string&)>& progress);

ValidationSummary summarize(const Validation& v);

// The per-pair tables and the summary with the targets, on stdout.
void print_validation(const Validation& v, const ValidationSummary& s);

// The "pairs" and "summary" of the JSON (schema w4a16-validate/1; the caller adds the machine).
nlohmann::json validation_json(const Validation& v, const ValidationSummary& s);

}  // namespace w4a16::measure
