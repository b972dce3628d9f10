#include "backends/vram/capabilities.hpp"

#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>

namespace tierswap::vram {

namespace {

constexpr std::uint64_t bit(int cap) {
  return std::uint64_t{1} << cap;
}
constexpr std::uint64_t kKeep = bit(CAP_IPC_LOCK) | bit(CAP_SYS_RESOURCE);

struct Sets {
  std::uint64_t effective = 0, permitted = 0, inheritable = 0;
};

Result<Sets> get_caps() {
  __user_cap_header_struct h{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct d[2]{};
  if (::syscall(SYS_capget, &h, d) != 0) return kernel_error(errno, "capget");
  const auto join = [](std::uint32_t lo, std::uint32_t hi) { return lo | (std::uint64_t{hi} << 32); };
  return Sets{join(d[0].effective, d[1].effective), join(d[0].permitted, d[1].permitted),
              join(d[0].inheritable, d[1].inheritable)};
}

Result<void> set_caps(const Sets& s) {
  __user_cap_header_struct h{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct d[2]{};
  d[0] = {static_cast<std::uint32_t>(s.effective), static_cast<std::uint32_t>(s.permitted),
          static_cast<std::uint32_t>(s.inheritable)};
  d[1] = {static_cast<std::uint32_t>(s.effective >> 32), static_cast<std::uint32_t>(s.permitted >> 32),
          static_cast<std::uint32_t>(s.inheritable >> 32)};
  if (::syscall(SYS_capset, &h, d) != 0) return kernel_error(errno, "capset");
  return {};
}

}  // namespace

Result<CapabilityReport> keep_only_needed_capabilities() {
  auto now = get_caps();
  if (!now) return std::unexpected(now.error());
  CapabilityReport rep;
  // The bounding set first: dropping from it needs CAP_SETPCAP, which goes
  // with the rest below. Capabilities the kernel does not know end the loop
  // (PR_CAPBSET_READ: EINVAL).
  rep.bounding_dropped = true;
  for (int cap = 0; cap < 64; ++cap) {
    const int in = ::prctl(PR_CAPBSET_READ, cap, 0, 0, 0);
    if (in < 0) break;
    if (in == 0 || (kKeep & bit(cap)) != 0) continue;
    if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) rep.bounding_dropped = false;
  }
  ::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  Sets keep{now->permitted & kKeep, now->permitted & kKeep, 0};
  if (auto r = set_caps(keep); !r)
    return wrap(r.error(), "dropping capabilities but CAP_IPC_LOCK and CAP_SYS_RESOURCE");
  rep.ipc_lock = (keep.effective & bit(CAP_IPC_LOCK)) != 0;
  rep.sys_resource = (keep.effective & bit(CAP_SYS_RESOURCE)) != 0;
  if (!rep.ipc_lock)
    rep.warnings +=
        "no CAP_IPC_LOCK: memory locking is bounded by RLIMIT_MEMLOCK; past it, pages of the I/O path "
        "could be swapped out to this very device, and serving them back would wait on itself\n";
  if (!rep.sys_resource)
    rep.warnings +=
        "no CAP_SYS_RESOURCE: oom_score_adj -1000 and PR_SET_IO_FLUSHER are refused; the OOM killer may "
        "pick this exporter (every page it holds would be lost: their owners get I/O errors), and "
        "reclaim inside its I/O threads may recurse into its own device under memory pressure\n";
  if (!rep.warnings.empty()) rep.warnings.pop_back();
  return rep;
}

}  // namespace tierswap::vram
