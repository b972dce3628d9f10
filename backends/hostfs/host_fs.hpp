// HostFs: every read and write of /sys, /proc and /dev goes through here,
// rooted at --root (default "/"), so that tests and `tierswapctl plan --root`
// can point the whole program at a fake tree. Kernel paths are always given
// in their absolute form ("/sys/block/zram0/disksize", see paths.hpp) and
// mapped under the root; messages name the kernel path, not the mapped one.
//
// Thread-safety: a HostFs holds only its root; all calls are const and may
// run concurrently.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace tierswap {

class HostFs {
 public:
  explicit HostFs(std::filesystem::path root = "/");

  [[nodiscard]] const std::filesystem::path& root() const { return root_; }
  [[nodiscard]] bool is_real_root() const { return root_ == "/"; }

  // "/sys/block/zram0" -> "<root>/sys/block/zram0".
  [[nodiscard]] std::filesystem::path resolve(std::string_view kernel_path) const;

  // Whole file. Errors: errno of open/read, message names the kernel path.
  [[nodiscard]] Result<std::string> read(std::string_view kernel_path) const;
  // read() without the surrounding white space (sysfs values end in '\n').
  [[nodiscard]] Result<std::string> read_value(std::string_view kernel_path) const;
  // read_value() parsed as an integer.
  [[nodiscard]] Result<long long> read_int(std::string_view kernel_path) const;

  // One write(2) of `value` (O_WRONLY|O_TRUNC, no create), as `echo value >`
  // does, so the kernel sees the whole value at once. On failure the message
  // is `<kernel path>: "<value>"` and code is the kernel's errno.
  [[nodiscard]] Result<void> write(std::string_view kernel_path, std::string_view value) const;

  [[nodiscard]] bool exists(std::string_view kernel_path) const;
  // Entry names in a directory, sorted.
  [[nodiscard]] Result<std::vector<std::string>> list(std::string_view kernel_dir) const;

 private:
  std::filesystem::path root_;
};

}  // namespace tierswap
