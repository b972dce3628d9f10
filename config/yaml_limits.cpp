// check_alias_expansion(): a yaml-cpp EventHandler that keeps, per anchor,
// the number of nodes its subtree holds once its own aliases are expanded,
// and adds that number at each alias. Saturating arithmetic: the counts of
// a billion-laughs text would overflow long before the walk ends.
#include "config/yaml_limits.hpp"

#include <fmt/format.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/exceptions.h>
#include <yaml-cpp/mark.h>
#include <yaml-cpp/parser.h>

#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

namespace tierswap::config {
namespace {

class AliasCounter : public YAML::EventHandler {
 public:
  std::optional<YAML::Mark> crossed_at;  // the alias that went past the bound
  std::string crossed_path;

  void OnDocumentStart(const YAML::Mark&) override {}
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t anchor) override { leaf(anchor, {}); }
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t anchor,
                const std::string& value) override {
    leaf(anchor, value);
  }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    auto it = sizes_.find(anchor);
    const std::size_t n = it == sizes_.end() ? 1 : it->second;
    if (!crossed_at) {
      alias_nodes_ = add(alias_nodes_, n);
      if (alias_nodes_ > kMaxAliasNodes) {
        crossed_at = mark;
        crossed_path = path();
      }
    }
    child(n, {});
  }
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value) override {
    open(anchor, false);
  }
  void OnSequenceEnd() override { close(); }
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value) override {
    open(anchor, true);
  }
  void OnMapEnd() override { close(); }

 private:
  struct Open {
    YAML::anchor_t anchor;
    bool map;
    std::size_t nodes = 1;  // itself plus its children, expanded
    std::size_t items = 0;  // children seen (a map's keys and values alternate)
    std::string key;        // a map's current key, for the path
  };

  static std::size_t add(std::size_t a, std::size_t b) { return a > SIZE_MAX - b ? SIZE_MAX : a + b; }

  void leaf(YAML::anchor_t anchor, const std::string& value) {
    if (anchor) sizes_[anchor] = 1;
    child(1, value);
  }

  void open(YAML::anchor_t anchor, bool map) { stack_.push_back(Open{anchor, map}); }

  void close() {
    Open o = std::move(stack_.back());
    stack_.pop_back();
    if (o.anchor) sizes_[o.anchor] = o.nodes;
    child(o.nodes, {});
  }

  // A finished node of `n` nodes inside the innermost open collection.
  void child(std::size_t n, const std::string& scalar) {
    if (stack_.empty()) return;
    Open& top = stack_.back();
    top.nodes = add(top.nodes, n);
    if (top.map && top.items % 2 == 0) top.key = scalar;
    ++top.items;
  }

  // Key path of the node being read: "tiers[0].algorithm", like the schema's.
  std::string path() const {
    std::string p;
    for (const Open& o : stack_) {
      if (o.map) {
        if (o.items % 2 == 1) p += (p.empty() ? "" : ".") + o.key;
      } else {
        p += fmt::format("[{}]", o.items);
      }
    }
    return p;
  }

  std::vector<Open> stack_;
  std::unordered_map<YAML::anchor_t, std::size_t> sizes_;
  std::size_t alias_nodes_ = 0;
};

}  // namespace

std::optional<Diagnostic> check_alias_expansion(std::string_view yaml, std::string_view source) {
  std::istringstream in{std::string(yaml)};
  AliasCounter counter;
  try {
    YAML::Parser parser(in);
    parser.HandleNextDocument(counter);
  } catch (const YAML::Exception&) {
    if (!counter.crossed_at) return std::nullopt;  // malformed: YAML::Load says where
  }
  if (!counter.crossed_at) return std::nullopt;
  const YAML::Mark& m = *counter.crossed_at;
  return Diagnostic{Severity::error, SourceLoc{std::string(source), m.line + 1, m.column + 1},
                    counter.crossed_path, fmt::format("aliases expand to more than {} nodes", kMaxAliasNodes),
                    "a tierswap config needs a few dozen; write the values out instead of nesting aliases"};
}

}  // namespace tierswap::config
