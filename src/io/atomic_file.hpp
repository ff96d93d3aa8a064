// Writing a file so that readers see either the old file or the complete new one, never a part.
//
// The data goes to a temporary file created exclusively (O_CREAT | O_EXCL | O_NOFOLLOW, a random
// name) in the target's own directory — so a symlink planted where the temporary will be cannot
// redirect the write, and the final rename() stays within one file system — then it is fsynced,
// renamed over the target, and the directory is fsynced so that the rename itself is durable.
// Until commit() succeeds, the target is untouched; a failed or abandoned write removes the
// temporary (a process killed mid-write leaves `.<name>.<random>.tmp` beside the target, never a
// truncated file under the target's name). A target that is a symlink is replaced by the new
// file; the file it pointed to is not written.
#pragma once

#include <cstddef>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>

namespace w4a16::io {

class AtomicFile {
 public:
  explicit AtomicFile(const std::filesystem::path& target);  // creates the temporary, or throws Error(io)
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  ~AtomicFile();  // removes the temporary unless committed

  void write(std::span<const std::byte> bytes);  // appends; throws Error(io)
  void write(std::string_view text) { write(std::as_bytes(std::span(text.data(), text.size()))); }
  void commit();  // fsync, rename over the target, fsync the directory; throws Error(io)

  const std::filesystem::path& temporary() const { return temporary_; }

 private:
  [[noreturn]] void give_up(std::string_view what, int error);
  std::filesystem::path target_, temporary_;
  int fd_ = -1;
  bool committed_ = false;
};

// The whole of `text` as the new content of `path`, through an AtomicFile.
void write_file_atomically(const std::filesystem::path& path, std::string_view text);

}  // namespace w4a16::io
