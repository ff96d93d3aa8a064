// `w4a16 plan M K N [--device NAME]`: every candidate plan of one call, sorted by the cost
// model's predicted time, the planner's choice marked, and the breakdown of each (docs/model.md).
#include <fmt/format.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <tuple>

#include "cli/arg_checks.hpp"
#include "cli/commands.hpp"
#include "cli/gemm_options.hpp"
#include "common/check.hpp"
#include "io/atomic_file.hpp"
#include "w4a16/w4a16.hpp"

namespace w4a16::cli {

namespace {

struct PlanArgs {
  int64_t m = 1, k = 4096, n = 4096, group_size = 128;
  std::string device = "cpu", zero = "sym", dtype = "bf16", json_path;
  int top = 0;  // 0 = all
  bool breakdown_all = false;
  GemmFlags flags;
};

std::string ms(double s) { return fmt::format("{:.4f}", s * 1e3); }

// "weight read 0.2461* | dequant + matmul 0.1312* | launch 0.0040" (* = overlapped: the max counts).
std::string breakdown_text(const GemmPlan& p) {
  std::string out;
  for (const auto& t : p.breakdown) {
    out += fmt::format("{}{} {}{}", out.empty() ? "" : " | ", t.name, ms(t.seconds), t.overlapped ? "*" : "");
  }
  return out;
}

// The planner's limits on sizes (w4a16.hpp), checked here so that passing them is misuse (exit 2).
void check_sizes(const PlanArgs& a) {
  for (const auto& [x, y, what] :
       {std::tuple{a.m, a.k, "M*K"}, std::tuple{a.m, a.n, "M*N"}, std::tuple{a.n, a.k, "N*K"}}) {
    const auto product = checked_mul(x, y);
    if (!product || *product > kMaxGemmElements) {
      throw UsageError(fmt::format("plan: {} exceeds the limit of {} elements", what, kMaxGemmElements));
    }
  }
}

void run_plan(const PlanArgs& a) {
  QuantizedLayout layout;
  layout.k = a.k;
  layout.n = a.n;
  layout.group_size = a.group_size == 0 ? a.k : a.group_size;
  layout.zero_mode = parse_zero_mode(a.zero);
  layout.scale_dtype = parse_dtype(a.dtype);
  const DType act = parse_dtype(a.dtype);
  check_sizes(a);
  const auto plans = plan_candidates(a.m, layout, act, a.flags.options(), a.device);
  std::string summary;
  for (const auto& [name, text] : plan_devices()) {
    if (name == a.device) summary = text;
  }
  fmt::print("plan M={} K={} N={} g={} {} {} on {}: {}\n", a.m, a.k, a.n, layout.group_size, a.zero, a.dtype, a.device,
             summary);
  fmt::print("{} candidates, fastest predicted first; * = the planner's choice (times in ms)\n", plans.size());
  fmt::print("    {:>3}  {:<9} {:<6} {:>3} {:>3} {:>3}  {:>9}  {:<26} {}\n", "#", "strategy", "part", "S", "T", "Tv",
             "predicted", "bound", "kernel");
  const size_t shown = a.top > 0 ? std::min<size_t>(size_t(a.top), plans.size()) : plans.size();
  for (size_t i = 0; i < plans.size(); ++i) {
    const auto& p = plans[i];
    if (i >= shown && !p.chosen) continue;
    fmt::print("  {} {:>3}  {:<9} {:<6} {:>3} {:>3} {:>3}  {:>9}  {:<26} {}{}\n", p.chosen ? '*' : ' ', i + 1,
               to_string(p.strategy), to_string(p.partition), p.split_k, p.threads,
               p.vector_threads > 0 ? std::to_string(p.vector_threads) : "-", ms(p.predicted_s), p.bound, p.kernel,
               p.notes.empty() ? "" : "  (" + p.notes + ")");
    if (a.breakdown_all) fmt::print("        {}\n", breakdown_text(p));
  }
  for (const auto& p : plans) {
    if (!p.chosen) continue;
    fmt::print("choice: {} {} S={} threads={}{} predicted {} ms, bound by {}\n", to_string(p.strategy),
               to_string(p.partition), p.split_k, p.threads,
               p.vector_threads > 0 ? fmt::format(" (vector {})", p.vector_threads) : "", ms(p.predicted_s), p.bound);
    fmt::print("breakdown (* overlapped: only the largest of those counts):\n");
    for (const auto& t : p.breakdown) fmt::print("  {:<44} {:>9}{}\n", t.name, ms(t.seconds), t.overlapped ? " *" : "");
  }
  if (!a.json_path.empty()) {
    nlohmann::json j;
    j["schema"] = "w4a16-plan/1";
    j["command"] = command_line();
    j["device"] = {{"name", a.device}, {"summary", summary}};
    j["problem"] = {{"m", a.m},       {"k", a.k},        {"n", a.n}, {"group_size", layout.group_size},
                    {"zero", a.zero}, {"dtype", a.dtype}};
    for (const auto& p : plans) {
      nlohmann::json terms = nlohmann::json::array();
      for (const auto& t : p.breakdown)
        terms.push_back({{"name", t.name}, {"ms", t.seconds * 1e3}, {"overlapped", t.overlapped}});
      j["plans"].push_back({{"chosen", p.chosen},
                            {"strategy", to_string(p.strategy)},
                            {"partition", to_string(p.partition)},
                            {"split_k", p.split_k},
                            {"threads", p.threads},
                            {"vector_threads", p.vector_threads},
                            {"kernel", p.kernel},
                            {"x_format", to_string(p.x_format)},
                            {"workspace_bytes", p.workspace_bytes},
                            {"predicted_ms", p.predicted_s * 1e3},
                            {"bound", p.bound},
                            {"breakdown", terms},
                            {"notes", p.notes}});
    }
    io::write_file_atomically(a.json_path, j.dump(1) + "\n");
  }
}

}  // namespace

Command register_plan(CLI::App& app) {
  auto args = std::make_shared<PlanArgs>();
  auto* sub = app.add_subcommand("plan", "the candidate plans of one call with their predicted times (cost model)");
  sub->add_option("M", args->m, "rows of x (tokens)")->required()->check(positive_integer());
  sub->add_option("K", args->k, "reduction (in_features)")->required()->check(integer_in(1, INT32_MAX));
  sub->add_option("N", args->n, "outputs (out_features)")->required()->check(positive_integer());
  std::string devices;
  for (const auto& [name, text] : plan_devices()) devices += (devices.empty() ? "" : "|") + name;
  sub->add_option("--device", args->device, "the machine: " + devices + " (other than cpu: modeled, not run)")
      ->capture_default_str()
      ->check([](const std::string& name) -> std::string {
        for (const auto& [known, text] : plan_devices()) {
          if (known == name) return {};
        }
        return "unknown device '" + name + "'";
      });
  sub->add_option("--group-size,-g", args->group_size, "quantization group size (0 = per-channel)")
      ->capture_default_str()
      ->check(integer_in(0, int64_t(1) << 40));
  add_zero_and_dtype(*sub, args->zero, args->dtype);
  args->flags.add_to(*sub);
  sub->add_option("--top", args->top, "print only the N fastest (and the choice)")->check(integer_in(0, 1 << 20));
  sub->add_flag("--breakdown", args->breakdown_all, "print every candidate's breakdown");
  sub->add_option("--json", args->json_path, "write every candidate as JSON (schema w4a16-plan/1)");
  return {sub, [args] { run_plan(*args); }};
}

}  // namespace w4a16::cli
