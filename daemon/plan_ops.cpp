#include "daemon/plan_ops.hpp"

#include "common/json.hpp"
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

Json plan_document(const Plan& p) {
  Json steps = Json::array();
  int n = 0;
  for (const auto& s : p.steps) {
    const auto* k = kinds::named(s.kind);
    const StepFields f = k ? k->fields(s) : StepFields{};
    Json j = {{"n", ++n}, {"op", s.op}, {"tier", s.tier}, {"path", s.path}};
    if (f.value) j["value"] = s.value;
    if (f.previous) j["previous"] = s.previous ? Json(*s.previous) : Json(nullptr);
    if (f.priority) {
      j["priority"] = s.priority;
      j["discard"] = s.discard;
    }
    if (s.size) j["size"] = s.size;
    if (s.previous_size) j["previous_size"] = s.previous_size;
    j["reversible"] = reversible(s);
    j["undo"] = describe_undo(s);
    steps.push_back(std::move(j));
  }
  return {{"source", p.source}, {"steps", std::move(steps)}, {"notes", p.notes}};
}

std::string plan_to_json(const Plan& p) {
  return dump_json(plan_document(p), true);
}

}  // namespace tierswap
