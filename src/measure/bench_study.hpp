// `w4a16 bench --study`: the paper's three findings read off the measured variants (split-K over
// data-parallel, W4A16 over dense 16-bit, and where the decoupled time goes). JSON: the "study"
// object of docs/bench-json.md.
#pragma once

#include <nlohmann/json.hpp>
#include <vector>

#include "measure/runner.hpp"

namespace w4a16::measure {

nlohmann::json study_json(const std::vector<ShapeResult>& results);

// The study on stdout, from study_json's object.
void print_study(const nlohmann::json& study);

}  // namespace w4a16::measure
