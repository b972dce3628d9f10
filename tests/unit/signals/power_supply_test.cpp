// AC or battery from fake /sys/class/power_supply trees, shaped like the
// kernel's (a laptop's ACAD/BAT0, a USB-C charger, a mouse battery, a UPS).
#include "backends/power/power_supply.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>

namespace tierswap::power {
namespace {

namespace fs = std::filesystem;

class PowerSupplyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("tierswap-power-" + std::to_string(getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }
  // The kernel's layout: the class entry is a symlink to the device's
  // directory, whose attributes end in a newline.
  void supply(const std::string& name, const std::map<std::string, std::string>& attrs) {
    const fs::path dev = root_ / "sys/devices/platform" / name / "power_supply" / name;
    fs::create_directories(dev);
    for (const auto& [k, v] : attrs) std::ofstream(dev / k) << v << "\n";
    fs::create_directories(root_ / "sys/class/power_supply");
    fs::create_directory_symlink(dev, root_ / "sys/class/power_supply" / name);
  }
  PowerReading read() const { return read_power_supply(HostFs(root_)); }

  fs::path root_;
};

TEST_F(PowerSupplyTest, LaptopOnAc) {
  supply("ACAD", {{"type", "Mains"}, {"online", "1"}});
  supply("BAT0", {{"type", "Battery"}, {"status", "Charging"}, {"capacity", "80"}});
  const auto r = read();
  EXPECT_EQ(r.source, PowerSource::ac);
  EXPECT_FALSE(r.on_battery());
  EXPECT_TRUE(r.line_power_online);
  EXPECT_EQ(r.batteries, 1);
  EXPECT_EQ(describe(r), "AC (line power online; BAT0 Charging)");
}

TEST_F(PowerSupplyTest, LaptopOnBattery) {
  supply("ACAD", {{"type", "Mains"}, {"online", "0"}});
  supply("BAT0", {{"type", "Battery"}, {"status", "Discharging"}});
  const auto r = read();
  EXPECT_EQ(r.source, PowerSource::battery);
  EXPECT_TRUE(r.on_battery());
  EXPECT_EQ(r.batteries_discharging, 1);
  EXPECT_EQ(describe(r), "battery (BAT0 Discharging; line power offline)");
}

TEST_F(PowerSupplyTest, DischargingWhileMainsOnlineIsAc) {
  // A load above the adapter's rating drains the battery while plugged in.
  supply("AC", {{"type", "Mains"}, {"online", "1"}});
  supply("BAT0", {{"type", "Battery"}, {"status", "Discharging"}});
  EXPECT_EQ(read().source, PowerSource::ac);
}

TEST_F(PowerSupplyTest, UsbCChargerIsLinePower) {
  supply("ucsi-source-psy-USBC000:001", {{"type", "USB"}, {"online", "1"}, {"scope", "System"}});
  supply("BAT1", {{"type", "Battery"}, {"status", "Discharging"}});
  EXPECT_EQ(read().source, PowerSource::ac);
}

TEST_F(PowerSupplyTest, LaptopWithoutMainsEntryOnBattery) {
  supply("BAT0", {{"type", "Battery"}, {"status", "Discharging"}});
  const auto r = read();
  EXPECT_EQ(r.source, PowerSource::battery);
  EXPECT_EQ(describe(r), "battery (BAT0 Discharging; no line power supply)");
}

TEST_F(PowerSupplyTest, FullBatteryWithMainsOfflineIsNotOnBattery) {
  supply("ACAD", {{"type", "Mains"}, {"online", "0"}});
  supply("BAT0", {{"type", "Battery"}, {"status", "Not charging"}});
  EXPECT_EQ(read().source, PowerSource::ac);
}

TEST_F(PowerSupplyTest, DesktopWithoutSuppliesIsUnknown) {
  const auto r = read();  // no /sys/class/power_supply at all
  EXPECT_EQ(r.source, PowerSource::unknown);
  EXPECT_FALSE(r.on_battery());
  fs::create_directories(root_ / "sys/class/power_supply");  // present but empty
  EXPECT_EQ(read().source, PowerSource::unknown);
  EXPECT_EQ(describe(read()), "unknown (no battery or line power in /sys/class/power_supply)");
}

TEST_F(PowerSupplyTest, DesktopWithMainsOnlyIsAc) {
  supply("AC", {{"type", "Mains"}, {"online", "1"}});
  EXPECT_EQ(read().source, PowerSource::ac);
}

TEST_F(PowerSupplyTest, PeripheralBatteriesAreIgnored) {
  // A wireless mouse's battery discharges on a desktop: not the machine's.
  supply("hid-00:1f:20:aa:bb:cc-battery",
         {{"type", "Battery"}, {"scope", "Device"}, {"status", "Discharging"}});
  const auto r = read();
  EXPECT_EQ(r.source, PowerSource::unknown);
  EXPECT_EQ(r.batteries, 0);
  EXPECT_EQ(r.supplies.size(), 1u);
}

TEST_F(PowerSupplyTest, UpsIsIgnored) {
  supply("ups0", {{"type", "UPS"}, {"online", "0"}, {"status", "Discharging"}});
  EXPECT_EQ(read().source, PowerSource::unknown);
  supply("AC", {{"type", "Mains"}, {"online", "1"}});
  EXPECT_EQ(read().source, PowerSource::ac);
}

TEST_F(PowerSupplyTest, EntryWithoutTypeIsSkipped) {
  supply("weird", {{"online", "1"}});
  supply("BAT0", {{"type", "Battery"}, {"status", "Discharging"}});
  const auto r = read();
  EXPECT_EQ(r.source, PowerSource::battery);
  EXPECT_EQ(r.supplies.size(), 1u);
}

TEST(PowerClassify, PureRules) {
  EXPECT_EQ(classify({}).source, PowerSource::unknown);
  EXPECT_EQ(
      classify({{"BAT0", "Battery", "", -1, "Discharging"}, {"BAT1", "Battery", "", -1, "Full"}}).source,
      PowerSource::battery);
  EXPECT_EQ(classify({{"AC", "Mains", "", 1, ""}, {"BAT0", "Battery", "", -1, "Discharging"}}).source,
            PowerSource::ac);
  EXPECT_STREQ(to_string(PowerSource::battery), "battery");
  EXPECT_STREQ(to_string(PowerSource::ac), "AC");
  EXPECT_STREQ(to_string(PowerSource::unknown), "unknown");
}

}  // namespace
}  // namespace tierswap::power
