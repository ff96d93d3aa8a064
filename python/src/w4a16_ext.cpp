// w4a16._ext: the nanobind module over the C++ API (include/w4a16/w4a16.hpp).
//
// The Python package (python/w4a16/__init__.py) re-exports everything here and adds the pieces
// that are plain Python (Linear, the torch-aware output allocation). This file owns the array
// boundary, where three things happen:
//
//   1. Arrays in: any CPU array that nanobind's nb::ndarray accepts (numpy through DLPack or the
//      buffer protocol, PyTorch and anything else with __dlpack__). numpy has no bfloat16, and an
//      ml_dtypes.bfloat16 array exports neither DLPack nor a buffer, so such an array is viewed as
//      uint16 (no copy) and tagged bf16 here; a DLPack bf16 tensor (torch.bfloat16) arrives with
//      dtype code Bfloat. Inputs that are not C-contiguous are copied by nanobind's implicit
//      conversion; an `out` array is never converted (it must be C-contiguous and writable).
//   2. Arrays out: read-only numpy views of a QuantizedWeight's buffers whose owner is the Python
//      object, so they stay valid after the weight's last other reference is dropped.
//   3. Errors: w4a16::Error becomes ValueError (invalid_argument, unsupported), w4a16.FormatError
//      (a ValueError subclass; format), OSError (io) or RuntimeError (internal).
//
// The GIL is released around every call that does real work (quantize, pack, gemm, load, save,
// dequantize); the arrays and weights it touches are kept alive by the caller's references.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/filesystem.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/string_view.h>
#include <nanobind/stl/vector.h>

#include <cstring>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "kernel_table.h"
#include "linear_registry.hpp"
#include "w4a16/w4a16.hpp"

namespace nb = nanobind;
using namespace nb::literals;

namespace {

using w4a16::DType;
using w4a16::PackedWeight;
using w4a16::QuantizedWeight;

// Input arrays: read-only, C-contiguous (nanobind copies a non-contiguous numpy array or calls
// torch's .contiguous() when converting), on the CPU, any dtype (checked below).
using InArray = nb::ndarray<nb::ro, nb::c_contig, nb::device::cpu>;
// Output arrays: writable, C-contiguous, on the CPU; taken without conversion.
using OutArray = nb::ndarray<nb::c_contig, nb::device::cpu>;

PyObject* g_format_error = nullptr;  // w4a16.FormatError (a ValueError subclass), owned by the module

// numpy and ml_dtypes, imported once at module load (NB_MODULE below) and kept for the life of the
// process (never decref'd: module teardown order at interpreter exit is not ours to rely on).
nb::handle numpy() {
  static nb::handle mod = nb::module_::import_("numpy").release();
  return mod;
}
nb::handle bfloat16_dtype() {
  static nb::handle dtype = numpy().attr("dtype")(nb::module_::import_("ml_dtypes").attr("bfloat16")).release();
  return dtype;
}

bool is_numpy_bfloat16(nb::handle obj) {
  return nb::isinstance(obj, numpy().attr("ndarray")) && obj.attr("dtype").equal(bfloat16_dtype());
}

std::string dtype_text(nb::dlpack::dtype dt) {
  using nb::dlpack::dtype_code;
  const char* kind = "unknown";
  switch (dtype_code(dt.code)) {
    case dtype_code::Int:
      kind = "int";
      break;
    case dtype_code::UInt:
      kind = "uint";
      break;
    case dtype_code::Float:
      kind = "float";
      break;
    case dtype_code::Bfloat:
      kind = "bfloat";
      break;
    case dtype_code::Complex:
      kind = "complex";
      break;
    case dtype_code::Bool:
      kind = "bool";
      break;
  }
  return std::string(kind) + std::to_string(dt.bits);
}

// The w4a16 dtype of a DLPack dtype: float16, bfloat16 (DLPack) or float32; nullopt otherwise.
std::optional<DType> to_w4a16_dtype(nb::dlpack::dtype dt) {
  using nb::dlpack::dtype_code;
  if (dt.lanes != 1) return std::nullopt;
  if (dt.code == uint8_t(dtype_code::Float) && dt.bits == 16) return DType::f16;
  if (dt.code == uint8_t(dtype_code::Float) && dt.bits == 32) return DType::f32;
  if (dt.code == uint8_t(dtype_code::Bfloat) && dt.bits == 16) return DType::bf16;
  return std::nullopt;
}

std::string shape_text(size_t ndim, const int64_t* shape) {
  std::string s = "(";
  for (size_t i = 0; i < ndim; ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + (ndim == 1 ? ",)" : ")");
}

// One array argument seen through nb::ndarray, with its w4a16 dtype resolved.
template <typename Array>
struct Arg {
  Array array;
  std::optional<DType> dtype;  // nullopt: not fp16/bf16/fp32 (dtype_name says what it is)
  std::string dtype_name;

  size_t ndim() const { return array.ndim(); }
  int64_t dim(size_t i) const { return int64_t(array.shape(i)); }
  std::string shape() const {
    std::vector<int64_t> s(array.ndim());
    for (size_t i = 0; i < s.size(); ++i) s[i] = dim(i);
    return shape_text(s.size(), s.data());
  }
};

template <typename Array>
Arg<Array> take_array(nb::handle obj, const char* what, bool convert) {
  Arg<Array> a;
  nb::object source = nb::borrow(obj);
  const bool bf16_view = is_numpy_bfloat16(obj);
  if (bf16_view) source = obj.attr("view")(numpy().attr("uint16"));  // same bytes, a dtype DLPack knows
  bool taken = nb::try_cast(source, a.array, convert);
  // nanobind converts only numpy/torch arrays of integer and float dtypes; a non-contiguous
  // bfloat16 tensor (or another framework's array) with .contiguous() gets it called here.
  if (!taken && convert && nb::hasattr(source, "contiguous")) {
    try {
      taken = nb::try_cast(source.attr("contiguous")(), a.array, false);
    } catch (const nb::python_error&) {
      taken = false;
    }
  }
  if (!taken) {
    const std::string type = nb::type_name(obj.type()).c_str();
    std::string why;
    nb::ndarray<nb::ro> any;  // any device, any layout: says which constraint failed
    if (nb::try_cast(source, any, false)) {
      if (any.device_type() != nb::device::cpu::value) {
        why = " on device type " + std::to_string(any.device_type()) + " (not the CPU)";
        if (any.device_type() == nb::device::cuda::value) {
          why +=
              "; the Python package runs on the CPU only for now (the CUDA backend is in the C++ and C APIs and "
              "the CLI, docs/cuda.md): copy the tensor to the CPU";
        }
      } else if (!convert) {
        why = " that is not C-contiguous or is read-only";
      } else {
        why = " that is not C-contiguous and cannot be copied to a contiguous array";
      }
    }
    if (convert) {
      throw nb::value_error(
          (std::string(what) + " must be a CPU array (numpy, or an object with __dlpack__), got " + type + why)
              .c_str());
    }
    if (nb::isinstance(obj, numpy().attr("ndarray"))) {
      if (!nb::cast<bool>(obj.attr("flags").attr("c_contiguous"))) why = " that is not C-contiguous";
      if (!nb::cast<bool>(obj.attr("flags").attr("writeable"))) why = " that is read-only";
    }
    throw nb::value_error((std::string(what) + " must be a writable, C-contiguous CPU array (numpy, or an object " +
                           "with __dlpack__), got " + type + why + "; it is written in place, so it is never copied")
                              .c_str());
  }
  if (bf16_view) {
    a.dtype = DType::bf16;
    a.dtype_name = "bfloat16";
  } else {
    a.dtype = to_w4a16_dtype(a.array.dtype());
    a.dtype_name = a.dtype ? std::string(w4a16::to_string(*a.dtype)) : dtype_text(a.array.dtype());
  }
  return a;
}

Arg<InArray> input(nb::handle obj, const char* what) { return take_array<InArray>(obj, what, /*convert=*/true); }
Arg<OutArray> output(nb::handle obj, const char* what) { return take_array<OutArray>(obj, what, /*convert=*/false); }

[[noreturn]] void value_error(const std::string& message) { throw nb::value_error(message.c_str()); }

// Activations must already be 16-bit: converting fp32 here would pick a rounding (and fp16 vs
// bf16) behind the caller's back.
DType activation_dtype(const Arg<InArray>& x) {
  if (x.dtype == DType::f16 || x.dtype == DType::bf16) return *x.dtype;
  value_error("x must be float16 or bfloat16 (activations are 16-bit), got " + x.dtype_name +
              "; convert it first, e.g. x.astype(numpy.float16) or x.astype(ml_dtypes.bfloat16) "
              "(torch: x.half() or x.bfloat16())");
}

// ---- Views of a QuantizedWeight's buffers -------------------------------------------------------

// A read-only numpy array over `data` whose base keeps `owner` (the Python QuantizedWeight) alive.
// bf16 is exported as uint16 and re-viewed as ml_dtypes.bfloat16 (still no copy).
nb::object view(nb::handle owner, const void* data, std::initializer_list<size_t> shape, nb::dlpack::dtype dt,
                bool bf16 = false) {
  if (bf16) dt = nb::dtype<uint16_t>();
  nb::object array = nb::ndarray<nb::numpy, nb::ro>(data, shape, owner, {}, dt).cast(nb::rv_policy::reference);
  if (bf16) array = array.attr("view")(bfloat16_dtype());
  return array;
}

nb::object typed_view(nb::handle owner, const void* data, std::initializer_list<size_t> shape, DType dtype) {
  switch (dtype) {
    case DType::f16:
      return view(owner, data, shape, {uint8_t(nb::dlpack::dtype_code::Float), 16, 1});
    case DType::bf16:
      return view(owner, data, shape, nb::dtype<uint16_t>(), /*bf16=*/true);
    case DType::f32:
      break;
  }
  return view(owner, data, shape, nb::dtype<float>());
}

nb::object codes_view(nb::handle self) {
  const auto& w = nb::cast<const QuantizedWeight&>(self);
  return view(self, w.codes().data(), {size_t(w.n()), size_t(w.layout().row_bytes())}, nb::dtype<uint8_t>());
}

nb::object scales_view(nb::handle self) {
  const auto& w = nb::cast<const QuantizedWeight&>(self);
  return typed_view(self, w.scales().data(), {size_t(w.n()), size_t(w.groups())}, w.scale_dtype());
}

nb::object zeros_view(nb::handle self) {
  const auto& w = nb::cast<const QuantizedWeight&>(self);
  const std::initializer_list<size_t> shape = {size_t(w.n()), size_t(w.groups())};
  switch (w.zero_mode()) {
    case w4a16::ZeroMode::sym:
      return nb::none();
    case w4a16::ZeroMode::asym:
      return view(self, w.zeros().data(), shape, nb::dtype<uint8_t>());
    case w4a16::ZeroMode::float_zero:
      return typed_view(self, w.zeros().data(), shape, w.scale_dtype());
  }
  return nb::none();
}

nb::object perm_view(nb::handle self) {
  const auto& w = nb::cast<const QuantizedWeight&>(self);
  if (!w.has_perm()) return nb::none();
  return view(self, w.perm().data(), {size_t(w.k())}, nb::dtype<int32_t>());
}

nb::object bias_view(nb::handle self) {
  const auto& w = nb::cast<const QuantizedWeight&>(self);
  if (!w.has_bias()) return nb::none();
  return typed_view(self, w.bias().data.data(), {size_t(w.n())}, w.bias().dtype);
}

// W as fp32 [N, K] in input-feature order; a new array that owns its buffer.
nb::object dequantize_array(const QuantizedWeight& w) {
  auto* values = new std::vector<float>();
  nb::capsule owner(values, [](void* p) noexcept { delete static_cast<std::vector<float>*>(p); });
  {
    nb::gil_scoped_release release;
    *values = w4a16::dequantize(w);
  }
  return nb::ndarray<nb::numpy, float, nb::ndim<2>>(values->data(), {size_t(w.n()), size_t(w.k())}, owner).cast();
}

std::string repr(const QuantizedWeight& w) {
  return "QuantizedWeight(n=" + std::to_string(w.n()) + ", k=" + std::to_string(w.k()) +
         ", group_size=" + std::to_string(w.group_size()) + ", zero_mode='" +
         std::string(w4a16::to_string(w.zero_mode())) + "', scale_dtype='" +
         std::string(w4a16::to_string(w.scale_dtype())) + "', perm=" + (w.has_perm() ? "True" : "False") +
         ", bias=" + (w.has_bias() ? "True" : "False") + ")";
}

// ---- Entry points -------------------------------------------------------------------------------

QuantizedWeight quantize(nb::handle w_obj, int64_t group_size, std::string_view zero,
                         std::optional<std::string_view> scale_dtype, nb::handle bias_obj) {
  const Arg<InArray> w = input(w_obj, "w");
  if (!w.dtype) {
    value_error("w must be float32, float16 or bfloat16, got " + w.dtype_name +
                " (convert it first, e.g. w.astype(numpy.float32))");
  }
  if (w.ndim() != 2) value_error("w must be 2-D [N, K] (out_features x in_features), got shape " + w.shape());
  w4a16::QuantizeOptions options;
  options.group_size = group_size;
  options.zero_mode = w4a16::parse_zero_mode(zero);
  if (scale_dtype) options.scale_dtype = w4a16::parse_dtype(*scale_dtype);
  std::optional<Arg<InArray>> bias;
  std::optional<w4a16::MatrixRef> bias_ref;
  if (!bias_obj.is_none()) {
    bias = input(bias_obj, "bias");
    if (!bias->dtype) value_error("bias must be float32, float16 or bfloat16, got " + bias->dtype_name);
    if (bias->ndim() != 1 || bias->dim(0) != w.dim(0)) {
      value_error("bias must be 1-D [N] with N=" + std::to_string(w.dim(0)) + ", got shape " + bias->shape());
    }
    bias_ref = w4a16::MatrixRef{bias->array.data(), *bias->dtype, 1, bias->dim(0)};
  }
  const w4a16::MatrixRef w_ref{w.array.data(), *w.dtype, w.dim(0), w.dim(1)};
  nb::gil_scoped_release release;
  return w4a16::quantize(w_ref, options, bias_ref);
}

// QuantizedWeight.from_arrays: a weight from its buffers (the inverse of the codes/scales/zeros/
// perm/bias views), e.g. a state_dict of w4a16.torch.Linear. The arrays' shapes are checked here,
// so that a message names the array; everything else (sizes, finite scales, zeros in [0, 16], perm
// a permutation, the layout) is the C++ constructor's validation. The buffers are copied.
template <typename T>
std::vector<T> copy_elements(const Arg<InArray>& a) {
  std::vector<T> out(a.array.size());
  if (!out.empty()) std::memcpy(out.data(), a.array.data(), out.size() * sizeof(T));
  return out;
}

std::vector<std::byte> copy_bytes(const Arg<InArray>& a) {
  std::vector<std::byte> out(a.array.nbytes());
  if (!out.empty()) std::memcpy(out.data(), a.array.data(), out.size());
  return out;
}

void require_shape(const Arg<InArray>& a, const char* what, std::initializer_list<int64_t> want) {
  bool ok = a.ndim() == want.size();
  size_t i = 0;
  for (int64_t d : want) ok = ok && a.dim(i++) == d;
  if (!ok) {
    const std::vector<int64_t> w(want);
    value_error(std::string(what) + " has shape " + a.shape() + ", expected " + shape_text(w.size(), w.data()));
  }
}

void require_dtype(const Arg<InArray>& a, const char* what, nb::dlpack::dtype want, const char* want_name) {
  if (a.array.dtype() != want) value_error(std::string(what) + " must be " + want_name + ", got " + a.dtype_name);
}

QuantizedWeight quantized_from_arrays(nb::handle codes_obj, nb::handle scales_obj, nb::handle zeros_obj,
                                      nb::handle perm_obj, nb::handle bias_obj, int64_t k, int64_t group_size,
                                      std::string_view zero) {
  const Arg<InArray> codes = input(codes_obj, "codes");
  const Arg<InArray> scales = input(scales_obj, "scales");
  if (codes.ndim() != 2) value_error("codes must be 2-D [N, ceil(K/2)] uint8, got shape " + codes.shape());
  require_dtype(codes, "codes", nb::dtype<uint8_t>(), "uint8");
  w4a16::QuantizedLayout layout;
  layout.n = codes.dim(0);
  layout.k = k;
  layout.group_size = group_size;
  layout.zero_mode = w4a16::parse_zero_mode(zero);
  if (!scales.dtype) value_error("scales must be float16, bfloat16 or float32, got " + scales.dtype_name);
  layout.scale_dtype = *scales.dtype;
  layout.validate();
  const int64_t n = layout.n, groups = layout.groups();
  require_shape(codes, "codes", {n, layout.row_bytes()});
  require_shape(scales, "scales", {n, groups});

  std::vector<std::byte> zeros;
  if (layout.zero_mode == w4a16::ZeroMode::sym) {
    if (!zeros_obj.is_none()) value_error("zeros must be None in sym mode");
  } else {
    if (zeros_obj.is_none()) value_error("zeros are required in " + std::string(zero) + " mode");
    const Arg<InArray> z = input(zeros_obj, "zeros");
    require_shape(z, "zeros", {n, groups});
    if (layout.zero_mode == w4a16::ZeroMode::asym) {
      require_dtype(z, "zeros", nb::dtype<uint8_t>(), "uint8 in asym mode");
    } else if (z.dtype != layout.scale_dtype) {
      value_error("float zeros must have the scales' dtype " + scales.dtype_name + ", got " + z.dtype_name);
    }
    zeros = copy_bytes(z);
  }
  std::vector<int32_t> perm;
  if (!perm_obj.is_none()) {
    const Arg<InArray> p = input(perm_obj, "perm");
    require_shape(p, "perm", {k});
    require_dtype(p, "perm", nb::dtype<int32_t>(), "int32");
    perm = copy_elements<int32_t>(p);
  }
  w4a16::Bias bias;
  if (!bias_obj.is_none()) {
    const Arg<InArray> b = input(bias_obj, "bias");
    if (!b.dtype) value_error("bias must be float16, bfloat16 or float32, got " + b.dtype_name);
    require_shape(b, "bias", {n});
    bias.dtype = *b.dtype;
    bias.data = copy_bytes(b);
  }
  std::vector<uint8_t> code_bytes = copy_elements<uint8_t>(codes);
  std::vector<std::byte> scale_bytes = copy_bytes(scales);
  nb::gil_scoped_release release;
  return QuantizedWeight(layout, std::move(code_bytes), std::move(scale_bytes), std::move(zeros), std::move(perm),
                         std::move(bias));
}

// The weight argument of gemm/plan: a PackedWeight, or a QuantizedWeight (packed per call).
struct WeightArg {
  const PackedWeight* packed = nullptr;
  const QuantizedWeight* quantized = nullptr;
  int64_t n() const { return packed ? packed->n() : quantized->n(); }
  int64_t k() const { return packed ? packed->k() : quantized->k(); }
};

WeightArg weight_arg(nb::handle w) {
  WeightArg a;
  if (nb::isinstance<PackedWeight>(w)) {
    a.packed = &nb::cast<const PackedWeight&>(w);
  } else if (nb::isinstance<QuantizedWeight>(w)) {
    a.quantized = &nb::cast<const QuantizedWeight&>(w);
  } else {
    throw nb::type_error(
        ("w must be a QuantizedWeight, PackedWeight or Linear, got " + std::string(nb::type_name(w.type()).c_str()))
            .c_str());
  }
  return a;
}

w4a16::GemmOptions gemm_options(std::string_view strategy, std::string_view partition, int split_k, int threads) {
  if (split_k < 0) value_error("split_k must be >= 0 (0 = chosen by the planner), got " + std::to_string(split_k));
  if (threads < 0) value_error("threads must be >= 0 (0 = all available CPUs), got " + std::to_string(threads));
  w4a16::GemmOptions o;
  o.strategy = w4a16::parse_strategy(strategy);
  o.partition = w4a16::parse_partition(partition);
  o.split_k = split_k;
  o.threads = threads;
  return o;
}

// y = x * dequant(W)^T (+ bias). x is [M, K] or [K] (one row; y is then [N]). `out`, when given,
// must have y's shape and x's dtype; `out` is None here only when the caller wants a numpy result.
nb::object gemm(nb::handle x_obj, nb::handle w_obj, nb::handle out_obj, std::string_view strategy,
                std::string_view partition, int split_k, int threads) {
  const WeightArg w = weight_arg(w_obj);
  const w4a16::GemmOptions options = gemm_options(strategy, partition, split_k, threads);
  const Arg<InArray> x = input(x_obj, "x");
  const DType act = activation_dtype(x);
  if (x.ndim() != 1 && x.ndim() != 2) value_error("x must be 1-D [K] or 2-D [M, K], got shape " + x.shape());
  const bool one_row = x.ndim() == 1;
  const int64_t m = one_row ? 1 : x.dim(0), k = x.dim(x.ndim() - 1), n = w.n();
  if (k != w.k()) {
    value_error("x has K=" + std::to_string(k) + " (shape " + x.shape() +
                ") but the weight has K=" + std::to_string(w.k()) + " (in_features)");
  }

  nb::object result;
  if (out_obj.is_none()) {
    const nb::object dtype = act == DType::bf16 ? nb::borrow(bfloat16_dtype()) : numpy().attr("float16");
    result =
        one_row ? numpy().attr("empty")(nb::make_tuple(n), dtype) : numpy().attr("empty")(nb::make_tuple(m, n), dtype);
  } else {
    result = nb::borrow(out_obj);
  }
  const Arg<OutArray> y = output(result, "out");
  const std::string want_shape = one_row ? shape_text(1, &n) : shape_text(2, std::vector<int64_t>{m, n}.data());
  if (y.ndim() != x.ndim() || y.dim(0) != (one_row ? n : m) || (!one_row && y.dim(1) != n)) {
    value_error("out has shape " + y.shape() + ", expected " + want_shape + " (x is " + x.shape() +
                ", N=" + std::to_string(n) + ")");
  }
  if (y.dtype != act) value_error("out has dtype " + y.dtype_name + ", expected x's dtype " + x.dtype_name);
  if (m == 0) return result;

  const w4a16::MatrixRef x_ref{x.array.data(), act, m, k};
  const w4a16::MutableMatrixRef y_ref{y.array.data(), act, m, n};
  {
    nb::gil_scoped_release release;
    if (w.packed) {
      w4a16::gemm(x_ref, *w.packed, y_ref, options);
    } else {
      w4a16::gemm(x_ref, *w.quantized, y_ref, options);
    }
  }
  return result;
}

// The PyTorch op's entry (w4a16/torch/__init__.py): the tensors come as addresses, which torch hands over
// in ~0.1 us where DLPack costs ~2 us a tensor (a third of a decode call on a small layer).
// Private and trusting about memory: the caller has checked that x is a contiguous [m, k] CPU
// tensor of the named 16-bit dtype and y a contiguous [m, n] one of the same dtype (or fp32 with
// y_f32: tensor parallelism's partial sums) that does not overlap x, and keeps both alive across
// the call. The sizes are still checked here.
void gemm_ptr(uintptr_t x, bool bf16, int64_t m, int64_t k, const PackedWeight& w, uintptr_t y, bool y_f32,
              std::string_view strategy, std::string_view partition, int split_k, int threads) {
  if (x == 0 || y == 0) value_error("gemm_ptr: null tensor address");
  if (m < 1 || k != w.k()) {
    value_error("gemm_ptr: x is [" + std::to_string(m) + ", " + std::to_string(k) +
                "], the weight has K=" + std::to_string(w.k()));
  }
  const w4a16::GemmOptions options = gemm_options(strategy, partition, split_k, threads);
  const DType act = bf16 ? DType::bf16 : DType::f16;
  const w4a16::MatrixRef x_ref{reinterpret_cast<const void*>(x), act, m, k};
  const w4a16::MutableMatrixRef y_ref{reinterpret_cast<void*>(y), y_f32 ? DType::f32 : act, m, w.n()};
  nb::gil_scoped_release release;
  w4a16::gemm(x_ref, w, y_ref, options);
}

nb::dict plan(int64_t m, nb::handle w_obj, std::string_view dtype, std::string_view strategy,
              std::string_view partition, int split_k, int threads) {
  const WeightArg w = weight_arg(w_obj);
  const w4a16::GemmOptions options = gemm_options(strategy, partition, split_k, threads);
  const DType act = w4a16::parse_dtype(dtype);
  if (act == DType::f32) value_error("dtype must be fp16 or bf16 (activations are 16-bit), got fp32");
  if (m <= 0) value_error("m must be >= 1, got " + std::to_string(m));
  w4a16::GemmPlan p;
  {
    nb::gil_scoped_release release;
    if (w.packed) {
      p = w4a16::plan_gemm(m, *w.packed, act, options);
    } else {
      p = w4a16::plan_gemm(m, w4a16::pack(*w.quantized), act, options);
    }
  }
  nb::dict d;
  d["strategy"] = std::string(w4a16::to_string(p.strategy));
  d["partition"] = std::string(w4a16::to_string(p.partition));
  d["split_k"] = p.split_k;
  d["threads"] = p.threads;
  d["isa"] = p.isa;
  d["kernel"] = p.kernel;
  d["vector_threads"] = p.vector_threads;
  d["x_format"] = std::string(to_string(p.x_format));
  d["workspace_bytes"] = p.workspace_bytes;
  d["predicted_ms"] = p.predicted_s * 1e3;
  d["bound"] = p.bound;
  nb::list terms;
  for (const auto& t : p.breakdown) {
    nb::dict term;
    term["name"] = t.name;
    term["ms"] = t.seconds * 1e3;
    term["overlapped"] = t.overlapped;
    terms.append(term);
  }
  d["breakdown"] = terms;
  d["notes"] = p.notes;
  return d;
}

void save(const std::filesystem::path& path, nb::dict layers) {
  std::vector<std::pair<std::string, const QuantizedWeight*>> list;
  for (auto [key, value] : layers) {
    if (!nb::isinstance<nb::str>(key)) throw nb::type_error("save: layer names must be str");
    if (!nb::isinstance<QuantizedWeight>(value)) {
      throw nb::type_error(("save: layer '" + std::string(nb::str(key).c_str()) + "' is a " +
                            nb::type_name(value.type()).c_str() + ", expected a QuantizedWeight")
                               .c_str());
    }
    list.emplace_back(nb::cast<std::string>(key), &nb::cast<const QuantizedWeight&>(value));
  }
  // `layers` (and so every weight) stays referenced by the caller while the GIL is released.
  nb::gil_scoped_release release;
  w4a16::save_quantized(path, list);
}

void translate_error(const std::exception_ptr& p, void*) {
  try {
    std::rethrow_exception(p);
  } catch (const w4a16::Error& e) {
    PyObject* type = PyExc_RuntimeError;
    switch (e.code()) {
      case w4a16::ErrorCode::invalid_argument:
      case w4a16::ErrorCode::unsupported:
        type = PyExc_ValueError;
        break;
      case w4a16::ErrorCode::format:
        type = g_format_error;
        break;
      case w4a16::ErrorCode::io:
        type = PyExc_OSError;
        break;
      case w4a16::ErrorCode::internal:
        type = PyExc_RuntimeError;
        break;
    }
    PyErr_SetString(type, e.what());
  }
}

}  // namespace

NB_MODULE(_ext, m) {
  m.doc() = "w4a16 C++ bindings; use the w4a16 package, which re-exports this module.";
  m.attr("__version__") = std::string(w4a16::version());
  // Import numpy and ml_dtypes now, under the GIL: a first import inside a function-local static
  // initializer could release the GIL while another thread waits on the static's guard.
  numpy();
  bfloat16_dtype();

  g_format_error = PyErr_NewExceptionWithDoc("w4a16.FormatError",
                                             "A file or tensor does not follow the w4a16 format (a ValueError).",
                                             PyExc_ValueError, nullptr);
  m.attr("FormatError") = nb::handle(g_format_error);
  nb::register_exception_translator(translate_error);

  nb::class_<QuantizedWeight>(m, "QuantizedWeight",
                              "One INT4-quantized linear layer [N, K] (codes, per-group scales and zeros). Immutable.",
                              nb::is_weak_referenceable())
      .def_prop_ro("n", &QuantizedWeight::n, "Output features (rows of W).")
      .def_prop_ro("k", &QuantizedWeight::k, "Input features (columns of W, the reduction).")
      .def_prop_ro("group_size", &QuantizedWeight::group_size)
      .def_prop_ro("groups", &QuantizedWeight::groups, "ceil(K / group_size).")
      .def_prop_ro("zero_mode", [](const QuantizedWeight& w) { return std::string(w4a16::to_string(w.zero_mode())); })
      .def_prop_ro("scale_dtype",
                   [](const QuantizedWeight& w) { return std::string(w4a16::to_string(w.scale_dtype())); })
      .def_prop_ro("codes", &codes_view, "[N, ceil(K/2)] uint8, low nibble = even k (read-only view).")
      .def_prop_ro("scales", &scales_view, "[N, groups] in the scale dtype (read-only view).")
      .def_prop_ro("zeros", &zeros_view, "None (sym), [N, groups] uint8 (asym) or scale dtype (float).")
      .def_prop_ro("perm", &perm_view, "[K] int32 act-order permutation, or None.")
      .def_prop_ro("bias", &bias_view, "[N] bias in its own dtype, or None.")
      .def("dequantize", &dequantize_array, "W as float32 [N, K], in input-feature order (perm undone).")
      .def_static("from_arrays", &quantized_from_arrays, "codes"_a, "scales"_a, "zeros"_a.none() = nb::none(),
                  "perm"_a.none() = nb::none(), "bias"_a.none() = nb::none(), nb::kw_only(), "k"_a, "group_size"_a,
                  "zero"_a = "sym",
                  "A weight from its buffers (the inverse of the views; copied and validated): codes [N, ceil(K/2)] "
                  "uint8, scales [N, groups], zeros None (sym) / uint8 (asym) / scale dtype (float), perm [K] int32 "
                  "or None, bias [N] or None.")
      .def("__repr__", &repr);

  nb::class_<PackedWeight>(m, "PackedWeight", "A weight in the CPU kernels' layout (pack once, gemm many times).",
                           nb::is_weak_referenceable())
      .def_prop_ro("n", &PackedWeight::n)
      .def_prop_ro("k", &PackedWeight::k)
      .def_prop_ro("group_size", [](const PackedWeight& w) { return w.layout().group_size; })
      .def_prop_ro("is_quantized", &PackedWeight::is_quantized)
      .def(
          "unpack", [](const PackedWeight& w) { return w4a16::unpack(w); },
          "The QuantizedWeight this was packed from, bit for bit.")
      .def("__repr__", [](const PackedWeight& w) {
        return "PackedWeight(n=" + std::to_string(w.n()) + ", k=" + std::to_string(w.k()) +
               ", group_size=" + std::to_string(w.layout().group_size) + ")";
      });

  m.def("quantize", &quantize, "w"_a, "group_size"_a = 128, "zero"_a = "sym", "scale_dtype"_a = nb::none(),
        "bias"_a = nb::none());
  m.def(
      "load",
      [](const std::filesystem::path& path, std::string_view layer) {
        nb::gil_scoped_release release;
        return w4a16::load_quantized(path, layer);
      },
      "path"_a, "layer"_a);
  m.def(
      "layers",
      [](const std::filesystem::path& path) {
        nb::gil_scoped_release release;
        return w4a16::list_quantized(path);
      },
      "path"_a);
  m.def("save", &save, "path"_a, "layers"_a);
  m.def(
      "convert",
      [](const std::filesystem::path& src, const std::filesystem::path& dst, nb::object progress) {
        w4a16::ConvertProgress callback;
        if (!progress.is_none()) {
          callback = [&progress](int64_t index, int64_t count, std::string_view name, std::string_view action) {
            nb::gil_scoped_acquire acquire;  // the conversion runs without the GIL
            progress(index, count, nb::str(name.data(), name.size()), nb::str(action.data(), action.size()));
          };
        }
        w4a16::ConvertReport report;
        {
          nb::gil_scoped_release release;
          report = w4a16::convert(src, dst, callback);
        }
        nb::dict out;
        out["source_format"] = report.source_format;
        out["quantized_layers"] = report.quantized_layers;
        out["copied_tensors"] = report.copied_tensors;
        out["dequantized_tensors"] = report.dequantized_tensors;
        out["raw_tensors"] = report.raw_tensors;
        nb::dict kinds;
        for (const auto& [kind, count] : report.layers_by_kind) kinds[nb::str(kind.c_str())] = count;
        out["layers_by_kind"] = kinds;
        out["warnings"] = report.warnings;
        return out;
      },
      "src"_a, "dst"_a, "progress"_a = nb::none(),
      "Converts a GPTQ / AWQ / compressed-tensors checkpoint directory or a GGUF file into one w4a16 safetensors "
      "file; returns a report dict. progress(index, count, name, action) is called per tensor.");
  m.def(
      "pack",
      [](const QuantizedWeight& w) {
        nb::gil_scoped_release release;
        return w4a16::pack(w);
      },
      "w"_a);
  m.def("gemm", &gemm, "x"_a, "w"_a, "out"_a.none() = nb::none(), "strategy"_a = "auto", "partition"_a = "auto",
        "split_k"_a = 0, "threads"_a = 0);
  m.def("_gemm_ptr", &gemm_ptr);
  // The torch op's weights (linear_registry.hpp): python/w4a16/torch keeps `w` alive while registered.
  m.def("_register_linear", [](int64_t handle, const PackedWeight& w, std::string_view strategy,
                               std::string_view partition, int split_k, int threads) {
    const w4a16::GemmOptions options = gemm_options(strategy, partition, split_k, threads);
    nb::gil_scoped_release release;  // waits for the kernel calls using the old entry
    w4a16::python::register_linear(handle, &w, options);
  });
  m.def("_unregister_linear", [](int64_t handle) {
    nb::gil_scoped_release release;
    w4a16::python::unregister_linear(handle);
  });
  m.def("_kernel_table", [] { return nb::capsule(w4a16::python::kernel_table(), W4A16_KERNEL_TABLE_CAPSULE); });
  m.def("plan", &plan, "m"_a, "w"_a, "dtype"_a = "bf16", "strategy"_a = "auto", "partition"_a = "auto", "split_k"_a = 0,
        "threads"_a = 0);
  m.def(
      "set_isa", [](std::string_view name) { w4a16::set_isa_cap(name); }, "name"_a);
  m.def("active_isa", [] { return std::string(w4a16::active_isa()); });
  m.def("supported_isas", &w4a16::supported_isas);
  m.def(
      "set_worker_spin_us",
      [](int us) {
        if (us < 0 || us > 100000) value_error("microseconds must be in [0, 100000], got " + std::to_string(us));
        w4a16::set_worker_spin_us(us);
      },
      "microseconds"_a);
  m.def("worker_spin_us", &w4a16::worker_spin_us);
}
