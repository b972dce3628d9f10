#include "daemon/observe.hpp"

#include "backends/hostfs/paths.hpp"
#include "daemon/kind_registry.hpp"
#include "policy/meminfo.hpp"

namespace tierswap {

Result<std::uint64_t> parse_mem_total(std::string_view meminfo) {
  auto mi = policy::parse_meminfo(meminfo);  // EINVAL naming the line, or no MemTotal
  if (!mi) return std::unexpected(mi.error());
  return mi->mem_total();
}

Result<Observed> observe(const HostFs& fs) {
  Observed o;
  auto mi = fs.read(paths::proc_meminfo);
  if (!mi) return std::unexpected(mi.error());
  auto ram = parse_mem_total(*mi);
  if (!ram) return std::unexpected(ram.error());
  o.ram_bytes = *ram;
  for (const auto& d : zram::list_devices(fs))
    if (auto dev = zram::read_device(fs, d); dev) o.zram_devices[d] = *dev;
  auto sw = fs.read(paths::proc_swaps);
  if (!sw) return std::unexpected(sw.error());
  auto areas = swap::parse_proc_swaps(*sw);
  if (!areas) return std::unexpected(areas.error());
  o.swaps = std::move(*areas);
  for (const auto* k : kinds::all())
    if (auto s = k->observe(fs)) o.kinds[std::string(k->name())] = std::move(s);
  return o;
}

void observe_gpus(Observed& o, std::span<const pid_t> exclude, const std::string& library) {
  o.gpus.reset();
  auto nvml = gpu::Nvml::load(library);
  if (!nvml) {
    o.gpus_unknown = "NVML: " + nvml.error().message;
    return;
  }
  auto all = (*nvml)->read_all(exclude);
  if (!all) {
    o.gpus_unknown = "NVML: " + all.error().message;
    return;
  }
  o.gpus_unknown.clear();
  o.gpus = std::move(*all);
}

}  // namespace tierswap
