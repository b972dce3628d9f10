#include "tests/support/recording_kernel.hpp"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "backends/hostfs/paths.hpp"
#include "backends/swap/proc_swaps.hpp"

namespace tierswap::swap {

std::unique_ptr<Kernel> recording_kernel_on(const HostFs& fs) {
  if (fs.is_real_root()) return nullptr;
  return std::make_unique<RecordingKernel>(&fs);
}

void RecordingKernel::fail_when(std::string prefix, int code, bool once) {
  std::lock_guard lk(mu_);
  faults_.push_back({std::move(prefix), code, once});
}

std::vector<std::string> RecordingKernel::calls() const {
  std::lock_guard lk(mu_);
  return calls_;
}

Result<void> RecordingKernel::check(const std::string& record) {
  std::lock_guard lk(mu_);
  calls_.push_back(record);
  for (auto it = faults_.begin(); it != faults_.end(); ++it) {
    if (record.starts_with(it->prefix)) {
      const int code = it->code;
      if (it->once) faults_.erase(it);
      return fail(code, record + " (injected)");
    }
  }
  return {};
}

namespace {
namespace fs = std::filesystem;

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
void spit(const fs::path& p, const std::string& s) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::trunc) << s;
}
}  // namespace

Result<void> RecordingKernel::swapon(const std::string& path, int priority, bool discard) {
  if (auto r =
          check("swapon " + path + " prio=" + std::to_string(priority) + " discard=" + (discard ? "1" : "0"));
      !r)
    return r;
  if (!fs_) return {};
  const auto swaps_path = fs_->resolve(paths::proc_swaps);
  std::string text = slurp(swaps_path);
  if (text.empty()) text = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n";
  if (auto areas = parse_proc_swaps(text); areas && find_area(*areas, path))
    return fail(EBUSY, "swapon " + path);
  std::uint64_t kib = 0;
  std::error_code ec;
  const bool dev = path.starts_with("/dev/");
  if (dev) {
    auto name = fs::path(path).filename().string();
    if (auto ds = fs_->read_int(paths::block_attr(name, "disksize")); ds)
      kib = static_cast<std::uint64_t>(*ds) / 1024;
  } else {
    kib = fs::file_size(fs_->resolve(path), ec) / 1024;
  }
  if (kib >= 4) kib -= 4;  // the header page
  // Kernel default priorities are negative and descend from -2.
  text += path + "\t" + (dev ? "partition" : "file") + "\t" + std::to_string(kib) + "\t0\t" +
          std::to_string(priority >= 0 ? priority : -2) + "\n";
  spit(swaps_path, text);
  return {};
}

Result<void> RecordingKernel::swapoff(const std::string& path) {
  if (auto r = check("swapoff " + path); !r) return r;
  if (!fs_) return {};
  const auto swaps_path = fs_->resolve(paths::proc_swaps);
  std::istringstream in(slurp(swaps_path));
  std::string line, out;
  bool found = false;
  while (std::getline(in, line)) {
    if (line.starts_with(path + "\t") || line.starts_with(path + " ")) {
      found = true;
      continue;
    }
    out += line + "\n";
  }
  if (!found) return fail(EINVAL, "swapoff " + path);
  spit(swaps_path, out);
  return {};
}

Result<std::string> RecordingKernel::zram_hot_add() {
  if (!fs_) {
    if (auto r = check("zram_hot_add"); !r) return std::unexpected(r.error());
    return std::string("zram1");
  }
  int n = 0;
  while (fs_->exists(paths::block_attr("zram" + std::to_string(n)))) ++n;
  const std::string dev = "zram" + std::to_string(n);
  if (auto r = check("zram_hot_add -> " + dev); !r) return std::unexpected(r.error());
  const auto dir = fs_->resolve(paths::block_attr(dev));
  std::string algos;
  for (const auto& name : {std::string("zram0"), dev}) {
    auto a = fs_->read_value(paths::block_attr(name, "comp_algorithm"));
    if (a) {
      algos = *a;
      break;
    }
  }
  if (algos.empty()) algos = "[lzo-rle] lzo lz4";
  spit(dir / "comp_algorithm", algos + "\n");
  spit(dir / "disksize", "0\n");
  spit(dir / "mem_limit", "0\n");
  spit(dir / "algorithm_params", "");
  spit(dir / "reset", "");
  spit(dir / "initstate", "0\n");
  spit(dir / "mm_stat", "0 0 0 0 0 0 0 0 0\n");
  spit(fs_->resolve(paths::dev_node(dev)), "");
  return dev;
}

Result<void> RecordingKernel::zram_hot_remove(const std::string& dev) {
  if (auto r = check("zram_hot_remove " + dev); !r) return r;
  if (!fs_) return {};
  std::error_code ec;
  fs::remove_all(fs_->resolve(paths::block_attr(dev)), ec);
  fs::remove(fs_->resolve(paths::dev_node(dev)), ec);
  return {};
}

}  // namespace tierswap::swap
