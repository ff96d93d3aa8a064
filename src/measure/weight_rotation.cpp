#include "measure/weight_rotation.hpp"

#include <algorithm>
#include <future>

#include "common/check.hpp"

namespace w4a16::measure {

WeightRotation::WeightRotation(int64_t bytes_per_copy, int64_t rotation_bytes,
                               const std::function<PackedWeight()>& make, int workers) {
  require(bytes_per_copy > 0, "bench: a rotated weight needs a positive size, got {} bytes", bytes_per_copy);
  const int64_t count = std::max<int64_t>(2, (rotation_bytes + bytes_per_copy - 1) / bytes_per_copy);
  copies_.resize(size_t(count));
  const int64_t threads = std::clamp<int64_t>(workers, 1, count);
  std::vector<std::future<void>> packers;
  for (int64_t t = 0; t < threads; ++t) {
    packers.push_back(std::async(std::launch::async, [this, &make, t, threads, count] {
      for (int64_t i = t; i < count; i += threads) copies_[size_t(i)] = make();
    }));
  }
  for (auto& f : packers) f.get();  // rethrows a packer's exception (~future joins the other packers)
}

}  // namespace w4a16::measure
