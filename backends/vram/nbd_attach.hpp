// The client side of the VRAM tier's kernel attach: the NBD handshake on a
// connected socket, then handing the sockets to the kernel's nbd driver so
// that /dev/nbdN serves the export (the kernel does only the transmission
// phase).
//
// Two ways into the driver:
//   - the "nbd" generic-netlink family (libnl-genl): NBD_CMD_CONNECT with one
//     socket per hardware queue, NBD_CMD_STATUS, NBD_CMD_DISCONNECT. The
//     device needs no process of ours once connected.
//   - the ioctl interface (NBD_SET_SOCK ... NBD_DO_IT), one connection only,
//     used when the family is absent. NBD_DO_IT blocks for the device's whole
//     life, so it runs in a forked helper process (Attachment::helper).
//
// Kernel paths (/dev/nbdN, /sys/block/nbdN/{pid,backend}) go through HostFs.
// Every call needs CAP_SYS_ADMIN except client_handshake().
//
// Errors: Result; messages name the device or socket and say what to do
// ("this kernel has no nbd driver (CONFIG_BLK_DEV_NBD) ...", "no free nbd
// device ..."). code is the kernel's errno where there is one.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "backends/hostfs/host_fs.hpp"
#include "common/result.hpp"

namespace tierswap::vram::attach {

// What the server said in NBD_OPT_GO.
struct ExportInfo {
  std::uint64_t size = 0;
  std::uint16_t transmission_flags = 0;  // NBD_FLAG_* (HAS_FLAGS, CAN_MULTI_CONN, ...)
  std::uint32_t min_block = 1;           // NBD_INFO_BLOCK_SIZE when sent, else 1/4096/32M
  std::uint32_t preferred_block = 4096;
  std::uint32_t max_block = 32U << 20;
};

// The fixed-newstyle handshake (NBD_OPT_GO for `export_name`, asking for
// NBD_INFO_BLOCK_SIZE) on a connected stream socket, leaving it at the start
// of the transmission phase. Blocks; each read waits at most `timeout`.
// Errors: EPROTO (not an NBD server, no fixed newstyle, bad reply), the
// server's refusal (ENOENT for an unknown export, EACCES for policy ...),
// ETIMEDOUT, or the socket's errno.
Result<ExportInfo> client_handshake(int fd, std::string_view export_name = {},
                                    std::chrono::milliseconds timeout = std::chrono::seconds(10));

enum class Via { kNetlink, kIoctl };
const char* to_string(Via v);

struct ConnectOptions {
  std::uint64_t size = 0;  // bytes, a multiple of block_size
  std::uint32_t block_size = 4096;
  // NBD_FLAG_* from the handshake. More than one socket needs CAN_MULTI_CONN.
  std::uint16_t transmission_flags = 0;
  // Request timeout (0: the kernel's default) and, netlink only, how long a
  // device whose connections all died waits for a reconnect before failing
  // I/O (0: fail at once).
  std::chrono::seconds timeout{0};
  std::chrono::seconds dead_conn_timeout{0};
  // The device to use; nullopt: any free one.
  std::optional<unsigned> index;
  // Netlink only: a name the kernel keeps in /sys/block/nbdN/backend, so
  // that find() can re-find this device after a restart.
  std::string identifier;
  // Force the ioctl interface even when the netlink family is there.
  bool force_ioctl = false;
};

struct Attachment {
  unsigned index = 0;
  Via via = Via::kNetlink;
  pid_t helper = 0;  // ioctl only: the process sitting in NBD_DO_IT (disconnect() reaps it)
  [[nodiscard]] std::string device() const { return "/dev/nbd" + std::to_string(index); }
};

// Whether the kernel's nbd netlink family is registered.
bool have_netlink_family();

// Hands `sockets` (already past the handshake) to the kernel. The sockets
// stay owned by the caller, who may close its copies afterwards (the kernel
// holds its own references). Errors: ENODEV "this kernel has no nbd driver
// (CONFIG_BLK_DEV_NBD)"; EBUSY "no free nbd device" / "/dev/nbdN is in use";
// EINVAL for several sockets without CAN_MULTI_CONN or through the ioctl
// interface, or a size that is not a multiple of the block size.
Result<Attachment> connect(const HostFs& fs, std::span<const int> sockets, const ConnectOptions& options);

struct DeviceStatus {
  unsigned index = 0;
  bool connected = false;
  std::string backend;  // /sys/block/nbdN/backend ("" when absent)
};

// NBD_CMD_STATUS: every nbd device the kernel has (index: only that one),
// with the backend identifier read from sysfs. Netlink only (ENOTSUP
// otherwise).
Result<std::vector<DeviceStatus>> status(const HostFs& fs, std::optional<unsigned> index = std::nullopt);

// The connected device whose backend identifier is `identifier`; ENOENT when
// none is.
Result<unsigned> find(const HostFs& fs, std::string_view identifier);

// Disconnects /dev/nbd<index>: NBD_CMD_DISCONNECT for Via::kNetlink, the
// NBD_DISCONNECT ioctl for Via::kIoctl (its helper then leaves NBD_DO_IT and
// exits; when this process forked it, disconnect() waits for it and reaps it:
// ETIMEDOUT when it is still there after 5 s). The kernel closes its
// sockets, so the server sees its connections end.
Result<void> disconnect(const HostFs& fs, unsigned index, Via via);

}  // namespace tierswap::vram::attach
