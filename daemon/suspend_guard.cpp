#include "daemon/suspend_guard.hpp"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <deque>
#include <mutex>

#include "backends/hostfs/paths.hpp"
#include "backends/swap/proc_swaps.hpp"
#include "common/byte_format.hpp"
#include "daemon/kind_registry.hpp"
#include "dbus/logind.hpp"
#include "policy/sleep_drain.hpp"

namespace tierswap {

namespace {

constexpr const char* kWho = "tierswap";
constexpr const char* kWhat = "sleep";

std::string names(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& n : v) out += (out.empty() ? "" : ", ") + n;
  return out;
}

}  // namespace

SleepNeeds sleep_needs(const std::vector<SleepTier>& tiers) {
  SleepNeeds n;
  std::vector<std::string> blocked;
  std::string loss;
  for (const auto& t : tiers) {
    if (!t.up) continue;
    n.drain.push_back(t.name);
    if (loss.empty()) loss = t.loss;
    if (t.used > 0 && t.room && !t.room->fits)
      blocked.push_back("tier " + t.name + " holds " + format_bytes(t.used) +
                        " that cannot be drained (the other swap areas have " + format_bytes(t.room->room) +
                        " free; draining needs " + format_bytes(t.room->need + t.room->margin) +
                        " with its margin) and " + t.loss);
  }
  if (!n.drain.empty())
    n.delay = "drains tier" + std::string(n.drain.size() == 1 ? " " : "s ") + names(n.drain) +
              " before sleep: " + loss;
  for (const auto& b : blocked) n.block += (n.block.empty() ? "" : "; ") + b;
  return n;
}

std::optional<std::string> sleep_delay_warning(const std::vector<SleepTier>& tiers,
                                               std::optional<std::chrono::microseconds> delay_max,
                                               const std::map<std::string, std::uint64_t>& rates) {
  if (!delay_max) return std::nullopt;
  std::vector<policy::DrainTier> drain;
  for (const auto& t : tiers) {
    if (!t.up) continue;
    const auto r = rates.find(t.name);
    drain.push_back({t.name, t.used, t.spill, r == rates.end() ? 0 : r->second});
  }
  return policy::sleep_drain_warning(drain, *delay_max);
}

std::vector<SleepTier> sleep_tiers(const Engine& engine) {
  std::vector<SleepTier> out;
  const HostFs& fs = engine.fs();
  std::optional<std::vector<swap::SwapArea>> areas;
  for (const auto& o : engine.journal().tiers) {
    if (!o.failed.empty() || o.swap_path.empty()) continue;
    const TierKind* k = kinds::for_tier(o.kind);
    if (!k) continue;
    auto loss = k->suspend_loss(o, fs);
    if (!loss) continue;
    SleepTier t;
    t.name = o.name;
    t.swap_path = o.swap_path;
    t.loss = std::move(*loss);
    // An evacuated tier's blocks sit in its spill store (RAM or a file), which
    // survives sleep; only a tier whose blocks are in VRAM is up.
    t.up = blocks_at(o) == BlocksAt::device;
    t.spill = !o.spill.empty();
    if (t.up) {
      if (!areas) {
        auto text = fs.read(paths::proc_swaps);
        auto parsed = text ? swap::parse_proc_swaps(*text) : Result<std::vector<swap::SwapArea>>{};
        areas = parsed ? *parsed : std::vector<swap::SwapArea>{};
      }
      if (const auto a = swap::find_area(*areas, o.swap_path)) t.used = a->used_kib * 1024;
      // A tier with a spill store evacuates into it: no other swap area needs room.
      if (t.used > 0 && o.spill.empty())
        if (auto v = swapoff_room_now(fs, o.swap_path)) t.room = *v;
    }
    out.push_back(std::move(t));
  }
  return out;
}

struct SuspendGuard::Impl {
  sd_event* loop = nullptr;
  Engine& engine;
  Manager& manager;
  SuspendGuardOptions options;

  // Queue from logind's thread onto the loop.
  int wake_fd = -1;
  sd_event_source* wake_src = nullptr;
  std::mutex mu;
  std::deque<std::function<void()>> inbox;

  sd_event_source* step_src = nullptr;
  std::unique_ptr<dbus::LogindClient> logind;
  bool connected = false;
  std::string logind_why;  // why not connected

  dbus::Inhibitor delay, block;
  bool delay_pending = false, block_pending = false;
  std::string delay_error, block_error;  // the last refusal said

  // logind's InhibitDelayMaxUSec, once read; the drain-time warning now,
  // and the InhibitDelayMaxSec last recommended in the log.
  std::optional<std::chrono::microseconds> delay_max;
  std::string delay_warning;
  std::string delay_warning_said;
  // Bytes per second each tier's last drain before sleep ran at.
  std::map<std::string, std::uint64_t> rates;
  struct DrainStart {
    std::uint64_t used = 0;
    std::chrono::steady_clock::time_point at;
  };
  std::optional<DrainStart> drain_start;

  bool sleeping = false;
  std::deque<std::string> to_drain;            // before sleep, not yet started
  std::optional<std::string> draining;         // started by us, maybe still running
  std::vector<std::string> drained_for_sleep;  // to promote after waking
  SleepNeeds needs;

  Impl(Engine& e, Manager& m) : engine(e), manager(m) {}

  void post(std::function<void()> f) {
    {
      std::lock_guard lk(mu);
      inbox.push_back(std::move(f));
    }
    const std::uint64_t one = 1;
    (void)!::write(wake_fd, &one, sizeof one);
  }

  static int on_wake(sd_event_source*, int fd, uint32_t, void* u) {
    auto* self = static_cast<Impl*>(u);
    std::uint64_t v = 0;
    (void)!::read(fd, &v, sizeof v);
    std::deque<std::function<void()>> todo;
    {
      std::lock_guard lk(self->mu);
      todo.swap(self->inbox);
    }
    for (auto& f : todo) f();
    return 0;
  }

  static int on_step(sd_event_source*, uint64_t, void* u) {
    static_cast<Impl*>(u)->step();
    return 0;
  }

  void arm_step() {
    uint64_t now = 0;
    sd_event_now(loop, CLOCK_MONOTONIC, &now);
    sd_event_source_set_time(step_src, now + static_cast<uint64_t>(options.step.count()) * 1000);
    sd_event_source_set_enabled(step_src, SD_EVENT_ONESHOT);
  }

  void publish() {
    SuspendStatus s;
    if (block.held())
      s.inhibitor = "block";
    else if (delay.held())
      s.inhibitor = "delay";
    if (!needs.block.empty())
      s.detail = needs.block + (block.held() ? "" : " (no block lock: " + not_held_why(block_error) + ")");
    else if (!needs.delay.empty())
      s.detail = needs.delay + (delay.held() ? "" : " (no delay lock: " + not_held_why(delay_error) + ")");
    if (!delay_warning.empty() && !needs.delay.empty()) s.detail += "; TOO SLOW: " + delay_warning;
    if (sleeping) s.detail = "draining before sleep: " + s.detail;
    manager.set_suspend(std::move(s));
  }

  std::string not_held_why(const std::string& refusal) const {
    if (!connected) return logind_why.empty() ? "logind not reached yet" : logind_why;
    return refusal.empty() ? "asked for" : refusal;
  }

  void ask(const char* mode, const std::string& why) {
    bool& pending = std::string(mode) == "delay" ? delay_pending : block_pending;
    if (pending || !logind || !connected) return;
    pending = true;
    logind->inhibit(kWhat, kWho, why, mode, [this, m = std::string(mode)](Result<dbus::Inhibitor> r) {
      auto shared = std::make_shared<Result<dbus::Inhibitor>>(std::move(r));
      post([this, m, shared] { got_lock(m, std::move(*shared)); });
    });
  }

  void got_lock(const std::string& mode, Result<dbus::Inhibitor> r) {
    const bool is_delay = mode == "delay";
    (is_delay ? delay_pending : block_pending) = false;
    std::string& said = is_delay ? delay_error : block_error;
    if (!r) {
      if (r.error().message != said) {
        said = r.error().message;
        if (options.warn) options.warn("suspend: " + said);
      }
      publish();
      return;
    }
    said.clear();
    const bool wanted = is_delay ? (!needs.delay.empty() && !sleeping) : !needs.block.empty();
    if (!wanted) {
      publish();
      return;  // no longer needed: the lock closes here
    }
    (is_delay ? delay : block) = std::move(*r);
    if (options.info)
      options.info(is_delay ? "suspend: holding a delay lock: tierswapd " + needs.delay
                            : "suspend: BLOCKED while " + needs.block);
    publish();
  }

  void on_connection(bool up, const std::string& why) {
    connected = up;
    logind_why = up ? "" : why;
    if (options.info) options.info("suspend: " + why);
    if (!up) {
      // logind is gone: the locks it gave went with it.
      delay.reset();
      block.reset();
      delay_pending = block_pending = false;
    }
    update();
  }

  void on_delay_max(std::chrono::microseconds d) {
    delay_max = d;
    update();
  }

  // The drain-time warning, said in the log when it appears or its
  // recommended setting changes.
  void check_delay(const std::vector<SleepTier>& tiers) {
    const auto w = sleep_delay_warning(tiers, delay_max, rates);
    delay_warning = w.value_or("");
    if (!w) {
      if (!delay_warning_said.empty() && options.info)
        options.info("suspend: the drain before sleep fits logind's InhibitDelayMaxUSec again");
      delay_warning_said.clear();
      return;
    }
    const auto at = w->find("InhibitDelayMaxSec=");
    const std::string key = w->substr(at, w->find(' ', at) - at);
    if (key != delay_warning_said && options.warn) options.warn("suspend: " + *w);
    delay_warning_said = key;
  }

  void update() {
    if (sleeping) return;  // the locks change only once the machine is awake
    const auto tiers = sleep_tiers(engine);
    needs = sleep_needs(tiers);
    check_delay(tiers);
    if (needs.drain.empty() && !logind) {
      manager.set_suspend({});
      return;  // no tier to guard: logind is not needed
    }
    if (!logind) {
      dbus::LogindOptions lo;
      lo.address = options.bus_address;
      logind = dbus::LogindClient::start(
          lo,
          {.prepare_for_sleep = [this](bool start) { post([this, start] { on_prepare(start); }); },
           .connection =
               [this](bool up, const std::string& why) { post([this, up, why] { on_connection(up, why); }); },
           .inhibit_delay_max =
               [this](std::chrono::microseconds d) { post([this, d] { on_delay_max(d); }); }});
    }
    if (needs.delay.empty()) {
      if (delay.held() && options.info)
        options.info("suspend: no tier to drain before sleep; delay lock released");
      delay.reset();
    } else if (!delay.held()) {
      ask("delay", "tierswapd " + needs.delay);
    }
    if (needs.block.empty()) {
      if (block.held() && options.info) options.info("suspend: no longer blocked; block lock released");
      block.reset();
    } else if (!block.held()) {
      ask("block", needs.block);
    }
    publish();
  }

  void on_prepare(bool start) {
    if (start) {
      if (sleeping) return;
      sleeping = true;
      to_drain.assign(needs.drain.begin(), needs.drain.end());
      if (options.info)
        options.info(to_drain.empty() ? "suspend: logind PrepareForSleep: nothing to drain"
                                      : "suspend: logind PrepareForSleep: draining " +
                                            names({to_drain.begin(), to_drain.end()}) + " before sleep");
      publish();
      step();
      return;
    }
    if (!sleeping) return;
    sleeping = false;
    to_drain.clear();  // not started before the machine slept: nothing to undo
    if (options.info) options.info("suspend: logind PrepareForSleep(false): the machine woke up");
    step();
  }

  // The rate the drain that just ended ran at, for the next estimate (only
  // a drain long and large enough to say something: 64 MiB, 100 ms).
  void note_rate(const std::string& tier) {
    if (!drain_start) return;
    const auto took =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - drain_start->at).count();
    if (drain_start->used < (64ULL << 20) || took < 0.1) return;
    rates[tier] = static_cast<std::uint64_t>(static_cast<double>(drain_start->used) / took);
    if (options.info)
      options.info("suspend: tier " + tier + " drained " + format_bytes(drain_start->used) + " at " +
                   format_bytes(rates[tier]) + "/s");
  }

  // One step of the work around sleep; re-armed while there is more.
  void step() {
    if (manager.busy()) {
      arm_step();
      return;
    }
    if (draining) {
      // Our drain ended: drained, or refused/failed (the runner said why).
      const auto j = engine.journal();
      for (const auto& o : j.tiers)
        if (const BlocksAt at = blocks_at(o);
            o.name == *draining && (at == BlocksAt::drained || at == BlocksAt::spill)) {
          drained_for_sleep.push_back(o.name);
          note_rate(o.name);
        }
      draining.reset();
      drain_start.reset();
    }
    if (sleeping) {
      while (!to_drain.empty()) {
        const std::string tier = to_drain.front();
        to_drain.pop_front();
        std::uint64_t used = 0;
        for (const auto& t : sleep_tiers(engine))
          if (t.name == tier) used = t.used;
        auto r = manager.evacuate_for(tier, Caller{"logind PrepareForSleep", "", true});
        if (r) {
          draining = tier;
          drain_start = DrainStart{used, std::chrono::steady_clock::now()};
          arm_step();
          return;
        }
        if (options.warn)
          options.warn("suspend: tier " + tier + " cannot be drained before sleep: " + r.error().message +
                       "; if the machine sleeps now, the pages on it are lost (their owners get SIGBUS)");
      }
      // Everything that could be drained is: logind may go on.
      if (delay.held() && options.info) options.info("suspend: drained; releasing the delay lock");
      delay.reset();
      publish();
      return;
    }
    // Awake again: bring back what was drained for the sleep.
    for (const auto& tier : drained_for_sleep) {
      auto r = manager.promote_for(tier, Caller{"logind PrepareForSleep(false)", "", true});
      if (!r && options.warn)
        options.warn("suspend: tier " + tier + " stays drained after waking: " + r.error().message);
    }
    drained_for_sleep.clear();
    update();
  }
};

Result<std::unique_ptr<SuspendGuard>> SuspendGuard::attach(sd_event* loop, Engine& engine, Manager& manager,
                                                           SuspendGuardOptions options) {
  auto impl = std::make_unique<Impl>(engine, manager);
  impl->loop = loop;
  impl->options = std::move(options);
  impl->wake_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (impl->wake_fd < 0) return kernel_error(errno, "eventfd for the suspend guard");
  if (int r = sd_event_add_io(loop, &impl->wake_src, impl->wake_fd, EPOLLIN, &Impl::on_wake, impl.get());
      r < 0) {
    ::close(impl->wake_fd);
    return kernel_error(-r, "cannot watch the suspend guard's queue on the event loop");
  }
  if (int r = sd_event_add_time(loop, &impl->step_src, CLOCK_MONOTONIC, UINT64_MAX, 0, &Impl::on_step,
                                impl.get());
      r < 0) {
    sd_event_source_disable_unref(impl->wake_src);
    ::close(impl->wake_fd);
    return kernel_error(-r, "cannot add the suspend guard's timer to the event loop");
  }
  sd_event_source_set_enabled(impl->step_src, SD_EVENT_OFF);
  auto g = std::unique_ptr<SuspendGuard>(new SuspendGuard(std::move(impl)));
  g->update();
  return g;
}

SuspendGuard::SuspendGuard(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

SuspendGuard::~SuspendGuard() {
  impl_->logind.reset();  // joins its thread: nothing is posted after this
  impl_->step_src = sd_event_source_disable_unref(impl_->step_src);
  impl_->wake_src = sd_event_source_disable_unref(impl_->wake_src);
  if (impl_->wake_fd >= 0) ::close(impl_->wake_fd);
  impl_->manager.set_suspend({});
}

void SuspendGuard::update() {
  impl_->update();
}

}  // namespace tierswap
