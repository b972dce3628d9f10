// Suspend (label unit): the NVIDIA driver's PreserveVideoMemoryAllocations
// parser, the rule that a tier's store decides whether its pages survive
// suspend (TierKind::suspend_loss: the vram kind's host store is RAM and
// survives, its cuda store survives only where the driver preserves video
// memory), what the suspend guard must hold (sleep_needs, pure) and what it
// reads of an engine that re-adopted a vram tier (sleep_tiers). The guard
// against logind itself is the dbus label's tierswapd_suspend_tests.
#include "daemon/suspend_guard.hpp"

#include <gtest/gtest.h>

#include <filesystem>

#include "backends/hostfs/nvidia_params.hpp"
#include "daemon/engine.hpp"
#include "daemon/kind_registry.hpp"
#include "fake_root.hpp"
#include "tests/support/recording_kernel.hpp"

using namespace tierswap;
namespace fsys = std::filesystem;

TEST(NvidiaParams, PreserveVideoMemoryAllocationsIsReadFromTheParamsText) {
  EXPECT_EQ(parse_preserve_video_memory("ResmanDebugLevel: 4294967295\nPreserveVideoMemoryAllocations: 1\n"
                                        "TemporaryFilePath: \"/var\"\n"),
            std::optional<bool>(true));
  EXPECT_EQ(parse_preserve_video_memory("PreserveVideoMemoryAllocations: 0\n"), std::optional<bool>(false));
  EXPECT_EQ(parse_preserve_video_memory("PreserveVideoMemoryAllocations:\t 00\n"),
            std::optional<bool>(false));
  EXPECT_EQ(parse_preserve_video_memory("PreserveVideoMemoryAllocations: 1"), std::optional<bool>(true));
  EXPECT_EQ(parse_preserve_video_memory("EnableGpuFirmware: 18\n"), std::nullopt);
  EXPECT_EQ(parse_preserve_video_memory("PreserveVideoMemoryAllocations: yes\n"), std::nullopt);
  EXPECT_EQ(parse_preserve_video_memory("XPreserveVideoMemoryAllocations: 1\n"), std::nullopt);
  EXPECT_EQ(parse_preserve_video_memory(""), std::nullopt);
}

TEST(NvidiaParams, ReadThroughHostFsSaysWhatItSaw) {
  test::TempRoot root;
  const HostFs fs(root.str());
  auto p = read_nvidia_preserve(fs);
  EXPECT_FALSE(p.preserve);
  EXPECT_NE(p.evidence.find("/proc/driver/nvidia/params cannot be read"), std::string::npos) << p.evidence;
  test::spit(root.path() / "proc/driver/nvidia/params", "PreserveVideoMemoryAllocations: 1\n");
  p = read_nvidia_preserve(fs);
  EXPECT_TRUE(p.preserve);
  EXPECT_EQ(p.evidence, "PreserveVideoMemoryAllocations: 1 (/proc/driver/nvidia/params)");
}

TEST(SuspendLoss, DependsOnTheStoreAndTheDriver) {
  test::TempRoot root;
  const HostFs fs(root.str());
  const TierKind* vram = kinds::for_tier("vram");
  ASSERT_NE(vram, nullptr);
  OwnedTier t;
  t.name = "gpu";
  t.kind = "vram";
  t.store = "host";
  EXPECT_EQ(vram->suspend_loss(t, fs), std::nullopt) << "RAM survives suspend";
  t.store = "cuda";
  auto why = vram->suspend_loss(t, fs);
  ASSERT_TRUE(why);
  EXPECT_NE(why->find("store cuda keeps its pages in VRAM"), std::string::npos) << *why;
  test::spit(root.path() / "proc/driver/nvidia/params", "PreserveVideoMemoryAllocations: 0\n");
  why = vram->suspend_loss(t, fs);
  ASSERT_TRUE(why);
  EXPECT_NE(why->find("PreserveVideoMemoryAllocations: 0"), std::string::npos) << *why;
  test::spit(root.path() / "proc/driver/nvidia/params", "PreserveVideoMemoryAllocations: 1\n");
  EXPECT_EQ(vram->suspend_loss(t, fs), std::nullopt);
  // Every other kind keeps its pages (RAM, zram, disks).
  OwnedTier z;
  z.name = "fast";
  z.kind = "zram";
  EXPECT_EQ(kinds::for_tier("zram")->suspend_loss(z, fs), std::nullopt);
}

namespace {

SleepTier tier(const std::string& name, bool up, std::uint64_t used, std::optional<bool> fits) {
  SleepTier t;
  t.name = name;
  t.swap_path = "/dev/nbd0";
  t.loss = "store cuda keeps its pages in VRAM";
  t.up = up;
  t.used = used;
  if (fits) {
    policy::RoomVerdict v;
    v.fits = *fits;
    v.need = used;
    v.margin = 64ULL << 20;
    v.room = *fits ? used * 4 : 64ULL << 20;
    t.room = v;
  }
  return t;
}

}  // namespace

TEST(SleepNeeds, NothingUpNothingHeld) {
  const auto n = sleep_needs({tier("gpu", false, 0, std::nullopt)});
  EXPECT_TRUE(n.drain.empty());
  EXPECT_EQ(n.delay, "");
  EXPECT_EQ(n.block, "");
  EXPECT_TRUE(sleep_needs({}).drain.empty());
}

TEST(SleepNeeds, AnUpTierIsDrainedBeforeSleepUnderADelayLock) {
  const auto n = sleep_needs({tier("gpu", true, 0, std::nullopt), tier("gpu2", true, 1 << 20, true)});
  EXPECT_EQ(n.drain, (std::vector<std::string>{"gpu", "gpu2"}));
  EXPECT_EQ(n.delay, "drains tiers gpu, gpu2 before sleep: store cuda keeps its pages in VRAM");
  EXPECT_EQ(n.block, "");
}

TEST(SleepNeeds, PagesThatCannotBeDrainedBlockSuspendWithTheNumbers) {
  const auto n = sleep_needs({tier("gpu", true, 200ULL << 20, false)});
  EXPECT_EQ(n.drain, (std::vector<std::string>{"gpu"}));
  EXPECT_NE(n.delay, "");
  EXPECT_EQ(n.block,
            "tier gpu holds 200 MiB that cannot be drained (the other swap areas have 64 MiB free; draining "
            "needs 264 MiB with its margin) and store cuda keeps its pages in VRAM");
}

// The drain before sleep against logind's wait: only up tiers count, at
// their observed rate where there is one; nothing while the wait is unknown.
TEST(SleepDelay, WarnsOnlyWhenTheUpTiersTakeLongerThanLogindWaits) {
  using namespace std::chrono_literals;
  const std::vector<SleepTier> tiers = {tier("gpu", true, 1ULL << 30, true), tier("old", false, 8ULL << 30, true)};
  EXPECT_FALSE(sleep_delay_warning(tiers, std::nullopt));
  EXPECT_FALSE(sleep_delay_warning(tiers, 11s));  // 1 GiB at 100 MiB/s: 10.24 s
  const auto w = sleep_delay_warning(tiers, 5s);
  ASSERT_TRUE(w);
  EXPECT_NE(w->find("takes about 10 s (tier gpu: 1.0 GiB by swapoff at 100 MiB/s (assumed))"), std::string::npos)
      << *w;
  EXPECT_NE(w->find("InhibitDelayMaxSec=25 "), std::string::npos) << *w;
  // Its last drain ran at 512 MiB/s: 2 s fits.
  EXPECT_FALSE(sleep_delay_warning(tiers, 5s, {{"gpu", 512ULL << 20}}));
}

// An engine that re-adopted a vram tier (store cuda) from its journal: the
// guard sees it up with its use, and the room rule for it.
TEST(SleepTiers, AReadoptedVramTierWithItsUseAndTheRoomRule) {
  test::TempRoot root("02-zram-file-zswap");
  const auto p = [&](const std::string& rel) { return root.path() / rel; };
  fsys::create_directories(p("sys/module/nbd"));
  fsys::create_directories(p("proc/driver/nvidia/gpus/0000:01:00.0"));
  test::spit(p("proc/4194303/stat"),
             "4194303 (tierswap-nbd) S 1 1 1 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 3 0 777 1000 200\n");
  test::spit(p("sys/block/nbd0/pid"), "4194303\n");
  test::spit(p("sys/block/nbd0/size"), std::to_string((64ULL << 20) / 512) + "\n");
  test::spit(p("sys/block/nbd0/backend"), "tierswap-gpu\n");
  test::spit(p("dev/nbd0"), "");
  test::spit(p("proc/swaps"),
             "Filename\tType\tSize\tUsed\tPriority\n/dev/nbd0\tpartition\t65532\t2048\t50\n");
  test::spit(
      p("etc/tierswap.yaml"),
      "tiers:\n  - name: gpu\n    kind: vram\n    size: 64M\n    store: cuda\n    connections: 2\n"
      "    priority: 50\n  - name: disk\n    kind: file\n    path: /var/swap/tier.swap\n    size: 64M\n"
      "    priority: 10\n");
  test::spit(p("run/tierswap/state.json"),
             R"({"version": 2, "source": "", "tiers": [{"name": "gpu", "kind": "vram", "device": "nbd0",
  "swap_path": "/dev/nbd0", "created_device": false, "created_file": false, "active": true, "drained": false,
  "priority": 50, "discard": false, "algorithm": "", "size": 67108864, "mem_limit": 0,
  "exporter_pid": 4194303, "exporter_start": 777, "store": "cuda", "backend": "tierswap-gpu",
  "connections": 2}], "values": []}
)");
  fsys::permissions(p("run/tierswap/state.json"), fsys::perms::owner_read | fsys::perms::owner_write);
  EngineOptions eo;
  eo.root = root.str();
  eo.config = p("etc/tierswap.yaml").string();
  eo.keep_on_exit = true;                      // the fake exporter's pid is no process of ours
  eo.make_kernel = swap::recording_kernel_on;  // on the engine's own HostFs
  Engine engine(eo);
  ASSERT_TRUE(engine.start());
  auto tiers = sleep_tiers(engine);
  ASSERT_EQ(tiers.size(), 1u);
  EXPECT_EQ(tiers[0].name, "gpu");
  EXPECT_TRUE(tiers[0].up);
  EXPECT_EQ(tiers[0].used, 2048u * 1024);
  ASSERT_TRUE(tiers[0].room);
  EXPECT_TRUE(tiers[0].room->fits) << "2 MiB fit into the 64 MiB file tier";
  EXPECT_NE(tiers[0].loss.find("store cuda"), std::string::npos);
  // The driver keeps video memory: nothing to guard.
  test::spit(p("proc/driver/nvidia/params"), "PreserveVideoMemoryAllocations: 1\n");
  EXPECT_TRUE(sleep_tiers(engine).empty());
  EXPECT_TRUE(engine.stop());
}

// A vram tier with a spill store evacuates into it (no other area needs
// room, so its use never blocks sleep); once evacuated, its blocks are in
// the spill store, which survives sleep: nothing to drain.
TEST(SleepTiers, ATierWithASpillNeedsNoRoomAndAnEvacuatedOneIsNotUp) {
  for (const bool evacuated : {false, true}) {
    SCOPED_TRACE(evacuated ? "evacuated" : "resident");
    test::TempRoot root("02-zram-file-zswap");
    const auto p = [&](const std::string& rel) { return root.path() / rel; };
    fsys::create_directories(p("sys/module/nbd"));
    fsys::create_directories(p("proc/driver/nvidia/gpus/0000:01:00.0"));
    test::spit(p("proc/4194303/stat"),
               "4194303 (tierswap-nbd) S 1 1 1 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 3 0 777 1000 200\n");
    test::spit(p("sys/block/nbd0/pid"), "4194303\n");
    test::spit(p("sys/block/nbd0/size"), std::to_string((64ULL << 20) / 512) + "\n");
    test::spit(p("sys/block/nbd0/backend"), "tierswap-gpu\n");
    test::spit(p("dev/nbd0"), "");
    test::spit(p("proc/swaps"),
               "Filename\tType\tSize\tUsed\tPriority\n/dev/nbd0\tpartition\t65532\t2048\t50\n");
    test::spit(
        p("etc/tierswap.yaml"),
        "tiers:\n  - name: gpu\n    kind: vram\n    size: 64M\n    store: cuda\n    connections: 2\n    "
        "spill: { kind: lz4 }\n"
        "    priority: 50\n  - name: disk\n    kind: file\n    path: /var/swap/tier.swap\n    size: 64M\n"
        "    priority: 10\n");
    test::spit(p("run/tierswap/state.json"),
               R"({"version": 2, "source": "", "tiers": [{"name": "gpu", "kind": "vram", "device": "nbd0",
  "swap_path": "/dev/nbd0", "created_device": false, "created_file": false, "active": true, "drained": false,
  "priority": 50, "discard": false, "algorithm": "", "size": 67108864, "mem_limit": 0,
  "exporter_pid": 4194303, "exporter_start": 777, "store": "cuda", "backend": "tierswap-gpu",
  "connections": 2, "spill": "lz4", "evacuated": )" +
                   std::string(evacuated ? "true" : "false") + R"(}], "values": []}
)");
    fsys::permissions(p("run/tierswap/state.json"), fsys::perms::owner_read | fsys::perms::owner_write);
    EngineOptions eo;
    eo.root = root.str();
    eo.config = p("etc/tierswap.yaml").string();
    eo.keep_on_exit = true;                      // the fake exporter's pid is no process of ours
    eo.make_kernel = swap::recording_kernel_on;  // on the engine's own HostFs
    std::vector<std::string> log;
    eo.info = eo.warn = [&](const std::string& l) { log.push_back(l); };
    Engine engine(eo);
    auto started = engine.start();
    ASSERT_TRUE(started) << started.error().describe();
    auto tiers = sleep_tiers(engine);
    ASSERT_EQ(tiers.size(), 1u);
    EXPECT_EQ(tiers[0].up, !evacuated);
    EXPECT_TRUE(tiers[0].spill);
    EXPECT_FALSE(tiers[0].room) << "a spill tier is drained into its spill store, not into other swap areas";
    EXPECT_TRUE(sleep_needs(tiers).block.empty());
    EXPECT_EQ(sleep_needs(tiers).drain.empty(), evacuated);
    EXPECT_TRUE(engine.stop());
  }
}
