#include "policy/swap_room.hpp"

#include <algorithm>
#include <cmath>

namespace tierswap::policy {

std::uint64_t area_room(const RoomArea& a, std::uint64_t& ram_left) {
  const std::uint64_t disk_free = a.size_bytes > a.used_bytes ? a.size_bytes - a.used_bytes : 0;
  if (!a.zram) return disk_free;
  std::uint64_t mem = ram_left;
  if (a.mem_limit) mem = std::min(mem, a.mem_limit > a.mem_used ? a.mem_limit - a.mem_used : 0);
  const double ratio = std::isfinite(a.ratio) && a.ratio > 1.0 ? a.ratio : 1.0;
  const double can_hold = static_cast<double>(mem) * ratio;
  const std::uint64_t room =
      can_hold >= static_cast<double>(disk_free) ? disk_free : static_cast<std::uint64_t>(can_hold);
  const auto ram_used = static_cast<std::uint64_t>(std::ceil(static_cast<double>(room) / ratio));
  ram_left -= std::min(ram_left, ram_used);
  return room;
}

namespace {
std::uint64_t minus(std::uint64_t a, std::uint64_t b) {
  return a > b ? a - b : 0;
}
}  // namespace

RamRoom ram_room(std::uint64_t mem_total, std::uint64_t min_free_bytes,
                 const std::vector<CgroupSwap>& cgroups) {
  RamRoom r;
  r.counted = true;
  r.reserve = std::max(2 * min_free_bytes, mem_total / 16);
  for (const auto& c : cgroups) {
    if (!c.max_bytes || c.swap_bytes == 0) continue;
    const std::uint64_t headroom = minus(*c.max_bytes, c.current_bytes);
    const std::uint64_t capped = minus(c.swap_bytes, headroom);
    if (capped == 0) continue;
    r.capped += capped;
    ++r.capped_cgroups;
  }
  return r;
}

RamRoom ram_not_counted(std::string why) {
  RamRoom r;
  r.not_counted = std::move(why);
  return r;
}

RoomVerdict swapoff_room(const RoomInput& in) {
  RoomVerdict v;
  v.need = in.need_bytes;
  v.committed = in.committed_bytes;
  v.areas = static_cast<int>(in.others.size());
  std::uint64_t ram_left = in.mem_available, room = 0;
  for (const auto& a : in.others) room += area_room(a, ram_left);
  v.room = minus(room, in.committed_bytes);
  v.ram_counted = in.ram.counted;
  v.ram_not_counted = in.ram.not_counted;
  if (in.ram.counted) {
    v.ram_reserve = in.ram.reserve;
    // What the swap areas could not take of committed came into RAM.
    v.ram = minus(minus(ram_left, in.ram.reserve), minus(in.committed_bytes, room));
    v.capped = std::min(v.need, in.ram.capped);
  }
  if (v.need == 0) {
    v.fits = true;
    return v;
  }
  v.margin = std::max(v.need / kMarginDivisor, kMarginFloor);
  v.fits = v.capped <= v.room && v.need + v.margin <= v.room + v.ram;
  return v;
}

std::vector<RoomVerdict> swapoff_sequence_room(const std::vector<std::string>& order,
                                               const std::vector<RoomArea>& areas,
                                               std::uint64_t mem_available, const RamRoom& ram) {
  std::vector<RoomArea> remaining = areas;
  std::uint64_t committed = 0;
  std::vector<RoomVerdict> out;
  for (const auto& path : order) {
    const auto it =
        std::find_if(remaining.begin(), remaining.end(), [&](const RoomArea& a) { return a.path == path; });
    if (it == remaining.end()) {
      out.push_back(RoomVerdict{.fits = true});
      continue;
    }
    RoomInput in{.need_bytes = it->used_bytes,
                 .mem_available = mem_available,
                 .committed_bytes = committed,
                 .ram = ram};
    for (const auto& a : remaining)
      if (a.path != path) in.others.push_back(a);
    const RoomVerdict v = swapoff_room(in);
    out.push_back(v);
    if (v.fits) {
      committed += it->used_bytes;
      remaining.erase(it);
    }
  }
  return out;
}

}  // namespace tierswap::policy
