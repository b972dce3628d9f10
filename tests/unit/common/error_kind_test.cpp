#include <gtest/gtest.h>

#include <cerrno>
#include <string>

#include "common/result.hpp"
#include "dbus/names.hpp"

namespace tierswap {
namespace {

constexpr ErrorKind kAllKinds[] = {
    ErrorKind::failed,
    ErrorKind::invalid_config,
    ErrorKind::invalid_argument,
    ErrorKind::not_found,
    ErrorKind::busy,
    ErrorKind::not_enough_memory,
    ErrorKind::permission_denied,
    ErrorKind::unsupported,
    ErrorKind::protocol,
    ErrorKind::kernel,
};

TEST(ErrorKind, ErrnoTableOfFailKeepsTheOldMeaningAndTheErrno) {
  struct Row {
    int code;
    ErrorKind kind;
  };
  const Row rows[] = {
      {EINVAL, ErrorKind::invalid_config},
      {ENOENT, ErrorKind::not_found},
      {EBUSY, ErrorKind::busy},
      {ENOMEM, ErrorKind::not_enough_memory},
      {EPERM, ErrorKind::permission_denied},
      {EACCES, ErrorKind::permission_denied},
      {EOPNOTSUPP, ErrorKind::unsupported},
      {ENOSYS, ErrorKind::unsupported},
      {EPROTO, ErrorKind::protocol},
      {EIO, ErrorKind::kernel},
      {EEXIST, ErrorKind::kernel},
      {0, ErrorKind::failed},
  };
  for (const auto& r : rows) {
    const Error e = fail(r.code, "x").error();
    EXPECT_EQ(e.kind, r.kind) << r.code << ": " << to_string(e.kind);
    EXPECT_EQ(e.code, r.code);
  }
}

TEST(ErrorKind, TypedErrorsCarryNoErrnoAndKernelErrorsKeepIt) {
  const Error busy = fail(ErrorKind::busy, "tier \"fast\" is being demoted").error();
  EXPECT_EQ(busy.kind, ErrorKind::busy);
  EXPECT_EQ(busy.code, 0);
  EXPECT_EQ(busy.describe(), "tier \"fast\" is being demoted");  // no strerror tail

  const Error k = kernel_error(EBUSY, "swapoff /dev/zram1").error();
  EXPECT_EQ(k.kind, ErrorKind::kernel);  // the kernel's EBUSY is not "another operation"
  EXPECT_EQ(k.code, EBUSY);
  EXPECT_EQ(k.describe(), std::string("swapoff /dev/zram1: ") + std::strerror(EBUSY));

  const Error w = wrap(k, "zram tier \"fast\"").error();
  EXPECT_EQ(w.kind, ErrorKind::kernel);
  EXPECT_EQ(w.code, EBUSY);
  EXPECT_EQ(w.message, "zram tier \"fast\": swapoff /dev/zram1");
}

TEST(ErrorKind, NamesAreDistinct) {
  for (const auto a : kAllKinds) {
    for (const auto b : kAllKinds) {
      if (a != b) {
        EXPECT_NE(to_string(a), to_string(b));
      }
    }
  }
}

TEST(DbusErrorName, ComesFromTheKind) {
  EXPECT_STREQ(dbus::error_name_for(ErrorKind::invalid_config), dbus::kErrInvalidConfig);
  EXPECT_STREQ(dbus::error_name_for(ErrorKind::invalid_argument), dbus::kErrInvalidArgument);
  EXPECT_STREQ(dbus::error_name_for(ErrorKind::not_found), dbus::kErrNoSuchTier);
  EXPECT_STREQ(dbus::error_name_for(ErrorKind::busy), dbus::kErrBusy);
  EXPECT_STREQ(dbus::error_name_for(ErrorKind::not_enough_memory), dbus::kErrNotEnoughMemory);
  EXPECT_STREQ(dbus::error_name_for(ErrorKind::permission_denied), dbus::kErrAccessDenied);
  for (const auto k : {ErrorKind::failed, ErrorKind::unsupported, ErrorKind::protocol, ErrorKind::kernel})
    EXPECT_STREQ(dbus::error_name_for(k), dbus::kErrFailed) << to_string(k);
}

TEST(DbusErrorName, KernelErrorsAreFailedWhateverTheErrno) {
  // An errno that once picked a name (EPERM -> AccessDenied, EBUSY -> Busy)
  // does not when the kernel said it: the daemon itself was refused.
  for (const int code : {EPERM, EACCES, EBUSY, ENOENT, EINVAL, ENOMEM})
    EXPECT_STREQ(dbus::error_name_for(kernel_error(code, "x").error().kind), dbus::kErrFailed) << code;
}

TEST(DbusErrorName, ClientReadsTheKindBack) {
  for (const auto k : kAllKinds) {
    const ErrorKind back = dbus::error_kind_for_name(dbus::error_name_for(k));
    const bool named = std::string(dbus::error_name_for(k)) != dbus::kErrFailed;
    EXPECT_EQ(back, named ? k : ErrorKind::failed) << to_string(k);
  }
  EXPECT_EQ(dbus::error_kind_for_name("org.freedesktop.DBus.Error.AccessDenied"), ErrorKind::failed);
  EXPECT_EQ(dbus::error_kind_for_name(""), ErrorKind::failed);
}

}  // namespace
}  // namespace tierswap
