// The daemon's side of tierswap-nbd's control channel (control_server.hpp
// has the protocol): one JSON line out, one JSON line back.
//
// ExporterControl speaks on a connected stream socket it does not own (a
// socketpair end, or a connection ExporterChannel made). Not thread-safe:
// one call at a time per fd. Errors: ETIMEDOUT when no answer came within
// timeout_ms, EPIPE when the exporter closed the channel, EPROTO for an
// answer that is not JSON, and for {"ok": false, "error": ...} the
// exporter's sentence with code 0.
//
// ExporterChannel is the TierControl (common/tier_control.hpp) the vram kind
// hands the daemon for one tier: it connects to the exporter's control
// socket (`--control-socket`, a 0600 socket in the exporter's 0700 runtime
// directory; the path the journal records, under the daemon's root), checks
// with SO_PEERCRED that the process answering is the recorded exporter pid,
// and reconnects after an error on the next call. Thread-safe: calls are
// serialised on one connection; figures() waits at most its timeout for a
// call of another thread to end (ErrorKind::busy after that). The
// non-blocking figures (request_figures/take_figures) use a second
// connection, non-blocking, under a lock of its own that is never held
// while waiting for the exporter: the control server serves several
// connections at once (kMaxControlClients).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.hpp"
#include "common/tier_control.hpp"

namespace tierswap::vram {

class ExporterControl {
 public:
  explicit ExporterControl(int fd) : fd_(fd) {}  // does not own fd

  // {"cmd": cmd} -> the answer (its "ok" true).
  Result<nlohmann::json> call(std::string_view cmd, int timeout_ms = 5000);

  Result<nlohmann::json> stats(int timeout_ms = 5000) { return call("stats", timeout_ms); }
  Result<nlohmann::json> evacuate(int timeout_ms = 5000) { return call("evacuate", timeout_ms); }
  Result<nlohmann::json> promote(int timeout_ms = 5000) { return call("promote", timeout_ms); }
  Result<nlohmann::json> progress(int timeout_ms = 5000) { return call("progress", timeout_ms); }
  Result<nlohmann::json> cancel(int timeout_ms = 30000) { return call("cancel", timeout_ms); }

 private:
  int fd_;
  std::string pending_;  // bytes after the last answer's newline
};

// The answers as the daemon's structs (pure; missing keys stay 0).
MoveStatus move_status_from_json(const nlohmann::json& j);
TierFigures figures_from_json(const nlohmann::json& j);

// Connects to the Unix socket at `path` (absolute, as the host sees it),
// without blocking longer than timeout_ms. expect_pid > 0: the peer
// (SO_PEERCRED) must be that process, else EPERM naming both pids.
Result<int> connect_control_socket(const std::string& path, pid_t expect_pid, int timeout_ms = 1000);

class ExporterChannel final : public TierControl {
 public:
  // `what` names the tier in messages ("vram tier \"gpu\""); `path` is the
  // socket as the host sees it.
  ExporterChannel(std::string what, std::string path, pid_t exporter_pid)
      : what_(std::move(what)), path_(std::move(path)), pid_(exporter_pid) {}
  ~ExporterChannel() override;
  ExporterChannel(const ExporterChannel&) = delete;
  ExporterChannel& operator=(const ExporterChannel&) = delete;

  Result<MoveStatus> evacuate() override { return move("evacuate", 5000); }
  Result<MoveStatus> promote() override { return move("promote", 5000); }
  Result<MoveStatus> progress() override { return move("progress", 5000); }
  Result<MoveStatus> cancel() override { return move("cancel", 30000); }
  Result<TierFigures> figures(int timeout_ms) override;
  Result<bool> request_figures() override;
  Result<std::optional<TierFigures>> take_figures() override;
  FiguresWatch figures_watch() override;

 private:
  Result<nlohmann::json> call_locked(std::string_view cmd, int timeout_ms);
  Result<MoveStatus> move(std::string_view cmd, int timeout_ms);
  void drop_locked();

  // Serialises the calls on the connection; figures() waits for it at most
  // its timeout. A mutex and a condition variable rather than
  // std::timed_mutex: libstdc++'s try_lock_for waits in
  // pthread_mutex_clocklock, which GCC 12's ThreadSanitizer does not
  // intercept, so under it the lock was invisible (an "unlock of an unlocked
  // mutex" at every figures()) and nothing it guards could be checked.
  class CallLock {
   public:
    void lock();
    bool try_lock_for(std::chrono::milliseconds wait);
    void unlock();

   private:
    std::mutex mu_;
    std::condition_variable cv_;
    bool held_ = false;
  };

  std::string what_, path_;
  pid_t pid_;
  CallLock mu_;
  int fd_ = -1;
  std::unique_ptr<ExporterControl> control_;

  void drop_figures_locked();
  std::mutex fig_mu_;
  int fig_fd_ = -1;
  std::uint64_t fig_generation_ = 0;
  bool fig_in_flight_ = false;
  std::string fig_pending_;  // bytes after the last complete answer
};

}  // namespace tierswap::vram
