// tierswap-evac-bench: what evacuating a VRAM tier costs, store level.
//
// For each spill store (lz4, file): fills the export (half-compressible
// pages), then runs I/O threads doing random 4 KiB reads and writes through
// the MigratingStore (the exporter's data path minus the socket) while every
// chunk moves to the spill and back. Prints, per spill store:
//   - evacuation and promotion throughput (GB/s), beside the peer: the same
//     bytes written to / read from the spill store directly in slices by the
//     same number of threads (what the medium gives), and their ratio;
//   - p50/p99 of 4 KiB requests while nothing moves, during evacuation and
//     during promotion, and the ratio of p99 during to p99 idle.
// --store host (RAM; CPU machines) or cuda (GPU; see bench/gpu/run-device.sh).
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "backends/vram/latency_histogram.hpp"
#include "backends/vram/migrating_store.hpp"
#include "backends/vram/store_factory.hpp"

using namespace tierswap::vram;
using Clock = std::chrono::steady_clock;

namespace {

struct Args {
  std::string store = "host";
  std::uint64_t size = 1ULL << 30;
  std::uint64_t chunk = 64ULL << 20;
  std::vector<std::string> spills = {"lz4", "file:/var/tmp/tierswap-evac-bench.spill"};
  unsigned threads = 2;
  unsigned movers = 0;  // 0: the exporter's default for each spill (default_movers)
  std::uint64_t slice = 256U << 10;
  double idle_seconds = 1.0;
  // Unmeasured evacuate+promote rounds first (memory the spill allocates is
  // then no longer touched for the first time during the measured one).
  unsigned warm_rounds = 0;
};

std::uint64_t parse_size(const char* s) {
  char* end = nullptr;
  std::uint64_t v = std::strtoull(s, &end, 10);
  switch (*end) {
    case 'K':
      return v << 10;
    case 'M':
      return v << 20;
    case 'G':
      return v << 30;
    default:
      return v;
  }
}

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
}

void fill(std::byte* out, std::uint64_t p, std::uint64_t g) {
  std::uint64_t x = (p + 1) * 0x9E3779B97F4A7C15ULL ^ g * 0xBF58476D1CE4E5B9ULL;
  for (unsigned i = 0; i < 4096; i += 8) {
    if (i < 2048) {
      x ^= x >> 31;
      x *= 0xD6E8FEB86659FD93ULL;
    }
    std::memcpy(out + i, &x, 8);
  }
}

// Reads `bytes` of the primary store in slices into its own buffers,
// `threads` at once: the evacuation's first half alone (for CudaStore, the
// GPU-to-host copy).
double primary_read_gbps(BlockStore& primary, std::uint64_t bytes, std::uint64_t slice, unsigned threads) {
  std::atomic<std::uint64_t> next{0};
  auto t0 = Clock::now();
  std::vector<std::thread> ts;
  for (unsigned t = 0; t < threads; ++t)
    ts.emplace_back([&] {
      std::byte* buf = primary.allocate_buffer(slice);
      for (;;) {
        const std::uint64_t at = next.fetch_add(slice);
        if (at >= bytes) break;
        (void)primary.read(at, {buf, std::min(slice, bytes - at)});
      }
      primary.free_buffer(buf, slice);
    });
  for (auto& t : ts) t.join();
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  return static_cast<double>(bytes) / s / 1e9;
}

// Moves `bytes` in slices into or out of the spill directly, `threads` at
// once. Slices go round the chunks (slice k: chunk k % chunks), so that the
// threads work in different chunks at once, as movers do; a write is
// announced with expect() as an evacuation is.
double peer_gbps(SpillStore& spill, BlockStore& primary, std::uint64_t bytes, std::uint64_t chunk,
                 std::uint64_t slice, unsigned threads, bool write) {
  std::atomic<std::uint64_t> next{0};
  const std::uint64_t chunks = (bytes + chunk - 1) / chunk, per_chunk = (chunk + slice - 1) / slice;
  if (write) spill.expect(bytes);
  auto t0 = Clock::now();
  std::vector<std::thread> ts;
  for (unsigned t = 0; t < threads; ++t)
    ts.emplace_back([&] {
      std::byte* buf = primary.allocate_buffer(slice);
      for (std::uint64_t i = 0; i < slice; i += 4096) fill(buf + i, i, 3);
      for (;;) {
        const std::uint64_t k = next.fetch_add(1);
        if (k >= chunks * per_chunk) break;
        const std::uint64_t in = k / chunks * slice, at = k % chunks * chunk + in;
        if (at >= bytes || in >= chunk) continue;
        const std::uint64_t n = std::min({slice, bytes - at, chunk - in});
        if (write)
          (void)spill.write(at, {buf, n});
        else
          (void)spill.read(at, {buf, n});
      }
      primary.free_buffer(buf, slice);
    });
  for (auto& t : ts) t.join();
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  if (write) spill.expect(0);
  return static_cast<double>(bytes) / s / 1e9;
}

struct Phase {
  LatencyHistogram h;
};

int run(Args a, const std::string& spill_spec) {
  StoreOptions so;
  so.kind = a.store;
  so.size = a.size;
  so.chunk_bytes = a.chunk;
  so.lock = false;
  std::string report;
  auto store = make_store(so, report);
  if (!store) {
    std::fprintf(stderr, "%s\n", store.error().describe().c_str());
    return 1;
  }
  auto* chunked = dynamic_cast<ChunkedStore*>(store->get());
  if (chunked == nullptr) return 1;
  auto spill = make_spill(spill_spec, chunked->size());
  if (!spill) {
    std::fprintf(stderr, "%s\n", spill.error().describe().c_str());
    return 1;
  }
  const std::string spill_desc = (*spill)->describe();
  SpillStore& spill_ref = **spill;
  MoverOptions mo;
  a.movers = a.movers > 0 ? a.movers : default_movers(spill_spec);
  mo.workers = a.movers;
  mo.slice_bytes = a.slice;
  MigratingStore m(*chunked, std::move(*spill), mo);
  const std::uint64_t pages = chunked->size() / 4096;
  {  // fill
    std::byte* buf = m.allocate_buffer(1 << 20);
    for (std::uint64_t off = 0; off < chunked->size(); off += 1 << 20) {
      for (unsigned i = 0; i < 256; ++i) fill(buf + i * 4096, off / 4096 + i, 1);
      (void)m.write(off, {buf, std::min<std::uint64_t>(1 << 20, chunked->size() - off)});
    }
    m.free_buffer(buf, 1 << 20);
  }
  Phase idle, out, in;
  std::atomic<Phase*> phase{&idle};
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> errors{0};
  std::vector<std::thread> io;
  for (unsigned t = 0; t < a.threads; ++t)
    io.emplace_back([&, t] {
      std::byte* buf = m.allocate_buffer(4096);
      std::mt19937_64 rng(t + 11);
      while (!stop) {
        const std::uint64_t p = rng() % pages;
        const bool write = rng() % 2 == 0;
        if (write) fill(buf, p, 2);
        const std::int64_t t0 = now_ns();
        IoRequest r{write ? Op::write : Op::read, p * 4096, 4096, buf, 0};
        m.submit(std::span<IoRequest>(&r, 1));
        const std::int64_t t1 = now_ns();
        if (r.error != 0) errors++;
        Phase* ph = phase.load();
        if (ph != nullptr) ph->h.record(static_cast<std::uint64_t>(t1 - t0));
      }
      m.free_buffer(buf, 4096);
    });
  std::this_thread::sleep_for(std::chrono::duration<double>(a.idle_seconds));
  phase = nullptr;
  for (unsigned r = 0; r < a.warm_rounds; ++r) {
    (void)m.evacuate();
    (void)m.wait();
    (void)m.promote();
    (void)m.wait();
  }
  phase = &out;
  (void)m.evacuate();
  const MoveProgress pe = m.wait();
  phase = nullptr;
  const std::uint64_t resident_after = chunked->resident_bytes();
  const double ratio = spill_ref.ratio();
  phase = &in;
  (void)m.promote();
  const MoveProgress pp = m.wait();
  phase = nullptr;
  stop = true;
  for (auto& t : io) t.join();
  // The peer: the same bytes straight into and out of the spill store.
  const double peer_w = peer_gbps(spill_ref, *chunked, chunked->size(), a.chunk, a.slice, a.movers, true);
  const double peer_r = peer_gbps(spill_ref, *chunked, chunked->size(), a.chunk, a.slice, a.movers, false);
  const double primary_r = primary_read_gbps(*chunked, chunked->size(), a.slice, a.movers);
  const double ev = static_cast<double>(pe.bytes_moved) / pe.seconds / 1e9;
  const double pr = static_cast<double>(pp.bytes_moved) / pp.seconds / 1e9;
  auto us = [](const LatencyHistogram& h, double q) { return static_cast<double>(h.percentile(q)) / 1000.0; };
  std::printf(
      "\n### %s store, %s spill%s\n\n%s\n\n%s\n\n", a.store.c_str(), spill_spec.c_str(),
      a.warm_rounds > 0 ? (", after " + std::to_string(a.warm_rounds) + " unmeasured rounds").c_str() : "",
      report.c_str(), spill_desc.c_str());
  std::printf(
      "| move | GB/s | peer (spill store direct, %u threads) GB/s | ratio |\n| --- | --- | --- | --- |\n",
      a.movers);
  std::printf("| evacuate (%u chunks) | %.2f | %.2f (write) | %.2f |\n", pe.chunks_done, ev, peer_w,
              ev / peer_w);
  std::printf("| promote (%u chunks) | %.2f | %.2f (read) | %.2f |\n\n", pp.chunks_done, pr, peer_r,
              pr / peer_r);
  std::printf(
      "Where evacuation's time goes (same threads, each half alone): reading the %s store %.2f GB/s, "
      "writing the %s spill %.2f GB/s; pages written during their slice's copy and copied again: %llu "
      "(evacuate), %llu (promote).\n\n",
      a.store.c_str(), primary_r, spill_spec.c_str(), peer_w,
      static_cast<unsigned long long>(pe.pages_recopied), static_cast<unsigned long long>(pp.pages_recopied));
  std::printf(
      "| movers' time, summed (s) | wall × movers | reading the source | writing the destination | commits "
      "(exclusive holds) | releasing / restoring chunks |\n| --- | --- | --- | --- | --- | --- |\n");
  for (auto [name, p] : {std::pair{"evacuate", &pe}, {"promote", &pp}})
    std::printf("| %s | %.2f | %.2f | %.2f | %.3f | %.3f |\n", name, p->seconds * a.movers, p->read_seconds,
                p->write_seconds, p->hold_seconds, p->chunk_seconds);
  std::printf("\n");
  std::printf(
      "| 4 KiB I/O (%u threads, random r/w) | requests | p50 us | p99 us | p99 / idle p99 |\n"
      "| --- | --- | --- | --- | --- |\n",
      a.threads);
  const double idle99 = us(idle.h, 0.99);
  for (auto [name, ph] : {std::pair{"idle", &idle}, {"during evacuate", &out}, {"during promote", &in}})
    std::printf("| %s | %llu | %.1f | %.1f | %.2f |\n", name, static_cast<unsigned long long>(ph->h.total()),
                us(ph->h, 0.5), us(ph->h, 0.99), idle99 > 0 ? us(ph->h, 0.99) / idle99 : 0.0);
  std::printf("\nresident after evacuate: %llu bytes; spill ratio %.2f; errors %llu; %s%s\n",
              static_cast<unsigned long long>(resident_after), ratio,
              static_cast<unsigned long long>(errors.load()), pe.error.empty() ? "" : pe.error.c_str(),
              pp.error.c_str());
  return errors == 0 && pe.error.empty() && pp.error.empty() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : "";
    if (k == "--store")
      a.store = v, ++i;
    else if (k == "--size")
      a.size = parse_size(v), ++i;
    else if (k == "--chunk")
      a.chunk = parse_size(v), ++i;
    else if (k == "--slice")
      a.slice = parse_size(v), ++i;
    else if (k == "--threads")
      a.threads = static_cast<unsigned>(std::atoi(v)), ++i;
    else if (k == "--warm-rounds")
      a.warm_rounds = static_cast<unsigned>(std::atoi(v)), ++i;
    else if (k == "--movers")
      a.movers = static_cast<unsigned>(std::atoi(v)), ++i;
    else if (k == "--spill") {
      if (a.spills.size() == 2 && a.spills[0] == "lz4" &&
          a.spills[1].starts_with("file:/var/tmp/tierswap-evac"))
        a.spills.clear();
      a.spills.push_back(v);
      ++i;
    } else {
      std::fprintf(stderr,
                   "usage: tierswap-evac-bench [--store host|cuda] [--size 1G] [--chunk 64M] [--slice 256K]\n"
                   "       [--threads 2] [--movers N (default: the exporter's)] [--warm-rounds 0] [--spill "
                   "lz4|lz4:ACCEL|file:/PATH]...\n");
      return 2;
    }
  }
  std::printf(
      "## tierswap-evac-bench --store %s --size %llu --chunk %llu --slice %llu --threads %u --movers %u\n",
      a.store.c_str(), static_cast<unsigned long long>(a.size), static_cast<unsigned long long>(a.chunk),
      static_cast<unsigned long long>(a.slice), a.threads, a.movers);
  int rc = 0;
  for (const auto& s : a.spills) {
    rc |= run(a, s);
  }
  return rc;
}
