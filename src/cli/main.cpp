// `w4a16` command-line tool: quantize | convert | gemm | info | demo | bench | calibrate | model.
// Exit status (docs/cli.md): 0 success (and --help, --version); 1 a runtime failure, with one line
// "w4a16: error: ..." on stderr; 2 a misuse of the command line, with the same line followed by
// "Run with --help for more information.".
#include <fmt/format.h>

#include <cstdio>
#include <exception>
#include <new>
#include <string_view>
#include <vector>

#include "cli/arg_checks.hpp"
#include "cli/commands.hpp"
#include "common/printable.hpp"
#include "w4a16/w4a16.hpp"

namespace {

// Messages carry names read from files and text typed by the user; printable() keeps each on one
// line that cannot drive the terminal (it is idempotent, so already-escaped messages are unchanged).
int report(std::string_view what, int status) {
  fmt::print(stderr, "w4a16: error: {}\n", w4a16::printable(what));
  if (status == 2) fmt::print(stderr, "Run with --help for more information.\n");
  return status;
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) w4a16::cli::command_line() += std::string(" ") + argv[i];
  CLI::App app{"w4a16: weight-only INT4 quantized matrix multiplication (W4A16)", "w4a16"};
  app.set_version_flag("--version", std::string(w4a16::version()));
  app.require_subcommand(1);

  const std::vector<w4a16::cli::Command> commands = {
      w4a16::cli::register_quantize(app),  w4a16::cli::register_convert(app), w4a16::cli::register_gemm(app),
      w4a16::cli::register_info(app),      w4a16::cli::register_demo(app),    w4a16::cli::register_bench(app),
      w4a16::cli::register_calibrate(app), w4a16::cli::register_model(app),   w4a16::cli::register_plan(app)};

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // CLI11 ends parsing for --help and --version with a "parse error" of exit code 0; it prints
    // those itself. Every other one is a usage error, reported with exit status 2 (CLI11's own
    // codes, 100-120, are not documented anywhere a script would look).
    if (e.get_exit_code() == 0) return app.exit(e);
    return report(e.what(), 2);
  }
  try {
    for (const auto& command : commands) {
      if (command.app->parsed()) command.run();
    }
  } catch (const w4a16::cli::UsageError& e) {
    return report(e.what(), 2);
  } catch (const std::bad_alloc&) {
    return report("out of memory", 1);
  } catch (const std::exception& e) {
    return report(e.what(), 1);
  }
  return 0;
}
