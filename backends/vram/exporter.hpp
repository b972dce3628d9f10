// tierswap-nbd's command line and its whole run, so that main.cpp stays thin
// and tests can parse arguments without starting anything.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace CLI {
class App;
}

namespace tierswap::vram {

class BlockStore;

struct ExporterOptions {
  std::string socket;
  std::uint64_t size = 0;
  std::string store;  // host | cuda (| host-batch for tests)
  std::string device;
  unsigned connections = 8;  // parse_command_line(): one per CPU up to 16, at least fds.size()
  std::vector<int> fds;
  bool mlock = true;
  bool force = false;
  std::size_t buffer_bytes = 1U << 20;
  std::size_t pipeline_bytes = SIZE_MAX;  // --pipeline; SIZE_MAX: off (command line default: auto)
  int reply_timeout_ms = 30000;
  int handshake_timeout_ms = 10000;
  std::uint64_t chunk_bytes = 64ULL << 20;  // --chunk: allocation unit of the export
  std::string spill;                        // --spill: "", "lz4", "file:PATH"
  int control_fd = -1;                      // --control-fd
  std::string control_socket;               // --control-socket: PATH of a 0600 socket in a 0700 directory
  unsigned movers = 0;                      // --movers: chunks moved at once (0: default_movers())
  bool help = false;
  bool version = false;
};

// Exit codes (documented in tierswap-nbd(8)).
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;  // could not start, or the store failed
inline constexpr int kExitUsage = 2;    // bad command line

// "4096", "512K", "1M", "8G", "1GiB", "2T": binary multiples.
Result<std::uint64_t> parse_size(std::string_view text);

// Options a build adds to the command line, on the CLI11 app after the
// exporter's own: the test exporter's fault injection
// (tests/nbd/exporter_test_hooks.*, built into tierswap-nbd-testhooks). The
// installed tierswap-nbd adds none.
using ExtraOptions = std::function<void(CLI::App&)>;

// The command line (CLI11). Errors (invalid_argument) name the option.
Result<ExporterOptions> parse_command_line(std::span<const std::string_view> args,
                                           const ExtraOptions& extra = {});
std::string usage_text(const ExtraOptions& extra = {});
// "tierswap-nbd VERSION cuda=yes|no test-hooks=yes|no": what this build has.
std::string version_text(bool test_hooks = false);

// Wraps the store before it is served (the test exporter's failure
// injection); unset: the store is served as made.
using StoreWrapper = std::function<std::unique_ptr<BlockStore>(std::unique_ptr<BlockStore>)>;

// Locks memory, protects from the OOM killer, creates the store, serves
// until SIGTERM/SIGINT (refused while a client is attached, unless --force)
// or until every --fd connection ended when there is no --socket.
int run_exporter(const ExporterOptions& options, const StoreWrapper& wrap = {});

// What a build of tierswap-nbd adds to the program: options and a store
// wrapper (the test exporter's fault injection); the installed binary adds
// nothing.
struct ExporterBuild {
  ExtraOptions options;
  StoreWrapper wrap_store;
  bool test_hooks = false;  // --version says test-hooks=yes
};

// The whole program (main): the command line, --help and --version, the
// capabilities dropped, then run_exporter(). Returns the exit status.
int exporter_main(int argc, char** argv, const ExporterBuild& build = {});

}  // namespace tierswap::vram
