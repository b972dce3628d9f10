// PSI triggers (Documentation/accounting/psi.rst): a process writes
// "<some|full> <stall us> <window us>" to /proc/pressure/{memory,io,cpu}
// and polls the fd for POLLPRI; the kernel signals when tasks stalled at
// least `stall` within any `window`. Text in, values out: no I/O here.
//
// Limits the kernel enforces (checked here, so that a bad trigger is
// refused with its reason before the write):
//   window 500 ms .. 10 s; 0 < stall <= window;
//   without CAP_SYS_RESOURCE (unprivileged triggers): the window must be a
//   multiple of 2 s (else EINVAL).
// The text written ends in "\n" (the kernel overwrites the last byte it is
// given with a NUL: a trigger written without a terminator loses its last
// digit).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.hpp"

namespace tierswap::policy {

inline constexpr std::uint64_t kPsiMinWindowUs = 500'000;
inline constexpr std::uint64_t kPsiMaxWindowUs = 10'000'000;
inline constexpr std::uint64_t kPsiUnprivilegedWindowStepUs = 2'000'000;

struct PsiTrigger {
  bool full = false;  // "full" (all tasks stalled) rather than "some"
  std::uint64_t stall_us = 0;
  std::uint64_t window_us = 0;
  friend bool operator==(const PsiTrigger&, const PsiTrigger&) = default;
};

// "some 150000 2000000\n".
std::string format_psi_trigger(const PsiTrigger& t);

// Parses "some 150000 2000000" (a trailing "\n" or "\0" is allowed) and
// checks the limits above. `privileged`: the writer has CAP_SYS_RESOURCE
// (no 2 s step). EINVAL naming the field and the limit.
Result<PsiTrigger> parse_psi_trigger(std::string_view text, bool privileged = false);

// The limits above for a trigger built in code.
Result<void> check_psi_trigger(const PsiTrigger& t, bool privileged = false);

}  // namespace tierswap::policy
