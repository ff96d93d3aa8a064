// The calibration file (`w4a16 calibrate`, $W4A16_CALIBRATION) is trusted only when every figure in
// it is within the physical ranges of src/plan/devices/cpu/calibration_file.hpp; otherwise the whole
// file is ignored with one warning on stderr naming the key and the value, and the planner plans
// with the defaults. Before, a rate of 5e-324 passed "v > 0" and every prediction became NaN (the
// planner still chose), 1e-300 predicted 10^300 ms, and a FIFO at the path hung the first plan.
#include "plan/devices/cpu/calibration_file.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/host.hpp"
#include "cpu/thread_pool.hpp"
#include "plan/plan_cache.hpp"
#include "support/io_test_util.hpp"
#include "w4a16/w4a16.hpp"

namespace w4a16 {
namespace {

namespace fs = std::filesystem;

// A scratch calibration path in $W4A16_CALIBRATION for the test's length.
class Calibration : public test::HangGuardedTest {
 protected:
  void SetUp() override {
    HangGuardedTest::SetUp();
    dir_ = fs::temp_directory_path() / ("w4a16-calibration-test-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    ::setenv("W4A16_CALIBRATION", path().c_str(), 1);
  }
  void TearDown() override {
    ::unsetenv("W4A16_CALIBRATION");
    plan::use_cpu_calibration(std::nullopt);  // the description from the (now absent) file again
    fs::remove_all(dir_);
    HangGuardedTest::TearDown();
  }
  fs::path path() const { return dir_ / "calibration.json"; }

  // What `w4a16 calibrate` would write on this machine, as JSON.
  static nlohmann::json valid() {
    plan::devices::CpuCalibration c;
    c.cpu = host::cpu_name();
    c.threads = cpu::available_cpus();
    c.read_gbps = {{1, 12.5}, {2, 20.0}};
    c.fma_gflops = {{1, 100.0}};
    c.dot_gflops = {{1, 80.0}};
    c.tile_gflops = {{1, 3400.0}};
    c.tile_dequant_gweights = {{1, 64.0}};
    c.fork_join_us = 3.5;
    c.incore_scale["decoupled"] = {{{1, 4}, 1.75}};
    plan::devices::save_calibration(c);
    std::ifstream in(std::getenv("W4A16_CALIBRATION"));
    return nlohmann::json::parse(in);
  }
  void write(const std::string& text) const { std::ofstream(path(), std::ios::trunc) << text; }

  // Re-reads the file as a new process would (the warning goes to stderr), then plans one call;
  // returns stderr. Every prediction must be a finite, positive time whatever the file held.
  static std::string plan_with_the_file() {
    ::testing::internal::CaptureStderr();
    plan::use_cpu_calibration(std::nullopt);
    const auto device = plan::cpu_device();
    const std::string err = ::testing::internal::GetCapturedStderr();
    const QuantizedLayout layout{
        .n = 256, .k = 1024, .group_size = 128, .zero_mode = ZeroMode::sym, .scale_dtype = DType::bf16};
    for (const int64_t m : {1, 64}) {
      const auto plans = plan_candidates(m, layout, DType::bf16, {}, "cpu");
      EXPECT_FALSE(plans.empty());
      for (const auto& p : plans) {
        EXPECT_TRUE(std::isfinite(p.predicted_s) && p.predicted_s > 0 && p.predicted_s < 1.0)
            << "M = " << m << ": predicted " << p.predicted_s << " s";
      }
    }
    return err;
  }

  fs::path dir_;
};

// Each figure out of range in turn — a denormal, a tiny rate, a huge one, infinity, NaN (JSON has
// neither: written as 1e999 and NaN, or as null by a JSON writer), a negative value, a key that is
// not a thread count — and the whole file is ignored, with a warning naming the key and the value.
TEST_F(Calibration, OutOfRangeValuesAreIgnored) {
  const nlohmann::json good = valid();
  ASSERT_TRUE(plan::devices::load_calibration().has_value()) << good.dump();  // in range: trusted
  EXPECT_EQ(plan_with_the_file(), "");

  struct Case {
    std::string key;    // what the warning must name
    std::string value;  // the value's text, as the warning must print it
    std::function<void(nlohmann::json&)> spoil;
  };
  const std::vector<Case> cases = {
      {"read_gbps[\"1\"]", "5e-324", [](nlohmann::json& j) { j["read_gbps"]["1"] = 5e-324; }},
      {"read_gbps[\"2\"]", "1e-300", [](nlohmann::json& j) { j["read_gbps"]["2"] = 1e-300; }},
      {"read_gbps[\"1\"]", "1e+300", [](nlohmann::json& j) { j["read_gbps"]["1"] = 1e300; }},
      {"fma_gflops[\"1\"]", "5e-324", [](nlohmann::json& j) { j["fma_gflops"]["1"] = 5e-324; }},
      {"fma_gflops[\"1\"]", "-100", [](nlohmann::json& j) { j["fma_gflops"]["1"] = -100.0; }},
      {"dot_gflops[\"1\"]", "1e+300", [](nlohmann::json& j) { j["dot_gflops"]["1"] = 1e300; }},
      {"dot_gflops[\"1\"]", "null", [](nlohmann::json& j) { j["dot_gflops"]["1"] = NAN; }},
      {"tile_gflops[\"1\"]", "1e+300", [](nlohmann::json& j) { j["tile_gflops"]["1"] = 1e300; }},
      {"tile_gflops[\"1\"]", "5e-324", [](nlohmann::json& j) { j["tile_gflops"]["1"] = 5e-324; }},
      {"tile_dequant_gweights[\"1\"]", "1e+300", [](nlohmann::json& j) { j["tile_dequant_gweights"]["1"] = 1e300; }},
      {"tile_dequant_gweights[\"1\"]", "-1", [](nlohmann::json& j) { j["tile_dequant_gweights"]["1"] = -1.0; }},
      {"fork_join_us", "5e-324", [](nlohmann::json& j) { j["fork_join_us"] = 5e-324; }},
      {"fork_join_us", "null", [](nlohmann::json& j) { j["fork_join_us"] = INFINITY; }},
      {"incore_scale[\"decoupled\"][0].scale", "5e-324",
       [](nlohmann::json& j) { j["incore_scale"]["decoupled"][0]["scale"] = 5e-324; }},
      {"incore_scale[\"decoupled\"][0].scale", "1e-300",
       [](nlohmann::json& j) { j["incore_scale"]["decoupled"][0]["scale"] = 1e-300; }},
      {"read_gbps[\"1x\"]", "", [](nlohmann::json& j) { j["read_gbps"]["1x"] = 5.0; }},  // std::stoi read "1x" as 1
  };
  for (const Case& c : cases) {
    nlohmann::json j = good;
    c.spoil(j);
    write(j.dump(2));
    SCOPED_TRACE(c.key + " = " + c.value);
    EXPECT_FALSE(plan::devices::load_calibration().has_value());
    const auto file = plan::devices::read_calibration_file();
    EXPECT_NE(file.ignored.find(c.key), std::string::npos) << file.ignored;
    EXPECT_NE(file.ignored.find(c.value), std::string::npos) << file.ignored;
    const std::string err = plan_with_the_file();
    EXPECT_NE(err.find("w4a16: warning: calibration file ignored"), std::string::npos) << err;
    EXPECT_NE(err.find(c.key), std::string::npos) << err;
  }

  // Infinity and NaN as text (no JSON writer makes them; a person or another tool might).
  for (const std::string text : {"1e999", "-1e999", "NaN", "Infinity"}) {
    SCOPED_TRACE(text);
    std::string spoiled = good.dump(2);
    const std::string was = "\"fork_join_us\": 3.5";
    ASSERT_NE(spoiled.find(was), std::string::npos);
    spoiled.replace(spoiled.find(was), was.size(), "\"fork_join_us\": " + text);
    write(spoiled);
    EXPECT_FALSE(plan::devices::load_calibration().has_value());
    EXPECT_NE(plan_with_the_file().find("w4a16: warning: calibration file ignored"), std::string::npos);
  }

  // Stale, not damaged (another CPU): ignored without a warning, as before.
  nlohmann::json other = good;
  other["cpu"] = "another CPU";
  write(other.dump());
  EXPECT_FALSE(plan::devices::load_calibration().has_value());
  EXPECT_EQ(plan_with_the_file(), "");
}

// $W4A16_CALIBRATION naming a FIFO nobody writes to: ignored at once with a warning naming it, and
// the planner plans with the defaults. Before, the first plan of the process waited forever in
// open().
TEST_F(Calibration, AFifoIsIgnoredWithAWarningNotAWait) {
  ASSERT_EQ(::mkfifo(path().c_str(), 0600), 0) << std::strerror(errno);
  EXPECT_FALSE(plan::devices::load_calibration().has_value());
  const std::string err = plan_with_the_file();
  EXPECT_NE(err.find("w4a16: warning: calibration file ignored"), std::string::npos) << err;
  EXPECT_NE(err.find(path().string() + "': it is a FIFO"), std::string::npos) << err;
}

}  // namespace
}  // namespace w4a16
