// nlohmann-json is used only here; its exceptions stay inside parse_line().
#include "policy/trace.hpp"

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
          "vram, on_battery, reload_running, user_demote_running)"};
    }
    if (b) return b;
  }
  return std::nullopt;
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
    const std::string where = std::string(source) + ":" + std::to_string(lineno);
    json parsed = json::parse(line, nullptr, false);
    if (parsed.is_discarded()) return fail(EINVAL, where + ": not a JSON object (one snapshot per line)");
    Snapshot s;
    if (auto b = snapshot(parsed, s))
      return fail(EINVAL, where + ": " + (b->key.empty() ? "" : b->key + ": ") + b->message);
    if (!out.empty() && s.time_ms < out.back().time_ms)
      return fail(EINVAL, where + ": t_ms: " + std::to_string(s.time_ms) +
                              " is before the previous snapshot's " + std::to_string(out.back().time_ms));
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace tierswap::policy
