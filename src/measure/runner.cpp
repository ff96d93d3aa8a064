// The measurement engine of `w4a16 bench` (see runner.hpp).
#include "measure/runner.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "common/check.hpp"
#include "measure/ablations.hpp"
#include "measure/random_bits.hpp"
#include "measure/reference_sample.hpp"
#include "measure/weight_rotation.hpp"

namespace w4a16::measure {

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
    v.push_back({"decoupled_widen", opts(Strategy::decoupled, Partition::automatic, 0, dram), Ablation::widen_copy});
    v.push_back({"int4_stream", opts(Strategy::fused, Partition::automatic, 0, 0), Ablation::int4_stream});
  }
  return v;
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
  std::unique_ptr<WeightRotation> copies;
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
  s.copies = std::make_unique<WeightRotation>(
      packed_bytes, config.rotation_bytes, [&s] { return pack(*s.weight); }, config.threads);
}

ShapeBench::~ShapeBench() = default;
int ShapeBench::copies() const { return int(state_->copies->size()); }

// The inputs of one M: x, the output, and the reference on a sample of the output that every
// plan is checked against before it is timed.
struct ShapeBench::Inputs {
  int64_t m = 0;
  std::vector<uint16_t> x_bits;  // [M, K]
  std::vector<uint16_t> y;       // [M, N]
  std::unique_ptr<ReferenceSample> reference;
};

ShapeBench::Inputs ShapeBench::inputs(int64_t m) const {
  const auto& s = *state_;
  const auto& c = s.config;
  Inputs in;
  in.m = m;
  in.x_bits = random_bits(c.act, m * s.k, 1.0, uint64_t(m * 7 + s.k));
  in.y.resize(static_cast<size_t>(m * s.n));
  in.reference = std::make_unique<ReferenceSample>(MatrixRef{in.x_bits.data(), c.act, m, s.k}, *s.weight);
  return in;
}

namespace {

std::string plan_text(const GemmPlan& plan) {
  std::string text = fmt::format("{} {} S={} T={} {}", to_string(plan.strategy), to_string(plan.partition),
                                 plan.split_k, plan.threads, plan.kernel);
  if (!plan.notes.empty()) text += " (" + plan.notes + ")";
  return text;
}

}  // namespace

// Runs `plan` once on every copy (every_copy) or on one, and, unless it is an ablation, checks
// the last output against the reference: nothing is timed that computes the wrong numbers. The
// first call of a plan sizes its workspaces; the dense baseline of a quantized weight also makes
// the 16-bit copy of each weight on its first call there, so it must run on every copy before
// timing (or the timed calls would include it).
bool ShapeBench::warm_up_and_verify(const GemmPlan& plan, const std::string& name, bool verify, bool every_copy,
                                    Inputs& in) {
  auto& s = *state_;
  const auto& c = s.config;
  const MatrixRef x{in.x_bits.data(), c.act, in.m, s.k};
  const MutableMatrixRef yr{in.y.data(), c.act, in.m, s.n};
  if (every_copy) {
    for (const auto& copy : s.copies->copies()) gemm(x, copy, yr, plan);
  } else {
    gemm(x, s.copies->current(), yr, plan);
  }
  if (!verify) return false;
  const std::string error = in.reference->mismatch({in.y.data(), c.act, in.m, s.n});
  if (!error.empty()) fail(ErrorCode::internal, "bench: {} at {}x{}x{}: {}; not timed", name, in.m, s.k, s.n, error);
  return true;
}

// One timed call on the next copy of the rotation, in ms.
double ShapeBench::timed_call(const GemmPlan& plan, Inputs& in) {
  auto& s = *state_;
  const auto& c = s.config;
  const MatrixRef x{in.x_bits.data(), c.act, in.m, s.k};
  const MutableMatrixRef yr{in.y.data(), c.act, in.m, s.n};
  const PackedWeight& w = s.copies->next();
  const auto t0 = Clock::now();
  gemm(x, w, yr, plan);
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// The figures of one plan from its call times.
VariantResult ShapeBench::summarize(const std::string& name, const GemmPlan& plan, bool verified,
                                    const std::vector<double>& times) const {
  const auto& s = *state_;
  const auto& c = s.config;
  VariantResult r;
  r.name = name;
  r.split_k = plan.partition == Partition::split_k ? plan.split_k : 0;
  r.threads = plan.threads;
  r.plan = plan_text(plan);
  r.verified = verified;
  r.median_ms = percentile(times, 0.5);
  r.p10_ms = percentile(times, 0.1);
  r.p90_ms = percentile(times, 0.9);
  r.reps = int(times.size());
  const auto& w = *s.weight;
  r.weight_bytes = plan.strategy == Strategy::dense ? 2 * s.k * s.n
                                                    : int64_t(w.codes().size() + w.scales().size() + w.zeros().size());
  r.gbps = double(r.weight_bytes) / (r.median_ms * 1e6);
  const double bw = c.read_gbps[std::clamp(r.threads, 1, 2)];
  r.pct_bw = bw > 0 ? 100.0 * r.gbps / bw : 0;
  r.gflops = 2.0 * double(plan.m) * double(s.k) * double(s.n) / (r.median_ms * 1e6);
  return r;
}

ShapeResult ShapeBench::run(const LayerShape& layer, int64_t m,
                            const std::function<void(const std::string&)>& progress) {
  auto& s = *state_;
  const auto& c = s.config;
  ShapeResult result;
  result.layer = layer;
  result.m = m;
  Inputs in = inputs(m);
  for (const auto& v : make_variants(c)) {
    if (progress) progress(v.name);
    const PackedWeight& first = s.copies->current();
    const GemmPlan plan = ablation_plan(m, first, c.act, v.options, v.ablation);
    const bool verified = warm_up_and_verify(plan, v.name, v.ablation == Ablation::none, true, in);
    std::vector<double> times;
    const auto start = Clock::now();
    while (int(times.size()) < c.max_reps &&
           (int(times.size()) < c.min_reps ||
            std::chrono::duration<double>(Clock::now() - start).count() < c.min_time_s)) {
      times.push_back(timed_call(plan, in));
    }
    result.variants.push_back(summarize(v.name, plan, verified, times));
  }
  return result;
}

std::vector<GemmPlan> ShapeBench::candidates(int64_t m, const GemmOptions& options) const {
  const auto& s = *state_;
  return plan_candidates(m, s.copies->current(), s.config.act, options);
}

std::vector<VariantResult> ShapeBench::time_plans(const std::vector<GemmPlan>& plans,
                                                  const std::vector<std::string>& names, bool interleaved,
                                                  const std::function<void(const std::string&)>& progress) {
  auto& s = *state_;
  const auto& c = s.config;
  require(!plans.empty() && names.size() == plans.size(), "bench: time_plans needs one name per plan");
  const int64_t m = plans.front().m;
  for (const auto& p : plans) {
    require(p.m == m && p.k == s.k && p.n == s.n && p.act == c.act,
            "bench: plan for {}x{}x{} {} given to the {}x{}x{} {} bench", p.m, p.k, p.n, to_string(p.act), m, s.k, s.n,
            to_string(c.act));
  }
  Inputs in = inputs(m);
  std::vector<bool> verified(plans.size());
  std::vector<std::vector<double>> times(plans.size());
  // The loop of run(): at least min_reps calls and min_time_s seconds per plan, at most max_reps.
  const auto time_rounds = [&](const std::vector<size_t>& which) {
    const auto start = Clock::now();
    const double min_time = c.min_time_s * double(which.size());
    for (int rep = 0; rep < c.max_reps; ++rep) {
      if (rep >= c.min_reps && std::chrono::duration<double>(Clock::now() - start).count() >= min_time) break;
      for (size_t i : which) times[i].push_back(timed_call(plans[i], in));
    }
  };
  for (size_t i = 0; i < plans.size(); ++i) {
    if (progress) progress(names[i]);
    // One warm-up call (every copy for the dense baseline): a pass over all copies takes as long
    // as the rotation takes to stream (1.2 GB on a 300 MiB L3), which a validation of many
    // plans cannot afford per plan.
    verified[i] = warm_up_and_verify(plans[i], names[i], true, plans[i].strategy == Strategy::dense, in);
    if (!interleaved) time_rounds({i});
  }
  if (interleaved) {
    std::vector<size_t> all(plans.size());
    for (size_t i = 0; i < all.size(); ++i) all[i] = i;
    time_rounds(all);
  }
  std::vector<VariantResult> out;
  for (size_t i = 0; i < plans.size(); ++i) out.push_back(summarize(names[i], plans[i], verified[i], times[i]));
  return out;
}

}  // namespace w4a16::measure
