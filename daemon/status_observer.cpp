#include "daemon/status_observer.hpp"

#include <algorithm>

#include "backends/hostfs/paths.hpp"
#include "backends/swap/proc_swaps.hpp"
#include "common/cgroup_name.hpp"
#include "daemon/kind_registry.hpp"
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

std::optional<tierswap::Pressure> read_pressure(const HostFs& fs, std::string_view path) {
  auto t = fs.read(path);
  if (!t) return std::nullopt;
  auto p = policy::parse_psi(*t, path);
  if (!p) return std::nullopt;
  return tierswap::Pressure{to_line(p->some), to_line(p->full)};
}

// A tier the journal owns: its state and figures from /proc/swaps and mm_stat.
void fill_owned(TierStatus& ts, const OwnedTier& o, const std::vector<swap::SwapArea>& swaps,
                const HostFs& fs, bool draining) {
  ts.device = o.swap_path;
  const auto area = swap::find_area(swaps, o.swap_path);
  if (draining)
    ts.state = TierState::demoting;
  else if (area)
    ts.state = TierState::active;
  else if (blocks_at(o) == BlocksAt::drained)
    ts.state = TierState::drained;
  else if (o.active)
    ts.state = TierState::failed;  // ours and meant to be on, but the kernel lost it
  else
    ts.state = TierState::unavailable;
  if (area) {
    ts.size_bytes = area->size_kib * 1024;
    ts.used_bytes = area->used_kib * 1024;
    ts.priority = area->priority;
  } else {
    ts.size_bytes = o.size;
  }
  ts.stored_bytes = ts.used_bytes;
  if (o.kind == "zram" && !o.device.empty()) {
    if (auto text = fs.read(paths::block_attr(o.device, "mm_stat"))) {
      if (auto mm = policy::parse_zram_mm_stat(*text)) {
        ts.stored_bytes = mm->mem_used_total;
        ts.compression_ratio = mm->compression_ratio();
      }
    }
  }
  if (o.kind == "vram") {
    ts.exporter_pid = o.exporter_pid;
    if (const TierKind* k = kinds::for_tier(o.kind))
      if (auto st = k->stats(o, fs)) ts.exporter_state = st->process_state;
    ts.store = o.store;
    ts.connections = static_cast<std::uint32_t>(o.connections);
    ts.failure = o.failed;
    // A running daemon learns of a dead exporter here, not only at the next
    // start (reconcile): its area may still be in /proc/swaps, but every
    // page on it is lost.
    if (ts.failure.empty() && ts.exporter_state == "gone")
      ts.failure = "its exporter tierswap-nbd (pid " + std::to_string(o.exporter_pid) +
                   ") is gone: the pages it held are lost, the kernel returns I/O errors to their owners (a "
                   "process touching one gets SIGBUS); tierswapd swaps the area off and sets up a fresh tier "
                   "when it next starts";
    if (!ts.failure.empty() && !draining) ts.state = TierState::failed;
  }
}

// What the log says once when a tier's exporter channel fails.
std::string no_figures(const Error& e) {
  return "no figures from its exporter (" + e.describe() +
         "): its latency and where its blocks are stay unknown until it answers again";
}

}  // namespace

StatusObserver::StatusObserver(Engine& engine, ObserverOptions opts)
    : engine_(engine), opts_(std::move(opts)), start_(opts_.now()) {}

Observation StatusObserver::observe(const Activity& activity) {
  Observation o;
  o.status = read_status(activity);
  o.snapshot = snapshot_of(o.status, activity);
  return o;
}

Status StatusObserver::read_status(const Activity& activity) {
  const std::optional<std::string>& draining = activity.draining_tier;
  Status s;
  s.config_source = engine_.config_source();
  const HostFs& fs = engine_.fs();
  const auto swaps = read_swaps(fs);
  const Journal j = engine_.journal();
  const auto configured = engine_.configured_tiers();
  for (const auto& c : configured) {
    TierStatus ts;
    ts.name = c.name;
    ts.kind = c.kind;
    ts.priority = c.priority;
    ts.device = c.path;
    ts.state = TierState::unavailable;
    if (c.kind == "vram") ts.gpu = c.gpu;
    if (const auto* o = j.find_tier(c.name)) {
      fill_owned(ts, *o, swaps, fs, draining == c.name);
      read_figures(ts, *o, activity.moving_tier == c.name, activity.poll_figures);
    }
    s.tiers.push_back(std::move(ts));
  }
  for (const auto& o : j.tiers) {  // owned but no longer configured (a teardown failed, or mid-reload)
    if (std::any_of(configured.begin(), configured.end(), [&](const auto& c) { return c.name == o.name; }))
      continue;
    TierStatus ts;
    ts.name = o.name;
    ts.kind = o.kind;
    ts.priority = o.priority;
    fill_owned(ts, o, swaps, fs, draining == o.name);
    read_figures(ts, o, activity.moving_tier == o.name, activity.poll_figures);
    s.tiers.push_back(std::move(ts));
  }
  if (activity.poll_figures) {  // a tier gone from the config and the journal: no figures watch
    std::lock_guard lk(figures_mu_);
    std::erase_if(channels_, [&](const auto& c) {
      return std::none_of(s.tiers.begin(), s.tiers.end(),
                          [&](const TierStatus& t) { return t.name == c.first; });
    });
  }
  std::stable_sort(s.tiers.begin(), s.tiers.end(), [](const TierStatus& a, const TierStatus& b) {
    if (a.priority != b.priority) return a.priority > b.priority;
    return a.name < b.name;
  });

  if (auto v = fs.read_int(paths::sysctl("vm.swappiness"))) s.swappiness = static_cast<int>(*v);
  if (auto p = read_pressure(fs, paths::proc_pressure_memory)) s.memory_pressure = *p;
  if (auto p = read_pressure(fs, paths::proc_pressure_io)) s.io_pressure = *p;
  if (auto t = fs.read(paths::proc_meminfo))
    if (auto m = policy::parse_meminfo(*t)) {
      s.mem_total_bytes = m->mem_total();
      s.mem_available_bytes = m->mem_available();
    }
  read_rates(s);
  read_cgroup_pressure(s);
  return s;
}

void StatusObserver::said_locked(const std::string& tier, const std::string& why) {
  if (silent_.insert(tier).second && opts_.warn) opts_.warn("tier \"" + tier + "\": " + why);
}

bool StatusObserver::take_locked(const std::string& tier, TierControl& control) {
  auto t = control.take_figures();
  if (t) {
    if (!*t) return true;
    // An answer to a request sent before what a move's own reading saw is
    // older than that: not taken for newer.
    const auto l = latest_.find(tier);
    const auto sent = sent_.find(tier);
    if (l != latest_.end() && l->second.seen && sent != sent_.end() && l->second.at >= sent->second)
      return true;
    latest_[tier] = Latest{std::move(**t), opts_.now(), false};
    silent_.erase(tier);
    return true;
  }
  if (t.error().kind == ErrorKind::busy) return true;
  // The channel failed: what it said before is not the exporter's word now.
  latest_.erase(tier);
  said_locked(tier, no_figures(t.error()));
  return false;
}

void StatusObserver::figures_seen(const std::string& tier, const TierFigures& f) {
  std::lock_guard lk(figures_mu_);
  latest_[tier] = Latest{f, opts_.now(), true};
  silent_.erase(tier);
}

std::vector<std::pair<std::string, TierControl::FiguresWatch>> StatusObserver::figures_watches() {
  std::lock_guard lk(figures_mu_);
  std::vector<std::pair<std::string, TierControl::FiguresWatch>> out;
  for (const auto& [tier, control] : channels_) out.emplace_back(tier, control->figures_watch());
  return out;
}

bool StatusObserver::take_ready(const std::string& tier, std::uint64_t generation) {
  std::lock_guard lk(figures_mu_);
  const auto c = channels_.find(tier);
  if (c == channels_.end()) return false;
  const std::shared_ptr<TierControl> control = c->second;
  if (control->figures_watch().generation != generation) return false;
  return take_locked(tier, *control) && control->figures_watch().fd >= 0;
}

void StatusObserver::read_figures(TierStatus& ts, const OwnedTier& o, bool moving, bool poll) {
  if (moving && ts.state == TierState::active) ts.state = TierState::evacuating;
  std::shared_ptr<TierControl> control = opts_.control_for ? opts_.control_for(o) : nullptr;
  std::optional<TierFigures> f;
  {
    std::lock_guard lk(figures_mu_);
    if (!control) {
      latest_.erase(o.name);
      sent_.erase(o.name);
      channels_.erase(o.name);
    } else {
      if (poll) {
        channels_[o.name] = control;
        // Never waits: the answer comes to take_ready() or the next reading.
        auto r = control->request_figures();
        if (r && *r) sent_[o.name] = opts_.now();
        if (!r && r.error().kind != ErrorKind::busy) {
          latest_.erase(o.name);
          said_locked(o.name, no_figures(r.error()));
        }
      }
      take_locked(o.name, *control);
      if (auto l = latest_.find(o.name); l != latest_.end()) {
        const auto age = std::chrono::duration_cast<std::chrono::milliseconds>(opts_.now() - l->second.at);
        const auto age_ms = static_cast<std::uint64_t>(std::max<std::int64_t>(age.count(), 0));
        if (age_ms <= kFiguresMaxAgeMs) {
          f = l->second.figures;
          ts.exporter_figures_age_ms = age_ms;
        } else {
          said_locked(o.name, "its exporter has not answered for " + std::to_string(age_ms / 1000) +
                                  " s: its latency and where its blocks are stay unknown until it answers");
        }
      }
    }
  }
  // Where its blocks are: the exporter's word, else the journal's.
  const bool evacuated = f ? f->evacuated() : blocks_at(o) == BlocksAt::spill;
  if (!moving && evacuated && ts.state == TierState::active) ts.state = TierState::evacuated;
  if (!f) return;
  ts.exporter_live = true;
  ts.exporter_requests = f->requests;
  ts.exporter_read_bytes = f->read_bytes;
  ts.exporter_write_bytes = f->write_bytes;
  ts.exporter_queue_depth = f->queue_depth;
  ts.exporter_latency_p50_us = f->latency_p50_us;
  ts.exporter_latency_p99_us = f->latency_p99_us;
  ts.latency_p99_us = static_cast<std::uint32_t>(std::min(f->latency_p99_us + 0.5, 4e9));
  ts.resident_bytes = f->resident_bytes;
  ts.spilled_bytes = f->size_bytes > f->resident_bytes ? f->size_bytes - f->resident_bytes : 0;
  ts.spill = f->spill;
  ts.spill_ratio = f->spill_ratio;
  ts.spill_stored_bytes = f->spill_stored_bytes;
  ExporterCounters counters;
  for (const OpFigures& op : f->ops) counters.ops.push_back({op.op, op.requests, op.bytes});
  for (const auto& [upper_ns, count] : f->latency_buckets) counters.latency.push_back({upper_ns, count});
  ts.exporter = std::move(counters);
}

void StatusObserver::read_cgroup_pressure(Status& s) {
  for (const auto& name : engine_.configured_cgroups()) {
    auto rel = cgroup_relative_path(name);
    if (!rel) continue;
    const std::string path = std::string(paths::sys_fs_cgroup) + "/" + *rel + "/memory.pressure";
    if (auto p = read_pressure(engine_.fs(), path)) s.cgroup_pressure.push_back({name, *p});
  }
}

void StatusObserver::read_rates(Status& s) {
  auto t = engine_.fs().read(paths::proc_vmstat);
  if (!t) return;
  auto vm = policy::parse_vmstat(*t);
  if (!vm) return;
  const auto now = opts_.now();
  std::lock_guard lk(rates_mu_);
  if (!prev_vmstat_) {
    prev_vmstat_ = std::move(*vm);
    prev_time_ = now;
  } else {
    // Rates over at least a second: two status calls a moment apart must
    // not give noise (or 0) for the second one.
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

policy::Snapshot StatusObserver::snapshot_of(const Status& s, const Activity& activity) {
  const auto since = opts_.now() - start_;
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(since).count();
  std::map<std::string, std::uint64_t> sizes;
  for (const auto& c : engine_.configured_tiers()) sizes[c.name] = c.size_bytes;
  return make_snapshot(s, ms > 0 ? static_cast<std::uint64_t>(ms) : 0, opts_.providers.vram(), sizes,
                       opts_.providers.on_battery(), activity);
}

policy::Snapshot make_snapshot(const Status& s, std::uint64_t time_ms,
                               std::vector<policy::VramTierSample> vram,
                               const std::map<std::string, std::uint64_t>& sizes,
                               std::optional<bool> on_battery, const Activity& activity) {
  policy::Snapshot snap;
  snap.time_ms = time_ms;
  snap.memory = {s.memory_pressure.some.avg10, s.memory_pressure.full.avg10};
  snap.io = {s.io_pressure.some.avg10, s.io_pressure.full.avg10};
  snap.mem_available_bytes = s.mem_available_bytes;
  snap.mem_total_bytes = s.mem_total_bytes;
  for (const auto& t : s.tiers) snap.swap_used_bytes[t.name] = t.used_bytes;
  for (auto& g : vram) {
    if (g.tier_size_bytes == 0)
      if (auto it = sizes.find(g.tier); it != sizes.end()) g.tier_size_bytes = it->second;
  }
  for (auto& g : vram) {
    // The exporter's own p99 (the latency rule); a sample with a p99 of
    // its own (a trace, a test) keeps it.
    const auto t =
        std::find_if(s.tiers.begin(), s.tiers.end(), [&](const TierStatus& ts) { return ts.name == g.tier; });
    if (t != s.tiers.end() && t->exporter_live && g.p99_latency_us == 0)
      g.p99_latency_us = static_cast<std::uint64_t>(t->exporter_latency_p99_us + 0.5);
  }
  snap.vram = std::move(vram);
  for (const auto& c : s.cgroup_pressure)
    snap.cgroup_memory[c.cgroup] = {c.memory.some.avg10, c.memory.full.avg10};
  snap.swap_in_pages_per_s = s.swap_in_pages_per_s;
  snap.on_battery = on_battery.value_or(false);
  snap.reload_running = activity.reload_running;
  snap.user_demote_running = activity.user_operation_running;
  return snap;
}

}  // namespace tierswap
