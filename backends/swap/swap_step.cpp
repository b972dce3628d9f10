#include "backends/swap/swap_step.hpp"

#include "backends/swap/safe_path.hpp"
#include "backends/swap/swap_header.hpp"
#include "common/refusal.hpp"

namespace tierswap::swap_step {

Step swapon(std::string kind, std::string tier, std::string path, std::string tier_kind, int priority,
            bool discard, std::uint64_t size) {
  return Step{.kind = std::move(kind),
              .op = "swapon",
              .tier = std::move(tier),
              .path = std::move(path),
              .value = std::move(tier_kind),
              .priority = priority,
              .discard = discard,
              .size = size};
}

Step swapoff(std::string kind, std::string tier, std::string path, std::string tier_kind, int priority,
             bool discard) {
  return Step{.kind = std::move(kind),
              .op = "swapoff",
              .tier = std::move(tier),
              .path = std::move(path),
              .value = std::move(tier_kind),
              .priority = priority,
              .discard = discard};
}

Step header(std::string kind, std::string tier, std::string path, std::uint64_t size) {
  return Step{.kind = std::move(kind),
              .op = "swap_header",
              .tier = std::move(tier),
              .path = std::move(path),
              .size = size};
}

bool handles(const Step& s) {
  return s.op == "swapon" || s.op == "swapoff" || s.op == "swap_header";
}

Result<void> execute(const Step& s, ExecContext& ctx) {
  if (s.op == "swapon") return ctx.kernel.swapon(s.path, s.priority, s.discard);
  if (s.op == "swapoff") return ctx.kernel.swapoff(s.path);
  if (s.op == "swap_header")
    return swap::write_swap_header(ctx.fs.resolve(s.path).string(), s.path, s.size, swap::system_page_size());
  return refusal(ErrorKind::invalid_argument, EINVAL, s.kind + ": no step op \"" + s.op + "\"");
}

std::optional<Step> undo_of(const Step& s) {
  if (s.op != "swapon" && s.op != "swapoff") return std::nullopt;
  Step u{.kind = s.kind,
         .op = s.op == "swapon" ? "swapoff" : "swapon",
         .tier = s.tier,
         .path = s.path,
         .value = s.value,
         .priority = s.priority,
         .discard = s.discard};
  return u;
}

void record(Ownership& own, const Step& s) {
  if (s.op == "swapon") {
    auto* t = own.find_swap(s.path);
    if (!t) {
      OwnedTier n;
      n.name = s.tier;
      n.kind = s.value;
      n.swap_path = s.path;
      own.tiers.push_back(n);
      t = &own.tiers.back();
    }
    t->name = s.tier;
    t->active = true;
    t->drained = false;
    t->priority = s.priority;
    t->discard = s.discard;
    // Only the swapon of an existing area that tierswap did not make carries
    // a size (zram records its size from disksize, files from make_file).
    if (!t->created_file && s.size) t->size = s.size;
    return;
  }
  if (s.op == "swapoff") {
    if (auto* t = own.find_swap(s.path)) {
      t->active = false;
      if (!t->created_device && !t->created_file)
        std::erase_if(own.tiers, [&](const OwnedTier& o) { return o.swap_path == s.path; });
    }
  }
}

namespace {
std::string prio(const Step& s) {
  return (s.priority >= 0 ? "priority " + std::to_string(s.priority)
                          : std::string("kernel-chosen priority")) +
         (s.discard ? ", discard" : "");
}
}  // namespace

std::string describe(const Step& s) {
  if (s.op == "swapon") return "swapon " + s.path + " (" + prio(s) + ")";
  if (s.op == "swapoff") return "swapoff " + s.path;
  if (s.op == "swap_header") return "swap header on " + s.path + " (" + std::to_string(s.size) + " bytes)";
  return "?";
}

std::string describe_undo(const Step& s) {
  if (s.op == "swapon") return "undo: swapoff";
  if (s.op == "swapoff") return "undo: swapon (" + prio(s) + ")";
  return "undo: none (removed with the device)";
}

StepFields fields(const Step& s) {
  return {.value = s.op == "swapon", .priority = s.op == "swapon" || s.op == "swapoff"};
}

bool active_at(const std::vector<swap::SwapArea>& swaps, const std::string& path, int prio) {
  auto a = swap::find_area(swaps, path);
  return a && (prio < 0 || a->priority == prio);
}

std::optional<Step> recover(const Step& s, const HostFs& fs, const std::vector<swap::SwapArea>& swaps,
                            std::vector<std::string>& log) {
  if (s.op != "swapon") return std::nullopt;
  if (!swap::find_area(swaps, swap::resolved_path(fs, s.path))) return std::nullopt;
  log.push_back(s.path + " is active");
  return s;
}

std::optional<Step> release(const std::string& kind, const OwnedTier& o,
                            const std::vector<swap::SwapArea>& swaps) {
  if (!o.active || !swap::find_area(swaps, o.swap_path)) return std::nullopt;
  return swapoff(kind, o.name, o.swap_path, o.kind, o.priority, o.discard);
}

std::string drained_note(const std::string& tier) {
  return "tier \"" + tier + "\": drained on request; left inactive until promoted (tierswapctl promote " +
         tier + ")";
}

std::uint64_t page_round_up(std::uint64_t b) {
  const std::uint64_t p = swap::system_page_size();
  return (b + p - 1) / p * p;
}

}  // namespace tierswap::swap_step
