// The plain C interface (include/w4a16/w4a16.h) over the C++ API.
//
// Every exported function has the same shape: check the pointers and enum values a C caller can
// get wrong, convert to the C++ types, call the C++ API inside guarded(), which turns every
// exception into a status code plus a thread-local message. Nothing may throw past this file:
// the functions are extern "C" and a C caller cannot catch.
#include <algorithm>
#include <cstring>
#include <filesystem>
#include <ios>
#include <mutex>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include "common/check.hpp"
#include "w4a16/w4a16.h"

// The C header repeats the version and the error codes as plain C; keep them equal.
static_assert(W4A16_VERSION_MAJOR == w4a16::kVersionMajor && W4A16_VERSION_MINOR == w4a16::kVersionMinor &&
                  W4A16_VERSION_PATCH == w4a16::kVersionPatch,
              "w4a16.h and w4a16.hpp disagree on the version");
static_assert(W4A16_ERROR_INVALID_ARGUMENT == int(w4a16::ErrorCode::invalid_argument) &&
                  W4A16_ERROR_FORMAT == int(w4a16::ErrorCode::format) && W4A16_ERROR_IO == int(w4a16::ErrorCode::io) &&
                  W4A16_ERROR_UNSUPPORTED == int(w4a16::ErrorCode::unsupported) &&
                  W4A16_ERROR_INTERNAL == int(w4a16::ErrorCode::internal),
              "w4a16_status must mirror w4a16::ErrorCode");
static_assert(sizeof(w4a16_status) == 4 && sizeof(w4a16_dtype) == 4 && sizeof(w4a16_zero_mode) == 4,
              "C enums must be 32-bit for a stable FFI");

// The handle. Private to this file so that it can grow (a backend's packed form of the same
// weight, made once on first use or at load time) without changing the C ABI.
// The CUDA handles: a device-resident weight, and the workspace of one stream's calls.
struct w4a16_cuda_weight {
  explicit w4a16_cuda_weight(w4a16::CudaWeight w) : weight(std::move(w)) {}
  w4a16::CudaWeight weight;
};
struct w4a16_cuda_workspace {
  w4a16::CudaWorkspace workspace;
};

struct w4a16_weight {
  explicit w4a16_weight(w4a16::QuantizedWeight w) : weight(std::move(w)) {}
  w4a16::QuantizedWeight weight;
  // The CPU kernels' layout, made on the first gemm (std::call_once: const calls may run at once).
  mutable std::once_flag packed_once;
  mutable w4a16::PackedWeight packed;
  const w4a16::PackedWeight& cpu_packed() const {
    std::call_once(packed_once, [&] { packed = w4a16::pack(weight); });
    return packed;
  }
};

namespace {

// The last error message of this thread. Recording it can itself fail (out of memory); then a
// static message stands in so that w4a16_last_error() never returns NULL or a stale text.
thread_local std::string t_last_error;
thread_local const char* t_last_error_fallback = nullptr;

w4a16_status set_error(w4a16_status status, const char* function, const char* message) noexcept {
  try {
    t_last_error.assign(function);
    t_last_error.append(": ");
    t_last_error.append(message);
    t_last_error_fallback = nullptr;
  } catch (...) {
    t_last_error_fallback = "out of memory while recording the error message";
  }
  return status;
}

// Thrown by the argument checks of this file; carries a message already formatted by fmt.
template <typename... Args>
[[noreturn]] void invalid(fmt::format_string<Args...> format, Args&&... args) {
  w4a16::fail(w4a16::ErrorCode::invalid_argument, format, std::forward<Args>(args)...);
}

template <typename T>
void require_ptr(const T* pointer, const char* name) {
  if (pointer == nullptr) invalid("{} is NULL", name);
}

// An enum argument as the integer the caller passed, read through its bytes: every range check
// below is on this integer, so no out-of-range enum value is ever used as an enum.
template <typename Enum>
int32_t as_int(const Enum& value) {
  static_assert(sizeof(Enum) == sizeof(int32_t), "C enums are 32-bit");
  int32_t out;
  std::memcpy(&out, &value, sizeof out);
  return out;
}

w4a16::DType to_dtype(w4a16_dtype dtype_enum, const char* name) {
  const int32_t dtype = as_int(dtype_enum);
  switch (dtype) {
    case W4A16_DTYPE_F16:
      return w4a16::DType::f16;
    case W4A16_DTYPE_BF16:
      return w4a16::DType::bf16;
    case W4A16_DTYPE_F32:
      return w4a16::DType::f32;
    default:
      break;
  }
  invalid("{} = {} is not a w4a16_dtype (expected W4A16_DTYPE_F16, _BF16 or _F32)", name, dtype);
}

w4a16_dtype from_dtype(w4a16::DType dtype) {
  switch (dtype) {
    case w4a16::DType::f16:
      return W4A16_DTYPE_F16;
    case w4a16::DType::bf16:
      return W4A16_DTYPE_BF16;
    case w4a16::DType::f32:
      return W4A16_DTYPE_F32;
  }
  w4a16::fail(w4a16::ErrorCode::internal, "unknown DType {}", int(dtype));
}

w4a16::ZeroMode to_zero_mode(w4a16_zero_mode mode_enum) {
  const int32_t mode = as_int(mode_enum);
  switch (mode) {
    case W4A16_ZERO_SYM:
      return w4a16::ZeroMode::sym;
    case W4A16_ZERO_ASYM:
      return w4a16::ZeroMode::asym;
    case W4A16_ZERO_FLOAT:
      return w4a16::ZeroMode::float_zero;
    default:
      break;
  }
  invalid("zero_mode = {} is not a w4a16_zero_mode (expected W4A16_ZERO_SYM, _ASYM or _FLOAT)", mode);
}

w4a16_zero_mode from_zero_mode(w4a16::ZeroMode mode) {
  switch (mode) {
    case w4a16::ZeroMode::sym:
      return W4A16_ZERO_SYM;
    case w4a16::ZeroMode::asym:
      return W4A16_ZERO_ASYM;
    case w4a16::ZeroMode::float_zero:
      return W4A16_ZERO_FLOAT;
  }
  w4a16::fail(w4a16::ErrorCode::internal, "unknown ZeroMode {}", int(mode));
}

w4a16_status to_status(w4a16::ErrorCode code) {
  switch (code) {
    case w4a16::ErrorCode::invalid_argument:
      return W4A16_ERROR_INVALID_ARGUMENT;
    case w4a16::ErrorCode::format:
      return W4A16_ERROR_FORMAT;
    case w4a16::ErrorCode::io:
      return W4A16_ERROR_IO;
    case w4a16::ErrorCode::unsupported:
      return W4A16_ERROR_UNSUPPORTED;
    case w4a16::ErrorCode::internal:
      return W4A16_ERROR_INTERNAL;
  }
  return W4A16_ERROR_INTERNAL;
}

// Runs body() and maps every exception to a status; `function` prefixes the message.
template <typename Body>
w4a16_status guarded(const char* function, Body&& body) noexcept {
  try {
    body();
    return W4A16_OK;
  } catch (const w4a16::Error& e) {
    return set_error(to_status(e.code()), function, e.what());
  } catch (const std::bad_alloc&) {
    return set_error(W4A16_ERROR_OUT_OF_MEMORY, function, "out of memory");
  } catch (const std::filesystem::filesystem_error& e) {
    return set_error(W4A16_ERROR_IO, function, e.what());
  } catch (const std::ios_base::failure& e) {
    return set_error(W4A16_ERROR_IO, function, e.what());
  } catch (const std::exception& e) {
    return set_error(W4A16_ERROR_INTERNAL, function, e.what());
  } catch (...) {
    return set_error(W4A16_ERROR_INTERNAL, function, "unknown exception");
  }
}

// A new handle, or an exception; the caller stores it only once everything else succeeded.
w4a16_weight* new_handle(w4a16::QuantizedWeight weight) { return new w4a16_weight(std::move(weight)); }

w4a16::GemmOptions to_options(const w4a16_gemm_options* o) {
  w4a16::GemmOptions out;
  if (o == nullptr) return out;
  const int32_t strategy = as_int(o->strategy), partition = as_int(o->partition);
  switch (strategy) {
    case W4A16_STRATEGY_AUTO:
      out.strategy = w4a16::Strategy::automatic;
      break;
    case W4A16_STRATEGY_FUSED:
      out.strategy = w4a16::Strategy::fused;
      break;
    case W4A16_STRATEGY_DECOUPLED:
      out.strategy = w4a16::Strategy::decoupled;
      break;
    case W4A16_STRATEGY_DENSE:
      out.strategy = w4a16::Strategy::dense;
      break;
    case W4A16_STRATEGY_PIPELINED:
      out.strategy = w4a16::Strategy::pipelined;
      break;
    default:
      invalid("options->strategy = {} is not a w4a16_strategy value", strategy);
  }
  switch (partition) {
    case W4A16_PARTITION_AUTO:
      out.partition = w4a16::Partition::automatic;
      break;
    case W4A16_PARTITION_DATA_PARALLEL:
      out.partition = w4a16::Partition::data_parallel;
      break;
    case W4A16_PARTITION_SPLIT_K:
      out.partition = w4a16::Partition::split_k;
      break;
    default:
      invalid("options->partition = {} is not a w4a16_partition value", partition);
  }
  if (o->split_k < 0) invalid("options->split_k = {} must be >= 0", o->split_k);
  if (o->threads < 0) invalid("options->threads = {} must be >= 0", o->threads);
  out.split_k = o->split_k;
  out.threads = o->threads;
  return out;
}

w4a16_status gemm_impl(const char* function, bool reference, const void* x, w4a16_dtype x_dtype, int64_t m, int64_t k,
                       const w4a16_weight* weight, void* y, w4a16_dtype y_dtype, int64_t n,
                       const w4a16_gemm_options* options) {
  return guarded(function, [&] {
    require_ptr(x, "x");
    require_ptr(weight, "weight");
    require_ptr(y, "y");
    const w4a16::QuantizedWeight& w = weight->weight;
    // The C++ API checks these too; repeating them here names the C arguments in the message.
    if (m <= 0) invalid("m = {} must be positive", m);
    if (k != w.k()) invalid("k = {} does not match the weight's K = {}", k, w.k());
    if (n != w.n()) invalid("n = {} does not match the weight's N = {}", n, w.n());
    const w4a16::MatrixRef xr{x, to_dtype(x_dtype, "x_dtype"), m, k};
    const w4a16::MutableMatrixRef yr{y, to_dtype(y_dtype, "y_dtype"), m, n};
    if (reference) {
      w4a16::reference_gemm(xr, w, yr);
    } else {
      const w4a16::GemmOptions o = to_options(options);
      w4a16::gemm(xr, weight->cpu_packed(), yr, o);
    }
  });
}

}  // namespace

extern "C" {

const char* w4a16_last_error(void) {
  return t_last_error_fallback != nullptr ? t_last_error_fallback : t_last_error.c_str();
}

const char* w4a16_version(void) {
  // Built from the C macros so that the text is a string literal: static storage, no allocation.
#define W4A16_STR_(x) #x
#define W4A16_STR(x) W4A16_STR_(x)
  return W4A16_STR(W4A16_VERSION_MAJOR) "." W4A16_STR(W4A16_VERSION_MINOR) "." W4A16_STR(W4A16_VERSION_PATCH);
#undef W4A16_STR
#undef W4A16_STR_
}

w4a16_status w4a16_quantize(const void* w, w4a16_dtype w_dtype, int64_t n, int64_t k, int64_t group_size,
                            w4a16_zero_mode zero_mode, w4a16_dtype scale_dtype, w4a16_weight** out) {
  if (out != nullptr) *out = nullptr;
  return guarded("w4a16_quantize", [&] {
    require_ptr(out, "out");
    require_ptr(w, "w");
    if (n <= 0 || k <= 0) invalid("shape n x k = {} x {} must be positive", n, k);
    if (group_size < 0) invalid("group_size = {} must be >= 1, or 0 for per-channel", group_size);
    w4a16::QuantizeOptions options;
    options.group_size = group_size;
    options.zero_mode = to_zero_mode(zero_mode);
    options.scale_dtype = to_dtype(scale_dtype, "scale_dtype");
    const w4a16::MatrixRef wr{w, to_dtype(w_dtype, "w_dtype"), n, k};
    *out = new_handle(w4a16::quantize(wr, options));
  });
}

w4a16_status w4a16_weight_load(const char* path, const char* layer, w4a16_weight** out) {
  if (out != nullptr) *out = nullptr;
  return guarded("w4a16_weight_load", [&] {
    require_ptr(out, "out");
    require_ptr(path, "path");
    require_ptr(layer, "layer");
    if (*path == '\0') invalid("path is empty");
    *out = new_handle(w4a16::load_quantized(std::filesystem::path(path), layer));
  });
}

w4a16_status w4a16_weight_save(const w4a16_weight* weight, const char* path, const char* layer) {
  return guarded("w4a16_weight_save", [&] {
    require_ptr(weight, "weight");
    require_ptr(path, "path");
    require_ptr(layer, "layer");
    if (*path == '\0') invalid("path is empty");
    if (*layer == '\0') invalid("layer name is empty");
    w4a16::save_quantized(std::filesystem::path(path), {{std::string(layer), &weight->weight}});
  });
}

w4a16_status w4a16_weight_shape(const w4a16_weight* weight, int64_t* n, int64_t* k) {
  return guarded("w4a16_weight_shape", [&] {
    require_ptr(weight, "weight");
    require_ptr(n, "n");
    require_ptr(k, "k");
    *n = weight->weight.n();
    *k = weight->weight.k();
  });
}

w4a16_status w4a16_weight_info(const w4a16_weight* weight, int64_t* group_size, w4a16_zero_mode* zero_mode,
                               w4a16_dtype* scale_dtype) {
  return guarded("w4a16_weight_info", [&] {
    require_ptr(weight, "weight");
    require_ptr(group_size, "group_size");
    require_ptr(zero_mode, "zero_mode");
    require_ptr(scale_dtype, "scale_dtype");
    const w4a16_zero_mode mode = from_zero_mode(weight->weight.zero_mode());
    const w4a16_dtype dtype = from_dtype(weight->weight.scale_dtype());
    *group_size = weight->weight.group_size();
    *zero_mode = mode;
    *scale_dtype = dtype;
  });
}

w4a16_status w4a16_weight_dequantize(const w4a16_weight* weight, float* out, int64_t out_elems) {
  return guarded("w4a16_weight_dequantize", [&] {
    require_ptr(weight, "weight");
    require_ptr(out, "out");
    const w4a16::QuantizedWeight& w = weight->weight;
    const int64_t elems = w.n() * w.k();  // fits: the QuantizedWeight holds n * ceil(k/2) bytes
    if (out_elems != elems) {
      invalid("out_elems = {} but the weight has N x K = {} x {} = {} elements", out_elems, w.n(), w.k(), elems);
    }
    const std::vector<float> values = w4a16::dequantize(w);  // [N, K]
    std::copy(values.begin(), values.end(), out);
  });
}

w4a16_status w4a16_gemm(const void* x, w4a16_dtype x_dtype, int64_t m, int64_t k, const w4a16_weight* weight, void* y,
                        w4a16_dtype y_dtype, int64_t n) {
  return gemm_impl("w4a16_gemm", false, x, x_dtype, m, k, weight, y, y_dtype, n, nullptr);
}

w4a16_status w4a16_gemm_ex(const void* x, w4a16_dtype x_dtype, int64_t m, int64_t k, const w4a16_weight* weight,
                           void* y, w4a16_dtype y_dtype, int64_t n, const w4a16_gemm_options* options) {
  return gemm_impl("w4a16_gemm_ex", false, x, x_dtype, m, k, weight, y, y_dtype, n, options);
}

w4a16_status w4a16_set_isa(const char* isa) {
  return guarded("w4a16_set_isa", [&] { w4a16::set_isa_cap(isa == nullptr ? "" : isa); });
}

w4a16_status w4a16_set_worker_spin_us(int32_t microseconds) {
  return guarded("w4a16_set_worker_spin_us", [&] {
    w4a16::require(microseconds >= 0 && microseconds <= 100000, "worker spin {} us is outside [0, 100000]",
                   microseconds);
    w4a16::set_worker_spin_us(microseconds);
  });
}

int32_t w4a16_worker_spin_us(void) { return w4a16::worker_spin_us(); }

const char* w4a16_active_isa(void) {
  // The names are string literals in the kernel tables: static storage.
  return w4a16::active_isa().data();
}

w4a16_status w4a16_gemm_reference(const void* x, w4a16_dtype x_dtype, int64_t m, int64_t k, const w4a16_weight* weight,
                                  void* y, w4a16_dtype y_dtype, int64_t n) {
  return gemm_impl("w4a16_gemm_reference", true, x, x_dtype, m, k, weight, y, y_dtype, n, nullptr);
}

void w4a16_weight_free(w4a16_weight* weight) { delete weight; }

w4a16_status w4a16_cuda_weight_create(const w4a16_weight* weight, w4a16_dtype act_dtype, int32_t device,
                                      w4a16_cuda_weight** out) {
  return guarded("w4a16_cuda_weight_create", [&] {
    require_ptr(weight, "weight");
    require_ptr(out, "out");
    *out = nullptr;
    auto handle =
        std::make_unique<w4a16_cuda_weight>(w4a16::to_cuda(weight->weight, to_dtype(act_dtype, "act_dtype"), device));
    *out = handle.release();
  });
}

void w4a16_cuda_weight_free(w4a16_cuda_weight* weight) { delete weight; }

w4a16_status w4a16_cuda_workspace_create(w4a16_cuda_workspace** out) {
  return guarded("w4a16_cuda_workspace_create", [&] {
    require_ptr(out, "out");
    *out = new w4a16_cuda_workspace();
  });
}

void w4a16_cuda_workspace_free(w4a16_cuda_workspace* workspace) { delete workspace; }

w4a16_status w4a16_cuda_gemm(const void* x, w4a16_dtype x_dtype, int64_t m, int64_t k, const w4a16_cuda_weight* weight,
                             void* y, w4a16_dtype y_dtype, int64_t n, w4a16_cuda_workspace* workspace, void* stream,
                             const w4a16_gemm_options* options) {
  return guarded("w4a16_cuda_gemm", [&] {
    require_ptr(weight, "weight");
    require_ptr(workspace, "workspace");
    if (m < 0) invalid("m = {} must be >= 0", m);
    const w4a16::GemmOptions cpu = to_options(options);
    w4a16::CudaGemmOptions o;
    o.strategy = cpu.strategy;
    o.partition = cpu.partition;
    o.split_k = cpu.split_k;
    w4a16::gemm({x, to_dtype(x_dtype, "x_dtype"), m, k}, weight->weight, {y, to_dtype(y_dtype, "y_dtype"), m, n},
                workspace->workspace, stream, o);
  });
}

}  // extern "C"
