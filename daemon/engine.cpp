#include "daemon/engine.hpp"

#include <algorithm>
#include <functional>
#include <map>
#include <set>
#include <sstream>

#include "backends/hostfs/paths.hpp"
#include "backends/swap/proc_swaps.hpp"
#include "common/byte_format.hpp"
#include "config/loader.hpp"
#include "daemon/apply.hpp"
#include "daemon/kind_registry.hpp"
#include "daemon/observe.hpp"
#include "daemon/plan_ops.hpp"
#include "policy/meminfo.hpp"
#include "policy/zram_mm_stat.hpp"

namespace tierswap {

namespace {

constexpr std::size_t kMaxCgroups = 20000;
// v1 writes "no limit" as PAGE_COUNTER_MAX pages (9223372036854771712 with 4 KiB pages).
constexpr std::uint64_t kV1Unlimited = 1ull << 62;

std::optional<std::uint64_t> stat_field(const std::string& text, std::string_view key) {
  std::size_t pos = 0;
  while (pos < text.size()) {
    const std::size_t end = std::min(text.find('\n', pos), text.size());
    const std::string_view line(text.data() + pos, end - pos);
    if (line.size() > key.size() && line.starts_with(key) && line[key.size()] == ' ') {
      try {
        return std::stoull(std::string(line.substr(key.size() + 1)));
      } catch (const std::exception&) {
        return std::nullopt;
      }
    }
    pos = end + 1;
  }
  return std::nullopt;
}

// The memory cgroups below `root` that hold swap; `read` fills one cgroup's
// figures (nullopt: this cgroup is not the memory controller's, skip it;
// an error: the facts are incomplete). Children are visited only under a
// cgroup that holds swap (or the root, which has no figures of its own).
using ReadCgroup = std::function<Result<std::optional<policy::CgroupSwap>>(const std::string& dir)>;
Result<std::vector<policy::CgroupSwap>> walk_cgroups(const HostFs& fs, const std::string& root,
                                                     const ReadCgroup& read) {
  std::vector<policy::CgroupSwap> out;
  std::vector<std::string> todo{root};
  std::size_t seen = 0;
  while (!todo.empty()) {
    const std::string dir = std::move(todo.back());
    todo.pop_back();
    if (dir != root) {
      if (++seen > kMaxCgroups)
        return fail(ErrorKind::failed, "more than " + std::to_string(kMaxCgroups) + " cgroups under " + root);
      auto c = read(dir);
      if (!c) return std::unexpected(c.error());
      if (!*c) continue;
      if ((*c)->swap_bytes == 0) continue;
      out.push_back(std::move(**c));
    }
    auto names = fs.list(dir);
    if (!names) return wrap(names.error(), "cannot list the cgroups in " + dir);
    for (const auto& n : *names)
      if (fs.exists(dir + "/" + n + "/cgroup.procs")) todo.push_back(dir + "/" + n);
  }
  return out;
}

Result<std::uint64_t> read_u64(const HostFs& fs, const std::string& path) {
  auto v = fs.read_int(path);
  if (!v) return std::unexpected(v.error());
  return static_cast<std::uint64_t>(std::max(0LL, *v));
}

Result<std::vector<policy::CgroupSwap>> cgroups_v2(const HostFs& fs, const std::string& root) {
  return walk_cgroups(fs, root, [&fs](const std::string& dir) -> Result<std::optional<policy::CgroupSwap>> {
    if (!fs.exists(dir + "/memory.max")) return std::nullopt;  // memory controller not enabled here
    if (!fs.exists(dir + "/memory.swap.current"))
      return fail(ErrorKind::failed, dir + " has no memory.swap.current (swap accounting is off)");
    policy::CgroupSwap c{.path = dir};
    auto swap = read_u64(fs, dir + "/memory.swap.current");
    if (!swap) return std::unexpected(swap.error());
    c.swap_bytes = *swap;
    if (c.swap_bytes == 0) return c;
    auto cur = read_u64(fs, dir + "/memory.current");
    if (!cur) return std::unexpected(cur.error());
    c.current_bytes = *cur;
    auto max = fs.read_value(dir + "/memory.max");
    if (!max) return std::unexpected(max.error());
    if (*max != "max") {
      try {
        c.max_bytes = std::stoull(*max);
      } catch (const std::exception&) {
        return fail(ErrorKind::failed, dir + "/memory.max: \"" + *max + "\" is not a number of bytes");
      }
    }
    return c;
  });
}

Result<std::vector<policy::CgroupSwap>> cgroups_v1(const HostFs& fs, const std::string& root) {
  auto top = fs.read(root + "/memory.stat");
  if (!top) return std::unexpected(top.error());
  if (!stat_field(*top, "total_swap"))
    return fail(ErrorKind::failed, root + "/memory.stat has no total_swap (swap accounting is off)");
  return walk_cgroups(fs, root, [&fs](const std::string& dir) -> Result<std::optional<policy::CgroupSwap>> {
    auto stat = fs.read(dir + "/memory.stat");
    if (!stat) return std::unexpected(stat.error());
    policy::CgroupSwap c{.path = dir};
    const auto swap = stat_field(*stat, "total_swap");
    const auto limit = stat_field(*stat, "hierarchical_memory_limit");
    if (!swap || !limit) return fail(ErrorKind::failed, dir + "/memory.stat lacks total_swap or its limit");
    c.swap_bytes = *swap;
    if (c.swap_bytes == 0) return c;
    auto cur = read_u64(fs, dir + "/memory.usage_in_bytes");
    if (!cur) return std::unexpected(cur.error());
    c.current_bytes = *cur;
    if (*limit < kV1Unlimited) c.max_bytes = *limit;
    return c;
  });
}

// Whether /proc/cgroups lists the memory controller as enabled; nullopt
// when it cannot be read.
std::optional<bool> memory_controller_enabled(const HostFs& fs) {
  auto text = fs.read(paths::proc_cgroups);
  if (!text) return std::nullopt;
  std::istringstream in(*text);
  for (std::string line; std::getline(in, line);) {
    std::istringstream words(line);
    std::string name, hierarchy, count, enabled;
    if (words >> name >> hierarchy >> count >> enabled && name == "memory") return enabled == "1";
  }
  return false;
}

}  // namespace

policy::RamRoom read_ram_room(const HostFs& fs, std::uint64_t mem_total) {
  const auto not_counted = [](const std::string& why) {
    return policy::ram_not_counted(why + "; counting the other swap areas only");
  };
  auto min_free = fs.read_int(paths::sysctl("vm.min_free_kbytes"));
  if (!min_free)
    return not_counted("vm.min_free_kbytes cannot be read (" + min_free.error().describe() + ")");
  if (mem_total == 0) return not_counted("MemTotal is not in /proc/meminfo");
  const std::uint64_t min_free_bytes = static_cast<std::uint64_t>(std::max(0LL, *min_free)) * 1024;
  const std::string v2(paths::sys_fs_cgroup), v1(paths::sys_fs_cgroup_memory_v1);
  Result<std::vector<policy::CgroupSwap>> cgroups = std::vector<policy::CgroupSwap>{};
  auto controllers = fs.read_value(v2 + "/cgroup.controllers");
  if (controllers && (" " + *controllers + " ").find(" memory ") != std::string::npos) {
    cgroups = cgroups_v2(fs, v2);
  } else if (fs.exists(v1 + "/memory.stat")) {
    cgroups = cgroups_v1(fs, v1);
  } else if (memory_controller_enabled(fs) != false) {
    return not_counted(
        "the memory cgroups that hold swap cannot be read (no cgroup v2 memory controller at " + v2 +
        ", no v1 memory hierarchy at " + v1 + ")");
  }
  if (!cgroups)
    return not_counted("the memory cgroups that hold swap cannot be read: " + cgroups.error().describe());
  return policy::ram_room(mem_total, min_free_bytes, *cgroups);
}

std::string ram_room_text(const policy::RoomVerdict& v) {
  if (!v.ram_counted) return v.ram_not_counted.empty() ? "" : "; RAM is not counted: " + v.ram_not_counted;
  std::string t = "; RAM can take " + format_bytes(v.ram) + " (MemAvailable less a reserve of " +
                  format_bytes(v.ram_reserve) + ")";
  if (v.capped)
    t += ", but " + format_bytes(v.capped) +
         " of the pages belong to memory cgroups at their limit, which cannot take them back into RAM";
  return t;
}

Result<RoomFacts> read_room_facts(const HostFs& fs) {
  auto sw = fs.read(paths::proc_swaps);
  if (!sw) return std::unexpected(sw.error());
  auto areas = swap::parse_proc_swaps(*sw);
  if (!areas) return wrap(areas.error(), std::string(paths::proc_swaps));
  auto mi = fs.read(paths::proc_meminfo);
  if (!mi) return std::unexpected(mi.error());
  auto meminfo = policy::parse_meminfo(*mi);
  if (!meminfo) return wrap(meminfo.error(), std::string(paths::proc_meminfo));
  RoomFacts f;
  f.mem_available = meminfo->mem_available();
  f.ram = read_ram_room(fs, meminfo->mem_total());
  for (const auto& a : *areas) {
    policy::RoomArea r{.path = a.path, .size_bytes = a.size_kib * 1024, .used_bytes = a.used_kib * 1024};
    if (a.path.starts_with(paths::dev_node("zram"))) {
      const std::string dev = a.path.substr(paths::dev_node("").size());
      if (auto text = fs.read(paths::block_attr(dev, "mm_stat")))
        if (auto mm = policy::parse_zram_mm_stat(*text)) {
          r.zram = true;
          r.mem_limit = mm->mem_limit;
          r.mem_used = mm->mem_used_total;
          r.ratio = mm->compression_ratio();
        }
    }
    f.areas.push_back(std::move(r));
  }
  return f;
}

Result<policy::RoomVerdict> swapoff_room_now(const HostFs& fs, const std::string& swap_path) {
  auto facts = read_room_facts(fs);
  if (!facts) return std::unexpected(facts.error());
  policy::RoomInput in{.mem_available = facts->mem_available, .ram = facts->ram};
  bool found = false;
  for (const auto& a : facts->areas) {
    if (a.path == swap_path) {
      found = true;
      in.need_bytes = a.used_bytes;
    } else {
      in.others.push_back(a);
    }
  }
  if (!found) return fail(ErrorKind::not_found, swap_path + " is not in " + std::string(paths::proc_swaps));
  return policy::swapoff_room(in);
}

namespace {

// "holds 200.0 MiB; the swap areas that stay can take 63.0 MiB (1 area) and
// its swapoff needs 225.0 MiB with a margin of 25.0 MiB"
std::string room_numbers(const policy::RoomVerdict& v) {
  return "holds " + format_bytes(v.need) + "; the swap areas that stay can take " + format_bytes(v.room) +
         " (" + std::to_string(v.areas) + (v.areas == 1 ? " area" : " areas") +
         (v.committed ? ", after the " + format_bytes(v.committed) + " that earlier swapoffs move there"
                      : "") +
         ")" + ram_room_text(v) + "; its swapoff needs " + format_bytes(v.need + v.margin) +
         " with a margin of " + format_bytes(v.margin);
}

constexpr const char* kWhyRoom =
    "pages that swapoff brings back into RAM are charged to their cgroups, and a cgroup at memory.max is "
    "OOM-killed";

}  // namespace

Engine::Engine(EngineOptions opts, std::unique_ptr<swap::Kernel> kernel)
    : opts_(std::move(opts)), fs_(opts_.root), kernel_(std::move(kernel)) {
  if (!kernel_ && opts_.make_kernel) kernel_ = opts_.make_kernel(fs_);
  if (!kernel_) kernel_ = std::make_unique<swap::RealKernel>(fs_);
  if (!opts_.info) opts_.info = [](const std::string&) {};
  if (!opts_.warn) opts_.warn = [](const std::string&) {};
}

void Engine::publish_locked() {
  State v = state_;
  std::lock_guard lk(view_mu_);
  view_ = std::move(v);
}

std::string Engine::config_source() const {
  std::lock_guard lk(view_mu_);
  return view_.source;
}

config::MetricsSettings Engine::metrics_settings() const {
  std::lock_guard lk(view_mu_);
  return view_.metrics;
}

Journal Engine::journal() const {
  std::lock_guard lk(view_mu_);
  return view_.journal;
}

Result<LoadedConfig> Engine::load() {
  auto ram = fs_.read(paths::proc_meminfo);
  if (!ram) return std::unexpected(ram.error());
  auto total = parse_mem_total(*ram);
  if (!total) return std::unexpected(total.error());
  const config::HostFacts facts{.ram_bytes = *total};
  config::LoadResult lr;
  if (opts_.config) {
    lr = config::load_file(*opts_.config, facts);
  } else if (fs_.exists(paths::default_config)) {
    lr = config::load_file(fs_.resolve(paths::default_config), facts);
  } else {
    lr = config::load_string(config::embedded_default_yaml(), config::kEmbeddedDefaultName, facts);
  }
  std::string errors;
  LoadedConfig out;
  for (const auto& d : lr.diagnostics) {
    if (d.severity == config::Severity::error)
      errors += (errors.empty() ? "" : "\n") + config::format_diagnostic(d);
    else
      out.warnings.push_back(d);
  }
  if (!lr.ok() || !lr.spec)
    return fail(ErrorKind::invalid_config, errors.empty() ? "config did not load" : errors);
  out.spec = std::move(*lr.spec);
  return out;
}

Result<Plan> Engine::plan_locked(const LoadedConfig& cfg) {
  return plan_against(cfg, state_.journal);
}

Result<Plan> Engine::plan_against(const LoadedConfig& cfg, const Journal& journal) const {
  auto obs = observe(fs_);
  if (!obs) return std::unexpected(obs.error());
  if (needs_gpu_facts(cfg.spec, fs_)) observe_gpus(*obs, exporter_pids(journal));
  auto pr = make_plan(cfg.spec, *obs, journal, fs_);
  std::string errors;
  for (const auto& d : cfg.warnings) opts_.warn(config::format_diagnostic(d));
  for (const auto& d : pr.diagnostics) {
    if (d.severity == config::Severity::error)
      errors += (errors.empty() ? "" : "\n") + config::format_diagnostic(d);
    else
      opts_.warn(config::format_diagnostic(d));
  }
  if (!pr.ok()) return fail(ErrorKind::invalid_config, errors);
  return std::move(pr.plan);
}

Result<std::size_t> Engine::apply_locked() {
  auto cfg = load();
  if (!cfg) return std::unexpected(cfg.error());
  auto plan = plan_locked(*cfg);
  if (!plan) return std::unexpected(plan.error());
  for (const auto& n : plan->notes) opts_.info(n);
  auto remember = [&] {
    state_.configured.clear();
    for (const auto& t : cfg->spec.tiers)
      state_.configured.push_back({t.name, config::to_string(t.kind),
                                   t.kind == config::TierKind::partition ? t.device : t.path, t.priority,
                                   t.size_bytes, t.gpu, t.reserve_text, t.reserve_bytes});
    state_.source = cfg->spec.source;
    state_.policy = config::effective_policy(cfg->spec);
    state_.metrics = cfg->spec.metrics;
    state_.cgroups.clear();
    for (const auto& [name, limits] : cfg->spec.cgroups) state_.cgroups.push_back(name);
  };
  if (plan->empty()) {
    remember();
    return std::size_t{0};
  }
  if (auto room = check_plan_room(*plan); !room) return std::unexpected(room.error());
  state_.journal.source = cfg->spec.source;
  Executor ex(fs_, *kernel_, state_.journal);
  ApplyOptions ao;
  ao.before_step = opts_.before_step;
  ao.log = opts_.info;
  if (auto r = ex.apply(*plan, ao); !r) return std::unexpected(r.error());
  remember();
  return plan->steps.size();
}

void Engine::adopt_from_kernel(const Error& why) {
  opts_.warn("journal: " + why.describe() + ": not using it");
  if (auto aside = set_aside_journal(fs_))
    opts_.warn("journal: set aside as " + *aside + " (kept for inspection)");
  else if (aside.error().code != ENOENT)
    opts_.warn("journal: could not set it aside: " + aside.error().describe());
  state_.journal = Journal{};
  auto obs = observe(fs_);
  if (!obs) {
    opts_.warn("journal: cannot rebuild it from the kernel: " + obs.error().describe());
    return;
  }
  auto cfg = load();  // only to name what is found; errors come again from the apply
  std::vector<std::string> log;
  state_.journal = rebuild_from_kernel(*obs, fs_, cfg ? cfg->spec.tiers : std::vector<config::Tier>{}, log);
  if (cfg) state_.journal.source = cfg->spec.source;
  for (const auto& line : log) opts_.warn("journal rebuilt from the kernel: " + line);
  if (auto r = save_journal(fs_, state_.journal); !r) opts_.warn("journal: " + r.error().describe());
}

Result<void> Engine::check_plan_room(const Plan& plan) {
  if (std::none_of(plan.steps.begin(), plan.steps.end(), [](const Step& s) { return s.op == "swapoff"; }))
    return {};
  auto facts = read_room_facts(fs_);
  if (!facts) return std::unexpected(facts.error());
  // Areas the plan adds before a swapoff count (empty); their sizes come
  // from the plan's own steps, as each tier's plug-in reads them.
  std::map<std::string, PlannedArea> planned;  // by tier
  std::uint64_t committed = 0;
  auto& areas = facts->areas;
  for (size_t i = 0; i < plan.steps.size(); ++i) {
    const Step& s = plan.steps[i];
    if (const auto* k = kinds::named(s.kind)) k->plan_area(s, planned[s.tier]);
    if (s.op == "swapon") {
      const PlannedArea& a = planned[s.tier];
      const std::uint64_t size = a.size_bytes ? a.size_bytes : s.size;
      if (size)
        areas.push_back(
            {.path = s.path, .size_bytes = size, .zram = a.zram, .mem_limit = a.zram ? a.mem_limit : 0});
      continue;
    }
    if (s.op != "swapoff") continue;
    const auto it =
        std::find_if(areas.begin(), areas.end(), [&](const policy::RoomArea& a) { return a.path == s.path; });
    if (it == areas.end()) continue;
    policy::RoomInput in{.need_bytes = it->used_bytes,
                         .mem_available = facts->mem_available,
                         .committed_bytes = committed,
                         .ram = facts->ram};
    for (const auto& a : areas)
      if (a.path != s.path) in.others.push_back(a);
    const auto v = policy::swapoff_room(in);
    if (!v.fits)
      return fail(ErrorKind::not_enough_memory,
                  "step " + std::to_string(i + 1) + " of " + std::to_string(plan.steps.size()) + " (" +
                      (s.tier.empty() ? "" : "[" + s.tier + "] ") + describe(s) + "): tier \"" + s.tier +
                      "\" (" + s.path + ") " + room_numbers(v) +
                      ": not applying this plan, the tier stays as it is, because " + kWhyRoom +
                      "; add swap space below it, or apply again once it holds less");
    committed += it->used_bytes;
    areas.erase(it);
  }
  return {};
}

Result<void> Engine::start() {
  std::lock_guard lk(mu_);
  const Publish publish{*this};
  auto j = load_journal(fs_);
  if (!j) {
    adopt_from_kernel(j.error());
  } else {
    state_.journal = std::move(*j);
  }
  if (j && !state_.journal.empty()) {
    auto obs = observe(fs_);
    if (!obs) return std::unexpected(obs.error());
    for (const auto& line : recover_pending(state_.journal, *obs, fs_)) opts_.warn("journal: " + line);
    for (const auto& line : reconcile(state_.journal, *obs, fs_))  // a failed tier is a warning
      (line.find("FAILED") != std::string::npos ? opts_.warn : opts_.info)("journal: " + line);
    if (auto r = save_journal(fs_, state_.journal); !r) opts_.warn("journal: " + r.error().describe());
  }
  auto n = apply_locked();
  if (!n) return std::unexpected(n.error());
  opts_.info(*n == 0 ? "applied: nothing to do" : "applied " + std::to_string(*n) + " steps");
  return {};
}

Result<std::size_t> Engine::reload() {
  std::lock_guard lk(mu_);
  const Publish publish{*this};
  if (state_.busy)
    return fail(ErrorKind::busy,
                "tier \"" + *state_.busy + "\" is being demoted: reload once that has ended");
  return apply_locked();
}

Result<OwnedTier*> Engine::journalled_tier_locked(const std::string& tier, const char* op) {
  if (state_.busy)
    return fail(ErrorKind::busy,
                "tier \"" + *state_.busy + "\" is being demoted: one demote or promote at a time");
  auto* t = state_.journal.find_tier(tier);
  // A configured tier that is not set up: the plan left it out (its kind is
  // unavailable here), so the config is what the caller has to change.
  if (!t)
    return fail(ErrorKind::invalid_config,
                "tier \"" + tier + "\" is not set up (unavailable): nothing to " + op);
  return t;
}

Result<OwnedTier> Engine::begin_demote(const std::string& tier) {
  std::lock_guard lk(mu_);
  const Publish publish{*this};
  auto found = journalled_tier_locked(tier, "demote");
  if (!found) return std::unexpected(found.error());
  OwnedTier* t = *found;
  if (t->drained)
    return fail(ErrorKind::busy,
                "tier \"" + tier + "\" is drained already (tierswapctl promote " + tier + " puts it back)");
  if (!t->active)
    return fail(ErrorKind::invalid_config, "tier \"" + tier + "\" is not active: nothing to demote");
  state_.busy = tier;
  return *t;
}

Result<void> Engine::end_demote(const std::string& tier, bool drained) {
  std::lock_guard lk(mu_);
  const Publish publish{*this};
  if (state_.busy == tier) state_.busy.reset();
  if (!drained) return {};
  auto* t = state_.journal.find_tier(tier);
  if (!t) return fail(ErrorKind::not_found, "tier \"" + tier + "\" is no longer in the journal");
  t->active = false;
  t->drained = true;
  return save_journal(fs_, state_.journal);
}

Result<OwnedTier> Engine::promote(const std::string& tier) {
  std::lock_guard lk(mu_);
  const Publish publish{*this};
  auto found = journalled_tier_locked(tier, "promote");
  if (!found) return std::unexpected(found.error());
  OwnedTier* t = *found;
  if (!t->drained)
    return fail(ErrorKind::busy, "tier \"" + tier + "\" is " + (t->active ? "active" : "not drained") +
                                     ": only a drained tier can be promoted");
  if (auto r = kernel_->swapon(t->swap_path, t->priority, t->discard); !r)
    return wrap(r.error(), "promote \"" + tier + "\"");
  t->active = true;
  t->drained = false;
  if (auto r = save_journal(fs_, state_.journal); !r) opts_.warn("journal: " + r.error().describe());
  return *t;
}

Result<void> Engine::mark_evacuated(const std::string& tier, bool evacuated) {
  std::lock_guard lk(mu_);
  const Publish publish{*this};
  auto* t = state_.journal.find_tier(tier);
  if (!t) return fail(ErrorKind::not_found, "tier \"" + tier + "\" is no longer in the journal");
  if (t->evacuated == evacuated) return {};
  t->evacuated = evacuated;
  return save_journal(fs_, state_.journal);
}

std::optional<std::string> Engine::busy_tier() const {
  std::lock_guard lk(view_mu_);
  return view_.busy;
}

std::vector<Engine::ConfiguredTier> Engine::configured_tiers() const {
  std::lock_guard lk(view_mu_);
  return view_.configured;
}

std::vector<std::string> Engine::configured_cgroups() const {
  std::lock_guard lk(view_mu_);
  return view_.cgroups;
}

config::PolicySettings Engine::policy_settings() const {
  std::lock_guard lk(view_mu_);
  return view_.policy;
}

// Without the engine's lock: a plan asked for while an apply runs is made
// against the journal as the last finished change left it, rather than
// waiting for the apply (Plan is open to every user over D-Bus).
Result<Plan> Engine::plan() {
  auto cfg = load();
  if (!cfg) return std::unexpected(cfg.error());
  return plan_against(*cfg, journal());
}

Result<void> Engine::stop() {
  std::lock_guard lk(mu_);
  const Publish publish{*this};
  if (opts_.keep_on_exit) {
    opts_.info("--keep-on-exit: leaving the tiers in place; the journal stays for the next start");
    return {};
  }
  auto obs = observe(fs_);
  if (!obs) return std::unexpected(obs.error());
  auto facts = read_room_facts(fs_);
  if (!facts) return std::unexpected(facts.error());
  // The swapoffs in teardown order (lowest priority first), each judged
  // against the areas that remain at that point.
  std::vector<std::string> order;
  for (const auto& s : make_teardown(state_.journal, *obs).steps)
    if (s.op == "swapoff") order.push_back(s.path);
  const auto verdicts = policy::swapoff_sequence_room(order, facts->areas, facts->mem_available, facts->ram);
  std::set<std::string> kept;
  std::string kept_why;
  for (size_t i = 0; i < order.size(); ++i) {
    if (verdicts[i].fits) continue;
    kept.insert(order[i]);
    const OwnedTier* t = state_.journal.find_swap(order[i]);
    kept_why += std::string(kept_why.empty() ? "" : "; ") + "tier \"" + (t ? t->name : std::string("?")) +
                "\" (" + order[i] + ") stays set up and in the journal: it " + room_numbers(verdicts[i]);
  }
  if (!kept.empty()) {
    kept_why += "; not swapping off what does not fit, because " + std::string(kWhyRoom) +
                "; the next tierswapd start adopts what stays";
    opts_.warn("teardown: " + kept_why);
  }
  Journal rest = state_.journal;
  std::erase_if(rest.tiers, [&](const OwnedTier& t) { return kept.contains(t.swap_path); });
  const Plan p = make_teardown(rest, *obs);
  Executor ex(fs_, *kernel_, state_.journal);
  ApplyOptions ao;
  ao.best_effort = true;
  ao.log = opts_.info;
  auto r = ex.apply(p, ao);
  if (r) {
    Journal left;
    left.source = state_.journal.source;
    for (const auto& t : state_.journal.tiers)
      if (kept.contains(t.swap_path)) left.tiers.push_back(t);
    state_.journal = std::move(left);
    if (auto s = save_journal(fs_, state_.journal); !s) opts_.warn("journal: " + s.error().describe());
  }
  if (kept.empty()) return r;
  if (!r) {
    Error e = r.error();  // keeps its kind and errno
    e.message += "; " + kept_why;
    return std::unexpected(std::move(e));
  }
  return fail(ErrorKind::not_enough_memory, kept_why);
}

}  // namespace tierswap
