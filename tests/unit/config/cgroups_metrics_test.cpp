// `cgroups:` and `metrics:`: what the schema accepts, the kernel form of each
// limit, and the clear error for each bad value (names with "..", a
// non-loopback listen address, a textfile that is not a .prom path).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>

#include "common/cgroup_name.hpp"
#include "config/metrics_settings.hpp"
#include "config/schema.hpp"
#include "test_util.hpp"

using namespace tierswap;
using namespace tierswap::config;
using namespace tierswap::config::test;
using ::testing::HasSubstr;

TEST(Cgroups, LimitsBecomeTheKernelsForm) {
  auto r = load(
      "cgroups:\n"
      "  database.slice:\n"
      "    memory.swap.max: 0\n"
      "    memory.zswap.max: 0\n"
      "  postgresql.service:\n"
      "    memory.high: 1G\n"
      "    memory.max: max\n"
      "  user.slice:\n"
      "    memory.high: 50%\n"
      "    memory.swap.max: 1000000\n");  // not whole pages: rounded down as the kernel does
  ASSERT_TRUE(r.ok()) << dump(r);
  const auto& c = r.spec->cgroups;
  ASSERT_EQ(c.size(), 3u);
  EXPECT_EQ(c.at("database.slice").values.at("memory.swap.max"), "0");
  EXPECT_EQ(c.at("database.slice").values.at("memory.zswap.max"), "0");
  EXPECT_EQ(c.at("postgresql.service").values.at("memory.high"), std::to_string(GiB));
  EXPECT_EQ(c.at("postgresql.service").values.at("memory.max"), "max");
  EXPECT_EQ(c.at("user.slice").values.at("memory.high"), std::to_string(8 * GiB));
  EXPECT_EQ(c.at("user.slice").values.at("memory.swap.max"), std::to_string(1000000 / 4096 * 4096));
  EXPECT_EQ(c.at("user.slice").locs.at("memory.high").line, 9);
}

TEST(Cgroups, BadNamesKeysAndValuesAreNamed) {
  struct Case {
    const char* yaml;
    const char* path;
    const char* message;
  };
  const Case cases[] = {
      {"cgroups:\n  ../etc.slice: { memory.max: 1G }\n", "cgroups.../etc.slice", "\"..\" component"},
      {"cgroups:\n  system.slice/../x.service: { memory.max: 1G }\n", "cgroups.system.slice/../x.service",
       "\"..\" component"},
      {"cgroups:\n  /system.slice: { memory.max: 1G }\n", "cgroups./system.slice", "starts or ends with"},
      {"cgroups:\n  postgres: { memory.max: 1G }\n", "cgroups.postgres", "neither a slice"},
      {"cgroups:\n  -.slice: { memory.max: 1G }\n", "cgroups.-.slice", "root cgroup"},
      {"cgroups:\n  a b.service: { memory.max: 1G }\n", "cgroups.a b.service", "not allowed"},
      {"cgroups:\n  system.slice/cgroup.procs: { memory.max: 1G }\n", "cgroups.system.slice/cgroup.procs",
       "interface file"},
      {"cgroups:\n  system.slice: { memory.min: 1G }\n", "cgroups.system.slice.memory.min", "unknown key"},
      {"cgroups:\n  system.slice: { memory.max: 12X }\n", "cgroups.system.slice.memory.max", "not a size"},
      {"cgroups:\n  system.slice: {}\n", "cgroups.system.slice", "no limits given"},
      {"cgroups:\n  system.slice: 1G\n", "cgroups.system.slice", "expected a map"},
      {"cgroups: [system.slice]\n", "cgroups", "expected a map"},
  };
  for (const auto& c : cases) {
    auto r = load(c.yaml);
    auto d = only_error(r);
    EXPECT_EQ(d.path, c.path) << c.yaml << dump(r);
    EXPECT_THAT(d.message, HasSubstr(c.message)) << c.yaml << dump(r);
  }
}

TEST(Cgroups, HighAboveMaxIsAWarning) {
  auto r = load("cgroups:\n  system.slice: { memory.high: 2G, memory.max: 1G }\n");
  ASSERT_TRUE(r.ok()) << dump(r);
  ASSERT_EQ(count(r, Severity::warning), 1u) << dump(r);
  EXPECT_THAT(dump(r), HasSubstr("cgroups.system.slice.memory.high: 2147483648 is above memory.max"));
}

TEST(CgroupNames, SlicesNestByDashUnitsLiveInSystemSlice) {
  EXPECT_EQ(*cgroup_relative_path("system.slice"), "system.slice");
  EXPECT_EQ(*cgroup_relative_path("user-1000.slice"), "user.slice/user-1000.slice");
  EXPECT_EQ(*cgroup_relative_path("a-b-c.slice"), "a.slice/a-b.slice/a-b-c.slice");
  EXPECT_EQ(*cgroup_relative_path("postgresql.service"), "system.slice/postgresql.service");
  EXPECT_EQ(*cgroup_relative_path("user.slice/user-1000.slice/user@1000.service"),
            "user.slice/user-1000.slice/user@1000.service");
  for (const char* bad : {"", "..", "a//b", "a/", "x-.slice", "a--b.slice", ".slice", "noext"})
    EXPECT_FALSE(cgroup_relative_path(bad)) << bad;
  EXPECT_FALSE(cgroup_relative_path(std::string(300, 'a') + ".service"));
}

TEST(Metrics, OffByDefault) {
  auto r = load("profile: desktop\n");
  ASSERT_TRUE(r.ok()) << dump(r);
  EXPECT_FALSE(r.spec->metrics.textfile);
  EXPECT_FALSE(r.spec->metrics.listen);
}

TEST(Metrics, LoopbackListenAndTextfileAreTaken) {
  auto r = load(
      "metrics:\n  listen: 127.0.0.1:9109\n  textfile: /var/lib/prometheus/node-exporter/tierswap.prom\n");
  ASSERT_TRUE(r.ok()) << dump(r);
  EXPECT_EQ(*r.spec->metrics.listen, "127.0.0.1:9109");
  EXPECT_EQ(*r.spec->metrics.textfile, "/var/lib/prometheus/node-exporter/tierswap.prom");
  for (const char* ok : {"127.0.0.1:1", "127.9.8.7:65535", "[::1]:9109", "localhost:9109"})
    EXPECT_TRUE(parse_listen_address(ok)) << ok;
  auto v6 = parse_listen_address("[::1]:9109");
  EXPECT_TRUE(v6->ipv6);
  EXPECT_EQ(v6->port, 9109);
}

// A non-loopback address is taken only as written, numeric, with a warning
// that names it (the Kubernetes pod case); loopback ones warn about nothing.
TEST(Metrics, NonLoopbackListenIsTakenWithAWarning) {
  for (const char* value : {"0.0.0.0:9466", "192.168.1.5:9109", "[::]:9466", "[2001:db8::1]:9109"}) {
    auto r = load(std::string("metrics:\n  listen: \"") + value + "\"\n");
    ASSERT_TRUE(r.ok()) << value << dump(r);
    EXPECT_EQ(*r.spec->metrics.listen, value);
    ASSERT_EQ(r.diagnostics.size(), 1u) << value << dump(r);
    EXPECT_EQ(r.diagnostics[0].severity, Severity::warning);
    EXPECT_EQ(r.diagnostics[0].path, "metrics.listen");
    EXPECT_THAT(r.diagnostics[0].message, HasSubstr(std::string(value) + " is not a loopback address"));
    auto a = parse_listen_address(value);
    ASSERT_TRUE(a) << value;
    EXPECT_FALSE(a->loopback) << value;
  }
  for (const char* value : {"127.0.0.1:9109", "[::1]:9109", "localhost:9109", "9109"}) {
    auto r = load(std::string("metrics:\n  listen: \"") + value + "\"\n");
    ASSERT_TRUE(r.ok()) << value << dump(r);
    EXPECT_TRUE(r.diagnostics.empty()) << value << dump(r);
    EXPECT_TRUE(parse_listen_address(value)->loopback) << value;
  }
  auto bare = parse_listen_address("9109");
  ASSERT_TRUE(bare);
  EXPECT_EQ(bare->host, "127.0.0.1");
  EXPECT_EQ(bare->port, 9109);
}

TEST(Metrics, BadValuesAreRefusedByName) {
  struct Case {
    const char* value;
    const char* message;
  };
  const Case listen[] = {
      {"example.com:9109", "is not an IPv4 address"},
      {"[localhost]:9109", "is not an IPv6 address"},
      {"127.0.0.1:", "is not a port"},
      {"127.0.0.1", "is not HOST:PORT"},
      {"127.0.0.1:0", "is not a port"},
      {"127.0.0.1:70000", "is not a port"},
      {"::1:9109", "is not HOST:PORT"},
  };
  for (const auto& c : listen) {
    auto r = load(std::string("metrics:\n  listen: \"") + c.value + "\"\n");
    auto d = only_error(r);
    EXPECT_EQ(d.path, "metrics.listen") << c.value;
    EXPECT_THAT(d.message, HasSubstr(c.message)) << c.value << dump(r);
  }
  const Case textfile[] = {
      {"tierswap.prom", "not an absolute path"},
      {"/var/lib/node/tierswap.txt", "does not end in .prom"},
      {"/var/lib/../tmp/tierswap.prom", "\"..\" component"},
  };
  for (const auto& c : textfile) {
    auto r = load(std::string("metrics:\n  textfile: ") + c.value + "\n");
    auto d = only_error(r);
    EXPECT_EQ(d.path, "metrics.textfile") << c.value;
    EXPECT_THAT(d.message, HasSubstr(c.message)) << c.value << dump(r);
  }
}

TEST(Schema, KeyPathsNameTheNewSections) {
  const auto keys = schema_key_paths();
  for (const char* k : {"cgroups", "metrics", "cgroups.NAME.memory.high", "cgroups.NAME.memory.max",
                        "cgroups.NAME.memory.swap.max", "cgroups.NAME.memory.zswap.max", "metrics.textfile",
                        "metrics.listen"})
    EXPECT_NE(std::find(keys.begin(), keys.end(), k), keys.end()) << k;
}
