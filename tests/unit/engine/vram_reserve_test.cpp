// A vram tier's `reserve:` (label unit): the key and its errors, its
// precedence over policy.reserve_mib, the planner's "size above free VRAM
// minus reserve" refusal with fake GPU facts (golden message; the other
// tiers still apply), a running tier's own VRAM counted as free on re-plan,
// the policy's reserve rule per tier, and the GPUs read through a fake
// libnvidia-ml.so.1 into the planner's observation.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "backends/vram/vram_kind.hpp"
#include "config/policy_settings.hpp"
#include "daemon/policy_spec.hpp"
#include "vram_fixture.hpp"

using namespace tierswap;
namespace fsys = std::filesystem;

namespace {

using test::dump;
constexpr std::uint64_t GiB = 1ULL << 30;
constexpr std::uint64_t MiB = 1ULL << 20;

config::LoadResult load(const std::string& yaml) {
  return test::load_config(yaml);
}

std::string vram_tier(const std::string& extra) {
  return "tiers:\n  - name: gpu\n    kind: vram\n    size: 4G\n" + extra;
}

gpu::GpuReading card(unsigned index, std::uint64_t total, std::uint64_t free) {
  gpu::GpuReading g;
  g.index = index;
  g.name = "NVIDIA H200";
  g.uuid = "GPU-" + std::to_string(index) + "abc";
  g.total_bytes = total;
  g.free_bytes = free;
  g.used_bytes = total - free;
  return g;
}

// A fake root with the nbd driver and an NVIDIA GPU listed; the plan sees
// the GPUs `gpus` as NVML would report them.
class VramReserve : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = std::make_unique<test::TempRoot>("02-zram-file-zswap");
    fsys::create_directories(root_->path() / "sys/module/nbd");
    fsys::create_directories(root_->path() / "proc/driver/nvidia/gpus/0000:01:00.0");
  }
  PlanResult plan(const std::string& yaml, const std::vector<gpu::GpuReading>& gpus, const Journal& j = {}) {
    auto l = load(yaml);
    EXPECT_TRUE(l.spec) << dump(l.diagnostics);
    if (!l.spec) return {};
    const HostFs fs(root_->str());
    auto obs = observe(fs);
    EXPECT_TRUE(obs);
    if (!obs) return {};
    obs->gpus = gpus;
    return make_plan(*l.spec, *obs, j, fs);
  }
  static std::vector<std::string> ops_of(const Plan& p, const std::string& tier) {
    std::vector<std::string> out;
    for (const auto& s : p.steps)
      if (s.tier == tier) out.push_back(s.op);
    return out;
  }
  static bool has_note(const Plan& p, const std::string& text) {
    return std::find(p.notes.begin(), p.notes.end(), text) != p.notes.end();
  }
  std::unique_ptr<test::TempRoot> root_;
};

}  // namespace

TEST(VramReserveConfig, SizesPercentOfVramAndZero) {
  auto l = load(vram_tier("    reserve: 2G\n"));
  ASSERT_TRUE(l.spec) << dump(l.diagnostics);
  EXPECT_EQ(l.spec->tiers[0].reserve_text, "2G");
  EXPECT_EQ(l.spec->tiers[0].reserve_bytes, 2 * GiB);
  l = load(vram_tier("    reserve: 10% of vram\n"));
  ASSERT_TRUE(l.spec) << dump(l.diagnostics);
  EXPECT_EQ(l.spec->tiers[0].reserve_text, "10% of vram");
  EXPECT_FALSE(l.spec->tiers[0].reserve_bytes);  // known once the card is
  l = load(vram_tier("    reserve: 0\n"));
  ASSERT_TRUE(l.spec) << dump(l.diagnostics);
  EXPECT_EQ(l.spec->tiers[0].reserve_bytes, 0u);
  l = load(vram_tier(""));
  ASSERT_TRUE(l.spec) << dump(l.diagnostics);
  EXPECT_EQ(l.spec->tiers[0].reserve_text, "");
}

TEST(VramReserveConfig, BadValuesNameTheKeyAndTheFix) {
  auto l = load(vram_tier("    reserve: 2X\n"));
  ASSERT_FALSE(l.ok());
  EXPECT_NE(dump(l.diagnostics).find("test.yaml:5:14: tiers[0].reserve: "), std::string::npos)
      << dump(l.diagnostics);
  EXPECT_NE(dump(l.diagnostics).find("reserve: 10% of vram"), std::string::npos) << dump(l.diagnostics);
  l = load(vram_tier("    reserve: 2T\n"));
  ASSERT_FALSE(l.ok());
  EXPECT_NE(dump(l.diagnostics)
                .find("tiers[0].reserve: \"2T\" is 2199023255552 bytes, more than the largest "
                      "reserve (1099511627776 bytes, 1T)"),
            std::string::npos)
      << dump(l.diagnostics);
  l = load(vram_tier("    reserve: 100% of vram\n"));
  ASSERT_FALSE(l.ok());
  EXPECT_NE(dump(l.diagnostics).find("tiers[0].reserve: \"100% of vram\" is the whole card's memory or more"),
            std::string::npos)
      << dump(l.diagnostics);
  l = load(vram_tier("    reserve: [1G]\n"));
  ASSERT_FALSE(l.ok());
  EXPECT_NE(dump(l.diagnostics).find("tiers[0].reserve: expected a size"), std::string::npos)
      << dump(l.diagnostics);
  // Only vram tiers keep VRAM free.
  l = load("tiers:\n  - name: fast\n    kind: zram\n    size: 1G\n    reserve: 1G\n");
  ASSERT_FALSE(l.ok());
  EXPECT_NE(dump(l.diagnostics).find("tiers[0].reserve: \"reserve\" does not apply to a zram tier"),
            std::string::npos)
      << dump(l.diagnostics);
}

TEST(VramReserveConfig, TheTiersKeyWinsOverPolicyReserveMib) {
  auto l = load(
      "policy:\n  reserve_mib: 3072\ntiers:\n"
      "  - {name: a, kind: vram, size: 4G, reserve: 512M}\n"
      "  - {name: b, kind: vram, size: 4G}\n"
      "  - {name: c, kind: vram, size: 4G, reserve: 10% of vram}\n");
  ASSERT_TRUE(l.spec) << dump(l.diagnostics);
  const auto p = config::effective_policy(*l.spec);
  const auto a = config::tier_reserve(l.spec->tiers[0], p, 0);
  EXPECT_EQ(a.bytes, 512 * MiB);
  EXPECT_EQ(a.key, "reserve");
  const auto b = config::tier_reserve(l.spec->tiers[1], p, 0);
  EXPECT_EQ(b.bytes, 3072 * MiB);
  EXPECT_EQ(b.key, "policy.reserve_mib");
  EXPECT_FALSE(config::tier_reserve(l.spec->tiers[2], p, 0).resolved);
  EXPECT_EQ(config::tier_reserve(l.spec->tiers[2], p, 80 * GiB).bytes, 8 * GiB);
  // tierswapctl plan's policy section shows each and where it came from.
  std::vector<std::string> lines;
  for (const auto& s : config::policy_setting_lines(*l.spec))
    if (s.key.starts_with("tiers.")) lines.push_back(s.key + " = " + s.value + " (" + s.origin + ")");
  EXPECT_EQ(lines, (std::vector<std::string>{"tiers.a.reserve = 512M (file)",
                                             "tiers.b.reserve = 3072 MiB (policy.reserve_mib)",
                                             "tiers.c.reserve = 10% of vram (file)"}));
}

TEST_F(VramReserve, SizeAboveFreeVramMinusReserveIsRefusedWithTheNumbersAndTheOthersApply) {
  // 8 GiB asked; 6 GiB free; 1 GiB reserve (policy default): refused.
  const std::string cfg =
      "tiers:\n"
      "  - {name: fast, kind: zram, size: 1G, priority: 100}\n"
      "  - {name: vram0, kind: vram, size: 8G, priority: 50}\n";
  auto r = plan(cfg, {card(0, 140 * GiB, 6 * GiB)});
  EXPECT_TRUE(r.ok()) << dump(r.diagnostics);  // a warning: the other tiers apply
  EXPECT_NE(dump(r.diagnostics)
                .find("tiers[1].size: vram tier unavailable: size 8.0 GiB is above free VRAM "
                      "6.0 GiB on GPU 0 (NVIDIA H200) minus reserve 1.0 GiB (policy.reserve_mib) minus 520 "
                      "MiB for the CUDA context; the other tiers still apply (lower size or reserve "
                      "(policy.reserve_mib))"),
            std::string::npos)
      << dump(r.diagnostics);
  EXPECT_TRUE(
      has_note(r.plan,
               "tier \"vram0\": unavailable (size 8.0 GiB is above free VRAM 6.0 GiB on GPU 0 (NVIDIA "
               "H200) minus reserve 1.0 GiB (policy.reserve_mib) minus 520 MiB for the CUDA context)"));
  EXPECT_TRUE(ops_of(r.plan, "vram0").empty());
  const auto fast = ops_of(r.plan, "fast");
  EXPECT_NE(std::find(fast.begin(), fast.end(), "swapon"), fast.end());
}

TEST_F(VramReserve, EachTierOnItsOwnCardWithItsOwnReserve) {
  // Card 0: 10 GiB free; tier a (4G) with reserve 7G does not fit (4 + 7 +
  // 0.5 > 10). Card 1: 10 GiB free; tier b (4G) with reserve 2G fits.
  const std::string cfg =
      "tiers:\n"
      "  - {name: a, kind: vram, size: 4G, gpu: \"0\", reserve: 7G}\n"
      "  - {name: b, kind: vram, size: 4G, gpu: \"1\", reserve: 2G}\n";
  auto r = plan(cfg, {card(0, 80 * GiB, 10 * GiB), card(1, 80 * GiB, 10 * GiB)});
  EXPECT_TRUE(r.ok()) << dump(r.diagnostics);
  EXPECT_NE(dump(r.diagnostics)
                .find("tiers[0].size: vram tier unavailable: size 4.0 GiB is above free VRAM 10 GiB on GPU 0 "
                      "(NVIDIA H200) minus reserve 7.0 GiB (reserve)"),
            std::string::npos)
      << dump(r.diagnostics);
  EXPECT_TRUE(ops_of(r.plan, "a").empty());
  EXPECT_EQ(ops_of(r.plan, "b"),
            (std::vector<std::string>{"start_exporter", "nbd_attach", "swap_header", "swapon"}));
  EXPECT_TRUE(has_note(r.plan,
                       "tier \"b\": GPU 1 (NVIDIA H200): 10 GiB free of 80 GiB; size 4.0 GiB, reserve "
                       "2.0 GiB (reserve)"));
  // Exactly at the edge fits: size + reserve + context == free.
  r = plan("tiers:\n  - {name: a, kind: vram, size: 4G, reserve: 1G}\n",
           {card(0, 80 * GiB, 5 * GiB + vram::kCudaContextBytes)});
  EXPECT_EQ(ops_of(r.plan, "a").size(), 4u) << dump(r.diagnostics);
  r = plan("tiers:\n  - {name: a, kind: vram, size: 4G, reserve: 1G}\n",
           {card(0, 80 * GiB, 5 * GiB + vram::kCudaContextBytes - 4096)});
  EXPECT_TRUE(ops_of(r.plan, "a").empty()) << dump(r.diagnostics);
}

TEST_F(VramReserve, PercentOfVramSizeAndReserveResolveOnTheCard) {
  // 50% of 80 GiB = 40 GiB; reserve 10% = 8 GiB; 45 GiB free: 40 + 8 + 0.5 > 45.
  auto r = plan("tiers:\n  - {name: a, kind: vram, size: 50% of vram, reserve: 10% of vram}\n",
                {card(0, 80 * GiB, 45 * GiB)});
  EXPECT_NE(dump(r.diagnostics)
                .find("size 40 GiB is above free VRAM 45 GiB on GPU 0 (NVIDIA H200) minus reserve 8.0 GiB "
                      "(reserve) minus 520 MiB for the CUDA context"),
            std::string::npos)
      << dump(r.diagnostics);
  r = plan("tiers:\n  - {name: a, kind: vram, size: vram - 40G, reserve: 5% of vram}\n",
           {card(0, 80 * GiB, 45 * GiB)});
  ASSERT_EQ(ops_of(r.plan, "a").size(), 4u) << dump(r.diagnostics);
  EXPECT_EQ(r.plan.steps.front().size, 40 * GiB);
}

TEST_F(VramReserve, ARunningTiersOwnVramIsNotCountedAgainstIt) {
  // The tier "a" runs (exporter pid 4242) with 4 GiB + its context on card 0;
  // it is re-set-up at 6G (size changed). Free 3 GiB + its own 4.5 GiB = 7.5
  // GiB >= 6 + 1 (reserve): it fits (the old exporter's context is its own).
  Journal j;
  OwnedTier o;
  o.name = "a";
  o.kind = "vram";
  o.device = "nbd0";
  o.swap_path = "/dev/nbd0";
  o.size = 4 * GiB;
  o.store = "cuda";
  o.exporter_pid = 4242;
  o.active = true;
  j.tiers.push_back(o);
  auto g = card(0, 80 * GiB, 3 * GiB);
  g.own.push_back({4242, 4 * GiB + 512 * MiB, true, false});
  g.own_bytes = 4 * GiB + 512 * MiB;
  auto r = plan("tiers:\n  - {name: a, kind: vram, size: 6G}\n", {g}, j);
  EXPECT_EQ(ops_of(r.plan, "a").front(), "start_exporter") << dump(r.diagnostics);
  // 8G does not fit; the message says what its exporter holds.
  r = plan("tiers:\n  - {name: a, kind: vram, size: 8G}\n", {g}, j);
  EXPECT_NE(dump(r.diagnostics)
                .find("size 8.0 GiB is above free VRAM 7.5 GiB (with the 4.5 GiB its running exporter holds) "
                      "on GPU 0 (NVIDIA H200) minus reserve 1.0 GiB (policy.reserve_mib); the other tiers"),
            std::string::npos)
      << dump(r.diagnostics);
}

TEST_F(VramReserve, AGpuKeyThatNamesNoCardMakesTheTierUnavailable) {
  auto r = plan("tiers:\n  - {name: a, kind: vram, size: 4G, gpu: \"3\"}\n", {card(0, 80 * GiB, 70 * GiB)});
  EXPECT_TRUE(r.ok()) << dump(r.diagnostics);
  EXPECT_NE(
      dump(r.diagnostics).find("tiers[0].gpu: vram tier unavailable: gpu: \"3\": no GPU with this index"),
      std::string::npos)
      << dump(r.diagnostics);
  EXPECT_TRUE(ops_of(r.plan, "a").empty());
}

TEST_F(VramReserve, StoreHostIsNotCheckedAgainstVram) {
  auto r = plan("tiers:\n  - {name: a, kind: vram, size: 8G, store: host}\n", {card(0, 80 * GiB, 1 * GiB)});
  EXPECT_EQ(ops_of(r.plan, "a").size(), 4u) << dump(r.diagnostics);
}

TEST(VramReservePolicy, TheReserveRuleUsesEachTiersOwnReserve) {
  config::PolicySettings settings;  // reserve_mib 1024
  auto spec = to_policy_spec(settings);
  policy::Snapshot s;
  s.time_ms = 1000;
  s.vram = {{"a", 3 * GiB, 80 * GiB, 0, 0, 4 * GiB},
            {"b", 3 * GiB, 80 * GiB, 0, 0, 4 * GiB},
            {"c", 3 * GiB, 80 * GiB, 0, 0, 4 * GiB}};
  // a: 4G of its own; b: policy.reserve_mib; c: 5% of its 80 GiB card = 4 GiB.
  add_tier_reserves(spec, {{"a", "4G", 4 * GiB}, {"b", "", std::nullopt}, {"c", "5% of vram", std::nullopt}},
                    settings, s.vram);
  EXPECT_EQ(spec.tier_reserve_bytes.size(), 2u);
  EXPECT_EQ(policy::reserve_of(spec, "c"), 4 * GiB);
  const auto d = policy::decide(s, {}, spec);
  std::vector<std::string> evacuated;
  for (const auto& a : d.actions) evacuated.push_back(a.tier + " " + a.rule + ": " + a.why);
  EXPECT_EQ(evacuated,
            (std::vector<std::string>{"a reserve: free VRAM 3072 MiB is below the reserve 4096 MiB",
                                      "c reserve: free VRAM 3072 MiB is below the reserve 4096 MiB"}));
  // Without a sample for c its card is unknown: the default applies.
  auto bare = to_policy_spec(settings);
  add_tier_reserves(bare, {{"c", "5% of vram", std::nullopt}}, settings, {});
  EXPECT_EQ(policy::reserve_of(bare, "c"), 1024 * MiB);
}

#ifdef FAKE_NVML
TEST(VramReserveNvml, TheGpusAreReadThroughNvmlWithTheExportersAsTheTiersOwn) {
  test::TempRoot tmp;
  const auto state = tmp.path() / "nvml.state";
  std::ofstream(state) << "count=1\ngpu0.name=NVIDIA H200\ngpu0.uuid=GPU-8f1c\n"
                       << "gpu0.total=" << 80 * GiB << "\ngpu0.free=" << 3 * GiB << "\ngpu0.used=" << 77 * GiB
                       << "\ngpu0.compute=4242:" << 4 * GiB << ",77:" << GiB << "\n";
  ::setenv("FAKE_NVML_STATE", state.c_str(), 1);
  Observed o;
  const pid_t exporters[] = {4242};
  observe_gpus(o, exporters, FAKE_NVML);
  ::unsetenv("FAKE_NVML_STATE");
  ASSERT_TRUE(o.gpus) << o.gpus_unknown;
  ASSERT_EQ(o.gpus->size(), 1u);
  EXPECT_EQ((*o.gpus)[0].free_bytes, 3 * GiB);
  EXPECT_EQ((*o.gpus)[0].own_bytes, 4 * GiB);
  EXPECT_EQ((*o.gpus)[0].foreign_bytes, GiB);
  // No NVML: the reason, and nothing read.
  Observed none;
  observe_gpus(none, {}, (tmp.path() / "no-libnvidia-ml.so.1").string());
  EXPECT_FALSE(none.gpus);
  EXPECT_NE(none.gpus_unknown.find("NVML: "), std::string::npos) << none.gpus_unknown;
}
#endif
