#include "daemon/signal_readers.hpp"

#include <spdlog/spdlog.h>
#include <sys/types.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <vector>

#include "backends/gpu/gpu_reading.hpp"
#include "backends/gpu/nvml.hpp"
#include "backends/power/power_supply.hpp"
#include "dbus/upower.hpp"

namespace tierswap {
namespace {

using Clock = std::chrono::steady_clock;

struct GpuState {
  std::mutex mu;  // the tick and the GPU watch (both on the loop today)
  gpu::GpuSignals signals;
  std::set<std::string> said;  // "tier: message" already logged
};

std::vector<policy::VramTierSample> sample_vram(const Engine& engine, GpuState& st) {
  std::vector<policy::VramTierSample> out;
  std::vector<Engine::ConfiguredTier> tiers;
  for (auto& t : engine.configured_tiers())
    if (t.kind == "vram") tiers.push_back(std::move(t));
  if (tiers.empty()) return out;
  std::vector<pid_t> exporters;
  for (const auto& t : engine.journal().tiers)
    if (t.exporter_pid > 0) exporters.push_back(static_cast<pid_t>(t.exporter_pid));
  gpu::GpuPoll poll = st.signals.poll(exporters);
  for (const auto& n : poll.notices) spdlog::info("{}", n);
  if (!poll.available) return out;
  for (const auto& t : tiers) {
    auto g = gpu::select_gpu(poll.gpus, t.gpu);
    if (!g) {
      if (st.said.insert(t.name + ": " + g.error().message).second)
        spdlog::warn("vram tier \"{}\": no GPU signals: {}", t.name, g.error().describe());
      continue;
    }
    const auto f = gpu::tier_figures(**g);
    policy::VramTierSample s;
    s.tier = t.name;
    s.vram_free_bytes = f.vram_free_bytes;
    s.vram_total_bytes = f.vram_total_bytes;
    s.foreign_vram_bytes = f.foreign_vram_bytes;
    s.tier_size_bytes = t.size_bytes;
    out.push_back(std::move(s));
  }
  return out;
}

struct PowerState {
  SignalReaderOptions options;
  std::optional<Clock::time_point> last_try;  // the loop's
  std::mutex mu;                              // the three below
  std::unique_ptr<dbus::UPowerClient> upower;
  bool trying = false;
  std::string last_error;
};

// Connecting to the bus can hang on a bus that accepts but never answers
// (sd-bus waits for Hello): never on the loop. A thread tries once and
// leaves the client (or the reason) for the loop to pick up.
void try_upower(const std::shared_ptr<PowerState>& st) {
  {
    std::lock_guard lk(st->mu);
    if (st->upower || st->trying) return;
    st->trying = true;
  }
  std::thread([st] {
    auto c = dbus::UPowerClient::connect({.address = st->options.bus_address});
    std::lock_guard lk(st->mu);
    st->trying = false;
    if (c) {
      st->upower = std::move(*c);
      spdlog::info("power: following UPower's OnBattery");
    } else if (c.error().message != st->last_error) {
      st->last_error = c.error().message;
      spdlog::info("power: UPower not used ({}); reading /sys/class/power_supply", c.error().describe());
    }
  }).detach();
}

std::optional<bool> read_on_battery(const Engine& engine, const std::shared_ptr<PowerState>& st) {
  if (st->options.use_bus && (!st->last_try || Clock::now() - *st->last_try >= std::chrono::minutes(1))) {
    st->last_try = Clock::now();
    try_upower(st);
  }
  {
    std::lock_guard lk(st->mu);
    if (st->upower)
      if (auto b = st->upower->on_battery()) return b;
  }
  const auto r = power::read_power_supply(engine.fs());
  if (r.source == power::PowerSource::unknown) return std::nullopt;
  return r.on_battery();
}

}  // namespace

SignalProviders signal_readers(const Engine& engine, SignalReaderOptions options) {
  SignalProviders p;
  auto gpu_state = std::make_shared<GpuState>();
  p.vram = [&engine, gpu_state] {
    std::lock_guard lk(gpu_state->mu);
    return sample_vram(engine, *gpu_state);
  };
  auto power_state = std::make_shared<PowerState>();
  power_state->options = std::move(options);
  p.on_battery = [&engine, power_state] { return read_on_battery(engine, power_state); };
  return p;
}

}  // namespace tierswap
