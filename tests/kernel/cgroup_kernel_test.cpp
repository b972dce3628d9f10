// Real kernel, cgroup v2: the engine applies memory.high, memory.max and
// memory.swap.max to a scratch cgroup, the kernel's files say so, teardown
// puts back what was there, and every refusal names the real file.
//
// The engine runs on a root of its own: a temporary directory with this
// machine's cgroup v2 hierarchy mounted at sys/fs/cgroup (a second mount of
// the same hierarchy, so the files are the kernel's) and copies of
// /proc/meminfo and /proc/swaps; nothing else of the machine is touched.
// The scratch cgroup has a unique name; it is removed, the mount undone and
// the directory deleted on every exit path. Tests skip with the reason when
// not root, when the kernel has no cgroup2, or when the memory controller is
// not available in cgroup v2 here (a hybrid host where cgroup v1 holds it).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "daemon/engine.hpp"
#include "daemon/plan_file.hpp"

using namespace tierswap;
using ::testing::HasSubstr;
namespace fs = std::filesystem;

namespace {

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

bool has_word(const std::string& list, const std::string& w) {
  std::istringstream in(list);
  std::string x;
  while (in >> x)
    if (x == w) return true;
  return false;
}

// The temporary root with cgroup2 mounted in it and one scratch cgroup.
class ScratchCgroup {
 public:
  ScratchCgroup() {
    if (::geteuid() != 0) {
      skip_ = "needs root";
      return;
    }
    if (slurp("/proc/filesystems").find("cgroup2") == std::string::npos) {
      skip_ = "this kernel has no cgroup2 filesystem";
      return;
    }
    char tmpl[] = "/tmp/tierswap-cgk-XXXXXX";
    if (!::mkdtemp(tmpl)) {
      skip_ = "mkdtemp failed";
      return;
    }
    root_ = tmpl;
    fs::create_directories(root_ / "sys/fs/cgroup");
    fs::create_directories(root_ / "proc");
    fs::create_directories(root_ / "etc");
    std::ofstream(root_ / "proc/meminfo") << slurp("/proc/meminfo") << "\n";
    std::ofstream(root_ / "proc/swaps") << slurp("/proc/swaps") << "\n";
    if (::mount("none", (root_ / "sys/fs/cgroup").c_str(), "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                nullptr) != 0) {
      skip_ = std::string("cannot mount cgroup2: ") + std::strerror(errno);
      return;
    }
    mounted_ = true;
    name_ = "tierswap_kt_" + std::to_string(::getpid()) + "_" + std::to_string(::time(nullptr)) + ".slice";
    if (::mkdir(dir().c_str(), 0755) != 0) {
      skip_ = "cannot create the scratch cgroup " + dir().string() + ": " + std::strerror(errno);
      return;
    }
    made_ = true;
  }
  ~ScratchCgroup() {
    if (made_ && ::rmdir(dir().c_str()) != 0)
      ADD_FAILURE() << "could not remove the scratch cgroup " << dir() << ": " << std::strerror(errno);
    // Delete the directory only once nothing is mounted in it: a still
    // mounted cgroupfs must never be walked by remove_all.
    if (mounted_ && ::umount2((root_ / "sys/fs/cgroup").c_str(), MNT_DETACH) != 0) {
      ADD_FAILURE() << "could not unmount " << root_ / "sys/fs/cgroup"
                    << ": " << std::strerror(errno);
      return;
    }
    std::error_code ec;
    if (!root_.empty()) fs::remove_all(root_, ec);
  }
  ScratchCgroup(const ScratchCgroup&) = delete;
  ScratchCgroup& operator=(const ScratchCgroup&) = delete;

  [[nodiscard]] const std::string& skip() const { return skip_; }
  [[nodiscard]] const fs::path& root() const { return root_; }
  [[nodiscard]] const std::string& name() const { return name_; }
  // The scratch cgroup, as seen on the real machine through the mount.
  [[nodiscard]] fs::path dir() const { return root_ / "sys/fs/cgroup" / name_; }
  [[nodiscard]] std::string controllers() const { return slurp(dir() / "cgroup.controllers"); }

  std::unique_ptr<Engine> engine(const std::string& yaml) const {
    std::ofstream(root_ / "etc/tierswap.yaml") << yaml;
    EngineOptions eo;
    eo.root = root_.string();
    eo.config = (root_ / "etc/tierswap.yaml").string();
    eo.info = eo.warn = [](const std::string&) {};
    return std::make_unique<Engine>(eo);
  }

 private:
  fs::path root_;
  std::string name_;
  std::string skip_;
  bool mounted_ = false, made_ = false;
};

// Why cgroup v2 lacks the memory controller here, from the kernel's own
// tables: /proc/cgroups gives the controller's hierarchy (0 = cgroup v2 or
// none) and /proc/self/mountinfo where a cgroup v1 hierarchy with it is
// mounted. A controller is in one hierarchy at a time, and the kernel moves
// it to v2 only once its v1 hierarchy is unmounted and has no child cgroup,
// which a test must not do to the machine.
std::string memory_controller_whereabouts() {
  std::istringstream cg(slurp("/proc/cgroups"));
  std::string line, where;
  while (std::getline(cg, line)) {
    std::istringstream f(line);
    std::string name;
    int hierarchy = 0, cgroups = 0, enabled = 0;
    if (f >> name >> hierarchy >> cgroups >> enabled && name == "memory")
      where = enabled == 0     ? "the memory controller is disabled (cgroup_disable=memory)"
              : hierarchy == 0 ? "the memory controller is in no cgroup v1 hierarchy, yet not offered in v2"
                               : "the memory controller is bound to cgroup v1 hierarchy " +
                                     std::to_string(hierarchy) + " (" + std::to_string(cgroups) + " cgroups)";
  }
  std::istringstream mi(slurp("/proc/self/mountinfo"));
  while (std::getline(mi, line)) {
    std::istringstream f(line);
    std::string w, mount_point;
    for (int i = 0; i < 5 && f >> w; ++i)
      if (i == 4) mount_point = w;
    while (f >> w && w != "-") {
    }
    std::string type, source, options;
    if (!(f >> type >> source >> options) || type != "cgroup") continue;
    std::replace(options.begin(), options.end(), ',', ' ');
    if (has_word(options, "memory")) where += ", mounted at " + mount_point;
  }
  return where.empty() ? "/proc/cgroups has no memory line" : where;
}

std::string limits_yaml(const std::string& name) {
  return "tiers: []\ncgroups:\n  " + name +
         ":\n    memory.high: 64M\n    memory.max: 128M\n    memory.swap.max: 0\n";
}

}  // namespace

TEST(CgroupKernel, LimitsAppliedAndRestored) {
  ScratchCgroup cg;
  if (!cg.skip().empty()) GTEST_SKIP() << cg.skip();
  if (!has_word(cg.controllers(), "memory"))
    GTEST_SKIP() << "the memory controller is not available in cgroup v2 here ("
                 << cg.dir() / "cgroup.controllers"
                 << " offers: \"" << cg.controllers() << "\"): " << memory_controller_whereabouts()
                 << "; the kernel gives a controller to cgroup v2 only once its v1 hierarchy is unmounted "
                    "and empty";
  const std::string high0 = slurp(cg.dir() / "memory.high"), max0 = slurp(cg.dir() / "memory.max");
  const bool has_swap = fs::exists(cg.dir() / "memory.swap.max");
  if (!has_swap) GTEST_SKIP() << "no memory.swap.max here (swap accounting is off)";
  const std::string swap0 = slurp(cg.dir() / "memory.swap.max");

  auto e = cg.engine(limits_yaml(cg.name()));
  auto r = e->start();
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_EQ(slurp(cg.dir() / "memory.high"), std::to_string(64 << 20));
  EXPECT_EQ(slurp(cg.dir() / "memory.max"), std::to_string(128 << 20));
  EXPECT_EQ(slurp(cg.dir() / "memory.swap.max"), "0");
  // The kernel reads back what was written: a reload has nothing to do.
  auto again = e->reload();
  ASSERT_TRUE(again) << again.error().describe();
  EXPECT_EQ(*again, 0u);

  auto s = e->stop();
  ASSERT_TRUE(s) << s.error().describe();
  EXPECT_EQ(slurp(cg.dir() / "memory.high"), high0);
  EXPECT_EQ(slurp(cg.dir() / "memory.max"), max0);
  EXPECT_EQ(slurp(cg.dir() / "memory.swap.max"), swap0);
}

// With the memory controller off for the scratch cgroup (as on a host where
// cgroup v1 holds it, or a parent that does not enable it), the engine
// refuses by naming the real file, and changes nothing.
TEST(CgroupKernel, MemoryControllerOffIsNamed) {
  ScratchCgroup cg;
  if (!cg.skip().empty()) GTEST_SKIP() << cg.skip();
  if (has_word(cg.controllers(), "memory"))
    GTEST_SKIP() << "the memory controller is on for " << cg.dir()
                 << " (cgroup v2 owns it here): LimitsAppliedAndRestored covers this machine";
  auto e = cg.engine(limits_yaml(cg.name()));
  auto r = e->start();
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message,
              HasSubstr("the memory controller is not enabled for /sys/fs/cgroup/" + cg.name() +
                        " (/sys/fs/cgroup/cgroup.subtree_control lacks \"memory\""));
  EXPECT_FALSE(fs::exists(cg.dir() / "memory.high"));
}

// This machine's own /sys/fs/cgroup: without cgroup.controllers there (a
// cgroup v1 or hybrid host) `tierswapctl check` refuses cgroups: by name.
TEST(CgroupKernel, NoCgroupV2AtSysFsCgroupIsRefused) {
  if (fs::exists("/sys/fs/cgroup/cgroup.controllers"))
    GTEST_SKIP() << "this machine runs cgroup v2 at /sys/fs/cgroup; LimitsAppliedAndRestored covers it";
  char tmpl[] = "/tmp/tierswap-cgk-config-XXXXXX";
  const int fd = ::mkstemp(tmpl);
  ASSERT_GE(fd, 0);
  ::close(fd);
  std::ofstream(tmpl) << "tiers: []\ncgroups:\n  system.slice:\n    memory.swap.max: 0\n";
  char* buf = nullptr;
  std::size_t len = 0;
  FILE* diag = ::open_memstream(&buf, &len);
  const FilePlan p = plan_file(tmpl, "/", diag);
  std::fclose(diag);
  const std::string out(buf, len);
  std::free(buf);
  ::unlink(tmpl);
  EXPECT_FALSE(p.ok);
  EXPECT_THAT(out, HasSubstr("cgroups: this host has no cgroup v2 hierarchy at /sys/fs/cgroup "
                             "(/sys/fs/cgroup/cgroup.controllers does not exist"));
}
