// Interop with the tools people use: fio's nbd engine with crc32c verify
// over several connections, qemu-io patterns, nbdcopy between nbdkit's
// memory plugin and tierswap-nbd. Each skips with the reason if its tool is
// missing.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

#include "tests/nbd/nbd_test_util.hpp"

using namespace nbdtest;

namespace {

// Runs a shell command; its exit status and combined output.
int sh(const std::string& cmd, std::string& out) {
  out.clear();
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  if (p == nullptr) return -1;
  char buf[4096];
  while (std::fgets(buf, sizeof buf, p) != nullptr) out += buf;
  const int st = ::pclose(p);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

// The fields of fio's terse (version 3) line for the job `name`.
std::vector<std::string> terse_fields(const std::string& out, const std::string& name) {
  std::vector<std::string> f;
  const auto at = out.find("3;fio-");
  if (at == std::string::npos) return f;
  std::string line = out.substr(at, out.find('\n', at) - at);
  for (std::size_t b = 0;;) {
    const auto e = line.find(';', b);
    f.push_back(line.substr(b, e - b));
    if (e == std::string::npos) break;
    b = e + 1;
  }
  if (f.size() < 6 || f[2] != name) f.clear();
  return f;
}

std::string uri(const Exporter& ex) {
  return "nbd+unix:///?socket=" + ex.socket;
}

TEST(Fio, RandomWritesVerifiedWithCrc32cOverFourConnections) {
  if (!have_tool("fio")) GTEST_SKIP() << "fio is not installed";
  Exporter ex;
  ASSERT_TRUE(ex.start({"--connections", "4"}, "host", "64M")) << ex.log();
  std::string out;
  // Four jobs = four NBD connections, each on its own 8 MiB region.
  const std::string cmd =
      "fio --name=crcjob --ioengine=nbd --uri='" + uri(ex) +
      "' --rw=randwrite --bs=4k --bssplit=4k/70:64k/20:1m/10 --size=8M --offset_increment=8M"
      " --numjobs=4 --iodepth=16 --verify=crc32c --verify_fatal=1 --do_verify=1"
      " --group_reporting --output-format=terse --terse-version=3";
  ASSERT_EQ(sh(cmd, out), 0) << out << ex.log();
  // The verify phase really ran: it read back all 4 x 8 MiB written, with
  // no error (terse v3: field 5 is the error, 6 the KiB read).
  const auto f = terse_fields(out, "crcjob");
  ASSERT_FALSE(f.empty()) << out;
  EXPECT_EQ(f[4], "0") << out;
  EXPECT_EQ(f[5], std::to_string(4 * 8192)) << out;
  EXPECT_EQ(out.find("verify:"), std::string::npos) << out;  // fio's "verify: bad ..." lines
  EXPECT_TRUE(ex.alive());
}

TEST(Fio, MixedRandomReadWriteAtDepth) {
  if (!have_tool("fio")) GTEST_SKIP() << "fio is not installed";
  Exporter ex;
  ASSERT_TRUE(ex.start({"--connections", "4"}, "host-batch", "64M")) << ex.log();
  std::string out;
  const std::string cmd =
      "fio --name=mix --ioengine=nbd --uri='" + uri(ex) +
      "' --rw=randrw --rwmixread=70 --bs=4k --size=16M --offset_increment=16M --numjobs=4"
      " --iodepth=32 --time_based --runtime=2 --verify=crc32c --do_verify=1 --verify_fatal=1"
      " --verify_backlog=64 --output-format=terse --terse-version=3";
  ASSERT_EQ(sh(cmd, out), 0) << out << ex.log();
}

TEST(QemuIo, WriteReadPatternsZeroesAndDiscard) {
  if (!have_tool("qemu-io")) GTEST_SKIP() << "qemu-io (qemu-utils) is not installed";
  Exporter ex;
  ASSERT_TRUE(ex.start({}, "host", "64M")) << ex.log();
  std::string out;
  const std::string cmd = "qemu-io -f raw '" + uri(ex) +
                          "'"
                          " -c 'write -P 0xab 0 1M' -c 'read -P 0xab 0 1M'"
                          " -c 'write -P 0xcd 1M 4k' -c 'write -f -P 0xef 2M 64k' -c 'flush'"
                          " -c 'read -P 0xcd 1M 4k' -c 'read -P 0xef 2M 64k'"
                          " -c 'write -z 512k 64k' -c 'read -P 0 512k 64k' -c 'read -P 0xab 576k 448k'"
                          " -c 'discard 8M 1M'"
                          " -c 'aio_write -P 0x11 16M 4k' -c 'aio_write -P 0x22 17M 4k' -c 'aio_flush'"
                          " -c 'read -P 0x11 16M 4k' -c 'read -P 0x22 17M 4k'"
                          " -c 'write -P 0x33 63M 1M' -c 'read -P 0x33 63M 1M'";
  ASSERT_EQ(sh(cmd, out), 0) << out;
  EXPECT_EQ(out.find("fail"), std::string::npos) << out;
  EXPECT_EQ(out.find("error"), std::string::npos) << out;
  EXPECT_EQ(out.find("Pattern verification"), std::string::npos) << out;
}

TEST(Nbdcopy, CopiesBetweenNbdkitMemoryAndTierswapBothWays) {
  if (!have_tool("nbdcopy")) GTEST_SKIP() << "nbdcopy (libnbd-bin) is not installed";
  if (!have_tool("nbdkit")) GTEST_SKIP() << "nbdkit is not installed";
  Exporter ex;
  ASSERT_TRUE(ex.start({"--connections", "4"}, "host", "32M")) << ex.log();
  const std::string d = ex.dir.path;
  std::string out;
  ASSERT_EQ(sh("head -c 33554432 /dev/urandom > " + d + "/in && truncate -s 32M " + d + "/in", out), 0)
      << out;
  // file -> tierswap -> nbdkit memory -> file, all with several connections.
  ASSERT_EQ(sh("nbdcopy --connections=4 " + d + "/in '" + uri(ex) + "'", out), 0) << out;
  const std::string kit = d + "/kit.sock";
  const std::string kit_cmd = "nbdkit -U " + kit + " --exit-with-parent -f -t 4 memory size=32M";
  // nbdkit's --exit-with-parent follows this shell: run the copies inside it.
  const std::string script = "( " + kit_cmd + " & K=$!; for i in $(seq 100); do [ -S " + kit +
                             " ] && break; sleep 0.05; done; nbdcopy --connections=4 '" + uri(ex) +
                             "' 'nbd+unix:///?socket=" + kit + "' && nbdcopy 'nbd+unix:///?socket=" + kit +
                             "' " + d + "/out; rc=$?; kill $K; wait $K 2>/dev/null; exit $rc )";
  ASSERT_EQ(sh(script, out), 0) << out;
  ASSERT_EQ(sh("cmp " + d + "/in " + d + "/out", out), 0) << out;
}

}  // namespace
