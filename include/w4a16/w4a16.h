/* w4a16: weight-only INT4 quantized matrix multiplication, plain C interface (C99 and later, or C++).
 *
 * This header is for foreign-function interfaces (C, Python ctypes/cffi, Rust, ...). It wraps the
 * C++ API of <w4a16/w4a16.hpp>; read that header for the full description of the format.
 *
 * Vocabulary: y[M, N] = x[M, K] * dequant(W)^T, W stored [N, K] row-major like torch.nn.Linear
 * (N = out_features, K = in_features = the reduction). A group is a run of g consecutive weights
 * along K of one output row sharing one scale (and zero); there are ceil(K/g) groups per row.
 *
 * Conventions shared by every function:
 *   - Each returns a w4a16_status; W4A16_OK (0) means success. On failure nothing is written to the
 *     caller's output buffers, an output handle pointer is set to NULL, and w4a16_last_error()
 *     describes what went wrong. No C++ exception ever crosses this interface.
 *   - Every pointer argument is required: NULL gives W4A16_ERROR_INVALID_ARGUMENT
 *     (w4a16_weight_free(NULL) is the one exception, and is a no-op).
 *   - Matrices are dense, contiguous and row-major. fp16 and bf16 elements are raw uint16_t bit
 *     patterns; fp32 elements are float. Sizes are element counts, not bytes.
 *   - Strings are NUL-terminated; paths are passed to the operating system unchanged (UTF-8 on
 *     Linux and macOS).
 *   - A w4a16_weight is immutable once created: functions taking `const w4a16_weight*` may run
 *     concurrently on the same handle from several threads; w4a16_weight_free must not race with
 *     them.
 */
#ifndef W4A16_W4A16_H_
#define W4A16_W4A16_H_

#include <stdint.h>

#define W4A16_VERSION_MAJOR 0
#define W4A16_VERSION_MINOR 1
#define W4A16_VERSION_PATCH 0

#ifdef __cplusplus
extern "C" {
#endif

/* Every enum below has *_MIN_ENUM_ = INT32_MIN and *_MAX_ENUM_ = INT32_MAX members: its size is
 * that of an int32_t on every compiler, and every int32_t value, negative ones included, is a
 * value of the type, so whatever a foreign caller (ctypes, cffi, Rust, a C cast) passes is
 * range-checked as an integer without undefined behavior and refused with
 * W4A16_ERROR_INVALID_ARGUMENT. Neither member is a valid argument. */

/* Result of every call. The error values equal those of w4a16::ErrorCode in the C++ API. */
typedef enum w4a16_status {
  W4A16_OK = 0,
  W4A16_ERROR_INVALID_ARGUMENT = 1, /* bad pointer, size, dtype, shape mismatch, NaN/Inf weight */
  W4A16_ERROR_FORMAT = 2,           /* a file exists but its content is malformed or inconsistent */
  W4A16_ERROR_IO = 3,               /* a file cannot be opened, read or written */
  W4A16_ERROR_UNSUPPORTED = 4,      /* valid request this build or machine cannot serve */
  W4A16_ERROR_INTERNAL = 5,         /* a bug in w4a16: please report it with the message */
  W4A16_ERROR_OUT_OF_MEMORY = 6,    /* an allocation failed */
  W4A16_STATUS_MIN_ENUM_ = -0x7FFFFFFF - 1,
  W4A16_STATUS_MAX_ENUM_ = 0x7FFFFFFF
} w4a16_status;

/* Element types. fp16 = IEEE binary16, bf16 = bfloat16, both as raw uint16_t bits. */
typedef enum w4a16_dtype {
  W4A16_DTYPE_F16 = 0,
  W4A16_DTYPE_BF16 = 1,
  W4A16_DTYPE_F32 = 2,
  W4A16_DTYPE_MIN_ENUM_ = -0x7FFFFFFF - 1,
  W4A16_DTYPE_MAX_ENUM_ = 0x7FFFFFFF
} w4a16_dtype;

/* How a 4-bit code q in [0, 15] becomes a weight value (s = the group's scale):
 *   SYM:   w = (q - 8) * s
 *   ASYM:  w = (q - z) * s        z an integer zero per group, z in [0, 16]
 *   FLOAT: w = (q - 8) * s + zf   zf a float zero per group (torch "tinygemm" convention) */
typedef enum w4a16_zero_mode {
  W4A16_ZERO_SYM = 0,
  W4A16_ZERO_ASYM = 1,
  W4A16_ZERO_FLOAT = 2,
  W4A16_ZERO_MIN_ENUM_ = -0x7FFFFFFF - 1,
  W4A16_ZERO_MAX_ENUM_ = 0x7FFFFFFF
} w4a16_zero_mode;

/* An opaque quantized weight of one linear layer (codes, scales, zeros, group size, optional
 * act-order permutation and bias). Created by w4a16_quantize or w4a16_weight_load, owned by the
 * caller, released with w4a16_weight_free. */
typedef struct w4a16_weight w4a16_weight;

/* The message of the last call that failed on the calling thread ("" if none has failed). A
 * successful call does not clear it. The string is owned by the library and stays valid until
 * the next failing call on the same thread. Never returns NULL. */
const char* w4a16_last_error(void);

/* The library version as "MAJOR.MINOR.PATCH". Compare with the W4A16_VERSION_* macros to detect
 * a header/library mismatch. Static storage, never NULL. */
const char* w4a16_version(void);

/* Quantizes w [n, k] (row-major, w_dtype fp16, bf16 or fp32) with round-to-nearest, group by
 * group along k, and returns a new handle in *out (free it with w4a16_weight_free).
 *   group_size  g >= 1, or 0 for per-channel (g = k); a g larger than k is taken as k. Common
 *               values are 32, 64, 128, 256. The last group of a row may be shorter than g.
 *   zero_mode   W4A16_ZERO_SYM, _ASYM or _FLOAT.
 *   scale_dtype dtype in which scales (and float zeros) are stored: fp16, bf16 or fp32.
 * NaN/Inf in w, n <= 0, k <= 0 or a scale that overflows scale_dtype give
 * W4A16_ERROR_INVALID_ARGUMENT. The weight has no bias and no permutation. */
w4a16_status w4a16_quantize(const void* w, w4a16_dtype w_dtype, int64_t n, int64_t k, int64_t group_size,
                            w4a16_zero_mode zero_mode, w4a16_dtype scale_dtype, w4a16_weight** out);

/* Loads one quantized layer from a w4a16 safetensors file (the format written by
 * w4a16_weight_save and by `w4a16 quantize`), with its bias when the file has one. `layer` is the
 * module name ("model.layers.0.mlp.down_proj") or the tensor name (the same + ".weight").
 * Returns a new handle in *out. A missing or unreadable file is W4A16_ERROR_IO, a malformed one
 * W4A16_ERROR_FORMAT, a layer the file does not hold W4A16_ERROR_INVALID_ARGUMENT (the message
 * lists the layers it has). */
w4a16_status w4a16_weight_load(const char* path, const char* layer, w4a16_weight** out);

/* Writes the weight as the only layer of a new safetensors file at `path` (an existing file is
 * replaced), under the module name `layer` (either form, as for w4a16_weight_load). */
w4a16_status w4a16_weight_save(const w4a16_weight* weight, const char* path, const char* layer);

/* The weight's shape: *n = output features (rows of W), *k = input features (columns). */
w4a16_status w4a16_weight_shape(const w4a16_weight* weight, int64_t* n, int64_t* k);

/* The weight's quantization settings: the group size g (k for per-channel; 1 <= g <= k), the
 * zero mode and the dtype of its scales. */
w4a16_status w4a16_weight_info(const w4a16_weight* weight, int64_t* group_size, w4a16_zero_mode* zero_mode,
                               w4a16_dtype* scale_dtype);

/* Writes the dequantized weight as fp32 [n, k] row-major into out, in the original input-feature
 * order (an act-order permutation is undone), so that y = x * out^T. out_elems must equal n * k
 * (see w4a16_weight_shape). The bias is not included. */
w4a16_status w4a16_weight_dequantize(const w4a16_weight* weight, float* out, int64_t out_elems);

/* y[m, n] = x[m, k] * dequant(W)^T (+ bias) with the best kernel for this machine.
 *   x       [m, k] row-major, x_dtype fp16 or bf16.
 *   y       [m, n] row-major, y_dtype fp16, bf16 or fp32 (fp32: partial sums to add before one
 *           rounding, e.g. tensor parallelism); may differ from x_dtype; must not overlap x.
 *   m >= 1; k and n must equal the weight's K and N (a mismatch is W4A16_ERROR_INVALID_ARGUMENT).
 * Products are accumulated in fp32 (or wider) and rounded once to y_dtype. */
w4a16_status w4a16_gemm(const void* x, w4a16_dtype x_dtype, int64_t m, int64_t k, const w4a16_weight* weight, void* y,
                        w4a16_dtype y_dtype, int64_t n);

/* How w4a16_gemm_ex computes (see docs/kernels.md). Zero-initialize for the defaults. */
typedef enum w4a16_strategy {
  W4A16_STRATEGY_AUTO = 0,      /* the planner's choice (docs/model.md) */
  W4A16_STRATEGY_FUSED = 1,     /* dequantize in registers */
  W4A16_STRATEGY_DECOUPLED = 2, /* dequantize a panel to 16-bit in memory, then a dense kernel */
  W4A16_STRATEGY_DENSE = 3,     /* W dequantized once to 16-bit: the FP16/BF16 baseline */
  W4A16_STRATEGY_PIPELINED = 4, /* decoupled with roles: dequantizing and multiplying threads */
  W4A16_STRATEGY_MIN_ENUM_ = -0x7FFFFFFF - 1,
  W4A16_STRATEGY_MAX_ENUM_ = 0x7FFFFFFF
} w4a16_strategy;

typedef enum w4a16_partition {
  W4A16_PARTITION_AUTO = 0,
  W4A16_PARTITION_DATA_PARALLEL = 1, /* threads own disjoint column tiles */
  W4A16_PARTITION_SPLIT_K = 2,       /* threads share a tile, each reduces a slice of K */
  W4A16_PARTITION_MIN_ENUM_ = -0x7FFFFFFF - 1,
  W4A16_PARTITION_MAX_ENUM_ = 0x7FFFFFFF
} w4a16_partition;

typedef struct w4a16_gemm_options {
  w4a16_strategy strategy;
  w4a16_partition partition;
  int32_t split_k; /* S for split-K; 0 = automatic; clamped to the number of groups */
  int32_t threads; /* 0 = the CPUs this process may run on */
} w4a16_gemm_options;

/* w4a16_gemm with explicit options (NULL = defaults). The weight is packed for the CPU kernels
 * once, on the first gemm call on the handle. Results are bitwise reproducible for a fixed
 * strategy and split factor, whatever the thread count. */
w4a16_status w4a16_gemm_ex(const void* x, w4a16_dtype x_dtype, int64_t m, int64_t k, const w4a16_weight* weight,
                           void* y, w4a16_dtype y_dtype, int64_t n, const w4a16_gemm_options* options);

/* Caps the instruction set the kernels use: "scalar", "avx2", "avx512" (no BF16 dot) or
 * "avx512bf16"; NULL or "" restores the default (W4A16_ISA from the environment, else the best
 * this CPU supports). A cap above what the CPU supports is ignored. */
w4a16_status w4a16_set_isa(const char* isa);

/* The instruction set the kernels use now (a static string). */
const char* w4a16_active_isa(void);

/* How long the worker threads spin for the next call before they sleep, in microseconds (0 =
 * passive: they sleep at once and leave the cores to the caller; default 300 or W4A16_WAIT_POLICY
 * = active | passive | microseconds). W4A16_ERROR_INVALID_ARGUMENT outside [0, 100000]. */
w4a16_status w4a16_set_worker_spin_us(int32_t microseconds);
int32_t w4a16_worker_spin_us(void);

/* The same as w4a16_gemm computed by the scalar reference kernel (the oracle every fast kernel is
 * tested against): accumulation in double, one rounding to y_dtype. Slow; meant for tests. */
w4a16_status w4a16_gemm_reference(const void* x, w4a16_dtype x_dtype, int64_t m, int64_t k, const w4a16_weight* weight,
                                  void* y, w4a16_dtype y_dtype, int64_t n);

/* Releases a weight created by w4a16_quantize or w4a16_weight_load. NULL is allowed (no-op). */
void w4a16_weight_free(w4a16_weight* weight);

/* ---- CUDA backend (docs/cuda.md) ------------------------------------------------------------
 * A build without CUDA, or a machine without a usable device, answers W4A16_ERROR_UNSUPPORTED. */

/* A weight resident on one CUDA device in the CUDA kernels' layout for activations of act_dtype
 * (W4A16_DTYPE_F16 or _BF16); device = -1 for the current device. The host weight may be freed after.
 * Without a usable device: W4A16_ERROR_UNSUPPORTED, whatever the index; an index below -1 (or past
 * the last device): W4A16_ERROR_INVALID_ARGUMENT. */
typedef struct w4a16_cuda_weight w4a16_cuda_weight;
w4a16_status w4a16_cuda_weight_create(const w4a16_weight* weight, w4a16_dtype act_dtype, int32_t device,
                                      w4a16_cuda_weight** out);
void w4a16_cuda_weight_free(w4a16_cuda_weight* weight);

/* Device memory (and a cuBLAS handle) reused by the calls on one stream; grows on first need. */
typedef struct w4a16_cuda_workspace w4a16_cuda_workspace;
w4a16_status w4a16_cuda_workspace_create(w4a16_cuda_workspace** out);
void w4a16_cuda_workspace_free(w4a16_cuda_workspace* workspace);

/* y[m, n] = x[m, k] * dequant(W)^T (+ bias) on the weight's device, queued on `stream` (a
 * cudaStream_t; NULL: the legacy default stream). x (x_dtype = the weight's act_dtype) and y
 * (fp16, bf16 or fp32) are device pointers. options: strategy AUTO/FUSED/DECOUPLED/DENSE,
 * partition and split_k as for w4a16_gemm_ex (threads is ignored); NULL = defaults. Argument
 * errors are reported before anything is queued. */
w4a16_status w4a16_cuda_gemm(const void* x, w4a16_dtype x_dtype, int64_t m, int64_t k, const w4a16_cuda_weight* weight,
                             void* y, w4a16_dtype y_dtype, int64_t n, w4a16_cuda_workspace* workspace, void* stream,
                             const w4a16_gemm_options* options);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* W4A16_W4A16_H_ */
