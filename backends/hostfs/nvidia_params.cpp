#include "backends/hostfs/nvidia_params.hpp"

#include <cctype>

#include "backends/hostfs/paths.hpp"

namespace tierswap {

namespace {

constexpr std::string_view kKey = "PreserveVideoMemoryAllocations";

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

}  // namespace

std::optional<bool> parse_preserve_video_memory(std::string_view text) {
  while (!text.empty()) {
    const auto nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    const auto colon = line.find(':');
    if (colon == std::string_view::npos || trim(line.substr(0, colon)) != kKey) continue;
    const std::string_view v = trim(line.substr(colon + 1));
    if (v.empty()) return std::nullopt;
    bool nonzero = false;
    for (char c : v) {
      if (!std::isdigit(static_cast<unsigned char>(c))) return std::nullopt;
      nonzero = nonzero || c != '0';
    }
    return nonzero;
  }
  return std::nullopt;
}

NvidiaPreserve read_nvidia_preserve(const HostFs& fs) {
  const std::string where = std::string(paths::proc_nvidia_params);
  auto text = fs.read(paths::proc_nvidia_params);
  if (!text) return {false, where + " cannot be read (no NVIDIA driver loaded?)"};
  const auto v = parse_preserve_video_memory(*text);
  if (!v) return {false, where + " has no " + std::string(kKey) + " value"};
  return {*v, std::string(kKey) + ": " + (*v ? "1" : "0") + " (" + where + ")"};
}

}  // namespace tierswap
