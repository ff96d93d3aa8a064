// Shared machinery for the CPU kernel tests: a pairwise (all-pairs) covering set of input
// factors, the reference computed once per input, and the error bound every kernel must meet.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "support/random_data.hpp"
#include "w4a16/w4a16.hpp"

namespace w4a16::test {

// ---- Pairwise covering arrays -----------------------------------------------------------------
// Greedy all-pairs: each new row is the best of a few random candidates (completed value by value
// to cover the most still-uncovered pairs), until every pair of values of every two factors
// appears in some row. Deterministic for a seed.
inline std::vector<std::vector<int>> pairwise_rows(const std::vector<int>& levels, uint64_t seed = 1) {
  const size_t f = levels.size();
  std::set<std::tuple<size_t, int, size_t, int>> uncovered;
  for (size_t a = 0; a < f; ++a)
    for (size_t b = a + 1; b < f; ++b)
      for (int i = 0; i < levels[a]; ++i)
        for (int j = 0; j < levels[b]; ++j) uncovered.insert({a, i, b, j});
  std::mt19937_64 rng(seed);
  std::vector<std::vector<int>> rows;
  while (!uncovered.empty()) {
    std::vector<int> best;
    size_t best_gain = 0;
    for (int attempt = 0; attempt < 30; ++attempt) {
      std::vector<int> row(f, -1);
      // Seed with one uncovered pair so every row makes progress.
      auto it = uncovered.begin();
      std::advance(it, rng() % uncovered.size());
      row[std::get<0>(*it)] = std::get<1>(*it);
      row[std::get<2>(*it)] = std::get<3>(*it);
      std::vector<size_t> order(f);
      for (size_t i = 0; i < f; ++i) order[i] = i;
      std::shuffle(order.begin(), order.end(), rng);
      for (size_t a : order) {
        if (row[a] >= 0) continue;
        int pick = int(rng() % levels[a]);
        size_t pick_gain = 0;
        for (int v = 0; v < levels[a]; ++v) {
          size_t gain = 0;
          for (size_t b = 0; b < f; ++b) {
            if (b == a || row[b] < 0) continue;
            const auto key = a < b ? std::tuple{a, v, b, row[b]} : std::tuple{b, row[b], a, v};
            gain += uncovered.count(key);
          }
          if (gain > pick_gain) pick = v, pick_gain = gain;
        }
        row[a] = pick;
      }
      size_t gain = 0;
      for (size_t a = 0; a < f; ++a)
        for (size_t b = a + 1; b < f; ++b) gain += uncovered.count({a, row[a], b, row[b]});
      if (gain > best_gain) best = row, best_gain = gain;
    }
    for (size_t a = 0; a < f; ++a)
      for (size_t b = a + 1; b < f; ++b) uncovered.erase({a, best[a], b, best[b]});
    rows.push_back(best);
  }
  return rows;
}

// ---- Inputs and their reference --------------------------------------------------------------
struct KernelInput {
  int64_t m = 1, k = 1, n = 1, g = 32;
  ZeroMode zero = ZeroMode::sym;
  DType act = DType::bf16, scale = DType::bf16;
  bool perm = false, bias = false;
  std::string name() const {
    return "M" + std::to_string(m) + "_K" + std::to_string(k) + "_N" + std::to_string(n) + "_g" + std::to_string(g) +
           "_" + std::string(to_string(zero)) + "_x" + std::string(to_string(act)) + "_s" +
           std::string(to_string(scale)) + (perm ? "_perm" : "") + (bias ? "_bias" : "");
  }
};

struct PreparedInput {
  KernelInput in;
  QuantizedWeight weight;
  PackedWeight packed;
  HostMatrix x;
  HostMatrix y_ref;
  std::vector<double> abs_terms;     // [M, N] sum_k |x_k| * (8 s + |coef|): bounds every fp32 term
  std::vector<double> abs_products;  // [M, N] sum_k |x_k * w_k|: what 16-bit weight rounding scales
};

inline PreparedInput prepare(const KernelInput& in, uint64_t seed) {
  const auto src = random_matrix(DType::f32, in.n, in.k, seed, 0.05f);
  const auto bias = random_matrix(DType::f32, 1, in.n, seed + 1);
  QuantizedWeight q =
      quantize(src.ref(), {in.g, in.zero, in.scale}, in.bias ? std::optional<MatrixRef>(bias.ref()) : std::nullopt);
  if (in.perm) {
    std::vector<int32_t> perm(size_t(in.k));
    for (int64_t i = 0; i < in.k; ++i) perm[size_t(i)] = int32_t(i);
    std::shuffle(perm.begin(), perm.end(), std::mt19937_64(seed + 2));
    q = QuantizedWeight(q.layout(), q.codes(), q.scales(), q.zeros(), perm, q.bias());
  }
  PreparedInput p{in, q, pack(q), random_matrix(in.act, in.m, in.k, seed + 3), HostMatrix(in.act, in.m, in.n), {}, {}};
  reference_gemm(p.x.ref(), p.weight, p.y_ref.mut());
  p.abs_terms.assign(size_t(in.m * in.n), 0.0);
  p.abs_products.assign(size_t(in.m * in.n), 0.0);
  const auto wd = dequantize(q);  // original input order
  for (int64_t n = 0; n < in.n; ++n) {
    for (int64_t kk = 0; kk < in.k; ++kk) {  // kk: stored column; its input feature is perm[kk]
      const int64_t src_k = q.has_perm() ? q.perm()[size_t(kk)] : kk;
      const int64_t grp = kk / q.group_size();
      const double s = std::abs(q.scale(n, grp));
      const double coef = q.zero_mode() == ZeroMode::asym         ? std::abs((8 - q.zero_int(n, grp)) * s)
                          : q.zero_mode() == ZeroMode::float_zero ? std::abs(q.zero_float(n, grp))
                                                                  : 0.0;
      for (int64_t r = 0; r < in.m; ++r) {
        const double xa = std::abs(p.x.get(r * in.k + src_k));
        p.abs_terms[size_t(r * in.n + n)] += xa * (8 * s + coef);
        p.abs_products[size_t(r * in.n + n)] += xa * std::abs(wd[size_t(n * in.k + src_k)]);
      }
    }
  }
  return p;
}

// ---- The error bound ---------------------------------------------------------------------------
// A kernel computes in fp32 with per-group accumulators; any order of n fp32 additions of terms
// t_i errs by at most gamma_n * sum|t_i|, gamma_n = n u / (1 - n u), u = 2^-24 (Higham, Accuracy
// and Stability, Thm 4.4), whatever the order or blocking. With n = K' + groups + 4 additions
// along any path (padded K, group epilogues, split-K reduction, bias) and |t_i| <= |x|(8 s + |coef|),
// the fp32 result is within e = gamma_n * abs_terms of the exact one. Strategies that store
// 16-bit weights (dense, decoupled) add the weight rounding: u_w * sum|x w| (u_w = 2^-8 bf16,
// 2^-11 fp16). Rounding to the output dtype then adds at most one output ulp of the larger
// result: 2^-7 (bf16) or 2^-10 (fp16) relative, plus the smallest subnormal step.
struct Tolerance {
  static double gamma(int64_t n) {
    const double u = 0x1p-24;
    return double(n) * u / (1.0 - double(n) * u);
  }
  static double weight_rounding(DType dtype) { return dtype == DType::bf16 ? 0x1p-8 : 0x1p-11; }
  static double output_ulp(DType dtype) { return dtype == DType::bf16 ? 0x1p-7 : 0x1p-10; }
  static double output_min_step(DType dtype) { return dtype == DType::bf16 ? 0x1p-133 : 0x1p-24; }
};

// Checks y (after one kernel call) against the reference; returns the number of bad elements
// (reporting the first few with their bound).
inline int check_output(const PreparedInput& p, const HostMatrix& y, Strategy strategy, const std::string& what) {
  const auto& in = p.in;
  const int64_t groups = (in.k + in.g - 1) / in.g;
  const int64_t kp = groups * ((in.g + 7) / 8) * 8;
  const double gamma = Tolerance::gamma(kp + groups + 4);
  const bool rounds_weights = strategy != Strategy::fused;
  int bad = 0;
  for (int64_t i = 0; i < in.m * in.n; ++i) {
    const double want = p.y_ref.get(i), got = y.get(i);
    double e = gamma * (p.abs_terms[size_t(i)] + (in.bias ? std::abs(p.weight.bias_value(i % in.n)) : 0.0));
    if (rounds_weights) e += Tolerance::weight_rounding(in.act) * p.abs_products[size_t(i)];
    const double tol = e + Tolerance::output_ulp(in.act) * (std::abs(want) + e) + Tolerance::output_min_step(in.act);
    if (!(std::abs(got - want) <= tol)) {  // also catches NaN (poison left behind)
      if (++bad <= 3) {
        ADD_FAILURE() << what << " " << in.name() << ": y[" << i / in.n << "," << i % in.n << "] = " << got
                      << ", reference " << want << ", bound " << tol;
      }
    }
  }
  return bad;
}

}  // namespace w4a16::test
