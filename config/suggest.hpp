// "Did you mean" for unknown keys and names: a typo in a root daemon's
// config must be caught and its fix named.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tierswap::config {

// Levenshtein distance (insert, delete, substitute: cost 1 each).
std::size_t edit_distance(std::string_view a, std::string_view b);

// The candidate closest to `word`, if it is close enough to be a typo:
// distance <= max(1, min(3, word.size() / 3)). Ties go to the earlier one.
std::optional<std::string> closest(std::string_view word, const std::vector<std::string>& candidates);

// "a, b, c": for "allowed: ..." hints.
std::string join(const std::vector<std::string>& items, std::string_view sep = ", ");

}  // namespace tierswap::config
