#include "dbus/service.hpp"

#include <sdbus-c++/sdbus-c++.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <systemd/sd-event.h>
#include <unistd.h>

#include <cstdio>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include "dbus/caller_access.hpp"
#include "dbus/manager1_adaptor.h"
#include "dbus/names.hpp"
#include "dbus/status_json.hpp"
#include "dbus/tier1_adaptor.h"

namespace tierswap::dbus {

namespace {

// Work for the loop, queued from any thread. Shared with the helper
// threads and the ManagerEvents callbacks, so it outlives the service: the
// eventfd is closed by the last owner, and post() after close() drops the
// work (a connection handed over then is closed on the posting thread).
struct Inbox {
  std::mutex mu;
  std::deque<std::function<void()>> work;
  bool closed = false;
  int wake_fd = -1;

  ~Inbox() {
    if (wake_fd >= 0) ::close(wake_fd);
  }
  void post(std::function<void()> f) {
    std::lock_guard lock(mu);
    if (closed) return;
    work.push_back(std::move(f));
    const std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(wake_fd, &one, sizeof one);
  }
  std::deque<std::function<void()>> take() {
    std::lock_guard lock(mu);
    std::uint64_t n;
    [[maybe_unused]] auto r = ::read(wake_fd, &n, sizeof n);
    return std::exchange(work, {});
  }
  void close() {
    std::deque<std::function<void()>> dropped;
    std::lock_guard lock(mu);
    closed = true;
    dropped.swap(work);
  }
};

// One connection attempt's result, made on a helper thread.
struct Attempt {
  std::unique_ptr<sdbus::IConnection> bus;
  std::string error;
};

[[noreturn]] void raise(const Error& e) {
  const char* name = error_name_for(e.kind);
  // Named kinds carry a complete message; Failed adds the kernel's answer.
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
  sd_event* loop;
  std::string where;  // "system bus", "bus unix:path=..."
  std::shared_ptr<Inbox> inbox = std::make_shared<Inbox>();
  sd_event_source* inbox_src = nullptr;
  sd_event_source* retry_src = nullptr;
  sd_event_source* refresh_src = nullptr;
  sd_event_source* bus_io = nullptr;
  sd_event_source* bus_timer = nullptr;

  std::unique_ptr<sdbus::IConnection> bus;
  // org.freedesktop.DBus.ObjectManager at /org/tierswap: an object manager
  // covers the subtree below its path, and the tiers live beside the manager
  // (/org/tierswap/Tier/<name>), so it sits at their common parent.
  std::unique_ptr<sdbus::IObject> object_manager;
  std::unique_ptr<ManagerObject> object;
  std::map<std::string, std::unique_ptr<TierObject>> tiers;
  Status cache;
  std::string unique_name;
  bool serving = false;

  bool connecting = false;
  bool given_up = false;  // the name is someone else's: not retried
  int failures = 0;       // attempts since the last success
  std::chrono::steady_clock::time_point waiting_since{};
  std::string refuse_mutations;  // non-empty: why Reload/Demote/Promote are refused
  // The caller check (polkit asked without waiting); lives with the connection.
  std::unique_ptr<CallerAccess> access;
  // Reload, Demote and Promote reply later (async methods): the calls not
  // answered yet, by id. Only ids travel through polkit's callbacks and the
  // runner's thread; the replies stay here and are answered on the loop
  // (and dropped before the connection they belong to).
  std::map<std::uint64_t, sdbus::Result<>> replies;
  std::uint64_t next_reply = 0;
  // Plan is open to everyone and costs a config load, an observe and a plan
  // on the loop: callers other than root get the last answer while it is
  // younger than kPlanCacheAge (root always gets a fresh one). Dropped when
  // Reload, Demote or Promote change what a plan would say.
  static constexpr std::chrono::seconds kPlanCacheAge{2};
  std::optional<Result<std::string>> plan_cache;
  std::chrono::steady_clock::time_point plan_cache_at{};

  Impl(ManagerApi& m, sd_event* l, DbusOptions o) : manager(m), options(std::move(o)), loop(l) {
    where = options.address.empty() ? "system bus" : "bus " + options.address;
  }
  ~Impl();

  void info(const std::string& m) const {
    if (options.info) options.info(m);
  }
  void warn(const std::string& m) const {
    if (options.warn) options.warn(m);
  }

  void apply(const Status& fresh, bool emit);
  std::string plan(const sdbus::Message& call);
  // Reload, Demote and Promote: refused while stopping, the caller check
  // (polkit answers later), refused again if stopping began meanwhile, the
  // tier name; then `run` on the loop, which must end in finish(id, ...)
  // (at once or later).
  using MutationRun = std::function<void(std::uint64_t id, std::optional<uid_t> uid)>;
  void mutation(const std::string& method, sdbus::Result<>&& reply, std::optional<std::string> tier,
                MutationRun run);
  Result<void> check_tier(const std::string& method, const std::string& tier);
  // Sends the reply (or the error) of call `id`, once; a call whose
  // connection has gone meanwhile is forgotten.
  void finish(std::uint64_t id, const Result<void>& r);
  void start_reload(std::uint64_t id, std::optional<uid_t> uid);

  void connect();
  void on_attempt(Attempt a);
  Result<void> serve(std::unique_ptr<sdbus::IConnection> b);
  void drop_connection();
  void lost(const std::string& why);
  void schedule_retry();
  void process();
  void run_inbox();
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
  // The apply runs on the daemon's operation runner; the reply comes when it has ended.
  void Reload(sdbus::Result<>&& result) override {
    svc_.mutation("Reload", std::move(result), std::nullopt,
                  [this](std::uint64_t id, std::optional<uid_t> uid) { svc_.start_reload(id, uid); });
  }
  std::string Plan() override { return svc_.plan(current_call()); }
  // Both return once started (a demote's swapoff runs on the runner's worker).
  void Demote(sdbus::Result<>&& result, std::string tier) override {
    svc_.mutation("Demote", std::move(result), tier,
                  [this, tier](std::uint64_t id, std::optional<uid_t> uid) {
                    auto r = svc_.manager.demote_as(tier, uid);
                    if (r) svc_.apply(svc_.manager.status(), true);
                    svc_.finish(id, r);
                  });
  }
  void Promote(sdbus::Result<>&& result, std::string tier) override {
    svc_.mutation("Promote", std::move(result), tier,
                  [this, tier](std::uint64_t id, std::optional<uid_t> uid) {
                    auto r = svc_.manager.promote_as(tier, uid);
                    if (r) svc_.apply(svc_.manager.status(), true);
                    svc_.finish(id, r);
                  });
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

std::string seconds_text(std::chrono::milliseconds d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f s", static_cast<double>(d.count()) / 1000.0);
  return buf;
}

std::uint64_t usec(std::chrono::milliseconds d) {
  return static_cast<std::uint64_t>(d.count()) * 1000;
}

}  // namespace

Result<void> DbusService::Impl::check_tier(const std::string& method, const std::string& tier) {
  if (auto ok = check_tier_name(tier); !ok) return wrap(ok.error(), method);
  const Status s = manager.status();
  std::string names;
  for (const auto& t : s.tiers) {
    if (t.name == tier) return {};
    names += (names.empty() ? "" : ", ") + t.name;
  }
  return fail(ErrorKind::not_found,
              method + ": no tier named \"" + tier + "\" (tiers: " + (names.empty() ? "none" : names) + ")");
}

void DbusService::Impl::mutation(const std::string& method, sdbus::Result<>&& reply,
                                 std::optional<std::string> tier, MutationRun run) {
  const std::uint64_t id = ++next_reply;
  replies.emplace(id, std::move(reply));
  if (!refuse_mutations.empty())
    return finish(id, fail(ErrorKind::busy, method + " refused: " + refuse_mutations));
  const sdbus::Message& call = object->current_call();
  auto uid = caller_uid(call);
  const std::optional<uid_t> who = uid ? std::optional<uid_t>(*uid) : std::nullopt;
  const AccessPolicy policy{.use_polkit = options.use_polkit};
  // Runs now (root, no polkit) or when polkit answers, on the loop either
  // way; never after the connection (and `access` with it) has gone.
  access->authorize(call, method, policy, [this, id, method, tier, who, run](Result<void> ok) {
    if (!ok) return finish(id, ok);
    // Stopping may have begun while polkit decided.
    if (!refuse_mutations.empty())
      return finish(id, fail(ErrorKind::busy, method + " refused: " + refuse_mutations));
    if (tier)
      if (auto t = check_tier(method, *tier); !t) return finish(id, t);
    plan_cache.reset();
    try {
      run(id, who);
    } catch (const std::exception& e) {
      finish(id, fail(ErrorKind::failed, method + ": " + e.what()));
    }
  });
}

void DbusService::Impl::finish(std::uint64_t id, const Result<void>& r) {
  auto it = replies.find(id);
  if (it == replies.end()) return;
  sdbus::Result<> reply = std::move(it->second);
  replies.erase(it);
  try {
    if (r) {
      reply.returnResults();
    } else {
      const Error& e = r.error();
      const char* name = error_name_for(e.kind);
      // Named kinds carry a complete message; Failed adds the kernel's answer.
      reply.returnError(sdbus::Error(name, name == std::string(kErrFailed) ? e.describe() : e.message));
    }
  } catch (const sdbus::Error& e) {
    warn(std::string("D-Bus: cannot send a reply: ") + e.getMessage());
  }
}

// The reload's end comes from the runner's worker thread: through the
// inbox, so that the reply is sent on the loop.
void DbusService::Impl::start_reload(std::uint64_t id, std::optional<uid_t> uid) {
  std::weak_ptr<Inbox> in = inbox;
  Impl* self = this;
  auto started = manager.start_reload_as(uid, [in, self, id](Result<void> r) {
    if (auto box = in.lock())
      box->post([self, id, r = std::move(r)] {
        self->apply(self->manager.status(), true);
        self->finish(id, r);
      });
  });
  if (!started) finish(id, started);
}

std::string DbusService::Impl::plan(const sdbus::Message& call) {
  const auto uid = caller_uid(call);
  const bool root = uid && *uid == 0;
  const auto now = std::chrono::steady_clock::now();
  if (root || !plan_cache || now - plan_cache_at >= kPlanCacheAge) {
    plan_cache = manager.plan_json();
    plan_cache_at = now;
  }
  if (!*plan_cache) raise(plan_cache->error());
  return **plan_cache;
}

void DbusService::Impl::apply(const Status& fresh, bool emit) {
  if (!object) return;  // not serving: nothing to update
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

// sdbus-c++ opens the connection synchronously (connect, auth, Hello): that
// runs on a helper thread whose result comes back through the inbox.
void DbusService::Impl::connect() {
  if (connecting || bus || given_up) return;
  connecting = true;
  if (failures == 0) waiting_since = std::chrono::steady_clock::now();
  std::weak_ptr<Inbox> in = inbox;
  Impl* self = this;
  std::thread([in, self, address = options.address] {
    auto a = std::make_shared<Attempt>();
    try {
      a->bus = address.empty() ? sdbus::createSystemBusConnection()
                               : sdbus::createSessionBusConnectionWithAddress(address);
    } catch (const sdbus::Error& e) {
      a->error = e.getMessage();
    } catch (const std::exception& e) {
      a->error = e.what();
    }
    if (auto box = in.lock()) box->post([self, a] { self->on_attempt(std::move(*a)); });
  }).detach();
}

void DbusService::Impl::on_attempt(Attempt a) {
  connecting = false;
  if (!a.bus) {
    if (++failures == 1)
      warn("D-Bus: cannot connect to the " + where + " yet (" + a.error + "); trying again every " +
           seconds_text(options.retry_interval) + " until it appears (tierswapd works without it meanwhile)");
    schedule_retry();
    return;
  }
  const auto waited =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - waiting_since);
  const int tries = failures + 1;
  if (auto r = serve(std::move(a.bus)); !r) {
    drop_connection();
    if (r.error().kind == ErrorKind::busy || r.error().kind == ErrorKind::permission_denied) {
      given_up = true;
      warn("D-Bus: " + r.error().message + " (D-Bus API disabled; tierswapd keeps working without it)");
      return;
    }
    ++failures;
    warn("D-Bus: " + r.error().message + "; trying again in " + seconds_text(options.retry_interval));
    schedule_retry();
    return;
  }
  info("D-Bus: serving " + options.bus_name + " on the " + where + " as " + unique_name +
       (tries > 1
            ? " (the bus appeared after " + seconds_text(waited) + ", " + std::to_string(tries) + " attempts)"
            : ""));
  failures = 0;
  if (options.on_serving) options.on_serving(unique_name);
}

Result<void> DbusService::Impl::serve(std::unique_ptr<sdbus::IConnection> b) {
  bus = std::move(b);
  try {
    unique_name = bus->getUniqueName();
    object_manager = sdbus::createObject(*bus, kObjectManagerPath);
    object_manager->addObjectManager();
    object_manager->finishRegistration();
    access = std::make_unique<CallerAccess>(*bus);
    object = std::make_unique<ManagerObject>(*bus, *this);
    cache = Status{};
    apply(manager.status(), false);
  } catch (const sdbus::Error& e) {
    return fail(ErrorKind::failed,
                "cannot register " + std::string(kManagerPath) + " on the " + where + ": " + e.getMessage());
  }
  try {
    bus->requestName(options.bus_name);
  } catch (const sdbus::Error& e) {
    const bool denied = e.getName() == "org.freedesktop.DBus.Error.AccessDenied";
    const bool lost_bus = e.getName() == "org.freedesktop.DBus.Error.NoReply" ||
                          e.getName() == "org.freedesktop.DBus.Error.Disconnected" ||
                          e.getName().starts_with("System.Error.");
    return fail(denied     ? ErrorKind::permission_denied
                : lost_bus ? ErrorKind::failed
                           : ErrorKind::busy,
                "cannot own " + options.bus_name + " on the " + where + ": " + e.getMessage() +
                    (denied     ? " (only root may own it: see org.tierswap.Manager1.conf)"
                     : lost_bus ? ""
                                : " (is another tierswapd running?)"));
  }
  const auto pd = bus->getEventLoopPollData();
  auto on_io = [](sd_event_source*, int, uint32_t, void* u) {
    static_cast<Impl*>(u)->process();
    return 0;
  };
  auto on_time = [](sd_event_source*, uint64_t, void* u) {
    static_cast<Impl*>(u)->process();
    return 0;
  };
  // Before the loop polls: what sd-bus waits for now (POLLOUT while its
  // write queue is not empty) and its next timeout (method-call replies).
  auto on_prepare = [](sd_event_source*, void* u) {
    auto* self = static_cast<Impl*>(u);
    try {
      const auto p = self->bus->getEventLoopPollData();
      sd_event_source_set_io_events(self->bus_io, static_cast<uint32_t>(p.events));
      if (p.timeout_usec == UINT64_MAX) {
        sd_event_source_set_enabled(self->bus_timer, SD_EVENT_OFF);
      } else {
        sd_event_source_set_time(self->bus_timer, p.timeout_usec);
        sd_event_source_set_enabled(self->bus_timer, SD_EVENT_ONESHOT);
      }
    } catch (const std::exception& e) {
      self->inbox->post([self, why = std::string(e.what())] { self->lost(why); });
    }
    return 0;
  };
  int r = sd_event_add_io(loop, &bus_io, pd.fd, static_cast<uint32_t>(pd.events), on_io, this);
  if (r >= 0) r = sd_event_source_set_prepare(bus_io, on_prepare);
  if (r >= 0) r = sd_event_add_time(loop, &bus_timer, CLOCK_MONOTONIC, UINT64_MAX, 0, on_time, this);
  if (r >= 0) r = sd_event_source_set_enabled(bus_timer, SD_EVENT_OFF);
  if (r < 0) return kernel_error(-r, "cannot watch the D-Bus connection on the event loop");
  serving = true;
  // Anything that arrived during the name request is waiting already.
  process();
  return {};
}

void DbusService::Impl::drop_connection() {
  serving = false;
  bus_io = sd_event_source_disable_unref(bus_io);
  bus_timer = sd_event_source_disable_unref(bus_timer);
  tiers.clear();
  object.reset();
  object_manager.reset();
  // Replies and polkit questions belong to this connection: gone with it
  // (the callers see the connection close).
  access.reset();
  replies.clear();
  bus.reset();
  unique_name.clear();
}

void DbusService::Impl::lost(const std::string& why) {
  if (!bus) return;
  warn("D-Bus: lost the connection to the " + where + " (" + why + "); connecting again when it is back");
  drop_connection();
  failures = 1;  // said once already
  waiting_since = std::chrono::steady_clock::now();
  schedule_retry();
}

void DbusService::Impl::schedule_retry() {
  retry_src = sd_event_source_disable_unref(retry_src);
  auto on_retry = [](sd_event_source*, uint64_t, void* u) {
    auto* self = static_cast<Impl*>(u);
    self->retry_src = sd_event_source_disable_unref(self->retry_src);
    self->connect();
    return 0;
  };
  if (sd_event_add_time_relative(loop, &retry_src, CLOCK_MONOTONIC, usec(options.retry_interval), 0, on_retry,
                                 this) < 0) {
    warn("D-Bus: cannot schedule the next connection attempt; D-Bus API disabled");
  }
}

void DbusService::Impl::process() {
  if (!bus) return;
  try {
    while (bus && bus->processPendingRequest()) {
    }
  } catch (const std::exception& e) {
    // sd_bus_process fails when the connection is gone (the bus daemon
    // stopped or dropped us): start over.
    lost(e.what());
  }
}

void DbusService::Impl::run_inbox() {
  for (auto& work : inbox->take()) {
    try {
      work();
    } catch (const std::exception& e) {
      // A failed emit must not take the loop down; the next round starts clean.
      warn(std::string("D-Bus: ") + e.what());
    }
  }
}

DbusService::Impl::~Impl() {
  inbox->close();
  manager.set_events({});
  inbox_src = sd_event_source_disable_unref(inbox_src);
  retry_src = sd_event_source_disable_unref(retry_src);
  refresh_src = sd_event_source_disable_unref(refresh_src);
  // Calls still waiting (a reload that has not ended, a caller polkit has not
  // answered about): told why rather than left to see the connection close.
  for (auto& [id, reply] : replies) {
    try {
      reply.returnError(
          sdbus::Error(kErrFailed, "tierswapd stopped before the call ended" +
                                       (refuse_mutations.empty() ? "" : " (" + refuse_mutations + ")") +
                                       "; its log says what was done"));
    } catch (const sdbus::Error&) {
    }
  }
  replies.clear();
  if (bus && serving) {
    try {
      bus->releaseName(options.bus_name);
    } catch (const std::exception&) {
    }
  }
  drop_connection();
}

DbusService::DbusService(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
DbusService::~DbusService() = default;

const std::string& DbusService::unique_name() const {
  return impl_->unique_name;
}

bool DbusService::serving() const {
  return impl_->serving;
}

void DbusService::stop_mutations(const std::string& why) {
  impl_->refuse_mutations = why.empty() ? std::string("the service is stopping") : why;
}

void DbusService::refresh() {
  Impl* p = impl_.get();
  impl_->inbox->post([p] { p->apply(p->manager.status(), true); });
}

void DbusService::refresh(const Status& status) {
  impl_->apply(status, true);
}

Result<std::unique_ptr<DbusService>> DbusService::attach(ManagerApi& manager, sd_event* loop,
                                                         DbusOptions options) {
  auto impl = std::make_unique<Impl>(manager, loop, std::move(options));
  Impl* p = impl.get();
  p->inbox->wake_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (p->inbox->wake_fd < 0) return kernel_error(errno, "eventfd for the D-Bus service's queue");
  auto on_inbox = [](sd_event_source*, int, uint32_t, void* u) {
    static_cast<Impl*>(u)->run_inbox();
    return 0;
  };
  if (int r = sd_event_add_io(loop, &p->inbox_src, p->inbox->wake_fd, EPOLLIN, on_inbox, p); r < 0)
    return kernel_error(-r, "cannot add the D-Bus service's queue to the event loop");
  if (p->options.refresh_interval.count() > 0) {
    auto on_refresh = [](sd_event_source* s, uint64_t t, void* u) {
      auto* self = static_cast<Impl*>(u);
      self->apply(self->manager.status(), true);
      sd_event_source_set_time(s, t + usec(self->options.refresh_interval));
      sd_event_source_set_enabled(s, SD_EVENT_ON);
      return 0;
    };
    if (int r = sd_event_add_time_relative(loop, &p->refresh_src, CLOCK_MONOTONIC,
                                           usec(p->options.refresh_interval), 0, on_refresh, p);
        r < 0)
      return kernel_error(-r, "cannot add the D-Bus refresh timer to the event loop");
  }
  // Events may arrive on any daemon thread: queue them for the loop. They
  // are dropped while nobody is connected (the next status read has them).
  std::weak_ptr<Inbox> inbox = p->inbox;
  auto post = [inbox](std::function<void()> f) {
    if (auto in = inbox.lock()) in->post(std::move(f));
  };
  ManagerEvents ev;
  ev.tier_state_changed = [p, post](const std::string& tier, TierState st) {
    post([p, tier, st] {
      if (!p->object) return;
      p->object->emitTierStateChanged(tier, to_string(st));
      p->apply(p->manager.status(), true);
    });
  };
  ev.progress = [p, post](const std::string& tier, std::uint64_t moved, std::uint64_t total) {
    post([p, tier, moved, total] {
      if (p->object) p->object->emitProgress(tier, moved, total);
    });
  };
  ev.policy_action = [p, post](const std::string& what, const std::string& why, const std::string& numbers) {
    post([p, what, why, numbers] {
      if (p->object) p->object->emitPolicyAction(what, why, numbers);
    });
  };
  ev.pressure_alert = [p, post](const std::string& resource, double some10, double full10) {
    post([p, resource, some10, full10] {
      if (p->object) p->object->emitPressureAlert(resource, some10, full10);
    });
  };
  manager.set_events(std::move(ev));
  p->connect();
  return std::unique_ptr<DbusService>(new DbusService(std::move(impl)));
}

}  // namespace tierswap::dbus
