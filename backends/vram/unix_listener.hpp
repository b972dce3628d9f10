// The exporter's listening socket: only root (and the exporter's own user)
// can reach it.
//
// listen_private_unix(path): the parent directory must belong to the caller
// and be closed to group and others (0700; created 0700 when missing), and
// must not be a symbolic link (refused with ELOOP, never followed). It is
// opened once and used through its descriptor (*at calls). The socket is
// bound inside a fresh private directory next to `path` (0700, so no umask()
// is needed: that would change it for every thread of the process), chmod'ed
// 0600 and renamed onto `path`, so there is no moment at which another user
// could connect. A live socket already at `path` is an error (another
// exporter); a stale one is replaced.
#pragma once

#include <string>

#include "common/result.hpp"

namespace tierswap::vram {

Result<int> listen_private_unix(const std::string& path, int backlog = 64);

// SO_PEERCRED: 0 when the peer is root or `own_uid`, else EPERM with the
// peer's uid/pid in the message.
Result<void> check_peer(int fd, unsigned own_uid);

}  // namespace tierswap::vram
