// Disk swap: swap files (created with fallocate, mode 0600, No-CoW on btrfs)
// and partitions (by path, UUID= or LABEL=). Paths are kernel paths mapped
// through HostFs, so a fake root holds fake files too.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "backends/hostfs/host_fs.hpp"
#include "backends/swap/swap_header.hpp"
#include "common/result.hpp"

namespace tierswap::disk {

struct Mount {
  std::string source;  // "/dev/vda"
  std::string target;  // "/"
  std::string fstype;  // "ext4"
};
// /proc/self/mounts text; octal escapes ("\040") decoded.
std::vector<Mount> parse_mounts(std::string_view text);

struct FileProbe {
  // `path` with the links of its directories resolved: what /proc/swaps
  // will print, and the path to plan, journal and compare with.
  std::string path;
  std::string dir;  // parent directory of `path`
  // Why the file cannot be used, when it cannot: a directory on the way or
  // the existing swap file breaks a rule of backends/swap/safe_path.hpp, a
  // component is not a directory. The message names the path and the fix.
  std::string problem;
  bool dir_exists = false;
  std::vector<std::string> missing_dirs;  // created with the file (root, 0700), outermost first
  bool exists = false;
  bool regular = false;
  std::uint64_t size = 0;
  bool has_holes = false;  // allocated blocks < size: swapon would refuse it
  swap::FirstPage first = swap::FirstPage::empty;
  std::uint64_t free_bytes = 0;  // available to unprivileged users (f_bavail) where the file will be
};
// Looks at a file path without changing anything. A file that holds
// something other than a swap area is not a `problem` here (the caller
// refuses it for what it holds).
FileProbe probe_file(const HostFs& fs, const std::string& path);

// "/dev/sdb2", "UUID=...", "LABEL=..." -> "/dev/sdb2", links resolved
// ("/dev/mapper/vg-swap" -> "/dev/dm-1", as /proc/swaps prints it). ENOENT
// names the /dev/disk/by-* link that is missing.
Result<std::string> resolve_partition(const HostFs& fs, const std::string& device);

// Whether `dev` (a /dev path) is mounted, per `mounts`.
bool is_mounted(const std::vector<Mount>& mounts, const std::string& dev);

// Files are reached by the rules of backends/swap/safe_path.hpp (EPERM
// naming what breaks one) and changed only through a descriptor opened
// with O_NOFOLLOW relative to a verified directory.
//
// Creates `path` (must not exist) with `size` bytes allocated, mode 0600,
// No-CoW first on btrfs; then the swap header, through the descriptor that
// created it. Missing directories are created root-owned 0700 (and removed
// by remove_swap_file() once empty). On failure the file and the
// directories it made are removed.
Result<void> create_swap_file(const HostFs& fs, const std::string& path, std::uint64_t size);
// Resizes a tierswap swap file (header ours, checked on the descriptor
// before it is truncated) and rewrites its header.
Result<void> resize_swap_file(const HostFs& fs, const std::string& path, std::uint64_t size);
// Removes a swap file tierswap created (refuses a link, or a file whose
// header is not ours), then the empty directories tierswap made for it.
Result<void> remove_swap_file(const HostFs& fs, const std::string& path);

}  // namespace tierswap::disk
