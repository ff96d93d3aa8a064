// w4a16._torch_ops: the C++ CPU kernel of the torch ops w4a16::linear and w4a16::_linear, built
// only where torch (>= 2.10, for its stable ABI) is importable when the package is built.
//
// Why C++: a call through the dispatcher to a Python kernel costs ~6 us more than the gemm at
// decode, as much as a small layer's whole kernel; this kernel is ~2 us (bench/torch_overhead.py).
// It is written against torch's stable C ABI (torch/csrc/stable, the aoti_torch_* shim), so the
// module does not depend on torch's C++ ABI and keeps working with later torch releases.
//
// The schemas, fake kernels and autograd formula stay in python/w4a16/torch/__init__.py, which
// defines the ops, imports this module and registers the Python CPU kernel only when this import
// fails. The weights come from w4a16._ext's registry through kernel_table.h.
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <torch/csrc/inductor/aoti_torch/c/shim.h>
#include <torch/csrc/stable/library.h>
#include <torch/csrc/stable/ops.h>
#include <torch/csrc/stable/tensor.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "kernel_table.h"

namespace {

using torch::stable::Tensor;

const w4a16_kernel_table* g_table = nullptr;  // set once by PyInit__torch_ops, before registration

// Whether the gemm's parallel parts run on torch's intra-op threads (at::parallel_for through the
// stable ABI; torch.set_num_threads() sets how many) or on w4a16's own pool. torch's by default:
// one pool for the model, so that torch's idle OpenMP threads and w4a16's workers do not spin on
// the same cores between each other's calls (docs/threads.md). Set by use_torch_threads().
std::atomic<bool> g_torch_threads{true};

// w4a16::ParallelRunner on torch's pool: parts [0, parts) dealt to torch's threads by
// torch_parallel_for (grain 1). A part that torch did not run (it reports an error instead of
// throwing through C) runs here after, so that every part runs exactly once whatever happens.
void run_on_torch_threads(void*, int parts, void (*part)(void*, int), void* part_ctx) {
  std::array<std::atomic<bool>, 1024> done{};  // parts <= w4a16::kMaxThreads
  struct Context {
    void (*part)(void*, int);
    void* part_ctx;
    std::array<std::atomic<bool>, 1024>* done;
  } context{part, part_ctx, &done};
  const auto body = [](int64_t begin, int64_t end, void* ctx) {
    const auto& c = *static_cast<Context*>(ctx);
    for (int64_t i = begin; i < end; ++i) {
      c.part(c.part_ctx, int(i));
      (*c.done)[size_t(i)].store(true, std::memory_order_relaxed);
    }
  };
  const int bounded = std::min(parts, int(done.size()));
  (void)torch_parallel_for(0, bounded, 1, body, &context);
  for (int i = 0; i < parts; ++i) {
    if (i >= bounded || !done[size_t(i)].load(std::memory_order_relaxed)) part(part_ctx, i);
  }
}

std::string dtype_name(int32_t dtype) {
  const std::array<std::pair<int32_t, const char*>, 8> names{{
      {aoti_torch_dtype_float32(), "torch.float32"},
      {aoti_torch_dtype_float64(), "torch.float64"},
      {aoti_torch_dtype_int8(), "torch.int8"},
      {aoti_torch_dtype_uint8(), "torch.uint8"},
      {aoti_torch_dtype_int16(), "torch.int16"},
      {aoti_torch_dtype_int32(), "torch.int32"},
      {aoti_torch_dtype_int64(), "torch.int64"},
      {aoti_torch_dtype_bool(), "torch.bool"},
  }};
  for (const auto& [code, name] : names) {
    if (code == dtype) return name;
  }
  return "dtype code " + std::to_string(dtype);
}

std::string shape_text(const Tensor& x) {  // as Python prints tuple(x.shape)
  std::string text = "(";
  for (int64_t d = 0; d < x.dim(); ++d) text += (d ? ", " : "") + std::to_string(x.size(d));
  return text + (x.dim() == 1 ? ",)" : ")");
}

// Releases the GIL for the gemm when this thread holds it (the dispatcher may call from Python
// with it held); another thread's Python keeps running meanwhile, as with the Python kernel.
class GilRelease {
 public:
  GilRelease() : state_(PyGILState_Check() ? PyEval_SaveThread() : nullptr) {}
  ~GilRelease() {
    if (state_ != nullptr) PyEval_RestoreThread(state_);
  }
  GilRelease(const GilRelease&) = delete;
  GilRelease& operator=(const GilRelease&) = delete;

 private:
  PyThreadState* state_;
};

// y [..., N] = x [..., K] @ dequant(W)^T (+ bias) for the weight `handle` names. The messages are
// the Python kernel's; errors reach Python as RuntimeError (torch's type for an op's errors).
Tensor linear_cpu(Tensor x, int64_t handle) {
  int64_t n = 0, k = 0;
  if (g_table->shape(handle, &n, &k) == 0) {
    throw std::runtime_error("w4a16::linear: no weight has handle " + std::to_string(handle) +
                             " (its Linear was deleted?)");
  }
  int32_t dtype = 0;
  STABLE_TORCH_ERROR_CODE_CHECK(aoti_torch_get_dtype(x.get(), &dtype));
  const bool bf16 = dtype == aoti_torch_dtype_bfloat16();
  if (!bf16 && dtype != aoti_torch_dtype_float16()) {
    throw std::runtime_error("w4a16::linear: x must be float16 or bfloat16 (activations are 16-bit), got " +
                             dtype_name(dtype) + "; convert it first, e.g. x.bfloat16() or model.to(torch.bfloat16)");
  }
  const int64_t dims = x.dim();
  if (dims == 0 || x.size(dims - 1) != k) {
    throw std::runtime_error("w4a16::linear: x has shape " + shape_text(x) +
                             " but the weight has K=" + std::to_string(k) + " (x must be [..., K])");
  }
  const Tensor xc = x.is_contiguous() ? x : torch::stable::contiguous(x);
  const int64_t m = x.numel() / k;
  std::array<int64_t, 16> sizes{}, strides{};  // y: x's leading dims, then N; contiguous
  if (dims > int64_t(sizes.size())) throw std::runtime_error("w4a16::linear: x has more than 16 dimensions");
  int64_t stride = 1;
  for (int64_t d = dims - 1; d >= 0; --d) {
    sizes[d] = d == dims - 1 ? n : x.size(d);
    strides[d] = stride;
    stride *= sizes[d];
  }
  AtenTensorHandle out = nullptr;
  STABLE_TORCH_ERROR_CODE_CHECK(
      aoti_torch_empty_strided(dims, sizes.data(), strides.data(), dtype, aoti_torch_device_type_cpu(), 0, &out));
  Tensor y(out);
  if (m > 0) {
    std::array<char, 1024> message{};
    int failed = 0;
    {
      const GilRelease released;
      const bool torch_threads = g_torch_threads.load(std::memory_order_relaxed);
      uint32_t threads = 1;
      if (torch_threads && torch_get_num_threads(&threads) != AOTI_TORCH_SUCCESS) threads = 1;
      failed =
          g_table->linear(handle, xc.data_ptr(), bf16 ? 1 : 0, m, k, y.data_ptr(), int(threads),
                          torch_threads ? &run_on_torch_threads : nullptr, nullptr, message.data(), message.size());
    }
    if (failed != 0) throw std::runtime_error(message.data());
  }
  return y;
}

// use_torch_threads(flag: bool) -> bool: sets where the parallel parts run, returns the previous.
PyObject* use_torch_threads(PyObject*, PyObject* arg) {
  const int flag = PyObject_IsTrue(arg);
  if (flag < 0) return nullptr;
  return PyBool_FromLong(g_torch_threads.exchange(flag != 0) ? 1 : 0);
}

PyMethodDef g_methods[] = {
    {"use_torch_threads", use_torch_threads, METH_O,
     "use_torch_threads(flag) -> previous: run the gemm's parallel parts on torch's intra-op threads "
     "(True, the default) or on w4a16's own pool (False)."},
    {nullptr, nullptr, 0, nullptr}};

PyModuleDef g_module{PyModuleDef_HEAD_INIT, "_torch_ops",
                     "The C++ CPU kernel of the torch ops w4a16::linear and w4a16::_linear (stable ABI).", -1,
                     g_methods};

}  // namespace

PyMODINIT_FUNC PyInit__torch_ops() {
  PyObject* ext = PyImport_ImportModule("w4a16._ext");
  if (ext == nullptr) return nullptr;
  PyObject* capsule = PyObject_CallMethod(ext, "_kernel_table", nullptr);
  Py_DECREF(ext);
  if (capsule == nullptr) return nullptr;
  const auto* table = static_cast<const w4a16_kernel_table*>(PyCapsule_GetPointer(capsule, W4A16_KERNEL_TABLE_CAPSULE));
  Py_DECREF(capsule);
  if (table == nullptr) return nullptr;
  if (table->version != W4A16_KERNEL_TABLE_VERSION) {
    PyErr_Format(PyExc_ImportError, "w4a16._torch_ops expects kernel table version %d, w4a16._ext has %u",
                 W4A16_KERNEL_TABLE_VERSION, unsigned(table->version));
    return nullptr;
  }
  PyObject* module = PyModule_Create(&g_module);
  if (module == nullptr) return nullptr;
  g_table = table;
  // Registered here, not by STABLE_TORCH_LIBRARY_IMPL's static initializer: only once the table is
  // known good, so that a failed import leaves the CPU key to the Python kernel. The library
  // object is never destroyed (the registration lasts as long as the process, as the macro's).
  try {
    auto* lib = new torch::stable::detail::StableLibrary(torch::stable::detail::StableLibrary::Kind::IMPL, "w4a16",
                                                         "CPU", __FILE__, __LINE__);
    lib->impl("linear", TORCH_BOX(&linear_cpu));
    lib->impl("_linear", TORCH_BOX(&linear_cpu));
  } catch (const std::exception& e) {
    Py_DECREF(module);
    PyErr_Format(PyExc_ImportError, "w4a16._torch_ops: registering the CPU kernels failed: %s", e.what());
    return nullptr;
  }
  return module;
}
