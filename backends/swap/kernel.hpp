// Kernel: the few system calls tierswap makes, behind one small interface so
// that unit tests can record them instead (RecordingKernel, in the test
// library tests/support/recording_kernel.hpp; never in an installed binary).
//
// Paths are kernel paths ("/dev/zram1", "/var/swap/t.swap"); RealKernel maps
// them through its HostFs, like every other access.
//
// Thread-safety: RealKernel may be called from several threads; abort_swapoff()
// is meant to be called from another thread than the one in swapoff().
#pragma once

#include <sys/types.h>

#include <atomic>
#include <mutex>
#include <string>
#include <vector>

#include "backends/hostfs/host_fs.hpp"
#include "common/result.hpp"

namespace tierswap::swap {

class Kernel {
 public:
  virtual ~Kernel() = default;
  // priority -1: let the kernel choose (no SWAP_FLAG_PREFER). discard adds
  // SWAP_FLAG_DISCARD. Errors name the path; code is the kernel's errno.
  // RealKernel swaps on a file only when it and its directories pass the
  // rules of backends/swap/safe_path.hpp (EPERM, naming the broken rule).
  virtual Result<void> swapon(const std::string& path, int priority, bool discard) = 0;
  // Pages everything back in; may take long. RealKernel runs it in a helper
  // process (see below). EINTR when aborted.
  virtual Result<void> swapoff(const std::string& path) = 0;
  // Creates a zram device; returns its name ("zram1").
  virtual Result<std::string> zram_hot_add() = 0;
  // Removes a zram device ("zram1"); it must have been reset.
  virtual Result<void> zram_hot_remove(const std::string& dev) = 0;
};

// The real kernel. swapoff(2) runs in a short-lived forked helper, never in
// the calling process: swapoff makes its caller the preferred OOM victim and
// can run for minutes. The parent waits; abort_swapoff() (or any signal that
// kills the helper) aborts it, and the kernel puts the area back.
class RealKernel final : public Kernel {
 public:
  explicit RealKernel(const HostFs& fs) : fs_(fs) {}
  Result<void> swapon(const std::string& path, int priority, bool discard) override;
  Result<void> swapoff(const std::string& path) override;
  Result<std::string> zram_hot_add() override;
  Result<void> zram_hot_remove(const std::string& dev) override;
  // Kills the running swapoff helper, if any. Returns whether there was one.
  bool abort_swapoff();

 private:
  const HostFs& fs_;
  std::atomic<pid_t> helper_{0};
};

}  // namespace tierswap::swap
