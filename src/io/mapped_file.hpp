// A whole file mapped read-only (MAP_PRIVATE), for the parsers that validate a header and then
// hand out spans into the data: SafetensorsFile and GgufFile keep one alive as long as those
// spans live. Another process truncating the file while it is mapped can still raise SIGBUS;
// no reader can guard against that.
#pragma once

#include <cstddef>
#include <filesystem>
#include <memory>
#include <span>

namespace w4a16::io {

class MappedFile {
 public:
  // Error(io) when the path cannot be opened, is not a regular file (a FIFO is refused without
  // waiting for a writer: io/input_file.hpp), or cannot be mapped. An empty file gives an empty
  // span (nothing is mapped).
  static std::unique_ptr<MappedFile> open(const std::filesystem::path& path);
  std::span<const std::byte> bytes() const { return {static_cast<const std::byte*>(address_), size_}; }

  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

 private:
  MappedFile(void* address, size_t size) : address_(address), size_(size) {}
  void* address_ = nullptr;
  size_t size_ = 0;
};

}  // namespace w4a16::io
