// NBD wire format (doc/proto.md of the NBD project), split from socket I/O:
// bytes in, values out. Both the server and the fuzz/unit tests use it.
//
// All integers on the wire are big-endian. Parsers take exactly the bytes of
// one header and never allocate; the handshake's option handling lives in
// nbd_handshake.hpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace tierswap::vram::nbd {

// --- magics ---------------------------------------------------------------
inline constexpr std::uint64_t kNbdMagic = 0x4e42444d41474943ULL;  // "NBDMAGIC"
inline constexpr std::uint64_t kIHaveOpt = 0x49484156454F5054ULL;  // "IHAVEOPT"
inline constexpr std::uint64_t kOptReplyMagic = 0x0003e889045565a9ULL;
inline constexpr std::uint32_t kRequestMagic = 0x25609513U;
inline constexpr std::uint32_t kSimpleReplyMagic = 0x67446698U;

// --- handshake flags ------------------------------------------------------
inline constexpr std::uint16_t kFlagFixedNewstyle = 1U << 0;
inline constexpr std::uint16_t kFlagNoZeroes = 1U << 1;
inline constexpr std::uint32_t kClientFlagFixedNewstyle = 1U << 0;
inline constexpr std::uint32_t kClientFlagNoZeroes = 1U << 1;

// --- transmission flags ---------------------------------------------------
inline constexpr std::uint16_t kTxHasFlags = 1U << 0;
inline constexpr std::uint16_t kTxReadOnly = 1U << 1;
inline constexpr std::uint16_t kTxSendFlush = 1U << 2;
inline constexpr std::uint16_t kTxSendFua = 1U << 3;
inline constexpr std::uint16_t kTxSendTrim = 1U << 5;
inline constexpr std::uint16_t kTxSendWriteZeroes = 1U << 6;
inline constexpr std::uint16_t kTxCanMultiConn = 1U << 8;

// What tierswap-nbd advertises.
inline constexpr std::uint16_t kTransmissionFlags =
    kTxHasFlags | kTxSendFlush | kTxSendFua | kTxSendTrim | kTxSendWriteZeroes | kTxCanMultiConn;

// --- options --------------------------------------------------------------
enum Option : std::uint32_t {
  kOptExportName = 1,
  kOptAbort = 2,
  kOptList = 3,
  kOptStartTls = 5,
  kOptInfo = 6,
  kOptGo = 7,
  kOptStructuredReply = 8,
};

enum OptReply : std::uint32_t {
  kRepAck = 1,
  kRepServer = 2,
  kRepInfo = 3,
  kRepErrUnsup = 0x80000001U,
  kRepErrPolicy = 0x80000002U,
  kRepErrInvalid = 0x80000003U,
  kRepErrPlatform = 0x80000004U,
  kRepErrTlsReqd = 0x80000005U,
  kRepErrUnknown = 0x80000006U,
  kRepErrShutdown = 0x80000007U,
  kRepErrBlockSizeReqd = 0x80000008U,
  kRepErrTooBig = 0x80000009U,
};

enum InfoType : std::uint16_t {
  kInfoExport = 0,
  kInfoName = 1,
  kInfoDescription = 2,
  kInfoBlockSize = 3,
};

// --- commands -------------------------------------------------------------
enum Command : std::uint16_t {
  kCmdRead = 0,
  kCmdWrite = 1,
  kCmdDisc = 2,
  kCmdFlush = 3,
  kCmdTrim = 4,
  kCmdCache = 5,
  kCmdWriteZeroes = 6,
  kCmdBlockStatus = 7,
};

inline constexpr std::uint16_t kCmdFlagFua = 1U << 0;
inline constexpr std::uint16_t kCmdFlagNoHole = 1U << 1;
inline constexpr std::uint16_t kCmdFlagDf = 1U << 2;
inline constexpr std::uint16_t kCmdFlagReqOne = 1U << 3;
inline constexpr std::uint16_t kCmdFlagFastZero = 1U << 4;

// Block sizes advertised in NBD_INFO_BLOCK_SIZE. Requests must be multiples
// of kMinBlock (EINVAL otherwise) and at most kMaxBlock bytes long.
inline constexpr std::uint32_t kMinBlock = 512;
inline constexpr std::uint32_t kPreferredBlock = 4096;
inline constexpr std::uint32_t kMaxBlock = 32U << 20;

// Limits on what a client may send during the handshake before we close.
inline constexpr std::uint32_t kMaxOptionLength = 4096 + 8;  // name <= 4096 + info list
inline constexpr unsigned kMaxOptions = 64;

inline constexpr std::size_t kRequestSize = 28;
inline constexpr std::size_t kSimpleReplySize = 16;
inline constexpr std::size_t kOptionHeaderSize = 16;
inline constexpr std::size_t kOptReplyHeaderSize = 20;

// --- byte order -----------------------------------------------------------
inline std::uint16_t load_be16(const std::byte* p) {
  return static_cast<std::uint16_t>((std::to_integer<unsigned>(p[0]) << 8) | std::to_integer<unsigned>(p[1]));
}
inline std::uint32_t load_be32(const std::byte* p) {
  return (std::uint32_t{load_be16(p)} << 16) | load_be16(p + 2);
}
inline std::uint64_t load_be64(const std::byte* p) {
  return (std::uint64_t{load_be32(p)} << 32) | load_be32(p + 4);
}
inline void store_be16(std::byte* p, std::uint16_t v) {
  p[0] = std::byte(v >> 8);
  p[1] = std::byte(v);
}
inline void store_be32(std::byte* p, std::uint32_t v) {
  store_be16(p, static_cast<std::uint16_t>(v >> 16));
  store_be16(p + 2, static_cast<std::uint16_t>(v));
}
inline void store_be64(std::byte* p, std::uint64_t v) {
  store_be32(p, static_cast<std::uint32_t>(v >> 32));
  store_be32(p + 4, static_cast<std::uint32_t>(v));
}

// --- transmission phase ---------------------------------------------------
struct Request {
  std::uint16_t flags = 0;
  std::uint16_t type = 0;
  std::uint64_t cookie = 0;  // "handle": echoed in the reply
  std::uint64_t offset = 0;
  std::uint32_t length = 0;
};

// Parses one 28-byte request header. false: bad magic (close the connection).
bool parse_request(std::span<const std::byte, kRequestSize> in, Request& out);
void serialize_request(const Request& r, std::span<std::byte, kRequestSize> out);

// Whether a request carries a payload the server must read (or drain).
inline bool has_payload(const Request& r) {
  return r.type == kCmdWrite;
}

// Checks a parsed request against the export (size, alignment, flags).
// Returns 0 when the request may go to the store, else the errno for the
// reply: EINVAL (unknown command or flag, misaligned, zero length, read/trim
// past the end, offset + length overflowing), ENOSPC (write or write-zeroes
// past the end), EOVERFLOW never. DISC returns 0.
int validate_request(const Request& r, std::uint64_t export_size);

// Whether the connection must be dropped after answering (the payload of an
// oversized write cannot be skipped cheaply).
inline bool must_drop_after(const Request& r, int error) {
  return error != 0 && has_payload(r) && r.length > kMaxBlock;
}

void serialize_simple_reply(std::uint32_t error, std::uint64_t cookie,
                            std::span<std::byte, kSimpleReplySize> out);

struct SimpleReply {
  std::uint32_t error = 0;
  std::uint64_t cookie = 0;
};
bool parse_simple_reply(std::span<const std::byte, kSimpleReplySize> in, SimpleReply& out);

// Maps a store errno onto the small set the protocol defines (EPERM, EIO,
// ENOMEM, EINVAL, ENOSPC, EOVERFLOW, ENOTSUP, ESHUTDOWN); anything else → EIO.
std::uint32_t wire_error(int err);

// --- handshake pieces -----------------------------------------------------
struct OptionHeader {
  std::uint32_t option = 0;
  std::uint32_t length = 0;
};
// false: bad magic.
bool parse_option_header(std::span<const std::byte, kOptionHeaderSize> in, OptionHeader& out);

void serialize_opt_reply_header(std::uint32_t option, std::uint32_t reply_type, std::uint32_t length,
                                std::span<std::byte, kOptReplyHeaderSize> out);

}  // namespace tierswap::vram::nbd
