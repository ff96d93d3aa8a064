// safetensors reading (memory-mapped, fully validated) and writing.
//
// File layout: u64 little-endian header length H, then H bytes of UTF-8 JSON (padded with spaces
// to a multiple of 8 by writers), then the data buffer. The JSON maps tensor names to
// {"dtype", "shape", "data_offsets": [begin, end]} (offsets relative to the data buffer) and may
// hold "__metadata__": {string: string}.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "w4a16/w4a16.hpp"

namespace w4a16::io {

class MappedFile;  // io/mapped_file.hpp

// Every dtype of the safetensors format (so foreign tensors can be copied through unchanged).
enum class StDType : uint8_t { BOOL, U8, I8, I16, U16, F16, BF16, I32, U32, F32, F64, I64, U64, F8_E4M3, F8_E5M2 };

size_t st_dtype_size(StDType dtype);
std::string_view st_dtype_name(StDType dtype);                 // "F16", ...
std::optional<StDType> parse_st_dtype(std::string_view name);  // nullopt when unknown
std::optional<DType> to_dtype(StDType dtype);                  // F16/BF16/F32 -> DType
StDType to_st_dtype(DType dtype);

struct TensorInfo {
  std::string name;
  StDType dtype = StDType::U8;
  std::vector<int64_t> shape;
  uint64_t begin = 0;  // byte offsets relative to the data buffer
  uint64_t end = 0;
  int64_t numel() const;
  uint64_t nbytes() const { return end - begin; }
};

// Largest header accepted (the reference implementation uses the same cap).
inline constexpr uint64_t kMaxHeaderBytes = 100ull * 1024 * 1024;
// What the format needs, and no more, so that a hostile header cannot make the reader hold more
// than a small multiple of its size (docs/formats.md, "safetensors container"):
inline constexpr size_t kMaxTensors = size_t(1) << 20;          // 1,048,576 entries
inline constexpr size_t kMaxMetadataEntries = size_t(1) << 18;  // 262,144 keys in __metadata__
inline constexpr size_t kMaxRank = 64;                          // dimensions of one tensor (numpy's limit)
inline constexpr size_t kMaxJsonDepth = 64;                     // nesting, in ignored values too

// A validated safetensors file. open() memory-maps the file; parse() works on bytes already in
// memory (the caller keeps them alive) and is what the fuzzer drives. Both throw
// Error(ErrorCode::format) for malformed content and Error(ErrorCode::io) when the file cannot
// be read; nothing is returned for a file that fails any check.
class SafetensorsFile {
 public:
  static SafetensorsFile open(const std::filesystem::path& path);
  static SafetensorsFile parse(std::span<const std::byte> bytes);

  const std::vector<TensorInfo>& tensors() const { return tensors_; }  // in data-offset order
  const TensorInfo* find(std::string_view name) const;                 // nullptr when absent
  std::span<const std::byte> data(const TensorInfo& tensor) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

  SafetensorsFile(SafetensorsFile&&) noexcept;
  SafetensorsFile& operator=(SafetensorsFile&&) noexcept;
  ~SafetensorsFile();

 private:
  SafetensorsFile() = default;
  // parse() and open() share this; `source` names the bytes in error messages.
  static SafetensorsFile parse_bytes(std::span<const std::byte> bytes, std::string_view source);
  std::unique_ptr<MappedFile> mapping_;  // owns the mmap when opened from a path
  std::span<const std::byte> buffer_;    // the data buffer (after the header)
  std::vector<TensorInfo> tensors_;
  std::vector<uint32_t> by_name_;  // positions in tensors_, sorted by name (kMaxTensors < 2^32)
  std::map<std::string, std::string> metadata_;
  std::string source_;  // "'<path>'" or "(memory)", for error messages
};

// Collects tensors and metadata, then writes a file: the header lists tensors in the order they
// were added, with contiguous offsets, padded with spaces to a multiple of 8 bytes. Data given
// as a span is not copied: the caller keeps it alive until write() returns. A lazy tensor's bytes
// are made by its producer while write() streams the file, in order, and released right after
// they are written: a converter keeps one tensor (one layer) in memory, not the model.
class SafetensorsWriter {
 public:
  struct LazyData {
    std::function<std::span<const std::byte>()> bytes;  // exactly the declared size; valid until release
    std::function<void()> release;                      // optional: called once the bytes are written
    explicit operator bool() const { return bool(bytes); }
  };

  void add(std::string name, StDType dtype, std::vector<int64_t> shape, std::span<const std::byte> data);
  void add_owned(std::string name, StDType dtype, std::vector<int64_t> shape, std::vector<std::byte> data);
  void add_lazy(std::string name, StDType dtype, std::vector<int64_t> shape, LazyData produce);
  void set_metadata(std::string key, std::string value);
  bool contains(std::string_view name) const;
  // The header as declared so far, as the file's reader will see it (offsets contiguous from 0):
  // what lets a writer's caller check the file by the reader's rules before writing it.
  const TensorInfo* find(std::string_view name) const;  // nullptr when absent
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // Writes through an AtomicFile (io/atomic_file.hpp): `path` holds either its old content or the
  // whole new file, never a part of it, and a symlink planted beside it cannot redirect the write.
  void write(const std::filesystem::path& path) const;

 private:
  struct Entry {
    TensorInfo info;  // name, dtype, shape and data offsets in the file
    std::span<const std::byte> data;
    std::shared_ptr<std::vector<std::byte>> owned;
    LazyData produce;  // set for lazy tensors (data is then empty)
  };
  // The entry's header fields, its size checked and its offsets placed after the last entry.
  TensorInfo declare(std::string name, StDType dtype, std::vector<int64_t> shape) const;
  void append(Entry entry);
  std::vector<Entry> entries_;
  std::map<std::string, size_t, std::less<>> index_;  // name -> position in entries_
  std::map<std::string, std::string> metadata_;
};

}  // namespace w4a16::io
