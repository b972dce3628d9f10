#include "backends/disk/disk_kind.hpp"

#include "backends/disk/disk.hpp"
#include "backends/hostfs/paths.hpp"
#include "backends/swap/swap_header.hpp"
#include "backends/swap/swap_step.hpp"

namespace tierswap::disk {

namespace {

constexpr const char* kName = "disk";

struct State final : KindState {
  std::vector<Mount> mounts;
};

std::string bytes(std::uint64_t b) {
  return std::to_string(b) + " bytes";
}

class DiskKind final : public TierKind {
 public:
  std::string_view name() const override { return kName; }
  std::vector<std::string_view> tier_kinds() const override { return {"file", "partition"}; }

  std::vector<Capability> probe(const HostFs& fs) const override {
    // Swap on files and partitions is always built in; what can vary is
    // whether the mount table can be read (used to refuse mounted partitions).
    return {{"mount table", fs.exists(paths::proc_mounts), std::string(paths::proc_mounts)}};
  }

  std::unique_ptr<KindState> observe(const HostFs& fs) const override {
    auto s = std::make_unique<State>();
    if (auto m = fs.read(paths::proc_mounts); m) s->mounts = parse_mounts(*m);
    return s;
  }

  void plan_tier(const TierSpec& t, PlanContext& ctx) const override {
    if (t.kind == "file")
      file_tier(t, ctx);
    else
      partition_tier(t, ctx);
  }

  TeardownSteps teardown(const OwnedTier& o, const std::vector<swap::SwapArea>& swaps) const override {
    TeardownSteps out;
    if (auto off = swap_step::release(kName, o, swaps)) out.release.push_back(*off);
    if (o.created_file)
      out.destroy.push_back(Step{.kind = kName, .op = "remove_file", .tier = o.name, .path = o.swap_path});
    return out;
  }

  Result<void> execute(Step& s, ExecContext& ctx) const override {
    if (s.op == "make_file") return create_swap_file(ctx.fs, s.path, s.size);
    if (s.op == "resize_file") return resize_swap_file(ctx.fs, s.path, s.size);
    if (s.op == "remove_file") return remove_swap_file(ctx.fs, s.path);
    return swap_step::execute(s, ctx);
  }

  // make_file: a file at the path that carries tierswap's swap label is the
  // one it created (the create is O_EXCL: no file was there before, and the
  // header is written before the create returns). A resize or a removal
  // records nothing: the journalled tier stays, and the next apply or stop
  // acts on the file as it finds it.
  std::optional<Step> recover(const Step& s, const HostFs& fs, const std::vector<swap::SwapArea>& swaps,
                              std::vector<std::string>& log) const override {
    if (s.op == "make_file") {
      if (!fs.exists(s.path)) return std::nullopt;
      const auto first = swap::probe_first_page(fs.resolve(s.path).string(), swap::system_page_size());
      if (!first || *first != swap::FirstPage::ours) {
        log.push_back(s.path + " exists but does not carry tierswap's swap label: leaving it alone");
        return std::nullopt;
      }
      log.push_back(s.path + " exists with tierswap's swap label");
      return s;
    }
    if (swap_step::handles(s)) return swap_step::recover(s, fs, swaps, log);
    return std::nullopt;
  }

  std::optional<Step> undo_of(const Step& s) const override {
    if (s.op == "make_file") return Step{.kind = kName, .op = "remove_file", .tier = s.tier, .path = s.path};
    if (s.op == "resize_file")
      return Step{.kind = kName,
                  .op = "resize_file",
                  .tier = s.tier,
                  .path = s.path,
                  .size = s.previous_size,
                  .previous_size = s.size};
    if (s.op == "remove_file") return std::nullopt;
    return swap_step::undo_of(s);
  }

  bool reversible(const Step& s) const override { return s.op != "remove_file"; }

  void plan_area(const Step& s, PlannedArea& area) const override {
    if (s.op == "make_file" || s.op == "resize_file") area.size_bytes = s.size;
  }

  void record(Ownership& own, const Step& s) const override {
    if (s.op == "make_file") {
      OwnedTier t;
      t.name = s.tier;
      t.kind = "file";
      t.swap_path = s.path;
      t.created_file = true;
      t.size = s.size;
      own.tiers.push_back(t);
      return;
    }
    if (s.op == "resize_file") {
      if (auto* t = own.find_swap(s.path)) t->size = s.size;
      return;
    }
    if (s.op == "remove_file") {
      std::erase_if(own.tiers, [&](const OwnedTier& t) { return t.swap_path == s.path && t.created_file; });
      return;
    }
    swap_step::record(own, s);
  }

  std::string describe(const Step& s) const override {
    if (s.op == "make_file") return "create swap file " + s.path + " (" + bytes(s.size) + ", mode 0600)";
    if (s.op == "resize_file")
      return "resize swap file " + s.path + " from " + bytes(s.previous_size) + " to " + bytes(s.size);
    if (s.op == "remove_file") return "remove swap file " + s.path;
    return swap_step::describe(s);
  }

  std::string describe_undo(const Step& s) const override {
    if (s.op == "make_file") return "undo: remove the file";
    if (s.op == "resize_file") return "undo: resize back to " + bytes(s.previous_size);
    return swap_step::describe_undo(s);
  }

  StepFields fields(const Step& s) const override { return swap_step::fields(s); }

 private:
  void file_tier(const TierSpec& written, PlanContext& ctx) const {
    const auto probe = probe_file(ctx.fs, written.path);
    if (!probe.problem.empty()) {
      ctx.error("path", probe.problem);
      return;
    }
    TierSpec t = written;
    t.path = probe.path;  // links resolved, as /proc/swaps prints it
    const std::uint64_t size = swap_step::page_round_up(t.size_bytes);
    const OwnedTier* owned = nullptr;
    for (const auto& o : ctx.owned)
      if (o.swap_path == t.path && !ctx.is_kept(o.swap_path)) owned = &o;
    const bool ours = owned && owned->created_file;

    if (probe.exists && !ours) {
      const bool swapfile = probe.regular && (probe.first == swap::FirstPage::foreign_swap ||
                                              probe.first == swap::FirstPage::ours);
      if (!swapfile) {
        ctx.error("path", t.path + " exists and is not a swap file: tierswap never overwrites it",
                  "remove it yourself or choose another path");
        return;
      }
      if (probe.has_holes) {
        ctx.error("path", t.path + " has holes (a sparse file): swapon refuses it",
                  "remove it; tierswap creates it with fallocate");
        return;
      }
      if (probe.size != size)
        ctx.warning("size", t.path + " is an existing swap file of " + std::to_string(probe.size) +
                                " bytes, not made by tierswap: used as it is, not resized");
      swap_existing(t, ctx, t.path, "file", owned, probe.size);
      return;
    }
    if (!probe.exists) {
      if (size < swap::kMinSwapPages * swap::system_page_size()) {
        ctx.error("size", "a swap file needs at least " + std::to_string(swap::kMinSwapPages) + " pages");
        return;
      }
      if (size > probe.free_bytes) {
        ctx.error("size",
                  std::to_string(size) + " bytes do not fit in the free space of " + probe.dir + " (" +
                      std::to_string(probe.free_bytes) + " bytes free)",
                  "choose a smaller size or another file system");
        return;
      }
      if (owned) ctx.keep(owned->swap_path);  // a stale record: the file is gone
      if (!probe.missing_dirs.empty()) {
        std::string dirs;
        for (const auto& d : probe.missing_dirs) dirs += (dirs.empty() ? "" : ", ") + d;
        ctx.note("tier \"" + t.name +
                 "\": " + (probe.missing_dirs.size() == 1 ? "directory " : "directories ") + dirs +
                 " will be created (owner root, mode 0700)");
      }
      ctx.add(Step{.kind = kName, .op = "make_file", .tier = t.name, .path = t.path, .size = size});
      ctx.add(swap_step::swapon(kName, t.name, t.path, "file", t.priority, t.discard));
      return;
    }
    // Ours: keep, re-prioritise or resize in place.
    ctx.keep(owned->swap_path);
    if (owned->drained && owned->size == size && probe.size == size && !swap::find_area(ctx.swaps, t.path)) {
      ctx.note(swap_step::drained_note(t.name));
      return;
    }
    const bool active = owned->active && swap::find_area(ctx.swaps, t.path).has_value();
    if (owned->size == size && probe.size == size && active &&
        swap_step::active_at(ctx.swaps, t.path, t.priority) && owned->discard == t.discard)
      return;
    if (size > probe.size && size - probe.size > probe.free_bytes) {
      ctx.error("size", "growing " + t.path + " to " + std::to_string(size) + " bytes needs " +
                            std::to_string(size - probe.size) + " bytes; " + probe.dir + " has " +
                            std::to_string(probe.free_bytes) + " free");
      return;
    }
    if (active) ctx.add(swap_step::swapoff(kName, t.name, t.path, "file", owned->priority, owned->discard));
    if (probe.size != size)
      ctx.add(Step{.kind = kName,
                   .op = "resize_file",
                   .tier = t.name,
                   .path = t.path,
                   .size = size,
                   .previous_size = probe.size});
    ctx.add(swap_step::swapon(kName, t.name, t.path, "file", t.priority, t.discard));
  }

  void partition_tier(const TierSpec& t, PlanContext& ctx) const {
    const auto& st = ctx.state_as<State>();
    auto dev = resolve_partition(ctx.fs, t.device);
    if (!dev) {
      ctx.error("device", dev.error().message, "check `ls -l /dev/disk/by-uuid /dev/disk/by-label`");
      return;
    }
    if (!ctx.fs.exists(*dev)) {
      ctx.error("device", *dev + " does not exist");
      return;
    }
    for (const auto& m : st.mounts)
      if (m.source == *dev) {
        ctx.error("device", *dev + " is mounted on " + m.target + ": refusing to use it as swap",
                  "unmount it and remove it from /etc/fstab first, if it holds nothing you need");
        return;
      }
    const OwnedTier* owned = nullptr;
    for (const auto& o : ctx.owned)
      if (o.swap_path == *dev && !ctx.is_kept(o.swap_path)) owned = &o;
    if (!swap::find_area(ctx.swaps, *dev)) {
      auto first = swap::probe_first_page(ctx.fs.resolve(*dev).string(), swap::system_page_size());
      if (!first || (*first != swap::FirstPage::foreign_swap && *first != swap::FirstPage::ours)) {
        ctx.error(
            "device",
            *dev +
                (first ? " holds " + std::string(swap::to_string(*first)) : ": " + first.error().describe()) +
                ": tierswap does not format partitions",
            "run mkswap " + *dev + " yourself if it holds nothing you need");
        return;
      }
    }
    swap_existing(t, ctx, *dev, "partition", owned, 0);
  }

  // A swap area that exists already (partition, or a swap file tierswap did
  // not make): swapon it, re-prioritise it, or leave it alone.
  void swap_existing(const TierSpec& t, PlanContext& ctx, const std::string& path, const char* kind,
                     const OwnedTier* owned, std::uint64_t size) const {
    const auto area = swap::find_area(ctx.swaps, path);
    if (owned) ctx.keep(owned->swap_path);
    if (owned && owned->drained && !area) {
      ctx.note(swap_step::drained_note(t.name));
      return;
    }
    if (area && !(owned && owned->active)) {
      ctx.warning("", path + " is already an active swap area that tierswap did not set up: left as it is");
      return;
    }
    if (area && swap_step::active_at(ctx.swaps, path, t.priority) && owned->discard == t.discard) return;
    if (area) ctx.add(swap_step::swapoff(kName, t.name, path, kind, owned->priority, owned->discard));
    ctx.add(swap_step::swapon(kName, t.name, path, kind, t.priority, t.discard, size));
  }
};

}  // namespace

const TierKind& tier_kind() {
  static const DiskKind k;
  return k;
}

}  // namespace tierswap::disk
