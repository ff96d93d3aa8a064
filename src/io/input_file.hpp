// Opening a path the user named, for reading: regular files only, and never a blocking open().
//
// Why: open(O_RDONLY) of a FIFO waits for a writer, forever if none comes, and it does so before
// any fstat() can see what the path is. So every input is opened O_RDONLY | O_NONBLOCK (a FIFO
// opens at once, whether or not it has a writer), then fstat()ed, and anything but a regular file
// (a FIFO, a directory, a character or block device, a socket) is refused with Error(io) naming
// the path and its type before a byte is read. O_NONBLOCK is then cleared: it means nothing for a
// regular file's read(), and a descriptor handed on should not carry it. O_NOCTTY: a terminal
// path never becomes the controlling terminal. Every reader of a user-named file in src/ goes
// through here (the mapped safetensors and GGUF files, config.json and the shard index, the GGUF
// magic sniff, the calibration file); fixed system paths (/sys, /proc) are read as they are.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>

namespace w4a16::io {

// "a FIFO", "a directory", "a character device", ...: what stat() says a path is, for messages.
std::string_view file_type_name(mode_t mode);

// An open descriptor of a regular file (move-only; closed on destruction).
class InputFile {
 public:
  // Error(io) naming the path when it cannot be opened or is not a regular file.
  static InputFile open(const std::filesystem::path& path);

  InputFile(InputFile&& other) noexcept : fd_(other.fd_), size_(other.size_) { other.fd_ = -1; }
  InputFile& operator=(InputFile&&) = delete;
  InputFile(const InputFile&) = delete;
  ~InputFile();

  int fd() const { return fd_; }
  uint64_t size() const { return size_; }  // st_size when it was opened
  // Reads up to out.size() bytes from the current position; fewer only at the end of the file.
  // Error(io) naming `path` on a read error.
  size_t read(std::span<std::byte> out, const std::filesystem::path& path);

 private:
  InputFile(int fd, uint64_t size) : fd_(fd), size_(size) {}
  int fd_ = -1;
  uint64_t size_ = 0;
};

// The whole of a regular file as text. Error(io) as InputFile::open; Error(format) "... (the limit
// is N)" when it holds more than `limit` bytes (counted as read, not trusted from st_size).
std::string read_text_file(const std::filesystem::path& path, uint64_t limit);

}  // namespace w4a16::io
