#include "daemon/engine.hpp"

#include "backends/hostfs/paths.hpp"
#include "config/loader.hpp"
#include "daemon/apply.hpp"
#include "daemon/observe.hpp"
#include "daemon/plan_ops.hpp"

namespace tierswap {

Engine::Engine(EngineOptions opts, std::unique_ptr<swap::Kernel> kernel)
    : opts_(std::move(opts)), fs_(opts_.root), kernel_(std::move(kernel)) {
  if (!kernel_ && opts_.fake_kernel && !fs_.is_real_root())
    kernel_ = std::make_unique<swap::RecordingKernel>(&fs_);
  if (!kernel_) kernel_ = std::make_unique<swap::RealKernel>(fs_);
  if (!opts_.info) opts_.info = [](const std::string&) {};
  if (!opts_.warn) opts_.warn = [](const std::string&) {};
}

std::string Engine::config_source() const {
  std::lock_guard lk(mu_);
  return source_;
}

Journal Engine::journal() const {
  std::lock_guard lk(mu_);
  return journal_;
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
  if (!lr.ok() || !lr.spec) return fail(EINVAL, errors.empty() ? "config did not load" : errors);
  out.spec = std::move(*lr.spec);
  return out;
}

Result<Plan> Engine::plan_locked(const LoadedConfig& cfg) {
  auto obs = observe(fs_);
  if (!obs) return std::unexpected(obs.error());
  auto pr = make_plan(cfg.spec, *obs, journal_, fs_);
  std::string errors;
  for (const auto& d : cfg.warnings) opts_.warn(config::format_diagnostic(d));
  for (const auto& d : pr.diagnostics) {
    if (d.severity == config::Severity::error)
      errors += (errors.empty() ? "" : "\n") + config::format_diagnostic(d);
    else
      opts_.warn(config::format_diagnostic(d));
  }
  if (!pr.ok()) return fail(EINVAL, errors);
  return std::move(pr.plan);
}

Result<std::size_t> Engine::apply_locked() {
  auto cfg = load();
  if (!cfg) return std::unexpected(cfg.error());
  auto plan = plan_locked(*cfg);
  if (!plan) return std::unexpected(plan.error());
  for (const auto& n : plan->notes) opts_.info(n);
  auto remember = [&] {
    configured_.clear();
    for (const auto& t : cfg->spec.tiers)
      configured_.push_back({t.name, config::to_string(t.kind),
                             t.kind == config::TierKind::partition ? t.device : t.path, t.priority});
    source_ = cfg->spec.source;
  };
  if (plan->empty()) {
    remember();
    return std::size_t{0};
  }
  journal_.source = cfg->spec.source;
  Executor ex(fs_, *kernel_, journal_);
  ApplyOptions ao;
  ao.fail_step = opts_.fail_step;
  ao.log = opts_.info;
  if (auto r = ex.apply(*plan, ao); !r) return std::unexpected(r.error());
  remember();
  return plan->steps.size();
}

Result<void> Engine::start() {
  std::lock_guard lk(mu_);
  auto j = load_journal(fs_);
  if (!j) {
    opts_.warn(j.error().describe() + ": starting with an empty journal");
    j = Journal{};
  }
  journal_ = std::move(*j);
  if (!journal_.empty()) {
    auto obs = observe(fs_);
    if (!obs) return std::unexpected(obs.error());
    for (const auto& line : reconcile(journal_, *obs, fs_)) opts_.info("journal: " + line);
    if (auto r = save_journal(fs_, journal_); !r) opts_.warn("journal: " + r.error().describe());
  }
  auto n = apply_locked();
  if (!n) return std::unexpected(n.error());
  opts_.info(*n == 0 ? "applied: nothing to do" : "applied " + std::to_string(*n) + " steps");
  return {};
}

Result<std::size_t> Engine::reload() {
  std::lock_guard lk(mu_);
  if (busy_) return fail(EBUSY, "tier \"" + *busy_ + "\" is being demoted: reload once that has ended");
  return apply_locked();
}

Result<OwnedTier> Engine::begin_demote(const std::string& tier) {
  std::lock_guard lk(mu_);
  if (busy_) return fail(EBUSY, "tier \"" + *busy_ + "\" is being demoted: one demote or promote at a time");
  auto* t = journal_.find_tier(tier);
  if (!t) return fail(EINVAL, "tier \"" + tier + "\" is not set up (unavailable): nothing to demote");
  if (t->drained)
    return fail(EBUSY,
                "tier \"" + tier + "\" is drained already (tierswapctl promote " + tier + " puts it back)");
  if (!t->active) return fail(EINVAL, "tier \"" + tier + "\" is not active: nothing to demote");
  busy_ = tier;
  return *t;
}

Result<void> Engine::end_demote(const std::string& tier, bool drained) {
  std::lock_guard lk(mu_);
  if (busy_ == tier) busy_.reset();
  if (!drained) return {};
  auto* t = journal_.find_tier(tier);
  if (!t) return fail(ENOENT, "tier \"" + tier + "\" is no longer in the journal");
  t->active = false;
  t->drained = true;
  return save_journal(fs_, journal_);
}

Result<OwnedTier> Engine::promote(const std::string& tier) {
  std::lock_guard lk(mu_);
  if (busy_) return fail(EBUSY, "tier \"" + *busy_ + "\" is being demoted: one demote or promote at a time");
  auto* t = journal_.find_tier(tier);
  if (!t) return fail(EINVAL, "tier \"" + tier + "\" is not set up (unavailable): nothing to promote");
  if (!t->drained)
    return fail(EBUSY, "tier \"" + tier + "\" is " + (t->active ? "active" : "not drained") +
                           ": only a drained tier can be promoted");
  if (auto r = kernel_->swapon(t->swap_path, t->priority, t->discard); !r)
    return wrap(r.error(), "promote \"" + tier + "\"");
  t->active = true;
  t->drained = false;
  if (auto r = save_journal(fs_, journal_); !r) opts_.warn("journal: " + r.error().describe());
  return *t;
}

std::optional<std::string> Engine::busy_tier() const {
  std::lock_guard lk(mu_);
  return busy_;
}

std::vector<Engine::ConfiguredTier> Engine::configured_tiers() const {
  std::lock_guard lk(mu_);
  return configured_;
}

Result<Plan> Engine::plan() {
  std::lock_guard lk(mu_);
  auto cfg = load();
  if (!cfg) return std::unexpected(cfg.error());
  return plan_locked(*cfg);
}

Result<void> Engine::stop() {
  std::lock_guard lk(mu_);
  if (opts_.keep_on_exit) {
    opts_.info("--keep-on-exit: leaving the tiers in place; the journal stays for the next start");
    return {};
  }
  auto obs = observe(fs_);
  if (!obs) return std::unexpected(obs.error());
  const Plan p = make_teardown(journal_, *obs);
  Executor ex(fs_, *kernel_, journal_);
  ApplyOptions ao;
  ao.best_effort = true;
  ao.log = opts_.info;
  auto r = ex.apply(p, ao);
  if (r) {
    journal_ = Journal{};
    (void)save_journal(fs_, journal_);
  }
  return r;
}

}  // namespace tierswap
