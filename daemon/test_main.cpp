// tierswapd-test: tierswapd with its test seams set from its own options,
// taken out of the command line before tierswapd's parser sees it:
//   --test-fail-step N           step N of every apply fails with EIO
//                                (tests/support/fault_injection.hpp)
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
#include <signal.h>
#include <stdio.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <fstream>
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

int main(int argc, char** argv) {
  std::string vram_file;
  int fail_step = 0;
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
  if (!vram_file.empty()) {
    options.signal_readers = false;
    options.providers.vram = [vram_file] { return samples_from(vram_file); };
  }
  return tierswap::run_daemon(options);
}
