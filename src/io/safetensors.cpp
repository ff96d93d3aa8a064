// safetensors reading (memory-mapped, fully validated) and writing.
//
// The reader trusts nothing in the file: every size, offset and name is checked before any byte
// of the data buffer is touched, and all arithmetic on file-provided numbers is overflow-checked.
// What is accepted (docs/formats.md, "safetensors container"):
//   - u64 little-endian header length H <= kMaxHeaderBytes, H <= file size - 8;
//   - the header is one JSON object starting with '{' (trailing whitespace allowed), read in one
//     streaming pass by safetensors_header.cpp: no tensor name, metadata key or entry field
//     repeated; depth, tensor count, metadata count and rank bounded (safetensors.hpp);
//   - every entry other than "__metadata__" is {"dtype": known name, "shape": [non-negative
//     integers], "data_offsets": [begin, end]} with begin <= end and end - begin = numel * dtype
//     size (other keys in an entry are ignored, as the reference reader does);
//   - sorted by offsets, the tensors tile the data buffer exactly: the first starts at 0, each
//     starts where the previous ended, the last ends at the end of the file;
//   - "__metadata__", when present, is an object of string values.
#include "io/safetensors.hpp"

#include <fcntl.h>
#include <fmt/ranges.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>
#include <system_error>
#include <tuple>
#include <utility>

#include "common/check.hpp"
#include "io/atomic_file.hpp"
#include "io/mapped_file.hpp"
#include "io/safetensors_header.hpp"

static_assert(std::endian::native == std::endian::little,
              "safetensors data is little-endian; big-endian hosts are not supported");

namespace w4a16::io {

using nlohmann::json;

// ---------------------------------------------------------------------------------------------
// dtypes
// ---------------------------------------------------------------------------------------------

namespace {

struct StDTypeInfo {
  StDType dtype;
  std::string_view name;
  size_t size;
};

// One row per safetensors dtype, in enum order.
constexpr std::array<StDTypeInfo, 15> kStDTypes = {{
    {StDType::BOOL, "BOOL", 1},
    {StDType::U8, "U8", 1},
    {StDType::I8, "I8", 1},
    {StDType::I16, "I16", 2},
    {StDType::U16, "U16", 2},
    {StDType::F16, "F16", 2},
    {StDType::BF16, "BF16", 2},
    {StDType::I32, "I32", 4},
    {StDType::U32, "U32", 4},
    {StDType::F32, "F32", 4},
    {StDType::F64, "F64", 8},
    {StDType::I64, "I64", 8},
    {StDType::U64, "U64", 8},
    {StDType::F8_E4M3, "F8_E4M3", 1},
    {StDType::F8_E5M2, "F8_E5M2", 1},
}};

const StDTypeInfo& info(StDType dtype) {
  const size_t i = size_t(dtype);
  if (i >= kStDTypes.size() || kStDTypes[i].dtype != dtype) {
    fail(ErrorCode::internal, "invalid safetensors dtype value {}", int(dtype));
  }
  return kStDTypes[i];
}

}  // namespace

size_t st_dtype_size(StDType dtype) { return info(dtype).size; }

std::string_view st_dtype_name(StDType dtype) { return info(dtype).name; }

std::optional<StDType> parse_st_dtype(std::string_view name) {
  for (const auto& entry : kStDTypes) {
    if (entry.name == name) return entry.dtype;
  }
  return std::nullopt;
}

std::optional<DType> to_dtype(StDType dtype) {
  switch (dtype) {
    case StDType::F16:
      return DType::f16;
    case StDType::BF16:
      return DType::bf16;
    case StDType::F32:
      return DType::f32;
    default:
      return std::nullopt;
  }
}

StDType to_st_dtype(DType dtype) {
  switch (dtype) {
    case DType::f16:
      return StDType::F16;
    case DType::bf16:
      return StDType::BF16;
    case DType::f32:
      return StDType::F32;
  }
  fail(ErrorCode::invalid_argument, "invalid dtype value {}", int(dtype));
}

int64_t TensorInfo::numel() const {
  int64_t count = 1;
  for (const int64_t dim : shape) {
    const auto product = checked_mul(count, dim);
    if (!product) fail(ErrorCode::invalid_argument, "tensor '{}': shape product overflows or is negative", name);
    count = *product;
  }
  return count;
}

// ---------------------------------------------------------------------------------------------
// SafetensorsFile
// ---------------------------------------------------------------------------------------------

SafetensorsFile::SafetensorsFile(SafetensorsFile&&) noexcept = default;
SafetensorsFile& SafetensorsFile::operator=(SafetensorsFile&&) noexcept = default;
SafetensorsFile::~SafetensorsFile() = default;

SafetensorsFile SafetensorsFile::parse(std::span<const std::byte> bytes) { return parse_bytes(bytes, "(memory)"); }

SafetensorsFile SafetensorsFile::parse_bytes(std::span<const std::byte> bytes, std::string_view source) {
  if (bytes.size() < 8) {
    fail(ErrorCode::format, "safetensors {}: file is {} bytes, too short for the 8-byte header length", source,
         bytes.size());
  }
  uint64_t header_bytes = 0;
  std::memcpy(&header_bytes, bytes.data(), 8);  // little-endian (static_assert above)
  if (header_bytes > kMaxHeaderBytes) {
    fail(ErrorCode::format, "safetensors {}: header length {} exceeds the {}-byte limit", source, header_bytes,
         kMaxHeaderBytes);
  }
  if (header_bytes > bytes.size() - 8) {
    fail(ErrorCode::format, "safetensors {}: header length {} runs past the end of the {}-byte file", source,
         header_bytes, bytes.size());
  }
  const std::string_view text(reinterpret_cast<const char*>(bytes.data()) + 8, size_t(header_bytes));
  SafetensorsHeader header = parse_safetensors_header(text, source);
  if (text.empty() || text.front() != '{') {
    fail(ErrorCode::format, "safetensors {}: header does not start with '{{'", source);
  }

  SafetensorsFile file;
  file.source_ = std::string(source);
  file.buffer_ = bytes.subspan(size_t(8 + header_bytes));
  file.metadata_ = std::move(header.metadata);
  file.tensors_ = std::move(header.tensors);
  const uint64_t buffer_size = file.buffer_.size();
  for (const TensorInfo& tensor : file.tensors_) {
    if (tensor.end > buffer_size) {
      fail(ErrorCode::format, "safetensors {}: tensor '{}': data_offsets [{}, {}] run past the {}-byte data buffer",
           source, tensor.name, tensor.begin, tensor.end, buffer_size);
    }
  }

  // Sorted by offsets, the tensors must tile [0, buffer_size) exactly. Equal begins (zero-size
  // tensors) are ordered by end, then by name, so the order is total and deterministic.
  std::sort(file.tensors_.begin(), file.tensors_.end(), [](const TensorInfo& a, const TensorInfo& b) {
    return std::tie(a.begin, a.end, a.name) < std::tie(b.begin, b.end, b.name);
  });
  // The name index: positions sorted by name (a few bytes a tensor, not a second copy of every
  // name); equal neighbours are a repeated key.
  file.by_name_.resize(file.tensors_.size());
  for (size_t i = 0; i < file.by_name_.size(); ++i) file.by_name_[i] = uint32_t(i);
  std::sort(file.by_name_.begin(), file.by_name_.end(),
            [&](uint32_t a, uint32_t b) { return file.tensors_[a].name < file.tensors_[b].name; });
  for (size_t i = 1; i < file.by_name_.size(); ++i) {
    const std::string& name = file.tensors_[file.by_name_[i]].name;
    if (name == file.tensors_[file.by_name_[i - 1]].name) {
      fail(ErrorCode::format,
           "safetensors {}: header repeats the key '{}' (duplicate tensor or field names are ambiguous)", source, name);
    }
  }
  uint64_t covered = 0;  // the data buffer is tiled up to here
  const TensorInfo* previous = nullptr;
  for (const TensorInfo& tensor : file.tensors_) {
    if (tensor.begin < covered) {
      fail(ErrorCode::format, "safetensors {}: tensor '{}': data_offsets [{}, {}] overlap tensor '{}' [{}, {}]", source,
           tensor.name, tensor.begin, tensor.end, previous->name, previous->begin, previous->end);
    }
    if (tensor.begin > covered) {
      fail(ErrorCode::format, "safetensors {}: tensor '{}': data_offsets [{}, {}] leave a gap of {} unused bytes at {}",
           source, tensor.name, tensor.begin, tensor.end, tensor.begin - covered, covered);
    }
    covered = tensor.end;
    previous = &tensor;
  }
  if (covered != buffer_size) {
    fail(ErrorCode::format, "safetensors {}: the tensors end at byte {} of the {}-byte data buffer ({} trailing bytes)",
         source, covered, buffer_size, buffer_size - covered);
  }
  return file;
}

SafetensorsFile SafetensorsFile::open(const std::filesystem::path& path) {
  auto mapping = MappedFile::open(path);
  SafetensorsFile file = parse_bytes(mapping->bytes(), fmt::format("'{}'", path.string()));
  file.mapping_ = std::move(mapping);  // the spans in `file` point into this mapping, which stays put
  return file;
}

const TensorInfo* SafetensorsFile::find(std::string_view name) const {
  const auto it = std::lower_bound(by_name_.begin(), by_name_.end(), name,
                                   [&](uint32_t i, std::string_view n) { return tensors_[i].name < n; });
  return it != by_name_.end() && tensors_[*it].name == name ? &tensors_[*it] : nullptr;
}

std::span<const std::byte> SafetensorsFile::data(const TensorInfo& tensor) const {
  if (tensor.begin > tensor.end || tensor.end > buffer_.size()) {
    fail(ErrorCode::invalid_argument, "safetensors {}: tensor '{}' offsets [{}, {}] are outside the {}-byte buffer",
         source_, tensor.name, tensor.begin, tensor.end, buffer_.size());
  }
  return buffer_.subspan(size_t(tensor.begin), size_t(tensor.end - tensor.begin));
}

// ---------------------------------------------------------------------------------------------
// SafetensorsWriter
// ---------------------------------------------------------------------------------------------

TensorInfo SafetensorsWriter::declare(std::string name, StDType dtype, std::vector<int64_t> shape) const {
  require(name != "__metadata__", "safetensors writer: '__metadata__' is reserved and cannot name a tensor");
  require(!contains(name), "safetensors writer: tensor '{}' is added twice", name);
  int64_t numel = 1;
  for (const int64_t dim : shape) {
    require(dim >= 0, "safetensors writer: tensor '{}': negative dimension {}", name, dim);
    const auto product = checked_mul(numel, dim);
    require(product.has_value(), "safetensors writer: tensor '{}': shape overflows", name);
    numel = *product;
  }
  const auto nbytes = checked_mul(numel, int64_t(st_dtype_size(dtype)));
  require(nbytes.has_value(), "safetensors writer: tensor '{}': byte count overflows", name);
  const uint64_t begin = entries_.empty() ? 0 : entries_.back().info.end;
  require(uint64_t(*nbytes) <= UINT64_MAX - begin, "safetensors writer: tensor '{}': the file overflows", name);
  return TensorInfo{std::move(name), dtype, std::move(shape), begin, begin + uint64_t(*nbytes)};
}

void SafetensorsWriter::append(Entry entry) {
  index_.emplace(entry.info.name, entries_.size());
  entries_.push_back(std::move(entry));
}

void SafetensorsWriter::add(std::string name, StDType dtype, std::vector<int64_t> shape,
                            std::span<const std::byte> data) {
  TensorInfo info = declare(std::move(name), dtype, std::move(shape));
  require(info.nbytes() == data.size(), "safetensors writer: tensor '{}': shape [{}] of {} need {} bytes, got {}",
          info.name, fmt::join(info.shape, ", "), st_dtype_name(dtype), info.nbytes(), data.size());
  require(data.data() != nullptr || data.empty(), "safetensors writer: tensor '{}': null data", info.name);
  append(Entry{std::move(info), data, nullptr, {}});
}

void SafetensorsWriter::add_owned(std::string name, StDType dtype, std::vector<int64_t> shape,
                                  std::vector<std::byte> data) {
  auto owned = std::make_shared<std::vector<std::byte>>(std::move(data));
  add(std::move(name), dtype, std::move(shape), std::span<const std::byte>(*owned));
  entries_.back().owned = std::move(owned);
}

void SafetensorsWriter::add_lazy(std::string name, StDType dtype, std::vector<int64_t> shape, LazyData produce) {
  TensorInfo info = declare(std::move(name), dtype, std::move(shape));
  require(bool(produce), "safetensors writer: tensor '{}': no producer", info.name);
  append(Entry{std::move(info), {}, nullptr, std::move(produce)});
}

void SafetensorsWriter::set_metadata(std::string key, std::string value) {
  metadata_[std::move(key)] = std::move(value);
}

bool SafetensorsWriter::contains(std::string_view name) const { return index_.find(name) != index_.end(); }

const TensorInfo* SafetensorsWriter::find(std::string_view name) const {
  const auto it = index_.find(name);
  return it == index_.end() ? nullptr : &entries_[it->second].info;
}

namespace {

// A JSON string literal; invalid UTF-8 is the caller's error.
std::string json_string(const std::string& text, std::string_view what) {
  try {
    return json(text).dump();
  } catch (const json::exception&) {
    fail(ErrorCode::invalid_argument, "safetensors writer: {} is not valid UTF-8", what);
  }
}

}  // namespace

void SafetensorsWriter::write(const std::filesystem::path& path) const {
  // Header: metadata first (when any), then tensors in insertion order, each entry's keys in the
  // order dtype, shape, data_offsets (the reference writer's order), offsets contiguous from 0.
  std::string header = "{";
  bool first = true;
  if (!metadata_.empty()) {
    json metadata = json::object();
    for (const auto& [key, value] : metadata_) metadata[key] = value;
    try {
      header += "\"__metadata__\":" + metadata.dump();
    } catch (const json::exception&) {
      fail(ErrorCode::invalid_argument, "safetensors writer: metadata is not valid UTF-8");
    }
    first = false;
  }
  for (const Entry& entry : entries_) {
    const TensorInfo& t = entry.info;
    if (!first) header += ',';
    first = false;
    header += json_string(t.name, fmt::format("tensor name '{}'", t.name));
    header += fmt::format(":{{\"dtype\":\"{}\",\"shape\":[{}],\"data_offsets\":[{},{}]}}", st_dtype_name(t.dtype),
                          fmt::join(t.shape, ","), t.begin, t.end);
  }
  header += '}';
  header.append((8 - header.size() % 8) % 8, ' ');
  require(header.size() <= kMaxHeaderBytes, "safetensors writer: header of {} bytes exceeds the {}-byte limit",
          header.size(), kMaxHeaderBytes);

  AtomicFile file(path);                         // the target changes only once everything is written and synced
  const uint64_t header_length = header.size();  // little-endian on disk (static_assert above)
  file.write(std::as_bytes(std::span(&header_length, 1)));
  file.write(header);
  for (const Entry& entry : entries_) {
    if (!entry.produce) {
      file.write(entry.data);
      continue;
    }
    // A lazy tensor is made now, written, and released before the next one is made.
    const std::span<const std::byte> data = entry.produce.bytes();
    if (data.size() != entry.info.nbytes()) {
      fail(ErrorCode::internal, "safetensors writer: tensor '{}': producer gave {} bytes, {} declared", entry.info.name,
           data.size(), entry.info.nbytes());
    }
    file.write(data);
    if (entry.produce.release) entry.produce.release();
  }
  file.commit();
}

}  // namespace w4a16::io
