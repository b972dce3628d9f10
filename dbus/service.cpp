#include "dbus/service.hpp"

#include <poll.h>
#include <sdbus-c++/sdbus-c++.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

#include "dbus/caller_access.hpp"
#include "dbus/manager1_adaptor.h"
#include "dbus/names.hpp"
#include "dbus/status_json.hpp"
#include "dbus/tier1_adaptor.h"

namespace tierswap::dbus {

namespace {

// Work for the bus thread, queued from any thread.
struct Inbox {
  std::mutex mu;
  std::deque<std::function<void()>> work;
  bool closed = false;
  int wake_fd = -1;

  void post(std::function<void()> f) {
    {
      std::lock_guard lock(mu);
      if (closed) return;
      work.push_back(std::move(f));
    }
    const std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(wake_fd, &one, sizeof one);
  }
  std::deque<std::function<void()>> take() {
    std::lock_guard lock(mu);
    return std::exchange(work, {});
  }
};

[[noreturn]] void raise(const Error& e) {
  const char* name = error_name_for(e.code);
  // Mapped codes carry a complete message; strerror adds nothing there.
  throw sdbus::Error(name, name == std::string(kErrFailed) ? e.describe() : e.message);
}

std::map<std::string, double> pressure_map(const Pressure& p) {
  return {{"some_avg10", p.some.avg10}, {"some_avg60", p.some.avg60}, {"some_avg300", p.some.avg300},
          {"full_avg10", p.full.avg10}, {"full_avg60", p.full.avg60}, {"full_avg300", p.full.avg300}};
}

bool same_avgs(const Pressure& a, const Pressure& b) {
  return pressure_map(a) == pressure_map(b);
}

class TierObject final
    : public sdbus::AdaptorInterfaces<org::tierswap::Tier1_adaptor, sdbus::ManagedObject_adaptor,
                                      sdbus::Properties_adaptor> {
 public:
  TierObject(sdbus::IConnection& bus, TierStatus t)
      : AdaptorInterfaces(bus, tier_object_path(t.name)), t_(std::move(t)) {
    registerAdaptor();
  }
  ~TierObject() { unregisterAdaptor(); }

  // Takes the new values; returns the names of the properties that changed.
  std::vector<std::string> update(const TierStatus& n) {
    std::vector<std::string> changed;
    if (n.device != t_.device) changed.emplace_back("Device");
    if (n.priority != t_.priority) changed.emplace_back("Priority");
    if (n.state != t_.state) changed.emplace_back("State");
    if (n.size_bytes != t_.size_bytes) changed.emplace_back("SizeBytes");
    if (n.used_bytes != t_.used_bytes) changed.emplace_back("UsedBytes");
    if (n.stored_bytes != t_.stored_bytes) changed.emplace_back("StoredBytes");
    if (n.compression_ratio != t_.compression_ratio) changed.emplace_back("CompressionRatio");
    if (n.latency_p99_us != t_.latency_p99_us) changed.emplace_back("LatencyP99Us");
    t_ = n;
    return changed;
  }
  [[nodiscard]] const TierStatus& data() const { return t_; }

 private:
  std::string Name() override { return t_.name; }
  std::string Kind() override { return t_.kind; }
  std::string Device() override { return t_.device; }
  int32_t Priority() override { return t_.priority; }
  std::string State() override { return to_string(t_.state); }
  uint64_t SizeBytes() override { return t_.size_bytes; }
  uint64_t UsedBytes() override { return t_.used_bytes; }
  uint64_t StoredBytes() override { return t_.stored_bytes; }
  double CompressionRatio() override { return t_.compression_ratio; }
  uint32_t LatencyP99Us() override { return t_.latency_p99_us; }

  TierStatus t_;
};

class ManagerObject;

}  // namespace

struct DbusService::Impl {
  ManagerApi& manager;
  DbusOptions options;
  std::unique_ptr<sdbus::IConnection> bus;
  // org.freedesktop.DBus.ObjectManager at /org/tierswap: an object manager
  // covers the subtree below its path, and the tiers live beside the manager
  // (/org/tierswap/Tier/<name>), so it sits at their common parent.
  std::unique_ptr<sdbus::IObject> object_manager;
  std::unique_ptr<ManagerObject> object;
  std::map<std::string, std::unique_ptr<TierObject>> tiers;
  Status cache;
  std::shared_ptr<Inbox> inbox = std::make_shared<Inbox>();
  std::thread thread;
  std::atomic<bool> stopping{false};
  std::string unique_name;

  Impl(ManagerApi& m, DbusOptions o) : manager(m), options(std::move(o)) {}
  ~Impl();

  void apply(const Status& fresh, bool emit);
  void loop();
  // Privileged-method prologue: caller check, then the tier name.
  void check_mutation(const std::string& method, const std::string* tier);
};

namespace {

class ManagerObject final
    : public sdbus::AdaptorInterfaces<org::tierswap::Manager1_adaptor, sdbus::Properties_adaptor> {
 public:
  ManagerObject(sdbus::IConnection& bus, DbusService::Impl& svc)
      : AdaptorInterfaces(bus, kManagerPath), svc_(svc) {
    registerAdaptor();
  }
  ~ManagerObject() { unregisterAdaptor(); }

  [[nodiscard]] const sdbus::Message& current_call() const {
    return *getObject().getCurrentlyProcessedMessage();
  }

 private:
  void Reload() override {
    svc_.check_mutation("Reload", nullptr);
    auto r = svc_.manager.reload();
    svc_.apply(svc_.manager.status(), true);
    if (!r) raise(r.error());
  }
  std::string Plan() override {
    auto r = svc_.manager.plan_json();
    if (!r) raise(r.error());
    return *r;
  }
  void Demote(const std::string& tier) override {
    svc_.check_mutation("Demote", &tier);
    auto r = svc_.manager.demote(tier);
    if (!r) raise(r.error());
    svc_.apply(svc_.manager.status(), true);
  }
  void Promote(const std::string& tier) override {
    svc_.check_mutation("Promote", &tier);
    auto r = svc_.manager.promote(tier);
    if (!r) raise(r.error());
    svc_.apply(svc_.manager.status(), true);
  }
  std::string GetStatus() override {
    Status s = svc_.manager.status();
    std::string json = status_to_json(s);
    svc_.apply(s, true);
    return json;
  }

  std::string Version() override { return svc_.cache.version; }
  std::string State() override { return svc_.cache.state; }
  int32_t Swappiness() override { return svc_.cache.swappiness; }
  std::map<std::string, double> MemoryPressure() override { return pressure_map(svc_.cache.memory_pressure); }
  std::map<std::string, double> IoPressure() override { return pressure_map(svc_.cache.io_pressure); }

  DbusService::Impl& svc_;
};

}  // namespace

void DbusService::Impl::check_mutation(const std::string& method, const std::string* tier) {
  const AccessPolicy policy{.use_polkit = options.use_polkit};
  if (auto ok = authorize_caller(*bus, object->current_call(), method, policy); !ok) raise(ok.error());
  if (tier == nullptr) return;
  if (auto ok = check_tier_name(*tier); !ok) {
    throw sdbus::Error(kErrInvalidArgument, method + ": " + ok.error().message);
  }
  const Status s = manager.status();
  std::string names;
  for (const auto& t : s.tiers) {
    if (t.name == *tier) return;
    names += (names.empty() ? "" : ", ") + t.name;
  }
  throw sdbus::Error(kErrNoSuchTier, method + ": no tier named \"" + *tier +
                                         "\" (tiers: " + (names.empty() ? "none" : names) + ")");
}

void DbusService::Impl::apply(const Status& fresh, bool emit) {
  std::vector<std::string> changed;
  if (fresh.state != cache.state) changed.emplace_back("State");
  if (fresh.swappiness != cache.swappiness) changed.emplace_back("Swappiness");
  if (!same_avgs(fresh.memory_pressure, cache.memory_pressure)) changed.emplace_back("MemoryPressure");
  if (!same_avgs(fresh.io_pressure, cache.io_pressure)) changed.emplace_back("IoPressure");
  cache = fresh;
  if (emit && !changed.empty()) object->emitPropertiesChangedSignal(kManagerInterface, changed);

  std::map<std::string, const TierStatus*> wanted;
  for (const auto& t : fresh.tiers) wanted.emplace(t.name, &t);  // first of duplicate names wins
  for (auto it = tiers.begin(); it != tiers.end();) {
    auto w = wanted.find(it->first);
    if (w == wanted.end() || w->second->kind != it->second->data().kind) {
      if (emit) it->second->emitInterfacesRemovedSignal();
      it = tiers.erase(it);
    } else {
      ++it;
    }
  }
  for (const auto& [name, t] : wanted) {
    auto it = tiers.find(name);
    if (it == tiers.end()) {
      auto obj = std::make_unique<TierObject>(*bus, *t);
      if (emit) obj->emitInterfacesAddedSignal();
      tiers.emplace(name, std::move(obj));
      continue;
    }
    auto names = it->second->update(*t);
    if (emit && !names.empty()) it->second->emitPropertiesChangedSignal(kTierInterface, names);
  }
}

void DbusService::Impl::loop() {
  using clock = std::chrono::steady_clock;
  auto next_refresh = clock::now() + options.refresh_interval;
  while (!stopping.load()) {
    try {
      for (auto& work : inbox->take()) work();
      while (bus->processPendingRequest()) {
      }
      if (options.refresh_interval.count() > 0 && clock::now() >= next_refresh) {
        apply(manager.status(), true);
        next_refresh = clock::now() + options.refresh_interval;
        continue;
      }
      const auto pd = bus->getEventLoopPollData();
      int timeout_ms = -1;
      if (pd.timeout_usec != UINT64_MAX) {
        timespec now{};
        clock_gettime(CLOCK_MONOTONIC, &now);
        const std::uint64_t now_us =
            std::uint64_t(now.tv_sec) * 1'000'000 + std::uint64_t(now.tv_nsec) / 1000;
        timeout_ms = pd.timeout_usec <= now_us ? 0 : int((pd.timeout_usec - now_us + 999) / 1000);
      }
      if (options.refresh_interval.count() > 0) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(next_refresh - clock::now());
        const int l = left.count() < 0 ? 0 : int(left.count()) + 1;
        timeout_ms = timeout_ms < 0 ? l : std::min(timeout_ms, l);
      }
      pollfd fds[2] = {{pd.fd, pd.events, 0}, {inbox->wake_fd, POLLIN, 0}};
      if (::poll(fds, 2, timeout_ms) < 0 && errno != EINTR) break;
      if (fds[1].revents & POLLIN) {
        std::uint64_t n;
        [[maybe_unused]] auto r = ::read(inbox->wake_fd, &n, sizeof n);
      }
    } catch (const std::exception&) {
      // A failed emit or a broken handler must not take the daemon's bus
      // thread down; the next round starts clean.
    }
  }
}

DbusService::Impl::~Impl() {
  {
    std::lock_guard lock(inbox->mu);
    inbox->closed = true;
  }
  stopping = true;
  if (thread.joinable()) {
    const std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(inbox->wake_fd, &one, sizeof one);
    thread.join();
  }
  manager.set_events({});
  try {
    tiers.clear();
    object.reset();
    object_manager.reset();
    if (bus) {
      try {
        bus->releaseName(options.bus_name);
      } catch (const sdbus::Error&) {
      }
    }
    bus.reset();
  } catch (const std::exception&) {
  }
  if (inbox->wake_fd >= 0) ::close(inbox->wake_fd);
}

DbusService::DbusService(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
DbusService::~DbusService() = default;

const std::string& DbusService::unique_name() const {
  return impl_->unique_name;
}

void DbusService::refresh() {
  Impl* p = impl_.get();
  impl_->inbox->post([p] { p->apply(p->manager.status(), true); });
}

Result<std::unique_ptr<DbusService>> DbusService::start(ManagerApi& manager, DbusOptions options) {
  auto impl = std::make_unique<Impl>(manager, std::move(options));
  Impl* p = impl.get();
  const std::string where = p->options.address.empty() ? "system bus" : "bus " + p->options.address;
  p->inbox->wake_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (p->inbox->wake_fd < 0) return fail(errno, "eventfd for the D-Bus thread");
  try {
    p->bus = p->options.address.empty() ? sdbus::createSystemBusConnection()
                                        : sdbus::createSessionBusConnectionWithAddress(p->options.address);
    p->unique_name = p->bus->getUniqueName();
  } catch (const sdbus::Error& e) {
    return fail(ECONNREFUSED, "cannot connect to the " + where + ": " + e.getMessage() +
                                  " (D-Bus API disabled; tierswapd keeps working without it)");
  }
  try {
    p->object_manager = sdbus::createObject(*p->bus, kObjectManagerPath);
    p->object_manager->addObjectManager();
    p->object_manager->finishRegistration();
    p->object = std::make_unique<ManagerObject>(*p->bus, *p);
    p->apply(manager.status(), false);
  } catch (const sdbus::Error& e) {
    return fail(EIO,
                "cannot register " + std::string(kManagerPath) + " on the " + where + ": " + e.getMessage());
  }
  // Events may arrive on any daemon thread: queue them for the bus thread.
  std::weak_ptr<Inbox> inbox = p->inbox;
  auto post = [inbox](std::function<void()> f) {
    if (auto in = inbox.lock()) in->post(std::move(f));
  };
  ManagerEvents ev;
  ev.tier_state_changed = [p, post](const std::string& tier, TierState st) {
    post([p, tier, st] {
      p->object->emitTierStateChanged(tier, to_string(st));
      p->apply(p->manager.status(), true);
    });
  };
  ev.progress = [p, post](const std::string& tier, std::uint64_t moved, std::uint64_t total) {
    post([p, tier, moved, total] { p->object->emitProgress(tier, moved, total); });
  };
  ev.policy_action = [p, post](const std::string& what, const std::string& why, const std::string& numbers) {
    post([p, what, why, numbers] { p->object->emitPolicyAction(what, why, numbers); });
  };
  ev.pressure_alert = [p, post](const std::string& resource, double some10, double full10) {
    post([p, resource, some10, full10] { p->object->emitPressureAlert(resource, some10, full10); });
  };
  manager.set_events(std::move(ev));
  try {
    p->bus->requestName(p->options.bus_name);
  } catch (const sdbus::Error& e) {
    const bool denied = e.getName() == "org.freedesktop.DBus.Error.AccessDenied";
    return fail(denied ? EACCES : EEXIST,
                "cannot own " + p->options.bus_name + " on the " + where + ": " + e.getMessage() +
                    (denied ? " (only root may own it: see org.tierswap.Manager1.conf)"
                            : " (is another tierswapd running?)"));
  }
  p->thread = std::thread([p] { p->loop(); });
  return std::unique_ptr<DbusService>(new DbusService(std::move(impl)));
}

}  // namespace tierswap::dbus
