// A real scrape: tierswapd-test on a fake root (fixture 01, recording
// kernel, no D-Bus) with `metrics:` set serves GET /metrics on loopback to
// curl and writes the textfile (0644, atomically); both carry the applied
// tier. Wrong paths get 404, an oversized request 431; the textfile is gone
// after a clean stop. A reload (SIGHUP) moves, stops and starts them as
// `metrics:` says; a policy action shows as tierswap_policy_actions_total.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "../run_command.hpp"

using ::testing::HasSubstr;
using ::testing::Not;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A loopback port nobody listens on now.
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

class Scrape : public ::testing::Test {
 protected:
  void SetUp() override {
    if (tierswap::test::run_command("command -v curl").code != 0) GTEST_SKIP() << "curl is not installed";
    char tmpl[] = "/tmp/tierswap-scrape-XXXXXX";
    root_ = ::mkdtemp(tmpl);
    fs::copy(fs::path(TIERSWAP_FIXTURES_DIR) / "01-desktop-default", root_, fs::copy_options::recursive);
    fs::create_directories(root_ / "var/lib/node-exporter");
    fs::permissions(root_ / "var/lib/node-exporter", fs::perms(0755));
    port_ = free_port();
    base_config_ = slurp(root_ / "etc/tierswap.yaml");
    std::ofstream(root_ / "etc/tierswap.yaml", std::ios::app)
        << "metrics:\n  listen: " << listen_host() << ":" << port_
        << "\n  textfile: /var/lib/node-exporter/tierswap.prom\n";
    const std::string log = (root_ / "tierswapd.log").string();
    std::vector<std::string> args = {TIERSWAPD_TEST,
                                     "--root",
                                     root_.string(),
                                     "--config",
                                     (root_ / "etc/tierswap.yaml").string(),
                                     "--no-dbus",
                                     "--test-fake-kernel"};
    for (const auto& a : extra_args()) args.push_back(a);
    pid_ = ::fork();
    if (pid_ == 0) {
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      std::freopen(log.c_str(), "w", stderr);
      ::execv(TIERSWAPD_TEST, argv.data());
      ::_exit(127);
    }
    for (int i = 0; i < 200 && curl("/metrics").code != 0; ++i) std::this_thread::sleep_for(50ms);
  }
  virtual std::vector<std::string> extra_args() { return {}; }
  virtual std::string listen_host() { return "127.0.0.1"; }
  void TearDown() override {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      int st = 0;
      ::waitpid(pid_, &st, 0);
    }
    std::error_code ec;
    if (!root_.empty()) fs::remove_all(root_, ec);
  }
  tierswap::test::Run curl(const std::string& path, const std::string& extra = "", int port = 0) {
    return tierswap::test::run_command("curl -sS --max-time 5 " + extra +
                                       " http://127.0.0.1:" + std::to_string(port ? port : port_) + path);
  }
  // Waits (up to 20 s: a tick is 2 s, the cores may be loaded) for `ok`.
  template <class F>
  bool wait_for(F ok) {
    for (int i = 0; i < 400; ++i) {
      if (ok()) return true;
      std::this_thread::sleep_for(50ms);
    }
    return false;
  }
  std::string log() { return slurp(root_ / "tierswapd.log"); }

  fs::path root_;
  std::string base_config_;  // the fixture's config, without `metrics:`
  int port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace

TEST_F(Scrape, CurlGetsTheTextWithTheAppliedTier) {
  auto r = curl("/metrics", "-i");
  ASSERT_EQ(r.code, 0) << r.output << log();
  EXPECT_THAT(r.output, HasSubstr("HTTP/1.1 200 OK"));
  EXPECT_THAT(r.output, HasSubstr("Content-Type: text/plain; version=0.0.4"));
  EXPECT_THAT(r.output, HasSubstr("tierswap_tier_size_bytes{tier=\"zram\",kind=\"zram\"}"));
  EXPECT_THAT(r.output, HasSubstr("tierswap_tier_state{tier=\"zram\",state=\"active\"} 1"));
  EXPECT_THAT(r.output, HasSubstr("tierswap_daemon_info{version="));
  EXPECT_THAT(log(), HasSubstr("metrics: serving http://127.0.0.1:" + std::to_string(port_) + "/metrics"));

  if (tierswap::test::run_command("command -v promtool").code == 0) {
    auto p = tierswap::test::run_command("curl -sS --max-time 5 http://127.0.0.1:" + std::to_string(port_) +
                                         "/metrics | promtool check metrics");
    EXPECT_EQ(p.code, 0) << p.output;
    EXPECT_EQ(p.output, "") << "promtool's lint findings";
  }
}

TEST_F(Scrape, OtherPathsMethodsAndHugeRequestsAreRefused) {
  EXPECT_THAT(curl("/", "-o /dev/null -w '%{http_code}'").output, HasSubstr("404"));
  EXPECT_THAT(curl("/metrics/../etc", "--path-as-is -o /dev/null -w '%{http_code}'").output,
              HasSubstr("404"));
  EXPECT_THAT(curl("/metrics", "-X POST -o /dev/null -w '%{http_code}'").output, HasSubstr("405"));
  EXPECT_THAT(
      curl("/metrics", "-H 'X-Big: " + std::string(9000, 'a') + "' -o /dev/null -w '%{http_code}'").output,
      HasSubstr("431"));
  // The daemon still answers afterwards.
  EXPECT_THAT(curl("/metrics").output, HasSubstr("tierswap_tier_used_bytes"));
}

// A client that connects and says nothing is dropped after the timeout and
// does not block others meanwhile.
TEST_F(Scrape, SilentClientDoesNotBlockOthers) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port_));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  EXPECT_THAT(curl("/metrics").output, HasSubstr("tierswap_tier_used_bytes"));
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  char c;
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(::recv(fd, &c, 1, 0), 0) << "the server closes the idle connection";
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 8s);
  ::close(fd);
}

TEST_F(Scrape, TextfileIsWrittenReadableAndRemovedAtStop) {
  const fs::path f = root_ / "var/lib/node-exporter/tierswap.prom";
  for (int i = 0; i < 100 && !fs::exists(f); ++i) std::this_thread::sleep_for(50ms);
  ASSERT_TRUE(fs::exists(f)) << log();
  struct stat st {};
  ASSERT_EQ(::stat(f.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0644u);
  EXPECT_THAT(slurp(f), HasSubstr("tierswap_tier_size_bytes{tier=\"zram\",kind=\"zram\"}"));
  for (const auto& e : fs::directory_iterator(f.parent_path()))
    EXPECT_EQ(e.path().filename(), "tierswap.prom") << "a temporary file was left: " << e.path();
  ::kill(pid_, SIGTERM);
  int st2 = 0;
  ::waitpid(pid_, &st2, 0);
  pid_ = -1;
  EXPECT_TRUE(WIFEXITED(st2) && WEXITSTATUS(st2) == 0) << log();
  EXPECT_FALSE(fs::exists(f)) << "a stopped tierswapd leaves no stale figures";
}

// A textfile directory that others may write to is refused by name, and the
// endpoint keeps working.
TEST_F(Scrape, TextfileInAnUnsafeDirectoryIsRefusedByName) {
  fs::permissions(root_ / "var/lib/node-exporter", fs::perms(0777));
  for (int i = 0; i < 100 && log().find("textfile /var/lib/node-exporter/tierswap.prom") == std::string::npos;
       ++i)
    std::this_thread::sleep_for(50ms);
  // Written at start (safe then); a later tick refuses the directory.
  EXPECT_THAT(log(), HasSubstr("textfile /var/lib/node-exporter/tierswap.prom"));
  EXPECT_THAT(curl("/metrics").output, HasSubstr("tierswap_tier_used_bytes"));
}

// Debian's node_exporter layout: /var/lib/prometheus belongs to the
// prometheus user, its node-exporter directory to root. The textfile is
// written there (only the directory itself must be root's).
TEST_F(Scrape, TextfileUnderAnAncestorOwnedByAnotherUserIsWritten) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to chown the fixture's directory";
  const fs::path f = root_ / "var/lib/node-exporter/tierswap.prom";
  ASSERT_TRUE(wait_for([&] { return fs::exists(f); })) << log();
  ASSERT_EQ(::chown((root_ / "var/lib").c_str(), 65534, 65534), 0);
  fs::remove(f);
  EXPECT_TRUE(wait_for([&] { return fs::exists(f); })) << "not written again\n" << log();
  EXPECT_THAT(log(), Not(HasSubstr("owned by uid 65534")));
}

// `metrics:` follows a reload: after SIGHUP with the endpoint moved to
// another port and the textfile gone, the new port answers, the old one
// refuses, the textfile is removed, and the log says each.
TEST_F(Scrape, ReloadMovesTheEndpointAndDropsTheTextfile) {
  const fs::path f = root_ / "var/lib/node-exporter/tierswap.prom";
  ASSERT_TRUE(wait_for([&] { return fs::exists(f); })) << log();
  const int old_port = port_, new_port = free_port();
  ASSERT_NE(new_port, old_port);
  std::ofstream(root_ / "etc/tierswap.yaml") << base_config_ << "metrics:\n  listen: " << new_port << "\n";
  ASSERT_EQ(::kill(pid_, SIGHUP), 0);
  EXPECT_TRUE(wait_for([&] {
    return curl("/metrics", "", new_port).output.find("tierswap_tier_used_bytes") != std::string::npos;
  })) << log();
  EXPECT_NE(curl("/metrics", "", old_port).code, 0) << "the old port still answers";
  EXPECT_TRUE(wait_for([&] { return !fs::exists(f); })) << "the textfile outlived its key\n" << log();
  EXPECT_THAT(log(), HasSubstr("metrics: no longer serving http://127.0.0.1:" + std::to_string(old_port)));
  EXPECT_THAT(log(), HasSubstr("metrics: serving http://127.0.0.1:" + std::to_string(new_port) + "/metrics"));
  EXPECT_THAT(log(), HasSubstr("metrics: no longer writing /var/lib/node-exporter/tierswap.prom"));

  // And off entirely, then on again by another reload.
  std::ofstream(root_ / "etc/tierswap.yaml") << base_config_;
  ASSERT_EQ(::kill(pid_, SIGHUP), 0);
  EXPECT_TRUE(wait_for([&] { return curl("/metrics", "", new_port).code != 0; })) << log();
  EXPECT_TRUE(wait_for([&] { return log().find("metrics: off") != std::string::npos; })) << log();
  std::ofstream(root_ / "etc/tierswap.yaml")
      << base_config_ << "metrics:\n  listen: 127.0.0.1:" << old_port << "\n";
  ASSERT_EQ(::kill(pid_, SIGHUP), 0);
  EXPECT_TRUE(wait_for([&] { return curl("/metrics").code == 0; })) << log();
}

// The policy engine's counter, scraped: tierswapd-test whose VRAM sample
// (--test-vram-samples) says the tier's GPU is below the reserve evacuates
// it on a tick, and GET /metrics then counts that action by action and rule,
// as Status::policy_actions does; promtool accepts the text.
class ScrapePolicy : public Scrape {
 protected:
  std::vector<std::string> extra_args() override {
    const std::string samples = (root_ / "vram.jsonl").string();
    std::ofstream(samples) << R"({"t_ms": 0, "vram": [{"tier": "zram", "free_bytes": 268435456, )"
                              R"("total_bytes": 25769803776}]})"
                           << "\n";
    return {"--test-vram-samples", samples};
  }
};

TEST_F(ScrapePolicy, PolicyActionsAreCountedByActionAndRule) {
  const std::string want = "tierswap_policy_actions_total{action=\"evacuate\",rule=\"reserve\"} 1\n";
  std::string text;
  EXPECT_TRUE(wait_for([&] {
    text = curl("/metrics").output;
    return text.find(want) != std::string::npos;
  })) << text
      << log();
  EXPECT_THAT(text, HasSubstr("# TYPE tierswap_policy_actions_total counter\n"));
  EXPECT_THAT(log(), HasSubstr("evacuate requested by daemon policy rule \"reserve\""));
  if (tierswap::test::run_command("command -v promtool").code == 0) {
    auto p = tierswap::test::run_command("curl -sS --max-time 5 http://127.0.0.1:" + std::to_string(port_) +
                                         "/metrics | promtool check metrics");
    EXPECT_EQ(p.code, 0) << p.output;
    EXPECT_EQ(p.output, "") << "promtool's lint findings";
  }
}

// A non-loopback address written in the config is served (here 0.0.0.0,
// reached over loopback) and the log says, at warning level, that it is not
// loopback.
class ScrapeAnyAddress : public Scrape {
 protected:
  std::string listen_host() override { return "0.0.0.0"; }
};

TEST_F(ScrapeAnyAddress, IsServedAndTheLogSaysItIsNotLoopback) {
  EXPECT_THAT(curl("/metrics").output, HasSubstr("tierswap_tier_used_bytes"));
  EXPECT_THAT(log(), ::testing::ContainsRegex("warn.*metrics: serving http://0\\.0\\.0\\.0:" +
                                              std::to_string(port_) + "/metrics on a non-loopback address"));
}
