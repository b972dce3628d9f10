// The swap benchmark's runner: the part that touches the machine.
//
// Per group, in this order (each step undone on every exit path, Ctrl-C
// included, in reverse):
//   1. tierswapd --config GROUP --no-dbus runs as a child in its own process
//      group; it plans and applies the group's tiers the way it always does
//      and says READY=1 on a private $NOTIFY_SOCKET. The swap areas it adds
//      (the /proc/swaps difference) are the group's tiers. SIGTERM makes it
//      undo everything it did (its exit status says whether it could).
//   2. Raw device: fio against a scratch twin of each area, never the area
//      itself (writing into an active swap area would destroy whatever the
//      kernel keeps there): a zram area gets a hot-added zram device with
//      the same compressor, a swap file a scratch file in the same directory;
//      any other area (a partition, /dev/nbdN) is read, never written. A
//      vram tier's /dev/nbdN is also measured without the kernel: fio's nbd
//      engine against a scratch exporter with the tier's store.
//   3. Page cache dropped (sync, vm.drop_caches=3).
//   4. The checksummed hog (hog.hpp) forked into a transient memory cgroup
//      (cgroup v2 memory.max, else v1 memory.limit_in_bytes; swap left open)
//      for the load; meanwhile a fixed small task runs every probe interval
//      outside the cgroup (its latency is the "perceived latency"), and
//      /proc/vmstat, /proc/pressure/memory and the cgroup's memory.pressure
//      are sampled once a second.
//   5. The hog is killed if still running, the cgroup removed, tierswapd
//      stopped; /proc/swaps must read as before the group.
// A hog that finds a bad page, or a tierswapd that cannot restore, fails
// the run (after cleaning up) with an error saying so.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "bench/swap/report.hpp"
#include "common/result.hpp"

namespace tierswap::bench {

struct GroupSpec {
  std::string name;    // for the report
  std::string config;  // the file tierswapd applies
};

struct RunOptions {
  std::vector<GroupSpec> groups;
  std::uint64_t memory_max = 256ULL << 20;
  std::uint64_t working_set = 512ULL << 20;
  double seconds = 30;
  double raw_seconds = 5;  // each fio job; 0: no raw-device phase
  std::uint64_t raw_size = 256ULL << 20;
  double probe_interval_ms = 10;
  std::string tierswapd;  // the daemon binary
  std::string work_dir;   // daemon logs (tierswapd-GROUP.log) go here
  bool progress = false;  // a progress line on stderr (a TTY)
  std::string tool_version, command;
};

// Runs every group; a group that fails (its apply, fio, ...) is recorded
// with its error and the next one runs. Errors (returned) only for what
// makes the whole run wrong: Ctrl-C (EINTR), a bad page (EIO), a teardown
// that left the machine changed, no memory cgroup. `log` gets one line per
// step.
Result<Report> run_bench(const RunOptions& o, std::FILE* log);

// A VRAM tier's raw test against its exporter directly: a scratch
// `exporter` (tierswap-nbd) with store `store` and `size` bytes on a Unix
// socket in a private 0700 directory, driven by fio's nbd engine (4 KiB
// random write then read, QD32, `seconds` each), reported for `tier`. The
// exporter is stopped and the directory removed on every path. raw_for_area
// runs it for each area a vram tier of the group's journal holds.
Result<std::vector<RawResult>> raw_scratch_exporter(const std::string& exporter, const std::string& store,
                                                    const std::string& tier, double seconds,
                                                    std::uint64_t size, std::FILE* log);

// The machine facts the report heads with and the safety check uses.
struct MachineFacts {
  std::uint64_t ram = 0, mem_available = 0;
  std::uint64_t swap_total = 0, swap_used = 0;  // bytes, all active areas
  std::string kernel, cpu;
  std::string cgroup;  // "v2", "v1", or "" (no memory cgroup)
};
MachineFacts read_machine_facts();

// Why the bench could push other programs into swap (pure; empty: it
// cannot). `--yes` is needed for any.
std::vector<std::string> consent_reasons(const MachineFacts& m, const RunOptions& o);

// The pid of a running tierswapd, or 0.
int running_tierswapd();

}  // namespace tierswap::bench
