// The exporter keeps only CAP_IPC_LOCK and CAP_SYS_RESOURCE: /proc/PID/status
// of a running tierswap-nbd shows no other capability in any set, and keeps
// those two of them that its starter had.
#include <gtest/gtest.h>
#include <linux/capability.h>

#include <cstdint>
#include <fstream>
#include <map>
#include <string>

#include "nbd_test_util.hpp"

using namespace nbdtest;

namespace {

// CapInh, CapPrm, CapEff, CapBnd, CapAmb of /proc/<pid>/status.
std::map<std::string, std::uint64_t> cap_sets(pid_t pid) {
  std::map<std::string, std::uint64_t> out;
  std::ifstream f("/proc/" + (pid ? std::to_string(pid) : std::string("self")) + "/status");
  for (std::string line; std::getline(f, line);)
    if (line.starts_with("Cap")) {
      const auto colon = line.find(':');
      out[line.substr(0, colon)] = std::stoull(line.substr(colon + 1), nullptr, 16);
    }
  return out;
}

constexpr std::uint64_t bit(int cap) {
  return std::uint64_t{1} << cap;
}
constexpr std::uint64_t kKeep = bit(CAP_IPC_LOCK) | bit(CAP_SYS_RESOURCE);

}  // namespace

TEST(Capabilities, ARunningExporterHoldsOnlyIpcLockAndSysResource) {
  const auto mine = cap_sets(0);
  ASSERT_TRUE(mine.contains("CapEff"));
  Exporter ex;
  ASSERT_TRUE(ex.start()) << ex.log();
  const auto its = cap_sets(ex.pid);
  ASSERT_TRUE(its.contains("CapEff")) << "no /proc/" << ex.pid << "/status";
  for (const char* set : {"CapEff", "CapPrm", "CapInh", "CapAmb"})
    EXPECT_EQ(its.at(set) & ~kKeep, 0u) << set << " " << std::hex << its.at(set);
  // The two it needs, as far as this test's process had them to hand down.
  EXPECT_EQ(its.at("CapEff"), mine.at("CapPrm") & kKeep) << std::hex << its.at("CapEff");
  // The bounding set is dropped when the starter could (CAP_SETPCAP).
  if (mine.at("CapEff") & bit(CAP_SETPCAP)) {
    EXPECT_EQ(its.at("CapBnd") & ~kKeep, 0u) << std::hex << its.at("CapBnd");
  }
  // What is missing is said, with what it risks.
  if ((mine.at("CapPrm") & bit(CAP_SYS_RESOURCE)) == 0) {
    const std::string log = ex.log();
    EXPECT_NE(log.find("no CAP_SYS_RESOURCE"), std::string::npos) << log;
    EXPECT_NE(log.find("OOM killer"), std::string::npos) << log;
  }
  // It still serves after the drop.
  const int fd = raw_connect_go(ex.socket);
  ASSERT_GE(fd, 0) << ex.log();
  const auto data = pattern(65536, 3);
  ASSERT_TRUE(raw_request(fd, nbd::kCmdWrite, 0, 0, 65536, 1, data));
  EXPECT_EQ(raw_reply(fd, 1), 0);
  std::vector<std::byte> back(65536);
  ASSERT_TRUE(raw_request(fd, nbd::kCmdRead, 0, 0, 65536, 2));
  EXPECT_EQ(raw_reply(fd, 2, &back), 0);
  EXPECT_EQ(back, data);
  ::close(fd);
}
