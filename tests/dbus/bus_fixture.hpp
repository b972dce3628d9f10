// Test fixture for the dbus label: a private dbus-daemon (system-bus style
// policy that includes the project's packaging/dbus/org.tierswap.Manager1.conf)
// on a Unix socket in a temp dir that any user can reach, and the service
// under test started as a child.
//
// The service command is a template so the scripted test server can be
// swapped for the real daemon later:
//   TIERSWAP_DBUS_SERVER="tierswapd --root {fixture}/root --config {fixture}/tierswap.yaml --bus-address
//   {address}"
// Placeholders: {address} (bus address), {fixture} (tests/dbus/fixtures),
// {log} (file the scripted server appends received calls to), {args} (extra
// per-test arguments, ignored by a command that leaves it out).
//
// Every process started here is killed and reaped on every exit path
// (destructors), and the temp dir is removed.
#pragma once

#include <gtest/gtest.h>
#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

namespace tierswap::test {

struct ProcResult {
  int code = -1;  // exit status, or 128+signal
  std::string out, err;
};

// Runs argv to completion (killed after timeout_s) with extra "K=V" env entries.
ProcResult run_process(const std::vector<std::string>& argv, const std::vector<std::string>& env = {},
                       int timeout_s = 30);

class ChildProcess {
 public:
  // `env`: extra "K=V" entries for the child.
  ChildProcess(const std::vector<std::string>& argv, const std::string& stdout_file,
               const std::vector<std::string>& env = {});
  ~ChildProcess();  // SIGTERM, wait up to 5 s, then SIGKILL
  [[nodiscard]] pid_t pid() const { return pid_; }
  [[nodiscard]] bool running();
  // Waits up to timeout_ms for the child to exit: its exit status (128+signal
  // when killed), or -1 when it still runs.
  int wait_exit(int timeout_ms);

 private:
  pid_t pid_ = -1;
};

class TestBus {
 public:
  // start_now false: the address and dir exist, the bus does not yet
  // (start() brings it up, as dbus.socket does late in boot).
  // extra_policies: bus policy files included after the project's (for
  // services played by python3-dbusmock, e.g. tests/dbus/mock-services.conf).
  explicit TestBus(bool start_now = true, std::vector<std::string> extra_policies = {});
  ~TestBus();
  void start();
  // Stops the bus (a dbus-daemon restart, with start()).
  void stop_bus();
  [[nodiscard]] const std::string& address() const { return address_; }
  [[nodiscard]] const std::string& dir() const { return dir_; }
  // Waits until someone owns `name`; false after timeout_ms.
  bool wait_for_name(const std::string& name, int timeout_ms = 10000) const;

 private:
  std::string dir_, address_;
  std::vector<std::string> extra_policies_;
  pid_t pid_ = -1;
};

class Service {
 public:
  Service(const TestBus& bus, const std::vector<std::string>& extra_args = {});
  [[nodiscard]] const std::string& log_path() const { return log_; }
  [[nodiscard]] std::string calls() const;  // contents of the log
  [[nodiscard]] bool ready() const { return ready_; }
  [[nodiscard]] pid_t pid() const { return child_->pid(); }

 private:
  std::string log_;
  std::unique_ptr<ChildProcess> child_;
  bool ready_ = false;
};

std::string read_file(const std::string& path);
std::string source_dir();
std::string ctl_path();

// Base of the dbus fixtures: the private bus, and tierswapctl and direct
// method calls against it. Derived fixtures start their service on bus_.
class BusTest : public ::testing::Test {
 protected:
  ProcResult ctl(std::vector<std::string> args);
  ProcResult ctl_as_nobody(std::vector<std::string> args);
  // Calls a Manager1 method with one string argument, as a desktop tool
  // would; returns the D-Bus error name ("" on success) and keeps the
  // error's message in last_message_.
  std::string call(const std::string& method, const std::string& arg);

  TestBus bus_;
  std::string last_message_;
};

}  // namespace tierswap::test
