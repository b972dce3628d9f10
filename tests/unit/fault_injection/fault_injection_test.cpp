// Fault injection, as a property over every N: on a fake machine (a fixture
// tree and the recording kernel), an apply whose step N fails, or whose
// kernel call N fails with EBUSY, EIO, ENOSPC or EPERM, leaves every file of
// the machine as it was before and a journal that owns nothing more than
// before. Checked for the whole apply at start and for a reload from one
// config to another, for every N the clean run has.
#include "tests/support/fault_injection.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include "backends/swap/kernel.hpp"
#include "daemon/engine.hpp"
#include "daemon/journal.hpp"
#include "fake_root.hpp"
#include "tests/support/recording_kernel.hpp"

using namespace tierswap;
namespace fs = std::filesystem;

namespace {

// The recording kernel playing the fake machine, with kernel call number
// `fail_at` (1-based, counted over all calls) failing with `code` once.
class FaultKernel final : public swap::Kernel {
 public:
  FaultKernel(const std::string& root, int fail_at, int code)
      : fs_(root), rec_(&fs_), fail_at_(fail_at), code_(code) {}
  Result<void> swapon(const std::string& p, int prio, bool d) override {
    if (auto r = fault("swapon " + p); !r) return r;
    return rec_.swapon(p, prio, d);
  }
  Result<void> swapoff(const std::string& p) override {
    if (auto r = fault("swapoff " + p); !r) return r;
    return rec_.swapoff(p);
  }
  Result<std::string> zram_hot_add() override {
    if (auto r = fault("zram_hot_add"); !r) return std::unexpected(r.error());
    return rec_.zram_hot_add();
  }
  Result<void> zram_hot_remove(const std::string& d) override {
    if (auto r = fault("zram_hot_remove " + d); !r) return r;
    return rec_.zram_hot_remove(d);
  }
  [[nodiscard]] int count() const { return n_; }
  [[nodiscard]] const std::vector<std::string>& calls() const { return calls_; }
  [[nodiscard]] bool fired() const { return fired_; }
  // The next call whose description starts with `prefix` fails with `code`.
  void fail_next(std::string prefix, int code) {
    fail_prefix_ = std::move(prefix);
    code_ = code;
  }

 private:
  Result<void> fault(const std::string& what) {
    calls_.push_back(what);
    if (!fail_prefix_.empty() && what.starts_with(fail_prefix_)) {
      fail_prefix_.clear();
      fired_ = true;
      return fail(code_, what + ": injected " + std::strerror(code_));
    }
    if (++n_ != fail_at_) return {};
    fired_ = true;
    return fail(code_, what + ": injected " + std::strerror(code_));
  }
  HostFs fs_;
  swap::RecordingKernel rec_;
  int fail_at_, n_ = 0, code_;
  bool fired_ = false;
  std::string fail_prefix_;
  std::vector<std::string> calls_;
};

struct Run {
  std::unique_ptr<Engine> engine;
  FaultKernel* kernel = nullptr;
  std::vector<std::string> log;
};

Run make_engine(const test::TempRoot& root, int fail_step, int fail_call = 0, int code = EIO) {
  Run r;
  auto k = std::make_unique<FaultKernel>(root.str(), fail_call, code);
  r.kernel = k.get();
  EngineOptions eo;
  eo.root = root.str();
  eo.config = (root.path() / "etc/tierswap.yaml").string();
  eo.before_step = test::fail_step(fail_step);
  auto* log = &r.log;
  eo.info = [log](const std::string& l) { log->push_back(l); };
  eo.warn = [log](const std::string& l) { log->push_back("warn: " + l); };
  r.engine = std::make_unique<Engine>(eo, std::move(k));
  return r;
}

// Files of the machine, path -> content ("<dir>" for directories); the
// journal is compared by what it owns (below), since rewriting it may
// change its spacing. A file over 64 KiB (a swap file) is its size and its
// first 64 KiB, which hold the swap header: reading 64 MiB per snapshot
// would make the property slow for nothing.
std::map<std::string, std::string> machine(const test::TempRoot& root) {
  std::map<std::string, std::string> m;
  for (const auto& e : fs::recursive_directory_iterator(root.path())) {
    const auto rel = fs::relative(e.path(), root.path()).string();
    if (rel == "run" || rel.starts_with("run/tierswap")) continue;
    if (e.is_directory()) {
      m[rel] = "<dir>";
      continue;
    }
    std::ifstream in(e.path(), std::ios::binary);
    std::string head(64 << 10, '\0');
    in.read(head.data(), static_cast<std::streamsize>(head.size()));
    head.resize(static_cast<size_t>(in.gcount()));
    const auto size = e.is_regular_file() ? e.file_size() : 0;
    // Trailing white space is not compared: sysfs prints "60\n" where
    // tierswap writes "60".
    while (!head.empty() && (head.back() == '\n' || head.back() == ' ')) head.pop_back();
    m[rel] = size > head.size() + 1 ? "<" + std::to_string(size) + " bytes> " + head : head;
  }
  return m;
}

// What the journal on disk owns, as comparable text.
std::string owned(const test::TempRoot& root) {
  auto j = load_journal(HostFs(root.str()));
  if (!j) return "unreadable journal: " + j.error().describe();
  std::string out;
  for (const auto& t : j->tiers)
    out += "tier " + t.name + " " + t.kind + " " + t.device + " " + t.swap_path +
           " active=" + std::to_string(t.active) + " prio=" + std::to_string(t.priority) + "\n";
  for (const auto& v : j->values) out += "value " + v.path + " " + v.original + " -> " + v.current + "\n";
  return out;
}

// The files that differ between two machines, one line each ("" when none),
// so that a failure shows what changed, not two whole trees.
std::string diff(const std::map<std::string, std::string>& want,
                 const std::map<std::string, std::string>& got) {
  const auto cut = [](const std::string& v) { return v.size() > 60 ? v.substr(0, 60) + "..." : v; };
  std::string out;
  for (const auto& [k, v] : want) {
    auto it = got.find(k);
    if (it == got.end())
      out += "gone: " + k + "\n";
    else if (it->second != v)
      out += "changed: " + k + ": \"" + cut(v) + "\" -> \"" + cut(it->second) + "\"\n";
  }
  for (const auto& [k, v] : got)
    if (!want.contains(k)) out += "new: " + k + "\n";
  return out;
}

std::string joined(const std::vector<std::string>& lines) {
  std::string s;
  for (const auto& l : lines) s += "  " + l + "\n";
  return s;
}

// Steps an apply logged ("step 3 of 7: ...").
int steps_applied(const std::vector<std::string>& log) {
  int n = 0;
  for (const auto& l : log)
    if (l.starts_with("step ") && l.find(": injected") == std::string::npos &&
        l.find("injected fault") == std::string::npos)
      ++n;
  return n;
}

// Fresh applies: every step of their plans can be undone.
const char* const kFixtures[] = {"01-desktop-default", "02-zram-file-zswap", "03-round-robin"};

// What the journal names and the fake machine disagree on ("" when they
// agree): an active tier whose area is not in /proc/swaps, a created zram
// device that is gone, a value whose file does not hold it.
std::string journal_vs_machine(const test::TempRoot& root) {
  const HostFs hfs(root.str());
  auto j = load_journal(hfs);
  if (!j) return "unreadable journal: " + j.error().describe();
  const std::string swaps = test::slurp(root.path() / "proc/swaps");
  std::string out;
  for (const auto& t : j->tiers) {
    if (t.active && swaps.find(t.swap_path + "\t") == std::string::npos)
      out += "tier " + t.name + ": active in the journal, not in /proc/swaps\n";
    if (t.created_device && !fs::exists(root.path() / "sys/block" / t.device))
      out += "tier " + t.name + ": device " + t.device + " is gone\n";
  }
  for (const auto& v : j->values) {
    std::string now = test::slurp(root.path() / v.path.substr(1));
    while (!now.empty() && (now.back() == '\n' || now.back() == ' ')) now.pop_back();
    if (now != v.current)
      out += "value " + v.path + ": journal says " + v.current + ", file holds " + now + "\n";
  }
  return out;
}
const int kCodes[] = {EBUSY, EIO, ENOSPC, EPERM};

}  // namespace

// Every step of the start-up apply fails in turn (tierswapd-test
// --test-fail-step N): start() fails naming the step, and the machine and
// the journal are as before.
TEST(FaultInjection, StartFailingAtEveryStepLeavesTheMachineAsItWas) {
  int cases = 0;
  for (const char* fixture : kFixtures) {
    SCOPED_TRACE(fixture);
    int total = 0;
    {
      test::TempRoot root(fixture);
      auto clean = make_engine(root, 0);
      ASSERT_TRUE(clean.engine->start()) << joined(clean.log);
      total = steps_applied(clean.log);
    }
    ASSERT_GT(total, 0) << "the fixture's config applies nothing: the property would hold vacuously";
    for (int n = 1; n <= total; ++n) {
      SCOPED_TRACE("step " + std::to_string(n) + " of " + std::to_string(total));
      test::TempRoot root(fixture);
      const auto before = machine(root);
      const auto owned_before = owned(root);
      auto run = make_engine(root, n);
      auto r = run.engine->start();
      ASSERT_FALSE(r) << "step " << n << " was to fail\n" << joined(run.log);
      EXPECT_NE(r.error().message.find("injected fault"), std::string::npos) << r.error().message;
      EXPECT_EQ(r.error().message.find("undo of"), std::string::npos)
          << "an undo failed: " << r.error().message;
      EXPECT_EQ(diff(before, machine(root)), "") << joined(run.log);
      EXPECT_EQ(owned(root), owned_before) << joined(run.log);
      ++cases;
    }
  }
  RecordProperty("cases", cases);
}

// Every kernel call of the start-up apply (zram hot-add, swapon, ...) fails
// in turn with EBUSY, EIO, ENOSPC and EPERM: the error carries the kernel's
// errno, and the machine and the journal are as before.
TEST(FaultInjection, StartWithEveryKernelCallFailingLeavesTheMachineAsItWas) {
  int cases = 0;
  for (const char* fixture : kFixtures) {
    SCOPED_TRACE(fixture);
    int calls = 0;
    {
      test::TempRoot root(fixture);
      auto clean = make_engine(root, 0);
      ASSERT_TRUE(clean.engine->start()) << joined(clean.log);
      calls = clean.kernel->count();
    }
    for (int m = 1; m <= calls; ++m)
      for (int code : kCodes) {
        SCOPED_TRACE("kernel call " + std::to_string(m) + " of " + std::to_string(calls) + " fails with " +
                     std::strerror(code));
        test::TempRoot root(fixture);
        const auto before = machine(root);
        const auto owned_before = owned(root);
        auto run = make_engine(root, 0, m, code);
        auto r = run.engine->start();
        ASSERT_TRUE(run.kernel->fired());
        ASSERT_FALSE(r) << joined(run.log);
        EXPECT_EQ(r.error().code, code) << r.error().message;
        EXPECT_EQ(r.error().message.find("undo of"), std::string::npos) << r.error().message;
        EXPECT_EQ(diff(before, machine(root)), "") << joined(run.log);
        EXPECT_EQ(owned(root), owned_before) << joined(run.log);
        ++cases;
      }
  }
  RecordProperty("cases", cases);
}

// Adopting and dropping (fixture 04: the journal names a tier the config
// dropped): removing a zram device cannot be undone, so a step failing
// after it cannot bring the machine back; what must hold is that the
// journal then names exactly what is still set up, for every N.
TEST(FaultInjection, AdoptAndDropFailingAtEveryStepKeepsTheJournalTrue) {
  int total = 0;
  {
    test::TempRoot root("04-adopt-and-drop");
    auto clean = make_engine(root, 0);
    ASSERT_TRUE(clean.engine->start()) << joined(clean.log);
    total = steps_applied(clean.log);
  }
  ASSERT_GT(total, 0);
  for (int n = 1; n <= total; ++n) {
    SCOPED_TRACE("step " + std::to_string(n) + " of " + std::to_string(total));
    test::TempRoot root("04-adopt-and-drop");
    auto run = make_engine(root, n);
    ASSERT_FALSE(run.engine->start());
    EXPECT_EQ(journal_vs_machine(root), "") << joined(run.log);
  }
  for (int m = 1; m <= 2; ++m)
    for (int code : kCodes) {
      SCOPED_TRACE("kernel call " + std::to_string(m) + " fails with " + std::strerror(code));
      test::TempRoot root("04-adopt-and-drop");
      auto run = make_engine(root, 0, m, code);
      ASSERT_FALSE(run.engine->start());
      EXPECT_EQ(journal_vs_machine(root), "") << joined(run.log);
    }
}

namespace {
// From 02's config to one that drops the file tier, adds a zram tier,
// changes a sysctl and zswap's pool.
const char* const kReloadedConfig = R"(tiers:
  - name: fast
    kind: zram
    size: 1G
    algorithm: lz4
    mem_limit: 512M
    priority: 100
    discard: true
  - name: second
    kind: zram
    size: 256M
    algorithm: lzo
    priority: 60
zswap:
  enabled: true
  compressor: lzo
  max_pool_percent: 30
sysctl:
  vm.swappiness: 120
  vm.page-cluster: 1
)";

// A root where 02's config has been applied (its journal on disk), with the
// config then replaced by kReloadedConfig.
void applied_then_edited(const test::TempRoot& root) {
  auto first = make_engine(root, 0);
  ASSERT_TRUE(first.engine->start()) << joined(first.log);
  test::spit(root.path() / "etc/tierswap.yaml", kReloadedConfig);
}
}  // namespace

// Every step of a reload fails in turn: the reload fails and the machine
// and the journal are as the previous config left them.
TEST(FaultInjection, ReloadFailingAtEveryStepKeepsThePreviousConfigApplied) {
  int total = 0;
  {
    test::TempRoot root("02-zram-file-zswap");
    applied_then_edited(root);
    auto clean = make_engine(root, 0);
    ASSERT_TRUE(clean.engine->start()) << joined(clean.log);  // start applies the edited config
    total = steps_applied(clean.log);
  }
  ASSERT_GT(total, 3);
  int cases = 0;
  for (int n = 1; n <= total; ++n) {
    SCOPED_TRACE("reload step " + std::to_string(n) + " of " + std::to_string(total));
    test::TempRoot root("02-zram-file-zswap");
    auto first = make_engine(root, 0);
    ASSERT_TRUE(first.engine->start()) << joined(first.log);
    const auto before = machine(root);
    const auto owned_before = owned(root);
    ASSERT_NE(owned_before, "");
    // A second daemon with the fault armed adopts what the first applied
    // (nothing to do at start), then reloads the edited config.
    auto run = make_engine(root, n);
    ASSERT_TRUE(run.engine->start()) << joined(run.log);
    ASSERT_EQ(steps_applied(run.log), 0) << joined(run.log);
    EXPECT_EQ(diff(before, machine(root)), "");
    test::spit(root.path() / "etc/tierswap.yaml", kReloadedConfig);
    auto after_edit = machine(root);
    auto r = run.engine->reload();
    ASSERT_FALSE(r) << joined(run.log);
    EXPECT_NE(r.error().message.find("injected fault"), std::string::npos) << r.error().message;
    EXPECT_EQ(r.error().message.find("undo of"), std::string::npos) << r.error().message;
    EXPECT_EQ(diff(after_edit, machine(root)), "") << joined(run.log);
    EXPECT_EQ(owned(root), owned_before) << joined(run.log);
    ++cases;
  }
  RecordProperty("cases", cases);
}

// An undo that fails is reported in the error, naming the step it could not
// undo and why, not dropped: the last step fails, and so does the first
// kernel call of the rollback (a swapoff or a zram hot-remove) with EBUSY.
TEST(FaultInjection, AFailedUndoIsReported) {
  int total = 0;
  {
    test::TempRoot root("01-desktop-default");
    auto clean = make_engine(root, 0);
    ASSERT_TRUE(clean.engine->start());
    total = steps_applied(clean.log);
  }
  int undo_call = 0;
  std::string undo_what;
  {
    test::TempRoot root("01-desktop-default");
    auto failing = make_engine(root, total);
    ASSERT_FALSE(failing.engine->start());
    const auto& calls = failing.kernel->calls();
    for (size_t i = 0; i < calls.size() && !undo_call; ++i)
      if (calls[i].starts_with("swapoff") || calls[i].starts_with("zram_hot_remove")) {
        undo_call = static_cast<int>(i) + 1;
        undo_what = calls[i];
      }
  }
  ASSERT_GT(undo_call, 0) << "the rollback made no kernel call";
  test::TempRoot root("01-desktop-default");
  auto run = make_engine(root, total, undo_call, EBUSY);
  auto r = run.engine->start();
  ASSERT_FALSE(r);
  ASSERT_TRUE(run.kernel->fired()) << joined(run.log);
  EXPECT_NE(r.error().message.find("undo of"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find(undo_what + ": injected " + std::strerror(EBUSY)), std::string::npos)
      << r.error().message;
  // What could not be undone stays in the journal, so that a later start
  // or stop still knows it owns the device.
  EXPECT_NE(owned(root).find("tier "), std::string::npos) << r.error().message << "\n" << joined(run.log);
}

// A crash (kill -9, the OOM killer) at every journal save of a start-up
// apply, right before the save or right after it, then a restart and a
// stop. The apply runs in a child process whose renameat() (the journal's
// atomic replace ends with it; this binary's own definition below) kills
// the process with SIGKILL at that point, as tierswapd-test's seam stops the
// real daemon there. The restart must reconcile to the config applied once
// (no second zram device or swap area: the journal names each step as
// pending before its kernel change, and recover_pending() tells from the
// kernel what became of it), and its stop must leave the machine as it
// began.
namespace {
int g_crash_at = 0;
bool g_crash_before = false;
int g_saves = 0;
}  // namespace

extern "C" int renameat(int olddirfd, const char* oldpath, int newdirfd, const char* newpath) {
  const bool crash = g_crash_at != 0 && std::string_view(newpath) == "state.json" && ++g_saves == g_crash_at;
  if (crash && g_crash_before) ::raise(SIGKILL);
  const int r = static_cast<int>(::syscall(SYS_renameat, olddirfd, oldpath, newdirfd, newpath));
  if (crash) ::raise(SIGKILL);
  return r;
}

namespace {
// zram<N> of devices that were not in `before` become zram#, in paths and
// contents; paths that then collide keep all their contents, sorted; swap
// headers are compared by size.
std::map<std::string, std::string> without_new_zram_numbers(
    const std::map<std::string, std::string>& m, const std::map<std::string, std::string>& before) {
  const std::regex dev("zram([0-9]+)");
  const auto norm = [&](const std::string& s) {
    std::string out;
    size_t last = 0;
    for (auto it = std::sregex_iterator(s.begin(), s.end(), dev); it != std::sregex_iterator(); ++it) {
      out += s.substr(last, static_cast<size_t>(it->position()) - last);
      const std::string name = it->str();
      out += before.contains("sys/block/" + name) ? name : "zram#";
      last = static_cast<size_t>(it->position() + it->length());
    }
    return out + s.substr(last);
  };
  // A swap header carries a fresh UUID each time it is written: compared by
  // the area's size only.
  const auto header = [](const std::string& v) {
    if (v.find("SWAPSPACE2") == std::string::npos) return v;
    return "<swap area" + (v.starts_with("<") ? " " + v.substr(0, v.find('>') + 1) : std::string()) + ">";
  };
  std::map<std::string, std::vector<std::string>> grouped;
  for (const auto& [k, v] : m) grouped[norm(k)].push_back(header(norm(v)));
  std::map<std::string, std::string> out;
  for (auto& [k, vs] : grouped) {
    std::sort(vs.begin(), vs.end());
    for (const auto& v : vs) out[k] += v + "|";
  }
  return out;
}

// Runs a start-up apply in a child that dies at save `n` (before or right
// after it): true when it died there, false when the apply ended first.
bool crash_at_save(const test::TempRoot& root, int n, bool before) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    g_saves = 0;
    g_crash_before = before;
    g_crash_at = n;
    auto run = make_engine(root, 0);
    ::_exit(run.engine->start() ? 0 : 1);
  }
  int st = 0;
  ::waitpid(pid, &st, 0);
  return WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL;
}
}  // namespace

TEST(FaultInjection, CrashAtEveryJournalSaveThenRestartReconcilesAndStopRestores) {
  int cases = 0;
  for (const char* fixture : kFixtures) {
    SCOPED_TRACE(fixture);
    std::map<std::string, std::string> before, applied;
    {
      test::TempRoot root(fixture);
      before = machine(root);
      auto clean = make_engine(root, 0);
      ASSERT_TRUE(clean.engine->start()) << joined(clean.log);
      applied = without_new_zram_numbers(machine(root), before);
    }
    for (const bool crash_before : {false, true}) {
      int n = 1;
      for (; n <= 200; ++n) {
        SCOPED_TRACE(std::string(crash_before ? "crash right before" : "crash right after") + " save " +
                     std::to_string(n));
        test::TempRoot root(fixture);
        if (!crash_at_save(root, n, crash_before)) break;
        auto restart = make_engine(root, 0);
        ASSERT_TRUE(restart.engine->start()) << joined(restart.log);
        EXPECT_EQ(diff(applied, without_new_zram_numbers(machine(root), before)), "")
            << "the restart did not reconcile to the config applied once\n"
            << joined(restart.log);
        EXPECT_EQ(journal_vs_machine(root), "") << joined(restart.log);
        ASSERT_TRUE(restart.engine->stop()) << joined(restart.log);
        EXPECT_EQ(diff(before, machine(root)), "") << joined(restart.log);
        EXPECT_FALSE(fs::exists(root.path() / "run/tierswap/state.json")) << joined(restart.log);
        if (HasFailure()) return;
        ++cases;
      }
      EXPECT_GT(n, 3) << "the apply saved the journal at most twice";
      EXPECT_LE(n, 200) << "more than 200 saves";
    }
  }
  RecordProperty("cases", cases);
}

// A zram removal that fails halfway (reset done, hot_remove refused): stop
// reports what remains, the journal keeps naming the device, and the next
// start and stop remove it; the machine then ends as it began.
TEST(FaultInjection, ZramRemovalFailingAfterItsResetIsReportedAndFinishedByTheNextRun) {
  test::TempRoot root("01-desktop-default");
  const auto before = machine(root);
  std::string device;
  {
    auto run = make_engine(root, 0);
    ASSERT_TRUE(run.engine->start()) << joined(run.log);
    auto j = load_journal(HostFs(root.str()));
    ASSERT_TRUE(j);
    for (const auto& t : j->tiers)
      if (t.created_device) device = t.device;
    ASSERT_FALSE(device.empty()) << "fixture 01 was to create a zram device";
    run.kernel->fail_next("zram_hot_remove", EBUSY);
    auto r = run.engine->stop();
    ASSERT_FALSE(r) << joined(run.log);
    ASSERT_TRUE(run.kernel->fired());
    EXPECT_NE(
        r.error().message.find(device + " is reset (empty, its memory freed) but not removed: it stays"),
        std::string::npos)
        << r.error().message;
    EXPECT_TRUE(fs::exists(root.path() / "sys/block" / device));
    EXPECT_EQ(test::slurp(root.path() / "sys/block" / device / "reset"), "1");
    EXPECT_NE(owned(root).find(" " + device + " "), std::string::npos) << owned(root);
  }
  auto next = make_engine(root, 0);
  ASSERT_TRUE(next.engine->start()) << joined(next.log);
  ASSERT_TRUE(next.engine->stop()) << joined(next.log);
  EXPECT_EQ(diff(before, machine(root)), "") << joined(next.log);
  EXPECT_FALSE(fs::exists(root.path() / "run/tierswap/state.json"));
}
