#include "backends/vram/exporter_control.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>

namespace tierswap::vram {

Result<nlohmann::json> ExporterControl::call(std::string_view cmd, int timeout_ms) {
  const std::string line = nlohmann::json{{"cmd", cmd}}.dump() + "\n";
  const std::string what = "tierswap-nbd control channel: " + std::string(cmd);
  for (std::size_t done = 0; done < line.size();) {
    const ssize_t w = ::send(fd_, line.data() + done, line.size() - done, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return kernel_error(w < 0 ? errno : EPIPE, what);
    done += static_cast<std::size_t>(w);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  std::size_t nl;
  while ((nl = pending_.find('\n')) == std::string::npos) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now())
            .count();
    if (left <= 0) return fail(ETIMEDOUT, what + ": no answer within " + std::to_string(timeout_ms) + " ms");
    pollfd p{fd_, POLLIN, 0};
    const int r = ::poll(&p, 1, static_cast<int>(left));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return kernel_error(errno, what);
    if (r == 0) continue;
    char buf[4096];
    const ssize_t got = ::recv(fd_, buf, sizeof buf, 0);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return kernel_error(errno, what);
    if (got == 0) return fail(EPIPE, what + ": the exporter closed the channel");
    pending_.append(buf, static_cast<std::size_t>(got));
  }
  const std::string answer = pending_.substr(0, nl);
  pending_.erase(0, nl + 1);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(answer);
  } catch (const nlohmann::json::exception&) {
    return fail(EPROTO, what + ": the answer is not JSON: " + answer.substr(0, 200));
  }
  if (!j.is_object() || !j.value("ok", false))
    return fail(0, what + ": " + (j.is_object() ? j.value("error", std::string("refused")) : answer));
  return j;
}

}  // namespace tierswap::vram

namespace tierswap::vram {

namespace {

template <class T>
void take(const nlohmann::json& j, const char* key, T& out) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) return;
  if constexpr (std::is_same_v<T, std::string>) {
    if (it->is_string()) out = it->get<std::string>();
  } else if constexpr (std::is_same_v<T, bool>) {
    if (it->is_boolean()) out = it->get<bool>();
  } else {
    if (it->is_number()) out = it->get<T>();
  }
}

}  // namespace

MoveStatus move_status_from_json(const nlohmann::json& j) {
  MoveStatus m;
  if (!j.is_object()) return m;
  take(j, "job", m.job);
  take(j, "running", m.running);
  take(j, "cancelled", m.cancelled);
  take(j, "chunks_total", m.chunks_total);
  take(j, "chunks_done", m.chunks_done);
  take(j, "bytes_moved", m.bytes_moved);
  take(j, "seconds", m.seconds);
  take(j, "error", m.error);
  return m;
}

TierFigures figures_from_json(const nlohmann::json& j) {
  TierFigures f;
  if (!j.is_object()) return f;
  take(j, "requests", f.requests);
  take(j, "queue_depth", f.queue_depth);
  take(j, "queue_depth_max", f.queue_depth_max);
  take(j, "size", f.size_bytes);
  take(j, "chunk_bytes", f.chunk_bytes);
  if (const auto ops = j.find("ops"); ops != j.end() && ops->is_object()) {
    if (const auto r = ops->find("read"); r != ops->end()) take(*r, "bytes", f.read_bytes);
    if (const auto w = ops->find("write"); w != ops->end()) take(*w, "bytes", f.write_bytes);
    for (const auto& [name, v] : ops->items()) {
      OpFigures o{.op = name};
      take(v, "requests", o.requests);
      take(v, "bytes", o.bytes);
      f.ops.push_back(std::move(o));
    }
  }
  if (const auto l = j.find("latency_us"); l != j.end() && l->is_object()) {
    take(*l, "p50", f.latency_p50_us);
    take(*l, "p99", f.latency_p99_us);
    take(*l, "samples", f.latency_samples);
    if (const auto b = l->find("buckets_ns"); b != l->end() && b->is_array())
      for (const auto& e : *b)
        if (e.is_array() && e.size() == 2 && e[0].is_number_unsigned() && e[1].is_number_unsigned())
          f.latency_buckets.emplace_back(e[0].get<std::uint64_t>(), e[1].get<std::uint64_t>());
  }
  f.resident_bytes = f.size_bytes;  // an export without chunks is all resident
  take(j, "resident_bytes", f.resident_bytes);
  if (const auto c = j.find("chunks"); c != j.end() && c->is_object()) {
    take(*c, "total", f.chunks_total);
    take(*c, "resident", f.chunks_resident);
    take(*c, "spilled", f.chunks_spilled);
    std::uint64_t out = 0, in = 0;
    take(*c, "moving_out", out);
    take(*c, "moving_in", in);
    f.chunks_moving = out + in;
  }
  if (const auto s = j.find("spill"); s != j.end() && s->is_object()) {
    take(*s, "kind", f.spill);
    take(*s, "ratio", f.spill_ratio);
    take(*s, "stored_bytes", f.spill_stored_bytes);
    take(*s, "footprint_bytes", f.spill_footprint_bytes);
  }
  return f;
}

Result<int> connect_control_socket(const std::string& path, pid_t expect_pid, int timeout_ms) {
  const std::string what = "tierswap-nbd control socket " + path;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) return fail(ENAMETOOLONG, what + ": path too long");
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return fail(errno, what + ": socket()");
  auto bad = [&](int err, const std::string& why) {
    ::close(fd);
    return fail(err, what + ": " + why);
  };
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    if (errno != EAGAIN && errno != EINPROGRESS) return bad(errno, "connect");
    pollfd p{fd, POLLOUT, 0};
    if (::poll(&p, 1, timeout_ms) <= 0)
      return bad(ETIMEDOUT, "no answer to connect within " + std::to_string(timeout_ms) + " ms");
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) return bad(err, "connect");
  }
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  if (expect_pid > 0) {
    ucred cred{};
    socklen_t len = sizeof cred;
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return bad(errno, "SO_PEERCRED");
    if (cred.pid != expect_pid)
      return bad(EPERM, "answered by pid " + std::to_string(cred.pid) + ", not by the exporter pid " +
                            std::to_string(expect_pid) + " the journal records: not using it");
  }
  return fd;
}

ExporterChannel::~ExporterChannel() {
  std::lock_guard lk(mu_);
  drop_locked();
  std::lock_guard fk(fig_mu_);
  drop_figures_locked();
}

void ExporterChannel::drop_figures_locked() {
  if (fig_fd_ >= 0) ::close(fig_fd_);
  fig_fd_ = -1;
  fig_in_flight_ = false;
  fig_pending_.clear();
}

void ExporterChannel::drop_locked() {
  control_.reset();
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

Result<nlohmann::json> ExporterChannel::call_locked(std::string_view cmd, int timeout_ms) {
  if (fd_ < 0) {
    auto fd = connect_control_socket(path_, pid_, std::min(timeout_ms, 1000));
    if (!fd) return wrap(fd.error(), what_);
    fd_ = *fd;
    control_ = std::make_unique<ExporterControl>(fd_);
  }
  auto r = control_->call(cmd, timeout_ms);
  // A refusal (code 0) leaves the channel sound; anything else ends it, so
  // that a late answer cannot be taken for the next call's.
  if (!r && r.error().code != 0) drop_locked();
  if (!r) return wrap(r.error(), what_);
  return r;
}

Result<MoveStatus> ExporterChannel::move(std::string_view cmd, int timeout_ms) {
  std::lock_guard lk(mu_);
  auto r = call_locked(cmd, timeout_ms);
  if (!r) return std::unexpected(r.error());
  return move_status_from_json(*r);
}

void ExporterChannel::CallLock::lock() {
  std::unique_lock lk(mu_);
  cv_.wait(lk, [&] { return !held_; });
  held_ = true;
}

bool ExporterChannel::CallLock::try_lock_for(std::chrono::milliseconds wait) {
  std::unique_lock lk(mu_);
  if (!cv_.wait_for(lk, wait, [&] { return !held_; })) return false;
  held_ = true;
  return true;
}

void ExporterChannel::CallLock::unlock() {
  {
    std::lock_guard lk(mu_);
    held_ = false;
  }
  cv_.notify_one();
}

Result<TierFigures> ExporterChannel::figures(int timeout_ms) {
  std::unique_lock lk(mu_, std::defer_lock);
  if (!lk.try_lock_for(std::chrono::milliseconds(timeout_ms)))
    return fail(ErrorKind::busy, what_ + ": the control channel is in use");
  auto r = call_locked("stats", timeout_ms);
  if (!r) return std::unexpected(r.error());
  return figures_from_json(*r);
}

}  // namespace tierswap::vram

namespace tierswap::vram {

Result<bool> ExporterChannel::request_figures() {
  std::lock_guard lk(fig_mu_);
  if (fig_in_flight_) return false;  // the answer to the last one is still to come
  if (fig_fd_ < 0) {
    // A Unix socket's connect() completes at once or fails (a full backlog:
    // EAGAIN, tried again on the next request): timeout 0, no wait.
    auto fd = connect_control_socket(path_, pid_, 0);
    if (!fd) return wrap(fd.error(), what_);
    ::fcntl(*fd, F_SETFL, ::fcntl(*fd, F_GETFL) | O_NONBLOCK);
    fig_fd_ = *fd;
    // Unique in the process, across channels: a watch made for another
    // channel's connection is never taken for this one's.
    static std::atomic<std::uint64_t> connections{0};
    fig_generation_ = ++connections;
  }
  static constexpr std::string_view kLine = "{\"cmd\":\"stats\"}\n";
  const ssize_t w = ::send(fig_fd_, kLine.data(), kLine.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  if (w == static_cast<ssize_t>(kLine.size())) {
    fig_in_flight_ = true;
    return true;
  }
  // A short write of 16 bytes on an idle socket does not happen; any
  // failure ends this connection (the next request makes a new one).
  const int err = w < 0 ? errno : EPIPE;
  drop_figures_locked();
  return wrap(kernel_error(err, "tierswap-nbd control channel: stats").error(), what_);
}

Result<std::optional<TierFigures>> ExporterChannel::take_figures() {
  std::lock_guard lk(fig_mu_);
  if (fig_fd_ < 0) return std::optional<TierFigures>{};
  const std::string what = "tierswap-nbd control channel: stats";
  for (;;) {
    char buf[8192];
    const ssize_t got = ::recv(fig_fd_, buf, sizeof buf, MSG_DONTWAIT);
    if (got > 0) {
      fig_pending_.append(buf, static_cast<std::size_t>(got));
      if (fig_pending_.size() > (1U << 20)) {
        drop_figures_locked();
        return wrap(fail(EPROTO, what + ": an answer longer than 1 MiB").error(), what_);
      }
      continue;
    }
    if (got < 0 && errno == EINTR) continue;
    if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    const int err = got < 0 ? errno : EPIPE;
    drop_figures_locked();
    return wrap(
        (err == EPIPE ? fail(EPIPE, what + ": the exporter closed the channel") : kernel_error(err, what))
            .error(),
        what_);
  }
  std::optional<TierFigures> latest;
  for (std::size_t nl; (nl = fig_pending_.find('\n')) != std::string::npos;) {
    const std::string answer = fig_pending_.substr(0, nl);
    fig_pending_.erase(0, nl + 1);
    fig_in_flight_ = false;
    nlohmann::json j = nlohmann::json::parse(answer, nullptr, false);
    if (j.is_discarded()) {
      drop_figures_locked();
      return wrap(fail(EPROTO, what + ": the answer is not JSON: " + answer.substr(0, 200)).error(), what_);
    }
    if (!j.is_object() || !j.value("ok", false))
      return wrap(
          fail(0, what + ": " + (j.is_object() ? j.value("error", std::string("refused")) : answer)).error(),
          what_);
    latest = figures_from_json(j);
  }
  return latest;
}

TierControl::FiguresWatch ExporterChannel::figures_watch() {
  std::lock_guard lk(fig_mu_);
  return {fig_fd_, fig_generation_};
}

}  // namespace tierswap::vram
