// The best streaming DRAM read (the denominator of every "% of bandwidth") and the rotation size
// that keeps weights out of the caches. Shared by `w4a16 bench` / `w4a16 calibrate` and the
// Google Benchmark programs in bench/.
//
// Why a hand-written read and not memcpy or a plain loop: the W4A16 decode kernels are judged
// against the best read this machine can do, so the read tries several shapes (1, 2 or 4
// independent streams per thread, optional software prefetch, AVX2 or AVX-512 loads, eight
// accumulators), on 2 MiB huge pages (a 1 GiB buffer on 4 KiB pages pays a TLB miss every
// 4 KiB) and one contiguous range per thread, and keeps the best pass.
#pragma once

#include <immintrin.h>
#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include "common/host.hpp"
#include "cpu/cpu_features.hpp"

namespace w4a16::measure {

// Weights are rotated over at least this many bytes so every call streams them from DRAM.
inline int64_t rotation_bytes() { return 4 * host::l3_bytes(); }

// ---------------------------------------------------------------------------------------------
// A 2 MiB aligned, huge-page backed, zero-filled buffer (first touch happens here, once)
// ---------------------------------------------------------------------------------------------

class HugeBuffer {
 public:
  static constexpr size_t kHugePage = size_t(2) << 20;

  explicit HugeBuffer(size_t bytes) : bytes_((bytes + kHugePage - 1) / kHugePage * kHugePage) {
    data_ = static_cast<std::byte*>(std::aligned_alloc(kHugePage, bytes_));
    if (!data_) throw std::bad_alloc();
    madvise(data_, bytes_, MADV_HUGEPAGE);  // before the first touch, so the pages are born huge
    std::memset(data_, 1, bytes_);          // non-zero: no zero-page or compression shortcuts
  }
  HugeBuffer(const HugeBuffer&) = delete;
  HugeBuffer& operator=(const HugeBuffer&) = delete;
  ~HugeBuffer() { std::free(data_); }

  const std::byte* data() const { return data_; }
  size_t size() const { return bytes_; }

 private:
  size_t bytes_;
  std::byte* data_;
};

// ---------------------------------------------------------------------------------------------
// Streaming read kernels: sum [begin, end) as 64-bit integers (the sum keeps the loads alive)
// ---------------------------------------------------------------------------------------------

// One loop step reads 8 cache lines (kReadBlock = 512 B) from each of kStreams equal sub-ranges;
// `bytes` must be a multiple of kStreams * 512 (the callers pass 2 MiB multiples).
// kPrefetch > 0 issues prefetcht0 that many bytes ahead on every line.
inline constexpr size_t kReadBlock = 512;

template <int kStreams, int kPrefetch>
__attribute__((target("avx512f"))) uint64_t read_sum_avx512(const std::byte* begin, size_t bytes) {
  const size_t stream_bytes = bytes / kStreams / kReadBlock * kReadBlock;
  __m512i acc[8];  // eight independent accumulators: one per cache line of a block
  for (auto& a : acc) a = _mm512_setzero_si512();
  for (size_t off = 0; off < stream_bytes; off += kReadBlock) {
    for (int s = 0; s < kStreams; ++s) {
      const std::byte* p = begin + size_t(s) * stream_bytes + off;
      if constexpr (kPrefetch > 0) {
        for (int l = 0; l < 8; ++l) __builtin_prefetch(p + kPrefetch + 64 * l, 0, 3);  // = _mm_prefetch T0; also at -O0
      }
      for (int l = 0; l < 8; ++l) acc[l] = _mm512_add_epi64(acc[l], _mm512_load_si512(p + 64 * l));
    }
  }
  __m512i sum = _mm512_add_epi64(_mm512_add_epi64(_mm512_add_epi64(acc[0], acc[1]), _mm512_add_epi64(acc[2], acc[3])),
                                 _mm512_add_epi64(_mm512_add_epi64(acc[4], acc[5]), _mm512_add_epi64(acc[6], acc[7])));
  alignas(64) uint64_t lanes[8];  // (not _mm512_reduce_add_epi64: GCC 12 warns inside it)
  _mm512_store_si512(lanes, sum);
  uint64_t total = 0;
  for (uint64_t lane : lanes) total += lane;
  return total;
}

template <int kStreams, int kPrefetch>
__attribute__((target("avx2"))) uint64_t read_sum_avx2(const std::byte* begin, size_t bytes) {
  const size_t stream_bytes = bytes / kStreams / kReadBlock * kReadBlock;
  __m256i acc[8];  // one per cache line of a block; each line is two 32-byte loads
  for (auto& a : acc) a = _mm256_setzero_si256();
  for (size_t off = 0; off < stream_bytes; off += kReadBlock) {
    for (int s = 0; s < kStreams; ++s) {
      const std::byte* p = begin + size_t(s) * stream_bytes + off;
      if constexpr (kPrefetch > 0) {
        for (int l = 0; l < 8; ++l) __builtin_prefetch(p + kPrefetch + 64 * l, 0, 3);  // = _mm_prefetch T0; also at -O0
      }
      for (int l = 0; l < 8; ++l) {
        const __m256i lo = _mm256_load_si256(reinterpret_cast<const __m256i*>(p + 64 * l));
        const __m256i hi = _mm256_load_si256(reinterpret_cast<const __m256i*>(p + 64 * l + 32));
        acc[l] = _mm256_add_epi64(acc[l], _mm256_add_epi64(lo, hi));
      }
    }
  }
  for (int l = 1; l < 8; ++l) acc[0] = _mm256_add_epi64(acc[0], acc[l]);
  alignas(32) uint64_t lanes[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), acc[0]);
  return lanes[0] + lanes[1] + lanes[2] + lanes[3];
}

using ReadKernel = uint64_t (*)(const std::byte*, size_t);

struct ReadVariant {
  std::string name;  // "avx512 streams:4 prefetch:1024"
  ReadKernel kernel = nullptr;
};

// The read a first attempt would write: one uint64 stream, one accumulator, left to the
// compiler (baseline x86-64 flags: 16-byte SSE2 loads). Kept as a variant because on Zen 4 it
// is sometimes the fastest of all, and the denominator must be the best read.
inline uint64_t read_sum_plain(const std::byte* begin, size_t bytes) {
  const auto* p = reinterpret_cast<const uint64_t*>(begin);
  uint64_t sum = 0;
  for (size_t i = 0; i < bytes / sizeof(uint64_t); ++i) sum += p[i];
  return sum;
}

// Every variant this CPU can run: the plain loop, AVX2 and AVX-512 where cpuid and the OS
// (xgetbv) allow them.
inline std::vector<ReadVariant> read_variants() {
  const auto& f = cpu::cpu_features();
  std::vector<ReadVariant> v;
  v.push_back({"plain-loop streams:1 prefetch:0", &read_sum_plain});
  if (f.avx2 && f.os_saves_ymm) {
    v.push_back({"avx2 streams:1 prefetch:0", &read_sum_avx2<1, 0>});
    v.push_back({"avx2 streams:1 prefetch:1024", &read_sum_avx2<1, 1024>});
    v.push_back({"avx2 streams:1 prefetch:2048", &read_sum_avx2<1, 2048>});
    v.push_back({"avx2 streams:2 prefetch:0", &read_sum_avx2<2, 0>});
    v.push_back({"avx2 streams:4 prefetch:0", &read_sum_avx2<4, 0>});
    v.push_back({"avx2 streams:4 prefetch:512", &read_sum_avx2<4, 512>});
  }
  if (f.avx512f && f.os_saves_zmm) {
    v.push_back({"avx512 streams:1 prefetch:0", &read_sum_avx512<1, 0>});
    v.push_back({"avx512 streams:1 prefetch:1024", &read_sum_avx512<1, 1024>});
    v.push_back({"avx512 streams:1 prefetch:2048", &read_sum_avx512<1, 2048>});
    v.push_back({"avx512 streams:2 prefetch:0", &read_sum_avx512<2, 0>});
    v.push_back({"avx512 streams:4 prefetch:0", &read_sum_avx512<4, 0>});
    v.push_back({"avx512 streams:4 prefetch:512", &read_sum_avx512<4, 512>});
  }
  return v;
}

inline std::atomic<uint64_t> g_read_sink{0};  // keeps the sums (and so the loads) observable

// Bytes each of `threads` threads reads: an equal, 2 MiB aligned, contiguous slice.
inline size_t read_slice_bytes(const HugeBuffer& buf, int threads) {
  return buf.size() / size_t(threads) / HugeBuffer::kHugePage * HugeBuffer::kHugePage;
}

// One pass over the buffer by `threads` threads, each reading its own contiguous slice; returns
// the seconds from the first thread's start to the last one's end.
inline double timed_read_pass(const HugeBuffer& buf, int threads, ReadKernel kernel) {
  using Clock = std::chrono::steady_clock;
  const size_t slice = read_slice_bytes(buf, threads);
  std::vector<Clock::time_point> start(static_cast<size_t>(threads)), stop(static_cast<size_t>(threads));
  std::barrier sync(threads);
  auto body = [&](int t) {
    sync.arrive_and_wait();  // all threads exist before anyone starts reading
    start[size_t(t)] = Clock::now();
    const uint64_t sum = kernel(buf.data() + size_t(t) * slice, slice);
    stop[size_t(t)] = Clock::now();
    g_read_sink.fetch_add(sum, std::memory_order_relaxed);
  };
  std::vector<std::thread> team;
  for (int t = 1; t < threads; ++t) team.emplace_back(body, t);
  body(0);
  for (auto& th : team) th.join();
  const auto first = *std::min_element(start.begin(), start.end());
  const auto last = *std::max_element(stop.begin(), stop.end());
  return std::chrono::duration<double>(last - first).count();
}

// "AnonHugePages" of /proc/self/smaps_rollup in kB: how much anonymous memory THP backs.
inline int64_t anon_huge_pages_kb() {
  std::ifstream in("/proc/self/smaps_rollup");
  std::string key;
  int64_t kb = -1;
  while (in >> key) {
    if (key == "AnonHugePages:") {
      in >> kb;
      break;
    }
  }
  return kb;
}

inline size_t read_buffer_bytes() { return size_t(std::max<int64_t>(int64_t(1) << 30, 8 * host::l3_bytes())); }

struct ReadBandwidth {
  double gbps = 0;              // best pass, 1e9 bytes per second
  std::string variant;          // which read achieved it
  ReadKernel kernel = nullptr;  // and its function, for later probes
  size_t bytes = 0;             // buffer size
  int threads = 0;
};

// Best of `passes` timed passes of one read kernel over the whole buffer, in GB/s.
inline double probe_read_bandwidth(const HugeBuffer& buf, int threads, ReadKernel kernel, int passes = 3) {
  const double read = double(read_slice_bytes(buf, threads)) * threads;
  double best = 0;
  for (int p = 0; p < passes; ++p) best = std::max(best, read / timed_read_pass(buf, threads, kernel) / 1e9);
  return best;
}

// The best streaming DRAM read for `threads` threads: every variant, `passes` timed passes each
// (after one untimed warm-up pass), best pass kept. About 0.04 s per pass per GiB.
inline ReadBandwidth measure_read_bandwidth(const HugeBuffer& buf, int threads, int passes = 3) {
  ReadBandwidth best;
  best.bytes = buf.size();
  best.threads = threads;
  for (const auto& v : read_variants()) {
    timed_read_pass(buf, threads, v.kernel);  // warm-up: page tables, frequency
    const double gbps = probe_read_bandwidth(buf, threads, v.kernel, passes);
    if (gbps > best.gbps) {
      best.gbps = gbps;
      best.variant = v.name;
      best.kernel = v.kernel;
    }
  }
  return best;
}

inline ReadBandwidth measure_read_bandwidth(int threads, int passes = 3) {
  const HugeBuffer buf(read_buffer_bytes());
  return measure_read_bandwidth(buf, threads, passes);
}

}  // namespace w4a16::measure
