#include "backends/vram/host_store.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace tierswap::vram {

Result<std::unique_ptr<HostStore>> HostStore::create(const HostStoreOptions& options) {
  if (options.size == 0 || options.size % 512 != 0)
    return fail(EINVAL, "host store: size " + std::to_string(options.size) +
                            " must be a non-zero multiple of 512 bytes");
  const auto page = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
  const std::uint64_t mapped = (options.size + page - 1) / page * page;
  void* p = ::mmap(nullptr, mapped, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | (options.lock ? MAP_POPULATE : MAP_NORESERVE), -1, 0);
  if (p == MAP_FAILED)
    return fail(errno, "host store: cannot map " + std::to_string(mapped) + " bytes of RAM");
  if (options.lock && ::mlock(p, mapped) != 0) {
    const int err = errno;
    ::munmap(p, mapped);
    return fail(err, "host store: cannot lock " + std::to_string(mapped) +
                         " bytes in RAM (needs CAP_IPC_LOCK or a higher RLIMIT_MEMLOCK; "
                         "--no-mlock for tests)");
  }
  std::unique_ptr<HostStore> s(new HostStore());
  s->base_ = static_cast<std::byte*>(p);
  s->size_ = options.size;
  s->mapped_ = mapped;
  s->prefer_batching_ = options.prefer_batching;
  s->fail_offset_ = options.fail_offset;
  return s;
}

HostStore::~HostStore() {
  if (base_ != nullptr) ::munmap(base_, mapped_);
}

// Failure injection only; the protocol layer has already checked bounds.
bool HostStore::check(std::uint64_t offset, std::uint64_t length) {
  if (fail_offset_ != UINT64_MAX && offset < fail_offset_ + 512 && fail_offset_ < offset + length)
    failed_ = true;
  return !failed_;
}

int HostStore::read(std::uint64_t offset, std::span<std::byte> out) {
  if (!check(offset, out.size())) return EIO;
  std::memcpy(out.data(), base_ + offset, out.size());
  return 0;
}

int HostStore::write(std::uint64_t offset, std::span<const std::byte> in) {
  if (!check(offset, in.size())) return EIO;
  std::memcpy(base_ + offset, in.data(), in.size());
  return 0;
}

int HostStore::zero(std::uint64_t offset, std::uint64_t length) {
  if (!check(offset, length)) return EIO;
  std::memset(base_ + offset, 0, length);
  return 0;
}

int HostStore::trim(std::uint64_t offset, std::uint64_t length) {
  if (!check(offset, length)) return EIO;
  return 0;
}

int HostStore::flush() {
  return failed_ ? EIO : 0;
}

void HostStore::submit(std::span<IoRequest> batch) {
  batches_.fetch_add(1, std::memory_order_relaxed);
  BlockStore::submit(batch);
}

}  // namespace tierswap::vram
