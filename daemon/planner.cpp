#include "daemon/planner.hpp"

#include <algorithm>
#include <set>

#include "backends/hostfs/paths.hpp"
#include "backends/swap/swap_header.hpp"

namespace tierswap {

bool PlanResult::ok() const {
  return std::none_of(diagnostics.begin(), diagnostics.end(),
                      [](const config::Diagnostic& d) { return d.severity == config::Severity::error; });
}

namespace {

using config::Diagnostic;
using config::Severity;
using config::TierKind;

std::string join(const std::vector<std::string>& v, const char* sep = " ") {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : sep) + s;
  return out;
}

std::uint64_t page_round_up(std::uint64_t b) {
  const std::uint64_t p = swap::system_page_size();
  return (b + p - 1) / p * p;
}

// The zswap compressor preference list (`compressor` alone: that one).
std::vector<std::string> zswap_compressors(const config::Zswap& z) {
  if (!z.compressors.empty()) return z.compressors;
  if (z.compressor) return {*z.compressor};
  return {};
}

class Planner {
 public:
  Planner(const config::Spec& spec, const Observed& obs, const Journal& j, const HostFs& fs)
      : spec_(spec), obs_(obs), journal_(j), fs_(fs) {
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
    zswap();
    sysctls();
    teardown_leftovers();
    restore_dropped_values();
    steps().insert(steps().end(), tail_.begin(), tail_.end());
    return std::move(r_);
  }

 private:
  std::vector<Step>& steps() { return r_.plan.steps; }

  config::SourceLoc loc(const config::Tier& t, const std::string& key) const {
    config::SourceLoc l;
    if (auto it = t.locs.find(key); it != t.locs.end())
      l = it->second;
    else if (auto it2 = t.locs.find(""); it2 != t.locs.end())
      l = it2->second;
    if (l.file.empty()) l.file = spec_.source;
    return l;
  }
  void diag(Severity sev, config::SourceLoc l, std::string path, std::string msg, std::string hint = {}) {
    if (l.file.empty()) l.file = spec_.source;
    r_.diagnostics.push_back(Diagnostic{sev, std::move(l), std::move(path), std::move(msg), std::move(hint)});
  }
  void error(const config::Tier& t, size_t i, const std::string& key, std::string msg,
             std::string hint = {}) {
    diag(Severity::error, loc(t, key), "tiers[" + std::to_string(i) + "]" + (key.empty() ? "" : "." + key),
         std::move(msg), std::move(hint));
  }
  void warning(const config::Tier& t, size_t i, const std::string& key, std::string msg,
               std::string hint = {}) {
    diag(Severity::warning, loc(t, key), "tiers[" + std::to_string(i) + "]" + (key.empty() ? "" : "." + key),
         std::move(msg), std::move(hint));
  }

  bool active_at(const std::string& path, int prio) const {
    auto a = swap::find_area(obs_.swaps, path);
    return a && (prio < 0 || a->priority == prio);
  }

  void tier(size_t i) {
    const auto& t = spec_.tiers[i];
    switch (t.kind) {
      case TierKind::zram:
        zram_tier(t, i);
        break;
      case TierKind::file:
        file_tier(t, i);
        break;
      case TierKind::partition:
        partition_tier(t, i);
        break;
      case TierKind::vram:
        r_.plan.notes.push_back("tier \"" + t.name + "\": vram tiers are validated but not applied yet");
        break;
    }
  }

  void zram_tier(const config::Tier& t, size_t i) {
    if (!obs_.zram_control) {
      error(t, i, "kind",
            "zram is not available on this kernel (no " + std::string(paths::zram_control) + ")");
      return;
    }
    std::string algo;
    const auto& offered = obs_.zram_algorithms.all;
    if (!t.algorithms.empty()) {
      if (offered.empty()) {
        algo = t.algorithms.front();
        r_.plan.notes.push_back("tier \"" + t.name + "\": algorithm " + algo +
                                " (no zram device exists to list this kernel's algorithms; apply will tell)");
      } else {
        for (const auto& a : t.algorithms)
          if (std::find(offered.begin(), offered.end(), a) != offered.end()) {
            algo = a;
            break;
          }
        if (algo.empty()) {
          error(t, i, "algorithm",
                t.algorithms.size() == 1
                    ? "\"" + t.algorithms.front() + "\" is not offered by this kernel"
                    : "none of " + join(t.algorithms, ", ") + " is offered by this kernel",
                "this kernel offers: " + join(offered));
          return;
        }
        if (t.algorithms.size() > 1)
          r_.plan.notes.push_back("tier \"" + t.name + "\": algorithm " + algo + " (first of " +
                                  join(t.algorithms, ", ") + " that this kernel offers: " + join(offered) +
                                  ")");
      }
    }
    if (t.recompress && !obs_.has_recomp) {
      error(t, i, "recompress",
            "recompression needs " + obs_.recomp_path + ", which this kernel does not have",
            "remove recompress:, or use a kernel built with CONFIG_ZRAM_MULTI_COMP");
      return;
    }
    if (t.recompress && !offered.empty() &&
        std::find(offered.begin(), offered.end(), t.recompress->algorithm) == offered.end()) {
      error(t, i, "recompress", "\"" + t.recompress->algorithm + "\" is not offered by this kernel",
            "this kernel offers: " + join(offered));
      return;
    }
    const std::uint64_t size = page_round_up(t.size_bytes);
    const std::uint64_t mem_limit = t.mem_limit_bytes ? page_round_up(*t.mem_limit_bytes) : 0;

    // Already set up as described? Then adopt it and plan nothing.
    for (const auto& o : journal_.tiers) {
      if (o.name != t.name || o.kind != "zram" || consumed_.contains(o.swap_path)) continue;
      auto dev = obs_.zram_devices.find(o.device);
      if (dev == obs_.zram_devices.end()) continue;
      // mem_limit is write-only in sysfs: the journal says what was set.
      const bool same = o.active && active_at(o.swap_path, t.priority) && o.discard == t.discard &&
                        dev->second.disksize == size && (algo.empty() || dev->second.algorithm == algo) &&
                        o.mem_limit == mem_limit;
      if (same) {
        consumed_.insert(o.swap_path);
        return;
      }
      // Drained on request (Demote): set up as described, inactive until
      // Promote. A priority or discard change waits for the Promote.
      const bool same_drained = o.drained && dev->second.disksize == size &&
                                (algo.empty() || dev->second.algorithm == algo) && o.mem_limit == mem_limit;
      if (same_drained) {
        consumed_.insert(o.swap_path);
        drained_note(t);
        return;
      }
    }
    const std::string dev = "{zram:" + t.name + "}";
    const std::string offered_hint = offered.empty() ? "" : "this kernel offers: " + join(offered);
    steps().push_back(Step{.op = StepOp::zram_add, .tier = t.name});
    if (!algo.empty())
      steps().push_back(Step{.op = StepOp::write,
                             .tier = t.name,
                             .path = paths::block_attr(dev, "comp_algorithm"),
                             .value = algo,
                             .hint = offered_hint});
    if (t.recompress)
      steps().push_back(Step{.op = StepOp::write,
                             .tier = t.name,
                             .path = paths::block_attr(dev, "recomp_algorithm"),
                             .value = "algo=" + t.recompress->algorithm,
                             .hint = offered_hint});
    if (mem_limit)
      steps().push_back(Step{.op = StepOp::write,
                             .tier = t.name,
                             .path = paths::block_attr(dev, "mem_limit"),
                             .value = std::to_string(mem_limit)});
    steps().push_back(Step{.op = StepOp::write,
                           .tier = t.name,
                           .path = paths::block_attr(dev, "disksize"),
                           .value = std::to_string(size)});
    steps().push_back(
        Step{.op = StepOp::swap_header, .tier = t.name, .path = paths::dev_node(dev), .size = size});
    steps().push_back(Step{.op = StepOp::swapon,
                           .tier = t.name,
                           .path = paths::dev_node(dev),
                           .value = "zram",
                           .priority = t.priority,
                           .discard = t.discard});
  }

  void file_tier(const config::Tier& written, size_t i) {
    const auto probe = disk::probe_file(fs_, written.path);
    if (!probe.problem.empty()) {
      error(written, i, "path", probe.problem);
      return;
    }
    config::Tier t = written;
    t.path = probe.path;  // links resolved, as /proc/swaps prints it
    const std::uint64_t size = page_round_up(t.size_bytes);
    const OwnedTier* owned = nullptr;
    for (const auto& o : journal_.tiers)
      if (o.swap_path == t.path && !consumed_.contains(o.swap_path)) owned = &o;
    const bool ours = owned && owned->created_file;

    if (probe.exists && !ours) {
      const bool swapfile = probe.regular && (probe.first == swap::FirstPage::foreign_swap ||
                                              probe.first == swap::FirstPage::ours);
      if (!swapfile) {
        error(t, i, "path", t.path + " exists and is not a swap file: tierswap never overwrites it",
              "remove it yourself or choose another path");
        return;
      }
      if (probe.has_holes) {
        error(t, i, "path", t.path + " has holes (a sparse file): swapon refuses it",
              "remove it; tierswap creates it with fallocate");
        return;
      }
      if (probe.size != size)
        warning(t, i, "size",
                t.path + " is an existing swap file of " + std::to_string(probe.size) +
                    " bytes, not made by tierswap: used as it is, not resized");
      swap_existing(t, i, t.path, "file", owned, probe.size);
      return;
    }
    if (!probe.exists) {
      if (size < swap::kMinSwapPages * swap::system_page_size()) {
        error(t, i, "size", "a swap file needs at least " + std::to_string(swap::kMinSwapPages) + " pages");
        return;
      }
      if (size > probe.free_bytes) {
        error(t, i, "size",
              std::to_string(size) + " bytes do not fit in the free space of " + probe.dir + " (" +
                  std::to_string(probe.free_bytes) + " bytes free)",
              "choose a smaller size or another file system");
        return;
      }
      if (owned) consumed_.insert(owned->swap_path);  // a stale record: the file is gone
      if (!probe.missing_dirs.empty())
        r_.plan.notes.push_back("tier \"" + t.name +
                                "\": " + (probe.missing_dirs.size() == 1 ? "directory " : "directories ") +
                                join(probe.missing_dirs, ", ") + " will be created (owner root, mode 0700)");
      steps().push_back(Step{.op = StepOp::make_file, .tier = t.name, .path = t.path, .size = size});
      steps().push_back(Step{.op = StepOp::swapon,
                             .tier = t.name,
                             .path = t.path,
                             .value = "file",
                             .priority = t.priority,
                             .discard = t.discard});
      return;
    }
    // Ours: keep, re-prioritise or resize in place.
    consumed_.insert(owned->swap_path);
    if (owned->drained && owned->size == size && probe.size == size && !swap::find_area(obs_.swaps, t.path)) {
      drained_note(t);
      return;
    }
    const bool active = owned->active && swap::find_area(obs_.swaps, t.path).has_value();
    if (owned->size == size && probe.size == size && active && active_at(t.path, t.priority) &&
        owned->discard == t.discard)
      return;
    if (size > probe.size && size - probe.size > probe.free_bytes) {
      error(t, i, "size",
            "growing " + t.path + " to " + std::to_string(size) + " bytes needs " +
                std::to_string(size - probe.size) + " bytes; " + probe.dir + " has " +
                std::to_string(probe.free_bytes) + " free");
      return;
    }
    if (active)
      steps().push_back(Step{.op = StepOp::swapoff,
                             .tier = t.name,
                             .path = t.path,
                             .value = "file",
                             .priority = owned->priority,
                             .discard = owned->discard});
    if (probe.size != size)
      steps().push_back(Step{.op = StepOp::resize_file,
                             .tier = t.name,
                             .path = t.path,
                             .size = size,
                             .previous_size = probe.size});
    steps().push_back(Step{.op = StepOp::swapon,
                           .tier = t.name,
                           .path = t.path,
                           .value = "file",
                           .priority = t.priority,
                           .discard = t.discard});
  }

  void partition_tier(const config::Tier& t, size_t i) {
    auto dev = disk::resolve_partition(fs_, t.device);
    if (!dev) {
      error(t, i, "device", dev.error().message, "check `ls -l /dev/disk/by-uuid /dev/disk/by-label`");
      return;
    }
    if (!fs_.exists(*dev)) {
      error(t, i, "device", *dev + " does not exist");
      return;
    }
    for (const auto& m : obs_.mounts)
      if (m.source == *dev) {
        error(t, i, "device", *dev + " is mounted on " + m.target + ": refusing to use it as swap",
              "unmount it and remove it from /etc/fstab first, if it holds nothing you need");
        return;
      }
    const OwnedTier* owned = nullptr;
    for (const auto& o : journal_.tiers)
      if (o.swap_path == *dev && !consumed_.contains(o.swap_path)) owned = &o;
    if (!swap::find_area(obs_.swaps, *dev)) {
      auto first = swap::probe_first_page(fs_.resolve(*dev).string(), swap::system_page_size());
      if (!first || (*first != swap::FirstPage::foreign_swap && *first != swap::FirstPage::ours)) {
        error(
            t, i, "device",
            *dev +
                (first ? " holds " + std::string(swap::to_string(*first)) : ": " + first.error().describe()) +
                ": tierswap does not format partitions",
            "run mkswap " + *dev + " yourself if it holds nothing you need");
        return;
      }
    }
    swap_existing(t, i, *dev, "partition", owned, 0);
  }

  // A swap area that exists already (partition, or a swap file tierswap did
  // not make): swapon it, re-prioritise it, or leave it alone.
  void swap_existing(const config::Tier& t, size_t i, const std::string& path, const char* kind,
                     const OwnedTier* owned, std::uint64_t size) {
    const auto area = swap::find_area(obs_.swaps, path);
    if (owned) consumed_.insert(owned->swap_path);
    if (owned && owned->drained && !area) {
      drained_note(t);
      return;
    }
    if (area && !(owned && owned->active)) {
      warning(t, i, "", path + " is already an active swap area that tierswap did not set up: left as it is");
      return;
    }
    if (area && active_at(path, t.priority) && owned->discard == t.discard) return;
    if (area)
      steps().push_back(Step{.op = StepOp::swapoff,
                             .tier = t.name,
                             .path = path,
                             .value = kind,
                             .priority = owned->priority,
                             .discard = owned->discard});
    steps().push_back(Step{.op = StepOp::swapon,
                           .tier = t.name,
                           .path = path,
                           .value = kind,
                           .priority = t.priority,
                           .discard = t.discard,
                           .size = size});
  }

  void drained_note(const config::Tier& t) {
    r_.plan.notes.push_back("tier \"" + t.name +
                            "\": drained on request; left inactive until promoted (tierswapctl promote " +
                            t.name + ")");
  }

  void round_robin_note() {
    std::map<int, std::vector<std::string>> by_prio;
    for (const auto& t : spec_.tiers)
      if (t.kind != TierKind::vram && t.priority >= 0) by_prio[t.priority].push_back(t.name);
    for (auto& [p, names] : by_prio)
      if (names.size() > 1) {
        std::sort(names.begin(), names.end());
        r_.plan.notes.push_back("tiers " + join(names, ", ") + " share priority " + std::to_string(p) +
                                ": the kernel uses them round-robin");
      }
  }

  void value(const std::string& path, const std::string& want, const std::string& current,
             std::string hint = {}) {
    desired_.insert(path);
    if (current == want) return;
    steps().push_back(
        Step{.op = StepOp::write, .path = path, .value = want, .previous = current, .hint = std::move(hint)});
  }

  void zswap() {
    const auto& z = spec_.zswap;
    const auto zloc = [&](const std::string& key) {
      auto it = z.locs.find(key);
      return it != z.locs.end() ? it->second : config::SourceLoc{spec_.source, 0, 0};
    };
    std::map<std::string, std::string> want;
    const auto compressors = zswap_compressors(z);
    if (z.enabled) want["enabled"] = zswap::bool_value(*z.enabled);
    if (z.max_pool_percent) want["max_pool_percent"] = std::to_string(*z.max_pool_percent);
    if (z.accept_threshold_percent)
      want["accept_threshold_percent"] = std::to_string(*z.accept_threshold_percent);
    if (z.shrinker_enabled) want["shrinker_enabled"] = zswap::bool_value(*z.shrinker_enabled);
    const auto& loaded = obs_.zswap.compressors;
    if (!compressors.empty()) {
      std::string pick;
      for (const auto& c : compressors)
        if (std::find(loaded.begin(), loaded.end(), c) != loaded.end()) {
          pick = c;
          break;
        }
      // While zswap is off the kernel stores any name without checking it
      // and fails only when zswap is enabled, so the apply cannot rely on
      // the kernel's answer here: /proc/crypto is the list to check against.
      if (pick.empty() && !loaded.empty()) {
        diag(Severity::error, zloc("compressor"), "zswap.compressor",
             (compressors.size() == 1 ? "\"" + compressors.front() + "\" is not"
                                      : "none of " + join(compressors, ", ") + " is") +
                 " a compressor this kernel has (" + std::string(paths::proc_crypto) + ")",
             "this kernel offers: " + join(loaded));
        return;
      }
      if (pick.empty()) {
        pick = compressors.front();  // no /proc/crypto to ask: apply will tell
      } else if (compressors.size() > 1) {
        r_.plan.notes.push_back("zswap: compressor " + pick + " (first of " + join(compressors, ", ") +
                                " that this kernel offers: " + join(loaded) + ")");
      }
      want["compressor"] = pick;
    }
    if (want.empty()) return;
    if (!obs_.zswap.present) {
      diag(Severity::error, zloc(""), "zswap",
           "zswap is not available on this kernel (no " + std::string(paths::zswap_parameters) + ")");
      return;
    }
    for (const auto& name : zswap::parameter_names()) {
      auto it = want.find(name);
      if (it == want.end()) continue;
      auto cur = obs_.zswap.params.find(name);
      if (cur == obs_.zswap.params.end()) {
        diag(Severity::error, zloc(name), "zswap." + name, "this kernel has no " + paths::zswap_param(name));
        continue;
      }
      value(paths::zswap_param(name), it->second, cur->second,
            name == "compressor" && !loaded.empty() ? "this kernel offers: " + join(loaded) : "");
    }
  }

  void sysctls() {
    for (const auto& [key, v] : spec_.sysctl) {
      auto cur = obs_.sysctl.find(key);
      if (cur == obs_.sysctl.end()) {
        auto it = spec_.sysctl_locs.find(key);
        diag(Severity::error, it != spec_.sysctl_locs.end() ? it->second : config::SourceLoc{},
             "sysctl." + key, "this kernel has no " + paths::sysctl(key));
        continue;
      }
      value(paths::sysctl(key), std::to_string(v), cur->second);
    }
  }

  // Owned tiers the spec no longer matches: undone last, because zram reset
  // and file removal cannot be undone.
  void teardown_leftovers() {
    std::vector<const OwnedTier*> left;
    for (const auto& o : journal_.tiers)
      if (!consumed_.contains(o.swap_path)) left.push_back(&o);
    teardown(left, obs_, tail_);
  }

  void restore_dropped_values() {
    for (const auto& v : journal_.values) {
      if (desired_.contains(v.path)) continue;
      auto cur = fs_.read_value(v.path);
      const std::string now = cur ? *cur : v.current;
      if (now != v.original)
        tail_.push_back(Step{.op = StepOp::write, .path = v.path, .value = v.original, .previous = now});
    }
  }

 public:
  static void teardown(std::vector<const OwnedTier*> tiers, const Observed& obs, std::vector<Step>& out) {
    std::stable_sort(tiers.begin(), tiers.end(),
                     [](const OwnedTier* a, const OwnedTier* b) { return a->priority < b->priority; });
    for (const auto* o : tiers)
      if (o->active && swap::find_area(obs.swaps, o->swap_path))
        out.push_back(Step{.op = StepOp::swapoff,
                           .tier = o->name,
                           .path = o->swap_path,
                           .value = o->kind,
                           .priority = o->priority,
                           .discard = o->discard});
    for (const auto* o : tiers) {
      if (o->created_device)
        out.push_back(Step{.op = StepOp::zram_remove, .tier = o->name, .path = o->device});
      if (o->created_file)
        out.push_back(Step{.op = StepOp::remove_file, .tier = o->name, .path = o->swap_path});
    }
  }

 private:
  const config::Spec& spec_;
  const Observed& obs_;
  const Journal& journal_;
  const HostFs& fs_;
  PlanResult r_;
  std::set<std::string> consumed_;  // owned swap paths the spec keeps
  std::set<std::string> desired_;   // value paths the spec sets
  std::vector<Step> tail_;
};

}  // namespace

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
    p.steps.push_back(Step{.op = StepOp::write, .path = v.path, .value = v.original, .previous = v.current});
  return p;
}

}  // namespace tierswap
