// The journal is not trusted: validation of every entry, a bad journal set
// aside (never followed, never used), the temp file never followed, and
// what tierswap owns rebuilt from the (fake) kernel by its swap label.
#include "daemon/journal.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include "daemon/engine.hpp"
#include "daemon/kind_registry.hpp"
#include "daemon/observe.hpp"
#include "fake_root.hpp"
#include "tests/support/recording_kernel.hpp"

using namespace tierswap;
namespace fsys = std::filesystem;

namespace {

Journal good_journal() {
  Journal j;
  j.source = "/etc/tierswap.yaml";
  j.tiers.push_back(OwnedTier{.name = "fast",
                              .kind = "zram",
                              .device = "zram1",
                              .swap_path = "/dev/zram1",
                              .created_device = true,
                              .active = true,
                              .priority = 100});
  j.tiers.push_back(
      OwnedTier{.name = "disk", .kind = "file", .swap_path = "/var/swap/a b.swap", .created_file = true});
  j.tiers.push_back(OwnedTier{.name = "part", .kind = "partition", .swap_path = "/dev/vdb2", .active = true});
  j.values.push_back({"/proc/sys/vm/swappiness", "60", "150"});
  j.values.push_back({"/sys/module/zswap/parameters/max_pool_percent", "20", "25"});
  return j;
}

std::vector<fsys::path> set_aside_files(const test::TempRoot& root) {
  std::vector<fsys::path> out;
  std::error_code ec;
  for (const auto& e : fsys::directory_iterator(root.path() / "run/tierswap", ec))
    if (e.path().filename().string().starts_with("state.json.invalid-")) out.push_back(e.path());
  return out;
}

// An engine on a copy of fixture 02 with the recording kernel; log lines kept.
struct FakeDaemon {
  explicit FakeDaemon(const test::TempRoot& root) {
    EngineOptions eo;
    eo.root = root.str();
    eo.config = (root.path() / "etc/tierswap.yaml").string();
    eo.make_kernel = swap::recording_kernel_on;
    eo.info = [this](const std::string& l) { log.push_back("info: " + l); };
    eo.warn = [this](const std::string& l) { log.push_back("warn: " + l); };
    engine = std::make_unique<Engine>(eo);
  }
  std::vector<std::string> calls() { return dynamic_cast<swap::RecordingKernel&>(engine->kernel()).calls(); }
  bool logged(const std::string& part) const {
    return std::any_of(log.begin(), log.end(),
                       [&](const std::string& l) { return l.find(part) != std::string::npos; });
  }
  std::string all_log() const {
    std::string s;
    for (const auto& l : log) s += l + "\n";
    return s;
  }
  std::vector<std::string> log;
  std::unique_ptr<Engine> engine;
};

}  // namespace

TEST(JournalValidate, AcceptsWhatTierswapWrites) {
  auto v = validate_journal(good_journal());
  EXPECT_TRUE(v) << v.error().message;
}

TEST(JournalValidate, RejectsEachEntryTierswapNeverWritesNamingEntryAndRule) {
  struct Case {
    std::function<void(Journal&)> spoil;
    std::string message;
  };
  const std::vector<Case> cases = {
      {[](Journal& j) { j.values[0].path = "/etc/passwd"; },
       "values[0].path: \"/etc/passwd\" is not a value tierswap changes"},
      {[](Journal& j) { j.values[1].path = "/proc/sys/../../etc/shadow"; },
       "values[1].path: \"/proc/sys/../../etc/shadow\" is not a value tierswap changes"},
      {[](Journal& j) { j.values[0].path = "/proc/sys/vm/../../../etc/shadow"; }, "values[0].path"},
      {[](Journal& j) { j.values[0].path = "/proc/sys/kernel/core_pattern"; }, "values[0].path"},
      {[](Journal& j) { j.values[1].path = "/sys/module/zswap/parameters/../../../../etc/x"; },
       "values[1].path"},
      {[](Journal& j) { j.tiers[0].device = "../../x"; },
       "tiers[0].device: \"../../x\" is not a zram device name"},
      {[](Journal& j) { j.tiers[0].device = "sda"; }, "tiers[0].device: \"sda\" is not a zram device name"},
      {[](Journal& j) { j.tiers[0].device = "zram1/../../x"; }, "tiers[0].device"},
      {[](Journal& j) { j.tiers[0].device = "zram01"; }, "tiers[0].device"},
      {[](Journal& j) { j.tiers[0].device = ""; }, "tiers[0].device"},
      {[](Journal& j) { j.tiers[0].swap_path = "/dev/sda"; },
       "tiers[0].swap_path: \"/dev/sda\" is not /dev/zram1"},
      {[](Journal& j) { j.tiers[1].swap_path = "/var/swap/../../etc/passwd"; },
       "tiers[1].swap_path: \"/var/swap/../../etc/passwd\" has a \"..\" component"},
      {[](Journal& j) { j.tiers[1].swap_path = "var/swap/t"; }, "is not an absolute path"},
      {[](Journal& j) { j.tiers[1].swap_path = "/proc/sys/vm/swappiness"; }, "is under /proc or /sys"},
      {[](Journal& j) { j.tiers[1].swap_path = "/var//swap"; }, "empty component"},
      {[](Journal& j) { j.tiers[1].device = "nbd0"; },
       "tiers[1].device: \"nbd0\" must be empty for a file tier"},
      {[](Journal& j) { j.tiers[2].swap_path = "/etc/passwd"; }, "is not under /dev"},
      {[](Journal& j) { j.tiers[2].created_file = true; }, "tiers[2].created_file"},
      {[](Journal& j) { j.tiers[1].created_device = true; }, "tiers[1].created_device"},
      {[](Journal& j) { j.tiers[1].kind = "script"; }, "tiers[1].kind: \"script\" is not a tier kind"},
      {[](Journal& j) { j.tiers[1].name.clear(); }, "tiers[1].name"},
  };
  for (const auto& c : cases) {
    Journal j = good_journal();
    c.spoil(j);
    auto v = validate_journal(j);
    ASSERT_FALSE(v) << c.message;
    EXPECT_EQ(v.error().code, EINVAL);
    EXPECT_NE(v.error().message.find(c.message), std::string::npos) << v.error().message;
    // load_journal applies it too.
    test::TempRoot root;
    test::spit(root.path() / "run/tierswap/state.json", to_json(j));
    auto loaded = load_journal(HostFs(root.str()));
    ASSERT_FALSE(loaded) << c.message;
    EXPECT_TRUE(loaded.error().message.starts_with("/run/tierswap/state.json: ")) << loaded.error().message;
    EXPECT_NE(loaded.error().message.find(c.message), std::string::npos) << loaded.error().message;
  }
}

// Writing a journal back never changes whether it validates: an
// exporter_start without an exporter_pid (fuzz seed
// regression-exporter-start-without-pid) was once left out by to_json, and
// the invalid journal turned valid.
TEST(JournalValidate, ExporterStartWithoutAPidStaysInvalidWhenWrittenBack) {
  Journal j;
  j.source = "/etc/tierswap.yaml";
  j.tiers.push_back(OwnedTier{.name = "gpu",
                              .kind = "vram",
                              .device = "nbd0",
                              .swap_path = "/dev/nbd0",
                              .active = true,
                              .priority = 50,
                              .size = 64 << 20,
                              .exporter_start = 5678,
                              .store = "host"});
  const auto v = validate_journal(j);
  ASSERT_FALSE(v);
  EXPECT_NE(v.error().message.find("tiers[0].exporter_start: \"5678\" is set without an exporter_pid"),
            std::string::npos)
      << v.error().message;
  const std::string text = to_json(j);
  EXPECT_NE(text.find("\"exporter_start\""), std::string::npos) << text;
  auto again = parse_journal(text);
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(again->tiers.at(0).exporter_start, 5678);
  EXPECT_FALSE(validate_journal(*again));
  EXPECT_EQ(to_json(*again), text);
}

// A hostile journal: set aside with the reason, never used; what it names
// is untouched after a whole start + teardown.
class HostileJournal
    : public ::testing::TestWithParam<std::pair<const char*, std::function<void(Journal&)>>> {};

TEST_P(HostileJournal, IsSetAsideAndWhatItNamesIsUntouched) {
  test::TempRoot root("02-zram-file-zswap");
  const std::map<std::string, std::string> victims = {{"etc/passwd", "root:x:0:0::/root:/bin/sh\n"},
                                                      {"etc/shadow", "root:*:1::::::\n"},
                                                      {"x/reset", "keep\n"},
                                                      {"sys/block/sda/reset", "keep\n"},
                                                      {"sys/class/zram-control/hot_remove", "keep\n"}};
  for (const auto& [p, content] : victims) test::spit(root.path() / p, content);
  Journal j;
  j.source = "/etc/tierswap.yaml";
  j.values.push_back({"/proc/sys/vm/swappiness", "1", "100"});
  GetParam().second(j);
  const std::string text = to_json(j);
  test::spit(root.path() / "run/tierswap/state.json", text);

  FakeDaemon d(root);
  auto r = d.engine->start();
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_TRUE(d.logged("not using it")) << d.all_log();
  EXPECT_TRUE(d.logged(GetParam().first)) << d.all_log();
  const auto aside = set_aside_files(root);
  EXPECT_EQ(aside.size(), 1u) << d.all_log();
  if (!aside.empty()) {
    EXPECT_EQ(test::slurp(aside[0]), text);
    EXPECT_TRUE(d.logged("set aside as /run/tierswap/" + aside[0].filename().string())) << d.all_log();
  }
  EXPECT_TRUE(d.logged("cannot be recovered")) << d.all_log();
  ASSERT_TRUE(d.engine->stop());
  for (const auto& [p, content] : victims) EXPECT_EQ(test::slurp(root.path() / p), content) << p;
  // Its swappiness "original" of 1 was not trusted either: the value the
  // fixture had before this start is what teardown restores.
  EXPECT_EQ(test::slurp(root.path() / "proc/sys/vm/swappiness"), "60");
  EXPECT_FALSE(fsys::exists(root.path() / "run/tierswap/state.json"));
}

INSTANTIATE_TEST_SUITE_P(
    Journal, HostileJournal,
    ::testing::Values(
        std::make_pair("values[1].path: \"/etc/passwd\"", std::function<void(Journal&)>([](Journal& j) {
                         j.values.push_back({"/etc/passwd", "pwned", "x"});
                       })),
        std::make_pair("values[1].path: \"/proc/sys/../../etc/shadow\"",
                       std::function<void(Journal&)>([](Journal& j) {
                         j.values.push_back({"/proc/sys/../../etc/shadow", "pwned", "x"});
                       })),
        std::make_pair("tiers[0].device: \"../../x\"", std::function<void(Journal&)>([](Journal& j) {
                         j.tiers.push_back(OwnedTier{.name = "fast",
                                                     .kind = "zram",
                                                     .device = "../../x",
                                                     .swap_path = "/dev/../../x",
                                                     .created_device = true,
                                                     .active = true});
                       })),
        std::make_pair("tiers[0].device: \"sda\"", std::function<void(Journal&)>([](Journal& j) {
                         j.tiers.push_back(OwnedTier{.name = "fast",
                                                     .kind = "zram",
                                                     .device = "sda",
                                                     .swap_path = "/dev/sda",
                                                     .created_device = true,
                                                     .active = true});
                       }))),
    [](const auto& info) { return std::to_string(info.index); });

TEST(JournalFile, SaveNeverFollowsASymlinkPlantedAtTheTempName) {
  test::TempRoot root;
  test::spit(root.path() / "victim", "keep\n");
  fsys::create_directories(root.path() / "run/tierswap");
  fsys::create_symlink(root.path() / "victim", root.path() / "run/tierswap/state.json.tmp");
  const HostFs hfs(root.str());
  ASSERT_TRUE(save_journal(hfs, good_journal()));
  EXPECT_EQ(test::slurp(root.path() / "victim"), "keep\n");
  EXPECT_FALSE(fsys::is_symlink(root.path() / "run/tierswap/state.json"));
  EXPECT_FALSE(fsys::exists(fsys::symlink_status(root.path() / "run/tierswap/state.json.tmp")));
  auto back = load_journal(hfs);
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(to_json(*back), to_json(good_journal()));
}

TEST(JournalFile, SymlinkedStateDirIsRefused) {
  test::TempRoot root;
  fsys::create_directories(root.path() / "elsewhere");
  fsys::create_directories(root.path() / "run");
  fsys::create_directory_symlink(root.path() / "elsewhere", root.path() / "run/tierswap");
  auto r = save_journal(HostFs(root.str()), good_journal());
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("/run/tierswap"), std::string::npos) << r.error().message;
  EXPECT_TRUE(fsys::is_empty(root.path() / "elsewhere"));
}

TEST(JournalFile, SymlinkedJournalIsNotReadAndIsSetAsideAsALink) {
  test::TempRoot root;
  test::spit(root.path() / "elsewhere.json", to_json(good_journal()));
  fsys::create_directories(root.path() / "run/tierswap");
  fsys::create_symlink(root.path() / "elsewhere.json", root.path() / "run/tierswap/state.json");
  const HostFs hfs(root.str());
  auto j = load_journal(hfs);
  ASSERT_FALSE(j);
  EXPECT_NE(j.error().message.find("is a symlink"), std::string::npos) << j.error().message;
  auto aside = set_aside_journal(hfs);
  ASSERT_TRUE(aside) << aside.error().message;
  EXPECT_TRUE(aside->starts_with("/run/tierswap/state.json.invalid-")) << *aside;
  EXPECT_TRUE(fsys::is_symlink(root.path() / aside->substr(1)));
  EXPECT_EQ(test::slurp(root.path() / "elsewhere.json"), to_json(good_journal()));
  // A second one in the same second gets its own name.
  test::spit(root.path() / "run/tierswap/state.json", "garbage");
  auto second = set_aside_journal(hfs);
  ASSERT_TRUE(second);
  EXPECT_NE(*second, *aside);
  EXPECT_EQ(set_aside_journal(hfs).error().code, ENOENT);
}

// kill -9 (the engine is dropped without stop), the journal corrupted, a
// new start: tierswap's zram device and swap file are adopted by their
// swap label, not orphaned beside new ones; teardown then removes them.
TEST(JournalRebuild, CorruptJournalWithOurTiersActiveAdoptsThemNotOrphans) {
  test::TempRoot root("02-zram-file-zswap");
  {
    FakeDaemon first(root);
    ASSERT_TRUE(first.engine->start());
    ASSERT_EQ(first.calls().front(), "zram_hot_add -> zram1");
  }
  // The fake kernel does not keep mm_stat; the real one reports mem_limit there.
  test::spit(root.path() / "sys/block/zram1/mm_stat", "0 0 0 536870912 0 0 0 0 0\n");
  const auto swaps_before = test::slurp(root.path() / "proc/swaps");
  test::spit(root.path() / "run/tierswap/state.json", "{\"version\": 1, \"tiers\": [{\"name\": \"fa");

  FakeDaemon second(root);
  auto r = second.engine->start();
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_TRUE(second.calls().empty()) << second.all_log();  // no new device, no swapon: adopted as is
  EXPECT_EQ(test::slurp(root.path() / "proc/swaps"), swaps_before);
  EXPECT_FALSE(fsys::exists(root.path() / "sys/block/zram2"));
  EXPECT_EQ(set_aside_files(root).size(), 1u);
  EXPECT_TRUE(second.logged("tier \"fast\": /dev/zram1 carries tierswap's swap label and is active"))
      << second.all_log();
  EXPECT_TRUE(second.logged("tier \"disk\": swap file /var/swap/tier.swap carries tierswap's swap label"))
      << second.all_log();
  const auto j = second.engine->journal();
  ASSERT_EQ(j.tiers.size(), 2u);
  const auto* fast = j.find_tier("fast");
  ASSERT_NE(fast, nullptr);
  EXPECT_EQ(fast->device, "zram1");
  EXPECT_TRUE(fast->created_device);
  EXPECT_TRUE(fast->active);
  EXPECT_EQ(fast->mem_limit, 512u << 20);
  EXPECT_TRUE(j.find_tier("disk")->created_file);
  auto saved = load_journal(HostFs(root.str()));
  ASSERT_TRUE(saved);
  EXPECT_EQ(saved->tiers.size(), 2u);

  ASSERT_TRUE(second.engine->stop());
  const auto c = second.calls();
  EXPECT_NE(std::find(c.begin(), c.end(), "swapoff /dev/zram1"), c.end());
  EXPECT_NE(std::find(c.begin(), c.end(), "zram_hot_remove zram1"), c.end());
  EXPECT_EQ(test::slurp(root.path() / "proc/swaps"),
            test::slurp(test::fixtures_dir() / "02-zram-file-zswap/proc/swaps"));
  EXPECT_FALSE(fsys::exists(root.path() / "sys/block/zram1"));
  EXPECT_FALSE(fsys::exists(root.path() / "var/swap/tier.swap"));
}

TEST(JournalRebuild, ForeignAreasAndUnlabelledDevicesAreLeftAlone) {
  test::TempRoot root("02-zram-file-zswap");
  {
    FakeDaemon first(root);
    ASSERT_TRUE(first.engine->start());
  }
  // Someone else's swap file and zram device, active, without our label.
  std::string page(4096, '\0');
  page.replace(4096 - 10, 10, "SWAPSPACE2");
  test::spit(root.path() / "var/other.swap", page);
  test::spit(root.path() / "dev/zram0", page);
  test::spit(root.path() / "sys/block/zram0/disksize", "1048576\n");
  auto swaps = test::slurp(root.path() / "proc/swaps");
  swaps += "/var/other.swap\tfile\t1000\t0\t-2\n/dev/zram0\tpartition\t1000\t0\t5\n";
  test::spit(root.path() / "proc/swaps", swaps);
  test::spit(root.path() / "run/tierswap/state.json", "not json at all {");
  std::vector<std::string> log;
  auto obs = observe(HostFs(root.str()));
  ASSERT_TRUE(obs);
  const auto j = rebuild_from_kernel(*obs, HostFs(root.str()), {}, log);
  ASSERT_EQ(j.tiers.size(), 2u);  // zram1 and tier.swap, named for no config
  for (const auto& t : j.tiers) {
    EXPECT_NE(t.swap_path, "/var/other.swap");
    EXPECT_NE(t.device, "zram0");
    EXPECT_TRUE(t.name.starts_with("recovered-")) << t.name;
  }
  EXPECT_TRUE(validate_journal(j));
}

// The step being run is saved as pending before its kernel change; after a
// crash its plug-in tells from the kernel what became of it.
TEST(JournalPending, RoundTripsAndAPendingStepOfNoPluginIsRefused) {
  Journal j = good_journal();
  j.pending = Step{.kind = "zram", .op = "zram_add", .tier = "fast", .previous = "zram0 zram1"};
  const std::string text = to_json(j);
  auto back = parse_journal(text);
  ASSERT_TRUE(back) << back.error().message;
  ASSERT_TRUE(back->pending);
  EXPECT_EQ(back->pending->op, "zram_add");
  EXPECT_EQ(back->pending->previous, "zram0 zram1");
  EXPECT_EQ(to_json(*back), text);
  EXPECT_TRUE(validate_journal(*back));
  back->pending->kind = "script";
  auto v = validate_journal(*back);
  ASSERT_FALSE(v);
  EXPECT_NE(v.error().message.find("pending.kind: \"script\" is not a plug-in's name"), std::string::npos)
      << v.error().message;
  EXPECT_FALSE((Journal{.pending = Step{.kind = "zram", .op = "zram_add"}}).empty());
}

namespace {
Journal pending_zram_add(const HostFs& fs) {
  Journal j;
  j.source = "/etc/tierswap.yaml";
  j.pending = Step{.kind = "zram", .op = "zram_add", .tier = "fast"};
  kinds::named("zram")->prepare(*j.pending, fs);
  return j;
}
std::string lines(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& l : v) s += l + "\n";
  return s;
}
}  // namespace

TEST(JournalPending, InterruptedHotAddIsFoundAsTheOneNewDeviceNotSetUp) {
  test::TempRoot root("02-zram-file-zswap");
  const HostFs hfs(root.str());
  Journal j = pending_zram_add(hfs);
  EXPECT_EQ(j.pending->previous, "zram0");
  swap::RecordingKernel k(&hfs);
  auto dev = k.zram_hot_add();  // the kernel step the crash came after
  ASSERT_TRUE(dev);
  auto obs = observe(hfs);
  ASSERT_TRUE(obs) << obs.error().message;
  const auto log = recover_pending(j, *obs, hfs);
  EXPECT_FALSE(j.pending);
  ASSERT_EQ(j.tiers.size(), 1u) << lines(log);
  EXPECT_EQ(j.tiers[0].device, *dev);
  EXPECT_EQ(j.tiers[0].name, "fast");
  EXPECT_TRUE(j.tiers[0].created_device);
  EXPECT_NE(lines(log).find(*dev + " was added since and is not set up"), std::string::npos) << lines(log);
}

TEST(JournalPending, InterruptedHotAddWithTwoNewDevicesTakesNeither) {
  test::TempRoot root("02-zram-file-zswap");
  const HostFs hfs(root.str());
  Journal j = pending_zram_add(hfs);
  swap::RecordingKernel k(&hfs);
  ASSERT_TRUE(k.zram_hot_add());
  ASSERT_TRUE(k.zram_hot_add());  // someone else's, at the same moment
  auto obs = observe(hfs);
  ASSERT_TRUE(obs);
  const auto log = recover_pending(j, *obs, hfs);
  EXPECT_TRUE(j.tiers.empty());
  EXPECT_NE(lines(log).find("cannot tell which one hot_add created"), std::string::npos) << lines(log);
}

TEST(JournalPending, InterruptedHotAddThatNeverHappenedRecordsNothing) {
  test::TempRoot root("02-zram-file-zswap");
  const HostFs hfs(root.str());
  Journal j = pending_zram_add(hfs);
  auto obs = observe(hfs);
  ASSERT_TRUE(obs);
  const auto log = recover_pending(j, *obs, hfs);
  EXPECT_TRUE(j.empty()) << lines(log);
}

// A hostile pending step cannot smuggle in what validation refuses: what
// it would record is checked like the rest of the journal.
TEST(JournalPending, HostilePendingWriteIsNotRecorded) {
  test::TempRoot root("02-zram-file-zswap");
  const HostFs hfs(root.str());
  Journal j = good_journal();
  j.pending = Step{.kind = "sysctl", .op = "write", .path = "/etc/passwd", .value = "x", .previous = "root"};
  ASSERT_TRUE(validate_journal(j));  // only its plug-in is checked at load
  auto obs = observe(hfs);
  ASSERT_TRUE(obs);
  const auto before = to_json(good_journal());
  const auto log = recover_pending(j, *obs, hfs);
  EXPECT_EQ(to_json(j), before) << lines(log);
  EXPECT_NE(lines(log).find("not recorded: values[2].path: \"/etc/passwd\" is not a value tierswap changes"),
            std::string::npos)
      << lines(log);
}
