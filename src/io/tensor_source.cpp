// TensorSource implementations and the typed accessors the importers share.
#include "io/tensor_source.hpp"

#include <fmt/ranges.h>

#include <algorithm>
#include <cstring>

#include "common/check.hpp"

namespace w4a16::io {

int64_t TensorView::numel() const {
  int64_t n = 1;
  for (const int64_t d : shape) {
    const auto product = checked_mul(n, d);
    if (!product) fail(ErrorCode::format, "tensor '{}': shape {} overflows", name, fmt::join(shape, "x"));
    n = *product;
  }
  return n;
}

void TensorMap::add(TensorView view) {
  const auto bytes = checked_mul(view.numel(), int64_t(st_dtype_size(view.dtype)));
  if (!bytes || uint64_t(*bytes) != view.data.size()) {
    fail(ErrorCode::format, "tensor '{}': {} bytes for shape [{}] of {}", view.name, view.data.size(),
         fmt::join(view.shape, ", "), st_dtype_name(view.dtype));
  }
  const std::string name = view.name;
  if (!views_.emplace(name, std::move(view)).second) fail(ErrorCode::format, "tensor '{}' is present twice", name);
}

const TensorView* TensorMap::find(std::string_view name) const {
  const auto it = views_.find(name);
  return it == views_.end() ? nullptr : &it->second;
}

std::vector<std::string> TensorMap::names() const {
  std::vector<std::string> out;
  out.reserve(views_.size());
  for (const auto& [name, view] : views_) out.push_back(name);
  return out;
}

SafetensorsSource::SafetensorsSource(SafetensorsFile file) : file_(std::make_unique<SafetensorsFile>(std::move(file))) {
  for (const TensorInfo& t : file_->tensors()) map_.add({t.name, t.dtype, t.shape, file_->data(t)});
}

const TensorView& require_tensor(const TensorSource& source, const std::string& name) {
  const TensorView* t = source.find(name);
  if (t == nullptr) fail(ErrorCode::format, "missing tensor '{}'", name);
  return *t;
}

void require_dtype(const TensorView& t, std::initializer_list<StDType> allowed) {
  for (const StDType d : allowed) {
    if (t.dtype == d) return;
  }
  std::vector<std::string_view> names;
  for (const StDType d : allowed) names.push_back(st_dtype_name(d));
  fail(ErrorCode::format, "tensor '{}': dtype {} (expected {})", t.name, st_dtype_name(t.dtype),
       fmt::join(names, " or "));
}

void require_rank(const TensorView& t, size_t rank) {
  if (t.shape.size() != rank) {
    fail(ErrorCode::format, "tensor '{}': shape [{}] has rank {} (expected {})", t.name, fmt::join(t.shape, ", "),
         t.shape.size(), rank);
  }
}

void require_shape(const TensorView& t, std::initializer_list<int64_t> expected, std::string_view what) {
  if (!std::equal(t.shape.begin(), t.shape.end(), expected.begin(), expected.end())) {
    fail(ErrorCode::format, "tensor '{}': shape [{}] (expected [{}]: {})", t.name, fmt::join(t.shape, ", "),
         fmt::join(expected, ", "), what);
  }
}

int32_t load_i32(const TensorView& t, int64_t i) {
  int32_t v;
  std::memcpy(&v, t.data.data() + size_t(i) * 4, 4);
  return v;
}

std::vector<int64_t> load_integers(const TensorView& t) {
  require_dtype(t, {StDType::I32, StDType::I64});
  const size_t n = size_t(t.numel());
  std::vector<int64_t> out(n);
  for (size_t i = 0; i < n; ++i) {
    if (t.dtype == StDType::I32) {
      int32_t v;
      std::memcpy(&v, t.data.data() + i * 4, 4);
      out[i] = v;
    } else {
      std::memcpy(&out[i], t.data.data() + i * 8, 8);
    }
  }
  return out;
}

std::vector<uint32_t> load_words(const TensorView& t) {
  require_dtype(t, {StDType::I32});
  std::vector<uint32_t> out(static_cast<size_t>(t.numel()));
  if (!out.empty()) std::memcpy(out.data(), t.data.data(), out.size() * 4);
  return out;
}

DType floating_dtype(const TensorView& t) {
  require_dtype(t, {StDType::F16, StDType::BF16, StDType::F32});
  return *to_dtype(t.dtype);
}

std::vector<int32_t> act_order_permutation(const std::vector<int64_t>& g_idx, int64_t k, int64_t group_size,
                                           int64_t groups, std::string_view tensor) {
  if (int64_t(g_idx.size()) != k)
    fail(ErrorCode::format, "tensor '{}': {} entries for K = {}", tensor, g_idx.size(), k);
  bool identity = true;
  std::vector<int64_t> count(size_t(groups), 0);
  for (int64_t i = 0; i < k; ++i) {
    const int64_t group = g_idx[size_t(i)];
    if (group < 0 || group >= groups) {
      fail(ErrorCode::format, "tensor '{}': g_idx[{}] = {} is outside [0, {})", tensor, i, group, groups);
    }
    identity = identity && group == i / group_size;
    ++count[size_t(group)];
  }
  if (identity) return {};
  // Uniform groups: group j must hold min(g, K - j*g) features, so that after the sort it
  // occupies exactly [j*g, min((j+1)*g, K)).
  for (int64_t j = 0; j < groups; ++j) {
    const int64_t expected = std::min(group_size, k - j * group_size);
    if (count[size_t(j)] != expected) {
      fail(ErrorCode::format,
           "tensor '{}': act-order group {} holds {} input features, but uniform groups of {} need {} "
           "(w4a16 stores act-order as a permutation plus contiguous groups)",
           tensor, j, count[size_t(j)], group_size, expected);
    }
  }
  // Stable counting sort by group.
  std::vector<int64_t> next(size_t(groups), 0);
  for (int64_t j = 0; j < groups; ++j) next[size_t(j)] = j * group_size;
  std::vector<int32_t> perm(static_cast<size_t>(k));
  for (int64_t i = 0; i < k; ++i) perm[size_t(next[size_t(g_idx[size_t(i)])]++)] = int32_t(i);
  return perm;
}

Bias read_bias(const TensorSource& source, std::string_view module, int64_t n) {
  const TensorView* t = source.find(std::string(module) + ".bias");
  if (t == nullptr) return {};
  Bias bias;
  bias.dtype = floating_dtype(*t);
  require_shape(*t, {n}, "[N]");
  bias.data.assign(t->data.begin(), t->data.end());
  return bias;
}

std::vector<std::byte> transpose_elements(const TensorView& t) {
  require_rank(t, 2);
  const size_t rows = size_t(t.shape[0]), cols = size_t(t.shape[1]), size = st_dtype_size(t.dtype);
  std::vector<std::byte> out(t.data.size());
  for (size_t r = 0; r < rows; ++r) {
    for (size_t c = 0; c < cols; ++c) {
      std::memcpy(out.data() + (c * rows + r) * size, t.data.data() + (r * cols + c) * size, size);
    }
  }
  return out;
}

QuantizedWeight assemble_weight(std::string_view module, int64_t n, int64_t k, int64_t group_size, DType scale_dtype,
                                std::vector<uint8_t> codes, std::vector<std::byte> scales, std::vector<uint8_t> zeros,
                                std::vector<int32_t> perm, Bias bias) {
  const bool sym = std::all_of(zeros.begin(), zeros.end(), [](uint8_t z) { return z == 8; });
  QuantizedLayout layout{.n = n,
                         .k = k,
                         .group_size = group_size,
                         .zero_mode = sym ? ZeroMode::sym : ZeroMode::asym,
                         .scale_dtype = scale_dtype};
  std::vector<std::byte> zero_bytes;
  if (!sym) {
    zero_bytes.resize(zeros.size());
    std::memcpy(zero_bytes.data(), zeros.data(), zeros.size());
  }
  try {
    return QuantizedWeight(layout, std::move(codes), std::move(scales), std::move(zero_bytes), std::move(perm),
                           std::move(bias));
  } catch (const Error& e) {
    fail(ErrorCode::format, "module '{}': {}", module, e.what());
  }
}

}  // namespace w4a16::io
