#include "daemon/policy_loop.hpp"

#include <algorithm>

#include "common/json.hpp"
#include "policy/trace.hpp"

namespace tierswap {

PolicyLoop::PolicyLoop(OperationRunner& runner, EventSink& events, PolicyLoopOptions opts)
    : runner_(runner), events_(events), opts_(std::move(opts)) {
  if (!opts_.warn) opts_.warn = [](const std::string&) {};
}

std::vector<PolicyCounter> PolicyLoop::counters() const {
  std::lock_guard lk(counts_mu_);
  std::vector<PolicyCounter> out;
  for (const auto& [key, n] : counts_) out.push_back({key.first, key.second, n});
  return out;
}

policy::Snapshot PolicyLoop::reconcile(const Observation& o) {
  policy::Snapshot snap = o.snapshot;
  const auto running = runner_.running();
  std::erase_if(snap.vram, [&](const policy::VramTierSample& g) {
    const auto t = std::find_if(o.status.tiers.begin(), o.status.tiers.end(),
                                [&](const TierStatus& ts) { return ts.name == g.tier; });
    if (t == o.status.tiers.end()) return true;
    const bool ours = evacuated_.contains(g.tier);
    const bool busy_here = running && running->tier == g.tier;
    if (t->state == TierState::active && ours && !busy_here) {
      // Back in use without the policy (a person promoted it, or the
      // evacuation failed): active to the policy too, its history kept.
      evacuated_.erase(g.tier);
      auto& st = state_.tiers[g.tier];
      st.mode = policy::Mode::active;
      st.since_ms = snap.time_ms;
      st.calm_since_ms.reset();
    }
    switch (t->state) {
      case TierState::active:
      case TierState::demoting:
      case TierState::evacuating:
        return false;
      case TierState::drained:
      case TierState::evacuated:
        return !ours;  // a person drained or evacuated it: theirs to bring back
      default:
        return true;  // unavailable, failed: nothing to decide
    }
  });
  return snap;
}

void PolicyLoop::decide(const Observation& o, const policy::PolicySpec& spec) {
  const policy::Snapshot snap = reconcile(o);
  if (opts_.record) opts_.record(policy::format_trace_line(snap));
  const policy::PolicyState before = state_;
  auto d = policy::decide(snap, state_, spec);
  state_ = std::move(d.next);
  std::set<std::string> asked;
  for (const auto& a : d.actions) {
    asked.insert(a.tier);
    if (auto e = refused_.find(a.tier); e != refused_.end() && e->second.kind == policy::to_string(a.kind) &&
                                        snap.time_ms < e->second.retry_at_ms) {
      // Refused earlier in this episode: not again every tick.
      if (auto b = before.tiers.find(a.tier); b != before.tiers.end())
        state_.tiers[a.tier] = b->second;
      else
        state_.tiers.erase(a.tier);
      continue;
    }
    {
      std::lock_guard lk(counts_mu_);
      ++counts_[{policy::to_string(a.kind), a.rule}];
    }
    if (act(a)) {
      refused_.erase(a.tier);
      if (a.kind == policy::ActionKind::evacuate)
        evacuated_.insert(a.tier);
      else
        evacuated_.erase(a.tier);
      continue;
    }
    // Refused: the tier stays as it was, to the policy too.
    if (auto b = before.tiers.find(a.tier); b != before.tiers.end())
      state_.tiers[a.tier] = b->second;
    else
      state_.tiers.erase(a.tier);
    refused_[a.tier].retry_at_ms = snap.time_ms + opts_.retry_ms;
  }
  // An episode ends when decide() no longer asks for its action.
  std::erase_if(refused_, [&](const auto& e) { return !asked.contains(e.first); });
}

bool PolicyLoop::act(const policy::Action& a) {
  const Caller caller = Caller::policy(a.rule, a.why);
  const auto r = a.kind == policy::ActionKind::evacuate ? runner_.evacuate(a.tier, caller)
                                                        : runner_.promote(a.tier, caller);
  if (r) return true;
  const std::string kind = policy::to_string(a.kind);
  auto [it, first] = refused_.try_emplace(a.tier, Episode{kind, 0});
  if (!first && it->second.kind == kind) return false;  // said already in this episode
  it->second.kind = kind;
  const std::string why = "tier " + a.tier + ": " + kind + " requested by " + caller.describe() +
                          " was refused: " + r.error().message + "; trying again in " +
                          std::to_string(opts_.retry_ms / 1000) + " s while the rule holds";
  opts_.warn(kind + ": " + why);
  events_.action(kind, why, dump_json(Json{{"refused", true}, {"errno", r.error().code}}, false),
                 /*log=*/false);
  return false;
}

}  // namespace tierswap
