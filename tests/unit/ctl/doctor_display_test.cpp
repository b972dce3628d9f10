// tierswapctl doctor's "vram-display" and "suspend" checks on fake trees
// (label unit), run as the program: which GPU drives a display comes from
// /sys/class/drm (a connector whose status is "connected", its card's PCI
// device), the tier's GPU from the config's `gpu:` key and the NVIDIA
// driver's /proc/driver/nvidia/gpus (PCI order, as NVML numbers them).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "common/json.hpp"
#include "tests/unit/run_command.hpp"

namespace tierswap::test {
namespace {

namespace fs = std::filesystem;

std::string line_of(const std::string& out, const std::string& id) {
  std::istringstream in(out);
  for (std::string l; std::getline(in, l);)
    if (l.size() > 6 && l.compare(6, id.size() + 1, id + " ") == 0) return l;
  return "";
}

class DoctorDisplay : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("tierswap-doctor-display-" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    // Two NVIDIA GPUs; a display hangs on the first (card0, linked), none on
    // the second (card1, named by its uevent).
    gpu("0000:01:00.0", "NVIDIA GeForce RTX 4090", "GPU-aaaa1111");
    gpu("0000:41:00.0", "NVIDIA H200", "GPU-bbbb2222");
    fs::create_directories(dir_ / "sys/devices/pci0000:00/0000:01:00.0");
    fs::create_directories(dir_ / "sys/class/drm/card0");
    fs::create_symlink("../../../devices/pci0000:00/0000:01:00.0", dir_ / "sys/class/drm/card0/device");
    put("sys/class/drm/card0-HDMI-A-1/status", "connected\n");
    put("sys/class/drm/card0-DP-1/status", "disconnected\n");
    put("sys/class/drm/card1/device/uevent", "DRIVER=nvidia\nPCI_SLOT_NAME=0000:41:00.0\n");
    put("sys/class/drm/card1-DP-2/status", "disconnected\n");
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  void put(const std::string& rel, const std::string& text) {
    fs::create_directories((dir_ / rel).parent_path());
    std::ofstream(dir_ / rel) << text;
  }
  void gpu(const std::string& pci, const std::string& model, const std::string& uuid) {
    put("proc/driver/nvidia/gpus/" + pci + "/information",
        "Model: \t\t " + model + "\nIRQ:   \t\t 140\nGPU UUID: \t " + uuid + "\nBus Location: \t " + pci +
            "\nDevice Minor: \t 0\n");
  }
  void config(const std::string& tier_keys) {
    put("etc/tierswap.yaml",
        "tiers:\n  - name: gpu\n    kind: vram\n    size: 4G\n    priority: 50\n" + tier_keys);
  }
  ::tierswap::test::Run doctor(const std::string& extra = "") {
    // No system bus: logind cannot be asked (the suspend check says so).
    return run_command("DBUS_SYSTEM_BUS_ADDRESS=unix:path=" + (dir_ / "no-bus").string() + " " + TIERSWAPCTL +
                       " doctor --root " + dir_.string() + extra);
  }

  fs::path dir_;
};

TEST_F(DoctorDisplay, TierOnTheGpuDrivingADisplayWarns) {
  config("");  // gpu: absent -> the first GPU
  auto r = doctor();
  const auto l = line_of(r.output, "vram-display");
  EXPECT_EQ(l.rfind("warn", 0), 0u) << r.output;
  EXPECT_NE(l.find("tier gpu is on 0000:01:00.0 (NVIDIA GeForce RTX 4090), which drives a display "
                   "(card0: HDMI-A-1 connected)"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("fix: put the tier on a GPU without a display"), std::string::npos) << r.output;
  EXPECT_EQ(r.code, 1) << r.output;
  auto js = doctor(" --json");
  auto doc = parse_json(js.output, "doctor --json");
  ASSERT_TRUE(doc) << js.output;
  bool seen = false;
  for (const auto& f : *doc)
    if (f["check"] == "vram-display") {
      seen = true;
      EXPECT_EQ(f["status"], "warn");
      EXPECT_TRUE(f.contains("fix"));
    }
  EXPECT_TRUE(seen) << js.output;
}

TEST_F(DoctorDisplay, TierOnAGpuWithoutADisplayIsOkByIndexAndByUuid) {
  config("    gpu: 1\n");
  auto r = doctor();
  EXPECT_EQ(line_of(r.output, "vram-display").rfind("ok", 0), 0u) << r.output;
  EXPECT_NE(line_of(r.output, "vram-display")
                .find("tier gpu on 0000:41:00.0 (NVIDIA H200), which drives no display"),
            std::string::npos)
      << r.output;
  config("    gpu: GPU-bbbb\n");
  r = doctor();
  EXPECT_NE(line_of(r.output, "vram-display").find("on 0000:41:00.0"), std::string::npos) << r.output;
  // The display moves to the H200's card: now it warns.
  put("sys/class/drm/card1-DP-2/status", "connected\n");
  r = doctor();
  EXPECT_NE(line_of(r.output, "vram-display").find("warn  vram-display     tier gpu is on 0000:41:00.0"),
            std::string::npos)
      << r.output;
}

TEST_F(DoctorDisplay, HostStoreNoGpuOrNoConfigSayWhy) {
  config("    store: host\n");
  EXPECT_NE(line_of(doctor().output, "vram-display").find("ok    vram-display     no VRAM tier on a GPU"),
            std::string::npos);
  config("");
  fs::remove_all(dir_ / "proc/driver/nvidia");
  auto r = doctor();
  EXPECT_NE(line_of(r.output, "vram-display").find("skip  vram-display     no NVIDIA GPU"), std::string::npos)
      << r.output;
  fs::remove(dir_ / "etc/tierswap.yaml");
  r = doctor();
  EXPECT_NE(line_of(r.output, "vram-display")
                .find("ok    vram-display     no VRAM tier: no readable /etc/tierswap.yaml"),
            std::string::npos)
      << r.output;
}

TEST_F(DoctorDisplay, SuspendCheckFollowsTheDriverAndSaysWhenLogindCannotBeAsked) {
  config("");
  auto r = doctor();
  const auto l = line_of(r.output, "suspend");
  EXPECT_EQ(l.rfind("skip", 0), 0u) << r.output;
  EXPECT_NE(l.find("VRAM does not survive suspend (/proc/driver/nvidia/params cannot be read"),
            std::string::npos)
      << r.output;
  put("proc/driver/nvidia/params", "PreserveVideoMemoryAllocations: 1\n");
  EXPECT_NE(line_of(doctor().output, "suspend").find("ok    suspend          VRAM survives suspend"),
            std::string::npos);
  config("    store: host\n");
  EXPECT_NE(line_of(doctor().output, "suspend").find("every tier survives suspend"), std::string::npos);
}

}  // namespace
}  // namespace tierswap::test
