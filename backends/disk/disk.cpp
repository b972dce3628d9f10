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

namespace tierswap::disk {

namespace fsys = std::filesystem;

namespace {
constexpr long kBtrfsMagic = 0x9123683E;

std::string parent_of(const std::string& path) {
  auto p = fsys::path(path).parent_path().string();
  return p.empty() ? "/" : p;
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
  struct stat st {};
  const auto real_dir = fs.resolve(p.dir);
  p.dir_exists = ::stat(real_dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
  if (p.dir_exists) {
    struct statvfs sv {};
    if (::statvfs(real_dir.c_str(), &sv) == 0)
      p.free_bytes = static_cast<std::uint64_t>(sv.f_bavail) * sv.f_frsize;
  }
  const auto real = fs.resolve(path);
  if (::stat(real.c_str(), &st) != 0) return p;
  p.exists = true;
  p.regular = S_ISREG(st.st_mode);
  p.size = static_cast<std::uint64_t>(st.st_size);
  p.has_holes = p.regular && static_cast<std::uint64_t>(st.st_blocks) * 512 < p.size;
  if (p.regular) {
    auto f = swap::probe_first_page(real.string(), swap::system_page_size());
    p.first = f ? *f : swap::FirstPage::other;
  }
  return p;
}

Result<std::string> resolve_partition(const HostFs& fs, const std::string& device) {
  std::string link;
  if (device.starts_with("UUID="))
    link = std::string(paths::dev_disk_by_uuid) + "/" + device.substr(5);
  else if (device.starts_with("LABEL="))
    link = std::string(paths::dev_disk_by_label) + "/" + device.substr(6);
  else
    return device;
  std::error_code ec;
  const auto real = fs.resolve(link);
  if (!fsys::is_symlink(real, ec) && !fsys::exists(real, ec)) return fail(ENOENT, device + ": no " + link);
  auto target = fsys::read_symlink(real, ec);
  if (ec) return link;  // not a link: use it as is
  // "../../sdb2" relative to the by-* directory.
  return (fsys::path(link).parent_path() / target).lexically_normal().string();
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
        return fail(errno, path + ": setting No-CoW (chattr +C)");
    }
  }
  if (::fallocate(fd, 0, 0, static_cast<off_t>(size)) != 0)
    return fail(errno, path + ": fallocate " + std::to_string(size) + " bytes");
  return {};
}
}  // namespace

Result<void> create_swap_file(const HostFs& fs, const std::string& path, std::uint64_t size) {
  const auto real = fs.resolve(path).string();
  const int fd = ::open(real.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return fail(errno, path);
  ::fchmod(fd, 0600);
  auto r = allocate(fd, path, size);
  ::close(fd);
  if (r) r = swap::write_swap_header(real, path, size, swap::system_page_size());
  if (!r) ::unlink(real.c_str());
  return r;
}

Result<void> resize_swap_file(const HostFs& fs, const std::string& path, std::uint64_t size) {
  const auto real = fs.resolve(path).string();
  auto kind = swap::probe_first_page(real, swap::system_page_size());
  if (!kind) return std::unexpected(kind.error());
  if (*kind != swap::FirstPage::ours)
    return fail(EEXIST, path + " holds " + swap::to_string(*kind) + ": refusing to resize it");
  const int fd = ::open(real.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return fail(errno, path);
  Result<void> r;
  if (::ftruncate(fd, static_cast<off_t>(size)) != 0) r = fail(errno, path + ": truncate");
  if (r) r = allocate(fd, path, size);
  ::close(fd);
  if (r) r = swap::write_swap_header(real, path, size, swap::system_page_size());
  return r;
}

Result<void> remove_swap_file(const HostFs& fs, const std::string& path) {
  const auto real = fs.resolve(path).string();
  auto kind = swap::probe_first_page(real, swap::system_page_size());
  if (!kind)
    return kind.error().code == ENOENT ? Result<void>{} : Result<void>(std::unexpected(kind.error()));
  if (*kind != swap::FirstPage::ours)
    return fail(EEXIST, path + " holds " + swap::to_string(*kind) + ": refusing to remove it");
  if (::unlink(real.c_str()) != 0) return fail(errno, path);
  return {};
}

}  // namespace tierswap::disk
