#include "model/paper_json.hpp"

#include "io/atomic_file.hpp"

namespace w4a16::model {

namespace {

using nlohmann::json;

constexpr const char* kSchema = "w4a16-model/1";  // docs/model.md, "JSON output"

json device_json(const plan::Device& d) {
  json j = {{"name", d.name},
            {"summary", d.summary},
            {"kind", std::string(plan::to_string(d.kind))},
            {"cores", d.cores},
            {"vector_cores", d.vector_cores},
            {"fused_possible", d.fused_possible},
            {"hbm_bytes_per_s", hbm_bandwidth(d)},
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

json choice_json(const Choice& c) {
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

json eval_json(const ShapeEval& e) {
  return {{"source", e.shape.source},
          {"layer", e.shape.layer},
          {"m", e.m},
          {"k", e.shape.k},
          {"n", e.shape.n},
          {"k_over_n", e.shape.k_over_n()},
          {"k_much_larger", k_much_larger(e.shape)},
          {"splitk_speedup", e.splitk_speedup()},
          {"w4a16_vs_fp16", e.w4a16_vs_fp16()},
          {"fused_vs_fp16", e.fused_vs_fp16()},
          {"dp", choice_json(e.dp)},
          {"splitk", choice_json(e.splitk)},
          {"fp16", choice_json(e.fp16)},
          {"fused", choice_json(e.fused)}};
}

json calibration_json(const PaperRun& run) {
  json cal = {{"parameter", "workspace_l2_hit"}, {"value", run.device.workspace_l2_hit}, {"origin", run.l2_origin}};
  if (const auto& c = run.calibration) {
    cal["figure"] = c->figure;
    cal["target"] = c->target;
    cal["achieved"] = c->achieved;
    cal["iterations"] = c->iterations;
    cal["bracketed"] = c->bracketed;
  }
  return cal;
}

json predicted_json(const SuiteSummary& summary) {
  return {{"splitk_min", summary.splitk_min},
          {"splitk_max", summary.splitk_max},
          {"splitk_evaluations", summary.splitk_count},
          {"splitk_wins", summary.splitk_wins},
          {"paper_splitk_min", kPaperSplitKMin},
          {"paper_splitk_max", kPaperSplitKMax},
          {"best_w4a16_vs_fp16", summary.best_vs_fp16},
          {"paper_best_w4a16_vs_fp16", kPaperBestVsFp16},
          {"best_fused_vs_fp16", summary.best_fused_vs_fp16}};
}

json sensitivity_json(const std::vector<SensitivityRow>& rows) {
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
  return sens;
}

}  // namespace

json paper_run_json(const PaperRun& run, const std::string& command) {
  const EvalConfig& config = run.config;
  json out = {
      {"schema", kSchema},
      {"command", command},
      {"device", device_json(run.device)},
      {"suite", {{"name", run.suite.name}, {"description", run.suite.description}, {"m", run.suite.m}}},
      {"config",
       {{"group_size", config.group_size}, {"act", "f16"}, {"tile_n", run.tile_n}, {"max_split", config.max_split}}}};
  out["calibration"] = calibration_json(run);
  out["predicted"] = predicted_json(run.summary);
  json results = json::array();
  for (const auto& e : run.evals) results.push_back(eval_json(e));
  out["results"] = results;
  out["sensitivity"] = sensitivity_json(run.sensitivity);
  return out;
}

void write_paper_json(const PaperRun& run, const std::string& command, const std::string& path) {
  io::write_file_atomically(path, paper_run_json(run, command).dump(1) + "\n");
}

}  // namespace w4a16::model
