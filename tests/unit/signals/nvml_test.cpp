// GPU signals through a fake libnvidia-ml.so.1 (tests/fakes/fake_nvml.c)
// whose figures each test writes to $FAKE_NVML_STATE.
#include "backends/gpu/nvml.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "backends/gpu/gpu_reading.hpp"

namespace tierswap::gpu {
namespace {

namespace fs = std::filesystem;

constexpr std::uint64_t GiB = 1ULL << 30;
constexpr std::uint64_t MiB = 1ULL << 20;

class NvmlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("tierswap-nvml-" + std::to_string(getpid()));
    fs::create_directories(dir_);
    setenv("FAKE_NVML_STATE", (dir_ / "state").c_str(), 1);
    setenv("FAKE_NVML_LOG", (dir_ / "log").c_str(), 1);
    state(
        "count=1\n"
        "gpu0.name=NVIDIA H200\n"
        "gpu0.uuid=GPU-8f1c2d3e-0000-1111-2222-333344445555\n"
        "gpu0.total=150754820096\n"
        "gpu0.free=140000000000\n"
        "gpu0.used=10754820096\n"
        "gpu0.util=37\n"
        "gpu0.memutil=5\n"
        "gpu0.temp=41\n");
  }
  void TearDown() override {
    unsetenv("FAKE_NVML_STATE");
    unsetenv("FAKE_NVML_LOG");
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  void state(const std::string& text) { std::ofstream(dir_ / "state", std::ios::trunc) << text; }
  void add(const std::string& lines) { std::ofstream(dir_ / "state", std::ios::app) << lines; }
  std::string log() {
    std::ifstream in(dir_ / "log");
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  static GpuSignalsOptions fake(std::chrono::seconds retry = std::chrono::seconds(60)) {
    return {FAKE_NVML, retry};
  }

  fs::path dir_;
};

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += x + "\n";
  return s;
}

TEST_F(NvmlTest, AbsentLibraryIsUnavailableAndSaidOnce) {
  const std::string missing = (dir_ / "nowhere" / "libnvidia-ml.so.1").string();
  GpuSignals gpus({missing, std::chrono::seconds(0)});  // retry on every poll
  auto first = gpus.poll({});
  EXPECT_FALSE(first.available);
  EXPECT_TRUE(first.gpus.empty());
  ASSERT_EQ(first.notices.size(), 1u) << joined(first.notices);
  EXPECT_EQ(first.notices[0].rfind("GPU signals unavailable: " + missing + " not found", 0), 0u)
      << first.notices[0];
  for (int i = 0; i < 3; ++i) {
    auto again = gpus.poll({});
    EXPECT_FALSE(again.available);
    EXPECT_TRUE(again.notices.empty()) << joined(again.notices);
    EXPECT_EQ(again.unavailable_reason, first.unavailable_reason);
  }
}

TEST_F(NvmlTest, AbsentLibraryByLoad) {
  auto n = Nvml::load((dir_ / "libnvidia-ml.so.1").string());
  ASSERT_FALSE(n);
  EXPECT_EQ(n.error().code, ENOENT);
  EXPECT_NE(n.error().message.find("not found"), std::string::npos) << n.error().message;
}

TEST_F(NvmlTest, InitFailureNamesNvmlsReason) {
  add("init=9\n");
  GpuSignals gpus(fake());
  auto p = gpus.poll({});
  EXPECT_FALSE(p.available);
  EXPECT_NE(p.unavailable_reason.find("nvmlInit_v2: Driver Not Loaded (NVML error 9)"), std::string::npos)
      << p.unavailable_reason;
  ASSERT_EQ(p.notices.size(), 1u);
  // Within retry_interval it does not even try again.
  const std::string before = log();
  EXPECT_TRUE(gpus.poll({}).notices.empty());
  EXPECT_EQ(log(), before);
}

TEST_F(NvmlTest, FiguresParsed) {
  GpuSignals gpus(fake());
  auto p = gpus.poll({});
  ASSERT_TRUE(p.available) << p.unavailable_reason;
  ASSERT_EQ(p.gpus.size(), 1u);
  const GpuReading& g = p.gpus[0];
  EXPECT_EQ(g.index, 0u);
  EXPECT_EQ(g.name, "NVIDIA H200");
  EXPECT_EQ(g.uuid, "GPU-8f1c2d3e-0000-1111-2222-333344445555");
  EXPECT_EQ(g.total_bytes, 150754820096ULL);
  EXPECT_EQ(g.free_bytes, 140000000000ULL);
  EXPECT_EQ(g.used_bytes, 10754820096ULL);
  EXPECT_EQ(g.utilization_percent, 37u);
  EXPECT_EQ(g.memory_utilization_percent, 5u);
  EXPECT_EQ(g.temperature_c, 41u);
  EXPECT_TRUE(g.processes_known);
  EXPECT_TRUE(g.foreign.empty());
  EXPECT_TRUE(g.errors.empty()) << joined(g.errors);
  ASSERT_EQ(p.notices.size(), 1u) << joined(p.notices);
  EXPECT_NE(p.notices[0].find("GPU signals: NVML (" + std::string(FAKE_NVML) + "), 1 GPU"), std::string::npos)
      << p.notices[0];
  // Figures change between polls; the notice is not repeated.
  state("count=1\ngpu0.total=2000\ngpu0.free=1000\ngpu0.used=1000\n");
  auto q = gpus.poll({});
  ASSERT_TRUE(q.available);
  EXPECT_EQ(q.gpus[0].free_bytes, 1000u);
  EXPECT_TRUE(q.notices.empty()) << joined(q.notices);
}

TEST_F(NvmlTest, ForeignProcessesExcludeTheExporter) {
  const pid_t exporter = 4242;
  add("gpu0.compute=4242:" + std::to_string(GiB) + ",200:" + std::to_string(2 * GiB) + "\n" +
      "gpu0.graphics=300:" + std::to_string(512 * MiB) + ",200:" + std::to_string(2 * GiB) + "\n");
  GpuSignals gpus(fake());
  const pid_t exclude[] = {exporter};
  auto p = gpus.poll(exclude);
  ASSERT_TRUE(p.available) << p.unavailable_reason;
  const GpuReading& g = p.gpus[0];
  ASSERT_TRUE(g.processes_known);
  ASSERT_EQ(g.foreign.size(), 2u);  // 200 is in both lists: counted once
  EXPECT_EQ(g.foreign[0].pid, 200);
  EXPECT_TRUE(g.foreign[0].compute && g.foreign[0].graphics);
  EXPECT_EQ(g.foreign[1].pid, 300);
  EXPECT_TRUE(g.foreign[1].graphics && !g.foreign[1].compute);
  EXPECT_EQ(g.foreign_bytes, 2 * GiB + 512 * MiB);
  ASSERT_EQ(g.own.size(), 1u);
  EXPECT_EQ(g.own[0].pid, exporter);
  EXPECT_EQ(g.own_bytes, GiB);
  const auto f = tier_figures(g);
  EXPECT_EQ(f.foreign_vram_bytes, 2 * GiB + 512 * MiB);
  EXPECT_EQ(f.vram_free_bytes, g.free_bytes);
  EXPECT_EQ(f.vram_total_bytes, g.total_bytes);
  // Without the exclusion the exporter counts as foreign: the pid matters.
  auto all = gpus.poll({});
  EXPECT_EQ(all.gpus[0].foreign_bytes, 3 * GiB + 512 * MiB);
}

TEST_F(NvmlTest, UnattributedMemoryIsCountedApart) {
  add("gpu0.compute=10:na,11:" + std::to_string(MiB) + "\n");
  GpuSignals gpus(fake());
  auto p = gpus.poll({});
  ASSERT_TRUE(p.available);
  const GpuReading& g = p.gpus[0];
  EXPECT_EQ(g.foreign.size(), 2u);
  EXPECT_EQ(g.foreign_bytes, MiB);
  EXPECT_EQ(g.foreign_unattributed, 1u);
  EXPECT_FALSE(g.foreign[0].used_bytes.has_value());
}

TEST_F(NvmlTest, LongProcessListIsReadWhole) {
  std::string list;
  for (int pid = 1000; pid < 1100; ++pid) list += (list.empty() ? "" : ",") + std::to_string(pid) + ":4096";
  add("gpu0.compute=" + list + "\n");
  GpuSignals gpus(fake());
  auto p = gpus.poll({});
  ASSERT_TRUE(p.available);
  EXPECT_EQ(p.gpus[0].foreign.size(), 100u);
  EXPECT_EQ(p.gpus[0].foreign_bytes, 100u * 4096u);
}

TEST_F(NvmlTest, OlderDriverWithoutV3UsesV2) {
  add("gpu0.compute=7:" + std::to_string(MiB) + "\n");
  auto n = Nvml::load(FAKE_NVML_NO_V3);
  ASSERT_TRUE(n) << n.error().message;
  EXPECT_FALSE((*n)->has_processes_v3());
  auto g = (*n)->read(0, {});
  ASSERT_TRUE(g) << g.error().message;
  ASSERT_EQ(g->foreign.size(), 1u);
  EXPECT_EQ(g->foreign_bytes, MiB);
  auto v3 = Nvml::load(FAKE_NVML);
  ASSERT_TRUE(v3);
  EXPECT_TRUE((*v3)->has_processes_v3());
}

TEST_F(NvmlTest, ErrorCodeGivesNvmlsMessage) {
  add("gpu0.fail.memory=15\n");
  auto n = Nvml::load(FAKE_NVML);
  ASSERT_TRUE(n) << n.error().message;
  auto g = (*n)->read(0, {});
  ASSERT_FALSE(g);
  EXPECT_EQ(g.error().message, "nvmlDeviceGetMemoryInfo (GPU 0): GPU is lost (NVML error 15)");
  EXPECT_EQ((*n)->error_text(4), "Insufficient Permissions (NVML error 4)");

  // Through GpuSignals: unavailable, said once, NVML unloaded (shut down).
  GpuSignals gpus(fake(std::chrono::seconds(0)));
  auto p = gpus.poll({});
  EXPECT_FALSE(p.available);
  ASSERT_EQ(p.notices.size(), 1u);
  EXPECT_EQ(p.notices[0],
            "GPU signals unavailable: nvmlDeviceGetMemoryInfo (GPU 0): GPU is lost (NVML error 15)");
  EXPECT_TRUE(gpus.poll({}).notices.empty());
  // The GPU comes back: said so, once.
  state("count=1\ngpu0.total=100\ngpu0.free=100\n");
  auto back = gpus.poll({});
  ASSERT_TRUE(back.available) << back.unavailable_reason;
  ASSERT_EQ(back.notices.size(), 1u);
  EXPECT_EQ(back.notices[0].rfind("GPU signals: NVML", 0), 0u) << back.notices[0];
}

TEST_F(NvmlTest, SoftErrorsLeaveTheFieldEmptyAndAreSaidOnce) {
  add("gpu0.fail.temp=3\n"  // Not Supported: no error, just no figure
      "gpu0.fail.util=4\n"  // Insufficient Permissions: an error
      "gpu0.fail.compute=4\n");
  GpuSignals gpus(fake());
  auto p = gpus.poll({});
  ASSERT_TRUE(p.available) << p.unavailable_reason;
  const GpuReading& g = p.gpus[0];
  EXPECT_FALSE(g.temperature_c.has_value());
  EXPECT_FALSE(g.utilization_percent.has_value());
  EXPECT_FALSE(g.processes_known);
  EXPECT_EQ(g.foreign_bytes, 0u);
  EXPECT_EQ(g.free_bytes, 140000000000ULL);  // the rest is read
  ASSERT_EQ(g.errors.size(), 2u) << joined(g.errors);
  EXPECT_NE(
      joined(p.notices).find("GPU 0: nvmlDeviceGetUtilizationRates: Insufficient Permissions (NVML error 4)"),
      std::string::npos)
      << joined(p.notices);
  EXPECT_NE(
      joined(p.notices).find("GPU 0: nvmlDeviceGetComputeRunningProcesses_v3: Insufficient Permissions"),
      std::string::npos)
      << joined(p.notices);
  EXPECT_EQ(joined(p.notices).find("Temperature"), std::string::npos) << joined(p.notices);
  EXPECT_TRUE(gpus.poll({}).notices.empty());
}

TEST_F(NvmlTest, ExporterAloneIsNeverBusy) {
  add("gpu0.compute=4242:" + std::to_string(GiB) + "\n");
  GpuSignals gpus(fake());
  const pid_t exclude[] = {4242};
  auto p = gpus.poll(exclude);
  ASSERT_TRUE(p.available);
  EXPECT_EQ(p.gpus[0].utilization_percent, 37u);
  EXPECT_EQ(p.gpus[0].foreign_busy_percent(), 0u);
  state("count=1\ngpu0.total=100\ngpu0.util=37\ngpu0.compute=4242:1,99:1\n");
  auto q = gpus.poll(exclude);
  EXPECT_EQ(q.gpus[0].foreign_busy_percent(), 37u);
}

TEST_F(NvmlTest, ShutdownMatchesInit) {
  {
    GpuSignals gpus(fake());
    ASSERT_TRUE(gpus.poll({}).available);
    ASSERT_TRUE(gpus.poll({}).available);
    EXPECT_EQ(log(), "init\n");
  }
  EXPECT_EQ(log(), "init\nshutdown\n");
}

TEST_F(NvmlTest, DescribeForPeople) {
  add("gpu0.compute=5:" + std::to_string(2 * GiB) + "\n");
  GpuSignals gpus(fake());
  auto p = gpus.poll({});
  ASSERT_TRUE(p.available);
  EXPECT_EQ(describe(p.gpus[0]),
            "GPU 0 (NVIDIA H200, GPU-8f1c2d3e-0000-1111-2222-333344445555): 130 GiB free of 140 GiB, "
            "2.0 GiB in 1 other process, 37% busy, 41 C");
}

std::vector<GpuReading> two_gpus() {
  std::vector<GpuReading> v(2);
  v[0].index = 0;
  v[0].uuid = "GPU-aaaa1111";
  v[1].index = 1;
  v[1].uuid = "GPU-bbbb2222";
  return v;
}

TEST(SelectGpu, AsTheVramTiersGpuKey) {
  const auto gpus = two_gpus();
  auto first = select_gpu(gpus, "");
  ASSERT_TRUE(first);
  EXPECT_EQ((*first)->index, 0u);
  auto one = select_gpu(gpus, "1");
  ASSERT_TRUE(one);
  EXPECT_EQ((*one)->index, 1u);
  auto by_uuid = select_gpu(gpus, "GPU-bbbb");
  ASSERT_TRUE(by_uuid);
  EXPECT_EQ((*by_uuid)->index, 1u);
  auto whole = select_gpu(gpus, "GPU-aaaa1111");
  ASSERT_TRUE(whole);
  EXPECT_EQ((*whole)->index, 0u);
}

TEST(SelectGpu, BadKeysNameWhatExists) {
  const auto gpus = two_gpus();
  auto none = select_gpu(gpus, "GPU-cccc");
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code, ENODEV);
  EXPECT_EQ(none.error().message,
            "gpu: \"GPU-cccc\": no GPU has this UUID (there are: 0 GPU-aaaa1111, 1 GPU-bbbb2222)");
  auto ambiguous = select_gpu(gpus, "GPU-");
  ASSERT_FALSE(ambiguous);
  EXPECT_EQ(ambiguous.error().code, EINVAL);
  auto past = select_gpu(gpus, "2");
  ASSERT_FALSE(past);
  EXPECT_EQ(past.error().code, ENODEV);
  auto word = select_gpu(gpus, "first");
  ASSERT_FALSE(word);
  EXPECT_EQ(word.error().code, EINVAL);
  EXPECT_NE(word.error().message.find("not a GPU index or UUID"), std::string::npos);
  auto empty = select_gpu({}, "");
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error().code, ENODEV);
}

}  // namespace
}  // namespace tierswap::gpu
