// oneDNN peer for bench/peers: y[M,N] = x[M,K] * W^T with bf16 x and one of
//   s4    : signed int4 weights (q - 8), grouped bf16 scales, no zero point (sym)
//   u4zp  : unsigned int4 weights q, grouped bf16 scales and grouped int zero points (asym)
//   dense : bf16 weights (the dequantized W rounded to bf16), the FP16-class baseline
// all with fpmath mode bf16 (applied to integer weights too) and a bf16 output.
//
// Inputs are the files peers.py writes for one (K, N): codes.u8 (N*K codes 0..15, row n = output
// column n, K contiguous), scales.bf16 (N*G raw bf16 bits), zeros.u8 (N*G), dense.bf16 (N*K) and
// the activation file given by --x (M*K raw bf16 bits). The weight is copied into enough
// independent oneDNN memories to exceed --rotate-bytes; each timed sample executes the primitive
// once on every copy (one in-order stream, one wait at the end) and divides by the copy count.
// Prints one JSON object on stdout; writes the first call's output as fp32 to --y-out.
//
// Thread count: oneDNN from PyPI uses TBB as its CPU threading runtime, so the count is set with
// oneapi::tbb::global_control(max_allowed_parallelism) (reported back in the JSON).

#include <oneapi/dnnl/dnnl.hpp>
#include <oneapi/tbb/global_control.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

namespace {

using dnnl::memory;
using dt = memory::data_type;
using clk = std::chrono::steady_clock;

struct Args {
  std::string variant = "s4", data, x_path, y_out, layout = "any";
  long m = 1, k = 4096, n = 4096, g = 128;
  int threads = 2;
  double rotate_bytes = 128.0 * 1024 * 1024, min_time = 1.0;
  int min_samples = 5, max_samples = 200;
};

std::vector<uint8_t> read_file(const std::string &path, size_t expect) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot open " + path);
  std::vector<uint8_t> buf(expect);
  f.read(reinterpret_cast<char *>(buf.data()), static_cast<std::streamsize>(expect));
  if (static_cast<size_t>(f.gcount()) != expect) throw std::runtime_error("short file " + path);
  return buf;
}

float bf16_to_f32(uint16_t b) {
  uint32_t u = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

std::string json_escape(const std::string &s) {
  std::string o;
  for (char c : s) {
    if (c == '"' || c == '\\') {
      o += '\\';
      o += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      o += ' ';
    } else {
      o += c;
    }
  }
  return o;
}

// Writes bytes into a oneDNN memory (USM on the SYCL CPU engine: map, copy, unmap).
void fill(memory &mem, const void *src, size_t bytes) {
  if (mem.get_desc().get_size() != bytes) throw std::runtime_error("fill: size mismatch");
  void *p = mem.map_data<void>();
  std::memcpy(p, src, bytes);
  mem.unmap_data(p);
}

// 4-bit values packed two per byte, the element at the even offset in the low nibble.
std::vector<uint8_t> pack_nibbles(const std::vector<uint8_t> &v) {
  std::vector<uint8_t> out((v.size() + 1) / 2, 0);
  for (size_t i = 0; i < v.size(); ++i) out[i / 2] |= static_cast<uint8_t>((v[i] & 0xF) << (4 * (i % 2)));
  return out;
}

struct Built {
  dnnl::matmul prim;
  dnnl::matmul::primitive_desc pd;
  std::string zp_type = "none";
  bool weights_any = false;  // oneDNN chose the weight layout (user data reordered into it)
};

// Creates the primitive: weights in the layout oneDNN prefers (format any), or, if that is
// refused, the user layout [N][K] (strides {1, K} over the logical {K, N}).
Built make_primitive(const dnnl::engine &eng, const Args &a, std::string &tried, bool allow_any) {
  const long G = a.k / a.g;
  const bool dense = a.variant == "dense";
  const dt wdt = dense ? dt::bf16 : (a.variant == "s4" ? dt::s4 : dt::u4);
  memory::desc src({a.m, a.k}, dt::bf16, memory::format_tag::ab);
  memory::desc dst({a.m, a.n}, dt::bf16, memory::format_tag::ab);
  std::vector<dt> zp_types;
  if (a.variant == "u4zp") zp_types = {dt::u4, dt::u8, dt::s8, dt::s32};
  else zp_types = {dt::undef};
  std::string last_error;
  for (bool any : {true, false}) {
    if (any && !allow_any) continue;
    memory::desc wei = any ? memory::desc({a.k, a.n}, wdt, memory::format_tag::any)
                           : memory::desc({a.k, a.n}, wdt, memory::dims{1, a.k});
    for (dt zt : zp_types) {
      dnnl::primitive_attr attr;
      if (!dense) {
        attr.set_scales(DNNL_ARG_WEIGHTS, (1 << 0) | (1 << 1), {a.g, 1}, dt::bf16);
        if (zt != dt::undef) attr.set_zero_points(DNNL_ARG_WEIGHTS, (1 << 0) | (1 << 1), {a.g, 1}, zt);
      }
      attr.set_fpmath_mode(dnnl::fpmath_mode::bf16, /*apply_to_int=*/true);
      try {
        dnnl::matmul::primitive_desc pd(eng, src, wei, dst, attr);
        Built b{dnnl::matmul(pd), pd};
        b.weights_any = any;
        b.zp_type = zt == dt::u4 ? "u4" : zt == dt::u8 ? "u8" : zt == dt::s8 ? "s8" : zt == dt::s32 ? "s32" : "none";
        return b;
      } catch (const dnnl::error &e) {
        std::ostringstream os;
        os << (any ? "weights=any" : "weights=[N][K]") << (zt != dt::undef ? " zp" : "") << ": status "
           << static_cast<int>(e.status) << " (" << e.what() << "); ";
        tried += os.str();
        (void)G;
      }
    }
  }
  throw std::runtime_error("no oneDNN matmul implementation: " + tried);
}

int run(const Args &a) {
  oneapi::tbb::global_control tbb_threads(oneapi::tbb::global_control::max_allowed_parallelism,
                                          static_cast<size_t>(a.threads));

  const long M = a.m, K = a.k, N = a.n, G = K / a.g;
  if (K % a.g != 0) throw std::runtime_error("K must be a multiple of the group size");
  dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  dnnl::stream strm(eng);

  std::string tried;
  Built b = make_primitive(eng, a, tried, /*allow_any=*/a.layout == "any");
  const bool dense = a.variant == "dense";

  // User data.
  auto xbits = read_file(a.x_path, static_cast<size_t>(M * K * 2));
  // Weights in the two plain layouts of the logical {K, N}: "ba" = [N][K] (K contiguous, like
  // torch.nn.Linear) and "ab" = [K][N] (N contiguous); 4-bit values packed two per byte along the
  // contiguous dimension. The one matching oneDNN's preferred layout is written directly.
  std::vector<uint8_t> w_ba, w_ab, s_user, z_user;
  if (dense) {
    w_ba = read_file(a.data + "/dense.bf16", static_cast<size_t>(N * K * 2));
    w_ab.resize(w_ba.size());
    for (long nn = 0; nn < N; ++nn)
      for (long kk = 0; kk < K; ++kk) std::memcpy(&w_ab[(kk * N + nn) * 2], &w_ba[(nn * K + kk) * 2], 2);
  } else {
    auto codes = read_file(a.data + "/codes.u8", static_cast<size_t>(N * K));
    if (a.variant == "s4")
      for (auto &c : codes) c = static_cast<uint8_t>((c - 8) & 0xF);  // two's complement nibble
    w_ba = pack_nibbles(codes);
    std::vector<uint8_t> t(codes.size());
    for (long nn = 0; nn < N; ++nn)
      for (long kk = 0; kk < K; ++kk) t[kk * N + nn] = codes[nn * K + kk];
    w_ab = pack_nibbles(t);
    auto sc = read_file(a.data + "/scales.bf16", static_cast<size_t>(N * G * 2));
    s_user.resize(static_cast<size_t>(G * N * 2));  // logical {G, N}, N contiguous
    for (long nn = 0; nn < N; ++nn)
      for (long gg = 0; gg < G; ++gg) std::memcpy(&s_user[(gg * N + nn) * 2], &sc[(nn * G + gg) * 2], 2);
    if (b.zp_type != "none") {
      auto zr = read_file(a.data + "/zeros.u8", static_cast<size_t>(N * G));
      std::vector<uint8_t> zt(static_cast<size_t>(G * N));
      for (long nn = 0; nn < N; ++nn)
        for (long gg = 0; gg < G; ++gg) zt[gg * N + nn] = zr[nn * G + gg];
      if (b.zp_type == "u4") {
        z_user = pack_nibbles(zt);
      } else if (b.zp_type == "s32") {
        z_user.resize(zt.size() * 4);
        for (size_t i = 0; i < zt.size(); ++i) {
          int32_t v = zt[i];
          std::memcpy(&z_user[i * 4], &v, 4);
        }
      } else {
        z_user = zt;  // u8 / s8 (values 0..15)
      }
    }
  }

  const dt wdt = dense ? dt::bf16 : (a.variant == "s4" ? dt::s4 : dt::u4);
  const memory::desc md_ba({K, N}, wdt, memory::dims{1, K}), md_ab({K, N}, wdt, memory::dims{N, 1});
  memory::desc sc_md({G, N}, dt::bf16, memory::format_tag::ab);
  memory::desc zp_md;
  if (b.zp_type != "none") {
    dt zt = b.zp_type == "u4" ? dt::u4 : b.zp_type == "u8" ? dt::u8 : b.zp_type == "s8" ? dt::s8 : dt::s32;
    zp_md = memory::desc({G, N}, zt, memory::format_tag::ab);
  }

  // How each copy's weight gets its bytes: written directly (plain layouts), or reordered from a
  // plain user memory into a blocked layout; if oneDNN has no such reorder, the primitive is
  // re-created with the weight forced to [N][K].
  enum class Src { ba, ab, reorder_ba, reorder_ab } how = Src::ba;
  std::string layout_note;
  auto choose = [&]() -> bool {
    const memory::desc w = b.pd.weights_desc();
    if (w == md_ba) {
      how = Src::ba;
      layout_note = "weights [N][K] (K contiguous)";
      return true;
    }
    if (w == md_ab) {
      how = Src::ab;
      layout_note = "weights [K][N] (N contiguous)";
      return true;
    }
    for (Src from : {Src::reorder_ba, Src::reorder_ab}) {
      const char *name = from == Src::reorder_ba ? "[N][K]" : "[K][N]";
      try {
        dnnl::reorder::primitive_desc rpd(eng, from == Src::reorder_ba ? md_ba : md_ab, eng, w);
        how = from;
        layout_note = std::string("weights reordered from ") + name + " into oneDNN's blocked layout";
        return true;
      } catch (const dnnl::error &e) {
        tried += std::string("reorder ") + name + " -> preferred layout: status " +
                 std::to_string(static_cast<int>(e.status)) + "; ";
      }
    }
    return false;
  };
  if (!choose()) {
    b = make_primitive(eng, a, tried, /*allow_any=*/false);
    if (!choose()) throw std::runtime_error("no usable weight layout: " + tried);
    layout_note += " (forced: no reorder into the preferred layout)";
  }
  const memory::desc wei_md = b.pd.weights_desc();
  memory user_w;
  if (how == Src::reorder_ba || how == Src::reorder_ab) {
    user_w = memory(how == Src::reorder_ba ? md_ba : md_ab, eng);
    const auto &bytes = how == Src::reorder_ba ? w_ba : w_ab;
    fill(user_w, bytes.data(), bytes.size());
  }
  const std::vector<uint8_t> *direct = how == Src::ab ? &w_ab : &w_ba;

  size_t copy_bytes = wei_md.get_size() + (dense ? 0 : sc_md.get_size()) + (b.zp_type != "none" ? zp_md.get_size() : 0);
  int copies = static_cast<int>(std::max(1.0, std::ceil(a.rotate_bytes / static_cast<double>(copy_bytes))));

  struct Copy {
    memory w, s, z;
  };
  std::vector<Copy> cs;
  cs.reserve(copies);
  for (int c = 0; c < copies; ++c) {
    Copy cp;
    cp.w = memory(wei_md, eng);
    if (user_w) {
      dnnl::reorder(user_w, cp.w).execute(strm, user_w, cp.w);
      strm.wait();
    } else {
      fill(cp.w, direct->data(), direct->size());
    }
    if (!dense) {
      cp.s = memory(sc_md, eng);
      fill(cp.s, s_user.data(), s_user.size());
      if (b.zp_type != "none") {
        cp.z = memory(zp_md, eng);
        fill(cp.z, z_user.data(), z_user.size());
      }
    }
    cs.push_back(std::move(cp));
  }
  user_w = memory();
  std::vector<uint8_t>().swap(w_ab);
  std::vector<uint8_t>().swap(w_ba);

  memory x_mem(memory::desc({M, K}, dt::bf16, memory::format_tag::ab), eng);
  fill(x_mem, xbits.data(), xbits.size());
  memory y_mem(memory::desc({M, N}, dt::bf16, memory::format_tag::ab), eng);

  auto exec = [&](const Copy &cp) {
    std::unordered_map<int, memory> args{{DNNL_ARG_SRC, x_mem}, {DNNL_ARG_WEIGHTS, cp.w}, {DNNL_ARG_DST, y_mem}};
    if (!dense) args.insert({DNNL_ARG_ATTR_SCALES | DNNL_ARG_WEIGHTS, cp.s});
    if (b.zp_type != "none") args.insert({DNNL_ARG_ATTR_ZERO_POINTS | DNNL_ARG_WEIGHTS, cp.z});
    b.prim.execute(strm, args);
  };

  // Correctness sample: the first call's full output, as fp32, for peers.py to check.
  exec(cs[0]);
  strm.wait();
  {
    std::vector<float> y(static_cast<size_t>(M * N));
    const uint16_t *p = y_mem.map_data<uint16_t>();
    for (size_t i = 0; i < y.size(); ++i) y[i] = bf16_to_f32(p[i]);
    y_mem.unmap_data(const_cast<uint16_t *>(p));
    std::ofstream f(a.y_out, std::ios::binary);
    f.write(reinterpret_cast<const char *>(y.data()), static_cast<std::streamsize>(y.size() * 4));
  }

  // Warm-up: one sweep over every copy.
  for (const auto &cp : cs) exec(cp);
  strm.wait();

  std::vector<double> samples;
  double total = 0;
  while ((total < a.min_time || static_cast<int>(samples.size()) < a.min_samples) &&
         static_cast<int>(samples.size()) < a.max_samples) {
    auto t0 = clk::now();
    for (const auto &cp : cs) exec(cp);
    strm.wait();
    double s = std::chrono::duration<double>(clk::now() - t0).count();
    total += s;
    samples.push_back(s * 1e3 / copies);
  }

  // Per-call dispatch cost of this build (SYCL CPU runtime): a 1x128x64 bf16 matmul, cache-hot.
  double overhead_us = 0;
  {
    memory::desc s2({1, 128}, dt::bf16, memory::format_tag::ab), w2({128, 64}, dt::bf16, memory::format_tag::ab),
        d2({1, 64}, dt::bf16, memory::format_tag::ab);
    dnnl::matmul::primitive_desc pd2(eng, s2, w2, d2);
    dnnl::matmul p2(pd2);
    memory ms(s2, eng), mw(w2, eng), md(d2, eng);
    std::vector<uint16_t> zero(128 * 64, 0);
    fill(ms, zero.data(), 128 * 2);
    fill(mw, zero.data(), 128 * 64 * 2);
    std::unordered_map<int, memory> args2{{DNNL_ARG_SRC, ms}, {DNNL_ARG_WEIGHTS, mw}, {DNNL_ARG_DST, md}};
    for (int i = 0; i < 50; ++i) p2.execute(strm, args2);
    strm.wait();
    std::vector<double> t;
    for (int r = 0; r < 5; ++r) {
      auto t0 = clk::now();
      for (int i = 0; i < 200; ++i) p2.execute(strm, args2);
      strm.wait();
      t.push_back(std::chrono::duration<double>(clk::now() - t0).count() * 1e6 / 200);
    }
    std::sort(t.begin(), t.end());
    overhead_us = t[t.size() / 2];
  }

  const dnnl_version_t *v = dnnl_version();
  std::ostringstream js;
  js.precision(6);
  js << "{\"status\":\"ok\",\"variant\":\"" << a.variant << "\",\"impl\":\"" << json_escape(b.pd.impl_info_str())
     << "\",\"onednn_version\":\"" << v->major << "." << v->minor << "." << v->patch << "\",\"cpu_runtime\":"
     << v->cpu_runtime << ",\"tbb_max_allowed_parallelism\":"
     << oneapi::tbb::global_control::active_value(oneapi::tbb::global_control::max_allowed_parallelism)
 << ",\"zero_point_type\":\"" << b.zp_type
     << "\",\"layout\":\"" << layout_note << "\",\"refused\":\"" << json_escape(tried) << "\",\"copies\":" << copies
     << ",\"weight_bytes\":" << copy_bytes << ",\"dispatch_overhead_us\":" << overhead_us << ",\"samples_ms\":[";
  for (size_t i = 0; i < samples.size(); ++i) js << (i ? "," : "") << samples[i];
  js << "]}";
  std::printf("%s\n", js.str().c_str());
  return 0;
}

}  // namespace

int main(int argc, char **argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string k = argv[i];
    auto val = [&]() -> std::string {
      if (i + 1 >= argc) throw std::runtime_error("missing value for " + k);
      return argv[++i];
    };
    try {
      if (k == "--variant") a.variant = val();
      else if (k == "--data") a.data = val();
      else if (k == "--x") a.x_path = val();
      else if (k == "--layout") a.layout = val();
      else if (k == "--y-out") a.y_out = val();
      else if (k == "--m") a.m = std::stol(val());
      else if (k == "--k") a.k = std::stol(val());
      else if (k == "--n") a.n = std::stol(val());
      else if (k == "--g") a.g = std::stol(val());
      else if (k == "--threads") a.threads = std::stoi(val());
      else if (k == "--rotate-bytes") a.rotate_bytes = std::stod(val());
      else if (k == "--min-time") a.min_time = std::stod(val());
      else if (k == "--min-samples") a.min_samples = std::stoi(val());
      else if (k == "--max-samples") a.max_samples = std::stoi(val());
      else {
        std::fprintf(stderr, "onednn_matmul: unknown option %s\n", k.c_str());
        return 2;
      }
    } catch (const std::exception &e) {
      std::fprintf(stderr, "onednn_matmul: %s\n", e.what());
      return 2;
    }
  }
  if (a.variant != "s4" && a.variant != "u4zp" && a.variant != "dense") {
    std::fprintf(stderr, "onednn_matmul: --variant must be s4, u4zp or dense\n");
    return 2;
  }
  try {
    return run(a);
  } catch (const dnnl::error &e) {
    std::printf("{\"status\":\"error\",\"variant\":\"%s\",\"error\":\"oneDNN status %d: %s\"}\n", a.variant.c_str(),
                static_cast<int>(e.status), json_escape(e.what()).c_str());
    return 1;
  } catch (const std::exception &e) {
    std::printf("{\"status\":\"error\",\"variant\":\"%s\",\"error\":\"%s\"}\n", a.variant.c_str(),
                json_escape(e.what()).c_str());
    return 1;
  }
}
