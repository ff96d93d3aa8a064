// The CPU executor (executor.hpp): the named stages of one gemm call on packed weights.
#include "cpu/executor.hpp"

#include <algorithm>
#include <bit>
#include <cstring>
#include <exception>
#include <mutex>

#include "common/check.hpp"
#include "common/thread_scratch.hpp"
#include "cpu/dispatch.hpp"
#include "cpu/pipelined.hpp"
#include "cpu/reference.hpp"
#include "cpu/thread_pool.hpp"

namespace w4a16::cpu {

namespace {

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

// K is split in "units": groups for the int4 strategies, chunks of 8 for dense weights.
int64_t split_units(const PackedWeight::Impl& p, Strategy s) {
  return s == Strategy::dense ? p.geom.chunks() : p.geom.groups;
}

// Runs fn(part) for parts [0, parts) on the pool, or on the caller's runner (GemmOptions::runner);
// a part must not throw out of either (allocation of its workspace can): the first error is kept
// and rethrown here, so a failed call never reports success.
template <class F>
void run_parts(const ParallelRunner& runner, int parts, int threads, F&& fn) {
  std::mutex error_mutex;
  std::exception_ptr error;
  auto guarded = [&](int part) {
    try {
      fn(part);
    } catch (...) {
      std::lock_guard lock(error_mutex);
      if (!error) error = std::current_exception();
    }
  };
  if (runner.run != nullptr && parts > 1 && threads > 1) {
    runner.run(
        runner.ctx, parts, [](void* ctx, int part) { (*static_cast<decltype(guarded)*>(ctx))(part); }, &guarded);
  } else {
    ThreadPool::instance().run(parts, threads, guarded);
  }
  if (error) std::rethrow_exception(error);
}

// Stage: prepare_activations. Permuted, padded into K', widened to fp32 unless the bf16 kernels
// read it; read in place when nothing needs to change.
Activations prepare_activations(const MatrixRef& x, const PackedWeight::Impl& p, const ExecPlan& plan, Workspace& ws) {
  const bool x_bf16 = plan.x_format == XFormat::bf16;
  const size_t elem = x_bf16 ? 2 : 4;
  const int64_t m = x.rows;
  // Blocks of many rows of a multiple of 4 KiB would evict their own x from one L1 set
  // (kernels.hpp x_rows_apart): such rows get one more cache line of stride. Each row panel is a
  // call of its own, so the blocks are cut from a panel's rows.
  const int64_t panels = std::max<int64_t>(1, plan.row_panels), panel_rows = (m + panels - 1) / panels;
  const bool aliased = x_rows_apart(plan.x_block_rows, panel_rows, p.k_padded * int64_t(elem));
  const int64_t kp = p.k_padded + (aliased ? 64 / int64_t(elem) : 0);
  Activations act;
  act.m = m;
  act.ld = kp;
  if (x_bf16 && !p.x_padded && p.perm.empty() && !aliased) {
    act.data = x.data;
    act.ld = x.cols;
    return act;
  }
  ws.x.reserve_discard(size_t(m * kp) * elem);
  // K' padding must be zero; the extra cache line of `aliased` rows is never read.
  if (p.x_padded) std::memset(ws.x.data(), 0, size_t(m * kp) * elem);
  // Typed loops the compiler vectorizes: a per-element dtype switch and padded_k() division cost
  // ~4 ns per element (1 ms per call at M = 64, K = 4096). Without a permutation each kernel group
  // of x is one contiguous run in K' (packed_weight.hpp padded_k), so the copy goes run by run.
  const int64_t k = p.layout.k, kg = p.kernel_group;
  const auto copy_run = [&](int64_t r, int64_t k0, int64_t len) {
    const int64_t dst = r * kp + p.padded_k(k0), src = r * x.cols + k0;
    if (x_bf16) {
      std::memcpy(reinterpret_cast<uint16_t*>(ws.x.data()) + dst, static_cast<const uint16_t*>(x.data) + src,
                  size_t(len) * 2);
      return;
    }
    float* out = reinterpret_cast<float*>(ws.x.data()) + dst;
    if (x.dtype == DType::bf16) {
      const uint16_t* in = static_cast<const uint16_t*>(x.data) + src;
      for (int64_t i = 0; i < len; ++i) out[i] = bf16_to_f32(in[i]);
    } else if (x.dtype == DType::f16) {
      const uint16_t* in = static_cast<const uint16_t*>(x.data) + src;
      for (int64_t i = 0; i < len; ++i) out[i] = f16_to_f32(in[i]);
    } else {
      std::memcpy(out, static_cast<const float*>(x.data) + src, size_t(len) * 4);
    }
  };
  for (int64_t r = 0; r < m; ++r) {
    if (p.perm.empty()) {
      for (int64_t k0 = 0; k0 < k; k0 += kg) copy_run(r, k0, std::min(kg, k - k0));
      continue;
    }
    for (int64_t i = 0; i < k; ++i) {  // act-order: a gather, element by element
      const int64_t dst = r * kp + p.padded_k(i), src = r * x.cols + p.perm[size_t(i)];
      if (x_bf16) {
        reinterpret_cast<uint16_t*>(ws.x.data())[dst] = static_cast<const uint16_t*>(x.data)[src];
      } else {
        reinterpret_cast<float*>(ws.x.data())[dst] = load_as_f32(x.data, x.dtype, src);
      }
    }
  }
  act.data = ws.x.data();
  return act;
}

// Stage: group_sums. The fused kernels fold the zero in as coef * sum(x over the group).
const float* group_sums(const MatrixRef& x, const PackedWeight::Impl& p, Workspace& ws) {
  const int64_t m = x.rows, groups = p.geom.groups;
  ws.group_sums.reserve_discard(size_t(m * groups));
  for (int64_t r = 0; r < m; ++r) {
    for (int64_t g = 0; g < groups; ++g) {
      double sum = 0;
      const int64_t begin = g * p.kernel_group, end = std::min(p.layout.k, begin + p.kernel_group);
      if (!p.perm.empty()) {  // act-order: a gather
        for (int64_t k = begin; k < end; ++k) sum += load_as_f32(x.data, x.dtype, r * x.cols + p.perm[size_t(k)]);
      } else if (x.dtype == DType::f32) {  // typed, contiguous runs (as in prepare_activations)
        const float* in = static_cast<const float*>(x.data) + r * x.cols;
        for (int64_t k = begin; k < end; ++k) sum += in[k];
      } else {
        const uint16_t* in = static_cast<const uint16_t*>(x.data) + r * x.cols;
        if (x.dtype == DType::bf16) {
          for (int64_t k = begin; k < end; ++k) sum += bf16_to_f32(in[k]);
        } else {
          for (int64_t k = begin; k < end; ++k) sum += f16_to_f32(in[k]);
        }
      }
      ws.group_sums[size_t(r * groups + g)] = float(sum);
    }
  }
  return ws.group_sums.data();
}

// y row <- acc row (+ bias), rounded to bf16: f32_to_bf16's arithmetic without its branch, so that
// the compiler vectorizes the loop (element by element it was ~1 ns an output, a microsecond of a
// 1536-wide decode call). Bit-identical to f32_to_bf16, NaN included.
void round_row_to_bf16(const float* acc, const float* bias, uint16_t* out, int64_t cols) {
  const auto round = [](float v) {
    const uint32_t x = std::bit_cast<uint32_t>(v);
    const uint32_t nearest_even = (x + 0x7FFFu + ((x >> 16) & 1u)) >> 16;
    const uint32_t quiet_nan = (x >> 16) | 0x0040u;
    return uint16_t(int32_t(x & 0x7FFFFFFFu) > int32_t(0x7F800000u) ? quiet_nan : nearest_even);
  };
  if (bias != nullptr) {
    for (int64_t c = 0; c < cols; ++c) out[c] = round(acc[c] + bias[c]);
  } else {
    for (int64_t c = 0; c < cols; ++c) out[c] = round(acc[c]);
  }
}

// Stage: write_tile. acc [rows][64] fp32 -> y rows [r0, r0 + rows) of tile t, plus the bias.
void write_tile(const PackedWeight::Impl& p, const MutableMatrixRef& y, int64_t t, const float* acc, int64_t r0,
                int64_t rows) {
  const int64_t cols = std::min(kTileN, p.layout.n - t * kTileN), n0 = t * kTileN;
  const float* bias = p.bias_f32.empty() ? nullptr : p.bias_f32.data() + n0;
  for (int64_t r = 0; r < rows; ++r) {
    const float* a = acc + r * kTileN;
    const int64_t at = (r0 + r) * y.cols + n0;
    if (y.dtype == DType::bf16) {
      round_row_to_bf16(a, bias, static_cast<uint16_t*>(y.data) + at, cols);
    } else if (y.dtype == DType::f16) {
      uint16_t* out = static_cast<uint16_t*>(y.data) + at;
      for (int64_t c = 0; c < cols; ++c) out[c] = f32_to_f16(bias ? a[c] + bias[c] : a[c]);
    } else {
      float* out = static_cast<float*>(y.data) + at;
      for (int64_t c = 0; c < cols; ++c) out[c] = bias ? a[c] + bias[c] : a[c];
    }
  }
}

// Stage: run_work_items (fused, dense, per-thread decoupled). Items (tile, slice), tile-major;
// each part takes a contiguous run so that a thread streams a contiguous stretch of the weight.
// Without split-K each item's tile goes straight to y; with it, to its partial tile.
void run_work_items(const PackedWeight::Impl& p, const Activations& full_act, const MutableMatrixRef& y,
                    const ExecPlan& plan, float* partials, const ParallelRunner& runner) {
  const int64_t m = full_act.m, groups = p.geom.groups;
  const int s_count = plan.split_k;
  const int64_t units = split_units(p, plan.strategy);
  const int64_t items = p.tiles * s_count;
  const bool x_bf16 = plan.x_format == XFormat::bf16;
  const int parts = plan.threads;
  const auto slice_units = [&](int64_t it) {
    const int64_t s = it % s_count;
    return std::pair{units * s / s_count, units * (s + 1) / s_count};
  };
  auto run_part = [&](int part) {
    Workspace& local = thread_workspace();
    const int64_t begin = items * part / parts, end = items * (part + 1) / parts;
    if (!plan.split) local.tile_out.reserve_discard(size_t(m * kTileN));
    int64_t item = begin;
    while (item < end) {
      // Decoupled: items are processed in batches whose dense panels fit the panel budget.
      int64_t batch_end = item + 1;
      if (plan.strategy == Strategy::decoupled) {
        int64_t bytes = 0;
        batch_end = item;
        while (batch_end < end) {
          const auto [u0, u1] = slice_units(batch_end);
          const int64_t need = (p.geom.chunk_end(u1 - 1) - p.geom.chunk_begin(u0)) * kChunkK * kTileN * 2;
          if (batch_end > item && bytes + need > plan.panel_bytes) break;
          bytes += need;
          ++batch_end;
        }
        local.panel.reserve_discard(size_t(bytes / 2));
        int64_t offset = 0;  // dequantize the whole batch into the panel
        for (int64_t it = item; it < batch_end; ++it) {
          const auto [u0, u1] = slice_units(it);
          plan.dequant(p.tile(it / s_count), u0, u1, plan.dense_dtype, local.panel.data() + offset);
          offset += (p.geom.chunk_end(u1 - 1) - p.geom.chunk_begin(u0)) * kChunkK * kTileN;
        }
      }
      for (int64_t pass = 0; pass < plan.row_panels; ++pass) {  // row panels (planner.hpp)
        const int64_t r0 = m * pass / plan.row_panels, rows = m * (pass + 1) / plan.row_panels - r0;
        Activations act = full_act;  // rows [r0, r0 + rows) of x
        act.data = static_cast<const std::byte*>(full_act.data) + r0 * full_act.ld * (x_bf16 ? 2 : 4);
        if (full_act.group_sums) act.group_sums = full_act.group_sums + r0 * groups;
        act.m = rows;
        int64_t offset = 0;
        for (int64_t it = item; it < batch_end; ++it) {
          const int64_t t = it / s_count;
          const auto [u0, u1] = slice_units(it);
          float* out = plan.split ? partials + (it * m + r0) * kTileN : local.tile_out.data();
          switch (plan.strategy) {
            case Strategy::fused:
              plan.q4(p.tile(t), act, u0, u1, out);
              break;
            case Strategy::dense:
              plan.dense(p.dense_tile(plan.dense_dtype, t), act, u0, u1, out);  // units are chunks here
              break;
            default: {  // decoupled
              // The panel holds chunks [c0, c1) of this item; the dense kernel indexes K' from
              // the panel base, so shift the activations to the same origin.
              const int64_t c0 = p.geom.chunk_begin(u0), c1 = p.geom.chunk_end(u1 - 1);
              Activations shifted = act;
              shifted.data = static_cast<const std::byte*>(act.data) + c0 * kChunkK * (x_bf16 ? 2 : 4);
              plan.dense(local.panel.data() + offset, shifted, 0, c1 - c0, out);
              offset += (c1 - c0) * kChunkK * kTileN;
              break;
            }
          }
          if (!plan.split) write_tile(p, y, t, out, r0, rows);
        }
      }
      item = batch_end;
    }
  };
  run_parts(runner, parts, plan.threads, run_part);
}

// Stage: reduce_split_k. Partial tiles summed in slice order 0..S-1: bitwise deterministic for
// a fixed S whatever the thread count.
void reduce_split_k(const PackedWeight::Impl& p, const MutableMatrixRef& y, int64_t m, int s_count, int threads,
                    const float* partials, const ParallelRunner& runner) {
  const int parts = int(std::min<int64_t>(threads, p.tiles));
  run_parts(runner, parts, parts, [&](int part) {
    Workspace& local = thread_workspace();
    local.tile_out.reserve_discard(size_t(m * kTileN));
    for (int64_t t = p.tiles * part / parts; t < p.tiles * (part + 1) / parts; ++t) {
      float* acc = local.tile_out.data();
      std::memcpy(acc, partials + (t * s_count) * m * kTileN, size_t(m * kTileN) * sizeof(float));
      for (int s = 1; s < s_count; ++s) {
        const float* src = partials + (t * s_count + s) * m * kTileN;
        for (int64_t i = 0; i < m * kTileN; ++i) acc[i] += src[i];
      }
      write_tile(p, y, t, acc, 0, m);
    }
  });
}

}  // namespace

ExecPlan exec_plan(const GemmPlan& g, const PackedWeight::Impl& p, const KernelTable& active) {
  require(g.table == &active, "gemm: the plan was made for the '{}' kernels but '{}' is active (set_isa_cap?)",
          g.table ? g.table->name : "(none)", active.name);
  require(g.threads >= 1 && g.split_k >= 1 && g.row_panels >= 1,
          "gemm: the plan has {} threads, split-K {}, {} row panels", g.threads, g.split_k, g.row_panels);
  require(g.strategy != Strategy::automatic, "gemm: a plan names a concrete strategy, not 'auto'");
  if (!p.quantized && g.strategy != Strategy::dense) {
    fail(ErrorCode::unsupported, "strategy '{}' needs a quantized weight; this one was packed dense (pack_dense)",
         to_string(g.strategy));
  }
  ExecPlan e;
  e.strategy = g.strategy;
  e.split_k = int(std::min<int64_t>(g.split_k, split_units(p, g.strategy)));
  e.split = (g.partition == Partition::split_k && e.split_k > 1) || g.strategy == Strategy::pipelined;
  e.threads = g.threads;
  e.vector_threads = g.vector_threads;
  e.dense_dtype = p.quantized ? g.act : p.layout.scale_dtype;
  e.row_panels = g.row_panels;
  if (g.panel_bytes > 0) e.panel_bytes = g.panel_bytes;
  if (g.strategy == Strategy::fused) {
    require(g.q4 != nullptr && g.q4->fn != nullptr,
            "gemm: the fused plan has no kernel entry (make plans with plan_gemm)");
    e.q4 = g.q4->fn;
    e.x_format = g.q4->x;
    e.x_block_rows = g.q4->mr;
    return e;
  }
  require(g.dense != nullptr && g.dense->fn != nullptr,
          "gemm: the {} plan has no dense kernel entry (make plans with plan_gemm)", to_string(g.strategy));
  require(g.dense->weight == e.dense_dtype, "gemm: kernel '{}' reads {} weights, the plan's are {}", g.dense->name,
          to_string(g.dense->weight), to_string(e.dense_dtype));
  e.dense = g.dense->fn;
  e.x_format = g.dense->x;
  e.x_block_rows = g.dense->mr;
  if (g.strategy != Strategy::dense) {
    require(g.dequant != nullptr && g.dequant->fn != nullptr,
            "gemm: the {} plan has no dequant kernel entry (make plans with plan_gemm)", to_string(g.strategy));
    e.dequant = g.dequant->fn;
  }
  return e;
}

void execute(const MatrixRef& x, const PackedWeight::Impl& p, const MutableMatrixRef& y, const ExecPlan& plan,
             const ParallelRunner& runner) {
  Workspace& ws = thread_workspace();
  Activations act = prepare_activations(x, p, plan, ws);
  if (plan.strategy == Strategy::fused && p.layout.zero_mode != ZeroMode::sym) act.group_sums = group_sums(x, p, ws);

  const int64_t m = x.rows, items = p.tiles * plan.split_k;
  float* partials = nullptr;
  if (plan.split) {
    ws.partials.reserve_discard(size_t(items * m * kTileN));
    partials = ws.partials.data();
  }
  if (plan.strategy == Strategy::pipelined) {
    PipelineConfig c;
    c.vector_threads = std::max(1, plan.vector_threads);
    c.matrix_threads = std::max(1, plan.threads - c.vector_threads);
    c.split_k = plan.split_k;
    c.dequant = plan.dequant;
    c.dense = plan.dense;
    c.dense_dtype = plan.dense_dtype;
    c.x_format = plan.x_format;
    // The pool cannot run both roles at once (another call holds it), or the parts run on the
    // caller's runner, which promises no simultaneity: the same items, per thread, into the same
    // partials (the dequantized panels and products are the same).
    if (runner.run != nullptr || !run_pipelined(p, act, c, partials)) {
      ExecPlan fallback = plan;
      fallback.strategy = Strategy::decoupled;
      run_work_items(p, act, y, fallback, partials, runner);
    }
  } else {
    run_work_items(p, act, y, plan, partials, runner);
  }
  if (plan.split) reduce_split_k(p, y, m, plan.split_k, plan.threads, partials, runner);
}

}  // namespace w4a16::cpu
