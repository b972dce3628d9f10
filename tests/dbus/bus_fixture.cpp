#include "tests/dbus/bus_fixture.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sdbus-c++/sdbus-c++.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "dbus/names.hpp"

namespace tierswap::test {

namespace fs = std::filesystem;

std::string source_dir() {
  return TIERSWAP_SOURCE_DIR;
}
std::string ctl_path() {
  return TIERSWAP_CTL;
}

std::string read_file(const std::string& path) {
  std::stringstream s;
  s << std::ifstream(path).rdbuf();
  return s.str();
}

namespace {

[[noreturn]] void exec_child(const std::vector<std::string>& argv, const std::vector<std::string>& env) {
  // Dies with the test process even when that one crashes or is killed.
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  for (const auto& kv : env) putenv(const_cast<char*>(kv.c_str()));
  std::vector<char*> a;
  for (const auto& s : argv) a.push_back(const_cast<char*>(s.c_str()));
  a.push_back(nullptr);
  execvp(a[0], a.data());
  _exit(127);
}

int decode(int status) {
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

void stop(pid_t pid) {
  if (pid <= 0) return;
  kill(pid, SIGTERM);
  for (int i = 0; i < 100; ++i) {
    int st;
    if (waitpid(pid, &st, WNOHANG) == pid) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  kill(pid, SIGKILL);
  int st;
  waitpid(pid, &st, 0);
}

}  // namespace

ProcResult run_process(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                       int timeout_s) {
  int out[2], err[2];
  if (pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC)) throw std::runtime_error("pipe");
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(out[1], 1);
    dup2(err[1], 2);
    int devnull = open("/dev/null", O_RDONLY);
    dup2(devnull, 0);
    exec_child(argv, env);
  }
  close(out[1]);
  close(err[1]);
  ProcResult r;
  pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  int open_fds = 2;
  while (open_fds > 0) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      kill(pid, SIGKILL);
      break;
    }
    if (poll(fds, 2, static_cast<int>(left.count())) <= 0) continue;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP))) continue;
      char buf[65536];
      const ssize_t n = read(fds[i].fd, buf, sizeof buf);
      if (n <= 0) {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      } else {
        (i == 0 ? r.out : r.err).append(buf, static_cast<std::size_t>(n));
      }
    }
  }
  for (auto& f : fds)
    if (f.fd >= 0) close(f.fd);
  int st = 0;
  waitpid(pid, &st, 0);
  r.code = decode(st);
  return r;
}

ChildProcess::ChildProcess(const std::vector<std::string>& argv, const std::string& stdout_file,
                           const std::vector<std::string>& env) {
  pid_ = fork();
  if (pid_ == 0) {
    int fd = open(stdout_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    exec_child(argv, env);
  }
}

ChildProcess::~ChildProcess() {
  stop(pid_);
}

bool ChildProcess::running() {
  int st;
  return waitpid(pid_, &st, WNOHANG) == 0;
}

int ChildProcess::wait_exit(int timeout_ms) {
  for (int waited = 0; pid_ > 0; waited += 10) {
    int st = 0;
    if (waitpid(pid_, &st, WNOHANG) == pid_) {
      pid_ = -1;
      return decode(st);
    }
    if (waited >= timeout_ms) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return -1;
}

TestBus::TestBus(bool start_now, std::vector<std::string> extra_policies)
    : extra_policies_(std::move(extra_policies)) {
  char tmpl[] = "/tmp/tierswap-dbus-XXXXXX";
  if (!mkdtemp(tmpl)) throw std::runtime_error("mkdtemp");
  dir_ = tmpl;
  chmod(dir_.c_str(), 0755);  // the unprivileged caller (nobody) must reach the socket
  const std::string socket = dir_ + "/system_bus_socket";
  address_ = "unix:path=" + socket;
  if (start_now) start();
}

void TestBus::start() {
  const std::string socket = dir_ + "/system_bus_socket";
  // Like Debian's system.conf: method calls are denied unless a policy file
  // (here: only ours) allows them, names cannot be owned unless allowed.
  std::string includes;
  for (const auto& p : extra_policies_) includes += "  <include>" + p + "</include>\n";
  std::ofstream(dir_ + "/bus.conf")
      << "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n"
         " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
         "<busconfig>\n"
         "  <type>system</type>\n"
         "  <listen>"
      << address_
      << "</listen>\n"
         "  <auth>EXTERNAL</auth>\n"
         "  <policy context=\"default\">\n"
         "    <allow user=\"*\"/>\n"
         "    <deny own=\"*\"/>\n"
         "    <deny send_type=\"method_call\"/>\n"
         "    <allow send_type=\"signal\"/>\n"
         "    <allow send_requested_reply=\"true\" send_type=\"method_return\"/>\n"
         "    <allow send_requested_reply=\"true\" send_type=\"error\"/>\n"
         "    <allow receive_type=\"method_call\"/>\n"
         "    <allow receive_type=\"method_return\"/>\n"
         "    <allow receive_type=\"error\"/>\n"
         "    <allow receive_type=\"signal\"/>\n"
         "    <allow send_destination=\"org.freedesktop.DBus\" send_interface=\"org.freedesktop.DBus\"/>\n"
         "    <allow send_destination=\"org.freedesktop.DBus\" "
         "send_interface=\"org.freedesktop.DBus.Introspectable\"/>\n"
         "    <allow send_destination=\"org.freedesktop.DBus\" "
         "send_interface=\"org.freedesktop.DBus.Properties\"/>\n"
         "  </policy>\n"
         "  <include>"
      << source_dir() << "/packaging/dbus/org.tierswap.Manager1.conf</include>\n"
      << includes << "</busconfig>\n";
  pid_ = fork();
  if (pid_ == 0) {
    int fd = open((dir_ + "/bus.log").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    exec_child({"dbus-daemon", "--nofork", "--nopidfile", "--config-file=" + dir_ + "/bus.conf"}, {});
  }
  // dbus-daemon may start slowly on loaded cores: a generous deadline.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!fs::exists(socket) && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  if (!fs::exists(socket)) {
    const std::string log = read_file(dir_ + "/bus.log");
    stop(pid_);
    fs::remove_all(dir_);
    throw std::runtime_error("dbus-daemon did not start: " + log);
  }
}

void TestBus::stop_bus() {
  stop(pid_);
  pid_ = -1;
  std::error_code ec;
  fs::remove(dir_ + "/system_bus_socket", ec);
}

TestBus::~TestBus() {
  stop(pid_);
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

bool TestBus::wait_for_name(const std::string& name, int timeout_ms) const {
  for (int waited = 0; waited < timeout_ms; waited += 20) {
    try {  // the socket may exist a moment before the bus accepts
      auto conn = sdbus::createSessionBusConnectionWithAddress(address_);
      auto proxy = sdbus::createProxy(*conn, "org.freedesktop.DBus", "/org/freedesktop/DBus");
      bool has = false;
      proxy->callMethod("NameHasOwner")
          .onInterface("org.freedesktop.DBus")
          .withArguments(name)
          .storeResultsTo(has);
      if (has) return true;
    } catch (const sdbus::Error&) {
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

Service::Service(const TestBus& bus, const std::vector<std::string>& extra_args) {
  log_ = bus.dir() + "/calls.log";
  std::ofstream(log_).flush();
  const char* env = std::getenv("TIERSWAP_DBUS_SERVER");
  std::string tmpl = env && *env
                         ? env
                         : std::string(TIERSWAP_TEST_SERVER) +
                               " --address {address} --status {fixture}/status.json --log {log} {args}";
  std::vector<std::string> argv;
  std::istringstream words(tmpl);
  for (std::string w; words >> w;) {
    if (w == "{args}") {
      argv.insert(argv.end(), extra_args.begin(), extra_args.end());
      continue;
    }
    for (auto [k, v] : {std::pair<std::string, std::string>{"{address}", bus.address()},
                        {"{fixture}", source_dir() + "/tests/dbus/fixtures"},
                        {"{log}", log_}}) {
      for (auto p = w.find(k); p != std::string::npos; p = w.find(k)) w.replace(p, k.size(), v);
    }
    argv.push_back(w);
  }
  child_ = std::make_unique<ChildProcess>(argv, bus.dir() + "/service.out");
  ready_ = bus.wait_for_name("org.tierswap.Manager1");
}

std::string Service::calls() const {
  return read_file(log_);
}

ProcResult BusTest::ctl(std::vector<std::string> args) {
  args.insert(args.begin(), ctl_path());
  return run_process(args, {"DBUS_SYSTEM_BUS_ADDRESS=" + bus_.address()});
}

ProcResult BusTest::ctl_as_nobody(std::vector<std::string> args) {
  std::vector<std::string> argv = {
      "runuser", "-u", "nobody", "--", "env", "DBUS_SYSTEM_BUS_ADDRESS=" + bus_.address(), ctl_path()};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_process(argv);
}

std::string BusTest::call(const std::string& method, const std::string& arg) {
  auto conn = sdbus::createSessionBusConnectionWithAddress(bus_.address());
  auto proxy = sdbus::createProxy(*conn, dbus::kBusName, dbus::kManagerPath);
  try {
    proxy->callMethod(method).onInterface(dbus::kManagerInterface).withArguments(arg);
    return "";
  } catch (const sdbus::Error& e) {
    last_message_ = e.getMessage();
    return e.getName();
  }
}

}  // namespace tierswap::test
