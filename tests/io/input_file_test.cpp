// Every file the library reads is opened without blocking and checked to be a regular file before
// a byte is read (src/io/input_file.hpp). Before, open(O_RDONLY) of a FIFO without a writer waited
// forever, ahead of the regular-file check: `w4a16 info <fifo>`, `gemm -w <fifo>`, `convert <fifo>`,
// Python's load(<fifo>) hung. Every test runs under alarm(), so a regression fails rather than
// hangs (ctest's TIMEOUT backs it). The calibration file's FIFO is in
// tests/plan/calibration_file_test.cpp, the CLI's in tests/cli/cli_test.cpp.
#include "io/input_file.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>

#include "io/gguf.hpp"
#include "io/hf_checkpoint.hpp"
#include "io/mapped_file.hpp"
#include "io/safetensors.hpp"
#include "support/io_test_util.hpp"

namespace w4a16 {
namespace {

namespace fs = std::filesystem;
using test::expect_error;
using test::TempDir;

using InputFiles = test::HangGuardedTest;

// A FIFO nobody writes to, through every reader: Error(io) at once, naming the path and "a FIFO".
TEST_F(InputFiles, AFifoIsRefusedWithoutBlocking) {
  TempDir dir;
  const auto fifo = dir / "fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0) << std::strerror(errno);
  const std::string says = fmt::format("'{}': it is a FIFO, not a regular file", fifo.string());
  expect_error([&] { io::MappedFile::open(fifo); }, ErrorCode::io, says);
  expect_error([&] { io::SafetensorsFile::open(fifo); }, ErrorCode::io, says);
  expect_error([&] { io::GgufFile::open(fifo); }, ErrorCode::io, says);
  expect_error([&] { load_quantized(fifo, "x"); }, ErrorCode::io, says);  // C++'s and Python's load()
  expect_error([&] { list_quantized(fifo); }, ErrorCode::io, says);
  expect_error([&] { io::read_text_file(fifo, 1024); }, ErrorCode::io, says);
  expect_error([&] { convert(fifo, dir / "out.safetensors"); }, ErrorCode::io, says);  // the GGUF sniff

  // A checkpoint directory whose config.json, then whose shard index, is a FIFO.
  const auto checkpoint = dir / "checkpoint";
  fs::create_directory(checkpoint);
  ASSERT_EQ(::mkfifo((checkpoint / "config.json").c_str(), 0600), 0);
  expect_error([&] { io::HfCheckpoint::open(checkpoint); }, ErrorCode::io, "it is a FIFO");
  expect_error([&] { convert(checkpoint, dir / "out.safetensors"); }, ErrorCode::io, "it is a FIFO");
  fs::remove(checkpoint / "config.json");
  test::write_bytes(checkpoint / "config.json", std::as_bytes(std::span(std::string_view("{}"))));
  ASSERT_EQ(::mkfifo((checkpoint / "model.safetensors.index.json").c_str(), 0600), 0);
  expect_error([&] { io::HfCheckpoint::open(checkpoint); }, ErrorCode::io, "it is a FIFO");
  EXPECT_FALSE(fs::exists(dir / "out.safetensors"));
}

// A directory and a character device are refused the same way, each named for what it is.
TEST_F(InputFiles, OtherNonRegularFilesAreRefusedNamingTheirType) {
  TempDir dir;
  expect_error([&] { io::MappedFile::open(dir.path()); }, ErrorCode::io, "it is a directory, not a regular file");
  expect_error([&] { io::read_text_file(dir.path(), 1024); }, ErrorCode::io, "it is a directory");
  expect_error([&] { io::MappedFile::open("/dev/null"); }, ErrorCode::io, "it is a character device");
  expect_error([&] { io::read_text_file("/dev/zero", 1024); }, ErrorCode::io, "it is a character device");
}

// A regular file reads back whole, and one beyond the limit is refused before it is read.
TEST_F(InputFiles, TextReadsReturnTheFileAndKeepTheLimit) {
  TempDir dir;
  const auto path = dir / "text";
  const std::string text = "{\"a\": 1}\n";
  test::write_bytes(path, std::as_bytes(std::span(text)));
  EXPECT_EQ(io::read_text_file(path, text.size()), text);
  expect_error([&] { io::read_text_file(path, text.size() - 1); }, ErrorCode::format, "the limit is");
  const io::InputFile file = io::InputFile::open(path);
  EXPECT_EQ(file.size(), text.size());
}

}  // namespace
}  // namespace w4a16
