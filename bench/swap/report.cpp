#include "bench/swap/report.hpp"

#include <nlohmann/json.hpp>

#include "bench/swap/summary.hpp"

namespace tierswap::bench {

using nlohmann::ordered_json;

namespace {

ordered_json raw_json(const RawResult& r) {
  return {{"tier", r.tier},     {"target", r.target}, {"mode", r.mode},      {"iops", r.iops},
          {"p50_us", r.p50_us}, {"p99_us", r.p99_us}, {"p999_us", r.p999_us}};
}

ordered_json sample_json(const Sample& s) {
  ordered_json j = {{"t", s.t},
                    {"pswpin", s.pswpin},
                    {"pswpout", s.pswpout},
                    {"some_us", s.some_us},
                    {"full_us", s.full_us}};
  if (s.cg_some_us) j["cg_some_us"] = *s.cg_some_us;
  if (s.cg_full_us) j["cg_full_us"] = *s.cg_full_us;
  return j;
}

ordered_json group_json(const Group& g) {
  ordered_json j = {{"name", g.name},   {"config", g.config}, {"status", g.status},
                    {"error", g.error}, {"areas", g.areas},   {"seconds", g.seconds}};
  j["hog"] = {{"pages", g.hog.pages},
              {"touches", g.hog.touches},
              {"bad_pages", g.hog.bad_pages},
              {"fill_s", g.hog.fill_s},
              {"exit_status", g.hog.exit_status}};
  j["raw"] = ordered_json::array();
  for (const auto& r : g.raw) j["raw"].push_back(raw_json(r));
  j["samples"] = ordered_json::array();
  for (const auto& s : g.samples) j["samples"].push_back(sample_json(s));
  j["probe_us"] = g.probe_us;
  return j;
}

// Reading: every key is required unless noted, so a truncated report is
// an error that names what is missing.
struct Reader {
  std::string where;
  template <class T>
  T get(const ordered_json& j, const char* key) const {
    if (!j.contains(key)) throw std::runtime_error(where + key + ": missing");
    return j.at(key).get<T>();
  }
};

}  // namespace

std::string to_json(const Report& r) {
  ordered_json j = {{"version", r.version}, {"tool_version", r.tool_version},
                    {"date", r.date},       {"kernel", r.kernel},
                    {"cpu", r.cpu},         {"ram", r.ram},
                    {"command", r.command}};
  j["params"] = {{"memory_max", r.params.memory_max}, {"working_set", r.params.working_set},
                 {"seconds", r.params.seconds},       {"raw_seconds", r.params.raw_seconds},
                 {"raw_size", r.params.raw_size},     {"probe_interval_ms", r.params.probe_interval_ms},
                 {"cgroup", r.params.cgroup}};
  j["groups"] = ordered_json::array();
  for (const auto& g : r.groups) j["groups"].push_back(group_json(g));
  // Derived figures for readers of --json; report_from_json ignores them.
  j["summary"] = ordered_json::parse(summary_json(r));
  return j.dump(1) + "\n";
}

Result<Report> report_from_json(const std::string& text) {
  try {
    const auto j = ordered_json::parse(text);
    Reader rd{"report: "};
    Report r;
    r.version = rd.get<int>(j, "version");
    if (r.version != 1)
      return fail(EINVAL, "report: version " + std::to_string(r.version) +
                              " is not 1 (written by a newer tierswapctl?)");
    r.tool_version = rd.get<std::string>(j, "tool_version");
    r.date = rd.get<std::string>(j, "date");
    r.kernel = rd.get<std::string>(j, "kernel");
    r.cpu = rd.get<std::string>(j, "cpu");
    r.ram = rd.get<std::uint64_t>(j, "ram");
    r.command = rd.get<std::string>(j, "command");
    const auto& p = rd.get<ordered_json>(j, "params");
    Reader rp{"report: params."};
    r.params.memory_max = rp.get<std::uint64_t>(p, "memory_max");
    r.params.working_set = rp.get<std::uint64_t>(p, "working_set");
    r.params.seconds = rp.get<double>(p, "seconds");
    r.params.raw_seconds = rp.get<double>(p, "raw_seconds");
    r.params.raw_size = rp.get<std::uint64_t>(p, "raw_size");
    r.params.probe_interval_ms = rp.get<double>(p, "probe_interval_ms");
    r.params.cgroup = rp.get<std::string>(p, "cgroup");
    std::size_t gi = 0;
    for (const auto& gj : rd.get<ordered_json>(j, "groups")) {
      Reader rg{"report: groups[" + std::to_string(gi++) + "]."};
      Group g;
      g.name = rg.get<std::string>(gj, "name");
      g.config = rg.get<std::string>(gj, "config");
      g.status = rg.get<std::string>(gj, "status");
      g.error = rg.get<std::string>(gj, "error");
      g.areas = rg.get<std::vector<std::string>>(gj, "areas");
      g.seconds = rg.get<double>(gj, "seconds");
      const auto& h = rg.get<ordered_json>(gj, "hog");
      g.hog.pages = rg.get<std::uint64_t>(h, "pages");
      g.hog.touches = rg.get<std::uint64_t>(h, "touches");
      g.hog.bad_pages = rg.get<std::uint64_t>(h, "bad_pages");
      g.hog.fill_s = rg.get<double>(h, "fill_s");
      g.hog.exit_status = rg.get<int>(h, "exit_status");
      for (const auto& x : rg.get<ordered_json>(gj, "raw"))
        g.raw.push_back({rg.get<std::string>(x, "tier"), rg.get<std::string>(x, "target"),
                         rg.get<std::string>(x, "mode"), rg.get<double>(x, "iops"),
                         rg.get<double>(x, "p50_us"), rg.get<double>(x, "p99_us"),
                         rg.get<double>(x, "p999_us")});
      for (const auto& x : rg.get<ordered_json>(gj, "samples")) {
        Sample s;
        s.t = rg.get<double>(x, "t");
        s.pswpin = rg.get<std::uint64_t>(x, "pswpin");
        s.pswpout = rg.get<std::uint64_t>(x, "pswpout");
        s.some_us = rg.get<std::uint64_t>(x, "some_us");
        s.full_us = rg.get<std::uint64_t>(x, "full_us");
        if (x.contains("cg_some_us")) s.cg_some_us = x.at("cg_some_us").get<std::uint64_t>();
        if (x.contains("cg_full_us")) s.cg_full_us = x.at("cg_full_us").get<std::uint64_t>();
        g.samples.push_back(s);
      }
      g.probe_us = rg.get<std::vector<double>>(gj, "probe_us");
      r.groups.push_back(std::move(g));
    }
    return r;
  } catch (const std::exception& e) {
    return fail(EINVAL, std::string("report: not a tierswapctl bench report: ") + e.what());
  }
}

}  // namespace tierswap::bench
