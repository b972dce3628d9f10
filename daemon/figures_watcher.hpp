// FiguresWatcher: the event loop's watches on the vram exporters' figures
// connections (StatusObserver::figures_watches), so that an answer is taken
// when it arrives rather than waited for by the tick.
//
//   FiguresWatcher w(loop, [&] { return manager.figures_watches(); },
//                    [&](const std::string& tier, std::uint64_t generation) {
//                      return manager.figures_ready(tier, generation);
//                    });
//   w.sync();  // after each tick: a watch per connection, stale ones dropped
//
// Each watch is on a duplicate of the connection's fd, owned by the watch:
// the channel may close and reopen its own at any time (a new connection
// number makes the old watch stale) without the loop's epoll set ever
// naming an fd number that now belongs to something else. A watch whose
// connection ended is switched off at once (a closed socket stays
// readable) and dropped at the next sync; so is one whose channel has
// moved on to a newer connection (`ready` answers false for it).
//
// Thread-safety: the loop's thread only.
#pragma once

#include <systemd/sd-event.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/tier_control.hpp"

namespace tierswap {

class FiguresWatcher {
 public:
  using List = std::function<std::vector<std::pair<std::string, TierControl::FiguresWatch>>()>;
  // Takes `tier`'s answer; false when the watched connection (`generation`)
  // is no longer the tier's.
  using Ready = std::function<bool(const std::string& tier, std::uint64_t generation)>;

  FiguresWatcher(sd_event* loop, List list, Ready ready);
  ~FiguresWatcher();
  FiguresWatcher(const FiguresWatcher&) = delete;
  FiguresWatcher& operator=(const FiguresWatcher&) = delete;

  void sync();
  // Tiers watched now (for tests and logs).
  [[nodiscard]] std::size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    FiguresWatcher* self = nullptr;
    std::string tier;
    std::uint64_t generation = 0;
    sd_event_source* source = nullptr;
  };
  static int on_io(sd_event_source* s, int fd, std::uint32_t revents, void* userdata);

  sd_event* loop_;
  List list_;
  Ready ready_;
  std::map<std::string, std::unique_ptr<Entry>> entries_;
};

}  // namespace tierswap
