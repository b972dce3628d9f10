#include "daemon/manager.hpp"

#include <cstdio>

#include "daemon/plan_ops.hpp"
#include "daemon/policy_spec.hpp"

namespace tierswap {

namespace {

ObserverOptions observer_options(const ManagerOptions& o, TierControls& controls) {
  ObserverOptions out;
  out.control_for = [&controls](const OwnedTier& t) { return controls.get(t); };
  out.warn = o.warn;
  if (o.now) out.now = o.now;
  out.providers = o.providers;
  if (!out.providers.vram) out.providers.vram = SignalProviders{}.vram;
  if (!out.providers.on_battery) out.providers.on_battery = SignalProviders{}.on_battery;
  return out;
}

// policy: settings, with each vram tier's own reserve resolved on its card.
policy::PolicySpec tick_policy_spec(const Engine& engine, const policy::Snapshot& snapshot) {
  const auto settings = engine.policy_settings();
  auto spec = to_policy_spec(settings);
  std::vector<TierReserveSource> reserves;
  for (const auto& t : engine.configured_tiers())
    if (t.kind == "vram") reserves.push_back({t.name, t.reserve, t.reserve_bytes});
  add_tier_reserves(spec, reserves, settings, snapshot.vram);
  return spec;
}

// The runner's channel to a tier, telling the observer what the runner's
// own (synchronous) figures readings saw: the status right after a move
// shows where the blocks are now, not an answer from before it ended.
class SeenControl final : public TierControl {
 public:
  SeenControl(std::shared_ptr<TierControl> inner, std::function<void(const TierFigures&)> seen)
      : inner_(std::move(inner)), seen_(std::move(seen)) {}
  Result<MoveStatus> evacuate() override { return inner_->evacuate(); }
  Result<MoveStatus> promote() override { return inner_->promote(); }
  Result<MoveStatus> progress() override { return inner_->progress(); }
  Result<MoveStatus> cancel() override { return inner_->cancel(); }
  Result<TierFigures> figures(int timeout_ms) override {
    auto f = inner_->figures(timeout_ms);
    if (f) seen_(*f);
    return f;
  }
  Result<bool> request_figures() override { return inner_->request_figures(); }
  Result<std::optional<TierFigures>> take_figures() override { return inner_->take_figures(); }
  FiguresWatch figures_watch() override { return inner_->figures_watch(); }

 private:
  std::shared_ptr<TierControl> inner_;
  std::function<void(const TierFigures&)> seen_;
};

}  // namespace

Manager::Manager(Engine& engine, ManagerOptions opts)
    : engine_(engine),
      opts_([&] {
        if (!opts.info) opts.info = [](const std::string&) {};
        if (!opts.warn) opts.warn = [](const std::string&) {};
        return std::move(opts);
      }()),
      events_(opts_.info),
      controls_(engine_.fs(), opts_.control_factory),
      runner_(engine_, events_,
              RunnerOptions{opts_.poll_interval, opts_.warn,
                            [this](bool on) { set_state(on ? "reloading" : "running"); },
                            [this](const OwnedTier& t) -> std::shared_ptr<TierControl> {
                              auto c = controls_.get(t);
                              if (!c) return nullptr;
                              return std::make_shared<SeenControl>(
                                  std::move(c), [this, tier = t.name](const TierFigures& f) {
                                    observer_.figures_seen(tier, f);
                                  });
                            }}),
      observer_(engine_, observer_options(opts_, controls_)),
      policy_(runner_, events_, PolicyLoopOptions{opts_.warn, opts_.record}) {}

Manager::~Manager() {
  runner_.wait_idle();
}

void Manager::set_events(ManagerEvents events) {
  events_.set(std::move(events));
}

void Manager::set_state(std::string state) {
  std::lock_guard lk(mu_);
  state_ = std::move(state);
}

bool Manager::busy() const {
  return runner_.running().has_value();
}

Observation Manager::observe(bool poll_figures) {
  Activity a;
  a.poll_figures = poll_figures;
  if (const auto r = runner_.running()) {
    if (r->spill)
      a.moving_tier = r->tier;
    else if (r->what == "demote" || r->what == "evacuate")
      a.draining_tier = r->tier;
    a.reload_running = r->what == "reload";
    a.user_operation_running = r->caller.user && r->what != "reload";
  }
  return observer_.observe(a);
}

Status Manager::status() {
  return completed(observe(false).status);
}

Status Manager::completed(Status s) {
  s.version = opts_.version;
  {
    std::lock_guard lk(mu_);
    s.state = state_;
    s.suspend = suspend_;
  }
  s.policy_actions = policy_.counters();
  return s;
}

void Manager::alert_pressure(const Status& s) {
  struct Resource {
    const char* name;
    const Pressure& p;
    policy::PressureAlertState& state;
  };
  std::lock_guard lk(pressure_mu_);
  for (Resource r :
       {Resource{"memory", s.memory_pressure, memory_alert_}, Resource{"io", s.io_pressure, io_alert_}}) {
    // No PSI on this kernel reads as 0: nothing to alert on.
    if (!policy::pressure_alert(r.state, r.p.some.avg10)) continue;
    char line[160];
    std::snprintf(line, sizeof line,
                  "%s pressure: some tasks stalled %.2f%% of the last 10 s (all tasks %.2f%%)", r.name,
                  r.p.some.avg10, r.p.full.avg10);
    opts_.warn(line);
    events_.pressure(r.name, r.p.some.avg10, r.p.full.avg10);
  }
}

void Manager::check_pressure() {
  alert_pressure(observe(false).status);
}

Manager::GpuWatch Manager::gpu_watch() {
  GpuWatch w;
  std::set<std::string> on_device;
  for (const auto& t : engine_.journal().tiers)
    if (blocks_at(t) == BlocksAt::device) on_device.insert(t.name);
  std::lock_guard lk(watch_mu_);
  std::set<std::string> hot;
  if (!on_device.empty()) {
    policy::Snapshot snapshot;
    snapshot.vram = opts_.providers.vram();
    const auto spec = tick_policy_spec(engine_, snapshot);
    for (const auto& g : snapshot.vram) {
      if (!on_device.contains(g.tier)) continue;
      w.watching = true;
      if (policy::vram_rule(g, spec).empty()) continue;
      hot.insert(g.tier);
      if (!watch_hot_.contains(g.tier)) w.tick_now = true;
    }
  }
  watch_hot_ = std::move(hot);
  return w;
}

Status Manager::tick() {
  Observation o = observe(true);
  alert_pressure(o.status);
  policy_.decide(o, tick_policy_spec(engine_, o.snapshot));
  return completed(std::move(o.status));
}

Result<void> Manager::reload() {
  return reload_as(std::nullopt);
}

Result<void> Manager::reload_as(std::optional<uid_t> uid) {
  auto r = runner_.reload(Caller::dbus(uid));
  if (!r) return std::unexpected(r.error());
  return {};
}

Result<void> Manager::start_reload_as(std::optional<uid_t> uid, std::function<void(Result<void>)> done) {
  return runner_.start_reload(Caller::dbus(uid), [done = std::move(done)](Result<std::size_t> r) {
    done(r ? Result<void>{} : Result<void>(std::unexpected(r.error())));
  });
}

Result<void> Manager::start_reload_steps(const std::string& why,
                                         std::function<void(Result<std::size_t>)> done) {
  return runner_.start_reload(Caller::signal(why), std::move(done));
}

Result<std::string> Manager::plan_json() {
  auto p = engine_.plan();
  if (!p) return std::unexpected(p.error());
  return plan_to_json(*p);
}

Result<void> Manager::demote(const std::string& tier) {
  return demote_as(tier, std::nullopt);
}

Result<void> Manager::demote_as(const std::string& tier, std::optional<uid_t> uid) {
  return runner_.demote(tier, Caller::dbus(uid));
}

Result<void> Manager::promote(const std::string& tier) {
  return promote_as(tier, std::nullopt);
}

Result<void> Manager::promote_as(const std::string& tier, std::optional<uid_t> uid) {
  return runner_.promote(tier, Caller::dbus(uid));
}

Result<void> Manager::evacuate_for(const std::string& tier, const Caller& caller) {
  return runner_.evacuate(tier, caller);
}

Result<void> Manager::promote_for(const std::string& tier, const Caller& caller) {
  return runner_.promote(tier, caller);
}

void Manager::set_suspend(SuspendStatus s) {
  std::lock_guard lk(mu_);
  suspend_ = std::move(s);
}

bool Manager::abort_demote(const std::string& why) {
  return runner_.abort(why);
}

void Manager::wait_idle() {
  runner_.wait_idle();
}

}  // namespace tierswap
