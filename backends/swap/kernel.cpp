#include "backends/swap/kernel.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/swap.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backends/hostfs/paths.hpp"
#include "backends/swap/safe_path.hpp"

#ifndef SWAP_FLAG_DISCARD
#define SWAP_FLAG_DISCARD 0x10000
#endif

namespace tierswap::swap {

Result<void> RealKernel::swapon(const std::string& path, int priority, bool discard) {
  int flags = 0;
  if (priority >= 0) flags |= SWAP_FLAG_PREFER | ((priority << SWAP_FLAG_PRIO_SHIFT) & SWAP_FLAG_PRIO_MASK);
  if (discard) flags |= SWAP_FLAG_DISCARD;
  const auto real = fs_.resolve(path);
  struct stat st {};
  if (::stat(real.c_str(), &st) != 0 || S_ISBLK(st.st_mode)) {  // a device (zram, partition), or nothing
    if (::swapon(real.c_str(), flags) != 0) return kernel_error(errno, "swapon " + path);
    return {};
  }
  // A swap file: opened through verified directories with O_NOFOLLOW and
  // checked on the descriptor (root's, 0600, regular). swapon(2) takes a
  // path, so it is given the descriptor's /proc/self/fd entry: the kernel
  // opens exactly the inode that was checked, whatever happened to the name
  // since; /proc/swaps still prints the file's own path (checked on 6.18).
  auto dir = open_safe_dir(fs_, parent_path(path));
  if (!dir) return wrap(dir.error(), "swapon " + path);
  if (!dir->missing.empty()) return kernel_error(ENOENT, "swapon " + path);
  auto fd = open_swap_file(*dir, file_name(path), O_RDONLY);
  if (!fd) return wrap(fd.error(), "swapon " + path);
  const auto self_fd = fs_.resolve(std::string(paths::proc_dir) + "/self/fd/" + std::to_string(fd->get()));
  if (::swapon(self_fd.c_str(), flags) != 0) return kernel_error(errno, "swapon " + path);
  return {};
}

Result<void> RealKernel::swapoff(const std::string& path) {
  const auto real = fs_.resolve(path).string();
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) return kernel_error(errno, "swapoff " + path + ": fork");
  if (pid == 0) {
    // Helper: only async-signal-safe calls from here on.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(ESRCH);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::signal(SIGTERM, SIG_DFL);
    ::signal(SIGINT, SIG_DFL);
    ::signal(SIGHUP, SIG_DFL);
    ::_exit(::swapoff(real.c_str()) == 0 ? 0 : errno);
  }
  helper_.store(pid);
  int status = 0;
  pid_t r;
  do {
    r = ::waitpid(pid, &status, 0);
  } while (r < 0 && errno == EINTR);
  helper_.store(0);
  if (r < 0) return kernel_error(errno, "swapoff " + path + ": waitpid");
  if (WIFSIGNALED(status))
    return kernel_error(EINTR, "swapoff " + path + ": aborted (helper killed by signal " +
                                   std::to_string(WTERMSIG(status)) + "); the area stays active");
  if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
    return kernel_error(WEXITSTATUS(status), "swapoff " + path);
  return {};
}

bool RealKernel::abort_swapoff() {
  const pid_t pid = helper_.load();
  return pid > 0 && ::kill(pid, SIGKILL) == 0;
}

Result<std::string> RealKernel::zram_hot_add() {
  auto n = fs_.read_int(paths::zram_hot_add);
  if (!n) return wrap(n.error(), "zram hot_add");
  return "zram" + std::to_string(*n);
}

Result<void> RealKernel::zram_hot_remove(const std::string& dev) {
  std::string_view id = dev;
  if (id.starts_with("zram")) id.remove_prefix(4);
  return fs_.write(paths::zram_hot_remove, id);
}

}  // namespace tierswap::swap
