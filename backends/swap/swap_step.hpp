// Swap-area steps shared by the plug-ins whose tiers are swap areas (zram,
// disk, and the coming vram):
//   swapon       swapon `path` at `priority` (+discard); `value` is the
//                tier's configured kind, for the journal; undo: swapoff
//   swapoff      swapoff `path`; undo: swapon at `priority`/`discard`
//   swap_header  write a swap header for `size` bytes to `path` (a device
//                this plan created); nothing to undo
// A plug-in routes its steps with these ops here (handles()).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "backends/hostfs/host_fs.hpp"
#include "backends/swap/kernel.hpp"
#include "backends/swap/proc_swaps.hpp"
#include "common/tier_kind.hpp"

namespace tierswap::swap_step {

Step swapon(std::string kind, std::string tier, std::string path, std::string tier_kind, int priority,
            bool discard, std::uint64_t size = 0);
Step swapoff(std::string kind, std::string tier, std::string path, std::string tier_kind, int priority,
             bool discard);
Step header(std::string kind, std::string tier, std::string path, std::uint64_t size);

bool handles(const Step& s);
Result<void> execute(const Step& s, ExecContext& ctx);
std::optional<Step> undo_of(const Step& s);
// swapon: the tier is ours and active (a new record for a swap area tierswap
// did not create); swapoff: inactive, forgotten when tierswap made nothing.
void record(Ownership& own, const Step& s);
std::string describe(const Step& s);
std::string describe_undo(const Step& s);
StepFields fields(const Step& s);
// TierKind::recover: a swapon when /proc/swaps shows the area; nothing for
// a swapoff (the tier stays journalled as active, and reconcile() marks it
// inactive when it is) or a header.
std::optional<Step> recover(const Step& s, const HostFs& fs, const std::vector<swap::SwapArea>& swaps,
                            std::vector<std::string>& log);

// Whether `path` is an active swap area (at `prio`, unless prio < 0).
bool active_at(const std::vector<swap::SwapArea>& swaps, const std::string& path, int prio);
// The swapoff that releases an owned tier, when it is active.
std::optional<Step> release(const std::string& kind, const OwnedTier& o,
                            const std::vector<swap::SwapArea>& swaps);
// The note for a tier drained on request (Demote) that planning leaves so.
std::string drained_note(const std::string& tier);
// Bytes rounded up to whole pages of this system.
std::uint64_t page_round_up(std::uint64_t bytes);

}  // namespace tierswap::swap_step
