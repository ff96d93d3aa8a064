// Candidate enumeration and choice. Which candidates exist is decided here; what each costs is
// the cost model's (cost_model.cpp); what runs is the executor's (cpu/executor.cpp).
#include "plan/planner.hpp"

#include <algorithm>
#include <tuple>

#include "common/check.hpp"
#include "cpu/dispatch.hpp"
#include "cpu/executor.hpp"

namespace w4a16::plan {

namespace {

constexpr int64_t kRowPanelBytes = int64_t(1) << 20;  // half the dev machine's 2 MB L2
constexpr int64_t kMinPanelRows = 32;                 // keeps the panel entries' row blocks full
// Split factors tried (besides a forced one): enough to give every core of a small-N layer a
// slice, few enough that a 64-core plan stays a few hundred predictions.
constexpr int kSplitFactors[] = {2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64};
// The pipelined strategy's ring: 4 slots of 256 KiB per matrix-role thread (cpu/pipelined.hpp).
constexpr int64_t kRingBytesPerMatrixThread = 4 * (int64_t(256) << 10);

// Bytes of workspace a candidate needs: the decoupled pipeline's 16-bit weights in flight (a ring of
// ring_k rows per matrix core, or the whole 16-bit W), and the fp32 partial sums of split-K (one copy
// where the matrix cores add them in place, else one per slice, reduced afterwards).
double accelerator_workspace_bytes(const Device& device, const Problem& problem, Strategy strategy, int64_t tile_n,
                                   int split_k, int matrix_cores) {
  double bytes = 0;
  if (strategy == Strategy::decoupled || strategy == Strategy::pipelined) {
    bytes += device.ring_k > 0 ? double(matrix_cores) * device.ring_k * double(tile_n) * 2.0
                               : double(problem.k) * double(problem.n) * 2.0;
  }
  if (split_k > 1) {
    const double copies = device.atomic_reduce ? 1.0 : double(split_k);
    bytes += copies * double(problem.m) * double(problem.n) * 4.0;
  }
  return bytes;
}

// Whether the table itself (not one it falls back to) has fused entries reading x in this format.
bool serves(const cpu::KernelTable& kt, XFormat x) {
  for (const auto& e : kt.q4) {
    if (e.x == x) return true;
  }
  return false;
}

// Whether the kernels read x as bf16: bf16 activations, a table with bf16-x entries of its own, and
// either a matrix unit (its only format) or the vector-dot rule (cpu::prefer_bf16_dot).
bool reads_bf16(const cpu::KernelTable& kt, DType act) {
  return act == DType::bf16 && (kt.tiles || cpu::prefer_bf16_dot()) && serves(kt, XFormat::bf16);
}

// Thread counts tried: 1, 2, 4, ... and the largest allowed (a forced count alone).
std::vector<int> thread_counts(int available, int forced) {
  if (forced > 0) return {forced};
  std::vector<int> t;
  for (int c = 1; c < available; c *= 2) t.push_back(c);
  t.push_back(available);
  return t;
}

std::vector<Strategy> strategies(const GemmOptions& o, bool quantized) {
  if (o.strategy != Strategy::automatic) return {o.strategy};
  if (!quantized) return {Strategy::dense};
  return {Strategy::fused, Strategy::decoupled, Strategy::pipelined, Strategy::dense};  // dense: listed, not chosen
}

// The split factors of one (strategy, thread count) under the options, sorted: 1 unless split-K is
// forced; a forced S clamped to the units; otherwise S = 2 and every larger factor that leaves no
// worker without a slice (tiles * S / 2 < 2 * workers: each slice costs a partial tile).
std::vector<int> split_factors(const GemmOptions& o, int64_t units, int64_t tiles, int workers) {
  std::vector<int> splits;
  if (o.partition != Partition::split_k) splits.push_back(1);
  if (o.partition != Partition::data_parallel) {
    if (o.split_k > 0) {
      splits.push_back(int(std::min<int64_t>(o.split_k, units)));
    } else {
      for (int f : kSplitFactors) {
        if (f <= units && (f == 2 || tiles * (f / 2) < 2 * workers)) splits.push_back(f);
      }
      // Split-K asked for: at least the smallest split, however many tiles there are.
      if (o.partition == Partition::split_k && (splits.empty() || splits.back() == 1)) {
        splits.push_back(int(std::min<int64_t>(2, units)));
      }
    }
  }
  std::sort(splits.begin(), splits.end());
  splits.erase(std::unique(splits.begin(), splits.end()), splits.end());
  return splits;
}

// Fastest first; the first plan the planner may choose is marked. Never chosen unless asked for:
// the dense baseline of a quantized weight (it holds a 16-bit copy of W) and, on a device where no
// path leads from the vector unit to the matrix unit but memory, the hypothetical fused plan.
void sort_and_choose(std::vector<GemmPlan>& plans, const GemmOptions& o, bool quantized, bool fused_possible) {
  std::stable_sort(plans.begin(), plans.end(),
                   [](const GemmPlan& a, const GemmPlan& b) { return a.predicted_s < b.predicted_s; });
  for (auto& p : plans) {
    if (quantized && p.strategy == Strategy::dense && o.strategy != Strategy::dense) continue;
    if (p.strategy == Strategy::fused && !fused_possible && o.strategy != Strategy::fused) continue;
    p.chosen = true;
    break;
  }
}

void fill_prediction(GemmPlan& g, const Prediction& pr) {
  g.predicted_s = pr.seconds;
  g.bound = pr.bound;
  g.breakdown.clear();
  for (const auto& t : pr.terms) g.breakdown.push_back({t.name, t.seconds, t.overlapped});
}

void check_options(const GemmOptions& o, bool quantized) {
  require(o.threads >= 0 && o.threads <= kMaxThreads, "threads must be in [0, {}] (0 = all available), got {}",
          kMaxThreads, o.threads);
  require(o.split_k >= 0 && o.split_k <= kMaxThreads,
          "split-K factor must be in [0, {}] (0 = the planner's choice), got {}", kMaxThreads, o.split_k);
  require(o.vector_threads >= 0 && o.vector_threads <= kMaxThreads,
          "vector threads must be in [0, {}] (0 = the planner's choice), got {}", kMaxThreads, o.vector_threads);
  require(o.decoupled_panel_bytes >= 0, "decoupled panel bytes must be >= 0, got {}", o.decoupled_panel_bytes);
  require(o.runner.threads >= 0 && o.runner.threads <= kMaxThreads,
          "runner threads must be in [0, {}] (0 = the CPUs this process may run on), got {}", kMaxThreads,
          o.runner.threads);
  if (!quantized && o.strategy != Strategy::automatic && o.strategy != Strategy::dense) {
    fail(ErrorCode::unsupported, "strategy '{}' needs a quantized weight; this one was packed dense (pack_dense)",
         to_string(o.strategy));
  }
}

// The kernel entries of strategy `s` for M rows (the same for every partition): the plan's table,
// entries, x format and row panels, and their printed names.
GemmPlan with_entries(Strategy s, const Problem& problem, const CpuTarget& t) {
  const cpu::KernelTable& kt = *t.table;
  const int64_t m = problem.m;
  GemmPlan g;
  g.m = m;
  g.k = problem.k;
  g.n = problem.n;
  g.act = problem.act;
  g.strategy = s;
  g.table = &kt;
  g.isa = kt.name;
  if (s == Strategy::fused) {
    const XFormat x = t.bf16_dot ? XFormat::bf16 : XFormat::f32;
    g.row_panels = row_panel_count(m, t.k_padded, x);
    g.q4 = cpu::find_q4(kt, x, m / g.row_panels);
    require(g.q4 != nullptr, "internal: no fused kernel for M={} on {}", m, kt.name);
    g.x_format = g.q4->x;
    g.kernel = g.q4->name;
    return g;
  }
  const DType dense_dtype = s == Strategy::dense && t.quantized ? problem.act : t.dense_dtype;
  XFormat x = t.bf16_dot && dense_dtype == DType::bf16 ? XFormat::bf16 : XFormat::f32;
  if (!cpu::find_dense(kt, dense_dtype, x, m)) x = XFormat::f32;
  g.row_panels = row_panel_count(m, t.k_padded, x);
  g.dense = cpu::find_dense(kt, dense_dtype, x, m / g.row_panels);
  require(g.dense != nullptr, "internal: no dense kernel for M={} on {}", m, kt.name);
  g.x_format = g.dense->x;
  g.kernel = g.dense->name;
  if (s != Strategy::dense) {
    g.dequant = &cpu::find_dequant(kt);
    g.kernel = std::string(g.dequant->name) + " + " + g.dense->name;
  }
  return g;
}

// What a plan notes about the options it could not follow as given.
std::string plan_notes(const GemmPlan& g, const GemmOptions& o, int threads) {
  std::string notes;
  if (o.split_k > 0 && g.split_k < o.split_k) {
    notes += fmt::format("split-K {} clamped to {} (the number of {}); ", o.split_k, g.split_k,
                         g.strategy == Strategy::dense ? "8-wide K chunks" : "groups");
  }
  if (o.split_k > 1 && o.partition == Partition::data_parallel) {
    notes += fmt::format("split-K {} ignored: partition is data-parallel; ", o.split_k);
  }
  if (o.threads > 0 && g.threads < o.threads) {
    notes += fmt::format("threads {} capped to {} work items; ", o.threads, g.threads);
  }
  if (g.strategy == Strategy::pipelined) {
    notes += fmt::format("{} vector + {} matrix threads; ", g.vector_threads, threads - g.vector_threads);
  }
  if (!notes.empty()) notes.resize(notes.size() - 2);
  return notes;
}

// Bytes of workspace: prepared x, split-K partials, the decoupled panels or the pipelined ring.
int64_t cpu_workspace_bytes(const GemmPlan& g, const CpuTarget& t, int threads, int64_t items) {
  const int64_t m = g.m;
  int64_t ws = m * t.k_padded * (g.x_format == XFormat::bf16 ? 2 : 4);
  if (g.partition == Partition::split_k) ws += items * m * cpu::kTileN * 4;
  if (g.strategy == Strategy::decoupled) ws += int64_t(g.threads) * g.panel_bytes;
  if (g.strategy == Strategy::pipelined) {
    ws += items * m * cpu::kTileN * 4 + int64_t(threads - g.vector_threads) * kRingBytesPerMatrixThread;
  }
  return ws;
}

// The vector-role thread counts a pipelined plan of `threads` may take ({0} for the other strategies).
std::vector<int> vector_counts(Strategy s, int threads, const GemmOptions& o) {
  if (s != Strategy::pipelined) return {0};
  std::vector<int> counts;
  if (o.vector_threads > 0) {
    if (o.vector_threads < threads) counts.push_back(o.vector_threads);
  } else {
    for (int v = 1; v < threads; ++v) counts.push_back(v);
  }
  return counts;
}

// The candidates of one strategy on the entries of `base` (from table t): every thread count x
// split factor x role split, predicted.
void add_entry_plans(std::vector<GemmPlan>& plans, const Device& d, const Problem& problem, const Problem& kp,
                     const CpuTarget& t, const GemmOptions& o, Strategy s, const GemmPlan& base) {
  const int64_t tiles = (problem.n + cpu::kTileN - 1) / cpu::kTileN;
  const int64_t units = s == Strategy::dense ? t.chunks : t.groups;
  // A caller's runner (GemmOptions::runner) may have fewer threads than the machine has CPUs.
  const int available = o.runner.threads > 0 ? std::min(d.cores, o.runner.threads) : d.cores;
  // Decoupled runs every item out of a 16-bit panel in L2 (the panel budget). An item whose panel
  // alone exceeds the budget (long K, few splits) leaves the dense loop reading B from the L3,
  // which the model does not charge (measured on AMX: 64x14336x4096 took 1.6-2.3x the time of the
  // same plan with split-K 2, predicted the same; docs/results.md). Such splits are left out while
  // a larger one fits.
  const int64_t panel_budget = o.decoupled_panel_bytes > 0 ? o.decoupled_panel_bytes : cpu::kDefaultPanelBytes;
  const auto panel_fits = [&](int split) {
    return (t.groups + split - 1) / split * (t.k_padded / t.groups) * cpu::kTileN * 2 <= panel_budget;
  };
  for (const int threads : thread_counts(available, o.threads)) {
    if (s == Strategy::pipelined && threads < 2) continue;
    const std::vector<int> splits = split_factors(o, units, tiles, threads);
    const bool some_fit = s == Strategy::decoupled && std::any_of(splits.begin(), splits.end(), panel_fits);
    for (const int split : splits) {
      if (some_fit && !panel_fits(split)) continue;
      const int64_t items = tiles * split;
      // A data-parallel plan cannot keep more threads busy than it has tiles (pipelined: matrix-role
      // threads than work items).
      const int used = s == Strategy::pipelined ? threads : int(std::min<int64_t>(threads, items));
      if (s != Strategy::pipelined && used < threads && o.threads == 0 && threads != 1 &&
          std::any_of(plans.begin(), plans.end(), [&](const GemmPlan& q) {
            return q.strategy == s && q.kernel == base.kernel && q.split_k == split && q.threads == used;
          })) {
        continue;  // the same plan is listed with its real thread count already
      }
      for (const int tv : vector_counts(s, threads, o)) {
        GemmPlan g = base;
        g.partition = split > 1 || o.partition == Partition::split_k ? Partition::split_k : Partition::data_parallel;
        g.split_k = split;
        g.threads = used;
        g.vector_threads = tv;
        g.panel_bytes = s == Strategy::decoupled ? panel_budget : 0;
        g.workspace_bytes = cpu_workspace_bytes(g, t, threads, items);
        g.notes = plan_notes(g, o, threads);
        fill_prediction(g, predict(d, kp, candidate_of(g, d)));
        plans.push_back(std::move(g));
      }
    }
  }
}

// Where a strategy's entries come from: the target's table and, for a matrix unit (a tile table),
// also the vector table it falls back to, read in that table's own x format. The cost model then
// weighs AMX against AVX-512 per call (a tile multiply costs the same for 1 row as for 16) instead
// of the tile table's entries always running. Every plan still names the target's table, the one
// in force, which runs the entries of its whole chain.
std::vector<CpuTarget> entry_sources(const CpuTarget& t, DType act) {
  std::vector<CpuTarget> out{t};
  if (t.table->tiles && t.table->fallback != nullptr) {
    CpuTarget vector = t;
    vector.table = t.table->fallback;
    vector.bf16_dot = reads_bf16(*vector.table, act);
    out.push_back(vector);
  }
  return out;
}

// The candidates of one strategy: every thread count x split factor x role split, predicted.
void add_strategy_plans(std::vector<GemmPlan>& plans, const Device& d, const Problem& problem, const Problem& kp,
                        const CpuTarget& target, const GemmOptions& o, Strategy s) {
  for (const CpuTarget& t : entry_sources(target, problem.act)) {
    GemmPlan base = with_entries(s, problem, t);
    base.table = target.table;  // the table in force (its chain runs the vector entries too)
    base.isa = target.table->name;
    add_entry_plans(plans, d, problem, kp, t, o, s, base);
  }
}
}  // namespace

int64_t row_panel_count(int64_t m, int64_t k_padded, XFormat x) {
  const int64_t row_bytes = k_padded * (x == XFormat::bf16 ? 2 : 4);
  const int64_t rows = std::max(kMinPanelRows, kRowPanelBytes / std::max<int64_t>(1, row_bytes));
  return (m + rows - 1) / rows;
}

CpuTarget cpu_target(const PackedWeight::Impl& w, const cpu::KernelTable& table, DType act) {
  CpuTarget t;
  t.table = &table;
  t.quantized = w.quantized;
  t.kernel_group = w.kernel_group;
  t.groups = w.geom.groups;
  t.chunks = w.geom.chunks();
  t.k_padded = w.k_padded;
  t.dense_dtype = w.quantized ? act : w.layout.scale_dtype;
  t.bf16_dot = reads_bf16(table, act);
  return t;
}

void check_problem(const Problem& p) {
  require(p.m > 0 && p.k > 0 && p.n > 0, "plan: M, K and N must be positive, got {}x{}x{}", p.m, p.k, p.n);
  require(p.k <= INT32_MAX, "plan: K={} is too large (max {})", p.k, INT32_MAX);
  require(p.group_size > 0, "plan: the group size must be positive, got {}", p.group_size);
  for (const auto& [a, b, what] :
       {std::tuple{p.m, p.k, "M*K"}, std::tuple{p.m, p.n, "M*N"}, std::tuple{p.n, p.k, "N*K"}}) {
    const auto product = checked_mul(a, b);
    require(product && *product <= kMaxGemmElements, "plan: {}x{}x{}: {} exceeds the limit of {} elements", p.m, p.k,
            p.n, what, kMaxGemmElements);
  }
  require(p.act == DType::f16 || p.act == DType::bf16, "plan: activations must be fp16 or bf16, got {}",
          to_string(p.act));
}

CpuTarget cpu_target(const Problem& p, const cpu::KernelTable& table) {
  check_problem(p);
  const cpu::PackedGeometry geometry = cpu::packed_geometry(p.k, p.n, p.group_size);
  CpuTarget t;
  t.table = &table;
  t.quantized = p.quantized;
  t.kernel_group = geometry.kernel_group;
  t.groups = geometry.geom.groups;
  t.chunks = geometry.geom.chunks();
  t.k_padded = geometry.k_padded;
  t.dense_dtype = p.quantized ? p.act : p.scale_dtype;
  t.bf16_dot = reads_bf16(table, p.act);
  return t;
}

Candidate candidate_of(const GemmPlan& g, const Device& d) {
  Candidate c;
  c.strategy = g.strategy;
  c.partition = g.partition;
  c.split_k = g.split_k;
  c.threads = g.threads;
  c.vector_threads = g.vector_threads;
  c.tile_n = cpu::kTileN;
  if (g.strategy == Strategy::fused && g.q4) {
    c.block_rows = g.q4->mr;
    c.panel = g.q4->panel;
  } else if (g.strategy != Strategy::fused && g.dense) {
    c.block_rows = g.dense->mr;
  }
  c.bf16_dot = g.x_format == XFormat::bf16;
  const cpu::KernelTable* entry_isa =
      g.strategy == Strategy::fused ? (g.q4 ? g.q4->isa : nullptr) : (g.dense ? g.dense->isa : nullptr);
  c.tiles = entry_isa != nullptr && entry_isa->tiles;
  c.row_panels = g.row_panels;
  c.workspace_bytes = double(g.workspace_bytes);
  return c;
}

std::vector<GemmPlan> cpu_plans(const Device& d, const Problem& problem, const CpuTarget& t, const GemmOptions& o) {
  require(t.table != nullptr, "internal: cpu_plans without a kernel table");
  check_problem(problem);
  check_options(o, t.quantized);
  Problem kp = problem;  // the model sees the kernels' group length (per-channel cut into 128s)
  kp.group_size = t.kernel_group;
  // Under the passive wait policy (set_worker_spin_us(0)) every parallel phase wakes w4a16's
  // sleeping workers: charged as such, a call too small to pay for it runs on the caller's thread
  // alone. A call whose parts run on the caller's runner does not use those workers.
  Device device = d;
  if (o.runner.run == nullptr && worker_spin_us() == 0 && d.wake_s > 0) device.launch_s = d.wake_s;
  std::vector<GemmPlan> plans;
  for (const Strategy s : strategies(o, t.quantized)) {
    if (s != Strategy::automatic) add_strategy_plans(plans, device, problem, kp, t, o, s);
  }
  require(!plans.empty(), "no plan meets the options (strategy '{}', partition '{}', threads {}, vector threads {})",
          to_string(o.strategy), to_string(o.partition), o.threads, o.vector_threads);
  sort_and_choose(plans, o, t.quantized, true);
  return plans;
}

int64_t accelerator_tile_n(const Device& device) { return device.tile_n; }

Candidate accelerator_candidate(const Device& device, const Problem& problem, Strategy strategy, int64_t tile_n,
                                int split_k) {
  Candidate c;
  c.strategy = strategy;
  c.partition = split_k > 1 ? Partition::split_k : Partition::data_parallel;
  c.split_k = split_k;
  c.tile_n = tile_n;
  const int64_t items = (problem.n + tile_n - 1) / tile_n * split_k;
  const int matrix_cores = static_cast<int>(std::min<int64_t>(items, device.cores));
  c.threads = matrix_cores;
  c.vector_threads = 0;
  if ((strategy == Strategy::decoupled || strategy == Strategy::pipelined) && device.kind == DeviceKind::npu) {
    // A MIX kernel of blockDim = matrix_cores runs each AIC with its AIVs (1 : vector_cores / cores); the
    // AIVs are the vector role, and `threads` counts both roles (cost_model.hpp).
    c.vector_threads = matrix_cores * (device.vector_cores / std::max(device.cores, 1));
    c.threads = matrix_cores + c.vector_threads;
  }
  // Rows of x one block of the matrix engine holds: the cube's and mma's 16; a CPU register block of 4.
  c.block_rows = device.kind == DeviceKind::cpu ? 4 : 16;
  c.panel = false;
  c.workspace_bytes = accelerator_workspace_bytes(device, problem, strategy, tile_n, split_k, matrix_cores);
  return c;
}

std::vector<GemmPlan> accelerator_plans(const Device& d, const Problem& problem, const GemmOptions& o) {
  require(d.kind != DeviceKind::cpu, "internal: accelerator_plans on a cpu device");
  check_problem(problem);
  check_options(o, problem.quantized);
  const int64_t tile_n = accelerator_tile_n(d);
  const int64_t tiles = (problem.n + tile_n - 1) / tile_n;
  const int64_t groups = (problem.k + problem.group_size - 1) / problem.group_size;
  std::vector<GemmPlan> plans;
  for (const Strategy s : strategies(o, problem.quantized)) {
    if (s == Strategy::pipelined && d.kind != DeviceKind::npu) continue;  // the GPU's decoupled is two kernels
    if (s == Strategy::decoupled && d.kind == DeviceKind::npu && o.strategy == Strategy::automatic) continue;
    const std::vector<int> splits = split_factors(o, groups, tiles, d.cores);
    for (const int split : splits) {
      GemmPlan g;
      g.m = problem.m;
      g.k = problem.k;
      g.n = problem.n;
      g.act = problem.act;
      g.strategy = s;
      g.partition = split > 1 ? Partition::split_k : Partition::data_parallel;
      g.split_k = split;
      const Candidate c = accelerator_candidate(d, problem, s, tile_n, split);
      g.threads = c.threads;
      g.vector_threads = c.vector_threads;
      g.workspace_bytes = int64_t(c.workspace_bytes);
      g.isa = d.name;
      g.kernel = fmt::format("{}-wide tiles", tile_n);
      if (s == Strategy::fused && !d.fused_possible) g.notes = "hypothetical on this device (fused_possible = false)";
      fill_prediction(g, predict(d, problem, c));
      plans.push_back(std::move(g));
    }
  }
  require(!plans.empty(), "no plan meets the options on {}", d.name);
  sort_and_choose(plans, o, problem.quantized, d.fused_possible);
  return plans;
}

}  // namespace w4a16::plan
