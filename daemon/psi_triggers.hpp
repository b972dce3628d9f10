// PSI triggers on the daemon's loop: a trigger (policy/psi_trigger.hpp)
// written to /proc/pressure/memory and /proc/pressure/io, each fd watched
// by sd-event for EPOLLPRI; the kernel wakes the loop when tasks stalled
// `stall` within any `window`, and the daemon observes and decides at once
// instead of at the next tick.
//
// Where the kernel refuses (no PSI: ENOENT; a window it does not take
// without CAP_SYS_RESOURCE: EINVAL; EPERM), or the file is not procfs's (a
// test's fake root, whose plain file a write would overwrite), that is
// logged once and the 2 s tick is all there is.
#pragma once

#include <sys/types.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "backends/hostfs/host_fs.hpp"
#include "common/result.hpp"
#include "policy/psi_trigger.hpp"

struct sd_event;
struct sd_event_source;

namespace tierswap {

// Opens `path` (a kernel path already resolved to this machine's file),
// checks that it is on procfs, and writes the trigger. The fd (O_RDWR,
// non-blocking, close-on-exec; closing it removes the trigger), or an error
// naming the file, with the kernel's errno.
Result<int> open_psi_trigger(const std::string& path, const policy::PsiTrigger& trigger);

class PsiTriggers {
 public:
  using OnEvent = std::function<void(const std::string& resource)>;  // "memory", "io"
  struct Options {
    policy::PsiTrigger trigger{false, 150'000, 2'000'000};  // some 150 ms per 2 s
    std::function<void(const std::string&)> info, warn;
  };

  // Arms a trigger per resource that the kernel accepts and adds its fd to
  // `loop`; logs the refusals (once). Never fails: zero armed means the
  // tick alone.
  static std::unique_ptr<PsiTriggers> arm(sd_event* loop, const HostFs& fs, OnEvent on_event,
                                          Options options);
  ~PsiTriggers();
  PsiTriggers(const PsiTriggers&) = delete;
  PsiTriggers& operator=(const PsiTriggers&) = delete;

  [[nodiscard]] std::size_t armed() const { return watches_.size(); }

 private:
  PsiTriggers() = default;
  struct Watch {
    std::string resource;
    int fd = -1;
    sd_event_source* source = nullptr;
    PsiTriggers* owner = nullptr;
  };
  static int on_io(sd_event_source* s, int fd, uint32_t revents, void* userdata);

  OnEvent on_event_;
  std::function<void(const std::string&)> warn_;
  std::vector<std::unique_ptr<Watch>> watches_;
};

}  // namespace tierswap
