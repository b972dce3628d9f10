#include "daemon/plan_ops.hpp"

#include <filesystem>

#include "common/json_writer.hpp"
#include "backends/hostfs/paths.hpp"

namespace tierswap {

const char* to_string(StepOp op) {
  switch (op) {
    case StepOp::write:
      return "write";
    case StepOp::zram_add:
      return "zram_add";
    case StepOp::zram_remove:
      return "zram_remove";
    case StepOp::swap_header:
      return "swap_header";
    case StepOp::make_file:
      return "make_file";
    case StepOp::resize_file:
      return "resize_file";
    case StepOp::remove_file:
      return "remove_file";
    case StepOp::swapon:
      return "swapon";
    case StepOp::swapoff:
      return "swapoff";
  }
  return "?";
}

bool reversible(const Step& s) {
  return s.op != StepOp::zram_remove && s.op != StepOp::remove_file;
}

std::optional<Step> undo_of(const Step& s) {
  Step u;
  u.tier = s.tier;
  u.path = s.path;
  switch (s.op) {
    case StepOp::write:
      if (!s.previous) return std::nullopt;
      u.op = StepOp::write;
      u.value = *s.previous;
      u.previous = s.value;
      return u;
    case StepOp::zram_add:
      u.op = StepOp::zram_remove;
      u.path = s.value;  // the bound device
      return u;
    case StepOp::make_file:
      u.op = StepOp::remove_file;
      return u;
    case StepOp::resize_file:
      u.op = StepOp::resize_file;
      u.size = s.previous_size;
      u.previous_size = s.size;
      return u;
    case StepOp::swapon:
      u.op = StepOp::swapoff;
      u.value = s.value;
      u.priority = s.priority;
      u.discard = s.discard;
      return u;
    case StepOp::swapoff:
      u.op = StepOp::swapon;
      u.value = s.value;
      u.priority = s.priority;
      u.discard = s.discard;
      return u;
    case StepOp::swap_header:
    case StepOp::zram_remove:
    case StepOp::remove_file:
      return std::nullopt;
  }
  return std::nullopt;
}

std::string bind_device(const std::string& text, const std::string& tier, const std::string& device) {
  const std::string ph = "{zram:" + tier + "}";
  std::string out = text;
  for (auto p = out.find(ph); p != std::string::npos; p = out.find(ph, p + device.size()))
    out.replace(p, ph.size(), device);
  return out;
}

namespace {
// /sys/block/zram1/disksize -> {"zram1", "disksize"}; else empty.
std::pair<std::string, std::string> block_attr_of(const std::string& path) {
  const std::filesystem::path p(path);
  if (p.parent_path().parent_path() == paths::sys_block) return {p.parent_path().filename(), p.filename()};
  return {};
}
}  // namespace

void record(Journal& j, const Step& s) {
  switch (s.op) {
    case StepOp::write: {
      const auto [dev, attr] = block_attr_of(s.path);
      if (!dev.empty()) {
        if (auto* t = j.find_device(dev)) {
          if (attr == "comp_algorithm") t->algorithm = s.value;
          if (attr == "disksize") t->size = std::stoull(s.value);
          if (attr == "mem_limit") t->mem_limit = std::stoull(s.value);
        }
        return;
      }
      auto* v = j.find_value(s.path);
      if (!v) {
        j.values.push_back({s.path, s.previous.value_or(""), s.value});
        v = &j.values.back();
      }
      v->current = s.value;
      if (v->current == v->original)
        std::erase_if(j.values, [&](const ValueRecord& r) { return r.path == s.path; });
      return;
    }
    case StepOp::zram_add: {
      OwnedTier t;
      t.name = s.tier;
      t.kind = "zram";
      t.device = s.value;
      t.swap_path = paths::dev_node(s.value);
      t.created_device = true;
      j.tiers.push_back(t);
      return;
    }
    case StepOp::zram_remove:
      std::erase_if(j.tiers, [&](const OwnedTier& t) { return t.device == s.path; });
      return;
    case StepOp::swap_header:
      return;
    case StepOp::make_file: {
      OwnedTier t;
      t.name = s.tier;
      t.kind = "file";
      t.swap_path = s.path;
      t.created_file = true;
      t.size = s.size;
      j.tiers.push_back(t);
      return;
    }
    case StepOp::resize_file:
      if (auto* t = j.find_swap(s.path)) t->size = s.size;
      return;
    case StepOp::remove_file:
      std::erase_if(j.tiers, [&](const OwnedTier& t) { return t.swap_path == s.path && t.created_file; });
      return;
    case StepOp::swapon: {
      auto* t = j.find_swap(s.path);
      if (!t) {
        OwnedTier n;
        n.name = s.tier;
        n.kind = s.value;
        n.swap_path = s.path;
        j.tiers.push_back(n);
        t = &j.tiers.back();
      }
      t->name = s.tier;
      t->active = true;
      t->drained = false;
      t->priority = s.priority;
      t->discard = s.discard;
      if (t->kind != "zram" && !t->created_file && s.size) t->size = s.size;
      return;
    }
    case StepOp::swapoff:
      if (auto* t = j.find_swap(s.path)) {
        t->active = false;
        if (!t->created_device && !t->created_file)
          std::erase_if(j.tiers, [&](const OwnedTier& o) { return o.swap_path == s.path; });
      }
      return;
  }
}

namespace {
std::string q(const std::string& s) {
  return "\"" + s + "\"";
}
std::string bytes(std::uint64_t b) {
  return std::to_string(b) + " bytes";
}
std::string prio(const Step& s) {
  return (s.priority >= 0 ? "priority " + std::to_string(s.priority)
                          : std::string("kernel-chosen priority")) +
         (s.discard ? ", discard" : "");
}
}  // namespace

std::string describe(const Step& s) {
  switch (s.op) {
    case StepOp::write:
      return "write " + s.path + " = " + q(s.value) + (s.previous ? " (was " + q(*s.previous) + ")" : "");
    case StepOp::zram_add:
      return "zram hot_add -> {zram:" + s.tier + "}";
    case StepOp::zram_remove:
      return "zram reset + hot_remove " + s.path;
    case StepOp::swap_header:
      return "swap header on " + s.path + " (" + bytes(s.size) + ")";
    case StepOp::make_file:
      return "create swap file " + s.path + " (" + bytes(s.size) + ", mode 0600)";
    case StepOp::resize_file:
      return "resize swap file " + s.path + " from " + bytes(s.previous_size) + " to " + bytes(s.size);
    case StepOp::remove_file:
      return "remove swap file " + s.path;
    case StepOp::swapon:
      return "swapon " + s.path + " (" + prio(s) + ")";
    case StepOp::swapoff:
      return "swapoff " + s.path;
  }
  return "?";
}

std::string describe_undo(const Step& s) {
  if (!reversible(s)) return "no undo (planned last)";
  if (s.op == StepOp::zram_add) return "undo: zram reset + hot_remove {zram:" + s.tier + "}";
  auto u = undo_of(s);
  if (!u) {
    if (s.op == StepOp::write || s.op == StepOp::swap_header) return "undo: none (removed with the device)";
    return "undo: none";
  }
  switch (u->op) {
    case StepOp::write:
      return "undo: write " + q(u->value);
    case StepOp::swapon:
      return "undo: swapon (" + prio(*u) + ")";
    case StepOp::swapoff:
      return "undo: swapoff";
    case StepOp::remove_file:
      return "undo: remove the file";
    case StepOp::resize_file:
      return "undo: resize back to " + bytes(u->size);
    default:
      return "undo: " + describe(*u);
  }
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
    w.begin_object();
    w.key("n").value(++n);
    w.key("op").value(to_string(s.op));
    w.key("tier").value(s.tier);
    w.key("path").value(s.path);
    if (s.op == StepOp::write || s.op == StepOp::swapon || s.op == StepOp::zram_add)
      w.key("value").value(s.value);
    if (s.op == StepOp::write) {
      w.key("previous");
      if (s.previous)
        w.value(*s.previous);
      else
        w.null();
    }
    if (s.op == StepOp::swapon || s.op == StepOp::swapoff) {
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
