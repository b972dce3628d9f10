// Helpers for the nbd tests: a tierswap-nbd child on a Unix socket in a
// private temp dir, and a raw NBD client for what libnbd refuses to send.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "backends/vram/nbd_protocol.hpp"

// Built with a sanitizer (TIERSWAP_SANITIZE; every target of the tree is,
// tierswap-nbd included): its runtime owns malloc and answers mlock and
// mlockall with success without locking anything.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define TIERSWAP_SANITIZED_TREE 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define TIERSWAP_SANITIZED_TREE 1
#endif
#endif
#ifndef TIERSWAP_SANITIZED_TREE
#define TIERSWAP_SANITIZED_TREE 0
#endif

namespace nbdtest {

namespace nbd = tierswap::vram::nbd;

inline std::string exporter_binary() {
  return TIERSWAP_NBD_BIN;
}

// The same exporter built with the test-only options (--test-fail-offset).
inline std::string exporter_test_binary() {
  return TIERSWAP_NBD_TEST_BIN;
}

inline bool have_tool(const std::string& name) {
  return std::system(("command -v " + name + " >/dev/null 2>&1").c_str()) == 0;
}

struct TempDir {
  std::string path;
  TempDir() {
    char t[] = "/tmp/tsnbd.XXXXXX";
    path = ::mkdtemp(t);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

inline int unix_connect(const std::string& path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// tierswap-nbd as a child process (--no-mlock unless mlock is set, logs to
// <dir>/log).
class Exporter {
 public:
  TempDir dir;
  std::string socket = dir.path + "/nbd.sock";
  std::string log_path = dir.path + "/log";
  std::string binary = exporter_binary();
  bool mlock = false;  // true: the production path (no --no-mlock)
  pid_t pid = -1;

  // extra: more arguments; fds_to_pass: dup'ed to fds 3, 4, ... in the child.
  bool start(std::vector<std::string> extra = {}, const std::string& store = "host",
             const std::string& size = "64M", bool with_socket = true, std::vector<int> fds_to_pass = {}) {
    std::vector<std::string> args = {binary, "--size", size, "--store", store};
    if (!mlock) args.push_back("--no-mlock");
    if (with_socket) {
      args.push_back("--socket");
      args.push_back(socket);
    }
    args.insert(args.end(), extra.begin(), extra.end());
    pid = ::fork();
    if (pid == 0) {
      const int log = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      ::dup2(log, 1);
      ::dup2(log, 2);
      // Out of the way first, so that dup2() onto 3, 4, ... clobbers none.
      for (int& fd : fds_to_pass) fd = ::fcntl(fd, F_DUPFD, 100);
      for (std::size_t i = 0; i < fds_to_pass.size(); ++i) ::dup2(fds_to_pass[i], static_cast<int>(3 + i));
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    if (!with_socket) return pid > 0;
    // The socket is renamed into place only once it listens, so its being
    // there is enough (a probe connection would hold a slot for a moment).
    for (int i = 0; i < 500; ++i) {  // up to 5 s
      struct stat st {};
      if (::stat(socket.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) return true;
      if (!alive()) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }

  bool alive() {
    if (pid <= 0) return false;
    int st = 0;
    const pid_t r = ::waitpid(pid, &st, WNOHANG);
    if (r == pid) {
      status_ = st;
      pid = -1;
      return false;
    }
    return true;
  }

  // Waits up to timeout_ms for exit; the wait status or -1 when still alive.
  int wait_exit(int timeout_ms) {
    for (int i = 0; i < timeout_ms / 10 + 1; ++i) {
      if (!alive()) return status_;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return -1;
  }

  std::string log() const {
    std::ifstream f(log_path);
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
  }

  ~Exporter() {
    if (alive()) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  }

 private:
  int status_ = -1;
};

// ---- raw client ----------------------------------------------------------

inline bool send_all(int fd, const void* p, std::size_t n) {
  auto* b = static_cast<const char*>(p);
  while (n > 0) {
    const ssize_t r = ::send(fd, b, n, MSG_NOSIGNAL);
    if (r <= 0) return false;
    b += r;
    n -= static_cast<std::size_t>(r);
  }
  return true;
}

// Reads n bytes, waiting at most timeout_ms in total.
inline bool recv_all(int fd, void* p, std::size_t n, int timeout_ms = 5000) {
  auto* b = static_cast<char*>(p);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (n > 0) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd pfd{fd, POLLIN, 0};
    if (::poll(&pfd, 1, static_cast<int>(left.count())) <= 0) return false;
    const ssize_t r = ::recv(fd, b, n, 0);
    if (r <= 0) return false;
    b += r;
    n -= static_cast<std::size_t>(r);
  }
  return true;
}

// True when the server closes the connection within timeout_ms (reading and
// discarding anything it still sends).
inline bool closed_by_server(int fd, int timeout_ms = 3000) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  char buf[4096];
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd pfd{fd, POLLIN, 0};
    if (::poll(&pfd, 1, static_cast<int>(left.count())) <= 0) return false;
    const ssize_t r = ::recv(fd, buf, sizeof buf, 0);
    if (r == 0 || (r < 0 && errno == ECONNRESET)) return true;
    if (r < 0) return false;
  }
}

inline void put_option(std::vector<std::byte>& out, std::uint32_t option,
                       const std::vector<std::byte>& data) {
  std::byte h[16];
  nbd::store_be64(h, nbd::kIHaveOpt);
  nbd::store_be32(h + 8, option);
  nbd::store_be32(h + 12, static_cast<std::uint32_t>(data.size()));
  out.insert(out.end(), h, h + 16);
  out.insert(out.end(), data.begin(), data.end());
}

// Reads the 18-byte greeting and sends client flags. false on any mismatch.
inline bool raw_greeting(int fd, std::uint32_t client_flags = nbd::kClientFlagFixedNewstyle |
                                                              nbd::kClientFlagNoZeroes) {
  std::byte g[18];
  if (!recv_all(fd, g, sizeof g)) return false;
  if (nbd::load_be64(g) != nbd::kNbdMagic || nbd::load_be64(g + 8) != nbd::kIHaveOpt) return false;
  std::byte f[4];
  nbd::store_be32(f, client_flags);
  return send_all(fd, f, 4);
}

struct OptReply {
  std::uint32_t option = 0, type = 0;
  std::vector<std::byte> data;
};

inline bool read_opt_reply(int fd, OptReply& r) {
  std::byte h[20];
  if (!recv_all(fd, h, sizeof h)) return false;
  if (nbd::load_be64(h) != nbd::kOptReplyMagic) return false;
  r.option = nbd::load_be32(h + 8);
  r.type = nbd::load_be32(h + 12);
  r.data.resize(nbd::load_be32(h + 16));
  return r.data.empty() || recv_all(fd, r.data.data(), r.data.size());
}

// Completes NBD_OPT_GO on a connected socket; returns fd (in transmission),
// or -1 (fd closed).
inline int raw_go(int fd, std::uint64_t* size = nullptr) {
  if (fd < 0) return -1;
  if (!raw_greeting(fd)) {
    ::close(fd);
    return -1;
  }
  std::vector<std::byte> opt, data(6);
  nbd::store_be32(data.data(), 0);
  nbd::store_be16(data.data() + 4, 0);
  put_option(opt, nbd::kOptGo, data);
  if (!send_all(fd, opt.data(), opt.size())) return -1;
  for (;;) {
    OptReply r;
    if (!read_opt_reply(fd, r)) {
      ::close(fd);
      return -1;
    }
    if (r.type == nbd::kRepInfo && r.data.size() >= 12 && nbd::load_be16(r.data.data()) == nbd::kInfoExport &&
        size)
      *size = nbd::load_be64(r.data.data() + 2);
    if (r.type == nbd::kRepAck) return fd;
    if (r.type != nbd::kRepInfo) {
      ::close(fd);
      return -1;
    }
  }
}

// Connects and completes NBD_OPT_GO; returns the fd (in transmission) or -1.
inline int raw_connect_go(const std::string& socket, std::uint64_t* size = nullptr) {
  return raw_go(unix_connect(socket), size);
}

inline bool raw_request(int fd, std::uint16_t type, std::uint16_t flags, std::uint64_t offset,
                        std::uint32_t length, std::uint64_t cookie,
                        const std::vector<std::byte>& payload = {}) {
  nbd::Request r{flags, type, cookie, offset, length};
  std::byte b[nbd::kRequestSize];
  nbd::serialize_request(r, std::span<std::byte, nbd::kRequestSize>(b, nbd::kRequestSize));
  if (!send_all(fd, b, sizeof b)) return false;
  return payload.empty() || send_all(fd, payload.data(), payload.size());
}

// Reads one simple reply; -1 when none came, else its error field.
inline long raw_reply(int fd, std::uint64_t expect_cookie, std::vector<std::byte>* data = nullptr,
                      int timeout_ms = 5000) {
  std::byte b[nbd::kSimpleReplySize];
  if (!recv_all(fd, b, sizeof b, timeout_ms)) return -1;
  nbd::SimpleReply r;
  if (!nbd::parse_simple_reply(std::span<const std::byte, nbd::kSimpleReplySize>(b, nbd::kSimpleReplySize),
                               r))
    return -1;
  if (r.cookie != expect_cookie) return -1;
  if (r.error == 0 && data != nullptr && !data->empty() &&
      !recv_all(fd, data->data(), data->size(), timeout_ms))
    return -1;
  return r.error;
}

inline std::vector<std::byte> pattern(std::size_t n, unsigned seed) {
  std::vector<std::byte> v(n);
  std::uint32_t x = seed * 2654435761U + 1;
  for (auto& b : v) {
    x = x * 1664525U + 1013904223U;
    b = std::byte(x >> 24);
  }
  return v;
}

}  // namespace nbdtest
