// CudaStore: see cuda_store.hpp for the design and the contract.
#include "backends/vram/cuda_store.hpp"

#include <cuda.h>
#include <cuda_runtime_api.h>
#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <mutex>
#include <shared_mutex>
#include <thread>
#include <vector>

#include "backends/vram/cuda_kernels.hpp"

namespace tierswap::vram {
namespace {

namespace k = cuda;

constexpr std::uint64_t kGiB = 1ull << 30;
constexpr std::uint64_t kMiB = 1ull << 20;
// Descriptors per lane (64 KiB pinned): 2048 segments of up to 16 KiB, i.e.
// 32 MiB a launch, more than a group of 64 requests or the batcher's 16
// connections x 64 requests of 4 KiB need; a larger batch takes more than
// one launch. (16384 held 512 KiB pinned per lane: 3.5 MiB of the
// exporter's resident memory with 8 lanes.)
constexpr std::uint32_t kLaneSegs = 2048;
constexpr std::size_t kMaxBuffers = 1 << 16;  // allocate_buffer() registrations
constexpr auto kStuckAfter = std::chrono::seconds(30);

std::string cuda_what(cudaError_t e) {
  return std::string(cudaGetErrorName(e)) + ": " + cudaGetErrorString(e);
}

std::string gib(std::uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f GiB", static_cast<double>(bytes) / kGiB);
  return buf;
}

std::string uuid_string(const cudaUUID_t& u) {
  const auto* b = reinterpret_cast<const unsigned char*>(u.bytes);
  char buf[48];
  std::snprintf(buf, sizeof buf, "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
                b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
                b[15]);
  return buf;
}

// The driver's virtual memory management, reached through the runtime (the
// static runtime loads libcuda at run time; linking it would not start on a
// machine without the driver).
struct Vmm {
  decltype(&cuMemCreate) create = nullptr;
  decltype(&cuMemRelease) release = nullptr;
  decltype(&cuMemAddressReserve) reserve = nullptr;
  decltype(&cuMemAddressFree) address_free = nullptr;
  decltype(&cuMemMap) map = nullptr;
  decltype(&cuMemUnmap) unmap = nullptr;
  decltype(&cuMemSetAccess) set_access = nullptr;
  decltype(&cuMemGetAllocationGranularity) granularity = nullptr;
  bool ok = false;
};

const Vmm& vmm() {
  static const Vmm v = [] {
    Vmm m;
    auto get = [](const char* name, auto& fn) {
      void* p = nullptr;
      cudaDriverEntryPointQueryResult q{};
      if (cudaGetDriverEntryPointByVersion(name, &p, 12000, cudaEnableDefault, &q) != cudaSuccess ||
          q != cudaDriverEntryPointSuccess) {
        (void)cudaGetLastError();
        return false;
      }
      fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(p);
      return p != nullptr;
    };
    m.ok = get("cuMemCreate", m.create) && get("cuMemRelease", m.release) &&
           get("cuMemAddressReserve", m.reserve) && get("cuMemAddressFree", m.address_free) &&
           get("cuMemMap", m.map) && get("cuMemUnmap", m.unmap) && get("cuMemSetAccess", m.set_access) &&
           get("cuMemGetAllocationGranularity", m.granularity);
    return m;
  }();
  return v;
}

inline void cpu_relax() {
  _mm_pause();
}

// Finds the device the options name; the message says what exists.
Result<int> pick_device(const std::string& want) {
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e == cudaErrorInsufficientDriver) {
    int drv = 0;
    (void)cudaDriverGetVersion(&drv);
    (void)cudaGetLastError();
    if (drv == 0) {
      return fail(ENODEV,
                  "cuda store: no NVIDIA driver (libcuda.so.1 not found): install the "
                  "NVIDIA driver or use --store host");
    }
    return fail(ENODEV, "cuda store: the NVIDIA driver supports CUDA " + std::to_string(drv / 1000) + "." +
                            std::to_string(drv % 1000 / 10) + ", this build needs " +
                            std::to_string(CUDART_VERSION / 1000) + "." +
                            std::to_string(CUDART_VERSION % 1000 / 10) + ": update the driver");
  }
  if (e == cudaErrorNoDevice || (e == cudaSuccess && count == 0)) {
    (void)cudaGetLastError();
    return fail(ENODEV,
                "cuda store: no CUDA device (the driver sees no GPU; check "
                "CUDA_VISIBLE_DEVICES and nvidia-smi)");
  }
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    return fail(ENODEV, "cuda store: cannot list CUDA devices: " + cuda_what(e));
  }
  if (want.empty()) return 0;
  if (want.rfind("GPU-", 0) == 0) {
    std::string seen;
    for (int d = 0; d < count; ++d) {
      cudaDeviceProp prop{};
      if (cudaGetDeviceProperties(&prop, d) != cudaSuccess) continue;
      const std::string uuid = uuid_string(prop.uuid);
      if (uuid.rfind(want, 0) == 0) return d;
      seen += (seen.empty() ? "" : ", ") + uuid;
    }
    return fail(ENODEV, "cuda store: --device " + want + ": no GPU has this UUID (there are: " + seen + ")");
  }
  char* end = nullptr;
  const long idx = std::strtol(want.c_str(), &end, 10);
  if (end == want.c_str() || *end != '\0' || idx < 0) {
    return fail(EINVAL, "cuda store: --device " + want +
                            ": not a GPU index or UUID (try 0, or GPU-... from nvidia-smi -L)");
  }
  if (idx >= count) {
    return fail(ENODEV, "cuda store: --device " + want + ": there are only " + std::to_string(count) +
                            " CUDA devices (0.." + std::to_string(count - 1) + ")");
  }
  return static_cast<int>(idx);
}

class CudaStore final : public ChunkedStore {
 public:
  static Result<std::unique_ptr<CudaStore>> create(const CudaStoreOptions& options,
                                                   const CudaStoreTuning& tuning, std::string& report);
  ~CudaStore() override;

  [[nodiscard]] std::uint64_t size() const override { return size_; }
  [[nodiscard]] const char* name() const override { return "cuda"; }
  [[nodiscard]] bool failed() const override { return failed_.load(std::memory_order_acquire); }

  int read(std::uint64_t offset, std::span<std::byte> out) override {
    return one({Op::read, offset, static_cast<std::uint32_t>(out.size()), out.data(), 0});
  }
  int write(std::uint64_t offset, std::span<const std::byte> in) override {
    return one(
        {Op::write, offset, static_cast<std::uint32_t>(in.size()), const_cast<std::byte*>(in.data()), 0});
  }
  int zero(std::uint64_t offset, std::uint64_t length) override { return ranged(Op::zero, offset, length); }
  int trim(std::uint64_t offset, std::uint64_t length) override { return ranged(Op::trim, offset, length); }
  int flush() override { return failed() ? EIO : 0; }

  void submit(std::span<IoRequest> batch) override;
  [[nodiscard]] bool prefers_batching() const override { return tuning_.prefer_batching; }

  [[nodiscard]] std::uint64_t chunk_bytes() const override { return chunk_bytes_; }
  [[nodiscard]] bool chunk_resident(std::uint32_t i) const override { return !vmm_ || handles_[i] != 0; }
  Result<void> release_chunk(std::uint32_t i) override;
  Result<void> restore_chunk(std::uint32_t i) override;
  [[nodiscard]] std::uint64_t resident_bytes() const override { return resident_.load(); }
  [[nodiscard]] std::byte* allocate_buffer(std::size_t bytes) override;
  void free_buffer(std::byte* p, std::size_t bytes) override;

  void inject(CudaFault f) { inject_.store(static_cast<int>(f), std::memory_order_release); }
  CudaStoreCounters counters() const {
    CudaStoreCounters c;
    c.poller_batches = n_poller_.load(std::memory_order_relaxed);
    c.poller_starts = n_poller_starts_.load(std::memory_order_relaxed);
    c.kernel_launches = n_launch_.load(std::memory_order_relaxed);
    c.copies = n_copy_.load(std::memory_order_relaxed);
    c.pageable = n_pageable_.load(std::memory_order_relaxed);
    return c;
  }

 private:
  struct Lane {
    std::mutex mu;
    cudaStream_t stream = nullptr;
    k::Seg* segs = nullptr;      // pinned, mapped
    k::Seg* segs_dev = nullptr;  // its device address
    k::InlineSegs inl{};
  };
  struct Reg {
    std::uintptr_t begin, end;
    std::intptr_t to_dev;  // device address - host address
  };

  CudaStore() = default;
  int one(IoRequest r) {
    submit(std::span<IoRequest>(&r, 1));
    return r.error;
  }
  int ranged(Op op, std::uint64_t offset, std::uint64_t length);
  void ensure_device() const;
  void fail_batch(std::span<IoRequest> batch, cudaError_t e);
  // 0 when the host range lies in one registered buffer: its device address.
  std::uint64_t device_address(const std::byte* p, std::uint32_t len) const;
  // true when the poller completed the batch (successfully or by failing it).
  bool try_poller(std::span<IoRequest> batch);
  void run_on_lane(std::span<IoRequest> batch);
  cudaError_t start_poller();
  cudaError_t stop_poller();  // with poll_mu_ held
  // Physical memory of chunk i: created and mapped (VMM only).
  [[nodiscard]] std::uint64_t mapped_length(std::uint32_t i) const {
    return (chunk_length(i) + granularity_ - 1) / granularity_ * granularity_;
  }
  CUresult map_chunk(std::uint32_t i);

  CudaStoreTuning tuning_;
  int device_ = 0;
  std::uint64_t size_ = 0;
  char* vram_ = nullptr;
  // VMM: vram_ is a reserved range of reserved_ bytes; handles_[i] != 0
  // while chunk i is mapped. Without VMM: one cudaMalloc, one chunk.
  bool vmm_ = false;
  std::uint64_t chunk_bytes_ = 0;
  std::uint64_t granularity_ = 1;
  std::uint64_t reserved_ = 0;
  std::vector<CUmemGenericAllocationHandle> handles_;
  std::atomic<std::uint64_t> resident_{0};
  std::atomic<bool> failed_{false};
  std::atomic<int> inject_{0};
  std::atomic<const char*> fail_reason_{nullptr};

  std::vector<std::unique_ptr<Lane>> lanes_;

  std::mutex poll_mu_;
  cudaStream_t poll_stream_ = nullptr;
  k::Mailbox* mb_ = nullptr;
  k::Mailbox* mb_dev_ = nullptr;
  bool poller_running_ = false;
  std::uint32_t poll_seq_ = 0;

  mutable std::shared_mutex reg_mu_;
  std::vector<Reg> regs_;  // sorted by begin; capacity reserved up front

  std::atomic<std::uint64_t> n_poller_{0}, n_poller_starts_{0}, n_launch_{0}, n_copy_{0}, n_pageable_{0};
};

void CudaStore::ensure_device() const {
  // The runtime's current device is per thread; I/O threads are the server's.
  thread_local int current = -1;
  if (current != device_) {
    if (cudaSetDevice(device_) == cudaSuccess) current = device_;
  }
}

Result<std::unique_ptr<CudaStore>> CudaStore::create(const CudaStoreOptions& options,
                                                     const CudaStoreTuning& tuning, std::string& report) {
  report.clear();
  const std::uint64_t want = options.size / 512 * 512;
  if (want == 0) {
    return fail(EINVAL, "cuda store: size " + std::to_string(options.size) +
                            " is below one 512-byte block (try --size 4G)");
  }
  auto dev = pick_device(options.device);
  if (!dev) {
    report = dev.error().message;
    return std::unexpected(dev.error());
  }
  std::unique_ptr<CudaStore> s(new CudaStore());
  s->tuning_ = tuning;
  s->tuning_.lanes = std::clamp(tuning.lanes, 1u, 64u);
  s->device_ = *dev;

  // Flags must be given before the primary context exists; if something in
  // this process made it already, keep its flags.
  const unsigned sched = tuning.spin_wait ? cudaDeviceScheduleSpin : cudaDeviceScheduleYield;
  cudaError_t e = cudaInitDevice(s->device_, sched | cudaDeviceMapHost, 0);
  if (e != cudaSuccess) (void)cudaGetLastError();
  e = cudaSetDevice(s->device_);
  if (e != cudaSuccess) {
    return fail(ENODEV, "cuda store: GPU " + std::to_string(s->device_) + ": cannot use it: " + cuda_what(e));
  }
  cudaDeviceProp prop{};
  e = cudaGetDeviceProperties(&prop, s->device_);
  if (e != cudaSuccess) return fail(EIO, "cuda store: cudaGetDeviceProperties: " + cuda_what(e));
  if (!prop.canMapHostMemory || !prop.unifiedAddressing) {
    return fail(ENODEV,
                std::string("cuda store: GPU ") + prop.name + " cannot map host memory: this store needs it");
  }
  std::size_t free_b = 0, total_b = 0;
  (void)cudaMemGetInfo(&free_b, &total_b);
  const std::string who = "GPU " + std::to_string(s->device_) + " (" + prop.name + ", " +
                          uuid_string(prop.uuid) + ", " + gib(free_b) + " free of " + gib(total_b) + ")";

  // Device memory in chunks mapped into one reserved range (VMM), else one
  // cudaMalloc: ask for all of it, then 7/8, 6/8, ... 1/8.
  const Vmm& v = vmm();
  CUmemAllocationProp prop_alloc{};
  prop_alloc.type = CU_MEM_ALLOCATION_TYPE_PINNED;
  prop_alloc.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
  prop_alloc.location.id = s->device_;
  std::size_t gran = 0;
  if (v.ok && v.granularity(&gran, &prop_alloc, CU_MEM_ALLOC_GRANULARITY_RECOMMENDED) == CUDA_SUCCESS &&
      gran > 0) {
    s->vmm_ = true;
    s->granularity_ = gran;
    s->chunk_bytes_ = std::max<std::uint64_t>(options.chunk_bytes, gran);
    s->chunk_bytes_ = (s->chunk_bytes_ + gran - 1) / gran * gran;
    s->size_ = want;
    const std::uint32_t chunks = s->chunk_count();
    s->reserved_ = static_cast<std::uint64_t>(chunks) * s->chunk_bytes_;
    CUdeviceptr base = 0;
    if (v.reserve(&base, s->reserved_, 0, 0, 0) != CUDA_SUCCESS) {
      (void)cudaGetLastError();
      return fail(EIO,
                  "cuda store: " + who + ": cannot reserve " + gib(s->reserved_) + " of GPU address space");
    }
    s->vram_ = reinterpret_cast<char*>(base);
    s->handles_.assign(chunks, 0);
    // Leave the driver room for the streams, the kernels and other users'
    // contexts: at most free memory less max(256 MiB, 1/64 of the GPU).
    const std::uint64_t headroom = std::max<std::uint64_t>(256 * kMiB, total_b / 64);
    const std::uint64_t budget = free_b > headroom ? free_b - headroom : 0;
    const auto fit = static_cast<std::uint32_t>(
        std::min<std::uint64_t>(chunks, (budget + s->chunk_bytes_ - 1) / s->chunk_bytes_));
    std::uint32_t got = 0;
    CUresult cr = fit < chunks ? CUDA_ERROR_OUT_OF_MEMORY : CUDA_SUCCESS;
    for (; got < fit; ++got)
      if ((cr = s->map_chunk(got)) != CUDA_SUCCESS) break;
    // Every chunk of the budget mapped but the budget was short of the
    // size asked: the GPU is short, not broken (back off below).
    if (cr == CUDA_SUCCESS && got < chunks) cr = CUDA_ERROR_OUT_OF_MEMORY;
    if (got < chunks) {
      (void)cudaGetLastError();
      if (cr != CUDA_ERROR_OUT_OF_MEMORY)
        return fail(EIO, "cuda store: " + who + ": mapping chunk " + std::to_string(got) +
                             " failed (CUresult " + std::to_string(static_cast<int>(cr)) + ")");
      const std::uint64_t have = static_cast<std::uint64_t>(got) * s->chunk_bytes_;
      if (have == 0 || have < want / 8) {
        report =
            "cuda store: " + who + ": cannot allocate even " + gib(want / 8) + " (got " + gib(have) + ")";
        return fail(ENOMEM, report + ": free GPU memory or ask for less with --size");
      }
      s->size_ = have;  // the chunks it got; the rest of the range stays reserved, unmapped
      s->handles_.resize(got);
    }
    if (s->size_ == want)
      report = "cuda store: " + who + ": allocated " + gib(s->size_) + " of VRAM as asked, in " +
               std::to_string(s->chunk_count()) + " chunks of " + gib(s->chunk_bytes_);
    else
      report = "cuda store: " + who + ": allocated " + gib(s->size_) + " of VRAM, less than the " +
               gib(want) + " asked: the GPU was short; in " + std::to_string(s->chunk_count()) +
               " chunks of " + gib(s->chunk_bytes_);
  } else {
    std::string tried;
    const std::uint64_t step = std::max<std::uint64_t>(want / 8, 512);
    for (std::uint64_t n = want;; n = n > step ? n - step : 0) {
      // The size asked exactly; smaller tries on 2 MiB boundaries.
      const std::uint64_t ask = n == want       ? want
                                : n >= 2 * kMiB ? n / (2 * kMiB) * (2 * kMiB)
                                                : n / 512 * 512;
      if (ask == 0 || n < want / 8) {
        report = "cuda store: " + who + ": cannot allocate even " + gib(want / 8) + " (tried " + tried + ")";
        return fail(ENOMEM, report + ": free GPU memory or ask for less with --size");
      }
      void* p = nullptr;
      e = cudaMalloc(&p, ask);
      if (e == cudaSuccess) {
        s->vram_ = static_cast<char*>(p);
        s->size_ = ask;
        break;
      }
      (void)cudaGetLastError();  // out of memory is not sticky
      if (e != cudaErrorMemoryAllocation) {
        return fail(EIO, "cuda store: " + who + ": cudaMalloc(" + gib(ask) + "): " + cuda_what(e));
      }
      tried += (tried.empty() ? "" : ", ") + gib(ask);
    }
    s->chunk_bytes_ = (s->size_ + 4095) / 4096 * 4096;
    s->resident_ = s->size_;
    if (s->size_ == want) {
      report = "cuda store: " + who + ": allocated " + gib(s->size_) + " of VRAM as asked";
    } else {
      report = "cuda store: " + who + ": allocated " + gib(s->size_) + " of VRAM, less than the " +
               gib(want) + " asked: the GPU was short (cudaMalloc failed for " + tried + ")";
    }
    report +=
        "; no virtual memory management in this driver: the export is one chunk that evacuation "
        "cannot give back";
  }

  auto cuda_fail = [&](const char* what, cudaError_t err) {
    return fail(EIO, "cuda store: " + who + ": " + what + ": " + cuda_what(err));
  };
  // Streams, descriptors, mailbox; then zero the export.
  for (unsigned i = 0; i < s->tuning_.lanes; ++i) {
    auto lane = std::make_unique<Lane>();
    if ((e = cudaStreamCreateWithFlags(&lane->stream, cudaStreamNonBlocking)) != cudaSuccess)
      return cuda_fail("cudaStreamCreate", e);
    void* p = nullptr;
    if ((e = cudaHostAlloc(&p, kLaneSegs * sizeof(k::Seg), cudaHostAllocMapped | cudaHostAllocPortable)) !=
        cudaSuccess) {
      cudaStreamDestroy(lane->stream);
      return cuda_fail("cudaHostAlloc (descriptors)", e);
    }
    lane->segs = static_cast<k::Seg*>(p);
    void* d = nullptr;
    if ((e = cudaHostGetDevicePointer(&d, p, 0)) != cudaSuccess) {
      cudaStreamDestroy(lane->stream);
      cudaFreeHost(p);
      return cuda_fail("cudaHostGetDevicePointer", e);
    }
    lane->segs_dev = static_cast<k::Seg*>(d);
    s->lanes_.push_back(std::move(lane));
  }
  if ((e = cudaStreamCreateWithFlags(&s->poll_stream_, cudaStreamNonBlocking)) != cudaSuccess)
    return cuda_fail("cudaStreamCreate", e);
  {
    void* p = nullptr;
    if ((e = cudaHostAlloc(&p, sizeof(k::Mailbox), cudaHostAllocMapped | cudaHostAllocPortable)) !=
        cudaSuccess)
      return cuda_fail("cudaHostAlloc (mailbox)", e);
    std::memset(p, 0, sizeof(k::Mailbox));
    s->mb_ = static_cast<k::Mailbox*>(p);
    void* d = nullptr;
    if ((e = cudaHostGetDevicePointer(&d, p, 0)) != cudaSuccess)
      return cuda_fail("cudaHostGetDevicePointer", e);
    s->mb_dev_ = static_cast<k::Mailbox*>(d);
  }
  s->regs_.reserve(kMaxBuffers);
  cudaStream_t st = s->lanes_[0]->stream;
  if ((e = k::launch_zero(s->vram_, s->size_, st, 0)) != cudaSuccess) return cuda_fail("zeroing VRAM", e);
  if ((e = cudaStreamSynchronize(st)) != cudaSuccess) return cuda_fail("zeroing VRAM", e);
  return s;
}

CudaStore::~CudaStore() {
  ensure_device();
  {
    std::lock_guard lk(poll_mu_);
    (void)stop_poller();
  }
  for (auto& lane : lanes_) {
    std::lock_guard lk(lane->mu);
    if (lane->stream) {
      cudaStreamSynchronize(lane->stream);
      cudaStreamDestroy(lane->stream);
    }
    if (lane->segs) cudaFreeHost(lane->segs);
  }
  if (poll_stream_) cudaStreamDestroy(poll_stream_);
  if (mb_) cudaFreeHost(mb_);
  {
    std::unique_lock lk(reg_mu_);
    for (const Reg& r : regs_) cudaFreeHost(reinterpret_cast<void*>(r.begin));
    regs_.clear();
  }
  if (vmm_) {
    const Vmm& v = vmm();
    const auto base = reinterpret_cast<CUdeviceptr>(vram_);
    for (std::uint32_t i = 0; i < handles_.size(); ++i) {
      if (handles_[i] == 0) continue;
      v.unmap(base + chunk_offset(i), mapped_length(i));
      v.release(handles_[i]);
    }
    if (vram_) v.address_free(base, reserved_);
  } else if (vram_) {
    cudaFree(vram_);
  }
  (void)cudaGetLastError();
}

CUresult CudaStore::map_chunk(std::uint32_t i) {
  const Vmm& v = vmm();
  CUmemAllocationProp prop{};
  prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
  prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
  prop.location.id = device_;
  CUmemGenericAllocationHandle h = 0;
  const std::uint64_t len = mapped_length(i);
  const CUdeviceptr at = reinterpret_cast<CUdeviceptr>(vram_) + chunk_offset(i);
  CUresult r = v.create(&h, len, &prop, 0);
  if (r != CUDA_SUCCESS) return r;
  if ((r = v.map(at, len, 0, h, 0)) != CUDA_SUCCESS) {
    v.release(h);
    return r;
  }
  CUmemAccessDesc access{};
  access.location = prop.location;
  access.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
  if ((r = v.set_access(at, len, &access, 1)) != CUDA_SUCCESS) {
    v.unmap(at, len);
    v.release(h);
    return r;
  }
  handles_[i] = h;
  resident_ += len;
  return CUDA_SUCCESS;
}

Result<void> CudaStore::release_chunk(std::uint32_t i) {
  if (i >= chunk_count()) return fail(EINVAL, "cuda store: no chunk " + std::to_string(i));
  if (!vmm_)
    return fail(ENOTSUP,
                "cuda store: this driver has no virtual memory management: the export is one "
                "allocation and cannot give chunks back");
  if (handles_[i] == 0) return {};
  ensure_device();
  // Unmapping may wait for the device's work: the poller first (it would
  // never finish while requests keep coming; it restarts with the next).
  std::lock_guard lk(poll_mu_);
  if (const cudaError_t e = stop_poller(); e != cudaSuccess)
    return fail(EIO, "cuda store: stopping the polling kernel: " + cuda_what(e));
  const Vmm& v = vmm();
  const std::uint64_t len = mapped_length(i);
  const CUdeviceptr at = reinterpret_cast<CUdeviceptr>(vram_) + chunk_offset(i);
  CUresult r = v.unmap(at, len);
  if (r == CUDA_SUCCESS) r = v.release(handles_[i]);
  if (r != CUDA_SUCCESS) {
    (void)cudaGetLastError();
    return fail(EIO, "cuda store: giving chunk " + std::to_string(i) + " back failed (CUresult " +
                         std::to_string(static_cast<int>(r)) + ")");
  }
  handles_[i] = 0;
  resident_ -= len;
  return {};
}

Result<void> CudaStore::restore_chunk(std::uint32_t i) {
  if (i >= chunk_count()) return fail(EINVAL, "cuda store: no chunk " + std::to_string(i));
  if (!vmm_ || handles_[i] != 0) return {};
  ensure_device();
  std::lock_guard lk(poll_mu_);
  if (const cudaError_t e = stop_poller(); e != cudaSuccess)
    return fail(EIO, "cuda store: stopping the polling kernel: " + cuda_what(e));
  const CUresult r = map_chunk(i);
  if (r == CUDA_ERROR_OUT_OF_MEMORY) {
    (void)cudaGetLastError();
    return fail(ENOMEM, "cuda store: no VRAM for chunk " + std::to_string(i) + " (" +
                            std::to_string(mapped_length(i)) + " bytes): the GPU is still short");
  }
  if (r != CUDA_SUCCESS) {
    (void)cudaGetLastError();
    return fail(EIO, "cuda store: mapping chunk " + std::to_string(i) + " failed (CUresult " +
                         std::to_string(static_cast<int>(r)) + ")");
  }
  return {};
}

int CudaStore::ranged(Op op, std::uint64_t offset, std::uint64_t length) {
  // One request carries at most 4 GiB - 512; longer ranges go in pieces.
  constexpr std::uint64_t kPiece = 0xFFFFFE00ull;
  while (length > 0) {
    const std::uint64_t n = std::min(length, kPiece);
    const int err = one({op, offset, static_cast<std::uint32_t>(n), nullptr, 0});
    if (err != 0) return err;
    offset += n;
    length -= n;
  }
  return failed() ? EIO : 0;
}

void CudaStore::fail_batch(std::span<IoRequest> batch, cudaError_t e) {
  const char* expected = nullptr;
  fail_reason_.compare_exchange_strong(expected, cudaGetErrorName(e));
  failed_.store(true, std::memory_order_release);
  (void)cudaGetLastError();
  for (IoRequest& r : batch) r.error = EIO;
}

std::uint64_t CudaStore::device_address(const std::byte* p, std::uint32_t len) const {
  const auto a = reinterpret_cast<std::uintptr_t>(p);
  auto it = std::upper_bound(regs_.begin(), regs_.end(), a,
                             [](std::uintptr_t v, const Reg& r) { return v < r.begin; });
  if (it == regs_.begin()) return 0;
  --it;
  if (a + len > it->end) return 0;
  return static_cast<std::uint64_t>(static_cast<std::intptr_t>(a) + it->to_dev);
}

std::byte* CudaStore::allocate_buffer(std::size_t bytes) {
  if (bytes == 0 || failed()) return nullptr;
  ensure_device();
  {
    // Pinned allocation may wait for work in flight, the poller included.
    std::lock_guard lk(poll_mu_);
    if (stop_poller() != cudaSuccess) return nullptr;
  }
  void* p = nullptr;
  if (cudaHostAlloc(&p, bytes, cudaHostAllocMapped | cudaHostAllocPortable) != cudaSuccess) {
    (void)cudaGetLastError();
    return nullptr;
  }
  void* d = nullptr;
  if (cudaHostGetDevicePointer(&d, p, 0) != cudaSuccess) {
    (void)cudaGetLastError();
    cudaFreeHost(p);
    return nullptr;
  }
  std::memset(p, 0, bytes);
  std::unique_lock lk(reg_mu_);
  if (regs_.size() == kMaxBuffers) {
    cudaFreeHost(p);
    return nullptr;
  }
  const auto b = reinterpret_cast<std::uintptr_t>(p);
  Reg r{b, b + bytes, static_cast<std::intptr_t>(reinterpret_cast<std::uintptr_t>(d) - b)};
  regs_.insert(std::upper_bound(regs_.begin(), regs_.end(), r,
                                [](const Reg& x, const Reg& y) { return x.begin < y.begin; }),
               r);
  return static_cast<std::byte*>(p);
}

void CudaStore::free_buffer(std::byte* p, std::size_t /*bytes*/) {
  if (p == nullptr) return;
  ensure_device();
  {
    std::lock_guard lk(poll_mu_);
    (void)stop_poller();
  }
  std::unique_lock lk(reg_mu_);
  const auto a = reinterpret_cast<std::uintptr_t>(p);
  auto it = std::find_if(regs_.begin(), regs_.end(), [a](const Reg& r) { return r.begin == a; });
  if (it == regs_.end()) return;  // not ours
  regs_.erase(it);
  cudaFreeHost(p);
  (void)cudaGetLastError();
}

cudaError_t CudaStore::start_poller() {
  mb_->bell = poll_seq_;
  mb_->exited = 0;
  mb_->done = poll_seq_;
  std::atomic_thread_fence(std::memory_order_seq_cst);
  const cudaError_t e = k::launch_poller(
      mb_dev_, vram_, poll_seq_, static_cast<std::uint64_t>(tuning_.poller_idle_us) * 1000, poll_stream_);
  if (e == cudaSuccess) {
    poller_running_ = true;
    n_poller_starts_.fetch_add(1, std::memory_order_relaxed);
  }
  return e;
}

cudaError_t CudaStore::stop_poller() {
  if (!poller_running_) return cudaSuccess;
  mb_->bell = (std::uint64_t{k::kBellStop} << 32) | poll_seq_;
  const cudaError_t e = cudaStreamSynchronize(poll_stream_);
  mb_->bell = poll_seq_;
  poller_running_ = false;
  return e;
}

bool CudaStore::try_poller(std::span<IoRequest> batch) {
  if (batch.size() > k::kPollerSegs || size_ > k::kPollerMaxDev) return false;
  k::Seg segs[k::kPollerSegs];
  unsigned n = 0;
  std::uint64_t bytes = 0;
  {
    std::shared_lock rl(reg_mu_);
    for (IoRequest& r : batch) {
      if (r.op == Op::flush || r.length == 0 || r.error != 0) continue;
      bytes += r.length;
      if (bytes > tuning_.poller_max_bytes || bytes > k::kPollerMaxLen) return false;
      k::Seg& s = segs[n++];
      s = {r.offset, 0, r.length, k::kSegZero, 0};
      if (r.op == Op::read || r.op == Op::write) {
        s.host = device_address(r.data, r.length);
        if (s.host == 0) return false;
        s.op = r.op == Op::read ? k::kSegRead : k::kSegWrite;
      }
    }
  }
  if (n == 0) return true;  // flushes only
  std::unique_lock lk(poll_mu_, std::try_to_lock);
  if (!lk.owns_lock()) return false;  // another thread has it: launch instead

  cudaError_t e;
  if (poller_running_ && mb_->exited) {
    // It timed out since the last request: collect it before relaunching.
    poller_running_ = false;
    if ((e = cudaStreamSynchronize(poll_stream_)) != cudaSuccess) {
      fail_batch(batch, e);
      return true;
    }
  }
  if (!poller_running_ && (e = start_poller()) != cudaSuccess) {
    fail_batch(batch, e);
    return true;
  }
  if (inject_.load(std::memory_order_relaxed) == static_cast<int>(CudaFault::bad_address) &&
      inject_.exchange(0) == static_cast<int>(CudaFault::bad_address)) {
    segs[0].dev_off = 1ull << 40;  // a terabyte past the allocation
  }
  const std::uint32_t seq = ++poll_seq_;
  const std::uint64_t tag = std::uint64_t{seq} << 32;
  for (unsigned i = 0; i < n; ++i) {
    const k::Seg& g = segs[i];
    volatile std::uint64_t* w = mb_->seg[i].w;
    w[0] = tag | (g.dev_off >> 9);
    w[1] = tag | (g.host & 0xFFFFFFFFu);
    w[2] = tag | (g.host >> 32);
    w[3] = tag | (std::uint64_t{g.op} << 24) | (g.len >> 9);
  }
  // Segments before the bell (x86 keeps store order; stop the compiler). The
  // poller checks every word's tag anyway.
  std::atomic_thread_fence(std::memory_order_release);
  asm volatile("" ::: "memory");
  mb_->bell = (std::uint64_t{n} << 32) | seq;

  const auto t0 = std::chrono::steady_clock::now();
  for (std::uint64_t spin = 1;; ++spin) {
    if (mb_->done == seq) break;
    if (mb_->exited) {
      if (mb_->done == seq) break;
      // It left (idle timeout) before it saw this doorbell: not served.
      poller_running_ = false;
      if ((e = cudaStreamSynchronize(poll_stream_)) != cudaSuccess) {
        fail_batch(batch, e);
        return true;
      }
      return false;
    }
    if ((spin & 4095) == 0) {
      e = cudaStreamQuery(poll_stream_);
      if (e != cudaErrorNotReady && e != cudaSuccess) {
        poller_running_ = false;
        fail_batch(batch, e);
        return true;
      }
      if (e == cudaSuccess && mb_->done != seq) {
        poller_running_ = false;
        return false;  // ended without serving it
      }
      if (std::chrono::steady_clock::now() - t0 > kStuckAfter) {
        fail_batch(batch, cudaErrorLaunchTimeout);
        return true;
      }
    }
    cpu_relax();
  }
  std::atomic_thread_fence(std::memory_order_acquire);
  // The done word alone does not prove the data moved: a store to a bad
  // address is posted, the kernel goes on to write done, and the fault lands
  // on the context (sticky) afterwards. The stream's state carries the
  // context's sticky error: anything but "still running" or "finished" fails
  // the batch (and the store) instead of answering success.
  e = cudaStreamQuery(poll_stream_);
  if (e != cudaErrorNotReady && e != cudaSuccess) {
    poller_running_ = false;
    fail_batch(batch, e);
    return true;
  }
  n_poller_.fetch_add(1, std::memory_order_relaxed);
  return true;
}

void CudaStore::run_on_lane(std::span<IoRequest> batch) {
  // A free lane if there is one, else wait for this thread's own.
  thread_local const unsigned hint =
      static_cast<unsigned>(std::hash<std::thread::id>{}(std::this_thread::get_id()));
  const unsigned nl = static_cast<unsigned>(lanes_.size());
  Lane* lane = nullptr;
  std::unique_lock<std::mutex> lk;
  for (unsigned i = 0; i < nl && lane == nullptr; ++i) {
    Lane* l = lanes_[(hint + i) % nl].get();
    std::unique_lock<std::mutex> t(l->mu, std::try_to_lock);
    if (t.owns_lock()) {
      lane = l;
      lk = std::move(t);
    }
  }
  if (lane == nullptr) {
    lane = lanes_[hint % nl].get();
    lk = std::unique_lock<std::mutex>(lane->mu);
  }

  // A lone request: cudaMemcpyAsync answers sooner than a launch (8 vs 11 us
  // for 4 KiB on the H200); two or more: one launch for all.
  unsigned ndata = 0;
  for (const IoRequest& r : batch) ndata += (r.op == Op::read || r.op == Op::write) && r.length != 0;
  const std::uint32_t copy_min = ndata == 1 ? 0 : tuning_.copy_min_bytes;
  const int inject = inject_.exchange(0, std::memory_order_acq_rel);
  const int launch_inject = inject == static_cast<int>(CudaFault::bad_launch) ? k::kInjectBadLaunch : 0;
  bool bad_address = inject == static_cast<int>(CudaFault::bad_address);
  cudaStream_t st = lane->stream;
  unsigned nseg = 0;
  cudaError_t e = cudaSuccess;

  auto launch = [&]() -> cudaError_t {
    if (nseg == 0) return cudaSuccess;
    if (bad_address) {
      lane->segs[0].dev_off = 1ull << 52;  // far past any allocation
      bad_address = false;
    }
    cudaError_t le;
    if (nseg <= k::kInlineSegs) {
      std::memcpy(lane->inl.seg, lane->segs, nseg * sizeof(k::Seg));
      le = k::launch_gather_inline(lane->inl, nseg, vram_, st, launch_inject);
    } else {
      le = k::launch_gather_mapped(lane->segs_dev, nseg, vram_, st, launch_inject);
    }
    n_launch_.fetch_add(1, std::memory_order_relaxed);
    return le;
  };
  auto add_seg = [&](const k::Seg& s) -> cudaError_t {
    if (nseg == kLaneSegs) {
      // Descriptor array full: move what it holds before reusing it.
      cudaError_t le = launch();
      if (le == cudaSuccess) le = cudaStreamSynchronize(st);
      if (le != cudaSuccess) return le;
      nseg = 0;
    }
    lane->segs[nseg++] = s;
    return cudaSuccess;
  };

  {
    std::shared_lock rl(reg_mu_);
    for (IoRequest& r : batch) {
      if (r.op == Op::flush || r.length == 0 || r.error != 0) continue;
      char* dev = vram_ + r.offset;
      if (r.op == Op::zero || r.op == Op::trim) {
        if (r.length >= tuning_.zero_kernel_min_bytes && !bad_address && launch_inject == 0) {
          e = k::launch_zero(dev, r.length, st, 0);
          n_launch_.fetch_add(1, std::memory_order_relaxed);
        } else {
          for (std::uint32_t done = 0; done < r.length && e == cudaSuccess; done += k::kMaxSegBytes) {
            const std::uint32_t len = std::min(r.length - done, k::kMaxSegBytes);
            e = add_seg({r.offset + done, 0, len, k::kSegZero, 0});
          }
        }
      } else {
        const bool rd = r.op == Op::read;
        const std::uint64_t host = device_address(r.data, r.length);
        const bool force_kernel = (bad_address || launch_inject != 0) && host != 0;
        if (host == 0 || (r.length >= copy_min && !force_kernel)) {
          if (host == 0) n_pageable_.fetch_add(1, std::memory_order_relaxed);
          n_copy_.fetch_add(1, std::memory_order_relaxed);
          e = rd ? cudaMemcpyAsync(r.data, dev, r.length, cudaMemcpyDeviceToHost, st)
                 : cudaMemcpyAsync(dev, r.data, r.length, cudaMemcpyHostToDevice, st);
        } else {
          const std::uint32_t op = rd ? k::kSegRead : k::kSegWrite;
          for (std::uint32_t done = 0; done < r.length && e == cudaSuccess; done += k::kMaxSegBytes) {
            const std::uint32_t len = std::min(r.length - done, k::kMaxSegBytes);
            e = add_seg({r.offset + done, host + done, len, op, 0});
          }
        }
      }
      if (e != cudaSuccess) break;
    }
  }
  if (e == cudaSuccess) e = launch();
  // Always wait: the caller's buffers and our descriptors are in use until then.
  const cudaError_t se = cudaStreamSynchronize(st);
  if (e == cudaSuccess) e = se;
  if (e != cudaSuccess) fail_batch(batch, e);
}

void CudaStore::submit(std::span<IoRequest> batch) {
  if (failed()) {
    for (IoRequest& r : batch) r.error = EIO;
    return;
  }
  for (IoRequest& r : batch) {
    r.error = 0;
    if (r.op == Op::flush) continue;
    // The protocol layer checks these; a store must still never address
    // memory outside its allocation.
    if (r.offset > size_ || r.length > size_ - r.offset) r.error = EINVAL;
    if ((r.op == Op::read || r.op == Op::write) && r.data == nullptr && r.length != 0) r.error = EINVAL;
  }
  ensure_device();
  if (tuning_.poller && inject_.load(std::memory_order_relaxed) != static_cast<int>(CudaFault::bad_launch) &&
      try_poller(batch)) {
    return;
  }
  run_on_lane(batch);
}

}  // namespace

Result<std::unique_ptr<ChunkedStore>> make_cuda_store(const CudaStoreOptions& options,
                                                      const CudaStoreTuning& tuning, std::string& report) {
  auto s = CudaStore::create(options, tuning, report);
  if (!s) {
    if (report.empty()) report = s.error().message;
    return std::unexpected(s.error());
  }
  return std::unique_ptr<ChunkedStore>(std::move(*s));
}

Result<std::unique_ptr<ChunkedStore>> make_cuda_store(const CudaStoreOptions& options, std::string& report) {
  CudaStoreTuning t;
  const char* env = std::getenv("TIERSWAP_CUDA_TUNING");
  std::string applied;
  if (env != nullptr && *env != '\0') {
    std::string spec(env);
    std::size_t pos = 0;
    while (pos <= spec.size()) {
      const std::size_t end = std::min(spec.find(',', pos), spec.size());
      const std::string item = spec.substr(pos, end - pos);
      pos = end + 1;
      const std::size_t eq = item.find('=');
      if (eq == std::string::npos) continue;
      const std::string key = item.substr(0, eq);
      const unsigned long long v = std::strtoull(item.c_str() + eq + 1, nullptr, 0);
      if (key == "batching")
        t.prefer_batching = v != 0;
      else if (key == "poller")
        t.poller = v != 0;
      else if (key == "poller_max")
        t.poller_max_bytes = static_cast<std::uint32_t>(v);
      else if (key == "poller_idle_us")
        t.poller_idle_us = static_cast<std::uint32_t>(v);
      else if (key == "lanes")
        t.lanes = static_cast<unsigned>(v);
      else if (key == "copy_min")
        t.copy_min_bytes = static_cast<std::uint32_t>(v);
      else if (key == "spin")
        t.spin_wait = v != 0;
      else
        continue;
      applied += (applied.empty() ? "" : ",") + item;
    }
  }
  auto r = make_cuda_store(options, t, report);
  if (r && !applied.empty()) report += " (TIERSWAP_CUDA_TUNING: " + applied + ")";
  return r;
}

void cuda_store_inject(BlockStore& store, CudaFault fault) {
  if (auto* s = dynamic_cast<CudaStore*>(&store)) s->inject(fault);
}

CudaStoreCounters cuda_store_counters(const BlockStore& store) {
  if (const auto* s = dynamic_cast<const CudaStore*>(&store)) return s->counters();
  return {};
}

}  // namespace tierswap::vram
