// The swap benchmark's report: what one `tierswapctl bench` run measured,
// per group (one tier setup), as plain data. Everything here is pure: the
// runner (runner.hpp) fills a Report from the machine; the writers (JSON,
// text table, plots) and the summary read one, so they are tested on
// recorded runs (tests/fixtures/bench/).
//
// Units: times in seconds unless the name says _us (microseconds); counters
// as the kernel gives them (pages, microseconds of stall).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/result.hpp"

namespace tierswap::bench {

// One fio job against one tier's device: 4 KiB random I/O, QD32, O_DIRECT.
struct RawResult {
  std::string tier;    // the swap area it stands for: "/dev/zram1", "/var/tmp/x.swap"
  std::string target;  // what fio ran against (a scratch twin of the area; see runner.hpp)
  std::string mode;    // "randread" | "randwrite"
  double iops = 0, p50_us = 0, p99_us = 0, p999_us = 0;
};

// Once a second during the load: cumulative counters, diffed by samples.hpp.
struct Sample {
  double t = 0;                            // seconds since the load started
  std::uint64_t pswpin = 0, pswpout = 0;   // /proc/vmstat, pages
  std::uint64_t some_us = 0, full_us = 0;  // /proc/pressure/memory totals
  // The bench cgroup's memory.pressure totals (cgroup v2 only).
  std::optional<std::uint64_t> cg_some_us, cg_full_us;
};

// The checksummed hog's own account (hog.hpp).
struct HogResult {
  std::uint64_t pages = 0;      // working set, 4 KiB pages
  std::uint64_t touches = 0;    // pages checked and rewritten after the fill
  std::uint64_t bad_pages = 0;  // pages that came back wrong (must be 0)
  double fill_s = 0;            // time to write the working set once
  int exit_status = 0;          // 0 every page verified
};

struct Group {
  std::string name;                // "disk", "zram", "configured", or the config's file name
  std::string config;              // the config file applied
  std::string status = "ok";       // "ok" | "failed" | "skipped"
  std::string error;               // why, when not ok
  std::vector<std::string> areas;  // swap areas the group added (/proc/swaps)
  std::vector<RawResult> raw;
  std::vector<Sample> samples;
  std::vector<double> probe_us;  // the perceived-latency task, every run
  HogResult hog;
  double seconds = 0;  // length of the load
};

struct Params {
  std::uint64_t memory_max = 0;   // bytes the bench cgroup may use
  std::uint64_t working_set = 0;  // bytes the hog touches
  double seconds = 0;             // load per group
  double raw_seconds = 0;         // each fio job
  std::uint64_t raw_size = 0;     // scratch size fio runs over
  double probe_interval_ms = 0;
  std::string cgroup;  // "v2" | "v1"
};

struct Report {
  int version = 1;
  std::string tool_version, date, kernel, cpu, command;
  std::uint64_t ram = 0;
  Params params;
  std::vector<Group> groups;
};

// JSON (the --json output and report.json). from_json fails with EINVAL
// naming the key when the text is not such a report.
std::string to_json(const Report& r);
Result<Report> report_from_json(const std::string& text);

}  // namespace tierswap::bench
