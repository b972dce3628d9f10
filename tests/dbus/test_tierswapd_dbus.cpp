// The real tierswapd behind the private bus (the fixture's
// TIERSWAP_DBUS_SERVER template), on a fake root with the recording kernel
// (tierswapd-test --test-fake-kernel): tierswapctl status and --json, busctl
// introspect, nobody gets AccessDenied, malformed arguments get named errors,
// demote/promote with progress, a refused demote with the numbers; D-Bus at
// boot (the bus appears after the daemon) and a bus that never answers; a
// tick reads the machine once with D-Bus serving.
#include <gtest/gtest.h>
#include <pwd.h>
#include <sdbus-c++/sdbus-c++.h>
#include <signal.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <sstream>
#include <string_view>
#include <thread>
#include <vector>

#include "dbus/names.hpp"
#include "dbus/status_json.hpp"
#include "tests/dbus/bus_fixture.hpp"
#include "tests/unit/engine/fake_root.hpp"

namespace tierswap::test {
namespace {

namespace fs = std::filesystem;

// A fake root (tests/fixtures/02-zram-file-zswap plus PSI and vmstat)
// under dir; returns its path.
fs::path make_fake_root(const std::string& dir) {
  const fs::path root = fs::path(dir) / "root";
  fs::copy(source_dir() + "/tests/fixtures/02-zram-file-zswap", root, fs::copy_options::recursive);
  fs::create_directories(root / "proc/pressure");
  spit(root / "proc/pressure/memory",
       "some avg10=1.25 avg60=0.50 avg300=0.10 total=100\nfull avg10=0.25 avg60=0.00 avg300=0.00 "
       "total=10\n");
  spit(root / "proc/pressure/io",
       "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n");
  spit(root / "proc/vmstat", "pswpin 0\npswpout 0\n");
  return root;
}

// tierswapd-test on the fake root with the recording kernel.
std::vector<std::string> daemon_argv(const fs::path& root) {
  return {TIERSWAPD_TEST, "--test-fake-kernel", "--root",
          root.string(),  "--config",           (root / "etc/tierswap.yaml").string()};
}

class TierswapdDbus : public BusTest {
 protected:
  void SetUp() override {
    root_ = make_fake_root(bus_.dir());
    std::string cmd;
    for (const auto& w : daemon_argv(root_)) cmd += w + " ";
    cmd += "--bus-address {address} {args}";
    ::setenv("TIERSWAP_DBUS_SERVER", cmd.c_str(), 1);
    svc_ = std::make_unique<Service>(bus_);
    ::unsetenv("TIERSWAP_DBUS_SERVER");
    ASSERT_TRUE(svc_->ready()) << read_file(bus_.dir() + "/service.out");
  }
  void TearDown() override {
    svc_.reset();  // SIGTERM: tierswapd tears down on the fake root
    EXPECT_FALSE(fs::exists(root_ / "run/tierswap/state.json")) << read_file(bus_.dir() + "/service.out");
  }
  Status status() {
    auto r = ctl({"status", "--json"});
    EXPECT_EQ(r.code, 0) << r.err;
    auto s = dbus::status_from_json(r.out);
    EXPECT_TRUE(s) << r.out;
    return s ? *s : Status{};
  }
  const TierStatus* tier(const Status& s, const std::string& name) {
    for (const auto& t : s.tiers)
      if (t.name == name) return &t;
    return nullptr;
  }
  std::string journal() { return read_file((root_ / "run/tierswap/state.json").string()); }

  fs::path root_;
  std::unique_ptr<Service> svc_;
};

TEST_F(TierswapdDbus, StatusHumanAndJson) {
  auto r = ctl({"status"});
  ASSERT_EQ(r.code, 0) << r.err;
  for (const char* want : {"fast", "zram", "/dev/zram1", "disk", "/var/swap/tier.swap", "active"})
    EXPECT_NE(r.out.find(want), std::string::npos) << want << " not in:\n" << r.out;
  EXPECT_LT(r.out.find("fast"), r.out.find("disk")) << "priority order";
  std::istringstream lines(r.out);
  for (std::string l; std::getline(lines, l);) EXPECT_LE(l.size(), 80u) << l;

  const Status s = status();
  EXPECT_EQ(s.state, "running");
  EXPECT_EQ(s.swappiness, 100);
  EXPECT_DOUBLE_EQ(s.memory_pressure.some.avg10, 1.25);
  EXPECT_GT(s.mem_total_bytes, 0u);
  ASSERT_EQ(s.tiers.size(), 2u);
  EXPECT_EQ(s.tiers[0].name, "fast");
  EXPECT_EQ(s.tiers[0].kind, "zram");
  EXPECT_EQ(s.tiers[0].device, "/dev/zram1");
  EXPECT_EQ(s.tiers[0].priority, 100);
  EXPECT_EQ(s.tiers[0].state, TierState::active);
  EXPECT_EQ(s.tiers[0].size_bytes, 1048572ull * 1024);
  EXPECT_EQ(s.tiers[1].name, "disk");
  EXPECT_EQ(s.tiers[1].kind, "file");
  EXPECT_EQ(s.tiers[1].priority, 10);
  EXPECT_EQ(s.tiers[1].size_bytes, 65532ull * 1024);
}

// With D-Bus, the properties come from the tick's own observation: one
// read of the machine per tick, not the policy's read and then the
// service's. Ticks are counted by --record (one line per decision), reads
// by inotify's IN_OPEN on the fake root's /proc/meminfo (read once per
// observation, and by nothing else on an idle daemon).
TEST_F(TierswapdDbus, ATickReadsTheMachineOnce) {
  svc_.reset();
  const fs::path record = fs::path(bus_.dir()) / "ticks.jsonl";
  std::string cmd;
  for (const auto& w : daemon_argv(root_)) cmd += w + " ";
  cmd += "--bus-address {address} {args}";
  ::setenv("TIERSWAP_DBUS_SERVER", cmd.c_str(), 1);
  svc_ = std::make_unique<Service>(bus_, std::vector<std::string>{"--record", record.string()});
  ::unsetenv("TIERSWAP_DBUS_SERVER");
  ASSERT_TRUE(svc_->ready()) << read_file(bus_.dir() + "/service.out");
  const auto ticks = [&] {
    const std::string t = fs::exists(record) ? read_file(record.string()) : std::string();
    return static_cast<int>(std::count(t.begin(), t.end(), '\n'));
  };
  const auto wait_ticks = [&](int n) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (ticks() < n && std::chrono::steady_clock::now() < end)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    return ticks() >= n;
  };
  // Right after a tick's decision: the next tick is 2 s away.
  ASSERT_TRUE(wait_ticks(1)) << read_file(bus_.dir() + "/service.out");
  const int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  ASSERT_GE(::inotify_add_watch(fd, (root_ / "proc").c_str(), IN_OPEN), 0) << std::strerror(errno);
  const int first = ticks();
  ASSERT_TRUE(wait_ticks(first + 3)) << read_file(bus_.dir() + "/service.out");
  // What a tick queued after its decision (the old second read) has run.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const int seen = ticks() - first;
  int opens = 0;
  alignas(inotify_event) char buf[8192];
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;)
    for (char* p = buf; p < buf + n;) {
      const auto* ev = reinterpret_cast<const inotify_event*>(p);
      opens += ev->len > 0 && std::string_view(ev->name) == "meminfo";
      p += sizeof(inotify_event) + ev->len;
    }
  ::close(fd);
  EXPECT_GE(seen, 3);
  EXPECT_EQ(opens, seen) << seen << " ticks opened /proc/meminfo " << opens << " times";
}

// Plan is open to everyone but costs a whole plan on the daemon's loop:
// callers other than root get the last answer for up to 2 s, root a fresh one.
TEST_F(TierswapdDbus, PlanForOthersIsCachedBrieflyRootGetsAFreshOne) {
  if (getpwnam("nobody") == nullptr || geteuid() != 0)
    GTEST_SKIP() << "needs root and a user nobody (runuser)";
  auto plan = [&](bool as_nobody) {
    std::vector<std::string> argv = {
        "busctl",           "--address=" + bus_.address(), "call", dbus::kBusName,
        dbus::kManagerPath, dbus::kManagerInterface,       "Plan"};
    if (as_nobody) argv.insert(argv.begin(), {"runuser", "-u", "nobody", "--"});
    auto r = run_process(argv);
    EXPECT_EQ(r.code, 0) << r.err;
    return r.out;
  };
  const std::string before = plan(true);
  EXPECT_EQ(before.find("swappiness"), std::string::npos) << before;
  const auto cfg = root_ / "etc/tierswap.yaml";
  std::string text = read_file(cfg.string());
  text.replace(text.find("vm.swappiness: 100"), 18, "vm.swappiness: 90");
  spit(cfg, text);
  const auto t0 = std::chrono::steady_clock::now();
  const std::string cached = plan(true);
  if (std::chrono::steady_clock::now() - t0 < std::chrono::milliseconds(1500))
    EXPECT_EQ(cached, before) << "a fresh plan for nobody within the cache's age";
  const std::string fresh = plan(false);
  EXPECT_NE(fresh.find("swappiness"), std::string::npos) << fresh;
  std::this_thread::sleep_for(std::chrono::milliseconds(2100));
  EXPECT_NE(plan(true).find("swappiness"), std::string::npos) << "nobody's plan is fresh after 2 s";
}

namespace {

// GetStatus round trips as root for `span`, one every 2 ms: each one's
// latency.
std::vector<double> get_status_latencies_ms(const std::string& address, std::chrono::milliseconds span) {
  auto conn = sdbus::createSessionBusConnectionWithAddress(address);
  auto proxy = sdbus::createProxy(*conn, dbus::kBusName, dbus::kManagerPath);
  std::vector<double> out;
  const auto end = std::chrono::steady_clock::now() + span;
  while (std::chrono::steady_clock::now() < end) {
    const auto t0 = std::chrono::steady_clock::now();
    std::string json;
    proxy->callMethod("GetStatus").onInterface(dbus::kManagerInterface).storeResultsTo(json);
    out.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return out;
}

double p99(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, v.size() * 99 / 100)];
}

// A process group that calls Plan as nobody, back to back (busctl in a
// shell loop under runuser), one line appended to `count_file` per answer;
// returns its pid (= its process group).
pid_t plan_flooder(const std::string& address, const std::string& count_file) {
  const std::string loop = "while busctl --address=" + address + " call " + dbus::kBusName + " " +
                           dbus::kManagerPath + " " + dbus::kManagerInterface +
                           " Plan >/dev/null; do echo >> " + count_file + "; done";
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::setpgid(0, 0);
    ::execlp("runuser", "runuser", "-u", "nobody", "--", "sh", "-c", loop.c_str(), nullptr);
    ::_exit(127);
  }
  return pid;
}

std::size_t lines_in(const std::string& file) {
  const std::string t = read_file(file);
  return static_cast<std::size_t>(std::count(t.begin(), t.end(), '\n'));
}

}  // namespace

// Finding 5: Plan is open to everyone, so a caller other than root that
// calls it back to back must not hold up the daemon's bus loop for others.
// Two loops as nobody flood Plan while root calls GetStatus: GetStatus'
// p99 may grow by at most 20 ms over its p99 on the quiet bus (measured the
// same way just before: on shared, loaded machines the quiet figure itself
// varies, and what the bound is about is the delay the flood adds). The
// bound holds because others' Plan is answered from a 2 s cache
// (PlanForOthersIsCachedBrieflyRootGetsAFreshOne).
TEST_F(TierswapdDbus, PlanFloodByNobodyDoesNotDelayGetStatusBeyond20msP99) {
  const passwd* nobody = getpwnam("nobody");
  if (nobody == nullptr || geteuid() != 0) GTEST_SKIP() << "needs root and a user nobody (runuser)";
  constexpr auto kSpan = std::chrono::seconds(4);
  constexpr int kFlooders = 2;
  (void)get_status_latencies_ms(bus_.address(), std::chrono::milliseconds(200));  // warm up
  const double quiet = p99(get_status_latencies_ms(bus_.address(), kSpan));

  const std::string count_file = bus_.dir() + "/plan-answers";
  spit(count_file, "");
  ::chmod(count_file.c_str(), 0666);
  std::vector<pid_t> kids;
  for (int i = 0; i < kFlooders; ++i) kids.push_back(plan_flooder(bus_.address(), count_file));
  for (pid_t k : kids) ::setpgid(k, k);  // whichever of parent and child runs first
  // The flooders have had answers before the measurement starts.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (lines_in(count_file) < 2 * kFlooders && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const std::size_t at_start = lines_in(count_file);
  std::vector<double> flooded;
  if (at_start >= 2 * kFlooders) flooded = get_status_latencies_ms(bus_.address(), kSpan);
  const std::size_t answers = lines_in(count_file) - at_start;  // during the measurement
  for (pid_t k : kids) ::kill(-k, SIGKILL);
  for (pid_t k : kids) ::waitpid(k, nullptr, 0);
  ASSERT_GE(at_start, 2u * kFlooders) << "the flooders got no answers to Plan";
  const double busy = p99(flooded);
  RecordProperty("get_status_p99_quiet_us", static_cast<int>(quiet * 1000));
  RecordProperty("get_status_p99_flooded_us", static_cast<int>(busy * 1000));
  RecordProperty("plan_answers", static_cast<int>(answers));
  std::printf("GetStatus p99: %.2f ms quiet, %.2f ms under %d Plan calls by nobody\n", quiet, busy,
              static_cast<int>(answers));
  // The flood was one: the flooders were answered all along the measurement.
  EXPECT_GE(answers, 20u) << "too few Plan calls during the measurement to be a flood";
  EXPECT_LE(busy, quiet + 20.0) << "GetStatus p99 " << busy << " ms under the flood, " << quiet
                                << " ms without";
}

TEST_F(TierswapdDbus, BusctlIntrospectShowsTheApiAndTierObjects) {
  auto r = run_process({"busctl", "--address=" + bus_.address(), "introspect", dbus::kBusName,
                        dbus::kManagerPath, dbus::kManagerInterface});
  ASSERT_EQ(r.code, 0) << r.err;
  for (const char* want : {".Demote", ".Promote", ".Reload", ".Plan", ".GetStatus", ".Progress",
                           ".TierStateChanged", ".PolicyAction", ".Swappiness"})
    EXPECT_NE(r.out.find(want), std::string::npos) << want << " not in:\n" << r.out;
  auto t = run_process({"busctl", "--address=" + bus_.address(), "get-property", dbus::kBusName,
                        "/org/tierswap/Tier/fast", "org.tierswap.Tier1", "Priority"});
  ASSERT_EQ(t.code, 0) << t.err;
  EXPECT_EQ(t.out, "i 100\n");
}

TEST_F(TierswapdDbus, NobodyReadsButGetsAccessDeniedOnEveryMutation) {
  auto s = ctl_as_nobody({"status"});
  EXPECT_EQ(s.code, 0) << s.err;
  const auto before = journal();
  for (std::vector<std::string> args :
       {std::vector<std::string>{"reload"}, {"demote", "fast"}, {"promote", "fast"}}) {
    auto r = ctl_as_nobody(args);
    EXPECT_EQ(r.code, 4) << args[0] << ": " << r.err;
    EXPECT_NE(r.err.find("AccessDenied"), std::string::npos) << r.err;
  }
  EXPECT_EQ(journal(), before);
  EXPECT_EQ(tier(status(), "fast")->state, TierState::active);
}

TEST_F(TierswapdDbus, MalformedArgumentsGetNamedErrorsAndChangeNothing) {
  const auto before = journal();
  EXPECT_EQ(call("Demote", ""), dbus::kErrInvalidArgument);
  EXPECT_EQ(call("Demote", std::string(1 << 20, 'x')), dbus::kErrInvalidArgument);
  EXPECT_EQ(call("Promote", "fa/st"), dbus::kErrInvalidArgument);
  EXPECT_EQ(call("Demote", "nope"), dbus::kErrNoSuchTier);
  EXPECT_NE(last_message_.find("fast, disk"), std::string::npos) << last_message_;
  EXPECT_EQ(call("Promote", "fast"), dbus::kErrBusy);  // active: nothing to promote
  EXPECT_NE(last_message_.find("only a drained tier can be promoted"), std::string::npos) << last_message_;
  EXPECT_EQ(journal(), before);
}

TEST_F(TierswapdDbus, DemoteWithProgressThenPromote) {
  set_swap_used(root_ / "proc/swaps", "/dev/zram1", 1024);
  auto d = ctl({"demote", "fast"});
  ASSERT_EQ(d.code, 0) << d.out << d.err;
  EXPECT_NE(d.err.find("fast: 100%  1.0M/1.0M (256/256 pages)"), std::string::npos)
      << d.err;  // progress on stderr
  EXPECT_NE(d.out.find("fast: demoted, drained in"), std::string::npos) << d.out;
  Status s = status();
  EXPECT_EQ(tier(s, "fast")->state, TierState::drained);
  EXPECT_EQ(read_file((root_ / "proc/swaps").string()).find("/dev/zram1"), std::string::npos);
  EXPECT_NE(journal().find("\"drained\": true"), std::string::npos) << journal();
  // SIGHUP-style reload over D-Bus leaves it drained.
  auto rl = ctl({"reload"});
  EXPECT_EQ(rl.code, 0) << rl.err;
  EXPECT_EQ(tier(status(), "fast")->state, TierState::drained);

  auto p = ctl({"promote", "fast", "--json"});
  ASSERT_EQ(p.code, 0) << p.out << p.err;
  EXPECT_NE(p.out.find("\"outcome\":\"active\""), std::string::npos) << p.out;
  s = status();
  EXPECT_EQ(tier(s, "fast")->state, TierState::active);
  EXPECT_EQ(tier(s, "fast")->priority, 100);
  EXPECT_NE(read_file((root_ / "proc/swaps").string()).find("/dev/zram1\tpartition\t1048572\t0\t100"),
            std::string::npos);
}

TEST_F(TierswapdDbus, DemoteRefusedWhenTheOtherAreasLackRoom) {
  set_swap_used(root_ / "proc/swaps", "/dev/zram1", 200 * 1024);
  const auto before = journal();
  auto d = ctl({"demote", "fast"});
  EXPECT_EQ(d.code, 1) << d.err;
  EXPECT_NE(d.err.find("tier fast holds 200 MiB; the other swap areas have 64 MiB free"), std::string::npos)
      << d.err;
  EXPECT_NE(d.err.find("NotEnoughMemory"), std::string::npos) << d.err;
  EXPECT_EQ(journal(), before);
  EXPECT_EQ(tier(status(), "fast")->state, TierState::active);
  // Emptied again: with 200 MiB on it, SIGTERM (rightly) keeps the tier.
  set_swap_used(root_ / "proc/swaps", "/dev/zram1", 0);
}

}  // namespace
}  // namespace tierswap::test

namespace tierswap::test {
namespace {

// The daemon's observe tick reads PSI (here the fake root's) and sends
// PressureAlert once when memory pressure rises past the threshold.
TEST_F(TierswapdDbus, PressureAlertIsSentWhenMemoryPressureRises) {
  auto conn = sdbus::createSessionBusConnectionWithAddress(bus_.address());
  auto proxy = sdbus::createProxy(*conn, dbus::kBusName, dbus::kManagerPath);
  std::mutex mu;
  std::vector<std::string> alerts;
  proxy->uponSignal("PressureAlert")
      .onInterface(dbus::kManagerInterface)
      .call([&](const std::string& resource, double some, double full) {
        std::lock_guard lk(mu);
        alerts.push_back(resource + " " + std::to_string(static_cast<int>(some)) + " " +
                         std::to_string(static_cast<int>(full)));
      });
  proxy->finishRegistration();
  conn->enterEventLoopAsync();
  spit(root_ / "proc/pressure/memory",
       "some avg10=42.00 avg60=10.00 avg300=1.00 total=100\nfull avg10=7.00 avg60=1.00 avg300=0.00 "
       "total=10\n");
  // The tick runs every 2 s: wait for the first alert (a generous 30 s
  // deadline for loaded cores), then one more tick to see that a steady
  // high value does not repeat it.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    {
      std::lock_guard lk(mu);
      if (!alerts.empty()) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  conn->leaveEventLoop();
  std::lock_guard lk(mu);
  ASSERT_EQ(alerts.size(), 1u) << "alerts: " << alerts.size();
  EXPECT_EQ(alerts[0], "memory 42 7");
}

}  // namespace
}  // namespace tierswap::test

namespace tierswap::test {
namespace {

bool wait_for(const std::function<bool()>& ok, std::chrono::milliseconds limit) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!ok()) {
    if (std::chrono::steady_clock::now() >= end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

// D-Bus at boot: tierswapd.service runs before dbus.socket exists. The
// daemon applies its tiers without the bus, says it is waiting, and owns
// the name within 5 s of the bus appearing (here: 5 s after the daemon).
TEST(TierswapdBoot, OwnsTheNameWhenTheBusAppearsLater) {
  TestBus bus(/*start_now=*/false);
  const fs::path root = make_fake_root(bus.dir());
  const std::string log = bus.dir() + "/service.out";
  {
    ChildProcess daemon(daemon_argv(root), log, {"DBUS_SYSTEM_BUS_ADDRESS=" + bus.address()});
    ASSERT_TRUE(wait_for([&] { return read_file(log).find("D-Bus: cannot connect") != std::string::npos; },
                         std::chrono::seconds(10)))
        << read_file(log);
    EXPECT_NE(read_file(log).find("trying again"), std::string::npos) << read_file(log);
    std::this_thread::sleep_for(std::chrono::seconds(5));
    ASSERT_TRUE(daemon.running()) << read_file(log);
    bus.start();
    EXPECT_TRUE(bus.wait_for_name(dbus::kBusName, 5000)) << read_file(log);
    EXPECT_TRUE(wait_for([&] { return read_file(log).find("the bus appeared after") != std::string::npos; },
                         std::chrono::seconds(2)))
        << read_file(log);
    auto r = run_process({ctl_path(), "status"}, {"DBUS_SYSTEM_BUS_ADDRESS=" + bus.address()});
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.out.find("fast"), std::string::npos) << r.out;
  }
  EXPECT_FALSE(fs::exists(root / "run/tierswap/state.json")) << read_file(log);
}

// A bus that accepts the connection but never answers (a listening socket
// nobody accepts on): start-up, SIGHUP and SIGTERM are not held up by it.
TEST(TierswapdBoot, ABusThatNeverAnswersDoesNotStallTheLoop) {
  TestBus bus(/*start_now=*/false);
  const fs::path root = make_fake_root(bus.dir());
  const std::string sock = bus.dir() + "/silent_bus_socket";
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, sock.c_str(), sizeof a.sun_path - 1);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(fd, 16), 0);
  const std::string log = bus.dir() + "/service.out";
  auto daemon = std::make_unique<ChildProcess>(
      daemon_argv(root), log, std::vector<std::string>{"DBUS_SYSTEM_BUS_ADDRESS=unix:path=" + sock});
  EXPECT_TRUE(
      wait_for([&] { return read_file(log).find("config:") != std::string::npos; }, std::chrono::seconds(5)))
      << read_file(log);
  // The loop answers signals while the connection attempt hangs.
  ::kill(daemon->pid(), SIGHUP);
  EXPECT_TRUE(wait_for([&] { return read_file(log).find("reload: nothing to do") != std::string::npos; },
                       std::chrono::seconds(2)))
      << read_file(log);
  ::kill(daemon->pid(), SIGTERM);
  EXPECT_EQ(daemon->wait_exit(3000), 0) << "not stopped within 3 s, or failed:\n" << read_file(log);
  EXPECT_FALSE(fs::exists(root / "run/tierswap/state.json")) << read_file(log);
  daemon.reset();
  ::close(fd);
}

// The bus goes away (dbus-daemon restarts): tierswapd says so, keeps
// running, and owns the name again on the new bus.
TEST(TierswapdBoot, OwnsTheNameAgainAfterTheBusRestarts) {
  TestBus bus;
  const fs::path root = make_fake_root(bus.dir());
  const std::string log = bus.dir() + "/service.out";
  ChildProcess daemon(daemon_argv(root), log, {"DBUS_SYSTEM_BUS_ADDRESS=" + bus.address()});
  ASSERT_TRUE(bus.wait_for_name(dbus::kBusName, 10000)) << read_file(log);
  bus.stop_bus();
  EXPECT_TRUE(wait_for([&] { return read_file(log).find("D-Bus: lost the connection") != std::string::npos; },
                       std::chrono::seconds(5)))
      << read_file(log);
  ASSERT_TRUE(daemon.running()) << read_file(log);
  bus.start();
  EXPECT_TRUE(bus.wait_for_name(dbus::kBusName, 5000)) << read_file(log);
  auto r = run_process({ctl_path(), "status"}, {"DBUS_SYSTEM_BUS_ADDRESS=" + bus.address()});
  EXPECT_EQ(r.code, 0) << r.err;
}

// Under systemd, stderr is the journal ($JOURNAL_STREAM names its device and
// inode): every line carries the journal's <N> priority and no timestamp;
// --log-level drops what is below it.
TEST(TierswapdLog, JournalPrioritiesAndLogLevel) {
  TestBus bus(/*start_now=*/false);
  const fs::path root = make_fake_root(bus.dir());
  for (const std::string level : {"info", "warning"}) {
    const std::string log = bus.dir() + "/journal-" + level + ".out";
    std::ofstream(log).flush();
    struct stat st {};
    ASSERT_EQ(::stat(log.c_str(), &st), 0);
    const std::string stream = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
    auto argv = daemon_argv(root);
    argv.insert(argv.end(), {"--no-dbus", "--log-level", level});
    ChildProcess daemon(argv, log, {"JOURNAL_STREAM=" + stream});
    ASSERT_TRUE(wait_for([&] { return read_file(log).find("test hook") != std::string::npos; },
                         std::chrono::seconds(5)))
        << read_file(log);
    EXPECT_EQ(daemon.wait_exit(0), -1) << read_file(log);
    ::kill(daemon.pid(), SIGTERM);
    EXPECT_EQ(daemon.wait_exit(5000), 0) << read_file(log);
    const std::string text = read_file(log);
    EXPECT_NE(text.find("<4>test hook: recording kernel"), std::string::npos) << text;
    if (level == "info") {
      EXPECT_NE(text.find("<6>applied "), std::string::npos) << text;
      EXPECT_NE(text.find("<6>stopped; everything tierswapd changed is restored"), std::string::npos) << text;
    } else {
      EXPECT_EQ(text.find("<6>"), std::string::npos) << text;
    }
    EXPECT_EQ(text.find(" info "), std::string::npos) << "no plain-text lines: " << text;
  }
}

// The installed tierswapd has no test seams; tierswapd-test has them.
// --version reports what the build has, not a fixed string.
TEST(TierswapdCommandLine, TestSeamsOnlyInTheTestBinaryAndVersionFromTheBuild) {
  auto r = run_process({TIERSWAPD, "--test-fake-kernel", "--root", "/tmp"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("unknown argument \"--test-fake-kernel\""), std::string::npos) << r.err;
  r = run_process({TIERSWAPD, "--help"});
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.out.find("--test-"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("--log-level LEVEL"), std::string::npos) << r.out;
  r = run_process({TIERSWAPD_TEST, "--test-fake-kernel"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--test-fake-kernel needs a --root other than /"), std::string::npos) << r.err;

  r = run_process({TIERSWAPD, "--version"});
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("features: "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(TIERSWAP_TEST_HAVE_CUDA ? "cuda=yes" : "cuda=no"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("sd_notify=libsystemd-"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace tierswap::test

namespace tierswap::test {
namespace {

// The policy engine live: tierswapd-test with a GPU sample provider read
// from a file (--test-vram-samples; the installed tierswapd has no such
// seam) that says free VRAM is below the reserve. Within a tick the daemon
// evacuates the tier (today: the demote path, on the recording kernel),
// the PolicyAction signal names the rule and the caller, the counter shows
// in `tierswapctl status`, and the --record trace replays through
// `tierswapctl simulate` to the same decision.
TEST(TierswapdPolicy, FreeVramBelowTheReserveEvacuatesWithAPolicyActionAndAReplayableRecord) {
  TestBus bus;
  const fs::path root = make_fake_root(bus.dir());
  const std::string samples = bus.dir() + "/vram.jsonl", record = bus.dir() + "/record.jsonl";
  // "fast" stands in for a VRAM tier: no vram tier can be set up without
  // the nbd driver, and the runner's evacuate is the same demote path.
  spit(samples,
       R"({"t_ms": 0, "vram": [{"tier": "fast", "free_bytes": 268435456, "total_bytes": 25769803776}]})"
       "\n");
  auto conn = sdbus::createSessionBusConnectionWithAddress(bus.address());
  auto proxy = sdbus::createProxy(*conn, dbus::kBusName, dbus::kManagerPath);
  std::mutex mu;
  std::vector<std::string> actions;
  proxy->uponSignal("PolicyAction")
      .onInterface(dbus::kManagerInterface)
      .call([&](const std::string& what, const std::string& why, const std::string& numbers) {
        std::lock_guard lk(mu);
        actions.push_back(what + ": " + why + " " + numbers);
      });
  proxy->finishRegistration();
  conn->enterEventLoopAsync();

  auto argv = daemon_argv(root);
  for (const auto& a : {"--bus-address", bus.address().c_str(), "--test-vram-samples", samples.c_str(),
                        "--record", record.c_str()})
    argv.emplace_back(a);
  const std::string log = bus.dir() + "/service.out";
  {
    ChildProcess daemon(argv, log);
    ASSERT_TRUE(bus.wait_for_name(dbus::kBusName, 10000)) << read_file(log);
    auto has = [&](const std::string& part) {
      std::lock_guard lk(mu);
      return std::any_of(actions.begin(), actions.end(),
                         [&](const std::string& a) { return a.find(part) != std::string::npos; });
    };
    // A tick every 2 s; a generous deadline for loaded cores.
    ASSERT_TRUE(wait_for([&] { return has("evacuate: tier fast drained"); }, std::chrono::seconds(30)))
        << read_file(log);
    EXPECT_TRUE(
        has("evacuate: tier fast (/dev/zram1): evacuate requested by daemon policy rule \"reserve\" "
            "(free VRAM 256 MiB"))
        << ::testing::PrintToString(actions);
    EXPECT_NE(read_file(log).find("evacuate requested by daemon policy rule \"reserve\""), std::string::npos)
        << read_file(log);
    auto st = run_process({ctl_path(), "status"}, {"DBUS_SYSTEM_BUS_ADDRESS=" + bus.address()});
    EXPECT_EQ(st.code, 0) << st.err;
    EXPECT_NE(st.out.find("policy    evacuate/reserve 1"), std::string::npos) << st.out;
    EXPECT_NE(st.out.find("drained"), std::string::npos) << st.out;
    auto js = run_process({ctl_path(), "status", "--json"}, {"DBUS_SYSTEM_BUS_ADDRESS=" + bus.address()});
    auto s = dbus::status_from_json(js.out);
    ASSERT_TRUE(s) << js.out;
    ASSERT_EQ(s->policy_actions.size(), 1u) << js.out;
    EXPECT_EQ(s->policy_actions[0].action, "evacuate");
    EXPECT_EQ(s->policy_actions[0].rule, "reserve");
    EXPECT_EQ(s->policy_actions[0].count, 1u);
    test::set_swap_used(root / "proc/swaps", "/dev/zram1", 0);
  }
  conn->leaveEventLoop();

  const std::string trace = read_file(record);
  ASSERT_FALSE(trace.empty()) << read_file(log);
  auto sim = run_process({ctl_path(), "simulate", record});
  ASSERT_EQ(sim.code, 0) << sim.err;
  EXPECT_NE(sim.out.find("fast  evacuate  reserve"), std::string::npos) << sim.out << "\n" << trace;
  std::size_t n = 0;
  for (std::size_t p = 0; (p = sim.out.find("evacuate", p)) != std::string::npos; ++p) ++n;
  EXPECT_EQ(n, 1u) << sim.out;
  EXPECT_FALSE(fs::exists(root / "run/tierswap/state.json")) << read_file(log);
}

// The installed daemon's power reader: no UPower on the bus, so the
// snapshot's on_battery comes from /sys/class/power_supply under the root
// (a battery discharging, no mains online), and --record shows it; with
// the mains online again the next snapshots say on AC.
TEST(TierswapdPolicy, PowerComesFromPowerSupplyWhereUPowerIsAbsent) {
  TestBus bus;
  const fs::path root = make_fake_root(bus.dir());
  const fs::path ps = root / "sys/class/power_supply";
  fs::create_directories(ps / "BAT0");
  fs::create_directories(ps / "AC");
  spit((ps / "BAT0/type").string(), "Battery\n");
  spit((ps / "BAT0/scope").string(), "System\n");
  spit((ps / "BAT0/status").string(), "Discharging\n");
  spit((ps / "AC/type").string(), "Mains\n");
  spit((ps / "AC/online").string(), "0\n");
  const std::string record = bus.dir() + "/record.jsonl";
  auto argv = daemon_argv(root);
  for (const auto& a : {"--bus-address", bus.address().c_str(), "--record", record.c_str()})
    argv.emplace_back(a);
  const std::string log = bus.dir() + "/service.out";
  ChildProcess daemon(argv, log);
  ASSERT_TRUE(bus.wait_for_name(dbus::kBusName, 10000)) << read_file(log);
  auto has = [&](const char* part) { return read_file(record).find(part) != std::string::npos; };
  ASSERT_TRUE(wait_for([&] { return has("\"on_battery\":true"); }, std::chrono::seconds(30)))
      << read_file(record) << read_file(log);
  EXPECT_NE(read_file(log).find("UPower not used"), std::string::npos) << read_file(log);
  spit((ps / "AC/online").string(), "1\n");
  spit((ps / "BAT0/status").string(), "Charging\n");
  const auto before = read_file(record).size();
  EXPECT_TRUE(
      wait_for([&] { return read_file(record).find("\"on_battery\":false", before) != std::string::npos; },
               std::chrono::seconds(30)))
      << read_file(record);
}

}  // namespace
}  // namespace tierswap::test
