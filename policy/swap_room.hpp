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
// Pure: values in, verdict out (with the numbers a message needs).
#pragma once

#include <cstdint>
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

struct RoomInput {
  std::uint64_t need_bytes = 0;       // what the swapoff brings back (the area's Used)
  std::vector<RoomArea> others;       // the areas that stay while it runs
  std::uint64_t mem_available = 0;    // MemAvailable
  std::uint64_t committed_bytes = 0;  // moved into `others` by earlier swapoffs of the same sequence
};

struct RoomVerdict {
  bool fits = false;
  std::uint64_t need = 0;       // bytes the swapoff brings back
  std::uint64_t margin = 0;     // added to need
  std::uint64_t room = 0;       // what the other areas can take (committed already subtracted)
  std::uint64_t committed = 0;  // subtracted from room
  int areas = 0;                // how many other areas
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
                                               std::uint64_t mem_available);

}  // namespace tierswap::policy
