// No allocation on the I/O path: this binary replaces malloc & co. with
// counting versions, runs the server in-process, and counts what its I/O
// threads allocate during a burst of I/O (after the connections are set up).
// Also checks that the batching path gathers requests across connections.
// In a sanitizer tree (TIERSWAP_SANITIZE) the sanitizer's runtime owns
// malloc: the counting versions are not compiled and the counting tests skip
// (the batching tests still run).
#include <gtest/gtest.h>
#include <libnbd.h>
#include <sys/socket.h>

#include <atomic>
#include <cstdlib>
#include <memory>
#include <vector>

#include "backends/vram/host_store.hpp"
#include "backends/vram/nbd_server.hpp"
#include "tests/nbd/nbd_test_util.hpp"

namespace {
std::atomic<long> g_io_allocs{0};
thread_local bool t_io_thread = false;
[[maybe_unused]] inline void count() {
  if (t_io_thread) g_io_allocs.fetch_add(1, std::memory_order_relaxed);
}
}  // namespace

#if !TIERSWAP_SANITIZED_TREE
extern "C" {
void* __libc_malloc(size_t);
void* __libc_calloc(size_t, size_t);
void* __libc_realloc(void*, size_t);
void* __libc_memalign(size_t, size_t);
}

extern "C" {
void* malloc(size_t n) {
  count();
  return __libc_malloc(n);
}
void* calloc(size_t a, size_t b) {
  count();
  return __libc_calloc(a, b);
}
void* realloc(void* p, size_t n) {
  count();
  return __libc_realloc(p, n);
}
void* memalign(size_t al, size_t n) {
  count();
  return __libc_memalign(al, n);
}
void* aligned_alloc(size_t al, size_t n) {
  count();
  return __libc_memalign(al, n);
}
int posix_memalign(void** out, size_t al, size_t n) {
  count();
  void* p = __libc_memalign(al, n);
  if (p == nullptr) return ENOMEM;
  *out = p;
  return 0;
}
}
#endif

using namespace tierswap::vram;
using namespace nbdtest;

namespace {

struct InProcess {
  std::unique_ptr<HostStore> store;
  std::unique_ptr<Server> server;
  std::vector<nbd_handle*> conns;

  explicit InProcess(bool batching, int n_conns, std::size_t pipeline_bytes = SIZE_MAX) {
    HostStoreOptions so;
    so.size = 64ULL << 20;
    so.lock = false;
    so.prefer_batching = batching;
    store = std::move(HostStore::create(so).value());
    ServerOptions opt;
    opt.connections = static_cast<unsigned>(n_conns);
    opt.pipeline_bytes = pipeline_bytes;
    opt.on_io_thread_start = [] { t_io_thread = true; };
    std::vector<int> theirs;
    for (int i = 0; i < n_conns; ++i) {
      int sv[2];
      EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
      opt.fds.push_back(sv[1]);
      theirs.push_back(sv[0]);
    }
    server = std::make_unique<Server>(*store, opt);
    EXPECT_TRUE(server->start());
    for (int fd : theirs) {
      nbd_handle* h = nbd_create();
      EXPECT_EQ(nbd_connect_socket(h, fd), 0) << nbd_get_error();
      conns.push_back(h);
    }
  }
  ~InProcess() {
    for (auto* h : conns) {
      nbd_shutdown(h, 0);
      nbd_close(h);
    }
    server->stop();
  }

  // Keeps `depth` requests in flight on every connection for `rounds`
  // rounds of writes then verified reads, with some large ones, flushes,
  // zeroes and trims.
  void burst(int depth, int rounds) {
    const std::size_t nc = conns.size();
    std::vector<std::vector<std::byte>> w(nc * static_cast<std::size_t>(depth)), r(w.size());
    std::vector<std::byte> big = pattern(3 << 20, 5), big_back(3 << 20);
    for (int round = 0; round < rounds; ++round) {
      for (std::size_t c = 0; c < nc; ++c) {
        for (int d = 0; d < depth; ++d) {
          const std::size_t slot = c * static_cast<std::size_t>(depth) + static_cast<std::size_t>(d);
          const std::uint64_t off = slot * 65536;
          w[slot] = pattern(4096 << (d % 4), static_cast<unsigned>(slot + round * 7919));
          ASSERT_GE(nbd_aio_pwrite(conns[c], w[slot].data(), w[slot].size(), off, NBD_NULL_COMPLETION,
                                   d == 0 ? LIBNBD_CMD_FLAG_FUA : 0),
                    0);
        }
        ASSERT_GE(nbd_aio_zero(conns[c], 4096, (32ULL << 20) + c * 8192, NBD_NULL_COMPLETION, 0), 0);
        ASSERT_GE(nbd_aio_trim(conns[c], 4096, (40ULL << 20) + c * 8192, NBD_NULL_COMPLETION, 0), 0);
      }
      ASSERT_GE(nbd_aio_pwrite(conns[0], big.data(), big.size(), 48ULL << 20, NBD_NULL_COMPLETION, 0), 0);
      drain();
      for (auto* h : conns) ASSERT_EQ(nbd_flush(h, 0), 0);
      for (std::size_t c = 0; c < nc; ++c) {
        for (int d = 0; d < depth; ++d) {
          const std::size_t slot = c * static_cast<std::size_t>(depth) + static_cast<std::size_t>(d);
          r[slot].assign(w[slot].size(), std::byte{0});
          ASSERT_GE(nbd_aio_pread(conns[(c + 1) % nc], r[slot].data(), r[slot].size(), slot * 65536,
                                  NBD_NULL_COMPLETION, 0),
                    0);
        }
      }
      ASSERT_GE(
          nbd_aio_pread(conns[nc - 1], big_back.data(), big_back.size(), 48ULL << 20, NBD_NULL_COMPLETION, 0),
          0);
      drain();
      for (std::size_t i = 0; i < w.size(); ++i) ASSERT_TRUE(r[i] == w[i]) << i;
      ASSERT_TRUE(big_back == big);
    }
  }

  void drain() {
    bool busy = true;
    while (busy) {
      busy = false;
      for (auto* h : conns) {
        if (nbd_aio_in_flight(h) > 0) {
          busy = true;
          ASSERT_GE(nbd_poll(h, 0), 0) << nbd_get_error();
        }
        int64_t cookie;
        while ((cookie = nbd_aio_peek_command_completed(h)) > 0)
          ASSERT_EQ(nbd_aio_command_completed(h, cookie), 1);
      }
    }
  }
};

TEST(AllocationCounter, CountsOnFlaggedThreadsOnly) {
  if (TIERSWAP_SANITIZED_TREE)
    GTEST_SKIP() << "built with a sanitizer, whose runtime replaces malloc: allocations cannot be counted";
  const long before = g_io_allocs.load();
  {
    std::string s(1000, 'x');
    asm volatile("" : : "r"(s.data()) : "memory");
  }
  EXPECT_EQ(g_io_allocs.load(), before);
  t_io_thread = true;
  {
    std::string s(1000, 'x');
    asm volatile("" : : "r"(s.data()) : "memory");
  }
  t_io_thread = false;
  EXPECT_EQ(g_io_allocs.load(), before + 1);
}

// "inline", "batched" (cross-connection batcher), "pipelined" (every group
// with payload completed on the slot's second thread).
class NoAllocation : public ::testing::TestWithParam<std::string> {};

TEST_P(NoAllocation, ServingABurstAllocatesNothingOnTheIoThreads) {
  if (TIERSWAP_SANITIZED_TREE)
    GTEST_SKIP() << "built with a sanitizer, whose runtime replaces malloc: allocations cannot be counted";
  InProcess p(GetParam() == "batched", 4, GetParam() == "pipelined" ? 512 : SIZE_MAX);
  p.burst(8, 1);  // warm-up: handshakes are done, every path taken once
  const long before = g_io_allocs.load();
  p.burst(32, 6);
  const long during = g_io_allocs.load() - before;
  EXPECT_EQ(during, 0) << "allocations on the I/O threads while serving";
  EXPECT_GT(p.server->stats().requests, 1500U);
}

INSTANTIATE_TEST_SUITE_P(Paths, NoAllocation, ::testing::Values("inline", "batched", "pipelined"),
                         [](const auto& info) { return info.param; });

TEST(Batching, RequestsFromSeveralConnectionsShareOneSubmit) {
  InProcess p(true, 4);
  p.burst(32, 4);
  const auto st = p.server->stats();
  EXPECT_GT(st.batches, 0U);
  EXPECT_EQ(st.batches, p.store->batches());
  // Gathering works: some submit() carried the groups of several connections
  // (how many on average depends on the machine's load, so it is not asserted).
  EXPECT_GE(st.max_groups_in_batch, 2U) << st.requests << " requests in " << st.batches << " batches";
  EXPECT_GT(st.requests, st.batches);
}

TEST(Batching, InlineStoreIsNeverBatched) {
  InProcess p(false, 2);
  p.burst(8, 1);
  EXPECT_EQ(p.server->stats().batches, 0U);
}

}  // namespace
