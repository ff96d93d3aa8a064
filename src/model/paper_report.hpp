// `w4a16 model` on stdout, in order: the device description; the calibration (ONE parameter,
// workspace_l2_hit, fitted to ONE figure, the paper's "at most 1.48x over FP16", and the split-K range
// PREDICTED from it, each with the paper's figure beside it); (a) split-K over data-parallel per shape
// and M; (b) decoupled W4A16 over FP16; (c) the breakdown of the best case, showing which term bounds
// it; (d) a fused design on the same chip; (e) the sensitivity table. docs/model.md explains each.
#pragma once

#include "model/paper_run.hpp"

namespace w4a16::model {

void print_paper_run(const PaperRun& run);

}  // namespace w4a16::model
