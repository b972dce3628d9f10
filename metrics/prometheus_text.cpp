#include "metrics/prometheus_text.hpp"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <utility>

namespace tierswap::metrics {

namespace {

enum class Type { gauge, counter, histogram };

struct Family {
  const char* name;
  Type type;
  const char* help;
};

// Every family, in output order. Help texts: one line, no backslash.
const Family kFamilies[] = {
    {"tierswap_daemon_info", Type::gauge, "tierswapd's version, state and config source (always 1)."},
    {"tierswap_memory_total_bytes", Type::gauge, "MemTotal of /proc/meminfo."},
    {"tierswap_memory_available_bytes", Type::gauge, "MemAvailable of /proc/meminfo."},
    {"tierswap_swappiness", Type::gauge, "vm.swappiness as the kernel reports it."},
    {"tierswap_psi_stall_seconds_total", Type::counter,
     "Time tasks stalled on a resource since boot (/proc/pressure total)."},
    {"tierswap_psi_stall_ratio", Type::gauge,
     "Share of wall time tasks stalled on a resource, averaged over a window (/proc/pressure avg)."},
    {"tierswap_swap_in_pages_per_second", Type::gauge,
     "Pages swapped in per second over the last observe tick (/proc/vmstat pswpin)."},
    {"tierswap_swap_out_pages_per_second", Type::gauge,
     "Pages swapped out per second over the last observe tick (/proc/vmstat pswpout)."},
    {"tierswap_tier_size_bytes", Type::gauge, "Size of the tier's swap area."},
    {"tierswap_tier_used_bytes", Type::gauge, "Swapped-out data in the tier (/proc/swaps Used)."},
    {"tierswap_tier_stored_bytes", Type::gauge,
     "Memory the tier costs (zram mem_used_total; else equal to used)."},
    {"tierswap_tier_compression_ratio", Type::gauge, "Original over compressed size (zram); 1 otherwise."},
    {"tierswap_tier_priority", Type::gauge, "The tier's swap priority."},
    {"tierswap_tier_state", Type::gauge, "1 for the tier's current state, 0 for the others."},
    {"tierswap_tier_latency_p99_seconds", Type::gauge,
     "99th percentile I/O latency of the tier, where measured."},
    {"tierswap_gpu_memory_total_bytes", Type::gauge, "GPU memory of a GPU a vram tier uses."},
    {"tierswap_gpu_memory_free_bytes", Type::gauge, "Free GPU memory."},
    {"tierswap_gpu_tier_used_bytes", Type::gauge, "GPU memory used by tierswap's vram tier."},
    {"tierswap_policy_actions_total", Type::counter,
     "Actions the policy engine decided since tierswapd started, by action and rule."},
    {"tierswap_exporter_requests_total", Type::counter,
     "NBD requests the vram tier's exporter served since it started, by operation."},
    {"tierswap_exporter_bytes_total", Type::counter,
     "Bytes the vram tier's exporter moved since it started, by operation."},
    {"tierswap_exporter_request_duration_seconds", Type::histogram,
     "Latency of the exporter's NBD requests, from received to answered."},
};

// The histogram's bucket bounds (seconds): 10 us .. 1 s, 1-2.5-5 steps.
constexpr double kLatencyBounds[] = {10e-6, 25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3,   2.5e-3,
                                     5e-3,  10e-3, 25e-3, 50e-3,  100e-3, 250e-3, 500e-3, 1.0};

constexpr TierState kStates[] = {TierState::active,   TierState::demoting,    TierState::evacuating,
                                 TierState::drained,  TierState::unavailable, TierState::failed,
                                 TierState::evacuated};

std::string number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return ec == std::errc() ? std::string(buf, end) : std::string("NaN");
}

std::string number(std::uint64_t v) {
  return std::to_string(v);
}

using Labels = std::vector<std::pair<std::string_view, std::string_view>>;

// Collects samples per family, then prints the families in kFamilies order
// (every sample of a family together, as the format requires).
class Writer {
 public:
  // `suffix`: "_bucket", "_count" of a histogram family.
  void add(std::string_view family, const Labels& labels, const std::string& value,
           std::string_view suffix = {}) {
    std::string line(family);
    line += suffix;
    if (!labels.empty()) {
      line += '{';
      bool first = true;
      for (const auto& [k, v] : labels) {
        if (!first) line += ',';
        first = false;
        line += k;
        line += "=\"";
        line += escape_label_value(v);
        line += '"';
      }
      line += '}';
    }
    line += ' ';
    line += value;
    line += '\n';
    samples_.emplace_back(std::string(family), std::move(line));
  }

  std::string text() const {
    std::string out;
    for (const auto& f : kFamilies) {
      bool header = false;
      for (const auto& [name, line] : samples_) {
        if (name != f.name) continue;
        if (!header) {
          out += "# HELP " + std::string(f.name) + " " + f.help + "\n";
          out += "# TYPE " + std::string(f.name) +
                 (f.type == Type::counter     ? " counter\n"
                  : f.type == Type::histogram ? " histogram\n"
                                              : " gauge\n");
          header = true;
        }
        out += line;
      }
    }
    return out;
  }

 private:
  std::vector<std::pair<std::string, std::string>> samples_;
};

void pressure(Writer& w, std::string_view resource, const Pressure& p) {
  for (const auto& [kind, line] : {std::pair{"some", &p.some}, std::pair{"full", &p.full}}) {
    w.add("tierswap_psi_stall_seconds_total", {{"resource", resource}, {"kind", kind}},
          number(static_cast<double>(line->total_us) / 1e6));
    for (const auto& [window, avg] :
         {std::pair{"10s", line->avg10}, std::pair{"60s", line->avg60}, std::pair{"300s", line->avg300}})
      w.add("tierswap_psi_stall_ratio", {{"resource", resource}, {"kind", kind}, {"window", window}},
            number(avg / 100.0));
  }
}

// The exporter's own buckets (exact to a quarter of their bound) folded
// into kLatencyBounds: a bucket counts under the first bound at or above its
// upper end, so no request is counted below its real latency. Sum: the
// exporter keeps none, so the family has _bucket and _count only.
void latency_histogram(Writer& w, const std::string& tier, const std::vector<LatencyBucket>& buckets) {
  std::uint64_t under[std::size(kLatencyBounds)] = {}, total = 0;
  for (const auto& b : buckets) {
    total += b.count;
    const double secs = static_cast<double>(b.upper_ns) / 1e9;
    for (std::size_t i = 0; i < std::size(kLatencyBounds); ++i)
      if (secs <= kLatencyBounds[i]) under[i] += b.count;
  }
  const std::string family = "tierswap_exporter_request_duration_seconds";
  for (std::size_t i = 0; i < std::size(kLatencyBounds); ++i) {
    const std::string le = number(kLatencyBounds[i]);
    w.add(family, {{"tier", tier}, {"le", le}}, number(under[i]), "_bucket");
  }
  w.add(family, {{"tier", tier}, {"le", "+Inf"}}, number(total), "_bucket");
  w.add(family, {{"tier", tier}}, number(total), "_count");
}

}  // namespace

std::string escape_label_value(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

const std::vector<std::string>& metric_family_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> v;
    for (const auto& f : kFamilies) v.emplace_back(f.name);
    return v;
  }();
  return names;
}

std::string prometheus_text(const Status& s) {
  Writer w;
  w.add("tierswap_daemon_info", {{"version", s.version}, {"state", s.state}, {"config", s.config_source}},
        "1");
  w.add("tierswap_memory_total_bytes", {}, number(s.mem_total_bytes));
  w.add("tierswap_memory_available_bytes", {}, number(s.mem_available_bytes));
  if (s.swappiness >= 0) w.add("tierswap_swappiness", {}, std::to_string(s.swappiness));
  pressure(w, "memory", s.memory_pressure);
  pressure(w, "io", s.io_pressure);
  w.add("tierswap_swap_in_pages_per_second", {}, number(s.swap_in_pages_per_s));
  w.add("tierswap_swap_out_pages_per_second", {}, number(s.swap_out_pages_per_s));
  for (const auto& t : s.tiers) {
    const Labels l = {{"tier", t.name}, {"kind", t.kind}};
    w.add("tierswap_tier_size_bytes", l, number(t.size_bytes));
    w.add("tierswap_tier_used_bytes", l, number(t.used_bytes));
    w.add("tierswap_tier_stored_bytes", l, number(t.stored_bytes));
    w.add("tierswap_tier_compression_ratio", l, number(t.compression_ratio));
    w.add("tierswap_tier_priority", l, std::to_string(t.priority));
    for (auto st : kStates)
      w.add("tierswap_tier_state", {{"tier", t.name}, {"state", to_string(st)}}, st == t.state ? "1" : "0");
    if (t.latency_p99_us > 0)
      w.add("tierswap_tier_latency_p99_seconds", l, number(static_cast<double>(t.latency_p99_us) / 1e6));
    if (t.exporter) {
      for (const auto& op : t.exporter->ops) {
        w.add("tierswap_exporter_requests_total", {{"tier", t.name}, {"op", op.op}}, number(op.requests));
        w.add("tierswap_exporter_bytes_total", {{"tier", t.name}, {"op", op.op}}, number(op.bytes));
      }
      if (!t.exporter->latency.empty()) latency_histogram(w, t.name, t.exporter->latency);
    }
  }
  for (const auto& p : s.policy_actions)
    w.add("tierswap_policy_actions_total", {{"action", p.action}, {"rule", p.rule}}, number(p.count));
  for (const auto& g : s.gpus) {
    const Labels l = {{"gpu", g.name}};
    w.add("tierswap_gpu_memory_total_bytes", l, number(g.total_bytes));
    w.add("tierswap_gpu_memory_free_bytes", l, number(g.free_bytes));
    w.add("tierswap_gpu_tier_used_bytes", l, number(g.used_by_tier_bytes));
  }
  return w.text();
}

}  // namespace tierswap::metrics
