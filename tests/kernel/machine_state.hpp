// Kernel-test helpers: a snapshot of everything tierswap may change on the
// real machine (swap areas, zram devices, managed sysctls, zswap parameters)
// and a fixture that skips without root or zram, compares the snapshot after
// each test and cleans up whatever a failed test left (only devices and
// files the test's journal names, never someone else's).
#pragma once

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/swap.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "backends/hostfs/host_fs.hpp"
#include "backends/hostfs/paths.hpp"
#include "backends/swap/proc_swaps.hpp"
#include "backends/sysctl/sysctl.hpp"
#include "backends/zram/zram.hpp"
#include "backends/zswap/zswap.hpp"
#include "daemon/journal.hpp"

namespace tierswap::ktest {

namespace fs = std::filesystem;

inline std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
inline void spit(const fs::path& p, const std::string& s) {
  std::ofstream(p, std::ios::trunc) << s;
}

// The swap areas as "path type size_kib priority", without the Used column:
// pages move in and out of areas that existed before the test (the
// machine's own swap) while it runs, and that is none of the test's doing.
inline std::vector<std::string> swap_areas_without_use(const std::string& proc_swaps) {
  std::vector<std::string> out;
  auto areas = swap::parse_proc_swaps(proc_swaps);
  if (!areas) return {"<" + areas.error().describe() + ">"};
  for (const auto& a : *areas)
    out.push_back(a.path + " " + a.type + " " + std::to_string(a.size_kib) + " " +
                  std::to_string(a.priority));
  return out;
}

struct MachineState {
  std::vector<std::string> swaps;
  std::vector<std::string> zram;
  std::map<std::string, std::string> sysctl, zswap;
  bool operator==(const MachineState&) const = default;
};

inline std::ostream& operator<<(std::ostream& os, const MachineState& m) {
  os << "swaps:\n";
  for (const auto& a : m.swaps) os << "  " << a << "\n";
  os << "zram:";
  for (const auto& z : m.zram) os << " " << z;
  os << "\n";
  for (const auto& [k, v] : m.sysctl) os << k << "=" << v << "\n";
  for (const auto& [k, v] : m.zswap) os << "zswap." << k << "=" << v << "\n";
  return os;
}

inline MachineState snapshot() {
  const HostFs hfs("/");
  MachineState m;
  m.swaps = swap_areas_without_use(*hfs.read(paths::proc_swaps));
  m.zram = zram::list_devices(hfs);
  m.sysctl = sysctl::observe(hfs);
  m.zswap = zswap::observe(hfs).params;
  return m;
}

// The zram compression algorithms this kernel offers, in its order, from the
// comp_algorithm of an existing device, or of a scratch device added and
// removed again when there is none. Empty if that fails.
inline std::vector<std::string> offered_zram_algorithms() {
  const HostFs hfs("/");
  auto known = zram::kernel_algorithms(hfs);
  if (!known.all.empty()) return known.all;
  auto id = hfs.read_value(paths::zram_hot_add);
  if (!id) return {};
  auto text = hfs.read(paths::block_attr("zram" + *id, "comp_algorithm"));
  (void)hfs.write(paths::zram_hot_remove, *id);
  return text ? zram::parse_comp_algorithm(*text).all : std::vector<std::string>{};
}

inline bool offers(const std::vector<std::string>& offered, const std::string& name) {
  return std::find(offered.begin(), offered.end(), name) != offered.end();
}

// "lzo-rle lzo lz4": the list as tierswap's messages print it.
inline std::string join_words(const std::vector<std::string>& words) {
  std::string out;
  for (const auto& w : words) out += (out.empty() ? "" : " ") + w;
  return out;
}

// A zram algorithm name that Linux knows but this kernel does not offer
// (empty when it offers them all).
inline std::string zram_algorithm_not_offered(const std::vector<std::string>& offered) {
  for (const char* name : {"zstd", "lz4hc", "842", "deflate", "lz4", "lzo", "lzo-rle"})
    if (!offers(offered, name)) return name;
  return {};
}

class KernelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "kernel tests need root (they create zram devices and swap areas)";
    if (!fs::exists("/sys/class/zram-control"))
      GTEST_SKIP() << "no /sys/class/zram-control: zram is not built in";
    if (fs::exists("/run/tierswap/state.json"))
      GTEST_SKIP()
          << "/run/tierswap/state.json exists: a tierswapd may be running here; not touching its tiers";
    before_ = snapshot();
    char tmpl[] = "/var/tmp/tierswap-kt-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
  }

  void TearDown() override {
    if (dir_.empty()) return;
    cleanup();
    std::error_code ec;
    fs::remove_all(dir_, ec);
    EXPECT_EQ(snapshot(), before_) << "the machine is not as the test found it";
  }

  // Undo whatever a failed test left: what the journal names, and swap
  // files under the test's own directory; then the values as found.
  void cleanup() {
    const HostFs hfs("/");
    auto j = load_journal(hfs);
    if (j) {
      for (const auto& t : j->tiers) {
        ::swapoff(t.swap_path.c_str());
        if (t.created_device) {
          (void)zram::reset(hfs, t.device);
          (void)hfs.write(paths::zram_hot_remove, t.device.substr(4));
        }
      }
    }
    std::error_code ec;
    fs::remove(paths::run_state_file, ec);
    for (const auto& e : fs::directory_iterator(dir_, ec)) ::swapoff(e.path().c_str());
    for (const auto& [k, v] : before_.sysctl)
      if (snapshot().sysctl[k] != v) (void)hfs.write(paths::sysctl(k), v);
    for (const auto& n : zswap::parameter_names())
      if (snapshot().zswap[n] != before_.zswap[n]) (void)hfs.write(paths::zswap_param(n), before_.zswap[n]);
  }

  std::string write_config(const std::string& yaml, const std::string& name = "tierswap.yaml") {
    const auto p = fs::path(dir_) / name;
    spit(p, yaml);
    return p.string();
  }

  MachineState before_;
  std::string dir_;
};

}  // namespace tierswap::ktest
