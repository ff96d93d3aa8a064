#include "measure/cuda_bench.hpp"

#include <cuda_runtime_api.h>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <random>

#include "common/check.hpp"
#include "cuda/cuda_objects.hpp"
#include "measure/random_bits.hpp"
#include "measure/reference_sample.hpp"

namespace w4a16::measure {

namespace {

void check(cudaError_t s, const char* what) {
  if (s != cudaSuccess) fail(ErrorCode::internal, "cuda bench: {} failed: {}", what, cudaGetErrorString(s));
}

struct DeviceMem {
  void* p = nullptr;
  explicit DeviceMem(size_t bytes) { check(cudaMalloc(&p, std::max<size_t>(bytes, 1)), "cudaMalloc"); }
  ~DeviceMem() { cudaFree(p); }
  DeviceMem(const DeviceMem&) = delete;
  DeviceMem& operator=(const DeviceMem&) = delete;
};

// The layers (K x N): Llama q/o-class, up, down and the 70B's up / down, then K >> N.
std::vector<std::pair<int64_t, int64_t>> default_layers() {
  return {{4096, 4096}, {4096, 14336}, {14336, 4096}, {8192, 28672}, {28672, 8192},
          {14336, 512}, {14336, 1024}, {28672, 512},  {28672, 1024}};
}

// Random codes and scales (sym, g = group_size), made directly: quantizing a float matrix of
// 235 M weights would take longer than timing it.
QuantizedWeight random_layer(int64_t k, int64_t n, int64_t g, uint64_t seed) {
  const QuantizedLayout layout{n, k, g, ZeroMode::sym, DType::f16};
  std::mt19937_64 bits(seed);
  std::vector<uint8_t> codes(size_t(n * layout.row_bytes()));
  for (size_t i = 0; i < codes.size(); i += 8) {
    const uint64_t r = bits();
    std::memcpy(codes.data() + i, &r, std::min<size_t>(8, codes.size() - i));
  }
  if (k % 2) {
    for (int64_t row = 0; row < n; ++row) codes[size_t(row * layout.row_bytes() + k / 2)] &= 0x0F;
  }
  std::vector<std::byte> scales(size_t(n * layout.groups() * 2));
  for (size_t i = 0; i < scales.size(); i += 2) {
    const uint16_t s = f32_to_f16(0.005f + 0.01f * float(bits() % 1000) / 1000.0f);
    std::memcpy(&scales[i], &s, 2);
  }
  return QuantizedWeight(layout, std::move(codes), std::move(scales));
}

// Device-to-device copy bandwidth (read + write bytes / time) of a 1 GiB buffer: the roofline.
double copy_gbps(cudaStream_t stream) {
  const size_t bytes = size_t(1) << 30;
  DeviceMem a(bytes), b(bytes);
  check(cudaMemsetAsync(a.p, 1, bytes, stream), "cudaMemsetAsync");
  cudaEvent_t start, stop;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  std::vector<float> ms;
  for (int i = 0; i < 6; ++i) {
    cudaEventRecord(start, stream);
    cudaMemcpyAsync(b.p, a.p, bytes, cudaMemcpyDeviceToDevice, stream);
    cudaEventRecord(stop, stream);
    check(cudaEventSynchronize(stop), "copy");
    float t = 0;
    cudaEventElapsedTime(&t, start, stop);
    if (i > 0) ms.push_back(t);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  std::sort(ms.begin(), ms.end());
  return 2.0 * double(bytes) / (double(ms[ms.size() / 2]) * 1e-3) / 1e9;
}

// Median ms per call of `call(i)` (i = call index, for rotation): batches of back-to-back calls
// captured in a CUDA graph when possible; `graph` reports which.
double time_calls(const std::function<void(int64_t)>& call, int64_t copies, cudaStream_t stream, double min_batch_ms,
                  bool& graph) {
  cudaEvent_t start, stop;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  const auto elapsed = [&] {
    check(cudaEventSynchronize(stop), "timed calls");
    float t = 0;
    cudaEventElapsedTime(&t, start, stop);
    return double(t);
  };
  // Warm-up: every rotated copy once (each makes its dense copy on its first dense call, which must
  // not happen inside the capture), workspaces, cuBLAS's heuristics.
  for (int64_t i = 0; i < std::max<int64_t>(3, copies); ++i) call(i);
  check(cudaStreamSynchronize(stream), "warm-up");
  cudaEventRecord(start, stream);
  for (int64_t i = 0; i < 8; ++i) call(i);
  cudaEventRecord(stop, stream);
  const double per_call = std::max(elapsed() / 8, 1e-4);
  const int64_t iters = std::clamp<int64_t>(int64_t(min_batch_ms / per_call) + 1, 8, 2000);

  cudaGraphExec_t exec = nullptr;
  graph = false;
  cudaGraph_t g = nullptr;
  if (cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal) == cudaSuccess) {
    bool ok = true;
    try {
      for (int64_t i = 0; i < iters; ++i) call(i);
    } catch (...) {  // end the capture whatever failed, then time a plain loop
      ok = false;
    }
    const cudaError_t end = cudaStreamEndCapture(stream, &g);
    if (ok && end == cudaSuccess && cudaGraphInstantiate(&exec, g, 0) == cudaSuccess) graph = true;
    if (g) cudaGraphDestroy(g);
  }
  cudaGetLastError();  // a failed capture leaves an error behind; the plain loop follows
  std::vector<double> ms;
  for (int rep = 0; rep < 5; ++rep) {
    cudaEventRecord(start, stream);
    if (graph) {
      cudaGraphLaunch(exec, stream);
    } else {
      for (int64_t i = 0; i < iters; ++i) call(i);
    }
    cudaEventRecord(stop, stream);
    ms.push_back(elapsed() / double(iters));
  }
  if (exec) cudaGraphExecDestroy(exec);
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

struct Row {
  int64_t k, n, m;
  std::string variant;
  int split_k = 1;
  double ms = 0, gbps = 0;
  bool graph = false;
};

}  // namespace

int run_cuda_bench(const CudaBenchConfig& config) {
  const CudaDevices devices = cuda_devices();
  if (devices.devices.empty()) fail(ErrorCode::unsupported, "cuda bench: no CUDA device ({})", devices.note);
  int device = 0;
  check(cudaGetDevice(&device), "cudaGetDevice");
  cudaDeviceProp prop{};
  check(cudaGetDeviceProperties(&prop, device), "cudaGetDeviceProperties");
  struct Stream {  // destroyed on every way out, after the workspace declared below it
    cudaStream_t s = nullptr;
    ~Stream() { cudaStreamDestroy(s); }
  } owned;
  check(cudaStreamCreateWithFlags(&owned.s, cudaStreamNonBlocking), "cudaStreamCreate");
  const cudaStream_t stream = owned.s;

  const double copy = copy_gbps(stream);
  const int64_t l2 = std::max<int64_t>(prop.l2CacheSize, 1 << 20);
  fmt::print("GPU: {} ({} SMs, L2 {} MiB); copy bandwidth {:.0f} GB/s (read + write, 1 GiB)\n", prop.name,
             prop.multiProcessorCount, l2 >> 20, copy);

  const auto layers = config.layers.empty() ? default_layers() : config.layers;
  const std::vector<int64_t> batches =
      config.batches.empty() ? std::vector<int64_t>{1, 2, 4, 8, 16, 32, 64, 128} : config.batches;
  const int64_t max_m = *std::max_element(batches.begin(), batches.end());
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<Row> rows;
  int failures = 0;
  CudaWorkspace ws;
  for (const auto& [k, n] : layers) {
    const double spent = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (spent > config.budget_s) {
      fmt::print("budget of {:.0f} s spent: {}x{} and later layers skipped\n", config.budget_s, k, n);
      break;
    }
    const QuantizedWeight w = random_layer(k, n, config.group_size, uint64_t(k * 131 + n));
    const double q_bytes = double(n) * double(k) / 2 + double(n * w.groups() * 2);
    // Rotation: enough copies that each call reads its weight from HBM, not L2. Packed once per
    // activation dtype on the host; the copies are made on the device.
    const CudaWeight packed_bf16 = to_cuda(w, DType::bf16), packed_f16 = to_cuda(w, DType::f16);
    const auto rotated = [&](const CudaWeight& base, double bytes_each) {
      std::vector<CudaWeight> copies;
      const int64_t r = std::max<int64_t>(1, int64_t(std::ceil(2.0 * double(l2) / bytes_each)));
      while (int64_t(copies.size()) < r) copies.emplace_back(cuda::clone(base.impl()));
      return copies;
    };
    std::vector<CudaWeight> q_bf16 = rotated(packed_bf16, q_bytes);
    std::vector<CudaWeight> d_f16 = rotated(packed_f16, double(n) * double(k) * 2);
    std::vector<CudaWeight> d_bf16 = rotated(packed_bf16, double(n) * double(k) * 2);
    DeviceMem dx(size_t(max_m * k * 2)), dy(size_t(max_m * n * 4));

    for (const int64_t m : batches) {
      const double bytes = q_bytes + double(m * k * 2 + m * n * 2);
      for (const DType act : {DType::bf16, DType::f16}) {
        const std::vector<uint16_t> xh = random_bits(act, m * k, 1.0, uint64_t(m * 7 + k));
        // On the timed stream: a non-blocking stream does not wait for cudaMemcpy's legacy stream.
        check(cudaMemcpyAsync(dx.p, xh.data(), xh.size() * 2, cudaMemcpyHostToDevice, stream), "cudaMemcpyAsync");
        check(cudaStreamSynchronize(stream), "cudaMemcpyAsync");
        const MatrixRef x{dx.p, act, m, k}, x_host{xh.data(), act, m, k};
        const MutableMatrixRef y{dy.p, act, m, n};
        const ReferenceSample reference(x_host, w);

        struct Variant {
          std::string name;
          std::vector<CudaWeight>* weights;
          CudaGemmOptions options;
          double bytes;
        };
        std::vector<Variant> variants;
        CudaGemmOptions o;
        if (act == DType::bf16) {
          variants.push_back({"fused-auto", &q_bf16, o, bytes});
          o.partition = Partition::data_parallel;
          variants.push_back({"fused-dp", &q_bf16, o, bytes});
          for (const int s : {2, 4, 8, 16, 32, 64}) {
            o.partition = Partition::split_k;
            o.split_k = s;
            if (s <= (k / 16) / 8) variants.push_back({"fused-splitk", &q_bf16, o, bytes});
          }
          o = {};
          o.strategy = Strategy::decoupled;
          variants.push_back({"decoupled", &q_bf16, o, bytes});
          o.strategy = Strategy::dense;
          variants.push_back({"cublas-bf16", &d_bf16, o, double(n * k * 2 + m * k * 2 + m * n * 2)});
        } else {
          o.strategy = Strategy::dense;
          variants.push_back({"cublas-fp16", &d_f16, o, double(n * k * 2 + m * k * 2 + m * n * 2)});
        }
        Row best_split{k, n, m, "fused-splitk", 0, 1e30, 0};
        for (const Variant& v : variants) {
          std::vector<CudaWeight>& ws_list = *v.weights;
          // Correctness first: one call, y poisoned, checked on the reference sample.
          check(cudaMemsetAsync(dy.p, 0xFF, size_t(m * n * 2), stream), "cudaMemsetAsync");
          gemm(x, ws_list.front(), y, ws, stream, v.options);
          check(cudaStreamSynchronize(stream), "gemm");
          std::vector<uint16_t> yh(size_t(m * n));
          check(cudaMemcpyAsync(yh.data(), dy.p, yh.size() * 2, cudaMemcpyDeviceToHost, stream), "cudaMemcpyAsync");
          check(cudaStreamSynchronize(stream), "cudaMemcpyAsync");
          const std::string bad = reference.mismatch({yh.data(), act, m, n});
          const CudaPlan plan = plan_cuda_gemm(m, ws_list.front(), v.options);
          if (!bad.empty()) {
            fmt::print("CHECK FAILED {}x{} M={} {} (S={}): {}\n", k, n, m, v.name, plan.split_k, bad);
            ++failures;
            continue;
          }
          bool graph = false;
          const double ms =
              time_calls([&](int64_t i) { gemm(x, ws_list[size_t(i) % ws_list.size()], y, ws, stream, v.options); },
                         int64_t(ws_list.size()), stream, config.min_batch_ms, graph);
          Row r{k, n, m, v.name, plan.split_k, ms, v.bytes / (ms * 1e-3) / 1e9, graph};
          if (v.name == "fused-splitk") {
            if (ms < best_split.ms) best_split = r;
          } else {
            rows.push_back(r);
          }
        }
        if (best_split.split_k > 0) rows.push_back(best_split);
      }
    }
    // One table per layer: ms per variant, speed-ups over cuBLAS fp16, fused GB/s against copy.
    fmt::print("\n{} x {} (K x N), g = {}, int4 weight {:.1f} MB\n", k, n, config.group_size, q_bytes / 1e6);
    fmt::print("{:>5} {:>10} {:>10} {:>14} {:>10} {:>11} {:>11} {:>9} {:>9}\n", "M", "fused", "fused-dp", "splitk (S)",
               "decoupled", "cublas-f16", "cublas-bf16", "x cuBLAS", "% copy");
    for (const int64_t m : batches) {
      const auto find = [&](const std::string& v) -> const Row* {
        for (const Row& r : rows)
          if (r.k == k && r.n == n && r.m == m && r.variant == v) return &r;
        return nullptr;
      };
      const auto ms = [&](const Row* r) { return r ? fmt::format("{:.4f}", r->ms) : std::string("-"); };
      const Row *f = find("fused-auto"), *dp = find("fused-dp"), *sk = find("fused-splitk"), *de = find("decoupled"),
                *c16 = find("cublas-fp16"), *cb16 = find("cublas-bf16");
      fmt::print("{:>5} {:>10} {:>10} {:>14} {:>10} {:>11} {:>11} {:>9} {:>9}\n", m, ms(f), ms(dp),
                 sk ? fmt::format("{:.4f} ({})", sk->ms, sk->split_k) : "-", ms(de), ms(c16), ms(cb16),
                 f && c16 ? fmt::format("{:.2f}x", c16->ms / f->ms) : "-",
                 f ? fmt::format("{:.0f}%", 100 * f->gbps / copy) : "-");
    }
  }

  if (!config.json_path.empty()) {
    nlohmann::json j;
    j["gpu"] = prop.name;
    j["sms"] = prop.multiProcessorCount;
    j["l2_bytes"] = l2;
    j["copy_gbps"] = copy;
    j["group_size"] = config.group_size;
    j["check_failures"] = failures;
    j["rows"] = nlohmann::json::array();
    for (const Row& r : rows) {
      j["rows"].push_back({{"shape", fmt::format("{}x{}", r.k, r.n)},
                           {"k", r.k},
                           {"n", r.n},
                           {"m", r.m},
                           {"variant", r.variant},
                           {"split_k", r.split_k},
                           {"ms", r.ms},
                           {"gbps", r.gbps},
                           {"timing", r.graph ? "graph" : "loop"}});
    }
    std::ofstream(config.json_path) << j.dump(1) << "\n";
  }
  return failures ? 1 : 0;
}

}  // namespace w4a16::measure
