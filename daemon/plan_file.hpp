// Plan a config file against a machine (real or under a fake root) without
// changing anything: what `tierswapctl check` and `tierswapctl plan` run.
// Loads FILE, observes the machine, reads the journal, plans; every
// diagnostic (loader's and planner's, errors and warnings) is printed to
// `diag` as FILE:LINE:COL: key.path: message (hint).
#pragma once

#include <cstdio>
#include <string>

#include "daemon/plan.hpp"

namespace tierswap {

struct FilePlan {
  bool ok = false;  // no error diagnostic and the machine could be read
  Plan plan;
};

FilePlan plan_file(const std::string& file, const std::string& root, std::FILE* diag);

}  // namespace tierswap
