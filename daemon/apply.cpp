#include "daemon/apply.hpp"

#include <set>

#include "daemon/kind_registry.hpp"
#include "daemon/plan_ops.hpp"

namespace tierswap {

namespace {
std::string full(const Error& e, const std::string& hint) {
  return e.describe() + (hint.empty() ? "" : " (" + hint + ")");
}
}  // namespace

void Executor::save(const ApplyOptions& opts) {
  if (!opts.persist) return;
  if (auto r = save_journal(fs_, journal_); !r && opts.log) opts.log("journal: " + r.error().describe());
}

Result<void> Executor::run(Step& s, const ApplyOptions& opts) {
  for (const auto& [placeholder, value] : bindings_)
    for (auto p = s.path.find(placeholder); p != std::string::npos;
         p = s.path.find(placeholder, p + value.size()))
      s.path.replace(p, placeholder.size(), value);
  const TierKind* k = kinds::named(s.kind);
  if (!k)
    return fail(ErrorKind::unsupported, "step " + s.op + ": no tier kind \"" + s.kind + "\" is registered");
  ExecContext ctx{fs_, kernel_, bindings_};
  // The intent first: a crash between the kernel change and the save that
  // records it leaves a journal naming the step (recover_pending).
  if (opts.persist) {
    k->prepare(s, fs_);
    journal_.pending = s;
    save(opts);
  }
  auto r = k->execute(s, ctx);
  journal_.pending.reset();
  if (!r) {
    save(opts);
    return r;
  }
  record(journal_, s);
  return {};
}

Result<void> Executor::apply(const Plan& plan, const ApplyOptions& opts) {
  const auto say = [&](const std::string& line) {
    if (opts.log) opts.log(line);
  };
  std::vector<Step> done;
  std::optional<Error> first;
  const size_t total = plan.steps.size();
  for (size_t i = 0; i < total; ++i) {
    Step s = plan.steps[i];
    const std::string head = "step " + std::to_string(i + 1) + " of " + std::to_string(total);
    Result<void> r = opts.before_step ? opts.before_step(i + 1, s) : Result<void>{};
    if (r) r = run(s, opts);
    const std::string what = (s.tier.empty() ? "" : "[" + s.tier + "] ") + describe(s);
    if (r) {
      say(head + ": " + what);
      done.push_back(s);
      save(opts);
      continue;
    }
    Error e{r.error().kind, head + " (" + what + "): " + full(r.error(), s.hint), r.error().code};
    say(e.message);
    if (opts.best_effort) {
      if (!first) first = e;
      continue;
    }
    // Roll back what this apply did, newest first. A tier torn down by an
    // irreversible step (planned last) cannot get its earlier steps undone.
    int undone = 0;
    std::string undo_errors;
    std::set<std::string> torn_down;
    for (const auto& d : done)
      if (!reversible(d)) torn_down.insert(d.tier);
    // A tier whose undo failed keeps its earlier steps too: undoing them
    // under a step that still stands (resetting a zram device that is
    // still swapped on) is unsafe, and the journal must keep naming what
    // is still set up, so that stop or the next start removes it.
    std::set<std::string> stuck;
    for (auto it = done.rbegin(); it != done.rend(); ++it) {
      auto u = undo_of(*it);
      if (!u) continue;
      if (!it->tier.empty() && torn_down.contains(it->tier)) {
        undo_errors +=
            "; cannot undo \"" + describe(*it) + "\": tier \"" + it->tier + "\" was already torn down";
        continue;
      }
      if (!it->tier.empty() && stuck.contains(it->tier)) {
        say("kept: " + describe(*it) + " (an undo of tier \"" + it->tier + "\" failed)");
        continue;
      }
      if (auto ur = run(*u, opts); !ur) {
        undo_errors += "; undo of \"" + describe(*it) + "\" failed: " + ur.error().describe();
        if (!it->tier.empty()) {
          stuck.insert(it->tier);
          undo_errors += " (tier \"" + it->tier + "\" stays set up and in the journal)";
        }
        say("undo failed: " + describe(*u) + ": " + ur.error().describe());
      } else {
        ++undone;
        say("undid: " + describe(*it));
      }
      save(opts);
    }
    e.message += "; undid " + std::to_string(undone) + (undone == 1 ? " step" : " steps") + undo_errors;
    return std::unexpected(e);
  }
  if (first) return std::unexpected(*first);
  return {};
}

}  // namespace tierswap
