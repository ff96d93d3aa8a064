// GGUF reading (memory-mapped, fully validated): the container llama.cpp / ggml models ship in.
//
// File layout (all little-endian; docs/formats.md, "GGUF import"):
//
//   offset 0   u32 magic            "GGUF" = bytes 47 47 55 46
//   offset 4   u32 version          3 (2 has the same layout and is read too; 1 used u32 counts)
//   offset 8   u64 tensor_count
//   offset 16  u64 kv_count
//   offset 24  kv_count x          { string key; u32 value_type; value }
//              tensor_count x      { string name; u32 n_dims; u64 dims[n_dims]; u32 ggml_type; u64 offset }
//              zero padding up to a multiple of `general.alignment` (default 32): the data section starts here
//              tensor data, each at data_start + offset (offset a multiple of the alignment)
//
//   string = u64 byte length, then the bytes (no terminator)
//   value  = u8 | i8 | u16 | i16 | u32 | i32 | f32 | bool (1 byte, 0 or 1) | string | u64 | i64 | f64
//          | array = { u32 element_type; u64 count; count elements of element_type }
//
// dims[0] is the fastest-moving dimension: a linear layer's weight W [N, K] has dims = {K, N}.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "w4a16/w4a16.hpp"

namespace w4a16::io {

class MappedFile;  // io/mapped_file.hpp

// ---------------------------------------------------------------------------------------------
// ggml tensor types (ggml.h `enum ggml_type`; sizes from ggml-common.h / gguf-py GGML_QUANT_SIZES)
// ---------------------------------------------------------------------------------------------

enum class GgmlType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  BF16 = 30,
};

struct GgmlTypeInfo {
  GgmlType type;
  std::string_view name;  // "Q4_0", ...
  uint32_t block_size;    // elements per block along dims[0] (1 for plain types)
  uint32_t block_bytes;   // bytes per block
};

// The row of a known type id, or nullptr (ids 4/5 were the removed Q4_2/Q4_3; IQ*, TQ*, MXFP4 are not read).
const GgmlTypeInfo* ggml_type_info(uint32_t id);
std::string_view ggml_type_name(GgmlType type);

// ---------------------------------------------------------------------------------------------
// Metadata values
// ---------------------------------------------------------------------------------------------

enum class GgufValueType : uint32_t {
  uint8 = 0,
  int8 = 1,
  uint16 = 2,
  int16 = 3,
  uint32 = 4,
  int32 = 5,
  float32 = 6,
  boolean = 7,
  string = 8,
  array = 9,
  uint64 = 10,
  int64 = 11,
  float64 = 12,
};

std::string_view gguf_value_type_name(GgufValueType type);  // "uint8", ..., "array"
size_t gguf_scalar_size(GgufValueType type);                // bytes of a fixed-size scalar; 0 for string/array

// One metadata value. Strings and arrays of fixed-size scalars are views into the file's bytes
// (nothing is copied); arrays of strings keep one view per element, arrays of arrays one
// GgufValue per element. Everything stays valid as long as the GgufFile does.
struct GgufValue {
  GgufValueType type = GgufValueType::uint8;
  uint64_t bits = 0;      // fixed-size scalar: its little-endian bytes, zero-extended (f32/f64 as their bit pattern)
  std::string_view text;  // string

  // Arrays.
  GgufValueType element_type = GgufValueType::uint8;
  uint64_t count = 0;                     // number of elements
  std::span<const std::byte> elements;    // fixed-size elements: count x size bytes, as in the file
  std::vector<std::string_view> strings;  // string elements
  std::vector<GgufValue> arrays;          // array elements (nesting depth <= kGgufMaxArrayDepth)

  bool is_array() const { return type == GgufValueType::array; }
  // Typed reads of a scalar; nullopt when the type does not fit the request.
  std::optional<uint64_t> as_uint64() const;  // integer types holding a value >= 0
  std::optional<int64_t> as_int64() const;    // integer types holding a value in int64 range
  std::optional<double> as_double() const;    // float32, float64 and integer types
  std::optional<bool> as_bool() const;
  std::optional<std::string_view> as_string() const;
  // Element i (< count) of an array of fixed-size scalars or strings, as a scalar value.
  GgufValue element(uint64_t i) const;
};

struct GgufKeyValue {
  std::string_view key;  // view into the file
  GgufValue value;
};

// ---------------------------------------------------------------------------------------------
// Tensors
// ---------------------------------------------------------------------------------------------

inline constexpr uint32_t kGgufMaxDims = 4;  // GGML_MAX_DIMS

struct GgufTensor {
  std::string name;
  GgmlType type = GgmlType::F32;
  uint32_t n_dims = 0;
  std::array<int64_t, kGgufMaxDims> dims = {1, 1, 1, 1};  // dims[0] fastest; unused entries are 1
  uint64_t offset = 0;                                    // from the start of the data section
  uint64_t nbytes = 0;
  std::span<const std::byte> data;  // [nbytes] inside the file

  int64_t numel() const { return dims[0] * dims[1] * dims[2] * dims[3]; }  // checked at parse time
};

// ---------------------------------------------------------------------------------------------
// Limits (docs/formats.md, "GGUF import"): what real files need, so that a hostile header cannot
// make the reader hold more than a small multiple of its size. Counts are also bounded by the
// bytes left in the file (every entry takes at least a few bytes) before anything is reserved.
// ---------------------------------------------------------------------------------------------

inline constexpr uint64_t kGgufMaxTensors = uint64_t(1) << 20;  // 1,048,576 tensor infos
inline constexpr uint64_t kGgufMaxKeys = uint64_t(1) << 20;     // 1,048,576 metadata keys
inline constexpr uint64_t kGgufMaxNameBytes = 65535;            // a key or tensor name
inline constexpr uint32_t kGgufMaxArrayDepth = 8;               // arrays inside arrays
// The metadata rendered to JSON (convert keeps it in the output's safetensors header, itself capped
// at 100 MB): a real model's, tokenizer included, is 1 to 10 MB (Llama 3's 128k-token vocabulary
// and merges: about 5 MB).
inline constexpr uint64_t kGgufMaxMetadataJsonBytes = uint64_t(32) << 20;
inline constexpr uint64_t kGgufDefaultAlignment = 32;

// A validated GGUF file. open() memory-maps the file; parse() works on bytes already in memory
// (the caller keeps them alive) and is what the fuzzer drives. Both throw Error(ErrorCode::format)
// naming the file and the offending key or tensor for malformed content, Error(ErrorCode::io) when
// the file cannot be read; nothing is returned for a file that fails any check.
class GgufFile {
 public:
  static GgufFile open(const std::filesystem::path& path);
  static GgufFile parse(std::span<const std::byte> bytes);

  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }  // file offset of the data section

  const std::vector<GgufKeyValue>& metadata() const { return metadata_; }  // in file order
  const GgufValue* find_metadata(std::string_view key) const;              // nullptr when absent
  const std::vector<GgufTensor>& tensors() const { return tensors_; }      // in file order
  const GgufTensor* find(std::string_view name) const;                     // nullptr when absent

  // All metadata as one JSON object {key: value} in file order: integers and bools as JSON
  // numbers and booleans, floats in their shortest round-trip form (NaN/Inf as the strings "NaN",
  // "Infinity", "-Infinity"), strings with invalid UTF-8 replaced by U+FFFD, arrays (of any size,
  // e.g. the tokenizer vocabulary) as JSON arrays. Bounded: a rendering that would exceed
  // `max_bytes` stops there with Error(format) naming the key it was rendering, so memory stays a
  // small multiple of the cap whatever the file holds (a 50 MB bool array renders to 300 MB).
  std::string metadata_json(uint64_t max_bytes = kGgufMaxMetadataJsonBytes) const;

  const std::string& source() const { return source_; }  // "'<path>'" or "(memory)"

  GgufFile(GgufFile&&) noexcept;
  GgufFile& operator=(GgufFile&&) noexcept;
  ~GgufFile();

 private:
  GgufFile() = default;
  static GgufFile parse_bytes(std::span<const std::byte> bytes, std::string_view source);
  std::unique_ptr<MappedFile> mapping_;  // owns the mmap when opened from a path
  uint32_t version_ = 0;
  uint64_t alignment_ = kGgufDefaultAlignment;
  uint64_t data_offset_ = 0;
  std::vector<GgufKeyValue> metadata_;
  std::vector<uint32_t> keys_by_name_;  // positions in metadata_, sorted by key
  std::vector<GgufTensor> tensors_;
  std::vector<uint32_t> tensors_by_name_;  // positions in tensors_, sorted by name
  std::string source_;
};

}  // namespace w4a16::io
