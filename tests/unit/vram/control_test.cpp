// The control channel's answers, line by line, without an exporter
// (tests/nbd/nbd_evac_test.cpp drives the real one), and the daemon's
// client over a socketpair.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "backends/vram/control_server.hpp"
#include "backends/vram/exporter_control.hpp"
#include "backends/vram/host_store.hpp"

namespace tierswap::vram {
namespace {

using nlohmann::json;

std::unique_ptr<HostStore> host() {
  HostStoreOptions o;
  o.size = 8 << 20;
  o.chunk_bytes = 1 << 20;
  o.lock = false;
  return std::move(*HostStore::create(o));
}

TEST(ControlLine, StatsWithoutSpill) {
  auto h = host();
  Server server(*h, {});
  const json j = json::parse(handle_control_line(R"({"cmd":"stats"})", server, *h, nullptr));
  EXPECT_TRUE(j["ok"].get<bool>());
  EXPECT_EQ(j["store"], "host");
  EXPECT_EQ(j["chunks"]["total"], 8);
  EXPECT_TRUE(j["spill"].is_null());
  EXPECT_EQ(j["ops"]["read"]["requests"], 0);
  EXPECT_TRUE(j["latency_us"].contains("p99"));
}

// The daemon reads every operation's counts and the latency histogram out
// of the stats answer (they feed the tierswap_exporter_* metrics).
TEST(ExporterControl, FiguresCarryEveryOperationAndTheHistogram) {
  const json stats = json::parse(R"({"ok":true,"size":8388608,"requests":7,
    "ops":{"read":{"requests":4,"bytes":16384},"write":{"requests":2,"bytes":8192},
           "flush":{"requests":1,"bytes":0}},
    "latency_us":{"p50":10.5,"p99":40.0,"samples":7,"buckets_ns":[[10239,5],[40959,2]]}})");
  const TierFigures f = figures_from_json(stats);
  ASSERT_EQ(f.ops.size(), 3U);
  bool read = false, flush = false;
  for (const OpFigures& o : f.ops) {
    if (o.op == "read") read = o.requests == 4 && o.bytes == 16384;
    if (o.op == "flush") flush = o.requests == 1;
  }
  EXPECT_TRUE(read);
  EXPECT_TRUE(flush);
  EXPECT_EQ(f.read_bytes, 16384U);
  EXPECT_EQ(f.write_bytes, 8192U);
  ASSERT_EQ(f.latency_buckets.size(), 2U);
  EXPECT_EQ(f.latency_buckets[0], (std::pair<std::uint64_t, std::uint64_t>{10239, 5}));
  EXPECT_EQ(f.latency_buckets[1].second, 2U);
}

// The server's answer carries the histogram it computes its percentiles
// from: every bucket's count adds up to the samples.
TEST(ControlLine, StatsCarryTheLatencyHistogram) {
  auto h = host();
  Server server(*h, {});
  const json j = json::parse(handle_control_line(R"({"cmd":"stats"})", server, *h, nullptr));
  ASSERT_TRUE(j["latency_us"].contains("buckets_ns"));
  std::uint64_t total = 0;
  for (const auto& b : j["latency_us"]["buckets_ns"]) total += b[1].get<std::uint64_t>();
  EXPECT_EQ(total, j["latency_us"]["samples"].get<std::uint64_t>());
}

TEST(ControlLine, EvacuateWithoutSpillIsAClearError) {
  auto h = host();
  Server server(*h, {});
  const json j = json::parse(handle_control_line(R"({"cmd":"evacuate"})", server, *h, nullptr));
  EXPECT_FALSE(j["ok"].get<bool>());
  EXPECT_NE(j["error"].get<std::string>().find("no spill store configured"), std::string::npos);
}

TEST(ControlLine, BadLines) {
  auto h = host();
  Server server(*h, {});
  for (const char* line : {"stats", "{\"cmd\": 3}", "[1,2]", "{\"cmd\":\"reboot\"}"}) {
    const json j = json::parse(handle_control_line(line, server, *h, nullptr));
    EXPECT_FALSE(j["ok"].get<bool>()) << line;
    EXPECT_FALSE(j["error"].get<std::string>().empty()) << line;
  }
}

TEST(ControlLine, EvacuateProgressPromoteWithSpill) {
  auto h = host();
  auto lz = make_lz4_spill(h->size());
  ASSERT_TRUE(lz);
  MigratingStore m(*h, std::move(*lz));
  Server server(m, {});
  json j = json::parse(handle_control_line(R"({"cmd":"evacuate"})", server, *h, &m));
  ASSERT_TRUE(j["ok"].get<bool>()) << j.dump();
  EXPECT_EQ(j["job"], "evacuate");
  m.wait();
  j = json::parse(handle_control_line(R"({"cmd":"progress"})", server, *h, &m));
  EXPECT_FALSE(j["running"].get<bool>());
  EXPECT_EQ(j["chunks_done"], 8);
  EXPECT_TRUE(j["error"].is_null());
  j = json::parse(handle_control_line(R"({"cmd":"stats"})", server, *h, &m));
  EXPECT_EQ(j["chunks"]["spilled"], 8);
  EXPECT_EQ(j["chunks"]["map"], "SSSSSSSS");
  EXPECT_EQ(j["resident_bytes"], 0);
  EXPECT_EQ(j["spill"]["kind"], "lz4");
  j = json::parse(handle_control_line(R"({"cmd":"promote"})", server, *h, &m));
  ASSERT_TRUE(j["ok"].get<bool>());
  m.wait();
  j = json::parse(handle_control_line(R"({"cmd":"stats"})", server, *h, &m));
  EXPECT_EQ(j["chunks"]["resident"], 8);
}

TEST(ExporterControl, ClientOverASocketpair) {
  auto h = host();
  Server server(*h, {});
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  ControlServer cs(sv[1], server, *h, nullptr);
  ASSERT_TRUE(cs.start());
  ExporterControl client(sv[0]);
  auto s = client.stats();
  ASSERT_TRUE(s) << s.error().describe();
  EXPECT_EQ((*s)["store"], "host");
  auto e = client.evacuate();
  ASSERT_FALSE(e);
  EXPECT_NE(e.error().message.find("no spill store configured"), std::string::npos) << e.error().message;
  // An over-long line is refused, and the channel still answers afterwards.
  const std::string junk(kMaxControlLine + 10, 'x');
  ASSERT_EQ(::send(sv[0], junk.data(), junk.size(), 0), static_cast<ssize_t>(junk.size()));
  ASSERT_EQ(::send(sv[0], "\n", 1, 0), 1);
  char buf[512];
  const ssize_t n = ::recv(sv[0], buf, sizeof buf, 0);
  ASSERT_GT(n, 0);
  EXPECT_NE(std::string(buf, static_cast<std::size_t>(n)).find("longer than"), std::string::npos);
  EXPECT_TRUE(client.progress());
  cs.stop();
  ::close(sv[0]);
  ::close(sv[1]);
}

TEST(ExporterControl, TimesOutAndSeesTheEnd) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  ExporterControl client(sv[0]);
  auto r = client.stats(100);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ETIMEDOUT);
  ::close(sv[1]);
  r = client.stats(100);
  ASSERT_FALSE(r);
  ::close(sv[0]);
}

}  // namespace
}  // namespace tierswap::vram
