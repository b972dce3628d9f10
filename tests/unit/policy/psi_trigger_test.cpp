// PSI trigger text: what is written to /proc/pressure/* and the kernel's
// limits (window 500 ms..10 s, stall within the window, a 2 s step without
// CAP_SYS_RESOURCE), checked before the write.
#include "policy/psi_trigger.hpp"

#include <gtest/gtest.h>

namespace tierswap::policy {
namespace {

TEST(PsiTrigger, FormatEndsInANewlineTheKernelOverwrites) {
  EXPECT_EQ(format_psi_trigger({false, 150'000, 2'000'000}), "some 150000 2000000\n");
  EXPECT_EQ(format_psi_trigger({true, 1, 4'000'000}), "full 1 4000000\n");
}

TEST(PsiTrigger, ParseRoundTripsWithEitherTerminator) {
  const PsiTrigger t{false, 150'000, 2'000'000};
  EXPECT_EQ(*parse_psi_trigger("some 150000 2000000"), t);
  EXPECT_EQ(*parse_psi_trigger("some 150000 2000000\n"), t);
  EXPECT_EQ(*parse_psi_trigger(std::string_view("some 150000 2000000\0", 20)), t);
  EXPECT_EQ(*parse_psi_trigger(format_psi_trigger({true, 500'000, 10'000'000})),
            (PsiTrigger{true, 500'000, 10'000'000}));
}

TEST(PsiTrigger, UnprivilegedWindowMustBeAMultipleOfTwoSeconds) {
  auto r = parse_psi_trigger("some 150000 1000000\n");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, EINVAL);
  EXPECT_NE(r.error().message.find("multiple of 2 s"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("CAP_SYS_RESOURCE"), std::string::npos) << r.error().message;
  EXPECT_TRUE(parse_psi_trigger("some 150000 1000000\n", /*privileged=*/true));
}

TEST(PsiTrigger, LimitsNameTheField) {
  struct Case {
    const char* text;
    const char* says;
  };
  for (const Case c : {Case{"some 150000 400000", "window 400000 us is outside"},
                       {"some 150000 12000000", "window 12000000 us is outside"},
                       {"some 0 2000000", "stall 0 us"},
                       {"some 3000000 2000000", "stall 3000000 us"},
                       {"both 1 2000000", "\"both\" is not some or full"},
                       {"some x 2000000", "stall: \"x\" is not a number"},
                       {"some 1 2000000 9", "more than three fields"},
                       {"some 1", "window: \"\" is not a number"},
                       {"", "\"\" is not some or full"}}) {
    auto r = parse_psi_trigger(c.text, /*privileged=*/true);
    ASSERT_FALSE(r) << c.text;
    EXPECT_EQ(r.error().code, EINVAL) << c.text;
    EXPECT_NE(r.error().message.find(c.says), std::string::npos) << c.text << ": " << r.error().message;
    EXPECT_TRUE(r.error().message.starts_with("PSI trigger: ")) << r.error().message;
  }
}

}  // namespace
}  // namespace tierswap::policy
