// The fixed-newstyle NBD handshake as a state machine with no I/O: the
// server feeds it what the client sent and writes out what it returns.
// Used by the server's connection threads and directly by unit/fuzz tests.
//
// Supported options: EXPORT_NAME, ABORT, LIST, INFO, GO. STRUCTURED_REPLY
// and STARTTLS get NBD_REP_ERR_UNSUP (tierswap-nbd sends simple replies
// only, which is what the Linux kernel reads); unknown options likewise.
// Every export name is accepted and names the one export.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

#include "backends/vram/nbd_protocol.hpp"

namespace tierswap::vram::nbd {

class Handshake {
 public:
  enum class Next {
    kContinue,      // read another option
    kTransmission,  // send the reply, then enter the transmission phase
    kClose,         // send the reply (if any), then close the connection
  };

  explicit Handshake(std::uint64_t export_size, std::uint16_t transmission_flags = kTransmissionFlags)
      : size_(export_size), tx_flags_(transmission_flags) {}

  // The 18 bytes the server sends on connect.
  [[nodiscard]] std::span<const std::byte> greeting();

  // The client's 4-byte flags. false: close (fixed newstyle missing or
  // unknown bits).
  bool on_client_flags(std::uint32_t flags);

  // Checked before the option's payload is read: false means close without
  // reading it (huge option length, or too many options: a flood).
  bool accept_option(const OptionHeader& header);

  // Handles one option and its payload; the bytes to send are in reply().
  Next on_option(std::uint32_t option, std::span<const std::byte> data);

  [[nodiscard]] std::span<const std::byte> reply() const { return {out_.data(), out_len_}; }
  [[nodiscard]] unsigned options_seen() const { return options_; }

 private:
  void append(const void* p, std::size_t n);
  void opt_reply(std::uint32_t option, std::uint32_t type, std::span<const std::byte> data = {});
  Next info_or_go(std::uint32_t option, std::span<const std::byte> data);

  std::uint64_t size_;
  std::uint16_t tx_flags_;
  bool no_zeroes_ = false;
  unsigned options_ = 0;
  std::array<std::byte, 512> out_{};
  std::size_t out_len_ = 0;
};

}  // namespace tierswap::vram::nbd
