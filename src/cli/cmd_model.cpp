// `w4a16 model --device ascend910b3 [--suite paper] [--hbm-gbps X] [--l2-hit H] [--json FILE]`: the
// paper's evaluation on a modeled device, predicted with the cost model (plan/cost_model.hpp). The
// options are checked here; model/paper_run.hpp computes, model/paper_report.hpp prints (what, in
// which order) and model/paper_json.hpp writes the --json output.
#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "cli/arg_checks.hpp"
#include "cli/commands.hpp"
#include "measure/suites.hpp"
#include "model/paper_json.hpp"
#include "model/paper_report.hpp"
#include "model/paper_run.hpp"
#include "plan/device.hpp"

namespace w4a16::cli {

namespace {

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

// The device named by --device, with --hbm-gbps applied; a usage error for an unknown name.
plan::Device model_device(const ModelArgs& a) {
  const auto names = plan::device_names();
  if (std::find(names.begin(), names.end(), a.device) == names.end()) {
    std::string list;
    for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
    throw UsageError(fmt::format("model: --device must be one of {}, got {}", list, shown(a.device)));
  }
  plan::Device device = plan::device(a.device);
  if (a.hbm_gbps > 0) device = model::with_hbm_bandwidth(device, a.hbm_gbps * 1e9);
  return device;
}

// The suite named by --suite, with --m replacing its batch list; a usage error for an unknown name.
model::ModelSuite model_suite(const ModelArgs& a) {
  const auto& suites = model::model_suites();
  if (std::none_of(suites.begin(), suites.end(), [&](const auto& s) { return s.name == a.suite; })) {
    throw UsageError(
        fmt::format("model: --suite must be one of {}, got {}", measure::joined_names(suites), shown(a.suite)));
  }
  model::ModelSuite suite = model::model_suite(a.suite);
  if (!a.m.empty()) {
    suite.m.clear();
    for (const auto item : split(a.m, ',')) {
      if (!item.empty()) suite.m.push_back(*parse_int64(item));  // checked by the option's validator
    }
  }
  return suite;
}

void run_model(const ModelArgs& a) {
  plan::Device device = model_device(a);
  model::ModelSuite suite = model_suite(a);
  model::EvalConfig config;
  config.group_size = a.group_size;
  config.tile_n = a.tile_n;
  config.max_split = static_cast<int>(a.max_split);
  const model::PaperRun run = model::run_paper_model(std::move(device), std::move(suite), config, a.l2_hit);
  model::print_paper_run(run);
  if (!a.json_path.empty()) {
    model::write_paper_json(run, command_line(), a.json_path);
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
