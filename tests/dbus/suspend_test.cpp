// Suspend with a VRAM tier (label dbus): tierswapd-test on a fake root
// whose journal holds a `vram` tier with store cuda that it re-adopts (its
// exporter and /dev/nbd0 exist in the fake /proc and /sys; the recording
// kernel does the swapoff and swapon), and systemd-logind played by
// python3-dbusmock's logind template on the private bus. The mock keeps
// the inhibitor locks it handed out until their descriptor is closed, and
// ListInhibitors shows them: that is how these tests see the daemon take
// and release its locks.
//
// The daemon runs with --keep-on-exit: the fake exporter's pid is not a
// process of ours, and teardown would wait on it.
#include <gtest/gtest.h>
#include <sdbus-c++/sdbus-c++.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <functional>
#include <thread>

#include "dbus/logind.hpp"
#include "dbus/names.hpp"
#include "dbus/status_json.hpp"
#include "tests/dbus/bus_fixture.hpp"
#include "tests/unit/engine/fake_root.hpp"

namespace tierswap::test {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// The fake exporter's pid: the top of the kernel's pid range (2^22 - 1), which
// no process has where pid_max is lower (the default on most machines).
constexpr int kExporterPid = 4194303;

bool wait_for(const std::function<bool()>& ok, std::chrono::milliseconds limit) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!ok()) {
    if (std::chrono::steady_clock::now() >= end) return false;
    std::this_thread::sleep_for(50ms);
  }
  return true;
}

class Suspend : public ::testing::Test {
 protected:
  void SetUp() override {
    if (run_process({TIERSWAP_PYTHON3, "-c", "import dbusmock"}).code != 0)
      GTEST_SKIP() << TIERSWAP_PYTHON3 << " cannot import dbusmock: install python3-dbusmock "
                   << "(packaging/build-deps.txt)";
  }
  void TearDown() override {
    daemon_.reset();
    logind_.reset();
  }

  // The fake machine: the fixture's zram and file tiers (fresh) and a vram
  // tier `gpu` of `size` bytes that an earlier tierswapd left (journal,
  // exporter, /dev/nbd0 swapped on holding `used_kib`).
  void make_root(std::uint64_t size, std::uint64_t used_kib, bool with_zram = true) {
    root_ = fs::path(bus_.dir()) / "root";
    fs::copy(source_dir() + "/tests/fixtures/02-zram-file-zswap", root_, fs::copy_options::recursive);
    spit(root_ / "proc/pressure/memory",
         "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n");
    spit(root_ / "proc/pressure/io",
         "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n");
    spit(root_ / "proc/vmstat", "pswpin 0\npswpout 0\n");
    std::string config = "tiers:\n";
    if (with_zram)
      config +=
          "  - name: fast\n    kind: zram\n    size: 1G\n    algorithm: lz4\n    mem_limit: 512M\n"
          "    priority: 100\n";
    config +=
        "  - name: gpu\n    kind: vram\n    size: " + std::to_string(size) +
        "\n    store: cuda\n    connections: 2\n    priority: 50\n"
        "  - name: disk\n    kind: file\n    path: /var/swap/tier.swap\n    size: 64M\n    priority: 10\n";
    spit(root_ / "etc/tierswap.yaml", config);
    fs::create_directories(root_ / "sys/module/nbd");
    fs::create_directories(root_ / "proc/driver/nvidia/gpus/0000:01:00.0");
    spit(root_ / ("proc/" + std::to_string(kExporterPid) + "/stat"),
         std::to_string(kExporterPid) +
             " (tierswap-nbd) S 1 1 1 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 3 0 777 1000 200\n");
    spit(root_ / "sys/block/nbd0/pid", std::to_string(kExporterPid) + "\n");
    spit(root_ / "sys/block/nbd0/size", std::to_string(size / 512) + "\n");
    spit(root_ / "sys/block/nbd0/backend", "tierswap-gpu\n");
    spit(root_ / "sys/block/nbd0/disksize",
         std::to_string(size) + "\n");  // the recording kernel's swapon size
    spit(root_ / "dev/nbd0", "");
    spit(root_ / "proc/swaps", "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n/dev/nbd0\tpartition\t" +
                                   std::to_string(size / 1024 - 4) + "\t" + std::to_string(used_kib) +
                                   "\t50\n");
    const fs::path journal = root_ / "run/tierswap/state.json";
    spit(journal,
         R"({"version": 2, "source": ")" + (root_ / "etc/tierswap.yaml").string() +
             R"(", "tiers": [{"name": "gpu", "kind": "vram", "device": "nbd0", "swap_path": "/dev/nbd0",
  "created_device": false, "created_file": false, "active": true, "drained": false, "priority": 50,
  "discard": false, "algorithm": "", "size": )" +
             std::to_string(size) + R"(, "mem_limit": 0, "exporter_pid": )" + std::to_string(kExporterPid) +
             R"(, "exporter_start": 777, "store": "cuda",
  "backend": "tierswap-gpu", "connections": 2}], "values": []}
)");
    fs::permissions(journal, fs::perms::owner_read | fs::perms::owner_write);
  }

  void start_logind() {
    logind_ = std::make_unique<ChildProcess>(
        std::vector<std::string>{TIERSWAP_PYTHON3, "-m", "dbusmock", "--system", "-t", "logind"},
        bus_.dir() + "/logind.log", std::vector<std::string>{"DBUS_SYSTEM_BUS_ADDRESS=" + bus_.address()});
    ASSERT_TRUE(bus_.wait_for_name("org.freedesktop.login1", 30000))
        << "dbusmock did not take org.freedesktop.login1: " << read_file(bus_.dir() + "/logind.log");
  }

  // logind's InhibitDelayMaxUSec (the template has none: added as the real
  // logind has it).
  void set_delay_max(std::uint64_t usec) {
    auto conn = sdbus::createSessionBusConnectionWithAddress(bus_.address());
    auto proxy = sdbus::createProxy(*conn, "org.freedesktop.login1", "/org/freedesktop/login1");
    proxy->callMethod("AddProperty")
        .onInterface("org.freedesktop.DBus.Mock")
        .withArguments(std::string("org.freedesktop.login1.Manager"), std::string("InhibitDelayMaxUSec"),
                       sdbus::Variant(usec));
  }

  void start_daemon() {
    daemon_ = std::make_unique<ChildProcess>(
        std::vector<std::string>{TIERSWAPD_TEST, "--test-fake-kernel", "--keep-on-exit", "--root",
                                 root_.string(), "--config", (root_ / "etc/tierswap.yaml").string(),
                                 "--bus-address", bus_.address()},
        log_path());
    ASSERT_TRUE(bus_.wait_for_name(dbus::kBusName, 20000)) << log();
  }

  std::string log_path() const { return bus_.dir() + "/service.out"; }
  std::string log() const { return read_file(log_path()); }

  // The locks tierswap holds, as "what/mode" (from the mock's ListInhibitors).
  std::vector<std::string> locks() {
    auto l = dbus::list_inhibitors({bus_.address(), 5000ms, 1000ms});
    EXPECT_TRUE(l) << l.error().message;
    std::vector<std::string> out;
    if (l)
      for (const auto& i : *l)
        if (i.who == "tierswap") out.push_back(i.what + "/" + i.mode);
    std::sort(out.begin(), out.end());
    return out;
  }
  bool holds(const std::vector<std::string>& want) { return locks() == want; }

  void prepare_for_sleep(bool start) {
    auto conn = sdbus::createSessionBusConnectionWithAddress(bus_.address());
    auto proxy = sdbus::createProxy(*conn, "org.freedesktop.login1", "/org/freedesktop/login1");
    proxy->callMethod("EmitSignal")
        .onInterface("org.freedesktop.DBus.Mock")
        .withArguments(std::string("org.freedesktop.login1.Manager"), std::string("PrepareForSleep"),
                       std::string("b"), std::vector<sdbus::Variant>{sdbus::Variant(start)});
  }

  ProcResult ctl(std::vector<std::string> args) {
    args.insert(args.begin(), ctl_path());
    return run_process(args, {"DBUS_SYSTEM_BUS_ADDRESS=" + bus_.address()});
  }
  Status status() {
    auto r = ctl({"status", "--json"});
    EXPECT_EQ(r.code, 0) << r.err;
    auto s = dbus::status_from_json(r.out);
    EXPECT_TRUE(s) << r.out;
    return s ? *s : Status{};
  }
  std::optional<TierState> state_of(const std::string& tier) {
    for (const auto& t : status().tiers)
      if (t.name == tier) return t.state;
    return std::nullopt;
  }
  std::string swaps() const { return read_file((root_ / "proc/swaps").string()); }

  TestBus bus_{true, {source_dir() + "/tests/dbus/mock-services.conf"}};
  fs::path root_;
  std::unique_ptr<ChildProcess> logind_, daemon_;
};

// The whole cycle: a delay lock while the tier is up; PrepareForSleep(true)
// drains it through the runner's evacuate and releases the lock;
// PrepareForSleep(false) promotes it and takes the lock again.
TEST_F(Suspend, PrepareForSleepDrainsTheVramTierReleasesTheDelayLockAndWakingPromotesIt) {
  make_root(64ULL << 20, 1024);
  spit(root_ / "proc/driver/nvidia/params",
       "ResmanDebugLevel: 4294967295\nPreserveVideoMemoryAllocations: 0\n");
  start_logind();
  start_daemon();
  ASSERT_NE(log().find("tier \"gpu\": re-adopted"), std::string::npos) << log();
  ASSERT_TRUE(wait_for([&] { return holds({"sleep/delay"}); }, 20s))
      << ::testing::PrintToString(locks()) << log();
  Status s = status();
  EXPECT_EQ(s.suspend.inhibitor, "delay");
  EXPECT_NE(s.suspend.detail.find("drains tier gpu before sleep"), std::string::npos) << s.suspend.detail;
  EXPECT_NE(s.suspend.detail.find("PreserveVideoMemoryAllocations: 0 (/proc/driver/nvidia/params)"),
            std::string::npos)
      << s.suspend.detail;
  auto text = ctl({"status"});
  EXPECT_NE(text.out.find("suspend   delayed until drained: drains tier gpu"), std::string::npos) << text.out;

  prepare_for_sleep(true);
  ASSERT_TRUE(wait_for([&] { return state_of("gpu") == TierState::drained; }, 20s)) << log();
  EXPECT_EQ(swaps().find("/dev/nbd0"), std::string::npos) << swaps();
  EXPECT_NE(log().find("evacuate requested by logind PrepareForSleep"), std::string::npos) << log();
  ASSERT_TRUE(wait_for([&] { return holds({}); }, 10s)) << ::testing::PrintToString(locks()) << log();

  prepare_for_sleep(false);
  ASSERT_TRUE(wait_for([&] { return state_of("gpu") == TierState::active; }, 20s)) << log();
  EXPECT_NE(swaps().find("/dev/nbd0"), std::string::npos) << swaps();
  EXPECT_NE(log().find("promote requested by logind PrepareForSleep(false)"), std::string::npos) << log();
  EXPECT_TRUE(wait_for([&] { return holds({"sleep/delay"}); }, 20s))
      << ::testing::PrintToString(locks()) << log();
}

// A tier holding pages the other areas cannot take: a block lock while it
// does, shown by status (text and --json) and doctor; a sleep forced past
// it gets the refusal in the log and the delay lock released; once the
// tier holds nothing the block lock goes.
TEST_F(Suspend, ATierThatCannotBeDrainedHoldsABlockLockShownInStatusAndDoctor) {
  make_root(512ULL << 20, 200 * 1024, /*with_zram=*/false);
  start_logind();
  start_daemon();
  ASSERT_TRUE(wait_for(
      [&] {
        return holds({"sleep/block", "sleep/delay"});
      },
      20s))
      << ::testing::PrintToString(locks()) << log();
  const Status s = status();
  EXPECT_EQ(s.suspend.inhibitor, "block");
  EXPECT_NE(s.suspend.detail.find("tier gpu holds 200 MiB that cannot be drained"), std::string::npos)
      << s.suspend.detail;
  auto text = ctl({"status"});
  EXPECT_NE(text.out.find("suspend   BLOCKED: tier gpu holds 200 MiB"), std::string::npos) << text.out;
  std::istringstream lines(text.out);
  for (std::string l; std::getline(lines, l);) EXPECT_LE(l.size(), 80u) << l;
  auto doc = ctl({"doctor", "--root", root_.string()});
  EXPECT_NE(doc.out.find("warn  suspend"), std::string::npos) << doc.out << doc.err;
  EXPECT_NE(doc.out.find("tier gpu holds 200 MiB"), std::string::npos) << doc.out;

  prepare_for_sleep(true);
  ASSERT_TRUE(
      wait_for([&] { return log().find("cannot be drained before sleep") != std::string::npos; }, 20s))
      << log();
  EXPECT_TRUE(wait_for([&] { return holds({"sleep/block"}); }, 10s)) << ::testing::PrintToString(locks());
  EXPECT_EQ(state_of("gpu"), TierState::active);
  prepare_for_sleep(false);

  set_swap_used(root_ / "proc/swaps", "/dev/nbd0", 0);
  EXPECT_TRUE(wait_for([&] { return holds({"sleep/delay"}); }, 20s))
      << ::testing::PrintToString(locks()) << log();
  EXPECT_EQ(status().suspend.inhibitor, "delay");
}

// The driver keeps video memory across suspend: nothing to guard, logind
// is never asked for a lock.
TEST_F(Suspend, NoLockWhereTheDriverPreservesVideoMemory) {
  make_root(64ULL << 20, 1024);
  spit(root_ / "proc/driver/nvidia/params",
       "ResmanDebugLevel: 4294967295\nPreserveVideoMemoryAllocations: 1\n");
  start_logind();
  start_daemon();
  // Two ticks (2 s each) after the name is taken.
  std::this_thread::sleep_for(5s);
  EXPECT_TRUE(holds({})) << ::testing::PrintToString(locks()) << log();
  const Status s = status();
  EXPECT_EQ(s.suspend.inhibitor, "");
  EXPECT_EQ(s.suspend.detail, "");
}

// logind's InhibitDelayMaxUSec, read the way doctor reads it; an error
// (not a made-up default) where logind lacks it.
TEST_F(Suspend, InhibitDelayMaxIsReadFromLogind) {
  start_logind();
  auto none = dbus::inhibit_delay_max({bus_.address(), 5000ms, 1000ms});
  EXPECT_FALSE(none);
  set_delay_max(7'000'000);
  auto d = dbus::inhibit_delay_max({bus_.address(), 5000ms, 1000ms});
  ASSERT_TRUE(d) << d.error().message;
  EXPECT_EQ(d->count(), 7'000'000);
}

// 32 MiB to drain by swapoff (100 MiB/s assumed: 0.3 s) while logind waits
// 0.1 s: status, the log and doctor say so with the setting to change.
TEST_F(Suspend, ADrainLongerThanLogindWaitsIsSaidInStatusTheLogAndDoctor) {
  make_root(64ULL << 20, 32 * 1024);
  start_logind();
  set_delay_max(100'000);
  start_daemon();
  ASSERT_TRUE(wait_for([&] { return holds({"sleep/delay"}); }, 20s))
      << ::testing::PrintToString(locks()) << log();
  ASSERT_TRUE(wait_for([&] { return status().suspend.detail.find("TOO SLOW") != std::string::npos; }, 20s))
      << status().suspend.detail << log();
  const Status s = status();
  EXPECT_NE(s.suspend.detail.find("TOO SLOW: draining before sleep takes about 0.3 s (tier gpu: 32 MiB by "
                                  "swapoff at 100 MiB/s (assumed)), but logind waits at most 0.1 s"),
            std::string::npos)
      << s.suspend.detail;
  EXPECT_NE(s.suspend.detail.find("InhibitDelayMaxSec=10 in /etc/systemd/logind.conf.d/tierswap.conf"),
            std::string::npos)
      << s.suspend.detail;
  EXPECT_NE(log().find("suspend: draining before sleep takes about 0.3 s"), std::string::npos) << log();
  auto doc = ctl({"doctor", "--root", root_.string()});
  EXPECT_NE(doc.out.find("warn  suspend"), std::string::npos) << doc.out << doc.err;
  EXPECT_NE(doc.out.find("InhibitDelayMaxSec=10"), std::string::npos) << doc.out;
}

// The same tier while logind waits 5 s: no warning anywhere.
TEST_F(Suspend, NoDrainWarningWhenLogindWaitsLongEnough) {
  make_root(64ULL << 20, 32 * 1024);
  start_logind();
  set_delay_max(5'000'000);
  start_daemon();
  ASSERT_TRUE(wait_for([&] { return holds({"sleep/delay"}); }, 20s))
      << ::testing::PrintToString(locks()) << log();
  std::this_thread::sleep_for(3s);  // a tick after the property was read
  const Status s = status();
  EXPECT_EQ(s.suspend.inhibitor, "delay");
  EXPECT_EQ(s.suspend.detail.find("TOO SLOW"), std::string::npos) << s.suspend.detail;
  EXPECT_EQ(log().find("InhibitDelayMaxSec"), std::string::npos) << log();
  auto doc = ctl({"doctor", "--root", root_.string()});
  EXPECT_NE(doc.out.find("ok    suspend"), std::string::npos) << doc.out << doc.err;
}

}  // namespace
}  // namespace tierswap::test
