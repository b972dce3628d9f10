#include "backends/vram/host_store.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

#include "common/refusal.hpp"

namespace tierswap::vram {

namespace {

std::uint64_t page_size() {
  return static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
}

Result<std::byte*> map_chunk(std::uint64_t bytes, bool lock) {
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | (lock ? MAP_POPULATE : MAP_NORESERVE), -1, 0);
  if (p == MAP_FAILED)
    return kernel_error(errno, "host store: cannot map " + std::to_string(bytes) + " bytes of RAM");
  if (lock && ::mlock(p, bytes) != 0) {
    const int err = errno;
    ::munmap(p, bytes);
    return kernel_error(err, "host store: cannot lock " + std::to_string(bytes) +
                                 " bytes in RAM (needs CAP_IPC_LOCK or a higher RLIMIT_MEMLOCK; "
                                 "--no-mlock for tests)");
  }
  return static_cast<std::byte*>(p);
}

}  // namespace

Result<std::unique_ptr<HostStore>> HostStore::create(const HostStoreOptions& options) {
  if (options.size == 0 || options.size % 512 != 0)
    return refusal(
        ErrorKind::invalid_argument, EINVAL,
        "host store: size " + std::to_string(options.size) + " must be a non-zero multiple of 512 bytes");
  if (options.chunk_bytes == 0 || options.chunk_bytes % 4096 != 0)
    return refusal(ErrorKind::invalid_argument, EINVAL,
                   "host store: chunk size " + std::to_string(options.chunk_bytes) +
                       " must be a non-zero multiple of 4096 bytes");
  std::unique_ptr<HostStore> s(new HostStore());
  s->size_ = options.size;
  s->chunk_bytes_ = options.chunk_bytes;
  s->lock_ = options.lock;
  s->prefer_batching_ = options.prefer_batching;
  s->chunks_.assign(s->chunk_count(), nullptr);
  for (std::uint32_t i = 0; i < s->chunk_count(); ++i)
    if (auto r = s->restore_chunk(i); !r) return std::unexpected(r.error());  // ~HostStore unmaps the rest
  return s;
}

HostStore::~HostStore() {
  for (std::uint32_t i = 0; i < chunks_.size(); ++i)
    if (chunks_[i] != nullptr) ::munmap(chunks_[i], mapped_length(i));
}

std::uint64_t HostStore::mapped_length(std::uint32_t i) const {
  const std::uint64_t page = page_size();
  return (chunk_length(i) + page - 1) / page * page;
}

Result<void> HostStore::release_chunk(std::uint32_t i) {
  if (i >= chunks_.size())
    return refusal(ErrorKind::invalid_argument, EINVAL, "host store: no chunk " + std::to_string(i));
  if (chunks_[i] == nullptr) return {};
  ::munmap(chunks_[i], mapped_length(i));
  chunks_[i] = nullptr;
  resident_ -= mapped_length(i);
  return {};
}

Result<void> HostStore::restore_chunk(std::uint32_t i) {
  if (i >= chunks_.size())
    return refusal(ErrorKind::invalid_argument, EINVAL, "host store: no chunk " + std::to_string(i));
  if (chunks_[i] != nullptr) return {};
  auto p = map_chunk(mapped_length(i), lock_);
  if (!p) return wrap(p.error(), "chunk " + std::to_string(i));
  chunks_[i] = *p;
  resident_ += mapped_length(i);
  return {};
}

template <class F>
int HostStore::each_piece(std::uint64_t offset, std::uint64_t length, F&& f) {
  std::uint64_t done = 0;
  while (done < length) {
    const auto i = static_cast<std::uint32_t>((offset + done) / chunk_bytes_);
    const std::uint64_t in = (offset + done) - chunk_offset(i);
    const std::uint64_t n = std::min(length - done, chunk_length(i) - in);
    if (chunks_[i] == nullptr) return EIO;  // the caller broke the release contract
    f(chunks_[i] + in, n, done);
    done += n;
  }
  return 0;
}

int HostStore::read(std::uint64_t offset, std::span<std::byte> out) {
  return each_piece(offset, out.size(), [&](std::byte* p, std::uint64_t n, std::uint64_t at) {
    std::memcpy(out.data() + at, p, n);
  });
}

int HostStore::write(std::uint64_t offset, std::span<const std::byte> in) {
  return each_piece(offset, in.size(), [&](std::byte* p, std::uint64_t n, std::uint64_t at) {
    std::memcpy(p, in.data() + at, n);
  });
}

int HostStore::zero(std::uint64_t offset, std::uint64_t length) {
  return each_piece(offset, length,
                    [](std::byte* p, std::uint64_t n, std::uint64_t) { std::memset(p, 0, n); });
}

int HostStore::trim(std::uint64_t, std::uint64_t) {
  return 0;
}

int HostStore::flush() {
  return 0;
}

void HostStore::submit(std::span<IoRequest> batch) {
  batches_.fetch_add(1, std::memory_order_relaxed);
  BlockStore::submit(batch);
}

}  // namespace tierswap::vram
