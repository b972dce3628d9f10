// The VRAM tier's raw test against its exporter directly (issue: the raw
// 4 KiB test "for the VRAM tier also against the exporter directly"): a
// scratch tierswap-nbd with the host store, fio's nbd engine. Label nbd:
// it runs the exporter and fio, not the kernel's nbd driver.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "bench/swap/fio.hpp"
#include "bench/swap/runner.hpp"

namespace {

using namespace tierswap::bench;

bool fio_has_nbd_engine() {
  return std::system("fio --enghelp 2>/dev/null | grep -qw nbd") == 0;
}

std::size_t scratch_dirs() {
  std::size_t n = 0;
  for (const auto& e : std::filesystem::directory_iterator("/tmp"))
    if (e.path().filename().string().starts_with("tierswap-bench-nbd-")) ++n;
  return n;
}

TEST(BenchRawExporter, FioArgsUseTheNbdEngineWithoutODirect) {
  const auto a = fio_nbd_args("nbd+unix:///?socket=/tmp/d/nbd.sock", 3, 64 << 20);
  auto has = [&](const std::string& s) { return std::find(a.begin(), a.end(), s) != a.end(); };
  EXPECT_TRUE(has("--ioengine=nbd"));
  EXPECT_TRUE(has("--uri=nbd+unix:///?socket=/tmp/d/nbd.sock"));
  EXPECT_TRUE(has("--rw=randwrite"));
  EXPECT_TRUE(has("--rw=randread"));
  EXPECT_TRUE(has("--iodepth=32"));
  EXPECT_FALSE(has("--direct=1"));
  for (const auto& s : a) EXPECT_FALSE(s.starts_with("--filename=")) << s;
}

TEST(BenchRawExporter, ScratchHostExporterGivesWriteAndReadFiguresAndLeavesNothing) {
  if (std::system("command -v fio >/dev/null 2>&1") != 0) GTEST_SKIP() << "fio is not installed";
  if (!fio_has_nbd_engine()) GTEST_SKIP() << "this fio has no nbd engine (built without libnbd)";
  const std::size_t before = scratch_dirs();
  std::FILE* log = std::tmpfile();
  const auto r = raw_scratch_exporter(TIERSWAP_NBD_BIN, "host", "/dev/nbd0", 1, 16 << 20, log);
  ASSERT_TRUE(r) << r.error().describe();
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0].mode, "randwrite");
  EXPECT_EQ((*r)[1].mode, "randread");
  for (const auto& x : *r) {
    EXPECT_EQ(x.tier, "/dev/nbd0");
    EXPECT_NE(x.target.find("scratch exporter, fio nbd engine"), std::string::npos) << x.target;
    EXPECT_NE(x.target.find("--store host"), std::string::npos) << x.target;
    EXPECT_GT(x.iops, 0);
    EXPECT_GT(x.p50_us, 0);
    EXPECT_LE(x.p50_us, x.p99_us);
  }
  EXPECT_EQ(scratch_dirs(), before) << "the scratch exporter's directory is left in /tmp";
  std::fclose(log);
}

TEST(BenchRawExporter, AnExporterThatCannotStartIsAnErrorAndLeavesNothing) {
  const std::size_t before = scratch_dirs();
  std::FILE* log = std::tmpfile();
  // No such store: the exporter exits with a usage error at once.
  const auto r = raw_scratch_exporter(TIERSWAP_NBD_BIN, "no-such-store", "/dev/nbd0", 1, 16 << 20, log);
  EXPECT_FALSE(r);
  EXPECT_EQ(scratch_dirs(), before);
  std::fclose(log);
}

}  // namespace
