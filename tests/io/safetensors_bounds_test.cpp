// The cost guarantees of the safetensors reader (docs/formats.md, "safetensors container"): time
// linear in the header size, memory a small multiple of it, whatever the header holds. Each test
// is one header an adversarial review used against the reader (commit e185524):
//   - 100k entries took ~45 s (a duplicate-key callback made the JSON parser quadratic);
//   - 52 M integers in an ignored key cost 2.0 GB, 8 M metadata keys 2.9 GB, 52 M-deep nesting
//     3.9 GB (a JSON document of the header was built first).
// Time is guarded by this executable's ctest TIMEOUT (tests/CMakeLists.txt), never by a timed
// assertion; memory by the peak resident set of the process while parsing (VmHWM after resetting
// it through /proc/self/clear_refs), checked in non-sanitized builds only.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "io/safetensors.hpp"
#include "support/io_test_util.hpp"
#include "support/peak_memory.hpp"

namespace w4a16::io {
namespace {

using test::kSanitized;
using test::peak_growth;

// A safetensors file whose header is built in place (8-byte length, then `header`), no data.
class HeaderFile {
 public:
  explicit HeaderFile(size_t reserve) {
    bytes_.reserve(8 + reserve);
    bytes_.resize(8);
  }
  void append(std::string_view text) {
    const size_t at = bytes_.size();
    bytes_.resize(at + text.size());
    std::memcpy(bytes_.data() + at, text.data(), text.size());
  }
  const std::vector<std::byte>& done() {
    const uint64_t length = bytes_.size() - 8;
    std::memcpy(bytes_.data(), &length, 8);
    return bytes_;
  }
  size_t header_bytes() const { return bytes_.size() - 8; }

 private:
  std::vector<std::byte> bytes_;
};

// The reader may hold a small multiple of the header (what it keeps of each entry is a few
// dozen bytes for an entry of about 50) plus a fixed allowance for the allocator and libraries.
void expect_bounded(long long growth, size_t header_bytes, double multiple) {
  if (kSanitized) return;  // ASan's shadow and quarantine make RSS meaningless here
  if (growth < 0) {
    std::printf("note: /proc/self/clear_refs unavailable; peak memory not checked\n");
    return;
  }
  const double bound = multiple * double(header_bytes) + 16e6;
  EXPECT_LT(double(growth), bound) << "reader's peak resident growth " << growth << " bytes for a " << header_bytes
                                   << "-byte header";
  std::printf("header %zu bytes: peak resident growth %.1f MB (bound %.1f MB)\n", header_bytes, double(growth) / 1e6,
              bound / 1e6);
}

TEST(SafetensorsHeaderCost, HundredThousandEntriesLinearTimeBoundedMemory) {
  constexpr int kEntries = 100'000;
  HeaderFile file(kEntries * 64);
  file.append("{");
  char entry[96];
  for (int i = 0; i < kEntries; ++i) {
    const int n =
        std::snprintf(entry, sizeof entry, "%s\"t%d\":{\"dtype\":\"F16\",\"shape\":[0,%d],\"data_offsets\":[0,0]}",
                      i == 0 ? "" : ",", i, i);
    file.append(std::string_view(entry, size_t(n)));
  }
  file.append("}");
  const auto& bytes = file.done();
  size_t count = 0;
  const long long growth = peak_growth([&] {
    const auto parsed = SafetensorsFile::parse(bytes);
    count = parsed.tensors().size();
    EXPECT_NE(parsed.find("t99999"), nullptr);
    EXPECT_EQ(parsed.find("t100000"), nullptr);
  });
  EXPECT_EQ(count, size_t(kEntries));
  expect_bounded(growth, file.header_bytes(), 6.0);
}

TEST(SafetensorsHeaderCost, IgnoredValuesAreNotStored) {
  // ~100 MB: an ignored key of an entry holding 50 M integers.
  constexpr size_t kIntegers = 50'000'000;
  HeaderFile file(kIntegers * 2 + 128);
  file.append(R"({"t":{"dtype":"U8","shape":[0],"data_offsets":[0,0],"ignored":[0)");
  const std::string block = [] {
    std::string s;
    for (int i = 0; i < 4096; ++i) s += ",7";
    return s;
  }();
  for (size_t i = 0; i < kIntegers / 4096; ++i) file.append(block);
  file.append("]}}");
  ASSERT_LE(file.header_bytes(), kMaxHeaderBytes);
  const auto& bytes = file.done();
  const long long growth = peak_growth([&] { EXPECT_EQ(SafetensorsFile::parse(bytes).tensors().size(), 1u); });
  expect_bounded(growth, file.header_bytes(), 0.5);
}

TEST(SafetensorsHeaderCost, MetadataKeyCountIsBounded) {
  // 8 M metadata keys (~90 MB): refused at kMaxMetadataEntries, before they are all stored.
  constexpr int kKeys = 8'000'000;
  HeaderFile file(size_t(kKeys) * 12);
  file.append(R"({"__metadata__":{)");
  char entry[32];
  for (int i = 0; i < kKeys; ++i) {
    const int n = std::snprintf(entry, sizeof entry, "%s\"%x\":\"\"", i == 0 ? "" : ",", i);
    file.append(std::string_view(entry, size_t(n)));
  }
  file.append("}}");
  ASSERT_LE(file.header_bytes(), kMaxHeaderBytes);
  const auto& bytes = file.done();
  const long long growth = peak_growth([&] {
    test::expect_error([&] { SafetensorsFile::parse(bytes); }, ErrorCode::format,
                       "__metadata__ has more than 262144 keys");
  });
  expect_bounded(growth, file.header_bytes(), 0.5);
}

TEST(SafetensorsHeaderCost, DeepNestingIsRefusedAtTheLimit) {
  // 50 M-deep nesting in an ignored key (~100 MB).
  constexpr size_t kDepth = 50'000'000;
  HeaderFile file(kDepth * 2 + 128);
  file.append(R"({"t":{"dtype":"U8","shape":[0],"data_offsets":[0,0],"ignored":)");
  file.append(std::string(kDepth, '['));
  file.append(std::string(kDepth, ']'));
  file.append("}}");
  ASSERT_LE(file.header_bytes(), kMaxHeaderBytes);
  const auto& bytes = file.done();
  const long long growth = peak_growth(
      [&] { test::expect_error([&] { SafetensorsFile::parse(bytes); }, ErrorCode::format, "deeper than 64 levels"); });
  expect_bounded(growth, file.header_bytes(), 0.1);
}

}  // namespace
}  // namespace w4a16::io
