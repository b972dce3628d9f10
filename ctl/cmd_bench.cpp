// tierswapctl bench [GROUP...] [options]: the swap benchmark. Per group (a
// tier setup) tierswapd applies the setup as a child process, fio measures
// each tier's device, a checksummed hog swaps in a memory cgroup while a
// small task's latency and PSI are recorded; tierswapd then restores the
// machine. The runner and the writers live in bench/swap/.
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "bench/swap/plots.hpp"
#include "bench/swap/report.hpp"
#include "bench/swap/runner.hpp"
#include "bench/swap/summary.hpp"
#include "ctl/cli_args.hpp"
#include "ctl/command.hpp"
#include "ctl/file_command.hpp"

namespace tierswap::ctl {
namespace {

constexpr const char* kHelp =
    "Usage: tierswapctl bench [GROUP...] [--seconds N] [--memory SIZE] [--working-set SIZE]\n"
    "                         [--raw-seconds N] [--raw-size SIZE] [--swap-dir DIR] [--output DIR]\n"
    "                         [--tierswapd PATH] [--json] [--yes]\n"
    "       tierswapctl bench --report FILE [--output DIR] [--json]\n"
    "Benchmarks swap setups side by side on this machine. For each GROUP tierswapd\n"
    "applies the setup (a child process, no D-Bus), then:\n"
    "  1. fio: 4 KiB random write and read, QD32, O_DIRECT, on a scratch twin of each\n"
    "     swap area (an active area is never written): p50/p99/p99.9, IOPS; a VRAM\n"
    "     tier also against a scratch exporter with its store (fio's nbd engine);\n"
    "  2. the page cache is dropped, and a checksummed hog touches a working set larger\n"
    "     than the memory cgroup it runs in (every page is verified: a bad page fails\n"
    "     the run);\n"
    "  3. once a second: swap-in/out from /proc/vmstat, memory PSI of the system and\n"
    "     of the cgroup; a small fixed task runs every 10 ms outside the cgroup (its\n"
    "     latency is the perceived latency);\n"
    "then tierswapd is stopped and undoes the group. Ctrl-C stops the hog, removes the\n"
    "cgroup and stops tierswapd, leaving the machine as it was.\n\n"
    "GROUP: disk (a swap file alone), zram (zram alone), configured (/etc/tierswap.yaml,\n"
    "  e.g. the waterfall with a VRAM tier) or a config FILE. Default: disk zram, and\n"
    "  configured when /etc/tierswap.yaml exists. Ratios are to the first group.\n\n"
    "  --seconds N         load per group (default 30)\n"
    "  --memory SIZE       the bench cgroup's memory limit (default 256M)\n"
    "  --working-set SIZE  what the hog touches (default 2 x --memory)\n"
    "  --raw-seconds N     each fio job (default 5; 0: no raw-device phase)\n"
    "  --raw-size SIZE     scratch size for fio (default 256M)\n"
    "  --swap-dir DIR      where the disk group's swap file goes (default /var/tmp)\n"
    "  --output DIR        report.md, report.json, latency-cdf.{svg,png}, psi.{svg,png}\n"
    "                      and the daemon logs (default ./tierswap-bench-DATE)\n"
    "  --tierswapd PATH    the daemon to run (default: beside tierswapctl, else $PATH)\n"
    "  --report FILE       render a recorded report.json instead of running\n"
    "  --json              print the report as JSON instead of tables\n"
    "  --yes               run even where the bench could push other programs into swap\n\n"
    "Needs root. Refuses while tierswapd runs (its tiers would mix with the groups')\n"
    "or its journal exists, and runs no group whose plan fails (as tierswapctl plan).\n"
    "Exit status: 0 done, 1 refused or failed (a bad page, a plan, a restore), 2 usage,\n"
    "4 not root.\n";

struct Args {
  std::vector<std::string> groups;
  double seconds = 30, raw_seconds = 5;
  std::string memory = "256M", working_set, raw_size = "256M";
  std::string swap_dir = "/var/tmp", output, tierswapd, report;
  bool json = false, yes = false;
  std::shared_ptr<bool> help;
};

// "256M", "1G", "4096" (bytes); K/M/G/T binary. nullopt when not a size.
std::optional<std::uint64_t> parse_size(const std::string& s) {
  if (s.empty()) return std::nullopt;
  std::size_t used = 0;
  double v = 0;
  try {
    v = std::stod(s, &used);
  } catch (...) {
    return std::nullopt;
  }
  std::string unit = s.substr(used);
  if (!unit.empty() && (unit.back() == 'B' || unit.back() == 'b')) unit.pop_back();
  if (unit.size() == 2 && (unit[1] == 'i')) unit.pop_back();
  const std::string units = "KMGT";
  double mul = 1;
  if (unit.size() == 1 && units.find(static_cast<char>(std::toupper(unit[0]))) != std::string::npos)
    mul = static_cast<double>(1ULL << (10 * (units.find(static_cast<char>(std::toupper(unit[0]))) + 1)));
  else if (!unit.empty())
    return std::nullopt;
  if (v <= 0) return std::nullopt;
  return static_cast<std::uint64_t>(v * mul);
}

std::string mib_text(std::uint64_t b) {
  return std::to_string((b + (1 << 20) - 1) >> 20) + "M";
}

// The daemon: --tierswapd, else beside this program (the build tree's
// bin/, or sbin/ beside an installed bin/), else "tierswapd" from $PATH.
std::string find_tierswapd(const std::string& given) {
  if (!given.empty()) return given;
  std::error_code ec;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", ec).parent_path();
  for (const auto& p : {self / "tierswapd", self.parent_path() / "sbin" / "tierswapd"})
    if (!ec && ::access(p.c_str(), X_OK) == 0) return p;
  return "tierswapd";
}

bool on_path(const std::string& prog) {
  if (prog.find('/') != std::string::npos) return ::access(prog.c_str(), X_OK) == 0;
  const char* path = std::getenv("PATH");
  std::istringstream in(path ? path : "/usr/sbin:/usr/bin:/sbin:/bin");
  for (std::string d; std::getline(in, d, ':');)
    if (::access((d + "/" + prog).c_str(), X_OK) == 0) return true;
  return false;
}

bool write_file(const std::string& path, const std::string& text) {
  std::ofstream f(path);
  f << text;
  f.close();
  if (!f) std::fprintf(stderr, "tierswapctl bench: cannot write %s\n", path.c_str());
  return static_cast<bool>(f);
}

// Writes report.json, report.md and the pictures into `dir`; prints the
// report (tables or JSON) on stdout.
int emit(const bench::Report& r, const std::string& dir, bool json) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    std::fprintf(stderr, "tierswapctl bench: cannot create %s: %s\n", dir.c_str(), ec.message().c_str());
    return kExitFailed;
  }
  const std::string text =
      bench::text_report(r) + "\n![latency CDF](latency-cdf.svg)\n\n![memory PSI over time](psi.svg)\n";
  if (!write_file(dir + "/report.json", bench::to_json(r)) || !write_file(dir + "/report.md", text))
    return kExitFailed;
  std::string png_skipped;
  auto plots = bench::write_plots(r, dir, &png_skipped);
  if (!plots) {
    std::fprintf(stderr, "tierswapctl bench: %s\n", plots.error().describe().c_str());
    return kExitFailed;
  }
  const std::string out = json ? bench::to_json(r) : bench::text_report(r);
  std::fwrite(out.data(), 1, out.size(), stdout);
  if (!png_skipped.empty())
    std::fprintf(stderr, "tierswapctl bench: PNG pictures not drawn (%s); the SVG pictures hold the same\n",
                 png_skipped.c_str());
  if (!json)
    std::printf("\nwritten to %s/: report.md report.json latency-cdf.svg%s psi.svg%s\n", dir.c_str(),
                png_skipped.empty() ? "/.png" : "", png_skipped.empty() ? "/.png" : "");
  return kExitOk;
}

std::string default_output() {
  char b[64];
  const std::time_t t = std::time(nullptr);
  std::strftime(b, sizeof b, "tierswap-bench-%Y%m%d-%H%M%S", std::gmtime(&t));
  return b;
}

int run(const CLI::App& sub, Args& a, const std::string& command) {
  if (*a.help) {
    std::fputs(kHelp, stdout);
    return kExitOk;
  }
  if (!check_leftovers(sub)) return kExitUsage;
  const std::string cmd = sub.get_name();
  if (a.output.empty()) a.output = default_output();
  if (!a.report.empty()) {
    if (!a.groups.empty()) {
      usage_error(cmd, "--report renders a recorded run: it takes no GROUP");
      return kExitUsage;
    }
    std::ifstream f(a.report);
    std::stringstream ss;
    ss << f.rdbuf();
    if (!f) {
      std::fprintf(stderr, "tierswapctl bench: cannot read %s: %s\n", a.report.c_str(), std::strerror(errno));
      return kExitFailed;
    }
    auto r = bench::report_from_json(ss.str());
    if (!r) {
      std::fprintf(stderr, "tierswapctl bench: %s: %s\n", a.report.c_str(), r.error().describe().c_str());
      return kExitFailed;
    }
    return emit(*r, a.output, a.json);
  }

  bench::RunOptions o;
  const auto mem = parse_size(a.memory);
  if (!mem || *mem < (16ULL << 20)) {
    usage_error(cmd, "--memory: \"" + a.memory + "\" is not a size of at least 16M (try 256M)");
    return kExitUsage;
  }
  const auto ws = a.working_set.empty() ? std::optional<std::uint64_t>(*mem * 2) : parse_size(a.working_set);
  if (!ws || *ws <= *mem) {
    usage_error(cmd, "--working-set: \"" + a.working_set + "\" must be a size above --memory (" + a.memory +
                         "), or nothing would swap");
    return kExitUsage;
  }
  const auto raw = parse_size(a.raw_size);
  if (!raw || *raw < (1ULL << 20)) {
    usage_error(cmd, "--raw-size: \"" + a.raw_size + "\" is not a size of at least 1M");
    return kExitUsage;
  }
  if (!(a.seconds >= 1 && a.seconds <= 86400)) {
    usage_error(cmd, "--seconds: " + std::to_string(a.seconds) + " is not between 1 and 86400");
    return kExitUsage;
  }
  if (!(a.raw_seconds >= 0 && a.raw_seconds <= 3600)) {
    usage_error(cmd, "--raw-seconds: " + std::to_string(a.raw_seconds) + " is not between 0 and 3600");
    return kExitUsage;
  }
  o.memory_max = *mem;
  o.working_set = *ws;
  o.raw_size = *raw;
  o.seconds = a.seconds;
  o.raw_seconds = a.raw_seconds;
  o.tool_version = TIERSWAP_VERSION;
  o.command = command;
  if (a.groups.empty()) {
    a.groups = {"disk", "zram"};
    if (std::filesystem::exists("/etc/tierswap.yaml")) a.groups.push_back("configured");
  }

  for (const auto& g : a.groups) {
    if (g != "disk" && g != "zram" && g != "configured" && !std::filesystem::exists(g)) {
      usage_error(cmd, "GROUP \"" + g + "\" is neither disk, zram, configured nor an existing config file");
      return kExitUsage;
    }
  }
  if (std::find(a.groups.begin(), a.groups.end(), "configured") != a.groups.end() &&
      !std::filesystem::exists("/etc/tierswap.yaml")) {
    usage_error(cmd, "GROUP configured: /etc/tierswap.yaml does not exist");
    return kExitUsage;
  }

  // The groups' configs: the built-in ones are written into the output
  // folder (sized for the working set), so the report names real files.
  std::error_code ec;
  std::filesystem::create_directories(a.output + "/configs", ec);
  if (ec) {
    std::fprintf(stderr, "tierswapctl bench: cannot create %s: %s\n", a.output.c_str(), ec.message().c_str());
    return kExitFailed;
  }
  const std::string tier_size = mib_text(*ws + (64ULL << 20));
  for (const auto& g : a.groups) {
    std::string file, yaml;
    if (g == "disk") {
      yaml =
          "# tierswapctl bench: a swap file alone\nversion: 1\ntiers:\n  - name: bench-disk\n    kind: file\n"
          "    path: " +
          a.swap_dir + "/tierswap-bench-" + std::to_string(::getpid()) + ".swap\n    size: " + tier_size +
          "\n    priority: 10\n";
    } else if (g == "zram") {
      yaml =
          "# tierswapctl bench: zram alone\nversion: 1\ntiers:\n  - name: bench-zram\n    kind: zram\n"
          "    size: " +
          tier_size + "\n    priority: 100\n";
    } else if (g == "configured") {
      file = "/etc/tierswap.yaml";
    } else {
      file = g;
    }
    if (!yaml.empty()) {
      file = std::filesystem::absolute(a.output + "/configs/" + g + ".yaml");
      if (!write_file(file, yaml)) return kExitFailed;
    }
    std::string name = g;
    if (g != "disk" && g != "zram" && g != "configured") name = std::filesystem::path(g).stem();
    o.groups.push_back({name, std::filesystem::absolute(file)});
  }

  const bench::MachineFacts facts = bench::read_machine_facts();
  const auto reasons = bench::consent_reasons(facts, o);
  if (!reasons.empty() && !a.yes) {
    std::fprintf(stderr, "tierswapctl bench: not run without --yes, because:\n");
    for (const auto& r : reasons) std::fprintf(stderr, "  - %s\n", r.c_str());
    std::fprintf(stderr, "It would, for each group in turn:\n");
    for (const auto& g : o.groups)
      std::fprintf(
          stderr,
          "  %s: tierswapd --config %s; fio on scratch twins; a hog of %s in a cgroup of %s for %.0f s\n",
          g.name.c_str(), g.config.c_str(), mib_text(o.working_set).c_str(), mib_text(o.memory_max).c_str(),
          o.seconds);
    std::fprintf(stderr, "Run again with --yes to go ahead.\n");
    return kExitFailed;
  }
  // The user's own tiers stay exactly as they are: never next to a running
  // tierswapd (its tiers would mix with the groups', its journal would be
  // adopted and torn down by the bench's tierswapd).
  if (const int pid = bench::running_tierswapd()) {
    std::fprintf(
        stderr,
        "tierswapctl bench: tierswapd is running (pid %d); the bench applies each group with its "
        "own tierswapd and would mix its tiers with yours. Stop tierswapd first (e.g. systemctl stop "
        "tierswapd), run the bench, start it again.\n",
        pid);
    return kExitFailed;
  }
  if (std::filesystem::exists("/run/tierswap/state.json")) {
    std::fprintf(stderr,
                 "tierswapctl bench: /run/tierswap/state.json exists: a tierswapd left tiers it owns; the "
                 "bench's tierswapd would adopt and remove them. Start and stop tierswapd to clean up, or "
                 "remove the file if those tiers are gone.\n");
    return kExitFailed;
  }

  if (::geteuid() != 0) {
    std::fprintf(stderr, "tierswapctl bench: needs root (it applies swap tiers and makes a memory cgroup)\n");
    return kExitDenied;
  }
  if (facts.cgroup.empty()) {
    std::fprintf(stderr,
                 "tierswapctl bench: no memory cgroup on this machine (neither cgroup v2 with the memory "
                 "controller nor a v1 memory hierarchy is mounted)\n");
    return kExitFailed;
  }
  o.tierswapd = find_tierswapd(a.tierswapd);
  if (!on_path(o.tierswapd)) {
    std::fprintf(stderr, "tierswapctl bench: cannot find tierswapd (%s); give it with --tierswapd PATH\n",
                 o.tierswapd.c_str());
    return kExitFailed;
  }
  if (o.raw_seconds > 0 && !on_path("fio")) {
    std::fprintf(stderr, "tierswapctl bench: fio is not installed: no raw-device figures (install fio)\n");
    o.raw_seconds = 0;
  }
  // No group runs unless every group plans here.
  for (const auto& g : o.groups) {
    const auto p = plan_file(g.config, "/", stderr);
    if (!p.ok) {
      std::fprintf(stderr,
                   "tierswapctl bench: group %s: %s does not plan on this machine (above); nothing run\n",
                   g.name.c_str(), g.config.c_str());
      return kExitFailed;
    }
  }

  o.work_dir = std::filesystem::absolute(a.output);
  o.progress = ::isatty(STDERR_FILENO) != 0;
  std::FILE* log = o.progress ? std::fopen((a.output + "/bench.log").c_str(), "w") : stderr;
  if (!log) log = stderr;
  auto r = bench::run_bench(o, log);
  if (log != stderr) std::fclose(log);
  if (!r) {
    if (r.error().code == EINTR)
      std::fprintf(stderr,
                   "tierswapctl bench: interrupted; the hog, its cgroup and tierswapd are stopped, and the "
                   "machine is as before\n");
    else
      std::fprintf(stderr, "tierswapctl bench: %s\n", r.error().describe().c_str());
    return kExitFailed;
  }
  const int st = emit(*r, a.output, a.json);
  for (const auto& g : r->groups)
    if (g.status != "ok") return kExitFailed;
  return st;
}

std::function<int()> setup_bench(CLI::App& sub) {
  auto a = std::make_shared<Args>();
  a->help = own_help(sub);
  sub.add_option("GROUP", a->groups, "disk, zram, configured or a config FILE");
  sub.add_option("--seconds", a->seconds, "load per group");
  sub.add_option("--memory", a->memory, "the bench cgroup's memory limit");
  sub.add_option("--working-set", a->working_set, "what the hog touches");
  sub.add_option("--raw-seconds", a->raw_seconds, "each fio job");
  sub.add_option("--raw-size", a->raw_size, "scratch size for fio");
  sub.add_option("--swap-dir", a->swap_dir, "where the disk group's swap file goes");
  sub.add_option("--output", a->output, "the report's folder");
  sub.add_option("--tierswapd", a->tierswapd, "the daemon to run");
  sub.add_option("--report", a->report, "render a recorded report.json");
  sub.add_flag("--json", a->json, "print JSON");
  sub.add_flag("--yes", a->yes, "run even where other programs could be pushed into swap");
  return [&sub, a] {
    std::string command = "tierswapctl bench";
    std::ifstream f("/proc/self/cmdline");
    std::string arg;
    int n = 0;
    bool seen = false;
    while (std::getline(f, arg, '\0')) {
      if (n++ == 0 || (!seen && arg == "bench" && (seen = true))) continue;
      command += " " + arg;
    }
    return run(sub, *a, command);
  };
}

const Registrar reg{{"bench", "[GROUP...] [--seconds N] [--json] [--yes]",
                     "benchmark swap setups side by side (latency, PSI, pictures)", &setup_bench}};

}  // namespace
}  // namespace tierswap::ctl
