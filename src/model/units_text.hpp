// Bandwidths and buffer sizes as `w4a16 model` prints them, in its tables and its JSON's labels.
#pragma once

#include <fmt/format.h>

#include <string>

namespace w4a16::model {

// "1600 GB/s" (decimal gigabytes: the unit bandwidths are published in).
inline std::string gbps_text(double bytes_per_s) { return fmt::format("{:.0f} GB/s", bytes_per_s / 1e9); }

// "192 MiB", or "64 KiB" below a mebibyte (binary units: the unit buffers are sized in).
inline std::string mib_text(double bytes) {
  return bytes >= 1024.0 * 1024.0 ? fmt::format("{:.0f} MiB", bytes / (1024.0 * 1024.0))
                                  : fmt::format("{:.0f} KiB", bytes / 1024.0);
}

}  // namespace w4a16::model
