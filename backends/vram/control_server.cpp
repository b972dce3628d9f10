#include "backends/vram/control_server.hpp"

#include <fcntl.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <nlohmann/json.hpp>
#include <vector>

#include "backends/vram/unix_listener.hpp"
#include "common/refusal.hpp"

namespace tierswap::vram {

using nlohmann::json;

namespace {

const char* const kOps[5] = {"read", "write", "zero", "trim", "flush"};

std::string error_line(const std::string& message) {
  return json{{"ok", false}, {"error", message}}.dump();
}

json progress_json(const MoveProgress& p) {
  json j{{"ok", true},
         {"job", p.job},
         {"running", p.running},
         {"cancelled", p.cancelled},
         {"chunks_total", p.chunks_total},
         {"chunks_done", p.chunks_done},
         {"bytes_moved", p.bytes_moved},
         {"seconds", p.seconds},
         {"gb_per_s", p.seconds > 0 ? static_cast<double>(p.bytes_moved) / p.seconds / 1e9 : 0.0}};
  j["error"] = p.error.empty() ? json(nullptr) : json(p.error);
  return j;
}

}  // namespace

std::string control_stats(const Server& server, const BlockStore& base, MigratingStore* store) {
  const ServerStats s = server.stats();
  json ops = json::object();
  for (int i = 0; i < 5; ++i) ops[kOps[i]] = {{"requests", s.op_requests[i]}, {"bytes", s.op_bytes[i]}};
  json j{{"ok", true},
         {"store", base.name()},
         {"size", base.size()},
         {"failed", base.failed()},
         {"clients", server.clients()},
         {"requests", s.requests},
         {"ops", ops},
         {"queue_depth", s.queue_depth},
         {"queue_depth_max", s.queue_depth_max},
         {"latency_us",
          {{"p50", static_cast<double>(s.latency_p50_ns) / 1000.0},
           {"p99", static_cast<double>(s.latency_p99_ns) / 1000.0},
           {"samples", s.latency_samples},
           {"buckets_ns", s.latency_buckets}}}};
  const auto* chunked = dynamic_cast<const ChunkedStore*>(&base);
  if (chunked != nullptr) {
    j["chunk_bytes"] = chunked->chunk_bytes();
    j["resident_bytes"] = chunked->resident_bytes();
  }
  if (store != nullptr) {
    std::uint64_t n[4] = {};
    std::string map;
    for (ChunkState st : store->states()) {
      n[static_cast<int>(st)]++;
      map += state_letter(st);
    }
    j["chunks"] = {{"total", map.size()}, {"resident", n[0]},  {"moving_out", n[1]},
                   {"spilled", n[2]},     {"moving_in", n[3]}, {"map", map}};
    const SpillStore* sp = store->spill();
    j["spill"] = {{"kind", sp->name()},
                  {"stored_bytes", sp->stored_bytes()},
                  {"footprint_bytes", sp->footprint_bytes()},
                  {"ratio", sp->ratio()},
                  {"describe", sp->describe()}};
  } else if (chunked != nullptr) {
    j["chunks"] = {{"total", chunked->chunk_count()}, {"resident", chunked->chunk_count()}};
    j["spill"] = nullptr;
  }
  return j.dump();
}

std::string handle_control_line(std::string_view line, const Server& server, const BlockStore& base,
                                MigratingStore* store) {
  json req;
  try {
    req = json::parse(line);
  } catch (const json::exception& e) {
    return error_line(std::string("not a JSON line (") + e.what() + "); send e.g. {\"cmd\": \"stats\"}");
  }
  if (!req.is_object() || !req.contains("cmd") || !req["cmd"].is_string())
    return error_line("a request is a JSON object with a string \"cmd\", e.g. {\"cmd\": \"stats\"}");
  const std::string cmd = req["cmd"].get<std::string>();
  if (cmd == "stats") return control_stats(server, base, store);
  if (cmd == "evacuate" || cmd == "promote") {
    if (store == nullptr)
      return error_line(cmd +
                        ": no spill store configured for this export (start tierswap-nbd with --spill lz4 "
                        "or --spill file:PATH; in tierswap.yaml, spill: under the vram tier)");
    auto r = cmd == "evacuate" ? store->evacuate() : store->promote();
    if (!r) return error_line(r.error().describe());
    return progress_json(store->progress()).dump();
  }
  if (cmd == "progress") {
    if (store == nullptr) return progress_json(MoveProgress{}).dump();
    return progress_json(store->progress()).dump();
  }
  if (cmd == "cancel") {
    if (store != nullptr) store->cancel();
    return progress_json(store != nullptr ? store->progress() : MoveProgress{}).dump();
  }
  return error_line("unknown command \"" + cmd + "\" (stats, evacuate, promote, progress, cancel)");
}

Result<void> ControlServer::start() {
  struct stat st {};
  int type = 0;
  socklen_t len = sizeof type;
  if (::fstat(fd_, &st) != 0 || !S_ISSOCK(st.st_mode) ||
      ::getsockopt(fd_, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_STREAM)
    return refusal(ErrorKind::invalid_argument, EINVAL,
                   "--control-fd " + std::to_string(fd_) + ": not an open stream socket");
  int accepting = 0;
  len = sizeof accepting;
  listening_ = ::getsockopt(fd_, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &len) == 0 && accepting != 0;
  ::fcntl(fd_, F_SETFD, FD_CLOEXEC);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 256U << 10);
  const int rc = pthread_create(
      &thread_, &attr,
      [](void* p) -> void* {
        static_cast<ControlServer*>(p)->loop();
        return nullptr;
      },
      this);
  pthread_attr_destroy(&attr);
  if (rc != 0) return kernel_error(rc, "cannot start the control thread");
  running_ = true;
  return {};
}

void ControlServer::stop() {
  if (!running_) return;
  stop_ = true;
  pthread_join(thread_, nullptr);
  running_ = false;
}

namespace {

// One connection's bytes between requests.
struct Peer {
  int fd = -1;
  std::string buf;
  bool dropping = false;  // inside an over-long line: discard to its newline
};

bool send_line(int fd, const std::string& text) {
  std::string out = text + "\n";
  for (std::size_t done = 0; done < out.size();) {
    const ssize_t w = ::send(fd, out.data() + done, out.size() - done, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    done += static_cast<std::size_t>(w);
  }
  return true;
}

}  // namespace

// One thread serves the channel: the one connected socket of --control-fd,
// or, for a listening socket (--control-socket), up to kMaxControlClients
// connections of root or the exporter's own user at once (a further one is
// closed at once).
void ControlServer::loop() {
  std::vector<Peer> peers;
  if (!listening_) peers.push_back({fd_, {}, false});
  char chunk[4096];
  auto too_long = [] {
    return error_line("request line longer than " + std::to_string(kMaxControlLine) + " bytes; dropped");
  };
  // false: the connection ends.
  auto serve = [&](Peer& p) {
    const ssize_t got = ::recv(p.fd, chunk, sizeof chunk, 0);
    if (got < 0 && errno == EINTR) return true;
    if (got <= 0) return false;
    p.buf.append(chunk, static_cast<std::size_t>(got));
    for (std::size_t nl; (nl = p.buf.find('\n')) != std::string::npos;) {
      std::string line = p.buf.substr(0, nl);
      p.buf.erase(0, nl + 1);
      if (p.dropping) {
        p.dropping = false;
        continue;
      }
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.empty()) continue;
      if (line.size() > kMaxControlLine) {
        if (!send_line(p.fd, too_long())) return false;
        continue;
      }
      if (!send_line(p.fd, handle_control_line(line, server_, base_, store_))) return false;
    }
    if (p.buf.size() > kMaxControlLine) {
      p.buf.clear();
      if (!p.dropping && !send_line(p.fd, too_long())) return false;
      p.dropping = true;
    }
    return true;
  };
  while (!stop_) {
    std::vector<pollfd> fds;
    if (listening_) fds.push_back({fd_, POLLIN, 0});
    for (const auto& p : peers) fds.push_back({p.fd, POLLIN, 0});
    // The peers polled: one accepted below has no entry in fds until the
    // next round (reading fds past its end was a heap overflow, and a
    // garbage revents could serve the new peer before it had sent a byte).
    const std::size_t polled = peers.size();
    const int r = ::poll(fds.data(), fds.size(), 200);
    if (r <= 0) continue;
    std::size_t i = 0;
    if (listening_) {
      if (fds[0].revents & POLLIN) {
        const int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (c >= 0) {
          if (auto ok = check_peer(c, ::geteuid()); !ok) {
            spdlog::warn("control socket: {}: refused", ok.error().describe());
            ::close(c);
          } else if (peers.size() >= kMaxControlClients) {
            spdlog::warn("control socket: {} connections already; refusing another", peers.size());
            ::close(c);
          } else {
            peers.push_back({c, {}, false});
          }
        }
      }
      i = 1;
    }
    std::vector<std::size_t> ended;
    for (std::size_t k = 0; k < polled; ++k, ++i) {
      if (fds[i].revents == 0) continue;
      if (!serve(peers[k])) ended.push_back(k);
    }
    for (auto it = ended.rbegin(); it != ended.rend(); ++it) {
      if (!listening_) {
        spdlog::info("control channel closed by its peer; the export keeps serving");
        return;
      }
      ::close(peers[*it].fd);
      peers.erase(peers.begin() + static_cast<std::ptrdiff_t>(*it));
    }
  }
  if (listening_)
    for (const auto& p : peers) ::close(p.fd);
}

}  // namespace tierswap::vram
