#include "backends/swap/swap_header.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <random>

#include "common/refusal.hpp"

namespace tierswap::swap {

namespace {
constexpr std::size_t kVersionOff = 1024, kLastPageOff = 1028, kBadOff = 1032, kUuidOff = 1036,
                      kLabelOff = 1052;

void put_u32(std::vector<std::uint8_t>& p, std::size_t off, std::uint32_t v) {
  std::memcpy(p.data() + off, &v, 4);
}

struct Fd {
  int fd;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};
}  // namespace

std::size_t system_page_size() {
  const long p = ::sysconf(_SC_PAGESIZE);
  return p > 0 ? static_cast<std::size_t>(p) : 4096;
}

const char* to_string(FirstPage k) {
  switch (k) {
    case FirstPage::empty:
      return "empty";
    case FirstPage::ours:
      return "a tierswap swap area";
    case FirstPage::foreign_swap:
      return "a swap area not made by tierswap";
    case FirstPage::other:
      return "data that is not a swap area";
  }
  return "?";
}

Result<std::vector<std::uint8_t>> make_swap_header(std::uint64_t size_bytes, std::size_t page_size,
                                                   const Uuid& uuid, std::string_view label) {
  const std::uint64_t pages = size_bytes / page_size;
  if (pages < kMinSwapPages)
    return refusal(ErrorKind::invalid_config, EINVAL,
                   "swap area of " + std::to_string(size_bytes) + " bytes is smaller than " +
                       std::to_string(kMinSwapPages) + " pages");
  if (pages - 1 > 0xffffffffULL)
    return refusal(
        ErrorKind::invalid_config, EINVAL,
        "swap area of " + std::to_string(size_bytes) + " bytes has too many pages for a v1 header");
  std::vector<std::uint8_t> p(page_size, 0);
  put_u32(p, kVersionOff, 1);
  put_u32(p, kLastPageOff, static_cast<std::uint32_t>(pages - 1));
  put_u32(p, kBadOff, 0);
  std::memcpy(p.data() + kUuidOff, uuid.data(), 16);
  std::memcpy(p.data() + kLabelOff, label.data(), std::min<std::size_t>(label.size(), 15));
  std::memcpy(p.data() + page_size - kSwapMagic.size(), kSwapMagic.data(), kSwapMagic.size());
  return p;
}

FirstPage classify_first_page(std::span<const std::uint8_t> page) {
  if (std::all_of(page.begin(), page.end(), [](std::uint8_t b) { return b == 0; })) return FirstPage::empty;
  if (page.size() < kLabelOff + 16) return FirstPage::other;
  const auto magic = page.subspan(page.size() - 10, 10);
  const bool swap = std::equal(magic.begin(), magic.end(), "SWAPSPACE2") ||
                    std::equal(magic.begin(), magic.end(), "SWAP-SPACE");
  if (!swap) return FirstPage::other;
  const char* label = reinterpret_cast<const char*>(page.data() + kLabelOff);
  if (std::string_view(label, strnlen(label, 16)).starts_with(kOurLabel)) return FirstPage::ours;
  return FirstPage::foreign_swap;
}

Result<FirstPage> probe_first_page(int fd, const std::string& display, std::size_t page_size) {
  std::vector<std::uint8_t> page(page_size, 0);
  const ssize_t n = ::pread(fd, page.data(), page_size, 0);
  if (n < 0) return kernel_error(errno, display);
  if (n == 0) return FirstPage::empty;
  if (static_cast<std::size_t>(n) < page_size) {
    page.resize(static_cast<std::size_t>(n));
    return std::all_of(page.begin(), page.end(), [](std::uint8_t b) { return b == 0; }) ? FirstPage::empty
                                                                                        : FirstPage::other;
  }
  return classify_first_page(page);
}

Result<FirstPage> probe_first_page(const std::string& path, std::size_t page_size) {
  Fd f{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (f.fd < 0) return kernel_error(errno, path);
  return probe_first_page(f.fd, path, page_size);
}

Result<void> write_swap_header(int fd, const std::string& display, std::uint64_t size_bytes,
                               std::size_t page_size) {
  auto header = make_swap_header(size_bytes, page_size, random_uuid());
  if (!header) return wrap(header.error(), display);
  std::vector<std::uint8_t> page(page_size, 0);
  const ssize_t n = ::pread(fd, page.data(), page_size, 0);
  if (n < 0) return kernel_error(errno, display + ": reading the first page");
  const auto kind = classify_first_page(page);
  if (kind != FirstPage::empty && kind != FirstPage::ours)
    return refusal(ErrorKind::invalid_config, EEXIST,
                   display + " holds " + to_string(kind) + ": refusing to overwrite it");
  if (::pwrite(fd, header->data(), header->size(), 0) != static_cast<ssize_t>(header->size()))
    return kernel_error(errno ? errno : EIO, display + ": writing the swap header");
  if (::fsync(fd) != 0) return kernel_error(errno, display + ": fsync");
  return {};
}

Result<void> write_swap_header(const std::string& path, const std::string& display, std::uint64_t size_bytes,
                               std::size_t page_size) {
  if (auto header = make_swap_header(size_bytes, page_size, {}); !header)
    return wrap(header.error(), display);
  Fd f{::open(path.c_str(), O_RDWR | O_CLOEXEC)};
  if (f.fd < 0) return kernel_error(errno, display);
  return write_swap_header(f.fd, display, size_bytes, page_size);
}

Uuid random_uuid() {
  std::random_device rd;
  Uuid u;
  for (auto& b : u) b = static_cast<std::uint8_t>(rd());
  u[6] = (u[6] & 0x0f) | 0x40;
  u[8] = (u[8] & 0x3f) | 0x80;
  return u;
}

}  // namespace tierswap::swap
