// A group's headline figures and their ratios to the first group (pure),
// and the report as text: one table per group.
#pragma once

#include <string>
#include <vector>

#include "bench/swap/report.hpp"

namespace tierswap::bench {

struct Metric {
  std::string key;    // "probe_p99_us", stable for JSON
  std::string label;  // "perceived latency p99"
  double value = 0;
  std::string unit;  // "µs", "s", "MiB/s", "IOPS", "pages/s"
  bool lower_is_better = true;
};

// The figures of one group, in table order. Groups that did not run have
// none. Raw-device rows are keyed by mode and position of the area in the
// group ("raw0_randread_p99_us"), so groups with one tier each compare.
std::vector<Metric> metrics(const Group& g);

// value / the first ok group's value of the same key; nullopt when that
// group lacks the key or its value is 0.
std::optional<double> ratio(const Report& r, const Metric& m);

// Markdown: a header with the machine and the parameters, then one table
// per group (metric | value | vs FIRST), failed groups with their error.
std::string text_report(const Report& r);

// The summary as JSON: [{"group": name, "metrics": [{key, label, value,
// unit, ratio}]}] (ratio null where there is none).
std::string summary_json(const Report& r);

}  // namespace tierswap::bench
