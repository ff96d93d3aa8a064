// The `w4a16` executable end to end: quantize + gemm reproduce the reference; bad input gives a
// non-zero exit status and a one-line error.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "io/quantized_file.hpp"
#include "io/safetensors.hpp"
#include "support/random_data.hpp"

namespace w4a16 {
namespace {

namespace fs = std::filesystem;

struct Result {
  int status;
  std::string output;  // stdout + stderr
};

Result run(const std::string& args) {
  const std::string cmd = std::string(W4A16_CLI_PATH) + " " + args + " 2>&1";
  FILE* pipe = popen(cmd.c_str(), "r");
  std::string out;
  std::array<char, 4096> buf;
  while (size_t n = fread(buf.data(), 1, buf.size(), pipe)) out.append(buf.data(), n);
  const int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

class Cli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("w4a16-cli-test-" + std::to_string(getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

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
  const Result q =
      run("quantize -i " + path("model.safetensors") + " -o " + path("q.safetensors") + " --group-size 64 --zero asym");
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
      const Result g = run("gemm -w " + path("q.safetensors") + " -t model.layers.0.mlp.down_proj.weight -i " +
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
    const Result r = run(args);
    EXPECT_NE(r.status, 0) << args << "\n" << r.output;
    EXPECT_FALSE(r.output.empty()) << args;
  }
  const Result r = run(bad[0]);
  EXPECT_EQ(r.output.rfind("w4a16: error: ", 0), 0u) << r.output;
  EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
}

TEST_F(Cli, HelpAndInfo) {
  for (const char* cmd : {"--help", "quantize --help", "gemm --help", "info --help", "demo --help"}) {
    const Result r = run(cmd);
    EXPECT_EQ(r.status, 0) << cmd << "\n" << r.output;
  }
  const Result info = run("info");
  EXPECT_EQ(info.status, 0);
  EXPECT_NE(info.output.find("avx2"), std::string::npos) << info.output;
  const Result demo = run("demo -m 2 -k 256 -n 128 --repeats 1");
  EXPECT_EQ(demo.status, 0) << demo.output;
  EXPECT_NE(demo.output.find("kernel vs oracle"), std::string::npos) << demo.output;
}

TEST_F(Cli, BenchWritesTheTableAndTheJsonSchema) {
  const Result r =
      run("bench --shapes '1,256,128;5,300,70' --read-gbps 30,50 --min-time 0.01 --rotate-mib 1 --study --threads 2 "
          "--json " +
          path("b.json") + " --csv " + path("b.csv"));
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("1x256x128"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("conclusion:"), std::string::npos) << r.output;
  std::ifstream in(path("b.json"));
  const auto doc = nlohmann::json::parse(in);
  EXPECT_EQ(doc["schema"], "w4a16-bench/1");
  EXPECT_EQ(doc["machine"]["read_gbps"]["2"], 50.0);
  ASSERT_EQ(doc["results"].size(), 2u);
  for (const auto& item : doc["results"]) {
    for (const char* v : {"dense", "fused", "fused_dp", "fused_splitk", "decoupled", "decoupled_dram",
                          "decoupled_widen", "int4_stream"}) {
      ASSERT_TRUE(item["variants"].contains(v)) << v;
      EXPECT_GT(item["variants"][v]["median_ms"].get<double>(), 0.0) << v;
    }
    EXPECT_TRUE(item["variants"]["fused"]["verified"].get<bool>());
    EXPECT_FALSE(item["variants"]["int4_stream"]["verified"].get<bool>());  // an ablation computes nothing
  }
  EXPECT_EQ(doc["study"]["breakdown"].size(), 2u);
  std::ifstream csv(path("b.csv"));
  std::string header;
  std::getline(csv, header);
  EXPECT_EQ(header.rfind("model,layer,m,k,n,variant,median_ms", 0), 0u) << header;

  EXPECT_NE(run("bench --suite nope --read-gbps 1,1").status, 0);
  EXPECT_NE(run("bench --shapes '1,2' --read-gbps 1,1").status, 0);
}

}  // namespace
}  // namespace w4a16
