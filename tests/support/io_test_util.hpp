// Shared helpers for the io tests: a per-test temporary directory, raw file bytes, and random
// weights (never all zeros) to quantize.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "w4a16/w4a16.hpp"

namespace w4a16::test {

// A fresh directory under the system temp dir, named after the running test, removed at the end.
// A test that fails instead of hanging: SIGALRM ends the process after 20 s (a read or write that
// waits on a FIFO), and ctest reports the test that was running. For the tests of file types.
class HangGuardedTest : public ::testing::Test {
 protected:
  static constexpr unsigned kSecondsBeforeAHangFails = 20;
  void SetUp() override { ::alarm(kSecondsBeforeAHangFails); }
  void TearDown() override { ::alarm(0); }
};

class TempDir {
 public:
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = "w4a16_io_";
    if (info != nullptr) name += std::string(info->test_suite_name()) + "_" + info->name();
    for (char& c : name) {
      if (c == '/' || c == ' ') c = '_';
    }
    path_ = std::filesystem::temp_directory_path() / (name + "_" + std::to_string(::getpid()));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(std::string_view name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

// Runs `body`, which must throw Error(code) whose message contains `substring`.
template <typename F>
void expect_error(F&& body, ErrorCode code, const std::string& substring) {
  try {
    body();
    ADD_FAILURE() << "expected an error containing '" << substring << "'";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    EXPECT_NE(std::string(e.what()).find(substring), std::string::npos)
        << "message '" << e.what() << "' lacks '" << substring << "'";
  }
}

inline std::vector<std::byte> read_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> chars((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::byte> out(chars.size());
  if (!chars.empty()) std::memcpy(out.data(), chars.data(), chars.size());
  return out;
}

inline void write_bytes(const std::filesystem::path& path, std::span<const std::byte> bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
  ASSERT_TRUE(out.good()) << "cannot write " << path;
}

// A safetensors file from a raw header text (not padded, not checked) and a data buffer, with the
// header length field set to the header's size unless `header_length` overrides it.
inline std::vector<std::byte> make_safetensors(std::string_view header, std::span<const std::byte> data = {},
                                               std::optional<uint64_t> header_length = std::nullopt) {
  const uint64_t length = header_length.value_or(header.size());
  std::vector<std::byte> out(8 + header.size() + data.size());
  for (int i = 0; i < 8; ++i) out[size_t(i)] = std::byte((length >> (8 * i)) & 0xFF);
  if (!header.empty()) std::memcpy(out.data() + 8, header.data(), header.size());
  if (!data.empty()) std::memcpy(out.data() + 8 + header.size(), data.data(), data.size());
  return out;
}

inline std::vector<std::byte> filled_bytes(size_t count, uint8_t first = 1) {
  std::vector<std::byte> out(count);
  for (size_t i = 0; i < count; ++i) out[i] = std::byte(uint8_t(first + i));
  return out;
}

// Uniform random weights in [-scale, scale] as fp32, with no exact zeros.
inline std::vector<float> random_weights(int64_t count, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-scale, scale);
  std::vector<float> out(static_cast<size_t>(count));
  for (float& v : out) {
    do {
      v = dist(rng);
    } while (v == 0.0f);
  }
  return out;
}

}  // namespace w4a16::test
