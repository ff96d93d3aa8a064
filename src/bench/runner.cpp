// The measurement engine of `w4a16 bench` (see runner.hpp).
#include "bench/runner.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <random>

#include "common/check.hpp"
#include "bench/ablations.hpp"

namespace w4a16::bench {

namespace {

using Clock = std::chrono::steady_clock;

struct Variant {
  std::string name;
  GemmOptions options;
  Ablation ablation = Ablation::none;
};

std::vector<Variant> make_variants(const BenchConfig& c) {
  auto opts = [&](Strategy s, Partition p, int split, int64_t panel) {
    GemmOptions o;
    o.strategy = s;
    o.partition = p;
    o.split_k = split;
    o.threads = c.threads;
    o.decoupled_panel_bytes = panel;
    return o;
  };
  const int64_t l2 = int64_t(1) << 20, llc = int64_t(16) << 20, dram = int64_t(256) << 20;
  std::vector<Variant> v = {
      {"dense", opts(Strategy::dense, Partition::automatic, 0, 0)},
      {"fused", opts(Strategy::fused, Partition::automatic, 0, 0)},
      {"fused_dp", opts(Strategy::fused, Partition::data_parallel, 0, 0)},
      {"fused_splitk_2", opts(Strategy::fused, Partition::split_k, 2, 0)},
      {"fused_splitk_4", opts(Strategy::fused, Partition::split_k, 4, 0)},
      {"decoupled", opts(Strategy::decoupled, Partition::automatic, 0, l2)},
  };
  if (c.study) {
    v.push_back({"fused_splitk_3", opts(Strategy::fused, Partition::split_k, 3, 0)});
    v.push_back({"fused_splitk_8", opts(Strategy::fused, Partition::split_k, 8, 0)});
    v.push_back({"decoupled_llc", opts(Strategy::decoupled, Partition::automatic, 0, llc)});
    v.push_back({"decoupled_dram", opts(Strategy::decoupled, Partition::automatic, 0, dram)});
    v.push_back(
        {"decoupled_widen", opts(Strategy::decoupled, Partition::automatic, 0, dram), Ablation::widen_copy});
    v.push_back({"int4_stream", opts(Strategy::fused, Partition::automatic, 0, 0), Ablation::int4_stream});
  }
  return v;
}

// Random bf16 bits of N(0, sigma), never zero.
std::vector<uint16_t> random_bits(DType dtype, int64_t count, double sigma, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> dist(0.0f, float(sigma));
  std::vector<uint16_t> out(static_cast<size_t>(count));
  for (auto& v : out) {
    do {
      v = dtype == DType::f16 ? f32_to_f16(dist(rng)) : f32_to_bf16(dist(rng));
    } while ((v & 0x7FFF) == 0);
  }
  return out;
}

double percentile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  const double pos = q * double(v.size() - 1);
  const size_t lo = size_t(pos);
  const size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (pos - double(lo));
}

}  // namespace

const VariantResult* ShapeResult::find(std::string_view name) const {
  for (const auto& v : variants) {
    if (v.name == name) return &v;
  }
  return nullptr;
}

std::vector<std::string> variant_names(const BenchConfig& config) {
  std::vector<std::string> out;
  for (const auto& v : make_variants(config)) out.push_back(v.name);
  return out;
}

struct ShapeBench::State {
  BenchConfig config;
  int64_t k = 0, n = 0;
  std::unique_ptr<QuantizedWeight> weight;
  std::vector<PackedWeight> copies;
  // Verification sample: a few rows of W as their own layer, so the reference stays cheap.
  std::vector<int64_t> sample_cols;
  std::unique_ptr<QuantizedWeight> sample_weight;
  size_t next = 0;
};

ShapeBench::ShapeBench(int64_t k, int64_t n, const BenchConfig& config) : state_(std::make_unique<State>()) {
  auto& s = *state_;
  s.config = config;
  s.k = k;
  s.n = n;
  const auto bits = random_bits(config.act, n * k, 0.02, uint64_t(k * 1000003 + n));
  s.weight = std::make_unique<QuantizedWeight>(
      quantize({bits.data(), config.act, n, k}, {config.group_size, config.zero, config.act}));
  const int64_t packed_bytes = int64_t(s.weight->codes().size() + s.weight->scales().size() + s.weight->zeros().size());
  const int64_t count = std::max<int64_t>(2, (config.rotation_bytes + packed_bytes - 1) / packed_bytes);
  for (int64_t i = 0; i < count; ++i) s.copies.push_back(pack(*s.weight));

  const int64_t samples = std::min<int64_t>(n, 48);
  for (int64_t i = 0; i < samples; ++i) s.sample_cols.push_back(i * n / samples);
  const auto& w = *s.weight;
  const size_t rb = size_t(w.layout().row_bytes()), gs = size_t(w.groups());
  const size_t sb = dtype_size(w.scale_dtype()), zb = w.zero_mode() == ZeroMode::asym ? 1 : sb;
  std::vector<uint8_t> codes;
  std::vector<std::byte> scales, zeros;
  for (int64_t c : s.sample_cols) {
    codes.insert(codes.end(), w.codes().begin() + c * rb, w.codes().begin() + (c + 1) * rb);
    scales.insert(scales.end(), w.scales().begin() + c * gs * sb, w.scales().begin() + (c + 1) * gs * sb);
    if (!w.zeros().empty())
      zeros.insert(zeros.end(), w.zeros().begin() + c * gs * zb, w.zeros().begin() + (c + 1) * gs * zb);
  }
  QuantizedLayout layout = w.layout();
  layout.n = samples;
  s.sample_weight = std::make_unique<QuantizedWeight>(layout, std::move(codes), std::move(scales), std::move(zeros));
}

ShapeBench::~ShapeBench() = default;
int ShapeBench::copies() const { return int(state_->copies.size()); }

ShapeResult ShapeBench::run(const LayerShape& layer, int64_t m,
                            const std::function<void(const std::string&)>& progress) {
  auto& s = *state_;
  const auto& c = s.config;
  ShapeResult result;
  result.layer = layer;
  result.m = m;
  const auto x_bits = random_bits(c.act, m * s.k, 1.0, uint64_t(m * 7 + s.k));
  const MatrixRef x{x_bits.data(), c.act, m, s.k};
  std::vector<uint16_t> y(static_cast<size_t>(m * s.n));
  const MutableMatrixRef yr{y.data(), c.act, m, s.n};

  // Reference on the sample: rows {0, m/2, m-1} of x against the sampled columns of W.
  std::vector<int64_t> rows = {0, m / 2, m - 1};
  rows.erase(std::unique(rows.begin(), rows.end()), rows.end());
  std::vector<uint16_t> xs, ys(rows.size() * s.sample_cols.size());
  for (int64_t r : rows) xs.insert(xs.end(), x_bits.begin() + r * s.k, x_bits.begin() + (r + 1) * s.k);
  reference_gemm({xs.data(), c.act, int64_t(rows.size()), s.k}, *s.sample_weight,
                 {ys.data(), c.act, int64_t(rows.size()), int64_t(s.sample_cols.size())});
  double ref_max = 0;
  for (uint16_t v : ys) ref_max = std::max(ref_max, double(std::abs(load_as_f32(&v, c.act, 0))));

  for (const auto& v : make_variants(c)) {
    if (progress) progress(v.name);
    const PackedWeight& first = s.copies[s.next % s.copies.size()];
    const GemmPlan plan = ablation_plan(m, first, c.act, v.options, v.ablation);
    VariantResult r;
    r.name = v.name;
    r.split_k = plan.partition == Partition::split_k ? plan.split_k : 0;
    r.threads = plan.threads;
    r.plan = fmt::format("{} {} S={} T={} {}", to_string(plan.strategy), to_string(plan.partition), plan.split_k,
                         plan.threads, plan.kernel);
    if (!plan.notes.empty()) r.plan += " (" + plan.notes + ")";
    // Verify before timing (the first call also sizes workspaces and makes dense copies).
    for (const auto& copy : s.copies) gemm(x, copy, yr, plan);
    if (v.ablation == Ablation::none) {
      double worst = 0;
      for (size_t i = 0; i < rows.size(); ++i) {
        for (size_t j = 0; j < s.sample_cols.size(); ++j) {
          const double got = load_as_f32(y.data(), c.act, rows[i] * s.n + s.sample_cols[j]);
          const double want = load_as_f32(ys.data(), c.act, int64_t(i * s.sample_cols.size() + j));
          worst = std::max(worst, std::isfinite(got) ? std::abs(got - want) : INFINITY);
        }
      }
      // Loose on purpose (dense/decoupled round W to 16 bits); tests/cpu holds the derived bound.
      if (!(worst <= 0.02 * ref_max + 1e-3)) {
        fail(ErrorCode::internal, "bench: {} at {}x{}x{} differs from the reference by {} (max |y| {}); not timed",
             v.name, m, s.k, s.n, worst, ref_max);
      }
      r.verified = true;
    }
    std::vector<double> times;
    const auto start = Clock::now();
    while (int(times.size()) < c.max_reps &&
           (int(times.size()) < c.min_reps ||
            std::chrono::duration<double>(Clock::now() - start).count() < c.min_time_s)) {
      const PackedWeight& w = s.copies[s.next++ % s.copies.size()];
      const auto t0 = Clock::now();
      gemm(x, w, yr, plan);
      times.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    }
    r.median_ms = percentile(times, 0.5);
    r.p10_ms = percentile(times, 0.1);
    r.p90_ms = percentile(times, 0.9);
    const auto& w = *s.weight;
    r.weight_bytes =
        v.name == "dense" ? 2 * s.k * s.n : int64_t(w.codes().size() + w.scales().size() + w.zeros().size());
    r.gbps = double(r.weight_bytes) / (r.median_ms * 1e6);
    const double bw = c.read_gbps[std::clamp(r.threads, 1, 2)];
    r.pct_bw = bw > 0 ? 100.0 * r.gbps / bw : 0;
    r.gflops = 2.0 * double(m) * double(s.k) * double(s.n) / (r.median_ms * 1e6);
    result.variants.push_back(r);
  }
  return result;
}

}  // namespace w4a16::bench
