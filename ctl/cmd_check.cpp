// tierswapctl check FILE [--root DIR]: validate a config against this
// machine without touching anything.
#include <cstdio>

#include "ctl/file_command.hpp"

namespace tierswap::ctl {
namespace {

constexpr const char* kHelp =
    "Usage: tierswapctl check FILE [--root DIR]\n"
    "Validates FILE: the schema, and what needs this machine (algorithms the kernel\n"
    "offers, directories, free space, partitions). Touches nothing.\n\n"
    "  --root DIR   check against the machine under DIR (a fake /sys, /proc, /dev)\n\n"
    "Exit status: 0 valid (warnings allowed), 1 invalid (every error on stderr as\n"
    "FILE:LINE:COL: key.path: message (hint)), 2 usage error.\n";

std::function<int()> setup_check(CLI::App& sub) {
  return file_command(sub, kHelp, false, [](const FileArgs& a, const FilePlan&) {
    std::printf("%s: valid\n", a.file.c_str());
    return kExitOk;
  });
}

const Registrar reg{
    {"check", "FILE [--root DIR]", "validate a config without touching anything", &setup_check}};

}  // namespace
}  // namespace tierswap::ctl
