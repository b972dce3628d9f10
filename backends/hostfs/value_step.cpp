#include "backends/hostfs/value_step.hpp"

#include "common/refusal.hpp"

namespace tierswap::value_step {

namespace {
std::string q(const std::string& s) {
  return "\"" + s + "\"";
}
}  // namespace

Step write(std::string kind, std::string path, std::string value, std::optional<std::string> previous,
           std::string hint) {
  return Step{.kind = std::move(kind),
              .op = op,
              .path = std::move(path),
              .value = std::move(value),
              .previous = std::move(previous),
              .hint = std::move(hint)};
}

Result<void> execute(const HostFs& fs, const Step& s) {
  return fs.write(s.path, s.value);
}

std::optional<Step> undo_of(const Step& s) {
  if (!s.previous) return std::nullopt;
  Step u = s;
  u.value = *s.previous;
  u.previous = s.value;
  u.hint.clear();
  return u;
}

void record_value(Ownership& own, const Step& s) {
  auto* v = own.find_value(s.path);
  if (!v) {
    own.values.push_back({s.path, s.previous.value_or(""), s.value});
    v = &own.values.back();
  }
  v->current = s.value;
  if (v->current == v->original)
    std::erase_if(own.values, [&](const ValueRecord& r) { return r.path == s.path; });
}

std::optional<Step> recover(const Step& s) {
  if (s.op != op || !s.previous) return std::nullopt;
  return s;
}

std::string describe(const Step& s) {
  return "write " + s.path + " = " + q(s.value) + (s.previous ? " (was " + q(*s.previous) + ")" : "");
}

std::string describe_undo(const Step& s) {
  if (!s.previous) return "undo: none (removed with the device)";
  return "undo: write " + q(*s.previous);
}

Result<void> ValueKind::execute(Step& s, ExecContext& ctx) const {
  if (s.op != op)
    return refusal(ErrorKind::invalid_argument, EINVAL,
                   std::string(name()) + ": no step op \"" + s.op + "\"");
  return value_step::execute(ctx.fs, s);
}

void ValueKind::value(PlanContext& ctx, const std::string& path, const std::string& want,
                      const std::string& current, std::string hint) const {
  ctx.want_value(path);
  if (current == want) return;
  ctx.add(write(std::string(name()), path, want, current, std::move(hint)));
}

}  // namespace tierswap::value_step
