#include "backends/vram/nbd_handshake.hpp"

#include <cstring>

namespace tierswap::vram::nbd {

std::span<const std::byte> Handshake::greeting() {
  out_len_ = 0;
  std::byte b[18];
  store_be64(b, kNbdMagic);
  store_be64(b + 8, kIHaveOpt);
  store_be16(b + 16, kFlagFixedNewstyle | kFlagNoZeroes);
  append(b, sizeof b);
  return reply();
}

bool Handshake::on_client_flags(std::uint32_t flags) {
  if ((flags & kClientFlagFixedNewstyle) == 0) return false;
  if ((flags & ~(kClientFlagFixedNewstyle | kClientFlagNoZeroes)) != 0) return false;
  no_zeroes_ = (flags & kClientFlagNoZeroes) != 0;
  return true;
}

bool Handshake::accept_option(const OptionHeader& header) {
  if (++options_ > kMaxOptions) return false;
  return header.length <= kMaxOptionLength;
}

void Handshake::append(const void* p, std::size_t n) {
  // Callers stay far below the buffer; never overflow even if they did not.
  if (n > out_.size() - out_len_) n = out_.size() - out_len_;
  std::memcpy(out_.data() + out_len_, p, n);
  out_len_ += n;
}

void Handshake::opt_reply(std::uint32_t option, std::uint32_t type, std::span<const std::byte> data) {
  std::byte h[kOptReplyHeaderSize];
  serialize_opt_reply_header(option, type, static_cast<std::uint32_t>(data.size()),
                             std::span<std::byte, kOptReplyHeaderSize>(h, kOptReplyHeaderSize));
  append(h, sizeof h);
  if (!data.empty()) append(data.data(), data.size());
}

Handshake::Next Handshake::on_option(std::uint32_t option, std::span<const std::byte> data) {
  out_len_ = 0;
  switch (option) {
    case kOptExportName: {
      // No way to report an error: any name is the export.
      std::byte b[10 + 124]{};
      store_be64(b, size_);
      store_be16(b + 8, tx_flags_);
      append(b, no_zeroes_ ? 10 : sizeof b);
      return Next::kTransmission;
    }
    case kOptAbort:
      opt_reply(option, kRepAck);
      return Next::kClose;
    case kOptList: {
      if (!data.empty()) {
        opt_reply(option, kRepErrInvalid);
        return Next::kContinue;
      }
      std::byte name_len[4];
      store_be32(name_len, 0);  // the default export, name ""
      opt_reply(option, kRepServer, name_len);
      opt_reply(option, kRepAck);
      return Next::kContinue;
    }
    case kOptInfo:
    case kOptGo:
      return info_or_go(option, data);
    default:  // STARTTLS, STRUCTURED_REPLY, META_CONTEXT, unknown
      opt_reply(option, kRepErrUnsup);
      return Next::kContinue;
  }
}

Handshake::Next Handshake::info_or_go(std::uint32_t option, std::span<const std::byte> data) {
  // u32 name length, name, u16 number of requests, u16 requests[].
  if (data.size() < 6) {
    opt_reply(option, kRepErrInvalid);
    return Next::kContinue;
  }
  const std::uint32_t name_len = load_be32(data.data());
  if (name_len > data.size() - 6) {
    opt_reply(option, kRepErrInvalid);
    return Next::kContinue;
  }
  const std::uint16_t n_info = load_be16(data.data() + 4 + name_len);
  if (data.size() != 6 + name_len + 2ULL * n_info) {
    opt_reply(option, kRepErrInvalid);
    return Next::kContinue;
  }
  std::byte exp[12];
  store_be16(exp, kInfoExport);
  store_be64(exp + 2, size_);
  store_be16(exp + 10, tx_flags_);
  opt_reply(option, kRepInfo, exp);
  // Sent whether or not asked for: the server enforces these sizes.
  std::byte bs[14];
  store_be16(bs, kInfoBlockSize);
  store_be32(bs + 2, kMinBlock);
  store_be32(bs + 6, kPreferredBlock);
  store_be32(bs + 10, kMaxBlock);
  opt_reply(option, kRepInfo, bs);
  opt_reply(option, kRepAck);
  return option == kOptGo ? Next::kTransmission : Next::kContinue;
}

}  // namespace tierswap::vram::nbd
