#include "daemon/plan_ops.hpp"

#include "common/json_writer.hpp"
#include "daemon/kind_registry.hpp"

namespace tierswap {

bool reversible(const Step& s) {
  const auto* k = kinds::named(s.kind);
  return k && k->reversible(s);
}

std::optional<Step> undo_of(const Step& s) {
  const auto* k = kinds::named(s.kind);
  return k ? k->undo_of(s) : std::nullopt;
}

void record(Journal& j, const Step& s) {
  Ownership own{j.tiers, j.values};
  if (const auto* k = kinds::named(s.kind)) k->record(own, s);
}

std::string describe(const Step& s) {
  const auto* k = kinds::named(s.kind);
  return k ? k->describe(s) : s.op + " " + s.path + " (no tier kind \"" + s.kind + "\" is registered)";
}

std::string describe_undo(const Step& s) {
  if (!reversible(s)) return "no undo (planned last)";
  return kinds::named(s.kind)->describe_undo(s);
}

std::string plan_to_text(const Plan& p) {
  std::string out = "plan for " + p.source + ": ";
  if (p.steps.empty())
    out += "nothing to do\n";
  else
    out += std::to_string(p.steps.size()) + (p.steps.size() == 1 ? " step\n" : " steps\n");
  int n = 0;
  for (const auto& s : p.steps) {
    ++n;
    out += "  " + std::to_string(n) + ". " + (s.tier.empty() ? "" : "[" + s.tier + "] ") + describe(s) + "\n";
    out += "     " + describe_undo(s) + "\n";
  }
  for (const auto& note : p.notes) out += "note: " + note + "\n";
  return out;
}

std::string plan_to_json(const Plan& p) {
  JsonWriter w(true);
  w.begin_object();
  w.key("source").value(p.source);
  w.key("steps").begin_array();
  int n = 0;
  for (const auto& s : p.steps) {
    const auto* k = kinds::named(s.kind);
    const StepFields f = k ? k->fields(s) : StepFields{};
    w.begin_object();
    w.key("n").value(++n);
    w.key("op").value(s.op);
    w.key("tier").value(s.tier);
    w.key("path").value(s.path);
    if (f.value) w.key("value").value(s.value);
    if (f.previous) {
      w.key("previous");
      if (s.previous)
        w.value(*s.previous);
      else
        w.null();
    }
    if (f.priority) {
      w.key("priority").value(s.priority);
      w.key("discard").value(s.discard);
    }
    if (s.size) w.key("size").value(static_cast<unsigned long long>(s.size));
    if (s.previous_size) w.key("previous_size").value(static_cast<unsigned long long>(s.previous_size));
    w.key("reversible").value(reversible(s));
    w.key("undo").value(describe_undo(s));
    w.end_object();
  }
  w.end_array();
  w.key("notes").begin_array();
  for (const auto& note : p.notes) w.value(note);
  w.end_array();
  w.end_object();
  return w.str() + "\n";
}

}  // namespace tierswap
