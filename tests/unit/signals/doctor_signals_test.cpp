// tierswapctl doctor's gpu-signals and power lines, run as a program: NVML
// through the fake libnvidia-ml.so.1 found by LD_LIBRARY_PATH (as the
// driver's is found by the loader), power from a fake sysfs under --root.
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "tests/unit/run_command.hpp"

namespace tierswap::test {
namespace {

namespace fs = std::filesystem;

// The line of `id` in doctor's table ("" when absent).
std::string line_of(const std::string& out, const std::string& id) {
  std::istringstream in(out);
  for (std::string l; std::getline(in, l);)
    if (l.size() > 6 && l.compare(6, id.size() + 1, id + " ") == 0) return l;
  return "";
}

class DoctorSignals : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("tierswap-doctor-signals-" + std::to_string(getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  void put(const std::string& rel, const std::string& text) {
    fs::create_directories((dir_ / rel).parent_path());
    std::ofstream(dir_ / rel) << text;
  }
  // No system bus: UPower cannot answer, sysfs does.
  std::string env() const { return "DBUS_SYSTEM_BUS_ADDRESS=unix:path=" + (dir_ / "no-bus").string() + " "; }

  fs::path dir_;
};

TEST_F(DoctorSignals, GpuFoundThroughTheLoader) {
  put("state", "count=1\ngpu0.name=NVIDIA H200\ngpu0.uuid=GPU-0123\ngpu0.total=" +
                   std::to_string(140ULL << 30) + "\ngpu0.free=" + std::to_string(100ULL << 30) +
                   "\ngpu0.util=3\ngpu0.temp=40\ngpu0.compute=1:" + std::to_string(4ULL << 30) + "\n");
  const std::string lib_dir = fs::path(FAKE_NVML).parent_path().string();
  auto r = run_command(env() + "LD_LIBRARY_PATH=" + lib_dir +
                       " FAKE_NVML_STATE=" + (dir_ / "state").string() + " " + TIERSWAPCTL + " doctor");
  const std::string gpu = line_of(r.output, "gpu-signals");
  EXPECT_EQ(
      gpu,
      "ok    gpu-signals      NVML found, 1 GPU; GPU 0 (NVIDIA H200, GPU-0123): 100 GiB free of 140 GiB, "
      "4.0 GiB in 1 other process, 3% busy, 40 C")
      << r.output;
  const std::string power = line_of(r.output, "power");
  EXPECT_NE(power.find("; source: sysfs (UPower: cannot connect to the system bus"), std::string::npos)
      << r.output;
}

TEST_F(DoctorSignals, GpuUnavailableSaysWhy) {
  if (void* h = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL)) {
    dlclose(h);
    GTEST_SKIP() << "this machine has libnvidia-ml.so.1: NVML cannot be absent here";
  }
  auto r = run_command(env() + TIERSWAPCTL + " doctor");
  const std::string gpu = line_of(r.output, "gpu-signals");
  EXPECT_EQ(gpu.rfind("skip  gpu-signals      unavailable: libnvidia-ml.so.1 not found (", 0), 0u)
      << r.output;
}

TEST_F(DoctorSignals, PowerFromFakeSysfsUnderRoot) {
  put("proc/meminfo", "MemTotal: 1000 kB\nMemAvailable: 900 kB\n");
  put("sys/class/power_supply/ACAD/type", "Mains\n");
  put("sys/class/power_supply/ACAD/online", "0\n");
  put("sys/class/power_supply/BAT0/type", "Battery\n");
  put("sys/class/power_supply/BAT0/status", "Discharging\n");
  auto r = run_command(std::string(TIERSWAPCTL) + " doctor --root " + dir_.string());
  EXPECT_EQ(line_of(r.output, "power"),
            "ok    power            battery (BAT0 Discharging; line power offline); source: sysfs")
      << r.output;
  EXPECT_EQ(line_of(r.output, "gpu-signals").rfind("skip  gpu-signals      not checked under --root", 0), 0u)
      << r.output;
  put("sys/class/power_supply/ACAD/online", "1\n");
  r = run_command(std::string(TIERSWAPCTL) + " doctor --root " + dir_.string() + " --json");
  EXPECT_NE(r.output.find(R"("summary": "AC (line power online; BAT0 Discharging); source: sysfs")"),
            std::string::npos)
      << r.output;
}

}  // namespace
}  // namespace tierswap::test
