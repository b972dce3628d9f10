#include "daemon/journal.hpp"

#include <fcntl.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <filesystem>

#include "common/json_writer.hpp"
#include "backends/hostfs/paths.hpp"
#include "backends/swap/proc_swaps.hpp"
#include "backends/swap/safe_path.hpp"
#include "daemon/observe.hpp"

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

std::string to_json(const Journal& j) {
  JsonWriter w(true);
  w.begin_object();
  w.key("version").value(j.version);
  w.key("source").value(j.source);
  w.key("tiers").begin_array();
  for (const auto& t : j.tiers) {
    w.begin_object();
    w.key("name").value(t.name);
    w.key("kind").value(t.kind);
    w.key("device").value(t.device);
    w.key("swap_path").value(t.swap_path);
    w.key("created_device").value(t.created_device);
    w.key("created_file").value(t.created_file);
    w.key("active").value(t.active);
    w.key("drained").value(t.drained);
    w.key("priority").value(t.priority);
    w.key("discard").value(t.discard);
    w.key("algorithm").value(t.algorithm);
    w.key("size").value(static_cast<unsigned long long>(t.size));
    w.key("mem_limit").value(static_cast<unsigned long long>(t.mem_limit));
    w.end_object();
  }
  w.end_array();
  w.key("values").begin_array();
  for (const auto& v : j.values) {
    w.begin_object();
    w.key("path").value(v.path);
    w.key("original").value(v.original);
    w.key("current").value(v.current);
    w.end_object();
  }
  w.end_array();
  w.end_object();
  return w.str() + "\n";
}

Result<Journal> parse_journal(const std::string& json) {
  try {
    const YAML::Node root = YAML::Load(json);
    if (!root.IsMap()) return fail(EINVAL, "journal: not a JSON object");
    Journal j;
    j.version = root["version"].as<int>(0);
    if (j.version != 1) return fail(EINVAL, "journal: version " + std::to_string(j.version) + " is not 1");
    j.source = root["source"].as<std::string>("");
    for (const auto& n : root["tiers"]) {
      OwnedTier t;
      t.name = n["name"].as<std::string>("");
      t.kind = n["kind"].as<std::string>("");
      t.device = n["device"].as<std::string>("");
      t.swap_path = n["swap_path"].as<std::string>("");
      t.created_device = n["created_device"].as<bool>(false);
      t.created_file = n["created_file"].as<bool>(false);
      t.active = n["active"].as<bool>(false);
      t.drained = n["drained"].as<bool>(false);
      t.priority = n["priority"].as<int>(-1);
      t.discard = n["discard"].as<bool>(false);
      t.algorithm = n["algorithm"].as<std::string>("");
      t.size = n["size"].as<std::uint64_t>(0);
      t.mem_limit = n["mem_limit"].as<std::uint64_t>(0);
      j.tiers.push_back(std::move(t));
    }
    for (const auto& n : root["values"])
      j.values.push_back({n["path"].as<std::string>(""), n["original"].as<std::string>(""),
                          n["current"].as<std::string>("")});
    return j;
  } catch (const YAML::Exception& e) {
    return fail(EINVAL, std::string("journal: ") + e.what());
  }
}

Result<Journal> load_journal(const HostFs& fs) {
  if (!fs.exists(paths::run_state_file)) return Journal{};
  auto text = fs.read(paths::run_state_file);
  if (!text) return std::unexpected(text.error());
  auto j = parse_journal(*text);
  if (!j) return wrap(j.error(), std::string(paths::run_state_file));
  return j;
}

Result<void> save_journal(const HostFs& fs, const Journal& j) {
  namespace fsys = std::filesystem;
  const auto file = fs.resolve(paths::run_state_file);
  const auto dir = fs.resolve(paths::run_state_dir);
  const std::string name(paths::run_state_file);
  if (j.empty()) {
    if (::unlink(file.c_str()) != 0 && errno != ENOENT) return fail(errno, name);
    ::rmdir(dir.c_str());  // ours; left alone when something else is in it
    return {};
  }
  std::error_code ec;
  fsys::create_directories(dir, ec);
  if (ec) return fail(ec.value(), std::string(paths::run_state_dir));
  const auto tmp = file.string() + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return fail(errno, name + ".tmp");
  const std::string text = to_json(j);
  const bool ok =
      ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
  const int e = errno;
  ::close(fd);
  if (!ok) return fail(e ? e : EIO, name + ".tmp");
  if (::rename(tmp.c_str(), file.c_str()) != 0) return fail(errno, name);
  if (const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return {};
}

std::vector<std::string> reconcile(Journal& j, const Observed& o, const HostFs& fs) {
  std::vector<std::string> log;
  std::vector<OwnedTier> kept;
  for (auto& t : j.tiers) {
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
    if (!t.active && !t.drained && !t.created_device && !t.created_file) continue;  // nothing left of ours
    if (t.created_device || t.created_file || t.active)
      log.push_back("tier \"" + t.name + "\": adopting " + t.swap_path);
    kept.push_back(t);
  }
  j.tiers = std::move(kept);
  return log;
}

}  // namespace tierswap
