#include "backends/vram/vram_kind.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <thread>

#include "backends/hostfs/nvidia_params.hpp"
#include "backends/hostfs/paths.hpp"
#include "backends/swap/swap_step.hpp"
#include "backends/vram/exporter_control.hpp"
#include "backends/vram/nbd_attach.hpp"
#include "common/byte_format.hpp"
#include "common/refusal.hpp"

#ifndef TIERSWAP_NBD_INSTALLED
#define TIERSWAP_NBD_INSTALLED "/usr/sbin/tierswap-nbd"
#endif

namespace tierswap::vram {

namespace {

constexpr const char* kName = "vram";
constexpr const char* kExporter = "tierswap-nbd";
constexpr auto kExitGrace = std::chrono::seconds(5);

struct State final : KindState {
  bool nbd = false;
  std::string nbd_evidence;  // the file that says the driver is there (or the one looked for)
  std::vector<std::string> gpus;
};

// The nbd driver: its module directory (loaded or built in), else a device.
Capability nbd_capability(const HostFs& fs) {
  if (fs.exists(paths::sys_module_nbd)) return {"nbd", true, std::string(paths::sys_module_nbd)};
  const std::string dev0 = paths::block_attr("nbd0");
  if (fs.exists(dev0)) return {"nbd", true, dev0};
  return {"nbd", false, std::string(paths::sys_module_nbd)};
}

std::vector<std::string> nvidia_gpus(const HostFs& fs) {
  auto l = fs.list(paths::proc_nvidia_gpus);
  return l ? *l : std::vector<std::string>{};
}

// "store=host connections=4 device=0" -> its values.
std::string option(const std::string& value, const std::string& key) {
  std::istringstream in(value);
  for (std::string tok; in >> tok;)
    if (tok.starts_with(key + "=")) return tok.substr(key.size() + 1);
  return {};
}

// "PID:START" <-> the two numbers.
std::string process_id(pid_t pid, std::uint64_t start) {
  return std::to_string(pid) + ":" + std::to_string(start);
}
bool parse_process_id(const std::string& id, pid_t& pid, std::uint64_t& start) {
  const auto colon = id.find(':');
  if (colon == std::string::npos) return false;
  try {
    pid = static_cast<pid_t>(std::stol(id.substr(0, colon)));
    start = std::stoull(id.substr(colon + 1));
  } catch (...) {
    return false;
  }
  return pid > 0;
}

std::string proc_stat(pid_t pid) {
  return std::string(paths::proc_dir) + "/" + std::to_string(pid) + "/stat";
}

// Field 22 of /proc/<pid>/stat (start time) and field 3 (state); nullopt
// when the process is gone.
struct ProcInfo {
  std::uint64_t start = 0;
  char state = '?';
  std::string comm;  // field 2, without its parentheses
};
std::optional<ProcInfo> proc_info(const HostFs& fs, pid_t pid) {
  auto text = fs.read(proc_stat(pid));
  if (!text) return std::nullopt;
  const auto open = text->find('(');
  const auto close = text->rfind(')');  // comm may hold spaces and parentheses
  if (open == std::string::npos || close == std::string::npos || close < open) return std::nullopt;
  std::istringstream in(text->substr(close + 1));
  ProcInfo info;
  info.comm = text->substr(open + 1, close - open - 1);
  std::string field;
  in >> info.state;
  for (int i = 4; i <= 22 && in >> field; ++i)
    if (i == 22) info.start = std::strtoull(field.c_str(), nullptr, 10);
  return info;
}

// Next to the running executable (the build tree, a package's sbin), else
// where the build installs it.
std::string exporter_path() {
  std::error_code ec;
  const auto self = std::filesystem::read_symlink(std::string(paths::proc_dir) + "/self/exe", ec);
  if (!ec) {
    const auto beside = self.parent_path() / kExporter;
    if (::access(beside.c_str(), X_OK) == 0) return beside;
  }
  return TIERSWAP_NBD_INSTALLED;
}

// The name the kernel keeps for a tier's device (/sys/block/nbdN/backend).
std::string backend_identifier(const std::string& tier) {
  return "tierswap-" + tier;
}

std::string spill_text(const std::string& spill) {
  return spill.empty() ? "none" : spill;
}

std::string spill_change_note(const std::string& tier, const std::string& was, const std::string& want,
                              bool evacuated) {
  return "tier \"" + tier + "\": spill " + spill_text(was) + " -> " + spill_text(want) +
         ": applies when the tier is next set up (its exporter keeps " + spill_text(was) +
         (evacuated ? ", which holds its pages now" : "") +
         " while it serves: it is not restarted for this, since a restart needs the tier drained; remove "
         "the tier, reload, and add it back to apply it now)";
}

std::string fds_placeholder(const std::string& tier) {
  return "{vram:" + tier + ":fds}";
}

void close_fds(const std::string& list) {
  std::istringstream in(list);
  for (std::string tok; std::getline(in, tok, ',');)
    if (!tok.empty()) ::close(std::stoi(tok));
}

Result<void> start_exporter(Step& s, ExecContext& ctx) {
  const std::string store = option(s.value, "store");
  const std::string device = option(s.value, "device");
  const std::string spill = option(s.value, "spill");
  const int n = std::max(1, std::atoi(option(s.value, "connections").c_str()));
  const std::string exe = exporter_path();
  if (::access(exe.c_str(), X_OK) != 0)
    return kernel_error(errno,
                        "vram tier \"" + s.tier + "\": " + exe + ": cannot run the exporter " + kExporter);

  std::vector<int> ours, theirs;
  const auto close_all = [&] {
    for (int fd : ours) ::close(fd);
    for (int fd : theirs) ::close(fd);
  };
  for (int i = 0; i < n; ++i) {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
      const int e = errno;
      close_all();
      return kernel_error(e, "vram tier \"" + s.tier + "\": socketpair for the exporter");
    }
    ours.push_back(sv[0]);
    theirs.push_back(sv[1]);
  }
  // The control channel (exporter_control.hpp) is a socket in the
  // exporter's own runtime directory, which the exporter makes (0700, the
  // socket 0600, without following links): the daemon connects there now
  // and after a restart alike. Its parent is tierswapd's state directory.
  const std::string state_dir = ctx.fs.resolve(paths::run_state_dir).string();
  std::error_code dir_ec;
  std::filesystem::create_directories(std::filesystem::path(state_dir).parent_path(), dir_ec);
  if (::mkdir(state_dir.c_str(), 0700) != 0 && errno != EEXIST) {
    const int e = errno;
    close_all();
    return kernel_error(e,
                        "vram tier \"" + s.tier + "\": cannot create " + std::string(paths::run_state_dir));
  }
  const std::string control = ctx.fs.resolve(paths::exporter_control_socket(s.tier)).string();
  // exec failure comes back through a close-on-exec pipe.
  int report[2];
  if (::pipe2(report, O_CLOEXEC) != 0) {
    const int e = errno;
    close_all();
    return kernel_error(e, "vram tier \"" + s.tier + "\": pipe for the exporter");
  }
  std::vector<std::string> args = {exe, "--store", store, "--size", std::to_string(s.size)};
  if (!device.empty()) args.insert(args.end(), {"--device", device});
  for (int fd : theirs) args.insert(args.end(), {"--fd", std::to_string(fd)});
  args.insert(args.end(), {"--control-socket", control});
  if (!spill.empty()) args.insert(args.end(), {"--spill", spill});
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  const pid_t pid = ::fork();
  if (pid < 0) {
    const int e = errno;
    close_all();
    ::close(report[0]);
    ::close(report[1]);
    return kernel_error(e, "vram tier \"" + s.tier + "\": fork for the exporter");
  }
  if (pid == 0) {
    // Only async-signal-safe calls until exec: its own session, so that the
    // daemon's end (or a signal to its group) does not end the exporter.
    ::setsid();
    for (int fd : theirs) ::fcntl(fd, F_SETFD, 0);
    ::execv(argv[0], argv.data());
    const int e = errno;
    (void)!::write(report[1], &e, sizeof e);
    ::_exit(127);
  }
  ::close(report[1]);
  for (int fd : theirs) ::close(fd);
  int exec_errno = 0;
  const ssize_t got = ::read(report[0], &exec_errno, sizeof exec_errno);
  ::close(report[0]);
  if (got == sizeof exec_errno) {
    ::waitpid(pid, nullptr, 0);
    for (int fd : ours) ::close(fd);
    return kernel_error(exec_errno, "vram tier \"" + s.tier + "\": " + exe + ": exec failed");
  }
  const auto info = proc_info(ctx.fs, pid);
  const std::string id = process_id(pid, info ? info->start : 0);
  std::string fds;
  for (int fd : ours) fds += (fds.empty() ? "" : ",") + std::to_string(fd);
  ctx.bind("{vram:" + s.tier + ":exporter}", id);
  ctx.bind(fds_placeholder(s.tier), fds);
  s.path = id;
  return {};
}

Result<void> attach(Step& s, ExecContext& ctx) {
  const auto it = ctx.bindings.find(fds_placeholder(s.tier));
  if (it == ctx.bindings.end())
    return refusal(ErrorKind::invalid_argument, EINVAL,
                   "vram tier \"" + s.tier + "\": no exporter was started for it in this apply");
  const std::string list = it->second;
  ctx.bindings.erase(it);
  std::vector<int> fds;
  std::istringstream in(list);
  for (std::string tok; std::getline(in, tok, ',');) fds.push_back(std::stoi(tok));
  attach::ExportInfo info;
  for (size_t i = 0; i < fds.size(); ++i) {
    auto h = attach::client_handshake(fds[i]);
    if (!h) {
      close_fds(list);
      return wrap(h.error(), "vram tier \"" + s.tier + "\": handshake with " + kExporter + " (pid " +
                                 s.path.substr(0, s.path.find(':')) + ")");
    }
    if (i == 0) info = *h;
  }
  attach::ConnectOptions opt;
  opt.size = info.size;
  opt.block_size = 4096;
  opt.transmission_flags = info.transmission_flags;
  opt.identifier = backend_identifier(s.tier);
  auto a = attach::connect(ctx.fs, fds, opt);
  close_fds(list);  // the kernel holds its own references
  if (!a) return wrap(a.error(), "vram tier \"" + s.tier + "\"");
  const std::string dev = "nbd" + std::to_string(a->index);
  s.previous_size = fds.size();
  ctx.bind("{vram:" + s.tier + "}", dev);
  s.value = dev;
  return {};
}

Result<void> detach(const Step& s, ExecContext& ctx) {
  if (!s.path.starts_with("nbd"))
    return refusal(ErrorKind::invalid_argument, EINVAL, "vram: \"" + s.path + "\" is not an nbd device");
  unsigned index = 0;
  try {
    index = static_cast<unsigned>(std::stoul(s.path.substr(3)));
  } catch (...) {
    return refusal(ErrorKind::invalid_argument, EINVAL, "vram: \"" + s.path + "\" is not an nbd device");
  }
  if (!ctx.fs.exists(paths::block_attr(s.path))) return {};  // the device is gone: nothing to disconnect
  const auto via = attach::have_netlink_family() ? attach::Via::kNetlink : attach::Via::kIoctl;
  auto r = attach::disconnect(ctx.fs, index, via);
  if (!r) return wrap(r.error(), "vram tier \"" + s.tier + "\"");
  return {};
}

// Whether `pid` (started at `start`; 0: unknown) has exited. Reaps it when it
// is our child.
bool exited(const HostFs& fs, pid_t pid, std::uint64_t start) {
  const pid_t w = ::waitpid(pid, nullptr, WNOHANG);
  if (w == pid) return true;
  const auto info = proc_info(fs, pid);
  // A zombie that is our child but not reapable yet is a thread-group leader
  // whose other threads still run (CUDA's, releasing the VRAM): not gone.
  if (info && info->state == 'Z' && ::waitpid(pid, nullptr, WNOHANG) == 0) return false;
  return !info || info->state == 'Z' || (start && info->start != start);
}

bool wait_exit(const HostFs& fs, pid_t pid, std::uint64_t start, std::chrono::milliseconds grace) {
  const auto until = std::chrono::steady_clock::now() + grace;
  while (!exited(fs, pid, start)) {
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

Result<void> stop_exporter(const Step& s, ExecContext& ctx) {
  pid_t pid = 0;
  std::uint64_t start = 0;
  if (!parse_process_id(s.path, pid, start))
    return refusal(ErrorKind::invalid_argument, EINVAL,
                   "vram: \"" + s.path + "\" does not name an exporter (PID:START)");
  // Once its connections end (detach, or the daemon's socket ends closed)
  // the exporter exits by itself.
  if (wait_exit(ctx.fs, pid, start, kExitGrace)) return {};
  if (::kill(pid, SIGTERM) != 0 && errno != ESRCH)
    return kernel_error(
        errno, "vram tier \"" + s.tier + "\": SIGTERM to " + kExporter + " pid " + std::to_string(pid));
  if (wait_exit(ctx.fs, pid, start, kExitGrace)) return {};
  return refusal(ErrorKind::busy, EBUSY,
                 "vram tier \"" + s.tier + "\": " + kExporter + " pid " + std::to_string(pid) +
                     " does not exit (is a device still attached to it?)");
}

// --- re-adoption after a restart (TierKind::readopt) ------------------------
// The journal is hostile input: a pid is trusted only when /proc says it is a
// tierswap-nbd started at the recorded time, a device only when the kernel
// says it is connected with the recorded size (and backend identifier, on
// kernels that keep one).

// nullopt: `pid` is the exporter the journal recorded; else why it is not.
std::optional<std::string> exporter_problem(const HostFs& fs, pid_t pid, std::uint64_t start) {
  const std::string who = std::string(kExporter) + " (pid " + std::to_string(pid) + ")";
  if (pid <= 0) return "no exporter is recorded";
  const auto info = proc_info(fs, pid);
  if (!info) return who + " no longer runs";
  if (info->state == 'Z' || info->state == 'X') return who + " has exited";
  if (start == 0)
    return "the journal has no start time for " + who + ", so it cannot be told apart from a reused pid";
  if (info->start != start)
    return who + " has exited: pid " + std::to_string(pid) + " now belongs to a process started at " +
           std::to_string(info->start) + ", not " + std::to_string(start);
  if (info->comm != kExporter)
    return "pid " + std::to_string(pid) + " is \"" + info->comm + "\", not " + kExporter;
  return std::nullopt;
}

enum class DeviceFinding { attached, disconnected, foreign };

// Whether /dev/<device> is still the export the journal recorded.
DeviceFinding check_device(const HostFs& fs, const OwnedTier& t, std::string& why) {
  const std::string dev = paths::dev_node(t.device);
  if (!fs.exists(paths::block_attr(t.device))) {
    why = dev + " no longer exists (" + paths::block_attr(t.device) + " is gone)";
    return DeviceFinding::disconnected;
  }
  if (!fs.exists(paths::block_attr(t.device, "pid"))) {
    why = dev + " is no longer connected (" + paths::block_attr(t.device, "pid") + " is gone)";
    return DeviceFinding::disconnected;
  }
  if (auto b = fs.read_value(paths::block_attr(t.device, "backend")); b && !b->empty()) {
    if (*b != backend_identifier(t.name)) {
      why = dev + " serves backend \"" + *b + "\", not \"" + backend_identifier(t.name) +
            "\": it is not this tier's device";
      return DeviceFinding::foreign;
    }
  }
  if (auto sectors = fs.read_value(paths::block_attr(t.device, "size"))) {
    const std::uint64_t bytes = std::strtoull(sectors->c_str(), nullptr, 10) * 512;
    if (t.size && bytes != t.size) {
      why = dev + " is " + std::to_string(bytes) + " bytes, not the recorded " + std::to_string(t.size) +
            ": it is not this tier's device";
      return DeviceFinding::foreign;
    }
  }
  return DeviceFinding::attached;
}

Readoption readopt_tier(OwnedTier& t, const HostFs& fs) {
  Readoption out;
  const std::string tier = "tier \"" + t.name + "\": ";
  const std::string dev = paths::dev_node(t.device);
  if (!t.failed.empty()) {
    out.log.push_back(tier + "failed before the restart (" + t.failed + "): it will be torn down");
    return out;
  }
  std::string device_why;
  const DeviceFinding device = check_device(fs, t, device_why);
  if (device == DeviceFinding::foreign) {
    out.log.push_back(tier + device_why + ": forgetting the tier and leaving " + dev + " alone");
    out.forget = true;
    return out;
  }
  const auto exporter = exporter_problem(fs, t.exporter_pid, t.exporter_start);
  if (!exporter && device == DeviceFinding::attached) {
    out.log.push_back(tier + "re-adopted: " + kExporter + " pid " + std::to_string(t.exporter_pid) +
                      " (store " + (t.store.empty() ? "?" : t.store) + ") still serves " + dev + ", " +
                      (t.active ? "a swap area" : "not swapped on") +
                      "; nothing was swapped off or rewritten");
    return out;
  }
  if (exporter) {
    // Never signal a pid that is not provably ours.
    t.exporter_pid = 0;
    t.exporter_start = 0;
    t.failed = "its exporter failed: " + *exporter + ". The pages it held are gone: the kernel returns " +
               "I/O errors to their owners (a process touching one gets SIGBUS)";
    if (device == DeviceFinding::attached)
      t.failed += "; " + dev + " is torn down (swapoff marks the lost pages, then disconnect)";
  } else {
    t.failed = device_why + " while " + kExporter + " pid " + std::to_string(t.exporter_pid) +
               " still runs: the pages on it are gone (the kernel returns I/O errors to their owners)";
  }
  out.log.push_back(tier + "FAILED: " + t.failed);
  return out;
}

class VramKind final : public TierKind {
 public:
  std::string_view name() const override { return kName; }
  std::vector<std::string_view> tier_kinds() const override { return {kName}; }

  std::vector<Capability> probe(const HostFs& fs) const override {
    return {nbd_capability(fs), {"gpu", !nvidia_gpus(fs).empty(), std::string(paths::proc_nvidia_gpus)}};
  }

  std::unique_ptr<KindState> observe(const HostFs& fs) const override {
    auto s = std::make_unique<State>();
    const auto c = nbd_capability(fs);
    s->nbd = c.offered;
    s->nbd_evidence = c.evidence;
    s->gpus = nvidia_gpus(fs);
    return s;
  }

  void plan_tier(const TierSpec& t, PlanContext& ctx) const override {
    const auto& st = ctx.state_as<State>();
    const auto unavailable = [&](const std::string& key, const std::string& why, const std::string& hint) {
      ctx.warning(key, "vram tier unavailable: " + why + "; the other tiers still apply", hint);
      ctx.note("tier \"" + t.name + "\": unavailable (" + why + ")");
    };
    if (!st.nbd) {
      unavailable("kind",
                  "this kernel has no nbd driver (CONFIG_BLK_DEV_NBD): neither " +
                      std::string(paths::sys_module_nbd) + " nor " + paths::block_attr("nbd0") + " exists",
                  "load it (modprobe nbd), or remove the tier");
      return;
    }
    if (t.store == "cuda" && st.gpus.empty()) {
      unavailable("store",
                  "no NVIDIA GPU (" + std::string(paths::proc_nvidia_gpus) + " lists none) for store: cuda",
                  "store: host keeps the pages in RAM (a test store)");
      return;
    }
    if (t.size_bytes == 0) {
      unavailable("size", "its size depends on the GPU's memory, which is not known here",
                  "give a size in bytes, e.g. size: 4G");
      return;
    }
    const std::uint64_t size = swap_step::page_round_up(t.size_bytes);
    if (t.store != "host" && !t.card && t.card_absent) {
      unavailable("gpu", t.card_unknown,
                  "gpu: takes an index or UUID that nvidia-smi -L lists (empty: the first)");
      return;
    }

    for (const auto& o : ctx.owned) {
      if (o.name != t.name || o.kind != kName || ctx.is_kept(o.swap_path)) continue;
      if (!o.failed.empty()) continue;  // torn down and set up afresh
      const bool same_setup = o.size == size && o.store == t.store;
      const bool keep_active = same_setup && o.active &&
                               swap_step::active_at(ctx.swaps, o.swap_path, t.priority) &&
                               o.discard == t.discard;
      if (keep_active || (same_setup && o.drained)) {
        ctx.keep(o.swap_path);
        if (o.drained) ctx.note(swap_step::drained_note(t.name));
        // The spill store is the exporter's: changing it means a new
        // exporter, and a serving one is never restarted for it (its pages
        // would have to be drained first). The change waits for the next
        // set-up of the tier; the journal keeps what the exporter has.
        if (o.spill != t.spill) ctx.note(spill_change_note(t.name, o.spill, t.spill, o.evacuated));
        return;
      }
    }
    // A new (or re-set-up) tier must fit beside the reserve; a kept one is
    // the policy's business (its reserve rule evacuates it).
    if (t.store != "host") {
      if (t.card) {
        if (auto why = vram_fit_problem(size, *t.card, t.reserve_bytes, t.reserve_key)) {
          unavailable("size", *why, "lower size or reserve (" + t.reserve_key + ")");
          return;
        }
        ctx.note("tier \"" + t.name + "\": GPU " + std::to_string(t.card->index) + " (" + t.card->name +
                 "): " + format_bytes(t.card->free_bytes) + " free of " + format_bytes(t.card->total_bytes) +
                 "; size " + format_bytes(size) + ", reserve " + format_bytes(t.reserve_bytes) + " (" +
                 t.reserve_key + ")");
      } else if (!t.card_unknown.empty()) {
        ctx.note("tier \"" + t.name + "\": free VRAM not checked against size and reserve (" +
                 t.card_unknown + ")");
      }
    }
    const int connections =
        t.connections > 0 ? t.connections : default_connections(std::thread::hardware_concurrency());
    std::string opts = "store=" + t.store + " connections=" + std::to_string(connections);
    if (!t.gpu.empty() && t.store == "cuda") opts += " device=" + t.gpu;
    if (!t.spill.empty()) opts += " spill=" + t.spill;
    const std::string dev = paths::dev_node("{vram:" + t.name + "}");
    ctx.add(Step{.kind = kName, .op = "start_exporter", .tier = t.name, .value = opts, .size = size});
    ctx.add(Step{.kind = kName,
                 .op = "nbd_attach",
                 .tier = t.name,
                 .path = "{vram:" + t.name + ":exporter}",
                 .previous = t.spill.empty() ? t.store : t.store + " spill=" + t.spill,
                 .size = size,
                 .previous_size = static_cast<std::uint64_t>(connections)});
    ctx.add(swap_step::header(kName, t.name, dev, size));
    ctx.add(swap_step::swapon(kName, t.name, dev, kName, t.priority, t.discard, size));
  }

  TeardownSteps teardown(const OwnedTier& o, const std::vector<swap::SwapArea>& swaps) const override {
    TeardownSteps out;
    if (!o.failed.empty()) {
      // Its pages are lost already: swapoff moves nothing (the kernel marks
      // each lost page so that its owner gets an error), so it needs no
      // room and is not a drain.
      if (swap_step::active_at(swaps, o.swap_path, -1))
        out.destroy.push_back(Step{.kind = kName, .op = "swapoff_lost", .tier = o.name, .path = o.swap_path});
    } else if (auto off = swap_step::release(kName, o, swaps)) {
      out.release.push_back(*off);
    }
    if (!o.device.empty())
      out.destroy.push_back(Step{.kind = kName, .op = "nbd_detach", .tier = o.name, .path = o.device});
    if (o.exporter_pid > 0)
      out.destroy.push_back(Step{.kind = kName,
                                 .op = "stop_exporter",
                                 .tier = o.name,
                                 .path = process_id(o.exporter_pid, o.exporter_start)});
    return out;
  }

  std::shared_ptr<TierControl> control(const OwnedTier& o, const HostFs& fs) const override {
    if (o.kind != kName || o.control_socket.empty() || o.exporter_pid <= 0 || !o.failed.empty())
      return nullptr;
    return std::make_shared<ExporterChannel>("vram tier \"" + o.name + "\"",
                                             fs.resolve(o.control_socket).string(), o.exporter_pid);
  }

  Readoption readopt(OwnedTier& t, const HostFs& fs) const override {
    if (t.kind != kName) return {};
    return readopt_tier(t, fs);
  }

  Result<void> execute(Step& s, ExecContext& ctx) const override {
    if (s.op == "swapoff_lost") return ctx.kernel.swapoff(s.path);
    if (s.op == "start_exporter") return start_exporter(s, ctx);
    if (s.op == "nbd_attach") return attach(s, ctx);
    if (s.op == "nbd_detach") return detach(s, ctx);
    if (s.op == "stop_exporter") return stop_exporter(s, ctx);
    return swap_step::execute(s, ctx);
  }

  std::optional<Step> undo_of(const Step& s) const override {
    if (s.op == "start_exporter")
      return Step{.kind = kName, .op = "stop_exporter", .tier = s.tier, .path = s.path};
    if (s.op == "nbd_attach") return Step{.kind = kName, .op = "nbd_detach", .tier = s.tier, .path = s.value};
    if (s.op == "swapoff_lost") return std::nullopt;
    return swap_step::undo_of(s);
  }

  bool reversible(const Step& s) const override {
    return s.op != "nbd_detach" && s.op != "stop_exporter" && s.op != "swapoff_lost";
  }

  void record(Ownership& own, const Step& s) const override {
    if (s.op == "nbd_attach") {
      OwnedTier t;
      t.name = s.tier;
      t.kind = kName;
      t.device = s.value;
      t.swap_path = paths::dev_node(s.value);
      t.size = s.size;
      // `previous` is "STORE[ spill=SPILL]" (plan_tier).
      const std::string setup = s.previous.value_or("");
      t.store = setup.substr(0, setup.find(' '));
      t.spill = option(setup, "spill");
      t.control_socket = paths::exporter_control_socket(s.tier);
      t.backend = backend_identifier(s.tier);
      t.connections = static_cast<int>(s.previous_size);
      pid_t pid = 0;
      std::uint64_t start = 0;
      if (parse_process_id(s.path, pid, start)) {
        t.exporter_pid = pid;
        t.exporter_start = start;
      }
      own.tiers.push_back(t);
      return;
    }
    if (s.op == "nbd_detach") {
      std::erase_if(own.tiers, [&](const OwnedTier& t) { return t.kind == kName && t.device == s.path; });
      return;
    }
    if (s.op == "start_exporter" || s.op == "stop_exporter") return;  // the attach records the tier
    if (s.op == "swapoff" || s.op == "swapoff_lost") {
      // The device and the exporter stay ours until detached.
      if (auto* t = own.find_swap(s.path)) t->active = false;
      return;
    }
    swap_step::record(own, s);
  }

  std::string describe(const Step& s) const override {
    if (s.op == "start_exporter")
      return std::string("start ") + kExporter + " " + s.value + " size=" + std::to_string(s.size) +
             " -> {vram:" + s.tier + ":exporter}";
    if (s.op == "nbd_attach") return "nbd attach " + s.path + " -> {vram:" + s.tier + "}";
    if (s.op == "nbd_detach") return "nbd disconnect " + s.path;
    if (s.op == "swapoff_lost")
      return "swapoff " + s.path + " (its exporter failed: its pages are lost, nothing is moved)";
    if (s.op == "stop_exporter") return std::string("stop ") + kExporter + " " + s.path;
    return swap_step::describe(s);
  }

  std::string describe_undo(const Step& s) const override {
    if (s.op == "start_exporter") return std::string("undo: stop ") + kExporter;
    if (s.op == "nbd_attach") return "undo: nbd disconnect {vram:" + s.tier + "}";
    return swap_step::describe_undo(s);
  }

  StepFields fields(const Step& s) const override {
    if (s.op == "start_exporter" || s.op == "nbd_attach") return {.value = true};
    if (s.op == "nbd_detach" || s.op == "stop_exporter" || s.op == "swapoff_lost") return {};
    return swap_step::fields(s);
  }

  // The host store is RAM, which suspend keeps; every other store is GPU
  // memory, which survives only where the driver preserves it.
  std::optional<std::string> suspend_loss(const OwnedTier& o, const HostFs& fs) const override {
    if (o.kind != kName || o.store == "host") return std::nullopt;
    const auto p = read_nvidia_preserve(fs);
    if (p.preserve) return std::nullopt;
    return "store " + (o.store.empty() ? std::string("cuda") : o.store) +
           " keeps its pages in VRAM, which the NVIDIA driver does not keep across suspend (" + p.evidence +
           ")";
  }

  std::optional<TierStats> stats(const OwnedTier& o, const HostFs& fs) const override {
    return TierStats{.size_bytes = o.size,
                     .active = o.active,
                     .process_state = exporter_state(fs, o.exporter_pid, o.exporter_start)};
  }
};

}  // namespace

std::string exporter_state(const HostFs& fs, int pid, std::uint64_t start) {
  if (pid <= 0) return {};
  return exporter_problem(fs, pid, start) ? "gone" : "running";
}

std::optional<std::string> vram_fit_problem(std::uint64_t size, const GpuCard& card, std::uint64_t reserve,
                                            const std::string& reserve_key) {
  const std::uint64_t context = card.own_bytes > 0 ? 0 : kCudaContextBytes;
  const std::uint64_t free = card.free_bytes + card.own_bytes;
  const unsigned __int128 need = static_cast<unsigned __int128>(size) + reserve + context;
  if (need <= free) return std::nullopt;
  std::string why = "size " + format_bytes(size) + " is above free VRAM " + format_bytes(free);
  if (card.own_bytes > 0)
    why += " (with the " + format_bytes(card.own_bytes) + " its running exporter holds)";
  why += " on GPU " + std::to_string(card.index) + " (" + (card.name.empty() ? "unnamed" : card.name) +
         ") minus reserve " + format_bytes(reserve) + " (" + reserve_key + ")";
  if (context > 0) why += " minus " + format_bytes(context) + " for the CUDA context";
  return why;
}

int default_connections(unsigned cpus) {
  return static_cast<int>(std::clamp(cpus, 1U, 16U));
}

const TierKind& tier_kind() {
  static const VramKind k;
  return k;
}

}  // namespace tierswap::vram
