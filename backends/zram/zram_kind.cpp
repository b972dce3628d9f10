#include "backends/zram/zram_kind.hpp"

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>

#include "backends/hostfs/paths.hpp"
#include "backends/hostfs/value_step.hpp"
#include "backends/swap/swap_step.hpp"
#include "backends/zram/zram.hpp"

namespace tierswap::zram {

namespace {

constexpr const char* kName = "zram";

struct State final : KindState {
  bool control = false;     // /sys/class/zram-control present
  Algorithms algorithms;    // empty when no device exists to ask
  std::string recomp_path;  // the sysfs file that says recompression is offered
  bool has_recomp = false;
  std::map<std::string, Device> devices;
};

std::string join(const std::vector<std::string>& v, const char* sep = " ") {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : sep) + s;
  return out;
}

// /sys/block/zram1/disksize -> {"zram1", "disksize"}; else empty.
std::pair<std::string, std::string> block_attr_of(const std::string& path) {
  const std::filesystem::path p(path);
  if (p.parent_path().parent_path() == paths::sys_block) return {p.parent_path().filename(), p.filename()};
  return {};
}

class ZramKind final : public TierKind {
 public:
  std::string_view name() const override { return kName; }
  std::vector<std::string_view> tier_kinds() const override { return {kName}; }

  std::vector<Capability> probe(const HostFs& fs) const override {
    const std::string recomp = recomp_attr_path(fs);
    return {{"zram", fs.exists(paths::zram_control), std::string(paths::zram_control)},
            {"recompression", fs.exists(recomp), recomp}};
  }

  std::unique_ptr<KindState> observe(const HostFs& fs) const override {
    auto s = std::make_unique<State>();
    s->control = fs.exists(paths::zram_control);
    s->algorithms = kernel_algorithms(fs);
    s->recomp_path = recomp_attr_path(fs);
    s->has_recomp = fs.exists(s->recomp_path);
    for (const auto& d : list_devices(fs))
      if (auto dev = read_device(fs, d); dev) s->devices[d] = *dev;
    return s;
  }

  void plan_tier(const TierSpec& t, PlanContext& ctx) const override {
    const auto& st = ctx.state_as<State>();
    if (!st.control) {
      ctx.error("kind", "zram is not available on this kernel (no " + std::string(paths::zram_control) + ")");
      return;
    }
    std::string algo;
    const auto& offered = st.algorithms.all;
    if (!t.algorithms.empty()) {
      if (offered.empty()) {
        algo = t.algorithms.front();
        ctx.note("tier \"" + t.name + "\": algorithm " + algo +
                 " (no zram device exists to list this kernel's algorithms; apply will tell)");
      } else {
        for (const auto& a : t.algorithms)
          if (std::find(offered.begin(), offered.end(), a) != offered.end()) {
            algo = a;
            break;
          }
        if (algo.empty()) {
          ctx.error("algorithm",
                    t.algorithms.size() == 1
                        ? "\"" + t.algorithms.front() + "\" is not offered by this kernel"
                        : "none of " + join(t.algorithms, ", ") + " is offered by this kernel",
                    "this kernel offers: " + join(offered));
          return;
        }
        if (t.algorithms.size() > 1)
          ctx.note("tier \"" + t.name + "\": algorithm " + algo + " (first of " + join(t.algorithms, ", ") +
                   " that this kernel offers: " + join(offered) + ")");
      }
    }
    if (t.recompress_algorithm && !st.has_recomp) {
      ctx.error("recompress", "recompression needs " + st.recomp_path + ", which this kernel does not have",
                "remove recompress:, or use a kernel built with CONFIG_ZRAM_MULTI_COMP");
      return;
    }
    if (t.recompress_algorithm && !offered.empty() &&
        std::find(offered.begin(), offered.end(), *t.recompress_algorithm) == offered.end()) {
      ctx.error("recompress", "\"" + *t.recompress_algorithm + "\" is not offered by this kernel",
                "this kernel offers: " + join(offered));
      return;
    }
    const std::uint64_t size = swap_step::page_round_up(t.size_bytes);
    const std::uint64_t mem_limit = t.mem_limit_bytes ? swap_step::page_round_up(*t.mem_limit_bytes) : 0;

    // Already set up as described? Then adopt it and plan nothing.
    for (const auto& o : ctx.owned) {
      if (o.name != t.name || o.kind != kName || ctx.is_kept(o.swap_path)) continue;
      auto dev = st.devices.find(o.device);
      if (dev == st.devices.end()) continue;
      // mem_limit is write-only in sysfs: the journal says what was set.
      const bool same = o.active && swap_step::active_at(ctx.swaps, o.swap_path, t.priority) &&
                        o.discard == t.discard && dev->second.disksize == size &&
                        (algo.empty() || dev->second.algorithm == algo) && o.mem_limit == mem_limit;
      if (same) {
        ctx.keep(o.swap_path);
        return;
      }
      // Drained on request (Demote): set up as described, inactive until
      // Promote. A priority or discard change waits for the Promote.
      const bool same_drained = o.drained && dev->second.disksize == size &&
                                (algo.empty() || dev->second.algorithm == algo) && o.mem_limit == mem_limit;
      if (same_drained) {
        ctx.keep(o.swap_path);
        ctx.note(swap_step::drained_note(t.name));
        return;
      }
    }
    const std::string dev = "{zram:" + t.name + "}";
    const std::string offered_hint = offered.empty() ? "" : "this kernel offers: " + join(offered);
    const auto attr = [&](const char* name, std::string value, std::string hint = {}) {
      ctx.add(Step{.kind = kName,
                   .op = value_step::op,
                   .tier = t.name,
                   .path = paths::block_attr(dev, name),
                   .value = std::move(value),
                   .hint = std::move(hint)});
    };
    ctx.add(Step{.kind = kName, .op = "zram_add", .tier = t.name});
    if (!algo.empty()) attr("comp_algorithm", algo, offered_hint);
    if (t.recompress_algorithm) attr("recomp_algorithm", "algo=" + *t.recompress_algorithm, offered_hint);
    if (mem_limit) attr("mem_limit", std::to_string(mem_limit));
    attr("disksize", std::to_string(size));
    ctx.add(swap_step::header(kName, t.name, paths::dev_node(dev), size));
    ctx.add(swap_step::swapon(kName, t.name, paths::dev_node(dev), kName, t.priority, t.discard));
  }

  TeardownSteps teardown(const OwnedTier& o, const std::vector<swap::SwapArea>& swaps) const override {
    TeardownSteps out;
    if (auto off = swap_step::release(kName, o, swaps)) out.release.push_back(*off);
    if (o.created_device)
      out.destroy.push_back(Step{.kind = kName, .op = "zram_remove", .tier = o.name, .path = o.device});
    return out;
  }

  Result<void> execute(Step& s, ExecContext& ctx) const override {
    if (s.op == "zram_add") {
      auto dev = ctx.kernel.zram_hot_add();
      if (!dev) return std::unexpected(dev.error());
      ctx.bind("{zram:" + s.tier + "}", *dev);
      s.value = *dev;
      return {};
    }
    if (s.op == "zram_remove") {
      if (auto r = reset(ctx.fs, s.path); !r) return r;
      // Halfway: the device is reset (empty, its memory freed) but stays.
      // The step fails, so the journal keeps naming the device, and the
      // next stop or start resets (harmless twice) and removes it again.
      if (auto r = ctx.kernel.zram_hot_remove(s.path); !r) {
        Error e = r.error();
        e.message += "; " + s.path + " is reset (empty, its memory freed) but not removed: it stays, and " +
                     "tierswapd removes it at its next stop or start";
        return std::unexpected(e);
      }
      return {};
    }
    if (s.op == value_step::op) return value_step::execute(ctx.fs, s);
    return swap_step::execute(s, ctx);
  }

  // A hot_add names its device only once it is done: the devices present
  // before it go into the pending step, so that recover() can tell the new one.
  void prepare(Step& s, const HostFs& fs) const override {
    if (s.op == "zram_add") s.previous = join(list_devices(fs));
  }

  // zram_add: the one device that exists now, did not before the hot_add,
  // and is not set up (disksize 0, not swapped on) is the one it created;
  // with more than one such device (something else hot-added too), none is
  // taken. Attribute writes record nothing: the tier's journalled settings
  // then differ from the config, and the next apply sets it up afresh.
  std::optional<Step> recover(const Step& s, const HostFs& fs, const std::vector<swap::SwapArea>& swaps,
                              std::vector<std::string>& log) const override {
    if (s.op == "zram_add") {
      std::set<std::string> before;
      std::istringstream in(s.previous.value_or(""));
      for (std::string d; in >> d;) before.insert(d);
      std::vector<std::string> fresh;
      for (const auto& d : list_devices(fs)) {
        if (before.contains(d) || swap::find_area(swaps, paths::dev_node(d))) continue;
        if (auto dev = read_device(fs, d); dev && dev->disksize == 0) fresh.push_back(d);
      }
      if (fresh.size() == 1) {
        log.push_back(fresh[0] + " was added since and is not set up: it is the device that hot_add created");
        Step done = s;
        done.value = fresh[0];
        done.previous.reset();
        return done;
      }
      if (fresh.size() > 1)
        log.push_back("more than one zram device was added since and is not set up (" + join(fresh) +
                      "): cannot tell which one hot_add created, leaving them alone");
      return std::nullopt;
    }
    if (swap_step::handles(s)) return swap_step::recover(s, fs, swaps, log);
    return std::nullopt;
  }

  std::optional<Step> undo_of(const Step& s) const override {
    if (s.op == "zram_add") return Step{.kind = kName, .op = "zram_remove", .tier = s.tier, .path = s.value};
    if (s.op == value_step::op) return value_step::undo_of(s);
    return swap_step::undo_of(s);
  }

  bool reversible(const Step& s) const override { return s.op != "zram_remove"; }

  void plan_area(const Step& s, PlannedArea& area) const override {
    if (s.op == "swapon") area.zram = true;
    if (s.op != value_step::op) return;
    const auto number = [](const std::string& v) -> std::uint64_t {
      try {
        return std::stoull(v);
      } catch (...) {
        return 0;
      }
    };
    if (s.path.ends_with("/disksize")) area.size_bytes = number(s.value);
    if (s.path.ends_with("/mem_limit")) area.mem_limit = number(s.value);
  }

  void record(Ownership& own, const Step& s) const override {
    if (s.op == value_step::op) {
      const auto [dev, attr] = block_attr_of(s.path);
      if (dev.empty()) return value_step::record_value(own, s);
      if (auto* t = own.find_device(dev)) {
        if (attr == "comp_algorithm") t->algorithm = s.value;
        if (attr == "disksize") t->size = std::stoull(s.value);
        if (attr == "mem_limit") t->mem_limit = std::stoull(s.value);
      }
      return;
    }
    if (s.op == "zram_add") {
      OwnedTier t;
      t.name = s.tier;
      t.kind = kName;
      t.device = s.value;
      t.swap_path = paths::dev_node(s.value);
      t.created_device = true;
      own.tiers.push_back(t);
      return;
    }
    if (s.op == "zram_remove") {
      std::erase_if(own.tiers, [&](const OwnedTier& t) { return t.device == s.path; });
      return;
    }
    swap_step::record(own, s);
  }

  std::string describe(const Step& s) const override {
    if (s.op == "zram_add") return "zram hot_add -> {zram:" + s.tier + "}";
    if (s.op == "zram_remove") return "zram reset + hot_remove " + s.path;
    if (s.op == value_step::op) return value_step::describe(s);
    return swap_step::describe(s);
  }

  std::string describe_undo(const Step& s) const override {
    if (s.op == "zram_add") return "undo: zram reset + hot_remove {zram:" + s.tier + "}";
    if (s.op == value_step::op) return value_step::describe_undo(s);
    return swap_step::describe_undo(s);
  }

  StepFields fields(const Step& s) const override {
    if (s.op == "zram_add") return {.value = true};
    if (s.op == value_step::op) return value_step::fields();
    return swap_step::fields(s);
  }

  std::optional<TierStats> stats(const OwnedTier& o, const HostFs& fs) const override {
    auto dev = read_device(fs, o.device);
    if (!dev) return std::nullopt;
    return TierStats{.size_bytes = dev->disksize, .active = o.active};
  }
};

}  // namespace

const TierKind& tier_kind() {
  static const ZramKind k;
  return k;
}

}  // namespace tierswap::zram
