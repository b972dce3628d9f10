#include "backends/vram/unix_listener.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

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
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) {
    if (errno != ENOENT || ::mkdir(dir.c_str(), 0700) != 0 || ::stat(dir.c_str(), &st) != 0)
      return fail(errno, "--socket " + path + ": cannot create directory " + dir + " (mode 0700)");
  }
  if (!S_ISDIR(st.st_mode)) return fail(ENOTDIR, "--socket " + path + ": " + dir + " is not a directory");
  if (st.st_uid != ::geteuid())
    return fail(EPERM, "--socket " + path + ": directory " + dir + " belongs to uid " +
                           std::to_string(st.st_uid) + ", not to this user");
  if ((st.st_mode & 077) != 0)
    return fail(EPERM, "--socket " + path + ": directory " + dir + " is open to other users (chmod 0700 " +
                           dir + ")");

  sockaddr_un addr;
  if (!fill_addr(path, addr))
    return fail(ENAMETOOLONG, "--socket " + path + ": path too long for a Unix socket");
  if (socket_alive(path)) return fail(EADDRINUSE, "--socket " + path + ": another server is listening there");

  std::string tmpl = dir + "/.tierswap-nbd.XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr)
    return fail(errno, "--socket " + path + ": cannot create a private directory in " + dir);
  const std::string tmp_sock = tmpl + "/s";
  sockaddr_un tmp_addr;
  if (!fill_addr(tmp_sock, tmp_addr)) {
    ::rmdir(tmpl.c_str());
    return fail(ENAMETOOLONG, "--socket " + path + ": path too long for a Unix socket");
  }

  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    ::rmdir(tmpl.c_str());
    return fail(errno, "--socket " + path + ": socket()");
  }
  const mode_t old_mask = ::umask(077);
  int rc = ::bind(fd, reinterpret_cast<sockaddr*>(&tmp_addr), sizeof tmp_addr);
  const int bind_err = errno;
  ::umask(old_mask);
  std::string what;
  if (rc != 0) {
    errno = bind_err;
    what = "bind";
  } else if (::chmod(tmp_sock.c_str(), 0600) != 0) {
    what = "chmod 0600";
  } else if (::listen(fd, backlog) != 0) {
    what = "listen";
  } else if (::rename(tmp_sock.c_str(), path.c_str()) != 0) {
    what = "rename into place";
  }
  const int err = errno;
  if (!what.empty()) {
    ::close(fd);
    ::unlink(tmp_sock.c_str());
    ::rmdir(tmpl.c_str());
    return fail(err, "--socket " + path + ": " + what);
  }
  ::rmdir(tmpl.c_str());
  return fd;
}

Result<void> check_peer(int fd, unsigned own_uid) {
  ucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return fail(errno, "SO_PEERCRED");
  if (cred.uid == 0 || cred.uid == own_uid) return {};
  return fail(EPERM, "peer pid " + std::to_string(cred.pid) + " uid " + std::to_string(cred.uid) +
                         " is neither root nor uid " + std::to_string(own_uid));
}

}  // namespace tierswap::vram
