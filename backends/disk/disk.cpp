#include "backends/disk/disk.hpp"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <filesystem>
#include <sstream>

#include "backends/hostfs/paths.hpp"
#include "backends/hostfs/seq_escape.hpp"
#include "backends/swap/safe_path.hpp"
#include "common/refusal.hpp"

namespace tierswap::disk {

namespace fsys = std::filesystem;

namespace {
constexpr long kBtrfsMagic = 0x9123683E;

std::string parent_of(const std::string& path) {
  return swap::parent_path(path);
}
}  // namespace

std::vector<Mount> parse_mounts(std::string_view text) {
  std::vector<Mount> out;
  std::istringstream in{std::string(text)};
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    Mount m;
    if (ls >> m.source >> m.target >> m.fstype) {
      m.source = unescape_seq_path(m.source);
      m.target = unescape_seq_path(m.target);
      out.push_back(std::move(m));
    }
  }
  return out;
}

FileProbe probe_file(const HostFs& fs, const std::string& path) {
  FileProbe p;
  p.dir = parent_of(path);
  p.path = path;
  const auto problem = [&](const Error& e) {
    p.problem = e.code == EPERM ? e.message : e.describe();
    return p;
  };
  auto dir = swap::open_safe_dir(fs, p.dir);
  if (!dir) return problem(dir.error());
  // Free space where the file will be: the deepest directory that exists.
  struct statvfs sv {};
  if (::fstatvfs(dir->fd(), &sv) == 0) p.free_bytes = static_cast<std::uint64_t>(sv.f_bavail) * sv.f_frsize;
  std::string d = dir->path;
  for (const auto& m : dir->missing) {
    d += (d == "/" ? "" : "/") + m;
    p.missing_dirs.push_back(d);
  }
  p.dir = d;
  p.dir_exists = dir->missing.empty();
  p.path = (d == "/" ? "" : d) + "/" + swap::file_name(path);
  if (!p.dir_exists) return p;

  const auto name = swap::file_name(path);
  struct stat st {};
  if (::fstatat(dir->fd(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno != ENOENT) return problem(Error{errno, p.path});
    return p;
  }
  p.exists = true;
  if (S_ISLNK(st.st_mode)) {
    auto r = swap::check_swap_file_stat(st, p.path);
    return problem(r.error());
  }
  p.regular = S_ISREG(st.st_mode);
  if (!p.regular) return p;
  swap::UniqueFd f{::openat(dir->fd(), name.c_str(), O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC)};
  if (!f || ::fstat(f.get(), &st) != 0) return problem(Error{errno, p.path});
  p.size = static_cast<std::uint64_t>(st.st_size);
  p.has_holes = static_cast<std::uint64_t>(st.st_blocks) * 512 < p.size;
  auto first = swap::probe_first_page(f.get(), p.path, swap::system_page_size());
  p.first = first ? *first : swap::FirstPage::other;
  // A file that holds something else is refused for that reason (and never
  // touched); one that would be swapped on must be root's alone.
  if (p.first == swap::FirstPage::ours || p.first == swap::FirstPage::foreign_swap)
    if (auto r = swap::check_swap_file_stat(st, p.path); !r) return problem(r.error());
  return p;
}

Result<std::string> resolve_partition(const HostFs& fs, const std::string& device) {
  std::string link;
  if (device.starts_with("UUID="))
    link = std::string(paths::dev_disk_by_uuid) + "/" + device.substr(5);
  else if (device.starts_with("LABEL="))
    link = std::string(paths::dev_disk_by_label) + "/" + device.substr(6);
  else
    return swap::resolved_path(fs, device);
  std::error_code ec;
  const auto real = fs.resolve(link);
  if (!fsys::is_symlink(real, ec) && !fsys::exists(real, ec))
    return kernel_error(ENOENT, device + ": no " + link);
  return swap::resolved_path(fs, link);
}

bool is_mounted(const std::vector<Mount>& mounts, const std::string& dev) {
  for (const auto& m : mounts)
    if (m.source == dev) return true;
  return false;
}

namespace {
Result<void> allocate(int fd, const std::string& path, std::uint64_t size) {
  struct statfs sf {};
  if (::fstatfs(fd, &sf) == 0 && static_cast<long>(sf.f_type) == kBtrfsMagic) {
    int flags = 0;
    if (::ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0) {
      flags |= FS_NOCOW_FL;
      if (::ioctl(fd, FS_IOC_SETFLAGS, &flags) != 0)
        return kernel_error(errno, path + ": setting No-CoW (chattr +C)");
    }
  }
  if (::fallocate(fd, 0, 0, static_cast<off_t>(size)) != 0)
    return kernel_error(errno, path + ": fallocate " + std::to_string(size) + " bytes");
  return {};
}
}  // namespace

Result<void> create_swap_file(const HostFs& fs, const std::string& path, std::uint64_t size) {
  std::vector<std::string> created;
  auto dir = swap::open_safe_dir(fs, parent_of(path), true, &created);
  if (!dir) return std::unexpected(dir.error());
  const auto name = swap::file_name(path);
  // One descriptor from creation to the header: nothing is reopened by path.
  swap::UniqueFd fd{
      ::openat(dir->fd(), name.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC, 0600)};
  if (!fd) {
    const int e = errno;
    swap::remove_created_dirs(*dir);
    return kernel_error(e, path);
  }
  Result<void> r;
  if (::fchmod(fd.get(), 0600) != 0) r = kernel_error(errno, path + ": chmod 0600");
  if (r) r = allocate(fd.get(), path, size);
  if (r) r = swap::write_swap_header(fd.get(), path, size, swap::system_page_size());
  if (!r) {
    ::unlinkat(dir->fd(), name.c_str(), 0);
    swap::remove_created_dirs(*dir);
  }
  return r;
}

namespace {
// Our swap file `path`, opened through verified directories and checked.
Result<swap::UniqueFd> open_ours(const swap::SafeDir& dir, const std::string& path, int flags,
                                 const char* what) {
  auto fd = swap::open_swap_file(dir, swap::file_name(path), flags);
  if (!fd) return std::unexpected(fd.error());
  auto kind = swap::probe_first_page(fd->get(), path, swap::system_page_size());
  if (!kind) return std::unexpected(kind.error());
  if (*kind != swap::FirstPage::ours)
    return refusal(ErrorKind::invalid_config, EEXIST,
                   path + " holds " + swap::to_string(*kind) + ": refusing to " + what + " it");
  return fd;
}
}  // namespace

Result<void> resize_swap_file(const HostFs& fs, const std::string& path, std::uint64_t size) {
  auto dir = swap::open_safe_dir(fs, parent_of(path));
  if (!dir) return std::unexpected(dir.error());
  if (!dir->missing.empty()) return kernel_error(ENOENT, path);
  // Checked on the descriptor before anything is changed through it.
  auto fd = open_ours(*dir, path, O_RDWR, "resize");
  if (!fd) return std::unexpected(fd.error());
  if (::ftruncate(fd->get(), static_cast<off_t>(size)) != 0) return kernel_error(errno, path + ": truncate");
  if (auto r = allocate(fd->get(), path, size); !r) return r;
  return swap::write_swap_header(fd->get(), path, size, swap::system_page_size());
}

Result<void> remove_swap_file(const HostFs& fs, const std::string& path) {
  auto dir = swap::open_safe_dir(fs, parent_of(path));
  if (!dir) return std::unexpected(dir.error());
  if (!dir->missing.empty()) return {};  // gone with its directory
  const auto name = swap::file_name(path);
  struct stat st {};
  if (::fstatat(dir->fd(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno != ENOENT) return kernel_error(errno, path);
  } else {
    if (S_ISLNK(st.st_mode))
      return refusal(ErrorKind::invalid_config, EPERM,
                     path + " is a symlink: tierswap removes only the swap file it made");
    // The first page says whether it is ours (who owns it or its mode does
    // not matter for removing it: it sits in a directory only root can change).
    swap::UniqueFd fd{::openat(dir->fd(), name.c_str(), O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC)};
    if (!fd) return kernel_error(errno, path);
    auto kind = swap::probe_first_page(fd.get(), path, swap::system_page_size());
    if (!kind) return std::unexpected(kind.error());
    if (*kind != swap::FirstPage::ours)
      return refusal(ErrorKind::invalid_config, EEXIST,
                     path + " holds " + swap::to_string(*kind) + ": refusing to remove it");
    if (::unlinkat(dir->fd(), name.c_str(), 0) != 0) return kernel_error(errno, path);
  }
  swap::remove_created_dirs(*dir);
  return {};
}

}  // namespace tierswap::disk
