// Conformance of tierswap-nbd as seen by libnbd (the client library the
// Linux tools use), against a child exporter on a Unix socket. Every test
// runs with --store host (inline serving) and --store host-batch (the
// cross-connection batching path that CudaStore uses).
#include <gtest/gtest.h>
#include <libnbd.h>

#include <cerrno>
#include <memory>
#include <string>
#include <vector>

#include "tests/nbd/nbd_test_util.hpp"

using namespace nbdtest;

namespace {

struct Handle {
  nbd_handle* h = nbd_create();
  ~Handle() {
    if (h != nullptr) nbd_close(h);
  }
  bool connect(const std::string& socket) { return nbd_connect_unix(h, socket.c_str()) == 0; }
};

std::string err() {
  return nbd_get_error() ? nbd_get_error() : "(no libnbd error)";
}

class Conformance : public ::testing::TestWithParam<std::string> {
 protected:
  // "host+pipeline": every group with payload goes through the slot's
  // second thread (--pipeline 512).
  void SetUp() override {
    const bool piped = GetParam() == "host+pipeline";
    ASSERT_TRUE(ex.start(piped ? std::vector<std::string>{"--pipeline", "512", "--connections", "8"}
                               : std::vector<std::string>{"--pipeline", "off", "--connections", "8"},
                         piped ? "host" : GetParam(), "64M"))
        << ex.log();
  }
  Exporter ex;
};

TEST_P(Conformance, HandshakeAdvertisesSizeFlagsAndBlockSizes) {
  Handle c;
  ASSERT_TRUE(c.connect(ex.socket)) << err();
  EXPECT_EQ(nbd_get_size(c.h), 64LL << 20);
  EXPECT_EQ(nbd_is_read_only(c.h), 0);
  EXPECT_EQ(nbd_can_flush(c.h), 1);
  EXPECT_EQ(nbd_can_fua(c.h), 1);
  EXPECT_EQ(nbd_can_trim(c.h), 1);
  EXPECT_EQ(nbd_can_zero(c.h), 1);
  EXPECT_EQ(nbd_can_multi_conn(c.h), 1);
  EXPECT_EQ(nbd_can_df(c.h), 0);
  EXPECT_EQ(nbd_can_fast_zero(c.h), 0);
  EXPECT_EQ(nbd_get_block_size(c.h, LIBNBD_SIZE_MINIMUM), 512);
  EXPECT_EQ(nbd_get_block_size(c.h, LIBNBD_SIZE_PREFERRED), 4096);
  EXPECT_EQ(nbd_get_block_size(c.h, LIBNBD_SIZE_MAXIMUM), 32 << 20);
  // Simple replies only: the structured-reply option is refused.
  EXPECT_EQ(nbd_get_structured_replies_negotiated(c.h), 0);
  EXPECT_STREQ(nbd_get_protocol(c.h), "newstyle-fixed");
  EXPECT_EQ(nbd_shutdown(c.h, 0), 0);
}

int list_cb(void* user, const char* name, const char*) {
  static_cast<std::vector<std::string>*>(user)->push_back(name);
  return 0;
}

TEST_P(Conformance, OptionModeListInfoGoAndAbort) {
  {
    Handle c;
    ASSERT_EQ(nbd_set_opt_mode(c.h, true), 0);
    ASSERT_TRUE(c.connect(ex.socket)) << err();
    std::vector<std::string> names;
    ASSERT_EQ(nbd_opt_list(c.h, nbd_list_callback{list_cb, &names, nullptr}), 1) << err();
    ASSERT_EQ(names.size(), 1U);
    EXPECT_EQ(names[0], "");
    ASSERT_EQ(nbd_opt_info(c.h), 0) << err();
    EXPECT_EQ(nbd_get_size(c.h), 64LL << 20);
    ASSERT_EQ(nbd_opt_go(c.h), 0) << err();
    char buf[512];
    EXPECT_EQ(nbd_pread(c.h, buf, sizeof buf, 0, 0), 0) << err();
  }
  {
    Handle c;
    ASSERT_EQ(nbd_set_opt_mode(c.h, true), 0);
    ASSERT_TRUE(c.connect(ex.socket)) << err();
    EXPECT_EQ(nbd_opt_abort(c.h), 0) << err();
  }
  EXPECT_TRUE(ex.alive());
}

TEST_P(Conformance, ReadWriteFuaFlushTrimZero) {
  Handle c;
  ASSERT_TRUE(c.connect(ex.socket)) << err();
  auto data = pattern(64 << 10, 1);
  ASSERT_EQ(nbd_pwrite(c.h, data.data(), data.size(), 1 << 20, 0), 0) << err();
  ASSERT_EQ(nbd_pwrite(c.h, data.data(), 4096, 8 << 20, LIBNBD_CMD_FLAG_FUA), 0) << err();
  std::vector<std::byte> back(data.size());
  ASSERT_EQ(nbd_pread(c.h, back.data(), back.size(), 1 << 20, 0), 0) << err();
  EXPECT_EQ(back, data);
  ASSERT_EQ(nbd_pread(c.h, back.data(), 4096, 8 << 20, 0), 0) << err();
  EXPECT_EQ(0, std::memcmp(back.data(), data.data(), 4096));
  ASSERT_EQ(nbd_flush(c.h, 0), 0) << err();

  // WRITE_ZEROES, with and without NO_HOLE and FUA: reads back zeros.
  ASSERT_EQ(nbd_zero(c.h, 8192, (1 << 20) + 4096, 0), 0) << err();
  ASSERT_EQ(nbd_zero(c.h, 4096, (1 << 20) + 32768, LIBNBD_CMD_FLAG_NO_HOLE | LIBNBD_CMD_FLAG_FUA), 0)
      << err();
  ASSERT_EQ(nbd_pread(c.h, back.data(), back.size(), 1 << 20, 0), 0) << err();
  auto expect = data;
  std::memset(expect.data() + 4096, 0, 8192);
  std::memset(expect.data() + 32768, 0, 4096);
  EXPECT_EQ(back, expect);

  // TRIM succeeds (contents afterwards are unspecified by the protocol).
  EXPECT_EQ(nbd_trim(c.h, 1 << 20, 16 << 20, 0), 0) << err();
  EXPECT_EQ(nbd_trim(c.h, 4096, 16 << 20, LIBNBD_CMD_FLAG_FUA), 0) << err();
  // A whole-device trim (mkswap/swapon discard the whole area).
  EXPECT_EQ(nbd_trim(c.h, 64 << 20, 0, 0), 0) << err();
  // Last block of the export.
  ASSERT_EQ(nbd_pwrite(c.h, data.data(), 512, (64 << 20) - 512, 0), 0) << err();
  ASSERT_EQ(nbd_pread(c.h, back.data(), 512, (64 << 20) - 512, 0), 0) << err();
  EXPECT_EQ(0, std::memcmp(back.data(), data.data(), 512));
}

// Larger than the 2 MiB per-connection buffer, up to the advertised maximum:
// streamed in chunks.
TEST_P(Conformance, RequestsUpToTheMaximumBlockSize) {
  Handle c;
  ASSERT_TRUE(c.connect(ex.socket)) << err();
  for (std::size_t len : {std::size_t{3} << 20, std::size_t{32} << 20}) {
    auto data = pattern(len, static_cast<unsigned>(len));
    ASSERT_EQ(nbd_pwrite(c.h, data.data(), len, 4096, LIBNBD_CMD_FLAG_FUA), 0) << err();
    std::vector<std::byte> back(len);
    ASSERT_EQ(nbd_pread(c.h, back.data(), len, 4096, 0), 0) << err();
    EXPECT_TRUE(back == data) << len;
  }
}

TEST_P(Conformance, MultiConnectionWriteFlushReadOnAnother) {
  std::vector<std::unique_ptr<Handle>> conns;
  for (int i = 0; i < 4; ++i) {
    conns.push_back(std::make_unique<Handle>());
    ASSERT_TRUE(conns.back()->connect(ex.socket)) << err();
  }
  for (int i = 0; i < 4; ++i) {
    auto data = pattern(8192, 100 + static_cast<unsigned>(i));
    const std::uint64_t off = static_cast<std::uint64_t>(i) << 20;
    ASSERT_EQ(nbd_pwrite(conns[static_cast<std::size_t>(i)]->h, data.data(), data.size(), off, 0), 0)
        << err();
    ASSERT_EQ(nbd_flush(conns[static_cast<std::size_t>(i)]->h, 0), 0) << err();
    std::vector<std::byte> back(data.size());
    ASSERT_EQ(nbd_pread(conns[static_cast<std::size_t>((i + 1) % 4)]->h, back.data(), back.size(), off, 0), 0)
        << err();
    EXPECT_EQ(back, data);
  }
}

// Many requests in flight on several connections at once (aio), checked.
TEST_P(Conformance, ManyInFlightOnSeveralConnections) {
  constexpr int kConns = 4, kDepth = 32, kRounds = 8;
  std::vector<std::unique_ptr<Handle>> conns;
  for (int i = 0; i < kConns; ++i) {
    conns.push_back(std::make_unique<Handle>());
    ASSERT_TRUE(conns.back()->connect(ex.socket)) << err();
  }
  std::vector<std::vector<std::byte>> written(kConns * kDepth), got(kConns * kDepth);
  for (int round = 0; round < kRounds; ++round) {
    const bool write = round % 2 == 0;
    for (int c = 0; c < kConns; ++c) {
      for (int d = 0; d < kDepth; ++d) {
        const auto slot = static_cast<std::size_t>(c * kDepth + d);
        // Reads go to another connection than the write of the same slot.
        const auto conn = static_cast<std::size_t>(write ? c : (c + 1) % kConns);
        const std::uint64_t off =
            (slot * 7 % (kConns * kDepth)) * 65536 + static_cast<std::uint64_t>(round / 2) * 8192;
        if (write) {
          written[slot] = pattern(4096 * (1 + static_cast<std::size_t>(d) % 3),
                                  static_cast<unsigned>(slot) + round * 1000U);
          ASSERT_GE(nbd_aio_pwrite(conns[conn]->h, written[slot].data(), written[slot].size(), off,
                                   NBD_NULL_COMPLETION, 0),
                    0)
              << err();
        } else {
          got[slot].assign(written[slot].size(), std::byte{0});
          ASSERT_GE(
              nbd_aio_pread(conns[conn]->h, got[slot].data(), got[slot].size(), off, NBD_NULL_COMPLETION, 0),
              0)
              << err();
        }
      }
    }
    for (auto& c : conns) {
      while (nbd_aio_in_flight(c->h) > 0) ASSERT_GE(nbd_poll(c->h, 5000), 0) << err();
      int64_t cookie;
      while ((cookie = nbd_aio_peek_command_completed(c->h)) > 0)
        ASSERT_EQ(nbd_aio_command_completed(c->h, cookie), 1) << err();
    }
    if (write) {
      for (auto& c : conns) ASSERT_EQ(nbd_flush(c->h, 0), 0) << err();
    } else {
      for (std::size_t i = 0; i < got.size(); ++i)
        ASSERT_TRUE(got[i] == written[i]) << "slot " << i << " round " << round;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Stores, Conformance, ::testing::Values("host", "host-batch", "host+pipeline"),
                         [](const auto& info) {
                           return info.param == "host"         ? std::string("Inline")
                                  : info.param == "host-batch" ? std::string("Batched")
                                                               : std::string("Pipelined");
                         });

// A failing store answers EIO, never success with wrong data, and the
// failure sticks (the CudaStore contract).
TEST(StoreFailure, ErrorsBecomeEioAndStick) {
  for (std::string store : {"host", "host-batch"}) {
    Exporter ex;
    ex.binary = exporter_test_binary();
    ASSERT_TRUE(ex.start({"--test-fail-offset", "1M"}, store)) << ex.log();
    Handle c;
    ASSERT_TRUE(c.connect(ex.socket)) << err();
    char buf[4096] = {};
    EXPECT_EQ(nbd_pread(c.h, buf, sizeof buf, 0, 0), 0) << err();
    EXPECT_EQ(nbd_pread(c.h, buf, sizeof buf, 1 << 20, 0), -1);
    EXPECT_EQ(nbd_get_errno(), EIO);
    EXPECT_EQ(nbd_pread(c.h, buf, sizeof buf, 0, 0), -1);
    EXPECT_EQ(nbd_get_errno(), EIO);
    EXPECT_EQ(nbd_pwrite(c.h, buf, sizeof buf, 0, 0), -1);
    EXPECT_EQ(nbd_get_errno(), EIO);
    EXPECT_EQ(nbd_flush(c.h, 0), -1);
    EXPECT_EQ(nbd_get_errno(), EIO);
  }
}

// --fd: serve an already-connected socket; the exporter exits when it ends.
TEST(FdHandOver, ServesASocketpairAndExitsWhenItCloses) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  Exporter ex;
  // The child gets sv[1] as fd 3 (dup2 clears CLOEXEC).
  ASSERT_TRUE(ex.start({"--fd", "3"}, "host", "16M", false, {sv[1]}));
  ::close(sv[1]);
  Handle c;
  ASSERT_EQ(nbd_connect_socket(c.h, sv[0]), 0) << err();
  auto data = pattern(4096, 7);
  ASSERT_EQ(nbd_pwrite(c.h, data.data(), data.size(), 0, 0), 0) << err();
  std::vector<std::byte> back(4096);
  ASSERT_EQ(nbd_pread(c.h, back.data(), back.size(), 0, 0), 0) << err();
  EXPECT_EQ(back, data);
  ASSERT_EQ(nbd_shutdown(c.h, 0), 0);
  nbd_close(c.h);
  c.h = nullptr;
  const int st = ex.wait_exit(5000);
  ASSERT_NE(st, -1) << ex.log();
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << ex.log();
}

}  // namespace
