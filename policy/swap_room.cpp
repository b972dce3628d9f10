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

RoomVerdict swapoff_room(const RoomInput& in) {
  RoomVerdict v;
  v.need = in.need_bytes;
  v.committed = in.committed_bytes;
  v.areas = static_cast<int>(in.others.size());
  std::uint64_t ram_left = in.mem_available, room = 0;
  for (const auto& a : in.others) room += area_room(a, ram_left);
  v.room = room > in.committed_bytes ? room - in.committed_bytes : 0;
  if (v.need == 0) {
    v.fits = true;
    return v;
  }
  v.margin = std::max(v.need / kMarginDivisor, kMarginFloor);
  v.fits = v.need + v.margin <= v.room;
  return v;
}

std::vector<RoomVerdict> swapoff_sequence_room(const std::vector<std::string>& order,
                                               const std::vector<RoomArea>& areas,
                                               std::uint64_t mem_available) {
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
    RoomInput in{.need_bytes = it->used_bytes, .mem_available = mem_available, .committed_bytes = committed};
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
