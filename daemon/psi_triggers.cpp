#include "daemon/psi_triggers.hpp"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/epoll.h>
#include <sys/vfs.h>
#include <systemd/sd-event.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "backends/hostfs/paths.hpp"

namespace tierswap {

Result<int> open_psi_trigger(const std::string& path, const policy::PsiTrigger& trigger) {
  const int fd = ::open(path.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return fail(errno, path + ": cannot open for a PSI trigger");
  struct statfs st {};
  if (::fstatfs(fd, &st) != 0 || st.f_type != PROC_SUPER_MAGIC) {
    ::close(fd);
    return fail(ENOTSUP, path + ": not procfs's file (a fake root?): no PSI trigger");
  }
  const std::string text = policy::format_psi_trigger(trigger);
  if (::write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    const int err = errno;
    ::close(fd);
    std::string what = text.substr(0, text.size() - 1);
    return fail(
        err, path + ": the kernel refused the trigger \"" + what + "\"" +
                 (err == EINVAL ? " (without CAP_SYS_RESOURCE the window must be a multiple of 2 s)" : ""));
  }
  return fd;
}

std::unique_ptr<PsiTriggers> PsiTriggers::arm(sd_event* loop, const HostFs& fs, OnEvent on_event,
                                              Options options) {
  std::unique_ptr<PsiTriggers> self(new PsiTriggers);
  self->on_event_ = std::move(on_event);
  self->warn_ = options.warn;
  auto info = [&](const std::string& m) {
    if (options.info) options.info(m);
  };
  std::vector<std::string> refused;
  for (auto [resource, kernel_path] :
       {std::pair{"memory", paths::proc_pressure_memory}, std::pair{"io", paths::proc_pressure_io}}) {
    auto fd = open_psi_trigger(fs.resolve(kernel_path).string(), options.trigger);
    if (!fd) {
      refused.push_back(fd.error().describe());
      continue;
    }
    auto w = std::make_unique<Watch>();
    w->resource = resource;
    w->fd = *fd;
    w->owner = self.get();
    if (int r = sd_event_add_io(loop, &w->source, w->fd, EPOLLPRI, &PsiTriggers::on_io, w.get()); r < 0) {
      ::close(w->fd);
      refused.push_back(std::string(resource) + ": sd_event_add_io: " + std::strerror(-r));
      continue;
    }
    self->watches_.push_back(std::move(w));
  }
  const std::string trig = policy::format_psi_trigger(options.trigger);
  std::string names;
  for (const auto& w : self->watches_) names += (names.empty() ? "" : ", ") + w->resource;
  if (!names.empty()) info("PSI triggers armed (" + trig.substr(0, trig.size() - 1) + ") on " + names);
  for (const auto& r : refused) info("PSI trigger: " + r + "; the 2 s tick reads PSI instead");
  return self;
}

PsiTriggers::~PsiTriggers() {
  for (auto& w : watches_) {
    sd_event_source_disable_unref(w->source);
    ::close(w->fd);
  }
}

int PsiTriggers::on_io(sd_event_source* s, int, uint32_t revents, void* userdata) {
  auto* w = static_cast<Watch*>(userdata);
  if (revents & (EPOLLERR | EPOLLHUP)) {
    // The trigger is gone (the kernel invalidated it): the tick stays.
    sd_event_source_set_enabled(s, SD_EVENT_OFF);
    if (w->owner->warn_) w->owner->warn_("PSI trigger on " + w->resource + " stopped; the 2 s tick stays");
    return 0;
  }
  if (revents & EPOLLPRI) w->owner->on_event_(w->resource);
  return 0;
}

}  // namespace tierswap
