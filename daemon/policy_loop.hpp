// PolicyLoop: runs policy::decide() on each Observation and hands the
// actions to the OperationRunner (evacuate -> runner.evacuate, promote ->
// runner.promote), the caller being the rule that decided.
//
// Before deciding, the policy's memory (PolicyState) follows what the tiers
// really are, because people and failures move them too:
//   - a VRAM tier that is not active, demoting or drained by the policy
//     (unavailable, failed, or drained by a person) is left out of the
//     snapshot: the policy never promotes what a person demoted;
//   - a tier the policy had evacuated that is active again (a person
//     promoted it, or the evacuation failed) is active to the policy too.
// An action the runner refuses (the room rule, EBUSY, ...) leaves that
// tier's PolicyState as it was, is logged and signalled once per episode
// (until decide() stops asking for it), and is not tried again before
// retry_ms of snapshot time.
//
// Every snapshot decided on goes to `record` as a trace line (tierswapd
// --record; policy/trace.hpp): `tierswapctl simulate` replays it.
//
// Thread-safety: decide() on one thread at a time (the loop); counters()
// from any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "daemon/operation_runner.hpp"
#include "daemon/status_observer.hpp"
#include "dbus/status.hpp"
#include "policy/decide.hpp"

namespace tierswap {

struct PolicyLoopOptions {
  std::function<void(const std::string&)> warn;               // log sink
  std::function<void(const std::string& trace_line)> record;  // --record; empty: off
  std::uint64_t retry_ms = 60'000;
};

class PolicyLoop {
 public:
  PolicyLoop(OperationRunner& runner, EventSink& events, PolicyLoopOptions opts = {});

  void decide(const Observation& o, const policy::PolicySpec& spec);

  // Actions decided so far, by (action, rule), in that order.
  [[nodiscard]] std::vector<PolicyCounter> counters() const;

 private:
  policy::Snapshot reconcile(const Observation& o);
  // Hands `a` to the runner; false when it refused (already logged).
  bool act(const policy::Action& a);

  struct Episode {
    std::string kind;  // the action refused
    std::uint64_t retry_at_ms = 0;
  };

  OperationRunner& runner_;
  EventSink& events_;
  PolicyLoopOptions opts_;
  policy::PolicyState state_;
  std::set<std::string> evacuated_;         // tiers the policy drained
  std::map<std::string, Episode> refused_;  // by tier
  mutable std::mutex counts_mu_;
  std::map<std::pair<std::string, std::string>, std::uint64_t> counts_;
};

}  // namespace tierswap
