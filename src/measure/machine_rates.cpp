#include "measure/machine_rates.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "measure/read_bandwidth.hpp"

namespace w4a16::measure {

using nlohmann::json;

MachineRates measure_read(int max_threads) {
  MachineRates rates;
  const HugeBuffer buf(read_buffer_bytes());
  for (int t = 1; t <= std::min(max_threads, 2); ++t) {
    const auto r = measure_read_bandwidth(buf, t, 3);
    rates.gbps[t] = r.gbps;
    rates.variant[t] = r.variant;
  }
  if (max_threads < 2) rates.gbps[2] = rates.gbps[1];
  return rates;
}

MachineRates given_or_measured_read(const std::vector<double>& given, int threads) {
  if (given.empty()) {
    fmt::print(stderr, "calibrating the streaming read bandwidth...\n");
    return measure_read(threads);
  }
  MachineRates rates;
  rates.gbps[1] = given.front();
  rates.gbps[2] = given.back();
  rates.variant[1] = rates.variant[2] = "given by --read-gbps";
  return rates;
}

void given_or_measured_peaks(MachineRates& rates, const std::vector<double>& given) {
  if (given.empty()) {
    rates.peaks = measure_compute_peaks(rates.peak_threads);
    return;
  }
  rates.peaks.given[1] = given.front();
  if (rates.peak_threads > 1) rates.peaks.given[rates.peak_threads] = given.back();
}

void keep_better(MachineRates& into, const MachineRates& other) {
  for (int t = 1; t <= 2; ++t) {
    if (other.gbps[t] > into.gbps[t]) into.gbps[t] = other.gbps[t], into.variant[t] = other.variant[t];
  }
}

void keep_better(ComputePeaks& into, const ComputePeaks& other) {
  for (auto& p : into.measured) {
    for (const auto& q : other.measured) {
      if (q.key != p.key) continue;
      for (const auto& [t, g] : q.gflops) p.gflops[t] = std::max(p.gflops[t], g);
    }
  }
  for (const auto& [t, g] : other.tile_dequant_gweights) {
    into.tile_dequant_gweights[t] = std::max(into.tile_dequant_gweights[t], g);
  }
}

namespace {

// "86.0 / 172.1": the rates in thread-count order.
std::string rates_text(const PerThreads& g) {
  std::string out;
  for (const auto& [t, v] : g) out += fmt::format("{}{:.1f}", out.empty() ? "" : " / ", v);
  return out;
}

// "1 / 2 threads", or "1 thread".
std::string counts_text(const PerThreads& g) {
  std::string out;
  for (const auto& [t, v] : g) out += fmt::format("{}{}", out.empty() ? "" : " / ", t);
  return out + (g.size() == 1 && g.begin()->first == 1 ? " thread" : " threads");
}

}  // namespace

std::string peaks_text(const MachineRates& rates) {
  const ComputePeaks& peaks = rates.peaks;
  if (!peaks.given.empty()) {
    return fmt::format("{} GFLOP/s ({}), given by --peak-gflops", rates_text(peaks.given), counts_text(peaks.given));
  }
  if (peaks.measured.empty()) return "none measured (no AVX2 + FMA): the roofline is the read alone";
  std::string out;
  bool contended = false;
  for (const auto& p : peaks.measured) {
    out += fmt::format("{}{} {}", out.empty() ? "" : ", ", p.instruction, rates_text(p.gflops));
    contended = contended || looks_contended(p.gflops);
  }
  out += fmt::format(" GFLOP/s ({})", counts_text(peaks.measured.front().gflops));
  if (const auto& d = peaks.tile_dequant_gweights; !d.empty()) {
    out += fmt::format("; int4 -> bf16 B tiles {} Gweights/s ({})", rates_text(d), counts_text(d));
  }
  if (contended) out += "\n  note: a multi-thread peak scales badly: another process probably held a CPU";
  return out;
}

json peaks_json(const MachineRates& rates) {
  const auto per_threads = [](const PerThreads& g) {
    json j = json::object();
    for (const auto& [t, v] : g) j[std::to_string(t)] = v;
    return j;
  };
  json peak = json::object(), instruction = json::object(), roof = json::object();
  if (!rates.peaks.given.empty()) {
    peak["given"] = per_threads(rates.peaks.given);
    instruction["given"] = "given by --peak-gflops";
  }
  for (const auto& p : rates.peaks.measured) {
    peak[p.key] = per_threads(p.gflops);
    instruction[p.key] = p.instruction;
  }
  for (const int t : {1, rates.peak_threads}) {
    if (const double g = rates.peaks.roofline_gflops(t); g > 0) roof[std::to_string(t)] = g;
  }
  json out = {{"peak_gflops", peak}, {"peak_instruction", instruction}, {"roofline_gflops", roof}};
  if (!rates.peaks.tile_dequant_gweights.empty()) {
    out["tile_dequant_gweights"] = per_threads(rates.peaks.tile_dequant_gweights);
  }
  return out;
}

void apply_roofline(std::vector<ShapeResult>& results, const MachineRates& rates) {
  for (auto& r : results) {
    const double flops = 2.0 * double(r.m) * double(r.layer.k) * double(r.layer.n);
    for (auto& v : r.variants) {
      const double read = rates.gbps[std::clamp(v.threads, 1, 2)];
      v.pct_bw = 100.0 * v.gbps / read;
      v.roofline_ms = roofline_ms(double(v.weight_bytes), flops, read, rates.peaks.roofline_gflops(v.threads));
      v.vs_roofline = v.roofline_ms > 0 ? v.median_ms / v.roofline_ms : 0;
    }
  }
}

}  // namespace w4a16::measure
