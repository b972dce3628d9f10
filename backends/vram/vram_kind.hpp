// The vram tier kind: tierswap-nbd (this folder's exporter) serving a store
// of GPU memory (or host RAM, the test store) to the kernel's nbd driver,
// with a swap area on the /dev/nbdN it attaches. Steps (Step::kind "vram"):
//   start_exporter  spawn tierswap-nbd (own session, so that it outlives the
//                   daemon) with `connections` socketpairs and its control
//                   socket at /run/tierswap/exporter-TIER/control; `value` is
//                   "store=S connections=N[ device=G][ spill=SPILL]", `size`
//                   the bytes.
//                   Binds "{vram:TIER:exporter}" ("PID:START") and the
//                   daemon's socket ends for the attach; undo: stop_exporter
//   nbd_attach      NBD handshake on every socket, then the netlink (or
//                   ioctl) connect; `path` is "PID:START" of the exporter,
//                   `value` becomes the device ("nbd0"), bound as
//                   "{vram:TIER}"; `previous` carries "STORE[ spill=SPILL]" and
//                   `previous_size` the number of connections for the
//                   journal; undo: nbd_detach
//   swap_header, swapon, swapoff   (backends/swap/swap_step.hpp)
//   nbd_detach      disconnect device `path` ("nbd0"); cannot be undone
//   stop_exporter   wait for exporter `path` ("PID:START") to exit (it does
//                   once its connections end), SIGTERM after a grace time;
//                   a pid whose start time differs is never signalled
// The exporter is found next to the running executable, else in the
// installed sbin directory. control() hands the daemon an ExporterChannel
// (exporter_control.hpp) to the tier's control socket; a change of `spill:`
// on a running tier is planned as a note (it applies at the next set-up).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "backends/hostfs/host_fs.hpp"
#include "common/tier_kind.hpp"

namespace tierswap::vram {

const TierKind& tier_kind();

// A vram tier's exporter as status shows it: "running" when `pid` runs as
// tierswap-nbd started at `start`, "gone" when not, "" for pid 0.
std::string exporter_state(const HostFs& fs, int pid, std::uint64_t start);

// What a CUDA store's exporter holds on its card beyond the store itself:
// its CUDA context (the driver's per-context state, module, copy kernels).
// Measured on an H200 (driver 580, CUDA 13): NVML's per-process use of
// `tierswap-nbd --store cuda` was about 520 MiB above its --size. Counted
// for a tier about to start; a running exporter's own use is read from NVML
// instead (GpuCard::own_bytes).
inline constexpr std::uint64_t kCudaContextBytes = 520ULL << 20;

// Why a tier of `size` bytes does not fit on `card` with `reserve` bytes
// left free (from key `reserve_key`) and the CUDA context, or nullopt when
// it fits: "size 8.0 GiB is above free VRAM 6.1 GiB on GPU 0 (NVIDIA H200)
// minus reserve 1.0 GiB (policy.reserve_mib) minus 520 MiB for the CUDA
// context". Free VRAM counts what the tier's own running exporter holds.
std::optional<std::string> vram_fit_problem(std::uint64_t size, const GpuCard& card, std::uint64_t reserve,
                                            const std::string& reserve_key);

// The default of `connections:` for a machine with `cpus` CPUs: one per CPU,
// at least 1, at most 16.
int default_connections(unsigned cpus);

}  // namespace tierswap::vram
