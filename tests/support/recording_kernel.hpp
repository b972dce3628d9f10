// RecordingKernel: the fake Kernel of the unit tests and of tierswapd-test
// (--test-fake-kernel). It lives in the test library tierswap_test_support,
// which no installed binary links.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "backends/hostfs/host_fs.hpp"
#include "backends/swap/kernel.hpp"
#include "common/result.hpp"

namespace tierswap::swap {

// A fake for unit tests. Records every call as one line ("swapon /dev/zram1
// prio=100 discard=0"). With a HostFs rooted at a temp tree it also plays the
// kernel's part there: hot_add creates <root>/sys/block/zramN with the usual
// attribute files, swapon/swapoff edit <root>/proc/swaps.
class RecordingKernel final : public Kernel {
 public:
  explicit RecordingKernel(const HostFs* simulate = nullptr) : fs_(simulate) {}
  Result<void> swapon(const std::string& path, int priority, bool discard) override;
  Result<void> swapoff(const std::string& path) override;
  Result<std::string> zram_hot_add() override;
  Result<void> zram_hot_remove(const std::string& dev) override;

  // Calls whose record starts with `prefix` fail with `code` (once each when
  // `once`).
  void fail_when(std::string prefix, int code, bool once = false);
  [[nodiscard]] std::vector<std::string> calls() const;

 private:
  Result<void> check(const std::string& record);
  const HostFs* fs_;
  mutable std::mutex mu_;
  std::vector<std::string> calls_;
  struct Fault {
    std::string prefix;
    int code;
    bool once;
  };
  std::vector<Fault> faults_;
};

// For EngineOptions::make_kernel: a RecordingKernel playing the kernel's part
// on the engine's root, which must not be the real / (nullptr there, so the
// engine falls back to the real kernel).
std::unique_ptr<Kernel> recording_kernel_on(const HostFs& fs);

}  // namespace tierswap::swap
