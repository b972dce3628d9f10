#include "daemon/planner.hpp"

#include <algorithm>
#include <map>
#include <set>

#include "backends/gpu/gpu_reading.hpp"
#include "backends/hostfs/paths.hpp"
#include "config/policy_settings.hpp"
#include "config/size_expr.hpp"
#include "daemon/kind_registry.hpp"

namespace tierswap {

bool PlanResult::ok() const {
  return std::none_of(diagnostics.begin(), diagnostics.end(),
                      [](const config::Diagnostic& d) { return d.severity == config::Severity::error; });
}

namespace {

using config::Diagnostic;
using config::Severity;

std::string join(const std::vector<std::string>& v, const char* sep = " ") {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : sep) + s;
  return out;
}

// config::Tier -> the plug-ins' kind-neutral view.
TierSpec tier_spec(const config::Tier& t) {
  TierSpec s;
  s.name = t.name;
  s.kind = config::to_string(t.kind);
  s.priority = t.priority;
  s.discard = t.discard;
  s.size_bytes = t.size_bytes;
  s.algorithms = t.algorithms;
  if (t.recompress) s.recompress_algorithm = t.recompress->algorithm;
  s.mem_limit_bytes = t.mem_limit_bytes;
  s.path = t.path;
  s.device = t.device;
  s.gpu = t.gpu;
  s.store = t.store;
  s.connections = t.connections;
  if (!t.spill.empty()) s.spill = t.spill == "file" ? "file:" + t.spill_path : t.spill;
  return s;
}

// The machine-wide sections, and where each of their keys was written
// ("zswap.compressor" -> its SourceLoc).
SystemSpec system_spec(const config::Spec& spec, std::map<std::string, config::SourceLoc>& locs) {
  SystemSpec s;
  const auto& z = spec.zswap;
  s.zswap.enabled = z.enabled;
  // The zswap compressor preference list (`compressor` alone: that one).
  if (!z.compressors.empty())
    s.zswap.compressors = z.compressors;
  else if (z.compressor)
    s.zswap.compressors = {*z.compressor};
  s.zswap.max_pool_percent = z.max_pool_percent;
  s.zswap.accept_threshold_percent = z.accept_threshold_percent;
  s.zswap.shrinker_enabled = z.shrinker_enabled;
  for (const auto& [key, loc] : z.locs) locs[key.empty() ? "zswap" : "zswap." + key] = loc;
  s.sysctl = spec.sysctl;
  for (const auto& [key, loc] : spec.sysctl_locs) locs["sysctl." + key] = loc;
  for (const auto& [name, limits] : spec.cgroups) {
    s.cgroups[name] = limits.values;
    for (const auto& [key, loc] : limits.locs)
      locs[key.empty() ? "cgroups." + name : "cgroups." + name + "." + key] = loc;
  }
  if (!spec.cgroups.empty()) locs["cgroups"] = spec.cgroups.begin()->second.locs.at("");
  return s;
}

class Planner {
 public:
  Planner(const config::Spec& spec, const Observed& obs, const Journal& j, const HostFs& fs)
      : spec_(spec),
        obs_(obs),
        journal_(j),
        fs_(fs),
        ctx_{.fs = fs,
             .swaps = obs.swaps,
             .owned = j.tiers,
             .steps = r_.plan.steps,
             .notes = r_.plan.notes,
             .findings = findings_,
             .kept = kept_,
             .wanted = wanted_} {
    r_.plan.source = spec.source;
  }

  PlanResult run() {
    std::vector<size_t> order(spec_.tiers.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
      const auto &ta = spec_.tiers[a], &tb = spec_.tiers[b];
      if (ta.priority != tb.priority) return ta.priority > tb.priority;
      return ta.name < tb.name;
    });
    for (size_t i : order) tier(i);
    round_robin_note();
    system();
    teardown_leftovers();
    restore_dropped_values();
    r_.plan.steps.insert(r_.plan.steps.end(), tail_.begin(), tail_.end());
    return std::move(r_);
  }

 private:
  // The plug-in's own observation of the machine, for planning.
  void use(const TierKind& k) {
    auto it = obs_.kinds.find(std::string(k.name()));
    ctx_.state = it == obs_.kinds.end() ? nullptr : it->second.get();
  }

  config::SourceLoc loc(const config::Tier& t, const std::string& key) const {
    config::SourceLoc l;
    if (auto it = t.locs.find(key); it != t.locs.end())
      l = it->second;
    else if (auto it2 = t.locs.find(""); it2 != t.locs.end())
      l = it2->second;
    if (l.file.empty()) l.file = spec_.source;
    return l;
  }
  void diag(const Finding& f, config::SourceLoc l, std::string path) {
    if (l.file.empty()) l.file = spec_.source;
    r_.diagnostics.push_back(Diagnostic{f.error ? Severity::error : Severity::warning, std::move(l),
                                        std::move(path), f.message, f.hint});
  }

  void tier(size_t i) {
    const auto& t = spec_.tiers[i];
    const TierKind* k = kinds::for_tier(config::to_string(t.kind));
    if (!k) {
      r_.plan.notes.push_back("tier \"" + t.name + "\": " + config::to_string(t.kind) +
                              " tiers are validated but not applied yet");
      return;
    }
    use(*k);
    findings_.clear();
    k->plan_tier(with_gpu_facts(tier_spec(t), t), ctx_);
    for (const auto& f : findings_)
      diag(f, loc(t, f.key), "tiers[" + std::to_string(i) + "]" + (f.key.empty() ? "" : "." + f.key));
  }

  // A vram tier's card (NVML, when it was read), its size where it depends
  // on the card ("50% of vram"), and its reserve (config::tier_reserve).
  TierSpec with_gpu_facts(TierSpec s, const config::Tier& t) const {
    if (t.kind != config::TierKind::vram) return s;
    std::uint64_t vram = 0;
    if (t.store != "host") {
      if (!obs_.gpus) {
        s.card_unknown = obs_.gpus_unknown;
      } else if (auto g = gpu::select_gpu(*obs_.gpus, t.gpu); !g) {
        s.card_unknown = g.error().message;
        s.card_absent = true;
      } else {
        const gpu::GpuReading& r = **g;
        GpuCard c{.index = r.index, .name = r.name, .total_bytes = r.total_bytes, .free_bytes = r.free_bytes};
        for (const auto& o : journal_.tiers)
          if (o.name == t.name && o.kind == "vram" && o.exporter_pid > 0 && o.failed.empty())
            for (const auto& p : r.own)
              if (p.pid == o.exporter_pid) c.own_bytes += p.used_bytes.value_or(0);
        vram = c.total_bytes;
        s.card = std::move(c);
      }
    }
    const auto reserve = config::tier_reserve(t, config::effective_policy(spec_), vram);
    s.reserve_bytes = reserve.bytes;
    s.reserve_key = reserve.key;
    if (s.size_bytes == 0 && vram != 0 && !t.size_text.empty())
      if (auto v = config::evaluate_size(t.size_text, config::HostFacts{obs_.ram_bytes, vram},
                                         config::SizeOptions{.allow_vram = true, .round_to_page = true}))
        s.size_bytes = v->bytes;
    return s;
  }

  // Tiers of equal priority share the kernel's round-robin: say so.
  void round_robin_note() {
    std::map<int, std::vector<std::string>> by_prio;
    for (const auto& t : spec_.tiers)
      if (kinds::for_tier(config::to_string(t.kind)) && t.priority >= 0)
        by_prio[t.priority].push_back(t.name);
    for (auto& [p, names] : by_prio)
      if (names.size() > 1) {
        std::sort(names.begin(), names.end());
        r_.plan.notes.push_back("tiers " + join(names, ", ") + " share priority " + std::to_string(p) +
                                ": the kernel uses them round-robin");
      }
  }

  void system() {
    std::map<std::string, config::SourceLoc> locs;
    const SystemSpec sys = system_spec(spec_, locs);
    for (const auto* k : kinds::all()) {
      use(*k);
      findings_.clear();
      k->plan_system(sys, ctx_);
      for (const auto& f : findings_) {
        auto it = locs.find(f.key);
        diag(f, it != locs.end() ? it->second : config::SourceLoc{spec_.source, 0, 0}, f.key);
      }
    }
  }

  // Owned tiers the spec no longer matches: undone last, because zram reset
  // and file removal cannot be undone.
  void teardown_leftovers() {
    std::vector<const OwnedTier*> left;
    for (const auto& o : journal_.tiers)
      if (!kept_.contains(o.swap_path)) left.push_back(&o);
    teardown(left, obs_, tail_);
  }

  void restore_dropped_values() {
    for (const auto& v : journal_.values) {
      if (wanted_.contains(v.path)) continue;
      auto cur = fs_.read_value(v.path);
      const std::string now = cur ? *cur : v.current;
      if (now != v.original)
        tail_.push_back(Step{.kind = std::string(kinds::for_value(v.path).name()),
                             .op = "write",
                             .path = v.path,
                             .value = v.original,
                             .previous = now});
    }
  }

 public:
  // Every release (swapoff, lowest priority first), then every destroy
  // (irreversible), each from the plug-in of the tier's kind.
  static void teardown(std::vector<const OwnedTier*> tiers, const Observed& obs, std::vector<Step>& out) {
    std::stable_sort(tiers.begin(), tiers.end(),
                     [](const OwnedTier* a, const OwnedTier* b) { return a->priority < b->priority; });
    std::vector<Step> destroy;
    for (const auto* o : tiers) {
      const TierKind* k = kinds::for_tier(o->kind);
      if (!k) continue;
      auto t = k->teardown(*o, obs.swaps);
      out.insert(out.end(), t.release.begin(), t.release.end());
      destroy.insert(destroy.end(), t.destroy.begin(), t.destroy.end());
    }
    out.insert(out.end(), destroy.begin(), destroy.end());
  }

 private:
  const config::Spec& spec_;
  const Observed& obs_;
  const Journal& journal_;
  const HostFs& fs_;
  PlanResult r_;
  std::vector<Finding> findings_;
  std::set<std::string> kept_;    // owned swap paths the spec keeps
  std::set<std::string> wanted_;  // value paths the spec sets
  PlanContext ctx_;
  std::vector<Step> tail_;
};

}  // namespace

bool needs_gpu_facts(const config::Spec& spec, const HostFs& fs) {
  // No NVIDIA driver: the vram kind says so without NVML.
  if (!fs.is_real_root() || !fs.exists(paths::proc_nvidia_gpus)) return false;
  return std::any_of(spec.tiers.begin(), spec.tiers.end(), [](const config::Tier& t) {
    return t.kind == config::TierKind::vram && t.store != "host";
  });
}

std::vector<pid_t> exporter_pids(const Journal& journal) {
  std::vector<pid_t> out;
  for (const auto& o : journal.tiers)
    if (o.exporter_pid > 0) out.push_back(static_cast<pid_t>(o.exporter_pid));
  return out;
}

PlanResult make_plan(const config::Spec& spec, const Observed& obs, const Journal& journal,
                     const HostFs& fs) {
  return Planner(spec, obs, journal, fs).run();
}

Plan make_teardown(const Journal& journal, const Observed& obs) {
  Plan p;
  p.source = "teardown of " + (journal.source.empty() ? std::string("the journal") : journal.source);
  std::vector<const OwnedTier*> all;
  for (const auto& o : journal.tiers) all.push_back(&o);
  Planner::teardown(all, obs, p.steps);
  for (const auto& v : journal.values)
    p.steps.push_back(Step{.kind = std::string(kinds::for_value(v.path).name()),
                           .op = "write",
                           .path = v.path,
                           .value = v.original,
                           .previous = v.current});
  return p;
}

}  // namespace tierswap
