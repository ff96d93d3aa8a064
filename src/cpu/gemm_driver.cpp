// gemm() on packed weights: the plan (strategy, partition, split factor, threads), activation
// preparation (perm, padding, fp32 widening, group sums), the parallel loop over work items
// (tile, K-slice) and the epilogue (split-K reduction in a fixed order, bias, rounding).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <exception>
#include <mutex>

#include "common/check.hpp"
#include "common/thread_scratch.hpp"
#include "cpu/dispatch.hpp"
#include "cpu/gemm_internal.hpp"
#include "cpu/packed_weight.hpp"
#include "cpu/reference.hpp"
#include "cpu/thread_pool.hpp"

namespace w4a16 {

using cpu::kChunkK;
using cpu::kTileN;

std::string_view to_string(Strategy s) {
  switch (s) {
    case Strategy::automatic:
      return "auto";
    case Strategy::fused:
      return "fused";
    case Strategy::decoupled:
      return "decoupled";
    case Strategy::dense:
      return "dense";
  }
  return "?";
}

std::string_view to_string(Partition p) {
  switch (p) {
    case Partition::automatic:
      return "auto";
    case Partition::data_parallel:
      return "dp";
    case Partition::split_k:
      return "splitk";
  }
  return "?";
}

Strategy parse_strategy(std::string_view name) {
  for (Strategy s : {Strategy::automatic, Strategy::fused, Strategy::decoupled, Strategy::dense}) {
    if (name == to_string(s)) return s;
  }
  fail(ErrorCode::invalid_argument, "unknown strategy '{}' (expected auto, fused, decoupled or dense)", name);
}

Partition parse_partition(std::string_view name) {
  for (Partition p : {Partition::automatic, Partition::data_parallel, Partition::split_k}) {
    if (name == to_string(p)) return p;
  }
  fail(ErrorCode::invalid_argument, "unknown partition '{}' (expected auto, dp or splitk)", name);
}

namespace {

// K is split in "units": groups for the int4 strategies, chunks of 8 for dense weights.
int64_t split_units(const PackedWeight::Impl& p, Strategy s) {
  return s == Strategy::dense ? p.geom.chunks() : p.geom.groups;
}

constexpr int64_t kSplitKMinK = 1024;  // the auto rule splits K only when each slice stays long

// Reusable per-thread workspace: grows to the largest shape seen, never shrinks.
struct Workspace {
  AlignedBuffer<std::byte> x;       // prepared activations [M][K']
  AlignedBuffer<float> group_sums;  // [M][G]
  AlignedBuffer<float> partials;    // split-K: [tiles][S][M][64]
  AlignedBuffer<float> tile_out;    // data-parallel: [M][64] per thread
  AlignedBuffer<uint16_t> panel;    // decoupled: dense 16-bit panel ring
};
// Heap-held and registered (common/thread_scratch.hpp), so that it stays reachable after fork().
struct WorkspaceTag;
Workspace& thread_workspace() { return thread_scratch<Workspace, WorkspaceTag>(); }

}  // namespace

namespace {

// The plan without strings: what gemm() needs on its hot path (no allocation).
struct ResolvedPlan {
  Strategy strategy = Strategy::fused;
  Partition partition = Partition::data_parallel;
  bool auto_partition = false;
  int split_k = 1;
  int split_requested = 1;  // before clamping to the number of K units
  bool split_ignored = false;
  int threads = 1;
  int threads_requested = 1;
  // The registry entries that run (their names are the plan's kernel string) and the form in
  // which they read x.
  cpu::XFormat x_format = cpu::XFormat::f32;
  DType dense_dtype = DType::bf16;  // dense / decoupled: the 16-bit weight dtype
  const cpu::Q4Entry* q4 = nullptr;
  const cpu::DenseEntry* dense = nullptr;
  cpu::DequantEntry dequant;
  int64_t row_panels = 1;  // passes over the tiles, each with a balanced share of the rows of x
};

// Rows of x per pass over the tiles. A thread runs every tile of its share against the same
// rows, so those rows must stay in L2 while the tiles stream past: without the cut, each 64-column
// tile re-reads all of x from L3 (M = 256, K = 4096: 4 MB of fp32 x per tile against 128 KB of
// codes). kRowPanelBytes is half the 2 MB L2 of the dev machine; the floor keeps the panel
// entries' row blocks full. The weight is then read once per pass (from L3 when it fits there).
constexpr int64_t kRowPanelBytes = int64_t(1) << 20;
constexpr int64_t kMinPanelRows = 32;

int64_t row_panel_count(int64_t m, int64_t k_padded, cpu::XFormat x) {
  const int64_t row_bytes = k_padded * (x == cpu::XFormat::bf16 ? 2 : 4);
  const int64_t rows = std::max(kMinPanelRows, kRowPanelBytes / std::max<int64_t>(1, row_bytes));
  return (m + rows - 1) / rows;
}

// Whether the table itself (not a lower one) has fused entries reading x in this format.
bool serves(const cpu::KernelTable& kt, cpu::XFormat x) {
  for (const auto& e : kt.q4) {
    if (e.x == x) return true;
  }
  return false;
}

// Picks the entries for M rows of x in dtype `act` (table `kt`: one snapshot per call, as
// set_isa_cap() may run concurrently).
void resolve_kernels(const PackedWeight::Impl& p, int64_t m, DType act, const cpu::KernelTable& kt, ResolvedPlan& r) {
  const bool dot = act == DType::bf16 && cpu::prefer_bf16_dot() && serves(kt, cpu::XFormat::bf16);
  r.dense_dtype = p.quantized ? act : p.layout.scale_dtype;
  if (r.strategy == Strategy::fused) {
    r.x_format = dot ? cpu::XFormat::bf16 : cpu::XFormat::f32;
    r.row_panels = row_panel_count(m, p.k_padded, r.x_format);
    r.q4 = cpu::find_q4(kt, r.x_format, m / r.row_panels);
    require(r.q4 != nullptr, "internal: no fused kernel for M={} on {}", m, kt.name);
    return;
  }
  r.x_format = dot && r.dense_dtype == DType::bf16 ? cpu::XFormat::bf16 : cpu::XFormat::f32;
  if (!cpu::find_dense(kt, r.dense_dtype, r.x_format, m)) r.x_format = cpu::XFormat::f32;
  r.row_panels = row_panel_count(m, p.k_padded, r.x_format);
  r.dense = cpu::find_dense(kt, r.dense_dtype, r.x_format, m / r.row_panels);
  require(r.dense != nullptr, "internal: no dense kernel for M={} on {}", m, kt.name);
  r.dequant = kt.dequant.fn ? kt.dequant : cpu::scalar_kernels()->dequant;
}

ResolvedPlan resolve_plan(const PackedWeight::Impl& p, const GemmOptions& o, int64_t m, DType act,
                          const cpu::KernelTable& kt) {
  ResolvedPlan r;
  r.strategy = o.strategy == Strategy::automatic ? (p.quantized ? Strategy::fused : Strategy::dense) : o.strategy;
  if (!p.quantized && r.strategy != Strategy::dense) {
    fail(ErrorCode::unsupported, "strategy '{}' needs a quantized weight; this one was packed dense (pack_dense)",
         to_string(r.strategy));
  }
  require(o.threads >= 0, "threads must be >= 0 (0 = all available), got {}", o.threads);
  require(o.split_k >= 0, "split-K factor must be >= 0 (0 = automatic), got {}", o.split_k);
  require(o.decoupled_panel_bytes >= 0, "decoupled panel bytes must be >= 0, got {}", o.decoupled_panel_bytes);
  static const int available = cpu::available_cpus();
  r.threads = r.threads_requested = o.threads > 0 ? o.threads : available;

  const int64_t units = split_units(p, r.strategy);
  r.partition = o.partition;
  if (r.partition == Partition::automatic) {
    r.auto_partition = true;
    r.partition = (p.tiles < r.threads && p.layout.k >= kSplitKMinK && units >= 2) ? Partition::split_k
                                                                                   : Partition::data_parallel;
  }
  if (r.partition == Partition::split_k) {
    r.split_requested = o.split_k > 0 ? o.split_k : int(std::max<int64_t>(2, (r.threads + p.tiles - 1) / p.tiles));
    r.split_k = int(std::min<int64_t>(r.split_requested, units));
  } else {
    r.split_ignored = o.split_k > 1;
  }
  r.threads = int(std::min<int64_t>(r.threads, p.tiles * r.split_k));
  resolve_kernels(p, m, act, kt, r);
  return r;
}

}  // namespace

GemmPlan plan_gemm(int64_t m, const PackedWeight& w, DType act, const GemmOptions& o) {
  const auto& p = w.impl();
  require(m > 0, "plan_gemm: M={} must be positive", m);
  const auto& kt = cpu::active_kernels();  // one snapshot: set_isa_cap() may run concurrently
  const ResolvedPlan r = resolve_plan(p, o, m, act, kt);
  GemmPlan plan;
  plan.isa = kt.name;
  plan.strategy = r.strategy;
  plan.partition = r.partition;
  plan.split_k = r.split_k;
  plan.threads = r.threads;

  std::string notes;
  if (r.auto_partition) {
    notes += fmt::format("auto partition: {} column tiles for {} threads, K={} -> {}; ", p.tiles, r.threads_requested,
                         p.layout.k, to_string(r.partition));
  }
  if (r.split_k < r.split_requested) {
    notes += fmt::format("split-K {} clamped to {} (the number of {}); ", r.split_requested, r.split_k,
                         r.strategy == Strategy::dense ? "8-wide K chunks" : "groups");
  }
  if (r.split_ignored) notes += fmt::format("split-K {} ignored: partition is data-parallel; ", o.split_k);
  if (r.threads < r.threads_requested) {
    notes += fmt::format("threads {} capped to {} work items; ", r.threads_requested, r.threads);
  }
  if (!notes.empty()) notes.resize(notes.size() - 2);
  plan.notes = notes;

  // The registry's names (family_MRxNR__isa, docs/kernels.md).
  switch (plan.strategy) {
    case Strategy::fused:
      plan.kernel = r.q4->name;
      break;
    case Strategy::decoupled:
      plan.kernel = std::string(r.dequant.name) + " + " + r.dense->name;
      break;
    case Strategy::dense:
      plan.kernel = r.dense->name;
      break;
    case Strategy::automatic:
      break;
  }
  return plan;
}

void gemm(const MatrixRef& x, const PackedWeight& w, const MutableMatrixRef& y, const GemmOptions& o) {
  cpu::gemm_ablation(x, w, y, o, cpu::Ablation::none);
}

void cpu::gemm_ablation(const MatrixRef& x, const PackedWeight& w, const MutableMatrixRef& y,
                        const GemmOptions& options, Ablation ablation) {
  GemmOptions o = options;
  if (ablation == Ablation::widen_copy) o.strategy = Strategy::decoupled;
  if (ablation == Ablation::int4_stream) o.strategy = Strategy::fused;
  const auto& p = w.impl();
  check_matrix(x, "gemm: x");
  check_matrix(y, "gemm: y");
  require(x.dtype == DType::f16 || x.dtype == DType::bf16, "gemm: x must be fp16 or bf16, got {}", to_string(x.dtype));
  require(y.dtype == DType::f16 || y.dtype == DType::bf16, "gemm: y must be fp16 or bf16, got {}", to_string(y.dtype));
  require(x.cols == p.layout.k, "gemm: x is {}x{} but the weight has K={}", x.rows, x.cols, p.layout.k);
  require(y.rows == x.rows && y.cols == p.layout.n, "gemm: y is {}x{}, expected M x N = {}x{}", y.rows, y.cols, x.rows,
          p.layout.n);
  check_disjoint(x, y, "gemm");
  const auto& kt = cpu::active_kernels();
  const ResolvedPlan plan = resolve_plan(p, o, x.rows, x.dtype, kt);
  const int64_t m = x.rows, kp = p.k_padded, groups = p.geom.groups;

  // Which kernel reads x, and in which form.
  const DType dense_dtype = plan.dense_dtype;
  const bool x_bf16 = plan.x_format == cpu::XFormat::bf16;
  const cpu::DenseKernel dense_kernel = plan.dense ? plan.dense->fn : nullptr;

  // Prepare activations: permuted, padded into K', widened to fp32 unless the bf16 kernel reads them.
  Workspace& ws = thread_workspace();
  cpu::Activations full_act;
  full_act.m = m;
  full_act.ld = kp;
  const bool direct = x_bf16 && !p.x_padded && p.perm.empty();
  if (direct) {
    full_act.data = x.data;
    full_act.ld = x.cols;
  } else {
    const size_t elem = x_bf16 ? 2 : 4;
    ws.x.reserve_discard(size_t(m * kp) * elem);
    std::memset(ws.x.data(), 0, size_t(m * kp) * elem);  // padding must be zero
    for (int64_t r = 0; r < m; ++r) {
      for (int64_t k = 0; k < p.layout.k; ++k) {
        const int64_t src = p.perm.empty() ? k : p.perm[size_t(k)];
        const int64_t dst = r * kp + p.padded_k(k);
        if (x_bf16) {
          reinterpret_cast<uint16_t*>(ws.x.data())[dst] = static_cast<const uint16_t*>(x.data)[r * x.cols + src];
        } else {
          reinterpret_cast<float*>(ws.x.data())[dst] = load_as_f32(x.data, x.dtype, r * x.cols + src);
        }
      }
    }
    full_act.data = ws.x.data();
  }
  if (plan.strategy == Strategy::fused && p.layout.zero_mode != ZeroMode::sym) {
    ws.group_sums.reserve_discard(size_t(m * groups));
    for (int64_t r = 0; r < m; ++r) {
      for (int64_t g = 0; g < groups; ++g) {
        double sum = 0;
        const int64_t end = std::min(p.layout.k, (g + 1) * p.kernel_group);
        for (int64_t k = g * p.kernel_group; k < end; ++k) {
          const int64_t src = p.perm.empty() ? k : p.perm[size_t(k)];
          sum += load_as_f32(x.data, x.dtype, r * x.cols + src);
        }
        ws.group_sums[size_t(r * groups + g)] = float(sum);
      }
    }
    full_act.group_sums = ws.group_sums.data();
  }

  // Work items: (tile, slice), tile-major; each part takes a contiguous run of items so that a
  // thread streams a contiguous stretch of the packed weight.
  const int s_count = plan.split_k;
  const int64_t units = split_units(p, plan.strategy);
  const int64_t items = p.tiles * s_count;
  const bool split = plan.partition == Partition::split_k && s_count > 1;
  if (split) ws.partials.reserve_discard(size_t(items * m * kTileN));
  float* partials = ws.partials.data();
  const int parts = plan.threads;
  const int64_t panel_bytes = o.decoupled_panel_bytes > 0 ? o.decoupled_panel_bytes : (int64_t(1) << 20);

  // Kernels of this call (the ablations fall back to the scalar twins where an ISA has none).
  const auto* scalar = cpu::scalar_kernels();
  cpu::Q4Kernel q4_kernel = plan.q4 ? plan.q4->fn : nullptr;
  if (ablation == Ablation::int4_stream) q4_kernel = kt.stream.fn ? kt.stream.fn : scalar->stream.fn;
  cpu::DequantKernel stage1 = plan.dequant.fn;
  if (ablation == Ablation::widen_copy) stage1 = kt.widen.fn ? kt.widen.fn : scalar->widen.fn;

  auto finish_tile = [&](int64_t t, const float* acc, int64_t r0, int64_t rows) {  // acc [rows][64] -> y rows r0..
    const int64_t cols = std::min(kTileN, p.layout.n - t * kTileN);
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t c = 0; c < cols; ++c) {
        const int64_t n = t * kTileN + c;
        float v = acc[r * kTileN + c];
        if (!p.bias_f32.empty()) v += p.bias_f32[size_t(n)];
        store_from_f32(y.data, y.dtype, (r0 + r) * y.cols + n, v);
      }
    }
  };

  auto run_part = [&](int part) {
    Workspace& local = thread_workspace();
    const int64_t begin = items * part / parts, end = items * (part + 1) / parts;
    if (!split) local.tile_out.reserve_discard(size_t(m * kTileN));
    // Decoupled: items are processed in batches whose dense panels fit the panel budget.
    int64_t item = begin;
    while (item < end) {
      int64_t batch_end = item + 1;
      const auto slice_units = [&](int64_t it) {
        const int64_t s = it % s_count;
        return std::pair{units * s / s_count, units * (s + 1) / s_count};
      };
      if (plan.strategy == Strategy::decoupled) {
        int64_t bytes = 0;
        batch_end = item;
        while (batch_end < end) {
          const auto [u0, u1] = slice_units(batch_end);
          const int64_t need = (p.geom.chunk_end(u1 - 1) - p.geom.chunk_begin(u0)) * kChunkK * kTileN * 2;
          if (batch_end > item && bytes + need > panel_bytes) break;
          bytes += need;
          ++batch_end;
        }
        local.panel.reserve_discard(size_t(bytes / 2));
        int64_t offset = 0;  // stage 1: dequantize the whole batch into the panel ring
        for (int64_t it = item; it < batch_end; ++it) {
          const auto [u0, u1] = slice_units(it);
          stage1(p.tile(it / s_count), u0, u1, dense_dtype, local.panel.data() + offset);
          offset += (p.geom.chunk_end(u1 - 1) - p.geom.chunk_begin(u0)) * kChunkK * kTileN;
        }
      }
      for (int64_t pass = 0; pass < plan.row_panels; ++pass) {  // row panels (kRowPanelBytes)
        const int64_t r0 = m * pass / plan.row_panels, rows = m * (pass + 1) / plan.row_panels - r0;
        cpu::Activations act = full_act;  // rows [r0, r0 + rows) of x
        act.data = static_cast<const std::byte*>(full_act.data) + r0 * full_act.ld * (x_bf16 ? 2 : 4);
        if (full_act.group_sums) act.group_sums = full_act.group_sums + r0 * groups;
        act.m = rows;
        int64_t offset = 0;
        for (int64_t it = item; it < batch_end; ++it) {
          const int64_t t = it / s_count;
          const auto [u0, u1] = slice_units(it);
          float* out = split ? partials + (it * m + r0) * kTileN : local.tile_out.data();
          switch (plan.strategy) {
            case Strategy::fused: {
              q4_kernel(p.tile(t), act, u0, u1, out);
              break;
            }
            case Strategy::dense: {
              dense_kernel(p.dense_tile(dense_dtype, t), act, u0, u1, out);  // units are chunks here
              break;
            }
            case Strategy::decoupled: {
              // The panel holds chunks [c0, c1) of this item; the dense kernel indexes K' from the
              // panel base, so shift the activations to the same origin.
              const int64_t c0 = p.geom.chunk_begin(u0), c1 = p.geom.chunk_end(u1 - 1);
              cpu::Activations shifted = act;
              shifted.data = static_cast<const std::byte*>(act.data) + c0 * kChunkK * (x_bf16 ? 2 : 4);
              dense_kernel(local.panel.data() + offset, shifted, 0, c1 - c0, out);
              offset += (c1 - c0) * kChunkK * kTileN;
              break;
            }
            case Strategy::automatic:
              break;
          }
          if (!split) finish_tile(t, out, r0, rows);
        }
      }
      item = batch_end;
    }
  };
  // A worker must not throw out of the pool (allocation of its workspace can): the first error
  // is kept and rethrown here, so a failed call never reports success.
  std::mutex error_mutex;
  std::exception_ptr error;
  auto guarded = [&](auto& body) {
    return [&](int part) {
      try {
        body(part);
      } catch (...) {
        std::lock_guard lock(error_mutex);
        if (!error) error = std::current_exception();
      }
    };
  };
  auto guarded_run = guarded(run_part);
  cpu::ThreadPool::instance().run(parts, plan.threads, guarded_run);
  if (error) std::rethrow_exception(error);

  if (split) {  // reduce partial sums in slice order 0..S-1: bitwise deterministic for fixed S
    auto reduce_part = [&](int part) {
      Workspace& local = thread_workspace();
      local.tile_out.reserve_discard(size_t(m * kTileN));
      for (int64_t t = p.tiles * part / parts; t < p.tiles * (part + 1) / parts; ++t) {
        float* acc = local.tile_out.data();
        std::memcpy(acc, partials + (t * s_count) * m * kTileN, size_t(m * kTileN) * sizeof(float));
        for (int s = 1; s < s_count; ++s) {
          const float* src = partials + (t * s_count + s) * m * kTileN;
          for (int64_t i = 0; i < m * kTileN; ++i) acc[i] += src[i];
        }
        finish_tile(t, acc, 0, m);
      }
    };
    auto guarded_reduce = guarded(reduce_part);
    cpu::ThreadPool::instance().run(parts, plan.threads, guarded_reduce);
    if (error) std::rethrow_exception(error);
  }
}

void gemm(const MatrixRef& x, const QuantizedWeight& w, const MutableMatrixRef& y, const GemmOptions& options) {
  check_gemm_args(x, w, y);
  gemm(x, pack(w), y, options);
}

}  // namespace w4a16
