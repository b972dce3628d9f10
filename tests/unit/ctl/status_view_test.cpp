// How tierswapctl shows a Status (label unit): the text of `status` and of
// one `watch` frame compared with golden files (tests/fixtures/status/),
// and the --json document, for a machine with a zram tier, a VRAM tier
// whose exporter runs, one whose exporter died, GPUs, policy counters and
// a block lock against suspend. TIERSWAP_UPDATE_GOLDEN=1 rewrites the
// golden files from the output (review the diff before committing).
#include "ctl/status_view.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/json.hpp"
#include "dbus/status_json.hpp"

namespace tierswap::test {
namespace {

namespace fs = std::filesystem;

Status sample() {
  Status s;
  s.version = "0.9.0";
  s.state = "running";
  s.config_source = "/etc/tierswap.yaml";
  s.swappiness = 150;
  s.memory_pressure.some = {1.25, 0.5, 0.1, 100};
  s.memory_pressure.full = {0.25, 0, 0, 10};
  s.swap_in_pages_per_s = 12;
  s.swap_out_pages_per_s = 340;
  s.mem_total_bytes = 16ULL << 30;
  s.mem_available_bytes = 6ULL << 30;

  TierStatus z;
  z.name = "fast";
  z.kind = "zram";
  z.device = "/dev/zram0";
  z.priority = 100;
  z.state = TierState::active;
  z.size_bytes = 4ULL << 30;
  z.used_bytes = 1ULL << 30;
  z.stored_bytes = 300ULL << 20;
  z.compression_ratio = 3.41;
  s.tiers.push_back(z);

  TierStatus v;
  v.name = "gpu";
  v.kind = "vram";
  v.device = "/dev/nbd0";
  v.priority = 50;
  v.state = TierState::active;
  v.size_bytes = 8ULL << 30;
  v.used_bytes = 2ULL << 30;
  v.stored_bytes = v.used_bytes;
  v.exporter_pid = 4242;
  v.exporter_state = "running";
  v.store = "cuda";
  v.connections = 8;
  v.gpu = "GPU-6f1c";
  s.tiers.push_back(v);

  TierStatus d;
  d.name = "gpu2";
  d.kind = "vram";
  d.device = "/dev/nbd1";
  d.priority = 40;
  d.state = TierState::failed;
  d.size_bytes = 1ULL << 30;
  d.exporter_pid = 4343;
  d.exporter_state = "gone";
  d.store = "host";
  d.connections = 1;
  d.failure =
      "its exporter failed: tierswap-nbd (pid 4343) no longer runs. The pages it held are gone: the kernel "
      "returns I/O errors to their owners (a process touching one gets SIGBUS)";
  s.tiers.push_back(d);

  s.gpus.push_back({"NVIDIA H200", 141ULL << 30, 120ULL << 30, 8ULL << 30});
  s.policy_actions.push_back({"evacuate", "reserve", 2});
  s.suspend.inhibitor = "block";
  s.suspend.detail =
      "tier gpu holds 2.0 GiB that cannot be drained (the other swap areas have 1.0 GiB free; draining needs "
      "2.1 GiB with its margin)";
  return s;
}

fs::path golden(const std::string& name) {
  return fs::path(TIERSWAP_FIXTURES_DIR) / "status" / name;
}

void expect_golden(const std::string& name, const std::string& got) {
  if (const char* u = std::getenv("TIERSWAP_UPDATE_GOLDEN"); u && std::string(u) == "1") {
    fs::create_directories(golden(name).parent_path());
    std::ofstream(golden(name)) << got;
  }
  std::ifstream in(golden(name));
  ASSERT_TRUE(in) << golden(name) << " is missing (TIERSWAP_UPDATE_GOLDEN=1 writes it)";
  std::stringstream want;
  want << in.rdbuf();
  EXPECT_EQ(got, want.str()) << "golden " << golden(name);
}

TEST(StatusView, StatusTextMatchesTheGoldenFile) {
  const std::string text = ctl::render_status(sample(), 80);
  expect_golden("status-80.txt", text);
  std::istringstream lines(text);
  for (std::string l; std::getline(lines, l);) EXPECT_LE(l.size(), 80u) << l;
}

TEST(StatusView, VramLinesNameTheCardTheExporterAndTheFailure) {
  const std::string text = ctl::render_status(sample(), 80);
  for (const char* want :
       {"vram      gpu: /dev/nbd0 on GPU-6f1c, tierswap-nbd pid 4242 running, store cuda,\n          8 "
        "connections\n",
        "vram      gpu2: /dev/nbd1 on RAM, tierswap-nbd pid 4343 gone, store host, 1\n          connection\n",
        "          FAILED: its exporter failed: tierswap-nbd (pid 4343) no longer runs.\n",
        "suspend   BLOCKED: tier gpu holds 2.0 GiB that cannot be drained"})
    EXPECT_NE(text.find(want), std::string::npos) << want << "\nnot in:\n" << text;
  Status s = sample();
  s.tiers[1].gpu = "";
  s.tiers[1].exporter_pid = 0;
  const std::string first = ctl::render_status(s, 80);
  EXPECT_NE(first.find("vram      gpu: /dev/nbd0 on GPU 0, tierswap-nbd none,"), std::string::npos) << first;
  s.tiers[1].gpu = "1";
  EXPECT_NE(ctl::render_status(s, 80).find("on GPU 1,"), std::string::npos);
  // No lock, nothing said: no suspend line.
  s.suspend = {};
  EXPECT_EQ(ctl::render_status(s, 80).find("suspend"), std::string::npos);
}

// The vram, FAILED and suspend lines wrap at the width (the pressure lines
// are fixed at 75 columns).
TEST(StatusView, NarrowTerminalsWrapTheVramAndSuspendLines) {
  const std::string text = ctl::render_status(sample(), 60);
  std::istringstream lines(text);
  for (std::string l; std::getline(lines, l);)
    if (l.starts_with("vram") || l.starts_with("suspend") ||
        (l.starts_with("          ") && !l.contains("io ")))
      EXPECT_LE(l.size(), 60u) << l;
  EXPECT_NE(text.find("tierswap-nbd pid 4242"), std::string::npos) << text;
}

TEST(StatusView, WatchFrameMatchesTheGoldenFile) {
  const std::deque<double> mem = {0, 0.5, 1.25, 4, 2}, io = {0, 0, 0.1, 0, 0};
  expect_golden("watch-80.txt", ctl::render_watch_frame(sample(), mem, io, 120));
}

TEST(StatusView, JsonCarriesTheVramFieldsOnlyForVramTiersAndReadsBack) {
  const Status s = sample();
  const std::string text = dbus::status_to_json(s, true);
  auto doc = parse_json(text, "status");
  ASSERT_TRUE(doc) << text;
  const Json& tiers = (*doc)["tiers"];
  ASSERT_EQ(tiers.size(), 3u);
  EXPECT_FALSE(tiers[0].contains("vram")) << tiers[0].dump();
  const Json& v = tiers[1]["vram"];
  EXPECT_EQ(v["exporter_pid"], 4242);
  EXPECT_EQ(v["exporter_state"], "running");
  EXPECT_EQ(v["store"], "cuda");
  EXPECT_EQ(v["connections"], 8);
  EXPECT_EQ(v["failure"], "");
  EXPECT_EQ(v["gpu"], "GPU-6f1c");
  EXPECT_EQ(tiers[2]["state"], "failed");
  EXPECT_EQ(tiers[2]["vram"]["exporter_state"], "gone");
  EXPECT_NE(tiers[2]["vram"]["failure"].get<std::string>().find("SIGBUS"), std::string::npos);
  EXPECT_EQ((*doc)["suspend"]["inhibitor"], "block");

  auto back = dbus::status_from_json(text);
  ASSERT_TRUE(back) << back.error().message;
  ASSERT_EQ(back->tiers.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(back->tiers[i].exporter_pid, s.tiers[i].exporter_pid);
    EXPECT_EQ(back->tiers[i].exporter_state, s.tiers[i].exporter_state);
    EXPECT_EQ(back->tiers[i].store, s.tiers[i].store);
    EXPECT_EQ(back->tiers[i].connections, s.tiers[i].connections);
    EXPECT_EQ(back->tiers[i].failure, s.tiers[i].failure);
    EXPECT_EQ(back->tiers[i].gpu, s.tiers[i].gpu);
    EXPECT_EQ(back->tiers[i].state, s.tiers[i].state);
  }
  EXPECT_EQ(back->suspend.inhibitor, "block");
  EXPECT_EQ(back->suspend.detail, s.suspend.detail);
  // The text of the document read back is the text of the original.
  EXPECT_EQ(ctl::render_status(*back, 80), ctl::render_status(s, 80));

  // No lock: no "suspend" key (readers of older documents see nothing new).
  Status quiet = s;
  quiet.suspend = {};
  EXPECT_EQ(dbus::status_to_json(quiet, false).find("\"suspend\""), std::string::npos);
}

}  // namespace
}  // namespace tierswap::test
