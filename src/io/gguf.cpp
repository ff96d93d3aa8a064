// GGUF reading (see gguf.hpp for the byte layout).
//
// The reader trusts nothing in the file: every count, length, dimension and offset is checked
// against the bytes that remain before it is used, and all arithmetic on file-provided numbers is
// overflow-checked. What is accepted (docs/formats.md, "GGUF import"):
//   - magic "GGUF", version 3 or 2 (little-endian; a byte-swapped version is a big-endian file);
//   - tensor and key counts <= the limits in gguf.hpp and small enough that the entries could fit
//     in the bytes left (so nothing is reserved from an unchecked count);
//   - keys and tensor names of 1..kGgufMaxNameBytes bytes, no key or name repeated;
//   - values of the 13 GGUF types; bools 0 or 1; arrays nested at most kGgufMaxArrayDepth deep;
//   - general.alignment, when present, an integer power of two in [1, 2^31];
//   - tensor infos with n_dims <= 4, dims < 2^63 whose product fits in int64, a known ggml type,
//     dims[0] a multiple of the type's block size, an offset that is a multiple of the alignment;
//   - every tensor's bytes inside the data section, and no two tensors overlapping.
#include "io/gguf.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>
#include <tuple>

#include "common/check.hpp"
#include "io/mapped_file.hpp"

static_assert(std::endian::native == std::endian::little,
              "GGUF is read as little-endian; big-endian hosts unsupported");

namespace w4a16::io {

// ---------------------------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------------------------

namespace {

// Block sizes and bytes per block from ggml-common.h (QK_K = 256, K_SCALE_SIZE = 12):
constexpr std::array<GgmlTypeInfo, 20> kGgmlTypes = {{
    {GgmlType::F32, "F32", 1, 4},       {GgmlType::F16, "F16", 1, 2},
    {GgmlType::Q4_0, "Q4_0", 32, 18},    // fp16 d, qs[16]
    {GgmlType::Q4_1, "Q4_1", 32, 20},    // fp16 d, fp16 m, qs[16]
    {GgmlType::Q5_0, "Q5_0", 32, 22},    // fp16 d, qh[4], qs[16]
    {GgmlType::Q5_1, "Q5_1", 32, 24},    // fp16 d, fp16 m, qh[4], qs[16]
    {GgmlType::Q8_0, "Q8_0", 32, 34},    // fp16 d, int8 qs[32]
    {GgmlType::Q8_1, "Q8_1", 32, 36},    // fp16 d, fp16 s, int8 qs[32]
    {GgmlType::Q2_K, "Q2_K", 256, 84},   // scales[16], qs[64], fp16 d, fp16 dmin
    {GgmlType::Q3_K, "Q3_K", 256, 110},  // hmask[32], qs[64], scales[12], fp16 d
    {GgmlType::Q4_K, "Q4_K", 256, 144},  // fp16 d, fp16 dmin, scales[12], qs[128]
    {GgmlType::Q5_K, "Q5_K", 256, 176},  // fp16 d, fp16 dmin, scales[12], qh[32], qs[128]
    {GgmlType::Q6_K, "Q6_K", 256, 210},  // ql[128], qh[64], int8 scales[16], fp16 d
    {GgmlType::Q8_K, "Q8_K", 256, 292},  // f32 d, int8 qs[256], int16 bsums[16]
    {GgmlType::I8, "I8", 1, 1},         {GgmlType::I16, "I16", 1, 2},
    {GgmlType::I32, "I32", 1, 4},       {GgmlType::I64, "I64", 1, 8},
    {GgmlType::F64, "F64", 1, 8},       {GgmlType::BF16, "BF16", 1, 2},
}};

constexpr std::array<std::string_view, 13> kValueTypeNames = {"uint8",  "int8",    "uint16", "int16",  "uint32",
                                                              "int32",  "float32", "bool",   "string", "array",
                                                              "uint64", "int64",   "float64"};
constexpr std::array<uint8_t, 13> kValueTypeSizes = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

bool valid_value_type(uint32_t id) { return id < kValueTypeNames.size(); }

bool is_signed_integer(GgufValueType t) {
  return t == GgufValueType::int8 || t == GgufValueType::int16 || t == GgufValueType::int32 ||
         t == GgufValueType::int64;
}
bool is_unsigned_integer(GgufValueType t) {
  return t == GgufValueType::uint8 || t == GgufValueType::uint16 || t == GgufValueType::uint32 ||
         t == GgufValueType::uint64;
}

// The zero-extended bits of a signed scalar, sign-extended to 64 bits.
int64_t sign_extend(GgufValueType t, uint64_t bits) {
  const unsigned width = unsigned(gguf_scalar_size(t)) * 8;
  if (width == 64) return int64_t(bits);
  const uint64_t sign = uint64_t(1) << (width - 1);
  return int64_t((bits ^ sign) - sign);
}

}  // namespace

const GgmlTypeInfo* ggml_type_info(uint32_t id) {
  for (const auto& entry : kGgmlTypes) {
    if (uint32_t(entry.type) == id) return &entry;
  }
  return nullptr;
}

std::string_view ggml_type_name(GgmlType type) {
  const GgmlTypeInfo* info = ggml_type_info(uint32_t(type));
  return info != nullptr ? info->name : std::string_view("unknown");
}

std::string_view gguf_value_type_name(GgufValueType type) {
  return valid_value_type(uint32_t(type)) ? kValueTypeNames[size_t(type)] : std::string_view("unknown");
}

size_t gguf_scalar_size(GgufValueType type) {
  return valid_value_type(uint32_t(type)) ? kValueTypeSizes[size_t(type)] : 0;
}

// ---------------------------------------------------------------------------------------------
// GgufValue
// ---------------------------------------------------------------------------------------------

std::optional<uint64_t> GgufValue::as_uint64() const {
  if (is_unsigned_integer(type)) return bits;
  if (is_signed_integer(type)) {
    const int64_t v = sign_extend(type, bits);
    if (v >= 0) return uint64_t(v);
  }
  return std::nullopt;
}

std::optional<int64_t> GgufValue::as_int64() const {
  if (is_signed_integer(type)) return sign_extend(type, bits);
  if (is_unsigned_integer(type) && bits <= uint64_t(INT64_MAX)) return int64_t(bits);
  return std::nullopt;
}

std::optional<double> GgufValue::as_double() const {
  if (type == GgufValueType::float32) return double(std::bit_cast<float>(uint32_t(bits)));
  if (type == GgufValueType::float64) return std::bit_cast<double>(bits);
  if (is_signed_integer(type)) return double(sign_extend(type, bits));
  if (is_unsigned_integer(type)) return double(bits);
  return std::nullopt;
}

std::optional<bool> GgufValue::as_bool() const {
  if (type == GgufValueType::boolean) return bits != 0;
  return std::nullopt;
}

std::optional<std::string_view> GgufValue::as_string() const {
  if (type == GgufValueType::string) return text;
  return std::nullopt;
}

GgufValue GgufValue::element(uint64_t i) const {
  if (type != GgufValueType::array || i >= count) {
    fail(ErrorCode::invalid_argument, "GgufValue::element({}): not an array element (type {}, {} elements)", i,
         gguf_value_type_name(type), count);
  }
  GgufValue out;
  out.type = element_type;
  if (element_type == GgufValueType::string) {
    out.text = strings[size_t(i)];
  } else if (element_type == GgufValueType::array) {
    fail(ErrorCode::invalid_argument, "GgufValue::element({}): nested arrays are read through `arrays`", i);
  } else {
    const size_t size = gguf_scalar_size(element_type);
    std::memcpy(&out.bits, elements.data() + size_t(i) * size, size);  // little-endian host
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The parser
// ---------------------------------------------------------------------------------------------

namespace {

// Smallest encodings, used to bound a count by the bytes left before anything is reserved.
constexpr uint64_t kMinKeyValueBytes = 8 + 1 + 4 + 1;        // key length, 1-byte key, type, u8 value
constexpr uint64_t kMinTensorInfoBytes = 8 + 1 + 4 + 4 + 8;  // name length, 1-byte name, n_dims = 0, type, offset
constexpr uint64_t kMinStringBytes = 8;                      // an empty string
constexpr uint64_t kMinArrayBytes = 4 + 8;                   // an empty array

// Reads the header front to back. `where_` names what is being read (key #i 'name' or tensor #i
// 'name') so that every message says which entry is broken.
class Parser {
 public:
  Parser(std::span<const std::byte> bytes, std::string_view source) : bytes_(bytes), source_(source) {}

  size_t pos() const { return pos_; }
  uint64_t left() const { return bytes_.size() - pos_; }

  void set_where(std::string_view kind, uint64_t index, std::string_view name) {
    kind_ = kind;
    index_ = index;
    name_ = name;
  }
  std::string where() const {
    if (kind_.empty()) return "header";
    return name_.empty() ? fmt::format("{} #{}", kind_, index_) : fmt::format("{} #{} '{}'", kind_, index_, name_);
  }

  template <typename... Args>
  [[noreturn]] void error(fmt::format_string<Args...> format, Args&&... args) const {
    fail(ErrorCode::format, "gguf {}: {}: {}", source_, where(), fmt::format(format, std::forward<Args>(args)...));
  }

  const std::byte* take(uint64_t n, std::string_view what) {
    if (n > left()) {
      error("truncated: {} needs {} bytes at offset {} but the file ends at {}", what, n, pos_, bytes_.size());
    }
    const std::byte* p = bytes_.data() + pos_;
    pos_ += size_t(n);
    return p;
  }
  uint32_t u32(std::string_view what) {
    uint32_t v;
    std::memcpy(&v, take(4, what), 4);
    return v;
  }
  uint64_t u64(std::string_view what) {
    uint64_t v;
    std::memcpy(&v, take(8, what), 8);
    return v;
  }
  std::string_view string(std::string_view what) {
    const uint64_t length = u64(what);
    if (length > left()) {
      error("{} length {} runs past the end of the file ({} bytes left at offset {})", what, length, left(), pos_);
    }
    return {reinterpret_cast<const char*>(take(length, what)), size_t(length)};
  }
  std::string_view name(std::string_view what) {
    const std::string_view text = string(what);
    if (text.empty()) error("{} is empty", what);
    if (text.size() > kGgufMaxNameBytes)
      error("{} is {} bytes (the limit is {})", what, text.size(), kGgufMaxNameBytes);
    return text;
  }

  GgufValue value(uint32_t type_id, uint32_t depth);

 private:
  std::span<const std::byte> bytes_;
  std::string_view source_;
  size_t pos_ = 0;
  std::string_view kind_;
  uint64_t index_ = 0;
  std::string_view name_;
};

GgufValue Parser::value(uint32_t type_id, uint32_t depth) {
  if (!valid_value_type(type_id)) error("unknown value type {}", type_id);
  GgufValue v;
  v.type = GgufValueType(type_id);
  switch (v.type) {
    case GgufValueType::string:
      v.text = string("string value");
      return v;
    case GgufValueType::array:
      break;
    default: {
      const size_t size = gguf_scalar_size(v.type);
      std::memcpy(&v.bits, take(size, "value"), size);
      if (v.type == GgufValueType::boolean && v.bits > 1) error("bool value {} is not 0 or 1", v.bits);
      return v;
    }
  }

  // Array: u32 element type, u64 count, elements.
  if (depth >= kGgufMaxArrayDepth)
    error("arrays nest deeper than {} levels (the limit of this reader)", kGgufMaxArrayDepth);
  const uint32_t element_id = u32("array element type");
  if (!valid_value_type(element_id)) error("array of unknown value type {}", element_id);
  v.element_type = GgufValueType(element_id);
  v.count = u64("array length");
  const size_t size = gguf_scalar_size(v.element_type);
  const uint64_t min_bytes = size != 0                                 ? size
                             : v.element_type == GgufValueType::string ? kMinStringBytes
                                                                       : kMinArrayBytes;
  if (v.count > left() / min_bytes) {
    error("array claims {} elements of {} (at least {} bytes each) but only {} bytes remain", v.count,
          gguf_value_type_name(v.element_type), min_bytes, left());
  }
  if (size != 0) {
    v.elements = std::span(take(v.count * size, "array"), size_t(v.count * size));
    if (v.element_type == GgufValueType::boolean) {
      for (size_t i = 0; i < v.elements.size(); ++i) {
        if (uint8_t(v.elements[i]) > 1) error("bool array element {} is {}, not 0 or 1", i, uint8_t(v.elements[i]));
      }
    }
  } else if (v.element_type == GgufValueType::string) {
    v.strings.reserve(size_t(v.count));  // <= left / 8 views
    for (uint64_t i = 0; i < v.count; ++i) v.strings.push_back(string("array string"));
  } else {
    v.arrays.reserve(size_t(v.count));  // <= left / 12 values
    for (uint64_t i = 0; i < v.count; ++i) v.arrays.push_back(value(uint32_t(GgufValueType::array), depth + 1));
  }
  return v;
}

uint64_t read_alignment(const GgufValue& value, Parser& parser) {
  const auto alignment = value.is_array() ? std::nullopt : value.as_uint64();
  if (!alignment) {
    parser.error("general.alignment must be an unsigned integer, got {}", gguf_value_type_name(value.type));
  }
  if (*alignment == 0 || !std::has_single_bit(*alignment) || *alignment > (uint64_t(1) << 31)) {
    parser.error("general.alignment {} is not a power of two in [1, 2^31]", *alignment);
  }
  return *alignment;
}

// Positions 0..n-1 sorted by `key(i)`; fails on the first pair of equal keys.
template <typename Key, typename Fail>
std::vector<uint32_t> sorted_unique(size_t n, Key key, Fail on_duplicate) {
  std::vector<uint32_t> order(n);
  for (size_t i = 0; i < n; ++i) order[i] = uint32_t(i);
  std::sort(order.begin(), order.end(),
            [&](uint32_t a, uint32_t b) { return key(a) < key(b) || (key(a) == key(b) && a < b); });
  for (size_t i = 1; i < n; ++i) {
    if (key(order[i]) == key(order[i - 1])) on_duplicate(order[i - 1], order[i]);
  }
  return order;
}

// --- the stages of parse_bytes, in file order ----------------------------------------------------

// Offsets 0..7: the magic and a version this reader knows (2 or 3, little-endian).
uint32_t read_magic_and_version(Parser& p, std::span<const std::byte> bytes, std::string_view source) {
  if (bytes.size() < 4)
    fail(ErrorCode::format, "gguf {}: file is {} bytes, too short for the magic", source, bytes.size());
  if (std::memcmp(bytes.data(), "GGUF", 4) != 0) {
    fail(ErrorCode::format, "gguf {}: not a GGUF file (magic bytes {:02x} {:02x} {:02x} {:02x}, expected 47 47 55 46)",
         source, uint8_t(bytes[0]), uint8_t(bytes[1]), uint8_t(bytes[2]), uint8_t(bytes[3]));
  }
  p.take(4, "magic");
  const uint32_t version = p.u32("version");
  if (version == 0x02000000u || version == 0x03000000u) {
    fail(ErrorCode::format, "gguf {}: big-endian GGUF (version {} byte-swapped) is not supported", source,
         (version >> 24));
  }
  if (version == 1) {
    fail(ErrorCode::format, "gguf {}: GGUF version 1 (32-bit counts) is not supported; re-convert the model", source);
  }
  if (version != 2 && version != 3)
    fail(ErrorCode::format, "gguf {}: unsupported GGUF version {} (read: 2, 3)", source, version);
  return version;
}

struct HeaderCounts {
  uint64_t tensors = 0;
  uint64_t keys = 0;
};

// Offsets 8..23: the counts, bounded by the limits and by the bytes left, so that nothing is
// reserved from a number the file has not backed with bytes.
HeaderCounts read_counts(Parser& p) {
  HeaderCounts c;
  c.tensors = p.u64("tensor count");
  c.keys = p.u64("metadata key count");
  if (c.tensors > kGgufMaxTensors) {
    p.error("{} tensors exceed the limit of {} of this reader", c.tensors, kGgufMaxTensors);
  }
  if (c.keys > kGgufMaxKeys) p.error("{} metadata keys exceed the limit of {} of this reader", c.keys, kGgufMaxKeys);
  if (c.keys > p.left() / kMinKeyValueBytes) {
    p.error("{} metadata keys (at least {} bytes each) cannot fit in the {} bytes left", c.keys, kMinKeyValueBytes,
            p.left());
  }
  if (c.tensors > p.left() / kMinTensorInfoBytes) {
    p.error("{} tensor infos (at least {} bytes each) cannot fit in the {} bytes left", c.tensors, kMinTensorInfoBytes,
            p.left());
  }
  return c;
}

std::vector<GgufKeyValue> read_metadata(Parser& p, uint64_t count) {
  std::vector<GgufKeyValue> metadata;
  metadata.reserve(size_t(count));
  for (uint64_t i = 0; i < count; ++i) {
    p.set_where("key", i, {});
    const std::string_view key = p.name("key");
    p.set_where("key", i, key);
    const uint32_t type = p.u32("value type");
    metadata.push_back({key, p.value(type, 0)});
  }
  return metadata;
}

// Positions in `metadata` sorted by key; a repeated key is an error.
std::vector<uint32_t> index_keys(Parser& p, const std::vector<GgufKeyValue>& metadata) {
  return sorted_unique(
      metadata.size(), [&](uint32_t i) { return metadata[i].key; },
      [&](uint32_t first, uint32_t second) {
        p.set_where("key", second, metadata[second].key);
        p.error("repeats key #{} (duplicate keys are ambiguous)", first);
      });
}

// One tensor info: name, n_dims, dims (fastest first), ggml type, offset; its byte size follows
// from the dims and the type's block size.
GgufTensor read_tensor_info(Parser& p, uint64_t index, uint64_t alignment) {
  p.set_where("tensor", index, {});
  const std::string_view name = p.name("tensor name");
  p.set_where("tensor", index, name);
  GgufTensor t;
  t.name = std::string(name);
  t.n_dims = p.u32("n_dims");
  if (t.n_dims > kGgufMaxDims) p.error("n_dims {} exceeds {}", t.n_dims, kGgufMaxDims);
  int64_t numel = 1;
  for (uint32_t d = 0; d < t.n_dims; ++d) {
    const uint64_t dim = p.u64("dims");
    const auto product = dim <= uint64_t(INT64_MAX) ? checked_mul(numel, int64_t(dim)) : std::nullopt;
    if (!product) p.error("dims[{}] = {} makes the element count overflow 64 bits", d, dim);
    t.dims[d] = int64_t(dim);
    numel = *product;
  }
  const uint32_t type_id = p.u32("ggml type");
  const GgmlTypeInfo* info = ggml_type_info(type_id);
  if (info == nullptr) p.error("unknown or unsupported ggml type id {}", type_id);
  t.type = info->type;
  t.offset = p.u64("offset");
  if (t.dims[0] % info->block_size != 0) {
    p.error("dims[0] = {} is not a multiple of the {}-element blocks of {}", t.dims[0], info->block_size, info->name);
  }
  const auto nbytes = checked_mul(numel / info->block_size, info->block_bytes);
  if (!nbytes) p.error("byte size of {} elements of {} overflows 64 bits", numel, info->name);
  t.nbytes = uint64_t(*nbytes);
  if (t.offset % alignment != 0) p.error("data offset {} is not a multiple of the alignment {}", t.offset, alignment);
  return t;
}

// Positions in `tensors` sorted by name; a repeated name is an error.
std::vector<uint32_t> index_tensors(Parser& p, const std::vector<GgufTensor>& tensors) {
  return sorted_unique(
      tensors.size(), [&](uint32_t i) { return std::string_view(tensors[i].name); },
      [&](uint32_t first, uint32_t second) {
        p.set_where("tensor", second, tensors[second].name);
        p.error("repeats the name of tensor #{} (duplicate names are ambiguous)", first);
      });
}

// The data section starts at the header's end rounded up to the alignment; a file without tensors
// may omit that padding.
uint64_t data_section_offset(const Parser& p, std::span<const std::byte> bytes, std::string_view source,
                             uint64_t alignment, bool has_tensors) {
  const uint64_t header_end = p.pos();
  const uint64_t padded = header_end + (alignment - header_end % alignment) % alignment;
  if (padded <= bytes.size()) return padded;
  if (has_tensors) {
    fail(ErrorCode::format,
         "gguf {}: data section would start at {} (header end {} aligned to {}), past the {}-byte file", source, padded,
         header_end, alignment, bytes.size());
  }
  return bytes.size();
}

// Points every tensor at its bytes, each inside the data section.
void place_tensors(Parser& p, std::vector<GgufTensor>& tensors, std::span<const std::byte> data) {
  for (size_t i = 0; i < tensors.size(); ++i) {
    GgufTensor& t = tensors[i];
    if (t.offset > data.size() || t.nbytes > data.size() - t.offset) {
      p.set_where("tensor", i, t.name);
      p.error("{} bytes at data offset {} run past the {}-byte data section", t.nbytes, t.offset, data.size());
    }
    t.data = data.subspan(size_t(t.offset), size_t(t.nbytes));
  }
}

// No overlaps: sorted by offset, each tensor with bytes starts at or after the furthest end of
// the ones before it (empty tensors occupy nothing and may sit anywhere).
void check_disjoint(Parser& p, const std::vector<GgufTensor>& tensors) {
  std::vector<uint32_t> by_offset;
  by_offset.reserve(tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    if (tensors[i].nbytes != 0) by_offset.push_back(uint32_t(i));
  }
  std::sort(by_offset.begin(), by_offset.end(),
            [&](uint32_t a, uint32_t b) { return std::tie(tensors[a].offset, a) < std::tie(tensors[b].offset, b); });
  const GgufTensor* furthest = nullptr;  // the tensor ending last among those checked
  for (const uint32_t i : by_offset) {
    const GgufTensor& t = tensors[i];
    if (furthest != nullptr && t.offset < furthest->offset + furthest->nbytes) {
      p.set_where("tensor", i, t.name);
      p.error("bytes [{}, {}) overlap tensor '{}' [{}, {})", t.offset, t.offset + t.nbytes, furthest->name,
              furthest->offset, furthest->offset + furthest->nbytes);
    }
    furthest = &t;  // sorted by offset and disjoint so far: t ends after every earlier tensor
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// GgufFile
// ---------------------------------------------------------------------------------------------

GgufFile::GgufFile(GgufFile&&) noexcept = default;
GgufFile& GgufFile::operator=(GgufFile&&) noexcept = default;
GgufFile::~GgufFile() = default;

GgufFile GgufFile::parse(std::span<const std::byte> bytes) { return parse_bytes(bytes, "(memory)"); }

// Stages, front to back: fixed header (offsets 0..23), metadata, tensor infos, then the data
// section; each checks what it reads before the next one trusts it.
GgufFile GgufFile::parse_bytes(std::span<const std::byte> bytes, std::string_view source) {
  Parser p(bytes, source);
  GgufFile file;
  file.source_ = std::string(source);
  file.version_ = read_magic_and_version(p, bytes, source);
  const HeaderCounts counts = read_counts(p);

  file.metadata_ = read_metadata(p, counts.keys);
  file.keys_by_name_ = index_keys(p, file.metadata_);
  if (const GgufValue* alignment = file.find_metadata("general.alignment")) {
    p.set_where("key", 0, "general.alignment");
    file.alignment_ = read_alignment(*alignment, p);
  }

  file.tensors_.reserve(size_t(counts.tensors));
  for (uint64_t i = 0; i < counts.tensors; ++i) file.tensors_.push_back(read_tensor_info(p, i, file.alignment_));
  file.tensors_by_name_ = index_tensors(p, file.tensors_);

  p.set_where("", 0, {});
  file.data_offset_ = data_section_offset(p, bytes, source, file.alignment_, !file.tensors_.empty());
  place_tensors(p, file.tensors_, bytes.subspan(size_t(file.data_offset_)));
  check_disjoint(p, file.tensors_);
  return file;
}

GgufFile GgufFile::open(const std::filesystem::path& path) {
  auto mapping = MappedFile::open(path);
  GgufFile file = parse_bytes(mapping->bytes(), fmt::format("'{}'", path.string()));
  file.mapping_ = std::move(mapping);  // the spans in `file` point into this mapping, which stays put
  return file;
}

const GgufValue* GgufFile::find_metadata(std::string_view key) const {
  const auto it = std::lower_bound(keys_by_name_.begin(), keys_by_name_.end(), key,
                                   [&](uint32_t i, std::string_view k) { return metadata_[i].key < k; });
  return it != keys_by_name_.end() && metadata_[*it].key == key ? &metadata_[*it].value : nullptr;
}

const GgufTensor* GgufFile::find(std::string_view name) const {
  const auto it = std::lower_bound(tensors_by_name_.begin(), tensors_by_name_.end(), name,
                                   [&](uint32_t i, std::string_view n) { return tensors_[i].name < n; });
  return it != tensors_by_name_.end() && tensors_[*it].name == name ? &tensors_[*it] : nullptr;
}

// ---------------------------------------------------------------------------------------------
// Metadata as JSON
// ---------------------------------------------------------------------------------------------

namespace {

// The most bytes `text` can take as a JSON string: a control byte becomes \\u00XX (6), a quote or
// backslash 2, a byte of an invalid UTF-8 sequence U+FFFD (3 bytes), the quotes 2.
uint64_t json_string_bound(std::string_view text) {
  uint64_t bytes = 2;
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    bytes += u < 0x20 ? 6 : (u == '"' || u == '\\') ? 2 : u >= 0x80 ? 3 : 1;
  }
  return bytes;
}

// Renders metadata into `out`, failing as soon as `out` would pass `max_bytes`: a string is
// refused before it is escaped when its largest escaped form would not fit; everything else is
// checked after each element, which adds at most one number's text (< 32 bytes) beyond the cap.
struct JsonRenderer {
  std::string out;
  uint64_t max_bytes = 0;
  std::string_view key;  // the top-level key being rendered, for the error
  std::string_view source;

  void check(uint64_t more = 0) const {
    if (out.size() + more > max_bytes) {
      fail(ErrorCode::format, "gguf {}: metadata key '{}' makes the metadata longer than {} bytes as JSON", source, key,
           max_bytes);
    }
  }

  void string(std::string_view text) {
    check(json_string_bound(text));
    out += nlohmann::json(std::string(text)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }

  template <typename F>
  void floating(F value) {
    if (std::isnan(value)) {
      out += "\"NaN\"";
    } else if (std::isinf(value)) {
      out += value > 0 ? "\"Infinity\"" : "\"-Infinity\"";
    } else {
      fmt::format_to(std::back_inserter(out), "{}", value);  // shortest form that reads back as the same F
    }
  }

  void value(const GgufValue& v) {
    switch (v.type) {
      case GgufValueType::string:
        string(v.text);
        return;
      case GgufValueType::boolean:
        out += v.bits ? "true" : "false";
        return;
      case GgufValueType::float32:
        floating(std::bit_cast<float>(uint32_t(v.bits)));
        return;
      case GgufValueType::float64:
        floating(std::bit_cast<double>(v.bits));
        return;
      case GgufValueType::array:
        out += '[';
        for (uint64_t i = 0; i < v.count; ++i) {
          if (i != 0) out += ',';
          if (v.element_type == GgufValueType::array) {
            value(v.arrays[size_t(i)]);
          } else {
            value(v.element(i));
          }
          check();
        }
        out += ']';
        return;
      default:
        if (is_signed_integer(v.type)) {
          fmt::format_to(std::back_inserter(out), "{}", sign_extend(v.type, v.bits));
        } else {
          fmt::format_to(std::back_inserter(out), "{}", v.bits);
        }
        return;
    }
  }
};

}  // namespace

std::string GgufFile::metadata_json(uint64_t max_bytes) const {
  JsonRenderer json{.out = "{", .max_bytes = max_bytes, .key = {}, .source = source_};
  for (size_t i = 0; i < metadata_.size(); ++i) {
    json.key = metadata_[i].key;
    if (i != 0) json.out += ',';
    json.string(metadata_[i].key);
    json.out += ':';
    json.value(metadata_[i].value);
    json.check(1);
  }
  json.out += '}';
  return std::move(json.out);
}

}  // namespace w4a16::io
