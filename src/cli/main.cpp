// `w4a16` command-line tool: quantize | gemm | info | demo.
// Every failure prints one line "w4a16: error: ..." on stderr and exits with status 1
// (2 for command-line usage errors, as CLI11 reports them).
#include <fmt/format.h>

#include <cstdio>
#include <exception>
#include <new>
#include <vector>

#include "cli/commands.hpp"
#include "w4a16/w4a16.hpp"

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) w4a16::cli::command_line() += std::string(" ") + argv[i];
  CLI::App app{"w4a16: weight-only INT4 quantized matrix multiplication (W4A16)", "w4a16"};
  app.set_version_flag("--version", std::string(w4a16::version()));
  app.require_subcommand(1);

  const std::vector<w4a16::cli::Command> commands = {
      w4a16::cli::register_quantize(app), w4a16::cli::register_gemm(app),  w4a16::cli::register_info(app),
      w4a16::cli::register_demo(app),     w4a16::cli::register_bench(app), w4a16::cli::register_calibrate(app)};

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    for (const auto& command : commands) {
      if (command.app->parsed()) command.run();
    }
  } catch (const w4a16::Error& e) {
    fmt::print(stderr, "w4a16: error: {}\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    fmt::print(stderr, "w4a16: error: out of memory\n");
    return 1;
  } catch (const std::exception& e) {
    fmt::print(stderr, "w4a16: error: {}\n", e.what());
    return 1;
  }
  return 0;
}
