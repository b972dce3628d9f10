#include "backends/hostfs/host_fs.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <system_error>

#include "common/refusal.hpp"

namespace tierswap {

HostFs::HostFs(std::filesystem::path root) : root_(std::move(root)) {
  if (root_.empty()) root_ = "/";
}

std::filesystem::path HostFs::resolve(std::string_view kernel_path) const {
  if (is_real_root()) return std::filesystem::path(kernel_path);
  std::string_view rel = kernel_path;
  while (!rel.empty() && rel.front() == '/') rel.remove_prefix(1);
  return root_ / rel;
}

Result<std::string> HostFs::read(std::string_view kernel_path) const {
  const auto p = resolve(kernel_path);
  const int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return kernel_error(errno, std::string(kernel_path));
  std::string out;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int e = errno;
      ::close(fd);
      return kernel_error(e, std::string(kernel_path));
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

Result<std::string> HostFs::read_value(std::string_view kernel_path) const {
  auto r = read(kernel_path);
  if (!r) return r;
  std::string& s = *r;
  const auto not_space = [](unsigned char c) { return !std::isspace(c); };
  s.erase(s.begin(), std::find_if(s.begin(), s.end(), not_space));
  s.erase(std::find_if(s.rbegin(), s.rend(), not_space).base(), s.end());
  return r;
}

Result<long long> HostFs::read_int(std::string_view kernel_path) const {
  auto r = read_value(kernel_path);
  if (!r) return std::unexpected(r.error());
  long long v = 0;
  const auto* b = r->data();
  const auto* e = r->data() + r->size();
  const auto [ptr, ec] = std::from_chars(b, e, v);
  if (ec != std::errc() || ptr != e)
    return refusal(ErrorKind::protocol, EINVAL,
                   std::string(kernel_path) + ": \"" + *r + "\" is not an integer");
  return v;
}

Result<void> HostFs::write(std::string_view kernel_path, std::string_view value) const {
  const auto p = resolve(kernel_path);
  const auto what = std::string(kernel_path) + ": \"" + std::string(value) + "\"";
  const int fd = ::open(p.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
  if (fd < 0) return kernel_error(errno, what);
  ssize_t n;
  do {
    n = ::write(fd, value.data(), value.size());
  } while (n < 0 && errno == EINTR);
  const int e = errno;
  ::close(fd);
  if (n < 0) return kernel_error(e, what);
  if (static_cast<size_t>(n) != value.size()) return kernel_error(EIO, what + " (short write)");
  return {};
}

bool HostFs::exists(std::string_view kernel_path) const {
  std::error_code ec;
  return std::filesystem::exists(resolve(kernel_path), ec);
}

Result<std::vector<std::string>> HostFs::list(std::string_view kernel_dir) const {
  std::error_code ec;
  std::vector<std::string> names;
  std::filesystem::directory_iterator it(resolve(kernel_dir), ec);
  if (ec) return kernel_error(ec.value(), std::string(kernel_dir));
  for (const auto& entry : it) names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace tierswap
