// tierswapd: thin entry point; the daemon lives in daemon.cpp and engine.cpp.
#include "daemon/daemon.hpp"

int main(int argc, char** argv) {
  return tierswap::run_daemon(argc, argv);
}
