// Gather/scatter and polling kernels of CudaStore (see cuda_kernels.hpp).
//
// Host memory is always read with ld.global.cv (__ldcv): the payload buffers
// are reused between requests and the persistent poller must never see a
// stale cached line. VRAM is read with __ldcg (L2, coherent across SMs), so a
// segment written by a launched kernel is seen by the poller and vice versa.
// Each thread moves 16-byte vectors, four loads in flight before the first
// store; one block per segment (launched) or the whole block (poller).
#include "backends/vram/cuda_kernels.hpp"

namespace tierswap::vram::cuda {
namespace {

constexpr unsigned kUnroll = 4;
constexpr unsigned kMaxGrid = 2048;

__device__ __forceinline__ void move_seg(const Seg& s, char* vram, unsigned tid, unsigned nthreads) {
  char* dev = vram + s.dev_off;
  const unsigned n = s.len / 16;
  if (s.op == kSegZero) {
    const int4 z = make_int4(0, 0, 0, 0);
    int4* d = reinterpret_cast<int4*>(dev);
    for (unsigned i = tid; i < n; i += nthreads) d[i] = z;
    return;
  }
  char* host = reinterpret_cast<char*>(s.host);
  if ((s.host & 15) != 0) {
    // Caller's buffer is not 16-byte aligned: correct, byte at a time.
    if (s.op == kSegWrite) {
      const volatile char* src = host;
      for (unsigned i = tid; i < s.len; i += nthreads) dev[i] = src[i];
    } else {
      for (unsigned i = tid; i < s.len; i += nthreads) host[i] = __ldcg(dev + i);
    }
    return;
  }
  if (s.op == kSegWrite) {
    const int4* src = reinterpret_cast<const int4*>(host);
    int4* dst = reinterpret_cast<int4*>(dev);
    for (unsigned base = tid; base < n; base += nthreads * kUnroll) {
      int4 v[kUnroll];
#pragma unroll
      for (unsigned k = 0; k < kUnroll; ++k) {
        const unsigned i = base + k * nthreads;
        if (i < n) v[k] = __ldcv(src + i);
      }
#pragma unroll
      for (unsigned k = 0; k < kUnroll; ++k) {
        const unsigned i = base + k * nthreads;
        if (i < n) dst[i] = v[k];
      }
    }
  } else {
    const int4* src = reinterpret_cast<const int4*>(dev);
    int4* dst = reinterpret_cast<int4*>(host);
    for (unsigned base = tid; base < n; base += nthreads * kUnroll) {
      int4 v[kUnroll];
#pragma unroll
      for (unsigned k = 0; k < kUnroll; ++k) {
        const unsigned i = base + k * nthreads;
        if (i < n) v[k] = __ldcg(src + i);
      }
#pragma unroll
      for (unsigned k = 0; k < kUnroll; ++k) {
        const unsigned i = base + k * nthreads;
        if (i < n) dst[i] = v[k];
      }
    }
  }
}

__global__ void __launch_bounds__(kGatherThreads)
    gather_inline_kernel(const __grid_constant__ InlineSegs p, unsigned count, char* vram) {
  for (unsigned s = blockIdx.x; s < count; s += gridDim.x) {
    move_seg(p.seg[s], vram, threadIdx.x, blockDim.x);
  }
}

__global__ void __launch_bounds__(kGatherThreads)
    gather_mapped_kernel(const Seg* segs, unsigned count, char* vram) {
  __shared__ Seg sh;
  for (unsigned s = blockIdx.x; s < count; s += gridDim.x) {
    if (threadIdx.x < 4) {
      reinterpret_cast<unsigned long long*>(&sh)[threadIdx.x] =
          __ldcv(reinterpret_cast<const unsigned long long*>(segs + s) + threadIdx.x);
    }
    __syncthreads();
    const Seg seg = sh;
    __syncthreads();
    move_seg(seg, vram, threadIdx.x, blockDim.x);
  }
}

__device__ __forceinline__ unsigned long long ld_volatile_u64(const volatile void* p) {
  unsigned long long v;
  asm volatile("ld.volatile.global.u64 %0, [%1];" : "=l"(v) : "l"(p) : "memory");
  return v;
}

__device__ __forceinline__ void st_release_sys_u32(volatile void* p, unsigned v) {
  asm volatile("st.release.sys.global.u32 [%0], %1;" ::"l"(p), "r"(v) : "memory");
}

__device__ __forceinline__ unsigned long long global_ns() {
  unsigned long long t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}

// One block. Warp 0 polls: lane 0 the bell, lane l word l of segments 0..7,
// all in flight together (one PCIe round trip a round); a request is taken
// when the bell is new and every word it needs carries the bell's seq.
__global__ void __launch_bounds__(kPollerThreads)
    poller_kernel(Mailbox* mb, char* vram, unsigned seq, unsigned long long idle_ns) {
  __shared__ Seg sh[kPollerSegs];
  __shared__ unsigned raw[kPollerSegs * 4];
  __shared__ unsigned s_cmd;
  __shared__ unsigned s_count;
  const unsigned lane = threadIdx.x & 31;
  const volatile unsigned long long* words =
      reinterpret_cast<const volatile unsigned long long*>(&mb->seg[0].w[0]);
  unsigned long long last = global_ns();
  for (;;) {
    if (threadIdx.x < 32) {
      unsigned cmd = 0, count = 0;
      for (;;) {
        const unsigned long long bell = lane == 0 ? ld_volatile_u64(&mb->bell) : 0;
        const unsigned long long w = ld_volatile_u64(words + lane);
        const unsigned long long b = __shfl_sync(0xffffffffu, bell, 0);
        const unsigned bseq = static_cast<unsigned>(b);
        const unsigned hi = static_cast<unsigned>(b >> 32);
        if (hi == kBellStop) {
          cmd = 2;
          break;
        }
        if (bseq != seq) {
          count = hi < kPollerSegs ? hi : kPollerSegs;
          bool ok = lane >= count * 4 || static_cast<unsigned>(w >> 32) == bseq;
          raw[lane] = static_cast<unsigned>(w);
          if (count > 8) {
            const unsigned long long w2 = ld_volatile_u64(words + 32 + lane);
            ok = ok && (32 + lane >= count * 4 || static_cast<unsigned>(w2 >> 32) == bseq);
            raw[32 + lane] = static_cast<unsigned>(w2);
          }
          if (__all_sync(0xffffffffu, ok)) {
            seq = bseq;
            cmd = 1;
            break;
          }
          continue;  // words still on their way: read again
        }
        const bool idle = lane == 0 && global_ns() - last > idle_ns;
        if (__any_sync(0xffffffffu, idle)) {
          cmd = 2;
          break;
        }
      }
      __syncwarp();
      if (cmd == 1 && lane < count) {
        Seg d;
        d.dev_off = static_cast<unsigned long long>(raw[lane * 4]) << 9;
        d.host = static_cast<unsigned long long>(raw[lane * 4 + 1]) |
                 (static_cast<unsigned long long>(raw[lane * 4 + 2]) << 32);
        d.op = raw[lane * 4 + 3] >> 24;
        d.len = (raw[lane * 4 + 3] & 0xFFFFFFu) << 9;
        d.pad = 0;
        sh[lane] = d;
      }
      if (lane == 0) {
        s_cmd = cmd;
        s_count = count;
      }
    }
    __syncthreads();
    if (s_cmd == 2) {
      if (threadIdx.x == 0) {
        __threadfence_system();
        mb->exited = 1;
      }
      return;
    }
    const unsigned count = s_count;
    for (unsigned c = 0; c < count; ++c) move_seg(sh[c], vram, threadIdx.x, blockDim.x);
    __threadfence_system();
    __syncthreads();
    if (threadIdx.x == 0) {
      st_release_sys_u32(&mb->done, seq);
      last = global_ns();
    }
  }
}

__global__ void __launch_bounds__(kGatherThreads) zero_kernel(int4* dst, unsigned long long n) {
  const int4 z = make_int4(0, 0, 0, 0);
  const unsigned long long stride = static_cast<unsigned long long>(gridDim.x) * blockDim.x;
  for (unsigned long long i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) dst[i] = z;
}

unsigned grid_for(unsigned count) {
  return count < kMaxGrid ? count : kMaxGrid;
}
unsigned threads_for(int inject) {
  // More threads than a block may have: the launch fails with
  // cudaErrorInvalidConfiguration, which is not sticky.
  return inject == kInjectBadLaunch ? 4096 : kGatherThreads;
}

}  // namespace

cudaError_t launch_gather_inline(const InlineSegs& segs, unsigned count, char* vram, cudaStream_t stream,
                                 int inject) {
  if (count == 0) return cudaSuccess;
  gather_inline_kernel<<<grid_for(count), threads_for(inject), 0, stream>>>(segs, count, vram);
  return cudaGetLastError();
}

cudaError_t launch_gather_mapped(const Seg* segs_dev, unsigned count, char* vram, cudaStream_t stream,
                                 int inject) {
  if (count == 0) return cudaSuccess;
  gather_mapped_kernel<<<grid_for(count), threads_for(inject), 0, stream>>>(segs_dev, count, vram);
  return cudaGetLastError();
}

cudaError_t launch_zero(char* dst, std::uint64_t len, cudaStream_t stream, int inject) {
  const unsigned long long n = len / 16;
  if (n == 0) return cudaSuccess;
  const unsigned long long want = (n + kGatherThreads - 1) / kGatherThreads;
  const unsigned grid = want < kMaxGrid ? static_cast<unsigned>(want) : kMaxGrid;
  zero_kernel<<<grid, threads_for(inject), 0, stream>>>(reinterpret_cast<int4*>(dst), n);
  return cudaGetLastError();
}

cudaError_t launch_poller(Mailbox* mailbox_dev, char* vram, std::uint32_t start_seq, std::uint64_t idle_ns,
                          cudaStream_t stream) {
  poller_kernel<<<1, kPollerThreads, 0, stream>>>(mailbox_dev, vram, start_seq, idle_ns);
  return cudaGetLastError();
}

}  // namespace tierswap::vram::cuda
