// nlohmann-json is used only here, without exceptions (parse(..., false)
// and sax_parse(..., false)).
//
// Two readers: a SAX pass (FastLine) that fills a Snapshot straight from the
// parser's events and gives up at the first thing it does not expect, and
// the tree walk below it, which runs only for a line the SAX pass gave up on
// and is the one that words the error. A day's trace (86400 lines) is read
// without building a tree per line; every message comes from one place.
#include "policy/trace.hpp"

#include <array>
#include <bitset>
#include <cerrno>
#include <nlohmann/json.hpp>
#include <string>

namespace tierswap::policy {
namespace {

using nlohmann::json;

// A problem with the value at `key` (a path inside the line).
struct Bad {
  std::string key;
  std::string message;
};

std::string describe(const json& v) {
  std::string s = v.dump();
  return s.size() > 40 ? s.substr(0, 37) + "..." : s;
}

std::optional<Bad> count(const json& v, const std::string& key, std::uint64_t& out) {
  if (v.is_number_unsigned()) {
    out = v.get<std::uint64_t>();
    return std::nullopt;
  }
  if (v.is_number_integer() && v.get<std::int64_t>() >= 0) {
    out = static_cast<std::uint64_t>(v.get<std::int64_t>());
    return std::nullopt;
  }
  return Bad{key, "expected a non-negative integer, got " + describe(v)};
}

std::optional<Bad> percent(const json& v, const std::string& key, double& out) {
  if (v.is_number() && v.get<double>() >= 0 && v.get<double>() <= 100) {
    out = v.get<double>();
    return std::nullopt;
  }
  return Bad{key, "expected a percentage 0..100, got " + describe(v)};
}

std::optional<Bad> flag(const json& v, const std::string& key, bool& out) {
  if (v.is_boolean()) {
    out = v.get<bool>();
    return std::nullopt;
  }
  return Bad{key, "expected true or false, got " + describe(v)};
}

std::optional<Bad> object(const json& v, const std::string& key) {
  if (v.is_object()) return std::nullopt;
  return Bad{key, "expected an object, got " + describe(v)};
}

std::optional<Bad> pressure(const json& v, const std::string& key, Pressure& out) {
  if (auto b = object(v, key)) return b;
  for (const auto& [k, val] : v.items()) {
    const std::string path = key + "." + k;
    std::optional<Bad> b;
    if (k == "some")
      b = percent(val, path, out.some_avg10);
    else if (k == "full")
      b = percent(val, path, out.full_avg10);
    else
      b = Bad{path, "unknown key (allowed: some, full)"};
    if (b) return b;
  }
  return std::nullopt;
}

std::optional<Bad> vram_tier(const json& v, const std::string& key, VramTierSample& out) {
  if (auto b = object(v, key)) return b;
  for (const auto& [k, val] : v.items()) {
    const std::string path = key + "." + k;
    std::optional<Bad> b;
    if (k == "tier") {
      if (val.is_string() && !val.get<std::string>().empty())
        out.tier = val.get<std::string>();
      else
        b = Bad{path, "expected a tier name, got " + describe(val)};
    } else if (k == "free_bytes") {
      b = count(val, path, out.vram_free_bytes);
    } else if (k == "total_bytes") {
      b = count(val, path, out.vram_total_bytes);
    } else if (k == "foreign_bytes") {
      b = count(val, path, out.foreign_vram_bytes);
    } else if (k == "p99_us") {
      b = count(val, path, out.p99_latency_us);
    } else if (k == "size_bytes") {
      b = count(val, path, out.tier_size_bytes);
    } else {
      b = Bad{path,
              "unknown key (allowed: tier, free_bytes, total_bytes, foreign_bytes, p99_us, size_bytes)"};
    }
    if (b) return b;
  }
  if (out.tier.empty()) return Bad{key + ".tier", "missing: each VRAM sample names its tier"};
  return std::nullopt;
}

std::optional<Bad> snapshot(const json& line, Snapshot& s) {
  if (auto b = object(line, "")) return Bad{"", "expected a JSON object, got " + describe(line)};
  if (!line.contains("t_ms")) return Bad{"t_ms", "missing: every snapshot has its time"};
  for (const auto& [k, val] : line.items()) {
    std::optional<Bad> b;
    if (k == "t_ms") {
      b = count(val, k, s.time_ms);
    } else if (k == "memory") {
      b = pressure(val, k, s.memory);
    } else if (k == "io") {
      b = pressure(val, k, s.io);
    } else if (k == "mem_available_bytes") {
      b = count(val, k, s.mem_available_bytes);
    } else if (k == "mem_total_bytes") {
      b = count(val, k, s.mem_total_bytes);
    } else if (k == "swap_used_bytes") {
      b = object(val, k);
      if (!b)
        for (const auto& [tier, used] : val.items())
          if ((b = count(used, k + "." + tier, s.swap_used_bytes[tier]))) break;
    } else if (k == "vram") {
      if (!val.is_array()) {
        b = Bad{k, "expected a list, got " + describe(val)};
      } else {
        for (std::size_t i = 0; i < val.size() && !b; ++i) {
          s.vram.emplace_back();
          b = vram_tier(val[i], k + "[" + std::to_string(i) + "]", s.vram.back());
        }
      }
    } else if (k == "cgroup_memory") {
      b = object(val, k);
      if (!b)
        for (const auto& [name, p] : val.items())
          if ((b = pressure(p, k + "." + name, s.cgroup_memory[name]))) break;
    } else if (k == "swap_in_pages_per_s") {
      if (val.is_number() && val.get<double>() >= 0)
        s.swap_in_pages_per_s = val.get<double>();
      else
        b = Bad{k, "expected a non-negative number, got " + describe(val)};
    } else if (k == "on_battery") {
      b = flag(val, k, s.on_battery);
    } else if (k == "reload_running") {
      b = flag(val, k, s.reload_running);
    } else if (k == "user_demote_running") {
      b = flag(val, k, s.user_demote_running);
    } else {
      b = Bad{
          k,
          "unknown key (allowed: t_ms, memory, io, mem_available_bytes, mem_total_bytes, swap_used_bytes, "
          "vram, cgroup_memory, swap_in_pages_per_s, on_battery, reload_running, user_demote_running)"};
    }
    if (b) return b;
  }
  return std::nullopt;
}

// The SAX pass. Each handler returns false (stop) on anything but a valid
// snapshot's event; the caller then asks the tree walk what was wrong.
class FastLine : public nlohmann::json_sax<json> {
 public:
  explicit FastLine(Snapshot& s) : s_(s) {}

  bool done() const { return finished_; }

  bool null() override { return false; }
  bool boolean(bool v) override {
    if (ctx() != Ctx::top) return false;
    if (key_ == "on_battery") return set(s_.on_battery, v);
    if (key_ == "reload_running") return set(s_.reload_running, v);
    if (key_ == "user_demote_running") return set(s_.user_demote_running, v);
    return false;
  }
  bool number_integer(number_integer_t v) override {
    return v >= 0 && number_unsigned(static_cast<number_unsigned_t>(v));
  }
  bool number_unsigned(number_unsigned_t v) override {
    switch (ctx()) {
      case Ctx::top:
        if (key_ == "t_ms") {
          has_time_ = true;
          return set(s_.time_ms, v);
        }
        if (key_ == "mem_available_bytes") return set(s_.mem_available_bytes, v);
        if (key_ == "mem_total_bytes") return set(s_.mem_total_bytes, v);
        if (key_ == "swap_in_pages_per_s") return set(s_.swap_in_pages_per_s, v);
        return false;
      case Ctx::pressure:
        return percent(static_cast<double>(v));
      case Ctx::swap:
        s_.swap_used_bytes[key_] = v;
        return true;
      case Ctx::vram_item: {
        VramTierSample& g = s_.vram.back();
        if (key_ == "free_bytes") return set(g.vram_free_bytes, v);
        if (key_ == "total_bytes") return set(g.vram_total_bytes, v);
        if (key_ == "foreign_bytes") return set(g.foreign_vram_bytes, v);
        if (key_ == "p99_us") return set(g.p99_latency_us, v);
        if (key_ == "size_bytes") return set(g.tier_size_bytes, v);
        return false;
      }
      default:
        return false;
    }
  }
  bool number_float(number_float_t v, const string_t&) override {
    if (ctx() == Ctx::top) return key_ == "swap_in_pages_per_s" && v >= 0 && set(s_.swap_in_pages_per_s, v);
    return ctx() == Ctx::pressure && percent(v);
  }
  bool string(string_t& v) override {
    if (ctx() != Ctx::vram_item || key_ != "tier" || v.empty()) return false;
    s_.vram.back().tier = v;
    return true;
  }
  bool binary(binary_t&) override { return false; }
  bool start_object(std::size_t) override {
    if (stack_.empty()) return push(Ctx::top);
    if (ctx() == Ctx::vram_array) {
      s_.vram.emplace_back();
      return push(Ctx::vram_item);
    }
    if (ctx() == Ctx::cgroups) {
      // A name written twice: the tree walk keeps the last whole object.
      if (s_.cgroup_memory.contains(key_)) return false;
      pressure_ = &s_.cgroup_memory[key_];
      return push(Ctx::pressure);
    }
    if (ctx() != Ctx::top) return false;
    if (key_ == "memory" || key_ == "io") {
      pressure_ = key_ == "io" ? &s_.io : &s_.memory;
      return push(Ctx::pressure);
    }
    if (key_ == "swap_used_bytes") return push(Ctx::swap);
    if (key_ == "cgroup_memory") return push(Ctx::cgroups);
    return false;
  }
  bool end_object() override {
    const Ctx was = ctx();
    stack_.pop_back();
    if (was == Ctx::vram_item) return !s_.vram.back().tier.empty();
    if (was == Ctx::top) finished_ = has_time_;
    return was != Ctx::top || has_time_;
  }
  bool start_array(std::size_t) override {
    return ctx() == Ctx::top && key_ == "vram" && push(Ctx::vram_array);
  }
  bool end_array() override {
    stack_.pop_back();
    return true;
  }
  bool key(string_t& k) override {
    key_ = k;
    if (ctx() != Ctx::top) return true;
    // An unknown key, or one written twice (the tree walk keeps the last):
    // leave both to the tree walk.
    for (std::size_t i = 0; i < kTopKeys.size(); ++i) {
      if (k != kTopKeys[i]) continue;
      if (seen_[i]) return false;
      seen_[i] = true;
      return true;
    }
    return false;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override {
    return false;
  }

 private:
  enum class Ctx { none, top, pressure, swap, vram_array, vram_item, cgroups };
  static constexpr std::array<std::string_view, 12> kTopKeys = {"t_ms",
                                                                "memory",
                                                                "io",
                                                                "mem_available_bytes",
                                                                "mem_total_bytes",
                                                                "swap_used_bytes",
                                                                "vram",
                                                                "cgroup_memory",
                                                                "swap_in_pages_per_s",
                                                                "on_battery",
                                                                "reload_running",
                                                                "user_demote_running"};

  Ctx ctx() const { return stack_.empty() ? Ctx::none : stack_.back(); }
  bool push(Ctx c) {
    stack_.push_back(c);
    return true;
  }
  template <class T, class V>
  static bool set(T& into, V v) {
    into = static_cast<T>(v);
    return true;
  }
  bool percent(double v) {
    if (v < 0 || v > 100) return false;
    if (key_ == "some") return set(pressure_->some_avg10, v);
    if (key_ == "full") return set(pressure_->full_avg10, v);
    return false;
  }

  Snapshot& s_;
  std::vector<Ctx> stack_;
  std::string key_;
  Pressure* pressure_ = nullptr;
  std::bitset<kTopKeys.size()> seen_;
  bool has_time_ = false;
  bool finished_ = false;
};

// The snapshot on `line`, or what is wrong with it (the tree walk's words).
std::optional<Bad> read_line(std::string_view line, Snapshot& s) {
  {
    FastLine fast(s);
    if (json::sax_parse(line, &fast, json::input_format_t::json, true, false) && fast.done())
      return std::nullopt;
  }
  s = Snapshot{};
  json parsed = json::parse(line, nullptr, false);
  if (parsed.is_discarded()) return Bad{"", "not a JSON object (one snapshot per line)"};
  return snapshot(parsed, s);
}

}  // namespace

Result<std::vector<Snapshot>> parse_trace(std::string_view text, std::string_view source) {
  std::vector<Snapshot> out;
  int lineno = 0;
  while (!text.empty()) {
    const auto nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    ++lineno;
    const auto first = line.find_first_not_of(" \t\r");
    if (first == std::string_view::npos || line[first] == '#') continue;
    auto where = [&] { return std::string(source) + ":" + std::to_string(lineno); };
    Snapshot s;
    if (auto b = read_line(line, s))
      return fail(EINVAL, where() + ": " + (b->key.empty() ? "" : b->key + ": ") + b->message);
    if (!out.empty() && s.time_ms < out.back().time_ms)
      return fail(EINVAL, where() + ": t_ms: " + std::to_string(s.time_ms) +
                              " is before the previous snapshot's " + std::to_string(out.back().time_ms));
    out.push_back(std::move(s));
  }
  return out;
}

std::string format_trace_line(const Snapshot& s) {
  json line = json::object();
  line["t_ms"] = s.time_ms;
  line["memory"] = {{"some", s.memory.some_avg10}, {"full", s.memory.full_avg10}};
  line["io"] = {{"some", s.io.some_avg10}, {"full", s.io.full_avg10}};
  line["mem_available_bytes"] = s.mem_available_bytes;
  line["mem_total_bytes"] = s.mem_total_bytes;
  line["swap_used_bytes"] = json::object();
  for (const auto& [tier, used] : s.swap_used_bytes) line["swap_used_bytes"][tier] = used;
  line["vram"] = json::array();
  for (const auto& g : s.vram)
    line["vram"].push_back({{"tier", g.tier},
                            {"free_bytes", g.vram_free_bytes},
                            {"total_bytes", g.vram_total_bytes},
                            {"foreign_bytes", g.foreign_vram_bytes},
                            {"p99_us", g.p99_latency_us},
                            {"size_bytes", g.tier_size_bytes}});
  if (!s.cgroup_memory.empty()) {  // older traces and readers have none
    line["cgroup_memory"] = json::object();
    for (const auto& [name, p] : s.cgroup_memory)
      line["cgroup_memory"][name] = {{"some", p.some_avg10}, {"full", p.full_avg10}};
  }
  line["swap_in_pages_per_s"] = s.swap_in_pages_per_s;
  line["on_battery"] = s.on_battery;
  line["reload_running"] = s.reload_running;
  line["user_demote_running"] = s.user_demote_running;
  // A tier name is the config's (no invalid UTF-8 reaches here); replace
  // rather than throw if one ever does.
  return line.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
}

}  // namespace tierswap::policy
