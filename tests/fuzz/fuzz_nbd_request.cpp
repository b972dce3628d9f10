// libFuzzer target: NBD transmission-phase request parsing and validation
// (backends/vram/nbd_protocol.hpp).
//
// Input: any number of 36-byte records, each a 28-byte request header as it
// comes off the wire followed by an 8-byte big-endian export size.
//
// Asserted beyond "no sanitizer report":
//  - parse_request accepts exactly the headers with the request magic and
//    serialize_request gives back the same 28 bytes;
//  - validate_request answers 0, EINVAL or ENOSPC (ENOSPC only for writes);
//  - an accepted READ/WRITE/TRIM/WRITE_ZEROES has length > 0, 512-aligned
//    offset and length, offset + length neither overflowing nor past the
//    export; an accepted READ/WRITE is at most kMaxBlock (32 MiB) long.
//    TRIM and WRITE_ZEROES carry no payload and may be longer: that is
//    validate_request's documented choice, checked here as such;
//  - unknown commands and flags a command does not take are refused;
//  - must_drop_after holds exactly for refused writes longer than kMaxBlock;
//  - the simple reply for the answer round-trips with the same cookie.
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "backends/vram/nbd_protocol.hpp"
#include "tests/fuzz/fuzz_check.hpp"

namespace nbd = tierswap::vram::nbd;

namespace {

bool is_data_command(std::uint16_t t) {
  return t == nbd::kCmdRead || t == nbd::kCmdWrite || t == nbd::kCmdTrim || t == nbd::kCmdWriteZeroes;
}

void one(const std::byte* rec) {
  nbd::Request r;
  const bool magic_ok = nbd::load_be32(rec) == nbd::kRequestMagic;
  const bool parsed =
      nbd::parse_request(std::span<const std::byte, nbd::kRequestSize>(rec, nbd::kRequestSize), r);
  FUZZ_CHECK(parsed == magic_ok, "parse_request must accept exactly the request magic");
  if (!parsed) return;

  std::byte back[nbd::kRequestSize];
  nbd::serialize_request(r, back);
  FUZZ_CHECK(std::memcmp(back, rec, nbd::kRequestSize) == 0, "serialize_request(parse_request(x)) != x");

  const std::uint64_t export_size = nbd::load_be64(rec + nbd::kRequestSize);
  const int err = nbd::validate_request(r, export_size);
  FUZZ_CHECK(err == 0 || err == EINVAL || err == ENOSPC, "validate_request: unexpected errno");

  const bool writes = r.type == nbd::kCmdWrite || r.type == nbd::kCmdWriteZeroes;
  if (err == ENOSPC) FUZZ_CHECK(writes, "ENOSPC for a command that does not write");

  const bool known = is_data_command(r.type) || r.type == nbd::kCmdFlush || r.type == nbd::kCmdDisc;
  if (!known) FUZZ_CHECK(err == EINVAL, "unknown command accepted");
  const std::uint16_t never =
      nbd::kCmdFlagDf | nbd::kCmdFlagReqOne | nbd::kCmdFlagFastZero | static_cast<std::uint16_t>(~0x1fU);
  if (r.flags & never) FUZZ_CHECK(err != 0, "flag that was never advertised accepted");
  if ((r.flags & nbd::kCmdFlagNoHole) && r.type != nbd::kCmdWriteZeroes)
    FUZZ_CHECK(err != 0, "NO_HOLE accepted on a command other than WRITE_ZEROES");

  if (err == 0 && is_data_command(r.type)) {
    FUZZ_CHECK(r.length != 0, "zero-length request accepted");
    FUZZ_CHECK(r.offset % nbd::kMinBlock == 0 && r.length % nbd::kMinBlock == 0,
               "misaligned request accepted");
    std::uint64_t end = 0;
    FUZZ_CHECK(!__builtin_add_overflow(r.offset, std::uint64_t{r.length}, &end), "offset + length overflows");
    FUZZ_CHECK(end <= export_size, "request past the end of the export accepted");
    if (r.type == nbd::kCmdRead || r.type == nbd::kCmdWrite)
      FUZZ_CHECK(r.length <= nbd::kMaxBlock, "READ/WRITE longer than 32 MiB accepted");
  }

  const bool drop = nbd::must_drop_after(r, err);
  FUZZ_CHECK(drop == (err != 0 && r.type == nbd::kCmdWrite && r.length > nbd::kMaxBlock),
             "must_drop_after disagrees with the oversized-write rule");

  const std::uint32_t wire = nbd::wire_error(err);
  FUZZ_CHECK(wire == static_cast<std::uint32_t>(err), "wire_error changed a protocol errno");
  std::byte reply[nbd::kSimpleReplySize];
  nbd::serialize_simple_reply(wire, r.cookie, reply);
  nbd::SimpleReply sr;
  FUZZ_CHECK(nbd::parse_simple_reply(reply, sr), "own simple reply has a bad magic");
  FUZZ_CHECK(sr.error == wire && sr.cookie == r.cookie, "simple reply does not round-trip");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  constexpr std::size_t kRecord = nbd::kRequestSize + 8;
  const auto* p = reinterpret_cast<const std::byte*>(data);
  for (std::size_t off = 0; off + kRecord <= size; off += kRecord) one(p + off);
  // Any errno maps onto the protocol's set.
  if (size >= 4) {
    const int e = static_cast<int>(nbd::load_be32(p));
    const std::uint32_t w = nbd::wire_error(e);
    FUZZ_CHECK(w == 0 || w == EPERM || w == EIO || w == ENOMEM || w == EINVAL || w == ENOSPC ||
                   w == EOVERFLOW || w == ENOTSUP || w == ESHUTDOWN,
               "wire_error outside the protocol's errno set");
    FUZZ_CHECK((w == 0) == (e == 0), "wire_error hides an error or invents one");
  }
  return 0;
}
