#include "daemon/plan_file.hpp"

#include "config/loader.hpp"
#include "daemon/journal.hpp"
#include "daemon/observe.hpp"
#include "daemon/planner.hpp"

namespace tierswap {

FilePlan plan_file(const std::string& file, const std::string& root, std::FILE* diag) {
  FilePlan out;
  const HostFs fs(root);
  auto obs = observe(fs);
  if (!obs) {
    std::fprintf(diag, "%s: cannot read the machine under %s: %s\n", file.c_str(), root.c_str(),
                 obs.error().describe().c_str());
    return out;
  }
  auto lr = config::load_file(file, config::HostFacts{.ram_bytes = obs->ram_bytes});
  for (const auto& d : lr.diagnostics) std::fprintf(diag, "%s\n", config::format_diagnostic(d).c_str());
  if (!lr.ok() || !lr.spec) return out;
  auto journal = load_journal(fs);
  if (!journal) {
    std::fprintf(diag, "%s: %s (planning as if tierswap owned nothing)\n", file.c_str(),
                 journal.error().describe().c_str());
    journal = Journal{};
  }
  if (needs_gpu_facts(*lr.spec, fs)) observe_gpus(*obs, exporter_pids(*journal));
  auto pr = make_plan(*lr.spec, *obs, *journal, fs);
  for (const auto& d : pr.diagnostics) std::fprintf(diag, "%s\n", config::format_diagnostic(d).c_str());
  out.ok = pr.ok();
  out.plan = std::move(pr.plan);
  return out;
}

}  // namespace tierswap
