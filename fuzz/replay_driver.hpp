// The shared part of the fuzz targets' replay drivers (for compilers without libFuzzer, and the
// ctest *_fuzz_smoke tests under any build, sanitizers included):
//
//   <target>_fuzz_replay [--mutations N] [--seed S] PATH...
//
// Runs every file given (directories: every regular file inside, sorted) through the target's
// LLVMFuzzerTestOneInput, then N deterministic mutations of each, a mutation being 1 to 4 edits
// made by the target's own `mutate_once` (which knows its format's fields). The same arguments
// always produce the same inputs; with W4A16_FUZZ_VERBOSE=1 the driver names the seed file and
// mutation index before each run, so a failure can be replayed alone.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string_view>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace w4a16::fuzz {

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

// Inserts a chunk (1 to 64 bytes) of a random seed at a random place: the common last resort of
// every target's mutator. Bytes is std::vector<uint8_t> or std::string.
template <typename Bytes>
void splice_from_seed(Bytes& b, const std::vector<Bytes>& seeds, Rng& rng) {
  const Bytes& other = seeds[rng.below(seeds.size())];
  if (other.empty()) return;
  const size_t from = rng.below(other.size());
  const size_t count = std::min(other.size() - from, 1 + rng.below(64));
  const size_t pos = rng.below(b.size() + 1);
  b.insert(b.begin() + std::ptrdiff_t(pos), other.begin() + std::ptrdiff_t(from),
           other.begin() + std::ptrdiff_t(from + count));
}

struct ReplayCounts {
  size_t runs = 0, files = 0, mutations = 0;
  double seconds = 0;
};

// The driver's main(): returns the process exit status (2 for bad arguments, 1 for an unreadable
// file, 0 otherwise; a failing input aborts inside LLVMFuzzerTestOneInput). `summary` prints the
// target's own counters after the counts.
template <typename Bytes, typename Mutate, typename Summary>
int replay_main(int argc, char** argv, const char* name, Mutate mutate_once, Summary summary) {
  const auto usage = [&] {
    std::fprintf(stderr, "usage: %s [--mutations N] [--seed S] PATH...\n", name);
    return 2;
  };
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
    std::ifstream in(files[i], std::ios::binary);
    if (!in) {
      std::fprintf(stderr, "%s: cannot read %s\n", name, files[i].c_str());
      return 1;
    }
    seeds[i].assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }

  const bool verbose = std::getenv("W4A16_FUZZ_VERBOSE") != nullptr;
  const auto start = std::chrono::steady_clock::now();
  ReplayCounts counts{0, files.size(), mutations, 0};
  for (size_t i = 0; i < seeds.size(); ++i) {
    for (size_t m = 0; m <= mutations; ++m) {
      Bytes input = seeds[i];
      if (m > 0) {
        Rng rng{seed * 0x100000001B3ull ^ (uint64_t(i) << 32) ^ uint64_t(m)};
        const size_t edits = 1 + rng.below(4);
        for (size_t e = 0; e < edits; ++e) mutate_once(input, seeds, rng);
      }
      if (verbose) std::fprintf(stderr, "run %s mutation %zu\n", files[i].c_str(), m);
      LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(input.data()), input.size());
      ++counts.runs;
    }
  }
  counts.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("%s: %zu inputs (%zu files x (1 + %zu mutations)) in %.2f s, no failures\n", name, counts.runs,
              counts.files, counts.mutations, counts.seconds);
  summary();
  return 0;
}

}  // namespace w4a16::fuzz
