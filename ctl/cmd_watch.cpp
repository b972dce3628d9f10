// tierswapctl watch (alias top): the status, refreshed live, with usage bars
// per tier and sparklines of memory/io pressure. Raw terminal mode; q or
// Ctrl-C quits; the terminal is restored on every way out (RAII guard plus
// signal handlers that only set a flag). Not a terminal: prints one frame
// (or, with --json, one status document per interval).
#include <fmt/format.h>
#include <poll.h>
#include <termios.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <deque>

#include "ctl/bus_errors.hpp"
#include "ctl/cli_args.hpp"
#include "ctl/command.hpp"
#include "ctl/status_view.hpp"
#include "ctl/terminal_width.hpp"
#include "dbus/status_json.hpp"

namespace tierswap::ctl {
namespace {

std::atomic<bool> g_quit{false};
extern "C" void on_quit(int) {
  g_quit = true;
}

// Raw mode for stdin plus the alternate screen; undone by the destructor.
class TerminalGuard {
 public:
  TerminalGuard() {
    if (tcgetattr(STDIN_FILENO, &saved_) != 0) return;
    termios raw = saved_;
    raw.c_lflag &= ~(ICANON | ECHO);  // ISIG stays: Ctrl-C arrives as SIGINT
    raw.c_cc[VMIN] = 0;
    raw.c_cc[VTIME] = 0;
    active_ = tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0;
    std::fputs("\033[?1049h\033[?25l", stdout);  // alternate screen, hide cursor
    std::fflush(stdout);
  }
  ~TerminalGuard() {
    std::fputs("\033[?25h\033[?1049l", stdout);
    std::fflush(stdout);
    if (active_) tcsetattr(STDIN_FILENO, TCSANOW, &saved_);
  }
  TerminalGuard(const TerminalGuard&) = delete;
  TerminalGuard& operator=(const TerminalGuard&) = delete;

 private:
  termios saved_{};
  bool active_ = false;
};

struct WatchArgs {
  // Strings, checked here, for messages that say what is allowed.
  std::string interval, count;
  CLI::Option* interval_set = nullptr;
  CLI::Option* count_set = nullptr;
  bool json = false;
};

int run_watch(const CLI::App& sub, bool help, const WatchArgs& args) {
  if (help) {
    std::printf(
        "Usage: tierswapctl watch [--interval SECONDS] [--count N] [--json]\n"
        "       tierswapctl top ...\n"
        "Show the status live, with usage bars and pressure sparklines; q or Ctrl-C quits.\n"
        "When stdout is not a terminal, prints the status once (--json: one document\n"
        "per interval, N times with --count).\n\n"
        "  -n, --interval SECONDS   refresh period (default 1)\n"
        "  --count N                stop after N refreshes\n");
    return kExitOk;
  }
  if (!check_leftovers(sub)) return kExitUsage;
  double interval = 1.0;
  if (args.interval_set->count()) {
    const std::string* v = &args.interval;
    char* end = nullptr;
    interval = std::strtod(v->c_str(), &end);
    if (end == v->c_str() || *end || interval < 0.1) {
      std::fprintf(stderr, "tierswapctl watch: --interval \"%s\" is not a number of seconds >= 0.1\n",
                   v->c_str());
      return kExitUsage;
    }
  }
  long count = -1;
  if (args.count_set->count()) {
    const std::string* v = &args.count;
    char* end = nullptr;
    count = std::strtol(v->c_str(), &end, 10);
    if (end == v->c_str() || *end || count < 1) {
      std::fprintf(stderr, "tierswapctl watch: --count \"%s\" is not a whole number >= 1\n", v->c_str());
      return kExitUsage;
    }
  }
  const bool json = args.json;
  const bool tty = isatty(STDOUT_FILENO) && isatty(STDIN_FILENO);
  if (!tty && !json && count < 0) count = 1;

  int rc = 0;
  auto bus = connect_or_report(&rc);
  if (!bus) return rc;

  struct sigaction sa {};
  sa.sa_handler = on_quit;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGHUP, &sa, nullptr);

  std::deque<double> mem, io;
  std::unique_ptr<TerminalGuard> guard;
  if (tty && !json) guard = std::make_unique<TerminalGuard>();
  for (long n = 0; !g_quit && (count < 0 || n < count); ++n) {
    auto js = bus->get_status_json();
    if (!js) {
      guard.reset();
      return report_call_error("watch", js.error());
    }
    if (json) {
      std::printf("%s\n", js->c_str());
    } else {
      auto st = dbus::status_from_json(*js);
      if (!st) {
        guard.reset();
        std::fprintf(stderr, "tierswapctl watch: unreadable status: %s\n", st.error().message.c_str());
        return kExitFailed;
      }
      mem.push_back(st->memory_pressure.some.avg10);
      io.push_back(st->io_pressure.some.avg10);
      while (mem.size() > 40) mem.pop_front();
      while (io.size() > 40) io.pop_front();
      if (guard) {
        std::fputs("\033[H\033[2J", stdout);
        std::fputs(render_watch_frame(*st, mem, io, terminal_columns()).c_str(), stdout);
      } else {
        std::fputs(render_status(*st).c_str(), stdout);
      }
    }
    std::fflush(stdout);
    if (count >= 0 && n + 1 >= count) break;
    // Wait for the interval or a key; q quits.
    pollfd pfd{STDIN_FILENO, POLLIN, 0};
    const int ms = static_cast<int>(interval * 1000);
    if (guard && ::poll(&pfd, 1, ms) > 0) {
      char c = 0;
      if (::read(STDIN_FILENO, &c, 1) == 1 && (c == 'q' || c == 'Q')) break;
    } else if (!guard) {
      ::poll(nullptr, 0, ms);
    }
  }
  return kExitOk;
}

std::function<int()> setup_watch(CLI::App& sub) {
  auto help = own_help(sub);
  auto args = std::make_shared<WatchArgs>();
  args->interval_set = sub.add_option("-n,--interval", args->interval);
  args->count_set = sub.add_option("--count", args->count);
  sub.add_flag("--json", args->json);
  return [&sub, help, args] { return run_watch(sub, *help, *args); };
}

const Registrar reg{{"watch", "[--interval S]", "live status with bars and sparklines", &setup_watch, "top"}};

}  // namespace
}  // namespace tierswap::ctl
