// tierswapd: parse the options, then run the daemon (daemon.cpp).
#include "daemon/daemon.hpp"

int main(int argc, char** argv) {
  tierswap::DaemonOptions options;
  if (auto exit_status = tierswap::parse_command_line(argc, argv, options)) return *exit_status;
  return tierswap::run_daemon(options);
}
