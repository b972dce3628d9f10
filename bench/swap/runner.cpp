#include "bench/swap/runner.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "backends/hostfs/host_fs.hpp"
#include "backends/hostfs/paths.hpp"
#include "backends/swap/proc_swaps.hpp"
#include "bench/swap/fio.hpp"
#include "bench/swap/hog.hpp"
#include "bench/swap/samples.hpp"
#include "policy/meminfo.hpp"

namespace tierswap::bench {
namespace {

using Clock = std::chrono::steady_clock;

volatile sig_atomic_t g_stop = 0;
void on_stop_signal(int) {
  g_stop = 1;
}

// SIGINT/SIGTERM set g_stop (no SA_RESTART: waits return EINTR) for the
// whole run; the previous handlers come back afterwards.
struct StopSignals {
  struct sigaction old_int {
  }, old_term{};
  StopSignals() {
    g_stop = 0;
    struct sigaction sa {};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGINT, &sa, &old_int);
    ::sigaction(SIGTERM, &sa, &old_term);
  }
  ~StopSignals() {
    ::sigaction(SIGINT, &old_int, nullptr);
    ::sigaction(SIGTERM, &old_term, nullptr);
  }
};

bool stopping() {
  return g_stop != 0;
}

double since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

std::string mib(std::uint64_t b) {
  return std::to_string((b + (1 << 20) - 1) >> 20) + " MiB";
}

// Progress on stderr: "[#####.....] 45/120 s  zram: load 12/30 s".
struct Progress {
  bool on = false;
  double total = 0;
  Clock::time_point t0 = Clock::now();
  std::string now;
  void show(const std::string& what) {
    now = what;
    tick();
  }
  void tick() const {
    if (!on) return;
    const double el = since(t0);
    const double all = std::max(total, el);  // a slow group runs past the estimate
    const int width = 24;
    const int done = all > 0 ? std::min(width, static_cast<int>(el / all * width)) : 0;
    std::fprintf(stderr, "\r\033[K[%s%s] %3.0f/%.0f s  %s", std::string(done, '#').c_str(),
                 std::string(width - done, '.').c_str(), el, all, now.c_str());
    std::fflush(stderr);
  }
  void done() const {
    if (on) std::fprintf(stderr, "\r\033[K");
  }
};

// A child in its own process group (Ctrl-C reaches only the bench, which
// stops the children in the right order).
struct Child {
  pid_t pid = -1;
  [[nodiscard]] bool running() const { return pid > 0; }
  // Exit status (128+signal when killed), or -1 while it runs.
  int poll() {
    if (pid <= 0) return -1;
    int st = 0;
    if (::waitpid(pid, &st, WNOHANG) != pid) return -1;
    pid = -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  }
  // Sends `sig` and waits up to `timeout` s, then SIGKILL. The exit status.
  int stop(int sig, double timeout) {
    if (pid <= 0) return -1;
    ::kill(pid, sig);
    const auto t0 = Clock::now();
    while (since(t0) < timeout) {
      if (int s = poll(); s >= 0) return s;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ::kill(pid, SIGKILL);
    int st = 0;
    ::waitpid(pid, &st, 0);
    pid = -1;
    return 128 + SIGKILL;
  }
};

// fork + exec `argv` with stdout to `out_fd` (-1: /dev/null) and stderr to
// `err_fd` (-1: /dev/null), extra environment `env` ("K=V").
Result<Child> spawn(const std::vector<std::string>& argv, int out_fd, int err_fd,
                    const std::vector<std::string>& env = {}) {
  std::vector<char*> a;
  for (const auto& s : argv) a.push_back(const_cast<char*>(s.c_str()));
  a.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) return fail(errno, "fork for " + argv[0]);
  if (pid == 0) {
    ::setpgid(0, 0);
    ::signal(SIGINT, SIG_DFL);
    ::signal(SIGTERM, SIG_DFL);
    const int null = ::open("/dev/null", O_RDWR);
    ::dup2(null, 0);
    ::dup2(out_fd >= 0 ? out_fd : null, 1);
    ::dup2(err_fd >= 0 ? err_fd : null, 2);
    for (const auto& e : env) ::putenv(const_cast<char*>(e.c_str()));
    ::execvp(a[0], a.data());
    std::fprintf(stderr, "cannot run %s: %s\n", a[0], std::strerror(errno));
    ::_exit(127);
  }
  ::setpgid(pid, pid);
  return Child{pid};
}

// Runs argv to completion, its stdout returned; killed on Ctrl-C or after
// `timeout` s. EINTR when stopped, ECHILD naming the status when it failed.
Result<std::string> capture(const std::vector<std::string>& argv, double timeout) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return fail(errno, "pipe");
  auto c = spawn(argv, fds[1], -1);
  ::close(fds[1]);
  if (!c) {
    ::close(fds[0]);
    return std::unexpected(c.error());
  }
  std::string out;
  const auto t0 = Clock::now();
  char buf[65536];
  for (;;) {
    if (stopping() || since(t0) > timeout) {
      c->stop(SIGKILL, 5);
      ::close(fds[0]);
      return stopping()
                 ? fail(EINTR, argv[0] + ": interrupted")
                 : fail(ETIMEDOUT, argv[0] + ": still running after " + std::to_string(int(timeout)) + " s");
    }
    pollfd p{fds[0], POLLIN, 0};
    if (::poll(&p, 1, 200) <= 0) continue;
    const ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n > 0) {
      out.append(buf, static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    break;
  }
  ::close(fds[0]);
  const int st = c->stop(0, timeout);  // signal 0: only wait
  if (st != 0) return fail(ECHILD, argv[0] + " exited with status " + std::to_string(st));
  return out;
}

std::string read_or_empty(const HostFs& fs, std::string_view path) {
  auto t = fs.read(path);
  return t ? *t : std::string();
}

Result<std::vector<swap::SwapArea>> swaps(const HostFs& fs) {
  auto t = fs.read(paths::proc_swaps);
  if (!t) return std::unexpected(t.error());
  return swap::parse_proc_swaps(*t);
}

std::string swaps_key(const std::vector<swap::SwapArea>& a) {
  std::string k;
  for (const auto& s : a)
    k += s.path + " " + std::to_string(s.priority) + " " + std::to_string(s.size_kib) + "\n";
  return k;
}

// ---- the bench cgroup ----

struct Cgroup {
  std::string dir;  // empty: none made
  bool v2 = false;
  std::string enabled_memory_in;  // v2: a subtree_control we added +memory to (removed again)

  static Result<std::pair<std::string, bool>> find(const HostFs& fs) {
    auto mounts = fs.read(paths::proc_mounts);
    if (!mounts) return std::unexpected(mounts.error());
    std::istringstream in(*mounts);
    std::string dev, dir, type, opts, line;
    std::string v1;
    while (std::getline(in, line)) {
      std::istringstream l(line);
      if (!(l >> dev >> dir >> type >> opts)) continue;
      if (type == "cgroup2") {
        const std::string ctl = read_or_empty(fs, dir + "/cgroup.controllers");
        if ((" " + ctl + " ").find(" memory") != std::string::npos) return std::pair{dir, true};
      } else if (type == "cgroup" && ("," + opts + ",").find(",memory,") != std::string::npos) {
        v1 = dir;
      }
    }
    if (!v1.empty()) return std::pair{v1, false};
    return fail(ENOENT,
                "no memory cgroup: neither a cgroup2 mount with the memory controller nor a cgroup v1 "
                "memory hierarchy in /proc/self/mounts");
  }

  Result<void> create(const HostFs& fs, std::uint64_t limit) {
    auto where = find(fs);
    if (!where) return std::unexpected(where.error());
    v2 = where->second;
    if (v2) {
      const std::string sc = where->first + "/cgroup.subtree_control";
      if ((" " + read_or_empty(fs, sc)).find(" memory") == std::string::npos) {
        if (auto w = fs.write(sc, "+memory"); !w) return wrap(w.error(), sc);
        enabled_memory_in = sc;
      }
    }
    const std::string d = where->first + "/tierswap-bench-" + std::to_string(::getpid());
    std::error_code ec;
    if (!std::filesystem::create_directory(fs.resolve(d), ec))
      return fail(ec ? ec.value() : EEXIST, "cannot create the bench cgroup " + d);
    dir = d;
    const std::string key = v2 ? "memory.max" : "memory.limit_in_bytes";
    if (auto w = fs.write(dir + "/" + key, std::to_string(limit)); !w)
      return wrap(w.error(), dir + "/" + key);
    return {};
  }

  Result<void> add(const HostFs& fs, pid_t pid) const {
    return fs.write(dir + "/cgroup.procs", std::to_string(pid));
  }

  [[nodiscard]] std::string pressure(const HostFs& fs) const {
    return v2 ? read_or_empty(fs, dir + "/memory.pressure") : std::string();
  }

  // Kills what is left inside, then removes the directory (retrying while
  // the kernel still holds it).
  Result<void> remove(const HostFs& fs) {
    if (!dir.empty()) {
      std::istringstream procs(read_or_empty(fs, dir + "/cgroup.procs"));
      for (pid_t p; procs >> p;) ::kill(p, SIGKILL);
      int err = 0;
      for (int i = 0; i < 250; ++i) {
        if (::rmdir(fs.resolve(dir).c_str()) == 0 || errno == ENOENT) {
          err = 0;
          break;
        }
        err = errno;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      if (err) return fail(err, "cannot remove the bench cgroup " + dir);
      dir.clear();
    }
    if (!enabled_memory_in.empty()) {
      (void)fs.write(enabled_memory_in, "-memory");
      enabled_memory_in.clear();
    }
    return {};
  }
};

// ---- the daemon child ----

struct Daemon {
  Child child;
  int notify_fd = -1;
  std::string notify_path, log_path;

  Result<void> start(const RunOptions& o, const GroupSpec& g, const std::string& tag) {
    notify_path = "/tmp/tierswap-bench-" + std::to_string(::getpid()) + ".notify";
    ::unlink(notify_path.c_str());
    notify_fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::snprintf(sa.sun_path, sizeof sa.sun_path, "%s", notify_path.c_str());
    if (notify_fd < 0 || ::bind(notify_fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0)
      return fail(errno, "cannot bind the notify socket " + notify_path);
    log_path = o.work_dir + "/tierswapd-" + tag + ".log";
    const int log = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (log < 0) return fail(errno, "cannot write " + log_path);
    auto c =
        spawn({o.tierswapd, "--config", g.config, "--no-dbus"}, log, log, {"NOTIFY_SOCKET=" + notify_path});
    ::close(log);
    if (!c) return std::unexpected(c.error());
    child = *c;
    return {};
  }

  // Until READY=1; the daemon's exit (its apply failed) or Ctrl-C end it.
  Result<void> wait_ready(double timeout) {
    const auto t0 = Clock::now();
    while (since(t0) < timeout) {
      if (stopping()) return fail(EINTR, "interrupted");
      if (int st = child.poll(); st >= 0)
        return fail(ECHILD, "tierswapd exited with status " + std::to_string(st) +
                                " before it was ready: " + log_tail());
      pollfd p{notify_fd, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      char buf[4096];
      const ssize_t n = ::recv(notify_fd, buf, sizeof buf - 1, 0);
      if (n > 0 &&
          std::string_view(buf, static_cast<std::size_t>(n)).find("READY=1") != std::string_view::npos)
        return {};
    }
    return fail(ETIMEDOUT,
                "tierswapd was not ready after " + std::to_string(int(timeout)) + " s: " + log_tail());
  }

  [[nodiscard]] std::string log_tail() const {
    std::ifstream f(log_path);
    std::string line, last;
    std::vector<std::string> lines;
    while (std::getline(f, line)) lines.push_back(line);
    for (std::size_t i = lines.size() > 4 ? lines.size() - 4 : 0; i < lines.size(); ++i)
      last += "\n  " + lines[i];
    return last.empty() ? "(no output; see " + log_path + ")" : last;
  }

  // SIGTERM: tierswapd undoes what it applied. Its exit status (0: all undone).
  int stop() {
    int st = 0;
    if (child.running()) st = child.stop(SIGTERM, 300);
    if (notify_fd >= 0) ::close(notify_fd), notify_fd = -1;
    if (!notify_path.empty()) ::unlink(notify_path.c_str());
    return st;
  }
};

// ---- raw device ----

// The selected compressor in a zram comp_algorithm list ("lzo [lz4] zstd").
std::string selected(const std::string& list) {
  const auto a = list.find('['), b = list.find(']');
  return a != std::string::npos && b > a ? list.substr(a + 1, b - a - 1) : std::string();
}

// The store of the vram tier the journal of the group's tierswapd records
// on `dev` ("nbd0"); empty when the area is not a vram tier's.
std::string vram_store_of(const HostFs& fs, const std::string& dev) {
  try {
    const auto j = nlohmann::json::parse(read_or_empty(fs, paths::run_state_file));
    for (const auto& t : j.at("tiers"))
      if (t.value("kind", "") == "vram" && t.value("device", "") == dev) return t.value("store", "");
  } catch (const std::exception&) {
  }
  return {};
}

// The exporter the group's tierswapd starts: beside it, else on $PATH.
std::string exporter_beside(const std::string& tierswapd) {
  const auto beside = std::filesystem::path(tierswapd).parent_path() / "tierswap-nbd";
  return ::access(beside.c_str(), X_OK) == 0 ? beside.string() : "tierswap-nbd";
}

Result<std::vector<RawResult>> raw_for_area(const HostFs& fs, const RunOptions& o, const swap::SwapArea& area,
                                            std::FILE* log) {
  if (o.raw_seconds <= 0) return std::vector<RawResult>{};
  const double timeout = o.raw_seconds * 2 + 60;
  const std::string dev = std::filesystem::path(area.path).filename();
  if (area.type == "partition" && dev.starts_with("zram")) {
    const std::string algo = selected(read_or_empty(fs, paths::block_attr(dev, "comp_algorithm")));
    auto id = fs.read_int(paths::zram_hot_add);
    if (!id) return wrap(id.error(), "scratch zram device");
    const std::string twin = "zram" + std::to_string(*id);
    std::fprintf(log, "raw: %s: scratch %s (%s)\n", area.path.c_str(), twin.c_str(), algo.c_str());
    Result<std::string> out = fail(EIO, "not run");
    auto set_up = [&]() -> Result<void> {
      if (!algo.empty())
        if (auto w = fs.write(paths::block_attr(twin, "comp_algorithm"), algo); !w) return w;
      return fs.write(paths::block_attr(twin, "disksize"), std::to_string(o.raw_size));
    }();
    if (set_up) out = capture(fio_args(paths::dev_node(twin), true, o.raw_seconds, o.raw_size), timeout);
    // Always undone: reset (retried: it can race with the last I/O), remove.
    for (int i = 0; i < 50; ++i) {
      if (fs.write(paths::block_attr(twin, "reset"), "1")) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    (void)fs.write(paths::zram_hot_remove, std::to_string(*id));
    if (!set_up) return wrap(set_up.error(), "scratch " + twin);
    if (!out) return std::unexpected(out.error());
    return parse_fio_json(*out, area.path, paths::dev_node(twin) + " (scratch twin, " + algo + ")");
  }
  if (area.type == "file") {
    const std::string scratch = std::filesystem::path(area.path).parent_path() /
                                (".tierswap-bench-fio-" + std::to_string(::getpid()));
    std::fprintf(log, "raw: %s: scratch file %s\n", area.path.c_str(), scratch.c_str());
    auto out = capture(fio_args(scratch, true, o.raw_seconds, o.raw_size), timeout);
    ::unlink(fs.resolve(scratch).c_str());
    if (!out) return std::unexpected(out.error());
    return parse_fio_json(*out, area.path, scratch + " (scratch file beside it)");
  }
  std::fprintf(log, "raw: %s: read only (an active swap area is never written)\n", area.path.c_str());
  auto out = capture(
      fio_args(area.path, false, o.raw_seconds, std::min<std::uint64_t>(o.raw_size, area.size_kib * 1024)),
      timeout);
  if (!out) return std::unexpected(out.error());
  auto rows = parse_fio_json(*out, area.path, area.path + " (read only)");
  if (!rows) return rows;
  // A vram tier's device: also its exporter alone, a scratch twin of it
  // with the same store, without the kernel's nbd client in between.
  if (const std::string store = vram_store_of(fs, dev); !store.empty()) {
    auto direct =
        raw_scratch_exporter(exporter_beside(o.tierswapd), store, area.path, o.raw_seconds, o.raw_size, log);
    if (direct)
      rows->insert(rows->end(), direct->begin(), direct->end());
    else if (direct.error().code == EINTR)
      return std::unexpected(direct.error());
    else
      std::fprintf(log, "raw: %s: scratch exporter: %s (skipped)\n", area.path.c_str(),
                   direct.error().describe().c_str());
  }
  return rows;
}

// ---- the perceived-latency task ----

volatile std::uint64_t g_probe_sink = 0;  // keeps the sum (and so the work) alive

// Fixed small work that needs memory and CPU like an interactive action:
// map 256 KiB, write every page, sum it, unmap. Microseconds.
double probe_once() {
  constexpr std::size_t kBytes = 256 << 10;
  const auto t0 = Clock::now();
  void* m = ::mmap(nullptr, kBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) return 0;
  auto* w = static_cast<volatile std::uint64_t*>(m);
  for (std::size_t i = 0; i < kBytes / 8; i += 8) w[i] = i * 0x9e3779b97f4a7c15ULL;
  std::uint64_t s = 0;
  for (std::size_t i = 0; i < kBytes / 8; i += 8) s += w[i];
  ::munmap(m, kBytes);
  g_probe_sink = s;
  return std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
}

// ---- the load ----

Result<void> run_load(const HostFs& fs, const RunOptions& o, Group& g, Progress& pr, std::FILE* log) {
  // Page cache out of the way: every group starts from the same state.
  ::sync();
  if (auto w = fs.write(paths::sysctl("vm.drop_caches"), "3"); !w)
    std::fprintf(log, "warning: cannot drop the page cache: %s\n", w.error().describe().c_str());
  Cgroup cg;
  auto cleanup_cg = [&] { return cg.remove(fs); };
  if (auto c = cg.create(fs, o.memory_max); !c) {
    (void)cleanup_cg();
    return std::unexpected(c.error());
  }
  int go[2], res[2];
  if (::pipe2(go, O_CLOEXEC) != 0 || ::pipe2(res, O_CLOEXEC) != 0) {
    (void)cleanup_cg();
    return fail(errno, "pipe");
  }
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::setpgid(0, 0);
    ::signal(SIGINT, SIG_DFL);
    ::signal(SIGTERM, SIG_DFL);
    char b;
    if (::read(go[0], &b, 1) != 1) ::_exit(1);  // the parent moves us into the cgroup first
    const HogResult h = run_hog({o.working_set / kHogPage, o.seconds});
    char line[256];
    const int n = std::snprintf(line, sizeof line, "%llu %llu %llu %.6f\n", (unsigned long long)h.pages,
                                (unsigned long long)h.touches, (unsigned long long)h.bad_pages, h.fill_s);
    (void)!::write(res[1], line, static_cast<std::size_t>(n));
    ::_exit(h.exit_status);
  }
  ::close(go[0]);
  ::close(res[1]);
  Child hog{pid};
  if (pid > 0) ::setpgid(pid, pid);
  auto finish = [&](Result<void> r) -> Result<void> {
    if (hog.running()) hog.stop(SIGKILL, 10);
    ::close(go[1]);
    ::close(res[0]);
    if (auto c = cleanup_cg(); !c && r) return c;
    return r;
  };
  if (pid < 0) return finish(fail(errno, "fork for the hog"));
  if (auto a = cg.add(fs, pid); !a) return finish(wrap(a.error(), "cannot move the hog into " + cg.dir));
  std::fprintf(log, "load: hog pid %d in %s (limit %s), working set %s, %.0f s\n", pid, cg.dir.c_str(),
               mib(o.memory_max).c_str(), mib(o.working_set).c_str(), o.seconds);
  if (::write(go[1], "g", 1) != 1) return finish(fail(errno, "cannot start the hog"));

  const auto t0 = Clock::now();
  auto sample = [&]() -> Result<void> {
    auto s = sample_from_text(since(t0), read_or_empty(fs, paths::proc_vmstat),
                              read_or_empty(fs, paths::proc_pressure_memory), cg.pressure(fs));
    if (!s) return std::unexpected(s.error());
    g.samples.push_back(*s);
    return {};
  };
  if (auto s = sample(); !s) return finish(s);
  const auto probe_every = std::chrono::duration<double, std::milli>(o.probe_interval_ms);
  auto next_probe = Clock::now();
  auto next_sample = t0 + std::chrono::seconds(1);
  int status = -1;
  const double limit = o.seconds + 120;  // the final verify of a slow tier takes time
  while (status < 0) {
    if (stopping()) return finish(fail(EINTR, "interrupted"));
    if (since(t0) > limit) return finish(fail(ETIMEDOUT, "the hog did not finish"));
    const auto now = Clock::now();
    if (now >= next_probe) {
      g.probe_us.push_back(std::round(probe_once() * 10) / 10);  // 0.1 µs is plenty
      next_probe += std::chrono::duration_cast<Clock::duration>(probe_every);
      if (next_probe < now) next_probe = now + std::chrono::duration_cast<Clock::duration>(probe_every);
    }
    if (now >= next_sample) {
      if (auto s = sample(); !s) return finish(s);
      next_sample += std::chrono::seconds(1);
      const int el = static_cast<int>(since(t0));
      const std::string out =
          std::to_string(g.samples.back().pswpout - g.samples.front().pswpout) + " pages out";
      pr.show(el <= static_cast<int>(o.seconds)
                  ? g.name + ": load " + std::to_string(el) + "/" +
                        std::to_string(static_cast<int>(o.seconds)) + " s, " + out
                  : g.name + ": load time over, the hog finishes its pages (" + std::to_string(el) + " s), " +
                        out);
    }
    status = hog.poll();
    std::this_thread::sleep_until(std::min(next_probe, next_sample));
  }
  if (auto s = sample(); !s) return finish(s);
  g.seconds = since(t0);
  char buf[256] = {};
  const ssize_t n = ::read(res[0], buf, sizeof buf - 1);
  unsigned long long pages = 0, touches = 0, bad = 0;
  double fill = 0;
  if (n > 0) std::sscanf(buf, "%llu %llu %llu %lf", &pages, &touches, &bad, &fill);
  g.hog = {pages, touches, bad, fill, status};
  if (status == 3 || bad)
    return finish(fail(EIO, "the hog read back " + std::to_string(bad) +
                                " bad page(s): a swap tier returned wrong data (group " + g.name + ")"));
  if (status != 0)
    return finish(fail(ECHILD, "the hog exited with status " + std::to_string(status) +
                                   (status == 128 + SIGKILL ? " (killed: OOM? raise --memory)" : "")));
  return finish({});
}

std::string today() {
  char b[64];
  const std::time_t t = std::time(nullptr);
  std::strftime(b, sizeof b, "%Y-%m-%d %H:%M UTC", std::gmtime(&t));
  return b;
}

}  // namespace

Result<std::vector<RawResult>> raw_scratch_exporter(const std::string& exporter, const std::string& store,
                                                    const std::string& tier, double seconds,
                                                    std::uint64_t size, std::FILE* log) {
  char tmpl[] = "/tmp/tierswap-bench-nbd-XXXXXX";
  if (!::mkdtemp(tmpl)) return fail(errno, "cannot make a directory for the scratch exporter's socket");
  const std::string dir = tmpl;  // mkdtemp: 0700, as the exporter requires
  const std::string sock = dir + "/nbd.sock";
  const std::string target = exporter + " --store " + store + " (scratch exporter, fio nbd engine)";
  std::fprintf(log, "raw: %s: scratch exporter %s --store %s --size %llu on %s\n", tier.c_str(),
               exporter.c_str(), store.c_str(), static_cast<unsigned long long>(size), sock.c_str());
  auto ex = spawn({exporter, "--socket", sock, "--size", std::to_string(size), "--store", store,
                   "--connections", "2", "--force"},
                  -1, -1);
  Result<std::string> out =
      fail(ETIMEDOUT, "the scratch exporter did not listen on " + sock + " within 30 s");
  if (!ex) {
    out = std::unexpected(ex.error());
  } else {
    const auto t0 = Clock::now();
    while (since(t0) < 30 && !stopping() && ex->poll() < 0) {
      if (std::filesystem::exists(sock)) {
        out = capture(fio_nbd_args("nbd+unix:///?socket=" + sock, seconds, size), seconds * 2 + 60);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (stopping()) out = fail(EINTR, "interrupted");
    if (!ex->running() && !out) out = fail(ECHILD, exporter + " exited before fio could run");
    ex->stop(SIGTERM, 10);
  }
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  if (!out) return std::unexpected(out.error());
  return parse_fio_json(*out, tier, target);
}

MachineFacts read_machine_facts() {
  const HostFs fs;
  MachineFacts m;
  if (auto t = fs.read(paths::proc_meminfo))
    if (auto mi = policy::parse_meminfo(*t)) {
      m.ram = mi->mem_total();
      m.mem_available = mi->mem_available();
      m.swap_total = mi->swap_total();
      m.swap_used = mi->swap_total() - mi->swap_free();
    }
  utsname u{};
  if (::uname(&u) == 0) m.kernel = u.release;
  std::istringstream cpu(read_or_empty(fs, paths::proc_cpuinfo));
  int cores = 0;
  for (std::string line; std::getline(cpu, line);) {
    if (line.starts_with("model name") && m.cpu.empty()) m.cpu = line.substr(line.find(':') + 2);
    if (line.starts_with("processor")) ++cores;
  }
  m.cpu += " (" + std::to_string(cores) + " CPUs)";
  if (auto c = Cgroup::find(fs)) m.cgroup = c->second ? "v2" : "v1";
  return m;
}

std::vector<std::string> consent_reasons(const MachineFacts& m, const RunOptions& o) {
  std::vector<std::string> why;
  // The cgroup holds memory_max; zram may hold up to the rest of the
  // working set (uncompressible worst case) plus the scratch twin.
  const std::uint64_t need = o.working_set + (o.raw_seconds > 0 ? o.raw_size : 0);
  if (need * 2 > m.mem_available)
    why.push_back("the bench may take up to " + mib(need) + " of RAM (the cgroup's " + mib(o.memory_max) +
                  " plus what a zram tier holds) and only " + mib(m.mem_available) +
                  " is available: other programs may be pushed into swap");
  if (m.swap_used > 0)
    why.push_back("other programs have " + mib(m.swap_used) +
                  " in swap now; while a group runs its tiers are the machine's swap too, so their pages may "
                  "move there and the figures include their paging");
  return why;
}

int running_tierswapd() {
  const HostFs fs;
  auto dirs = fs.list(paths::proc_dir);
  if (!dirs) return 0;
  for (const auto& d : *dirs) {
    if (d.empty() || !std::all_of(d.begin(), d.end(), ::isdigit)) continue;
    const int pid = std::stoi(d);
    if (pid == ::getpid()) continue;
    auto comm = fs.read_value(std::string(paths::proc_dir) + "/" + d + "/comm");
    if (!comm || *comm != "tierswapd") continue;
    // One that manages a fake tree (--root DIR other than /) is no concern.
    const std::string cmdline = read_or_empty(fs, std::string(paths::proc_dir) + "/" + d + "/cmdline");
    std::vector<std::string> args;
    for (std::size_t i = 0, j; i < cmdline.size(); i = j + 1) {
      j = cmdline.find('\0', i);
      if (j == std::string::npos) j = cmdline.size();
      args.push_back(cmdline.substr(i, j - i));
    }
    bool fake_root = false;
    for (std::size_t i = 0; i < args.size(); ++i) {
      if (args[i] == "--root" && i + 1 < args.size()) fake_root = args[i + 1] != "/";
      if (args[i].starts_with("--root=")) fake_root = args[i] != "--root=/";
    }
    if (!fake_root) return pid;
  }
  return 0;
}

Result<Report> run_bench(const RunOptions& o, std::FILE* log) {
  const HostFs fs;
  StopSignals signals;
  const MachineFacts facts = read_machine_facts();
  Report rep;
  rep.tool_version = o.tool_version;
  rep.date = today();
  rep.kernel = facts.kernel;
  rep.cpu = facts.cpu;
  rep.ram = facts.ram;
  rep.command = o.command;
  rep.params = {o.memory_max, o.working_set,       o.seconds,   o.raw_seconds,
                o.raw_size,   o.probe_interval_ms, facts.cgroup};
  Progress pr;
  pr.on = o.progress;
  // Per group: ~2 s apply, the fio jobs of about one tier, the load, ~3 s teardown.
  pr.total = static_cast<double>(o.groups.size()) * (5 + 2 * o.raw_seconds + o.seconds);
  Result<void> fatal;
  for (std::size_t gi = 0; gi < o.groups.size() && fatal; ++gi) {
    const GroupSpec& spec = o.groups[gi];
    Group g;
    g.name = spec.name;
    g.config = spec.config;
    auto before = swaps(fs);
    if (!before) {
      fatal = std::unexpected(before.error());
      break;
    }
    pr.show(g.name + ": tierswapd applies " + spec.config);
    std::fprintf(log, "group %zu/%zu %s: tierswapd --config %s\n", gi + 1, o.groups.size(), g.name.c_str(),
                 spec.config.c_str());
    Daemon d;
    Result<void> r = d.start(o, spec, std::to_string(gi + 1) + "-" + g.name);
    if (r) r = d.wait_ready(120);
    if (r) {
      auto after = swaps(fs);
      if (!after)
        r = std::unexpected(after.error());
      else
        for (const auto& a : *after)
          if (!swap::find_area(*before, a.path)) g.areas.push_back(a.path);
      if (r && g.areas.empty())
        r = fail(ENOENT, "tierswapd applied " + spec.config + " but added no swap area");
      for (std::size_t i = 0; r && i < g.areas.size(); ++i) {
        pr.show(g.name + ": raw device " + g.areas[i]);
        auto raw = raw_for_area(fs, o, *swap::find_area(*after, g.areas[i]), log);
        if (raw)
          g.raw.insert(g.raw.end(), raw->begin(), raw->end());
        else if (raw.error().code == EINTR)
          r = std::unexpected(raw.error());
        else
          std::fprintf(log, "raw: %s: %s (skipped)\n", g.areas[i].c_str(), raw.error().describe().c_str());
      }
      if (r) {
        pr.show(g.name + ": load");
        r = run_load(fs, o, g, pr, log);
      }
    }
    pr.show(g.name + ": tierswapd restores");
    const int st = d.stop();
    auto after = swaps(fs);
    if (!r) {
      g.status = "failed";
      g.error = r.error().describe();
      if (r.error().code == EINTR) g.error = "interrupted";
      std::fprintf(log, "group %s failed: %s\n", g.name.c_str(), g.error.c_str());
      if (r.error().code == EINTR || r.error().code == EIO) fatal = std::unexpected(r.error());
    }
    if (st != 0 && st != -1) {
      fatal = fail(EIO, "tierswapd exited with status " + std::to_string(st) + " after SIGTERM for group " +
                            g.name + ": it may not have restored everything; see " + d.log_path);
    } else if (!after || swaps_key(*after) != swaps_key(*before)) {
      fatal = fail(EIO, "/proc/swaps after group " + g.name + " differs from before it; see " + d.log_path);
    }
    rep.groups.push_back(std::move(g));
  }
  pr.done();
  if (!fatal) {
    if (fatal.error().code == EINTR)
      std::fprintf(log, "interrupted: everything the bench started is stopped and undone\n");
    return std::unexpected(fatal.error());
  }
  return rep;
}

}  // namespace tierswap::bench
