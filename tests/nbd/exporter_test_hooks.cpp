#include "tests/nbd/exporter_test_hooks.hpp"

#include <CLI/CLI.hpp>
#include <cerrno>

namespace tierswap::vram::test {

bool FailingStore::check(std::uint64_t offset, std::uint64_t length) {
  if (offset < fail_offset_ + 512 && fail_offset_ < offset + length) failed_ = true;
  return !failed_;
}

int FailingStore::read(std::uint64_t offset, std::span<std::byte> out) {
  return check(offset, out.size()) ? inner_->read(offset, out) : EIO;
}

int FailingStore::write(std::uint64_t offset, std::span<const std::byte> in) {
  return check(offset, in.size()) ? inner_->write(offset, in) : EIO;
}

int FailingStore::zero(std::uint64_t offset, std::uint64_t length) {
  return check(offset, length) ? inner_->zero(offset, length) : EIO;
}

int FailingStore::trim(std::uint64_t offset, std::uint64_t length) {
  return check(offset, length) ? inner_->trim(offset, length) : EIO;
}

int FailingStore::flush() {
  return failed_ ? EIO : inner_->flush();
}

ExporterBuild test_build(TestHooks& hooks) {
  ExporterBuild b;
  b.test_hooks = true;
  b.options = [&hooks](CLI::App& app) {
    app.add_option_function<std::string>(
           "--test-fail-offset",
           [&hooks](const std::string& v) {
             auto s = parse_size(v);
             if (!s) throw CLI::ValidationError("--test-fail-offset", s.error().message);
             hooks.fail_offset = *s;
           },
           "host stores: requests touching [OFFSET, OFFSET + 512) fail with EIO and the store "
           "stays failed (test builds only)")
        ->type_name("OFFSET");
  };
  b.wrap_store = [&hooks](std::unique_ptr<BlockStore> store) -> std::unique_ptr<BlockStore> {
    if (hooks.fail_offset == UINT64_MAX) return store;
    return std::make_unique<FailingStore>(std::move(store), hooks.fail_offset);
  };
  return b;
}

}  // namespace tierswap::vram::test
