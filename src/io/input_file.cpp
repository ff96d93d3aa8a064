// InputFile: non-blocking open, fstat, refuse what is not a regular file, clear O_NONBLOCK.
#include "io/input_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/check.hpp"

namespace w4a16::io {

std::string_view file_type_name(mode_t mode) {
  if (S_ISREG(mode)) return "a regular file";
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISLNK(mode)) return "a symbolic link";
  return "a file of unknown type";
}

InputFile InputFile::open(const std::filesystem::path& path) {
  const std::string name = path.string();
  int fd = -1;
  do {
    fd = ::open(name.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) fail(ErrorCode::io, "cannot open '{}': {}", name, std::strerror(errno));
  InputFile file(fd, 0);  // closes fd on every error below
  struct stat st {};
  if (::fstat(fd, &st) != 0) fail(ErrorCode::io, "cannot stat '{}': {}", name, std::strerror(errno));
  if (!S_ISREG(st.st_mode)) {
    fail(ErrorCode::io, "cannot read '{}': it is {}, not a regular file", name, file_type_name(st.st_mode));
  }
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0) {
    fail(ErrorCode::io, "cannot open '{}': fcntl: {}", name, std::strerror(errno));
  }
  file.size_ = uint64_t(st.st_size);
  return file;
}

InputFile::~InputFile() {
  if (fd_ >= 0) ::close(fd_);
}

size_t InputFile::read(std::span<std::byte> out, const std::filesystem::path& path) {
  size_t done = 0;
  while (done < out.size()) {
    const ssize_t n = ::read(fd_, out.data() + done, out.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail(ErrorCode::io, "cannot read '{}': {}", path.string(), std::strerror(errno));
    if (n == 0) break;  // end of file
    done += size_t(n);
  }
  return done;
}

std::string read_text_file(const std::filesystem::path& path, uint64_t limit) {
  InputFile file = InputFile::open(path);
  const auto too_large = [&] {
    fail(ErrorCode::format, "'{}' is too large: the limit is {} bytes", path.string(), limit);
  };
  if (file.size() > limit) too_large();
  std::string text;
  // st_size is a hint for the first allocation only: the file may grow while it is read, so the
  // limit is checked on what arrives (one byte past the limit is enough to know).
  text.reserve(size_t(std::min<uint64_t>(file.size(), limit) + 1));
  std::byte buffer[65536];
  while (true) {
    const size_t n = file.read(buffer, path);
    text.append(reinterpret_cast<const char*>(buffer), n);
    if (text.size() > limit) too_large();
    if (n < sizeof buffer) return text;
  }
}

}  // namespace w4a16::io
