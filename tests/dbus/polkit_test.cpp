// Nothing slow on the daemon's bus loop (label dbus): polkit is asked
// without waiting for it, interaction is allowed only when the caller asked
// for it, and Reload's apply runs on the operation runner while the loop
// keeps answering. polkit is played by python3-dbusmock on the private bus
// (its `polkitd` template, whose SimulateHang keeps every question open
// until ReleaseHangingCalls; or a bare mock whose CheckAuthorization writes
// the flags it got to a file). The daemon is tierswapd-test on the fixture's
// fake root with the recording kernel; a slow reload comes from its
// --test-slow-steps seam (never in the installed tierswapd).
#include <gtest/gtest.h>
#include <pwd.h>
#include <sdbus-c++/sdbus-c++.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <functional>
#include <thread>

#include "dbus/names.hpp"
#include "dbus/status_json.hpp"
#include "tests/dbus/bus_fixture.hpp"
#include "tests/unit/engine/fake_root.hpp"

namespace tierswap::test {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr const char* kPolkitName = "org.freedesktop.PolicyKit1";
constexpr const char* kPolkitPath = "/org/freedesktop/PolicyKit1/Authority";
constexpr const char* kPolkitInterface = "org.freedesktop.PolicyKit1.Authority";
constexpr const char* kMockInterface = "org.freedesktop.DBus.Mock";

bool wait_for(const std::function<bool()>& ok, std::chrono::milliseconds limit) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!ok()) {
    if (std::chrono::steady_clock::now() >= end) return false;
    std::this_thread::sleep_for(20ms);
  }
  return true;
}

double p99(std::vector<double> v) {
  if (v.empty()) return 1e9;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, v.size() * 99 / 100)];
}

class BusLoop : public ::testing::Test {
 protected:
  void SetUp() override {
    if (run_process({TIERSWAP_PYTHON3, "-c", "import dbusmock"}).code != 0)
      GTEST_SKIP() << TIERSWAP_PYTHON3 << " cannot import dbusmock: install python3-dbusmock "
                   << "(packaging/build-deps.txt)";
    if (getpwnam("nobody") == nullptr || geteuid() != 0)
      GTEST_SKIP() << "needs root and a user nobody (runuser): polkit is asked about callers other than root";
    root_ = fs::path(bus_.dir()) / "root";
    fs::copy(source_dir() + "/tests/fixtures/02-zram-file-zswap", root_, fs::copy_options::recursive);
    fs::create_directories(root_ / "proc/pressure");
    for (const char* r : {"memory", "io"})
      spit(
          root_ / "proc/pressure" / r,
          "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n");
    spit(root_ / "proc/vmstat", "pswpin 0\npswpout 0\n");
  }
  void TearDown() override {
    daemon_.reset();  // SIGTERM: tierswapd tears down on the fake root
    polkit_.reset();
    if (!root_.empty() && !server_) {
      EXPECT_FALSE(fs::exists(root_ / "run/tierswap/state.json")) << log();
    }
    server_.reset();
  }

  // polkitd's template (every question hangs while SimulateHang is on).
  void start_polkit_template() {
    polkit_ = std::make_unique<ChildProcess>(
        std::vector<std::string>{TIERSWAP_PYTHON3, "-m", "dbusmock", "--system", "-t", "polkitd"},
        bus_.dir() + "/polkit.log", std::vector<std::string>{"DBUS_SYSTEM_BUS_ADDRESS=" + bus_.address()});
    ASSERT_TRUE(bus_.wait_for_name(kPolkitName, 30000))
        << "dbusmock did not take " << kPolkitName << ": " << read_file(bus_.dir() + "/polkit.log");
    mock("SetAllowed", "as", {"1", dbus::kPolkitAction});
  }
  // A bare mock whose CheckAuthorization authorises everyone and appends
  // the flags it was given to flags_file().
  void start_polkit_recording_flags() {
    polkit_ = std::make_unique<ChildProcess>(
        std::vector<std::string>{TIERSWAP_PYTHON3, "-m", "dbusmock", "--system", kPolkitName, kPolkitPath,
                                 kPolkitInterface},
        bus_.dir() + "/polkit.log", std::vector<std::string>{"DBUS_SYSTEM_BUS_ADDRESS=" + bus_.address()});
    ASSERT_TRUE(bus_.wait_for_name(kPolkitName, 30000))
        << "dbusmock did not take " << kPolkitName << ": " << read_file(bus_.dir() + "/polkit.log");
    const std::string code =
        "open('" + flags_file() + "', 'a').write('%d\\n' % args[3]); ret = (True, False, {})";
    mock("AddMethod", "sssss",
         {kPolkitInterface, "CheckAuthorization", "(sa{sv})sa{ss}us", "(bba{ss})", code});
  }
  std::string flags_file() const { return bus_.dir() + "/polkit-flags"; }

  // A method of the mock's control interface, through busctl (root).
  std::string mock(const std::string& method, const std::string& signature,
                   const std::vector<std::string>& args = {}) {
    std::vector<std::string> argv = {
        "busctl", "--address=" + bus_.address(), "call", kPolkitName, kPolkitPath, kMockInterface, method};
    if (!signature.empty()) argv.push_back(signature);
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = run_process(argv);
    EXPECT_EQ(r.code, 0) << method << ": " << r.err;
    return r.out;
  }
  bool polkit_has_hanging_calls() { return mock("HaveHangingCalls", "") == "b true\n"; }

  void start_daemon(std::vector<std::string> extra = {}) {
    std::vector<std::string> argv = {TIERSWAPD_TEST,  "--test-fake-kernel",
                                     "--root",        root_.string(),
                                     "--config",      (root_ / "etc/tierswap.yaml").string(),
                                     "--bus-address", bus_.address()};
    argv.insert(argv.end(), extra.begin(), extra.end());
    daemon_ = std::make_unique<ChildProcess>(argv, log_path());
    ASSERT_TRUE(bus_.wait_for_name(dbus::kBusName, 20000)) << log();
  }

  // The config's vm.swappiness from 100 to 90 (a reload of one step); the
  // new text.
  std::string config_swappiness_90() {
    const auto cfg = root_ / "etc/tierswap.yaml";
    std::string text = read_file(cfg.string());
    const auto at = text.find("vm.swappiness: 100");
    EXPECT_NE(at, std::string::npos) << text;
    if (at != std::string::npos) text.replace(at, 18, "vm.swappiness: 90");
    spit(cfg, text);
    return text;
  }

  std::string log_path() const { return bus_.dir() + "/service.out"; }
  std::string log() const { return read_file(log_path()); }

  // argv run as nobody with the test bus as its system bus.
  std::vector<std::string> as_nobody(std::vector<std::string> argv) const {
    std::vector<std::string> out = {"runuser", "-u",  "nobody",
                                    "--",      "env", "DBUS_SYSTEM_BUS_ADDRESS=" + bus_.address()};
    out.insert(out.end(), argv.begin(), argv.end());
    return out;
  }
  // busctl as nobody calling a Manager1 method.
  std::vector<std::string> busctl_as_nobody(const std::string& method, bool interactive) const {
    return as_nobody({"busctl", "--address=" + bus_.address(),
                      std::string("--allow-interactive-authorization=") + (interactive ? "yes" : "no"),
                      "call", dbus::kBusName, dbus::kManagerPath, dbus::kManagerInterface, method});
  }

  // GetStatus's JSON, given 2 s (throws sdbus::Error).
  static std::string get_status(sdbus::IProxy& proxy) {
    std::string json;
    proxy.callMethod("GetStatus").onInterface(dbus::kManagerInterface).withTimeout(2s).storeResultsTo(json);
    return json;
  }

  // GetStatus round trips as root for `span`, one every 2 ms, each given
  // 2 s before it counts as lost (a stalled loop): their latencies.
  std::vector<double> get_status_latencies_ms(
      std::chrono::milliseconds span, const std::function<bool()>& go_on = [] { return true; }) {
    auto conn = sdbus::createSessionBusConnectionWithAddress(bus_.address());
    auto proxy = sdbus::createProxy(*conn, dbus::kBusName, dbus::kManagerPath);
    std::vector<double> out;
    const auto end = std::chrono::steady_clock::now() + span;
    while (std::chrono::steady_clock::now() < end && go_on()) {
      const auto t0 = std::chrono::steady_clock::now();
      try {
        (void)get_status(*proxy);
      } catch (const sdbus::Error& e) {
        ADD_FAILURE() << "GetStatus: " << e.getName() << ": " << e.getMessage();
        out.push_back(2000);
        break;
      }
      out.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
      std::this_thread::sleep_for(2ms);
    }
    return out;
  }
  std::string state() {
    auto conn = sdbus::createSessionBusConnectionWithAddress(bus_.address());
    auto proxy = sdbus::createProxy(*conn, dbus::kBusName, dbus::kManagerPath);
    std::string json;
    try {
      json = get_status(*proxy);
    } catch (const sdbus::Error& e) {
      return "(GetStatus: " + e.getMessage() + ")";
    }
    auto s = dbus::status_from_json(json);
    return s ? s->state : "(bad status)";
  }

  TestBus bus_{true, {source_dir() + "/tests/dbus/mock-services.conf"}};
  fs::path root_;
  std::unique_ptr<ChildProcess> polkit_, daemon_;
  std::unique_ptr<Service> server_;
};

// Finding 5: a question polkit takes its time over (here: never answered
// until the test releases it) holds up only the caller it is about. Root's
// GetStatus meanwhile: p99 at most 20 ms above its p99 on the quiet bus
// (measured just before, the same way). The held-up Reload then ends as it
// would have: authorised, "reloaded", exit 0.
TEST_F(BusLoop, SlowPolkitDoesNotDelayAnotherCallersGetStatus) {
  start_polkit_template();
  start_daemon();
  (void)get_status_latencies_ms(200ms);  // warm up
  const double quiet = p99(get_status_latencies_ms(1500ms));
  mock("SimulateHang", "b", {"true"});
  ChildProcess reload(as_nobody({TIERSWAP_CTL, "reload"}), bus_.dir() + "/reload.out");
  ASSERT_TRUE(wait_for([&] { return polkit_has_hanging_calls(); }, 20s))
      << "the daemon never asked polkit about nobody's Reload: " << log();
  const double held = p99(get_status_latencies_ms(1500ms));
  std::printf("GetStatus p99: %.2f ms quiet, %.2f ms while polkit holds a question\n", quiet, held);
  EXPECT_LE(held, quiet + 20.0) << "GetStatus p99 " << held << " ms while polkit decides, " << quiet
                                << " ms quiet";
  EXPECT_EQ(reload.wait_exit(0), -1) << "the Reload must wait for polkit";
  mock("ReleaseHangingCalls", "");
  EXPECT_EQ(reload.wait_exit(20000), 0) << read_file(bus_.dir() + "/reload.out") << log();
  EXPECT_NE(read_file(bus_.dir() + "/reload.out").find("reloaded"), std::string::npos)
      << read_file(bus_.dir() + "/reload.out");
}

// polkit may ask the caller for a password (AllowUserInteraction, flags 1)
// only when the call carries ALLOW_INTERACTIVE_AUTHORIZATION: busctl with
// and without it, and tierswapctl, which sets it on a terminal only.
TEST_F(BusLoop, PolkitMayAskOnlyWhenTheCallerAllowedInteraction) {
  start_polkit_recording_flags();
  start_daemon();
  auto r = run_process(busctl_as_nobody("Reload", true));
  EXPECT_EQ(r.code, 0) << r.err << log();
  r = run_process(busctl_as_nobody("Reload", false));
  EXPECT_EQ(r.code, 0) << r.err << log();
  r = run_process(as_nobody({TIERSWAP_CTL, "reload"}));  // stdin is not a terminal here
  EXPECT_EQ(r.code, 0) << r.err << log();
  EXPECT_EQ(r.out, "reloaded\n");
  std::vector<std::string> want = {"1", "0", "0"};
  // On a terminal (script(1) gives it one), tierswapctl allows interaction.
  const std::string inner = "env DBUS_SYSTEM_BUS_ADDRESS=" + bus_.address() + " " + TIERSWAP_CTL + " reload";
  const auto tty = run_process({"runuser", "-u", "nobody", "--", "script", "-qec", inner, "/dev/null"});
  if (tty.code == 0 && tty.out.find("reloaded") != std::string::npos)
    want.push_back("1");
  else
    std::printf("script(1) could not give tierswapctl a terminal (%d: %s): that case is not checked\n",
                tty.code, tty.err.c_str());
  std::string got = read_file(flags_file()), expected;
  for (const auto& w : want) expected += w + "\n";
  EXPECT_EQ(got, expected) << "CheckAuthorization's flags, one call a line";
}

// Reload replies once its apply has ended, the same result as before, while
// the loop keeps serving: during a reload made slow (each step waits), a
// status read sees "reloading" and answers promptly, and a second mutation
// is refused as busy with what runs. Then the reload's reply: "reloaded",
// exit 0, the new value in place; an invalid config still exits 1 with
// InvalidConfig and changes nothing.
TEST_F(BusLoop, ReloadRunsBesideTheBusAndRepliesWhenItEnds) {
  constexpr int kStepMs = 1500;
  start_daemon({"--test-slow-steps", std::to_string(kStepMs)});
  (void)get_status_latencies_ms(200ms);  // warm up
  const double quiet = p99(get_status_latencies_ms(1000ms));
  const auto cfg = root_ / "etc/tierswap.yaml";
  const std::string text = config_swappiness_90();
  ASSERT_FALSE(HasFailure());

  const auto t0 = std::chrono::steady_clock::now();
  ChildProcess reload({"env", "DBUS_SYSTEM_BUS_ADDRESS=" + bus_.address(), TIERSWAP_CTL, "reload"},
                      bus_.dir() + "/reload.out");
  ASSERT_TRUE(wait_for([&] { return state() == "reloading"; }, 10s))
      << "GetStatus never showed the reload running: " << state() << "\n"
      << log();
  const double during =
      p99(get_status_latencies_ms(std::chrono::milliseconds(kStepMs / 2), [&] { return reload.running(); }));
  std::printf("GetStatus p99: %.2f ms quiet, %.2f ms during a slow reload\n", quiet, during);
  // A loop blocked by a step answers nothing for 1.5 s (2 s timeouts); the
  // margin is for a loaded 2-core machine (16 ms above quiet was seen there).
  EXPECT_LE(during, quiet + 100.0);
  {
    auto conn = sdbus::createSessionBusConnectionWithAddress(bus_.address());
    auto proxy = sdbus::createProxy(*conn, dbus::kBusName, dbus::kManagerPath);
    std::string name, message;
    try {
      proxy->callMethod("Demote")
          .onInterface(dbus::kManagerInterface)
          .withTimeout(2s)
          .withArguments(std::string("fast"));
    } catch (const sdbus::Error& e) {
      name = e.getName();
      message = e.getMessage();
    }
    EXPECT_EQ(name, dbus::kErrBusy) << message;
    EXPECT_NE(message.find("a reload (asked by uid 0 over D-Bus) is running"), std::string::npos) << message;
  }
  ASSERT_EQ(reload.wait_exit(30000), 0) << read_file(bus_.dir() + "/reload.out") << log();
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(read_file(bus_.dir() + "/reload.out"), "reloaded\n");
  EXPECT_GE(took, std::chrono::milliseconds(kStepMs)) << "the reply came before the apply ended";
  EXPECT_EQ(read_file((root_ / "proc/sys/vm/swappiness").string()), "90");
  EXPECT_EQ(state(), "running");

  spit(cfg, text + "this is: [not yaml\n");
  auto bad = run_process({TIERSWAP_CTL, "reload"}, {"DBUS_SYSTEM_BUS_ADDRESS=" + bus_.address()});
  EXPECT_EQ(bad.code, 1) << bad.out << bad.err;
  EXPECT_NE(bad.err.find("[org.tierswap.Error.InvalidConfig]"), std::string::npos) << bad.err;
  EXPECT_EQ(read_file((root_ / "proc/sys/vm/swappiness").string()), "90");
  EXPECT_EQ(state(), "running");
}

// SIGHUP's reload runs beside the loop too (it used to run the whole apply,
// swapoffs included, on the loop that serves the bus): during a reload made
// slow, GetStatus answers "reloading" promptly (a blocked loop answers
// nothing for the step's 1.5 s), a second SIGHUP is refused as busy and
// logged, and the reload's end is logged once it has applied; a config
// that does not parse is logged and changes nothing.
TEST_F(BusLoop, SighupReloadRunsBesideTheBus) {
  constexpr int kStepMs = 1500;
  start_daemon({"--test-slow-steps", std::to_string(kStepMs)});
  const auto cfg = root_ / "etc/tierswap.yaml";
  const std::string text = config_swappiness_90();
  ASSERT_FALSE(HasFailure());

  ASSERT_EQ(::kill(daemon_->pid(), SIGHUP), 0);
  ASSERT_TRUE(wait_for([&] { return state() == "reloading"; }, 10s))
      << "GetStatus never showed the SIGHUP reload running: " << state() << "\n"
      << log();
  const auto during = get_status_latencies_ms(std::chrono::milliseconds(kStepMs / 2));
  ASSERT_FALSE(during.empty());
  EXPECT_LT(*std::max_element(during.begin(), during.end()), kStepMs / 3.0)
      << "a GetStatus waited for a step of the reload";
  ASSERT_EQ(::kill(daemon_->pid(), SIGHUP), 0);
  EXPECT_TRUE(wait_for([&] { return log().find("reload refused") != std::string::npos; }, 10s)) << log();
  EXPECT_NE(log().find("a reload (asked by SIGHUP) is running"), std::string::npos) << log();
  ASSERT_TRUE(wait_for([&] { return log().find("reload: applied") != std::string::npos; }, 60s)) << log();
  EXPECT_EQ(read_file((root_ / "proc/sys/vm/swappiness").string()), "90");
  EXPECT_TRUE(wait_for([&] { return state() == "running"; }, 10s)) << state();

  spit(cfg, text + "this is: [not yaml\n");
  ASSERT_EQ(::kill(daemon_->pid(), SIGHUP), 0);
  ASSERT_TRUE(wait_for([&] { return log().find("reload failed") != std::string::npos; }, 30s)) << log();
  EXPECT_EQ(read_file((root_ / "proc/sys/vm/swappiness").string()), "90");
  EXPECT_TRUE(wait_for([&] { return state() == "running"; }, 10s)) << state();
}

// SIGTERM while a SIGHUP reload runs on the worker: the daemon waits for the
// apply to end, then tears down everything, the reload's change included
// (swappiness back to what it was before the daemon), and exits 0.
TEST_F(BusLoop, SigtermDuringASighupReloadTearsDownCleanly) {
  constexpr int kStepMs = 1000;
  std::string before = read_file((root_ / "proc/sys/vm/swappiness").string());
  while (!before.empty() && before.back() == '\n') before.pop_back();
  ASSERT_NE(before, "90");
  start_daemon({"--test-slow-steps", std::to_string(kStepMs)});
  (void)config_swappiness_90();
  ASSERT_FALSE(HasFailure());
  ASSERT_EQ(::kill(daemon_->pid(), SIGHUP), 0);
  ASSERT_TRUE(wait_for([&] { return state() == "reloading"; }, 10s)) << log();
  ASSERT_EQ(::kill(daemon_->pid(), SIGTERM), 0);
  EXPECT_EQ(daemon_->wait_exit(60000), 0) << log();
  EXPECT_NE(log().find("everything tierswapd changed is restored"), std::string::npos) << log();
  EXPECT_FALSE(fs::exists(root_ / "run/tierswap/state.json")) << log();
  EXPECT_EQ(read_file((root_ / "proc/sys/vm/swappiness").string()), before) << log();
}

// Finding 6: once stopping has begun, no mutation starts, including one
// that polkit authorises only after that (the test server's --linger-ms
// stops mutations on SIGTERM and keeps serving): nobody's Demote waits for
// polkit, the server begins to stop, polkit says yes: Busy, and the
// manager never saw the demote.
TEST_F(BusLoop, AMutationPolkitAuthorisesAfterStoppingBeganIsRefused) {
  start_polkit_template();
  server_ = std::make_unique<Service>(bus_, std::vector<std::string>{"--linger-ms", "20000"});
  ASSERT_TRUE(server_->ready()) << read_file(bus_.dir() + "/service.out");
  mock("SimulateHang", "b", {"true"});
  ChildProcess demote(as_nobody({"busctl", "--address=" + bus_.address(), "call", dbus::kBusName,
                                 dbus::kManagerPath, dbus::kManagerInterface, "Demote", "s", "fast"}),
                      bus_.dir() + "/demote.out");
  ASSERT_TRUE(wait_for([&] { return polkit_has_hanging_calls(); }, 20s))
      << "the server never asked polkit: " << read_file(bus_.dir() + "/service.out");
  ASSERT_EQ(::kill(server_->pid(), SIGTERM), 0);
  // Stopping has begun once a root Promote is refused as such.
  std::string name;
  ASSERT_TRUE(wait_for(
      [&] {
        auto conn = sdbus::createSessionBusConnectionWithAddress(bus_.address());
        auto proxy = sdbus::createProxy(*conn, dbus::kBusName, dbus::kManagerPath);
        try {
          proxy->callMethod("Promote")
              .onInterface(dbus::kManagerInterface)
              .withTimeout(2s)
              .withArguments(std::string("fast"));
        } catch (const sdbus::Error& e) {
          return e.getName() == dbus::kErrBusy;
        }
        return false;
      },
      10s));
  mock("ReleaseHangingCalls", "");
  EXPECT_NE(demote.wait_exit(20000), 0);
  const std::string out = read_file(bus_.dir() + "/demote.out");
  EXPECT_NE(out.find("Demote refused: the test server is stopping"), std::string::npos) << out;
  EXPECT_EQ(server_->calls().find("demote"), std::string::npos) << server_->calls();
}

}  // namespace
}  // namespace tierswap::test
