// The pure protocol layer: request parsing/validation and the handshake
// state machine, bytes in, values out. No sockets.
#include "backends/vram/nbd_protocol.hpp"

#include <gtest/gtest.h>
#include <sched.h>

#include <cerrno>
#include <string>
#include <vector>

#include "backends/vram/exporter.hpp"
#include "backends/vram/nbd_handshake.hpp"
#include "tests/nbd/exporter_test_hooks.hpp"

using namespace tierswap::vram;
using namespace tierswap::vram::nbd;

namespace {

constexpr std::uint64_t kSize = 1ULL << 30;

Request req(std::uint16_t type, std::uint64_t off, std::uint32_t len, std::uint16_t flags = 0) {
  return Request{flags, type, 7, off, len};
}

TEST(NbdProtocol, RequestRoundTripsAndRejectsBadMagic) {
  Request r{kCmdFlagFua, kCmdWrite, 0x1122334455667788ULL, 4096, 8192};
  std::byte b[kRequestSize];
  serialize_request(r, std::span<std::byte, kRequestSize>(b, kRequestSize));
  Request back;
  ASSERT_TRUE(parse_request(std::span<const std::byte, kRequestSize>(b, kRequestSize), back));
  EXPECT_EQ(back.flags, r.flags);
  EXPECT_EQ(back.type, r.type);
  EXPECT_EQ(back.cookie, r.cookie);
  EXPECT_EQ(back.offset, r.offset);
  EXPECT_EQ(back.length, r.length);
  b[0] = std::byte{0};
  EXPECT_FALSE(parse_request(std::span<const std::byte, kRequestSize>(b, kRequestSize), back));
}

TEST(NbdProtocol, ValidatesBoundsAlignmentLengthAndFlags) {
  EXPECT_EQ(validate_request(req(kCmdRead, 0, 4096), kSize), 0);
  EXPECT_EQ(validate_request(req(kCmdRead, kSize - 512, 512), kSize), 0);
  EXPECT_EQ(validate_request(req(kCmdRead, kSize - 512, 1024), kSize), EINVAL);
  EXPECT_EQ(validate_request(req(kCmdWrite, kSize - 512, 1024), kSize), ENOSPC);
  EXPECT_EQ(validate_request(req(kCmdWriteZeroes, kSize, 512), kSize), ENOSPC);
  EXPECT_EQ(validate_request(req(kCmdTrim, kSize, 512), kSize), EINVAL);
  EXPECT_EQ(validate_request(req(kCmdRead, ~0ULL - 511, 1024), kSize), EINVAL);
  EXPECT_EQ(validate_request(req(kCmdWrite, ~0ULL - 511, 1024), kSize), ENOSPC);
  EXPECT_EQ(validate_request(req(kCmdRead, 0, 0), kSize), EINVAL);
  EXPECT_EQ(validate_request(req(kCmdRead, 1, 512), kSize), EINVAL);
  EXPECT_EQ(validate_request(req(kCmdRead, 0, 513), kSize), EINVAL);
  EXPECT_EQ(validate_request(req(kCmdRead, 0, kMaxBlock), kSize), 0);
  EXPECT_EQ(validate_request(req(kCmdRead, 0, kMaxBlock + 512), kSize), EINVAL);
  EXPECT_EQ(validate_request(req(kCmdWrite, 0, kMaxBlock + 512), kSize), EINVAL);
  // TRIM/WRITE_ZEROES carry no payload: beyond the maximum block is fine.
  EXPECT_EQ(validate_request(req(kCmdTrim, 0, 256U << 20), kSize), 0);
  EXPECT_EQ(validate_request(req(kCmdWriteZeroes, 0, 256U << 20), kSize), 0);
  EXPECT_EQ(validate_request(req(kCmdFlush, 0, 0), kSize), 0);
  EXPECT_EQ(validate_request(req(kCmdDisc, 0, 0), kSize), 0);
  EXPECT_EQ(validate_request(req(99, 0, 512), kSize), EINVAL);
  EXPECT_EQ(validate_request(req(kCmdCache, 0, 512), kSize), EINVAL);
  EXPECT_EQ(validate_request(req(kCmdWriteZeroes, 0, 512, kCmdFlagNoHole | kCmdFlagFua), kSize), 0);
  EXPECT_EQ(validate_request(req(kCmdWrite, 0, 512, kCmdFlagNoHole), kSize), EINVAL);
  EXPECT_EQ(validate_request(req(kCmdRead, 0, 512, kCmdFlagDf), kSize), EINVAL);
  EXPECT_EQ(validate_request(req(kCmdWriteZeroes, 0, 512, kCmdFlagFastZero), kSize), EINVAL);
  EXPECT_EQ(validate_request(req(kCmdRead, 0, 512, 0x100), kSize), EINVAL);
  EXPECT_TRUE(must_drop_after(req(kCmdWrite, 0, 0xFFFFFE00U), EINVAL));
  EXPECT_FALSE(must_drop_after(req(kCmdWrite, 0, 4096), EINVAL));
}

TEST(NbdProtocol, WireErrorsStayInTheProtocolSet) {
  EXPECT_EQ(wire_error(0), 0U);
  EXPECT_EQ(wire_error(EIO), static_cast<std::uint32_t>(EIO));
  EXPECT_EQ(wire_error(ENOSPC), static_cast<std::uint32_t>(ENOSPC));
  EXPECT_EQ(wire_error(ENODEV), static_cast<std::uint32_t>(EIO));
  EXPECT_EQ(wire_error(-5), static_cast<std::uint32_t>(EIO));
}

struct Reply {
  std::uint32_t option, type;
  std::vector<std::byte> data;
};

std::vector<Reply> split(std::span<const std::byte> bytes) {
  std::vector<Reply> out;
  while (bytes.size() >= kOptReplyHeaderSize) {
    EXPECT_EQ(load_be64(bytes.data()), kOptReplyMagic);
    const std::uint32_t len = load_be32(bytes.data() + 16);
    out.push_back({load_be32(bytes.data() + 8), load_be32(bytes.data() + 12),
                   std::vector<std::byte>(bytes.begin() + 20, bytes.begin() + 20 + len)});
    bytes = bytes.subspan(20 + len);
  }
  EXPECT_TRUE(bytes.empty());
  return out;
}

std::vector<std::byte> go_data(std::string name, std::vector<std::uint16_t> infos) {
  std::vector<std::byte> d(4 + name.size() + 2 + 2 * infos.size());
  store_be32(d.data(), static_cast<std::uint32_t>(name.size()));
  std::memcpy(d.data() + 4, name.data(), name.size());
  store_be16(d.data() + 4 + name.size(), static_cast<std::uint16_t>(infos.size()));
  for (std::size_t i = 0; i < infos.size(); ++i) store_be16(d.data() + 6 + name.size() + 2 * i, infos[i]);
  return d;
}

TEST(NbdHandshake, GreetingAndClientFlags) {
  Handshake h(kSize);
  auto g = h.greeting();
  ASSERT_EQ(g.size(), 18U);
  EXPECT_EQ(load_be64(g.data()), kNbdMagic);
  EXPECT_EQ(load_be64(g.data() + 8), kIHaveOpt);
  EXPECT_EQ(load_be16(g.data() + 16), kFlagFixedNewstyle | kFlagNoZeroes);
  EXPECT_FALSE(Handshake(kSize).on_client_flags(0));
  EXPECT_FALSE(Handshake(kSize).on_client_flags(kClientFlagFixedNewstyle | 0x80));
  EXPECT_TRUE(Handshake(kSize).on_client_flags(kClientFlagFixedNewstyle));
}

TEST(NbdHandshake, GoSendsExportAndBlockSizeThenAck) {
  Handshake h(kSize);
  ASSERT_TRUE(h.on_client_flags(kClientFlagFixedNewstyle | kClientFlagNoZeroes));
  auto d = go_data("", {kInfoBlockSize});
  EXPECT_EQ(h.on_option(kOptGo, d), Handshake::Next::kTransmission);
  auto r = split(h.reply());
  ASSERT_EQ(r.size(), 3U);
  EXPECT_EQ(r[0].type, kRepInfo);
  EXPECT_EQ(load_be16(r[0].data.data()), kInfoExport);
  EXPECT_EQ(load_be64(r[0].data.data() + 2), kSize);
  EXPECT_EQ(load_be16(r[0].data.data() + 10), kTransmissionFlags);
  EXPECT_EQ(load_be16(r[1].data.data()), kInfoBlockSize);
  EXPECT_EQ(load_be32(r[1].data.data() + 2), 512U);
  EXPECT_EQ(load_be32(r[1].data.data() + 6), 4096U);
  EXPECT_EQ(load_be32(r[1].data.data() + 10), 32U << 20);
  EXPECT_EQ(r[2].type, kRepAck);
  Handshake i(kSize);
  EXPECT_EQ(i.on_option(kOptInfo, go_data("x", {})), Handshake::Next::kContinue);
}

TEST(NbdHandshake, MalformedInfoAndGoAreInvalid) {
  Handshake h(kSize);
  for (auto d : {std::vector<std::byte>{}, std::vector<std::byte>(5), go_data("abc", {1, 2})}) {
    if (d.size() > 8) d.pop_back();  // one byte short
    EXPECT_EQ(h.on_option(kOptGo, d), Handshake::Next::kContinue);
    auto r = split(h.reply());
    ASSERT_EQ(r.size(), 1U);
    EXPECT_EQ(r[0].type, kRepErrInvalid);
  }
  auto huge_name = go_data("", {});
  store_be32(huge_name.data(), 0xFFFFFFFFU);
  EXPECT_EQ(h.on_option(kOptInfo, huge_name), Handshake::Next::kContinue);
  EXPECT_EQ(split(h.reply())[0].type, kRepErrInvalid);
}

TEST(NbdHandshake, ListAbortExportNameAndUnsupported) {
  Handshake h(kSize);
  ASSERT_TRUE(h.on_client_flags(kClientFlagFixedNewstyle));
  EXPECT_EQ(h.on_option(kOptList, {}), Handshake::Next::kContinue);
  auto r = split(h.reply());
  ASSERT_EQ(r.size(), 2U);
  EXPECT_EQ(r[0].type, kRepServer);
  EXPECT_EQ(r[1].type, kRepAck);
  EXPECT_EQ(h.on_option(kOptStructuredReply, {}), Handshake::Next::kContinue);
  EXPECT_EQ(split(h.reply())[0].type, kRepErrUnsup);
  EXPECT_EQ(h.on_option(0xdead, {}), Handshake::Next::kContinue);
  EXPECT_EQ(split(h.reply())[0].type, kRepErrUnsup);
  // Without NO_ZEROES: size, flags and 124 zero bytes.
  EXPECT_EQ(h.on_option(kOptExportName, {}), Handshake::Next::kTransmission);
  EXPECT_EQ(h.reply().size(), 134U);
  EXPECT_EQ(load_be64(h.reply().data()), kSize);
  Handshake a(kSize);
  EXPECT_EQ(a.on_option(kOptAbort, {}), Handshake::Next::kClose);
  EXPECT_EQ(split(a.reply())[0].type, kRepAck);
}

TEST(NbdHandshake, OptionLimits) {
  Handshake h(kSize);
  EXPECT_FALSE(h.accept_option({kOptGo, kMaxOptionLength + 1}));
  Handshake f(kSize);
  unsigned accepted = 0;
  while (f.accept_option({0x99, 0}) && accepted < 1000) ++accepted;
  EXPECT_EQ(accepted, kMaxOptions);
}

TEST(ExporterCommandLine, ParsesTheInterface) {
  std::vector<std::string_view> a = {"--socket",      "/run/t/s", "--size",     "8G",      "--store", "host",
                                     "--connections", "4",        "--no-mlock", "--force", "--fd",    "5",
                                     "--fd",          "6"};
  auto o = parse_command_line(a);
  ASSERT_TRUE(o) << o.error().message;
  EXPECT_EQ(o->socket, "/run/t/s");
  EXPECT_EQ(o->size, 8ULL << 30);
  EXPECT_EQ(o->store, "host");
  EXPECT_EQ(o->connections, 4U);
  EXPECT_FALSE(o->mlock);
  EXPECT_TRUE(o->force);
  EXPECT_EQ(o->fds, (std::vector<int>{5, 6}));
}

TEST(ExporterCommandLine, ErrorsNameTheOption) {
  auto bad = [](std::vector<std::string_view> a) {
    auto o = parse_command_line(a);
    return o ? std::string() : o.error().message;
  };
  EXPECT_NE(bad({"--socket", "s", "--store", "host"}).find("--size"), std::string::npos);
  EXPECT_NE(bad({"--socket", "s", "--size", "1G"}).find("--store"), std::string::npos);
  EXPECT_NE(bad({"--size", "1G", "--store", "host"}).find("--socket"), std::string::npos);
  EXPECT_NE(bad({"--socket", "s", "--size", "1000", "--store", "host"}).find("512"), std::string::npos);
  EXPECT_NE(bad({"--socket", "s", "--size", "1G", "--store", "gpu"}).find("unknown store"),
            std::string::npos);
  EXPECT_NE(bad({"--socket", "s", "--size", "1G", "--store", "host", "--device", "0"}).find("--device"),
            std::string::npos);
  EXPECT_NE(bad({"--socket", "s", "--size", "1G", "--store", "host", "--connections", "1", "--fd", "3",
                 "--fd", "4"})
                .find("--fd"),
            std::string::npos);
  EXPECT_NE(bad({"--socket"}).find("--socket"), std::string::npos);
  EXPECT_NE(bad({"--frobnicate"}).find("--frobnicate"), std::string::npos);
  EXPECT_NE(bad({"--socket", "s", "--size", "12X", "--store", "host"}).find("--size: \"12X\" is not a size"),
            std::string::npos);
  EXPECT_NE(
      bad({"--socket", "s", "--size", "1G", "--store", "host", "--connections", "0"}).find("--connections"),
      std::string::npos);
  // Fault injection is for test builds only.
  EXPECT_NE(bad({"--socket", "s", "--size", "1G", "--store", "host", "--test-fail-offset", "1M"})
                .find("--test-fail-offset"),
            std::string::npos);
}

TEST(ExporterCommandLine, DefaultsAndTestHooks) {
  std::vector<std::string_view> a = {"--fd", "3", "--size", "1M", "--store", "host"};
  auto o = parse_command_line(a);
  ASSERT_TRUE(o) << o.error().message;
  cpu_set_t set;
  CPU_ZERO(&set);
  ASSERT_EQ(::sched_getaffinity(0, sizeof set, &set), 0);
  EXPECT_EQ(o->connections, std::min(static_cast<unsigned>(CPU_COUNT(&set)), 16U));
  EXPECT_EQ(o->handshake_timeout_ms, 10000);
  // More --fd than CPUs: a slot each.
  std::vector<std::string_view> many = {"--size", "1M", "--store", "host"};
  const std::vector<std::string> fds = {"3",  "4",  "5",  "6",  "7",  "8",  "9",  "10", "11",
                                        "12", "13", "14", "15", "16", "17", "18", "19"};
  for (const auto& fd : fds) {
    many.push_back("--fd");
    many.push_back(fd);
  }
  auto m = parse_command_line(many);
  ASSERT_TRUE(m) << m.error().message;
  EXPECT_EQ(m->fds.size(), fds.size());
  EXPECT_EQ(m->connections, fds.size());
  std::vector<std::string_view> t = {"--socket",           "s", "--size", "1M", "--store", "host",
                                     "--test-fail-offset", "1M"};
  // The test exporter's hooks come from the test library, not the exporter.
  tierswap::vram::test::TestHooks hooks;
  EXPECT_EQ(hooks.fail_offset, UINT64_MAX);
  const ExporterBuild build = tierswap::vram::test::test_build(hooks);
  auto h = parse_command_line(t, build.options);
  ASSERT_TRUE(h) << h.error().message;
  EXPECT_EQ(hooks.fail_offset, 1U << 20);
  EXPECT_NE(version_text(true).find("test-hooks=yes"), std::string::npos);
  EXPECT_NE(version_text(false).find("test-hooks=no"), std::string::npos);
  EXPECT_EQ(usage_text().find("--test-fail-offset"), std::string::npos);
  EXPECT_NE(usage_text(build.options).find("--test-fail-offset"), std::string::npos);
}

TEST(ExporterCommandLine, Sizes) {
  EXPECT_EQ(parse_size("4096").value(), 4096U);
  EXPECT_EQ(parse_size("512K").value(), 512U << 10);
  EXPECT_EQ(parse_size("1M").value(), 1U << 20);
  EXPECT_EQ(parse_size("1GiB").value(), 1ULL << 30);
  EXPECT_EQ(parse_size("2T").value(), 2ULL << 40);
  EXPECT_FALSE(parse_size("12X"));
  EXPECT_FALSE(parse_size(""));
  EXPECT_FALSE(parse_size("-1"));
  EXPECT_FALSE(parse_size("99999999999999999999"));
  EXPECT_FALSE(parse_size("17179869184T"));
}

}  // namespace
