// Result<T>: the error type every tierswap library returns.
//
// Error carries a typed kind (what went wrong, for the caller to act on: the
// D-Bus error name and tierswapctl's exit status come from it), the kernel's
// errno where a syscall or sysfs access gave the answer, and a message that a
// person can act on: it names the file, key, value or sysfs path. Exceptions
// are used only where a library we call throws (yaml-cpp, sdbus-c++,
// nlohmann-json) and are converted at that boundary.
//
//   return fail(ErrorKind::busy, "tier \"fast\" is being demoted");
//   return kernel_error(errno, "swapon " + path);
#pragma once

#include <cerrno>
#include <cstring>
#include <expected>
#include <string>
#include <string_view>
#include <utility>

namespace tierswap {

// A small set on purpose: a kind is worth having when a caller (the D-Bus
// front end, tierswapctl, a retry loop) treats it differently.
enum class ErrorKind {
  failed,             // anything else; the message says what
  invalid_config,     // the config, or the plan it gives, is invalid
  invalid_argument,   // a caller's argument is malformed (empty, too long, bad characters)
  not_found,          // the named thing (a tier, a record) does not exist
  busy,               // another operation holds what this one needs
  not_enough_memory,  // the room rule refused: the pages would not fit elsewhere
  permission_denied,  // the caller is not allowed to do this
  unsupported,        // this kernel or build lacks what is needed
  protocol,           // a peer or a document broke its format (NBD, JSON)
  kernel,             // a syscall or sysfs access failed; Error::code holds its errno
};

// "invalid_config", ... (logs, tests).
constexpr std::string_view to_string(ErrorKind k) {
  switch (k) {
    case ErrorKind::failed:
      return "failed";
    case ErrorKind::invalid_config:
      return "invalid_config";
    case ErrorKind::invalid_argument:
      return "invalid_argument";
    case ErrorKind::not_found:
      return "not_found";
    case ErrorKind::busy:
      return "busy";
    case ErrorKind::not_enough_memory:
      return "not_enough_memory";
    case ErrorKind::permission_denied:
      return "permission_denied";
    case ErrorKind::unsupported:
      return "unsupported";
    case ErrorKind::protocol:
      return "protocol";
    case ErrorKind::kernel:
      return "kernel";
  }
  return "failed";
}

// The kind that fail(int errno, ...) gives. It keeps the meaning each errno
// had when errors were errno values alone (and so the D-Bus error name that
// a client saw for it):
//   EINVAL            -> invalid_config
//   ENOENT            -> not_found
//   EBUSY             -> busy
//   ENOMEM            -> not_enough_memory
//   EPERM, EACCES     -> permission_denied
//   EOPNOTSUPP, ENOTSUP, ENOSYS -> unsupported
//   EPROTO            -> protocol
//   0                 -> failed
//   any other errno   -> kernel
constexpr ErrorKind kind_for_errno(int code) {
  switch (code) {
    case 0:
      return ErrorKind::failed;
    case EINVAL:
      return ErrorKind::invalid_config;
    case ENOENT:
      return ErrorKind::not_found;
    case EBUSY:
      return ErrorKind::busy;
    case ENOMEM:
      return ErrorKind::not_enough_memory;
    case EPERM:
    case EACCES:
      return ErrorKind::permission_denied;
    case EOPNOTSUPP:
#if ENOTSUP != EOPNOTSUPP
    case ENOTSUP:
#endif
    case ENOSYS:
      return ErrorKind::unsupported;
    case EPROTO:
      return ErrorKind::protocol;
    default:
      return ErrorKind::kernel;
  }
}

struct Error {
  ErrorKind kind = ErrorKind::failed;
  int code = 0;         // the kernel's errno (EBUSY, ENOENT, ...) where it gave the answer, else 0
  std::string message;  // complete sentence fragment naming the thing

  Error() = default;
  Error(ErrorKind k, std::string m, int errno_code = 0) : kind(k), code(errno_code), message(std::move(m)) {}
  // An errno-coded error: the kind comes from kind_for_errno(), the errno stays.
  Error(int errno_code, std::string m)
      : kind(kind_for_errno(errno_code)), code(errno_code), message(std::move(m)) {}

  // "message: strerror(code)" when code is set, else message alone.
  [[nodiscard]] std::string describe() const {
    if (code == 0) return message;
    return message + ": " + std::strerror(code);
  }
};

template <class T>
using Result = std::expected<T, Error>;

// return fail(ErrorKind::invalid_argument, "tier name is empty");
[[nodiscard]] inline std::unexpected<Error> fail(ErrorKind kind, std::string message) {
  return std::unexpected<Error>(Error{kind, std::move(message)});
}

// The kernel said no: kind `kernel`, its errno kept for describe() and for
// callers that retry on a particular answer (EBUSY from a zram reset).
// return kernel_error(errno, "swapon " + path);
[[nodiscard]] inline std::unexpected<Error> kernel_error(int code, std::string message) {
  return std::unexpected<Error>(Error{ErrorKind::kernel, std::move(message), code});
}

// An errno-coded error, its kind from kind_for_errno() (see the table there).
// Prefer fail(ErrorKind, ...) where the errno is not the kernel's answer and
// kernel_error() where it is.
// return fail(ENOENT, paths::block_attr("zram3", "disksize"));
[[nodiscard]] inline std::unexpected<Error> fail(int code, std::string message) {
  return std::unexpected<Error>(Error{code, std::move(message)});
}

// Prefixes context onto an error while keeping its kind and code:
// return wrap(r.error(), "zram tier \"fast\"");
[[nodiscard]] inline std::unexpected<Error> wrap(Error e, const std::string& context) {
  e.message = context + ": " + e.message;
  return std::unexpected<Error>(std::move(e));
}

}  // namespace tierswap
