// Bounds on the YAML text itself, checked before the schema walks it.
// Internal to config/ (schema.cpp calls it); yaml-cpp stays in the .cpp.
//
// Why: anchors and aliases let a few hundred bytes stand for billions of
// nodes ("billion laughs": ten aliases of ten aliases of ...). yaml-cpp
// shares aliased nodes, but everything that walks the tree (the schema
// reader, anything that prints or copies it) pays for every expansion.
// A real tierswap config is a few dozen nodes; aliases that expand past
// kMaxAliasNodes are refused before the tree is built.
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>

#include "config/spec.hpp"

namespace tierswap::config {

// Nodes that aliases may add to the tree, counted with their whole subtree
// (an alias of a list of 10 scalars adds 11). Nodes written out in the file
// do not count: they are bounded by the file size cap (loader.hpp).
inline constexpr std::size_t kMaxAliasNodes = 10000;

// Streams the first document's events once (linear in the text) and sums
// what each alias expands to. Returns an error diagnostic at the alias that
// crosses kMaxAliasNodes, with the key path that leads to it; nullopt when
// the text is within the bound or is malformed YAML (the caller's parse
// reports that).
std::optional<Diagnostic> check_alias_expansion(std::string_view yaml, std::string_view source);

}  // namespace tierswap::config
