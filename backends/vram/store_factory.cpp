#include "backends/vram/store_factory.hpp"

#include "backends/vram/host_store.hpp"
#include "common/refusal.hpp"

#ifdef TIERSWAP_HAVE_CUDA_STORE
#include "backends/vram/cuda_store.hpp"
#endif

namespace tierswap::vram {

bool have_cuda_store() {
#ifdef TIERSWAP_HAVE_CUDA_STORE
  return true;
#else
  return false;
#endif
}

Result<std::unique_ptr<BlockStore>> make_store(const StoreOptions& options, std::string& report) {
  if (options.kind == "host" || options.kind == "host-batch") {
    HostStoreOptions h;
    h.size = options.size;
    h.lock = options.lock;
    h.prefer_batching = options.kind == "host-batch";
    h.chunk_bytes = options.chunk_bytes;
    auto s = HostStore::create(h);
    if (!s) return std::unexpected(s.error());
    report =
        "host store: " + std::to_string(options.size) + " bytes of RAM" + (options.lock ? ", locked" : "");
    return std::unique_ptr<BlockStore>(std::move(*s));
  }
  if (options.kind == "cuda") {
#ifdef TIERSWAP_HAVE_CUDA_STORE
    CudaStoreOptions c;
    c.size = options.size;
    c.device = options.device;
    c.chunk_bytes = options.chunk_bytes;
    auto r = make_cuda_store(c, report);
    if (!r) return std::unexpected(r.error());
    return std::unique_ptr<BlockStore>(std::move(*r));
#else
    // Code 0: the message is complete; strerror(ENOTSUP) would only repeat it.
    return fail(ErrorKind::unsupported,
                "--store cuda: this tierswap-nbd was built without CUDA support "
                "(rebuild with -DTIERSWAP_WITH_CUDA=ON, or use --store host)");
#endif
  }
  return refusal(ErrorKind::invalid_argument, EINVAL,
                 "--store " + options.kind + ": unknown store (use host or cuda)");
}

}  // namespace tierswap::vram
