#include "daemon/journal.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <type_traits>

#include "backends/hostfs/paths.hpp"
#include "backends/swap/proc_swaps.hpp"
#include "backends/swap/safe_path.hpp"
#include "backends/swap/swap_header.hpp"
#include "backends/sysctl/sysctl.hpp"
#include "backends/zswap/zswap.hpp"
#include "daemon/kind_registry.hpp"
#include "daemon/observe.hpp"
#include "policy/zram_mm_stat.hpp"

namespace tierswap {

OwnedTier* Journal::find_tier(const std::string& name) {
  for (auto& t : tiers)
    if (t.name == name) return &t;
  return nullptr;
}
const OwnedTier* Journal::find_tier(const std::string& name) const {
  for (const auto& t : tiers)
    if (t.name == name) return &t;
  return nullptr;
}
OwnedTier* Journal::find_swap(const std::string& swap_path) {
  for (auto& t : tiers)
    if (t.swap_path == swap_path) return &t;
  return nullptr;
}
OwnedTier* Journal::find_device(const std::string& device) {
  for (auto& t : tiers)
    if (!t.device.empty() && t.device == device) return &t;
  return nullptr;
}
ValueRecord* Journal::find_value(const std::string& path) {
  for (auto& v : values)
    if (v.path == path) return &v;
  return nullptr;
}

namespace {

using nlohmann::json;

// Reading one key of a journal object: absent -> the default; present with
// the wrong type or out of range -> EINVAL naming the entry and key.
struct Reader {
  const json& obj;
  std::string at;  // "tiers[0]"

  [[nodiscard]] Error wrong(const char* key, const std::string& what) const {
    return Error{EINVAL, "journal: " + at + (at.empty() ? "" : ".") + key + ": " + what};
  }
  Result<std::string> text(const char* key) const {
    const auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) return std::string{};
    if (!it->is_string()) return std::unexpected(wrong(key, "is not a string"));
    return it->get<std::string>();
  }
  Result<bool> flag(const char* key) const {
    const auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) return false;
    if (!it->is_boolean()) return std::unexpected(wrong(key, "is not true or false"));
    return it->get<bool>();
  }
  // An integer in [lo, hi]; `absent` when the key is missing.
  Result<std::int64_t> integer(const char* key, std::int64_t lo, std::int64_t hi, std::int64_t absent) const {
    const auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) return absent;
    if (it->is_number_unsigned()) {
      const auto v = it->get<std::uint64_t>();
      if (v > static_cast<std::uint64_t>(hi))
        return std::unexpected(wrong(key, std::to_string(v) + " is out of range"));
      return static_cast<std::int64_t>(v);
    }
    if (!it->is_number_integer()) return std::unexpected(wrong(key, "is not an integer"));
    const auto v = it->get<std::int64_t>();
    if (v < lo || v > hi) return std::unexpected(wrong(key, std::to_string(v) + " is out of range"));
    return v;
  }
  Result<std::uint64_t> bytes(const char* key) const {
    const auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) return std::uint64_t{0};
    if (!it->is_number_unsigned()) return std::unexpected(wrong(key, "is not a non-negative integer"));
    return it->get<std::uint64_t>();
  }
};

// Unwraps a Result into `out` or returns its error from the enclosing function.
#define JOURNAL_READ(out, expr)                                 \
  do {                                                          \
    auto r_ = (expr);                                           \
    if (!r_) return std::unexpected(r_.error());                \
    out = static_cast<std::remove_cvref_t<decltype(out)>>(*r_); \
  } while (0)

Result<OwnedTier> read_tier(const json& n, const std::string& at, int version) {
  if (!n.is_object()) return fail(EINVAL, "journal: " + at + ": not a JSON object");
  const Reader r{n, at};
  OwnedTier t;
  JOURNAL_READ(t.name, r.text("name"));
  JOURNAL_READ(t.kind, r.text("kind"));
  JOURNAL_READ(t.device, r.text("device"));
  JOURNAL_READ(t.swap_path, r.text("swap_path"));
  JOURNAL_READ(t.created_device, r.flag("created_device"));
  JOURNAL_READ(t.created_file, r.flag("created_file"));
  JOURNAL_READ(t.active, r.flag("active"));
  JOURNAL_READ(t.drained, r.flag("drained"));
  JOURNAL_READ(t.priority, r.integer("priority", -32768, 32767, -1));
  JOURNAL_READ(t.discard, r.flag("discard"));
  JOURNAL_READ(t.algorithm, r.text("algorithm"));
  JOURNAL_READ(t.size, r.bytes("size"));
  JOURNAL_READ(t.mem_limit, r.bytes("mem_limit"));
  JOURNAL_READ(t.exporter_pid, r.integer("exporter_pid", 0, kMaxPid, 0));
  JOURNAL_READ(t.exporter_start, r.bytes("exporter_start"));
  JOURNAL_READ(t.store, r.text("store"));
  if (version >= 2) {
    JOURNAL_READ(t.backend, r.text("backend"));
    JOURNAL_READ(t.connections, r.integer("connections", 0, 1024, 0));
    JOURNAL_READ(t.failed, r.text("failed"));
    JOURNAL_READ(t.spill, r.text("spill"));
    JOURNAL_READ(t.control_socket, r.text("control_socket"));
    JOURNAL_READ(t.evacuated, r.flag("evacuated"));
  }
  return t;
}

}  // namespace

std::string to_json(const Journal& j) {
  // ordered_json keeps the keys in the documented order.
  nlohmann::ordered_json root;
  root["version"] = kJournalVersion;
  root["source"] = j.source;
  root["tiers"] = nlohmann::ordered_json::array();
  for (const auto& t : j.tiers) {
    nlohmann::ordered_json o;
    o["name"] = t.name;
    o["kind"] = t.kind;
    o["device"] = t.device;
    o["swap_path"] = t.swap_path;
    o["created_device"] = t.created_device;
    o["created_file"] = t.created_file;
    o["active"] = t.active;
    o["drained"] = t.drained;
    o["priority"] = t.priority;
    o["discard"] = t.discard;
    o["algorithm"] = t.algorithm;
    o["size"] = t.size;
    o["mem_limit"] = t.mem_limit;
    // Each written when set, independently: a journal with exporter_start
    // but no exporter_pid (invalid) must not turn valid by being written back.
    if (t.exporter_pid) o["exporter_pid"] = t.exporter_pid;
    if (t.exporter_start) o["exporter_start"] = t.exporter_start;
    if (!t.store.empty()) o["store"] = t.store;
    if (!t.backend.empty()) o["backend"] = t.backend;
    if (t.connections) o["connections"] = t.connections;
    if (!t.failed.empty()) o["failed"] = t.failed;
    if (!t.spill.empty()) o["spill"] = t.spill;
    if (!t.control_socket.empty()) o["control_socket"] = t.control_socket;
    if (t.evacuated) o["evacuated"] = true;
    root["tiers"].push_back(std::move(o));
  }
  root["values"] = nlohmann::ordered_json::array();
  for (const auto& v : j.values)
    root["values"].push_back({{"path", v.path}, {"original", v.original}, {"current", v.current}});
  if (j.pending) {
    const Step& s = *j.pending;
    nlohmann::ordered_json o;
    o["kind"] = s.kind;
    o["op"] = s.op;
    o["tier"] = s.tier;
    o["path"] = s.path;
    o["value"] = s.value;
    o["previous"] = s.previous ? nlohmann::ordered_json(*s.previous) : nlohmann::ordered_json(nullptr);
    o["priority"] = s.priority;
    o["discard"] = s.discard;
    o["size"] = s.size;
    o["previous_size"] = s.previous_size;
    root["pending"] = std::move(o);
  }
  // Invalid UTF-8 (a hostile name that got this far) is replaced, not thrown.
  return root.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
}

Result<Journal> parse_journal(const std::string& text) {
  const json root = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded()) return fail(EINVAL, "journal: not valid JSON");
  if (!root.is_object()) return fail(EINVAL, "journal: not a JSON object");
  try {
    const Reader r{root, ""};
    Journal j;
    std::int64_t version = 0;
    JOURNAL_READ(version, r.integer("version", 0, 1 << 20, 0));
    if (version != 1 && version != kJournalVersion)
      return fail(EINVAL, "journal: version " + std::to_string(version) +
                              " is not one this tierswapd reads (1, " + std::to_string(kJournalVersion) +
                              ")");
    j.version = static_cast<int>(version);
    JOURNAL_READ(j.source, r.text("source"));
    for (const char* list : {"tiers", "values"}) {
      const auto it = root.find(list);
      if (it != root.end() && !it->is_array() && !it->is_null())
        return fail(EINVAL, std::string("journal: ") + list + ": not a JSON array");
    }
    if (const auto it = root.find("tiers"); it != root.end() && it->is_array())
      for (std::size_t i = 0; i < it->size(); ++i) {
        auto t = read_tier((*it)[i], "tiers[" + std::to_string(i) + "]", j.version);
        if (!t) return std::unexpected(t.error());
        j.tiers.push_back(std::move(*t));
      }
    if (const auto it = root.find("values"); it != root.end() && it->is_array())
      for (std::size_t i = 0; i < it->size(); ++i) {
        const json& n = (*it)[i];
        const std::string at = "values[" + std::to_string(i) + "]";
        if (!n.is_object()) return fail(EINVAL, "journal: " + at + ": not a JSON object");
        const Reader vr{n, at};
        ValueRecord v;
        JOURNAL_READ(v.path, vr.text("path"));
        JOURNAL_READ(v.original, vr.text("original"));
        JOURNAL_READ(v.current, vr.text("current"));
        j.values.push_back(std::move(v));
      }
    if (const auto it = root.find("pending"); it != root.end() && !it->is_null()) {
      if (!it->is_object()) return fail(EINVAL, "journal: pending: not a JSON object");
      const Reader pr{*it, "pending"};
      Step s;
      JOURNAL_READ(s.kind, pr.text("kind"));
      JOURNAL_READ(s.op, pr.text("op"));
      JOURNAL_READ(s.tier, pr.text("tier"));
      JOURNAL_READ(s.path, pr.text("path"));
      JOURNAL_READ(s.value, pr.text("value"));
      if (const auto prev = it->find("previous"); prev != it->end() && !prev->is_null()) {
        if (!prev->is_string()) return fail(EINVAL, "journal: pending.previous: is not a string");
        s.previous = prev->get<std::string>();
      }
      JOURNAL_READ(s.priority, pr.integer("priority", -32768, 32767, -1));
      JOURNAL_READ(s.discard, pr.flag("discard"));
      JOURNAL_READ(s.size, pr.bytes("size"));
      JOURNAL_READ(s.previous_size, pr.bytes("previous_size"));
      j.pending = std::move(s);
    }
    return j;
  } catch (const json::exception& e) {
    return fail(EINVAL, std::string("journal: ") + e.what());
  }
}

#undef JOURNAL_READ

namespace {

struct Fd {
  int fd = -1;
  Fd() = default;
  explicit Fd(int f) : fd(f) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

bool control_char(const std::string& s) {
  return std::any_of(s.begin(), s.end(), [](unsigned char c) { return c < 0x20 || c == 0x7f; });
}

std::string quoted(const std::string& s) {
  return "\"" + s + "\"";
}

// "zram12" with prefix "zram": true. The number has no sign and no leading
// zero (the kernel's names have none).
bool numbered(const std::string& s, std::string_view prefix) {
  if (!s.starts_with(prefix) || s.size() == prefix.size() || s.size() > prefix.size() + 6) return false;
  const std::string digits = s.substr(prefix.size());
  if (digits.size() > 1 && digits[0] == '0') return false;
  return std::all_of(digits.begin(), digits.end(), [](unsigned char c) { return std::isdigit(c); });
}

// Absolute, without ".", ".." or empty components, no control characters.
std::optional<std::string> path_problem(const std::string& p) {
  if (p.empty() || p[0] != '/') return "is not an absolute path";
  if (std::any_of(p.begin(), p.end(), [](unsigned char c) { return c < 0x20 || c == 0x7f; }))
    return "holds a control character";
  if (p.size() > 1 && p.back() == '/') return "ends in \"/\"";
  for (size_t i = 1; i <= p.size();) {
    const size_t end = std::min(p.find('/', i), p.size());
    const std::string part = p.substr(i, end - i);
    if (part.empty() && p.size() > 1) return "has an empty component (\"//\")";
    if (part == "." || part == "..") return "has a \"" + part + "\" component";
    i = end + 1;
  }
  return std::nullopt;
}

bool under(const std::string& p, std::string_view dir) {
  return p.starts_with(std::string(dir) + "/");
}

std::string utc_stamp() {
  const std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

// /run/tierswap under the root, opened without following a symlink (the
// directory itself; the root above it is the caller's). create: make it
// (0700) when missing.
Result<Fd> open_state_dir(const HostFs& fs, bool create) {
  const auto dir = fs.resolve(paths::run_state_dir);
  if (create) {
    std::error_code ec;
    std::filesystem::create_directories(dir.parent_path(), ec);
    if (ec) return fail(ec.value(), dir.parent_path().string());
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
      return fail(errno, std::string(paths::run_state_dir));
  }
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    const int e = errno;
    return fail(e, std::string(paths::run_state_dir) +
                       (e == ELOOP || e == ENOTDIR ? ": not a directory (a symlink?): refusing it" : ""));
  }
  return Result<Fd>(std::in_place, fd);
}

constexpr const char* kStateName = "state.json";
constexpr const char* kTmpName = "state.json.tmp";

}  // namespace

Result<void> validate_journal(const Journal& j) {
  const auto bad = [](const std::string& where, const std::string& value,
                      const std::string& rule) -> Result<void> {
    return fail(EINVAL, where + ": " + quoted(value) + " " + rule);
  };
  for (size_t i = 0; i < j.values.size(); ++i) {
    const auto& p = j.values[i].path;
    // Each plug-in claims exactly the values it writes (TierKind::owns_value).
    if (!kinds::owner_of_value(p))
      return bad("values[" + std::to_string(i) + "].path", p,
                 "is not a value tierswap changes (a managed vm sysctl under /proc/sys/vm, a zswap "
                 "parameter under " +
                     std::string(paths::zswap_parameters) + " or a cgroup memory limit)");
  }
  for (size_t i = 0; i < j.tiers.size(); ++i) {
    const auto& t = j.tiers[i];
    const std::string at = "tiers[" + std::to_string(i) + "]";
    if (t.name.empty()) return bad(at + ".name", t.name, "is empty");
    if (control_char(t.name)) return bad(at + ".name", t.name, "holds a control character");
    if (t.kind != "zram" && t.kind != "file" && t.kind != "partition" && t.kind != "vram")
      return bad(at + ".kind", t.kind, "is not a tier kind tierswap sets up (zram, file, partition, vram)");
    if (t.kind == "zram" && !numbered(t.device, "zram"))
      return bad(at + ".device", t.device, "is not a zram device name (zram<N>)");
    if (t.kind == "vram" && !numbered(t.device, "nbd"))
      return bad(at + ".device", t.device, "is not an nbd device name (nbd<N>)");
    if (t.kind != "zram" && t.kind != "vram" && !t.device.empty())
      return bad(at + ".device", t.device, "must be empty for a " + t.kind + " tier");
    if (auto why = path_problem(t.swap_path)) return bad(at + ".swap_path", t.swap_path, *why);
    if (!t.device.empty() && t.swap_path != paths::dev_node(t.device))
      return bad(at + ".swap_path", t.swap_path, "is not " + paths::dev_node(t.device) + " (its device)");
    if (t.kind == "partition" && !under(t.swap_path, "/dev"))
      return bad(at + ".swap_path", t.swap_path, "is not under /dev (a partition's device node)");
    if (under(t.swap_path, paths::proc_dir) ||
        under(t.swap_path, std::filesystem::path(paths::sys_block).parent_path().string()))
      return bad(at + ".swap_path", t.swap_path, "is under /proc or /sys: not a swap area");
    if (t.created_device && t.kind != "zram")
      return bad(at + ".created_device", "true", "is only for a zram tier, not " + t.kind);
    if (t.created_file && t.kind != "file")
      return bad(at + ".created_file", "true", "is only for a file tier, not " + t.kind);
    if (t.exporter_pid < 0 || t.exporter_pid > kMaxPid)
      return bad(at + ".exporter_pid", std::to_string(t.exporter_pid), "is not a pid");
    if (t.exporter_pid && t.kind != "vram")
      return bad(at + ".exporter_pid", std::to_string(t.exporter_pid),
                 "is only for a vram tier, not " + t.kind);
    if (t.exporter_start && !t.exporter_pid)
      return bad(at + ".exporter_start", std::to_string(t.exporter_start), "is set without an exporter_pid");
    if (!t.backend.empty() && (t.kind != "vram" || t.backend != "tierswap-" + t.name))
      return bad(at + ".backend", t.backend,
                 t.kind != "vram"
                     ? "is only for a vram tier, not " + t.kind
                     : "is not the identifier tierswap gives this tier (tierswap-" + t.name + ")");
    if (t.connections < 0 || t.connections > 1024 || (t.connections && t.kind != "vram"))
      return bad(at + ".connections", std::to_string(t.connections),
                 "is not a vram tier's number of connections (0 to 1024)");
    if (control_char(t.failed) || t.failed.size() > 4096)
      return bad(at + ".failed", t.failed.substr(0, 64), "holds a control character or is over 4096 bytes");
    if (!t.spill.empty() &&
        (t.kind != "vram" || control_char(t.spill) || t.spill.size() > 4096 ||
         !(t.spill == "lz4" || (t.spill.starts_with("file:/") && t.spill.size() > 6))))
      return bad(at + ".spill", t.spill.substr(0, 64),
                 t.kind != "vram" ? "is only for a vram tier, not " + t.kind
                                  : "is not a spill store (lz4, file:/PATH)");
    // The socket the daemon connects to: only the one tierswap gives this
    // tier, never a path the journal chooses.
    if (!t.control_socket.empty() &&
        (t.kind != "vram" || t.control_socket != paths::exporter_control_socket(t.name)))
      return bad(at + ".control_socket", t.control_socket.substr(0, 128),
                 t.kind != "vram" ? "is only for a vram tier, not " + t.kind
                                  : "is not the control socket tierswap gives this tier (" +
                                        paths::exporter_control_socket(t.name) + ")");
    if (t.evacuated && (t.kind != "vram" || t.spill.empty()))
      return bad(at + ".evacuated", "true", "is only for a vram tier with a spill store");
    if (!t.store.empty() && (t.kind != "vram" || (t.store != "cuda" && t.store != "host")))
      return bad(at + ".store", t.store,
                 t.kind != "vram" ? "is only for a vram tier, not " + t.kind : "is not a store (cuda, host)");
  }
  // The pending step only ever reaches the journal's lists through its
  // plug-in's recover() and record(), and what that adds is validated again
  // (recover_pending); here only that a plug-in owns it.
  if (j.pending) {
    if (!kinds::named(j.pending->kind))
      return bad("pending.kind", j.pending->kind, "is not a plug-in's name");
    if (j.pending->op.empty() || control_char(j.pending->op))
      return bad("pending.op", j.pending->op, "is empty or holds a control character");
  }
  return {};
}

Result<Journal> load_journal(const HostFs& fs) {
  const auto file = fs.resolve(paths::run_state_file);
  const std::string name(paths::run_state_file);
  Fd f(::open(file.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (f.fd < 0) {
    if (errno == ENOENT) return Journal{};
    if (errno == ELOOP) return fail(EINVAL, name + ": is a symlink: tierswapd never writes one");
    return fail(errno, name);
  }
  struct stat st {};
  if (::fstat(f.fd, &st) != 0) return fail(errno, name);
  if (!S_ISREG(st.st_mode)) return fail(EINVAL, name + ": not a regular file");
  std::string text;
  char buf[8192];
  for (;;) {
    const ssize_t n = ::read(f.fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail(errno, name);
    }
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > (16u << 20)) return fail(EINVAL, name + ": larger than 16 MiB: not a journal");
  }
  auto j = parse_journal(text);
  if (!j) return wrap(j.error(), name);
  if (auto v = validate_journal(*j); !v) return wrap(v.error(), name);
  return j;
}

Result<void> save_journal(const HostFs& fs, const Journal& j) {
  const std::string name(paths::run_state_file);
  if (j.empty()) {
    auto d = open_state_dir(fs, false);
    if (!d) return d.error().code == ENOENT ? Result<void>{} : Result<void>(std::unexpected(d.error()));
    if (::unlinkat(d->fd, kStateName, 0) != 0 && errno != ENOENT) return fail(errno, name);
    ::unlinkat(d->fd, kTmpName, 0);
    ::rmdir(fs.resolve(paths::run_state_dir).c_str());  // ours; left alone when something else is in it
    return {};
  }
  auto d = open_state_dir(fs, true);
  if (!d) return std::unexpected(d.error());
  // O_EXCL: a stale temp file (a crash mid-save) or anything planted at its
  // name is unlinked (the link itself) and the create retried, never opened.
  int fd = -1;
  for (int attempt = 0; attempt < 2 && fd < 0; ++attempt) {
    fd = ::openat(d->fd, kTmpName, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0 && errno == EEXIST && attempt == 0 && ::unlinkat(d->fd, kTmpName, 0) != 0)
      return fail(errno, name + ".tmp: removing a stale temporary file");
    if (fd < 0 && errno != EEXIST) break;
  }
  if (fd < 0) return fail(errno, name + ".tmp");
  const std::string text = to_json(j);
  const bool ok =
      ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
  const int e = errno;
  ::close(fd);
  if (!ok) {
    ::unlinkat(d->fd, kTmpName, 0);
    return fail(e ? e : EIO, name + ".tmp");
  }
  if (::renameat(d->fd, kTmpName, d->fd, kStateName) != 0) return fail(errno, name);
  ::fsync(d->fd);
  return {};
}

Result<std::string> set_aside_journal(const HostFs& fs) {
  auto d = open_state_dir(fs, false);
  if (!d) return std::unexpected(d.error());
  const std::string base = std::string(kStateName) + ".invalid-" + utc_stamp();
  for (int n = 0; n < 100; ++n) {
    const std::string to = n == 0 ? base : base + "-" + std::to_string(n);
    // renameat2(RENAME_NOREPLACE) renames the link itself, never its target,
    // and never replaces an earlier invalid journal.
    if (::renameat2(d->fd, kStateName, d->fd, to.c_str(), RENAME_NOREPLACE) == 0) {
      ::fsync(d->fd);
      return std::string(paths::run_state_dir) + "/" + to;
    }
    if (errno != EEXIST)
      return fail(errno, std::string(paths::run_state_file) + ": setting it aside as " + to);
  }
  return fail(EEXIST, std::string(paths::run_state_file) + ": too many invalid journals set aside already");
}

namespace {

std::uint64_t round_to_pages(std::uint64_t b) {
  const std::uint64_t p = swap::system_page_size();
  return (b + p - 1) / p * p;
}

bool ours(const HostFs& fs, const std::string& path) {
  auto first = swap::probe_first_page(fs.resolve(path).string(), swap::system_page_size());
  return first && *first == swap::FirstPage::ours;
}

}  // namespace

Journal rebuild_from_kernel(const Observed& o, const HostFs& fs, const std::vector<config::Tier>& configured,
                            std::vector<std::string>& log) {
  Journal j;
  std::set<std::string> taken;  // configured tier names already given out
  const auto zram_name = [&](const zram::Device& d,
                             const std::optional<swap::SwapArea>& area) -> const config::Tier* {
    for (const auto& t : configured) {
      if (t.kind != config::TierKind::zram || taken.contains(t.name)) continue;
      if (round_to_pages(t.size_bytes) != d.disksize) continue;
      if (!t.algorithms.empty() &&
          std::find(t.algorithms.begin(), t.algorithms.end(), d.algorithm) == t.algorithms.end())
        continue;
      if (area && t.priority >= 0 && area->priority != t.priority) continue;
      return &t;
    }
    return nullptr;
  };
  for (const auto& [name, dev] : o.zram_devices) {
    if (!numbered(name, "zram") || dev.disksize == 0) continue;
    const std::string node = paths::dev_node(name);
    if (!ours(fs, node)) continue;
    const auto area = swap::find_area(o.swaps, node);
    OwnedTier t;
    t.kind = "zram";
    t.device = name;
    t.swap_path = node;
    t.created_device = true;
    t.active = area.has_value();
    t.algorithm = dev.algorithm;
    t.size = dev.disksize;
    if (area) t.priority = area->priority;
    if (auto text = fs.read(paths::block_attr(name, "mm_stat")))
      if (auto mm = policy::parse_zram_mm_stat(*text)) t.mem_limit = mm->mem_limit;
    const config::Tier* c = zram_name(dev, area);
    if (c) {
      taken.insert(c->name);
      t.name = c->name;
      t.discard = c->discard;
      if (!area) {
        t.drained = true;
        t.priority = c->priority;
      }
    } else {
      t.name = "recovered-" + name;
    }
    log.push_back("tier \"" + t.name + "\": " + node + " carries tierswap's swap label" +
                  (area ? " and is active" : " and is set up but not active") + ": adopting it as ours" +
                  (c ? " (it matches the configured tier's size, algorithm and priority)"
                     : " (no configured tier matches it: the next apply removes it)"));
    j.tiers.push_back(std::move(t));
  }
  for (const auto& a : o.swaps) {
    if (a.type != "file") {
      if (!under(a.path, "/dev") || numbered(a.path.substr(5), "zram")) continue;
      if (ours(fs, a.path))
        log.push_back(a.path +
                      " carries tierswap's swap label but is not a zram device or a file: left alone");
      continue;
    }
    if (path_problem(a.path) || !ours(fs, a.path)) continue;
    OwnedTier t;
    t.kind = "file";
    t.swap_path = a.path;
    t.created_file = true;
    t.active = true;
    t.priority = a.priority;
    std::error_code ec;
    t.size = std::filesystem::file_size(fs.resolve(a.path), ec);
    const config::Tier* c = nullptr;
    for (const auto& ct : configured)
      if (ct.kind == config::TierKind::file && ct.path == a.path && !taken.contains(ct.name)) c = &ct;
    if (c) {
      taken.insert(c->name);
      t.name = c->name;
      t.discard = c->discard;
    } else {
      t.name = "recovered-" + std::filesystem::path(a.path).filename().string();
    }
    log.push_back("tier \"" + t.name + "\": swap file " + a.path +
                  " carries tierswap's swap label and is active: adopting it as ours" +
                  (c ? "" : " (no configured tier has this path: the next apply removes it)"));
    j.tiers.push_back(std::move(t));
  }
  log.push_back(
      "sysctl and zswap values that tierswap changed cannot be recovered without the journal (their "
      "originals were only there): they stay as they are now");
  return j;
}

std::vector<std::string> recover_pending(Journal& j, const Observed& o, const HostFs& fs) {
  std::vector<std::string> log;
  if (!j.pending) return log;
  const Step pending = std::move(*j.pending);
  j.pending.reset();
  const TierKind* k = kinds::named(pending.kind);
  if (!k) return log;  // validate_journal refused it already
  const std::string what = (pending.tier.empty() ? "" : "[" + pending.tier + "] ") + k->describe(pending);
  std::vector<std::string> why;
  const auto done = k->recover(pending, fs, o.swaps, why);
  for (const auto& line : why) log.push_back("interrupted step " + what + ": " + line);
  if (!done) {
    log.push_back("interrupted step " + what + ": nothing of it to record");
    return log;
  }
  // What the recovered step adds must pass the same checks as the rest.
  const auto tiers = j.tiers;
  const auto values = j.values;
  Ownership own{j.tiers, j.values};
  k->record(own, *done);
  if (auto v = validate_journal(j); !v) {
    j.tiers = tiers;
    j.values = values;
    log.push_back("interrupted step " + what + ": not recorded: " + v.error().message);
    return log;
  }
  log.push_back("interrupted step " + what + ": recorded as done (" + k->describe(*done) + ")");
  return log;
}

std::vector<std::string> reconcile(Journal& j, const Observed& o, const HostFs& fs) {
  std::vector<std::string> log;
  std::vector<OwnedTier> kept;
  for (auto& t : j.tiers) {
    // The kind checks that what the journal names is still what it says
    // (a vram tier's exporter and device) before anything below trusts it.
    if (const TierKind* k = kinds::for_tier(t.kind)) {
      auto r = k->readopt(t, fs);
      log.insert(log.end(), r.log.begin(), r.log.end());
      if (r.forget) continue;
    }
    if (t.created_device && !o.zram_devices.contains(t.device)) {
      log.push_back("tier \"" + t.name + "\": " + t.device + " is gone: forgetting it");
      continue;
    }
    if (t.created_file && !fs.exists(t.swap_path)) {
      log.push_back("tier \"" + t.name + "\": " + t.swap_path + " is gone: forgetting it");
      continue;
    }
    t.swap_path = swap::resolved_path(fs, t.swap_path);  // as /proc/swaps prints it
    const bool active = swap::find_area(o.swaps, t.swap_path).has_value();
    if (t.active && !active)
      log.push_back("tier \"" + t.name + "\": " + t.swap_path + " is no longer active");
    t.active = t.active && active;
    if (t.drained && active) {
      log.push_back("tier \"" + t.name + "\": " + t.swap_path +
                    " was drained but is active again: adopting it as active");
      t.drained = false;
      t.active = true;
    }
    // nothing left of ours (a vram tier's device and exporter stay ours until detached)
    if (!t.active && !t.drained && !t.created_device && !t.created_file && !t.exporter_pid) continue;
    if (t.created_device || t.created_file || t.active)
      log.push_back("tier \"" + t.name + "\": adopting " + t.swap_path);
    kept.push_back(t);
  }
  j.tiers = std::move(kept);
  return log;
}

}  // namespace tierswap
