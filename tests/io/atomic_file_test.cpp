// The output writer never replaces what is not a regular file (src/io/atomic_file.hpp): a
// character device or a FIFO, named directly or through symlinks, is written in place and stays
// what it was; a FIFO without a reader is an error at once, not a wait; a directory or a socket is
// refused. Before, every output was renamed over its target: `-o /dev/null` as root replaced the
// system's /dev/null with a regular file, and a link to a pipe (/dev/stdout) was replaced too.
//
// No test here touches a system file: /dev/null and pipes are reached through links in a
// temporary directory, so a regression replaces only the link. Every test runs under alarm(): a
// write that waits on a FIFO fails the test instead of hanging it (and ctest's TIMEOUT backs it).
#include "io/atomic_file.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>

#include "io/safetensors.hpp"
#include "support/io_test_util.hpp"

namespace w4a16 {
namespace {

namespace fs = std::filesystem;
using test::expect_error;
using test::TempDir;

using AtomicFile = test::HangGuardedTest;

mode_t type_of(const fs::path& path) {  // st_mode's type bits, following links; 0 when absent
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? (st.st_mode & S_IFMT) : 0;
}

void write_text(const fs::path& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }
std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Everything readable on `fd` until end of file (the writer closed).
std::string drain(int fd) {
  std::string text;
  char buffer[65536];
  for (ssize_t n; (n = ::read(fd, buffer, sizeof buffer)) != 0;) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ADD_FAILURE() << "read: " << std::strerror(errno);
      break;
    }
    text.append(buffer, size_t(n));
  }
  return text;
}

// /dev/null through a link: written (discarded), and the link and /dev/null stay what they were.
// Before, the link was replaced by a regular file holding the output (and `-o /dev/null` itself,
// as root, replaced the system's /dev/null the same way).
TEST_F(AtomicFile, NeverReplacesACharacterDevice) {
  ASSERT_EQ(type_of("/dev/null"), mode_t(S_IFCHR));
  TempDir dir;
  const auto link = dir / "null";
  fs::create_symlink("/dev/null", link);
  io::write_file_atomically(link, "discarded\n");
  io::SafetensorsWriter writer;  // what `gemm -o`, `quantize -o` and Python's save() go through
  writer.add_owned("x", io::StDType::U8, {4}, test::filled_bytes(4));
  writer.write(link);
  EXPECT_TRUE(fs::is_symlink(link));
  EXPECT_EQ(fs::read_symlink(link), "/dev/null");
  EXPECT_EQ(type_of("/dev/null"), mode_t(S_IFCHR));
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()), 1) << "a temporary left";
}

// A FIFO with a reader gets the whole output, more than a pipe holds at once (the write waits for
// the reader, as a pipe's writer does), and stays a FIFO.
TEST_F(AtomicFile, WritesThroughAFifoAndLeavesItAFifo) {
  TempDir dir;
  const auto fifo = dir / "fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0) << std::strerror(errno);
  // The read end is opened first (O_NONBLOCK: it does not wait for a writer), so the writer finds a
  // reader; then it blocks as a reader normally does.
  const int reader = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  ASSERT_GE(reader, 0) << std::strerror(errno);
  ASSERT_EQ(::fcntl(reader, F_SETFL, ::fcntl(reader, F_GETFL) & ~O_NONBLOCK), 0);
  std::string text(1 << 20, '\0');  // 1 MiB: sixteen times a default pipe buffer
  for (size_t i = 0; i < text.size(); ++i) text[i] = char('a' + i % 23);
  std::string error;
  std::thread writer([&] {
    try {
      io::write_file_atomically(fifo, text);
    } catch (const Error& e) {
      error = e.what();
    }
  });
  // Until the writer has opened the FIFO, read() finds no writer and returns 0 at once: read one
  // byte at a time until the first arrives (from then on the writer holds the FIFO open).
  std::string received;
  while (received.empty()) {
    char c;
    const ssize_t n = ::read(reader, &c, 1);
    if (n == 1) received.push_back(c);
    if (n <= 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  received += drain(reader);
  writer.join();
  ::close(reader);
  EXPECT_EQ(error, "");
  EXPECT_EQ(received.size(), text.size());
  EXPECT_TRUE(received == text);
  EXPECT_EQ(type_of(fifo), mode_t(S_IFIFO));
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()), 1) << "a temporary left";
}

// A FIFO nobody reads: Error(io) at once (open is non-blocking and says ENXIO), the FIFO kept.
// Before, the FIFO was replaced by a regular file.
TEST_F(AtomicFile, AFifoWithoutAReaderIsAnErrorNotAWait) {
  TempDir dir;
  const auto fifo = dir / "fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0) << std::strerror(errno);
  const auto link = dir / "link";
  fs::create_symlink(fifo, link);
  for (const auto& path : {fifo, link}) {
    SCOPED_TRACE(path.string());
    expect_error([&] { io::write_file_atomically(path, "x"); }, ErrorCode::io, "a FIFO with no reader");
    EXPECT_EQ(type_of(fifo), mode_t(S_IFIFO));
  }
  EXPECT_TRUE(fs::is_symlink(link));
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()), 2) << "a temporary left";
}

// /proc/self/fd/N of a pipe (what /dev/stdout is when stdout is a pipe), directly and through a
// link: written into the pipe. Before, the directly named one failed (no temporary can be made in
// /proc/self/fd) and the link was replaced by a regular file.
TEST_F(AtomicFile, WritesThroughALinkToAPipe) {
  TempDir dir;
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  const fs::path proc = "/proc/self/fd/" + std::to_string(fds[1]);
  const auto link = dir / "stdout";
  fs::create_symlink(proc, link);
  io::write_file_atomically(proc, "one ");
  io::write_file_atomically(link, "two");
  ::close(fds[1]);
  EXPECT_EQ(drain(fds[0]), "one two");
  ::close(fds[0]);
  EXPECT_TRUE(fs::is_symlink(link));
  EXPECT_EQ(fs::read_symlink(link), proc);
}

// A link to an open descriptor whose file is regular (stdout redirected to a file, reached as
// /dev/stdout): written through, appended after what is there, and the link stays a link. Before
// (and with the first version of this rule), /dev/stdout, a system link, was replaced by the output.
TEST_F(AtomicFile, WritesThroughALinkToAnOpenRegularFile) {
  TempDir dir;
  const auto file = dir / "redirected.txt";
  write_text(file, "before ");
  const int fd = ::open(file.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  const fs::path proc = "/proc/self/fd/" + std::to_string(fd);
  const auto link = dir / "stdout";
  fs::create_symlink(proc, link);
  io::write_file_atomically(link, "one ");
  io::write_file_atomically(fs::path("/dev/fd") / std::to_string(fd), "two");
  ::close(fd);
  EXPECT_TRUE(fs::is_symlink(link));
  EXPECT_EQ(fs::read_symlink(link), proc);
  EXPECT_EQ(read_text(file), "before one two");
  // A link to a regular file that is no descriptor's is still replaced, the file left alone.
  const auto plain = dir / "plain";
  fs::create_symlink(file, plain);
  io::write_file_atomically(plain, "new");
  EXPECT_FALSE(fs::is_symlink(plain));
  EXPECT_EQ(read_text(file), "before one two");
}

// A directory, a link to one, and a socket: Error(io) naming what the path is, before anything is
// written, and each left as it was. Before, a link to a directory was replaced by a regular file,
// and so was a socket; a directory failed only at the rename, after the whole output was written.
TEST_F(AtomicFile, RefusesADirectory) {
  TempDir dir;
  const auto directory = dir / "directory";
  fs::create_directory(directory);
  test::write_bytes(directory / "inside", test::filled_bytes(3));
  const auto link = dir / "link-to-directory";
  fs::create_symlink(directory, link);
  for (const auto& path : {directory, link}) {
    SCOPED_TRACE(path.string());
    expect_error([&] { io::AtomicFile file(path); }, ErrorCode::io, "it is a directory");
  }
  EXPECT_TRUE(fs::is_symlink(link));
  EXPECT_TRUE(fs::is_directory(directory));
  EXPECT_EQ(test::read_bytes(directory / "inside"), test::filled_bytes(3));

  const auto socket_path = dir / "socket";
  const int sock = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(sock, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  ASSERT_LT(socket_path.string().size(), sizeof address.sun_path);
  std::strcpy(address.sun_path, socket_path.c_str());
  ASSERT_EQ(::bind(sock, reinterpret_cast<const sockaddr*>(&address), sizeof address), 0) << std::strerror(errno);
  expect_error([&] { io::write_file_atomically(socket_path, "x"); }, ErrorCode::io, "it is a socket");
  EXPECT_EQ(type_of(socket_path), mode_t(S_IFSOCK));
  ::close(sock);
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()), 3) << "a temporary left";
}

}  // namespace
}  // namespace w4a16
