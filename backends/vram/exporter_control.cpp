#include "backends/vram/exporter_control.hpp"

#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <chrono>

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
