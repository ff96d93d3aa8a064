// The cost model's arithmetic. docs/model.md derives each formula; the names below follow it.
//
// Every strategy is cut into the same work items as the executors use: (column tile, K slice),
// tiles of tile_n output columns, S slices of whole groups. Items are dealt to cores in
// contiguous runs, so the busiest core runs ceil(items / cores) of them ("waves"). Within an
// item the weight stream and the arithmetic overlap (prefetch on a CPU, double buffering on a
// GPU or NPU): an item costs the max of its memory and compute times, not their sum. Phases
// that cannot overlap (preparing x, the split-K reduction, starting a parallel phase) add.
#include "plan/cost_model.hpp"

#include <algorithm>
#include <cmath>

#include "common/check.hpp"

namespace w4a16::plan {

namespace {

double ceil_div(double a, double b) { return std::ceil(a / b); }

// The quantities of one item that every strategy needs.
struct ItemShape {
  int64_t tiles = 1, items = 1, groups = 1;
  double k_slice = 0;       // K of the longest slice
  double groups_slice = 0;  // groups of that slice
  double w4_bytes = 0;      // packed codes + scales (+ zeros) of one item
  double w16_bytes = 0;     // the same weights as 16-bit values
  double flops = 0;         // 2 * M * k_slice * tile_n
};

ItemShape item_shape(const Problem& p, const Candidate& c) {
  ItemShape s;
  s.tiles = (p.n + c.tile_n - 1) / c.tile_n;
  s.groups = (p.k + p.group_size - 1) / p.group_size;
  const int64_t split = std::clamp<int64_t>(c.split_k, 1, s.groups);
  s.items = s.tiles * split;
  s.groups_slice = ceil_div(double(s.groups), double(split));
  s.k_slice = std::min(double(p.k), s.groups_slice * double(p.group_size));
  const double scale_b = double(dtype_size(p.scale_dtype));
  const double zero_b = p.zero_mode == ZeroMode::sym ? 0 : p.zero_mode == ZeroMode::asym ? 1 : scale_b;
  const double tn = double(c.tile_n);
  s.w4_bytes = tn * (s.k_slice / 2 + s.groups_slice * (scale_b + zero_b));
  s.w16_bytes = tn * s.k_slice * 2;
  s.flops = 2.0 * double(p.m) * s.k_slice * tn;
  return s;
}

// Collects terms and sums the total: overlapped terms of one stage are added as their max.
struct Builder {
  Prediction out;
  void serial(const std::string& name, double s) {
    if (s <= 0) return;
    out.terms.push_back({name, s, false});
    out.seconds += s;
  }
  // A stage whose terms overlap; `scale` multiplies each (the items the busiest core runs).
  // `overlap` in [0, 1]: 1 = only the largest counts, 0 = they add up (in between: the largest
  // plus that share of the others).
  void overlapped(std::initializer_list<std::pair<const char*, double>> terms, double scale, double overlap = 1.0) {
    double worst = 0, sum = 0;
    for (const auto& [name, s] : terms) {
      if (s <= 0) continue;
      out.terms.push_back({name, s * scale, overlap > 0});
      worst = std::max(worst, s * scale);
      sum += s * scale;
    }
    out.seconds += worst + (1.0 - overlap) * (sum - worst);
  }
  Prediction done() {
    double worst = -1;
    for (const auto& t : out.terms) {
      if (t.seconds > worst) {
        worst = t.seconds;
        out.bound = t.name;
      }
    }
    return std::move(out);
  }
};

// --- CPU ------------------------------------------------------------------------------------
// One core issues the FMAs (or bf16 dots) and the dequantization from the same two vector ports,
// so within an item their times add; the weight stream overlaps with both (prefetch).

// One item's int4 -> 16-bit weights at the device's measured dequantization rate (a vector core's:
// the accelerators'; the AMX pipeline's vector stage on a CPU), 0 when the rate is not known.
double dequant_time(const Device& d, const ItemShape& s, const Candidate& c) {
  return d.dequant_weights_per_s > 0 ? s.k_slice * double(c.tile_n) / d.dequant_weights_per_s : 0.0;
}

struct CpuCompute {
  double matmul = 0, dequant = 0;
};

// A tile entry (AMX): a tile multiply costs the same for 1 to 16 rows, so every row block is charged
// as 16 rows at the tile rate.
double cpu_tile_matmul(const Device& d, const Problem& p, const Candidate& c, const ItemShape& s) {
  const double panels = double(std::max<int64_t>(1, c.row_panels));
  const double blocks = panels * ceil_div(ceil_div(double(p.m), panels), 16.0);
  return 2.0 * blocks * 16.0 * s.k_slice * double(c.tile_n) / d.tile_flops;
}

// A register block of MR rows dequantizes each packed vector once for its MR rows: 2 vector
// instructions (shift + table permute) per vector and k for the FMA family, per pair of k for
// the dot family (which takes k in pairs). A panel entry dequantizes a group once per item into
// L1 (3 instructions: shift, permute, store) and its blocks then only load.
CpuCompute cpu_fused_compute(const Device& d, const Problem& p, const Candidate& c, const ItemShape& s) {
  CpuCompute r;
  const double vectors = double(c.tile_n) / d.vector_lanes;  // vectors per k of one item
  if (c.tiles && d.tile_flops > 0) {
    // The vector unit dequantizes each group once per item into B tiles, at the rate calibrate
    // measured (else counted: a shift, a permute and a store per pair of k and 16 columns, 1.5
    // instructions per vector and k), and after each group scales the C tiles into the output (a
    // load, an FMA and a store per row and vector).
    const double panels = double(std::max<int64_t>(1, c.row_panels));
    r.matmul = cpu_tile_matmul(d, p, c, s);
    r.dequant =
        panels * (d.dequant_weights_per_s > 0 ? dequant_time(d, s, c) : s.k_slice * vectors * 1.5 / d.vector_ops) +
        s.groups_slice * double(p.m) * vectors * 3.0 / d.vector_ops;
    return r;
  }
  const double rate = c.bf16_dot && d.dot_flops > 0 ? d.dot_flops : d.matrix_flops;
  r.matmul = s.flops / rate;
  const double panels = double(std::max<int64_t>(1, c.row_panels));
  const double rows = ceil_div(double(p.m), panels);
  const double blocks = c.panel ? 1.0 : ceil_div(rows, double(std::max(1, c.block_rows)));
  const double per_k = c.panel ? 3.0 : (c.bf16_dot ? 1.0 : 2.0);
  r.dequant = panels * blocks * s.k_slice * vectors * per_k / d.vector_ops;
  return r;
}

// Dense entries widen a 16-bit weight vector to fp32 lanes once per block (1 instruction per
// vector and k; the dot family takes bf16 pairs as they are).
CpuCompute cpu_dense_compute(const Device& d, const Problem& p, const Candidate& c, const ItemShape& s) {
  CpuCompute r;
  if (c.tiles && d.tile_flops > 0) {
    r.matmul = cpu_tile_matmul(d, p, c, s);  // B tiles load the bf16 pairs as they are
    return r;
  }
  const double vectors = double(c.tile_n) / d.vector_lanes;
  const double rate = c.bf16_dot && d.dot_flops > 0 ? d.dot_flops : d.matrix_flops;
  r.matmul = s.flops / rate;
  const double panels = double(std::max<int64_t>(1, c.row_panels));
  const double blocks = panels * ceil_div(ceil_div(double(p.m), panels), double(std::max(1, c.block_rows)));
  r.dequant = c.bf16_dot ? 0.0 : blocks * s.k_slice * vectors / d.vector_ops;
  return r;
}

// The decoupled stage 1 (dequant entry): per vector and k a shift, a permute, the scale's FMA,
// the rounding to 16 bits and a store, about 5 instructions.
double cpu_dequant_stage(const Device& d, const Candidate& c, const ItemShape& s) {
  return 5.0 * s.k_slice * double(c.tile_n) / d.vector_lanes / d.vector_ops;
}

// Preparing x runs on the calling thread before the parallel phase: read the 16-bit rows,
// write them permuted / padded / widened (and the group sums for asym and float zeros). The
// bf16-dot entries read x in place when K needs no padding and there is no permutation, which
// the model does not know: it charges the copy always (a few microseconds at decode).
double cpu_prepare_x(const Device& d, const Problem& p, const Candidate& c) {
  const double x_bytes = double(p.m) * double(p.k);
  double bytes = x_bytes * (2.0 + (c.bf16_dot ? 2.0 : 4.0));
  if (p.zero_mode != ZeroMode::sym && c.strategy == Strategy::fused) bytes += x_bytes * 2.0;
  return bytes / d.local_bw;
}

Prediction predict_cpu(const Device& d, const Problem& p, const Candidate& c) {
  const ItemShape s = item_shape(p, c);
  Builder b;
  b.serial("prepare x", cpu_prepare_x(d, p, c));
  const bool split = c.split_k > 1;
  const int threads = std::max(1, c.threads);
  // The in-core terms as measured on hot calls of this strategy (1 when never calibrated).
  const double incore = d.incore_scale_at(incore_key(c), threads, p.m);

  if (c.strategy == Strategy::pipelined) {
    // Vector-role threads dequantize every item into the ring; matrix-role threads multiply the
    // panels, which arrive through the LLC (written by another core). The two roles overlap.
    const int tv = std::clamp(c.vector_threads, 1, std::max(1, threads - 1));
    const int tm = std::max(1, threads - tv);
    const double bw_v = std::min(d.core_read_bw, d.read_bw_at(threads) / threads);
    const double v_items = ceil_div(double(s.items), tv), m_items = ceil_div(double(s.items), tm);
    const CpuCompute mm = cpu_dense_compute(d, p, c, s);
    const double llc_core = d.llc_bw / d.cores;
    // Within a role, a core's loads and its arithmetic combine as in the other strategies (⊕).
    const auto combine = [&](double a, double b) {
      return std::max(a, b) + (1.0 - d.read_compute_overlap) * std::min(a, b);
    };
    const double produce = combine(s.w4_bytes / bw_v, incore * cpu_dequant_stage(d, c, s));
    const double consume = combine(incore * (mm.matmul + mm.dequant), s.w16_bytes / llc_core);
    b.serial("launch", d.launch_s);
    b.overlapped({{"weight read + dequant (vector role)", v_items * produce},
                  {"workspace round trip + matmul (matrix role)", m_items * consume},
                  {"workspace through the LLC", 2.0 * double(s.items) * s.w16_bytes / d.llc_bw}},
                 1.0);
    b.serial("sync", double(s.items) * d.sync_s + produce);  // each slot's hand-off; the first fill
  } else {
    const int busy = int(std::min<int64_t>(threads, s.items));
    const double per_core_items = ceil_div(double(s.items), busy);
    const double bw = std::min(d.core_read_bw, d.read_bw_at(busy) / busy);
    if (busy > 1) b.serial("launch", d.launch_s);
    switch (c.strategy) {
      case Strategy::fused: {
        const CpuCompute f = cpu_fused_compute(d, p, c, s);
        b.overlapped({{"weight read", s.w4_bytes / bw}, {"dequant + matmul", incore * (f.matmul + f.dequant)}},
                     per_core_items, d.read_compute_overlap);
        break;
      }
      case Strategy::dense: {
        const CpuCompute f = cpu_dense_compute(d, p, c, s);
        b.overlapped({{"weight read", s.w16_bytes / bw}, {"matmul", incore * (f.matmul + f.dequant)}}, per_core_items,
                     d.read_compute_overlap);
        break;
      }
      case Strategy::decoupled: {
        // Per thread: dequantize a batch of items into an L2 panel, then multiply it. The
        // weight stream overlaps with the dequantization; the panel's round trip through L2
        // overlaps with the dense kernel; the two stages follow each other on the same core.
        const CpuCompute f = cpu_dense_compute(d, p, c, s);
        b.overlapped({{"weight read", s.w4_bytes / bw}, {"dequant", incore * cpu_dequant_stage(d, c, s)}},
                     per_core_items, d.read_compute_overlap);
        b.overlapped(
            {{"workspace round trip", 2.0 * s.w16_bytes / d.local_bw}, {"matmul", incore * (f.matmul + f.dequant)}},
            per_core_items);
        break;
      }
      default:
        fail(ErrorCode::invalid_argument, "predict: strategy '{}' is not a concrete strategy", to_string(c.strategy));
    }
  }
  if (split) {  // a second parallel phase reads the S partial tiles (from the LLC) and writes y
    const int busy = int(std::min<int64_t>(threads, s.tiles));
    const double partial_bytes = double(c.split_k) * double(p.m) * double(p.n) * 4.0;
    b.serial("reduce", (busy > 1 ? d.launch_s : 0.0) + partial_bytes / std::min(d.llc_bw, busy * d.local_bw));
  }
  return b.done();
}

// --- GPU and NPU ----------------------------------------------------------------------------

// The matrix engine's time for one item; tensor / cube cores run 16-bit products at
// matrix_flops per core whatever the batch, and a batch below the engine's M (16) still pays a
// full fragment: M is rounded up to 16.
double engine_time(const Device& d, const Problem& p, const ItemShape& s) {
  const double m_padded = std::max(16.0, ceil_div(double(p.m), 16) * 16);
  return s.flops * m_padded / double(p.m) / d.matrix_flops;
}

Prediction predict_accelerator(const Device& d, const Problem& p, const Candidate& c) {
  const ItemShape s = item_shape(p, c);
  Builder b;
  const int cores = std::clamp(c.threads > 0 ? c.threads : d.cores, 1, d.cores);
  const int busy = int(std::min<int64_t>(cores, s.items));
  const double waves = ceil_div(double(s.items), busy);
  const double bw = std::min(d.core_read_bw, d.read_bw_at(busy) / busy);
  const double hbm = d.read_bw_at(d.cores);
  const double total_w16 = double(s.items) * s.w16_bytes;

  const bool decoupled = c.strategy == Strategy::decoupled || c.strategy == Strategy::pipelined;
  if (decoupled && d.kind == DeviceKind::npu) {
    // The 910B's pipeline: the AIVs read the int4 weight, write the 16-bit weight to a ring in
    // global memory, the AICs read it back; a share h of that round trip is served by L2, the
    // rest goes to HBM and back. Stages overlap across slots; all cores share HBM and L2.
    const int tv = std::max(1, c.vector_threads > 0 ? c.vector_threads : d.vector_cores);
    // The AIVs of one AIC share its slots, so fewer items than AIVs still keeps them all busy.
    const double v_items = double(s.items) / tv;
    const double h = d.workspace_l2_hit;
    const double produce =
        std::max({s.w4_bytes / d.vector_core_read_bw, dequant_time(d, s, c), s.w16_bytes / d.vector_core_write_bw});
    const double consume = std::max(s.w16_bytes / d.core_read_bw, engine_time(d, p, s));
    const double hbm_bytes = double(s.items) * s.w4_bytes + (1.0 - h) * 2.0 * total_w16;
    b.serial("launch", d.launch_s);
    b.overlapped({{"weight read + dequant (AIV)", v_items * produce},
                  {"workspace read + matmul (AIC)", waves * consume},
                  {"HBM traffic (int4 read + workspace misses)", hbm_bytes / hbm},
                  {"workspace round trip through L2", 2.0 * h * total_w16 / d.llc_bw}},
                 1.0);
    // Start-up: the cube waits for the first slot, not the whole item.
    const double fill = d.ring_slot_k > 0 ? std::min(1.0, d.ring_slot_k / s.k_slice) : 1.0;
    b.serial("sync", waves * d.sync_s + produce * fill);
  } else if (decoupled) {
    // GPU: a dequant kernel writes the whole 16-bit weight, then cuBLAS reads it; the second
    // read hits L2 only when the whole 16-bit weight fits there.
    const double all_w4 = double(s.items) * s.w4_bytes;
    const double hit = total_w16 <= d.llc_bytes ? d.workspace_l2_hit : 0.0;
    b.serial("launch", 2 * d.launch_s);
    b.overlapped({{"weight read (dequant kernel)", all_w4 / hbm}, {"workspace write", total_w16 / d.write_bw}}, 1.0);
    b.overlapped({{"workspace read (GEMM)", (1 - hit) * total_w16 / hbm + hit * total_w16 / d.llc_bw},
                  {"matmul", waves * engine_time(d, p, s)}},
                 1.0);
  } else {
    const bool fused = c.strategy == Strategy::fused;
    if (fused && !d.fused_possible) {
      b.out.terms.push_back(
          {"(hypothetical: this device cannot pass a dequantized weight to its matrix unit)", 0, false});
    }
    const double bytes = fused ? s.w4_bytes : s.w16_bytes;
    b.serial("launch", d.launch_s);
    // Fused: the dequantization runs beside the matrix engine (GPU: integer pipes; a fused NPU
    // design: its vector cores per cube core, vector_cores / cores of them).
    const double dq = fused ? dequant_time(d, s, c) * double(d.cores) / double(d.vector_cores) : 0.0;
    b.overlapped({{"weight read", bytes / bw}, {"matmul", engine_time(d, p, s)}, {"dequant", dq}}, waves);
  }
  if (c.split_k > 1) {
    // Partial sums: fp32 tiles written by each slice and reduced (GPU: a reduction kernel;
    // NPU: atomic adds into global memory as the vendor kernel does, then a cast).
    const double partial_bytes = double(c.split_k) * double(p.m) * double(p.n) * 4.0;
    b.serial("reduce", (d.atomic_reduce ? 0.0 : d.launch_s) + d.sync_s + 2.0 * partial_bytes / d.llc_bw);
  }
  return b.done();
}

}  // namespace

std::string incore_key(const Candidate& c) { return std::string(to_string(c.strategy)) + (c.tiles ? "+tiles" : ""); }

Prediction predict(const Device& device, const Problem& problem, const Candidate& candidate) {
  require(problem.m > 0 && problem.k > 0 && problem.n > 0 && problem.group_size > 0,
          "predict: M, K, N and g must be positive, got {}x{}x{} g={}", problem.m, problem.k, problem.n,
          problem.group_size);
  require(candidate.tile_n > 0 && candidate.split_k >= 1 && candidate.threads >= 0,
          "predict: tile_n {} and split-K {} must be positive", candidate.tile_n, candidate.split_k);
  return device.kind == DeviceKind::cpu ? predict_cpu(device, problem, candidate)
                                        : predict_accelerator(device, problem, candidate);
}

}  // namespace w4a16::plan
