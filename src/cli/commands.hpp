// The `w4a16` subcommands: each file registers one on the CLI11 app and runs it.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace w4a16::cli {

// Each register_* adds a subcommand and returns it with the action to run when it was selected.
struct Command {
  CLI::App* app = nullptr;
  std::function<void()> run;
};

Command register_quantize(CLI::App& app);
Command register_gemm(CLI::App& app);
Command register_info(CLI::App& app);
Command register_demo(CLI::App& app);

}  // namespace w4a16::cli
