#include "backends/cgroup/cgroup_kind.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <sstream>

#include "backends/hostfs/paths.hpp"
#include "backends/hostfs/value_step.hpp"
#include "common/cgroup_name.hpp"
#include "common/refusal.hpp"

namespace tierswap::cgroup {

namespace {

const std::string kRoot(paths::sys_fs_cgroup);
const std::string kControllers = kRoot + "/cgroup.controllers";

bool has_word(const std::string& list, std::string_view word) {
  std::istringstream in(list);
  std::string w;
  while (in >> w)
    if (w == word) return true;
  return false;
}

struct Observed final : KindState {
  bool v2 = false;               // /sys/fs/cgroup/cgroup.controllers exists
  std::string root_controllers;  // its content
};

// What reaching a cgroup found.
enum class Reach { ok, missing, refused };

struct Reached {
  Reach how = Reach::ok;
  std::string message;  // missing/refused: why, naming the path
};

// Walks "/sys/fs/cgroup/<rel>" one component at a time with lstat: a
// symbolic link or a non-directory on the way is refused, a missing
// component is reported; the end must be a cgroup (cgroup.controllers).
Reached reach(const HostFs& fs, const std::string& rel) {
  std::string path = kRoot;
  std::size_t start = 0;
  while (start <= rel.size()) {
    const auto end = std::min(rel.find('/', start), rel.size());
    path += "/" + rel.substr(start, end - start);
    start = end + 1;
    struct stat st {};
    if (::lstat(fs.resolve(path).c_str(), &st) != 0) {
      if (errno == ENOENT) return {Reach::missing, path + " does not exist"};
      return {Reach::refused, path + ": " + std::strerror(errno)};
    }
    if (S_ISLNK(st.st_mode))
      return {Reach::refused, path + " is a symbolic link; tierswap does not follow links in /sys/fs/cgroup"};
    if (!S_ISDIR(st.st_mode)) return {Reach::refused, path + " is not a directory"};
  }
  if (!fs.exists(path + "/cgroup.controllers"))
    return {Reach::refused, path + " is not a cgroup v2 directory (it has no cgroup.controllers)"};
  return {};
}

// Why the kernel may lack a limit file although the memory controller is on.
std::string missing_file_reason(const std::string& key) {
  if (key == "memory.zswap.max") return "zswap limits per cgroup need Linux 5.19 or later built with zswap";
  if (key == "memory.swap.max")
    return "swap accounting is off (a kernel without CONFIG_MEMCG_SWAP, or swapaccount=0 on its command "
           "line)";
  return "the memory controller does not offer it";
}

std::string parent_of(const std::string& path) {
  return path.substr(0, path.rfind('/'));
}

class CgroupKind final : public value_step::ValueKind {
 public:
  std::string_view name() const override { return "cgroup"; }

  std::vector<Capability> probe(const HostFs& fs) const override {
    const auto controllers = fs.read_value(kControllers);
    return {{"cgroup2", controllers.has_value(), kControllers},
            {"memory", controllers && has_word(*controllers, "memory"), kControllers}};
  }

  std::unique_ptr<KindState> observe(const HostFs& fs) const override {
    auto o = std::make_unique<Observed>();
    if (auto c = fs.read_value(kControllers)) {
      o->v2 = true;
      o->root_controllers = *c;
    }
    return o;
  }

  // Only what it writes: /sys/fs/cgroup/<a valid cgroup path>/<one of
  // kCgroupKeys>. The journal is checked against this when it loads.
  bool owns_value(std::string_view path) const override {
    if (!path.starts_with(kRoot + "/")) return false;
    const std::string_view rest = path.substr(kRoot.size() + 1);
    const auto slash = rest.rfind('/');
    if (slash == std::string_view::npos) return false;
    const std::string_view file = rest.substr(slash + 1);
    if (std::find(std::begin(kCgroupKeys), std::end(kCgroupKeys), file) == std::end(kCgroupKeys))
      return false;
    return cgroup_relative_path(rest.substr(0, slash)).has_value();
  }

  void plan_system(const SystemSpec& spec, PlanContext& ctx) const override {
    if (spec.cgroups.empty()) return;
    const auto& obs = ctx.state_as<Observed>();
    if (!obs.v2) {
      ctx.error("cgroups",
                "this host has no cgroup v2 hierarchy at " + kRoot + " (" + kControllers +
                    " does not exist: cgroup v1 or a hybrid layout), and cgroups: sets cgroup v2 files",
                "boot with systemd.unified_cgroup_hierarchy=1 (cgroup v2), or remove cgroups:");
      return;
    }
    for (const auto& [name, limits] : spec.cgroups) plan_cgroup(name, limits, ctx);
  }

  Result<void> execute(Step& s, ExecContext& ctx) const override {
    if (s.op != value_step::op)
      return refusal(ErrorKind::invalid_argument, EINVAL, "cgroup: no step op \"" + s.op + "\"");
    if (!owns_value(s.path))
      return refusal(ErrorKind::invalid_argument, EINVAL,
                     "cgroup: " + s.path + " is not a memory limit of a cgroup below " + kRoot);
    const std::string dir = parent_of(s.path);
    auto r = reach(ctx.fs, dir.substr(kRoot.size() + 1));
    if (r.how == Reach::missing) return {};  // the cgroup is gone: nothing left to limit or restore
    if (r.how == Reach::refused) return refusal(ErrorKind::invalid_config, EPERM, r.message);
    return value_step::execute(ctx.fs, s);
  }

 private:
  void plan_cgroup(const std::string& name, const std::map<std::string, std::string>& limits,
                   PlanContext& ctx) const {
    const std::string key = "cgroups." + name;
    auto rel = cgroup_relative_path(name);
    if (!rel) {
      ctx.error(key, rel.error().message);
      return;
    }
    const std::string dir = kRoot + "/" + *rel;
    auto r = reach(ctx.fs, *rel);
    if (r.how == Reach::missing) {
      ctx.warning(key, "not applied: " + r.message + " (is its unit running?)",
                  "tierswapd applies it on the next reload once the cgroup exists");
      return;
    }
    if (r.how == Reach::refused) {
      ctx.error(key, r.message);
      return;
    }
    const auto controllers = ctx.fs.read_value(dir + "/cgroup.controllers");
    if (!controllers || !has_word(*controllers, "memory")) {
      const std::string subtree = parent_of(dir) + "/cgroup.subtree_control";
      ctx.error(key,
                "the memory controller is not enabled for " + dir + " (" + subtree + " lacks \"memory\"; " +
                    dir + "/cgroup.controllers offers: " +
                    (controllers && !controllers->empty() ? *controllers : std::string("nothing")) + ")",
                "enable it in the parent (echo +memory > " + subtree +
                    "), or under systemd set MemoryAccounting=yes on the unit");
      return;
    }
    for (const auto& [file, want] : limits) {
      const std::string path = dir + "/" + file;
      auto cur = ctx.fs.read_value(path);
      if (!cur) {
        ctx.error(key + "." + file, "this kernel has no " + path + ": " + missing_file_reason(file));
        continue;
      }
      value(ctx, path, want, *cur);
    }
  }
};

}  // namespace

const TierKind& tier_kind() {
  static const CgroupKind k;
  return k;
}

}  // namespace tierswap::cgroup
