#include "backends/swap/safe_path.hpp"

#include <fcntl.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <deque>
#include <filesystem>

#include "common/refusal.hpp"

namespace tierswap::swap {

namespace {

// Marks a directory tierswap made, so that teardown removes it and nothing
// else. A trusted.* attribute: only root (CAP_SYS_ADMIN) can set one.
constexpr const char* kCreatedMark = "trusted.tierswap.created";
// As the kernel's own limit on links followed in one lookup.
constexpr int kMaxLinks = 40;

std::string octal_mode(mode_t m) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(m & 07777));
  return buf;
}

std::deque<std::string> split(std::string_view p) {
  std::deque<std::string> out;
  size_t i = 0;
  while (i < p.size()) {
    const size_t j = p.find('/', i);
    const auto part = p.substr(i, j == std::string_view::npos ? std::string_view::npos : j - i);
    if (!part.empty() && part != ".") out.emplace_back(part);
    if (j == std::string_view::npos) break;
    i = j + 1;
  }
  return out;
}

Result<void> check_dir_stat(const struct stat& st, const std::string& display) {
  if (st.st_uid != 0)
    return refusal(ErrorKind::invalid_config, EPERM,
                   "directory " + display + " is owned by uid " + std::to_string(st.st_uid) +
                       ", not root: its owner could replace the swap file (chown root " + display + ")");
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0 && (st.st_mode & S_ISVTX) == 0)
    return refusal(ErrorKind::invalid_config, EPERM,
                   "directory " + display + " is writable by group or others (mode " +
                       octal_mode(st.st_mode) + "): they could replace the swap file (chmod go-w " + display +
                       ")");
  return {};
}

// Where a walk is: the directories from its base down, and their names.
struct Cursor {
  std::vector<UniqueFd> chain;  // chain[0]: the base (absolute link targets restart there)
  std::vector<std::string> names;
  std::string prefix;  // display path of the base ("" for "/")

  [[nodiscard]] std::string display(const std::string& name = {}) const {
    std::string p = prefix;
    for (const auto& n : names) p += "/" + n;
    if (!name.empty()) p += "/" + name;
    return p.empty() ? "/" : p;
  }
};

struct WalkOptions {
  bool verify = true;   // apply the rules
  bool create = false;  // make missing directories (root, 0700, marked)
  bool leaf = false;    // the last component may be something other than a directory
  std::vector<std::string>* created = nullptr;
};

struct WalkEnd {
  std::deque<std::string> missing;  // components from the first that does not exist
  std::string leaf;                 // the last component, when it is not a directory (leaf option)
};

Result<UniqueFd> make_dir(int at, const std::string& name, const std::string& display) {
  if (::mkdirat(at, name.c_str(), 0700) != 0) return kernel_error(errno, "creating directory " + display);
  UniqueFd d{::openat(at, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)};
  if (!d) return kernel_error(errno, display);
  // 0700 whatever the umask; the mark is best effort: a file system without
  // extended attributes keeps the directory after teardown.
  if (::fchmod(d.get(), 0700) != 0) return kernel_error(errno, "chmod 0700 " + display);
  (void)::fsetxattr(d.get(), kCreatedMark, "1", 1, 0);
  return d;
}

// Walks `comps` from the cursor's last directory.
Result<WalkEnd> walk(Cursor& c, std::deque<std::string> comps, const WalkOptions& o) {
  int links = 0;
  while (!comps.empty()) {
    std::string name = std::move(comps.front());
    comps.pop_front();
    if (name == "..") {
      if (c.chain.size() > 1) {
        c.chain.pop_back();
        c.names.pop_back();
      }
      continue;
    }
    const int at = c.chain.back().get();
    const std::string here = c.display(name);
    struct stat st {};
    if (::fstatat(at, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno != ENOENT) return kernel_error(errno, here);
      if (!o.create || (o.leaf && comps.empty())) {
        comps.push_front(std::move(name));
        return WalkEnd{.missing = std::move(comps)};
      }
      auto made = make_dir(at, name, here);
      if (!made) return std::unexpected(made.error());
      if (o.created) o.created->push_back(here);
      comps.push_front(std::move(name));  // walk into it like any other
      continue;
    }
    if (S_ISLNK(st.st_mode)) {
      if (o.verify && st.st_uid != 0)
        return refusal(ErrorKind::invalid_config, EPERM,
                       here + " is a symlink owned by uid " + std::to_string(st.st_uid) +
                           ", not root: its owner could point it elsewhere");
      if (++links > kMaxLinks) return kernel_error(ELOOP, here);
      std::string target(PATH_MAX, '\0');
      const ssize_t n = ::readlinkat(at, name.c_str(), target.data(), target.size());
      if (n < 0) return kernel_error(errno, here);
      target.resize(static_cast<size_t>(n));
      auto more = split(target);
      comps.insert(comps.begin(), more.begin(), more.end());
      if (target.starts_with("/")) {
        c.chain.resize(1);
        c.names.clear();
      }
      continue;
    }
    if (!S_ISDIR(st.st_mode)) {
      if (o.leaf && comps.empty()) return WalkEnd{.leaf = name};
      return kernel_error(ENOTDIR, here + " is not a directory");
    }
    UniqueFd d{::openat(at, name.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)};
    if (!d) return kernel_error(errno, here);
    if (::fstat(d.get(), &st) != 0) return kernel_error(errno, here);
    if (o.verify)
      if (auto r = check_dir_stat(st, here); !r) return std::unexpected(r.error());
    c.chain.push_back(std::move(d));
    c.names.push_back(std::move(name));
  }
  return WalkEnd{};
}

// A cursor at the root of the kernel paths, reached by the rules (under a
// fake root, its ancestors are checked from the real "/").
Result<Cursor> open_root(const HostFs& fs, bool verify) {
  Cursor real;
  real.chain.emplace_back(::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!real.chain[0]) return kernel_error(errno, "/");
  struct stat st {};
  if (::fstat(real.chain[0].get(), &st) != 0) return kernel_error(errno, "/");
  if (verify)
    if (auto r = check_dir_stat(st, "/"); !r) return std::unexpected(r.error());
  if (fs.is_real_root()) return real;
  std::error_code ec;
  const auto root = std::filesystem::absolute(fs.root(), ec);  // --root may be relative to the cwd
  if (ec) return kernel_error(ec.value(), fs.root().string());
  auto end = walk(real, split(root.string()), WalkOptions{.verify = verify});
  if (!end) return std::unexpected(end.error());
  if (!end->missing.empty()) return kernel_error(ENOENT, real.display(end->missing.front()));
  Cursor c;
  c.prefix = "";
  c.chain.push_back(std::move(real.chain.back()));
  return c;
}

}  // namespace

UniqueFd& UniqueFd::operator=(UniqueFd&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.release();
  }
  return *this;
}

UniqueFd::~UniqueFd() {
  if (fd_ >= 0) ::close(fd_);
}

std::string parent_path(const std::string& path) {
  auto p = std::filesystem::path(path).parent_path().string();
  return p.empty() ? "/" : p;
}

std::string file_name(const std::string& path) {
  return std::filesystem::path(path).filename().string();
}

Result<SafeDir> open_safe_dir(const HostFs& fs, const std::string& dir, bool create,
                              std::vector<std::string>* created) {
  auto c = open_root(fs, true);
  if (!c) return std::unexpected(c.error());
  auto end = walk(*c, split(dir), WalkOptions{.verify = true, .create = create, .created = created});
  if (!end) return std::unexpected(end.error());
  SafeDir d;
  d.path = c->display();
  d.chain = std::move(c->chain);
  d.names = std::move(c->names);
  d.missing.assign(end->missing.begin(), end->missing.end());
  return d;
}

Result<void> check_swap_file_stat(const struct stat& st, const std::string& display) {
  if (S_ISLNK(st.st_mode))
    return refusal(ErrorKind::invalid_config, EPERM,
                   display + " is a symlink: a swap file must be a regular file (name the file itself)");
  if (!S_ISREG(st.st_mode))
    return refusal(ErrorKind::invalid_config, EPERM, display + " is not a regular file");
  if (st.st_uid != 0)
    return refusal(ErrorKind::invalid_config, EPERM,
                   display + " is owned by uid " + std::to_string(st.st_uid) +
                       ", not root: its owner could read every page swapped to it (chown root " + display +
                       ")");
  if ((st.st_mode & 07077) != 0)
    return refusal(ErrorKind::invalid_config, EPERM,
                   display + " has mode " + octal_mode(st.st_mode) +
                       ": a swap file must be 0600, or others could read every page swapped to it "
                       "(chmod 0600 " +
                       display + ")");
  return {};
}

Result<UniqueFd> open_swap_file(const SafeDir& dir, const std::string& name, int flags) {
  const std::string display = (dir.path == "/" ? "" : dir.path) + "/" + name;
  struct stat st {};
  if (::fstatat(dir.fd(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return kernel_error(errno, display);
  if (auto r = check_swap_file_stat(st, display); !r) return std::unexpected(r.error());
  UniqueFd f{::openat(dir.fd(), name.c_str(), flags | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC)};
  if (!f) {
    const int e = errno;
    return e == ELOOP ? refusal(ErrorKind::invalid_config, EPERM, display + " is a symlink")
                      : kernel_error(e, display);
  }
  // What was opened is what is checked (the entry may have changed since fstatat).
  if (::fstat(f.get(), &st) != 0) return kernel_error(errno, display);
  if (auto r = check_swap_file_stat(st, display); !r) return std::unexpected(r.error());
  return f;
}

void remove_created_dirs(const SafeDir& dir) {
  for (size_t i = dir.names.size(); i > 0; --i) {
    const int parent = dir.chain[i - 1].get();
    const char* name = dir.names[i - 1].c_str();
    UniqueFd d{::openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)};
    char v = 0;
    if (!d || ::fgetxattr(d.get(), kCreatedMark, &v, 1) != 1) return;
    if (::unlinkat(parent, name, AT_REMOVEDIR) != 0) return;  // not empty: still in use
  }
}

std::string resolved_path(const HostFs& fs, const std::string& path) {
  const std::string normal = std::filesystem::path(path).lexically_normal().string();
  auto c = open_root(fs, false);
  if (!c) return normal;
  auto end = walk(*c, split(path), WalkOptions{.verify = false, .leaf = true});
  if (!end) return normal;
  std::filesystem::path out = c->display();
  for (const auto& m : end->missing) out /= m;
  if (!end->leaf.empty()) out /= end->leaf;
  return out.lexically_normal().string();
}

}  // namespace tierswap::swap
