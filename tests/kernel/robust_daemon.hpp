// A tierswapd (or tierswapd-test) child for the robustness tests: stderr in
// a file, its own NOTIFY_SOCKET, and waits for readiness, a log line, a
// self-stop (SIGSTOP, from tierswapd-test's --test-stop-at-save) or exit.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "machine_state.hpp"

extern char** environ;

namespace tierswap::ktest {

using namespace std::chrono_literals;

class DaemonProcess {
 public:
  DaemonProcess(const std::string& dir, const char* bin, std::vector<std::string> args)
      : log_(dir + "/tierswapd.log"), sock_path_(dir + "/notify.sock") {
    ::unlink(sock_path_.c_str());
    sock_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, sock_path_.c_str(), sizeof a.sun_path - 1);
    ::bind(sock_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    timeval tv{0, 100000};
    ::setsockopt(sock_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 2, log_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    args.insert(args.begin(), bin);
    std::vector<char*> argv;
    for (auto& s : args) argv.push_back(s.data());
    argv.push_back(nullptr);
    std::vector<std::string> envs = {"NOTIFY_SOCKET=" + sock_path_, "PATH=/usr/sbin:/usr/bin:/sbin:/bin"};
    std::vector<char*> envp;
    for (auto& s : envs) envp.push_back(s.data());
    envp.push_back(nullptr);
    const std::string banner = "==== " + join(args) + "\n";
    if (int fd = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644); fd >= 0) {
      (void)!::write(fd, banner.data(), banner.size());
      ::close(fd);
    }
    if (posix_spawn(&pid_, bin, &fa, nullptr, argv.data(), envp.data()) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&fa);
  }
  ~DaemonProcess() {
    if (pid_ > 0 && !exited_) {
      ::kill(pid_, SIGCONT);
      ::kill(pid_, SIGTERM);
      if (wait(30s) < 0) {
        ::kill(pid_, SIGKILL);
        wait(10s);
      }
    }
    ::close(sock_);
    ::unlink(sock_path_.c_str());
  }
  DaemonProcess(const DaemonProcess&) = delete;
  DaemonProcess& operator=(const DaemonProcess&) = delete;

  bool wait_notify(const std::string& what, std::chrono::seconds limit = 60s) {
    const auto end = std::chrono::steady_clock::now() + limit;
    char buf[512];
    while (std::chrono::steady_clock::now() < end) {
      const auto n = ::recv(sock_, buf, sizeof buf, 0);
      if (n > 0 && std::string(buf, static_cast<size_t>(n)).find(what) != std::string::npos) return true;
      if (poll_status() == Status::exited) return false;
    }
    return false;
  }
  bool wait_log(const std::string& what, std::chrono::seconds limit = 60s) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
      if (log().find(what) != std::string::npos) return true;
      std::this_thread::sleep_for(20ms);
    }
    return false;
  }
  // Whether it stopped itself (SIGSTOP) before `limit`; false when it exited
  // or kept running.
  bool wait_stopped(std::chrono::seconds limit = 60s) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
      const Status s = poll_status();
      if (s == Status::stopped) return true;
      if (s == Status::exited) return false;
      std::this_thread::sleep_for(10ms);
    }
    return false;
  }
  enum class Reached { stopped, ready, exited, timeout };
  // The first of: stopped itself, sent READY=1, exited; within `limit`.
  Reached wait_stopped_or_ready(std::chrono::seconds limit = 60s) {
    const auto end = std::chrono::steady_clock::now() + limit;
    char buf[512];
    while (std::chrono::steady_clock::now() < end) {
      const Status s = poll_status();
      if (s == Status::stopped) return Reached::stopped;
      if (s == Status::exited) return Reached::exited;
      const auto n = ::recv(sock_, buf, sizeof buf, MSG_DONTWAIT);
      if (n > 0 && std::string(buf, static_cast<size_t>(n)).find("READY=1") != std::string::npos)
        return Reached::ready;
      std::this_thread::sleep_for(5ms);
    }
    return Reached::timeout;
  }
  // Exit status (128 + signal when killed), or -1 on timeout.
  int wait(std::chrono::seconds limit = 60s) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (poll_status() != Status::exited && std::chrono::steady_clock::now() < end)
      std::this_thread::sleep_for(20ms);
    return exited_ ? status_ : -1;
  }
  void signal(int s) { ::kill(pid_, s); }
  [[nodiscard]] std::string log() const { return slurp(log_); }

 private:
  enum class Status { running, stopped, exited };
  Status poll_status() {
    if (exited_) return Status::exited;
    int st = 0;
    const pid_t r = ::waitpid(pid_, &st, WNOHANG | WUNTRACED);
    if (r != pid_) return Status::running;
    if (WIFSTOPPED(st)) return Status::stopped;
    exited_ = true;
    status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return Status::exited;
  }
  static std::string join(const std::vector<std::string>& v) {
    std::string s;
    for (const auto& a : v) s += (s.empty() ? "" : " ") + a;
    return s;
  }
  std::string log_, sock_path_;
  int sock_ = -1;
  pid_t pid_ = -1;
  bool exited_ = false;
  int status_ = -1;
};

}  // namespace tierswap::ktest
