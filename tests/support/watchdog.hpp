// Watchdog: a test that can hang (locks, a GPU that never answers) fails
// instead. If the watchdog is not destroyed within `limit`, it prints what
// the test was doing and what `describe` says about the state (the chunk
// map, a job's progress), then aborts the process: a deadlocked thread can't
// be unwound, and ctest reports the abort as a failure with that message.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace tierswap::testing {

class Watchdog {
 public:
  Watchdog(std::string what, std::chrono::seconds limit, std::function<std::string()> describe = {})
      : what_(std::move(what)), describe_(std::move(describe)) {
    thread_ = std::thread([this, limit] {
      std::unique_lock lk(mu_);
      if (cv_.wait_for(lk, limit, [this] { return done_; })) return;
      const std::string state = describe_ ? describe_() : std::string();
      std::fprintf(stderr, "\nWATCHDOG: %s did not finish in %lld s (hung?)%s%s\n", what_.c_str(),
                   static_cast<long long>(limit.count()), state.empty() ? "" : "; state: ", state.c_str());
      std::fflush(stderr);
      std::abort();
    });
  }
  ~Watchdog() {
    {
      std::lock_guard lk(mu_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

 private:
  std::string what_;
  std::function<std::string()> describe_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};

}  // namespace tierswap::testing
