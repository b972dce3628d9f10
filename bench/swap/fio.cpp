#include "bench/swap/fio.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>

namespace tierswap::bench {

std::vector<std::string> fio_args(const std::string& target, bool writable, double seconds,
                                  std::uint64_t size) {
  const std::string secs = std::to_string(std::max(1, static_cast<int>(seconds + 0.5)));
  std::vector<std::string> a = {"fio",
                                "--output-format=json",
                                "--filename=" + target,
                                "--size=" + std::to_string(size),
                                "--bs=4k",
                                "--direct=1",
                                "--ioengine=libaio",
                                "--iodepth=32",
                                "--time_based",
                                "--runtime=" + secs,
                                "--randrepeat=0",
                                "--norandommap",
                                "--buffer_compress_percentage=50",
                                "--refill_buffers"};
  if (writable) {
    a.push_back("--name=randwrite");
    a.push_back("--rw=randwrite");
  }
  a.push_back("--name=randread");
  a.push_back("--rw=randread");
  if (writable) a.push_back("--stonewall");
  return a;
}

std::vector<std::string> fio_nbd_args(const std::string& uri, double seconds, std::uint64_t size) {
  std::vector<std::string> a = fio_args(uri, true, seconds, size);
  std::erase_if(a, [](const std::string& s) { return s.starts_with("--filename=") || s == "--direct=1"; });
  // An engine's own options (--uri) are known only after --ioengine.
  const auto e = std::find(a.begin(), a.end(), "--ioengine=libaio");
  *e = "--ioengine=nbd";
  a.insert(e + 1, "--uri=" + uri);
  return a;
}

Result<std::vector<RawResult>> parse_fio_json(std::string_view text, const std::string& tier,
                                              const std::string& target) {
  const auto brace = text.find('{');
  if (brace == std::string_view::npos) return fail(EINVAL, "fio: no JSON in its output");
  try {
    const auto j = nlohmann::json::parse(text.substr(brace));
    std::vector<RawResult> out;
    for (const auto& job : j.at("jobs")) {
      const std::string name = job.at("jobname").get<std::string>();
      const char* side = name == "randwrite" ? "write" : "read";
      const auto& s = job.at(side);
      const auto& pct = s.at("clat_ns").at("percentile");
      auto p = [&](const char* k) { return pct.contains(k) ? pct.at(k).get<double>() / 1000.0 : 0.0; };
      out.push_back(
          {tier, target, name, s.at("iops").get<double>(), p("50.000000"), p("99.000000"), p("99.900000")});
    }
    if (out.empty()) return fail(EINVAL, "fio: its JSON has no jobs");
    return out;
  } catch (const std::exception& e) {
    return fail(EINVAL, std::string("fio: unexpected JSON: ") + e.what());
  }
}

}  // namespace tierswap::bench
