// See nbd_attach.hpp.
#include "backends/vram/nbd_attach.hpp"

#include <fcntl.h>
#include <linux/nbd-netlink.h>
#include <linux/nbd.h>
#include <netlink/attr.h>
#include <netlink/genl/ctrl.h>
#include <netlink/genl/genl.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "backends/hostfs/paths.hpp"
#include "backends/vram/nbd_protocol.hpp"
#include "common/refusal.hpp"

namespace tierswap::vram::attach {

namespace {

namespace nbd = tierswap::vram::nbd;

constexpr std::string_view kNoDriver =
    "this kernel has no nbd driver (CONFIG_BLK_DEV_NBD): load it with `modprobe nbd`, or use a kernel built "
    "with it";

std::string nbd_name(unsigned index) {
  return "nbd" + std::to_string(index);
}

// --- socket I/O with a deadline -------------------------------------------

Result<void> wait_fd(int fd, short events, std::chrono::milliseconds timeout) {
  pollfd p{fd, events, 0};
  for (;;) {
    const int n = ::poll(&p, 1, static_cast<int>(timeout.count()));
    if (n > 0) return {};
    if (n == 0)
      return fail(ETIMEDOUT, "NBD handshake: the server did not answer within " +
                                 std::to_string(timeout.count()) + " ms");
    if (errno != EINTR) return kernel_error(errno, "NBD handshake: poll");
  }
}

Result<void> read_all(int fd, void* buf, std::size_t n, std::chrono::milliseconds timeout) {
  auto* p = static_cast<std::byte*>(buf);
  while (n > 0) {
    if (auto w = wait_fd(fd, POLLIN, timeout); !w) return w;
    const ssize_t r = ::recv(fd, p, n, 0);
    if (r == 0) return fail(EPROTO, "NBD handshake: the server closed the connection");
    if (r < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return kernel_error(errno, "NBD handshake: read");
    }
    p += r;
    n -= static_cast<std::size_t>(r);
  }
  return {};
}

Result<void> write_all(int fd, const void* buf, std::size_t n, std::chrono::milliseconds timeout) {
  const auto* p = static_cast<const std::byte*>(buf);
  while (n > 0) {
    if (auto w = wait_fd(fd, POLLOUT, timeout); !w) return w;
    const ssize_t r = ::send(fd, p, n, MSG_NOSIGNAL);
    if (r < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return kernel_error(errno, "NBD handshake: write");
    }
    p += r;
    n -= static_cast<std::size_t>(r);
  }
  return {};
}

// An NBD_REP_ERR_* as an errno and words.
Error option_error(std::uint32_t reply, const std::string& text) {
  int code = EPROTO;
  std::string what;
  switch (reply) {
    case nbd::kRepErrUnsup:
      code = ENOTSUP, what = "does not support NBD_OPT_GO";
      break;
    case nbd::kRepErrPolicy:
      code = EACCES, what = "refused the export by policy";
      break;
    case nbd::kRepErrInvalid:
      code = EINVAL, what = "found the request invalid";
      break;
    case nbd::kRepErrPlatform:
      code = ENOTSUP, what = "cannot do that on its platform";
      break;
    case nbd::kRepErrTlsReqd:
      code = EACCES, what = "requires TLS";
      break;
    case nbd::kRepErrUnknown:
      code = ENOENT, what = "has no such export";
      break;
    case nbd::kRepErrShutdown:
      code = ESHUTDOWN, what = "is shutting down";
      break;
    case nbd::kRepErrBlockSizeReqd:
      code = EINVAL, what = "requires block size negotiation";
      break;
    case nbd::kRepErrTooBig:
      code = EFBIG, what = "found the request too big";
      break;
    default:
      what = "refused NBD_OPT_GO (reply " + std::to_string(reply) + ")";
      break;
  }
  std::string m = "NBD handshake: the server " + what;
  if (!text.empty()) m += " (\"" + text + "\")";
  return Error{code, std::move(m)};
}

// --- generic netlink ----------------------------------------------------

struct SockFree {
  void operator()(nl_sock* s) const { nl_socket_free(s); }
};
using NlSock = std::unique_ptr<nl_sock, SockFree>;

struct Family {
  NlSock sock;
  int id = -1;
};

// ENOENT when the family is not registered (no driver, or no netlink in it).
Result<Family> open_family() {
  NlSock s(nl_socket_alloc());
  if (!s) return kernel_error(ENOMEM, "netlink: cannot allocate a socket");
  if (const int e = genl_connect(s.get()); e < 0)
    return kernel_error(EIO,
                        std::string("netlink: cannot connect a generic netlink socket: ") + nl_geterror(e));
  const int id = genl_ctrl_resolve(s.get(), NBD_GENL_FAMILY_NAME);
  if (id < 0) return kernel_error(ENOENT, "the kernel has no \"nbd\" generic netlink family");
  return Family{std::move(s), id};
}

// What the kernel answered to one request.
struct Reply {
  int error = 0;  // errno from the kernel's NLMSG_ERROR
  std::optional<unsigned> index;
  std::vector<DeviceStatus> devices;
};

int on_valid(nl_msg* msg, void* arg) {
  auto* r = static_cast<Reply*>(arg);
  auto* gh = static_cast<genlmsghdr*>(nlmsg_data(nlmsg_hdr(msg)));
  std::array<nlattr*, NBD_ATTR_MAX + 1> tb{};
  if (nla_parse(tb.data(), NBD_ATTR_MAX, genlmsg_attrdata(gh, 0), genlmsg_attrlen(gh, 0), nullptr) < 0)
    return NL_SKIP;
  if (tb[NBD_ATTR_INDEX] != nullptr) r->index = nla_get_u32(tb[NBD_ATTR_INDEX]);
  if (tb[NBD_ATTR_DEVICE_LIST] != nullptr) {
    nlattr* item = nullptr;
    int rem = 0;
    nla_for_each_nested(item, tb[NBD_ATTR_DEVICE_LIST], rem) {
      if (nla_type(item) != NBD_DEVICE_ITEM) continue;
      std::array<nlattr*, NBD_DEVICE_ATTR_MAX + 1> d{};
      if (nla_parse_nested(d.data(), NBD_DEVICE_ATTR_MAX, item, nullptr) < 0) continue;
      if (d[NBD_DEVICE_INDEX] == nullptr) continue;
      DeviceStatus s;
      s.index = nla_get_u32(d[NBD_DEVICE_INDEX]);
      s.connected = d[NBD_DEVICE_CONNECTED] != nullptr && nla_get_u8(d[NBD_DEVICE_CONNECTED]) != 0;
      r->devices.push_back(std::move(s));
    }
  }
  return NL_OK;
}

int on_error(sockaddr_nl* /*who*/, nlmsgerr* e, void* arg) {
  static_cast<Reply*>(arg)->error = -e->error;
  return NL_STOP;
}

using Fill = std::function<int(nl_msg*)>;

// Sends one nbd command, waits for the kernel's answer and its ack.
Result<Reply> transact(Family& fam, std::uint8_t cmd, const char* what, const Fill& fill) {
  Reply reply;
  nl_socket_modify_cb(fam.sock.get(), NL_CB_VALID, NL_CB_CUSTOM, on_valid, &reply);
  nl_socket_modify_err_cb(fam.sock.get(), NL_CB_CUSTOM, on_error, &reply);
  nl_msg* msg = nlmsg_alloc();
  if (msg == nullptr) return kernel_error(ENOMEM, std::string("netlink: ") + what);
  if (genlmsg_put(msg, NL_AUTO_PORT, NL_AUTO_SEQ, fam.id, 0, 0, cmd, NBD_GENL_VERSION) == nullptr ||
      fill(msg) < 0) {
    nlmsg_free(msg);
    return refusal(ErrorKind::failed, EMSGSIZE, std::string("netlink: cannot build ") + what);
  }
  const int rc = nl_send_sync(fam.sock.get(), msg);  // frees msg
  if (reply.error != 0) return kernel_error(reply.error, what);
  if (rc < 0) return kernel_error(EIO, std::string(what) + ": " + nl_geterror(rc));
  return reply;
}

// --- NBD_DO_IT helpers ------------------------------------------------------
// The helpers this process forked, by device index, so that disconnect()
// reaps the one it ends (a helper of an earlier process of ours is not our
// child: its parent's end handed it to init, which reaps it).

std::mutex helpers_mu;
std::map<unsigned, pid_t>& helpers() {
  static std::map<unsigned, pid_t> m;
  return m;
}

void remember_helper(unsigned index, pid_t pid) {
  std::lock_guard lk(helpers_mu);
  helpers()[index] = pid;
}

// Waits up to `grace` for the helper of `index` to leave NBD_DO_IT and
// reaps it; a helper that stays is left registered (a later disconnect
// tries again). Returns whether none is left to reap.
bool reap_helper(unsigned index, std::chrono::milliseconds grace) {
  pid_t pid = 0;
  {
    std::lock_guard lk(helpers_mu);
    const auto it = helpers().find(index);
    if (it == helpers().end()) return true;
    pid = it->second;
  }
  const auto until = std::chrono::steady_clock::now() + grace;
  for (;;) {
    const pid_t w = ::waitpid(pid, nullptr, WNOHANG);
    if (w == pid || (w < 0 && errno == ECHILD)) break;
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::lock_guard lk(helpers_mu);
  helpers().erase(index);
  return true;
}

// --- device nodes and sysfs -----------------------------------------------

struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

bool is_connected_in_sysfs(const HostFs& fs, unsigned index) {
  return fs.exists(paths::block_attr(nbd_name(index), "pid"));
}

// nbd devices the kernel has, by index, from /sys/block.
std::vector<unsigned> sysfs_devices(const HostFs& fs) {
  std::vector<unsigned> out;
  auto names = fs.list(paths::sys_block);
  if (!names) return out;
  for (const auto& n : *names) {
    if (n.size() <= 3 || n.compare(0, 3, "nbd") != 0) continue;
    if (!std::all_of(n.begin() + 3, n.end(), [](char c) { return c >= '0' && c <= '9'; })) continue;
    out.push_back(static_cast<unsigned>(std::stoul(n.substr(3))));
  }
  std::sort(out.begin(), out.end());
  return out;
}

bool have_driver_files(const HostFs& fs) {
  return !sysfs_devices(fs).empty() || fs.exists(paths::dev_node("nbd0"));
}

Result<void> nbd_ioctl(int fd, unsigned long req, unsigned long arg, const std::string& dev,
                       const char* name) {
  if (::ioctl(fd, req, arg) < 0) return kernel_error(errno, dev + ": ioctl " + name);
  return {};
}

// Sets up /dev/nbd<index> through ioctls and leaves a helper in NBD_DO_IT.
Result<Attachment> connect_ioctl_one(const HostFs& fs, unsigned index, int sock, const ConnectOptions& o) {
  const std::string dev = paths::dev_node(nbd_name(index));
  Fd d(::open(fs.resolve(dev).c_str(), O_RDWR | O_CLOEXEC));
  if (d.fd < 0) return kernel_error(errno, dev + ": open");
  if (auto r = nbd_ioctl(d.fd, NBD_SET_BLKSIZE, o.block_size, dev, "NBD_SET_BLKSIZE"); !r)
    return std::unexpected(r.error());
  if (auto r = nbd_ioctl(d.fd, NBD_SET_SIZE_BLOCKS, o.size / o.block_size, dev, "NBD_SET_SIZE_BLOCKS"); !r)
    return std::unexpected(r.error());
  if (o.timeout.count() > 0)
    if (auto r = nbd_ioctl(d.fd, NBD_SET_TIMEOUT, static_cast<unsigned long>(o.timeout.count()), dev,
                           "NBD_SET_TIMEOUT");
        !r)
      return std::unexpected(r.error());
  if (auto r = nbd_ioctl(d.fd, NBD_SET_FLAGS, o.transmission_flags, dev, "NBD_SET_FLAGS"); !r)
    return std::unexpected(r.error());
  if (auto r = nbd_ioctl(d.fd, NBD_SET_SOCK, static_cast<unsigned long>(sock), dev, "NBD_SET_SOCK"); !r) {
    if (r.error().code == EBUSY) return kernel_error(EBUSY, dev + " is in use");
    return std::unexpected(r.error());
  }
  // The helper keeps only the device: stdin and stdout on /dev/null (a
  // caller reading our stdout through a pipe must not wait for the helper),
  // stderr as it is, every other descriptor closed.
  Fd null_fd(::open(fs.resolve(paths::dev_node("null")).c_str(), O_RDWR | O_CLOEXEC));
  const pid_t pid = ::fork();
  if (pid < 0) {
    const int e = errno;
    ::ioctl(d.fd, NBD_CLEAR_SOCK);
    return kernel_error(e, dev + ": fork for NBD_DO_IT");
  }
  if (pid == 0) {
    // Only async-signal-safe calls from here: the parent may have threads.
    if (null_fd.fd >= 0) {
      ::dup2(null_fd.fd, STDIN_FILENO);
      ::dup2(null_fd.fd, STDOUT_FILENO);
    }
    const int dev_fd = 3;
    if (d.fd != dev_fd && ::dup2(d.fd, dev_fd) < 0) ::_exit(1);
    ::close_range(dev_fd + 1, ~0U, 0);
    const int rc = ::ioctl(dev_fd, NBD_DO_IT);
    ::ioctl(dev_fd, NBD_CLEAR_QUE);
    ::ioctl(dev_fd, NBD_CLEAR_SOCK);
    ::_exit(rc == 0 ? 0 : 1);
  }
  // The device serves I/O once NBD_DO_IT has started it: the kernel then
  // creates /sys/block/nbdN/pid.
  for (int i = 0; i < 500; ++i) {
    if (is_connected_in_sysfs(fs, index)) {
      remember_helper(index, pid);
      return Attachment{index, Via::kIoctl, pid};
    }
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid)
      return kernel_error(
          EIO, dev + ": NBD_DO_IT ended at once (exit " + std::to_string(WEXITSTATUS(status)) + ")");
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ::ioctl(d.fd, NBD_DISCONNECT);
  ::waitpid(pid, nullptr, 0);
  return fail(ETIMEDOUT, dev + ": did not start within 5 s of NBD_DO_IT");
}

Result<Attachment> connect_ioctl(const HostFs& fs, int sock, const ConnectOptions& o) {
  if (o.index) return connect_ioctl_one(fs, *o.index, sock, o);
  for (unsigned i : sysfs_devices(fs)) {
    if (is_connected_in_sysfs(fs, i)) continue;
    auto a = connect_ioctl_one(fs, i, sock, o);
    if (a || a.error().code != EBUSY) return a;
  }
  return fail(
      EBUSY,
      "no free nbd device: every /dev/nbdN is connected (load nbd with a larger nbds_max, or detach one)");
}

Result<Attachment> connect_netlink(Family& fam, std::span<const int> sockets, const ConnectOptions& o) {
  auto put = [&](nl_msg* m) -> int {
    int rc = 0;
    if (o.index) rc |= nla_put_u32(m, NBD_ATTR_INDEX, *o.index);
    rc |= nla_put_u64(m, NBD_ATTR_SIZE_BYTES, o.size);
    rc |= nla_put_u64(m, NBD_ATTR_BLOCK_SIZE_BYTES, o.block_size);
    rc |= nla_put_u64(m, NBD_ATTR_SERVER_FLAGS, o.transmission_flags);
    if (o.timeout.count() > 0)
      rc |= nla_put_u64(m, NBD_ATTR_TIMEOUT, static_cast<std::uint64_t>(o.timeout.count()));
    if (o.dead_conn_timeout.count() > 0)
      rc |=
          nla_put_u64(m, NBD_ATTR_DEAD_CONN_TIMEOUT, static_cast<std::uint64_t>(o.dead_conn_timeout.count()));
    if (!o.identifier.empty()) rc |= nla_put_string(m, NBD_ATTR_BACKEND_IDENTIFIER, o.identifier.c_str());
    nlattr* socks = nla_nest_start(m, NBD_ATTR_SOCKETS);
    if (socks == nullptr) return -1;
    for (int fd : sockets) {
      nlattr* item = nla_nest_start(m, NBD_SOCK_ITEM);
      if (item == nullptr) return -1;
      rc |= nla_put_u32(m, NBD_SOCK_FD, static_cast<std::uint32_t>(fd));
      nla_nest_end(m, item);
    }
    nla_nest_end(m, socks);
    return rc;
  };
  auto r = transact(fam, NBD_CMD_CONNECT, "NBD_CMD_CONNECT", put);
  if (!r) {
    Error e = r.error();
    if (e.code == EBUSY)
      e.message = o.index ? paths::dev_node(nbd_name(*o.index)) + " is in use"
                          : "no free nbd device (load nbd with a larger nbds_max, or detach one)";
    else if (e.code == EINVAL)
      e.message += " (the kernel refused the size, block size, flags or sockets)";
    return std::unexpected(std::move(e));
  }
  if (!r->index) return fail(EPROTO, "NBD_CMD_CONNECT: the kernel's answer has no device index");
  return Attachment{*r->index, Via::kNetlink, 0};
}

}  // namespace

const char* to_string(Via v) {
  return v == Via::kNetlink ? "netlink" : "ioctl";
}

Result<ExportInfo> client_handshake(int fd, std::string_view export_name, std::chrono::milliseconds timeout) {
  std::array<std::byte, 18> greeting{};
  if (auto r = read_all(fd, greeting.data(), greeting.size(), timeout); !r) return std::unexpected(r.error());
  if (nbd::load_be64(greeting.data()) != nbd::kNbdMagic)
    return fail(EPROTO, "NBD handshake: the peer is not an NBD server (no NBDMAGIC)");
  if (nbd::load_be64(greeting.data() + 8) != nbd::kIHaveOpt)
    return fail(EPROTO, "NBD handshake: the server speaks oldstyle NBD, not newstyle");
  const std::uint16_t hflags = nbd::load_be16(greeting.data() + 16);
  if ((hflags & nbd::kFlagFixedNewstyle) == 0)
    return fail(EPROTO, "NBD handshake: the server does not speak fixed newstyle NBD");
  const bool no_zeroes = (hflags & nbd::kFlagNoZeroes) != 0;

  // Client flags, then NBD_OPT_GO: u32 name length, name, u16 1, u16 BLOCK_SIZE.
  if (export_name.size() > 4096)
    return refusal(ErrorKind::invalid_argument, EINVAL, "NBD handshake: export name longer than 4096 bytes");
  std::vector<std::byte> out(4 + nbd::kOptionHeaderSize + 4 + export_name.size() + 4);
  std::byte* p = out.data();
  nbd::store_be32(p, nbd::kClientFlagFixedNewstyle | (no_zeroes ? nbd::kClientFlagNoZeroes : 0U));
  p += 4;
  nbd::store_be64(p, nbd::kIHaveOpt);
  nbd::store_be32(p + 8, nbd::kOptGo);
  nbd::store_be32(p + 12, static_cast<std::uint32_t>(4 + export_name.size() + 4));
  p += nbd::kOptionHeaderSize;
  nbd::store_be32(p, static_cast<std::uint32_t>(export_name.size()));
  p += 4;
  // An empty name's data() may be null: memcpy from null is undefined even
  // for 0 bytes (UBSan's finding).
  if (!export_name.empty()) std::memcpy(p, export_name.data(), export_name.size());
  p += export_name.size();
  nbd::store_be16(p, 1);
  nbd::store_be16(p + 2, nbd::kInfoBlockSize);
  if (auto r = write_all(fd, out.data(), out.size(), timeout); !r) return std::unexpected(r.error());

  ExportInfo info;
  bool have_export = false;
  for (int replies = 0; replies < 64; ++replies) {
    std::array<std::byte, nbd::kOptReplyHeaderSize> h{};
    if (auto r = read_all(fd, h.data(), h.size(), timeout); !r) return std::unexpected(r.error());
    if (nbd::load_be64(h.data()) != nbd::kOptReplyMagic)
      return fail(EPROTO, "NBD handshake: bad option reply magic");
    const std::uint32_t option = nbd::load_be32(h.data() + 8);
    const std::uint32_t type = nbd::load_be32(h.data() + 12);
    const std::uint32_t len = nbd::load_be32(h.data() + 16);
    if (option != nbd::kOptGo) return fail(EPROTO, "NBD handshake: reply to an option we did not send");
    if (len > 65536) return fail(EPROTO, "NBD handshake: option reply of " + std::to_string(len) + " bytes");
    std::vector<std::byte> data(len);
    if (len > 0)
      if (auto r = read_all(fd, data.data(), len, timeout); !r) return std::unexpected(r.error());
    if ((type & 0x80000000U) != 0) {
      std::string text(reinterpret_cast<const char*>(data.data()), std::min<std::size_t>(len, 200));
      return std::unexpected(option_error(type, text));
    }
    if (type == nbd::kRepAck) {
      if (!have_export) return fail(EPROTO, "NBD handshake: NBD_OPT_GO acknowledged without NBD_INFO_EXPORT");
      if ((info.transmission_flags & nbd::kTxHasFlags) == 0)
        return fail(EPROTO, "NBD handshake: transmission flags without NBD_FLAG_HAS_FLAGS");
      return info;
    }
    if (type != nbd::kRepInfo || len < 2) continue;  // unknown replies are skipped, as the protocol says
    const std::uint16_t what = nbd::load_be16(data.data());
    if (what == nbd::kInfoExport && len == 12) {
      info.size = nbd::load_be64(data.data() + 2);
      info.transmission_flags = nbd::load_be16(data.data() + 10);
      have_export = true;
    } else if (what == nbd::kInfoBlockSize && len == 14) {
      info.min_block = nbd::load_be32(data.data() + 2);
      info.preferred_block = nbd::load_be32(data.data() + 6);
      info.max_block = nbd::load_be32(data.data() + 10);
    }
  }
  return fail(EPROTO, "NBD handshake: more than 64 replies to NBD_OPT_GO");
}

bool have_netlink_family() {
  return open_family().has_value();
}

Result<Attachment> connect(const HostFs& fs, std::span<const int> sockets, const ConnectOptions& o) {
  if (sockets.empty()) return refusal(ErrorKind::invalid_argument, EINVAL, "nbd connect: no sockets given");
  if (o.block_size < 512 || o.block_size > 65536 || (o.block_size & (o.block_size - 1)) != 0)
    return refusal(ErrorKind::invalid_argument, EINVAL,
                   "nbd connect: block size " + std::to_string(o.block_size) +
                       " is not a power of two from 512 to 65536");
  if (o.size == 0 || o.size % o.block_size != 0)
    return refusal(ErrorKind::invalid_argument, EINVAL,
                   "nbd connect: export size " + std::to_string(o.size) +
                       " is not a non-zero multiple of the block size " + std::to_string(o.block_size));
  if (sockets.size() > 1 && (o.transmission_flags & nbd::kTxCanMultiConn) == 0)
    return refusal(ErrorKind::invalid_argument, EINVAL,
                   "nbd connect: " + std::to_string(sockets.size()) +
                       " sockets, but the server does not advertise NBD_FLAG_CAN_MULTI_CONN");
  if (!o.force_ioctl) {
    auto fam = open_family();
    if (fam) return connect_netlink(*fam, sockets, o);
    if (fam.error().code != ENOENT) return std::unexpected(fam.error());
  }
  if (!have_driver_files(fs)) return fail(ENODEV, std::string(kNoDriver));
  if (sockets.size() > 1)
    return refusal(ErrorKind::invalid_argument, EINVAL,
                   "nbd connect: the ioctl interface takes one socket, " + std::to_string(sockets.size()) +
                       " given (this kernel's nbd driver has no netlink family)");
  return connect_ioctl(fs, sockets[0], o);
}

Result<std::vector<DeviceStatus>> status(const HostFs& fs, std::optional<unsigned> index) {
  auto fam = open_family();
  if (!fam) {
    if (fam.error().code != ENOENT) return std::unexpected(fam.error());
    if (!have_driver_files(fs)) return fail(ENODEV, std::string(kNoDriver));
    return fail(ENOTSUP, "NBD_CMD_STATUS: " + fam.error().message);
  }
  auto r = transact(*fam, NBD_CMD_STATUS, "NBD_CMD_STATUS",
                    [&](nl_msg* m) { return index ? nla_put_u32(m, NBD_ATTR_INDEX, *index) : 0; });
  if (!r) return std::unexpected(r.error());
  for (auto& d : r->devices) {
    auto b = fs.read_value(paths::block_attr(nbd_name(d.index), "backend"));
    if (b) d.backend = *b;
  }
  std::sort(r->devices.begin(), r->devices.end(),
            [](const DeviceStatus& a, const DeviceStatus& b) { return a.index < b.index; });
  return std::move(r->devices);
}

Result<unsigned> find(const HostFs& fs, std::string_view identifier) {
  auto all = status(fs);
  if (!all) return std::unexpected(all.error());
  for (const auto& d : *all)
    if (d.connected && d.backend == identifier) return d.index;
  return fail(ENOENT,
              "no connected nbd device has the backend identifier \"" + std::string(identifier) + "\"");
}

Result<void> disconnect(const HostFs& fs, unsigned index, Via via) {
  const std::string dev = paths::dev_node(nbd_name(index));
  if (via == Via::kNetlink) {
    auto fam = open_family();
    if (!fam) return std::unexpected(fam.error());
    auto r = transact(*fam, NBD_CMD_DISCONNECT, "NBD_CMD_DISCONNECT",
                      [&](nl_msg* m) { return nla_put_u32(m, NBD_ATTR_INDEX, index); });
    if (!r) return wrap(r.error(), dev);
    return {};
  }
  Fd d(::open(fs.resolve(dev).c_str(), O_RDWR | O_CLOEXEC));
  if (d.fd < 0) return kernel_error(errno, dev + ": open");
  if (auto r = nbd_ioctl(d.fd, NBD_DISCONNECT, 0, dev, "NBD_DISCONNECT"); !r) return r;
  ::ioctl(d.fd, NBD_CLEAR_SOCK);
  // The helper leaves NBD_DO_IT once the kernel let go of the device.
  if (!reap_helper(index, std::chrono::seconds(5)))
    return fail(ETIMEDOUT, dev + ": the NBD_DO_IT helper did not exit within 5 s of NBD_DISCONNECT");
  return {};
}

}  // namespace tierswap::vram::attach
