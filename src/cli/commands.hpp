// The `w4a16` subcommands: each file registers one on the CLI11 app and runs it.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>

namespace w4a16::cli {

// Each register_* adds a subcommand and returns it with the action to run when it was selected.
struct Command {
  CLI::App* app = nullptr;
  std::function<void()> run;
};

// The command line as typed ("w4a16 bench --json x"), for reports.
inline std::string& command_line() {
  static std::string text = "w4a16";
  return text;
}

Command register_quantize(CLI::App& app);
Command register_convert(CLI::App& app);
Command register_gemm(CLI::App& app);
Command register_info(CLI::App& app);
Command register_demo(CLI::App& app);
Command register_bench(CLI::App& app);
Command register_calibrate(CLI::App& app);
Command register_model(CLI::App& app);
Command register_plan(CLI::App& app);

}  // namespace w4a16::cli
