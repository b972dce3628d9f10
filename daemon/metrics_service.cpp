#include "daemon/metrics_service.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "backends/swap/safe_path.hpp"
#include "config/metrics_settings.hpp"
#include "metrics/prometheus_text.hpp"

namespace tierswap {

struct MetricsService::Connection {
  MetricsService* owner = nullptr;
  int fd = -1;
  sd_event_source* io = nullptr;
  sd_event_source* deadline = nullptr;
  std::string in;   // request head read so far
  std::string out;  // answer left to send
  bool answered = false;
};

namespace {

constexpr std::uint64_t usec(std::chrono::seconds s) {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(s).count());
}

std::string http(int code, const char* reason, std::string_view type, const std::string& body, bool head) {
  std::string r = "HTTP/1.1 " + std::to_string(code) + " " + reason +
                  "\r\nContent-Type: " + std::string(type) +
                  "\r\nContent-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n";
  if (!head) r += body;
  return r;
}

// The textfile's directory (kernel path `dir`, under the HostFs root),
// opened one component at a time from "/" with O_NOFOLLOW: no symbolic link
// on the way is followed. The directory itself must be owned by root and
// writable by nobody else; its ancestors may belong to anyone (Debian's
// /var/lib/prometheus belongs to the prometheus user): a descriptor walk
// cannot be redirected by them, and the check is made on the descriptor
// that is then written through. ENOENT names what is missing.
Result<swap::UniqueFd> open_textfile_dir(const HostFs& fs, const std::string& dir) {
  const std::string full = fs.resolve(dir).lexically_normal().string();
  swap::UniqueFd at{::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC)};
  if (!at) return fail(errno, "/");
  std::string here;
  for (std::size_t i = 1; i < full.size();) {
    const std::size_t j = std::min(full.find('/', i), full.size());
    const std::string part = full.substr(i, j - i);
    i = j + 1;
    if (part.empty()) continue;
    here += "/" + part;
    const int fd = ::openat(at.get(), part.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
      const int e = errno;
      struct stat st {};
      if (e == ENOENT)
        return fail(ENOENT, "directory " + dir + " does not exist (tierswapd does not create it; " +
                                "node_exporter's --collector.textfile.directory)");
      if (::fstatat(at.get(), part.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
        return fail(EPERM, here + " is a symbolic link: write the textfile path without links");
      return fail(e, here);
    }
    at = swap::UniqueFd{fd};
  }
  struct stat st {};
  if (::fstat(at.get(), &st) != 0) return fail(errno, dir);
  if (st.st_uid != 0)
    return fail(EPERM, "directory " + dir + " is owned by uid " + std::to_string(st.st_uid) +
                           ", not root: its owner could put a link where tierswapd writes (chown root " +
                           dir + ")");
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0)
    return fail(EPERM, "directory " + dir + " is writable by group or others: they could put a link " +
                           "where tierswapd writes (chmod go-w " + dir + ")");
  return at;
}

}  // namespace

MetricsService::MetricsService(sd_event* loop, const HostFs& fs, MetricsOptions opts)
    : loop_(sd_event_ref(loop)), fs_(fs), opts_(std::move(opts)) {}

MetricsService::~MetricsService() {
  stop_listening();
  if (timer_src_) sd_event_source_disable_unref(timer_src_);
  if (current_.textfile) remove_textfile(*current_.textfile);
  sd_event_unref(loop_);
}

Result<std::unique_ptr<MetricsService>> MetricsService::attach(sd_event* loop, const HostFs& fs,
                                                               MetricsOptions opts) {
  std::unique_ptr<MetricsService> m(new MetricsService(loop, fs, std::move(opts)));
  auto on_timer = [](sd_event_source* s, std::uint64_t t, void* u) {
    static_cast<MetricsService*>(u)->on_timer();
    sd_event_source_set_time(s, t + usec(kTextfileInterval));
    return sd_event_source_set_enabled(s, SD_EVENT_ON);
  };
  if (int r = sd_event_add_time_relative(loop, &m->timer_src_, CLOCK_MONOTONIC, usec(kTextfileInterval), 0,
                                         on_timer, m.get());
      r < 0)
    return fail(-r, "metrics: cannot add the timer");
  m->apply(m->opts_.settings());
  return m;
}

void MetricsService::apply(const config::MetricsSettings& want) {
  if (want.same_outputs(current_)) return;
  const bool first = !current_.listen && !current_.textfile && listen_fd_ < 0;
  if (want.listen != current_.listen) {
    if (current_.listen) {
      stop_listening();
      opts_.info("metrics: no longer serving http://" + *current_.listen + "/metrics");
    }
    current_.listen = want.listen;
    if (want.listen) {
      if (auto r = listen(*want.listen); !r) {
        stop_listening();
        opts_.warn(r.error().describe() + " (no HTTP endpoint until `metrics.listen` changes)");
      }
    }
  }
  if (want.textfile != current_.textfile) {
    if (current_.textfile) {
      remove_textfile(*current_.textfile);
      opts_.info("metrics: no longer writing " + *current_.textfile);
    }
    current_.textfile = want.textfile;
    last_textfile_error_.clear();
    if (want.textfile) {
      opts_.info("metrics: writing " + *want.textfile + " every " +
                 std::to_string(kTextfileInterval.count()) + " s");
      if (auto r = write_textfile(); !r) {
        last_textfile_error_ = r.error().describe();
        opts_.warn("metrics: " + last_textfile_error_ + " (trying again every tick)");
      }
    }
  }
  if (!first && !current_.listen && !current_.textfile) opts_.info("metrics: off");
}

void MetricsService::on_timer() {
  apply(opts_.settings());
  if (!current_.textfile) return;
  if (auto r = write_textfile(); !r) {
    if (r.error().describe() != last_textfile_error_) {
      last_textfile_error_ = r.error().describe();
      opts_.warn("metrics: " + last_textfile_error_);
    }
  } else if (!last_textfile_error_.empty()) {
    last_textfile_error_.clear();
    opts_.info("metrics: " + *current_.textfile + " written again");
  }
}

void MetricsService::remove_textfile(const std::string& path) {
  if (auto d = open_textfile_dir(fs_, swap::parent_path(path)))
    ::unlinkat(d->get(), swap::file_name(path).c_str(), 0);
}

void MetricsService::stop_listening() {
  while (!conns_.empty()) close(*conns_.back());
  if (listen_src_) sd_event_source_disable_unref(listen_src_);
  listen_src_ = nullptr;
  if (listen_fd_ >= 0) ::close(listen_fd_);
  listen_fd_ = -1;
  port_ = 0;
}

Result<void> MetricsService::write_textfile() {
  if (!current_.textfile) return {};
  const std::string path = *current_.textfile;
  const std::string dir = swap::parent_path(path), name = swap::file_name(path);
  auto d = open_textfile_dir(fs_, dir);
  if (!d) return wrap(d.error(), "textfile " + path);
  const std::string tmp = "." + name + ".tmp";
  const std::string text = metrics::prometheus_text(opts_.status());
  int fd = ::openat(d->get(), tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) return fail(errno, "textfile " + path + ": cannot create " + dir + "/" + tmp);
  bool ok = ::fchmod(fd, 0644) == 0;  // the unit's UMask=0077 would leave it unreadable to node_exporter
  for (std::size_t off = 0; ok && off < text.size();) {
    const ssize_t n = ::write(fd, text.data() + off, text.size() - off);
    if (n < 0 && errno == EINTR) continue;
    ok = n > 0;
    if (ok) off += static_cast<std::size_t>(n);
  }
  const int err = errno;
  if (::close(fd) != 0 && ok) ok = false;
  if (!ok || ::renameat(d->get(), tmp.c_str(), d->get(), name.c_str()) != 0) {
    const int e = ok ? errno : err;
    ::unlinkat(d->get(), tmp.c_str(), 0);
    return fail(e ? e : EIO, "textfile " + path + ": cannot write it");
  }
  return {};
}

Result<void> MetricsService::listen(const std::string& text) {
  auto a = config::parse_listen_address(text);
  if (!a) return wrap(a.error(), "metrics.listen");
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (a->ipv6) {
    auto* s6 = reinterpret_cast<sockaddr_in6*>(&ss);
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons(a->port);
    ::inet_pton(AF_INET6, a->host.c_str(), &s6->sin6_addr);
    len = sizeof *s6;
  } else {
    auto* s4 = reinterpret_cast<sockaddr_in*>(&ss);
    s4->sin_family = AF_INET;
    s4->sin_port = htons(a->port);
    ::inet_pton(AF_INET, a->host.c_str(), &s4->sin_addr);
    len = sizeof *s4;
  }
  listen_fd_ = ::socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) return fail(errno, "metrics.listen: socket");
  const int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&ss), len) != 0)
    return fail(errno, "metrics.listen: cannot bind " + text);
  if (::listen(listen_fd_, 16) != 0) return fail(errno, "metrics.listen: listen");
  port_ = a->port;
  auto on_accept = [](sd_event_source*, int, std::uint32_t, void* u) {
    static_cast<MetricsService*>(u)->accept_all();
    return 0;
  };
  if (int r = sd_event_add_io(loop_, &listen_src_, listen_fd_, EPOLLIN, on_accept, this); r < 0)
    return fail(-r, "metrics.listen: cannot watch the socket");
  const std::string url =
      "http://" + (a->ipv6 ? "[" + a->host + "]" : a->host) + ":" + std::to_string(a->port) + "/metrics";
  if (a->loopback)
    opts_.info("metrics: serving " + url);
  else
    opts_.warn("metrics: serving " + url + " on a non-loopback address, as `metrics.listen` says: " +
               "whoever reaches it reads this machine's memory figures (no authentication)");
  return {};
}

void MetricsService::accept_all() {
  for (;;) {
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;  // EAGAIN: all taken; other errors: the next event tries again
    if (static_cast<int>(conns_.size()) >= kMaxConnections) {
      ::close(fd);
      continue;
    }
    auto c = std::make_unique<Connection>();
    c->owner = this;
    c->fd = fd;
    auto on_io = [](sd_event_source*, int, std::uint32_t events, void* u) {
      auto* conn = static_cast<Connection*>(u);
      if (conn->answered)
        conn->owner->on_writable(*conn);
      else if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
        conn->owner->on_readable(*conn);
      return 0;
    };
    auto on_deadline = [](sd_event_source*, std::uint64_t, void* u) {
      auto* conn = static_cast<Connection*>(u);
      conn->owner->close(*conn);
      return 0;
    };
    if (sd_event_add_io(loop_, &c->io, fd, EPOLLIN, on_io, c.get()) < 0 ||
        sd_event_add_time_relative(loop_, &c->deadline, CLOCK_MONOTONIC, usec(kRequestTimeout), 0,
                                   on_deadline, c.get()) < 0) {
      conns_.push_back(std::move(c));
      close(*conns_.back());
      continue;
    }
    conns_.push_back(std::move(c));
  }
}

void MetricsService::on_readable(Connection& c) {
  char buf[2048];
  for (;;) {
    const ssize_t n = ::recv(c.fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n <= 0) {  // closed before a whole head, or an error
      close(c);
      return;
    }
    c.in.append(buf, static_cast<std::size_t>(n));
    if (c.in.find("\r\n\r\n") != std::string::npos || c.in.find("\n\n") != std::string::npos ||
        c.in.size() > kMaxRequestBytes) {
      respond(c);
      return;
    }
  }
}

void MetricsService::respond(Connection& c) {
  const std::string_view plain = "text/plain; charset=utf-8";
  const auto eol = c.in.find('\n');
  const auto end = std::min(c.in.find("\r\n\r\n"), c.in.find("\n\n"));
  if (end == std::string::npos || end > kMaxRequestBytes) {
    c.out = http(431, "Request Header Fields Too Large", plain, "request too large\n", false);
  } else {
    std::string line = c.in.substr(0, eol);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const auto sp1 = line.find(' '), sp2 = line.rfind(' ');
    if (sp1 == std::string::npos || sp2 == sp1 || !line.substr(sp2 + 1).starts_with("HTTP/")) {
      c.out = http(400, "Bad Request", plain, "bad request\n", false);
    } else {
      const std::string method = line.substr(0, sp1);
      std::string target = line.substr(sp1 + 1, sp2 - sp1 - 1);
      target = target.substr(0, target.find('?'));
      const bool head = method == "HEAD";
      if (method != "GET" && !head)
        c.out = http(405, "Method Not Allowed", plain, "only GET /metrics\n", false);
      else if (target != "/metrics")
        c.out = http(404, "Not Found", plain, "tierswapd serves /metrics only\n", head);
      else
        c.out = http(200, "OK", metrics::kContentType, metrics::prometheus_text(opts_.status()), head);
    }
  }
  c.answered = true;
  c.in.clear();
  sd_event_source_set_io_events(c.io, EPOLLOUT);
  on_writable(c);
}

void MetricsService::on_writable(Connection& c) {
  while (!c.out.empty()) {
    const ssize_t n = ::send(c.fd, c.out.data(), c.out.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;  // the next EPOLLOUT goes on
    if (n <= 0) break;
    c.out.erase(0, static_cast<std::size_t>(n));
  }
  close(c);
}

void MetricsService::close(Connection& c) {
  if (c.answered && c.fd >= 0) {
    // Read what the client still sent (bounded) before closing: unread
    // data makes close() reset the connection, and the client may lose
    // the answer it has not read yet.
    ::shutdown(c.fd, SHUT_WR);
    char buf[4096];
    for (int i = 0; i < 16 && ::recv(c.fd, buf, sizeof buf, MSG_DONTWAIT) > 0; ++i) {
    }
  }
  if (c.io) sd_event_source_disable_unref(c.io);
  if (c.deadline) sd_event_source_disable_unref(c.deadline);
  c.io = c.deadline = nullptr;
  if (c.fd >= 0) ::close(c.fd);
  c.fd = -1;
  std::erase_if(conns_, [&](const std::unique_ptr<Connection>& p) { return p.get() == &c; });
}

}  // namespace tierswap
