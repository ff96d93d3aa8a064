// The `w4a16` executable end to end: quantize + gemm reproduce the reference; misuse of the
// command line exits 2 and runtime failures exit 1, each with one short error line; text from a
// file is printed escaped; gemm and info stay within their peak-memory bounds (docs/cli.md).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>

#include "io/quantized_file.hpp"
#include "io/safetensors.hpp"
#include "support/peak_memory.hpp"
#include "support/random_data.hpp"
#include "support/run_cli.hpp"

namespace w4a16 {
namespace {

namespace fs = std::filesystem;

using Result = test::CliResult;
using test::run_cli;

// A run of the CLI without a shell: stdout and stderr apart, and the child's own peak RSS.
struct Child {
  int status = -1;  // exit status, or -1 when it did not exit normally (a crash)
  std::string out, err;
  long max_rss_kb = 0;  // wait4()'s ru_maxrss: this child's peak resident set, in KiB
};

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// fork() + exec rather than posix_spawn(): a child's ru_maxrss starts from the memory of the
// process it was created from, which for posix_spawn (vfork) is the parent's peak so far (64 MiB
// once the memory test has built its layer) and for fork() only what the parent holds right then.
// A child still running after `time_limit_s` seconds (0: no limit) is killed by its own alarm(),
// which survives exec: a command that hangs fails its test (status -1) instead of hanging it.
Child spawn_cli(const std::vector<std::string>& args, const fs::path& dir, unsigned time_limit_s = 0) {
  const std::string out_path = (dir / "child.out").string(), err_path = (dir / "child.err").string();
  std::vector<std::string> strings = {W4A16_CLI_PATH};
  strings.insert(strings.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& arg : strings) argv.push_back(arg.data());
  argv.push_back(nullptr);
  Child child;
  const pid_t pid = fork();
  if (pid < 0) {
    ADD_FAILURE() << "fork failed: " << std::strerror(errno);
    return child;
  }
  if (pid == 0) {  // only async-signal-safe calls until exec
    const int out = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int err = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (out < 0 || err < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0) _exit(126);
    if (time_limit_s > 0) alarm(time_limit_s);
    execv(argv[0], argv.data());
    _exit(127);
  }
  int status = 0;
  struct rusage usage {};
  if (wait4(pid, &status, 0, &usage) != pid) {
    ADD_FAILURE() << "wait4 failed: " << std::strerror(errno);
    return child;
  }
  child.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  child.out = read_text(out_path);
  child.err = read_text(err_path);
  child.max_rss_kb = usage.ru_maxrss;
  return child;
}

std::string joined(const std::vector<std::string>& args) {
  std::string text = "w4a16";
  for (const auto& a : args) text += " " + a;
  return text;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

class Cli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("w4a16-cli-test-" + std::to_string(getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  Child cli(const std::vector<std::string>& args, unsigned time_limit_s = 0) const {
    return spawn_cli(args, dir_, time_limit_s);
  }

  // A small "model": two linear layers (one with bias), an embedding and a norm.
  void write_model(const std::string& file) {
    io::SafetensorsWriter w;
    w.add_owned("model.embed_tokens.weight", io::StDType::BF16, {50, 96},
                bytes(test::random_matrix(DType::bf16, 50, 96, 1)));
    w.add_owned("model.layers.0.mlp.up_proj.weight", io::StDType::BF16, {70, 96},
                bytes(test::random_matrix(DType::bf16, 70, 96, 2, 0.05f)));
    w.add_owned("model.layers.0.mlp.down_proj.weight", io::StDType::F16, {33, 200},
                bytes(test::random_matrix(DType::f16, 33, 200, 3, 0.05f)));
    w.add_owned("model.layers.0.mlp.down_proj.bias", io::StDType::F16, {33},
                bytes(test::random_matrix(DType::f16, 1, 33, 4)));
    w.add_owned("model.norm.weight", io::StDType::F32, {96}, bytes(test::random_matrix(DType::f32, 1, 96, 5)));
    w.set_metadata("format", "pt");
    w.write(file);
  }
  static std::vector<std::byte> bytes(const test::HostMatrix& m) {
    const auto* p = static_cast<const std::byte*>(m.data());
    return {p, p + m.rows * m.cols * int64_t(dtype_size(m.dtype))};
  }
  fs::path dir_;
};

TEST_F(Cli, QuantizeThenGemmReproducesTheReference) {
  write_model(path("model.safetensors"));
  const Result q = run_cli("quantize -i " + path("model.safetensors") + " -o " + path("q.safetensors") +
                           " --group-size 64 --zero asym");
  ASSERT_EQ(q.status, 0) << q.output;
  EXPECT_NE(q.output.find("model.layers.0.mlp.up_proj"), std::string::npos) << q.output;
  EXPECT_EQ(q.output.find("embed_tokens "), std::string::npos) << "embeddings are not quantized by default";

  const auto qfile = io::SafetensorsFile::open(path("q.safetensors"));
  EXPECT_NE(qfile.find("model.embed_tokens.weight"), nullptr);  // copied through
  EXPECT_NE(qfile.find("model.norm.weight"), nullptr);
  EXPECT_EQ(qfile.metadata().at("format"), "pt");
  EXPECT_EQ(io::quantized_modules(qfile).size(), 2u);

  for (DType act : {DType::bf16, DType::f16}) {
    const auto x = test::random_matrix(act, 5, 200, 9);
    io::SafetensorsWriter xw;
    xw.add_owned("x", io::to_st_dtype(act), {5, 200}, bytes(x));
    xw.write(path("x.safetensors"));
    for (const char* strategy : {"fused", "decoupled", "dense"}) {
      const Result g = run_cli("gemm -w " + path("q.safetensors") + " -t model.layers.0.mlp.down_proj.weight -i " +
                               path("x.safetensors") + " -o " + path("y.safetensors") + " --strategy " + strategy +
                               " --partition splitk --split-k 2");
      ASSERT_EQ(g.status, 0) << g.output;
      const QuantizedWeight w = load_quantized(path("q.safetensors"), "model.layers.0.mlp.down_proj");
      ASSERT_TRUE(w.has_bias());
      test::HostMatrix ref(act, 5, 33);
      reference_gemm(x.ref(), w, ref.mut());
      const auto yfile = io::SafetensorsFile::open(path("y.safetensors"));
      const auto* yt = yfile.find("y");
      ASSERT_NE(yt, nullptr);
      ASSERT_EQ(yt->shape, (std::vector<int64_t>{5, 33}));
      const auto* y = reinterpret_cast<const uint16_t*>(yfile.data(*yt).data());
      for (int i = 0; i < 5 * 33; ++i) {
        const double got = act == DType::bf16 ? bf16_to_f32(y[i]) : f16_to_f32(y[i]);
        EXPECT_NEAR(got, ref.get(i), 0.02 * std::abs(ref.get(i)) + 0.02) << strategy << " " << i;
      }
    }
  }
}

// --backend cuda on a machine without a GPU (or a build without CUDA): one error line saying so,
// exit status 1, no output file; on a GPU, the same result as the CPU within the same bound.
TEST_F(Cli, GemmOnTheCudaBackend) {
  write_model(path("model.safetensors"));
  ASSERT_EQ(run_cli("quantize -i " + path("model.safetensors") + " -o " + path("q.safetensors") + " -g 64").status, 0);
  const auto x = test::random_matrix(DType::bf16, 3, 200, 10);
  io::SafetensorsWriter xw;
  xw.add_owned("x", io::StDType::BF16, {3, 200}, bytes(x));
  xw.write(path("x.safetensors"));
  const std::string args = "gemm -w " + path("q.safetensors") + " -t model.layers.0.mlp.down_proj -i " +
                           path("x.safetensors") + " -o " + path("y_cuda.safetensors") + " --backend cuda";
  const Result g = run_cli(args);
  if (cuda_devices().devices.empty()) {
    EXPECT_EQ(g.status, 1) << g.output;
    EXPECT_NE(g.output.find("CUDA"), std::string::npos) << g.output;
    EXPECT_FALSE(fs::exists(path("y_cuda.safetensors")));
    EXPECT_EQ(run_cli(args + " --threads 2").status, 1);  // a CPU option: refused before any device is touched
    return;
  }
  ASSERT_EQ(g.status, 0) << g.output;
  const QuantizedWeight w = load_quantized(path("q.safetensors"), "model.layers.0.mlp.down_proj");
  test::HostMatrix ref(DType::bf16, 3, 33);
  reference_gemm(x.ref(), w, ref.mut());
  const auto yfile = io::SafetensorsFile::open(path("y_cuda.safetensors"));
  const auto* y = reinterpret_cast<const uint16_t*>(yfile.data(*yfile.find("y")).data());
  for (int i = 0; i < 3 * 33; ++i) EXPECT_NEAR(bf16_to_f32(y[i]), ref.get(i), 0.02 * std::abs(ref.get(i)) + 0.02);
}

TEST_F(Cli, BadInputGivesOneLineErrorAndNonZeroStatus) {
  write_model(path("model.safetensors"));
  {
    FILE* f = fopen(path("garbage.safetensors").c_str(), "wb");
    fputs("this is not a safetensors file at all", f);
    fclose(f);
  }
  const std::vector<std::string> bad = {
      "quantize -i " + path("garbage.safetensors") + " -o " + path("o.safetensors"),
      "quantize -i " + path("model.safetensors") + " -o " + path("o.safetensors") + " --tensor no.such.layer",
      "quantize -i " + path("model.safetensors") + " -o " + path("o.safetensors") + " --zero banana",
      "gemm -w " + path("model.safetensors") + " -t model.layers.0.mlp.up_proj -i " + path("model.safetensors") +
          " -o " + path("y.safetensors"),
      "info " + path("garbage.safetensors"),
      "quantize -i " + path("does-not-exist.safetensors") + " -o x",
  };
  for (const auto& args : bad) {
    const Result r = run_cli(args);
    EXPECT_NE(r.status, 0) << args << "\n" << r.output;
    EXPECT_FALSE(r.output.empty()) << args;
  }
  const Result r = run_cli(bad[0]);
  EXPECT_EQ(r.output.rfind("w4a16: error: ", 0), 0u) << r.output;
  EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
}

// `quantize` that selects nothing says what it could select and how (the candidates, the options).
TEST_F(Cli, QuantizeSelectingNothingListsCandidatesAndOptions) {
  write_model(path("model.safetensors"));
  const Result r =
      run_cli("quantize -i " + path("model.safetensors") + " -o " + path("o.safetensors") + " --exclude '*'");
  EXPECT_EQ(r.status, 1) << r.output;
  for (const char* needle : {"no tensor", "model.layers.0.mlp.up_proj.weight", "model.embed_tokens.weight", "--tensor",
                             "--include", "minus --exclude"}) {
    EXPECT_NE(r.output.find(needle), std::string::npos) << needle << " missing from: " << r.output;
  }
  EXPECT_FALSE(fs::exists(path("o.safetensors")));
}

// `convert` end to end through the CLI on the gguf-py test file; `info` reads the result.
TEST_F(Cli, ConvertGgufThenInfo) {
  const std::string gguf = std::string(W4A16_SOURCE_DIR) + "/tests/data/gguf/model.gguf";
  const Result r = run_cli("convert " + gguf + " -o " + path("m.safetensors"));
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("quantized layers"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("[1/"), std::string::npos) << "progress lines: " << r.output;
  const Result info = run_cli("info " + path("m.safetensors"));
  EXPECT_EQ(info.status, 0) << info.output;
  EXPECT_NE(info.output.find("blk.0.attn_q"), std::string::npos) << info.output;
  const Result bad = run_cli("convert " + path("nothing-here") + " -o " + path("x.safetensors"));
  EXPECT_EQ(bad.status, 2) << bad.output;  // a missing source is a usage error
}

TEST_F(Cli, HelpAndInfo) {
  for (const char* cmd : {"--help", "quantize --help", "gemm --help", "info --help", "demo --help"}) {
    const Result r = run_cli(cmd);
    EXPECT_EQ(r.status, 0) << cmd << "\n" << r.output;
  }
  const Result info = run_cli("info");
  EXPECT_EQ(info.status, 0);
  EXPECT_NE(info.output.find("avx2"), std::string::npos) << info.output;
  // The matrix unit's line: usable, or why not, as cpu_info() says.
  const CpuInfo cpu = cpu_info();
  EXPECT_NE(info.output.find("  amx: " + cpu.amx + "\n"), std::string::npos) << info.output;
  const Result demo = run_cli("demo -m 2 -k 256 -n 128 --repeats 1");
  EXPECT_EQ(demo.status, 0) << demo.output;
  EXPECT_NE(demo.output.find("kernel vs oracle"), std::string::npos) << demo.output;
}

// `plan` lists the candidates with predicted times and marks one choice, for this CPU and for a
// modeled device; its JSON holds every candidate.
TEST_F(Cli, PlanListsCandidatesAndMarksTheChoice) {
  const Result cpu = run_cli("plan 4 4096 1024 --top 3 --json " + path("plan.json"));
  EXPECT_EQ(cpu.status, 0) << cpu.output;
  EXPECT_NE(cpu.output.find("choice: "), std::string::npos) << cpu.output;
  EXPECT_NE(cpu.output.find("  *  "), std::string::npos) << cpu.output;
  const auto j = nlohmann::json::parse(read_text(path("plan.json")));
  EXPECT_EQ(j["schema"], "w4a16-plan/1");
  int chosen = 0;
  for (const auto& p : j["plans"]) {
    chosen += p["chosen"].get<bool>();
    EXPECT_GT(p["predicted_ms"].get<double>(), 0.0);
  }
  EXPECT_EQ(chosen, 1);
  const Result npu = run_cli("plan 16 14336 1024 --device ascend910b3 --breakdown");
  EXPECT_EQ(npu.status, 0) << npu.output;
  EXPECT_NE(npu.output.find("HBM traffic"), std::string::npos) << npu.output;
  const Result forced = run_cli("plan 1 512 64 --strategy pipelined --threads 1");
  EXPECT_EQ(forced.status, 1) << forced.output;  // pipelined needs two threads: no plan meets that
  EXPECT_NE(forced.output.find("no plan meets"), std::string::npos) << forced.output;
  EXPECT_EQ(run_cli("plan 1 512 64 --device tpu").status, 2);
  EXPECT_EQ(run_cli("plan 0 512 64").status, 2);
}

// The bench with the compute peaks measured (the read given, in decimals): every column and
// field is there; nothing is asserted about a time.
TEST_F(Cli, BenchWritesTheTableAndTheJsonSchema) {
  const Result r = run_cli(
      "bench --shapes '1,256,128;5,300,70' --read-gbps 42.1,83.3 --min-time 0.01 --rotate-mib 1 --study --threads 2 "
      "--json " +
      path("b.json") + " --csv " + path("b.csv"));
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("1x256x128"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("conclusion:"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("fused/roof"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("dense/roof"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("compute peak (the roofline uses the larger"), std::string::npos) << r.output;
  std::ifstream in(path("b.json"));
  const auto doc = nlohmann::json::parse(in);
  EXPECT_EQ(doc["schema"], "w4a16-bench/2");
  EXPECT_EQ(doc["machine"]["read_gbps"]["1"], 42.1);
  EXPECT_EQ(doc["machine"]["read_gbps"]["2"], 83.3);
  // fp32_fma exists wherever AVX2 + FMA or AVX-512F does; bf16_dot only with AVX512-BF16; bf16_tile
  // and the tile dequantization rate only where AMX is offered.
  const auto& peaks = doc["machine"]["peak_gflops"];
  EXPECT_EQ(peaks.contains("bf16_tile"), doc["machine"].contains("tile_dequant_gweights"));
  for (const auto& [kind, rates] : peaks.items()) {
    EXPECT_TRUE(kind == "bf16_dot" || kind == "fp32_fma" || kind == "bf16_tile") << kind;
    EXPECT_TRUE(doc["machine"]["peak_instruction"].contains(kind)) << kind;
    for (const auto& [threads, gflops] : rates.items()) EXPECT_GT(gflops.get<double>(), 0.0) << kind << " " << threads;
  }
  if (!peaks.empty()) {
    EXPECT_GT(doc["machine"]["roofline_gflops"]["1"].get<double>(), 0.0);
  }
  ASSERT_EQ(doc["results"].size(), 2u);
  for (const auto& item : doc["results"]) {
    for (const char* v : {"dense", "fused", "fused_dp", "fused_splitk", "decoupled", "decoupled_dram",
                          "decoupled_widen", "int4_stream"}) {
      ASSERT_TRUE(item["variants"].contains(v)) << v;
      EXPECT_GT(item["variants"][v]["median_ms"].get<double>(), 0.0) << v;
      EXPECT_GT(item["variants"][v]["roofline_ms"].get<double>(), 0.0) << v;
      EXPECT_GT(item["variants"][v]["vs_roofline"].get<double>(), 0.0) << v;
    }
    EXPECT_TRUE(item["variants"]["fused"]["verified"].get<bool>());
    EXPECT_FALSE(item["variants"]["int4_stream"]["verified"].get<bool>());  // an ablation computes nothing
  }
  EXPECT_EQ(doc["study"]["breakdown"].size(), 2u);
  std::ifstream csv(path("b.csv"));
  std::string header;
  std::getline(csv, header);
  EXPECT_EQ(header.rfind("model,layer,m,k,n,variant,median_ms", 0), 0u) << header;
  EXPECT_NE(header.find(",roofline_ms,vs_roofline"), std::string::npos) << header;

  EXPECT_NE(run_cli("bench --suite nope --read-gbps 1,1").status, 0);
  EXPECT_NE(run_cli("bench --shapes '1,2' --read-gbps 1,1").status, 0);
}

// With the read and the compute peak both given, every variant's roofline is the documented
// formula: max(weight_bytes / read_gbps[min(threads, 2)], 2 M K N / peak) (docs/bench-json.md).
TEST_F(Cli, BenchRooflineFromGivenRates) {
  const Result r = run_cli(
      "bench --shapes '3,512,256' --read-gbps 42.1,83.3 --peak-gflops 150.5 --min-time 0.01 "
      "--rotate-mib 1 --threads 2 --json " +
      path("r.json"));
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("given by --peak-gflops"), std::string::npos) << r.output;
  std::ifstream in(path("r.json"));
  const auto doc = nlohmann::json::parse(in);
  EXPECT_EQ(doc["machine"]["peak_gflops"]["given"]["1"], 150.5);
  EXPECT_EQ(doc["machine"]["roofline_gflops"]["1"], 150.5);
  ASSERT_EQ(doc["results"].size(), 1u);
  const double flops = 2.0 * 3 * 512 * 256;
  for (const auto& [name, v] : doc["results"][0]["variants"].items()) {
    SCOPED_TRACE(name);
    const int threads = v["threads"].get<int>();
    const double read = threads >= 2 ? 83.3 : 42.1;
    const double want = std::max(v["weight_bytes"].get<double>() / (read * 1e6), flops / (150.5 * 1e6));
    EXPECT_NEAR(v["roofline_ms"].get<double>(), want, 1e-12 * want);
    EXPECT_NEAR(v["vs_roofline"].get<double>(), v["median_ms"].get<double>() / want,
                1e-9 * v["vs_roofline"].get<double>());
  }
}

// --validate-model on tiny shapes: every candidate beyond the fastest six is left out but the
// chosen one, the per-pair tables and the summary lines are printed and the JSON holds them;
// nothing is asserted about a time or a verdict (a measurement, not a test).
TEST_F(Cli, BenchValidateModelReportsPredictedAgainstMeasured) {
  const Result r = run_cli(
      "bench --validate-model --budget 60 --shapes '1,512,64;4,512,64' --read-gbps 42.1,83.3 --min-time 0.01 "
      "--rotate-mib 1 --threads 2 --json " +
      path("v.json"));
  ASSERT_EQ(r.status, 0) << r.output;
  for (const char* line : {"1x512x64", "4x512x64", "Summary: ", "prediction error |pred/meas - 1|: median",
                           "target median <= 20%: ", "auto vs best measured (re-timed interleaved): median",
                           "every pair <= 1.15: ", "auto vs best measured (first pass)"}) {
    EXPECT_NE(r.output.find(line), std::string::npos) << line << "\n" << r.output;
  }
  EXPECT_EQ(r.output.find("budget spent"), std::string::npos) << r.output;
  std::ifstream in(path("v.json"));
  const auto doc = nlohmann::json::parse(in);
  EXPECT_EQ(doc["schema"], "w4a16-validate/1");
  EXPECT_FALSE(doc["machine"]["cpu"].get<std::string>().empty());
  EXPECT_EQ(doc["machine"]["threads"], 2);
  ASSERT_EQ(doc["pairs"].size(), 2u);
  for (const auto& pair : doc["pairs"]) {
    int chosen = 0, best = 0;
    ASSERT_GE(pair["plans"].size(), 1u);
    EXPECT_LE(pair["plans"].size(), 7u);  // the six fastest predicted and the chosen one
    EXPECT_GE(pair["candidates"].get<int>(), int(pair["plans"].size()));
    for (const auto& plan : pair["plans"]) {
      chosen += plan["chosen"].get<bool>();
      best += plan["best"].get<bool>();
      EXPECT_TRUE(plan["measured"]["verified"].get<bool>());
      EXPECT_GT(plan["predicted_ms"].get<double>(), 0.0);
      EXPECT_GT(plan["measured"]["median_ms"].get<double>(), 0.0);
      const double want = plan["predicted_ms"].get<double>() / plan["measured"]["median_ms"].get<double>() - 1;
      EXPECT_NEAR(plan["error"].get<double>(), want, 1e-9 * (1 + std::abs(want)));
    }
    EXPECT_EQ(chosen, 1);
    EXPECT_EQ(best, 1);
    EXPECT_GT(pair["retimed"]["chosen"]["median_ms"].get<double>(), 0.0);
    EXPECT_GT(pair["retimed"]["best"]["median_ms"].get<double>(), 0.0);
  }
  EXPECT_EQ(doc["summary"]["pairs"], 2);
  EXPECT_GE(doc["summary"]["prediction_error"]["median_abs"].get<double>(), 0.0);
  EXPECT_FALSE(doc["budget"]["spent"].get<bool>());

  // A budget spent at once: the first pair still runs, the others are listed as not timed.
  const Result b = run_cli(
      "bench --validate-model --budget 0.001 --suite kn --m 1 --read-gbps 42.1 --min-time 0.01 --rotate-mib 1 "
      "--threads 2");
  ASSERT_EQ(b.status, 0) << b.output;
  EXPECT_NE(b.output.find("1x4096x1024"), std::string::npos) << b.output;
  EXPECT_NE(b.output.find("budget spent: 10 pairs not timed"), std::string::npos) << b.output;
  EXPECT_NE(b.output.find("Summary: "), std::string::npos) << b.output;
  EXPECT_NE(run_cli("bench --validate-model --budget 0 --read-gbps 1,1").status, 0);
}

// --- exit status and message of command-line misuse -------------------------------------------

using CliUsageErrors = Cli;

// Every kind of misuse, in every subcommand: exit status 2 and one short "w4a16: error:" line on
// stderr (then CLI11's hint to run --help), nothing on stdout. Before, CLI11's own exit codes
// (105, 106, 109) and bounds printed as 300-digit doubles came out, and an overflowing integer was
// clamped to INT64_MAX and accepted.
TEST_F(CliUsageErrors, ExitTwoWithShortMessage) {
  write_model(path("model.safetensors"));
  const std::string model = path("model.safetensors"), missing = path("does-not-exist.safetensors");
  const std::vector<std::vector<std::string>> cases = {
      {},
      {"frobnicate"},
      {"--frobnicate"},
      // quantize
      {"quantize", "-o", path("o.safetensors")},
      {"quantize", "-i", missing, "-o", path("o.safetensors")},
      {"quantize", "-i", model, "-o", path("o.safetensors"), "--zero", "banana"},
      {"quantize", "-i", model, "-o", path("o.safetensors"), "-g", "-1"},
      {"quantize", "-i", model, "-o", path("o.safetensors"), "-g", "99999999999999999999"},
      {"quantize", "-i", model, "-o", path("o.safetensors"), "-g", "12abc"},
      {"quantize", "-i", model, "-o", path("o.safetensors"), "--dtype", "fp8"},
      {"quantize", "-i", model, "-o", path("o.safetensors"), "--frobnicate"},
      // gemm
      {"gemm", "-w", model, "-i", model, "-o", path("y.safetensors")},
      {"gemm", "-w", missing, "-t", "a", "-i", model, "-o", path("y.safetensors")},
      {"gemm", "-w", model, "-t", "a", "-i", missing, "-o", path("y.safetensors")},
      {"gemm", "-w", model, "-t", "a", "-i", model, "-o", path("y.safetensors"), "--threads", "-1"},
      {"gemm", "-w", model, "-t", "a", "-i", model, "-o", path("y.safetensors"), "--split-k", "abc"},
      {"gemm", "-w", model, "-t", "a", "-i", model, "-o", path("y.safetensors"), "--strategy", "fastest"},
      // info
      {"info", missing},
      {"info", model, model},
      {"info", "--frobnicate"},
      // demo
      {"demo", "-m", "0"},
      {"demo", "-g", "-1"},
      {"demo", "-g", "99999999999999999999"},
      {"demo", "-k", "1e3"},
      {"demo", "-k", ""},
      {"demo", "-m"},
      {"demo", "--repeats", "0"},
      {"demo", "--threads", "3000000000"},
      {"demo", "--dtype", "fp32"},
      {"demo", "-n", "4611686018427387904", "-k", "4"},
      {"demo", "-m", "4611686018427387904"},
      {"demo", "-n", "2147483648", "-k", "2147483648"},
      // bench
      {"bench", "--suite", "nope"},
      {"bench", "--shapes", "1,2"},
      {"bench", "--shapes", ";;"},
      {"bench", "--shapes", "1,4096,99999999999"},
      {"bench", "--batch", "0"},
      {"bench", "--batch", "4611686018427387904"},
      {"bench", "--min-time", "0"},
      {"bench", "--min-time", "1e999"},
      {"bench", "--threads", "99999999999"},
      {"bench", "--rotate-mib", "-1"},
      {"bench", "--rotate-mib", "9223372036854775807"},
      {"bench", "--read-gbps", "x"},
      {"bench", "--read-gbps", "0,x"},
      {"bench", "--read-gbps", "0"},
      {"bench", "--read-gbps", "-1.5"},
      {"bench", "--read-gbps", "nan"},
      {"bench", "--read-gbps", "inf,1"},
      {"bench", "--read-gbps", "1e999"},
      {"bench", "--read-gbps", "1,2,3"},
      {"bench", "--read-gbps", "42.1,"},
      {"bench", "--read-gbps", ""},
      {"bench", "--peak-gflops", "0,1"},
      {"bench", "-g", "0"},
      // plan: counts and sizes past the planner's limits (docs/guarantees.md) are misuse, never a
      // 24 GB candidate list, a negative workspace or "internal"
      {"plan", "1", "4096", "4096", "--threads", "2147483647"},
      {"plan", "1", "4096", "4096", "--threads", "100000"},
      {"plan", "1", "4096", "4096", "--split-k", "2147483647"},
      {"plan", "3000000000", "3000000000", "3000000000"},
      {"plan", "9223372036854775807", "4096", "4096"},
      {"plan", "1", "2147483648", "64"},
      {"plan", "4611686018427387904", "4096", "4096", "--device", "h100"},
      // lists: an empty item is refused, not skipped
      {"model", "--m", "1,,2"},
      {"model", "--m", "4,"},
      {"bench", "--batch", "1,,2"},
      // calibrate
      {"calibrate", "--frobnicate"},
      {"calibrate", "extra"},
  };
  for (const auto& args : cases) {
    SCOPED_TRACE(joined(args));
    const Child r = cli(args);
    EXPECT_EQ(r.status, 2) << r.err;
    EXPECT_EQ(r.out, "");
    const auto lines = lines_of(r.err);
    ASSERT_GE(lines.size(), 1u);
    EXPECT_EQ(lines[0].rfind("w4a16: error: ", 0), 0u) << r.err;
    EXPECT_LT(lines[0].size(), 200u) << r.err;
    EXPECT_LE(lines.size(), 2u) << r.err;
    if (lines.size() == 2) {
      EXPECT_EQ(lines[1], "Run with --help for more information.");
    }
  }
}

TEST_F(CliUsageErrors, HelpAndVersionExitZero) {
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"--help"}, {"--version"}, {"bench", "--help"}, {"calibrate", "--help"}, {"quantize", "-h"}}) {
    const Child r = cli(args);
    EXPECT_EQ(r.status, 0) << joined(args) << "\n" << r.err;
    EXPECT_EQ(r.err, "");
    EXPECT_FALSE(r.out.empty());
  }
}

// A failure that depends on what a file holds is a runtime error: exit status 1, one line.
TEST_F(CliUsageErrors, RuntimeFailuresExitOne) {
  write_model(path("model.safetensors"));
  {
    std::ofstream garbage(path("garbage.safetensors"));
    garbage << "this is not a safetensors file at all";
  }
  const std::vector<std::vector<std::string>> cases = {
      {"quantize", "-i", path("garbage.safetensors"), "-o", path("o.safetensors")},
      {"quantize", "-i", path("model.safetensors"), "-o", path("o.safetensors"), "--tensor", "no.such.layer"},
      {"gemm", "-w", path("model.safetensors"), "-t", "model.layers.0.mlp.up_proj", "-i", path("model.safetensors"),
       "-o", path("y.safetensors")},
      {"info", path("garbage.safetensors")},
  };
  for (const auto& args : cases) {
    SCOPED_TRACE(joined(args));
    const Child r = cli(args);
    EXPECT_EQ(r.status, 1) << r.err;
    const auto lines = lines_of(r.err);
    ASSERT_EQ(lines.size(), 1u) << r.err;
    EXPECT_EQ(lines[0].rfind("w4a16: error: ", 0), 0u) << r.err;
  }
}

// --- files that are not regular files -----------------------------------------------------------

using CliFiles = Cli;
constexpr unsigned kSecondsBeforeAHangFails = 20;

// An input that is a FIFO nobody writes to: exit 1 at once with one line naming it a FIFO. Before,
// each of these waited forever in open(), before the tool could see what the path was.
TEST_F(CliFiles, AFifoInputIsRefusedWithoutBlocking) {
  write_model(path("model.safetensors"));
  ASSERT_EQ(cli({"quantize", "-i", path("model.safetensors"), "-o", path("w.safetensors")}).status, 0);
  ASSERT_EQ(mkfifo(path("fifo").c_str(), 0600), 0) << std::strerror(errno);
  const std::vector<std::vector<std::string>> cases = {
      {"info", path("fifo")},
      {"gemm", "-w", path("fifo"), "-t", "model.layers.0.mlp.up_proj", "-i", path("model.safetensors"), "-o",
       path("y.safetensors")},
      {"gemm", "-w", path("w.safetensors"), "-t", "model.layers.0.mlp.up_proj", "-i", path("fifo"), "-o",
       path("y.safetensors")},
      {"quantize", "-i", path("fifo"), "-o", path("q.safetensors")},
      {"convert", path("fifo"), "-o", path("c.safetensors")},
  };
  for (const auto& args : cases) {
    SCOPED_TRACE(joined(args));
    const Child r = cli(args, kSecondsBeforeAHangFails);
    EXPECT_EQ(r.status, 1) << r.err;
    const auto lines = lines_of(r.err);
    ASSERT_EQ(lines.size(), 1u) << r.err;
    EXPECT_EQ(lines[0].rfind("w4a16: error: ", 0), 0u) << r.err;
    EXPECT_NE(lines[0].find(path("fifo") + "': it is a FIFO, not a regular file"), std::string::npos) << r.err;
  }
  EXPECT_FALSE(fs::exists(path("y.safetensors")) || fs::exists(path("q.safetensors")) ||
               fs::exists(path("c.safetensors")));
}

// An output that is a character device or a FIFO is written through and never replaced: a link to
// /dev/null stays that link, a FIFO without a reader is an error at once and stays a FIFO, a
// directory is refused. Before, `plan --json` renamed a regular file over each of them (and as
// root, `--json /dev/null` replaced the system's /dev/null).
TEST_F(CliFiles, AnOutputThatIsNotARegularFileIsNeverReplaced) {
  fs::create_symlink("/dev/null", path("null"));
  const Child ok = cli({"plan", "1", "512", "64", "--top", "1", "--json", path("null")}, kSecondsBeforeAHangFails);
  EXPECT_EQ(ok.status, 0) << ok.err;
  EXPECT_TRUE(fs::is_symlink(path("null")));
  EXPECT_TRUE(fs::is_character_file(path("null")));

  ASSERT_EQ(mkfifo(path("fifo").c_str(), 0600), 0) << std::strerror(errno);
  fs::create_directory(path("directory"));
  for (const auto& [target, says] : std::vector<std::pair<std::string, std::string>>{
           {path("fifo"), "it is a FIFO with no reader"}, {path("directory"), "it is a directory"}}) {
    SCOPED_TRACE(target);
    const Child r = cli({"plan", "1", "512", "64", "--top", "1", "--json", target}, kSecondsBeforeAHangFails);
    EXPECT_EQ(r.status, 1) << r.err;
    EXPECT_NE(r.err.find(says), std::string::npos) << r.err;
  }
  EXPECT_TRUE(fs::is_fifo(path("fifo")));
  EXPECT_TRUE(fs::is_directory(path("directory")));
}

// $W4A16_CALIBRATION naming a FIFO: the file is ignored with a warning and the command works.
// Before, the first plan of the process waited forever.
TEST_F(CliFiles, ACalibrationFifoIsIgnoredWithAWarning) {
  ASSERT_EQ(mkfifo(path("calibration.json").c_str(), 0600), 0) << std::strerror(errno);
  const char* given = std::getenv("W4A16_CALIBRATION");
  const std::optional<std::string> before = given ? std::optional<std::string>(given) : std::nullopt;
  ::setenv("W4A16_CALIBRATION", path("calibration.json").c_str(), 1);
  const Child r = cli({"plan", "1", "512", "64", "--top", "1"}, kSecondsBeforeAHangFails);
  if (before) {
    ::setenv("W4A16_CALIBRATION", before->c_str(), 1);
  } else {
    ::unsetenv("W4A16_CALIBRATION");
  }
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("w4a16: warning: calibration file ignored"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("it is a FIFO"), std::string::npos) << r.err;
}

// --- sizes from the command line ---------------------------------------------------------------

using CliSizes = Cli;

// Sizes whose product overflows int64 (or is absurd) are refused before anything is allocated:
// before, -n 2^62 -k 4 wrapped to 0 elements and failed with "data pointer is null", and larger
// products were undefined behaviour.
TEST_F(CliSizes, OverflowingProductIsAUsageErrorNotACrash) {
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"demo", "-n", "4611686018427387904", "-k", "4"},
           {"demo", "-m", "4611686018427387904", "-k", "4", "-n", "4"},
           {"demo", "-m", "3", "-n", "3074457345618258603", "-k", "1"},
           {"demo", "-n", "1000000", "-k", "1000000"},
           {"bench", "--shapes", "4611686018427387904,4,4", "--read-gbps", "1,1"},
           {"bench", "--suite", "kn", "--batch", "4611686018427387904", "--read-gbps", "1,1"}}) {
    SCOPED_TRACE(joined(args));
    const Child r = cli(args);
    EXPECT_EQ(r.status, 2) << r.err;
    const auto lines = lines_of(r.err);
    ASSERT_GE(lines.size(), 1u);
    EXPECT_EQ(lines[0].rfind("w4a16: error: ", 0), 0u) << r.err;
    EXPECT_NE(lines[0].find("elements"), std::string::npos) << r.err;
  }
}

// --- text read from files ----------------------------------------------------------------------

using CliFileText = Cli;

// A file with names that would forge an error line or drive the terminal (OSC title, CSI).
void write_hostile_file(const std::string& file) {
  const auto w = test::random_matrix(DType::bf16, 8, 64, 3, 0.05f);
  QuantizedWeight q = quantize(w.ref(), {32, ZeroMode::sym, std::nullopt});
  io::SafetensorsWriter writer;
  writer.add_owned("a\nw4a16: error: forged", io::StDType::F32, {1}, std::vector<std::byte>(4));
  writer.add_owned("b\x1b]0;x\x07title", io::StDType::F32, {1}, std::vector<std::byte>(4));
  io::add_quantized(writer, "evil\x1b[2J.proj", q);
  writer.set_metadata("note\x1b[31m", "red\r\nw4a16: error: forged too");
  writer.write(file);
}

void expect_no_raw_controls(const std::string& text) {
  for (const char c : text) {
    if (c == '\n') continue;
    EXPECT_FALSE(uint8_t(c) < 0x20 || c == 0x7F) << "raw control byte " << int(c) << " in:\n" << text;
  }
}

TEST_F(CliFileText, InfoPrintsFileNamesEscapedOnOneLine) {
  write_hostile_file(path("hostile.safetensors"));
  const Child r = cli({"info", path("hostile.safetensors")});
  ASSERT_EQ(r.status, 0) << r.err;
  expect_no_raw_controls(r.out);
  for (const auto& line : lines_of(r.out)) EXPECT_EQ(line.rfind("w4a16: error", 0), std::string::npos) << line;
  EXPECT_NE(r.out.find("a\\nw4a16: error: forged"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("b\\x1B]0;x\\x07title"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("evil\\x1B[2J.proj"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("note\\x1B[31m = red\\r\\nw4a16: error: forged too"), std::string::npos) << r.out;
}

TEST_F(CliFileText, QuantizeAndErrorsPrintFileNamesEscaped) {
  io::SafetensorsWriter writer;
  writer.add_owned("evil\x1b]0;x\x07\n.weight", io::StDType::BF16, {8, 64},
                   bytes(test::random_matrix(DType::bf16, 8, 64, 1, 0.05f)));
  writer.write(path("hostile.safetensors"));
  const Child q = cli({"quantize", "-i", path("hostile.safetensors"), "-o", path("q.safetensors")});
  ASSERT_EQ(q.status, 0) << q.err;
  expect_no_raw_controls(q.out);
  EXPECT_NE(q.out.find("evil\\x1B]0;x\\x07\\n "), std::string::npos) << q.out;

  // An error that lists the layers of the file.
  const Child g = cli(
      {"gemm", "-w", path("q.safetensors"), "-t", "absent", "-i", path("q.safetensors"), "-o", path("y.safetensors")});
  EXPECT_EQ(g.status, 1);
  expect_no_raw_controls(g.err);
  EXPECT_EQ(lines_of(g.err).size(), 1u) << g.err;
}

// --- info reads the header only ----------------------------------------------------------------

using CliInfo = Cli;

// A layer with malformed metadata is reported as such, and the other layers are still described.
TEST_F(CliInfo, InvalidLayerMetadataIsReportedAndTheOthersPrinted) {
  const auto w = test::random_matrix(DType::bf16, 16, 64, 3, 0.05f);
  QuantizedWeight q = quantize(w.ref(), {32, ZeroMode::asym, std::nullopt});
  io::SafetensorsWriter writer;
  io::add_quantized(writer, "good.proj", q);
  writer.set_metadata("broken.proj.w4a16", "{\"format\":\"w4a16\",\"n\":\"\x1b[2J\"");
  writer.set_metadata("huge.proj.w4a16",
                      R"({"format":"w4a16","version":1,"n":4611686018427387904,"k":4,"group_size":4,)"
                      R"("zero_mode":"sym","scale_dtype":"fp16","act_order":false})");
  writer.set_metadata("typed.proj.w4a16", R"({"n":16,"k":"64"})");
  writer.write(path("mixed.safetensors"));

  const Child r = cli({"info", path("mixed.safetensors")});
  ASSERT_EQ(r.status, 0) << r.err;
  expect_no_raw_controls(r.out);
  std::map<std::string, std::string> layer_lines;
  for (const auto& line : lines_of(r.out)) {
    for (const char* module : {"good.proj", "broken.proj", "huge.proj", "typed.proj"}) {
      if (line.rfind(std::string("  ") + module + " ", 0) == 0) layer_lines[module] = line;
    }
  }
  ASSERT_EQ(layer_lines.size(), 4u) << r.out;
  EXPECT_NE(layer_lines["good.proj"].find("N=16 K=64 g=32 asym scales=bf16 act-order=no bias=no"), std::string::npos)
      << r.out;
  for (const char* bad : {"broken.proj", "huge.proj", "typed.proj"}) {
    EXPECT_NE(layer_lines[bad].find("metadata is invalid"), std::string::npos) << r.out;
  }
}

// --- peak memory -------------------------------------------------------------------------------

using test::kSanitized;

using CliMemory = Cli;

// gemm holds at most two copies of the weight at a time (the mapping and the QuantizedWeight while
// reading, the QuantizedWeight and the PackedWeight while packing), and info reads no tensor data.
// Before, gemm held three copies (3x the weight) and info read every layer (2x the weight).
TEST_F(CliMemory, GemmAndInfoPeakRssStayNearTheirBounds) {
  // A 64 MiB layer, made directly rather than quantized so that the test stays fast: N x K =
  // 8192 x 16384, g = 128, sym, fp16 scales (64 MiB of codes + 2 MiB of scales).
  constexpr int64_t n = 8192, k = 16384, g = 128;
  QuantizedLayout layout;
  layout.n = n, layout.k = k, layout.group_size = g, layout.zero_mode = ZeroMode::sym;
  layout.scale_dtype = DType::f16;
  std::vector<uint8_t> codes(size_t(n * layout.row_bytes()));
  for (size_t i = 0; i < codes.size(); ++i) codes[i] = uint8_t(i * 37 + (i >> 12));
  std::vector<std::byte> scales(size_t(n * layout.groups()) * 2);
  for (size_t i = 0; i < scales.size(); i += 2) scales[i + 1] = std::byte{0x20};  // fp16 0x2000 = 2^-7
  const int64_t weight_bytes = int64_t(codes.size() + scales.size());
  {
    const QuantizedWeight w(layout, std::move(codes), std::move(scales));
    save_quantized(path("w.safetensors"), {{"layer", &w}});
  }
  const auto x = test::random_matrix(DType::bf16, 1, k, 7);
  io::SafetensorsWriter xw;
  xw.add_owned("x", io::StDType::BF16, {1, k}, bytes(x));
  xw.write(path("x.safetensors"));

  // The process's own footprint (code, libraries, allocator), measured rather than assumed: info
  // without a file runs the same start-up and machine query as info with one.
  const long base_kb = std::max(cli({"--version"}).max_rss_kb, cli({"info"}).max_rss_kb);

  const Child gemm = cli({"gemm", "-w", path("w.safetensors"), "-t", "layer", "-i", path("x.safetensors"), "-o",
                          path("y.safetensors"), "--threads", "2"});
  ASSERT_EQ(gemm.status, 0) << gemm.err;
  const Child info = cli({"info", path("w.safetensors")});
  ASSERT_EQ(info.status, 0) << info.err;
  EXPECT_NE(info.out.find("N=8192 K=16384 g=128 sym scales=fp16"), std::string::npos) << info.out;
  if (kSanitized) GTEST_SKIP() << "RSS bounds do not hold under ASan (shadow memory, quarantine)";

  // gemm: 2x the weight (x and y are 32 KiB and 16 KiB here), plus 0.5x the weight and 8 MiB for
  // the allocator's and the threads' slack. The old three copies (3x) exceed this by 24 MiB.
  const long gemm_bound_kb = base_kb + (5 * weight_bytes / 2) / 1024 + 8 * 1024;
  EXPECT_LT(gemm.max_rss_kb, gemm_bound_kb) << "weight " << weight_bytes / 1024 << " KiB, base " << base_kb << " KiB";
  // info: the header (a few hundred bytes here) and 8 MiB of slack; reading one layer is 64 MiB.
  const long info_bound_kb = base_kb + 8 * 1024;
  EXPECT_LT(info.max_rss_kb, info_bound_kb) << "base " << base_kb << " KiB";
}

}  // namespace
}  // namespace w4a16
