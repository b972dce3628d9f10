// SpillStore: where an evacuated chunk of the VRAM tier's export lives while
// its memory is given back (see migrating_store.hpp and docs/evacuation.md).
//
// A spill store spans the whole export (offsets are export offsets) but only
// the spilled chunks' ranges hold data; discard() says a range is no longer
// needed (its chunk went back to the primary store). BlockStore's contract
// applies: 512-byte alignment, errno returns, overlapping requests ordered by
// the caller.
//
// FileSpillStore: a file on local disk, preallocated with fallocate(). The
// file is created by the exporter itself: its directory is reached by the
// rules of backends/swap/safe_path.hpp (root-owned, not writable by others),
// the file is created O_CREAT|O_EXCL|O_NOFOLLOW mode 0600 (an existing file
// or a link at the path is refused with EEXIST) and unlinked at once, so
// that swapped-out memory never stays on disk under a name and nothing is
// left behind when the exporter ends. Requests aligned to 4096 bytes use an
// O_DIRECT descriptor (no page cache: evacuating VRAM must not fill RAM);
// where the filesystem refuses O_DIRECT (tmpfs), or for a request that is
// not aligned, a buffered descriptor on the same file is used (the kernel
// keeps the two coherent: a direct read writes back dirty cached pages, a
// direct write drops them). flush() returns at once: the export is volatile
// memory and the file does not outlive the exporter.
//
// Lz4SpillStore: compressed RAM. Each 4 KiB page is compressed on its own
// with LZ4 (liblz4) into its own slot (rounded up to 256 bytes so that
// a rewrite that compresses a little worse reuses it); an all-zero page holds
// nothing; a page LZ4 cannot shrink is kept raw. Each thread compresses
// with its own LZ4 stream state (reset per page, so pages stay independent). Unlike the primary stores
// it allocates on the I/O path (locked by the exporter's mlockall): that
// memory is the point of the store. Slots come from one arena per 64 MiB of
// export, mapped in populated blocks and unmapped when the segment is
// empty again; during an evacuation (expect()) threads populate blocks
// ahead of the movers, at most 256 MiB (docs/evacuation.md, "Spill
// memory"). ENOMEM when no memory can be mapped.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "backends/vram/block_store.hpp"
#include "common/result.hpp"

namespace tierswap::vram {

class SpillStore : public BlockStore {
 public:
  // [offset, offset + length) holds nothing worth keeping any more.
  virtual void discard(std::uint64_t offset, std::uint64_t length) = 0;
  // Bytes of data held (non-zero pages for lz4, written bytes for a file).
  [[nodiscard]] virtual std::uint64_t stored_bytes() const = 0;
  // What holding them costs: compressed RAM for lz4, 0 for a file (its
  // space is preallocated: see size()).
  [[nodiscard]] virtual std::uint64_t footprint_bytes() const = 0;
  // stored / footprint (lz4); 1.0 for a file or an empty store.
  [[nodiscard]] double ratio() const;
  // One line for a person: kind, path, O_DIRECT or not.
  [[nodiscard]] virtual std::string describe() const = 0;
  // About `bytes` of export are about to be written by a move (an
  // evacuation starts); 0: the move is over. A store may prepare memory
  // ahead (lz4: see Lz4SpillStore). Default: nothing.
  virtual void expect(std::uint64_t /*bytes*/) {}
};

// `path` is created (see above); `size` bytes are allocated at once.
// EEXIST: something is at the path; EPERM: a directory on the way breaks
// the safe-path rules; ENOSPC from fallocate.
Result<std::unique_ptr<SpillStore>> make_file_spill(const std::string& path, std::uint64_t size);

// acceleration: LZ4's (1: its default ratio; higher: faster, larger).
Result<std::unique_ptr<SpillStore>> make_lz4_spill(std::uint64_t size, int acceleration = 1);

// "lz4", "lz4:ACCELERATION" or "file:PATH" (tierswap-nbd --spill) -> the store.
Result<std::unique_ptr<SpillStore>> make_spill(const std::string& spec, std::uint64_t size);

}  // namespace tierswap::vram
