// `tierswapctl bench` as a person runs it, without running a benchmark:
// usage errors, the refusal without --yes, rendering a recorded report.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "tests/unit/run_command.hpp"

namespace {

using CliRun = tierswap::test::Run;

CliRun run(const std::string& args) {
  return tierswap::test::run_command(std::string(TIERSWAPCTL) + " bench " + args);
}

std::filesystem::path temp_dir(const std::string& tag) {
  auto d = std::filesystem::temp_directory_path() /
           ("tierswap-bench-cli-" + tag + "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(d);
  return d;
}

TEST(BenchCli, UsageErrorsNameTheOption) {
  struct {
    const char* args;
    const char* says;
  } cases[] = {
      {"--memory lots", "--memory: \"lots\" is not a size"},
      {"--memory 1G --working-set 512M", "--working-set: \"512M\" must be a size above --memory"},
      {"--seconds 0", "--seconds: 0"},
      {"--raw-size 1x", "--raw-size: \"1x\""},
      {"--frob", "unknown option \"--frob\""},
      {"--report x.json zram", "--report renders a recorded run: it takes no GROUP"},
      {"--seconds", "--seconds needs a value"},
      {"no-such-group-or-file.yaml", "GROUP \"no-such-group-or-file.yaml\" is neither"},
  };
  const auto out = temp_dir("usage");
  for (const auto& c : cases) {
    const CliRun r = run("--output " + out.string() + " " + c.args);
    EXPECT_EQ(r.code, 2) << c.args << "\n" << r.output;
    EXPECT_NE(r.output.find(c.says), std::string::npos) << c.args << "\n" << r.output;
  }
  EXPECT_FALSE(std::filesystem::exists(out)) << "a usage error wrote " << out;
}

TEST(BenchCli, HelpSaysWhatItDoes) {
  const CliRun r = run("--help");
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.output.find("--yes"), std::string::npos);
  EXPECT_NE(r.output.find("Ctrl-C"), std::string::npos);
}

// A working set no machine has: refused, with what it would have done,
// before anything is applied (no swap area appears).
TEST(BenchCli, RefusesWithoutYesAndSaysWhatItWouldDo) {
  const auto out = temp_dir("refuse");
  const CliRun r = run("zram --memory 1T --working-set 64T --raw-seconds 0 --output " + out.string());
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("not run without --yes"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("pushed into swap"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("zram: tierswapd --config"), std::string::npos) << r.output;
  EXPECT_FALSE(std::filesystem::exists(out / "report.json"));
  std::filesystem::remove_all(out);
}

TEST(BenchCli, RendersARecordedReport) {
  const auto out = temp_dir("render");
  const std::string fixture = std::string(TIERSWAP_FIXTURES_DIR) + "/bench/report.json";
  CliRun r = run("--report " + fixture + " --output " + out.string());
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("| metric | value | vs "), std::string::npos) << r.output;
  for (const char* f :
       {"report.md", "report.json", "latency-cdf.svg", "latency-cdf.png", "psi.svg", "psi.png"})
    EXPECT_TRUE(std::filesystem::exists(out / f)) << f;
  r = run("--report " + fixture + " --json --output " + out.string());
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.output.rfind("{", 0), 0u) << r.output.substr(0, 200);
  EXPECT_NE(r.output.find("\"summary\""), std::string::npos);
  r = run("--report /nonexistent.json --output " + out.string());
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.output.find("/nonexistent.json"), std::string::npos);
  std::filesystem::remove_all(out);
}

}  // namespace
