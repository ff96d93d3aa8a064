// AtomicFile: see atomic_file.hpp for the protocol and why each step is there.
#include "io/atomic_file.hpp"

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "common/check.hpp"
#include "io/input_file.hpp"

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

// Whether `path` names an open file descriptor: it is, or its chain of symlinks passes through,
// /proc/<pid>/fd/<n> (/dev/stdout -> /proc/self/fd/1, /dev/fd/2). Such a link is the descriptor,
// not a name to replace: replacing /dev/stdout when stdout is a regular file would replace a
// system link in /dev, the fault class of /dev/null.
bool names_open_descriptor(std::filesystem::path path) {
  for (int hop = 0; hop < 40; ++hop) {  // the kernel's own limit on a chain of links
    std::error_code error;
    const auto parent = std::filesystem::weakly_canonical(directory_of(path), error);
    if (error) return false;
    path = parent / path.filename();
    const auto fd_dir = path.parent_path();
    if (fd_dir.filename() == "fd" && fd_dir.parent_path().parent_path() == "/proc") return true;
    if (!std::filesystem::is_symlink(path, error)) return false;
    const auto next = std::filesystem::read_symlink(path, error);
    if (error) return false;
    path = next.is_absolute() ? next : parent / next;
  }
  return false;
}

}  // namespace

AtomicFile::AtomicFile(const std::filesystem::path& target) : target_(target) {
  require(!target.filename().empty(), "cannot write '{}': not a file name", target.string());
  // stat() follows symlinks: a link to /dev/null or to a pipe is written through, never replaced.
  // An error (nothing there, a dangling link, a directory on the way we cannot search) is left to
  // create_temporary(), which reports what stops it.
  struct stat st {};
  if (::stat(target.c_str(), &st) == 0 && (!S_ISREG(st.st_mode) || names_open_descriptor(target))) {
    open_in_place(st.st_mode);
  } else {
    create_temporary();
  }
}

void AtomicFile::create_temporary() {
  for (int attempt = 0; attempt < 16 && fd_ < 0; ++attempt) {
    temporary_ = directory_of(target_) / fmt::format(".{}.{}.tmp", target_.filename().string(), random_suffix());
    fd_ = ::open(temporary_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd_ < 0 && errno != EEXIST) break;
  }
  if (fd_ < 0) {
    fail(ErrorCode::io, "cannot write '{}': cannot create a temporary file in '{}': {}", target_.string(),
         directory_of(target_).string(), std::strerror(errno));
  }
}

void AtomicFile::open_in_place(mode_t mode) {
  const std::string name = target_.string();
  // A regular file reached here is an open descriptor's (names_open_descriptor): appended to, as a
  // shell's `>` or `>>` leaves it, never truncated through a second open.
  const bool descriptor_file = S_ISREG(mode);
  if (!S_ISCHR(mode) && !S_ISFIFO(mode) && !descriptor_file) {
    fail(ErrorCode::io,
         "cannot write '{}': it is {} (outputs go to regular files, replaced whole, or to character devices and "
         "FIFOs, written in place)",
         name, file_type_name(mode));
  }
  // No O_CREAT, no O_TRUNC: the path exists and stays what it is. O_NONBLOCK so that a FIFO without
  // a reader fails with ENXIO instead of waiting in open() for one that may never come.
  do {
    fd_ = ::open(name.c_str(), O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC | (descriptor_file ? O_APPEND : 0));
  } while (fd_ < 0 && errno == EINTR);
  if (fd_ < 0 && errno == ENXIO && S_ISFIFO(mode)) {
    fail(ErrorCode::io, "cannot write '{}': it is a FIFO with no reader", name);
  }
  if (fd_ < 0) fail(ErrorCode::io, "cannot write '{}': {}", name, std::strerror(errno));
  in_place_ = true;  // from here on, give_up() closes the target and removes nothing
  // The path may have been swapped between stat() and open(): never write into a regular file in
  // place (it would be neither truncated nor atomic).
  struct stat st {};
  if (::fstat(fd_, &st) != 0) give_up("fstat", errno);
  if (!S_ISCHR(st.st_mode) && !S_ISFIFO(st.st_mode) && !(descriptor_file && S_ISREG(st.st_mode))) {
    ::close(std::exchange(fd_, -1));
    fail(ErrorCode::io, "cannot write '{}': it was replaced by {} while it was opened", name,
         file_type_name(st.st_mode));
  }
  // Writes to a pipe wait for its reader, as any writer's do.
  const int flags = ::fcntl(fd_, F_GETFL);
  if (flags < 0 || ::fcntl(fd_, F_SETFL, flags & ~O_NONBLOCK) != 0) give_up("fcntl", errno);
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_ && !in_place_) ::unlink(temporary_.c_str());
}

void AtomicFile::give_up(std::string_view what, int error) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  if (!in_place_) ::unlink(temporary_.c_str());
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
  const int fd = fd_;
  if (in_place_) {  // a device or FIFO: nothing to sync or rename (fsync of a pipe is EINVAL)
    fd_ = -1;
    committed_ = true;
    if (::close(fd) != 0)
      fail(ErrorCode::io, "cannot write '{}' (close failed: {})", target_.string(), std::strerror(errno));
    return;
  }
  if (::fsync(fd_) != 0) give_up("fsync", errno);
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
