// A read-only view of named tensors that the checkpoint importers take, so that one importer
// serves a single safetensors file, a sharded Hugging Face checkpoint (io/hf_checkpoint.hpp) or a
// test that builds its tensors in memory.
//
// Also the typed accessors every importer uses: look a tensor up, check its dtype and shape, and
// read int32 / floating elements from bytes that may be unaligned (safetensors offsets are not
// aligned). Every failure is Error(format) naming the tensor.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "io/safetensors.hpp"

namespace w4a16::io {

struct TensorView {
  std::string name;
  StDType dtype = StDType::U8;
  std::vector<int64_t> shape;
  std::span<const std::byte> data;  // numel * st_dtype_size(dtype) bytes, little-endian, C order
  int64_t numel() const;
};

class TensorSource {
 public:
  virtual ~TensorSource() = default;
  virtual const TensorView* find(std::string_view name) const = 0;  // nullptr when absent
  virtual std::vector<std::string> names() const = 0;               // sorted
};

// The simplest source: a name -> view map whose bytes someone else keeps alive.
class TensorMap : public TensorSource {
 public:
  // Throws Error(format) when the name is already present or the bytes do not match the shape.
  void add(TensorView view);
  const TensorView* find(std::string_view name) const override;
  std::vector<std::string> names() const override;
  size_t size() const { return views_.size(); }

 private:
  std::map<std::string, TensorView, std::less<>> views_;
};

// Every tensor of one safetensors file (which the source keeps open).
class SafetensorsSource : public TensorSource {
 public:
  explicit SafetensorsSource(SafetensorsFile file);
  static SafetensorsSource open(const std::filesystem::path& path) {
    return SafetensorsSource(SafetensorsFile::open(path));
  }
  const TensorView* find(std::string_view name) const override { return map_.find(name); }
  std::vector<std::string> names() const override { return map_.names(); }

 private:
  std::unique_ptr<SafetensorsFile> file_;  // heap-held so the views' spans survive moves
  TensorMap map_;
};

// --- typed access for importers ----------------------------------------------------------------

// The tensor, or Error(format) "missing tensor '<name>'".
const TensorView& require_tensor(const TensorSource& source, const std::string& name);
// Error(format) unless the tensor's dtype is one of `allowed`.
void require_dtype(const TensorView& t, std::initializer_list<StDType> allowed);
// Error(format) unless the tensor has exactly this shape; `what` explains where it comes from.
void require_shape(const TensorView& t, std::initializer_list<int64_t> expected, std::string_view what);
// Error(format) unless the tensor has this rank.
void require_rank(const TensorView& t, size_t rank);

// Element i of an I32 tensor (memcpy: the bytes may be unaligned).
int32_t load_i32(const TensorView& t, int64_t i);
// Every element of an I32 or I64 tensor as int64.
std::vector<int64_t> load_integers(const TensorView& t);
// Every element of an I32 tensor, as uint32 bit patterns (packed nibbles).
std::vector<uint32_t> load_words(const TensorView& t);
// The floating dtype of a scale / bias tensor: F16, BF16 or F32, otherwise Error(format).
DType floating_dtype(const TensorView& t);

// --- shared by the importers (import_gptq, import_awq, import_compressed_tensors) ---------------

// Nibble i (bits 4i..4i+3) of a packed 32-bit word.
inline uint8_t nibble(uint32_t word, int i) { return uint8_t((word >> (4 * i)) & 0xFu); }

// Act-order: from g_idx [K] (the group of each input feature k, each in [0, groups)) to the
// permutation that makes groups contiguous: a stable argsort of g_idx, so stored column j holds
// input feature perm[j] (QuantizedWeight::perm). Returns {} when g_idx[k] == k / g everywhere
// (no reordering needed). Error(format) naming `tensor` when a value is out of range, or when the
// sorted groups are not exactly [j*g, min((j+1)*g, K)): QuantizedWeight's groups are uniform.
std::vector<int32_t> act_order_permutation(const std::vector<int64_t>& g_idx, int64_t k, int64_t group_size,
                                           int64_t groups, std::string_view tensor);

// The optional `<module>.bias` [N] (F16, BF16 or F32, kept as is); {} when absent.
Bias read_bias(const TensorSource& source, std::string_view module, int64_t n);

// A [rows, cols] floating tensor's bytes transposed to [cols, rows] (GPTQ/AWQ scales [G, N] ->
// QuantizedWeight's [N, G]).
std::vector<std::byte> transpose_elements(const TensorView& t);

// Builds the QuantizedWeight from integer zeros z [N, G] in [0, 16]: ZeroMode::sym when every z is
// 8 (the same values, (q - 8) * s), asym otherwise. A failed validation (a non-finite scale, say)
// becomes Error(format) naming the module.
QuantizedWeight assemble_weight(std::string_view module, int64_t n, int64_t k, int64_t group_size, DType scale_dtype,
                                std::vector<uint8_t> codes, std::vector<std::byte> scales, std::vector<uint8_t> zeros,
                                std::vector<int32_t> perm, Bias bias);

}  // namespace w4a16::io
