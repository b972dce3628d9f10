#include "dbus/status_json.hpp"

#include "common/json.hpp"
#include "dbus/names.hpp"

namespace tierswap::dbus {

namespace {

Json line_json(const PressureLine& l) {
  return {{"avg10", l.avg10}, {"avg60", l.avg60}, {"avg300", l.avg300}, {"total_us", l.total_us}};
}

Json pressure_json(const Pressure& p) {
  return {{"some", line_json(p.some)}, {"full", line_json(p.full)}};
}

}  // namespace

std::string status_to_json(const Status& s, bool pretty) {
  Json tiers = Json::array();
  for (const auto& t : s.tiers) {
    Json tier = {{"name", t.name},
                 {"kind", t.kind},
                 {"device", t.device},
                 {"priority", t.priority},
                 {"state", to_string(t.state)},
                 {"size_bytes", t.size_bytes},
                 {"used_bytes", t.used_bytes},
                 {"stored_bytes", t.stored_bytes},
                 {"compression_ratio", t.compression_ratio},
                 {"latency_p99_us", t.latency_p99_us}};
    if (t.kind == "vram")  // only for vram tiers: readers of older documents see no new keys
      tier["vram"] = {{"exporter_pid", t.exporter_pid},
                      {"exporter_state", t.exporter_state},
                      {"store", t.store},
                      {"connections", t.connections},
                      {"failure", t.failure},
                      {"gpu", t.gpu}};
    if (t.kind == "vram" && t.exporter_live)  // only when the exporter answered this reading
      tier["vram"]["exporter"] = {{"requests", t.exporter_requests},
                                  {"read_bytes", t.exporter_read_bytes},
                                  {"write_bytes", t.exporter_write_bytes},
                                  {"queue_depth", t.exporter_queue_depth},
                                  {"latency_p50_us", t.exporter_latency_p50_us},
                                  {"latency_p99_us", t.exporter_latency_p99_us},
                                  {"resident_bytes", t.resident_bytes},
                                  {"spilled_bytes", t.spilled_bytes},
                                  {"spill", t.spill},
                                  {"spill_ratio", t.spill_ratio},
                                  {"age_ms", t.exporter_figures_age_ms},
                                  {"spill_stored_bytes", t.spill_stored_bytes}};
    tiers.push_back(std::move(tier));
  }
  Json gpus = Json::array();
  for (const auto& g : s.gpus) {
    gpus.push_back({{"name", g.name},
                    {"total_bytes", g.total_bytes},
                    {"free_bytes", g.free_bytes},
                    {"used_by_tier_bytes", g.used_by_tier_bytes}});
  }
  Json actions = Json::array();
  for (const auto& c : s.policy_actions)
    actions.push_back({{"action", c.action}, {"rule", c.rule}, {"count", c.count}});
  Json cgroups = Json::array();
  for (const auto& c : s.cgroup_pressure)
    cgroups.push_back({{"cgroup", c.cgroup}, {"memory", pressure_json(c.memory)}});
  Json doc = {
      {"format", kStatusFormat},
      {"version", s.version},
      {"state", s.state},
      {"config_source", s.config_source},
      {"swappiness", s.swappiness},
      {"memory", {{"total_bytes", s.mem_total_bytes}, {"available_bytes", s.mem_available_bytes}}},
      {"pressure", {{"memory", pressure_json(s.memory_pressure)}, {"io", pressure_json(s.io_pressure)}}},
      {"swap", {{"in_pages_per_s", s.swap_in_pages_per_s}, {"out_pages_per_s", s.swap_out_pages_per_s}}},
      {"tiers", std::move(tiers)},
      {"gpus", std::move(gpus)},
      {"policy", {{"actions", std::move(actions)}}},
  };
  if (!cgroups.empty()) doc["cgroup_pressure"] = std::move(cgroups);  // older documents have none
  // Only while something is held or said: readers of older documents see no new key.
  if (!s.suspend.inhibitor.empty() || !s.suspend.detail.empty())
    doc["suspend"] = {{"inhibitor", s.suspend.inhibitor}, {"detail", s.suspend.detail}};
  return dump_json(doc, pretty);
}

namespace {

// Reads node[key] into out when present and not null; throws
// nlohmann-json's type_error on a wrong type, which the caller turns into an
// error naming `where`.
template <class T>
void get(const Json& node, const char* key, T& out) {
  const auto it = node.find(key);
  if (it != node.end() && !it->is_null()) it->get_to(out);
}

// The object at node[key], or null when absent or not an object.
const Json* object_at(const Json& node, const char* key) {
  const auto it = node.find(key);
  return it != node.end() && it->is_object() ? &*it : nullptr;
}

void get_line(const Json* n, PressureLine& l) {
  if (!n) return;
  get(*n, "avg10", l.avg10);
  get(*n, "avg60", l.avg60);
  get(*n, "avg300", l.avg300);
  get(*n, "total_us", l.total_us);
}

void get_pressure(const Json* n, Pressure& p) {
  if (!n) return;
  get_line(object_at(*n, "some"), p.some);
  get_line(object_at(*n, "full"), p.full);
}

}  // namespace

Result<Status> status_from_json(std::string_view text) {
  auto parsed = parse_json(text, "status document");
  if (!parsed) return std::unexpected(parsed.error());
  const Json& root = *parsed;
  if (!root.is_object()) return fail(ErrorKind::protocol, "status document is not a JSON object");
  Status s;
  std::string where = "status";
  try {
    get(root, "version", s.version);
    get(root, "state", s.state);
    get(root, "config_source", s.config_source);
    get(root, "swappiness", s.swappiness);
    if (const Json* m = object_at(root, "memory")) {
      where = "memory";
      get(*m, "total_bytes", s.mem_total_bytes);
      get(*m, "available_bytes", s.mem_available_bytes);
    }
    if (const Json* p = object_at(root, "pressure")) {
      where = "pressure";
      get_pressure(object_at(*p, "memory"), s.memory_pressure);
      get_pressure(object_at(*p, "io"), s.io_pressure);
    }
    if (const Json* sw = object_at(root, "swap")) {
      where = "swap";
      get(*sw, "in_pages_per_s", s.swap_in_pages_per_s);
      get(*sw, "out_pages_per_s", s.swap_out_pages_per_s);
    }
    if (const auto tiers = root.find("tiers"); tiers != root.end() && tiers->is_array()) {
      std::size_t i = 0;
      for (const auto& n : *tiers) {
        where = "tiers[" + std::to_string(i++) + "]";
        if (!n.is_object()) return fail(ErrorKind::protocol, where + ": not a JSON object");
        TierStatus t;
        get(n, "name", t.name);
        get(n, "kind", t.kind);
        get(n, "device", t.device);
        get(n, "priority", t.priority);
        std::string state = "unavailable";
        get(n, "state", state);
        const auto st = tier_state_from_string(state);
        if (!st) return fail(ErrorKind::protocol, where + ".state: \"" + state + "\" is not a tier state");
        t.state = *st;
        get(n, "size_bytes", t.size_bytes);
        get(n, "used_bytes", t.used_bytes);
        get(n, "stored_bytes", t.stored_bytes);
        get(n, "compression_ratio", t.compression_ratio);
        get(n, "latency_p99_us", t.latency_p99_us);
        if (const Json* v = object_at(n, "vram")) {
          get(*v, "exporter_pid", t.exporter_pid);
          get(*v, "exporter_state", t.exporter_state);
          get(*v, "store", t.store);
          get(*v, "connections", t.connections);
          get(*v, "failure", t.failure);
          get(*v, "gpu", t.gpu);
          if (const Json* e = object_at(*v, "exporter")) {
            t.exporter_live = true;
            get(*e, "requests", t.exporter_requests);
            get(*e, "read_bytes", t.exporter_read_bytes);
            get(*e, "write_bytes", t.exporter_write_bytes);
            get(*e, "queue_depth", t.exporter_queue_depth);
            get(*e, "latency_p50_us", t.exporter_latency_p50_us);
            get(*e, "latency_p99_us", t.exporter_latency_p99_us);
            get(*e, "resident_bytes", t.resident_bytes);
            get(*e, "spilled_bytes", t.spilled_bytes);
            get(*e, "spill", t.spill);
            get(*e, "spill_ratio", t.spill_ratio);
            get(*e, "age_ms", t.exporter_figures_age_ms);
            get(*e, "spill_stored_bytes", t.spill_stored_bytes);
          }
        }
        s.tiers.push_back(std::move(t));
      }
    }
    if (const auto gpus = root.find("gpus"); gpus != root.end() && gpus->is_array()) {
      std::size_t i = 0;
      for (const auto& n : *gpus) {
        where = "gpus[" + std::to_string(i++) + "]";
        if (!n.is_object()) return fail(ErrorKind::protocol, where + ": not a JSON object");
        GpuStatus g;
        get(n, "name", g.name);
        get(n, "total_bytes", g.total_bytes);
        get(n, "free_bytes", g.free_bytes);
        get(n, "used_by_tier_bytes", g.used_by_tier_bytes);
        s.gpus.push_back(std::move(g));
      }
    }
    if (const auto cg = root.find("cgroup_pressure"); cg != root.end() && cg->is_array()) {
      std::size_t i = 0;
      for (const auto& n : *cg) {
        where = "cgroup_pressure[" + std::to_string(i++) + "]";
        if (!n.is_object()) return fail(ErrorKind::protocol, where + ": not a JSON object");
        CgroupPressure c;
        get(n, "cgroup", c.cgroup);
        get_pressure(object_at(n, "memory"), c.memory);
        s.cgroup_pressure.push_back(std::move(c));
      }
    }
    if (const Json* policy = object_at(root, "policy")) {
      if (const auto actions = policy->find("actions"); actions != policy->end() && actions->is_array()) {
        std::size_t i = 0;
        for (const auto& n : *actions) {
          where = "policy.actions[" + std::to_string(i++) + "]";
          PolicyCounter c;
          get(n, "action", c.action);
          get(n, "rule", c.rule);
          get(n, "count", c.count);
          s.policy_actions.push_back(std::move(c));
        }
      }
    }
    if (const Json* sus = object_at(root, "suspend")) {
      where = "suspend";
      get(*sus, "inhibitor", s.suspend.inhibitor);
      get(*sus, "detail", s.suspend.detail);
    }
  } catch (const Json::exception& e) {
    return fail(ErrorKind::protocol, where + ": status document is not valid: " + e.what());
  }
  return s;
}

}  // namespace tierswap::dbus
