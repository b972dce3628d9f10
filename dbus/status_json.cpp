#include "dbus/status_json.hpp"

#include <yaml-cpp/yaml.h>

#include "common/json_writer.hpp"
#include "dbus/names.hpp"

namespace tierswap::dbus {

namespace {

void write_line(JsonWriter& w, const PressureLine& l) {
  w.begin_object();
  w.key("avg10").value(l.avg10);
  w.key("avg60").value(l.avg60);
  w.key("avg300").value(l.avg300);
  w.key("total_us").value(static_cast<unsigned long long>(l.total_us));
  w.end_object();
}

void write_pressure(JsonWriter& w, const Pressure& p) {
  w.begin_object();
  w.key("some");
  write_line(w, p.some);
  w.key("full");
  write_line(w, p.full);
  w.end_object();
}

using U = unsigned long long;

}  // namespace

std::string status_to_json(const Status& s, bool pretty) {
  JsonWriter w(pretty);
  w.begin_object();
  w.key("format").value(kStatusFormat);
  w.key("version").value(s.version);
  w.key("state").value(s.state);
  w.key("config_source").value(s.config_source);
  w.key("swappiness").value(s.swappiness);
  w.key("memory").begin_object();
  w.key("total_bytes").value(static_cast<U>(s.mem_total_bytes));
  w.key("available_bytes").value(static_cast<U>(s.mem_available_bytes));
  w.end_object();
  w.key("pressure").begin_object();
  w.key("memory");
  write_pressure(w, s.memory_pressure);
  w.key("io");
  write_pressure(w, s.io_pressure);
  w.end_object();
  w.key("swap").begin_object();
  w.key("in_pages_per_s").value(s.swap_in_pages_per_s);
  w.key("out_pages_per_s").value(s.swap_out_pages_per_s);
  w.end_object();
  w.key("tiers").begin_array();
  for (const auto& t : s.tiers) {
    w.begin_object();
    w.key("name").value(t.name);
    w.key("kind").value(t.kind);
    w.key("device").value(t.device);
    w.key("priority").value(t.priority);
    w.key("state").value(to_string(t.state));
    w.key("size_bytes").value(static_cast<U>(t.size_bytes));
    w.key("used_bytes").value(static_cast<U>(t.used_bytes));
    w.key("stored_bytes").value(static_cast<U>(t.stored_bytes));
    w.key("compression_ratio").value(t.compression_ratio);
    w.key("latency_p99_us").value(static_cast<U>(t.latency_p99_us));
    if (t.kind == "vram") {  // only for vram tiers: readers of older documents see no new keys
      w.key("vram").begin_object();
      w.key("exporter_pid").value(t.exporter_pid);
      w.key("exporter_state").value(t.exporter_state);
      w.key("store").value(t.store);
      w.key("connections").value(static_cast<U>(t.connections));
      w.key("failure").value(t.failure);
      w.end_object();
    }
    w.end_object();
  }
  w.end_array();
  w.key("gpus").begin_array();
  for (const auto& g : s.gpus) {
    w.begin_object();
    w.key("name").value(g.name);
    w.key("total_bytes").value(static_cast<U>(g.total_bytes));
    w.key("free_bytes").value(static_cast<U>(g.free_bytes));
    w.key("used_by_tier_bytes").value(static_cast<U>(g.used_by_tier_bytes));
    w.end_object();
  }
  w.end_array();
  w.end_object();
  std::string out = w.str();
  if (pretty) out += '\n';
  return out;
}

namespace {

// Reads node[key] into out when present; throws YAML exceptions on a wrong
// type, which the caller turns into an error naming `where`.
template <class T>
void get(const YAML::Node& node, const char* key, T& out) {
  const YAML::Node v = node[key];
  if (v && !v.IsNull()) out = v.as<T>();
}

void get_line(const YAML::Node& n, PressureLine& l) {
  if (!n) return;
  get(n, "avg10", l.avg10);
  get(n, "avg60", l.avg60);
  get(n, "avg300", l.avg300);
  get(n, "total_us", l.total_us);
}

void get_pressure(const YAML::Node& n, Pressure& p) {
  if (!n) return;
  get_line(n["some"], p.some);
  get_line(n["full"], p.full);
}

}  // namespace

Result<Status> status_from_json(std::string_view text) {
  Status s;
  std::string where = "status";
  try {
    const YAML::Node root = YAML::Load(std::string(text));
    if (!root.IsMap()) return fail(EINVAL, "status document is not a JSON object");
    get(root, "version", s.version);
    get(root, "state", s.state);
    get(root, "config_source", s.config_source);
    get(root, "swappiness", s.swappiness);
    if (const auto m = root["memory"]) {
      where = "memory";
      get(m, "total_bytes", s.mem_total_bytes);
      get(m, "available_bytes", s.mem_available_bytes);
    }
    if (const auto p = root["pressure"]) {
      where = "pressure";
      get_pressure(p["memory"], s.memory_pressure);
      get_pressure(p["io"], s.io_pressure);
    }
    if (const auto sw = root["swap"]) {
      where = "swap";
      get(sw, "in_pages_per_s", s.swap_in_pages_per_s);
      get(sw, "out_pages_per_s", s.swap_out_pages_per_s);
    }
    if (const auto tiers = root["tiers"]) {
      std::size_t i = 0;
      for (const auto& n : tiers) {
        where = "tiers[" + std::to_string(i++) + "]";
        TierStatus t;
        get(n, "name", t.name);
        get(n, "kind", t.kind);
        get(n, "device", t.device);
        get(n, "priority", t.priority);
        std::string state = "unavailable";
        get(n, "state", state);
        const auto st = tier_state_from_string(state);
        if (!st) return fail(EINVAL, where + ".state: \"" + state + "\" is not a tier state");
        t.state = *st;
        get(n, "size_bytes", t.size_bytes);
        get(n, "used_bytes", t.used_bytes);
        get(n, "stored_bytes", t.stored_bytes);
        get(n, "compression_ratio", t.compression_ratio);
        get(n, "latency_p99_us", t.latency_p99_us);
        if (const auto v = n["vram"]) {
          get(v, "exporter_pid", t.exporter_pid);
          get(v, "exporter_state", t.exporter_state);
          get(v, "store", t.store);
          get(v, "connections", t.connections);
          get(v, "failure", t.failure);
        }
        s.tiers.push_back(std::move(t));
      }
    }
    if (const auto gpus = root["gpus"]) {
      std::size_t i = 0;
      for (const auto& n : gpus) {
        where = "gpus[" + std::to_string(i++) + "]";
        GpuStatus g;
        get(n, "name", g.name);
        get(n, "total_bytes", g.total_bytes);
        get(n, "free_bytes", g.free_bytes);
        get(n, "used_by_tier_bytes", g.used_by_tier_bytes);
        s.gpus.push_back(std::move(g));
      }
    }
  } catch (const YAML::Exception& e) {
    return fail(EINVAL, where + ": status document is not valid: " + e.msg);
  }
  return s;
}

}  // namespace tierswap::dbus
