// Golden plans: every tests/fixtures/NN-name/ is a fake machine with its
// config in etc/tierswap.yaml; the plan for it is compared with
// expected-plan.txt and expected-plan.json beside it.
// TIERSWAP_REGENERATE=1 rewrites the expected files instead of comparing.
#include <gtest/gtest.h>

#include <regex>
#include <sstream>

#include "backends/hostfs/paths.hpp"
#include "config/loader.hpp"
#include "daemon/apply.hpp"
#include "daemon/plan_ops.hpp"
#include "daemon/planner.hpp"
#include "fake_root.hpp"
#include "tests/support/fault_injection.hpp"
#include "tests/support/recording_kernel.hpp"

using namespace tierswap;
namespace fs = std::filesystem;

namespace {

std::vector<std::string> fixture_names() {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(test::fixtures_dir()))
    if (e.is_directory() && std::regex_match(e.path().filename().string(), std::regex("[0-9][0-9]-.*")))
      out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

struct Planned {
  PlanResult result;
  std::string diagnostics;
};

Planned plan_root(const std::string& root) {
  const HostFs hfs(root);
  auto obs = observe(hfs);
  EXPECT_TRUE(obs) << obs.error().describe();
  auto lr = config::load_string(test::slurp(fs::path(root) / "etc/tierswap.yaml"), "/etc/tierswap.yaml",
                                config::HostFacts{.ram_bytes = obs->ram_bytes});
  Planned p;
  for (const auto& d : lr.diagnostics) p.diagnostics += config::format_diagnostic(d) + "\n";
  EXPECT_TRUE(lr.ok()) << p.diagnostics;
  if (!lr.ok()) return p;
  auto j = load_journal(hfs);
  EXPECT_TRUE(j) << j.error().describe();
  p.result = make_plan(*lr.spec, *obs, *j, hfs);
  for (const auto& d : p.result.diagnostics) p.diagnostics += config::format_diagnostic(d) + "\n";
  return p;
}

class Golden : public ::testing::TestWithParam<std::string> {};

TEST_P(Golden, PlanMatchesExpected) {
  const auto dir = test::fixtures_dir() / GetParam();
  const auto p = plan_root(dir.string());
  const std::string text = p.diagnostics + plan_to_text(p.result.plan);
  const std::string json = plan_to_json(p.result.plan);
  if (std::getenv("TIERSWAP_REGENERATE")) {
    test::spit(dir / "expected-plan.txt", text);
    test::spit(dir / "expected-plan.json", json);
    GTEST_SKIP() << "regenerated " << dir;
  }
  EXPECT_EQ(text, test::slurp(dir / "expected-plan.txt")) << "(TIERSWAP_REGENERATE=1 rewrites it)";
  EXPECT_EQ(json, test::slurp(dir / "expected-plan.json"));
}

// The fake machine as it was before tierswap touched it: `snapshot` without
// the zram devices, swap files and swap areas the journal names as
// tierswap's, and with the values it changed back to their originals.
std::map<std::string, std::string> before_tierswap(std::map<std::string, std::string> snapshot,
                                                   const Journal& j) {
  const auto erase_tree = [&](const std::string& rel) {
    std::erase_if(snapshot,
                  [&](const auto& kv) { return kv.first == rel || kv.first.starts_with(rel + "/"); });
  };
  std::string swaps = snapshot["proc/swaps"];
  for (const auto& t : j.tiers) {
    if (t.created_device) {
      erase_tree(paths::block_attr(t.device).substr(1));
      erase_tree(paths::dev_node(t.device).substr(1));
    }
    if (t.created_file) erase_tree(t.swap_path.substr(1));
    std::istringstream in(swaps);
    std::string line, kept;
    while (std::getline(in, line))
      if (!line.starts_with(t.swap_path + "\t") && !line.starts_with(t.swap_path + " ")) kept += line + "\n";
    while (!kept.empty() && kept.back() == '\n') kept.pop_back();
    swaps = kept;
  }
  snapshot["proc/swaps"] = swaps;
  for (const auto& v : j.values) snapshot[v.path.substr(1)] = v.original;
  return snapshot;
}

}  // namespace

// Applying the plan (fake kernel on a copy of the fixture) and planning again
// gives an empty plan; tearing down then leaves the machine as it was before
// tierswap (for a fixture that starts with a journal: as that journal says).
TEST_P(Golden, PlanningTwiceIsEmptyAndTeardownRestores) {
  test::TempRoot root(GetParam());
  const HostFs hfs(root.str());
  const auto started = load_journal(hfs);
  ASSERT_TRUE(started);
  auto before = before_tierswap(root.snapshot(), *started);
  swap::RecordingKernel kernel(&hfs);
  auto first = plan_root(root.str());
  ASSERT_TRUE(first.result.ok()) << first.diagnostics;
  auto journal = load_journal(hfs);
  ASSERT_TRUE(journal);
  Executor ex(hfs, kernel, *journal);
  auto r = ex.apply(first.result.plan);
  ASSERT_TRUE(r) << r.error().message;
  auto second = plan_root(root.str());
  EXPECT_TRUE(second.result.plan.empty()) << plan_to_text(second.result.plan);

  auto obs = observe(hfs);
  ASSERT_TRUE(obs);
  auto j2 = load_journal(hfs);
  ASSERT_TRUE(j2);
  Executor ex2(hfs, kernel, *j2);
  ASSERT_TRUE(ex2.apply(make_teardown(*j2, *obs)));
  auto after = root.snapshot();
  for (auto* m : {&before, &after})
    for (const char* rel : {"run/tierswap/state.json", "run/tierswap", "run"}) m->erase(rel);
  EXPECT_EQ(before, after);
}

// A fault at step N, for every N, leaves the fake machine and the journal as
// they were.
TEST_P(Golden, FaultAtEveryStepRollsBack) {
  const auto base = plan_root((test::fixtures_dir() / GetParam()).string());
  // Steps after the first irreversible one (teardown, planned last) cannot
  // be rolled back; faults up to and including it must leave no trace.
  size_t n = 0;
  for (const auto& s : base.result.plan.steps) {
    ++n;
    if (!reversible(s)) break;
  }
  for (size_t fail = 1; fail <= n; ++fail) {
    SCOPED_TRACE("fault at step " + std::to_string(fail));
    test::TempRoot root(GetParam());
    const HostFs hfs(root.str());
    auto journal = load_journal(hfs);
    ASSERT_TRUE(journal);
    const std::string journal_before = to_json(*journal);
    auto before = root.snapshot();
    before.erase("run/tierswap/state.json");
    swap::RecordingKernel kernel(&hfs);
    auto p = plan_root(root.str());
    Executor ex(hfs, kernel, *journal);
    auto r = ex.apply(p.result.plan, ApplyOptions{.before_step = test::fail_step(static_cast<int>(fail))});
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find("step " + std::to_string(fail) + " of"), std::string::npos)
        << r.error().message;
    auto after = root.snapshot();
    after.erase("run/tierswap/state.json");
    if (!before.contains("run")) {
      after.erase("run/tierswap");
      after.erase("run");
    }
    EXPECT_EQ(before, after);
    auto j_after = load_journal(hfs);
    ASSERT_TRUE(j_after);
    EXPECT_EQ(to_json(*j_after), journal_before);
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, Golden, ::testing::ValuesIn(fixture_names()), [](const auto& info) {
  std::string n = info.param;
  for (auto& c : n)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return n;
});
