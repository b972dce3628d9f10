// The status document through nlohmann-json: what status_to_json writes,
// status_from_json reads back; bad documents are protocol errors naming the key.
#include "dbus/status_json.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>

namespace tierswap::dbus {
namespace {

Status sample() {
  Status s;
  s.version = "0.1.0";
  s.state = "running";
  s.config_source = "/etc/tier\"swap\n.yaml";  // escaped, not cut
  s.swappiness = 150;
  s.memory_pressure.some = {1.25, 0.5, 0.125, 123456789012ULL};
  s.io_pressure.full = {0, 0, 7.75, 42};
  s.swap_in_pages_per_s = 12.5;
  s.swap_out_pages_per_s = 3;
  s.mem_total_bytes = 17179869184ULL;
  s.mem_available_bytes = 1ULL << 40;
  TierStatus t;
  t.name = "fast";
  t.kind = "zram";
  t.device = "/dev/zram1";
  t.priority = 100;
  t.state = TierState::drained;
  t.size_bytes = 8ULL << 30;
  t.used_bytes = 12345;
  t.stored_bytes = 4567;
  t.compression_ratio = 2.703125;
  t.latency_p99_us = 17;
  s.tiers.push_back(t);
  s.gpus.push_back({"H200", 1ULL << 37, 1ULL << 36, 1ULL << 30});
  return s;
}

TEST(StatusJson, RoundTripsEveryField) {
  const Status s = sample();
  for (const bool pretty : {false, true}) {
    auto back = status_from_json(status_to_json(s, pretty));
    ASSERT_TRUE(back) << back.error().message;
    EXPECT_EQ(back->version, s.version);
    EXPECT_EQ(back->state, s.state);
    EXPECT_EQ(back->config_source, s.config_source);
    EXPECT_EQ(back->swappiness, s.swappiness);
    EXPECT_EQ(back->memory_pressure.some.avg10, 1.25);
    EXPECT_EQ(back->memory_pressure.some.total_us, 123456789012ULL);
    EXPECT_EQ(back->io_pressure.full.avg300, 7.75);
    EXPECT_EQ(back->swap_in_pages_per_s, 12.5);
    EXPECT_EQ(back->mem_total_bytes, s.mem_total_bytes);
    EXPECT_EQ(back->mem_available_bytes, s.mem_available_bytes);
    ASSERT_EQ(back->tiers.size(), 1u);
    EXPECT_EQ(back->tiers[0].name, "fast");
    EXPECT_EQ(back->tiers[0].state, TierState::drained);
    EXPECT_EQ(back->tiers[0].size_bytes, 8ULL << 30);
    EXPECT_EQ(back->tiers[0].compression_ratio, 2.703125);
    EXPECT_EQ(back->tiers[0].latency_p99_us, 17u);
    ASSERT_EQ(back->gpus.size(), 1u);
    EXPECT_EQ(back->gpus[0].used_by_tier_bytes, 1ULL << 30);
  }
}

TEST(StatusJson, CompactIsOneLinePrettyEndsWithANewline) {
  const std::string compact = status_to_json(sample(), false);
  EXPECT_EQ(compact.find('\n'), std::string::npos);
  EXPECT_TRUE(compact.starts_with("{\"format\":1,\"version\":\"0.1.0\",\"state\":\"running\",")) << compact;
  const std::string pretty = status_to_json(sample(), true);
  EXPECT_TRUE(pretty.starts_with("{\n  \"format\": 1,\n")) << pretty;
  EXPECT_TRUE(pretty.ends_with("}\n"));
}

TEST(StatusJson, NotANumberIsNull) {
  Status s = sample();
  s.tiers[0].compression_ratio = std::numeric_limits<double>::quiet_NaN();
  EXPECT_NE(status_to_json(s).find("\"compression_ratio\":null"), std::string::npos);
}

TEST(StatusJson, BadDocumentsAreProtocolErrorsNamingTheKey) {
  auto not_json = status_from_json("{\"state\": ");
  ASSERT_FALSE(not_json);
  EXPECT_EQ(not_json.error().kind, ErrorKind::protocol);
  EXPECT_NE(not_json.error().message.find("status document is not valid JSON"), std::string::npos);

  auto not_object = status_from_json("[1,2]");
  ASSERT_FALSE(not_object);
  EXPECT_EQ(not_object.error().kind, ErrorKind::protocol);

  auto bad_state = status_from_json(R"({"tiers":[{"name":"a"},{"state":"melting"}]})");
  ASSERT_FALSE(bad_state);
  EXPECT_EQ(bad_state.error().message, "tiers[1].state: \"melting\" is not a tier state");

  auto bad_type = status_from_json(R"({"memory":{"total_bytes":"lots"}})");
  ASSERT_FALSE(bad_type);
  EXPECT_EQ(bad_type.error().kind, ErrorKind::protocol);
  EXPECT_TRUE(bad_type.error().message.starts_with("memory: ")) << bad_type.error().message;
}

TEST(StatusJson, MissingKeysKeepTheirDefaults) {
  auto s = status_from_json("{}");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->swappiness, -1);
  EXPECT_TRUE(s->tiers.empty());
}

}  // namespace
}  // namespace tierswap::dbus

namespace tierswap::dbus {
namespace {

// A vram tier's exporter figures (only when its exporter answered), the
// evacuated state and per-cgroup memory pressure round-trip; a document
// without them reads as before.
TEST(StatusJson, ExporterFiguresEvacuatedAndCgroupPressureRoundTrip) {
  Status s;
  TierStatus t;
  t.name = "gpu";
  t.kind = "vram";
  t.state = TierState::evacuated;
  t.exporter_live = true;
  t.exporter_requests = 1234;
  t.exporter_figures_age_ms = 1500;
  t.exporter_read_bytes = 4096;
  t.exporter_write_bytes = 8192;
  t.exporter_queue_depth = 3;
  t.exporter_latency_p50_us = 21.5;
  t.exporter_latency_p99_us = 160.25;
  t.resident_bytes = 0;
  t.spilled_bytes = 64ULL << 20;
  t.spill = "lz4";
  t.spill_ratio = 2.5;
  t.spill_stored_bytes = 1 << 20;
  s.tiers.push_back(t);
  t.name = "cold";
  t.exporter_live = false;  // not read this time: no figures written
  t.state = TierState::active;
  s.tiers.push_back(t);
  s.cgroup_pressure.push_back({"postgresql.service", {{12.5, 3, 1, 42}, {7.25, 0, 0, 9}}});
  const std::string text = status_to_json(s, false);
  auto back = status_from_json(text);
  ASSERT_TRUE(back) << back.error().message;
  ASSERT_EQ(back->tiers.size(), 2u);
  const auto& b = back->tiers[0];
  EXPECT_EQ(b.state, TierState::evacuated);
  EXPECT_TRUE(b.exporter_live);
  EXPECT_EQ(b.exporter_requests, 1234u);
  EXPECT_EQ(b.exporter_figures_age_ms, 1500u);
  EXPECT_EQ(b.exporter_write_bytes, 8192u);
  EXPECT_EQ(b.exporter_queue_depth, 3u);
  EXPECT_DOUBLE_EQ(b.exporter_latency_p99_us, 160.25);
  EXPECT_EQ(b.spilled_bytes, 64ULL << 20);
  EXPECT_EQ(b.spill, "lz4");
  EXPECT_DOUBLE_EQ(b.spill_ratio, 2.5);
  EXPECT_FALSE(back->tiers[1].exporter_live);
  EXPECT_EQ(back->tiers[1].spill, "");
  ASSERT_EQ(back->cgroup_pressure.size(), 1u);
  EXPECT_EQ(back->cgroup_pressure[0].cgroup, "postgresql.service");
  EXPECT_DOUBLE_EQ(back->cgroup_pressure[0].memory.full.avg10, 7.25);
  EXPECT_EQ(status_to_json(Status{}, false).find("cgroup_pressure"), std::string::npos);
}

}  // namespace
}  // namespace tierswap::dbus
