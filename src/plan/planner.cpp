// Candidate enumeration and choice. Which candidates exist is decided here; what each costs is
// the cost model's (cost_model.cpp); what runs is the executor's (cpu/executor.cpp).
#include "plan/planner.hpp"

#include <algorithm>
#include <charconv>

#include "common/check.hpp"
#include "cpu/dispatch.hpp"
#include "cpu/pipelined.hpp"
#include "plan/devices/devices.hpp"

namespace w4a16::plan {

namespace {

constexpr int64_t kRowPanelBytes = int64_t(1) << 20;  // half the dev machine's 2 MB L2
constexpr int64_t kMinPanelRows = 32;                 // keeps the panel entries' row blocks full
constexpr int64_t kDecoupledPanelBytes = int64_t(1) << 20;
// Split factors tried (besides a forced one): enough to give every core of a small-N layer a
// slice, few enough that a 64-core plan stays a few hundred predictions.
constexpr int kSplitFactors[] = {2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64};

// Bytes of workspace a candidate needs: the decoupled pipeline's 16-bit weights in flight, and the fp32
// partial sums of split-K.
double accelerator_workspace_bytes(const Device& device, const Problem& problem, Strategy strategy, int64_t tile_n,
                                   int split_k, int matrix_cores) {
  double bytes = 0;
  if (strategy == Strategy::decoupled || strategy == Strategy::pipelined) {
    if (device.kind == DeviceKind::npu) {
      // The vendor kernel's ring: kRingSlots slots per AIC, each kSlotK rows of the tile (devices.hpp).
      namespace a = plan::devices::ascend910b;
      bytes += double(matrix_cores) * a::kRingSlots * a::kSlotK * double(tile_n) * 2.0;
    } else {
      bytes += double(problem.k) * double(problem.n) * 2.0;  // a dequant kernel writes the whole 16-bit W
    }
  }
  if (split_k > 1) {
    // The 910B adds partial sums into one fp32 y with FixPipe's atomic add; elsewhere each slice writes
    // its own partial sums, reduced afterwards.
    const double copies = device.kind == DeviceKind::npu ? 1.0 : double(split_k);
    bytes += copies * double(problem.m) * double(problem.n) * 4.0;
  }
  return bytes;
}

// Whether the table itself (not a lower one) has fused entries reading x in this format.
bool serves(const cpu::KernelTable& kt, cpu::XFormat x) {
  for (const auto& e : kt.q4) {
    if (e.x == x) return true;
  }
  return false;
}

// Thread counts tried: 1, 2, 4, ... and the largest allowed (a forced count alone).
std::vector<int> thread_counts(int available, int forced) {
  if (forced > 0) return {forced};
  std::vector<int> t;
  for (int c = 1; c < available; c *= 2) t.push_back(c);
  t.push_back(available);
  return t;
}

std::vector<Strategy> strategies(const GemmOptions& o, bool quantized, bool list_baseline) {
  if (o.strategy != Strategy::automatic) return {o.strategy};
  if (!quantized) return {Strategy::dense};
  std::vector<Strategy> s = {Strategy::fused, Strategy::decoupled, Strategy::pipelined};
  if (list_baseline) s.push_back(Strategy::dense);
  return s;
}

std::string x_format_name(cpu::XFormat x) { return x == cpu::XFormat::bf16 ? "bf16" : "fp32"; }

void sort_and_choose(std::vector<GemmPlan>& plans, const GemmOptions& o, bool quantized) {
  std::stable_sort(plans.begin(), plans.end(),
                   [](const GemmPlan& a, const GemmPlan& b) { return a.predicted_s < b.predicted_s; });
  for (auto& p : plans) {
    // The dense baseline of a quantized weight is listed, never chosen unless asked for.
    if (quantized && p.strategy == Strategy::dense && o.strategy != Strategy::dense) continue;
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

}  // namespace

int64_t row_panel_count(int64_t m, int64_t k_padded, cpu::XFormat x) {
  const int64_t row_bytes = k_padded * (x == cpu::XFormat::bf16 ? 2 : 4);
  const int64_t rows = std::max(kMinPanelRows, kRowPanelBytes / std::max<int64_t>(1, row_bytes));
  return (m + rows - 1) / rows;
}

BlockShape block_shape(std::string_view name) {
  BlockShape b;
  b.panel = name.find("_panel_") != std::string_view::npos;
  const size_t end = name.find("__");
  const size_t x = name.rfind('x', end);
  if (end == std::string_view::npos || x == std::string_view::npos) return b;
  size_t start = name.rfind('_', x);
  if (start == std::string_view::npos) return b;
  int rows = 0, cols = 0;
  const auto r = std::from_chars(name.data() + start + 1, name.data() + x, rows);
  const auto c = std::from_chars(name.data() + x + 1, name.data() + end, cols);
  if (r.ec == std::errc() && r.ptr == name.data() + x && c.ec == std::errc() && c.ptr == name.data() + end &&
      rows > 0 && cols > 0) {
    b.rows = rows;
    b.cols = cols;
  }
  return b;
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
  t.bf16_dot = act == DType::bf16 && cpu::prefer_bf16_dot() && serves(table, cpu::XFormat::bf16);
  return t;
}

CpuTarget cpu_target(const Problem& p, const cpu::KernelTable& table) {
  CpuTarget t;
  t.table = &table;
  t.quantized = p.quantized;
  const bool per_channel = p.group_size >= p.k && p.k > kPerChannelGroup;
  t.kernel_group = per_channel ? kPerChannelGroup : std::min(p.group_size, p.k);
  t.groups = (p.k + t.kernel_group - 1) / t.kernel_group;
  const int64_t chunks_per_group = (t.kernel_group + cpu::kChunkK - 1) / cpu::kChunkK;
  const int64_t last = p.k - (t.groups - 1) * t.kernel_group;
  t.chunks = (t.groups - 1) * chunks_per_group + (last + cpu::kChunkK - 1) / cpu::kChunkK;
  t.k_padded = t.chunks * cpu::kChunkK;
  t.dense_dtype = p.quantized ? p.act : p.scale_dtype;
  t.bf16_dot = p.act == DType::bf16 && cpu::prefer_bf16_dot() && serves(table, cpu::XFormat::bf16);
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
  const BlockShape b = block_shape(g.strategy == Strategy::fused ? g.q4_kernel : g.dense_kernel);
  c.block_rows = b.rows;
  c.panel = b.panel;
  c.bf16_dot = g.x_format == "bf16";
  c.row_panels = g.row_panels;
  c.workspace_bytes = double(g.workspace_bytes);
  return c;
}

std::vector<GemmPlan> cpu_plans(const Device& d, const Problem& problem, const CpuTarget& t, const GemmOptions& o) {
  require(t.table != nullptr, "internal: cpu_plans without a kernel table");
  require(o.threads >= 0, "threads must be >= 0 (0 = all available), got {}", o.threads);
  require(o.split_k >= 0, "split-K factor must be >= 0 (0 = the planner's choice), got {}", o.split_k);
  require(o.vector_threads >= 0, "vector threads must be >= 0 (0 = the planner's choice), got {}", o.vector_threads);
  require(o.decoupled_panel_bytes >= 0, "decoupled panel bytes must be >= 0, got {}", o.decoupled_panel_bytes);
  if (!t.quantized && o.strategy != Strategy::automatic && o.strategy != Strategy::dense) {
    fail(ErrorCode::unsupported, "strategy '{}' needs a quantized weight; this one was packed dense (pack_dense)",
         to_string(o.strategy));
  }
  const cpu::KernelTable& kt = *t.table;
  const int64_t m = problem.m;
  const int64_t tiles = (problem.n + cpu::kTileN - 1) / cpu::kTileN;
  Problem kp = problem;  // the model sees the kernels' group length (per-channel cut into 128s)
  kp.group_size = t.kernel_group;

  std::vector<GemmPlan> plans;
  for (const Strategy s : strategies(o, t.quantized, true)) {
    if (s == Strategy::automatic) continue;
    // Kernel entries and x format (the same for every partition of this strategy).
    GemmPlan base;
    base.m = m;
    base.k = problem.k;
    base.n = problem.n;
    base.act = problem.act;
    base.strategy = s;
    base.isa = kt.name;
    cpu::XFormat x = cpu::XFormat::f32;
    const DType dense_dtype = s == Strategy::dense && t.quantized ? problem.act : t.dense_dtype;
    if (s == Strategy::fused) {
      x = t.bf16_dot ? cpu::XFormat::bf16 : cpu::XFormat::f32;
      base.row_panels = row_panel_count(m, t.k_padded, x);
      const cpu::Q4Entry* e = cpu::find_q4(kt, x, m / base.row_panels);
      require(e != nullptr, "internal: no fused kernel for M={} on {}", m, kt.name);
      base.q4_kernel = e->name;
      base.kernel = e->name;
    } else {
      x = t.bf16_dot && dense_dtype == DType::bf16 ? cpu::XFormat::bf16 : cpu::XFormat::f32;
      if (!cpu::find_dense(kt, dense_dtype, x, m)) x = cpu::XFormat::f32;
      base.row_panels = row_panel_count(m, t.k_padded, x);
      const cpu::DenseEntry* e = cpu::find_dense(kt, dense_dtype, x, m / base.row_panels);
      require(e != nullptr, "internal: no dense kernel for M={} on {}", m, kt.name);
      base.dense_kernel = e->name;
      base.kernel = e->name;
      if (s != Strategy::dense) {
        const cpu::DequantEntry& dq = kt.dequant.fn ? kt.dequant : cpu::scalar_kernels()->dequant;
        base.dequant_kernel = dq.name;
        base.kernel = std::string(dq.name) + " + " + e->name;
      }
    }
    base.x_format = x_format_name(x);
    const int64_t units = s == Strategy::dense ? t.chunks : t.groups;
    const int64_t x_bytes = m * t.k_padded * (x == cpu::XFormat::bf16 ? 2 : 4);

    const int available = d.cores;
    for (const int threads : thread_counts(available, o.threads)) {
      if (s == Strategy::pipelined && threads < 2) continue;
      std::vector<int> splits;
      if (o.partition != Partition::split_k) splits.push_back(1);
      if (o.partition != Partition::data_parallel) {
        if (o.split_k > 0) {
          splits.push_back(int(std::min<int64_t>(o.split_k, units)));
        } else {
          for (int f : kSplitFactors) {
            // Enough slices to give each thread work, not many more (each costs a partial tile).
            if (f <= units && (f == 2 || tiles * (f / 2) < 2 * threads)) splits.push_back(f);
          }
          // Split-K asked for: at least the smallest split, however many tiles there are.
          if (o.partition == Partition::split_k && (splits.empty() || splits.back() == 1)) {
            splits.push_back(int(std::min<int64_t>(2, units)));
          }
        }
      }
      std::sort(splits.begin(), splits.end());
      splits.erase(std::unique(splits.begin(), splits.end()), splits.end());
      for (const int split : splits) {
        const bool is_split = split > 1 || (o.partition == Partition::split_k);
        std::vector<int> vector_counts = {0};
        if (s == Strategy::pipelined) {
          vector_counts.clear();
          if (o.vector_threads > 0) {
            if (o.vector_threads < threads) vector_counts.push_back(o.vector_threads);
          } else {
            for (int v = 1; v < threads; ++v) vector_counts.push_back(v);
          }
        }
        for (const int tv : vector_counts) {
          GemmPlan g = base;
          g.partition = is_split ? Partition::split_k : Partition::data_parallel;
          g.split_k = split;
          // A data-parallel plan cannot keep more threads busy than it has tiles (pipelined:
          // matrix-role threads than work items).
          const int64_t items = tiles * split;
          g.threads = s == Strategy::pipelined ? threads : int(std::min<int64_t>(threads, items));
          if (s != Strategy::pipelined && g.threads < threads && o.threads == 0 && threads != 1) {
            // the same plan is listed with its real thread count already (or will be)
            if (std::any_of(plans.begin(), plans.end(), [&](const GemmPlan& q) {
                  return q.strategy == s && q.split_k == split && q.threads == g.threads;
                })) {
              continue;
            }
          }
          g.vector_threads = tv;
          int64_t ws = x_bytes;
          if (is_split) ws += items * m * cpu::kTileN * 4;
          if (s == Strategy::decoupled) {
            ws += int64_t(g.threads) * (o.decoupled_panel_bytes > 0 ? o.decoupled_panel_bytes : kDecoupledPanelBytes);
          }
          if (s == Strategy::pipelined) ws += items * m * cpu::kTileN * 4 + int64_t(threads - tv) * 4 * (256 << 10);
          g.workspace_bytes = ws;
          std::string notes;
          if (o.split_k > 0 && split < o.split_k) {
            notes += fmt::format("split-K {} clamped to {} (the number of {}); ", o.split_k, split,
                                 s == Strategy::dense ? "8-wide K chunks" : "groups");
          }
          if (o.split_k > 1 && o.partition == Partition::data_parallel) {
            notes += fmt::format("split-K {} ignored: partition is data-parallel; ", o.split_k);
          }
          if (o.threads > 0 && g.threads < o.threads) {
            notes += fmt::format("threads {} capped to {} work items; ", o.threads, g.threads);
          }
          if (s == Strategy::pipelined) {
            notes += fmt::format("{} vector + {} matrix threads; ", tv, threads - tv);
          }
          if (!notes.empty()) notes.resize(notes.size() - 2);
          g.notes = notes;
          fill_prediction(g, predict(d, kp, candidate_of(g, d)));
          plans.push_back(std::move(g));
        }
      }
    }
  }
  require(!plans.empty(), "no plan meets the options (strategy '{}', partition '{}', threads {}, vector threads {})",
          to_string(o.strategy), to_string(o.partition), o.threads, o.vector_threads);
  sort_and_choose(plans, o, t.quantized);
  return plans;
}

int64_t accelerator_tile_n(const Device& device) {
  switch (device.kind) {
    case DeviceKind::npu:
      return devices::ascend910b::kBaseN;
    case DeviceKind::gpu:
      return 128;
    case DeviceKind::cpu:
      return cpu::kTileN;
  }
  return cpu::kTileN;
}

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
  const int64_t tile_n = accelerator_tile_n(d);
  const int64_t tiles = (problem.n + tile_n - 1) / tile_n;
  const int64_t groups = (problem.k + problem.group_size - 1) / problem.group_size;
  std::vector<GemmPlan> plans;
  std::vector<Strategy> list = strategies(o, problem.quantized, true);
  for (const Strategy s : list) {
    if (s == Strategy::pipelined && d.kind != DeviceKind::npu) continue;  // the GPU's decoupled is two kernels
    if (s == Strategy::decoupled && d.kind == DeviceKind::npu && o.strategy == Strategy::automatic) continue;
    std::vector<int> splits;
    if (o.partition != Partition::split_k) splits.push_back(1);
    if (o.partition != Partition::data_parallel) {
      if (o.split_k > 0) {
        splits.push_back(int(std::min<int64_t>(o.split_k, groups)));
      } else {
        for (int f : kSplitFactors) {
          if (f <= groups && tiles * (f / 2) < 2 * d.cores) splits.push_back(f);
        }
        if (o.partition == Partition::split_k && splits.empty()) splits.push_back(int(std::min<int64_t>(2, groups)));
      }
    }
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
  std::stable_sort(plans.begin(), plans.end(),
                   [](const GemmPlan& a, const GemmPlan& b) { return a.predicted_s < b.predicted_s; });
  for (auto& p : plans) {
    if (problem.quantized && p.strategy == Strategy::dense && o.strategy != Strategy::dense) continue;
    if (p.strategy == Strategy::fused && !d.fused_possible && o.strategy != Strategy::fused) continue;
    p.chosen = true;
    break;
  }
  return plans;
}

}  // namespace w4a16::plan
