// `w4a16 model --json FILE`: every prediction of a run (schema w4a16-model/1, docs/model.md "JSON
// output"); bench/model_plot.py draws it.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "model/paper_run.hpp"

namespace w4a16::model {

// `command`: the command line as typed, recorded in the document.
nlohmann::json paper_run_json(const PaperRun& run, const std::string& command);

// paper_run_json written atomically to `path` (one-space indent, a final newline).
void write_paper_json(const PaperRun& run, const std::string& command, const std::string& path);

}  // namespace w4a16::model
