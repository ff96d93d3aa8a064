// Replay and mutation driver for LLVMFuzzerTestOneInput, for compilers without libFuzzer (and as
// a quick ctest smoke test under any build, sanitizers included).
//
//   safetensors_fuzz_replay [--mutations N] [--seed S] PATH...
//
// Runs every file given (directories: every regular file inside, sorted), then N deterministic
// mutations of each. A mutation applies 1 to 4 edits drawn from: bit flips, byte overwrites with
// "interesting" values, byte insertions and deletions, truncation, edits of the u64 header length,
// number and token edits inside the JSON header (with the header length fixed up afterwards, so
// the edit reaches the JSON and layer checks rather than the length check), and splices from
// another seed. The same arguments always produce the same inputs, so a failure reproduces by
// rerunning; with W4A16_FUZZ_VERBOSE=1 in the environment the driver names the seed file and
// mutation index before each run, which locates the input that crashed.
#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

#include "safetensors_fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

using Bytes = std::vector<uint8_t>;

// splitmix64: small, fast, and identical on every platform (std distributions are not).
struct Rng {
  uint64_t state;
  uint64_t next() {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  size_t below(size_t n) { return n == 0 ? 0 : size_t(next() % n); }
  bool chance(int percent) { return below(100) < size_t(percent); }
};

constexpr uint8_t kInterestingBytes[] = {0x00, 0x01, 0x7F, 0x80, 0xFF, '{', '}', '[',  ']',  '"',  ',',  ':',
                                         '-',  '0',  '1',  '9',  '.',  'e', ' ', '\\', 0x10, 0x11, 0x7C, 0xC0};

// Tokens that the header holds; replacing one with another keeps most of the JSON valid.
constexpr std::string_view kTokens[] = {
    "\"F16\"",
    "\"BF16\"",
    "\"F32\"",
    "\"U8\"",
    "\"I8\"",
    "\"I32\"",
    "\"I64\"",
    "\"F64\"",
    "\"BOOL\"",
    "\"F8_E4M3\"",
    "\"shape\"",
    "\"dtype\"",
    "[]",
    "[0]",
    "[1,1]",
    "0",
    "1",
    "2",
    "8",
    "16",
    "17",
    "-1",
    "1.5",
    "null",
    "true",
    "false",
    "{}",
    "\"\"",
    "\\\"sym\\\"",
    "\\\"asym\\\"",
    "\\\"float\\\"",
    "\\\"fp16\\\"",
    "\\\"bf16\\\"",
    "\\\"fp32\\\"",
    "\"data_offsets\"",
    "\"__metadata__\"",
    "\\\"version\\\"",
    "\\\"act_order\\\"",
    "\\\"group_size\\\"",
    "4294967296",
    "18446744073709551615",
    "9223372036854775807",
    ".w4a16",
    ".bias",
};

uint64_t read_u64(const Bytes& b) {
  uint64_t v = 0;
  for (int i = 0; i < 8 && i < int(b.size()); ++i) v |= uint64_t(b[size_t(i)]) << (8 * i);
  return v;
}

void write_u64(Bytes& b, uint64_t v) {
  if (b.size() < 8) b.resize(8, 0);
  for (int i = 0; i < 8; ++i) b[size_t(i)] = uint8_t(v >> (8 * i));
}

// The header as [8, 8 + length) when the length field is in range, else nothing.
bool header_range(const Bytes& b, size_t& begin, size_t& end) {
  if (b.size() < 8) return false;
  const uint64_t length = read_u64(b);
  if (length > b.size() - 8) return false;
  begin = 8;
  end = 8 + size_t(length);
  return true;
}

// Replaces b[pos, pos + count) with `text`, keeping the header length field in sync when the edit
// lies inside the header (most of the time; sometimes it is left stale on purpose).
void splice_header(Bytes& b, size_t pos, size_t count, std::string_view text, Rng& rng) {
  size_t hb = 0, he = 0;
  const bool in_header = header_range(b, hb, he) && pos >= hb && pos + count <= he;
  b.erase(b.begin() + std::ptrdiff_t(pos), b.begin() + std::ptrdiff_t(pos + count));
  b.insert(b.begin() + std::ptrdiff_t(pos), text.begin(), text.end());
  if (in_header && !rng.chance(10)) write_u64(b, uint64_t(he - hb) - count + text.size());
}

void mutate_once(Bytes& b, const std::vector<Bytes>& seeds, Rng& rng) {
  size_t hb = 0, he = 0;
  switch (rng.below(11)) {
    case 0:  // bit flip
      if (!b.empty()) b[rng.below(b.size())] ^= uint8_t(1u << rng.below(8));
      break;
    case 1:  // interesting byte
      if (!b.empty()) b[rng.below(b.size())] = kInterestingBytes[rng.below(std::size(kInterestingBytes))];
      break;
    case 2: {  // random byte insertion(s)
      const size_t pos = rng.below(b.size() + 1);
      const size_t count = 1 + rng.below(8);
      for (size_t i = 0; i < count; ++i) b.insert(b.begin() + std::ptrdiff_t(pos), uint8_t(rng.next()));
      break;
    }
    case 3: {  // deletion
      if (b.empty()) break;
      const size_t pos = rng.below(b.size());
      const size_t count = std::min(b.size() - pos, 1 + rng.below(16));
      b.erase(b.begin() + std::ptrdiff_t(pos), b.begin() + std::ptrdiff_t(pos + count));
      break;
    }
    case 4:  // truncation
      b.resize(rng.below(b.size() + 1));
      break;
    case 5: {  // header length edit
      const uint64_t length = read_u64(b);
      const uint64_t choices[] = {length + 1,
                                  length - 1,
                                  length + 8,
                                  length - 8,
                                  0,
                                  b.size() >= 8 ? b.size() - 8 : 0,
                                  b.size() >= 8 ? b.size() - 7 : 1,
                                  100ull * 1024 * 1024,
                                  100ull * 1024 * 1024 + 1,
                                  ~0ull,
                                  1ull << 63,
                                  rng.next()};
      write_u64(b, choices[rng.below(std::size(choices))]);
      break;
    }
    case 6: {  // number edit inside the header
      if (!header_range(b, hb, he) || he == hb) break;
      const size_t start = hb + rng.below(he - hb);
      size_t pos = start;
      while (pos < he && !(b[pos] >= '0' && b[pos] <= '9')) ++pos;
      if (pos == he) break;
      size_t digits = pos;
      while (digits < he && b[digits] >= '0' && b[digits] <= '9') ++digits;
      std::string replacement;
      switch (rng.below(4)) {
        case 0:
          replacement = std::to_string(rng.below(64));
          break;
        case 1: {
          uint64_t value = 0;
          for (size_t i = pos; i < digits && i < pos + 18; ++i) value = value * 10 + (b[i] - '0');
          replacement = std::to_string(value + (rng.chance(50) ? 1 : uint64_t(-1)));
          break;
        }
        case 2:
          replacement = std::to_string(rng.next() >> rng.below(64));
          break;
        default:
          replacement = std::string(1, char('0' + rng.below(10)));
          break;
      }
      splice_header(b, pos, digits - pos, replacement, rng);
      break;
    }
    case 7: {  // token replacement inside the header
      if (!header_range(b, hb, he) || he == hb) break;
      const std::string_view header(reinterpret_cast<const char*>(b.data()) + hb, he - hb);
      const std::string_view from = kTokens[rng.below(std::size(kTokens))];
      const size_t found = header.find(from, rng.below(header.size()));
      const size_t at = found != std::string_view::npos ? found : header.find(from);
      if (at == std::string_view::npos) break;
      splice_header(b, hb + at, from.size(), kTokens[rng.below(std::size(kTokens))], rng);
      break;
    }
    case 8: {  // token insertion inside the header
      if (!header_range(b, hb, he)) break;
      splice_header(b, hb + rng.below(he - hb + 1), 0, kTokens[rng.below(std::size(kTokens))], rng);
      break;
    }
    case 9: {  // data-buffer byte edit (codes, scales, zeros, perm values)
      if (!header_range(b, hb, he) || he >= b.size()) break;
      const size_t pos = he + rng.below(b.size() - he);
      const uint8_t values[] = {0x00, 0x11, 0x7C, 0x7E, 0xFF, 0x80, uint8_t(rng.next())};
      b[pos] = values[rng.below(std::size(values))];
      break;
    }
    default: {  // splice a chunk of another seed
      const Bytes& other = seeds[rng.below(seeds.size())];
      if (other.empty()) break;
      const size_t from = rng.below(other.size());
      const size_t count = std::min(other.size() - from, 1 + rng.below(64));
      const size_t pos = rng.below(b.size() + 1);
      b.insert(b.begin() + std::ptrdiff_t(pos), other.begin() + std::ptrdiff_t(from),
               other.begin() + std::ptrdiff_t(from + count));
      break;
    }
  }
}

bool read_file(const std::filesystem::path& path, Bytes& out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  out.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return true;
}

int usage() {
  std::fprintf(stderr, "usage: safetensors_fuzz_replay [--mutations N] [--seed S] PATH...\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  size_t mutations = 0;
  uint64_t seed = 1;
  std::vector<std::filesystem::path> files;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if ((arg == "--mutations" || arg == "--seed") && i + 1 < argc) {
      const uint64_t value = std::strtoull(argv[++i], nullptr, 10);
      (arg == "--mutations" ? mutations : seed) = value;
    } else if (arg.starts_with("--")) {
      return usage();
    } else if (std::filesystem::is_directory(arg)) {
      std::vector<std::filesystem::path> inside;
      for (const auto& entry : std::filesystem::directory_iterator(arg)) {
        if (entry.is_regular_file()) inside.push_back(entry.path());
      }
      std::sort(inside.begin(), inside.end());
      files.insert(files.end(), inside.begin(), inside.end());
    } else {
      files.emplace_back(arg);
    }
  }
  if (files.empty()) return usage();

  std::vector<Bytes> seeds(files.size());
  for (size_t i = 0; i < files.size(); ++i) {
    if (!read_file(files[i], seeds[i])) {
      std::fprintf(stderr, "safetensors_fuzz_replay: cannot read %s\n", files[i].c_str());
      return 1;
    }
  }

  const bool verbose = std::getenv("W4A16_FUZZ_VERBOSE") != nullptr;
  const auto start = std::chrono::steady_clock::now();
  size_t runs = 0;
  for (size_t i = 0; i < seeds.size(); ++i) {
    if (verbose) std::fprintf(stderr, "run %s\n", files[i].c_str());
    LLVMFuzzerTestOneInput(seeds[i].data(), seeds[i].size());
    ++runs;
    for (size_t m = 0; m < mutations; ++m) {
      Rng rng{seed * 0x100000001B3ull ^ (uint64_t(i) << 32) ^ uint64_t(m)};
      Bytes input = seeds[i];
      const size_t edits = 1 + rng.below(4);
      for (size_t e = 0; e < edits; ++e) mutate_once(input, seeds, rng);
      if (verbose) std::fprintf(stderr, "run %s mutation %zu\n", files[i].c_str(), m);
      LLVMFuzzerTestOneInput(input.data(), input.size());
      ++runs;
    }
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const auto& stats = w4a16::fuzz::stats();
  std::printf(
      "safetensors_fuzz_replay: %zu inputs (%zu files x (1 + %zu mutations)) in %.2f s, no failures\n"
      "  %zu parsed as safetensors, %zu quantized-layer reads, %zu layers loaded\n",
      runs, files.size(), mutations, seconds, stats.parsed, stats.layers_tried, stats.layers_loaded);
  return 0;
}
