#include "backends/vram/process_safety.hpp"

#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <spdlog/spdlog.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>

#include "backends/hostfs/paths.hpp"

#ifndef PR_SET_IO_FLUSHER
#define PR_SET_IO_FLUSHER 57
#endif

namespace tierswap::vram {

Result<void> lock_all_memory() {
  if (::mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) != 0)
    return kernel_error(errno,
                        "mlockall(MCL_CURRENT|MCL_FUTURE|MCL_ONFAULT) (needs CAP_IPC_LOCK or a higher "
                        "RLIMIT_MEMLOCK; --no-mlock only for tests)");
  const std::size_t code = lock_loaded_code();
  spdlog::debug("locked {} KiB of loaded code and data", code >> 10);
  return {};
}

namespace {

std::size_t page_size() {
  static const auto size = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  return size;
}

bool gpu_driver_object(const char* name) {
  return name != nullptr &&
         (std::strstr(name, "libcuda") != nullptr || std::strstr(name, "libnvidia") != nullptr);
}

}  // namespace

std::size_t lock_loaded_code() {
  struct Acc {
    std::size_t locked = 0;
    std::string failed;
  } acc;
  ::dl_iterate_phdr(
      [](dl_phdr_info* info, std::size_t, void* data) -> int {
        auto& a = *static_cast<Acc*>(data);
        if (gpu_driver_object(info->dlpi_name)) return 0;
        const std::size_t ps = page_size();
        for (unsigned i = 0; i < info->dlpi_phnum; ++i) {
          const ElfW(Phdr)& ph = info->dlpi_phdr[i];
          if (ph.p_type != PT_LOAD || ph.p_memsz == 0) continue;
          const std::uintptr_t begin = (info->dlpi_addr + ph.p_vaddr) / ps * ps;
          const std::uintptr_t end = (info->dlpi_addr + ph.p_vaddr + ph.p_memsz + ps - 1) / ps * ps;
          if (::mlock(reinterpret_cast<void*>(begin), end - begin) == 0) {
            a.locked += end - begin;
          } else if (a.failed.empty()) {
            a.failed = std::string(info->dlpi_name[0] != '\0' ? info->dlpi_name : "tierswap-nbd") + ": " +
                       std::strerror(errno);
          }
        }
        return 0;
      },
      &acc);
  if (!acc.failed.empty()) spdlog::warn("could not lock all loaded code: {}", acc.failed);
  return acc.locked;
}

bool lock_thread_stack() {
  static std::atomic<bool> warned{false};
  pthread_attr_t attr;
  if (::pthread_getattr_np(::pthread_self(), &attr) != 0) return false;
  void* addr = nullptr;
  std::size_t size = 0;
  const bool got = ::pthread_attr_getstack(&attr, &addr, &size) == 0;
  ::pthread_attr_destroy(&attr);
  if (got && ::mlock(addr, size) == 0) return true;
  const int err = errno;
  if (!warned.exchange(true))
    spdlog::warn("could not lock an I/O thread's stack: {}", got ? std::strerror(err) : "no stack bounds");
  return false;
}

void touch_pages(void* p, std::size_t n) {
  if (p == nullptr || n == 0) return;
  auto* b = static_cast<volatile unsigned char*>(p);
  const std::size_t ps = page_size();
  // From the first byte of the page p lies in, one byte in every page.
  for (std::size_t off = 0; off < n; off += ps - (reinterpret_cast<std::uintptr_t>(b + off) % ps)) {
    const unsigned char v = b[off];
    b[off] = v;
  }
  b[n - 1] = b[n - 1];
}

Result<void> protect_from_oom() {
  const std::string path(paths::proc_self_oom_score_adj);
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return kernel_error(errno, path);
  const char value[] = "-1000\n";
  const ssize_t n = ::write(fd, value, sizeof value - 1);
  const int err = errno;
  ::close(fd);
  if (n != static_cast<ssize_t>(sizeof value - 1)) return kernel_error(err, path + ": writing -1000");
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
