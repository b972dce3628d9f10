// `tierswapctl simulate`: the actions of a recorded trace, one line each,
// the JSON form, --config's policy: keys, and errors that name the line.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "tests/unit/run_command.hpp"

namespace {

const std::string kTraces = std::string(TIERSWAP_SOURCE_DIR) + "/tests/fixtures/traces/";

tierswap::test::Run simulate(const std::string& args) {
  return tierswap::test::run_command(std::string(TIERSWAPCTL) + " simulate " + args);
}

class TempFile {
 public:
  TempFile(const std::string& name, const std::string& text)
      : path_(std::filesystem::temp_directory_path() / (name + "-" + std::to_string(getpid()))) {
    std::ofstream(path_) << text;
  }
  ~TempFile() { std::filesystem::remove(path_); }
  std::string path() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

TEST(Simulate, PrintsEachActionWithTimeRuleAndReason) {
  const auto r = simulate(kTraces + "contention.jsonl");
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(r.output,
            "00:02:10.000  vram  evacuate  foreign  other processes use 2560 MiB of VRAM, past 2048 MiB\n"
            "00:20:00.000  vram  promote  cooldown  every rule clear for 300 s (hysteresis 20%): free VRAM "
            "19968 MiB, others 512 MiB, io pressure 1.0%, on AC\n");
}

TEST(Simulate, Json) {
  const auto r = simulate(kTraces + "laptop-battery.jsonl --json");
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(r.output.substr(0, r.output.find('\n')),
            R"({"t_ms":600000,"time":"00:10:00.000","tier":"vram","action":"evacuate","rule":"on_battery",)"
            R"("why":"the machine runs on battery"})");
}

TEST(Simulate, ConfigPolicyKeysAndProfileApply) {
  const TempFile server("simulate-server.yaml", "profile: server\n");
  auto r = simulate(kTraces + "laptop-battery.jsonl --config " + server.path());
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(r.output, "");  // servers keep the tier on battery
  const TempFile quick("simulate-quick.yaml", "profile: desktop\npolicy:\n  cooldown_seconds: 60\n");
  r = simulate(kTraces + "laptop-battery.jsonl --config " + quick.path());
  EXPECT_NE(r.output.find("\n00:41:00.000  vram  promote  cooldown"), std::string::npos) << r.output;
}

TEST(Simulate, Errors) {
  const TempFile bad("simulate-bad.jsonl", "{\"t_ms\":0}\n{\"t_ms\":5,\"io\":{\"som\":1}}\n");
  auto r = simulate(bad.path());
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.output.find(bad.path() + ":2: io.som: unknown key"), std::string::npos) << r.output;
  const TempFile cfg("simulate-bad.yaml", "policy:\n  cooldown_seconds: -5\n");
  r = simulate(kTraces + "noisy.jsonl --config " + cfg.path());
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.output.find("policy.cooldown_seconds: -5 is out of range"), std::string::npos) << r.output;
  r = simulate("/nonexistent/trace.jsonl");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.output.find("/nonexistent/trace.jsonl: cannot read the trace"), std::string::npos) << r.output;
  r = simulate(kTraces);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.output.find("is a directory, not a trace"), std::string::npos) << r.output;
  EXPECT_EQ(simulate("").code, 2);
  EXPECT_EQ(simulate("a b").code, 2);
}

}  // namespace
