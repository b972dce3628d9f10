// tierswap-nbd-attach: a test tool (not installed) that drives the attach
// client (backends/vram/nbd_attach.hpp) and the swap helpers from the VM
// scenario's shell. The daemon does the same through the libraries.
//
//   attach --exporter PATH --size SIZE [--connections N] [--ioctl] [--index N]
//          [--timeout S] [--dead-timeout S] [--identifier ID] [--handshake-timeout S]
//       starts PATH (tierswap-nbd) with --store host on N socketpairs, does
//       the NBD handshake on each, hands them to the kernel and prints
//       "/dev/nbdN via=netlink|ioctl exporter=PID helper=PID".
//   status                 one line per nbd device: index, connected, backend
//   find ID                the index of the connected device named ID
//   detach N [--ioctl]     disconnects /dev/nbdN
//   mkswap DEV             writes tierswap's swap header over the whole device
//   swapon DEV PRIO        swapon with a priority (busybox swapon has none)
//   swapoff DEV
//
// Exit status: 0 done, 1 failed (message on stderr), 2 bad command line.
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "backends/hostfs/host_fs.hpp"
#include "backends/swap/kernel.hpp"
#include "backends/swap/swap_header.hpp"
#include "backends/vram/nbd_attach.hpp"

namespace {

using namespace tierswap;
namespace attach = tierswap::vram::attach;

int usage(const std::string& why) {
  std::fprintf(
      stderr,
      "tierswap-nbd-attach: %s\n"
      "usage: tierswap-nbd-attach attach --exporter PATH --size SIZE [--connections N] [--ioctl]\n"
      "                                  [--index N] [--timeout S] [--dead-timeout S] [--identifier ID]\n"
      "                                  [--handshake-timeout S]\n"
      "       tierswap-nbd-attach status | find ID | detach N [--ioctl]\n"
      "       tierswap-nbd-attach mkswap DEV | swapon DEV PRIO | swapoff DEV\n",
      why.c_str());
  return 2;
}

int failed(const Error& e) {
  std::fprintf(stderr, "tierswap-nbd-attach: %s\n", e.describe().c_str());
  return 1;
}

bool to_num(std::string_view s, unsigned long long& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

// "256M" style sizes (binary multiples), for --size.
bool to_size(std::string_view s, unsigned long long& out) {
  unsigned shift = 0;
  if (!s.empty()) switch (s.back()) {
      case 'K':
        shift = 10;
        break;
      case 'M':
        shift = 20;
        break;
      case 'G':
        shift = 30;
        break;
      default:
        break;
    }
  if (shift != 0) s.remove_suffix(1);
  if (!to_num(s, out)) return false;
  out <<= shift;
  return true;
}

int cmd_attach(const HostFs& fs, std::vector<std::string_view> a) {
  std::string exporter;
  std::string size_text;
  unsigned long long connections = 1;
  attach::ConnectOptions o;
  std::chrono::seconds handshake_timeout{10};
  for (std::size_t i = 0; i < a.size(); ++i) {
    const auto arg = a[i];
    auto value = [&]() -> std::string_view { return i + 1 < a.size() ? a[++i] : std::string_view{}; };
    unsigned long long n = 0;
    if (arg == "--exporter")
      exporter = value();
    else if (arg == "--size")
      size_text = value();
    else if (arg == "--ioctl")
      o.force_ioctl = true;
    else if (arg == "--identifier")
      o.identifier = value();
    else if (arg == "--connections" && to_num(value(), n) && n >= 1 && n <= 64)
      connections = n;
    else if (arg == "--index" && to_num(value(), n))
      o.index = static_cast<unsigned>(n);
    else if (arg == "--timeout" && to_num(value(), n))
      o.timeout = std::chrono::seconds(n);
    else if (arg == "--dead-timeout" && to_num(value(), n))
      o.dead_conn_timeout = std::chrono::seconds(n);
    else if (arg == "--handshake-timeout" && to_num(value(), n))
      handshake_timeout = std::chrono::seconds(n);
    else
      return usage("attach: bad option or value at \"" + std::string(arg) + "\"");
  }
  unsigned long long size = 0;
  if (exporter.empty() || !to_size(size_text, size))
    return usage("attach: needs --exporter PATH and --size SIZE");

  // One socketpair per connection: our ends for the handshake and the
  // kernel, the others for the exporter (its --fd).
  std::vector<int> ours;
  std::vector<int> theirs;
  for (unsigned long long i = 0; i < connections; ++i) {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
      return failed(Error{errno, "socketpair"});
    ours.push_back(sv[0]);
    theirs.push_back(sv[1]);
  }
  std::vector<std::string> args{
      exporter, "--store", "host", "--size", size_text, "--connections", std::to_string(connections)};
  for (int fd : theirs) {
    args.push_back("--fd");
    args.push_back(std::to_string(fd));
  }
  const pid_t pid = ::fork();
  if (pid < 0) return failed(Error{errno, "fork"});
  if (pid == 0) {
    ::setsid();
    // Not our stdout: a shell reading it in $(...) would wait for the
    // exporter to exit.
    ::dup2(STDERR_FILENO, STDOUT_FILENO);
    for (int fd : theirs) ::fcntl(fd, F_SETFD, 0);
    std::vector<char*> argv;
    for (auto& s : args) argv.push_back(s.data());
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    std::fprintf(stderr, "tierswap-nbd-attach: cannot run %s: %m\n", argv[0]);
    ::_exit(127);
  }
  for (int fd : theirs) ::close(fd);

  // On any failure below our ends close when we exit: the exporter then
  // sees every connection end and stops.
  std::uint16_t flags = 0;
  for (int fd : ours) {
    auto info = attach::client_handshake(fd, {}, handshake_timeout);
    if (!info) return failed(info.error());
    if (info->size != size)
      return failed(Error{EPROTO, "the exporter offers " + std::to_string(info->size) + " bytes, not " +
                                      std::to_string(size)});
    flags = info->transmission_flags;
  }
  o.size = size;
  o.transmission_flags = flags;
  auto att = attach::connect(fs, ours, o);
  if (!att) return failed(att.error());
  for (int fd : ours) ::close(fd);
  std::printf("%s via=%s exporter=%d helper=%d\n", att->device().c_str(), attach::to_string(att->via), pid,
              att->helper);
  return 0;
}

Result<std::uint64_t> device_size(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail(errno, path);
  std::uint64_t bytes = 0;
  const int rc = ::ioctl(fd, BLKGETSIZE64, &bytes);
  const int e = errno;
  ::close(fd);
  if (rc != 0) return fail(e, path + ": BLKGETSIZE64");
  return bytes;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string_view> a(argv + 1, argv + argc);
  if (a.empty()) return usage("no command");
  const HostFs fs("/");
  const auto cmd = a[0];
  a.erase(a.begin());
  unsigned long long n = 0;
  if (cmd == "attach") return cmd_attach(fs, a);
  if (cmd == "status" && a.empty()) {
    auto s = attach::status(fs);
    if (!s) return failed(s.error());
    for (const auto& d : *s)
      std::printf("nbd%u connected=%d backend=%s\n", d.index, d.connected ? 1 : 0, d.backend.c_str());
    return 0;
  }
  if (cmd == "find" && a.size() == 1) {
    auto i = attach::find(fs, a[0]);
    if (!i) return failed(i.error());
    std::printf("/dev/nbd%u\n", *i);
    return 0;
  }
  if (cmd == "detach" && !a.empty() && a.size() <= 2 && to_num(a[0], n)) {
    const bool ioctl = a.size() == 2 && a[1] == "--ioctl";
    if (a.size() == 2 && !ioctl) return usage("detach: unknown option");
    auto r =
        attach::disconnect(fs, static_cast<unsigned>(n), ioctl ? attach::Via::kIoctl : attach::Via::kNetlink);
    return r ? 0 : failed(r.error());
  }
  if (cmd == "mkswap" && a.size() == 1) {
    const std::string dev(a[0]);
    auto size = device_size(fs.resolve(dev));
    if (!size) return failed(size.error());
    auto r = swap::write_swap_header(fs.resolve(dev), dev, *size, swap::system_page_size());
    return r ? 0 : failed(r.error());
  }
  swap::RealKernel kernel(fs);
  if (cmd == "swapon" && a.size() == 2 && to_num(a[1], n) && n <= 32767) {
    auto r = kernel.swapon(std::string(a[0]), static_cast<int>(n), false);
    return r ? 0 : failed(r.error());
  }
  if (cmd == "swapoff" && a.size() == 1) {
    auto r = kernel.swapoff(std::string(a[0]));
    return r ? 0 : failed(r.error());
  }
  return usage("unknown command or arguments: " + std::string(cmd));
}
