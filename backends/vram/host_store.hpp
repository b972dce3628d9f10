// HostStore: the export kept in host RAM (tests, CPU machines, and the spill
// target of a demoted VRAM tier).
//
// One anonymous mapping per chunk (chunk_bytes, 64 MiB by default, the last
// one shorter), page-aligned, zero at start; locked with mlock() when `lock`
// is set (the exporter also calls mlockall). A released chunk is unmapped
// (its RAM goes back to the system) and mapped again by restore_chunk().
// Reads and writes are memcpy, split at chunk boundaries; zero is memset;
// trim is a no-op (proto.md leaves trimmed contents unspecified, and a
// locked page cannot be given back).
// Thread-safe without locks: the caller orders overlapping requests and
// keeps I/O away from a chunk while it is released or restored.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "backends/vram/chunked_store.hpp"
#include "common/result.hpp"

namespace tierswap::vram {

struct HostStoreOptions {
  std::uint64_t size = 0;                          // bytes, a multiple of 512
  std::uint64_t chunk_bytes = kDefaultChunkBytes;  // a multiple of 4096
  bool lock = true;                                // mlock the whole export
  // Test knob: report prefers_batching() so the server takes its gather path
  // (the one CudaStore uses) with a store that runs anywhere.
  bool prefer_batching = false;
};

class HostStore final : public ChunkedStore {
 public:
  static Result<std::unique_ptr<HostStore>> create(const HostStoreOptions& options);
  ~HostStore() override;

  [[nodiscard]] std::uint64_t size() const override { return size_; }
  [[nodiscard]] const char* name() const override { return "host"; }
  // RAM does not fail; the test exporter injects failures by wrapping the
  // store (tests/nbd/exporter_test_hooks.hpp).
  [[nodiscard]] bool failed() const override { return false; }
  [[nodiscard]] bool prefers_batching() const override { return prefer_batching_; }

  int read(std::uint64_t offset, std::span<std::byte> out) override;
  int write(std::uint64_t offset, std::span<const std::byte> in) override;
  int zero(std::uint64_t offset, std::uint64_t length) override;
  int trim(std::uint64_t offset, std::uint64_t length) override;
  int flush() override;

  [[nodiscard]] std::uint64_t chunk_bytes() const override { return chunk_bytes_; }
  [[nodiscard]] bool chunk_resident(std::uint32_t i) const override { return chunks_[i] != nullptr; }
  Result<void> release_chunk(std::uint32_t i) override;
  Result<void> restore_chunk(std::uint32_t i) override;
  [[nodiscard]] std::uint64_t resident_bytes() const override { return resident_; }

  // Counts submit() calls and requests, so that tests can see batching work.
  [[nodiscard]] std::uint64_t batches() const { return batches_; }
  void submit(std::span<IoRequest> batch) override;

 private:
  HostStore() = default;
  [[nodiscard]] std::uint64_t mapped_length(std::uint32_t i) const;
  // f(chunk memory, length, bytes of the request before it) for each chunk
  // piece of [offset, offset + length); EIO for a released chunk.
  template <class F>
  int each_piece(std::uint64_t offset, std::uint64_t length, F&& f);

  std::vector<std::byte*> chunks_;
  std::uint64_t size_ = 0;
  std::uint64_t chunk_bytes_ = kDefaultChunkBytes;
  bool lock_ = true;
  std::atomic<std::uint64_t> resident_{0};
  bool prefer_batching_ = false;
  std::atomic<std::uint64_t> batches_{0};
};

}  // namespace tierswap::vram
