// Result<T>: the error type every tierswap library returns.
//
// Error carries an errno-like code (0 when none applies) and a message that a
// person can act on: it names the file, key, value or sysfs path and, where
// there is one, the kernel's answer. Exceptions are used only where a library
// we call throws (yaml-cpp, sdbus-c++) and are converted at that boundary.
#pragma once

#include <cerrno>
#include <cstring>
#include <expected>
#include <string>
#include <utility>

namespace tierswap {

struct Error {
  int code = 0;         // errno value (EINVAL, ENOENT, ...) or 0
  std::string message;  // complete sentence fragment naming the thing

  // "message: strerror(code)" when code is set, else message alone.
  [[nodiscard]] std::string describe() const {
    if (code == 0) return message;
    return message + ": " + std::strerror(code);
  }
};

template <class T>
using Result = std::expected<T, Error>;

// return fail(ENOENT, paths::block_attr("zram3", "disksize"));
[[nodiscard]] inline std::unexpected<Error> fail(int code, std::string message) {
  return std::unexpected<Error>(Error{code, std::move(message)});
}

// Prefixes context onto an error while keeping its code:
// return wrap(r.error(), "zram tier \"fast\"");
[[nodiscard]] inline std::unexpected<Error> wrap(Error e, const std::string& context) {
  e.message = context + ": " + e.message;
  return std::unexpected<Error>(std::move(e));
}

}  // namespace tierswap
