// format_diagnostic(): the line a person reads.
#include <gtest/gtest.h>

#include "config/loader.hpp"

namespace tierswap::config {
namespace {

TEST(FormatDiagnostic, ErrorWithLocationPathAndHint) {
  Diagnostic d{Severity::error,
               {"/etc/tierswap.yaml", 7, 11},
               "tiers[1].size",
               "\"12X\" is not a size",
               "try 8G, 50%, min(ram / 2, 8G)"};
  EXPECT_EQ(format_diagnostic(d),
            "/etc/tierswap.yaml:7:11: tiers[1].size: \"12X\" is not a size (try 8G, 50%, min(ram / 2, 8G))");
}

TEST(FormatDiagnostic, WarningAfterLocation) {
  Diagnostic d{Severity::warning, {"a.yaml", 3, 12}, "zswap.enabled", "pages get compressed twice", ""};
  EXPECT_EQ(format_diagnostic(d), "a.yaml:3:12: warning: zswap.enabled: pages get compressed twice");
}

TEST(FormatDiagnostic, NoLineNoPath) {
  Diagnostic d{Severity::error, {"a.yaml", 0, 0}, "", "cannot read this file: No such file or directory", ""};
  EXPECT_EQ(format_diagnostic(d), "a.yaml: cannot read this file: No such file or directory");
}

TEST(ToString, RoundTrips) {
  for (Profile p :
       {Profile::desktop, Profile::server, Profile::db, Profile::k8s_node, Profile::gpu_workstation})
    EXPECT_EQ(profile_from_string(to_string(p)), p);
  for (TierKind k : {TierKind::zram, TierKind::file, TierKind::partition, TierKind::vram})
    EXPECT_EQ(tier_kind_from_string(to_string(k)), k);
  EXPECT_STREQ(to_string(Profile::k8s_node), "k8s-node");
  EXPECT_STREQ(to_string(Profile::gpu_workstation), "gpu-workstation");
  EXPECT_STREQ(to_string(Profile::none), "none");
  EXPECT_FALSE(profile_from_string("none").has_value());
  EXPECT_EQ(recompress_when_from_string("huge"), RecompressWhen::huge);
}

}  // namespace
}  // namespace tierswap::config
