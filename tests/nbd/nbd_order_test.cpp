// Ordering and disconnects, in-process over socketpairs (the way the daemon
// hands connections to tierswap-nbd), on every server path: inline or
// batched (host-batch), pipelined or not.
//
// The store under the server is adversarial: it runs each batch's requests in
// reverse order (the BlockStore contract allows that: the caller orders
// overlapping requests) and flushes only after the rest of its batch. So a
// server that put two requests whose order matters into one batch, or let a
// FLUSH overtake a write before it on the wire, gives reads that differ from
// a model that applies the requests in wire order.
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <mutex>
#include <random>
#include <vector>

#include "backends/vram/host_store.hpp"
#include "backends/vram/nbd_server.hpp"
#include "tests/nbd/nbd_test_util.hpp"

using namespace tierswap::vram;
using namespace nbdtest;

namespace {

constexpr std::uint64_t kSize = 16ULL << 20;

// What the store executed, in order: writes by the tag in their first 8
// bytes, FLUSH requests in a batch as kFlushTag, direct flush() calls (the
// server's FUA) as kFuaFlushTag.
constexpr std::uint64_t kFlushTag = ~0ULL;
constexpr std::uint64_t kFuaFlushTag = ~0ULL - 1;

class ReversingStore final : public BlockStore {
 public:
  explicit ReversingStore(bool batching) : batching_(batching) {
    HostStoreOptions o;
    o.size = kSize;
    o.lock = false;
    inner_ = std::move(HostStore::create(o).value());
    log_.reserve(1 << 16);
  }
  [[nodiscard]] std::uint64_t size() const override { return inner_->size(); }
  [[nodiscard]] const char* name() const override { return "reversing"; }
  [[nodiscard]] bool failed() const override { return inner_->failed(); }
  [[nodiscard]] bool prefers_batching() const override { return batching_; }
  int read(std::uint64_t off, std::span<std::byte> out) override { return inner_->read(off, out); }
  int write(std::uint64_t off, std::span<const std::byte> in) override {
    std::uint64_t tag = 0;
    if (in.size() >= 8) std::memcpy(&tag, in.data(), 8);
    record(tag);
    return inner_->write(off, in);
  }
  int zero(std::uint64_t off, std::uint64_t len) override { return inner_->zero(off, len); }
  int trim(std::uint64_t off, std::uint64_t len) override { return inner_->trim(off, len); }
  int flush() override {
    record(kFuaFlushTag);
    return inner_->flush();
  }

  void submit(std::span<IoRequest> batch) override {
    const std::size_t n = batch.size();
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t j = i + 1; j < n; ++j) {
        const IoRequest &a = batch[i], &b = batch[j];
        if (a.op == Op::flush || b.op == Op::flush) continue;
        if (a.op == Op::read && b.op == Op::read) continue;
        if (a.offset < b.offset + b.length && b.offset < a.offset + a.length) overlaps_++;
      }
    for (std::size_t i = n; i-- > 0;) {
      IoRequest& r = batch[i];
      switch (r.op) {
        case Op::read:
          r.error = read(r.offset, {r.data, r.length});
          break;
        case Op::write:
          r.error = write(r.offset, {r.data, r.length});
          break;
        case Op::zero:
          r.error = zero(r.offset, r.length);
          break;
        case Op::trim:
          r.error = trim(r.offset, r.length);
          break;
        case Op::flush:
          break;
      }
    }
    for (IoRequest& r : batch) {
      if (r.op != Op::flush) continue;
      record(kFlushTag);
      r.error = inner_->flush();
    }
  }

  [[nodiscard]] unsigned overlaps() const { return overlaps_.load(); }
  std::vector<std::uint64_t> log() {
    std::lock_guard lk(mu_);
    return log_;
  }
  // The log so far, which starts again empty.
  std::vector<std::uint64_t> take_log() {
    std::lock_guard lk(mu_);
    std::vector<std::uint64_t> l = log_;
    log_.clear();
    return l;
  }

 private:
  void record(std::uint64_t tag) {
    std::lock_guard lk(mu_);
    log_.push_back(tag);
  }

  std::unique_ptr<HostStore> inner_;
  bool batching_;
  std::atomic<unsigned> overlaps_{0};
  std::mutex mu_;
  std::vector<std::uint64_t> log_;
};

struct Path {
  const char* name;
  bool batching;
  std::size_t pipeline_bytes;
};
void PrintTo(const Path& p, std::ostream* os) {
  *os << p.name;
}

// A server over `n` socketpairs; conns[i] is the client end, in transmission.
struct InProcess {
  std::unique_ptr<ReversingStore> store;
  std::unique_ptr<Server> server;
  std::vector<int> conns;

  InProcess(const Path& p, int n) {
    store = std::make_unique<ReversingStore>(p.batching);
    ServerOptions opt;
    opt.connections = static_cast<unsigned>(n);
    opt.pipeline_bytes = p.pipeline_bytes;
    opt.reply_timeout_ms = 2000;
    std::vector<int> ours;
    for (int i = 0; i < n; ++i) {
      int sv[2];
      EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
      opt.fds.push_back(sv[1]);
      ours.push_back(sv[0]);
    }
    server = std::make_unique<Server>(*store, opt);
    EXPECT_TRUE(server->start());
    for (int fd : ours) conns.push_back(raw_go(fd));
  }
  ~InProcess() {
    for (int fd : conns)
      if (fd >= 0) ::close(fd);
    server->stop();
  }
  // Waits until only `n` clients are left.
  bool clients_drop_to(unsigned n, int timeout_ms = 3000) const {
    for (int i = 0; i < timeout_ms / 10; ++i) {
      if (server->clients() <= n) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }
};

class Order : public ::testing::TestWithParam<Path> {};

struct WireOp {
  std::uint16_t type;
  std::uint16_t flags;
  std::uint64_t offset;
  std::uint32_t length;
  std::vector<std::byte> payload;  // writes
};

// Random overlapping WRITE / READ / WRITE_ZEROES / FLUSH (FUA on some writes)
// in a 64 KiB window, all sent before any reply is read, so that the server
// receives them together and has to split its groups; replies are checked
// against a model applied in wire order, and the store's log against the
// FLUSHes' places on the wire.
TEST_P(Order, OverlappingRequestsAndFlushKeepWireOrder) {
  InProcess ip(GetParam(), 1);
  const int fd = ip.conns[0];
  ASSERT_GE(fd, 0);
  std::mt19937 rng(7);
  std::vector<std::byte> model(kSize);
  std::uint64_t tag = 1;
  for (int round = 0; round < 12; ++round) {
    const std::uint64_t base = (static_cast<std::uint64_t>(round) * (1 << 20)) % (kSize - (1 << 20));
    std::vector<WireOp> ops;
    std::vector<std::vector<std::byte>> expect;  // per op: what a READ must return
    std::vector<std::uint64_t> write_tags;       // per op: the write's tag, 0 if none
    for (int i = 0; i < 48; ++i) {
      WireOp op{};
      const unsigned kind = rng() % 8;
      op.offset = base + (rng() % 120) * 512;
      op.length = static_cast<std::uint32_t>((1 + rng() % 32) * 512);
      std::uint64_t wtag = 0;
      if (kind < 4) {
        op.type = nbd::kCmdWrite;
        op.flags = kind == 0 ? nbd::kCmdFlagFua : 0;
        op.payload = pattern(op.length, static_cast<unsigned>(tag * 31 + 5));
        wtag = tag++;
        std::memcpy(op.payload.data(), &wtag, 8);
        std::copy(op.payload.begin(), op.payload.end(),
                  model.begin() + static_cast<std::ptrdiff_t>(op.offset));
      } else if (kind < 6) {
        op.type = nbd::kCmdRead;
      } else if (kind == 6) {
        op.type = nbd::kCmdWriteZeroes;
        std::fill_n(model.begin() + static_cast<std::ptrdiff_t>(op.offset), op.length, std::byte{0});
      } else {
        op.type = nbd::kCmdFlush;
        op.offset = 0;
        op.length = 0;
      }
      expect.emplace_back();
      if (op.type == nbd::kCmdRead)
        expect.back().assign(model.begin() + static_cast<std::ptrdiff_t>(op.offset),
                             model.begin() + static_cast<std::ptrdiff_t>(op.offset + op.length));
      write_tags.push_back(wtag);
      ops.push_back(std::move(op));
    }
    // Everything in one go.
    std::vector<std::byte> wire;
    for (std::size_t i = 0; i < ops.size(); ++i) {
      nbd::Request r{ops[i].flags, ops[i].type, i + 1000 * static_cast<std::uint64_t>(round), ops[i].offset,
                     ops[i].length};
      std::byte b[nbd::kRequestSize];
      nbd::serialize_request(r, std::span<std::byte, nbd::kRequestSize>(b, nbd::kRequestSize));
      wire.insert(wire.end(), b, b + sizeof b);
      wire.insert(wire.end(), ops[i].payload.begin(), ops[i].payload.end());
    }
    std::jthread sender([&] { EXPECT_TRUE(send_all(fd, wire.data(), wire.size())); });
    for (std::size_t i = 0; i < ops.size(); ++i) {
      std::vector<std::byte> back(ops[i].type == nbd::kCmdRead ? ops[i].length : 0);
      ASSERT_EQ(raw_reply(fd, i + 1000 * static_cast<std::uint64_t>(round), &back), 0)
          << "round " << round << " request " << i;
      if (ops[i].type == nbd::kCmdRead) {
        EXPECT_TRUE(back == expect[i]) << "round " << round << ": READ " << i << " at " << ops[i].offset
                                       << " does not see the requests before it on the wire";
      }
    }
    sender.join();
    // Every write before a FLUSH on the wire reached the store before it, and
    // every write after it, after it.
    const auto log = ip.store->take_log();
    std::size_t flush_no = 0;
    for (std::size_t i = 0; i < ops.size(); ++i) {
      if (ops[i].type != nbd::kCmdFlush) continue;
      std::size_t at = log.size(), seen = 0;
      for (std::size_t k = 0; k < log.size() && at == log.size(); ++k)
        if (log[k] == kFlushTag && seen++ == flush_no) at = k;
      ++flush_no;
      ASSERT_LT(at, log.size()) << "round " << round << ": FLUSH " << i << " never reached the store";
      for (std::size_t j = 0; j < ops.size(); ++j) {
        if (write_tags[j] == 0) continue;
        const auto w =
            static_cast<std::size_t>(std::find(log.begin(), log.end(), write_tags[j]) - log.begin());
        ASSERT_LT(w, log.size()) << "round " << round << ": WRITE " << j << " never reached the store";
        if (j < i) {
          EXPECT_LT(w, at) << "round " << round << ": FLUSH " << i << " overtook WRITE " << j;
        } else if (j > i) {
          EXPECT_GT(w, at) << "round " << round << ": WRITE " << j << " overtook FLUSH " << i;
        }
      }
    }
  }
  EXPECT_EQ(ip.store->overlaps(), 0U) << "the server put requests whose order matters into one batch";
}

// The export is advertised multi-conn: a WRITE answered on one connection is
// seen by a READ on another, and covered by a FLUSH sent on another.
TEST_P(Order, WriteOnOneConnectionFlushAndReadOnAnother) {
  InProcess ip(GetParam(), 2);
  ASSERT_GE(ip.conns[0], 0);
  ASSERT_GE(ip.conns[1], 0);
  for (std::uint64_t i = 0; i < 8; ++i) {
    const int a = ip.conns[i % 2], b = ip.conns[(i + 1) % 2];
    std::vector<std::byte> data = pattern(64 << 10, static_cast<unsigned>(i + 100));
    const std::uint64_t tag = 0xABC0 + i;
    std::memcpy(data.data(), &tag, 8);
    const std::uint64_t off = i * (256 << 10);
    ASSERT_TRUE(raw_request(a, nbd::kCmdWrite, 0, off, 64 << 10, 1, data));
    ASSERT_EQ(raw_reply(a, 1), 0);
    ASSERT_TRUE(raw_request(b, nbd::kCmdFlush, 0, 0, 0, 2));
    ASSERT_EQ(raw_reply(b, 2), 0);
    const auto log = ip.store->log();
    const auto w = std::find(log.begin(), log.end(), tag);
    ASSERT_NE(w, log.end());
    EXPECT_NE(std::find(w, log.end(), kFlushTag), log.end())
        << "the FLUSH on the other connection came first";
    std::vector<std::byte> back(64 << 10);
    ASSERT_TRUE(raw_request(b, nbd::kCmdRead, 0, off, 64 << 10, 3));
    ASSERT_EQ(raw_reply(b, 3, &back), 0);
    EXPECT_TRUE(back == data) << "connection " << (i + 1) % 2 << " does not see the write made on the other";
  }
}

// A client that vanishes in the middle of its I/O (requests in flight,
// replies unread, a write's payload cut short) costs only its own
// connection: the slot is given back, the half-sent write changes nothing,
// each complete write is there whole or not at all, and the other connection
// goes on being served with the right data.
TEST_P(Order, DisconnectMidIoFreesTheSlotAndTearsNothing) {
  InProcess ip(GetParam(), 3);
  const int a = ip.conns[0], b = ip.conns[1], r = ip.conns[2];
  ASSERT_GE(a, 0);
  ASSERT_GE(b, 0);
  ASSERT_GE(r, 0);
  const std::uint64_t kChunk = 128 << 10;
  // Known contents first, acknowledged.
  const std::vector<std::byte> before = pattern(8 * kChunk, 1);
  ASSERT_TRUE(raw_request(b, nbd::kCmdWrite, 0, 0, static_cast<std::uint32_t>(before.size()), 9, before));
  ASSERT_EQ(raw_reply(b, 9), 0);
  auto put = [](std::vector<std::byte>& wire, std::uint16_t type, std::uint64_t off, std::uint32_t len,
                const std::vector<std::byte>& p) {
    nbd::Request q{0, type, off, off, len};
    std::byte h[nbd::kRequestSize];
    nbd::serialize_request(q, std::span<std::byte, nbd::kRequestSize>(h, nbd::kRequestSize));
    wire.insert(wire.end(), h, h + sizeof h);
    wire.insert(wire.end(), p.begin(), p.end());
  };
  // a: complete writes, then a write whose payload stops halfway; replies
  // unread; then gone while the server waits for the rest of the payload.
  std::vector<std::vector<std::byte>> writes;
  std::vector<std::byte> wire_a;
  for (int i = 0; i < 6; ++i) {
    writes.push_back(pattern(kChunk, static_cast<unsigned>(50 + i)));
    put(wire_a, nbd::kCmdWrite, i * kChunk, static_cast<std::uint32_t>(kChunk), writes.back());
  }
  put(wire_a, nbd::kCmdWrite, 7 * kChunk, static_cast<std::uint32_t>(kChunk), pattern(kChunk, 77));
  wire_a.resize(wire_a.size() - kChunk / 2);
  // r: large reads whose replies fill the socket (never read); then gone
  // while the server is sending. They read chunk 6, which a does not write:
  // reads overlapping writes in flight on another connection are not
  // ordered (NBD), and their bytes would race in the store.
  std::vector<std::byte> wire_r;
  for (int i = 0; i < 16; ++i) put(wire_r, nbd::kCmdRead, 6 * kChunk, static_cast<std::uint32_t>(kChunk), {});
  {
    std::jthread sa([&] { send_all(a, wire_a.data(), wire_a.size()); });
    std::jthread sr([&] { send_all(r, wire_r.data(), wire_r.size()); });
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    ::shutdown(a, SHUT_RDWR);
    ::shutdown(r, SHUT_RDWR);
  }
  EXPECT_TRUE(ip.clients_drop_to(1)) << "a vanished client kept its slot";

  std::vector<std::byte> back(8 * kChunk);
  ASSERT_TRUE(raw_request(b, nbd::kCmdRead, 0, 0, static_cast<std::uint32_t>(back.size()), 10));
  ASSERT_EQ(raw_reply(b, 10, &back), 0);
  for (std::size_t i = 0; i < 8; ++i) {
    const std::vector<std::byte> got(back.begin() + static_cast<std::ptrdiff_t>(i * kChunk),
                                     back.begin() + static_cast<std::ptrdiff_t>((i + 1) * kChunk));
    const std::vector<std::byte> old(before.begin() + static_cast<std::ptrdiff_t>(i * kChunk),
                                     before.begin() + static_cast<std::ptrdiff_t>((i + 1) * kChunk));
    if (i < writes.size()) {
      EXPECT_TRUE(got == old || got == writes[i]) << "chunk " << i << " is torn";
    } else {
      EXPECT_TRUE(got == old) << "chunk " << i << " changed (the half-sent write reached the store)";
    }
  }
  EXPECT_FALSE(ip.store->failed());
}

INSTANTIATE_TEST_SUITE_P(Paths, Order,
                         ::testing::Values(Path{"inline", false, SIZE_MAX}, Path{"batched", true, SIZE_MAX},
                                           Path{"pipelined", false, 4096},
                                           Path{"batched_pipelined", true, 4096}),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
