// The room rule for swapoff: may a swap area be swapped off now?
//
// swapoff pages everything on the area back into RAM, and those pages are
// charged to their owners' cgroups: a cgroup at memory.max is OOM-killed
// rather than given RAM. So a swapoff (Demote, a tier the config drops, a
// priority change that re-creates an area, SIGTERM's teardown) is done only
// when the pages it brings back fit in the free space of the swap areas that
// stay, with a margin:
//   room = sum over the areas that stay of
//            file/partition: size - used
//            zram:           min(size - used,
//                                what its mem_limit and free RAM can still hold
//                                at its observed compression ratio)
//          - what earlier swapoffs of the same sequence moved into them
//   fits  when need == 0, or need + margin <= room,
//   margin = max(need / kMarginDivisor, kMarginFloor).
// Free RAM (MemAvailable) is shared: the zram areas draw on it one after the
// other, never each on the whole of it. A compression ratio below 1 (or none
// observed yet) counts as 1.
//
// RAM itself is room too: a swapoff only needs the pages to fit somewhere,
// and a machine with gigabytes free can take a small swap area's pages back
// whatever the other areas hold. It counts (RamRoom) as
//   ram = what MemAvailable has left after the zram areas drew on it,
//         less a reserve = max(2 x vm.min_free_kbytes, MemTotal / 16)
// The reserve: the kernel's high watermark is 1.5 x min_free_kbytes at the
// default watermark_scale_factor, so twice min_free_kbytes keeps swapoff's
// allocations above the point where kswapd and direct reclaim start; and
// MemAvailable is an estimate that counts half of the page cache and of the
// reclaimable slab as free, so a sixteenth of RAM is left for the working
// set's cache and for that estimate to be wrong (on a 16 GiB machine: 1 GiB).
// Pages do not all get that RAM: swapoff charges each page to the memory
// cgroup that swapped it out, and a cgroup with a memory limit takes back
// only up to its limit (the rest it must swap out again, or it is
// OOM-killed). So the swapped-out bytes of limited cgroups beyond their
// headroom (limit - current) are "capped": they count only against the
// other swap areas, never against RAM. As the cgroups' swap is not known
// per area, all of it is taken to be on the area being swapped off (the
// cautious reading). Where the memory cgroups could not be read, RAM does
// not count at all (RamRoom::counted false, the reason in `not_counted`),
// and the rule is the swap-areas-only one.
//   fits when need == 0, or
//        capped part of need <= swap room (after committed), and
//        need + margin <= swap room + ram (after committed).
// What earlier swapoffs of a sequence moved (committed) comes off the swap
// room first and off RAM for the rest.
//
// Pure: values in, verdict out (with the numbers a message needs).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace tierswap::policy {

inline constexpr std::uint64_t kMarginFloor = 4ull << 20;
inline constexpr std::uint64_t kMarginDivisor = 8;

struct RoomArea {
  std::string path;  // as /proc/swaps names it
  std::uint64_t size_bytes = 0;
  std::uint64_t used_bytes = 0;
  bool zram = false;
  // zram only (mm_stat): mem_limit (0: none), mem_used_total, orig/compr.
  std::uint64_t mem_limit = 0;
  std::uint64_t mem_used = 0;
  double ratio = 1.0;
};

// One memory cgroup that holds swapped-out pages (cgroup v2: memory.swap.current,
// memory.current, memory.max; v1: total_swap, memory.usage_in_bytes,
// hierarchical_memory_limit).
struct CgroupSwap {
  std::string path;
  std::uint64_t swap_bytes = 0;
  std::uint64_t current_bytes = 0;
  std::optional<std::uint64_t> max_bytes;  // nullopt: no limit ("max")
};

// RAM as room (see above).
struct RamRoom {
  bool counted = false;
  std::string not_counted;    // why not, when !counted ("the memory cgroups ... could not be read")
  std::uint64_t reserve = 0;  // kept free: max(2 x min_free_kbytes, MemTotal / 16)
  std::uint64_t capped = 0;   // swapped-out bytes whose cgroups cannot take them back
  std::uint64_t capped_cgroups = 0;
};

// The reserve, and the capped bytes of `cgroups`: a cgroup with a limit
// contributes swap - min(swap, max(limit - current, 0)); nested limited
// cgroups each contribute (counted twice rather than missed).
RamRoom ram_room(std::uint64_t mem_total, std::uint64_t min_free_bytes,
                 const std::vector<CgroupSwap>& cgroups);
RamRoom ram_not_counted(std::string why);

struct RoomInput {
  std::uint64_t need_bytes = 0;       // what the swapoff brings back (the area's Used)
  std::vector<RoomArea> others;       // the areas that stay while it runs
  std::uint64_t mem_available = 0;    // MemAvailable
  std::uint64_t committed_bytes = 0;  // moved into `others` by earlier swapoffs of the same sequence
  RamRoom ram;                        // default: RAM not counted
};

struct RoomVerdict {
  bool fits = false;
  std::uint64_t need = 0;       // bytes the swapoff brings back
  std::uint64_t margin = 0;     // added to need
  std::uint64_t room = 0;       // what the other areas can take (committed already subtracted)
  std::uint64_t committed = 0;  // subtracted from room (and from ram for what room could not take)
  int areas = 0;                // how many other areas
  // RAM (when ram_counted): what it can take after the zram areas, the
  // reserve and committed; the reserve; the part of need that must go to
  // swap because its cgroups are at their limit.
  bool ram_counted = false;
  std::string ram_not_counted;
  std::uint64_t ram = 0;
  std::uint64_t ram_reserve = 0;
  std::uint64_t capped = 0;
};

// What one area can take (uncompressed bytes). `ram_left` is the shared
// free RAM; a zram area uses what it counts of it.
std::uint64_t area_room(const RoomArea& a, std::uint64_t& ram_left);

RoomVerdict swapoff_room(const RoomInput& in);

// A sequence of swapoffs (teardown): `order` names areas of `areas` in the
// order they are swapped off. Each one is judged against the areas that
// remain at that point (the later ones in `order`, the areas not in it, and
// the earlier ones that did not fit and so stay), with what the earlier ones
// moved counted as committed. One verdict per entry of `order`; a path that
// is not in `areas` needs nothing (verdict fits, need 0).
std::vector<RoomVerdict> swapoff_sequence_room(const std::vector<std::string>& order,
                                               const std::vector<RoomArea>& areas,
                                               std::uint64_t mem_available, const RamRoom& ram = {});

}  // namespace tierswap::policy
