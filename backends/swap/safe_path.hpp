// Reaching swap files without being redirected.
//
// A swap area holds every program's swapped-out memory, and tierswap runs as
// root: a swap file must be one that nobody but root can read or replace.
// The rules, checked on descriptors, one path component at a time from "/"
// (openat with O_NOFOLLOW, so nothing can be swapped in behind a check):
//   - every directory on the way is owned by root and not writable by group
//     or others, unless it is sticky (/tmp, /var/tmp: there only an entry's
//     owner can rename it, and the next entry must be root's anyway);
//   - a symbolic link on the way (a symlinked directory, /dev/mapper/x) is
//     followed only when root owns it: it sits in a directory that passed
//     the rule above, so only root can change it, and its target is walked
//     by the same rules;
//   - the swap file itself is a regular file, not a link, owned by root,
//     mode 0600 (no access for group or others, no set-id or sticky bits).
// Under a fake --root the root's own ancestors are walked by the same rules
// (from the real "/"); absolute link targets stay under the root.
//
// Refusals carry code EPERM and a message that names the path, what is
// wrong and the fix; other codes are the kernel's errno.
#pragma once

#include <sys/stat.h>

#include <string>
#include <vector>

#include "backends/hostfs/host_fs.hpp"
#include "common/result.hpp"

namespace tierswap::swap {

// An owned file descriptor (closed on destruction).
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& o) noexcept : fd_(o.release()) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd();
  [[nodiscard]] int get() const { return fd_; }
  int release() {
    const int f = fd_;
    fd_ = -1;
    return f;
  }
  explicit operator bool() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

// A directory reached by the rules above. chain[0] is the root of the kernel
// paths (fs.root()), chain.back() the directory itself (O_PATH descriptors);
// names[i] is the entry of chain[i + 1] in chain[i].
struct SafeDir {
  std::vector<UniqueFd> chain;
  std::vector<std::string> names;
  std::string path;                  // kernel path, links resolved: "/data/swap"
  std::vector<std::string> missing;  // entries below `path` that do not exist yet (see open_safe_dir)
  [[nodiscard]] int fd() const { return chain.back().get(); }
};

// Walks kernel directory `dir` by the rules. A missing directory:
//   - create false: not an error; `missing` lists what is missing below the
//     deepest existing directory, which is what the result holds;
//   - create true: each missing directory is made root-owned 0700 and marked
//     as made by tierswap (remove_created_dirs() removes it again); its
//     kernel path is appended to *created.
// EPERM when a rule is broken, ENOTDIR when a component is not a directory.
Result<SafeDir> open_safe_dir(const HostFs& fs, const std::string& dir, bool create = false,
                              std::vector<std::string>* created = nullptr);

// Checks what fstat said about a swap file (`display`: its kernel path).
Result<void> check_swap_file_stat(const struct stat& st, const std::string& display);

// Opens entry `name` of `dir` with O_NOFOLLOW and `flags` (O_RDONLY,
// O_RDWR) and checks it by the file rule. ENOENT when it does not exist.
Result<UniqueFd> open_swap_file(const SafeDir& dir, const std::string& name, int flags);

// Removes, bottom up, the empty directories of `dir`'s chain that tierswap
// made (open_safe_dir with create); stops at the first that is not empty or
// not made by tierswap.
void remove_created_dirs(const SafeDir& dir);

// `path` with every symbolic link resolved (absolute targets under the
// root), "." and ".." folded, as the kernel prints it in /proc/swaps; a
// part that does not exist is kept as written. For comparing with
// /proc/swaps and for the journal. No rule is checked here.
std::string resolved_path(const HostFs& fs, const std::string& path);

// "/var/swap/t.swap" -> "/var/swap"; "/t.swap" -> "/".
std::string parent_path(const std::string& path);
// "/var/swap/t.swap" -> "t.swap".
std::string file_name(const std::string& path);

}  // namespace tierswap::swap
