// Small helpers the subcommands share: viewing safetensors tensors as matrices.
#pragma once

#include <cstring>
#include <string>
#include <vector>

#include "common/check.hpp"
#include "io/safetensors.hpp"

namespace w4a16::cli {

// A 2-D floating tensor of a file as a MatrixRef. Tensor data in safetensors need not be aligned
// to its element size; misaligned data is copied into `storage` so that kernels never see an
// unaligned pointer.
inline MatrixRef matrix_of(const io::SafetensorsFile& file, const io::TensorInfo& t, std::vector<std::byte>& storage) {
  const auto dtype = io::to_dtype(t.dtype);
  if (!dtype || t.shape.size() != 2) {
    fail(ErrorCode::invalid_argument, "tensor '{}' is {} with {} dimensions; expected a 2-D F16, BF16 or F32 tensor",
         t.name, io::st_dtype_name(t.dtype), t.shape.size());
  }
  if (t.shape[0] == 0 || t.shape[1] == 0) fail(ErrorCode::invalid_argument, "tensor '{}' is empty", t.name);
  auto bytes = file.data(t);
  const void* data = bytes.data();
  if (reinterpret_cast<uintptr_t>(data) % dtype_size(*dtype) != 0) {
    storage.assign(bytes.begin(), bytes.end());
    data = storage.data();
  }
  return {data, *dtype, t.shape[0], t.shape[1]};
}

}  // namespace w4a16::cli
