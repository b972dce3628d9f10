// The test exporter's fault injection (tierswap-nbd-testhooks, never
// installed): the installed tierswap-nbd has no test option and no failing
// store; tests that need one run this build instead.
//
//   --test-fail-offset OFFSET   requests touching [OFFSET, OFFSET + 512)
//                               fail with EIO and the store stays failed
//                               (the CudaStore failure contract), whatever
//                               the store (host, host-batch).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "backends/vram/block_store.hpp"
#include "backends/vram/exporter.hpp"

namespace tierswap::vram::test {

struct TestHooks {
  std::uint64_t fail_offset = UINT64_MAX;  // UINT64_MAX: no injected failure
};

// A store that fails as --test-fail-offset says and forwards the rest.
class FailingStore final : public BlockStore {
 public:
  FailingStore(std::unique_ptr<BlockStore> inner, std::uint64_t fail_offset)
      : inner_(std::move(inner)), fail_offset_(fail_offset) {}

  [[nodiscard]] std::uint64_t size() const override { return inner_->size(); }
  [[nodiscard]] std::uint32_t block_size() const override { return inner_->block_size(); }
  [[nodiscard]] const char* name() const override { return inner_->name(); }
  [[nodiscard]] bool failed() const override { return failed_ || inner_->failed(); }
  [[nodiscard]] bool prefers_batching() const override { return inner_->prefers_batching(); }

  int read(std::uint64_t offset, std::span<std::byte> out) override;
  int write(std::uint64_t offset, std::span<const std::byte> in) override;
  int zero(std::uint64_t offset, std::uint64_t length) override;
  int trim(std::uint64_t offset, std::uint64_t length) override;
  int flush() override;
  // submit() is BlockStore's: each request through the calls above.

  std::byte* allocate_buffer(std::size_t bytes) override { return inner_->allocate_buffer(bytes); }
  void free_buffer(std::byte* p, std::size_t bytes) override { inner_->free_buffer(p, bytes); }

 private:
  // Marks the store failed when [offset, offset + length) touches the
  // failing sector; false once failed.
  bool check(std::uint64_t offset, std::uint64_t length);

  std::unique_ptr<BlockStore> inner_;
  std::uint64_t fail_offset_;
  std::atomic<bool> failed_{false};
};

// The build tierswap-nbd-testhooks runs: --test-fail-offset on the command
// line, its FailingStore around the store, test-hooks=yes in --version.
// `hooks` receives the options' values and must outlive the run.
ExporterBuild test_build(TestHooks& hooks);

}  // namespace tierswap::vram::test
