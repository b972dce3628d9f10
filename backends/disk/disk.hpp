// Disk swap: swap files (created with fallocate, mode 0600, No-CoW on btrfs)
// and partitions (by path, UUID= or LABEL=). Paths are kernel paths mapped
// through HostFs, so a fake root holds fake files too.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"
#include "backends/hostfs/host_fs.hpp"
#include "backends/swap/swap_header.hpp"

namespace tierswap::disk {

struct Mount {
  std::string source;  // "/dev/vda"
  std::string target;  // "/"
  std::string fstype;  // "ext4"
};
// /proc/self/mounts text; octal escapes ("\040") decoded.
std::vector<Mount> parse_mounts(std::string_view text);

struct FileProbe {
  std::string dir;  // parent directory (kernel path)
  bool dir_exists = false;
  bool exists = false;
  bool regular = false;
  std::uint64_t size = 0;
  bool has_holes = false;  // allocated blocks < size: swapon would refuse it
  swap::FirstPage first = swap::FirstPage::empty;
  std::uint64_t free_bytes = 0;  // available to root... to unprivileged users (f_bavail) on dir's fs
};
// Looks at a file path without changing anything.
FileProbe probe_file(const HostFs& fs, const std::string& path);

// "/dev/sdb2", "UUID=...", "LABEL=..." -> "/dev/sdb2". ENOENT names the
// /dev/disk/by-* link that is missing.
Result<std::string> resolve_partition(const HostFs& fs, const std::string& device);

// Whether `dev` (a /dev path) is mounted, per `mounts`.
bool is_mounted(const std::vector<Mount>& mounts, const std::string& dev);

// Creates `path` (must not exist) with `size` bytes allocated, mode 0600,
// No-CoW first on btrfs; then the swap header. On failure the file is removed.
Result<void> create_swap_file(const HostFs& fs, const std::string& path, std::uint64_t size);
// Resizes a tierswap swap file (header ours) and rewrites its header.
Result<void> resize_swap_file(const HostFs& fs, const std::string& path, std::uint64_t size);
// Removes a swap file tierswap created (refuses when the header is not ours).
Result<void> remove_swap_file(const HostFs& fs, const std::string& path);

}  // namespace tierswap::disk
