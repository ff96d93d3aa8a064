// Replay and mutation driver for the GGUF fuzz target, for compilers without libFuzzer (and as a
// quick ctest smoke test under any build, sanitizers included).
//
//   gguf_fuzz_replay [--mutations N] [--seed S] PATH...
//
// Runs every file given (directories: every regular file inside, sorted), then N deterministic
// mutations of each. A mutation applies 1 to 4 edits drawn from: bit flips, byte overwrites with
// "interesting" values, byte insertions and deletions, truncation, overwrites of the fixed header
// fields (version, tensor count, key count), overwrites of 4 or 8 bytes anywhere with values that
// GGUF fields hold at their edges (type ids, counts, lengths, 2^60, offsets near the file size),
// and splices from another seed. The same arguments always produce the same inputs; with
// W4A16_FUZZ_VERBOSE=1 the driver names the seed file and mutation index before each run.
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

#include "gguf_fuzz.hpp"

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
};

constexpr uint8_t kInterestingBytes[] = {0x00, 0x01, 0x02, 0x03, 0x07, 0x08, 0x09, 0x0C, 0x0D, 0x10,
                                         0x1F, 0x20, 0x40, 0x7C, 0x7F, 0x80, 0xFE, 0xFF, 'G',  'U'};

void write_le(Bytes& b, size_t pos, uint64_t v, size_t width) {
  if (pos + width > b.size()) return;
  for (size_t i = 0; i < width; ++i) b[pos + i] = uint8_t(v >> (8 * i));
}

uint64_t edge_value(const Bytes& b, size_t pos, Rng& rng) {
  const uint64_t choices[] = {0,
                              1,
                              2,
                              3,
                              4,
                              5,
                              7,
                              8,
                              9,
                              12,
                              13,
                              16,
                              24,
                              28,
                              30,
                              31,
                              32,
                              33,
                              64,
                              255,
                              256,
                              4096,
                              65535,
                              65536,
                              0x7FFFFFFFull,
                              0x80000000ull,
                              0xFFFFFFFFull,
                              1ull << 32,
                              1ull << 60,
                              1ull << 62,
                              1ull << 63,
                              ~0ull,
                              b.size(),
                              b.size() - std::min(pos, b.size()),
                              (b.size() + 31) / 32 * 32,
                              rng.next()};
  return choices[rng.below(std::size(choices))];
}

void mutate_once(Bytes& b, const std::vector<Bytes>& seeds, Rng& rng) {
  switch (rng.below(9)) {
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
    case 5: {  // a fixed header field: version (offset 4, u32), tensor count (8, u64), key count (16, u64)
      const size_t field = rng.below(3);
      const size_t pos = field == 0 ? 4 : field == 1 ? 8 : 16;
      write_le(b, pos, edge_value(b, pos, rng), field == 0 ? 4 : 8);
      break;
    }
    case 6:    // a u32 anywhere (types, n_dims)
    case 7: {  // a u64 anywhere (lengths, counts, dims, offsets)
      if (b.empty()) break;
      const size_t pos = rng.below(b.size());
      write_le(b, pos, edge_value(b, pos, rng), rng.below(2) ? 4 : 8);
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
  std::fprintf(stderr, "usage: gguf_fuzz_replay [--mutations N] [--seed S] PATH...\n");
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
      std::fprintf(stderr, "gguf_fuzz_replay: cannot read %s\n", files[i].c_str());
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
  const auto& stats = w4a16::fuzz::gguf::stats();
  std::printf(
      "gguf_fuzz_replay: %zu inputs (%zu files x (1 + %zu mutations)) in %.2f s, no failures\n"
      "  %zu parsed as GGUF, %zu tensors dequantized, %zu weight imports, %zu weights loaded\n",
      runs, files.size(), mutations, seconds, stats.parsed, stats.dequantized, stats.weights_tried,
      stats.weights_loaded);
  return 0;
}
