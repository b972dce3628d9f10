#include "daemon/figures_watcher.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>

namespace tierswap {

FiguresWatcher::FiguresWatcher(sd_event* loop, List list, Ready ready)
    : loop_(loop), list_(std::move(list)), ready_(std::move(ready)) {}

FiguresWatcher::~FiguresWatcher() {
  for (auto& [tier, e] : entries_) sd_event_source_unref(e->source);
}

int FiguresWatcher::on_io(sd_event_source* s, int, std::uint32_t, void* userdata) {
  auto* e = static_cast<Entry*>(userdata);
  // Its connection is over or replaced: off until the next sync drops it
  // (a closed socket stays readable).
  if (!e->self->ready_(e->tier, e->generation)) sd_event_source_set_enabled(s, SD_EVENT_OFF);
  return 0;
}

void FiguresWatcher::sync() {
  const auto now = list_();
  std::erase_if(entries_, [&](auto& kv) {
    const auto w = std::find_if(now.begin(), now.end(), [&](const auto& n) { return n.first == kv.first; });
    if (w != now.end() && w->second.fd >= 0 && w->second.generation == kv.second->generation) return false;
    sd_event_source_unref(kv.second->source);  // closes its duplicate fd
    return true;
  });
  for (const auto& [tier, w] : now) {
    if (w.fd < 0 || entries_.contains(tier)) continue;
    const int fd = ::fcntl(w.fd, F_DUPFD_CLOEXEC, 3);
    if (fd < 0) continue;  // the next tick takes the answer instead
    auto e = std::make_unique<Entry>(Entry{this, tier, w.generation, nullptr});
    if (sd_event_add_io(loop_, &e->source, fd, EPOLLIN, on_io, e.get()) < 0) {
      ::close(fd);
      continue;
    }
    sd_event_source_set_io_fd_own(e->source, 1);
    entries_.emplace(tier, std::move(e));
  }
}

}  // namespace tierswap
