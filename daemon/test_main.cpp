// tierswapd-test: tierswapd with its test seams set from its own options
// (--test-fail-step N, --test-fake-kernel), plus
//   --test-vram-samples FILE   the VRAM samples the policy engine sees come
//                              from FILE, read on every snapshot: one trace
//                              line (policy/trace.hpp) whose "vram" list is
//                              used (a missing or bad FILE: no samples).
// Built only with TIERSWAP_BUILD_TESTS, never installed; the tests that
// need the seams run this binary instead of tierswapd. The recording kernel
// comes from the test library (tests/support/), which tierswapd does not link.
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "daemon/daemon.hpp"
#include "policy/trace.hpp"
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

int main(int argc, char** argv) {
  std::string vram_file;
  std::vector<char*> args;
  for (int i = 0; i < argc; ++i) {
    if (std::strcmp(argv[i], "--test-vram-samples") == 0 && i + 1 < argc) {
      vram_file = argv[++i];
      continue;
    }
    args.push_back(argv[i]);
  }
  tierswap::DaemonOptions options;
  if (auto exit_status = tierswap::parse_command_line(static_cast<int>(args.size()), args.data(), options,
                                                      /*test_hooks=*/true))
    return *exit_status;
  if (options.engine.fake_kernel) options.engine.make_kernel = tierswap::swap::recording_kernel_on;
  if (!vram_file.empty()) {
    options.signal_readers = false;
    options.providers.vram = [vram_file] { return samples_from(vram_file); };
  }
  return tierswap::run_daemon(options);
}
