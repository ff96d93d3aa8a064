// The report of `w4a16 bench` from its results: the table on stdout, the per-model totals, the CSV
// and the JSON (docs/bench-json.md; the header is shared with --validate-model's JSON).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "measure/bench_run.hpp"
#include "measure/machine_rates.hpp"
#include "measure/runner.hpp"
#include "measure/suites.hpp"

namespace w4a16::measure {

// The best split-K variant measured (lowest median), or nullptr.
const VariantResult* best_splitk(const ShapeResult& r);

// a's time over b's time, NaN when either is missing or b took no time.
double ratio(const VariantResult* a, const VariantResult* b);

// One row per (M, K, N) with the legend below it.
void print_bench_table(const std::vector<ShapeResult>& results);

// Model totals at M = 1: the linear layers of one decoder layer, times the number of layers; with
// `print`, one line per model on stdout. Empty without a suite.
nlohmann::json totals_json(const Suite* suite, const std::vector<ShapeResult>& results, bool print);

// The "results" array: per (M, K, N) every variant, the best split-K one and the speed-ups.
nlohmann::json results_json(const std::vector<ShapeResult>& results);

// One CSV row per shape and variant, written atomically.
void write_bench_csv(const std::string& path, const std::vector<ShapeResult>& results);

// schema, command, date and the machine and config objects both JSON files begin with; `cpu` is
// the name the caller printed. The caller adds its own config keys and sections.
nlohmann::json report_header(std::string_view schema, const BenchRequest& request, const std::string& cpu,
                             const MachineRates& rates);

}  // namespace w4a16::measure
