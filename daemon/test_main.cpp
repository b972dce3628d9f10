// tierswapd-test: tierswapd with its test seams set from its own options,
// taken out of the command line before tierswapd's parser sees it:
//   --test-fail-step N           step N of every apply fails with EIO
//                                (tests/support/fault_injection.hpp)
//   --test-slow-steps MS         every step of every apply after the first
//                                (reloads) waits MS milliseconds before it
//                                runs: a reload that takes its time.
//   --test-fake-kernel           the recording kernel acts on --root (which
//                                must not be /) instead of syscalls
//   --test-vram-samples FILE   the VRAM samples the policy engine sees come
//                              from FILE, read on every snapshot: one trace
//                              line (policy/trace.hpp) whose "vram" list is
//                              used (a missing or bad FILE: no samples).
//   --test-stop-at-save N        the process stops itself (SIGSTOP) right
//                                after the Nth save of the journal,
//   --test-stop-before-save N    ... right before it: the kernel already has
//                                the change that save would record.
//   --test-nbd-handoff DIR       a stand-in for the kernel's nbd driver (for
//                                machines without one, --root and
//                                --test-fake-kernel only): the vram kind's
//                                attach goes through the ioctl interface on
//                                <root>/dev/nbdN (a plain file), and here
//                                NBD_SET_SOCK hands the exporter's socket,
//                                past its handshake, to whoever listens on
//                                DIR/nbdN.sock (SCM_RIGHTS), as the kernel
//                                would take it; NBD_DO_IT writes the helper's
//                                pid to <root>/sys/block/nbdN/pid and returns
//                                once NBD_DISCONNECT has removed that file.
//                                Other nbd ioctls succeed. The
//                                swap header goes to the plain file and
//                                swapon/swapoff to the recording kernel.
//                                Each child the daemon forks gets
//                                <root>/proc/PID, a link to the real one.
// The kill -9 tests (tests/kernel/robust_kill_test.cpp) then kill it with
// SIGKILL, as a crash or the OOM killer would, at that exact point of the
// apply. The journal is saved before every step (naming it as pending) and
// after it (daemon/apply.hpp), so N
// walks through every phase of an apply. It is done by interposing
// renameat(), which the journal's atomic replace ends with.
// Built only with TIERSWAP_BUILD_TESTS, never installed; the tests that
// need the seams run this binary instead of tierswapd. The recording kernel
// comes from the test library (tests/support/), which tierswapd does not link.
#include <dlfcn.h>
#include <fcntl.h>
#include <linux/nbd.h>
#include <signal.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdarg>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/daemon.hpp"
#include "policy/trace.hpp"
#include "tests/support/fault_injection.hpp"
#include "tests/support/recording_kernel.hpp"

namespace {

std::vector<tierswap::policy::VramTierSample> samples_from(const std::string& file) {
  std::ifstream in(file);
  std::ostringstream text;
  text << in.rdbuf();
  auto trace = tierswap::policy::parse_trace(text.str(), file);
  if (!trace || trace->empty()) return {};
  return trace->back().vram;
}

}  // namespace

namespace {
std::atomic<int> g_stop_at{0};
std::atomic<bool> g_stop_before{false};
std::atomic<int> g_saves{0};
}  // namespace

extern "C" int renameat(int olddirfd, const char* oldpath, int newdirfd, const char* newpath) {
  using Fn = int (*)(int, const char*, int, const char*);
  static const Fn real = reinterpret_cast<Fn>(::dlsym(RTLD_NEXT, "renameat"));
  const bool journal = g_stop_at != 0 && std::string_view(newpath) == "state.json";
  const bool stop_here = journal && ++g_saves == g_stop_at;
  if (stop_here && g_stop_before) ::raise(SIGSTOP);
  const int r = real(olddirfd, oldpath, newdirfd, newpath);
  if (stop_here && !g_stop_before) ::raise(SIGSTOP);
  return r;
}

namespace {
int usage_error(const std::string& msg) {
  std::fprintf(stderr, "tierswapd-test: %s\n", msg.c_str());
  return 2;
}
}  // namespace

// --- --test-nbd-handoff ------------------------------------------------------
namespace {
std::string g_nbd_root;     // <root>/dev/nbd (prefix of the device files we answer for)
std::string g_nbd_sysfs;    // <root>/sys/block/
std::string g_nbd_handoff;  // DIR
std::string g_nbd_proc;     // <root>/proc/ (see fork() below)

// "nbdN" when `fd` is one of <root>/dev/nbdN, else "".
std::string nbd_of(int fd) {
  if (g_nbd_root.empty()) return {};
  char link[64], path[4096];
  std::snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  const ssize_t n = ::readlink(link, path, sizeof path - 1);
  if (n <= 0) return {};
  const std::string p(path, static_cast<size_t>(n));
  if (!p.starts_with(g_nbd_root)) return {};
  return "nbd" + p.substr(g_nbd_root.size());
}

int hand_off(const std::string& dev, int sock) {
  const std::string path = g_nbd_handoff + "/" + dev + ".sock";
  const int c = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path.c_str());
  if (::connect(c, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    const int e = errno;
    std::fprintf(stderr, "--test-nbd-handoff: %s: %s\n", path.c_str(), std::strerror(e));
    ::close(c);
    errno = e;
    return -1;
  }
  char byte = 'S';
  iovec iov{&byte, 1};
  alignas(cmsghdr) char buf[CMSG_SPACE(sizeof(int))] = {};
  msghdr m{};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  m.msg_control = buf;
  m.msg_controllen = sizeof buf;
  cmsghdr* cm = CMSG_FIRSTHDR(&m);
  cm->cmsg_level = SOL_SOCKET;
  cm->cmsg_type = SCM_RIGHTS;
  cm->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(cm), &sock, sizeof(int));
  const ssize_t r = ::sendmsg(c, &m, MSG_NOSIGNAL);
  const int e = errno;
  ::close(c);
  errno = e;
  return r == 1 ? 0 : -1;
}
}  // namespace

extern "C" int ioctl(int fd, unsigned long req, ...) {
  va_list ap;
  va_start(ap, req);
  const unsigned long arg = va_arg(ap, unsigned long);
  va_end(ap);
  using Fn = int (*)(int, unsigned long, ...);
  static const Fn real = reinterpret_cast<Fn>(::dlsym(RTLD_NEXT, "ioctl"));
  const std::string dev = nbd_of(fd);
  if (dev.empty()) return real(fd, req, arg);
  const std::string pid_file = g_nbd_sysfs + dev + "/pid";
  switch (req) {
    case NBD_SET_SOCK:
      return hand_off(dev, static_cast<int>(arg));
    case NBD_DO_IT: {  // in the forked helper: only async-signal-safe calls
      const int f = ::open(pid_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      if (f < 0) return -1;
      char text[32];
      const int len = std::snprintf(text, sizeof text, "%d\n", static_cast<int>(::getpid()));
      (void)!::write(f, text, static_cast<size_t>(len));
      ::close(f);
      // Returns once NBD_DISCONNECT removed the file, as the kernel's
      // NBD_DO_IT returns once the device is disconnected.
      const timespec tick{0, 10'000'000};
      while (::access(pid_file.c_str(), F_OK) == 0) ::nanosleep(&tick, nullptr);
      return 0;
    }
    case NBD_DISCONNECT: {
      if (::unlink(pid_file.c_str()) != 0 && errno != ENOENT) return -1;
      return 0;
    }
    default:
      return 0;
  }
}

// With --test-nbd-handoff the daemon's root has no real /proc, yet the
// vram kind reads the exporter's /proc/PID/stat through it (its start time,
// recorded in the journal, tells it from a reused pid; the status reads it
// on every tick): each child the daemon forks gets <root>/proc/PID, a link
// to the real /proc/PID, before fork() returns in the daemon.
extern "C" pid_t fork(void) {
  using Fn = pid_t (*)();
  static const Fn real = reinterpret_cast<Fn>(::dlsym(RTLD_NEXT, "fork"));
  const pid_t pid = real();
  if (pid > 0 && !g_nbd_proc.empty()) {
    const std::string id = std::to_string(pid);
    (void)!::symlink(("/proc/" + id).c_str(), (g_nbd_proc + id).c_str());
  }
  return pid;
}

int main(int argc, char** argv) {
  std::string vram_file;
  int fail_step = 0;
  int slow_ms = 0;
  bool fake_kernel = false;
  // Takes this file's own options out before the daemon's parser sees them.
  std::vector<char*> args;
  for (int i = 0; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "--test-vram-samples" && i + 1 < argc) {
      vram_file = argv[++i];
      continue;
    }
    if (a == "--test-fake-kernel") {
      fake_kernel = true;
      continue;
    }
    if (a == "--test-fail-step" && i + 1 < argc) {
      fail_step = std::atoi(argv[i + 1]);
      if (fail_step <= 0)
        return usage_error(std::string("--test-fail-step: ") + argv[i + 1] + " is not a step number");
      ++i;
      continue;
    }
    if (a == "--test-slow-steps" && i + 1 < argc) {
      slow_ms = std::atoi(argv[i + 1]);
      if (slow_ms <= 0)
        return usage_error(std::string("--test-slow-steps: ") + argv[i + 1] + " is not a number of ms");
      ++i;
      continue;
    }
    if (a == "--test-nbd-handoff" && i + 1 < argc) {
      g_nbd_handoff = argv[++i];
      continue;
    }
    if ((a == "--test-stop-at-save" || a == "--test-stop-before-save") && i + 1 < argc) {
      const int n = std::atoi(argv[i + 1]);
      if (n <= 0) {
        std::fprintf(stderr, "%s: %s is not a save number (1, 2, ...)\n", argv[i], argv[i + 1]);
        return 2;
      }
      g_stop_at = n;
      g_stop_before = a == "--test-stop-before-save";
      ++i;
      continue;
    }
    args.push_back(argv[i]);
  }
  args.push_back(nullptr);
  tierswap::DaemonOptions options;
  if (auto exit_status =
          tierswap::parse_command_line(static_cast<int>(args.size()) - 1, args.data(), options))
    return *exit_status;
  if (fake_kernel) {
    if (options.engine.root == "/") return usage_error("--test-fake-kernel needs a --root other than /");
    options.engine.make_kernel = tierswap::swap::recording_kernel_on;
    options.start_warnings.push_back("test hook: recording kernel on the fake root, no syscalls");
  }
  if (fail_step > 0) {
    options.engine.before_step = tierswap::test::fail_step(fail_step);
    options.start_warnings.push_back("test hook: step " + std::to_string(fail_step) +
                                     " of every apply will fail");
  }
  if (slow_ms > 0) {
    // An apply starts at step 1: the first apply (start-up) runs at speed.
    auto applies = std::make_shared<int>(0);
    options.engine.before_step = [applies, slow_ms, then = options.engine.before_step](
                                     std::size_t number,
                                     const tierswap::Step& step) -> tierswap::Result<void> {
      if (number == 1) ++*applies;
      if (*applies > 1) {
        const timespec ts{slow_ms / 1000, (slow_ms % 1000) * 1'000'000L};
        ::nanosleep(&ts, nullptr);
      }
      return then ? then(number, step) : tierswap::Result<void>{};
    };
    options.start_warnings.push_back("test hook: every step of a reload waits " + std::to_string(slow_ms) +
                                     " ms");
  }
  if (!g_nbd_handoff.empty()) {
    if (!fake_kernel) {
      std::fprintf(stderr, "--test-nbd-handoff needs --test-fake-kernel (and a --root other than /)\n");
      return 2;
    }
    const std::string root = options.engine.root;
    g_nbd_root = root + (root.ends_with('/') ? "" : "/") + "dev/nbd";
    g_nbd_sysfs = root + (root.ends_with('/') ? "" : "/") + "sys/block/";
    g_nbd_proc = root + (root.ends_with('/') ? "" : "/") + "proc/";
  }
  if (!vram_file.empty()) {
    options.signal_readers = false;
    options.providers.vram = [vram_file] { return samples_from(vram_file); };
  }
  return tierswap::run_daemon(options);
}
