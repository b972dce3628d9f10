// PSI (/proc/pressure/{memory,io,cpu}, cgroup *.pressure) text -> values.
//
//   some avg10=0.12 avg60=0.30 avg300=0.25 total=123456
//   full avg10=0.00 avg60=0.01 avg300=0.00 total=4567
//
// avg* are percent of wall time stalled; total is microseconds. The "full"
// line is absent for cpu on older kernels (has_full false, values zero).
#pragma once

#include <cstdint>
#include <string_view>

#include "common/result.hpp"

namespace tierswap::policy {

struct PsiLine {
  double avg10 = 0, avg60 = 0, avg300 = 0;
  std::uint64_t total_us = 0;
};

struct Psi {
  PsiLine some, full;
  bool has_full = false;
};

// EINVAL naming the line and field when the text is not PSI; `source` (a
// path) only goes into messages.
Result<Psi> parse_psi(std::string_view text, std::string_view source = "pressure");

}  // namespace tierswap::policy
