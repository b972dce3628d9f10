// tierswapctl as a person runs it: exit status and what it prints. No
// daemon: `plan` runs locally against tests/fixtures/01-desktop-default.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "tests/unit/run_command.hpp"

namespace {

using tierswap::test::Run;

Run run(const std::string& args) {
  return tierswap::test::run_command(std::string(TIERSWAPCTL) + " " + args);
}

struct Case {
  const char* args;
  const char* says;
};

// Every usage error: exit 2 and a message that names the option or argument.
TEST(Usage, ErrorsAreExit2AndNameTheOption) {
  const Case cases[] = {
      {"status --jsno", "tierswapctl status: unknown option \"--jsno\""},
      {"doctor --root", "tierswapctl doctor: --root needs a value"},
      {"plan x.yaml --root", "tierswapctl plan: --root needs a value"},
      {"watch -n", "tierswapctl watch: --interval needs a value"},
      {"watch --count", "tierswapctl watch: --count needs a value"},
      {"watch --count -3", "--count \"-3\" is not a whole number >= 1"},
      {"watch --count 2x", "--count \"2x\" is not a whole number >= 1"},
      {"top --interval abc", "--interval \"abc\" is not a number of seconds"},
      {"demote", "tierswapctl demote: expected one TIER"},
      {"promote a b", "tierswapctl promote: expected one TIER, got more"},
      {"reload now", "tierswapctl reload: unexpected argument \"now\""},
      {"completion fish", "\"fish\" is not bash, zsh or tiers"},
      {"--frob", "tierswapctl: unknown option \"--frob\""},
      {"frob", "tierswapctl: unknown command \"frob\""},
  };
  for (const auto& c : cases) {
    const auto r = run(c.args);
    EXPECT_EQ(r.code, 2) << c.args << ": " << r.output;
    EXPECT_NE(r.output.find(c.says), std::string::npos) << c.args << ": " << r.output;
  }
}

TEST(Usage, EachCommandHasHelp) {
  for (const char* cmd :
       {"status", "watch", "top", "demote", "promote", "reload", "doctor", "check", "plan", "completion"}) {
    const auto r = run(std::string(cmd) + " --help");
    EXPECT_EQ(r.code, 0) << cmd << ": " << r.output;
    EXPECT_EQ(r.output.rfind("Usage: tierswapctl ", 0), 0u) << cmd << ": " << r.output;
  }
  const auto r = run("--help");
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.output.find("Commands:"), std::string::npos) << r.output;
}

TEST(Usage, Version) {
  const auto r = run("--version");
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.output.rfind("tierswapctl ", 0), 0u) << r.output;
}

class PlanProfile : public ::testing::Test {
 protected:
  void SetUp() override {
    file_ =
        std::filesystem::temp_directory_path() / ("tierswapctl-plan-" + std::to_string(getpid()) + ".yaml");
  }
  void TearDown() override { std::filesystem::remove(file_); }
  std::string plan(const std::string& yaml, const std::string& extra = {}) {
    std::ofstream(file_) << yaml;
    auto r =
        run("plan " + file_.string() + " --root " + TIERSWAP_FIXTURES_DIR + "/01-desktop-default " + extra);
    EXPECT_EQ(r.code, 0) << r.output;
    return r.output;
  }
  std::filesystem::path file_;
};

TEST_F(PlanProfile, TextListsWhatTheProfileSupplies) {
  const auto out = plan("profile: desktop\nsysctl:\n  vm.swappiness: 100\n");
  const auto at = out.find("\nfrom profile desktop (not set in the file):\n");
  ASSERT_NE(at, std::string::npos) << out;
  const std::string tail = out.substr(at);
  EXPECT_NE(tail.find("  sysctl.vm.page-cluster = 0\n"), std::string::npos) << out;
  EXPECT_NE(tail.find("  tiers[0] = zram (zram, min(ram / 2, 8G), priority 100)\n"), std::string::npos)
      << out;
  // The file sets swappiness itself: not the profile's.
  EXPECT_EQ(tail.find("vm.swappiness"), std::string::npos) << out;
}

TEST_F(PlanProfile, FileTiersAreNotTheProfiles) {
  const auto out = plan("profile: desktop\ntiers:\n  - { name: fast, kind: zram, size: 1G }\n");
  EXPECT_NE(out.find("from profile desktop"), std::string::npos) << out;
  EXPECT_EQ(out.find("tiers[0] ="), std::string::npos) << out;
  // One zram device: the file's, not the profile's as well.
  EXPECT_NE(out.find("[fast] zram hot_add"), std::string::npos) << out;
  EXPECT_EQ(out.find("[zram] zram hot_add"), std::string::npos) << out;
}

TEST_F(PlanProfile, JsonHasAProfileObject) {
  const auto out = plan("profile: desktop\n", "--json");
  EXPECT_NE(out.find("\"profile\": {\n    \"name\": \"desktop\",\n    \"settings\": ["), std::string::npos)
      << out;
  EXPECT_NE(out.find("\"key\": \"sysctl.vm.swappiness\",\n        \"value\": \"150\""), std::string::npos)
      << out;
  EXPECT_TRUE(out.ends_with("    ]\n  }\n}\n")) << out;
}

TEST_F(PlanProfile, NoProfileSaysNothingInTextAndNoneInJson) {
  EXPECT_EQ(plan("sysctl:\n  vm.swappiness: 100\n").find("from profile"), std::string::npos);
  EXPECT_NE(plan("sysctl:\n  vm.swappiness: 100\n", "--json").find("\"name\": \"none\""), std::string::npos);
}

}  // namespace
