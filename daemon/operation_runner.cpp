#include "daemon/operation_runner.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "backends/hostfs/paths.hpp"
#include "backends/swap/proc_swaps.hpp"
#include "common/byte_format.hpp"
#include "common/json.hpp"

namespace tierswap {

namespace {

std::optional<std::uint64_t> used_bytes(const HostFs& fs, const std::string& swap_path) {
  auto text = fs.read(paths::proc_swaps);
  if (!text) return std::nullopt;
  auto areas = swap::parse_proc_swaps(*text);
  if (!areas) return std::nullopt;
  const auto a = swap::find_area(*areas, swap_path);
  if (!a) return std::nullopt;
  return a->used_kib * 1024;
}

std::string busy_message(const OperationRunner::Running& r) {
  const std::string what = r.tier.empty() ? "a " + r.what : "a " + r.what + " of tier \"" + r.tier + "\"";
  return what + " (asked by " + r.caller.who + ") is running: one reload, demote or promote at a time";
}

// The room rule's refusal, with the numbers.
Error no_room(const std::string& tier, const policy::RoomVerdict& v) {
  return {ENOMEM, "tier " + tier + " holds " + format_bytes(v.need) + "; the other swap areas have " +
                      format_bytes(v.room) + " free (" + std::to_string(v.areas) + " other area" +
                      (v.areas == 1 ? "" : "s") +
                      "; a zram area counts what its mem_limit and free RAM can hold)" + ram_room_text(v) +
                      "; a swapoff needs " + format_bytes(v.need + v.margin) +
                      " with its margin: not demoting, because pages that swapoff brings back into RAM are "
                      "charged to their cgroups and a cgroup at memory.max is OOM-killed; add swap space "
                      "below it or wait until it holds less"};
}

}  // namespace

OperationRunner::OperationRunner(Engine& engine, EventSink& events, RunnerOptions opts)
    : engine_(engine), events_(events), opts_(std::move(opts)) {
  if (!opts_.warn) opts_.warn = [](const std::string&) {};
  if (!opts_.reloading) opts_.reloading = [](bool) {};
}

OperationRunner::~OperationRunner() {
  wait_idle();
  std::lock_guard lk(mu_);
  if (worker_.joinable()) worker_.join();
}

std::optional<OperationRunner::Running> OperationRunner::running() const {
  std::lock_guard lk(mu_);
  return op_;
}

Result<void> OperationRunner::claim(Running r) {
  std::lock_guard lk(mu_);
  if (op_) return fail(EBUSY, busy_message(*op_));
  op_ = std::move(r);
  abort_why_.clear();
  abort_requested_ = false;
  if (worker_.joinable()) worker_.join();  // the previous one has finished (op_ was empty)
  return {};
}

void OperationRunner::release() {
  std::lock_guard lk(mu_);
  op_.reset();
  cv_.notify_all();
}

Result<void> OperationRunner::known_tier(const std::string& tier) {
  std::vector<std::string> names;
  for (const auto& c : engine_.configured_tiers()) names.push_back(c.name);
  for (const auto& o : engine_.journal().tiers)
    if (std::find(names.begin(), names.end(), o.name) == names.end()) names.push_back(o.name);
  if (std::find(names.begin(), names.end(), tier) != names.end()) return {};
  std::string list;
  for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
  return fail(ENOENT, "no tier named \"" + tier + "\" (tiers: " + (list.empty() ? "none" : list) + ")");
}

Result<std::size_t> OperationRunner::reload(const Caller& caller) {
  if (auto ok = claim({"reload", "", caller}); !ok) return std::unexpected(ok.error());
  return run_reload(caller);
}

Result<void> OperationRunner::start_reload(const Caller& caller,
                                           std::function<void(Result<std::size_t>)> done) {
  if (auto ok = claim({"reload", "", caller}); !ok) return std::unexpected(ok.error());
  std::lock_guard lk(mu_);
  worker_ = std::thread([this, caller, done = std::move(done)] { done(run_reload(caller)); });
  return {};
}

Result<std::size_t> OperationRunner::run_reload(const Caller& caller) {
  opts_.reloading(true);
  auto r = engine_.reload();
  opts_.reloading(false);
  release();
  if (r && *r > 0) {
    events_.action("reload",
                   "reload requested by " + caller.who + ": applied " + std::to_string(*r) + " steps",
                   dump_json(Json{{"steps", *r}}, false));
  }
  return r;
}

Result<void> OperationRunner::demote(const std::string& tier, const Caller& caller) {
  if (auto route = spill_route(tier)) return spill_move("demote", true, std::move(*route), caller);
  return drain("demote", tier, caller);
}

// A tier with a spill store is evacuated there (the swap area stays up);
// any other is drained by swapoff.
Result<void> OperationRunner::evacuate(const std::string& tier, const Caller& caller) {
  if (auto route = spill_route(tier)) return spill_move("evacuate", true, std::move(*route), caller);
  return drain("evacuate", tier, caller);
}

std::optional<OperationRunner::SpillRoute> OperationRunner::spill_route(const std::string& tier) {
  if (!opts_.control_for) return std::nullopt;
  const Journal j = engine_.journal();
  const OwnedTier* rec = j.find_tier(tier);
  // A drained tier (swapped off) comes back by swapon, whatever it has.
  if (!rec || rec->spill.empty() || blocks_at(*rec) == BlocksAt::drained) return std::nullopt;
  auto control = opts_.control_for(*rec);
  if (!control) return std::nullopt;
  return SpillRoute{*rec, std::move(control)};
}

Result<void> OperationRunner::spill_move(const std::string& what, bool out, SpillRoute route,
                                         const Caller& caller) {
  const std::string& tier = route.rec.name;
  if (auto ok = claim({what, tier, caller, true}); !ok) return std::unexpected(ok.error());
  auto give_up = [&](std::unexpected<Error> e) -> Result<void> {
    release();
    return e;
  };
  if (auto ok = known_tier(tier); !ok) return give_up(std::unexpected(ok.error()));
  const OwnedTier& rec = route.rec;
  const std::string name = "tier \"" + tier + "\"";
  if (!rec.active)
    return give_up(
        fail(ErrorKind::invalid_config, name + " is not active (its swap area is off): nothing to " + what));
  auto f = route.control->figures(2000);
  if (!f) return give_up(wrap(f.error(), name + ": cannot read where its blocks are, so not moving them"));
  const std::string spill = f->spill.empty() ? rec.spill : f->spill;
  if (out && f->evacuated())
    return give_up(fail(ErrorKind::busy, name + " is evacuated already: its blocks are in its " + spill +
                                             " spill store (tierswapctl promote " + tier +
                                             " brings them back into VRAM)"));
  if (!out && f->chunks_spilled + f->chunks_moving == 0)
    return give_up(fail(ErrorKind::busy, name + " is in VRAM already: nothing to promote"));
  const std::uint64_t total =
      out ? f->resident_bytes : (f->size_bytes > f->resident_bytes ? f->size_bytes - f->resident_bytes : 0);
  auto started = out ? route.control->evacuate() : route.control->promote();
  if (!started) return give_up(wrap(started.error(), name + ": " + what));
  const std::string nums =
      dump_json(Json{{"bytes", total}, {"spill", spill}, {"resident_bytes", f->resident_bytes}}, false);
  std::lock_guard lk(mu_);
  events_.action(
      what,
      "tier " + tier + " (" + rec.swap_path + "): " + what + " requested by " + caller.describe() +
          (out ? "; moving " + format_bytes(total) + " of VRAM to its " + spill +
                     " spill store while the swap area stays up"
               : "; moving " + format_bytes(total) + " from its " + spill + " spill store back into VRAM"),
      nums);
  events_.state(tier, TierState::evacuating);
  worker_ = std::thread([this, op = *op_, out, r = std::move(route), total]() mutable {
    run_spill_move(op, out, std::move(r), total);
  });
  return {};
}

void OperationRunner::run_spill_move(Running op, bool out, SpillRoute route, std::uint64_t total) {
  const auto t0 = std::chrono::steady_clock::now();
  events_.progress(op.tier, 0, total);
  MoveStatus last;
  std::string channel_error;
  bool cancel_sent = false;
  for (int errors = 0;;) {
    bool cancel_now = false;
    {
      std::unique_lock lk(mu_);
      cv_.wait_for(lk, opts_.poll_interval, [&] { return abort_requested_ && !cancel_sent; });
      cancel_now = abort_requested_ && !cancel_sent;
    }
    if (cancel_now) {
      cancel_sent = true;
      if (auto c = route.control->cancel(); !c) opts_.warn("cancel: " + c.error().describe());
    }
    auto p = route.control->progress();
    if (!p) {
      // The exporter keeps moving without us; after a few failed polls the
      // outcome is read from where the blocks are.
      if (++errors >= 5) {
        channel_error = p.error().describe();
        break;
      }
      continue;
    }
    errors = 0;
    if (p->bytes_moved != last.bytes_moved)
      events_.progress(op.tier, std::min<std::uint64_t>(p->bytes_moved, total), total);
    last = *p;
    if (!p->running) break;
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const bool done = channel_error.empty() && !last.cancelled && last.error.empty() &&
                    last.job == (out ? "evacuate" : "promote");
  auto f = route.control->figures(2000);
  const bool evacuated = f ? f->evacuated() : (done ? out : blocks_at(route.rec) == BlocksAt::spill);
  if (auto m = engine_.mark_evacuated(op.tier, evacuated); !m) opts_.warn("journal: " + m.error().describe());
  std::string abort_why;
  {
    std::lock_guard lk(mu_);
    abort_why = abort_why_;
  }
  const std::string spill = f && !f->spill.empty() ? f->spill : route.rec.spill;
  char rate[64];
  std::snprintf(rate, sizeof rate, "%.1f s (%.2f GB/s)", secs,
                last.seconds > 0 ? double(last.bytes_moved) / last.seconds / 1e9 : 0.0);
  const std::string w = dump_json(Json{{"moved_bytes", last.bytes_moved},
                                       {"total_bytes", total},
                                       {"seconds", secs},
                                       {"chunks_done", last.chunks_done},
                                       {"chunks_total", last.chunks_total},
                                       {"spill", spill}},
                                  false);
  const std::string by = " (" + op.what + " requested by " + op.caller.who + ")";
  if (done) {
    events_.progress(op.tier, total, total);
    events_.action(op.what,
                   out ? "tier " + op.tier + " evacuated: " + format_bytes(last.bytes_moved) +
                             " moved to its " + spill + " spill store in " + rate +
                             "; its VRAM is given back and the swap area stays up" + by
                       : "tier " + op.tier + " promoted: " + format_bytes(last.bytes_moved) +
                             " moved back into VRAM from its " + spill + " spill store in " + rate + by,
                   w);
  } else {
    const std::string why = !abort_why.empty()       ? "aborted (" + abort_why + ")"
                            : !channel_error.empty() ? "its exporter stopped answering: " + channel_error
                            : !last.error.empty()    ? last.error
                            : last.cancelled         ? "cancelled"
                                                     : "the exporter ran another move (" + last.job + ")";
    const std::string where = f ? "; " + std::to_string(f->chunks_spilled) + " of " +
                                      std::to_string(f->chunks_total) +
                                      " chunks are in the spill store, the rest in VRAM"
                                : "";
    events_.action(
        op.what,
        "tier " + op.tier +
            (out ? " stays in VRAM: its evacuation to the " : " stays evacuated: moving it back from the ") +
            spill + " spill store stopped: " + why + where +
            "; the swap area stayed up and no page was lost" + by,
        w);
  }
  events_.state(op.tier, evacuated ? TierState::evacuated : TierState::active);
  release();  // last: wait_idle() returns after the events are out
}

Result<void> OperationRunner::drain(const std::string& what, const std::string& tier, const Caller& caller) {
  if (auto ok = claim({what, tier, caller}); !ok) return std::unexpected(ok.error());
  auto give_up = [&](Error e, bool begun) -> Result<void> {
    if (begun) (void)engine_.end_demote(tier, false);
    release();
    return std::unexpected(std::move(e));
  };
  if (auto ok = known_tier(tier); !ok) return give_up(ok.error(), false);
  auto rec = engine_.begin_demote(tier);
  if (!rec) return give_up(rec.error(), false);
  // Only drain into what the other swap areas can take (the room rule).
  const auto verdict = swapoff_room_now(engine_.fs(), rec->swap_path);
  if (!verdict)
    return give_up({EINVAL, "tier \"" + tier + "\" (" + rec->swap_path + "): " + verdict.error().message +
                                ": nothing to " + what},
                   true);
  if (!verdict->fits) return give_up(no_room(tier, *verdict), true);
  const Json nums = {{"tier_used_bytes", verdict->need},
                     {"other_free_bytes", verdict->room},
                     {"ram_room_bytes", verdict->ram},
                     {"margin_bytes", verdict->margin},
                     {"other_areas", verdict->areas}};
  std::lock_guard lk(mu_);
  // Announced before the worker starts, so that "demoting" comes first.
  events_.action(what,
                 "tier " + tier + " (" + rec->swap_path + "): " + what + " requested by " +
                     caller.describe() + "; moving " + format_bytes(verdict->need) +
                     " into the other swap areas (" + format_bytes(verdict->room) + " free)",
                 dump_json(nums, false));
  events_.state(tier, TierState::demoting);
  worker_ = std::thread([this, op = *op_, r = *rec, used = verdict->need] { run_drain(op, r, used); });
  return {};
}

void OperationRunner::run_drain(Running op, OwnedTier rec, std::uint64_t total) {
  const auto t0 = std::chrono::steady_clock::now();
  std::mutex m;
  std::condition_variable cv;
  bool done = false;
  Result<void> r;
  events_.progress(op.tier, 0, total);
  std::thread off([&] {
    auto x = engine_.kernel().swapoff(rec.swap_path);
    std::lock_guard lk(m);
    r = std::move(x);
    done = true;
    cv.notify_all();
  });
  std::uint64_t last = 0;
  {
    std::unique_lock lk(m);
    while (!done) {
      cv.wait_for(lk, opts_.poll_interval);
      if (done) break;
      lk.unlock();
      if (const auto used = used_bytes(engine_.fs(), rec.swap_path)) {
        const std::uint64_t moved = total > *used ? total - *used : 0;
        if (moved != last) {
          last = moved;
          events_.progress(op.tier, moved, total);
        }
      }
      lk.lock();
    }
  }
  off.join();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (auto end = engine_.end_demote(op.tier, r.has_value()); !end)
    opts_.warn("journal: " + end.error().describe());
  std::string abort_why;
  {
    std::lock_guard lk(mu_);
    abort_why = abort_why_;
  }
  char secs_text[32];
  std::snprintf(secs_text, sizeof secs_text, "%.1f s", secs);
  // Seconds to the millisecond: the event carries what the log line says.
  const std::string nums = dump_json(Json{{"moved_bytes", r ? total : last},
                                          {"total_bytes", total},
                                          {"seconds", std::round(secs * 1000) / 1000}},
                                     false);
  const std::string by = " (" + op.what + " requested by " + op.caller.who + ")";
  if (r) {
    events_.progress(op.tier, total, total);
    events_.action(op.what,
                   "tier " + op.tier + " drained: " + format_bytes(total) +
                       " moved to the other swap areas in " + secs_text + "; it stays off until promoted" +
                       by,
                   nums);
    events_.state(op.tier, TierState::drained);
  } else {
    const std::string why = !abort_why.empty() ? "aborted (" + abort_why + ")" : r.error().describe();
    events_.action(op.what,
                   "tier " + op.tier + " stays active: swapoff of " + rec.swap_path + " " +
                       (abort_why.empty() ? "failed: " : "") + why + "; the kernel kept the area in use" + by,
                   nums);
    events_.state(op.tier, TierState::active);
  }
  release();  // last: wait_idle() returns after the events are out
}

Result<void> OperationRunner::promote(const std::string& tier, const Caller& caller) {
  if (auto route = spill_route(tier); route && route->rec.active)
    return spill_move("promote", false, std::move(*route), caller);
  if (auto ok = claim({"promote", tier, caller}); !ok) return std::unexpected(ok.error());
  if (auto ok = known_tier(tier); !ok) {
    release();
    return std::unexpected(ok.error());
  }
  auto rec = engine_.promote(tier);
  release();
  if (!rec) return std::unexpected(rec.error());
  events_.action("promote",
                 "tier " + tier + " (" + rec->swap_path + "): promote requested by " + caller.describe() +
                     "; back in use at priority " + std::to_string(rec->priority),
                 dump_json(Json{{"priority", rec->priority}, {"discard", rec->discard}}, false));
  events_.state(tier, TierState::active);
  return {};
}

bool OperationRunner::abort(const std::string& why) {
  bool was = false;
  auto* real = dynamic_cast<swap::RealKernel*>(&engine_.kernel());
  std::unique_lock lk(mu_);
  while (op_ && (op_->spill || op_->what == "demote" || op_->what == "evacuate")) {
    was = true;
    abort_why_ = why;
    if (op_->spill) {
      // The worker asks the exporter to cancel; the move ends at a chunk.
      abort_requested_ = true;
      cv_.notify_all();
    } else if (real) {
      // The helper may not exist yet (fork pending): try again until it ends.
      real->abort_swapoff();
    }
    cv_.wait_for(lk, std::chrono::milliseconds(50));
  }
  if (worker_.joinable() && !op_) worker_.join();
  return was;
}

void OperationRunner::wait_idle() {
  std::unique_lock lk(mu_);
  cv_.wait(lk, [&] { return !op_; });
}

}  // namespace tierswap
