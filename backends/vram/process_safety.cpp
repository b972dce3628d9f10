#include "backends/vram/process_safety.hpp"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "backends/hostfs/paths.hpp"

#ifndef PR_SET_IO_FLUSHER
#define PR_SET_IO_FLUSHER 57
#endif

namespace tierswap::vram {

Result<void> lock_all_memory() {
  if (::mlockall(MCL_CURRENT | MCL_FUTURE) != 0)
    return fail(errno,
                "mlockall(MCL_CURRENT|MCL_FUTURE) (needs CAP_IPC_LOCK or a higher "
                "RLIMIT_MEMLOCK; --no-mlock only for tests)");
  return {};
}

Result<void> protect_from_oom() {
  const std::string path(paths::proc_self_oom_score_adj);
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return fail(errno, path);
  const char value[] = "-1000\n";
  const ssize_t n = ::write(fd, value, sizeof value - 1);
  const int err = errno;
  ::close(fd);
  if (n != static_cast<ssize_t>(sizeof value - 1)) return fail(err, path + ": writing -1000");
  return {};
}

bool mark_io_flusher_thread() {
  static std::atomic<bool> warned{false};
  if (::prctl(PR_SET_IO_FLUSHER, 1, 0, 0, 0) == 0) return true;
  const int err = errno;
  if (!warned.exchange(true))
    spdlog::warn(
        "prctl(PR_SET_IO_FLUSHER) failed on the I/O threads: {} (needs CAP_SYS_RESOURCE); "
        "under memory pressure, reclaim may recurse into this exporter",
        std::strerror(err));
  return false;
}

}  // namespace tierswap::vram
