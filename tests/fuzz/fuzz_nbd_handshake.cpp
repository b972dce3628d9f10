// libFuzzer target: the fixed-newstyle handshake state machine
// (backends/vram/nbd_handshake.hpp), driven the way the server drives it.
//
// Input: 8-byte big-endian export size, 2-byte big-endian transmission
// flags, the client's 4-byte flags, then what a client sends: 16-byte option
// headers each followed by its payload. The run stops where the server would
// stop reading (bad magic, refused header, short payload, transmission, close).
//
// Asserted beyond "no sanitizer report":
//  - the greeting is NBDMAGIC, IHAVEOPT, FIXED_NEWSTYLE|NO_ZEROES;
//  - client flags are accepted only with FIXED_NEWSTYLE and no unknown bit;
//  - accept_option never accepts a length above kMaxOptionLength nor more
//    than kMaxOptions options;
//  - every reply is well formed: for EXPORT_NAME the export-info block
//    (10 bytes with NO_ZEROES, else 134, zero padded); for every other option
//    a sequence of option replies, each with the reply magic, the option
//    echoed, a known reply type, a length that matches the bytes that follow
//    and a body of the right shape (SERVER, INFO export/block size, ACK
//    empty), ending in exactly one ACK or error and nothing after it;
//  - the Next value agrees with the reply: transmission only after
//    EXPORT_NAME or an acknowledged GO, close only after ABORT.
#include <cstddef>
#include <cstdint>
#include <span>

#include "backends/vram/nbd_handshake.hpp"
#include "tests/fuzz/fuzz_check.hpp"

namespace nbd = tierswap::vram::nbd;

namespace {

bool is_error(std::uint32_t type) {
  return (type & 0x80000000U) != 0;
}

bool known_reply(std::uint32_t type) {
  return type == nbd::kRepAck || type == nbd::kRepServer || type == nbd::kRepInfo ||
         (type >= nbd::kRepErrUnsup && type <= nbd::kRepErrTooBig);
}

bool power_of_two(std::uint32_t v) {
  return v != 0 && (v & (v - 1)) == 0;
}

// Checks one INFO body; returns its info type.
std::uint16_t check_info(std::span<const std::byte> body, std::uint64_t size, std::uint16_t tx) {
  FUZZ_CHECK(body.size() >= 2, "NBD_REP_INFO shorter than its type");
  const std::uint16_t type = nbd::load_be16(body.data());
  switch (type) {
    case nbd::kInfoExport:
      FUZZ_CHECK(body.size() == 12, "NBD_INFO_EXPORT is not 12 bytes");
      FUZZ_CHECK(nbd::load_be64(body.data() + 2) == size, "NBD_INFO_EXPORT: wrong export size");
      FUZZ_CHECK(nbd::load_be16(body.data() + 10) == tx, "NBD_INFO_EXPORT: wrong transmission flags");
      break;
    case nbd::kInfoBlockSize: {
      FUZZ_CHECK(body.size() == 14, "NBD_INFO_BLOCK_SIZE is not 14 bytes");
      const std::uint32_t mn = nbd::load_be32(body.data() + 2);
      const std::uint32_t pref = nbd::load_be32(body.data() + 6);
      const std::uint32_t mx = nbd::load_be32(body.data() + 10);
      FUZZ_CHECK(power_of_two(mn) && power_of_two(pref) && mn <= pref && pref <= mx,
                 "NBD_INFO_BLOCK_SIZE: sizes out of order");
      break;
    }
    case nbd::kInfoName:
    case nbd::kInfoDescription:
      break;
    default:
      FUZZ_CHECK(false, "NBD_REP_INFO of an unknown info type");
  }
  return type;
}

// Walks a non-EXPORT_NAME reply; returns the type of its final reply.
std::uint32_t check_option_replies(std::span<const std::byte> out, std::uint32_t option, std::uint64_t size,
                                   std::uint16_t tx) {
  FUZZ_CHECK(!out.empty(), "an option got no reply");
  std::size_t pos = 0;
  std::uint32_t last = 0;
  bool saw_export_info = false;
  while (pos < out.size()) {
    FUZZ_CHECK(last != nbd::kRepAck && !is_error(last), "reply after the final ACK or error");
    FUZZ_CHECK(out.size() - pos >= nbd::kOptReplyHeaderSize, "truncated option reply header");
    const std::byte* h = out.data() + pos;
    FUZZ_CHECK(nbd::load_be64(h) == nbd::kOptReplyMagic, "option reply without the reply magic");
    FUZZ_CHECK(nbd::load_be32(h + 8) == option, "option reply names another option");
    const std::uint32_t type = nbd::load_be32(h + 12);
    const std::uint32_t len = nbd::load_be32(h + 16);
    FUZZ_CHECK(known_reply(type), "unknown option reply type");
    pos += nbd::kOptReplyHeaderSize;
    FUZZ_CHECK(len <= out.size() - pos, "option reply length runs past the bytes sent");
    std::span<const std::byte> body = out.subspan(pos, len);
    if (type == nbd::kRepAck) FUZZ_CHECK(len == 0, "NBD_REP_ACK with data");
    if (type == nbd::kRepServer) {
      FUZZ_CHECK(option == nbd::kOptList, "NBD_REP_SERVER outside NBD_OPT_LIST");
      FUZZ_CHECK(len >= 4 && nbd::load_be32(body.data()) <= len - 4, "NBD_REP_SERVER: bad name length");
    }
    if (type == nbd::kRepInfo) {
      FUZZ_CHECK(option == nbd::kOptInfo || option == nbd::kOptGo, "NBD_REP_INFO outside INFO/GO");
      if (check_info(body, size, tx) == nbd::kInfoExport) saw_export_info = true;
    }
    pos += len;
    last = type;
  }
  FUZZ_CHECK(last == nbd::kRepAck || is_error(last), "reply does not end in ACK or an error");
  if ((option == nbd::kOptInfo || option == nbd::kOptGo) && last == nbd::kRepAck)
    FUZZ_CHECK(saw_export_info, "INFO/GO acknowledged without NBD_INFO_EXPORT");
  return last;
}

void check_export_name_reply(std::span<const std::byte> out, bool no_zeroes, std::uint64_t size,
                             std::uint16_t tx) {
  FUZZ_CHECK(out.size() == (no_zeroes ? 10U : 134U), "EXPORT_NAME reply has the wrong length");
  FUZZ_CHECK(nbd::load_be64(out.data()) == size, "EXPORT_NAME reply: wrong export size");
  FUZZ_CHECK(nbd::load_be16(out.data() + 8) == tx, "EXPORT_NAME reply: wrong transmission flags");
  for (std::size_t i = 10; i < out.size(); ++i)
    FUZZ_CHECK(out[i] == std::byte{0}, "EXPORT_NAME reply: padding is not zero");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::span<const std::byte> in(reinterpret_cast<const std::byte*>(data), size);
  if (in.size() < 14) return 0;
  const std::uint64_t export_size = nbd::load_be64(in.data());
  const std::uint16_t tx = nbd::load_be16(in.data() + 8);
  const std::uint32_t client_flags = nbd::load_be32(in.data() + 10);
  in = in.subspan(14);

  nbd::Handshake hs(export_size, tx);
  std::span<const std::byte> greeting = hs.greeting();
  FUZZ_CHECK(greeting.size() == 18, "greeting is not 18 bytes");
  FUZZ_CHECK(nbd::load_be64(greeting.data()) == nbd::kNbdMagic, "greeting: no NBDMAGIC");
  FUZZ_CHECK(nbd::load_be64(greeting.data() + 8) == nbd::kIHaveOpt, "greeting: no IHAVEOPT");
  FUZZ_CHECK(nbd::load_be16(greeting.data() + 16) == (nbd::kFlagFixedNewstyle | nbd::kFlagNoZeroes),
             "greeting: unexpected handshake flags");

  const bool flags_ok = hs.on_client_flags(client_flags);
  const bool flags_valid = (client_flags & nbd::kClientFlagFixedNewstyle) != 0 &&
                           (client_flags & ~(nbd::kClientFlagFixedNewstyle | nbd::kClientFlagNoZeroes)) == 0;
  FUZZ_CHECK(flags_ok == flags_valid, "client flags accepted or refused wrongly");
  if (!flags_ok) return 0;
  const bool no_zeroes = (client_flags & nbd::kClientFlagNoZeroes) != 0;

  unsigned accepted = 0;
  while (in.size() >= nbd::kOptionHeaderSize) {
    nbd::OptionHeader oh;
    const bool magic_ok = nbd::load_be64(in.data()) == nbd::kIHaveOpt;
    const bool parsed = nbd::parse_option_header(in.first<nbd::kOptionHeaderSize>(), oh);
    FUZZ_CHECK(parsed == magic_ok, "parse_option_header must accept exactly IHAVEOPT");
    if (!parsed) return 0;
    FUZZ_CHECK(oh.option == nbd::load_be32(in.data() + 8) && oh.length == nbd::load_be32(in.data() + 12),
               "parse_option_header misread the header");
    in = in.subspan(nbd::kOptionHeaderSize);

    const bool ok = hs.accept_option(oh);
    if (oh.length > nbd::kMaxOptionLength) FUZZ_CHECK(!ok, "option longer than kMaxOptionLength accepted");
    if (!ok) return 0;
    ++accepted;
    FUZZ_CHECK(accepted <= nbd::kMaxOptions, "more than kMaxOptions options accepted");
    if (in.size() < oh.length) return 0;  // the client hung up mid-option
    std::span<const std::byte> payload = in.first(oh.length);
    in = in.subspan(oh.length);

    const nbd::Handshake::Next next = hs.on_option(oh.option, payload);
    std::span<const std::byte> out = hs.reply();
    if (oh.option == nbd::kOptExportName) {
      check_export_name_reply(out, no_zeroes, export_size, tx);
      FUZZ_CHECK(next == nbd::Handshake::Next::kTransmission, "EXPORT_NAME must end the handshake");
      return 0;
    }
    const std::uint32_t last = check_option_replies(out, oh.option, export_size, tx);
    switch (next) {
      case nbd::Handshake::Next::kTransmission:
        FUZZ_CHECK(oh.option == nbd::kOptGo && last == nbd::kRepAck,
                   "transmission without an acknowledged GO");
        return 0;
      case nbd::Handshake::Next::kClose:
        FUZZ_CHECK(oh.option == nbd::kOptAbort, "close after an option other than ABORT");
        return 0;
      case nbd::Handshake::Next::kContinue:
        FUZZ_CHECK(oh.option != nbd::kOptAbort, "ABORT did not close");
        FUZZ_CHECK(!(oh.option == nbd::kOptGo && last == nbd::kRepAck),
                   "acknowledged GO did not start transmission");
        break;
    }
  }
  return 0;
}
