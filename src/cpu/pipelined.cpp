// The pipelined decoupled strategy (pipelined.hpp): vector-role threads dequantize, matrix-role
// threads multiply, and the two exchange 16-bit panels through rings of slots in memory.
//
// Work. Items are (tile t, slice s), item = t * S + s (tile-major, as in the per-thread decoupled
// strategy); slice s covers groups [G*s/S, G*(s+1)/S) (empty when S > G: its partial is zeroed).
// A slice whose dense panel exceeds a slot is cut into sub-panels of whole groups, greedily from
// its first group: each sub-panel is one *task*, the unit that travels through a slot. The slot
// size is min(slot_bytes, the largest slice's panel), raised to one whole group, in whole chunks;
// it depends on the weight and the configuration only, so the tasks, and with them every partial
// sum, are the same whatever the thread counts, ring depth or timing.
//
// Assignment (static). Matrix thread j owns the contiguous run of items
// [items*j/MT, items*(j+1)/MT) (a contiguous stretch of the packed weight, as the per-thread
// strategy deals them) and consumes its tasks in item order, sub-panels in K order: its task
// stream q = 0, 1, 2, ... The dense kernel overwrites its output, so a slice's first sub-panel
// writes the partial directly and each later one goes to a scratch tile that is then added in
// (a fixed order: ((p0 + p1) + p2) + ...). Task q of ring j is produced by vector thread
// (q * MT + j) % VT, and every vector thread produces its tasks in increasing (q, j) order.
//
// Memory (the calling thread's scratch, grown to the largest shape seen, never freed):
//   ring    [MT][R][slot_chunks * 8 * 64] uint16   R = ring_slots; slot = dense panel of whole
//           groups in the dense layout of dense_dtype (kernels.hpp), one ring per matrix thread
//   flags   [MT][R] one 64-byte line each (no false sharing between slots)
//   sub_out [MT][m][64] fp32   a later sub-panel's product before it is added to the partial
//   tasks   [total] ring-major, ring_begin [MT + 1]
//
// Flag protocol. Task q of ring j uses slot q % R in lap L = q / R. A slot's flag counts its
// history: 2L = free for lap L (lap L-1 consumed, or the initial 0), 2L + 1 = lap L's panel
// written. The producer waits for 2L (acquire: the consumer's reads of lap L-1 are done), writes
// the panel, stores 2L + 1 (release); the consumer waits for 2L + 1 (acquire: the panel is
// visible), runs the dense kernel, stores 2L + 2 (release). Each transition has one writer, so a
// waiter sees exactly the value it waits for. The flags are reset before the roles start (the
// pool's job publication orders that reset before every role).
//
// Why it cannot deadlock (any R >= 1, any VT, MT). Order tasks by (q, j). A consumer waits on
// its task q, whose producer is at or before (q, j) in that order. A producer blocked on (q, j)
// waits for consumer j to pass task q - R, and consumer j waits at some task c <= q - R < q,
// whose producer is at or before (c, j) < (q, j). Every wait thus points to a strictly earlier
// task, so the earliest waiting task's dependency is already satisfied: some role always moves.
//
// Errors. A role that throws sets `abort`, which every wait loop polls; the others return at
// their next wait, and the first exception is rethrown once all roles have stopped.
#include "cpu/pipelined.hpp"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>

#include "common/aligned_buffer.hpp"
#include "common/check.hpp"
#include "common/thread_scratch.hpp"
#include "cpu/thread_pool.hpp"

namespace w4a16::cpu {

namespace {

constexpr int64_t kChunkElems = kChunkK * kTileN;  // 16-bit values of one chunk of a panel (either layout)
constexpr int64_t kChunkBytes = kChunkElems * 2;
constexpr int64_t kDefaultSlotBytes = int64_t(256) << 10;
// Polls with a pause before a wait starts yielding: tens of microseconds (a pause takes 10 to 140
// cycles depending on the core), about one dense kernel call on a small panel. Beyond that the
// partner is probably descheduled (more roles than free CPUs) and spinning would steal its time.
constexpr int kPollsBeforeYield = 2048;

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

struct alignas(64) SlotFlag {
  std::atomic<uint64_t> state{0};
};

// One sub-panel of one item: groups [g0, g1) of tile `tile`, for the partial of `item`.
struct Task {
  int64_t item = 0;
  int64_t tile = 0;
  int64_t g0 = 0, g1 = 0;
  bool first = false;  // the item's first sub-panel: the dense kernel writes the partial itself
};

struct PipelineWorkspace {
  AlignedBuffer<uint16_t> ring;       // [MT][R][slot_chunks * 512]
  std::unique_ptr<SlotFlag[]> flags;  // [MT][R]
  size_t flag_count = 0;
  AlignedBuffer<float> sub_out;       // [MT][m][64]
  AlignedBuffer<Task> tasks;          // [total tasks], ring-major
  AlignedBuffer<int64_t> ring_begin;  // [MT + 1]
};
struct PipelineWorkspaceTag;

std::pair<int64_t, int64_t> slice_groups(int64_t groups, int split, int64_t s) {
  return {groups * s / split, groups * (s + 1) / split};
}

// Chunks of one slot: see the top of the file.
int64_t slot_chunks(const PackedWeight::Impl& w, const PipelineConfig& config) {
  const GroupGeometry& geom = w.geom;
  int64_t largest = 0;
  for (int64_t s = 0; s < config.split_k; ++s) {
    const auto [g0, g1] = slice_groups(geom.groups, config.split_k, s);
    if (g0 < g1) largest = std::max(largest, geom.chunk_end(g1 - 1) - geom.chunk_begin(g0));
  }
  const int64_t wanted = (config.slot_bytes > 0 ? config.slot_bytes : kDefaultSlotBytes) / kChunkBytes;
  return std::max(std::min(wanted, largest), geom.chunks_per_group);
}

// The fields that size the work and the ring (the planner sizes a plan before it picks kernels).
void validate_geometry(const PackedWeight::Impl& w, const PipelineConfig& config) {
  require(w.quantized, "pipelined: needs a quantized weight (this one was packed dense)");
  require(config.vector_threads >= 1 && config.matrix_threads >= 1,
          "pipelined: needs at least one vector and one matrix thread, got {} + {}", config.vector_threads,
          config.matrix_threads);
  require(config.split_k >= 1, "pipelined: split-K factor must be >= 1, got {}", config.split_k);
  require(config.ring_slots >= 1, "pipelined: ring_slots must be >= 1, got {}", config.ring_slots);
  require(config.slot_bytes >= 0, "pipelined: slot_bytes must be >= 0, got {}", config.slot_bytes);
}

void validate(const PackedWeight::Impl& w, const PipelineConfig& config) {
  validate_geometry(w, config);
  require(config.dequant != nullptr && config.dense != nullptr, "pipelined: dequant and dense kernels must be set");
  require(config.dense_dtype == DType::f16 || config.dense_dtype == DType::bf16,
          "pipelined: the panel dtype must be fp16 or bf16, got {}", to_string(config.dense_dtype));
}

// Waits until `flag` holds `want`; false when another role aborted.
bool wait_for(const std::atomic<uint64_t>& flag, uint64_t want, const std::atomic<bool>& abort) {
  for (int polls = 0;;) {
    if (flag.load(std::memory_order_acquire) == want) return true;
    if (abort.load(std::memory_order_relaxed)) return false;
    if (polls < kPollsBeforeYield) {
      cpu_relax();
      ++polls;
    } else {
      std::this_thread::yield();
    }
  }
}

// Fills the task table of every ring (ws.tasks, ws.ring_begin); see the top of the file.
void make_tasks(const PackedWeight::Impl& w, const PipelineConfig& config, int64_t chunks_per_slot,
                PipelineWorkspace& ws) {
  const GroupGeometry& geom = w.geom;
  const int split = config.split_k, rings = config.matrix_threads;
  const int64_t items = w.tiles * split;
  // Sub-panels per slice (the same for every tile): counted first so that the table is sized once.
  auto for_each_subpanel = [&](int64_t s, auto&& emit) {
    const auto [g0, g1] = slice_groups(geom.groups, split, s);
    for (int64_t a = g0; a < g1;) {
      int64_t b = a + 1;
      while (b < g1 && geom.chunk_end(b) - geom.chunk_begin(a) <= chunks_per_slot) ++b;
      emit(a, b);
      a = b;
    }
  };
  int64_t total = 0;
  for (int64_t s = 0; s < split; ++s) for_each_subpanel(s, [&](int64_t, int64_t) { total += w.tiles; });
  ws.tasks.reserve_discard(size_t(std::max<int64_t>(total, 1)));
  ws.ring_begin.reserve_discard(size_t(rings + 1));
  int64_t next = 0;
  for (int j = 0; j < rings; ++j) {
    ws.ring_begin[size_t(j)] = next;
    for (int64_t item = items * j / rings; item < items * (j + 1) / rings; ++item) {
      bool first = true;
      for_each_subpanel(item % split, [&](int64_t a, int64_t b) {
        ws.tasks[size_t(next++)] = Task{item, item / split, a, b, first};
        first = false;
      });
    }
  }
  ws.ring_begin[size_t(rings)] = next;
}

}  // namespace

int64_t pipelined_workspace_bytes(const PackedWeight::Impl& w, const PipelineConfig& config) {
  validate_geometry(w, config);
  const int64_t slots = int64_t(config.matrix_threads) * config.ring_slots;
  return slots * (slot_chunks(w, config) * kChunkBytes + int64_t(sizeof(SlotFlag)));
}

namespace {

// One call's ring, prepared in the calling thread's workspace (allocates only when the shape grows).
struct Ring {
  const Task* tasks = nullptr;  // per matrix thread j: tasks [ring_begin[j], ring_begin[j + 1])
  const int64_t* ring_begin = nullptr;
  int64_t longest = 0;        // the most tasks one matrix thread has
  int64_t slot_elems = 0;     // 16-bit elements of one slot
  uint16_t* slots = nullptr;  // [matrix_threads][ring_slots][slot_elems]
  SlotFlag* flags = nullptr;  // [matrix_threads][ring_slots]
  float* sub_out = nullptr;   // [matrix_threads][m][64]
};

Ring prepare_ring(const PackedWeight::Impl& w, const PipelineConfig& config, int64_t m) {
  const int matrix_threads = config.matrix_threads;
  const int64_t chunks_per_slot = slot_chunks(w, config);
  const size_t slots = size_t(matrix_threads) * size_t(config.ring_slots);
  auto& ws = thread_scratch<PipelineWorkspace, PipelineWorkspaceTag>();
  make_tasks(w, config, chunks_per_slot, ws);
  Ring r;
  r.slot_elems = chunks_per_slot * kChunkElems;
  ws.ring.reserve_discard(slots * size_t(r.slot_elems));
  ws.sub_out.reserve_discard(size_t(matrix_threads * m * kTileN));
  if (ws.flag_count < slots) {
    ws.flags = std::make_unique<SlotFlag[]>(slots);
    ws.flag_count = slots;
  }
  for (size_t i = 0; i < slots; ++i) ws.flags[i].state.store(0, std::memory_order_relaxed);
  r.tasks = ws.tasks.data();
  r.ring_begin = ws.ring_begin.data();
  for (int j = 0; j < matrix_threads; ++j) r.longest = std::max(r.longest, r.ring_begin[j + 1] - r.ring_begin[j]);
  r.slots = ws.ring.data();
  r.flags = ws.flags.get();
  r.sub_out = ws.sub_out.data();
  return r;
}

// Vector role v: dequantizes its tasks into their slots, in (q, j) order.
void vector_role(const PackedWeight::Impl& w, const PipelineConfig& config, const Ring& r, int v,
                 const std::atomic<bool>& abort) {
  const int matrix_threads = config.matrix_threads;
  for (int64_t q = 0; q < r.longest; ++q) {
    for (int j = 0; j < matrix_threads; ++j) {
      if (q >= r.ring_begin[j + 1] - r.ring_begin[j] || (q * matrix_threads + j) % config.vector_threads != v) continue;
      const Task& task = r.tasks[r.ring_begin[j] + q];
      const int64_t slot = int64_t(j) * config.ring_slots + q % config.ring_slots;
      const uint64_t lap = uint64_t(q / config.ring_slots);
      if (!wait_for(r.flags[slot].state, 2 * lap, abort)) return;
      config.dequant(w.tile(task.tile), task.g0, task.g1, config.dense_dtype, r.slots + slot * r.slot_elems);
      r.flags[slot].state.store(2 * lap + 1, std::memory_order_release);
    }
  }
}

// Matrix role j: multiplies its tasks in stream order and accumulates each item's sub-panels.
void matrix_role(const PackedWeight::Impl& w, const Activations& x, const PipelineConfig& config, const Ring& r, int j,
                 float* partials, const std::atomic<bool>& abort) {
  const int64_t m = x.m, items = w.tiles * config.split_k;
  const size_t x_elem = config.x_format == XFormat::bf16 ? 2 : 4;
  for (int64_t item = items * j / config.matrix_threads; item < items * (j + 1) / config.matrix_threads; ++item) {
    const auto [g0, g1] = slice_groups(w.geom.groups, config.split_k, item % config.split_k);
    if (g0 == g1) std::memset(partials + item * m * kTileN, 0, size_t(m * kTileN) * sizeof(float));
  }
  float* scratch = r.sub_out + j * m * kTileN;  // [m][64]
  for (int64_t q = 0; q < r.ring_begin[j + 1] - r.ring_begin[j]; ++q) {
    const Task& task = r.tasks[r.ring_begin[j] + q];
    const int64_t slot = int64_t(j) * config.ring_slots + q % config.ring_slots;
    const uint64_t lap = uint64_t(q / config.ring_slots);
    if (!wait_for(r.flags[slot].state, 2 * lap + 1, abort)) return;
    // The slot holds chunks [c0, c1) of the tile from its base; the dense kernel indexes K' from
    // there, so x is offset to the same origin.
    const int64_t c0 = w.geom.chunk_begin(task.g0), c1 = w.geom.chunk_end(task.g1 - 1);
    Activations shifted = x;
    shifted.data = static_cast<const std::byte*>(x.data) + size_t(c0 * kChunkK) * x_elem;
    float* partial = partials + task.item * m * kTileN;  // [m][64]
    float* out = task.first ? partial : scratch;
    config.dense(r.slots + slot * r.slot_elems, shifted, 0, c1 - c0, out);
    r.flags[slot].state.store(2 * lap + 2, std::memory_order_release);
    if (!task.first) {
      for (int64_t i = 0; i < m * kTileN; ++i) partial[i] += scratch[i];
    }
  }
}

}  // namespace

bool run_pipelined(const PackedWeight::Impl& w, const Activations& x, const PipelineConfig& config, float* partials) {
  validate(w, config);
  require(x.m >= 1 && x.data != nullptr && partials != nullptr, "pipelined: needs activations and a partials buffer");
  ThreadPool& pool = ThreadPool::instance();
  const int matrix_threads = config.matrix_threads;
  if (int64_t(config.vector_threads) + matrix_threads > pool.max_threads()) return false;  // before the workspace
  const Ring ring = prepare_ring(w, config, x.m);

  std::atomic<bool> abort{false};
  std::mutex error_mutex;
  std::exception_ptr error;
  // Parts [0, MT) are the matrix roles (part 0 runs on the calling thread), [MT, MT + VT) the vector roles.
  auto role = [&](int part) {
    try {
      if (part < matrix_threads) {
        matrix_role(w, x, config, ring, part, partials, abort);
      } else {
        vector_role(w, config, ring, part - matrix_threads, abort);
      }
    } catch (...) {
      {
        std::lock_guard lock(error_mutex);
        if (!error) error = std::current_exception();
      }
      abort.store(true, std::memory_order_relaxed);
    }
  };
  if (!pool.run_concurrent(config.vector_threads + matrix_threads, role)) return false;
  if (error) std::rethrow_exception(error);
  return true;
}

}  // namespace w4a16::cpu
