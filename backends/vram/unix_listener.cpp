#include "backends/vram/unix_listener.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <string>

#include "common/refusal.hpp"

namespace tierswap::vram {

namespace {

std::string parent_of(const std::string& path) {
  const auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

bool fill_addr(const std::string& path, sockaddr_un& addr) {
  std::memset(&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) return false;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return true;
}

// Whether something answers at `path` (another exporter).
bool socket_alive(const std::string& path) {
  sockaddr_un addr;
  if (!fill_addr(path, addr)) return false;
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  const bool alive = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return alive;
}

}  // namespace

Result<int> listen_private_unix(const std::string& path, int backlog) {
  const std::string dir = parent_of(path);
  const std::string base = path.substr(path.rfind('/') == std::string::npos ? 0 : path.rfind('/') + 1);
  if (base.empty() || base == "." || base == "..")
    return refusal(ErrorKind::invalid_argument, EINVAL,
                   "--socket " + path + ": needs a file name after the directory");
  auto bad = [&](int err, const std::string& what) {
    return kernel_error(err, "--socket " + path + ": " + what);
  };
  auto refuse = [&](const std::string& what) {
    return refusal(ErrorKind::invalid_argument, EPERM, "--socket " + path + ": " + what);
  };

  // The directory is opened once, without following a link in its last
  // component, and everything after goes through that descriptor: a link or
  // another directory planted at `dir` later does not redirect anything.
  constexpr int kDirFlags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
  int dfd = ::open(dir.c_str(), kDirFlags);
  if (dfd < 0 && errno == ENOENT) {
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
      return bad(errno, "cannot create directory " + dir + " (mode 0700)");
    dfd = ::open(dir.c_str(), kDirFlags);
  }
  if (dfd < 0) {
    const int err = errno;
    struct stat lst {};
    if (err == ELOOP || (::lstat(dir.c_str(), &lst) == 0 && S_ISLNK(lst.st_mode)))
      return bad(ELOOP,
                 "directory " + dir + " is a symbolic link: refusing to follow it (give the real path)");
    if (err == ENOTDIR) return bad(ENOTDIR, dir + " is not a directory");
    return bad(err, "cannot open directory " + dir);
  }
  struct DirFd {
    int fd;
    ~DirFd() { ::close(fd); }
  } dir_guard{dfd};
  struct stat st {};
  if (::fstat(dfd, &st) != 0) return bad(errno, "fstat " + dir);
  if (st.st_uid != ::geteuid())
    return refuse("directory " + dir + " belongs to uid " + std::to_string(st.st_uid) + ", not to this user");
  if ((st.st_mode & 077) != 0)
    return refuse("directory " + dir + " is open to other users (chmod 0700 " + dir + ")");

  sockaddr_un addr;
  if (!fill_addr(path, addr)) return bad(ENAMETOOLONG, "path too long for a Unix socket");
  if (socket_alive(path)) return bad(EADDRINUSE, "another server is listening there");

  // A private directory next to `path`, made through dfd. bind() has no *at
  // form, so it takes the path; afterwards the directory it bound in is
  // checked to be the one made here (device and inode through dfd), so a
  // swapped `dir` is caught. No umask(): the socket is born in a 0700
  // directory nobody else can enter, and gets 0600 before it is renamed out.
  std::string tmp_name;
  for (unsigned attempt = 0;; ++attempt) {
    char name[32];
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    std::snprintf(name, sizeof name, ".tierswap-nbd.%x.%lx", static_cast<unsigned>(::getpid()),
                  static_cast<unsigned long>(ts.tv_nsec) ^ attempt);
    if (::mkdirat(dfd, name, 0700) == 0) {
      tmp_name = name;
      break;
    }
    if (errno != EEXIST || attempt >= 100) return bad(errno, "cannot create a private directory in " + dir);
  }
  const int tfd = ::openat(dfd, tmp_name.c_str(), kDirFlags);
  if (tfd < 0) {
    const int err = errno;
    ::unlinkat(dfd, tmp_name.c_str(), AT_REMOVEDIR);
    return bad(err, "cannot open the private directory " + dir + "/" + tmp_name);
  }
  DirFd tmp_guard{tfd};
  const std::string tmp_dir = dir + "/" + tmp_name;
  auto cleanup = [&] {
    ::unlinkat(tfd, "s", 0);  // only there when something failed
    ::unlinkat(dfd, tmp_name.c_str(), AT_REMOVEDIR);
  };
  sockaddr_un tmp_addr;
  if (!fill_addr(tmp_dir + "/s", tmp_addr)) {
    cleanup();
    return bad(ENAMETOOLONG, "path too long for a Unix socket");
  }
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    const int err = errno;
    cleanup();
    return bad(err, "socket()");
  }
  std::string what;
  struct stat made {
  }, bound{};
  if (::bind(fd, reinterpret_cast<sockaddr*>(&tmp_addr), sizeof tmp_addr) != 0) {
    what = "bind";
  } else if (::fstat(tfd, &made) != 0 || ::lstat(tmp_dir.c_str(), &bound) != 0 ||
             made.st_dev != bound.st_dev || made.st_ino != bound.st_ino) {
    what = "directory " + dir + " was replaced while the socket was being made";
    errno = EXDEV;
  } else if (::fchmodat(tfd, "s", 0600, 0) != 0) {
    what = "chmod 0600";
  } else if (::listen(fd, backlog) != 0) {
    what = "listen";
  } else if (::renameat(tfd, "s", dfd, base.c_str()) != 0) {
    what = "rename into place";
  }
  const int err = errno;
  cleanup();
  if (!what.empty()) {
    ::close(fd);
    return bad(err, what);
  }
  return fd;
}

Result<void> check_peer(int fd, unsigned own_uid) {
  ucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return kernel_error(errno, "SO_PEERCRED");
  if (cred.uid == 0 || cred.uid == own_uid) return {};
  return refusal(ErrorKind::permission_denied, EPERM,
                 "peer pid " + std::to_string(cred.pid) + " uid " + std::to_string(cred.uid) +
                     " is neither root nor uid " + std::to_string(own_uid));
}

}  // namespace tierswap::vram
