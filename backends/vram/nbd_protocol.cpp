#include "backends/vram/nbd_protocol.hpp"

#include <cerrno>

namespace tierswap::vram::nbd {

bool parse_request(std::span<const std::byte, kRequestSize> in, Request& out) {
  const std::byte* p = in.data();
  if (load_be32(p) != kRequestMagic) return false;
  out.flags = load_be16(p + 4);
  out.type = load_be16(p + 6);
  out.cookie = load_be64(p + 8);
  out.offset = load_be64(p + 16);
  out.length = load_be32(p + 24);
  return true;
}

void serialize_request(const Request& r, std::span<std::byte, kRequestSize> out) {
  std::byte* p = out.data();
  store_be32(p, kRequestMagic);
  store_be16(p + 4, r.flags);
  store_be16(p + 6, r.type);
  store_be64(p + 8, r.cookie);
  store_be64(p + 16, r.offset);
  store_be32(p + 24, r.length);
}

namespace {

// Flags each command accepts. FUA is accepted on every command (proto.md: a
// client MAY set it on any request; it only has effect on writes); NO_HOLE
// only on WRITE_ZEROES. DF and REQ_ONE need structured replies, FAST_ZERO
// was not advertised: EINVAL.
std::uint16_t allowed_flags(std::uint16_t type) {
  switch (type) {
    case kCmdWriteZeroes:
      return kCmdFlagFua | kCmdFlagNoHole;
    case kCmdRead:
    case kCmdWrite:
    case kCmdTrim:
    case kCmdFlush:
    case kCmdDisc:
      return kCmdFlagFua;
    default:
      return 0;
  }
}

}  // namespace

int validate_request(const Request& r, std::uint64_t export_size) {
  switch (r.type) {
    case kCmdRead:
    case kCmdWrite:
    case kCmdTrim:
    case kCmdWriteZeroes:
    case kCmdFlush:
    case kCmdDisc:
      break;
    default:
      return EINVAL;
  }
  if ((r.flags & ~allowed_flags(r.type)) != 0) return EINVAL;
  if (r.type == kCmdFlush || r.type == kCmdDisc) return 0;  // offset/length ignored

  const bool writes = r.type == kCmdWrite || r.type == kCmdWriteZeroes;
  if (r.length == 0) return EINVAL;
  if (r.length > kMaxBlock && r.type != kCmdTrim && r.type != kCmdWriteZeroes) return EINVAL;
  if (r.offset % kMinBlock != 0 || r.length % kMinBlock != 0) return EINVAL;
  // offset + length past the end, written so that it cannot overflow.
  if (r.offset > export_size || r.length > export_size - r.offset) return writes ? ENOSPC : EINVAL;
  return 0;
}

void serialize_simple_reply(std::uint32_t error, std::uint64_t cookie,
                            std::span<std::byte, kSimpleReplySize> out) {
  std::byte* p = out.data();
  store_be32(p, kSimpleReplyMagic);
  store_be32(p + 4, error);
  store_be64(p + 8, cookie);
}

bool parse_simple_reply(std::span<const std::byte, kSimpleReplySize> in, SimpleReply& out) {
  const std::byte* p = in.data();
  if (load_be32(p) != kSimpleReplyMagic) return false;
  out.error = load_be32(p + 4);
  out.cookie = load_be64(p + 8);
  return true;
}

std::uint32_t wire_error(int err) {
  switch (err) {
    case 0:
    case EPERM:
    case EIO:
    case ENOMEM:
    case EINVAL:
    case ENOSPC:
    case EOVERFLOW:
    case ENOTSUP:
    case ESHUTDOWN:
      return static_cast<std::uint32_t>(err);
    default:
      return EIO;
  }
}

bool parse_option_header(std::span<const std::byte, kOptionHeaderSize> in, OptionHeader& out) {
  const std::byte* p = in.data();
  if (load_be64(p) != kIHaveOpt) return false;
  out.option = load_be32(p + 8);
  out.length = load_be32(p + 12);
  return true;
}

void serialize_opt_reply_header(std::uint32_t option, std::uint32_t reply_type, std::uint32_t length,
                                std::span<std::byte, kOptReplyHeaderSize> out) {
  std::byte* p = out.data();
  store_be64(p, kOptReplyMagic);
  store_be32(p + 8, option);
  store_be32(p + 12, reply_type);
  store_be32(p + 16, length);
}

}  // namespace tierswap::vram::nbd
