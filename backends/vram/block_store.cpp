#include "backends/vram/block_store.hpp"

#include <sys/mman.h>

#include <cerrno>

namespace tierswap::vram {

void BlockStore::submit(std::span<IoRequest> batch) {
  for (IoRequest& r : batch) {
    switch (r.op) {
      case Op::read:
        r.error = read(r.offset, {r.data, r.length});
        break;
      case Op::write:
        r.error = write(r.offset, {r.data, r.length});
        break;
      case Op::zero:
        r.error = zero(r.offset, r.length);
        break;
      case Op::trim:
        r.error = trim(r.offset, r.length);
        break;
      case Op::flush:
        r.error = flush();
        break;
      default:
        r.error = EINVAL;
    }
  }
}

// Anonymous mappings are page-aligned and zero-filled by the kernel; with
// mlockall(MCL_FUTURE) in force they are also locked and populated at once.
std::byte* BlockStore::allocate_buffer(std::size_t bytes) {
  if (bytes == 0) return nullptr;
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? nullptr : static_cast<std::byte*>(p);
}

void BlockStore::free_buffer(std::byte* p, std::size_t bytes) {
  if (p != nullptr && bytes != 0) ::munmap(p, bytes);
}

}  // namespace tierswap::vram
