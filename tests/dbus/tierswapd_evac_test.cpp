// The real tierswapd (tierswapd-test on a fake root, recording kernel) with a
// vram tier served by a real tierswap-nbd (host store, lz4 spill): the
// exporter was set up by an earlier tierswapd (the journal names it), so the
// daemon has only its control socket. `tierswapctl demote` evacuates the tier
// to the spill store with progress (no swapoff), `tierswapctl status` shows it
// evacuated with the exporter's figures, `tierswapctl promote` moves it back.
// The nbd driver is not on these machines: /dev/nbd0 and /proc/swaps are the
// fake root's; the exporter and its control socket are real.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "dbus/names.hpp"
#include "dbus/status_json.hpp"
#include "tests/dbus/bus_fixture.hpp"
#include "tests/unit/engine/fake_root.hpp"

namespace tierswap::test {
namespace {

namespace fs = std::filesystem;

constexpr std::uint64_t kSize = 16ULL << 20;

bool wait_until(const std::function<bool()>& f, std::chrono::milliseconds limit) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (f()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return f();
}

// Field 22 of /proc/PID/stat (the start time re-adoption checks).
std::uint64_t start_time(const std::string& stat) {
  std::istringstream in(stat.substr(stat.rfind(')') + 2));
  std::string field;
  for (int i = 3; i <= 22 && in >> field; ++i)
    if (i == 22) return std::stoull(field);
  return 0;
}

const TierStatus* tier_of(const Status& s, const std::string& name) {
  for (const auto& t : s.tiers)
    if (t.name == name) return &t;
  return nullptr;
}

TEST(TierswapdEvacuation, DemoteEvacuatesAVramTierToItsSpillWithProgressAndPromoteBringsItBack) {
  TestBus bus;
  const fs::path root = fs::path(bus.dir()) / "root";
  fs::copy(source_dir() + "/tests/fixtures/02-zram-file-zswap", root, fs::copy_options::recursive);
  fs::create_directories(root / "run/tierswap");
  fs::permissions(root / "run/tierswap", fs::perms::owner_all);
  const fs::path sock = root / "run/tierswap/exporter-gpu/control";
  const std::string exporter_log = bus.dir() + "/exporter.log";
  fs::create_directories(bus.dir() + "/nbd");  // the data socket's directory: 0700
  fs::permissions(bus.dir() + "/nbd", fs::perms::owner_all);
  auto exporter = std::make_unique<ChildProcess>(
      std::vector<std::string>{TIERSWAP_NBD_BIN, "--socket", bus.dir() + "/nbd/nbd.sock", "--size",
                               std::to_string(kSize), "--store", "host", "--no-mlock", "--chunk", "1M",
                               "--spill", "lz4", "--control-socket", sock.string()},
      exporter_log);
  ASSERT_TRUE(wait_until([&] { return fs::exists(sock); }, std::chrono::seconds(10)))
      << read_file(exporter_log);
  const pid_t pid = exporter->pid();
  const std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  spit(root / ("proc/" + std::to_string(pid) + "/stat"), stat);
  fs::create_directories(root / "sys/module/nbd");
  spit(root / "sys/block/nbd0/pid", "1234\n");
  spit(root / "sys/block/nbd0/size", std::to_string(kSize / 512) + "\n");
  spit(root / "sys/block/nbd0/backend", "tierswap-gpu\n");
  spit(root / "dev/nbd0", "");
  spit(root / "proc/swaps", "Filename\tType\tSize\tUsed\tPriority\n/dev/nbd0\tpartition\t16380\t8000\t50\n");
  fs::create_directories(root / "proc/pressure");
  spit(root / "proc/vmstat", "pswpin 0\npswpout 0\n");
  spit(root / "etc/tierswap.yaml",
       "tiers:\n  - name: gpu\n    kind: vram\n    size: 16M\n    store: host\n    connections: 4\n"
       "    priority: 50\n    spill: {kind: lz4}\n");
  spit(root / "run/tierswap/state.json",
       R"({"version": 2, "source": "/etc/tierswap.yaml", "tiers": [{"name": "gpu", "kind": "vram", )"
       R"("device": "nbd0", "swap_path": "/dev/nbd0", "active": true, "priority": 50, "size": )" +
           std::to_string(kSize) + R"(, "exporter_pid": )" + std::to_string(pid) + R"(, "exporter_start": )" +
           std::to_string(start_time(stat)) +
           R"(, "store": "host", "backend": "tierswap-gpu", "connections": 4, "spill": "lz4", )"
           R"("control_socket": "/run/tierswap/exporter-gpu/control"}], "values": []})");

  const std::string log = bus.dir() + "/service.out";
  const std::vector<std::string> env = {"DBUS_SYSTEM_BUS_ADDRESS=" + bus.address()};
  {
    ChildProcess daemon(
        {TIERSWAPD_TEST, "--test-fake-kernel", "--root", root.string(), "--config",
         (root / "etc/tierswap.yaml").string(), "--keep-on-exit", "--bus-address", bus.address()},
        log);
    ASSERT_TRUE(bus.wait_for_name(dbus::kBusName, 10000)) << read_file(log);
    EXPECT_NE(read_file(log).find("re-adopted"), std::string::npos) << read_file(log);

    auto d = run_process({ctl_path(), "demote", "gpu"}, env, 60);
    ASSERT_EQ(d.code, 0) << d.out << d.err << read_file(log);
    EXPECT_NE(d.out.find("gpu: evacuated to its spill store, evacuated in"), std::string::npos) << d.out;
    EXPECT_NE(d.err.find("gpu: 100%"), std::string::npos) << "progress lines:\n" << d.err;
    EXPECT_NE(read_file(log).find("tier gpu evacuated: 16 MiB moved to its lz4 spill store"),
              std::string::npos)
        << read_file(log);

    auto js = run_process({ctl_path(), "status", "--json"}, env);
    ASSERT_EQ(js.code, 0) << js.err;
    auto s = dbus::status_from_json(js.out);
    ASSERT_TRUE(s) << js.out;
    const TierStatus* gpu = tier_of(*s, "gpu");
    ASSERT_NE(gpu, nullptr) << js.out;
    EXPECT_EQ(gpu->state, TierState::evacuated) << js.out;
    EXPECT_TRUE(gpu->exporter_live) << js.out;
    EXPECT_EQ(gpu->resident_bytes, 0u);
    EXPECT_EQ(gpu->spilled_bytes, kSize);
    EXPECT_EQ(gpu->spill, "lz4");
    auto text = run_process({ctl_path(), "status"}, env);
    EXPECT_NE(text.out.find("evacuated"), std::string::npos) << text.out;
    EXPECT_NE(text.out.find("VRAM 0B resident, 16.0M spilled to lz4"), std::string::npos) << text.out;

    auto p = run_process({ctl_path(), "promote", "gpu"}, env, 60);
    ASSERT_EQ(p.code, 0) << p.out << p.err << read_file(log);
    EXPECT_NE(p.out.find("gpu: promoted, active"), std::string::npos) << p.out;
    js = run_process({ctl_path(), "status", "--json"}, env);
    s = dbus::status_from_json(js.out);
    ASSERT_TRUE(s) << js.out;
    EXPECT_EQ(tier_of(*s, "gpu")->state, TierState::active);
    EXPECT_EQ(tier_of(*s, "gpu")->resident_bytes, kSize);
    // The recording kernel saw no call: the swap area was never touched.
    EXPECT_EQ(read_file(log).find("swapoff /dev/nbd0"), std::string::npos) << read_file(log);
  }
  EXPECT_TRUE(fs::exists(sock)) << "--keep-on-exit: the exporter and its socket stay";
  exporter.reset();  // SIGTERM: no client attached, it exits and removes its socket
  EXPECT_FALSE(fs::exists(sock)) << read_file(exporter_log);
}

}  // namespace
}  // namespace tierswap::test
