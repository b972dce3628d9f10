// Command lines of the programs, run as child processes: malformed arguments
// give exit status 2 and a message that names the option, before anything is
// touched (so these run without root).
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>
#include <vector>

namespace {

struct Run {
  int code = -1;
  std::string output;  // stdout and stderr together
};

Run run(const std::string& command) {
  Run r;
  FILE* p = ::popen((command + " 2>&1").c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf{};
  while (std::fgets(buf.data(), static_cast<int>(buf.size()), p)) r.output += buf.data();
  const int status = ::pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

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
