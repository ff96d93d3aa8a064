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
#include <optional>
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

// The current device: its properties, a non-blocking stream every call is timed on, and the copy
// bandwidth measured on it (the roofline of the tables).
struct Gpu {
  struct OwnedStream {
    cudaStream_t s = nullptr;
    OwnedStream() { check(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "cudaStreamCreate"); }
    ~OwnedStream() { cudaStreamDestroy(s); }
    OwnedStream(const OwnedStream&) = delete;
    OwnedStream& operator=(const OwnedStream&) = delete;
  };
  cudaDeviceProp prop{};
  OwnedStream owned;
  cudaStream_t stream = owned.s;
  double copy = 0;
  int64_t l2 = 0;

  explicit Gpu(cudaDeviceProp p) : prop(p), copy(copy_gbps(stream)), l2(std::max<int64_t>(prop.l2CacheSize, 1 << 20)) {}
};

cudaDeviceProp current_device() {
  const CudaDevices devices = cuda_devices();
  if (devices.devices.empty()) fail(ErrorCode::unsupported, "cuda bench: no CUDA device ({})", devices.note);
  int device = 0;
  check(cudaGetDevice(&device), "cudaGetDevice");
  cudaDeviceProp prop{};
  check(cudaGetDeviceProperties(&prop, device), "cudaGetDeviceProperties");
  return prop;
}

// One layer's weight and its device copies: enough of each packing that every call reads its
// weight from HBM, not L2. Packed once per activation dtype on the host; the copies are made on
// the device.
struct LayerWeights {
  QuantizedWeight w;
  double q_bytes = 0;                     // int4 codes + fp16 scales
  std::vector<CudaWeight> q_bf16;         // the W4A16 variants' (bf16 activations)
  std::vector<CudaWeight> d_f16, d_bf16;  // cuBLAS's, each making its 16-bit copy on its first call
};

LayerWeights layer_weights(int64_t k, int64_t n, int64_t group_size, int64_t l2) {
  LayerWeights lw{random_layer(k, n, group_size, uint64_t(k * 131 + n))};
  lw.q_bytes = double(n) * double(k) / 2 + double(n * lw.w.groups() * 2);
  const CudaWeight packed_bf16 = to_cuda(lw.w, DType::bf16), packed_f16 = to_cuda(lw.w, DType::f16);
  const auto rotated = [&](const CudaWeight& base, double bytes_each) {
    std::vector<CudaWeight> copies;
    const int64_t r = std::max<int64_t>(1, int64_t(std::ceil(2.0 * double(l2) / bytes_each)));
    while (int64_t(copies.size()) < r) copies.emplace_back(cuda::clone(base.impl()));
    return copies;
  };
  lw.q_bf16 = rotated(packed_bf16, lw.q_bytes);
  lw.d_f16 = rotated(packed_f16, double(n) * double(k) * 2);
  lw.d_bf16 = rotated(packed_bf16, double(n) * double(k) * 2);
  return lw;
}

struct Variant {
  std::string name;
  std::vector<CudaWeight>* weights;
  CudaGemmOptions options;
  double bytes;  // moved per call: the weight as stored, x and y
};

// bf16: fused as planned, fused data-parallel, fused split-K for each S the K allows, decoupled and
// cuBLAS bf16; fp16: cuBLAS fp16 alone (the baseline the speed-ups are taken over).
std::vector<Variant> variants_for(DType act, int64_t m, int64_t k, int64_t n, LayerWeights& lw) {
  const double bytes = lw.q_bytes + double(m * k * 2 + m * n * 2);
  const double dense_bytes = double(n * k * 2 + m * k * 2 + m * n * 2);
  std::vector<Variant> variants;
  CudaGemmOptions o;
  if (act != DType::bf16) {
    o.strategy = Strategy::dense;
    variants.push_back({"cublas-fp16", &lw.d_f16, o, dense_bytes});
    return variants;
  }
  variants.push_back({"fused-auto", &lw.q_bf16, o, bytes});
  o.partition = Partition::data_parallel;
  variants.push_back({"fused-dp", &lw.q_bf16, o, bytes});
  for (const int s : {2, 4, 8, 16, 32, 64}) {
    o.partition = Partition::split_k;
    o.split_k = s;
    if (s <= (k / 16) / 8) variants.push_back({"fused-splitk", &lw.q_bf16, o, bytes});
  }
  o = {};
  o.strategy = Strategy::decoupled;
  variants.push_back({"decoupled", &lw.q_bf16, o, bytes});
  o.strategy = Strategy::dense;
  variants.push_back({"cublas-bf16", &lw.d_bf16, o, dense_bytes});
  return variants;
}

// The device buffers of one layer's calls and the reference their outputs are checked against.
struct Call {
  MatrixRef x;         // [M, K] on the device
  MutableMatrixRef y;  // [M, N] on the device, poisoned before each checked call
  const ReferenceSample& reference;
  CudaWorkspace& ws;
  cudaStream_t stream;
};

// Correctness first: one call, y poisoned, checked on the reference sample; then timed. Returns
// the row, or nothing (the failure printed) when the check failed.
std::optional<Row> check_and_time(const Variant& v, const Call& c, const CudaBenchConfig& config) {
  const int64_t m = c.x.rows, k = c.x.cols, n = c.y.cols;
  const DType act = c.x.dtype;
  std::vector<CudaWeight>& weights = *v.weights;
  check(cudaMemsetAsync(c.y.data, 0xFF, size_t(m * n * 2), c.stream), "cudaMemsetAsync");
  gemm(c.x, weights.front(), c.y, c.ws, c.stream, v.options);
  check(cudaStreamSynchronize(c.stream), "gemm");
  std::vector<uint16_t> yh(size_t(m * n));
  check(cudaMemcpyAsync(yh.data(), c.y.data, yh.size() * 2, cudaMemcpyDeviceToHost, c.stream), "cudaMemcpyAsync");
  check(cudaStreamSynchronize(c.stream), "cudaMemcpyAsync");
  const std::string bad = c.reference.mismatch({yh.data(), act, m, n});
  const CudaPlan plan = plan_cuda_gemm(m, weights.front(), v.options);
  if (!bad.empty()) {
    fmt::print("CHECK FAILED {}x{} M={} {} (S={}): {}\n", k, n, m, v.name, plan.split_k, bad);
    return std::nullopt;
  }
  bool graph = false;
  const double ms =
      time_calls([&](int64_t i) { gemm(c.x, weights[size_t(i) % weights.size()], c.y, c.ws, c.stream, v.options); },
                 int64_t(weights.size()), c.stream, config.min_batch_ms, graph);
  return Row{k, n, m, v.name, plan.split_k, ms, v.bytes / (ms * 1e-3) / 1e9, graph};
}

// Every variant of one (M, activation dtype) of a layer; of the split-K sweep only the fastest S
// is kept. Returns the number of failed checks.
int run_batch(int64_t m, DType act, LayerWeights& lw, void* dx, void* dy, CudaWorkspace& ws, cudaStream_t stream,
              const CudaBenchConfig& config, std::vector<Row>& rows) {
  const int64_t k = lw.w.k(), n = lw.w.n();
  const std::vector<uint16_t> xh = random_bits(act, m * k, 1.0, uint64_t(m * 7 + k));
  // On the timed stream: a non-blocking stream does not wait for cudaMemcpy's legacy stream.
  check(cudaMemcpyAsync(dx, xh.data(), xh.size() * 2, cudaMemcpyHostToDevice, stream), "cudaMemcpyAsync");
  check(cudaStreamSynchronize(stream), "cudaMemcpyAsync");
  const ReferenceSample reference(MatrixRef{xh.data(), act, m, k}, lw.w);
  const Call call{{dx, act, m, k}, {dy, act, m, n}, reference, ws, stream};
  int failures = 0;
  Row best_split{k, n, m, "fused-splitk", 0, 1e30, 0};
  for (const Variant& v : variants_for(act, m, k, n, lw)) {
    const std::optional<Row> r = check_and_time(v, call, config);
    if (!r) {
      ++failures;
    } else if (v.name == "fused-splitk") {
      if (r->ms < best_split.ms) best_split = *r;
    } else {
      rows.push_back(*r);
    }
  }
  if (best_split.split_k > 0) rows.push_back(best_split);
  return failures;
}

// One table per layer: ms per variant, speed-ups over cuBLAS fp16, fused GB/s against copy.
void print_layer_table(int64_t k, int64_t n, double q_bytes, const std::vector<int64_t>& batches,
                       const std::vector<Row>& rows, const Gpu& gpu, const CudaBenchConfig& config) {
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
               f ? fmt::format("{:.0f}%", 100 * f->gbps / gpu.copy) : "-");
  }
}

void write_json(const std::vector<Row>& rows, int failures, const Gpu& gpu, const CudaBenchConfig& config) {
  nlohmann::json j;
  j["gpu"] = gpu.prop.name;
  j["sms"] = gpu.prop.multiProcessorCount;
  j["l2_bytes"] = gpu.l2;
  j["copy_gbps"] = gpu.copy;
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

}  // namespace

int run_cuda_bench(const CudaBenchConfig& config) {
  const Gpu gpu(current_device());
  fmt::print("GPU: {} ({} SMs, L2 {} MiB); copy bandwidth {:.0f} GB/s (read + write, 1 GiB)\n", gpu.prop.name,
             gpu.prop.multiProcessorCount, gpu.l2 >> 20, gpu.copy);
  const auto layers = config.layers.empty() ? default_layers() : config.layers;
  const std::vector<int64_t> batches =
      config.batches.empty() ? std::vector<int64_t>{1, 2, 4, 8, 16, 32, 64, 128} : config.batches;
  const int64_t max_m = *std::max_element(batches.begin(), batches.end());
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<Row> rows;
  int failures = 0;
  CudaWorkspace ws;  // destroyed before the stream it was used on
  for (const auto& [k, n] : layers) {
    const double spent = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (spent > config.budget_s) {
      fmt::print("budget of {:.0f} s spent: {}x{} and later layers skipped\n", config.budget_s, k, n);
      break;
    }
    LayerWeights lw = layer_weights(k, n, config.group_size, gpu.l2);
    DeviceMem dx(size_t(max_m * k * 2)), dy(size_t(max_m * n * 4));
    for (const int64_t m : batches) {
      for (const DType act : {DType::bf16, DType::f16}) {
        failures += run_batch(m, act, lw, dx.p, dy.p, ws, gpu.stream, config, rows);
      }
    }
    print_layer_table(k, n, lw.q_bytes, batches, rows, gpu, config);
  }
  if (!config.json_path.empty()) write_json(rows, failures, gpu, config);
  return failures ? 1 : 0;
}

}  // namespace w4a16::measure
