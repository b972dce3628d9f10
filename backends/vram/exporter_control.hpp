// The daemon's side of tierswap-nbd's control channel (control_server.hpp
// has the protocol): one JSON line out, one JSON line back.
//
// The fd is the daemon's end of the socketpair whose other end it handed to
// the exporter with --control-fd (vram_kind binds it as
// "{vram:TIER:control}"). Not thread-safe: one call at a time per fd.
// Errors: ETIMEDOUT when no answer came within timeout_ms, EPIPE when the
// exporter closed the channel, EPROTO for an answer that is not JSON, and
// for {"ok": false, "error": ...} the exporter's sentence with code 0.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "common/result.hpp"

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

}  // namespace tierswap::vram
