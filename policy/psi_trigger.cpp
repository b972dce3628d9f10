#include "policy/psi_trigger.hpp"

#include <charconv>

namespace tierswap::policy {
namespace {

std::string us_text(std::uint64_t us) {
  char b[32];
  std::snprintf(b, sizeof b, "%llu us", static_cast<unsigned long long>(us));
  return b;
}

// The next blank-separated word of `text`, consumed.
std::string_view word(std::string_view& text) {
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  std::size_t n = 0;
  while (n < text.size() && text[n] != ' ') ++n;
  const auto w = text.substr(0, n);
  text.remove_prefix(n);
  return w;
}

Result<std::uint64_t> number(std::string_view w, const char* field) {
  std::uint64_t v = 0;
  const auto [end, ec] = std::from_chars(w.data(), w.data() + w.size(), v);
  if (w.empty() || ec != std::errc{} || end != w.data() + w.size())
    return fail(EINVAL, std::string("PSI trigger: ") + field + ": \"" + std::string(w) +
                            "\" is not a number of microseconds");
  return v;
}

}  // namespace

std::string format_psi_trigger(const PsiTrigger& t) {
  return std::string(t.full ? "full " : "some ") + std::to_string(t.stall_us) + " " +
         std::to_string(t.window_us) + "\n";
}

Result<void> check_psi_trigger(const PsiTrigger& t, bool privileged) {
  if (t.window_us < kPsiMinWindowUs || t.window_us > kPsiMaxWindowUs)
    return fail(EINVAL, "PSI trigger: window " + us_text(t.window_us) + " is outside " +
                            us_text(kPsiMinWindowUs) + " .. " + us_text(kPsiMaxWindowUs));
  if (t.stall_us == 0 || t.stall_us > t.window_us)
    return fail(EINVAL, "PSI trigger: stall " + us_text(t.stall_us) +
                            " must be above 0 and at most the window (" + us_text(t.window_us) + ")");
  if (!privileged && t.window_us % kPsiUnprivilegedWindowStepUs != 0)
    return fail(EINVAL, "PSI trigger: window " + us_text(t.window_us) +
                            " is not a multiple of 2 s, which the kernel requires without CAP_SYS_RESOURCE");
  return {};
}

Result<PsiTrigger> parse_psi_trigger(std::string_view text, bool privileged) {
  if (!text.empty() && (text.back() == '\n' || text.back() == '\0')) text.remove_suffix(1);
  PsiTrigger t;
  const auto kind = word(text);
  if (kind == "full")
    t.full = true;
  else if (kind != "some")
    return fail(EINVAL, "PSI trigger: \"" + std::string(kind) + "\" is not some or full");
  auto stall = number(word(text), "stall");
  if (!stall) return std::unexpected(stall.error());
  auto window = number(word(text), "window");
  if (!window) return std::unexpected(window.error());
  if (!word(text).empty())
    return fail(EINVAL, "PSI trigger: more than three fields (some|full STALL_US WINDOW_US)");
  t.stall_us = *stall;
  t.window_us = *window;
  if (auto ok = check_psi_trigger(t, privileged); !ok) return std::unexpected(ok.error());
  return t;
}

}  // namespace tierswap::policy
