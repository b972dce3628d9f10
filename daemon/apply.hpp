// The apply engine: runs a Plan's steps in order, each by the tier-kind
// plug-in that owns it (Step::kind), journalling each one as it completes; on the first failure it undoes the
// completed steps in reverse and reports what failed, with the sysfs path, the value and the kernel's answer:
//   step 2 of 7 ([fast] write /sys/block/zram1/comp_algorithm = "zstd"):
//   /sys/block/zram1/comp_algorithm: "zstd": Invalid argument
//   (this kernel offers: lzo-rle lzo lz4); undid 1 step
// The returned Error's message is complete (it already holds strerror of the
// kernel's errno): print .message, not describe().
//
// Not thread-safe: one Executor per apply, under the caller's lock.
#pragma once

#include <functional>
#include <map>
#include <string>

#include "backends/hostfs/host_fs.hpp"
#include "backends/swap/kernel.hpp"
#include "common/result.hpp"
#include "daemon/journal.hpp"
#include "daemon/plan.hpp"

namespace tierswap {

struct ApplyOptions {
  // Called before each step runs, with its number (1-based); an error
  // fails that step as if the step itself had (the completed ones are
  // undone). Unset in the daemon; the tests' fault injection sets it
  // (tests/support/fault_injection.hpp, tierswapd-test --test-fail-step).
  std::function<Result<void>(std::size_t number, const Step& step)> before_step;
  // Keep going after a failure instead of undoing (teardown on exit: undo
  // as much as possible). The first error is still returned.
  bool best_effort = false;
  // Save the journal after each step (off for in-memory tests).
  bool persist = true;
  std::function<void(const std::string&)> log;  // one line per step
};

class Executor {
 public:
  Executor(const HostFs& fs, swap::Kernel& kernel, Journal& journal)
      : fs_(fs), kernel_(kernel), journal_(journal) {}
  Result<void> apply(const Plan& plan, const ApplyOptions& opts = {});

 private:
  // Binds placeholders, saves the step in the journal as pending (after its
  // plug-in's prepare()), has the plug-in execute it, records it in the
  // journal (saved by the caller).
  Result<void> run(Step& s, const ApplyOptions& opts);
  void save(const ApplyOptions& opts);

  const HostFs& fs_;
  swap::Kernel& kernel_;
  Journal& journal_;
  // Placeholder -> its value, bound by steps of this apply ("{zram:fast}" -> "zram1").
  std::map<std::string, std::string> bindings_;
};

}  // namespace tierswap
