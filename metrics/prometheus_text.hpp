// The Status model (dbus/status.hpp) as Prometheus text exposition format
// 0.0.4 (what node_exporter's textfile collector and a scrape of GET /metrics
// read). A pure function: same status, same text; no files, no clock.
//
// Names follow Prometheus conventions: prefix tierswap_, base units (bytes,
// seconds, ratios 0..1), counters end in _total, one # HELP and # TYPE per
// family, label values escaped (\\, \", \n). Which families exist, their
// labels and the gaps (what the status does not carry yet) are listed in
// docs/metrics.md; metric_family_names() returns them for tests and for the
// dashboard check.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "dbus/status.hpp"

namespace tierswap::metrics {

// The content type of the text format, for the HTTP endpoint.
inline constexpr std::string_view kContentType = "text/plain; version=0.0.4; charset=utf-8";

std::string prometheus_text(const Status& status);

// Every family prometheus_text() can emit ("tierswap_tier_used_bytes", ...),
// whether or not a given status fills it.
const std::vector<std::string>& metric_family_names();

// A label value as the text format wants it: backslash, double quote and
// newline escaped.
std::string escape_label_value(std::string_view v);

}  // namespace tierswap::metrics
