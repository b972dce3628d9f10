#include "backends/zram/zram.hpp"

#include <algorithm>
#include <sstream>
#include <thread>

#include "backends/hostfs/paths.hpp"

namespace tierswap::zram {

Algorithms parse_comp_algorithm(std::string_view text) {
  Algorithms a;
  std::istringstream in{std::string(text)};
  std::string tok;
  while (in >> tok) {
    if (tok.size() > 2 && tok.front() == '[' && tok.back() == ']') {
      tok = tok.substr(1, tok.size() - 2);
      a.selected = tok;
    }
    a.all.push_back(tok);
  }
  if (a.selected.empty() && a.all.size() == 1) a.selected = a.all.front();
  return a;
}

Result<Device> read_device(const HostFs& fs, const std::string& name) {
  Device d;
  d.name = name;
  auto alg = fs.read_value(paths::block_attr(name, "comp_algorithm"));
  if (!alg) return std::unexpected(alg.error());
  d.algorithm = parse_comp_algorithm(*alg).selected;
  auto ds = fs.read_int(paths::block_attr(name, "disksize"));
  if (!ds) return std::unexpected(ds.error());
  d.disksize = static_cast<std::uint64_t>(*ds);
  return d;
}

std::vector<std::string> list_devices(const HostFs& fs) {
  std::vector<std::string> out;
  auto names = fs.list(paths::sys_block);
  if (!names) return out;
  for (const auto& n : *names)
    if (n.starts_with("zram") && n.size() > 4 && std::all_of(n.begin() + 4, n.end(), ::isdigit))
      out.push_back(n);
  std::sort(out.begin(), out.end(), [](const std::string& a, const std::string& b) {
    return std::stoi(a.substr(4)) < std::stoi(b.substr(4));
  });
  return out;
}

Algorithms kernel_algorithms(const HostFs& fs) {
  for (const auto& d : list_devices(fs)) {
    auto v = fs.read_value(paths::block_attr(d, "comp_algorithm"));
    if (v) {
      auto a = parse_comp_algorithm(*v);
      if (a.all.size() > 1) return a;
    }
  }
  return {};
}

std::string recomp_attr_path(const HostFs& fs) {
  const auto devs = list_devices(fs);
  return paths::block_attr(devs.empty() ? "zram0" : devs.front(), "recomp_algorithm");
}

Result<void> reset(const HostFs& fs, const std::string& dev, std::chrono::milliseconds budget) {
  auto delay = std::chrono::milliseconds(10);
  auto spent = std::chrono::milliseconds(0);
  for (;;) {
    auto r = fs.write(paths::block_attr(dev, "reset"), "1");
    if (r || r.error().code != EBUSY || spent >= budget) return r;
    std::this_thread::sleep_for(delay);
    spent += delay;
    delay = std::min(delay * 2, std::chrono::milliseconds(500));
  }
}

}  // namespace tierswap::zram
