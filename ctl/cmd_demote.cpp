// tierswapctl demote TIER / promote TIER: start the operation in tierswapd
// and (unless --no-wait) follow its Progress signals with a progress bar
// until TierStateChanged says how it ended. Ctrl-C detaches: the daemon goes
// on; nothing is cancelled.
#include <fmt/format.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <mutex>

#include "common/json.hpp"
#include "ctl/bus_errors.hpp"
#include "ctl/cli_args.hpp"
#include "ctl/command.hpp"
#include "ctl/status_view.hpp"
#include "dbus/status_json.hpp"

namespace tierswap::ctl {
namespace {

std::atomic<bool> g_interrupted{false};
extern "C" void on_sigint(int) {
  g_interrupted = true;
}

constexpr std::uint64_t kPage = 4096;

struct Follow {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  bool ok = false;
  std::string end_state;
  std::string why;
  std::uint64_t moved = 0, total = 0;
  bool have_progress = false;
  std::chrono::steady_clock::time_point t0;
};

std::string format_duration(double s) {
  if (s < 10) return fmt::format("{:.1f}s", s);
  const long t = static_cast<long>(s + 0.5);
  if (t < 3600) return t < 60 ? fmt::format("{}s", t) : fmt::format("{}m{:02}s", t / 60, t % 60);
  return fmt::format("{}h{:02}m", t / 3600, t % 3600 / 60);
}

std::string progress_text(const std::string& tier, Follow& f, bool bar) {
  const double frac = f.total ? double(f.moved) / double(f.total) : 0.0;
  // Average since the call: the first signal already carries pages moved.
  const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - f.t0).count();
  const double rate = dt > 0.01 ? double(f.moved) / dt : 0.0;
  std::string left = "?";
  if (rate > 0 && f.total >= f.moved) left = format_duration(double(f.total - f.moved) / rate);
  std::string head = bar ? fmt::format("{} {} {:3.0f}%", tier, usage_bar(frac, 20), frac * 100)
                         : fmt::format("{}: {:3.0f}%", tier, frac * 100);
  return fmt::format("{}  {}/{} ({}/{} pages)  {}/s  {} left", head, format_bytes_short(f.moved),
                     f.total ? format_bytes_short(f.total) : std::string("?"), f.moved / kPage,
                     f.total / kPage, format_bytes_short(static_cast<std::uint64_t>(rate)), left);
}

struct MoveArgs {
  std::string tier;
  bool json = false, wait = false, no_wait = false;
};

int run_move(const char* op, const CLI::App& sub, bool help, const MoveArgs& args) {
  const bool demote = std::string_view(op) == "demote";
  if (help) {
    if (demote) {
      std::printf(
          "Usage: tierswapctl demote TIER [--wait|--no-wait] [--json]\n"
          "Move the tier's pages out (zram/file: swapoff after a precheck that the pages\n"
          "fit into the other swap areas; vram: migrate to the spill store) and show the\n"
          "progress: pages moved/total, rate, time left. Ctrl-C detaches; tierswapd goes on.\n\n");
    } else {
      std::printf(
          "Usage: tierswapctl promote TIER [--wait|--no-wait] [--json]\n"
          "Put a drained tier back in use at its priority.\n\n");
    }
    std::printf(
        "  --wait      follow the operation until it ends (default)\n"
        "  --no-wait   return once tierswapd has started it\n"
        "  --json      print the outcome as JSON, no progress\n"
        "Needs root (or polkit's org.tierswap.manage).\n");
    return kExitOk;
  }
  if (!check_leftovers(sub, "expected one TIER, got more")) return kExitUsage;
  if (args.tier.empty()) {
    usage_error(op, "expected one TIER (tierswapctl status lists them)");
    return kExitUsage;
  }
  const std::string tier = args.tier;
  const bool wait = !args.no_wait;
  const bool json = args.json;
  const bool tty = isatty(STDERR_FILENO);

  int rc = 0;
  auto bus = connect_or_report(&rc);
  if (!bus) return rc;

  Follow f;
  f.t0 = std::chrono::steady_clock::now();
  // A vram tier with a spill store ends evacuated (swap area up, VRAM
  // given back); any other tier ends drained.
  const std::string ok_state = demote ? "drained" : "active";
  auto ok_end = [&](const std::string& state) {
    return state == ok_state || (demote && state == "evacuated");
  };
  if (wait) {
    dbus::ManagerSignals sig;
    sig.progress = [&](const std::string& t, std::uint64_t moved, std::uint64_t total) {
      if (t != tier) return;
      std::lock_guard lock(f.mu);
      f.have_progress = true;
      f.moved = moved;
      f.total = total;
      if (!json) {
        if (tty) {
          std::fprintf(stderr, "\r\033[K%s", progress_text(tier, f, true).c_str());
        } else {
          std::fprintf(stderr, "%s\n", progress_text(tier, f, false).c_str());
        }
        std::fflush(stderr);
      }
    };
    sig.tier_state_changed = [&](const std::string& t, const std::string& state) {
      if (t != tier || state == "demoting" || state == "evacuating") return;
      std::lock_guard lock(f.mu);
      if (f.done) return;
      f.done = true;
      f.ok = ok_end(state);
      f.end_state = state;
      f.cv.notify_all();
    };
    sig.policy_action = [&](const std::string& what, const std::string& why, const std::string&) {
      if (what.rfind(op, 0) != 0) return;
      std::lock_guard lock(f.mu);
      f.why = why;
    };
    bus->subscribe(std::move(sig));
  }
  auto r = demote ? bus->demote(tier) : bus->promote(tier);
  if (!r) {
    if (json) {
      const Json j = {{"tier", tier},
                      {"operation", op},
                      {"outcome", "refused"},
                      {"error", r.error().name},
                      {"message", r.error().message}};
      std::printf("%s\n", dump_json(j, false).c_str());
    }
    return report_call_error(op, r.error());
  }
  auto finish = [&](const char* outcome, int code) {
    if (json) {
      Json j = {{"tier", tier},
                {"operation", op},
                {"outcome", outcome},
                {"state", f.end_state},
                {"moved_bytes", f.moved},
                {"total_bytes", f.total},
                {"seconds", std::chrono::duration<double>(std::chrono::steady_clock::now() - f.t0).count()}};
      if (!f.why.empty()) j["why"] = f.why;
      std::printf("%s\n", dump_json(j, false).c_str());
    }
    return code;
  };
  if (!wait) {
    if (!json) std::printf("%s of %s started (follow it with tierswapctl status)\n", op, tier.c_str());
    return finish("started", kExitOk);
  }

  struct sigaction sa {};
  sa.sa_handler = on_sigint;
  sigaction(SIGINT, &sa, nullptr);
  bus->start_events();

  // Safety net for a missed signal or a daemon that went away: look at the
  // status every 2 s on a connection of its own.
  auto next_check = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  std::unique_lock lock(f.mu);
  while (!f.done && !g_interrupted) {
    f.cv.wait_for(lock, std::chrono::milliseconds(100));
    if (f.done || g_interrupted || std::chrono::steady_clock::now() < next_check) continue;
    lock.unlock();
    next_check = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    auto probe = dbus::BusClient::connect();
    auto js =
        probe ? (*probe)->get_status_json() : dbus::CallResult<std::string>(std::unexpected(probe.error()));
    lock.lock();
    if (!js) {
      if (js.error().kind == dbus::CallError::no_daemon || js.error().kind == dbus::CallError::no_bus) {
        if (!json && tty) std::fprintf(stderr, "\n");
        lock.unlock();
        return report_call_error(op, js.error());
      }
      continue;
    }
    if (auto st = dbus::status_from_json(*js)) {
      for (const auto& t : st->tiers) {
        if (t.name == tier && (ok_end(to_string(t.state)) || t.state == TierState::failed)) {
          f.done = true;
          f.end_state = to_string(t.state);
          f.ok = ok_end(f.end_state);
        }
      }
    }
  }
  lock.unlock();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - f.t0).count();
  if (!json && tty && f.have_progress) std::fprintf(stderr, "\n");
  if (!f.done) {
    if (!json)
      std::fprintf(stderr, "detached: tierswapd goes on with the %s of %s (see tierswapctl status)\n", op,
                   tier.c_str());
    return finish("detached", kExitOk);
  }
  if (f.ok) {
    if (!json)
      std::printf("%s: %s, %s in %s (%s moved)\n", tier.c_str(),
                  f.end_state == "evacuated" ? "evacuated to its spill store"
                  : demote                   ? "demoted"
                                             : "promoted",
                  f.end_state.c_str(), format_duration(secs).c_str(), format_bytes_short(f.moved).c_str());
    return finish(f.end_state.c_str(), kExitOk);
  }
  if (!json) {
    std::fprintf(stderr, "tierswapctl %s: %s did not finish: it is %s now%s%s\n", op, tier.c_str(),
                 f.end_state.c_str(), f.why.empty() ? "" : ": ", f.why.c_str());
  }
  return finish("failed", kExitFailed);
}

std::function<int()> setup_move(const char* op, CLI::App& sub) {
  auto help = own_help(sub);
  auto args = std::make_shared<MoveArgs>();
  sub.add_option("TIER", args->tier);
  sub.add_flag("--json", args->json);
  sub.add_flag("--wait", args->wait);
  sub.add_flag("--no-wait", args->no_wait);
  return [op, &sub, help, args] { return run_move(op, sub, *help, *args); };
}

std::function<int()> setup_demote(CLI::App& sub) {
  return setup_move("demote", sub);
}
std::function<int()> setup_promote(CLI::App& sub) {
  return setup_move("promote", sub);
}

const Registrar reg_demote{
    {"demote", "TIER [--no-wait]", "move a tier's pages out, with progress", &setup_demote}};
const Registrar reg_promote{
    {"promote", "TIER [--no-wait]", "put a drained tier back in use", &setup_promote}};

}  // namespace
}  // namespace tierswap::ctl
