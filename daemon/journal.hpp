// The journal: what tierswapd changed, so that it can undo it on exit, after
// a crash, or when the config drops something. Kept at
// /run/tierswap/state.json under --root (tmpfs: a reboot forgets it, as it
// forgets the zram devices and swapons it describes).
//
// Format (version 2; read and written with nlohmann-json), keys in this
// order:
//   {"version": 2,
//    "source": "/etc/tierswap.yaml",
//    "tiers": [{"name": "fast", "kind": "zram", "device": "zram1",
//               "swap_path": "/dev/zram1", "created_device": true,
//               "created_file": false, "active": true, "drained": false,
//               "priority": 100,
//               "discard": false, "algorithm": "lz4", "size": 8589934592,
//               "mem_limit": 0},
//              {"name": "gpu", "kind": "vram", "device": "nbd0", ...,
//               "exporter_pid": 4242, "exporter_start": 123456,
//               "store": "cuda", "backend": "tierswap-gpu", "connections": 8,
//               "failed": "<why, when it did>"}],
//    "values": [{"path": <kernel path of vm.swappiness>, "original": "60",
//                "current": "150"}],
//    "pending": {"kind": "zram", "op": "zram_add", "tier": "fast", "path": "",
//                "value": "", "previous": "zram0", "priority": -1,
//                "discard": false, "size": 0, "previous_size": 0}}
// "pending" (absent when none): the step being run, saved before it changes
// the kernel (Journal::pending).
// Version 1 (tierswapd before re-adoption) is the same without "backend"
// and "failed"; it is read as such and written back as version 2. A key of
// the wrong type or out of range fails the whole journal (EINVAL naming it);
// unknown keys are ignored.
// `exporter_pid`/`exporter_start`: the vram tier's tierswap-nbd and its start
// time (/proc/PID/stat field 22), so that a restarted tierswapd re-adopts the
// exporter only when that very process still runs (see
// TierKind::readopt); `backend`: the identifier the kernel keeps for the
// device (/sys/block/nbdN/backend), empty after an ioctl attach.
// `failed`: why a tier that tierswapd owns is no longer sound (its exporter
// died); the next apply tears it down and sets it up afresh.
// Written atomically (temp file, fsync, rename, fsync of the directory)
// before every step (naming it as pending) and after it (recording it), so
// a crash mid-apply leaves a journal that names every change, or the one
// step whose outcome the kernel tells.
//
// The journal is not trusted: teardown writes to the paths it names, so
// loading checks every entry against what tierswapd itself produces
// (validate_journal). A journal that fails is set aside, never used, and
// what tierswap owns is rebuilt from the kernel (rebuild_from_kernel): its
// swap areas carry tierswap's label in their swap header.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "backends/hostfs/host_fs.hpp"
#include "common/result.hpp"
#include "config/spec.hpp"
#include "daemon/plan.hpp"

namespace tierswap {

struct Observed;

// OwnedTier and ValueRecord: common/owned.hpp (through daemon/plan.hpp).
// The version to_json() writes; parse_journal() also reads version 1.
inline constexpr int kJournalVersion = 2;
// The largest pid the kernel hands out (PID_MAX_LIMIT).
inline constexpr int kMaxPid = 4194304;

struct Journal {
  int version = kJournalVersion;
  std::string source;
  std::vector<OwnedTier> tiers;
  std::vector<ValueRecord> values;
  // The step being run, saved right before its kernel change and cleared by
  // the save that records it: after a crash in between, recover_pending()
  // asks its plug-in what the kernel shows of it (a zram device hot-added
  // but not yet named anywhere is found this way).
  std::optional<Step> pending;

  [[nodiscard]] bool empty() const { return tiers.empty() && values.empty() && !pending; }
  OwnedTier* find_tier(const std::string& name);
  [[nodiscard]] const OwnedTier* find_tier(const std::string& name) const;
  OwnedTier* find_swap(const std::string& swap_path);
  OwnedTier* find_device(const std::string& device);
  ValueRecord* find_value(const std::string& path);
};

std::string to_json(const Journal& j);
// EINVAL with the reason when the text is not a version-1 or version-2
// journal, or a key has the wrong type (naming it).
Result<Journal> parse_journal(const std::string& json);

// Accepts only what tierswapd writes itself; EINVAL naming the entry, its
// value and the rule it breaks:
//   values[].path   a managed vm sysctl (/proc/sys/vm/<key>) or a zswap
//                   parameter (/sys/module/zswap/parameters/<name>), exactly;
//   tiers[].kind    zram, file, partition or vram;
//   tiers[].device  empty, zram<N> (kind zram, required) or nbd<N> (kind vram);
//   tiers[].swap_path  /dev/<device> for zram and vram; else an absolute path
//                   without ".", ".." or empty components, not under /proc or
//                   /sys (partition: under /dev);
//   created_device only for zram, created_file only for file; a name;
//   exporter_pid, exporter_start, store, backend only for vram: a pid in
//                   1..kMaxPid with a start time, a store (cuda, host), a
//                   backend "tierswap-<name>";
//   names and `failed` without control characters.
Result<void> validate_journal(const Journal& j);

// A missing journal is an empty one. The file is opened without following
// a symlink; a journal that does not parse or validate is an EINVAL error
// naming the file.
Result<Journal> load_journal(const HostFs& fs);
// Atomic replace; an empty journal removes the file (and /run/tierswap when
// nothing else is in it). The temporary file is created O_EXCL|O_NOFOLLOW in
// /run/tierswap opened O_NOFOLLOW: a symlink planted at its name is removed,
// never followed, and a symlinked /run/tierswap is refused (ELOOP).
Result<void> save_journal(const HostFs& fs, const Journal& j);

// Renames the journal to state.json.invalid-<UTC time>[-N] in /run/tierswap
// (never replacing a file, never following a symlink) and returns the new
// kernel path.
Result<std::string> set_aside_journal(const HostFs& fs);

// What tierswap owns, rebuilt from the kernel without a journal: swap areas
// in /proc/swaps whose first page carries tierswap's label (a zram device ->
// a zram tier with created_device; a file -> a file tier with created_file),
// and zram devices that are set up and labelled but not active (a drained
// tier). A zram tier's mem_limit comes from its mm_stat. `configured` only
// names them: a zram area with the size, algorithm and priority of a
// configured zram tier, or a file at a configured file tier's path, takes
// that tier's name (and its discard flag, which the kernel does not show);
// others are named "recovered-<device or file name>", so that the next apply
// removes them. Sysctl and zswap originals cannot be recovered. Appends one
// line per decision to `log`.
Journal rebuild_from_kernel(const Observed& o, const HostFs& fs, const std::vector<config::Tier>& configured,
                            std::vector<std::string>& log);

// After a crash between a step's kernel change and the save that records
// it: the journal's pending step, as its plug-in finds it in the kernel
// (TierKind::recover), is recorded as done, or dropped when nothing of it
// happened; what it would add is validated like the rest of the journal
// (refused: not recorded). Clears `pending`; one line per decision. Run
// before reconcile().
std::vector<std::string> recover_pending(Journal& j, const Observed& o, const HostFs& fs);
// Brings a journal loaded at start-up in line with the machine: zram devices
// that are gone are forgotten, swap areas no longer in /proc/swaps are marked
// inactive, files that are gone are forgotten. Returns one line per change.
std::vector<std::string> reconcile(Journal& j, const Observed& o, const HostFs& fs);

}  // namespace tierswap
