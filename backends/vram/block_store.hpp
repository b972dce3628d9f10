// BlockStore: the storage behind tierswap-nbd's export.
//
// Contract (every implementation):
// - Offsets and lengths are bytes. Callers guarantee offset + length <= size()
//   and both multiples of block_size() (512); the protocol layer rejects
//   anything else before it reaches a store.
// - No allocation and no blocking on anything but the device itself in
//   read/write/zero/trim/flush/submit: every buffer is allocated in the
//   constructor or create().
// - Errors are errno values: EIO when the medium failed (the store then marks
//   itself failed() and every later call returns EIO: it never returns
//   success with wrong data), ENOSPC/EINVAL never reach here.
// - Thread-safety: calls may come from several threads at once; requests to
//   overlapping ranges are ordered by the caller (the NBD client never has
//   two overlapping writes in flight without waiting for one of them).
// - submit() carries a batch of requests from any number of connections; the
//   store completes every entry (sets .error) before it returns. A store that
//   gains from batching (CudaStore) moves the whole batch in one transfer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace tierswap::vram {

enum class Op : std::uint8_t { read, write, zero, trim, flush };

struct IoRequest {
  Op op = Op::read;
  std::uint64_t offset = 0;
  std::uint32_t length = 0;
  // read: filled by the store; write: the payload. Unused for zero/trim/flush.
  // Points into memory the caller owns for the duration of the call (for
  // CudaStore, ideally its pinned staging from staging_buffer()).
  std::byte* data = nullptr;
  int error = 0;  // set by the store: 0 or an errno value
};

class BlockStore {
 public:
  virtual ~BlockStore() = default;

  [[nodiscard]] virtual std::uint64_t size() const = 0;
  [[nodiscard]] virtual std::uint32_t block_size() const { return 512; }
  [[nodiscard]] virtual const char* name() const = 0;  // "host", "cuda"
  [[nodiscard]] virtual bool failed() const = 0;

  // Return 0 or an errno value.
  virtual int read(std::uint64_t offset, std::span<std::byte> out) = 0;
  virtual int write(std::uint64_t offset, std::span<const std::byte> in) = 0;
  virtual int zero(std::uint64_t offset, std::uint64_t length) = 0;
  virtual int trim(std::uint64_t offset, std::uint64_t length) = 0;
  virtual int flush() = 0;

  // Completes every request in the batch. Default: one call each.
  virtual void submit(std::span<IoRequest> batch);

  // Whether submit() gains from larger batches (CudaStore: one launch moves
  // the whole batch) so that the server should gather requests from all
  // connections before submitting, or whether requests are best served inline
  // on the connection's own thread (HostStore).
  [[nodiscard]] virtual bool prefers_batching() const { return false; }

  // Memory for request payloads, allocated by the server before it serves
  // (never on the I/O path). The store moves data to and from these buffers
  // fastest: CudaStore returns pinned, device-mapped host memory, so its
  // gather/scatter kernel reads and writes them directly (no staging copy).
  // Default: page-aligned, zeroed heap memory. nullptr on failure.
  [[nodiscard]] virtual std::byte* allocate_buffer(std::size_t bytes);
  virtual void free_buffer(std::byte* p, std::size_t bytes);
};

}  // namespace tierswap::vram
