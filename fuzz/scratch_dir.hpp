// A scratch directory for a fuzz target that runs convert() on files: one per process, on tmpfs
// when there is one (convert fsyncs its output, which costs milliseconds on a disk), removed at exit.
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>

namespace w4a16::fuzz {

inline const std::filesystem::path& scratch_dir() {
  static const std::filesystem::path dir = [] {
    const std::filesystem::path shm = "/dev/shm";
    std::error_code error;
    const auto base = std::filesystem::is_directory(shm, error) ? shm : std::filesystem::temp_directory_path();
    auto path = base / ("w4a16_fuzz_" + std::to_string(::getpid()));
    std::filesystem::create_directories(path);
    return path;
  }();
  // Registered once `dir` is made, so that it runs before `dir` is destroyed.
  [[maybe_unused]] static const bool removed_at_exit = std::atexit([] {
    std::error_code ignored;
    std::filesystem::remove_all(scratch_dir(), ignored);
  }) == 0;
  return dir;
}

}  // namespace w4a16::fuzz
