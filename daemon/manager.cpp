#include "daemon/manager.hpp"

#include <algorithm>
#include <cinttypes>
#include <cstdio>

#include "backends/hostfs/paths.hpp"
#include "backends/swap/proc_swaps.hpp"
#include "common/byte_format.hpp"
#include "common/json_writer.hpp"
#include "daemon/kind_registry.hpp"
#include "daemon/plan_ops.hpp"
#include "policy/meminfo.hpp"
#include "policy/psi.hpp"
#include "policy/zram_mm_stat.hpp"

namespace tierswap {

namespace {

std::vector<swap::SwapArea> read_swaps(const HostFs& fs) {
  auto text = fs.read(paths::proc_swaps);
  if (!text) return {};
  auto areas = swap::parse_proc_swaps(*text);
  return areas ? *areas : std::vector<swap::SwapArea>{};
}

PressureLine to_line(const policy::PsiLine& l) {
  return {l.avg10, l.avg60, l.avg300, l.total_us};
}

}  // namespace

Manager::Manager(Engine& engine, ManagerOptions opts) : engine_(engine), opts_(std::move(opts)) {
  if (!opts_.info) opts_.info = [](const std::string&) {};
  if (!opts_.warn) opts_.warn = [](const std::string&) {};
  if (!opts_.now) opts_.now = [] { return std::chrono::steady_clock::now(); };
}

Manager::~Manager() {
  wait_idle();
  std::lock_guard lk(mu_);
  if (worker_.joinable()) worker_.join();
}

void Manager::set_events(ManagerEvents events) {
  std::lock_guard lk(events_mu_);
  events_ = std::move(events);
}

void Manager::emit_state(const std::string& tier, TierState s) {
  std::lock_guard lk(events_mu_);
  if (events_.tier_state_changed) events_.tier_state_changed(tier, s);
}
void Manager::emit_action(const std::string& what, const std::string& why, const std::string& numbers) {
  opts_.info(what + ": " + why);
  std::lock_guard lk(events_mu_);
  if (events_.policy_action) events_.policy_action(what, why, numbers);
}
void Manager::emit_progress(const std::string& tier, std::uint64_t moved, std::uint64_t total) {
  std::lock_guard lk(events_mu_);
  if (events_.progress) events_.progress(tier, moved, total);
}

void Manager::check_pressure() {
  const auto& fs = engine_.fs();
  struct Resource {
    const char* name;
    std::string_view path;
    policy::PressureAlertState& state;
  };
  std::lock_guard lk(pressure_mu_);
  for (Resource r : {Resource{"memory", paths::proc_pressure_memory, memory_alert_},
                     Resource{"io", paths::proc_pressure_io, io_alert_}}) {
    auto text = fs.read(r.path);
    if (!text) continue;  // no PSI on this kernel: nothing to alert on
    auto psi = policy::parse_psi(*text, r.path);
    if (!psi || !policy::pressure_alert(r.state, psi->some.avg10)) continue;
    char line[160];
    std::snprintf(line, sizeof line,
                  "%s pressure: some tasks stalled %.2f%% of the last 10 s (all tasks %.2f%%)", r.name,
                  psi->some.avg10, psi->full.avg10);
    opts_.warn(line);
    std::lock_guard ek(events_mu_);
    if (events_.pressure_alert) events_.pressure_alert(r.name, psi->some.avg10, psi->full.avg10);
  }
}

void Manager::set_state(std::string state) {
  std::lock_guard lk(mu_);
  state_ = std::move(state);
}

bool Manager::busy() const {
  std::lock_guard lk(mu_);
  return op_.has_value();
}

Status Manager::status() {
  Status s;
  s.version = opts_.version;
  std::optional<std::string> op;
  {
    std::lock_guard lk(mu_);
    s.state = state_;
    op = op_;
  }
  s.config_source = engine_.config_source();
  const HostFs& fs = engine_.fs();
  const auto swaps = read_swaps(fs);
  const Journal j = engine_.journal();
  const auto configured = engine_.configured_tiers();

  auto fill = [&](TierStatus& ts, const OwnedTier* o) {
    if (!o) return;
    ts.device = o->swap_path;
    const auto area = swap::find_area(swaps, o->swap_path);
    if (op && *op == ts.name)
      ts.state = TierState::demoting;
    else if (area)
      ts.state = TierState::active;
    else if (o->drained)
      ts.state = TierState::drained;
    else if (o->active)
      ts.state = TierState::failed;  // ours and meant to be on, but the kernel lost it
    else
      ts.state = TierState::unavailable;
    if (area) {
      ts.size_bytes = area->size_kib * 1024;
      ts.used_bytes = area->used_kib * 1024;
      ts.priority = area->priority;
    } else {
      ts.size_bytes = o->size;
    }
    ts.stored_bytes = ts.used_bytes;
    if (o->kind == "zram" && !o->device.empty()) {
      if (auto text = fs.read(paths::block_attr(o->device, "mm_stat"))) {
        if (auto mm = policy::parse_zram_mm_stat(*text)) {
          ts.stored_bytes = mm->mem_used_total;
          ts.compression_ratio = mm->compression_ratio();
        }
      }
    }
    if (o->kind == "vram") {
      ts.exporter_pid = o->exporter_pid;
      if (const TierKind* k = kinds::for_tier(o->kind))
        if (auto st = k->stats(*o, fs)) ts.exporter_state = st->process_state;
      ts.store = o->store;
      ts.connections = static_cast<std::uint32_t>(o->connections);
      ts.failure = o->failed;
      if (!o->failed.empty() && ts.state != TierState::demoting) ts.state = TierState::failed;
    }
  };
  for (const auto& c : configured) {
    TierStatus ts;
    ts.name = c.name;
    ts.kind = c.kind;
    ts.priority = c.priority;
    ts.device = c.path;
    ts.state = TierState::unavailable;
    fill(ts, j.find_tier(c.name));
    s.tiers.push_back(std::move(ts));
  }
  for (const auto& o : j.tiers) {  // owned but no longer configured (a teardown failed, or mid-reload)
    if (std::any_of(configured.begin(), configured.end(), [&](const auto& c) { return c.name == o.name; }))
      continue;
    TierStatus ts;
    ts.name = o.name;
    ts.kind = o.kind;
    ts.priority = o.priority;
    fill(ts, &o);
    s.tiers.push_back(std::move(ts));
  }
  std::stable_sort(s.tiers.begin(), s.tiers.end(), [](const TierStatus& a, const TierStatus& b) {
    if (a.priority != b.priority) return a.priority > b.priority;
    return a.name < b.name;
  });

  if (auto v = fs.read_int(paths::sysctl("vm.swappiness"))) s.swappiness = static_cast<int>(*v);
  if (auto t = fs.read(paths::proc_pressure_memory))
    if (auto p = policy::parse_psi(*t, paths::proc_pressure_memory))
      s.memory_pressure = {to_line(p->some), to_line(p->full)};
  if (auto t = fs.read(paths::proc_pressure_io))
    if (auto p = policy::parse_psi(*t, paths::proc_pressure_io))
      s.io_pressure = {to_line(p->some), to_line(p->full)};
  if (auto t = fs.read(paths::proc_meminfo))
    if (auto m = policy::parse_meminfo(*t)) {
      s.mem_total_bytes = m->mem_total();
      s.mem_available_bytes = m->mem_available();
    }
  if (auto t = fs.read(paths::proc_vmstat)) {
    if (auto vm = policy::parse_vmstat(*t)) {
      const auto now = opts_.now();
      std::lock_guard lk(rates_mu_);
      if (!prev_vmstat_) {
        prev_vmstat_ = std::move(*vm);
        prev_time_ = now;
      } else {
        // Rates over at least a second: two status calls a moment apart
        // must not give noise (or 0) for the second one.
        const double dt = std::chrono::duration<double>(now - prev_time_).count();
        if (dt >= 1.0) {
          rates_ = policy::swap_rates(*prev_vmstat_, *vm, dt);
          prev_vmstat_ = std::move(*vm);
          prev_time_ = now;
        }
      }
      s.swap_in_pages_per_s = rates_.in_pages_per_s;
      s.swap_out_pages_per_s = rates_.out_pages_per_s;
    }
  }
  return s;
}

Result<void> Manager::reload() {
  auto r = reload_steps("requested over D-Bus");
  if (!r) return std::unexpected(r.error());
  return {};
}

Result<std::size_t> Manager::reload_steps(const std::string& why) {
  {
    std::lock_guard lk(mu_);
    if (op_) return fail(EBUSY, "tier \"" + *op_ + "\" is being demoted: reload once that has ended");
    state_ = "reloading";
  }
  auto r = engine_.reload();
  set_state("running");
  if (r && *r > 0) {
    JsonWriter w;
    w.begin_object().key("steps").value(static_cast<unsigned long long>(*r)).end_object();
    emit_action("reload", why + ": applied " + std::to_string(*r) + " steps", w.str());
  }
  return r;
}

Result<std::string> Manager::plan_json() {
  auto p = engine_.plan();
  if (!p) return std::unexpected(p.error());
  return plan_to_json(*p);
}

std::vector<std::string> Manager::tier_names() {
  std::vector<std::string> names;
  for (const auto& c : engine_.configured_tiers()) names.push_back(c.name);
  for (const auto& o : engine_.journal().tiers)
    if (std::find(names.begin(), names.end(), o.name) == names.end()) names.push_back(o.name);
  return names;
}

namespace {
Result<void> no_such_tier(const std::string& tier, const std::vector<std::string>& names) {
  std::string list;
  for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
  return fail(ENOENT, "no tier named \"" + tier + "\" (tiers: " + (list.empty() ? "none" : list) + ")");
}
}  // namespace

Result<void> Manager::demote(const std::string& tier) {
  {
    std::lock_guard lk(mu_);
    if (op_) return fail(EBUSY, "tier \"" + *op_ + "\" is being demoted: one demote or promote at a time");
  }
  const auto names = tier_names();
  if (std::find(names.begin(), names.end(), tier) == names.end()) return no_such_tier(tier, names);
  auto rec = engine_.begin_demote(tier);
  if (!rec) return std::unexpected(rec.error());
  auto give_up = [&](Error e) -> Result<void> {
    (void)engine_.end_demote(tier, false);
    return std::unexpected(std::move(e));
  };

  // Precheck: only drain into what the other swap areas can take (the room
  // rule, policy/swap_room.hpp).
  const auto verdict = swapoff_room_now(engine_.fs(), rec->swap_path);
  if (!verdict)
    return give_up({EINVAL, "tier \"" + tier + "\" (" + rec->swap_path + "): " + verdict.error().message +
                                ": nothing to demote"});
  const std::uint64_t used = verdict->need;
  const std::uint64_t free_other = verdict->room;
  const int others = verdict->areas;
  JsonWriter nums;
  nums.begin_object()
      .key("tier_used_bytes")
      .value(static_cast<unsigned long long>(used))
      .key("other_free_bytes")
      .value(static_cast<unsigned long long>(free_other))
      .key("margin_bytes")
      .value(static_cast<unsigned long long>(verdict->margin))
      .key("other_areas")
      .value(others)
      .end_object();
  if (!verdict->fits) {
    return give_up(
        {ENOMEM,
         "tier " + tier + " holds " + format_bytes(used) + "; the other swap areas have " +
             format_bytes(free_other) + " free (" + std::to_string(others) + " other area" +
             (others == 1 ? "" : "s") +
             "; a zram area counts what its mem_limit and free RAM can hold) and " + "a swapoff needs " +
             format_bytes(used + verdict->margin) + " with its margin" +
             ": not demoting, because pages that swapoff brings back into RAM are charged to their "
             "cgroups and a cgroup at memory.max is OOM-killed; add swap space below it or wait until it "
             "holds less"});
  }
  {
    std::lock_guard lk(mu_);
    if (op_)
      return give_up({EBUSY, "tier \"" + *op_ + "\" is being demoted: one demote or promote at a time"});
    op_ = tier;
    abort_why_.clear();
    if (worker_.joinable()) worker_.join();  // the previous one has finished (op_ was empty)
    // Announced before the worker starts, so that "demoting" comes first.
    emit_action("demote",
                "tier " + tier + " (" + rec->swap_path + "): demote requested over D-Bus; moving " +
                    format_bytes(used) + " into the other swap areas (" + format_bytes(free_other) + " free)",
                nums.str());
    emit_state(tier, TierState::demoting);
    worker_ = std::thread([this, tier, r = *rec, used] { run_demote(tier, r, used); });
  }
  return {};
}

void Manager::run_demote(std::string tier, OwnedTier rec, std::uint64_t total) {
  const auto t0 = std::chrono::steady_clock::now();
  std::mutex m;
  std::condition_variable cv;
  bool done = false;
  Result<void> r;
  emit_progress(tier, 0, total);
  std::thread off([&] {
    auto x = engine_.kernel().swapoff(rec.swap_path);
    std::lock_guard lk(m);
    r = std::move(x);
    done = true;
    cv.notify_all();
  });
  std::uint64_t last = 0;
  {
    std::unique_lock lk(m);
    while (!done) {
      cv.wait_for(lk, opts_.poll_interval);
      if (done) break;
      lk.unlock();
      const auto swaps = read_swaps(engine_.fs());
      if (const auto a = swap::find_area(swaps, rec.swap_path)) {
        const std::uint64_t used = a->used_kib * 1024;
        const std::uint64_t moved = total > used ? total - used : 0;
        if (moved != last) {
          last = moved;
          emit_progress(tier, moved, total);
        }
      }
      lk.lock();
    }
  }
  off.join();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  auto end = engine_.end_demote(tier, r.has_value());
  if (!end) opts_.warn("journal: " + end.error().describe());
  std::string abort_why;
  {
    std::lock_guard lk(mu_);
    abort_why = abort_why_;
    op_.reset();
    cv_.notify_all();
  }
  char secs_text[32];
  std::snprintf(secs_text, sizeof secs_text, "%.1f s", secs);
  JsonWriter w;
  w.begin_object()
      .key("moved_bytes")
      .value(static_cast<unsigned long long>(r ? total : last))
      .key("total_bytes")
      .value(static_cast<unsigned long long>(total))
      .key("seconds")
      .value(secs)
      .end_object();
  if (r) {
    emit_progress(tier, total, total);
    emit_action("demote",
                "tier " + tier + " drained: " + format_bytes(total) + " moved to the other swap areas in " +
                    secs_text + "; it stays off until promoted",
                w.str());
    emit_state(tier, TierState::drained);
  } else {
    const std::string why = !abort_why.empty() ? "aborted (" + abort_why + ")" : r.error().describe();
    emit_action("demote",
                "tier " + tier + " stays active: swapoff of " + rec.swap_path + " " +
                    (abort_why.empty() ? "failed: " : "") + why + "; the kernel kept the area in use",
                w.str());
    emit_state(tier, TierState::active);
  }
}

Result<void> Manager::promote(const std::string& tier) {
  {
    std::lock_guard lk(mu_);
    if (op_) return fail(EBUSY, "tier \"" + *op_ + "\" is being demoted: one demote or promote at a time");
  }
  const auto names = tier_names();
  if (std::find(names.begin(), names.end(), tier) == names.end()) return no_such_tier(tier, names);
  auto rec = engine_.promote(tier);
  if (!rec) return std::unexpected(rec.error());
  JsonWriter w;
  w.begin_object().key("priority").value(rec->priority).key("discard").value(rec->discard).end_object();
  emit_action("promote",
              "tier " + tier + " (" + rec->swap_path +
                  "): promote requested over D-Bus; back in use at priority " + std::to_string(rec->priority),
              w.str());
  emit_state(tier, TierState::active);
  return {};
}

bool Manager::abort_demote(const std::string& why) {
  bool was = false;
  auto* real = dynamic_cast<swap::RealKernel*>(&engine_.kernel());
  std::unique_lock lk(mu_);
  while (op_) {
    was = true;
    abort_why_ = why;
    // The helper may not exist yet (fork pending): try again until it ends.
    if (real) real->abort_swapoff();
    cv_.wait_for(lk, std::chrono::milliseconds(50));
  }
  if (worker_.joinable()) worker_.join();
  return was;
}

void Manager::wait_idle() {
  std::unique_lock lk(mu_);
  cv_.wait(lk, [&] { return !op_; });
}

}  // namespace tierswap
