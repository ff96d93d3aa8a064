// Independent packed copies of one weight, cycled through so that every timed call streams its
// weight from DRAM: the copies together exceed the rotation size (4x the L3 by default,
// read_bandwidth.hpp), and a call never finds its weight in a cache the previous call filled.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "w4a16/w4a16.hpp"

namespace w4a16::measure {

class WeightRotation {
 public:
  // Calls `make` (which packs one copy of `bytes_per_copy` streamed bytes) until the copies
  // total at least `rotation_bytes`, and at least twice. `make` runs on up to `workers` threads
  // at once (pack() is a scalar nibble loop: 0.12 s per 4096 x 4096 copy, and a 320 MiB L3 asks
  // for over a hundred copies); it must be safe to call concurrently.
  WeightRotation(int64_t bytes_per_copy, int64_t rotation_bytes, const std::function<PackedWeight()>& make,
                 int workers);

  size_t size() const { return copies_.size(); }
  const PackedWeight& operator[](size_t i) const { return copies_[i]; }
  const std::vector<PackedWeight>& copies() const { return copies_; }
  // The copy the next call should use, and the step past it.
  const PackedWeight& current() const { return copies_[next_ % copies_.size()]; }
  const PackedWeight& next() { return copies_[next_++ % copies_.size()]; }

 private:
  std::vector<PackedWeight> copies_;
  size_t next_ = 0;
};

}  // namespace w4a16::measure
