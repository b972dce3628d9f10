// tierswapctl and the D-Bus API over a private dbus-daemon, against the
// scripted manager served by the real DbusService (see bus_fixture.hpp for
// swapping in tierswapd).
#include <gtest/gtest.h>
#include <pwd.h>
#include <sdbus-c++/sdbus-c++.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <thread>
#include <tuple>

#include "dbus/names.hpp"
#include "dbus/status_json.hpp"
#include "tests/dbus/bus_fixture.hpp"

namespace tierswap::test {
namespace {

namespace fs = std::filesystem;

class DbusTest : public BusTest {
 protected:
  void SetUp() override { start({}); }
  void start(const std::vector<std::string>& args) {
    svc_.reset();
    svc_ = std::make_unique<Service>(bus_, args);
    ASSERT_TRUE(svc_->ready()) << read_file(bus_.dir() + "/service.out");
  }

  std::unique_ptr<Service> svc_;
};

std::string golden(const std::string& name) {
  return read_file(source_dir() + "/tests/dbus/golden/" + name);
}

TEST_F(DbusTest, StatusHumanMatchesGolden) {
  auto r = ctl({"status"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, golden("status.txt"));
  std::istringstream lines(r.out);
  for (std::string l; std::getline(lines, l);) EXPECT_LE(l.size(), 80u) << l;
}

TEST_F(DbusTest, StatusJsonMatchesGoldenAndGetStatus) {
  auto r = ctl({"status", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, golden("status.json"));
  auto parsed = dbus::status_from_json(r.out);
  ASSERT_TRUE(parsed) << parsed.error().message;
  ASSERT_EQ(parsed->tiers.size(), 2u);
  EXPECT_EQ(parsed->tiers[0].name, "fast");
}

TEST_F(DbusTest, IntrospectionMatchesXml) {
  for (auto [path, iface, xml] :
       {std::tuple<std::string, std::string, std::string>{"/org/tierswap/Manager1", "org.tierswap.Manager1",
                                                          "org.tierswap.Manager1.xml"},
        {"/org/tierswap/Tier/fast", "org.tierswap.Tier1", "org.tierswap.Tier1.xml"}}) {
    auto r = run_process({"busctl", "--address=" + bus_.address(), "introspect", "--no-pager",
                          "org.tierswap.Manager1", path, iface});
    ASSERT_EQ(r.code, 0) << r.err;
    std::set<std::string> seen, want;
    std::regex row(R"(^\.(\w+)\s+(method|property|signal)\b)");
    std::istringstream lines(r.out);
    for (std::string l; std::getline(lines, l);) {
      std::smatch m;
      if (std::regex_search(l, m, row)) seen.insert(m[2].str() + " " + m[1].str());
    }
    const std::string text = read_file(source_dir() + "/dbus/" + xml);
    std::regex decl(R"re(<(method|property|signal) name="(\w+)")re");
    for (auto it = std::sregex_iterator(text.begin(), text.end(), decl); it != std::sregex_iterator(); ++it)
      want.insert((*it)[1].str() + " " + (*it)[2].str());
    EXPECT_EQ(seen, want) << r.out;
  }
}

TEST_F(DbusTest, ObjectManagerListsOneObjectPerTier) {
  auto conn = sdbus::createSessionBusConnectionWithAddress(bus_.address());
  auto proxy = sdbus::createProxy(*conn, dbus::kBusName, dbus::kObjectManagerPath);
  std::map<sdbus::ObjectPath, std::map<std::string, std::map<std::string, sdbus::Variant>>> objects;
  proxy->callMethod("GetManagedObjects")
      .onInterface("org.freedesktop.DBus.ObjectManager")
      .storeResultsTo(objects);
  std::set<std::string> paths;
  for (const auto& [p, ifaces] : objects) paths.insert(p);
  EXPECT_EQ(paths, (std::set<std::string>{"/org/tierswap/Manager1", "/org/tierswap/Tier/fast",
                                          "/org/tierswap/Tier/disk_2dswap"}));
  const auto& props = objects.at(sdbus::ObjectPath("/org/tierswap/Tier/fast")).at("org.tierswap.Tier1");
  EXPECT_EQ(props.at("Kind").get<std::string>(), "zram");
  EXPECT_EQ(props.at("Priority").get<int32_t>(), 100);
  EXPECT_EQ(props.at("SizeBytes").get<uint64_t>(), 8589934592u);
}

TEST_F(DbusTest, DemoteShowsProgressAndEndsWithOutcome) {
  auto r = ctl({"demote", "fast"});
  ASSERT_EQ(r.code, 0) << r.err;
  // Not a terminal: one progress line per signal, ending at 100%.
  EXPECT_NE(r.err.find("fast:  20%"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("fast: 100%  1.2G/1.2G (314572/314572 pages)"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("fast: demoted, drained in"), std::string::npos) << r.out;
  EXPECT_EQ(svc_->calls(), "demote fast\n");
  auto st = ctl({"status", "--json"});
  EXPECT_NE(
      st.out.find(R"("name":"fast","kind":"zram","device":"/dev/zram0","priority":100,"state":"drained")"),
      std::string::npos)
      << st.out;
}

TEST_F(DbusTest, DemoteJsonAndNoWait) {
  auto r = ctl({"demote", "fast", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find(R"("outcome":"drained")"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(R"("why":"tier fast drained on request")"), std::string::npos) << r.out;
  r = ctl({"promote", "fast", "--no-wait"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "promote of fast started (follow it with tierswapctl status)\n");
}

TEST_F(DbusTest, TierPropertiesChangedIsSentOnDemote) {
  auto conn = sdbus::createSessionBusConnectionWithAddress(bus_.address());
  auto proxy = sdbus::createProxy(*conn, dbus::kBusName, "/org/tierswap/Tier/fast");
  std::atomic<int> drained{0};
  proxy->uponSignal("PropertiesChanged")
      .onInterface("org.freedesktop.DBus.Properties")
      .call([&](const std::string& iface, const std::map<std::string, sdbus::Variant>& changed,
                const std::vector<std::string>&) {
        if (iface != "org.tierswap.Tier1") return;
        auto it = changed.find("State");
        if (it != changed.end() && it->second.get<std::string>() == "drained") ++drained;
      });
  proxy->finishRegistration();
  conn->enterEventLoopAsync();
  ASSERT_EQ(ctl({"demote", "fast"}).code, 0);
  // A generous deadline for two loaded cores; the loop ends as soon as it arrives.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (drained == 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  conn->leaveEventLoop();
  EXPECT_GE(drained.load(), 1);
}

TEST_F(DbusTest, MalformedArgumentsGetNamedErrorsAndChangeNothing) {
  const std::string huge(1 << 20, 'a');
  for (const char* m : {"Demote", "Promote"}) {
    EXPECT_EQ(call(m, ""), dbus::kErrInvalidArgument) << last_message_;
    EXPECT_NE(last_message_.find("tier name is empty"), std::string::npos) << last_message_;
    EXPECT_EQ(call(m, huge), dbus::kErrInvalidArgument);
    EXPECT_LT(last_message_.size(), 200u);  // says how long, does not echo it back
    EXPECT_EQ(call(m, "bad/name"), dbus::kErrInvalidArgument);
    EXPECT_EQ(call(m, "x\n"), dbus::kErrInvalidArgument);
    EXPECT_EQ(call(m, "nosuch"), dbus::kErrNoSuchTier);
    EXPECT_NE(last_message_.find("(tiers: fast, disk-swap)"), std::string::npos) << last_message_;
  }
  EXPECT_EQ(svc_->calls(), "");
  auto r = ctl({"demote", "nosuch"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("[org.tierswap.Error.NoSuchTier]"), std::string::npos) << r.err;
  EXPECT_EQ(ctl({"demote"}).code, 2);
  EXPECT_EQ(ctl({"demote", "a", "b"}).code, 2);
  EXPECT_EQ(svc_->calls(), "");
}

TEST_F(DbusTest, NotEnoughMemoryAndInvalidConfigAreNamed) {
  start({"--enomem", "disk-swap", "--reload-error",
         "/etc/tierswap.yaml:3:9: tiers[0].size: \"12X\" is not a size"});
  auto r = ctl({"demote", "disk-swap"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("only 1.0 GiB free in the other swap areas [org.tierswap.Error.NotEnoughMemory]"),
            std::string::npos)
      << r.err;
  r = ctl({"reload"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("\"12X\" is not a size [org.tierswap.Error.InvalidConfig]"), std::string::npos)
      << r.err;
}

TEST_F(DbusTest, UnprivilegedCallerReadsButIsDeniedEveryMutation) {
  if (getpwnam("nobody") == nullptr || geteuid() != 0)
    GTEST_SKIP() << "needs root and a user nobody (runuser)";
  if (access(ctl_path().c_str(), X_OK) != 0) GTEST_SKIP() << "tierswapctl not reachable";
  auto r = ctl_as_nobody({"status"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, golden("status.txt"));
  for (std::vector<std::string> args :
       {std::vector<std::string>{"reload"}, {"demote", "fast"}, {"promote", "fast"}, {"demote", "nosuch"}}) {
    r = ctl_as_nobody(args);
    EXPECT_EQ(r.code, 4) << args[0] << ": " << r.err;
    EXPECT_NE(r.err.find("[org.tierswap.Error.AccessDenied]"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("is for root only (caller is uid 65534"), std::string::npos) << r.err;
  }
  EXPECT_EQ(svc_->calls(), "");
}

TEST_F(DbusTest, OnlyRootMayOwnTheName) {
  if (getpwnam("nobody") == nullptr || geteuid() != 0)
    GTEST_SKIP() << "needs root and a user nobody (runuser)";
  auto r = run_process({"runuser", "-u", "nobody", "--", "busctl", "--address=" + bus_.address(), "call",
                        "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                        "RequestName", "su", "org.tierswap.Manager1", "0"});
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("Access denied"), std::string::npos) << r.err;
}

// Teardown: once the service stops taking mutations (tierswapd's first step
// on SIGTERM, before it aborts a demote and swaps its tiers off), Demote,
// Promote and Reload are refused as Busy and reach no manager, so none can
// start a second swapoff of an area the teardown is taking down. Reads still
// work until the service leaves the bus.
TEST_F(DbusTest, NoMutationIsAcceptedOnceStopping) {
  start({"--linger-ms", "10000"});
  ASSERT_EQ(::kill(svc_->pid(), SIGTERM), 0);
  // Until the signal is handled, a Demote of an unknown tier is NoSuchTier.
  std::string name;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while ((name = call("Demote", "nosuch")) != dbus::kErrBusy && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_EQ(name, dbus::kErrBusy) << last_message_;
  EXPECT_NE(last_message_.find("Demote refused: the test server is stopping"), std::string::npos)
      << last_message_;
  EXPECT_EQ(call("Demote", "fast"), dbus::kErrBusy) << last_message_;
  EXPECT_EQ(call("Promote", "disk-swap"), dbus::kErrBusy) << last_message_;
  auto r = ctl({"reload"});
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("Reload refused: the test server is stopping"), std::string::npos) << r.err;
  EXPECT_EQ(svc_->calls(), "");
  EXPECT_EQ(ctl({"status"}).code, 0);
}

TEST_F(DbusTest, DaemonNotRunningIsExit3WithHowToStart) {
  svc_.reset();
  auto r = ctl({"status"});
  EXPECT_EQ(r.code, 3);
  EXPECT_NE(r.err.find("tierswapd is not running"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("systemctl start tierswapd"), std::string::npos) << r.err;
  r = run_process({ctl_path(), "reload"},
                  {"DBUS_SYSTEM_BUS_ADDRESS=unix:path=" + bus_.dir() + "/nothing-here"});
  EXPECT_EQ(r.code, 3);
  EXPECT_NE(r.err.find("cannot reach the system bus"), std::string::npos) << r.err;
}

TEST_F(DbusTest, WatchOnAPipePrintsOnce) {
  auto r = ctl({"watch"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, golden("status.txt"));
  r = ctl({"top", "--json", "--count", "2", "--interval", "0.1"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, golden("status.json") + golden("status.json"));
}

// ---- doctor against fake roots (no bus needed) ----

class FakeRoot {
 public:
  FakeRoot() {
    char tmpl[] = "/tmp/tierswap-doctor-XXXXXX";
    dir_ = mkdtemp(tmpl);
    put("proc/swaps", "Filename\tType\tSize\tUsed\tPriority\n");
    put("proc/meminfo", "MemTotal:       16384000 kB\nMemAvailable:    8192000 kB\nSwapTotal:  0 kB\n");
    put("proc/sys/vm/swappiness", "150\n");
    put("sys/module/zswap/parameters/enabled", "N\n");
    put("proc/1/comm", "init\n");
  }
  ~FakeRoot() { fs::remove_all(dir_); }
  void put(const std::string& rel, const std::string& text) {
    fs::create_directories(fs::path(dir_ + "/" + rel).parent_path());
    std::ofstream(dir_ + "/" + rel) << text;
  }
  ProcResult doctor() { return run_process({ctl_path(), "doctor", "--root", dir_}); }
  std::string dir_;
};

bool has_line(const std::string& out, const std::string& status, const std::string& id) {
  std::istringstream lines(out);
  for (std::string l; std::getline(lines, l);)
    if (l.rfind(status, 0) == 0 && l.find(" " + id + " ") != std::string::npos) return true;
  return false;
}

TEST(Doctor, CleanMachineHasNoTrap) {
  FakeRoot root;
  auto r = root.doctor();
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(r.out, golden("doctor-clean.txt"));
}

TEST(Doctor, ZswapAndZramBothOn) {
  FakeRoot root;
  root.put("sys/module/zswap/parameters/enabled", "Y\n");
  root.put("proc/swaps", "Filename\tType\tSize\tUsed\tPriority\n/dev/zram0 partition 8388604 0 100\n");
  auto r = root.doctor();
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(has_line(r.out, "warn", "zswap-zram")) << r.out;
}

TEST(Doctor, LowSwappinessWithFastTier) {
  FakeRoot root;
  root.put("proc/sys/vm/swappiness", "60\n");
  root.put("proc/swaps", "Filename\tType\tSize\tUsed\tPriority\n/dev/zram0 partition 8388604 0 100\n");
  auto r = root.doctor();
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(has_line(r.out, "warn", "swappiness")) << r.out;
  EXPECT_NE(r.out.find("vm.swappiness is 60 while zram swap is on"), std::string::npos) << r.out;
}

TEST(Doctor, DesktopWithoutOomKiller) {
  FakeRoot root;
  root.put("proc/812/comm", "gnome-shell\n");
  auto r = root.doctor();
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(has_line(r.out, "warn", "oom-killer")) << r.out;
  root.put("proc/900/comm", "systemd-oomd\n");
  r = root.doctor();
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_TRUE(has_line(r.out, "ok", "oom-killer")) << r.out;
}

TEST(Doctor, KubeletWithFailSwapOnAndSwap) {
  FakeRoot root;
  root.put("proc/swaps", "Filename\tType\tSize\tUsed\tPriority\n/swapfile file 1048572 0 -2\n");
  root.put("var/lib/kubelet/config.yaml", "kind: KubeletConfiguration\nfailSwapOn: true\n");
  auto r = root.doctor();
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(has_line(r.out, "warn", "kubelet-swap")) << r.out;
  root.put("var/lib/kubelet/config.yaml", "kind: KubeletConfiguration\nfailSwapOn: false\n");
  EXPECT_EQ(root.doctor().code, 0);
}

TEST(Doctor, ContainerLimitBelowMemTotal) {
  FakeRoot root;
  root.put("sys/fs/cgroup/memory.max", "2147483648\n");
  auto r = root.doctor();
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(has_line(r.out, "warn", "container-limit")) << r.out;
  EXPECT_NE(r.out.find("limited to 2.0G"), std::string::npos) << r.out;
}

TEST(Doctor, MemAvailableLow) {
  FakeRoot root;
  root.put("proc/meminfo", "MemTotal:       16384000 kB\nMemAvailable:     512000 kB\nSwapTotal: 0 kB\n");
  auto r = root.doctor();
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(has_line(r.out, "warn", "mem-available")) << r.out;
}

TEST(Doctor, JsonListsEveryCheck) {
  FakeRoot root;
  auto r = run_process({ctl_path(), "doctor", "--root", root.dir_, "--json"});
  EXPECT_EQ(r.code, 0);
  for (const char* id : {"zswap-zram", "swappiness", "oom-killer", "kubelet-swap", "container-limit",
                         "mem-available", "vram-display"})
    EXPECT_NE(r.out.find(std::string("\"check\": \"") + id + "\""), std::string::npos) << id;
}

TEST(Completion, ShippedFilesMatchTheCommandTable) {
  EXPECT_EQ(run_process({ctl_path(), "completion", "bash"}).out,
            read_file(source_dir() + "/packaging/completion/tierswapctl.bash"));
  EXPECT_EQ(run_process({ctl_path(), "completion", "zsh"}).out,
            read_file(source_dir() + "/packaging/completion/_tierswapctl"));
}

// Field by field, so that a field the serializer drops or the parser
// ignores shows up (comparing status_to_json() with itself would not).
void expect_same_pressure(const PressureLine& got, const PressureLine& want) {
  EXPECT_DOUBLE_EQ(got.avg10, want.avg10);
  EXPECT_DOUBLE_EQ(got.avg60, want.avg60);
  EXPECT_DOUBLE_EQ(got.avg300, want.avg300);
  EXPECT_EQ(got.total_us, want.total_us);
}

void expect_same_status(const Status& got, const Status& want) {
  EXPECT_EQ(got.version, want.version);
  EXPECT_EQ(got.state, want.state);
  EXPECT_EQ(got.config_source, want.config_source);
  EXPECT_EQ(got.swappiness, want.swappiness);
  for (const auto& [name, g, w] :
       {std::tuple{"memory.some", &got.memory_pressure.some, &want.memory_pressure.some},
        std::tuple{"memory.full", &got.memory_pressure.full, &want.memory_pressure.full},
        std::tuple{"io.some", &got.io_pressure.some, &want.io_pressure.some},
        std::tuple{"io.full", &got.io_pressure.full, &want.io_pressure.full}}) {
    SCOPED_TRACE(name);
    expect_same_pressure(*g, *w);
  }
  EXPECT_DOUBLE_EQ(got.swap_in_pages_per_s, want.swap_in_pages_per_s);
  EXPECT_DOUBLE_EQ(got.swap_out_pages_per_s, want.swap_out_pages_per_s);
  EXPECT_EQ(got.mem_total_bytes, want.mem_total_bytes);
  EXPECT_EQ(got.mem_available_bytes, want.mem_available_bytes);
  ASSERT_EQ(got.tiers.size(), want.tiers.size());
  for (size_t i = 0; i < want.tiers.size(); ++i) {
    SCOPED_TRACE("tiers[" + std::to_string(i) + "]");
    const auto &g = got.tiers[i], &w = want.tiers[i];
    EXPECT_EQ(g.name, w.name);
    EXPECT_EQ(g.kind, w.kind);
    EXPECT_EQ(g.device, w.device);
    EXPECT_EQ(g.priority, w.priority);
    EXPECT_EQ(to_string(g.state), to_string(w.state));
    EXPECT_EQ(g.size_bytes, w.size_bytes);
    EXPECT_EQ(g.used_bytes, w.used_bytes);
    EXPECT_EQ(g.stored_bytes, w.stored_bytes);
    EXPECT_DOUBLE_EQ(g.compression_ratio, w.compression_ratio);
    EXPECT_EQ(g.latency_p99_us, w.latency_p99_us);
  }
  ASSERT_EQ(got.gpus.size(), want.gpus.size());
  for (size_t i = 0; i < want.gpus.size(); ++i) {
    SCOPED_TRACE("gpus[" + std::to_string(i) + "]");
    EXPECT_EQ(got.gpus[i].name, want.gpus[i].name);
    EXPECT_EQ(got.gpus[i].total_bytes, want.gpus[i].total_bytes);
    EXPECT_EQ(got.gpus[i].free_bytes, want.gpus[i].free_bytes);
    EXPECT_EQ(got.gpus[i].used_by_tier_bytes, want.gpus[i].used_by_tier_bytes);
  }
}

// Every field set apart from its default.
Status full_status() {
  Status s;
  s.version = "9.8.7";
  s.state = "reloading";
  s.config_source = "/etc/tierswap \"x\".yaml";
  s.swappiness = 133;
  s.memory_pressure = {.some = {0.12, 0.3, 0.25, 123456}, .full = {0.5, 0.01, 0.75, 4567}};
  s.io_pressure = {.some = {1.5, 0.8, 0.4, 987654}, .full = {0.25, 0.2, 0.1, 55555}};
  s.swap_in_pages_per_s = 12.5;
  s.swap_out_pages_per_s = 340;
  s.mem_total_bytes = 16777216000;
  s.mem_available_bytes = 8589934592;
  s.tiers = {TierStatus{.name = "fast",
                        .kind = "zram",
                        .device = "/dev/zram0",
                        .priority = 100,
                        .state = TierState::demoting,
                        .size_bytes = 8589934592,
                        .used_bytes = 1288490188,
                        .stored_bytes = 415641996,
                        .compression_ratio = 3.1,
                        .latency_p99_us = 12},
             TierStatus{.name = "disk-swap",
                        .kind = "file",
                        .device = "/var/swap/a b.swap",
                        .priority = -2,
                        .state = TierState::drained,
                        .size_bytes = 17179869184,
                        .used_bytes = 7,
                        .stored_bytes = 8,
                        .compression_ratio = 1.5,
                        .latency_p99_us = 9}};
  s.gpus = {GpuStatus{
      .name = "H200", .total_bytes = 1ull << 40, .free_bytes = 1ull << 39, .used_by_tier_bytes = 3}};
  return s;
}

TEST(StatusJson, RoundTrips) {
  const auto want = full_status();
  for (const bool pretty : {false, true}) {
    SCOPED_TRACE(pretty ? "pretty" : "one line");
    auto back = dbus::status_from_json(dbus::status_to_json(want, pretty));
    ASSERT_TRUE(back) << back.error().message;
    expect_same_status(*back, want);
  }
  EXPECT_FALSE(dbus::status_from_json(R"({"tiers":[{"state":"melting"}]})"));
  EXPECT_FALSE(dbus::status_from_json("[1,2]"));
}

// The documented example (tierswapctl(8)) reads as written.
TEST(StatusJson, ReadsTheFixture) {
  auto s = dbus::status_from_json(read_file(source_dir() + "/tests/dbus/fixtures/status.json"));
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(s->state, "running");
  EXPECT_EQ(s->swappiness, 150);
  EXPECT_EQ(s->io_pressure.full.total_us, 55555u);
  EXPECT_EQ(s->swap_out_pages_per_s, 340);
  ASSERT_EQ(s->tiers.size(), 2u);
  EXPECT_EQ(s->tiers[0].stored_bytes, 415641996u);
  EXPECT_DOUBLE_EQ(s->tiers[0].compression_ratio, 3.1);
  EXPECT_EQ(s->tiers[1].device, "/var/lib/tierswap/very/long/path/to/the/tier-disk.swap");
  EXPECT_EQ(to_string(s->tiers[1].state), std::string("active"));
}

TEST(Names, TierPathsAndNameRule) {
  EXPECT_EQ(dbus::tier_object_path("fast"), "/org/tierswap/Tier/fast");
  EXPECT_EQ(dbus::tier_object_path("disk-swap_2"), "/org/tierswap/Tier/disk_2dswap_5f2");
  EXPECT_TRUE(dbus::check_tier_name("a-b_C9"));
  EXPECT_FALSE(dbus::check_tier_name(""));
  EXPECT_FALSE(dbus::check_tier_name(std::string(33, 'a')));
  EXPECT_FALSE(dbus::check_tier_name("a b"));
}

}  // namespace
}  // namespace tierswap::test
