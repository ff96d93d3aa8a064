#include "measure/bench_report.hpp"

#include <fmt/format.h>

#include <cmath>
#include <ctime>
#include <map>
#include <sstream>

#include "common/host.hpp"
#include "io/atomic_file.hpp"

namespace w4a16::measure {

using nlohmann::json;

const VariantResult* best_splitk(const ShapeResult& r) {
  const VariantResult* best = nullptr;
  for (const auto& v : r.variants) {
    if (v.name.rfind("fused_splitk_", 0) == 0 && (!best || v.median_ms < best->median_ms)) best = &v;
  }
  return best;
}

double ratio(const VariantResult* a, const VariantResult* b) {
  return a && b && b->median_ms > 0 ? a->median_ms / b->median_ms : NAN;
}

namespace {

std::string shape_text(const ShapeResult& r) { return fmt::format("{}x{}x{}", r.m, r.layer.k, r.layer.n); }

// A time over the roofline time as "1.23x", or "-" when no roofline is known.
std::string vs_roof(const VariantResult* v) {
  return v && v->vs_roofline > 0 ? fmt::format("{:.2f}x", v->vs_roofline) : "-";
}

json variant_json(const VariantResult& v) {
  json j = {{"median_ms", v.median_ms},
            {"p10_ms", v.p10_ms},
            {"p90_ms", v.p90_ms},
            {"weight_bytes", v.weight_bytes},
            {"gbps", v.gbps},
            {"pct_bw", v.pct_bw},
            {"gflops", v.gflops},
            {"roofline_ms", v.roofline_ms},
            {"vs_roofline", v.vs_roofline},
            {"plan", v.plan},
            {"verified", v.verified},
            {"threads", v.threads}};
  if (v.split_k > 0) j["split_k"] = v.split_k;
  return j;
}

// The decoder-layer time of each of dense, fused and decoupled at M = 1 for one model: each layer's
// median times how many such matmuls one decoder layer runs.
std::map<std::string, double> decoder_layer_ms(const std::string& model, const std::vector<ShapeResult>& results) {
  std::map<std::string, double> layer_ms;
  for (const auto& r : results) {
    if (r.m != 1 || r.layer.model != model) continue;
    for (const char* name : {"dense", "fused", "decoupled"}) {
      if (const auto* v = r.find(name)) layer_ms[name] += v->median_ms * r.layer.per_decoder_layer;
    }
  }
  return layer_ms;
}

}  // namespace

void print_bench_table(const std::vector<ShapeResult>& results) {
  fmt::print("\n{:<17} {:<22} {:>9} {:>9} {:>9} {:>7} {:>7} {:>11} {:>4} {:>7} {:>10} {:>10}  {}\n", "MxKxN", "layer",
             "dense ms", "fused ms", "decoup ms", "fused", "decoup", "splitK/DP", "%BW", "GFLOP/s", "fused/roof",
             "dense/roof", "plan (fused)");
  for (const auto& r : results) {
    const auto *dense = r.find("dense"), *fused = r.find("fused"), *dec = r.find("decoupled"), *dp = r.find("fused_dp");
    const auto* sk = best_splitk(r);
    fmt::print(
        "{:<17} {:<22} {:>9.3f} {:>9.3f} {:>9.3f} {:>6.2f}x {:>6.2f}x {:>6.2f}x S={:<2} {:>4.0f} {:>7.1f} {:>10} "
        "{:>10}  "
        "{}\n",
        shape_text(r), (r.layer.model + " " + r.layer.layer).substr(0, 22), dense->median_ms, fused->median_ms,
        dec->median_ms, ratio(dense, fused), ratio(dense, dec), ratio(dp, sk), sk ? sk->split_k : 0, fused->pct_bw,
        fused->gflops, vs_roof(fused), vs_roof(dense), fused->plan);
  }
  fmt::print(
      "(fused, decoup: speed-up over dense; splitK/DP: data-parallel time / best split-K time; %BW: int4 weight\n"
      " bytes per second of the fused kernel against the streaming read; fused/roof, dense/roof: time over the\n"
      " roofline time max(weight bytes / read, 2*M*K*N / compute peak) for the threads used, 1.00x = on it;\n"
      " weight bytes are the int4 bytes for fused, the 16-bit weight for dense)\n");
}

json totals_json(const Suite* suite, const std::vector<ShapeResult>& results, bool print) {
  json out = json::array();
  if (!suite) return out;
  for (const auto& model : suite->models) {
    std::map<std::string, double> layer_ms = decoder_layer_ms(model.name, results);
    if (layer_ms.empty()) continue;
    json t = {{"model", model.name}, {"decoder_layers", model.decoder_layers}};
    for (const auto& [name, ms] : layer_ms) {
      t["decoder_layer_ms"][name] = ms;
      t["model_ms"][name] = ms * model.decoder_layers;
      t["tokens_per_s"][name] = 1000.0 / (ms * model.decoder_layers);
    }
    out.push_back(t);
    if (print) {
      fmt::print(
          "{:<12} M=1, linear layers only: decoder layer dense {:.3f} ms, fused {:.3f} ms ({:.2f}x); "
          "{} layers: {:.1f} -> {:.1f} tokens/s upper bound\n",
          model.name, layer_ms["dense"], layer_ms["fused"], layer_ms["dense"] / layer_ms["fused"], model.decoder_layers,
          1000.0 / (layer_ms["dense"] * model.decoder_layers), 1000.0 / (layer_ms["fused"] * model.decoder_layers));
    }
  }
  return out;
}

json results_json(const std::vector<ShapeResult>& results) {
  json out = json::array();
  for (const auto& r : results) {
    json item = {{"model", r.layer.model},
                 {"layer", r.layer.layer},
                 {"per_decoder_layer", r.layer.per_decoder_layer},
                 {"m", r.m},
                 {"k", r.layer.k},
                 {"n", r.layer.n}};
    for (const auto& v : r.variants) item["variants"][v.name] = variant_json(v);
    if (const auto* sk = best_splitk(r)) item["variants"]["fused_splitk"] = variant_json(*sk);
    item["speedup"] = {{"fused_vs_dense", ratio(r.find("dense"), r.find("fused"))},
                       {"decoupled_vs_dense", ratio(r.find("dense"), r.find("decoupled"))},
                       {"splitk_vs_dp", ratio(r.find("fused_dp"), best_splitk(r))}};
    out.push_back(item);
  }
  return out;
}

void write_bench_csv(const std::string& path, const std::vector<ShapeResult>& results) {
  std::ostringstream out;
  out << "model,layer,m,k,n,variant,median_ms,p10_ms,p90_ms,weight_bytes,gbps,pct_bw,gflops,threads,split_k,verified,"
         "roofline_ms,vs_roofline\n";
  for (const auto& r : results) {
    for (const auto& v : r.variants) {
      out << fmt::format(
          "\"{}\",\"{}\",{},{},{},{},{:.6f},{:.6f},{:.6f},{},{:.3f},{:.2f},{:.3f},{},{},{},{:.6f},{:.4f}\n",
          r.layer.model, r.layer.layer, r.m, r.layer.k, r.layer.n, v.name, v.median_ms, v.p10_ms, v.p90_ms,
          v.weight_bytes, v.gbps, v.pct_bw, v.gflops, v.threads, v.split_k, v.verified, v.roofline_ms, v.vs_roofline);
    }
  }
  io::write_file_atomically(path, out.str());
}

json report_header(std::string_view schema, const BenchRequest& request, const std::string& cpu,
                   const MachineRates& rates) {
  char date[32];
  const std::time_t now = std::time(nullptr);
  std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  const BenchConfig& config = request.config;
  return {{"schema", std::string(schema)},
          {"command", request.command},
          {"date", date},
          {"machine",
           {{"cpu", cpu},
            {"isa", std::string(active_isa())},
            {"threads", config.threads},
            {"l3_bytes", host::l3_bytes()},
            {"read_gbps", {{"1", rates.gbps[1]}, {"2", rates.gbps[2]}}},
            {"read_variant", {{"1", rates.variant[1]}, {"2", rates.variant[2]}}}}},
          {"config",
           {{"suite", request.suite ? request.suite->name : "ad-hoc"},
            {"group_size", config.group_size},
            {"zero", request.zero_name},
            {"act", request.act_name},
            {"rotation_bytes", config.rotation_bytes},
            {"min_time_s", config.min_time_s}}}};
}

}  // namespace w4a16::measure
