#include "measure/bench_study.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "measure/bench_report.hpp"

namespace w4a16::measure {

using nlohmann::json;

namespace {

// Shares of the decoupled time (panel through DRAM), from the ablations:
//   read       = the bare int4 stream
//   math       = decoupled - decoupled with a plain widening copy instead of the dequant arithmetic
//   round trip = widening-copy decoupled - fused (what writing and re-reading 16-bit W adds
//                over dequantizing in registers)
//   gemm       = the rest (fused - stream: the multiply-accumulate work itself)
struct Shares {
  double read = 0, math = 0, trip = 0, gemm = 0;
};

// The shares of one (M, K, N), or false when a variant they need was not measured.
bool decoupled_shares(const ShapeResult& r, Shares& out) {
  const auto *dec = r.find("decoupled_dram"), *widen = r.find("decoupled_widen"), *stream = r.find("int4_stream");
  const auto* fused = r.find("fused");
  if (!(dec && widen && stream && fused)) return false;
  const double t = dec->median_ms;
  out.read = std::min(1.0, stream->median_ms / t);
  out.math = std::max(0.0, t - widen->median_ms) / t;
  out.trip = std::max(0.0, widen->median_ms - fused->median_ms) / t;
  out.gemm = std::max(0.0, 1.0 - out.read - out.math - out.trip);
  return true;
}

// The paper's bottleneck finding, checked against the mean shares (count = shapes with a breakdown).
std::string conclusion(int count, double trip, double math) {
  if (count == 0) return "no breakdown measured";
  if (trip > math) {
    return fmt::format(
        "as in the paper, the round trip of the 16-bit weight through memory ({:.0f}% of the decoupled "
        "time on average) costs more than the dequantization arithmetic ({:.0f}%)",
        100 * trip, 100 * math);
  }
  return fmt::format(
      "unlike the paper, the dequantization arithmetic ({:.0f}% of the decoupled time on average) "
      "costs more than the round trip of the 16-bit weight through memory ({:.0f}%)",
      100 * math, 100 * trip);
}

// {"breakdown": [...], "mean_shares": {...}, "conclusion": ...} over the shapes with the ablations.
json breakdown_json(const std::vector<ShapeResult>& results) {
  json breakdown = json::array();
  Shares sum;
  int count = 0;
  for (const auto& r : results) {
    Shares s;
    if (!decoupled_shares(r, s)) continue;
    breakdown.push_back({{"m", r.m},
                         {"k", r.layer.k},
                         {"n", r.layer.n},
                         {"read_share", s.read},
                         {"math_share", s.math},
                         {"round_trip_share", s.trip},
                         {"gemm_share", s.gemm}});
    sum.read += s.read, sum.math += s.math, sum.trip += s.trip, sum.gemm += s.gemm, ++count;
  }
  const double trip = count ? sum.trip / count : NAN, math = count ? sum.math / count : NAN;
  return {{"breakdown", breakdown},
          {"mean_shares",
           {{"read", count ? sum.read / count : NAN},
            {"math", math},
            {"round_trip", trip},
            {"gemm", count ? sum.gemm / count : NAN}}},
          {"conclusion", conclusion(count, trip, math)}};
}

}  // namespace

json study_json(const std::vector<ShapeResult>& results) {
  double sk_min = INFINITY, sk_max = 0, fused_max = 0, dec_max = 0;
  json best = json::array();
  for (const auto& r : results) {
    const auto* sk = best_splitk(r);
    const double s = ratio(r.find("fused_dp"), sk);
    if (std::isfinite(s)) {
      sk_min = std::min(sk_min, s), sk_max = std::max(sk_max, s);
      best.push_back({{"m", r.m}, {"k", r.layer.k}, {"n", r.layer.n}, {"split_k", sk->split_k}, {"speedup", s}});
    }
    fused_max = std::max(fused_max, ratio(r.find("dense"), r.find("fused")));
    dec_max = std::max(dec_max, ratio(r.find("dense"), r.find("decoupled_dram")));
  }
  json out = {{"splitk_vs_dp", {{"min", sk_min}, {"max", sk_max}, {"best", best}}},
              {"w4a16_vs_fp16", {{"fused_max", fused_max}, {"decoupled_max", dec_max}}}};
  out.update(breakdown_json(results));
  return out;
}

void print_study(const json& s) {
  fmt::print(
      "\nStudy (paper: split-K 1.01-1.74x over data-parallel when K >> N; W4A16 at most 1.48x over FP16;\n"
      "       the bottleneck is the extra global-memory transfer of the weight, not the dequant math)\n");
  fmt::print("  split-K over data-parallel: {:.2f}x - {:.2f}x (best split per shape and M)\n",
             s["splitk_vs_dp"]["min"].get<double>(), s["splitk_vs_dp"]["max"].get<double>());
  fmt::print("  W4A16 over dense 16-bit: fused up to {:.2f}x, decoupled (panel through DRAM) up to {:.2f}x\n",
             s["w4a16_vs_fp16"]["fused_max"].get<double>(), s["w4a16_vs_fp16"]["decoupled_max"].get<double>());
  fmt::print("  {:<17} {:>8} {:>8} {:>11} {:>8}   (shares of the decoupled time, panel through DRAM)\n", "MxKxN",
             "read", "math", "round trip", "gemm");
  for (const auto& b : s["breakdown"]) {
    fmt::print("  {:<17} {:>7.0f}% {:>7.0f}% {:>10.0f}% {:>7.0f}%\n",
               fmt::format("{}x{}x{}", b["m"].get<int64_t>(), b["k"].get<int64_t>(), b["n"].get<int64_t>()),
               100 * b["read_share"].get<double>(), 100 * b["math_share"].get<double>(),
               100 * b["round_trip_share"].get<double>(), 100 * b["gemm_share"].get<double>());
  }
  fmt::print("  conclusion: {}\n", s["conclusion"].get<std::string>());
}

}  // namespace w4a16::measure
