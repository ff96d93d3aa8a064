// MappedFile: open (io/input_file.hpp: regular files only), map, close the descriptor (the mapping
// outlives it).
#include "io/mapped_file.hpp"

#include <sys/mman.h>

#include <cerrno>
#include <cstring>

#include "common/check.hpp"
#include "io/input_file.hpp"

namespace w4a16::io {

std::unique_ptr<MappedFile> MappedFile::open(const std::filesystem::path& path) {
  const InputFile file = InputFile::open(path);  // a regular file, opened without blocking
  const size_t size = size_t(file.size());
  if (size == 0) return std::unique_ptr<MappedFile>(new MappedFile(nullptr, 0));
  void* address = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, file.fd(), 0);
  if (address == MAP_FAILED) fail(ErrorCode::io, "cannot map '{}': {}", path.string(), std::strerror(errno));
  return std::unique_ptr<MappedFile>(new MappedFile(address, size));
}

MappedFile::~MappedFile() {
  if (address_ != nullptr) ::munmap(address_, size_);
}

}  // namespace w4a16::io
