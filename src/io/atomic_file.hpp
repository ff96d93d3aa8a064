// Writing a file so that readers see either the old file or the complete new one, never a part.
//
// The data goes to a temporary file created exclusively (O_CREAT | O_EXCL | O_NOFOLLOW, a random
// name) in the target's own directory — so a symlink planted where the temporary will be cannot
// redirect the write, and the final rename() stays within one file system — then it is fsynced,
// renamed over the target, and the directory is fsynced so that the rename itself is durable.
// Until commit() succeeds, the target is untouched; a failed or abandoned write removes the
// temporary (a process killed mid-write leaves `.<name>.<random>.tmp` beside the target, never a
// truncated file under the target's name).
//
// What the target is decides how it is written; the rename never replaces anything but a regular
// file. The target is stat()ed, following symlinks:
//   - nothing there, a regular file, or a symlink to a regular file (or a dangling one): the
//     temporary and rename above. A symlink is replaced by the new file; the file it pointed to
//     is not written.
//   - a character device or a FIFO, named directly or through symlinks (/dev/null, /dev/stdout =
//     /proc/self/fd/1 when that is a pipe or a terminal): written in place, as cp and tee do — the
//     existing path opened O_WRONLY, without O_CREAT or O_TRUNC; the device, the FIFO and every
//     link to them stay what they were. Nothing is atomic there (a failure midway leaves part of the
//     output in the pipe or on the device). A FIFO is opened O_NONBLOCK first, so one without a
//     reader fails at once with Error(io) "... a FIFO with no reader" instead of waiting; the flag
//     is then cleared, and writes wait for the reader as a pipe's writes do.
//   - a link to an open file descriptor (/proc/<pid>/fd/<n> on its chain of links: /dev/stdout,
//     /dev/fd/1) that is a regular file, as when stdout is redirected to a file: written in place
//     too, appended (O_APPEND, never O_TRUNC: what the shell's `>` or `>>` left is kept), so that
//     `-o /dev/stdout` writes to stdout and never replaces the system's /dev/stdout link.
//   - anything else (a directory, a block device, a socket): Error(io) naming the path and what
//     it is, before anything is written. A block device is a disk or a partition: `-o /dev/sda`
//     is a typo far more often than a wish, and no output of this library is a disk image.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>

namespace w4a16::io {

class AtomicFile {
 public:
  // Creates the temporary, or opens a device or FIFO in place; throws Error(io) (see above).
  explicit AtomicFile(const std::filesystem::path& target);
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  ~AtomicFile();  // removes the temporary unless committed (in place: closes the target)

  void write(std::span<const std::byte> bytes);  // appends; throws Error(io)
  void write(std::string_view text) { write(std::as_bytes(std::span(text.data(), text.size()))); }
  void commit();  // fsync, rename over the target, fsync the directory (in place: close); throws Error(io)

  // in_place(): the target is a character device, a FIFO or an open descriptor's file, written
  // through; temporary() is then empty.
  bool in_place() const { return in_place_; }
  const std::filesystem::path& temporary() const { return temporary_; }

 private:
  void create_temporary();
  void open_in_place(mode_t mode);  // mode: the target's st_mode
  [[noreturn]] void give_up(std::string_view what, int error);
  std::filesystem::path target_, temporary_;
  bool in_place_ = false;
  int fd_ = -1;
  bool committed_ = false;
};

// The whole of `text` as the new content of `path`, through an AtomicFile.
void write_file_atomically(const std::filesystem::path& path, std::string_view text);

}  // namespace w4a16::io
