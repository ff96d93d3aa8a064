// AtomicFile: see atomic_file.hpp for the protocol and why each step is there.
#include "io/atomic_file.hpp"

#include <fcntl.h>
#include <sys/random.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/check.hpp"

namespace w4a16::io {

namespace {

// 16 random hex digits from the kernel: unpredictable to another local user.
std::string random_suffix() {
  uint64_t value = 0;
  if (::getrandom(&value, sizeof value, 0) != ssize_t(sizeof value)) {
    value = uint64_t(::getpid()) * 0x9E3779B97F4A7C15ull ^ uint64_t(reinterpret_cast<uintptr_t>(&value));
  }
  return fmt::format("{:016x}", value);
}

std::filesystem::path directory_of(const std::filesystem::path& target) {
  const auto parent = target.parent_path();
  return parent.empty() ? std::filesystem::path(".") : parent;
}

}  // namespace

AtomicFile::AtomicFile(const std::filesystem::path& target) : target_(target) {
  require(!target.filename().empty(), "cannot write '{}': not a file name", target.string());
  for (int attempt = 0; attempt < 16 && fd_ < 0; ++attempt) {
    temporary_ = directory_of(target) / fmt::format(".{}.{}.tmp", target.filename().string(), random_suffix());
    fd_ = ::open(temporary_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd_ < 0 && errno != EEXIST) break;
  }
  if (fd_ < 0) {
    fail(ErrorCode::io, "cannot write '{}': cannot create a temporary file in '{}': {}", target.string(),
         directory_of(target).string(), std::strerror(errno));
  }
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(temporary_.c_str());
}

void AtomicFile::give_up(std::string_view what, int error) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  ::unlink(temporary_.c_str());
  committed_ = true;  // nothing left to clean up
  fail(ErrorCode::io, "cannot write '{}' ({} failed: {})", target_.string(), what, std::strerror(error));
}

void AtomicFile::write(std::span<const std::byte> bytes) {
  require(fd_ >= 0 && !committed_, "internal: write after commit or failure of '{}'", target_.string());
  const char* p = reinterpret_cast<const char*>(bytes.data());
  size_t left = bytes.size();
  while (left > 0) {
    const ssize_t written = ::write(fd_, p, left);
    if (written < 0) {
      if (errno == EINTR) continue;
      give_up("write", errno);
    }
    p += written;
    left -= size_t(written);
  }
}

void AtomicFile::commit() {
  require(fd_ >= 0 && !committed_, "internal: commit twice of '{}'", target_.string());
  if (::fsync(fd_) != 0) give_up("fsync", errno);
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) give_up("close", errno);
  if (::rename(temporary_.c_str(), target_.c_str()) != 0) give_up("rename", errno);
  committed_ = true;
  // The rename is in the directory: sync it too, or a crash may bring the old name back. A
  // directory that cannot be opened or synced (some file systems) does not undo the write.
  const int dir = ::open(directory_of(target_).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
}

void write_file_atomically(const std::filesystem::path& path, std::string_view text) {
  AtomicFile file(path);
  file.write(text);
  file.commit();
}

}  // namespace w4a16::io
