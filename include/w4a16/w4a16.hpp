// w4a16: weight-only INT4 quantized matrix multiplication (4-bit weights, 16-bit activations).
//
// This is the header to read first. The whole data flow of one linear layer is:
//
//   fp32/fp16/bf16 weight [N, K]  --quantize()-->  QuantizedWeight  --save/load-->  file
//   y[M, N] = x[M, K] * dequant(W)^T (+ bias)      --gemm()-->  y
//
// Vocabulary (same words as the docs and the CLI): M tokens, K reduction (in_features),
// N outputs (out_features); W is stored [N, K] like torch.nn.Linear. A *group* is a run of g
// consecutive weights along K of one output row sharing one scale (and zero); there are
// ceil(K/g) groups per row and the last one may be ragged (shorter than g).
//
// Errors: every entry point validates its input and throws w4a16::Error (with an ErrorCode)
// on bad input; nothing is written to an output that is reported as failed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "w4a16/float16.hpp"

namespace w4a16 {

// ---------------------------------------------------------------------------------------------
// Basic types
// ---------------------------------------------------------------------------------------------

// Element types. fp16/bf16 are carried as raw uint16_t bits (see float16.hpp).
enum class DType : uint8_t { f16, bf16, f32 };

size_t dtype_size(DType dtype);
std::string_view to_string(DType dtype);   // "fp16", "bf16", "fp32"
DType parse_dtype(std::string_view name);  // accepts fp16|f16|float16, bf16|bfloat16, fp32|f32|float32

// How a 4-bit code q in [0, 15] becomes a weight value (s = the group's scale):
//   sym:        w = (q - 8) * s
//   asym:       w = (q - z) * s        z an integer zero per group, z in [0, 16]
//   float_zero: w = (q - 8) * s + zf   zf a float zero per group (torch "tinygemm" convention)
enum class ZeroMode : uint8_t { sym, asym, float_zero };
std::string_view to_string(ZeroMode mode);  // "sym", "asym", "float"
ZeroMode parse_zero_mode(std::string_view name);

enum class ErrorCode : int { invalid_argument = 1, format = 2, io = 3, unsupported = 4, internal = 5 };

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ErrorCode code() const noexcept { return code_; }

 private:
  ErrorCode code_;
};

// A dense row-major matrix that the caller owns: rows x cols elements of dtype, contiguous.
struct MatrixRef {
  const void* data = nullptr;
  DType dtype = DType::f16;
  int64_t rows = 0;
  int64_t cols = 0;
};

struct MutableMatrixRef {
  void* data = nullptr;
  DType dtype = DType::f16;
  int64_t rows = 0;
  int64_t cols = 0;
};

// ---------------------------------------------------------------------------------------------
// QuantizedWeight: the portable logical format of one linear layer
// ---------------------------------------------------------------------------------------------

struct QuantizedLayout {
  int64_t n = 0;           // output features (rows of W)
  int64_t k = 0;           // input features (columns of W, the reduction)
  int64_t group_size = 0;  // g: 32, 64, 128, 256, ... or k for per-channel; any g >= 1 is accepted
  ZeroMode zero_mode = ZeroMode::sym;
  DType scale_dtype = DType::f16;  // dtype of scales and of float zeros

  int64_t groups() const { return (k + group_size - 1) / group_size; }  // ceil(K/g)
  int64_t row_bytes() const { return (k + 1) / 2; }                     // code bytes per row

  // Throws Error(invalid_argument) with the reason unless this layout can exist: N >= 1,
  // 1 <= K <= INT32_MAX, 1 <= g <= K, known zero mode and scale dtype, and N*ceil(K/2) bytes of
  // codes and N*ceil(K/g) values of scales within int64. Every layout w4a16 builds (importers,
  // convert, the file reader, QuantizedWeight) passes here before groups() is used.
  void validate() const;
};

// An optional bias [N], kept in its own dtype so imported values stay bit-exact.
struct Bias {
  DType dtype = DType::f32;
  std::vector<std::byte> data;  // [N] elements of dtype, or empty for "no bias"
};

class QuantizedWeight {
 public:
  // Validates everything and throws Error(invalid_argument) with the reason otherwise.
  //   codes  [N, ceil(K/2)] bytes: code of (n, k) is the low nibble of byte (n, k/2) for even k
  //          and the high nibble for odd k; an odd K leaves the last high nibble as padding
  //          (written 0, ignored on read).
  //   scales [N, ceil(K/g)] of scale_dtype, finite.
  //   zeros  sym: empty; asym: [N, ceil(K/g)] uint8 in [0, 16]; float: [N, ceil(K/g)] of
  //          scale_dtype, finite.
  //   perm   empty, or [K] int32, a permutation of 0..K-1 (act-order): stored column k of W
  //          multiplies input feature perm[k], i.e. y[m, n] = sum_k x[m, perm[k]] * w(n, k).
  QuantizedWeight(QuantizedLayout layout, std::vector<uint8_t> codes, std::vector<std::byte> scales,
                  std::vector<std::byte> zeros = {}, std::vector<int32_t> perm = {}, Bias bias = {});

  const QuantizedLayout& layout() const { return layout_; }
  int64_t n() const { return layout_.n; }
  int64_t k() const { return layout_.k; }
  int64_t group_size() const { return layout_.group_size; }
  int64_t groups() const { return layout_.groups(); }
  ZeroMode zero_mode() const { return layout_.zero_mode; }
  DType scale_dtype() const { return layout_.scale_dtype; }

  const std::vector<uint8_t>& codes() const { return codes_; }
  const std::vector<std::byte>& scales() const { return scales_; }
  const std::vector<std::byte>& zeros() const { return zeros_; }
  const std::vector<int32_t>& perm() const { return perm_; }
  const Bias& bias() const { return bias_; }
  bool has_perm() const { return !perm_.empty(); }
  bool has_bias() const { return !bias_.data.empty(); }

  // Element access (no bounds checks beyond debug asserts; indices come from the layout).
  uint8_t code(int64_t row, int64_t col) const {
    const uint8_t byte = codes_[size_t(row * layout_.row_bytes() + col / 2)];
    return (col & 1) ? uint8_t(byte >> 4) : uint8_t(byte & 0x0F);
  }
  float scale(int64_t row, int64_t group) const;
  int zero_int(int64_t row, int64_t group) const;      // asym: z; sym: 8; float: 8
  float zero_float(int64_t row, int64_t group) const;  // float: zf; otherwise 0
  float bias_value(int64_t row) const;                 // 0 without bias

  // Dequantized value of stored element (row, col), in fp32. Exact: (q - z) * s needs at most
  // 5 + 11 significant bits for fp16 scales (8 + 5 for bf16), and fp32 has 24; only the
  // float-zero mode's final addition rounds once.
  float value(int64_t row, int64_t col) const;

 private:
  QuantizedLayout layout_;
  std::vector<uint8_t> codes_;
  std::vector<std::byte> scales_;
  std::vector<std::byte> zeros_;
  std::vector<int32_t> perm_;
  Bias bias_;
};

// W as fp32 [N, K] in the *original* input-feature order (perm undone), so that
// y = x * dequantize(W)^T holds for every layer.
std::vector<float> dequantize(const QuantizedWeight& w);

// ---------------------------------------------------------------------------------------------
// Quantization (round-to-nearest, RTN)
// ---------------------------------------------------------------------------------------------

struct QuantizeOptions {
  int64_t group_size = 128;  // 0 means per-channel (g = K)
  ZeroMode zero_mode = ZeroMode::sym;
  std::optional<DType> scale_dtype;  // default: the dtype of the source weight
};

// Quantizes w [N, K] (fp32, fp16 or bf16) group by group; the exact rule and the error bound it
// guarantees are in docs/formats.md ("RTN quantizer"). NaN/Inf weights are rejected with an
// error naming the row and column. `bias`, when given, is [N] (rows = 1 or cols = 1).
QuantizedWeight quantize(const MatrixRef& w, const QuantizeOptions& options = {},
                         const std::optional<MatrixRef>& bias = std::nullopt);

// ---------------------------------------------------------------------------------------------
// Matrix multiplication
// ---------------------------------------------------------------------------------------------

// The oracle: y[M, N] = x[M, K] * dequant(W)^T (+ bias), x fp16 or bf16, y fp16, bf16 or fp32 (for
// partial sums added up before one rounding: tensor parallelism's row-parallel layers), products
// accumulated in double and rounded once to y's dtype (nearest-even, overflow to
// +-inf, NaN in a row of x propagates to that row of y).
void reference_gemm(const MatrixRef& x, const QuantizedWeight& w, const MutableMatrixRef& y);

// ---------------------------------------------------------------------------------------------
// Fast kernels: pack once, gemm many times
// ---------------------------------------------------------------------------------------------

// fused: dequantize in registers, never write 16-bit weights (the default for a quantized weight).
// decoupled: the paper's pipeline — dequantize a panel of W to 16-bit into a workspace, then run
//            the dense kernel on it (kept to measure what that round trip costs).
// dense: 16-bit weights (for a quantized weight: dequantized once, lazily, on first use) — the
//        FP16/BF16 baseline. `automatic` never picks it for a quantized weight (it would hold a
//        16-bit copy of W).
// pipelined: the decoupled pipeline with roles, as on the Ascend 910B: vector-role threads
//        dequantize panels into a ring in memory, matrix-role threads multiply them (needs >= 2
//        threads; with the pool busy it runs as `decoupled`).
enum class Strategy : uint8_t { automatic, fused, decoupled, dense, pipelined };
// data_parallel: threads own disjoint column tiles; split_k: S threads share a tile, each reduces
// a slice of the groups, partial sums reduced in a fixed order (bitwise deterministic for fixed S).
enum class Partition : uint8_t { automatic, data_parallel, split_k };
std::string_view to_string(Strategy s);   // "auto", "fused", "decoupled", "dense", "pipelined"
std::string_view to_string(Partition p);  // "auto", "dp", "splitk"
Strategy parse_strategy(std::string_view name);
Partition parse_partition(std::string_view name);
// How the CPU kernels read x: widened to fp32 rows, or the bf16 rows themselves (the kernels built
// on a bf16 pair-dot instruction such as vdpbf16ps).
enum class XFormat : uint8_t { f32, bf16 };
std::string_view to_string(XFormat x);  // "fp32", "bf16"

// The CPU kernel registry (src/cpu/kernels.hpp). A plan holds pointers to its entries: handles
// that name what runs; their fields (block shape, ISA, x format) are the library's business.
namespace cpu {
struct KernelTable;
struct Q4Entry;
struct DenseEntry;
struct DequantEntry;
}  // namespace cpu

// Limits on what a call may ask for, checked where the numbers enter (the planner, the C API,
// Python, the CLI) so that a bad number is Error(invalid_argument), never an allocation the size
// of the number or an overflow: threads, vector threads and split-K factors at most kMaxThreads;
// M, N >= 1, 1 <= K <= INT32_MAX, and each of M*K, M*N and N*K at most kMaxGemmElements (2^48:
// 512 TiB of 16-bit values, and small enough that every size the planner derives fits int64).
inline constexpr int kMaxThreads = 1024;
inline constexpr int64_t kMaxGemmElements = int64_t(1) << 48;

// Runs a parallel call's parts on the caller's own threads instead of w4a16's pool, so that one
// pool serves the whole process (PyTorch's intra-op threads, an OpenMP or TBB runtime, a server's
// workers): two pools whose idle threads spin on the same cores take the cores from each other
// (docs/threads.md). run(ctx, parts, part, part_ctx) must call part(part_ctx, i) exactly once for
// every i in [0, parts), on any of its threads, in any order, together or one after another, and
// return when all have returned; part() never throws and never calls run() again. A plan's
// threads are its number of parts: with GemmOptions::threads = 0 the planner chooses up to
// `threads` (the runner's own thread count; 0 = the CPUs this process may run on), and a call too
// small to pay for a fork/join still runs on the calling thread alone. A pipelined plan, whose two
// roles must run at the same time, runs as decoupled under a runner.
struct ParallelRunner {
  void (*run)(void* ctx, int parts, void (*part)(void* part_ctx, int index), void* part_ctx) = nullptr;
  void* ctx = nullptr;
  int threads = 0;
};

// Constraints on the plan. Everything left `automatic` / 0 is chosen by the planner: it enumerates
// the candidate plans that meet the constraints, predicts each with the cost model of this CPU
// (docs/model.md) and takes the fastest.
struct GemmOptions {
  Strategy strategy = Strategy::automatic;
  Partition partition = Partition::automatic;
  int split_k = 0;         // S for split_k (0 = the planner's choice); clamped to the groups
  int threads = 0;         // 0: the planner's choice, 1 to the CPUs this process may run on (affinity / cgroup
                           // quota); N > 0: N threads (fewer when there are fewer work items)
  int vector_threads = 0;  // pipelined: threads in the dequantizing role (0 = the planner's choice)
  int64_t decoupled_panel_bytes = 0;  // decoupled workspace per thread; 0 = 1 MiB (L2-resident)
  ParallelRunner runner;              // where the parts run: unset = w4a16's pool (not part of the plan)
};

// One term of a plan's predicted time (the cost model's breakdown).
struct PlanTerm {
  std::string name;  // "weight read", "dequant + matmul", "reduce", "launch", ...
  double seconds = 0;
  bool overlapped = false;  // overlaps with the plan's other overlapped terms: only their max counts
};

// What gemm() runs for one shape: made by plan_gemm() (the planner's choice) or taken from
// plan_candidates(), executed by gemm(x, w, y, plan). A plan is a value: keep it and reuse it for
// every call of its shape.
struct GemmPlan {
  explicit GemmPlan() = default;  // explicit: `gemm(x, w, y, {})` means default options, not an empty plan

  // The call it was made for (gemm() with a plan checks them): M, K, N and the activation dtype.
  int64_t m = 0, k = 0, n = 0;
  DType act = DType::bf16;

  Strategy strategy = Strategy::fused;
  Partition partition = Partition::data_parallel;
  int split_k = 1;
  int threads = 1;         // threads in all (pipelined: both roles)
  int vector_threads = 0;  // pipelined: threads in the dequantizing role
  // What runs (CPU plans): the kernel table the plan was made for and its registry entries, as
  // handles (nullptr where the strategy has no such stage). gemm(x, w, y, plan) runs exactly these.
  const cpu::KernelTable* table = nullptr;
  const cpu::Q4Entry* q4 = nullptr;            // fused
  const cpu::DequantEntry* dequant = nullptr;  // decoupled / pipelined stage 1
  const cpu::DenseEntry* dense = nullptr;      // dense / decoupled / pipelined
  XFormat x_format = XFormat::f32;             // how the kernels read x (the entries' own format)
  int64_t row_panels = 1;                      // passes over the weight, each with a share of the rows of x
  int64_t panel_bytes = 0;  // decoupled: panel budget per thread (GemmOptions::decoupled_panel_bytes)
  // For people, printed from the above when the plan is made (never read back): the table's name
  // ("amx", "avx512bf16", "avx512", "avx2", "scalar"; a modeled device's name) and the entries' names,
  // e.g. "dequant__avx512 + dense_bf16_f32_6x64__avx512".
  std::string isa;
  std::string kernel;
  int64_t workspace_bytes = 0;  // prepared x, split-K partials, decoupled panels / pipeline ring

  double predicted_s = 0;           // the cost model's time for the call
  std::string bound;                // its largest term
  std::vector<PlanTerm> breakdown;  // every term
  bool chosen = false;              // in plan_candidates(): the one the planner picks
  std::string notes;                // clamps and decisions, human-readable
};

// A weight in the CPU kernels' private layout (see src/cpu/kernels.hpp). Immutable after pack(),
// shareable across threads; cheap to move.
class PackedWeight {
 public:
  PackedWeight();
  PackedWeight(PackedWeight&&) noexcept;
  PackedWeight& operator=(PackedWeight&&) noexcept;
  ~PackedWeight();

  int64_t n() const;
  int64_t k() const;
  bool is_quantized() const;  // false for pack_dense() weights
  const QuantizedLayout& layout() const;

  // Every entry point that reads a weight goes through impl(), which throws
  // Error(invalid_argument) for an empty (default-constructed or moved-from) PackedWeight.
  struct Impl;
  const Impl& impl() const;
  explicit PackedWeight(std::unique_ptr<Impl> impl);

 private:
  std::unique_ptr<Impl> impl_;
};

PackedWeight pack(const QuantizedWeight& w);
// A dense fp16/bf16 weight [N, K] (+ optional bias [N]) packed for the dense kernels: the FP16
// baseline for weights that were never quantized. Only Strategy::dense (or automatic) runs it.
PackedWeight pack_dense(const MatrixRef& w, const std::optional<MatrixRef>& bias = std::nullopt);
// The QuantizedWeight a packed weight was made from, bit for bit (tests, debugging).
QuantizedWeight unpack(const PackedWeight& w);

// y = x * dequant(W)^T (+ bias). Reentrant: concurrent calls with different outputs are safe
// (a call that finds the thread pool busy runs on its own thread). After the first call for a
// shape, no heap allocation happens on the hot path (workspaces are cached per thread; the
// planner's choice is cached per shape, options and kernel table).
void gemm(const MatrixRef& x, const PackedWeight& w, const MutableMatrixRef& y, const GemmOptions& options = {});
// Runs `plan` (from plan_gemm / plan_candidates for this weight's shape, M = x.rows and x's dtype).
// Throws Error(invalid_argument) when the plan was made for another shape or dtype, or names
// kernels the active kernel table does not have (e.g. after set_isa_cap()).
void gemm(const MatrixRef& x, const PackedWeight& w, const MutableMatrixRef& y, const GemmPlan& plan);
// The planner's choice for M rows of dtype `act` under `options` (what gemm(x, w, y, options) runs).
GemmPlan plan_gemm(int64_t m, const PackedWeight& w, DType act, const GemmOptions& options = {});
// Every candidate plan that meets `options`, predicted and sorted by predicted time (fastest
// first, the planner's choice marked `chosen`). For a quantized weight the dense baseline is
// listed too (dequantize once; never chosen).
std::vector<GemmPlan> plan_candidates(int64_t m, const PackedWeight& w, DType act, const GemmOptions& options = {});

// Planning without a weight: the candidates for a layer of this layout (as pack() would lay it
// out) on `device`: "cpu" (this machine: runnable plans) or a modeled device ("h100", "h200",
// "a100", "ascend910b2", "ascend910b3", "ascend910b4": predictions of the cost model only, with
// the device's cores as threads and its name as isa). docs/model.md has the formulas.
std::vector<GemmPlan> plan_candidates(int64_t m, const QuantizedLayout& layout, DType act,
                                      const GemmOptions& options = {}, std::string_view device = "cpu");
// The devices plan_candidates() knows, with a one-line description of each (for "cpu": the CPU,
// and whether its figures come from `w4a16 calibrate` or built-in defaults).
std::vector<std::pair<std::string, std::string>> plan_devices();

// The micro-kernels of the active kernel table (and the lower tables it falls back to), for
// tools that build plans by hand (the bottleneck study's ablations) and for `w4a16 info`.
struct KernelInfo {
  std::string name;              // e.g. "q4_f32_12x32__avx512"
  std::string role;              // "fused", "dense", "dequant", or the study's "widen" / "stream" ablations
  std::string x_format;          // "fp32" / "bf16" (fused and dense); "" otherwise
  std::string weight;            // dense: "fp16" / "bf16"; "" otherwise
  int64_t m_min = 0, m_max = 0;  // rows of x it serves (m_max = INT64_MAX: unbounded); 0 for stage kernels
};
std::vector<KernelInfo> list_kernels();

// Convenience: packs on every call (use pack() + gemm() for repeated calls).
void gemm(const MatrixRef& x, const QuantizedWeight& w, const MutableMatrixRef& y, const GemmOptions& options = {});

// What this CPU and OS can run (cpuid + xgetbv), for tools and reports.
struct CpuInfo {
  std::string vendor;         // "AuthenticAMD", "GenuineIntel", ...
  std::string brand;          // the processor brand string (may be empty under some hypervisors)
  int available_threads = 1;  // CPUs this process may run on (affinity mask / cgroup quota)
  // Feature bits in cpuid order of interest ("avx2", "fma", ..., "avx512_fp16"), the usable groups
  // the kernels need ("usable avx2+fma+f16c", "usable avx512", "usable avx512bf16"), usable meaning
  // set in cpuid *and* enabled by the OS, then the AMX bits ("amx_tile", "amx_bf16", "amx_int8",
  // "os saves tiles").
  std::vector<std::pair<std::string, bool>> features;
  // The CPU's matrix unit: "usable" when the AMX kernels are offered (cpuid, XCR0 and the OS's
  // tile permission), else why they are not.
  std::string amx;
};
CpuInfo cpu_info();

// The instruction set the kernels use. W4A16_ISA=scalar|avx2|avx512|avx512bf16|amx in the environment
// (read once) or set_isa_cap() caps it below what this CPU supports (avx512 = AVX-512 without the
// BF16 dot instructions); a cap above the CPU's level is ignored. Returns the active level name.
std::string_view active_isa();
void set_isa_cap(std::string_view isa);     // "" resets to the environment / CPU default
std::vector<std::string> supported_isas();  // levels this CPU can run, lowest first

// How w4a16's worker threads wait between calls, like OMP_WAIT_POLICY: after each call they spin
// for `microseconds` (a call that comes within that time starts at once, ~1 us, instead of
// waking sleeping threads, tens of us), then sleep. 0 is passive: the workers sleep at once and
// leave the cores to a caller that does its own work between calls (a Python or PyTorch model);
// the planner then charges each parallel call the wake-up (calibrated as `wake_us`), so small
// calls run on the caller's thread alone. Default 300, or W4A16_WAIT_POLICY in the environment:
// "active" (300), "passive" (0) or a number of microseconds, read at the first call. Clamped to
// [0, 100000]; any thread may set it at any time. docs/threads.md says how w4a16's threads and
// the caller's (torch.set_num_threads, OpenMP, BLAS) share the cores.
void set_worker_spin_us(int microseconds);
int worker_spin_us();

// ---------------------------------------------------------------------------------------------
// CUDA backend (docs/cuda.md)
// ---------------------------------------------------------------------------------------------
//
// Built when the CUDA toolkit is found at configure time (CMake option W4A16_CUDA). Without it,
// or without a usable device, the functions below throw Error(unsupported) saying which; only
// cuda_devices() always answers. The gemm takes *device* pointers and runs asynchronously on the
// caller's stream; errors in its arguments are thrown before anything is launched.

// The visible CUDA devices, one line each ("NVIDIA H200 (sm_90, 132 SMs, 139.8 GiB)"), and why
// the list is empty when it is.
struct CudaDevices {
  bool built = false;  // the library has the CUDA backend
  std::vector<std::string> devices;
  std::string note;
};
CudaDevices cuda_devices();

// A quantized weight resident on one CUDA device, in the CUDA kernels' layout for one activation
// dtype (the mma multiplies 16-bit operands of one type). Immutable; cheap to move.
class CudaWeight {
 public:
  CudaWeight();
  CudaWeight(CudaWeight&&) noexcept;
  CudaWeight& operator=(CudaWeight&&) noexcept;
  ~CudaWeight();

  int64_t n() const;
  int64_t k() const;
  DType act() const;
  int device() const;
  int64_t device_bytes() const;  // packed codes, scales, zeros, perm, bias (+ the dense copy once made)

  struct Impl;
  Impl& impl() const;  // throws Error(invalid_argument) when empty
  explicit CudaWeight(std::unique_ptr<Impl> impl);

 private:
  std::unique_ptr<Impl> impl_;
};

// Packs `w` for activations of dtype `act` (fp16 or bf16) and uploads it to `device` (-1: the
// current device). Scales and float zeros are rounded to `act`. Throws Error(unsupported) when
// the group size is neither a multiple of 16 nor per-channel (use the CPU backend for those), or
// when no CUDA device is usable; Error(invalid_argument) for a device index below -1 or past the
// last device (CudaWorkspace::reserve alike).
CudaWeight to_cuda(const QuantizedWeight& w, DType act, int device = -1);

// strategy: automatic / fused: the fused kernel; decoupled: a dequantization kernel writes the
//   16-bit W into the workspace, then cuBLAS multiplies (the paper's pipeline, for comparison);
//   dense: cuBLAS on a 16-bit copy of W made on the first dense call and kept with the weight
//   (the FP16/BF16 baseline). pipelined is CPU-only.
// partition (fused only): data_parallel, split_k (S K-slices, fp32 partials reduced in slice order:
//   bitwise deterministic), or automatic (split-K when the output tiles would leave SMs idle).
struct CudaGemmOptions {
  Strategy strategy = Strategy::automatic;
  Partition partition = Partition::automatic;
  int split_k = 0;              // S (0 = chosen); clamped to the 16-k slabs of K
  bool atomic_split_k = false;  // sum partials with atomicAdd: no S-sized workspace, not deterministic
};

// What a CUDA gemm runs for one shape.
struct CudaPlan {
  Strategy strategy = Strategy::fused;
  Partition partition = Partition::data_parallel;
  int split_k = 1;
  bool atomic_split_k = false;
  int tile_rows = 16;           // rows of x per thread block (16, 32 or 64)
  int64_t blocks = 0;           // thread blocks of the fused kernel (m tiles x 64-column slabs x S)
  int64_t workspace_bytes = 0;  // device bytes the call needs in its CudaWorkspace
  std::string notes;            // the decisions, human-readable
};

// Device memory (and a cuBLAS handle) that the CUDA gemm calls on one stream reuse. It grows on the
// first call that needs more (at least doubling; the smaller buffers it replaces are kept until it
// is destroyed, so queued work and CUDA graphs captured earlier stay valid); later calls of that
// size allocate nothing. Growing cannot happen inside a graph capture: reserve() first. Use one per
// stream: calls sharing a workspace must not overlap.
class CudaWorkspace {
 public:
  CudaWorkspace();
  CudaWorkspace(CudaWorkspace&&) noexcept;
  CudaWorkspace& operator=(CudaWorkspace&&) noexcept;
  ~CudaWorkspace();
  int64_t bytes() const;  // allocated so far
  void reserve(int64_t bytes, int device = -1);

  struct Impl;
  Impl& impl();

 private:
  std::unique_ptr<Impl> impl_;
};

// y_dtype: the output's dtype (default: x's); cuBLAS-based strategies need an fp32 buffer for the
// other 16-bit one.
CudaPlan plan_cuda_gemm(int64_t m, const CudaWeight& w, const CudaGemmOptions& options = {},
                        std::optional<DType> y_dtype = std::nullopt);

// y[M, N] = x[M, K] * dequant(W)^T (+ bias) on w's device: x of w.act(), y fp16, bf16 or fp32,
// both device pointers, row-major and contiguous. `stream` is a cudaStream_t (nullptr: the legacy
// default stream). Returns once the work is queued; synchronize the stream before reading y.
void gemm(const MatrixRef& x, const CudaWeight& w, const MutableMatrixRef& y, CudaWorkspace& workspace,
          void* stream = nullptr, const CudaGemmOptions& options = {});

// Convenience for tools: x and y in host memory, copied to and from w's device around one call on
// a private stream, which it waits for. Allocates on every call; loops use the gemm above.
void cuda_gemm_from_host(const MatrixRef& x, const CudaWeight& w, const MutableMatrixRef& y,
                         const CudaGemmOptions& options = {});

// ---------------------------------------------------------------------------------------------
// Files (safetensors; the on-disk layout is specified in docs/formats.md)
// ---------------------------------------------------------------------------------------------

// "model.layers.0.mlp.down_proj.weight" -> "model.layers.0.mlp.down_proj"; a module name is
// returned unchanged. Everywhere a layer name is accepted, both forms work.
std::string module_name(std::string_view tensor_or_module);

// Loads one quantized layer (and its `<module>.bias`, when present) from a w4a16 safetensors file.
QuantizedWeight load_quantized(const std::filesystem::path& path, std::string_view layer);

// Lists the quantized layers (module names) of a w4a16 safetensors file, in file order.
std::vector<std::string> list_quantized(const std::filesystem::path& path);

// Writes layers to a new safetensors file (replacing it). Layer names may be given in either form.
void save_quantized(const std::filesystem::path& path,
                    const std::vector<std::pair<std::string, const QuantizedWeight*>>& layers);

// ---------------------------------------------------------------------------------------------
// Converting checkpoints (docs/convert.md)
// ---------------------------------------------------------------------------------------------

struct ConvertReport {
  std::string source_format;                      // "gptq", "awq", "compressed-tensors" or "gguf"
  int64_t quantized_layers = 0;                   // imported into w4a16 layers
  int64_t copied_tensors = 0;                     // other tensors, bytes unchanged
  int64_t dequantized_tensors = 0;                // GGUF Q8_0 (and 1-D Q4_*) tensors written as F32 by ggml's formula
  int64_t raw_tensors = 0;                        // GGUF block types w4a16 does not decode, kept as U8 bytes
  std::map<std::string, int64_t> layers_by_kind;  // e.g. {"Q4_1": 210}
  std::vector<std::string> warnings;              // values read a documented but questionable way
};
// (index from 1, count, tensor or module name, what is done to it)
using ConvertProgress = std::function<void(int64_t, int64_t, std::string_view, std::string_view)>;

// Converts a quantized checkpoint into one w4a16 safetensors file: a Hugging Face directory
// (config.json's quantization_config: GPTQ v1/v2 with act-order, AWQ GEMM, compressed-tensors
// pack-quantized; one model.safetensors or shards listed by model.safetensors.index.json) or a
// GGUF file (Q4_0, Q4_1, Q4_K weights). Every quantized linear layer is imported (bit-exact, except
// GGUF Q4_1/Q4_K: see docs/formats.md), every other tensor copied through, the model's config
// (config.json, or the GGUF metadata as JSON) stored in __metadata__. One layer is held in memory
// at a time. Refuses, naming the variant and the tensor, what it cannot convert exactly.
ConvertReport convert(const std::filesystem::path& src, const std::filesystem::path& dst,
                      const ConvertProgress& progress = {});

// ---------------------------------------------------------------------------------------------
// Version
// ---------------------------------------------------------------------------------------------

inline constexpr int kVersionMajor = 0;
inline constexpr int kVersionMinor = 1;
inline constexpr int kVersionPatch = 0;
std::string_view version();  // "0.1.0"

}  // namespace w4a16
