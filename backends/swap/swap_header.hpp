// The swap area header (what mkswap writes), written by tierswap itself.
//
// Layout of the first page (linux/swap.h, union swap_header, version 1):
//   offset 0     1024 bytes bootbits (left zero)
//   offset 1024  u32 version = 1
//   offset 1028  u32 last_page = size / page_size - 1
//   offset 1032  u32 nr_badpages = 0
//   offset 1036  u8[16] uuid
//   offset 1052  u8[16] volume label ("tierswap" + ...: marks the area ours)
//   page_size-10 "SWAPSPACE2"
// Integers are host-endian, as the kernel reads them.
//
// Safety: write_swap_header() refuses to overwrite a first page that is
// neither all zero nor a swap header labelled by tierswap: a file or device
// that holds anything else is never touched.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace tierswap::swap {

inline constexpr std::string_view kSwapMagic = "SWAPSPACE2";
inline constexpr std::string_view kOurLabel = "tierswap";
// The kernel wants at least this many pages (mkswap's minimum).
inline constexpr std::uint64_t kMinSwapPages = 10;

using Uuid = std::array<std::uint8_t, 16>;

// One page with the header for an area of `size_bytes` (rounded down to
// whole pages). EINVAL when smaller than kMinSwapPages pages or more pages
// than a u32 can count.
Result<std::vector<std::uint8_t>> make_swap_header(std::uint64_t size_bytes, std::size_t page_size,
                                                   const Uuid& uuid, std::string_view label = kOurLabel);

enum class FirstPage { empty, ours, foreign_swap, other };
const char* to_string(FirstPage k);

// What a first page holds (page.size() is the page size).
FirstPage classify_first_page(std::span<const std::uint8_t> page);

// Reads the first page of `path` (a real file system path: callers resolve
// kernel paths with HostFs first). A file shorter than a page is `other`
// unless it is empty.
Result<FirstPage> probe_first_page(const std::string& path, std::size_t page_size);
// The same through an open descriptor (read with pread at offset 0);
// `display` names it in errors.
Result<FirstPage> probe_first_page(int fd, const std::string& display, std::size_t page_size);

// Writes the header for `size_bytes` to `path` (file or block device),
// fsyncs. EEXIST when the first page is not empty and not ours; the message
// names `display` (the kernel path).
Result<void> write_swap_header(const std::string& path, const std::string& display, std::uint64_t size_bytes,
                               std::size_t page_size);
// The same through a descriptor the caller opened read-write (a swap file
// is written through the one descriptor that created or checked it, never
// reopened by path).
Result<void> write_swap_header(int fd, const std::string& display, std::uint64_t size_bytes,
                               std::size_t page_size);

// A random RFC 4122 version 4 UUID.
Uuid random_uuid();

std::size_t system_page_size();

}  // namespace tierswap::swap
