// Fuzz target: the NBD server loop itself (handshake, request grouping,
// payload streaming, replies) over a socketpair, with the host store.
//
// Input: the bytes a client sends after connecting, all of them, then
// end-of-file; whatever the server answers is read and dropped.
//
// Asserted beyond "no sanitizer report": the server ends the connection
// within 5 s of the client's end-of-file (it neither hangs nor keeps the
// slot), and the store has not failed.
//
// libFuzzer (clang, coverage-guided) where clang is installed, else g++
// with the standalone driver: see CMakeLists.txt.
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <thread>

#include "backends/vram/host_store.hpp"
#include "backends/vram/nbd_server.hpp"
#include "tests/fuzz/fuzz_check.hpp"

using namespace tierswap::vram;

namespace {

HostStore& store() {
  static std::unique_ptr<HostStore> s = [] {
    spdlog::set_level(spdlog::level::off);
    HostStoreOptions o;
    o.size = 4U << 20;
    o.lock = false;
    return std::move(HostStore::create(o).value());
  }();
  return *s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return 0;
  ServerOptions opt;
  opt.fds = {sv[1]};
  opt.connections = 1;
  opt.buffer_bytes = 64U << 10;
  opt.handshake_timeout_ms = 2000;
  opt.reply_timeout_ms = 2000;
  opt.check_peer = false;
  // Every other input through the pipelined path.
  opt.pipeline_bytes = size % 2 == 0 ? SIZE_MAX : 4096;
  Server server(store(), opt);
  FUZZ_CHECK(server.start().has_value(), "the server did not start");

  std::thread writer([&] {
    std::size_t off = 0;
    while (off < size) {
      const ssize_t n = ::send(sv[0], data + off, size - off, MSG_NOSIGNAL);
      if (n <= 0) break;
      off += static_cast<std::size_t>(n);
    }
    ::shutdown(sv[0], SHUT_WR);
  });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  char buf[65536];
  bool ended = false;
  while (!ended && std::chrono::steady_clock::now() < deadline) {
    pollfd p{sv[0], POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    const ssize_t n = ::recv(sv[0], buf, sizeof buf, 0);
    ended = n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN);
  }
  ::shutdown(sv[0], SHUT_RDWR);
  writer.join();
  FUZZ_CHECK(ended, "the server kept the connection open 5 s after the client's end-of-file");
  server.stop();
  ::close(sv[0]);
  FUZZ_CHECK(!store().failed(), "the host store failed");
  return 0;
}
