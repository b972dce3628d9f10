// UPowerClient against UPower played by python3-dbusmock's `upower`
// template on a private system-style bus (label dbus).
#include "dbus/upower.hpp"

#include <gtest/gtest.h>
#include <sdbus-c++/sdbus-c++.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>

#include "tests/dbus/bus_fixture.hpp"

namespace tierswap::test {
namespace {

using namespace std::chrono_literals;

// What the callback saw, in order; waited on with a bound.
class Changes {
 public:
  dbus::UPowerClient::OnChange callback() {
    return [this](std::optional<bool> v) {
      std::lock_guard lock(m_);
      seen_.push_back(v);
      cv_.notify_all();
    };
  }
  // The next change within `bound`; "timeout" as a distinct answer.
  std::optional<std::optional<bool>> next(std::chrono::milliseconds bound) {
    std::unique_lock lock(m_);
    if (!cv_.wait_for(lock, bound, [&] { return !seen_.empty(); })) return std::nullopt;
    auto v = seen_.front();
    seen_.pop_front();
    return v;
  }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  std::deque<std::optional<bool>> seen_;
};

class UPowerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (run_process({TIERSWAP_PYTHON3, "-c", "import dbusmock"}).code != 0)
      GTEST_SKIP() << TIERSWAP_PYTHON3 << " cannot import dbusmock: install python3-dbusmock "
                   << "(packaging/build-deps.txt)";
  }

  void start_upower(bool on_battery) {
    mock_.reset();
    mock_ = std::make_unique<ChildProcess>(
        std::vector<std::string>{TIERSWAP_PYTHON3, "-m", "dbusmock", "--system", "-t", "upower", "-p",
                                 on_battery ? R"({"OnBattery": true})" : R"({"OnBattery": false})"},
        bus_.dir() + "/upower.log", std::vector<std::string>{"DBUS_SYSTEM_BUS_ADDRESS=" + bus_.address()});
    ASSERT_TRUE(bus_.wait_for_name("org.freedesktop.UPower", 30000))
        << "dbusmock did not take org.freedesktop.UPower: " << read_file(bus_.dir() + "/upower.log");
  }

  // What UPower does when the adapter is pulled: OnBattery changes and
  // PropertiesChanged goes out (the mock's Properties.Set sends it).
  void set_on_battery(bool v) {
    auto conn = sdbus::createSessionBusConnectionWithAddress(bus_.address());
    auto proxy = sdbus::createProxy(*conn, "org.freedesktop.UPower", "/org/freedesktop/UPower");
    proxy->callMethod("Set")
        .onInterface("org.freedesktop.DBus.Properties")
        .withArguments(std::string("org.freedesktop.UPower"), std::string("OnBattery"), sdbus::Variant(v));
  }

  dbus::UPowerOptions options() const { return {bus_.address(), 5000ms}; }

  TestBus bus_{true, {source_dir() + "/tests/dbus/mock-services.conf"}};
  std::unique_ptr<ChildProcess> mock_;
};

TEST_F(UPowerTest, ReadsOnBattery) {
  start_upower(true);
  auto up = dbus::UPowerClient::connect(options());
  ASSERT_TRUE(up) << up.error().message;
  EXPECT_EQ((*up)->on_battery(), std::optional<bool>(true));
  up->reset();
  start_upower(false);
  auto ac = dbus::UPowerClient::connect(options());
  ASSERT_TRUE(ac) << ac.error().message;
  EXPECT_EQ((*ac)->on_battery(), std::optional<bool>(false));
}

TEST_F(UPowerTest, ChangeReachesTheCallbackWithinABound) {
  start_upower(false);
  Changes changes;
  auto up = dbus::UPowerClient::connect(options(), changes.callback());
  ASSERT_TRUE(up) << up.error().message;
  // Unplugged: the callback hears of it well within the policy's tick.
  const auto t0 = std::chrono::steady_clock::now();
  set_on_battery(true);
  auto v = changes.next(5000ms);
  const auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_TRUE(v) << "no PropertiesChanged within 5 s";
  EXPECT_EQ(*v, std::optional<bool>(true));
  EXPECT_LT(took, 5000ms);
  RecordProperty("change_to_callback_us",
                 std::to_string(std::chrono::duration_cast<std::chrono::microseconds>(took).count()));
  EXPECT_EQ((*up)->on_battery(), std::optional<bool>(true));
  // Plugged back in.
  set_on_battery(false);
  v = changes.next(5000ms);
  ASSERT_TRUE(v);
  EXPECT_EQ(*v, std::optional<bool>(false));
  EXPECT_EQ((*up)->on_battery(), std::optional<bool>(false));
  // The same value again is no change: no call.
  set_on_battery(false);
  set_on_battery(true);
  v = changes.next(5000ms);
  ASSERT_TRUE(v);
  EXPECT_EQ(*v, std::optional<bool>(true)) << "a repeated false reached the callback";
}

TEST_F(UPowerTest, UPowerAbsentIsENOENT) {
  auto up = dbus::UPowerClient::connect(options());
  ASSERT_FALSE(up);
  EXPECT_EQ(up.error().code, ENOENT) << up.error().message;
  EXPECT_NE(up.error().message.find("org.freedesktop.UPower"), std::string::npos) << up.error().message;
}

TEST_F(UPowerTest, NoBusIsENOTCONN) {
  auto up = dbus::UPowerClient::connect({"unix:path=" + bus_.dir() + "/no-such-socket", 1000ms});
  ASSERT_FALSE(up);
  EXPECT_EQ(up.error().code, ENOTCONN) << up.error().message;
}

TEST_F(UPowerTest, UPowerLeavingAndComingBackIsFollowed) {
  start_upower(false);
  Changes changes;
  auto up = dbus::UPowerClient::connect(options(), changes.callback());
  ASSERT_TRUE(up) << up.error().message;
  mock_.reset();  // upowerd stops
  auto gone = changes.next(10000ms);
  ASSERT_TRUE(gone) << "UPower leaving the bus was not noticed";
  EXPECT_EQ(*gone, std::nullopt);
  EXPECT_EQ((*up)->on_battery(), std::nullopt);
  start_upower(true);  // and comes back, on battery
  auto back = changes.next(10000ms);
  ASSERT_TRUE(back) << "UPower coming back was not noticed";
  EXPECT_EQ(*back, std::optional<bool>(true));
  EXPECT_EQ((*up)->on_battery(), std::optional<bool>(true));
}

}  // namespace
}  // namespace tierswap::test
