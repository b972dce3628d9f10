// Test doubles for the daemon's operations: GateKernel (the recording
// kernel with a swapoff that can be held and made to fail) and Events
// (every ManagerEvents callback as a line: "state fast demoting",
// "progress fast 0/1048576", "action demote: ...", "pressure memory ...").
#pragma once

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <string>
#include <vector>

#include "backends/hostfs/host_fs.hpp"
#include "backends/swap/kernel.hpp"
#include "tests/support/recording_kernel.hpp"
#include "dbus/manager_api.hpp"

namespace tierswap::test {

using namespace std::chrono_literals;

class GateKernel final : public swap::Kernel {
 public:
  explicit GateKernel(const HostFs& fs) : fs_(fs), rec_(&fs_) {}
  Result<void> swapon(const std::string& p, int prio, bool d) override { return rec_.swapon(p, prio, d); }
  Result<void> swapoff(const std::string& p) override {
    {
      std::unique_lock lk(mu_);
      in_swapoff_ = true;
      cv_.notify_all();
      cv_.wait(lk, [&] { return open_; });
      in_swapoff_ = false;
    }
    return rec_.swapoff(p);
  }
  Result<std::string> zram_hot_add() override { return rec_.zram_hot_add(); }
  Result<void> zram_hot_remove(const std::string& d) override { return rec_.zram_hot_remove(d); }

  void close_gate() {
    std::lock_guard lk(mu_);
    open_ = false;
  }
  void open_gate() {
    std::lock_guard lk(mu_);
    open_ = true;
    cv_.notify_all();
  }
  bool wait_in_swapoff() {
    std::unique_lock lk(mu_);
    return cv_.wait_for(lk, 5s, [&] { return in_swapoff_; });
  }
  swap::RecordingKernel& rec() { return rec_; }

 private:
  HostFs fs_;
  swap::RecordingKernel rec_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = true, in_swapoff_ = false;
};

struct Events {
  std::mutex mu;
  std::vector<std::string> log;  // "state fast demoting", "progress fast 0/1048576", "action demote: ..."
  ManagerEvents make() {
    ManagerEvents e;
    e.tier_state_changed = [this](const std::string& t, TierState s) {
      add("state " + t + " " + to_string(s));
    };
    e.progress = [this](const std::string& t, std::uint64_t m, std::uint64_t n) {
      add("progress " + t + " " + std::to_string(m) + "/" + std::to_string(n));
    };
    e.policy_action = [this](const std::string& w, const std::string& why, const std::string& nums) {
      add("action " + w + ": " + why + " " + nums);
    };
    e.pressure_alert = [this](const std::string& r, double some, double full) {
      char b[64];
      std::snprintf(b, sizeof b, "pressure %s %.2f %.2f", r.c_str(), some, full);
      add(b);
    };
    return e;
  }
  void add(std::string s) {
    std::lock_guard lk(mu);
    log.push_back(std::move(s));
  }
  std::vector<std::string> get() {
    std::lock_guard lk(mu);
    return log;
  }
  bool has_prefix(const std::string& p) {
    for (const auto& l : get())
      if (l.starts_with(p)) return true;
    return false;
  }
};

}  // namespace tierswap::test
