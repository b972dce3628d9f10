// Command lines of the programs, run as child processes: malformed arguments
// give exit status 2 and a message that names the option, before anything is
// touched (so these run without root).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/unit/run_command.hpp"

namespace {

using tierswap::test::run_command;
const auto& run = run_command;

struct Case {
  const char* args;
  const char* says;
};

TEST(TierswapdCli, MalformedArgumentsAreUsageErrors) {
  const std::vector<Case> cases = {
      {"--root", "--root needs a DIR"},
      {"--root=", "--root needs a DIR"},
      {"--config", "--config needs a FILE"},
      {"--bus-address", "--bus-address needs an ADDR"},
      {"--no-dbus --bus-address=unix:path=/x", "exclude each other"},
      {"--bogus", "unknown argument \"--bogus\""},
  };
  for (const auto& c : cases) {
    const auto r = run(std::string(TIERSWAPD) + " " + c.args);
    EXPECT_EQ(r.code, 2) << c.args << ": " << r.output;
    EXPECT_NE(r.output.find(c.says), std::string::npos) << c.args << ": " << r.output;
  }
}

TEST(TierswapctlCli, MalformedArgumentsAreUsageErrors) {
  const std::vector<Case> cases = {
      {"", "Usage: tierswapctl"},
      {"frobnicate", "unknown command \"frobnicate\""},
      {"check", "missing FILE"},
      {"check a.yaml b.yaml", "more than one FILE"},
      {"plan --root", "--root needs a value"},
      {"check --json a.yaml", "unknown option \"--json\""},
      {"watch --count abc", "--count \"abc\" is not a whole number"},
      {"watch --count 0", "--count \"0\" is not a whole number"},
      {"watch --interval 0", "--interval \"0\" is not a number of seconds"},
  };
  for (const auto& c : cases) {
    const auto r = run(std::string(TIERSWAPCTL) + " " + c.args);
    EXPECT_EQ(r.code, 2) << c.args << ": " << r.output;
    EXPECT_NE(r.output.find(c.says), std::string::npos) << c.args << ": " << r.output;
  }
}

}  // namespace
