// ThreadSanitizer annotations: order that exists but that TSan cannot see,
// and reads that race by design. Without -fsanitize=thread every function
// here is empty and compiles away.
//
//   happens_before(addr) / happens_after(addr)
//       A release on addr, and an acquire of every release made on it so
//       far. For order established outside the process (a client that
//       sends its next request only after it read the reply to the last).
//   IgnoreReads
//       While one lives, this thread's memory accesses are left out of
//       TSan's checks (the runtime ignores reads and writes alike). Only for
//       a read whose result is checked and thrown away when it raced.
//
// TIERSWAP_TSAN is 1 in a ThreadSanitizer build, else 0.
#pragma once

#if defined(__SANITIZE_THREAD__)
#define TIERSWAP_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TIERSWAP_TSAN 1
#endif
#endif
#ifndef TIERSWAP_TSAN
#define TIERSWAP_TSAN 0
#endif

#if TIERSWAP_TSAN
// The runtime's dynamic annotations (libtsan, compiler-rt).
extern "C" void AnnotateHappensBefore(const char* file, int line, const volatile void* addr);
extern "C" void AnnotateHappensAfter(const char* file, int line, const volatile void* addr);
extern "C" void AnnotateIgnoreReadsBegin(const char* file, int line);
extern "C" void AnnotateIgnoreReadsEnd(const char* file, int line);
#endif

namespace tierswap::tsan {

inline void happens_before([[maybe_unused]] const volatile void* addr) {
#if TIERSWAP_TSAN
  AnnotateHappensBefore(__FILE__, __LINE__, addr);
#endif
}

inline void happens_after([[maybe_unused]] const volatile void* addr) {
#if TIERSWAP_TSAN
  AnnotateHappensAfter(__FILE__, __LINE__, addr);
#endif
}

// The constructor and destructor are user-provided in every build (empty
// without TSan), so that a scope's guard is never an unused variable.
class IgnoreReads {
 public:
  IgnoreReads() {
#if TIERSWAP_TSAN
    AnnotateIgnoreReadsBegin(__FILE__, __LINE__);
#endif
  }
  ~IgnoreReads() {
#if TIERSWAP_TSAN
    AnnotateIgnoreReadsEnd(__FILE__, __LINE__);
#endif
  }
  IgnoreReads(const IgnoreReads&) = delete;
  IgnoreReads& operator=(const IgnoreReads&) = delete;
};

}  // namespace tierswap::tsan
