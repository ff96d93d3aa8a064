// Runs the built `w4a16` executable (W4A16_CLI_PATH) through the shell with stderr merged into
// stdout: what the CLI tests and the `w4a16 model` tests check.
#pragma once

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

namespace w4a16::test {

struct CliResult {
  int status;          // exit status, or -1 when the process did not exit normally
  std::string output;  // stdout + stderr
};

inline CliResult run_cli(const std::string& args) {
  const std::string cmd = std::string(W4A16_CLI_PATH) + " " + args + " 2>&1";
  FILE* pipe = popen(cmd.c_str(), "r");
  if (!pipe) return {-1, "popen failed: " + cmd};
  std::string out;
  std::array<char, 4096> buf;
  while (size_t n = fread(buf.data(), 1, buf.size(), pipe)) out.append(buf.data(), n);
  const int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

}  // namespace w4a16::test
