// A refusal of the project's own whose API documents an errno for it (EPERM
// for a path that fails the safety rules, EEXIST for a file it will not
// overwrite, EINVAL for a malformed argument): the typed kind for the caller
// to act on (the D-Bus error name comes from it), the errno for callers that
// test Error::code and for describe(), so that the printed message stays
// what it was.
//
//   return refusal(ErrorKind::invalid_config, EPERM, path + " is a symlink");
#pragma once

#include <expected>
#include <string>
#include <utility>

#include "common/result.hpp"

namespace tierswap {

[[nodiscard]] inline std::unexpected<Error> refusal(ErrorKind kind, int code, std::string message) {
  return std::unexpected<Error>(Error{kind, std::move(message), code});
}

}  // namespace tierswap
